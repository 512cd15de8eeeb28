//! Face templates (embeddings) and their comparison.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// A face template: the concatenation of one L2-normalised embedding per recognizer
/// of the template model. Templates are comparable only within one `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Template {
    /// Identifier of the template space, e.g. `honnin-1:fr-feature+sface`.
    pub model: String,
    /// The per-recognizer embeddings concatenated in the model's recognizer order, each of
    /// unit L2 norm (so 640 floats for the default `fr_feature` + SFace: 512 + 128).
    pub vector: Vec<f32>,
}

const MAGIC: &[u8; 4] = b"HNT1";

impl Template {
    /// Compact binary form: magic, model-name length (u16 LE), name, f32 LE values.
    pub fn to_bytes(&self) -> Vec<u8> {
        let name = self.model.as_bytes();
        let mut out = Vec::with_capacity(6 + name.len() + 4 * self.vector.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        for v in &self.vector {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Parses the binary form written by [`Template::to_bytes`].
    ///
    /// Errors: [`EngineError::InvalidParameter`] when the magic is not `HNT1`, the data is
    /// truncated or its length is not a whole number of f32, or the model name is not UTF-8.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EngineError> {
        let bad = |m: &str| EngineError::InvalidParameter(format!("template bytes: {m}"));
        if bytes.len() < 6 || &bytes[..4] != MAGIC {
            return Err(bad("bad header"));
        }
        let n = u16::from_le_bytes([bytes[4], bytes[5]]) as usize;
        let rest = bytes.get(6..).ok_or_else(|| bad("truncated"))?;
        if rest.len() < n || (rest.len() - n) % 4 != 0 {
            return Err(bad("truncated"));
        }
        let model = std::str::from_utf8(&rest[..n]).map_err(|_| bad("model name is not UTF-8"))?;
        let vector = rest[n..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Template {
            model: model.to_string(),
            vector,
        })
    }
}

/// Cosine of two unit vectors (their dot product).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Four accumulators let the compiler vectorise without fast-math.
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_reject_garbage() {
        let t = Template {
            model: "honnin-1:x".into(),
            vector: vec![0.5, -0.25, 1.0],
        };
        assert_eq!(Template::from_bytes(&t.to_bytes()).unwrap(), t);
        assert!(Template::from_bytes(b"nope").is_err());
        let mut b = t.to_bytes();
        b.pop();
        assert!(Template::from_bytes(&b).is_err());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-5);
    }
}
