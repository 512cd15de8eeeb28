//! Per-face attributes: head pose, brightness, sharpness and the overall
//! `qualityForRecognition` that gates enrolment.
//!
//! * **Pose** — a scaled-orthographic fit of a generic 3-D model of the five
//!   landmarks (eye centres, nose tip, mouth corners; the ArcFace template lifted
//!   into depth with the nose 15 units in front of the eyes and the mouth corners 2)
//!   to the detected landmarks. The 2×3 camera is solved by least squares, its rows
//!   are orthonormalised into a rotation and decomposed as `Rz(roll)·Ry(yaw)·Rx(pitch)`.
//!   Yaw > 0: the face turns toward the image's right (the subject looks to their
//!   left); pitch > 0: the face tilts up; roll > 0: the eye on the image's right is
//!   lower than the eye on the image's left. Five landmarks carry limited depth
//!   information, so expect errors of several degrees; the gates below are coarse.
//! * **Brightness** — mean luma (BT.601) of the inner face of the aligned chip,
//!   scaled to 0–100.
//! * **Sharpness** — variance of the 4-neighbour Laplacian of the chip's luma on the
//!   inner face, mapped to 0–100 by `100·(1 − exp(−var / 300))`. The chip has a fixed
//!   size, so a small face upscaled into it scores low, as it should: fine detail that
//!   is not in the image cannot help recognition.
//! * **qualityForRecognition** — rules over face size, pose, brightness, sharpness
//!   and detector confidence (see [`QualityThresholds`]).

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::ARCFACE_TEMPLATE;
use crate::geometry::Point;

/// Head pose in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pose {
    /// Left–right turn in degrees, −90–90; > 0 when the face turns toward the image's right.
    pub yaw: f32,
    /// Up–down tilt in degrees, −90–90; > 0 when the face tilts up.
    pub pitch: f32,
    /// In-plane rotation in degrees, −180–180; > 0 when the eye on the image's right is lower.
    pub roll: f32,
}

/// Depth (toward the camera is negative) of each landmark in the generic model,
/// in ArcFace-template pixels.
const MODEL_DEPTH: [f32; 5] = [0.0, 0.0, -15.0, -2.0, -2.0];

fn model_points() -> [[f64; 3]; 5] {
    let mut m = [[0f64; 3]; 5];
    for i in 0..5 {
        m[i] = [
            ARCFACE_TEMPLATE[i].x as f64,
            ARCFACE_TEMPLATE[i].y as f64,
            MODEL_DEPTH[i] as f64,
        ];
    }
    m
}

