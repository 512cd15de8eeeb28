//! Webhook delivery tunables ([`WebhookConfig`]), re-exported by [`crate::webhooks`].

use serde::{Deserialize, Serialize};

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
    /// Time to establish the connection, milliseconds (a black hole costs this, not
    /// `timeout_ms`).
    pub connect_timeout_ms: u64,
    /// Delivered and failed deliveries are kept this long for inspection, seconds.
    pub retention_secs: u64,
    /// Webhooks one key may register.
    pub max_per_key: usize,
    /// Deliveries in flight at once, per server.
    pub max_concurrent: usize,
    /// Deliveries in flight at once for the webhooks of one key, per server.
    pub max_concurrent_per_owner: usize,
    /// Failed attempts in a row that open a webhook's circuit.
    pub circuit_failures: u32,
    /// How long an open circuit holds a webhook's deliveries, milliseconds; doubles per
    /// further failure.
    pub circuit_cooldown_ms: u64,
    /// Longest hold of an open circuit, milliseconds.
    pub circuit_max_cooldown_ms: u64,
    /// Allow `http://` URLs (default: https only).
    pub allow_http: bool,
    /// Allow deliveries to public addresses (default: true). With false, only
    /// `allowed_networks` is reachable, and names are not even resolved when it is empty.
    pub allow_public: bool,
    /// Networks (CIDRs, e.g. `10.20.0.0/16`, `127.0.0.1/32`) deliveries may reach
    /// although they are internal (loopback, private, link-local…).
    pub allowed_networks: Vec<String>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            max_attempts: 10,
            initial_backoff_ms: 1_000,
            max_backoff_ms: 3_600_000,
            timeout_ms: 10_000,
            connect_timeout_ms: 3_000,
            retention_secs: 7 * 86_400,
            max_per_key: 10,
            max_concurrent: 32,
            max_concurrent_per_owner: 4,
            circuit_failures: 5,
            circuit_cooldown_ms: 30_000,
            circuit_max_cooldown_ms: 3_600_000,
            allow_http: false,
            allow_public: true,
            allowed_networks: Vec::new(),
        }
    }
}
