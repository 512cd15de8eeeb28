//! Passive presentation-attack detection (PAD) on a single frame: `fr_liveness`.
//!
//! `fr_liveness.onnx` (npm `faceplugin-face-recognition-js@0.0.1`, MiniFASNet-like, see
//! `models/MODELS.md`) classifies a face crop into three classes, class 0 being a live
//! face. It looks at the face *and its surroundings* — paper edges, screen bezels,
//! moiré, reflections — so the crop is taken from the full frame, 2.7× the face box
//! around its centre, not from an aligned face chip (on tight face crops the model
//! rejects most live faces).
//!
//! Preprocessing, as the network was trained (MiniFASNet's `CropImage`):
//! 1. the face box is scaled by 2.7 around its centre (less when the image is too
//!    small for that), then shifted to lie inside the image;
//! 2. that region is resized to 128×128 with plain bilinear interpolation (OpenCV's
//!    `INTER_LINEAR` sampling, no low-pass filter, as the reference implementation
//!    does; an antialiased resize measured worse, see `models/MODELS.md`);
//! 3. pixels are fed raw (0–255) in **BGR** order, NCHW;
//! 4. softmax over the three logits; the live score is the probability of class 0.
//!
//! A passive model alone does not make a liveness check: it misses some screen
//! replays. It is one signal among those of the liveness session.

use std::path::Path;

use image::RgbImage;

use crate::error::{EngineError, ModelError};
use crate::geometry::Rect;
use crate::models::{self, FR_LIVENESS};
use crate::runtime::Network;

/// Side of the square network input, in pixels.
pub const PAD_INPUT_SIZE: u32 = 128;

/// How much context around the face box the crop takes (MiniFASNet's `scale`).
pub const PAD_CROP_SCALE: f32 = 2.7;

/// The model's balanced single-frame threshold on the sets it knows (NUAA prints: APCER
/// and BPCER 0 %; the live video in `replay/`: BPCER 0.81 %; webcam frames: 3.5 %), the
/// default of `honnin eval pad`.
/// It is *not* the liveness session's decision: on phones and in dim light the model
/// puts most live frames below it, so a session treats a score as evidence of an
/// attack only below [`PAD_HARD_EVIDENCE_BELOW`]. Measurements in `models/MODELS.md`
/// ("Presentation-attack detection: measured").
pub const PAD_THRESHOLD: f32 = 0.3;

/// Below this live score a face is *evidence* of a presentation attack: the liveness
/// session's hard `pad` threshold (`Thresholds::pad_hard_below`). Above it the
/// passive score cannot make a session fail (it only lowers the confidence of scores
/// just above it); the session's active checks decide. `fr_liveness` was
/// trained on printed photos and bright webcams: the lowest live frame of any set at
/// hand scored 1.2e-3 (a phone selfie video; 69 % of its frames are below
/// [`PAD_THRESHOLD`]); in the simulator fed with those frames, two session medians in
/// two runs fell below it (5.4e-5, 6.0e-5: `uncertain`, not `spoof`), while the median
/// printed-photo frame of NUAA scores 3.8e-6 and the median screen-replay frame 4.4e-5
/// (87 % and 75 % of them below 1e-4). Measured
/// with `honnin eval pad` and `honnin bench-liveness --extra-live`; see
/// `docs/liveness.md` §2.1 and §5.1.
pub const PAD_HARD_EVIDENCE_BELOW: f32 = 1e-4;

const INPUT_SHAPE: [usize; 4] = [1, 3, PAD_INPUT_SIZE as usize, PAD_INPUT_SIZE as usize];

/// Passive single-frame presentation-attack detector (fr_liveness).
#[derive(Debug)]
pub struct PadModel {
    net: Network,
}

