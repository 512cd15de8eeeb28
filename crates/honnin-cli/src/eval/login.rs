//! `honnin eval login --lfw DIR --cfp DIR`: face login measured as Windows Hello states
//! its face sign-in — false-accept rate per attempt (FAR) and false-reject rate (FRR) of
//! every security level, 1:1 and 1:N, on the identities that did not set the
//! calibration (the run and its protocol are `honnin_accuracy::login`).
//!
//! Prints one table per mode (markdown), the command that reproduces it and the
//! comparison with Windows Hello's stated target; writes report.json (everything, with
//! the command line) and det.svg (the 1:1 DET curve of each set).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use honnin_accuracy::login::{
    self, windows_hello, GallerySpec, LevelOutcome, LevelResult, LoginSetup, Rate,
    DEFAULT_GALLERIES, WINDOWS_HELLO_FAR, WINDOWS_HELLO_FRR,
};
use honnin_core::config::login::LevelTargets;
use honnin_core::login::levels::SecurityLevel;
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// LFW folder (holds `pairs.txt` and `lfw-deepfunneled/`).
    #[arg(long)]
    pub lfw: Option<PathBuf>,
    /// CFP folder (`<NNN>/frontal/*.jpg`; profile images are not used).
    #[arg(long)]
    pub cfp: Option<PathBuf>,
    /// Templates enrolled per person (k); each enrolled person also needs 2 attempt images.
    #[arg(long, default_value_t = 1)]
    pub enrol_images: usize,
    /// Seed of every random choice (enrolment and attempt images, galleries).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// 1:N galleries as SIZE:REPEATS (random galleries of SIZE enrolled people) or
    /// `all` (every enrolled person); `--galleries none` measures 1:1 only.
    #[arg(long, value_delimiter = ',', default_value = "10:20,100:20,1000:5,all")]
    pub galleries: Vec<String>,
    /// At most this many enrolled people per set, at most k + 4 images each, and no
    /// visitors: a quick check, not the full protocol.
    #[arg(long)]
    pub max_identities: Option<usize>,
    /// Leave out the people with too few images to enrol (they attempt as impostors).
    #[arg(long)]
    pub no_visitors: bool,
    /// Share of each set's identities in the validation part; must be the calibration's.
    #[arg(long, default_value_t = 0.5)]
    pub validation_share: f64,
    /// Salt of the identity split; must be the calibration's.
    #[arg(long, default_value = "honnin-calibration-1")]
    pub split_salt: String,
    /// Folder for template caches (shared with `eval calibrate`); default target/eval/cache.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Folder for report.json and det.svg (default target/eval/login).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `1.2e-5 [3.4e-6, 3.1e-5]`, or `0 [0, 3.7e-6]` with no errors.
fn far_cell(r: &Option<Rate>) -> String {
    match r {
        None => "n/a (no attempts)".into(),
        Some(r) if r.errors == 0 => format!("0 [0, {:.1e}]", r.upper),
        Some(r) => format!("{:.1e} [{:.1e}, {:.1e}]", r.rate, r.lower, r.upper),
    }
}

/// `2.34 % [1.40, 3.62]`.
fn frr_cell(r: &Option<Rate>) -> String {
    match r {
        None => "n/a (no attempts)".into(),
        Some(r) => format!(
            "{:.2} % [{:.2}, {:.2}]",
            r.rate * 100.0,
            r.lower * 100.0,
            r.upper * 100.0
        ),
    }
}

fn counts(r: &Option<Rate>) -> String {
    r.map_or_else(
        || "0 / 0".into(),
        |r| format!("{} / {}", r.errors, r.trials),
    )
}

/// The cells after the level: threshold, FAR, its counts, FRR, its counts.
fn level_cells(l: &LevelResult) -> String {
    match &l.outcome {
        LevelOutcome::Measured(m) => {
            let t = &m.threshold;
            format!(
                "{:.1} ({:.1e}, {}) | {} | {} | {} | {}",
                t.similarity,
                t.per_comparison_fmr,
                if t.fmr_measured {
                    "measured"
                } else {
                    "extrapolated"
                },
                far_cell(&m.far),
                counts(&m.far),
                frr_cell(&m.frr),
                counts(&m.frr),
            )
        }
        LevelOutcome::Refused(r) => format!(
            "refused (beyond calibration: {:.1e} per comparison < floor {:.1e}; at most {} templates) | – | – | – | –",
            r.per_comparison_fmr, r.floor, r.max_comparisons
        ),
    }
}

