//! The final analysis of a recorded session: every signal, its score, the fusion.
//!
//! See `docs/liveness.md` for the rationale of each threshold.

use std::time::Instant;

use honnin_engine::geometry::Rect;
use honnin_engine::{Face, Template};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::challenge::{self, ChallengeKind};
use crate::frame::ColorStats;
use crate::fusion::{self, Decision, SignalScore, Strength};
use crate::math::{self, Sample, Schedule};
use crate::outcome::{
    reasons, CapturedImage, IdentitySignal, LightSignal, LivenessOutcome, MovementSignal,
    PadSignal, Reason, Signals, StreamSignal,
};
use crate::protocol::{OutcomeStatus, VideoSize};
use crate::session::Analyzers;

/// Every decision threshold of the analysis, with the scale of its score mapping
/// (the distance from the threshold at which a score reaches 0.73 or 0.27).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Thresholds {
    /// PAD: frames scored (the best by size, pose and sharpness).
    pub pad_frames: usize,
    /// The passive model's median live score below which a session is decided
    /// `spoof` (hard evidence); default `honnin_engine::PAD_HARD_EVIDENCE_BELOW`.
    pub pad_hard_below: f64,
    /// PAD score scale in logit units around `pad_hard_below`.
    pub pad_logit_scale: f64,
    /// The face's correlation with the colours must reach this, and also
    /// `light_null_margin` above the chance level of the session's own frames (the 95th
    /// percentile of its correlation with random sequences of the same timing).
    pub light_min_correlation: f64,
    pub light_null_margin: f64,
    pub light_correlation_scale: f64,
    pub light_max_background_ratio: f64,
    pub light_background_scale: f64,
    /// Accepted response lag window (ms): a camera filming a face lit by the screen
    /// answers within a frame or two; a stream rendered after seeing the colour is late.
    pub light_min_lag_ms: f64,
    pub light_max_lag_ms: f64,
    pub light_lag_scale_ms: f64,
    /// Fewest frames inside the colour sequence for the light analysis.
    pub light_min_frames: usize,
    /// Colour echo (server send → `colorDisplayed` received) above which the client
    /// is suspiciously slow.
    pub max_color_echo_ms: f64,
    pub color_echo_scale_ms: f64,
    /// Identity: the false-match rate whose similarity threshold all pairs must reach.
    /// Default 1e-3 (similarity 50): with the table fitted on LFW and CFP this is the raw
    /// score (0.459) that "1e-4" stood for under the LFW-only table, where it was
    /// measured: face swaps' lowest pairs up to 53.7 on the old scale were caught, and 2 of
    /// 48 webcam live sessions (49.9, 50.4) were not decided live. 1e-4 on the new table
    /// would reject live sessions up to the old 70 (docs/liveness.md §2.4). With the
    /// fr_feature + SFace default, 1e-3 is that model's own similarity 50.
    pub identity_fmr: f64,
    pub identity_scale: f64,
    pub identity_frames: usize,
    /// Movement: the face must grow by this factor into the oval.
    pub min_growth: f64,
    pub growth_scale: f64,
    pub max_face_lost_fraction: f64,
    pub max_multiple_faces_fraction: f64,
    /// Stream: interval standard deviation below which timestamps are synthetic.
    pub synthetic_interval_std_ms: f64,
    pub synthetic_scale_ms: f64,
    /// Intervals needed before the regularity test applies.
    pub synthetic_min_intervals: usize,
    pub max_interval_cv: f64,
    pub max_gap_ms: f64,
    /// Frames whose luma grid differs from the previous one by less than this (mean
    /// absolute difference, levels) are static.
    pub static_difference_levels: f64,
    pub max_static_fraction: f64,
    pub static_scale: f64,
    pub min_frames: usize,
    /// Lowest effective frame rate (fps).
    pub min_fps: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            pad_frames: 5,
            pad_hard_below: honnin_engine::pad::PAD_HARD_EVIDENCE_BELOW as f64,
            pad_logit_scale: 2.0,
            light_min_correlation: 0.5,
            light_null_margin: 0.1,
            light_correlation_scale: 0.08,
            light_max_background_ratio: 0.5,
            light_background_scale: 0.08,
            light_min_lag_ms: -100.0,
            light_max_lag_ms: 250.0,
            light_lag_scale_ms: 30.0,
            light_min_frames: 12,
            max_color_echo_ms: 1500.0,
            color_echo_scale_ms: 150.0,
            identity_fmr: 1e-3,
            identity_scale: 4.0,
            identity_frames: 5,
            min_growth: 1.15,
            growth_scale: 0.05,
            max_face_lost_fraction: 0.5,
            max_multiple_faces_fraction: 0.3,
            synthetic_interval_std_ms: 0.3,
            synthetic_scale_ms: 0.05,
            synthetic_min_intervals: 20,
            max_interval_cv: 0.8,
            max_gap_ms: 1000.0,
            static_difference_levels: 0.35,
            max_static_fraction: 0.3,
            static_scale: 0.05,
            min_frames: 15,
            min_fps: 8.0,
        }
    }
}

/// Which part of the session a frame or detection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhaseTag {
    OvalFit,
    Challenge,
    Stopped,
}

/// Per-frame record (every accepted frame).
#[derive(Debug, Clone)]
pub(crate) struct FrameRecord {
    pub t: f64,
    pub hash: u64,
    /// Luma-grid difference to the previous accepted frame (∞ for the first).
    pub frame_diff: f32,
    pub stats: Option<ColorStats>,
    /// The face box the statistics used.
    pub face_box: Option<Rect>,
    /// Mean RGB per background-grid cell (see [`crate::frame::scan`]).
    pub cells: Vec<[f32; 3]>,
}

