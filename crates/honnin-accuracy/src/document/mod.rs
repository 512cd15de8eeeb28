//! Document ↔ selfie (`honnin eval document`): what the document-match threshold of
//! identity verification does when one side is an ID-document portrait.
//!
//! For every LFW person with two or more photos, the first photo becomes an ID
//! document ([`render`]: printed, small, under a guilloche, on a card, photographed
//! with glare and JPEG) and goes through the product's document step
//! (`honnin_core::verification::document_faces` and `pick_document_portrait`, the code
//! `PUT /v1/verifications/{id}/document` runs). Its template is compared with:
//! - every other photo of the same person (genuine: "document ↔ selfie"), and
//! - every photo of every other person (impostors).
//!
//! A document whose portrait is not found (or is refused as unusable) counts against
//! FNMR for all its genuine pairs. The same pairs with the undegraded first photo give
//! the selfie ↔ selfie baseline (`clean`), so the report shows what the document costs.
//! [`scores`] holds the per-condition tallies at the API's similarity thresholds.

pub mod render;
pub mod scores;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Instant;

use honnin_core::verification::{document_faces, pick_document_portrait, VerificationPolicy};
use honnin_engine::{DetectOptions, Engine, Face, NonMatchLimits};
use honnin_eval::datasets::{lfw_images, LfwImage};
use honnin_eval::metrics::{evaluate, PairReport};
use rayon::prelude::*;

use crate::scoring::{self, Fusion, Selection, TemplateSet};
use crate::{error_chain, load_image, Error, Progress, Result};
use render::{DocumentStyle, RenderParams};
use scores::{score, Scores};

/// Similarities reported as fixed thresholds (LFW FMR 1e-3, 1e-4, 1e-5).
pub const SIMILARITIES: [f32; 3] = [50.0, 60.0, 70.0];
/// FMR targets of each condition's operating points and DET markers.
pub const REPORT_FMRS: [f64; 4] = [1e-3, 1e-4, 1e-5, 1e-6];

/// One document: which image it was made from and whose it is.
pub struct Doc {
    /// Index of the source image in the selfie set.
    pub image: usize,
    /// The person's identity number.
    pub identity: u32,
    /// Face size on the source photo, pixels.
    pub face_px: f32,
}

/// The document step's result for one document.
pub enum Portrait {
    /// The portrait was found and embedded.
    Found {
        /// Its template vector.
        vector: Vec<f32>,
        /// Its face size, pixels (0 for the `clean` baseline).
        face_px: f32,
        /// The portrait alone makes a non-match unreliable (pose, size, blur:
        /// `DocumentPortrait::retake_reasons`), so the service's default policy
        /// answers a match below the review threshold `needs_review`
        /// (`LowFaceQuality`).
        retake: bool,
    },
    /// Not found or refused: `Code: message`.
    Refused(String),
}

/// A rendered document kept to look at.
pub struct Sample {
    /// The document's position in [`DocumentRun::docs`].
    pub index: usize,
    /// The JPEG.
    pub jpeg: Vec<u8>,
    /// What was drawn.
    pub params: RenderParams,
}

/// One condition: the clean baseline or a style.
pub struct Condition {
    /// `clean` or the style's name.
    pub name: String,
    /// What it is, in words.
    pub about: String,
    /// One per document.
    pub portraits: Vec<Portrait>,
    /// The first rendered documents.
    pub samples: Vec<Sample>,
    /// Its scores.
    pub scores: Scores,
    /// Its metrics at [`REPORT_FMRS`].
    pub report: PairReport,
}

/// What a document run is given.
pub struct DocumentSetup<'a> {
    /// The LFW image folder.
    pub img_root: &'a Path,
    /// Styles to render.
    pub styles: Vec<&'static DocumentStyle>,
    /// Only the first N people (by name) with two or more photos.
    pub max_people: Option<usize>,
    /// Template cache of the selfie side.
    pub cache: Option<&'a Path>,
    /// Keep the first N rendered documents of each style.
    pub samples: usize,
}

/// The result of [`run`].
pub struct DocumentRun {
    /// The selfie-side images.
    pub images: Vec<LfwImage>,
    /// Their templates.
    pub selfies: TemplateSet,
    /// The documents.
    pub docs: Vec<Doc>,
    /// Source photos left out because they have no face.
    pub sources_without_face: usize,
    /// Source photos left out because a second person is nearly as large (names).
    pub sources_with_two_people: Vec<String>,
    /// `clean`, then one per style.
    pub conditions: Vec<Condition>,
    /// The policy whose thresholds are measured (the default).
    pub policy: VerificationPolicy,
    /// Raw fused score of each of [`SIMILARITIES`].
    pub thresholds: Vec<f32>,
    /// Similarity of the default document-match threshold.
    pub default_similarity: f32,
    /// Similarity of the default review threshold.
    pub review_similarity: f32,
    /// Index in [`SIMILARITIES`] of the match threshold.
    pub k_match: usize,
    /// Index in [`SIMILARITIES`] of the review threshold.
    pub k_review: usize,
    /// Seconds: selfie templates, rendering, scoring.
    pub seconds: [f64; 3],
}

