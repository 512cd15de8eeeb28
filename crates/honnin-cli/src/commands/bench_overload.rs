//! `honnin bench-overload`: what a burst of expensive requests does to a server, and
//! what is left running after their clients gave up (issue 12, item 9).
//!
//! Starts `honnin serve` (this binary, or `--server-bin` to measure another build) on
//! 127.0.0.1 with a short request timeout, sends `--requests` concurrent
//! `POST /v1/detect` with one large JPEG (`--side` pixels square), and reports from
//! `/proc/<pid>`: the resident memory before, at its peak (VmHWM) and after; the
//! answers' statuses; and the CPU time the server still spent after the last answer
//! (work nobody waits for), with how long it took to go idle. Linux only (it reads
//! `/proc`). Not a test: a benchmark whose numbers go to `docs/benchmarks.md`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchOverloadArgs {
    /// The `honnin` binary to run as the server (default: this one).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Concurrent requests.
    #[arg(long, default_value_t = 8)]
    pub requests: usize,
    /// Side of the square test image, pixels (6000: 36 megapixels).
    #[arg(long, default_value_t = 6000)]
    pub side: u32,
    /// The server's request timeout, seconds.
    #[arg(long, default_value_t = 1)]
    pub timeout_secs: u64,
    /// Longest wait for the server to go idle after the last answer, seconds.
    #[arg(long, default_value_t = 60)]
    pub settle_secs: u64,
    /// Write the JSON report here as well as printing it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    command: String,
    server_bin: String,
    image_bytes: usize,
    image_side: u32,
    requests: usize,
    request_timeout_secs: u64,
    statuses: std::collections::BTreeMap<u16, usize>,
    last_answer_after_secs: f64,
    rss_before_mib: f64,
    rss_peak_mib: f64,
    rss_after_mib: f64,
    cpu_secs_during: f64,
    cpu_secs_after_last_answer: f64,
    idle_after_last_answer_secs: f64,
}

/// A JPEG of `side`×`side`: smooth gradients with a little texture (a photo-like cost
/// to decode, a modest size to send).
fn test_image(side: u32) -> Result<Vec<u8>> {
    let mut x: u32 = 2_463_534_242;
    let img = image::RgbImage::from_fn(side, side, |i, j| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let n = (x & 3) as u8;
        image::Rgb([
            ((i * 255 / side) as u8).wrapping_add(n),
            ((j * 255 / side) as u8).wrapping_add(n),
            (((i + j) * 127 / side) as u8).wrapping_add(n),
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .context("encoding the test image")?;
    Ok(out.into_inner())
}

/// Resident memory now and at its peak, MiB, from `/proc/<pid>/status`.
fn rss(pid: u32) -> Result<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status (Linux only)"))?;
    let field = |name: &str| -> f64 {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// CPU time (user + system) the process has used, seconds.
fn cpu(pid: u32) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    #[cfg(unix)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    #[cfg(not(unix))]
    let hz = 100.0;
    Ok(ticks / hz.max(1.0))
}

struct Server {
    child: Child,
    base: String,
    key: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bin: &PathBuf, timeout_secs: u64) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env(
            "HONNIN_LIMITS__REQUEST_TIMEOUT_SECS",
            timeout_secs.to_string(),
        )
        .env("HONNIN_LIMITS__RATE_LIMIT_PER_SECOND", "10000")
        .env("HONNIN_LIMITS__RATE_LIMIT_BURST", "10000")
        .env("HONNIN_LOG", "error")
        .env_remove("HONNIN_MASTER_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let out = child.stdout.take().context("no stdout")?;
    let mut key = String::new();
    let mut base = String::new();
    for line in BufReader::new(out).lines() {
        let line = line?;
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("hn_")) {
            key = k.to_string();
        }
        if let Some(u) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            base = u.to_string();
            break;
        }
    }
    if key.is_empty() || base.is_empty() {
        bail!("the server printed no address or admin key");
    }
    Ok(Server {
        child,
        base,
        key,
        _dir: dir,
    })
}

pub fn run(args: BenchOverloadArgs) -> Result<()> {
    let bin = match &args.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?,
    };
    let jpeg = test_image(args.side)?;
    let body = serde_json::json!({
        "image": {"bytes": base64::engine::general_purpose::STANDARD.encode(&jpeg)}
    })
    .to_string();
    let server = start(&bin, args.timeout_secs)?;
    let pid = server.child.id();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(args.timeout_secs + 120))
        .build()?;
    // Warm up (plans compiled, pools up) with a small image, then measure from rest.
    let small = serde_json::json!({
        "image": {"bytes": base64::engine::general_purpose::STANDARD.encode(test_image(400)?)}
    })
    .to_string();
    http.post(format!("{}/v1/detect", server.base))
        .bearer_auth(&server.key)
        .header("content-type", "application/json")
        .body(small)
        .send()?;
    std::thread::sleep(Duration::from_secs(1));
    let (rss_before, _) = rss(pid)?;
    let cpu_before = cpu(pid)?;
    let t0 = Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..args.requests)
            .map(|_| {
                let (http, base, key, body) = (&http, &server.base, &server.key, &body);
                s.spawn(move || {
                    http.post(format!("{base}/v1/detect"))
                        .bearer_auth(key)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).collect()
    });
    let last_answer = t0.elapsed();
    let cpu_at_last = cpu(pid)?;
    // Idle: less than 2 % of a core over half a second.
    let window = Duration::from_millis(500);
    let settle = Instant::now();
    let mut prev = cpu_at_last;
    let idle_at = loop {
        std::thread::sleep(window);
        let now = cpu(pid)?;
        if now - prev < 0.02 * window.as_secs_f64() {
            break settle.elapsed().saturating_sub(window);
        }
        prev = now;
        if settle.elapsed() > Duration::from_secs(args.settle_secs) {
            break settle.elapsed();
        }
    };
    let cpu_after = cpu(pid)? - cpu_at_last;
    let (rss_after, rss_peak) = rss(pid)?;
    let mut hist = std::collections::BTreeMap::new();
    for s in &statuses {
        *hist.entry(*s).or_insert(0) += 1;
    }
    let report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        server_bin: bin.display().to_string(),
        image_bytes: jpeg.len(),
        image_side: args.side,
        requests: args.requests,
        request_timeout_secs: args.timeout_secs,
        statuses: hist,
        last_answer_after_secs: last_answer.as_secs_f64(),
        rss_before_mib: rss_before,
        rss_peak_mib: rss_peak,
        rss_after_mib: rss_after,
        cpu_secs_during: cpu_at_last - cpu_before,
        cpu_secs_after_last_answer: cpu_after,
        idle_after_last_answer_secs: idle_at.as_secs_f64(),
    };
    eprintln!(
        "{} × POST /v1/detect, {}×{} JPEG ({} KB), request timeout {} s: answers {:?} (last after {:.1} s)\n\
         resident memory {:.0} MiB before, {:.0} MiB at the peak, {:.0} MiB after\n\
         CPU {:.1} s until the last answer, {:.1} s after it; idle {:.1} s after the last answer",
        report.requests,
        args.side,
        args.side,
        jpeg.len() / 1024,
        args.timeout_secs,
        report.statuses,
        report.last_answer_after_secs,
        report.rss_before_mib,
        report.rss_peak_mib,
        report.rss_after_mib,
        report.cpu_secs_during,
        report.cpu_secs_after_last_answer,
        report.idle_after_last_answer_secs,
    );
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(p) = &args.out {
        std::fs::write(p, &json).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}
