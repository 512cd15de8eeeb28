//! Synthetic ID documents for `honnin eval document`: one face photo rendered as the
//! printed portrait of an ID card and "photographed" with a phone.
//!
//! There are no genuine document ↔ selfie pairs in the data we have (the specimen
//! documents show fictional people), so the document-match threshold is measured on
//! LFW pairs whose first photo is turned into a document. Each step imitates one way a
//! document portrait differs from a selfie; every parameter is drawn per document from
//! a seeded generator, so a run is reproducible and the set covers a range rather than
//! one lucky setting:
//!
//! 1. **Passport framing**: a 7:9 crop around the face, scaled so the face measures
//!    `face_px` (the style's range) on the final image.
//! 2. **Print**: desaturation, compressed contrast (ink on card never reaches black or
//!    white), a warm or cool cast, blur of the print and a halftone screen.
//! 3. **Card**: a pale card with a guilloche security pattern printed *over* the
//!    portrait, text lines, and a small faded ghost copy of the portrait (the document
//!    step must ignore it).
//! 4. **Phone capture**: a rotated card on a table, uneven lighting, a glare spot on
//!    about half of the documents (sometimes on the face), sensor noise, JPEG.

use image::{imageops, Rgb, RgbImage};
use imageproc::geometric_transformations::{rotate_about_center, Border, Interpolation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How a document is rendered: the ranges each parameter is drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentStyle {
    /// The style's name (`--styles`).
    pub name: &'static str,
    /// What it imitates, in words (for the report).
    pub about: &'static str,
    /// Face size on the final image (the detector's box, longer side), pixels.
    pub face_px: (f32, f32),
    /// JPEG quality of the capture.
    pub jpeg_quality: (u8, u8),
    /// Blur of the print, sigma in portrait pixels at 120 px face size.
    pub print_blur: (f32, f32),
    /// Probability of a glare spot, 0–1.
    pub glare_probability: f64,
}

/// The styles `honnin eval document` knows. `card` is the typical phone photo of an ID
/// card (face 90–140 px: the specimens' median portrait is 115 px); `medium` (65–90 px)
/// and `small` (45–65 px) are farther or lower-resolution captures, down to near the
/// smallest portrait honnin accepts (40 px). Apart from the size they are drawn alike.
pub const STYLES: [DocumentStyle; 3] = [
    DocumentStyle {
        name: "card",
        about: "ID card photographed with a phone: face 90-140 px, print, guilloche over the portrait, ghost image, rotation ±4°, glare on half, JPEG 55-85",
        face_px: (90.0, 140.0),
        jpeg_quality: (55, 85),
        print_blur: (0.5, 1.2),
        glare_probability: 0.5,
    },
    DocumentStyle {
        name: "medium",
        about: "the same card captured farther away: face 65-90 px",
        face_px: (65.0, 90.0),
        jpeg_quality: (55, 85),
        print_blur: (0.5, 1.2),
        glare_probability: 0.5,
    },
    DocumentStyle {
        name: "small",
        about: "the same card captured far away or at low resolution: face 45-65 px",
        face_px: (45.0, 65.0),
        jpeg_quality: (55, 85),
        print_blur: (0.5, 1.2),
        glare_probability: 0.5,
    },
];

/// The style of [`STYLES`] called `name`.
pub fn style(name: &str) -> Option<&'static DocumentStyle> {
    STYLES.iter().find(|s| s.name == name)
}

/// What was drawn for one document (kept in the report for the samples).
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderParams {
    /// Face size drawn for the final image, pixels.
    pub target_face_px: f32,
    /// Rotation of the card, degrees.
    pub rotation_deg: f32,
    /// A glare spot was added.
    pub glare: bool,
    /// The glare spot lies on the portrait.
    pub glare_on_face: bool,
    /// JPEG quality of the capture, 0–100.
    pub jpeg_quality: u8,
}