/// What the source photo of a document shows.
struct Source {
    /// The central face's size, if there is a face.
    face_px: Option<f32>,
    /// Another face with at least half the central face's area.
    second_person: bool,
}

fn source(engine: &Engine, path: &Path, detect: &DetectOptions) -> Result<Source> {
    let img = load_image(engine, path)?;
    let faces = engine.detect(&img, detect)?;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let d = |f: &Face| {
        let c = f.bounding_box_pixels.center();
        (c.x - w / 2.0).powi(2) + (c.y - h / 2.0).powi(2)
    };
    let Some(main) = faces.iter().min_by(|a, b| d(a).total_cmp(&d(b))) else {
        return Ok(Source {
            face_px: None,
            second_person: false,
        });
    };
    let second_person = faces.iter().filter(|f| !std::ptr::eq(*f, main)).any(|f| {
        f.bounding_box_pixels
            .similar_in_size_to(&main.bounding_box_pixels)
    });
    Ok(Source {
        face_px: Some(main.face_size),
        second_person,
    })
}

/// Renders every style's documents, runs the document step and scores every
/// condition against the selfie side. Needs a calibrated engine.
///
/// # Errors
/// No calibration, no LFW images, no usable person, unreadable source images, or
/// default thresholds outside [`SIMILARITIES`].
pub fn run(
    engine: &Engine,
    opts: &DetectOptions,
    setup: &DocumentSetup,
    progress: &dyn Progress,
) -> Result<DocumentRun> {
    let cal = engine
        .calibration()
        .ok_or_else(|| Error::Invalid("this evaluation needs the engine's calibration".into()))?;
    // Selfie side: all images, or those of the first N people with two or more.
    let all = lfw_images(setup.img_root)?;
    let mut by_person: BTreeMap<String, usize> = BTreeMap::new();
    for i in &all {
        *by_person.entry(i.person.clone()).or_default() += 1;
    }
    let chosen: HashSet<&str> = match setup.max_people {
        Some(n) => by_person
            .iter()
            .filter(|(_, &photos)| photos >= 2)
            .map(|(p, _)| p.as_str())
            .take(n)
            .collect(),
        None => by_person.keys().map(String::as_str).collect(),
    };
    let images: Vec<LfwImage> = all
        .iter()
        .filter(|i| chosen.contains(i.person.as_str()))
        .cloned()
        .collect();
    if images.is_empty() {
        return Err(Error::Invalid(format!(
            "no LFW images found under {}",
            setup.img_root.display()
        )));
    }
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    for i in &images {
        let n = ids.len() as u32;
        ids.entry(i.person.as_str()).or_insert(n);
    }
    let identity: Vec<u32> = images.iter().map(|i| ids[i.person.as_str()]).collect();
    let paths: Vec<_> = images.iter().map(|i| i.path.clone()).collect();

    let t0 = Instant::now();
    let selfies = scoring::load_or_compute(
        engine,
        &paths,
        opts,
        Selection::Central,
        setup.cache,
        progress,
    )?;
    let selfie_secs = t0.elapsed().as_secs_f64();

    // Documents: the first photo of each person with two or more. Left out of every
    // condition alike (they say nothing about documents): photos without a face, and
    // photos with a second person nearly as large (LFW shows bystanders; a document
    // portrait never does, and the document step would rightly refuse it).
    let policy = VerificationPolicy::default();
    let service_detect = DetectOptions {
        min_face_size: honnin_core::ServiceConfig::default().min_face_size,
        max_faces: 10,
        ..*opts
    };
    let candidates: Vec<usize> = (0..images.len())
        .filter(|&k| {
            (k == 0 || images[k - 1].person != images[k].person)
                && by_person[images[k].person.as_str()] >= 2
        })
        .collect();
    let sources: Vec<Result<Source>> = candidates
        .par_iter()
        .map(|&k| source(engine, &paths[k], &service_detect))
        .collect();
    let mut docs = Vec::new();
    let mut sources_without_face = 0usize;
    let mut sources_with_two_people = Vec::new();
    for (&k, src) in candidates.iter().zip(sources) {
        let src = src?;
        if selfies.vectors[k].is_none() || src.face_px.is_none() {
            sources_without_face += 1;
        } else if src.second_person {
            sources_with_two_people.push(images[k].person.clone());
        } else {
            docs.push(Doc {
                image: k,
                identity: identity[k],
                face_px: src.face_px.unwrap_or_default(),
            });
        }
    }
    if docs.is_empty() {
        return Err(Error::Invalid(format!(
            "no person with two or more photos under {}",
            setup.img_root.display()
        )));
    }

    let t1 = Instant::now();
    let mut rendered: Vec<(String, String, Vec<Portrait>, Vec<Sample>)> = vec![(
        "clean".into(),
        "baseline: the undegraded photo (selfie ↔ selfie on the same pairs)".into(),
        docs.iter()
            .map(|d| Portrait::Found {
                vector: selfies.vectors[d.image].clone().unwrap_or_default(),
                face_px: 0.0,
                retake: false,
            })
            .collect(),
        Vec::new(),
    )];
    for style in &setup.styles {
        let pb = progress.stage(docs.len() as u64, style.name);
        let out: Vec<(Portrait, Option<Sample>)> = docs
            .par_iter()
            .enumerate()
            .map(|(n, d)| {
                let r = document(
                    engine,
                    &paths[d.image],
                    d.face_px,
                    style,
                    n as u64,
                    &service_detect,
                    &policy,
                );
                pb.inc();
                match r {
                    Ok((p, jpeg, params)) => (
                        p,
                        (n < setup.samples).then_some(Sample {
                            index: n,
                            jpeg,
                            params,
                        }),
                    ),
                    Err(e) => (Portrait::Refused(error_chain(&e)), None),
                }
            })
            .collect();
        drop(pb);
        let (portraits, samples): (Vec<_>, Vec<_>) = out.into_iter().unzip();
        rendered.push((
            style.name.into(),
            style.about.into(),
            portraits,
            samples.into_iter().flatten().collect(),
        ));
    }
    let render_secs = t1.elapsed().as_secs_f64();

    // Score every condition.
    let t2 = Instant::now();
    let thresholds: Vec<f32> = SIMILARITIES
        .iter()
        .map(|&s| cal.score_for_similarity(s))
        .collect();
    let default_similarity = engine.threshold_for_fmr(policy.document_match_fmr);
    let review_similarity = engine.threshold_for_fmr(policy.document_review_fmr);
    let at_sim = |sim: f32| SIMILARITIES.iter().position(|&s| (s - sim).abs() < 0.5);
    let (Some(k_match), Some(k_review)) = (at_sim(default_similarity), at_sim(review_similarity))
    else {
        return Err(Error::Invalid(format!("the default document thresholds ({default_similarity}, {review_similarity}) are not among the reported similarities {SIMILARITIES:?}")));
    };
    let fusion = Fusion::of(engine);
    // Below this raw score a non-match stays a mismatch whatever the portrait's quality.
    let retake_band = cal.score_for_similarity(NonMatchLimits::default().min_similarity);
    let conditions = rendered
        .into_iter()
        .map(|(name, about, portraits, samples)| {
            let scores = score(
                &docs,
                &portraits,
                &selfies.vectors,
                &identity,
                &fusion,
                &thresholds,
                retake_band,
            );
            let report = evaluate(&scores.genuine, &scores.impostors, &REPORT_FMRS);
            Condition {
                name,
                about,
                portraits,
                samples,
                scores,
                report,
            }
        })
        .collect();
    let scoring_secs = t2.elapsed().as_secs_f64();
    Ok(DocumentRun {
        images,
        selfies,
        docs,
        sources_without_face,
        sources_with_two_people,
        conditions,
        policy,
        thresholds,
        default_similarity,
        review_similarity,
        k_match,
        k_review,
        seconds: [selfie_secs, render_secs, scoring_secs],
    })
}

