//! `honnin detect IMG… [--json] [--annotate OUT.png]`

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_engine::{DecodedImage, EngineError, Face};
use image::Rgb;
use imageproc::drawing::{draw_filled_circle_mut, draw_hollow_rect_mut};
use imageproc::rect::Rect as DrawRect;
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Images to analyse (JPEG, PNG, WebP, BMP).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw boxes and landmarks into this PNG (with several images: OUT-1.png, OUT-2.png, …).
    #[arg(long, value_name = "OUT.png")]
    pub annotate: Option<PathBuf>,
    /// Return at most this many faces per image (1–100), largest first.
    #[arg(long, default_value_t = 100)]
    pub max_faces: usize,
}

/// Draws each face's box (green) and landmarks (red) onto a copy of the image.
pub fn annotate(img: &DecodedImage, faces: &[Face]) -> image::RgbImage {
    let mut out = img.rgb.clone();
    let thick = ((img.width().max(img.height()) as f32 / 400.0).ceil() as i32).max(1);
    for f in faces {
        let b = f.bounding_box_pixels;
        for t in 0..thick {
            let r = DrawRect::at(b.left as i32 - t, b.top as i32 - t).of_size(
                (b.width as u32 + 2 * t as u32).max(1),
                (b.height as u32 + 2 * t as u32).max(1),
            );
            draw_hollow_rect_mut(&mut out, r, Rgb([0, 230, 0]));
        }
        for l in &f.landmarks_pixels {
            draw_filled_circle_mut(
                &mut out,
                (l.x as i32, l.y as i32),
                thick + 1,
                Rgb([255, 0, 0]),
            );
        }
    }
    out
}

fn annotate_path(base: &std::path::Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "annotated".into());
    base.with_file_name(format!("{stem}-{}.png", index + 1))
}

pub fn run(eargs: &EngineArgs, args: DetectArgs) -> Result<()> {
    let engine = common::engine(eargs, false)?;
    let opts = honnin_engine::DetectOptions {
        max_faces: args.max_faces,
        ..common::detect_options(eargs)
    };
    let mut failures = 0;
    let mut reports = Vec::new();
    for (i, path) in args.images.iter().enumerate() {
        let result = common::load_image(&engine, path).and_then(|img| {
            let faces = engine.detect(&img, &opts)?;
            Ok((img, faces))
        });
        match result {
            Ok((img, faces)) => {
                if let Some(base) = &args.annotate {
                    let out = annotate_path(base, i, args.images.len());
                    annotate(&img, &faces)
                        .save(&out)
                        .with_context(|| format!("cannot write {}", out.display()))?;
                }
                if args.json {
                    reports.push(json!({
                        "image": path, "width": img.width(), "height": img.height(), "faces": faces,
                    }));
                } else {
                    println!(
                        "{}: {}x{}, {} face(s)",
                        path.display(),
                        img.width(),
                        img.height(),
                        faces.len()
                    );
                    for (k, f) in faces.iter().enumerate() {
                        let b = f.bounding_box_pixels;
                        println!(
                            "  #{k}: box {:.0},{:.0} {:.0}x{:.0} px, confidence {:.1}, yaw {:.0}° pitch {:.0}° roll {:.0}°, brightness {:.0}, sharpness {:.0}, quality {}",
                            b.left, b.top, b.width, b.height, f.confidence, f.pose.yaw, f.pose.pitch, f.pose.roll,
                            f.quality.brightness, f.quality.sharpness, f.quality_for_recognition.as_str()
                        );
                    }
                }
            }
            Err(e) if args.images.len() == 1 && !args.json => return Err(e),
            Err(e) => {
                failures += 1;
                let code = e
                    .chain()
                    .find_map(|c| c.downcast_ref::<EngineError>().map(|x| x.code()));
                if args.json {
                    reports.push(json!({
                        "image": path,
                        "error": { "code": code.unwrap_or("IoError"), "message": format!("{e:#}") },
                    }));
                } else {
                    common::print_error(&e);
                }
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if failures > 0 {
        if args.json {
            std::process::exit(1);
        }
        bail!(
            "{failures} of {} image(s) could not be analysed",
            args.images.len()
        );
    }
    Ok(())
}
