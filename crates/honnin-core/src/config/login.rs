//! Face login tunables ([`LoginConfig`]), re-exported by [`crate::login`].

use serde::{Deserialize, Serialize};

/// Face login tunables, with documented defaults (see `docs/login.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct LoginConfig {
    /// The false-accept rate per attempt of each security level (`low`, `standard`,
    /// `high`): the probability that one attempt by an impostor is accepted. Defaults
    /// 1e-4, 1e-5 (Windows Hello's stated FAR < 0.001 %) and 1e-6.
    pub levels: LevelTargets,
    /// The level a login uses when it names none.
    pub default_level: String,
    /// Smallest liveness confidence (0–100) a login or an enrolment accepts; 50 is the
    /// liveness engine's own `live` threshold (`honnin_liveness::LIVE_THRESHOLD`).
    pub min_liveness_confidence: f32,
    /// A liveness session must have finished at most this long before it is used,
    /// seconds (the person was in front of the camera just now).
    pub max_session_age_secs: u64,
    /// Templates one profile may hold (several looks: glasses, light).
    pub max_templates_per_profile: usize,
    /// Enrolment quality gates: largest |yaw| and |pitch| of the enrolled face, degrees.
    pub max_enrol_pose_deg: f32,
    /// Consecutive failures after which a user (or client) is locked out.
    pub max_failures: u32,
    /// First lock-out, seconds; each further lock-out (without a success or unlock in
    /// between) doubles it, up to [`LoginConfig::max_lockout_secs`].
    pub lockout_secs: u64,
    /// Longest lock-out, seconds.
    pub max_lockout_secs: u64,
    /// How long login attempt records are kept, seconds (30 days).
    pub attempts_retention_secs: u64,
    /// The issuer (`iss`) of assertions and ID tokens and the OpenID Connect provider's
    /// URL, e.g. `https://login.example.com`. Empty: assertions say `urn:honnin`, and the
    /// provider works only on a loopback host (`http://<Host>`: a local trial).
    pub issuer: String,
    /// How long a login assertion is valid, seconds.
    pub assertion_ttl_secs: u64,
    /// A signing key signs for this long before the next is made, seconds (30 days).
    pub key_rotation_secs: u64,
}

/// Target false-accept rate per attempt of each security level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct LevelTargets {
    /// `low`: 1e-4.
    pub low: f64,
    /// `standard`: 1e-5.
    pub standard: f64,
    /// `high`: 1e-6.
    pub high: f64,
}

impl Default for LevelTargets {
    fn default() -> Self {
        LevelTargets {
            low: 1e-4,
            standard: 1e-5,
            high: 1e-6,
        }
    }
}

impl LoginConfig {
    /// Checks the values against each other (the server refuses to start otherwise):
    /// every level's target in (0, 1], a known `default_level`, positive lifetimes and
    /// sizes, and `max_session_age_secs` within `images_ttl_secs` of the liveness
    /// configuration (the live face a login uses is cleared with the images).
    pub fn validate(&self, images_ttl_secs: u64) -> Result<(), String> {
        for (name, t) in [
            ("low", self.levels.low),
            ("standard", self.levels.standard),
            ("high", self.levels.high),
        ] {
            if !(t > 0.0 && t <= 1.0) {
                return Err(format!("login.levels.{name} must be in (0, 1], not {t}"));
            }
        }
        if !["low", "standard", "high"].contains(&self.default_level.as_str()) {
            return Err(format!(
                "login.default_level must be low, standard or high, not `{}`",
                self.default_level
            ));
        }
        if self.max_templates_per_profile == 0
            || self.assertion_ttl_secs == 0
            || self.key_rotation_secs == 0
            || self.max_session_age_secs == 0
        {
            return Err("login: max_templates_per_profile, assertion_ttl_secs, \
                        key_rotation_secs and max_session_age_secs must be positive"
                .into());
        }
        if self.max_session_age_secs > images_ttl_secs {
            return Err(format!(
                "login.max_session_age_secs ({}) must not exceed liveness.images_ttl_secs ({}): \
                 a session's live face is cleared with its images",
                self.max_session_age_secs, images_ttl_secs
            ));
        }
        Ok(())
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            levels: LevelTargets::default(),
            default_level: "standard".into(),
            min_liveness_confidence: 50.0,
            max_session_age_secs: 120,
            max_templates_per_profile: 10,
            max_enrol_pose_deg: 15.0,
            max_failures: 5,
            lockout_secs: 60,
            max_lockout_secs: 3_600,
            attempts_retention_secs: 30 * 86_400,
            issuer: String::new(),
            assertion_ttl_secs: 300,
            key_rotation_secs: 30 * 86_400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(LoginConfig::default().validate(180), Ok(()));
        let mut c = LoginConfig::default();
        c.levels.high = 0.0;
        assert!(c.validate(180).unwrap_err().contains("levels.high"));
        let c = LoginConfig {
            default_level: "medium".into(),
            ..LoginConfig::default()
        };
        assert!(c.validate(180).unwrap_err().contains("default_level"));
        let c = LoginConfig::default();
        assert!(c.validate(60).unwrap_err().contains("images_ttl_secs"));
        let c = LoginConfig {
            key_rotation_secs: 0,
            ..LoginConfig::default()
        };
        assert!(c.validate(180).is_err());
    }
}