/// The largest face of a detection, reduced to what the analysis needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaceInfo {
    pub rect: Rect,
    /// Inter-ocular distance (pixels).
    pub iod: f32,
}

/// One detection run.
#[derive(Debug, Clone)]
pub(crate) struct DetectionRecord {
    pub t: f64,
    pub phase: PhaseTag,
    pub primary: Option<FaceInfo>,
    /// A second face at least half the size of the first.
    pub multiple: bool,
}

/// A frame kept (JPEG and detected face) for PAD, identity and the result images.
#[derive(Debug, Clone)]
pub(crate) struct StoredFrame {
    pub t: f64,
    pub jpeg: Vec<u8>,
    pub face: Face,
    pub phase: PhaseTag,
}

/// One displayed colour.
#[derive(Debug, Clone)]
pub(crate) struct ColorEvent {
    pub rgb: [u8; 3],
    pub duration_ms: u32,
    /// `colorDisplayed.t` (client clock).
    pub t: f64,
    /// Server time from sending the colour to receiving `colorDisplayed` (ms).
    pub echo_ms: f64,
}

/// Everything a session recorded, handed to [`analyze`].
#[derive(Debug, Clone)]
pub(crate) struct Recording {
    pub challenge: ChallengeKind,
    pub video: VideoSize,
    pub seed: u64,
    pub frames: Vec<FrameRecord>,
    pub frames_received: u32,
    pub non_monotonic: u32,
    pub detections: Vec<DetectionRecord>,
    pub stored: Vec<StoredFrame>,
    pub colors: Vec<ColorEvent>,
    pub oval_fitted: bool,
    /// Client time of the fit (faceInOval or the timeout).
    pub fit_t: Option<f64>,
}

fn hard(
    signal: &'static str,
    value: f64,
    threshold: f64,
    score: f64,
    reason: &'static str,
) -> SignalScore {
    SignalScore {
        signal,
        value,
        threshold,
        score,
        strength: Strength::Hard,
        reason,
    }
}

fn soft(
    signal: &'static str,
    value: f64,
    threshold: f64,
    score: f64,
    reason: &'static str,
) -> SignalScore {
    SignalScore {
        signal,
        value,
        threshold,
        score,
        strength: Strength::Soft,
        reason,
    }
}

/// Score of a pass/fail check.
fn binary(pass: bool) -> f64 {
    if pass {
        1.0
    } else {
        0.02
    }
}

/// Stream signals.
fn analyze_stream(rec: &Recording, th: &Thresholds, scores: &mut Vec<SignalScore>) -> StreamSignal {
    let n = rec.frames.len();
    let intervals: Vec<f64> = rec.frames.windows(2).map(|w| w[1].t - w[0].t).collect();
    let duration = match (rec.frames.first(), rec.frames.last()) {
        (Some(a), Some(b)) => b.t - a.t,
        _ => 0.0,
    };
    let fps = if duration > 0.0 {
        (n as f64 - 1.0) / duration * 1000.0
    } else {
        0.0
    };
    let (imean, istd) = math::mean_std(&intervals).unwrap_or((0.0, 0.0));
    let cv = if imean > 0.0 { istd / imean } else { 0.0 };
    let max_gap = intervals.iter().copied().fold(0.0, f64::max);
    let duplicates = rec
        .frames
        .windows(2)
        .filter(|w| w[1].hash == w[0].hash)
        .count() as u32;
    let diffs: Vec<f64> = rec
        .frames
        .iter()
        .skip(1)
        .map(|f| f.frame_diff as f64)
        .collect();
    let statics = rec
        .frames
        .windows(2)
        .filter(|w| {
            w[1].hash == w[0].hash || (w[1].frame_diff as f64) < th.static_difference_levels
        })
        .count() as u32;
    let static_fraction = if n > 1 {
        statics as f64 / (n - 1) as f64
    } else {
        0.0
    };
    let s = StreamSignal {
        frames_received: rec.frames_received,
        frames_accepted: n as u32,
        non_monotonic: rec.non_monotonic,
        duration_ms: duration,
        fps,
        interval_mean_ms: imean,
        interval_std_ms: istd,
        interval_cv: cv,
        max_gap_ms: max_gap,
        duplicate_frames: duplicates,
        static_frames: statics,
        static_fraction,
        median_frame_difference: math::median(&diffs).unwrap_or(0.0),
    };
    scores.push(hard(
        "monotonicTimestamps",
        rec.non_monotonic as f64,
        0.5,
        binary(rec.non_monotonic == 0),
        reasons::NON_MONOTONIC_TIMESTAMPS,
    ));
    if intervals.len() >= th.synthetic_min_intervals {
        scores.push(hard(
            "timestampJitter",
            istd,
            th.synthetic_interval_std_ms,
            math::score_above(istd, th.synthetic_interval_std_ms, th.synthetic_scale_ms),
            reasons::SYNTHETIC_TIMESTAMPS,
        ));
    }
    let irregular = cv > th.max_interval_cv || max_gap > th.max_gap_ms;
    scores.push(soft(
        "frameTimingRegularity",
        cv,
        th.max_interval_cv,
        if irregular { 0.2 } else { 1.0 },
        reasons::IRREGULAR_FRAME_TIMING,
    ));
    if n > 1 {
        scores.push(hard(
            "staticFrames",
            static_fraction,
            th.max_static_fraction,
            math::score_below(static_fraction, th.max_static_fraction, th.static_scale),
            reasons::STATIC_FRAMES,
        ));
    }
    scores.push(soft(
        "frameCount",
        n as f64,
        th.min_frames as f64,
        binary(n >= th.min_frames),
        reasons::TOO_FEW_FRAMES,
    ));
    scores.push(soft(
        "frameRate",
        fps,
        th.min_fps,
        binary(fps >= th.min_fps),
        reasons::LOW_FRAME_RATE,
    ));
    s
}

