//! Operations on transient face IDs from `detect` (Azure Face's verify, identify,
//! find-similar and group).

use axum::extract::State;
use axum::Json;
use honnin_core::model::{GroupResult, IdentifyResult, SimilarFace, SimilarMode, VerifyResult};
use honnin_core::{SimilarAmong, VerifyTarget};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Caller, Input};
use crate::AppState;

/// The body of `POST /v1/verify`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyRequest {
    /// A transient face ID.
    pub face_id: String,
    /// Compare with this other transient face ID…
    pub face_id2: Option<String>,
    /// …or with the user `userId` of collection `collectionId`.
    pub collection_id: Option<String>,
    /// The user of `collectionId` to compare with (give both or neither).
    pub user_id: Option<String>,
    /// Similarity (0–100) for `isIdentical`; default: the threshold for FMR 1e-5.
    #[schema(minimum = 0, maximum = 100)]
    pub threshold: Option<f32>,
}

/// 1:1 — is this face the same person as another face, or as a user?
#[utoipa::path(post, path = "/v1/verify", tag = "transient faces",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Decision and similarity", body = VerifyResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied (a key limited to another collection)", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: unknown or expired face ID, unknown user", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn verify(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<VerifyRequest>,
) -> ApiResult<Json<VerifyResult>> {
    let target = match (r.face_id2, r.collection_id, r.user_id) {
        (Some(f), None, None) => VerifyTarget::Face(f),
        (None, Some(collection), Some(user_id)) => VerifyTarget::User {
            collection,
            user_id,
        },
        _ => {
            return Err(ApiError::invalid(
                "give either `faceId2`, or both `collectionId` and `userId`",
            ))
        }
    };
    Ok(Json(
        s.service
            .transient()
            .verify(&p, &r.face_id, target, r.threshold)
            .await?,
    ))
}

/// The body of `POST /v1/identify`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentifyRequest {
    /// 1–10 transient face IDs.
    pub face_ids: Vec<String>,
    /// The collection whose users are the candidates.
    pub collection_id: String,
    /// Candidates per face (1–100, default 10).
    #[schema(minimum = 1, maximum = 100)]
    pub max_num_of_candidates_returned: Option<u32>,
    /// Similarity (0–100) a candidate must reach; default: the threshold for FMR 1e-5.
    #[schema(minimum = 0, maximum = 100)]
    pub threshold: Option<f32>,
}

/// 1:N — which users of a collection are these faces?
#[utoipa::path(post, path = "/v1/identify", tag = "transient faces",
    request_body = IdentifyRequest,
    responses(
        (status = 200, description = "Candidates per face", body = Vec<IdentifyResult>),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn identify(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<IdentifyRequest>,
) -> ApiResult<Json<Vec<IdentifyResult>>> {
    Ok(Json(
        s.service
            .transient()
            .identify(
                &p,
                &r.face_ids,
                &r.collection_id,
                r.max_num_of_candidates_returned.map(|m| m as usize),
                r.threshold,
            )
            .await?,
    ))
}

/// The body of `POST /v1/find-similar`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FindSimilarRequest {
    /// A transient face ID.
    pub face_id: String,
    /// Look among these transient face IDs (1–1000)…
    pub face_ids: Option<Vec<String>>,
    /// …or among the faces of this collection (exactly one of the two).
    pub collection_id: Option<String>,
    /// `matchPerson` (default) keeps faces at the match threshold; `matchFace` ranks all.
    pub mode: Option<SimilarMode>,
    /// At most this many faces (1–1000, default 20).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_num_of_candidates_returned: Option<u32>,
}

/// Faces similar to a face, best first.
#[utoipa::path(post, path = "/v1/find-similar", tag = "transient faces",
    request_body = FindSimilarRequest,
    responses(
        (status = 200, description = "Similar faces, best first", body = Vec<SimilarFace>),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn find_similar(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<FindSimilarRequest>,
) -> ApiResult<Json<Vec<SimilarFace>>> {
    let among = match (r.face_ids, r.collection_id) {
        (Some(ids), None) => SimilarAmong::Faces(ids),
        (None, Some(c)) => SimilarAmong::Collection(c),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `faceIds` and `collectionId`",
            ))
        }
    };
    Ok(Json(
        s.service
            .transient()
            .find_similar(
                &p,
                &r.face_id,
                among,
                r.mode.unwrap_or_default(),
                r.max_num_of_candidates_returned.map(|m| m as usize),
            )
            .await?,
    ))
}

/// The body of `POST /v1/group`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupRequest {
    /// 2–1000 transient face IDs.
    pub face_ids: Vec<String>,
}

/// Split faces into groups of the same person, plus the faces that match nobody.
#[utoipa::path(post, path = "/v1/group", tag = "transient faces",
    request_body = GroupRequest,
    responses(
        (status = 200, description = "Groups and ungrouped faces", body = GroupResult),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 404, description = "ResourceNotFound: unknown or expired face ID", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn group(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<GroupRequest>,
) -> ApiResult<Json<GroupResult>> {
    Ok(Json(s.service.transient().group(&p, &r.face_ids).await?))
}
