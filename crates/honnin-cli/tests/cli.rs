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

/// Issue 12, item 18: `honnin detect … | head -1` ends quietly when the reader closes
/// the pipe: no panic, no "Broken pipe" message (the process ends as Unix tools do, by
/// SIGPIPE, or with status 0).
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let files: Vec<String> = (0..8)
        .map(|i| fixture(if i % 2 == 0 { "obama.jpg" } else { "t1.jpg" }))
        .collect();
    let mut args = vec!["detect".to_string(), "--json".to_string()];
    args.extend(files);
    let mut child = Command::new(env!("CARGO_BIN_EXE_honnin"))
        .args(&args)
        .env("HONNIN_NO_PROGRESS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        assert!(!first.is_empty());
        // `head -1`: the reader goes away after one line.
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.to_lowercase().contains("broken pipe"), "{err}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{:?}: {err}",
            out.status
        );
    }
}

/// Issue 12, item 14: a database password never appears in an error, whatever the URL.
#[test]
fn database_passwords_never_appear_in_errors() {
    let dir = std::env::temp_dir().join(format!("honnin-redact-{}", std::process::id()));
    let data = dir.display().to_string();
    for url in [
        "mysql://honnin:s3cret-pw-7@127.0.0.1/db",
        // A closed loopback port: the driver's own error must not quote it either.
        "postgres://honnin:s3cret-pw-7@127.0.0.1:1/db",
        "postgres://honnin:s3cret%2Dpw%2D7@127.0.0.1:1/db",
        "postgres://honnin@127.0.0.1:1/db?password=s3cret-pw-7",
        // Not valid URLs: never shown at all.
        "postgres://honnin:s3cret/pw-7@127.0.0.1:1/db",
        "host=127.0.0.1 port=1 user=honnin password=s3cret-pw-7",
    ] {
        for args in [
            vec![
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                &data,
                "--database",
                url,
            ],
            vec!["keys", "list", "--data-dir", &data, "--database", url],
        ] {
            let (code, out, err) = honnin(&args);
            assert_ne!(code, 0, "{args:?}");
            assert!(
                !out.contains("s3cret") && !err.contains("s3cret"),
                "{args:?}: {out}{err}"
            );
            assert!(
                err.contains("***") || err.contains("?…") || err.contains("not shown"),
                "the URL is shown redacted: {err}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
