//! # honnin-storage
//!
//! Durable state of the honnin service behind one API, [`Store`], with two backends
//! chosen by URL: SQLite (`sqlite://path/honnin.db`, the embedded default: WAL journal,
//! `synchronous=FULL`, so an acknowledged write survives a crash or power loss) and
//! PostgreSQL (`postgres://…`, for several `honnin serve` processes sharing one
//! database). Both run the same SQL through sqlx's `Any` driver; only the DDL differs
//! (`migrations/sqlite`, `migrations/postgres`). The same test suite
//! (`testing::run_suite`, behind the `testing` feature so the server does not compile it)
//! runs against both.
//!
//! The store keeps bytes, never plaintext biometrics: templates arrive sealed
//! (AES-256-GCM, by `honnin-core`) and no image is ever stored. Deleting a face writes
//! a tombstone so other processes drop it from their in-memory index; deleting a
//! collection deletes its wrapped data key, its faces and users in one transaction.

#![warn(missing_docs)]

mod erasure;
mod gallery;
mod keys;
mod login;
mod oidc;
mod sessions;
pub mod status;
#[cfg(feature = "testing")]
pub mod testing;
mod url;
mod vault;
mod verification;

pub use erasure::{DeletedCollection, DeletedUser};
pub use keys::Revocation;
pub use login::{
    LiveFace, LiveFaceUnavailable, LockoutRow, LoginAttemptRow, ProfileTemplateRow, SigningKeyRow,
};
pub use oidc::{OidcClientRow, OidcGrantRow};
pub use status::{LivenessStatus, Outcome, UnknownStatus, VerificationState};
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
    /// A row with that key exists already (a unique constraint); the text names it,
    /// e.g. `collection <id>`. An expected outcome.
    #[error("already exists: {0}")]
    Conflict(String),
    /// A row the operation needs is missing (e.g. the collection faces are inserted
    /// into); the text names it. An expected outcome.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database failed (connection, query, migration, a vanished row): the
    /// driver's message, with the URL's secrets scrubbed. An operational failure.
    #[error("database error: {0}")]
    Database(String),
    /// The URL's scheme is neither `sqlite:` nor `postgres:`/`postgresql:` (shown
    /// redacted).
    #[error("unsupported database URL `{0}` (expected sqlite://… or postgres://…)")]
    BadUrl(RedactedUrl),
    /// A column holds a value no code writes (a status of a newer version, a damaged row).
    #[error("corrupt row: {0}")]
    Corrupt(#[from] UnknownStatus),
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

/// The result of every storage operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (`sqlite:` URLs): one file plus its WAL, the embedded default.
    Sqlite,
    /// PostgreSQL (`postgres:` or `postgresql:` URLs), shared by several servers.
    Postgres,
}

impl Backend {
    /// The backend's name as logged and reported: `"sqlite"` or `"postgres"`.
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
    /// The key's public id: 16 lowercase hex digits, the `<id>` of its bearer token
    /// `hn_<id>_<secret>`. Primary key.
    pub key_id: String,
    /// SHA-256 of the token's secret (32 bytes); the secret itself is never stored.
    pub secret_hash: Vec<u8>,
    /// The key's role: `admin`, `enroller` or `recognizer` (honnin-core's `Role`).
    pub role: String,
    /// The collection (by name) the key is limited to; `None`: any collection.
    pub collection_id: Option<String>,
    /// A label given by whoever made the key (printable text, not unique).
    pub name: String,
    /// When the key was made, epoch milliseconds.
    pub created_ms: i64,
    /// When the key was revoked, epoch milliseconds; `None` while it is active.
    pub revoked_ms: Option<i64>,
    /// The internal identity (`collection_uid`) of the collection the key is limited
    /// to. `None` with a `collection_id`: bound on first use (the collection did not
    /// exist when the key was made).
    pub scope_uid: Option<String>,
}

