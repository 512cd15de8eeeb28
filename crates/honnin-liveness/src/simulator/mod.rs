//! A capture client, simulated: drives a [`LiveSession`] through the whole protocol
//! with a simulated clock and frames built from real face images.
//!
//! The simulation is event-driven on one timeline of milliseconds. The server's
//! `Instant`s are a base instant plus that time; the client's clock is the same time
//! plus an arbitrary offset (the two clocks are never compared by the session). Both
//! directions have a network delay and stay ordered, as on a WebSocket.
//!
//! A live client ([`Scenario::Live`]) starts with its face at ~60 % of its final size,
//! off-centre, and moves into the oval over ~1.2 s; its skin reflects the displayed
//! colour (8–15 % of the colour's intensity added per channel on skin, scaled by the
//! surface's albedo, under a soft elliptical face mask; 1.5 % on the background)
//! 30–80 ms after the colour is painted; frames get sensor noise, ±3 ms of timestamp jitter at ~15 fps and JPEG
//! quality 85. The attacks change one thing each (see [`Scenario`]).

//!
//! Modules: `sources` (the real face images a simulated client shows) and `bench`
//! (many simulated sessions, summarised: `honnin bench-liveness`).

mod bench;
mod sources;

pub use bench::*;
pub use sources::*;

use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use honnin_engine::geometry::Rect;
use honnin_engine::{DetectOptions, Engine};
use image::codecs::jpeg::JpegEncoder;
use image::RgbImage;
use rand::rngs::StdRng;
use rand::Rng;
use thiserror::Error;

use crate::challenge;
use crate::outcome::LivenessOutcome;
use crate::protocol::{
    encode_frame, ClientInfo, ClientMessage, GuidanceCode, Oval, ProtocolError, ServerMessage,
    VideoSize,
};
use crate::session::{Analyzers, LiveSession, SessionSettings};

/// What the simulated client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// A real face in front of the screen.
    Live,
    /// One printed-photo image, placed in the oval and sent as the same bytes every frame.
    StaticPhoto,
    /// A replayed face whose whole frame is tinted by the displayed colours (face and
    /// background alike), as a screen or a print in front of the display would be.
    ScreenReplay,
    /// Consecutive real live frames that do not react to the colours.
    PrerecordedVideo,
    /// A live-like reflection rendered ≥ 400 ms after each colour was shown.
    LaggingFrames,
    /// A live face that becomes another person once the colours start.
    FaceSwap,
    /// A live stream with perfectly regular timestamps (66.667 ms), as a generator makes.
    RegularTimestamps,
}

impl Scenario {
    /// Every scenario: the live one first, then the six attacks.
    pub const ALL: [Scenario; 7] = [
        Scenario::Live,
        Scenario::StaticPhoto,
        Scenario::ScreenReplay,
        Scenario::PrerecordedVideo,
        Scenario::LaggingFrames,
        Scenario::FaceSwap,
        Scenario::RegularTimestamps,
    ];
    /// The kebab-case name used in reports (`"live"`, `"static-photo"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Live => "live",
            Scenario::StaticPhoto => "static-photo",
            Scenario::ScreenReplay => "screen-replay",
            Scenario::PrerecordedVideo => "prerecorded-video",
            Scenario::LaggingFrames => "lagging-frames",
            Scenario::FaceSwap => "face-swap",
            Scenario::RegularTimestamps => "regular-timestamps",
        }
    }
    /// Whether the scenario is a presentation or injection attack (every one but
    /// [`Scenario::Live`]).
    pub fn is_attack(self) -> bool {
        self != Scenario::Live
    }
}

/// How [`Scenario::ScreenReplay`] tints the whole frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tint {
    /// The same amount added to every pixel (a screen's glare).
    #[default]
    Additive,
    /// In proportion to each pixel's level (a digital colour filter).
    Multiplicative,
}

/// Protocol misbehaviour injected into an otherwise normal run (for the tests).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tamper {
    /// Frame `n` (0-based) carries a timestamp 10 ms before the previous one.
    NonMonotonicAt(u32),
    /// Frame `n` is encoded at half the announced resolution.
    ResolutionChangeAt(u32),
    /// Frame `n` is padded over the frame size limit.
    OversizeAt(u32),
    /// The client sends only its first `n` frames (it still answers messages).
    MaxFrames(u32),
}

