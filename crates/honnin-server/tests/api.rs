//! The `/v1` API end to end, in-process, against both storage backends.
//!
//! Every test starts its own server on a free port with a fresh database: SQLite in a
//! temporary folder, or a fresh PostgreSQL database (`HONNIN_TEST_POSTGRES`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; skipped with a message when it is
//! unreachable, unless `HONNIN_REQUIRE_POSTGRES` is set, as in CI).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{b64, blank_png, code, engine, fixture, Backend, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

// ---------------------------------------------------------------- the suite

async fn suite(backend: Backend) {
    let Some(s) = Server::start(backend, |_| {}).await else {
        return;
    };
    auth_and_roles(&s).await;
    faces_search_and_users(&s).await;
    transient_faces(&s).await;
    bad_input(&s).await;
    crypto_shredding(&s).await;
    liveness_sessions(&s).await;
    verifications(&s).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_suite_on_postgres() {
    suite(Backend::Postgres).await;
}

async fn auth_and_roles(s: &Server) {
    // Every documented /v1 operation refuses a request without a key (401, not 403).
    let (_, doc) = s.call("GET", "/openapi.json", None, None).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths.iter().filter(|(p, _)| p.starts_with("/v1/")) {
        let concrete = path
            .replace("{collectionId}", "c1")
            .replace("{userId}", "u1")
            .replace("{keyId}", "0000000000000000");
        for method in ["get", "post", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let (st, v) = s
                .call(&method.to_uppercase(), &concrete, None, Some(json!({})))
                .await;
            assert_eq!(
                st,
                StatusCode::UNAUTHORIZED,
                "{method} {path} without a key"
            );
            assert_eq!(code(&v), "Unauthenticated");
            let (st, _) = s
                .call(
                    &method.to_uppercase(),
                    &concrete,
                    Some("hn_0123456789abcdef_wrong"),
                    Some(json!({})),
                )
                .await;
            assert_eq!(
                st,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with a wrong key"
            );
            checked += 1;
        }
    }
    assert!(checked >= 23, "only {checked} operations documented");
    for bad in ["garbage", "hn_zz_secret", ""] {
        let (st, _) = s.call("GET", "/v1/collections", Some(bad), None).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "key `{bad}`");
    }

    let enroller = s.key("enroller", None).await;
    let recognizer = s.key("recognizer", None).await;
    let limited = s.key("enroller", Some("roles-a")).await;
    let img = b64(&fixture("obama.jpg"));

    // Enrolment data: enroller yes, recognizer no (403, distinct from 401).
    let (st, v) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&recognizer),
            Some(json!({"collectionId": "roles-a"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "AccessDenied"));
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&limited),
            Some(json!({"collectionId": "roles-b"})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::FORBIDDEN,
        "a key limited to roles-a creates roles-b"
    );
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&limited),
            Some(json!({"collectionId": "roles-a"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&enroller),
            Some(json!({"collectionId": "roles-b"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .call(
            "POST",
            "/v1/collections/roles-a/faces",
            Some(&limited),
            Some(json!({"image": img})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let face = v["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();

    let forbidden_for_recognizer: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            "/v1/collections/roles-a/faces".into(),
            json!({"image": img}),
        ),
        (
            "DELETE",
            "/v1/collections/roles-a/faces".into(),
            json!({"faceIds": [face]}),
        ),
        (
            "POST",
            "/v1/collections/roles-a/users".into(),
            json!({"userId": "u1"}),
        ),
        (
            "DELETE",
            "/v1/collections/roles-a/users/u1".into(),
            json!({}),
        ),
        (
            "POST",
            "/v1/collections/roles-a/users/u1/faces".into(),
            json!({"faceIds": [face]}),
        ),
        (
            "DELETE",
            "/v1/collections/roles-a/users/u1/faces".into(),
            json!({"faceIds": [face]}),
        ),
        ("DELETE", "/v1/collections/roles-a".into(), json!({})),
        ("POST", "/v1/keys".into(), json!({"role": "recognizer"})),
        ("GET", "/v1/keys".into(), json!({})),
        ("DELETE", "/v1/keys/0123456789abcdef".into(), json!({})),
    ];
    for (m, p, b) in &forbidden_for_recognizer {
        let (st, v) = s.call(m, p, Some(&recognizer), Some(b.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "recognizer {m} {p}: {v}");
        assert_eq!(code(&v), "AccessDenied");
    }
    for (m, p, b) in forbidden_for_recognizer
        .iter()
        .filter(|(_, p, _)| p.starts_with("/v1/keys"))
    {
        let (st, _) = s.call(m, p, Some(&enroller), Some(b.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "enroller {m} {p}");
    }
    // Recognition: all roles.
    for key in [&recognizer, &enroller] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/collections/roles-a/search",
                Some(key),
                Some(json!({"image": img})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["faceMatches"][0]["face"]["faceId"], face.as_str());
        let (st, _) = s
            .call("GET", "/v1/collections/roles-a/faces", Some(key), None)
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    // A limited key sees its collection only.
    let (st, v) = s.call("GET", "/v1/collections", Some(&limited), None).await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&str> = v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collectionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["roles-a"]);
    for (m, p) in [
        ("GET", "/v1/collections/roles-b"),
        ("GET", "/v1/collections/roles-b/faces"),
        ("DELETE", "/v1/collections/roles-b"),
    ] {
        let (st, _) = s.call(m, p, Some(&limited), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "limited key {m} {p}");
    }
    // Revocation: 401 from then on.
    let keys = s.ok("GET", "/v1/keys", None).await;
    let rec_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| recognizer.contains(k["keyId"].as_str().unwrap()))
        .unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !keys
            .to_string()
            .contains(recognizer.rsplit('_').next().unwrap()),
        "secrets are never listed"
    );
    s.ok("DELETE", &format!("/v1/keys/{rec_id}"), None).await;
    let (st, v) = s
        .call("GET", "/v1/collections", Some(&recognizer), None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "Unauthenticated")
    );
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/keys/{rec_id}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "revoking twice");
}

async fn faces_search_and_users(s: &Server) {
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "people"})),
    )
    .await;
    let obama = s
        .ok(
            "POST",
            "/v1/collections/people/faces",
            Some(json!({"image": b64(&fixture("obama.jpg")), "externalImageId": "obama-1"})),
        )
        .await;
    assert_eq!(obama["faceRecords"].as_array().unwrap().len(), 1, "{obama}");
    let obama_id = obama["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        obama["faceRecords"][0]["face"]["externalImageId"],
        "obama-1"
    );

    // A group photo with maxFaces 2: two indexed, the others unindexed with a reason.
    let group = s
        .ok(
            "POST",
            "/v1/collections/people/faces",
            Some(json!({"image": b64(&fixture("t1.jpg")), "maxFaces": 2, "qualityFilter": "NONE"})),
        )
        .await;
    assert_eq!(group["faceRecords"].as_array().unwrap().len(), 2, "{group}");
    let unindexed = group["unindexedFaces"].as_array().unwrap();
    assert_eq!(unindexed.len(), 4);
    assert!(unindexed.iter().all(|u| u["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "EXCEEDS_MAX_FACES")));
    let stranger = group["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();

    // Search by image: the other photo of the same man finds him above the default threshold.
    let r = s
        .ok(
            "POST",
            "/v1/collections/people/search",
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    let m = r["faceMatches"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{r}");
    assert_eq!(m[0]["face"]["faceId"], obama_id.as_str());
    assert!(m[0]["similarity"].as_f64().unwrap() >= 70.0);
    assert_eq!(r["threshold"]["threshold"], 70.0);
    // A different person does not.
    let r = s
        .ok(
            "POST",
            "/v1/collections/people/search",
            Some(json!({"image": b64(&fixture("biden.jpg"))})),
        )
        .await;
    assert!(
        r["faceMatches"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["face"]["faceId"] != obama_id.as_str()),
        "{r}"
    );
    // Search by an indexed face; the face itself is not its own match.
    let r = s
        .ok(
            "POST",
            "/v1/collections/people/search",
            Some(json!({"faceId": obama_id, "threshold": 0, "maxResults": 5})),
        )
        .await;
    assert_eq!(r["searchedFaceId"], obama_id.as_str());
    assert!(r["faceMatches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["face"]["faceId"] != obama_id.as_str()));

    let d = s.ok("GET", "/v1/collections/people", None).await;
    assert_eq!(d["faceCount"], 3);
    // Paging.
    let p1 = s
        .ok("GET", "/v1/collections/people/faces?maxResults=2", None)
        .await;
    assert_eq!(p1["faces"].as_array().unwrap().len(), 2);
    let token = p1["nextToken"].as_str().expect("a next page").to_string();
    let p2 = s
        .ok(
            "GET",
            &format!("/v1/collections/people/faces?maxResults=2&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(p2["faces"].as_array().unwrap().len(), 1);
    assert!(p2.get("nextToken").is_none());

    // Users: association refuses a face of someone else.
    s.ok(
        "POST",
        "/v1/collections/people/users",
        Some(json!({"userId": "barack"})),
    )
    .await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/collections/people/users",
            Some(&s.admin),
            Some(json!({"userId": "barack"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "ResourceAlreadyExists")
    );
    let a = s
        .ok(
            "POST",
            "/v1/collections/people/users/barack/faces",
            Some(json!({"faceIds": [obama_id]})),
        )
        .await;
    assert_eq!(a["associatedFaces"], json!([obama_id]));
    let a = s
        .ok(
            "POST",
            "/v1/collections/people/users/barack/faces",
            Some(json!({"faceIds": [stranger]})),
        )
        .await;
    assert_eq!(a["associatedFaces"], json!([]));
    assert_eq!(
        a["unsuccessfulFaceAssociations"][0]["faceId"],
        stranger.as_str(),
        "{a}"
    );
    let u = s
        .ok(
            "POST",
            "/v1/collections/people/search-users",
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    assert_eq!(u["userMatches"][0]["userId"], "barack", "{u}");
    let users = s.ok("GET", "/v1/collections/people/users", None).await;
    assert_eq!(users["users"][0]["userId"], "barack");

    // Deleted faces are gone from search and stay gone.
    let del = s
        .ok(
            "DELETE",
            "/v1/collections/people/faces",
            Some(json!({"faceIds": [obama_id, "00000000-0000-4000-8000-000000000000"]})),
        )
        .await;
    assert_eq!(del["deletedFaces"], json!([obama_id]));
    assert_eq!(
        del["unsuccessfulFaceDeletions"].as_array().unwrap().len(),
        1
    );
    let r = s
        .ok(
            "POST",
            "/v1/collections/people/search",
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    assert!(r["faceMatches"].as_array().unwrap().is_empty(), "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await; // a sync round must not resurrect it
    let r = s.ok("GET", "/v1/collections/people/faces", None).await;
    assert!(!r.to_string().contains(&obama_id));
    s.ok("DELETE", "/v1/collections/people/users/barack", None)
        .await;
}

async fn transient_faces(s: &Server) {
    let detect = |img: &str| {
        let body = json!({"image": b64(&fixture(img)), "returnFaceId": true});
        async move {
            let v = s.ok("POST", "/v1/detect", Some(body)).await;
            assert!(v["faceDetails"][0]["faceIdExpiresAt"].is_string());
            v["faceDetails"][0]["faceId"].as_str().unwrap().to_string()
        }
    };
    let a = detect("obama.jpg").await;
    let b = detect("obama2.jpg").await;
    let c = detect("biden.jpg").await;
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": a, "faceId2": b})),
        )
        .await;
    assert_eq!(v["isIdentical"], true, "{v}");
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": a, "faceId2": c})),
        )
        .await;
    assert_eq!(v["isIdentical"], false, "{v}");

    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "t"})),
    )
    .await;
    let f = s
        .ok(
            "POST",
            "/v1/collections/t/faces",
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    let fid = f["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    s.ok(
        "POST",
        "/v1/collections/t/users",
        Some(json!({"userId": "o"})),
    )
    .await;
    s.ok(
        "POST",
        "/v1/collections/t/users/o/faces",
        Some(json!({"faceIds": [fid]})),
    )
    .await;
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": b, "collectionId": "t", "userId": "o"})),
        )
        .await;
    assert_eq!(v["isIdentical"], true, "{v}");
    let v = s
        .ok(
            "POST",
            "/v1/identify",
            Some(json!({"faceIds": [b, c], "collectionId": "t"})),
        )
        .await;
    assert_eq!(v[0]["candidates"][0]["userId"], "o", "{v}");
    assert!(v[1]["candidates"].as_array().unwrap().is_empty(), "{v}");
    let v = s
        .ok(
            "POST",
            "/v1/find-similar",
            Some(json!({"faceId": a, "faceIds": [c, b], "mode": "matchFace"})),
        )
        .await;
    assert_eq!(v[0]["faceId"], b.as_str(), "{v}");
    let v = s
        .ok("POST", "/v1/group", Some(json!({"faceIds": [a, b, c]})))
        .await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["messyGroup"], json!([c]));

    // Compare: a non-match is "different person" unless the faces explain it. A face
    // shrunk to ~55 px against the same person at a threshold above their similarity →
    // retake (SMALL_BOUNDING_BOX); two good photos, or a different person scoring like
    // an impostor, → no retake reasons.
    let compare = |target: Vec<u8>, threshold: f64| {
        let body = json!({"sourceImage": b64(&fixture("obama.jpg")), "targetImage": b64(&target),
                          "similarityThreshold": threshold});
        async move { s.ok("POST", "/v1/compare", Some(body)).await }
    };
    let shrunk = |name: &str| {
        let img = image::load_from_memory(&fixture(name)).unwrap();
        let img = img.resize(
            img.width() / 7,
            img.height() / 7,
            image::imageops::FilterType::Triangle,
        );
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let reasons = |v: &Value| v["unmatchedFaces"][0].get("retakeReasons").cloned();
    let v = compare(shrunk("obama2.jpg"), 99.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        reasons(&v)
            .and_then(|r| r.as_array().cloned())
            .unwrap_or_default()
            .contains(&json!("SMALL_BOUNDING_BOX")),
        "{v}"
    );
    let v = compare(fixture("obama2.jpg"), 99.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(reasons(&v), None, "{v}");
    let v = compare(shrunk("biden.jpg"), 70.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(reasons(&v), None, "{v}");

    // Search: "no match" for a small probe whose person is in the collection but below
    // the threshold → retakeReasons; for a good photo, or a small face of someone far
    // from everyone in the collection, "no match" stands.
    for (path, matches) in [
        ("/v1/collections/t/search", "faceMatches"),
        ("/v1/collections/t/search-users", "userMatches"),
    ] {
        let search = |image: Vec<u8>| {
            let body = json!({"image": b64(&image), "threshold": 99.0});
            async move { s.ok("POST", path, Some(body)).await }
        };
        let v = search(shrunk("obama2.jpg")).await;
        assert!(v[matches].as_array().unwrap().is_empty(), "{v}");
        assert!(
            v["retakeReasons"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("SMALL_BOUNDING_BOX"))),
            "{path}: {v}"
        );
        let v = search(fixture("obama2.jpg")).await;
        assert!(v[matches].as_array().unwrap().is_empty(), "{v}");
        assert!(v.get("retakeReasons").is_none(), "{path}: {v}");
        let v = search(shrunk("biden.jpg")).await;
        assert!(v.get("retakeReasons").is_none(), "{path}: {v}");
    }
}

async fn bad_input(s: &Server) {
    let k = Some(s.admin.as_str());
    let cases: Vec<(&str, &str, Value, StatusCode, &str)> = vec![
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(b"this is not an image")}),
            StatusCode::BAD_REQUEST,
            "InvalidImageFormat",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(&fixture("obama.jpg")[..2000])}),
            StatusCode::BAD_REQUEST,
            "CorruptImage",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(b"")}),
            StatusCode::BAD_REQUEST,
            "EmptyImage",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": {"bytes": "%%%not base64"}}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(&vec![0u8; 6 * 1024 * 1024])}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "ImageTooLarge",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"imag": b64(b"x")}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(&fixture("obama.jpg")), "maxFaces": "two"}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/detect",
            json!({"image": b64(&fixture("obama.jpg")), "returnFaceId": true, "faceIdTimeToLive": 5}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/collections/nope/faces",
            json!({"image": b64(&fixture("obama.jpg"))}),
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
        ),
        (
            "POST",
            "/v1/collections/t/search",
            json!({"image": b64(&blank_png())}),
            StatusCode::BAD_REQUEST,
            "NoFaceDetected",
        ),
        (
            "POST",
            "/v1/collections/t/search",
            json!({}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/collections",
            json!({"collectionId": "t"}),
            StatusCode::CONFLICT,
            "ResourceAlreadyExists",
        ),
        (
            "POST",
            "/v1/collections",
            json!({"collectionId": "bad id/with slash"}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "GET",
            "/v1/collections/nope",
            json!(null),
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
        ),
        (
            "POST",
            "/v1/verify",
            json!({"faceId": "00000000-0000-4000-8000-000000000000", "faceId2": "00000000-0000-4000-8000-000000000001"}),
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
        ),
        (
            "POST",
            "/v1/verify",
            json!({"faceId": "not-a-uuid", "faceId2": "x"}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "POST",
            "/v1/group",
            json!({"faceIds": []}),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "GET",
            "/v1/collections?maxResults=0",
            json!(null),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "GET",
            "/v1/collections?maxResults=-3",
            json!(null),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "GET",
            "/v1/collections?nextToken=%%%",
            json!(null),
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
        ),
        (
            "GET",
            "/v1/no-such-route",
            json!(null),
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
        ),
        (
            "PUT",
            "/v1/detect",
            json!({}),
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
        ),
    ];
    for (m, p, body, want, want_code) in cases {
        let body = (!body.is_null()).then_some(body);
        let (st, v) = s.call(m, p, k, body.clone()).await;
        assert_eq!((st, code(&v)), (want, want_code), "{m} {p}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Not JSON at all, and a body over the request limit.
    let res = s
        .http
        .post(format!("{}/v1/detect", s.base))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // Its own client: the server closes that connection after answering 413, and a
    // pooled connection must not be reused by the next request.
    let res = reqwest::Client::new()
        .post(format!("{}/v1/detect", s.base))
        .bearer_auth(&s.admin)
        .header("content-type", "application/json")
        .body(vec![b' '; 17 * 1024 * 1024])
        .send()
        .await;
    if let Ok(res) = res {
        // The server may also close the connection early; either way nothing was processed.
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let v: Value = res.json().await.unwrap();
        assert_eq!(code(&v), "PayloadTooLarge");
    }
    // Multipart works like JSON.
    let form = reqwest::multipart::Form::new()
        .part(
            "image",
            reqwest::multipart::Part::bytes(fixture("obama.jpg")).file_name("o.jpg"),
        )
        .text("maxFaces", "1");
    let res = s
        .http
        .post(format!("{}/v1/detect", s.base))
        .bearer_auth(&s.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["faceDetails"].as_array().unwrap().len(), 1);
}

async fn crypto_shredding(s: &Server) {
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "shred"})),
    )
    .await;
    let f = s
        .ok(
            "POST",
            "/v1/collections/shred/faces",
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    let fid = f["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    let store = s.service.store();
    // A "backup" of the face rows taken before deletion.
    let backup = store
        .get_faces("shred", std::slice::from_ref(&fid))
        .await
        .unwrap();
    assert_eq!(backup.len(), 1);
    let old_uid = store
        .get_collection("shred")
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    let old_key_ref = format!("collection:{old_uid}");
    let old_key = store.vault().get(&old_key_ref).await.unwrap().unwrap();
    s.ok("DELETE", "/v1/collections/shred", None).await;
    assert!(store.get_collection("shred").await.unwrap().is_none());
    assert!(
        store.vault().get(&old_key_ref).await.unwrap().is_none(),
        "the wrapped data key is destroyed"
    );
    assert!(store
        .get_faces("shred", std::slice::from_ref(&fid))
        .await
        .unwrap()
        .is_empty());
    // A new collection with the same id gets a new key that cannot open the old template.
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "shred"})),
    )
    .await;
    let new_uid = store
        .get_collection("shred")
        .await
        .unwrap()
        .unwrap()
        .collection_uid;
    assert_ne!(new_uid, old_uid, "a new identity");
    let new_key = store
        .vault()
        .get(&format!("collection:{new_uid}"))
        .await
        .unwrap()
        .unwrap();
    assert_ne!(old_key, new_key);
    let r = s
        .ok(
            "POST",
            "/v1/collections/shred/search",
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    assert!(r["faceMatches"].as_array().unwrap().is_empty());
    assert!(
        !backup[0].template.windows(8).any(|w| w == b"honnin-1"),
        "templates are stored sealed"
    );
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_429_with_retry_after() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.limits.rate_limit_per_second = 1;
        c.limits.rate_limit_burst = 3;
    })
    .await
    else {
        return;
    };
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
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(
        retry.is_some_and(|r| (1..=2).contains(&r)),
        "Retry-After {retry:?}"
    );
    // Health needs no key; neither health nor metrics (read with an admin key) is
    // limited by the key's rate.
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

// ---------------------------------------------------------------- liveness sessions

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Server {
    fn ws_url(&self, session: &str, token: &str) -> String {
        format!(
            "{}/v1/liveness/sessions/{session}/stream?token={token}",
            self.base.replace("http://", "ws://")
        )
    }

    /// Opens a session's stream; Err(HTTP status, JSON body) when refused before the upgrade.
    async fn open_stream(&self, session: &str, token: &str) -> Result<Ws, (u16, Value)> {
        match tokio_tungstenite::connect_async(self.ws_url(session, token)).await {
            Ok((ws, _)) => Ok(ws),
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => {
                let status = res.status().as_u16();
                let body = res
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(Value::Null);
                Err((status, body))
            }
            Err(e) => panic!("websocket: {e}"),
        }
    }
}

/// Reads server messages until one of type `want` (returns it) or the socket closes.
async fn ws_until(ws: &mut Ws, want: &str) -> Option<Value> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg {
            Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                if v["type"] == want {
                    return Some(v);
                }
            }
            Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

async fn ws_send(ws: &mut Ws, v: Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        v.to_string().into(),
    ))
    .await
    .unwrap();
}

