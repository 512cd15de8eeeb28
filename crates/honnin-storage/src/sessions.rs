//! Short-lived rows: transient faces (detect results addressed by face id) and
//! liveness sessions, each with its expiry sweep.

use sqlx::Row;

use crate::status::LivenessStatus;
use crate::*;

impl Store {
    // ------------------------------------------------------------------ transient faces

    /// Inserts transient faces in one transaction; when it returns Ok they are durable.
    pub async fn insert_transient(&self, rows: &[TransientRow]) -> Result<()> {
        let mut tx = self.write_tx().await?;
        for t in rows {
            sqlx::query(
                "INSERT INTO transient_faces (face_id, owner_key, template, details, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&t.face_id)
            .bind(&t.owner_key)
            .bind(&t.template)
            .bind(&t.details)
            .bind(t.created_ms)
            .bind(t.expires_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The unexpired transient faces among `ids`.
    pub async fn get_transient(&self, ids: &[String], now_ms: i64) -> Result<Vec<TransientRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT * FROM transient_faces WHERE expires_ms > $1 AND face_id IN ({})",
            placeholders(2, ids.len())
        );
        let mut q = sqlx::query(&sql).bind(now_ms);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(TransientRow {
                    face_id: r.try_get("face_id")?,
                    owner_key: r.try_get("owner_key")?,
                    template: r.try_get("template")?,
                    details: r.try_get("details")?,
                    created_ms: r.try_get("created_ms")?,
                    expires_ms: r.try_get("expires_ms")?,
                })
            })
            .collect()
    }

