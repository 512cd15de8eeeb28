//! `honnin bench-liveness [--sessions N] [--attacks-per-kind M]`: the cost and the
//! verdicts of liveness sessions, measured by driving `LiveSession` with the challenge
//! simulator (frames built from real faces in `../shared/data`, a simulated clock).
//!
//! Reports the wall time of every `on_frame` call (p50/p95/p99), the frames one core
//! sustains, the wall time of `finish` (the verdict after the stream ends; target
//! ≤ 1 s) and every session's confidence, decision and reasons. Sessions run one at a
//! time; `finish` may use the rayon pool (`--threads`).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use honnin_engine::pad::PadModel;
use honnin_liveness::simulator::{self, BenchOptions, FaceSource, StandardSources};
use honnin_liveness::Analyzers;

use crate::common;
use crate::media;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct BenchLivenessArgs {
    /// Simulated live sessions (cycling over the live faces).
    #[arg(long, default_value_t = 12)]
    pub sessions: usize,
    /// Sessions per attack scenario (static photo, screen replay, pre-recorded video,
    /// lagging frames, face swap, regular timestamps); 0 for none.
    #[arg(long, default_value_t = 2)]
    pub attacks_per_kind: usize,
    /// The evaluation data folder (default: $HONNIN_DATA_DIR, then ../shared/data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// First seed (session i uses seed + i).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Threads of the pool `finish` runs on (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the JSON report here as well as printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// More live faces: image files, folders of images, or videos (split by `ffmpeg`).
    /// Every image (or kept frame) becomes its own live source with one live session.
    /// They are appended after the standard faces; attack k of a kind uses live face
    /// k mod n (and a face swap also face k + 3 mod n), so with more than 3 attacks per
    /// kind the first extra faces take part in face swaps. Repeatable.
    #[arg(long, num_args = 1..)]
    pub extra_live: Vec<PathBuf>,
    /// Keep every n-th image or video frame of each `--extra-live` input.
    #[arg(long, default_value_t = 5)]
    pub extra_every: usize,
    /// Instead of `--extra-every`: at most this many images or frames of each
    /// `--extra-live` input, evenly spaced (so long videos do not outweigh the rest).
    #[arg(long)]
    pub extra_per_input: Option<usize>,
    /// Fail (exit 1) when the share of live sessions not decided `live` (session-level
    /// BPCER) exceeds this (0–1), over all live sessions and within each `--extra-live`
    /// input (the standard sources, one or a few sessions each, count in the total only).
    #[arg(long)]
    pub max_live_bpcer: Option<f64>,
    /// Fail (exit 1) when any simulated attack is decided `live`.
    #[arg(long)]
    pub require_attacks_fail: bool,
}