/// Renders one document and runs the product's document step on it.
fn document(
    engine: &Engine,
    doc_path: &Path,
    face_px: f32,
    style: &DocumentStyle,
    n: u64,
    detect: &DetectOptions,
    policy: &VerificationPolicy,
) -> Result<(Portrait, Vec<u8>, RenderParams)> {
    let img = load_image(engine, doc_path)?;
    // The seed depends on the style and the document's position, never on the run.
    let seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv(style.name);
    let (bytes, params) = render::render(&img.rgb, face_px, style, seed);
    let portrait = match document_faces(engine, &bytes, *detect).and_then(|(img, faces)| {
        let main = pick_document_portrait(&faces, policy.min_document_face_px)?.clone();
        Ok((img, main))
    }) {
        Ok((img, main)) => {
            let t = engine.templates(&img, std::slice::from_ref(&main))?;
            // Quality alone here; the similarity band is applied per pair in `score`.
            let retake = !NonMatchLimits::default()
                .single_face_reasons(100.0, &main.quality_inputs())
                .is_empty();
            Portrait::Found {
                vector: t.into_iter().next().map(|t| t.vector).unwrap_or_default(),
                face_px: main.face_size,
                retake,
            }
        }
        Err(e) => Portrait::Refused(format!("{}: {e}", e.code())),
    };
    Ok((portrait, bytes, params))
}

/// 64-bit FNV-1a of a string (the per-style part of a document's seed).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// The error code of a refusal (`Code: message` → `Code`).
pub fn reason_code(why: &str) -> String {
    why.split(':').next().unwrap_or(why).trim().to_string()
}