fn inv3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-12 {
        return None;
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    let adj = [
        [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
        [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
        [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
    ];
    let mut out = [[0f64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = adj[i][j] / det;
        }
    }
    Some(out)
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}
fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}
fn norm(a: [f64; 3]) -> f64 {
    dot(a, a).sqrt()
}

/// Estimates head pose from five landmarks (see the module docs).
pub fn estimate_pose(landmarks: &[Point; 5]) -> Pose {
    let model = model_points();
    let mut mc = [0f64; 3];
    let mut ic = [0f64; 2];
    for i in 0..5 {
        for k in 0..3 {
            mc[k] += model[i][k] / 5.0;
        }
        ic[0] += landmarks[i].x as f64 / 5.0;
        ic[1] += landmarks[i].y as f64 / 5.0;
    }
    // Normal equations: M (2×3) = (Σ x Xᵀ)(Σ X Xᵀ)⁻¹ with centred points.
    let mut xtx = [[0f64; 3]; 3];
    let mut ytx = [[0f64; 3]; 2];
    for i in 0..5 {
        let x = [
            model[i][0] - mc[0],
            model[i][1] - mc[1],
            model[i][2] - mc[2],
        ];
        let y = [landmarks[i].x as f64 - ic[0], landmarks[i].y as f64 - ic[1]];
        for r in 0..3 {
            for c in 0..3 {
                xtx[r][c] += x[r] * x[c];
            }
        }
        for r in 0..2 {
            for c in 0..3 {
                ytx[r][c] += y[r] * x[c];
            }
        }
    }
    let Some(inv) = inv3(xtx) else {
        return Pose::default();
    };
    let mut m = [[0f64; 3]; 2];
    for r in 0..2 {
        for c in 0..3 {
            m[r][c] = (0..3).map(|k| ytx[r][k] * inv[k][c]).sum();
        }
    }
    let n1 = norm(m[0]);
    if n1 < 1e-9 {
        return Pose::default();
    }
    let r1 = m[0].map(|v| v / n1);
    let d = dot(m[1], r1);
    let r2u = [
        m[1][0] - d * r1[0],
        m[1][1] - d * r1[1],
        m[1][2] - d * r1[2],
    ];
    let n2 = norm(r2u);
    if n2 < 1e-9 {
        return Pose::default();
    }
    let r2 = r2u.map(|v| v / n2);
    let r3 = cross(r1, r2);
    // R = Rz(roll)·Ry(yaw)·Rx(pitch): R20 = −sin(yaw), R21 = cos(yaw)·sin(pitch),
    // R22 = cos(yaw)·cos(pitch), R10 = sin(roll)·cos(yaw), R00 = cos(roll)·cos(yaw).
    let yaw = (-r3[0]).clamp(-1.0, 1.0).asin();
    let pitch = r3[1].atan2(r3[2]);
    let roll = r2[0].atan2(r1[0]);
    let deg = |v: f64| {
        let d = v.to_degrees() as f32;
        if d.is_finite() {
            d
        } else {
            0.0
        }
    };
    // Sign conventions documented above: a face turned toward the image's right has
    // its nose right of the eye midpoint, and a face tilted up has its nose moved up
    // toward the eyes; this fit (y down, z into the scene) reports both as negative
    // rotations, so both are flipped.
    Pose {
        yaw: -deg(yaw),
        pitch: -deg(pitch),
        roll: deg(roll),
    }
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

/// The inner-face region of a 112×112 chip: between the eyebrows' outer ends and the chin.
const INNER: (u32, u32, u32, u32) = (24, 32, 88, 104); // x0, y0, x1, y1

/// Mean luma of the inner face, 0–100.
pub fn brightness(chip: &RgbImage) -> f32 {
    let (x0, y0, x1, y1) = INNER;
    let mut sum = 0f64;
    let mut n = 0u32;
    for y in y0..y1.min(chip.height()) {
        for x in x0..x1.min(chip.width()) {
            sum += luma(chip.get_pixel(x, y)) as f64;
            n += 1;
        }
    }
    if n == 0 {
        return 0.0;
    }
    (sum / n as f64 / 255.0 * 100.0) as f32
}

/// Variance of the Laplacian of the inner face's luma, mapped to 0–100.
pub fn sharpness(chip: &RgbImage) -> f32 {
    let (x0, y0, x1, y1) = INNER;
    let x1 = x1.min(chip.width().saturating_sub(1));
    let y1 = y1.min(chip.height().saturating_sub(1));
    let mut vals = Vec::new();
    for y in y0.max(1)..y1 {
        for x in x0.max(1)..x1 {
            let c = luma(chip.get_pixel(x, y));
            let l = luma(chip.get_pixel(x - 1, y))
                + luma(chip.get_pixel(x + 1, y))
                + luma(chip.get_pixel(x, y - 1))
                + luma(chip.get_pixel(x, y + 1))
                - 4.0 * c;
            vals.push(l as f64);
        }
    }
    if vals.is_empty() {
        return 0.0;
    }
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
    (100.0 * (1.0 - (-var / 300.0).exp())) as f32
}

/// Overall fitness of a face for recognition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QualityLevel {
    /// Fails at least one `low_*` gate of [`QualityThresholds`]: not fit to enrol (serialised `low`).
    Low,
    /// Passes every `low_*` gate but not every `high_*` gate (serialised `medium`).
    Medium,
    /// Passes every `high_*` gate of [`QualityThresholds`] (serialised `high`).
    High,
}

impl QualityLevel {
    /// The lowercase wire name: `"low"`, `"medium"` or `"high"`.
    pub fn as_str(self) -> &'static str {
        match self {
            QualityLevel::Low => "low",
            QualityLevel::Medium => "medium",
            QualityLevel::High => "high",
        }
    }
}

/// The gates behind `qualityForRecognition`. A face is **low** if any `low_*` gate
/// fails, **high** if every `high_*` gate passes, **medium** otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QualityThresholds {
    /// Face size in pixels (the longer side of the box, [`QualityInputs::size`]) below
    /// which a face is low quality (default 40).
    pub low_min_size: f32,
    /// Largest |yaw| in degrees before a face is low quality (default 45).
    pub low_max_yaw: f32,
    /// Largest |pitch| in degrees before a face is low quality (default 35).
    pub low_max_pitch: f32,
    /// Brightness (0–100) below which a face is low quality (default 15).
    pub low_min_brightness: f32,
    /// Brightness (0–100) above which a face is low quality (default 95).
    pub low_max_brightness: f32,
    /// Sharpness (0–100) below which a face is low quality (default 10).
    pub low_min_sharpness: f32,
    /// Detector confidence (0–100) below which a face is low quality (default 60).
    pub low_min_confidence: f32,
    /// Smallest face size (longer side of the box) in pixels for high quality (default 100).
    pub high_min_size: f32,
    /// Largest |yaw| in degrees for high quality (default 20).
    pub high_max_yaw: f32,
    /// Largest |pitch| in degrees for high quality (default 20).
    pub high_max_pitch: f32,
    /// Smallest brightness (0–100) for high quality (default 25).
    pub high_min_brightness: f32,
    /// Largest brightness (0–100) for high quality (default 85).
    pub high_max_brightness: f32,
    /// Smallest sharpness (0–100) for high quality (default 35).
    pub high_min_sharpness: f32,
    /// Smallest detector confidence (0–100) for high quality (default 85).
    pub high_min_confidence: f32,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        Self {
            low_min_size: 40.0,
            low_max_yaw: 45.0,
            low_max_pitch: 35.0,
            low_min_brightness: 15.0,
            low_max_brightness: 95.0,
            low_min_sharpness: 10.0,
            low_min_confidence: 60.0,
            high_min_size: 100.0,
            high_max_yaw: 20.0,
            high_max_pitch: 20.0,
            high_min_brightness: 25.0,
            high_max_brightness: 85.0,
            high_min_sharpness: 35.0,
            high_min_confidence: 85.0,
        }
    }
}

