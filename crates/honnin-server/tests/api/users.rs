//! Users in a collection: creation, association of faces, search by user, listing.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{b64, code, fixture, Server};
use crate::faces::{people, People};

/// `people` with the user `barack` created and obama's face associated to it.
pub async fn people_with_user(s: &Server) -> People {
    let p = people(s).await;
    let c = &p.c;
    s.ok(
        "POST",
        &format!("/v1/collections/{c}/users"),
        Some(json!({"userId": "barack"})),
    )
    .await;
    let a = s
        .ok(
            "POST",
            &format!("/v1/collections/{c}/users/barack/faces"),
            Some(json!({"faceIds": [p.obama_id]})),
        )
        .await;
    assert_eq!(a["associatedFaces"], json!([p.obama_id]));
    p
}

/// A user id is created once: the second time is 409 `ResourceAlreadyExists`.
async fn creating_a_user_twice_conflicts(s: &Server) {
    let p = people_with_user(s).await;
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/collections/{}/users", p.c),
            Some(&s.admin),
            Some(json!({"userId": "barack"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "ResourceAlreadyExists")
    );
}

/// Association refuses a face of someone else (the user's own face was associated in
/// `people_with_user`).
async fn a_user_is_not_associated_with_a_face_of_someone_else(s: &Server) {
    let p = people_with_user(s).await;
    let stranger = &p.stranger;
    let a = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/users/barack/faces", p.c),
            Some(json!({"faceIds": [stranger]})),
        )
        .await;
    assert_eq!(a["associatedFaces"], json!([]));
    assert_eq!(
        a["unsuccessfulFaceAssociations"][0]["faceId"],
        stranger.as_str(),
        "{a}"
    );
}

/// Search by user finds the user of another photo of the face; users are listed; a
/// user is deleted.
async fn search_users_finds_the_user_of_another_photo(s: &Server) {
    let p = people_with_user(s).await;
    let c = &p.c;
    let u = s
        .ok(
            "POST",
            &format!("/v1/collections/{c}/search-users"),
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    assert_eq!(u["userMatches"][0]["userId"], "barack", "{u}");
    let users = s
        .ok("GET", &format!("/v1/collections/{c}/users"), None)
        .await;
    assert_eq!(users["users"][0]["userId"], "barack");
    s.ok("DELETE", &format!("/v1/collections/{c}/users/barack"), None)
        .await;
}

both!(
    creating_a_user_twice_conflicts,
    a_user_is_not_associated_with_a_face_of_someone_else,
    search_users_finds_the_user_of_another_photo,
);
