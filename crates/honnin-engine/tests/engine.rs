//! Integration tests of the engine on the face images shipped in `tests/fixtures`
//! (see tests/fixtures/README.md for their origin and licence). They need no data
//! outside the repository.

use std::path::PathBuf;
use std::sync::OnceLock;

use honnin_engine::decode::test_support::with_exif_orientation;
use honnin_engine::{DetectOptions, Engine, EngineConfig, EngineError, Face, QualityLevel};
use image::{ImageFormat, RgbImage};

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| {
        Engine::new(EngineConfig::default()).expect("engine loads with the shipped models")
    })
}

fn detect(bytes: &[u8]) -> Vec<Face> {
    let e = engine();
    let img = e.decode(bytes).unwrap();
    e.detect(&img, &DetectOptions::default()).unwrap()
}

fn encode(img: &RgbImage, fmt: ImageFormat) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, fmt).unwrap();
    out.into_inner()
}

#[test]
fn finds_all_six_people_in_the_group_photo() {
    let faces = detect(&fixture("t1.jpg"));
    assert_eq!(faces.len(), 6, "{faces:#?}");
    // Largest first; every landmark inside (or very near) its box; ratios agree with pixels.
    for w in faces.windows(2) {
        assert!(w[0].bounding_box_pixels.area() >= w[1].bounding_box_pixels.area());
    }
    for f in &faces {
        let b = f.bounding_box_pixels;
        for l in &f.landmarks_pixels {
            assert!(
                l.x > b.left - 5.0
                    && l.x < b.right() + 5.0
                    && l.y > b.top - 5.0
                    && l.y < b.bottom() + 5.0
            );
        }
        assert!((f.bounding_box.left * 1280.0 - b.left).abs() < 0.01);
        assert!((f.bounding_box.height * 886.0 - b.height).abs() < 0.01);
        assert!(f.confidence > 50.0 && f.confidence <= 100.0);
        assert_eq!(f.landmarks.len(), 5);
    }
}

#[test]
fn one_frontal_high_quality_face_in_a_portrait() {
    let faces = detect(&fixture("obama.jpg"));
    assert_eq!(faces.len(), 1);
    let f = &faces[0];
    assert!(
        f.pose.yaw.abs() < 20.0 && f.pose.roll.abs() < 15.0,
        "{:?}",
        f.pose
    );
    assert_eq!(f.quality_for_recognition, QualityLevel::High);
    assert!(f.face_size > 200.0);
}

#[test]
fn same_person_matches_and_different_people_do_not() {
    let e = engine();
    let t = |name: &str| {
        let img = e.decode(&fixture(name)).unwrap();
        let faces = e.detect(&img, &DetectOptions::default()).unwrap();
        e.templates(&img, &faces[..1]).unwrap().remove(0)
    };
    let (o1, o2, b) = (t("obama.jpg"), t("obama2.jpg"), t("biden.jpg"));
    let threshold = e.threshold_for_fmr(1e-5);
    let same = e.compare(&o1, &o2).unwrap();
    let diff = e.compare(&o1, &b).unwrap();
    assert!(
        same.similarity >= threshold,
        "obama vs obama2: {same:?}, threshold {threshold}"
    );
    assert!(
        diff.similarity < e.threshold_for_fmr(1e-3),
        "obama vs biden: {diff:?}"
    );
    // A template compared with itself is the maximum.
    assert!((e.compare(&o1, &o1).unwrap().similarity - 100.0).abs() < 0.5);
    // Binary round trip keeps the comparison.
    let back = honnin_engine::Template::from_bytes(&o2.to_bytes()).unwrap();
    assert_eq!(e.compare(&o1, &back).unwrap(), same);
}

