//! Face login: profiles from passed liveness sessions, 1:1 and 1:N logins at a security
//! level, the session used once, lock-out and unlock, attempt records, assertions
//! verified with the published keys.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::fixtures::{
    id_card, kyc, live_outcome, live_session, live_session_with, step, verified,
};
use crate::common::{code, fixture, unique, Server};

both!(
    a_profile_enrolled_from_a_passed_session_logs_in_one_to_one,
    the_assertion_verifies_with_the_published_keys,
    an_impostor_fails_one_to_one_and_one_to_n,
    identification_names_the_person_among_the_profiles,
    a_liveness_session_is_used_once_and_must_be_fresh_and_finished,
    a_failed_liveness_session_fails_the_login_and_is_not_enrolled,
    enrolment_gates_refuse_a_turned_low_quality_or_crowded_face,
    repeated_failures_lock_the_user_until_an_operator_unlocks,
    profiles_are_added_to_reset_described_and_deleted_explicitly,
    a_level_beyond_the_calibration_is_refused_before_the_session_is_used,
    deleting_the_user_erases_the_profile_and_its_attempts,
    an_approved_verification_adds_a_frontal_live_face_to_the_profile,
    a_locked_user_is_not_let_in_by_identification,
    failed_liveness_counts_against_the_client_not_the_user,
    client_ids_are_not_an_api_logins_audience,
    only_the_key_that_made_a_session_uses_it,
);

/// A collection with its enroller and recognizer keys.
struct Setup {
    c: String,
    enroller: String,
    recognizer: String,
}

async fn setup(s: &Server) -> Setup {
    let c = unique("login");
    s.collection(&c).await;
    Setup {
        enroller: s.key("enroller", Some(&c)).await,
        recognizer: s.key("recognizer", Some(&c)).await,
        c,
    }
}

/// Enrols `user` from a passed session showing `photo`; returns the profile.
async fn enrol(s: &Server, k: &Setup, user: &str, photo: &str) -> Value {
    let session = live_session(s, &k.enroller, &fixture(photo), 95.0).await;
    s.ok_as(
        &k.enroller,
        "PUT",
        &format!("/v1/collections/{}/users/{user}/profile", k.c),
        Some(json!({"livenessSessionId": session})),
    )
    .await
}

/// A login by `k.recognizer` with a fresh passed session showing `photo`.
async fn login(s: &Server, k: &Setup, photo: &str, extra: Value) -> (StatusCode, Value) {
    let session = live_session(s, &k.recognizer, &fixture(photo), 95.0).await;
    let mut body = json!({"livenessSessionId": session});
    for (name, v) in extra.as_object().unwrap() {
        body[name] = v.clone();
    }
    s.call(
        "POST",
        &format!("/v1/collections/{}/logins", k.c),
        Some(&k.recognizer),
        Some(body),
    )
    .await
}

