//! Typed errors of the engine, each with a stable machine-readable code.
//!
//! The codes are part of honnin's public contract: the CLI prints them, the
//! service returns them in `{"code": ..., "message": ...}` bodies. Never rename one.

use thiserror::Error;

/// Why an input could not be turned into pixels.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum ImageError {
    /// The input has no bytes (code `EmptyImage`).
    #[error("the image is empty (0 bytes)")]
    Empty,
    /// The input is larger than the byte limit (default 5 MiB) (code `ImageTooLarge`).
    #[error("the image is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// The input's length in bytes.
        size: usize,
        /// The configured maximum ([`crate::decode::DecodeLimits::max_bytes`]), in bytes.
        limit: usize,
    },
    /// The format signature is not JPEG, PNG, WebP or BMP (code `InvalidImageFormat`).
    #[error("not a supported image: expected JPEG, PNG, WebP or BMP{detail}")]
    UnsupportedFormat {
        /// Appended to the message: `" (got Gif)"` when another format was recognised,
        /// empty when none was.
        detail: String,
    },
    /// The data is truncated (no JPEG EOI, PNG IEND, short WebP RIFF) or the decoder
    /// rejected it (code `CorruptImage`).
    #[error("the image data is truncated or corrupt: {reason}")]
    Corrupt {
        /// What is wrong, in words (the completeness check's or the decoder's message).
        reason: String,
    },
    /// The header's dimensions exceed the pixel limit (default 40 MP), found before any
    /// pixel is allocated, or the decoder hit its allocation limit (code
    /// `ImageDimensionsTooLarge`).
    #[error(
        "the image is {width}x{height} ({megapixels:.1} megapixels); the limit is {limit_megapixels} megapixels"
    )]
    TooManyPixels {
        /// Width in pixels, from the header.
        width: u32,
        /// Height in pixels, from the header.
        height: u32,
        /// width × height in millions of pixels.
        megapixels: f64,
        /// The configured limit ([`crate::decode::DecodeLimits::max_pixels`]) in millions of pixels.
        limit_megapixels: f64,
    },
    /// A side is shorter than the minimum (default 80 px) (code `ImageTooSmall`).
    #[error("the image is {width}x{height}; each side must be at least {min_side} px")]
    TooSmall {
        /// Width in pixels, from the header (before EXIF orientation).
        width: u32,
        /// Height in pixels, from the header (before EXIF orientation).
        height: u32,
        /// The minimum length of each side ([`crate::decode::DecodeLimits::min_side`]), in pixels.
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
    /// The model file could not be read (code `ModelUnavailable`).
    #[error("model file {path} is missing ({source}); run tools/build-models.sh or set HONNIN_MODEL_DIR")]
    Missing {
        /// The file's path as looked up.
        path: String,
        /// The I/O error from opening or reading the file.
        #[source]
        source: std::io::Error,
    },
    /// The file's SHA-256 differs from the compiled-in `models/SHA256SUMS` entry (code
    /// `ModelUnavailable`).
    #[error("model file {path} has SHA-256 {actual}, expected {expected}: the file was altered or is the wrong version; rebuild it with tools/build-models.sh")]
    ChecksumMismatch {
        /// The file's path.
        path: String,
        /// The SHA-256 from `models/SHA256SUMS`, lowercase hex.
        expected: String,
        /// The SHA-256 of the file on disk, lowercase hex.
        actual: String,
    },
    /// tract could not parse or optimise the network (code `ModelUnavailable`).
    #[error("model file {path} could not be loaded by tract: {reason}")]
    Load {
        /// The model file's path.
        path: String,
        /// tract's message.
        reason: String,
    },
    /// The calibration table is unreadable, malformed or inconsistent (code
    /// `ModelUnavailable`).
    #[error("calibration {path} is unusable: {reason}")]
    Calibration {
        /// The calibration file's path.
        path: String,
        /// What is wrong with it, in words.
        reason: String,
    },
}

/// Every error the engine returns.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The input could not be decoded or is outside the limits (a client error).
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No face was found where one is required (code `NoFaceDetected`; a client error).
    #[error("no face was detected in the image")]
    NoFace,
    /// A parameter is out of range or inconsistent; the text names it (a client error).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A model or calibration file is unusable (code `ModelUnavailable`; an installation error).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// tract failed while running a network; the text is its message (code `InferenceFailed`).
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
