//! Data test: the verification's document step finds a usable main portrait on every
//! ID-document specimen in `../shared/data/id-documents` that shows one (and reports
//! why for the others). `#[ignore]`d like every data test; CI runs it with `--ignored`
//! and `HONNIN_REQUIRE_DATA=1` (a missing folder is then a failure, not a skip).
//!
//! cargo test -p honnin-core --test documents -- --ignored --nocapture

use std::path::PathBuf;

use honnin_core::verification::{
    document_faces, document_warnings, pick_document_portrait, VerificationPolicy,
};
use honnin_core::ServiceConfig;
use honnin_engine::{DetectOptions, Engine, EngineConfig};

/// Backs of ID cards (an MRZ, no portrait): checked by eye, as in the CLI data tests.
const WITHOUT_PORTRAIT: &[&str] = &[
    "0_id-esp.png",
    "100_id-che.jpg",
    "100_id-mac.jpg",
    "100_id-si.jpg",
    "77_card-cmw.png",
];

fn data_dir() -> Option<PathBuf> {
    honnin_eval::data::for_test("the document tests", &["id-documents"])
}

#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn every_document_specimen_with_a_portrait_yields_one() {
    let Some(data) = data_dir() else { return };
    let engine = Engine::new(EngineConfig::default()).unwrap();
    let policy = VerificationPolicy::default();
    let opts = DetectOptions {
        min_face_size: ServiceConfig::default().min_face_size,
        max_faces: 10,
        ..DetectOptions::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(data.join("id-documents"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    files.sort();
    let (mut found, mut failures, mut sizes, mut warned) = (0, Vec::new(), Vec::new(), 0);
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let (_, faces) = document_faces(&engine, &std::fs::read(f).unwrap(), opts).unwrap();
        let got = pick_document_portrait(&faces, policy.min_document_face_px);
        let expected = !WITHOUT_PORTRAIT.contains(&name.as_str());
        match &got {
            Ok(face) => {
                let warnings = document_warnings(face.face_size, &policy);
                println!(
                    "{name:<22} portrait {:>4.0} px, quality {:?}, {} face(s) on the document{}",
                    face.face_size,
                    face.quality_for_recognition,
                    faces.len(),
                    if warnings.is_empty() {
                        String::new()
                    } else {
                        format!(", warnings {warnings:?}")
                    }
                );
                sizes.push(face.face_size);
                warned += usize::from(!warnings.is_empty());
            }
            Err(e) => println!("{name:<22} {}: {e}", e.code()),
        }
        if expected {
            if got.is_ok() {
                found += 1;
            } else {
                failures.push(name);
            }
        } else if got.is_ok() {
            failures.push(format!("{name} (no portrait, yet one was accepted)"));
        }
    }
    sizes.sort_by(f32::total_cmp);
    let with = files.len() - WITHOUT_PORTRAIT.len();
    println!(
        "main portrait found on {found}/{with} documents with one; portrait size min {:.0} px, median {:.0} px",
        sizes.first().copied().unwrap_or(0.0),
        sizes.get(sizes.len() / 2).copied().unwrap_or(0.0)
    );
    println!(
        "accepted with DocumentPortraitSmall (below {:.0} px): {warned} of {}",
        policy.small_document_face_px,
        sizes.len()
    );
    println!("reproduce: cargo test -p honnin-core --test documents -- --ignored --nocapture");
    assert!(failures.is_empty(), "documents misjudged: {failures:?}");
}
