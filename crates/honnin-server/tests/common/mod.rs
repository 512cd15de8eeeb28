//! What the API test binaries share: an in-process server on a free port with a fresh
//! database (SQLite in a temporary folder, or a fresh PostgreSQL database:
//! `HONNIN_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! skipped with a message when it is unreachable, unless `HONNIN_REQUIRE_POSTGRES` is
//! set, as in CI), and small request helpers. All traffic stays on 127.0.0.1.
//!
//! Two ways to get a server: `Server::start` (its own server and database, for a test
//! that changes the configuration or needs the whole server to itself), or `both!`
//! (tests/api/main.rs) / `on_shared`: the binary's shared server of each backend,
//! started once on the binary's runtime, where tests keep apart by unique names
//! (`unique`) and their own keys. `fixtures` holds the domain set-ups (cards,
//! verifications, liveness streams) small tests build their state with.
#![allow(dead_code)]

pub mod fixtures;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use honnin_core::crypto::DataKey;
use honnin_core::Service;
use honnin_engine::{Engine, EngineConfig};
use honnin_server::{AppState, ServerConfig};
use honnin_storage::testing::{fresh_postgres_database, TestDatabase};
use honnin_storage::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};

pub fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::new(EngineConfig::default()).expect("models load")))
        .clone()
}

pub fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn b64(bytes: &[u8]) -> Value {
    json!({ "bytes": base64::engine::general_purpose::STANDARD.encode(bytes) })
}

/// A blank image with no face.
pub fn blank_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(320, 240, image::Rgb([128, 140, 150]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Server {
    pub base: String,
    pub admin: String,
    pub http: reqwest::Client,
    pub service: Arc<Service>,
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pg: Mutex<Option<TestDatabase>>,
}

impl Server {
    /// Starts a server; `None` when the backend is unavailable (PostgreSQL skipped).
    pub async fn start(backend: Backend, tweak: impl FnOnce(&mut ServerConfig)) -> Option<Server> {
        let dir = tempfile::tempdir().unwrap();
        let (url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = fresh_postgres_database("api").await?;
                (db.url.clone(), Some(db))
            }
        };
        let mut cfg = ServerConfig::default();
        cfg.background.sync_interval_ms = 100;
        cfg.background.sweep_interval_ms = 200;
        // Webhook receivers in tests are loopback listeners: allow-listed, and nothing
        // else is reachable.
        cfg.service.webhooks.allow_http = true;
        cfg.service.webhooks.allow_public = false;
        cfg.service.webhooks.allowed_networks = vec!["127.0.0.0/8".into()];
        // The suite sends hundreds of unauthenticated requests on purpose (every route
        // without a key); the failed-authentication limit has its own tests
        // (tests/security/access.rs).
        cfg.limits.failed_auth_per_second = 10_000;
        // Face logins started through the OpenID Connect provider, all from 127.0.0.1
        // (the limit has its own test in tests/api/login_lifetimes.rs).
        cfg.limits.login_starts_per_minute = 10_000;
        cfg.limits.failed_auth_burst = 10_000;
        tweak(&mut cfg);
        let store = Store::open(&url).await.unwrap();
        let service = Service::open(
            cfg.service.clone(),
            engine(),
            store.clone(),
            DataKey::generate(),
        )
        .await
        .unwrap();
        let admin = honnin_core::keys::create(
            &store,
            &honnin_core::Principal::system(),
            honnin_core::Role::Admin,
            None,
            "t",
        )
        .await
        .unwrap()
        .token;
        let state = AppState::new(service.clone(), cfg);
        honnin_server::spawn_background(&state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            honnin_server::serve(listener, state, std::future::pending())
                .await
                .ok();
        });
        Some(Server {
            base: format!("http://{addr}"),
            admin,
            http: reqwest::Client::new(),
            service,
            dir,
            backend,
            pg: Mutex::new(pg),
        })
    }

    pub async fn stop(self) {
        if let Some(pg) = self.pg.into_inner().unwrap() {
            self.service.store().close().await;
            pg.drop().await;
        }
    }

    /// Sends a request; returns status, headers and JSON body (Null when empty).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (s, _, v) = self.call_full(method, path, key, body).await;
        (s, v)
    }

    pub async fn call_full(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else if (path == "/metrics" && status.is_success())
            || (path.starts_with("/oidc/")
                && headers
                    .get("content-type")
                    .is_some_and(|t| t.as_bytes().starts_with(b"text/html")))
        {
            // Metrics text; the OpenID Connect provider's pages.
            Value::String(text)
        } else {
            // Every error is JSON; so is every other answer.
            serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {text}"))
        };
        // No 5xx, except admission control's documented 503.
        assert!(
            !status.is_server_error()
                || (status == StatusCode::SERVICE_UNAVAILABLE && v["code"] == "ServiceUnavailable"),
            "{method} {path} answered {status}: {v}"
        );
        (status, headers, v)
    }

    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self
            .call(method, path, Some(&self.admin.clone()), body)
            .await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    pub async fn ok_as(&self, key: &str, method: &str, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.call(method, path, Some(key), body).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    pub async fn key(&self, role: &str, collection: Option<&str>) -> String {
        let v = self
            .ok(
                "POST",
                "/v1/keys",
                Some(json!({ "role": role, "collectionId": collection, "name": role })),
            )
            .await;
        v["token"].as_str().unwrap().to_string()
    }
}

