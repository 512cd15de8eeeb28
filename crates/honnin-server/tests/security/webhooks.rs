//! Webhooks: no way inside, and no tenant stalls another.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{code, receiver, Backend, Server};

use super::{id, poll};

/// Item 7: webhooks need an enroller or admin key, `https://`, and a destination that
/// is not internal (in any spelling) unless the operator allow-lists it; redirects are
/// not followed; a failed delivery reports a generic reason, never the transport's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_cannot_reach_inside() {
    // The defaults: https only, public destinations only.
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.webhooks = Default::default();
    })
    .await
    else {
        return;
    };
    let (inside, _) = receiver().await;
    let rec = s.key("recognizer", None).await;
    let enr = s.key("enroller", None).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(&rec),
            Some(json!({"url": "https://example.com/h"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{v}"
    );
    let port = inside
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    for url in [
        inside.clone(),
        format!("https://127.0.0.1:{port}/hook"),
        format!("https://localhost:{port}/hook"),
        format!("https://[::1]:{port}/hook"),
        format!("https://0x7f000001:{port}/hook"),
        format!("https://2130706433:{port}/hook"),
        format!("https://127.1:{port}/hook"),
        format!("https://[::ffff:127.0.0.1]:{port}/hook"),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://[fe80::1]/h".into(),
        "https://10.0.0.1/h".into(),
        "https://172.16.0.1/h".into(),
        "https://192.168.0.1/h".into(),
        "https://100.64.0.1/h".into(),
        "https://[fd00::1]/h".into(),
        "https://0.0.0.0/h".into(),
        "https://224.0.0.1/h".into(),
        "http://example.com/h".into(),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/webhooks",
                Some(&enr),
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{url}: {v}"
        );
    }
    let v = s
        .ok_as(
            &enr,
            "POST",
            "/v1/webhooks",
            Some(json!({"url": "https://example.com/hook"})),
        )
        .await;
    assert_eq!(
        v["url"], "https://example.com/hook",
        "a public https URL registers"
    );
    s.stop().await;

    // With the loopback network allow-listed (and plain http allowed), the same
    // receiver gets its events; a redirect is not followed; a dead port is reported
    // without the transport's words.
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 2;
        c.background.work_interval_ms = 100;
        c.service.webhooks.max_attempts = 1;
    })
    .await
    else {
        return;
    };
    let (good, seen) = receiver().await;
    let redirect = {
        let to = good.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                let to = to.clone();
                async move {
                    (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, to)],
                    )
                }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.ok() });
        url
    };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", l.local_addr().unwrap());
        drop(l);
        url
    };
    s.collection("hooks").await;
    let enr = s.key("enroller", None).await;
    let mut hooks = Vec::new();
    for url in [&good, &redirect, &dead] {
        let v = s
            .ok_as(&enr, "POST", "/v1/webhooks", Some(json!({"url": url})))
            .await;
        hooks.push(id(&v, "webhookId"));
    }
    s.ok_as(
        &enr,
        "POST",
        "/v1/verifications",
        Some(json!({"collectionId": "hooks", "externalUserId": "u"})),
    )
    .await;
    let mut outcome = Vec::new();
    for h in &hooks {
        let d = poll(&s, &enr, &format!("/v1/webhooks/{h}/deliveries"), 20, |v| {
            v[0]["status"] == "delivered" || v[0]["status"] == "failed"
        })
        .await;
        outcome.push((d[0]["status"].clone(), d[0]["lastError"].clone()));
    }
    assert_eq!(outcome[0].0, "delivered");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "the redirect was not followed to it"
    );
    assert_eq!(outcome[1], (json!("failed"), json!("HTTP 302")));
    assert_eq!(
        outcome[2],
        (
            json!("failed"),
            json!("no HTTP response (connection failed or timed out)")
        ),
        "generic: no `Connection refused`, no `os error`"
    );
    s.stop().await;
}

/// Item 8: ten black-hole receivers of tenant A delay neither tenant B's verification
/// decision (by more than 2 s) nor its delivery (by more than 5 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenants_slow_receivers_do_not_stall_another() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 2;
        c.background.work_interval_ms = 100;
    })
    .await
    else {
        return;
    };
    // Black holes: accept the connection, never answer.
    let mut holes = Vec::new();
    let mut held = Vec::new();
    for _ in 0..10 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        holes.push(format!("http://{}/hook", l.local_addr().unwrap()));
        held.push(tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((c, _)) = l.accept().await {
                open.push(c);
            }
        }));
    }
    for c in ["tenant-a", "tenant-b"] {
        s.collection(c).await;
    }
    let a = s.key("enroller", Some("tenant-a")).await;
    let b = s.key("enroller", Some("tenant-b")).await;
    for h in &holes {
        s.ok_as(&a, "POST", "/v1/webhooks", Some(json!({"url": h})))
            .await;
    }
    let (url, seen) = receiver().await;
    s.ok_as(&b, "POST", "/v1/webhooks", Some(json!({"url": url})))
        .await;
    // A's verifications expire first: 30 deliveries into the black holes.
    for i in 0..3 {
        s.ok_as(
            &a,
            "POST",
            "/v1/verifications",
            Some(json!({"collectionId": "tenant-a", "externalUserId": format!("a{i}")})),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let v = s
        .ok_as(
            &b,
            "POST",
            "/v1/verifications",
            Some(json!({"collectionId": "tenant-b", "externalUserId": "b0"})),
        )
        .await;
    let expires = Instant::now() + Duration::from_secs(2);
    let vid = id(&v, "verificationId");
    let decided = poll(&s, &b, &format!("/v1/verifications/{vid}"), 15, |v| {
        v["decision"].is_object()
    })
    .await;
    let decided_at = Instant::now();
    assert_eq!(
        decided["decision"]["reasons"],
        json!(["VerificationExpired"])
    );
    let decision_delay = decided_at.saturating_duration_since(expires);
    assert!(
        decision_delay <= Duration::from_secs(2),
        "B's decision came {decision_delay:?} after its expiry"
    );
    let until = Instant::now() + Duration::from_secs(10);
    let arrived = loop {
        if let Some(r) = seen.lock().unwrap().first() {
            break r.2;
        }
        assert!(Instant::now() < until, "B's event never arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery_delay = arrived.saturating_duration_since(decided_at);
    assert!(
        delivery_delay <= Duration::from_secs(5),
        "B's delivery came {delivery_delay:?} after its decision"
    );
    eprintln!("B: decided {decision_delay:?} after expiry, delivered {delivery_delay:?} after the decision, with A's 10 black holes");
    for h in held {
        h.abort();
    }
    s.stop().await;
}
