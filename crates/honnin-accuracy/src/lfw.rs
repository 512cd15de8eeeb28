//! LFW (`honnin eval lfw`): the official 10-fold protocol, all pairs of all images,
//! and the fusion-weight search.
//!
//! 1. One template per LFW image (the face nearest the centre; the engine's
//!    detector, not LFW's crops, decides where the face is).
//! 2. The protocol pairs of `pairs.txt`: scores per candidate weighting, for k-fold
//!    accuracy, ROC AUC, TAR at FAR 1e-3 and 1e-4.
//! 3. All pairs: every same-person pair against every different-person pair of all
//!    13,233 images, for each candidate fusion weighting; the candidate with the
//!    lowest FNMR at FMR 1e-5 is chosen, and [`calibration`] turns its operating
//!    points into the engine's calibration table.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use honnin_engine::calibration::{Anchor, Calibration};
use honnin_engine::{DetectOptions, Engine};
use honnin_eval::datasets::{lfw_images, lfw_pairs};
use honnin_eval::metrics::{evaluate, GenuineScores, PairReport, ScoreHistogram};
use serde::Serialize;

use crate::calibrate::{anchor_fmrs, table, TableSource};
use crate::scoring::{self, Selection, TemplateSet};
use crate::{Error, Progress, Result};

/// FMR targets reported for the all-pairs run.
pub const REPORT_FMRS: [f64; 4] = [1e-3, 1e-4, 1e-5, 1e-6];

/// The image folder and `pairs.txt` of an LFW folder: `data/lfw-deepfunneled` and
/// `data/pairs.txt`, or `data` itself with `pairs.txt` in it or beside it.
///
/// # Errors
/// [`Error::Invalid`] when neither layout is there.
pub fn locate(data: &Path) -> Result<(PathBuf, PathBuf)> {
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
    Err(Error::Invalid(format!(
        "{}: expected pairs.txt and the LFW image folders (e.g. ../shared/data/lfw)",
        data.display()
    )))
}

/// What an LFW run is given.
pub struct LfwSetup<'a> {
    /// The image folder ([`locate`]).
    pub img_root: &'a Path,
    /// `pairs.txt`.
    pub pairs_path: &'a Path,
    /// Only these folds (0-based); empty: all.
    pub folds: Vec<usize>,
    /// Only the protocol pairs (no all-pairs run); implied by `folds`.
    pub pairs_only: bool,
    /// Candidate weights of the first recognizer when fusing two (the second gets
    /// 1 − w); empty: the calibrated weights only.
    pub fusion_weights: &'a [f32],
    /// Template cache file.
    pub cache: Option<&'a Path>,
}

/// One candidate weighting's scores on the protocol pairs: `(score, same, fold)`.
pub type ProtocolScores = Vec<(f32, bool, usize)>;

/// One fusion weighting's all-pairs result.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Weights per recognizer part, summing to 1.
    pub weights: Vec<f32>,
    /// All-pairs metrics at [`REPORT_FMRS`] and the [`anchor_fmrs`].
    pub report: PairReport,
}

/// The all-pairs part of a run.
pub struct AllPairsResult {
    /// Genuine pairs with a missing template.
    pub skipped_genuine: u64,
    /// Impostor pairs with a missing template.
    pub skipped_impostor: u64,
    /// One per weighting, in the order of [`LfwRun::weightings`].
    pub candidates: Vec<Candidate>,
    /// The candidate with the lowest FNMR at FMR 1e-5.
    pub best: Option<usize>,
}

/// The result of [`run`].
pub struct LfwRun {
    /// Images embedded (all, or those the chosen pairs use).
    pub images: usize,
    /// Their templates.
    pub templates: TemplateSet,
    /// Protocol pairs with a missing template (scored −1).
    pub protocol_pairs_with_missing_template: usize,
    /// Folds in `pairs.txt`.
    pub folds: usize,
    /// Whether every fold or more than one was run (k-fold accuracy makes sense).
    pub kfold: bool,
    /// The candidate weightings, each summing to 1.
    pub weightings: Vec<Vec<f32>>,
    /// Protocol scores per weighting.
    pub protocol: Vec<ProtocolScores>,
    /// The all-pairs run, unless only protocol pairs were asked for.
    pub all_pairs: Option<AllPairsResult>,
    /// Seconds spent on templates.
    pub template_secs: f64,
    /// Seconds spent on the all-pairs run.
    pub all_pairs_secs: f64,
}

/// FNMR of a candidate at a target FMR (within 1e-6 relative), if it was a target.
pub fn fnmr_at(c: &Candidate, fmr: f64) -> Option<f64> {
    c.report
        .operating_points
        .iter()
        .find(|p| (p.target_fmr - fmr).abs() < fmr * 1e-6)
        .map(|p| p.fnmr)
}

/// Genuine scores and an impostor histogram of one weighting's protocol scores (the
/// genuine pairs each count as their own identity).
pub fn protocol_split(scores: &[(f32, bool, usize)]) -> (GenuineScores, ScoreHistogram) {
    let mut gen = GenuineScores::default();
    let mut imp = ScoreHistogram::new();
    for (i, &(s, same, _)) in scores.iter().enumerate() {
        if same {
            gen.scores.push((s, i as u32));
        } else {
            imp.add(s);
        }
    }
    (gen, imp)
}

