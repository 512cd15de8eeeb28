//! `honnin eval pad`: passive presentation-attack detection (fr_liveness) on live
//! versus attack images or videos, in ISO/IEC 30107-3 terms (APCER, BPCER, EER,
//! BPCER at APCER 5 / 1 / 0.1 %), with a DET plot and a JSON report.
//!
//! Every sample goes through the path the service takes (`honnin_accuracy::pad`:
//! decode, detect the largest face, [`PadModel::live_score`] on the full frame).
//! Samples without a face (or that cannot be decoded) are counted and listed, never
//! dropped silently. Videos are split into frames here by the `ffmpeg` binary (an
//! evaluation-time tool only).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_accuracy::pad::{counts, per_video, score_images, scores, Outcome, Sample};
use honnin_engine::pad::{PadModel, PAD_HARD_EVIDENCE_BELOW, PAD_THRESHOLD};
use honnin_engine::{DetectOptions, Engine};
use honnin_eval::pad::{det_plot, evaluate, PadReport, TARGET_APCERS};
use serde_json::json;

use crate::common;
use crate::media::{
    collect_files, extract_frames, require_ffmpeg, TempDir, IMAGE_EXTS, VIDEO_EXTS,
};
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct PadEvalArgs {
    /// Live (bona fide) samples: image files or folders (searched recursively for
    /// .jpg/.jpeg/.png); with --video, video files or folders of videos. Repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub live: Vec<PathBuf>,
    /// Attack samples (prints, screen replays, masks…), as for --live. Repeatable.
    #[arg(long, required = true, num_args = 1..)]
    pub attack: Vec<PathBuf>,
    /// Treat the inputs as videos and score their frames (needs `ffmpeg` on PATH).
    #[arg(long)]
    pub video: bool,
    /// Frames per second taken from each video (0 = every frame).
    #[arg(long, default_value_t = 5.0)]
    pub fps: f64,
    /// Decision threshold on the live score for APCER/BPCER (default: PAD_THRESHOLD, the
    /// model's balanced frame-level point; the report also gives the liveness session's
    /// hard-evidence threshold PAD_HARD_EVIDENCE_BELOW).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Where to write the JSON report (default target/eval/pad/report.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where to write the DET curve as SVG (default target/eval/pad/det.svg).
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

pub fn run(eargs: &EngineArgs, args: PadEvalArgs) -> Result<()> {
    let threshold = args.threshold.unwrap_or(PAD_THRESHOLD);
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold must lie in [0, 1], got {threshold}");
    }
    if args.video && !(args.fps >= 0.0 && args.fps.is_finite()) {
        bail!("--fps must be ≥ 0, got {}", args.fps);
    }
    let engine = common::engine(eargs, false)?;
    let pad = PadModel::load(eargs.model_dir.as_deref())?;
    let opts = DetectOptions {
        max_faces: 1,
        // As a liveness session detects its frames (no padded pass).
        pad_large_faces: false,
        ..common::detect_options(eargs)
    };

    let mut sides = Vec::new();
    for (label, inputs) in [("live", &args.live), ("attack", &args.attack)] {
        let samples = if args.video {
            score_videos(&engine, &pad, &opts, inputs, args.fps, label)?
        } else {
            let files = collect_files(inputs, IMAGE_EXTS)?;
            if files.is_empty() {
                bail!("no .jpg/.png images under the --{label} inputs {inputs:?}");
            }
            score_images(&engine, &pad, &opts, &files, label, &common::Bars)
        };
        sides.push(samples);
    }
    let (live, attack) = (&sides[0], &sides[1]);
    let (live_scores, attack_scores) = (scores(live), scores(attack));
    if live_scores.is_empty() || attack_scores.is_empty() {
        bail!(
            "nothing to measure: {} live and {} attack samples had a scorable face",
            live_scores.len(),
            attack_scores.len()
        );
    }
    let report = evaluate(&live_scores, &attack_scores, threshold, &TARGET_APCERS);
    // Where the liveness session treats the score as evidence of an attack.
    let hard = evaluate(&live_scores, &attack_scores, PAD_HARD_EVIDENCE_BELOW, &[]).at_threshold;

    let json_path = args
        .json
        .clone()
        .unwrap_or_else(|| super::default_out("pad").join("report.json"));
    let plot_path = args
        .plot
        .clone()
        .unwrap_or_else(|| super::default_out("pad").join("det.svg"));
    let title = format!(
        "PAD (fr_liveness): {} live vs {} attack {}",
        live_scores.len(),
        attack_scores.len(),
        if args.video { "frames" } else { "images" }
    );
    let plot = det_plot(&title, &[("fr_liveness", &report)]);
    if let Some(dir) = plot_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&plot_path, plot.to_svg())
        .with_context(|| format!("cannot write {}", plot_path.display()))?;
    let full = json!({
        "command": common::command_line(),
        "model": honnin_engine::models::FR_LIVENESS.file,
        "mode": if args.video { "video" } else { "image" },
        "fps": if args.video { Some(args.fps) } else { None },
        "threshold": threshold,
        "counts": { "live": counts(live), "attack": counts(attack) },
        "report": report,
        "atHardEvidence": hard,
        "videos": if args.video { Some(json!({
            "live": per_video(live, threshold), "attack": per_video(attack, threshold),
        })) } else { None },
        "samples": {
            "live": sample_rows(live), "attack": sample_rows(attack),
        },
    });
    common::write_json(&json_path, &full)?;
    print_summary(&report, live, attack, args.video);
    println!(
        "at the liveness session's hard-evidence threshold {PAD_HARD_EVIDENCE_BELOW}: APCER {:.2} %, BPCER {:.2} %",
        hard.apcer * 100.0,
        hard.bpcer * 100.0
    );
    println!(
        "report: {}  plot: {}",
        json_path.display(),
        plot_path.display()
    );
    println!("reproduce: {}", common::command_line());
    Ok(())
}

