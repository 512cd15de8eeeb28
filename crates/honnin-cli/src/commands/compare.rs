//! `honnin compare A B [--json]`: the largest face of A against every face of B.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use honnin_engine::calibration::fmr_for_similarity;
use honnin_engine::EngineError;
use serde::Serialize;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Source image: its largest face is compared.
    pub a: PathBuf,
    /// Target image: every face in it is compared.
    pub b: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Decide "match" at the similarity threshold for this false-match rate.
    #[arg(long, default_value_t = 1e-5, conflicts_with = "threshold")]
    pub fmr: f64,
    /// Decide "match" at this similarity (0–100) instead.
    #[arg(long)]
    pub threshold: Option<f32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FaceMatch {
    face_index: usize,
    bounding_box_pixels: honnin_engine::geometry::Rect,
    similarity: f32,
    score: f32,
    is_match: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    source_face: honnin_engine::geometry::Rect,
    threshold: f32,
    threshold_fmr: f64,
    threshold_fmr_measured: bool,
    /// FNMR at the threshold on the calibration sets (the table's anchor), if it is one.
    threshold_fnmr_on_calibration_sets: Option<f64>,
    template_model: String,
    matches: Vec<FaceMatch>,
}

pub fn run(eargs: &EngineArgs, args: CompareArgs) -> Result<()> {
    let engine = common::engine(eargs, true)?;
    let opts = common::detect_options(eargs);
    let a = common::load_image(&engine, &args.a)?;
    let b = common::load_image(&engine, &args.b)?;
    let fa = engine
        .detect(&a, &opts)
        .with_context(|| args.a.display().to_string())?;
    let src = fa
        .first()
        .ok_or(EngineError::NoFace)
        .with_context(|| format!("{} (source)", args.a.display()))?;
    let fb = engine
        .detect(&b, &opts)
        .with_context(|| args.b.display().to_string())?;
    if fb.is_empty() {
        return Err(anyhow::Error::from(EngineError::NoFace)
            .context(format!("{} (target)", args.b.display())));
    }
    let ta = engine.templates(&a, std::slice::from_ref(src))?;
    let tb = engine.templates(&b, &fb)?;
    let threshold = args
        .threshold
        .unwrap_or_else(|| engine.threshold_for_fmr(args.fmr));
    if !(0.0..=100.0).contains(&threshold) {
        anyhow::bail!("--threshold must be between 0 and 100");
    }
    let cal = engine.calibration().context("no calibration loaded")?;
    let (fmr, measured) = cal.fmr_at(threshold);
    let mut matches = Vec::new();
    for (i, (f, t)) in fb.iter().zip(&tb).enumerate() {
        let c = engine.compare(&ta[0], t)?;
        matches.push(FaceMatch {
            face_index: i,
            bounding_box_pixels: f.bounding_box_pixels,
            similarity: c.similarity,
            score: c.score,
            is_match: c.similarity >= threshold,
        });
    }
    let report = Report {
        source_face: src.bounding_box_pixels,
        threshold,
        threshold_fmr: fmr,
        threshold_fmr_measured: measured,
        threshold_fnmr_on_calibration_sets: cal.fnmr_at_fmr(fmr_for_similarity(threshold)),
        template_model: engine.template_model().to_string(),
        matches,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "threshold: similarity {:.1} = FMR {:.0e}{}{}",
        report.threshold,
        report.threshold_fmr,
        if measured {
            " (measured on the calibration sets, LFW and CFP)"
        } else {
            " (extrapolated beyond the calibration's measured range)"
        },
        report
            .threshold_fnmr_on_calibration_sets
            .map(|f| format!(", FNMR on the calibration sets {:.2} %", f * 100.0))
            .unwrap_or_default()
    );
    for m in &report.matches {
        let r = m.bounding_box_pixels;
        println!(
            "face #{} at {:.0},{:.0} {:.0}x{:.0}: similarity {:.1} → {}",
            m.face_index,
            r.left,
            r.top,
            r.width,
            r.height,
            m.similarity,
            if m.is_match { "MATCH" } else { "no match" }
        );
    }
    Ok(())
}
