//! # honnin-engine
//!
//! The face engine of honnin: decode an image, detect faces with landmarks and
//! attributes, align them, compute templates and compare templates on a calibrated
//! 0–100 similarity scale. Everything runs in-process on the CPU with `tract-onnx`;
//! nothing is downloaded. The server and the CLI embed [`Engine`].
//!
//! ```no_run
//! use honnin_engine::{Engine, EngineConfig, DetectOptions};
//! let engine = Engine::new(EngineConfig::default())?;
//! let a = engine.decode(&std::fs::read("a.jpg")?)?;
//! let b = engine.decode(&std::fs::read("b.jpg")?)?;
//! let fa = engine.detect(&a, &DetectOptions::default())?;
//! let fb = engine.detect(&b, &DetectOptions::default())?;
//! let ta = engine.templates(&a, &fa[..1])?;
//! let tb = engine.templates(&b, &fb[..1])?;
//! let m = engine.compare(&ta[0], &tb[0])?;
//! println!("similarity {:.1}, match at FMR 1e-5: {}", m.similarity, m.similarity >= engine.threshold_for_fmr(1e-5));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Module map: [`decode`] (bytes → pixels), [`detect`] (CenterFace), [`align`]
//! (landmarks → 112×112 chip), [`recognize`] (chip → embedding), [`template`],
//! [`calibration`] (score → similarity ↔ FMR), [`quality`] (pose, brightness,
//! sharpness, `qualityForRecognition`), [`pad`] (passive presentation-attack
//! detection, `fr_liveness`), [`models`] (files and checksums),
//! [`runtime`] (the only module that knows tract), [`geometry`].

#![warn(missing_docs)]

pub mod align;
pub mod calibration;
pub mod decode;
pub mod detect;
pub mod engine;
pub mod error;
pub mod geometry;
pub mod models;
pub mod pad;
pub mod quality;
pub mod recognize;
pub mod runtime;
pub mod template;

pub use calibration::Calibration;
pub use decode::{DecodeLimits, DecodedImage, ImageHeader};
pub use detect::DetectOptions;
pub use engine::{AlignedFace, Comparison, Engine, EngineConfig, Face};
pub use error::{EngineError, ImageError, ModelError};
pub use pad::{PadModel, PAD_HARD_EVIDENCE_BELOW, PAD_THRESHOLD};
pub use quality::{NonMatchLimits, QualityLevel, QualityReason, RetakeReason};
pub use recognize::RecognizerKind;
pub use template::Template;
