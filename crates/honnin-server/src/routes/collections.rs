//! Collections, their faces, and 1:N search.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use honnin_core::model::{
    CollectionInfo, CollectionList, DeleteFacesResult, FaceList, IndexResult, Probe, QualityFilter,
    SearchResult,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, ImageInput, Input, Path, Query};
use crate::AppState;

/// The body of `POST /v1/collections`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateCollectionRequest {
    /// 1–255 characters of `[a-zA-Z0-9_.-]`.
    pub collection_id: String,
}

/// Paging of `GET /v1/collections`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Page size (1–1000; default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub max_results: Option<u32>,
    /// The `nextToken` of the previous page: opaque, valid 24 h, for the same listing
    /// and caller only (otherwise 400 `InvalidParameter`).
    pub next_token: Option<String>,
}

/// Paging of `GET /v1/collections/{collectionId}/faces`, optionally one user's faces.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FacePage {
    /// Page size (1–4096; default 100).
    #[param(minimum = 1, maximum = 4096, default = 100)]
    pub max_results: Option<u32>,
    /// The `nextToken` of the previous page: opaque, valid 24 h, for the same listing
    /// only (otherwise 400 `InvalidParameter`).
    pub next_token: Option<String>,
    /// Only the faces of this user.
    pub user_id: Option<String>,
}

/// Create an empty collection with its own data key.
#[utoipa::path(post, path = "/v1/collections", tag = "collections",
    request_body = CreateCollectionRequest,
    responses(
        (status = 201, description = "Created", body = CollectionInfo),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied: recognizer key, or a key limited to another collection", body = ErrorBody),
        (status = 409, description = "ResourceAlreadyExists", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<CreateCollectionRequest>,
) -> ApiResult<(StatusCode, Json<CollectionInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(
            s.service
                .gallery()
                .create_collection(&p, &r.collection_id)
                .await?,
        ),
    ))
}

/// List the collections this key may see (a key limited to a collection: that one).
#[utoipa::path(get, path = "/v1/collections", tag = "collections", params(Page),
    responses(
        (status = 200, description = "A page of collections", body = CollectionList),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    Query(q): Query<Page>,
) -> ApiResult<Json<CollectionList>> {
    Ok(Json(
        s.service
            .gallery()
            .list_collections(&p, q.max_results, q.next_token.as_deref())
            .await?,
    ))
}

