//! `honnin eval calibrate --lfw DIR --cfp DIR`: fit the score → similarity table on a
//! mix of identity sets so that the stated FMR holds on each, and check it on people
//! who did not shape it.
//!
//! 1. One template per image (LFW: the face nearest the centre; CFP: the largest).
//! 2. Every set's identities are split by a stable hash into a calibration part and a
//!    validation part (`--validation-share`, default half): no person is in both.
//! 3. All pairs of each set's calibration part give its threshold at every half-decade
//!    of FMR; the table takes the highest (`honnin_eval::calibration::fit_worst_set`).
//!    CFP frontal–profile pairs are reported, never fitted.
//! 4. On each validation part (and, for reference, each calibration part) the measured
//!    FMR and FNMR at the shipped thresholds (similarity 50, 60, 70 = stated FMR 1e-3,
//!    1e-4, 1e-5) are printed for the fitted table and for the table in use, with the
//!    ratio measured / stated. `--max-fmr-ratio` turns that check into a floor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_engine::calibration::{similarity_for_fmr, Anchor, Calibration, FusionPart};
use honnin_engine::engine::calibration_file_name;
use honnin_engine::Engine;
use honnin_eval::calibration::{fit_worst_set, split_identity, SetPoints};
use honnin_eval::datasets::{cfp_images, lfw_images, CfpPose};
use honnin_eval::metrics::{evaluate, GenuineScores, ScoreHistogram};
use serde::Serialize;
use serde_json::json;

use super::scoring::{self, Selection, TemplateSet};
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

/// Similarity thresholds checked: 50, 60 and 70 (stated FMR 1e-3, 1e-4, 1e-5).
pub const CHECKED_FMRS: [f64; 3] = [1e-3, 1e-4, 1e-5];

/// Fewest impostors expected above a target for a set to measure it itself; below
/// that the set's threshold is extrapolated from the reference set. 3, the "rule of
/// three" of ISO/IEC 19795-1: 3/p comparisons are needed before an error rate p can be
/// claimed at 95 % confidence; a threshold resting on one impostor pair is just the
/// highest impostor score seen. (Measured: 1, 3 and 10 give the same table down to FMR
/// 1e-4 on LFW + CFP; see models/MODELS.md, "Calibration".)
pub const MIN_EXPECTED_IMPOSTORS: f64 = 3.0;

/// Genuine and impostor scores of one part of one set.
pub struct Scores {
    pub genuine: GenuineScores,
    pub impostors: ScoreHistogram,
}

/// What one table does on one part of one set at one checked threshold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    pub similarity: f32,
    pub stated_fmr: f64,
    pub score: f32,
    pub measured_fmr: f64,
    pub impostors_at_or_above: u64,
    pub impostor_pairs: u64,
    /// measured / stated.
    pub ratio: f64,
    pub fnmr: f64,
    pub fnmr_identity_weighted: f64,
}

