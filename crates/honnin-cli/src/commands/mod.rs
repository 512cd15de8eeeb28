//! The engine subcommands: `detect`, `compare`, `embed`, `bench`.

pub mod bench;
pub mod compare;
pub mod detect;
pub mod embed;
