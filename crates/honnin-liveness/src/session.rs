//! [`LiveSession`]: the sans-IO state machine of one liveness session.
//!
//! The transport (the WebSocket route) feeds it text messages, binary frames and timer
//! ticks with the current [`Instant`], and sends whatever [`ServerMessage`]s it returns.
//! It never reads a clock itself (only to time its own analysis), so the simulator and
//! the tests drive it with a simulated clock.

use std::time::{Duration, Instant};

use honnin_engine::geometry::Rect;
use honnin_engine::{DetectOptions, Face};
use rand::rngs::StdRng;

pub use crate::analysis::Analyzers;
use crate::analysis::{
    self, ColorEvent, DetectionRecord, FaceInfo, FrameRecord, PhaseTag, Recording, StoredFrame,
    Thresholds,
};
use crate::challenge::{self, ChallengeKind, ColorStep, FACE_FIT};
use crate::frame;
use crate::outcome::{reasons, LivenessOutcome};
use crate::protocol::{
    codes, parse_frame, ClientMessage, FaceBox, FaceFit, GuidanceCode, Oval, ProtocolError,
    ServerMessage, VideoSize, FRAME_HEADER_BYTES,
};

/// Per-session settings. Every field has a documented default.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSettings {
    /// The challenge to run (default: movement and light).
    pub challenge: ChallengeKind,
    /// Frames returned besides the reference image, 0–4 (default 0).
    pub audit_images_limit: u8,
    /// Frames accepted per session before `TooManyFrames` (default 900: 60 s at 15 fps).
    pub max_frames: u32,
    /// Largest JPEG in a frame, bytes (default 512 KiB).
    pub max_frame_bytes: usize,
    /// Time to fit the oval after `challenge` (default 8 s).
    pub oval_fit_timeout: Duration,
    /// Colours in the sequence (default 8).
    pub color_count: u32,
    /// Shortest and longest colour duration, ms (default 350 and 600).
    pub color_min_ms: u32,
    /// The longest colour duration, ms (default 600).
    pub color_max_ms: u32,
    /// Capture after the fit without the light challenge (default 1.5 s).
    pub movement_capture: Duration,
    /// Frame rate the client is asked for at least (default 10 fps).
    pub min_frame_rate: f32,
    /// Least client time between two detections (default 150 ms; detection is the
    /// costly step, the per-frame colour statistics use the latest face box).
    pub detect_interval_ms: f64,
    /// The client is silent for this long → `Timeout` (default 10 s).
    pub idle_timeout: Duration,
    /// `colorDisplayed` or `end` later than this after the server's message →
    /// `Timeout` (default 5 s).
    pub response_timeout: Duration,
    /// Accepted video sizes: each side in `[min_video_side, max_video_side]`
    /// (default 160–1920).
    pub min_video_side: u32,
    /// The longest accepted side of the video, pixels (default 1920).
    pub max_video_side: u32,
    /// Frames kept (JPEG + face) for the final analysis and result images (default 40;
    /// older ones are thinned out evenly).
    pub max_stored_frames: usize,
    /// Consecutive fitting detections before `FACE_IN_OVAL` (default 3).
    pub fit_detections: u32,
    /// The decision thresholds of the final analysis (default [`Thresholds::default`]).
    pub thresholds: Thresholds,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            challenge: ChallengeKind::default(),
            audit_images_limit: 0,
            max_frames: 900,
            max_frame_bytes: 512 * 1024,
            oval_fit_timeout: Duration::from_secs(8),
            color_count: 8,
            color_min_ms: 350,
            color_max_ms: 600,
            movement_capture: Duration::from_millis(1500),
            min_frame_rate: 10.0,
            detect_interval_ms: 150.0,
            idle_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(5),
            min_video_side: 160,
            max_video_side: 1920,
            max_stored_frames: 40,
            fit_detections: 3,
            thresholds: Thresholds::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    AwaitStart,
    OvalFit {
        deadline: Instant,
    },
    Colors {
        index: usize,
        sent_at: Instant,
        displayed_at: Option<Instant>,
    },
    Movement {
        until: Instant,
    },
    Stopped {
        at: Instant,
    },
    Ended,
    Failed,
}

