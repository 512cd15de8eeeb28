//! Detection recall and precision against annotated boxes.

use serde::{Deserialize, Serialize};

use crate::datasets::GtBox;

fn iou(a: &GtBox, b: &GtBox) -> f32 {
    let l = a.left.max(b.left);
    let t = a.top.max(b.top);
    let r = (a.left + a.width).min(b.left + b.width);
    let btm = (a.top + a.height).min(b.top + b.height);
    let inter = (r - l).max(0.0) * (btm - t).max(0.0);
    let union = a.width * a.height + b.width * b.height - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Counts for one image or a whole set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DetectionCounts {
    /// Annotated (ground-truth) faces.
    pub annotated: usize,
    /// Faces the detector found.
    pub detected: usize,
    /// Annotated faces matched by a detection.
    pub matched: usize,
}

impl DetectionCounts {
    /// Adds another image's counts to these (to total a set).
    pub fn add(&mut self, o: DetectionCounts) {
        self.annotated += o.annotated;
        self.detected += o.detected;
        self.matched += o.matched;
    }
    /// Recall: matched / annotated, 0–1 (1 when nothing is annotated).
    pub fn recall(&self) -> f64 {
        if self.annotated == 0 {
            1.0
        } else {
            self.matched as f64 / self.annotated as f64
        }
    }
    /// Precision: matched / detected, 0–1 (1 when nothing was detected).
    pub fn precision(&self) -> f64 {
        if self.detected == 0 {
            1.0
        } else {
            self.matched as f64 / self.detected as f64
        }
    }
}

/// Greedy one-to-one matching, best IoU first; a pair counts when IoU ≥ `min_iou`.
pub fn match_boxes(truth: &[GtBox], found: &[GtBox], min_iou: f32) -> DetectionCounts {
    let mut cand: Vec<(f32, usize, usize)> = Vec::new();
    for (i, t) in truth.iter().enumerate() {
        for (j, f) in found.iter().enumerate() {
            let v = iou(t, f);
            if v >= min_iou {
                cand.push((v, i, j));
            }
        }
    }
    cand.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut used_t = vec![false; truth.len()];
    let mut used_f = vec![false; found.len()];
    let mut matched = 0;
    for (_, i, j) in cand {
        if !used_t[i] && !used_f[j] {
            used_t[i] = true;
            used_f[j] = true;
            matched += 1;
        }
    }
    DetectionCounts {
        annotated: truth.len(),
        detected: found.len(),
        matched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(l: f32, t: f32, s: f32) -> GtBox {
        GtBox {
            left: l,
            top: t,
            width: s,
            height: s,
        }
    }

    #[test]
    fn matches_one_to_one() {
        let truth = [b(0.0, 0.0, 10.0), b(100.0, 0.0, 10.0)];
        let found = [b(1.0, 1.0, 10.0), b(0.0, 1.0, 10.0), b(300.0, 0.0, 5.0)];
        let c = match_boxes(&truth, &found, 0.5);
        assert_eq!(
            c,
            DetectionCounts {
                annotated: 2,
                detected: 3,
                matched: 1
            }
        );
        assert_eq!(c.recall(), 0.5);
        assert!((c.precision() - 1.0 / 3.0).abs() < 1e-12);
    }
}