/// Inputs of the quality rules for one face.
#[derive(Debug, Clone, Copy)]
pub struct QualityInputs {
    /// Face size: the longer side of the face box, in pixels.
    pub size: f32,
    /// Head pose in degrees.
    pub pose: Pose,
    /// Mean luma of the inner face, 0–100.
    pub brightness: f32,
    /// Laplacian-variance sharpness of the inner face, 0–100.
    pub sharpness: f32,
    /// Detector confidence, 0–100.
    pub confidence: f32,
}

/// The lowest bar of indexing (`qualityFilter: LOW`): a face below it is unusable at
/// any quality level — smaller than 20 px (half the detector's default smallest face,
/// 40 px), turned past 70° yaw or 55° pitch (beyond what the five-point alignment
/// undoes), or a detection confidence under 50 (0–100). honnin's own choice, not
/// calibrated; the stricter levels are [`QualityThresholds`].
pub const UNUSABLE: UnusableLimits = UnusableLimits {
    min_size: 20.0,
    max_yaw: 70.0,
    max_pitch: 55.0,
    min_confidence: 50.0,
};

/// Limits below which a face is unusable (see [`UNUSABLE`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnusableLimits {
    /// Smallest face size (the longer side of its box), pixels.
    pub min_size: f32,
    /// Largest |yaw|, degrees.
    pub max_yaw: f32,
    /// Largest |pitch|, degrees.
    pub max_pitch: f32,
    /// Smallest detection confidence, 0–100.
    pub min_confidence: f32,
}

