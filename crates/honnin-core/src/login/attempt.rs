//! A login attempt: a fresh, passed liveness session and a match at the security
//! level's threshold; lock-out, the attempt's record, events and the assertion.

use serde::{Deserialize, Serialize};

use honnin_storage::LoginAttemptRow;

use super::assertion::{self, AssertionClaims};
use super::levels::{attempt_threshold, AttemptThreshold, LevelError, SecurityLevel};
use super::lockout;
use super::profiles::open_template;
use super::{Logins, TakenSession};
use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::context::Loaded;
use crate::error::{CoreError, Result};
use crate::validate::{check_external_id, check_user_id};

/// Longest `audience`, `nonce` and `clientId`, characters.
pub const MAX_CLAIM_CHARS: usize = 512;
/// Most attempts one listing returns.
pub const MAX_ATTEMPTS_PAGE: u32 = 1_000;

/// `POST /v1/collections/{collectionId}/logins`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// A liveness session of the caller's that finished at most
    /// `login.max_session_age_secs` (120 s) ago and was not used before.
    pub liveness_session_id: String,
    /// The claimed user (1:1). Absent: identify the person among every profile of the
    /// collection (1:N).
    pub user_id: Option<String>,
    /// The security level; default `login.default_level` (`standard`).
    pub level: Option<SecurityLevel>,
    /// The assertion's audience (`aud`): the relying party. Default: the collection id.
    pub audience: Option<String>,
    /// Echoed in the assertion (`nonce`), 1–512 characters.
    pub nonce: Option<String>,
    /// The device or relying-party client making the attempt (lock-out per client),
    /// 1–512 characters of `[A-Za-z0-9_.:-]`. Default: the liveness session's
    /// `deviceCorrelationId`, if any.
    pub client_id: Option<String>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LoginOutcome {
    /// Live and matched: an assertion was issued.
    Succeeded,
    /// Not live, or no match at the level's threshold (see `reasons`).
    Failed,
    /// Refused without comparing: the user or client is locked out.
    Locked,
}

impl LoginOutcome {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginOutcome::Succeeded => "SUCCEEDED",
            LoginOutcome::Failed => "FAILED",
            LoginOutcome::Locked => "LOCKED",
        }
    }
}

/// The record of one attempt (what is stored; no image, no template).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginAttempt {
    /// The attempt's id (also the assertion's `jti`).
    pub login_id: String,
    /// `SUCCEEDED`, `FAILED` or `LOCKED`.
    pub outcome: LoginOutcome,
    /// Why it failed or was locked: `LivenessFailed`, `NoProfile`, `NoMatch`,
    /// `AmbiguousMatch`, `UserLocked`, `ClientLocked`.
    pub reasons: Vec<String>,
    /// `verification` (1:1, a claimed user) or `identification` (1:N).
    pub mode: String,
    /// The claimed user, or the user identified.
    pub user_id: Option<String>,
    /// The client the attempt counted against, if any.
    pub client_id: Option<String>,
    /// The security level.
    pub level: SecurityLevel,
    /// The liveness session used.
    pub liveness_session_id: String,
    /// Its liveness confidence, 0–100.
    pub liveness_confidence: f32,
    /// The best similarity found, 0–100 (absent when nothing was compared).
    pub similarity: Option<f32>,
    /// The threshold and the false-match rate behind it.
    pub threshold: Option<AttemptThreshold>,
    /// Users with a profile the probe was compared with (1 for 1:1).
    pub gallery_size: u64,
    /// When the attempt was made, RFC 3339 UTC.
    pub created_at: String,
}

/// The answer to a login.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResult {
    /// The attempt's record.
    #[serde(flatten)]
    pub attempt: LoginAttempt,
    /// Until when the user or client is locked out, RFC 3339 UTC.
    pub locked_until: Option<String>,
    /// On success: the signed assertion (a JWT, ES256), verified with
    /// `/.well-known/jwks.json`.
    pub assertion: Option<String>,
    /// When the assertion expires, RFC 3339 UTC.
    pub assertion_expires_at: Option<String>,
}