/// Measured FMR/FNMR of `cal`'s thresholds for [`CHECKED_FMRS`] on `scores`.
pub fn check(cal: &Calibration, scores: &Scores) -> Vec<Check> {
    let n_imp = scores.impostors.total();
    let mut by_id: HashMap<u32, (u64, u64)> = HashMap::new();
    CHECKED_FMRS
        .iter()
        .map(|&fmr| {
            let similarity = similarity_for_fmr(fmr);
            let score = cal.score_for_similarity(similarity);
            let above = scores.impostors.at_or_above(score);
            let measured = above as f64 / n_imp.max(1) as f64;
            by_id.clear();
            let mut rejected = 0u64;
            for &(s, id) in &scores.genuine.scores {
                let e = by_id.entry(id).or_default();
                e.0 += 1;
                if s < score {
                    rejected += 1;
                    e.1 += 1;
                }
            }
            let n_gen = scores.genuine.scores.len().max(1) as f64;
            let idw = if by_id.is_empty() {
                0.0
            } else {
                by_id
                    .values()
                    .map(|&(n, r)| r as f64 / n as f64)
                    .sum::<f64>()
                    / by_id.len() as f64
            };
            Check {
                similarity,
                stated_fmr: fmr,
                score,
                measured_fmr: measured,
                impostors_at_or_above: above,
                impostor_pairs: n_imp,
                ratio: measured / fmr,
                fnmr: rejected as f64 / n_gen,
                fnmr_identity_weighted: idw,
            }
        })
        .collect()
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

/// Fewest impostor pairs expected at the stated FMR for the ratio check to count
/// (as `OperatingPoint::low_evidence`): with 100,000 impostor pairs the check at 1e-5
/// would rest on one pair, and one pair more would double the ratio.
pub const MIN_CHECKED_IMPOSTORS: f64 = 10.0;

/// Whether a check has the evidence to count (see [`MIN_CHECKED_IMPOSTORS`]).
pub fn has_evidence(c: &Check) -> bool {
    c.stated_fmr * c.impostor_pairs as f64 >= MIN_CHECKED_IMPOSTORS
}

/// The checks with enough evidence whose measured FMR exceeds `max` times the stated FMR.
pub fn violations(checks: &[Check], max: f64) -> Vec<&Check> {
    checks
        .iter()
        .filter(|c| has_evidence(c) && c.ratio > max)
        .collect()
}

/// A named image list with identities.
struct Set {
    name: &'static str,
    paths: Vec<PathBuf>,
    identity: Vec<String>,
    profile: Vec<bool>,
}

fn subset(set: &TemplateSet, idx: &[usize]) -> TemplateSet {
    TemplateSet {
        model: set.model.clone(),
        vectors: idx.iter().map(|&i| set.vectors[i].clone()).collect(),
        relaxed_detections: 0,
    }
}

/// All-pairs scores of the images `idx` of `set` (identities as given).
fn all_pairs_scores(
    engine: &Engine,
    weights: &[f32],
    set: &TemplateSet,
    identity: &[String],
    idx: &[usize],
) -> Scores {
    let dims = scoring::part_dims(engine);
    let weights = weights.to_vec();
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let ids: Vec<u32> = idx
        .iter()
        .map(|&i| {
            let n = numbers.len() as u32;
            *numbers.entry(identity[i].as_str()).or_insert(n)
        })
        .collect();
    let mut ap = scoring::all_pairs(&subset(set, idx), &ids, &dims, &[weights]);
    Scores {
        genuine: ap.genuine.remove(0),
        impostors: ap.impostors.remove(0),
    }
}

/// Every pair across two image lists (frontal × profile).
fn cross_scores(
    engine: &Engine,
    weights: &[f32],
    set: &TemplateSet,
    identity: &[String],
    a: &[usize],
    b: &[usize],
) -> Scores {
    let dims = scoring::part_dims(engine);
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let mut out = Scores {
        genuine: GenuineScores::default(),
        impostors: ScoreHistogram::new(),
    };
    let mut parts = vec![0f32; dims.len()];
    for &i in a {
        let n = numbers.len() as u32;
        let id = *numbers.entry(identity[i].as_str()).or_insert(n);
        for &j in b {
            let s = match (&set.vectors[i], &set.vectors[j]) {
                (Some(x), Some(y)) => {
                    scoring::part_cosines(x, y, &dims, &mut parts);
                    scoring::fuse(&parts, weights)
                }
                _ => -1.0,
            };
            if identity[i] == identity[j] {
                out.genuine.scores.push((s, id));
            } else {
                out.impostors.add(s);
            }
        }
    }
    out
}

fn load_sets(args: &CalibrateArgs) -> Result<Vec<Set>> {
    let mut sets = Vec::new();
    if let Some(lfw) = &args.lfw {
        let (root, _) = super::lfw::locate(lfw)?;
        let images = lfw_images(&root)?;
        sets.push(Set {
            name: "lfw",
            profile: vec![false; images.len()],
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if let Some(cfp) = &args.cfp {
        let images = cfp_images(cfp)?;
        if images.is_empty() {
            bail!("{}: no CFP images (<NNN>/frontal/*.jpg)", cfp.display());
        }
        sets.push(Set {
            name: "cfp",
            profile: images.iter().map(|i| i.pose == CfpPose::Profile).collect(),
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if sets.is_empty() {
        bail!("give at least one identity set: --lfw DIR and/or --cfp DIR");
    }
    Ok(sets)
}

/// Half-decades of FMR from 1e-1 to 1e-8 (the anchors of the table).
pub fn anchor_fmrs() -> Vec<f64> {
    (2..=16).map(|k| 10f64.powf(-(k as f64) / 2.0)).collect()
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
    let sets = load_sets(&args)?;
    let weights = if args.fusion_weights.is_empty() {
        scoring::calibrated_weights(&engine)
    } else if args.fusion_weights.len() != engine.config().recognizers.len()
        || args.fusion_weights.iter().any(|w| w.is_nan() || *w < 0.0)
        || args.fusion_weights.iter().sum::<f32>() <= 0.0
    {
        bail!(
            "--fusion-weights needs {} non-negative weights (one per recognizer) with a positive sum",
            engine.config().recognizers.len()
        );
    } else {
        scoring::normalise(&args.fusion_weights)
    };

    // Parts: (label, scores) for calibration and validation.
    let mut fit_parts: Vec<(String, Scores)> = Vec::new();
    let mut held_out: Vec<(String, Scores)> = Vec::new();
    let mut reported: Vec<(String, Scores)> = Vec::new();
    let mut split_counts = Vec::new();
    for set in &sets {
        let selection = if set.name == "lfw" {
            Selection::Central
        } else {
            Selection::Largest
        };
        // One cache per set and template space, so that studies do not evict each other.
        let space: String = engine
            .template_model()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let cache = cache_dir.join(format!("{}-{space}.bin", set.name));
        let templates =
            scoring::load_or_compute(&engine, &set.paths, &opts, selection, Some(&cache))?;
        let validation: Vec<bool> = set
            .identity
            .iter()
            .map(|p| split_identity(&args.split_salt, set.name, p, args.validation_share))
            .collect();
        let pick = |val: bool, profile: bool| -> Vec<usize> {
            (0..set.paths.len())
                .filter(|&i| validation[i] == val && set.profile[i] == profile)
                .collect()
        };
        let people = |idx: &[usize]| {
            idx.iter()
                .map(|&i| set.identity[i].as_str())
                .collect::<std::collections::HashSet<_>>()
                .len()
        };
        let (cal_idx, val_idx) = (pick(false, false), pick(true, false));
        split_counts.push(json!({
            "set": set.name,
            "images": set.paths.len(),
            "withoutTemplate": templates.failures(),
            "calibration": {"images": cal_idx.len(), "identities": people(&cal_idx)},
            "validation": {"images": val_idx.len(), "identities": people(&val_idx)},
        }));
        let frontal = if set.name == "cfp" { " frontal" } else { "" };
        fit_parts.push((
            format!("{}{frontal}, calibration identities", set.name),
            all_pairs_scores(&engine, &weights, &templates, &set.identity, &cal_idx),
        ));
        held_out.push((
            format!("{}{frontal}, validation identities", set.name),
            all_pairs_scores(&engine, &weights, &templates, &set.identity, &val_idx),
        ));
        if set.profile.iter().any(|&p| p) {
            let val_profile = pick(true, true);
            reported.push((
                format!("{} frontal-profile, validation identities", set.name),
                cross_scores(
                    &engine,
                    &weights,
                    &templates,
                    &set.identity,
                    &val_idx,
                    &val_profile,
                ),
            ));
        }
    }

    // Fit.
    let targets = anchor_fmrs();
    let reports: Vec<_> = fit_parts
        .iter()
        .map(|(_, s)| evaluate(&s.genuine, &s.impostors, &targets))
        .collect();
    let set_points: Vec<SetPoints> = fit_parts
        .iter()
        .zip(&reports)
        .map(|((name, s), r)| SetPoints {
            name,
            impostor_pairs: s.impostors.total(),
            points: &r.operating_points,
        })
        .collect();
    let fitted = fit_worst_set(&set_points, &targets, args.min_impostors);
    if fitted.is_empty() {
        bail!("no anchor could be fitted (too few impostor pairs)");
    }
    // Pooled calibration-part counts for each anchor's FNMR and evidence.
    let mut pooled_gen: Vec<f32> = fit_parts
        .iter()
        .flat_map(|(_, s)| s.genuine.scores.iter().map(|g| g.0))
        .collect();
    pooled_gen.sort_by(f32::total_cmp);
    let anchors: Vec<Anchor> = fitted
        .iter()
        .map(|a| Anchor {
            fmr: a.fmr,
            score: a.score,
            fnmr: pooled_gen.partition_point(|&g| g < a.score) as f64
                / pooled_gen.len().max(1) as f64,
            impostors_above: fit_parts
                .iter()
                .map(|(_, s)| s.impostors.at_or_above(a.score))
                .sum(),
            extrapolated: a.extrapolated,
        })
        .collect();
    let names: Vec<String> = fit_parts.iter().map(|(n, _)| n.clone()).collect();
    let cal = table(
        &engine,
        &weights,
        format!(
            "the highest threshold over: {} (identity split salt {:?}, validation share {}); \
         anchors decided by: {}",
            names.join("; "),
            args.split_salt,
            args.validation_share,
            fitted
                .iter()
                .map(|a| format!(
                    "{:.0e} {}{}",
                    a.fmr,
                    names[a.decided_by],
                    if a.extrapolated {
                        " (extrapolated)"
                    } else {
                        ""
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        fit_parts
            .iter()
            .map(|(_, s)| s.genuine.scores.len() as u64)
            .sum(),
        fit_parts.iter().map(|(_, s)| s.impostors.total()).sum(),
        anchors,
    )?;

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
    for a in &fitted {
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
        ("validation (held out)", &held_out),
        ("reported only", &reported),
        ("calibration (fitted on)", &fit_parts),
    ] {
        println!("{kind}:");
        for (label, scores) in parts.iter() {
            let fitted_checks = check(&cal, scores);
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
        "split": split_counts,
        "fitted": {"anchors": fitted, "table": &cal},
        "checks": table,
    });
    common::write_json(&out_dir.join("report.json"), &report)?;
    println!("report: {}", out_dir.join("report.json").display());
    if let Some(path) = args.write_calibration.as_ref().filter(|_| worst.is_empty()) {
        let path = calibration_path(&engine, path);
        common::write_json(&path, &cal)?;
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

/// A table from one set's operating points (its [`anchor_fmrs`] targets with at least
/// [`MIN_EXPECTED_IMPOSTORS`] impostor pairs expected above), for
/// `eval pairs --write-calibration`.
pub fn table_from_report(
    engine: &Engine,
    report: &honnin_eval::metrics::PairReport,
    dataset: String,
) -> Result<Calibration> {
    let targets = anchor_fmrs();
    let points = report.operating_points.clone();
    let set = [SetPoints {
        name: "pairs",
        impostor_pairs: report.impostor_pairs,
        points: &points,
    }];
    let anchors: Vec<Anchor> = fit_worst_set(&set, &targets, MIN_EXPECTED_IMPOSTORS)
        .iter()
        .filter_map(|a| {
            let p = points
                .iter()
                .find(|p| (p.target_fmr - a.fmr).abs() <= a.fmr * 1e-6)?;
            Some(Anchor {
                fmr: a.fmr,
                score: a.score,
                fnmr: p.fnmr,
                impostors_above: p.impostors_at_or_above,
                extrapolated: a.extrapolated,
            })
        })
        .collect();
    table(
        engine,
        &scoring::calibrated_weights(engine),
        dataset,
        report.genuine_pairs,
        report.impostor_pairs,
        anchors,
    )
}

/// A validated calibration table for the engine's template space, its recognizers
/// fused with `weights` (one per recognizer, in template order).
pub fn table(
    engine: &Engine,
    weights: &[f32],
    dataset: String,
    genuine_pairs: u64,
    impostor_pairs: u64,
    anchors: Vec<Anchor>,
) -> Result<Calibration> {
    let cal = Calibration {
        template_model: engine.template_model().to_string(),
        parts: engine
            .config()
            .recognizers
            .iter()
            .zip(weights)
            .map(|(k, &w)| FusionPart {
                recognizer: k.name().to_string(),
                weight: w,
            })
            .collect(),
        flip_augment: engine.config().flip_augment,
        dataset,
        command: common::command_line(),
        genuine_pairs,
        impostor_pairs,
        anchors,
    };
    cal.validate()
        .map_err(|e| anyhow::anyhow!("calibration table: {e}"))?;
    Ok(cal)
}

/// `path`, or the engine's calibration file name inside it when it is a folder.
pub fn calibration_path(engine: &Engine, path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(calibration_file_name(
            &engine.config().recognizers,
            engine.config().flip_augment,
        ))
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_with(stated: f64, above: u64, pairs: u64) -> Check {
        Check {
            similarity: similarity_for_fmr(stated),
            stated_fmr: stated,
            score: 0.5,
            measured_fmr: above as f64 / pairs as f64,
            impostors_at_or_above: above,
            impostor_pairs: pairs,
            ratio: above as f64 / pairs as f64 / stated,
            fnmr: 0.0,
            fnmr_identity_weighted: 0.0,
        }
    }

    #[test]
    fn only_checks_with_evidence_can_miss_the_floor() {
        let checks = [
            check_with(1e-3, 300, 100_000), // 3× with 100 expected: a violation
            check_with(1e-4, 15, 100_000),  // 1.5×: fine
            check_with(1e-5, 4, 100_000),   // 4× but 1 expected: not checked
        ];
        let v = violations(&checks, 2.0);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].stated_fmr, 1e-3);
    }

    #[test]
    fn the_check_counts_impostors_and_genuine_pairs_at_the_tables_thresholds() {
        let cal = Calibration {
            template_model: "t".into(),
            parts: vec![],
            flip_augment: false,
            dataset: "d".into(),
            command: "c".into(),
            genuine_pairs: 1,
            impostor_pairs: 1,
            anchors: [(1e-3, 0.3f32), (1e-4, 0.4), (1e-5, 0.5)]
                .iter()
                .map(|&(fmr, score)| Anchor {
                    fmr,
                    score,
                    fnmr: 0.0,
                    impostors_above: 0,
                    extrapolated: false,
                })
                .collect(),
        };
        let mut impostors = ScoreHistogram::new();
        for s in [0.1, 0.35, 0.45, 0.55] {
            impostors.add(s);
        }
        let genuine = GenuineScores {
            scores: vec![(0.2, 0), (0.6, 0), (0.45, 1), (0.9, 1)],
        };
        let c = check(&cal, &Scores { genuine, impostors });
        let above: Vec<u64> = c.iter().map(|c| c.impostors_at_or_above).collect();
        assert_eq!(above, vec![3, 2, 1]);
        // At 0.5 (similarity 70): 0.2 and 0.45 are rejected; each identity loses one of two.
        assert!((c[2].fnmr - 0.5).abs() < 1e-12);
        assert!((c[2].fnmr_identity_weighted - 0.5).abs() < 1e-12);
        assert!((c[0].ratio - 0.75 / 1e-3).abs() < 1e-6);
    }
}
