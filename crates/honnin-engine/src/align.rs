//! Face alignment: a similarity transform that puts the five landmarks on the
//! ArcFace 112×112 template, then a warp of the face into that frame.

use image::RgbImage;

use crate::geometry::{warp_similarity, Point, Similarity};

/// Side of the aligned face chip, in pixels.
pub const CHIP_SIZE: u32 = 112;

/// Where the five landmarks sit in a 112×112 chip (the template used to train
/// ArcFace-family recognizers, including both of honnin's).
pub const ARCFACE_TEMPLATE: [Point; 5] = [
    Point::new(38.2946, 51.6963),
    Point::new(73.5318, 51.5014),
    Point::new(56.0252, 71.7366),
    Point::new(41.5493, 92.3655),
    Point::new(70.7299, 92.2041),
];

/// The transform from image pixels to chip pixels for these landmarks.
pub fn image_to_chip(landmarks: &[Point; 5]) -> Option<Similarity> {
    Similarity::estimate(landmarks, &ARCFACE_TEMPLATE)
}

/// Cuts the aligned 112×112 chip for a face out of `img`.
/// Returns `None` only for degenerate landmarks (all in one point).
pub fn align_face(img: &RgbImage, landmarks: &[Point; 5]) -> Option<RgbImage> {
    let to_chip = image_to_chip(landmarks)?;
    let to_image = to_chip.inverse();
    if !(to_image.a.is_finite()
        && to_image.b.is_finite()
        && to_image.tx.is_finite()
        && to_image.ty.is_finite())
    {
        return None;
    }
    Some(warp_similarity(img, &to_image, CHIP_SIZE, CHIP_SIZE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landmarks_land_on_the_template() {
        // A face at twice the template scale, rotated 20°, shifted.
        let t = Similarity {
            a: 2.0 * 20f32.to_radians().cos(),
            b: 2.0 * 20f32.to_radians().sin(),
            tx: 300.0,
            ty: 150.0,
        };
        let lm = ARCFACE_TEMPLATE.map(|p| t.apply(p));
        let m = image_to_chip(&lm).unwrap();
        for (p, q) in lm.iter().zip(ARCFACE_TEMPLATE.iter()) {
            let r = m.apply(*p);
            assert!((r.x - q.x).abs() < 1e-3 && (r.y - q.y).abs() < 1e-3);
        }
        assert!((m.scale() - 0.5).abs() < 1e-5);
        assert!((m.rotation_deg() + 20.0).abs() < 1e-3);
    }

    #[test]
    fn warped_chip_has_the_marked_pixel_at_the_template_nose() {
        // Paint a bright dot at the nose position of a 2x-scaled face and check that
        // the chip shows it at the template's nose.
        let t = Similarity {
            a: 2.0,
            b: 0.0,
            tx: 40.0,
            ty: 30.0,
        };
        let lm = ARCFACE_TEMPLATE.map(|p| t.apply(p));
        let mut img = RgbImage::new(400, 300);
        let nose = lm[2];
        for dy in -3i32..=3 {
            for dx in -3i32..=3 {
                img.put_pixel(
                    (nose.x as i32 + dx) as u32,
                    (nose.y as i32 + dy) as u32,
                    image::Rgb([255, 255, 255]),
                );
            }
        }
        let chip = align_face(&img, &lm).unwrap();
        assert_eq!(chip.dimensions(), (112, 112));
        let p = chip.get_pixel(56, 72);
        assert!(p[0] > 200, "nose pixel {p:?}");
        assert!(chip.get_pixel(20, 20)[0] < 10);
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        assert!(align_face(&RgbImage::new(10, 10), &[Point::new(3.0, 3.0); 5]).is_none());
    }
}
