//! Verification metrics over genuine (same person) and impostor (different people)
//! comparison scores, where a higher score means "more alike".
//!
//! * FMR(t) — false-match rate: impostor scores ≥ t / impostors.
//! * FNMR(t) — false-non-match rate: genuine scores < t / genuines.
//! * The threshold for a target FMR is the lowest threshold whose measured FMR is
//!   ≤ the target; FNMR is reported there, pooled over pairs and also weighted so that
//!   every identity counts equally (LFW's pairs are dominated by a few people).
//!
//! Scores live in [−1, 1] (cosine). Impostor sets reach ~10⁸ pairs, so both sides are
//! counted in a fine histogram ([`BINS`] bins, 2·10⁻⁶ wide); thresholds are bin edges.

use serde::{Deserialize, Serialize};

/// Number of histogram bins over [−1, 1].
pub const BINS: usize = 1 << 20;
const LO: f64 = -1.0;
const HI: f64 = 1.0;

/// Counts of scores in fine bins over [−1, 1]. Mergeable, so threads can each fill one.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreHistogram {
    counts: Vec<u64>,
    total: u64,
}

impl Default for ScoreHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The score at the lower edge of bin `k`.
pub fn edge(k: usize) -> f32 {
    (LO + (HI - LO) * k as f64 / BINS as f64) as f32
}

fn bin(score: f32) -> usize {
    let s = if score.is_finite() { score as f64 } else { LO };
    let k = ((s - LO) / (HI - LO) * BINS as f64).floor();
    (k.max(0.0) as usize).min(BINS - 1)
}

impl ScoreHistogram {
    /// An empty histogram ([`BINS`] counters of 8 bytes: 8 MiB).
    pub fn new() -> Self {
        Self {
            counts: vec![0; BINS],
            total: 0,
        }
    }
    /// Counts one score; scores outside [−1, 1] go to the end bins, a non-finite score
    /// counts as −1.
    #[inline]
    pub fn add(&mut self, score: f32) {
        self.counts[bin(score)] += 1;
        self.total += 1;
    }
    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &ScoreHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }
    /// Number of scores counted.
    pub fn total(&self) -> u64 {
        self.total
    }
    /// Scores at or above `score` (to the bin: within 2·10⁻⁶ below it may count).
    pub fn at_or_above(&self, score: f32) -> u64 {
        self.counts[bin(score)..].iter().sum()
    }
    /// `tail[k]` = number of scores ≥ edge(k); length BINS + 1 (tail[BINS] = 0).
    pub fn tail_counts(&self) -> Vec<u64> {
        let mut tail = vec![0u64; BINS + 1];
        for k in (0..BINS).rev() {
            tail[k] = tail[k + 1] + self.counts[k];
        }
        tail
    }
}

/// Genuine scores with the identity each pair belongs to.
#[derive(Debug, Clone, Default)]
pub struct GenuineScores {
    /// One (score, identity) per genuine pair: the raw score (cosine, −1–1) and an id
    /// shared by all pairs of the same person.
    pub scores: Vec<(f32, u32)>,
}

/// One row of a report: what happens at the threshold for `target_fmr`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatingPoint {
    /// The FMR asked for, a fraction 0–1.
    pub target_fmr: f64,
    /// Raw score threshold (a bin edge).
    pub threshold: f32,
    /// The FMR measured at `threshold` (impostors ≥ threshold / impostors), 0–1, ≤
    /// `target_fmr`.
    pub measured_fmr: f64,
    /// Impostor pairs scoring ≥ `threshold` (the count behind `measured_fmr`).
    pub impostors_at_or_above: u64,
    /// FNMR at `threshold`, pooled over genuine pairs, a fraction 0–1.
    pub fnmr: f64,
    /// FNMR averaged over identities (each person weighs the same).
    pub fnmr_identity_weighted: f64,
    /// True when fewer than 10 impostors back the FMR (statistically weak).
    pub low_evidence: bool,
}

