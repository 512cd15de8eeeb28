//! Bad input: every refusal has its stable code, its status and a message; bodies that
//! are not JSON or over the limit; multipart works like JSON.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{b64, blank_png, code, fixture, unique, Server};

/// Sends each (method, path, body, status, code) as the admin: each answer has the
/// status and the code, and a message.
async fn refused(s: &Server, cases: Vec<(&str, String, Value, StatusCode, &str)>) {
    let k = Some(s.admin.as_str());
    for (m, p, body, want, want_code) in cases {
        let body = (!body.is_null()).then_some(body);
        let (st, v) = s.call(m, &p, k, body.clone()).await;
        assert_eq!((st, code(&v)), (want, want_code), "{m} {p}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

/// Images that are no image, cut short, empty, not base64 or too large.
async fn bad_images_are_refused_with_their_codes(s: &Server) {
    let detect = || "/v1/detect".to_string();
    refused(
        s,
        vec![
            (
                "POST",
                detect(),
                json!({"image": b64(b"this is not an image")}),
                StatusCode::BAD_REQUEST,
                "InvalidImageFormat",
            ),
            (
                "POST",
                detect(),
                json!({"image": b64(&fixture("obama.jpg")[..2000])}),
                StatusCode::BAD_REQUEST,
                "CorruptImage",
            ),
            (
                "POST",
                detect(),
                json!({"image": b64(b"")}),
                StatusCode::BAD_REQUEST,
                "EmptyImage",
            ),
            (
                "POST",
                detect(),
                json!({"image": {"bytes": "%%%not base64"}}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "POST",
                detect(),
                json!({"image": b64(&vec![0u8; 6 * 1024 * 1024])}),
                StatusCode::PAYLOAD_TOO_LARGE,
                "ImageTooLarge",
            ),
        ],
    )
    .await;
}

/// Unknown fields, wrong types and out-of-range values are `InvalidParameter`.
async fn bad_detect_parameters_are_invalid(s: &Server) {
    let detect = || "/v1/detect".to_string();
    refused(
        s,
        vec![
            (
                "POST",
                detect(),
                json!({"imag": b64(b"x")}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "POST",
                detect(),
                json!({"image": b64(&fixture("obama.jpg")), "maxFaces": "two"}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "POST",
                detect(),
                json!({"image": b64(&fixture("obama.jpg")), "returnFaceId": true, "faceIdTimeToLive": 5}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
        ],
    )
    .await;
}

/// Collections: unknown ones are not found, a search needs a face and an image, ids
/// are created once and checked.
async fn bad_collection_requests_are_refused_with_their_codes(s: &Server) {
    let t = unique("t");
    s.collection(&t).await;
    refused(
        s,
        vec![
            (
                "POST",
                "/v1/collections/nope/faces".into(),
                json!({"image": b64(&fixture("obama.jpg"))}),
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
            ),
            (
                "POST",
                format!("/v1/collections/{t}/search"),
                json!({"image": b64(&blank_png())}),
                StatusCode::BAD_REQUEST,
                "NoFaceDetected",
            ),
            (
                "POST",
                format!("/v1/collections/{t}/search"),
                json!({}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "POST",
                "/v1/collections".into(),
                json!({"collectionId": t}),
                StatusCode::CONFLICT,
                "ResourceAlreadyExists",
            ),
            (
                "POST",
                "/v1/collections".into(),
                json!({"collectionId": "bad id/with slash"}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "GET",
                "/v1/collections/nope".into(),
                json!(null),
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
            ),
        ],
    )
    .await;
}

/// Transient face operations: unknown face ids are not found, malformed ones and empty
/// lists are invalid.
async fn bad_transient_face_requests_are_refused_with_their_codes(s: &Server) {
    refused(
        s,
        vec![
            (
                "POST",
                "/v1/verify".into(),
                json!({"faceId": "00000000-0000-4000-8000-000000000000", "faceId2": "00000000-0000-4000-8000-000000000001"}),
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
            ),
            (
                "POST",
                "/v1/verify".into(),
                json!({"faceId": "not-a-uuid", "faceId2": "x"}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "POST",
                "/v1/group".into(),
                json!({"faceIds": []}),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
        ],
    )
    .await;
}

/// Paging parameters out of range or malformed are `InvalidParameter`.
async fn bad_paging_parameters_are_invalid(s: &Server) {
    refused(
        s,
        vec![
            (
                "GET",
                "/v1/collections?maxResults=0".into(),
                json!(null),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "GET",
                "/v1/collections?maxResults=-3".into(),
                json!(null),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
            (
                "GET",
                "/v1/collections?nextToken=%%%".into(),
                json!(null),
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
            ),
        ],
    )
    .await;
}

/// Unknown routes are 404 and wrong methods 405, in JSON like every error.
async fn unknown_routes_and_methods_answer_json_errors(s: &Server) {
    refused(
        s,
        vec![
            (
                "GET",
                "/v1/no-such-route".into(),
                json!(null),
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
            ),
            (
                "PUT",
                "/v1/detect".into(),
                json!({}),
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
            ),
        ],
    )
    .await;
}

/// A body that is not JSON at all is a bad request.
async fn a_body_that_is_not_json_is_a_bad_request(s: &Server) {
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
}

/// A body over the request limit is 413 `PayloadTooLarge`.
async fn a_body_over_the_request_limit_is_payload_too_large(s: &Server) {
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
}

/// Multipart works like JSON.
async fn multipart_works_like_json(s: &Server) {
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

both!(
    bad_images_are_refused_with_their_codes,
    bad_detect_parameters_are_invalid,
    bad_collection_requests_are_refused_with_their_codes,
    bad_transient_face_requests_are_refused_with_their_codes,
    bad_paging_parameters_are_invalid,
    unknown_routes_and_methods_answer_json_errors,
    a_body_that_is_not_json_is_a_bad_request,
    a_body_over_the_request_limit_is_payload_too_large,
    multipart_works_like_json,
);
