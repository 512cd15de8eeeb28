//! Liveness sessions: creation and its checks, reading, the stream's refusals, its
//! single use and protocol errors, deletion; the component's file and the demo (off).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::fixtures::{ws_send, ws_until};
use crate::common::{b64, blank_png, code, Server};

/// A recognizer key and a session it created (`auditImagesLimit` 2, device `dev-1`):
/// the key, the creation's answer, the session id and its client token.
struct Session {
    rec: String,
    created: Value,
    id: String,
    token: String,
}

async fn session(s: &Server) -> Session {
    let rec = s.key("recognizer", None).await;
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
    Session {
        rec,
        created: v,
        id,
        token,
    }
}

/// GET the session as `key`.
async fn read(s: &Server, id: &str, key: &str) -> (StatusCode, Value) {
    s.call(
        "GET",
        &format!("/v1/liveness/sessions/{id}"),
        Some(key),
        None,
    )
    .await
}

/// Create: recognizer keys may; the result carries a UUID and a session-only token.
async fn a_recognizer_creates_a_session_with_a_uuid_and_a_client_token(s: &Server) {
    let Session {
        created: v,
        id,
        token,
        ..
    } = session(s).await;
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert!(token.len() >= 40, "{token}");
    assert_eq!(
        v["streamPath"],
        format!("/v1/liveness/sessions/{id}/stream")
    );
}

/// A new session reads CREATED, with its challenge, no confidence and its device.
async fn a_new_session_reads_created_with_its_challenge(s: &Server) {
    let x = session(s).await;
    let (st, v) = read(s, &x.id, &x.rec).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "CREATED");
    assert_eq!(v["challenge"], "FaceMovementAndLightChallenge");
    assert_eq!(v["confidence"], Value::Null);
    assert_eq!(v["deviceCorrelationId"], "dev-1");
}

/// The client token is no API key.
async fn a_client_token_is_no_api_key(s: &Server) {
    let x = session(s).await;
    let (st, v) = read(s, &x.id, &x.token).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::UNAUTHORIZED, "Unauthenticated")
    );
}

/// A session is private to its key: another key's read is `SessionNotFound`.
async fn a_session_is_private_to_its_key(s: &Server) {
    let x = session(s).await;
    let other = s.key("recognizer", None).await;
    let (st, v) = read(s, &x.id, &other).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
}

/// Malformed and unknown session ids are `SessionNotFound`.
async fn unknown_and_malformed_session_ids_are_not_found(s: &Server) {
    let rec = s.key("recognizer", None).await;
    let (st, v) = read(s, "not-a-uuid", &rec).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    let (st, v) = read(s, &uuid::Uuid::new_v4().to_string(), &rec).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
}

/// Bad settings are `InvalidParameter`.
async fn bad_session_settings_are_invalid(s: &Server) {
    let rec = s.key("recognizer", None).await;
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
}

/// A reference image without a face is `NoFaceDetected`.
async fn a_reference_image_without_a_face_is_refused(s: &Server) {
    let rec = s.key("recognizer", None).await;
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
}

/// The stream refuses a wrong token (401 `InvalidClientToken`).
async fn the_stream_refuses_a_wrong_token(s: &Server) {
    let x = session(s).await;
    assert_eq!(
        s.open_stream(&x.id, "wrong")
            .await
            .err()
            .map(|e| (e.0, code(&e.1).to_string())),
        Some((401, "InvalidClientToken".into()))
    );
}

/// The stream of an unknown session is 404.
async fn the_stream_of_an_unknown_session_is_not_found(s: &Server) {
    let x = session(s).await;
    assert_eq!(
        s.open_stream(&uuid::Uuid::new_v4().to_string(), &x.token)
            .await
            .err()
            .map(|e| e.0),
        Some(404)
    );
}

