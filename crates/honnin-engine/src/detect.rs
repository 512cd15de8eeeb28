//! Face detection with CenterFace (an anchor-free, stride-4 detector that also
//! predicts five landmarks).
//!
//! The image is first shrunk to the *detection scale* — the smallest scale at which
//! the smallest face the caller wants (`min_face_size`) is still about
//! [`DETECTOR_MIN_FACE_PX`] pixels tall for the network — then padded to a multiple
//! of 32. Boxes and landmarks are mapped back to the original pixel grid.
//!
//! When the detection scale is coarse, landmarks are *refined*: each face is cut
//! out of the full-resolution image at a scale where it is [`REFINE_FACE_PX`] tall and
//! detected again; the landmarks of that second pass replace the coarse ones. This
//! keeps alignment precise (it drives recognition accuracy) while the whole-image
//! pass stays small (it drives latency).
//!
//! A face that fills the frame (a head-and-shoulders crop, a selfie held close) is
//! detected again on a *padded* copy: the image is scaled so the face is
//! [`PAD_FACE_PX`] tall and framed by a plain border [`PAD_MARGIN_FACES`] faces wide
//! on each side. CenterFace was trained on wider scenes; on crops that end at the head
//! it is unsure of itself (confidence under 0.8 on 29 % of CFP's failing frontal pairs)
//! and its landmarks drift. See [`DetectOptions::pad_large_faces`].

use image::RgbImage;

use crate::error::EngineError;
use crate::geometry::{nms, Point, Rect};
use crate::runtime::Network;

/// The smallest face (box height, pixels at the network's input) CenterFace finds reliably.
pub const DETECTOR_MIN_FACE_PX: f32 = 16.0;
/// Long side of the quick pass that looks for large faces first (see [`CenterFace::detect`]).
pub const QUICK_LONG_SIDE: f32 = 160.0;
/// Face height in the refinement crop.
pub const REFINE_FACE_PX: f32 = 64.0;
/// Side of the square refinement crop fed to the network.
pub const REFINE_INPUT_PX: u32 = 128;
/// A face whose box side is at least this share of the image's shorter side fills the
/// frame and is re-detected on a padded copy ([`DetectOptions::pad_large_faces`]).
pub const FRAME_FILLING_SHARE: f32 = 0.5;
/// Face height in the padded copy. Measured on CFP frontal–frontal (all six settings
/// tried improved EER, 2.12 % → 1.98–2.09 %): 64 px, the refinement's size, gave
/// 2.09 %; 96 px 1.98–2.03 %; 128 px 2.04 % (`models/MODELS.md`, "Tight crops").
pub const PAD_FACE_PX: f32 = 96.0;
/// Width of the plain border around the scaled image, in face heights per side
/// (0.25: EER 2.03 %, 0.5: 2.00 %, 1.0: 1.98 % on CFP frontal–frontal at 96 px).
pub const PAD_MARGIN_FACES: f32 = 1.0;
/// The network's output stride.
const STRIDE: usize = 4;
/// IoU above which two detections are the same face.
const NMS_IOU: f32 = 0.3;

/// What to look for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectOptions {
    /// Smallest face to find: box height in pixels of the original image.
    pub min_face_size: f32,
    /// At most this many faces are returned, largest first.
    pub max_faces: usize,
    /// Detector score threshold, 0–1.
    pub min_score: f32,
    /// Cap on the longer side of the whole-image detection pass (bounds latency on huge images).
    pub max_detect_side: u32,
    /// Face height (pixels at the network's input) that `min_face_size` is mapped to;
    /// lower is faster and less sensitive. Default [`DETECTOR_MIN_FACE_PX`].
    pub network_min_face_px: f32,
    /// Re-detect each face on a full-resolution crop for precise landmarks when the
    /// face was smaller than this many pixels at the detection scale (0 = never).
    pub refine_below_px: f32,
    /// Re-detect faces that fill the frame (box side ≥ [`FRAME_FILLING_SHARE`] of the
    /// image's shorter side) on a padded copy, whose landmarks and score replace the
    /// first pass's when the two boxes overlap (IoU > 0.4). Costs one detector run per
    /// such face on an input of 3–4 × [`PAD_FACE_PX`] a side (≈ 300–390 px; measured in
    /// models/MODELS.md, "Tight crops"). Liveness sessions turn it off: their frames are
    /// scored by the passive PAD model on the first pass's box, as measured.
    pub pad_large_faces: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        Self {
            min_face_size: 40.0,
            max_faces: 100,
            min_score: 0.5,
            max_detect_side: 1280,
            network_min_face_px: DETECTOR_MIN_FACE_PX,
            refine_below_px: 32.0,
            pad_large_faces: true,
        }
    }
}

