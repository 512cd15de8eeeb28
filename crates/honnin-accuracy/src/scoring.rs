//! Shared machinery of the recognition evaluations: templates for many images (in
//! parallel, with an optional [`cache`](crate::cache)), per-recognizer cosines, fused
//! scores for candidate fusion weights, and all-pairs accumulation.

use std::path::{Path, PathBuf};

use honnin_engine::template::dot;
use honnin_engine::{DecodedImage, DetectOptions, Engine, Face};
use honnin_eval::metrics::{GenuineScores, ScoreHistogram};
use rayon::prelude::*;

use crate::{cache, load_image, Progress, Result};

/// Which face of an image is "the" face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The face whose centre is nearest the image centre (LFW-style crops).
    Central,
    /// The largest face.
    Largest,
}

/// The index in `faces` (largest first, as the engine returns them) of the face `sel`
/// picks in a `w` × `h` image; `None` when there is no face.
pub fn pick(faces: &[Face], w: u32, h: u32, sel: Selection) -> Option<usize> {
    match sel {
        Selection::Largest => (!faces.is_empty()).then_some(0),
        Selection::Central => {
            let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
            (0..faces.len()).min_by(|&a, &b| {
                let d = |f: &Face| {
                    let c = f.bounding_box_pixels.center();
                    (c.x - cx).powi(2) + (c.y - cy).powi(2)
                };
                d(&faces[a]).total_cmp(&d(&faces[b]))
            })
        }
    }
}

/// The template vectors (concatenated recognizer parts) of a list of images; `None`
/// where no face was found or the image failed.
pub struct TemplateSet {
    /// The engine's template model (`Engine::template_model`).
    pub model: String,
    /// One entry per image, in the order of the paths given.
    pub vectors: Vec<Option<Vec<f32>>>,
    /// Images where the first detection pass found nothing and the relaxed retry did.
    pub relaxed_detections: usize,
}

impl TemplateSet {
    /// Images without a template.
    pub fn failures(&self) -> usize {
        self.vectors.iter().filter(|v| v.is_none()).count()
    }

    /// The images `idx` (in that order) as a set of their own (no relaxed count).
    pub fn subset(&self, idx: &[usize]) -> TemplateSet {
        TemplateSet {
            model: self.model.clone(),
            vectors: idx.iter().map(|&i| self.vectors[i].clone()).collect(),
            relaxed_detections: 0,
        }
    }
}

/// The faces of an image; when the first pass finds none, a second pass with score
/// threshold 0.3 and half the minimum face size (at least 8 px) (`true`: the retry
/// found them).
///
/// # Errors
/// The engine's detection error.
pub fn detect_with_retry(
    engine: &Engine,
    img: &DecodedImage,
    opts: &DetectOptions,
) -> Result<(Vec<Face>, bool)> {
    let faces = engine.detect(img, opts)?;
    if !faces.is_empty() {
        return Ok((faces, false));
    }
    let loose = DetectOptions {
        min_score: 0.3,
        min_face_size: (opts.min_face_size / 2.0).max(8.0),
        ..*opts
    };
    let faces = engine.detect(img, &loose)?;
    let found = !faces.is_empty();
    Ok((faces, found))
}

