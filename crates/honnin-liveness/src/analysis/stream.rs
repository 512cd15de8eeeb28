//! Stream signals: frame rate, timestamps, gaps and static frames (what a virtual camera
//! or an injected video betrays).

use super::*;

/// Stream signals.
pub(super) fn analyze_stream(
    rec: &Recording,
    th: &Thresholds,
    scores: &mut Vec<SignalScore>,
) -> StreamSignal {
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