impl UnusableLimits {
    /// Why `q` is unusable (empty when it is usable), in the order size, pose, confidence.
    pub fn reasons(&self, q: &QualityInputs) -> Vec<QualityReason> {
        let mut r = Vec::new();
        if q.size < self.min_size {
            r.push(QualityReason::SmallBoundingBox);
        }
        if q.pose.yaw.abs() > self.max_yaw || q.pose.pitch.abs() > self.max_pitch {
            r.push(QualityReason::ExtremePose);
        }
        if q.confidence < self.min_confidence {
            r.push(QualityReason::LowConfidence);
        }
        r
    }
}

/// Why a face falls short of a quality level (Rekognition's `UnindexedFaces` reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum QualityReason {
    /// The face is smaller than the level's minimum size (`SMALL_BOUNDING_BOX`).
    SmallBoundingBox,
    /// |yaw| or |pitch| exceeds the level's limit (`EXTREME_POSE`).
    ExtremePose,
    /// Brightness is outside the level's range, too dark or too bright (`LOW_BRIGHTNESS`).
    LowBrightness,
    /// Sharpness is below the level's minimum (`LOW_SHARPNESS`).
    LowSharpness,
    /// Detector confidence is below the level's minimum (`LOW_CONFIDENCE`).
    LowConfidence,
}

impl QualityThresholds {
    /// The gates of `level` that `q` fails (empty when it reaches the level; `Low` has none).
    pub fn shortfalls(&self, q: &QualityInputs, level: QualityLevel) -> Vec<QualityReason> {
        let (size, yaw, pitch, bmin, bmax, sharp, conf) = match level {
            QualityLevel::Low => return Vec::new(),
            QualityLevel::Medium => (
                self.low_min_size,
                self.low_max_yaw,
                self.low_max_pitch,
                self.low_min_brightness,
                self.low_max_brightness,
                self.low_min_sharpness,
                self.low_min_confidence,
            ),
            QualityLevel::High => (
                self.high_min_size,
                self.high_max_yaw,
                self.high_max_pitch,
                self.high_min_brightness,
                self.high_max_brightness,
                self.high_min_sharpness,
                self.high_min_confidence,
            ),
        };
        let mut r = Vec::new();
        if q.size < size {
            r.push(QualityReason::SmallBoundingBox);
        }
        if q.pose.yaw.abs() > yaw || q.pose.pitch.abs() > pitch {
            r.push(QualityReason::ExtremePose);
        }
        if q.brightness < bmin || q.brightness > bmax {
            r.push(QualityReason::LowBrightness);
        }
        if q.sharpness < sharp {
            r.push(QualityReason::LowSharpness);
        }
        if q.confidence < conf {
            r.push(QualityReason::LowConfidence);
        }
        r
    }

    /// The `qualityForRecognition` level of `q`: [`QualityLevel::Low`] if any `low_*` gate
    /// fails, [`QualityLevel::High`] if every `high_*` gate passes, else `Medium`.
    pub fn classify(&self, q: &QualityInputs) -> QualityLevel {
        let low = q.size < self.low_min_size
            || q.pose.yaw.abs() > self.low_max_yaw
            || q.pose.pitch.abs() > self.low_max_pitch
            || q.brightness < self.low_min_brightness
            || q.brightness > self.low_max_brightness
            || q.sharpness < self.low_min_sharpness
            || q.confidence < self.low_min_confidence;
        if low {
            return QualityLevel::Low;
        }
        let high = q.size >= self.high_min_size
            && q.pose.yaw.abs() <= self.high_max_yaw
            && q.pose.pitch.abs() <= self.high_max_pitch
            && q.brightness >= self.high_min_brightness
            && q.brightness <= self.high_max_brightness
            && q.sharpness >= self.high_min_sharpness
            && q.confidence >= self.high_min_confidence;
        if high {
            QualityLevel::High
        } else {
            QualityLevel::Medium
        }
    }
}

