//! Enrolment profiles: enrolled from a passed liveness session with quality gates,
//! changed and deleted only by explicit calls.

use honnin_engine::{QualityLevel, Template};
use honnin_storage::ProfileTemplateRow;
use serde::{Deserialize, Serialize};

use super::{Logins, TakenSession};
use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::context::Loaded;
use crate::crypto::profile_aad;
use crate::error::{CoreError, Result};
use crate::liveness::LiveFaceDetails;
use crate::validate::check_user_id;

/// `PUT /v1/collections/{collectionId}/users/{userId}/profile` (enrol or reset) and
/// `POST …/profile/templates` (add a template).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolProfile {
    /// A liveness session of the caller's that finished at most
    /// `login.max_session_age_secs` (120 s) ago, passed, and was not used before.
    pub liveness_session_id: String,
}

/// One template of a profile (never the template itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileTemplateInfo {
    /// The template's id.
    pub template_id: String,
    /// `liveness` (a login enrolment) or `verification` (an approved identity
    /// verification that enrolled the person).
    pub source: String,
    /// The liveness session or verification it came from.
    pub source_id: String,
    /// Pose and quality of the enrolled face.
    pub face: Option<LiveFaceDetails>,
    /// When it was enrolled, RFC 3339 UTC.
    pub created_at: String,
}

/// A user's enrolment profile.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileInfo {
    /// The collection.
    pub collection_id: String,
    /// The customer's user id.
    pub user_id: String,
    /// The profile's templates, oldest first (1 – `login.max_templates_per_profile`).
    pub templates: Vec<ProfileTemplateInfo>,
}

/// Why a live face may not be enrolled (empty: it may), as reason codes.
pub(crate) fn enrolment_shortfalls(
    s: &TakenSession,
    max_pose_deg: f32,
    min_confidence: f32,
) -> Vec<String> {
    let mut r = Vec::new();
    if !s.passed {
        r.push(format!(
            "LivenessNotPassed: the session did not pass (confidence {:.1}, needs {min_confidence})",
            s.confidence
        ));
    }
    let Some(d) = &s.details else {
        if s.passed {
            r.push("NoFaceDetails: the session kept no face to enrol".into());
        }
        return r;
    };
    if d.yaw.abs() > max_pose_deg || d.pitch.abs() > max_pose_deg {
        r.push(format!(
            "NotFrontal: yaw {:.1}°, pitch {:.1}° (at most ±{max_pose_deg}°)",
            d.yaw, d.pitch
        ));
    }
    if d.quality != QualityLevel::High {
        r.push(format!(
            "LowQuality: face quality {} (needs high)",
            d.quality.as_str()
        ));
    }
    if d.multiple_faces_fraction > 0.0 {
        r.push(format!(
            "MultipleFaces: a second face was seen in {:.0} % of the session",
            d.multiple_faces_fraction * 100.0
        ));
    }
    r
}

fn info(collection: &str, user: &str, rows: &[ProfileTemplateRow]) -> ProfileInfo {
    ProfileInfo {
        collection_id: collection.into(),
        user_id: user.into(),
        templates: rows
            .iter()
            .map(|r| ProfileTemplateInfo {
                template_id: r.template_id.clone(),
                source: r.source.clone(),
                source_id: r.source_id.clone(),
                face: serde_json::from_str(&r.details).ok(),
                created_at: rfc3339(r.created_ms),
            })
            .collect(),
    }
}

