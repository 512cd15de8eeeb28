//! Protocol errors of a liveness session: every misbehaviour yields its documented
//! error code (docs/liveness-protocol.md, section 3), the session is then finished and
//! `FAILED`, and nothing a client sends panics the server. These tests need the models
//! but no face data: the frames are synthetic.

mod common;

use std::time::{Duration, Instant};

use honnin_liveness::protocol::{codes, encode_frame};
use honnin_liveness::simulator::encode_jpeg;
use honnin_liveness::{LiveSession, OutcomeStatus, ServerMessage, SessionSettings};
use image::RgbImage;
use rand::{Rng, SeedableRng};

const START: &str =
    r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"test","version":"1"}}"#;

fn session(settings: SessionSettings) -> LiveSession {
    LiveSession::new(common::analyzers(), settings, 42)
}

/// A faceless 640×480 (or other size) JPEG with some texture.
fn jpeg(w: u32, h: u32, k: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            ((x + k * 3) % 256) as u8,
            ((y * 2 + k) % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    encode_jpeg(&img, 85).unwrap()
}

fn started(t0: Instant) -> LiveSession {
    let mut s = session(SessionSettings::default());
    let out = s.on_text(t0, START).unwrap();
    assert!(
        matches!(out.as_slice(), [ServerMessage::Challenge { .. }]),
        "{out:?}"
    );
    s
}

fn assert_failed_with(s: LiveSession, code: &str) {
    assert!(s.is_finished(), "a fatal error finishes the session");
    assert_eq!(s.error().map(|e| e.code), Some(code));
    let o = s.finish();
    assert_eq!(o.status, OutcomeStatus::Failed);
    assert_eq!(o.status_reason.as_deref(), Some(code));
    assert_eq!(
        o.complete_message(),
        ServerMessage::Complete {
            status: OutcomeStatus::Failed,
            reason: Some(code.to_string())
        }
    );
}

#[test]
fn start_is_answered_with_a_challenge_that_reveals_no_colour() {
    let t0 = Instant::now();
    let mut s = session(SessionSettings::default());
    let out = s.on_text(t0, START).unwrap();
    let [ServerMessage::Challenge {
        challenge_type,
        video,
        oval,
        color_count,
        ..
    }] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        serde_json::to_value(challenge_type).unwrap(),
        "FaceMovementAndLightChallenge"
    );
    assert_eq!((video.width, video.height), (640, 480));
    assert_eq!(*color_count, 8);
    assert!((oval.height / oval.width - 1.618).abs() < 0.01);
    let json = serde_json::to_string(&out[0]).unwrap();
    assert!(
        !json.contains("rgb"),
        "the challenge must not carry colours: {json}"
    );
    assert!(!s.is_finished());
    assert!(s.next_deadline().is_some());
}

#[test]
fn a_frame_before_the_challenge_is_a_protocol_violation() {
    let mut s = session(SessionSettings::default());
    let e = s
        .on_frame(Instant::now(), &encode_frame(1.0, &jpeg(640, 480, 0)))
        .unwrap_err();
    assert_eq!(e.code, codes::PROTOCOL_VIOLATION);
    assert_failed_with(s, codes::PROTOCOL_VIOLATION);
}

#[test]
fn a_second_start_is_a_protocol_violation() {
    let t0 = Instant::now();
    let mut s = started(t0);
    let e = s.on_text(t0, START).unwrap_err();
    assert_eq!(e.code, codes::PROTOCOL_VIOLATION);
    // Whatever comes next gets the same error; nothing panics.
    assert_eq!(
        s.on_text(t0, START).unwrap_err().code,
        codes::PROTOCOL_VIOLATION
    );
    assert!(s.on_tick(t0 + Duration::from_secs(100)).unwrap().is_empty());
    assert_eq!(s.next_deadline(), None);
    assert_failed_with(s, codes::PROTOCOL_VIOLATION);
}

