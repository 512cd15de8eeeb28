//! # honnin-liveness
//!
//! The face-liveness session of honnin, without any I/O: the streaming protocol's
//! messages ([`protocol`]), the challenge ([`challenge`]: oval and random colour
//! sequence), the session state machine ([`LiveSession`]), the analysis of the recorded
//! session ([`analysis`]: passive PAD, light reflection, movement, identity, stream
//! signals) and their fusion into one 0–100 confidence ([`fusion`]), plus a challenge
//! simulator (module `simulator`, behind the `simulator` feature: test and benchmark
//! support, not compiled into the server) that drives a session with frames built from
//! real face images (tests and `honnin bench-liveness`).
//!
//! The transport calls [`LiveSession::on_text`], [`LiveSession::on_frame`] and
//! [`LiveSession::on_tick`] with the current [`std::time::Instant`], sends what they
//! return, and after `end` calls [`LiveSession::finish`] for the [`LivenessOutcome`].
//!
//! Specifications: `docs/liveness-protocol.md` (the wire protocol) and
//! `docs/liveness.md` (the analysis, the fusion, the thresholds and their measurement).

#![warn(missing_docs)]

pub mod analysis;
pub mod challenge;
pub mod frame;
pub mod fusion;
pub mod math;
pub mod outcome;
pub mod protocol;
pub mod session;
#[cfg(feature = "simulator")]
pub mod simulator;

pub use analysis::Thresholds;
pub use challenge::ChallengeKind;
pub use fusion::{Decision, LIVE_THRESHOLD, SPOOF_BELOW};
pub use outcome::{CapturedImage, LivenessOutcome, Reason, Signals};
pub use protocol::{ClientMessage, GuidanceCode, OutcomeStatus, ProtocolError, ServerMessage};
pub use session::{Analyzers, LiveSession, SessionSettings};
