//! Many simulated sessions per scenario, timed and summarised (`honnin bench-liveness`).

use super::*;

/// Options of [`benchmark`].
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    /// Simulated live sessions (cycling over the live faces).
    pub live_sessions: usize,
    /// Sessions per attack scenario.
    pub attacks_per_kind: usize,
    /// First seed; session `i` uses `seed + i`.
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            live_sessions: 12,
            attacks_per_kind: 2,
            seed: 1,
        }
    }
}

/// Quantiles of a timing (ms).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timing {
    /// Number of measurements.
    pub samples: usize,
    /// Mean, ms (0 without samples).
    pub mean: f64,
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
    /// Largest measurement, ms.
    pub max: f64,
}

impl Timing {
    /// The quantiles of the measurements `v` (ms); all zero when `v` is empty.
    pub fn of(v: &[f64]) -> Timing {
        let q = |p| crate::math::quantile(v, p).unwrap_or(0.0);
        Timing {
            samples: v.len(),
            mean: crate::math::mean_std(v).map_or(0.0, |m| m.0),
            p50: q(0.5),
            p95: q(0.95),
            p99: q(0.99),
            max: v.iter().copied().fold(0.0, f64::max),
        }
    }
}

/// One benchmarked session.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    /// The scenario's name ([`Scenario::name`]).
    pub scenario: &'static str,
    /// The face source the frames were built from.
    pub source: String,
    /// The simulated client's seed (reproduces the session).
    pub seed: u64,
    /// The session's fused confidence, 0–100.
    pub confidence: f32,
    /// The verdict: `live`, `spoof` or `uncertain`.
    pub decision: crate::Decision,
    /// The failing signals' reason codes, weakest first.
    pub reasons: Vec<String>,
    /// The protocol error code when the session failed with one.
    pub error: Option<String>,
    /// Frames the simulated client sent.
    pub frames: u32,
    /// Length of the session on the simulated clock, ms.
    pub simulated_ms: f64,
    /// Wall time of [`crate::LiveSession::finish`], ms.
    pub finish_ms: f64,
    /// Key measurements (NaN when absent): median PAD score, face correlation with
    /// the colours, the chance level of that correlation (null p95), background ratio,
    /// response lag, minimum identity similarity, timestamp jitter.
    pub pad: f64,
    /// Face correlation with the displayed colours (NaN without the light challenge).
    pub light_correlation: f64,
    /// Chance level of that correlation: the 95th percentile over random sequences.
    pub light_null_p95: f64,
    /// Background response over the face model's prediction ([`crate::outcome::LightSignal::background_ratio`]).
    pub background_ratio: f64,
    /// Delay of the face's colour response after `colorDisplayed`, ms.
    pub lag_ms: f64,
    /// Lowest pairwise similarity (0–100) among the compared frames.
    pub identity: f64,
    /// Standard deviation of the frame intervals, ms.
    pub jitter_ms: f64,
}

/// Confidences of one scenario.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioSummary {
    /// The scenario's name ([`Scenario::name`]).
    pub scenario: &'static str,
    /// Sessions run for it.
    pub sessions: usize,
    /// Sessions decided `live`.
    pub live: usize,
    /// Lowest confidence among them, 0–100.
    pub min_confidence: f32,
    /// Highest confidence among them, 0–100.
    pub max_confidence: f32,
}

/// What [`benchmark`] measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchReport {
    /// The confidence at or above which a session is `live` ([`crate::LIVE_THRESHOLD`]).
    pub live_threshold: f32,
    /// Rayon threads `finish` could use.
    pub threads: usize,
    /// Wall time of every `on_frame` call (decode, statistics, detection every ~150 ms).
    pub on_frame_ms: Timing,
    /// Frames one core sustains: 1000 / mean `on_frame` time.
    pub frames_per_second_per_core: f64,
    /// Live sessions at 15 fps one core sustains.
    pub sessions_per_core_at_15_fps: f64,
    /// Wall time of `finish` (the verdict after `end`).
    pub finish_ms: Timing,
    /// Per scenario, in [`Scenario::ALL`] order (scenarios not run are left out).
    pub scenarios: Vec<ScenarioSummary>,
    /// Every session, in the order they ran.
    pub sessions: Vec<SessionSummary>,
}