/// Movement into the oval, continuity, faces lost, multiple faces.
fn analyze_movement(
    rec: &Recording,
    th: &Thresholds,
    scores: &mut Vec<SignalScore>,
) -> MovementSignal {
    let with_face: Vec<(&DetectionRecord, FaceInfo)> = rec
        .detections
        .iter()
        .filter_map(|d| d.primary.map(|f| (d, f)))
        .collect();
    let widths = |v: &[(&DetectionRecord, FaceInfo)]| -> Vec<f64> {
        v.iter().map(|(_, f)| f.rect.width as f64).collect()
    };
    let eye = |v: &[(&DetectionRecord, FaceInfo)]| -> Vec<f64> {
        v.iter()
            .map(|(_, f)| f.iod as f64 / (f.rect.width as f64).max(1.0))
            .collect()
    };
    let start: Vec<_> = with_face.iter().take(3).copied().collect();
    let mut fit: Vec<_> = with_face
        .iter()
        .filter(|(d, _)| d.phase != PhaseTag::OvalFit)
        .copied()
        .collect();
    if fit.is_empty() {
        let k = with_face.len().saturating_sub(3);
        fit = with_face[k..].to_vec();
    }
    let start_width = math::median(&widths(&start)).unwrap_or(0.0);
    let fit_width = math::median(&widths(&fit)).unwrap_or(0.0);
    let growth = if start_width > 0.0 {
        fit_width / start_width
    } else {
        0.0
    };
    let start_eye = math::median(&eye(&start)).unwrap_or(0.0);
    let fit_eye = math::median(&eye(&fit)).unwrap_or(0.0);
    let mut jumps = 0u32;
    for w in with_face.windows(2) {
        let ((da, a), (db, b)) = (w[0], w[1]);
        if db.t - da.t > 500.0 {
            continue;
        }
        let shift = a.rect.center().dist(b.rect.center()) / a.rect.width.max(1.0);
        let ratio = b.rect.width / a.rect.width.max(1.0);
        if shift > 0.5 || !(0.7..=1.43).contains(&ratio) {
            jumps += 1;
        }
    }
    let after: Vec<&DetectionRecord> = rec
        .detections
        .iter()
        .filter(|d| d.phase == PhaseTag::Challenge)
        .collect();
    let lost = if after.is_empty() {
        0.0
    } else {
        after.iter().filter(|d| d.primary.is_none()).count() as f64 / after.len() as f64
    };
    let multiple = if rec.detections.is_empty() {
        0.0
    } else {
        rec.detections.iter().filter(|d| d.multiple).count() as f64 / rec.detections.len() as f64
    };
    let first_t = rec.frames.first().map(|f| f.t).unwrap_or(0.0);
    let m = MovementSignal {
        start_width,
        fit_width,
        growth,
        start_eye_ratio: start_eye,
        fit_eye_ratio: fit_eye,
        perspective_change: if start_eye > 0.0 {
            fit_eye / start_eye
        } else {
            0.0
        },
        jumps,
        detections: rec.detections.len() as u32,
        face_lost_fraction: lost,
        multiple_faces_fraction: multiple,
        oval_fitted: rec.oval_fitted,
        time_to_fit_ms: rec.fit_t.map(|t| t - first_t).unwrap_or(0.0),
    };
    scores.push(soft(
        "approachMovement",
        growth,
        th.min_growth,
        math::score_above(growth, th.min_growth, th.growth_scale),
        reasons::NO_APPROACH_MOVEMENT,
    ));
    scores.push(soft(
        "continuity",
        jumps as f64,
        0.5,
        binary(jumps == 0),
        reasons::DISCONTINUOUS_MOVEMENT,
    ));
    scores.push(soft(
        "ovalFit",
        if rec.oval_fitted { 1.0 } else { 0.0 },
        0.5,
        binary(rec.oval_fitted),
        reasons::OVAL_FIT_TIMEOUT,
    ));
    scores.push(soft(
        "faceLost",
        lost,
        th.max_face_lost_fraction,
        binary(lost <= th.max_face_lost_fraction),
        reasons::FACE_LOST,
    ));
    scores.push(soft(
        "singleFace",
        multiple,
        th.max_multiple_faces_fraction,
        binary(multiple <= th.max_multiple_faces_fraction),
        reasons::MULTIPLE_FACES,
    ));
    m
}

/// The schedule of displayed colours on the client clock.
fn schedule_of(colors: &[ColorEvent], rgb_of: impl Fn(usize) -> [u8; 3]) -> Option<Schedule> {
    let last = colors.last()?;
    let steps = colors
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let rgb = rgb_of(i);
            (c.t, [rgb[0] as f64, rgb[1] as f64, rgb[2] as f64])
        })
        .collect();
    Some(Schedule {
        steps,
        end_ms: last.t + last.duration_ms as f64,
    })
}

