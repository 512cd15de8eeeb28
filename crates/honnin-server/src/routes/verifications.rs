//! Identity verification: `POST /v1/verifications`, `PUT …/{id}/document`,
//! `GET`/`DELETE …/{id}`. The liveness step runs through the liveness session the
//! creation returns (`/v1/liveness/sessions/{id}/stream`); the decision follows by itself.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use honnin_core::verification::{CreatedVerification, NewVerification, VerificationStatus};
use honnin_core::{CoreError, Principal, Role};
use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, ImageInput, Input, Path};
use crate::AppState;

/// A created verification as the API returns it: the core's answer and where the
/// capture client streams its liveness session.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationCreated {
    /// The core's answer (`verificationId`, `status`, `livenessSessionId`,
    /// `clientToken`, `expiresAt`, `policy`), flattened into this object.
    #[serde(flatten)]
    pub verification: CreatedVerification,
    /// Where the capture client opens the liveness session's WebSocket (add
    /// `?token=<clientToken>`).
    pub stream_path: String,
}

impl From<CreatedVerification> for VerificationCreated {
    fn from(verification: CreatedVerification) -> Self {
        VerificationCreated {
            stream_path: super::liveness::stream_path(&verification.liveness_session_id),
            verification,
        }
    }
}

/// Start a verification: returns its id and the liveness session (id + client token)
/// the capture client runs after the document step.
#[utoipa::path(post, path = "/v1/verifications", tag = "verification",
    request_body(content = NewVerification),
    responses(
        (status = 200, description = "Created, awaiting_document", body = VerificationCreated),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied: an enroller key for the collection is needed", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: no such collection", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<NewVerification>,
) -> ApiResult<Json<VerificationCreated>> {
    Ok(Json(
        s.service
            .verifications()
            .create_verification(&p, r)
            .await?
            .into(),
    ))
}

/// The body of `PUT /v1/verifications/{verificationId}/document`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentRequest {
    /// The ID document: photo page or card front, photographed or scanned.
    pub image: ImageInput,
}

/// The document step: the main portrait is found, checked, and only its template kept.
#[utoipa::path(put, path = "/v1/verifications/{verificationId}/document", tag = "verification",
    params(("verificationId" = String, Path)),
    request_body(content = DocumentRequest, description = "JSON, or multipart/form-data with an `image` file part"),
    responses(
        (status = 200, description = "Accepted, awaiting_liveness", body = VerificationStatus),
        (status = 400, description = "InvalidParameter, InvalidImageFormat, NoFaceDetected, DocumentPortraitAmbiguous, DocumentPortraitUnusable", body = ErrorBody),
        (status = 403, description = "AccessDenied: a recognizer key, or a key limited to another collection", body = ErrorBody),
        (status = 404, description = "VerificationNotFound (or another key's, unless an admin of its collection)", body = ErrorBody),
        (status = 409, description = "VerificationStepOutOfOrder: the document was already received", body = ErrorBody),
        (status = 410, description = "VerificationExpired", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn document(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<DocumentRequest>,
) -> ApiResult<Json<VerificationStatus>> {
    let image = r.image.decode("image")?;
    Ok(Json(
        s.service
            .verifications()
            .put_verification_document(&p, &id, image)
            .await?,
    ))
}

/// A verification's status and, once decided, its decision record.
#[utoipa::path(get, path = "/v1/verifications/{verificationId}", tag = "verification",
    params(("verificationId" = String, Path)),
    responses(
        (status = 200, description = "The verification", body = VerificationStatus),
        (status = 404, description = "VerificationNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn status(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<VerificationStatus>> {
    Ok(Json(
        s.service
            .verifications()
            .verification_status(&p, &id)
            .await?,
    ))
}

/// Delete a verification's record, its liveness session and the webhook events about
/// it, at once.
#[utoipa::path(delete, path = "/v1/verifications/{verificationId}", tag = "verification",
    params(("verificationId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "AccessDenied: a recognizer key", body = ErrorBody),
        (status = 404, description = "VerificationNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service
        .verifications()
        .delete_verification(&p, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------------- demo
//
// Mounted behind the demo gate (`crate::app`): none of these runs unless
// `demo.enabled`. With the demo on, anyone who reaches the server can run
// verifications that enrol faces into `demo-verify` (docs/security.md).

/// The collection the verification demo enrols into.
pub const DEMO_COLLECTION: &str = "demo-verify";

/// The demo's principal: an enroller limited to `demo-verify` as it exists now.
async fn demo_principal(s: &AppState) -> ApiResult<Principal> {
    Ok(s.service
        .principal_for("demo", Role::Enroller, DEMO_COLLECTION)
        .await?)
}

/// `GET /demo/verify`: the demo page.
pub async fn demo_page() -> Response {
    super::liveness::serve_asset(honnin_web::VERIFY_DEMO_PATH)
}

/// The body of `POST /demo/api/verifications`, all optional (an empty body is `{}`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DemoCreate {
    external_user_id: String,
}

/// `POST /demo/api/verifications`: what a customer's backend would do, key-less, for
/// the demo page only (creates the `demo-verify` collection on first use).
pub async fn demo_create(
    State(s): State<AppState>,
    body: axum::body::Bytes,
) -> ApiResult<Json<VerificationCreated>> {
    super::liveness::demo_rate_limit(&s)?;
    let b: DemoCreate = super::liveness::optional_json(&body)?;
    match s
        .service
        .gallery()
        .create_collection(&Principal::system(), DEMO_COLLECTION)
        .await
    {
        Ok(_) | Err(CoreError::ResourceAlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let req = NewVerification {
        collection_id: DEMO_COLLECTION.into(),
        external_user_id: b.external_user_id,
        ..NewVerification::default()
    };
    let p = demo_principal(&s).await?;
    Ok(Json(
        s.service
            .verifications()
            .create_verification(&p, req)
            .await?
            .into(),
    ))
}

/// `PUT /demo/api/verifications/{id}/document`.
pub async fn demo_document(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Input(r): Input<DocumentRequest>,
) -> ApiResult<Json<VerificationStatus>> {
    let image = r.image.decode("image")?;
    let p = demo_principal(&s).await?;
    Ok(Json(
        s.service
            .verifications()
            .put_verification_document(&p, &id, image)
            .await?,
    ))
}

/// `GET /demo/api/verifications/{id}`: the demo's own verifications.
pub async fn demo_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<VerificationStatus>> {
    let p = demo_principal(&s).await?;
    Ok(Json(
        s.service
            .verifications()
            .verification_status(&p, &id)
            .await?,
    ))
}
