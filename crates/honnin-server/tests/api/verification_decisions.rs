//! Identity verifications, the decision: approved and enrolled, document mismatches
//! (quality-aware), the review band, duplicates, liveness failures, kept images,
//! deletion.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::fixtures::{id_card, id_card_with_portrait, kyc, step, verified, Kyc, Verified};
use crate::common::{b64, code, fixture, per_backend, PerBackend, Server};

/// Same person: document portrait (on a card, with a ghost image) and live face are
/// two different photos of one person (liveness 92) → alice approved and enrolled.
async fn alice_approved(s: &Server, k: &Kyc) -> Verified {
    let card = id_card(&fixture("obama.jpg"));
    verified(
        s,
        k,
        "alice",
        json!({}),
        &card,
        92.0,
        &fixture("obama2.jpg"),
    )
    .await
}

/// A collection where alice was approved and enrolled, made once per shared server for
/// the tests that only read it or add verifications that enrol nobody.
async fn shared_alice(s: &Server) -> &'static (Kyc, Verified) {
    static ALICE: PerBackend<(Kyc, Verified)> = [
        tokio::sync::OnceCell::const_new(),
        tokio::sync::OnceCell::const_new(),
    ];
    per_backend(&ALICE, s, || async {
        let k = kyc(s).await;
        let v = alice_approved(s, &k).await;
        (k, v)
    })
    .await
}

