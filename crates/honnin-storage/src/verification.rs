//! Identity verifications, webhooks and the webhook outbox
//! (`migrations/*/0003_verification.sql`).
//!
//! Every state change of a verification is a conditional `UPDATE … WHERE status = …`, so
//! with several servers exactly one of them moves a verification from one step to the
//! next (the one whose update affected the row). Outbox deliveries are claimed the same
//! way, with a lease that lets another server retry a delivery whose server died.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::status::{LivenessStatus, Outcome, VerificationState};
use crate::{Result, Store, StoreError};

/// One identity verification. Templates and images are sealed by honnin-core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationRow {
    /// The verification's id (a UUID). Primary key.
    pub verification_id: String,
    /// The id of the API key that started it; events go to that key's webhooks.
    pub owner_key: String,
    /// The collection (by name) the person is checked against and enrolled in.
    pub collection_id: String,
    /// The caller's id for the person: the user id in the collection.
    pub external_user_id: String,
    /// The effective policy as JSON (owned by honnin-core).
    pub policy: String,
    /// The id of the liveness session made for it (its live face is compared with the
    /// document).
    pub liveness_session_id: String,
    /// Where it stands (see [`VerificationState`]: awaiting a step, processing, or
    /// decided, cancelled included).
    pub status: VerificationState,
    /// Sealed template of the document portrait, until the decision.
    pub document: Option<Vec<u8>>,
    /// What was found on the document, as JSON (no biometrics).
    pub document_info: Option<String>,
    /// The decision record as JSON, once decided.
    pub decision: Option<String>,
    /// Sealed images kept by policy, until `images_until_ms`.
    pub images: Option<Vec<u8>>,
    /// Until when kept `images` stay, epoch milliseconds.
    pub images_until_ms: Option<i64>,
    /// When it was started, epoch milliseconds.
    pub created_ms: i64,
    /// When its status last changed, epoch milliseconds (a `processing` row older than
    /// the stale limit is requeued by this).
    pub updated_ms: i64,
    /// The deadline for the client's steps, epoch milliseconds; still waiting by then, it
    /// is decided as `expired`.
    pub expires_ms: i64,
    /// When it was decided (or cancelled), epoch milliseconds.
    pub decided_ms: Option<i64>,
    /// When the row (with its decision record) is deleted, epoch milliseconds.
    pub retain_until_ms: i64,
}

/// What one verification sweep did. (Verifications that run out of time are decided
/// as `expired` by the processor, with a decision record and an event: see
/// [`Store::verifications_ready`].)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerificationSweep {
    /// Kept images deleted at the end of their retention.
    pub images_cleared: u64,
    /// Rows deleted at the end of their retention.
    pub deleted: u64,
}

/// A webhook registered by an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// The webhook's id (a UUID). Primary key.
    pub webhook_id: String,
    /// The id of the API key that registered it: it receives that key's events only.
    pub owner_key: String,
    /// Where events are POSTed: `https://` (`http://` only where the operator allows it),
    /// checked by the egress policy at registration and on every delivery.
    pub url: String,
    /// Sealed HMAC secret.
    pub secret: Vec<u8>,
    /// Event names as JSON array.
    pub events: String,
    /// When it was registered, epoch milliseconds.
    pub created_ms: i64,
    /// Set when the webhook's key was revoked: no more deliveries.
    pub disabled_ms: Option<i64>,
    /// Failed attempts in a row (the circuit breaker's count; 0 after a success).
    pub consecutive_failures: i64,
    /// While the circuit is open, this webhook's deliveries wait (attempts unspent).
    pub circuit_open_until_ms: Option<i64>,
}

