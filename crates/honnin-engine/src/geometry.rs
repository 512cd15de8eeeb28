//! Plane geometry: boxes, non-maximum suppression, similarity transforms and warping.

use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};

/// A point in image pixels (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate in pixels, from the left edge.
    pub x: f32,
    /// Vertical coordinate in pixels, from the top edge.
    pub y: f32,
}

impl Point {
    /// The point at (`x`, `y`) pixels.
    pub const fn new(x: f32, y: f32) -> Self {
        Self { x, y }
    }
    /// Euclidean distance to `o`, in pixels.
    pub fn dist(self, o: Point) -> f32 {
        ((self.x - o.x).powi(2) + (self.y - o.y).powi(2)).sqrt()
    }
    /// The midpoint between this point and `o`.
    pub fn mid(self, o: Point) -> Point {
        Point::new((self.x + o.x) * 0.5, (self.y + o.y) * 0.5)
    }
}

/// A second face whose box covers at least this share of the main face's box area is
/// another person of similar size, not a face in the background or an ID card's ghost
/// image (those are about a quarter of the portrait's area). The one rule behind
/// liveness's "several faces" and the document step's ambiguous portrait.
pub const SIMILAR_SIZE_AREA_RATIO: f32 = 0.5;

/// An axis-aligned box in pixels: `left`, `top`, `width`, `height`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rect {
    /// x of the left edge, in pixels.
    pub left: f32,
    /// y of the top edge, in pixels.
    pub top: f32,
    /// Width in pixels (≥ 0 for a valid box).
    pub width: f32,
    /// Height in pixels (≥ 0 for a valid box).
    pub height: f32,
}

impl Rect {
    /// The box with its top-left corner at (`left`, `top`) and the given size, all in pixels.
    pub fn new(left: f32, top: f32, width: f32, height: f32) -> Self {
        Self {
            left,
            top,
            width,
            height,
        }
    }
    /// x of the right edge (`left + width`), in pixels.
    pub fn right(&self) -> f32 {
        self.left + self.width
    }
    /// y of the bottom edge (`top + height`), in pixels.
    pub fn bottom(&self) -> f32 {
        self.top + self.height
    }
    /// Area in square pixels; 0 when a side is negative.
    pub fn area(&self) -> f32 {
        self.width.max(0.0) * self.height.max(0.0)
    }
    /// Whether this box, a second face's, is of similar size to `main`'s
    /// ([`SIMILAR_SIZE_AREA_RATIO`]).
    pub fn similar_in_size_to(&self, main: &Rect) -> bool {
        self.area() >= SIMILAR_SIZE_AREA_RATIO * main.area()
    }
    /// The centre of the box.
    pub fn center(&self) -> Point {
        Point::new(self.left + self.width * 0.5, self.top + self.height * 0.5)
    }
    /// Intersection over union; 0 for disjoint or empty boxes.
    pub fn iou(&self, o: &Rect) -> f32 {
        let l = self.left.max(o.left);
        let t = self.top.max(o.top);
        let r = self.right().min(o.right());
        let b = self.bottom().min(o.bottom());
        let inter = (r - l).max(0.0) * (b - t).max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
    /// The part of the box inside a `w`×`h` image.
    pub fn clip(&self, w: f32, h: f32) -> Rect {
        let l = self.left.clamp(0.0, w);
        let t = self.top.clamp(0.0, h);
        let r = self.right().clamp(0.0, w);
        let b = self.bottom().clamp(0.0, h);
        Rect::new(l, t, (r - l).max(0.0), (b - t).max(0.0))
    }
    /// Every coordinate multiplied by `s` (mapping a box between image scales).
    pub fn scale(&self, s: f32) -> Rect {
        Rect::new(self.left * s, self.top * s, self.width * s, self.height * s)
    }
}

/// Greedy non-maximum suppression. `items` are (score, box); returns the indices
/// kept, highest score first. A box is dropped when its IoU with a kept box exceeds `iou`.
pub fn nms(items: &[(f32, Rect)], iou: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|&a, &b| items[b].0.total_cmp(&items[a].0));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep.iter().all(|&k| items[k].1.iou(&items[i].1) <= iou) {
            keep.push(i);
        }
    }
    keep
}

