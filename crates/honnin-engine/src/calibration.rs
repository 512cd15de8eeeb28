//! Raw template score → similarity on a 0–100 scale that means a false-match rate.
//!
//! honnin defines similarity by the false-match rate (FMR) measured at that score:
//!
//! ```text
//! similarity = 20 + 10 · (−log10 FMR)
//! ```
//!
//! so 50 means "1 in 1,000 comparisons of two different people score this high",
//! 60 means 1 in 10,000, 70 means 1 in 100,000, and every +10 is ten times fewer
//! false matches. The calibration file maps raw scores (cosine, or fused cosine) to
//! this scale through anchor points measured on several identity sets, each anchor at
//! the highest threshold any set needs, with identities split into a calibration and a
//! validation part (`honnin eval calibrate`; `models/MODELS.md`, "Calibration"; an
//! LFW-only table comes from `honnin eval lfw --write-calibration`, a table from your
//! own pairs from `honnin eval pairs --write-calibration`); between anchors the map is linear in
//! the raw score, below the first anchor it falls linearly to 0 at score −1 and above
//! the last measured anchor it rises linearly to 100 at score +1.
//!
//! Because the scale is defined by FMR, a threshold such as "similarity 70" keeps its
//! meaning when a recognizer is swapped for another with its own calibration: call
//! [`Calibration::threshold_for_fmr`] instead of writing numbers into handlers.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Similarity at FMR = 1 (the offset of the scale).
pub const SIMILARITY_AT_FMR_ONE: f64 = 20.0;
/// Similarity points per decade of FMR.
pub const SIMILARITY_PER_DECADE: f64 = 10.0;

/// The similarity that corresponds to `fmr` on honnin's scale (clamped to 0–100).
pub fn similarity_for_fmr(fmr: f64) -> f32 {
    let fmr = fmr.clamp(1e-300, 1.0);
    (SIMILARITY_AT_FMR_ONE + SIMILARITY_PER_DECADE * -fmr.log10()).clamp(0.0, 100.0) as f32
}

/// The FMR that a similarity threshold stands for on honnin's scale.
pub fn fmr_for_similarity(similarity: f32) -> f64 {
    10f64
        .powf(-((similarity as f64 - SIMILARITY_AT_FMR_ONE) / SIMILARITY_PER_DECADE))
        .min(1.0)
}

/// One measured point: at raw score `score`, FMR and FNMR on the calibration set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Anchor {
    /// Target false-match rate.
    pub fmr: f64,
    /// Raw score threshold at which the measured FMR is ≤ `fmr`.
    pub score: f32,
    /// False-non-match rate measured at that threshold.
    pub fnmr: f64,
    /// Impostor comparisons at or above the threshold (how much evidence backs `fmr`).
    pub impostors_above: u64,
    /// The set that decided this anchor had too few impostor pairs to measure `fmr`; the
    /// threshold was extrapolated from another set (`honnin eval calibrate`). Such an
    /// FMR is not reported as measured.
    #[serde(default)]
    pub extrapolated: bool,
}

/// A recognizer (or fusion of recognizers) and the weight of its cosine in the fused score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FusionPart {
    /// The recognizer's name as in [`crate::recognize::RecognizerKind::name`] (`"fr-feature"`, `"sface"`, …).
    pub recognizer: String,
    /// Weight of this recognizer's cosine in the fused score (unitless, > 0; e.g. 1 : 2 for
    /// `fr_feature` : SFace), fitted by `honnin eval lfw`'s fusion-weight search.
    pub weight: f32,
}

/// A calibration table (see the module docs), as stored in `models/calibration-*.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Calibration {
    /// Identifier of the template space (recognizers, weights, augmentation).
    pub template_model: String,
    /// The recognizers fused into the score, in template order, with their weights.
    pub parts: Vec<FusionPart>,
    /// Whether the templates include the mirrored face's embedding (must match
    /// [`crate::EngineConfig::flip_augment`]).
    pub flip_augment: bool,
    /// What the anchors were measured on, and how to reproduce them.
    pub dataset: String,
    /// The `honnin eval` command line that produced this table.
    pub command: String,
    /// Number of genuine (same-person) comparisons behind the FNMR figures.
    pub genuine_pairs: u64,
    /// Number of impostor (different-person) comparisons behind the FMR anchors.
    pub impostor_pairs: u64,
    /// Anchors sorted by decreasing FMR (increasing score).
    pub anchors: Vec<Anchor>,
}