/// One delivery of one event to one webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    /// The delivery's id (a UUID). Primary key.
    pub delivery_id: String,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// The event's name, e.g. `verification.completed`.
    pub event: String,
    /// The event body as JSON text, sent as is (and signed) on every attempt.
    pub body: String,
    /// Attempts made so far (0 when queued).
    pub attempts: i64,
    /// When the delivery is due (first or next attempt), epoch milliseconds.
    pub next_attempt_ms: i64,
    /// While set and in the future, the delivery is claimed by one server (epoch
    /// milliseconds); past it, another server may claim it again.
    pub lease_until_ms: Option<i64>,
    /// When it was delivered (a 2xx answer), epoch milliseconds.
    pub delivered_ms: Option<i64>,
    /// When it was given up (out of attempts, or its webhook disabled), epoch milliseconds.
    pub failed_ms: Option<i64>,
    /// Why the last attempt failed (status or transport error); `None` after success.
    pub last_error: Option<String>,
    /// When it was queued, epoch milliseconds.
    pub created_ms: i64,
    /// What the event is about, so erasing a collection, a user or a verification
    /// erases its events too.
    pub collection_id: Option<String>,
    /// The user (of `collection_id`) the event is about, if any.
    pub user_id: Option<String>,
    /// The verification the event is about, if any.
    pub verification_id: Option<String>,
}

/// How [`Store::claim_deliveries`] picks work: due deliveries of enabled webhooks whose
/// circuit is closed, at most `per_owner` per owning key in one claim, interleaved
/// across owners (every owner's first, then every owner's second, …) so that one key's
/// backlog never starves another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimLimits {
    /// The current time, epoch milliseconds: deliveries due at or before it are claimed.
    pub now_ms: i64,
    /// The lease the claimed deliveries get, epoch milliseconds.
    pub lease_until_ms: i64,
    /// At most this many deliveries in one claim.
    pub limit: i64,
    /// At most this many per owning key in one claim (values below 1 count as 1).
    pub per_owner: i64,
}

