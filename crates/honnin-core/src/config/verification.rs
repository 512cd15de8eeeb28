//! The verification policy: what a verification requires (every threshold a false-match
//! rate), the configured default, per-verification overrides and their validation, and
//! the copy stored with each verification.

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use honnin_storage::VerificationRow;

/// Smallest face the document step's second detection pass looks for, pixels (lower
/// than the service's default, 40): a portrait too small to compare is then reported as
/// such (DocumentPortraitUnusable, with what to do) instead of as no face at all. The ID-document specimens' portraits measure
/// 43–403 px (`crates/honnin-core/tests/documents.rs`).
pub const DOCUMENT_DETECT_MIN_FACE_PX: f32 = 20.0;

/// Longest time a policy may keep images after the decision (30 days).
pub const MAX_KEEP_IMAGES_SECS: u64 = 30 * 86_400;

/// Verification tunables, with documented defaults (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct VerificationConfig {
    /// The decision record (no images, no templates) is kept this long, seconds (30 days).
    pub record_retention_secs: u64,
    /// A verification left in `processing` this long (its server died) is retried, seconds.
    pub processing_stale_secs: u64,
    /// The default policy; callers may override it per verification.
    pub policy: VerificationPolicy,
}

impl Default for VerificationConfig {
    fn default() -> Self {
        VerificationConfig {
            record_retention_secs: 30 * 86_400,
            processing_stale_secs: 60,
            policy: VerificationPolicy::default(),
        }
    }
}

/// What a verification requires. Every threshold is a false-match rate turned into a
/// similarity by the calibration, never a literal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationPolicy {
    /// Document portrait ↔ live face: the false-match rate of the threshold (default 1e-4,
    /// similarity 60). Measured on synthetic ID cards with fr_feature + SFace and the
    /// calibration fitted on LFW and CFP: FMR 2.8e-6 at 60, card FNMR 9.3 % (3.3 % at 50):
    /// `docs/verification.md`.
    pub document_match_fmr: f64,
    /// Document matches below the `documentMatchFmr` threshold but at or above this
    /// one's go to `needs_review` (`DocumentMatchUncertain`) instead of being rejected
    /// (default 1e-3, similarity 50). Equal to `documentMatchFmr`: no review band. On
    /// synthetic LFW documents the band holds about 6.0 % of genuine users and 0.006 %
    /// of impostors (`honnin eval document`, docs/verification.md).
    pub document_review_fmr: f64,
    /// Liveness confidence at or above which the face counts as live (default 50).
    pub liveness_threshold: f32,
    /// Duplicate search in the collection: the false-match rate of the threshold (1e-5).
    pub duplicate_match_fmr: f64,
    /// A duplicate (the live face matches a user with another `externalUserId`) rejects
    /// the verification; when false it goes to `needs_review` instead.
    pub duplicates_block: bool,
    /// On approval, store the live face in the collection as user `externalUserId`.
    pub enrol_on_success: bool,
    /// Smallest document portrait, pixels (longer side of the face box).
    pub min_document_face_px: f32,
    /// A document portrait accepted but smaller than this (pixels) carries the warning
    /// `DocumentPortraitSmall`: FNMR measured with the LFW-only calibration at similarity
    /// 60 was 9–20 % below 70 px against 5–8.5 % above (`honnin eval document`,
    /// `byPortraitSize`); the same scores now read about 10 points lower.
    pub small_document_face_px: f32,
    /// Keep the document image and the live face's reference image this long after the
    /// decision (for manual review), seconds; 0 (default): no image outlives the decision.
    pub keep_images_secs: u64,
    /// A document match below the review threshold whose portrait is turned far from
    /// frontal, small or blurred (`honnin_engine::NonMatchLimits`) goes to
    /// `needs_review` with `LowFaceQuality` instead of being rejected (default true):
    /// such a non-match does not show a different person. False: rejected as before.
    pub review_low_quality_mismatch: bool,
}

impl Default for VerificationPolicy {
    fn default() -> Self {
        VerificationPolicy {
            document_match_fmr: 1e-4,
            document_review_fmr: 1e-3,
            liveness_threshold: honnin_liveness::LIVE_THRESHOLD,
            duplicate_match_fmr: 1e-5,
            duplicates_block: true,
            enrol_on_success: true,
            min_document_face_px: 40.0,
            small_document_face_px: 70.0,
            keep_images_secs: 0,
            review_low_quality_mismatch: true,
        }
    }
}

