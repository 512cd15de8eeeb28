//! Typed errors of the engine, each with a stable machine-readable code.
//!
//! The codes are part of honnin's public contract: the CLI prints them, the
//! service returns them in `{"code": ..., "message": ...}` bodies. Never rename one.

use thiserror::Error;

/// Why an input could not be turned into pixels.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ImageError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("the image is {size} bytes; the limit is {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not a supported image: expected JPEG, PNG, WebP or BMP{detail}")]
    UnsupportedFormat { detail: String },
    #[error("the image data is truncated or corrupt: {reason}")]
    Corrupt { reason: String },
    #[error(
        "the image is {width}x{height} ({megapixels:.1} megapixels); the limit is {limit_megapixels} megapixels"
    )]
    TooManyPixels {
        width: u32,
        height: u32,
        megapixels: f64,
        limit_megapixels: f64,
    },
    #[error("the image is {width}x{height}; each side must be at least {min_side} px")]
    TooSmall {
        width: u32,
        height: u32,
        min_side: u32,
    },
}

impl ImageError {
    /// Stable error code (see the module docs).
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Empty => "EmptyImage",
            ImageError::TooLarge { .. } => "ImageTooLarge",
            ImageError::UnsupportedFormat { .. } => "InvalidImageFormat",
            ImageError::Corrupt { .. } => "CorruptImage",
            ImageError::TooManyPixels { .. } => "ImageDimensionsTooLarge",
            ImageError::TooSmall { .. } => "ImageTooSmall",
        }
    }
}

/// A model file could not be used.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model file {path} is missing ({source}); run tools/build-models.sh or set HONNIN_MODEL_DIR")]
    Missing {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path} has SHA-256 {actual}, expected {expected}: the file was altered or is the wrong version; rebuild it with tools/build-models.sh")]
    ChecksumMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    #[error("model file {path} could not be loaded by tract: {reason}")]
    Load { path: String, reason: String },
    #[error("calibration {path} is unusable: {reason}")]
    Calibration { path: String, reason: String },
}

/// Every error the engine returns.
#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("no face was detected in the image")]
    NoFace,
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("inference failed: {0}")]
    Inference(String),
}

impl EngineError {
    /// Stable error code (see the module docs).
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Image(e) => e.code(),
            EngineError::NoFace => "NoFaceDetected",
            EngineError::InvalidParameter(_) => "InvalidParameter",
            EngineError::Model(_) => "ModelUnavailable",
            EngineError::Inference(_) => "InferenceFailed",
        }
    }

    /// True when the caller's input caused the error (as opposed to the installation).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            EngineError::Image(_) | EngineError::NoFace | EngineError::InvalidParameter(_)
        )
    }
}

pub(crate) fn inference(e: impl std::fmt::Display) -> EngineError {
    EngineError::Inference(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all: Vec<EngineError> = vec![
            ImageError::Empty.into(),
            ImageError::TooLarge { size: 1, limit: 0 }.into(),
            ImageError::UnsupportedFormat {
                detail: String::new(),
            }
            .into(),
            ImageError::Corrupt {
                reason: String::new(),
            }
            .into(),
            ImageError::TooManyPixels {
                width: 1,
                height: 1,
                megapixels: 1.0,
                limit_megapixels: 0.5,
            }
            .into(),
            ImageError::TooSmall {
                width: 1,
                height: 1,
                min_side: 80,
            }
            .into(),
            EngineError::NoFace,
            EngineError::InvalidParameter(String::new()),
            EngineError::Inference(String::new()),
        ];
        let mut codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        let n = codes.len();
        codes.dedup();
        assert_eq!(codes.len(), n, "error codes must be distinct: {codes:?}");
    }
}