async fn a_profile_enrolled_from_a_passed_session_logs_in_one_to_one(s: &Server) {
    let k = setup(s).await;
    let p = enrol(s, &k, "alice", "obama.jpg").await;
    assert_eq!(p["userId"], "alice");
    assert_eq!(p["templates"].as_array().unwrap().len(), 1, "{p}");
    assert_eq!(p["templates"][0]["source"], "liveness");
    assert_eq!(p["templates"][0]["face"]["quality"], "high", "{p}");
    let (st, v) = login(s, &k, "obama2.jpg", json!({"userId": "alice"})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "SUCCEEDED", "{v}");
    assert_eq!(v["userId"], "alice");
    assert_eq!(v["mode"], "verification");
    assert_eq!(v["level"], "standard");
    assert_eq!(v["gallerySize"], 1);
    let t = &v["threshold"];
    assert_eq!(t["targetFar"], 1e-5);
    assert_eq!(t["comparisons"], 1);
    assert!(
        (t["similarity"].as_f64().unwrap() - 70.0).abs() < 1e-3,
        "{t}"
    );
    assert!(v["similarity"].as_f64().unwrap() >= 70.0, "{v}");
    assert!(v["livenessConfidence"].as_f64().unwrap() >= 90.0);
    assert!(v["assertion"].as_str().unwrap().split('.').count() == 3);
    // Recorded, without images.
    let a = s
        .ok_as(
            &k.enroller,
            "GET",
            &format!("/v1/collections/{}/logins?userId=alice", k.c),
            None,
        )
        .await;
    let attempts = a["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["loginId"], v["loginId"]);
    assert_eq!(attempts[0]["outcome"], "SUCCEEDED");
    assert!(!a.to_string().contains("/9j/"), "no JPEG in a record");
}

/// The public keys, as `jsonwebtoken` reads them.
async fn decoding_key(s: &Server, kid: &str) -> jsonwebtoken::DecodingKey {
    let (st, jwks) = s.call("GET", "/.well-known/jwks.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    let k = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} in {jwks}"));
    assert_eq!(
        (k["kty"].as_str(), k["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert_eq!(
        (k["alg"].as_str(), k["use"].as_str()),
        (Some("ES256"), Some("sig"))
    );
    jsonwebtoken::DecodingKey::from_ec_components(
        k["x"].as_str().unwrap(),
        k["y"].as_str().unwrap(),
    )
    .unwrap()
}

async fn the_assertion_verifies_with_the_published_keys(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "bob", "obama.jpg").await;
    let (_, v) = login(
        s,
        &k,
        "obama2.jpg",
        json!({"userId": "bob", "audience": "my-app", "nonce": "n-0S6_WzA2Mj", "level": "low"}),
    )
    .await;
    assert_eq!(v["outcome"], "SUCCEEDED", "{v}");
    let jwt = v["assertion"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let key = decoding_key(s, header.kid.as_deref().unwrap()).await;
    let mut val = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    val.set_audience(&["my-app"]);
    val.set_issuer(&["urn:honnin"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &val)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["amr"], json!(["face", "liveness"]));
    assert_eq!(claims["acr"], "urn:honnin:acr:low");
    assert_eq!(claims["jti"], v["loginId"]);
    assert_eq!(claims["collection_id"], k.c.as_str());
    assert_eq!(claims["match_fmr"], 1e-4);
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 300);
    // Another audience, or a changed byte, does not verify.
    let mut other = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    other.set_audience(&["another-app"]);
    assert!(jsonwebtoken::decode::<Value>(jwt, &key, &other).is_err());
    let mut forged = jwt.to_string();
    let mid = forged.find('.').unwrap() + 3;
    let c = if &forged[mid..mid + 1] == "A" {
        "B"
    } else {
        "A"
    };
    forged.replace_range(mid..mid + 1, c);
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &val).is_err());
}

async fn an_impostor_fails_one_to_one_and_one_to_n(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "carol", "obama.jpg").await;
    let (_, v) = login(s, &k, "biden.jpg", json!({"userId": "carol"})).await;
    assert_eq!(v["outcome"], "FAILED", "{v}");
    assert_eq!(v["reasons"], json!(["NoMatch"]));
    assert!(v["assertion"].is_null());
    assert!(v["similarity"].as_f64().unwrap() < 70.0);
    let (_, v) = login(s, &k, "biden.jpg", json!({})).await;
    assert_eq!(v["outcome"], "FAILED", "{v}");
    assert_eq!(v["mode"], "identification");
    assert!(v["userId"].is_null(), "no one identified: {v}");
    // Someone without a profile.
    let (_, v) = login(s, &k, "obama2.jpg", json!({"userId": "nobody"})).await;
    assert_eq!(v["reasons"], json!(["NoProfile"]), "{v}");
}