/// A sampled ROC/DET point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RocPoint {
    /// Raw score threshold (a bin edge, −1–1).
    pub threshold: f32,
    /// FMR at the threshold, a fraction 0–1.
    pub fmr: f64,
    /// FNMR at the threshold, a fraction 0–1.
    pub fnmr: f64,
}

/// Summary of a genuine-vs-impostor evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairReport {
    /// Genuine (same-person) pairs scored.
    pub genuine_pairs: u64,
    /// Impostor (different-person) pairs scored.
    pub impostor_pairs: u64,
    /// Distinct identities among the genuine pairs.
    pub identities: usize,
    /// Area under the ROC curve, 0–1: P(genuine > impostor) + ½ P(both in one bin).
    pub auc: f64,
    /// Equal error rate, a fraction 0–1: the mean of FMR and FNMR where they cross.
    pub eer: f64,
    /// Raw score threshold of the EER: the lowest bin edge where FMR ≤ FNMR.
    pub eer_threshold: f32,
    /// One row per target FMR, in the order asked.
    pub operating_points: Vec<OperatingPoint>,
    /// The ROC/DET curve: up to 201 points at log-spaced FMRs from 1 down to
    /// max(1/impostors, 10⁻⁹), repeats dropped, threshold increasing.
    pub roc: Vec<RocPoint>,
}

