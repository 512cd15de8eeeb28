//! `honnin eval lfw --data DIR`
//!
//! 1. One template per LFW image (the face nearest the centre; the engine's
//!    detector, not LFW's crops, decides where the face is).
//! 2. The official 10-fold protocol on `pairs.txt`: accuracy with the threshold
//!    chosen on the other nine folds, ROC AUC, TAR at FAR 1e-3 and 1e-4.
//! 3. All pairs: every same-person pair against every different-person pair of all
//!    13,233 images; FNMR at FMR 1e-3…1e-6 pooled and identity-weighted, for each
//!    candidate fusion weighting. `--write-calibration` turns the chosen weighting's
//!    all-pairs operating points into the engine's calibration table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_engine::calibration::{Anchor, Calibration};
use honnin_engine::engine::calibration_file_name;
use honnin_eval::datasets::{lfw_images, lfw_pairs};
use honnin_eval::metrics::{evaluate, kfold_accuracy, GenuineScores, PairReport, ScoreHistogram};
use honnin_eval::plot::{LogLogPlot, Series};
use serde::Serialize;
use serde_json::json;

use super::scoring::{self, Selection};
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

/// FMR targets reported for the all-pairs run.
const REPORT_FMRS: [f64; 4] = [1e-3, 1e-4, 1e-5, 1e-6];

pub(super) fn locate(data: &Path) -> Result<(PathBuf, PathBuf)> {
    for (imgs, pairs) in [
        (data.join("lfw-deepfunneled"), data.join("pairs.txt")),
        (data.to_path_buf(), data.join("pairs.txt")),
        (
            data.to_path_buf(),
            data.parent().unwrap_or(data).join("pairs.txt"),
        ),
    ] {
        if imgs.is_dir() && pairs.is_file() {
            return Ok((imgs, pairs));
        }
    }
    bail!(
        "{}: expected pairs.txt and the LFW image folders (e.g. ../shared/data/lfw)",
        data.display()
    )
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    weights: Vec<f32>,
    report: PairReport,
}

