//! The tallies of one document condition: every document against every selfie image,
//! counted at each reported threshold (with the retake rule), and FNMR by portrait
//! size.

use std::collections::BTreeMap;

use honnin_eval::metrics::{GenuineScores, ScoreHistogram};
use rayon::prelude::*;
use serde::Serialize;

use super::{Doc, Portrait};
use crate::scoring::Fusion;

/// Scores of one condition, with counts at each threshold of
/// [`SIMILARITIES`](super::SIMILARITIES) (index `k`).
pub struct Scores {
    /// Genuine scores with the document's identity.
    pub genuine: GenuineScores,
    /// Impostor scores.
    pub impostors: ScoreHistogram,
    /// Genuine pairs at or above threshold `k`.
    pub genuine_at_or_above: Vec<u64>,
    /// Impostor pairs at or above threshold `k`.
    pub impostors_at_or_above: Vec<u64>,
    /// Genuine pairs below threshold `k` whose portrait makes the non-match unreliable.
    pub genuine_retake_below: Vec<u64>,
    /// Impostor pairs below threshold `k` whose portrait makes the non-match unreliable.
    pub impostors_retake_below: Vec<u64>,
}

impl Scores {
    /// FNMR at threshold `k`, 0–1.
    pub fn fnmr_at(&self, k: usize) -> f64 {
        1.0 - self.genuine_at_or_above[k] as f64 / self.genuine.scores.len().max(1) as f64
    }

    /// FMR at threshold `k`, 0–1.
    pub fn fmr_at(&self, k: usize) -> f64 {
        self.impostors_at_or_above[k] as f64 / self.impostors.total().max(1) as f64
    }

    /// Genuine pairs below threshold `k` whose portrait makes the non-match
    /// unreliable, as a share of all genuine pairs.
    pub fn genuine_retake(&self, k: usize) -> f64 {
        self.genuine_retake_below[k] as f64 / self.genuine.scores.len().max(1) as f64
    }

    /// The same for impostor pairs (the cost: an impostor sent to review, not rejected).
    pub fn impostor_retake(&self, k: usize) -> f64 {
        self.impostors_retake_below[k] as f64 / self.impostors.total().max(1) as f64
    }
}

/// Every document against every selfie image except its own source; a missing template
/// on either side scores −1 (a genuine pair fails, an impostor pair does not match).
/// Pairs below a threshold but at or above `retake_band` (raw score) whose portrait
/// has `retake` set are counted as retakes.
pub fn score(
    docs: &[Doc],
    portraits: &[Portrait],
    selfies: &[Option<Vec<f32>>],
    identity: &[u32],
    fusion: &Fusion,
    thresholds: &[f32],
    retake_band: f32,
) -> Scores {
    let empty = || Scores {
        genuine: GenuineScores::default(),
        impostors: ScoreHistogram::new(),
        genuine_at_or_above: vec![0; thresholds.len()],
        impostors_at_or_above: vec![0; thresholds.len()],
        genuine_retake_below: vec![0; thresholds.len()],
        impostors_retake_below: vec![0; thresholds.len()],
    };
    docs.par_iter()
        .zip(portraits)
        .fold(empty, |mut acc, (d, p)| {
            let mut parts = vec![0f32; fusion.dims.len()];
            let doc = match p {
                Portrait::Found { vector, .. } if !vector.is_empty() => Some(vector.as_slice()),
                _ => None,
            };
            let retake = matches!(p, Portrait::Found { retake: true, .. }) && doc.is_some();
            for (j, s) in selfies.iter().enumerate() {
                if j == d.image {
                    continue;
                }
                let score = fusion.score(doc, s.as_deref(), &mut parts);
                let same = identity[j] == d.identity;
                for (k, &t) in thresholds.iter().enumerate() {
                    if score >= t {
                        if same {
                            acc.genuine_at_or_above[k] += 1;
                        } else {
                            acc.impostors_at_or_above[k] += 1;
                        }
                    } else if retake && score >= retake_band {
                        if same {
                            acc.genuine_retake_below[k] += 1;
                        } else {
                            acc.impostors_retake_below[k] += 1;
                        }
                    }
                }
                if same {
                    acc.genuine.scores.push((score, d.identity));
                } else {
                    acc.impostors.add(score);
                }
            }
            acc
        })
        .reduce(empty, |mut a, b| {
            a.genuine.scores.extend(b.genuine.scores);
            a.impostors.merge(&b.impostors);
            for k in 0..thresholds.len() {
                a.genuine_at_or_above[k] += b.genuine_at_or_above[k];
                a.impostors_at_or_above[k] += b.impostors_at_or_above[k];
                a.genuine_retake_below[k] += b.genuine_retake_below[k];
                a.impostors_retake_below[k] += b.impostors_retake_below[k];
            }
            a
        })
}

/// Portrait-size bucket edges (face px) for the FNMR breakdown.
pub const SIZE_EDGES: [f32; 9] = [
    40.0,
    50.0,
    60.0,
    70.0,
    80.0,
    90.0,
    110.0,
    130.0,
    f32::INFINITY,
];

/// FNMR of the documents of one portrait-size bucket.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeBucket {
    /// `[from, to)` face px (`to` may be infinite, written as null).
    pub face_px: [f32; 2],
    /// Documents in the bucket.
    pub documents: u64,
    /// Their genuine pairs.
    pub genuine_pairs: u64,
    /// Their FNMR at the threshold, 0–1.
    pub fnmr: f64,
}

/// FNMR at `threshold` of the documents whose portrait was found, by portrait size
/// ([`SIZE_EDGES`]), from the genuine scores of [`score`] (one document per
/// identity); empty buckets are left out.
pub fn by_size(
    docs: &[Doc],
    portraits: &[Portrait],
    genuine: &GenuineScores,
    threshold: f32,
) -> Vec<SizeBucket> {
    let bucket_of: BTreeMap<u32, usize> = docs
        .iter()
        .zip(portraits)
        .filter_map(|(d, p)| match p {
            Portrait::Found { face_px, .. } => SIZE_EDGES
                .windows(2)
                .position(|w| *face_px >= w[0] && *face_px < w[1])
                .map(|b| (d.identity, b)),
            Portrait::Refused(_) => None,
        })
        .collect();
    let mut buckets = vec![(0u64, 0u64, 0u64); SIZE_EDGES.len() - 1];
    for &b in bucket_of.values() {
        buckets[b].0 += 1;
    }
    for &(score, identity) in &genuine.scores {
        if let Some(&b) = bucket_of.get(&identity) {
            buckets[b].1 += 1;
            buckets[b].2 += u64::from(score < threshold);
        }
    }
    buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(k, &(n, pairs, fails))| SizeBucket {
            face_px: [SIZE_EDGES[k], SIZE_EDGES[k + 1]],
            documents: n,
            genuine_pairs: pairs,
            fnmr: fails as f64 / pairs.max(1) as f64,
        })
        .collect()
}