async fn identification_names_the_person_among_the_profiles(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "obama", "obama.jpg").await;
    enrol(s, &k, "biden", "biden.jpg").await;
    let (_, v) = login(s, &k, "obama2.jpg", json!({})).await;
    assert_eq!(v["outcome"], "SUCCEEDED", "{v}");
    assert_eq!(v["userId"], "obama");
    assert_eq!(v["gallerySize"], 2);
    let t = &v["threshold"];
    assert_eq!(t["comparisons"], 2);
    assert!(
        (t["perComparisonFmr"].as_f64().unwrap() - 5e-6).abs() < 1e-12,
        "{t}"
    );
    assert!(
        t["similarity"].as_f64().unwrap() > 70.0,
        "higher than 1:1: {t}"
    );
}

async fn a_liveness_session_is_used_once_and_must_be_fresh_and_finished(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "dave", "obama.jpg").await;
    let url = format!("/v1/collections/{}/logins", k.c);
    let session = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 95.0).await;
    let body = json!({"livenessSessionId": session, "userId": "dave"});
    let (st, _) = s
        .call("POST", &url, Some(&k.recognizer), Some(body.clone()))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .call("POST", &url, Some(&k.recognizer), Some(body.clone()))
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "SessionAlreadyUsed"));
    // Not streamed yet.
    let fresh = s
        .ok_as(
            &k.recognizer,
            "POST",
            "/v1/liveness/sessions",
            Some(json!({})),
        )
        .await["sessionId"]
        .clone();
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": fresh, "userId": "dave"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "SessionNotFinished"));
    // Another key's session is not found (and not used up).
    let other = s.key("recognizer", Some(&k.c)).await;
    let theirs = live_session(s, &other, &fixture("obama2.jpg"), 95.0).await;
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": theirs, "userId": "dave"})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&other),
            Some(json!({"livenessSessionId": theirs, "userId": "dave"})),
        )
        .await;
    assert_eq!(
        (st, v["outcome"].as_str()),
        (StatusCode::OK, Some("SUCCEEDED")),
        "{v}"
    );
    // Unknown ids.
    for id in ["not-a-uuid", "00000000-0000-4000-8000-000000000000"] {
        let (st, v) = s
            .call(
                "POST",
                &url,
                Some(&k.recognizer),
                Some(json!({"livenessSessionId": id})),
            )
            .await;
        assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    }
}

async fn a_failed_liveness_session_fails_the_login_and_is_not_enrolled(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "erin", "obama.jpg").await;
    let spoof = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 20.0).await;
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/collections/{}/logins", k.c),
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": spoof, "userId": "erin"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["outcome"], "FAILED", "{v}");
    assert_eq!(v["reasons"], json!(["LivenessFailed"]));
    assert!(v["similarity"].is_null(), "not compared: {v}");
    let spoof = live_session(s, &k.enroller, &fixture("obama2.jpg"), 20.0).await;
    let (st, v) = s
        .call(
            "PUT",
            &format!("/v1/collections/{}/users/frank/profile", k.c),
            Some(&k.enroller),
            Some(json!({"livenessSessionId": spoof})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "EnrolmentRejected")
    );
    assert!(
        v["message"].as_str().unwrap().contains("LivenessNotPassed"),
        "{v}"
    );
}

/// A change to a finished session's outcome.
type Spoil = fn(&mut honnin_liveness::LivenessOutcome);

async fn enrolment_gates_refuse_a_turned_low_quality_or_crowded_face(s: &Server) {
    let k = setup(s).await;
    let url = format!("/v1/collections/{}/users/gina/profile", k.c);
    let cases: [(&str, Spoil); 3] = [
        ("NotFrontal", |o| {
            o.reference_face.as_mut().unwrap().pose.yaw = 25.0
        }),
        ("LowQuality", |o| {
            o.reference_face.as_mut().unwrap().quality_for_recognition =
                honnin_engine::QualityLevel::Medium
        }),
        ("MultipleFaces", |o| {
            o.signals.movement.multiple_faces_fraction = 0.1
        }),
    ];
    for (reason, spoil) in cases {
        let mut o = live_outcome(&fixture("obama.jpg"), 95.0);
        spoil(&mut o);
        let session = live_session_with(s, &k.enroller, o).await;
        let (st, v) = s
            .call(
                "PUT",
                &url,
                Some(&k.enroller),
                Some(json!({"livenessSessionId": session})),
            )
            .await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "EnrolmentRejected"),
            "{reason}"
        );
        assert!(
            v["message"].as_str().unwrap().contains(reason),
            "{reason}: {v}"
        );
    }
    let (st, _) = s.call("GET", &url, Some(&k.enroller), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "nothing enrolled");
}

