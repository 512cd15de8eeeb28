//! [`Engine`]: the typed entry point the CLI and the server embed.

use std::path::PathBuf;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::align::{align_face, CHIP_SIZE};
use crate::calibration::Calibration;
use crate::decode::{decode, DecodeLimits, DecodedImage};
use crate::detect::{CenterFace, DetectOptions, RawDetection};
use crate::error::{EngineError, ModelError};
use crate::geometry::{Point, Rect};
use crate::models::{self, ModelFile};
use crate::quality::{self, Pose, QualityInputs, QualityLevel, QualityThresholds};
use crate::recognize::{Recognizer, RecognizerKind};
use crate::runtime::Network;
use crate::template::{dot, Template};

/// Version prefix of every template model identifier. Bump it when preprocessing
/// changes in a way that makes old templates incomparable.
pub const TEMPLATE_VERSION: &str = "honnin-1";

/// How the engine is built. Every field has a documented default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EngineConfig {
    /// Where the model files are (default: see [`models::resolve_model_dir`]).
    pub model_dir: Option<PathBuf>,
    /// Recognizers whose scores are fused into one (default: the shipped default).
    pub recognizers: Vec<RecognizerKind>,
    /// Add the embedding of the mirrored face (2x embedding cost).
    pub flip_augment: bool,
    /// Refuse to start without a calibration table for the recognizer set (default true;
    /// `eval` turns it off to produce one).
    pub require_calibration: bool,
    /// Byte size, pixel count and minimum side accepted by [`Engine::decode`] (default
    /// 5 MiB, 40 MP, 80 px).
    pub decode_limits: DecodeLimits,
    /// The `qualityForRecognition` rules applied to every detected face.
    pub quality: QualityThresholds,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            model_dir: None,
            recognizers: DEFAULT_RECOGNIZERS.to_vec(),
            flip_augment: false,
            require_calibration: true,
            decode_limits: DecodeLimits::default(),
            quality: QualityThresholds::default(),
        }
    }
}

/// The recognizer set honnin ships as its default: `fr_feature` and SFace, fused 1 : 2.
/// Chosen on the calibration identities of LFW and CFP (lowest mean FNMR at similarity
/// 50, 60 and 70 among the weightings tried) and checked on the held-out identities
/// (models/MODELS.md, "Choosing the recognizer on unseen data").
pub const DEFAULT_RECOGNIZERS: &[RecognizerKind] =
    &[RecognizerKind::FrFeature, RecognizerKind::Sface];

/// A box as ratios of the image size (Rekognition's `BoundingBox`, in camelCase).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RatioBox {
    /// Box width as a ratio of the image width (0–1 for a box inside the image).
    pub width: f32,
    /// Box height as a ratio of the image height (0–1 for a box inside the image).
    pub height: f32,
    /// Left edge as a ratio of the image width; boxes are not clipped, so it is < 0 for
    /// a face cut by the left border.
    pub left: f32,
    /// Top edge as a ratio of the image height; < 0 for a face cut by the top border.
    pub top: f32,
}

/// A named landmark.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Landmark {
    /// Which landmark (serialised as `type`).
    #[serde(rename = "type")]
    pub kind: LandmarkKind,
    /// Horizontal position: a ratio of the image width (0–1) in [`Face::landmarks`],
    /// pixels from the left edge in [`Face::landmarks_pixels`].
    pub x: f32,
    /// Vertical position: a ratio of the image height (0–1) in [`Face::landmarks`],
    /// pixels from the top edge in [`Face::landmarks_pixels`].
    pub y: f32,
}

/// The five landmarks; "left" and "right" are as seen in the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LandmarkKind {
    /// Centre of the eye on the left of the image (the subject's right eye).
    EyeLeft,
    /// Centre of the eye on the right of the image (the subject's left eye).
    EyeRight,
    /// Tip of the nose.
    Nose,
    /// Mouth corner on the left of the image.
    MouthLeft,
    /// Mouth corner on the right of the image.
    MouthRight,
}

