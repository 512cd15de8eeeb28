//! What a finished session yields: the confidence, decision, reasons, every signal's
//! measurements and the captured images.

use honnin_engine::engine::RatioBox;
use honnin_engine::Template;
use serde::Serialize;

use crate::fusion::{Decision, SignalScore};
use crate::protocol::{OutcomeStatus, ServerMessage};

/// Why a signal failed (or why the session could not be analysed). Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reason {
    pub code: String,
    pub message: String,
}

impl Reason {
    pub fn new(code: &str) -> Reason {
        Reason {
            code: code.to_string(),
            message: reason_message(code).to_string(),
        }
    }
}

/// Stable reason codes.
pub mod reasons {
    pub const PASSIVE_SPOOF: &str = "PassiveSpoofDetected";
    pub const NO_LIGHT_REFLECTION: &str = "NoLightReflection";
    pub const UNIFORM_LIGHT_RESPONSE: &str = "UniformLightResponse";
    pub const LATE_LIGHT_RESPONSE: &str = "LateLightResponse";
    pub const INSUFFICIENT_LIGHT_DATA: &str = "InsufficientLightData";
    pub const SLOW_COLOR_ECHO: &str = "SlowColorEcho";
    pub const NO_APPROACH_MOVEMENT: &str = "NoApproachMovement";
    pub const DISCONTINUOUS_MOVEMENT: &str = "DiscontinuousMovement";
    pub const FACE_LOST: &str = "FaceLost";
    pub const OVAL_FIT_TIMEOUT: &str = "OvalFitTimeout";
    pub const MULTIPLE_FACES: &str = "MultipleFaces";
    pub const IDENTITY_CHANGED: &str = "IdentityChanged";
    pub const INSUFFICIENT_FACE_FRAMES: &str = "InsufficientFaceFrames";
    pub const NON_MONOTONIC_TIMESTAMPS: &str = "NonMonotonicTimestamps";
    pub const SYNTHETIC_TIMESTAMPS: &str = "SyntheticTimestamps";
    pub const IRREGULAR_FRAME_TIMING: &str = "IrregularFrameTiming";
    pub const STATIC_FRAMES: &str = "StaticFrames";
    pub const TOO_FEW_FRAMES: &str = "TooFewFrames";
    pub const LOW_FRAME_RATE: &str = "LowFrameRate";
    /// Status reasons of a `FAILED` session (besides the protocol error codes).
    pub const NO_FACE: &str = "NoFace";
    pub const SESSION_INCOMPLETE: &str = "SessionIncomplete";
}

/// The English text of a reason code.
pub fn reason_message(code: &str) -> &'static str {
    use reasons::*;
    match code {
        PASSIVE_SPOOF => "The passive presentation-attack model judged the face to be a reproduction (printed photo, screen or mask).",
        NO_LIGHT_REFLECTION => "The face did not reflect the sequence of screen colours.",
        UNIFORM_LIGHT_RESPONSE => "The background followed the screen colours as much as the face did (a screen, a print or a tinted video rather than a face in front of the display).",
        LATE_LIGHT_RESPONSE => "The face answered the screen colours too late or too early for a camera filming a real face (frames produced after the colours were known).",
        INSUFFICIENT_LIGHT_DATA => "Too few frames during the colour sequence to measure the reflection.",
        SLOW_COLOR_ECHO => "The client confirmed the colours unusually late.",
        NO_APPROACH_MOVEMENT => "The face did not move closer to the camera to fill the oval.",
        DISCONTINUOUS_MOVEMENT => "The face jumped between frames instead of moving continuously.",
        FACE_LOST => "No face was found in many frames after the face fitted the oval.",
        OVAL_FIT_TIMEOUT => "The face never fitted the oval in time.",
        MULTIPLE_FACES => "More than one face was visible during the session.",
        IDENTITY_CHANGED => "The face in the session did not stay the same person.",
        INSUFFICIENT_FACE_FRAMES => "Too few frames with a usable face to compare identities or run the passive check.",
        NON_MONOTONIC_TIMESTAMPS => "Frame timestamps went backwards or repeated (frames were rejected).",
        SYNTHETIC_TIMESTAMPS => "Frame timestamps were perfectly regular, as in a generated or injected stream.",
        IRREGULAR_FRAME_TIMING => "Frame timing was very irregular (long gaps or bursts).",
        STATIC_FRAMES => "Many frames were identical or nearly identical (a still image rather than a camera).",
        TOO_FEW_FRAMES => "Too few frames were received to analyse the session reliably.",
        LOW_FRAME_RATE => "The frame rate was below the minimum.",
        NO_FACE => "No face was found in the session.",
        SESSION_INCOMPLETE => "The session ended before the challenge was complete.",
        "InvalidMessage" => "The client sent an invalid message.",
        "ProtocolViolation" => "The client broke the protocol.",
        "FrameTooLarge" => "The client sent a frame over the size limit.",
        "InvalidFrame" => "The client sent a frame that is not a JPEG of the announced size.",
        "TooManyFrames" => "The client sent more frames than allowed.",
        "SessionExpired" => "The session expired.",
        "Timeout" => "The client went silent or never showed a face.",
        _ => "See the signals for details.",
    }
}

