//! Liveness limits with their own server (SQLite; sessions live 1 s, results 3 s, two
//! sessions per device an hour, the demo on): the per-device limit, expiry and the
//! sweeper, the demo backend.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{code, Backend, Server};

async fn limited_server() -> Option<Server> {
    Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 1;
        c.service.liveness.results_retention_secs = 3;
        c.service.liveness.max_sessions_per_device_per_hour = 2;
        c.background.sweep_interval_ms = 200;
        c.demo.enabled = true;
    })
    .await
}

/// Per-device limit, across keys: a recognizer key and the admin create two sessions
/// for `phone-7`, the third is throttled. Returns the key and the two (id, token).
async fn two_sessions_of_one_device(s: &Server) -> (String, Vec<(String, String)>) {
    let rec = s.key("recognizer", None).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let key = if i == 0 { rec.clone() } else { s.admin.clone() };
        let (st, h, v) = s
            .call_full(
                "POST",
                "/v1/liveness/sessions",
                Some(&key),
                Some(json!({"deviceCorrelationId": "phone-7"})),
            )
            .await;
        if i < 2 {
            assert_eq!(st, StatusCode::OK, "{v}");
            ids.push((
                v["sessionId"].as_str().unwrap().to_string(),
                v["clientToken"].as_str().unwrap().to_string(),
            ));
        } else {
            assert_eq!(
                (st, code(&v)),
                (StatusCode::TOO_MANY_REQUESTS, "Throttling"),
                "{v}"
            );
            assert!(h.get("retry-after").is_some());
        }
    }
    (rec, ids)
}

/// Sessions are limited per device across keys (429 with `Retry-After`); another
/// device is not limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_sessions_are_limited_per_device_across_keys() {
    let Some(s) = limited_server().await else {
        return;
    };
    let (rec, _) = two_sessions_of_one_device(&s).await;
    let (st, _) = s
        .call(
            "POST",
            "/v1/liveness/sessions",
            Some(&rec),
            Some(json!({"deviceCorrelationId": "phone-8"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "another device is not limited");
    s.stop().await;
}

/// Expiry: after the TTL the stream is refused, the status reads EXPIRED, and the
/// sweeper records it; after the retention the row is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_refuses_its_stream_and_is_swept() {
    let Some(s) = limited_server().await else {
        return;
    };
    let (rec, ids) = two_sessions_of_one_device(&s).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (id, token) = &ids[0];
    assert_eq!(
        s.open_stream(id, token)
            .await
            .err()
            .map(|e| (e.0, code(&e.1).to_string())),
        Some((410, "SessionExpired".into()))
    );
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!(v["status"], "EXPIRED", "{v}");
    assert_eq!(v["reasons"][0]["code"], "SessionExpired");
    // The sweeper runs every 200 ms: polled (up to 5 s) rather than timed, so a busy
    // machine cannot fail it.
    let mut status = String::new();
    for _ in 0..50 {
        status = s
            .service
            .store()
            .get_liveness(id)
            .await
            .unwrap()
            .unwrap()
            .status
            .to_string();
        if status == "EXPIRED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "EXPIRED", "the sweeper marked it");
    // After the retention (3 s from creation) the row goes.
    let mut gone = false;
    for _ in 0..80 {
        gone = s.service.store().get_liveness(id).await.unwrap().is_none();
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "retention over: deleted");
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    s.stop().await;
}

/// The demo backend works without a key when enabled, and sees only its own sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_enabled_demo_sees_only_its_own_sessions() {
    let Some(s) = limited_server().await else {
        return;
    };
    let (_, ids) = two_sessions_of_one_device(&s).await;
    let (st, v) = s
        .call(
            "POST",
            "/demo/api/liveness-sessions",
            None,
            Some(json!({"auditImagesLimit": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let demo_id = v["sessionId"].as_str().unwrap().to_string();
    let (st, v) = s
        .call(
            "GET",
            &format!("/demo/api/liveness-sessions/{demo_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("CREATED"))
    );
    let (st, _) = s
        .call(
            "GET",
            &format!("/demo/api/liveness-sessions/{}", ids[1].0),
            None,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "not the demo's session");
    let res = s
        .http
        .get(format!("{}/demo/liveness", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("honnin-liveness"));
    s.stop().await;
}
