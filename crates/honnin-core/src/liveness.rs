//! Face Liveness sessions: creation, the single-use stream ticket, results, deletion
//! and every time limit.
//!
//! A session is a row in storage (`liveness_sessions`), so any server of a deployment
//! can create it, stream it or answer for it. The stream itself (a WebSocket in
//! `honnin-server`) drives a sans-IO [`honnin_liveness::LiveSession`]; this module only
//! opens it (`LivenessSessions::open_stream`) and records its outcome
//! (`LivenessSessions::complete_stream`); [`crate::Service`] joins those to the
//! verification a session belongs to.
//!
//! Privacy: the client token is stored as its SHA-256; the reference template (for
//! liveness-with-verify) and the captured images are sealed with AES-256-GCM. The
//! template is dropped when the stream ends; the images when the results are first read,
//! or `images_ttl_secs` after the session finished, whichever comes first; the whole row
//! `results_retention_secs` after creation. The sweeper ([`crate::Service::sweep_once`]) enforces
//! all of it.

use std::time::Duration;

use base64::Engine as _;
use honnin_engine::engine::RatioBox;
use honnin_engine::Template;
use honnin_liveness::{
    Analyzers, ChallengeKind, Decision, LiveSession, LivenessOutcome, OutcomeStatus, Reason,
    SessionSettings,
};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
pub use crate::config::liveness::LivenessConfig;
use crate::context::domain;
use crate::crypto::liveness_aad;
use crate::error::{CoreError, Result};
use crate::model::ThresholdInfo;
pub use honnin_storage::LivenessStatus;

/// Upper bound on `auditImagesLimit` (Rekognition's).
pub const MAX_AUDIT_IMAGES: u8 = 4;
const MAX_DEVICE_ID_LEN: usize = 256;

/// What a caller asks for when creating a session.
#[derive(Debug, Clone, Default)]
pub struct NewLivenessSession {
    /// The challenge to run (default `FaceMovementAndLightChallenge`: oval, then a colour
    /// sequence; `FaceMovementChallenge` has no colours).
    pub challenge: ChallengeKind,
    /// Further frames kept besides the reference image, 0–[`MAX_AUDIT_IMAGES`]
    /// (`auditImagesLimit`).
    pub audit_images_limit: u8,
    /// Image bytes to compare the live face with (liveness-with-verify).
    pub reference_image: Option<Vec<u8>>,
    /// The caller's id for the capturing device (`deviceCorrelationId`, 1–256 bytes, no
    /// control characters): sessions per device and hour are limited
    /// ([`LivenessConfig::max_sessions_per_device_per_hour`]).
    pub device_correlation_id: Option<String>,
}

/// A created session: the browser gets `session_id` and `client_token`, never an API key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedLivenessSession {
    /// The session's id, a UUID: what the stream URL and `GET /v1/liveness/sessions/{sessionId}`
    /// name.
    pub session_id: String,
    /// Valid for this session only; give it to the capture client.
    pub client_token: String,
    /// When the session expires, RFC 3339 UTC: it must be streamed and finished by then
    /// ([`LivenessConfig::session_ttl_secs`], default 180 s).
    pub expires_at: String,
}

/// An image captured during the session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LivenessImage {
    /// JPEG, base64.
    pub bytes: String,
    /// The face in it.
    pub bounding_box: RatioBox,
}

/// Why a session was judged as it was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LivenessReason {
    /// Stable code (see `docs/liveness.md`).
    pub code: String,
    /// What happened, in English, for people (not to be parsed; `code` is stable).
    pub message: String,
}

impl From<&Reason> for LivenessReason {
    fn from(r: &Reason) -> Self {
        LivenessReason {
            code: r.code.to_string(),
            message: r.message.clone(),
        }
    }
}