/// Embeds the images, scores the protocol pairs and (unless `pairs_only`) all pairs.
///
/// # Errors
/// Unreadable `pairs.txt` or image folder, no images, a pair naming a missing image,
/// or a cache that cannot be written.
pub fn run(
    engine: &Engine,
    opts: &DetectOptions,
    setup: &LfwSetup,
    progress: &dyn Progress,
) -> Result<LfwRun> {
    let (nfolds, pairs) = lfw_pairs(setup.pairs_path)?;
    let folds = &setup.folds;
    let pairs: Vec<_> = pairs
        .into_iter()
        .filter(|p| folds.is_empty() || folds.contains(&p.fold))
        .collect();
    let pairs_only = setup.pairs_only || !folds.is_empty();

    // Images: all of them for all pairs, else only those the chosen pairs use.
    let all = lfw_images(setup.img_root)?;
    let images: Vec<_> = if pairs_only {
        let used: HashSet<(String, u32)> = pairs
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
        return Err(Error::Invalid(format!(
            "no LFW images found under {}",
            setup.img_root.display()
        )));
    }
    let index: HashMap<(String, u32), usize> = images
        .iter()
        .enumerate()
        .map(|(k, i)| ((i.person.clone(), i.number), k))
        .collect();
    let paths: Vec<PathBuf> = images.iter().map(|i| i.path.clone()).collect();

    let t0 = Instant::now();
    let set = scoring::load_or_compute(
        engine,
        &paths,
        opts,
        Selection::Central,
        setup.cache,
        progress,
    )?;
    let template_secs = t0.elapsed().as_secs_f64();
    let dims = scoring::part_dims(engine);
    let weightings: Vec<Vec<f32>> = if dims.len() == 2 && !setup.fusion_weights.is_empty() {
        setup
            .fusion_weights
            .iter()
            .map(|&w| vec![w, 1.0 - w])
            .collect()
    } else {
        vec![scoring::calibrated_weights(engine)]
    };
    let weightings: Vec<Vec<f32>> = weightings.iter().map(|w| scoring::normalise(w)).collect();

    // Protocol pairs.
    let mut parts = vec![0f32; dims.len()];
    let mut protocol: Vec<ProtocolScores> = vec![Vec::new(); weightings.len()];
    let mut missing = 0usize;
    for p in &pairs {
        let (Some(&ia), Some(&ib)) = (index.get(&p.a), index.get(&p.b)) else {
            return Err(Error::Invalid(format!(
                "pairs.txt names an image that is not in {}: {:?} / {:?}",
                setup.img_root.display(),
                p.a,
                p.b
            )));
        };
        match (&set.vectors[ia], &set.vectors[ib]) {
            (Some(a), Some(b)) => {
                scoring::part_cosines(a, b, &dims, &mut parts);
                for (k, w) in weightings.iter().enumerate() {
                    protocol[k].push((scoring::fuse(&parts, w), p.same, p.fold));
                }
            }
            _ => {
                missing += 1;
                for v in protocol.iter_mut() {
                    v.push((-1.0, p.same, p.fold));
                }
            }
        }
    }

    // All pairs.
    let t1 = Instant::now();
    let all_pairs = if pairs_only {
        None
    } else {
        let mut people: HashMap<&str, u32> = HashMap::new();
        for i in &images {
            let n = people.len() as u32;
            people.entry(i.person.as_str()).or_insert(n);
        }
        let identity: Vec<u32> = images.iter().map(|i| people[i.person.as_str()]).collect();
        let ap = scoring::all_pairs(&set, &identity, &dims, &weightings, progress);
        let mut targets: Vec<f64> = REPORT_FMRS.to_vec();
        targets.extend(anchor_fmrs());
        targets.sort_by(|a, b| b.total_cmp(a));
        targets.dedup();
        let candidates: Vec<Candidate> = weightings
            .iter()
            .enumerate()
            .map(|(k, w)| Candidate {
                weights: w.clone(),
                report: evaluate(&ap.genuine[k], &ap.impostors[k], &targets),
            })
            .collect();
        // The candidate with the lowest FNMR at FMR 1e-5.
        let best = candidates
            .iter()
            .enumerate()
            .min_by(|a, b| {
                fnmr_at(a.1, 1e-5)
                    .unwrap_or(1.0)
                    .total_cmp(&fnmr_at(b.1, 1e-5).unwrap_or(1.0))
            })
            .map(|(k, _)| k);
        Some(AllPairsResult {
            skipped_genuine: ap.skipped_genuine,
            skipped_impostor: ap.skipped_impostor,
            candidates,
            best,
        })
    };
    let all_pairs_secs = t1.elapsed().as_secs_f64();
    Ok(LfwRun {
        images: paths.len(),
        templates: set,
        protocol_pairs_with_missing_template: missing,
        folds: nfolds,
        kfold: folds.is_empty() || folds.len() > 1,
        weightings,
        protocol,
        all_pairs,
        template_secs,
        all_pairs_secs,
    })
}

/// The calibration table of a candidate: its all-pairs operating points at the
/// [`anchor_fmrs`] with at least one impostor pair expected above, strictly rising.
///
/// # Errors
/// [`Error::Invalid`] when the table does not validate.
pub fn calibration(
    engine: &Engine,
    c: &Candidate,
    dataset: String,
    command: String,
) -> Result<Calibration> {
    let targets = anchor_fmrs();
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
    table(
        engine,
        &c.weights,
        TableSource {
            dataset,
            command,
            genuine_pairs: c.report.genuine_pairs,
            impostor_pairs: c.report.impostor_pairs,
        },
        anchors,
    )
}
