//! Keys and roles: authentication, what each role may do, a limited key's reach,
//! revocation.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{b64, code, fixture, unique, Server};

/// Every documented /v1 operation refuses a request without a key (401, not 403), and
/// one with a wrong or malformed key.
async fn every_operation_refuses_a_request_without_a_valid_key(s: &Server) {
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
}

/// Two collections (`a`, `b`), an unlimited enroller, a recognizer, an enroller limited
/// to `a` that created `a` and indexed a face in it (`face`).
struct Roles {
    a: String,
    b: String,
    enroller: String,
    recognizer: String,
    limited: String,
    face: String,
    img: Value,
}

/// Keys first, then `a` created by the limited key and `b` by the enroller, then a face
/// indexed in `a` by the limited key.
async fn roles(s: &Server) -> Roles {
    let (a, b) = (unique("roles-a"), unique("roles-b"));
    let enroller = s.key("enroller", None).await;
    let recognizer = s.key("recognizer", None).await;
    let limited = s.key("enroller", Some(&a)).await;
    let img = b64(&fixture("obama.jpg"));
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&limited),
            Some(json!({"collectionId": a})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&enroller),
            Some(json!({"collectionId": b})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/collections/{a}/faces"),
            Some(&limited),
            Some(json!({"image": img})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let face = v["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    Roles {
        a,
        b,
        enroller,
        recognizer,
        limited,
        face,
        img,
    }
}

/// Enrolment data needs an enroller: a recognizer's attempt is 403 `AccessDenied`.
async fn a_recognizer_key_cannot_create_a_collection(s: &Server) {
    let recognizer = s.key("recognizer", None).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&recognizer),
            Some(json!({"collectionId": unique("roles-a")})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::FORBIDDEN, "AccessDenied"));
}

/// A key limited to one collection creates that one (201) and no other (403).
async fn a_limited_key_creates_only_its_own_collection(s: &Server) {
    let (a, b) = (unique("roles-a"), unique("roles-b"));
    let limited = s.key("enroller", Some(&a)).await;
    let (st, _) = s
        .call(
            "POST",
            "/v1/collections",
            Some(&limited),
            Some(json!({"collectionId": b})),
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
            Some(json!({"collectionId": a})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
}

/// A limited key indexes into its own collection; an unlimited enroller creates any
/// collection (the asserts are in `roles`).
async fn enrollers_create_collections_and_index_faces(s: &Server) {
    roles(s).await;
}

/// A recognizer changes no enrolment data and manages no keys (403 `AccessDenied`);
/// an enroller manages no keys either.
async fn a_recognizer_key_cannot_change_enrolment_data_or_keys(s: &Server) {
    let r = roles(s).await;
    let (a, face, img) = (&r.a, &r.face, &r.img);
    let forbidden_for_recognizer: Vec<(&str, String, Value)> = vec![
        (
            "POST",
            format!("/v1/collections/{a}/faces"),
            json!({"image": img}),
        ),
        (
            "DELETE",
            format!("/v1/collections/{a}/faces"),
            json!({"faceIds": [face]}),
        ),
        (
            "POST",
            format!("/v1/collections/{a}/users"),
            json!({"userId": "u1"}),
        ),
        ("DELETE", format!("/v1/collections/{a}/users/u1"), json!({})),
        (
            "POST",
            format!("/v1/collections/{a}/users/u1/faces"),
            json!({"faceIds": [face]}),
        ),
        (
            "DELETE",
            format!("/v1/collections/{a}/users/u1/faces"),
            json!({"faceIds": [face]}),
        ),
        ("DELETE", format!("/v1/collections/{a}"), json!({})),
        ("POST", "/v1/keys".into(), json!({"role": "recognizer"})),
        ("GET", "/v1/keys".into(), json!({})),
        ("DELETE", "/v1/keys/0123456789abcdef".into(), json!({})),
    ];
    for (m, p, b) in &forbidden_for_recognizer {
        let (st, v) = s.call(m, p, Some(&r.recognizer), Some(b.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "recognizer {m} {p}: {v}");
        assert_eq!(code(&v), "AccessDenied");
    }
    for (m, p, b) in forbidden_for_recognizer
        .iter()
        .filter(|(_, p, _)| p.starts_with("/v1/keys"))
    {
        let (st, _) = s.call(m, p, Some(&r.enroller), Some(b.clone())).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "enroller {m} {p}");
    }
}

/// Recognition is open to all roles: search finds the face, faces are listed.
async fn recognizers_and_enrollers_search_and_list_faces(s: &Server) {
    let r = roles(s).await;
    let a = &r.a;
    for key in [&r.recognizer, &r.enroller] {
        let (st, v) = s
            .call(
                "POST",
                &format!("/v1/collections/{a}/search"),
                Some(key),
                Some(json!({"image": r.img})),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["faceMatches"][0]["face"]["faceId"], r.face.as_str());
        let (st, _) = s
            .call(
                "GET",
                &format!("/v1/collections/{a}/faces"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
}

/// A limited key lists its collection only and reaches no other.
async fn a_limited_key_sees_only_its_collection(s: &Server) {
    let r = roles(s).await;
    let (st, v) = s
        .call("GET", "/v1/collections", Some(&r.limited), None)
        .await;
    assert_eq!(st, StatusCode::OK);
    let ids: Vec<&str> = v["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collectionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![r.a.as_str()]);
    let b = &r.b;
    for (m, p) in [
        ("GET", format!("/v1/collections/{b}")),
        ("GET", format!("/v1/collections/{b}/faces")),
        ("DELETE", format!("/v1/collections/{b}")),
    ] {
        let (st, _) = s.call(m, &p, Some(&r.limited), None).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "limited key {m} {p}");
    }
}

/// The key id of `token` as the admin's key listing shows it (a secret is never listed).
async fn listed_key_id(s: &Server, token: &str) -> String {
    let keys = s.ok("GET", "/v1/keys", None).await;
    let id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| token.contains(k["keyId"].as_str().unwrap()))
        .unwrap()["keyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        !keys.to_string().contains(token.rsplit('_').next().unwrap()),
        "secrets are never listed"
    );
    id
}

/// The key listing shows key ids, never secrets.
async fn the_key_listing_never_shows_secrets(s: &Server) {
    let recognizer = s.key("recognizer", None).await;
    listed_key_id(s, &recognizer).await;
}

/// A revoked key is refused (401) from then on; revoking it again is 404.
async fn a_revoked_key_is_unauthenticated_from_then_on(s: &Server) {
    let recognizer = s.key("recognizer", None).await;
    let rec_id = listed_key_id(s, &recognizer).await;
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

both!(
    every_operation_refuses_a_request_without_a_valid_key,
    a_recognizer_key_cannot_create_a_collection,
    a_limited_key_creates_only_its_own_collection,
    enrollers_create_collections_and_index_faces,
    a_recognizer_key_cannot_change_enrolment_data_or_keys,
    recognizers_and_enrollers_search_and_list_faces,
    a_limited_key_sees_only_its_collection,
    the_key_listing_never_shows_secrets,
    a_revoked_key_is_unauthenticated_from_then_on,
);
