//! Simulated sessions with real faces from `../shared/data` (skipped with a message
//! when it is absent): live sessions pass, every attack fails with its reason, stream
//! misbehaviour is reported, and the colour sequence is unpredictable and paced by the
//! client's `colorDisplayed`.

mod common;

use honnin_liveness::outcome::reasons;
use honnin_liveness::simulator::{Scenario, SimRun, Tamper, Tint};
use honnin_liveness::{
    ChallengeKind, Decision, OutcomeStatus, ServerMessage, SessionSettings, LIVE_THRESHOLD,
};

fn assert_live(r: &SimRun) {
    let o = &r.outcome;
    assert_eq!(r.error, None, "{}", r.source);
    assert_eq!(o.status, OutcomeStatus::Succeeded);
    assert_eq!(o.decision, Decision::Live, "{}: {:?}", r.source, o.reasons);
    assert!(
        o.confidence >= LIVE_THRESHOLD,
        "{}: {}",
        r.source,
        o.confidence
    );
    assert!(o.reasons.is_empty(), "{}: {:?}", r.source, o.reasons);
    let img = o.reference_image.as_ref().expect("a reference image");
    assert!(img.jpeg.starts_with(&[0xFF, 0xD8]));
    assert!(
        img.bounding_box.width > 0.15 && img.bounding_box.width < 0.6,
        "{:?}",
        img.bounding_box
    );
    assert!(o.reference_template.is_some());
    assert_eq!(o.frames_received, r.frames_sent);
}

fn assert_attack_fails(r: &SimRun, reason: &str) {
    let o = &r.outcome;
    assert_eq!(
        o.status,
        OutcomeStatus::Succeeded,
        "{}: analysed",
        r.scenario.name()
    );
    assert_ne!(
        o.decision,
        Decision::Live,
        "{}: {:?}",
        r.scenario.name(),
        o.reasons
    );
    assert!(o.confidence < LIVE_THRESHOLD);
    assert!(
        o.has_reason(reason),
        "{} must fail with {reason}; reasons {:?}",
        r.scenario.name(),
        o.reasons
    );
}

#[test]
fn live_sessions_pass_on_several_real_faces() {
    let Some(s) = common::sources() else { return };
    assert!(s.live.len() >= 5);
    for (i, src) in s.live.iter().enumerate() {
        let settings = SessionSettings {
            audit_images_limit: (i % 5) as u8,
            ..Default::default()
        };
        let r = common::run_with(Scenario::Live, src, None, 100 + i as u64, settings, |_| {});
        assert_live(&r);
        assert_eq!(r.outcome.audit_images.len(), (i % 5).min(4));
        let l = r.outcome.signals.light.as_ref().expect("light signal");
        assert!(l.lag_ms >= 0.0 && l.lag_ms <= 150.0, "{l:?}");
        assert!(l.chroma_agreement > 0.5, "{l:?}");
        assert!(r.outcome.signals.movement.growth > 1.3);
    }
}

#[test]
fn live_passes_without_the_light_challenge_and_the_light_signal_is_absent() {
    let Some(s) = common::sources() else { return };
    let settings = SessionSettings {
        challenge: ChallengeKind::FaceMovementChallenge,
        ..Default::default()
    };
    let r = common::run_with(Scenario::Live, &s.live[1], None, 5, settings, |_| {});
    assert_live(&r);
    assert!(r.colors_sent().is_empty());
    assert!(r.outcome.signals.light.is_none());
    assert!(r
        .outcome
        .signals
        .scores
        .iter()
        .all(|s| !s.signal.starts_with("light")));
}

#[test]
fn guidance_leads_the_face_into_the_oval() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::Live, &s.live[2], None, 9);
    let g = r.guidance();
    let names: Vec<String> = g
        .iter()
        .map(|c| {
            serde_json::to_value(c)
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("MOVE_CLOSER"),
        "{names:?}"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("FACE_IN_OVAL"),
        "{names:?}"
    );
    // The first guidance carries the face box the server sees.
    let first_box = r.log.iter().find_map(|e| match &e.event {
        honnin_liveness::simulator::LogEvent::ToClient(ServerMessage::Guidance {
            face, ..
        }) => Some(*face),
        _ => None,
    });
    assert!(first_box.flatten().is_some_and(|b| b.width > 50.0));
    assert!(r.outcome.signals.movement.oval_fitted);
}

