//! # honnin-storage
//!
//! Durable state of the honnin service behind one API, [`Store`], with two backends
//! chosen by URL: SQLite (`sqlite://path/honnin.db`, the embedded default: WAL journal,
//! `synchronous=FULL`, so an acknowledged write survives a crash or power loss) and
//! PostgreSQL (`postgres://…`, for several `honnin serve` processes sharing one
//! database). Both run the same SQL through sqlx's `Any` driver; only the DDL differs
//! (`migrations/sqlite`, `migrations/postgres`). The same test suite
//! ([`testing::run_suite`]) runs against both.
//!
//! The store keeps bytes, never plaintext biometrics: templates arrive sealed
//! (AES-256-GCM, by `honnin-core`) and no image is ever stored. Deleting a face writes
//! a tombstone so other processes drop it from their in-memory index; deleting a
//! collection deletes its wrapped data key, its faces and users in one transaction.

mod erasure;
mod keys;
pub mod testing;
mod url;
mod vault;
mod verification;

pub use erasure::{DeletedCollection, DeletedUser, Revocation};
pub use url::RedactedUrl;
pub use vault::{KeyVault, VaultEntry};
pub use verification::{
    ClaimLimits, DeliveryOutcome, DeliveryRow, VerificationRow, VerificationSweep, WebhookRow,
};

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use thiserror::Error;

/// Storage errors. `Conflict` and `NotFound` are expected outcomes callers map to API
/// errors; `Database` is an operational failure. No message ever holds a database
/// password ([`RedactedUrl`]).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("unsupported database URL `{0}` (expected sqlite://… or postgres://…)")]
    BadUrl(RedactedUrl),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e {
            if d.is_unique_violation() {
                return StoreError::Conflict(d.message().to_string());
            }
        }
        StoreError::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration: {e}"))
    }
}

/// A driver error met while talking to `url`, with its password scrubbed.
pub(crate) fn db_error(e: sqlx::Error, url: &RedactedUrl) -> StoreError {
    match StoreError::from(e) {
        StoreError::Database(m) => StoreError::Database(url.scrub(&m)),
        other => other,
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// An API key as stored: only a hash of its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub key_id: String,
    pub secret_hash: Vec<u8>,
    pub role: String,
    pub collection_id: Option<String>,
    pub name: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
    /// The internal identity (`collection_uid`) of the collection the key is limited
    /// to. `None` with a `collection_id`: bound on first use (the collection did not
    /// exist when the key was made).
    pub scope_uid: Option<String>,
}

/// A collection. Its data key is in the [`KeyVault`] under `collection:<uid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRow {
    pub collection_id: String,
    /// Internal identity: a re-created collection of the same name gets a new one.
    pub collection_uid: String,
    pub face_model: String,
    /// Legacy: the wrapped data key of databases made before the vault (emptied once
    /// the key has moved to the vault). Empty for new collections.
    pub wrapped_key: Vec<u8>,
    pub created_ms: i64,
}

/// An indexed face: metadata in the clear, the template sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRow {
    pub face_id: String,
    pub collection_id: String,
    pub user_id: Option<String>,
    pub external_image_id: Option<String>,
    pub image_id: String,
    /// JSON of the face's non-biometric details (box, confidence, quality).
    pub details: String,
    /// The sealed template.
    pub template: Vec<u8>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A user (a person with several faces) of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub collection_id: String,
    pub user_id: String,
    pub created_ms: i64,
}

/// A transient face ID: a sealed template that expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransientRow {
    pub face_id: String,
    pub owner_key: String,
    pub template: Vec<u8>,
    pub details: String,
    pub created_ms: i64,
    pub expires_ms: i64,
}

/// A deleted face, kept briefly so other processes drop it from their index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    pub face_id: String,
    pub collection_id: String,
    pub deleted_ms: i64,
}

/// A Face Liveness session (see `migrations/*/0002_liveness.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessRow {
    pub session_id: String,
    pub owner_key: String,
    /// SHA-256 of the client token.
    pub token_hash: Vec<u8>,
    /// The caller's `deviceCorrelationId`.
    pub device_id: Option<String>,
    /// Settings as JSON (owned by honnin-core).
    pub settings: String,
    /// Sealed template of the caller's reference image (liveness-with-verify).
    pub reference: Option<Vec<u8>>,
    /// CREATED | IN_PROGRESS | SUCCEEDED | FAILED | EXPIRED
    pub status: String,
    /// Results metadata as JSON, once finished.
    pub result: Option<String>,
    /// Sealed reference and audit images, until read or `images_until_ms`.
    pub images: Option<Vec<u8>>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub images_until_ms: Option<i64>,
    pub retain_until_ms: i64,
    /// Set when the session was cancelled (its API key was revoked).
    pub cancelled_ms: Option<i64>,
}

