//! The wire protocol of a liveness session (version 1), as Rust types.
//!
//! `docs/liveness-protocol.md` is the specification; this module is its executable
//! form. Text messages are JSON objects tagged by `"type"`; frames are binary messages
//! of an 8-byte little-endian `f64` capture timestamp (milliseconds, client clock)
//! followed by one JPEG image.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The challenge a session runs (names as in Rekognition's `ChallengePreferences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ChallengeKind {
    /// Move into the oval, then a sequence of screen colours lights the face.
    #[default]
    FaceMovementAndLightChallenge,
    /// Move into the oval only (no colours); weaker against screen replays.
    FaceMovementChallenge,
}

impl ChallengeKind {
    /// Whether the challenge lights the face with a colour sequence.
    pub fn has_light(self) -> bool {
        matches!(self, ChallengeKind::FaceMovementAndLightChallenge)
    }
}

/// Version of the protocol this module implements.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest text message accepted (bytes); longer ones are `InvalidMessage`.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// Bytes of the timestamp that starts every binary frame.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Stable error codes of [`ProtocolError`] (see the protocol document, section 3).
pub mod codes {
    /// Not JSON, an unknown type, a missing field, a text message over 16 KiB, a
    /// non-finite `t`, or a `video` side outside 160–1920 pixels.
    pub const INVALID_MESSAGE: &str = "InvalidMessage";
    /// A message out of order (a frame before `challenge`, a second `start`, `end`
    /// before `stop`, …) or a `colorDisplayed` that does not echo the last colour.
    pub const PROTOCOL_VIOLATION: &str = "ProtocolViolation";
    /// A frame's JPEG is over the size limit (default 512 KiB).
    pub const FRAME_TOO_LARGE: &str = "FrameTooLarge";
    /// A frame that is not a JPEG of the announced size, a truncated JPEG, or a
    /// non-finite timestamp.
    pub const INVALID_FRAME: &str = "InvalidFrame";
    /// More frames than the session accepts (default 900).
    pub const TOO_MANY_FRAMES: &str = "TooManyFrames";
    /// The session's lifetime ended.
    pub const SESSION_EXPIRED: &str = "SessionExpired";
    /// The client went silent, never showed a face before the oval-fit timeout, or did not
    /// confirm a colour or send `end` in time.
    pub const TIMEOUT: &str = "Timeout";
}

/// A fatal protocol error: the server sends [`ServerMessage::Error`] with it and closes
/// the socket; the session is `FAILED`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    /// One of [`codes`]; never renamed.
    pub code: &'static str,
    /// What went wrong, in English (sent to the client).
    pub message: String,
}

impl ProtocolError {
    /// An error with `code` (one of [`codes`]) and `message`.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
    /// An [`codes::INVALID_MESSAGE`] error.
    pub fn invalid_message(m: impl Into<String>) -> Self {
        Self::new(codes::INVALID_MESSAGE, m)
    }
    /// A [`codes::PROTOCOL_VIOLATION`] error.
    pub fn violation(m: impl Into<String>) -> Self {
        Self::new(codes::PROTOCOL_VIOLATION, m)
    }
    /// An [`codes::INVALID_FRAME`] error.
    pub fn invalid_frame(m: impl Into<String>) -> Self {
        Self::new(codes::INVALID_FRAME, m)
    }
    /// A [`codes::TIMEOUT`] error.
    pub fn timeout(m: impl Into<String>) -> Self {
        Self::new(codes::TIMEOUT, m)
    }
    /// The message the server sends for this error.
    pub fn to_message(&self) -> ServerMessage {
        ServerMessage::Error {
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}

/// Pixel size of the video (every frame must have exactly this size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSize {
    /// Width in pixels (160–1920 by default).
    pub width: u32,
    /// Height in pixels (160–1920 by default).
    pub height: u32,
}

/// Free-text identification of the capture client (logged, never trusted).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    /// The client's name (free text; empty when not sent).
    #[serde(default)]
    pub name: String,
    /// The client's version (free text; empty when not sent).
    #[serde(default)]
    pub version: String,
}

/// The camera the client uses (free text).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CameraInfo {
    /// The camera's label as the browser reports it (free text; empty when not sent).
    #[serde(default)]
    pub label: String,
}

/// Client → server text messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// First message, exactly once.
    Start {
        /// The pixel size every frame will have.
        video: VideoSize,
        /// Who the capture client says it is.
        client: ClientInfo,
        /// The camera in use, when the client names it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        camera: Option<CameraInfo>,
    },
    /// The face fits the oval (sent after the server's `FACE_IN_OVAL` guidance).
    FaceInOval {
        /// When the client saw the guidance, ms on the client clock.
        t: f64,
    },
    /// Colour `seq` was painted full-screen at client time `t`.
    ColorDisplayed {
        /// The colour's index in the sequence (0, 1, …), as received in `color`.
        seq: u32,
        /// The colour as received, RGB 0–255.
        rgb: [u8; 3],
        /// When it was painted (the first animation frame after setting it), ms on the
        /// client clock; never before the previous colour's `t`.
        t: f64,
    },
    /// The client stopped capturing (after `stop`).
    End {
        /// When capture stopped, ms on the client clock.
        t: f64,
    },
}

