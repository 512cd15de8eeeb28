//! `honnin eval document --data ../shared/data/lfw`: what the document-match
//! threshold of identity verification does when one side is an ID-document portrait.
//!
//! For every LFW person with two or more photos, the first photo becomes an ID
//! document ([`super::document_render`]: printed, small, under a guilloche, on a card,
//! photographed with glare and JPEG) and goes through the product's document step
//! (`honnin_core::verification::document_faces` and `pick_document_portrait`, the code
//! `PUT /v1/verifications/{id}/document` runs). Its template is compared with:
//! - every other photo of the same person (genuine: "document ↔ selfie"), and
//! - every photo of every other person (impostors).
//!
//! A document whose portrait is not found (or is refused as unusable) counts against
//! FNMR for all its genuine pairs. The same pairs with the undegraded first photo give
//! the selfie ↔ selfie baseline (`clean`), so the report shows what the document costs.
//! Reported per style: portrait failures, FNMR and measured FMR at the similarity
//! thresholds the API uses (50, 60, 70 = LFW FMR 1e-3, 1e-4, 1e-5), the document's own
//! operating points, EER; a DET plot with one curve per style.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_core::verification::{document_faces, pick_document_portrait, VerificationPolicy};
use honnin_engine::{DetectOptions, Engine, NonMatchLimits};
use honnin_eval::datasets::lfw_images;
use honnin_eval::metrics::{evaluate, GenuineScores, ScoreHistogram};
use honnin_eval::plot::{LogLogPlot, Series};
use rayon::prelude::*;
use serde_json::json;

