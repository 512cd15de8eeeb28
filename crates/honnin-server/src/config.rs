//! The server's one typed configuration: built-in defaults, then a TOML file, then
//! `HONNIN_*` environment variables, then command-line flags (highest).
//!
//! Every field and its default is listed in `docs/configuration.md`. Nested fields
//! are reached from the environment with `__`, e.g.
//! `HONNIN_LIMITS__RATE_LIMIT_PER_SECOND=50` or `HONNIN_SERVICE__MATCH_FMR=1e-6`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use honnin_core::ServiceConfig;
use serde::{Deserialize, Serialize};

/// Request limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest request body, bytes (two 5 MB images as base64 fit).
    pub max_body_bytes: usize,
    /// A request that takes longer is answered 408 `RequestTimeout`.
    pub request_timeout_secs: u64,
    /// Sustained requests per second allowed per API key.
    pub rate_limit_per_second: u32,
    /// Requests a key may send in a burst above the sustained rate.
    pub rate_limit_burst: u32,
    /// Failed authentications per second allowed from one client address; beyond
    /// them (and the burst) the address gets 429 `Throttling` without a key lookup.
    pub failed_auth_per_second: u32,
    /// Failed authentications one client address may make in a burst.
    pub failed_auth_burst: u32,
    /// Face logins one client address may start per minute through the OpenID Connect
    /// provider (`GET /oidc/authorize`, which creates a liveness session without an API
    /// key), as a burst refilled over the minute; beyond it 429.
    pub login_starts_per_minute: u32,
    /// Header that carries the client's address when honnin runs behind a reverse proxy
    /// you trust (e.g. `x-forwarded-for`): its **last** address, the one your proxy
    /// appended, is used (anything a client writes before it is ignored). Empty
    /// (default): the connection's peer address. Never set it without such a proxy:
    /// clients could then choose their own address. Behind a chain of proxies, name the
    /// header the outermost one sets (e.g. `cf-connecting-ip`).
    pub client_ip_header: String,
    /// A connection that has not sent a complete request head within this time (new,
    /// or idle between requests) is closed, seconds.
    pub header_read_timeout_secs: u64,
    /// Open connections in all; past it new connections are closed at once. Keep it
    /// below the process's open-file limit (`ulimit -n`).
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64); past it that client's
    /// new connections are closed at once.
    pub max_connections_per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            rate_limit_per_second: 50,
            rate_limit_burst: 100,
            failed_auth_per_second: 5,
            failed_auth_burst: 20,
            login_starts_per_minute: 20,
            client_ip_header: String::new(),
            header_read_timeout_secs: 10,
            max_connections: 4096,
            max_connections_per_client: 256,
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    /// A secret for Prometheus: `/metrics` answers `Authorization: Bearer <token>`. An
    /// unlimited admin API key is accepted too. Without a token only admin keys are.
    pub token: String,
    /// Serve `/metrics` (without authentication) on this separate address instead, e.g.
    /// `127.0.0.1:9464` or an interface only the monitoring network reaches; the API
    /// port then answers 404 for `/metrics`.
    pub listen: Option<SocketAddr>,
}

/// Background work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Background {
    /// How often the in-memory index polls storage for other processes' writes, ms.
    pub sync_interval_ms: u64,
    /// How often the sweeper deletes expired data, ms.
    pub sweep_interval_ms: u64,
    /// How often pending verifications are decided and webhooks delivered, ms.
    pub work_interval_ms: u64,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            sync_interval_ms: 250,
            sweep_interval_ms: 10_000,
            work_interval_ms: 1_000,
        }
    }
}

/// The demo pages (`/demo/liveness`, `/demo/verify`) and their key-less backend routes.
/// Off by default: when on, anyone who reaches the server may create liveness sessions
/// and identity verifications that enrol faces into the `demo-verify` collection
/// (see `docs/security.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Demo {
    /// Serve the demo pages and their key-less routes (default false: every `/demo/`
    /// path answers 404).
    pub enabled: bool,
}

