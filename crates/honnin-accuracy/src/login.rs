//! Face login measured the way Windows Hello states its face sign-in (`honnin eval
//! login`): the false-accept rate per attempt (FAR) and the false-reject rate (FRR) of
//! every security level (`honnin_core::login::levels`), 1:1 (a claimed user) and 1:N
//! (who is this, within a gallery).
//!
//! # Protocol
//!
//! 1. **Templates.** One template per image, exactly as `honnin eval calibrate` makes
//!    them and in the same cache files (`<set>-<template space>.bin`): LFW takes the
//!    face nearest the image centre, CFP the largest face. The identity sets are LFW and
//!    CFP *frontal* (CFP profile images are embedded, to share the cache, but never
//!    used); each set is reported on its own.
//! 2. **Identities.** Only the validation part of the identity split that fitted the
//!    shipped calibration ([`split_identity`] with the same salt and validation share,
//!    `honnin-calibration-1` and 0.5): these people did not set the thresholds, so
//!    the measurement is disjoint from the calibration identities.
//!    [`LoginRun::split_matches_calibration`] says whether the calibration in use
//!    states that split.
//! 3. **Enrolment and attempts.** A validation identity with at least `k + 2` images
//!    that yield a template (`k` = [`LoginSetup::enrol_images`]) is *enrolled*: with a
//!    seeded RNG, `k` of its images form its profile and 2 others are its attempt
//!    images. A validation identity with fewer usable images is a *visitor* (unless
//!    [`LoginSetup::visitors`] is off): it never enrols, and up to 2 of its images
//!    (seeded) are its attempt images. Images without a template (no face found) are
//!    counted ([`SetResult::validation_without_template`]) and not used: the server
//!    refuses such a probe before it compares anything.
//! 4. **Scores.** Every attempt image is compared with every profile: the attempt's
//!    score against a profile is the highest fused score over the profile's `k`
//!    templates, mapped to similarity 0–100 by the calibration, as the server compares
//!    (`engine.compare(..).similarity`, the best per user). The fused score is the
//!    calibrated weighted sum of the recognizers' cosines ([`Fusion::of`]).
//! 5. **Thresholds.** A level's target FAR per attempt (low 1e-4, standard 1e-5, high
//!    1e-6 by default) and the number `n` of templates compared give the similarity
//!    threshold ([`attempt_threshold`]: per-comparison FMR = target / n); an attempt
//!    passes a profile when its similarity is at least the threshold. Where the
//!    per-comparison FMR falls below the calibration's smallest anchor the level is
//!    [`LevelOutcome::Refused`], as the server refuses it (`LevelBeyondCalibration`).
//! 6. **1:1** (`n = k`). Genuine attempts: each attempt image of an enrolled identity
//!    against its own profile. Impostor attempts: every attempt image (of enrolled
//!    identities and visitors) against every *other* profile. FAR = impostor attempts
//!    accepted / impostor attempts; FRR = genuine attempts rejected / genuine attempts.
//!    The DET curve is over the same attempts (attempt-level scores).
//! 7. **1:N** (`n = k ×` gallery size). Random galleries of enrolled identities
//!    ([`LoginSetup::galleries`], seeded). Genuine attempts: the attempt images of the
//!    gallery's members; an attempt succeeds only if its own profile reaches the
//!    threshold and no other does (the server answers `AmbiguousMatch` when several
//!    users reach it, and logs in the one user who does, right or wrong). Impostor
//!    attempts: the attempt images of every identity not in the gallery (other enrolled
//!    identities and visitors); a false accept is any profile reaching the threshold
//!    (those where several reach it, which the server would answer `AmbiguousMatch`,
//!    are counted too and also reported apart).
//!
//! Rates carry exact (Clopper–Pearson) two-sided 95 % confidence intervals
//! ([`clopper_pearson`]); with no errors the upper bound is about 3.7 / trials. The
//! intervals treat attempts as independent; impostor attempts share probes and
//! profiles, so the true uncertainty is somewhat larger.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use honnin_core::config::login::LevelTargets;
use honnin_core::login::levels::{attempt_threshold, AttemptThreshold, LevelError, SecurityLevel};
use honnin_engine::{Calibration, DetectOptions, Engine};
use honnin_eval::calibration::split_identity;
use honnin_eval::datasets::{cfp_images, lfw_images, CfpPose};
use honnin_eval::metrics::{evaluate, GenuineScores, OperatingPoint, RocPoint, ScoreHistogram};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::Serialize;

use crate::scoring::{self, Fusion, Selection};
use crate::{Error, Progress, Result};

/// Windows Hello's stated face sign-in target for one enrolled user: FAR below 0.001 %
/// (1e-5, a fraction 0–1) ...
pub const WINDOWS_HELLO_FAR: f64 = 1e-5;
/// ... with FRR below 5 % (0.05, a fraction 0–1).
pub const WINDOWS_HELLO_FRR: f64 = 0.05;

/// Attempt images per identity (enrolled identities have exactly this many; visitors
/// up to this many).
pub const ATTEMPTS_PER_IDENTITY: usize = 2;

