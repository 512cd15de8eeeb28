//! The errors of honnin's operations, each with a stable API code.
//!
//! Codes are the contract with clients. [`ERROR_CODES`] is the one table of them: for
//! each code its HTTP status on the native API, the exception a Rekognition-compatible
//! front end answers with, and what it means. The server's status mapping, the OpenAPI
//! error schema (its `code` enum) and the table in `docs/api.md` are all checked
//! against it by tests.

use honnin_engine::EngineError;
use thiserror::Error;

/// Every error an operation can return.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A request parameter is wrong: bad JSON, an unknown or wrong-typed field, a value out
    /// of range, a malformed id (400 `InvalidParameter`). The message names the field.
    #[error("{0}")]
    InvalidParameter(String),
    /// An image the engine refused (empty, corrupt, unsupported, too small or too
    /// large): its own code (`EmptyImage`, `CorruptImage`, …) reaches the client.
    #[error("{what}: {source}")]
    Image {
        /// Which image of the request (`image`, `sourceImage`, `document`, …).
        what: String,
        /// The engine's refusal, which carries the code.
        #[source]
        source: honnin_engine::ImageError,
    },
    /// The operation needs a face and the image named by the payload (`image`,
    /// `sourceImage`, …) has none (400).
    #[error("no face was detected in {0}")]
    NoFaceDetected(String),
    /// Unknown collection, face, user, key or webhook, an expired transient face ID, or
    /// another key's record (404).
    #[error("{0}")]
    ResourceNotFound(String),
    /// A collection or user id already taken (409).
    #[error("{0}")]
    ResourceAlreadyExists(String),
    /// The key's role or collection scope does not allow the operation (403).
    #[error("{0}")]
    AccessDenied(String),
    /// Missing, malformed, unknown or revoked API key (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// A rate or creation limit is reached: the key's rate, a liveness session limit per
    /// key or device, failed authentications of an address (429).
    #[error("{0}")]
    Throttling(String),
    /// The request body is over the server's limit (413).
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
    /// The liveness session was already used by a login or an enrolment.
    #[error("{0}")]
    SessionAlreadyUsed(String),
    /// The liveness session has not finished (a login or enrolment needs its result).
    #[error("{0}")]
    SessionNotFinished(String),
    /// A live face may not be enrolled (liveness, pose, quality, several faces).
    #[error("{0}")]
    EnrolmentRejected(String),
    /// The login profile holds the most templates allowed.
    #[error("{0}")]
    ProfileFull(String),
    /// A login cannot hold its level over this many templates (beyond the calibration).
    #[error("{0}")]
    LevelBeyondCalibration(String),
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
    /// Sealing or opening data failed: a wrong key, a damaged or tampered blob (500
    /// `InternalError`).
    #[error("encryption: {0}")]
    Crypto(String),
    /// The service cannot start or run as configured: a master key of another database, a
    /// missing vault key or model, a bad setting (500 `InternalError`).
    #[error("configuration: {0}")]
    Config(String),
    /// The database failed (500 `InternalError`).
    #[error("storage: {0}")]
    Storage(#[source] honnin_storage::StoreError),
    /// Stored or outgoing JSON that could not be written or read back (a bug or a
    /// damaged row, never the caller's input).
    #[error("{what}: {source}")]
    Json {
        /// What was being written or read (`stored policy`, `decision record`, …).
        what: &'static str,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },
    /// The engine failed on data honnin produced itself (a stored template, a
    /// comparison of two templates).
    #[error("{what}: {source}")]
    Engine {
        /// What was being done (`compare`, `stored template`, …).
        what: &'static str,
        /// The engine's error.
        #[source]
        source: EngineError,
    },
    /// Any other failure of the server, not of the request (500 `InternalError`).
    #[error("internal: {0}")]
    Internal(String),
}

impl CoreError {
    /// For `map_err`: a JSON failure while handling `what`, its source kept.
    pub(crate) fn json(what: &'static str) -> impl Fn(serde_json::Error) -> CoreError {
        move |source| CoreError::Json { what, source }
    }

    /// For `map_err`: an engine failure on honnin's own data while doing `what`.
    pub(crate) fn engine(what: &'static str) -> impl Fn(EngineError) -> CoreError {
        move |source| CoreError::Engine { what, source }
    }

    /// The stable code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidParameter(_) => "InvalidParameter",
            CoreError::Image { source, .. } => source.code(),
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
            CoreError::SessionAlreadyUsed(_) => "SessionAlreadyUsed",
            CoreError::SessionNotFinished(_) => "SessionNotFinished",
            CoreError::EnrolmentRejected(_) => "EnrolmentRejected",
            CoreError::ProfileFull(_) => "ProfileFull",
            CoreError::LevelBeyondCalibration(_) => "LevelBeyondCalibration",
            CoreError::VerificationNotFound(_) => "VerificationNotFound",
            CoreError::VerificationExpired(_) => "VerificationExpired",
            CoreError::StepOutOfOrder(_) => "VerificationStepOutOfOrder",
            CoreError::DocumentPortraitAmbiguous(_) => "DocumentPortraitAmbiguous",
            CoreError::DocumentPortraitUnusable(_) => "DocumentPortraitUnusable",
            CoreError::Crypto(_)
            | CoreError::Config(_)
            | CoreError::Storage(_)
            | CoreError::Json { .. }
            | CoreError::Engine { .. }
            | CoreError::Internal(_) => "InternalError",
        }
    }

    /// Maps an engine error met while processing the image named `what`.
    pub fn from_engine(e: EngineError, what: &str) -> CoreError {
        match e {
            EngineError::Image(source) => CoreError::Image {
                what: what.to_string(),
                source,
            },
            EngineError::NoFace => CoreError::NoFaceDetected(what.to_string()),
            EngineError::InvalidParameter(m) => CoreError::InvalidParameter(format!("{what}: {m}")),
            other => CoreError::Internal(format!("{what}: {other}")),
        }
    }
}

