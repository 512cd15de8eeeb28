//! `honnin eval …`: accuracy on real data. The runs are `honnin_accuracy`'s; these
//! modules parse the arguments, write the reports and print. Every report records the
//! command that produced it and is written as JSON (plus an SVG DET plot for
//! recognition).

mod calibrate;
mod detection;
mod document;
mod lfw;
mod login;
mod pad;
mod pairs;

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::EngineArgs;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// LFW: 10-fold protocol accuracy and all-pairs FNMR at FMR 1e-3…1e-6.
    Lfw(lfw::LfwArgs),
    /// Fit the similarity table on several identity sets (identities split into a
    /// calibration and a validation part) and check its FMR on each.
    Calibrate(calibrate::CalibrateArgs),
    /// The same pair metrics for a list of `path_a<TAB>path_b<TAB>same|diff` lines.
    Pairs(pairs::PairsArgs),
    /// Detection recall/precision on annotated boxes, and the face-found rate on LFW.
    Detect(detection::DetectEvalArgs),
    /// Document ↔ selfie: LFW first photos rendered as ID documents, through the
    /// verification's document step; FNMR/FMR at the document-match thresholds.
    Document(document::DocumentArgs),
    /// Face login as Windows Hello states it: FAR per attempt and FRR of the security
    /// levels, 1:1 and 1:N, on the identities that did not set the calibration.
    Login(login::LoginArgs),
    /// Presentation-attack detection (fr_liveness): APCER/BPCER, EER on live vs attack images or videos.
    Pad(pad::PadEvalArgs),
}

pub fn run(engine: &EngineArgs, cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Lfw(a) => lfw::run(engine, a),
        EvalCommand::Pairs(a) => pairs::run(engine, a),
        EvalCommand::Calibrate(a) => calibrate::run(engine, a),
        EvalCommand::Detect(a) => detection::run(engine, a),
        EvalCommand::Pad(a) => pad::run(engine, a),
        EvalCommand::Document(a) => document::run(engine, a),
        EvalCommand::Login(a) => login::run(engine, a),
    }
}

/// Default folder for reports.
pub fn default_out(name: &str) -> PathBuf {
    PathBuf::from("target").join("eval").join(name)
}