/// The default 1:N galleries: 20 random galleries of 10 and of 100 identities, 5 of
/// 1000, and one of every enrolled identity.
pub const DEFAULT_GALLERIES: [GallerySpec; 4] = [
    GallerySpec {
        size: Some(10),
        repeats: 20,
    },
    GallerySpec {
        size: Some(100),
        repeats: 20,
    },
    GallerySpec {
        size: Some(1000),
        repeats: 5,
    },
    GallerySpec {
        size: None,
        repeats: 1,
    },
];

/// Random 1:N galleries of one size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GallerySpec {
    /// Enrolled identities per gallery; `None`: every enrolled identity (one gallery).
    pub size: Option<usize>,
    /// How many random galleries of this size (at least 1; 1 for `None`).
    pub repeats: usize,
}

impl GallerySpec {
    /// Parses `SIZE:REPEATS` (e.g. `100:20`), `SIZE` (one gallery) or `all`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for anything else, a size of 0 or a repeat count of 0.
    pub fn parse(s: &str) -> Result<GallerySpec> {
        let bad = || {
            Error::Invalid(format!(
                "gallery `{s}`: expected SIZE:REPEATS (e.g. 100:20), SIZE, or all"
            ))
        };
        let s = s.trim();
        if s == "all" {
            return Ok(GallerySpec {
                size: None,
                repeats: 1,
            });
        }
        let (size, repeats) = match s.split_once(':') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s, "1"),
        };
        let size: usize = size.parse().map_err(|_| bad())?;
        let repeats: usize = repeats.parse().map_err(|_| bad())?;
        if size == 0 || repeats == 0 {
            return Err(bad());
        }
        Ok(GallerySpec {
            size: Some(size),
            repeats,
        })
    }

    /// `10`, `100`, …, or `all`.
    pub fn label(&self) -> String {
        self.size.map_or_else(|| "all".into(), |s| s.to_string())
    }
}

/// What a login evaluation is given.
pub struct LoginSetup<'a> {
    /// LFW image folder (as [`crate::lfw::locate`] finds it), if LFW is used.
    pub lfw: Option<&'a Path>,
    /// CFP folder (`<NNN>/frontal/*.jpg`, `<NNN>/profile/*.jpg`), if CFP is used.
    pub cfp: Option<&'a Path>,
    /// Salt of the identity split (the calibration's: `honnin-calibration-1`).
    pub split_salt: &'a str,
    /// Share of each set's identities in the validation part, in (0, 1) (the
    /// calibration's: 0.5).
    pub validation_share: f64,
    /// Folder of the template caches (`<set>-<template space>.bin`, shared with
    /// `honnin eval calibrate`); must exist.
    pub cache_dir: &'a Path,
    /// Templates per profile, `k` (at least 1).
    pub enrol_images: usize,
    /// Seed of every random choice (enrolment and attempt images, galleries).
    pub seed: u64,
    /// The 1:N galleries; empty: no 1:N.
    pub galleries: Vec<GallerySpec>,
    /// At most this many enrolled identities per set, for quick checks: they are drawn
    /// (seeded) among the validation identities with at least `k + 2` image files, at
    /// most `k + 4` images each, and there are no visitors; their templates go to a
    /// cache file of their own (`…-subset.bin`). `None`: the full protocol.
    pub max_identities: Option<usize>,
    /// Whether identities with too few images to enrol contribute impostor attempts.
    pub visitors: bool,
    /// Target FAR per attempt of each level (fractions 0–1).
    pub targets: LevelTargets,
}

/// An error rate with its exact 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rate {
    /// Errors (false accepts or false rejects).
    pub errors: u64,
    /// Attempts.
    pub trials: u64,
    /// `errors / trials`, a fraction 0–1.
    pub rate: f64,
    /// Lower bound of the two-sided 95 % Clopper–Pearson interval, 0–1.
    pub lower: f64,
    /// Upper bound of the two-sided 95 % Clopper–Pearson interval, 0–1 (with no
    /// errors about 3.7 / trials).
    pub upper: f64,
}

impl Rate {
    /// The rate of `errors` in `trials`; `None` when there were no trials.
    pub fn new(errors: u64, trials: u64) -> Option<Rate> {
        if trials == 0 {
            return None;
        }
        let (lower, upper) = clopper_pearson(errors, trials);
        Some(Rate {
            errors,
            trials,
            rate: errors as f64 / trials as f64,
            lower,
            upper,
        })
    }
}

/// What happened to the genuine attempts at one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenuineCounts {
    /// Genuine attempts.
    pub attempts: u64,
    /// Logged in as the right person.
    pub accepted: u64,
    /// No profile reached the threshold.
    pub no_match: u64,
    /// Several profiles reached it (`AmbiguousMatch`; 1:N only).
    pub ambiguous: u64,
    /// Only another person's profile reached it: logged in as someone else (1:N only).
    pub wrong_user: u64,
}

/// What happened to the impostor attempts at one level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpostorCounts {
    /// Impostor attempts.
    pub attempts: u64,
    /// Attempts where a profile reached the threshold (false accepts).
    pub accepted: u64,
    /// Of those, the attempts where several profiles reached it (the server would
    /// answer `AmbiguousMatch`; 1:N only).
    pub ambiguous: u64,
}