/// Runs simulated live sessions and attacks and measures the session's costs and
/// verdicts (`honnin bench-liveness`).
pub fn benchmark(
    analyzers: &Analyzers,
    sources: &StandardSources,
    opts: &BenchOptions,
    mut progress: impl FnMut(&SessionSummary),
) -> Result<BenchReport, SimError> {
    let mut plan: Vec<(Scenario, &FaceSource, Option<&FaceSource>, Tint)> = Vec::new();
    let live = &sources.live;
    if live.is_empty() {
        return Err(SimError::Empty);
    }
    for i in 0..opts.live_sessions {
        plan.push((Scenario::Live, &live[i % live.len()], None, Tint::Additive));
    }
    for k in 0..opts.attacks_per_kind {
        let face = &live[k % live.len()];
        let other = &live[(k + 3) % live.len()];
        let tint = if k % 2 == 0 {
            Tint::Additive
        } else {
            Tint::Multiplicative
        };
        let replay = if k % 2 == 0 { &sources.replay } else { face };
        plan.push((Scenario::StaticPhoto, &sources.print, None, Tint::Additive));
        plan.push((Scenario::ScreenReplay, replay, None, tint));
        plan.push((
            Scenario::PrerecordedVideo,
            &sources.video,
            None,
            Tint::Additive,
        ));
        plan.push((Scenario::LaggingFrames, face, None, Tint::Additive));
        plan.push((Scenario::FaceSwap, face, Some(other), Tint::Additive));
        plan.push((Scenario::RegularTimestamps, face, None, Tint::Additive));
    }
    let mut frame_costs = Vec::new();
    let mut finish = Vec::new();
    let mut sessions = Vec::new();
    for (i, (scenario, src, second, tint)) in plan.into_iter().enumerate() {
        let seed = opts.seed + i as u64;
        let mut cfg = SimConfig::new(scenario, seed);
        cfg.video = src.natural_video();
        cfg.tint = tint;
        let r = run(
            analyzers,
            SessionSettings::default(),
            seed.wrapping_mul(0x9e37_79b9) ^ 0x5eed,
            src,
            second,
            &cfg,
        )?;
        frame_costs.extend_from_slice(&r.frame_costs_ms);
        finish.push(r.finish_ms);
        let sig = &r.outcome.signals;
        let summary = SessionSummary {
            scenario: scenario.name(),
            source: r.source.clone(),
            seed,
            confidence: r.outcome.confidence,
            decision: r.outcome.decision,
            reasons: r.outcome.reasons.iter().map(|x| x.code.clone()).collect(),
            error: r.error.as_ref().map(|e| e.code.to_string()),
            frames: r.frames_sent,
            simulated_ms: r.duration_ms,
            finish_ms: r.finish_ms,
            pad: sig.pad.as_ref().map_or(f64::NAN, |p| p.median as f64),
            light_correlation: sig.light.as_ref().map_or(f64::NAN, |l| l.face_correlation),
            light_null_p95: sig
                .light
                .as_ref()
                .map_or(f64::NAN, |l| l.null_correlation_p95),
            background_ratio: sig.light.as_ref().map_or(f64::NAN, |l| l.background_ratio),
            lag_ms: sig.light.as_ref().map_or(f64::NAN, |l| l.lag_ms),
            identity: sig
                .identity
                .as_ref()
                .map_or(f64::NAN, |i| i.min_similarity as f64),
            jitter_ms: sig.stream.interval_std_ms,
        };
        progress(&summary);
        sessions.push(summary);
    }
    let scenarios = Scenario::ALL
        .iter()
        .filter_map(|sc| {
            let v: Vec<&SessionSummary> = sessions
                .iter()
                .filter(|s| s.scenario == sc.name())
                .collect();
            (!v.is_empty()).then(|| ScenarioSummary {
                scenario: sc.name(),
                sessions: v.len(),
                live: v
                    .iter()
                    .filter(|s| s.decision == crate::Decision::Live)
                    .count(),
                min_confidence: v.iter().map(|s| s.confidence).fold(f32::INFINITY, f32::min),
                max_confidence: v.iter().map(|s| s.confidence).fold(0.0, f32::max),
            })
        })
        .collect();
    let on_frame = Timing::of(&frame_costs);
    let fps = if on_frame.mean > 0.0 {
        1000.0 / on_frame.mean
    } else {
        0.0
    };
    Ok(BenchReport {
        live_threshold: crate::LIVE_THRESHOLD,
        threads: rayon::current_num_threads(),
        frames_per_second_per_core: fps,
        sessions_per_core_at_15_fps: fps / 15.0,
        on_frame_ms: on_frame,
        finish_ms: Timing::of(&finish),
        scenarios,
        sessions,
    })
}