/// Everything `honnin serve` can be told. `Debug` hides passwords and tokens.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder for the SQLite database and the master key file.
    pub data_dir: PathBuf,
    /// Database URL; empty means SQLite at `<data_dir>/honnin.db`.
    /// `postgres://user@host/db` for deployments of several servers.
    pub database: String,
    /// Where the key vault (wrapped data keys) lives; empty means beside the SQLite
    /// database (`<data_dir>/honnin-keys.db`) or, on PostgreSQL, in the same database.
    /// A separate vault keeps database backups undecryptable on their own: see
    /// `docs/security.md`.
    pub key_store: String,
    /// Master key file; empty means `<data_dir>/master.key`. `HONNIN_MASTER_KEY`
    /// (base64 of 32 bytes) takes precedence over any file.
    pub master_key_file: String,
    /// Folder with the model files; empty means the built-in search (see the engine).
    pub model_dir: String,
    /// Request and connection limits (`[limits]`).
    pub limits: Limits,
    /// Intervals of the background work (`[background]`).
    pub background: Background,
    /// The service's own configuration (`[service]`: match thresholds, admission,
    /// liveness, verification and webhook policy; honnin-core's `ServiceConfig`).
    pub service: ServiceConfig,
    /// The demo pages (`[demo]`), off by default.
    pub demo: Demo,
    /// Who may read `/metrics`, and where (`[metrics]`).
    pub metrics: Metrics,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database",
                &honnin_storage::RedactedUrl::new(self.database.clone()),
            )
            .field(
                "key_store",
                &honnin_storage::RedactedUrl::new(self.key_store.clone()),
            )
            .field("master_key_file", &self.master_key_file)
            .field("model_dir", &self.model_dir)
            .field("limits", &self.limits)
            .field("background", &self.background)
            .field("service", &self.service)
            .field("demo", &self.demo)
            .field("metrics.listen", &self.metrics.listen)
            .field(
                "metrics.token",
                &(!self.metrics.token.is_empty()).then_some("***"),
            )
            .finish()
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("honnin-data"),
            database: String::new(),
            key_store: String::new(),
            master_key_file: String::new(),
            model_dir: String::new(),
            limits: Limits::default(),
            background: Background::default(),
            service: ServiceConfig::default(),
            demo: Demo::default(),
            metrics: Metrics::default(),
        }
    }
}

/// Environment variables under `HONNIN_` that are not configuration fields.
const NOT_CONFIG: &[&str] = &[
    "master_key",
    "log",
    "no_progress",
    "config",
    "require_data",
    "require_postgres",
    "data_dir_tests",
];

impl ServerConfig {
    /// Defaults, then `file` (if given; it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<ServerConfig, Box<figment::Error>> {
        let mut fig = Figment::from(Serialized::defaults(ServerConfig::default()));
        if let Some(f) = file {
            if !f.is_file() {
                return Err(Box::new(figment::Error::from(format!(
                    "config file {} does not exist",
                    f.display()
                ))));
            }
            fig = fig.merge(Toml::file(f));
        }
        let env = Env::prefixed("HONNIN_")
            .split("__")
            .filter(|k| !NOT_CONFIG.contains(&k.as_str().to_ascii_lowercase().as_str()));
        fig.merge(env).extract().map_err(Box::new)
    }

    /// The database URL actually used.
    pub fn database_url(&self) -> String {
        if self.database.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("honnin.db").display()
            )
        } else {
            self.database.clone()
        }
    }

    /// The master key file actually used.
    pub fn master_key_path(&self) -> PathBuf {
        if self.master_key_file.is_empty() {
            self.data_dir.join("master.key")
        } else {
            PathBuf::from(&self.master_key_file)
        }
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documentation() {
        let c = ServerConfig::default();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.data_dir, PathBuf::from("honnin-data"));
        assert!(c
            .database_url()
            .starts_with("sqlite://honnin-data/honnin.db"));
        assert_eq!(c.master_key_path(), PathBuf::from("honnin-data/master.key"));
    }

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "honnin.toml",
                "listen = \"0.0.0.0:9000\"\n[limits]\nrate_limit_per_second = 7\n[service]\nmatch_fmr = 1e-6\n",
            )?;
            jail.set_env("HONNIN_LIMITS__RATE_LIMIT_BURST", "3");
            jail.set_env("HONNIN_MASTER_KEY", "ignored-here");
            let c = ServerConfig::load(Some(Path::new("honnin.toml"))).map_err(|e| *e)?;
            assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
            assert_eq!(c.limits.rate_limit_per_second, 7);
            assert_eq!(c.limits.rate_limit_burst, 3);
            assert_eq!(c.service.match_fmr, 1e-6);
            assert_eq!(c.limits.max_body_bytes, Limits::default().max_body_bytes);
            Ok(())
        });
    }

    #[test]
    fn a_missing_file_or_a_bad_value_is_an_error() {
        assert!(ServerConfig::load(Some(Path::new("/nonexistent/honnin.toml"))).is_err());
        figment::Jail::expect_with(|jail| {
            jail.create_file("bad.toml", "listen = \"not an address\"\n")?;
            assert!(ServerConfig::load(Some(Path::new("bad.toml"))).is_err());
            Ok(())
        });
    }
}
