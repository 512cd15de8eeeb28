//! `POST /v1/detect` and `POST /v1/compare`: image in, faces out; nothing stored
//! except transient face IDs (templates only) when asked for.

use axum::extract::State;
use axum::Json;
use honnin_core::model::{CompareResult, DetectResult};
use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, ImageInput, Input};
use crate::AppState;

/// The body of `POST /v1/detect`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DetectRequest {
    /// The image to detect faces in.
    pub image: ImageInput,
    /// At most this many faces, largest first (1–100, default 100).
    #[schema(minimum = 1, maximum = 100)]
    pub max_faces: Option<u32>,
    /// Also return a transient `faceId` per face, usable by verify/identify/find-similar/group.
    #[serde(default)]
    pub return_face_id: bool,
    /// Lifetime of the transient face IDs, seconds (60–86400, default 86400).
    #[schema(minimum = 60, maximum = 86400)]
    pub face_id_time_to_live: Option<u64>,
}

/// Detect faces with box, landmarks, pose and quality; optionally keep transient face IDs.
#[utoipa::path(post, path = "/v1/detect", tag = "faces",
    request_body(content = DetectRequest, description = "JSON, or multipart/form-data with an `image` file part"),
    responses(
        (status = 200, description = "Faces found (possibly none)", body = DetectResult),
        (status = 400, description = "InvalidParameter, InvalidImageFormat", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn detect(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<DetectRequest>,
) -> ApiResult<Json<DetectResult>> {
    let image = r.image.decode("image")?;
    let ttl = match (r.return_face_id, r.face_id_time_to_live) {
        (false, None) => None,
        (_, t) => Some(t),
    };
    let max = r.max_faces.map(|m| m as usize);
    Ok(Json(
        s.service.transient().detect(&p, image, max, ttl).await?,
    ))
}

/// The body of `POST /v1/compare`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareRequest {
    /// The image whose largest face is compared.
    pub source_image: ImageInput,
    /// The image each of whose faces is compared with the source face.
    pub target_image: ImageInput,
    /// Similarity (0–100) at which a face matches; default: the threshold for FMR 1e-5.
    #[schema(minimum = 0, maximum = 100)]
    pub similarity_threshold: Option<f32>,
}

/// The largest face of the source image against every face of the target image.
#[utoipa::path(post, path = "/v1/compare", tag = "faces",
    request_body(content = CompareRequest, description = "JSON, or multipart/form-data with `sourceImage` and `targetImage` file parts"),
    responses(
        (status = 200, description = "Matches and unmatched faces", body = CompareResult),
        (status = 400, description = "InvalidParameter, InvalidImageFormat, NoFaceDetected (source)", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn compare(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<CompareRequest>,
) -> ApiResult<Json<CompareResult>> {
    let source = r.source_image.decode("sourceImage")?;
    let target = r.target_image.decode("targetImage")?;
    Ok(Json(
        s.service
            .transient()
            .compare(&p, source, target, r.similarity_threshold)
            .await?,
    ))
}