impl Logins<'_> {
    /// Enrols a profile template from a passed liveness session: with `replace`, the
    /// profile is reset to this one template; otherwise the template is added (a user
    /// without a profile gets one, a user id without a user gets a user). Errors:
    /// `InvalidParameter`, `AccessDenied`, `ResourceNotFound` (collection), the session
    /// errors of a login, `EnrolmentRejected` (liveness failed, not frontal, quality not
    /// high, several faces), `ProfileFull`.
    pub async fn enrol_profile(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
        req: &EnrolProfile,
        replace: bool,
    ) -> Result<ProfileInfo> {
        check_user_id(user)?;
        let c = self.authorize(p, Action::Enroll, collection).await?;
        let before = self
            .store()
            .profile_templates(collection, Some(user))
            .await?;
        let cfg = &self.config().login;
        if !replace && before.len() >= cfg.max_templates_per_profile {
            return Err(CoreError::ProfileFull(format!(
                "the profile of `{user}` holds {} templates, the most allowed \
                 (login.max_templates_per_profile); reset it or delete it first",
                before.len()
            )));
        }
        let s = self.take_session(p, &req.liveness_session_id).await?;
        let short = enrolment_shortfalls(&s, cfg.max_enrol_pose_deg, cfg.min_liveness_confidence);
        let t = match (short.is_empty(), s.template.as_ref()) {
            (true, Some(t)) => t,
            (true, None) => {
                return Err(CoreError::EnrolmentRejected(
                    "NoFace: the session kept no face to enrol".into(),
                ))
            }
            (false, _) => return Err(CoreError::EnrolmentRejected(short.join("; "))),
        };
        let details = serde_json::to_string(&s.details)
            .map_err(CoreError::json("writing the face details"))?;
        let rows = self
            .store_templates(
                &c,
                collection,
                user,
                t,
                "liveness",
                &s.session_id,
                &details,
                replace,
            )
            .await?;
        let event = if before.is_empty() || replace {
            "profile.enrolled"
        } else {
            "profile.updated"
        };
        self.profile_event(&p.key_id, event, &c, collection, user, rows.len())
            .await;
        Ok(info(collection, user, &rows))
    }

    /// Adds the live face of an approved identity verification to the person's profile
    /// (the verification's enrolment step), when it passes the enrolment gates and the
    /// profile has room. Returns the new template's id, or why it was not added.
    pub(crate) async fn enrol_verified(
        &self,
        owner_key: &str,
        collection: &str,
        user: &str,
        live: &Template,
        details: Option<&LiveFaceDetails>,
        verification_id: &str,
    ) -> Result<std::result::Result<String, String>> {
        let cfg = &self.config().login;
        let taken = TakenSession {
            session_id: String::new(),
            passed: true,
            confidence: 100.0,
            template: None,
            details: details.cloned(),
            device_id: None,
        };
        let short = enrolment_shortfalls(&taken, cfg.max_enrol_pose_deg, 0.0);
        if !short.is_empty() {
            return Ok(Err(short.join("; ")));
        }
        let before = self
            .store()
            .profile_templates(collection, Some(user))
            .await?;
        if before.len() >= cfg.max_templates_per_profile {
            return Ok(Err("ProfileFull".into()));
        }
        let c = self.collection(collection).await?;
        let details = serde_json::to_string(&details).map_err(CoreError::json("face details"))?;
        let rows = self
            .store_templates(
                &c,
                collection,
                user,
                live,
                "verification",
                verification_id,
                &details,
                false,
            )
            .await?;
        let event = if before.is_empty() {
            "profile.enrolled"
        } else {
            "profile.updated"
        };
        self.profile_event(owner_key, event, &c, collection, user, rows.len())
            .await;
        Ok(Ok(rows
            .last()
            .map(|r| r.template_id.clone())
            .unwrap_or_default()))
    }

    /// A user's profile (template ids, sources, pose and quality; never a template).
    /// Errors: `ResourceNotFound` when the user has no profile.
    pub async fn describe_profile(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
    ) -> Result<ProfileInfo> {
        check_user_id(user)?;
        self.authorize(p, Action::Recognize, collection).await?;
        let rows = self
            .store()
            .profile_templates(collection, Some(user))
            .await?;
        if rows.is_empty() {
            return Err(no_profile(user));
        }
        Ok(info(collection, user, &rows))
    }

    /// Deletes a user's profile (the user and its faces stay). Errors:
    /// `ResourceNotFound` when the user has no profile.
    pub async fn delete_profile(&self, p: &Principal, collection: &str, user: &str) -> Result<()> {
        check_user_id(user)?;
        let c = self.authorize(p, Action::Enroll, collection).await?;
        if self.store().delete_profile(collection, user).await? == 0 {
            return Err(no_profile(user));
        }
        self.profile_event(&p.key_id, "profile.deleted", &c, collection, user, 0)
            .await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_templates(
        &self,
        c: &Loaded,
        collection: &str,
        user: &str,
        t: &Template,
        source: &str,
        source_id: &str,
        details: &str,
        replace: bool,
    ) -> Result<Vec<ProfileTemplateRow>> {
        let template_id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let row = ProfileTemplateRow {
            template: c
                .key
                .seal(&t.to_bytes(), &profile_aad(&c.uid, &template_id)),
            template_id,
            collection_id: collection.into(),
            user_id: user.into(),
            source: source.into(),
            source_id: source_id.into(),
            details: details.into(),
            created_ms: now,
        };
        self.store()
            .enrol_profile(collection, user, &[row], replace, now)
            .await?;
        Ok(self
            .store()
            .profile_templates(collection, Some(user))
            .await?)
    }

    async fn profile_event(
        &self,
        owner_key: &str,
        event: &str,
        c: &Loaded,
        collection: &str,
        user: &str,
        templates: usize,
    ) {
        let body = serde_json::json!({
            "event": event, "collectionId": collection, "userId": user,
            "templates": templates, "at": rfc3339(now_ms()),
        });
        self.emit(owner_key, event, c, collection, Some(user), &body)
            .await;
    }
}

fn no_profile(user: &str) -> CoreError {
    CoreError::ResourceNotFound(format!("user `{user}` has no login profile"))
}

/// Opens a stored profile template (sealed with the collection's key).
pub(crate) fn open_template(c: &Loaded, row: &ProfileTemplateRow) -> Result<Template> {
    let plain = c
        .key
        .open(&row.template, &profile_aad(&c.uid, &row.template_id))?;
    Template::from_bytes(&plain).map_err(CoreError::engine("stored profile template"))
}