fn verification_from_row(r: &AnyRow) -> Result<VerificationRow> {
    Ok(VerificationRow {
        verification_id: r.try_get("verification_id")?,
        owner_key: r.try_get("owner_key")?,
        collection_id: r.try_get("collection_id")?,
        external_user_id: r.try_get("external_user_id")?,
        policy: r.try_get("policy")?,
        liveness_session_id: r.try_get("liveness_session_id")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        document: r.try_get("document")?,
        document_info: r.try_get("document_info")?,
        decision: r.try_get("decision")?,
        images: r.try_get("images")?,
        images_until_ms: r.try_get("images_until_ms")?,
        created_ms: r.try_get("created_ms")?,
        updated_ms: r.try_get("updated_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        decided_ms: r.try_get("decided_ms")?,
        retain_until_ms: r.try_get("retain_until_ms")?,
    })
}

fn webhook_from_row(r: &AnyRow) -> Result<WebhookRow> {
    Ok(WebhookRow {
        webhook_id: r.try_get("webhook_id")?,
        owner_key: r.try_get("owner_key")?,
        url: r.try_get("url")?,
        secret: r.try_get("secret")?,
        events: r.try_get("events")?,
        created_ms: r.try_get("created_ms")?,
        disabled_ms: r.try_get("disabled_ms")?,
        consecutive_failures: r.try_get("consecutive_failures")?,
        circuit_open_until_ms: r.try_get("circuit_open_until_ms")?,
    })
}

fn delivery_from_row(r: &AnyRow) -> Result<DeliveryRow> {
    Ok(DeliveryRow {
        delivery_id: r.try_get("delivery_id")?,
        webhook_id: r.try_get("webhook_id")?,
        event: r.try_get("event")?,
        body: r.try_get("body")?,
        attempts: r.try_get("attempts")?,
        next_attempt_ms: r.try_get("next_attempt_ms")?,
        lease_until_ms: r.try_get("lease_until_ms")?,
        delivered_ms: r.try_get("delivered_ms")?,
        failed_ms: r.try_get("failed_ms")?,
        last_error: r.try_get("last_error")?,
        created_ms: r.try_get("created_ms")?,
        collection_id: r.try_get("collection_id")?,
        user_id: r.try_get("user_id")?,
        verification_id: r.try_get("verification_id")?,
    })
}

impl Store {
    // ------------------------------------------------------------------ verifications

    /// Inserts a verification. `Conflict` if its `verification_id` exists.
    pub async fn insert_verification(&self, v: &VerificationRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO verifications (verification_id, owner_key, collection_id, \
             external_user_id, policy, liveness_session_id, status, document, document_info, \
             decision, images, images_until_ms, created_ms, updated_ms, expires_ms, decided_ms, \
             retain_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&v.verification_id)
        .bind(&v.owner_key)
        .bind(&v.collection_id)
        .bind(&v.external_user_id)
        .bind(&v.policy)
        .bind(&v.liveness_session_id)
        .bind(v.status.as_str())
        .bind(&v.document)
        .bind(&v.document_info)
        .bind(&v.decision)
        .bind(&v.images)
        .bind(v.images_until_ms)
        .bind(v.created_ms)
        .bind(v.updated_ms)
        .bind(v.expires_ms)
        .bind(v.decided_ms)
        .bind(v.retain_until_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("verification `{}`", v.verification_id))
            }
            _ => e.into(),
        })?;
        Ok(())
    }

    /// The verification `id`, if it exists. `Corrupt` if its status column holds an
    /// unknown value.
    pub async fn get_verification(&self, id: &str) -> Result<Option<VerificationRow>> {
        let r = sqlx::query("SELECT * FROM verifications WHERE verification_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(verification_from_row).transpose()
    }

    /// The verification a liveness session belongs to, if any.
    pub async fn verification_of_liveness(&self, session_id: &str) -> Result<Option<String>> {
        let r =
            sqlx::query("SELECT verification_id FROM verifications WHERE liveness_session_id = $1")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match r {
            Some(r) => Some(r.try_get("verification_id")?),
            None => None,
        })
    }

    /// Records the document portrait of an `awaiting_document`, unexpired verification
    /// (and the sealed document image, when the policy keeps images) and moves it to
    /// `awaiting_liveness`. False if it is in another state (or expired).
    pub async fn set_verification_document(
        &self,
        id: &str,
        document: &[u8],
        document_info: &str,
        images: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(&format!(
            "UPDATE verifications SET document = $1, document_info = $2, images = $3, \
             status = '{v_awaiting_liveness}', updated_ms = $4 \
             WHERE verification_id = $5 AND status = '{v_awaiting_document}' AND expires_ms > $4",
            v_awaiting_liveness = VerificationState::AwaitingLiveness,
            v_awaiting_document = VerificationState::AwaitingDocument
        ))
        .bind(document)
        .bind(document_info)
        .bind(images)
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Moves a verification from `from` to `to`; false if it was not in `from` (another
    /// server moved it first, or it expired).
    pub async fn transition_verification(
        &self,
        id: &str,
        from: VerificationState,
        to: VerificationState,
        now_ms: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE verifications SET status = $1, updated_ms = $2 \
             WHERE verification_id = $3 AND status = $4",
        )
        .bind(to.as_str())
        .bind(now_ms)
        .bind(id)
        .bind(from.as_str())
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Records the decision of a `processing` verification: final status, decision
    /// record, images kept by policy (or none), and drops the document template and
    /// the live-face template, in one transaction.
    /// False if it was not processing.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_verification(
        &self,
        id: &str,
        status: Outcome,
        decision: &str,
        images: Option<&[u8]>,
        images_until_ms: Option<i64>,
        now_ms: i64,
        retain_until_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(&format!(
            "UPDATE verifications SET status = $1, decision = $2, images = $3, \
             images_until_ms = $4, decided_ms = $5, updated_ms = $5, retain_until_ms = $6, \
             document = NULL \
             WHERE verification_id = $7 AND status = '{v_processing}'",
            v_processing = VerificationState::Processing
        ))
        .bind(status.as_str())
        .bind(decision)
        .bind(images)
        .bind(images_until_ms)
        .bind(now_ms)
        .bind(retain_until_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        // The live face served this decision and goes with it, as the document did.
        sqlx::query(
            "UPDATE liveness_sessions SET live_template = NULL, live_face = NULL WHERE session_id = \
             (SELECT liveness_session_id FROM verifications WHERE verification_id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Work for the processor, oldest first: verifications waiting for liveness whose
    /// liveness session has ended (or is gone), and verifications still waiting for a
    /// step at `now_ms` past their time limit (to be decided as expired).
    pub async fn verifications_ready(&self, now_ms: i64, limit: i64) -> Result<Vec<String>> {
        let rows = sqlx::query(&format!(
            "SELECT v.verification_id FROM verifications v \
             LEFT JOIN liveness_sessions l ON l.session_id = v.liveness_session_id \
             WHERE (v.status = '{v_awaiting_liveness}' \
                    AND (l.status IS NULL OR l.status IN ('{l_succeeded}', '{l_failed}', '{l_expired}'))) \
             OR (v.status IN ('{v_awaiting_document}', '{v_awaiting_liveness}') AND v.expires_ms <= $1) \
             ORDER BY v.created_ms, v.verification_id LIMIT $2",
            v_awaiting_liveness = VerificationState::AwaitingLiveness, l_succeeded = LivenessStatus::Succeeded, l_failed = LivenessStatus::Failed, l_expired = LivenessStatus::Expired, v_awaiting_document = VerificationState::AwaitingDocument
        ))
        .bind(now_ms)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok(r.try_get("verification_id")?))
            .collect()
    }

    /// Verifications stuck in `processing` since before `before_ms` (their server died
    /// mid-way): moved back to `awaiting_liveness` so the processor retries them.
    pub async fn requeue_stale_verifications(&self, before_ms: i64, now_ms: i64) -> Result<u64> {
        Ok(sqlx::query(&format!(
            "UPDATE verifications SET status = '{v_awaiting_liveness}', updated_ms = $1 \
             WHERE status = '{v_processing}' AND updated_ms < $2",
            v_awaiting_liveness = VerificationState::AwaitingLiveness,
            v_processing = VerificationState::Processing
        ))
        .bind(now_ms)
        .bind(before_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Enforces the retention of kept images and of decision records at `now_ms`.
    pub async fn sweep_verifications(&self, now_ms: i64) -> Result<VerificationSweep> {
        let images_cleared = sqlx::query(
            "UPDATE verifications SET images = NULL \
             WHERE images IS NOT NULL AND images_until_ms <= $1",
        )
        .bind(now_ms)
        .execute(&self.pool)
        .await?
        .rows_affected();
        let deleted = sqlx::query("DELETE FROM verifications WHERE retain_until_ms <= $1")
            .bind(now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(VerificationSweep {
            images_cleared,
            deleted,
        })
    }

    /// A liveness session's live-face template, if one is kept (read, not cleared: a
    /// decision retried after its server died must find it again).
    pub async fn live_template(&self, session_id: &str) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT live_template FROM liveness_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("live_template")?,
            None => None,
        })
    }

    /// A liveness session's live-face details (pose, quality; JSON owned by
    /// honnin-core), if kept.
    pub async fn live_face_details(&self, session_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT live_face FROM liveness_sessions WHERE session_id = $1")
            .bind(session_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => r.try_get("live_face")?,
            None => None,
        })
    }

    // ------------------------------------------------------------------ webhooks

    /// Registers a webhook. `Conflict` if its `webhook_id` exists.
    pub async fn insert_webhook(&self, w: &WebhookRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO webhooks (webhook_id, owner_key, url, secret, events, created_ms, \
             disabled_ms, consecutive_failures, circuit_open_until_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&w.webhook_id)
        .bind(&w.owner_key)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(&w.events)
        .bind(w.created_ms)
        .bind(w.disabled_ms)
        .bind(w.consecutive_failures)
        .bind(w.circuit_open_until_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict(format!("webhook `{}`", w.webhook_id))
            }
            _ => e.into(),
        })?;
        Ok(())
    }

    /// The webhook `id`, if it exists (disabled or not).
    pub async fn get_webhook(&self, id: &str) -> Result<Option<WebhookRow>> {
        let r = sqlx::query("SELECT * FROM webhooks WHERE webhook_id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        r.as_ref().map(webhook_from_row).transpose()
    }

    /// The webhooks of one key, oldest first (disabled ones included).
    pub async fn list_webhooks(&self, owner_key: &str) -> Result<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT * FROM webhooks WHERE owner_key = $1 ORDER BY created_ms, webhook_id",
        )
        .bind(owner_key)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// Every webhook, oldest first (for an admin's overview).
    pub async fn list_all_webhooks(&self) -> Result<Vec<WebhookRow>> {
        let rows = sqlx::query("SELECT * FROM webhooks ORDER BY created_ms, webhook_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_from_row).collect()
    }

    /// Deletes a webhook and its pending deliveries; false if unknown.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM webhook_outbox WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM webhooks WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    // ------------------------------------------------------------------ outbox

    /// Queues deliveries (one per webhook of an event) in one transaction.
    pub async fn enqueue_deliveries(&self, rows: &[DeliveryRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for d in rows {
            sqlx::query(
                "INSERT INTO webhook_outbox (delivery_id, webhook_id, event, body, attempts, \
                 next_attempt_ms, lease_until_ms, delivered_ms, failed_ms, last_error, created_ms, \
                 collection_id, user_id, verification_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(&d.delivery_id)
            .bind(&d.webhook_id)
            .bind(&d.event)
            .bind(&d.body)
            .bind(d.attempts)
            .bind(d.next_attempt_ms)
            .bind(d.lease_until_ms)
            .bind(d.delivered_ms)
            .bind(d.failed_ms)
            .bind(&d.last_error)
            .bind(d.created_ms)
            .bind(&d.collection_id)
            .bind(&d.user_id)
            .bind(&d.verification_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims due deliveries (see [`ClaimLimits`]) until `lease_until_ms`, asking
    /// `admit(owner_key)` before each (the caller's per-owner concurrency cap). Each
    /// claim is a conditional update, so two servers never claim the same delivery at
    /// once. Returns the claimed deliveries with their webhook's owning key.
    pub async fn claim_deliveries(
        &self,
        l: ClaimLimits,
        mut admit: impl FnMut(&str) -> bool,
    ) -> Result<Vec<(DeliveryRow, String)>> {
        let candidates = sqlx::query(
            "SELECT * FROM (SELECT o.*, w.owner_key AS owner_key, ROW_NUMBER() OVER \
             (PARTITION BY w.owner_key ORDER BY o.next_attempt_ms, o.delivery_id) AS rn \
             FROM webhook_outbox o JOIN webhooks w ON w.webhook_id = o.webhook_id \
             WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL AND o.next_attempt_ms <= $1 \
             AND (o.lease_until_ms IS NULL OR o.lease_until_ms <= $1) AND w.disabled_ms IS NULL \
             AND (w.circuit_open_until_ms IS NULL OR w.circuit_open_until_ms <= $1)) t \
             WHERE rn <= $2 ORDER BY rn, next_attempt_ms, delivery_id LIMIT $3",
        )
        .bind(l.now_ms)
        .bind(l.per_owner.max(1))
        .bind(l.limit)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = Vec::new();
        for r in &candidates {
            let mut d = delivery_from_row(r)?;
            let owner: String = r.try_get("owner_key")?;
            if !admit(&owner) {
                continue;
            }
            let ok = sqlx::query(
                "UPDATE webhook_outbox SET lease_until_ms = $1 WHERE delivery_id = $2 \
                 AND delivered_ms IS NULL AND failed_ms IS NULL \
                 AND (lease_until_ms IS NULL OR lease_until_ms <= $3)",
            )
            .bind(l.lease_until_ms)
            .bind(&d.delivery_id)
            .bind(l.now_ms)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            if ok {
                d.lease_until_ms = Some(l.lease_until_ms);
                claimed.push((d, owner));
            }
        }
        Ok(claimed)
    }

    /// Records a webhook's attempt for its circuit breaker: a success closes the circuit
    /// and resets the count; the `threshold`-th failure in a row opens it for
    /// `cooldown_ms` doubled per further failure, at most `max_cooldown_ms`.
    /// Returns the count of failures in a row.
    pub async fn record_webhook_outcome(
        &self,
        webhook_id: &str,
        ok: bool,
        now_ms: i64,
        threshold: i64,
        cooldown_ms: i64,
        max_cooldown_ms: i64,
    ) -> Result<i64> {
        if ok {
            sqlx::query(
                "UPDATE webhooks SET consecutive_failures = 0, circuit_open_until_ms = NULL \
                 WHERE webhook_id = $1",
            )
            .bind(webhook_id)
            .execute(&self.pool)
            .await?;
            return Ok(0);
        }
        let Some(row) = sqlx::query(
            "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1 \
             WHERE webhook_id = $1 RETURNING consecutive_failures",
        )
        .bind(webhook_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(0);
        };
        let n: i64 = row.try_get("consecutive_failures")?;
        if n >= threshold.max(1) {
            let doublings = (n - threshold.max(1)).clamp(0, 30) as u32;
            let wait = cooldown_ms
                .saturating_mul(1i64 << doublings)
                .min(max_cooldown_ms);
            sqlx::query("UPDATE webhooks SET circuit_open_until_ms = $1 WHERE webhook_id = $2")
                .bind(now_ms + wait)
                .bind(webhook_id)
                .execute(&self.pool)
                .await?;
        }
        Ok(n)
    }

    /// Records the end of one attempt: delivered, retry at `next_attempt_ms`, or given up
    /// (`failed`).
    pub async fn record_delivery_attempt(
        &self,
        id: &str,
        outcome: DeliveryOutcome<'_>,
        now_ms: i64,
    ) -> Result<()> {
        let q = match outcome {
            DeliveryOutcome::Delivered => sqlx::query(
                "UPDATE webhook_outbox SET attempts = attempts + 1, delivered_ms = $1, \
                 lease_until_ms = NULL, last_error = NULL WHERE delivery_id = $2",
            )
            .bind(now_ms)
            .bind(id),
            DeliveryOutcome::Retry {
                next_attempt_ms,
                error,
            } => sqlx::query(
                "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_ms = $1, \
                 lease_until_ms = NULL, last_error = $2 WHERE delivery_id = $3",
            )
            .bind(next_attempt_ms)
            .bind(error)
            .bind(id),
            DeliveryOutcome::Failed { error } => sqlx::query(
                "UPDATE webhook_outbox SET attempts = attempts + 1, failed_ms = $1, \
                 lease_until_ms = NULL, last_error = $2 WHERE delivery_id = $3",
            )
            .bind(now_ms)
            .bind(error)
            .bind(id),
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    /// The deliveries of one webhook, newest first.
    pub async fn list_deliveries(&self, webhook_id: &str, limit: i64) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_outbox WHERE webhook_id = $1 \
             ORDER BY created_ms DESC, delivery_id LIMIT $2",
        )
        .bind(webhook_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// Deletes delivered or failed deliveries finished before `before_ms`.
    pub async fn purge_deliveries(&self, before_ms: i64) -> Result<u64> {
        Ok(sqlx::query(
            "DELETE FROM webhook_outbox WHERE (delivered_ms IS NOT NULL AND delivered_ms < $1) \
             OR (failed_ms IS NOT NULL AND failed_ms < $1)",
        )
        .bind(before_ms)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

/// The end of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome<'a> {
    /// The endpoint accepted it (a 2xx answer): done.
    Delivered,
    /// It failed; try again at `next_attempt_ms`.
    Retry {
        /// When to try again, epoch milliseconds.
        next_attempt_ms: i64,
        /// Why this attempt failed (kept as `last_error`).
        error: &'a str,
    },
    /// It failed and is given up (out of attempts): no more tries.
    Failed {
        /// Why the last attempt failed (kept as `last_error`).
        error: &'a str,
    },
}