/// One detection in original-image pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawDetection {
    /// The face box in original-image pixels.
    pub rect: Rect,
    /// Left eye, right eye (as seen in the image), nose tip, left and right mouth corner.
    pub landmarks: [Point; 5],
    /// Detector score, 0–1.
    pub score: f32,
}

/// The CenterFace network and its decoding.
#[derive(Debug)]
pub struct CenterFace {
    net: Network,
}

/// Resized, padded network input and the scale that produced it.
struct Prepared {
    data: Vec<f32>,
    shape: [usize; 4],
}

fn prepare(img: &RgbImage, out_w: u32, out_h: u32) -> Prepared {
    let resized;
    let src = if (out_w, out_h) == img.dimensions() {
        img
    } else {
        resized = crate::geometry::resize_rgb(img, out_w, out_h);
        &resized
    };
    // tract runs this network 15–25 % faster on landscape or square inputs than on
    // portrait ones of fewer pixels (measured: 160×160 in 9.9 ms, 128×160 portrait in
    // 12.3 ms), so portrait inputs are padded to square.
    let ph = (src.height() as usize).div_ceil(32) * 32;
    let pw = ((src.width() as usize).div_ceil(32) * 32).max(ph);
    let plane = pw * ph;
    let mut data = vec![0f32; 3 * plane];
    for (x, y, p) in src.enumerate_pixels() {
        let i = y as usize * pw + x as usize;
        data[i] = p[0] as f32;
        data[plane + i] = p[1] as f32;
        data[2 * plane + i] = p[2] as f32;
    }
    Prepared {
        data,
        shape: [1, 3, ph, pw],
    }
}

impl CenterFace {
    /// Wraps the loaded `centerface.onnx` network (see [`crate::models::CENTERFACE`]).
    pub fn new(net: Network) -> Self {
        Self { net }
    }

    /// Scale (≤ 1) at which the whole image is searched.
    pub fn detection_scale(width: u32, height: u32, opts: &DetectOptions) -> f32 {
        let long = width.max(height).max(1) as f32;
        let by_face = opts.network_min_face_px.max(4.0) / opts.min_face_size.max(1.0);
        let by_side = opts.max_detect_side.max(32) as f32 / long;
        by_face.min(by_side).min(1.0)
    }

