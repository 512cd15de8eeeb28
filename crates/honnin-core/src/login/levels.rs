//! Security levels: a target false-accept rate per attempt, turned into a similarity
//! threshold through the calibration, never a literal similarity.
//!
//! An attempt compares the probe (the live face) with `n` enrolled templates: the
//! claimed user's (1:1) or every profile's in the collection (1:N). An impostor is
//! accepted if any one comparison reaches the threshold, so by the union bound
//!
//! ```text
//! FAR(attempt) ≤ n · FMR(per comparison)      ⇒      FMR(per comparison) = target / n
//! ```
//!
//! and the threshold is the calibration's similarity for that FMR
//! (`honnin_engine::calibration`: similarity = 20 + 10 · (−log10 FMR)). The threshold
//! therefore rises by 10 for every tenfold growth of the gallery.
//!
//! **Limit.** The calibration's anchors reach down to a smallest FMR (in the shipped
//! table 3.2e-7). Only the anchors down to 3.2e-5 are measured; those below are
//! extrapolated (too few impostor pairs to measure them), so `standard` (1e-5) and `high`
//! (1e-6) already rest on extrapolated anchors, which every attempt reports
//! (`fmr_measured`). Beyond the last anchor the map is not even extrapolated, so an attempt whose per-comparison FMR would fall below it is refused
//! ([`LevelError::BeyondCalibration`]): a 1:N login must then name a claimed user (1:1
//! compares with a handful of templates). Whether the FMR was measured or extrapolated is
//! reported with every attempt.

use serde::{Deserialize, Serialize};

use crate::config::login::LevelTargets;

/// A security level: a target false-accept rate per attempt (see [`LevelTargets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SecurityLevel {
    /// 1e-4 per attempt by default.
    Low,
    /// 1e-5 per attempt by default (Windows Hello's stated FAR < 0.001 %).
    Standard,
    /// 1e-6 per attempt by default.
    High,
}

impl SecurityLevel {
    /// Every level, weakest first.
    pub const ALL: [SecurityLevel; 3] = [
        SecurityLevel::Low,
        SecurityLevel::Standard,
        SecurityLevel::High,
    ];

    /// The wire name: `low`, `standard`, `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityLevel::Low => "low",
            SecurityLevel::Standard => "standard",
            SecurityLevel::High => "high",
        }
    }

    /// The level of a wire name; `None` for any other string.
    pub fn parse(s: &str) -> Option<SecurityLevel> {
        SecurityLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The `acr` claim of an assertion made at this level: `urn:honnin:acr:<level>`.
    pub fn acr(self) -> String {
        format!("urn:honnin:acr:{}", self.as_str())
    }

    /// This level's target false-accept rate per attempt.
    pub fn target(self, t: &LevelTargets) -> f64 {
        match self {
            SecurityLevel::Low => t.low,
            SecurityLevel::Standard => t.standard,
            SecurityLevel::High => t.high,
        }
    }
}

/// The threshold of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptThreshold {
    /// The level's target false-accept rate per attempt.
    pub target_far: f64,
    /// Templates the probe is compared with (`n` in the module docs).
    pub comparisons: u64,
    /// `target_far / comparisons`: the false-match rate each comparison is held to.
    pub per_comparison_fmr: f64,
    /// The similarity threshold (0–100) for that rate, from the calibration.
    pub similarity: f32,
    /// Whether that rate lies within the calibration's measured anchors (false:
    /// extrapolated from them).
    pub fmr_measured: bool,
}

/// Why a level cannot be held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LevelError {
    /// The per-comparison FMR would fall below the calibration's smallest anchor.
    BeyondCalibration {
        /// The FMR the attempt would need.
        per_comparison_fmr: f64,
        /// The smallest FMR the calibration reaches.
        floor: f64,
        /// The most templates this level can be compared with.
        max_comparisons: u64,
    },
}

/// What the calibration offers: its smallest anchor FMR, the smallest measured one,
/// and the similarity of an FMR (normally `honnin_engine::Calibration`).
pub trait FmrScale {
    /// The smallest FMR of any anchor (measured or extrapolated).
    fn floor(&self) -> f64;
    /// The smallest measured (not extrapolated) anchor FMR.
    fn measured_floor(&self) -> f64;
    /// The similarity threshold for an FMR.
    fn similarity_for(&self, fmr: f64) -> f32;
}