const LAG_MIN_MS: f64 = -200.0;
const LAG_MAX_MS: f64 = 800.0;
const LAG_STEP_MS: f64 = 10.0;
const NULL_SEQUENCES: usize = 24;

/// Light reflection: face colour against the displayed colours, background alike?, lag.
fn analyze_light(rec: &Recording, th: &Thresholds, scores: &mut Vec<SignalScore>) -> LightSignal {
    let mut sig = LightSignal {
        colors_displayed: rec.colors.len(),
        color_echo_ms: math::median(&rec.colors.iter().map(|c| c.echo_ms).collect::<Vec<_>>())
            .unwrap_or(0.0),
        ..Default::default()
    };
    let insufficient = |scores: &mut Vec<SignalScore>, frames: usize| {
        scores.push(soft(
            "lightFrames",
            frames as f64,
            th.light_min_frames as f64,
            0.0,
            reasons::INSUFFICIENT_LIGHT_DATA,
        ));
    };
    let Some(schedule) = schedule_of(&rec.colors, |i| rec.colors[i].rgb) else {
        insufficient(scores, 0);
        return sig;
    };
    let window = (
        schedule.steps[0].0 + LAG_MIN_MS,
        schedule.end_ms + LAG_MAX_MS,
    );
    let in_window = |t: f64| t >= window.0 && t < window.1;
    let face: Vec<Sample> = rec
        .frames
        .iter()
        .filter(|f| in_window(f.t))
        .filter_map(|f| f.stats.as_ref().map(|s| (f.t, s.face)))
        .collect();
    let face_mean = math::mean_std(
        &face
            .iter()
            .map(|s| s.1.iter().sum::<f64>() / 3.0)
            .collect::<Vec<_>>(),
    )
    .map(|m| m.0)
    .unwrap_or(0.0);
    let face_d = math::detrend(&face);
    let Some(fit) = math::best_lag(
        &schedule,
        &face_d,
        LAG_MIN_MS,
        LAG_MAX_MS,
        LAG_STEP_MS,
        th.light_min_frames,
    ) else {
        insufficient(scores, face.len());
        return sig;
    };
    sig.frames_used = fit.samples;
    sig.colors_covered = fit.steps_covered;
    sig.face_correlation = fit.correlation;
    sig.face_gain = fit.gain;
    sig.lag_ms = fit.lag_ms;
    if fit.steps_covered < 4 {
        insufficient(scores, fit.samples);
        return sig;
    }
    // What chance reaches on these frames: the best correlation with random colour
    // sequences of the same timing.
    let mut rng = challenge::rng(rec.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut null = Vec::with_capacity(NULL_SEQUENCES);
    for _ in 0..NULL_SEQUENCES {
        // Drawn by the same rules as real sequences (balanced channels, no repeats).
        let fake: Vec<[u8; 3]> = challenge::color_sequence(&mut rng, rec.colors.len(), 400, 400)
            .iter()
            .map(|c| c.rgb)
            .collect();
        if let Some(s) = schedule_of(&rec.colors, |i| fake[i]) {
            if let Some(f) = math::best_lag(
                &s,
                &face_d,
                LAG_MIN_MS,
                LAG_MAX_MS,
                LAG_STEP_MS,
                th.light_min_frames,
            ) {
                null.push(f.correlation);
            }
        }
    }
    sig.null_correlation_p95 = math::quantile(&null, 0.95).unwrap_or(0.0);
    sig.chroma_agreement = chroma_agreement(&schedule, &face, fit.lag_ms);

    let corr_threshold = th
        .light_min_correlation
        .max(sig.null_correlation_p95 + th.light_null_margin);
    sig.correlation_threshold = corr_threshold;
    scores.push(hard(
        "lightCorrelation",
        fit.correlation,
        corr_threshold,
        math::score_above(fit.correlation, corr_threshold, th.light_correlation_scale),
        reasons::NO_LIGHT_REFLECTION,
    ));
    scores.push(soft(
        "colorEcho",
        sig.color_echo_ms,
        th.max_color_echo_ms,
        math::score_below(
            sig.color_echo_ms,
            th.max_color_echo_ms,
            th.color_echo_scale_ms,
        ),
        reasons::SLOW_COLOR_ECHO,
    ));
    if fit.correlation < corr_threshold || fit.gain <= 0.0 {
        // No reflection: the background and lag checks have nothing to measure.
        return sig;
    }
    let bg =
        background_fit(rec, &schedule, window, fit.lag_ms, face_mean, fit.gain).unwrap_or_default();
    sig.background_cells = bg.cells;
    sig.background_correlation = bg.correlation;
    sig.background_gain = bg.gain;
    sig.background_ratio_absolute = bg.gain / fit.gain;
    sig.face_additive_fraction = bg
        .face_model
        .map_or(f64::NAN, |(a, b)| a / (a + b * face_mean));
    sig.background_ratio_normalised = if bg.brightness > 1.0 && face_mean > 1.0 {
        (bg.gain / bg.brightness) / (fit.gain / face_mean)
    } else {
        f64::NAN
    };
    if bg.cells < MIN_BACKGROUND_CELLS {
        // No measurable background around the face (a face filling the frame, which the
        // oval forbids, or a clipped or black background): the locality cannot be
        // checked, so the session cannot be `live`, but this is no evidence of a spoof.
        scores.push(soft(
            "lightLocality",
            bg.cells as f64,
            MIN_BACKGROUND_CELLS as f64,
            0.0,
            reasons::INSUFFICIENT_LIGHT_DATA,
        ));
    } else {
        let ratio = bg.ratio;
        sig.background_ratio = ratio;
        scores.push(hard(
            "lightLocality",
            ratio,
            th.light_max_background_ratio,
            math::score_below(
                ratio,
                th.light_max_background_ratio,
                th.light_background_scale,
            ),
            reasons::UNIFORM_LIGHT_RESPONSE,
        ));
    }
    let lag_score = math::score_below(fit.lag_ms, th.light_max_lag_ms, th.light_lag_scale_ms).min(
        math::score_above(fit.lag_ms, th.light_min_lag_ms, th.light_lag_scale_ms),
    );
    scores.push(hard(
        "lightLag",
        fit.lag_ms,
        th.light_max_lag_ms,
        lag_score,
        reasons::LATE_LIGHT_RESPONSE,
    ));
    sig
}

/// Fewest usable background cells for the locality check.
const MIN_BACKGROUND_CELLS: usize = 4;
/// Background cells darker than this (mean level) respond too little to measure.
const MIN_CELL_LEVEL: f64 = 20.0;
/// Cells with a channel brighter than this (mean level) clip and cannot respond fully.
const MAX_CELL_CHANNEL: f64 = 235.0;

/// The background's response to the colours, against the face's.
#[derive(Debug, Clone, Copy, Default)]
struct BackgroundFit {
    /// Usable cells (neither too dark nor clipping).
    cells: usize,
    /// Response of the mean of the usable cells (levels per displayed level).
    gain: f64,
    correlation: f64,
    /// Mean brightness of the usable cells.
    brightness: f64,
    /// The face's response as `a + b·level` over its sub-cells, when their brightness
    /// varies enough to fit it.
    face_model: Option<(f64, f64)>,
    /// Median over the usable cells of (cell gain) / (gain predicted for the cell had it
    /// been lit like the face).
    ratio: f64,
}

/// Least spread (standard deviation, levels) of the face sub-cells' brightness for
/// fitting the face's response as a function of level.
const MIN_FACE_SPREAD: f64 = 6.0;

/// Background cells: beside the head (centre more than 0.3 face widths left or right of
/// the box, between 0.6 face heights above its top and its middle — above the
/// shoulders) and above it (more than 0.6 face heights above the top, clear of hair).
fn background_cells(video: VideoSize, face: &Rect) -> Vec<usize> {
    let (cols, rows) = crate::frame::cell_grid(video.width, video.height);
    let cell = crate::frame::CELL_PX as f32;
    let (l, t, w, h) = (face.left, face.top, face.width, face.height);
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let x = c as f32 * cell + (video.width as f32 - c as f32 * cell).min(cell) / 2.0;
            let y = r as f32 * cell + (video.height as f32 - r as f32 * cell).min(cell) / 2.0;
            let side =
                (x < l - 0.3 * w || x > l + w + 0.3 * w) && y >= t - 0.6 * h && y <= t + 0.5 * h;
            let above = y < t - 0.6 * h;
            if side || above {
                out.push((r * cols + c) as usize);
            }
        }
    }
    out
}