/// A plain GET of the stream (no upgrade) is 400.
async fn a_plain_get_of_the_stream_is_a_bad_request(s: &Server) {
    let x = session(s).await;
    let res = s
        .http
        .get(format!(
            "{}/v1/liveness/sessions/{}/stream?token={}",
            s.base, x.id, x.token
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "plain GET is no upgrade"
    );
}

/// A session streams once (409 `SessionAlreadyStarted`) and reads IN_PROGRESS while it
/// streams.
async fn a_session_streams_once(s: &Server) {
    let x = session(s).await;
    let _ws = s
        .open_stream(&x.id, &x.token)
        .await
        .expect("first stream opens");
    assert_eq!(
        s.open_stream(&x.id, &x.token)
            .await
            .err()
            .map(|e| (e.0, code(&e.1).to_string())),
        Some((409, "SessionAlreadyStarted".into())),
        "a session streams once"
    );
    let (_, v) = read(s, &x.id, &x.rec).await;
    assert_eq!(v["status"], "IN_PROGRESS");
}

/// After `start` the server sends the challenge with its oval.
async fn the_stream_sends_the_challenge_after_start(s: &Server) {
    let x = session(s).await;
    let mut ws = s
        .open_stream(&x.id, &x.token)
        .await
        .expect("first stream opens");
    ws_send(&mut ws, json!({"type": "start", "video": {"width": 640, "height": 480}, "client": {"name": "api-test", "version": "1"}})).await;
    let ch = ws_until(&mut ws, "challenge").await.expect("challenge");
    assert_eq!(ch["challengeType"], "FaceMovementAndLightChallenge");
    assert!(ch["oval"]["width"].as_f64().unwrap() > 0.0, "{ch}");
}

/// A protocol violation ends the stream with an error and fails the session.
async fn a_protocol_violation_fails_the_session(s: &Server) {
    let x = session(s).await;
    let (id, rec) = (&x.id, &x.rec);
    let mut ws = s
        .open_stream(id, &x.token)
        .await
        .expect("first stream opens");
    ws_send(&mut ws, json!({"type": "start", "video": {"width": 640, "height": 480}, "client": {"name": "api-test", "version": "1"}})).await;
    ws_until(&mut ws, "challenge").await.expect("challenge");
    ws_send(&mut ws, json!({"type": "start", "video": {"width": 640, "height": 480}, "client": {"name": "x", "version": "1"}})).await;
    let err = ws_until(&mut ws, "error").await.expect("error message");
    assert_eq!(err["code"], "ProtocolViolation", "{err}");
    let mut status = Value::Null;
    for _ in 0..50 {
        let (_, v) = read(s, id, rec).await;
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
}

/// Delete removes a session at once: the API and the store no longer know it.
async fn deleting_a_session_removes_it_at_once(s: &Server) {
    let x = session(s).await;
    let (id, rec) = (&x.id, &x.rec);
    let (st, _) = s
        .call(
            "DELETE",
            &format!("/v1/liveness/sessions/{id}"),
            Some(rec),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = read(s, id, rec).await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "SessionNotFound"));
    assert_eq!(
        s.service.store().get_liveness(id).await.unwrap(),
        None,
        "the row is gone"
    );
}

/// The component's file is served without a key; the demo is off by default.
async fn the_component_is_served_without_a_key_and_the_demo_is_off(s: &Server) {
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

both!(
    a_recognizer_creates_a_session_with_a_uuid_and_a_client_token,
    a_new_session_reads_created_with_its_challenge,
    a_client_token_is_no_api_key,
    a_session_is_private_to_its_key,
    unknown_and_malformed_session_ids_are_not_found,
    bad_session_settings_are_invalid,
    a_reference_image_without_a_face_is_refused,
    the_stream_refuses_a_wrong_token,
    the_stream_of_an_unknown_session_is_not_found,
    a_plain_get_of_the_stream_is_a_bad_request,
    a_session_streams_once,
    the_stream_sends_the_challenge_after_start,
    a_protocol_violation_fails_the_session,
    deleting_a_session_removes_it_at_once,
    the_component_is_served_without_a_key_and_the_demo_is_off,
);
