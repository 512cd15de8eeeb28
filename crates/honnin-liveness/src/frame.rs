//! Cheap per-frame measurements (run on every frame; detection is not).
//!
//! * the mean colour of the inner face (skin), from the latest face box, and of every
//!   cell of a coarse grid (the background), for the light-reflection analysis;
//! * sampled luma, to find static (near-identical) frames;
//! * a hash of the JPEG bytes, to find byte-identical frames.

use honnin_engine::geometry::Rect;
use image::RgbImage;

/// Sampling step of the static-frame check's luma grid.
pub const GRID_STEP: usize = 4;

/// Sub-cells of the inner face per side (a `FACE_CELLS × FACE_CELLS` grid).
pub const FACE_CELLS: usize = 6;

/// Mean colours of the inner face in one frame.
#[derive(Debug, Clone, PartialEq)]
pub struct ColorStats {
    /// Mean RGB of the inner face: the box from 20 % to 80 % of its width and 20 % to
    /// 85 % of its height (forehead, eyes, cheeks, nose; little hair or background).
    pub face: [f64; 3],
    /// Number of pixels averaged into `face` (every second pixel in each direction when
    /// the face box is wider than 120 px); at least 16, or no statistics are returned.
    pub face_pixels: u32,
    /// Mean RGB of each cell of a `FACE_CELLS²` grid over the inner face, row-major
    /// (their different brightness — eyes, brows, skin — shows how the face responds
    /// to light as a function of its own level).
    pub cells: Vec<[f32; 3]>,
}

/// Sums RGB over the pixels of `img` inside `[x0, x1) × [y0, y1)` that pass `keep`,
/// sampling every `step`-th pixel.
fn sum_region(
    img: &RgbImage,
    (x0, y0, x1, y1): (i64, i64, i64, i64),
    step: usize,
    keep: impl Fn(i64, i64) -> bool,
) -> ([f64; 3], u32) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
    let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
    let mut acc = [0u64; 3];
    let mut n = 0u32;
    let raw = img.as_raw();
    let mut y = y0;
    while y < y1 {
        let mut x = x0;
        while x < x1 {
            if keep(x, y) {
                let i = ((y * w + x) * 3) as usize;
                if let Some(p) = raw.get(i..i + 3) {
                    acc[0] += p[0] as u64;
                    acc[1] += p[1] as u64;
                    acc[2] += p[2] as u64;
                    n += 1;
                }
            }
            x += step as i64;
        }
        y += step as i64;
    }
    ([acc[0] as f64, acc[1] as f64, acc[2] as f64], n)
}

/// Colour statistics of `img` for a face at `face` (pixels).
pub fn color_stats(img: &RgbImage, face: &Rect) -> Option<ColorStats> {
    if !(face.width > 4.0 && face.height > 4.0 && face.left.is_finite() && face.top.is_finite()) {
        return None;
    }
    let (fl, ft, fw, fh) = (face.left, face.top, face.width, face.height);
    let inner = (
        (fl + 0.2 * fw) as i64,
        (ft + 0.2 * fh) as i64,
        (fl + 0.8 * fw) as i64,
        (ft + 0.85 * fh) as i64,
    );
    let step_face = if fw > 120.0 { 2 } else { 1 };
    let (fs, fnum) = sum_region(img, inner, step_face, |_, _| true);
    if fnum < 16 {
        return None;
    }
    let n = fnum as f64;
    let (x0, y0, x1, y1) = inner;
    let (cw, ch) = (
        (x1 - x0) as f64 / FACE_CELLS as f64,
        (y1 - y0) as f64 / FACE_CELLS as f64,
    );
    let mut cells = Vec::with_capacity(FACE_CELLS * FACE_CELLS);
    for r in 0..FACE_CELLS {
        for c in 0..FACE_CELLS {
            let region = (
                x0 + (c as f64 * cw) as i64,
                y0 + (r as f64 * ch) as i64,
                x0 + ((c + 1) as f64 * cw) as i64,
                y0 + ((r + 1) as f64 * ch) as i64,
            );
            let (sum, k) = sum_region(img, region, step_face, |_, _| true);
            let k = k.max(1) as f64;
            cells.push([
                (sum[0] / k) as f32,
                (sum[1] / k) as f32,
                (sum[2] / k) as f32,
            ]);
        }
    }
    Some(ColorStats {
        face: [fs[0] / n, fs[1] / n, fs[2] / n],
        face_pixels: fnum,
        cells,
    })
}

/// Side of the square cells of the background grid, pixels.
pub const CELL_PX: u32 = 32;

/// Columns and rows of the cell grid of a `w`×`h` frame.
pub fn cell_grid(w: u32, h: u32) -> (u32, u32) {
    (w.div_ceil(CELL_PX), h.div_ceil(CELL_PX))
}

