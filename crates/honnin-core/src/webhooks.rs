//! Webhooks: URLs an API key registers to be told about events
//! (`verification.completed`), delivered at least once from an outbox in storage.
//!
//! An event is written to the outbox (one delivery per subscribed webhook) when it
//! happens; delivering never blocks the flow that produced it. A background task
//! ([`Service::deliver_webhooks`], with the HTTP client supplied by the server) claims due
//! deliveries with a lease, POSTs them signed, and retries failures with exponential
//! back-off. Any server of a deployment may deliver any event.
//!
//! Signature: header `Honnin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`. The receiver recomputes it with the secret it was given at
//! registration, compares in constant time, and rejects old timestamps (replays).

use std::future::Future;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::auth::{Action, Principal};
use crate::error::{CoreError, Result};
use crate::service::{now_ms, rfc3339, Service};
use honnin_storage::{DeliveryOutcome, DeliveryRow, WebhookRow};

/// The events a webhook can subscribe to.
pub const EVENTS: [&str; 1] = ["verification.completed"];

/// Webhook delivery tunables (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct WebhookConfig {
    /// Attempts before a delivery is given up.
    pub max_attempts: u32,
    /// First retry delay, milliseconds; doubles per attempt.
    pub initial_backoff_ms: u64,
    /// Longest retry delay, milliseconds.
    pub max_backoff_ms: u64,
    /// Time one attempt may take (connect + response), milliseconds.
    pub timeout_ms: u64,
    /// Delivered and failed deliveries are kept this long for inspection, seconds.
    pub retention_secs: u64,
    /// Webhooks one key may register.
    pub max_per_key: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 3_600_000,
            timeout_ms: 10_000,
            retention_secs: 7 * 86_400,
            max_per_key: 10,
        }
    }
}

/// `POST /v1/webhooks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewWebhook {
    /// `https://…` (or `http://…`) URL honnin POSTs events to.
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
    pub webhook_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// The signing secret: returned once, at registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// One delivery, for inspection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryInfo {
    pub delivery_id: String,
    pub event: String,
    /// pending | delivered | failed
    pub status: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: String,
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub url: String,
    pub body: String,
    /// The `Honnin-Signature` header value.
    pub signature: String,
    pub event: String,
    pub delivery_id: String,
}

/// What one send attempt returned: `Ok(status)` for an HTTP answer, `Err(message)` for
/// a transport failure (refused, timeout, TLS…).
pub type SendResult = std::result::Result<u16, String>;

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub delivered: u64,
    pub retried: u64,
    pub failed: u64,
}

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

fn aad(webhook_id: &str) -> Vec<u8> {
    format!("webhook:{webhook_id}:secret").into_bytes()
}

fn check_url(url: &str) -> Result<()> {
    let ok_scheme = url.starts_with("https://") || url.starts_with("http://");
    let host = url.split_once("://").map(|x| x.1).unwrap_or("");
    if !ok_scheme
        || url.len() > 2048
        || host.is_empty()
        || host.starts_with('/')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(CoreError::InvalidParameter(
            "url must be an absolute http:// or https:// URL (≤ 2048 characters)".into(),
        ));
    }
    Ok(())
}

fn backoff_ms(cfg: &WebhookConfig, attempts_done: u32) -> u64 {
    let exp = attempts_done.saturating_sub(1).min(30);
    cfg.initial_backoff_ms
        .saturating_mul(1u64 << exp)
        .min(cfg.max_backoff_ms)
}