/// One error code of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    /// The stable code of `{"code": …}`.
    pub code: &'static str,
    /// Its HTTP status on the native `/v1` API.
    pub status: u16,
    /// The `__type` a Rekognition-compatible front end answers with (names from
    /// botocore's `rekognition/2016-06-27/service-2.json`; `../shared/docs/aws-compatibility.md`).
    pub rekognition: &'static str,
    /// When it is returned, in one line (`docs/api.md` shows the same).
    pub meaning: &'static str,
}

const fn code(
    code: &'static str,
    status: u16,
    rekognition: &'static str,
    meaning: &'static str,
) -> ErrorCode {
    ErrorCode {
        code,
        status,
        rekognition,
        meaning,
    }
}

/// Every error code the API returns, in the order `docs/api.md` lists them.
pub const ERROR_CODES: &[ErrorCode] = &[
    code("InvalidParameter", 400, "InvalidParameterException", "bad JSON, unknown or wrong-typed field, value out of range, bad id"),
    code("InvalidImageFormat", 400, "InvalidImageFormatException", "not a JPEG, PNG, WebP or BMP image"),
    code("EmptyImage", 400, "InvalidImageFormatException", "the image is 0 bytes"),
    code("CorruptImage", 400, "InvalidImageFormatException", "the image data is truncated or corrupt"),
    code("ImageTooSmall", 400, "InvalidParameterException", "a side of the image is under the engine's minimum"),
    code("NoFaceDetected", 400, "InvalidParameterException", "an operation needs a face and the image has none"),
    code("DocumentPortraitAmbiguous", 400, "InvalidParameterException", "several faces of similar size on an ID document"),
    code("DocumentPortraitUnusable", 400, "InvalidParameterException", "the document portrait is too small, blurred, dark or turned to compare"),
    code("EnrolmentRejected", 400, "InvalidParameterException", "a login profile enrols only a passed, fresh liveness session's frontal, high-quality face, alone in the frame"),
    code("LevelBeyondCalibration", 400, "InvalidParameterException", "a login cannot hold its security level over this many templates (the per-comparison FMR would lie beyond the calibration): name the user, use a lower level, or a smaller profile"),
    code("Unauthenticated", 401, "UnrecognizedClientException", "missing, malformed, unknown or revoked API key"),
    code("InvalidClientToken", 401, "AccessDeniedException", "the stream's token does not belong to the liveness session"),
    code("AccessDenied", 403, "AccessDeniedException", "the key's role or collection scope does not allow it"),
    code("ResourceNotFound", 404, "ResourceNotFoundException", "unknown collection, face, user, key, route; expired transient face ID"),
    code("SessionNotFound", 404, "SessionNotFoundException", "unknown liveness session, or another key's"),
    code("VerificationNotFound", 404, "ResourceNotFoundException", "unknown verification, or another key's"),
    code("MethodNotAllowed", 405, "UnknownOperationException", "the route exists, not with that method"),
    code("RequestTimeout", 408, "RequestTimeoutException", "the request ran past `limits.request_timeout_secs`"),
    code("Cancelled", 408, "RequestTimeoutException", "the request was gone before its work finished (never shown: a timed-out request is answered RequestTimeout)"),
    code("ResourceAlreadyExists", 409, "ResourceAlreadyExistsException", "collection or user id taken"),
    code("SessionAlreadyStarted", 409, "InvalidParameterException", "the liveness session was already streamed (one stream per session)"),
    code("SessionAlreadyUsed", 409, "InvalidParameterException", "the liveness session was already used by a login or an enrolment (a session is used once)"),
    code("SessionNotFinished", 409, "InvalidParameterException", "the liveness session has not finished streaming"),
    code("ProfileFull", 409, "LimitExceededException", "the login profile holds `login.max_templates_per_profile` templates"),
    code("VerificationStepOutOfOrder", 409, "InvalidParameterException", "a verification step sent before its turn, or a second time"),
    code("SessionExpired", 410, "SessionNotFoundException", "the liveness session's time is over"),
    code("SessionCancelled", 410, "SessionNotFoundException", "the key that created the liveness session was revoked"),
    code("VerificationExpired", 410, "InvalidParameterException", "the verification ran out of time before this step"),
    code("ImageTooLarge", 413, "ImageTooLargeException", "image over 5 MB"),
    code("ImageDimensionsTooLarge", 413, "ImageTooLargeException", "image over 40 megapixels"),
    code("PayloadTooLarge", 413, "ImageTooLargeException", "request body over `limits.max_body_bytes`"),
    code("Throttling", 429, "ThrottlingException", "the key is over its rate, a liveness creation limit is reached, or the address failed authentication too often; wait `Retry-After` seconds"),
    code("InternalError", 500, "InternalServerError", "a failure of the server, not of the request; the server log has details"),
    code("ServiceUnavailable", 503, "ThrottlingException", "the server is at capacity for image work; retry after `Retry-After` (1) seconds"),
    code("NotReady", 503, "InternalServerError", "readiness probe: the database is unreachable"),
];

