//! Erasure: deleting a collection, a user or a verification deletes every row about
//! it, in one transaction, and then scrubs the files.
//!
//! | deleted | also deleted |
//! |---|---|
//! | collection | its faces, users, login profiles, login attempts and lock-outs, OpenID Connect clients and grants, tombstones, verifications (with their images and templates), the liveness sessions of those verifications, webhook outbox rows about it; keys bound to it, or limited to its name and never bound, are revoked; its data key leaves the vault |
//! | user | the user's faces (tombstoned, so other servers drop them), login profile, login attempts, lock-out and OpenID Connect grants, the verifications of that `externalUserId` in the collection with their liveness sessions, outbox rows about them |
//! | verification | its liveness session and outbox rows about it |
//!
//! On SQLite every connection runs with `secure_delete` (deleted content is zeroed) and
//! each erasure ends with a `wal_checkpoint(TRUNCATE)`, so neither the database file nor
//! its write-ahead log holds the erased bytes afterwards (tested by reading the raw files:
//! `crates/honnin-server/tests/security/erasure.rs`). PostgreSQL has no equivalent: deleted rows
//! stay in dead tuples until vacuumed and in WAL segments until recycled; there, erasure
//! rests on the data key leaving the vault (see `docs/security.md`).

use sqlx::Row;

use crate::keys::{revoke_in, Revocation};
use crate::{Backend, Result, Store};

/// What deleting a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedCollection {
    /// The deleted collection's identity (its vault key was `collection:<uid>`).
    pub collection_uid: String,
    /// Faces deleted.
    pub faces: u64,
    /// Users deleted.
    pub users: u64,
    /// Verifications of the collection deleted.
    pub verifications: u64,
    /// Liveness sessions of those verifications deleted.
    pub liveness_sessions: u64,
    /// Webhook outbox rows about the collection deleted (sent or not).
    pub deliveries: u64,
    /// Login profile templates, attempts, lock-outs, OpenID Connect clients and grants
    /// deleted.
    pub login_records: u64,
    /// Keys bound to the collection, now revoked.
    pub revoked: Revocation,
}

/// What deleting a user removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedUser {
    /// Faces deleted (or, with `keep_faces`, detached).
    pub face_ids: Vec<String>,
    /// Verifications of the user's `externalUserId` in the collection deleted.
    pub verifications: u64,
    /// Liveness sessions of those verifications deleted.
    pub liveness_sessions: u64,
    /// Webhook outbox rows about the user deleted (sent or not).
    pub deliveries: u64,
    /// Login profile templates, attempts, lock-outs and OpenID Connect grants deleted.
    pub login_records: u64,
}