    /// Runs the network on `img` resized by `scale` and decodes faces in `img` pixels.
    fn detect_at(
        &self,
        img: &RgbImage,
        scale: f32,
        min_score: f32,
    ) -> Result<Vec<RawDetection>, EngineError> {
        let w = ((img.width() as f32 * scale).round() as u32).max(1);
        let h = ((img.height() as f32 * scale).round() as u32).max(1);
        let sx = w as f32 / img.width() as f32;
        let sy = h as f32 / img.height() as f32;
        let p = prepare(img, w, h);
        let out = self.net.run(&p.shape, p.data)?;
        if out.len() < 4 {
            return Err(EngineError::Inference(format!(
                "centerface: expected 4 outputs, got {}",
                out.len()
            )));
        }
        let (heat, scl, off, lms) = (&out[0], &out[1], &out[2], &out[3]);
        let fh = heat.shape[2];
        let fw = heat.shape[3];
        let plane = fh * fw;
        if scl.data.len() < 2 * plane || off.data.len() < 2 * plane || lms.data.len() < 10 * plane {
            return Err(EngineError::Inference(
                "centerface: output shapes disagree".into(),
            ));
        }
        let mut cands: Vec<(f32, Rect, [Point; 5])> = Vec::new();
        for cy in 0..fh {
            for cx in 0..fw {
                let i = cy * fw + cx;
                let s = heat.data[i];
                // NaN scores fail this test too.
                if s.is_nan() || s <= min_score {
                    continue;
                }
                let bh = scl.data[i].exp() * STRIDE as f32;
                let bw = scl.data[plane + i].exp() * STRIDE as f32;
                let oy = off.data[i];
                let ox = off.data[plane + i];
                let x1 = (cx as f32 + ox + 0.5) * STRIDE as f32 - bw / 2.0;
                let y1 = (cy as f32 + oy + 0.5) * STRIDE as f32 - bh / 2.0;
                if !(bw.is_finite() && bh.is_finite() && x1.is_finite() && y1.is_finite()) {
                    continue;
                }
                let mut lm = [Point::default(); 5];
                for (j, l) in lm.iter_mut().enumerate() {
                    let ly = lms.data[(2 * j) * plane + i];
                    let lx = lms.data[(2 * j + 1) * plane + i];
                    *l = Point::new((lx * bw + x1) / sx, (ly * bh + y1) / sy);
                }
                let rect = Rect::new(x1 / sx, y1 / sy, bw / sx, bh / sy);
                cands.push((s, rect, lm));
            }
        }
        let boxes: Vec<(f32, Rect)> = cands.iter().map(|c| (c.0, c.1)).collect();
        Ok(nms(&boxes, NMS_IOU)
            .into_iter()
            .map(|k| RawDetection {
                rect: cands[k].1,
                landmarks: cands[k].2,
                score: cands[k].0,
            })
            .collect())
    }

    /// Re-detects `det` on a crop of the full-resolution image where the face is
    /// [`REFINE_FACE_PX`] tall; returns the refined detection (or `det` unchanged
    /// if the second pass finds nothing that overlaps it).
    fn refine(&self, img: &RgbImage, det: &RawDetection) -> Result<RawDetection, EngineError> {
        let side = REFINE_INPUT_PX as f32;
        let face = det.rect.height.max(det.rect.width).max(1.0);
        let s = REFINE_FACE_PX / face; // crop pixels per original pixel
        let c = det.rect.center();
        let half = side / (2.0 * s); // half crop side in original pixels
        let (x0, y0) = (c.x - half, c.y - half);
        // Sample the crop (border pixels replicate outside the image).
        let t = crate::geometry::Similarity {
            a: 1.0 / s,
            b: 0.0,
            tx: x0,
            ty: y0,
        };
        let crop = crate::geometry::warp_similarity(img, &t, REFINE_INPUT_PX, REFINE_INPUT_PX);
        let found = self.detect_at(&crop, 1.0, 0.3)?;
        Ok(same_face(det, &found, (s, s), Point::new(x0, y0)))
    }

    /// Re-detects a face that fills the frame on a copy of the image scaled so the face
    /// is [`PAD_FACE_PX`] tall, inside a border [`PAD_MARGIN_FACES`] faces wide filled
    /// with the mean colour of the image's edge (a plain fill, not replicated edge
    /// pixels, which draw streaks the detector reads as structure). Returns the
    /// overlapping detection of that pass, or `det` unchanged if there is none.
    ///
    /// The copy is bounded like the whole-image pass: when its longer side would
    /// exceed `max_side` (an image far longer than wide), `det` is kept as it is.
    fn redetect_padded(
        &self,
        img: &RgbImage,
        det: &RawDetection,
        max_side: u32,
    ) -> Result<RawDetection, EngineError> {
        let face = det.rect.height.max(det.rect.width).max(1.0);
        let s = PAD_FACE_PX / face;
        let margin = (PAD_MARGIN_FACES * PAD_FACE_PX).round() as u32;
        let long = img.width().max(img.height()) as f32 * s + 2.0 * margin as f32;
        if !long.is_finite() || long > max_side.max(32) as f32 {
            return Ok(*det);
        }
        let sw = ((img.width() as f32 * s).round() as u32).max(1);
        let sh = ((img.height() as f32 * s).round() as u32).max(1);
        let small = crate::geometry::resize_rgb(img, sw, sh);
        let mut canvas = RgbImage::from_pixel(sw + 2 * margin, sh + 2 * margin, edge_mean(&small));
        image::imageops::replace(&mut canvas, &small, margin as i64, margin as i64);
        let found = self.detect_at(&canvas, 1.0, 0.3)?;
        let (sx, sy) = (
            sw as f32 / img.width() as f32,
            sh as f32 / img.height() as f32,
        );
        let m = margin as f32;
        Ok(same_face(
            det,
            &found,
            (sx, sy),
            Point::new(-m / sx, -m / sy),
        ))
    }

