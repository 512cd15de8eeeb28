//! Presentation-attack detection (PAD) metrics in ISO/IEC 30107-3 terms, from exact
//! per-sample scores (a higher score means "more likely a live, bona fide face"; a
//! sample is accepted as live when its score is ≥ the threshold).
//!
//! * APCER(t) — attack presentation classification error rate: attacks with
//!   score ≥ t / attacks (attacks accepted as live).
//! * BPCER(t) — bona fide presentation classification error rate: live samples with
//!   score < t / live samples (live faces rejected).
//! * EER — where APCER and BPCER cross.
//! * BPCER at APCER ≤ x (BPCER20/100/1000 for x = 5 %, 1 %, 0.1 %): the lowest threshold
//!   whose APCER is ≤ x, and the BPCER there.
//!
//! PAD sets are small (hundreds to thousands of samples), so everything is computed
//! on the sorted scores, without histograms.

use serde::{Deserialize, Serialize};

use crate::plot::{LogLogPlot, Series};

/// APCER and BPCER at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PadPoint {
    /// Liveness score threshold: a sample is accepted as live at score ≥ it (fr_liveness
    /// scores are 0–1).
    pub threshold: f32,
    /// APCER: attacks accepted / attacks, a fraction 0–1 (0 without attacks).
    pub apcer: f64,
    /// BPCER: bona fide (live) samples rejected / live samples, a fraction 0–1 (0 without
    /// live samples).
    pub bpcer: f64,
    /// Attacks with score ≥ threshold.
    pub attacks_accepted: usize,
    /// Live samples with score < threshold.
    pub live_rejected: usize,
}

/// BPCER at the lowest threshold that keeps APCER ≤ `target_apcer`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BpcerAtApcer {
    /// The APCER the threshold must keep to, a fraction 0–1 (0.01 for BPCER100).
    pub target_apcer: f64,
    /// APCER/BPCER at the lowest threshold with APCER ≤ `target_apcer` (threshold +∞ when
    /// no seen score gives it).
    #[serde(flatten)]
    pub point: PadPoint,
    /// True when the target allows fewer than one accepted attack in this set
    /// (`target · attacks < 1`): the point then only says "no attack accepted", and
    /// the true APCER could be far above the target.
    pub low_evidence: bool,
}

/// The PAD summary of one evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PadReport {
    /// Live (bona fide) samples evaluated.
    pub live: usize,
    /// Attack samples evaluated.
    pub attacks: usize,
    /// At the threshold the evaluation was asked about.
    pub at_threshold: PadPoint,
    /// Equal error rate, a fraction 0–1: the mean of APCER and BPCER at the threshold where
    /// they are closest.
    pub eer: f64,
    /// Liveness score threshold of the EER (a score seen, or just above the highest).
    pub eer_threshold: f32,
    /// The EER's APCER and BPCER hold for every threshold in
    /// (`eer_threshold_above`, `eer_threshold`]: the next lower score seen (None: none).
    pub eer_threshold_above: Option<f32>,
    /// APCER and BPCER at `eer_threshold` (their mean is the EER).
    pub eer_point: PadPoint,
    /// BPCER at each target APCER asked for, in that order (by default [`TARGET_APCERS`]).
    pub bpcer_at_apcer: Vec<BpcerAtApcer>,
    /// APCER/BPCER at a fixed grid of thresholds (to choose an operating point).
    pub sweep: Vec<PadPoint>,
    /// Every distinct operating point, threshold increasing (the ROC/DET curve).
    pub curve: Vec<PadPoint>,
}

/// The target APCERs reported by default (BPCER20, BPCER100, BPCER1000).
pub const TARGET_APCERS: [f64; 3] = [0.05, 0.01, 0.001];

/// Thresholds of the sweep table.
pub const SWEEP: [f32; 18] = [
    0.0001, 0.001, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99,
    0.995, 0.999,
];

/// Scores sorted once, for counting at any threshold.
struct Sorted {
    live: Vec<f32>,
    attack: Vec<f32>,
}

impl Sorted {
    fn new(live: &[f32], attack: &[f32]) -> Self {
        // A non-finite score can only come from a broken model; count it as the worst
        // case for each side (a live sample rejected, an attack accepted).
        let mut l: Vec<f32> = live
            .iter()
            .map(|&s| if s.is_finite() { s } else { f32::NEG_INFINITY })
            .collect();
        let mut a: Vec<f32> = attack
            .iter()
            .map(|&s| if s.is_finite() { s } else { f32::INFINITY })
            .collect();
        l.sort_by(f32::total_cmp);
        a.sort_by(f32::total_cmp);
        Self { live: l, attack: a }
    }

