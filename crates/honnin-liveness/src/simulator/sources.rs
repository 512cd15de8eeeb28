//! Face sources: real face images (NUAA live and print series, replay frames) with their
//! detected face boxes, as a simulated client shows them.

use super::*;

/// One image of a face source with its detected face box.
#[derive(Debug, Clone)]
pub struct SourceFrame {
    /// The decoded image, upright.
    pub image: RgbImage,
    /// The largest detected face's box, pixels of `image`.
    pub face: Rect,
}

/// Images of one person (one image, or consecutive video frames).
#[derive(Debug, Clone)]
pub struct FaceSource {
    /// A name for reports, e.g. `nuaa-live-0001`.
    pub name: String,
    /// The images with a detected face, in capture order (at least one).
    pub frames: Vec<SourceFrame>,
}

impl FaceSource {
    /// Loads images and detects the largest face of each (images without one are skipped;
    /// an error if none has a face).
    pub fn load(engine: &Engine, name: &str, paths: &[PathBuf]) -> Result<FaceSource, SimError> {
        let mut frames = Vec::new();
        for p in paths {
            let bytes = std::fs::read(p).map_err(|e| SimError::Io {
                path: p.display().to_string(),
                source: e,
            })?;
            let img = engine.decode(&bytes)?;
            let faces = engine.detect(
                &img,
                &DetectOptions {
                    max_faces: 1,
                    // As a liveness session detects its frames.
                    pad_large_faces: false,
                    ..DetectOptions::default()
                },
            )?;
            if let Some(f) = faces.first() {
                frames.push(SourceFrame {
                    face: f.bounding_box_pixels,
                    image: img.rgb,
                });
            }
        }
        if frames.is_empty() {
            return Err(SimError::NoFace(name.to_string()));
        }
        Ok(FaceSource {
            name: name.to_string(),
            frames,
        })
    }
}

impl FaceSource {
    /// The video size a camera that took these images would send: the first image's
    /// orientation at 640×480 (portrait sources give a portrait 480×640 stream, so the
    /// frame holds the scene instead of smeared borders).
    pub fn natural_video(&self) -> VideoSize {
        match self.frames.first() {
            Some(f) if f.image.height() > f.image.width() => VideoSize {
                width: 480,
                height: 640,
            },
            _ => VideoSize {
                width: 640,
                height: 480,
            },
        }
    }
}

/// The evaluation data folder: `$HONNIN_DATA_DIR`, else `../shared/data` beside the
/// repository; `None` when it is absent.
pub fn data_dir() -> Option<PathBuf> {
    honnin_eval::data::find(&["nuaa-train", "spoof-samples"])
}

/// The first `n` images of a NUAA subject/session series, in capture order.
fn nuaa_series(dir: &Path, n: usize) -> Result<Vec<PathBuf>, SimError> {
    let rd = std::fs::read_dir(dir).map_err(|e| SimError::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    // File names: ID_glasses_pos_session_picNo.jpg.
    let mut files: Vec<(String, u32, PathBuf)> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let stem = p.file_stem()?.to_str()?.to_string();
            let (series, pic) = stem.rsplit_once('_')?;
            Some((series.to_string(), pic.parse().ok()?, p))
        })
        .collect();
    files.sort();
    let first = files.first().map(|f| f.0.clone()).ok_or(SimError::Empty)?;
    Ok(files
        .into_iter()
        .filter(|f| f.0 == first)
        .take(n)
        .map(|f| f.2)
        .collect())
}

/// The face sources the tests and `honnin bench-liveness` use, all from `data`.
#[derive(Debug, Clone)]
pub struct StandardSources {
    /// Different real people, one image each (five NUAA live subjects and the live
    /// sample). LFW is not used: its deep-funneled images have a black surround, which a
    /// camera scene does not (the light check then has no background to compare with).
    pub live: Vec<FaceSource>,
    /// A printed-photo attack image (NUAA print).
    pub print: FaceSource,
    /// A tablet-replay attack image.
    pub replay: FaceSource,
    /// Consecutive live webcam frames of one person.
    pub video: FaceSource,
}

impl StandardSources {
    /// Loads every source from the data folder `data` (see [`data_dir`]): NUAA live
    /// subjects 0001–0009 (odd), `spoof-samples/live.jpg`, NUAA print 0002,
    /// `spoof-samples/tablet-replay.jpg` and 24 frames of NUAA live 0004.
    ///
    /// Errors: [`SimError::Io`] or [`SimError::Empty`] when a file or series is missing,
    /// [`SimError::NoFace`] when a source has no detectable face, [`SimError::Engine`] when
    /// an image cannot be decoded.
    pub fn load(engine: &Engine, data: &Path) -> Result<StandardSources, SimError> {
        let mut live = Vec::new();
        for subject in ["0001", "0003", "0005", "0007", "0009"] {
            let dir = data.join("nuaa-train/live").join(subject);
            let first = nuaa_series(&dir, 1)?;
            live.push(FaceSource::load(
                engine,
                &format!("nuaa-live-{subject}"),
                &first,
            )?);
        }
        live.push(FaceSource::load(
            engine,
            "spoof-samples-live",
            &[data.join("spoof-samples/live.jpg")],
        )?);
        let print = FaceSource::load(
            engine,
            "nuaa-print-0002",
            &nuaa_series(&data.join("nuaa-train/print/0002"), 1)?,
        )?;
        let replay = FaceSource::load(
            engine,
            "spoof-samples-tablet-replay",
            &[data.join("spoof-samples/tablet-replay.jpg")],
        )?;
        let video = FaceSource::load(
            engine,
            "nuaa-live-0004-video",
            &nuaa_series(&data.join("nuaa-train/live/0004"), 24)?,
        )?;
        Ok(StandardSources {
            live,
            print,
            replay,
            video,
        })
    }
}
