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
    /// Stable machine-readable code: one of `honnin_core::error::ERROR_CODES` (the
    /// OpenAPI document lists them as this field's enum; `docs/api.md` explains each).
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status: the one `ERROR_CODES` gives `code` (500 for a code outside it).
    pub status: StatusCode,
    /// The stable code, one of [`honnin_core::error::ERROR_CODES`] (e.g.
    /// `InvalidParameter`); the body's `code`.
    pub code: &'static str,
    /// What went wrong, for people; the body's `message`. For a 500 only "internal
    /// error; the server log has details".
    pub message: String,
    /// Seconds, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `code` (one of [`honnin_core::error::ERROR_CODES`]) and the status
    /// the table gives it.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: status_of_code(code),
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `InvalidParameter` with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new("InvalidParameter", message)
    }

    /// 413 `PayloadTooLarge` (a body over `limits.max_body_bytes`) with `message`.
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new("PayloadTooLarge", message)
    }
}

/// The HTTP status of a code of [`honnin_core::error::ERROR_CODES`] (500 for a code
/// outside the table, which a test rules out).
pub fn status_of_code(code: &str) -> StatusCode {
    honnin_core::error::error_code(code)
        .and_then(|c| StatusCode::from_u16(c.status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = status_of_code(e.code());
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            // Details of internal failures go to the log, not to the client.
            tracing::error!(error = %e, "internal error");
            "internal error; the server log has details".to_string()
        } else {
            e.to_string()
        };
        let mut api = ApiError::new(e.code(), message);
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

/// The result of a handler: its answer, or an [`ApiError`] rendered as the error body.
pub type ApiResult<T> = Result<T, ApiError>;
