//! What the API test binaries share: an in-process server on a free port with a fresh
//! database (SQLite in a temporary folder, or a fresh PostgreSQL database:
//! `HONNIN_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`;
//! skipped with a message when it is unreachable, unless `HONNIN_REQUIRE_POSTGRES` is
//! set, as in CI), and small request helpers. All traffic stays on 127.0.0.1.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

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
    pg: Option<TestDatabase>,
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
        // (tests/security.rs).
        cfg.limits.failed_auth_per_second = 10_000;
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
            pg,
        })
    }

    pub async fn stop(self) {
        if let Some(pg) = self.pg {
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
        } else if path == "/metrics" && status.is_success() {
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