/// `POST /v1/collections/{collectionId}/login-unlock`: an operator's unlock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockRequest {
    /// The user to unlock.
    pub user_id: Option<String>,
    /// The client to unlock.
    pub client_id: Option<String>,
}

/// What an unlock cleared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnlockResult {
    /// Subjects whose failures and lock-out were cleared (`user:<id>`, `client:<id>`).
    pub cleared: Vec<String>,
}

fn check_claim(name: &str, v: &Option<String>) -> Result<()> {
    match v {
        Some(s) if s.is_empty() || s.chars().count() > MAX_CLAIM_CHARS => Err(
            CoreError::InvalidParameter(format!("{name} must be 1–{MAX_CLAIM_CHARS} characters")),
        ),
        Some(s) if s.chars().any(char::is_control) => Err(CoreError::InvalidParameter(format!(
            "{name} must not hold control characters"
        ))),
        _ => Ok(()),
    }
}

/// What was compared: the best user, its similarity, the users at or above threshold.
struct Best {
    user: Option<String>,
    similarity: Option<f32>,
    above: usize,
}

impl Logins<'_> {
    /// One login attempt (see the module docs). A refused request (bad input, unknown
    /// or used session, a 1:N gallery beyond the calibration) is an error and no
    /// attempt; a failed or locked attempt is a result, recorded and counted. Errors:
    /// `InvalidParameter`, `AccessDenied`, `ResourceNotFound`, the session errors of
    /// [`Logins::take_session`], `LevelBeyondCalibration`.
    pub async fn login(
        &self,
        p: &Principal,
        collection: &str,
        req: &LoginRequest,
    ) -> Result<LoginResult> {
        self.login_as_issuer(p, collection, req, None).await
    }

    /// [`Logins::login`], with the assertion's `iss` set to `issuer` (the OpenID
    /// Connect provider's URL) instead of `login.issuer`.
    pub(crate) async fn login_as_issuer(
        &self,
        p: &Principal,
        collection: &str,
        req: &LoginRequest,
        issuer: Option<&str>,
    ) -> Result<LoginResult> {
        if let Some(u) = &req.user_id {
            check_user_id(u)?;
        }
        if let Some(c) = &req.client_id {
            check_external_id(c).map_err(|_| {
                CoreError::InvalidParameter(
                    "clientId must be 1–255 characters of [A-Za-z0-9_.:-]".into(),
                )
            })?;
        }
        check_claim("audience", &req.audience)?;
        // An OpenID Connect client's id is its ID tokens' audience: only the provider
        // (which passes its issuer) may make a token for one, so that no API key can
        // mint a token another collection's client would accept.
        if issuer.is_none()
            && req
                .audience
                .as_deref()
                .is_some_and(|a| a.starts_with(assertion::CLIENT_ID_PREFIX))
        {
            return Err(CoreError::InvalidParameter(format!(
                "audiences starting with `{}` are OpenID Connect client ids: reserved for \
                 the provider's ID tokens",
                assertion::CLIENT_ID_PREFIX
            )));
        }
        check_claim("nonce", &req.nonce)?;
        let c = self.authorize(p, Action::Recognize, collection).await?;
        let cfg = &self.config().login;
        let level = match req.level {
            Some(l) => l,
            None => SecurityLevel::parse(&cfg.default_level).ok_or_else(|| {
                CoreError::Config(format!("login.default_level `{}`", cfg.default_level))
            })?,
        };
        let target = level.target(&cfg.levels);
        // The profiles compared with, and the threshold; refused before the session is
        // used when the level cannot be held.
        let rows = self
            .store()
            .profile_templates(collection, req.user_id.as_deref())
            .await?;
        let gallery_size = match &req.user_id {
            Some(_) => 1,
            None => {
                let mut users: Vec<&str> = rows.iter().map(|r| r.user_id.as_str()).collect();
                users.dedup();
                users.len() as u64
            }
        };
        let threshold = match self.threshold(target, rows.len() as u64) {
            Ok(t) => t,
            Err(LevelError::BeyondCalibration {
                per_comparison_fmr,
                floor,
                max_comparisons,
            }) => {
                return Err(CoreError::LevelBeyondCalibration(format!(
                    "level `{}` ({target:e} per attempt) over {} templates needs a false-match \
                     rate of {per_comparison_fmr:.1e} per comparison, below the calibration's \
                     reach ({floor:.1e}); this level compares with at most {max_comparisons} \
                     templates: {}",
                    level.as_str(),
                    rows.len(),
                    if req.user_id.is_some() {
                        "use a lower level, or keep fewer templates in the profile"
                    } else {
                        "name the user (userId) or use a lower level"
                    }
                )))
            }
        };
        let s = self.take_session(p, &req.liveness_session_id).await?;
        let client_id = req.client_id.clone().or_else(|| s.device_id.clone());
        let now = now_ms();
        let mut attempt = LoginAttempt {
            login_id: uuid::Uuid::new_v4().to_string(),
            outcome: LoginOutcome::Failed,
            reasons: vec![],
            mode: if req.user_id.is_some() {
                "verification"
            } else {
                "identification"
            }
            .into(),
            user_id: req.user_id.clone(),
            client_id: client_id.clone(),
            level,
            liveness_session_id: s.session_id.clone(),
            liveness_confidence: s.confidence,
            similarity: None,
            threshold: Some(threshold),
            gallery_size,
            created_at: rfc3339(now),
        };

        // Lock-out first: a locked subject is not compared.
        let mut subjects = Vec::new();
        if let Some(u) = &req.user_id {
            subjects.push(format!("user:{u}"));
        }
        if let Some(cl) = &client_id {
            subjects.push(format!("client:{cl}"));
        }
        let mut locked_until = None;
        for sub in &subjects {
            let row = self.store().lockout(collection, sub).await?;
            if let Some(until) = lockout::locked_until(row.as_ref(), now) {
                attempt.reasons.push(
                    if sub.starts_with("user:") {
                        "UserLocked"
                    } else {
                        "ClientLocked"
                    }
                    .into(),
                );
                locked_until = Some(locked_until.unwrap_or(0).max(until));
            }
        }
        if locked_until.is_some() {
            attempt.outcome = LoginOutcome::Locked;
            attempt.threshold = None;
            self.record(p, collection, &attempt, now).await?;
            self.login_event(p, "login.failed", &c, collection, &attempt)
                .await;
            return Ok(LoginResult {
                attempt,
                locked_until: locked_until.map(rfc3339),
                assertion: None,
                assertion_expires_at: None,
            });
        }

        // Liveness, then the match.
        let best = if !s.passed {
            attempt.reasons.push("LivenessFailed".into());
            None
        } else if rows.is_empty() {
            attempt.reasons.push("NoProfile".into());
            None
        } else {
            Some(self.best_match(&c, &s, &rows, threshold.similarity)?)
        };
        if let Some(b) = &best {
            attempt.similarity = b.similarity;
            match (b.above, &b.user) {
                (1, Some(u)) => {
                    attempt.outcome = LoginOutcome::Succeeded;
                    attempt.user_id = Some(u.clone());
                }
                (0, _) | (_, None) => attempt.reasons.push("NoMatch".into()),
                _ => attempt.reasons.push("AmbiguousMatch".into()),
            }
        }
        // Identified (1:N) as a user who is locked out: refused like a claim would be.
        if let (None, LoginOutcome::Succeeded, Some(u)) =
            (&req.user_id, attempt.outcome, &attempt.user_id)
        {
            let row = self
                .store()
                .lockout(collection, &format!("user:{u}"))
                .await?;
            if let Some(until) = lockout::locked_until(row.as_ref(), now) {
                attempt.outcome = LoginOutcome::Locked;
                attempt.reasons.push("UserLocked".into());
                self.record(p, collection, &attempt, now).await?;
                self.login_event(p, "login.failed", &c, collection, &attempt)
                    .await;
                return Ok(LoginResult {
                    attempt,
                    locked_until: Some(rfc3339(until)),
                    assertion: None,
                    assertion_expires_at: None,
                });
            }
        }

        let mut result = LoginResult {
            attempt,
            locked_until: None,
            assertion: None,
            assertion_expires_at: None,
        };
        if result.attempt.outcome == LoginOutcome::Succeeded {
            // A success clears the user's and the client's failures.
            let user = result.attempt.user_id.clone().unwrap_or_default();
            self.store()
                .delete_lockout(collection, &format!("user:{user}"))
                .await?;
            if let Some(cl) = &client_id {
                self.store()
                    .delete_lockout(collection, &format!("client:{cl}"))
                    .await?;
            }
            let ttl = cfg.assertion_ttl_secs as i64;
            let claims = AssertionClaims {
                iss: issuer.map(String::from).unwrap_or_else(|| self.issuer()),
                sub: user,
                aud: req.audience.clone().unwrap_or_else(|| collection.into()),
                iat: now / 1000,
                exp: now / 1000 + ttl,
                auth_time: now / 1000,
                nonce: req.nonce.clone(),
                jti: result.attempt.login_id.clone(),
                amr: vec!["face".into(), "liveness".into()],
                acr: level.acr(),
                collection_id: collection.into(),
                liveness_confidence: s.confidence,
                match_similarity: result.attempt.similarity.unwrap_or(0.0),
                match_fmr: threshold.per_comparison_fmr,
            };
            result.assertion = Some(assertion::sign(self.cx, &claims).await?);
            result.assertion_expires_at = Some(rfc3339((now / 1000 + ttl) * 1000));
            self.record(p, collection, &result.attempt, now).await?;
            self.login_event(p, "login.succeeded", &c, collection, &result.attempt)
                .await;
        } else {
            // A failure counts against the client, and against the claimed user when a
            // face was compared with the user's profile (a failed liveness check says
            // nothing about the user: counting it would let anyone lock anyone out).
            let liveness_failed = !s.passed;
            for sub in &subjects {
                if liveness_failed && sub.starts_with("user:") {
                    continue;
                }
                let max = cfg.max_failures.max(1) as i64;
                if let Some(n) = self
                    .store()
                    .count_login_failure(collection, sub, max, now)
                    .await?
                {
                    let until = now + lockout::lockout_ms(n, cfg);
                    self.store().lock_until(collection, sub, until).await?;
                    result.locked_until = Some(rfc3339(until));
                    self.locked_event(p, &c, collection, sub, until).await;
                }
            }
            self.record(p, collection, &result.attempt, now).await?;
            self.login_event(p, "login.failed", &c, collection, &result.attempt)
                .await;
        }
        Ok(result)
    }

    /// The threshold of an attempt at `target` against `templates` templates.
    fn threshold(
        &self,
        target: f64,
        templates: u64,
    ) -> std::result::Result<AttemptThreshold, LevelError> {
        match self.engine().calibration() {
            Some(cal) => attempt_threshold(target, templates, cal),
            // No calibration: the scale's own definition (similarity = 20 + 10·−log10 FMR),
            // never measured.
            None => {
                let mut t = attempt_threshold(target, templates, &Uncalibrated)?;
                t.fmr_measured = false;
                Ok(t)
            }
        }
    }

    /// Compares the live face with every profile template; per user, the best.
    fn best_match(
        &self,
        c: &Loaded,
        s: &TakenSession,
        rows: &[honnin_storage::ProfileTemplateRow],
        threshold: f32,
    ) -> Result<Best> {
        let Some(live) = &s.template else {
            return Ok(Best {
                user: None,
                similarity: None,
                above: 0,
            });
        };
        let mut per_user: Vec<(String, f32)> = Vec::new();
        for r in rows {
            let t = open_template(c, r)?;
            let sim = self
                .engine()
                .compare(live, &t)
                .map_err(CoreError::engine("compare"))?
                .similarity;
            match per_user.iter_mut().find(|(u, _)| *u == r.user_id) {
                Some((_, best)) => *best = best.max(sim),
                None => per_user.push((r.user_id.clone(), sim)),
            }
        }
        per_user.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(Best {
            above: per_user.iter().filter(|(_, s)| *s >= threshold).count(),
            similarity: per_user.first().map(|(_, s)| *s),
            user: per_user.first().map(|(u, _)| u.clone()),
        })
    }

    fn issuer(&self) -> String {
        let i = &self.config().login.issuer;
        if i.is_empty() {
            "urn:honnin".into()
        } else {
            i.clone()
        }
    }

    async fn record(
        &self,
        p: &Principal,
        collection: &str,
        a: &LoginAttempt,
        now: i64,
    ) -> Result<()> {
        let retention = self.config().login.attempts_retention_secs as i64 * 1000;
        self.store()
            .insert_login_attempt(&LoginAttemptRow {
                attempt_id: a.login_id.clone(),
                owner_key: p.key_id.clone(),
                collection_id: collection.into(),
                user_id: a.user_id.clone(),
                client_id: a.client_id.clone(),
                outcome: a.outcome.as_str().into(),
                record: serde_json::to_string(a).map_err(CoreError::json("writing the attempt"))?,
                created_ms: now,
                retain_until_ms: now + retention,
            })
            .await?;
        metrics::counter!("honnin_login_attempts_total",
            "outcome" => a.outcome.as_str(), "level" => a.level.as_str())
        .increment(1);
        Ok(())
    }

    async fn login_event(
        &self,
        p: &Principal,
        event: &str,
        c: &Loaded,
        collection: &str,
        a: &LoginAttempt,
    ) {
        let body = serde_json::json!({"event": event, "collectionId": collection, "login": a});
        self.emit(&p.key_id, event, c, collection, a.user_id.as_deref(), &body)
            .await;
    }

    async fn locked_event(
        &self,
        p: &Principal,
        c: &Loaded,
        collection: &str,
        subject: &str,
        until: i64,
    ) {
        let user = subject.strip_prefix("user:");
        let body = serde_json::json!({
            "event": "login.locked", "collectionId": collection, "subject": subject,
            "lockedUntil": rfc3339(until),
        });
        self.emit(&p.key_id, "login.locked", c, collection, user, &body)
            .await;
    }

    /// Clears the failures and lock-out of a user and/or a client (an operator's
    /// unlock). Errors: `InvalidParameter` (neither named), `AccessDenied` (an enroller
    /// or admin key of the collection is needed).
    pub async fn unlock(
        &self,
        p: &Principal,
        collection: &str,
        req: &UnlockRequest,
    ) -> Result<UnlockResult> {
        if req.user_id.is_none() && req.client_id.is_none() {
            return Err(CoreError::InvalidParameter(
                "name a userId or a clientId to unlock".into(),
            ));
        }
        if let Some(u) = &req.user_id {
            check_user_id(u)?;
        }
        self.authorize(p, Action::Enroll, collection).await?;
        let mut cleared = Vec::new();
        let subjects = req
            .user_id
            .iter()
            .map(|u| format!("user:{u}"))
            .chain(req.client_id.iter().map(|c| format!("client:{c}")));
        for sub in subjects {
            if self.store().delete_lockout(collection, &sub).await? {
                cleared.push(sub);
            }
        }
        Ok(UnlockResult { cleared })
    }

    /// The newest attempts against a collection (of one user, if given), newest first:
    /// `limit` 1–1000 (default 100).
    pub async fn list_attempts(
        &self,
        p: &Principal,
        collection: &str,
        user: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Vec<LoginAttempt>> {
        if let Some(u) = user {
            check_user_id(u)?;
        }
        let limit = crate::paging::page_limit(limit, 100, MAX_ATTEMPTS_PAGE)?;
        self.authorize(p, Action::Enroll, collection).await?;
        self.store()
            .login_attempts(collection, user, limit)
            .await?
            .iter()
            .map(|r| serde_json::from_str(&r.record).map_err(CoreError::json("a stored attempt")))
            .collect()
    }
}

/// The similarity scale without a calibration table: its definition only.
struct Uncalibrated;

impl super::levels::FmrScale for Uncalibrated {
    fn floor(&self) -> f64 {
        1e-8
    }
    fn measured_floor(&self) -> f64 {
        1.0
    }
    fn similarity_for(&self, fmr: f64) -> f32 {
        honnin_engine::calibration::similarity_for_fmr(fmr)
    }
}
