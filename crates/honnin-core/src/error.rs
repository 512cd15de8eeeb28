//! The errors of honnin's operations, each with a stable API code.
//!
//! Codes are the contract with clients (and with the future Rekognition adapter,
//! which maps them to `…Exception` names); HTTP statuses live in the server.

use honnin_engine::EngineError;
use thiserror::Error;

/// Every error an operation can return.
#[derive(Debug, Error)]
pub enum CoreError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    InvalidImageFormat(String),
    #[error("{0}")]
    ImageTooLarge(String),
    #[error("no face was detected in {0}")]
    NoFaceDetected(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceAlreadyExists(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The server is at capacity for engine work: retry after a short wait.
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The work's request is gone (client disconnected or timed out); never shown to
    /// a client.
    #[error("the request was cancelled")]
    Cancelled,
    /// A liveness session id that does not exist (or is not the caller's).
    #[error("{0}")]
    SessionNotFound(String),
    /// The liveness session ran out of time.
    #[error("{0}")]
    SessionExpired(String),
    /// The liveness session was already streamed (a session runs once).
    #[error("{0}")]
    SessionAlreadyStarted(String),
    /// The liveness session was cancelled (the API key that created it was revoked).
    #[error("{0}")]
    SessionCancelled(String),
    /// The client token does not belong to this liveness session.
    #[error("{0}")]
    InvalidClientToken(String),
    /// A verification id that does not exist (or is not the caller's).
    #[error("{0}")]
    VerificationNotFound(String),
    /// The verification ran out of time before this step.
    #[error("{0}")]
    VerificationExpired(String),
    /// A verification step sent before its turn, or a second time.
    #[error("{0}")]
    StepOutOfOrder(String),
    /// Several faces of similar size on an ID document: no single main portrait.
    #[error("{0}")]
    DocumentPortraitAmbiguous(String),
    /// The document portrait is too small or too poor to compare.
    #[error("{0}")]
    DocumentPortraitUnusable(String),
    #[error("encryption: {0}")]
    Crypto(String),
    #[error("configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl CoreError {
    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidParameter(_) => "InvalidParameter",
            CoreError::InvalidImageFormat(_) => "InvalidImageFormat",
            CoreError::ImageTooLarge(_) => "ImageTooLarge",
            CoreError::NoFaceDetected(_) => "NoFaceDetected",
            CoreError::ResourceNotFound(_) => "ResourceNotFound",
            CoreError::ResourceAlreadyExists(_) => "ResourceAlreadyExists",
            CoreError::AccessDenied(_) => "AccessDenied",
            CoreError::Unauthenticated(_) => "Unauthenticated",
            CoreError::Throttling(_) => "Throttling",
            CoreError::PayloadTooLarge(_) => "PayloadTooLarge",
            CoreError::ServiceUnavailable(_) => "ServiceUnavailable",
            CoreError::Cancelled => "Cancelled",
            CoreError::SessionNotFound(_) => "SessionNotFound",
            CoreError::SessionExpired(_) => "SessionExpired",
            CoreError::SessionAlreadyStarted(_) => "SessionAlreadyStarted",
            CoreError::SessionCancelled(_) => "SessionCancelled",
            CoreError::InvalidClientToken(_) => "InvalidClientToken",
            CoreError::VerificationNotFound(_) => "VerificationNotFound",
            CoreError::VerificationExpired(_) => "VerificationExpired",
            CoreError::StepOutOfOrder(_) => "VerificationStepOutOfOrder",
            CoreError::DocumentPortraitAmbiguous(_) => "DocumentPortraitAmbiguous",
            CoreError::DocumentPortraitUnusable(_) => "DocumentPortraitUnusable",
            CoreError::Crypto(_)
            | CoreError::Config(_)
            | CoreError::Storage(_)
            | CoreError::Internal(_) => "InternalError",
        }
    }

    /// Maps an engine error met while processing the image named `what`.
    pub fn from_engine(e: EngineError, what: &str) -> CoreError {
        use honnin_engine::ImageError as I;
        match e {
            EngineError::Image(I::TooLarge { .. })
            | EngineError::Image(I::TooManyPixels { .. }) => {
                CoreError::ImageTooLarge(format!("{what}: {e}"))
            }
            EngineError::Image(I::TooSmall { .. }) => {
                CoreError::InvalidParameter(format!("{what}: {e}"))
            }
            EngineError::Image(_) => CoreError::InvalidImageFormat(format!("{what}: {e}")),
            EngineError::NoFace => CoreError::NoFaceDetected(what.to_string()),
            EngineError::InvalidParameter(m) => CoreError::InvalidParameter(format!("{what}: {m}")),
            other => CoreError::Internal(format!("{what}: {other}")),
        }
    }
}

impl From<honnin_storage::StoreError> for CoreError {
    fn from(e: honnin_storage::StoreError) -> Self {
        use honnin_storage::StoreError as S;
        match e {
            S::Conflict(m) => CoreError::ResourceAlreadyExists(format!("{m} already exists")),
            S::NotFound(m) => CoreError::ResourceNotFound(format!("{m} was not found")),
            other => CoreError::Storage(other.to_string()),
        }
    }
}

pub type Result<T> = std::result::Result<T, CoreError>;
