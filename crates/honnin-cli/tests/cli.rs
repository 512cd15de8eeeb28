//! End-to-end tests of the `honnin` binary on the repository's fixtures.

use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

fn honnin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_honnin"))
        .args(args)
        .env("HONNIN_NO_PROGRESS", "1")
        .output()
        .expect("run honnin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tmp(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("honnin-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn detect_json_lists_faces_with_attributes() {
    let (code, out, err) = honnin(&["detect", "--json", &fixture("t1.jpg")]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let faces = v[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 6);
    for key in [
        "boundingBox",
        "boundingBoxPixels",
        "landmarks",
        "pose",
        "quality",
        "confidence",
        "qualityForRecognition",
    ] {
        assert!(faces[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(faces[0]["landmarks"][0]["type"], "eyeLeft");
}

#[test]
fn detect_annotates_an_image() {
    let out = std::env::temp_dir().join(format!("honnin-annot-{}.png", std::process::id()));
    let (code, _, err) = honnin(&[
        "detect",
        &fixture("obama.jpg"),
        "--annotate",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (910, 1137));
    // Some pure-green box pixels were drawn.
    assert!(img.pixels().any(|p| p.0 == [0, 230, 0]));
}

#[test]
fn compare_matches_the_same_person_only() {
    let (code, out, err) = honnin(&[
        "compare",
        &fixture("obama.jpg"),
        &fixture("obama2.jpg"),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matches"][0]["isMatch"], true, "{v}");
    assert_eq!(v["threshold"], 70.0);
    assert!((v["thresholdFmr"].as_f64().unwrap() - 1e-5).abs() < 1e-9);
    let (code, out, _) = honnin(&[
        "compare",
        &fixture("obama.jpg"),
        &fixture("t1.jpg"),
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let m = v["matches"].as_array().unwrap();
    assert_eq!(m.len(), 6, "every face of the target is compared");
    assert!(m.iter().all(|x| x["isMatch"] == false));
}

#[test]
fn bad_inputs_exit_non_zero_with_a_stable_code() {
    let cases: Vec<(String, &str)> = vec![
        (
            tmp("notes.txt", b"this is not an image at all"),
            "error[InvalidImageFormat]",
        ),
        (tmp("empty.jpg", b""), "error[EmptyImage]"),
        (
            {
                let b = std::fs::read(fixture("obama.jpg")).unwrap();
                tmp("cut.jpg", &b[..b.len() / 3])
            },
            "error[CorruptImage]",
        ),
        (
            {
                let mut b = std::fs::read(fixture("obama.jpg")).unwrap();
                b.resize(6 * 1024 * 1024, 0);
                tmp("huge.jpg", &b)
            },
            "error[ImageTooLarge]",
        ),
    ];
    for (path, want) in cases {
        let (code, _, err) = honnin(&["detect", &path]);
        assert_eq!(code, 1, "{path}: {err}");
        assert!(err.contains(want), "{path}: expected {want} in {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let (code, _, err) = honnin(&["detect", "/nonexistent/file.jpg"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn compare_without_a_face_says_so() {
    let blank = image::RgbImage::from_pixel(200, 200, image::Rgb([90, 90, 90]));
    let mut png = std::io::Cursor::new(Vec::new());
    blank.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let path = tmp("blank.png", &png.into_inner());
    let (code, _, err) = honnin(&["compare", &path, &fixture("obama.jpg")]);
    assert_eq!(code, 1);
    assert!(err.contains("error[NoFaceDetected]"), "{err}");
}

#[test]
fn eval_pairs_reads_a_list_and_reports() {
    let list = format!(
        "{}\t{}\tsame\n{}\t{}\tdiff\n{}\t{}\tdiff\n",
        fixture("obama.jpg"),
        fixture("obama2.jpg"),
        fixture("obama.jpg"),
        fixture("biden.jpg"),
        fixture("obama2.jpg"),
        fixture("biden.jpg")
    );
    let path = tmp("pairs.tsv", list.as_bytes());
    let out = std::env::temp_dir().join(format!("honnin-pairs-{}", std::process::id()));
    let (code, _, err) = honnin(&[
        "eval",
        "pairs",
        "--list",
        &path,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["genuinePairs"], 1);
    assert_eq!(v["impostorPairs"], 2);
    assert_eq!(v["auc"], 1.0);
    assert!(out.join("det.svg").is_file());
}
