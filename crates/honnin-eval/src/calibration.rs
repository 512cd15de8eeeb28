//! Fitting one score → FMR table on several identity sets so that its stated
//! false-match rate holds on *each* of them, and checking it on held-out identities.
//!
//! A calibration fitted on one set (LFW) states the FMR of that set; another set (CFP,
//! a customer's users) can have several times more impostors above the same score.
//! [`fit_worst_set`] therefore takes, at every target FMR, the highest threshold any
//! set needs: the shipped thresholds follow the worst set.
//!
//! Where a set has too few impostor pairs to measure a target (fewer than
//! `min_expected` impostors expected above it), its threshold is extrapolated from
//! the reference set (the one with the most impostor pairs) by the offset the two had
//! at the strictest target the small set could still measure; such anchors are marked
//! `extrapolated`.
//!
//! [`split_identity`] assigns whole identities to the calibration or validation part
//! (no person in both), as ISO/IEC 19795-1 and Windows Hello's FAR method require.

use serde::Serialize;

use crate::metrics::OperatingPoint;

/// One set's operating points (from [`crate::metrics::evaluate`]) at the targets.
#[derive(Debug, Clone)]
pub struct SetPoints<'a> {
    /// The set's name, for reports (e.g. `lfw`, `cfp`).
    pub name: &'a str,
    /// Impostor pairs the set's `points` were measured on: decides which targets the set
    /// can measure (`target · impostor_pairs ≥ min_expected`); the set with the most is the
    /// reference for extrapolation.
    pub impostor_pairs: u64,
    /// The set's operating points at the targets (matched by `target_fmr` to a relative
    /// 10⁻⁶).
    pub points: &'a [OperatingPoint],
}

/// One anchor of the fitted table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FittedAnchor {
    /// The target FMR of this anchor, a fraction 0–1 (e.g. 1e-4).
    pub fmr: f64,
    /// The raw score threshold: the highest over the sets.
    pub score: f32,
    /// Index (into the `sets` argument) of the set that needed this threshold.
    pub decided_by: usize,
    /// The deciding set could not measure this FMR itself (see the module docs).
    pub extrapolated: bool,
}

fn point_at(points: &[OperatingPoint], fmr: f64) -> Option<&OperatingPoint> {
    points
        .iter()
        .find(|p| (p.target_fmr - fmr).abs() <= fmr * 1e-6)
}

/// The threshold each set needs at every target FMR, and the highest of them.
///
/// `targets` in decreasing FMR order; every set's `points` must hold them (missing
/// ones make that set sit out the target). A set measures a target when
/// `target · impostor_pairs ≥ min_expected`. Anchors whose score does not rise above
/// the previous one are dropped, so the result is strictly increasing in score.
pub fn fit_worst_set(sets: &[SetPoints], targets: &[f64], min_expected: f64) -> Vec<FittedAnchor> {
    let Some(reference) = (0..sets.len()).max_by_key(|&s| sets[s].impostor_pairs) else {
        return Vec::new();
    };
    let measures = |s: usize, f: f64| f * sets[s].impostor_pairs as f64 >= min_expected;
    let mut anchors: Vec<FittedAnchor> = Vec::new();
    for &f in targets {
        let mut best: Option<(f32, usize, bool)> = None;
        for s in 0..sets.len() {
            let t = if measures(s, f) {
                point_at(sets[s].points, f).map(|p| (p.threshold, false))
            } else {
                // Offset from the reference at this set's strictest measurable target.
                let strictest = targets
                    .iter()
                    .copied()
                    .filter(|&g| measures(s, g))
                    .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.min(g))));
                match (strictest, measures(reference, f)) {
                    (Some(g), true) => {
                        let own = point_at(sets[s].points, g);
                        let reference_there = point_at(sets[reference].points, g);
                        let reference_here = point_at(sets[reference].points, f);
                        match (own, reference_there, reference_here) {
                            (Some(o), Some(rt), Some(rh)) => {
                                Some((rh.threshold + (o.threshold - rt.threshold), true))
                            }
                            _ => None,
                        }
                    }
                    _ => None,
                }
            };
            if let Some((t, extrapolated)) = t {
                if best.is_none_or(|(b, _, _)| t > b) {
                    best = Some((t, s, extrapolated));
                }
            }
        }
        let Some((score, decided_by, extrapolated)) = best else {
            continue;
        };
        if anchors.last().is_some_and(|a| score <= a.score) || !(score > -1.0 && score < 1.0) {
            continue;
        }
        anchors.push(FittedAnchor {
            fmr: f,
            score,
            decided_by,
            extrapolated,
        });
    }
    anchors
}