/// `GET /v1/liveness/sessions/{sessionId}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LivenessResults {
    /// The session's id, a canonical UUID.
    pub session_id: String,
    /// CREATED | IN_PROGRESS | SUCCEEDED | FAILED | EXPIRED
    pub status: LivenessStatus,
    /// The challenge run, by its Rekognition name (e.g. `FaceMovementAndLightChallenge`).
    pub challenge: String,
    /// When the session was created, RFC 3339 UTC.
    pub created_at: String,
    /// When the session expires (or expired), RFC 3339 UTC.
    pub expires_at: String,
    /// The `deviceCorrelationId` given at creation, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_correlation_id: Option<String>,
    /// 0–100: how confident honnin is that a live person was in front of the camera.
    pub confidence: Option<f32>,
    /// live | spoof | uncertain
    pub decision: Option<String>,
    /// The confidence at or above which the decision is `live`.
    pub live_threshold: f32,
    /// Why the session was judged as it was (failed checks, expiry, a revoked key); may be
    /// empty for a live decision.
    pub reasons: Vec<LivenessReason>,
    /// Every signal's score and measurements (see `docs/liveness.md`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub signals: Option<serde_json::Value>,
    /// The best frame, with its face box. Returned by the first read only.
    pub reference_image: Option<LivenessImage>,
    /// Up to `auditImagesLimit` further frames. Returned by the first read only.
    pub audit_images: Vec<LivenessImage>,
    /// True once the images were handed out or expired: they are gone for good.
    pub images_deleted: bool,
    /// With a reference image: the similarity (0–100) of the live face to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_similarity: Option<f32>,
    /// With a reference image: whether the live face matches it (`matchSimilarity` at or
    /// above `matchThreshold`); false when no live face could be compared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_match: Option<bool>,
    /// With a reference image: the threshold applied (the one for the service's
    /// `match_fmr`) and its false-match rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub match_threshold: Option<ThresholdInfo>,
    /// Video frames the server received during the stream.
    pub frames_received: u32,
    /// Time the final analysis took after the stream ended, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis_ms: Option<f64>,
}

/// What is kept in the row's `settings` column.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredSettings {
    challenge: ChallengeKind,
    audit_images_limit: u8,
    has_reference: bool,
}

/// The images of a finished session, sealed as one blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredImages {
    reference: Option<LivenessImage>,
    audit: Vec<LivenessImage>,
}

/// A claimed stream: the holder may run this session's capture, once.
#[derive(Debug)]
pub struct LivenessTicket {
    /// The session's id, a canonical UUID.
    pub session_id: String,
    /// The challenge the session was created with.
    pub challenge: ChallengeKind,
    /// Further frames to keep besides the reference image, 0–[`MAX_AUDIT_IMAGES`].
    pub audit_images_limit: u8,
    /// The stream must be over by then (ms since the epoch).
    pub expires_ms: i64,
    reference: Option<Template>,
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn challenge_name(c: ChallengeKind) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{c:?}"))
}

/// The live face a finished session keeps for one login or enrolment (with its
/// template): pose and quality of the reference frame, and how often a second face was
/// seen. No image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveFaceDetails {
    /// Left–right turn, degrees (−90–90).
    pub yaw: f32,
    /// Up–down tilt, degrees (−90–90).
    pub pitch: f32,
    /// In-plane rotation, degrees (−180–180).
    pub roll: f32,
    /// Quality for recognition (`low`, `medium`, `high`; the engine's quality gates).
    pub quality: honnin_engine::QualityLevel,
    /// Face size, pixels (the longer side of the box).
    pub face_size: f32,
    /// Share of the session's detections that saw a second face of similar size, 0–1.
    pub multiple_faces_fraction: f64,
}

