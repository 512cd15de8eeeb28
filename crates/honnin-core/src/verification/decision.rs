//! The decision of a verification: one function per step (document, liveness, live
//! face, document match, duplicate search, enrolment), each returning its
//! [`DecisionStep`], and `Verifications::decide` combining them into the
//! [`DecisionRecord`].
//!
//! Outcome: any failed step → `rejected`; otherwise any step in review →
//! `needs_review`; otherwise `approved` (then enrolment runs if the policy asks). A
//! missing document or an ended-unfinished liveness session → `expired`.

use honnin_engine::engine::RatioBox;
use honnin_engine::quality::QualityLevel;
use honnin_engine::Template;
use serde::{Deserialize, Serialize};

use super::document::DocumentPortrait;
use super::Verifications;
use crate::clock::{now_ms, rfc3339};
use crate::config::verification::{stored_policy, VerificationPolicy};
use crate::context::FaceOrigin;
use crate::crypto::{live_template_aad, verification_aad};
use crate::error::{CoreError, Result};
use crate::gallery::Gallery;
use crate::liveness::LivenessResults;
use crate::login::Logins;
use crate::model::{StoredDetails, ThresholdInfo};
use honnin_storage::{FaceRow, LivenessStatus, Outcome, UserRow, VerificationRow};

/// A step of a verification's decision (wire spelling: camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StepName {
    /// The document portrait.
    Document,
    /// The liveness session's result.
    Liveness,
    /// Document portrait ↔ live face.
    DocumentMatch,
    /// The live face against the collection (duplicates).
    DuplicateSearch,
    /// The live face stored as the user's face.
    Enrolment,
}

/// How a step went (wire spelling: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum StepOutcome {
    /// It met the policy.
    Passed,
    /// It did not: the verification is rejected (enrolment: sent to review; liveness
    /// of a session that never finished: the verification expires).
    Failed,
    /// A person should look at it.
    Review,
    /// Not run (an earlier step decided, or the policy does not ask for it).
    Skipped,
}

/// One step of the decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionStep {
    /// Which step.
    pub step: StepName,
    /// How it went.
    pub outcome: StepOutcome,
    /// The step's score: liveness confidence or similarity, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    /// The threshold the score was held to: liveness confidence or similarity, 0–100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// For similarity thresholds: the false-match rate the threshold corresponds to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold_info: Option<ThresholdInfo>,
    /// Stable codes of why the step went as it did (e.g. `NoDocumentPortrait`,
    /// `DuplicateIdentity`); empty when it passed without remark.
    pub reasons: Vec<String>,
    /// Step-specific facts (matched users, the enrolled face id…).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
    /// When the step ran, RFC 3339 UTC.
    pub at: String,
}

/// The decision record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    /// The outcome, which is also the verification's final status.
    pub outcome: Outcome,
    /// Stable codes of why (empty when approved).
    pub reasons: Vec<String>,
    /// The steps run, in order (document, liveness, document match, duplicate search,
    /// enrolment), skipped ones included; a verification that expired stops after the
    /// step that showed it, and a cancelled one has none.
    pub steps: Vec<DecisionStep>,
    /// The policy the decision applied.
    pub policy: VerificationPolicy,
    /// The models the scores came from.
    pub models: ModelVersions,
    /// When the decision was made, RFC 3339 UTC.
    pub decided_at: String,
}

/// The models a decision was made with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelVersions {
    /// Template space (recognizers) of every similarity.
    pub face_model: String,
    /// The passive presentation-attack model's file (e.g. `fr_liveness.onnx`).
    pub liveness_model: String,
    /// The honnin release (crate version) that decided.
    pub honnin_version: String,
}

/// One step's result: its record, and what it adds to the verification's decision.
struct Checked {
    step: DecisionStep,
    /// Codes the step adds to the decision's reasons.
    reasons: Vec<String>,
    /// The step asks for manual review.
    review: bool,
}

/// The decision so far: the steps' records, their reasons in order, and whether any
/// step asked for review.
#[derive(Default)]
struct Tally {
    steps: Vec<DecisionStep>,
    reasons: Vec<String>,
    review: bool,
}

impl Tally {
    fn add(&mut self, c: Checked) {
        self.reasons.extend(c.reasons);
        self.review |= c.review;
        self.steps.push(c.step);
    }
}

/// The liveness step's verdict on the flow.
enum Liveness {
    /// The session ended without a result: the verification expires.
    Expired(Checked),
    /// Passed, failed or in review: the decision goes on.
    Ended(Checked),
}

