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
    /// The stable code, one of [`reasons`] or a protocol error code (e.g. `Timeout`).
    pub code: String,
    /// The English explanation of the code ([`reason_message`]).
    pub message: String,
}

impl Reason {
    /// The reason with `code` and its English [`reason_message`].
    pub fn new(code: &str) -> Reason {
        Reason {
            code: code.to_string(),
            message: reason_message(code).to_string(),
        }
    }
}

/// Stable reason codes.
pub mod reasons {
    /// The passive PAD model's median P(live) is below `pad_hard_below` (signal `pad`). Hard (evidence of a presentation attack).
    pub const PASSIVE_SPOOF: &str = "PassiveSpoofDetected";
    /// The face colour does not follow the displayed colours (signal `lightCorrelation`). Hard (evidence of a presentation attack).
    pub const NO_LIGHT_REFLECTION: &str = "NoLightReflection";
    /// The background responds to the colours as much as the face (signal `lightLocality`). Hard (evidence of a presentation attack).
    pub const UNIFORM_LIGHT_RESPONSE: &str = "UniformLightResponse";
    /// The face responds outside the lag a camera can have (signal `lightLag`). Hard (evidence of a presentation attack).
    pub const LATE_LIGHT_RESPONSE: &str = "LateLightResponse";
    /// Too few frames or colours during the sequence to measure the reflection (signals
    /// `lightFrames`, `lightLocality`). Soft (missing evidence: on its own at most `uncertain`).
    pub const INSUFFICIENT_LIGHT_DATA: &str = "InsufficientLightData";
    /// The client's `colorDisplayed` confirmations came late (signal `colorEcho`). Soft (missing evidence: on its own at most `uncertain`).
    pub const SLOW_COLOR_ECHO: &str = "SlowColorEcho";
    /// The face box did not grow on the way into the oval (signal `approachMovement`). Soft (missing evidence: on its own at most `uncertain`).
    pub const NO_APPROACH_MOVEMENT: &str = "NoApproachMovement";
    /// The face jumped between detections (signal `continuity`). Soft (missing evidence: on its own at most `uncertain`).
    pub const DISCONTINUOUS_MOVEMENT: &str = "DiscontinuousMovement";
    /// No face in too many detections after the fit (signal `faceLost`). Soft (missing evidence: on its own at most `uncertain`).
    pub const FACE_LOST: &str = "FaceLost";
    /// The face never fitted the oval before `oval_fit_timeout` (signal `ovalFit`). Soft (missing evidence: on its own at most `uncertain`).
    pub const OVAL_FIT_TIMEOUT: &str = "OvalFitTimeout";
    /// A second face of similar size was seen in too many detections (signal `singleFace`). Soft (missing evidence: on its own at most `uncertain`).
    pub const MULTIPLE_FACES: &str = "MultipleFaces";
    /// Two frames' templates fell below the identity threshold: the person changed
    /// (signal `identity`). Hard (evidence of a presentation attack).
    pub const IDENTITY_CHANGED: &str = "IdentityChanged";
    /// Too few frames with a usable face: none for the PAD model (signal `pad`) or fewer
    /// than 3 templates for the identity check (signal `identity`). Soft (missing evidence: on its own at most `uncertain`).
    pub const INSUFFICIENT_FACE_FRAMES: &str = "InsufficientFaceFrames";
    /// Frame timestamps went backwards or repeated (signal `monotonicTimestamps`). Hard (evidence of a presentation attack).
    pub const NON_MONOTONIC_TIMESTAMPS: &str = "NonMonotonicTimestamps";
    /// Frame intervals are too regular for a real camera (signal `timestampJitter`). Hard (evidence of a presentation attack).
    pub const SYNTHETIC_TIMESTAMPS: &str = "SyntheticTimestamps";
    /// Frame intervals vary too much or have long gaps (signal `frameTimingRegularity`). Soft (missing evidence: on its own at most `uncertain`).
    pub const IRREGULAR_FRAME_TIMING: &str = "IrregularFrameTiming";
    /// Too many frames identical or nearly identical to the previous one (signal
    /// `staticFrames`). Hard (evidence of a presentation attack).
    pub const STATIC_FRAMES: &str = "StaticFrames";
    /// Too few accepted frames to analyse the session (signal `frameCount`). Soft (missing evidence: on its own at most `uncertain`).
    pub const TOO_FEW_FRAMES: &str = "TooFewFrames";
    /// The frame rate was below the minimum (signal `frameRate`). Soft (missing evidence: on its own at most `uncertain`).
    pub const LOW_FRAME_RATE: &str = "LowFrameRate";
    /// Status reasons of a `FAILED` session (besides the protocol error codes).
    ///
    /// `NoFace`: no face was found in the session.
    pub const NO_FACE: &str = "NoFace";
    /// Status reason: the session ended before the challenge was complete.
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
    /// The face box as ratios of the frame (0–1).
    pub bounding_box: RatioBox,
    /// Frame width in pixels (the announced video size).
    pub width: u32,
    /// Frame height in pixels (the announced video size).
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
    /// Median P(live) over the scored frames, 0–1: the value the `pad` signal scores.
    pub median: f32,
    /// P(live) below which the median is evidence of a presentation attack
    /// ([`crate::Thresholds::pad_hard_below`]).
    pub threshold: f32,
}

