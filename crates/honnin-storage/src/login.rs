//! Face login's rows: enrolment profiles, login attempts, lock-outs, the keys that sign
//! login assertions, and the one-time use of a liveness session's live face.
//!
//! Templates arrive sealed (honnin-core seals profile templates with the collection's
//! data key); no image is stored here. Deleting a user or a collection deletes its
//! profile, attempts and lock-outs (see [`crate::erasure`]).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{LivenessStatus, Result, Store, StoreError};

/// One template of a person's enrolment profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileTemplateRow {
    /// The template's id (a UUID). Primary key.
    pub template_id: String,
    /// The collection the profile belongs to.
    pub collection_id: String,
    /// The customer's user id the profile is linked to.
    pub user_id: String,
    /// The template, sealed with the collection's data key.
    pub template: Vec<u8>,
    /// Where it came from: `liveness` (a passed liveness session) or `verification` (an
    /// approved identity verification's live face).
    pub source: String,
    /// The liveness session (or verification, or image) it came from.
    pub source_id: String,
    /// The face's pose and quality as JSON (owned by honnin-core).
    pub details: String,
    /// When it was enrolled, epoch milliseconds.
    pub created_ms: i64,
}

/// One login attempt: its decision and numbers as JSON, never an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttemptRow {
    /// The attempt's id (a UUID). Primary key.
    pub attempt_id: String,
    /// The API key that made the attempt.
    pub owner_key: String,
    /// The collection searched.
    pub collection_id: String,
    /// The claimed user (1:1) or the user identified (1:N), if any.
    pub user_id: Option<String>,
    /// The device or relying-party client the attempt came from, if known.
    pub client_id: Option<String>,
    /// `SUCCEEDED`, `FAILED` or `LOCKED` (owned by honnin-core).
    pub outcome: String,
    /// The attempt's record as JSON (owned by honnin-core).
    pub record: String,
    /// When it was made, epoch milliseconds.
    pub created_ms: i64,
    /// When the row is deleted, epoch milliseconds.
    pub retain_until_ms: i64,
}

/// Consecutive failures and back-off of one subject (`user:<id>` or `client:<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutRow {
    /// The collection logins are made against.
    pub collection_id: String,
    /// `user:<user id>` or `client:<client id>`.
    pub subject: String,
    /// Failures since the last success, unlock or lock-out.
    pub failures: i64,
    /// Lock-outs since the last success or unlock (the back-off's exponent).
    pub lockouts: i64,
    /// Locked until then, epoch milliseconds.
    pub locked_until_ms: Option<i64>,
    /// Last change, epoch milliseconds.
    pub updated_ms: i64,
}

/// A key that signs login assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    /// The key id (`kid` in the JWT header and the JWKS).
    pub kid: String,
    /// The JOSE algorithm, e.g. `ES256`.
    pub alg: String,
    /// The private key (PKCS#8), sealed by honnin-core.
    pub private_key: Vec<u8>,
    /// The public key as a JWK (JSON).
    pub public_jwk: String,
    /// When it was made, epoch milliseconds.
    pub created_ms: i64,
    /// Published until then, epoch milliseconds; deleted afterwards.
    pub retire_ms: i64,
}

/// A finished liveness session's live face, taken once (see [`Store::take_live_face`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFace {
    /// The API key that created the session.
    pub owner_key: String,
    /// The session's `deviceCorrelationId`.
    pub device_id: Option<String>,
    /// The session's status when taken.
    pub status: LivenessStatus,
    /// The results JSON (owned by honnin-core), once finished.
    pub result: Option<String>,
    /// When the session finished, epoch milliseconds.
    pub finished_ms: Option<i64>,
    /// The live face's sealed template, unless its time ran out.
    pub template: Option<Vec<u8>>,
    /// The live face's pose and quality as JSON (owned by honnin-core).
    pub details: Option<String>,
}

/// Why a live face could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveFaceUnavailable {
    /// No such session.
    Unknown,
    /// A login or an enrolment used it already.
    Consumed,
}

fn profile_from_row(r: &AnyRow) -> Result<ProfileTemplateRow> {
    Ok(ProfileTemplateRow {
        template_id: r.try_get("template_id")?,
        collection_id: r.try_get("collection_id")?,
        user_id: r.try_get("user_id")?,
        template: r.try_get("template")?,
        source: r.try_get("source")?,
        source_id: r.try_get("source_id")?,
        details: r.try_get("details")?,
        created_ms: r.try_get("created_ms")?,
    })
}