async fn repeated_failures_lock_the_user_until_an_operator_unlocks(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "hana", "obama.jpg").await;
    let claim = json!({"userId": "hana", "clientId": "kiosk-1"});
    for i in 1..=5 {
        let (_, v) = login(s, &k, "biden.jpg", claim.clone()).await;
        assert_eq!(v["outcome"], "FAILED", "{i}: {v}");
        assert_eq!(v["lockedUntil"].is_string(), i == 5, "{i}: {v}");
    }
    // Locked: even the right face is refused without a comparison.
    let (_, v) = login(s, &k, "obama2.jpg", claim.clone()).await;
    assert_eq!(v["outcome"], "LOCKED", "{v}");
    assert_eq!(v["reasons"], json!(["UserLocked", "ClientLocked"]));
    assert!(v["similarity"].is_null() && v["assertion"].is_null());
    assert!(v["lockedUntil"].is_string());
    // Another client for the same user is locked too (per user), and the kiosk for
    // another user (per client).
    let (_, v) = login(s, &k, "obama2.jpg", json!({"userId": "hana"})).await;
    assert_eq!(v["reasons"], json!(["UserLocked"]), "{v}");
    let (_, v) = login(s, &k, "obama2.jpg", json!({"clientId": "kiosk-1"})).await;
    assert_eq!(v["reasons"], json!(["ClientLocked"]), "{v}");
    // A recognizer may not unlock; an enroller (the operator) may.
    let unlock = format!("/v1/collections/{}/login-unlock", k.c);
    let (st, _) = s
        .call("POST", &unlock, Some(&k.recognizer), Some(claim.clone()))
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let v = s
        .ok_as(&k.enroller, "POST", &unlock, Some(claim.clone()))
        .await;
    assert_eq!(v["cleared"], json!(["user:hana", "client:kiosk-1"]));
    let (_, v) = login(s, &k, "obama2.jpg", claim.clone()).await;
    assert_eq!(v["outcome"], "SUCCEEDED", "{v}");
    let (st, v) = s
        .call("POST", &unlock, Some(&k.enroller), Some(json!({})))
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter")
    );
}