/// A collection. Its data key is in the [`KeyVault`] under `collection:<uid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionRow {
    /// The collection's name, chosen by the caller and unique among live collections.
    /// Primary key.
    pub collection_id: String,
    /// Internal identity: a re-created collection of the same name gets a new one.
    pub collection_uid: String,
    /// The template model its faces were made with (the engine's `template_model()`);
    /// templates of another model cannot be compared with them.
    pub face_model: String,
    /// Legacy: the wrapped data key of databases made before the vault (emptied once
    /// the key has moved to the vault). Empty for new collections.
    pub wrapped_key: Vec<u8>,
    /// When the collection was made, epoch milliseconds.
    pub created_ms: i64,
}

/// An indexed face: metadata in the clear, the template sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceRow {
    /// The face's id (a UUID made by honnin-core), unique across collections.
    pub face_id: String,
    /// The collection (by name) the face belongs to.
    pub collection_id: String,
    /// The user of the collection the face is associated with, if any.
    pub user_id: Option<String>,
    /// The caller's own label for the source image, if given.
    pub external_image_id: Option<String>,
    /// The id (a UUID) given to the source image; faces indexed from one image share it.
    pub image_id: String,
    /// JSON of the face's non-biometric details (box, confidence, quality).
    pub details: String,
    /// The sealed template.
    pub template: Vec<u8>,
    /// When the face was indexed, epoch milliseconds.
    pub created_ms: i64,
    /// When the row was last written (indexed, or its user changed), epoch milliseconds;
    /// other servers sync faces written since their last pass by it.
    pub updated_ms: i64,
}

/// A user (a person with several faces) of a collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The collection (by name) the user belongs to.
    pub collection_id: String,
    /// The caller's id for the user, unique within the collection.
    pub user_id: String,
    /// When the user was made, epoch milliseconds.
    pub created_ms: i64,
}

/// A transient face ID: a sealed template that expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransientRow {
    /// The transient face id (a UUID) returned by detect.
    pub face_id: String,
    /// The id of the API key that made it; only that key may use it.
    pub owner_key: String,
    /// The template, sealed (AES-256-GCM) with the service's transient data key.
    pub template: Vec<u8>,
    /// JSON of the face's non-biometric details (box, confidence, quality).
    pub details: String,
    /// When it was made, epoch milliseconds.
    pub created_ms: i64,
    /// When it expires, epoch milliseconds: unusable from then on, deleted by the sweep.
    pub expires_ms: i64,
}

/// A deleted face, kept briefly so other processes drop it from their index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The deleted face's id.
    pub face_id: String,
    /// The collection (by name) it was deleted from.
    pub collection_id: String,
    /// When it was deleted, epoch milliseconds.
    pub deleted_ms: i64,
}

/// A Face Liveness session (see `migrations/*/0002_liveness.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivenessRow {
    /// The session's id (a UUID). Primary key.
    pub session_id: String,
    /// The id of the API key that created the session.
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
    pub status: LivenessStatus,
    /// Results metadata as JSON, once finished.
    pub result: Option<String>,
    /// Sealed reference and audit images, until read or `images_until_ms`.
    pub images: Option<Vec<u8>>,
    /// When the session was created, epoch milliseconds.
    pub created_ms: i64,
    /// The deadline to finish the stream, epoch milliseconds; unfinished by then it is
    /// EXPIRED.
    pub expires_ms: i64,
    /// When its stream started (IN_PROGRESS), epoch milliseconds.
    pub started_ms: Option<i64>,
    /// When it finished (or was cancelled), epoch milliseconds.
    pub finished_ms: Option<i64>,
    /// Until when unread `images` are kept, epoch milliseconds.
    pub images_until_ms: Option<i64>,
    /// When the whole row is deleted, epoch milliseconds.
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

    /// Which database is behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pools (the main database's and, if separate, the vault's); waits
    /// for connections in use to be returned.
    pub async fn close(&self) {
        if self.vault_separate {
            self.vault.close().await;
        }
        self.pool.close().await;
    }

    // ------------------------------------------------------------------ meta

    /// The metadata value stored under `key` (table `meta`), if any.
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
}
