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
    /// The face box as ratios 0–1 of the image width and height (Rekognition's `BoundingBox`).
    pub bounding_box: RatioBox,
    /// The same box in pixels of the upright (EXIF-rotated) image.
    pub bounding_box_pixels: Rect,
    /// The five landmarks (eyes, nose, mouth corners) as ratios 0–1 of the image; "left"
    /// and "right" as seen in the image.
    pub landmarks: Vec<Landmark>,
    /// Head pose (yaw, pitch, roll) in degrees; 0 is frontal.
    pub pose: Pose,
    /// Brightness and sharpness of the inner face, each 0–100.
    pub quality: FaceQuality,
    /// Detector confidence that this is a face, 0–100.
    pub confidence: f32,
    /// Face size in pixels: the longer side of the box.
    pub face_size: f32,
    /// Whether the face is fit to be a template (`low`, `medium`, `high`), from size,
    /// pose, brightness, sharpness and confidence.
    pub quality_for_recognition: QualityLevel,
    /// The transient face ID (a UUID) when `returnFaceId` was asked for: the input of
    /// verify, identify, find-similar and group until `faceIdExpiresAt`. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub face_id: Option<String>,
    /// When the transient face ID expires, RFC 3339 UTC. Absent without a `faceId`.
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
    /// Width of the upright (EXIF-rotated) image, pixels.
    pub image_width: u32,
    /// Height of the upright (EXIF-rotated) image, pixels.
    pub image_height: u32,
    /// The faces found, largest first, at most `maxFaces` (default and cap 100).
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
    /// The face box as ratios 0–1 of its image.
    pub bounding_box: RatioBox,
    /// Detector confidence that this is a face, 0–100.
    pub confidence: f32,
    /// Whether the face is fit to be a template (`low`, `medium`, `high`).
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

/// A face of the target image that matched the source face.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompareMatch {
    /// Calibrated similarity to the source face, 0–100 (at least the threshold).
    pub similarity: f32,
    /// The matching face of the target image.
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
    /// The largest face of the source image: the probe compared with every target face.
    pub source_image_face: ComparedFace,
    /// Target faces at or above the threshold, most similar first.
    pub face_matches: Vec<CompareMatch>,
    /// Target faces below the threshold, in detection order (largest first).
    pub unmatched_faces: Vec<ComparedFace>,
    /// The threshold applied (the caller's `similarityThreshold`, or the one for the
    /// service's `match_fmr`) and its false-match rate.
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
    /// The collection's name, as given at creation.
    pub collection_id: String,
    /// Faces indexed in the collection (each one template).
    pub face_count: i64,
    /// Users created in the collection.
    pub user_count: i64,
    /// The template space of the collection's templates (e.g. `honnin-1:fr_feature+sface`):
    /// only templates of one space are comparable.
    pub face_model_version: String,
    /// When the collection was created, RFC 3339 UTC.
    pub creation_timestamp: String,
}

/// `GET /v1/collections`: one page of the collections the caller may see, in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CollectionList {
    /// This page's collections.
    pub collections: Vec<CollectionInfo>,
    /// Opaque token for the next page, bound to this caller's listing; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Box, confidence and quality of an indexed face: what is stored besides the
/// (encrypted) template. No image, no landmarks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredDetails {
    /// The face box as ratios 0–1 of the indexed image.
    pub bounding_box: RatioBox,
    /// Detector confidence, 0–100.
    pub confidence: f32,
    /// Quality level at indexing (`low`, `medium`, `high`).
    pub quality_for_recognition: QualityLevel,
}

/// A face stored in a collection.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredFace {
    /// The face's id in the collection, a canonical (lower-case, hyphenated) UUID.
    pub face_id: String,
    /// The face box as ratios 0–1 of the indexed image.
    pub bounding_box: RatioBox,
    /// A UUID shared by every face indexed from the same image (one index call).
    pub image_id: String,
    /// The caller's own id for the image, as given to index (`externalImageId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_image_id: Option<String>,
    /// Detector confidence at indexing, 0–100.
    pub confidence: f32,
    /// Quality level at indexing (`low`, `medium`, `high`).
    pub quality_for_recognition: QualityLevel,
    /// The user this face is associated with; absent for a face of no user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// When the face was indexed, RFC 3339 UTC.
    pub index_timestamp: String,
}

