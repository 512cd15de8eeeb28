//! The key vault: wrapped data keys, kept apart from the data they open.
//!
//! honnin seals every template and image with a data key, and wraps every data key
//! with the master key (which never enters a database). The wrapped data keys live
//! here, not in the main database, so that
//!
//! * a backup of the main database alone cannot be decrypted, even with the master key;
//! * erasing a collection deletes one small row in a small store, which is then
//!   scrubbed on disk (SQLite: `secure_delete` and a WAL checkpoint; PostgreSQL:
//!   `VACUUM FULL` of the table), and a vault with a short backup retention bounds how
//!   long any copy of the key survives.
//!
//! Where it lives: on SQLite, a second file beside the database (`<name>-keys.db`); on
//! PostgreSQL, the `data_keys` table of the same database unless `key_store` names
//! another database (see `docs/security.md`, "Erasure and backups").
//!
//! Keys are addressed by a reference such as `collection:<uid>` or `service:transient`.

use sqlx::{AnyPool, Executor, Row};

use crate::url::RedactedUrl;
use crate::{Backend, Result, StoreError};

/// The vault handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KeyVault {
    pub(crate) pool: AnyPool,
    backend: Backend,
    url: RedactedUrl,
}

/// One stored key reference and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    /// The key's reference, e.g. `collection:<uid>` or `service:transient`.
    pub key_ref: String,
    /// When the wrapped key was stored, epoch milliseconds.
    pub created_ms: i64,
}

impl KeyVault {
    /// Opens (creating if needed) the vault at `url`.
    pub(crate) async fn open(url: &RedactedUrl) -> Result<KeyVault> {
        let backend = crate::backend_of(url)?;
        let pool = crate::connect(url, backend, 4).await?;
        Self::with_pool(pool, backend, url.clone()).await
    }

    /// A vault in an already open pool (PostgreSQL: the main database).
    pub(crate) async fn with_pool(
        pool: AnyPool,
        backend: Backend,
        url: RedactedUrl,
    ) -> Result<KeyVault> {
        let blob = match backend {
            Backend::Sqlite => "BLOB",
            Backend::Postgres => "BYTEA",
        };
        pool.execute(
            format!(
                "CREATE TABLE IF NOT EXISTS data_keys (key_ref TEXT PRIMARY KEY, \
                 wrapped {blob} NOT NULL, created_ms BIGINT NOT NULL)"
            )
            .as_str(),
        )
        .await
        .map_err(|e| crate::db_error(e, &url))?;
        Ok(KeyVault { pool, backend, url })
    }

    /// Where the vault is (password hidden).
    pub fn location(&self) -> &RedactedUrl {
        &self.url
    }

    /// Stores `wrapped` under `key_ref` unless a key is there; returns the key in force.
    pub async fn put_if_absent(
        &self,
        key_ref: &str,
        wrapped: &[u8],
        now_ms: i64,
    ) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO data_keys (key_ref, wrapped, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (key_ref) DO NOTHING",
        )
        .bind(key_ref)
        .bind(wrapped)
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        self.get(key_ref)
            .await?
            .ok_or_else(|| StoreError::Database(format!("vault key {key_ref} vanished")))
    }

    /// The wrapped data key stored under `key_ref`, if any (wrapped by honnin-core with
    /// the master key; opaque bytes here).
    pub async fn get(&self, key_ref: &str) -> Result<Option<Vec<u8>>> {
        let r = sqlx::query("SELECT wrapped FROM data_keys WHERE key_ref = $1")
            .bind(key_ref)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get("wrapped")).transpose()?)
    }

    /// Keys whose reference starts with `prefix`.
    pub async fn entries(&self, prefix: &str) -> Result<Vec<VaultEntry>> {
        let rows = sqlx::query(
            "SELECT key_ref, created_ms FROM data_keys WHERE key_ref LIKE $1 ORDER BY key_ref",
        )
        .bind(format!("{}%", prefix.replace('%', "")))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VaultEntry {
                    key_ref: r.try_get("key_ref")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    /// Deletes a key and scrubs it from the vault's files (see [`KeyVault::scrub`]).
    /// Returns whether it existed.
    pub async fn delete(&self, key_ref: &str) -> Result<bool> {
        let n = sqlx::query("DELETE FROM data_keys WHERE key_ref = $1")
            .bind(key_ref)
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.scrub().await?;
        Ok(n > 0)
    }

    /// Makes deleted keys unreadable from the vault's files: on SQLite (opened with
    /// `secure_delete`) a `wal_checkpoint(TRUNCATE)`; on PostgreSQL a `VACUUM FULL` of
    /// the table, which rewrites it without the dead rows (WAL segments keep them until
    /// PostgreSQL recycles them: see `docs/security.md`).
    pub async fn scrub(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => crate::checkpoint_truncate(&self.pool).await,
            Backend::Postgres => {
                if let Err(e) = self.pool.execute("VACUUM FULL data_keys").await {
                    tracing::warn!(error = %self.url.scrub(&e.to_string()), "VACUUM FULL data_keys failed; deleted keys stay in dead rows until autovacuum");
                }
                Ok(())
            }
        }
    }

    /// Closes the vault's pool, waiting for connections in use to be returned. A vault
    /// inside the main PostgreSQL database shares its pool: [`crate::Store::close`] then
    /// leaves it to the main pool's close.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
