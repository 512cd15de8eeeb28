//! Webhooks: URLs an enroller or admin key registers to be told about events
//! (`verification.completed`), delivered at least once from an outbox in storage.
//!
//! An event is written to the outbox (one delivery per subscribed webhook) when it
//! happens; delivering never blocks the flow that produced it. A background task of the
//! server runs [`Webhooks::dispatch_webhooks`] (with the HTTP client supplied by the
//! server): it claims due deliveries with a lease, fairly across the keys that own them,
//! POSTs them signed, concurrently under a global and a per-owner cap, and retries
//! failures with exponential back-off. A receiver that keeps failing trips a circuit
//! breaker: its deliveries wait (attempts unspent) instead of holding delivery slots.
//! Any server of a deployment may deliver any event.
//!
//! Where deliveries may go is the egress policy ([`crate::egress`]): https only, no
//! internal address unless allow-listed, checked after DNS resolution at every attempt.
//! A failed attempt is recorded with a generic reason (an HTTP status, "no response", or
//! "destination not allowed"), never the transport's own error text, so the delivery
//! log cannot be used to map an internal network.
//!
//! Signature: header `Honnin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`. The receiver recomputes it with the secret it was given at
//! registration, compares in constant time, and rejects old timestamps (replays).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
pub use crate::config::webhooks::WebhookConfig;
use crate::context::domain;
use crate::crypto::webhook_secret_aad;
use crate::error::{CoreError, Result};
use honnin_storage::{ClaimLimits, DeliveryOutcome, DeliveryRow, WebhookRow};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 7] = [
    "verification.completed",
    "login.succeeded",
    "login.failed",
    "login.locked",
    "profile.enrolled",
    "profile.updated",
    "profile.deleted",
];

/// What an event is about, recorded with its deliveries so erasing a collection, a
/// user or a verification erases the events about them too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSubject {
    /// The collection the event is about.
    pub collection_id: Option<String>,
    /// The user (a verification's `externalUserId`) the event is about.
    pub user_id: Option<String>,
    /// The verification the event is about.
    pub verification_id: Option<String>,
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    /// `https://…` URL honnin POSTs events to (`http://` only where the operator allows
    /// it). Internal addresses (loopback, private, link-local…) are refused unless the
    /// operator allow-lists them.
    pub url: String,
    /// Event names (default: all of them).
    #[serde(default)]
    pub events: Option<Vec<String>>,
}

/// A registered webhook.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WebhookInfo {
    /// The webhook's id, a UUID.
    pub webhook_id: String,
    /// The API key that registered it (its events are that key's).
    pub owner_key_id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The event names it subscribes to (see [`EVENTS`]).
    pub events: Vec<String>,
    /// When it was registered, RFC 3339 UTC.
    pub created_at: String,
    /// The signing secret: returned once, at registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Set when the key that registered it was revoked: nothing is delivered any more.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<String>,
    /// Set while the circuit breaker holds its deliveries (the receiver kept failing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_until: Option<String>,
}

/// Where a delivery stands (wire spelling: lowercase).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the last attempt, or its webhook was disabled.
    Failed,
}

/// One delivery, for inspection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryInfo {
    /// The delivery's id, a UUID; also sent to the receiver in the `Honnin-Delivery`
    /// header.
    pub delivery_id: String,
    /// The event name (e.g. `verification.completed`).
    pub event: String,
    /// Where the delivery stands.
    pub status: DeliveryStatus,
    /// Attempts made so far (at most [`WebhookConfig::max_attempts`]).
    pub attempts: i64,
    /// When the next attempt is due, RFC 3339 UTC; only while `pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The last failed attempt's generic reason (`HTTP <status>`, no response, destination
    /// not allowed, webhook disabled), never the transport's own error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the event was written to the outbox, RFC 3339 UTC.
    pub created_at: String,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// The webhook's URL, to POST to.
    pub url: String,
    /// The event's JSON body, exactly as signed.
    pub body: String,
    /// The `Honnin-Signature` header value.
    pub signature: String,
    /// The event name (e.g. `verification.completed`).
    pub event: String,
    /// The delivery's id, a UUID (receivers may deduplicate on it).
    pub delivery_id: String,
}

/// Why an attempt got no HTTP answer. Deliberately coarse (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendFailure {
    /// The egress policy refused every address of the destination, or its name does
    /// not resolve (one reason for both: no oracle for which internal names exist).
    NotAllowed,
    /// No answer: connection refused or reset, timeout, TLS failure, DNS failure.
    NoResponse,
}

