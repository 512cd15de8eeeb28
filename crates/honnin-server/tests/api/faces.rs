//! Faces in a collection: indexing (one face, a group beyond `maxFaces`), search by
//! image and by face id, counting, paging, deletion.

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{b64, fixture, per_backend, unique, PerBackend, Server};

/// A collection of three faces: obama.jpg (`externalImageId` obama-1) and two of the
/// group photo t1.jpg (`maxFaces` 2).
pub struct People {
    pub c: String,
    pub obama: Value,
    pub obama_id: String,
    pub group: Value,
    pub stranger: String,
}

pub async fn people(s: &Server) -> People {
    let c = unique("people");
    s.ok("POST", "/v1/collections", Some(json!({"collectionId": c})))
        .await;
    let obama = s
        .ok(
            "POST",
            &format!("/v1/collections/{c}/faces"),
            Some(json!({"image": b64(&fixture("obama.jpg")), "externalImageId": "obama-1"})),
        )
        .await;
    let obama_id = obama["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    let group = s
        .ok(
            "POST",
            &format!("/v1/collections/{c}/faces"),
            Some(json!({"image": b64(&fixture("t1.jpg")), "maxFaces": 2, "qualityFilter": "NONE"})),
        )
        .await;
    let stranger = group["faceRecords"][0]["face"]["faceId"]
        .as_str()
        .unwrap()
        .to_string();
    People {
        c,
        obama,
        obama_id,
        group,
        stranger,
    }
}

/// `people`, built once per shared server for the tests that only read it.
async fn shared_people(s: &Server) -> &'static People {
    static PEOPLE: PerBackend<People> = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    per_backend(&PEOPLE, s, || people(s)).await
}

/// Indexing a photo of one person gives one face record with its `externalImageId`.
async fn indexing_a_photo_gives_one_record_with_its_external_image_id(s: &Server) {
    let p = shared_people(s).await;
    let obama = &p.obama;
    assert_eq!(obama["faceRecords"].as_array().unwrap().len(), 1, "{obama}");
    assert_eq!(
        obama["faceRecords"][0]["face"]["externalImageId"],
        "obama-1"
    );
}

/// A group photo with maxFaces 2: two indexed, the others unindexed with a reason.
async fn faces_beyond_max_faces_are_unindexed_with_a_reason(s: &Server) {
    let p = shared_people(s).await;
    let group = &p.group;
    assert_eq!(group["faceRecords"].as_array().unwrap().len(), 2, "{group}");
    let unindexed = group["unindexedFaces"].as_array().unwrap();
    assert_eq!(unindexed.len(), 4);
    assert!(unindexed.iter().all(|u| u["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r == "EXCEEDS_MAX_FACES")));
}

/// Search by image: the other photo of the same man finds him above the default
/// threshold.
async fn another_photo_of_the_same_person_is_found_above_the_default_threshold(s: &Server) {
    let p = shared_people(s).await;
    let r = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/search", p.c),
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    let m = r["faceMatches"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{r}");
    assert_eq!(m[0]["face"]["faceId"], p.obama_id.as_str());
    assert!(m[0]["similarity"].as_f64().unwrap() >= 70.0);
    assert_eq!(r["threshold"]["threshold"], 70.0);
}

/// A different person is not found.
async fn a_different_person_is_not_found(s: &Server) {
    let p = shared_people(s).await;
    let obama_id = &p.obama_id;
    let r = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/search", p.c),
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
}

/// Search by an indexed face; the face itself is not its own match.
async fn a_face_searched_by_id_is_not_its_own_match(s: &Server) {
    let p = shared_people(s).await;
    let obama_id = &p.obama_id;
    let r = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/search", p.c),
            Some(json!({"faceId": obama_id, "threshold": 0, "maxResults": 5})),
        )
        .await;
    assert_eq!(r["searchedFaceId"], obama_id.as_str());
    assert!(r["faceMatches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["face"]["faceId"] != obama_id.as_str()));
}

/// A collection's description counts its faces.
async fn a_collection_counts_its_faces(s: &Server) {
    let p = shared_people(s).await;
    let d = s.ok("GET", &format!("/v1/collections/{}", p.c), None).await;
    assert_eq!(d["faceCount"], 3);
}

/// Face listings page with `maxResults` and `nextToken`; the last page has no token.
async fn face_listings_page_with_next_tokens(s: &Server) {
    let p = shared_people(s).await;
    let c = &p.c;
    let p1 = s
        .ok(
            "GET",
            &format!("/v1/collections/{c}/faces?maxResults=2"),
            None,
        )
        .await;
    assert_eq!(p1["faces"].as_array().unwrap().len(), 2);
    let token = p1["nextToken"].as_str().expect("a next page").to_string();
    let p2 = s
        .ok(
            "GET",
            &format!("/v1/collections/{c}/faces?maxResults=2&nextToken={token}"),
            None,
        )
        .await;
    assert_eq!(p2["faces"].as_array().unwrap().len(), 1);
    assert!(p2.get("nextToken").is_none());
}

/// Deleted faces are gone from search and stay gone (a sync round does not resurrect
/// them); unknown ids are reported unsuccessful.
async fn deleted_faces_are_gone_from_search_and_stay_gone(s: &Server) {
    let p = crate::users::people_with_user(s).await;
    let (c, obama_id) = (&p.c, &p.obama_id);
    let del = s
        .ok(
            "DELETE",
            &format!("/v1/collections/{c}/faces"),
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
            &format!("/v1/collections/{c}/search"),
            Some(json!({"image": b64(&fixture("obama2.jpg"))})),
        )
        .await;
    assert!(r["faceMatches"].as_array().unwrap().is_empty(), "{r}");
    tokio::time::sleep(Duration::from_millis(300)).await; // a sync round must not resurrect it
    let r = s
        .ok("GET", &format!("/v1/collections/{c}/faces"), None)
        .await;
    assert!(!r.to_string().contains(obama_id.as_str()));
    s.ok("DELETE", &format!("/v1/collections/{c}/users/barack"), None)
        .await;
}

both!(
    indexing_a_photo_gives_one_record_with_its_external_image_id,
    faces_beyond_max_faces_are_unindexed_with_a_reason,
    another_photo_of_the_same_person_is_found_above_the_default_threshold,
    a_different_person_is_not_found,
    a_face_searched_by_id_is_not_its_own_match,
    a_collection_counts_its_faces,
    face_listings_page_with_next_tokens,
    deleted_faces_are_gone_from_search_and_stay_gone,
);