impl Calibration {
    /// Reads and [validates](Self::validate) the JSON table at `path`.
    ///
    /// Errors: [`ModelError::Calibration`] when the file cannot be read, is not a
    /// calibration table, or fails validation.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let err = |reason: String| ModelError::Calibration {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let cal: Calibration = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        cal.validate().map_err(err)?;
        Ok(cal)
    }

    /// Anchors must be strictly increasing in score and decreasing in FMR.
    pub fn validate(&self) -> Result<(), String> {
        if self.anchors.is_empty() {
            return Err("no anchors".into());
        }
        for w in self.anchors.windows(2) {
            if !(w[1].score > w[0].score && w[1].fmr < w[0].fmr) {
                return Err(format!("anchors not monotonic at FMR {}", w[1].fmr));
            }
        }
        if self
            .anchors
            .iter()
            .any(|a| !(a.score > -1.0 && a.score < 1.0 && a.fmr > 0.0))
        {
            return Err("anchor outside (-1, 1) or FMR not positive".into());
        }
        Ok(())
    }

    /// The points of the piecewise-linear map, as (raw score, similarity).
    fn knots(&self) -> Vec<(f32, f32)> {
        let mut k = Vec::with_capacity(self.anchors.len() + 2);
        k.push((-1.0, 0.0));
        for a in &self.anchors {
            k.push((a.score, similarity_for_fmr(a.fmr)));
        }
        k.push((1.0, 100.0));
        k
    }

    /// Maps a raw score to similarity 0–100.
    pub fn similarity(&self, score: f32) -> f32 {
        if !score.is_finite() {
            return 0.0;
        }
        let s = score.clamp(-1.0, 1.0);
        let k = self.knots();
        for w in k.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if s <= x1 {
                let t = if x1 > x0 { (s - x0) / (x1 - x0) } else { 1.0 };
                return (y0 + t * (y1 - y0)).clamp(0.0, 100.0);
            }
        }
        100.0
    }

    /// Inverse of [`Calibration::similarity`]: the raw score at a similarity.
    pub fn score_for_similarity(&self, similarity: f32) -> f32 {
        let y = similarity.clamp(0.0, 100.0);
        let k = self.knots();
        for w in k.windows(2) {
            let ((x0, y0), (x1, y1)) = (w[0], w[1]);
            if y <= y1 {
                let t = if y1 > y0 { (y - y0) / (y1 - y0) } else { 1.0 };
                return x0 + t * (x1 - x0);
            }
        }
        1.0
    }

    /// The similarity threshold whose false-match rate is `fmr` (e.g. 1e-5 → 70).
    pub fn threshold_for_fmr(&self, fmr: f64) -> f32 {
        similarity_for_fmr(fmr)
    }

    /// The FMR a similarity threshold stands for, and whether that FMR was measured
    /// (at or above the lowest measured anchor) or extrapolated (beyond it, or at an
    /// anchor marked `extrapolated`).
    pub fn fmr_at(&self, similarity: f32) -> (f64, bool) {
        let fmr = fmr_for_similarity(similarity);
        let lowest = self
            .anchors
            .iter()
            .filter(|a| !a.extrapolated)
            .map(|a| a.fmr)
            .fold(1.0, f64::min);
        (fmr, fmr >= lowest * 0.999)
    }

    /// FNMR measured at the anchor nearest to `fmr` (None when outside the anchors).
    pub fn fnmr_at_fmr(&self, fmr: f64) -> Option<f64> {
        self.anchors
            .iter()
            .min_by(|a, b| {
                (a.fmr.log10() - fmr.log10())
                    .abs()
                    .total_cmp(&(b.fmr.log10() - fmr.log10()).abs())
            })
            .filter(|a| (a.fmr.log10() - fmr.log10()).abs() < 0.01)
            .map(|a| a.fnmr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calibration {
        let anchors = [
            (1e-1, 0.10),
            (1e-2, 0.20),
            (1e-3, 0.30),
            (1e-4, 0.40),
            (1e-5, 0.50),
        ]
        .iter()
        .map(|&(fmr, score)| Anchor {
            fmr,
            score,
            fnmr: 0.01,
            impostors_above: 10,
            extrapolated: false,
        })
        .collect();
        Calibration {
            template_model: "test".into(),
            parts: vec![],
            flip_augment: false,
            dataset: "synthetic".into(),
            command: "none".into(),
            genuine_pairs: 1,
            impostor_pairs: 1,
            anchors,
        }
    }

    #[test]
    fn scale_is_defined_by_fmr() {
        assert_eq!(similarity_for_fmr(1e-3), 50.0);
        assert_eq!(similarity_for_fmr(1e-5), 70.0);
        assert_eq!(similarity_for_fmr(1.0), 20.0);
        assert!((fmr_for_similarity(60.0) - 1e-4).abs() < 1e-12);
        assert_eq!(similarity_for_fmr(1e-30), 100.0);
    }

    #[test]
    fn anchors_map_to_their_fmr_similarity_and_between_is_linear() {
        let c = cal();
        assert!((c.similarity(0.30) - 50.0).abs() < 1e-4);
        assert!((c.similarity(0.50) - 70.0).abs() < 1e-4);
        assert!((c.similarity(0.35) - 55.0).abs() < 1e-4);
        assert_eq!(c.similarity(-1.0), 0.0);
        assert_eq!(c.similarity(1.0), 100.0);
        assert_eq!(c.similarity(f32::NAN), 0.0);
        // Monotonic everywhere.
        let mut last = -1.0;
        for i in -100..=100 {
            let s = c.similarity(i as f32 / 100.0);
            assert!(s >= last);
            last = s;
        }
    }

    #[test]
    fn inverse_round_trips() {
        let c = cal();
        for sim in [0.0f32, 10.0, 35.0, 50.0, 64.0, 70.0, 85.0, 100.0] {
            let s = c.score_for_similarity(sim);
            assert!((c.similarity(s) - sim).abs() < 1e-3, "{sim}");
        }
    }

    #[test]
    fn threshold_and_measured_fmr() {
        let c = cal();
        assert_eq!(c.threshold_for_fmr(1e-5), 70.0);
        assert_eq!(c.fmr_at(60.0), (fmr_for_similarity(60.0), true));
        assert!(!c.fmr_at(90.0).1, "beyond the last anchor is extrapolated");
        let mut c = cal();
        c.anchors.last_mut().unwrap().extrapolated = true;
        assert!(c.fmr_at(60.0).1, "1e-4 was measured");
        assert!(
            !c.fmr_at(70.0).1,
            "an extrapolated anchor is not a measurement"
        );
        assert_eq!(c.fnmr_at_fmr(1e-4), Some(0.01));
        assert_eq!(c.fnmr_at_fmr(3e-4), None);
    }

    #[test]
    fn validation_rejects_non_monotonic_anchors() {
        let mut c = cal();
        c.anchors[2].score = 0.05;
        assert!(c.validate().is_err());
        c.anchors.clear();
        assert!(c.validate().is_err());
    }
}