/// What one liveness sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LivenessSweep {
    /// Sessions that ran out of time before finishing (now EXPIRED, images gone).
    pub expired: u64,
    /// Finished sessions whose unread images reached their time limit.
    pub images_cleared: u64,
    /// Rows deleted at the end of their retention.
    pub deleted: u64,
}

/// The storage handle. Cheap to clone (pools).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    vault: KeyVault,
    /// Whether the vault has its own pool (closed separately).
    vault_separate: bool,
}

pub(crate) fn backend_of(url: &RedactedUrl) -> Result<Backend> {
    let u = url.expose();
    if u.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if u.starts_with("postgres:") || u.starts_with("postgresql:") {
        Ok(Backend::Postgres)
    } else {
        Err(StoreError::BadUrl(url.clone()))
    }
}

/// Opens a pool with honnin's settings. SQLite connections run with WAL journaling,
/// `synchronous=FULL` (an acknowledged write survives power loss), foreign keys, a busy
/// timeout, and `secure_delete` (deleted content is overwritten with zeros, so erased
/// templates and keys do not linger in free pages).
pub(crate) async fn connect(url: &RedactedUrl, backend: Backend, max: u32) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let err = |e: sqlx::Error| db_error(e, url);
    match backend {
        Backend::Sqlite => {
            // Create the file, then open the pool with durable, concurrent settings.
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())
                .map_err(|e| StoreError::Database(format!("{url}: {}", url.scrub(&e.to_string()))))?
                .create_if_missing(true);
            drop(sqlx::SqlitePool::connect_with(opts).await.map_err(err)?);
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; \
                             PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; \
                             PRAGMA secure_delete=ON;",
                        )
                        .await?;
                        Ok(())
                    })
                })
                .connect(url.expose())
                .await
                .map_err(err)
        }
        Backend::Postgres => {
            // One direct attempt first: an unreachable server or a refused login is
            // reported at once, not after the pool's 30 s of retries.
            use sqlx::Connection;
            sqlx::AnyConnection::connect(url.expose())
                .await
                .map_err(err)?
                .close()
                .await
                .map_err(err)?;
            connect_pool(url, max).await
        }
    }
}

/// The PostgreSQL pool (twice the connections of SQLite's: no single writer there).
async fn connect_pool(url: &RedactedUrl, max: u32) -> Result<AnyPool> {
    AnyPoolOptions::new()
        .max_connections(max * 2)
        .acquire_timeout(Duration::from_secs(30))
        .connect(url.expose())
        .await
        .map_err(|e| db_error(e, url))
}

/// Copies the SQLite write-ahead log into the database and truncates it to zero bytes,
/// so content deleted (and, with `secure_delete`, zeroed) is gone from both files. A
/// reader holding an old snapshot can keep the checkpoint from completing; it is retried
/// a few times and then logged.
pub(crate) async fn checkpoint_truncate(pool: &AnyPool) -> Result<()> {
    for attempt in 0..5 {
        let r = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(pool)
            .await?;
        let busy: i64 = r.try_get(0).unwrap_or(1);
        if busy == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
    }
    tracing::warn!("WAL checkpoint did not complete (readers busy); erased content stays in the WAL until the next checkpoint");
    Ok(())
}

/// The vault beside a SQLite database: `<dir>/<stem>-keys.db`, same query string.
fn sqlite_vault_url(url: &str) -> String {
    let (scheme, rest) = url
        .split_once("://")
        .unwrap_or(("sqlite", url.trim_start_matches("sqlite:")));
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let p = std::path::Path::new(path);
    let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("honnin");
    let file = format!("{stem}-keys.db");
    let vault = match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(file).display().to_string(),
        _ => file,
    };
    match query {
        Some(q) => format!("{scheme}://{vault}?{q}"),
        None => format!("{scheme}://{vault}"),
    }
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn face_from_row(r: &AnyRow) -> Result<FaceRow> {
    Ok(FaceRow {
        face_id: r.try_get("face_id")?,
        collection_id: r.try_get("collection_id")?,
        user_id: r.try_get("user_id")?,
        external_image_id: r.try_get("external_image_id")?,
        image_id: r.try_get("image_id")?,
        details: r.try_get("details")?,
        template: r.try_get("template")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
    })
}