/// A level measured at its threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measured {
    /// The threshold (similarity 0–100, per-comparison FMR, measured or extrapolated).
    pub threshold: AttemptThreshold,
    /// The raw fused score (cosine, −1–1) of the similarity threshold.
    pub threshold_score: f32,
    /// Impostor attempts accepted / impostor attempts; `None` without impostor attempts.
    pub far: Option<Rate>,
    /// Genuine attempts not logged in as the right person / genuine attempts; `None`
    /// without genuine attempts.
    pub frr: Option<Rate>,
    /// The genuine attempts' outcomes.
    pub genuine: GenuineCounts,
    /// The impostor attempts' outcomes.
    pub impostor: ImpostorCounts,
}

/// A level the calibration cannot hold over this many templates (the server answers
/// `LevelBeyondCalibration`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refusal {
    /// The per-comparison FMR the level would need, 0–1.
    pub per_comparison_fmr: f64,
    /// The calibration's smallest anchor FMR, 0–1.
    pub floor: f64,
    /// The most templates this level can be compared with.
    pub max_comparisons: u64,
}

/// A level's result: measured, or refused.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum LevelOutcome {
    /// Measured at the level's threshold.
    Measured(Measured),
    /// Refused: beyond the calibration.
    Refused(Refusal),
}

/// One security level at one gallery size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelResult {
    /// The level.
    pub level: SecurityLevel,
    /// Its target FAR per attempt, 0–1.
    pub target_far: f64,
    /// What was measured.
    pub outcome: LevelOutcome,
}

impl LevelResult {
    /// The measurement, unless the level was refused.
    pub fn measured(&self) -> Option<&Measured> {
        match &self.outcome {
            LevelOutcome::Measured(m) => Some(m),
            LevelOutcome::Refused(_) => None,
        }
    }
}

/// 1:N at one gallery size.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GalleryResult {
    /// The size asked for (`10`, …, `all`).
    pub label: String,
    /// Enrolled identities per gallery.
    pub identities: usize,
    /// Templates per gallery (identities × k): the `n` of the threshold.
    pub templates: u64,
    /// Random galleries measured.
    pub galleries: usize,
    /// One per level, weakest first (counts summed over the galleries).
    pub levels: Vec<LevelResult>,
}

/// One identity set's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SetResult {
    /// `lfw` or `cfp frontal`.
    pub set: String,
    /// Images of the set used for the split (CFP: frontal only).
    pub images: usize,
    /// Identities of the set.
    pub identities: usize,
    /// Identities in the validation part (disjoint from the calibration's).
    pub validation_identities: usize,
    /// Images of the validation identities considered.
    pub validation_images: usize,
    /// Of those, images without a template (no face found), never used.
    pub validation_without_template: usize,
    /// Validation identities enrolled (at least k + 2 usable images).
    pub enrolled_identities: usize,
    /// Validation identities with too few images to enrol that attempt as impostors.
    pub visitor_identities: usize,
    /// Attempt images (enrolled identities' and visitors').
    pub attempt_images: usize,
    /// 1:1, one per level, weakest first.
    pub one_to_one: Vec<LevelResult>,
    /// 1:1 DET curve over attempt-level raw scores (FAR = `fmr`, FRR = `fnmr`).
    pub det: Vec<RocPoint>,
    /// 1:1 equal error rate over attempts, 0–1.
    pub eer: f64,
    /// 1:1 at each level's target FAR as the data would set it: the lowest raw score
    /// whose measured FAR is at most the target, and the FRR there (for comparison
    /// with the calibrated thresholds).
    pub det_at_targets: Vec<OperatingPoint>,
    /// 1:N per gallery size.
    pub one_to_n: Vec<GalleryResult>,
    /// Gallery sizes asked for that were not measured: at least as many as the
    /// enrolled identities (`all` covers them).
    pub skipped_gallery_sizes: Vec<usize>,
    /// The [`TOP_IMPOSTORS`] 1:1 impostor attempts with the highest similarity, highest
    /// first (to look at: a false accept may be a labelling error of the set).
    pub top_impostors: Vec<ImpostorAttempt>,
}

/// How many of the closest 1:1 impostor attempts a [`SetResult`] lists.
pub const TOP_IMPOSTORS: usize = 10;

/// One 1:1 impostor attempt.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImpostorAttempt {
    /// The attempt image.
    pub probe: PathBuf,
    /// Its identity.
    pub probe_identity: String,
    /// The profile's identity.
    pub profile_identity: String,
    /// The profile's images.
    pub profile_images: Vec<PathBuf>,
    /// The attempt's similarity with the profile, 0–100.
    pub similarity: f32,
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRun {
    /// The engine's template model.
    pub template_model: String,
    /// Templates per profile, k.
    pub enrol_images: usize,
    /// The RNG seed.
    pub seed: u64,
    /// Salt of the identity split.
    pub split_salt: String,
    /// Validation share of the identity split, 0–1.
    pub validation_share: f64,
    /// Whether the calibration in use states this split (its `dataset` names the salt
    /// and share): then the validation identities did not set the thresholds.
    pub split_matches_calibration: bool,
    /// Whether the run was limited to a subset of identities (not the full protocol).
    pub subset: bool,
    /// One per identity set.
    pub sets: Vec<SetResult>,
}