impl SendFailure {
    /// The reason recorded for the delivery.
    pub fn reason(self) -> &'static str {
        match self {
            SendFailure::NotAllowed => {
                "destination not allowed by the webhook egress policy, or its name does not resolve"
            }
            SendFailure::NoResponse => "no HTTP response (connection failed or timed out)",
        }
    }
}

/// What one send attempt returned: `Ok(status)` for an HTTP answer.
pub type SendResult = std::result::Result<u16, SendFailure>;

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &[u8], t: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("{t}.{body}").as_bytes());
    let tag = mac.finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Checks a `Honnin-Signature` header against `body` (for receivers and tests): the
/// tag must match and `t` must lie within `tolerance_secs` of `now_secs`.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now_secs - t).abs() > tolerance_secs {
        return false;
    }
    let expected = sign(secret, t, body);
    let expected_v1 = expected.rsplit_once("v1=").map(|x| x.1).unwrap_or("");
    use subtle::ConstantTimeEq;
    expected_v1.len() == v1.len() && bool::from(expected_v1.as_bytes().ct_eq(v1.as_bytes()))
}

fn backoff_ms(cfg: &WebhookConfig, attempts_done: u32) -> u64 {
    let exp = attempts_done.saturating_sub(1).min(30);
    cfg.initial_backoff_ms
        .saturating_mul(1u64 << exp)
        .min(cfg.max_backoff_ms)
}

domain!(
    /// Webhooks, their events and the delivery of those events (see the module docs).
    Webhooks
);