pub fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

/// The key id of a token (`hn_<key id>_<secret>`).
pub fn key_id(token: &str) -> String {
    token
        .strip_prefix("hn_")
        .and_then(|r| r.split_once('_'))
        .map(|(id, _)| id.to_string())
        .unwrap_or_default()
}

/// A loopback receiver for webhooks: records (headers, body, when) and answers 200.
pub type Received = Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String, std::time::Instant)>>>;

/// Starts a receiver on 127.0.0.1; returns its URL (`http://127.0.0.1:<port>/hook`) and
/// what it receives.
pub async fn receiver() -> (String, Received) {
    let seen: Received = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(seen): axum::extract::State<Received>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    seen.lock()
                        .unwrap()
                        .push((headers, body, std::time::Instant::now()));
                    axum::http::StatusCode::OK
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    (url, seen)
}

impl Server {
    /// Creates a collection (as the admin).
    pub async fn collection(&self, id: &str) {
        self.ok(
            "POST",
            "/v1/collections",
            Some(json!({ "collectionId": id })),
        )
        .await;
    }

    /// Indexes a fixture's faces into `collection` (as the admin); the first face's id.
    pub async fn index(&self, collection: &str, fixture_name: &str) -> String {
        let v = self
            .ok(
                "POST",
                &format!("/v1/collections/{collection}/faces"),
                Some(json!({ "image": b64(&fixture(fixture_name)) })),
            )
            .await;
        v["faceRecords"][0]["face"]["faceId"]
            .as_str()
            .unwrap_or_else(|| panic!("no face indexed from {fixture_name}: {v}"))
            .to_string()
    }
}

// ---------------------------------------------------------------- the shared servers

/// The runtime every shared-server test of a binary runs on: the shared servers, their
/// database pools and HTTP clients live on it, so no test's runtime ends under them.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("a test runtime")
    })
}

static SHARED_SQLITE: tokio::sync::OnceCell<Option<Server>> = tokio::sync::OnceCell::const_new();
static SHARED_POSTGRES: tokio::sync::OnceCell<Option<Server>> = tokio::sync::OnceCell::const_new();

/// The binary's shared server of `backend` (default configuration), started by the
/// first test that asks; `None` when the backend is unavailable (PostgreSQL skipped).
/// Must be called on `runtime()`.
pub async fn shared(backend: Backend) -> Option<&'static Server> {
    let cell = match backend {
        Backend::Sqlite => &SHARED_SQLITE,
        Backend::Postgres => &SHARED_POSTGRES,
    };
    cell.get_or_init(|| async move {
        clean_up_at_exit();
        Server::start(backend, |_| {}).await
    })
    .await
    .as_ref()
}

/// Runs one test on the binary's shared server of `backend` (what `both!` expands to).
pub fn on_shared<F, Fut>(backend: Backend, test: F)
where
    F: FnOnce(&'static Server) -> Fut,
    Fut: Future<Output = ()>,
{
    runtime().block_on(async move {
        match shared(backend).await {
            Some(s) => test(s).await,
            None => eprintln!("SKIPPED: {backend:?} unavailable"),
        }
    })
}

/// State built once per shared server and only read by the tests that share it (a
/// test that changes state builds its own): one cell per backend.
pub type PerBackend<T> = [tokio::sync::OnceCell<T>; 2];

/// The state of `cells` for `s`'s backend, built by `init` for the first test that asks.
pub async fn per_backend<T, Fut>(
    cells: &'static PerBackend<T>,
    s: &Server,
    init: impl FnOnce() -> Fut,
) -> &'static T
where
    Fut: Future<Output = T>,
{
    cells[s.backend as usize].get_or_init(init).await
}

/// A name no other test of this process uses (`prefix-<n>`): collections, users and
/// devices on a shared server.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Statics are never dropped: the shared servers' PostgreSQL databases and SQLite
/// folders are removed when the process exits (`atexit`, on a thread of its own with
/// its own runtime, since the test harness has finished with everything else).
fn clean_up_at_exit() {
    extern "C" {
        fn atexit(f: extern "C" fn()) -> std::os::raw::c_int;
    }
    extern "C" fn clean_up() {
        let servers: Vec<&'static Server> = [&SHARED_SQLITE, &SHARED_POSTGRES]
            .into_iter()
            .filter_map(|c| c.get().and_then(Option::as_ref))
            .collect();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            for s in servers {
                let pg = s.pg.lock().ok().and_then(|mut pg| pg.take());
                if let Some(pg) = pg {
                    rt.block_on(pg.drop());
                }
                let _ = std::fs::remove_dir_all(s.dir.path());
            }
        })
        .join();
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: `atexit` is the C library's; `clean_up` never unwinds across it (it
    // catches nothing but does all its work on a joined thread).
    ONCE.call_once(|| unsafe {
        atexit(clean_up);
    });
}