/// Guidance state during the oval phase.
#[derive(Debug, Default)]
struct GuidanceState {
    last_code: Option<GuidanceCode>,
    last_sent: Option<Instant>,
    consecutive_fit: u32,
    face_in_oval_sent: bool,
    prev_box: Option<(f64, Rect)>,
}

/// Least time between two guidance messages (≤ 5 per second).
const GUIDANCE_MIN_INTERVAL: Duration = Duration::from_millis(200);
/// A guidance message is repeated (with the current face box) at least this often.
const GUIDANCE_REPEAT: Duration = Duration::from_millis(1000);
/// A face box older than this (client ms) is not used for the colour statistics.
const BOX_MAX_AGE_MS: f64 = 600.0;

/// One liveness session. `Send`; not shared between threads (the transport owns it).
pub struct LiveSession {
    analyzers: Analyzers,
    settings: SessionSettings,
    seed: u64,
    rng: StdRng,
    phase: Phase,
    last_activity: Option<Instant>,
    video: Option<VideoSize>,
    oval: Option<Oval>,
    colors: Vec<ColorStep>,
    // Recording.
    frames: Vec<FrameRecord>,
    frames_received: u32,
    non_monotonic: u32,
    last_t: Option<f64>,
    last_grid: Option<Vec<u8>>,
    detections: Vec<DetectionRecord>,
    stored: Vec<StoredFrame>,
    store_every: usize,
    detections_with_face: usize,
    last_detect: Option<(f64, Instant)>,
    current_box: Option<(f64, Rect)>,
    face_seen: bool,
    color_events: Vec<ColorEvent>,
    oval_fitted: bool,
    oval_timed_out: bool,
    late_fit_ignored: bool,
    fit_t: Option<f64>,
    guidance: GuidanceState,
    error: Option<ProtocolError>,
}

impl LiveSession {
    /// A new session; `rng_seed` draws the colour sequence and the oval's jitter (the
    /// server passes a fresh random seed).
    pub fn new(analyzers: Analyzers, settings: SessionSettings, rng_seed: u64) -> Self {
        Self {
            analyzers,
            settings,
            seed: rng_seed,
            rng: challenge::rng(rng_seed),
            phase: Phase::AwaitStart,
            last_activity: None,
            video: None,
            oval: None,
            colors: Vec::new(),
            frames: Vec::new(),
            frames_received: 0,
            non_monotonic: 0,
            last_t: None,
            last_grid: None,
            detections: Vec::new(),
            stored: Vec::new(),
            store_every: 1,
            detections_with_face: 0,
            last_detect: None,
            current_box: None,
            face_seen: false,
            color_events: Vec::new(),
            oval_fitted: false,
            oval_timed_out: false,
            late_fit_ignored: false,
            fit_t: None,
            guidance: GuidanceState::default(),
            error: None,
        }
    }

    /// The settings this session runs with.
    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// `end` was received, or a fatal error happened.
    pub fn is_finished(&self) -> bool {
        matches!(self.phase, Phase::Ended | Phase::Failed)
    }

    /// The fatal error, if one happened.
    pub fn error(&self) -> Option<&ProtocolError> {
        self.error.as_ref()
    }

    /// The oval of the challenge (after `start`).
    pub fn oval(&self) -> Option<Oval> {
        self.oval
    }

    /// The fit rule of the challenge.
    pub fn face_fit(&self) -> FaceFit {
        FACE_FIT
    }