/// Why a comparison that fell below its threshold is not reliable evidence of two
/// different people: the faces, not the identities, may be what differs. A non-match
/// with one of these is answered "retake" (compare, search) or `needs_review`
/// (identity verification) instead of a confident "different person".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RetakeReason {
    /// A face turned or tilted far from frontal (|yaw| or |pitch| beyond the limit).
    ExtremePose,
    /// The two faces are seen from directions far apart (yaw gap beyond the limit).
    PoseMismatch,
    /// A face smaller than the limit: too few pixels for the 112-px recognizer chip.
    SmallBoundingBox,
    /// A blurred face (sharpness below the limit).
    LowSharpness,
}

impl RetakeReason {
    /// The wire spelling (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            RetakeReason::ExtremePose => "EXTREME_POSE",
            RetakeReason::PoseMismatch => "POSE_MISMATCH",
            RetakeReason::SmallBoundingBox => "SMALL_BOUNDING_BOX",
            RetakeReason::LowSharpness => "LOW_SHARPNESS",
        }
    }
}

/// The limits of [`NonMatchLimits::retake_reasons`]. The defaults are the coarse
/// rules of thumb `honnin eval pairs --explain` uses to attribute failures (a 112-px
/// chip; a five-landmark pose fit with errors of several degrees); they were not
/// fitted to any set. What they cost and gain is measured by `honnin eval pairs
/// --retake` (see models/MODELS.md, "Quality-aware decisions").
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct NonMatchLimits {
    /// |yaw| at or beyond which a face is [`RetakeReason::ExtremePose`], degrees (40).
    pub max_yaw: f32,
    /// |pitch| at or beyond which a face is [`RetakeReason::ExtremePose`], degrees (30).
    pub max_pitch: f32,
    /// Yaw difference at or beyond which a pair is [`RetakeReason::PoseMismatch`],
    /// degrees (30).
    pub max_yaw_gap: f32,
    /// Face size (longer side of the box) below which a face is
    /// [`RetakeReason::SmallBoundingBox`], pixels (64).
    pub min_size: f32,
    /// Sharpness below which a face is [`RetakeReason::LowSharpness`], 0–100 (15).
    pub min_sharpness: f32,
    /// Similarity (0–100) below which a non-match stays "different person" whatever the
    /// faces' quality (40, the threshold for FMR 1e-2). Impostor pairs score below it
    /// 99 % of the time, so at most about 1 % of different-person comparisons can be sent
    /// to retake, while the genuine pairs that poor pose, size or blur push under the
    /// decision threshold mostly stay above it (measured: models/MODELS.md,
    /// "Quality-aware decisions").
    pub min_similarity: f32,
}

impl Default for NonMatchLimits {
    fn default() -> Self {
        Self {
            max_yaw: 40.0,
            max_pitch: 30.0,
            max_yaw_gap: 30.0,
            min_size: 64.0,
            min_sharpness: 15.0,
            min_similarity: 40.0,
        }
    }
}

impl NonMatchLimits {
    /// Why a non-match at `similarity` (0–100, below the caller's threshold) between faces
    /// `a` and `b` is not reliable (empty: it is): [`Self::quality_reasons`], unless the
    /// similarity is below [`Self::min_similarity`].
    pub fn retake_reasons(
        &self,
        similarity: f32,
        a: &QualityInputs,
        b: &QualityInputs,
    ) -> Vec<RetakeReason> {
        if similarity < self.min_similarity {
            return Vec::new();
        }
        self.quality_reasons(a, b)
    }

    /// What in faces `a` and `b` can make a comparison fail for the same person, whatever
    /// the score. Each reason appears once, in the order of [`RetakeReason`].
    pub fn quality_reasons(&self, a: &QualityInputs, b: &QualityInputs) -> Vec<RetakeReason> {
        let both = [a, b];
        let mut r = Vec::new();
        if both
            .iter()
            .any(|f| f.pose.yaw.abs() >= self.max_yaw || f.pose.pitch.abs() >= self.max_pitch)
        {
            r.push(RetakeReason::ExtremePose);
        }
        if (a.pose.yaw - b.pose.yaw).abs() >= self.max_yaw_gap {
            r.push(RetakeReason::PoseMismatch);
        }
        if both.iter().any(|f| f.size < self.min_size) {
            r.push(RetakeReason::SmallBoundingBox);
        }
        if both.iter().any(|f| f.sharpness < self.min_sharpness) {
            r.push(RetakeReason::LowSharpness);
        }
        r
    }

