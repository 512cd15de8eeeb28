//! Data test of `honnin eval login` on a small subset of LFW and CFP (CI runs it with
//! the other data tests; see `.ci/run`).
//!
//! `#[ignore]`d so the everyday `cargo test` stays fast and self-contained; run it with
//! `cargo test --workspace --test eval_login -- --ignored`. Without the data folder it
//! skips with a message, unless `HONNIN_REQUIRE_DATA` is set (CI), where a missing
//! folder fails.
//!
//! It checks what must hold whatever the accuracy: counts that add up, FAR that does
//! not rise and FRR that does not fall from `low` to `standard` to `high`, every level
//! in the report (measured or refused), intervals around their rates. No accuracy
//! number is expected here (the full run's are in docs/login.md).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const LEVELS: [&str; 3] = ["low", "standard", "high"];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Checks one list of levels (1:1, or one gallery size of 1:N) and returns the
/// measured levels' (FAR, FRR) in level order.
fn check_levels(what: &str, levels: &Value, genuine: u64, impostor: u64) -> Vec<(f64, f64)> {
    let levels = levels.as_array().unwrap();
    let names: Vec<&str> = levels
        .iter()
        .map(|l| l["level"].as_str().unwrap())
        .collect();
    assert_eq!(names, LEVELS, "{what}: every level, weakest first");
    let mut out = Vec::new();
    let mut last_similarity = f64::NEG_INFINITY;
    let mut refused = false;
    for l in levels {
        let o = &l["outcome"];
        match o["status"].as_str().unwrap() {
            "refused" => {
                refused = true;
                assert!(f(&o["perComparisonFmr"]) < f(&o["floor"]), "{what}: {o}");
            }
            "measured" => {
                assert!(
                    !refused,
                    "{what}: a stricter level measured after a refused one"
                );
                let t = &o["threshold"];
                let sim = f(&t["similarity"]);
                assert!(
                    sim > last_similarity,
                    "{what}: thresholds rise with the level"
                );
                last_similarity = sim;
                let g = &o["genuine"];
                assert_eq!(u(&g["attempts"]), genuine, "{what}: genuine attempts");
                assert_eq!(
                    u(&g["accepted"]) + u(&g["noMatch"]) + u(&g["ambiguous"]) + u(&g["wrongUser"]),
                    genuine,
                    "{what}: genuine outcomes add up"
                );
                let i = &o["impostor"];
                assert_eq!(u(&i["attempts"]), impostor, "{what}: impostor attempts");
                assert!(u(&i["ambiguous"]) <= u(&i["accepted"]));
                let rate = |r: &Value, errors: u64, trials: u64| -> f64 {
                    if trials == 0 {
                        assert!(r.is_null(), "{what}: no attempts, no rate");
                        return 0.0;
                    }
                    assert_eq!(
                        (u(&r["errors"]), u(&r["trials"])),
                        (errors, trials),
                        "{what}"
                    );
                    let (lo, x, hi) = (f(&r["lower"]), f(&r["rate"]), f(&r["upper"]));
                    assert!((x - errors as f64 / trials as f64).abs() < 1e-12);
                    assert!(0.0 <= lo && lo <= x && x <= hi && hi <= 1.0, "{what}: {r}");
                    assert!(hi > 0.0, "{what}: an upper bound even without errors");
                    x
                };
                let far = rate(&o["far"], u(&i["accepted"]), impostor);
                let frr = rate(&o["frr"], genuine - u(&g["accepted"]), genuine);
                out.push((far, frr));
            }
            s => panic!("{what}: unknown status {s}"),
        }
    }
    for w in out.windows(2) {
        assert!(w[1].0 <= w[0].0, "{what}: FAR rose with the level: {out:?}");
        assert!(w[1].1 >= w[0].1, "{what}: FRR fell with the level: {out:?}");
    }
    out
}

#[test]
#[ignore = "data test: needs ../shared/data; CI runs it with --ignored"]
fn eval_login_reports_consistent_levels_on_a_subset() {
    let Some(data) = honnin_eval::data::for_test("the eval login test", &["lfw", "cfp"]) else {
        return;
    };
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(format!("eval-login-{}", std::process::id()));
    // Kept between runs: the subset's templates are computed once.
    let cache = tmp.join("eval-login-cache");
    let run = Command::new(env!("CARGO_BIN_EXE_honnin"))
        .args([
            "eval",
            "login",
            "--lfw",
            data.join("lfw").to_str().unwrap(),
            "--cfp",
            data.join("cfp").to_str().unwrap(),
            "--max-identities",
            "30",
            "--galleries",
            "5:4,20:2,1000:1,all",
            "--out",
            out.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .env("HONNIN_NO_PROGRESS", "1")
        .output()
        .expect("run honnin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    println!("{text}");
    assert!(run.status.success(), "eval login failed:\n{text}");
    assert!(text.contains("command: `"), "the command is printed");
    assert!(text.contains("Windows Hello states FAR < 0.001 %"));
    assert!(text.contains("disjoint from the calibration identities"));

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["command"].as_str().unwrap().contains("eval login"));
    assert!(std::fs::read_to_string(out.join("det.svg"))
        .unwrap()
        .starts_with("<svg"));
    let r = &report["run"];
    assert_eq!(r["splitMatchesCalibration"], true);
    assert_eq!(r["subset"], true);
    let sets = r["sets"].as_array().unwrap();
    let names: Vec<&str> = sets.iter().map(|s| s["set"].as_str().unwrap()).collect();
    assert_eq!(names, ["lfw", "cfp frontal"]);
    for s in sets {
        let set = s["set"].as_str().unwrap();
        let enrolled = u(&s["enrolledIdentities"]);
        let attempts = u(&s["attemptImages"]);
        assert!((20..=30).contains(&enrolled), "{set}: {enrolled} enrolled");
        assert_eq!(u(&s["visitorIdentities"]), 0, "a subset has no visitors");
        assert_eq!(attempts, 2 * enrolled, "{set}: two attempt images each");
        // 1:1: each attempt against its own profile and every other one.
        check_levels(
            &format!("{set} 1:1"),
            &s["oneToOne"],
            attempts,
            attempts * (enrolled - 1),
        );
        assert!(!s["det"].as_array().unwrap().is_empty());
        // 1:N: members' attempts are genuine, everyone else's impostors.
        let galleries = s["oneToN"].as_array().unwrap();
        let labels: Vec<&str> = galleries
            .iter()
            .map(|g| g["label"].as_str().unwrap())
            .collect();
        assert_eq!(labels, ["5", "20", "all"], "{set}: 1000 exceeds the subset");
        assert_eq!(s["skippedGallerySizes"], serde_json::json!([1000]));
        for g in galleries {
            let (size, n) = (u(&g["identities"]), u(&g["galleries"]));
            assert_eq!(u(&g["templates"]), size, "one template per person");
            check_levels(
                &format!("{set} 1:N {}", g["label"]),
                &g["levels"],
                2 * size * n,
                (attempts - 2 * size) * n,
            );
        }
        // The threshold rises with the gallery: a level over more templates is stricter.
        let standard = |g: &Value| {
            g["levels"][1]["outcome"]["threshold"]["similarity"]
                .as_f64()
                .unwrap_or(f64::INFINITY)
        };
        assert!(standard(&galleries[0]) <= standard(&galleries[1]));
        assert!(
            f(&s["oneToOne"][1]["outcome"]["threshold"]["similarity"]) <= standard(&galleries[0])
        );
    }
}
