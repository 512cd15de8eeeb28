//! Detection on real data (`honnin eval detect`): recall and precision against the
//! annotated boxes of dlib's face-detection set (PASCAL VOC group photos), and the
//! share of LFW images in which a face is found in the central region.

use std::path::{Path, PathBuf};

use honnin_engine::{DetectOptions, Engine};
use honnin_eval::datasets::{dlib_boxes, lfw_images, AnnotatedImage, GtBox};
use honnin_eval::detection::{match_boxes, DetectionCounts};
use rayon::prelude::*;

use crate::{load_image, Error, Progress, Result};

/// Match thresholds reported: annotators draw face boxes differently (dlib's boxes are
/// square and stop at the brows; CenterFace's include the forehead), so recall is
/// given at IoU 0.5 and at the more lenient 0.4 and 0.3.
pub const IOUS: [f32; 3] = [0.5, 0.4, 0.3];

/// One annotated group photo.
pub struct ImageResult {
    /// The image file.
    pub image: PathBuf,
    /// Annotated faces.
    pub annotated: usize,
    /// Detected faces.
    pub detected: usize,
    /// Matched faces at each of [`IOUS`].
    pub matched: [usize; 3],
}

/// Group-photo results.
pub struct GroupPhotos {
    /// Counts at each of [`IOUS`].
    pub per_iou: [DetectionCounts; 3],
    /// One row per image.
    pub per_image: Vec<ImageResult>,
}

/// The annotated images of `group-photos/dlib-faces/{training,testing}.xml` under
/// `data` (the files that exist).
///
/// # Errors
/// An annotation file that cannot be parsed, or no annotations at all.
pub fn annotations(data: &Path) -> Result<Vec<AnnotatedImage>> {
    let dlib_dir = data.join("group-photos").join("dlib-faces");
    let mut annotated = Vec::new();
    for f in ["training.xml", "testing.xml"] {
        let p = dlib_dir.join(f);
        if p.is_file() {
            annotated.extend(dlib_boxes(&p)?);
        }
    }
    if annotated.is_empty() {
        return Err(Error::Invalid(format!(
            "no annotations under {}",
            dlib_dir.display()
        )));
    }
    Ok(annotated)
}

/// Detects the faces of every annotated image and matches them at each of [`IOUS`].
///
/// # Errors
/// An image that cannot be read or decoded, or a detection error.
pub fn group_photos(
    engine: &Engine,
    opts: &DetectOptions,
    annotated: &[AnnotatedImage],
) -> Result<GroupPhotos> {
    let mut per_iou = [DetectionCounts::default(); 3];
    let mut per_image = Vec::new();
    for a in annotated {
        let img = load_image(engine, &a.path)?;
        let faces = engine.detect(&img, opts)?;
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
        let mut matched = [0; 3];
        for (k, &iou) in IOUS.iter().enumerate() {
            let c = match_boxes(&a.boxes, &found, iou);
            per_iou[k].add(c);
            matched[k] = c.matched;
        }
        per_image.push(ImageResult {
            image: a.path.clone(),
            annotated: a.boxes.len(),
            detected: found.len(),
            matched,
        });
    }
    Ok(GroupPhotos { per_iou, per_image })
}

/// The LFW face-found run.
pub struct LfwFound {
    /// Images tried.
    pub images: usize,
    /// Images with a face whose centre lies in the central 40 % of each side.
    pub found: usize,
    /// Images with more than one face.
    pub images_with_several_faces: usize,
    /// The images where no central face was found (or that failed).
    pub missed: Vec<PathBuf>,
}

impl LfwFound {
    /// found / images (0 when no image was tried).
    pub fn rate(&self) -> f64 {
        self.found as f64 / self.images.max(1) as f64
    }
}

/// Every `stride`-th image of the LFW image folder `root` (the first `limit`
/// of those; 0 = all), each checked for a central face.
///
/// # Errors
/// The image folder cannot be listed.
pub fn lfw_found(
    engine: &Engine,
    opts: &DetectOptions,
    root: &Path,
    stride: usize,
    limit: usize,
    progress: &dyn Progress,
) -> Result<LfwFound> {
    let mut imgs = lfw_images(root)?;
    imgs = imgs.into_iter().step_by(stride.max(1)).collect();
    if limit > 0 {
        imgs.truncate(limit);
    }
    let pb = progress.stage(imgs.len() as u64, "LFW detect");
    let res: Vec<(PathBuf, bool, usize)> = imgs
        .par_iter()
        .map(|i| {
            let r = found_central(engine, &i.path, opts);
            pb.inc();
            (
                i.path.clone(),
                r.as_ref().map(|x| x.0).unwrap_or(false),
                r.map(|x| x.1).unwrap_or(0),
            )
        })
        .collect();
    drop(pb);
    Ok(LfwFound {
        images: res.len(),
        found: res.iter().filter(|r| r.1).count(),
        images_with_several_faces: res.iter().filter(|r| r.2 > 1).count(),
        missed: res.into_iter().filter(|r| !r.1).map(|r| r.0).collect(),
    })
}

/// Whether a face's centre lies in the central 40 % (0.3–0.7 of each side), and
/// how many faces there are.
fn found_central(engine: &Engine, path: &Path, opts: &DetectOptions) -> Result<(bool, usize)> {
    let img = load_image(engine, path)?;
    let faces = engine.detect(&img, opts)?;
    let (w, h) = (img.width() as f32, img.height() as f32);
    let central = faces.iter().any(|f| {
        let c = f.bounding_box_pixels.center();
        c.x > 0.3 * w && c.x < 0.7 * w && c.y > 0.3 * h && c.y < 0.7 * h
    });
    Ok((central, faces.len()))
}
