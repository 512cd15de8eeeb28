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
//! [`crate::Service::complete_liveness_stream`] keeps the live face's sealed template for
//! the verification and runs [`Verifications::process_verification`]; the background task also
//! picks up any verification whose liveness ended while its server was busy or gone.
//!
//! Privacy: only templates are kept (sealed with the transient key) and only until the
//! decision; the decision record holds scores, thresholds and reasons. Images are kept
//! only when the policy asks, for `keepImagesSecs`, and the sweeper deletes them.
//!
//! Modules: `document` (the document step's rules), `decision` (one function per step
//! of the decision and the record); what a verification requires is its policy,
//! [`crate::config::verification`];
//! this file holds the flow: creating a verification, its document step, its status and
//! running the decision once liveness has ended.

mod decision;
mod document;

use crate::config::verification::{stored_policy, StoredPolicy};
pub use crate::config::verification::{
    PolicyOverrides, VerificationConfig, VerificationPolicy, MAX_KEEP_IMAGES_SECS,
};
pub use decision::{DecisionRecord, DecisionStep, ModelVersions, StepName, StepOutcome};
pub use document::{
    document_faces, document_warnings, pick_document_portrait, DocumentPortrait,
    DOCUMENT_DETECT_MIN_FACE_PX,
};
pub use honnin_storage::{Outcome, VerificationState};

use serde::{Deserialize, Serialize};

use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::context::domain;
use crate::crypto::verification_aad;
use crate::error::{CoreError, Result};
use crate::liveness::{LivenessSessions, NewLivenessSession};
use crate::pipeline::Detection;
use crate::validate::check_user_id;
use crate::webhooks::{EventSubject, Webhooks};
use honnin_storage::VerificationRow;
/// `POST /v1/verifications`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewVerification {
    /// The collection the person is searched for duplicates in and enrolled into; the
    /// caller's key must be an enroller (or admin) of it.
    pub collection_id: String,
    /// The caller's id for the person (1–128 characters of `[A-Za-z0-9_.:-]`): the user
    /// enrolled on approval; a match to another user is a duplicate.
    pub external_user_id: String,
    /// Overrides of the configured policy for this verification only (absent: none).
    #[serde(default)]
    pub policy: PolicyOverrides,
    /// The capturing device's id, passed to the liveness session (per-device limits).
    #[serde(default)]
    pub device_correlation_id: Option<String>,
}

/// A created verification: the browser gets the liveness session and its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedVerification {
    /// The verification's id, a UUID.
    pub verification_id: String,
    /// `awaiting_document`.
    pub status: VerificationState,
    /// The liveness session the browser runs once the document is in.
    pub liveness_session_id: String,
    /// Valid for the liveness session only; give it to the capture client.
    pub client_token: String,
    /// When the verification expires unless its liveness step has ended, RFC 3339 UTC
    /// (the liveness session's own expiry).
    pub expires_at: String,
    /// The policy in force: the configured one with the request's overrides applied.
    pub policy: VerificationPolicy,
}
/// `GET /v1/verifications/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerificationStatus {
    /// The verification's id, a canonical UUID.
    pub verification_id: String,
    /// Where it stands; once decided, the decision's outcome (`cancelled`: its API key
    /// was revoked before the decision).
    pub status: VerificationState,
    /// The collection of the duplicate search and the enrolment.
    pub collection_id: String,
    /// The caller's id for the person.
    pub external_user_id: String,
    /// The verification's liveness session.
    pub liveness_session_id: String,
    /// When the verification was created, RFC 3339 UTC.
    pub created_at: String,
    /// When its status last changed, RFC 3339 UTC.
    pub updated_at: String,
    /// When an unfinished verification expires, RFC 3339 UTC.
    pub expires_at: String,
    /// The policy in force for this verification.
    pub policy: VerificationPolicy,
    /// What the document step kept of the portrait, once the document is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentPortrait>,
    /// The decision record, once decided (or cancelled).
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
    /// The event type: `verification.completed`.
    pub event: String,
    /// A UUID unique to this event: deliveries are at-least-once, so receivers
    /// deduplicate on it.
    pub event_id: String,
    /// The verification decided.
    pub verification_id: String,
    /// The verification's collection.
    pub collection_id: String,
    /// The caller's id for the person.
    pub external_user_id: String,
    /// The decision's outcome.
    pub status: Outcome,
    /// The full decision record (no images, no templates).
    pub decision: DecisionRecord,
}
fn not_found(id: &str) -> CoreError {
    CoreError::VerificationNotFound(format!("verification `{id}` does not exist"))
}

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
domain!(
    /// Identity verifications: document, liveness, comparison, duplicate search, enrolment.
    Verifications
);