/// A 2-D similarity transform (rotation, uniform scale, translation):
/// `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// `scale · cos(rotation)`.
    pub a: f32,
    /// `scale · sin(rotation)`.
    pub b: f32,
    /// Horizontal translation, in destination pixels.
    pub tx: f32,
    /// Vertical translation, in destination pixels.
    pub ty: f32,
}

impl Similarity {
    /// Maps `p` through the transform.
    pub fn apply(&self, p: Point) -> Point {
        Point::new(
            self.a * p.x - self.b * p.y + self.tx,
            self.b * p.x + self.a * p.y + self.ty,
        )
    }
    /// The uniform scale factor, `√(a² + b²)` (destination units per source unit).
    pub fn scale(&self) -> f32 {
        (self.a * self.a + self.b * self.b).sqrt()
    }
    /// Rotation in degrees (counter-clockwise in image coordinates with y down).
    pub fn rotation_deg(&self) -> f32 {
        self.b.atan2(self.a).to_degrees()
    }
    /// The inverse transform (undefined for a zero scale).
    pub fn inverse(&self) -> Similarity {
        let d = self.a * self.a + self.b * self.b;
        let (ia, ib) = (self.a / d, -self.b / d);
        // x = ia·(x' − tx) − ib·(y' − ty), y = ib·(x' − tx) + ia·(y' − ty)
        Similarity {
            a: ia,
            b: ib,
            tx: -(ia * self.tx - ib * self.ty),
            ty: -(ib * self.tx + ia * self.ty),
        }
    }

    /// Least-squares similarity mapping `src` onto `dst` (Umeyama 1991, without reflection).
    /// Returns `None` when the source points are degenerate (all equal).
    pub fn estimate(src: &[Point], dst: &[Point]) -> Option<Similarity> {
        let n = src.len().min(dst.len());
        if n < 2 {
            return None;
        }
        let nf = n as f64;
        let (mut sx, mut sy, mut dx, mut dy) = (0f64, 0f64, 0f64, 0f64);
        for i in 0..n {
            sx += src[i].x as f64;
            sy += src[i].y as f64;
            dx += dst[i].x as f64;
            dy += dst[i].y as f64;
        }
        let (sx, sy, dx, dy) = (sx / nf, sy / nf, dx / nf, dy / nf);
        // For 2-D similarity the closed form reduces to: a = Σ(u·p + v·q)/Σ|u|², b = Σ(u·q − v·p)/Σ|u|²
        // with (u, v) centred source and (p, q) centred destination.
        let (mut num_a, mut num_b, mut den) = (0f64, 0f64, 0f64);
        for i in 0..n {
            let u = src[i].x as f64 - sx;
            let v = src[i].y as f64 - sy;
            let p = dst[i].x as f64 - dx;
            let q = dst[i].y as f64 - dy;
            num_a += u * p + v * q;
            num_b += u * q - v * p;
            den += u * u + v * v;
        }
        if den < 1e-12 {
            return None;
        }
        let a = num_a / den;
        let b = num_b / den;
        let tx = dx - (a * sx - b * sy);
        let ty = dy - (b * sx + a * sy);
        Some(Similarity {
            a: a as f32,
            b: b as f32,
            tx: tx as f32,
            ty: ty as f32,
        })
    }
}