impl Store {
    /// Scrubs erased content from the files: on SQLite a WAL checkpoint that truncates
    /// the log (connections run with `secure_delete`); nothing on PostgreSQL (see the
    /// module docs).
    pub async fn erase_checkpoint(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => crate::checkpoint_truncate(&self.pool).await,
            Backend::Postgres => Ok(()),
        }
    }

    /// Deletes a collection and every row about it (see the module docs), then its data
    /// key from the vault. `None` if it did not exist.
    pub async fn delete_collection(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<DeletedCollection>> {
        let mut tx = self.write_tx().await?;
        let Some(row) =
            sqlx::query("SELECT collection_uid FROM collections WHERE collection_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
        else {
            return Ok(None);
        };
        let uid: String = row.try_get("collection_uid")?;
        let mut d = DeletedCollection {
            collection_uid: uid.clone(),
            ..Default::default()
        };
        let exec = |sql: &'static str| sqlx::query(sql).bind(id.to_string());
        d.liveness_sessions = exec(
            "DELETE FROM liveness_sessions WHERE session_id IN \
             (SELECT liveness_session_id FROM verifications WHERE collection_id = $1)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        d.deliveries = exec("DELETE FROM webhook_outbox WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        d.verifications = exec("DELETE FROM verifications WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM login_profiles WHERE collection_id = $1",
            "DELETE FROM login_attempts WHERE collection_id = $1",
            "DELETE FROM login_lockouts WHERE collection_id = $1",
            "DELETE FROM oidc_grants WHERE collection_id = $1",
            "DELETE FROM oidc_clients WHERE collection_id = $1",
        ] {
            d.login_records += exec(sql).execute(&mut *tx).await?.rows_affected();
        }
        d.faces = exec("DELETE FROM faces WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        d.users = exec("DELETE FROM users WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Other servers drop the whole collection when it leaves `collections`: no
        // tombstones needed, and old ones go.
        exec("DELETE FROM tombstones WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?;
        // Keys bound to it, and keys limited to its name but never bound (made for it,
        // never used): none of them may reach a later collection of the same name.
        let keys: Vec<String> = sqlx::query(
            "SELECT key_id FROM api_keys WHERE revoked_ms IS NULL AND \
             (scope_uid = $1 OR (scope_uid IS NULL AND collection_id = $2))",
        )
        .bind(&uid)
        .bind(id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("key_id"))
        .collect::<std::result::Result<_, _>>()?;
        d.revoked = revoke_in(&mut tx, &keys, now_ms).await?;
        exec("DELETE FROM collections WHERE collection_id = $1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.vault.delete(&format!("collection:{uid}")).await?;
        self.erase_checkpoint().await?;
        Ok(Some(d))
    }

    /// Deletes a user of a collection with the user's faces (`keep_faces`: detaches them
    /// instead, Rekognition's `DeleteUser`), the verifications of that
    /// `externalUserId` with their liveness sessions, and outbox rows about them.
    /// `None` if the user does not exist.
    pub async fn delete_user(
        &self,
        collection: &str,
        user: &str,
        now_ms: i64,
        keep_faces: bool,
    ) -> Result<Option<DeletedUser>> {
        let mut tx = self.write_tx().await?;
        let exists =
            sqlx::query("SELECT 1 AS one FROM users WHERE collection_id = $1 AND user_id = $2")
                .bind(collection)
                .bind(user)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut d = DeletedUser {
            face_ids: sqlx::query(
                "SELECT face_id FROM faces WHERE collection_id = $1 AND user_id = $2",
            )
            .bind(collection)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("face_id"))
            .collect::<std::result::Result<_, _>>()?,
            ..Default::default()
        };
        if keep_faces {
            sqlx::query(
                "UPDATE faces SET user_id = NULL, updated_ms = $1 WHERE collection_id = $2 AND user_id = $3",
            )
            .bind(now_ms)
            .bind(collection)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO tombstones (face_id, collection_id, deleted_ms) \
                 SELECT face_id, collection_id, $1 FROM faces WHERE collection_id = $2 AND user_id = $3 \
                 ON CONFLICT (face_id) DO UPDATE SET deleted_ms = $1",
            )
            .bind(now_ms)
            .bind(collection)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM faces WHERE collection_id = $1 AND user_id = $2")
                .bind(collection)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        d.liveness_sessions = sqlx::query(
            "DELETE FROM liveness_sessions WHERE session_id IN (SELECT liveness_session_id \
             FROM verifications WHERE collection_id = $1 AND external_user_id = $2)",
        )
        .bind(collection)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        d.deliveries =
            sqlx::query("DELETE FROM webhook_outbox WHERE collection_id = $1 AND user_id = $2")
                .bind(collection)
                .bind(user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        d.verifications = sqlx::query(
            "DELETE FROM verifications WHERE collection_id = $1 AND external_user_id = $2",
        )
        .bind(collection)
        .bind(user)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        for (sql, subject) in [
            (
                "DELETE FROM login_profiles WHERE collection_id = $1 AND user_id = $2",
                user.to_string(),
            ),
            (
                "DELETE FROM login_attempts WHERE collection_id = $1 AND user_id = $2",
                user.to_string(),
            ),
            (
                "DELETE FROM login_lockouts WHERE collection_id = $1 AND subject = $2",
                format!("user:{user}"),
            ),
            (
                "DELETE FROM oidc_grants WHERE collection_id = $1 \
                 AND (user_id = $2 OR login_hint = $2)",
                user.to_string(),
            ),
        ] {
            d.login_records += sqlx::query(sql)
                .bind(collection)
                .bind(subject)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        sqlx::query("DELETE FROM users WHERE collection_id = $1 AND user_id = $2")
            .bind(collection)
            .bind(user)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.erase_checkpoint().await?;
        Ok(Some(d))
    }

    /// Deletes a verification with its liveness session and the outbox rows about it;
    /// false if unknown.
    pub async fn delete_verification(&self, id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "DELETE FROM liveness_sessions WHERE session_id IN \
             (SELECT liveness_session_id FROM verifications WHERE verification_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM webhook_outbox WHERE verification_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM verifications WHERE verification_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.erase_checkpoint().await?;
        Ok(r.rows_affected() == 1)
    }
}