const FACE_COLS: &str =
    "face_id, collection_id, user_id, external_image_id, image_id, details, template, created_ms, updated_ms";

impl Store {
    /// Connects (creating the SQLite file if needed), applies migrations, and opens the
    /// key vault at its default place (see [`KeyVault`]).
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with_vault(url, None).await
    }

    /// Like [`Store::open`], with the key vault at `vault_url` (`None`: beside a SQLite
    /// database, or inside a PostgreSQL one).
    pub async fn open_with_vault(url: &str, vault_url: Option<&str>) -> Result<Store> {
        let url = RedactedUrl::new(url);
        let backend = backend_of(&url)?;
        let pool = connect(&url, backend, 8).await?;
        let (vault, vault_separate) = match (vault_url, backend) {
            (Some(v), _) if v != url.expose() => {
                (KeyVault::open(&RedactedUrl::new(v)).await?, true)
            }
            (_, Backend::Sqlite) => (
                KeyVault::open(&RedactedUrl::new(sqlite_vault_url(url.expose()))).await?,
                true,
            ),
            (_, Backend::Postgres) => (
                KeyVault::with_pool(pool.clone(), backend, url.clone()).await?,
                false,
            ),
        };
        let store = Store {
            pool,
            backend,
            vault,
            vault_separate,
        };
        store.migrate().await.map_err(|e| match e {
            StoreError::Database(m) => StoreError::Database(url.scrub(&m)),
            other => other,
        })?;
        Ok(store)
    }

    /// The key vault (wrapped data keys).
    pub fn vault(&self) -> &KeyVault {
        &self.vault
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`), so `busy_timeout` applies: a deferred transaction that
    /// reads and then writes fails at once with SQLITE_BUSY when another connection
    /// committed in between.
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if self.vault_separate {
            self.vault.close().await;
        }
        self.pool.close().await;
    }

    // ------------------------------------------------------------------ meta

    pub async fn get_meta(&self, key: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get("value")).transpose()?)
    }

    /// Stores `value` under `key` unless a value exists; returns the value in force.
    pub async fn put_meta_if_absent(&self, key: &str, value: &str) -> Result<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        self.get_meta(key)
            .await?
            .ok_or_else(|| StoreError::Database("meta row vanished".into()))
    }

    // ------------------------------------------------------------------ collections

    pub async fn insert_collection(&self, c: &CollectionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO collections (collection_id, collection_uid, face_model, wrapped_key, created_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.collection_id)
        .bind(&c.collection_uid)
        .bind(&c.face_model)
        .bind(&c.wrapped_key)
        .bind(c.created_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("collection {}", c.collection_id))
            }
            other => other,
        })?;
        Ok(())
    }

    fn collection_from_row(r: &AnyRow) -> Result<CollectionRow> {
        Ok(CollectionRow {
            collection_id: r.try_get("collection_id")?,
            collection_uid: r.try_get("collection_uid")?,
            face_model: r.try_get("face_model")?,
            wrapped_key: r.try_get("wrapped_key")?,
            created_ms: r.try_get("created_ms")?,
        })
    }

    pub async fn get_collection(&self, id: &str) -> Result<Option<CollectionRow>> {
        let r = sqlx::query("SELECT * FROM collections WHERE collection_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(Self::collection_from_row).transpose()
    }

    /// Collections in id order after `after` (exclusive), at most `limit`; with
    /// `only_uid`, just the collection of that identity (filtered before paging).
    pub async fn list_collections(
        &self,
        after: Option<&str>,
        limit: i64,
        only_uid: Option<&str>,
    ) -> Result<Vec<CollectionRow>> {
        let rows = match only_uid {
            None => {
                sqlx::query(
                    "SELECT * FROM collections WHERE collection_id > $1 ORDER BY collection_id LIMIT $2",
                )
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            Some(uid) => {
                sqlx::query(
                    "SELECT * FROM collections WHERE collection_id > $1 AND collection_uid = $2 \
                     ORDER BY collection_id LIMIT $3",
                )
                .bind(after.unwrap_or(""))
                .bind(uid)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(Self::collection_from_row).collect()
    }

    /// Every collection as (id, internal identity): the index follows these.
    pub async fn collection_ids(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT collection_id, collection_uid FROM collections ORDER BY collection_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("collection_id")?, r.try_get("collection_uid")?)))
            .collect()
    }

    /// Empties a collection's legacy `wrapped_key` once its key is in the vault, and
    /// scrubs the old bytes from the files.
    pub async fn clear_legacy_wrapped_key(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE collections SET wrapped_key = $1 WHERE collection_id = $2")
            .bind(Vec::<u8>::new())
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await
    }

    /// Deletes a metadata row (a legacy key moved to the vault) and scrubs it.
    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM meta WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await
    }

    pub async fn count_faces(&self, collection: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM faces WHERE collection_id = $1")
            .bind(collection)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    pub async fn count_users(&self, collection: &str) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE collection_id = $1")
            .bind(collection)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    // ------------------------------------------------------------------ faces

    /// Inserts faces in one transaction; when it returns Ok they are durable.
    /// Fails with `NotFound` if the collection is gone, or (with `uid`) is no longer
    /// the collection of that identity (deleted and re-created meanwhile: its templates
    /// would be sealed with the old, destroyed data key).
    pub async fn insert_faces(&self, faces: &[FaceRow], uid: Option<&str>) -> Result<()> {
        if faces.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for f in faces {
            let exists = sqlx::query(
                "SELECT 1 AS one FROM collections WHERE collection_id = $1 \
                 AND ($2 = '' OR collection_uid = $2)",
            )
            .bind(&f.collection_id)
            .bind(uid.unwrap_or(""))
            .fetch_optional(&mut *tx)
            .await?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!(
                    "collection {}",
                    f.collection_id
                )));
            }
            sqlx::query(&format!(
                "INSERT INTO faces ({FACE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            ))
            .bind(&f.face_id)
            .bind(&f.collection_id)
            .bind(&f.user_id)
            .bind(&f.external_image_id)
            .bind(&f.image_id)
            .bind(&f.details)
            .bind(&f.template)
            .bind(f.created_ms)
            .bind(f.updated_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Faces of a collection in id order after `after`, optionally only one user's.
    pub async fn list_faces(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
        user: Option<&str>,
    ) -> Result<Vec<FaceRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id > $2 AND user_id = $3 \
                     ORDER BY face_id LIMIT $4"
                ))
                .bind(collection)
                .bind(after.unwrap_or(""))
                .bind(u)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id > $2 ORDER BY face_id LIMIT $3"
                ))
                .bind(collection)
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(face_from_row).collect()
    }

    /// The faces among `ids` that belong to `collection`.
    pub async fn get_faces(&self, collection: &str, ids: &[String]) -> Result<Vec<FaceRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {FACE_COLS} FROM faces WHERE collection_id = $1 AND face_id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).bind(collection);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(face_from_row).collect()
    }

    /// Deletes faces (writing tombstones); returns the ids actually deleted.
    pub async fn delete_faces(
        &self,
        collection: &str,
        ids: &[String],
        now_ms: i64,
    ) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        let mut tx = self.write_tx().await?;
        for id in ids {
            let r = sqlx::query("DELETE FROM faces WHERE collection_id = $1 AND face_id = $2")
                .bind(collection)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 1 {
                sqlx::query(
                    "INSERT INTO tombstones (face_id, collection_id, deleted_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (face_id) DO UPDATE SET deleted_ms = $3",
                )
                .bind(id)
                .bind(collection)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                deleted.push(id.clone());
            }
        }
        tx.commit().await?;
        Ok(deleted)
    }

    /// Sets (or clears, with `None`) the user of faces; returns how many changed.
    pub async fn set_face_user(
        &self,
        collection: &str,
        ids: &[String],
        user: Option<&str>,
        now_ms: i64,
    ) -> Result<u64> {
        let mut n = 0;
        let mut tx = self.write_tx().await?;
        for id in ids {
            let r = sqlx::query("UPDATE faces SET user_id = $1, updated_ms = $2 WHERE collection_id = $3 AND face_id = $4")
                .bind(user)
                .bind(now_ms)
                .bind(collection)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            n += r.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// Faces written (inserted or updated) at or after `since_ms`, any collection.
    pub async fn faces_updated_since(&self, since_ms: i64) -> Result<Vec<FaceRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {FACE_COLS} FROM faces WHERE updated_ms >= $1"
        ))
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(face_from_row).collect()
    }

    /// Faces deleted at or after `since_ms`.
    pub async fn tombstones_since(&self, since_ms: i64) -> Result<Vec<Tombstone>> {
        let rows = sqlx::query(
            "SELECT face_id, collection_id, deleted_ms FROM tombstones WHERE deleted_ms >= $1",
        )
        .bind(since_ms)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Tombstone {
                    face_id: r.try_get("face_id")?,
                    collection_id: r.try_get("collection_id")?,
                    deleted_ms: r.try_get("deleted_ms")?,
                })
            })
            .collect()
    }

    /// Forgets tombstones older than `before_ms`; returns how many.
    pub async fn purge_tombstones(&self, before_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM tombstones WHERE deleted_ms < $1")
            .bind(before_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    // ------------------------------------------------------------------ users

    pub async fn insert_user(&self, u: &UserRow) -> Result<()> {
        let exists = self.get_collection(&u.collection_id).await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!(
                "collection {}",
                u.collection_id
            )));
        }
        sqlx::query("INSERT INTO users (collection_id, user_id, created_ms) VALUES ($1, $2, $3)")
            .bind(&u.collection_id)
            .bind(&u.user_id)
            .bind(u.created_ms)
            .execute(&self.pool)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("user {}", u.user_id)),
                other => other,
            })?;
        Ok(())
    }

    pub async fn get_user(&self, collection: &str, user: &str) -> Result<Option<UserRow>> {
        let r = sqlx::query("SELECT * FROM users WHERE collection_id = $1 AND user_id = $2")
            .bind(collection)
            .bind(user)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(UserRow {
                collection_id: r.try_get("collection_id")?,
                user_id: r.try_get("user_id")?,
                created_ms: r.try_get("created_ms")?,
            })
        })
        .transpose()
    }

    pub async fn list_users(
        &self,
        collection: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT * FROM users WHERE collection_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
        )
        .bind(collection)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserRow {
                    collection_id: r.try_get("collection_id")?,
                    user_id: r.try_get("user_id")?,
                    created_ms: r.try_get("created_ms")?,
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------ transient faces

    pub async fn insert_transient(&self, rows: &[TransientRow]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for t in rows {
            sqlx::query(
                "INSERT INTO transient_faces (face_id, owner_key, template, details, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&t.face_id)
            .bind(&t.owner_key)
            .bind(&t.template)
            .bind(&t.details)
            .bind(t.created_ms)
            .bind(t.expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired transient faces among `ids`.
    pub async fn get_transient(&self, ids: &[String], now_ms: i64) -> Result<Vec<TransientRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM transient_faces WHERE expires_ms > $1 AND face_id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).bind(now_ms);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(TransientRow {
                    face_id: r.try_get("face_id")?,
                    owner_key: r.try_get("owner_key")?,
                    template: r.try_get("template")?,
                    details: r.try_get("details")?,
                    created_ms: r.try_get("created_ms")?,
                    expires_ms: r.try_get("expires_ms")?,
                })
            })
            .collect()
    }

    /// Deletes expired transient faces; returns how many.
    pub async fn delete_expired_transient(&self, now_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM transient_faces WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Counts stored transient faces, expired or not (for tests and metrics).
    pub async fn count_transient(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM transient_faces")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    // ------------------------------------------------------------------ liveness sessions

    pub async fn insert_liveness(&self, r: &LivenessRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO liveness_sessions (session_id, owner_key, token_hash, device_id, settings, \
             reference, status, result, images, created_ms, expires_ms, started_ms, finished_ms, \
             images_until_ms, retain_until_ms, cancelled_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.session_id)
        .bind(&r.owner_key)
        .bind(&r.token_hash)
        .bind(&r.device_id)
        .bind(&r.settings)
        .bind(&r.reference)
        .bind(&r.status)
        .bind(&r.result)
        .bind(&r.images)
        .bind(r.created_ms)
        .bind(r.expires_ms)
        .bind(r.started_ms)
        .bind(r.finished_ms)
        .bind(r.images_until_ms)
        .bind(r.retain_until_ms)
        .bind(r.cancelled_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("liveness session `{}`", r.session_id))
            }
            _ => e.into(),
        })?;
        Ok(())
    }

    pub async fn get_liveness(&self, id: &str) -> Result<Option<LivenessRow>> {
        let r = sqlx::query("SELECT * FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(LivenessRow {
                session_id: r.try_get("session_id")?,
                owner_key: r.try_get("owner_key")?,
                token_hash: r.try_get("token_hash")?,
                device_id: r.try_get("device_id")?,
                settings: r.try_get("settings")?,
                reference: r.try_get("reference")?,
                status: r.try_get("status")?,
                result: r.try_get("result")?,
                images: r.try_get("images")?,
                created_ms: r.try_get("created_ms")?,
                expires_ms: r.try_get("expires_ms")?,
                started_ms: r.try_get("started_ms")?,
                finished_ms: r.try_get("finished_ms")?,
                images_until_ms: r.try_get("images_until_ms")?,
                retain_until_ms: r.try_get("retain_until_ms")?,
                cancelled_ms: r.try_get("cancelled_ms")?,
            })
        })
        .transpose()
    }

    /// Sessions created at or after `since_ms` by `device` (if given) and/or `owner` (if given).
    pub async fn count_liveness_since(
        &self,
        device: Option<&str>,
        owner: Option<&str>,
        since_ms: i64,
    ) -> Result<i64> {
        let mut sql =
            "SELECT COUNT(*) AS n FROM liveness_sessions WHERE created_ms >= $1".to_string();
        let mut n = 1;
        if device.is_some() {
            n += 1;
            sql.push_str(&format!(" AND device_id = ${n}"));
        }
        if owner.is_some() {
            n += 1;
            sql.push_str(&format!(" AND owner_key = ${n}"));
        }
        let mut q = sqlx::query(&sql).bind(since_ms);
        if let Some(d) = device {
            q = q.bind(d);
        }
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let r = q.fetch_one(&self.pool).await?;
        Ok(r.try_get("n")?)
    }

    /// Marks a CREATED, unexpired session IN_PROGRESS. False if it was already started,
    /// finished, expired or unknown: a session streams once, even with several servers.
    pub async fn start_liveness(&self, id: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE liveness_sessions SET status = 'IN_PROGRESS', started_ms = $1 \
             WHERE session_id = $2 AND status = 'CREATED' AND expires_ms > $1",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the outcome of an IN_PROGRESS session and drops its reference template.
    /// A session that belongs to a verification gets its sealed live-face template in the
    /// same statement: whoever sees the session finished (any server's background pass)
    /// finds the live face too. False if the session is no longer in progress (expired
    /// or deleted meanwhile).
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_liveness(
        &self,
        id: &str,
        status: &str,
        result: &str,
        images: Option<&[u8]>,
        live_template: Option<&[u8]>,
        now_ms: i64,
        images_until_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE liveness_sessions SET status = $1, result = $2, images = $3, finished_ms = $4, \
             images_until_ms = $5, reference = NULL, live_template = $6 \
             WHERE session_id = $7 AND status = 'IN_PROGRESS'",
        )
        .bind(status)
        .bind(result)
        .bind(images)
        .bind(now_ms)
        .bind(images_until_ms)
        .bind(live_template)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Returns a finished session's images and deletes them in the same transaction:
    /// exactly one reader ever gets them.
    pub async fn take_liveness_images(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT images FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let images: Option<Vec<u8>> = match row {
            Some(r) => r.try_get("images")?,
            None => None,
        };
        if images.is_none() {
            return Ok(None);
        }
        let r = sqlx::query(
            "UPDATE liveness_sessions SET images = NULL WHERE session_id = $1 AND images IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if r.rows_affected() == 1 { images } else { None })
    }

    /// Deletes a session and everything it holds (scrubbed from the files); false if
    /// unknown.
    pub async fn delete_liveness(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await?;
        Ok(r.rows_affected() == 1)
    }

    /// A session's status (`None` if it does not exist): a running stream polls it to
    /// stop when the session is cancelled.
    pub async fn liveness_status(&self, id: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT status FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.map(|r| r.try_get("status")).transpose()?)
    }

    /// Enforces every liveness time limit at `now_ms` (see [`LivenessSweep`]).
    pub async fn sweep_liveness(&self, now_ms: i64) -> Result<LivenessSweep> {
        let expired = sqlx::query(
            "UPDATE liveness_sessions SET status = 'EXPIRED', images = NULL, reference = NULL \
             WHERE status IN ('CREATED', 'IN_PROGRESS') AND expires_ms <= $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let images_cleared = sqlx::query(
            "UPDATE liveness_sessions SET images = NULL \
             WHERE images IS NOT NULL AND images_until_ms <= $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM liveness_sessions WHERE retain_until_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(LivenessSweep {
            expired,
            images_cleared,
            deleted,
        })
    }
}