/// The 1:1 standard level against Windows Hello's stated target.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HelloCheck {
    /// The upper 95 % bound of the measured FAR, 0–1.
    pub far_upper: f64,
    /// The measured FRR, 0–1.
    pub frr: f64,
    /// The upper 95 % bound of the measured FRR, 0–1.
    pub frr_upper: f64,
    /// `far_upper` < [`WINDOWS_HELLO_FAR`]: the data show FAR below 0.001 %.
    pub far_met: bool,
    /// `frr` < [`WINDOWS_HELLO_FRR`].
    pub frr_met: bool,
}

/// The 1:1 standard level of `set` against Windows Hello's stated target; `None` when
/// that level was refused or had no attempts.
pub fn windows_hello(set: &SetResult) -> Option<HelloCheck> {
    let m = set
        .one_to_one
        .iter()
        .find(|l| l.level == SecurityLevel::Standard)?
        .measured()?;
    let (far, frr) = (m.far?, m.frr?);
    Some(HelloCheck {
        far_upper: far.upper,
        frr: frr.rate,
        frr_upper: frr.upper,
        far_met: far.upper < WINDOWS_HELLO_FAR,
        frr_met: frr.rate < WINDOWS_HELLO_FRR,
    })
}

/// Runs the protocol of the module docs on every set given.
///
/// # Errors
/// No set given, `enrol_images` 0, a validation share outside (0, 1), an engine
/// without a calibration, a dataset that cannot be read, or a cache that cannot be
/// written.
pub fn run(
    engine: &Engine,
    opts: &DetectOptions,
    setup: &LoginSetup,
    progress: &dyn Progress,
) -> Result<LoginRun> {
    if setup.enrol_images == 0 {
        return Err(Error::Invalid("enrol at least one image per person".into()));
    }
    if !(setup.validation_share > 0.0 && setup.validation_share < 1.0) {
        return Err(Error::Invalid(
            "the validation share must be in (0, 1)".into(),
        ));
    }
    let cal = engine.calibration().ok_or_else(|| {
        Error::Invalid(
            "the engine has no calibration: security levels are defined through it".into(),
        )
    })?;
    let mut sets = Vec::new();
    if let Some(root) = setup.lfw {
        let images = lfw_images(root)?;
        sets.push(Images {
            name: "lfw",
            label: "lfw",
            selection: Selection::Central,
            used: vec![true; images.len()],
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if let Some(root) = setup.cfp {
        let images = cfp_images(root)?;
        if images.is_empty() {
            return Err(Error::Invalid(format!(
                "{}: no CFP images (<NNN>/frontal/*.jpg)",
                root.display()
            )));
        }
        sets.push(Images {
            name: "cfp",
            label: "cfp frontal",
            selection: Selection::Largest,
            used: images.iter().map(|i| i.pose == CfpPose::Frontal).collect(),
            identity: images.iter().map(|i| i.person.clone()).collect(),
            paths: images.into_iter().map(|i| i.path).collect(),
        });
    }
    if sets.is_empty() {
        return Err(Error::Invalid(
            "give at least one identity set: --lfw DIR and/or --cfp DIR".into(),
        ));
    }
    let fusion = Fusion::of(engine);
    let mut results = Vec::new();
    for set in sets {
        let set = match setup.max_identities {
            Some(max) => set.subset(setup, max),
            None => set,
        };
        results.push(run_set(engine, opts, cal, &fusion, setup, &set, progress)?);
    }
    Ok(LoginRun {
        template_model: engine.template_model().to_string(),
        enrol_images: setup.enrol_images,
        seed: setup.seed,
        split_salt: setup.split_salt.to_string(),
        validation_share: setup.validation_share,
        split_matches_calibration: cal.dataset.contains(&format!(
            "identity split salt {:?}, validation share {}",
            setup.split_salt, setup.validation_share
        )),
        subset: setup.max_identities.is_some(),
        sets: results,
    })
}

/// A set's image list.
struct Images {
    /// The name in the identity split and the cache file (`lfw`, `cfp`).
    name: &'static str,
    /// The name in reports.
    label: &'static str,
    selection: Selection,
    paths: Vec<PathBuf>,
    identity: Vec<String>,
    /// Whether an image takes part (CFP: frontal); the others are embedded only so
    /// that the cache is the one `eval calibrate` writes.
    used: Vec<bool>,
}

impl Images {
    fn is_validation(&self, setup: &LoginSetup, identity: &str) -> bool {
        split_identity(
            setup.split_salt,
            self.name,
            identity,
            setup.validation_share,
        )
    }

    /// The used images of the validation identities, grouped by identity (sorted).
    fn validation_groups(&self, setup: &LoginSetup) -> BTreeMap<&str, Vec<usize>> {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, id) in self.identity.iter().enumerate() {
            if self.used[i] && self.is_validation(setup, id) {
                groups.entry(id.as_str()).or_default().push(i);
            }
        }
        groups
    }

    /// The quick-check subset of [`LoginSetup::max_identities`].
    fn subset(self, setup: &LoginSetup, max: usize) -> Images {
        let k = setup.enrol_images;
        let mut rng = StdRng::seed_from_u64(setup.seed ^ fnv(self.name) ^ fnv("subset"));
        let groups = self.validation_groups(setup);
        let mut candidates: Vec<&Vec<usize>> = groups
            .values()
            .filter(|g| g.len() >= k + ATTEMPTS_PER_IDENTITY)
            .collect();
        candidates.shuffle(&mut rng);
        let mut keep: Vec<usize> = candidates
            .into_iter()
            .take(max)
            .flat_map(|g| {
                let mut g = g.clone();
                g.shuffle(&mut rng);
                g.truncate(k + ATTEMPTS_PER_IDENTITY + 2);
                g
            })
            .collect();
        keep.sort_unstable();
        Images {
            name: self.name,
            label: self.label,
            selection: self.selection,
            paths: keep.iter().map(|&i| self.paths[i].clone()).collect(),
            identity: keep.iter().map(|&i| self.identity[i].clone()).collect(),
            used: vec![true; keep.len()],
        }
    }
}

/// 64-bit FNV-1a of a string (to derive per-set seeds).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Who made an attempt: an enrolled identity (its profile index) or a visitor.
type Owner = Option<usize>;

fn run_set(
    engine: &Engine,
    opts: &DetectOptions,
    cal: &Calibration,
    fusion: &Fusion,
    setup: &LoginSetup,
    set: &Images,
    progress: &dyn Progress,
) -> Result<SetResult> {
    let k = setup.enrol_images;
    // The cache `eval calibrate` writes; a subset has its own so it never evicts it.
    let space: String = engine
        .template_model()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let suffix = if setup.max_identities.is_some() {
        "-subset"
    } else {
        ""
    };
    let cache = setup
        .cache_dir
        .join(format!("{}-{space}{suffix}.bin", set.name));
    let templates = scoring::load_or_compute(
        engine,
        &set.paths,
        opts,
        set.selection,
        Some(&cache),
        progress,
    )?;
    let has = |i: usize| templates.vectors[i].is_some();

    // Enrolment and attempt images, identity by identity in name order.
    let groups = set.validation_groups(setup);
    let mut rng = StdRng::seed_from_u64(setup.seed ^ fnv(set.name));
    let mut profiles: Vec<Vec<usize>> = Vec::new();
    let mut probes: Vec<(usize, Owner)> = Vec::new();
    let (mut visitors, mut validation_images, mut without) = (0, 0, 0);
    for images in groups.values() {
        validation_images += images.len();
        let mut usable: Vec<usize> = images.iter().copied().filter(|&i| has(i)).collect();
        without += images.len() - usable.len();
        usable.shuffle(&mut rng);
        if usable.len() >= k + ATTEMPTS_PER_IDENTITY {
            let e = profiles.len();
            profiles.push(usable[..k].to_vec());
            probes.extend(
                usable[k..k + ATTEMPTS_PER_IDENTITY]
                    .iter()
                    .map(|&i| (i, Some(e))),
            );
        } else if setup.visitors && setup.max_identities.is_none() && !usable.is_empty() {
            visitors += 1;
            probes.extend(
                usable
                    .iter()
                    .take(ATTEMPTS_PER_IDENTITY)
                    .map(|&i| (i, None)),
            );
        }
    }
    if profiles.len() < 2 {
        return Err(Error::Invalid(format!(
            "{}: {} validation identities with at least {} usable images; at least 2 are needed",
            set.label,
            profiles.len(),
            k + ATTEMPTS_PER_IDENTITY
        )));
    }

    // Every attempt against every profile: the best raw score over its templates.
    let n_prof = profiles.len();
    let stage = progress.stage(probes.len() as u64, "login attempts");
    let rows: Vec<Vec<f32>> = probes
        .par_iter()
        .map(|&(img, _)| {
            let mut parts = vec![0f32; fusion.dims.len()];
            let a = templates.vectors[img].as_deref();
            let row: Vec<f32> = profiles
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|&t| fusion.score(a, templates.vectors[t].as_deref(), &mut parts))
                        .fold(-1.0f32, f32::max)
                })
                .collect();
            stage.inc();
            row
        })
        .collect();
    drop(stage);
    let scores: Vec<f32> = rows.concat();
    let sims: Vec<f32> = scores.par_iter().map(|&s| cal.similarity(s)).collect();
    let matrix = Matrix {
        scores: &scores,
        sims: &sims,
        n_prof,
        owners: probes.iter().map(|p| p.1).collect(),
    };

    let levels: Vec<(SecurityLevel, f64)> = SecurityLevel::ALL
        .iter()
        .map(|&l| (l, l.target(&setup.targets)))
        .collect();
    let (one_to_one, det, eer, det_at_targets) = one_to_one(&matrix, cal, k, &levels);

    let stage = progress.stage(
        setup.galleries.iter().map(|g| g.repeats as u64).sum(),
        "1:N galleries",
    );
    let mut one_to_n = Vec::new();
    let mut skipped = Vec::new();
    for spec in &setup.galleries {
        let size = match spec.size {
            Some(s) if s >= n_prof => {
                skipped.push(s);
                continue;
            }
            Some(s) => s,
            None => n_prof,
        };
        let repeats = if spec.size.is_none() { 1 } else { spec.repeats };
        let mut rng =
            StdRng::seed_from_u64(setup.seed ^ fnv(set.name) ^ fnv("gallery") ^ size as u64);
        let galleries: Vec<Vec<usize>> = (0..repeats)
            .map(|_| {
                let mut all: Vec<usize> = (0..n_prof).collect();
                all.shuffle(&mut rng);
                all.truncate(size);
                all
            })
            .collect();
        one_to_n.push(one_to_n_at(
            &matrix,
            cal,
            spec.label(),
            (size * k) as u64,
            &galleries,
            &levels,
            &*stage,
        ));
    }
    drop(stage);

    Ok(SetResult {
        set: set.label.to_string(),
        images: set.used.iter().filter(|&&u| u).count(),
        identities: {
            let mut ids: Vec<&str> = (0..set.paths.len())
                .filter(|&i| set.used[i])
                .map(|i| set.identity[i].as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        },
        validation_identities: groups.len(),
        validation_images,
        validation_without_template: without,
        enrolled_identities: n_prof,
        visitor_identities: visitors,
        attempt_images: probes.len(),
        one_to_one,
        det,
        eer,
        det_at_targets,
        one_to_n,
        skipped_gallery_sizes: skipped,
        top_impostors: top_impostors(&matrix, &probes)
            .into_iter()
            .map(|(a, e, similarity)| ImpostorAttempt {
                probe: set.paths[probes[a].0].clone(),
                probe_identity: set.identity[probes[a].0].clone(),
                profile_identity: set.identity[profiles[e][0]].clone(),
                profile_images: profiles[e].iter().map(|&i| set.paths[i].clone()).collect(),
                similarity,
            })
            .collect(),
    })
}