    /// [`Self::retake_reasons`] with one face alone (extreme pose, small, blurred), for
    /// a comparison whose other side is known to be frontal and sharp (a liveness
    /// session's face).
    pub fn single_face_reasons(&self, similarity: f32, a: &QualityInputs) -> Vec<RetakeReason> {
        self.retake_reasons(similarity, a, a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Projects the model rotated by yaw/pitch/roll (R = Rz·Ry·Rx) orthographically.
    fn project(yaw: f64, pitch: f64, roll: f64) -> [Point; 5] {
        let (cy, sy) = (yaw.to_radians().cos(), yaw.to_radians().sin());
        let (cp, sp) = (pitch.to_radians().cos(), pitch.to_radians().sin());
        let (cr, sr) = (roll.to_radians().cos(), roll.to_radians().sin());
        let rx = [[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]];
        let ry = [[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]];
        let rz = [[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]];
        let mul = |a: [[f64; 3]; 3], b: [[f64; 3]; 3]| {
            let mut o = [[0f64; 3]; 3];
            for i in 0..3 {
                for j in 0..3 {
                    o[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
                }
            }
            o
        };
        let r = mul(rz, mul(ry, rx));
        let m = model_points();
        let mut out = [Point::default(); 5];
        for i in 0..5 {
            let p = m[i];
            out[i] = Point::new(
                (3.0 * (r[0][0] * p[0] + r[0][1] * p[1] + r[0][2] * p[2]) + 100.0) as f32,
                (3.0 * (r[1][0] * p[0] + r[1][1] * p[1] + r[1][2] * p[2]) + 80.0) as f32,
            );
        }
        out
    }

    #[test]
    fn frontal_face_has_zero_pose() {
        let p = estimate_pose(&ARCFACE_TEMPLATE);
        assert!(
            p.yaw.abs() < 0.01 && p.pitch.abs() < 0.01 && p.roll.abs() < 0.01,
            "{p:?}"
        );
    }

    #[test]
    fn recovers_synthetic_rotations() {
        for (y, p, r) in [
            (20.0, 0.0, 0.0),
            (-30.0, 0.0, 0.0),
            (0.0, 15.0, 0.0),
            (0.0, 0.0, 25.0),
            (15.0, -10.0, 10.0),
        ] {
            let est = estimate_pose(&project(y, p, r));
            // Sign conventions: rotations about +y and +x are reported negated.
            assert!((est.yaw + y as f32).abs() < 0.5, "yaw {y} → {est:?}");
            assert!((est.pitch + p as f32).abs() < 0.5, "pitch {p} → {est:?}");
            assert!((est.roll - r as f32).abs() < 0.5, "roll {r} → {est:?}");
        }
    }

    #[test]
    fn signs_match_the_documented_directions() {
        // Nose shifted toward the image's right = face turned toward the image's right.
        let mut lm = ARCFACE_TEMPLATE;
        lm[2].x += 8.0;
        assert!(estimate_pose(&lm).yaw > 5.0, "{:?}", estimate_pose(&lm));
        // Nose moved up toward the eyes = face tilted up.
        let mut lm = ARCFACE_TEMPLATE;
        lm[2].y -= 6.0;
        assert!(estimate_pose(&lm).pitch > 3.0, "{:?}", estimate_pose(&lm));
        // The image-right eye (and mouth corner) lower = positive roll.
        let (c, s) = (10f32.to_radians().cos(), 10f32.to_radians().sin());
        let lm = ARCFACE_TEMPLATE.map(|p| Point::new(p.x * c - p.y * s, p.x * s + p.y * c));
        assert!(lm[1].y > lm[0].y);
        assert!(estimate_pose(&lm).roll > 5.0, "{:?}", estimate_pose(&lm));
    }

    #[test]
    fn brightness_and_sharpness_respond_to_the_image() {
        let dark = RgbImage::from_pixel(112, 112, image::Rgb([20, 20, 20]));
        let bright = RgbImage::from_pixel(112, 112, image::Rgb([230, 230, 230]));
        assert!(brightness(&dark) < 10.0 && brightness(&bright) > 85.0);
        assert_eq!(sharpness(&dark), 0.0);
        let checker = RgbImage::from_fn(112, 112, |x, y| {
            if (x / 2 + y / 2) % 2 == 0 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        assert!(sharpness(&checker) > 99.0);
    }

    #[test]
    fn quality_rules() {
        let t = QualityThresholds::default();
        let good = QualityInputs {
            size: 150.0,
            pose: Pose::default(),
            brightness: 50.0,
            sharpness: 60.0,
            confidence: 99.0,
        };
        assert_eq!(t.classify(&good), QualityLevel::High);
        assert_eq!(
            t.classify(&QualityInputs { size: 60.0, ..good }),
            QualityLevel::Medium
        );
        assert_eq!(
            t.classify(&QualityInputs { size: 30.0, ..good }),
            QualityLevel::Low
        );
        let turned = QualityInputs {
            pose: Pose {
                yaw: 60.0,
                ..Pose::default()
            },
            ..good
        };
        assert_eq!(t.classify(&turned), QualityLevel::Low);
        assert_eq!(
            t.classify(&QualityInputs {
                brightness: 5.0,
                ..good
            }),
            QualityLevel::Low
        );
    }

    fn inputs(yaw: f32, size: f32, sharpness: f32) -> QualityInputs {
        QualityInputs {
            size,
            pose: Pose {
                yaw,
                pitch: 0.0,
                roll: 0.0,
            },
            brightness: 50.0,
            sharpness,
            confidence: 99.0,
        }
    }

    #[test]
    fn a_good_pair_has_no_retake_reason() {
        let l = NonMatchLimits::default();
        assert!(l
            .retake_reasons(55.0, &inputs(5.0, 120.0, 60.0), &inputs(-10.0, 150.0, 40.0))
            .is_empty());
    }

    #[test]
    fn each_limit_gives_its_reason_once() {
        let l = NonMatchLimits::default();
        let good = inputs(0.0, 120.0, 60.0);
        assert_eq!(
            l.retake_reasons(55.0, &good, &inputs(-45.0, 120.0, 60.0)),
            vec![RetakeReason::ExtremePose, RetakeReason::PoseMismatch]
        );
        assert_eq!(
            l.retake_reasons(
                55.0,
                &inputs(-16.0, 120.0, 60.0),
                &inputs(16.0, 120.0, 60.0)
            ),
            vec![RetakeReason::PoseMismatch]
        );
        assert_eq!(
            l.retake_reasons(55.0, &inputs(0.0, 50.0, 10.0), &inputs(0.0, 40.0, 5.0)),
            vec![RetakeReason::SmallBoundingBox, RetakeReason::LowSharpness]
        );
        let mut tilted = good;
        tilted.pose.pitch = -31.0;
        assert_eq!(
            l.retake_reasons(55.0, &tilted, &good),
            vec![RetakeReason::ExtremePose]
        );
    }

    #[test]
    fn a_very_low_similarity_stays_a_non_match_whatever_the_quality() {
        let l = NonMatchLimits::default();
        let (profile, tiny) = (inputs(-60.0, 120.0, 60.0), inputs(0.0, 30.0, 5.0));
        assert!(l.retake_reasons(39.9, &profile, &tiny).is_empty());
        assert!(!l.retake_reasons(40.0, &profile, &tiny).is_empty());
        assert_eq!(l.quality_reasons(&profile, &tiny).len(), 4);
        assert!(l.single_face_reasons(20.0, &tiny).is_empty());
        assert_eq!(
            l.single_face_reasons(45.0, &tiny),
            vec![RetakeReason::SmallBoundingBox, RetakeReason::LowSharpness]
        );
    }
}