/// Why a simulation could not run (never a liveness verdict).
#[derive(Debug, Error)]
pub enum SimError {
    /// A file or folder of the face sources could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that could not be read.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The engine failed (decoding a source image, detection, templates).
    #[error("{0}")]
    Engine(#[from] honnin_engine::EngineError),
    /// No image of the named face source has a detectable face.
    #[error("no face found in {0}")]
    NoFace(String),
    /// A simulated frame could not be built or JPEG-encoded; the text says why.
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
    /// A face source, a NUAA series or the list of live sources has no images.
    #[error("the source has no images")]
    Empty,
}

/// How the simulated client behaves. [`SimConfig::new`] gives the realistic defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// What the client does (a live face or an attack).
    pub scenario: Scenario,
    /// The client's own randomness (jitter, noise, reflection gain, start position).
    pub client_seed: u64,
    /// The announced video size, pixels (default 640×480).
    pub video: VideoSize,
    /// Frame rate, frames per second of simulated time (default 15).
    pub fps: f64,
    /// Uniform timestamp jitter, ± ms.
    pub jitter_ms: f64,
    /// JPEG quality of the frames, 1–100 (default 85).
    pub jpeg_quality: u8,
    /// Face size at the start, as a fraction of its size in the oval.
    pub start_scale: f32,
    /// Time to move into the oval (ms).
    pub approach_ms: f64,
    /// Face-box width in the oval over the oval width.
    pub fit_ratio: f32,
    /// Fraction of the displayed colour's intensity added to the skin (per channel).
    /// `None`: random in 0.08–0.15.
    pub skin_gain: Option<f32>,
    /// The same for the background (and for the whole frame in a screen replay).
    pub background_gain: f32,
    /// Delay from painting a colour to the face showing it (ms). `None`: random 30–80
    /// (400–450 for [`Scenario::LaggingFrames`]).
    pub response_ms: Option<f64>,
    /// Sensor noise, standard deviation in levels.
    pub noise_sigma: f32,
    /// The tint of a screen replay.
    pub tint: Tint,
    /// One-way network delay (ms).
    pub network_ms: f64,
    /// Stop the simulation after this much simulated time (ms).
    pub max_ms: f64,
    /// Protocol misbehaviour to inject; `None` for a well-behaved client (the default).
    pub tamper: Option<Tamper>,
}

impl SimConfig {
    /// The realistic defaults for `scenario`: 640×480 at 15 fps, ±3 ms jitter, JPEG quality
    /// 85, a 1.2-s approach from 0.6× the fitted size, 25-ms network delay, no tampering.
    pub fn new(scenario: Scenario, client_seed: u64) -> Self {
        Self {
            scenario,
            client_seed,
            video: VideoSize {
                width: 640,
                height: 480,
            },
            fps: 15.0,
            jitter_ms: 3.0,
            jpeg_quality: 85,
            start_scale: 0.6,
            approach_ms: 1200.0,
            fit_ratio: 0.86,
            skin_gain: None,
            background_gain: 0.015,
            response_ms: None,
            noise_sigma: 2.0,
            tint: Tint::Additive,
            network_ms: 25.0,
            max_ms: 60_000.0,
            tamper: None,
        }
    }
}

/// Something that crossed the simulated network.
#[derive(Debug, Clone, PartialEq)]
pub enum LogEvent {
    /// A text message the server received.
    ToServer(ClientMessage),
    /// A frame the server received (client timestamp, bytes).
    Frame {
        /// The frame's capture timestamp, ms on the simulated client clock.
        t: f64,
        /// The frame's size in bytes (header and JPEG).
        bytes: usize,
    },
    /// A message the server sent.
    ToClient(ServerMessage),
    /// The session returned this fatal error.
    Error(ProtocolError),
}

/// One log line: server time (ms since the simulation start) and the event.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Server time of the event, ms since the simulation start.
    pub at_ms: f64,
    /// What crossed the network.
    pub event: LogEvent,
}

