//! The similarity table fitted across identity sets (`honnin eval calibrate`), and the
//! check of a table's stated FMR on held-out identities.
//!
//! 1. One template per image (LFW: the face nearest the centre; CFP: the largest).
//! 2. Every set's identities are split by a stable hash into a calibration part and a
//!    validation part (`validation_share`): no person is in both.
//! 3. All pairs of each set's calibration part give its threshold at every half-decade
//!    of FMR; the table takes the highest (`honnin_eval::calibration::fit_worst_set`).
//!    CFP frontal–profile pairs are reported, never fitted.
//! 4. [`check`] measures FMR and FNMR at the shipped thresholds (similarity 50, 60, 70
//!    = stated FMR 1e-3, 1e-4, 1e-5) on any part, for any table.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use honnin_engine::calibration::{similarity_for_fmr, Anchor, Calibration, FusionPart};
use honnin_engine::engine::calibration_file_name;
use honnin_engine::{DetectOptions, Engine};
use honnin_eval::calibration::{fit_worst_set, split_identity, FittedAnchor, SetPoints};
use honnin_eval::datasets::{cfp_images, lfw_images, CfpPose};
use honnin_eval::metrics::{evaluate, GenuineScores, PairReport, ScoreHistogram};
use serde::Serialize;

use crate::scoring::{self, Fusion, Selection, TemplateSet};
use crate::{Error, Progress, Result};

/// Stated FMRs checked: similarity 50, 60 and 70.
pub const CHECKED_FMRS: [f64; 3] = [1e-3, 1e-4, 1e-5];

/// Fewest impostors expected above a target for a set to measure it itself; below
/// that the set's threshold is extrapolated from the reference set. 3, the "rule of
/// three" of ISO/IEC 19795-1: 3/p comparisons are needed before an error rate p can be
/// claimed at 95 % confidence; a threshold resting on one impostor pair is just the
/// highest impostor score seen. (Measured: 1, 3 and 10 give the same table down to FMR
/// 1e-4 on LFW + CFP; see models/MODELS.md, "Calibration".)
pub const MIN_EXPECTED_IMPOSTORS: f64 = 3.0;

/// Fewest impostor pairs expected at the stated FMR for the ratio check to count
/// (as `OperatingPoint::low_evidence`): with 100,000 impostor pairs the check at 1e-5
/// would rest on one pair, and one pair more would double the ratio.
pub const MIN_CHECKED_IMPOSTORS: f64 = 10.0;

/// Genuine and impostor scores of one part of one set.
pub struct Scores {
    /// Genuine fused scores with the pair's identity number.
    pub genuine: GenuineScores,
    /// Impostor fused scores.
    pub impostors: ScoreHistogram,
}

/// What one table does on one part of one set at one checked threshold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The threshold, similarity 0–100.
    pub similarity: f32,
    /// The FMR the table states for it.
    pub stated_fmr: f64,
    /// The raw fused score of the threshold.
    pub score: f32,
    /// Impostor pairs at or above the score / impostor pairs.
    pub measured_fmr: f64,
    /// Impostor pairs at or above the score.
    pub impostors_at_or_above: u64,
    /// All impostor pairs of the part.
    pub impostor_pairs: u64,
    /// measured / stated.
    pub ratio: f64,
    /// Genuine pairs below the score / genuine pairs.
    pub fnmr: f64,
    /// The mean over identities of each identity's FNMR.
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

/// Half-decades of FMR from 1e-1 to 1e-8 (the anchors of the table).
pub fn anchor_fmrs() -> Vec<f64> {
    (2..=16).map(|k| 10f64.powf(-(k as f64) / 2.0)).collect()
}

/// Fusion weights for a study: the calibrated ones when `given` is empty, else
/// `given` (one per recognizer, non-negative, positive sum) normalised to sum 1.
///
/// # Errors
/// [`Error::Invalid`] when `given` does not fit the engine's recognizers.
pub fn fusion_weights(engine: &Engine, given: &[f32]) -> Result<Vec<f32>> {
    let n = engine.config().recognizers.len();
    if given.is_empty() {
        Ok(scoring::calibrated_weights(engine))
    } else if given.len() != n
        || given.iter().any(|w| w.is_nan() || *w < 0.0)
        || given.iter().sum::<f32>() <= 0.0
    {
        Err(Error::Invalid(format!(
            "--fusion-weights needs {n} non-negative weights (one per recognizer) with a positive sum"
        )))
    } else {
        Ok(scoring::normalise(given))
    }
}

/// What a calibration run is given.
pub struct CalibrationSetup<'a> {
    /// LFW image folder (as [`crate::lfw::locate`] finds it), if LFW is used.
    pub lfw: Option<&'a Path>,
    /// CFP folder (`<NNN>/frontal/*.jpg`, `<NNN>/profile/*.jpg`), if CFP is used.
    pub cfp: Option<&'a Path>,
    /// Share of each set's identities held out for validation, in (0, 1).
    pub validation_share: f64,
    /// Salt of the identity split.
    pub split_salt: &'a str,
    /// Folder of the template caches (`<set>-<template space>.bin`); must exist.
    pub cache_dir: &'a Path,
    /// Fewest impostor pairs expected above a target for a set to measure it itself.
    pub min_impostors: f64,
    /// Fusion weights, one per recognizer, summing to 1 ([`fusion_weights`]).
    pub weights: Vec<f32>,
    /// The command line, recorded in the table.
    pub command: String,
}