/// Per-verification overrides of the configured policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyOverrides {
    /// Overrides [`VerificationPolicy::document_match_fmr`]; a false-match rate in (0, 1).
    pub document_match_fmr: Option<f64>,
    /// At least `documentMatchFmr`.
    pub document_review_fmr: Option<f64>,
    /// Overrides [`VerificationPolicy::liveness_threshold`]; liveness confidence 0–100.
    pub liveness_threshold: Option<f32>,
    /// Overrides [`VerificationPolicy::duplicate_match_fmr`]; a false-match rate in (0, 1).
    pub duplicate_match_fmr: Option<f64>,
    /// Overrides [`VerificationPolicy::duplicates_block`].
    pub duplicates_block: Option<bool>,
    /// Overrides [`VerificationPolicy::enrol_on_success`].
    pub enrol_on_success: Option<bool>,
    /// 20–1000 pixels. A service that prefers a retake to a harder match sets 70: a
    /// smaller portrait is then refused (400 `DocumentPortraitUnusable`, the
    /// verification stays `awaiting_document` for another photo).
    pub min_document_face_px: Option<f32>,
    /// 0–2592000 (30 days).
    pub keep_images_secs: Option<u64>,
    /// Overrides [`VerificationPolicy::review_low_quality_mismatch`].
    pub review_low_quality_mismatch: Option<bool>,
}
impl VerificationPolicy {
    /// This policy with `o` applied. Errors: InvalidParameter naming the field out of range.
    pub(crate) fn with(&self, o: &PolicyOverrides) -> Result<VerificationPolicy> {
        let fmr = |v: Option<f64>, d: f64, name: &str| -> Result<f64> {
            match v {
                None => Ok(d),
                Some(x) if x > 0.0 && x < 1.0 => Ok(x),
                Some(x) => Err(CoreError::InvalidParameter(format!(
                    "{name} must be a false-match rate in (0, 1), got {x}"
                ))),
            }
        };
        let liveness_threshold = match o.liveness_threshold {
            None => self.liveness_threshold,
            Some(x) if (0.0..=100.0).contains(&x) => x,
            Some(x) => {
                return Err(CoreError::InvalidParameter(format!(
                    "livenessThreshold must lie in 0–100, got {x}"
                )))
            }
        };
        let document_match_fmr = fmr(
            o.document_match_fmr,
            self.document_match_fmr,
            "documentMatchFmr",
        )?;
        // An explicit review FMR must be the looser one; the configured one follows a
        // looser match FMR (the band then closes).
        let document_review_fmr = match o.document_review_fmr {
            Some(_) => {
                let r = fmr(o.document_review_fmr, 0.0, "documentReviewFmr")?;
                if r < document_match_fmr {
                    return Err(CoreError::InvalidParameter(format!(
                        "documentReviewFmr ({r}) must be at least documentMatchFmr ({document_match_fmr}): the review band lies below the match threshold"
                    )));
                }
                r
            }
            None => self.document_review_fmr.max(document_match_fmr),
        };
        Ok(VerificationPolicy {
            document_match_fmr,
            document_review_fmr,
            liveness_threshold,
            duplicate_match_fmr: fmr(
                o.duplicate_match_fmr,
                self.duplicate_match_fmr,
                "duplicateMatchFmr",
            )?,
            duplicates_block: o.duplicates_block.unwrap_or(self.duplicates_block),
            enrol_on_success: o.enrol_on_success.unwrap_or(self.enrol_on_success),
            min_document_face_px: match o.min_document_face_px {
                None => self.min_document_face_px,
                Some(x) if (DOCUMENT_DETECT_MIN_FACE_PX..=1000.0).contains(&x) => x,
                Some(x) => {
                    return Err(CoreError::InvalidParameter(format!(
                        "minDocumentFacePx must lie in {DOCUMENT_DETECT_MIN_FACE_PX}–1000, got {x}"
                    )))
                }
            },
            small_document_face_px: self.small_document_face_px,
            review_low_quality_mismatch: o
                .review_low_quality_mismatch
                .unwrap_or(self.review_low_quality_mismatch),
            keep_images_secs: match o.keep_images_secs {
                None => self.keep_images_secs,
                Some(x) if x <= MAX_KEEP_IMAGES_SECS => x,
                Some(x) => {
                    return Err(CoreError::InvalidParameter(format!(
                        "keepImagesSecs must lie in 0–{MAX_KEEP_IMAGES_SECS}, got {x}"
                    )))
                }
            },
        })
    }
}

/// What the row's `policy` column holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredPolicy {
    pub(crate) policy: VerificationPolicy,
}

/// The policy a verification was created with.
pub(crate) fn stored_policy(row: &VerificationRow) -> Result<VerificationPolicy> {
    serde_json::from_str::<StoredPolicy>(&row.policy)
        .map(|p| p.policy)
        .map_err(CoreError::json("stored policy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(o: PolicyOverrides) -> Result<VerificationPolicy> {
        VerificationPolicy::default().with(&o)
    }

    #[test]
    fn the_review_band_lies_below_the_match_threshold() {
        let p = with(PolicyOverrides::default()).unwrap();
        assert_eq!((p.document_match_fmr, p.document_review_fmr), (1e-4, 1e-3));
        // A looser match FMR closes the configured band instead of inverting it.
        let p = with(PolicyOverrides {
            document_match_fmr: Some(1e-2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.document_review_fmr, 1e-2);
        // An explicit review FMR stricter than the match FMR is refused.
        let e = with(PolicyOverrides {
            document_match_fmr: Some(1e-3),
            document_review_fmr: Some(1e-4),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), "InvalidParameter");
        assert!(e.to_string().contains("documentReviewFmr"), "{e}");
        // Equal: no band.
        let p = with(PolicyOverrides {
            document_review_fmr: Some(1e-4),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(p.document_review_fmr, p.document_match_fmr);
        for bad in [0.0, 1.0, -1e-3, f64::NAN] {
            assert!(with(PolicyOverrides {
                document_review_fmr: Some(bad),
                ..Default::default()
            })
            .is_err());
        }
    }
}
