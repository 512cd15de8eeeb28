//! Identity verification: ID document → liveness → compare → duplicate search →
//! enrolment, with a decision record.
//!
//! A verification is a row in storage (`verifications`) whose status moves forward by
//! conditional updates, so with several servers exactly one of them runs each step:
//!
//! ```text
//! awaiting_document ──document──▶ awaiting_liveness ──liveness ends──▶ processing ──▶ approved
//!        │                               │                                   ├──▶ rejected
//!        └──────────── time runs out ────┴──▶ expired                        └──▶ needs_review
//! ```
//!
//! The liveness session is created with the verification (its client token goes to the
//! browser); its stream is refused until the document is in. When the stream ends,
//! [`Service::complete_liveness_stream`] keeps the live face's sealed template for the
//! verification and runs [`Service::process_verification`]; the background task also
//! picks up any verification whose liveness ended while its server was busy or gone.
//!
//! Privacy: only templates are kept (sealed with the transient key) and only until the
//! decision; the decision record holds scores, thresholds and reasons. Images are kept
//! only when the policy asks, for `keepImagesSecs`, and the sweeper deletes them.

use honnin_engine::engine::RatioBox;
use honnin_engine::quality::{Pose, QualityInputs, QualityLevel};
use honnin_engine::Template;
use honnin_engine::{NonMatchLimits, RetakeReason};
use serde::{Deserialize, Serialize};

use crate::auth::{Action, Principal};
use crate::error::{CoreError, Result};
use crate::liveness::{LivenessResults, NewLivenessSession};
use crate::model::{StoredDetails, ThresholdInfo};
use crate::pipeline::Detection;
use crate::service::{check_user_id, now_ms, rfc3339, FaceOrigin, Service};
use crate::webhooks::EventSubject;
use honnin_storage::{FaceRow, UserRow, VerificationRow};

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
    pub document_match_fmr: Option<f64>,
    /// At least `documentMatchFmr`.
    pub document_review_fmr: Option<f64>,
    pub liveness_threshold: Option<f32>,
    pub duplicate_match_fmr: Option<f64>,
    pub duplicates_block: Option<bool>,
    pub enrol_on_success: Option<bool>,
    /// 20–1000 pixels. A service that prefers a retake to a harder match sets 70: a
    /// smaller portrait is then refused (400 `DocumentPortraitUnusable`, the
    /// verification stays `awaiting_document` for another photo).
    pub min_document_face_px: Option<f32>,
    /// 0–2592000 (30 days).
    pub keep_images_secs: Option<u64>,
    pub review_low_quality_mismatch: Option<bool>,
}

impl VerificationPolicy {
    fn with(&self, o: &PolicyOverrides) -> Result<VerificationPolicy> {
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

/// `POST /v1/verifications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVerification {
    pub collection_id: String,
    pub external_user_id: String,
    #[serde(default)]
    pub policy: PolicyOverrides,
    #[serde(default)]
    pub device_correlation_id: Option<String>,
}

/// A created verification: the browser gets the liveness session and its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedVerification {
    pub verification_id: String,
    pub status: String,
    pub liveness_session_id: String,
    /// Valid for the liveness session only; give it to the capture client.
    pub client_token: String,
    pub stream_path: String,
    pub expires_at: String,
    pub policy: VerificationPolicy,
}

/// The portrait found on the document (what the document step kept, no biometrics).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentPortrait {
    pub bounding_box: RatioBox,
    /// Longer side of the face box, pixels.
    pub face_size_px: f32,
    pub confidence: f32,
    pub quality_for_recognition: QualityLevel,
    /// Faces found on the document in all (the main portrait and smaller ghost images).
    pub faces_found: usize,
    pub received_at: String,
    /// Accepted, but worth a better photo: `DocumentPortraitSmall` (below the policy's
    /// `smallDocumentFacePx`, where the false-non-match rate about doubles). A client
    /// may ask the user to retake the document photo closer before going on.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Head pose of the portrait, degrees (absent in records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose: Option<Pose>,
    /// Sharpness of the portrait, 0–100 (absent in records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
}

impl DocumentPortrait {
    /// Why a non-match at `similarity` against this portrait is not reliable (the live face of a
    /// liveness session is frontal and close by construction, so only the portrait's
    /// own pose, size and sharpness count). Empty for records without pose and
    /// sharpness.
    pub fn retake_reasons(&self, similarity: f32, limits: &NonMatchLimits) -> Vec<RetakeReason> {
        let (Some(pose), Some(sharpness)) = (self.pose, self.sharpness) else {
            return Vec::new();
        };
        let q = QualityInputs {
            size: self.face_size_px,
            pose,
            brightness: 50.0,
            sharpness,
            confidence: self.confidence,
        };
        limits.single_face_reasons(similarity, &q)
    }
}

