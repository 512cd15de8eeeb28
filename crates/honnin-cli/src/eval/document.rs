//! `honnin eval document --data ../shared/data/lfw`: what the document-match
//! threshold of identity verification does when one side is an ID-document portrait
//! (the run, the renderer and the scoring are `honnin_accuracy::document`).
//!
//! Reported per style: portrait failures, FNMR and measured FMR at the similarity
//! thresholds the API uses (50, 60, 70 = LFW FMR 1e-3, 1e-4, 1e-5), the document's own
//! operating points, EER; a DET plot with one curve per style; the first rendered
//! documents of each style in `samples/`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_accuracy::document::render::{self, DocumentStyle};
use honnin_accuracy::document::scores::by_size;
use honnin_accuracy::document::{
    self, reason_code, DocumentSetup, Portrait, REPORT_FMRS, SIMILARITIES,
};
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

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

pub fn run(eargs: &EngineArgs, args: DocumentArgs) -> Result<()> {
    let styles: Vec<&'static DocumentStyle> = args
        .styles
        .iter()
        .map(|s| {
            render::style(s.trim()).with_context(|| {
                let known: Vec<&str> = render::STYLES.iter().map(|s| s.name).collect();
                format!("unknown style `{s}` (known: {})", known.join(", "))
            })
        })
        .collect::<Result<_>>()?;
    let (img_root, _) = honnin_accuracy::lfw::locate(&args.data)?;
    let engine = common::engine(eargs, true)?;
    let cal = engine
        .calibration()
        .context("this evaluation needs the engine's calibration")?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("document"));
    let setup = DocumentSetup {
        img_root: &img_root,
        styles,
        max_people: args.max_people,
        cache: args.cache.as_deref(),
        samples: args.samples,
    };
    let r = document::run(&engine, &opts, &setup, &common::Bars)?;
    let (images, docs, policy) = (&r.images, &r.docs, &r.policy);
    let (thresholds, k_match, k_review) = (&r.thresholds, r.k_match, r.k_review);
    let (default_similarity, review_similarity) = (r.default_similarity, r.review_similarity);

    // Samples to look at.
    let mut sample_files = Vec::new();
    for c in &r.conditions {
        let sample_dir = out_dir.join("samples").join(&c.name);
        let mut files = Vec::new();
        for s in &c.samples {
            std::fs::create_dir_all(&sample_dir)?;
            let name = format!("{:02}-{}.jpg", s.index, images[docs[s.index].image].person);
            std::fs::write(sample_dir.join(&name), &s.jpeg)?;
            files.push(json!({"file": format!("samples/{}/{name}", c.name), "params": s.params}));
        }
        sample_files.push(files);
    }

    // Report.
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut cond_json = Vec::new();
    for (c, samples) in r.conditions.iter().zip(sample_files) {
        let (s, rep) = (&c.scores, &c.report);
        let mut refused: BTreeMap<String, usize> = BTreeMap::new();
        let mut sizes: Vec<f32> = Vec::new();
        let mut failed = Vec::new();
        for (p, d) in c.portraits.iter().zip(docs) {
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
                "fnmr": s.fnmr_at(k),
                "fmr": s.fmr_at(k),
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
            "byPortraitSize": by_size(docs, &c.portraits, &s.genuine, thresholds[k_match]),
            "defaultPolicy": {
                "genuine": {
                    "approved": 1.0 - s.fnmr_at(k_match),
                    "review": s.fnmr_at(k_match) - s.fnmr_at(k_review),
                    "lowQualityReview": s.genuine_retake(k_review),
                    "rejected": s.fnmr_at(k_review) - s.genuine_retake(k_review),
                },
                "impostor": {
                    "approved": s.fmr_at(k_match),
                    "review": s.fmr_at(k_review) - s.fmr_at(k_match),
                    "lowQualityReview": s.impostor_retake(k_review),
                },
            },
            "eer": rep.eer,
            "auc": rep.auc,
            "samples": samples,
        }));
    }
    let report = json!({
        "command": common::command_line(),
        "dataset": img_root.display().to_string(),
        "templateModel": engine.template_model(),
        "selfieImages": images.len(),
        "selfieImagesWithoutTemplate": r.selfies.failures(),
        "documents": docs.len(),
        "sourcePhotosWithoutFace": r.sources_without_face,
        "sourcePhotosWithASecondPerson": r.sources_with_two_people,
        "defaultDocumentThreshold": {"fmr": policy.document_match_fmr, "similarity": default_similarity},
        "defaultReviewThreshold": {"fmr": policy.document_review_fmr, "similarity": review_similarity},
        "minDocumentFacePx": policy.min_document_face_px,
        "conditions": cond_json,
        "seconds": {"selfieTemplates": r.seconds[0], "documents": r.seconds[1], "scoring": r.seconds[2]},
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
        series: r
            .conditions
            .iter()
            .map(|c| Series {
                name: c.name.clone(),
                points: c.report.roc.iter().map(|p| (p.fmr, p.fnmr)).collect(),
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
        images.len(),
        r.selfies.failures(),
        engine.template_model()
    );
    println!(
        "  default document thresholds: match FMR {:.0e} → similarity {:.0}, review band down to FMR {:.0e} → {:.0}",
        policy.document_match_fmr, default_similarity, policy.document_review_fmr, review_similarity
    );
    for (c, cond) in cond_json.iter().zip(&r.conditions) {
        let (s, rep) = (&cond.scores, &cond.report);
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