impl LiveFaceDetails {
    /// The details of an outcome's reference face, if it has one.
    pub fn of(outcome: &LivenessOutcome) -> Option<LiveFaceDetails> {
        outcome.reference_face.as_ref().map(|f| LiveFaceDetails {
            yaw: f.pose.yaw,
            pitch: f.pose.pitch,
            roll: f.pose.roll,
            quality: f.quality_for_recognition,
            face_size: f.face_size,
            multiple_faces_fraction: outcome.signals.movement.multiple_faces_fraction,
        })
    }
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

domain!(
    /// Face Liveness sessions: creation, the stream's ticket and outcome, results, deletion.
    LivenessSessions
);

impl LivenessSessions<'_> {
    /// Creates a session (recognizer role or higher), subject to the per-device and
    /// per-key creation limits.
    pub async fn create_liveness_session(
        &self,
        p: &Principal,
        req: NewLivenessSession,
    ) -> Result<CreatedLivenessSession> {
        p.check(Action::Recognize, None)?;
        let cfg = &self.config().liveness;
        if req.audit_images_limit > MAX_AUDIT_IMAGES {
            return Err(CoreError::InvalidParameter(format!(
                "auditImagesLimit must be 0–{MAX_AUDIT_IMAGES}"
            )));
        }
        if let Some(d) = &req.device_correlation_id {
            if d.is_empty() || d.len() > MAX_DEVICE_ID_LEN || d.chars().any(char::is_control) {
                return Err(CoreError::InvalidParameter(format!(
                    "deviceCorrelationId must be 1–{MAX_DEVICE_ID_LEN} printable characters"
                )));
            }
        }
        let now = now_ms();
        if cfg.max_sessions_per_key_per_minute > 0 {
            let n = self
                .store()
                .count_liveness_since(None, Some(&p.key_id), now - 60_000)
                .await?;
            if n >= i64::from(cfg.max_sessions_per_key_per_minute) {
                return Err(CoreError::Throttling(format!(
                    "this key created {n} liveness sessions in the last minute (limit {})",
                    cfg.max_sessions_per_key_per_minute
                )));
            }
        }
        if let (Some(d), true) = (
            &req.device_correlation_id,
            cfg.max_sessions_per_device_per_hour > 0,
        ) {
            let n = self
                .store()
                .count_liveness_since(Some(d), None, now - 3_600_000)
                .await?;
            if n >= i64::from(cfg.max_sessions_per_device_per_hour) {
                return Err(CoreError::Throttling(format!(
                    "this deviceCorrelationId created {n} liveness sessions in the last hour (limit {})",
                    cfg.max_sessions_per_device_per_hour
                )));
            }
        }

        let session_id = uuid::Uuid::new_v4().to_string();
        let reference = match req.reference_image {
            Some(bytes) => {
                let (_, t) = self.largest_face(bytes, "referenceImage").await?;
                Some(
                    self.transient_key
                        .seal(&t.to_bytes(), &liveness_aad(&session_id, "reference")),
                )
            }
            None => None,
        };
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let client_token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let settings = StoredSettings {
            challenge: req.challenge,
            audit_images_limit: req.audit_images_limit,
            has_reference: reference.is_some(),
        };
        let expires_ms = now + cfg.session_ttl_secs as i64 * 1000;
        let retain = (cfg.results_retention_secs as i64 * 1000).max(expires_ms - now);
        self.store()
            .insert_liveness(&honnin_storage::LivenessRow {
                session_id: session_id.clone(),
                owner_key: p.key_id.clone(),
                token_hash: token_hash(&client_token),
                device_id: req.device_correlation_id,
                settings: serde_json::to_string(&settings)
                    .map_err(CoreError::json("writing the session settings"))?,
                reference,
                status: LivenessStatus::Created,
                result: None,
                images: None,
                created_ms: now,
                expires_ms,
                started_ms: None,
                finished_ms: None,
                images_until_ms: None,
                retain_until_ms: now + retain,
                cancelled_ms: None,
            })
            .await?;
        metrics_created(&settings.challenge);
        Ok(CreatedLivenessSession {
            session_id,
            client_token,
            expires_at: rfc3339(expires_ms),
        })
    }

    /// The session `id` (any UUID spelling) if `p` may see it: sessions are private to
    /// the key that created them, its collection's admins and unlimited admins.
    async fn owned_session(&self, p: &Principal, id: &str) -> Result<honnin_storage::LivenessRow> {
        p.check(Action::Recognize, None)?;
        let not_found =
            || CoreError::SessionNotFound(format!("liveness session `{id}` does not exist"));
        let id = crate::validate::canonical_uuid(id).ok_or_else(not_found)?;
        let row = self
            .store()
            .get_liveness(&id)
            .await?
            .ok_or_else(not_found)?;
        let owner = row.owner_key.clone();
        self.owned(p, &owner, None, row, not_found).await
    }