/// A face indexed by `POST /v1/collections/{id}/faces`: the stored face and all that
/// detection saw of it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceRecord {
    /// The face as stored in the collection (its new `faceId`).
    pub face: StoredFace,
    /// Every attribute detection found (landmarks, pose, quality…); not stored.
    pub face_detail: FaceDetail,
}

/// A face found in the image but not indexed, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnindexedFace {
    /// Why not: quality shortfalls (`SMALL_BOUNDING_BOX`, `EXTREME_POSE`,
    /// `LOW_BRIGHTNESS`, `LOW_SHARPNESS`, `LOW_CONFIDENCE`, or `LOW_FACE_QUALITY`) under
    /// the `qualityFilter`, or `EXCEEDS_MAX_FACES` past `maxFaces`.
    pub reasons: Vec<String>,
    /// Every attribute detection found of the face.
    pub face_detail: FaceDetail,
}

/// `POST /v1/collections/{id}/faces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexResult {
    /// The faces indexed, largest first.
    pub face_records: Vec<FaceRecord>,
    /// The faces found but not indexed, with their reasons.
    pub unindexed_faces: Vec<UnindexedFace>,
    /// The template space the new templates belong to (e.g. `honnin-1:fr_feature+sface`).
    pub face_model_version: String,
    /// Faces found beyond honnin's limit of 100 per image, neither indexed nor listed in
    /// `unindexedFaces`: 0 when every face found is accounted for.
    #[serde(default)]
    pub faces_omitted: u32,
}

/// `GET /v1/collections/{id}/faces`: one page of a collection's faces (optionally one
/// user's), in face-id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceList {
    /// This page's faces.
    pub faces: Vec<StoredFace>,
    /// Opaque token for the next page, bound to this listing; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A face id an operation on several faces could not act on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceFailure {
    /// The id as the caller gave it.
    pub face_id: String,
    /// Why: `INVALID_FACE_ID` (not a UUID), `FACE_NOT_FOUND`, or
    /// `ASSOCIATED_TO_A_DIFFERENT_USER` (disassociate).
    pub reasons: Vec<String>,
}

/// `DELETE /v1/collections/{id}/faces`: which faces were deleted and which not.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteFacesResult {
    /// Canonical ids of the faces deleted (templates gone from storage and index).
    pub deleted_faces: Vec<String>,
    /// The ids not deleted, with why.
    pub unsuccessful_face_deletions: Vec<FaceFailure>,
}

/// A face of the collection that matched a search probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceMatch {
    /// Calibrated similarity to the probe, 0–100 (at least the threshold).
    pub similarity: f32,
    /// The matching stored face.
    pub face: StoredFace,
}

/// `POST /v1/collections/{id}/search`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResult {
    /// The probe's id when it was a stored or transient face (canonical UUID); that face
    /// itself is never among the matches. Absent for an image probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_id: Option<String>,
    /// The box (ratios 0–1) of the image probe's largest face, the one searched with;
    /// absent for a face-id probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_bounding_box: Option<RatioBox>,
    /// Only when nothing matched: the image's face is turned, small or blurred and some
    /// face of the collection came close (similarity 40 up to the threshold), so "no
    /// match" is not reliable; ask for a better photo. Absent otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retake_reasons: Vec<RetakeReason>,
    /// Faces at or above the threshold, most similar first, at most `maxResults`
    /// (default 10, 1–4096).
    pub face_matches: Vec<FaceMatch>,
    /// The threshold applied (the caller's, or the one for `match_fmr`) and its FMR.
    pub threshold: ThresholdInfo,
    /// The template space searched (e.g. `honnin-1:fr_feature+sface`).
    pub face_model_version: String,
}

/// A user of a collection: one person, to whom faces are associated.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// The caller's id for the user: 1–128 characters of `[A-Za-z0-9_.:-]`.
    pub user_id: String,
    /// When the user was created, RFC 3339 UTC.
    pub creation_timestamp: String,
}

