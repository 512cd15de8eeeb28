//! Helpers shared by the subcommands.

use std::path::Path;

use anyhow::{Context, Result};
use honnin_engine::{
    DecodedImage, DetectOptions, Engine, EngineConfig, EngineError, RecognizerKind,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::EngineArgs;

/// Builds the engine described by the global options.
pub fn engine(args: &EngineArgs, require_calibration: bool) -> Result<Engine> {
    let mut cfg = EngineConfig {
        model_dir: args.model_dir.clone(),
        flip_augment: args.flip,
        require_calibration,
        ..EngineConfig::default()
    };
    if !args.recognizers.is_empty() {
        cfg.recognizers = args
            .recognizers
            .iter()
            .map(|s| {
                RecognizerKind::parse(s.trim()).ok_or_else(|| {
                    anyhow::anyhow!("unknown recognizer `{s}` (known: mobilefacenet, fr-feature)")
                })
            })
            .collect::<Result<_>>()?;
    }
    Ok(Engine::new(cfg)?)
}

/// Detection options from the global options.
pub fn detect_options(args: &EngineArgs) -> DetectOptions {
    let d = DetectOptions::default();
    DetectOptions {
        min_face_size: args.min_face_size,
        network_min_face_px: args.network_min_face_px.unwrap_or(d.network_min_face_px),
        refine_below_px: if args.no_refine {
            0.0
        } else {
            args.refine_below_px.unwrap_or(d.refine_below_px)
        },
        pad_large_faces: !args.no_pad_large_faces,
        ..d
    }
}

/// Reads and decodes an image file; engine errors keep their codes.
pub fn load_image(engine: &Engine, path: &Path) -> Result<DecodedImage> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    engine
        .decode(&bytes)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}", path.display()))
}

/// Prints an error chain; an engine error anywhere in it contributes its stable code.
pub fn print_error(e: &anyhow::Error) {
    print_chain(e.chain());
}

/// [`print_error`] for an error of the evaluation library.
pub fn print_eval_error(e: &honnin_accuracy::Error) {
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(s) = chain.last().and_then(|c| c.source()) {
        chain.push(s);
    }
    print_chain(chain.into_iter());
}

fn print_chain<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)> + Clone) {
    let code = chain.clone().find_map(|c| {
        c.downcast_ref::<EngineError>()
            .map(|e| e.code())
            .or_else(|| c.downcast_ref::<honnin_accuracy::Error>()?.engine_code())
    });
    let msg = chain.map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
    match code {
        Some(code) => eprintln!("error[{code}]: {msg}"),
        None => eprintln!("error: {msg}"),
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal or HONNIN_NO_PROGRESS is set).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let pb = if std::env::var_os("HONNIN_NO_PROGRESS").is_some() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(len)
    };
    pb.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Progress bars on stderr for the evaluation library's long loops (each stage is a
/// [`progress`] bar, cleared when it ends; failed items are printed above it).
pub struct Bars;

impl honnin_accuracy::Progress for Bars {
    fn stage(&self, len: u64, what: &str) -> Box<dyn honnin_accuracy::Stage + '_> {
        Box::new(Bar(progress(len, what)))
    }
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

struct Bar(ProgressBar);

impl honnin_accuracy::Stage for Bar {
    fn inc(&self) {
        self.0.inc(1);
    }
    fn failed(&self, error: &honnin_accuracy::Error) {
        self.0.suspend(|| print_eval_error(error));
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Writes pretty JSON to a file, creating parent folders.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

/// The command line that produced a result, for reports.
pub fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}
