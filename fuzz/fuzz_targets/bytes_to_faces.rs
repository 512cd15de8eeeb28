//! Coverage-guided fuzzing of "bytes → faces": decode, detect and template any input.
//! Any panic or crash is a finding. See fuzz/README.md.
#![no_main]

use std::sync::OnceLock;

use honnin_engine::{DetectOptions, Engine, EngineConfig};
use libfuzzer_sys::fuzz_target;

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::new(EngineConfig::default()).expect("engine loads"))
}

fuzz_target!(|data: &[u8]| {
    let e = engine();
    if let Ok(img) = e.decode(data) {
        if let Ok(faces) = e.detect(&img, &DetectOptions::default()) {
            let _ = e.templates(&img, &faces);
        }
    }
});