/// The table entry of `code`, if it is one of [`ERROR_CODES`].
pub fn error_code(code: &str) -> Option<&'static ErrorCode> {
    ERROR_CODES.iter().find(|c| c.code == code)
}

impl CoreError {
    /// This error's entry of [`ERROR_CODES`].
    pub fn info(&self) -> &'static ErrorCode {
        // Every code() is in the table (tested); InternalError is the safe answer.
        error_code(self.code())
            .or_else(|| error_code("InternalError"))
            .unwrap_or(&ERROR_CODES[0])
    }
}

impl From<honnin_storage::StoreError> for CoreError {
    fn from(e: honnin_storage::StoreError) -> Self {
        use honnin_storage::StoreError as S;
        match e {
            S::Conflict(m) => CoreError::ResourceAlreadyExists(format!("{m} already exists")),
            S::NotFound(m) => CoreError::ResourceNotFound(format!("{m} was not found")),
            other => CoreError::Storage(other),
        }
    }
}

/// The result of every operation of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;

#[cfg(test)]
mod tests {
    use super::*;
    use honnin_engine::ImageError;

    #[test]
    fn every_code_is_in_the_table_once() {
        let mut seen = std::collections::HashSet::new();
        for c in ERROR_CODES {
            assert!(seen.insert(c.code), "{} twice", c.code);
            assert!((400..600).contains(&c.status), "{c:?}");
            assert!(
                c.rekognition.ends_with("Exception") || c.rekognition == "InternalServerError",
                "{c:?}"
            );
        }
        let image = |source| CoreError::Image {
            what: "image".into(),
            source,
        };
        let all = [
            CoreError::InvalidParameter(String::new()),
            image(ImageError::Empty),
            image(ImageError::TooLarge { size: 2, limit: 1 }),
            image(ImageError::UnsupportedFormat {
                detail: String::new(),
            }),
            image(ImageError::Corrupt {
                reason: String::new(),
            }),
            image(ImageError::TooManyPixels {
                width: 1,
                height: 1,
                megapixels: 1.0,
                limit_megapixels: 0.5,
            }),
            image(ImageError::TooSmall {
                width: 1,
                height: 1,
                min_side: 2,
            }),
            CoreError::NoFaceDetected(String::new()),
            CoreError::ResourceNotFound(String::new()),
            CoreError::ResourceAlreadyExists(String::new()),
            CoreError::AccessDenied(String::new()),
            CoreError::Unauthenticated(String::new()),
            CoreError::Throttling(String::new()),
            CoreError::PayloadTooLarge(String::new()),
            CoreError::ServiceUnavailable(String::new()),
            CoreError::Cancelled,
            CoreError::SessionNotFound(String::new()),
            CoreError::SessionExpired(String::new()),
            CoreError::SessionAlreadyStarted(String::new()),
            CoreError::SessionCancelled(String::new()),
            CoreError::InvalidClientToken(String::new()),
            CoreError::VerificationNotFound(String::new()),
            CoreError::VerificationExpired(String::new()),
            CoreError::StepOutOfOrder(String::new()),
            CoreError::DocumentPortraitAmbiguous(String::new()),
            CoreError::DocumentPortraitUnusable(String::new()),
            CoreError::Crypto(String::new()),
            CoreError::Config(String::new()),
            CoreError::Storage(honnin_storage::StoreError::NotFound(String::new())),
            CoreError::Internal(String::new()),
            CoreError::json("x")(serde_json::from_str::<u8>("").unwrap_err()),
            CoreError::engine("x")(honnin_engine::EngineError::NoFace),
        ];
        for e in &all {
            assert!(
                error_code(e.code()).is_some(),
                "{} is not in ERROR_CODES",
                e.code()
            );
            assert_eq!(e.info().code, e.code());
        }
    }

    #[test]
    fn an_engine_image_error_keeps_its_code_and_its_source() {
        let e = CoreError::from_engine(
            honnin_engine::EngineError::Image(ImageError::Empty),
            "sourceImage",
        );
        assert_eq!(e.code(), "EmptyImage");
        assert_eq!(e.info().status, 400);
        assert!(e.to_string().starts_with("sourceImage: "), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let e = CoreError::from_engine(
            honnin_engine::EngineError::Image(ImageError::TooManyPixels {
                width: 9000,
                height: 9000,
                megapixels: 81.0,
                limit_megapixels: 40.0,
            }),
            "image",
        );
        assert_eq!(
            (e.code(), e.info().status),
            ("ImageDimensionsTooLarge", 413)
        );
    }
}