const LANDMARK_KINDS: [LandmarkKind; 5] = [
    LandmarkKind::EyeLeft,
    LandmarkKind::EyeRight,
    LandmarkKind::Nose,
    LandmarkKind::MouthLeft,
    LandmarkKind::MouthRight,
];

/// Image quality of the face region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaceQuality {
    /// Mean luma of the inner face, 0–100.
    pub brightness: f32,
    /// Fine detail of the inner face, 0–100.
    pub sharpness: f32,
}

/// A detected face with its attributes. Coordinates refer to the upright image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Face {
    /// The face box as ratios of the image (Rekognition-style).
    pub bounding_box: RatioBox,
    /// The face box in pixels.
    pub bounding_box_pixels: Rect,
    /// Landmarks as ratios of the image.
    pub landmarks: Vec<Landmark>,
    /// Landmarks in pixels.
    pub landmarks_pixels: Vec<Landmark>,
    /// Detector confidence, 0–100.
    pub confidence: f32,
    /// Head pose (yaw, pitch, roll in degrees) from the landmarks.
    pub pose: Pose,
    /// Brightness and sharpness of the aligned face, 0–100 each.
    pub quality: FaceQuality,
    /// Face size in pixels (the longer side of the box).
    pub face_size: f32,
    /// Whether the face is good enough to enrol or search with (`LOW`/`MEDIUM`/`HIGH`,
    /// from [`EngineConfig::quality`]).
    pub quality_for_recognition: QualityLevel,
}

impl Face {
    /// The inputs of the quality rules for this face.
    pub fn quality_inputs(&self) -> QualityInputs {
        QualityInputs {
            size: self.face_size,
            pose: self.pose,
            brightness: self.quality.brightness,
            sharpness: self.quality.sharpness,
            confidence: self.confidence,
        }
    }

    /// The five landmark points in pixels, in template order.
    pub fn landmark_points(&self) -> [Point; 5] {
        let mut p = [Point::default(); 5];
        for (i, l) in self.landmarks_pixels.iter().take(5).enumerate() {
            p[i] = Point::new(l.x, l.y);
        }
        p
    }
}

/// The outcome of comparing two templates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Comparison {
    /// Raw fused cosine score, −1–1.
    pub score: f32,
    /// Calibrated similarity, 0–100 (see [`crate::calibration`]).
    pub similarity: f32,
}

/// The face engine. Build it once and share it (`Arc<Engine>`): it is `Send + Sync`
/// and every method takes `&self`.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    detector: CenterFace,
    recognizers: Vec<(Recognizer, f32)>,
    calibration: Option<Calibration>,
    template_model: String,
}

/// The model file of a recognizer.
pub fn recognizer_file(kind: RecognizerKind) -> ModelFile {
    match kind {
        RecognizerKind::Mobilefacenet => models::MOBILEFACENET,
        RecognizerKind::FrFeature => models::FR_FEATURE,
        RecognizerKind::Sface => models::SFACE,
    }
}

/// The identifier of a template space (recognizers + augmentation).
pub fn template_model_id(recognizers: &[RecognizerKind], flip: bool) -> String {
    let names: Vec<&str> = recognizers.iter().map(|k| k.name()).collect();
    format!(
        "{TEMPLATE_VERSION}:{}{}",
        names.join("+"),
        if flip { "+flip" } else { "" }
    )
}

/// The calibration file for a template space.
pub fn calibration_file_name(recognizers: &[RecognizerKind], flip: bool) -> String {
    let names: Vec<&str> = recognizers.iter().map(|k| k.name()).collect();
    format!(
        "calibration-{}{}.json",
        names.join("+"),
        if flip { "-flip" } else { "" }
    )
}

fn ratio_box(r: &Rect, w: f32, h: f32) -> RatioBox {
    RatioBox {
        width: r.width / w,
        height: r.height / h,
        left: r.left / w,
        top: r.top / h,
    }
}

