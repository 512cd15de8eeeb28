//! Webhooks: registration (on both backends), and the `verification.completed` events
//! of verifications decided `expired` reaching the customer's receiver, signed, after a
//! failed first attempt is retried (their own server: SQLite, short time limits).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::fixtures::{decided, id_card, put_document, start_verification};
use crate::common::{code, fixture, receiver, unique, Backend, Server};

/// An enroller key limited to a new collection (unique name), and the collection.
async fn enroller(s: &Server) -> (String, String) {
    let kyc = unique("kyc");
    let enroller = s.key("enroller", Some(&kyc)).await;
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": kyc})),
    )
    .await;
    (enroller, kyc)
}

/// Registers a webhook for `hook_url` as `enroller`: its answer.
async fn register(s: &Server, enroller: &str, hook_url: &str) -> Value {
    let (st, hook) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(enroller),
            Some(json!({"url": hook_url})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{hook}");
    hook
}

/// Webhooks need an allowed URL scheme, known events, at least one, and a secret of
/// the server's making.
async fn webhook_registration_refuses_bad_urls_events_and_secrets(s: &Server) {
    let (hook_url, _) = receiver().await;
    let (enroller, _) = enroller(s).await;
    for bad in [
        json!({"url": "ftp://example.com/x"}),
        json!({"url": hook_url, "events": ["face.deleted"]}),
        json!({"url": hook_url, "events": []}),
        json!({"url": hook_url, "secret": "mine"}),
    ] {
        let (st, v) = s
            .call("POST", "/v1/webhooks", Some(&enroller), Some(bad.clone()))
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{bad}: {v}"
        );
    }
}

/// The signing secret is shown once, at registration; the listing has no secret.
async fn a_webhook_secret_is_shown_once(s: &Server) {
    let (hook_url, _) = receiver().await;
    let (enroller, _) = enroller(s).await;
    let hook = register(s, &enroller, &hook_url).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook["webhookId"].as_str().unwrap().to_string();
    let listed = s.ok_as(&enroller, "GET", "/v1/webhooks", None).await;
    assert_eq!(listed[0]["webhookId"], hook_id.as_str());
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once: {listed}"
    );
}

/// Another key sees neither the webhook nor its deliveries.
async fn another_key_sees_no_webhook_deliveries(s: &Server) {
    let (hook_url, _) = receiver().await;
    let (enroller, _) = enroller(s).await;
    let hook = register(s, &enroller, &hook_url).await;
    let hook_id = hook["webhookId"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            "GET",
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            Some(&s.key("recognizer", None).await),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

both!(
    webhook_registration_refuses_bad_urls_events_and_secrets,
    a_webhook_secret_is_shown_once,
    another_key_sees_no_webhook_deliveries,
);

/// A server whose verifications expire after 3 s, whose background work runs every
/// 100 ms and whose first webhook retry comes after 300 ms.
async fn expiring() -> Option<Server> {
    Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 3;
        c.background.work_interval_ms = 100;
        c.service.webhooks.initial_backoff_ms = 300;
    })
    .await
}

/// One verification never streams its liveness, one never gets its document: (the
/// first, the second), once both are out of time. The card is made first: only the
/// document step itself must fit in the time limit.
async fn out_of_time(s: &Server, enroller: &str, kyc: &str) -> (String, String) {
    let card = id_card(&fixture("obama.jpg"));
    let (no_live, _, _) = start_verification(s, enroller, kyc, "erin", json!({})).await;
    let (st, v) = put_document(s, enroller, &no_live, &card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (no_doc, _, _) = start_verification(s, enroller, kyc, "dave", json!({})).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (st, v) = put_document(s, enroller, &no_doc, &card).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::GONE, "VerificationExpired"),
        "{v}"
    );
    (no_live, no_doc)
}

/// Out of time at either step, a verification is decided `expired` with its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_out_of_time_are_decided_expired() {
    let Some(s) = expiring().await else {
        return;
    };
    let (enroller, kyc) = enroller(&s).await;
    let (no_live, no_doc) = out_of_time(&s, &enroller, &kyc).await;
    let v = decided(&s, &enroller, &no_doc).await;
    assert_eq!(v["status"], "expired", "{v}");
    assert_eq!(v["decision"]["reasons"], json!(["VerificationExpired"]));
    let v = decided(&s, &enroller, &no_live).await;
    assert_eq!(v["status"], "expired", "{v}");
    assert_eq!(
        v["decision"]["reasons"],
        json!(["LivenessSessionExpired"]),
        "{v}"
    );
    s.stop().await;
}

/// The `verification.completed` events of expired verifications reach the customer's
/// webhook, signed, after a failed first attempt is retried; the webhook is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_events_reach_the_webhook_signed_and_retried() {
    let Some(s) = expiring().await else {
        return;
    };
    // The customer's receiver: 503 to the first request, 200 afterwards.
    type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;
    let seen: Seen = Arc::default();
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let mut v = seen.lock().unwrap();
                    v.push((headers, body));
                    if v.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                },
            ),
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });

    let (enroller, kyc) = enroller(&s).await;
    let hook = register(&s, &enroller, &hook_url).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let hook_id = hook["webhookId"].as_str().unwrap().to_string();
    let (no_live, no_doc) = out_of_time(&s, &enroller, &kyc).await;

    // Two events, the first tried twice: at least three requests, all signed.
    for _ in 0..100 {
        let ok = s
            .ok_as(
                &enroller,
                "GET",
                &format!("/v1/webhooks/{hook_id}/deliveries"),
                None,
            )
            .await;
        if ok
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["status"] == "delivered")
            .count()
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Read after both deliveries are recorded: each was received before its record.
    let got = seen.lock().unwrap().clone();
    assert!(got.len() >= 3, "{} requests", got.len());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut ids = std::collections::HashSet::new();
    for (h, body) in &got {
        let sig = h["honnin-signature"].to_str().unwrap();
        assert!(
            honnin_core::webhooks::verify_signature(secret.as_bytes(), sig, body, now, 300),
            "bad signature {sig}"
        );
        assert!(!honnin_core::webhooks::verify_signature(
            b"whsec_other",
            sig,
            body,
            now,
            300
        ));
        assert_eq!(h["honnin-event"], "verification.completed");
        let e: Value = serde_json::from_str(body).unwrap();
        assert_eq!(e["event"], "verification.completed");
        assert_eq!(e["status"], "expired");
        assert!(
            [no_doc.as_str(), no_live.as_str()].contains(&e["verificationId"].as_str().unwrap())
        );
        ids.insert(e["verificationId"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 2, "both verifications were announced");
    let first = &got[0].0["honnin-delivery"];
    assert!(
        got[1..].iter().any(|(h, _)| h["honnin-delivery"] == first),
        "the delivery answered 503 was retried"
    );
    let d = s
        .ok_as(
            &enroller,
            "GET",
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            None,
        )
        .await;
    let attempts: Vec<i64> = d
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["attempts"].as_i64().unwrap())
        .collect();
    assert!(attempts.contains(&2), "{d}");
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/webhooks/{hook_id}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    s.stop().await;
}