/// The result of one simulated session.
#[derive(Debug, Clone)]
pub struct SimRun {
    /// The scenario that ran.
    pub scenario: Scenario,
    /// The name of the face source the frames were built from.
    pub source: String,
    /// What [`LiveSession::finish`] returned.
    pub outcome: LivenessOutcome,
    /// The fatal protocol error the session returned, if any.
    pub error: Option<ProtocolError>,
    /// Every message and frame that crossed the simulated network, in order.
    pub log: Vec<LogEntry>,
    /// Frames the client sent.
    pub frames_sent: u32,
    /// Wall time of each `on_frame` call (ms).
    pub frame_costs_ms: Vec<f64>,
    /// Wall time of `finish` (ms).
    pub finish_ms: f64,
    /// Simulated duration of the session (ms).
    pub duration_ms: f64,
}

impl SimRun {
    /// The `color` messages the server sent, in order.
    pub fn colors_sent(&self) -> Vec<(f64, u32, [u8; 3], u32)> {
        self.log
            .iter()
            .filter_map(|e| match &e.event {
                LogEvent::ToClient(ServerMessage::Color {
                    seq,
                    rgb,
                    duration_ms,
                }) => Some((e.at_ms, *seq, *rgb, *duration_ms)),
                _ => None,
            })
            .collect()
    }
    /// Server receive times of `colorDisplayed`, by sequence number.
    pub fn colors_displayed(&self) -> Vec<(f64, u32)> {
        self.log
            .iter()
            .filter_map(|e| match &e.event {
                LogEvent::ToServer(ClientMessage::ColorDisplayed { seq, .. }) => {
                    Some((e.at_ms, *seq))
                }
                _ => None,
            })
            .collect()
    }
    /// Guidance codes the server sent, in order.
    pub fn guidance(&self) -> Vec<GuidanceCode> {
        self.log
            .iter()
            .filter_map(|e| match &e.event {
                LogEvent::ToClient(ServerMessage::Guidance { code, .. }) => Some(*code),
                _ => None,
            })
            .collect()
    }
}

/// What happens next on the timeline.
#[derive(Debug)]
enum Ev {
    /// The client captures a frame.
    Capture,
    /// A client message reaches the server.
    UpText(ClientMessage),
    /// A frame reaches the server.
    UpFrame(Vec<u8>, f64),
    /// A server message reaches the client.
    Down(ServerMessage),
    /// The client paints colour `seq`.
    Paint(u32, [u8; 3]),
}

struct Queued {
    at: f64,
    order: u64,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.order == o.order
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    // A max-heap: reverse so the earliest (then the first queued) comes out first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.at.total_cmp(&self.at).then(o.order.cmp(&self.order))
    }
}

struct Timeline {
    heap: BinaryHeap<Queued>,
    order: u64,
    last_up: f64,
    last_down: f64,
}

impl Timeline {
    fn push(&mut self, at: f64, ev: Ev) {
        self.order += 1;
        self.heap.push(Queued {
            at,
            order: self.order,
            ev,
        });
    }
    /// Sends upstream, keeping the channel ordered.
    fn up(&mut self, at: f64, ev: Ev) {
        let at = at.max(self.last_up);
        self.last_up = at;
        self.push(at, ev);
    }
    fn down(&mut self, at: f64, ev: Ev) {
        let at = at.max(self.last_down);
        self.last_down = at;
        self.push(at, ev);
    }
}

/// A fast, seedable noise source (xorshift64*), for per-pixel sensor noise.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Approximately normal (sum of two uniforms), unit variance.
    fn normal(&mut self) -> f32 {
        let r = self.next();
        let a = (r & 0xffff) as f32 / 65535.0;
        let b = ((r >> 16) & 0xffff) as f32 / 65535.0;
        (a + b - 1.0) * 2.449_49
    }
}

/// Where the face is at a moment: scale of the source image and the face centre in the frame.
#[derive(Debug, Clone, Copy)]
struct Placement {
    scale: f32,
    cx: f32,
    cy: f32,
}

/// The client's simulated state.
struct Client<'a> {
    cfg: &'a SimConfig,
    source: &'a FaceSource,
    second: Option<&'a FaceSource>,
    rng: StdRng,
    clock_offset: f64,
    skin_gain: f32,
    response_ms: f64,
    oval: Option<Oval>,
    capture_start: Option<f64>,
    capturing: bool,
    frame_index: u32,
    last_ts: f64,
    sent_face_in_oval: bool,
    display: Vec<(f64, [f32; 3])>,
    first_paint: Option<f64>,
    static_bytes: Option<Vec<u8>>,
    start_offset: (f32, f32),
}

