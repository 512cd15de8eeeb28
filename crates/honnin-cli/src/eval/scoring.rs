//! Shared machinery of the recognition evaluations: templates for many images (in
//! parallel, with a progress bar and an optional cache), per-recognizer cosines,
//! fused scores for candidate fusion weights, and all-pairs accumulation.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use honnin_engine::template::dot;
use honnin_engine::{DetectOptions, Engine, Face};
use honnin_eval::metrics::{GenuineScores, ScoreHistogram};
use rayon::prelude::*;

use crate::common;

/// Which face of an image is "the" face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// The face whose centre is nearest the image centre (LFW-style crops).
    Central,
    /// The largest face.
    Largest,
}

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
    pub model: String,
    pub vectors: Vec<Option<Vec<f32>>>,
    /// Images where the first detection pass found nothing and the relaxed retry did.
    pub relaxed_detections: usize,
}

impl TemplateSet {
    pub fn failures(&self) -> usize {
        self.vectors.iter().filter(|v| v.is_none()).count()
    }
}

/// The faces of an image; when the first pass finds none, a second pass with a lower
/// score threshold and half the minimum face size (`true`: the retry found them).
pub fn detect_with_retry(
    engine: &Engine,
    img: &honnin_engine::DecodedImage,
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
pub fn compute(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &DetectOptions,
    sel: Selection,
) -> TemplateSet {
    let pb = common::progress(paths.len() as u64, "embedding");
    let relaxed = std::sync::atomic::AtomicUsize::new(0);
    let vectors = paths
        .par_iter()
        .map(|p| {
            let r = (|| -> Result<Option<Vec<f32>>> {
                let img = common::load_image(engine, p)?;
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
            pb.inc(1);
            match r {
                Ok(v) => v,
                Err(e) => {
                    pb.suspend(|| common::print_error(&e));
                    None
                }
            }
        })
        .collect();
    pb.finish_and_clear();
    TemplateSet {
        model: engine.template_model().to_string(),
        vectors,
        relaxed_detections: relaxed.into_inner(),
    }
}

/// [`compute`], or the templates stored in `cache` when it holds templates of as many
/// images made the same way (then `cache` is written after computing).
pub fn load_or_compute(
    engine: &Engine,
    paths: &[PathBuf],
    opts: &DetectOptions,
    sel: Selection,
    cache: Option<&Path>,
) -> Result<TemplateSet> {
    let key = cache_key(engine, opts, sel);
    if let Some(mut set) = cache.and_then(|c| load_cache(c, &key, paths.len())) {
        eprintln!("templates loaded from cache");
        set.model = engine.template_model().to_string();
        return Ok(set);
    }
    let set = compute(engine, paths, opts, sel);
    if let Some(c) = cache {
        save_cache(c, &key, &set)?;
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

const CACHE_MAGIC: &[u8; 8] = b"HNTCACH1";

/// Loads a template cache if it was stored under `key` and holds `n` images.
fn load_cache(path: &Path, key: &str, n: usize) -> Option<TemplateSet> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let mut r = &buf[..];
    let mut take = |k: usize| -> Option<&[u8]> {
        if r.len() < k {
            return None;
        }
        let (a, b) = r.split_at(k);
        r = b;
        Some(a)
    };
    if take(8)? != CACHE_MAGIC {
        return None;
    }
    let mlen = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    if std::str::from_utf8(take(mlen)?).ok()? != key {
        return None;
    }
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
    let relaxed = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
    if count != n {
        return None;
    }
    let mut vectors = Vec::with_capacity(n);
    for _ in 0..n {
        let d = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if d == 0 {
            vectors.push(None);
            continue;
        }
        let raw = take(4 * d)?;
        vectors.push(Some(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ));
    }
    Some(TemplateSet {
        model: key.to_string(),
        vectors,
        relaxed_detections: relaxed,
    })
}

fn save_cache(path: &Path, key: &str, set: &TemplateSet) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ok();
    }
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("{}", path.display()))?,
    );
    w.write_all(CACHE_MAGIC)?;
    w.write_all(&(key.len() as u32).to_le_bytes())?;
    w.write_all(key.as_bytes())?;
    w.write_all(&(set.vectors.len() as u64).to_le_bytes())?;
    w.write_all(&(set.relaxed_detections as u64).to_le_bytes())?;
    for v in &set.vectors {
        match v {
            None => w.write_all(&0u32.to_le_bytes())?,
            Some(v) => {
                w.write_all(&(v.len() as u32).to_le_bytes())?;
                for x in v {
                    w.write_all(&x.to_le_bytes())?;
                }
            }
        }
    }
    w.flush()?;
    Ok(())
}

/// Cosines of each recognizer part of two template vectors.
#[inline]
pub fn part_cosines(a: &[f32], b: &[f32], dims: &[usize], out: &mut [f32]) {
    let mut off = 0;
    for (k, &d) in dims.iter().enumerate() {
        out[k] = dot(&a[off..off + d], &b[off..off + d]);
        off += d;
    }
}

/// Fused score for normalised `weights` (one per part).
#[inline]
pub fn fuse(parts: &[f32], weights: &[f32]) -> f32 {
    parts.iter().zip(weights).map(|(c, w)| c * w).sum()
}

/// Normalises weights to sum 1.
pub fn normalise(w: &[f32]) -> Vec<f32> {
    let s: f32 = w.iter().sum();
    w.iter().map(|x| x / s).collect()
}

/// The result of scoring every pair of a template set under several fusion weightings.
pub struct AllPairs {
    pub genuine: Vec<GenuineScores>,
    pub impostors: Vec<ScoreHistogram>,
    /// Pairs skipped because one side has no template.
    pub skipped_genuine: u64,
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
) -> AllPairs {
    let n = set.vectors.len();
    let threads = rayon::current_num_threads().max(1);
    let pb = common::progress(n as u64, "all pairs");
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
                            pb.inc(1);
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
    pb.finish_and_clear();
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
