//! The liveness benchmark without the CLI (same code as `honnin bench-liveness`):
//!
//! ```text
//! cargo run --release -p honnin-liveness --example bench_liveness -- [LIVE_SESSIONS] [ATTACKS_PER_KIND]
//! ```
//! Needs the models (`models/`) and `../shared/data` (or `$HONNIN_DATA_DIR`).

use std::sync::Arc;

use honnin_engine::pad::PadModel;
use honnin_engine::{Engine, EngineConfig};
use honnin_liveness::simulator::{self, BenchOptions, StandardSources};
use honnin_liveness::Analyzers;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let opts = BenchOptions {
        live_sessions: args.first().copied().unwrap_or(12),
        attacks_per_kind: args.get(1).copied().unwrap_or(2),
        ..Default::default()
    };
    let data = simulator::data_dir().ok_or("../shared/data is absent (set HONNIN_DATA_DIR)")?;
    let analyzers = Analyzers {
        engine: Arc::new(Engine::new(EngineConfig::default())?),
        pad: Arc::new(PadModel::load(None)?),
    };
    let sources = StandardSources::load(&analyzers.engine, &data)?;
    let report = simulator::benchmark(&analyzers, &sources, &opts, |s| {
        eprintln!(
            "{:<18} {:<28} confidence {:5.1} {:<9} pad {:.3} corr {:.3} null {:.3} bg {:.3} lag {:.0} id {:.1} jitter {:.2} finish {:.0} ms {:?}",
            s.scenario,
            s.source,
            s.confidence,
            format!("{:?}", s.decision),
            s.pad,
            s.light_correlation,
            s.light_null_p95,
            s.background_ratio,
            s.lag_ms,
            s.identity,
            s.jitter_ms,
            s.finish_ms,
            s.reasons
        )
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
