//! # honnin-eval
//!
//! Measurement for honnin, independent of the engine: dataset readers
//! ([`datasets`]), genuine/impostor metrics with FMR-indexed operating points,
//! ROC/DET and k-fold accuracy ([`metrics`]), detection recall/precision
//! ([`detection`]), presentation-attack detection metrics in ISO/IEC 30107-3 terms
//! ([`pad`]), calibration fitting across identity sets ([`calibration`]) and SVG
//! plots ([`plot`]). The `honnin eval` commands feed it scores. [`data`] finds the
//! evaluation data folder for every test, benchmark and tool.

#![warn(missing_docs)]

pub mod calibration;
pub mod data;
pub mod datasets;
pub mod detection;
pub mod metrics;
pub mod pad;
pub mod plot;