/// Renders `face` (an LFW-like photo with the face roughly centred and `face_px_in_src`
/// pixels large) as an ID card photographed with a phone; returns the JPEG bytes and
/// what was drawn. The same `seed` gives the same bytes.
pub fn render(
    face: &RgbImage,
    face_px_in_src: f32,
    style: &DocumentStyle,
    seed: u64,
) -> (Vec<u8>, RenderParams) {
    let mut rng = StdRng::seed_from_u64(seed);
    let target = rng.random_range(style.face_px.0..=style.face_px.1);

    // 1. Passport framing: 7:9 around the face centre, face ≈ 64 % of the width.
    let (w, h) = face.dimensions();
    let crop_w = (face_px_in_src / 0.64).min(w as f32).max(8.0);
    let crop_h = (crop_w * 9.0 / 7.0).min(h as f32);
    let cx = w as f32 / 2.0;
    let cy = h as f32 / 2.0 - 0.03 * crop_h;
    let x0 = (cx - crop_w / 2.0).clamp(0.0, w as f32 - crop_w) as u32;
    let y0 = (cy - crop_h / 2.0).clamp(0.0, h as f32 - crop_h) as u32;
    let crop = imageops::crop_imm(face, x0, y0, crop_w as u32, crop_h as u32).to_image();
    let pw = (target / 0.64).round().max(8.0) as u32;
    let ph = (pw as f32 * 9.0 / 7.0).round() as u32;
    let mut portrait = imageops::resize(&crop, pw, ph, imageops::FilterType::CatmullRom);

    // 2. Print.
    let desat = rng.random_range(0.15f32..0.5);
    let lo = rng.random_range(18.0f32..40.0);
    let hi = rng.random_range(205.0f32..240.0);
    let cast = [
        rng.random_range(-10.0f32..12.0),
        rng.random_range(-6.0f32..6.0),
        rng.random_range(-12.0f32..8.0),
    ];
    let screen = rng.random_range(3.0f32..8.0);
    let period = rng.random_range(2.5f32..4.0);
    for (x, y, p) in portrait.enumerate_pixels_mut() {
        let l = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        let dot = screen
            * (x as f32 * std::f32::consts::TAU / period).sin()
            * (y as f32 * std::f32::consts::TAU / period).sin();
        for c in 0..3 {
            let v = p[c] as f32 * (1.0 - desat) + l * desat;
            let v = lo + v * (hi - lo) / 255.0 + cast[c] + dot;
            p[c] = v.clamp(0.0, 255.0) as u8;
        }
    }
    let blur = rng.random_range(style.print_blur.0..=style.print_blur.1) * pw as f32 / 190.0;
    if blur > 0.3 {
        portrait = imageproc::filter::gaussian_blur_f32(&portrait, blur);
    }

    // 3. Card: 85.6 × 54 mm, portrait ≈ 28 % of the width.
    let cw = (pw as f32 / 0.28).round() as u32;
    let ch = (cw as f32 * 54.0 / 85.6).round() as u32;
    let base = [
        rng.random_range(205.0f32..235.0),
        rng.random_range(210.0f32..235.0),
        rng.random_range(205.0f32..240.0),
    ];
    let mut card = RgbImage::from_fn(cw, ch, |_, _| {
        Rgb([base[0] as u8, base[1] as u8, base[2] as u8])
    });
    let px = (0.05 * cw as f32) as u32;
    let py = ((ch as f32 - ph as f32) * 0.65) as u32;
    imageops::overlay(&mut card, &portrait, px as i64, py as i64);
    // Ghost image: 35 % of the portrait's width, faded, bottom right.
    let gw = (pw as f32 * 0.35).round().max(4.0) as u32;
    let mut ghost = imageops::resize(&portrait, gw, gw * ph / pw, imageops::FilterType::Triangle);
    for p in ghost.pixels_mut() {
        for c in p.0.iter_mut() {
            *c = (*c as u16 / 2 + 110) as u8;
        }
    }
    let gx = cw.saturating_sub(gw + cw / 14);
    let gy = ch.saturating_sub(ghost.height() + ch / 10);
    imageops::overlay(&mut card, &ghost, gx as i64, gy as i64);
    // Text lines right of the portrait.
    let line_h = (ch / 30).max(2);
    for k in 0..6u32 {
        let y = (0.22 * ch as f32) as u32 + k * line_h * 3;
        let x1 = px + pw + cw / 20;
        let len = (rng.random_range(0.25f32..0.5) * cw as f32) as u32;
        for yy in y..(y + line_h).min(ch) {
            for xx in x1..(x1 + len).min(gx.saturating_sub(4)).min(cw) {
                card.put_pixel(xx, yy, Rgb([40, 45, 60]));
            }
        }
    }
    // Guilloche: thin sine curves over the whole card, portrait included.
    let ink = [
        rng.random_range(60.0f32..160.0),
        rng.random_range(80.0f32..170.0),
        rng.random_range(100.0f32..200.0),
    ];
    let alpha = rng.random_range(0.10f32..0.25);
    let curves = 10;
    let amp = ch as f32 * rng.random_range(0.03f32..0.08);
    let freq = rng.random_range(2.0f32..5.0) * std::f32::consts::TAU / cw as f32;
    for k in 0..curves {
        let base_y = ch as f32 * (k as f32 + 0.5) / curves as f32;
        let phase = k as f32 * 0.7;
        for x in 0..cw {
            let y = base_y + amp * (freq * x as f32 + phase).sin();
            let yi = y.round() as i64;
            if (0..ch as i64).contains(&yi) {
                let p = card.get_pixel_mut(x, yi as u32);
                for c in 0..3 {
                    p[c] = (p[c] as f32 * (1.0 - alpha) + ink[c] * alpha) as u8;
                }
            }
        }
    }

    // 4. Phone capture: the card on a table, rotated.
    let margin = cw / 8;
    let table = Rgb([
        rng.random_range(40u8..120),
        rng.random_range(35u8..110),
        rng.random_range(30u8..100),
    ]);
    let mut scene = RgbImage::from_pixel(cw + 2 * margin, ch + 2 * margin, table);
    imageops::overlay(&mut scene, &card, margin as i64, margin as i64);
    let rotation_deg = rng.random_range(-4.0f32..4.0);
    let mut scene = rotate_about_center(
        &scene,
        rotation_deg.to_radians(),
        Interpolation::Bilinear,
        Border::Constant(table),
    );
    let (sw, sh) = scene.dimensions();
    // Uneven light: a linear gradient ±12 %.
    let gain = (
        rng.random_range(0.85f32..1.1),
        rng.random_range(-0.12f32..0.12),
    );
    let angle = rng.random_range(0.0f32..std::f32::consts::TAU);
    let (ux, uy) = (angle.cos(), angle.sin());
    // Glare on about half: an additive spot, a third of those on the face.
    let face_c = ((margin + px + pw / 2) as f32, (margin + py + ph / 2) as f32);
    let glare = rng.random_bool(style.glare_probability);
    let glare_on_face = glare && rng.random_bool(0.33);
    let (gcx, gcy) = if glare_on_face {
        (
            face_c.0 + rng.random_range(-0.4f32..0.4) * pw as f32,
            face_c.1 + rng.random_range(-0.4f32..0.4) * ph as f32,
        )
    } else {
        (
            rng.random_range(0.0f32..1.0) * sw as f32,
            rng.random_range(0.0f32..1.0) * sh as f32,
        )
    };
    let g_r = rng.random_range(0.06f32..0.18) * cw as f32;
    let g_peak = if glare {
        rng.random_range(40.0f32..120.0)
    } else {
        0.0
    };
    let noise = rng.random_range(1.5f32..5.0);
    for (x, y, p) in scene.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32 / sw as f32 - 0.5, y as f32 / sh as f32 - 0.5);
        let light = gain.0 * (1.0 + gain.1 * 2.0 * (fx * ux + fy * uy));
        let d2 = ((x as f32 - gcx).powi(2) + (y as f32 - gcy).powi(2)) / (g_r * g_r);
        let spot = g_peak * (-d2).exp();
        for c in 0..3 {
            // Box–Muller would be exact; the sum of three uniforms is close enough to
            // Gaussian for sensor noise and much cheaper.
            let n = (rng.random::<f32>() + rng.random::<f32>() + rng.random::<f32>() - 1.5) * 2.0;
            let v = p[c] as f32 * light + spot + n * noise;
            p[c] = v.clamp(0.0, 255.0) as u8;
        }
    }
    let jpeg_quality = rng.random_range(style.jpeg_quality.0..=style.jpeg_quality.1);
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, jpeg_quality);
    // Encoding an in-memory RGB buffer cannot fail for these sizes; an error would
    // leave `out` empty, which the pipeline reports as an undecodable document.
    let _ = image::DynamicImage::ImageRgb8(std::mem::take(&mut scene)).write_with_encoder(enc);
    (
        out,
        RenderParams {
            target_face_px: target,
            rotation_deg,
            glare,
            glare_on_face,
            jpeg_quality,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face() -> RgbImage {
        RgbImage::from_fn(250, 250, |x, y| {
            let d = ((x as f32 - 125.0).powi(2) + (y as f32 - 120.0).powi(2)).sqrt();
            if d < 55.0 {
                Rgb([200, 160, 140])
            } else {
                Rgb([30, 60, 90])
            }
        })
    }

    #[test]
    fn a_render_is_a_jpeg_of_card_proportions_and_is_reproducible() {
        let s = style("card").unwrap();
        let (a, pa) = render(&face(), 110.0, s, 7);
        let (b, _) = render(&face(), 110.0, s, 7);
        let (c, _) = render(&face(), 110.0, s, 8);
        assert_eq!(a, b, "same seed, same document");
        assert_ne!(a, c, "another seed draws other parameters");
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!(image::guess_format(&a).unwrap(), image::ImageFormat::Jpeg);
        // The card is ≈ 1.59:1 inside a table margin; the portrait's width is 28 % of the card.
        let pw = (pa.target_face_px / 0.64).round();
        let card_w = pw / 0.28;
        assert!((img.width() as f32 - card_w * 1.25).abs() < card_w * 0.1 + 4.0);
        assert!(s.face_px.0 <= pa.target_face_px && pa.target_face_px <= s.face_px.1);
    }

    #[test]
    fn the_small_style_renders_smaller_documents() {
        let (card, _) = render(&face(), 110.0, style("card").unwrap(), 1);
        let (small, _) = render(&face(), 110.0, style("small").unwrap(), 1);
        let w = |b: &[u8]| image::load_from_memory(b).unwrap().width();
        assert!(w(&small) * 3 < w(&card) * 2);
    }
}