#[test]
fn bad_json_and_unknown_messages_are_invalid_messages() {
    for bad in [
        "{not json",
        r#"{"type":"hello"}"#,
        r#"{"video":{"width":640,"height":480}}"#,
        r#"{"type":"start","video":{"width":640},"client":{}}"#,
        r#"{"type":"start","video":{"width":640,"height":480},"client":{},"x":1}"#,
        r#"{"type":"start","video":{"width":20000,"height":480},"client":{}}"#,
        r#"{"type":"start","video":{"width":640,"height":10},"client":{}}"#,
    ] {
        let mut s = session(SessionSettings::default());
        match s.on_text(Instant::now(), bad) {
            Err(e) => {
                assert_eq!(e.code, codes::INVALID_MESSAGE, "{bad}");
                assert_failed_with(s, codes::INVALID_MESSAGE);
            }
            // Unknown extra fields are tolerated (forward compatibility).
            Ok(out) => assert!(bad.contains(r#""x":1"#), "{bad} → {out:?}"),
        }
    }
    let long = format!(r#"{{"type":"end","t":1,"pad":"{}"}}"#, "x".repeat(20_000));
    let t0 = Instant::now();
    let mut s = started(t0);
    assert_eq!(
        s.on_text(t0, &long).unwrap_err().code,
        codes::INVALID_MESSAGE
    );
}

#[test]
fn messages_out_of_order_are_protocol_violations() {
    let t0 = Instant::now();
    for msg in [
        r#"{"type":"faceInOval","t":1}"#,
        r#"{"type":"colorDisplayed","seq":0,"rgb":[255,255,255],"t":1}"#,
        r#"{"type":"end","t":1}"#,
    ] {
        let mut s = started(t0);
        let e = s.on_text(t0, msg).unwrap_err();
        assert_eq!(e.code, codes::PROTOCOL_VIOLATION, "{msg}");
        assert_failed_with(s, codes::PROTOCOL_VIOLATION);
    }
    // Before `start`, too.
    let mut s = session(SessionSettings::default());
    assert_eq!(
        s.on_text(t0, r#"{"type":"end","t":1}"#).unwrap_err().code,
        codes::PROTOCOL_VIOLATION
    );
}

#[test]
fn frames_that_are_not_jpegs_of_the_announced_size_are_invalid() {
    let t0 = Instant::now();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("too short", vec![1, 2, 3]),
        ("png", encode_frame(1.0, b"\x89PNG\r\n\x1a\n0000")),
        ("truncated jpeg", {
            let j = jpeg(640, 480, 0);
            encode_frame(1.0, &j[..j.len() / 2])
        }),
        ("nan timestamp", encode_frame(f64::NAN, &jpeg(640, 480, 0))),
        ("wrong size", encode_frame(1.0, &jpeg(320, 240, 0))),
    ];
    for (what, bytes) in cases {
        let mut s = started(t0);
        let e = s.on_frame(t0, &bytes).unwrap_err();
        assert_eq!(e.code, codes::INVALID_FRAME, "{what}: {e}");
        assert_failed_with(s, codes::INVALID_FRAME);
    }
}

#[test]
fn a_resolution_change_mid_stream_is_an_invalid_frame() {
    let t0 = Instant::now();
    let mut s = started(t0);
    for k in 0..3u32 {
        let at = t0 + Duration::from_millis(66 * k as u64);
        s.on_frame(
            at,
            &encode_frame(1000.0 + 66.0 * k as f64, &jpeg(640, 480, k)),
        )
        .unwrap();
    }
    let e = s
        .on_frame(
            t0 + Duration::from_millis(300),
            &encode_frame(1300.0, &jpeg(480, 640, 9)),
        )
        .unwrap_err();
    assert_eq!(e.code, codes::INVALID_FRAME);
    assert!(e.message.contains("480x640"), "{e}");
    assert_failed_with(s, codes::INVALID_FRAME);
}

#[test]
fn an_oversize_frame_is_rejected() {
    let t0 = Instant::now();
    let mut s = started(t0);
    let mut j = jpeg(640, 480, 0);
    j.resize(512 * 1024 + 1, 0);
    let e = s.on_frame(t0, &encode_frame(1.0, &j)).unwrap_err();
    assert_eq!(e.code, codes::FRAME_TOO_LARGE);
    assert_failed_with(s, codes::FRAME_TOO_LARGE);
    // Exactly at the limit is accepted (JPEG decoders stop at the end-of-image marker).
    let mut s = started(t0);
    let mut j = jpeg(640, 480, 0);
    j.resize(512 * 1024, 0);
    s.on_frame(t0, &encode_frame(1.0, &j)).unwrap();
}

#[test]
fn too_many_frames_are_rejected() {
    let t0 = Instant::now();
    let mut s = LiveSession::new(
        common::analyzers(),
        SessionSettings {
            max_frames: 5,
            ..Default::default()
        },
        1,
    );
    s.on_text(t0, START).unwrap();
    let j = jpeg(640, 480, 0);
    for k in 0..5u32 {
        s.on_frame(
            t0 + Duration::from_millis(70 * k as u64),
            &encode_frame(k as f64 * 70.0, &j),
        )
        .unwrap();
    }
    let e = s
        .on_frame(t0 + Duration::from_millis(400), &encode_frame(400.0, &j))
        .unwrap_err();
    assert_eq!(e.code, codes::TOO_MANY_FRAMES);
    assert_failed_with(s, codes::TOO_MANY_FRAMES);
}

#[test]
fn non_monotonic_frames_are_dropped_not_fatal() {
    let t0 = Instant::now();
    let mut s = started(t0);
    s.on_frame(t0, &encode_frame(1000.0, &jpeg(640, 480, 0)))
        .unwrap();
    // Backwards and repeated timestamps: dropped without a message, the session goes on.
    for t in [990.0, 1000.0] {
        let out = s
            .on_frame(
                t0 + Duration::from_millis(50),
                &encode_frame(t, &jpeg(640, 480, 1)),
            )
            .unwrap();
        assert!(out.is_empty());
        assert!(!s.is_finished());
    }
}

#[test]
fn no_face_until_the_oval_timeout_is_a_timeout_and_guidance_says_no_face() {
    let t0 = Instant::now();
    let mut s = started(t0);
    let mut guidance = Vec::new();
    for k in 0..10u32 {
        let at = t0 + Duration::from_millis(200 * k as u64);
        for m in s
            .on_frame(at, &encode_frame(200.0 * k as f64, &jpeg(640, 480, k)))
            .unwrap()
        {
            if let ServerMessage::Guidance { code, face, .. } = m {
                assert!(face.is_none());
                guidance.push(code);
            }
        }
    }
    assert!(!guidance.is_empty(), "guidance is sent while frames come");
    assert!(guidance
        .iter()
        .all(|c| serde_json::to_value(c).unwrap() == "NO_FACE"));
    assert!(
        guidance.len() <= 3,
        "guidance only on change or every second: {guidance:?}"
    );
    let deadline = s.next_deadline().unwrap();
    assert!(deadline <= t0 + SessionSettings::default().oval_fit_timeout);
    let e = s.on_tick(t0 + Duration::from_secs(8)).unwrap_err();
    assert_eq!(e.code, codes::TIMEOUT);
    assert_failed_with(s, codes::TIMEOUT);
}

#[test]
fn a_silent_client_times_out() {
    let t0 = Instant::now();
    let mut s = LiveSession::new(
        common::analyzers(),
        SessionSettings {
            oval_fit_timeout: Duration::from_secs(60),
            ..Default::default()
        },
        3,
    );
    s.on_text(t0, START).unwrap();
    assert!(s.on_tick(t0 + Duration::from_secs(9)).unwrap().is_empty());
    assert_eq!(
        s.on_tick(t0 + Duration::from_secs(10)).unwrap_err().code,
        codes::TIMEOUT
    );
}

#[test]
fn a_session_dropped_before_stop_is_incomplete() {
    let t0 = Instant::now();
    let s = started(t0);
    let o = s.finish();
    assert_eq!(o.status, OutcomeStatus::Failed);
    assert_eq!(o.status_reason.as_deref(), Some("SessionIncomplete"));
    assert!(o.confidence == 0.0 && o.decision != honnin_liveness::Decision::Live);
}

/// Arbitrary bytes and mangled messages never panic a session.
#[test]
fn random_input_never_panics() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let valid = jpeg(640, 480, 3);
    let messages = [
        START,
        r#"{"type":"faceInOval","t":1}"#,
        r#"{"type":"colorDisplayed","seq":0,"rgb":[0,0,0],"t":1e308}"#,
        r#"{"type":"end","t":-1}"#,
    ];
    let t0 = Instant::now();
    for round in 0..200u32 {
        let mut s = session(SessionSettings::default());
        let at = t0 + Duration::from_millis(round as u64);
        if round % 3 != 0 {
            let _ = s.on_text(at, START);
        }
        for k in 0..6 {
            let at = at + Duration::from_millis(70 * k);
            match rng.random_range(0..4) {
                0 => {
                    let mut m = messages[rng.random_range(0..messages.len())]
                        .as_bytes()
                        .to_vec();
                    for _ in 0..rng.random_range(0..4) {
                        let i = rng.random_range(0..m.len());
                        m[i] = rng.random();
                    }
                    let _ = s.on_text(at, &String::from_utf8_lossy(&m));
                }
                1 => {
                    let n = rng.random_range(0..64);
                    let b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                    let _ = s.on_frame(at, &b);
                }
                2 => {
                    let mut b = encode_frame(rng.random_range(-1e3..1e3), &valid);
                    let i = rng.random_range(8..b.len());
                    let cut = rng.random_range(i..b.len());
                    b[i] = rng.random();
                    b.truncate(cut.max(9));
                    let _ = s.on_frame(at, &b);
                }
                _ => {
                    let _ = s.on_tick(at + Duration::from_secs(rng.random_range(0..20)));
                }
            }
        }
        let _ = s.finish();
    }
}