impl PadModel {
    /// Loads `models/fr_liveness.onnx` from `model_dir` (None = the engine's default
    /// resolution, [`models::resolve_model_dir`]), verifying its SHA-256 like the other
    /// models, and compiles the network for its one input shape.
    pub fn load(model_dir: Option<&Path>) -> Result<PadModel, ModelError> {
        let dir = models::resolve_model_dir(model_dir);
        let bytes = models::read_verified(&dir, &FR_LIVENESS)?;
        let net = Network::from_onnx(FR_LIVENESS.file, &bytes)?;
        net.prepare(&INPUT_SHAPE).map_err(|e| ModelError::Load {
            path: dir.join(FR_LIVENESS.file).display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(PadModel { net })
    }

    /// Probability (0–1) that the face in `face_box` (pixel [`Rect`] of the face
    /// detector, in `img`'s coordinates) is a live face rather than a presentation
    /// attack. Crops from the FULL image (see the module documentation).
    pub fn live_score(&self, img: &RgbImage, face_box: &Rect) -> Result<f32, EngineError> {
        let crop = pad_crop(img, face_box)?;
        self.score_crop(&crop)
    }

    /// Live probability of an already prepared 128×128 crop (see [`pad_crop`]).
    pub fn score_crop(&self, crop: &RgbImage) -> Result<f32, EngineError> {
        if crop.dimensions() != (PAD_INPUT_SIZE, PAD_INPUT_SIZE) {
            return Err(EngineError::InvalidParameter(format!(
                "the PAD crop must be {PAD_INPUT_SIZE}x{PAD_INPUT_SIZE}, not {}x{}",
                crop.width(),
                crop.height()
            )));
        }
        let out = self.net.run(&INPUT_SHAPE, bgr_planar(crop))?;
        let logits = out
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Inference("fr_liveness: no output".into()))?
            .data;
        if logits.len() != 3 || logits.iter().any(|v| !v.is_finite()) {
            return Err(EngineError::Inference(format!(
                "fr_liveness: expected 3 finite logits, got {logits:?}"
            )));
        }
        Ok(softmax(&logits)[0])
    }
}

/// The region of a `width`×`height` image that the PAD crop takes for `face_box`:
/// the box scaled by [`PAD_CROP_SCALE`] around its centre (by less when the image
/// cannot hold that, keeping the box's aspect ratio), then shifted — never shrunk —
/// to lie inside the image. Errors on an empty image or a box that is empty, not
/// finite, or entirely outside the image.
pub fn pad_crop_rect(width: u32, height: u32, face_box: &Rect) -> Result<Rect, EngineError> {
    let (w, h) = (width as f32, height as f32);
    if width == 0 || height == 0 {
        return Err(EngineError::InvalidParameter("the image is empty".into()));
    }
    let b = face_box;
    let finite = [b.left, b.top, b.width, b.height]
        .iter()
        .all(|v| v.is_finite());
    if !finite || b.width < 1.0 || b.height < 1.0 {
        return Err(EngineError::InvalidParameter(format!(
            "face box {b:?} is empty or not finite"
        )));
    }
    if b.clip(w, h).area() <= 0.0 {
        return Err(EngineError::InvalidParameter(format!(
            "face box {b:?} lies outside the {width}x{height} image"
        )));
    }
    // MiniFASNet's CropImage: the scale shrinks when the image is too small for it.
    let s = PAD_CROP_SCALE.min(w / b.width).min(h / b.height);
    // `b.width · (w / b.width)` can round above `w`: cap it.
    let (cw, ch) = ((b.width * s).min(w), (b.height * s).min(h));
    let c = b.center();
    // Shift into the image (min before max: never a panicking `clamp`).
    let left = (c.x - cw * 0.5).min(w - cw).max(0.0);
    let top = (c.y - ch * 0.5).min(h - ch).max(0.0);
    Ok(Rect::new(left, top, cw, ch))
}

/// The 128×128 PAD input for `face_box`: [`pad_crop_rect`] resampled bilinearly
/// (OpenCV `INTER_LINEAR` convention: pixel centres at +0.5, no low-pass filter).
pub fn pad_crop(img: &RgbImage, face_box: &Rect) -> Result<RgbImage, EngineError> {
    let r = pad_crop_rect(img.width(), img.height(), face_box)?;
    let n = PAD_INPUT_SIZE as usize;
    // Per output column (row): the two source columns (rows) and the weight of the second.
    let taps = |start: f32, len: f32, size: u32| -> Vec<(usize, usize, f32)> {
        let step = len / n as f32;
        let last = size as usize - 1;
        (0..n)
            .map(|i| {
                let f = (start + (i as f32 + 0.5) * step - 0.5).clamp(0.0, last as f32);
                let i0 = (f.floor() as usize).min(last);
                (i0, (i0 + 1).min(last), f - i0 as f32)
            })
            .collect()
    };
    let xs = taps(r.left, r.width, img.width());
    let ys = taps(r.top, r.height, img.height());
    let (src, stride) = (img.as_raw(), img.width() as usize * 3);
    let mut out = vec![0u8; n * n * 3];
    for (oy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (row0, row1) = (&src[y0 * stride..], &src[y1 * stride..]);
        for (ox, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = row0[x0 * 3 + c] as f32 * (1.0 - fx) + row0[x1 * 3 + c] as f32 * fx;
                let bot = row1[x0 * 3 + c] as f32 * (1.0 - fx) + row1[x1 * 3 + c] as f32 * fx;
                out[(oy * n + ox) * 3 + c] =
                    (top * (1.0 - fy) + bot * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage::from_raw(n as u32, n as u32, out)
        .ok_or_else(|| EngineError::Inference("PAD crop buffer has the wrong size".into()))
}

/// Planar BGR, raw 0–255 (the network's input layout).
fn bgr_planar(crop: &RgbImage) -> Vec<f32> {
    let plane = (crop.width() * crop.height()) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (i, p) in crop.pixels().enumerate() {
        data[i] = p[2] as f32;
        data[plane + i] = p[1] as f32;
        data[2 * plane + i] = p[0] as f32;
    }
    data
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    fn assert_inside(r: &Rect, w: u32, h: u32) {
        let eps = 1e-3;
        assert!(
            r.left >= -eps
                && r.top >= -eps
                && r.right() <= w as f32 + eps
                && r.bottom() <= h as f32 + eps,
            "{r:?} leaves the {w}x{h} image"
        );
        assert!(r.width > 0.0 && r.height > 0.0, "{r:?}");
    }

    #[test]
    fn crop_is_the_scaled_box_when_it_fits() {
        let r = pad_crop_rect(1000, 1000, &Rect::new(450.0, 400.0, 100.0, 120.0)).unwrap();
        assert!((r.width - 270.0).abs() < 1e-3 && (r.height - 324.0).abs() < 1e-3);
        let c = r.center();
        assert!((c.x - 500.0).abs() < 1e-3 && (c.y - 460.0).abs() < 1e-3);
    }

    #[test]
    fn crop_stays_inside_the_image_for_boxes_at_the_border() {
        let (w, h) = (640, 480);
        let boxes = [
            Rect::new(0.0, 0.0, 100.0, 120.0),
            Rect::new(-30.0, -20.0, 100.0, 120.0),
            Rect::new(580.0, 400.0, 100.0, 120.0),
            Rect::new(600.0, 0.0, 60.0, 70.0),
            Rect::new(0.0, 430.0, 60.0, 70.0),
            Rect::new(200.0, 100.0, 300.0, 300.0), // 2.7x does not fit: scale shrinks
            Rect::new(-100.0, -100.0, 900.0, 700.0), // larger than the image
        ];
        for b in &boxes {
            let r = pad_crop_rect(w, h, b).unwrap();
            assert_inside(&r, w, h);
            // The aspect ratio of the box is kept.
            assert!(
                (r.width / r.height - b.width / b.height).abs() < 1e-3,
                "{b:?} → {r:?}"
            );
        }
        // At the left border the crop is shifted, not shrunk.
        let r = pad_crop_rect(w, h, &boxes[0]).unwrap();
        assert!(r.left.abs() < 1e-3 && (r.width - 270.0).abs() < 1e-3);
        // Near the right/bottom border too.
        let r = pad_crop_rect(w, h, &boxes[2]).unwrap();
        assert!((r.right() - 640.0).abs() < 1e-3 && (r.bottom() - 480.0).abs() < 1e-3);
    }

    #[test]
    fn crop_fits_when_the_image_limits_the_scale() {
        // Boxes whose 2.7x crop does not fit: the capped scale must not round the crop
        // past the image edge (it once made a `clamp` panic).
        for (w, h) in [(640u32, 480u32), (368, 656), (250, 250), (1001, 97)] {
            for k in 0..400 {
                let bw = 20.0 + k as f32 * 1.37;
                let bh = bw * (1.0 + (k % 7) as f32 * 0.05);
                for (l, t) in [
                    (0.0, 0.0),
                    (w as f32 * 0.3, h as f32 * 0.2),
                    (w as f32 - 10.0, h as f32 - 10.0),
                ] {
                    let b = Rect::new(l, t, bw, bh);
                    if let Ok(r) = pad_crop_rect(w, h, &b) {
                        assert!(r.left >= 0.0 && r.top >= 0.0, "{b:?} → {r:?}");
                        assert!(
                            r.right() <= w as f32 + 1e-3 && r.bottom() <= h as f32 + 1e-3,
                            "{b:?} → {r:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bad_boxes_are_rejected_not_panics() {
        for b in [
            Rect::new(10.0, 10.0, 0.0, 50.0),
            Rect::new(10.0, 10.0, -5.0, 50.0),
            Rect::new(f32::NAN, 10.0, 50.0, 50.0),
            Rect::new(10.0, 10.0, f32::INFINITY, 50.0),
            Rect::new(700.0, 10.0, 50.0, 50.0),
            Rect::new(-80.0, -80.0, 50.0, 50.0),
        ] {
            let err = pad_crop_rect(640, 480, &b).unwrap_err();
            assert_eq!(err.code(), "InvalidParameter", "{b:?}");
        }
        assert!(pad_crop_rect(0, 480, &Rect::new(0.0, 0.0, 10.0, 10.0)).is_err());
    }

    #[test]
    fn crop_samples_the_region() {
        // A horizontal ramp: the crop's left and right columns take the region's ends.
        let img = RgbImage::from_fn(400, 300, |x, _| image::Rgb([(x * 255 / 399) as u8, 0, 9]));
        let crop = pad_crop(&img, &Rect::new(150.0, 100.0, 50.0, 50.0)).unwrap();
        assert_eq!(crop.dimensions(), (128, 128));
        let r = pad_crop_rect(400, 300, &Rect::new(150.0, 100.0, 50.0, 50.0)).unwrap();
        let left = crop.get_pixel(0, 64)[0] as f32;
        let right = crop.get_pixel(127, 64)[0] as f32;
        assert!(
            (left - r.left * 255.0 / 399.0).abs() < 3.0,
            "{left} vs {r:?}"
        );
        assert!(
            (right - r.right() * 255.0 / 399.0).abs() < 3.0,
            "{right} vs {r:?}"
        );
        assert_eq!(crop.get_pixel(64, 64)[2], 9);
    }

    #[test]
    fn input_is_planar_bgr_and_softmax_sums_to_one() {
        let crop = RgbImage::from_pixel(2, 1, image::Rgb([10, 20, 30]));
        assert_eq!(bgr_planar(&crop), vec![30.0, 30.0, 20.0, 20.0, 10.0, 10.0]);
        let p = softmax(&[2.0, -1.0, 0.5]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[0] > p[2] && p[2] > p[1]);
        let p = softmax(&[1000.0, -1000.0, 0.0]);
        assert!((p[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn pad_model_is_shareable() {
        fn check<T: Send + Sync + std::fmt::Debug>() {}
        check::<PadModel>();
    }

    fn model() -> &'static PadModel {
        static M: OnceLock<PadModel> = OnceLock::new();
        M.get_or_init(|| PadModel::load(None).expect("fr_liveness.onnx loads and verifies"))
    }

    #[test]
    fn model_loads_and_rejects_wrong_crops() {
        let m = model();
        let err = m.score_crop(&RgbImage::new(64, 64)).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        let s = m.score_crop(&RgbImage::new(128, 128)).unwrap();
        assert!((0.0..=1.0).contains(&s), "{s}");
        let err = m
            .live_score(
                &RgbImage::new(300, 200),
                &Rect::new(400.0, 10.0, 20.0, 20.0),
            )
            .unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
    }

    /// `../shared/data` (or `$HONNIN_DATA_DIR`), when it holds `spoof-samples/`; with
    /// `HONNIN_REQUIRE_DATA` set (CI) a missing folder is an error, not a skip.
    fn data_dir() -> Option<PathBuf> {
        honnin_eval::data::for_test("the PAD sample tests", &["spoof-samples"])
    }

    /// The largest detected face of a sample image, by the engine's detector.
    fn sample(name: &str) -> Option<(RgbImage, Rect)> {
        let Some(dir) = data_dir() else {
            eprintln!(
                "SKIPPED: {name}: ../shared/data/spoof-samples is absent (set HONNIN_DATA_DIR to the data folder)"
            );
            return None;
        };
        let bytes = std::fs::read(dir.join("spoof-samples").join(name)).expect("sample readable");
        let img = crate::decode::decode(&bytes, &Default::default()).expect("sample decodes");
        let det = crate::detect::CenterFace::new(
            Network::from_onnx(
                "centerface.onnx",
                &models::read_verified(&models::resolve_model_dir(None), &models::CENTERFACE)
                    .expect("centerface verifies"),
            )
            .expect("centerface loads"),
        );
        let faces = det
            .detect(
                &img.rgb,
                // The largest-face path (quick pass first, no padded pass), as liveness
                // sessions and `eval pad` use.
                &crate::detect::DetectOptions {
                    max_faces: 1,
                    pad_large_faces: false,
                    ..Default::default()
                },
            )
            .expect("detection runs");
        let face = faces.first().unwrap_or_else(|| panic!("no face in {name}"));
        Some((img.rgb, face.rect))
    }

    #[test]
    fn live_sample_passes_and_attacks_fail() {
        let m = model();
        for (name, live) in [
            ("live.jpg", true),
            ("printed-photo.jpg", false),
            ("tablet-replay.jpg", false),
        ] {
            let Some((img, face)) = sample(name) else {
                return;
            };
            let s = m.live_score(&img, &face).unwrap();
            eprintln!("{name}: live score {s:.4} (threshold {PAD_THRESHOLD})");
            if live {
                assert!(s >= PAD_THRESHOLD, "{name}: {s}");
            } else {
                assert!(s < PAD_THRESHOLD, "{name}: {s}");
            }
        }
    }

    /// Single-thread cost of one `live_score` call (crop + network), printed:
    /// `cargo test --release -p honnin-engine pad::tests::time_live_score -- --ignored --nocapture`
    #[test]
    #[ignore = "timing: run with --release --ignored --nocapture"]
    fn time_live_score() {
        let Some((img, face)) = sample("live.jpg") else {
            return;
        };
        let m = model();
        for _ in 0..5 {
            m.live_score(&img, &face).unwrap();
        }
        let mut t: Vec<f64> = (0..50)
            .map(|_| {
                let s = std::time::Instant::now();
                m.live_score(&img, &face).unwrap();
                s.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        t.sort_by(f64::total_cmp);
        let crop = std::time::Instant::now();
        for _ in 0..50 {
            pad_crop(&img, &face).unwrap();
        }
        let crop_ms = crop.elapsed().as_secs_f64() * 1e3 / 50.0;
        eprintln!(
            "live_score: median {:.2} ms, p95 {:.2} ms, min {:.2} ms (crop alone {crop_ms:.3} ms) over 50 calls",
            t[25], t[47], t[0]
        );
    }
}