/// How one set was split.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SplitCounts {
    /// `lfw` or `cfp`.
    pub set: &'static str,
    /// Images of the set.
    pub images: usize,
    /// Images without a template.
    pub without_template: usize,
    /// The calibration part (frontal images only).
    pub calibration: PartSize,
    /// The validation part (frontal images only).
    pub validation: PartSize,
}

/// Images and identities of one part.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PartSize {
    /// Images.
    pub images: usize,
    /// Distinct identities.
    pub identities: usize,
}

/// The result of [`run`]: the table, and the scores of every part to check it on.
pub struct CalibrationRun {
    /// How each set was split.
    pub split: Vec<SplitCounts>,
    /// The fitted anchors (`decided_by` indexes `fit_parts`).
    pub fitted: Vec<FittedAnchor>,
    /// The validated table.
    pub table: Calibration,
    /// The calibration parts the table was fitted on, `(label, scores)`.
    pub fit_parts: Vec<(String, Scores)>,
    /// The held-out validation parts.
    pub held_out: Vec<(String, Scores)>,
    /// Parts reported but never fitted (CFP frontal–profile).
    pub reported: Vec<(String, Scores)>,
}

/// A named image list with identities.
struct Set {
    name: &'static str,
    paths: Vec<PathBuf>,
    identity: Vec<String>,
    profile: Vec<bool>,
}

