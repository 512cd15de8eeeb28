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
use honnin_liveness::simulator::{self, BenchOptions, StandardSources};
use honnin_liveness::Analyzers;

use crate::common;
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
    let sources = StandardSources::load(&analyzers.engine, &data)
        .with_context(|| format!("loading the face sources from {}", data.display()))?;
    let opts = BenchOptions {
        live_sessions: args.sessions,
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
    eprintln!("reproduce: {command}");
    Ok(())
}
