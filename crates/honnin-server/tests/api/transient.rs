//! Transient faces (detected with `returnFaceId`) and the operations on them: verify,
//! identify, find-similar, group; compare and search and their retake reasons.

use serde_json::{json, Value};

use crate::common::fixtures::{collection_with_user, detect_id, shrunk};
use crate::common::{b64, fixture, per_backend, PerBackend, Server};

/// Transient faces of obama.jpg, obama2.jpg and biden.jpg, and a collection with a user
/// (`collection_with_user`): made once per shared server, only read.
struct Faces {
    a: String,
    b: String,
    c: String,
    t: String,
}

async fn faces(s: &Server) -> &'static Faces {
    static FACES: PerBackend<Faces> = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    per_backend(&FACES, s, || async {
        Faces {
            a: detect_id(s, "obama.jpg").await,
            b: detect_id(s, "obama2.jpg").await,
            c: detect_id(s, "biden.jpg").await,
            t: collection_with_user(s).await,
        }
    })
    .await
}

/// Two photos of one person are identical; another person is not.
async fn verify_tells_the_same_person_from_another(s: &Server) {
    let Faces { a, b, c, .. } = faces(s).await;
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
}

/// A transient face verifies against a user of a collection.
async fn verify_against_a_user_of_a_collection(s: &Server) {
    let Faces { b, t, .. } = faces(s).await;
    let v = s
        .ok(
            "POST",
            "/v1/verify",
            Some(json!({"faceId": b, "collectionId": t, "userId": "o"})),
        )
        .await;
    assert_eq!(v["isIdentical"], true, "{v}");
}

/// Identify gives each face its candidate users: the user for the same person, none
/// for a stranger.
async fn identify_finds_the_user_of_each_face(s: &Server) {
    let Faces { b, c, t, .. } = faces(s).await;
    let v = s
        .ok(
            "POST",
            "/v1/identify",
            Some(json!({"faceIds": [b, c], "collectionId": t})),
        )
        .await;
    assert_eq!(v[0]["candidates"][0]["userId"], "o", "{v}");
    assert!(v[1]["candidates"].as_array().unwrap().is_empty(), "{v}");
}

/// Find-similar puts the same person first.
async fn find_similar_puts_the_same_person_first(s: &Server) {
    let Faces { a, b, c, .. } = faces(s).await;
    let v = s
        .ok(
            "POST",
            "/v1/find-similar",
            Some(json!({"faceId": a, "faceIds": [c, b], "mode": "matchFace"})),
        )
        .await;
    assert_eq!(v[0]["faceId"], b.as_str(), "{v}");
}

/// Group puts the two photos of one person together and the other in the messy group.
async fn group_puts_one_person_together_and_the_rest_in_the_messy_group(s: &Server) {
    let Faces { a, b, c, .. } = faces(s).await;
    let v = s
        .ok("POST", "/v1/group", Some(json!({"faceIds": [a, b, c]})))
        .await;
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["messyGroup"], json!([c]));
}

/// Compares obama.jpg with `target` at `threshold`.
async fn compare(s: &Server, target: Vec<u8>, threshold: f64) -> Value {
    let body = json!({"sourceImage": b64(&fixture("obama.jpg")), "targetImage": b64(&target),
                      "similarityThreshold": threshold});
    s.ok("POST", "/v1/compare", Some(body)).await
}

fn reasons(v: &Value) -> Option<Value> {
    v["unmatchedFaces"][0].get("retakeReasons").cloned()
}

/// Compare: a non-match is "different person" unless the faces explain it. A face
/// shrunk to ~55 px against the same person at a threshold above their similarity →
/// retake (SMALL_BOUNDING_BOX).
async fn compare_asks_to_retake_a_small_face_of_the_same_person(s: &Server) {
    let v = compare(s, shrunk("obama2.jpg"), 99.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert!(
        reasons(&v)
            .and_then(|r| r.as_array().cloned())
            .unwrap_or_default()
            .contains(&json!("SMALL_BOUNDING_BOX")),
        "{v}"
    );
}

/// Compare: two good photos below the threshold → no retake reasons.
async fn compare_gives_no_retake_reasons_for_two_good_photos(s: &Server) {
    let v = compare(s, fixture("obama2.jpg"), 99.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(reasons(&v), None, "{v}");
}

/// Compare: a small face of a different person scoring like an impostor → no retake
/// reasons.
async fn compare_gives_no_retake_reasons_for_a_small_face_of_another_person(s: &Server) {
    let v = compare(s, shrunk("biden.jpg"), 70.0).await;
    assert!(v["faceMatches"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(reasons(&v), None, "{v}");
}

/// The two searches of a collection with a user, and the field of their matches.
fn searches(t: &str) -> [(String, &'static str); 2] {
    [
        (format!("/v1/collections/{t}/search"), "faceMatches"),
        (format!("/v1/collections/{t}/search-users"), "userMatches"),
    ]
}

async fn search(s: &Server, path: &str, image: Vec<u8>) -> Value {
    let body = json!({"image": b64(&image), "threshold": 99.0});
    s.ok("POST", path, Some(body)).await
}

/// Search: "no match" for a small probe whose person is in the collection but below the
/// threshold → retakeReasons.
async fn search_asks_to_retake_a_small_face_of_someone_in_the_collection(s: &Server) {
    let t = &faces(s).await.t;
    for (path, matches) in searches(t) {
        let v = search(s, &path, shrunk("obama2.jpg")).await;
        assert!(v[matches].as_array().unwrap().is_empty(), "{v}");
        assert!(
            v["retakeReasons"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("SMALL_BOUNDING_BOX"))),
            "{path}: {v}"
        );
    }
}

/// Search: for a good photo below the threshold, "no match" stands.
async fn search_gives_no_retake_reasons_for_a_good_photo(s: &Server) {
    let t = &faces(s).await.t;
    for (path, matches) in searches(t) {
        let v = search(s, &path, fixture("obama2.jpg")).await;
        assert!(v[matches].as_array().unwrap().is_empty(), "{v}");
        assert!(v.get("retakeReasons").is_none(), "{path}: {v}");
    }
}

/// Search: for a small face of someone far from everyone in the collection, "no match"
/// stands.
async fn search_gives_no_retake_reasons_for_a_small_face_of_a_stranger(s: &Server) {
    let t = &faces(s).await.t;
    for (path, _) in searches(t) {
        let v = search(s, &path, shrunk("biden.jpg")).await;
        assert!(v.get("retakeReasons").is_none(), "{path}: {v}");
    }
}

both!(
    verify_tells_the_same_person_from_another,
    verify_against_a_user_of_a_collection,
    identify_finds_the_user_of_each_face,
    find_similar_puts_the_same_person_first,
    group_puts_one_person_together_and_the_rest_in_the_messy_group,
    compare_asks_to_retake_a_small_face_of_the_same_person,
    compare_gives_no_retake_reasons_for_two_good_photos,
    compare_gives_no_retake_reasons_for_a_small_face_of_another_person,
    search_asks_to_retake_a_small_face_of_someone_in_the_collection,
    search_gives_no_retake_reasons_for_a_good_photo,
    search_gives_no_retake_reasons_for_a_small_face_of_a_stranger,
);
