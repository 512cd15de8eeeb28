//! Face login over time, on servers of their own: signing keys rotate with overlap,
//! attempt records expire, and events reach the webhooks of the collection's managers.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::fixtures::live_session;
use crate::common::{fixture, receiver, unique, Backend, Server};

/// A collection with obama enrolled; its (enroller, recognizer) keys.
async fn enrolled(s: &Server) -> (String, String, String) {
    let c = unique("login");
    s.collection(&c).await;
    let enroller = s.key("enroller", Some(&c)).await;
    let recognizer = s.key("recognizer", Some(&c)).await;
    let session = live_session(s, &enroller, &fixture("obama.jpg"), 95.0).await;
    s.ok_as(
        &enroller,
        "PUT",
        &format!("/v1/collections/{c}/users/obama/profile"),
        Some(json!({"livenessSessionId": session})),
    )
    .await;
    (c, enroller, recognizer)
}

async fn login(s: &Server, c: &str, key: &str, photo: &str, user: &str) -> Value {
    let session = live_session(s, key, &fixture(photo), 95.0).await;
    s.ok_as(
        key,
        "POST",
        &format!("/v1/collections/{c}/logins"),
        Some(json!({"livenessSessionId": session, "userId": user, "audience": "app"})),
    )
    .await
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

/// A key signs for `key_rotation_secs`; the next signature makes a new key, and the old
/// one stays published, so assertions of both verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_and_the_old_key_stays_published() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.login.key_rotation_secs = 1;
    })
    .await
    else {
        return;
    };
    let (c, _, rec) = enrolled(&s).await;
    let first = login(&s, &c, &rec, "obama2.jpg", "obama").await;
    let second = login(&s, &c, &rec, "obama2.jpg", "obama").await;
    let (a, b) = (
        first["assertion"].as_str().unwrap().to_string(),
        second["assertion"].as_str().unwrap().to_string(),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = login(&s, &c, &rec, "obama2.jpg", "obama").await;
    let t = third["assertion"].as_str().unwrap().to_string();
    assert_eq!(kid(&a), kid(&b), "one key within its period");
    assert_ne!(kid(&a), kid(&t), "a new key after it");
    let (_, jwks) = s.call("GET", "/.well-known/jwks.json", None, None).await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{jwks}");
    assert_eq!(keys[0]["kid"], kid(&t).as_str(), "newest first");
    for jwt in [&a, &t] {
        let k = keys.iter().find(|k| k["kid"] == kid(jwt).as_str()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            k["x"].as_str().unwrap(),
            k["y"].as_str().unwrap(),
        )
        .unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_audience(&["app"]);
        jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap();
    }
    // The private keys are sealed: no PKCS#8 header in the table.
    let rows = s.service.store().signing_keys(0).await.unwrap();
    assert!(rows
        .iter()
        .all(|r| !r.private_key.windows(3).any(|w| w == [0x30, 0x81, 0x87])));
    s.stop().await;
}

/// Attempt records are deleted after `attempts_retention_secs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempt_records_expire() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.login.attempts_retention_secs = 1;
    })
    .await
    else {
        return;
    };
    let (c, enroller, rec) = enrolled(&s).await;
    login(&s, &c, &rec, "obama2.jpg", "obama").await;
    let list = format!("/v1/collections/{c}/logins");
    let v = s.ok_as(&enroller, "GET", &list, None).await;
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // This sweep, or the server's own background sweep before it, deletes it.
    s.service.sweep_once().await.unwrap();
    let v = s.ok_as(&enroller, "GET", &list, None).await;
    assert!(v["attempts"].as_array().unwrap().is_empty(), "{v}");
    s.stop().await;
}