/// The current time for a step's `at`.
fn now_at() -> String {
    rfc3339(now_ms())
}

impl Verifications<'_> {
    /// Every step of the decision. Never fails on the customer's data: a missing
    /// template or an unusable result is a failed step with a reason.
    pub(super) async fn decide(&self, row: &VerificationRow) -> Result<DecisionRecord> {
        let policy = stored_policy(row)?;
        let mut t = Tally::default();

        // 1. The document portrait (only a verification that ran out of time has none).
        let (step, document) = self.document_step(row)?;
        t.steps.push(step);
        let Some(document) = document else {
            let why = vec!["VerificationExpired".to_string()];
            return Ok(self.record(Outcome::Expired, why, t.steps, policy));
        };

        // 2. Liveness.
        match self.liveness_step(row, &policy).await? {
            Liveness::Expired(c) => {
                t.steps.push(c.step);
                return Ok(self.record(Outcome::Expired, c.reasons, t.steps, policy));
            }
            Liveness::Ended(c) => t.add(c),
        }

        // 3. The live face.
        let Some(live) = self.live_face(row).await? else {
            t.reasons.push("NoLiveFace".into());
            for s in [
                StepName::DocumentMatch,
                StepName::DuplicateSearch,
                StepName::Enrolment,
            ] {
                t.steps.push(skipped(s, "NoLiveFace", now_at()));
            }
            return Ok(self.record(Outcome::Rejected, t.reasons, t.steps, policy));
        };

        // 4. Document ↔ live face.
        t.add(self.document_match_step(row, &policy, &document, &live)?);

        // 5. Duplicates: the live face against the collection.
        t.add(self.duplicate_step(row, &policy, &live).await?);

        let outcome = if t.steps.iter().any(|s| s.outcome == StepOutcome::Failed) {
            Outcome::Rejected
        } else if t.review {
            Outcome::NeedsReview
        } else {
            Outcome::Approved
        };

        // 6. Enrolment: a failure sends an approved verification to review.
        let enrolment = self.enrolment_step(row, &policy, &live, outcome).await;
        let outcome = if enrolment.step.outcome == StepOutcome::Failed {
            Outcome::NeedsReview
        } else {
            outcome
        };
        t.add(enrolment);
        Ok(self.record(outcome, t.reasons, t.steps, policy))
    }

    /// Step 1: opens the document portrait's sealed template (`None`: the document never
    /// came).
    fn document_step(&self, row: &VerificationRow) -> Result<(DecisionStep, Option<Template>)> {
        let document = row
            .document
            .as_deref()
            .map(|sealed| {
                self.open_transient_template(
                    sealed,
                    &verification_aad(&row.verification_id, "document"),
                )
            })
            .transpose()?;
        let step = DecisionStep {
            step: StepName::Document,
            outcome: if document.is_some() {
                StepOutcome::Passed
            } else {
                StepOutcome::Failed
            },
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
            at: now_at(),
        };
        Ok((step, document))
    }

    /// Step 2: the liveness session's result against the policy's threshold: passed at
    /// or above it, review down to [`honnin_liveness::SPOOF_BELOW`], failed below; a
    /// session that never finished expires the verification.
    async fn liveness_step(
        &self,
        row: &VerificationRow,
        policy: &VerificationPolicy,
    ) -> Result<Liveness> {
        let live_row = self.store().get_liveness(&row.liveness_session_id).await?;
        let results: Option<LivenessResults> = live_row
            .as_ref()
            .and_then(|l| l.result.as_deref())
            .and_then(|r| serde_json::from_str(r).ok());
        // `None`: the session was deleted.
        let live_status = live_row.as_ref().map(|l| l.status);
        let confidence = results.as_ref().and_then(|r| r.confidence);
        let succeeded = Some(LivenessStatus::Succeeded);
        let (expired, outcome, why) = match (live_status, confidence) {
            (None, _)
            | (
                Some(
                    LivenessStatus::Expired | LivenessStatus::Created | LivenessStatus::InProgress,
                ),
                _,
            ) => (
                true,
                StepOutcome::Failed,
                vec!["LivenessSessionExpired".to_string()],
            ),
            (s, Some(c)) if s == succeeded && c >= policy.liveness_threshold => {
                (false, StepOutcome::Passed, vec![])
            }
            (s, Some(c)) if s == succeeded && c >= honnin_liveness::SPOOF_BELOW => (
                false,
                StepOutcome::Review,
                vec!["LivenessUncertain".to_string()],
            ),
            (s, Some(_)) if s == succeeded => (
                false,
                StepOutcome::Failed,
                vec!["LivenessCheckFailed".to_string()],
            ),
            _ => (
                false,
                StepOutcome::Failed,
                vec!["LivenessSessionFailed".to_string()],
            ),
        };
        let mut live_reasons = why.clone();
        if let Some(r) = &results {
            live_reasons.extend(r.reasons.iter().map(|x| x.code.clone()));
        }
        let step = DecisionStep {
            step: StepName::Liveness,
            outcome,
            score: confidence,
            threshold: Some(policy.liveness_threshold),
            threshold_info: None,
            reasons: live_reasons,
            details: Some(serde_json::json!({
                "sessionId": row.liveness_session_id,
                "status": live_status.map_or("DELETED", LivenessStatus::as_str),
                "decision": results.as_ref().and_then(|r| r.decision.clone()),
            })),
            at: now_at(),
        };
        let checked = Checked {
            step,
            reasons: why,
            review: outcome == StepOutcome::Review,
        };
        Ok(if expired {
            Liveness::Expired(checked)
        } else {
            Liveness::Ended(checked)
        })
    }

    /// Step 3: the live face's template kept when the liveness stream ended (`None`: the
    /// session found no usable face).
    async fn live_face(&self, row: &VerificationRow) -> Result<Option<Template>> {
        self.store()
            .live_template(&row.liveness_session_id)
            .await?
            .map(|sealed| {
                self.open_transient_template(&sealed, &live_template_aad(&row.liveness_session_id))
            })
            .transpose()
    }

    /// Step 4: document portrait ↔ live face. Passed at the match threshold, review in
    /// the band down to the review threshold (or below it when the portrait's quality
    /// explains the non-match and the policy asks), failed below.
    fn document_match_step(
        &self,
        row: &VerificationRow,
        policy: &VerificationPolicy,
        document: &Template,
        live: &Template,
    ) -> Result<Checked> {
        let doc_threshold = self.threshold_for_fmr(policy.document_match_fmr);
        let review_threshold = self
            .threshold_for_fmr(policy.document_review_fmr)
            .min(doc_threshold);
        let c = self
            .engine()
            .compare(document, live)
            .map_err(CoreError::engine("compare"))?;
        let retake = row
            .document_info
            .as_deref()
            .and_then(|d| serde_json::from_str::<DocumentPortrait>(d).ok())
            .map(|d| d.retake_reasons(c.similarity, &self.config().retake))
            .unwrap_or_default();
        let (outcome, why) = if c.similarity >= doc_threshold {
            (StepOutcome::Passed, None)
        } else if c.similarity >= review_threshold {
            (StepOutcome::Review, Some("DocumentMatchUncertain"))
        } else if policy.review_low_quality_mismatch && !retake.is_empty() {
            (StepOutcome::Review, Some("LowFaceQuality"))
        } else {
            (StepOutcome::Failed, Some("DocumentMismatch"))
        };
        let reasons: Vec<String> = why.map(String::from).into_iter().collect();
        Ok(Checked {
            step: DecisionStep {
                step: StepName::DocumentMatch,
                outcome,
                score: Some(c.similarity),
                threshold: Some(doc_threshold),
                threshold_info: Some(self.threshold_info(doc_threshold)),
                reasons: reasons.clone(),
                details: Some(serde_json::json!({
                    "reviewThreshold": review_threshold,
                    "reviewThresholdInfo": self.threshold_info(review_threshold),
                    "retakeReasons": retake,
                })),
                at: now_at(),
            },
            reasons,
            review: outcome == StepOutcome::Review,
        })
    }

    /// Step 5: the live face against the collection. A match with another user is a
    /// duplicate: failed when the policy blocks duplicates, review otherwise.
    async fn duplicate_step(
        &self,
        row: &VerificationRow,
        policy: &VerificationPolicy,
        live: &Template,
    ) -> Result<Checked> {
        let dup_threshold = self.threshold_for_fmr(policy.duplicate_match_fmr);
        let matches = self
            .search_template(&row.collection_id, live, dup_threshold, 10)
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
            (false, _) => StepOutcome::Passed,
            (true, true) => StepOutcome::Failed,
            (true, false) => StepOutcome::Review,
        };
        let reasons: Vec<String> = if dup {
            vec!["DuplicateIdentity".into()]
        } else {
            vec![]
        };
        Ok(Checked {
            step: DecisionStep {
                step: StepName::DuplicateSearch,
                outcome: dup_outcome,
                score: best,
                threshold: Some(dup_threshold),
                threshold_info: Some(self.threshold_info(dup_threshold)),
                reasons: reasons.clone(),
                details: Some(serde_json::json!({
                    "duplicates": others,
                    "sameUserMatches": same_user.len(),
                })),
                at: now_at(),
            },
            reasons,
            review: dup_outcome == StepOutcome::Review,
        })
    }

    /// Step 6: on approval, and if the policy asks, stores the live face as a face of user
    /// `externalUserId`. A failure is a failed step with the reason `EnrolmentFailed`
    /// (the verification then goes to review); otherwise skipped with why.
    async fn enrolment_step(
        &self,
        row: &VerificationRow,
        policy: &VerificationPolicy,
        live: &Template,
        outcome: Outcome,
    ) -> Checked {
        if outcome != Outcome::Approved || !policy.enrol_on_success {
            let why = if outcome != Outcome::Approved {
                "NotApproved"
            } else {
                "PolicyDoesNotEnrol"
            };
            return Checked {
                step: skipped(StepName::Enrolment, why, now_at()),
                reasons: vec![],
                review: false,
            };
        }
        match self
            .enrol_template(
                &row.collection_id,
                &row.external_user_id,
                live,
                &row.verification_id,
            )
            .await
        {
            Ok(face_id) => Checked {
                step: DecisionStep {
                    step: StepName::Enrolment,
                    outcome: StepOutcome::Passed,
                    score: None,
                    threshold: None,
                    threshold_info: None,
                    reasons: vec![],
                    details: Some(serde_json::json!({
                        "userId": row.external_user_id, "faceId": face_id,
                        "loginProfile": self.login_profile(row, live).await,
                    })),
                    at: now_at(),
                },
                reasons: vec![],
                review: false,
            },
            Err(e) => {
                tracing::warn!(verification = %row.verification_id, error = %e, "enrolment failed");
                Checked {
                    step: DecisionStep {
                        step: StepName::Enrolment,
                        outcome: StepOutcome::Failed,
                        score: None,
                        threshold: None,
                        threshold_info: None,
                        reasons: vec![e.code().into()],
                        details: Some(serde_json::json!({"message": e.to_string()})),
                        at: now_at(),
                    },
                    reasons: vec!["EnrolmentFailed".into()],
                    review: true,
                }
            }
        }
    }

    /// The enrolment's login profile template: the live face added to the person's
    /// profile when it passes the profile's gates (`{"templateId": …}`), or why not
    /// (`{"notAdded": …}`). A failure here does not fail the enrolment.
    async fn login_profile(&self, row: &VerificationRow, live: &Template) -> serde_json::Value {
        let details = match self
            .store()
            .live_face_details(&row.liveness_session_id)
            .await
        {
            Ok(d) => d.and_then(|d| serde_json::from_str(&d).ok()),
            Err(e) => return serde_json::json!({"notAdded": e.to_string()}),
        };
        match Logins::new(self.cx)
            .enrol_verified(
                &row.owner_key,
                &row.collection_id,
                &row.external_user_id,
                live,
                details.as_ref(),
                &row.verification_id,
            )
            .await
        {
            Ok(Ok(id)) => serde_json::json!({"templateId": id}),
            Ok(Err(why)) => serde_json::json!({"notAdded": why}),
            Err(e) => {
                tracing::warn!(verification = %row.verification_id, error = %e,
                    "login profile enrolment failed");
                serde_json::json!({"notAdded": e.code()})
            }
        }
    }

    /// The record of a decision with `outcome`, its `reasons` (deduplicated) and `steps`.
    pub(super) fn record(
        &self,
        outcome: Outcome,
        mut reasons: Vec<String>,
        steps: Vec<DecisionStep>,
        policy: VerificationPolicy,
    ) -> DecisionRecord {
        reasons.dedup();
        DecisionRecord {
            outcome,
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
        Gallery::new(self.cx).hit_rows(collection, &hits).await
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
        let row = Gallery::new(self.cx).sealed_face_row(&c, collection, origin, t, now);
        let face_id = row.face_id.clone();
        Gallery::new(self.cx)
            .insert_and_index(&c, &[(row, t)])
            .await?;
        Ok(face_id)
    }
}

fn skipped(step: StepName, why: &str, at: String) -> DecisionStep {
    DecisionStep {
        step,
        outcome: StepOutcome::Skipped,
        score: None,
        threshold: None,
        threshold_info: None,
        reasons: vec![why.into()],
        details: None,
        at,
    }
}