pub fn run(eargs: &EngineArgs, args: LfwArgs) -> Result<()> {
    let (img_root, pairs_path) = locate(&args.data)?;
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("lfw"));
    let (nfolds, pairs) = lfw_pairs(&pairs_path)?;
    let folds: Vec<usize> = args.folds.iter().map(|f| f.saturating_sub(1)).collect();
    let pairs: Vec<_> = pairs
        .into_iter()
        .filter(|p| folds.is_empty() || folds.contains(&p.fold))
        .collect();
    let pairs_only = args.pairs_only || !folds.is_empty();

    // Images: all of them for all pairs, else only those the chosen pairs use.
    let all = lfw_images(&img_root)?;
    let images: Vec<_> = if pairs_only {
        let used: std::collections::HashSet<(String, u32)> = pairs
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        all.into_iter()
            .filter(|i| used.contains(&(i.person.clone(), i.number)))
            .collect()
    } else {
        all
    };
    if images.is_empty() {
        bail!("no LFW images found under {}", img_root.display());
    }
    let index: HashMap<(String, u32), usize> = images
        .iter()
        .enumerate()
        .map(|(k, i)| ((i.person.clone(), i.number), k))
        .collect();
    let paths: Vec<PathBuf> = images.iter().map(|i| i.path.clone()).collect();

    let t0 = Instant::now();
    let set = scoring::load_or_compute(
        &engine,
        &paths,
        &opts,
        Selection::Central,
        args.cache.as_deref(),
    )?;
    let embed_secs = t0.elapsed().as_secs_f64();
    let dims = scoring::part_dims(&engine);
    let weightings: Vec<Vec<f32>> = if dims.len() == 2 && !args.fusion_weights.is_empty() {
        args.fusion_weights
            .iter()
            .map(|&w| vec![w, 1.0 - w])
            .collect()
    } else {
        vec![scoring::calibrated_weights(&engine)]
    };
    let weightings: Vec<Vec<f32>> = weightings.iter().map(|w| scoring::normalise(w)).collect();

    // Protocol pairs.
    let mut parts = vec![0f32; dims.len()];
    let mut proto: Vec<Vec<(f32, bool, usize)>> = vec![Vec::new(); weightings.len()];
    let mut missing = 0usize;
    for p in &pairs {
        let (Some(&ia), Some(&ib)) = (index.get(&p.a), index.get(&p.b)) else {
            bail!(
                "pairs.txt names an image that is not in {}: {:?} / {:?}",
                img_root.display(),
                p.a,
                p.b
            );
        };
        match (&set.vectors[ia], &set.vectors[ib]) {
            (Some(a), Some(b)) => {
                scoring::part_cosines(a, b, &dims, &mut parts);
                for (k, w) in weightings.iter().enumerate() {
                    proto[k].push((scoring::fuse(&parts, w), p.same, p.fold));
                }
            }
            _ => {
                missing += 1;
                for v in proto.iter_mut() {
                    v.push((-1.0, p.same, p.fold));
                }
            }
        }
    }
    let mut protocol = Vec::new();
    for (k, w) in weightings.iter().enumerate() {
        let scores = &proto[k];
        let kfold = if folds.is_empty() || folds.len() > 1 {
            Some(kfold_accuracy(scores, nfolds))
        } else {
            None
        };
        let mut gen = GenuineScores::default();
        let mut imp = ScoreHistogram::new();
        for (i, &(s, same, _)) in scores.iter().enumerate() {
            if same {
                gen.scores.push((s, i as u32));
            } else {
                imp.add(s);
            }
        }
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

    // All pairs.
    let t1 = Instant::now();
    let mut candidates = Vec::new();
    let mut skipped = (0, 0);
    if !pairs_only {
        let people: HashMap<&str, u32> = {
            let mut m = HashMap::new();
            for i in &images {
                let n = m.len() as u32;
                m.entry(i.person.as_str()).or_insert(n);
            }
            m
        };
        let identity: Vec<u32> = images.iter().map(|i| people[i.person.as_str()]).collect();
        let ap = scoring::all_pairs(&set, &identity, &dims, &weightings);
        skipped = (ap.skipped_genuine, ap.skipped_impostor);
        let mut targets: Vec<f64> = REPORT_FMRS.to_vec();
        targets.extend(super::calibrate::anchor_fmrs());
        targets.sort_by(|a, b| b.total_cmp(a));
        targets.dedup();
        for (k, w) in weightings.iter().enumerate() {
            candidates.push(Candidate {
                weights: w.clone(),
                report: evaluate(&ap.genuine[k], &ap.impostors[k], &targets),
            });
        }
    }
    let scoring_secs = t1.elapsed().as_secs_f64();

    // Choose the candidate with the lowest FNMR at FMR 1e-5.
    let fnmr_at = |c: &Candidate, fmr: f64| {
        c.report
            .operating_points
            .iter()
            .find(|p| (p.target_fmr - fmr).abs() < fmr * 1e-6)
            .map(|p| p.fnmr)
    };
    let best = candidates
        .iter()
        .enumerate()
        .min_by(|a, b| {
            fnmr_at(a.1, 1e-5)
                .unwrap_or(1.0)
                .total_cmp(&fnmr_at(b.1, 1e-5).unwrap_or(1.0))
        })
        .map(|(k, _)| k);

    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let report = json!({
        "command": common::command_line(),
        "dataset": img_root.display().to_string(),
        "templateModel": engine.template_model(),
        "images": paths.len(),
        "imagesWithoutTemplate": set.failures(),
        "imagesFoundOnRelaxedRetry": set.relaxed_detections,
        "protocolPairsWithMissingTemplate": missing,
        "protocol": protocol,
        "allPairs": if pairs_only { serde_json::Value::Null } else { json!({
            "skippedGenuine": skipped.0, "skippedImpostor": skipped.1,
            "candidates": candidates.iter().map(|c| json!({
                "weights": c.weights,
                "genuinePairs": c.report.genuine_pairs, "impostorPairs": c.report.impostor_pairs,
                "identities": c.report.identities, "auc": c.report.auc, "eer": c.report.eer,
                "operatingPoints": c.report.operating_points.iter().filter(|p| REPORT_FMRS.iter().any(|f| (f - p.target_fmr).abs() < f * 1e-6)).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "chosen": best.map(|k| candidates[k].weights.clone()),
        })},
        "seconds": {"templates": embed_secs, "allPairs": scoring_secs},
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
            let path = if path.is_dir() {
                path.join(calibration_file_name(
                    &engine.config().recognizers,
                    engine.config().flip_augment,
                ))
            } else {
                path.clone()
            };
            let cal = calibration(&engine, c, &args)?;
            common::write_json(&path, &cal)?;
            eprintln!("calibration written to {}", path.display());
        }
    } else if args.write_calibration.is_some() {
        bail!("--write-calibration needs the all-pairs run (drop --pairs-only/--folds)");
    }

    // Human summary.
    println!(
        "LFW ({} images, {} without a template) — {}",
        paths.len(),
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
    for c in &candidates {
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

fn calibration(
    engine: &honnin_engine::Engine,
    c: &Candidate,
    args: &LfwArgs,
) -> Result<Calibration> {
    let targets = super::calibrate::anchor_fmrs();
    let n_imp = c.report.impostor_pairs as f64;
    let mut anchors: Vec<Anchor> = Vec::new();
    for p in &c.report.operating_points {
        if !targets.iter().any(|t| (t - p.target_fmr).abs() < t * 1e-6)
            || p.target_fmr * n_imp < 1.0
        {
            continue;
        }
        if anchors.last().is_some_and(|a| p.threshold <= a.score) {
            continue;
        }
        anchors.push(Anchor {
            fmr: p.target_fmr,
            score: p.threshold,
            fnmr: p.fnmr,
            impostors_above: p.impostors_at_or_above,
            extrapolated: false,
        });
    }
    super::calibrate::table(
        engine,
        &c.weights,
        format!("LFW deep-funneled, all pairs ({})", args.data.display()),
        c.report.genuine_pairs,
        c.report.impostor_pairs,
        anchors,
    )
}
