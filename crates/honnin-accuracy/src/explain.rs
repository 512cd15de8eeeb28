//! Why pairs fail: each false non-match (a genuine pair below the threshold) and each
//! false match (an impostor pair at or above it) gets one cause, from the faces the
//! engine saw in the two images (`honnin eval pairs --explain SIM`; the CLI prints the
//! tables).
//!
//! Causes are checked in this order and the first that applies is reported (the limits
//! are coarse rules of thumb for a 112-px recognizer chip and a five-landmark pose fit
//! with errors of several degrees, see `honnin_engine::quality`; they are not fitted to
//! any set):
//!
//! | cause | rule (either image unless said) |
//! |---|---|
//! | `noTemplate` | no face found, or the face was refused (e.g. `ImageTooSmall`) |
//! | `strongPose` | \|yaw\| ≥ 40° or \|pitch\| ≥ 30° |
//! | `poseGap` | the two yaws differ by ≥ 30° |
//! | `smallFace` | face box under 64 px |
//! | `blur` | sharpness under 15 (of 100) |
//! | `weakDetection` | detector confidence under 80 (of 100): an odd face, occlusion or a landmark error |
//! | `darkOrBright` | brightness under 20 or over 90 |
//! | `severalFaces` | another face at least half as large in the image: the wrong face may have been chosen |
//! | `unexplained` | none of the above: age gap, expression, make-up, occlusion the detector did not flag, look-alikes, label errors |
//!
//! The first four rows are the engine's retake rule (`honnin_engine::NonMatchLimits`,
//! used by the service to answer "retake" instead of "different person"), so the
//! breakdown and the service cannot drift apart. [`RetakeSummary`] measures that rule:
//! how many genuine non-matches it turns into "retake" and how many impostor
//! non-matches it also asks to retake.

use std::collections::BTreeMap;
use std::path::PathBuf;

use honnin_engine::quality::{Pose, QualityInputs};
use honnin_engine::{DetectOptions, Engine, Face, NonMatchLimits, RetakeReason};
use rayon::prelude::*;
use serde::Serialize;

use crate::scoring::{self, Selection};
use crate::{load_image, Progress, Result};

/// What the engine saw in one image (the selected face).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// A face was found (and picked).
    pub has_face: bool,
    /// Face size, pixels (`Face::face_size`).
    pub size: f32,
    /// Yaw, degrees.
    pub yaw: f32,
    /// Pitch, degrees.
    pub pitch: f32,
    /// Sharpness 0–100 on the aligned chip.
    pub sharpness: f32,
    /// Brightness 0–100 on the aligned chip.
    pub brightness: f32,
    /// Detector confidence 0–100.
    pub confidence: f32,
    /// Other faces at least half the selected face's size.
    pub rivals: usize,
}

impl Facts {
    /// The engine's quality inputs for this face.
    pub fn inputs(&self) -> QualityInputs {
        QualityInputs {
            size: self.size,
            pose: Pose {
                yaw: self.yaw,
                pitch: self.pitch,
                roll: 0.0,
            },
            brightness: self.brightness,
            sharpness: self.sharpness,
            confidence: self.confidence,
        }
    }

    const NONE: Facts = Facts {
        has_face: false,
        size: 0.0,
        yaw: 0.0,
        pitch: 0.0,
        sharpness: 0.0,
        brightness: 0.0,
        confidence: 0.0,
        rivals: 0,
    };
}

/// The causes, in the order they are checked.
pub const CAUSES: [&str; 9] = [
    "noTemplate",
    "strongPose",
    "poseGap",
    "smallFace",
    "blur",
    "weakDetection",
    "darkOrBright",
    "severalFaces",
    "unexplained",
];

/// The first cause (of [`CAUSES`]) that applies to a pair; `template` tells whether
/// each side got a template in the scoring run.
pub fn cause(a: &Facts, b: &Facts, template: (bool, bool)) -> &'static str {
    let both = [a, b];
    if !template.0 || !template.1 || !a.has_face || !b.has_face {
        return "noTemplate";
    }
    // The first four causes are the engine's retake rule (one source of truth).
    if let Some(r) = quality_reasons(a, b).first() {
        return match r {
            RetakeReason::ExtremePose => "strongPose",
            RetakeReason::PoseMismatch => "poseGap",
            RetakeReason::SmallBoundingBox => "smallFace",
            RetakeReason::LowSharpness => "blur",
        };
    }
    if both.iter().any(|f| f.confidence < 80.0) {
        "weakDetection"
    } else if both
        .iter()
        .any(|f| f.brightness < 20.0 || f.brightness > 90.0)
    {
        "darkOrBright"
    } else if both.iter().any(|f| f.rivals > 0) {
        "severalFaces"
    } else {
        "unexplained"
    }
}