/// Bilinear sample of `img` at (x, y); pixels outside are replicated from the border.
#[inline]
pub fn sample_bilinear(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let w = img.width() as i64;
    let h = img.height() as i64;
    let xf = x.floor();
    let yf = y.floor();
    let fx = x - xf;
    let fy = y - yf;
    let x0 = (xf as i64).clamp(0, w - 1) as u32;
    let y0 = (yf as i64).clamp(0, h - 1) as u32;
    let x1 = (xf as i64 + 1).clamp(0, w - 1) as u32;
    let y1 = (yf as i64 + 1).clamp(0, h - 1) as u32;
    let p00 = img.get_pixel(x0, y0).0;
    let p10 = img.get_pixel(x1, y0).0;
    let p01 = img.get_pixel(x0, y1).0;
    let p11 = img.get_pixel(x1, y1).0;
    let mut out = [0f32; 3];
    for c in 0..3 {
        let top = p00[c] as f32 * (1.0 - fx) + p10[c] as f32 * fx;
        let bot = p01[c] as f32 * (1.0 - fx) + p11[c] as f32 * fx;
        out[c] = top * (1.0 - fy) + bot * fy;
    }
    out
}

/// Warps `img` into a `w`×`h` image where each output pixel (x, y) takes the source
/// pixel at `to_src(x, y)`. When the transform shrinks the image by more than 2x, the
/// source is first box-filtered (area averaging) so the output does not alias.
pub fn warp_similarity(img: &RgbImage, dst_to_src: &Similarity, w: u32, h: u32) -> RgbImage {
    let scale = dst_to_src.scale(); // source pixels per output pixel
    if scale > 2.0 {
        // Pre-shrink by an integer factor with area averaging, then warp from the smaller image.
        let f = scale.floor().max(1.0) as u32;
        let small = box_downscale(img, f);
        let inv_f = 1.0 / f as f32;
        let t = Similarity {
            a: dst_to_src.a * inv_f,
            b: dst_to_src.b * inv_f,
            // Pixel centres: source coordinate s maps to (s + 0.5)/f − 0.5 in the small image.
            tx: (dst_to_src.tx + 0.5) * inv_f - 0.5,
            ty: (dst_to_src.ty + 0.5) * inv_f - 0.5,
        };
        return warp_similarity_direct(&small, &t, w, h);
    }
    warp_similarity_direct(img, dst_to_src, w, h)
}

fn warp_similarity_direct(img: &RgbImage, t: &Similarity, w: u32, h: u32) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        for x in 0..w {
            let s = t.apply(Point::new(x as f32, y as f32));
            let p = sample_bilinear(img, s.x, s.y);
            out.put_pixel(
                x,
                y,
                Rgb([
                    p[0].round().clamp(0.0, 255.0) as u8,
                    p[1].round().clamp(0.0, 255.0) as u8,
                    p[2].round().clamp(0.0, 255.0) as u8,
                ]),
            );
        }
    }
    out
}

/// Resizes with an antialiasing bilinear (triangle) filter, SIMD-accelerated by
/// `fast_image_resize` (the `image` crate's own resize was a third of detection time).
pub fn resize_rgb(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
    let (w, h) = (w.max(1), h.max(1));
    if (w, h) == img.dimensions() {
        return img.clone();
    }
    let mut dst = RgbImage::new(w, h);
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    match Resizer::new().resize(img, &mut dst, &opts) {
        Ok(()) => dst,
        Err(_) => image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle),
    }
}