    /// Detects faces in `img`, largest first.
    ///
    /// When only the largest face is wanted (`max_faces == 1`, the case of compare,
    /// search-by-image and liveness frames) a quick pass at [`QUICK_LONG_SIDE`] runs
    /// first; if it finds a face, that face is the largest one (a face it cannot see is
    /// smaller than `DETECTOR_MIN_FACE_PX / quick_scale`) and the full pass is skipped.
    pub fn detect(
        &self,
        img: &RgbImage,
        opts: &DetectOptions,
    ) -> Result<Vec<RawDetection>, EngineError> {
        Ok(self.detect_counted(img, opts)?.0)
    }

    /// [`CenterFace::detect`], and how many faces it found beyond `max_faces` (left out,
    /// smallest first). With `max_faces == 1` and a successful quick pass, the count is
    /// the quick pass's (faces too small for it are not counted).
    pub fn detect_counted(
        &self,
        img: &RgbImage,
        opts: &DetectOptions,
    ) -> Result<(Vec<RawDetection>, usize), EngineError> {
        let full = Self::detection_scale(img.width(), img.height(), opts);
        if opts.max_faces == 1 {
            let long = img.width().max(img.height()).max(1) as f32;
            let quick = (QUICK_LONG_SIDE / long).min(1.0);
            if quick < full * 0.8 {
                let found = self.pass(img, quick, opts)?;
                if !found.0.is_empty() {
                    return Ok(found);
                }
            }
        }
        self.pass(img, full, opts)
    }

    fn pass(
        &self,
        img: &RgbImage,
        scale: f32,
        opts: &DetectOptions,
    ) -> Result<(Vec<RawDetection>, usize), EngineError> {
        let mut dets = self.detect_at(img, scale, opts.min_score)?;
        dets.retain(|d| {
            d.rect.height >= opts.min_face_size * 0.8 || d.rect.width >= opts.min_face_size * 0.8
        });
        dets.sort_by(|a, b| b.rect.area().total_cmp(&a.rect.area()));
        let omitted = dets.len().saturating_sub(opts.max_faces);
        dets.truncate(opts.max_faces);
        if opts.refine_below_px > 0.0 {
            for d in dets.iter_mut() {
                if d.rect.height * scale < opts.refine_below_px {
                    *d = self.refine(img, d)?;
                }
            }
        }
        if opts.pad_large_faces {
            let short = img.width().min(img.height()) as f32;
            for d in dets.iter_mut() {
                if d.rect.height.max(d.rect.width) >= FRAME_FILLING_SHARE * short {
                    *d = self.redetect_padded(img, d, opts.max_detect_side)?;
                }
            }
        }
        Ok((dets, omitted))
    }
}