    fn point(&self, t: f32) -> PadPoint {
        let live_rejected = self.live.partition_point(|&s| s < t);
        let attacks_accepted = self.attack.len() - self.attack.partition_point(|&s| s < t);
        PadPoint {
            threshold: t,
            apcer: ratio(attacks_accepted, self.attack.len()),
            bpcer: ratio(live_rejected, self.live.len()),
            attacks_accepted,
            live_rejected,
        }
    }

    /// Candidate thresholds: every distinct score, plus one above all of them (so the
    /// curve reaches APCER 0 / BPCER 1).
    fn candidates(&self) -> Vec<f32> {
        let mut c: Vec<f32> = self
            .live
            .iter()
            .chain(&self.attack)
            .copied()
            .filter(|s| s.is_finite())
            .collect();
        c.sort_by(f32::total_cmp);
        c.dedup();
        let top = c.last().copied().unwrap_or(0.0);
        c.push(next_up(top.max(1.0)));
        c
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// The smallest f32 above `x` (for a threshold that rejects a score equal to `x`).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    let next = if x == 0.0 {
        1
    } else if x > 0.0 {
        bits + 1
    } else {
        bits - 1
    };
    f32::from_bits(next)
}

/// Evaluates live (bona fide) against attack scores; `threshold` is the operating
/// point reported in `at_threshold`.
pub fn evaluate(live: &[f32], attack: &[f32], threshold: f32, targets: &[f64]) -> PadReport {
    let s = Sorted::new(live, attack);
    let curve: Vec<PadPoint> = s.candidates().into_iter().map(|t| s.point(t)).collect();

    // EER: APCER falls and BPCER rises with the threshold; take the candidate where
    // they are closest and report their mean there.
    let best = curve.iter().enumerate().min_by(|(_, a), (_, b)| {
        (a.apcer - a.bpcer)
            .abs()
            .total_cmp(&(b.apcer - b.bpcer).abs())
            .then(a.apcer.max(a.bpcer).total_cmp(&b.apcer.max(b.bpcer)))
    });
    let (eer_point, eer_threshold_above) = match best {
        Some((k, p)) => (*p, k.checked_sub(1).map(|j| curve[j].threshold)),
        None => (s.point(threshold), None),
    };

    let bpcer_at_apcer = targets
        .iter()
        .map(|&target| {
            // The curve is ordered by threshold, APCER non-increasing: first point ≤ target.
            let point = curve
                .iter()
                .find(|p| p.apcer <= target)
                .copied()
                .unwrap_or_else(|| s.point(f32::INFINITY));
            BpcerAtApcer {
                target_apcer: target,
                point,
                low_evidence: target * (s.attack.len() as f64) < 1.0,
            }
        })
        .collect();

    PadReport {
        live: live.len(),
        attacks: attack.len(),
        at_threshold: s.point(threshold),
        eer: (eer_point.apcer + eer_point.bpcer) / 2.0,
        eer_threshold: eer_point.threshold,
        eer_threshold_above,
        eer_point,
        bpcer_at_apcer,
        sweep: SWEEP.iter().map(|&t| s.point(t)).collect(),
        curve,
    }
}