/// The screen colour before the sequence (the capture UI's light grey).
const UI_COLOR: [f32; 3] = [200.0, 200.0, 200.0];

impl<'a> Client<'a> {
    fn client_t(&self, sim: f64) -> f64 {
        sim + self.clock_offset
    }

    /// The colour on the screen at sim time `t`, blended over 30 ms after each change.
    fn display_at(&self, t: f64) -> [f32; 3] {
        let mut cur = UI_COLOR;
        for (i, &(at, c)) in self.display.iter().enumerate() {
            if t < at {
                break;
            }
            let prev = if i == 0 {
                UI_COLOR
            } else {
                self.display[i - 1].1
            };
            let k = ((t - at) / 30.0).clamp(0.0, 1.0) as f32;
            cur = [
                prev[0] + (c[0] - prev[0]) * k,
                prev[1] + (c[1] - prev[1]) * k,
                prev[2] + (c[2] - prev[2]) * k,
            ];
        }
        cur
    }

    fn placement(&self, t: f64, src_face: &Rect) -> Placement {
        let (w, h) = (self.cfg.video.width as f32, self.cfg.video.height as f32);
        let oval = self.oval.unwrap_or(Oval {
            center_x: w / 2.0,
            center_y: h / 2.0,
            width: h * 0.72 / 1.618,
            height: h * 0.72,
        });
        let final_scale = self.cfg.fit_ratio * oval.width / src_face.width.max(1.0);
        let start = self.capture_start.unwrap_or(t);
        let u = ((t - start) / self.cfg.approach_ms.max(1.0)).clamp(0.0, 1.0) as f32;
        let e = u * u * (3.0 - 2.0 * u); // smoothstep
        let still = matches!(self.cfg.scenario, Scenario::StaticPhoto);
        let (s0, ox, oy) = if still {
            (1.0, 0.0, 0.0)
        } else {
            (
                self.cfg.start_scale,
                self.start_offset.0,
                self.start_offset.1,
            )
        };
        let sway = if still {
            0.0
        } else {
            (t / 1000.0 * std::f64::consts::TAU / 1.7).sin() as f32
        };
        Placement {
            scale: final_scale * (s0 + (1.0 - s0) * e) * (1.0 + 0.008 * sway),
            cx: oval.center_x + ox * (1.0 - e) + 1.5 * sway,
            // The CenterFace box sits a little high in the drawn oval.
            cy: oval.center_y + oy * (1.0 - e) - 0.03 * oval.height - sway,
        }
    }

