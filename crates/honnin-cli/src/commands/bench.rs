//! `honnin bench [IMG…] [--threads 1,2]`: per-stage latency and throughput.
//!
//! Latency is measured one request at a time (median and p95 per stage), on a pool
//! of one thread and of each `--threads` count; throughput runs whole requests (decode → detect → attributes → templates
//! of every face) on a pool of N threads and reports faces per second.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use honnin_engine::align::align_face;
use serde::Serialize;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Images to run (default: the repository's test fixtures).
    pub images: Vec<PathBuf>,
    /// Thread counts for the throughput runs.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 2])]
    pub threads: Vec<usize>,
    /// Timed repetitions per image for the latency run.
    #[arg(long, default_value_t = 30)]
    pub iterations: usize,
    /// Requests per thread count for the throughput run.
    #[arg(long, default_value_t = 60)]
    pub requests: usize,
    /// Faces wanted per image: 1 takes the largest-face path (quick pass first), as
    /// compare, search-by-image and liveness do; 100 is `detect`'s default.
    #[arg(long, default_value_t = 1)]
    pub max_faces: usize,
    /// Write the JSON report here as well as printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Serialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
struct Stat {
    median_ms: f64,
    p95_ms: f64,
    mean_ms: f64,
    samples: usize,
}

fn stat(mut v: Vec<f64>) -> Stat {
    if v.is_empty() {
        return Stat::default();
    }
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Stat {
        median_ms: q(0.5),
        p95_ms: q(0.95),
        mean_ms: v.iter().sum::<f64>() / v.len() as f64,
        samples: v.len(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageLatency {
    image: PathBuf,
    width: u32,
    height: u32,
    faces: usize,
    decode: Stat,
    detect: Stat,
    attributes: Stat,
    align: Stat,
    embed_per_face: Stat,
    /// decode + detect + attributes + align + embed of the largest face.
    end_to_end_first_face: Stat,
    /// detect + align + embed of the largest face (the figure the speed target names).
    detect_align_embed: Stat,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LatencyRun {
    threads: usize,
    images: Vec<ImageLatency>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Throughput {
    threads: usize,
    requests: usize,
    faces: usize,
    seconds: f64,
    requests_per_second: f64,
    faces_per_second: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    command: String,
    template_model: String,
    max_faces: usize,
    cpu: String,
    logical_cpus: usize,
    latency: Vec<LatencyRun>,
    throughput: Vec<Throughput>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn default_images() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"));
    ["obama.jpg", "biden.jpg", "t1.jpg"]
        .iter()
        .map(|f| dir.join(f))
        .collect()
}

pub fn run(eargs: &EngineArgs, args: BenchArgs) -> Result<()> {
    let engine = common::engine(eargs, false)?;
    let opts = honnin_engine::DetectOptions {
        max_faces: args.max_faces,
        ..common::detect_options(eargs)
    };
    let paths = if args.images.is_empty() {
        default_images()
    } else {
        args.images.clone()
    };
    let blobs: Vec<(PathBuf, Vec<u8>)> = paths
        .iter()
        .map(|p| {
            Ok((
                p.clone(),
                std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
            ))
        })
        .collect::<Result<_>>()?;

    // Latency: one request at a time, on pools of 1 and more threads (with more, the
    // recognizers of one request run in parallel).
    let mut latency_by_threads = Vec::new();
    for &n in &args.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()?;
        let mut latency = Vec::new();
        for (path, bytes) in &blobs {
            let r = pool.install(|| -> Result<ImageLatency> {
                let mut s: [Vec<f64>; 7] = Default::default();
                let mut faces_n = 0;
                let (mut w, mut h) = (0, 0);
                for it in 0..args.iterations + 3 {
                    let t0 = Instant::now();
                    let img = engine.decode(bytes)?;
                    let d_dec = ms(t0);
                    let t = Instant::now();
                    let raw = engine.detect_raw(&img, &opts)?;
                    let d_det = ms(t);
                    let t = Instant::now();
                    let faces: Vec<_> = raw.iter().map(|d| engine.describe(&img, d)).collect();
                    let d_attr = ms(t);
                    let (mut d_align, mut d_embed) = (0.0, 0.0);
                    if let Some(f) = faces.first() {
                        let t = Instant::now();
                        let chip = align_face(&img.rgb, &f.landmark_points())
                            .context("degenerate landmarks")?;
                        d_align = ms(t);
                        let t = Instant::now();
                        engine.template_from_chip(&chip)?;
                        d_embed = ms(t);
                    }
                    if it >= 3 {
                        s[0].push(d_dec);
                        s[1].push(d_det);
                        s[2].push(d_attr);
                        s[3].push(d_align);
                        s[4].push(d_embed);
                        s[5].push(d_dec + d_det + d_attr + d_align + d_embed);
                        s[6].push(d_det + d_align + d_embed);
                    }
                    faces_n = faces.len();
                    (w, h) = (img.width(), img.height());
                }
                let [a, b, c, d, e, f, g] = s;
                Ok(ImageLatency {
                    image: path.clone(),
                    width: w,
                    height: h,
                    faces: faces_n,
                    decode: stat(a),
                    detect: stat(b),
                    attributes: stat(c),
                    align: stat(d),
                    embed_per_face: stat(e),
                    end_to_end_first_face: stat(f),
                    detect_align_embed: stat(g),
                })
            })?;
            latency.push(r);
        }
        latency_by_threads.push(LatencyRun {
            threads: n,
            images: latency,
        });
    }

    // Throughput: whole requests on N threads.
    let mut throughput = Vec::new();
    for &n in &args.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()?;
        let jobs: Vec<usize> = (0..args.requests).map(|i| i % blobs.len()).collect();
        let t = Instant::now();
        let faces: usize = pool.install(|| {
            use rayon::prelude::*;
            jobs.par_iter()
                .map(|&i| -> Result<usize> {
                    let img = engine.decode(&blobs[i].1)?;
                    let faces = engine.detect(&img, &opts)?;
                    Ok(engine.templates(&img, &faces)?.len())
                })
                .collect::<Result<Vec<_>>>()
                .map(|v| v.iter().sum())
        })?;
        let secs = t.elapsed().as_secs_f64();
        throughput.push(Throughput {
            threads: n,
            requests: args.requests,
            faces,
            seconds: secs,
            requests_per_second: args.requests as f64 / secs,
            faces_per_second: faces as f64 / secs,
        });
    }

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let report = Report {
        command: common::command_line(),
        template_model: engine.template_model().to_string(),
        max_faces: args.max_faces,
        cpu,
        logical_cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        latency: latency_by_threads,
        throughput,
    };
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(out) = &args.out {
        common::write_json(out, &report)?;
    }
    for (run, l) in report
        .latency
        .iter()
        .flat_map(|r| r.images.iter().map(move |l| (r, l)))
    {
        eprintln!(
            "{} thread(s), {} ({}x{}, {} face(s)): detect+align+embed median {:.1} ms (p95 {:.1}); detect {:.1}, embed {:.1}, decode {:.1}",
            run.threads,
            l.image.display(),
            l.width,
            l.height,
            l.faces,
            l.detect_align_embed.median_ms,
            l.detect_align_embed.p95_ms,
            l.detect.median_ms,
            l.embed_per_face.median_ms,
            l.decode.median_ms
        );
    }
    for t in &report.throughput {
        eprintln!(
            "{} thread(s): {:.1} faces/s, {:.1} requests/s",
            t.threads, t.faces_per_second, t.requests_per_second
        );
    }
    Ok(())
}
