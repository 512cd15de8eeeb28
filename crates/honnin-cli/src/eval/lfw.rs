//! `honnin eval lfw --data DIR`: LFW's 10-fold protocol (accuracy with the threshold
//! chosen on the other nine folds, ROC AUC, TAR at FAR 1e-3 and 1e-4) and all pairs
//! (FNMR at FMR 1e-3…1e-6 pooled and identity-weighted, for each candidate fusion
//! weighting); the run is `honnin_accuracy::lfw`. `--write-calibration` turns the
//! chosen weighting's all-pairs operating points into the engine's calibration table.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_accuracy::calibrate::calibration_path;
use honnin_accuracy::lfw::{self, locate, LfwSetup, REPORT_FMRS};
use honnin_eval::metrics::{evaluate, kfold_accuracy};
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct LfwArgs {
    /// LFW folder: holds `pairs.txt` and `lfw-deepfunneled/` (or is the image folder, with pairs.txt beside it).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for report.json and det.svg (default target/eval/lfw).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only the protocol pairs (skip the 87-million-pair all-pairs run).
    #[arg(long)]
    pub pairs_only: bool,
    /// Only these folds (1-based) of the protocol; implies --pairs-only.
    #[arg(long, value_delimiter = ',')]
    pub folds: Vec<usize>,
    /// Candidate weights of the first recognizer when fusing two (the second gets 1 − w).
    #[arg(long, value_delimiter = ',')]
    pub fusion_weights: Vec<f32>,
    /// Write the calibration table of the best candidate (lowest FNMR at FMR 1e-5) here
    /// (a folder means the engine's file name inside it). An LFW-only table: the shipped
    /// default is fitted on LFW and CFP by `honnin eval calibrate`.
    #[arg(long)]
    pub write_calibration: Option<PathBuf>,
    /// Reuse / store templates in this cache file.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Fail (exit 1) if accuracy at the calibrated FMR-1e-3 threshold is below this (0–1).
    #[arg(long)]
    pub min_accuracy: Option<f64>,
}