/// The background cells' responses at `lag_ms`, against the face's.
///
/// How a surface answers the screen's light depends on its level: reflected light is
/// proportional to albedo (multiplicative; camera gamma keeps it so), a screen's glare
/// or a digital tint may add the same amount everywhere (additive). The face's own
/// sub-cells (eyes and brows are darker than skin) give its response as `a + b·level`;
/// each background cell is compared with what that model predicts at the cell's level.
/// For any tint of the whole frame the background answers like the face (ratio ≈ 1),
/// whatever its brightness; a real face ~40 cm from the screen receives far more of its
/// light than a background 1–2 m away (ratio ≈ ρ, a small fraction). When the face's
/// brightness is too uniform to fit the model, the prediction is the smaller of the
/// purely multiplicative and purely additive ones, `min(1, B/F)·face gain` (any tint
/// still gives ≥ 1).
fn background_fit(
    rec: &Recording,
    schedule: &Schedule,
    window: (f64, f64),
    lag_ms: f64,
    face_level: f64,
    face_gain: f64,
) -> Option<BackgroundFit> {
    let frames: Vec<&FrameRecord> = rec
        .frames
        .iter()
        .filter(|f| f.t >= window.0 && f.t < window.1 && f.face_box.is_some())
        .collect();
    let med = |g: fn(&Rect) -> f32| {
        math::median(
            &frames
                .iter()
                .filter_map(|f| f.face_box.map(|b| g(&b) as f64))
                .collect::<Vec<_>>(),
        )
    };
    let face = Rect::new(
        med(|b| b.left)? as f32,
        med(|b| b.top)? as f32,
        med(|b| b.width)? as f32,
        med(|b| b.height)? as f32,
    );
    let series = |i: usize| -> Vec<Sample> {
        frames
            .iter()
            .filter_map(|f| f.cells.get(i).map(|c| (f.t, c.map(|v| v as f64))))
            .collect()
    };
    // The face's response by level, over its sub-cells.
    let face_cells: Vec<(f64, f64)> = (0..crate::frame::FACE_CELLS * crate::frame::FACE_CELLS)
        .filter_map(|j| {
            let s: Vec<Sample> = frames
                .iter()
                .filter_map(|f| {
                    let c = f.stats.as_ref()?.cells.get(j)?;
                    Some((f.t, c.map(|v| v as f64)))
                })
                .collect();
            let level = s.iter().map(|x| x.1.iter().sum::<f64>() / 3.0).sum::<f64>()
                / s.len().max(1) as f64;
            let fit = math::fit_at_lag(schedule, &math::detrend(&s), lag_ms)?;
            (level >= MIN_CELL_LEVEL).then_some((level, fit.gain))
        })
        .collect();
    let face_model = linear_fit(&face_cells, MIN_FACE_SPREAD);
    let predict = |level: f64| -> f64 {
        match face_model {
            Some((a, b)) => a + b * level,
            None => (level / face_level.max(1.0)).min(1.0) * face_gain,
        }
    };
    let mut usable = Vec::new();
    let mut ratios = Vec::new();
    for i in background_cells(rec.video, &face) {
        let s = series(i);
        if s.is_empty() {
            continue;
        }
        let n = s.len() as f64;
        let ch = [0, 1, 2].map(|c| s.iter().map(|x| x.1[c]).sum::<f64>() / n);
        let level = ch.iter().sum::<f64>() / 3.0;
        if level < MIN_CELL_LEVEL || ch.iter().any(|&c| c > MAX_CELL_CHANNEL) {
            continue;
        }
        if let Some(fit) = math::fit_at_lag(schedule, &math::detrend(&s), lag_ms) {
            // A prediction at or below zero (a glare-like face response extrapolated to a
            // bright cell) counts as tiny: any response of the cell is then tint-like.
            ratios.push(fit.gain / predict(level).max(0.01 * face_gain).max(1e-9));
            usable.push((i, level));
        }
    }
    let mean_series: Vec<Sample> = frames
        .iter()
        .filter_map(|f| {
            let v: Vec<&[f32; 3]> = usable.iter().filter_map(|&(i, _)| f.cells.get(i)).collect();
            (!v.is_empty()).then(|| {
                let n = v.len() as f64;
                (
                    f.t,
                    [0, 1, 2].map(|c| v.iter().map(|x| x[c] as f64).sum::<f64>() / n),
                )
            })
        })
        .collect();
    let all = math::fit_at_lag(schedule, &math::detrend(&mean_series), lag_ms);
    Some(BackgroundFit {
        cells: usable.len(),
        gain: all.map_or(0.0, |f| f.gain),
        correlation: all.map_or(0.0, |f| f.correlation),
        brightness: usable.iter().map(|u| u.1).sum::<f64>() / usable.len().max(1) as f64,
        face_model,
        ratio: math::median(&ratios).unwrap_or(f64::INFINITY),
    })
}