/// Profile and login events reach the webhook of the collection's enroller, although
/// the logins are made with a recognizer key; a lock-out emits `login.locked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_events_reach_the_collection_managers_webhook() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.background.work_interval_ms = 100;
        c.service.login.max_failures = 2;
    })
    .await
    else {
        return;
    };
    let c = unique("login");
    s.collection(&c).await;
    let enroller = s.key("enroller", Some(&c)).await;
    let rec = s.key("recognizer", Some(&c)).await;
    let (url, seen) = receiver().await;
    s.ok_as(&enroller, "POST", "/v1/webhooks", Some(json!({"url": url})))
        .await;
    // Another collection's enroller hears nothing of it.
    let other = unique("login");
    s.collection(&other).await;
    let stranger = s.key("enroller", Some(&other)).await;
    let (other_url, other_seen) = receiver().await;
    s.ok_as(
        &stranger,
        "POST",
        "/v1/webhooks",
        Some(json!({"url": other_url})),
    )
    .await;

    let session = live_session(&s, &enroller, &fixture("obama.jpg"), 95.0).await;
    let profile = format!("/v1/collections/{c}/users/obama/profile");
    s.ok_as(
        &enroller,
        "PUT",
        &profile,
        Some(json!({"livenessSessionId": session})),
    )
    .await;
    login(&s, &c, &rec, "obama2.jpg", "obama").await;
    login(&s, &c, &rec, "biden.jpg", "obama").await;
    login(&s, &c, &rec, "biden.jpg", "obama").await;
    let (st, _) = s.call("DELETE", &profile, Some(&enroller), None).await;
    assert_eq!(st.as_u16(), 204);
    let want = [
        "profile.enrolled",
        "login.succeeded",
        "login.failed",
        "login.failed",
        "login.locked",
        "profile.deleted",
    ];
    let mut events: Vec<String> = Vec::new();
    for _ in 0..100 {
        events = seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, body, _)| {
                serde_json::from_str::<Value>(body).unwrap()["event"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        if events.len() >= want.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    events.sort();
    let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(events, want);
    let bodies: Vec<Value> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b, _)| serde_json::from_str(b).unwrap())
        .collect();
    let locked = bodies
        .iter()
        .find(|b| b["event"] == "login.locked")
        .unwrap();
    assert_eq!(locked["subject"], "user:obama");
    let ok = bodies
        .iter()
        .find(|b| b["event"] == "login.succeeded")
        .unwrap();
    assert_eq!(ok["login"]["userId"], "obama");
    assert!(
        !ok.to_string().contains("assertion"),
        "no assertion in an event: {ok}"
    );
    assert!(other_seen.lock().unwrap().is_empty());
    s.stop().await;
}

/// A liveness session finished longer than `login.max_session_age_secs` ago is not
/// fresh: 410 `SessionExpired`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_older_than_the_max_age_is_refused() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.login.max_session_age_secs = 1;
    })
    .await
    else {
        return;
    };
    let (c, _, rec) = enrolled(&s).await;
    let session = live_session(&s, &rec, &fixture("obama2.jpg"), 95.0).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/collections/{c}/logins"),
            Some(&rec),
            Some(json!({"livenessSessionId": session, "userId": "obama"})),
        )
        .await;
    assert_eq!(st.as_u16(), 410, "{v}");
    assert_eq!(v["code"], "SessionExpired");
    s.stop().await;
}

/// Anonymous login starts are limited per address, and without `login.issuer` the
/// provider works only on a loopback host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_starts_are_limited_and_the_issuer_is_not_taken_from_any_host() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.limits.login_starts_per_minute = 2;
    })
    .await
    else {
        return;
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}/oidc/authorize?client_id=nope", s.base);
    for _ in 0..2 {
        assert_eq!(http.get(&url).send().await.unwrap().status().as_u16(), 400);
    }
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().get("retry-after").is_some());
    // Another Host: no issuer can be trusted from it.
    let r = http
        .get(format!("{}/.well-known/openid-configuration", s.base))
        .header("host", "login.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "temporarily_unavailable");
    s.stop().await;
    // With login.issuer, that is the issuer whatever the Host.
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.login.issuer = "https://login.example.com/".into();
    })
    .await
    else {
        return;
    };
    let r = http
        .get(format!("{}/.well-known/openid-configuration", s.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["issuer"], "https://login.example.com");
    assert_eq!(v["token_endpoint"], "https://login.example.com/oidc/token");
    s.stop().await;
}