    /// The session's status and, once finished, its results. The images are returned
    /// by the first read after the session finished and deleted by it.
    pub async fn liveness_results(&self, p: &Principal, id: &str) -> Result<LivenessResults> {
        let row = self.owned_session(p, id).await?;
        let id = row.session_id.as_str();
        let settings: StoredSettings =
            serde_json::from_str(&row.settings).map_err(CoreError::json("stored settings"))?;
        let now = now_ms();
        let mut status = row.status;
        if !status.is_finished() && now >= row.expires_ms {
            status = LivenessStatus::Expired;
        }
        let mut out = match &row.result {
            Some(json) => serde_json::from_str::<LivenessResults>(json)
                .map_err(CoreError::json("stored result"))?,
            None => LivenessResults {
                session_id: row.session_id.clone(),
                status,
                challenge: challenge_name(settings.challenge),
                created_at: rfc3339(row.created_ms),
                expires_at: rfc3339(row.expires_ms),
                device_correlation_id: row.device_id.clone(),
                confidence: None,
                decision: None,
                live_threshold: honnin_liveness::LIVE_THRESHOLD,
                reasons: Vec::new(),
                signals: None,
                reference_image: None,
                audit_images: Vec::new(),
                images_deleted: false,
                match_similarity: None,
                is_match: None,
                match_threshold: None,
                frames_received: 0,
                analysis_ms: None,
            },
        };
        out.status = status;
        if status == LivenessStatus::Expired && out.reasons.is_empty() {
            out.reasons.push(LivenessReason {
                code: "SessionExpired".into(),
                message: "the session was not completed within its time limit".into(),
            });
        }
        if row.cancelled_ms.is_some() && row.result.is_none() {
            out.reasons.push(LivenessReason {
                code: "KeyRevoked".into(),
                message: "the session was cancelled: the API key that created it was revoked"
                    .into(),
            });
            out.images_deleted = true;
        }
        if matches!(status, LivenessStatus::Succeeded | LivenessStatus::Failed) {
            match self.store().take_liveness_images(id).await? {
                Some(sealed) => {
                    let plain = self
                        .transient_key
                        .open(&sealed, &liveness_aad(id, "images"))?;
                    let imgs: StoredImages =
                        serde_json::from_slice(&plain).map_err(CoreError::json("stored images"))?;
                    out.reference_image = imgs.reference;
                    out.audit_images = imgs.audit;
                    metrics::counter!("honnin_liveness_images_deleted_total", "why" => "read")
                        .increment(1);
                }
                None => out.images_deleted = true,
            }
        }
        Ok(out)
    }

    /// Deletes a session and everything it holds at once.
    pub async fn delete_liveness_session(&self, p: &Principal, id: &str) -> Result<()> {
        let row = self.owned_session(p, id).await?;
        if !self.store().delete_liveness(&row.session_id).await? {
            return Err(CoreError::SessionNotFound(format!(
                "liveness session `{id}` does not exist"
            )));
        }
        Ok(())
    }