/// The engine's quality reasons for a pair ([`NonMatchLimits`] at its defaults, as the
/// service uses them), whatever the score; empty when either image has no face.
pub fn quality_reasons(a: &Facts, b: &Facts) -> Vec<RetakeReason> {
    if !a.has_face || !b.has_face {
        return Vec::new();
    }
    NonMatchLimits::default().quality_reasons(&a.inputs(), &b.inputs())
}

/// What the retake rule does at one threshold: how many non-matches it turns from
/// "different person" into "retake", for genuine pairs (the gain) and impostor pairs
/// (the cost: an impostor is asked to try again rather than told no; none is accepted).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RetakeSummary {
    /// Genuine pairs.
    pub genuine_pairs: usize,
    /// Genuine pairs below the threshold (non-matches).
    pub genuine_below: usize,
    /// Genuine non-matches the rule turns into "retake".
    pub genuine_retake: usize,
    /// Impostor pairs.
    pub impostor_pairs: usize,
    /// Impostor pairs below the threshold.
    pub impostor_below: usize,
    /// Impostor non-matches the rule also asks to retake.
    pub impostor_retake: usize,
    /// Genuine pairs below the threshold with both templates (a pair without a
    /// template is answered with an error, not a decision).
    pub genuine_below_with_templates: usize,
    /// Genuine retakes by their first reason (`RetakeReason::as_str`).
    pub genuine_retake_by_reason: BTreeMap<&'static str, usize>,
}

impl RetakeSummary {
    /// Tallies pairs `(a, b, same, score)` against threshold `t`; pairs below `band`
    /// (the raw score of [`NonMatchLimits::min_similarity`]) are never a retake.
    pub fn tally(
        pairs: impl Iterator<Item = (usize, usize, bool, f32)>,
        t: f32,
        band: f32,
        facts: &[Facts],
        has_template: &[bool],
    ) -> Self {
        let mut s = RetakeSummary {
            genuine_pairs: 0,
            genuine_below: 0,
            genuine_retake: 0,
            impostor_pairs: 0,
            impostor_below: 0,
            impostor_retake: 0,
            genuine_below_with_templates: 0,
            genuine_retake_by_reason: BTreeMap::new(),
        };
        for (a, b, same, score) in pairs {
            let below = score < t;
            let templates = has_template[a] && has_template[b];
            let reasons = if below && templates && score >= band {
                quality_reasons(&facts[a], &facts[b])
            } else {
                Vec::new()
            };
            if same {
                s.genuine_pairs += 1;
                s.genuine_below += below as usize;
                s.genuine_below_with_templates += (below && templates) as usize;
                if let Some(r) = reasons.first() {
                    s.genuine_retake += 1;
                    *s.genuine_retake_by_reason.entry(r.as_str()).or_default() += 1;
                }
            } else {
                s.impostor_pairs += 1;
                s.impostor_below += below as usize;
                s.impostor_retake += (!reasons.is_empty()) as usize;
            }
        }
        s
    }
}

/// The facts of each image, computed in parallel (one detection per image, with the
/// relaxed retry of the scoring run); an image that fails has no face.
pub fn facts(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &DetectOptions,
    sel: Selection,
    progress: &dyn Progress,
) -> Vec<Facts> {
    let pb = progress.stage(paths.len() as u64, "explaining");
    let out = paths
        .par_iter()
        .map(|p| {
            let r = (|| -> Result<Facts> {
                let img = load_image(engine, p)?;
                // The same detection as the scoring run (with its relaxed retry).
                let (faces, _) = scoring::detect_with_retry(engine, &img, opts)?;
                let Some(i) = scoring::pick(&faces, img.width(), img.height(), sel) else {
                    return Ok(Facts::NONE);
                };
                let f: &Face = &faces[i];
                Ok(Facts {
                    has_face: true,
                    size: f.face_size,
                    yaw: f.pose.yaw,
                    pitch: f.pose.pitch,
                    sharpness: f.quality.sharpness,
                    brightness: f.quality.brightness,
                    confidence: f.confidence,
                    rivals: faces
                        .iter()
                        .enumerate()
                        .filter(|(k, g)| *k != i && g.face_size >= 0.5 * f.face_size)
                        .count(),
                })
            })();
            pb.inc();
            r.unwrap_or(Facts::NONE)
        })
        .collect();
    drop(pb);
    out
}

/// One failing pair.
pub struct Failure {
    /// Index of the first image.
    pub a: usize,
    /// Index of the second image.
    pub b: usize,
    /// The pair's fused score.
    pub score: f32,
    /// The identity the pair is counted for (genuine: the person; impostor: the first).
    pub identity: u32,
}

