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

mod light;
mod movement;
mod stream;

use light::analyze_light;
use movement::analyze_movement;
use stream::analyze_stream;

/// The models a session uses (shared by every session of the process).
#[derive(Clone)]
pub struct Analyzers {
    /// The face engine (detection, landmarks, templates).
    pub engine: std::sync::Arc<honnin_engine::Engine>,
    /// The passive presentation-attack model.
    pub pad: std::sync::Arc<honnin_engine::pad::PadModel>,
}

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
    /// How far above the chance level (null p95) the correlation must be (default 0.1).
    pub light_null_margin: f64,
    /// Score scale of `lightCorrelation`, correlation units (default 0.08).
    pub light_correlation_scale: f64,
    /// Largest background-to-face response ratio ([`crate::outcome::LightSignal::background_ratio`])
    /// of a face lit by the screen; at or above it the light is uniform (`UniformLightResponse`;
    /// default 0.5).
    pub light_max_background_ratio: f64,
    /// Score scale of `lightLocality`, ratio units (default 0.08).
    pub light_background_scale: f64,
    /// Accepted response lag window (ms): a camera filming a face lit by the screen
    /// answers within a frame or two; a stream rendered after seeing the colour is late.
    /// This is the earliest accepted lag (default −100).
    pub light_min_lag_ms: f64,
    /// Latest accepted response lag after `colorDisplayed`, ms (default 250; earliest:
    /// `light_min_lag_ms`, default −100).
    pub light_max_lag_ms: f64,
    /// Score scale of `lightLag` at either end of the window, ms (default 30).
    pub light_lag_scale_ms: f64,
    /// Fewest frames inside the colour sequence for the light analysis.
    pub light_min_frames: usize,
    /// Colour echo (server send → `colorDisplayed` received) above which the client
    /// is suspiciously slow.
    pub max_color_echo_ms: f64,
    /// Score scale of `colorEcho`, ms (default 150).
    pub color_echo_scale_ms: f64,
    /// Identity: the false-match rate whose similarity threshold all pairs must reach.
    /// Default 1e-3 (similarity 50): with the table fitted on LFW and CFP this is the raw
    /// score (0.459) that "1e-4" stood for under the LFW-only table, where it was
    /// measured: face swaps' lowest pairs up to 53.7 on the old scale were caught, and 2 of
    /// 48 webcam live sessions (49.9, 50.4) were not decided live. 1e-4 on the new table
    /// would reject live sessions up to the old 70 (docs/liveness.md §2.4). With the
    /// fr_feature + SFace default, 1e-3 is that model's own similarity 50.
    pub identity_fmr: f64,
    /// Score scale of `identity`, similarity points (0–100 scale; default 4).
    pub identity_scale: f64,
    /// Frames spread over the session whose templates are compared pairwise (default 5, at
    /// least 2; the reference frame is added when not among them).
    pub identity_frames: usize,
    /// Movement: the face must grow by this factor into the oval.
    pub min_growth: f64,
    /// Score scale of `approachMovement`, growth-factor units (default 0.05).
    pub growth_scale: f64,
    /// Largest share of detections after the fit without a face, 0–1 (default 0.5;
    /// pass/fail, `FaceLost`).
    pub max_face_lost_fraction: f64,
    /// Largest share of detections with a second face of similar size, 0–1 (default 0.3;
    /// pass/fail, `MultipleFaces`).
    pub max_multiple_faces_fraction: f64,
    /// Stream: interval standard deviation below which timestamps are synthetic.
    pub synthetic_interval_std_ms: f64,
    /// Score scale of `timestampJitter`, ms (default 0.05).
    pub synthetic_scale_ms: f64,
    /// Intervals needed before the regularity test applies.
    pub synthetic_min_intervals: usize,
    /// Largest coefficient of variation (std / mean) of the frame intervals (default 0.8).
    pub max_interval_cv: f64,
    /// Longest accepted interval between two frames, ms (default 1000).
    pub max_gap_ms: f64,
    /// Frames whose luma grid differs from the previous one by less than this (mean
    /// absolute difference, levels) are static.
    pub static_difference_levels: f64,
    /// Largest share of static frames among consecutive pairs, 0–1 (default 0.3).
    pub max_static_fraction: f64,
    /// Score scale of `staticFrames`, fraction units (default 0.05).
    pub static_scale: f64,
    /// Fewest accepted frames for a reliable analysis (default 15; pass/fail, `TooFewFrames`).
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
        reference_face: reference.map(|r| rec.stored[r].face.clone()),
        reference_template,
        frames_received: rec.frames_received,
        analysis_ms: t0.elapsed().as_secs_f64() * 1e3,
    }
}

#[cfg(test)]
mod tests {
    use super::light::linear_fit;
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
