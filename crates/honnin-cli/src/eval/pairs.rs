//! `honnin eval pairs --list FILE`: pair metrics for any dataset described as lines
//! `path_a<TAB>path_b<TAB>same|diff` (relative paths are relative to the list), or LFW's
//! `pairs.txt`. `--explain SIM` gives every failure at a similarity a cause.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use honnin_engine::NonMatchLimits;
use honnin_eval::datasets::{lfw_pairs, lfw_path, pair_list, ListedPair};
use honnin_eval::metrics::{evaluate, GenuineScores, ScoreHistogram};
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

use super::calibrate;
use super::explain;
use super::scoring::{self, Selection};
use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct PairsArgs {
    /// The pair list.
    #[arg(long)]
    pub list: PathBuf,
    /// Folder for report.json and det.svg (default target/eval/pairs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which face of an image to use.
    #[arg(long, value_enum, default_value_t = Face::Largest)]
    pub face: Face,
    /// Fail (exit 1) when the measured FMR at a shipped threshold (similarity 50, 60,
    /// 70) exceeds this many times the FMR the calibration states for it; checked where
    /// at least 10 impostor pairs are expected at the stated FMR.
    #[arg(long)]
    pub max_fmr_ratio: Option<f64>,
    /// Fail (exit 1) when FNMR at a measured FMR exceeds a ceiling: `FMR:FNMR`, e.g.
    /// `1e-4:0.08`. Repeatable.
    #[arg(long, value_parser = parse_floor)]
    pub max_fnmr: Vec<(f64, f64)>,
    /// Fit a calibration table on these pairs (your own consented pairs) and write it
    /// here (a folder means the engine's file name inside it). Anchors at half-decades
    /// of FMR down to where 3 impostor pairs are expected above (the rule of three). Not
    /// written when a floor is missed.
    #[arg(long)]
    pub write_calibration: Option<PathBuf>,
    /// Give every false non-match below this similarity, and every false match at or
    /// above it, a cause (pose, small face, blur, …; see `eval/explain.rs`), pooled and
    /// identity-weighted, with examples; and measure the engine's retake rule at that
    /// similarity (genuine non-matches turned into "retake", and the impostors also
    /// asked to retake).
    #[arg(long)]
    pub explain: Option<f32>,
}

/// A `path_a<TAB>path_b<TAB>same|diff` list, or LFW's `pairs.txt` (then the images are
/// looked up in `lfw-deepfunneled/` beside it).
fn read_pairs(list: &std::path::Path) -> Result<Vec<ListedPair>> {
    let first = std::fs::read_to_string(list)
        .map_err(|e| anyhow::anyhow!("{}: {e}", list.display()))?
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let numbers: Vec<&str> = first.split_whitespace().collect();
    if numbers.len() == 2 && numbers.iter().all(|n| n.parse::<u32>().is_ok()) {
        let dir = list.parent().unwrap_or(std::path::Path::new("."));
        let root = [dir.join("lfw-deepfunneled"), dir.to_path_buf()]
            .into_iter()
            .find(|d| d.is_dir())
            .ok_or_else(|| anyhow::anyhow!("{}: no LFW image folder beside it", list.display()))?;
        let (_, pairs) = lfw_pairs(list)?;
        return Ok(pairs
            .into_iter()
            .map(|p| ListedPair {
                a: lfw_path(&root, &p.a.0, p.a.1),
                b: lfw_path(&root, &p.b.0, p.b.1),
                same: p.same,
            })
            .collect());
    }
    Ok(pair_list(list)?)
}

