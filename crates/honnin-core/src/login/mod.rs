//! Face login: a person enrolled once logs in again and again by face, each time in
//! front of the camera (Windows Hello face sign-in, Amazon One).
//!
//! * **Enrolment profiles** (`profiles`): the templates a login compares with, linked
//!   to the customer's user id in a collection, enrolled only from a liveness session
//!   that passed, with quality gates (frontal, quality `high`, one face), never from an
//!   uploaded photo. Changed only by explicit calls; an
//!   approved identity verification that enrols the person adds its live face too.
//! * **Login attempts** (`attempt`): a fresh, passed liveness session and a match at the
//!   security level's threshold, 1:1 (a claimed user) or 1:N (who is this, within a
//!   collection); thresholds from the level's false-accept rate ([`levels`]); lock-out
//!   after repeated failures ([`lockout`]); every attempt recorded without images; a
//!   signed assertion on success ([`assertion`]).
//!
//! A liveness session is used once: by one login or one enrolment
//! (`honnin_storage::Store::take_live_face`).

pub mod assertion;
mod attempt;
pub mod levels;
pub mod lockout;
mod profiles;

pub use crate::config::login::{LevelTargets, LoginConfig};
pub use assertion::{AssertionClaims, Jwk, Jwks};
pub use attempt::{
    LoginAttempt, LoginOutcome, LoginRequest, LoginResult, UnlockRequest, UnlockResult,
    MAX_ATTEMPTS_PAGE, MAX_CLAIM_CHARS,
};
pub use levels::{AttemptThreshold, SecurityLevel};
pub use profiles::{EnrolProfile, ProfileInfo, ProfileTemplateInfo};

use honnin_engine::Template;
use honnin_storage::{LiveFaceUnavailable, LivenessStatus};

use crate::auth::Principal;
use crate::clock::now_ms;
use crate::context::{domain, Loaded};
use crate::crypto::live_template_aad;
use crate::error::{CoreError, Result};
use crate::liveness::{LiveFaceDetails, LivenessResults};
use crate::webhooks::{EventSubject, Webhooks};

domain!(
    /// Face login: enrolment profiles, login attempts, lock-outs, assertions (see the
    /// module docs).
    Logins
);

/// A finished liveness session's live face, taken for one login or enrolment.
pub(crate) struct TakenSession {
    pub(crate) session_id: String,
    /// Whether the session passed: SUCCEEDED at the configured confidence, with a face.
    pub(crate) passed: bool,
    /// The liveness confidence, 0–100.
    pub(crate) confidence: f32,
    /// The live face's template (none when the session failed or had no face).
    pub(crate) template: Option<Template>,
    /// Pose and quality of the frame the template came from.
    pub(crate) details: Option<LiveFaceDetails>,
    /// The session's `deviceCorrelationId`.
    pub(crate) device_id: Option<String>,
}

impl Logins<'_> {
    /// Queues a login or profile `event` about `collection` (and `user`) for the
    /// webhooks of `caller` and of the collection's managers
    /// (`Webhooks::emit_collection_event`); a failure to queue is logged, not returned.
    pub(crate) async fn emit(
        &self,
        caller: &str,
        event: &str,
        c: &Loaded,
        collection: &str,
        user: Option<&str>,
        body: &serde_json::Value,
    ) {
        let subject = EventSubject {
            collection_id: Some(collection.into()),
            user_id: user.map(String::from),
            verification_id: None,
        };
        if let Err(e) = Webhooks::new(self.cx)
            .emit_collection_event(caller, collection, &c.uid, event, &subject, body)
            .await
        {
            tracing::warn!(error = %e, event, "login: could not queue the event");
        }
    }

    /// The published keys that verify login assertions (`/.well-known/jwks.json`).
    pub async fn jwks(&self) -> Result<Jwks> {
        assertion::jwks(self.cx).await
    }

    /// Takes the live face of liveness session `id` for `p`, once. Errors:
    /// `SessionNotFound` (unknown, or another key's), `SessionNotFinished`,
    /// `SessionAlreadyUsed`, `SessionExpired` (finished longer than
    /// `login.max_session_age_secs` ago).
    pub(crate) async fn take_session(&self, p: &Principal, id: &str) -> Result<TakenSession> {
        let not_found = || CoreError::SessionNotFound(format!("liveness session `{id}` not found"));
        let id = crate::validate::canonical_uuid(id).ok_or_else(not_found)?;
        // Read first, so that another key's session is not consumed by a stranger.
        let Some(row) = self.store().get_liveness(&id).await? else {
            return Err(not_found());
        };
        // Only the key that created a session uses it (an admin may read another
        // key's results, never log in or enrol with them).
        if row.owner_key != p.key_id {
            return Err(not_found());
        }
        if self.store().verification_of_liveness(&id).await?.is_some() {
            return Err(CoreError::InvalidParameter(format!(
                "liveness session `{id}` belongs to an identity verification; a login or an \
                 enrolment needs a session of its own"
            )));
        }
        let now = now_ms();
        let face = match self.store().take_live_face(&id, now).await? {
            Ok(f) => f,
            Err(LiveFaceUnavailable::Unknown) => return Err(not_found()),
            Err(LiveFaceUnavailable::Consumed) => {
                return Err(CoreError::SessionAlreadyUsed(format!(
                    "liveness session `{id}` was already used by a login or an enrolment"
                )))
            }
        };
        match face.status {
            LivenessStatus::Succeeded | LivenessStatus::Failed => {}
            LivenessStatus::Expired => {
                return Err(CoreError::SessionExpired(format!(
                    "liveness session `{id}` expired before it was streamed"
                )))
            }
            LivenessStatus::Created | LivenessStatus::InProgress => {
                return Err(CoreError::SessionNotFinished(format!(
                    "liveness session `{id}` has not finished: stream it first"
                )))
            }
        }
        let max_age = self.config().login.max_session_age_secs as i64 * 1000;
        if face.finished_ms.is_none_or(|f| now - f > max_age) {
            return Err(CoreError::SessionExpired(format!(
                "liveness session `{id}` finished more than {} s ago; a login needs a fresh one",
                self.config().login.max_session_age_secs
            )));
        }
        let results: Option<LivenessResults> = face
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok());
        let confidence = results.as_ref().and_then(|r| r.confidence).unwrap_or(0.0);
        let template = match &face.template {
            Some(sealed) => Some(self.open_transient_template(sealed, &live_template_aad(&id))?),
            None => None,
        };
        let details: Option<LiveFaceDetails> = face
            .details
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok());
        Ok(TakenSession {
            passed: face.status == LivenessStatus::Succeeded
                && confidence >= self.config().login.min_liveness_confidence
                && template.is_some(),
            session_id: id,
            confidence,
            template,
            details,
            device_id: face.device_id,
        })
    }
}