fn attempt_from_row(r: &AnyRow) -> Result<LoginAttemptRow> {
    Ok(LoginAttemptRow {
        attempt_id: r.try_get("attempt_id")?,
        owner_key: r.try_get("owner_key")?,
        collection_id: r.try_get("collection_id")?,
        user_id: r.try_get("user_id")?,
        client_id: r.try_get("client_id")?,
        outcome: r.try_get("outcome")?,
        record: r.try_get("record")?,
        created_ms: r.try_get("created_ms")?,
        retain_until_ms: r.try_get("retain_until_ms")?,
    })
}

const PROFILE_COLS: &str =
    "template_id, collection_id, user_id, template, source, source_id, details, created_ms";
const ATTEMPT_COLS: &str = "attempt_id, owner_key, collection_id, user_id, client_id, outcome, \
                            record, created_ms, retain_until_ms";

impl Store {
    // ------------------------------------------------------------ live faces

    /// Takes a finished session's live face, once: marks the session consumed and
    /// clears its template in one transaction, so exactly one login or enrolment ever
    /// uses a session. A session that has not finished is returned without being
    /// consumed (its `status` says so).
    pub async fn take_live_face(
        &self,
        session_id: &str,
        now_ms: i64,
    ) -> Result<std::result::Result<LiveFace, LiveFaceUnavailable>> {
        let mut tx = self.write_tx().await?;
        let Some(r) = sqlx::query(
            "SELECT owner_key, device_id, status, result, finished_ms, live_template, live_face, \
             consumed_ms FROM liveness_sessions WHERE session_id = $1",
        )
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(Err(LiveFaceUnavailable::Unknown));
        };
        if r.try_get::<Option<i64>, _>("consumed_ms")?.is_some() {
            return Ok(Err(LiveFaceUnavailable::Consumed));
        }
        let face = LiveFace {
            owner_key: r.try_get("owner_key")?,
            device_id: r.try_get("device_id")?,
            status: r.try_get::<String, _>("status")?.parse()?,
            result: r.try_get("result")?,
            finished_ms: r.try_get("finished_ms")?,
            template: r.try_get("live_template")?,
            details: r.try_get("live_face")?,
        };
        if !matches!(
            face.status,
            LivenessStatus::Succeeded | LivenessStatus::Failed
        ) {
            return Ok(Ok(face));
        }
        let n = sqlx::query(
            "UPDATE liveness_sessions SET consumed_ms = $1, live_template = NULL, live_face = NULL \
             WHERE session_id = $2 AND consumed_ms IS NULL",
        )
        .bind(now_ms)
        .bind(session_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Ok(Err(LiveFaceUnavailable::Consumed));
        }
        Ok(Ok(face))
    }

    // -------------------------------------------------------------- profiles

    /// Adds templates to a user's profile (`replace`: instead of the ones it has),
    /// creating the user if needed, in one transaction. Returns the profile's size
    /// afterwards. `NotFound` if the collection does not exist.
    pub async fn enrol_profile(
        &self,
        collection: &str,
        user: &str,
        rows: &[ProfileTemplateRow],
        replace: bool,
        now_ms: i64,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        if sqlx::query("SELECT 1 AS one FROM collections WHERE collection_id = $1")
            .bind(collection)
            .fetch_optional(&mut *tx)
            .await?
            .is_none()
        {
            return Err(StoreError::NotFound(format!("collection {collection}")));
        }
        sqlx::query(
            "INSERT INTO users (collection_id, user_id, created_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (collection_id, user_id) DO NOTHING",
        )
        .bind(collection)
        .bind(user)
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
        if replace {
            sqlx::query("DELETE FROM login_profiles WHERE collection_id = $1 AND user_id = $2")
                .bind(collection)
                .bind(user)
                .execute(&mut *tx)
                .await?;
        }
        for r in rows {
            sqlx::query(&format!(
                "INSERT INTO login_profiles ({PROFILE_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .bind(&r.template_id)
            .bind(collection)
            .bind(user)
            .bind(&r.template)
            .bind(&r.source)
            .bind(&r.source_id)
            .bind(&r.details)
            .bind(r.created_ms)
            .execute(&mut *tx)
            .await?;
        }
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM login_profiles WHERE collection_id = $1 AND user_id = $2",
        )
        .bind(collection)
        .bind(user)
        .fetch_one(&mut *tx)
        .await?
        .try_get("n")?;
        tx.commit().await?;
        Ok(n as u64)
    }

    /// The profile templates of one user, or (`None`) of every user of a collection,
    /// oldest first.
    pub async fn profile_templates(
        &self,
        collection: &str,
        user: Option<&str>,
    ) -> Result<Vec<ProfileTemplateRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {PROFILE_COLS} FROM login_profiles WHERE collection_id = $1 \
                 AND user_id = $2 ORDER BY created_ms, template_id"
                ))
                .bind(collection)
                .bind(u)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {PROFILE_COLS} FROM login_profiles WHERE collection_id = $1 \
                 ORDER BY user_id, created_ms, template_id"
                ))
                .bind(collection)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(profile_from_row).collect()
    }

    /// How many users of a collection have a profile, and how many templates they hold.
    pub async fn profile_counts(&self, collection: &str) -> Result<(u64, u64)> {
        let r = sqlx::query(
            "SELECT COUNT(DISTINCT user_id) AS users, COUNT(*) AS templates \
             FROM login_profiles WHERE collection_id = $1",
        )
        .bind(collection)
        .fetch_one(&self.pool)
        .await?;
        Ok((
            r.try_get::<i64, _>("users")? as u64,
            r.try_get::<i64, _>("templates")? as u64,
        ))
    }

    /// Deletes a user's profile (its templates); returns how many were deleted.
    pub async fn delete_profile(&self, collection: &str, user: &str) -> Result<u64> {
        let n = sqlx::query("DELETE FROM login_profiles WHERE collection_id = $1 AND user_id = $2")
            .bind(collection)
            .bind(user)
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.erase_checkpoint().await?;
        Ok(n)
    }

    // -------------------------------------------------------------- attempts

    /// Records a login attempt.
    pub async fn insert_login_attempt(&self, r: &LoginAttemptRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO login_attempts ({ATTEMPT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&r.attempt_id)
        .bind(&r.owner_key)
        .bind(&r.collection_id)
        .bind(&r.user_id)
        .bind(&r.client_id)
        .bind(&r.outcome)
        .bind(&r.record)
        .bind(r.created_ms)
        .bind(r.retain_until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest `limit` attempts against a collection (of one user, if given),
    /// newest first.
    pub async fn login_attempts(
        &self,
        collection: &str,
        user: Option<&str>,
        limit: i64,
    ) -> Result<Vec<LoginAttemptRow>> {
        let rows = match user {
            Some(u) => {
                sqlx::query(&format!(
                    "SELECT {ATTEMPT_COLS} FROM login_attempts WHERE collection_id = $1 \
                 AND user_id = $2 ORDER BY created_ms DESC, attempt_id LIMIT $3"
                ))
                .bind(collection)
                .bind(u)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {ATTEMPT_COLS} FROM login_attempts WHERE collection_id = $1 \
                 ORDER BY created_ms DESC, attempt_id LIMIT $2"
                ))
                .bind(collection)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(attempt_from_row).collect()
    }

    /// Deletes the attempts whose retention ended; returns how many.
    pub async fn sweep_login_attempts(&self, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM login_attempts WHERE retain_until_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }

    // -------------------------------------------------------------- lock-outs

    /// The lock-out state of `subject` in `collection`, if any.
    pub async fn lockout(&self, collection: &str, subject: &str) -> Result<Option<LockoutRow>> {
        let r = sqlx::query(
            "SELECT collection_id, subject, failures, lockouts, locked_until_ms, updated_ms \
             FROM login_lockouts WHERE collection_id = $1 AND subject = $2",
        )
        .bind(collection)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        r.map(|r| {
            Ok(LockoutRow {
                collection_id: r.try_get("collection_id")?,
                subject: r.try_get("subject")?,
                failures: r.try_get("failures")?,
                lockouts: r.try_get("lockouts")?,
                locked_until_ms: r.try_get("locked_until_ms")?,
                updated_ms: r.try_get("updated_ms")?,
            })
        })
        .transpose()
    }

    /// Writes a subject's lock-out state (insert or replace).
    pub async fn put_lockout(&self, r: &LockoutRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_lockouts (collection_id, subject, failures, lockouts, \
             locked_until_ms, updated_ms) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (collection_id, subject) DO UPDATE SET failures = $3, lockouts = $4, \
             locked_until_ms = $5, updated_ms = $6",
        )
        .bind(&r.collection_id)
        .bind(&r.subject)
        .bind(r.failures)
        .bind(r.lockouts)
        .bind(r.locked_until_ms)
        .bind(r.updated_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Counts one more failure of `subject`, atomically (several servers may count at
    /// once). When this failure reaches `max_failures`, the failures start again at 0,
    /// the lock-outs grow by one, and their new number is returned (the caller then
    /// sets [`Store::lock_until`]); otherwise `None`.
    pub async fn count_login_failure(
        &self,
        collection: &str,
        subject: &str,
        max_failures: i64,
        now_ms: i64,
    ) -> Result<Option<i64>> {
        let failures: i64 = sqlx::query(
            "INSERT INTO login_lockouts (collection_id, subject, failures, lockouts, \
             locked_until_ms, updated_ms) VALUES ($1, $2, 1, 0, NULL, $3) \
             ON CONFLICT (collection_id, subject) DO UPDATE \
             SET failures = login_lockouts.failures + 1, updated_ms = $3 RETURNING failures",
        )
        .bind(collection)
        .bind(subject)
        .bind(now_ms)
        .fetch_one(&self.pool)
        .await?
        .try_get("failures")?;
        if failures < max_failures {
            return Ok(None);
        }
        let r = sqlx::query(
            "UPDATE login_lockouts SET failures = 0, lockouts = lockouts + 1, updated_ms = $3 \
             WHERE collection_id = $1 AND subject = $2 AND failures >= $4 RETURNING lockouts",
        )
        .bind(collection)
        .bind(subject)
        .bind(now_ms)
        .bind(max_failures)
        .fetch_optional(&self.pool)
        .await?;
        Ok(r.map(|r| r.try_get::<i64, _>("lockouts")).transpose()?)
    }

    /// Locks `subject` until `until_ms` (never shortening a longer lock).
    pub async fn lock_until(&self, collection: &str, subject: &str, until_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE login_lockouts SET locked_until_ms = $3 WHERE collection_id = $1 \
             AND subject = $2 AND (locked_until_ms IS NULL OR locked_until_ms < $3)",
        )
        .bind(collection)
        .bind(subject)
        .bind(until_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes the lock-out rows that lock nothing (no lock, or one that ended) and
    /// changed last before `idle_before_ms`; returns how many.
    pub async fn sweep_lockouts(&self, now_ms: i64, idle_before_ms: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM login_lockouts WHERE (locked_until_ms IS NULL OR locked_until_ms <= $1) \
             AND updated_ms < $2",
        )
        .bind(now_ms)
        .bind(idle_before_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Clears a subject's lock-out state (an operator's unlock, or a success); false if
    /// it had none.
    pub async fn delete_lockout(&self, collection: &str, subject: &str) -> Result<bool> {
        Ok(
            sqlx::query("DELETE FROM login_lockouts WHERE collection_id = $1 AND subject = $2")
                .bind(collection)
                .bind(subject)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1,
        )
    }

    // ----------------------------------------------------------- signing keys

    /// Stores a new assertion-signing key.
    pub async fn insert_signing_key(&self, r: &SigningKeyRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO login_signing_keys (kid, alg, private_key, public_jwk, created_ms, \
             retire_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&r.kid)
        .bind(&r.alg)
        .bind(&r.private_key)
        .bind(&r.public_jwk)
        .bind(r.created_ms)
        .bind(r.retire_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every signing key not yet retired at `now_ms`, newest first.
    pub async fn signing_keys(&self, now_ms: i64) -> Result<Vec<SigningKeyRow>> {
        sqlx::query(
            "SELECT kid, alg, private_key, public_jwk, created_ms, retire_ms \
             FROM login_signing_keys WHERE retire_ms > $1 ORDER BY created_ms DESC, kid",
        )
        .bind(now_ms)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(SigningKeyRow {
                kid: r.try_get("kid")?,
                alg: r.try_get("alg")?,
                private_key: r.try_get("private_key")?,
                public_jwk: r.try_get("public_jwk")?,
                created_ms: r.try_get("created_ms")?,
                retire_ms: r.try_get("retire_ms")?,
            })
        })
        .collect()
    }

    /// Deletes the signing keys retired at `now_ms`; returns how many.
    pub async fn delete_retired_signing_keys(&self, now_ms: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM login_signing_keys WHERE retire_ms <= $1")
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}