/// What one pass over a frame measures.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameScan {
    /// Luma of every `GRID_STEP`-th pixel in each direction (the static-frame check).
    pub luma: Vec<u8>,
    /// Mean RGB of each `CELL_PX` cell, row-major over [`cell_grid`] (the background
    /// response of the light check).
    pub cells: Vec<[f32; 3]>,
}

/// One pass over every `GRID_STEP`-th pixel in each direction: the luma samples (single
/// pixels, not block means, so a camera's temporal noise — at least a level on nearly
/// every pixel — shows) and the cell means.
pub fn scan(img: &RgbImage) -> FrameScan {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (cols, rows) = cell_grid(img.width(), img.height());
    let mut sums = vec![[0u32; 4]; (cols * rows) as usize];
    let raw = img.as_raw();
    let mut luma = Vec::with_capacity((w / GRID_STEP + 1) * (h / GRID_STEP + 1));
    for y in (GRID_STEP / 2..h).step_by(GRID_STEP) {
        let row = (y / CELL_PX as usize) * cols as usize;
        for x in (GRID_STEP / 2..w).step_by(GRID_STEP) {
            let i = (y * w + x) * 3;
            if let Some(p) = raw.get(i..i + 3) {
                let l = (77 * p[0] as u32 + 150 * p[1] as u32 + 29 * p[2] as u32) >> 8;
                luma.push(l as u8);
                if let Some(c) = sums.get_mut(row + x / CELL_PX as usize) {
                    c[0] += p[0] as u32;
                    c[1] += p[1] as u32;
                    c[2] += p[2] as u32;
                    c[3] += 1;
                }
            }
        }
    }
    let cells = sums
        .iter()
        .map(|c| {
            let n = c[3].max(1) as f32;
            [c[0] as f32 / n, c[1] as f32 / n, c[2] as f32 / n]
        })
        .collect();
    FrameScan { luma, cells }
}

/// Mean absolute difference of two luma grids (levels); `f32::INFINITY` when the
/// sizes differ or they are empty.
pub fn grid_difference(a: &[u8], b: &[u8]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return f32::INFINITY;
    }
    let sum: u64 = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y) as u64).sum();
    sum as f32 / a.len() as f32
}

/// FNV-1a 64 of the bytes (duplicate detection, not security).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_and_cell_means_come_from_their_regions() {
        // Grey background, a red 100×100 "face" at (270, 190).
        let mut img = RgbImage::from_pixel(640, 480, image::Rgb([50, 60, 70]));
        for y in 190..290 {
            for x in 270..370 {
                img.put_pixel(x, y, image::Rgb([200, 100, 80]));
            }
        }
        let s = color_stats(&img, &Rect::new(270.0, 190.0, 100.0, 100.0)).unwrap();
        assert_eq!(s.face, [200.0, 100.0, 80.0]);
        assert_eq!(s.cells.len(), FACE_CELLS * FACE_CELLS);
        assert!(s.cells.iter().all(|c| *c == [200.0, 100.0, 80.0]));
        assert!(color_stats(&img, &Rect::new(0.0, 0.0, 1.0, 1.0)).is_none());
        assert!(color_stats(&img, &Rect::new(f32::NAN, 0.0, 100.0, 100.0)).is_none());
        // A box entirely outside the image has no face pixels.
        assert!(color_stats(&img, &Rect::new(5000.0, 5000.0, 100.0, 100.0)).is_none());
        let sc = scan(&img);
        assert_eq!(cell_grid(640, 480), (20, 15));
        assert_eq!(sc.cells.len(), 300);
        assert_eq!(sc.cells[0], [50.0, 60.0, 70.0]);
        // Cell (9, 7) spans x 288–319, y 224–255: inside the face.
        assert_eq!(sc.cells[7 * 20 + 9], [200.0, 100.0, 80.0]);
        // A frame that is not a multiple of the cell size still fills every cell.
        let odd = scan(&RgbImage::from_pixel(100, 90, image::Rgb([1, 2, 3])));
        assert_eq!(odd.cells.len(), 4 * 3);
        assert!(odd.cells.iter().all(|c| *c == [1.0, 2.0, 3.0]));
    }

    #[test]
    fn luma_grids_tell_static_from_noisy_frames() {
        let a = RgbImage::from_fn(640, 480, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 9])
        });
        let mut b = a.clone();
        // ±1 level of "sensor noise" on every pixel.
        for (i, p) in b.pixels_mut().enumerate() {
            p[1] = if i % 2 == 0 {
                p[1].saturating_add(1)
            } else {
                p[1].saturating_sub(1)
            };
        }
        let (ga, gb) = (scan(&a).luma, scan(&b).luma);
        assert_eq!(ga.len(), 160 * 120);
        assert_eq!(grid_difference(&ga, &ga), 0.0);
        assert!(
            grid_difference(&ga, &gb) > 0.3,
            "{}",
            grid_difference(&ga, &gb)
        );
        assert_eq!(grid_difference(&ga, &[]), f32::INFINITY);
        assert_ne!(hash_bytes(b"abc"), hash_bytes(b"abd"));
    }
}