async fn liveness_sessions(s: &Server) {
    let rec = s.key("recognizer", None).await;
    let other = s.key("recognizer", None).await;
    // Create: recognizer keys may; the result carries a UUID and a session-only token.
    let (st, v) = s
        .call(
            "POST",
            "/v1/liveness/sessions",
            Some(&rec),
            Some(json!({"settings": {"auditImagesLimit": 2}, "deviceCorrelationId": "dev-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let id = v["sessionId"].as_str().unwrap().to_string();
    let token = v["clientToken"].as_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert!(token.len() >= 40, "{token}");
    assert_eq!(
        v["streamPath"],
        format!("/v1/liveness/sessions/{id}/stream")
    );
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "CREATED");
    assert_eq!(v["challenge"], "FaceMovementAndLightChallenge");
    assert_eq!(v["confidence"], Value::Null);
    assert_eq!(v["deviceCorrelationId"], "dev-1");
    // The client token is no API key, and a session is private to its key.
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "Unauthenticated")
    );
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    let (st, v) = s
        .call("GET", "/v1/liveness/sessions/not-a-uuid", Some(&rec), None)
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{}", uuid::Uuid::new_v4()),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));

    // Bad settings.
    for body in [
        json!({"settings": {"auditImagesLimit": 5}}),
        json!({"settings": {"challenge": "Dance"}}),
        json!({"settings": {"auditImagesLimit": -1}}),
        json!({"sessionColour": "red"}),
        json!({"deviceCorrelationId": ""}),
        json!({"referenceImage": {"bytes": "not base64!"}}),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/liveness/sessions",
                Some(&rec),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
            "{body}: {v}"
        );
    }
    let (st, v) = s
        .call(
            "POST",
            "/v1/liveness/sessions",
            Some(&rec),
            Some(json!({"referenceImage": b64(&blank_png())})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "NoFaceDetected"),
        "{v}"
    );

    // The stream: refused without the right token, without an upgrade, and a second time.
    assert_eq!(
        s.open_stream(&id, "wrong")
            .await
            .err()
            .map(|e| (e.0, code(&e.1).to_string())),
        Some((401, "InvalidClientToken".into()))
    );
    assert_eq!(
        s.open_stream(&uuid::Uuid::new_v4().to_string(), &token)
            .await
            .err()
            .map(|e| e.0),
        Some(404)
    );
    let res = s
        .http
        .get(format!(
            "{}/v1/liveness/sessions/{id}/stream?token={token}",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "plain GET is no upgrade"
    );
    let mut ws = s
        .open_stream(&id, &token)
        .await
        .expect("first stream opens");
    assert_eq!(
        s.open_stream(&id, &token)
            .await
            .err()
            .map(|e| (e.0, code(&e.1).to_string())),
        Some((409, "SessionAlreadyStarted".into())),
        "a session streams once"
    );
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!(v["status"], "IN_PROGRESS");
    ws_send(&mut ws, json!({"type": "start", "video": {"width": 640, "height": 480}, "client": {"name": "api-test", "version": "1"}})).await;
    let ch = ws_until(&mut ws, "challenge").await.expect("challenge");
    assert_eq!(ch["challengeType"], "FaceMovementAndLightChallenge");
    assert!(ch["oval"]["width"].as_f64().unwrap() > 0.0, "{ch}");
    // A protocol violation ends the stream with an error and fails the session.
    ws_send(&mut ws, json!({"type": "start", "video": {"width": 640, "height": 480}, "client": {"name": "x", "version": "1"}})).await;
    let err = ws_until(&mut ws, "error").await.expect("error message");
    assert_eq!(err["code"], "ProtocolViolation", "{err}");
    let mut status = Value::Null;
    for _ in 0..50 {
        let (_, v) = s
            .call(
                "GET",
                &format!("/v1/liveness/sessions/{id}"),
                Some(&rec),
                None,
            )
            .await;
        status = v.clone();
        if v["status"] != "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["status"], "FAILED", "{status}");
    assert_eq!(
        status["reasons"][0]["code"], "ProtocolViolation",
        "{status}"
    );
    assert_eq!(status["decision"], "spoof");

    // Delete removes it at once.
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{id}"),
            Some(&rec),
            None,
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    assert_eq!(
        s.service.store().get_liveness(&id).await.unwrap(),
        None,
        "the row is gone"
    );

    // The component's file is served without a key; the demo is off by default.
    let res = s
        .http
        .get(format!("{}/static/honnin-liveness.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("javascript"));
    let (st, v) = s
        .call("POST", "/demo/api/liveness-sessions", None, Some(json!({})))
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "ResourceNotFound"));
    let res = s
        .http
        .get(format!("{}/demo/liveness", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn liveness_time_limits_and_rate_limits() {
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 1;
        c.service.liveness.results_retention_secs = 3;
        c.service.liveness.max_sessions_per_device_per_hour = 2;
        c.background.sweep_interval_ms = 200;
        c.demo.enabled = true;
    })
    .await
    else {
        return;
    };
    // Per-device limit, across keys.
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
    let (st, _) = s
        .call(
            "POST",
            "/v1/liveness/sessions",
            Some(&rec),
            Some(json!({"deviceCorrelationId": "phone-8"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "another device is not limited");

    // Expiry: after the TTL the stream is refused, the status reads EXPIRED, and the
    // sweeper records it; after the retention the row is gone.
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
            .status;
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

    // The demo backend works without a key when enabled, and sees only its own sessions.
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

// ---------------------------------------------------------------------- verifications

/// An ID-card-like image: a pale card with the face of `photo` as the main portrait
/// (left), a faded small ghost copy (right) and dark "text" bars, as a phone sees a card.
fn id_card(photo: &[u8]) -> Vec<u8> {
    id_card_with_portrait(photo, 240)
}

/// A card whose portrait is `width` pixels wide (a 240-px portrait of the fixtures
/// holds a face of about 100 px).
fn id_card_with_portrait(photo: &[u8], width: u32) -> Vec<u8> {
    use image::imageops;
    let face = image::load_from_memory(photo).unwrap().to_rgb8();
    let mut card = image::RgbImage::from_pixel(860, 540, image::Rgb([214, 226, 236]));
    let portrait = imageops::resize(
        &face,
        width,
        width * face.height() / face.width(),
        imageops::FilterType::Triangle,
    );
    let portrait = imageops::crop_imm(
        &portrait,
        0,
        0,
        width,
        (width * 5 / 4).min(portrait.height()),
    )
    .to_image();
    imageops::overlay(&mut card, &portrait, 40, 150);
    let mut ghost = imageops::resize(
        &portrait,
        100,
        100 * portrait.height() / portrait.width(),
        imageops::FilterType::Triangle,
    );
    for p in ghost.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as u16 / 2 + 110) as u8;
        }
    }
    imageops::overlay(&mut card, &ghost, 700, 330);
    for (i, w) in [420u32, 300, 360, 250, 380].iter().enumerate() {
        for y in 0..18 {
            for x in 0..*w {
                card.put_pixel(310 + x, 170 + 50 * i as u32 + y, image::Rgb([40, 48, 60]));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(card)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .unwrap();
    out.into_inner()
}

fn template_of(photo: &[u8]) -> honnin_engine::Template {
    let e = engine();
    let img = e.decode(photo).unwrap();
    let faces = e.detect(&img, &Default::default()).unwrap();
    e.templates(&img, &faces[..1]).unwrap().remove(0)
}

/// Runs a verification's liveness step at the service boundary: claims the stream with
/// the client token (as the WebSocket does) and records an outcome whose live face is
/// `live_photo`. The WebSocket and the analysis themselves are tested by
/// `liveness_sessions`, the liveness crate's simulator tests and the browser test.
async fn finish_liveness(
    s: &Server,
    session: &str,
    token: &str,
    confidence: f32,
    live_photo: &[u8],
) {
    let ticket = s
        .service
        .open_liveness_stream(session, token)
        .await
        .unwrap();
    let mut outcome = honnin_liveness::LivenessOutcome::failed("unused", 60);
    outcome.status = honnin_liveness::OutcomeStatus::Succeeded;
    outcome.status_reason = None;
    outcome.reasons.clear();
    outcome.confidence = confidence;
    outcome.decision = honnin_liveness::Decision::from_confidence(confidence);
    outcome.reference_template = Some(template_of(live_photo));
    outcome.reference_image = Some(honnin_liveness::CapturedImage {
        jpeg: live_photo.to_vec(),
        bounding_box: Default::default(),
        width: 0,
        height: 0,
        timestamp_ms: 0.0,
    });
    s.service
        .complete_liveness_stream(&ticket, outcome)
        .await
        .unwrap();
}

async fn start_verification(
    s: &Server,
    key: &str,
    user: &str,
    policy: Value,
) -> (String, String, String) {
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(key),
            Some(json!({"collectionId": "kyc", "externalUserId": user, "policy": policy})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "awaiting_document");
    (
        v["verificationId"].as_str().unwrap().into(),
        v["livenessSessionId"].as_str().unwrap().into(),
        v["clientToken"].as_str().unwrap().into(),
    )
}

async fn put_document(s: &Server, key: &str, id: &str, image: &[u8]) -> (StatusCode, Value) {
    s.call(
        "PUT",
        &format!("/v1/verifications/{id}/document"),
        Some(key),
        Some(json!({"image": b64(image)})),
    )
    .await
}

async fn put_document_ok(s: &Server, key: &str, id: &str, image: &[u8]) {
    let (st, v) = put_document(s, key, id, image).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

async fn decided(s: &Server, key: &str, id: &str) -> Value {
    for _ in 0..100 {
        let (st, v) = s
            .call("GET", &format!("/v1/verifications/{id}"), Some(key), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        if v["decision"].is_object() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("verification {id} was not decided");
}

fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["decision"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {v}"))
}

async fn verifications(s: &Server) {
    let enroller = s.key("enroller", Some("kyc")).await;
    let rec = s.key("recognizer", None).await;
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "kyc"})),
    )
    .await;
    let obama_card = id_card(&fixture("obama.jpg"));

    // Creation: enroller keys only, existing collection, valid ids and policy.
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(&rec),
            Some(json!({"collectionId": "kyc", "externalUserId": "u"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{v}"
    );
    for (body, want) in [
        (
            json!({"collectionId": "kyc", "externalUserId": "has space"}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": "kyc"}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": "kyc", "externalUserId": "u", "policy": {"documentMatchFmr": 2}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": "kyc", "externalUserId": "u", "policy": {"documentMatchFmr": 1e-3, "documentReviewFmr": 1e-4}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": "kyc", "externalUserId": "u", "policy": {"livenessThreshold": 101}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": "kyc", "externalUserId": "u", "policy": {"colour": "red"}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/verifications",
                Some(&enroller),
                Some(body.clone()),
            )
            .await;
        assert_eq!((st, code(&v)), want, "{body}: {v}");
    }

    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(&s.admin),
            Some(json!({"collectionId": "nope", "externalUserId": "u"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "ResourceNotFound"),
        "{v}"
    );

    // 1. Same person: document portrait (on a card, with a ghost image) and live face
    //    are two different photos of one person → approved and enrolled.
    let (id, session, token) = start_verification(s, &enroller, "alice", json!({})).await;
    // Wrong order: the liveness stream is refused before the document.
    let (code_, _) = s
        .open_stream(&session, &token)
        .await
        .err()
        .map(|e| (e.0, e.1))
        .unwrap();
    assert_eq!(code_, 409, "liveness before the document");
    // Bad documents leave it waiting for a document.
    let (st, v) = put_document(s, &enroller, &id, &blank_png()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "NoFaceDetected"),
        "{v}"
    );
    let (st, v) = put_document(s, &enroller, &id, b"not an image").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidImageFormat"),
        "{v}"
    );
    let two_people = {
        use image::imageops;
        let a = image::load_from_memory(&fixture("obama.jpg"))
            .unwrap()
            .to_rgb8();
        let b = image::load_from_memory(&fixture("biden.jpg"))
            .unwrap()
            .to_rgb8();
        let a = imageops::resize(
            &a,
            300,
            300 * a.height() / a.width(),
            imageops::FilterType::Triangle,
        );
        let b = imageops::resize(
            &b,
            300,
            300 * b.height() / b.width(),
            imageops::FilterType::Triangle,
        );
        let mut canvas = image::RgbImage::from_pixel(
            640,
            a.height().max(b.height()),
            image::Rgb([200, 200, 200]),
        );
        imageops::overlay(&mut canvas, &a, 0, 0);
        imageops::overlay(&mut canvas, &b, 330, 0);
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(canvas)
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let (st, v) = put_document(s, &enroller, &id, &two_people).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "DocumentPortraitAmbiguous"),
        "{v}"
    );
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(v["status"], "awaiting_document", "{v}");
    // The card: the main portrait is found, the ghost image ignored.
    let (st, v) = put_document(s, &enroller, &id, &obama_card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "awaiting_liveness");
    assert!(v["document"]["facesFound"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(
        v["document"]["warnings"],
        json!([]),
        "81 px: no warning; {v}"
    );
    assert!(
        v["document"]["boundingBox"]["left"].as_f64().unwrap() < 0.35,
        "the portrait, not the ghost: {v}"
    );
    let (st, v) = put_document(s, &enroller, &id, &obama_card).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "VerificationStepOutOfOrder"),
        "{v}"
    );
    // A small portrait (the card photographed from further away, ~50 px): accepted with
    // a warning by default; refused, for another photo, when the policy asks for 70 px.
    let small_card = {
        let c = image::load_from_memory(&obama_card).unwrap();
        let c = c.resize(520, 520, image::imageops::FilterType::Triangle);
        let mut out = std::io::Cursor::new(Vec::new());
        c.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let (strict, _, _) =
        start_verification(s, &enroller, "alice", json!({"minDocumentFacePx": 70})).await;
    let (st, v) = put_document(s, &enroller, &strict, &small_card).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "DocumentPortraitUnusable"),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("at least 70 px"),
        "{v}"
    );
    let (lenient, _, _) = start_verification(s, &enroller, "alice", json!({})).await;
    let (st, v) = put_document(s, &enroller, &lenient, &small_card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["document"]["faceSizePx"].as_f64().unwrap() < 70.0, "{v}");
    assert_eq!(
        v["document"]["warnings"],
        json!(["DocumentPortraitSmall"]),
        "{v}"
    );
    for id in [strict, lenient] {
        s.ok("DELETE", &format!("/v1/verifications/{id}"), None)
            .await;
    }
    // Other keys do not see it.
    let (st, v) = s
        .call("GET", &format!("/v1/verifications/{id}"), Some(&rec), None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "VerificationNotFound"),
        "{v}"
    );
    finish_liveness(s, &session, &token, 92.0, &fixture("obama2.jpg")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["decision"]["outcome"], "approved");
    assert_eq!(v["decision"]["reasons"], json!([]));
    assert_eq!(step(&v, "document")["outcome"], "passed");
    let l = step(&v, "liveness");
    assert_eq!(
        (
            l["outcome"].as_str(),
            l["score"].as_f64(),
            l["threshold"].as_f64()
        ),
        (Some("passed"), Some(92.0), Some(50.0)),
        "{l}"
    );
    let m = step(&v, "documentMatch");
    assert_eq!(m["outcome"], "passed", "{m}");
    let alice_similarity = m["score"].as_f64().unwrap();
    assert!(alice_similarity >= m["threshold"].as_f64().unwrap());
    assert_eq!(
        m["thresholdInfo"]["falseMatchRate"].as_f64(),
        Some(1e-4),
        "{m}"
    );
    assert_eq!(step(&v, "duplicateSearch")["outcome"], "passed");
    let e = step(&v, "enrolment");
    assert_eq!(e["outcome"], "passed", "{e}");
    let face_id = e["details"]["faceId"].as_str().unwrap().to_string();
    assert!(
        v["decision"]["models"]["faceModel"]
            .as_str()
            .unwrap()
            .starts_with("honnin-"),
        "{v}"
    );
    // The user exists with the live face; a search with another photo finds it.
    let users = s.ok("GET", "/v1/collections/kyc/users", None).await;
    assert!(users.to_string().contains("alice"), "{users}");
    let found = s
        .ok(
            "POST",
            "/v1/collections/kyc/search",
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    assert_eq!(
        found["faceMatches"][0]["face"]["faceId"],
        face_id.as_str(),
        "{found}"
    );
    assert_eq!(found["faceMatches"][0]["face"]["userId"], "alice");
    // The live face's template went with the decision, as the document's did.
    assert_eq!(
        s.service.store().live_template(&session).await.unwrap(),
        None
    );
    // The session's images went with the decision; the stream cannot be reused.
    let (_, l) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{session}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(
        (l["imagesDeleted"].as_bool(), l["referenceImage"].is_null()),
        (Some(true), true),
        "{l}"
    );
    assert_eq!(
        s.open_stream(&session, &token).await.err().map(|e| e.0),
        Some(409)
    );

    // 2. A different person on the document → rejected, with the reason.
    let (id, session, token) = start_verification(s, &enroller, "bob", json!({})).await;
    let (st, v) = put_document(s, &enroller, &id, &id_card(&fixture("biden.jpg"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    finish_liveness(s, &session, &token, 95.0, &fixture("Tom_Hanks_54745.png")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "rejected", "{v}");
    assert_eq!(v["decision"]["reasons"], json!(["DocumentMismatch"]), "{v}");
    let m = step(&v, "documentMatch");
    assert_eq!(m["outcome"], "failed");
    assert!(
        m["score"].as_f64().unwrap() < m["details"]["reviewThreshold"].as_f64().unwrap(),
        "{m}"
    );
    assert_eq!(step(&v, "enrolment")["outcome"], "skipped");

    // 2a. Quality-aware mismatches. The same person on a card whose portrait is too
    // small to tell, below the review threshold (both put at FMR 1e-7, similarity 90) →
    // needs_review with LowFaceQuality; with reviewLowQualityMismatch false → rejected.
    // A different person on such a card scores like an impostor (below similarity 40)
    // and is rejected whatever the portrait.
    let small_obama = id_card_with_portrait(&fixture("obama.jpg"), 130);
    let strict =
        json!({"documentMatchFmr": 1e-7, "documentReviewFmr": 1e-7, "enrolOnSuccess": false});
    let mut lenient_off = strict.clone();
    lenient_off["reviewLowQualityMismatch"] = json!(false);
    for (card, live, policy, status, reason) in [
        (
            &small_obama,
            "obama2.jpg",
            strict.clone(),
            "needs_review",
            "LowFaceQuality",
        ),
        (
            &small_obama,
            "obama2.jpg",
            lenient_off,
            "rejected",
            "DocumentMismatch",
        ),
        (
            &id_card_with_portrait(&fixture("biden.jpg"), 130),
            "Tom_Hanks_54745.png",
            json!({}),
            "rejected",
            "DocumentMismatch",
        ),
    ] {
        let (id, session, token) = start_verification(s, &enroller, "alice", policy).await;
        put_document_ok(s, &enroller, &id, card).await;
        finish_liveness(s, &session, &token, 95.0, &fixture(live)).await;
        let v = decided(s, &enroller, &id).await;
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["decision"]["reasons"], json!([reason]), "{v}");
        assert!(v["document"]["faceSizePx"].as_f64().unwrap() < 64.0, "{v}");
        let m = step(&v, "documentMatch");
        let similarity = m["score"].as_f64().unwrap();
        let retake = m["details"]["retakeReasons"].as_array().unwrap();
        if similarity >= 40.0 {
            assert!(retake.contains(&json!("SMALL_BOUNDING_BOX")), "{m}");
        } else {
            assert!(retake.is_empty() && reason == "DocumentMismatch", "{m}");
        }
        assert_eq!(step(&v, "enrolment")["outcome"], "skipped");
    }

    // 2b. A similarity between the review and the match thresholds → needs_review. The
    // match threshold is put just above alice's measured similarity, the review band
    // stays at FMR 1e-3 (similarity 50).
    let fmr_above = 10f64.powf(-((alice_similarity + 1.0 - 20.0) / 10.0));
    let (id, session, token) = start_verification(
        s,
        &enroller,
        "alice",
        json!({"documentMatchFmr": fmr_above, "documentReviewFmr": 1e-3, "enrolOnSuccess": false}),
    )
    .await;
    put_document_ok(s, &enroller, &id, &obama_card).await;
    finish_liveness(s, &session, &token, 92.0, &fixture("obama2.jpg")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "needs_review", "{v}");
    assert_eq!(
        v["decision"]["reasons"],
        json!(["DocumentMatchUncertain"]),
        "{v}"
    );
    let m = step(&v, "documentMatch");
    assert_eq!(m["outcome"], "review", "{m}");
    assert_eq!(
        m["details"]["reviewThresholdInfo"]["falseMatchRate"].as_f64(),
        Some(1e-3),
        "{m}"
    );
    assert_eq!(step(&v, "enrolment")["outcome"], "skipped");

    // 3. Alice again under another externalUserId → duplicate, rejected by default...
    let (id, session, token) = start_verification(s, &enroller, "mallory", json!({})).await;
    put_document_ok(s, &enroller, &id, &obama_card).await;
    finish_liveness(s, &session, &token, 90.0, &fixture("obama2.jpg")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "rejected", "{v}");
    assert_eq!(
        v["decision"]["reasons"],
        json!(["DuplicateIdentity"]),
        "{v}"
    );
    let d = step(&v, "duplicateSearch");
    assert_eq!(d["details"]["duplicates"][0]["userId"], "alice", "{d}");
    assert_eq!(
        d["details"]["duplicates"][0]["faceId"],
        face_id.as_str(),
        "{d}"
    );
    // ...or sent to review when the policy says duplicates do not block.
    let (id, session, token) =
        start_verification(s, &enroller, "mallory2", json!({"duplicatesBlock": false})).await;
    put_document_ok(s, &enroller, &id, &obama_card).await;
    finish_liveness(s, &session, &token, 90.0, &fixture("obama2.jpg")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "needs_review", "{v}");
    assert_eq!(step(&v, "enrolment")["outcome"], "skipped");
    // Re-verifying alice herself is no duplicate (and adds her new face).
    let (id, session, token) = start_verification(s, &enroller, "alice", json!({})).await;
    put_document_ok(s, &enroller, &id, &obama_card).await;
    finish_liveness(s, &session, &token, 90.0, &fixture("obama2.jpg")).await;
    let v = decided(s, &enroller, &id).await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(
        step(&v, "duplicateSearch")["details"]["sameUserMatches"],
        1,
        "{v}"
    );

    // 4. A spoof (low liveness confidence) → rejected; uncertain → needs_review.
    for (conf, want, reason) in [
        (10.0, "rejected", "LivenessCheckFailed"),
        (40.0, "needs_review", "LivenessUncertain"),
    ] {
        let (id, session, token) =
            start_verification(s, &enroller, "carol", json!({"enrolOnSuccess": false})).await;
        put_document_ok(s, &enroller, &id, &id_card(&fixture("Tom_Hanks_54745.png"))).await;
        finish_liveness(s, &session, &token, conf, &fixture("Tom_Hanks_54745.png")).await;
        let v = decided(s, &enroller, &id).await;
        assert_eq!(v["status"], want, "{v}");
        assert!(
            v["decision"]["reasons"]
                .as_array()
                .unwrap()
                .contains(&json!(reason)),
            "{v}"
        );
    }

    // Images are not kept by default...
    assert!(v.get("images").is_none(), "{v}");
    // ...and with `keepImagesSecs` they are, until the sweeper deletes them.
    let (kid, session, token) = start_verification(
        s,
        &enroller,
        "frank",
        json!({"keepImagesSecs": 1, "enrolOnSuccess": false}),
    )
    .await;
    let tom = fixture("Tom_Hanks_54745.png");
    put_document_ok(s, &enroller, &kid, &id_card(&tom)).await;
    finish_liveness(s, &session, &token, 90.0, &tom).await;
    let v = decided(s, &enroller, &kid).await;
    let imgs = &v["images"];
    assert!(imgs["document"].as_str().unwrap().len() > 1000, "{imgs}");
    assert!(
        imgs["liveFace"]["bytes"].as_str().unwrap().len() > 1000,
        "{imgs}"
    );
    assert!(imgs["deleteAt"].is_string());
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, v) = s
            .call(
                "GET",
                &format!("/v1/verifications/{kid}"),
                Some(&enroller),
                None,
            )
            .await;
        if v.get("images").is_none() {
            assert_eq!(v["status"], "approved", "the record stays: {v}");
            gone = true;
            break;
        }
    }
    assert!(gone, "the sweeper did not delete the kept images");
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(&enroller),
            Some(json!({"collectionId": "kyc", "externalUserId": "g", "policy": {"keepImagesSecs": 2592001}})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter")
    );

    // Delete removes it.
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/verifications/{id}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&enroller),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "VerificationNotFound")
    );
    let (st, v) = s
        .call("GET", "/v1/verifications/not-a-uuid", Some(&enroller), None)
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "VerificationNotFound")
    );
}

/// Out of time at either step, a verification is decided `expired` with its record;
/// its `verification.completed` event reaches the customer's webhook, signed, after a
/// failed first attempt is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_expiry_and_signed_webhooks_with_retries() {
    use std::sync::Mutex;
    let Some(s) = Server::start(Backend::Sqlite, |c| {
        c.service.liveness.session_ttl_secs = 3;
        c.background.work_interval_ms = 100;
        c.service.webhooks.initial_backoff_ms = 300;
    })
    .await
    else {
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

    let enroller = s.key("enroller", Some("kyc")).await;
    s.ok(
        "POST",
        "/v1/collections",
        Some(json!({"collectionId": "kyc"})),
    )
    .await;
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
    let (st, hook) = s
        .call(
            "POST",
            "/v1/webhooks",
            Some(&enroller),
            Some(json!({"url": hook_url})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    let hook_id = hook["webhookId"].as_str().unwrap().to_string();
    let listed = s.ok_as(&enroller, "GET", "/v1/webhooks", None).await;
    assert_eq!(listed[0]["webhookId"], hook_id.as_str());
    assert!(
        listed[0].get("secret").is_none(),
        "the secret is shown once: {listed}"
    );
    // Another key sees neither the webhook nor its deliveries.
    let (st, _) = s
        .call(
            "GET",
            &format!("/v1/webhooks/{hook_id}/deliveries"),
            Some(&s.key("recognizer", None).await),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // One verification never streams its liveness, one never gets its document. The
    // card is made first: only the document step itself must fit in the time limit.
    let card = id_card(&fixture("obama.jpg"));
    let (no_live, _, _) = start_verification(&s, &enroller, "erin", json!({})).await;
    let (st, v) = put_document(&s, &enroller, &no_live, &card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (no_doc, _, _) = start_verification(&s, &enroller, "dave", json!({})).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (st, v) = put_document(&s, &enroller, &no_doc, &card).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::GONE, "VerificationExpired"),
        "{v}"
    );
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
}