/// Attempts × profiles: raw scores and similarities, row-major.
struct Matrix<'a> {
    scores: &'a [f32],
    sims: &'a [f32],
    n_prof: usize,
    owners: Vec<Owner>,
}

impl Matrix<'_> {
    fn sim(&self, probe: usize, profile: usize) -> f32 {
        self.sims[probe * self.n_prof + profile]
    }
    fn score(&self, probe: usize, profile: usize) -> f32 {
        self.scores[probe * self.n_prof + profile]
    }
}

/// The [`TOP_IMPOSTORS`] impostor (attempt, profile) pairs of highest similarity.
fn top_impostors(m: &Matrix, probes: &[(usize, Owner)]) -> Vec<(usize, usize, f32)> {
    let mut top: Vec<(usize, usize, f32)> = Vec::new();
    for (a, &(_, owner)) in probes.iter().enumerate() {
        for e in 0..m.n_prof {
            let s = m.sim(a, e);
            if owner != Some(e) && (top.len() < TOP_IMPOSTORS || s > top[top.len() - 1].2) {
                let at = top.partition_point(|t| t.2 >= s);
                top.insert(at, (a, e, s));
                top.truncate(TOP_IMPOSTORS);
            }
        }
    }
    top
}

/// The threshold of a level over `n` templates, or why it is refused.
fn threshold(
    cal: &Calibration,
    target: f64,
    n: u64,
) -> std::result::Result<AttemptThreshold, Refusal> {
    attempt_threshold(target, n, cal).map_err(|e| match e {
        LevelError::BeyondCalibration {
            per_comparison_fmr,
            floor,
            max_comparisons,
        } => Refusal {
            per_comparison_fmr,
            floor,
            max_comparisons,
        },
    })
}