async fn profiles_are_added_to_reset_described_and_deleted_explicitly(s: &Server) {
    let k = setup(s).await;
    let url = format!("/v1/collections/{}/users/ivan/profile", k.c);
    enrol(s, &k, "ivan", "obama.jpg").await;
    let session = live_session(s, &k.enroller, &fixture("obama.jpg"), 95.0).await;
    let (st, p) = s
        .call(
            "POST",
            &format!("{url}/templates"),
            Some(&k.enroller),
            Some(json!({"livenessSessionId": session})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    assert_eq!(p["templates"].as_array().unwrap().len(), 2);
    // A login adds nothing.
    login(s, &k, "obama2.jpg", json!({"userId": "ivan"})).await;
    let p = s.ok_as(&k.recognizer, "GET", &url, None).await;
    assert_eq!(p["templates"].as_array().unwrap().len(), 2, "{p}");
    assert!(
        !p.to_string().contains("template\":"),
        "no template bytes: {p}"
    );
    // A recognizer may read, not change.
    let session = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 95.0).await;
    let (st, _) = s
        .call(
            "PUT",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": session})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // Reset to one. (obama2.jpg is turned 24° and of medium quality: refused.)
    let p = enrol(s, &k, "ivan", "obama.jpg").await;
    assert_eq!(p["templates"].as_array().unwrap().len(), 1);
    // Full at 10.
    for _ in 1..10 {
        let session = live_session(s, &k.enroller, &fixture("obama.jpg"), 95.0).await;
        s.ok_as(
            &k.enroller,
            "POST",
            &format!("{url}/templates"),
            Some(json!({"livenessSessionId": session})),
        )
        .await;
    }
    let session = live_session(s, &k.enroller, &fixture("obama.jpg"), 95.0).await;
    let (st, v) = s
        .call(
            "POST",
            &format!("{url}/templates"),
            Some(&k.enroller),
            Some(json!({"livenessSessionId": session})),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "ProfileFull"));
    // Deleted: gone, and the user can no longer log in.
    let (st, _) = s.call("DELETE", &url, Some(&k.enroller), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = s.call("DELETE", &url, Some(&k.enroller), None).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "ResourceNotFound"));
    let (_, v) = login(s, &k, "obama2.jpg", json!({"userId": "ivan"})).await;
    assert_eq!(v["reasons"], json!(["NoProfile"]), "{v}");
}

async fn a_level_beyond_the_calibration_is_refused_before_the_session_is_used(s: &Server) {
    let k = setup(s).await;
    for u in ["u1", "u2", "u3", "u4"] {
        enrol(s, &k, u, "obama.jpg").await;
    }
    let session = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 95.0).await;
    let url = format!("/v1/collections/{}/logins", k.c);
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": session, "level": "high"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "LevelBeyondCalibration"),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("name the user"),
        "{v}"
    );
    // The session is still there for a login that can be held.
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": session, "level": "high", "userId": "u1"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["threshold"]["fmrMeasured"], false,
        "1e-6 is extrapolated: {v}"
    );
    let (st, v) = s
        .call(
            "POST",
            &url,
            Some(&k.recognizer),
            Some(json!({"livenessSessionId": session, "level": "extreme"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter"),
        "{v}"
    );
}

async fn deleting_the_user_erases_the_profile_and_its_attempts(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "jack-7f3a", "obama.jpg").await;
    login(s, &k, "obama2.jpg", json!({"userId": "jack-7f3a"})).await;
    login(s, &k, "biden.jpg", json!({"userId": "jack-7f3a"})).await;
    s.ok(
        "DELETE",
        &format!("/v1/collections/{}/users/jack-7f3a", k.c),
        None,
    )
    .await;
    let left = honnin_storage::testing::rows_mentioning(
        s.service.store(),
        &["jack-7f3a"],
        &["webhooks", "tombstones"],
    )
    .await;
    assert!(left.is_empty(), "{left:?}");
}

async fn an_approved_verification_adds_a_frontal_live_face_to_the_profile(s: &Server) {
    let k = kyc(s).await;
    let v = verified(
        s,
        &k,
        "kim",
        json!({}),
        &id_card(&fixture("obama2.jpg")),
        95.0,
        &fixture("obama.jpg"),
    )
    .await;
    assert_eq!(v.v["status"], "approved", "{}", v.v);
    let e = step(&v.v, "enrolment");
    let template = e["details"]["loginProfile"]["templateId"]
        .as_str()
        .unwrap_or_else(|| panic!("{e}"));
    let p = s
        .ok_as(
            &k.enroller,
            "GET",
            &format!("/v1/collections/{}/users/kim/profile", k.c),
            None,
        )
        .await;
    assert_eq!(p["templates"][0]["templateId"], template);
    assert_eq!(p["templates"][0]["source"], "verification");
    assert_eq!(p["templates"][0]["sourceId"], v.id.as_str());
    // The verified person logs in afterwards.
    let session = live_session(s, &k.rec, &fixture("obama2.jpg"), 95.0).await;
    let r = s
        .ok_as(
            &k.rec,
            "POST",
            &format!("/v1/collections/{}/logins", k.c),
            Some(json!({"livenessSessionId": session, "userId": "kim"})),
        )
        .await;
    assert_eq!(r["outcome"], "SUCCEEDED", "{r}");
    // A turned live face is approved, enrolled in the gallery, and not added to a
    // login profile (the profile's gates).
    let k = kyc(s).await;
    let v = verified(
        s,
        &k,
        "lou",
        json!({}),
        &id_card(&fixture("obama.jpg")),
        95.0,
        &fixture("obama2.jpg"),
    )
    .await;
    assert_eq!(v.v["status"], "approved", "{}", v.v);
    let why = step(&v.v, "enrolment")["details"]["loginProfile"]["notAdded"].to_string();
    assert!(why.contains("NotFrontal"), "{why}");
}

async fn a_locked_user_is_not_let_in_by_identification(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "lena", "obama.jpg").await;
    for _ in 0..5 {
        login(s, &k, "biden.jpg", json!({"userId": "lena"})).await;
    }
    let (_, v) = login(s, &k, "obama2.jpg", json!({})).await;
    assert_eq!(v["outcome"], "LOCKED", "{v}");
    assert_eq!(v["userId"], "lena");
    assert_eq!(v["reasons"], json!(["UserLocked"]));
    assert!(v["assertion"].is_null() && v["lockedUntil"].is_string());
    // And the lock is not cleared by it.
    let (_, v) = login(s, &k, "obama2.jpg", json!({"userId": "lena"})).await;
    assert_eq!(v["outcome"], "LOCKED", "{v}");
}

