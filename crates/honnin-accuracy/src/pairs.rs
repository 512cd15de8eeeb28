//! Pair metrics for any dataset (`honnin eval pairs --list FILE`): a list of lines
//! `path_a<TAB>path_b<TAB>same|diff` (relative paths are relative to the list), or
//! LFW's `pairs.txt`. [`explain`] gives every failure at a similarity a cause.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use honnin_engine::calibration::Calibration;
use honnin_engine::{DetectOptions, Engine, NonMatchLimits};
use honnin_eval::datasets::{lfw_pairs, lfw_path, pair_list, ListedPair};
use honnin_eval::metrics::{GenuineScores, ScoreHistogram};

use crate::calibrate::Scores;
use crate::explain::{self, CauseRow, RetakeSummary};
use crate::scoring::{self, Fusion, Selection, TemplateSet};
use crate::{Error, Progress, Result};

/// A `path_a<TAB>path_b<TAB>same|diff` list, or LFW's `pairs.txt` (recognised by its
/// first line, two numbers; then the images are looked up in `lfw-deepfunneled/`
/// beside it, or in its own folder).
///
/// # Errors
/// The list cannot be read or parsed, or an LFW list has no image folder beside it.
pub fn read_pairs(list: &Path) -> Result<Vec<ListedPair>> {
    let first = std::fs::read_to_string(list)
        .map_err(|e| Error::Invalid(format!("{}: {e}", list.display())))?
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let numbers: Vec<&str> = first.split_whitespace().collect();
    if numbers.len() == 2 && numbers.iter().all(|n| n.parse::<u32>().is_ok()) {
        let dir = list.parent().unwrap_or(Path::new("."));
        let root = [dir.join("lfw-deepfunneled"), dir.to_path_buf()]
            .into_iter()
            .find(|d| d.is_dir())
            .ok_or_else(|| {
                Error::Invalid(format!("{}: no LFW image folder beside it", list.display()))
            })?;
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

/// The scores of a pair list.
pub struct PairsRun {
    /// Every image once, in order of first appearance.
    pub paths: Vec<PathBuf>,
    /// Each path's index in `paths`.
    pub index: HashMap<PathBuf, usize>,
    /// One template per image.
    pub templates: TemplateSet,
    /// Pooled genuine scores and impostor histogram (identity: the folder of the
    /// pair's first image).
    pub scores: Scores,
    /// Each pair's fused score (−1 where a template is missing), in list order.
    pub pair_scores: Vec<f32>,
    /// Each pair's identity number, in list order.
    pub pair_ids: Vec<u32>,
    /// Pairs with a missing template.
    pub missing: usize,
}

/// Embeds every image of `pairs` once (face `sel`) and scores each pair with the
/// calibrated fusion weights.
pub fn run(
    engine: &Engine,
    opts: &DetectOptions,
    pairs: &[ListedPair],
    sel: Selection,
    progress: &dyn Progress,
) -> PairsRun {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for p in pairs {
        for x in [&p.a, &p.b] {
            if !index.contains_key(x) {
                index.insert(x.clone(), paths.len());
                paths.push(x.clone());
            }
        }
    }
    let set = scoring::compute(engine, &paths, opts, sel, progress);
    let fusion = Fusion::of(engine);
    // Identity for identity-weighted FNMR: the folder of the first image of a pair.
    let mut ids: HashMap<PathBuf, u32> = HashMap::new();
    let mut gen = GenuineScores::default();
    let mut imp = ScoreHistogram::new();
    let mut parts = vec![0f32; fusion.dims.len()];
    let mut missing = 0;
    let mut pair_scores: Vec<f32> = Vec::with_capacity(pairs.len());
    let mut pair_ids: Vec<u32> = Vec::with_capacity(pairs.len());
    for p in pairs {
        let (a, b) = (&set.vectors[index[&p.a]], &set.vectors[index[&p.b]]);
        if a.is_none() || b.is_none() {
            missing += 1;
        }
        let s = fusion.score(a.as_deref(), b.as_deref(), &mut parts);
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
    PairsRun {
        paths,
        index,
        templates: set,
        scores: Scores {
            genuine: gen,
            impostors: imp,
        },
        pair_scores,
        pair_ids,
        missing,
    }
}

/// Every failure at one similarity, by cause, and the retake rule there.
pub struct Explained {
    /// The similarity (0–100) explained.
    pub similarity: f32,
    /// Its raw fused score.
    pub score: f32,
    /// Genuine pairs below the score, by cause.
    pub false_non_matches: Vec<CauseRow>,
    /// Impostor pairs at or above the score, by cause.
    pub false_matches: Vec<CauseRow>,
    /// What the engine's retake rule does at the score.
    pub retake: RetakeSummary,
}

/// Gives every failing pair of `run` at `similarity` a cause (see [`crate::explain`]), one
/// more detection per image; `names` renders an image index for the examples.
#[allow(clippy::too_many_arguments)]
pub fn explain(
    engine: &Engine,
    cal: &Calibration,
    opts: &DetectOptions,
    sel: Selection,
    pairs: &[ListedPair],
    run: &PairsRun,
    similarity: f32,
    names: &dyn Fn(usize) -> String,
    progress: &dyn Progress,
) -> Explained {
    let t = cal.score_for_similarity(similarity);
    let facts = explain::facts(engine, &run.paths, opts, sel, progress);
    let has: Vec<bool> = run.templates.vectors.iter().map(Option::is_some).collect();
    let mut rows = Vec::new();
    for same in [true, false] {
        let mut per_id: BTreeMap<u32, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        for (k, p) in pairs.iter().enumerate().filter(|(_, p)| p.same == same) {
            *per_id.entry(run.pair_ids[k]).or_default() += 1;
            let s = run.pair_scores[k];
            if (same && s < t) || (!same && s >= t) {
                failures.push(explain::Failure {
                    a: run.index[&p.a],
                    b: run.index[&p.b],
                    score: s,
                    identity: run.pair_ids[k],
                });
            }
        }
        rows.push(explain::breakdown(&failures, &facts, &has, &per_id, names));
    }
    let retake = RetakeSummary::tally(
        pairs
            .iter()
            .enumerate()
            .map(|(k, p)| (run.index[&p.a], run.index[&p.b], p.same, run.pair_scores[k])),
        t,
        cal.score_for_similarity(NonMatchLimits::default().min_similarity),
        &facts,
        &has,
    );
    let false_matches = rows.pop().unwrap_or_default();
    let false_non_matches = rows.pop().unwrap_or_default();
    Explained {
        similarity,
        score: t,
        false_non_matches,
        false_matches,
        retake,
    }
}