fn measured(
    cal: &Calibration,
    t: AttemptThreshold,
    genuine: GenuineCounts,
    impostor: ImpostorCounts,
) -> LevelOutcome {
    LevelOutcome::Measured(Measured {
        threshold: t,
        threshold_score: cal.score_for_similarity(t.similarity),
        far: Rate::new(impostor.accepted, impostor.attempts),
        frr: Rate::new(genuine.attempts - genuine.accepted, genuine.attempts),
        genuine,
        impostor,
    })
}

type OneToOne = (Vec<LevelResult>, Vec<RocPoint>, f64, Vec<OperatingPoint>);

/// 1:1: each attempt against its own profile (genuine) and every other (impostor).
fn one_to_one(
    m: &Matrix,
    cal: &Calibration,
    k: usize,
    levels: &[(SecurityLevel, f64)],
) -> OneToOne {
    let thresholds: Vec<_> = levels
        .iter()
        .map(|&(_, target)| threshold(cal, target, k as u64))
        .collect();
    let mut gen = vec![GenuineCounts::default(); levels.len()];
    let mut imp = vec![ImpostorCounts::default(); levels.len()];
    let mut gen_scores = GenuineScores::default();
    let mut imp_hist = ScoreHistogram::new();
    for (a, owner) in m.owners.iter().enumerate() {
        for e in 0..m.n_prof {
            let sim = m.sim(a, e);
            let genuine = *owner == Some(e);
            if genuine {
                gen_scores.scores.push((m.score(a, e), e as u32));
            } else {
                imp_hist.add(m.score(a, e));
            }
            for (l, t) in thresholds.iter().enumerate() {
                let Ok(t) = t else { continue };
                let pass = sim >= t.similarity;
                if genuine {
                    gen[l].attempts += 1;
                    if pass {
                        gen[l].accepted += 1;
                    } else {
                        gen[l].no_match += 1;
                    }
                } else {
                    imp[l].attempts += 1;
                    imp[l].accepted += pass as u64;
                }
            }
        }
    }
    let results = levels
        .iter()
        .zip(thresholds)
        .enumerate()
        .map(|(l, (&(level, target), t))| LevelResult {
            level,
            target_far: target,
            outcome: match t {
                Ok(t) => measured(cal, t, gen[l], imp[l]),
                Err(r) => LevelOutcome::Refused(r),
            },
        })
        .collect();
    let targets: Vec<f64> = levels.iter().map(|l| l.1).collect();
    let report = evaluate(&gen_scores, &imp_hist, &targets);
    (results, report.roc, report.eer, report.operating_points)
}

