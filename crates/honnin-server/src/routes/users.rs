//! Users: several faces of one person, matched as one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use honnin_core::model::{
    AssociateResult, DisassociateResult, Probe, SearchUsersResult, UserInfo, UserList,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, ImageInput, Input, Path, Query};
use crate::AppState;

/// Paging of `GET /v1/collections/{collectionId}/users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserPage {
    /// Page size (1–500; default 100).
    #[param(minimum = 1, maximum = 500, default = 100)]
    pub max_results: Option<u32>,
    /// The `nextToken` of the previous page: opaque, valid 24 h, for the same listing
    /// and caller only (otherwise 400 `InvalidParameter`).
    pub next_token: Option<String>,
}

/// The body of `POST /v1/collections/{collectionId}/users`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateUserRequest {
    /// 1–128 characters of `[a-zA-Z0-9_.:-]`.
    pub user_id: String,
}

/// Create a user (without faces) in a collection.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/users", tag = "users",
    params(("collectionId" = String, Path)),
    request_body = CreateUserRequest,
    responses(
        (status = 201, description = "Created", body = UserInfo),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound (collection)", body = ErrorBody),
        (status = 409, description = "ResourceAlreadyExists", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<UserInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.service.gallery().create_user(&p, &id, &r.user_id).await?),
    ))
}

/// List users, paged.
#[utoipa::path(get, path = "/v1/collections/{collectionId}/users", tag = "users",
    params(("collectionId" = String, Path), UserPage),
    responses(
        (status = 200, description = "A page of users", body = UserList),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<UserPage>,
) -> ApiResult<Json<UserList>> {
    Ok(Json(
        s.service
            .gallery()
            .list_users(&p, &id, q.max_results, q.next_token.as_deref())
            .await?,
    ))
}

/// The query of `DELETE /v1/collections/{collectionId}/users/{userId}`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteUserQuery {
    /// Keep the user's faces in the collection, only detached from the user (Amazon
    /// Rekognition's DeleteUser). Default false: the faces are erased with the user.
    pub keep_faces: Option<bool>,
}

/// Delete a user and everything about them: their faces (templates), the
/// verifications of that `externalUserId` with their liveness sessions, and webhook
/// events about them. With `keepFaces=true` the faces stay, no longer associated.
#[utoipa::path(delete, path = "/v1/collections/{collectionId}/users/{userId}", tag = "users",
    params(("collectionId" = String, Path), ("userId" = String, Path), DeleteUserQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
    Query(q): Query<DeleteUserQuery>,
) -> ApiResult<StatusCode> {
    s.service
        .gallery()
        .delete_user(&p, &id, &user, q.keep_faces.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /v1/collections/{collectionId}/users/{userId}/faces`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssociateFacesRequest {
    /// 1–100 indexed face ids.
    pub face_ids: Vec<String>,
    /// Similarity (0–100) each face must reach against the user's other faces;
    /// default: the threshold for FMR 1e-4.
    #[schema(minimum = 0, maximum = 100)]
    pub user_match_threshold: Option<f32>,
}

/// Associate faces with a user; a face that does not match the user's other faces is refused.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/users/{userId}/faces", tag = "users",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    request_body = AssociateFacesRequest,
    responses(
        (status = 200, description = "Associated faces and refusals with reasons", body = AssociateResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn associate(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
    Input(r): Input<AssociateFacesRequest>,
) -> ApiResult<Json<AssociateResult>> {
    Ok(Json(
        s.service
            .gallery()
            .associate_faces(&p, &id, &user, &r.face_ids, r.user_match_threshold)
            .await?,
    ))
}

/// The body of `DELETE /v1/collections/{collectionId}/users/{userId}/faces`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisassociateFacesRequest {
    /// 1–100 face ids.
    pub face_ids: Vec<String>,
}

/// Remove faces from a user (the faces stay in the collection).
#[utoipa::path(delete, path = "/v1/collections/{collectionId}/users/{userId}/faces", tag = "users",
    params(("collectionId" = String, Path), ("userId" = String, Path)),
    request_body = DisassociateFacesRequest,
    responses(
        (status = 200, description = "Disassociated faces and failures", body = DisassociateResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn disassociate(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path((id, user)): Path<(String, String)>,
    Input(r): Input<DisassociateFacesRequest>,
) -> ApiResult<Json<DisassociateResult>> {
    Ok(Json(
        s.service
            .gallery()
            .disassociate_faces(&p, &id, &user, &r.face_ids)
            .await?,
    ))
}

/// The body of `POST /v1/collections/{collectionId}/search-users`: the probe and how
/// close a user must be.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchUsersRequest {
    /// Search with the largest face of this image…
    pub image: Option<ImageInput>,
    /// …or with the faces of this user…
    pub user_id: Option<String>,
    /// …or with an indexed face of this collection (exactly one of the three).
    pub face_id: Option<String>,
    /// Similarity (0–100) a user must reach; default: the threshold for FMR 1e-5.
    #[schema(minimum = 0, maximum = 100)]
    pub threshold: Option<f32>,
    /// At most this many users (1–500, default 10: `honnin_core::config::MAX_USERS`,
    /// `DEFAULT_MAX_USERS`; a test checks the schema against them).
    #[schema(minimum = 1, maximum = 500, default = 10)]
    pub max_users: Option<u32>,
}

/// Search the users of a collection by image, by user or by face.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/search-users", tag = "search",
    params(("collectionId" = String, Path)),
    request_body(content = SearchUsersRequest, description = "JSON, or multipart/form-data with an `image` file part"),
    responses(
        (status = 200, description = "Matching users, best first", body = SearchUsersResult),
        (status = 400, description = "InvalidParameter, InvalidImageFormat, NoFaceDetected", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn search(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<SearchUsersRequest>,
) -> ApiResult<Json<SearchUsersResult>> {
    let (probe, user) = match (r.image, r.user_id, r.face_id) {
        (Some(img), None, None) => (Some(Probe::Image(img.decode("image")?)), None),
        (None, Some(u), None) => (None, Some(u)),
        (None, None, Some(f)) => (Some(Probe::CollectionFace(f)), None),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `image`, `userId` and `faceId`",
            ))
        }
    };
    Ok(Json(
        s.service
            .gallery()
            .search_users(
                &p,
                &id,
                probe,
                user.as_deref(),
                r.threshold,
                r.max_users.map(|m| m as usize),
            )
            .await?,
    ))
}