impl Verifications<'_> {
    /// Starts a verification (enroller key for the collection): the row, and the
    /// liveness session the browser will run.
    pub async fn create_verification(
        &self,
        p: &Principal,
        req: NewVerification,
    ) -> Result<CreatedVerification> {
        check_user_id(&req.external_user_id).map_err(|_| {
            CoreError::InvalidParameter(
                "externalUserId must be 1–128 characters of [A-Za-z0-9_.:-]".into(),
            )
        })?;
        // The collection must exist (enrolment and the duplicate search need it).
        self.authorize(p, Action::Enroll, &req.collection_id)
            .await?;
        let policy = self.config().verification.policy.with(&req.policy)?;
        let session = LivenessSessions::new(self.cx)
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
            .map_err(CoreError::json("writing the policy"))?,
            liveness_session_id: session.session_id.clone(),
            status: VerificationState::AwaitingDocument,
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
        let (owner, collection) = (row.owner_key.clone(), row.collection_id.clone());
        self.owned(p, &owner, Some(&collection), row, || not_found(id))
            .await
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
        self.check_step(&row, VerificationState::AwaitingDocument, now)?;
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
        let sealed = self
            .transient_key
            .seal(&t.to_bytes(), &verification_aad(id, "document"));
        let info_json =
            serde_json::to_string(&info).map_err(CoreError::json("writing the document info"))?;
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
            self.check_step(&row, VerificationState::AwaitingDocument, now_ms())?;
            return Err(CoreError::StepOutOfOrder(format!(
                "verification `{id}` is {}",
                row.status
            )));
        }
        self.verification_status(p, id).await
    }

    fn seal_images(&self, id: &str, imgs: &VerificationImages) -> Result<Vec<u8>> {
        let plain = serde_json::to_vec(imgs).map_err(CoreError::json("writing the kept images"))?;
        Ok(self
            .transient_key
            .seal(&plain, &verification_aad(id, "images")))
    }

    fn open_images(&self, row: &VerificationRow) -> Result<Option<VerificationImages>> {
        match &row.images {
            Some(sealed) => {
                let plain = self
                    .transient_key
                    .open(sealed, &verification_aad(&row.verification_id, "images"))?;
                Ok(Some(
                    serde_json::from_slice(&plain).map_err(CoreError::json("stored images"))?,
                ))
            }
            None => Ok(None),
        }
    }

    /// Refuses a step when the verification is not waiting for it.
    fn check_step(&self, row: &VerificationRow, want: VerificationState, now: i64) -> Result<()> {
        let open = row.status.is_awaiting();
        if row.status == VerificationState::Expired || (open && now >= row.expires_ms) {
            return Err(CoreError::VerificationExpired(format!(
                "verification `{}` expired at {}",
                row.verification_id,
                rfc3339(row.expires_ms)
            )));
        }
        if row.status != want {
            let what = match want {
                VerificationState::AwaitingDocument => "the document was already received",
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
        let mut status = row.status;
        if status.is_awaiting() && now_ms() >= row.expires_ms {
            status = VerificationState::Expired;
        }
        let document = row
            .document_info
            .as_deref()
            .map(serde_json::from_str::<DocumentPortrait>)
            .transpose()
            .map_err(CoreError::json("stored document info"))?;
        let mut decision = row
            .decision
            .as_deref()
            .map(serde_json::from_str::<DecisionRecord>)
            .transpose()
            .map_err(CoreError::json("stored decision"))?;
        if status == VerificationState::Cancelled && decision.is_none() {
            let mut r = self.record(
                Outcome::Cancelled,
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
    pub(crate) async fn check_liveness_stream(&self, session_id: &str) -> Result<()> {
        let Some(vid) = self.store().verification_of_liveness(session_id).await? else {
            return Ok(());
        };
        let Some(row) = self.store().get_verification(&vid).await? else {
            return Ok(());
        };
        self.check_step(&row, VerificationState::AwaitingLiveness, now_ms())
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
            .transition_verification(
                id,
                VerificationState::AwaitingLiveness,
                VerificationState::Processing,
                now,
            )
            .await?
            || match self.store().get_verification(id).await? {
                // A document that never came: decided as expired once out of time.
                Some(r)
                    if r.status == VerificationState::AwaitingDocument && now >= r.expires_ms =>
                {
                    self.store()
                        .transition_verification(
                            id,
                            VerificationState::AwaitingDocument,
                            VerificationState::Processing,
                            now,
                        )
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
        let live_face = LivenessSessions::new(self.cx)
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
        let decision = serde_json::to_string(&record)
            .map_err(CoreError::json("writing the decision record"))?;
        let decided = self
            .store()
            .decide_verification(
                id,
                record.outcome,
                &decision,
                kept.as_ref().map(|k| k.0.as_slice()),
                kept.as_ref().map(|k| k.1),
                now_ms(),
                row.created_ms + self.config().verification.record_retention_secs as i64 * 1000,
            )
            .await?;
        if decided {
            metrics::counter!("honnin_verifications_decided_total", "outcome" => record.outcome.as_str())
                .increment(1);
            let event = VerificationEvent {
                event: "verification.completed".into(),
                event_id: uuid::Uuid::new_v4().to_string(),
                verification_id: row.verification_id.clone(),
                collection_id: row.collection_id.clone(),
                external_user_id: row.external_user_id.clone(),
                status: record.outcome,
                decision: record,
            };
            let subject = EventSubject {
                collection_id: Some(row.collection_id.clone()),
                user_id: Some(row.external_user_id.clone()),
                verification_id: Some(row.verification_id.clone()),
            };
            Webhooks::new(self.cx)
                .emit_event(&row.owner_key, "verification.completed", &subject, &event)
                .await?;
        }
        Ok(decided)
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