/// Shrinks by an integer factor, averaging each `f`×`f` block (partial blocks at the edges too).
pub fn box_downscale(img: &RgbImage, f: u32) -> RgbImage {
    if f <= 1 {
        return img.clone();
    }
    let w = img.width().div_ceil(f);
    let h = img.height().div_ceil(f);
    let mut out = RgbImage::new(w, h);
    for oy in 0..h {
        for ox in 0..w {
            let mut acc = [0u32; 3];
            let mut n = 0u32;
            for y in oy * f..((oy + 1) * f).min(img.height()) {
                for x in ox * f..((ox + 1) * f).min(img.width()) {
                    let p = img.get_pixel(x, y).0;
                    acc[0] += p[0] as u32;
                    acc[1] += p[1] as u32;
                    acc[2] += p[2] as u32;
                    n += 1;
                }
            }
            out.put_pixel(
                ox,
                oy,
                Rgb([
                    ((acc[0] + n / 2) / n) as u8,
                    ((acc[1] + n / 2) / n) as u8,
                    ((acc[2] + n / 2) / n) as u8,
                ]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f32, b: f32, eps: f32) -> bool {
        (a - b).abs() <= eps
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = Rect::new(0.0, 0.0, 10.0, 10.0);
        let b = Rect::new(5.0, 0.0, 10.0, 10.0);
        assert!(approx(a.iou(&b), 50.0 / 150.0, 1e-6));
        assert_eq!(a.iou(&Rect::new(20.0, 20.0, 5.0, 5.0)), 0.0);
        assert!(approx(a.iou(&a), 1.0, 1e-6));
        assert_eq!(Rect::default().iou(&Rect::default()), 0.0);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let items = vec![
            (0.6, Rect::new(0.0, 0.0, 10.0, 10.0)),
            (0.9, Rect::new(1.0, 1.0, 10.0, 10.0)),
            (0.8, Rect::new(50.0, 50.0, 10.0, 10.0)),
            (0.7, Rect::new(51.0, 50.0, 10.0, 10.0)),
        ];
        assert_eq!(nms(&items, 0.3), vec![1, 2]);
        assert_eq!(nms(&items, 0.99), vec![1, 2, 3, 0]);
        assert!(nms(&[], 0.3).is_empty());
    }

    #[test]
    fn similarity_estimate_recovers_a_known_transform() {
        let t = Similarity {
            a: 0.8 * 30f32.to_radians().cos(),
            b: 0.8 * 30f32.to_radians().sin(),
            tx: 12.0,
            ty: -7.0,
        };
        let src = [
            Point::new(10.0, 20.0),
            Point::new(40.0, 22.0),
            Point::new(25.0, 35.0),
            Point::new(15.0, 50.0),
            Point::new(38.0, 49.0),
        ];
        let dst: Vec<Point> = src.iter().map(|&p| t.apply(p)).collect();
        let e = Similarity::estimate(&src, &dst).unwrap();
        assert!(approx(e.a, t.a, 1e-4) && approx(e.b, t.b, 1e-4));
        assert!(approx(e.tx, t.tx, 1e-3) && approx(e.ty, t.ty, 1e-3));
        assert!(approx(e.rotation_deg(), 30.0, 1e-2));
        assert!(approx(e.scale(), 0.8, 1e-4));
        // The inverse maps back.
        let inv = e.inverse();
        for (s, d) in src.iter().zip(&dst) {
            let back = inv.apply(*d);
            assert!(approx(back.x, s.x, 1e-3) && approx(back.y, s.y, 1e-3));
        }
        assert!(Similarity::estimate(&[Point::default(); 3], &dst[..3]).is_none());
    }

    #[test]
    fn warp_identity_copies_and_translation_shifts() {
        let img = RgbImage::from_fn(20, 10, |x, y| Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let id = Similarity {
            a: 1.0,
            b: 0.0,
            tx: 0.0,
            ty: 0.0,
        };
        assert_eq!(warp_similarity(&img, &id, 20, 10), img);
        let shift = Similarity { tx: 3.0, ..id };
        let out = warp_similarity(&img, &shift, 10, 10);
        assert_eq!(out.get_pixel(0, 4), img.get_pixel(3, 4));
    }

    #[test]
    fn box_downscale_averages_blocks() {
        let img = RgbImage::from_fn(4, 2, |x, _| {
            if x < 2 {
                Rgb([0, 0, 0])
            } else {
                Rgb([200, 100, 50])
            }
        });
        let s = box_downscale(&img, 2);
        assert_eq!(s.dimensions(), (2, 1));
        assert_eq!(s.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(s.get_pixel(1, 0).0, [200, 100, 50]);
    }
}