#[test]
fn a_static_photo_fails() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::StaticPhoto, &s.print, None, 21);
    assert_attack_fails(&r, reasons::STATIC_FRAMES);
    assert!(r.outcome.has_reason(reasons::NO_LIGHT_REFLECTION));
    assert_eq!(r.outcome.decision, Decision::Spoof);
}

#[test]
fn a_screen_replay_with_a_global_tint_fails() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::ScreenReplay, &s.replay, None, 22);
    assert_attack_fails(&r, reasons::UNIFORM_LIGHT_RESPONSE);
    // The face did follow the colours: it is the locality that gives it away.
    let l = r.outcome.signals.light.as_ref().unwrap();
    assert!(l.face_correlation > 0.5, "{l:?}");
    // The same tint over live faces (the passive model cannot help there), added as
    // glare or multiplied as a colour filter, on a dark face in front of a bright wall
    // (live[1]) and others.
    for (i, tint) in [Tint::Additive, Tint::Multiplicative]
        .into_iter()
        .enumerate()
    {
        for face in [1, 3] {
            let r = common::run_with(
                Scenario::ScreenReplay,
                &s.live[face],
                None,
                23 + i as u64,
                SessionSettings::default(),
                |c| c.tint = tint,
            );
            assert_attack_fails(&r, reasons::UNIFORM_LIGHT_RESPONSE);
            assert!(r
                .outcome
                .signals
                .scores
                .iter()
                .any(|x| x.signal == "pad" && x.passed()));
        }
    }
}

#[test]
fn a_prerecorded_video_fails() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::PrerecordedVideo, &s.video, None, 24);
    assert_attack_fails(&r, reasons::NO_LIGHT_REFLECTION);
    // Real frames: the passive model alone would have accepted them.
    assert!(r
        .outcome
        .signals
        .scores
        .iter()
        .any(|x| x.signal == "pad" && x.passed()));
}

#[test]
fn lagging_frames_fail() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::LaggingFrames, &s.live[0], None, 25);
    assert_attack_fails(&r, reasons::LATE_LIGHT_RESPONSE);
    let l = r.outcome.signals.light.as_ref().unwrap();
    assert!(l.lag_ms > 300.0, "{l:?}");
}

#[test]
fn a_face_swap_fails() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::FaceSwap, &s.live[0], Some(&s.live[3]), 26);
    assert_attack_fails(&r, reasons::IDENTITY_CHANGED);
}

#[test]
fn perfectly_regular_timestamps_are_flagged_as_injection() {
    let Some(s) = common::sources() else { return };
    let r = common::run(Scenario::RegularTimestamps, &s.live[1], None, 27);
    assert_attack_fails(&r, reasons::SYNTHETIC_TIMESTAMPS);
}

#[test]
fn non_monotonic_timestamps_are_reported() {
    let Some(s) = common::sources() else { return };
    let r = common::run_with(
        Scenario::Live,
        &s.live[4],
        None,
        28,
        SessionSettings::default(),
        |c| c.tamper = Some(Tamper::NonMonotonicAt(30)),
    );
    assert_eq!(r.error, None, "a non-monotonic frame is dropped, not fatal");
    assert_attack_fails(&r, reasons::NON_MONOTONIC_TIMESTAMPS);
    assert_eq!(r.outcome.signals.stream.non_monotonic, 1);
}

#[test]
fn too_few_frames_give_low_confidence_with_a_reason() {
    let Some(s) = common::sources() else { return };
    let r = common::run_with(
        Scenario::Live,
        &s.live[0],
        None,
        29,
        SessionSettings::default(),
        |c| c.tamper = Some(Tamper::MaxFrames(10)),
    );
    assert_attack_fails(&r, reasons::TOO_FEW_FRAMES);
    assert_eq!(
        r.outcome.decision,
        Decision::Uncertain,
        "missing evidence is not a spoof"
    );
    let r = common::run_with(
        Scenario::Live,
        &s.live[1],
        None,
        30,
        SessionSettings::default(),
        |c| c.fps = 4.0,
    );
    assert_attack_fails(&r, reasons::LOW_FRAME_RATE);
}