/// Face count, user count, model version and creation time.
#[utoipa::path(get, path = "/v1/collections/{collectionId}", tag = "collections",
    params(("collectionId" = String, Path)),
    responses(
        (status = 200, description = "The collection", body = CollectionInfo),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn describe(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<CollectionInfo>> {
    Ok(Json(
        s.service.gallery().describe_collection(&p, &id).await?,
    ))
}

/// Delete a collection and every record about it: faces, users, verifications (with
/// their kept images and templates) and their liveness sessions, webhook events about
/// it; keys limited to it are revoked; its data key leaves the key vault. On SQLite the
/// erased bytes are then gone from the database and key-vault files (`secure_delete`,
/// WAL truncated). What holds for backups depends on how the key vault is backed up:
/// docs/security.md, "Erasure and backups".
#[utoipa::path(delete, path = "/v1/collections/{collectionId}", tag = "collections",
    params(("collectionId" = String, Path)),
    responses(
        (status = 204, description = "Deleted with every record about it; its templates cannot be decrypted from this database again, nor from a backup of it without the key vault (docs/security.md)"),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service.gallery().delete_collection(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of `POST /v1/collections/{collectionId}/faces`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexFacesRequest {
    /// The image to index faces from.
    pub image: ImageInput,
    /// Your id for the image, returned with each face (1–255 of `[a-zA-Z0-9_.:-]`).
    pub external_image_id: Option<String>,
    /// Index at most this many faces, largest first (1–100, default 100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_faces: Option<u32>,
    /// Quality bar (default AUTO = MEDIUM).
    pub quality_filter: Option<QualityFilter>,
}

/// Detect faces in an image and store the templates of those that pass the quality filter.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/faces", tag = "faces",
    params(("collectionId" = String, Path)),
    request_body(content = IndexFacesRequest, description = "JSON, or multipart/form-data with an `image` file part"),
    responses(
        (status = 200, description = "Indexed faces, and unindexed faces with reasons. Returned once the faces are durably stored.", body = IndexResult),
        (status = 400, description = "InvalidParameter, InvalidImageFormat", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn index_faces(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<IndexFacesRequest>,
) -> ApiResult<Json<IndexResult>> {
    let image = r.image.decode("image")?;
    let res = s
        .service
        .gallery()
        .index_faces(
            &p,
            &id,
            image,
            r.external_image_id,
            r.max_faces.map(|m| m as usize),
            r.quality_filter.unwrap_or_default(),
        )
        .await?;
    metrics::counter!("honnin_faces_indexed_total").increment(res.face_records.len() as u64);
    Ok(Json(res))
}

/// List the faces of a collection (no templates), paged.
#[utoipa::path(get, path = "/v1/collections/{collectionId}/faces", tag = "faces",
    params(("collectionId" = String, Path), FacePage),
    responses(
        (status = 200, description = "A page of faces", body = FaceList),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list_faces(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Query(q): Query<FacePage>,
) -> ApiResult<Json<FaceList>> {
    Ok(Json(
        s.service
            .gallery()
            .list_faces(
                &p,
                &id,
                q.max_results,
                q.next_token.as_deref(),
                q.user_id.as_deref(),
            )
            .await?,
    ))
}

/// The body of `DELETE /v1/collections/{collectionId}/faces`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteFacesRequest {
    /// 1–4096 face ids.
    pub face_ids: Vec<String>,
}

/// Delete faces by id. Deleted faces never come back.
#[utoipa::path(delete, path = "/v1/collections/{collectionId}/faces", tag = "faces",
    params(("collectionId" = String, Path)),
    request_body = DeleteFacesRequest,
    responses(
        (status = 200, description = "Deleted ids, and ids that could not be deleted with reasons", body = DeleteFacesResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete_faces(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<DeleteFacesRequest>,
) -> ApiResult<Json<DeleteFacesResult>> {
    Ok(Json(
        s.service
            .gallery()
            .delete_faces(&p, &id, &r.face_ids)
            .await?,
    ))
}

/// The body of `POST /v1/collections/{collectionId}/search`: the probe and how close a
/// match must be.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SearchFacesRequest {
    /// Search with the largest face of this image…
    pub image: Option<ImageInput>,
    /// …or with a face indexed in this collection (exactly one of the two).
    pub face_id: Option<String>,
    /// Similarity (0–100) a match must reach; default: the threshold for FMR 1e-5.
    #[schema(minimum = 0, maximum = 100)]
    pub threshold: Option<f32>,
    /// At most this many matches (1–4096, default 100).
    #[schema(minimum = 1, maximum = 4096)]
    pub max_results: Option<u32>,
}

/// 1:N search of a collection by image or by an indexed face.
#[utoipa::path(post, path = "/v1/collections/{collectionId}/search", tag = "search",
    params(("collectionId" = String, Path)),
    request_body(content = SearchFacesRequest, description = "JSON, or multipart/form-data with an `image` file part"),
    responses(
        (status = 200, description = "Matches, best first", body = SearchResult),
        (status = 400, description = "InvalidParameter, InvalidImageFormat, NoFaceDetected", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn search(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
    Input(r): Input<SearchFacesRequest>,
) -> ApiResult<Json<SearchResult>> {
    let probe = match (r.image, r.face_id) {
        (Some(img), None) => Probe::Image(img.decode("image")?),
        (None, Some(f)) => Probe::CollectionFace(f),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `image` and `faceId`",
            ))
        }
    };
    Ok(Json(
        s.service
            .gallery()
            .search_faces(
                &p,
                &id,
                probe,
                r.threshold,
                r.max_results.map(|m| m as usize),
            )
            .await?,
    ))
}
