//! # honnin-accuracy
//!
//! Accuracy runs of the face engine on real data: the evaluation logic behind
//! `honnin eval …`, with no argument parsing and no printing (the CLI does both).
//!
//! - [`scoring`]: one template per image (in parallel, with the relaxed detection
//!   retry), per-recognizer cosines, fused scores and all-pairs accumulation;
//!   [`cache`] stores templates on disk between runs.
//! - [`calibrate`]: the similarity table fitted across identity sets and checked on
//!   held-out identities; [`lfw`]: LFW's protocol, all pairs and the fusion-weight
//!   search; [`pairs`]: any pair list; [`explain`]: a cause for every failing pair.
//! - [`detection`]: recall/precision on annotated boxes, the LFW face-found rate.
//! - [`document`]: LFW photos rendered as ID documents ([`document::render`]) through
//!   the verification's document step.
//! - [`pad`]: the passive presentation-attack model on live and attack images.
//! - [`login`]: face login as Windows Hello states it: FAR per attempt and FRR of the
//!   security levels, 1:1 and 1:N, on identities that did not set the calibration.
//!
//! It sits above `honnin-engine`, `honnin-eval` (the engine-free metrics) and
//! `honnin-core` (the document step); nothing but the CLI depends on it. Long loops
//! report through [`Progress`]; errors are [`Error`].

#![warn(missing_docs)]

pub mod cache;
pub mod calibrate;
pub mod detection;
pub mod document;
pub mod explain;
pub mod lfw;
pub mod login;
pub mod pad;
pub mod pairs;
pub mod scoring;

use std::path::{Path, PathBuf};

use honnin_engine::{DecodedImage, Engine, EngineError};

/// What can go wrong in an evaluation run. The `Display` of a variant that wraps a
/// source does not repeat it: print the chain ([`error_chain`]) to see both.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file or folder could not be written or created.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The engine refused an image file (the source carries the stable error code).
    #[error("{}", path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: EngineError,
    },
    /// The engine failed on data that did not come from a file.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A dataset file could not be read or parsed.
    #[error(transparent)]
    Dataset(#[from] honnin_eval::datasets::DatasetError),
    /// The run cannot go on; the message says why (bad input, nothing to measure, a
    /// table that does not validate).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The engine's stable error code (`ImageTooSmall`, …) where an engine error is
    /// the cause.
    pub fn engine_code(&self) -> Option<&'static str> {
        match self {
            Error::Image { source, .. } | Error::Engine(source) => Some(source.code()),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its sources joined by ": " (as `anyhow` prints `{:#}`).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// Reads and decodes an image file; engine errors keep their codes.
///
/// # Errors
/// [`Error::Read`] when the file cannot be read, [`Error::Image`] when the engine
/// refuses it.
pub fn load_image(engine: &Engine, path: &Path) -> Result<DecodedImage> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    engine.decode(&bytes).map_err(|source| Error::Image {
        path: path.to_path_buf(),
        source,
    })
}

/// Where long loops report how far they are, and notes for a person watching. The
/// library never prints; the CLI draws progress bars on stderr.
pub trait Progress: Sync {
    /// A stage of `len` steps called `what` begins; it ends when the returned
    /// [`Stage`] is dropped.
    fn stage(&self, len: u64, what: &str) -> Box<dyn Stage + '_>;
    /// A one-line note (e.g. "templates loaded from cache").
    fn note(&self, message: &str);
}

/// One stage of a [`Progress`]: steps are counted from worker threads.
pub trait Stage: Sync {
    /// One step is done.
    fn inc(&self);
    /// An item failed and is counted as missing; the run goes on.
    fn failed(&self, error: &Error);
}

/// A [`Progress`] that reports nothing (tests, quiet callers).
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _len: u64, _what: &str) -> Box<dyn Stage + '_> {
        Box::new(NoProgress)
    }
    fn note(&self, _message: &str) {}
}

impl Stage for NoProgress {
    fn inc(&self) {}
    fn failed(&self, _error: &Error) {}
}
