//! `honnin eval detect`: detection recall and precision against the annotated boxes
//! of dlib's face-detection set (PASCAL VOC group photos), and the share of LFW
//! images in which a face is found in the central region (the run is
//! `honnin_accuracy::detection`).

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use honnin_accuracy::detection::{self, IOUS};
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

pub fn run(eargs: &EngineArgs, args: DetectEvalArgs) -> Result<()> {
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let annotated = detection::annotations(&args.data)?;
    let groups = detection::group_photos(&engine, &opts, &annotated)?;
    let per_iou = groups.per_iou;
    let per_image: Vec<_> = groups
        .per_image
        .iter()
        .map(|r| {
            let mut row =
                json!({"image": r.image, "annotated": r.annotated, "detected": r.detected});
            for (k, iou) in IOUS.iter().enumerate() {
                row[format!("matchedAtIou{iou}")] = json!(r.matched[k]);
            }
            row
        })
        .collect();

    // LFW: a face found whose centre lies in the central 40 % of the image.
    let lfw_root = args.data.join("lfw").join("lfw-deepfunneled");
    let lfw = if lfw_root.is_dir() {
        let l = detection::lfw_found(
            &engine,
            &opts,
            &lfw_root,
            args.lfw_stride,
            args.lfw_limit,
            &common::Bars,
        )?;
        Some(json!({
            "images": l.images, "found": l.found, "rate": l.rate(),
            "imagesWithSeveralFaces": l.images_with_several_faces,
            "missed": l.missed,
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
