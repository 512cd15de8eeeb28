//! API keys (`api_keys`): only the SHA-256 of a secret is stored.
//!
//! Revoking a key is one transaction that also ends the work it started: its open
//! liveness sessions are cancelled, its verifications still waiting for a step are
//! cancelled (their templates and images dropped), its webhooks are disabled (pending
//! deliveries failed) and its transient faces deleted. See [`Revocation`].

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::status::{LivenessStatus, VerificationState};
use crate::{KeyRow, Result, Store};

/// What revoking keys did (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revocation {
    /// Keys revoked (active before; already revoked ones are not counted).
    pub keys: u64,
    /// Their CREATED or IN_PROGRESS liveness sessions, now FAILED with `cancelled_ms` set
    /// and images and templates dropped.
    pub sessions_cancelled: u64,
    /// Their verifications still awaiting the document or liveness, now `cancelled` with
    /// templates and images dropped.
    pub verifications_cancelled: u64,
    /// Their webhooks, now disabled (`disabled_ms` set).
    pub webhooks_disabled: u64,
    /// Pending deliveries to those webhooks, now failed.
    pub deliveries_failed: u64,
    /// Their transient faces, deleted.
    pub transient_deleted: u64,
}

pub(crate) fn key_from_row(r: &AnyRow) -> Result<KeyRow> {
    Ok(KeyRow {
        key_id: r.try_get("key_id")?,
        secret_hash: r.try_get("secret_hash")?,
        role: r.try_get("role")?,
        collection_id: r.try_get("collection_id")?,
        name: r.try_get("name")?,
        created_ms: r.try_get("created_ms")?,
        revoked_ms: r.try_get("revoked_ms")?,
        scope_uid: r.try_get("scope_uid")?,
    })
}

/// Revokes the active keys among `key_ids` inside `tx`, with everything revocation does
/// (see the module docs). Returns what it did; `keys == 0` if none was active.
pub(crate) async fn revoke_in(
    tx: &mut Transaction<'static, Any>,
    key_ids: &[String],
    now_ms: i64,
) -> Result<Revocation> {
    let mut r = Revocation::default();
    for key in key_ids {
        let n = sqlx::query(
            "UPDATE api_keys SET revoked_ms = $1 WHERE key_id = $2 AND revoked_ms IS NULL",
        )
        .bind(now_ms)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n == 0 {
            continue;
        }
        r.keys += 1;
        r.sessions_cancelled += sqlx::query(&format!(
            "UPDATE liveness_sessions SET status = '{l_failed}', cancelled_ms = $1, finished_ms = $1, \
             reference = NULL, images = NULL, live_template = NULL, live_face = NULL \
             WHERE owner_key = $2 AND status IN ('{l_created}', '{l_in_progress}')",
            l_failed = LivenessStatus::Failed, l_created = LivenessStatus::Created, l_in_progress = LivenessStatus::InProgress
        ))
        .bind(now_ms)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        r.verifications_cancelled += sqlx::query(&format!(
            "UPDATE verifications SET status = '{v_cancelled}', document = NULL, images = NULL, \
             images_until_ms = NULL, updated_ms = $1, decided_ms = $1 \
             WHERE owner_key = $2 AND status IN ('{v_awaiting_document}', '{v_awaiting_liveness}')",
            v_cancelled = VerificationState::Cancelled,
            v_awaiting_document = VerificationState::AwaitingDocument,
            v_awaiting_liveness = VerificationState::AwaitingLiveness
        ))
        .bind(now_ms)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        r.deliveries_failed += sqlx::query(
            "UPDATE webhook_outbox SET failed_ms = $1, lease_until_ms = NULL, \
             last_error = 'webhook disabled: its API key was revoked' \
             WHERE delivered_ms IS NULL AND failed_ms IS NULL AND webhook_id IN \
             (SELECT webhook_id FROM webhooks WHERE owner_key = $2)",
        )
        .bind(now_ms)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        r.webhooks_disabled += sqlx::query(
            "UPDATE webhooks SET disabled_ms = $1 WHERE owner_key = $2 AND disabled_ms IS NULL",
        )
        .bind(now_ms)
        .bind(key)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        r.transient_deleted += sqlx::query("DELETE FROM transient_faces WHERE owner_key = $1")
            .bind(key)
            .execute(&mut **tx)
            .await?
            .rows_affected();
    }
    Ok(r)
}

impl Store {
    /// Stores a new API key. `Conflict` if its `key_id` exists.
    pub async fn insert_key(&self, k: &KeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (key_id, secret_hash, role, collection_id, name, created_ms, \
             revoked_ms, scope_uid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.key_id)
        .bind(&k.secret_hash)
        .bind(&k.role)
        .bind(&k.collection_id)
        .bind(&k.name)
        .bind(k.created_ms)
        .bind(k.revoked_ms)
        .bind(&k.scope_uid)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The key `key_id`, if it exists (active or revoked).
    pub async fn get_key(&self, key_id: &str) -> Result<Option<KeyRow>> {
        let r = sqlx::query("SELECT * FROM api_keys WHERE key_id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(key_from_row).transpose()
    }

    /// Keys, oldest first: all of them, or (with `scope`) only those limited to the
    /// collection named `scope.0` and either bound to its identity `scope.1` or not yet
    /// bound to any.
    pub async fn list_keys(&self, scope: Option<(&str, &str)>) -> Result<Vec<KeyRow>> {
        let rows = match scope {
            None => {
                sqlx::query("SELECT * FROM api_keys ORDER BY created_ms, key_id")
                    .fetch_all(&self.pool)
                    .await?
            }
            Some((name, uid)) => {
                sqlx::query(
                    "SELECT * FROM api_keys WHERE collection_id = $1 \
                     AND (scope_uid = $2 OR scope_uid IS NULL) ORDER BY created_ms, key_id",
                )
                .bind(name)
                .bind(uid)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// Binds a limited key made before its collection existed to the collection's
    /// identity. False if it was bound already (to this or another identity).
    pub async fn bind_key_scope(&self, key_id: &str, uid: &str) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE api_keys SET scope_uid = $1 WHERE key_id = $2 AND scope_uid IS NULL \
             AND collection_id IS NOT NULL",
        )
        .bind(uid)
        .bind(key_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Revokes a key and ends the work it started, in one transaction (see the module
    /// docs). `None` if it does not exist or was already revoked.
    pub async fn revoke_key(&self, key_id: &str, now_ms: i64) -> Result<Option<Revocation>> {
        let mut tx = self.write_tx().await?;
        let r = revoke_in(&mut tx, &[key_id.to_string()], now_ms).await?;
        if r.keys == 0 {
            return Ok(None);
        }
        tx.commit().await?;
        self.erase_checkpoint().await?;
        Ok(Some(r))
    }
}