impl Webhooks<'_> {
    /// Registers a webhook for the calling key (enroller or admin); the secret is
    /// returned once. The URL must pass the egress policy's registration check.
    pub async fn create_webhook(&self, p: &Principal, req: NewWebhook) -> Result<WebhookInfo> {
        p.check(Action::Enroll, None).map_err(|_| {
            CoreError::AccessDenied("registering a webhook needs an enroller or admin key".into())
        })?;
        let url = self.egress.check_url(&req.url)?.to_string();
        let events = match req.events {
            None => EVENTS.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            Some(e) if e.is_empty() => {
                return Err(CoreError::InvalidParameter(
                    "events must not be empty".into(),
                ))
            }
            Some(e) => {
                if let Some(bad) = e.iter().find(|x| !EVENTS.contains(&x.as_str())) {
                    return Err(CoreError::InvalidParameter(format!(
                        "unknown event `{bad}` (known: {})",
                        EVENTS.join(", ")
                    )));
                }
                e
            }
        };
        let existing = self.store().list_webhooks(&p.key_id).await?;
        if existing.len() >= self.config().webhooks.max_per_key {
            return Err(CoreError::InvalidParameter(format!(
                "a key may register at most {} webhooks",
                self.config().webhooks.max_per_key
            )));
        }
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        self.store()
            .insert_webhook(&WebhookRow {
                webhook_id: id.clone(),
                owner_key: p.key_id.clone(),
                url: url.clone(),
                secret: self
                    .transient_key
                    .seal(secret.as_bytes(), &webhook_secret_aad(&id)),
                events: serde_json::to_string(&events)
                    .map_err(CoreError::json("writing the event list"))?,
                created_ms: now,
                disabled_ms: None,
                consecutive_failures: 0,
                circuit_open_until_ms: None,
            })
            .await?;
        Ok(WebhookInfo {
            webhook_id: id,
            owner_key_id: p.key_id.clone(),
            url,
            events,
            created_at: rfc3339(now),
            secret: Some(secret),
            disabled_at: None,
            paused_until: None,
        })
    }

    /// The caller's webhooks; with `all_keys` (admins only), those of every key the
    /// caller oversees (an unlimited admin: all; a collection admin: its collection's
    /// keys), for incident response.
    pub async fn list_webhooks(&self, p: &Principal, all_keys: bool) -> Result<Vec<WebhookInfo>> {
        p.check(Action::Recognize, None)?;
        if !all_keys {
            return Ok(self
                .store()
                .list_webhooks(&p.key_id)
                .await?
                .into_iter()
                .map(webhook_info)
                .collect());
        }
        p.check(Action::ManageKeys, None)
            .map_err(|_| CoreError::AccessDenied("allKeys needs an admin key".into()))?;
        let mut out = Vec::new();
        for w in self.store().list_all_webhooks().await? {
            if self.may_see_owned(p, &w.owner_key).await? {
                out.push(webhook_info(w));
            }
        }
        Ok(out)
    }

    /// The webhook `id` (any UUID spelling) if `p` may see it: its registering key, that
    /// key's collection admins, unlimited admins.
    async fn owned_webhook(&self, p: &Principal, id: &str) -> Result<WebhookRow> {
        p.check(Action::Recognize, None)?;
        let missing = || CoreError::ResourceNotFound(format!("webhook `{id}` does not exist"));
        let canonical = crate::validate::canonical_uuid(id).ok_or_else(missing)?;
        let w = self
            .store()
            .get_webhook(&canonical)
            .await?
            .ok_or_else(missing)?;
        let owner = w.owner_key.clone();
        self.owned(p, &owner, None, w, missing).await
    }

    /// Deletes a webhook the caller may see (its registering key, that key's collection
    /// admins, unlimited admins) with all its deliveries. Errors: `ResourceNotFound` for
    /// an unknown id or one the caller may not see.
    pub async fn delete_webhook(&self, p: &Principal, id: &str) -> Result<()> {
        let w = self.owned_webhook(p, id).await?;
        self.store().delete_webhook(&w.webhook_id).await?;
        Ok(())
    }

    /// The latest deliveries of a webhook (newest first).
    pub async fn webhook_deliveries(&self, p: &Principal, id: &str) -> Result<Vec<DeliveryInfo>> {
        let w = self.owned_webhook(p, id).await?;
        Ok(self
            .store()
            .list_deliveries(&w.webhook_id, 100)
            .await?
            .into_iter()
            .map(|d| DeliveryInfo {
                status: if d.delivered_ms.is_some() {
                    DeliveryStatus::Delivered
                } else if d.failed_ms.is_some() {
                    DeliveryStatus::Failed
                } else {
                    DeliveryStatus::Pending
                },
                next_attempt_at: (d.delivered_ms.is_none() && d.failed_ms.is_none())
                    .then(|| rfc3339(d.next_attempt_ms)),
                delivery_id: d.delivery_id,
                event: d.event,
                attempts: d.attempts,
                last_error: d.last_error,
                created_at: rfc3339(d.created_ms),
            })
            .collect())
    }

    /// Queues `event` (about `subject`) for every enabled webhook of `owner_key` that
    /// subscribes to it.
    pub(crate) async fn emit_event<T: Serialize>(
        &self,
        owner_key: &str,
        event: &str,
        subject: &EventSubject,
        body: &T,
    ) -> Result<()> {
        let hooks = self.store().list_webhooks(owner_key).await?;
        self.enqueue(hooks, event, subject, body).await
    }

    /// Queues `event` about collection `collection` (identity `uid`) for the webhooks
    /// that subscribe to it of the calling key `caller` and of every key that manages
    /// the collection's enrolment data: admin and enroller keys limited to it (this
    /// identity, or its name and not yet bound) and unlimited admin and enroller keys.
    /// Face login events go this way: logins are made with recognizer keys, which
    /// cannot register webhooks.
    pub(crate) async fn emit_collection_event<T: Serialize>(
        &self,
        caller: &str,
        collection: &str,
        uid: &str,
        event: &str,
        subject: &EventSubject,
        body: &T,
    ) -> Result<()> {
        let mut hooks = Vec::new();
        for k in self.store().list_keys(None).await? {
            let manages = matches!(k.role.as_str(), "admin" | "enroller")
                && k.revoked_ms.is_none()
                && match (&k.collection_id, &k.scope_uid) {
                    (None, _) => true,
                    (Some(c), Some(u)) => c == collection && u == uid,
                    (Some(c), None) => c == collection,
                };
            if k.key_id == caller || manages {
                hooks.extend(self.store().list_webhooks(&k.key_id).await?);
            }
        }
        self.enqueue(hooks, event, subject, body).await
    }

    async fn enqueue<T: Serialize>(
        &self,
        hooks: Vec<WebhookRow>,
        event: &str,
        subject: &EventSubject,
        body: &T,
    ) -> Result<()> {
        let body =
            serde_json::to_string(body).map_err(CoreError::json("writing the event body"))?;
        let now = now_ms();
        let rows: Vec<DeliveryRow> = hooks
            .iter()
            .filter(|w| {
                w.disabled_ms.is_none()
                    && serde_json::from_str::<Vec<String>>(&w.events)
                        .map(|e| e.iter().any(|x| x == event))
                        .unwrap_or(false)
            })
            .map(|w| DeliveryRow {
                delivery_id: uuid::Uuid::new_v4().to_string(),
                webhook_id: w.webhook_id.clone(),
                event: event.into(),
                body: body.clone(),
                attempts: 0,
                next_attempt_ms: now,
                lease_until_ms: None,
                delivered_ms: None,
                failed_ms: None,
                last_error: None,
                created_ms: now,
                collection_id: subject.collection_id.clone(),
                user_id: subject.user_id.clone(),
                verification_id: subject.verification_id.clone(),
            })
            .collect();
        self.store().enqueue_deliveries(&rows).await?;
        metrics::counter!("honnin_webhook_events_total", "event" => event.to_string())
            .increment(rows.len() as u64);
        Ok(())
    }

    /// One dispatch round (see the module docs): claims the due deliveries that fit the
    /// free slots of `d` (global and per owning key), and starts each as its own task:
    /// sign, `send` (the server's HTTP client, which applies the egress policy),
    /// record the outcome and the webhook's circuit state. Returns at once with how many
    /// it started; the tasks hold their slots until they end.
    pub async fn dispatch_webhooks<F, Fut>(&self, d: &Dispatcher, send: F) -> Result<usize>
    where
        F: Fn(SignedRequest) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = SendResult> + Send + 'static,
    {
        let cfg = self.config().webhooks.clone();
        let free = d.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let now = now_ms();
        let lease = now + cfg.timeout_ms as i64 + 30_000;
        let per_owner = cfg.max_concurrent_per_owner.max(1);
        let mut planned: HashMap<String, usize> = HashMap::new();
        let mut taken = 0usize;
        let claimed = {
            let in_flight = d.per_owner.lock().clone();
            self.store()
                .claim_deliveries(
                    ClaimLimits {
                        now_ms: now,
                        lease_until_ms: lease,
                        limit: (free * 4).max(8) as i64,
                        per_owner: per_owner as i64,
                    },
                    |owner| {
                        let busy = in_flight.get(owner).copied().unwrap_or(0)
                            + planned.get(owner).copied().unwrap_or(0);
                        if taken >= free || busy >= per_owner {
                            return false;
                        }
                        taken += 1;
                        *planned.entry(owner.to_string()).or_default() += 1;
                        true
                    },
                )
                .await?
        };
        let started = claimed.len();
        for (delivery, owner) in claimed {
            let Ok(permit) = d.slots.clone().try_acquire_owned() else {
                // Cannot happen (claims never exceed the free slots); the lease expires
                // and another round takes it.
                continue;
            };
            let slot = OwnerSlot::take(d, &owner);
            let cx = self.cx.clone();
            let send = send.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _slot = slot;
                if let Err(e) = Webhooks::new(&cx).deliver_one(delivery, send).await {
                    tracing::warn!(error = %e, "webhook delivery attempt not recorded; its lease will expire and it is retried");
                }
            });
        }
        metrics::gauge!("honnin_webhook_deliveries_in_flight")
            .set((cfg.max_concurrent.max(1) - d.slots.available_permits()) as f64);
        Ok(started)
    }

    /// One attempt of one claimed delivery, recorded.
    async fn deliver_one<F, Fut>(&self, d: DeliveryRow, send: F) -> Result<()>
    where
        F: Fn(SignedRequest) -> Fut,
        Fut: Future<Output = SendResult>,
    {
        let cfg = self.config().webhooks.clone();
        let Some(hook) = self.store().get_webhook(&d.webhook_id).await? else {
            return Ok(());
        };
        let secret = self
            .transient_key
            .open(&hook.secret, &webhook_secret_aad(&hook.webhook_id))?;
        let t = now_ms() / 1000;
        let req = SignedRequest {
            url: hook.url.clone(),
            signature: sign(&secret, t, &d.body),
            body: d.body.clone(),
            event: d.event.clone(),
            delivery_id: d.delivery_id.clone(),
        };
        let result = send(req).await;
        let attempts = d.attempts as u32 + 1;
        let error = match &result {
            Ok(s) if (200..300).contains(s) => None,
            Ok(s) => Some(format!("HTTP {s}")),
            Err(f) => Some(f.reason().to_string()),
        };
        let now = now_ms();
        let outcome = match &error {
            None => {
                self.store()
                    .record_delivery_attempt(&d.delivery_id, DeliveryOutcome::Delivered, now)
                    .await?;
                "delivered"
            }
            Some(e) if attempts >= cfg.max_attempts => {
                self.store()
                    .record_delivery_attempt(
                        &d.delivery_id,
                        DeliveryOutcome::Failed { error: e },
                        now,
                    )
                    .await?;
                tracing::warn!(webhook = %hook.webhook_id, delivery = %d.delivery_id, error = %e, "webhook delivery given up");
                "failed"
            }
            Some(e) => {
                let next = now + backoff_ms(&cfg, attempts) as i64;
                self.store()
                    .record_delivery_attempt(
                        &d.delivery_id,
                        DeliveryOutcome::Retry {
                            next_attempt_ms: next,
                            error: e,
                        },
                        now,
                    )
                    .await?;
                "retried"
            }
        };
        let failures = self
            .store()
            .record_webhook_outcome(
                &hook.webhook_id,
                error.is_none(),
                now,
                cfg.circuit_failures as i64,
                cfg.circuit_cooldown_ms as i64,
                cfg.circuit_max_cooldown_ms as i64,
            )
            .await?;
        if failures == cfg.circuit_failures as i64 {
            tracing::warn!(webhook = %hook.webhook_id, failures, "webhook circuit opened: its deliveries wait");
            metrics::counter!("honnin_webhook_circuit_opened_total").increment(1);
        }
        metrics::counter!("honnin_webhook_deliveries_total", "outcome" => outcome).increment(1);
        Ok(())
    }
}