pub fn run(eargs: &EngineArgs, args: LoginArgs) -> Result<()> {
    let galleries: Vec<GallerySpec> = if args.galleries.iter().any(|g| g == "none") {
        Vec::new()
    } else if args.galleries.is_empty() {
        DEFAULT_GALLERIES.to_vec()
    } else {
        args.galleries
            .iter()
            .map(|g| GallerySpec::parse(g))
            .collect::<Result<_, _>>()?
    };
    if args.lfw.is_none() && args.cfp.is_none() {
        bail!("give at least one identity set: --lfw DIR and/or --cfp DIR");
    }
    let engine = common::engine(eargs, true)?;
    let opts = common::detect_options(eargs);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("login"));
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| super::default_out("cache"));
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("cannot create {}", cache_dir.display()))?;
    let lfw_root = match &args.lfw {
        Some(lfw) => Some(honnin_accuracy::lfw::locate(lfw)?.0),
        None => None,
    };
    let setup = LoginSetup {
        lfw: lfw_root.as_deref(),
        cfp: args.cfp.as_deref(),
        split_salt: &args.split_salt,
        validation_share: args.validation_share,
        cache_dir: &cache_dir,
        enrol_images: args.enrol_images,
        seed: args.seed,
        galleries,
        max_identities: args.max_identities,
        visitors: !args.no_visitors,
        targets: LevelTargets::default(),
    };
    let command = common::command_line();
    let r = login::run(&engine, &opts, &setup, &common::Bars)?;

    let split = if r.split_matches_calibration {
        "disjoint from the calibration identities".to_string()
    } else {
        "WARNING: the calibration in use does not state this split, so these people may have set its thresholds".to_string()
    };
    println!(
        "# face login (honnin eval login) — {}, {} enrolment image(s) per person, seed {}",
        r.template_model, r.enrol_images, r.seed
    );
    println!();
    println!("command: `{command}`");
    println!();
    println!(
        "Identities: the validation part of the identity split (salt {:?}, validation share {}): {split}.{}",
        r.split_salt,
        r.validation_share,
        if r.subset {
            " SUBSET (--max-identities): a quick check, not the full protocol."
        } else {
            ""
        }
    );
    for s in &r.sets {
        println!(
            "- {}: {} identities, {} in the validation part ({} images, {} without a template); {} enrolled (at least {} usable images), {} visitors (too few to enrol, impostors only); {} attempt images; 1:1 EER {:.2} %",
            s.set,
            s.identities,
            s.validation_identities,
            s.validation_images,
            s.validation_without_template,
            s.enrolled_identities,
            r.enrol_images + login::ATTEMPTS_PER_IDENTITY,
            s.visitor_identities,
            s.attempt_images,
            s.eer * 100.0
        );
    }
    for s in &r.sets {
        if let Some(t) = s.top_impostors.first() {
            println!(
                "- {}: closest 1:1 impostor attempt (a false accept may be a labelling error of the set): similarity {:.1}, {} ({}) against the profile of {} (all {} closest in report.json)",
                s.set,
                t.similarity,
                t.probe.display(),
                t.probe_identity,
                t.profile_identity,
                s.top_impostors.len()
            );
        }
    }
    println!();
    println!("1:1 (a claimed user; n = {} template(s) compared). FAR = impostor attempts accepted / impostor attempts, FRR = genuine attempts rejected / genuine attempts; [exact 95 % CI]:", r.enrol_images);
    println!();
    println!("| set | level | target FAR | threshold: similarity (FMR per comparison) | FAR [95 % CI] | false accepts / impostor attempts | FRR [95 % CI] | false rejects / genuine attempts |");
    println!("|---|---|---|---|---|---|---|---|");
    for s in &r.sets {
        for l in &s.one_to_one {
            println!(
                "| {} | {} | {:.0e} | {} |",
                s.set,
                l.level.as_str(),
                l.target_far,
                level_cells(l)
            );
        }
    }
    println!();
    println!("For comparison, 1:1 with the threshold the data themselves would set (the lowest whose measured FAR is at most the target):");
    for s in &r.sets {
        let cells: Vec<String> = s
            .det_at_targets
            .iter()
            .map(|p| {
                format!(
                    "FAR {:.0e}: similarity {:.1}, FRR {:.2} %{}",
                    p.target_fmr,
                    engine
                        .calibration()
                        .map_or(f32::NAN, |c| c.similarity(p.threshold)),
                    p.fnmr * 100.0,
                    if p.low_evidence {
                        " (fewer than 10 impostor attempts expected: weak)"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        println!("- {}: {}", s.set, cells.join("; "));
    }
    if r.sets.iter().any(|s| !s.one_to_n.is_empty()) {
        println!();
        println!("1:N (who is this; n = all templates of the gallery). A genuine attempt succeeds only if the person's own profile alone reaches the threshold; an impostor (a person not in the gallery) is accepted if any profile reaches it; counts summed over the random galleries:");
        println!();
        println!("| set | gallery (people × galleries) | level | threshold: similarity (FMR per comparison) | FAR [95 % CI] | false accepts / impostor attempts | FRR [95 % CI] | failed / genuine attempts | of the failed: ambiguous, wrong person |");
        println!("|---|---|---|---|---|---|---|---|---|");
        for s in &r.sets {
            for g in &s.one_to_n {
                for l in &g.levels {
                    let extra = l.measured().map_or_else(
                        || "–".to_string(),
                        |m| format!("{}, {}", m.genuine.ambiguous, m.genuine.wrong_user),
                    );
                    println!(
                        "| {} | {} ({} × {}) | {} | {} | {} |",
                        s.set,
                        g.label,
                        g.identities,
                        g.galleries,
                        l.level.as_str(),
                        level_cells(l),
                        extra
                    );
                }
            }
            if !s.skipped_gallery_sizes.is_empty() {
                println!(
                    "| {} | {:?}: not measured, only {} enrolled people (see `all`) | | | | | | | |",
                    s.set, s.skipped_gallery_sizes, s.enrolled_identities
                );
            }
        }
    }
    println!();
    let mut hello = Vec::new();
    for s in &r.sets {
        let line = match windows_hello(s) {
            Some(h) => {
                hello.push(json!({"set": s.set, "check": h}));
                format!(
                    "{}: FAR upper 95 % bound {:.1e} ({} {:.0e}), FRR {:.2} % (upper bound {:.2} %; {} {:.0} %) → {}",
                    s.set,
                    h.far_upper,
                    if h.far_met { "<" } else { "not <" },
                    WINDOWS_HELLO_FAR,
                    h.frr * 100.0,
                    h.frr_upper * 100.0,
                    if h.frr_met { "<" } else { "not <" },
                    WINDOWS_HELLO_FRR * 100.0,
                    match (h.far_met, h.frr_met) {
                        (true, true) => "meets it".to_string(),
                        (false, true) => "does not show it: too few impostor attempts (or too many accepted) to bound FAR below 1e-5".to_string(),
                        (true, false) => "does not meet it: FRR is too high".to_string(),
                        (false, false) => "does not meet it (FAR not shown below 1e-5, FRR too high)".to_string(),
                    }
                )
            }
            None => format!("{}: the standard level was not measured", s.set),
        };
        println!(
            "Windows Hello states FAR < 0.001 % with FRR < 5 % for one enrolled user; 1:1 standard level, {line}."
        );
    }

    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let plot = LogLogPlot {
        title: format!("face login 1:1, attempts — {}", r.template_model),
        x_label: "false-accept rate per attempt (FAR)".into(),
        y_label: "false-reject rate (FRR)".into(),
        x_range: (1e-7, 1.0),
        y_range: (1e-4, 1.0),
        series: r
            .sets
            .iter()
            .map(|s| Series {
                name: s.set.clone(),
                points: s.det.iter().map(|p| (p.fmr, p.fnmr)).collect(),
            })
            .collect(),
        markers: SecurityLevel::ALL
            .iter()
            .map(|l| (l.target(&setup.targets), l.as_str().to_string()))
            .collect(),
    };
    std::fs::write(out_dir.join("det.svg"), plot.to_svg())
        .with_context(|| format!("cannot write {}", out_dir.join("det.svg").display()))?;
    let report = json!({
        "command": command,
        "identities": split,
        "windowsHello": {
            "statedTarget": "FAR < 0.001 % with FRR < 5 % for one enrolled user",
            "far": WINDOWS_HELLO_FAR, "frr": WINDOWS_HELLO_FRR,
            "oneToOneStandard": hello,
        },
        "run": r,
    });
    common::write_json(&out_dir.join("report.json"), &report)?;
    println!();
    println!(
        "report: {}, DET: {}",
        out_dir.join("report.json").display(),
        out_dir.join("det.svg").display()
    );
    Ok(())
}