impl ClientMessage {
    /// Parses one text message; anything but a known, complete message is `InvalidMessage`.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        if text.len() > MAX_TEXT_BYTES {
            return Err(ProtocolError::invalid_message(format!(
                "text message of {} bytes; the limit is {MAX_TEXT_BYTES}",
                text.len()
            )));
        }
        serde_json::from_str(text)
            .map_err(|e| ProtocolError::invalid_message(format!("not a valid message: {e}")))
    }
}

/// The oval the face must fill, in video pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Oval {
    /// x of the oval's centre, video pixels (randomised per session).
    pub center_x: f32,
    /// y of the oval's centre, video pixels (randomised per session).
    pub center_y: f32,
    /// Width of the oval, video pixels.
    pub width: f32,
    /// Height of the oval, video pixels (≈ 1.618 × width).
    pub height: f32,
}

/// When a face counts as fitting the oval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaceFit {
    /// Face-box width over oval width: lower bound.
    pub min_width_ratio: f32,
    /// Face-box width over oval width: upper bound.
    pub max_width_ratio: f32,
    /// Largest distance of the face centre from the oval centre, in oval widths.
    pub max_center_offset: f32,
}

/// A face box in video pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaceBox {
    /// x of the box's left edge, video pixels.
    pub left: f32,
    /// y of the box's top edge, video pixels.
    pub top: f32,
    /// Box width, video pixels.
    pub width: f32,
    /// Box height, video pixels.
    pub height: f32,
}

impl From<honnin_engine::geometry::Rect> for FaceBox {
    fn from(r: honnin_engine::geometry::Rect) -> Self {
        Self {
            left: r.left,
            top: r.top,
            width: r.width,
            height: r.height,
        }
    }
}

/// Advice shown to the user while they fit their face into the oval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GuidanceCode {
    /// No face is visible.
    NoFace,
    /// More than one face of similar size is visible.
    MultipleFaces,
    /// The face is too small for the oval.
    MoveCloser,
    /// The face is too large for the oval.
    TooClose,
    /// The face is off the oval's centre.
    CenterFace,
    /// The face fits but has not yet fitted on enough consecutive detections (default 3).
    HoldStill,
    /// The face fits: the client answers with `faceInOval`.
    FaceInOval,
}

impl GuidanceCode {
    /// The English text sent with the code.
    pub fn message(self) -> &'static str {
        match self {
            GuidanceCode::NoFace => "No face found. Look at the camera.",
            GuidanceCode::MultipleFaces => {
                "More than one face is visible. Only you should be in view."
            }
            GuidanceCode::MoveCloser => "Move closer.",
            GuidanceCode::TooClose => "Move back a little.",
            GuidanceCode::CenterFace => "Center your face in the oval.",
            GuidanceCode::HoldStill => "Hold still.",
            GuidanceCode::FaceInOval => "Face in the oval. Hold still.",
        }
    }
}

/// Final status of a session as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutcomeStatus {
    /// The analysis ran (it says nothing about live or spoof).
    Succeeded,
    /// The session could not be analysed.
    Failed,
}

/// Server → client text messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// The answer to `start`.
    Challenge {
        /// The challenge this session runs.
        challenge_type: ChallengeKind,
        /// The video size, echoed from `start`.
        video: VideoSize,
        /// The oval the face must fill, video pixels.
        oval: Oval,
        /// When the face counts as fitting the oval.
        face_fit: FaceFit,
        /// Time allowed to fit the oval, ms (default 8000).
        oval_fit_timeout_ms: u64,
        /// How many `color` messages will come (0 without the light challenge; default 8).
        color_count: u32,
        /// The frame rate the client must at least send, frames per second (default 10).
        min_frame_rate: f32,
    },
    /// Advice while the face is fitted into the oval, sent when it changes (oval phase only).
    Guidance {
        /// What the user should do.
        code: GuidanceCode,
        /// The code's English text ([`GuidanceCode::message`]).
        message: String,
        /// The face the server sees, video pixels; `None` when it sees none.
        face: Option<FaceBox>,
    },
    /// One colour of the sequence.
    Color {
        /// The colour's index in the sequence (0, 1, …).
        seq: u32,
        /// The colour to paint full-screen, RGB, each channel 0 or 255.
        rgb: [u8; 3],
        /// How long the server keeps this colour current, ms (default 350–600).
        duration_ms: u32,
    },
    /// Capture is over: stop sending frames and send `end`.
    Stop,
    /// The analysis is done; the socket closes after it.
    Complete {
        /// Whether the session could be analysed; never the decision.
        status: OutcomeStatus,
        /// Why the session `FAILED` (a reason or error code); absent when it succeeded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A fatal protocol error; the socket closes after it.
    Error {
        /// The stable error code, one of [`codes`].
        code: String,
        /// What went wrong, in English.
        message: String,
    },
}

