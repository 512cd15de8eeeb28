//! `honnin bench-service`: the service's own costs, apart from the engine's.
//!
//! * 1:N search on the exact in-memory index at 10k / 100k / 1M synthetic templates:
//!   build rate, resident memory per template, search latency p50/p99 (threshold =
//!   similarity 70, top 100, on the global thread pool).
//! * Start-up: how long `Service::open` takes to load, decrypt and index N faces
//!   from SQLite (the work a restart does), and the insert rate of those rows.
//!
//! Synthetic templates are random unit vectors per recognizer part (the dimension and
//! weighting of the shipped model); half of the queries are noisy copies of an indexed
//! face, so searches also return hits. Per-face engine cost (detect + align + embed)
//! is `honnin bench`'s subject.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use honnin_core::crypto::{template_aad, DataKey};
use honnin_core::index::{CollectionIndex, Weighting};
use honnin_core::{Principal, Service, ServiceConfig};
use honnin_engine::Template;
use honnin_storage::{FaceRow, Store};
use serde::Serialize;

use crate::common;
use crate::EngineArgs;

#[derive(Args, Debug)]
pub struct BenchServiceArgs {
    /// Index sizes for the search benchmark.
    #[arg(long, value_delimiter = ',', default_values_t = vec![10_000usize, 100_000, 1_000_000])]
    pub sizes: Vec<usize>,
    /// Queries per size.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Faces stored for the start-up benchmark (0 skips it).
    #[arg(long, default_value_t = 100_000)]
    pub startup_faces: usize,
    /// Write the JSON report here as well as printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// xorshift64*: fast, deterministic, good enough for synthetic vectors.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Roughly normal (sum of 4 uniforms, centred).
    fn normal(&mut self) -> f32 {
        let mut s = 0.0f32;
        for _ in 0..4 {
            s += (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        }
        (s - 2.0) * 1.732
    }
}

fn unit_parts(rng: &mut Rng, dims: &[usize]) -> Vec<f32> {
    let mut v = Vec::with_capacity(dims.iter().sum());
    for &d in dims {
        let part: Vec<f32> = (0..d).map(|_| rng.normal()).collect();
        let n = part.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        v.extend(part.iter().map(|x| x / n));
    }
    v
}

fn noisy_copy(rng: &mut Rng, v: &[f32], dims: &[usize], noise: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(v.len());
    let mut off = 0;
    for &d in dims {
        let part: Vec<f32> = v[off..off + d]
            .iter()
            .map(|x| x + noise * rng.normal() / (d as f32).sqrt())
            .collect();
        let n = part.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
        out.extend(part.iter().map(|x| x / n));
        off += d;
    }
    out
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchRow {
    templates: usize,
    build_seconds: f64,
    inserts_per_second: f64,
    rss_bytes_per_template: f64,
    index_bytes_per_template: usize,
    search_p50_ms: f64,
    search_p99_ms: f64,
    mean_hits_per_query: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StartupRow {
    faces: usize,
    insert_seconds: f64,
    rows_per_second: f64,
    open_seconds: f64,
    templates_loaded: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    command: String,
    template_model: String,
    dimension: usize,
    threads: usize,
    search: Vec<SearchRow>,
    startup: Option<StartupRow>,
}

pub fn run(engine_args: &EngineArgs, args: BenchServiceArgs) -> Result<()> {
    let engine = Arc::new(common::engine(engine_args, true)?);
    let cal = engine
        .calibration()
        .context("the engine has no calibration")?;
    let dims: Vec<usize> = engine
        .config()
        .recognizers
        .iter()
        .map(|k| k.dim())
        .collect();
    let weighting = Weighting::for_engine(&engine)?;
    let dim = weighting.dim();
    let min_score = cal.score_for_similarity(70.0);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut rows = Vec::new();
    for &n in &args.sizes {
        let before = rss_bytes();
        let mut index = CollectionIndex::new(dim);
        let t0 = Instant::now();
        let mut kept: Vec<Vec<f32>> = Vec::new();
        for i in 0..n {
            let v = unit_parts(&mut rng, &dims);
            if i % (n / 64).max(1) == 0 {
                kept.push(v.clone());
            }
            index.upsert(
                &format!("{i:08x}-0000-4000-8000-000000000000"),
                None,
                &weighting.apply(&v),
            );
        }
        let build = t0.elapsed().as_secs_f64();
        let after = rss_bytes();
        let mut lat = Vec::new();
        let mut hits = 0usize;
        for q in 0..args.queries {
            let query = if q % 2 == 0 {
                let base = &kept[q / 2 % kept.len()];
                noisy_copy(&mut rng, base, &dims, 0.6)
            } else {
                unit_parts(&mut rng, &dims)
            };
            let wq = weighting.apply(&query);
            let t = Instant::now();
            let h = index.search(&wq, min_score, 100, &|_| true);
            lat.push(t.elapsed().as_secs_f64() * 1e3);
            hits += h.len();
        }
        let row = SearchRow {
            templates: n,
            build_seconds: build,
            inserts_per_second: n as f64 / build,
            rss_bytes_per_template: after.saturating_sub(before) as f64 / n as f64,
            index_bytes_per_template: index.bytes_per_template(),
            search_p50_ms: pct(&mut lat, 0.5),
            search_p99_ms: pct(&mut lat, 0.99),
            mean_hits_per_query: hits as f64 / args.queries as f64,
        };
        eprintln!(
            "{n:>9} templates: search p50 {:.2} ms, p99 {:.2} ms; {:.0} B/template resident; built at {:.0}/s",
            row.search_p50_ms, row.search_p99_ms, row.rss_bytes_per_template, row.inserts_per_second
        );
        rows.push(row);
        drop(index);
    }
    let startup = if args.startup_faces > 0 {
        Some(startup(
            engine.clone(),
            &dims,
            args.startup_faces,
            &mut rng,
        )?)
    } else {
        None
    };
    let report = Report {
        command: common::command_line(),
        template_model: engine.template_model().to_string(),
        dimension: dim,
        threads: rayon::current_num_threads(),
        search: rows,
        startup,
    };
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(p) = args.out {
        common::write_json(&p, &report)?;
    }
    Ok(())
}

fn startup(
    engine: Arc<honnin_engine::Engine>,
    dims: &[usize],
    n: usize,
    rng: &mut Rng,
) -> Result<StartupRow> {
    let dir = tempfile_dir()?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let model = engine.template_model().to_string();
    let res = rt.block_on(async {
        let store = Store::open(&url).await?;
        let master = DataKey::generate();
        let svc = Service::open(ServiceConfig::default(), engine.clone(), store.clone(), master.clone()).await?;
        svc.gallery().create_collection(&Principal::system(), "bench").await?;
        let row = store.get_collection("bench").await?.context("collection row")?;
        let key = DataKey::unwrap(&row.wrapped_key, &master, "bench")?;
        drop(svc);
        let t0 = Instant::now();
        let details = r#"{"boundingBox":{"width":0.3,"height":0.4,"left":0.3,"top":0.2},"confidence":99.0,"qualityForRecognition":"high"}"#;
        let mut batch = Vec::with_capacity(1000);
        for i in 0..n {
            let face_id = format!("{i:08x}-0000-4000-8000-000000000000");
            let t = Template {
                model: model.clone(),
                vector: unit_parts(rng, dims),
            };
            batch.push(FaceRow {
                template: key.seal(&t.to_bytes(), &template_aad("bench", &face_id)),
                face_id,
                collection_id: "bench".into(),
                user_id: None,
                external_image_id: None,
                image_id: "00000000-0000-4000-8000-000000000000".into(),
                details: details.into(),
                created_ms: 1,
                updated_ms: 1,
            });
            if batch.len() == 1000 || i + 1 == n {
                store.insert_faces(&batch, None).await?;
                batch.clear();
            }
        }
        let insert = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let svc = Service::open(ServiceConfig::default(), engine, store.clone(), master).await?;
        let open = t1.elapsed().as_secs_f64();
        let loaded = svc.templates_in_memory();
        store.close().await;
        anyhow::Ok(StartupRow {
            faces: n,
            insert_seconds: insert,
            rows_per_second: n as f64 / insert,
            open_seconds: open,
            templates_loaded: loaded,
        })
    });
    std::fs::remove_dir_all(&dir).ok();
    let row = res?;
    eprintln!(
        "start-up: {} faces loaded, decrypted and indexed in {:.2} s (inserted at {:.0} rows/s)",
        row.templates_loaded, row.open_seconds, row.rows_per_second
    );
    anyhow::ensure!(
        row.templates_loaded == n,
        "loaded {} of {n} templates",
        row.templates_loaded
    );
    Ok(row)
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("honnin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
