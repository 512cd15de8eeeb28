//! `honnin` — the command-line front end.
//!
//! Thin by design: each subcommand parses its arguments, calls the engine (or the
//! evaluation library) and prints. Errors from the engine carry a stable code,
//! which is printed as `error[Code]: message`; the process then exits with status 1.

mod commands;
mod common;
mod eval;
mod media;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "honnin", version, about = "Self-hosted face identity verification", long_about = None)]
struct Cli {
    #[command(flatten)]
    engine: EngineArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that loads the engine.
#[derive(Args, Clone, Debug)]
pub struct EngineArgs {
    /// Folder with the model files (default: $HONNIN_MODEL_DIR, then models/ beside the binary or the source tree).
    #[arg(long, global = true, env = "HONNIN_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Recognizers to fuse, comma-separated (mobilefacenet, fr-feature, sface). Default: the shipped default.
    #[arg(long, global = true, value_delimiter = ',')]
    pub recognizers: Vec<String>,
    /// Also embed the mirrored face and add the embeddings (doubles embedding time).
    #[arg(long, global = true)]
    pub flip: bool,
    /// Smallest face to detect, in pixels of the image.
    #[arg(long, global = true, default_value_t = 40.0)]
    pub min_face_size: f32,
    /// Face height at the detector's input that --min-face-size maps to (speed/recall trade-off).
    #[arg(long, global = true, hide = true)]
    pub network_min_face_px: Option<f32>,
    /// Re-detect faces smaller than this (pixels at the detector's input) on a full-resolution crop.
    #[arg(long, global = true, hide = true)]
    pub refine_below_px: Option<f32>,
    /// Never re-detect small faces on a full-resolution crop (faster, less precise landmarks).
    #[arg(long, global = true)]
    pub no_refine: bool,
    /// Never re-detect a face that fills the frame on a padded copy (the behaviour
    /// before the tight-crop fix; for measuring it).
    #[arg(long, global = true)]
    pub no_pad_large_faces: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Detect faces and print their attributes.
    Detect(commands::detect::DetectArgs),
    /// Compare the largest face of A with every face of B.
    Compare(commands::compare::CompareArgs),
    /// Compute templates for images and write them as JSON lines.
    Embed(commands::embed::EmbedArgs),
    /// Measure accuracy on a dataset.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Per-stage latency and throughput on real images.
    Bench(commands::bench::BenchArgs),
    /// Service benchmarks: 1:N search at 10k–1M templates, memory, start-up load.
    BenchService(commands::bench_service::BenchServiceArgs),
    /// Liveness benchmark: per-frame cost and verdict latency of simulated sessions.
    #[cfg(feature = "bench-liveness")]
    BenchLiveness(commands::bench_liveness::BenchLivenessArgs),
    /// Overload benchmark: memory and leftover CPU of a burst of large requests that time out.
    BenchOverload(commands::bench_overload::BenchOverloadArgs),
    /// Run the face service (HTTP API on 127.0.0.1:8080, data in ./honnin-data).
    Serve(commands::serve::ServeArgs),
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    Keys(commands::serve::KeysCommand),
}

/// `honnin detect … | head -1`: when the reader closes the pipe, the command ends
/// quietly, as Unix tools do, instead of panicking on the failed write. Rust ignores
/// SIGPIPE by default (so writes fail with EPIPE and `println!` panics); the command-line
/// tools restore the default action. The server keeps ignoring it (its sockets must
/// report a gone client as an error, not end the process) and writes its few stdout
/// lines without panicking.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called at start-up, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HONNIN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_on_closed_pipe();
    }
    let result = match cli.command {
        Command::Detect(a) => commands::detect::run(&cli.engine, a),
        Command::Compare(a) => commands::compare::run(&cli.engine, a),
        Command::Embed(a) => commands::embed::run(&cli.engine, a),
        Command::Eval(c) => eval::run(&cli.engine, c),
        Command::Bench(a) => commands::bench::run(&cli.engine, a),
        Command::BenchService(a) => commands::bench_service::run(&cli.engine, a),
        #[cfg(feature = "bench-liveness")]
        Command::BenchLiveness(a) => commands::bench_liveness::run(&cli.engine, a),
        Command::BenchOverload(a) => commands::bench_overload::run(a),
        Command::Serve(a) => commands::serve::serve(&cli.engine, a),
        Command::Keys(c) => commands::serve::keys(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            common::print_error(&e);
            ExitCode::FAILURE
        }
    }
}