/// Light reflection measurements (light challenge only).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LightSignal {
    /// Colours the client confirmed with `colorDisplayed`.
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
    /// Background response, levels per displayed level (0–255 scale).
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
    /// Inter-ocular distance over box width once the face fitted the oval.
    pub fit_eye_ratio: f64,
    /// `fit_eye_ratio / start_eye_ratio`.
    pub perspective_change: f64,
    /// Consecutive detections whose face jumped (centre moved > 0.5 face widths or
    /// the width changed > 40 % within 500 ms).
    pub jumps: u32,
    /// Detections run during the session.
    pub detections: u32,
    /// Detections after the fit without a face.
    pub face_lost_fraction: f64,
    /// Detections with two faces of similar size.
    pub multiple_faces_fraction: f64,
    /// Whether the face fitted the oval (`FACE_IN_OVAL` was reached).
    pub oval_fitted: bool,
    /// Client time from the first frame to the fit (ms).
    pub time_to_fit_ms: f64,
}

/// Identity across the session.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct IdentitySignal {
    /// Frames whose templates were compared pairwise.
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
    /// Frames the client sent.
    pub frames_received: u32,
    /// Frames accepted into the recording (rejected ones, e.g. with a non-monotonic
    /// timestamp, are not).
    pub frames_accepted: u32,
    /// Frames whose timestamp was not after the previous frame's.
    pub non_monotonic: u32,
    /// Client time from the first to the last accepted frame, ms.
    pub duration_ms: f64,
    /// Frame rate over that span, frames per second.
    pub fps: f64,
    /// Mean interval between consecutive frames, ms.
    pub interval_mean_ms: f64,
    /// Standard deviation of those intervals, ms.
    pub interval_std_ms: f64,
    /// Coefficient of variation of the intervals (std / mean; 0 for a perfectly regular
    /// stream).
    pub interval_cv: f64,
    /// Longest interval between consecutive frames, ms.
    pub max_gap_ms: f64,
    /// Frames byte-identical to the previous one.
    pub duplicate_frames: u32,
    /// Frames whose sampled luma differs from the previous frame's by less than the
    /// static threshold (includes duplicates).
    pub static_frames: u32,
    /// `static_frames` over the number of consecutive frame pairs, 0–1.
    pub static_fraction: f64,
    /// Median mean-absolute luma difference between consecutive frames' sample grids,
    /// levels (0–255).
    pub median_frame_difference: f64,
}

/// Every measurement and score of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Signals {
    /// Every signal's score, in the order the analysis computed them.
    pub scores: Vec<SignalScore>,
    /// The passive PAD scores; `None` when no frame had a usable face.
    pub pad: Option<PadSignal>,
    /// The light-reflection measurements; `None` without the light challenge.
    pub light: Option<LightSignal>,
    /// The movement into the oval.
    pub movement: MovementSignal,
    /// The identity check; `None` when fewer than 3 frames had a template.
    pub identity: Option<IdentitySignal>,
    /// Frame timing and static-frame measurements.
    pub stream: StreamSignal,
}

/// The result of [`crate::LiveSession::finish`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivenessOutcome {
    /// Whether the session could be analysed (`SUCCEEDED`) or not (`FAILED`).
    pub status: OutcomeStatus,
    /// Why the session is `FAILED` (a protocol error code, `NoFace` or
    /// `SessionIncomplete`); `None` when it succeeded.
    pub status_reason: Option<String>,
    /// 0–100: the fused confidence (`100 · weakest signal score`); 0 when `FAILED`.
    pub confidence: f32,
    /// The verdict from `confidence`: `live`, `spoof` or `uncertain` (`uncertain` when
    /// `FAILED`).
    pub decision: Decision,
    /// Every failing signal, weakest first.
    pub reasons: Vec<Reason>,
    /// Every measurement and score behind the confidence.
    pub signals: Signals,
    /// The best stored frame (by face size, pose and sharpness, after the fit when
    /// possible), also the first PAD frame; `None` when no frame was stored.
    pub reference_image: Option<CapturedImage>,
    /// Further frames spread over the session, for audit: at most
    /// [`crate::SessionSettings::audit_images_limit`] (0–4).
    pub audit_images: Vec<CapturedImage>,
    /// Template of the reference face, for liveness-with-verify and face login.
    #[serde(skip)]
    pub reference_template: Option<Template>,
    /// The reference face as detected (pose, quality), for face login's enrolment gates.
    #[serde(skip)]
    pub reference_face: Option<honnin_engine::Face>,
    /// Frames the client sent.
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
            reference_face: None,
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
