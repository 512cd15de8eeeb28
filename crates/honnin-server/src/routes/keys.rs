//! API key management (admin keys only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use honnin_core::auth::{CreatedKey, KeyInfo};
use honnin_core::Role;
use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Input, Path};
use crate::AppState;

/// The body of `POST /v1/keys`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key may do: `admin` (everything, key management included), `enroller`
    /// (collections, faces, users, verifications, webhooks, and recognition) or
    /// `recognizer` (recognition only).
    pub role: Role,
    /// Limit the key to this collection.
    pub collection_id: Option<String>,
    /// A label for people (at most 128 characters).
    #[serde(default)]
    pub name: String,
}

/// Create an API key. The token is in this response only; honnin stores its hash.
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created", body = CreatedKey),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied: not an admin key", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.service
                .keys()
                .create_key(&p, r.role, r.collection_id, &r.name)
                .await?,
        ),
    ))
}

/// List keys (never their secrets).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses(
        (status = 200, description = "All keys, revoked ones included", body = Vec<KeyInfo>),
        (status = 403, description = "AccessDenied: not an admin key", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list(State(s): State<AppState>, Caller(p): Caller) -> ApiResult<Json<Vec<KeyInfo>>> {
    Ok(Json(s.service.keys().list_keys(&p).await?))
}

/// Revoke a key; every server refuses it within 2 s.
#[utoipa::path(delete, path = "/v1/keys/{keyId}", tag = "keys",
    params(("keyId" = String, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied: not an admin key", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: no active key with this id", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn revoke(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service.keys().revoke_key(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