/// The warnings of an accepted document portrait (see [`DocumentPortrait::warnings`]).
pub fn document_warnings(face_size_px: f32, policy: &VerificationPolicy) -> Vec<String> {
    let mut w = Vec::new();
    if face_size_px < policy.small_document_face_px {
        w.push("DocumentPortraitSmall".to_string());
    }
    w
}

/// One step of the decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionStep {
    /// document | liveness | documentMatch | duplicateSearch | enrolment
    pub step: String,
    /// passed | failed | review | skipped
    pub outcome: String,
    /// The step's score: liveness confidence or similarity, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// For similarity thresholds: the false-match rate the threshold corresponds to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_info: Option<ThresholdInfo>,
    pub reasons: Vec<String>,
    /// Step-specific facts (matched users, the enrolled face id…).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
    pub at: String,
}

/// The decision record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    /// approved | rejected | needs_review | expired | cancelled
    pub outcome: String,
    /// Stable codes of why (empty when approved).
    pub reasons: Vec<String>,
    pub steps: Vec<DecisionStep>,
    pub policy: VerificationPolicy,
    pub models: ModelVersions,
    pub decided_at: String,
}

/// The models a decision was made with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelVersions {
    /// Template space (recognizers) of every similarity.
    pub face_model: String,
    pub liveness_model: String,
    pub honnin_version: String,
}

/// `GET /v1/verifications/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationStatus {
    pub verification_id: String,
    /// awaiting_document | awaiting_liveness | processing | approved | rejected |
    /// needs_review | expired | cancelled (its API key was revoked before the decision)
    pub status: String,
    pub collection_id: String,
    pub external_user_id: String,
    pub liveness_session_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub expires_at: String,
    pub policy: VerificationPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentPortrait>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionRecord>,
    /// Only with a policy that keeps images, until they are deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<VerificationImages>,
}

/// The `verification.completed` webhook event body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationEvent {
    pub event: String,
    pub event_id: String,
    pub verification_id: String,
    pub collection_id: String,
    pub external_user_id: String,
    pub status: String,
    pub decision: DecisionRecord,
}

/// What the row's `policy` column holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredPolicy {
    policy: VerificationPolicy,
}

fn aad(id: &str, what: &str) -> Vec<u8> {
    format!("verification:{id}:{what}").into_bytes()
}

/// The live-face template of a liveness session, sealed for its verification.
pub(crate) fn live_template_aad(session_id: &str) -> Vec<u8> {
    format!("liveness:{session_id}:live").into_bytes()
}

fn not_found(id: &str) -> CoreError {
    CoreError::VerificationNotFound(format!("verification `{id}` does not exist"))
}

/// How much smaller than the main portrait a second face must be to count as a ghost
/// image (area ratio). Ghost images on ID cards are about a quarter of the portrait's
/// area; a second face at least this large means two people.
const GHOST_MAX_AREA_RATIO: f32 = 0.5;

/// Longest time a policy may keep images after the decision (30 days).
pub const MAX_KEEP_IMAGES_SECS: u64 = 30 * 86_400;

/// Images a verification keeps by policy, sealed as one blob.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationImages {
    /// The document image as uploaded, base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// The liveness session's reference frame, with its face box.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_face: Option<crate::liveness::LivenessImage>,
    /// When the sweeper deletes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_at: Option<String>,
}

/// Smallest face the document step's second detection pass looks for, pixels (lower
/// than the service's default, 40): a portrait too small to compare is then reported as
/// such (DocumentPortraitUnusable, with what to do) instead of as no face at all. The ID-document specimens' portraits measure
/// 43–403 px (`crates/honnin-core/tests/documents.rs`).
pub const DOCUMENT_DETECT_MIN_FACE_PX: f32 = 20.0;

