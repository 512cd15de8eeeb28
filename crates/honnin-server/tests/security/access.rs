//! Keys and what they reach: page tokens, a recreated collection, revocation,
//! failed authentication, key names, ids in any UUID spelling, the webhooks an admin
//! oversees.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{b64, code, fixture, key_id, receiver, Backend, Server};

use super::{b64url_decode, id};

/// Item 2: a limited key's listing is filtered before paging; every `nextToken` is
/// opaque (no collection, face or user id can be read from it), bound to its listing,
/// and forged or moved tokens are refused with 400 `InvalidParameter`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_tokens_are_opaque_bound_and_filtered_before_paging() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    for c in ["aaa-tenant-b", "mid-tenant-a", "zzz-tenant-c"] {
        s.collection(c).await;
    }
    let limited = s.key("recognizer", Some("mid-tenant-a")).await;
    // The audit's request: one collection per page, as a limited key.
    let v = s
        .ok_as(&limited, "GET", "/v1/collections?maxResults=1", None)
        .await;
    assert_eq!(v["collections"][0]["collectionId"], "mid-tenant-a", "{v}");
    assert_eq!(v["collections"].as_array().unwrap().len(), 1);
    if let Some(t) = v["nextToken"].as_str() {
        let raw = b64url_decode(t);
        for name in ["aaa-tenant-b", "zzz-tenant-c", "mid-tenant-a"] {
            assert!(
                !raw.windows(name.len()).any(|w| w == name.as_bytes()),
                "the token shows `{name}`"
            );
        }
        let v = s
            .ok_as(
                &limited,
                "GET",
                &format!("/v1/collections?maxResults=1&nextToken={t}"),
                None,
            )
            .await;
        assert!(v["collections"].as_array().unwrap().is_empty(), "{v}");
    }
    // The unlimited admin pages through everything; its tokens are opaque too.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut admin_token = String::new();
    loop {
        let q = match &token {
            Some(t) => format!("/v1/collections?maxResults=1&nextToken={t}"),
            None => "/v1/collections?maxResults=1".into(),
        };
        let v = s.ok("GET", &q, None).await;
        for c in v["collections"].as_array().unwrap() {
            seen.push(c["collectionId"].as_str().unwrap().to_string());
        }
        match v["nextToken"].as_str() {
            Some(t) => {
                let raw = b64url_decode(t);
                // Whole ids (12 bytes), so that a random ciphertext cannot show one
                // by chance (3-byte windows did, once in CI).
                for name in ["aaa-tenant-b", "mid-tenant-a", "zzz-tenant-c"] {
                    assert!(
                        !raw.windows(name.len()).any(|w| w == name.as_bytes()),
                        "the token shows `{name}`"
                    );
                }
                admin_token = t.to_string();
                token = Some(t.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, ["aaa-tenant-b", "mid-tenant-a", "zzz-tenant-c"]);
    // What the token used to be (the base64 of an id), garbage, and a token moved to
    // another caller's listing: all refused.
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("aaa-tenant-b");
    for (key, t) in [
        (s.admin.clone(), forged.as_str()),
        (s.admin.clone(), "not-a-token"),
        (limited.clone(), admin_token.as_str()),
    ] {
        let (st, v) = s
            .call(
                "GET",
                &format!("/v1/collections?nextToken={t}"),
                Some(&key),
                None,
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{t}: {v}"
        );
    }
    // Face and user listings: a token of one collection does not page another.
    for c in ["mid-tenant-a", "zzz-tenant-c"] {
        s.ok(
            "POST",
            &format!("/v1/collections/{c}/faces"),
            Some(json!({"image": b64(&fixture("t1.jpg"))})),
        )
        .await;
    }
    let v = s
        .ok(
            "GET",
            "/v1/collections/mid-tenant-a/faces?maxResults=1",
            None,
        )
        .await;
    let t = v["nextToken"].as_str().unwrap().to_string();
    let first = v["faces"][0]["faceId"].as_str().unwrap();
    assert!(!String::from_utf8_lossy(&b64url_decode(&t)).contains(first));
    let v = s
        .ok(
            "GET",
            &format!("/v1/collections/mid-tenant-a/faces?maxResults=1&nextToken={t}"),
            None,
        )
        .await;
    assert_ne!(
        v["faces"][0]["faceId"].as_str().unwrap(),
        first,
        "the next page"
    );
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/collections/zzz-tenant-c/faces?nextToken={t}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter")
    );
    s.stop().await;
}

/// Item 3: a key limited to `kyc` is bound to that collection's identity. Deleting
/// `kyc` revokes it, and even a key still bound to the old identity (not revoked)
/// reaches nothing in a new `kyc`. A key made before its collection existed is bound on
/// first use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_key_never_reaches_a_recreated_collection() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    // Made before `kyc` exists: it may create it, and is bound to it.
    let early = s.key("enroller", Some("kyc")).await;
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&early),
            Some(json!({"collectionId": "kyc"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let late = s.key("recognizer", Some("kyc")).await;
    for k in [&early, &late] {
        s.ok_as(k, "GET", "/v1/collections/kyc", None).await;
    }
    let old_uid = s
        .service
        .store()
        .get_collection("kyc")
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    s.ok("DELETE", "/v1/collections/kyc", None).await;
    // A key bound to the old identity that survived the deletion (as if the
    // revocation had not reached it): inserted directly, after it.
    let secret = "survivor-secret-0123456789";
    let survivor = format!("hn_00000000000000aa_{secret}");
    {
        use sha2::Digest;
        s.service
            .store()
            .insert_key(&honnin_storage::KeyRow {
                key_id: "00000000000000aa".into(),
                secret_hash: sha2::Sha256::digest(secret.as_bytes()).to_vec(),
                role: "enroller".into(),
                collection_id: Some("kyc".into()),
                name: "survivor".into(),
                created_ms: 1,
                revoked_ms: None,
                scope_uid: Some(old_uid.clone()),
            })
            .await
            .unwrap();
    }
    s.collection("kyc").await;
    for k in [&early, &late] {
        let (st, v) = s.call("GET", "/v1/collections/kyc", Some(k), None).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::UNAUTHORIZED, "Unauthenticated"),
            "keys bound to a deleted collection are revoked with it: {v}"
        );
    }
    let keys = s.ok("GET", "/v1/keys", None).await;
    for k in [&early, &late] {
        let row = keys
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["keyId"] == key_id(k).as_str())
            .unwrap();
        assert!(row["revokedAt"].is_string(), "{row}");
    }
    for (m, p, b) in [
        ("GET", "/v1/collections/kyc", None),
        ("GET", "/v1/collections/kyc/faces", None),
        (
            "POST",
            "/v1/collections/kyc/users",
            Some(json!({"userId": "x"})),
        ),
        ("DELETE", "/v1/collections/kyc", None),
        (
            "POST",
            "/v1/collections",
            Some(json!({"collectionId": "kyc"})),
        ),
    ] {
        let (st, v) = s.call(m, p, Some(&survivor), b).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{m} {p}: {v}");
    }
    let v = s.ok_as(&survivor, "GET", "/v1/collections", None).await;
    assert!(v["collections"].as_array().unwrap().is_empty(), "{v}");
    // A key made for a collection that exists now is bound to it at once.
    let fresh = s.key("recognizer", Some("kyc")).await;
    s.ok_as(&fresh, "GET", "/v1/collections/kyc", None).await;
    s.stop().await;
}

