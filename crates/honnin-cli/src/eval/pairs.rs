//! `honnin eval pairs --list FILE`: pair metrics for any dataset described as lines
//! `path_a<TAB>path_b<TAB>same|diff` (relative paths are relative to the list).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use honnin_eval::datasets::pair_list;
use honnin_eval::metrics::{evaluate, GenuineScores, ScoreHistogram};
use honnin_eval::plot::{LogLogPlot, Series};
use serde_json::json;

use super::scoring::{self, Selection};
use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct PairsArgs {
    /// The pair list.
    #[arg(long)]
    pub list: PathBuf,
    /// Folder for report.json and det.svg (default target/eval/pairs).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which face of an image to use.
    #[arg(long, value_enum, default_value_t = Face::Largest)]
    pub face: Face,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Face {
    Largest,
    Central,
}

pub fn run(eargs: &EngineArgs, args: PairsArgs) -> Result<()> {
    let pairs = pair_list(&args.list)?;
    if pairs.is_empty() {
        bail!("{}: no pairs", args.list.display());
    }
    let engine = common::engine(eargs, false)?;
    let opts = common::detect_options(eargs);
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    for p in &pairs {
        for x in [&p.a, &p.b] {
            if !index.contains_key(x) {
                index.insert(x.clone(), paths.len());
                paths.push(x.clone());
            }
        }
    }
    let sel = match args.face {
        Face::Largest => Selection::Largest,
        Face::Central => Selection::Central,
    };
    let set = scoring::compute(&engine, &paths, &opts, sel);
    let dims = scoring::part_dims(&engine);
    let weights = scoring::calibrated_weights(&engine);
    // Identity for identity-weighted FNMR: the folder of the first image of a pair.
    let mut ids: HashMap<PathBuf, u32> = HashMap::new();
    let mut gen = GenuineScores::default();
    let mut imp = ScoreHistogram::new();
    let mut imp_scores: Vec<f32> = Vec::new();
    let mut parts = vec![0f32; dims.len()];
    let mut missing = 0;
    for p in &pairs {
        let s = match (&set.vectors[index[&p.a]], &set.vectors[index[&p.b]]) {
            (Some(a), Some(b)) => {
                scoring::part_cosines(a, b, &dims, &mut parts);
                scoring::fuse(&parts, &weights)
            }
            _ => {
                missing += 1;
                -1.0
            }
        };
        if p.same {
            let folder = p.a.parent().map(|d| d.to_path_buf()).unwrap_or_default();
            let n = ids.len() as u32;
            let id = *ids.entry(folder).or_insert(n);
            gen.scores.push((s, id));
        } else {
            imp.add(s);
            imp_scores.push(s);
        }
    }
    let report = evaluate(&gen, &imp, &[1e-2, 1e-3, 1e-4, 1e-5, 1e-6]);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| super::default_out("pairs"));
    std::fs::create_dir_all(&out)?;
    let sim = |score: f32| engine.calibration().map(|c| c.similarity(score));
    common::write_json(
        &out.join("report.json"),
        &json!({
            "command": common::command_line(),
            "list": args.list,
            "templateModel": engine.template_model(),
            "pairs": pairs.len(),
            "imagesWithoutTemplate": set.failures(),
            "pairsWithMissingTemplate": missing,
            "genuinePairs": report.genuine_pairs,
            "impostorPairs": report.impostor_pairs,
            "auc": report.auc,
            "eer": report.eer,
            "operatingPoints": report.operating_points.iter().map(|p| json!({
                "targetFmr": p.target_fmr, "threshold": p.threshold, "similarity": sim(p.threshold),
                "measuredFmr": p.measured_fmr, "fnmr": p.fnmr, "fnmrIdentityWeighted": p.fnmr_identity_weighted,
                "lowEvidence": p.low_evidence,
            })).collect::<Vec<_>>(),
            "calibratedThresholds": engine.calibration().map(|c| [1e-3, 1e-4, 1e-5].iter().map(|&f| {
                let t = c.score_for_similarity(c.threshold_for_fmr(f));
                let fnmr = gen.scores.iter().filter(|(s, _)| *s < t).count() as f64 / gen.scores.len().max(1) as f64;
                let fmr = imp_scores.iter().filter(|&&s| s >= t).count() as f64 / imp_scores.len().max(1) as f64;
                json!({"lfwFmr": f, "similarity": c.threshold_for_fmr(f), "fmrHere": fmr, "fnmrHere": fnmr})
            }).collect::<Vec<_>>()),
        }),
    )?;
    let plot = LogLogPlot {
        title: format!("{} — {}", args.list.display(), engine.template_model()),
        x_label: "false-match rate (FMR)".into(),
        y_label: "false-non-match rate (FNMR)".into(),
        x_range: ((1.0 / report.impostor_pairs.max(1) as f64).min(1e-3), 1.0),
        y_range: (1e-4, 1.0),
        series: vec![Series {
            name: "pooled".into(),
            points: report.roc.iter().map(|p| (p.fmr, p.fnmr)).collect(),
        }],
        markers: vec![],
    };
    std::fs::write(out.join("det.svg"), plot.to_svg())?;
    println!(
        "{} pairs ({} genuine, {} impostor), {} image(s) without a template; AUC {:.5}, EER {:.2} %",
        pairs.len(),
        report.genuine_pairs,
        report.impostor_pairs,
        set.failures(),
        report.auc,
        report.eer * 100.0
    );
    for p in &report.operating_points {
        println!(
            "  FMR {:.0e}: FNMR {:.2} % at score {:.3}{}",
            p.target_fmr,
            p.fnmr * 100.0,
            p.threshold,
            if p.low_evidence {
                " (fewer than 10 impostors at this FMR: weak evidence)"
            } else {
                ""
            }
        );
    }
    println!("report: {}", out.join("report.json").display());
    Ok(())
}