    /// Deletes expired transient faces; returns how many.
    pub async fn delete_expired_transient(&self, now_ms: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM transient_faces WHERE expires_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    /// Counts stored transient faces, expired or not (for tests and metrics).
    pub async fn count_transient(&self) -> Result<i64> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM transient_faces")
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    // ------------------------------------------------------------------ liveness sessions

    /// Inserts a liveness session. `Conflict` if its `session_id` exists.
    pub async fn insert_liveness(&self, r: &LivenessRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO liveness_sessions (session_id, owner_key, token_hash, device_id, settings, \
             reference, status, result, images, created_ms, expires_ms, started_ms, finished_ms, \
             images_until_ms, retain_until_ms, cancelled_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .bind(&r.session_id)
        .bind(&r.owner_key)
        .bind(&r.token_hash)
        .bind(&r.device_id)
        .bind(&r.settings)
        .bind(&r.reference)
        .bind(r.status.as_str())
        .bind(&r.result)
        .bind(&r.images)
        .bind(r.created_ms)
        .bind(r.expires_ms)
        .bind(r.started_ms)
        .bind(r.finished_ms)
        .bind(r.images_until_ms)
        .bind(r.retain_until_ms)
        .bind(r.cancelled_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("liveness session `{}`", r.session_id))
            }
            _ => e.into(),
        })?;
        Ok(())
    }

    /// The liveness session `id`, if it exists (whatever its status). `Corrupt` if its
    /// status column holds an unknown value.
    pub async fn get_liveness(&self, id: &str) -> Result<Option<LivenessRow>> {
        let r = sqlx::query("SELECT * FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| {
            Ok(LivenessRow {
                session_id: r.try_get("session_id")?,
                owner_key: r.try_get("owner_key")?,
                token_hash: r.try_get("token_hash")?,
                device_id: r.try_get("device_id")?,
                settings: r.try_get("settings")?,
                reference: r.try_get("reference")?,
                status: r.try_get::<String, _>("status")?.parse()?,
                result: r.try_get("result")?,
                images: r.try_get("images")?,
                created_ms: r.try_get("created_ms")?,
                expires_ms: r.try_get("expires_ms")?,
                started_ms: r.try_get("started_ms")?,
                finished_ms: r.try_get("finished_ms")?,
                images_until_ms: r.try_get("images_until_ms")?,
                retain_until_ms: r.try_get("retain_until_ms")?,
                cancelled_ms: r.try_get("cancelled_ms")?,
            })
        })
        .transpose()
    }

    /// Sessions created at or after `since_ms` by `device` (if given) and/or `owner` (if given).
    pub async fn count_liveness_since(
        &self,
        device: Option<&str>,
        owner: Option<&str>,
        since_ms: i64,
    ) -> Result<i64> {
        let mut sql =
            "SELECT COUNT(*) AS n FROM liveness_sessions WHERE created_ms >= $1".to_string();
        let mut n = 1;
        if device.is_some() {
            n += 1;
            sql.push_str(&format!(" AND device_id = ${n}"));
        }
        if owner.is_some() {
            n += 1;
            sql.push_str(&format!(" AND owner_key = ${n}"));
        }
        let mut q = sqlx::query(&sql).bind(since_ms);
        if let Some(d) = device {
            q = q.bind(d);
        }
        if let Some(o) = owner {
            q = q.bind(o);
        }
        let r = q.fetch_one(&self.pool).await?;
        Ok(r.try_get("n")?)
    }

    /// Marks a CREATED, unexpired session IN_PROGRESS. False if it was already started,
    /// finished, expired or unknown: a session streams once, even with several servers.
    pub async fn start_liveness(&self, id: &str, now_ms: i64) -> Result<bool> {
        let r = sqlx::query(&format!(
            "UPDATE liveness_sessions SET status = '{l_in_progress}', started_ms = $1 \
             WHERE session_id = $2 AND status = '{l_created}' AND expires_ms > $1",
            l_in_progress = LivenessStatus::InProgress,
            l_created = LivenessStatus::Created
        ))
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the outcome of an IN_PROGRESS session and drops its reference template.
    /// A session that belongs to a verification gets its sealed live-face template in the
    /// same statement: whoever sees the session finished (any server's background pass)
    /// finds the live face too. False if the session is no longer in progress (expired
    /// or deleted meanwhile).
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_liveness(
        &self,
        id: &str,
        status: LivenessStatus,
        result: &str,
        images: Option<&[u8]>,
        live_template: Option<&[u8]>,
        live_face: Option<&str>,
        now_ms: i64,
        images_until_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(&format!(
            "UPDATE liveness_sessions SET status = $1, result = $2, images = $3, finished_ms = $4, \
             images_until_ms = $5, reference = NULL, live_template = $6, live_face = $8 \
             WHERE session_id = $7 AND status = '{l_in_progress}'",
            l_in_progress = LivenessStatus::InProgress
        ))
        .bind(status.as_str())
        .bind(result)
        .bind(images)
        .bind(now_ms)
        .bind(images_until_ms)
        .bind(live_template)
        .bind(id)
        .bind(live_face)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Returns a finished session's images and deletes them in the same transaction:
    /// exactly one reader ever gets them.
    pub async fn take_liveness_images(&self, id: &str) -> Result<Option<Vec<u8>>> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT images FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let images: Option<Vec<u8>> = match row {
            Some(r) => r.try_get("images")?,
            None => None,
        };
        if images.is_none() {
            return Ok(None);
        }
        let r = sqlx::query(
            "UPDATE liveness_sessions SET images = NULL WHERE session_id = $1 AND images IS NOT NULL",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(if r.rows_affected() == 1 { images } else { None })
    }

    /// Deletes a session and everything it holds (scrubbed from the files); false if
    /// unknown.
    pub async fn delete_liveness(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("DELETE FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        self.erase_checkpoint().await?;
        Ok(r.rows_affected() == 1)
    }

    /// A session's status (`None` if it does not exist): a running stream polls it to
    /// stop when the session is cancelled.
    pub async fn liveness_status(&self, id: &str) -> Result<Option<LivenessStatus>> {
        let r = sqlx::query("SELECT status FROM liveness_sessions WHERE session_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.map(|r| Ok(r.try_get::<String, _>("status")?.parse()?))
            .transpose()
    }

    /// Enforces every liveness time limit at `now_ms` (see [`LivenessSweep`]).
    pub async fn sweep_liveness(&self, now_ms: i64) -> Result<LivenessSweep> {
        let expired = sqlx::query(&format!(
            "UPDATE liveness_sessions SET status = '{l_expired}', images = NULL, reference = NULL \
             WHERE status IN ('{l_created}', '{l_in_progress}') AND expires_ms <= $1",
            l_expired = LivenessStatus::Expired,
            l_created = LivenessStatus::Created,
            l_in_progress = LivenessStatus::InProgress
        ))
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let images_cleared = sqlx::query(
            "UPDATE liveness_sessions SET images = NULL \
             WHERE images IS NOT NULL AND images_until_ms <= $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        // A live face nobody took (for a login or an enrolment) goes with the images;
        // a verification's stays until the verification is decided.
        sqlx::query(
            "UPDATE liveness_sessions SET live_template = NULL, live_face = NULL \
             WHERE (live_template IS NOT NULL OR live_face IS NOT NULL) \
             AND images_until_ms <= $1 AND NOT EXISTS (SELECT 1 FROM verifications v \
             WHERE v.liveness_session_id = liveness_sessions.session_id)",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?;
        let deleted = sqlx::query("DELETE FROM liveness_sessions WHERE retain_until_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(LivenessSweep {
            expired,
            images_cleared,
            deleted,
        })
    }
}