#[test]
fn a_resolution_change_or_oversize_frame_mid_stream_ends_the_session() {
    let Some(s) = common::sources() else { return };
    for (tamper, code) in [
        (Tamper::ResolutionChangeAt(20), "InvalidFrame"),
        (Tamper::OversizeAt(20), "FrameTooLarge"),
    ] {
        let r = common::run_with(
            Scenario::Live,
            &s.live[0],
            None,
            31,
            SessionSettings::default(),
            |c| c.tamper = Some(tamper),
        );
        assert_eq!(r.error.as_ref().map(|e| e.code), Some(code));
        assert_eq!(r.outcome.status, OutcomeStatus::Failed);
        assert_eq!(r.outcome.status_reason.as_deref(), Some(code));
    }
}

#[test]
fn colours_differ_between_seeds_and_are_sent_one_at_a_time_after_display() {
    let Some(s) = common::sources() else { return };
    let a = common::run(Scenario::Live, &s.live[0], None, 40);
    let b = common::run(Scenario::Live, &s.live[0], None, 41);
    let (ca, cb) = (a.colors_sent(), b.colors_sent());
    assert_eq!(ca.len(), 8);
    assert_eq!(cb.len(), 8);
    let rgb = |c: &[(f64, u32, [u8; 3], u32)]| c.iter().map(|x| x.2).collect::<Vec<_>>();
    assert_ne!(rgb(&ca), rgb(&cb), "different seeds, different sequences");
    for run in [&a, &b] {
        let sent = run.colors_sent();
        let shown = run.colors_displayed();
        assert_eq!(shown.len(), sent.len());
        for k in 1..sent.len() {
            let (at, seq, _, _) = sent[k];
            assert_eq!(seq as usize, k);
            let (shown_at, shown_seq) = shown[k - 1];
            assert_eq!(shown_seq as usize, k - 1);
            let due = shown_at + sent[k - 1].3 as f64;
            // Never before the previous colour was displayed for its duration, and
            // promptly after (the simulator ticks at the session's deadline).
            assert!(at >= due - 1e-6, "colour {k} sent at {at}, due {due}");
            assert!(at <= due + 1.0, "colour {k} sent late: {at} vs {due}");
        }
        // Stop comes only after the last colour's time is up.
        let stop_at = run
            .log
            .iter()
            .find(|e| {
                matches!(
                    e.event,
                    honnin_liveness::simulator::LogEvent::ToClient(ServerMessage::Stop)
                )
            })
            .map(|e| e.at_ms)
            .unwrap();
        let (last_shown, _) = shown[shown.len() - 1];
        assert!(stop_at >= last_shown + sent[sent.len() - 1].3 as f64 - 1e-6);
    }
}

#[test]
fn two_faces_of_similar_size_get_multiple_faces_guidance() {
    use std::time::{Duration, Instant};
    let Some(data) = honnin_liveness::simulator::data_dir() else {
        eprintln!("SKIPPED: needs ../shared/data");
        return;
    };
    let bytes = std::fs::read(data.join("faces-misc/examples/two_people.jpg")).unwrap();
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    let frame = image::imageops::resize(&img, 640, 480, image::imageops::FilterType::Triangle);
    let jpeg = honnin_liveness::simulator::encode_jpeg(&frame, 90).unwrap();
    let mut s =
        honnin_liveness::LiveSession::new(common::analyzers(), SessionSettings::default(), 5);
    let t0 = Instant::now();
    s.on_text(
        t0,
        r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"t","version":"1"}}"#,
    )
    .unwrap();
    let out = s
        .on_frame(t0, &honnin_liveness::protocol::encode_frame(1.0, &jpeg))
        .unwrap();
    let codes: Vec<_> = out
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Guidance { code, face, .. } => Some((*code, face.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        vec![(honnin_liveness::GuidanceCode::MultipleFaces, true)],
        "{out:?}"
    );
    // No FACE_IN_OVAL, so `faceInOval` is refused.
    let e = s
        .on_text(
            t0 + Duration::from_millis(100),
            r#"{"type":"faceInOval","t":2}"#,
        )
        .unwrap_err();
    assert_eq!(e.code, "ProtocolViolation");
}

/// A real face placed so its box is `ratio` of the oval width, offset by `dx` oval widths.
fn placed(
    src: &honnin_liveness::simulator::SourceFrame,
    oval: honnin_liveness::protocol::Oval,
    ratio: f32,
    dx: f32,
) -> Vec<u8> {
    let s = ratio * oval.width / src.face.width;
    let c = src.face.center();
    let (cx, cy) = (oval.center_x + dx * oval.width, oval.center_y);
    let (w, h) = (src.image.width() as f32, src.image.height() as f32);
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        let sx = ((x as f32 - cx) / s + c.x).clamp(0.0, w - 1.0);
        let sy = ((y as f32 - cy) / s + c.y).clamp(0.0, h - 1.0);
        *src.image.get_pixel(sx as u32, sy as u32)
    });
    honnin_liveness::simulator::encode_jpeg(&img, 90).unwrap()
}