impl FmrScale for honnin_engine::Calibration {
    fn floor(&self) -> f64 {
        self.anchors.iter().map(|a| a.fmr).fold(1.0, f64::min)
    }
    fn measured_floor(&self) -> f64 {
        self.anchors
            .iter()
            .filter(|a| !a.extrapolated)
            .map(|a| a.fmr)
            .fold(1.0, f64::min)
    }
    fn similarity_for(&self, fmr: f64) -> f32 {
        self.threshold_for_fmr(fmr)
    }
}

/// The threshold of an attempt at `target` (per attempt) against `comparisons`
/// templates (at least 1). Errors: [`LevelError::BeyondCalibration`].
pub fn attempt_threshold(
    target: f64,
    comparisons: u64,
    scale: &dyn FmrScale,
) -> Result<AttemptThreshold, LevelError> {
    let n = comparisons.max(1);
    let fmr = target / n as f64;
    let floor = scale.floor();
    // A hair of slack, so that a target equal to an anchor is not refused by rounding.
    if fmr < floor * (1.0 - 1e-9) {
        return Err(LevelError::BeyondCalibration {
            per_comparison_fmr: fmr,
            floor,
            max_comparisons: (target / floor * (1.0 + 1e-9)).floor() as u64,
        });
    }
    Ok(AttemptThreshold {
        target_far: target,
        comparisons: n,
        per_comparison_fmr: fmr,
        similarity: scale.similarity_for(fmr),
        fmr_measured: fmr >= scale.measured_floor() * (1.0 - 1e-9),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scale;
    impl FmrScale for Scale {
        fn floor(&self) -> f64 {
            1e-7
        }
        fn measured_floor(&self) -> f64 {
            1e-5
        }
        fn similarity_for(&self, fmr: f64) -> f32 {
            honnin_engine::calibration::similarity_for_fmr(fmr)
        }
    }

    #[test]
    fn one_to_one_holds_the_target_per_comparison() {
        let t = attempt_threshold(1e-5, 1, &Scale).unwrap();
        assert_eq!(t.per_comparison_fmr, 1e-5);
        assert!((t.similarity - 70.0).abs() < 1e-4);
        assert!(t.fmr_measured);
    }

    #[test]
    fn the_threshold_rises_ten_points_per_tenfold_gallery() {
        let a = attempt_threshold(1e-5, 10, &Scale).unwrap();
        let b = attempt_threshold(1e-5, 100, &Scale).unwrap();
        assert!((a.similarity - 80.0).abs() < 1e-3, "{a:?}");
        assert!((b.similarity - 90.0).abs() < 1e-3, "{b:?}");
        assert!(!a.fmr_measured, "1e-6 lies below the measured 1e-5");
        assert!((b.per_comparison_fmr - 1e-7).abs() < 1e-15);
    }

    #[test]
    fn beyond_the_calibration_is_refused_with_the_largest_gallery_allowed() {
        let e = attempt_threshold(1e-5, 101, &Scale).unwrap_err();
        let LevelError::BeyondCalibration {
            max_comparisons,
            floor,
            ..
        } = e;
        assert_eq!((max_comparisons, floor), (100, 1e-7));
        assert!(attempt_threshold(1e-6, 11, &Scale).is_err());
        assert!(attempt_threshold(1e-6, 10, &Scale).is_ok());
    }

    #[test]
    fn zero_comparisons_count_as_one() {
        assert_eq!(attempt_threshold(1e-4, 0, &Scale).unwrap().comparisons, 1);
    }

    #[test]
    fn levels_are_spelled_once() {
        for l in SecurityLevel::ALL {
            assert_eq!(SecurityLevel::parse(l.as_str()), Some(l));
            assert_eq!(serde_json::to_value(l).unwrap(), l.as_str());
        }
        assert_eq!(SecurityLevel::parse("Standard"), None);
        let t = LevelTargets::default();
        assert!(SecurityLevel::Low.target(&t) > SecurityLevel::High.target(&t));
    }

    #[test]
    fn the_shipped_calibration_reaches_the_standard_level() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/calibration-fr-feature+sface.json");
        let cal = honnin_engine::Calibration::load(&path).unwrap();
        let t = attempt_threshold(1e-5, 1, &cal).unwrap();
        assert!((t.similarity - 70.0).abs() < 1e-3);
        assert!(cal.floor() <= 1e-6, "high needs 1e-6: {}", cal.floor());
    }
}