/// A frame kept for the results: the JPEG as the client sent it and the face in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedImage {
    /// JPEG bytes (not serialised here; the service encodes them as it needs).
    #[serde(skip)]
    pub jpeg: Vec<u8>,
    pub bounding_box: RatioBox,
    pub width: u32,
    pub height: u32,
    /// Capture time (ms, client clock).
    pub timestamp_ms: f64,
}

/// Passive presentation-attack model scores.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PadSignal {
    /// P(live) of each scored frame.
    pub frame_scores: Vec<f32>,
    pub median: f32,
    pub threshold: f32,
}

/// Light reflection measurements (light challenge only).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LightSignal {
    pub colors_displayed: usize,
    /// Frames inside the colour sequence at the best lag.
    pub frames_used: usize,
    /// Distinct colours those frames cover.
    pub colors_covered: usize,
    /// Pooled correlation of face colour with the displayed colour at the best lag.
    pub face_correlation: f64,
    /// Face response, levels per displayed level (0–255 scale).
    pub face_gain: f64,
    /// Background cells compared with the face (neither too dark nor clipping).
    pub background_cells: usize,
    /// Correlation and gain of those cells' mean response.
    pub background_correlation: f64,
    pub background_gain: f64,
    /// The face's response fitted as `a + b·level` over its sub-cells: the additive
    /// part's share at the face's mean level (≈ 0 for light reflected by a face, ≈ 1
    /// for glare or an additive tint; NaN when the face is too uniform to fit).
    pub face_additive_fraction: f64,
    /// The median over the background cells of their response over the response the
    /// face's model predicts at their level: ≈ 1 for any tint of the whole frame, a
    /// small fraction for a face lit by the screen (see `docs/liveness.md`).
    pub background_ratio: f64,
    /// Background gain over face gain, in levels (reported only).
    pub background_ratio_absolute: f64,
    /// The same, each per level of its own mean brightness (reported only).
    pub background_ratio_normalised: f64,
    /// Delay of the face response after `colorDisplayed` (ms, client clock).
    pub lag_ms: f64,
    /// 95th percentile of the best correlation with random colour sequences of the
    /// same timing (what chance alone reaches on these frames).
    pub null_correlation_p95: f64,
    /// The correlation this session had to reach: max(0.5, null p95 + 0.1).
    pub correlation_threshold: f64,
    /// Mean cosine between the face's chromaticity shift and each chromatic colour.
    pub chroma_agreement: f64,
    /// Median server time between sending a colour and its `colorDisplayed` (ms).
    pub color_echo_ms: f64,
}