    /// Renders the frame captured at sim time `t`.
    fn render(&mut self, t: f64, frame_no: u32) -> Result<Vec<u8>, SimError> {
        if let Some(b) = &self.static_bytes {
            return Ok(b.clone());
        }
        let cfg = self.cfg;
        let src_set = match (cfg.scenario, self.second, self.first_paint) {
            (Scenario::FaceSwap, Some(s), Some(p)) if t >= p => s,
            _ => self.source,
        };
        let sf = match cfg.scenario {
            Scenario::PrerecordedVideo => {
                let n = src_set.frames.len();
                // Source frames are every third webcam frame: advance one per two captures.
                &src_set.frames[(frame_no as usize / 2) % n.max(1)]
            }
            _ => &src_set.frames[0],
        };
        // All frames of a source are placed by the first frame's face box, so a video
        // keeps its own natural motion.
        let anchor = src_set.frames[0].face;
        let pl = self.placement(t, &anchor);
        let (w, h) = (cfg.video.width, cfg.video.height);
        let (ax, ay) = (anchor.center().x, anchor.center().y);
        // (displayed colour, skin gain, background gain, reflected by albedo?)
        let light = match cfg.scenario {
            Scenario::Live
            | Scenario::LaggingFrames
            | Scenario::FaceSwap
            | Scenario::RegularTimestamps => Some((
                self.display_at(t - self.response_ms),
                self.skin_gain,
                cfg.background_gain,
                true,
            )),
            Scenario::ScreenReplay => {
                let c = self.display_at(t - self.response_ms);
                Some((
                    c,
                    self.skin_gain,
                    self.skin_gain,
                    cfg.tint == Tint::Multiplicative,
                ))
            }
            Scenario::StaticPhoto | Scenario::PrerecordedVideo => None,
        };
        // Face ellipse in the output frame (for the reflection mask).
        let (fw, fh) = (anchor.width * pl.scale, anchor.height * pl.scale);
        let (ex, ey) = (pl.cx, pl.cy + 0.05 * fh);
        let (rx, ry) = (0.58 * fw, 0.68 * fh);
        let img = &sf.image;
        let (sw, sh) = (img.width() as f32, img.height() as f32);
        let src = img.as_raw();
        let mut noise =
            Noise((cfg.client_seed ^ (frame_no as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1);
        let mut out = vec![0u8; (w * h * 3) as usize];
        let inv = 1.0 / pl.scale.max(1e-3);
        let sigma = cfg.noise_sigma;
        for y in 0..h {
            let syf = ((y as f32 + 0.5 - pl.cy) * inv + ay - 0.5).clamp(0.0, sh - 1.0);
            let y0 = syf.floor() as usize;
            let y1 = (y0 + 1).min(sh as usize - 1);
            let fy = syf - y0 as f32;
            let dy = (y as f32 - ey) / ry;
            for x in 0..w {
                let sxf = ((x as f32 + 0.5 - pl.cx) * inv + ax - 0.5).clamp(0.0, sw - 1.0);
                let x0 = sxf.floor() as usize;
                let x1 = (x0 + 1).min(sw as usize - 1);
                let fx = sxf - x0 as f32;
                let i00 = (y0 * sw as usize + x0) * 3;
                let i01 = (y0 * sw as usize + x1) * 3;
                let i10 = (y1 * sw as usize + x0) * 3;
                let i11 = (y1 * sw as usize + x1) * 3;
                let add_mask = light.map(|(c, skin, bg, by_albedo)| {
                    let dx = (x as f32 - ex) / rx;
                    let r = (dx * dx + dy * dy).sqrt();
                    let m = ((1.1 - r) / 0.25).clamp(0.0, 1.0);
                    (c, bg + (skin - bg) * m, by_albedo)
                });
                let o = ((y * w + x) * 3) as usize;
                for ch in 0..3 {
                    let top = src[i00 + ch] as f32 * (1.0 - fx) + src[i01 + ch] as f32 * fx;
                    let bot = src[i10 + ch] as f32 * (1.0 - fx) + src[i11 + ch] as f32 * fx;
                    let mut v = top * (1.0 - fy) + bot * fy;
                    if let Some((c, g, by_albedo)) = add_mask {
                        // Light from the screen is reflected in proportion to the
                        // surface's albedo (its level under the ambient light, relative
                        // to a typical skin level of 160); a screen's glare adds evenly.
                        let albedo = if by_albedo { v / 160.0 } else { 1.0 };
                        v += g * c[ch] * albedo;
                    }
                    if sigma > 0.0 {
                        v += sigma * noise.normal();
                    }
                    out[o + ch] = v.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        let rgb =
            RgbImage::from_raw(w, h, out).ok_or_else(|| SimError::Encode("frame size".into()))?;
        let bytes = encode_jpeg(&rgb, cfg.jpeg_quality)?;
        if cfg.scenario == Scenario::StaticPhoto {
            self.static_bytes = Some(bytes.clone());
        }
        Ok(bytes)
    }
}

/// JPEG-encodes an image.
pub fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, SimError> {
    let mut buf = Vec::new();
    JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100))
        .encode_image(img)
        .map_err(|e| SimError::Encode(e.to_string()))?;
    Ok(buf)
}

/// Runs one simulated session. `second` is the other person of [`Scenario::FaceSwap`].
pub fn run(
    analyzers: &Analyzers,
    settings: SessionSettings,
    session_seed: u64,
    source: &FaceSource,
    second: Option<&FaceSource>,
    cfg: &SimConfig,
) -> Result<SimRun, SimError> {
    if source.frames.is_empty() || second.is_some_and(|s| s.frames.is_empty()) {
        return Err(SimError::Empty);
    }
    let mut rng = challenge::rng(cfg.client_seed);
    let skin_gain = cfg
        .skin_gain
        .unwrap_or_else(|| rng.random_range(0.08..=0.15f32));
    let response_ms = cfg.response_ms.unwrap_or_else(|| match cfg.scenario {
        Scenario::LaggingFrames => rng.random_range(400.0..=450.0),
        _ => rng.random_range(30.0..=80.0),
    });
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let start_offset = (60.0 * angle.cos(), 35.0 * angle.sin());
    let clock_offset = 1.7e12 + rng.random_range(0.0..1e9f64).floor();
    let mut client = Client {
        cfg,
        source,
        second,
        rng,
        clock_offset,
        skin_gain,
        response_ms,
        oval: None,
        capture_start: None,
        capturing: false,
        frame_index: 0,
        last_ts: f64::NEG_INFINITY,
        sent_face_in_oval: false,
        display: Vec::new(),
        first_paint: None,
        static_bytes: None,
        start_offset,
    };
    let base = Instant::now();
    let at = |ms: f64| base + Duration::from_secs_f64(ms.max(0.0) / 1000.0);
    let mut session = LiveSession::new(analyzers.clone(), settings, session_seed);
    let mut tl = Timeline {
        heap: BinaryHeap::new(),
        order: 0,
        last_up: 0.0,
        last_down: 0.0,
    };
    let mut log = Vec::new();
    let mut frame_costs = Vec::new();
    let mut error: Option<ProtocolError> = None;
    let mut frames_sent = 0u32;
    let net = cfg.network_ms;
    let frame_interval = 1000.0 / cfg.fps.max(0.1);

    tl.up(
        net,
        Ev::UpText(ClientMessage::Start {
            video: cfg.video,
            client: ClientInfo {
                name: "honnin-simulator".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            camera: None,
        }),
    );
    let mut now_ms = 0.0;
    while !session.is_finished() && now_ms <= cfg.max_ms {
        // The next event, or the session's timer if it comes first.
        let deadline = session
            .next_deadline()
            .map(|d| d.saturating_duration_since(base).as_secs_f64() * 1000.0);
        let next_ev = tl.heap.peek().map(|q| q.at);
        let tick_first = match (deadline, next_ev) {
            (Some(d), Some(e)) => d < e,
            (Some(_), None) => true,
            _ => false,
        };
        let mut server_out: Result<Vec<ServerMessage>, ProtocolError> = Ok(Vec::new());
        if tick_first {
            now_ms = deadline.unwrap_or(now_ms).max(now_ms);
            server_out = session.on_tick(at(now_ms));
        } else {
            let Some(q) = tl.heap.pop() else { break };
            now_ms = q.at.max(now_ms);
            match q.ev {
                Ev::UpText(m) => {
                    let text = serde_json::to_string(&m).unwrap_or_default();
                    log.push(LogEntry {
                        at_ms: now_ms,
                        event: LogEvent::ToServer(m),
                    });
                    server_out = session.on_text(at(now_ms), &text);
                }
                Ev::UpFrame(bytes, t) => {
                    log.push(LogEntry {
                        at_ms: now_ms,
                        event: LogEvent::Frame {
                            t,
                            bytes: bytes.len(),
                        },
                    });
                    let w = Instant::now();
                    server_out = session.on_frame(at(now_ms), &bytes);
                    frame_costs.push(w.elapsed().as_secs_f64() * 1000.0);
                }
                Ev::Down(m) => {
                    client_receive(&mut client, &mut tl, now_ms, &m);
                }
                Ev::Paint(seq, rgb) => {
                    client.display.push((now_ms, rgb.map(|v| v as f32)));
                    client.first_paint.get_or_insert(now_ms);
                    let t = client.client_t(now_ms);
                    tl.up(
                        now_ms + net,
                        Ev::UpText(ClientMessage::ColorDisplayed { seq, rgb, t }),
                    );
                }
                Ev::Capture => {
                    if client.capturing {
                        let n = client.frame_index;
                        client.frame_index += 1;
                        let send = !matches!(cfg.tamper, Some(Tamper::MaxFrames(m)) if n >= m);
                        if send {
                            let bytes = build_frame(&mut client, now_ms, n)?;
                            let t_up = bytes.1;
                            frames_sent += 1;
                            // Encoding and upload take a few ms before the network.
                            tl.up(now_ms + 6.0 + net, Ev::UpFrame(bytes.0, t_up));
                        }
                        let jitter = if cfg.scenario == Scenario::RegularTimestamps {
                            0.0
                        } else {
                            client.rng.random_range(-cfg.jitter_ms..=cfg.jitter_ms)
                        };
                        let start = client.capture_start.unwrap_or(now_ms);
                        let next = start + (n + 1) as f64 * frame_interval + jitter;
                        tl.push(next.max(now_ms + 1.0), Ev::Capture);
                    }
                }
            }
        }
        match server_out {
            Ok(msgs) => {
                for m in msgs {
                    log.push(LogEntry {
                        at_ms: now_ms,
                        event: LogEvent::ToClient(m.clone()),
                    });
                    tl.down(now_ms + net, Ev::Down(m));
                }
            }
            Err(e) => {
                log.push(LogEntry {
                    at_ms: now_ms,
                    event: LogEvent::Error(e.clone()),
                });
                error = Some(e);
                break;
            }
        }
    }
    let w = Instant::now();
    let outcome = session.finish();
    let finish_ms = w.elapsed().as_secs_f64() * 1000.0;
    Ok(SimRun {
        scenario: cfg.scenario,
        source: source.name.clone(),
        outcome,
        error,
        log,
        frames_sent,
        frame_costs_ms: frame_costs,
        finish_ms,
        duration_ms: now_ms,
    })
}

/// Renders and frames capture `n` at sim time `now`; returns the bytes and the timestamp.
fn build_frame(client: &mut Client, now: f64, n: u32) -> Result<(Vec<u8>, f64), SimError> {
    let cfg = client.cfg;
    let mut t = match cfg.scenario {
        Scenario::RegularTimestamps => {
            let start = client.capture_start.unwrap_or(now);
            client.client_t(start) + n as f64 * (1000.0 / cfg.fps.max(0.1))
        }
        _ => client.client_t(now),
    };
    if cfg.tamper == Some(Tamper::NonMonotonicAt(n)) {
        t = client.last_ts - 10.0;
    }
    client.last_ts = client.last_ts.max(t);
    let mut jpeg = client.render(now, n)?;
    if cfg.tamper == Some(Tamper::ResolutionChangeAt(n)) {
        let img = image::load_from_memory(&jpeg)
            .map_err(|e| SimError::Encode(e.to_string()))?
            .to_rgb8();
        let small = image::imageops::resize(
            &img,
            cfg.video.width / 2,
            cfg.video.height / 2,
            image::imageops::FilterType::Triangle,
        );
        jpeg = encode_jpeg(&small, cfg.jpeg_quality)?;
    }
    if cfg.tamper == Some(Tamper::OversizeAt(n)) {
        // JPEG decoders stop at EOI; the padding only makes the frame too large.
        jpeg.resize(600 * 1024, 0);
    }
    Ok((encode_frame(t, &jpeg), t))
}

fn client_receive(client: &mut Client, tl: &mut Timeline, now: f64, m: &ServerMessage) {
    let net = client.cfg.network_ms;
    match m {
        ServerMessage::Challenge { oval, .. } => {
            client.oval = Some(*oval);
            client.capturing = true;
            client.capture_start = Some(now + 5.0);
            tl.push(now + 5.0, Ev::Capture);
        }
        ServerMessage::Guidance {
            code: GuidanceCode::FaceInOval,
            ..
        } if !client.sent_face_in_oval => {
            client.sent_face_in_oval = true;
            let t = client.client_t(now);
            tl.up(now + net, Ev::UpText(ClientMessage::FaceInOval { t }));
        }
        ServerMessage::Color { seq, rgb, .. } => {
            // Painted on the next animation frame.
            let raf = client.rng.random_range(4.0..=17.0);
            tl.push(now + raf, Ev::Paint(*seq, *rgb));
        }
        ServerMessage::Stop => {
            client.capturing = false;
            let t = client.client_t(now);
            tl.up(now + net, Ev::UpText(ClientMessage::End { t }));
        }
        _ => {}
    }
}