/// 1:N over `galleries` (each a list of profile indices) of `templates` templates.
fn one_to_n_at(
    m: &Matrix,
    cal: &Calibration,
    label: String,
    templates: u64,
    galleries: &[Vec<usize>],
    levels: &[(SecurityLevel, f64)],
    stage: &dyn crate::Stage,
) -> GalleryResult {
    let thresholds: Vec<_> = levels
        .iter()
        .map(|&(_, target)| threshold(cal, target, templates))
        .collect();
    let mut gen = vec![GenuineCounts::default(); levels.len()];
    let mut imp = vec![ImpostorCounts::default(); levels.len()];
    let mut member = vec![false; m.n_prof];
    for g in galleries {
        member.iter_mut().for_each(|x| *x = false);
        for &e in g {
            member[e] = true;
        }
        // Per attempt and level: (profiles reaching the threshold, whether the own does).
        let counts: Vec<Vec<(u32, bool)>> = (0..m.owners.len())
            .into_par_iter()
            .map(|a| {
                thresholds
                    .iter()
                    .map(|t| match t {
                        Ok(t) => g.iter().fold((0u32, false), |(n, own), &e| {
                            if m.sim(a, e) >= t.similarity {
                                (n + 1, own || m.owners[a] == Some(e))
                            } else {
                                (n, own)
                            }
                        }),
                        Err(_) => (0, false),
                    })
                    .collect()
            })
            .collect();
        for (a, per_level) in counts.iter().enumerate() {
            let enrolled = m.owners[a].is_some_and(|o| member[o]);
            for (l, &(above, own)) in per_level.iter().enumerate() {
                if thresholds[l].is_err() {
                    continue;
                }
                if enrolled {
                    let c = &mut gen[l];
                    c.attempts += 1;
                    match (above, own) {
                        (0, _) => c.no_match += 1,
                        (1, true) => c.accepted += 1,
                        (1, false) => c.wrong_user += 1,
                        _ => c.ambiguous += 1,
                    }
                } else {
                    let c = &mut imp[l];
                    c.attempts += 1;
                    c.accepted += (above >= 1) as u64;
                    c.ambiguous += (above >= 2) as u64;
                }
            }
        }
        stage.inc();
    }
    GalleryResult {
        label,
        identities: galleries.first().map_or(0, Vec::len),
        templates,
        galleries: galleries.len(),
        levels: levels
            .iter()
            .zip(thresholds)
            .enumerate()
            .map(|(l, (&(level, target), t))| LevelResult {
                level,
                target_far: target,
                outcome: match t {
                    Ok(t) => measured(cal, t, gen[l], imp[l]),
                    Err(r) => LevelOutcome::Refused(r),
                },
            })
            .collect(),
    }
}

