//! # honnin-eval
//!
//! Measurement for honnin, independent of the engine: dataset readers
//! ([`datasets`]), genuine/impostor metrics with FMR-indexed operating points,
//! ROC/DET and k-fold accuracy ([`metrics`]), detection recall/precision
//! ([`detection`]) and SVG plots ([`plot`]). The `honnin eval` commands feed it scores.

pub mod datasets;
pub mod detection;
pub mod metrics;
pub mod plot;