/// Item 4: revoking a key cancels its open liveness sessions (a running stream is told
/// and closed), cancels its verifications still waiting for a step, disables its
/// webhooks, and deletes its transient faces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_key_ends_its_work() {
    use futures_util::StreamExt;
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    s.collection("rev").await;
    let k = s.key("enroller", None).await;
    let waiting = s
        .ok_as(&k, "POST", "/v1/liveness/sessions", Some(json!({})))
        .await;
    let running = s
        .ok_as(&k, "POST", "/v1/liveness/sessions", Some(json!({})))
        .await;
    let ws_url = |v: &Value| {
        format!(
            "ws://{}/v1/liveness/sessions/{}/stream?token={}",
            s.base.trim_start_matches("http://"),
            id(v, "sessionId"),
            id(v, "clientToken")
        )
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&running))
        .await
        .unwrap();
    let ver = s
        .ok_as(
            &k,
            "POST",
            "/v1/verifications",
            Some(json!({"collectionId": "rev", "externalUserId": "u1"})),
        )
        .await;
    let (url, _) = receiver().await;
    let hook = s
        .ok_as(&k, "POST", "/v1/webhooks", Some(json!({"url": url})))
        .await;
    let t = s
        .ok_as(
            &k,
            "POST",
            "/v1/detect",
            Some(json!({"image": b64(&fixture("obama.jpg")), "returnFaceId": true})),
        )
        .await;
    let transient = t["faceDetails"][0]["faceId"].as_str().unwrap().to_string();

    s.ok("DELETE", &format!("/v1/keys/{}", key_id(&k)), None)
        .await;

    // The running stream is told, then closed.
    let got = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(m)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "error" {
                    return Some(v);
                }
            }
        }
        None
    })
    .await
    .expect("the stream was not stopped within 5 s");
    assert_eq!(got.unwrap()["code"], "SessionCancelled");
    // The waiting session never streams.
    match tokio_tungstenite::connect_async(ws_url(&waiting)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), 410);
            let body: Value = serde_json::from_slice(r.body().as_deref().unwrap_or(b"{}")).unwrap();
            assert_eq!(body["code"], "SessionCancelled");
        }
        other => panic!("a cancelled session streamed: {:?}", other.map(|x| x.1)),
    }
    for v in [&waiting, &running] {
        let r = s
            .ok(
                "GET",
                &format!("/v1/liveness/sessions/{}", id(v, "sessionId")),
                None,
            )
            .await;
        assert_eq!(r["status"], "FAILED", "{r}");
        assert!(r["reasons"].to_string().contains("KeyRevoked"), "{r}");
    }
    let v = s
        .ok(
            "GET",
            &format!("/v1/verifications/{}", id(&ver, "verificationId")),
            None,
        )
        .await;
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(v["decision"]["reasons"], json!(["KeyRevoked"]));
    let w = s
        .service
        .store()
        .get_webhook(&id(&hook, "webhookId"))
        .await
        .unwrap()
        .unwrap();
    assert!(w.disabled_ms.is_some(), "the webhook is disabled");
    let (st, _) = s
        .call(
            "POST",
            "/v1/verify",
            Some(&s.admin),
            Some(json!({"faceId": transient, "faceId2": transient})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "its transient faces are gone");
    let (st, _) = s.call("GET", "/v1/collections", Some(&k), None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

/// Item 5: failed authentication is limited per client address (here 127.0.0.1):
/// after the burst, 429 with `Retry-After` and no key lookup; a key this server
/// authenticated recently still works from there; repeating an unknown key id is
/// answered from a short negative cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_authentication_is_throttled_per_address() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.limits.failed_auth_per_second = 1;
        c.limits.failed_auth_burst = 10;
    })
    .await
    else {
        return;
    };
    let good = s.key("recognizer", None).await;
    s.ok_as(&good, "GET", "/v1/collections", None).await;
    let hits = |m: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with("honnin_auth_unknown_key_cache_hits_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0)
    };
    let metrics = |s: &Server| {
        let s2 = s
            .http
            .get(format!("{}/metrics", s.base))
            .bearer_auth(&s.admin);
        async move { s2.send().await.unwrap().text().await.unwrap() }
    };
    let before = hits(&metrics(&s).await);
    let unknown = "hn_feedfacefeedface_guess";
    for _ in 0..3 {
        let (st, _) = s.call("GET", "/v1/collections", Some(unknown), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    assert!(
        hits(&metrics(&s).await) >= before + 2.0,
        "repeats come from the cache"
    );
    let mut statuses = Vec::new();
    let mut retry = None;
    for i in 0..30 {
        let k = format!("hn_{i:016x}_guess");
        let (st, h, _) = s.call_full("GET", "/v1/collections", Some(&k), None).await;
        if st == StatusCode::TOO_MANY_REQUESTS {
            retry = h
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        statuses.push(st.as_u16());
    }
    let first_429 = statuses.iter().position(|s| *s == 429).expect("throttled");
    assert!(first_429 <= 10, "{statuses:?}");
    assert!(
        statuses[..first_429].iter().all(|s| *s == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[first_429..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(retry.is_some_and(|r| r >= 1), "Retry-After {retry:?}");
    // Blocked: a key authenticated a moment ago still works; a key never seen waits.
    s.ok_as(&good, "GET", "/v1/collections", None).await;
    let never_seen = s.key("recognizer", None).await;
    let (st, v) = s
        .call("GET", "/v1/collections", Some(&never_seen), None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "Throttling")
    );
    s.stop().await;
}

/// Item 6: key names are printable text (no terminal escapes, no bidi overrides).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_names_are_printable_text() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    for bad in [
        "\u{1b}[2J\u{1b}[31mowned",
        "tab\there",
        "evil\u{202e}gpj.exe",
        "nul\u{0}x",
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/keys",
                Some(&s.admin),
                Some(json!({"role": "recognizer", "name": bad})),
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{bad:?}"
        );
    }
    let v = s
        .ok(
            "POST",
            "/v1/keys",
            Some(json!({"role": "recognizer", "name": "Käthe's key — ok"})),
        )
        .await;
    assert_eq!(v["name"], "Käthe's key — ok");
    s.stop().await;
}

/// Item 17: an id in UUID form means one thing in any spelling (upper case, braces,
/// `urn:uuid:`): searches find, deletions delete, reads read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_in_any_uuid_spelling_name_one_thing() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    s.collection("ids").await;
    let f = s.index("ids", "obama.jpg").await;
    let spellings = |id: &str| {
        vec![
            id.to_uppercase(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
            id.replace('-', ""),
        ]
    };
    for spelled in spellings(&f) {
        let v = s
            .ok(
                "POST",
                "/v1/collections/ids/search",
                Some(json!({"faceId": spelled})),
            )
            .await;
        assert_eq!(v["searchedFaceId"], f.as_str(), "{spelled}");
    }
    let sess = s.ok("POST", "/v1/liveness/sessions", Some(json!({}))).await;
    let sid = id(&sess, "sessionId");
    let ver = s
        .ok(
            "POST",
            "/v1/verifications",
            Some(json!({"collectionId": "ids", "externalUserId": "u"})),
        )
        .await;
    let vid = id(&ver, "verificationId");
    let (url, _) = receiver().await;
    let hook = id(
        &s.ok("POST", "/v1/webhooks", Some(json!({"url": url})))
            .await,
        "webhookId",
    );
    for spelled in spellings(&sid) {
        s.ok("GET", &format!("/v1/liveness/sessions/{spelled}"), None)
            .await;
    }
    for spelled in spellings(&vid) {
        s.ok("GET", &format!("/v1/verifications/{spelled}"), None)
            .await;
    }
    for spelled in spellings(&hook) {
        s.ok("GET", &format!("/v1/webhooks/{spelled}/deliveries"), None)
            .await;
    }
    let k = s.key("recognizer", None).await;
    s.ok(
        "DELETE",
        &format!("/v1/keys/{}", key_id(&k).to_uppercase()),
        None,
    )
    .await;
    // Deleting by an upper-case id deletes the face.
    let v = s
        .ok(
            "DELETE",
            "/v1/collections/ids/faces",
            Some(json!({"faceIds": [f.to_uppercase()]})),
        )
        .await;
    assert_eq!(v["deletedFaces"], json!([f]), "{v}");
    let v = s.ok("GET", "/v1/collections/ids/faces", None).await;
    assert!(v["faces"].as_array().unwrap().is_empty(), "{v}");
    s.stop().await;
}

/// Admins can find the webhooks of the keys they oversee (to act on a compromised key),
/// and only those: `GET /v1/webhooks?allKeys=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_the_webhooks_they_oversee() {
    let Some(s) = Server::start(Backend::Sqlite, |_| {}).await else {
        return;
    };
    for c in ["wa", "wb"] {
        s.collection(c).await;
    }
    let (url, _) = receiver().await;
    let mut by = HashMap::new();
    for (who, scope) in [("in-a", Some("wa")), ("in-b", Some("wb")), ("all", None)] {
        let k = s.key("enroller", scope).await;
        let v = s
            .ok_as(&k, "POST", "/v1/webhooks", Some(json!({"url": url})))
            .await;
        assert_eq!(v["ownerKeyId"], key_id(&k).as_str());
        by.insert(who, id(&v, "webhookId"));
    }
    let ids = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|w| w["webhookId"].as_str().unwrap().to_string())
            .collect()
    };
    let all = s.ok("GET", "/v1/webhooks?allKeys=true", None).await;
    assert_eq!(ids(&all), by.values().cloned().collect());
    assert!(
        ids(&s.ok("GET", "/v1/webhooks", None).await).is_empty(),
        "its own: none"
    );
    let admin_a = s.key("admin", Some("wa")).await;
    let mine = s
        .ok_as(&admin_a, "GET", "/v1/webhooks?allKeys=true", None)
        .await;
    assert_eq!(ids(&mine), BTreeSet::from([by["in-a"].clone()]));
    let enr = s.key("enroller", None).await;
    let (st, v) = s
        .call("GET", "/v1/webhooks?allKeys=true", Some(&enr), None)
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "AccessDenied"));
    s.stop().await;
}