/// Failures by cause: pooled count, share of all failures, share of all pairs of the
/// kind (the cause's part of FNMR or FMR), identity-weighted part, and examples.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CauseRow {
    /// One of [`CAUSES`].
    pub cause: &'static str,
    /// Failing pairs with this cause.
    pub pairs: usize,
    /// Their share of all failing pairs, 0–1.
    pub share_of_failures: f64,
    /// Pooled: failing pairs with this cause / all pairs of the kind.
    pub rate_part: f64,
    /// Mean over identities of (this identity's failing pairs with this cause / its pairs).
    pub identity_weighted_rate_part: f64,
    /// Up to five failing pairs, `a ~ b (score)`.
    pub examples: Vec<String>,
}

/// Tallies `failures` by [`cause`]. `pairs_per_identity` counts every pair of the kind
/// (failing or not) per identity; `names` renders an image for the examples.
pub fn breakdown(
    failures: &[Failure],
    facts: &[Facts],
    has_template: &[bool],
    pairs_per_identity: &BTreeMap<u32, usize>,
    names: &dyn Fn(usize) -> String,
) -> Vec<CauseRow> {
    let total_pairs: usize = pairs_per_identity.values().sum();
    let identities = pairs_per_identity.len().max(1) as f64;
    // Per cause: failing pairs, failing pairs per identity, examples.
    type Tally = (usize, BTreeMap<u32, usize>, Vec<String>);
    let mut rows: BTreeMap<&'static str, Tally> = BTreeMap::new();
    for f in failures {
        let c = cause(
            &facts[f.a],
            &facts[f.b],
            (has_template[f.a], has_template[f.b]),
        );
        let e = rows.entry(c).or_default();
        e.0 += 1;
        *e.1.entry(f.identity).or_default() += 1;
        if e.2.len() < 5 {
            e.2.push(format!("{} ~ {} ({:.3})", names(f.a), names(f.b), f.score));
        }
    }
    CAUSES
        .iter()
        .filter_map(|&c| {
            let (n, by_id, examples) = rows.remove(c)?;
            let idw = by_id
                .iter()
                .map(|(id, k)| {
                    *k as f64 / pairs_per_identity.get(id).copied().unwrap_or(1).max(1) as f64
                })
                .sum::<f64>()
                / identities;
            Some(CauseRow {
                cause: c,
                pairs: n,
                share_of_failures: n as f64 / failures.len().max(1) as f64,
                rate_part: n as f64 / total_pairs.max(1) as f64,
                identity_weighted_rate_part: idw,
                examples,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(yaw: f32, size: f32) -> Facts {
        Facts {
            has_face: true,
            size,
            yaw,
            pitch: 0.0,
            sharpness: 60.0,
            brightness: 50.0,
            confidence: 99.0,
            rivals: 0,
        }
    }

    #[test]
    fn causes_are_checked_in_order() {
        let ok = face(0.0, 120.0);
        assert_eq!(cause(&ok, &ok, (true, true)), "unexplained");
        assert_eq!(cause(&ok, &ok, (true, false)), "noTemplate");
        assert_eq!(cause(&ok, &face(55.0, 40.0), (true, true)), "strongPose");
        assert_eq!(
            cause(&face(-20.0, 120.0), &face(15.0, 120.0), (true, true)),
            "poseGap"
        );
        assert_eq!(cause(&ok, &face(5.0, 40.0), (true, true)), "smallFace");
        let blurred = Facts {
            sharpness: 3.0,
            ..ok
        };
        assert_eq!(cause(&ok, &blurred, (true, true)), "blur");
        let crowded = Facts { rivals: 1, ..ok };
        assert_eq!(cause(&crowded, &ok, (true, true)), "severalFaces");
    }

    #[test]
    fn the_breakdown_adds_up_to_the_failure_rate() {
        let facts = vec![
            face(0.0, 120.0),
            face(0.0, 40.0),
            face(0.0, 120.0),
            face(0.0, 120.0),
        ];
        let has = vec![true, true, true, false];
        let failures = vec![
            Failure {
                a: 0,
                b: 1,
                score: 0.1,
                identity: 0,
            },
            Failure {
                a: 0,
                b: 2,
                score: 0.2,
                identity: 0,
            },
            Failure {
                a: 2,
                b: 3,
                score: -1.0,
                identity: 1,
            },
        ];
        let per_id: BTreeMap<u32, usize> = [(0, 10), (1, 2)].into_iter().collect();
        let rows = breakdown(&failures, &facts, &has, &per_id, &|i| format!("img{i}"));
        let total: f64 = rows.iter().map(|r| r.rate_part).sum();
        assert!((total - 3.0 / 12.0).abs() < 1e-12);
        let no_template = rows.iter().find(|r| r.cause == "noTemplate").unwrap();
        // Identity 1 lost 1 of its 2 pairs; identity 0 none to this cause: (0 + 0.5) / 2.
        assert!((no_template.identity_weighted_rate_part - 0.25).abs() < 1e-12);
        assert_eq!(rows.iter().map(|r| r.pairs).sum::<usize>(), 3);
    }
}