/// The detection of a second pass (`found`, in the pixels of an image that maps to the
/// original by `original = p / scale + offset`) that overlaps `det` most (IoU > 0.4),
/// in original pixels with the better of the two scores; `det` itself if none does.
fn same_face(
    det: &RawDetection,
    found: &[RawDetection],
    scale: (f32, f32),
    offset: Point,
) -> RawDetection {
    let (sx, sy) = scale;
    let back = |p: Point| Point::new(p.x / sx + offset.x, p.y / sy + offset.y);
    let best = found
        .iter()
        .map(|d| {
            let r = Rect::new(
                d.rect.left / sx + offset.x,
                d.rect.top / sy + offset.y,
                d.rect.width / sx,
                d.rect.height / sy,
            );
            (r.iou(&det.rect), d, r)
        })
        .filter(|(iou, _, _)| *iou > 0.4)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, d, r)) => RawDetection {
            rect: r,
            landmarks: d.landmarks.map(back),
            score: det.score.max(d.score),
        },
        None => *det,
    }
}

/// The mean colour of an image's outermost pixels.
fn edge_mean(img: &RgbImage) -> image::Rgb<u8> {
    let (w, h) = img.dimensions();
    let (mut acc, mut n) = ([0u64; 3], 0u64);
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            for (a, v) in acc.iter_mut().zip(p.0) {
                *a += v as u64;
            }
            n += 1;
        }
    }
    let n = n.max(1);
    image::Rgb(acc.map(|a| (a / n) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(left: f32, top: f32, side: f32, score: f32) -> RawDetection {
        RawDetection {
            rect: Rect::new(left, top, side, side),
            landmarks: [Point::new(left + side / 2.0, top + side / 2.0); 5],
            score,
        }
    }

    #[test]
    fn a_second_pass_maps_back_to_the_original_pixels() {
        let det = raw(180.0, 180.0, 200.0, 0.6);
        // The second pass ran on a copy at half scale with a 50-px border: original
        // = p / 0.5 − 100.
        let found = [raw(10.0, 10.0, 20.0, 0.9), raw(150.0, 150.0, 100.0, 0.95)];
        let d = same_face(&det, &found, (0.5, 0.5), Point::new(-100.0, -100.0));
        assert_eq!(d.rect, Rect::new(200.0, 200.0, 200.0, 200.0));
        assert_eq!(d.landmarks[0], Point::new(300.0, 300.0));
        assert_eq!(d.score, 0.95);
        // Nothing overlapping: the first pass stands.
        let d = same_face(&det, &found[..1], (0.5, 0.5), Point::new(-100.0, -100.0));
        assert_eq!(d, det);
    }

    #[test]
    fn the_border_takes_the_mean_colour_of_the_edge() {
        let mut img = RgbImage::from_pixel(4, 4, image::Rgb([200, 100, 0]));
        // The centre does not count.
        for (x, y) in [(1, 1), (1, 2), (2, 1), (2, 2)] {
            img.put_pixel(x, y, image::Rgb([0, 0, 255]));
        }
        assert_eq!(edge_mean(&img), image::Rgb([200, 100, 0]));
    }

    #[test]
    fn detection_scale_follows_min_face_and_side_cap() {
        let o = DetectOptions {
            min_face_size: 64.0,
            max_detect_side: 1280,
            ..Default::default()
        };
        assert_eq!(CenterFace::detection_scale(640, 480, &o), 0.25);
        let o = DetectOptions {
            min_face_size: 8.0,
            ..o
        };
        assert_eq!(CenterFace::detection_scale(640, 480, &o), 1.0);
        assert_eq!(CenterFace::detection_scale(5120, 100, &o), 0.25);
    }

    #[test]
    fn prepare_pads_to_multiples_of_32_in_planar_rgb() {
        let img = RgbImage::from_fn(33, 20, |x, _| image::Rgb([x as u8, 100, 200]));
        let p = prepare(&img, 33, 20);
        assert_eq!(p.shape, [1, 3, 32, 64]);
        let tall = RgbImage::new(40, 100);
        assert_eq!(
            prepare(&tall, 40, 100).shape,
            [1, 3, 128, 128],
            "portrait is padded to square"
        );
        let plane = 32 * 64;
        assert_eq!(p.data[5], 5.0);
        assert_eq!(p.data[plane + 5], 100.0);
        assert_eq!(p.data[2 * plane + 5], 200.0);
        assert_eq!(p.data[40], 0.0, "padding is black");
    }
}