/// Whether `identity` of `set` belongs to the validation part: a stable hash
/// (64-bit FNV-1a of `salt`, `set` and `identity`) below `validation_share` (0–1).
/// The same inputs always give the same answer, on every machine.
pub fn split_identity(salt: &str, set: &str, identity: &str, validation_share: f64) -> bool {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [salt, set, identity] {
        for b in part.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    // Top 53 bits as a uniform number in [0, 1).
    ((h >> 11) as f64 / (1u64 << 53) as f64) < validation_share
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(thresholds: &[(f64, f32)]) -> Vec<OperatingPoint> {
        thresholds
            .iter()
            .map(|&(f, t)| OperatingPoint {
                target_fmr: f,
                threshold: t,
                measured_fmr: f,
                impostors_at_or_above: 0,
                fnmr: 0.0,
                fnmr_identity_weighted: 0.0,
                low_evidence: false,
            })
            .collect()
    }

    #[test]
    fn the_worst_set_decides_each_anchor() {
        let targets = [1e-2, 1e-3, 1e-4];
        let a = points(&[(1e-2, 0.30), (1e-3, 0.40), (1e-4, 0.50)]);
        let b = points(&[(1e-2, 0.35), (1e-3, 0.38), (1e-4, 0.55)]);
        let sets = [
            SetPoints {
                name: "a",
                impostor_pairs: 1_000_000,
                points: &a,
            },
            SetPoints {
                name: "b",
                impostor_pairs: 1_000_000,
                points: &b,
            },
        ];
        let fit = fit_worst_set(&sets, &targets, 1.0);
        let got: Vec<(f32, usize)> = fit.iter().map(|a| (a.score, a.decided_by)).collect();
        assert_eq!(got, vec![(0.35, 1), (0.40, 0), (0.55, 1)]);
        assert!(fit.iter().all(|a| !a.extrapolated));
    }

    #[test]
    fn a_small_set_is_extrapolated_by_its_offset_from_the_reference() {
        let targets = [1e-2, 1e-3, 1e-4];
        let big = points(&[(1e-2, 0.30), (1e-3, 0.40), (1e-4, 0.50)]);
        // 2,000 impostors: measures 1e-2 and 1e-3 (2 expected) but not 1e-4.
        let small = points(&[(1e-2, 0.33), (1e-3, 0.45), (1e-4, 0.41)]);
        let sets = [
            SetPoints {
                name: "big",
                impostor_pairs: 10_000_000,
                points: &big,
            },
            SetPoints {
                name: "small",
                impostor_pairs: 2_000,
                points: &small,
            },
        ];
        let fit = fit_worst_set(&sets, &targets, 1.0);
        assert_eq!(fit.len(), 3);
        assert_eq!(
            (fit[1].score, fit[1].decided_by, fit[1].extrapolated),
            (0.45, 1, false)
        );
        // 0.50 + (0.45 − 0.40): the small set stays 0.05 above the reference.
        assert!((fit[2].score - 0.55).abs() < 1e-6, "{:?}", fit[2]);
        assert!(fit[2].extrapolated && fit[2].decided_by == 1);
    }

    #[test]
    fn anchors_rise_strictly() {
        let targets = [1e-2, 1e-3];
        let a = points(&[(1e-2, 0.40), (1e-3, 0.40)]);
        let sets = [SetPoints {
            name: "a",
            impostor_pairs: 1_000_000,
            points: &a,
        }];
        assert_eq!(fit_worst_set(&sets, &targets, 1.0).len(), 1);
    }

    #[test]
    fn identities_split_stably_and_in_proportion() {
        let ids: Vec<String> = (0..4000).map(|i| format!("person-{i}")).collect();
        let val = ids
            .iter()
            .filter(|i| split_identity("s", "lfw", i, 0.5))
            .count();
        assert!((1800..2200).contains(&val), "{val}");
        assert_eq!(
            split_identity("s", "lfw", "x", 0.5),
            split_identity("s", "lfw", "x", 0.5)
        );
        assert!(ids.iter().all(|i| !split_identity("s", "lfw", i, 0.0)));
        assert!(ids.iter().all(|i| split_identity("s", "lfw", i, 1.0)));
    }
}
