//! The challenge: which kind, the oval, and the random colour sequence.
//!
//! Everything random is drawn from one seeded RNG per session (the server passes a
//! fresh random seed), so a session is reproducible in tests and unpredictable to a
//! client.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

pub use crate::protocol::ChallengeKind;
use crate::protocol::{FaceFit, Oval, VideoSize};

/// The colours a sequence is drawn from: the corners of the RGB cube, so every
/// channel is either fully on or off and each colour moves the face's chromaticity in
/// a distinct direction.
pub const PALETTE: [[u8; 3]; 8] = [
    [255, 255, 255], // white
    [0, 0, 0],       // black
    [255, 0, 0],     // red
    [0, 255, 0],     // green
    [0, 0, 255],     // blue
    [255, 255, 0],   // yellow
    [0, 255, 255],   // cyan
    [255, 0, 255],   // magenta
];

/// One colour of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColorStep {
    /// The colour shown, one of [`PALETTE`]: each channel 0 or 255.
    pub rgb: [u8; 3],
    /// How long the client shows it, in milliseconds (default 350–600).
    pub duration_ms: u32,
}

/// Draws `count` colours: no colour twice in a row, durations uniform in
/// `[min_ms, max_ms]`, and (for `count ≥ 4`) every channel both on and off at least
/// twice, so that each channel's response can be measured.
pub fn color_sequence(rng: &mut StdRng, count: usize, min_ms: u32, max_ms: u32) -> Vec<ColorStep> {
    let (lo, hi) = (min_ms.min(max_ms), min_ms.max(max_ms));
    let mut best = Vec::new();
    for _attempt in 0..64 {
        let mut seq: Vec<ColorStep> = Vec::with_capacity(count);
        for _ in 0..count {
            let mut idx = rng.random_range(0..PALETTE.len());
            while seq
                .last()
                .is_some_and(|p: &ColorStep| p.rgb == PALETTE[idx])
            {
                idx = rng.random_range(0..PALETTE.len());
            }
            seq.push(ColorStep {
                rgb: PALETTE[idx],
                duration_ms: rng.random_range(lo..=hi),
            });
        }
        let balanced = (0..3).all(|c| {
            let on = seq.iter().filter(|s| s.rgb[c] > 127).count();
            on >= 2 && count - on >= 2
        });
        best = seq;
        if balanced || count < 4 {
            break;
        }
    }
    best
}

/// The oval for a video size: height ≈ 0.72 of the frame height (jittered ±4 %),
/// width = height / 1.618, centre jittered by up to ±4 % of the frame in each axis.
pub fn oval_for(rng: &mut StdRng, video: VideoSize) -> Oval {
    let (w, h) = (video.width as f32, video.height as f32);
    let height = (0.72 * h * rng.random_range(0.96..=1.04f32)).min(h);
    let width = (height / 1.618).min(w);
    let cx = w / 2.0 + w * rng.random_range(-0.04..=0.04f32);
    let cy = h / 2.0 + h * rng.random_range(-0.04..=0.04f32);
    Oval {
        center_x: cx,
        center_y: cy,
        width,
        height,
    }
}

/// The fit rule sent with every challenge. A CenterFace box spans the face from the
/// eyebrows to the chin and cheek to cheek, so a face that fills the drawn oval has a
/// box about 0.75–0.95 of the oval's width.
pub const FACE_FIT: FaceFit = FaceFit {
    min_width_ratio: 0.68,
    max_width_ratio: 1.05,
    max_center_offset: 0.18,
};

/// A seeded RNG.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_follow_their_rules_and_depend_on_the_seed() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200u64 {
            let s = color_sequence(&mut rng(seed), 8, 350, 600);
            assert_eq!(s.len(), 8);
            for w in s.windows(2) {
                assert_ne!(w[0].rgb, w[1].rgb, "no colour twice in a row");
            }
            for c in &s {
                assert!((350..=600).contains(&c.duration_ms));
                assert!(PALETTE.contains(&c.rgb));
            }
            for ch in 0..3 {
                let on = s.iter().filter(|c| c.rgb[ch] > 127).count();
                assert!(
                    (2..=6).contains(&on),
                    "seed {seed}: channel {ch} on {on} times"
                );
            }
            seen.insert(s.iter().map(|c| c.rgb).collect::<Vec<_>>());
        }
        assert!(seen.len() > 190, "sequences must differ between seeds");
        assert_eq!(
            color_sequence(&mut rng(7), 8, 350, 600),
            color_sequence(&mut rng(7), 8, 350, 600)
        );
    }

    #[test]
    fn the_oval_stays_inside_the_frame() {
        for seed in 0..100 {
            let o = oval_for(
                &mut rng(seed),
                VideoSize {
                    width: 640,
                    height: 480,
                },
            );
            assert!((o.height / o.width - 1.618).abs() < 0.01);
            assert!(o.center_x - o.width / 2.0 >= 0.0 && o.center_x + o.width / 2.0 <= 640.0);
            assert!(o.center_y - o.height / 2.0 >= 0.0 && o.center_y + o.height / 2.0 <= 480.0);
        }
    }
}
