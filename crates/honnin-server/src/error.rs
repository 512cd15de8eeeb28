//! Errors as the API shows them: a JSON body `{ "code", "message" }` with a stable
//! code and the HTTP status that goes with it. Every failure path of every route
//! ends here, so no request is answered with an HTML page or an empty 500.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use honnin_core::CoreError;
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code: InvalidParameter, InvalidImageFormat,
    /// ImageTooLarge, NoFaceDetected, ResourceNotFound, ResourceAlreadyExists,
    /// AccessDenied, Unauthenticated, Throttling, PayloadTooLarge, RequestTimeout,
    /// MethodNotAllowed, ServiceUnavailable, SessionNotFound, SessionExpired,
    /// SessionAlreadyStarted, SessionCancelled, InvalidClientToken,
    /// VerificationNotFound, VerificationExpired, VerificationStepOutOfOrder,
    /// DocumentPortraitAmbiguous, DocumentPortraitUnusable, InternalError.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidParameter", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge", message)
    }
}

/// The HTTP status of each core error code.
pub fn status_of(e: &CoreError) -> StatusCode {
    match e {
        CoreError::InvalidParameter(_)
        | CoreError::InvalidImageFormat(_)
        | CoreError::NoFaceDetected(_) => StatusCode::BAD_REQUEST,
        CoreError::ImageTooLarge(_) | CoreError::PayloadTooLarge(_) => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        CoreError::ResourceNotFound(_)
        | CoreError::SessionNotFound(_)
        | CoreError::VerificationNotFound(_) => StatusCode::NOT_FOUND,
        CoreError::SessionExpired(_)
        | CoreError::VerificationExpired(_)
        | CoreError::SessionCancelled(_) => StatusCode::GONE,
        CoreError::SessionAlreadyStarted(_) | CoreError::StepOutOfOrder(_) => StatusCode::CONFLICT,
        CoreError::DocumentPortraitAmbiguous(_) | CoreError::DocumentPortraitUnusable(_) => {
            StatusCode::BAD_REQUEST
        }
        CoreError::InvalidClientToken(_) => StatusCode::UNAUTHORIZED,
        CoreError::ResourceAlreadyExists(_) => StatusCode::CONFLICT,
        CoreError::AccessDenied(_) => StatusCode::FORBIDDEN,
        CoreError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        CoreError::Throttling(_) => StatusCode::TOO_MANY_REQUESTS,
        CoreError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        // Only ever met by a request that is gone; a timed-out one is answered 408.
        CoreError::Cancelled => StatusCode::REQUEST_TIMEOUT,
        CoreError::Crypto(_)
        | CoreError::Config(_)
        | CoreError::Storage(_)
        | CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = status_of(&e);
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %e, "internal error");
            "internal error; the server log has details".to_string()
        } else {
            e.to_string()
        };
        let mut api = ApiError::new(status, e.code(), message);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Engine work frees a slot within about a second.
            api.retry_after = Some(1);
        }
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_string(),
            message: self.message,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"honnin\""),
            );
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
