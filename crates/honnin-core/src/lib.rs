//! # honnin-core
//!
//! The operations of the honnin face service — collections, faces, users, 1:N search,
//! transient face IDs, verify/identify/find-similar/group, API keys and roles, Face
//! Liveness sessions, identity verifications and webhooks — over
//! the engine (`honnin-engine`) and the store (`honnin-storage`), with encryption at
//! rest ([`crypto`]) and an exact in-memory search index ([`index`]). Nothing here
//! knows about HTTP: the `/v1` API and any later front end call [`Service`].

#![warn(missing_docs)]

pub mod admission;
pub mod auth;
pub mod clock;
pub mod config;
pub mod context;
pub mod crypto;
pub mod egress;
pub mod error;
pub mod gallery;
pub mod index;
pub mod keys;
pub mod liveness;
pub mod login;
pub mod model;
pub mod oidc;
pub mod paging;
mod pipeline;
pub mod service;
pub mod transient;
pub mod validate;
pub mod verification;
pub mod webhooks;

pub use auth::{Action, Principal, Role};
pub use config::ServiceConfig;
pub use error::{CoreError, Result};
pub use gallery::Gallery;
pub use keys::Keys;
pub use liveness::LivenessSessions;
pub use service::{Service, SweepReport};
pub use transient::TransientFaces;
pub use transient::{SimilarAmong, VerifyTarget};
pub use verification::Verifications;
pub use webhooks::Webhooks;