impl ServerMessage {
    /// The JSON text of the message.
    pub fn to_json(&self) -> String {
        // Serialising these plain types cannot fail (no maps with non-string keys, no
        // non-finite floats are produced by the session).
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"stop\"}"))
    }
}

/// Splits a binary frame into its capture timestamp (ms, client clock) and JPEG bytes.
///
/// Checks only the framing: at least one byte after the header, a finite timestamp and
/// the JPEG start-of-image marker. Size limits and decoding are the session's job.
pub fn parse_frame(bytes: &[u8]) -> Result<(f64, &[u8]), ProtocolError> {
    let (Some(head), Some(jpeg)) = (
        bytes.get(..FRAME_HEADER_BYTES),
        bytes.get(FRAME_HEADER_BYTES..),
    ) else {
        return Err(ProtocolError::invalid_frame(format!(
            "a frame is an 8-byte timestamp followed by a JPEG; got {} bytes",
            bytes.len()
        )));
    };
    let mut ts = [0u8; 8];
    ts.copy_from_slice(head);
    let t = f64::from_le_bytes(ts);
    if !t.is_finite() {
        return Err(ProtocolError::invalid_frame(
            "the frame timestamp is not a finite number",
        ));
    }
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return Err(ProtocolError::invalid_frame(
            "the frame payload is not a JPEG image",
        ));
    }
    Ok((t, jpeg))
}

/// Builds a binary frame (clients, the simulator and tests).
pub fn encode_frame(t_ms: f64, jpeg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + jpeg.len());
    out.extend_from_slice(&t_ms.to_le_bytes());
    out.extend_from_slice(jpeg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_from_the_documented_json() {
        let m = ClientMessage::parse(
            r#"{"type":"start","video":{"width":640,"height":480},"client":{"name":"x","version":"1"}}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ClientMessage::Start {
                video: VideoSize {
                    width: 640,
                    height: 480
                },
                client: ClientInfo {
                    name: "x".into(),
                    version: "1".into()
                },
                camera: None
            }
        );
        let m =
            ClientMessage::parse(r#"{"type":"colorDisplayed","seq":2,"rgb":[255,0,0],"t":12.5}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::ColorDisplayed {
                seq: 2,
                rgb: [255, 0, 0],
                t: 12.5
            }
        );
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"faceInOval","t":1}"#),
            Ok(ClientMessage::FaceInOval { .. })
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"type":"end","t":1}"#),
            Ok(ClientMessage::End { .. })
        ));
        for bad in [
            "not json",
            r#"{"type":"hello"}"#,
            r#"{"type":"faceInOval"}"#,
            r#"{"type":"colorDisplayed","seq":-1,"rgb":[0,0,0],"t":1}"#,
            r#"{"type":"colorDisplayed","seq":1,"rgb":[300,0,0],"t":1}"#,
        ] {
            let e = ClientMessage::parse(bad).unwrap_err();
            assert_eq!(e.code, codes::INVALID_MESSAGE, "{bad}");
        }
    }

    #[test]
    fn server_messages_serialise_in_camel_case_with_a_type_tag() {
        let m = ServerMessage::Color {
            seq: 1,
            rgb: [0, 255, 0],
            duration_ms: 400,
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            serde_json::json!({"type":"color","seq":1,"rgb":[0,255,0],"durationMs":400})
        );
        let g = ServerMessage::Guidance {
            code: GuidanceCode::MoveCloser,
            message: "m".into(),
            face: None,
        };
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            serde_json::json!({"type":"guidance","code":"MOVE_CLOSER","message":"m","face":null})
        );
        let c = ServerMessage::Complete {
            status: OutcomeStatus::Succeeded,
            reason: None,
        };
        assert_eq!(c.to_json(), r#"{"type":"complete","status":"SUCCEEDED"}"#);
        assert_eq!(ServerMessage::Stop.to_json(), r#"{"type":"stop"}"#);
    }

    #[test]
    fn frames_round_trip_and_bad_frames_are_rejected() {
        let f = encode_frame(1234.5, &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
        let (t, j) = parse_frame(&f).unwrap();
        assert_eq!(t, 1234.5);
        assert_eq!(j, &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2]);
        assert_eq!(parse_frame(&f[..5]).unwrap_err().code, codes::INVALID_FRAME);
        assert_eq!(
            parse_frame(&encode_frame(f64::NAN, &[0xFF, 0xD8, 0, 0]))
                .unwrap_err()
                .code,
            codes::INVALID_FRAME
        );
        assert_eq!(
            parse_frame(&encode_frame(1.0, b"\x89PNG...."))
                .unwrap_err()
                .code,
            codes::INVALID_FRAME
        );
    }
}