pub fn run(eargs: &EngineArgs, args: LfwArgs) -> Result<()> {
    let (img_root, pairs_path) = locate(&args.data)?;
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("lfw"));
    let setup = LfwSetup {
        img_root: &img_root,
        pairs_path: &pairs_path,
        folds: args.folds.iter().map(|f| f.saturating_sub(1)).collect(),
        pairs_only: args.pairs_only,
        fusion_weights: &args.fusion_weights,
        cache: args.cache.as_deref(),
    };
    let r = lfw::run(&engine, &opts, &setup, &common::Bars)?;
    let set = &r.templates;

    // Protocol pairs.
    let mut protocol = Vec::new();
    for (w, scores) in r.weightings.iter().zip(&r.protocol) {
        let kfold = r.kfold.then(|| kfold_accuracy(scores, r.folds));
        let (gen, imp) = lfw::protocol_split(scores);
        let rep = evaluate(&gen, &imp, &[1e-3, 1e-4]);
        // Accuracy at the engine's calibrated FMR-1e-3 threshold (a fixed operating point).
        let at_cal = engine.calibration().map(|c| {
            let t = c.score_for_similarity(c.threshold_for_fmr(1e-3));
            let correct = scores
                .iter()
                .filter(|(s, same, _)| (*s >= t) == *same)
                .count();
            json!({"fmr": 1e-3, "similarity": c.threshold_for_fmr(1e-3), "score": t,
                   "accuracy": correct as f64 / scores.len().max(1) as f64})
        });
        protocol.push(json!({
            "weights": w,
            "pairs": scores.len(),
            "kfold": kfold,
            "auc": rep.auc,
            "eer": rep.eer,
            "tarAtFar": rep.operating_points.iter().map(|p| json!({
                "far": p.target_fmr, "tar": 1.0 - p.fnmr, "threshold": p.threshold,
                "impostorsAtOrAbove": p.impostors_at_or_above, "note": "FAR resolution is 1/impostor pairs"
            })).collect::<Vec<_>>(),
            "accuracyAtCalibratedFmr1e3Threshold": at_cal,
        }));
    }

    let no_candidates = Vec::new();
    let candidates = r
        .all_pairs
        .as_ref()
        .map(|a| &a.candidates)
        .unwrap_or(&no_candidates);
    let best = r.all_pairs.as_ref().and_then(|a| a.best);
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let report = json!({
        "command": common::command_line(),
        "dataset": img_root.display().to_string(),
        "templateModel": engine.template_model(),
        "images": r.images,
        "imagesWithoutTemplate": set.failures(),
        "imagesFoundOnRelaxedRetry": set.relaxed_detections,
        "protocolPairsWithMissingTemplate": r.protocol_pairs_with_missing_template,
        "protocol": protocol,
        "allPairs": r.all_pairs.as_ref().map(|a| json!({
            "skippedGenuine": a.skipped_genuine, "skippedImpostor": a.skipped_impostor,
            "candidates": a.candidates.iter().map(|c| json!({
                "weights": c.weights,
                "genuinePairs": c.report.genuine_pairs, "impostorPairs": c.report.impostor_pairs,
                "identities": c.report.identities, "auc": c.report.auc, "eer": c.report.eer,
                "operatingPoints": c.report.operating_points.iter().filter(|p| REPORT_FMRS.iter().any(|f| (f - p.target_fmr).abs() < f * 1e-6)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "chosen": a.best.map(|k| a.candidates[k].weights.clone()),
        })),
        "seconds": {"templates": r.template_secs, "allPairs": r.all_pairs_secs},
    });
    common::write_json(&out_dir.join("report.json"), &report)?;

    if let Some(k) = best {
        let c = &candidates[k];
        let plot = LogLogPlot {
            title: format!("LFW all pairs — {}", engine.template_model()),
            x_label: "false-match rate (FMR)".into(),
            y_label: "false-non-match rate (FNMR)".into(),
            x_range: (1e-8, 1.0),
            y_range: (1e-4, 1.0),
            series: candidates
                .iter()
                .map(|c| Series {
                    name: format!(
                        "w = {:?}",
                        c.weights
                            .iter()
                            .map(|w| (w * 100.0).round() / 100.0)
                            .collect::<Vec<_>>()
                    ),
                    points: c.report.roc.iter().map(|p| (p.fmr, p.fnmr)).collect(),
                })
                .collect(),
            markers: REPORT_FMRS
                .iter()
                .map(|&f| (f, format!("{f:.0e}")))
                .collect(),
        };
        std::fs::write(out_dir.join("det.svg"), plot.to_svg())?;
        if let Some(path) = &args.write_calibration {
            let path = calibration_path(&engine, path);
            let cal = lfw::calibration(
                &engine,
                c,
                format!("LFW deep-funneled, all pairs ({})", args.data.display()),
                common::command_line(),
            )?;
            common::write_json(&path, &cal)?;
            eprintln!("calibration written to {}", path.display());
        }
    } else if args.write_calibration.is_some() {
        bail!("--write-calibration needs the all-pairs run (drop --pairs-only/--folds)");
    }

    // Human summary.
    println!(
        "LFW ({} images, {} without a template) — {}",
        r.images,
        set.failures(),
        engine.template_model()
    );
    for p in &protocol {
        if let Some(k) = p["kfold"].as_object() {
            println!(
                "  protocol w={}: 10-fold accuracy {:.2} % ± {:.2}, AUC {:.5}",
                p["weights"],
                k["meanAccuracy"].as_f64().unwrap_or(0.0) * 100.0,
                k["stdAccuracy"].as_f64().unwrap_or(0.0) * 100.0,
                p["auc"].as_f64().unwrap_or(0.0)
            );
        }
        if let Some(a) = p["accuracyAtCalibratedFmr1e3Threshold"].as_object() {
            println!(
                "  accuracy at the calibrated FMR-1e-3 threshold: {:.2} %",
                a["accuracy"].as_f64().unwrap_or(0.0) * 100.0
            );
        }
    }
    for c in candidates {
        let pts: Vec<String> = REPORT_FMRS
            .iter()
            .filter_map(|&f| {
                c.report
                    .operating_points
                    .iter()
                    .find(|p| (p.target_fmr - f).abs() < f * 1e-6)
                    .map(|p| {
                        format!(
                            "FMR {f:.0e}: FNMR {:.2} % (id-weighted {:.2} %, t={:.3})",
                            p.fnmr * 100.0,
                            p.fnmr_identity_weighted * 100.0,
                            p.threshold
                        )
                    })
            })
            .collect();
        println!("  all pairs w={:?}: {}", c.weights, pts.join("; "));
    }
    println!("report: {}", out_dir.join("report.json").display());

    if let Some(min) = args.min_accuracy {
        let acc = protocol
            .first()
            .and_then(|p| p["accuracyAtCalibratedFmr1e3Threshold"]["accuracy"].as_f64())
            .context("--min-accuracy needs a calibrated engine")?;
        if acc < min {
            bail!("accuracy {:.4} is below the floor {min}", acc);
        }
    }
    Ok(())
}
