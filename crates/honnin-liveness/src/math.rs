//! Pure numerics of the analysis: robust statistics, chromaticity, the colour-response
//! correlation and its lag, and the score mappings used by the fusion.

/// Median of finite values (NaNs are ignored); `None` for no values.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The `q`-quantile (0–1, nearest rank) of finite values.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    Some(v[i])
}

/// Mean and (population) standard deviation.
pub fn mean_std(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let m = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    Some((m, var.sqrt()))
}

/// Pearson correlation of two equally long series; `None` when either is constant
/// or they have fewer than 3 points.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 3 {
        return None;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (a, b) = (x[i] - mx, y[i] - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    if sxx <= 1e-12 || syy <= 1e-12 {
        return None;
    }
    Some(sxy / (sxx * syy).sqrt())
}

/// Chromaticity `(r, g)` = `(R, G) / (R + G + B)`; `(1/3, 1/3)` for black.
pub fn chromaticity(rgb: [f64; 3]) -> [f64; 2] {
    let s = rgb[0].max(0.0) + rgb[1].max(0.0) + rgb[2].max(0.0);
    if s <= 1e-9 {
        return [1.0 / 3.0, 1.0 / 3.0];
    }
    [rgb[0].max(0.0) / s, rgb[1].max(0.0) / s]
}

/// Cosine of the angle between two 2-D vectors (0 when either is ~zero).
pub fn cosine2(a: [f64; 2], b: [f64; 2]) -> f64 {
    let na = (a[0] * a[0] + a[1] * a[1]).sqrt();
    let nb = (b[0] * b[0] + b[1] * b[1]).sqrt();
    if na < 1e-12 || nb < 1e-12 {
        return 0.0;
    }
    (a[0] * b[0] + a[1] * b[1]) / (na * nb)
}

/// The logistic function.
pub fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Score in (0, 1) that is 0.5 at `threshold` and rises with `value`; `scale` is the
/// distance from the threshold at which the score reaches logistic(1) ≈ 0.73.
pub fn score_above(value: f64, threshold: f64, scale: f64) -> f64 {
    if value.is_nan() {
        return 0.0;
    }
    logistic((value - threshold) / scale.abs().max(1e-12))
}

/// Score in (0, 1) that is 0.5 at `threshold` and falls as `value` rises.
pub fn score_below(value: f64, threshold: f64, scale: f64) -> f64 {
    if value.is_nan() {
        return 0.0;
    }
    logistic((threshold - value) / scale.abs().max(1e-12))
}

/// The displayed colour schedule on the client clock: colour `rgb` from `start_ms`
/// until the next step's start (the last one until `end_ms`).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Each step's start on the client clock in milliseconds and its colour (RGB, 0–255),
    /// sorted by start time.
    pub steps: Vec<(f64, [f64; 3])>,
    /// When the last colour stops showing, client clock, milliseconds.
    pub end_ms: f64,
}

impl Schedule {
    /// The colour shown at client time `t`, if inside the schedule.
    pub fn color_at(&self, t: f64) -> Option<[f64; 3]> {
        let first = self.steps.first()?;
        if t < first.0 || t >= self.end_ms {
            return None;
        }
        // Steps are sorted by start time (the session enforces it).
        let i = self.steps.partition_point(|s| s.0 <= t);
        self.steps.get(i.checked_sub(1)?).map(|s| s.1)
    }
    /// The index of the step shown at `t`.
    pub fn step_at(&self, t: f64) -> Option<usize> {
        let first = self.steps.first()?;
        if t < first.0 || t >= self.end_ms {
            return None;
        }
        self.steps.partition_point(|s| s.0 <= t).checked_sub(1)
    }
}

/// One measured sample: client time and a 3-channel value (e.g. mean face RGB).
pub type Sample = (f64, [f64; 3]);

/// Removes a per-channel least-squares line in time (slow drift from movement or
/// exposure), keeping the sample times.
pub fn detrend(samples: &[Sample]) -> Vec<Sample> {
    let n = samples.len();
    if n < 3 {
        return samples.to_vec();
    }
    let mt = samples.iter().map(|s| s.0).sum::<f64>() / n as f64;
    let stt: f64 = samples.iter().map(|s| (s.0 - mt).powi(2)).sum();
    let mut out = samples.to_vec();
    for c in 0..3 {
        let my = samples.iter().map(|s| s.1[c]).sum::<f64>() / n as f64;
        let sty: f64 = samples.iter().map(|s| (s.0 - mt) * (s.1[c] - my)).sum();
        let slope = if stt > 1e-12 { sty / stt } else { 0.0 };
        for (o, s) in out.iter_mut().zip(samples) {
            o.1[c] = s.1[c] - my - slope * (s.0 - mt);
        }
    }
    out
}

