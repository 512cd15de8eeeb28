//! Identity verifications, before the decision: who may start one and with what, the
//! order of the steps, the document step's checks (no face, two people, the card's
//! portrait and its ghost, small portraits), who sees a verification.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::fixtures::{
    id_card, kyc, put_document, small_card, start_verification, two_people,
};
use crate::common::{blank_png, code, fixture, Server};

/// Creation needs an enroller key: a recognizer's is 403 `AccessDenied`.
async fn a_recognizer_key_cannot_start_a_verification(s: &Server) {
    let k = kyc(s).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(&k.rec),
            Some(json!({"collectionId": k.c, "externalUserId": "u"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::FORBIDDEN, "AccessDenied"),
        "{v}"
    );
}

/// Creation needs valid ids and a valid policy.
async fn bad_verification_requests_are_invalid(s: &Server) {
    let k = kyc(s).await;
    let kyc = k.c.as_str();
    for (body, want) in [
        (
            json!({"collectionId": kyc, "externalUserId": "has space"}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": kyc}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": kyc, "externalUserId": "u", "policy": {"documentMatchFmr": 2}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": kyc, "externalUserId": "u", "policy": {"documentMatchFmr": 1e-3, "documentReviewFmr": 1e-4}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": kyc, "externalUserId": "u", "policy": {"livenessThreshold": 101}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
        (
            json!({"collectionId": kyc, "externalUserId": "u", "policy": {"colour": "red"}}),
            (StatusCode::BAD_REQUEST, "InvalidParameter"),
        ),
    ] {
        let (st, v) = s
            .call(
                "POST",
                "/v1/verifications",
                Some(&k.enroller),
                Some(body.clone()),
            )
            .await;
        assert_eq!((st, code(&v)), want, "{body}: {v}");
    }
}

/// Keeping images longer than 30 days is refused.
async fn keeping_images_longer_than_thirty_days_is_refused(s: &Server) {
    let k = kyc(s).await;
    let (st, v) = s
        .call(
            "POST",
            "/v1/verifications",
            Some(&k.enroller),
            Some(json!({"collectionId": k.c, "externalUserId": "g", "policy": {"keepImagesSecs": 2592001}})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter")
    );
}

/// A verification needs an existing collection.
async fn a_verification_of_an_unknown_collection_is_not_found(s: &Server) {
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
}

/// Wrong order: the liveness stream is refused before the document.
async fn the_liveness_stream_is_refused_before_the_document(s: &Server) {
    let k = kyc(s).await;
    let (_, session, token) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (code_, _) = s
        .open_stream(&session, &token)
        .await
        .err()
        .map(|e| (e.0, e.1))
        .unwrap();
    assert_eq!(code_, 409, "liveness before the document");
}

/// Documents without a face, or no image at all, are refused with their codes.
async fn a_document_without_a_face_or_not_an_image_is_refused(s: &Server) {
    let k = kyc(s).await;
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = put_document(s, &k.enroller, &id, &blank_png()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "NoFaceDetected"),
        "{v}"
    );
    let (st, v) = put_document(s, &k.enroller, &id, b"not an image").await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidImageFormat"),
        "{v}"
    );
}

/// Two people of similar size are `DocumentPortraitAmbiguous`; bad documents leave the
/// verification waiting for a document.
async fn a_document_with_two_people_is_ambiguous_and_leaves_it_waiting(s: &Server) {
    let k = kyc(s).await;
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = put_document(s, &k.enroller, &id, &two_people()).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "DocumentPortraitAmbiguous"),
        "{v}"
    );
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&k.enroller),
            None,
        )
        .await;
    assert_eq!(v["status"], "awaiting_document", "{v}");
}