/// Least-squares line `y = a + b·x` through `(x, y)` points; `None` with fewer than 4
/// points or when the x values spread (standard deviation) less than `min_spread`.
fn linear_fit(points: &[(f64, f64)], min_spread: f64) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 4 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if (sxx / n).sqrt() < min_spread {
        return None;
    }
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// Mean cosine between the face's chromaticity shift during each chromatic colour and
/// that colour's own chromaticity direction.
fn chroma_agreement(schedule: &Schedule, face: &[Sample], lag_ms: f64) -> f64 {
    let chroma: Vec<(usize, [f64; 2])> = face
        .iter()
        .filter_map(|&(t, v)| {
            schedule
                .step_at(t - lag_ms)
                .map(|k| (k, math::chromaticity(v)))
        })
        .collect();
    if chroma.is_empty() {
        return 0.0;
    }
    let n = chroma.len() as f64;
    let mean = [
        chroma.iter().map(|c| c.1[0]).sum::<f64>() / n,
        chroma.iter().map(|c| c.1[1]).sum::<f64>() / n,
    ];
    let mut cos = Vec::new();
    for (k, (_, rgb)) in schedule.steps.iter().enumerate() {
        let dir = math::chromaticity(*rgb);
        let dir = [dir[0] - 1.0 / 3.0, dir[1] - 1.0 / 3.0];
        if dir[0].abs() + dir[1].abs() < 1e-6 {
            continue; // white or black: no chromatic direction
        }
        let pts: Vec<[f64; 2]> = chroma.iter().filter(|c| c.0 == k).map(|c| c.1).collect();
        if pts.is_empty() {
            continue;
        }
        let m = pts.len() as f64;
        let shift = [
            pts.iter().map(|p| p[0]).sum::<f64>() / m - mean[0],
            pts.iter().map(|p| p[1]).sum::<f64>() / m - mean[1],
        ];
        cos.push(math::cosine2(shift, dir));
    }
    math::mean_std(&cos).map(|m| m.0).unwrap_or(0.0)
}

/// Ranking of a stored frame for PAD and the reference image: large, frontal, sharp.
fn frame_quality(f: &StoredFrame) -> f64 {
    let pose = (f.face.pose.yaw.abs() + f.face.pose.pitch.abs()) as f64;
    let frontal = (1.0 - pose / 60.0).clamp(0.05, 1.0);
    let sharp = 0.5 + (f.face.quality.sharpness as f64 / 200.0).clamp(0.0, 0.5);
    f.face.face_size as f64 * frontal * sharp
}

/// Indices of `n` items spread evenly over `0..len`.
fn spread(len: usize, n: usize) -> Vec<usize> {
    if len == 0 || n == 0 {
        return Vec::new();
    }
    if n >= len {
        return (0..len).collect();
    }
    if n == 1 {
        return vec![len / 2];
    }
    let mut v: Vec<usize> = (0..n)
        .map(|i| ((i as f64) * (len - 1) as f64 / (n - 1) as f64).round() as usize)
        .collect();
    v.dedup();
    v
}