/// Scores the frames of every video among `inputs` (taken at `fps`; 0 = every frame).
fn score_videos(
    engine: &Engine,
    pad: &PadModel,
    opts: &DetectOptions,
    inputs: &[PathBuf],
    fps: f64,
    label: &str,
) -> Result<Vec<Sample>> {
    require_ffmpeg()?;
    let videos = collect_files(inputs, VIDEO_EXTS)?;
    if videos.is_empty() {
        bail!("no videos under the --{label} inputs {inputs:?}");
    }
    let mut samples = Vec::new();
    for (k, v) in videos.iter().enumerate() {
        let tmp = TempDir::new(label)?;
        let frames = extract_frames(v, &tmp.0, fps)?;
        let name = v
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scored = score_images(
            engine,
            pad,
            opts,
            &frames,
            &format!("{label} {}/{}", k + 1, videos.len()),
            &common::Bars,
        );
        samples.extend(scored.into_iter().enumerate().map(|(i, s)| Sample {
            name: format!("{}#{}", v.display(), i + 1),
            source: Some(v.clone()),
            outcome: s.outcome,
        }));
        eprintln!("{label}: {name}: {} frames", frames.len());
    }
    Ok(samples)
}

fn sample_rows(s: &[Sample]) -> Vec<serde_json::Value> {
    s.iter()
        .map(|x| match &x.outcome {
            Outcome::Score(v) => json!({"sample": x.name, "liveScore": v}),
            Outcome::NoFace => json!({"sample": x.name, "liveScore": null, "noFace": true}),
            Outcome::Error(e) => json!({"sample": x.name, "liveScore": null, "error": e}),
        })
        .collect()
}

fn print_summary(r: &PadReport, live: &[Sample], attack: &[Sample], video: bool) {
    let unit = if video { "frames" } else { "images" };
    for (label, s) in [("live", live), ("attack", attack)] {
        let c = counts(s);
        println!(
            "{label:>6}: {} {unit}, {} scored, {} without a face, {} errors",
            c.samples, c.scored, c.no_face, c.errors
        );
        for x in s.iter().filter(|x| !matches!(x.outcome, Outcome::Score(_))) {
            match &x.outcome {
                Outcome::NoFace => println!("        no face: {}", x.name),
                Outcome::Error(e) => println!("        error: {}: {e}", x.name),
                Outcome::Score(_) => {}
            }
        }
    }
    let p = r.at_threshold;
    println!(
        "at threshold {}: APCER {:.2} % ({}/{} attacks accepted as live), BPCER {:.2} % ({}/{} live rejected)",
        p.threshold,
        p.apcer * 100.0,
        p.attacks_accepted,
        r.attacks,
        p.bpcer * 100.0,
        p.live_rejected,
        r.live
    );
    match r.eer_threshold_above {
        Some(lo) => println!(
            "EER {:.2} % (APCER {:.2} %, BPCER {:.2} %) for thresholds in ({lo:.6}, {:.6}]",
            r.eer * 100.0,
            r.eer_point.apcer * 100.0,
            r.eer_point.bpcer * 100.0,
            r.eer_threshold
        ),
        None => println!(
            "EER {:.2} % at threshold {:.6}",
            r.eer * 100.0,
            r.eer_threshold
        ),
    }
    for b in &r.bpcer_at_apcer {
        println!(
            "BPCER at APCER ≤ {:.1} %: {:.2} % (threshold {:.6}, APCER {:.2} %){}",
            b.target_apcer * 100.0,
            b.point.bpcer * 100.0,
            b.point.threshold,
            b.point.apcer * 100.0,
            if b.low_evidence {
                "  [low evidence: fewer attacks than 1/target]"
            } else {
                ""
            }
        );
    }
    println!("threshold sweep (APCER / BPCER):");
    for p in &r.sweep {
        println!(
            "  {:>6}: {:6.2} % / {:6.2} %",
            p.threshold,
            p.apcer * 100.0,
            p.bpcer * 100.0
        );
    }
}