#[test]
fn coordinates_refer_to_the_original_image_at_any_size() {
    let e = engine();
    let img = e.decode(&fixture("obama2.jpg")).unwrap();
    let base = e.detect(&img, &DetectOptions::default()).unwrap();
    // Half size: every coordinate halves (detection runs on a downscaled copy either way).
    let half = image::imageops::resize(
        &img.rgb,
        img.width() / 2,
        img.height() / 2,
        image::imageops::FilterType::Triangle,
    );
    let small = e.decode(&encode(&half, ImageFormat::Png)).unwrap();
    let f = e.detect(&small, &DetectOptions::default()).unwrap();
    assert_eq!(f.len(), 1);
    // Landmarks agree within 4 % of the face height (the detector sees different pixels).
    let tol = 0.04 * f[0].bounding_box_pixels.height;
    for (a, b) in base[0].landmarks_pixels.iter().zip(&f[0].landmarks_pixels) {
        assert!(
            (a.x / 2.0 - b.x).abs() < tol && (a.y / 2.0 - b.y).abs() < tol,
            "{a:?} vs {b:?} (tol {tol})"
        );
    }
    // Ratios are size-independent.
    assert!((base[0].bounding_box.left - f[0].bounding_box.left).abs() < 0.02);
}

#[test]
fn exif_orientation_is_honoured_end_to_end() {
    let e = engine();
    let upright = e.decode(&fixture("obama.jpg")).unwrap();
    let base = e.detect(&upright, &DetectOptions::default()).unwrap();
    // Store the pixels rotated 90° counter-clockwise and tag "rotate 90° CW to display" (6).
    let stored = image::imageops::rotate270(&upright.rgb);
    let tagged = with_exif_orientation(&encode(&stored, ImageFormat::Jpeg), 6);
    let img = e.decode(&tagged).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (upright.width(), upright.height())
    );
    let f = e.detect(&img, &DetectOptions::default()).unwrap();
    assert_eq!(f.len(), 1);
    let (a, b) = (
        base[0].bounding_box_pixels.center(),
        f[0].bounding_box_pixels.center(),
    );
    assert!(
        (a.x - b.x).abs() < 8.0 && (a.y - b.y).abs() < 8.0,
        "{a:?} vs {b:?}"
    );
    assert!(
        f[0].pose.roll.abs() < 15.0,
        "upright face after EXIF rotation: {:?}",
        f[0].pose
    );
}

#[test]
fn a_blank_image_has_no_face() {
    let blank = RgbImage::from_pixel(320, 240, image::Rgb([120, 130, 140]));
    assert!(detect(&encode(&blank, ImageFormat::Png)).is_empty());
}

#[test]
fn bad_inputs_get_distinct_stable_codes() {
    let e = engine();
    let jpeg = fixture("obama.jpg");
    let code = |b: &[u8]| e.decode(b).unwrap_err().code();
    assert_eq!(code(&[]), "EmptyImage");
    assert_eq!(code(b"%PDF-1.4 not an image"), "InvalidImageFormat");
    assert_eq!(code(&jpeg[..jpeg.len() / 2]), "CorruptImage");
    let mut big = jpeg.clone();
    big.resize(5 * 1024 * 1024 + 1, 0);
    assert_eq!(code(&big), "ImageTooLarge");
    let tiny = encode(&RgbImage::new(60, 200), ImageFormat::Png);
    assert_eq!(code(&tiny), "ImageTooSmall");
    let err = EngineError::NoFace;
    assert_eq!(err.code(), "NoFaceDetected");
    // Invalid options are refused, not clamped silently.
    let img = e.decode(&jpeg).unwrap();
    let bad = DetectOptions {
        max_faces: 0,
        ..DetectOptions::default()
    };
    assert_eq!(e.detect(&img, &bad).unwrap_err().code(), "InvalidParameter");
}