#[test]
fn guidance_codes_follow_the_face_position() {
    use honnin_liveness::protocol::encode_frame;
    use honnin_liveness::GuidanceCode as G;
    use std::time::{Duration, Instant};
    let Some(s) = common::sources() else { return };
    let src = &s.live[0].frames[0];
    let t0 = Instant::now();
    let mut session =
        honnin_liveness::LiveSession::new(common::analyzers(), SessionSettings::default(), 77);
    session
        .on_text(
            t0,
            r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"t","version":"1"}}"#,
        )
        .unwrap();
    let oval = session.oval().unwrap();
    let mut k = 0u64;
    let mut send = |session: &mut honnin_liveness::LiveSession, ratio: f32, dx: f32| {
        k += 1;
        // 1.1 s apart: every frame is detected and its guidance sent.
        let at = t0 + Duration::from_millis(1100 * k);
        session
            .on_frame(
                at,
                &encode_frame(1100.0 * k as f64, &placed(src, oval, ratio, dx)),
            )
            .unwrap()
            .into_iter()
            .find_map(|m| match m {
                ServerMessage::Guidance { code, .. } => Some(code),
                _ => None,
            })
    };
    assert_eq!(send(&mut session, 0.45, 0.0), Some(G::MoveCloser));
    assert_eq!(send(&mut session, 1.4, 0.0), Some(G::TooClose));
    assert_eq!(send(&mut session, 0.86, 0.45), Some(G::CenterFace));
    assert_eq!(send(&mut session, 0.86, 0.0), Some(G::HoldStill));
    assert_eq!(send(&mut session, 0.86, 0.0), Some(G::HoldStill));
    assert_eq!(send(&mut session, 0.86, 0.0), Some(G::FaceInOval));
    let out = session
        .on_text(
            t0 + Duration::from_millis(6700),
            r#"{"type":"faceInOval","t":6700}"#,
        )
        .unwrap();
    assert!(
        matches!(out.as_slice(), [ServerMessage::Color { seq: 0, .. }]),
        "{out:?}"
    );
    // Only one colour is out until the client reports it displayed.
    assert!(session
        .on_tick(t0 + Duration::from_millis(6700 + 4000))
        .unwrap()
        .is_empty());
    let e = session
        .on_text(
            t0 + Duration::from_millis(10_800),
            r#"{"type":"colorDisplayed","seq":1,"rgb":[0,0,0],"t":10800}"#,
        )
        .unwrap_err();
    assert_eq!(
        e.code, "ProtocolViolation",
        "only colour 0 can be displayed"
    );
}

#[test]
fn a_face_in_oval_that_crosses_the_oval_timeout_is_ignored() {
    use honnin_liveness::protocol::encode_frame;
    use std::time::{Duration, Instant};
    let Some(s) = common::sources() else { return };
    let src = &s.live[2].frames[0];
    let t0 = Instant::now();
    let mut session =
        honnin_liveness::LiveSession::new(common::analyzers(), SessionSettings::default(), 78);
    session
        .on_text(
            t0,
            r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"t","version":"1"}}"#,
        )
        .unwrap();
    let oval = session.oval().unwrap();
    // A face that never fits (too small), then the timeout.
    session
        .on_frame(t0, &encode_frame(0.0, &placed(src, oval, 0.45, 0.0)))
        .unwrap();
    let out = session.on_tick(t0 + Duration::from_secs(8)).unwrap();
    assert!(
        matches!(out.as_slice(), [ServerMessage::Color { seq: 0, .. }]),
        "a face was seen: the colours start anyway: {out:?}"
    );
    let late = r#"{"type":"faceInOval","t":8000}"#;
    assert!(session
        .on_text(t0 + Duration::from_millis(8010), late)
        .unwrap()
        .is_empty());
    assert_eq!(
        session
            .on_text(t0 + Duration::from_millis(8020), late)
            .unwrap_err()
            .code,
        "ProtocolViolation",
        "a second one is not"
    );
}