/// How well a response follows the schedule when delayed by `lag_ms`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResponseFit {
    /// The delay, in milliseconds, between a colour's display and the response it is
    /// compared with.
    pub lag_ms: f64,
    /// Pooled Pearson correlation over the three channels (each channel centred on its
    /// own mean) between the displayed colour at `t − lag` and the response at `t`.
    pub correlation: f64,
    /// Least-squares slope: response levels per displayed colour level (0–255 scale).
    pub gain: f64,
    /// Samples that fell inside the schedule.
    pub samples: usize,
    /// Distinct schedule steps those samples cover.
    pub steps_covered: usize,
}

/// Fits `response` against `schedule` delayed by `lag_ms`.
pub fn fit_at_lag(schedule: &Schedule, response: &[Sample], lag_ms: f64) -> Option<ResponseFit> {
    let mut xs: Vec<[f64; 3]> = Vec::new();
    let mut ys: Vec<[f64; 3]> = Vec::new();
    let mut steps = vec![false; schedule.steps.len()];
    for &(t, y) in response {
        if let (Some(c), Some(k)) = (schedule.color_at(t - lag_ms), schedule.step_at(t - lag_ms)) {
            xs.push(c);
            ys.push(y);
            steps[k] = true;
        }
    }
    let n = xs.len();
    if n < 3 {
        return None;
    }
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for c in 0..3 {
        let mx = xs.iter().map(|v| v[c]).sum::<f64>() / n as f64;
        let my = ys.iter().map(|v| v[c]).sum::<f64>() / n as f64;
        for i in 0..n {
            let (a, b) = (xs[i][c] - mx, ys[i][c] - my);
            sxy += a * b;
            sxx += a * a;
            syy += b * b;
        }
    }
    if sxx <= 1e-9 {
        return None;
    }
    let correlation = if syy <= 1e-12 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    };
    Some(ResponseFit {
        lag_ms,
        correlation,
        gain: sxy / sxx,
        samples: n,
        steps_covered: steps.iter().filter(|&&s| s).count(),
    })
}

