//! `honnin eval calibrate --lfw DIR --cfp DIR`: fit the score → similarity table on a
//! mix of identity sets so that the stated FMR holds on each, and check it on people
//! who did not shape it (the run is `honnin_accuracy::calibrate`).
//!
//! On each validation part (and, for reference, each calibration part) the measured
//! FMR and FNMR at the shipped thresholds (similarity 50, 60, 70 = stated FMR 1e-3,
//! 1e-4, 1e-5) are printed for the fitted table and for the table in use, with the
//! ratio measured / stated. `--max-fmr-ratio` turns that check into a floor.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_accuracy::calibrate::{
    self, calibration_path, check, fusion_weights, has_evidence, violations, CalibrationSetup,
    Check, MIN_CHECKED_IMPOSTORS, MIN_EXPECTED_IMPOSTORS,
};
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// LFW folder (holds `pairs.txt` and `lfw-deepfunneled/`).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// CFP folder (`<NNN>/frontal/*.jpg`, `<NNN>/profile/*.jpg`).
    #[arg(long)]
    pub cfp: Option<PathBuf>,
    /// Share of each set's identities held out for validation (0–1).
    #[arg(long, default_value_t = 0.5)]
    pub validation_share: f64,
    /// Salt of the identity split (a different salt gives a different split).
    #[arg(long, default_value = "honnin-calibration-1")]
    pub split_salt: String,
    /// Folder for template caches (`<set>.bin`); default target/eval/cache.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Folder for report.json (default target/eval/calibrate).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the fitted table here (a folder means the engine's file name inside it).
    #[arg(long)]
    pub write_calibration: Option<PathBuf>,
    /// Fail (exit 1) when, on a validation part, the fitted table's measured FMR at a
    /// shipped threshold exceeds this many times the stated FMR (where at least 10
    /// impostor pairs are expected at the stated FMR); the table is then not written.
    #[arg(long)]
    pub max_fmr_ratio: Option<f64>,
    /// Fewest impostor pairs expected above a target FMR for a set to measure it itself
    /// (otherwise it is extrapolated from the set with the most impostor pairs).
    #[arg(long, default_value_t = MIN_EXPECTED_IMPOSTORS)]
    pub min_impostors: f64,
    /// Fusion weights of the recognizers, in `--recognizers` order, instead of the
    /// calibrated ones (normalised to sum 1; 0 leaves a recognizer out of the score):
    /// for fusion studies on one template cache. The weights are written into the table.
    #[arg(long, value_delimiter = ',')]
    pub fusion_weights: Vec<f32>,
}

/// One line per checked threshold, for the terminal.
pub fn print_checks(label: &str, checks: &[Check]) {
    for c in checks {
        println!(
            "  {label:<44} sim {:>4.0} (stated FMR {:.0e}): FMR {:.2e} ({} of {} impostors, {:.1}× stated), FNMR {:.2} % (id-weighted {:.2} %)",
            c.similarity,
            c.stated_fmr,
            c.measured_fmr,
            c.impostors_at_or_above,
            c.impostor_pairs,
            c.ratio,
            c.fnmr * 100.0,
            c.fnmr_identity_weighted * 100.0
        );
        if !has_evidence(c) {
            println!("  {:<44} (fewer than {MIN_CHECKED_IMPOSTORS} impostor pairs expected at the stated FMR: reported, not checked)", "");
        }
    }
}

pub fn run(eargs: &EngineArgs, args: CalibrateArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.validation_share) || args.validation_share <= 0.0 {
        bail!("--validation-share must be in (0, 1)");
    }
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("calibrate"));
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| super::default_out("cache"));
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let lfw_root = match &args.lfw {
        Some(lfw) => Some(honnin_accuracy::lfw::locate(lfw)?.0),
        None => None,
    };
    let setup = CalibrationSetup {
        lfw: lfw_root.as_deref(),
        cfp: args.cfp.as_deref(),
        validation_share: args.validation_share,
        split_salt: &args.split_salt,
        cache_dir: &cache_dir,
        min_impostors: args.min_impostors,
        weights: fusion_weights(&engine, &args.fusion_weights)?,
        command: common::command_line(),
    };
    let fit = calibrate::run(&engine, &opts, &setup, &common::Bars)?;
    let names: Vec<&str> = fit.fit_parts.iter().map(|(n, _)| n.as_str()).collect();
    let cal = &fit.table;

    // Check: fitted and in-use tables on every part.
    let in_use = engine.calibration().cloned();
    let mut table = Vec::new();
    let mut worst = Vec::new();
    println!(
        "calibration across sets — {} (validation share {}, salt {:?})",
        engine.template_model(),
        args.validation_share,
        args.split_salt
    );
    println!("fitted anchors (FMR → raw score, the set that needed it):");
    for a in &fit.fitted {
        println!(
            "  {:.1e} → {:.4}  {}{}",
            a.fmr,
            a.score,
            names[a.decided_by],
            if a.extrapolated {
                " (extrapolated)"
            } else {
                ""
            }
        );
    }
    for (kind, parts) in [
        ("validation (held out)", &fit.held_out),
        ("reported only", &fit.reported),
        ("calibration (fitted on)", &fit.fit_parts),
    ] {
        println!("{kind}:");
        for (label, scores) in parts.iter() {
            let fitted_checks = check(cal, scores);
            print_checks(&format!("{label} — fitted"), &fitted_checks);
            let in_use_checks = in_use.as_ref().map(|c| check(c, scores));
            if let Some(c) = &in_use_checks {
                print_checks(&format!("{label} — in use"), c);
            }
            if kind.starts_with("validation") {
                if let Some(max) = args.max_fmr_ratio {
                    for v in violations(&fitted_checks, max) {
                        worst.push(format!(
                            "{label}: FMR {:.2e} at similarity {:.0} is {:.1}× the stated {:.0e}",
                            v.measured_fmr, v.similarity, v.ratio, v.stated_fmr
                        ));
                    }
                }
            }
            table.push(json!({
                "part": kind, "label": label, "genuinePairs": scores.genuine.scores.len(),
                "impostorPairs": scores.impostors.total(),
                "fitted": fitted_checks, "inUse": in_use_checks,
            }));
        }
    }

    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let report = json!({
        "command": common::command_line(),
        "templateModel": engine.template_model(),
        "split": fit.split,
        "fitted": {"anchors": fit.fitted, "table": cal},
        "checks": table,
    });
    common::write_json(&out_dir.join("report.json"), &report)?;
    println!("report: {}", out_dir.join("report.json").display());
    if let Some(path) = args.write_calibration.as_ref().filter(|_| worst.is_empty()) {
        let path = calibration_path(&engine, path);
        common::write_json(&path, cal)?;
        eprintln!("calibration written to {}", path.display());
    }
    if !worst.is_empty() {
        bail!(
            "the fitted table misses the {}× FMR floor (so it was not written):\n  {}",
            args.max_fmr_ratio.unwrap_or_default(),
            worst.join("\n  ")
        );
    }
    Ok(())
}