#[test]
fn altered_model_is_refused_at_load() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models");
    let dir = std::env::temp_dir().join(format!("honnin-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    let victim = dir.join("centerface.onnx");
    let mut bytes = std::fs::read(&victim).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&victim, bytes).unwrap();
    let err = Engine::new(EngineConfig {
        model_dir: Some(dir.clone()),
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    std::fs::remove_file(&victim).unwrap();
    let err = Engine::new(EngineConfig {
        model_dir: Some(dir.clone()),
        ..EngineConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batch_variants_agree_with_single_calls() {
    let e = engine();
    let imgs: Vec<_> = ["obama.jpg", "biden.jpg", "t1.jpg"]
        .iter()
        .map(|n| e.decode(&fixture(n)).unwrap())
        .collect();
    let batch = e.detect_and_template_batch(&imgs, &DetectOptions::default());
    for (img, r) in imgs.iter().zip(batch) {
        let r = r.unwrap();
        let single = e.detect(img, &DetectOptions::default()).unwrap();
        assert_eq!(r.len(), single.len());
        let t = e.templates(img, &single).unwrap();
        for ((_, bt), st) in r.iter().zip(&t) {
            assert!(e.compare(bt, st).unwrap().similarity > 99.0);
        }
    }
}

#[test]
fn a_face_cropped_at_the_head_keeps_its_landmarks() {
    let e = engine();
    let img = e.decode(&fixture("obama.jpg")).unwrap();
    let full = e.detect(&img, &DetectOptions::default()).unwrap();
    let b = full[0].bounding_box_pixels;
    // A crop that ends at the head, as in passport-style and celebrity crops: the face
    // box grown by 15 % on each side.
    let x0 = (b.left - 0.15 * b.width).max(0.0).floor();
    let y0 = (b.top - 0.15 * b.height).max(0.0).floor();
    let w = (1.3 * b.width).min(img.width() as f32 - x0);
    let h = (1.3 * b.height).min(img.height() as f32 - y0);
    let crop =
        image::imageops::crop_imm(&img.rgb, x0 as u32, y0 as u32, w as u32, h as u32).to_image();
    let tight = e.decode(&encode(&crop, ImageFormat::Png)).unwrap();
    // (confidence, largest landmark error against the full image's landmarks in face
    // heights) of the face found on the crop, if any.
    let measure = |pad: bool| -> Option<(f32, f32)> {
        let o = DetectOptions {
            pad_large_faces: pad,
            ..DetectOptions::default()
        };
        let f = e.detect(&tight, &o).unwrap();
        let f = f.first()?;
        let err = full[0]
            .landmarks_pixels
            .iter()
            .zip(&f.landmarks_pixels)
            .map(|(a, c)| (a.x - x0 - c.x).hypot(a.y - y0 - c.y) / b.height)
            .fold(0.0f32, f32::max);
        Some((f.confidence, err))
    };
    let plain = measure(false);
    let padded = measure(true).expect("the padded pass finds the face");
    eprintln!("plain: {plain:?}; padded: {padded:?}");
    // The padded pass never lowers the confidence (the better score is kept) and puts
    // the landmarks where the full image has them.
    assert!(padded.0 >= plain.map_or(0.0, |p| p.0));
    assert!(padded.1 < 0.05, "padded landmark error {}", padded.1);
}

#[test]
fn a_frame_filling_face_in_a_very_long_image_is_not_padded_past_the_side_cap() {
    let e = engine();
    let img = e.decode(&fixture("obama.jpg")).unwrap();
    let b = e.detect(&img, &DetectOptions::default()).unwrap()[0].bounding_box_pixels;
    // The head (box + 15 %) at the top of a strip 16 times longer than wide: the padded
    // copy would be about 1,900 px long, over the 1,280-px cap of the whole-image pass.
    let side = (1.3 * b.width.max(b.height)) as u32;
    let x0 = (b.center().x - side as f32 / 2.0).max(0.0) as u32;
    let y0 = (b.center().y - side as f32 / 2.0).max(0.0) as u32;
    let head = image::imageops::crop_imm(&img.rgb, x0, y0, side, side).to_image();
    let mut strip = RgbImage::from_pixel(side, 16 * side, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut strip, &head, 0, 0);
    let strip = e.decode(&encode(&strip, ImageFormat::Png)).unwrap();
    let with = |pad: bool| {
        let o = DetectOptions {
            pad_large_faces: pad,
            ..DetectOptions::default()
        };
        e.detect(&strip, &o).unwrap()
    };
    let (padded, plain) = (with(true), with(false));
    assert_eq!(padded.len(), 1, "{padded:#?}");
    assert_eq!(padded[0].landmarks_pixels, plain[0].landmarks_pixels);
}
