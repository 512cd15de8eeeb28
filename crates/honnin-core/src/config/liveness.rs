//! Face Liveness tunables ([`LivenessConfig`]), re-exported by [`crate::liveness`].

use serde::{Deserialize, Serialize};

/// Liveness tunables, with documented defaults (see `docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct LivenessConfig {
    /// A session must be streamed and finished within this time of its creation, seconds.
    pub session_ttl_secs: u64,
    /// Results metadata (no images) is kept this long after creation, seconds (48 h).
    pub results_retention_secs: u64,
    /// Unread images are deleted this long after the session finished, seconds.
    pub images_ttl_secs: u64,
    /// Sessions one `deviceCorrelationId` may create per hour (0: no limit).
    pub max_sessions_per_device_per_hour: u32,
    /// Sessions one API key may create per minute (0: no limit).
    pub max_sessions_per_key_per_minute: u32,
    /// Longest silence from the client during a stream, seconds.
    pub stream_idle_timeout_secs: u64,
}

impl Default for LivenessConfig {
    fn default() -> Self {
        LivenessConfig {
            session_ttl_secs: 180,
            results_retention_secs: 48 * 3600,
            images_ttl_secs: 180,
            max_sessions_per_device_per_hour: 30,
            max_sessions_per_key_per_minute: 600,
            stream_idle_timeout_secs: 20,
        }
    }
}