/// The exact (Clopper–Pearson) two-sided 95 % confidence interval of a binomial rate
/// with `errors` in `trials` (both bounds fractions 0–1; `(0, 1)` for no trials). With
/// no errors the upper bound is 1 − 0.025^(1/trials), about 3.7 / trials.
pub fn clopper_pearson(errors: u64, trials: u64) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let (x, n) = (errors.min(trials), trials);
    let alpha = 0.05;
    // P(X ≤ x) falls as p rises: bisect for the p where it crosses `level`.
    let solve = |x: u64, level: f64| {
        let (mut lo, mut hi) = (0.0f64, 1.0f64);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if binomial_cdf(x, n, mid) > level {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    // Lower: P(X ≥ x) = α/2, i.e. P(X ≤ x − 1) = 1 − α/2.
    let lower = if x == 0 {
        0.0
    } else {
        solve(x - 1, 1.0 - alpha / 2.0)
    };
    // Upper: P(X ≤ x) = α/2.
    let upper = if x == n { 1.0 } else { solve(x, alpha / 2.0) };
    (lower, upper)
}

/// P(X ≤ x) for X ~ Binomial(n, p), summed in log space over the shorter tail.
fn binomial_cdf(x: u64, n: u64, p: f64) -> f64 {
    if x >= n || p <= 0.0 {
        return 1.0;
    }
    if p >= 1.0 {
        return 0.0;
    }
    let (lp, lq) = (p.ln(), (-p).ln_1p());
    let nf = n as f64;
    // ln pmf(k) by the ratio pmf(k+1)/pmf(k) = (n−k)/(k+1) · p/q.
    let log_sum = |from: u64, to: u64| -> f64 {
        // Terms k = from..=to, walking from whichever end has a closed form.
        let mut terms = Vec::with_capacity((to - from + 1) as usize);
        if from == 0 {
            let mut l = nf * lq;
            terms.push(l);
            for k in 0..to {
                l += ((nf - k as f64) / (k as f64 + 1.0)).ln() + lp - lq;
                terms.push(l);
            }
        } else {
            // from..=n, starting at pmf(n) = p^n and walking down.
            let mut l = nf * lp;
            terms.push(l);
            let mut k = n;
            while k > from {
                // pmf(k−1) = pmf(k) · k / (n−k+1) · q/p
                l += (k as f64 / (nf - k as f64 + 1.0)).ln() + lq - lp;
                terms.push(l);
                k -= 1;
            }
        }
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            return f64::NEG_INFINITY;
        }
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    };
    if x <= n / 2 {
        log_sum(0, x).exp().min(1.0)
    } else {
        (1.0 - log_sum(x + 1, n).exp()).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clopper_pearson_matches_known_values() {
        // No errors: the upper bound is 1 − 0.025^(1/n).
        let (lo, hi) = clopper_pearson(0, 1000);
        assert_eq!(lo, 0.0);
        assert!((hi - (1.0 - 0.025f64.powf(1e-3))).abs() < 1e-9, "{hi}");
        // 10 of 100: the textbook interval 0.0490–0.1762.
        let (lo, hi) = clopper_pearson(10, 100);
        assert!(
            (lo - 0.0490).abs() < 1e-4 && (hi - 0.1762).abs() < 1e-4,
            "{lo} {hi}"
        );
        // All errors: the lower bound is 0.025^(1/n).
        let (lo, hi) = clopper_pearson(20, 20);
        assert!((lo - 0.025f64.powf(1.0 / 20.0)).abs() < 1e-9 && hi == 1.0);
        // Millions of trials with a handful of errors stay finite and ordered.
        let (lo, hi) = clopper_pearson(3, 2_000_000);
        assert!(
            lo > 0.0 && lo < 1.5e-6 && hi > 1.5e-6 && hi < 5e-6,
            "{lo} {hi}"
        );
        // Past the middle: the upper tail is summed instead.
        let (lo, hi) = clopper_pearson(90, 100);
        assert!((lo - (1.0 - 0.1762)).abs() < 1e-4 && (hi - (1.0 - 0.0490)).abs() < 1e-4);
    }

    #[test]
    fn binomial_cdf_sums_to_one_and_rises_with_x() {
        let mut last = 0.0;
        for x in 0..=20 {
            let c = binomial_cdf(x, 20, 0.3);
            assert!(c >= last - 1e-12);
            last = c;
        }
        assert!((last - 1.0).abs() < 1e-12);
        assert!((binomial_cdf(0, 10, 0.5) - 0.5f64.powi(10)).abs() < 1e-15);
    }

    #[test]
    fn gallery_specs_parse() {
        assert_eq!(
            GallerySpec::parse("100:20").unwrap(),
            GallerySpec {
                size: Some(100),
                repeats: 20
            }
        );
        assert_eq!(GallerySpec::parse("all").unwrap().size, None);
        assert_eq!(GallerySpec::parse("7").unwrap().repeats, 1);
        for bad in ["0:1", "10:0", "x", "10:y", ""] {
            assert!(GallerySpec::parse(bad).is_err(), "{bad}");
        }
    }

    fn calibration() -> Calibration {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/calibration-fr-feature+sface.json");
        Calibration::load(&path).unwrap()
    }

    /// Three profiles, four attempts: attempt 0 and 1 are profile 0's, 2 is profile 1's,
    /// 3 a visitor's.
    #[test]
    fn one_to_n_counts_ambiguous_wrong_user_and_impostors_as_the_server_decides() {
        let cal = calibration();
        let hi = cal.score_for_similarity(99.0);
        let lo = -0.5;
        #[rustfmt::skip]
        let scores = vec![
            hi, lo, lo, // own only: accepted
            hi, hi, lo, // own and another: ambiguous
            hi, lo, lo, // only another's: wrong user
            lo, lo, hi, // visitor reaching profile 2: false accept
        ];
        let sims: Vec<f32> = scores.iter().map(|&s| cal.similarity(s)).collect();
        let m = Matrix {
            scores: &scores,
            sims: &sims,
            n_prof: 3,
            owners: vec![Some(0), Some(0), Some(1), None],
        };
        let levels = [(SecurityLevel::Low, 1e-4)];
        let r = one_to_n_at(
            &m,
            &cal,
            "all".into(),
            3,
            &[vec![0, 1, 2]],
            &levels,
            &crate::NoProgress,
        );
        let got = r.levels[0].measured().unwrap();
        assert_eq!(
            got.genuine,
            GenuineCounts {
                attempts: 3,
                accepted: 1,
                no_match: 0,
                ambiguous: 1,
                wrong_user: 1
            }
        );
        assert_eq!(
            got.impostor,
            ImpostorCounts {
                attempts: 1,
                accepted: 1,
                ambiguous: 0
            }
        );
        assert_eq!(got.frr.unwrap().errors, 2);

        // 1:1: 3 genuine (2 pass), 9 impostor comparisons (3 pass).
        let (one, _, _, _) = one_to_one(&m, &cal, 1, &levels);
        let got = one[0].measured().unwrap();
        assert_eq!((got.genuine.attempts, got.genuine.accepted), (3, 2));
        assert_eq!((got.impostor.attempts, got.impostor.accepted), (9, 3));
    }

    #[test]
    fn levels_beyond_the_calibration_are_refused() {
        let cal = calibration();
        let r = threshold(&cal, 1e-6, 1_000_000).unwrap_err();
        assert!(r.max_comparisons < 1_000_000 && r.floor > 0.0);
        assert!(threshold(&cal, 1e-5, 1).is_ok());
    }
}
