//! The subcommands: `detect`, `compare`, `embed`, `bench` (engine) and `serve`, `keys` (service).

pub mod bench;
pub mod bench_service;
pub mod compare;
pub mod detect;
pub mod embed;
pub mod serve;