fn parse_floor(s: &str) -> Result<(f64, f64), String> {
    let (f, n) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected FMR:FNMR, e.g. 1e-4:0.08"))?;
    let f: f64 = f.parse().map_err(|_| format!("{f:?} is not a number"))?;
    let n: f64 = n.parse().map_err(|_| format!("{n:?} is not a number"))?;
    if !(f > 0.0 && f < 1.0 && (0.0..=1.0).contains(&n)) {
        return Err(format!("{s:?}: FMR must be in (0, 1) and FNMR in [0, 1]"));
    }
    Ok((f, n))
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Face {
    Largest,
    Central,
}

pub fn run(eargs: &EngineArgs, args: PairsArgs) -> Result<()> {
    let pairs = read_pairs(&args.list)?;
    if pairs.is_empty() {
        bail!("{}: no pairs", args.list.display());
    }
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for p in &pairs {
        for x in [&p.a, &p.b] {
            if !index.contains_key(x) {
                index.insert(x.clone(), paths.len());
                paths.push(x.clone());
            }
        }
    }
    let sel = match args.face {
        Face::Largest => Selection::Largest,
        Face::Central => Selection::Central,
    };
    let set = scoring::compute(&engine, &paths, &opts, sel);
    let dims = scoring::part_dims(&engine);
    let weights = scoring::calibrated_weights(&engine);
    // Identity for identity-weighted FNMR: the folder of the first image of a pair.
    let mut ids: HashMap<PathBuf, u32> = HashMap::new();
    let mut gen = GenuineScores::default();
    let mut imp = ScoreHistogram::new();
    let mut parts = vec![0f32; dims.len()];
    let mut missing = 0;
    let mut pair_scores: Vec<f32> = Vec::with_capacity(pairs.len());
    let mut pair_ids: Vec<u32> = Vec::with_capacity(pairs.len());
    for p in &pairs {
        let s = match (&set.vectors[index[&p.a]], &set.vectors[index[&p.b]]) {
            (Some(a), Some(b)) => {
                scoring::part_cosines(a, b, &dims, &mut parts);
                scoring::fuse(&parts, &weights)
            }
            _ => {
                missing += 1;
                -1.0
            }
        };
        let folder = p.a.parent().map(|d| d.to_path_buf()).unwrap_or_default();
        let n = ids.len() as u32;
        let id = *ids.entry(folder).or_insert(n);
        pair_scores.push(s);
        pair_ids.push(id);
        if p.same {
            gen.scores.push((s, id));
        } else {
            imp.add(s);
        }
    }
    let mut targets = vec![1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
    targets.extend(args.max_fnmr.iter().map(|f| f.0));
    targets.extend(calibrate::anchor_fmrs());
    targets.sort_by(|a, b| b.total_cmp(a));
    targets.dedup_by(|a, b| (*a - *b).abs() <= *b * 1e-9);
    let report = evaluate(&gen, &imp, &targets);
    // Operating points shown: the usual decades and the floors asked for (the other
    // targets only feed --write-calibration).
    let shown = |f: f64| {
        [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
            .iter()
            .chain(args.max_fnmr.iter().map(|m| &m.0))
            .any(|g| (g - f).abs() <= g * 1e-6)
    };
    let scores = calibrate::Scores {
        genuine: gen,
        impostors: imp,
    };
    let checks = engine.calibration().map(|c| calibrate::check(c, &scores));
    let explained = match (args.explain, engine.calibration()) {
        (Some(sim), Some(cal)) => {
            let t = cal.score_for_similarity(sim);
            let facts = explain::facts(&engine, &paths, &opts, sel);
            let has: Vec<bool> = set.vectors.iter().map(Option::is_some).collect();
            let names = |i: usize| {
                let p = &paths[i];
                let base = args.list.parent().unwrap_or(std::path::Path::new(""));
                p.strip_prefix(base).unwrap_or(p).display().to_string()
            };
            let mut rows = Vec::new();
            for same in [true, false] {
                let mut per_id: std::collections::BTreeMap<u32, usize> = Default::default();
                let mut failures = Vec::new();
                for (k, p) in pairs.iter().enumerate().filter(|(_, p)| p.same == same) {
                    *per_id.entry(pair_ids[k]).or_default() += 1;
                    let s = pair_scores[k];
                    if (same && s < t) || (!same && s >= t) {
                        failures.push(explain::Failure {
                            a: index[&p.a],
                            b: index[&p.b],
                            score: s,
                            identity: pair_ids[k],
                        });
                    }
                }
                rows.push(explain::breakdown(&failures, &facts, &has, &per_id, &names));
            }
            let retake = explain::RetakeSummary::tally(
                pairs
                    .iter()
                    .enumerate()
                    .map(|(k, p)| (index[&p.a], index[&p.b], p.same, pair_scores[k])),
                t,
                cal.score_for_similarity(NonMatchLimits::default().min_similarity),
                &facts,
                &has,
            );
            Some((sim, t, rows, retake))
        }
        (Some(_), None) => bail!("--explain needs a calibrated engine"),
        (None, _) => None,
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("pairs"));
    std::fs::create_dir_all(&out)?;
    let sim = |score: f32| engine.calibration().map(|c| c.similarity(score));
    common::write_json(
        &out.join("report.json"),
        &json!({
            "command": common::command_line(),
            "list": args.list,
            "templateModel": engine.template_model(),
            "pairs": pairs.len(),
            "imagesWithoutTemplate": set.failures(),
            "pairsWithMissingTemplate": missing,
            "genuinePairs": report.genuine_pairs,
            "impostorPairs": report.impostor_pairs,
            "auc": report.auc,
            "eer": report.eer,
            "operatingPoints": report.operating_points.iter().filter(|p| shown(p.target_fmr)).map(|p| json!({
                "targetFmr": p.target_fmr, "threshold": p.threshold, "similarity": sim(p.threshold),
                "measuredFmr": p.measured_fmr, "fnmr": p.fnmr, "fnmrIdentityWeighted": p.fnmr_identity_weighted,
                "lowEvidence": p.low_evidence,
            })).collect::<Vec<_>>(),
            "calibrationCheck": checks,
            "explained": explained.as_ref().map(|(sim, t, rows, retake)| json!({
                "similarity": sim, "score": t,
                "falseNonMatches": rows[0], "falseMatches": rows[1],
                "retake": retake,
            })),
        }),
    )?;
    let plot = LogLogPlot {
        title: format!("{} — {}", args.list.display(), engine.template_model()),
        x_label: "false-match rate (FMR)".into(),
        y_label: "false-non-match rate (FNMR)".into(),
        x_range: ((1.0 / report.impostor_pairs.max(1) as f64).min(1e-3), 1.0),
        y_range: (1e-4, 1.0),
        series: vec![Series {
            name: "pooled".into(),
            points: report.roc.iter().map(|p| (p.fmr, p.fnmr)).collect(),
        }],
        markers: vec![],
    };
    std::fs::write(out.join("det.svg"), plot.to_svg())?;
    println!(
        "{} pairs ({} genuine, {} impostor), {} image(s) without a template; AUC {:.5}, EER {:.2} %",
        pairs.len(),
        report.genuine_pairs,
        report.impostor_pairs,
        set.failures(),
        report.auc,
        report.eer * 100.0
    );
    for p in report
        .operating_points
        .iter()
        .filter(|p| shown(p.target_fmr))
    {
        println!(
            "  FMR {:.0e}: FNMR {:.2} % at score {:.3}{}",
            p.target_fmr,
            p.fnmr * 100.0,
            p.threshold,
            if p.low_evidence {
                " (fewer than 10 impostors at this FMR: weak evidence)"
            } else {
                ""
            }
        );
    }
    if let Some((sim, t, rows, retake)) = &explained {
        explain::print(
            &format!("genuine pairs below similarity {sim} (score {t:.3}), by cause:"),
            &rows[0],
            "FNMR",
        );
        explain::print(
            &format!("impostor pairs at or above similarity {sim}, by cause:"),
            &rows[1],
            "FMR",
        );
        retake.print(*sim);
    }
    let mut failures = Vec::new();
    if let Some(checks) = &checks {
        println!("  the calibration's thresholds here (measured FMR against the stated one):");
        calibrate::print_checks("", checks);
        if let Some(max) = args.max_fmr_ratio {
            for v in calibrate::violations(checks, max) {
                failures.push(format!(
                    "FMR {:.2e} at similarity {:.0} is {:.1}× the stated {:.0e} (floor {max}×)",
                    v.measured_fmr, v.similarity, v.ratio, v.stated_fmr
                ));
            }
        }
    } else if args.max_fmr_ratio.is_some() {
        bail!("--max-fmr-ratio needs a calibrated engine");
    }
    for &(fmr, max) in &args.max_fnmr {
        let p = report
            .operating_points
            .iter()
            .find(|p| (p.target_fmr - fmr).abs() <= fmr * 1e-6);
        if let Some(p) = p {
            if p.fnmr > max {
                failures.push(format!(
                    "FNMR {:.2} % at FMR {fmr:.0e} is above the ceiling {:.2} %",
                    p.fnmr * 100.0,
                    max * 100.0
                ));
            }
        }
    }
    if let Some(path) = args
        .write_calibration
        .as_ref()
        .filter(|_| failures.is_empty())
    {
        let cal = calibrate::table_from_report(
            &engine,
            &report,
            format!("pairs of {}", args.list.display()),
        )?;
        let path = calibrate::calibration_path(&engine, path);
        common::write_json(&path, &cal)?;
        eprintln!("calibration written to {}", path.display());
    }
    println!("report: {}", out.join("report.json").display());
    if !failures.is_empty() {
        bail!("floors missed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}