impl Service {
    /// Starts a verification (enroller key for the collection): the row, and the
    /// liveness session the browser will run.
    pub async fn create_verification(
        &self,
        p: &Principal,
        req: NewVerification,
    ) -> Result<CreatedVerification> {
        check_user_id(&req.external_user_id).map_err(|_| {
            CoreError::InvalidParameter(
                "externalUserId must be 1–128 characters of [A-Za-z0-9_.-]".into(),
            )
        })?;
        // The collection must exist (enrolment and the duplicate search need it).
        self.authorize(p, Action::Enroll, &req.collection_id)
            .await?;
        let policy = self.config().verification.policy.with(&req.policy)?;
        let session = self
            .create_liveness_session(
                p,
                NewLivenessSession {
                    device_correlation_id: req.device_correlation_id,
                    ..NewLivenessSession::default()
                },
            )
            .await?;
        let live = self
            .store()
            .get_liveness(&session.session_id)
            .await?
            .ok_or_else(|| CoreError::Internal("the liveness session vanished".into()))?;
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        // The flow must reach its liveness step's end within the session's time limit.
        let expires_ms = live.expires_ms;
        let row = VerificationRow {
            verification_id: id.clone(),
            owner_key: p.key_id.clone(),
            collection_id: req.collection_id.clone(),
            external_user_id: req.external_user_id.clone(),
            policy: serde_json::to_string(&StoredPolicy {
                policy: policy.clone(),
            })
            .map_err(|e| CoreError::Internal(e.to_string()))?,
            liveness_session_id: session.session_id.clone(),
            status: "awaiting_document".into(),
            document: None,
            document_info: None,
            decision: None,
            images: None,
            images_until_ms: None,
            created_ms: now,
            updated_ms: now,
            expires_ms,
            decided_ms: None,
            retain_until_ms: now + self.config().verification.record_retention_secs as i64 * 1000,
        };
        self.store().insert_verification(&row).await?;
        metrics::counter!("honnin_verifications_created_total").increment(1);
        Ok(CreatedVerification {
            verification_id: id,
            status: row.status,
            liveness_session_id: session.session_id,
            client_token: session.client_token,
            stream_path: session.stream_path,
            expires_at: rfc3339(expires_ms),
            policy,
        })
    }

    /// The verification `id` (any UUID spelling) if `p` may see it: its creating key,
    /// admins of its collection (as it exists now), unlimited admins.
    async fn owned_verification(&self, p: &Principal, id: &str) -> Result<VerificationRow> {
        p.check(Action::Recognize, None)?;
        let canonical = crate::validate::canonical_uuid(id).ok_or_else(|| not_found(id))?;
        let row = self
            .store()
            .get_verification(&canonical)
            .await?
            .ok_or_else(|| not_found(id))?;
        if !self.may_see_owned(p, &row.owner_key).await?
            && !self.admin_of(p, &row.collection_id).await?
        {
            return Err(not_found(id));
        }
        Ok(row)
    }

    /// The document step: finds the main portrait on an ID document (photo page or card),
    /// checks it and keeps only its sealed template.
    pub async fn put_verification_document(
        &self,
        p: &Principal,
        id: &str,
        image: Vec<u8>,
    ) -> Result<VerificationStatus> {
        let row = self.owned_verification(p, id).await?;
        let id = row.verification_id.as_str();
        self.authorize(p, Action::Enroll, &row.collection_id)
            .await?;
        let now = now_ms();
        self.check_step(&row, "awaiting_document", now)?;
        let policy = stored_policy(&row)?;
        let kept_image = (policy.keep_images_secs > 0).then(|| image.clone());
        let min_px = policy.min_document_face_px;
        let choose = Box::new(move |faces: &[honnin_engine::Face]| {
            pick_document_portrait(faces, min_px)?;
            Ok((vec![0], faces.len()))
        });
        let (a, faces_found) = self
            .analyse(
                image,
                "document",
                Detection::Document(self.detect_options(10)),
                choose,
            )
            .await?;
        let Some((face, t)) = a.first() else {
            return Err(CoreError::Internal(
                "no template for the document portrait".into(),
            ));
        };
        let info = DocumentPortrait {
            bounding_box: face.bounding_box,
            face_size_px: face.face_size,
            confidence: face.confidence,
            quality_for_recognition: face.quality_for_recognition,
            faces_found,
            received_at: rfc3339(now),
            warnings: document_warnings(face.face_size, &policy),
            pose: Some(face.pose),
            sharpness: Some(face.quality.sharpness),
        };
        let sealed = self.transient_key.seal(&t.to_bytes(), &aad(id, "document"));
        let info_json =
            serde_json::to_string(&info).map_err(|e| CoreError::Internal(e.to_string()))?;
        let images = match kept_image {
            Some(bytes) => Some(self.seal_images(
                id,
                &VerificationImages {
                    document: Some(crate::liveness::b64(&bytes)),
                    ..VerificationImages::default()
                },
            )?),
            None => None,
        };
        if !self
            .store()
            .set_verification_document(id, &sealed, &info_json, images.as_deref(), now)
            .await?
        {
            // Another request moved it meanwhile (or it just expired).
            let row = self.owned_verification(p, id).await?;
            self.check_step(&row, "awaiting_document", now_ms())?;
            return Err(CoreError::StepOutOfOrder(format!(
                "verification `{id}` is {}",
                row.status
            )));
        }
        self.verification_status(p, id).await
    }

