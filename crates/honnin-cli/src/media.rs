//! Inputs of the evaluation and benchmark commands: files found in folders, and frames
//! of videos split by the `ffmpeg` binary (an evaluation-time tool only; honnin never
//! runs it at serve time).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Video file extensions the evaluation commands read (through ffmpeg).
pub const VIDEO_EXTS: &[&str] = &["mp4", "mov", "avi", "mkv", "webm", "m4v"];
/// Image file extensions the evaluation commands read.
pub const IMAGE_EXTS: &[&str] = &["jpg", "jpeg", "png"];

/// The files with one of `exts` among `inputs`: files as given, folders searched
/// recursively (sorted by path).
pub fn collect_files(inputs: &[PathBuf], exts: &[&str]) -> Result<Vec<PathBuf>> {
    fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) -> Result<()> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, exts, out)?;
            } else if p
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| exts.iter().any(|e| x.eq_ignore_ascii_case(e)))
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for i in inputs {
        if i.is_dir() {
            let mut v = Vec::new();
            walk(i, exts, &mut v)?;
            v.sort();
            out.extend(v);
        } else if i.is_file() {
            out.push(i.clone());
        } else {
            bail!("{}: no such file or folder", i.display());
        }
    }
    Ok(out)
}

/// Checks that `ffmpeg` runs, with a clear message when it does not.
pub fn require_ffmpeg() -> Result<()> {
    match Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("`ffmpeg -version` failed ({s}); videos need a working ffmpeg"),
        Err(e) => bail!(
            "videos need the `ffmpeg` binary on PATH to extract frames ({e}); install it \
             (e.g. `apt-get install ffmpeg`) or extract the frames yourself and pass their folders"
        ),
    }
}

/// Extracts the frames of `video` as PNG files into `dir` (sorted by name).
pub fn extract_frames(video: &Path, dir: &Path, fps: f64) -> Result<Vec<PathBuf>> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-loglevel", "error", "-i"])
        .arg(video)
        .args(["-map", "0:v:0"]);
    if fps > 0.0 {
        cmd.arg("-vf").arg(format!("fps={fps}"));
    } else {
        cmd.args(["-fps_mode", "passthrough"]);
    }
    cmd.args(["-pix_fmt", "rgb24"]).arg(dir.join("f%06d.png"));
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running ffmpeg on {}", video.display()))?;
    if !out.status.success() {
        bail!(
            "ffmpeg could not read {}: {}",
            video.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut frames = collect_files(&[dir.to_path_buf()], &["png"])?;
    frames.sort();
    if frames.is_empty() {
        bail!("ffmpeg extracted no frames from {}", video.display());
    }
    Ok(frames)
}

/// A temporary folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Result<TempDir> {
        let d = std::env::temp_dir().join(format!(
            "honnin-{label}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        Ok(TempDir(d))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Images from `inputs` (image files, folders, videos): videos are split by ffmpeg at
/// `fps` (0: every frame) into `tmp`. Every `every`-th image is kept.
pub fn images_and_frames(
    inputs: &[PathBuf],
    fps: f64,
    every: usize,
    tmp: &TempDir,
) -> Result<Vec<PathBuf>> {
    let has_ext = |p: &PathBuf, exts: &[&str]| {
        p.extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.iter().any(|e| x.eq_ignore_ascii_case(e)))
    };
    for i in inputs.iter().filter(|i| i.is_file()) {
        if !has_ext(i, IMAGE_EXTS) && !has_ext(i, VIDEO_EXTS) {
            bail!(
                "{}: neither an image ({}) nor a video ({})",
                i.display(),
                IMAGE_EXTS.join(", "),
                VIDEO_EXTS.join(", ")
            );
        }
    }
    // A file named directly is kept by `collect_files` whatever its extension: sort
    // the two kinds by extension here.
    let mut out = collect_files(inputs, IMAGE_EXTS)?;
    out.retain(|p| has_ext(p, IMAGE_EXTS));
    let mut videos = collect_files(inputs, VIDEO_EXTS)?;
    videos.retain(|p| has_ext(p, VIDEO_EXTS));
    if !videos.is_empty() {
        require_ffmpeg()?;
    }
    for v in &videos {
        // A fresh folder per video, also across calls sharing `tmp`.
        let dir = (0..)
            .map(|k| tmp.0.join(format!("video-{k}")))
            .find(|d| !d.exists())
            .expect("an unused folder name");
        std::fs::create_dir_all(&dir)?;
        out.extend(extract_frames(v, &dir, fps)?);
    }
    Ok(out.into_iter().step_by(every.max(1)).collect())
}