struct FrameResult {
    pad: Option<f32>,
    template: Option<Template>,
}

/// Runs the whole analysis.
pub(crate) fn analyze(
    rec: Recording,
    analyzers: &Analyzers,
    th: &Thresholds,
    audit_limit: u8,
) -> LivenessOutcome {
    let t0 = Instant::now();
    if rec.stored.is_empty() {
        let mut o = LivenessOutcome::failed(reasons::NO_FACE, rec.frames_received);
        o.analysis_ms = t0.elapsed().as_secs_f64() * 1e3;
        return o;
    }
    let mut scores = Vec::new();
    let stream = analyze_stream(&rec, th, &mut scores);
    let movement = analyze_movement(&rec, th, &mut scores);
    let light = rec
        .challenge
        .has_light()
        .then(|| analyze_light(&rec, th, &mut scores));

    // Frames for PAD (the best after the fit) and identity (spread over the session).
    let mut ranked: Vec<usize> = (0..rec.stored.len()).collect();
    let fitted: Vec<usize> = ranked
        .iter()
        .copied()
        .filter(|&i| rec.stored[i].phase != PhaseTag::OvalFit)
        .collect();
    if fitted.len() >= 3 {
        ranked = fitted;
    }
    ranked
        .sort_by(|&a, &b| frame_quality(&rec.stored[b]).total_cmp(&frame_quality(&rec.stored[a])));
    let pad_set: Vec<usize> = ranked.iter().copied().take(th.pad_frames.max(1)).collect();
    let reference = pad_set.first().copied();
    let mut id_set = spread(rec.stored.len(), th.identity_frames.max(2));
    if let Some(r) = reference {
        if !id_set.contains(&r) {
            id_set.push(r);
        }
    }
    let mut work: Vec<usize> = pad_set.iter().chain(id_set.iter()).copied().collect();
    work.sort_unstable();
    work.dedup();
    let engine = &analyzers.engine;
    let results: Vec<(usize, FrameResult)> = work
        .par_iter()
        .map(|&i| {
            let f = &rec.stored[i];
            let mut r = FrameResult {
                pad: None,
                template: None,
            };
            let img = match engine.decode(&f.jpeg) {
                Ok(img) => img,
                Err(e) => {
                    tracing::warn!(error = %e, "liveness: a stored frame no longer decodes");
                    return (i, r);
                }
            };
            if pad_set.contains(&i) {
                match analyzers
                    .pad
                    .live_score(&img.rgb, &f.face.bounding_box_pixels)
                {
                    Ok(p) if p.is_finite() => r.pad = Some(p),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "liveness: PAD failed on a frame"),
                }
            }
            if id_set.contains(&i) {
                match engine.template_from_landmarks(&img, &f.face.landmark_points()) {
                    Ok(t) => r.template = Some(t),
                    Err(e) => tracing::warn!(error = %e, "liveness: template failed on a frame"),
                }
            }
            (i, r)
        })
        .collect();

    // PAD.
    let pad_scores: Vec<f32> = pad_set
        .iter()
        .filter_map(|i| results.iter().find(|r| r.0 == *i).and_then(|r| r.1.pad))
        .collect();
    let pad = if pad_scores.is_empty() {
        scores.push(soft(
            "pad",
            0.0,
            0.5,
            0.0,
            reasons::INSUFFICIENT_FACE_FRAMES,
        ));
        None
    } else {
        let med =
            math::median(&pad_scores.iter().map(|&p| p as f64).collect::<Vec<_>>()).unwrap_or(0.0);
        // Hard evidence only below a score measured to be safe for live captures of
        // every kind at hand (phones and dim webcams included); see docs/liveness.md §2.1.
        let thr = th.pad_hard_below;
        let logit = |p: f64| {
            let p = p.clamp(1e-6, 1.0 - 1e-6);
            (p / (1.0 - p)).ln()
        };
        scores.push(hard(
            "pad",
            med,
            thr,
            math::score_above(logit(med), logit(thr), th.pad_logit_scale),
            reasons::PASSIVE_SPOOF,
        ));
        Some(PadSignal {
            frame_scores: pad_scores.clone(),
            median: med as f32,
            threshold: thr as f32,
        })
    };

    // Identity: every pair of templates must match.
    let templates: Vec<(usize, &Template)> = id_set
        .iter()
        .filter_map(|i| {
            results
                .iter()
                .find(|r| r.0 == *i)
                .and_then(|r| r.1.template.as_ref())
                .map(|t| (*i, t))
        })
        .collect();
    let id_threshold = engine.threshold_for_fmr(th.identity_fmr);
    let identity = if templates.len() < 3 {
        scores.push(soft(
            "identity",
            templates.len() as f64,
            3.0,
            0.0,
            reasons::INSUFFICIENT_FACE_FRAMES,
        ));
        None
    } else {
        let mut min_sim = f32::INFINITY;
        for a in 0..templates.len() {
            for b in a + 1..templates.len() {
                match engine.compare(templates[a].1, templates[b].1) {
                    Ok(c) => min_sim = min_sim.min(c.similarity),
                    Err(e) => tracing::warn!(error = %e, "liveness: template comparison failed"),
                }
            }
        }
        if !min_sim.is_finite() {
            min_sim = 0.0;
        }
        scores.push(hard(
            "identity",
            min_sim as f64,
            id_threshold as f64,
            math::score_above(min_sim as f64, id_threshold as f64, th.identity_scale),
            reasons::IDENTITY_CHANGED,
        ));
        Some(IdentitySignal {
            frames_compared: templates.len(),
            min_similarity: min_sim,
            threshold: id_threshold,
        })
    };

    let confidence = fusion::fuse(&scores);
    let decision = Decision::from_confidence(confidence);
    let mut failing: Vec<&SignalScore> = scores.iter().filter(|s| !s.passed()).collect();
    failing.sort_by(|a, b| a.contribution().total_cmp(&b.contribution()));
    let mut reason_list: Vec<Reason> = Vec::new();
    for s in failing {
        if !reason_list.iter().any(|r| r.code == s.reason) {
            reason_list.push(Reason::new(s.reason));
        }
    }

    let captured = |i: usize| -> CapturedImage {
        let f = &rec.stored[i];
        CapturedImage {
            jpeg: f.jpeg.clone(),
            bounding_box: f.face.bounding_box,
            width: rec.video.width,
            height: rec.video.height,
            timestamp_ms: f.t,
        }
    };
    let reference_image = reference.map(captured);
    let reference_template = reference.and_then(|r| {
        results
            .iter()
            .find(|x| x.0 == r)
            .and_then(|x| x.1.template.clone())
    });
    let others: Vec<usize> = (0..rec.stored.len())
        .filter(|i| Some(*i) != reference)
        .collect();
    let audit_images = spread(others.len(), audit_limit.min(4) as usize)
        .into_iter()
        .map(|k| captured(others[k]))
        .collect();

    LivenessOutcome {
        status: OutcomeStatus::Succeeded,
        status_reason: None,
        confidence,
        decision,
        reasons: reason_list,
        signals: Signals {
            scores,
            pad,
            light,
            movement,
            identity,
            stream,
        },
        reference_image,
        audit_images,
        reference_template,
        frames_received: rec.frames_received,
        analysis_ms: t0.elapsed().as_secs_f64() * 1e3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_fit_recovers_a_line_and_refuses_a_point_cloud_without_spread() {
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 10.0, 0.5 + 0.02 * i as f64 * 10.0))
            .collect();
        let (a, b) = linear_fit(&pts, 6.0).unwrap();
        assert!((a - 0.5).abs() < 1e-9 && (b - 0.02).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (100.0 + (i % 2) as f64, i as f64))
            .collect();
        assert!(linear_fit(&flat, 6.0).is_none());
        assert!(linear_fit(&pts[..3], 6.0).is_none());
    }

    #[test]
    fn spread_picks_evenly_including_both_ends() {
        assert_eq!(spread(10, 5), vec![0, 2, 5, 7, 9]);
        assert_eq!(spread(3, 5), vec![0, 1, 2]);
        assert_eq!(spread(0, 5), Vec::<usize>::new());
        assert_eq!(spread(7, 1), vec![3]);
    }

    fn rec_with_intervals(intervals: &[f64]) -> Recording {
        let mut t = 1000.0;
        let mut frames = vec![];
        for (i, d) in std::iter::once(&0.0).chain(intervals).enumerate() {
            t += d;
            frames.push(FrameRecord {
                t,
                hash: i as u64,
                frame_diff: 2.0,
                stats: None,
                face_box: None,
                cells: Vec::new(),
            });
        }
        Recording {
            challenge: ChallengeKind::FaceMovementChallenge,
            video: VideoSize {
                width: 640,
                height: 480,
            },
            seed: 1,
            frames_received: frames.len() as u32,
            frames,
            non_monotonic: 0,
            detections: vec![],
            stored: vec![],
            colors: vec![],
            oval_fitted: true,
            fit_t: None,
        }
    }

    fn score<'a>(s: &'a [SignalScore], name: &str) -> &'a SignalScore {
        s.iter().find(|x| x.signal == name).unwrap()
    }

    #[test]
    fn perfectly_regular_timestamps_are_synthetic_and_jittered_ones_are_not() {
        let th = Thresholds::default();
        let mut s = vec![];
        analyze_stream(&rec_with_intervals(&[1000.0 / 15.0; 40]), &th, &mut s);
        assert!(!score(&s, "timestampJitter").passed());
        let jitter: Vec<f64> = (0..40)
            .map(|i| 66.7 + [-3.0, 1.5, 4.0, -2.0, 0.5][i % 5])
            .collect();
        let mut s = vec![];
        let st = analyze_stream(&rec_with_intervals(&jitter), &th, &mut s);
        assert!(score(&s, "timestampJitter").passed());
        assert!(score(&s, "frameRate").passed() && score(&s, "frameCount").passed());
        assert!((st.fps - 15.0).abs() < 0.5, "{}", st.fps);
        // A few frames at a low rate.
        let mut s = vec![];
        analyze_stream(&rec_with_intervals(&[200.0; 8]), &th, &mut s);
        assert!(!score(&s, "frameCount").passed() && !score(&s, "frameRate").passed());
        assert!(
            s.iter().all(|x| x.signal != "timestampJitter"),
            "too few intervals to judge"
        );
    }

    #[test]
    fn static_frames_are_counted() {
        let th = Thresholds::default();
        let mut r = rec_with_intervals(&[66.0; 30]);
        for f in r.frames.iter_mut().skip(1).step_by(2) {
            f.frame_diff = 0.1;
        }
        let mut s = vec![];
        let st = analyze_stream(&r, &th, &mut s);
        assert_eq!(st.static_frames, 15);
        assert!(!score(&s, "staticFrames").passed());
    }
}