/// Evaluates genuine scores against an impostor histogram at the `target_fmrs`.
pub fn evaluate(
    genuine: &GenuineScores,
    impostors: &ScoreHistogram,
    target_fmrs: &[f64],
) -> PairReport {
    let imp_tail = impostors.tail_counts();
    let n_imp = impostors.total().max(1) as f64;
    let mut gen_hist = ScoreHistogram::new();
    for &(s, _) in &genuine.scores {
        gen_hist.add(s);
    }
    let gen_tail = gen_hist.tail_counts();
    let n_gen = gen_hist.total().max(1) as f64;

    // Per-identity genuine histograms are too big; sort each identity's scores instead.
    let mut by_id: std::collections::BTreeMap<u32, Vec<f32>> = Default::default();
    for &(s, id) in &genuine.scores {
        by_id.entry(id).or_default().push(s);
    }
    for v in by_id.values_mut() {
        v.sort_by(f32::total_cmp);
    }
    let identity_fnmr = |t: f32| -> f64 {
        if by_id.is_empty() {
            return 0.0;
        }
        by_id
            .values()
            .map(|v| v.partition_point(|&s| s < t) as f64 / v.len() as f64)
            .sum::<f64>()
            / by_id.len() as f64
    };
    let fmr_at = |k: usize| imp_tail[k] as f64 / n_imp;
    let fnmr_at = |k: usize| (gen_hist.total() - gen_tail[k]) as f64 / n_gen;

    // Lowest bin edge whose FMR ≤ target: FMR is non-increasing in k, so binary search.
    let k_for = |target: f64| -> usize {
        let (mut lo, mut hi) = (0usize, BINS);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if fmr_at(mid) <= target {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    };

    let operating_points = target_fmrs
        .iter()
        .map(|&target| {
            let k = k_for(target);
            let t = edge(k.min(BINS - 1));
            OperatingPoint {
                target_fmr: target,
                threshold: t,
                measured_fmr: fmr_at(k),
                impostors_at_or_above: imp_tail[k],
                fnmr: fnmr_at(k),
                fnmr_identity_weighted: identity_fnmr(t),
                low_evidence: (target * n_imp) < 10.0,
            }
        })
        .collect();

    // AUC = P(genuine > impostor) + ½ P(tie), ties counted within a bin.
    let mut auc = 0f64;
    for k in 0..BINS {
        let c = impostors.counts[k];
        if c > 0 {
            auc += c as f64 * (gen_tail[k + 1] as f64 + 0.5 * gen_hist.counts[k] as f64);
        }
    }
    auc /= n_imp * n_gen;

    // EER: the edge where FMR and FNMR cross.
    let (mut lo, mut hi) = (0usize, BINS);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fmr_at(mid) <= fnmr_at(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let k = lo.min(BINS - 1);
    let eer = if k > 0 {
        let a = (fmr_at(k) + fnmr_at(k)) / 2.0;
        let b = (fmr_at(k - 1) + fnmr_at(k - 1)) / 2.0;
        a.min(b)
    } else {
        (fmr_at(0) + fnmr_at(0)) / 2.0
    };

    // ROC/DET sampled at log-spaced FMRs from 1 down to the smallest measurable.
    let mut roc = Vec::new();
    let min_fmr = (1.0 / n_imp).max(1e-9);
    let steps = 200;
    for i in 0..=steps {
        let fmr = 10f64.powf(min_fmr.log10() * i as f64 / steps as f64);
        let k = k_for(fmr);
        let p = RocPoint {
            threshold: edge(k.min(BINS - 1)),
            fmr: fmr_at(k),
            fnmr: fnmr_at(k),
        };
        if roc.last() != Some(&p) {
            roc.push(p);
        }
    }

    PairReport {
        genuine_pairs: gen_hist.total(),
        impostor_pairs: impostors.total(),
        identities: by_id.len(),
        auc,
        eer,
        eer_threshold: edge(k),
        operating_points,
        roc,
    }
}

/// The classic LFW protocol: in each fold, the threshold that maximises accuracy on
/// the other folds is applied to that fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KFoldReport {
    /// Folds evaluated (those holding at least one pair).
    pub folds: usize,
    /// Accuracy of each evaluated fold (correct pairs / pairs), 0–1.
    pub fold_accuracies: Vec<f64>,
    /// The raw score threshold applied to each evaluated fold (fitted on the other folds).
    pub fold_thresholds: Vec<f32>,
    /// Mean of `fold_accuracies`, 0–1.
    pub mean_accuracy: f64,
    /// Population standard deviation (÷ n) of `fold_accuracies`.
    pub std_accuracy: f64,
}

/// `pairs[i] = (score, same, fold)`.
pub fn kfold_accuracy(pairs: &[(f32, bool, usize)], folds: usize) -> KFoldReport {
    let best_threshold = |train: &[(f32, bool)]| -> f32 {
        let mut v: Vec<(f32, bool)> = train.to_vec();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Threshold between v[i-1] and v[i]: everything ≥ t is "same".
        let total_same = v.iter().filter(|p| p.1).count();
        let mut best = (0usize, f32::NEG_INFINITY);
        let mut same_below = 0usize;
        let mut diff_below = 0usize;
        for i in 0..=v.len() {
            let correct = diff_below + (total_same - same_below);
            let t = if i == 0 {
                v.first().map(|p| p.0 - 1e-6).unwrap_or(0.0)
            } else if i == v.len() {
                v[i - 1].0 + 1e-6
            } else {
                (v[i - 1].0 + v[i].0) / 2.0
            };
            if correct > best.0 {
                best = (correct, t);
            }
            if i < v.len() {
                if v[i].1 {
                    same_below += 1;
                } else {
                    diff_below += 1;
                }
            }
        }
        best.1
    };
    let mut accs = Vec::new();
    let mut thrs = Vec::new();
    for f in 0..folds {
        let train: Vec<(f32, bool)> = pairs
            .iter()
            .filter(|p| p.2 != f)
            .map(|p| (p.0, p.1))
            .collect();
        let test: Vec<&(f32, bool, usize)> = pairs.iter().filter(|p| p.2 == f).collect();
        if test.is_empty() {
            continue;
        }
        let t = best_threshold(&train);
        let correct = test.iter().filter(|p| (p.0 >= t) == p.1).count();
        accs.push(correct as f64 / test.len() as f64);
        thrs.push(t);
    }
    let n = accs.len().max(1) as f64;
    let mean = accs.iter().sum::<f64>() / n;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt();
    KFoldReport {
        folds: accs.len(),
        fold_accuracies: accs,
        fold_thresholds: thrs,
        mean_accuracy: mean,
        std_accuracy: std,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(scores: &[f32]) -> ScoreHistogram {
        let mut h = ScoreHistogram::new();
        scores.iter().for_each(|&s| h.add(s));
        h
    }

    #[test]
    fn separable_scores_give_perfect_metrics() {
        let gen = GenuineScores {
            scores: vec![(0.8, 0), (0.9, 0), (0.85, 1)],
        };
        let imp = hist(&[0.1, 0.2, -0.3, 0.0]);
        let r = evaluate(&gen, &imp, &[0.25]);
        assert!((r.auc - 1.0).abs() < 1e-12);
        assert_eq!(r.eer, 0.0);
        assert_eq!(r.operating_points[0].fnmr, 0.0);
        assert!(r.operating_points[0].measured_fmr <= 0.25);
    }

    #[test]
    fn threshold_for_fmr_counts_impostors_at_or_above() {
        // 10 impostors at 0.0..0.9; FMR 0.2 allows the top two (0.8, 0.9).
        let imp = hist(&(0..10).map(|i| i as f32 / 10.0).collect::<Vec<_>>());
        let gen = GenuineScores {
            scores: vec![(0.75, 0), (0.85, 0), (0.95, 1), (0.5, 2)],
        };
        let r = evaluate(&gen, &imp, &[0.2, 0.0]);
        let p = r.operating_points[0];
        assert_eq!(p.impostors_at_or_above, 2);
        assert!((p.measured_fmr - 0.2).abs() < 1e-12);
        assert!(p.threshold > 0.7 && p.threshold <= 0.8);
        // The threshold sits just above the third-highest impostor (0.7): only 0.5 falls below.
        assert!((p.fnmr - 0.25).abs() < 1e-12);
        // Identity-weighted: id0 0/2, id1 0/1, id2 1/1 → 1/3.
        assert!((p.fnmr_identity_weighted - 1.0 / 3.0).abs() < 1e-12);
        let z = r.operating_points[1];
        assert_eq!(z.impostors_at_or_above, 0);
        assert!(z.threshold > 0.9);
    }

    #[test]
    fn auc_of_identical_distributions_is_one_half() {
        let s: Vec<f32> = (0..100).map(|i| i as f32 / 100.0 - 0.5).collect();
        let gen = GenuineScores {
            scores: s.iter().map(|&x| (x, 0)).collect(),
        };
        let r = evaluate(&gen, &hist(&s), &[]);
        assert!((r.auc - 0.5).abs() < 1e-9, "{}", r.auc);
        assert!((r.eer - 0.5).abs() < 0.02, "{}", r.eer);
    }

    #[test]
    fn histogram_handles_extremes() {
        let h = hist(&[-1.0, 1.0, f32::NAN, 5.0, -5.0]);
        assert_eq!(h.total(), 5);
        assert_eq!(h.tail_counts()[0], 5);
    }

    #[test]
    fn kfold_picks_thresholds_on_other_folds() {
        let mut pairs = Vec::new();
        for f in 0..10 {
            for i in 0..10 {
                pairs.push((0.6 + i as f32 * 0.01, true, f));
                pairs.push((0.2 + i as f32 * 0.01, false, f));
            }
        }
        let r = kfold_accuracy(&pairs, 10);
        assert_eq!(r.folds, 10);
        assert!((r.mean_accuracy - 1.0).abs() < 1e-12);
        assert!(r.fold_thresholds.iter().all(|&t| t > 0.29 && t < 0.6));
        // One flipped pair in fold 3 costs that fold 5 %.
        pairs[60].0 = 0.1;
        let r = kfold_accuracy(&pairs, 10);
        assert!((r.fold_accuracies[3] - 0.95).abs() < 1e-12);
    }
}
