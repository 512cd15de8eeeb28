//! The service's tunables ([`ServiceConfig`], with documented defaults: see
//! `docs/configuration.md`), those of each domain (liveness, verification, webhooks:
//! below every domain, so the shared context can hold them) and the bounds on request
//! parameters.

use serde::{Deserialize, Serialize};

pub mod liveness;
pub mod login;
pub mod verification;
pub mod webhooks;

use crate::admission::AdmissionConfig;

/// Tunables of the service, with documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct ServiceConfig {
    /// Default search/verify threshold, as a false-match rate (1e-5 → similarity 70).
    pub match_fmr: f64,
    /// Threshold for associating a face with a user's other faces (1e-4 → 60).
    pub user_match_fmr: f64,
    /// Transient face ID lifetime when the caller gives none, seconds.
    pub face_id_ttl_default_secs: u64,
    /// Shortest transient face ID lifetime a caller may ask for, seconds (tests lower it).
    pub face_id_ttl_min_secs: u64,
    /// At most this many faces per user (Rekognition: 100).
    pub max_faces_per_user: usize,
    /// Smallest face `detect`/`index` look for, pixels.
    pub min_face_size: f32,
    /// How long deleted faces are remembered for other processes, seconds.
    pub tombstone_retention_secs: u64,
    /// Overlap of successive change polls, milliseconds (covers commit delays and clock skew).
    pub sync_margin_ms: i64,
    /// Bounds on concurrent engine work (CPU slots, queue, memory budget).
    pub admission: AdmissionConfig,
    /// Face Liveness sessions.
    pub liveness: liveness::LivenessConfig,
    /// Identity verifications (document → liveness → compare → duplicates → enrolment).
    pub verification: verification::VerificationConfig,
    /// Webhook delivery.
    pub webhooks: webhooks::WebhookConfig,
    /// Face login (profiles, levels, lock-out, assertions).
    pub login: login::LoginConfig,
    /// When a non-match is answered "retake" rather than "different person" (pose,
    /// face size, blur; see `honnin_engine::NonMatchLimits`).
    pub retake: honnin_engine::NonMatchLimits,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            match_fmr: 1e-5,
            user_match_fmr: 1e-4,
            face_id_ttl_default_secs: 86_400,
            face_id_ttl_min_secs: FACE_ID_TTL_MIN,
            max_faces_per_user: 100,
            min_face_size: 40.0,
            tombstone_retention_secs: 86_400,
            sync_margin_ms: 5_000,
            admission: AdmissionConfig::default(),
            liveness: liveness::LivenessConfig::default(),
            verification: verification::VerificationConfig::default(),
            webhooks: webhooks::WebhookConfig::default(),
            login: login::LoginConfig::default(),
            retake: honnin_engine::NonMatchLimits::default(),
        }
    }
}

// Bounds on request parameters (Rekognition's where they exist).

/// Shortest transient face ID lifetime (`faceIdTimeToLive`), seconds: 60, Azure Face's
/// minimum; the default of [`ServiceConfig::face_id_ttl_min_secs`].
pub const FACE_ID_TTL_MIN: u64 = 60;
/// Longest transient face ID lifetime a caller may ask for (`faceIdTimeToLive`), seconds:
/// 24 h, Azure Face's maximum.
pub const FACE_ID_TTL_MAX: u64 = 86_400;
/// Most matches one face search returns (`maxResults` 1–4096, Rekognition's
/// SearchFaces `MaxFaces` range); also the most index hits aggregated per user in a
/// user search or an identify.
pub const MAX_SEARCH_RESULTS: usize = 4_096;
/// Most face ids one delete takes (Rekognition's DeleteFaces: 1–4096).
pub const MAX_DELETE_FACES: usize = 4_096;
/// Most face ids one associate or disassociate takes (Rekognition's AssociateFaces:
/// 1–100).
pub const MAX_ASSOCIATE_FACES: usize = 100;
/// Most transient face IDs one group takes (2–1000, Azure Face's Group limit).
pub const MAX_GROUP_FACES: usize = 1_000;
/// Most transient face IDs one identify takes (1–10, Azure Face's Identify limit).
pub const MAX_IDENTIFY_FACES: usize = 10;
/// `maxUsers` of a user search: 1–500 (Rekognition's SearchUsers range), default 10.
pub const MAX_USERS: usize = 500;
/// `maxResults` of a listing (collections, faces, users) when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// Largest `maxResults` of `GET /v1/collections`.
pub const MAX_COLLECTIONS_PAGE: u32 = 1_000;
/// Largest `maxResults` of `GET /v1/collections/{id}/faces` (Rekognition's ListFaces: 4096).
pub const MAX_FACES_PAGE: u32 = 4_096;
/// Largest `maxResults` of `GET /v1/collections/{id}/users` (Rekognition's ListUsers: 500).
pub const MAX_USERS_PAGE: u32 = 500;
/// `maxUsers` when the caller gives none.
pub const DEFAULT_MAX_USERS: usize = 10;
/// Faces one image may yield (detect, index, compare's target): Rekognition's 100.
pub const MAX_FACES_PER_IMAGE: usize = 100;
