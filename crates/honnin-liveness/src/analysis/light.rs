//! The light-reflection signal: the displayed colour sequence found again on the face
//! (and not on the background) at a plausible lag.

use super::*;

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
pub(super) fn analyze_light(
    rec: &Recording,
    th: &Thresholds,
    scores: &mut Vec<SignalScore>,
) -> LightSignal {
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
pub(super) fn linear_fit(points: &[(f64, f64)], min_spread: f64) -> Option<(f64, f64)> {
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