    fn seal_images(&self, id: &str, imgs: &VerificationImages) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(imgs).map_err(|e| CoreError::Internal(e.to_string()))?;
        Ok(self.transient_key.seal(&plain, &aad(id, "images")))
    }

    fn open_images(&self, row: &VerificationRow) -> Result<Option<VerificationImages>> {
        match &row.images {
            Some(sealed) => {
                let plain = self
                    .transient_key
                    .open(sealed, &aad(&row.verification_id, "images"))?;
                Ok(Some(serde_json::from_slice(&plain).map_err(|e| {
                    CoreError::Internal(format!("stored images: {e}"))
                })?))
            }
            None => Ok(None),
        }
    }

    /// Refuses a step when the verification is not waiting for it.
    fn check_step(&self, row: &VerificationRow, want: &str, now: i64) -> Result<()> {
        let open = matches!(
            row.status.as_str(),
            "awaiting_document" | "awaiting_liveness"
        );
        if row.status == "expired" || (open && now >= row.expires_ms) {
            return Err(CoreError::VerificationExpired(format!(
                "verification `{}` expired at {}",
                row.verification_id,
                rfc3339(row.expires_ms)
            )));
        }
        if row.status != want {
            let what = match want {
                "awaiting_document" => "the document was already received",
                _ => "it is waiting for its document first",
            };
            return Err(CoreError::StepOutOfOrder(format!(
                "verification `{}` is {} ({what})",
                row.verification_id, row.status
            )));
        }
        Ok(())
    }

    /// The status and, once decided, the decision record.
    pub async fn verification_status(&self, p: &Principal, id: &str) -> Result<VerificationStatus> {
        let row = self.owned_verification(p, id).await?;
        let policy = stored_policy(&row)?;
        let mut status = row.status.clone();
        if matches!(status.as_str(), "awaiting_document" | "awaiting_liveness")
            && now_ms() >= row.expires_ms
        {
            status = "expired".into();
        }
        let document = row
            .document_info
            .as_deref()
            .map(serde_json::from_str::<DocumentPortrait>)
            .transpose()
            .map_err(|e| CoreError::Internal(format!("stored document info: {e}")))?;
        let mut decision = row
            .decision
            .as_deref()
            .map(serde_json::from_str::<DecisionRecord>)
            .transpose()
            .map_err(|e| CoreError::Internal(format!("stored decision: {e}")))?;
        if status == "cancelled" && decision.is_none() {
            let mut r = self.record(
                "cancelled",
                vec!["KeyRevoked".into()],
                Vec::new(),
                policy.clone(),
            );
            r.decided_at = rfc3339(row.decided_ms.unwrap_or(row.updated_ms));
            decision = Some(r);
        }
        Ok(VerificationStatus {
            verification_id: row.verification_id.clone(),
            status,
            collection_id: row.collection_id.clone(),
            external_user_id: row.external_user_id.clone(),
            liveness_session_id: row.liveness_session_id.clone(),
            created_at: rfc3339(row.created_ms),
            updated_at: rfc3339(row.updated_ms),
            expires_at: rfc3339(row.expires_ms),
            policy,
            document,
            decision,
            images: self.open_images(&row)?,
        })
    }

    /// Deletes a verification's record at once (the enrolled face, if any, stays: it is
    /// deleted through the collection's API).
    pub async fn delete_verification(&self, p: &Principal, id: &str) -> Result<()> {
        let row = self.owned_verification(p, id).await?;
        p.check(Action::Enroll, Some(&row.collection_id))?;
        // With its liveness session and the events about it, in one transaction.
        self.store()
            .delete_verification(&row.verification_id)
            .await?;
        Ok(())
    }

    /// Called when a liveness stream is about to open: a verification's session may only
    /// stream once the document is in.
    pub(crate) async fn check_verification_stream(&self, session_id: &str) -> Result<()> {
        let Some(vid) = self.store().verification_of_liveness(session_id).await? else {
            return Ok(());
        };
        let Some(row) = self.store().get_verification(&vid).await? else {
            return Ok(());
        };
        self.check_step(&row, "awaiting_liveness", now_ms())
    }

    /// The live-face template of a finishing liveness session that belongs to a
    /// verification, sealed; `finish_liveness` stores it with the finished status.
    pub(crate) fn seal_live_template(&self, session_id: &str, live: &Template) -> Vec<u8> {
        self.transient_key
            .seal(&live.to_bytes(), &live_template_aad(session_id))
    }

    /// Called when a liveness stream has finished: decides `verification` (the one the
    /// session belongs to, if any) unless another server got there first. A failure is
    /// logged, not returned: the stream's result stands and the background pass retries.
    pub(crate) async fn decide_after_liveness(&self, session_id: &str, verification: Option<&str>) {
        let Some(vid) = verification else { return };
        if let Err(e) = self.process_verification(vid).await {
            tracing::warn!(session = %session_id, error = %e, "verification step after liveness failed");
        }
    }

    /// Runs the decision of a verification whose liveness session has ended (or that
    /// ran out of time), if this server wins it. Returns whether it decided.
    pub async fn process_verification(&self, id: &str) -> Result<bool> {
        let now = now_ms();
        let won = self
            .store()
            .transition_verification(id, "awaiting_liveness", "processing", now)
            .await?
            || match self.store().get_verification(id).await? {
                // A document that never came: decided as expired once out of time.
                Some(r) if r.status == "awaiting_document" && now >= r.expires_ms => {
                    self.store()
                        .transition_verification(id, "awaiting_document", "processing", now)
                        .await?
                }
                _ => false,
            };
        if !won {
            return Ok(false);
        }
        let row = self
            .store()
            .get_verification(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let record = self.decide(&row).await?;
        // The liveness session's frames go now; with a policy that keeps images, its
        // reference frame joins the document image for `keepImagesSecs`.
        let policy = stored_policy(&row)?;
        let live_face = self
            .take_liveness_reference_image(&row.liveness_session_id)
            .await?;
        let kept = if policy.keep_images_secs > 0 {
            let mut imgs = self.open_images(&row)?.unwrap_or_default();
            imgs.live_face = live_face;
            let until = now_ms() + policy.keep_images_secs as i64 * 1000;
            imgs.delete_at = Some(rfc3339(until));
            Some((self.seal_images(id, &imgs)?, until))
        } else {
            None
        };
        let decision =
            serde_json::to_string(&record).map_err(|e| CoreError::Internal(e.to_string()))?;
        let decided = self
            .store()
            .decide_verification(
                id,
                &record.outcome,
                &decision,
                kept.as_ref().map(|k| k.0.as_slice()),
                kept.as_ref().map(|k| k.1),
                now_ms(),
                row.created_ms + self.config().verification.record_retention_secs as i64 * 1000,
            )
            .await?;
        if decided {
            metrics::counter!("honnin_verifications_decided_total", "outcome" => record.outcome.clone())
                .increment(1);
            let event = VerificationEvent {
                event: "verification.completed".into(),
                event_id: uuid::Uuid::new_v4().to_string(),
                verification_id: row.verification_id.clone(),
                collection_id: row.collection_id.clone(),
                external_user_id: row.external_user_id.clone(),
                status: record.outcome.clone(),
                decision: record,
            };
            let subject = EventSubject {
                collection_id: Some(row.collection_id.clone()),
                user_id: Some(row.external_user_id.clone()),
                verification_id: Some(row.verification_id.clone()),
            };
            self.emit_event(&row.owner_key, "verification.completed", &subject, &event)
                .await?;
        }
        Ok(decided)
    }

    /// Every step of the decision. Never fails on the customer's data: a missing
    /// template or an unusable result is a failed step with a reason.
    async fn decide(&self, row: &VerificationRow) -> Result<DecisionRecord> {
        let policy = stored_policy(row)?;
        let at = || rfc3339(now_ms());
        let mut steps = Vec::new();
        let mut reasons: Vec<String> = Vec::new();
        let mut review = false;

        // 1. The document portrait.
        let document = row
            .document
            .as_deref()
            .map(|sealed| {
                self.open_transient_template(sealed, &aad(&row.verification_id, "document"))
            })
            .transpose()?;
        steps.push(DecisionStep {
            step: "document".into(),
            outcome: if document.is_some() {
                "passed"
            } else {
                "failed"
            }
            .into(),
            score: None,
            threshold: None,
            threshold_info: None,
            reasons: if document.is_some() {
                vec![]
            } else {
                vec!["NoDocumentPortrait".into()]
            },
            details: row
                .document_info
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
            at: at(),
        });

        if document.is_none() {
            // Only a verification that ran out of time reaches here without one.
            let why = vec!["VerificationExpired".to_string()];
            return Ok(self.record("expired", why, steps, policy));
        }

        // 2. Liveness.
        let live_row = self.store().get_liveness(&row.liveness_session_id).await?;
        let results: Option<LivenessResults> = live_row
            .as_ref()
            .and_then(|l| l.result.as_deref())
            .and_then(|r| serde_json::from_str(r).ok());
        let live_status = live_row
            .as_ref()
            .map(|l| l.status.clone())
            .unwrap_or_else(|| "DELETED".into());
        let confidence = results.as_ref().and_then(|r| r.confidence);
        let (outcome, why) = match (live_status.as_str(), confidence) {
            ("EXPIRED", _) | ("CREATED", _) | ("IN_PROGRESS", _) | ("DELETED", _) => {
                ("expired", vec!["LivenessSessionExpired".to_string()])
            }
            ("SUCCEEDED", Some(c)) if c >= policy.liveness_threshold => ("passed", vec![]),
            ("SUCCEEDED", Some(c)) if c >= honnin_liveness::SPOOF_BELOW => {
                ("review", vec!["LivenessUncertain".to_string()])
            }
            ("SUCCEEDED", Some(_)) => ("failed", vec!["LivenessCheckFailed".to_string()]),
            _ => ("failed", vec!["LivenessSessionFailed".to_string()]),
        };
        let mut live_reasons = why.clone();
        if let Some(r) = &results {
            live_reasons.extend(r.reasons.iter().map(|x| x.code.clone()));
        }
        steps.push(DecisionStep {
            step: "liveness".into(),
            outcome: if outcome == "expired" {
                "failed"
            } else {
                outcome
            }
            .into(),
            score: confidence,
            threshold: Some(policy.liveness_threshold),
            threshold_info: None,
            reasons: live_reasons,
            details: Some(serde_json::json!({
                "sessionId": row.liveness_session_id,
                "status": live_status,
                "decision": results.as_ref().and_then(|r| r.decision.clone()),
            })),
            at: at(),
        });
        if outcome == "expired" {
            return Ok(self.record("expired", why, steps, policy));
        }
        match outcome {
            "failed" => reasons.extend(why),
            "review" => {
                review = true;
                reasons.extend(why)
            }
            _ => {}
        }

        // 3. The live face.
        let live = self
            .store()
            .live_template(&row.liveness_session_id)
            .await?
            .map(|sealed| {
                self.open_transient_template(&sealed, &live_template_aad(&row.liveness_session_id))
            })
            .transpose()?;
        let Some(live) = live else {
            reasons.push("NoLiveFace".into());
            for s in ["documentMatch", "duplicateSearch", "enrolment"] {
                steps.push(skipped(s, "NoLiveFace", at()));
            }
            return Ok(self.record("rejected", reasons, steps, policy));
        };

        // 4. Document ↔ live face: pass at the match threshold, review in the band
        // down to the review threshold, fail below.
        let doc_threshold = self.threshold_for_fmr(policy.document_match_fmr);
        let review_threshold = self
            .threshold_for_fmr(policy.document_review_fmr)
            .min(doc_threshold);
        match &document {
            Some(d) => {
                let c = self
                    .engine()
                    .compare(d, &live)
                    .map_err(|e| CoreError::Internal(format!("compare: {e}")))?;
                let retake = row
                    .document_info
                    .as_deref()
                    .and_then(|d| serde_json::from_str::<DocumentPortrait>(d).ok())
                    .map(|d| d.retake_reasons(c.similarity, &self.config().retake))
                    .unwrap_or_default();
                let (outcome, why) = if c.similarity >= doc_threshold {
                    ("passed", None)
                } else if c.similarity >= review_threshold {
                    review = true;
                    ("review", Some("DocumentMatchUncertain"))
                } else if policy.review_low_quality_mismatch && !retake.is_empty() {
                    review = true;
                    ("review", Some("LowFaceQuality"))
                } else {
                    ("failed", Some("DocumentMismatch"))
                };
                reasons.extend(why.map(String::from));
                steps.push(DecisionStep {
                    step: "documentMatch".into(),
                    outcome: outcome.into(),
                    score: Some(c.similarity),
                    threshold: Some(doc_threshold),
                    threshold_info: Some(self.threshold_info(doc_threshold)),
                    reasons: why.map(String::from).into_iter().collect(),
                    details: Some(serde_json::json!({
                        "reviewThreshold": review_threshold,
                        "reviewThresholdInfo": self.threshold_info(review_threshold),
                        "retakeReasons": retake,
                    })),
                    at: at(),
                });
            }
            None => {
                reasons.push("NoDocumentPortrait".into());
                steps.push(skipped("documentMatch", "NoDocumentPortrait", at()));
            }
        }

        // 5. Duplicates: the live face against the collection.
        let dup_threshold = self.threshold_for_fmr(policy.duplicate_match_fmr);
        let matches = self
            .search_template(&row.collection_id, &live, dup_threshold, 10)
            .await?;
        let best = matches.first().map(|m| m.1);
        let same_user: Vec<&(FaceRow, f32)> = matches
            .iter()
            .filter(|m| m.0.user_id.as_deref() == Some(row.external_user_id.as_str()))
            .collect();
        let others: Vec<serde_json::Value> = matches
            .iter()
            .filter(|m| m.0.user_id.as_deref() != Some(row.external_user_id.as_str()))
            .map(|(f, s)| {
                serde_json::json!({"faceId": f.face_id, "userId": f.user_id, "similarity": s})
            })
            .collect();
        let dup = !others.is_empty();
        let dup_outcome = match (dup, policy.duplicates_block) {
            (false, _) => "passed",
            (true, true) => "failed",
            (true, false) => "review",
        };
        if dup {
            reasons.push("DuplicateIdentity".into());
            if !policy.duplicates_block {
                review = true;
            }
        }
        steps.push(DecisionStep {
            step: "duplicateSearch".into(),
            outcome: dup_outcome.into(),
            score: best,
            threshold: Some(dup_threshold),
            threshold_info: Some(self.threshold_info(dup_threshold)),
            reasons: if dup {
                vec!["DuplicateIdentity".into()]
            } else {
                vec![]
            },
            details: Some(serde_json::json!({
                "duplicates": others,
                "sameUserMatches": same_user.len(),
            })),
            at: at(),
        });

        let failed = steps.iter().any(|s| s.outcome == "failed");
        let outcome = if failed {
            "rejected"
        } else if review {
            "needs_review"
        } else {
            "approved"
        };

        // 6. Enrolment.
        if outcome == "approved" && policy.enrol_on_success {
            match self
                .enrol_template(
                    &row.collection_id,
                    &row.external_user_id,
                    &live,
                    &row.verification_id,
                )
                .await
            {
                Ok(face_id) => steps.push(DecisionStep {
                    step: "enrolment".into(),
                    outcome: "passed".into(),
                    score: None,
                    threshold: None,
                    threshold_info: None,
                    reasons: vec![],
                    details: Some(serde_json::json!({
                        "userId": row.external_user_id, "faceId": face_id,
                    })),
                    at: at(),
                }),
                Err(e) => {
                    tracing::warn!(verification = %row.verification_id, error = %e, "enrolment failed");
                    steps.push(DecisionStep {
                        step: "enrolment".into(),
                        outcome: "failed".into(),
                        score: None,
                        threshold: None,
                        threshold_info: None,
                        reasons: vec![e.code().into()],
                        details: Some(serde_json::json!({"message": e.to_string()})),
                        at: at(),
                    });
                    reasons.push("EnrolmentFailed".into());
                    return Ok(self.record("needs_review", reasons, steps, policy));
                }
            }
        } else {
            let why = if outcome != "approved" {
                "NotApproved"
            } else {
                "PolicyDoesNotEnrol"
            };
            steps.push(skipped("enrolment", why, at()));
        }
        reasons.dedup();
        Ok(self.record(outcome, reasons, steps, policy))
    }

    fn record(
        &self,
        outcome: &str,
        mut reasons: Vec<String>,
        steps: Vec<DecisionStep>,
        policy: VerificationPolicy,
    ) -> DecisionRecord {
        reasons.dedup();
        DecisionRecord {
            outcome: outcome.into(),
            reasons,
            steps,
            policy,
            models: ModelVersions {
                face_model: self.engine().template_model().into(),
                liveness_model: honnin_engine::models::FR_LIVENESS.file.into(),
                honnin_version: env!("CARGO_PKG_VERSION").into(),
            },
            decided_at: rfc3339(now_ms()),
        }
    }

    /// Faces of `collection` at or above `threshold` (similarity) to `t`, best first.
    async fn search_template(
        &self,
        collection: &str,
        t: &Template,
        threshold: f32,
        k: usize,
    ) -> Result<Vec<(FaceRow, f32)>> {
        let c = self.collection(collection).await?;
        let query = self.weighting.apply(&t.vector);
        let min = self.score_for(threshold);
        let hits = c.index.read().search(&query, min, k, &|_| true);
        self.hit_rows(collection, &hits).await
    }

    /// Stores `t` as a face of user `user` (created if absent). Returns the face id.
    async fn enrol_template(
        &self,
        collection: &str,
        user: &str,
        t: &Template,
        verification_id: &str,
    ) -> Result<String> {
        let c = self.collection(collection).await?;
        let now = now_ms();
        if self.store().get_user(collection, user).await?.is_none() {
            match self
                .store()
                .insert_user(&UserRow {
                    collection_id: collection.into(),
                    user_id: user.into(),
                    created_ms: now,
                })
                .await
            {
                Ok(()) | Err(honnin_storage::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let origin = FaceOrigin {
            user_id: Some(user.into()),
            external_image_id: Some(format!("verification-{verification_id}")),
            image_id: verification_id.into(),
            details: StoredDetails {
                bounding_box: RatioBox::default(),
                confidence: 100.0,
                quality_for_recognition: QualityLevel::High,
            },
        };
        let row = self.sealed_face_row(&c, collection, origin, t, now);
        let face_id = row.face_id.clone();
        self.insert_and_index(&c, &[(row, t)]).await?;
        Ok(face_id)
    }

    /// Background work: decides verifications whose liveness ended while no server
    /// processed them, and retries those whose server died mid-decision.
    pub async fn advance_verifications(&self) -> Result<u64> {
        let now = now_ms();
        let stale = self.config().verification.processing_stale_secs as i64 * 1000;
        self.store()
            .requeue_stale_verifications(now - stale, now)
            .await?;
        let mut n = 0;
        for id in self.store().verifications_ready(now, 50).await? {
            if self.process_verification(&id).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}

/// Decodes a document image and finds its faces as the document step does (the
/// pipeline's `Detection::Document`), for evaluation tools:
/// first with `usual` options, then, if none was found, down to
/// [`DOCUMENT_DETECT_MIN_FACE_PX`].
pub fn document_faces(
    engine: &honnin_engine::Engine,
    image: &[u8],
    usual: honnin_engine::DetectOptions,
) -> Result<(honnin_engine::DecodedImage, Vec<honnin_engine::Face>)> {
    let img = engine
        .decode(image)
        .map_err(|e| CoreError::from_engine(e, "document"))?;
    let mut faces = engine
        .detect(&img, &usual)
        .map_err(|e| CoreError::from_engine(e, "document"))?;
    if faces.is_empty() && usual.min_face_size > DOCUMENT_DETECT_MIN_FACE_PX {
        let small = honnin_engine::DetectOptions {
            min_face_size: DOCUMENT_DETECT_MIN_FACE_PX,
            ..usual
        };
        faces = engine
            .detect(&img, &small)
            .map_err(|e| CoreError::from_engine(e, "document"))?;
    }
    Ok((img, faces))
}

/// The main portrait of an ID document among the faces found on it (largest first):
/// the largest face, provided no other face is nearly as large (a second person; the
/// ghost image printed beside the portrait is much smaller) and it is large and clear
/// enough to compare. Errors: NoFaceDetected, DocumentPortraitAmbiguous,
/// DocumentPortraitUnusable.
pub fn pick_document_portrait(
    faces: &[honnin_engine::Face],
    min_face_px: f32,
) -> Result<&honnin_engine::Face> {
    let Some(main) = faces.first() else {
        return Err(CoreError::NoFaceDetected(
            "the document (no portrait was found: photograph the photo page or the card's front, flat and in focus)".into(),
        ));
    };
    let area = |b: &RatioBox| b.width * b.height;
    if let Some(second) = faces.get(1) {
        let ratio = area(&second.bounding_box) / area(&main.bounding_box).max(1e-9);
        if ratio >= GHOST_MAX_AREA_RATIO {
            return Err(CoreError::DocumentPortraitAmbiguous(format!(
                "{} faces of similar size were found on the document (the second is {:.0} % of the first's area); send an image of the document alone",
                faces.len(),
                ratio * 100.0
            )));
        }
    }
    if main.face_size < min_face_px {
        return Err(CoreError::DocumentPortraitUnusable(format!(
            "the document portrait is {:.0} px; at least {min_face_px:.0} px is needed: photograph the document closer or at a higher resolution",
            main.face_size
        )));
    }
    if main.quality_for_recognition < QualityLevel::Low {
        return Err(CoreError::DocumentPortraitUnusable(
            "the document portrait is too blurred, dark or turned to compare".into(),
        ));
    }
    Ok(main)
}

fn skipped(step: &str, why: &str, at: String) -> DecisionStep {
    DecisionStep {
        step: step.into(),
        outcome: "skipped".into(),
        score: None,
        threshold: None,
        threshold_info: None,
        reasons: vec![why.into()],
        details: None,
        at,
    }
}

fn stored_policy(row: &VerificationRow) -> Result<VerificationPolicy> {
    serde_json::from_str::<StoredPolicy>(&row.policy)
        .map(|p| p.policy)
        .map_err(|e| CoreError::Internal(format!("stored policy: {e}")))
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

    #[test]
    fn a_small_accepted_portrait_carries_a_warning() {
        let p = VerificationPolicy::default();
        assert_eq!(document_warnings(69.9, &p), vec!["DocumentPortraitSmall"]);
        assert!(document_warnings(70.0, &p).is_empty());
        assert!(document_warnings(140.0, &p).is_empty());
        let p = VerificationPolicy {
            small_document_face_px: 0.0,
            ..p
        };
        assert!(document_warnings(41.0, &p).is_empty(), "0 switches it off");
        // A caller that prefers a retake raises the minimum instead.
        let o = |x| PolicyOverrides {
            min_document_face_px: Some(x),
            ..Default::default()
        };
        assert_eq!(with(o(70.0)).unwrap().min_document_face_px, 70.0);
        for bad in [19.9, 1000.5, f32::NAN] {
            let e = with(o(bad)).unwrap_err();
            assert!(e.to_string().contains("minDocumentFacePx"), "{e}");
        }
        // Records stored before the field existed still read.
        let old: DocumentPortrait = serde_json::from_str(
            r#"{"boundingBox":{"width":0.1,"height":0.2,"left":0.3,"top":0.3},"faceSizePx":81.0,
                "confidence":90.0,"qualityForRecognition":"high","facesFound":1,
                "receivedAt":"2026-11-22T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert!(old.warnings.is_empty());
        let policy: VerificationPolicy =
            serde_json::from_str(r#"{"documentMatchFmr":1e-4}"#).unwrap();
        assert_eq!(policy.small_document_face_px, 70.0);
    }
}