/// Computes one template per image (the selected face). A failed first pass is
/// retried with a lower score threshold and smaller minimum face, which is counted.
/// An image that fails is reported to `progress` and has no template.
pub fn compute(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &DetectOptions,
    sel: Selection,
    progress: &dyn Progress,
) -> TemplateSet {
    let pb = progress.stage(paths.len() as u64, "embedding");
    let relaxed = std::sync::atomic::AtomicUsize::new(0);
    let vectors = paths
        .par_iter()
        .map(|p| {
            let r = (|| -> Result<Option<Vec<f32>>> {
                let img = load_image(engine, p)?;
                let (faces, was_relaxed) = detect_with_retry(engine, &img, opts)?;
                if was_relaxed {
                    relaxed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                let Some(i) = pick(&faces, img.width(), img.height(), sel) else {
                    return Ok(None);
                };
                Ok(Some(
                    engine
                        .template_from_landmarks(&img, &faces[i].landmark_points())?
                        .vector,
                ))
            })();
            pb.inc();
            match r {
                Ok(v) => v,
                Err(e) => {
                    pb.failed(&e);
                    None
                }
            }
        })
        .collect();
    drop(pb);
    TemplateSet {
        model: engine.template_model().to_string(),
        vectors,
        relaxed_detections: relaxed.into_inner(),
    }
}

/// [`compute`], or the templates stored in `cache` when it holds templates of as many
/// images made the same way (then `cache` is written after computing).
///
/// # Errors
/// The cache file cannot be written.
pub fn load_or_compute(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &DetectOptions,
    sel: Selection,
    cache: Option<&Path>,
    progress: &dyn Progress,
) -> Result<TemplateSet> {
    let key = cache_key(engine, opts, sel);
    if let Some((vectors, relaxed)) = cache.and_then(|c| cache::load(c, &key, paths.len())) {
        progress.note("templates loaded from cache");
        return Ok(TemplateSet {
            model: engine.template_model().to_string(),
            vectors,
            relaxed_detections: relaxed,
        });
    }
    let set = compute(engine, paths, opts, sel, progress);
    if let Some(c) = cache {
        cache::save(c, &key, &set.vectors, set.relaxed_detections)?;
    }
    Ok(set)
}

/// What a cache's templates depend on: the template model, the detection options (a
/// change in how faces are found, e.g. `pad_large_faces`, changes the templates) and
/// the face selection. A cache made any other way is recomputed, not reused.
fn cache_key(engine: &Engine, opts: &DetectOptions, sel: Selection) -> String {
    format!("{} {opts:?} {sel:?}", engine.template_model())
}

/// Each recognizer part's dimension, in template order.
pub fn part_dims(engine: &Engine) -> Vec<usize> {
    engine
        .config()
        .recognizers
        .iter()
        .map(|k| k.dim())
        .collect()
}

/// The calibration's fusion weight of each recognizer part (1 where it names none),
/// normalised to sum 1: how the engine fuses scores.
pub fn calibrated_weights(engine: &Engine) -> Vec<f32> {
    let w: Vec<f32> = engine
        .config()
        .recognizers
        .iter()
        .map(|k| {
            engine
                .calibration()
                .and_then(|c| c.parts.iter().find(|p| p.recognizer == k.name()))
                .map(|p| p.weight)
                .unwrap_or(1.0)
        })
        .collect();
    normalise(&w)
}

/// How the engine fuses its recognizers' cosines: part dimensions and weights.
pub struct Fusion {
    /// Each part's dimension ([`part_dims`]).
    pub dims: Vec<usize>,
    /// Each part's weight, summing to 1.
    pub weights: Vec<f32>,
}

impl Fusion {
    /// The engine's parts with the calibration's weights ([`calibrated_weights`]).
    pub fn of(engine: &Engine) -> Fusion {
        Fusion {
            dims: part_dims(engine),
            weights: calibrated_weights(engine),
        }
    }

    /// The fused score of two template vectors; −1 (the worst score) when either is
    /// missing. `parts` is scratch space of one float per part.
    pub fn score(&self, a: Option<&[f32]>, b: Option<&[f32]>, parts: &mut [f32]) -> f32 {
        match (a, b) {
            (Some(a), Some(b)) => {
                part_cosines(a, b, &self.dims, parts);
                fuse(parts, &self.weights)
            }
            _ => -1.0,
        }
    }
}

/// Cosines of each recognizer part of two template vectors (`out`: one per part).
#[inline]
pub fn part_cosines(a: &[f32], b: &[f32], dims: &[usize], out: &mut [f32]) {
    let mut off = 0;
    for (k, &d) in dims.iter().enumerate() {
        out[k] = dot(&a[off..off + d], &b[off..off + d]);
        off += d;
    }
}

/// Fused score for normalised `weights` (one per part): the weighted sum of cosines,
/// in [−1, 1].
#[inline]
pub fn fuse(parts: &[f32], weights: &[f32]) -> f32 {
    parts.iter().zip(weights).map(|(c, w)| c * w).sum()
}

/// Normalises weights to sum 1.
pub fn normalise(w: &[f32]) -> Vec<f32> {
    let s: f32 = w.iter().sum();
    w.iter().map(|x| x / s).collect()
}

/// The result of scoring every pair of a template set under several fusion weightings
/// (one entry per weighting, in the order given).
pub struct AllPairs {
    /// Genuine scores with the pair's identity.
    pub genuine: Vec<GenuineScores>,
    /// Impostor score histograms.
    pub impostors: Vec<ScoreHistogram>,
    /// Genuine pairs where one side has no template (scored −1).
    pub skipped_genuine: u64,
    /// Impostor pairs where one side has no template (scored −1).
    pub skipped_impostor: u64,
}

/// Scores all pairs i < j; a pair is genuine when `identity[i] == identity[j]`.
/// Pairs with a missing template score −1 (the worst score), so detection failures
/// count against FNMR rather than disappearing; they are also counted as skipped.
pub fn all_pairs(
    set: &TemplateSet,
    identity: &[u32],
    dims: &[usize],
    weightings: &[Vec<f32>],
    progress: &dyn Progress,
) -> AllPairs {
    let n = set.vectors.len();
    let threads = rayon::current_num_threads().max(1);
    let pb = progress.stage(n as u64, "all pairs");
    let results: Vec<(Vec<GenuineScores>, Vec<ScoreHistogram>, u64, u64)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let pb = &pb;
                    s.spawn(move || {
                        let mut gen: Vec<GenuineScores> = weightings
                            .iter()
                            .map(|_| GenuineScores::default())
                            .collect();
                        let mut imp: Vec<ScoreHistogram> =
                            weightings.iter().map(|_| ScoreHistogram::new()).collect();
                        let (mut sg, mut si) = (0u64, 0u64);
                        let mut parts = vec![0f32; dims.len()];
                        // Interleave rows so every thread gets long and short rows alike.
                        let mut i = t;
                        while i < n {
                            let a = set.vectors[i].as_deref();
                            for j in i + 1..n {
                                let same = identity[i] == identity[j];
                                let b = set.vectors[j].as_deref();
                                match (a, b) {
                                    (Some(a), Some(b)) => {
                                        part_cosines(a, b, dims, &mut parts);
                                        for (k, w) in weightings.iter().enumerate() {
                                            let s = fuse(&parts, w);
                                            if same {
                                                gen[k].scores.push((s, identity[i]));
                                            } else {
                                                imp[k].add(s);
                                            }
                                        }
                                    }
                                    _ => {
                                        for k in 0..weightings.len() {
                                            if same {
                                                gen[k].scores.push((-1.0, identity[i]));
                                            } else {
                                                imp[k].add(-1.0);
                                            }
                                        }
                                        if same {
                                            sg += 1;
                                        } else {
                                            si += 1;
                                        }
                                    }
                                }
                            }
                            pb.inc();
                            i += threads;
                        }
                        (gen, imp, sg, si)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("scoring thread panicked"))
                .collect()
        });
    drop(pb);
    let mut out = AllPairs {
        genuine: weightings
            .iter()
            .map(|_| GenuineScores::default())
            .collect(),
        impostors: weightings.iter().map(|_| ScoreHistogram::new()).collect(),
        skipped_genuine: 0,
        skipped_impostor: 0,
    };
    for (g, i, sg, si) in results {
        for k in 0..weightings.len() {
            out.genuine[k].scores.extend_from_slice(&g[k].scores);
            out.impostors[k].merge(&i[k]);
        }
        out.skipped_genuine += sg;
        out.skipped_impostor += si;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoProgress;

    #[test]
    fn all_pairs_scores_missing_templates_as_the_worst_and_counts_them() {
        let set = TemplateSet {
            model: "m".into(),
            vectors: vec![Some(vec![1.0, 0.0]), Some(vec![1.0, 0.0]), None],
            relaxed_detections: 0,
        };
        let ap = all_pairs(&set, &[0, 0, 1], &[2], &[vec![1.0]], &NoProgress);
        assert_eq!(ap.genuine[0].scores, vec![(1.0, 0)]);
        assert_eq!(ap.impostors[0].total(), 2);
        assert_eq!((ap.skipped_genuine, ap.skipped_impostor), (0, 2));
    }

    #[test]
    fn fusion_weights_are_normalised_and_applied_per_part() {
        assert_eq!(normalise(&[1.0, 3.0]), vec![0.25, 0.75]);
        let mut parts = [0.0; 2];
        part_cosines(&[1.0, 0.0, 1.0], &[1.0, 0.0, -1.0], &[2, 1], &mut parts);
        assert_eq!(parts, [1.0, -1.0]);
        assert_eq!(fuse(&parts, &[0.25, 0.75]), -0.5);
    }
}
