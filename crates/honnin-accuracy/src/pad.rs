//! Passive presentation-attack detection on real samples (`honnin eval pad`): each
//! sample goes through the path the service takes: decode, detect the largest face,
//! score it with [`PadModel::live_score`] on the full frame. Samples without a face
//! (or that cannot be decoded) are counted and listed, never dropped silently. The
//! metrics (APCER, BPCER, EER) are `honnin_eval::pad`'s; the CLI splits videos into
//! frames.

use std::path::{Path, PathBuf};

use honnin_engine::pad::PadModel;
use honnin_engine::{DetectOptions, Engine};
use rayon::prelude::*;
use serde::Serialize;

use crate::{error_chain, load_image, Progress};

/// One scored (or unscorable) sample.
pub struct Sample {
    /// The file, or `video#frame` for a video frame.
    pub name: String,
    /// The video a frame came from.
    pub source: Option<PathBuf>,
    /// What happened to it.
    pub outcome: Outcome,
}

/// What happened to one sample.
pub enum Outcome {
    /// The live score, 0–1 (1: live).
    Score(f32),
    /// No face was found.
    NoFace,
    /// It could not be read, decoded or scored (the message says why).
    Error(String),
}

/// Scores one image file.
pub fn score_one(engine: &Engine, pad: &PadModel, opts: &DetectOptions, path: &Path) -> Outcome {
    let img = match load_image(engine, path) {
        Ok(i) => i,
        Err(e) => return Outcome::Error(error_chain(&e)),
    };
    let faces = match engine.detect(&img, opts) {
        Ok(f) => f,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let Some(face) = faces.first() else {
        return Outcome::NoFace;
    };
    match pad.live_score(&img.rgb, &face.bounding_box_pixels) {
        Ok(s) => Outcome::Score(s),
        Err(e) => Outcome::Error(format!("{}: {e}", e.code())),
    }
}

/// Scores image files in parallel (a progress stage called `label`).
pub fn score_images(
    engine: &Engine,
    pad: &PadModel,
    opts: &DetectOptions,
    files: &[PathBuf],
    label: &str,
    progress: &dyn Progress,
) -> Vec<Sample> {
    let pb = progress.stage(files.len() as u64, label);
    let out = files
        .par_iter()
        .map(|p| {
            let outcome = score_one(engine, pad, opts, p);
            pb.inc();
            Sample {
                name: p.display().to_string(),
                source: None,
                outcome,
            }
        })
        .collect();
    drop(pb);
    out
}

/// The live scores of the scored samples, in order.
pub fn scores(s: &[Sample]) -> Vec<f32> {
    s.iter()
        .filter_map(|x| match x.outcome {
            Outcome::Score(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// How many samples were scored, had no face, or failed.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SampleCounts {
    /// All samples.
    pub samples: usize,
    /// Scored.
    pub scored: usize,
    /// Without a face.
    pub no_face: usize,
    /// Failed.
    pub errors: usize,
}

/// Counts of `s`.
pub fn counts(s: &[Sample]) -> SampleCounts {
    let scored = s
        .iter()
        .filter(|x| matches!(x.outcome, Outcome::Score(_)))
        .count();
    let no_face = s
        .iter()
        .filter(|x| matches!(x.outcome, Outcome::NoFace))
        .count();
    SampleCounts {
        samples: s.len(),
        scored,
        no_face,
        errors: s.len() - scored - no_face,
    }
}

/// One video's frames at a threshold.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoSummary {
    /// The video file.
    pub video: PathBuf,
    /// Frames taken.
    pub frames: usize,
    /// Frames scored.
    pub scored: usize,
    /// Mean live score of the scored frames (0 when none).
    pub mean_live_score: f64,
    /// Scored frames at or above the threshold.
    pub accepted_as_live: usize,
    /// accepted / scored (0 when none).
    pub accepted_share: f64,
}

/// Per video (in order of first appearance): frames scored, mean live score, share of
/// frames accepted as live at `threshold`.
pub fn per_video(s: &[Sample], threshold: f32) -> Vec<VideoSummary> {
    let mut sources: Vec<&PathBuf> = s.iter().filter_map(|x| x.source.as_ref()).collect();
    sources.dedup();
    sources
        .into_iter()
        .map(|src| {
            let frames: Vec<&Sample> = s
                .iter()
                .filter(|x| x.source.as_ref() == Some(src))
                .collect();
            let sc: Vec<f32> = frames
                .iter()
                .filter_map(|x| match x.outcome {
                    Outcome::Score(v) => Some(v),
                    _ => None,
                })
                .collect();
            let n = sc.len().max(1) as f64;
            let mean = sc.iter().map(|&v| v as f64).sum::<f64>() / n;
            let accepted = sc.iter().filter(|&&v| v >= threshold).count();
            VideoSummary {
                video: src.clone(),
                frames: frames.len(),
                scored: sc.len(),
                mean_live_score: mean,
                accepted_as_live: accepted,
                accepted_share: accepted as f64 / n,
            }
        })
        .collect()
}