    /// Checks the client token and claims the session's one stream; `before_claim` runs
    /// (with the session id) after the session's own checks and before the claim, and
    /// its error is returned as is ([`crate::Service::open_liveness_stream`] checks
    /// there that a verification's session may stream). Errors: SessionNotFound,
    /// InvalidClientToken, SessionCancelled, SessionExpired, SessionAlreadyStarted.
    pub(crate) async fn open_stream<F, Fut>(
        &self,
        id: &str,
        token: &str,
        before_claim: F,
    ) -> Result<LivenessTicket>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let not_found =
            || CoreError::SessionNotFound(format!("liveness session `{id}` does not exist"));
        let id = &crate::validate::canonical_uuid(id).ok_or_else(not_found)?;
        let row = self.store().get_liveness(id).await?.ok_or_else(not_found)?;
        if !bool::from(token_hash(token).ct_eq(&row.token_hash)) {
            return Err(CoreError::InvalidClientToken(
                "the client token does not belong to this session".into(),
            ));
        }
        if row.cancelled_ms.is_some() {
            return Err(CoreError::SessionCancelled(format!(
                "liveness session `{id}` was cancelled (the API key that created it was revoked)"
            )));
        }
        let now = now_ms();
        if row.status == LivenessStatus::Expired || now >= row.expires_ms {
            return Err(CoreError::SessionExpired(format!(
                "liveness session `{id}` expired at {}",
                rfc3339(row.expires_ms)
            )));
        }
        before_claim(id.clone()).await?;
        if row.status != LivenessStatus::Created || !self.store().start_liveness(id, now).await? {
            return Err(CoreError::SessionAlreadyStarted(format!(
                "liveness session `{id}` was already streamed; create a new session"
            )));
        }
        let settings: StoredSettings =
            serde_json::from_str(&row.settings).map_err(CoreError::json("stored settings"))?;
        let reference = row
            .reference
            .as_deref()
            .map(|sealed| self.open_transient_template(sealed, &liveness_aad(id, "reference")))
            .transpose()?;
        metrics::counter!("honnin_liveness_streams_total").increment(1);
        Ok(LivenessTicket {
            session_id: row.session_id,
            challenge: settings.challenge,
            audit_images_limit: settings.audit_images_limit,
            expires_ms: row.expires_ms,
            reference,
        })
    }

    /// Whether a claimed stream may go on: false once its session was cancelled (its key
    /// revoked), deleted, or otherwise ended elsewhere. A running stream polls this.
    pub async fn liveness_stream_alive(&self, t: &LivenessTicket) -> Result<bool> {
        Ok(self.store().liveness_status(&t.session_id).await? == Some(LivenessStatus::InProgress))
    }

    /// The protocol state machine for a claimed stream.
    pub fn new_live_session(&self, t: &LivenessTicket) -> LiveSession {
        let settings = SessionSettings {
            challenge: t.challenge,
            audit_images_limit: t.audit_images_limit,
            ..SessionSettings::default()
        };
        LiveSession::new(
            Analyzers {
                engine: self.engine().clone(),
                pad: self.pad.clone(),
            },
            settings,
            rand::rng().next_u64(),
        )
    }

    /// Records a finished stream: results metadata, the sealed images, and (with a
    /// reference image) the match; a verification's session also keeps the live face's
    /// sealed template. Returns what the results API will show and the id of the
    /// verification the session belongs to, if any (for the caller to decide it).
    pub(crate) async fn complete_stream(
        &self,
        t: &LivenessTicket,
        outcome: LivenessOutcome,
    ) -> Result<(LivenessResults, Option<String>)> {
        let (match_similarity, is_match, match_threshold) =
            match (&t.reference, &outcome.reference_template) {
                (Some(r), Some(live)) => {
                    let c = self
                        .engine()
                        .compare(r, live)
                        .map_err(CoreError::engine("compare"))?;
                    let thr = self.threshold_for_fmr(self.config().match_fmr);
                    (
                        Some(c.similarity),
                        Some(c.similarity >= thr),
                        Some(self.threshold_info(thr)),
                    )
                }
                (Some(_), None) => (None, Some(false), None),
                (None, _) => (None, None, None),
            };
        let status = match outcome.status {
            OutcomeStatus::Succeeded => LivenessStatus::Succeeded,
            _ => LivenessStatus::Failed,
        };
        let image = |c: &honnin_liveness::CapturedImage| LivenessImage {
            bytes: b64(&c.jpeg),
            bounding_box: c.bounding_box,
        };
        let images = StoredImages {
            reference: outcome.reference_image.as_ref().map(image),
            audit: outcome.audit_images.iter().map(image).collect(),
        };
        let now = now_ms();
        let results = LivenessResults {
            session_id: t.session_id.clone(),
            status,
            challenge: challenge_name(t.challenge),
            created_at: String::new(),
            expires_at: rfc3339(t.expires_ms),
            device_correlation_id: None,
            confidence: Some(outcome.confidence),
            decision: Some(decision_name(outcome.decision)),
            live_threshold: honnin_liveness::LIVE_THRESHOLD,
            reasons: outcome.reasons.iter().map(LivenessReason::from).collect(),
            signals: serde_json::to_value(&outcome.signals).ok(),
            reference_image: None,
            audit_images: Vec::new(),
            images_deleted: false,
            match_similarity,
            is_match,
            match_threshold,
            frames_received: outcome.frames_received,
            analysis_ms: Some(outcome.analysis_ms),
        };
        // The live face is stored with the finished status, in one statement: from
        // that moment any server's background pass may decide a verification with it,
        // and one login or enrolment may take it (until the images' time runs out).
        let verification = self.store().verification_of_liveness(&t.session_id).await?;
        let live = outcome
            .reference_template
            .as_ref()
            .map(|live| self.seal_live_template(&t.session_id, live));
        let details = LiveFaceDetails::of(&outcome).and_then(|d| serde_json::to_string(&d).ok());
        let results = self
            .store_result(
                t,
                results,
                Some(images),
                live.as_deref(),
                details.as_deref(),
                now,
            )
            .await?;
        Ok((results, verification))
    }

    /// Ends a stream that could not run to its end (protocol error, client gone).
    /// Returns the results and the session's verification id, as
    /// `LivenessSessions::complete_stream` does.
    pub(crate) async fn fail_stream(
        &self,
        t: &LivenessTicket,
        code: &str,
        message: &str,
        frames_received: u32,
    ) -> Result<(LivenessResults, Option<String>)> {
        let results = LivenessResults {
            session_id: t.session_id.clone(),
            status: LivenessStatus::Failed,
            challenge: challenge_name(t.challenge),
            created_at: String::new(),
            expires_at: rfc3339(t.expires_ms),
            device_correlation_id: None,
            confidence: Some(0.0),
            decision: Some(decision_name(Decision::Spoof)),
            live_threshold: honnin_liveness::LIVE_THRESHOLD,
            reasons: vec![LivenessReason {
                code: code.into(),
                message: message.into(),
            }],
            signals: None,
            reference_image: None,
            audit_images: Vec::new(),
            images_deleted: true,
            match_similarity: None,
            is_match: t.reference.as_ref().map(|_| false),
            match_threshold: None,
            frames_received,
            analysis_ms: None,
        };
        let verification = self.store().verification_of_liveness(&t.session_id).await?;
        let results = self
            .store_result(t, results, None, None, None, now_ms())
            .await?;
        Ok((results, verification))
    }

    /// Takes a finished session's reference image (deleting all its images), for a
    /// verification whose policy keeps images.
    pub(crate) async fn take_liveness_reference_image(
        &self,
        session_id: &str,
    ) -> Result<Option<LivenessImage>> {
        let Some(sealed) = self.store().take_liveness_images(session_id).await? else {
            return Ok(None);
        };
        let plain = self
            .transient_key
            .open(&sealed, &liveness_aad(session_id, "images"))?;
        let imgs: StoredImages =
            serde_json::from_slice(&plain).map_err(CoreError::json("stored images"))?;
        Ok(imgs.reference)
    }

    async fn store_result(
        &self,
        t: &LivenessTicket,
        mut results: LivenessResults,
        images: Option<StoredImages>,
        live_template: Option<&[u8]>,
        live_face: Option<&str>,
        now: i64,
    ) -> Result<LivenessResults> {
        let row = self.store().get_liveness(&t.session_id).await?;
        if let Some(r) = &row {
            results.created_at = rfc3339(r.created_ms);
            results.device_correlation_id = r.device_id.clone();
        }
        let sealed = match images {
            Some(i) if i.reference.is_some() || !i.audit.is_empty() => Some(
                self.transient_key.seal(
                    &serde_json::to_vec(&i)
                        .map_err(CoreError::json("writing the session images"))?,
                    &liveness_aad(&t.session_id, "images"),
                ),
            ),
            _ => None,
        };
        let json = serde_json::to_string(&results)
            .map_err(CoreError::json("writing the session results"))?;
        let images_until = now + self.config().liveness.images_ttl_secs as i64 * 1000;
        let stored = self
            .store()
            .finish_liveness(
                &t.session_id,
                results.status,
                &json,
                sealed.as_deref(),
                live_template,
                live_face,
                now,
                images_until,
            )
            .await?;
        if !stored {
            return Err(CoreError::SessionExpired(format!(
                "liveness session `{}` expired or was deleted before it finished",
                t.session_id
            )));
        }
        metrics::counter!("honnin_liveness_sessions_finished_total",
            "status" => results.status.as_str(),
            "decision" => results.decision.clone().unwrap_or_default())
        .increment(1);
        Ok(results)
    }
}

fn decision_name(d: Decision) -> String {
    serde_json::to_value(d)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| format!("{d:?}").to_lowercase())
}

fn metrics_created(c: &ChallengeKind) {
    metrics::counter!("honnin_liveness_sessions_created_total", "challenge" => challenge_name(*c))
        .increment(1);
}

/// How long a client may stay silent during a stream.
pub fn stream_idle_timeout(cfg: &LivenessConfig) -> Duration {
    Duration::from_secs(cfg.stream_idle_timeout_secs.max(1))
}
