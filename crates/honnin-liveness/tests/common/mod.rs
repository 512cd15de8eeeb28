//! Shared set-up of the liveness integration tests: the models (loaded once) and the
//! face sources from `../shared/data` (skipped with a message when absent).

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use honnin_engine::pad::PadModel;
use honnin_engine::{Engine, EngineConfig};
use honnin_liveness::simulator::{self, FaceSource, Scenario, SimConfig, SimRun, StandardSources};
use honnin_liveness::{Analyzers, SessionSettings};

pub fn analyzers() -> Analyzers {
    static A: OnceLock<Analyzers> = OnceLock::new();
    A.get_or_init(|| Analyzers {
        engine: Arc::new(Engine::new(EngineConfig::default()).expect("the shipped models load")),
        pad: Arc::new(PadModel::load(None).expect("fr_liveness.onnx loads")),
    })
    .clone()
}

/// The standard face sources, or `None` (with a SKIPPED message) without the data folder.
pub fn sources() -> Option<&'static StandardSources> {
    static S: OnceLock<Option<StandardSources>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = honnin_eval::data::for_test(
            "the simulated liveness tests",
            &["nuaa-train", "spoof-samples"],
        )?;
        Some(StandardSources::load(&analyzers().engine, &dir).expect("the face sources load"))
    })
    .as_ref()
}

pub fn run_with(
    scenario: Scenario,
    source: &FaceSource,
    second: Option<&FaceSource>,
    seed: u64,
    settings: SessionSettings,
    tweak: impl FnOnce(&mut SimConfig),
) -> SimRun {
    let mut cfg = SimConfig::new(scenario, seed);
    cfg.video = source.natural_video();
    tweak(&mut cfg);
    let run = simulator::run(
        &analyzers(),
        settings,
        seed.wrapping_mul(7919) + 11,
        source,
        second,
        &cfg,
    )
    .expect("the simulation runs");
    describe(&run);
    run
}

pub fn run(
    scenario: Scenario,
    source: &FaceSource,
    second: Option<&FaceSource>,
    seed: u64,
) -> SimRun {
    run_with(
        scenario,
        source,
        second,
        seed,
        SessionSettings::default(),
        |_| {},
    )
}

/// One line per run (shown with --nocapture and on failure).
pub fn describe(r: &SimRun) {
    let o = &r.outcome;
    let codes: Vec<&str> = o.reasons.iter().map(|x| x.code.as_str()).collect();
    eprintln!(
        "{} [{}]: {:?} confidence {:.1} {:?} reasons {:?} error {:?} frames {} finish {:.0} ms",
        r.scenario.name(),
        r.source,
        o.status,
        o.confidence,
        o.decision,
        codes,
        r.error.as_ref().map(|e| e.code),
        r.frames_sent,
        r.finish_ms
    );
    for s in &o.signals.scores {
        eprintln!(
            "    {:<22} value {:>10.4} threshold {:>8.3} score {:.3}",
            s.signal, s.value, s.threshold, s.score
        );
    }
    if let Some(l) = &o.signals.light {
        eprintln!("    light {l:?}");
    }
    eprintln!("    movement {:?}", o.signals.movement);
}
