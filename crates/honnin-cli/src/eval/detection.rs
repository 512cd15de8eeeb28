//! `honnin eval detect`: detection recall and precision against the annotated boxes
//! of dlib's face-detection set (PASCAL VOC group photos), and the share of LFW
//! images in which a face is found in the central region.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::Args;
use honnin_eval::datasets::{dlib_boxes, lfw_images, GtBox};
use honnin_eval::detection::{match_boxes, DetectionCounts};
use rayon::prelude::*;
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct DetectEvalArgs {
    /// The shared data folder (holds group-photos/dlib-faces and lfw/).
    #[arg(long, default_value = "../shared/data")]
    pub data: PathBuf,
    /// Evaluate only the first N LFW images (0 = all 13,233; default all).
    #[arg(long, default_value_t = 0)]
    pub lfw_limit: usize,
    /// Take every k-th LFW image (a spread-out sample for quick runs).
    #[arg(long, default_value_t = 1)]
    pub lfw_stride: usize,
    /// Folder for report.json (default target/eval/detect).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Fail if group-photo recall (IoU ≥ 0.4) is below this.
    #[arg(long)]
    pub min_recall: Option<f64>,
    /// Fail if the LFW face-found rate is below this.
    #[arg(long)]
    pub min_lfw_found: Option<f64>,
}

/// Match thresholds reported: annotators draw face boxes differently (dlib's boxes are
/// square and stop at the brows; CenterFace's include the forehead), so recall is
/// given at IoU 0.5 and at the more lenient 0.4 and 0.3.
const IOUS: [f32; 3] = [0.5, 0.4, 0.3];

pub fn run(eargs: &EngineArgs, args: DetectEvalArgs) -> Result<()> {
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let dlib_dir = args.data.join("group-photos").join("dlib-faces");
    let mut annotated = Vec::new();
    for f in ["training.xml", "testing.xml"] {
        let p = dlib_dir.join(f);
        if p.is_file() {
            annotated.extend(dlib_boxes(&p)?);
        }
    }
    if annotated.is_empty() {
        bail!("no annotations under {}", dlib_dir.display());
    }
    let mut per_iou = [DetectionCounts::default(); 3];
    let mut per_image = Vec::new();
    for a in &annotated {
        let img = common::load_image(&engine, &a.path)?;
        let faces = engine.detect(&img, &opts)?;
        let found: Vec<GtBox> = faces
            .iter()
            .map(|f| {
                let b = f.bounding_box_pixels;
                GtBox {
                    left: b.left,
                    top: b.top,
                    width: b.width,
                    height: b.height,
                }
            })
            .collect();
        let mut row = json!({"image": a.path, "annotated": a.boxes.len(), "detected": found.len()});
        for (k, &iou) in IOUS.iter().enumerate() {
            let c = match_boxes(&a.boxes, &found, iou);
            per_iou[k].add(c);
            row[format!("matchedAtIou{iou}")] = json!(c.matched);
        }
        per_image.push(row);
    }

    // LFW: a face found whose centre lies in the central 40 % of the image.
    let lfw_root = args.data.join("lfw").join("lfw-deepfunneled");
    let lfw = if lfw_root.is_dir() {
        let mut imgs = lfw_images(&lfw_root)?;
        imgs = imgs.into_iter().step_by(args.lfw_stride.max(1)).collect();
        if args.lfw_limit > 0 {
            imgs.truncate(args.lfw_limit);
        }
        let pb = common::progress(imgs.len() as u64, "LFW detect");
        let res: Vec<(PathBuf, bool, usize)> = imgs
            .par_iter()
            .map(|i| {
                let r = found_central(&engine, &i.path, &opts);
                pb.inc(1);
                (
                    i.path.clone(),
                    r.as_ref().map(|x| x.0).unwrap_or(false),
                    r.map(|x| x.1).unwrap_or(0),
                )
            })
            .collect();
        pb.finish_and_clear();
        let found = res.iter().filter(|r| r.1).count();
        let missed: Vec<&PathBuf> = res.iter().filter(|r| !r.1).map(|r| &r.0).collect();
        Some(json!({
            "images": res.len(), "found": found, "rate": found as f64 / res.len().max(1) as f64,
            "imagesWithSeveralFaces": res.iter().filter(|r| r.2 > 1).count(),
            "missed": missed,
        }))
    } else {
        None
    };

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("detect"));
    std::fs::create_dir_all(&out)?;
    let report = json!({
        "command": common::command_line(),
        "minFaceSize": opts.min_face_size,
        "groupPhotos": {
            "images": annotated.len(),
            "byIou": IOUS.iter().zip(per_iou.iter()).map(|(iou, c)| json!({
                "iou": iou, "annotated": c.annotated, "detected": c.detected, "matched": c.matched,
                "recall": c.recall(), "precision": c.precision(),
            })).collect::<Vec<_>>(),
            "perImage": per_image,
        },
        "lfw": lfw,
    });
    common::write_json(&out.join("report.json"), &report)?;
    for (iou, c) in IOUS.iter().zip(per_iou.iter()) {
        println!(
            "group photos, IoU ≥ {iou}: recall {:.1} % ({}/{}), precision {:.1} % ({} detections)",
            c.recall() * 100.0,
            c.matched,
            c.annotated,
            c.precision() * 100.0,
            c.detected
        );
    }
    if let Some(l) = &report["lfw"].as_object() {
        println!(
            "LFW: face found in the central region of {} of {} images ({:.2} %)",
            l["found"],
            l["images"],
            l["rate"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
    println!("report: {}", out.join("report.json").display());
    if let Some(min) = args.min_recall {
        if per_iou[1].recall() < min {
            bail!(
                "group-photo recall {:.4} is below the floor {min}",
                per_iou[1].recall()
            );
        }
    }
    if let (Some(min), Some(rate)) = (args.min_lfw_found, report["lfw"]["rate"].as_f64()) {
        if rate < min {
            bail!("LFW face-found rate {rate:.4} is below the floor {min}");
        }
    }
    Ok(())
}

fn found_central(
    engine: &honnin_engine::Engine,
    path: &Path,
    opts: &honnin_engine::DetectOptions,
) -> Result<(bool, usize)> {
    let img = common::load_image(engine, path)?;
    let faces = engine.detect(&img, opts)?;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let central = faces.iter().any(|f| {
        let c = f.bounding_box_pixels.center();
        c.x > 0.3 * w && c.x < 0.7 * w && c.y > 0.3 * h && c.y < 0.7 * h
    });
    Ok((central, faces.len()))
}
