//! The subcommands: `detect`, `compare`, `embed`, `bench` (engine) and `serve`, `keys` (service).

pub mod bench;
pub mod compare;
pub mod detect;
pub mod embed;
pub mod serve;