/// A DET-style plot (APCER across, BPCER up, both log scale) of one or more reports,
/// with the operating threshold of the first marked.
pub fn det_plot(title: &str, reports: &[(&str, &PadReport)]) -> LogLogPlot {
    // Log axes cannot show 0: the floor is half of the smallest non-zero rate measurable.
    let floor = |n: usize| 0.5 / (n.max(1) as f64);
    let x_min = reports
        .iter()
        .map(|(_, r)| floor(r.attacks))
        .fold(1e-1, f64::min);
    let y_min = reports
        .iter()
        .map(|(_, r)| floor(r.live))
        .fold(1e-1, f64::min);
    let series = reports
        .iter()
        .map(|(name, r)| Series {
            name: format!("{name} (EER {:.2} %)", r.eer * 100.0),
            points: r
                .curve
                .iter()
                .map(|p| (p.apcer.max(floor(r.attacks)), p.bpcer.max(floor(r.live))))
                .collect(),
        })
        .collect();
    let markers = reports
        .first()
        .map(|(_, r)| {
            vec![(
                r.at_threshold.apcer.max(floor(r.attacks)),
                format!("t = {}", r.at_threshold.threshold),
            )]
        })
        .unwrap_or_default();
    LogLogPlot {
        title: title.to_string(),
        x_label: "APCER (attacks accepted as live; 0 drawn at the floor)".into(),
        y_label: "BPCER (live faces rejected)".into(),
        x_range: (10f64.powf(x_min.log10().floor()), 1.0),
        y_range: (10f64.powf(y_min.log10().floor()), 1.0),
        series,
        markers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_have_zero_error() {
        let r = evaluate(&[0.9, 0.95, 0.99], &[0.01, 0.2, 0.3], 0.5, &TARGET_APCERS);
        assert_eq!(r.eer, 0.0);
        assert!(r.eer_threshold > 0.3 && r.eer_threshold <= 0.9);
        // Every threshold in (0.3, 0.9] separates the two sets.
        assert_eq!(r.eer_threshold_above, Some(0.3));
        assert_eq!(r.at_threshold.apcer, 0.0);
        assert_eq!(r.at_threshold.bpcer, 0.0);
        for b in &r.bpcer_at_apcer {
            assert_eq!(b.point.bpcer, 0.0);
            assert!(b.low_evidence, "3 attacks cannot show APCER ≤ 5 %");
        }
        assert_eq!((r.live, r.attacks), (3, 3));
    }

    #[test]
    fn counts_at_a_threshold_follow_the_iso_definitions() {
        // Accepted as live when score ≥ t.
        let live = [0.2, 0.6, 0.7, 0.8];
        let attack = [0.1, 0.3, 0.6, 0.9];
        let r = evaluate(&live, &attack, 0.6, &[0.25, 0.0]);
        let p = r.at_threshold;
        assert_eq!((p.attacks_accepted, p.live_rejected), (2, 1));
        assert!((p.apcer - 0.5).abs() < 1e-12 && (p.bpcer - 0.25).abs() < 1e-12);
        // APCER ≤ 25 %: one attack (0.9) may pass → threshold just above 0.6.
        let b = r.bpcer_at_apcer[0];
        assert_eq!(b.point.attacks_accepted, 1);
        assert!((b.point.threshold - 0.7).abs() < 1e-6, "{b:?}");
        assert!((b.point.bpcer - 0.5).abs() < 1e-12);
        assert!(!b.low_evidence);
        // APCER 0: above the top attack 0.9 → every live sample rejected.
        let z = r.bpcer_at_apcer[1];
        assert_eq!(z.point.attacks_accepted, 0);
        assert_eq!(z.point.bpcer, 1.0);
        // EER: at t = 0.6 APCER 0.5/BPCER 0.25, at 0.7 APCER 0.25/BPCER 0.5 → 0.375.
        assert!((r.eer - 0.375).abs() < 1e-12, "{}", r.eer);
        // The curve is ordered and monotone.
        for w in r.curve.windows(2) {
            assert!(w[0].threshold < w[1].threshold);
            assert!(w[0].apcer >= w[1].apcer && w[0].bpcer <= w[1].bpcer);
        }
        assert_eq!(r.curve.last().map(|p| p.bpcer), Some(1.0));
    }

    #[test]
    fn identical_distributions_give_eer_one_half() {
        let s: Vec<f32> = (0..200).map(|i| i as f32 / 200.0).collect();
        let r = evaluate(&s, &s, 0.5, &TARGET_APCERS);
        assert!((r.eer - 0.5).abs() < 0.01, "{}", r.eer);
    }

    #[test]
    fn empty_and_non_finite_inputs_do_not_panic() {
        let r = evaluate(&[], &[], 0.5, &TARGET_APCERS);
        assert_eq!(r.eer, 0.0);
        let r = evaluate(&[f32::NAN, 0.9], &[f32::NAN, 0.1], 0.5, &TARGET_APCERS);
        assert_eq!(r.at_threshold.live_rejected, 1);
        assert_eq!(r.at_threshold.attacks_accepted, 1);
        let svg = det_plot("t", &[("x", &r)]).to_svg();
        assert!(svg.starts_with("<svg"));
    }

    #[test]
    fn next_up_is_the_next_float() {
        assert!(next_up(1.0) > 1.0 && next_up(1.0) - 1.0 < 1e-6);
        assert!(next_up(0.0) > 0.0);
        assert!(next_up(-1.0) > -1.0);
    }
}