/// Searches lags in `[min_ms, max_ms]` (step `step_ms`) for the best-correlated fit.
///
/// Frame times are discrete, so the correlation is flat over a range of lags as wide
/// as the gaps between frames; the estimate is the middle of the plateau around the
/// maximum (lags within `0.01` of the best correlation), which is unbiased where the
/// smallest or largest lag of the plateau would not be.
pub fn best_lag(
    schedule: &Schedule,
    response: &[Sample],
    min_ms: f64,
    max_ms: f64,
    step_ms: f64,
    min_samples: usize,
) -> Option<ResponseFit> {
    let step = step_ms.max(1.0);
    let mut fits: Vec<ResponseFit> = Vec::new();
    let mut l = min_ms;
    while l <= max_ms + 1e-9 {
        if let Some(f) = fit_at_lag(schedule, response, l) {
            if f.samples >= min_samples {
                fits.push(f);
            }
        }
        l += step;
    }
    let best = fits
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.correlation.total_cmp(&b.1.correlation))?
        .0;
    let top = fits[best].correlation;
    let near = |i: usize| fits[i].correlation >= top - 0.01;
    let (mut lo, mut hi) = (best, best);
    while lo > 0 && near(lo - 1) {
        lo -= 1;
    }
    while hi + 1 < fits.len() && near(hi + 1) {
        hi += 1;
    }
    let mid = fits[(lo + hi) / 2];
    Some(ResponseFit {
        lag_ms: (fits[lo].lag_ms + fits[hi].lag_ms) / 2.0,
        correlation: top,
        gain: mid.gain,
        samples: mid.samples,
        steps_covered: mid.steps_covered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_statistics() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), Some(3.0));
        let (m, s) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!((m - 5.0).abs() < 1e-12 && (s - 2.0).abs() < 1e-12);
    }

    #[test]
    fn pearson_matches_known_values() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert!((pearson(&x, &[2.0, 4.0, 6.0, 8.0, 10.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&x, &[5.0, 4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(pearson(&x, &[1.0; 5]).is_none());
        let r = pearson(&x, &[1.0, 3.0, 2.0, 5.0, 4.0]).unwrap();
        assert!((r - 0.8).abs() < 1e-12, "{r}");
    }

    #[test]
    fn chromaticity_moves_toward_the_added_light() {
        assert_eq!(chromaticity([0.0, 0.0, 0.0]), [1.0 / 3.0, 1.0 / 3.0]);
        let skin = [180.0, 130.0, 110.0];
        let base = chromaticity(skin);
        let red = chromaticity([skin[0] + 25.0, skin[1], skin[2]]);
        let blue = chromaticity([skin[0], skin[1], skin[2] + 25.0]);
        assert!(red[0] > base[0] && red[1] < base[1]);
        assert!(blue[0] < base[0] && blue[1] < base[1]);
        let white = chromaticity([skin[0] * 1.1, skin[1] * 1.1, skin[2] * 1.1]);
        assert!(
            (white[0] - base[0]).abs() < 1e-12,
            "scaling keeps chromaticity"
        );
        let dir_red = [
            chromaticity([255.0, 0.0, 0.0])[0] - 1.0 / 3.0,
            chromaticity([255.0, 0.0, 0.0])[1] - 1.0 / 3.0,
        ];
        assert!(cosine2([red[0] - base[0], red[1] - base[1]], dir_red) > 0.9);
    }

    #[test]
    fn score_mappings_are_half_at_the_threshold_and_monotone() {
        assert!((score_above(0.5, 0.5, 0.1) - 0.5).abs() < 1e-12);
        assert!(score_above(0.7, 0.5, 0.1) > 0.85);
        assert!(score_above(0.3, 0.5, 0.1) < 0.15);
        assert!((score_below(250.0, 250.0, 30.0) - 0.5).abs() < 1e-12);
        assert!(score_below(400.0, 250.0, 30.0) < 0.01);
        assert_eq!(score_above(f64::NAN, 0.0, 1.0), 0.0);
        assert!(logistic(-800.0) >= 0.0 && logistic(800.0) <= 1.0);
    }

    fn schedule() -> Schedule {
        let colours = [
            [255.0, 255.0, 255.0],
            [255.0, 0.0, 0.0],
            [0.0, 0.0, 255.0],
            [0.0, 0.0, 0.0],
            [0.0, 255.0, 0.0],
            [255.0, 0.0, 255.0],
            [0.0, 255.0, 255.0],
            [255.0, 255.0, 0.0],
        ];
        let mut t = 1000.0;
        let mut steps = Vec::new();
        for (i, c) in colours.iter().enumerate() {
            steps.push((t, *c));
            t += 400.0 + 37.0 * (i % 3) as f64;
        }
        Schedule { steps, end_ms: t }
    }

    /// A face that reflects the schedule with `lag`, sampled every ~66 ms with jitter.
    fn respond(s: &Schedule, lag: f64, gain: f64) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut t = 900.0;
        let mut k = 0u32;
        while t < s.end_ms + 600.0 {
            let c = s.color_at(t - lag).unwrap_or([128.0; 3]);
            let wobble = ((k * 7919) % 13) as f64 * 0.3;
            out.push((
                t,
                [
                    150.0 + gain * c[0] + wobble,
                    110.0 + gain * c[1] - wobble,
                    90.0 + gain * c[2],
                ],
            ));
            k += 1;
            t += 66.7 + ((k * 31) % 7) as f64 - 3.0;
        }
        out
    }

    #[test]
    fn the_lag_of_a_delayed_response_is_recovered() {
        let s = schedule();
        for true_lag in [40.0, 120.0, 420.0] {
            let r = respond(&s, true_lag, 0.1);
            let f = best_lag(&s, &r, -200.0, 800.0, 10.0, 12).unwrap();
            assert!(
                (f.lag_ms - true_lag).abs() <= 45.0,
                "true {true_lag}, estimated {}",
                f.lag_ms
            );
            assert!(f.correlation > 0.9, "{f:?}");
            assert!((f.gain - 0.1).abs() < 0.03, "{f:?}");
        }
    }

    #[test]
    fn a_response_that_ignores_the_schedule_does_not_correlate() {
        let s = schedule();
        // A slow, schedule-independent drift and wobble.
        let r: Vec<Sample> = (0..80)
            .map(|i| {
                let t = 900.0 + i as f64 * 66.7;
                let w = ((i * 7919) % 17) as f64;
                (t, [150.0 + w, 110.0 + (16.0 - w), 90.0 + 0.5 * w])
            })
            .collect();
        let f = best_lag(&s, &detrend(&r), -200.0, 800.0, 10.0, 12).unwrap();
        assert!(f.correlation < 0.45, "{f:?}");
    }

    #[test]
    fn detrending_removes_a_line_per_channel() {
        let r: Vec<Sample> = (0..10)
            .map(|i| (i as f64, [2.0 * i as f64 + 1.0, -(i as f64), 5.0]))
            .collect();
        for (_, v) in detrend(&r) {
            assert!(v.iter().all(|x| x.abs() < 1e-9));
        }
    }

    #[test]
    fn schedule_lookup() {
        let s = schedule();
        assert_eq!(s.color_at(999.0), None);
        assert_eq!(s.color_at(1000.0), Some([255.0; 3]));
        assert_eq!(s.step_at(1401.0), Some(1));
        assert_eq!(s.color_at(s.end_ms), None);
    }
}