fn webhook_info(w: WebhookRow) -> WebhookInfo {
    WebhookInfo {
        owner_key_id: w.owner_key.clone(),
        events: serde_json::from_str(&w.events).unwrap_or_default(),
        webhook_id: w.webhook_id,
        url: w.url,
        created_at: rfc3339(w.created_ms),
        secret: None,
        disabled_at: w.disabled_ms.map(rfc3339),
        paused_until: w
            .circuit_open_until_ms
            .filter(|t| *t > now_ms())
            .map(rfc3339),
    }
}

/// The delivery slots of one server: a global cap and in-flight counts per owning key.
#[derive(Debug)]
pub struct Dispatcher {
    slots: Arc<Semaphore>,
    per_owner: Arc<Mutex<HashMap<String, usize>>>,
}

impl Dispatcher {
    /// Delivery slots for `cfg`: [`WebhookConfig::max_concurrent`] in all (at least 1);
    /// the per-owner cap is applied by the dispatch loop.
    pub fn new(cfg: &WebhookConfig) -> Dispatcher {
        Dispatcher {
            slots: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            per_owner: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Deliveries in flight now.
    pub fn in_flight(&self, owner: &str) -> usize {
        self.per_owner.lock().get(owner).copied().unwrap_or(0)
    }
}

/// One in-flight delivery of an owner, released when dropped.
struct OwnerSlot {
    map: Arc<Mutex<HashMap<String, usize>>>,
    owner: String,
}

impl OwnerSlot {
    fn take(d: &Dispatcher, owner: &str) -> OwnerSlot {
        *d.per_owner.lock().entry(owner.to_string()).or_default() += 1;
        OwnerSlot {
            map: d.per_owner.clone(),
            owner: owner.to_string(),
        }
    }
}

impl Drop for OwnerSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock();
        if let Some(n) = m.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_reject_tampering_and_replays() {
        let secret = b"whsec_test";
        let body = r#"{"event":"verification.completed"}"#;
        let h = sign(secret, 1_700_000_000, body);
        assert!(h.starts_with("t=1700000000,v1="));
        assert_eq!(h.len(), "t=1700000000,v1=".len() + 64);
        assert!(verify_signature(secret, &h, body, 1_700_000_010, 300));
        assert!(
            !verify_signature(secret, &h, "{}", 1_700_000_010, 300),
            "body changed"
        );
        assert!(
            !verify_signature(b"other", &h, body, 1_700_000_010, 300),
            "wrong secret"
        );
        assert!(
            !verify_signature(secret, &h, body, 1_700_000_400, 300),
            "too old"
        );
        assert!(!verify_signature(
            secret,
            "garbage",
            body,
            1_700_000_010,
            300
        ));
        // RFC 4231 test case 2 (HMAC-SHA256, key "Jefe").
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let cfg = WebhookConfig {
            initial_backoff_ms: 1_000,
            max_backoff_ms: 10_000,
            ..WebhookConfig::default()
        };
        let got: Vec<u64> = (1..=6).map(|a| backoff_ms(&cfg, a)).collect();
        assert_eq!(got, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
    }
}
