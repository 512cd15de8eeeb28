//! Fusion of the per-signal scores into one 0–100 confidence and a decision.
//!
//! Every signal maps its measurement to a score in [0, 1] that is exactly 0.5 at that
//! signal's decision threshold (see [`crate::math::score_above`]). A live session must
//! pass *every* check, so the fusion is a weakest link:
//!
//! ```text
//! confidence = 100 · min( min over hard signals s,  min over soft signals max(s, SOFT_FLOOR) )
//! ```
//!
//! * A failing **hard** signal (evidence of an attack: no light reflection, a passive
//!   spoof score, a changed identity, synthetic or static frames, …) takes the
//!   confidence below [`LIVE_THRESHOLD`], down to its own score.
//! * A failing **soft** signal (missing evidence: too few frames, no approach movement,
//!   the oval never fitted, …) is floored at [`SOFT_FLOOR`], so on its own it can only
//!   make a session `uncertain`, never `spoof`.
//!
//! Decision: `live` at or above [`LIVE_THRESHOLD`], `spoof` below [`SPOOF_BELOW`],
//! `uncertain` in between.

use serde::{Deserialize, Serialize};

/// The confidence at or above which the decision is `live`: the weakest signal sits
/// at (or above) its own threshold. Measured with `honnin bench-liveness` (see
/// `docs/liveness.md`, section 5): from the standard sources every simulated live session
/// scored ≥ 57 and every attack ≤ 16; from real phone and webcam frames (§5.1) 326 of 328
/// live sessions scored ≥ 50 and every attack ≤ 30.3.
pub const LIVE_THRESHOLD: f32 = 50.0;

/// Below this confidence the decision is `spoof`.
pub const SPOOF_BELOW: f32 = 30.0;

/// The lowest score a failing soft signal contributes (so soft failures alone give
/// `uncertain`).
pub const SOFT_FLOOR: f64 = 0.30;

/// The verdict on a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Bona fide: confidence ≥ [`LIVE_THRESHOLD`] (serialised `live`).
    Live,
    /// Presentation attack: confidence < [`SPOOF_BELOW`] (serialised `spoof`).
    Spoof,
    /// Neither: confidence in [[`SPOOF_BELOW`], [`LIVE_THRESHOLD`]) (serialised `uncertain`).
    Uncertain,
}

impl Decision {
    /// The decision for a fused confidence (0–100): `live` at or above [`LIVE_THRESHOLD`],
    /// `spoof` below [`SPOOF_BELOW`], `uncertain` in between.
    pub fn from_confidence(confidence: f32) -> Decision {
        if confidence >= LIVE_THRESHOLD {
            Decision::Live
        } else if confidence < SPOOF_BELOW {
            Decision::Spoof
        } else {
            Decision::Uncertain
        }
    }
}

/// Whether a failing signal is evidence of an attack (hard) or only missing evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strength {
    /// A failure is evidence of a presentation attack: the score enters the minimum as is.
    Hard,
    /// A failure is only missing evidence: the score is floored at [`SOFT_FLOOR`].
    Soft,
}

/// One signal's contribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignalScore {
    /// Signal name, e.g. `pad`, `lightCorrelation`.
    pub signal: &'static str,
    /// The measurement the score maps.
    pub value: f64,
    /// The measurement at which the score is 0.5.
    pub threshold: f64,
    /// 0–1, 0.5 at the threshold.
    pub score: f64,
    /// Whether a failure is evidence of an attack or only missing evidence.
    pub strength: Strength,
    /// The reason code reported when the signal fails.
    pub reason: &'static str,
}

impl SignalScore {
    /// Whether the signal is at or past its threshold (score ≥ 0.5).
    pub fn passed(&self) -> bool {
        self.score >= 0.5
    }
    /// The score this signal contributes to the minimum.
    pub fn contribution(&self) -> f64 {
        let s = if self.score.is_nan() { 0.0 } else { self.score };
        match self.strength {
            Strength::Hard => s.clamp(0.0, 1.0),
            Strength::Soft => s.clamp(0.0, 1.0).max(SOFT_FLOOR),
        }
    }
}

/// The fused confidence (0–100) of a set of signal scores; 0 for an empty set (nothing
/// could be measured).
pub fn fuse(scores: &[SignalScore]) -> f32 {
    if scores.is_empty() {
        return 0.0;
    }
    let m = scores
        .iter()
        .map(SignalScore::contribution)
        .fold(1.0f64, f64::min);
    (100.0 * m) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(score: f64, strength: Strength) -> SignalScore {
        SignalScore {
            signal: "x",
            value: 0.0,
            threshold: 0.0,
            score,
            strength,
            reason: "X",
        }
    }

    #[test]
    fn the_weakest_hard_signal_sets_the_confidence() {
        let c = fuse(&[
            s(0.9, Strength::Hard),
            s(0.8, Strength::Hard),
            s(0.99, Strength::Soft),
        ]);
        assert!((c - 80.0).abs() < 1e-4);
        assert_eq!(Decision::from_confidence(c), Decision::Live);
        let c = fuse(&[s(0.9, Strength::Hard), s(0.05, Strength::Hard)]);
        assert!((c - 5.0).abs() < 1e-4);
        assert_eq!(Decision::from_confidence(c), Decision::Spoof);
    }

    #[test]
    fn a_soft_failure_alone_is_uncertain_never_spoof() {
        let c = fuse(&[s(0.95, Strength::Hard), s(0.01, Strength::Soft)]);
        assert!((c - 30.0).abs() < 1e-4);
        assert_eq!(Decision::from_confidence(c), Decision::Uncertain);
        // …but a hard failure next to it still is spoof.
        let c = fuse(&[s(0.1, Strength::Hard), s(0.01, Strength::Soft)]);
        assert_eq!(Decision::from_confidence(c), Decision::Spoof);
    }

    #[test]
    fn thresholds_and_edge_cases() {
        assert_eq!(Decision::from_confidence(LIVE_THRESHOLD), Decision::Live);
        assert_eq!(
            Decision::from_confidence(LIVE_THRESHOLD - 0.01),
            Decision::Uncertain
        );
        assert_eq!(Decision::from_confidence(SPOOF_BELOW), Decision::Uncertain);
        assert_eq!(
            Decision::from_confidence(SPOOF_BELOW - 0.01),
            Decision::Spoof
        );
        assert_eq!(fuse(&[]), 0.0);
        assert_eq!(fuse(&[s(f64::NAN, Strength::Hard)]), 0.0);
        // A signal exactly at its threshold passes and lands exactly on LIVE_THRESHOLD.
        assert_eq!(fuse(&[s(0.5, Strength::Hard)]), LIVE_THRESHOLD);
        assert!(s(0.5, Strength::Hard).passed());
        assert_eq!(
            serde_json::to_value(Decision::Uncertain).unwrap(),
            serde_json::json!("uncertain")
        );
    }
}