/// The enrolled face of an approved verification.
fn enrolled_face(v: &Value) -> String {
    step(v, "enrolment")["details"]["faceId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Same person → approved, every step passed and recorded, enrolled.
async fn the_same_person_is_approved_and_enrolled(s: &Server) {
    let v = &shared_alice(s).await.1.v;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["decision"]["outcome"], "approved");
    assert_eq!(v["decision"]["reasons"], json!([]));
    assert_eq!(step(v, "document")["outcome"], "passed");
    let l = step(v, "liveness");
    assert_eq!(
        (
            l["outcome"].as_str(),
            l["score"].as_f64(),
            l["threshold"].as_f64()
        ),
        (Some("passed"), Some(92.0), Some(50.0)),
        "{l}"
    );
    let m = step(v, "documentMatch");
    assert_eq!(m["outcome"], "passed", "{m}");
    let alice_similarity = m["score"].as_f64().unwrap();
    assert!(alice_similarity >= m["threshold"].as_f64().unwrap());
    assert_eq!(
        m["thresholdInfo"]["falseMatchRate"].as_f64(),
        Some(1e-4),
        "{m}"
    );
    assert_eq!(step(v, "duplicateSearch")["outcome"], "passed");
    let e = step(v, "enrolment");
    assert_eq!(e["outcome"], "passed", "{e}");
    assert!(
        v["decision"]["models"]["faceModel"]
            .as_str()
            .unwrap()
            .starts_with("honnin-"),
        "{v}"
    );
}

/// The user exists with the live face; a search with another photo finds it.
async fn an_approved_user_is_found_with_another_photo(s: &Server) {
    let (k, alice) = shared_alice(s).await;
    let face_id = enrolled_face(&alice.v);
    let users = s
        .ok("GET", &format!("/v1/collections/{}/users", k.c), None)
        .await;
    assert!(users.to_string().contains("alice"), "{users}");
    let found = s
        .ok(
            "POST",
            &format!("/v1/collections/{}/search", k.c),
            Some(json!({"image": b64(&fixture("obama.jpg"))})),
        )
        .await;
    assert_eq!(
        found["faceMatches"][0]["face"]["faceId"],
        face_id.as_str(),
        "{found}"
    );
    assert_eq!(found["faceMatches"][0]["face"]["userId"], "alice");
}

/// The live face's template went with the decision, as the document's did; so did the
/// session's images; the stream cannot be reused.
async fn a_decision_drops_the_live_template_and_the_session_images(s: &Server) {
    let (k, alice) = shared_alice(s).await;
    let (session, token) = (&alice.session, &alice.token);
    assert_eq!(
        s.service.store().live_template(session).await.unwrap(),
        None
    );
    let (_, l) = s
        .call(
            "GET",
            &format!("/v1/liveness/sessions/{session}"),
            Some(&k.enroller),
            None,
        )
        .await;
    assert_eq!(
        (l["imagesDeleted"].as_bool(), l["referenceImage"].is_null()),
        (Some(true), true),
        "{l}"
    );
    assert_eq!(
        s.open_stream(session, token).await.err().map(|e| e.0),
        Some(409)
    );
}

/// A different person on the document → rejected, with the reason.
async fn a_different_person_on_the_document_is_rejected(s: &Server) {
    let k = kyc(s).await;
    let card = id_card(&fixture("biden.jpg"));
    let live = fixture("Tom_Hanks_54745.png");
    let v = verified(s, &k, "bob", json!({}), &card, 95.0, &live)
        .await
        .v;
    assert_eq!(v["status"], "rejected", "{v}");
    assert_eq!(v["decision"]["reasons"], json!(["DocumentMismatch"]), "{v}");
    let m = step(&v, "documentMatch");
    assert_eq!(m["outcome"], "failed");
    assert!(
        m["score"].as_f64().unwrap() < m["details"]["reviewThreshold"].as_f64().unwrap(),
        "{m}"
    );
    assert_eq!(step(&v, "enrolment")["outcome"], "skipped");
}

/// Quality-aware mismatches: both thresholds put at FMR 1e-7 (similarity 90).
fn strict() -> Value {
    json!({"documentMatchFmr": 1e-7, "documentReviewFmr": 1e-7, "enrolOnSuccess": false})
}

/// A card with a small portrait (130 px wide) of `photo`, the live face `live`, decided
/// under `policy`: `status` for `reason`, the small portrait measured, retake reasons
/// only where the similarity is not an impostor's (below 40), nothing enrolled.
async fn small_portrait_decided(
    s: &Server,
    photo: &str,
    live: &str,
    policy: Value,
    status: &str,
    reason: &str,
) {
    let k = kyc(s).await;
    let card = id_card_with_portrait(&fixture(photo), 130);
    let v = verified(s, &k, "alice", policy, &card, 95.0, &fixture(live))
        .await
        .v;
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

/// The same person on a card whose portrait is too small to tell, below the review
/// threshold → needs_review with LowFaceQuality.
async fn a_small_portrait_of_the_same_person_needs_review(s: &Server) {
    small_portrait_decided(
        s,
        "obama.jpg",
        "obama2.jpg",
        strict(),
        "needs_review",
        "LowFaceQuality",
    )
    .await;
}

/// ...and with reviewLowQualityMismatch false → rejected.
async fn a_small_portrait_mismatch_is_rejected_when_not_reviewed(s: &Server) {
    let mut lenient_off = strict();
    lenient_off["reviewLowQualityMismatch"] = json!(false);
    small_portrait_decided(
        s,
        "obama.jpg",
        "obama2.jpg",
        lenient_off,
        "rejected",
        "DocumentMismatch",
    )
    .await;
}

/// A different person on such a card scores like an impostor (below similarity 40) and
/// is rejected whatever the portrait.
async fn a_different_person_on_a_small_portrait_is_rejected(s: &Server) {
    small_portrait_decided(
        s,
        "biden.jpg",
        "Tom_Hanks_54745.png",
        json!({}),
        "rejected",
        "DocumentMismatch",
    )
    .await;
}

/// A similarity between the review and the match thresholds → needs_review. The match
/// threshold is put just above alice's measured similarity, the review band stays at
/// FMR 1e-3 (similarity 50).
async fn a_similarity_between_review_and_match_thresholds_needs_review(s: &Server) {
    let (k, alice) = shared_alice(s).await;
    let alice_similarity = step(&alice.v, "documentMatch")["score"].as_f64().unwrap();
    let fmr_above = 10f64.powf(-((alice_similarity + 1.0 - 20.0) / 10.0));
    let card = id_card(&fixture("obama.jpg"));
    let policy =
        json!({"documentMatchFmr": fmr_above, "documentReviewFmr": 1e-3, "enrolOnSuccess": false});
    let live = fixture("obama2.jpg");
    let v = verified(s, k, "alice", policy, &card, 92.0, &live).await.v;
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
}

/// Alice (enrolled) again under another externalUserId → duplicate, rejected by
/// default, naming her user and face.
async fn the_same_face_under_another_user_id_is_a_rejected_duplicate(s: &Server) {
    let (k, alice) = shared_alice(s).await;
    let face_id = enrolled_face(&alice.v);
    let card = id_card(&fixture("obama.jpg"));
    let live = fixture("obama2.jpg");
    let v = verified(s, k, "mallory", json!({}), &card, 90.0, &live)
        .await
        .v;
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
}

/// ...or sent to review when the policy says duplicates do not block.
async fn a_duplicate_needs_review_when_duplicates_do_not_block(s: &Server) {
    let (k, _) = shared_alice(s).await;
    let card = id_card(&fixture("obama.jpg"));
    let live = fixture("obama2.jpg");
    let policy = json!({"duplicatesBlock": false});
    let v = verified(s, k, "mallory2", policy, &card, 90.0, &live)
        .await
        .v;
    assert_eq!(v["status"], "needs_review", "{v}");
    assert_eq!(step(&v, "enrolment")["outcome"], "skipped");
}

/// Re-verifying alice herself is no duplicate (and adds her new face).
async fn re_verifying_the_same_user_is_no_duplicate(s: &Server) {
    let k = kyc(s).await;
    alice_approved(s, &k).await;
    let card = id_card(&fixture("obama.jpg"));
    let live = fixture("obama2.jpg");
    let v = verified(s, &k, "alice", json!({}), &card, 90.0, &live)
        .await
        .v;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(
        step(&v, "duplicateSearch")["details"]["sameUserMatches"],
        1,
        "{v}"
    );
}

/// carol (Tom Hanks on the card and live) with a liveness confidence of `conf`, not
/// enrolled.
async fn carol(s: &Server, conf: f32) -> Verified {
    let k = kyc(s).await;
    let tom = fixture("Tom_Hanks_54745.png");
    let policy = json!({"enrolOnSuccess": false});
    verified(s, &k, "carol", policy, &id_card(&tom), conf, &tom).await
}

/// `v` has `want` with `reason` among its reasons.
fn decided_with(v: &Value, want: &str, reason: &str) {
    assert_eq!(v["status"], want, "{v}");
    assert!(
        v["decision"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!(reason)),
        "{v}"
    );
}

/// A spoof (low liveness confidence) → rejected.
async fn a_spoof_is_rejected(s: &Server) {
    let v = carol(s, 10.0).await.v;
    decided_with(&v, "rejected", "LivenessCheckFailed");
}

/// An uncertain liveness → needs_review.
async fn an_uncertain_liveness_needs_review(s: &Server) {
    let v = carol(s, 40.0).await.v;
    decided_with(&v, "needs_review", "LivenessUncertain");
}

/// Images are not kept by default.
async fn images_are_not_kept_by_default(s: &Server) {
    let v = carol(s, 40.0).await.v;
    assert!(v.get("images").is_none(), "{v}");
}

/// With `keepImagesSecs` images are kept, until the sweeper deletes them (the record
/// stays).
async fn kept_images_are_returned_until_the_sweeper_deletes_them(s: &Server) {
    let k = kyc(s).await;
    let tom = fixture("Tom_Hanks_54745.png");
    let policy = json!({"keepImagesSecs": 1, "enrolOnSuccess": false});
    let Verified { id: kid, v, .. } =
        verified(s, &k, "frank", policy, &id_card(&tom), 90.0, &tom).await;
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
                Some(&k.enroller),
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
}

/// Delete removes a decided verification.
async fn deleting_a_verification_removes_it(s: &Server) {
    let k = kyc(s).await;
    let tom = fixture("Tom_Hanks_54745.png");
    let policy = json!({"enrolOnSuccess": false});
    let id = verified(s, &k, "carol", policy, &id_card(&tom), 40.0, &tom)
        .await
        .id;
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/verifications/{id}"),
            Some(&k.enroller),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s
        .call(
            "GET",
            &format!("/v1/verifications/{id}"),
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
    the_same_person_is_approved_and_enrolled,
    an_approved_user_is_found_with_another_photo,
    a_decision_drops_the_live_template_and_the_session_images,
    a_different_person_on_the_document_is_rejected,
    a_small_portrait_of_the_same_person_needs_review,
    a_small_portrait_mismatch_is_rejected_when_not_reviewed,
    a_different_person_on_a_small_portrait_is_rejected,
    a_similarity_between_review_and_match_thresholds_needs_review,
    the_same_face_under_another_user_id_is_a_rejected_duplicate,
    a_duplicate_needs_review_when_duplicates_do_not_block,
    re_verifying_the_same_user_is_no_duplicate,
    a_spoof_is_rejected,
    an_uncertain_liveness_needs_review,
    images_are_not_kept_by_default,
    kept_images_are_returned_until_the_sweeper_deletes_them,
    deleting_a_verification_removes_it,
);
