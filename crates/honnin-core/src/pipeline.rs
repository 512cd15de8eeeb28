//! One path for an image through the engine: decode → detect → choose faces → align
//! and embed the chosen ones, in ONE trip to the blocking pool, admitted and
//! cancellable (see [`crate::admission`]).
//!
//! Before anything is decoded the image's header is read (format, size, pixel count:
//! cheap, and it stops decompression bombs); the working set it implies is reserved
//! from the memory budget together with a CPU slot; then the work runs with a
//! [`Cancel`] flag checked between stages, set if the request goes away.

use honnin_engine::{DetectOptions, Face, Template};

use crate::admission::Cancel;
use crate::config::verification::DOCUMENT_DETECT_MIN_FACE_PX;
use crate::context::Context;
use crate::error::{CoreError, Result};

/// How faces are looked for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Detection {
    /// One pass with these options.
    Usual(DetectOptions),
    /// An ID document: these options, then (nothing found) down to
    /// [`DOCUMENT_DETECT_MIN_FACE_PX`].
    Document(DetectOptions),
}

/// What the pipeline found.
#[derive(Debug)]
pub(crate) struct Analysed {
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// Largest first.
    pub(crate) faces: Vec<Face>,
    /// Faces found beyond the detection's `max_faces` and left out.
    pub(crate) omitted: usize,
    /// (index into `faces`, template) for each face the chooser picked, in its order.
    pub(crate) templates: Vec<(usize, Template)>,
}

impl Analysed {
    /// The first chosen face and its template.
    pub(crate) fn first(mut self) -> Option<(Face, Template)> {
        if self.templates.is_empty() {
            return None;
        }
        let (i, t) = self.templates.remove(0);
        Some((self.faces.swap_remove(i), t))
    }
}

/// Chooses the faces to embed (indices into the detected faces) and whatever else the
/// caller derives from them; an error ends the job before any embedding.
pub(crate) type Chooser<T> = Box<dyn FnOnce(&[Face]) -> Result<(Vec<usize>, T)> + Send>;

/// Chooses every face.
pub(crate) fn all_faces() -> Chooser<()> {
    Box::new(|f| Ok(((0..f.len()).collect(), ())))
}

/// Chooses no face (detection only).
pub(crate) fn no_faces() -> Chooser<()> {
    Box::new(|_| Ok((Vec::new(), ())))
}

/// Chooses the largest face; `NoFaceDetected` naming `what` when there is none.
pub(crate) fn largest_face(what: &'static str) -> Chooser<()> {
    Box::new(move |f| {
        if f.is_empty() {
            Err(CoreError::NoFaceDetected(what.into()))
        } else {
            Ok((vec![0], ()))
        }
    })
}

impl Context {
    /// Runs an image through the engine (see the module docs). `what` names the image
    /// in errors (`image`, `sourceImage`, `document`…).
    pub(crate) async fn analyse<T: Send + 'static>(
        &self,
        bytes: Vec<u8>,
        what: &'static str,
        detection: Detection,
        choose: Chooser<T>,
    ) -> Result<(Analysed, T)> {
        let header = self
            .engine()
            .probe(&bytes)
            .map_err(|e| CoreError::from_engine(e, what))?;
        let admitted = self.admission.admit(header.working_set_bytes()).await?;
        let cancel = Cancel::default();
        let guard = cancel.on_drop();
        let engine = self.engine().clone();
        let admission = self.admission.clone();
        let job = tokio::task::spawn_blocking(move || {
            // Held until the work really stops, even if the request is gone.
            let _admitted = admitted;
            let in_flight = InFlight::start();
            cancel.check()?;
            admission.note_started();
            let img = engine
                .decode(&bytes)
                .map_err(|e| CoreError::from_engine(e, what))?;
            drop(bytes);
            cancel.check()?;
            let (aligned, omitted) = match detection {
                Detection::Usual(o) => engine.detect_aligned(&img, &o),
                Detection::Document(o) => {
                    let first = engine.detect_aligned(&img, &o);
                    match first {
                        Ok((f, _))
                            if f.is_empty() && o.min_face_size > DOCUMENT_DETECT_MIN_FACE_PX =>
                        {
                            cancel.check()?;
                            engine.detect_aligned(
                                &img,
                                &DetectOptions {
                                    min_face_size: DOCUMENT_DETECT_MIN_FACE_PX,
                                    ..o
                                },
                            )
                        }
                        other => other,
                    }
                }
            }
            .map_err(|e| CoreError::from_engine(e, what))?;
            // Each face was aligned once, for its quality; its template is embedded from
            // that same chip.
            let (faces, chips): (Vec<Face>, Vec<_>) =
                aligned.into_iter().map(|a| (a.face, a.chip)).unzip();
            let (chosen, extra) = choose(&faces)?;
            let mut templates = Vec::with_capacity(chosen.len());
            for i in chosen {
                cancel.check()?;
                let chip = chips.get(i).ok_or_else(|| {
                    CoreError::Internal(format!("chose face {i} of {}", faces.len()))
                })?;
                let chip = chip.as_ref().ok_or_else(|| {
                    CoreError::from_engine(
                        honnin_engine::EngineError::InvalidParameter("degenerate landmarks".into()),
                        what,
                    )
                })?;
                let t = engine
                    .template_from_chip(chip)
                    .map_err(|e| CoreError::from_engine(e, what))?;
                templates.push((i, t));
            }
            drop(in_flight);
            Ok((
                Analysed {
                    width: img.width(),
                    height: img.height(),
                    faces,
                    omitted,
                    templates,
                },
                extra,
            ))
        });
        let out = job
            .await
            .map_err(|e| CoreError::Internal(format!("worker: {e}")))?;
        guard.disarm();
        out
    }

    /// The largest face of an image and its template (`NoFaceDetected` naming `what`).
    pub(crate) async fn largest_face(
        &self,
        bytes: Vec<u8>,
        what: &'static str,
    ) -> Result<(Face, Template)> {
        let (a, ()) = self
            .analyse(
                bytes,
                what,
                Detection::Usual(self.detect_options(1)),
                largest_face(what),
            )
            .await?;
        a.first()
            .ok_or_else(|| CoreError::NoFaceDetected(what.into()))
    }
}

/// Counts engine jobs running on the blocking pool (a gauge), however they end.
struct InFlight;

static RUNNING: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl InFlight {
    fn start() -> InFlight {
        let n = RUNNING.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        metrics::gauge!("honnin_engine_jobs_running").set(n as f64);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let n = RUNNING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) - 1;
        metrics::gauge!("honnin_engine_jobs_running").set(n as f64);
    }
}