async fn failed_liveness_counts_against_the_client_not_the_user(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "mona", "obama.jpg").await;
    let url = format!("/v1/collections/{}/logins", k.c);
    for _ in 0..5 {
        let spoof = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 10.0).await;
        let v = s
            .ok_as(
                &k.recognizer,
                "POST",
                &url,
                Some(json!({"livenessSessionId": spoof, "userId": "mona", "clientId": "kiosk-9"})),
            )
            .await;
        assert_eq!(v["reasons"], json!(["LivenessFailed"]), "{v}");
    }
    // The kiosk is locked; mona, from elsewhere, is not.
    let (_, v) = login(
        s,
        &k,
        "obama2.jpg",
        json!({"userId": "mona", "clientId": "kiosk-9"}),
    )
    .await;
    assert_eq!(v["reasons"], json!(["ClientLocked"]), "{v}");
    let (_, v) = login(
        s,
        &k,
        "obama2.jpg",
        json!({"userId": "mona", "clientId": "phone-1"}),
    )
    .await;
    assert_eq!(v["outcome"], "SUCCEEDED", "{v}");
}

async fn client_ids_are_not_an_api_logins_audience(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "nina", "obama.jpg").await;
    let (st, v) = login(
        s,
        &k,
        "obama2.jpg",
        json!({"userId": "nina", "audience": "hnc_0123456789abcdef0123456789abcdef"}),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "InvalidParameter"),
        "{v}"
    );
}

async fn only_the_key_that_made_a_session_uses_it(s: &Server) {
    let k = setup(s).await;
    enrol(s, &k, "olga", "obama.jpg").await;
    // The collection's admin may read the recognizer's session, not log in with it.
    let admin = s.key("admin", Some(&k.c)).await;
    let session = live_session(s, &k.recognizer, &fixture("obama2.jpg"), 95.0).await;
    s.ok_as(
        &admin,
        "GET",
        &format!("/v1/liveness/sessions/{session}"),
        None,
    )
    .await;
    let (st, v) = s
        .call(
            "POST",
            &format!("/v1/collections/{}/logins", k.c),
            Some(&admin),
            Some(json!({"livenessSessionId": session, "userId": "olga"})),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::NOT_FOUND, "SessionNotFound"),
        "{v}"
    );
}
