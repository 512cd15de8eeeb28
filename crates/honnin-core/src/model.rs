//! The values operations take and return. Field names are camelCase and reuse
//! Amazon Rekognition's names where the concept is the same, so the native `/v1`
//! JSON API serialises these directly.

use honnin_engine::engine::{FaceQuality, Landmark, RatioBox};
use honnin_engine::geometry::Rect;
use honnin_engine::quality::Pose;
use honnin_engine::{Face, QualityLevel, RetakeReason};
use serde::{Deserialize, Serialize};

/// A detected face with all attributes, and its transient face ID when one was asked for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceDetail {
    pub bounding_box: RatioBox,
    pub bounding_box_pixels: Rect,
    pub landmarks: Vec<Landmark>,
    pub pose: Pose,
    pub quality: FaceQuality,
    pub confidence: f32,
    pub face_size: f32,
    pub quality_for_recognition: QualityLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_id_expires_at: Option<String>,
}

impl From<&Face> for FaceDetail {
    fn from(f: &Face) -> Self {
        FaceDetail {
            bounding_box: f.bounding_box,
            bounding_box_pixels: f.bounding_box_pixels,
            landmarks: f.landmarks.clone(),
            pose: f.pose,
            quality: f.quality,
            confidence: f.confidence,
            face_size: f.face_size,
            quality_for_recognition: f.quality_for_recognition,
            face_id: None,
            face_id_expires_at: None,
        }
    }
}

/// `POST /v1/detect`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DetectResult {
    pub image_width: u32,
    pub image_height: u32,
    pub face_details: Vec<FaceDetail>,
    /// Faces found beyond the cap (`maxFaces`, or honnin's limit of 100 per image) and
    /// left out of this response: 0 when every face found is here.
    #[serde(default)]
    pub faces_omitted: u32,
}

/// A face as compare reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComparedFace {
    pub bounding_box: RatioBox,
    pub confidence: f32,
    pub quality_for_recognition: QualityLevel,
    /// Only on an unmatched face, and only when this non-match is not reliable evidence
    /// of a different person: why (either face turned far from frontal, the two seen
    /// from directions far apart, a face too small, or blurred). A client should then
    /// ask for a better photo ("retake") rather than conclude "different person".
    /// Absent (empty) otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retake_reasons: Vec<RetakeReason>,
}

impl From<&Face> for ComparedFace {
    fn from(f: &Face) -> Self {
        ComparedFace {
            bounding_box: f.bounding_box,
            confidence: f.confidence,
            quality_for_recognition: f.quality_for_recognition,
            retake_reasons: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompareMatch {
    pub similarity: f32,
    pub face: ComparedFace,
}

/// The decision threshold used and the false-match rate it stands for.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ThresholdInfo {
    /// Similarity threshold, 0–100.
    pub threshold: f32,
    /// The false-match rate that threshold corresponds to (measured on LFW and CFP: the
    /// stricter of the two decides).
    pub false_match_rate: f64,
    /// False when the rate lies beyond the calibration's measured range.
    pub false_match_rate_measured: bool,
}

/// `POST /v1/compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompareResult {
    pub source_image_face: ComparedFace,
    pub face_matches: Vec<CompareMatch>,
    pub unmatched_faces: Vec<ComparedFace>,
    pub similarity_threshold: ThresholdInfo,
    /// Faces of the target image found beyond honnin's limit of 100 per image and not
    /// compared: 0 when every face found was compared.
    #[serde(default)]
    pub faces_omitted: u32,
}

/// A collection and its counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionInfo {
    pub collection_id: String,
    pub face_count: i64,
    pub user_count: i64,
    pub face_model_version: String,
    pub creation_timestamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionList {
    pub collections: Vec<CollectionInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Box, confidence and quality of an indexed face: what is stored besides the
/// (encrypted) template. No image, no landmarks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredDetails {
    pub bounding_box: RatioBox,
    pub confidence: f32,
    pub quality_for_recognition: QualityLevel,
}

/// A face stored in a collection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFace {
    pub face_id: String,
    pub bounding_box: RatioBox,
    pub image_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    pub confidence: f32,
    pub quality_for_recognition: QualityLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub index_timestamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceRecord {
    pub face: StoredFace,
    pub face_detail: FaceDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnindexedFace {
    pub reasons: Vec<String>,
    pub face_detail: FaceDetail,
}

/// `POST /v1/collections/{id}/faces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexResult {
    pub face_records: Vec<FaceRecord>,
    pub unindexed_faces: Vec<UnindexedFace>,
    pub face_model_version: String,
    /// Faces found beyond honnin's limit of 100 per image, neither indexed nor listed in
    /// `unindexedFaces`: 0 when every face found is accounted for.
    #[serde(default)]
    pub faces_omitted: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceList {
    pub faces: Vec<StoredFace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceFailure {
    pub face_id: String,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteFacesResult {
    pub deleted_faces: Vec<String>,
    pub unsuccessful_face_deletions: Vec<FaceFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceMatch {
    pub similarity: f32,
    pub face: StoredFace,
}

/// `POST /v1/collections/{id}/search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_bounding_box: Option<RatioBox>,
    /// Only when nothing matched: the image's face is turned, small or blurred and some
    /// face of the collection came close (similarity 40 up to the threshold), so "no
    /// match" is not reliable; ask for a better photo. Absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retake_reasons: Vec<RetakeReason>,
    pub face_matches: Vec<FaceMatch>,
    pub threshold: ThresholdInfo,
    pub face_model_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    pub user_id: String,
    pub creation_timestamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    pub users: Vec<UserInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociationFailure {
    pub face_id: String,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociateResult {
    pub associated_faces: Vec<String>,
    pub unsuccessful_face_associations: Vec<AssociationFailure>,
    pub user_match_threshold: ThresholdInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisassociateResult {
    pub disassociated_faces: Vec<String>,
    pub unsuccessful_face_disassociations: Vec<FaceFailure>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserMatch {
    pub similarity: f32,
    pub user_id: String,
    /// The face of the user that matched best.
    pub best_face_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchUsersResult {
    pub user_matches: Vec<UserMatch>,
    /// As [`SearchResult::retake_reasons`], for users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retake_reasons: Vec<RetakeReason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_bounding_box: Option<RatioBox>,
    pub threshold: ThresholdInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResult {
    pub is_identical: bool,
    pub similarity: f32,
    pub threshold: ThresholdInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    pub user_id: String,
    pub similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentifyResult {
    pub face_id: String,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimilarFace {
    pub face_id: String,
    pub similarity: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupResult {
    pub groups: Vec<Vec<String>>,
    pub messy_group: Vec<String>,
    pub threshold: ThresholdInfo,
}

/// Where a face to compare or search with comes from.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Image bytes; the largest face is used.
    Image(Vec<u8>),
    /// A face indexed in the collection being searched.
    CollectionFace(String),
    /// A transient face ID from `detect`.
    TransientFace(String),
}

/// `matchPerson` keeps faces at the match threshold; `matchFace` ranks regardless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SimilarMode {
    #[default]
    MatchPerson,
    MatchFace,
}

/// Rekognition's quality bars for indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QualityFilter {
    None,
    #[default]
    Auto,
    Low,
    Medium,
    High,
}