use super::document_render::{self, DocumentStyle, RenderParams};
use super::scoring::{self, Selection};
use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct DocumentArgs {
    /// LFW folder (holds `lfw-deepfunneled/`).
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for report.json, det.svg and samples/ (default target/eval/document).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Document styles to render (card: a phone photo of an ID card, face 90–140 px;
    /// medium: 65–90 px; small: 45–65 px).
    #[arg(long, value_delimiter = ',', default_value = "card,medium,small")]
    pub styles: Vec<String>,
    /// Only the first N people (by name) with two or more photos; impostors are then
    /// only their photos too (a quick run; the full run uses all 13,233 images).
    #[arg(long)]
    pub max_people: Option<usize>,
    /// Reuse / store the selfie-side templates here (the same file `eval lfw --cache`
    /// writes when the full set is used).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Write the first N rendered documents of each style to samples/ (to look at).
    #[arg(long, default_value_t = 12)]
    pub samples: usize,
    /// Fail (exit 1) if the `card` style's FNMR at the default document threshold
    /// (portrait failures included) is above this fraction.
    #[arg(long)]
    pub max_fnmr: Option<f64>,
    /// Fail (exit 1) if the `card` style loses more than this fraction of documents
    /// (portrait not found or refused).
    #[arg(long)]
    pub max_portrait_failures: Option<f64>,
}

/// Similarities reported as fixed thresholds (LFW FMR 1e-3, 1e-4, 1e-5).
const SIMILARITIES: [f32; 3] = [50.0, 60.0, 70.0];
const REPORT_FMRS: [f64; 4] = [1e-3, 1e-4, 1e-5, 1e-6];

/// One document: which image it was made from and whose it is.
struct Doc {
    /// Index of the source image in the selfie set.
    image: usize,
    identity: u32,
    /// Face size on the source photo, pixels.
    face_px: f32,
}

/// What the source photo of a document shows.
struct Source {
    /// The central face's size, if there is a face.
    face_px: Option<f32>,
    /// Another face with at least half the central face's area.
    second_person: bool,
}

fn source(engine: &Engine, path: &std::path::Path, detect: &DetectOptions) -> Result<Source> {
    let img = common::load_image(engine, path)?;
    let faces = engine.detect(&img, detect)?;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let d = |f: &honnin_engine::Face| {
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

/// A rendered document kept to look at: its JPEG and what was drawn.
type Sample = (Vec<u8>, RenderParams);

/// The document step's result for one document.
enum Portrait {
    /// `retake`: the portrait alone makes a non-match unreliable (pose, size, blur:
    /// `DocumentPortrait::retake_reasons`), so the service's default policy answers a
    /// match below the review threshold `needs_review` (`LowFaceQuality`).
    Found {
        vector: Vec<f32>,
        face_px: f32,
        retake: bool,
    },
    Refused(String),
}

/// Scores of one condition (clean or a style).
struct Condition {
    name: String,
    about: String,
    portraits: Vec<Portrait>,
    samples: Vec<(String, RenderParams)>,
}

pub fn run(eargs: &EngineArgs, args: DocumentArgs) -> Result<()> {
    let styles: Vec<&'static DocumentStyle> = args
        .styles
        .iter()
        .map(|s| {
            document_render::style(s.trim()).with_context(|| {
                let known: Vec<&str> = document_render::STYLES.iter().map(|s| s.name).collect();
                format!("unknown style `{s}` (known: {})", known.join(", "))
            })
        })
        .collect::<Result<_>>()?;
    let (img_root, _) = super::lfw::locate(&args.data)?;
    let engine = common::engine(eargs, true)?;
    let cal = engine
        .calibration()
        .context("this evaluation needs the engine's calibration")?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("document"));

    // Selfie side: all images, or those of the first N people with two or more.
    let all = lfw_images(&img_root)?;
    let mut by_person: BTreeMap<&str, usize> = BTreeMap::new();
    for i in &all {
        *by_person.entry(i.person.as_str()).or_default() += 1;
    }
    let multi: Vec<&str> = by_person
        .iter()
        .filter(|(_, &n)| n >= 2)
        .map(|(p, _)| *p)
        .collect();
    let chosen: std::collections::HashSet<&str> = match args.max_people {
        Some(n) => multi.iter().take(n).copied().collect(),
        None => by_person.keys().copied().collect(),
    };
    let images: Vec<_> = all
        .iter()
        .filter(|i| chosen.contains(i.person.as_str()))
        .collect();
    if images.is_empty() {
        bail!("no LFW images found under {}", img_root.display());
    }
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    for i in &images {
        let n = ids.len() as u32;
        ids.entry(i.person.as_str()).or_insert(n);
    }
    let identity: Vec<u32> = images.iter().map(|i| ids[i.person.as_str()]).collect();
    let paths: Vec<PathBuf> = images.iter().map(|i| i.path.clone()).collect();

    let t0 = Instant::now();
    let selfies = scoring::load_or_compute(
        &engine,
        &paths,
        &opts,
        Selection::Central,
        args.cache.as_deref(),
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
        ..opts
    };
    let candidates: Vec<usize> = (0..images.len())
        .filter(|&k| {
            (k == 0 || images[k - 1].person != images[k].person)
                && by_person[images[k].person.as_str()] >= 2
        })
        .collect();
    let sources: Vec<Result<Source>> = candidates
        .par_iter()
        .map(|&k| source(&engine, &paths[k], &service_detect))
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
        bail!(
            "no person with two or more photos under {}",
            img_root.display()
        );
    }

    let t1 = Instant::now();
    let mut conditions = vec![Condition {
        name: "clean".into(),
        about: "baseline: the undegraded photo (selfie ↔ selfie on the same pairs)".into(),
        portraits: docs
            .iter()
            .map(|d| Portrait::Found {
                vector: selfies.vectors[d.image].clone().unwrap_or_default(),
                face_px: 0.0,
                retake: false,
            })
            .collect(),
        samples: Vec::new(),
    }];
    for style in &styles {
        let pb = common::progress(docs.len() as u64, style.name);
        let rendered: Vec<(Portrait, Option<Sample>)> = docs
            .par_iter()
            .enumerate()
            .map(|(n, d)| {
                let r = document(
                    &engine,
                    &paths[d.image],
                    d.face_px,
                    style,
                    n as u64,
                    &service_detect,
                    &policy,
                );
                pb.inc(1);
                match r {
                    Ok((p, bytes, params)) => (p, (n < args.samples).then_some((bytes, params))),
                    Err(e) => (Portrait::Refused(format!("{e:#}")), None),
                }
            })
            .collect();
        pb.finish_and_clear();
        let sample_dir = out_dir.join("samples").join(style.name);
        let mut samples = Vec::new();
        for (n, (_, s)) in rendered.iter().enumerate() {
            if let Some((bytes, params)) = s {
                std::fs::create_dir_all(&sample_dir)?;
                let name = format!("{:02}-{}.jpg", n, images[docs[n].image].person);
                std::fs::write(sample_dir.join(&name), bytes)?;
                samples.push((format!("samples/{}/{name}", style.name), params.clone()));
            }
        }
        conditions.push(Condition {
            name: style.name.into(),
            about: style.about.into(),
            portraits: rendered.into_iter().map(|(p, _)| p).collect(),
            samples,
        });
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
        bail!("the default document thresholds ({default_similarity}, {review_similarity}) are not among the reported similarities {SIMILARITIES:?}");
    };
    let fusion = Fusion::of(&engine);
    // Below this raw score a non-match stays a mismatch whatever the portrait's quality.
    let retake_band = cal.score_for_similarity(NonMatchLimits::default().min_similarity);
    let mut results = Vec::new();
    for c in &conditions {
        let s = score(
            &docs,
            &c.portraits,
            &selfies.vectors,
            &identity,
            &fusion,
            &thresholds,
            retake_band,
        );
        let report = evaluate(&s.genuine, &s.impostors, &REPORT_FMRS);
        results.push((s, report));
    }
    let scoring_secs = t2.elapsed().as_secs_f64();

    // Report.
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut cond_json = Vec::new();
    for (c, (s, rep)) in conditions.iter().zip(&results) {
        let mut refused: BTreeMap<String, usize> = BTreeMap::new();
        let mut sizes: Vec<f32> = Vec::new();
        let mut failed = Vec::new();
        for (p, d) in c.portraits.iter().zip(&docs) {
            match p {
                Portrait::Found { face_px, .. } if *face_px > 0.0 => sizes.push(*face_px),
                Portrait::Found { .. } => {}
                Portrait::Refused(why) => {
                    *refused.entry(reason_code(why)).or_default() += 1;
                    failed.push(
                        json!({"source": images[d.image].path.display().to_string(), "error": why}),
                    );
                }
            }
        }
        sizes.sort_by(f32::total_cmp);
        let q = |f: f64| {
            (!sizes.is_empty()).then(|| sizes[((sizes.len() - 1) as f64 * f).round() as usize])
        };
        let failures: usize = refused.values().sum();
        cond_json.push(json!({
            "name": c.name,
            "about": c.about,
            "documents": c.portraits.len(),
            "portraitFailures": failures,
            "portraitFailureRate": failures as f64 / c.portraits.len().max(1) as f64,
            "portraitFailuresByCode": refused,
            "portraitFailureList": failed,
            "portraitFacePx": {"p10": q(0.1), "median": q(0.5), "p90": q(0.9)},
            "genuinePairs": rep.genuine_pairs,
            "impostorPairs": rep.impostor_pairs,
            "atSimilarity": SIMILARITIES.iter().enumerate().map(|(k, &sim)| json!({
                "similarity": sim,
                "rawScore": thresholds[k],
                "lfwFmr": honnin_engine::calibration::fmr_for_similarity(sim),
                "fnmr": fnmr_at(s, k),
                "fmr": fmr_at(s, k),
                "impostorsAtOrAbove": s.impostors_at_or_above[k],
            })).collect::<Vec<_>>(),
            "operatingPoints": rep.operating_points.iter().map(|p| json!({
                "fmr": p.target_fmr,
                "similarity": cal.similarity(p.threshold),
                "fnmr": p.fnmr,
                "fnmrIdentityWeighted": p.fnmr_identity_weighted,
                "impostorsAtOrAbove": p.impostors_at_or_above,
                "lowEvidence": p.low_evidence,
            })).collect::<Vec<_>>(),
            "byPortraitSize": by_size(&docs, &c.portraits, &s.genuine, thresholds[k_match]),
            "defaultPolicy": {
                "genuine": {
                    "approved": 1.0 - fnmr_at(s, k_match),
                    "review": fnmr_at(s, k_match) - fnmr_at(s, k_review),
                    "lowQualityReview": genuine_retake(s, k_review),
                    "rejected": fnmr_at(s, k_review) - genuine_retake(s, k_review),
                },
                "impostor": {
                    "approved": fmr_at(s, k_match),
                    "review": fmr_at(s, k_review) - fmr_at(s, k_match),
                    "lowQualityReview": impostor_retake(s, k_review),
                },
            },
            "eer": rep.eer,
            "auc": rep.auc,
            "samples": c.samples.iter().map(|(f, p)| json!({"file": f, "params": p})).collect::<Vec<_>>(),
        }));
    }
    let report = json!({
        "command": common::command_line(),
        "dataset": img_root.display().to_string(),
        "templateModel": engine.template_model(),
        "selfieImages": paths.len(),
        "selfieImagesWithoutTemplate": selfies.failures(),
        "documents": docs.len(),
        "sourcePhotosWithoutFace": sources_without_face,
        "sourcePhotosWithASecondPerson": sources_with_two_people,
        "defaultDocumentThreshold": {"fmr": policy.document_match_fmr, "similarity": default_similarity},
        "defaultReviewThreshold": {"fmr": policy.document_review_fmr, "similarity": review_similarity},
        "minDocumentFacePx": policy.min_document_face_px,
        "conditions": cond_json,
        "seconds": {"selfieTemplates": selfie_secs, "documents": render_secs, "scoring": scoring_secs},
    });
    common::write_json(&out_dir.join("report.json"), &report)?;
    let plot = LogLogPlot {
        title: format!(
            "Document ↔ selfie (synthetic documents from LFW) — {}",
            engine.template_model()
        ),
        x_label: "false-match rate (FMR)".into(),
        y_label: "false-non-match rate (FNMR)".into(),
        x_range: (1e-7, 1.0),
        y_range: (1e-4, 1.0),
        series: conditions
            .iter()
            .zip(&results)
            .map(|(c, (_, r))| Series {
                name: c.name.clone(),
                points: r.roc.iter().map(|p| (p.fmr, p.fnmr)).collect(),
            })
            .collect(),
        markers: REPORT_FMRS
            .iter()
            .map(|&f| (f, format!("{f:.0e}")))
            .collect(),
    };
    std::fs::write(out_dir.join("det.svg"), plot.to_svg())?;

    // Human summary.
    println!(
        "Document ↔ selfie on LFW: {} documents, {} selfie images ({} without a template) — {}",
        docs.len(),
        paths.len(),
        selfies.failures(),
        engine.template_model()
    );
    println!(
        "  default document thresholds: match FMR {:.0e} → similarity {:.0}, review band down to FMR {:.0e} → {:.0}",
        policy.document_match_fmr, default_similarity, policy.document_review_fmr, review_similarity
    );
    for (c, (s, rep)) in cond_json.iter().zip(&results) {
        let at: Vec<String> = c["atSimilarity"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "sim {}: FNMR {:.2} % FMR {:.1e}",
                    a["similarity"],
                    a["fnmr"].as_f64().unwrap_or(1.0) * 100.0,
                    a["fmr"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!(
            "  {:<6} portrait failures {}/{}, face px median {}; {}; EER {:.2} % ({} genuine, {} impostor pairs)",
            c["name"].as_str().unwrap_or(""),
            c["portraitFailures"],
            c["documents"],
            c["portraitFacePx"]["median"].as_f64().map(|v| format!("{v:.0}")).unwrap_or("-".into()),
            at.join("; "),
            rep.eer * 100.0,
            s.genuine.scores.len(),
            s.impostors.total(),
        );
        let g = &c["defaultPolicy"]["genuine"];
        let i = &c["defaultPolicy"]["impostor"];
        let pct = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0) * 100.0;
        println!(
            "         default policy: genuine {:.2} % approved, {:.2} % review, {:.2} % review for low face quality, {:.2} % rejected; impostors {:.4} % approved, {:.4} % review, {:.2} % review for low face quality",
            pct(&g["approved"]),
            pct(&g["review"]),
            pct(&g["lowQualityReview"]),
            pct(&g["rejected"]),
            pct(&i["approved"]),
            pct(&i["review"]),
            pct(&i["lowQualityReview"]),
        );
    }
    println!("report: {}", out_dir.join("report.json").display());

    // Floors (CI).
    let card = cond_json.iter().find(|c| c["name"] == "card");
    if args.max_fnmr.is_some() || args.max_portrait_failures.is_some() {
        let card = card.context("the floors apply to the `card` style; add it to --styles")?;
        if let Some(max) = args.max_portrait_failures {
            let r = card["portraitFailureRate"].as_f64().unwrap_or(1.0);
            if r > max {
                bail!("card: portrait failure rate {r:.4} is above the floor {max}");
            }
        }
        if let Some(max) = args.max_fnmr {
            let f = card["atSimilarity"][k_match]["fnmr"]
                .as_f64()
                .unwrap_or(1.0);
            if f > max {
                bail!(
                    "card: FNMR {f:.4} at similarity {default_similarity} is above the floor {max}"
                );
            }
        }
    }
    Ok(())
}

/// Renders one document and runs the product's document step on it.
fn document(
    engine: &Engine,
    doc_path: &std::path::Path,
    face_px: f32,
    style: &DocumentStyle,
    n: u64,
    detect: &DetectOptions,
    policy: &VerificationPolicy,
) -> Result<(Portrait, Vec<u8>, RenderParams)> {
    let img = common::load_image(engine, doc_path)?;
    // The seed depends on the style and the document's position, never on the run.
    let seed = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ fnv(style.name);
    let (bytes, params) = document_render::render(&img.rgb, face_px, style, seed);
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

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn reason_code(why: &str) -> String {
    why.split(':').next().unwrap_or(why).trim().to_string()
}

/// How the engine fuses its recognizers' cosines (the calibration's weights).
struct Fusion {
    dims: Vec<usize>,
    weights: Vec<f32>,
}

impl Fusion {
    fn of(engine: &Engine) -> Fusion {
        Fusion {
            dims: scoring::part_dims(engine),
            weights: scoring::calibrated_weights(engine),
        }
    }
}

/// Portrait-size buckets (face px) for the FNMR breakdown.
const SIZE_EDGES: [f32; 9] = [
    40.0,
    50.0,
    60.0,
    70.0,
    80.0,
    90.0,
    110.0,
    130.0,
    f32::INFINITY,
];

/// FNMR at `threshold` of the documents whose portrait was found, by portrait size,
/// from the genuine scores of [`score`] (one document per identity).
fn by_size(
    docs: &[Doc],
    portraits: &[Portrait],
    genuine: &GenuineScores,
    threshold: f32,
) -> Vec<serde_json::Value> {
    let bucket_of: BTreeMap<u32, usize> = docs
        .iter()
        .zip(portraits)
        .filter_map(|(d, p)| match p {
            Portrait::Found { face_px, .. } => SIZE_EDGES
                .windows(2)
                .position(|w| *face_px >= w[0] && *face_px < w[1])
                .map(|b| (d.identity, b)),
            Portrait::Refused(_) => None,
        })
        .collect();
    let mut buckets = vec![(0u64, 0u64, 0u64); SIZE_EDGES.len() - 1];
    for &b in bucket_of.values() {
        buckets[b].0 += 1;
    }
    for &(score, identity) in &genuine.scores {
        if let Some(&b) = bucket_of.get(&identity) {
            buckets[b].1 += 1;
            buckets[b].2 += u64::from(score < threshold);
        }
    }
    buckets
        .iter()
        .enumerate()
        .filter(|(_, b)| b.0 > 0)
        .map(|(k, &(n, pairs, fails))| {
            json!({
                "facePx": [SIZE_EDGES[k], SIZE_EDGES[k + 1]],
                "documents": n,
                "genuinePairs": pairs,
                "fnmr": fails as f64 / pairs.max(1) as f64,
            })
        })
        .collect()
}

fn fnmr_at(s: &Scores, k: usize) -> f64 {
    1.0 - s.genuine_at_or_above[k] as f64 / s.genuine.scores.len().max(1) as f64
}

fn fmr_at(s: &Scores, k: usize) -> f64 {
    s.impostors_at_or_above[k] as f64 / s.impostors.total().max(1) as f64
}

struct Scores {
    genuine: GenuineScores,
    impostors: ScoreHistogram,
    genuine_at_or_above: Vec<u64>,
    impostors_at_or_above: Vec<u64>,
    /// Pairs below each threshold whose portrait makes the non-match unreliable.
    genuine_retake_below: Vec<u64>,
    impostors_retake_below: Vec<u64>,
}

/// Every document against every selfie image except its own source; a missing template
/// on either side scores −1 (a genuine pair fails, an impostor pair does not match).
/// Genuine pairs below threshold `k` whose portrait makes the non-match unreliable, as
/// a share of all genuine pairs.
fn genuine_retake(s: &Scores, k: usize) -> f64 {
    s.genuine_retake_below[k] as f64 / s.genuine.scores.len().max(1) as f64
}

/// The same for impostor pairs (the cost: an impostor sent to review, not rejected).
fn impostor_retake(s: &Scores, k: usize) -> f64 {
    s.impostors_retake_below[k] as f64 / s.impostors.total().max(1) as f64
}

fn score(
    docs: &[Doc],
    portraits: &[Portrait],
    selfies: &[Option<Vec<f32>>],
    identity: &[u32],
    fusion: &Fusion,
    thresholds: &[f32],
    retake_band: f32,
) -> Scores {
    let empty = || Scores {
        genuine: GenuineScores::default(),
        impostors: ScoreHistogram::new(),
        genuine_at_or_above: vec![0; thresholds.len()],
        impostors_at_or_above: vec![0; thresholds.len()],
        genuine_retake_below: vec![0; thresholds.len()],
        impostors_retake_below: vec![0; thresholds.len()],
    };
    docs.par_iter()
        .zip(portraits)
        .fold(empty, |mut acc, (d, p)| {
            let mut parts = vec![0f32; fusion.dims.len()];
            let doc = match p {
                Portrait::Found { vector, .. } if !vector.is_empty() => Some(vector.as_slice()),
                _ => None,
            };
            let retake = matches!(p, Portrait::Found { retake: true, .. }) && doc.is_some();
            for (j, s) in selfies.iter().enumerate() {
                if j == d.image {
                    continue;
                }
                let score = match (doc, s) {
                    (Some(a), Some(b)) => {
                        scoring::part_cosines(a, b, &fusion.dims, &mut parts);
                        scoring::fuse(&parts, &fusion.weights)
                    }
                    _ => -1.0,
                };
                let same = identity[j] == d.identity;
                for (k, &t) in thresholds.iter().enumerate() {
                    if score >= t {
                        if same {
                            acc.genuine_at_or_above[k] += 1;
                        } else {
                            acc.impostors_at_or_above[k] += 1;
                        }
                    } else if retake && score >= retake_band {
                        if same {
                            acc.genuine_retake_below[k] += 1;
                        } else {
                            acc.impostors_retake_below[k] += 1;
                        }
                    }
                }
                if same {
                    acc.genuine.scores.push((score, d.identity));
                } else {
                    acc.impostors.add(score);
                }
            }
            acc
        })
        .reduce(empty, |mut a, b| {
            a.genuine.scores.extend(b.genuine.scores);
            a.impostors.merge(&b.impostors);
            for k in 0..thresholds.len() {
                a.genuine_at_or_above[k] += b.genuine_at_or_above[k];
                a.impostors_at_or_above[k] += b.impostors_at_or_above[k];
                a.genuine_retake_below[k] += b.genuine_retake_below[k];
                a.impostors_retake_below[k] += b.impostors_retake_below[k];
            }
            a
        })
}