    /// When [`LiveSession::on_tick`] must be called next.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.is_finished() {
            return None;
        }
        let idle = self.last_activity.map(|a| a + self.settings.idle_timeout);
        let phase = match self.phase {
            Phase::OvalFit { deadline } => Some(deadline),
            Phase::Colors {
                index,
                sent_at,
                displayed_at,
            } => match displayed_at {
                Some(d) => self
                    .colors
                    .get(index)
                    .map(|c| d + Duration::from_millis(c.duration_ms as u64)),
                None => Some(sent_at + self.settings.response_timeout),
            },
            Phase::Movement { until } => Some(until),
            Phase::Stopped { at } => Some(at + self.settings.response_timeout),
            Phase::AwaitStart | Phase::Ended | Phase::Failed => None,
        };
        match (idle, phase) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        tracing::info!(code = e.code, message = %e.message, "liveness session failed");
        self.phase = Phase::Failed;
        self.error = Some(e.clone());
        e
    }

    fn check_alive(&self) -> Result<(), ProtocolError> {
        match self.phase {
            Phase::Ended => Err(ProtocolError::violation("the session has ended")),
            Phase::Failed => Err(self
                .error
                .clone()
                .unwrap_or_else(|| ProtocolError::violation("the session has failed"))),
            _ => Ok(()),
        }
    }

    /// Timers: next colour, oval-fit timeout, capture end, the client's silence.
    pub fn on_tick(&mut self, now: Instant) -> Result<Vec<ServerMessage>, ProtocolError> {
        if self.is_finished() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        self.advance(now, &mut out).map_err(|e| self.fail(e))?;
        Ok(out)
    }

    /// Runs every timer that is due at `now`.
    fn advance(&mut self, now: Instant, out: &mut Vec<ServerMessage>) -> Result<(), ProtocolError> {
        if let Some(a) = self.last_activity {
            if now >= a + self.settings.idle_timeout {
                return Err(ProtocolError::timeout(format!(
                    "the client sent nothing for {} s",
                    self.settings.idle_timeout.as_secs_f32()
                )));
            }
        }
        // A tick can fire several transitions only in theory (each waits for the
        // client); loop a bounded number of times anyway.
        for _ in 0..4 {
            match self.phase {
                Phase::OvalFit { deadline } if now >= deadline => {
                    if !self.face_seen {
                        return Err(ProtocolError::timeout(
                            "no face was seen before the oval-fit timeout",
                        ));
                    }
                    tracing::debug!("liveness: oval fit timed out with a face seen; going on");
                    self.oval_fitted = false;
                    self.oval_timed_out = true;
                    self.fit_t = self.last_t;
                    self.begin_capture(now, out);
                }
                Phase::Colors {
                    index,
                    sent_at,
                    displayed_at,
                } => match displayed_at {
                    Some(d) => {
                        let dur = self.colors.get(index).map_or(0, |c| c.duration_ms);
                        if now < d + Duration::from_millis(dur as u64) {
                            break;
                        }
                        if index + 1 < self.colors.len() {
                            self.send_color(index + 1, now, out);
                        } else {
                            out.push(ServerMessage::Stop);
                            self.phase = Phase::Stopped { at: now };
                        }
                    }
                    None => {
                        if now >= sent_at + self.settings.response_timeout {
                            return Err(ProtocolError::timeout(format!(
                                "colour {index} was not reported displayed in time"
                            )));
                        }
                        break;
                    }
                },
                Phase::Movement { until } if now >= until => {
                    out.push(ServerMessage::Stop);
                    self.phase = Phase::Stopped { at: now };
                }
                Phase::Stopped { at } if now >= at + self.settings.response_timeout => {
                    return Err(ProtocolError::timeout("no `end` after `stop`"));
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn send_color(&mut self, index: usize, now: Instant, out: &mut Vec<ServerMessage>) {
        if let Some(c) = self.colors.get(index) {
            out.push(ServerMessage::Color {
                seq: index as u32,
                rgb: c.rgb,
                duration_ms: c.duration_ms,
            });
        }
        self.phase = Phase::Colors {
            index,
            sent_at: now,
            displayed_at: None,
        };
    }

    /// The face fits (or the fit timed out with a face seen): colours or the movement capture.
    fn begin_capture(&mut self, now: Instant, out: &mut Vec<ServerMessage>) {
        if self.settings.challenge.has_light() && !self.colors.is_empty() {
            self.send_color(0, now, out);
        } else {
            self.phase = Phase::Movement {
                until: now + self.settings.movement_capture,
            };
        }
    }

    /// A text message from the client.
    pub fn on_text(
        &mut self,
        now: Instant,
        text: &str,
    ) -> Result<Vec<ServerMessage>, ProtocolError> {
        self.check_alive()?;
        let mut out = Vec::new();
        match self.handle_text(now, text, &mut out) {
            Ok(()) => Ok(out),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn handle_text(
        &mut self,
        now: Instant,
        text: &str,
        out: &mut Vec<ServerMessage>,
    ) -> Result<(), ProtocolError> {
        let msg = ClientMessage::parse(text)?;
        if self.phase != Phase::AwaitStart {
            self.advance(now, out)?;
        }
        self.last_activity = Some(now);
        match msg {
            ClientMessage::Start {
                video,
                client,
                camera,
            } => {
                if self.phase != Phase::AwaitStart {
                    return Err(ProtocolError::violation("`start` was already received"));
                }
                let s = &self.settings;
                let ok = |v: u32| v >= s.min_video_side && v <= s.max_video_side;
                if !ok(video.width) || !ok(video.height) {
                    return Err(ProtocolError::invalid_message(format!(
                        "video {}x{}: each side must be {}–{} pixels",
                        video.width, video.height, s.min_video_side, s.max_video_side
                    )));
                }
                tracing::debug!(
                    client = %client.name,
                    version = %client.version,
                    camera = camera.as_ref().map(|c| c.label.as_str()).unwrap_or(""),
                    "liveness session started"
                );
                let oval = challenge::oval_for(&mut self.rng, video);
                if self.settings.challenge.has_light() {
                    self.colors = challenge::color_sequence(
                        &mut self.rng,
                        self.settings.color_count as usize,
                        self.settings.color_min_ms,
                        self.settings.color_max_ms,
                    );
                }
                self.video = Some(video);
                self.oval = Some(oval);
                out.push(ServerMessage::Challenge {
                    challenge_type: self.settings.challenge,
                    video,
                    oval,
                    face_fit: FACE_FIT,
                    oval_fit_timeout_ms: self.settings.oval_fit_timeout.as_millis() as u64,
                    color_count: self.colors.len() as u32,
                    min_frame_rate: self.settings.min_frame_rate,
                });
                self.phase = Phase::OvalFit {
                    deadline: now + self.settings.oval_fit_timeout,
                };
            }
            ClientMessage::FaceInOval { t } => {
                if !t.is_finite() {
                    return Err(ProtocolError::invalid_message(
                        "`t` must be a finite number",
                    ));
                }
                match self.phase {
                    Phase::OvalFit { .. } if self.guidance.face_in_oval_sent => {
                        self.oval_fitted = true;
                        self.fit_t = Some(t);
                        self.begin_capture(now, out);
                    }
                    Phase::OvalFit { .. } => {
                        return Err(ProtocolError::violation(
                            "`faceInOval` before the server's FACE_IN_OVAL guidance",
                        ))
                    }
                    // The oval-fit timeout went on without it and the client's
                    // `faceInOval` crossed it on the way: ignored, once.
                    Phase::Colors { .. } | Phase::Movement { .. }
                        if self.oval_timed_out && !self.late_fit_ignored =>
                    {
                        self.late_fit_ignored = true;
                    }
                    _ => {
                        return Err(ProtocolError::violation(
                            "`faceInOval` outside the oval phase",
                        ))
                    }
                }
            }
            ClientMessage::ColorDisplayed { seq, rgb, t } => {
                if !t.is_finite() {
                    return Err(ProtocolError::invalid_message(
                        "`t` must be a finite number",
                    ));
                }
                let Phase::Colors {
                    index,
                    sent_at,
                    displayed_at: None,
                } = self.phase
                else {
                    return Err(ProtocolError::violation(
                        "`colorDisplayed` when no colour is awaiting display",
                    ));
                };
                let step = self.colors.get(index).copied();
                if seq as usize != index || step.map(|s| s.rgb) != Some(rgb) {
                    return Err(ProtocolError::violation(format!(
                        "`colorDisplayed` for seq {seq} {rgb:?}; colour {index} is the one displayed"
                    )));
                }
                if self.color_events.last().is_some_and(|e| t < e.t) {
                    return Err(ProtocolError::violation(
                        "`colorDisplayed` times must not go backwards",
                    ));
                }
                self.color_events.push(ColorEvent {
                    rgb,
                    duration_ms: step.map_or(0, |s| s.duration_ms),
                    t,
                    echo_ms: now.saturating_duration_since(sent_at).as_secs_f64() * 1e3,
                });
                self.phase = Phase::Colors {
                    index,
                    sent_at,
                    displayed_at: Some(now),
                };
            }
            ClientMessage::End { t } => {
                if !t.is_finite() {
                    return Err(ProtocolError::invalid_message(
                        "`t` must be a finite number",
                    ));
                }
                match self.phase {
                    Phase::Stopped { .. } => self.phase = Phase::Ended,
                    _ => return Err(ProtocolError::violation("`end` before `stop`")),
                }
            }
        }
        Ok(())
    }

    /// A binary frame. Heavy (decode, sometimes detection): call it on a blocking thread.
    pub fn on_frame(
        &mut self,
        now: Instant,
        bytes: &[u8],
    ) -> Result<Vec<ServerMessage>, ProtocolError> {
        self.check_alive()?;
        let mut out = Vec::new();
        match self.handle_frame(now, bytes, &mut out) {
            Ok(()) => Ok(out),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn handle_frame(
        &mut self,
        now: Instant,
        bytes: &[u8],
        out: &mut Vec<ServerMessage>,
    ) -> Result<(), ProtocolError> {
        if self.phase == Phase::AwaitStart {
            return Err(ProtocolError::violation("a frame before `challenge`"));
        }
        self.advance(now, out)?;
        self.last_activity = Some(now);
        self.frames_received = self.frames_received.saturating_add(1);
        if self.frames_received > self.settings.max_frames {
            return Err(ProtocolError::new(
                codes::TOO_MANY_FRAMES,
                format!("more than {} frames", self.settings.max_frames),
            ));
        }
        if bytes.len() > self.settings.max_frame_bytes + FRAME_HEADER_BYTES {
            return Err(ProtocolError::new(
                codes::FRAME_TOO_LARGE,
                format!(
                    "a frame of {} bytes; the limit is {} bytes of JPEG",
                    bytes.len(),
                    self.settings.max_frame_bytes
                ),
            ));
        }
        let (t, jpeg) = parse_frame(bytes)?;
        if self.last_t.is_some_and(|p| t <= p) {
            // Rejected, and counted: the analysis reports it.
            self.non_monotonic += 1;
            tracing::debug!(t, "liveness: frame with a non-increasing timestamp dropped");
            return Ok(());
        }
        let video = self
            .video
            .ok_or_else(|| ProtocolError::violation("no video size"))?;
        // The header must announce the session's video size before a pixel is decoded:
        // a small JPEG can claim 40 megapixels (either orientation is accepted here; the
        // decoded, upright frame is checked exactly below).
        let header =
            self.analyzers.engine.probe(jpeg).map_err(|e| {
                ProtocolError::invalid_frame(format!("the frame does not decode: {e}"))
            })?;
        let (hw, hh) = (header.width, header.height);
        if (hw, hh) != (video.width, video.height) && (hh, hw) != (video.width, video.height) {
            return Err(ProtocolError::invalid_frame(format!(
                "a {hw}x{hh} frame; the session announced {}x{}",
                video.width, video.height
            )));
        }
        let img =
            self.analyzers.engine.decode(jpeg).map_err(|e| {
                ProtocolError::invalid_frame(format!("the frame does not decode: {e}"))
            })?;
        if (img.width(), img.height()) != (video.width, video.height) {
            return Err(ProtocolError::invalid_frame(format!(
                "a {}x{} frame; the session announced {}x{}",
                img.width(),
                img.height(),
                video.width,
                video.height
            )));
        }
        self.last_t = Some(t);
        let phase = match self.phase {
            Phase::OvalFit { .. } => PhaseTag::OvalFit,
            Phase::Stopped { .. } => PhaseTag::Stopped,
            _ => PhaseTag::Challenge,
        };

        // Detection, at most every `detect_interval_ms` of capture time (and half that
        // of server time, so a client cannot force one per frame with fake timestamps).
        let due = match self.last_detect {
            None => true,
            Some((lt, ln)) => {
                t - lt >= self.settings.detect_interval_ms
                    && now.saturating_duration_since(ln).as_secs_f64() * 1e3
                        >= self.settings.detect_interval_ms * 0.5
            }
        };
        let mut detected: Option<Vec<Face>> = None;
        if due && phase != PhaseTag::Stopped {
            self.last_detect = Some((t, now));
            let opts = self.detect_options();
            match self.analyzers.engine.detect(&img, &opts) {
                Ok(faces) => detected = Some(faces),
                Err(e) => tracing::warn!(error = %e, "liveness: detection failed on a frame"),
            }
        }
        if let Some(faces) = &detected {
            self.record_detection(t, phase, faces, jpeg);
        }

        // Cheap per-frame measurements.
        let scan = frame::scan(&img.rgb);
        let frame_diff = self
            .last_grid
            .as_ref()
            .map_or(f32::INFINITY, |p| frame::grid_difference(p, &scan.luma));
        self.last_grid = Some(scan.luma);
        let face_box = self
            .current_box
            .filter(|(bt, _)| t - bt <= BOX_MAX_AGE_MS)
            .map(|(_, b)| b);
        let stats = face_box.and_then(|b| frame::color_stats(&img.rgb, &b));
        self.frames.push(FrameRecord {
            t,
            hash: frame::hash_bytes(jpeg),
            frame_diff,
            stats,
            face_box,
            cells: scan.cells,
        });

        if let (Some(faces), Phase::OvalFit { .. }) = (&detected, self.phase) {
            if let Some(g) = self.guide(now, t, faces) {
                out.push(g);
            }
        }
        Ok(())
    }

    fn detect_options(&self) -> DetectOptions {
        let oval_w = self.oval.map_or(100.0, |o| o.width);
        DetectOptions {
            // A face under a quarter of the oval is too far to matter; looking only for
            // larger faces keeps the detection input small.
            min_face_size: (0.25 * oval_w).max(40.0),
            max_faces: 3,
            // Frames are scored by the passive PAD model on the first pass's box, as
            // measured (models/MODELS.md); the padded pass refines landmarks for
            // recognition and would cost a detector run on most close-up frames.
            pad_large_faces: false,
            ..DetectOptions::default()
        }
    }

    fn record_detection(&mut self, t: f64, phase: PhaseTag, faces: &[Face], jpeg: &[u8]) {
        let primary = faces.first().map(|f| {
            let p = f.landmark_points();
            FaceInfo {
                rect: f.bounding_box_pixels,
                iod: p[0].dist(p[1]),
            }
        });
        let multiple = match (faces.first(), faces.get(1)) {
            (Some(a), Some(b)) => b
                .bounding_box_pixels
                .similar_in_size_to(&a.bounding_box_pixels),
            _ => false,
        };
        self.detections.push(DetectionRecord {
            t,
            phase,
            primary,
            multiple,
        });
        let Some(face) = faces.first() else {
            return;
        };
        self.face_seen = true;
        self.current_box = Some((t, face.bounding_box_pixels));
        // Keep every `store_every`-th face frame; thin out evenly when full.
        let k = self.detections_with_face;
        self.detections_with_face += 1;
        if k % self.store_every != 0 {
            return;
        }
        if self.stored.len() >= self.settings.max_stored_frames.max(4) {
            let mut i = 0;
            self.stored.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.store_every *= 2;
            if k % self.store_every != 0 {
                return;
            }
        }
        self.stored.push(StoredFrame {
            t,
            jpeg: jpeg.to_vec(),
            face: face.clone(),
            phase,
        });
    }

    /// Guidance from the latest detection; `Some` when it should be sent.
    fn guide(&mut self, now: Instant, t: f64, faces: &[Face]) -> Option<ServerMessage> {
        let oval = self.oval?;
        let fit = FACE_FIT;
        let face = faces.first();
        let code = match face {
            None => {
                self.guidance.consecutive_fit = 0;
                GuidanceCode::NoFace
            }
            Some(f) => {
                let b = f.bounding_box_pixels;
                let ratio = b.width / oval.width.max(1.0);
                let c = b.center();
                let offset = ((c.x - oval.center_x).powi(2) + (c.y - oval.center_y).powi(2)).sqrt()
                    / oval.width.max(1.0);
                let moving = self.guidance.prev_box.is_some_and(|(pt, p)| {
                    let dt = (t - pt).max(1.0);
                    let speed = p.center().dist(c) / b.width.max(1.0) / dt as f32 * 1000.0;
                    let growth = ((b.width / p.width.max(1.0)).ln().abs()) / dt as f32 * 1000.0;
                    dt <= 600.0 && (speed > 0.5 || growth > 0.5)
                });
                let second_similar = faces
                    .get(1)
                    .is_some_and(|s| s.bounding_box_pixels.similar_in_size_to(&b));
                let fits = ratio >= fit.min_width_ratio
                    && ratio <= fit.max_width_ratio
                    && offset <= fit.max_center_offset;
                if fits && !moving && !second_similar {
                    self.guidance.consecutive_fit += 1;
                } else {
                    self.guidance.consecutive_fit = 0;
                }
                if second_similar {
                    GuidanceCode::MultipleFaces
                } else if ratio < fit.min_width_ratio {
                    GuidanceCode::MoveCloser
                } else if ratio > fit.max_width_ratio {
                    GuidanceCode::TooClose
                } else if offset > fit.max_center_offset {
                    GuidanceCode::CenterFace
                } else if moving || self.guidance.consecutive_fit < self.settings.fit_detections {
                    GuidanceCode::HoldStill
                } else {
                    GuidanceCode::FaceInOval
                }
            }
        };
        self.guidance.prev_box = face.map(|f| (t, f.bounding_box_pixels));
        let since = self
            .guidance
            .last_sent
            .map(|s| now.saturating_duration_since(s));
        let changed = self.guidance.last_code != Some(code);
        let send = match since {
            None => true,
            Some(d) => (changed && d >= GUIDANCE_MIN_INTERVAL) || d >= GUIDANCE_REPEAT,
        };
        if !send {
            return None;
        }
        self.guidance.last_code = Some(code);
        self.guidance.last_sent = Some(now);
        if code == GuidanceCode::FaceInOval {
            self.guidance.face_in_oval_sent = true;
        }
        Some(ServerMessage::Guidance {
            code,
            message: code.message().to_string(),
            face: face.map(|f| FaceBox::from(f.bounding_box_pixels)),
        })
    }

    /// The final analysis (target ≤ 1 s; see `docs/liveness.md` for measurements).
    ///
    /// A session that failed, or never reached `stop`, is `FAILED`; one without any
    /// face is `FAILED` with `NoFace`; otherwise the analysis runs.
    pub fn finish(self) -> LivenessOutcome {
        if let Some(e) = &self.error {
            return LivenessOutcome::failed(e.code, self.frames_received);
        }
        if !matches!(self.phase, Phase::Stopped { .. } | Phase::Ended) {
            return LivenessOutcome::failed(reasons::SESSION_INCOMPLETE, self.frames_received);
        }
        let Some(video) = self.video else {
            return LivenessOutcome::failed(reasons::SESSION_INCOMPLETE, self.frames_received);
        };
        let rec = Recording {
            challenge: self.settings.challenge,
            video,
            seed: self.seed,
            frames: self.frames,
            frames_received: self.frames_received,
            non_monotonic: self.non_monotonic,
            detections: self.detections,
            stored: self.stored,
            colors: self.color_events,
            oval_fitted: self.oval_fitted,
            fit_t: self.fit_t,
        };
        let outcome = analysis::analyze(
            rec,
            &self.analyzers,
            &self.settings.thresholds,
            self.settings.audit_images_limit,
        );
        tracing::info!(
            confidence = outcome.confidence,
            decision = ?outcome.decision,
            reasons = ?outcome.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
            analysis_ms = outcome.analysis_ms,
            "liveness session analysed"
        );
        outcome
    }
}