/// Movement into the oval.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct MovementSignal {
    /// Median face-box width of the first detections (pixels).
    pub start_width: f64,
    /// Median face-box width once the face fitted the oval.
    pub fit_width: f64,
    /// `fit_width / start_width`.
    pub growth: f64,
    /// Inter-ocular distance over box width at the start and at the fit, and their
    /// ratio (a real head approaching the camera changes its proportions; a flat
    /// picture does not). Reported only: its reliability is not established.
    pub start_eye_ratio: f64,
    pub fit_eye_ratio: f64,
    pub perspective_change: f64,
    /// Consecutive detections whose face jumped (centre moved > 0.5 face widths or
    /// the width changed > 40 % within 500 ms).
    pub jumps: u32,
    pub detections: u32,
    /// Detections after the fit without a face.
    pub face_lost_fraction: f64,
    /// Detections with two faces of similar size.
    pub multiple_faces_fraction: f64,
    pub oval_fitted: bool,
    /// Client time from the first frame to the fit (ms).
    pub time_to_fit_ms: f64,
}

/// Identity across the session.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySignal {
    pub frames_compared: usize,
    /// The lowest pairwise similarity (0–100) among the compared frames.
    pub min_similarity: f32,
    /// The similarity threshold (from the calibration).
    pub threshold: f32,
}

/// The stream's own signals.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct StreamSignal {
    pub frames_received: u32,
    pub frames_accepted: u32,
    pub non_monotonic: u32,
    pub duration_ms: f64,
    pub fps: f64,
    pub interval_mean_ms: f64,
    pub interval_std_ms: f64,
    pub interval_cv: f64,
    pub max_gap_ms: f64,
    /// Frames byte-identical to the previous one.
    pub duplicate_frames: u32,
    /// Frames whose sampled luma differs from the previous frame's by less than the
    /// static threshold (includes duplicates).
    pub static_frames: u32,
    pub static_fraction: f64,
    pub median_frame_difference: f64,
}

/// Every measurement and score of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Signals {
    pub scores: Vec<SignalScore>,
    pub pad: Option<PadSignal>,
    pub light: Option<LightSignal>,
    pub movement: MovementSignal,
    pub identity: Option<IdentitySignal>,
    pub stream: StreamSignal,
}

/// The result of [`crate::LiveSession::finish`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivenessOutcome {
    pub status: OutcomeStatus,
    /// Why the session is `FAILED` (a protocol error code, `NoFace` or
    /// `SessionIncomplete`); `None` when it succeeded.
    pub status_reason: Option<String>,
    /// 0–100.
    pub confidence: f32,
    pub decision: Decision,
    /// Every failing signal, weakest first.
    pub reasons: Vec<Reason>,
    pub signals: Signals,
    pub reference_image: Option<CapturedImage>,
    pub audit_images: Vec<CapturedImage>,
    /// Template of the reference face, for liveness-with-verify.
    #[serde(skip)]
    pub reference_template: Option<Template>,
    pub frames_received: u32,
    /// Wall time of [`crate::LiveSession::finish`] (ms).
    pub analysis_ms: f64,
}

impl LivenessOutcome {
    /// An outcome for a session that could not be analysed.
    pub fn failed(code: &str, frames_received: u32) -> Self {
        Self {
            status: OutcomeStatus::Failed,
            status_reason: Some(code.to_string()),
            confidence: 0.0,
            decision: Decision::Uncertain,
            reasons: vec![Reason::new(code)],
            signals: Signals::default(),
            reference_image: None,
            audit_images: Vec::new(),
            reference_template: None,
            frames_received,
            analysis_ms: 0.0,
        }
    }

    /// The `complete` message the server sends the client.
    pub fn complete_message(&self) -> ServerMessage {
        ServerMessage::Complete {
            status: self.status,
            reason: self.status_reason.clone(),
        }
    }

    /// Whether a reason code is among the reasons.
    pub fn has_reason(&self, code: &str) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
}
