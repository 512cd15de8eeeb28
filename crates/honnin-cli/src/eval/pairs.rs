//! `honnin eval pairs --list FILE`: pair metrics for any dataset described as lines
//! `path_a<TAB>path_b<TAB>same|diff` (relative paths are relative to the list), or LFW's
//! `pairs.txt` (the run is `honnin_accuracy::pairs`). `--explain SIM` gives every
//! failure at a similarity a cause, printed here as tables.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use honnin_accuracy::calibrate;
use honnin_accuracy::explain::{CauseRow, RetakeSummary};
use honnin_accuracy::pairs::{self, read_pairs};
use honnin_accuracy::scoring::Selection;
use honnin_engine::NonMatchLimits;
use honnin_eval::metrics::evaluate;
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

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
    /// above it, a cause (pose, small face, blur, …; see `honnin_accuracy::explain`), pooled and
    /// identity-weighted, with examples; and measure the engine's retake rule at that
    /// similarity (genuine non-matches turned into "retake", and the impostors also
    /// asked to retake).
    #[arg(long)]
    pub explain: Option<f32>,
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
    let sel = match args.face {
        Face::Largest => Selection::Largest,
        Face::Central => Selection::Central,
    };
    let run = pairs::run(&engine, &opts, &pairs, sel, &common::Bars);
    let (paths, set, missing) = (&run.paths, &run.templates, run.missing);
    let mut targets = vec![1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
    targets.extend(args.max_fnmr.iter().map(|f| f.0));
    targets.extend(calibrate::anchor_fmrs());
    targets.sort_by(|a, b| b.total_cmp(a));
    targets.dedup_by(|a, b| (*a - *b).abs() <= *b * 1e-9);
    let report = evaluate(&run.scores.genuine, &run.scores.impostors, &targets);
    // Operating points shown: the usual decades and the floors asked for (the other
    // targets only feed --write-calibration).
    let shown = |f: f64| {
        [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]
            .iter()
            .chain(args.max_fnmr.iter().map(|m| &m.0))
            .any(|g| (g - f).abs() <= g * 1e-6)
    };
    let checks = engine
        .calibration()
        .map(|c| calibrate::check(c, &run.scores));
    let explained = match (args.explain, engine.calibration()) {
        (Some(sim), Some(cal)) => {
            let names = |i: usize| {
                let p = &paths[i];
                let base = args.list.parent().unwrap_or(std::path::Path::new(""));
                p.strip_prefix(base).unwrap_or(p).display().to_string()
            };
            Some(pairs::explain(
                &engine,
                cal,
                &opts,
                sel,
                &pairs,
                &run,
                sim,
                &names,
                &common::Bars,
            ))
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
            "explained": explained.as_ref().map(|e| json!({
                "similarity": e.similarity, "score": e.score,
                "falseNonMatches": e.false_non_matches, "falseMatches": e.false_matches,
                "retake": e.retake,
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
    if let Some(e) = &explained {
        let (sim, t) = (e.similarity, e.score);
        print_causes(
            &format!("genuine pairs below similarity {sim} (score {t:.3}), by cause:"),
            &e.false_non_matches,
            "FNMR",
        );
        print_causes(
            &format!("impostor pairs at or above similarity {sim}, by cause:"),
            &e.false_matches,
            "FMR",
        );
        print_retake(&e.retake, sim);
    }
    let mut failures = Vec::new();
    if let Some(checks) = &checks {
        println!("  the calibration's thresholds here (measured FMR against the stated one):");
        super::calibrate::print_checks("", checks);
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
            common::command_line(),
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

/// Prints a cause breakdown as a table.
fn print_causes(title: &str, rows: &[CauseRow], rate: &str) {
    println!("  {title}");
    for r in rows {
        println!(
            "    {:<14} {:>6} pairs ({:>5.1} % of them) = {:.2} points of {rate} (id-weighted {:.2}); e.g. {}",
            r.cause,
            r.pairs,
            r.share_of_failures * 100.0,
            r.rate_part * 100.0,
            r.identity_weighted_rate_part * 100.0,
            r.examples.first().map(String::as_str).unwrap_or("")
        );
    }
}

/// Prints what the retake rule does at similarity `sim`.
fn print_retake(s: &RetakeSummary, sim: f32) {
    let pct = |n: usize, d: usize| 100.0 * n as f64 / d.max(1) as f64;
    println!(
        "  retake rule at similarity {sim} (non-matches from similarity {} up): {} of {} genuine non-matches ({:.1} %) become \"retake\"; \
         FNMR as a confident \"different person\" {:.2} % (was {:.2} %), retake {:.2} % of genuine pairs",
        NonMatchLimits::default().min_similarity,
        s.genuine_retake,
        s.genuine_below,
        pct(s.genuine_retake, s.genuine_below),
        pct(s.genuine_below - s.genuine_retake, s.genuine_pairs),
        pct(s.genuine_below, s.genuine_pairs),
        pct(s.genuine_retake, s.genuine_pairs),
    );
    println!(
        "    by first reason: {}; cost: {:.2} % of impostor pairs ({} of {}) get \"retake\" instead of \"different person\" (none is accepted)",
        s.genuine_retake_by_reason
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        pct(s.impostor_retake, s.impostor_pairs),
        s.impostor_retake,
        s.impostor_pairs,
    );
}
