//! Security regression tests (issue 12): every fault the audit found, as a test that
//! fails on the code before the fix. All traffic stays on 127.0.0.1; webhook receivers
//! are loopback listeners allow-listed in each test's configuration. Each test starts
//! its own server (its configuration differs, or it needs the whole server: counters,
//! listings, database files), so each runs alone or beside the others.
//!
//! * `matrix::role_scope_route_matrix_*`: every route in `/openapi.json` × every key
//!   kind (admin, enroller, recognizer; unlimited or limited to a collection) × targets
//!   in and out of the key's reach, on SQLite and PostgreSQL (items 1, 2, 3).
//! * the other tests: one per item, named after the behaviour they check, grouped by
//!   domain: `access` (keys, scopes, page tokens, ids), `webhooks`, `erasure`,
//!   `limits` (bounded work, the demo, metrics).

#[path = "../common/mod.rs"]
mod common;

mod access;
mod erasure;
mod limits;
mod matrix;
mod webhooks;

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use common::Server;

// ---------------------------------------------------------------- helpers

pub fn id(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .to_string()
}

/// Polls `GET path` as `key` until `done` holds (at most `secs`).
pub async fn poll(
    s: &Server,
    key: &str,
    path: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let (st, v) = s.call("GET", path, Some(key), None).await;
        if st.is_success() && done(&v) {
            return v;
        }
        assert!(Instant::now() < until, "{path}: still {st} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn b64url_decode(t: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t)
        .unwrap_or_default()
}