pub fn run(eargs: &EngineArgs, args: BenchLivenessArgs) -> Result<()> {
    let data = match &args.data {
        Some(d) => d.clone(),
        None => simulator::data_dir().context(
            "the liveness benchmark needs ../shared/data (or --data / $HONNIN_DATA_DIR)",
        )?,
    };
    let engine = Arc::new(common::engine(eargs, true)?);
    let pad = Arc::new(PadModel::load(eargs.model_dir.as_deref())?);
    let analyzers = Analyzers { engine, pad };
    let mut sources = StandardSources::load(&analyzers.engine, &data)
        .with_context(|| format!("loading the face sources from {}", data.display()))?;
    let standard = sources.live.len();
    let mut extra_groups: std::collections::BTreeSet<String> = Default::default();
    for input in &args.extra_live {
        // Frames are read into memory by `FaceSource::load`; each input's extracted
        // frames are deleted when its folder drops at the end of the iteration.
        let tmp = media::TempDir::new("bench-liveness")?;
        // The file name, or `parent/name` for a folder (`webcam-replay/live`).
        let name = |p: &std::path::Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let group = match (name(input), input.parent().and_then(name)) {
            (Some(n), Some(parent)) if input.is_dir() => format!("{parent}/{n}"),
            (Some(n), _) => n,
            _ => input.display().to_string(),
        };
        extra_groups.insert(group.clone());
        let files = match args.extra_per_input {
            Some(n) => evenly_spaced(
                media::images_and_frames(std::slice::from_ref(input), 0.0, 1, &tmp)?,
                n,
            ),
            None => {
                media::images_and_frames(std::slice::from_ref(input), 0.0, args.extra_every, &tmp)?
            }
        };
        for (k, f) in files.iter().enumerate() {
            match FaceSource::load(
                &analyzers.engine,
                &format!("{group}#{k}"),
                std::slice::from_ref(f),
            ) {
                Ok(src) => sources.live.push(src),
                Err(e) => eprintln!("{}: skipped ({e})", f.display()),
            }
        }
    }
    let extra = sources.live.len() - standard;
    if extra > 0 {
        eprintln!("{extra} extra live sources from {:?}", args.extra_live);
    }
    let opts = BenchOptions {
        // At least one live session per source when extra faces are given.
        live_sessions: if extra > 0 {
            args.sessions.max(sources.live.len())
        } else {
            args.sessions
        },
        attacks_per_kind: args.attacks_per_kind,
        seed: args.seed,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.unwrap_or(0))
        .build()?;
    let report = pool.install(|| {
        simulator::benchmark(&analyzers, &sources, &opts, |s| {
            eprintln!(
                "{:<18} {:<28} confidence {:5.1} {:<9} frames {:>3} finish {:6.1} ms {:?}{}",
                s.scenario,
                s.source,
                s.confidence,
                format!("{:?}", s.decision),
                s.frames,
                s.finish_ms,
                s.reasons,
                s.error
                    .as_ref()
                    .map(|e| format!(" error {e}"))
                    .unwrap_or_default()
            )
        })
    })?;
    let command = common::command_line();
    let json = serde_json::json!({ "command": command, "report": report });
    println!("{}", serde_json::to_string_pretty(&json)?);
    if let Some(out) = &args.out {
        common::write_json(out, &json)?;
    }
    let (f, n) = (&report.on_frame_ms, &report.finish_ms);
    eprintln!(
        "on_frame: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, mean {:.1} ms over {} frames → {:.0} frames/s per core ({:.1} sessions at 15 fps)",
        f.p50, f.p95, f.p99, f.mean, f.samples, report.frames_per_second_per_core, report.sessions_per_core_at_15_fps
    );
    eprintln!(
        "finish (verdict after the stream ends, {} thread(s)): p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (target ≤ 1000 ms)",
        report.threads, n.p50, n.p99, n.max
    );
    for s in &report.scenarios {
        eprintln!(
            "{:<18} {:>3} sessions, {:>3} decided live, confidence {:.1}–{:.1} (live at ≥ {})",
            s.scenario,
            s.sessions,
            s.live,
            s.min_confidence,
            s.max_confidence,
            report.live_threshold
        );
    }
    // Live sessions by source group (the part of the source name before `#`): the
    // session-level BPCER of each kind of live capture.
    let mut groups: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for s in report.sessions.iter().filter(|s| s.scenario == "live") {
        let g = s.source.split('#').next().unwrap_or(&s.source).to_string();
        let e = groups.entry(g).or_default();
        e.0 += 1;
        if s.decision != honnin_liveness::Decision::Live {
            e.1 += 1;
        }
    }
    for (g, (n, rejected)) in &groups {
        eprintln!(
            "live {g:<34} {n:>3} sessions, {rejected:>3} not decided live: BPCER {:.1} %",
            100.0 * *rejected as f64 / (*n).max(1) as f64
        );
    }
    eprintln!("reproduce: {command}");
    let mut failures = Vec::new();
    if let Some(max) = args.max_live_bpcer {
        let live: Vec<_> = report
            .sessions
            .iter()
            .filter(|s| s.scenario == "live")
            .collect();
        let rejected = live
            .iter()
            .filter(|s| s.decision != honnin_liveness::Decision::Live)
            .count();
        let bpcer = rejected as f64 / live.len().max(1) as f64;
        if bpcer > max {
            failures.push(format!(
                "session-level BPCER {:.1} % ({rejected} of {}) is above {:.1} %",
                bpcer * 100.0,
                live.len(),
                max * 100.0
            ));
        }
        for (g, (n, rejected)) in groups.iter().filter(|(g, _)| extra_groups.contains(*g)) {
            let b = *rejected as f64 / (*n).max(1) as f64;
            if b > max {
                failures.push(format!(
                    "live {g}: BPCER {:.1} % ({rejected} of {n}) is above {:.1} %",
                    b * 100.0,
                    max * 100.0
                ));
            }
        }
    }
    if args.require_attacks_fail {
        for s in report
            .sessions
            .iter()
            .filter(|s| s.scenario != "live" && s.decision == honnin_liveness::Decision::Live)
        {
            failures.push(format!(
                "attack {} on {} (seed {}) was decided live at confidence {:.1}",
                s.scenario, s.source, s.seed, s.confidence
            ));
        }
    }
    if !failures.is_empty() {
        anyhow::bail!("floors missed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// At most `n` of `items`, evenly spaced from the first.
fn evenly_spaced<T>(items: Vec<T>, n: usize) -> Vec<T> {
    let len = items.len();
    if len <= n {
        return items;
    }
    let keep: std::collections::BTreeSet<usize> = (0..n).map(|k| k * len / n).collect();
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, x)| keep.contains(&i).then_some(x))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::evenly_spaced;

    #[test]
    fn evenly_spaced_keeps_at_most_n_spread_over_the_whole() {
        let v: Vec<usize> = (0..10).collect();
        assert_eq!(evenly_spaced(v.clone(), 3), vec![0, 3, 6]);
        assert_eq!(evenly_spaced(v.clone(), 20), v);
        assert!(evenly_spaced(v, 0).is_empty());
    }
}
