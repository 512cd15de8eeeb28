//! The document step's rules: which face on an ID document is its portrait, when a
//! portrait is usable, and what is kept of it.

use honnin_engine::engine::RatioBox;
use honnin_engine::quality::{Pose, QualityInputs, QualityLevel};
use honnin_engine::{NonMatchLimits, RetakeReason};
use serde::{Deserialize, Serialize};

use crate::config::verification::VerificationPolicy;
use crate::error::{CoreError, Result};

/// The portrait found on the document (what the document step kept, no biometrics).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentPortrait {
    /// The portrait's box as ratios 0–1 of the document image.
    pub bounding_box: RatioBox,
    /// Longer side of the face box, pixels.
    pub face_size_px: f32,
    /// Detector confidence, 0–100.
    pub confidence: f32,
    /// Quality level of the portrait (`low`, `medium`, `high`).
    pub quality_for_recognition: QualityLevel,
    /// Faces found on the document in all (the main portrait and smaller ghost images).
    pub faces_found: usize,
    /// When the document was received, RFC 3339 UTC.
    pub received_at: String,
    /// Accepted, but worth a better photo: `DocumentPortraitSmall` (below the policy's
    /// `smallDocumentFacePx`, where the false-non-match rate about doubles). A client
    /// may ask the user to retake the document photo closer before going on.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Head pose of the portrait, degrees (absent in records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose: Option<Pose>,
    /// Sharpness of the portrait, 0–100 (absent in records made before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sharpness: Option<f32>,
}

impl DocumentPortrait {
    /// Why a non-match at `similarity` against this portrait is not reliable (the live face of a
    /// liveness session is frontal and close by construction, so only the portrait's
    /// own pose, size and sharpness count). Empty for records without pose and
    /// sharpness.
    pub fn retake_reasons(&self, similarity: f32, limits: &NonMatchLimits) -> Vec<RetakeReason> {
        let (Some(pose), Some(sharpness)) = (self.pose, self.sharpness) else {
            return Vec::new();
        };
        let q = QualityInputs {
            size: self.face_size_px,
            pose,
            brightness: 50.0,
            sharpness,
            confidence: self.confidence,
        };
        limits.single_face_reasons(similarity, &q)
    }
}

/// The warnings of an accepted document portrait (see [`DocumentPortrait::warnings`]).
pub fn document_warnings(face_size_px: f32, policy: &VerificationPolicy) -> Vec<String> {
    let mut w = Vec::new();
    if face_size_px < policy.small_document_face_px {
        w.push("DocumentPortraitSmall".to_string());
    }
    w
}

pub use crate::config::verification::DOCUMENT_DETECT_MIN_FACE_PX;

/// Decodes a document image and finds its faces as the document step does (the
/// pipeline's `Detection::Document`), for evaluation tools:
/// first with `usual` options, then, if none was found, down to
/// [`DOCUMENT_DETECT_MIN_FACE_PX`].
pub fn document_faces(
    engine: &honnin_engine::Engine,
    image: &[u8],
    usual: honnin_engine::DetectOptions,
) -> Result<(honnin_engine::DecodedImage, Vec<honnin_engine::Face>)> {
    let img = engine
        .decode(image)
        .map_err(|e| CoreError::from_engine(e, "document"))?;
    let mut faces = engine
        .detect(&img, &usual)
        .map_err(|e| CoreError::from_engine(e, "document"))?;
    if faces.is_empty() && usual.min_face_size > DOCUMENT_DETECT_MIN_FACE_PX {
        let small = honnin_engine::DetectOptions {
            min_face_size: DOCUMENT_DETECT_MIN_FACE_PX,
            ..usual
        };
        faces = engine
            .detect(&img, &small)
            .map_err(|e| CoreError::from_engine(e, "document"))?;
    }
    Ok((img, faces))
}

/// The main portrait of an ID document among the faces found on it (largest first):
/// the largest face, provided no other face is nearly as large (a second person; the
/// ghost image printed beside the portrait is much smaller) and it is large and clear
/// enough to compare. Errors: NoFaceDetected, DocumentPortraitAmbiguous,
/// DocumentPortraitUnusable.
pub fn pick_document_portrait(
    faces: &[honnin_engine::Face],
    min_face_px: f32,
) -> Result<&honnin_engine::Face> {
    let Some(main) = faces.first() else {
        return Err(CoreError::NoFaceDetected(
            "the document (no portrait was found: photograph the photo page or the card's front, flat and in focus)".into(),
        ));
    };
    if let Some(second) = faces.get(1) {
        // A ghost image printed beside the portrait is much smaller; one of similar size
        // (`honnin_engine::geometry::SIMILAR_SIZE_AREA_RATIO`) is a second person.
        let (main_box, second_box) = (&main.bounding_box_pixels, &second.bounding_box_pixels);
        if second_box.similar_in_size_to(main_box) {
            let ratio = second_box.area() / main_box.area().max(1e-9);
            return Err(CoreError::DocumentPortraitAmbiguous(format!(
                "{} faces of similar size were found on the document (the second is {:.0} % of the first's area); send an image of the document alone",
                faces.len(),
                ratio * 100.0
            )));
        }
    }
    if main.face_size < min_face_px {
        return Err(CoreError::DocumentPortraitUnusable(format!(
            "the document portrait is {:.0} px; at least {min_face_px:.0} px is needed: photograph the document closer or at a higher resolution",
            main.face_size
        )));
    }
    if main.quality_for_recognition < QualityLevel::Low {
        return Err(CoreError::DocumentPortraitUnusable(
            "the document portrait is too blurred, dark or turned to compare".into(),
        ));
    }
    Ok(main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::verification::PolicyOverrides;

    fn with(o: PolicyOverrides) -> Result<VerificationPolicy> {
        VerificationPolicy::default().with(&o)
    }

    #[test]
    fn a_small_accepted_portrait_carries_a_warning() {
        let p = VerificationPolicy::default();
        assert_eq!(document_warnings(69.9, &p), vec!["DocumentPortraitSmall"]);
        assert!(document_warnings(70.0, &p).is_empty());
        assert!(document_warnings(140.0, &p).is_empty());
        let p = VerificationPolicy {
            small_document_face_px: 0.0,
            ..p
        };
        assert!(document_warnings(41.0, &p).is_empty(), "0 switches it off");
        // A caller that prefers a retake raises the minimum instead.
        let o = |x| PolicyOverrides {
            min_document_face_px: Some(x),
            ..Default::default()
        };
        assert_eq!(with(o(70.0)).unwrap().min_document_face_px, 70.0);
        for bad in [19.9, 1000.5, f32::NAN] {
            let e = with(o(bad)).unwrap_err();
            assert!(e.to_string().contains("minDocumentFacePx"), "{e}");
        }
        // Records stored before the field existed still read.
        let old: DocumentPortrait = serde_json::from_str(
            r#"{"boundingBox":{"width":0.1,"height":0.2,"left":0.3,"top":0.3},"faceSizePx":81.0,
                "confidence":90.0,"qualityForRecognition":"high","facesFound":1,
                "receivedAt":"2026-11-22T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert!(old.warnings.is_empty());
        let policy: VerificationPolicy =
            serde_json::from_str(r#"{"documentMatchFmr":1e-4}"#).unwrap();
        assert_eq!(policy.small_document_face_px, 70.0);
    }
}
