//! The subcommands: `detect`, `compare`, `embed`, `bench`, `bench-service`, `bench-liveness`, `bench-overload` and `serve`, `keys` (service).

pub mod bench;
#[cfg(feature = "bench-liveness")]
pub mod bench_liveness;
pub mod bench_overload;
pub mod bench_service;
pub mod compare;
pub mod detect;
pub mod embed;
pub mod serve;
