//! Data-driven regression tests on `../shared/data` (CI runs them; see `.ci/run`).
//!
//! They are `#[ignore]`d so the everyday `cargo test` stays fast and self-contained;
//! run them with `cargo test --workspace --test data -- --ignored`.
//! Without the data folder they skip with a message, unless `HONNIN_REQUIRE_DATA` is
//! set (CI sets it), in which case a missing folder fails the run.
//!
//! Floors are set below the measured values (see models/MODELS.md) with a margin for
//! run-to-run noise, so a real regression fails CI and noise does not.

use std::path::PathBuf;
use std::process::Command;

fn data_dir() -> Option<PathBuf> {
    honnin_eval::data::for_test("the data tests", &["lfw"])
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_honnin"))
        .args(args)
        .env("HONNIN_NO_PROGRESS", "1")
        .output()
        .expect("run honnin")
}

fn honnin(args: &[&str]) -> (bool, String) {
    let out = run(args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Accuracy of LFW's fold 1 at the calibration's FMR-1e-3 threshold (similarity 50).
/// Measured 98.50 % with fr_feature + SFace and the table fitted on LFW and CFP (97.17 %
/// with MobileFaceNet + fr_feature; 99 %+ with the LFW-only table, where the same
/// threshold stood for a looser score: MODELS.md "Calibration"); floor 97.5 %.
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn lfw_fold_one_accuracy_stays_above_its_floor() {
    let Some(data) = data_dir() else { return };
    let out = std::env::temp_dir().join(format!("honnin-lfw-fold1-{}", std::process::id()));
    let (ok, text) = honnin(&[
        "eval",
        "lfw",
        "--data",
        data.join("lfw").to_str().unwrap(),
        "--folds",
        "1",
        "--min-accuracy",
        "0.975",
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("{text}");
    assert!(ok, "LFW fold 1 regression:\n{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["protocol"][0]["pairs"], 600);
    assert_eq!(
        report["imagesWithoutTemplate"], 0,
        "every fold-1 image must yield a template"
    );
}

#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn detection_recall_stays_above_its_floors() {
    let Some(data) = data_dir() else { return };
    let out = std::env::temp_dir().join(format!("honnin-detect-{}", std::process::id()));
    let (ok, text) = honnin(&[
        "--min-face-size",
        "24",
        "eval",
        "detect",
        "--data",
        data.to_str().unwrap(),
        "--lfw-stride",
        "10",
        "--min-recall",
        "0.95",
        "--min-lfw-found",
        "0.995",
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("{text}");
    assert!(ok, "detection regression:\n{text}");
}

/// Backs of ID cards in `id-documents/`: they carry an MRZ but no portrait, so a face
/// found there is a false detection. Checked by eye (see MODELS.md); any other file
/// is expected to show a portrait.
const DOCUMENTS_WITHOUT_PORTRAIT: &[&str] = &[
    "0_id-esp.png",
    "100_id-che.jpg",
    "100_id-mac.jpg",
    "100_id-si.jpg",
    "77_card-cmw.png",
];

#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn id_document_portraits_are_found() {
    let Some(data) = data_dir() else { return };
    let mut docs: Vec<PathBuf> = std::fs::read_dir(data.join("id-documents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("jpg" | "jpeg" | "png")
            )
        })
        .collect();
    docs.sort();
    assert!(!docs.is_empty());
    let mut args = vec![
        "--min-face-size",
        "20",
        "detect",
        "--json",
        "--max-faces",
        "1",
    ];
    let paths: Vec<String> = docs.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = run(&args);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("detect --json prints JSON");
    let results = v.as_array().expect("one result per document");
    assert_eq!(results.len(), docs.len());
    let (mut with, mut found, mut false_faces) = (0, 0, Vec::new());
    let mut missed = Vec::new();
    for (doc, r) in docs.iter().zip(results) {
        let name = doc.file_name().unwrap().to_string_lossy().to_string();
        let has_face = r["faces"].as_array().is_some_and(|f| !f.is_empty());
        if DOCUMENTS_WITHOUT_PORTRAIT.contains(&name.as_str()) {
            if has_face {
                false_faces.push(name);
            }
        } else {
            with += 1;
            if has_face {
                found += 1;
            } else {
                missed.push(name);
            }
        }
    }
    println!(
        "portrait found on {found} of {with} documents with a portrait (missed: {missed:?}); \
         faces on {} of {} portrait-less card backs {false_faces:?}",
        false_faces.len(),
        docs.len() - with
    );
    assert!(
        found * 100 >= with * 95,
        "portrait found on only {found} of {with} documents; missed {missed:?}"
    );
    assert!(
        false_faces.is_empty(),
        "a face was reported on card backs without a portrait: {false_faces:?}"
    );
}

fn pad_report(args: &[&str], name: &str) -> serde_json::Value {
    let json = std::env::temp_dir().join(format!("honnin-pad-{name}-{}.json", std::process::id()));
    let plot = json.with_extension("svg");
    let mut all = vec!["eval", "pad"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let (ok, text) = honnin(&all);
    println!("{text}");
    assert!(ok, "honnin eval pad failed:\n{text}");
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    std::fs::remove_file(&plot).ok();
    report
}

/// Liveness issue target: the single-frame PAD model's EER on NUAA (live vs printed
/// photos) stays ≤ 1 % (measured 0.00 %, MODELS.md), and the shipped threshold keeps
/// both error rates ≤ 1 %.
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn pad_model_separates_nuaa_live_from_prints() {
    let Some(data) = data_dir() else { return };
    let nuaa = data.join("nuaa-train");
    let r = pad_report(
        &[
            "--live",
            nuaa.join("live").to_str().unwrap(),
            "--attack",
            nuaa.join("print").to_str().unwrap(),
        ],
        "nuaa",
    );
    let rep = &r["report"];
    assert!(rep["live"].as_u64().unwrap() >= 500, "{rep}");
    assert!(rep["attacks"].as_u64().unwrap() >= 500, "{rep}");
    assert!(rep["eer"].as_f64().unwrap() <= 0.01, "EER {}", rep["eer"]);
    assert!(
        rep["atThreshold"]["apcer"].as_f64().unwrap() <= 0.01,
        "{rep}"
    );
    assert!(
        rep["atThreshold"]["bpcer"].as_f64().unwrap() <= 0.01,
        "{rep}"
    );
}

/// Liveness issue target: BPCER ≤ 5 % on every frame of the live video at the shipped
/// threshold (measured 0.81 %), while the screen replay of the same person is
/// rejected (APCER measured 0 %; floor 5 %). Needs `ffmpeg` (the CI script installs it).
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn pad_model_keeps_live_video_frames_and_rejects_the_replay() {
    let Some(data) = data_dir() else { return };
    let replay = data.join("replay");
    let r = pad_report(
        &[
            "--video",
            "--fps",
            "0",
            "--live",
            replay.join("person1-live.mp4").to_str().unwrap(),
            "--attack",
            replay.join("person1-screen-replay.mp4").to_str().unwrap(),
        ],
        "video",
    );
    let rep = &r["report"];
    assert!(rep["live"].as_u64().unwrap() >= 300, "{rep}");
    assert!(
        rep["atThreshold"]["bpcer"].as_f64().unwrap() <= 0.05,
        "{rep}"
    );
    assert!(
        rep["atThreshold"]["apcer"].as_f64().unwrap() <= 0.05,
        "{rep}"
    );
}

/// Floors of the document test (card style, first 150 people). Measured 2026-11-29
/// with fr_feature + SFace and the table fitted on LFW and CFP: 1 of 143 portraits
/// refused (0.7 %), FNMR 8.50 % at similarity 60 (FMR 0 of 115,469) and 3.25 % at 50
/// (FMR 8.7e-6); with MobileFaceNet + fr_feature 15.61 % and 5.87 % (MODELS.md,
/// "Choosing the recognizer on unseen data"). The renders are seeded, so the run is deterministic; the margin
/// covers other CPUs' floating point and deliberate small model or detector changes.
const MAX_PORTRAIT_FAILURES: &str = "0.03";
const MAX_FNMR: &str = "0.10";

#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn document_match_on_synthetic_id_cards_stays_within_its_floors() {
    let Some(data) = data_dir() else { return };
    let out = std::env::temp_dir().join(format!("honnin-document-{}", std::process::id()));
    // The first 150 people with two or more photos (813 images): their first photos as
    // ID cards through the verification's document step, against all their photos.
    let (ok, text) = honnin(&[
        "eval",
        "document",
        "--data",
        data.join("lfw").to_str().unwrap(),
        "--max-people",
        "150",
        "--styles",
        "card",
        "--samples",
        "0",
        "--max-portrait-failures",
        MAX_PORTRAIT_FAILURES,
        "--max-fnmr",
        MAX_FNMR,
        "--out",
        out.to_str().unwrap(),
    ]);
    println!("{text}");
    assert!(ok, "document-match regression:\n{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let card = &report["conditions"][1];
    assert_eq!(card["name"], "card");
    assert_eq!(
        card["genuinePairs"],
        report["conditions"][0]["genuinePairs"]
    );
    // The default thresholds hold their false-match rate on documents too.
    let fmr = card["atSimilarity"][1]["fmr"].as_f64().unwrap();
    assert_eq!(card["atSimilarity"][1]["similarity"], 60.0);
    assert!(fmr <= 1e-3, "card FMR at similarity 60: {fmr}");
}

/// Issue 13 target: at the liveness session's hard-evidence threshold
/// (`PAD_HARD_EVIDENCE_BELOW`), no live frame of a phone selfie video, a webcam, the
/// live video or NUAA is evidence of an attack (measured: 0 of 1,544; the lowest live
/// score was 1.2e-3, the phone selfie). Floor: BPCER ≤ 1 % on each set. The attacks'
/// APCER at that threshold is reported, not floored: there the passive model is weak
/// evidence and the session's active checks decide.
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn pad_hard_evidence_never_rejects_live_phone_webcam_or_nuaa_frames() {
    let Some(data) = data_dir() else { return };
    let phone = data.join("pad-phone");
    let images = pad_report(
        &[
            "--live",
            phone.join("webcam-replay/live").to_str().unwrap(),
            data.join("nuaa-train/live").to_str().unwrap(),
            "--attack",
            phone.join("webcam-replay/attack").to_str().unwrap(),
            data.join("nuaa-train/print").to_str().unwrap(),
        ],
        "hard-images",
    );
    let videos = pad_report(
        &[
            "--video",
            "--fps",
            "0",
            "--live",
            phone.join("selfie-video/live.mov").to_str().unwrap(),
            data.join("replay/person1-live.mp4").to_str().unwrap(),
            "--attack",
            phone.join("selfie-video/replay.mp4").to_str().unwrap(),
            data.join("replay/person1-screen-replay.mp4")
                .to_str()
                .unwrap(),
            phone.join("phone-replay-videos").to_str().unwrap(),
        ],
        "hard-videos",
    );
    for (name, r, min_live) in [("images", &images, 700), ("videos", &videos, 800)] {
        let hard = &r["atHardEvidence"];
        println!("{name}: at the hard-evidence threshold {hard}");
        assert!(r["report"]["live"].as_u64().unwrap() >= min_live, "{name}");
        assert!(hard["bpcer"].as_f64().unwrap() <= 0.01, "{name}: {hard}");
    }
    // Per source: the phone selfie video alone (the set the old threshold failed).
    let selfie: Vec<f64> = videos["samples"]["live"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["sample"].as_str().unwrap_or("").contains("live.mov"))
        .filter_map(|s| s["liveScore"].as_f64())
        .collect();
    assert!(selfie.len() >= 150, "{} selfie frames", selfie.len());
    let floor = videos["atHardEvidence"]["threshold"].as_f64().unwrap();
    let rejected = selfie.iter().filter(|&&s| s < floor).count();
    assert!(
        rejected as f64 <= 0.01 * selfie.len() as f64,
        "{rejected} of {} phone selfie frames are hard evidence of an attack",
        selfie.len()
    );
}

/// Issue 13 target: the challenge simulator driven by real live frames (the phone
/// selfie video, the webcam frames, the live video; 40 evenly spaced frames of each,
/// plus the standard NUAA sources) decides ≤ 5 % of live sessions not `live`, in
/// total and for each source, and every simulated attack still fails. Measured here:
/// 126 of 126 live, 12 of 12 attacks failed; with every 3rd frame (328 live sessions):
/// 2 not live (0.6 %, both `uncertain`), 36 of 36 attacks failed (`docs/liveness.md`
/// §5.1).
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn liveness_sessions_from_phone_and_webcam_frames_are_decided_live() {
    let Some(data) = data_dir() else { return };
    let phone = data.join("pad-phone");
    let out = std::env::temp_dir().join(format!("honnin-bench-live-{}.json", std::process::id()));
    let (ok, text) = honnin(&[
        "bench-liveness",
        "--data",
        data.to_str().unwrap(),
        "--sessions",
        "12",
        "--attacks-per-kind",
        "2",
        "--extra-live",
        phone.join("selfie-video/live.mov").to_str().unwrap(),
        phone.join("webcam-replay/live").to_str().unwrap(),
        data.join("replay/person1-live.mp4").to_str().unwrap(),
        "--extra-per-input",
        "40",
        "--max-live-bpcer",
        "0.05",
        "--require-attacks-fail",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: String = text
        .lines()
        .filter(|l| !l.starts_with('{') && (l.contains("BPCER") || l.contains("sessions,")))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(
        ok,
        "liveness floors missed:\n{}",
        text.lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).ok();
    let sessions = report["report"]["sessions"].as_array().unwrap();
    let live = sessions.iter().filter(|s| s["scenario"] == "live").count();
    // One session per source: 6 standard sources and 40 of each extra input.
    assert!(live >= 6 + 3 * 40 - 5, "{live} live sessions");
    // The passive model alone never turns a live session into `spoof` or `uncertain`.
    for s in sessions.iter().filter(|s| s["scenario"] == "live") {
        let reasons = s["reasons"].as_array().unwrap();
        assert!(
            !reasons.iter().any(|r| r == "PassiveSpoofDetected"),
            "live session {} flagged by the passive model: {s}",
            s["source"]
        );
    }
}

/// Issue 13 targets, as floors: on CFP frontal–frontal (6,750 genuine, 100,000 impostor
/// pairs) the calibration's stated FMR holds within 2× at similarity 50 and 60 (measured
/// with fr_feature + SFace 0.6× and 0.6×: 63 and 6 impostor pairs; at 70 one pair is
/// expected, too few to check: measured 0, reported). About half of these people set
/// the table; MODELS.md "Calibration" has the held-out half. FNMR at a measured FMR of
/// 1e-4 stays under its ceiling (measured 9.11 %, 12.04 % with MobileFaceNet +
/// fr_feature; the target of 5 % is not reached).
#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn cfp_frontal_pairs_hold_the_stated_fmr() {
    let Some(data) = data_dir() else { return };
    let out = std::env::temp_dir().join(format!("honnin-cfp-{}", std::process::id()));
    let (ok, text) = honnin(&[
        "eval",
        "pairs",
        "--list",
        data.join("cfp/pairs-frontal-frontal.tsv").to_str().unwrap(),
        "--max-fmr-ratio",
        "2",
        "--max-fnmr",
        "1e-4:0.10",
        "--out",
        out.to_str().unwrap(),
    ]);
    let summary: String = text
        .lines()
        .filter(|l| !l.starts_with("error[ImageTooSmall]"))
        .collect::<Vec<_>>()
        .join("\n");
    println!("{summary}");
    assert!(ok, "CFP calibration or FNMR floor missed:\n{summary}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["genuinePairs"], 6750);
    assert_eq!(report["impostorPairs"], 100_000);
    // The 12 CFP images under 80 px get no template and count as failures.
    assert!(report["imagesWithoutTemplate"].as_u64().unwrap() <= 12);
    let checks = report["calibrationCheck"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
}