impl Service {
    /// Registers a webhook for the calling key; the secret is returned once.
    pub async fn create_webhook(&self, p: &Principal, req: NewWebhook) -> Result<WebhookInfo> {
        p.check(Action::Recognize, None)?;
        check_url(&req.url)?;
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
                url: req.url.clone(),
                secret: self.transient_key.seal(secret.as_bytes(), &aad(&id)),
                events: serde_json::to_string(&events)
                    .map_err(|e| CoreError::Internal(e.to_string()))?,
                created_ms: now,
            })
            .await?;
        Ok(WebhookInfo {
            webhook_id: id,
            url: req.url,
            events,
            created_at: rfc3339(now),
            secret: Some(secret),
        })
    }

    pub async fn list_webhooks(&self, p: &Principal) -> Result<Vec<WebhookInfo>> {
        p.check(Action::Recognize, None)?;
        Ok(self
            .store()
            .list_webhooks(&p.key_id)
            .await?
            .into_iter()
            .map(|w| WebhookInfo {
                events: serde_json::from_str(&w.events).unwrap_or_default(),
                webhook_id: w.webhook_id,
                url: w.url,
                created_at: rfc3339(w.created_ms),
                secret: None,
            })
            .collect())
    }

    async fn owned_webhook(&self, p: &Principal, id: &str) -> Result<WebhookRow> {
        p.check(Action::Recognize, None)?;
        match self.store().get_webhook(id).await? {
            Some(w) if w.owner_key == p.key_id || p.role == crate::Role::Admin => Ok(w),
            _ => Err(CoreError::ResourceNotFound(format!(
                "webhook `{id}` does not exist"
            ))),
        }
    }

    pub async fn delete_webhook(&self, p: &Principal, id: &str) -> Result<()> {
        self.owned_webhook(p, id).await?;
        self.store().delete_webhook(id).await?;
        Ok(())
    }

    /// The latest deliveries of a webhook (newest first).
    pub async fn webhook_deliveries(&self, p: &Principal, id: &str) -> Result<Vec<DeliveryInfo>> {
        self.owned_webhook(p, id).await?;
        Ok(self
            .store()
            .list_deliveries(id, 100)
            .await?
            .into_iter()
            .map(|d| DeliveryInfo {
                status: if d.delivered_ms.is_some() {
                    "delivered"
                } else if d.failed_ms.is_some() {
                    "failed"
                } else {
                    "pending"
                }
                .into(),
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

    /// Queues `event` for every webhook of `owner_key` that subscribes to it.
    pub(crate) async fn emit_event<T: Serialize>(
        &self,
        owner_key: &str,
        event: &str,
        body: &T,
    ) -> Result<()> {
        let hooks = self.store().list_webhooks(owner_key).await?;
        let body = serde_json::to_string(body).map_err(|e| CoreError::Internal(e.to_string()))?;
        let now = now_ms();
        let rows: Vec<DeliveryRow> = hooks
            .iter()
            .filter(|w| {
                serde_json::from_str::<Vec<String>>(&w.events)
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
            })
            .collect();
        self.store().enqueue_deliveries(&rows).await?;
        metrics::counter!("honnin_webhook_events_total", "event" => event.to_string())
            .increment(rows.len() as u64);
        Ok(())
    }

    /// One delivery round: claims due deliveries, signs them, sends each with `send`
    /// (the server's HTTP client) and records the outcome. A 2xx answer is delivered;
    /// anything else is retried with back-off until `max_attempts`.
    pub async fn deliver_webhooks<F, Fut>(&self, send: F) -> Result<DeliveryReport>
    where
        F: Fn(SignedRequest) -> Fut,
        Fut: Future<Output = SendResult>,
    {
        let cfg = self.config().webhooks.clone();
        let now = now_ms();
        let lease = now + cfg.timeout_ms as i64 + 30_000;
        let due = self.store().claim_deliveries(now, lease, 32).await?;
        let mut report = DeliveryReport::default();
        for d in due {
            let Some(hook) = self.store().get_webhook(&d.webhook_id).await? else {
                continue;
            };
            let secret = self
                .transient_key
                .open(&hook.secret, &aad(&hook.webhook_id))?;
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
                Err(e) => Some(e.clone()),
            };
            let now = now_ms();
            match error {
                None => {
                    self.store()
                        .record_delivery_attempt(&d.delivery_id, DeliveryOutcome::Delivered, now)
                        .await?;
                    report.delivered += 1;
                }
                Some(e) if attempts >= cfg.max_attempts => {
                    self.store()
                        .record_delivery_attempt(
                            &d.delivery_id,
                            DeliveryOutcome::Failed { error: &e },
                            now,
                        )
                        .await?;
                    tracing::warn!(webhook = %hook.webhook_id, delivery = %d.delivery_id, error = %e, "webhook delivery given up");
                    report.failed += 1;
                }
                Some(e) => {
                    let next = now + backoff_ms(&cfg, attempts) as i64;
                    self.store()
                        .record_delivery_attempt(
                            &d.delivery_id,
                            DeliveryOutcome::Retry {
                                next_attempt_ms: next,
                                error: &e,
                            },
                            now,
                        )
                        .await?;
                    report.retried += 1;
                }
            }
        }
        metrics::counter!("honnin_webhook_deliveries_total", "outcome" => "delivered")
            .increment(report.delivered);
        metrics::counter!("honnin_webhook_deliveries_total", "outcome" => "retried")
            .increment(report.retried);
        metrics::counter!("honnin_webhook_deliveries_total", "outcome" => "failed")
            .increment(report.failed);
        Ok(report)
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

    #[test]
    fn urls_are_checked() {
        for ok in ["https://example.com/hook", "http://127.0.0.1:9/x"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ftp://x",
            "https://",
            "example.com",
            "https://a b",
            "https:///x",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