/// `GET /v1/collections/{id}/users`: one page of a collection's users, in id order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserList {
    /// This page's users.
    pub users: Vec<UserInfo>,
    /// Opaque token for the next page, bound to this listing; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A face that could not be associated with the user, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociationFailure {
    /// The id as the caller gave it.
    pub face_id: String,
    /// Why: `INVALID_FACE_ID`, `FACE_NOT_FOUND`, `ASSOCIATED_TO_A_DIFFERENT_USER`,
    /// `EXCEEDS_MAX_FACES_PER_USER` or `LOW_MATCH_CONFIDENCE` (below `userMatchThreshold`
    /// against the user's faces).
    pub reasons: Vec<String>,
    /// With `LOW_MATCH_CONFIDENCE`: the best similarity (0–100) to the user's faces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
    /// With `ASSOCIATED_TO_A_DIFFERENT_USER`: the user the face belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// `POST /v1/collections/{id}/users/{userId}/faces`: faces associated with a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssociateResult {
    /// Canonical ids of the faces now of the user (including those that already were).
    pub associated_faces: Vec<String>,
    /// The faces not associated, with why.
    pub unsuccessful_face_associations: Vec<AssociationFailure>,
    /// The threshold a new face had to reach against the user's faces (default: the
    /// one for `user_match_fmr`, 1e-4) and its FMR.
    pub user_match_threshold: ThresholdInfo,
}

/// `DELETE /v1/collections/{id}/users/{userId}/faces`: faces detached from a user (they
/// stay indexed).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DisassociateResult {
    /// Canonical ids of the faces detached from the user.
    pub disassociated_faces: Vec<String>,
    /// The faces not detached (`FACE_NOT_FOUND`, `ASSOCIATED_TO_A_DIFFERENT_USER`).
    pub unsuccessful_face_disassociations: Vec<FaceFailure>,
}

/// A user that matched a search: the best of its faces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserMatch {
    /// Calibrated similarity of the user's best face to the probe, 0–100.
    pub similarity: f32,
    /// The matching user.
    pub user_id: String,
    /// The face of the user that matched best.
    pub best_face_id: String,
}

/// `POST /v1/collections/{id}/search-users`: users similar to a probe or to a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchUsersResult {
    /// Users at or above the threshold, most similar first, at most `maxUsers`
    /// (default 10, 1–500).
    pub user_matches: Vec<UserMatch>,
    /// As [`SearchResult::retake_reasons`], for users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retake_reasons: Vec<RetakeReason>,
    /// The box (ratios 0–1) of the image probe's largest face; absent for other probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub searched_face_bounding_box: Option<RatioBox>,
    /// The threshold applied and its FMR.
    pub threshold: ThresholdInfo,
}

/// `POST /v1/verify`: verification (1:1) of a transient face against another transient
/// face or a user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyResult {
    /// Whether `similarity` reaches the threshold: the same person, at the threshold's FMR.
    pub is_identical: bool,
    /// Calibrated similarity, 0–100 (against a user: the best of the user's faces).
    pub similarity: f32,
    /// The threshold applied (the caller's, or the one for `match_fmr`) and its FMR.
    pub threshold: ThresholdInfo,
}

/// A user that identification proposes for a face.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    /// The candidate user.
    pub user_id: String,
    /// Calibrated similarity of the user's best face, 0–100.
    pub similarity: f32,
}

/// One face of `POST /v1/identify`: identification (1:N) of a transient face against a
/// collection's users.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentifyResult {
    /// The transient face ID identified, canonical UUID.
    pub face_id: String,
    /// Users at or above the threshold, most similar first, at most
    /// `maxNumOfCandidatesReturned` (default 10, 1–100); empty when none.
    pub candidates: Vec<Candidate>,
}

/// A face that `POST /v1/find-similar` found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SimilarFace {
    /// A transient face ID or a collection's face id, as searched among.
    pub face_id: String,
    /// Calibrated similarity to the query face, 0–100.
    pub similarity: f32,
}

/// `POST /v1/group`: transient faces grouped by person, connected components at the
/// match threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupResult {
    /// Groups of two or more faces (canonical ids), largest first; each face is in
    /// one group.
    pub groups: Vec<Vec<String>>,
    /// Faces similar to no other face given.
    pub messy_group: Vec<String>,
    /// The threshold that links two faces (the one for `match_fmr`) and its FMR.
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
    /// Only faces at the match threshold (the one for `match_fmr`): the same person.
    #[default]
    MatchPerson,
    /// The most similar faces, whatever their similarity.
    MatchFace,
}

/// Rekognition's quality bars for indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QualityFilter {
    /// No quality bar: every face found is indexed (up to `maxFaces`).
    None,
    /// Honnin's default bar: as `Medium`.
    #[default]
    Auto,
    /// Only unusable faces (too small, too turned, too uncertain) are left out.
    Low,
    /// Faces of `qualityForRecognition` `medium` or `high`.
    Medium,
    /// Faces of `qualityForRecognition` `high` only.
    High,
}
