//! Limits with their own server (SQLite, the configuration changed): the sweeper of
//! expired transient faces, the per-key rate limit.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{b64, code, fixture, Backend, Server};

/// Transient face ids expire; the sweeper deletes them and is seen in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweeper_deletes_expired_transient_faces() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.face_id_ttl_min_secs = 1;
        c.background.sweep_interval_ms = 200;
    })
    .await
    else {
        return;
    };
    let v = s
        .ok("POST", "/v1/detect", Some(json!({"image": b64(&fixture("obama.jpg")), "returnFaceId": true, "faceIdTimeToLive": 2})))
        .await;
    let a = v["faceDetails"][0]["faceId"].as_str().unwrap().to_string();
    let v = s
        .ok("POST", "/v1/detect", Some(json!({"image": b64(&fixture("obama2.jpg")), "returnFaceId": true, "faceIdTimeToLive": 3600})))
        .await;
    let b = v["faceDetails"][0]["faceId"].as_str().unwrap().to_string();
    assert_eq!(s.service.store().count_transient().await.unwrap(), 2);
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": a, "faceId2": b})),
        )
        .await;
    assert_eq!(v["isIdentical"], true, "usable before it expires");
    // Expired after 2 s; the sweeper (every 200 ms) deletes it: polled up to 8 s so a
    // busy machine cannot fail it.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let mut left = 0;
    for _ in 0..60 {
        left = s.service.store().count_transient().await.unwrap();
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, 1, "the sweeper deleted the expired row");
    let (st, v) = s
        .call(
            "POST",
            "/v1/verify",
            Some(&s.admin),
            Some(json!({"faceId": a, "faceId2": b})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "ResourceNotFound"));
    let m = s
        .http
        .get(format!("{}/metrics", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("honnin_sweeper_runs_total"), "{m}");
    assert!(
        m.contains(
            "honnin_http_requests_total{route=\"/v1/verify\",method=\"POST\",status=\"404\"}"
        ),
        "{m}"
    );
    assert!(m.contains("honnin_templates_in_memory"));
    s.stop().await;
}

/// A server whose keys may make 1 request a second, 3 in a burst.
async fn rate_limited() -> Option<Server> {
    Server::start(Backend::Sqlite, |c| {
        c.limits.rate_limit_per_second = 1;
        c.limits.rate_limit_burst = 3;
    })
    .await
}

/// Six requests at once as the admin: the statuses, and the last `Retry-After`.
async fn six_requests(s: &Server) -> (Vec<u16>, Option<u64>) {
    let mut statuses = Vec::new();
    let mut retry = None;
    for _ in 0..6 {
        let (st, h, v) = s
            .call_full("GET", "/v1/collections", Some(&s.admin.clone()), None)
            .await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(code(&v), "Throttling");
            retry = h
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(st.as_u16());
    }
    (statuses, retry)
}

/// After the burst a key gets 429 `Throttling` with `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let Some(s) = rate_limited().await else {
        return;
    };
    let (statuses, retry) = six_requests(&s).await;
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(
        retry.is_some_and(|r| (1..=2).contains(&r)),
        "Retry-After {retry:?}"
    );
    s.stop().await;
}

/// Health needs no key; neither health nor metrics (read with an admin key) is limited
/// by the key's rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_are_not_limited_by_the_key_rate() {
    let Some(s) = rate_limited().await else {
        return;
    };
    let (statuses, _) = six_requests(&s).await;
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    for p in ["/healthz", "/readyz"] {
        let res = s.http.get(format!("{}{p}", s.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{p}");
    }
    let res = s
        .http
        .get(format!("{}/metrics", s.base))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "/metrics");
    s.stop().await;
}
