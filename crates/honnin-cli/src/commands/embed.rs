//! `honnin embed IMG… --out FILE`: one JSON line per face with its template.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use rayon::prelude::*;
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Output file (JSON lines: image, faceIndex, boundingBoxPixels, template).
    #[arg(long)]
    pub out: PathBuf,
    /// Only the largest face of each image.
    #[arg(long)]
    pub largest: bool,
}

pub fn run(eargs: &EngineArgs, args: EmbedArgs) -> Result<()> {
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let pb = common::progress(args.images.len() as u64, "embedding");
    let results: Vec<_> = args
        .images
        .par_iter()
        .map(|path| {
            let r = common::load_image(&engine, path).and_then(|img| {
                let mut faces = engine.detect(&img, &opts)?;
                if args.largest {
                    faces.truncate(1);
                }
                let t = engine.templates(&img, &faces)?;
                Ok(faces.into_iter().zip(t).collect::<Vec<_>>())
            });
            pb.inc(1);
            (path, r)
        })
        .collect();
    pb.finish_and_clear();
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?,
    );
    let (mut faces, mut failed) = (0usize, 0usize);
    for (path, r) in results {
        match r {
            Ok(list) => {
                for (i, (f, t)) in list.iter().enumerate() {
                    let line = json!({"image": path, "faceIndex": i, "boundingBoxPixels": f.bounding_box_pixels,
                        "qualityForRecognition": f.quality_for_recognition, "template": t});
                    writeln!(out, "{line}")?;
                    faces += 1;
                }
            }
            Err(e) => {
                failed += 1;
                common::print_error(&e);
            }
        }
    }
    out.flush()?;
    eprintln!(
        "wrote {faces} template(s) from {} image(s) to {} ({failed} failed)",
        args.images.len() - failed,
        args.out.display()
    );
    if failed > 0 {
        anyhow::bail!("{failed} image(s) failed");
    }
    Ok(())
}