fn load_sets(setup: &CalibrationSetup) -> Result<Vec<Set>> {
    let mut sets = Vec::new();
    if let Some(root) = setup.lfw {
        let images = lfw_images(root)?;
        sets.push(Set {
            name: "lfw",
            profile: vec![false; images.len()],
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if let Some(cfp) = setup.cfp {
        let images = cfp_images(cfp)?;
        if images.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no CFP images (<NNN>/frontal/*.jpg)",
                cfp.display()
            )));
        }
        sets.push(Set {
            name: "cfp",
            profile: images.iter().map(|i| i.pose == CfpPose::Profile).collect(),
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if sets.is_empty() {
        return Err(Error::Invalid(
            "give at least one identity set: --lfw DIR and/or --cfp DIR".into(),
        ));
    }
    Ok(sets)
}

/// Small numbers for the identities of the images `idx`, in order of appearance.
fn numbered(identity: &[String], idx: &[usize]) -> Vec<u32> {
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    idx.iter()
        .map(|&i| {
            let n = numbers.len() as u32;
            *numbers.entry(identity[i].as_str()).or_insert(n)
        })
        .collect()
}

/// All-pairs scores of the images `idx` of `set` (identities as given).
fn all_pairs_scores(
    fusion: &Fusion,
    set: &TemplateSet,
    identity: &[String],
    idx: &[usize],
    progress: &dyn Progress,
) -> Scores {
    let ids = numbered(identity, idx);
    let weights = [fusion.weights.clone()];
    let mut ap = scoring::all_pairs(&set.subset(idx), &ids, &fusion.dims, &weights, progress);
    Scores {
        genuine: ap.genuine.remove(0),
        impostors: ap.impostors.remove(0),
    }
}

/// Every pair across two image lists (frontal × profile).
fn cross_scores(
    fusion: &Fusion,
    set: &TemplateSet,
    identity: &[String],
    a: &[usize],
    b: &[usize],
) -> Scores {
    let mut numbers: HashMap<&str, u32> = HashMap::new();
    let mut out = Scores {
        genuine: GenuineScores::default(),
        impostors: ScoreHistogram::new(),
    };
    let mut parts = vec![0f32; fusion.dims.len()];
    for &i in a {
        let n = numbers.len() as u32;
        let id = *numbers.entry(identity[i].as_str()).or_insert(n);
        for &j in b {
            let s = fusion.score(
                set.vectors[i].as_deref(),
                set.vectors[j].as_deref(),
                &mut parts,
            );
            if identity[i] == identity[j] {
                out.genuine.scores.push((s, id));
            } else {
                out.impostors.add(s);
            }
        }
    }
    out
}

/// Fits the table on the calibration parts of every set and scores every part.
///
/// # Errors
/// A dataset that cannot be read, a cache that cannot be written, no set given, no
/// anchor that could be fitted, or a table that does not validate.
pub fn run(
    engine: &Engine,
    opts: &DetectOptions,
    setup: &CalibrationSetup,
    progress: &dyn Progress,
) -> Result<CalibrationRun> {
    let sets = load_sets(setup)?;
    let fusion = Fusion {
        dims: scoring::part_dims(engine),
        weights: setup.weights.clone(),
    };
    let mut fit_parts: Vec<(String, Scores)> = Vec::new();
    let mut held_out: Vec<(String, Scores)> = Vec::new();
    let mut reported: Vec<(String, Scores)> = Vec::new();
    let mut split = Vec::new();
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
        let cache = setup.cache_dir.join(format!("{}-{space}.bin", set.name));
        let templates =
            scoring::load_or_compute(engine, &set.paths, opts, selection, Some(&cache), progress)?;
        let validation: Vec<bool> = set
            .identity
            .iter()
            .map(|p| split_identity(setup.split_salt, set.name, p, setup.validation_share))
            .collect();
        let pick = |val: bool, profile: bool| -> Vec<usize> {
            (0..set.paths.len())
                .filter(|&i| validation[i] == val && set.profile[i] == profile)
                .collect()
        };
        let size = |idx: &[usize]| PartSize {
            images: idx.len(),
            identities: idx
                .iter()
                .map(|&i| set.identity[i].as_str())
                .collect::<HashSet<_>>()
                .len(),
        };
        let (cal_idx, val_idx) = (pick(false, false), pick(true, false));
        split.push(SplitCounts {
            set: set.name,
            images: set.paths.len(),
            without_template: templates.failures(),
            calibration: size(&cal_idx),
            validation: size(&val_idx),
        });
        let frontal = if set.name == "cfp" { " frontal" } else { "" };
        fit_parts.push((
            format!("{}{frontal}, calibration identities", set.name),
            all_pairs_scores(&fusion, &templates, &set.identity, &cal_idx, progress),
        ));
        held_out.push((
            format!("{}{frontal}, validation identities", set.name),
            all_pairs_scores(&fusion, &templates, &set.identity, &val_idx, progress),
        ));
        if set.profile.iter().any(|&p| p) {
            let val_profile = pick(true, true);
            reported.push((
                format!("{} frontal-profile, validation identities", set.name),
                cross_scores(&fusion, &templates, &set.identity, &val_idx, &val_profile),
            ));
        }
    }
    let (fitted, table) = fit(engine, setup, &fit_parts)?;
    Ok(CalibrationRun {
        split,
        fitted,
        table,
        fit_parts,
        held_out,
        reported,
    })
}

/// The worst-set fit over the calibration parts and its table.
fn fit(
    engine: &Engine,
    setup: &CalibrationSetup,
    fit_parts: &[(String, Scores)],
) -> Result<(Vec<FittedAnchor>, Calibration)> {
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
    let fitted = fit_worst_set(&set_points, &targets, setup.min_impostors);
    if fitted.is_empty() {
        return Err(Error::Invalid(
            "no anchor could be fitted (too few impostor pairs)".into(),
        ));
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
    let names: Vec<&str> = fit_parts.iter().map(|(n, _)| n.as_str()).collect();
    let dataset = format!(
        "the highest threshold over: {} (identity split salt {:?}, validation share {}); \
         anchors decided by: {}",
        names.join("; "),
        setup.split_salt,
        setup.validation_share,
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
    );
    let cal = table(
        engine,
        &setup.weights,
        TableSource {
            dataset,
            command: setup.command.clone(),
            genuine_pairs: fit_parts
                .iter()
                .map(|(_, s)| s.genuine.scores.len() as u64)
                .sum(),
            impostor_pairs: fit_parts.iter().map(|(_, s)| s.impostors.total()).sum(),
        },
        anchors,
    )?;
    Ok((fitted, cal))
}

/// Where a table's numbers come from (recorded in it).
pub struct TableSource {
    /// The pairs it was fitted on, in words.
    pub dataset: String,
    /// The command line that fitted it.
    pub command: String,
    /// Genuine pairs it was fitted on.
    pub genuine_pairs: u64,
    /// Impostor pairs it was fitted on.
    pub impostor_pairs: u64,
}

/// A table from one set's operating points (its [`anchor_fmrs`] targets with at least
/// [`MIN_EXPECTED_IMPOSTORS`] impostor pairs expected above), for
/// `eval pairs --write-calibration`.
///
/// # Errors
/// [`Error::Invalid`] when the table does not validate (e.g. no anchor).
pub fn table_from_report(
    engine: &Engine,
    report: &PairReport,
    dataset: String,
    command: String,
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
        TableSource {
            dataset,
            command,
            genuine_pairs: report.genuine_pairs,
            impostor_pairs: report.impostor_pairs,
        },
        anchors,
    )
}

/// A validated calibration table for the engine's template space, its recognizers
/// fused with `weights` (one per recognizer, in template order).
///
/// # Errors
/// [`Error::Invalid`] when the table does not validate.
pub fn table(
    engine: &Engine,
    weights: &[f32],
    source: TableSource,
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
        dataset: source.dataset,
        command: source.command,
        genuine_pairs: source.genuine_pairs,
        impostor_pairs: source.impostor_pairs,
        anchors,
    };
    cal.validate()
        .map_err(|e| Error::Invalid(format!("calibration table: {e}")))?;
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