/// Bad documents, one after another on the same verification, leave it waiting for a
/// document, and it then takes the right one.
async fn bad_documents_leave_it_waiting_and_it_then_takes_the_right_one(s: &Server) {
    let k = kyc(s).await;
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    for (doc, want) in [
        (blank_png(), "NoFaceDetected"),
        (b"not an image".to_vec(), "InvalidImageFormat"),
        (two_people(), "DocumentPortraitAmbiguous"),
    ] {
        let (st, v) = put_document(s, &k.enroller, &id, &doc).await;
        assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, want), "{v}");
    }
    let (_, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&k.enroller),
            None,
        )
        .await;
    assert_eq!(v["status"], "awaiting_document", "{v}");
    let (st, v) = put_document(s, &k.enroller, &id, &id_card(&fixture("obama.jpg"))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "awaiting_liveness", "{v}");
}

/// The card: the main portrait is found, the ghost image ignored; the verification
/// awaits liveness.
async fn the_card_portrait_is_found_and_its_ghost_ignored(s: &Server) {
    let k = kyc(s).await;
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = put_document(s, &k.enroller, &id, &id_card(&fixture("obama.jpg"))).await;
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
}

/// A second document is `VerificationStepOutOfOrder`.
async fn a_second_document_is_out_of_order(s: &Server) {
    let k = kyc(s).await;
    let obama_card = id_card(&fixture("obama.jpg"));
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = put_document(s, &k.enroller, &id, &obama_card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = put_document(s, &k.enroller, &id, &obama_card).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "VerificationStepOutOfOrder"),
        "{v}"
    );
}

/// A small portrait (the card photographed from further away, ~50 px) is refused when
/// the policy asks for 70 px.
async fn a_small_portrait_is_refused_when_the_policy_asks_for_more(s: &Server) {
    let k = kyc(s).await;
    let small_card = small_card(&id_card(&fixture("obama.jpg")));
    let (strict, _, _) = start_verification(
        s,
        &k.enroller,
        &k.c,
        "alice",
        json!({"minDocumentFacePx": 70}),
    )
    .await;
    let (st, v) = put_document(s, &k.enroller, &strict, &small_card).await;
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
    s.ok("DELETE", &format!("/v1/verifications/{strict}"), None)
        .await;
}

/// A small portrait is accepted with a warning by default.
async fn a_small_portrait_is_accepted_with_a_warning_by_default(s: &Server) {
    let k = kyc(s).await;
    let small_card = small_card(&id_card(&fixture("obama.jpg")));
    let (lenient, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = put_document(s, &k.enroller, &lenient, &small_card).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["document"]["faceSizePx"].as_f64().unwrap() < 70.0, "{v}");
    assert_eq!(
        v["document"]["warnings"],
        json!(["DocumentPortraitSmall"]),
        "{v}"
    );
    s.ok("DELETE", &format!("/v1/verifications/{lenient}"), None)
        .await;
}

/// Other keys do not see a verification (`VerificationNotFound`).
async fn other_keys_do_not_see_a_verification(s: &Server) {
    let k = kyc(s).await;
    let (id, _, _) = start_verification(s, &k.enroller, &k.c, "alice", json!({})).await;
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
            Some(&k.rec),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "VerificationNotFound"),
        "{v}"
    );
}

/// A malformed verification id is `VerificationNotFound`.
async fn a_malformed_verification_id_is_not_found(s: &Server) {
    let k = kyc(s).await;
    let (st, v) = s
        .call(
            "GET",
            "/v1/verifications/not-a-uuid",
            Some(&k.enroller),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "VerificationNotFound")
    );
}

both!(
    a_recognizer_key_cannot_start_a_verification,
    bad_verification_requests_are_invalid,
    keeping_images_longer_than_thirty_days_is_refused,
    a_verification_of_an_unknown_collection_is_not_found,
    the_liveness_stream_is_refused_before_the_document,
    a_document_without_a_face_or_not_an_image_is_refused,
    a_document_with_two_people_is_ambiguous_and_leaves_it_waiting,
    bad_documents_leave_it_waiting_and_it_then_takes_the_right_one,
    the_card_portrait_is_found_and_its_ghost_ignored,
    a_second_document_is_out_of_order,
    a_small_portrait_is_refused_when_the_policy_asks_for_more,
    a_small_portrait_is_accepted_with_a_warning_by_default,
    other_keys_do_not_see_a_verification,
    a_malformed_verification_id_is_not_found,
);
