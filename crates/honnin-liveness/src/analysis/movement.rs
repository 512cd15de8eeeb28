//! Movement signals: the move into the oval, continuity, faces lost, several faces.

use super::*;

/// Movement into the oval, continuity, faces lost, multiple faces.
pub(super) fn analyze_movement(
    rec: &Recording,
    th: &Thresholds,
    scores: &mut Vec<SignalScore>,
) -> MovementSignal {
    let with_face: Vec<(&DetectionRecord, FaceInfo)> = rec
        .detections
        .iter()
        .filter_map(|d| d.primary.map(|f| (d, f)))
        .collect();
    let widths = |v: &[(&DetectionRecord, FaceInfo)]| -> Vec<f64> {
        v.iter().map(|(_, f)| f.rect.width as f64).collect()
    };
    let eye = |v: &[(&DetectionRecord, FaceInfo)]| -> Vec<f64> {
        v.iter()
            .map(|(_, f)| f.iod as f64 / (f.rect.width as f64).max(1.0))
            .collect()
    };
    let start: Vec<_> = with_face.iter().take(3).copied().collect();
    let mut fit: Vec<_> = with_face
        .iter()
        .filter(|(d, _)| d.phase != PhaseTag::OvalFit)
        .copied()
        .collect();
    if fit.is_empty() {
        let k = with_face.len().saturating_sub(3);
        fit = with_face[k..].to_vec();
    }
    let start_width = math::median(&widths(&start)).unwrap_or(0.0);
    let fit_width = math::median(&widths(&fit)).unwrap_or(0.0);
    let growth = if start_width > 0.0 {
        fit_width / start_width
    } else {
        0.0
    };
    let start_eye = math::median(&eye(&start)).unwrap_or(0.0);
    let fit_eye = math::median(&eye(&fit)).unwrap_or(0.0);
    let mut jumps = 0u32;
    for w in with_face.windows(2) {
        let ((da, a), (db, b)) = (w[0], w[1]);
        if db.t - da.t > 500.0 {
            continue;
        }
        let shift = a.rect.center().dist(b.rect.center()) / a.rect.width.max(1.0);
        let ratio = b.rect.width / a.rect.width.max(1.0);
        if shift > 0.5 || !(0.7..=1.43).contains(&ratio) {
            jumps += 1;
        }
    }
    let after: Vec<&DetectionRecord> = rec
        .detections
        .iter()
        .filter(|d| d.phase == PhaseTag::Challenge)
        .collect();
    let lost = if after.is_empty() {
        0.0
    } else {
        after.iter().filter(|d| d.primary.is_none()).count() as f64 / after.len() as f64
    };
    let multiple = if rec.detections.is_empty() {
        0.0
    } else {
        rec.detections.iter().filter(|d| d.multiple).count() as f64 / rec.detections.len() as f64
    };
    let first_t = rec.frames.first().map(|f| f.t).unwrap_or(0.0);
    let m = MovementSignal {
        start_width,
        fit_width,
        growth,
        start_eye_ratio: start_eye,
        fit_eye_ratio: fit_eye,
        perspective_change: if start_eye > 0.0 {
            fit_eye / start_eye
        } else {
            0.0
        },
        jumps,
        detections: rec.detections.len() as u32,
        face_lost_fraction: lost,
        multiple_faces_fraction: multiple,
        oval_fitted: rec.oval_fitted,
        time_to_fit_ms: rec.fit_t.map(|t| t - first_t).unwrap_or(0.0),
    };
    scores.push(soft(
        "approachMovement",
        growth,
        th.min_growth,
        math::score_above(growth, th.min_growth, th.growth_scale),
        reasons::NO_APPROACH_MOVEMENT,
    ));
    scores.push(soft(
        "continuity",
        jumps as f64,
        0.5,
        binary(jumps == 0),
        reasons::DISCONTINUOUS_MOVEMENT,
    ));
    scores.push(soft(
        "ovalFit",
        if rec.oval_fitted { 1.0 } else { 0.0 },
        0.5,
        binary(rec.oval_fitted),
        reasons::OVAL_FIT_TIMEOUT,
    ));
    scores.push(soft(
        "faceLost",
        lost,
        th.max_face_lost_fraction,
        binary(lost <= th.max_face_lost_fraction),
        reasons::FACE_LOST,
    ));
    scores.push(soft(
        "singleFace",
        multiple,
        th.max_multiple_faces_fraction,
        binary(multiple <= th.max_multiple_faces_fraction),
        reasons::MULTIPLE_FACES,
    ));
    m
}