/// A detected face and the aligned 112×112 chip ([`CHIP_SIZE`]) its brightness and
/// sharpness were measured on; `None` when its landmarks are degenerate.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    /// The face as [`Engine::detect`] describes it.
    pub face: Face,
    /// The aligned chip, from which [`Engine::template_from_chip`] embeds.
    pub chip: Option<image::RgbImage>,
}

impl Engine {
    /// Loads and verifies every model, compiles the common shapes and loads the calibration.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        if config.recognizers.is_empty() {
            return Err(EngineError::InvalidParameter(
                "at least one recognizer is required".into(),
            ));
        }
        let dir = models::resolve_model_dir(config.model_dir.as_deref());
        let load = |spec: &ModelFile| -> Result<Network, EngineError> {
            let bytes = models::read_verified(&dir, spec)?;
            Ok(Network::from_onnx(spec.file, &bytes)?)
        };
        let detector = CenterFace::new(load(&models::CENTERFACE)?);
        let cal_path = dir.join(calibration_file_name(
            &config.recognizers,
            config.flip_augment,
        ));
        let calibration = match Calibration::load(&cal_path) {
            Ok(c) => Some(c),
            Err(e) if config.require_calibration => return Err(e.into()),
            Err(_) => None,
        };
        let template_model = template_model_id(&config.recognizers, config.flip_augment);
        if let Some(c) = &calibration {
            if c.template_model != template_model {
                return Err(ModelError::Calibration {
                    path: cal_path.display().to_string(),
                    reason: format!("it calibrates {}, not {template_model}", c.template_model),
                }
                .into());
            }
        }
        let mut recognizers = Vec::new();
        for &kind in &config.recognizers {
            let weight = calibration
                .as_ref()
                .and_then(|c| c.parts.iter().find(|p| p.recognizer == kind.name()))
                .map(|p| p.weight)
                .unwrap_or(1.0);
            let r = Recognizer::new(kind, load(&recognizer_file(kind))?);
            r.prepare()?;
            recognizers.push((r, weight));
        }
        Ok(Self {
            config,
            detector,
            recognizers,
            calibration,
            template_model,
        })
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Identifier of the templates this engine produces.
    pub fn template_model(&self) -> &str {
        &self.template_model
    }

    /// The loaded calibration table; `None` only when built with
    /// [`EngineConfig::require_calibration`] off and no table for the recognizer set.
    pub fn calibration(&self) -> Option<&Calibration> {
        self.calibration.as_ref()
    }

    /// The similarity threshold for a target false-match rate.
    pub fn threshold_for_fmr(&self, fmr: f64) -> f32 {
        crate::calibration::similarity_for_fmr(fmr)
    }

    /// Decodes image bytes under the configured limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<DecodedImage, EngineError> {
        Ok(decode(bytes, &self.config.decode_limits)?)
    }

    /// Reads and checks an image's header under the configured limits, decoding no
    /// pixel (see [`crate::decode::probe`]).
    pub fn probe(&self, bytes: &[u8]) -> Result<crate::ImageHeader, EngineError> {
        Ok(crate::decode::probe(bytes, &self.config.decode_limits)?)
    }

    /// Runs only the detector network (for benchmarks and evaluation).
    pub fn detect_raw(
        &self,
        img: &DecodedImage,
        opts: &DetectOptions,
    ) -> Result<Vec<RawDetection>, EngineError> {
        validate_options(opts)?;
        self.detector.detect(&img.rgb, opts)
    }

    /// Detects faces (largest first) with all attributes.
    pub fn detect(
        &self,
        img: &DecodedImage,
        opts: &DetectOptions,
    ) -> Result<Vec<Face>, EngineError> {
        Ok(self.detect_counted(img, opts)?.0)
    }

    /// [`Engine::detect`], and how many faces were found beyond `opts.max_faces` and
    /// left out (so a caller can say so instead of dropping them silently).
    pub fn detect_counted(
        &self,
        img: &DecodedImage,
        opts: &DetectOptions,
    ) -> Result<(Vec<Face>, usize), EngineError> {
        validate_options(opts)?;
        let (raw, omitted) = self.detector.detect_counted(&img.rgb, opts)?;
        Ok((raw.iter().map(|d| self.describe(img, d)).collect(), omitted))
    }

    /// [`Engine::detect_counted`], each face with the aligned chip its quality was
    /// measured on, so that its template needs no second alignment
    /// ([`Engine::template_from_chip`]). Same errors as `detect_counted`.
    pub fn detect_aligned(
        &self,
        img: &DecodedImage,
        opts: &DetectOptions,
    ) -> Result<(Vec<AlignedFace>, usize), EngineError> {
        validate_options(opts)?;
        let (raw, omitted) = self.detector.detect_counted(&img.rgb, opts)?;
        Ok((
            raw.iter().map(|d| self.describe_aligned(img, d)).collect(),
            omitted,
        ))
    }

    /// Computes the attributes of one raw detection.
    pub fn describe(&self, img: &DecodedImage, d: &RawDetection) -> Face {
        self.describe_aligned(img, d).face
    }

    /// [`Engine::describe`], keeping the aligned chip.
    fn describe_aligned(&self, img: &DecodedImage, d: &RawDetection) -> AlignedFace {
        let (w, h) = (img.width() as f32, img.height() as f32);
        let pose = quality::estimate_pose(&d.landmarks);
        let chip = align_face(&img.rgb, &d.landmarks);
        let (brightness, sharpness) = chip
            .as_ref()
            .map(|c| (quality::brightness(c), quality::sharpness(c)))
            .unwrap_or((0.0, 0.0));
        let confidence = (d.score * 100.0).clamp(0.0, 100.0);
        let size = d.rect.width.max(d.rect.height);
        let level = self.config.quality.classify(&QualityInputs {
            size,
            pose,
            brightness,
            sharpness,
            confidence,
        });
        let lm = |scale_x: f32, scale_y: f32| -> Vec<Landmark> {
            d.landmarks
                .iter()
                .zip(LANDMARK_KINDS)
                .map(|(p, kind)| Landmark {
                    kind,
                    x: p.x / scale_x,
                    y: p.y / scale_y,
                })
                .collect()
        };
        let face = Face {
            bounding_box: ratio_box(&d.rect, w, h),
            bounding_box_pixels: d.rect,
            landmarks: lm(w, h),
            landmarks_pixels: lm(1.0, 1.0),
            confidence,
            pose,
            quality: FaceQuality {
                brightness,
                sharpness,
            },
            face_size: size,
            quality_for_recognition: level,
        };
        AlignedFace { face, chip }
    }

    /// The template of one face from its landmarks.
    pub fn template_from_landmarks(
        &self,
        img: &DecodedImage,
        landmarks: &[Point; 5],
    ) -> Result<Template, EngineError> {
        let chip = align_face(&img.rgb, landmarks)
            .ok_or_else(|| EngineError::InvalidParameter("degenerate landmarks".into()))?;
        self.template_from_chip(&chip)
    }

    /// The template of an aligned 112×112 chip.
    pub fn template_from_chip(&self, chip: &image::RgbImage) -> Result<Template, EngineError> {
        if chip.dimensions() != (CHIP_SIZE, CHIP_SIZE) {
            return Err(EngineError::InvalidParameter(format!(
                "chip must be {CHIP_SIZE}x{CHIP_SIZE}"
            )));
        }
        // Sequential on purpose: running the two recognizers of one request in parallel
        // cut 2-thread throughput from 48.6 to 32 faces/s (measured with `honnin bench`).
        let mut vector = Vec::new();
        for (r, _) in &self.recognizers {
            vector.extend(r.embed(chip, self.config.flip_augment)?);
        }
        Ok(Template {
            model: self.template_model.clone(),
            vector,
        })
    }

    /// Templates of `faces` (as returned by [`Engine::detect`] on `img`).
    pub fn templates(
        &self,
        img: &DecodedImage,
        faces: &[Face],
    ) -> Result<Vec<Template>, EngineError> {
        faces
            .iter()
            .map(|f| self.template_from_landmarks(img, &f.landmark_points()))
            .collect()
    }

    /// Raw fused score of two templates, −1–1.
    pub fn score(&self, a: &Template, b: &Template) -> Result<f32, EngineError> {
        if a.model != self.template_model || b.model != self.template_model {
            return Err(EngineError::InvalidParameter(format!(
                "templates of model {} and {} cannot be compared by an engine of model {}",
                a.model, b.model, self.template_model
            )));
        }
        let mut off = 0;
        let mut total = 0f32;
        let mut wsum = 0f32;
        for (r, w) in &self.recognizers {
            let d = r.kind.dim();
            let (Some(x), Some(y)) = (a.vector.get(off..off + d), b.vector.get(off..off + d))
            else {
                return Err(EngineError::InvalidParameter(
                    "template vector has the wrong length".into(),
                ));
            };
            total += w * dot(x, y);
            wsum += w;
            off += d;
        }
        Ok(total / wsum)
    }

    /// Per-recognizer cosines (for fusion studies).
    pub fn part_scores(&self, a: &Template, b: &Template) -> Vec<f32> {
        let mut off = 0;
        let mut out = Vec::new();
        for (r, _) in &self.recognizers {
            let d = r.kind.dim();
            if let (Some(x), Some(y)) = (a.vector.get(off..off + d), b.vector.get(off..off + d)) {
                out.push(dot(x, y));
            }
            off += d;
        }
        out
    }

    /// Compares two templates: raw score and calibrated similarity.
    pub fn compare(&self, a: &Template, b: &Template) -> Result<Comparison, EngineError> {
        let score = self.score(a, b)?;
        let cal = self.calibration.as_ref().ok_or_else(|| {
            EngineError::Model(ModelError::Calibration {
                path: calibration_file_name(&self.config.recognizers, self.config.flip_augment),
                reason: "no calibration loaded; run `honnin eval lfw --write-calibration`".into(),
            })
        })?;
        Ok(Comparison {
            score,
            similarity: cal.similarity(score),
        })
    }

    /// [`Engine::detect`] over many images on the rayon pool (both cores by default).
    pub fn detect_batch(
        &self,
        images: &[DecodedImage],
        opts: &DetectOptions,
    ) -> Vec<Result<Vec<Face>, EngineError>> {
        images
            .par_iter()
            .map(|img| self.detect(img, opts))
            .collect()
    }

    /// Detects and computes templates for many images in parallel.
    pub fn detect_and_template_batch(
        &self,
        images: &[DecodedImage],
        opts: &DetectOptions,
    ) -> Vec<Result<Vec<(Face, Template)>, EngineError>> {
        images
            .par_iter()
            .map(|img| {
                let faces = self.detect(img, opts)?;
                let templates = self.templates(img, &faces)?;
                Ok(faces.into_iter().zip(templates).collect())
            })
            .collect()
    }

    /// [`Engine::templates`] over many (image, faces) pairs in parallel.
    pub fn templates_batch(
        &self,
        items: &[(&DecodedImage, &[Face])],
    ) -> Vec<Result<Vec<Template>, EngineError>> {
        items
            .par_iter()
            .map(|(img, faces)| self.templates(img, faces))
            .collect()
    }
}

fn validate_options(o: &DetectOptions) -> Result<(), EngineError> {
    if !(o.min_face_size.is_finite() && o.min_face_size >= 1.0) {
        return Err(EngineError::InvalidParameter(
            "minFaceSize must be at least 1 pixel".into(),
        ));
    }
    if o.max_faces == 0 || o.max_faces > 100 {
        return Err(EngineError::InvalidParameter(
            "maxFaces must be between 1 and 100".into(),
        ));
    }
    if !(o.min_score > 0.0 && o.min_score < 1.0) {
        return Err(EngineError::InvalidParameter(
            "minScore must be between 0 and 1".into(),
        ));
    }
    Ok(())
}
