//! Bytes → RGB pixels, defensively.
//!
//! Limits are checked in the cheapest order: byte size, format signature, header
//! dimensions (before any pixel is allocated, which stops decompression bombs),
//! then the decode itself under an allocation limit. EXIF orientation is applied,
//! so every coordinate the engine reports refers to the image as a person sees it.

use std::io::Cursor;

use image::{ImageDecoder, ImageFormat, ImageReader, RgbImage};
use serde::Serialize;

use crate::error::ImageError;

/// Limits applied to every decoded image. The defaults match Amazon Rekognition's
/// (5 MB of bytes, 80 px minimum side) plus a 40-megapixel bomb guard.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DecodeLimits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Largest accepted width × height (after the header is read, before decoding).
    pub max_pixels: u64,
    /// Smallest accepted side, in pixels.
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            max_pixels: 40_000_000,
            min_side: 80,
        }
    }
}

/// The encodings honnin accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// JPEG (JFIF/EXIF), signature `FF D8 FF`.
    Jpeg,
    /// PNG, signature `89 50 4E 47`.
    Png,
    /// WebP (lossy or lossless), a `RIFF`…`WEBP` container.
    Webp,
    /// Windows bitmap, signature `BM`.
    Bmp,
}

/// A decoded image, upright (EXIF orientation applied).
#[derive(Debug, Clone)]
pub struct DecodedImage {
    /// 8-bit RGB pixels, upright; width × height as a person sees the image.
    pub rgb: RgbImage,
    /// The encoding the bytes were in ([`SourceFormat::Png`] for [`DecodedImage::from_rgb`]).
    pub format: SourceFormat,
    /// The EXIF orientation tag that was applied (1 = none).
    pub exif_orientation: u8,
}

impl DecodedImage {
    /// Width in pixels, after EXIF orientation.
    pub fn width(&self) -> u32 {
        self.rgb.width()
    }
    /// Height in pixels, after EXIF orientation.
    pub fn height(&self) -> u32 {
        self.rgb.height()
    }
    /// Wraps pixels that are already in memory (tests, video frames).
    pub fn from_rgb(rgb: RgbImage) -> Self {
        Self {
            rgb,
            format: SourceFormat::Png,
            exif_orientation: 1,
        }
    }
}

fn sniff(bytes: &[u8]) -> Result<SourceFormat, ImageError> {
    match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => Ok(SourceFormat::Jpeg),
        Ok(ImageFormat::Png) => Ok(SourceFormat::Png),
        Ok(ImageFormat::WebP) => Ok(SourceFormat::Webp),
        Ok(ImageFormat::Bmp) => Ok(SourceFormat::Bmp),
        Ok(other) => Err(ImageError::UnsupportedFormat {
            detail: format!(" (got {other:?})"),
        }),
        Err(_) => Err(ImageError::UnsupportedFormat {
            detail: String::new(),
        }),
    }
}

fn image_format(f: SourceFormat) -> ImageFormat {
    match f {
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Webp => ImageFormat::WebP,
        SourceFormat::Bmp => ImageFormat::Bmp,
    }
}

fn corrupt(e: impl std::fmt::Display) -> ImageError {
    ImageError::Corrupt {
        reason: e.to_string(),
    }
}

/// JPEG decoders conceal missing data by painting grey; honnin refuses it instead.
/// A complete JPEG ends with an EOI marker (FF D9) after its last entropy-coded scan.
/// Trailing bytes after EOI (motion photos, vendor trailers) are allowed.
fn check_jpeg_complete(bytes: &[u8]) -> Result<(), ImageError> {
    // Walk the marker segments up to the first SOS (start of scan) of the main image,
    // skipping APPn segments (which may embed an EXIF thumbnail with its own EOI).
    let mut i = 2usize;
    let n = bytes.len();
    let mut sos_at = None;
    while i + 4 <= n {
        if bytes[i] != 0xFF {
            return Err(corrupt("JPEG marker structure is broken"));
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1; // fill byte
            continue;
        }
        if marker == 0xDA {
            sos_at = Some(i);
            break;
        }
        if (0xD0..=0xD9).contains(&marker) || marker == 0x01 {
            i += 2;
            continue;
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if len < 2 {
            return Err(corrupt("JPEG segment length is invalid"));
        }
        i += 2 + len;
    }
    let Some(sos) = sos_at else {
        return Err(corrupt("JPEG has no image data (no start-of-scan marker)"));
    };
    let has_eoi = bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9]);
    if has_eoi {
        Ok(())
    } else {
        Err(corrupt(
            "JPEG ends before its end-of-image marker (truncated)",
        ))
    }
}

/// A complete PNG ends with an IEND chunk (its 4-byte CRC follows the type).
fn check_png_complete(bytes: &[u8]) -> Result<(), ImageError> {
    let tail = &bytes[bytes.len().saturating_sub(64)..];
    match tail.windows(4).rposition(|w| w == b"IEND") {
        Some(i) if tail.len() - (i + 4) >= 4 => Ok(()),
        _ => Err(corrupt("PNG ends before its IEND chunk (truncated)")),
    }
}

/// A WebP file is one RIFF chunk whose declared size must be present.
fn check_webp_complete(bytes: &[u8]) -> Result<(), ImageError> {
    if bytes.len() < 12 {
        return Err(corrupt("WebP header is truncated"));
    }
    let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if bytes.len() < declared.saturating_add(8) {
        return Err(corrupt(format!(
            "WebP declares {} bytes but has {} (truncated)",
            declared + 8,
            bytes.len()
        )));
    }
    Ok(())
}

/// What an image's header says, read without decoding any pixel (see [`probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    /// The encoding recognised from the signature.
    pub format: SourceFormat,
    /// As stored, before EXIF orientation.
    pub width: u32,
    /// As stored, before EXIF orientation.
    pub height: u32,
    /// Bytes a pixel takes in the decoder's output (3 for 8-bit RGB, 8 for 16-bit RGBA).
    pub decoded_bytes_per_pixel: u8,
    /// Whether EXIF orientation swaps or turns the image (a rotated copy is made).
    pub rotates: bool,
}

impl ImageHeader {
    /// Upper bound on the memory decoding and detecting in this image take, bytes: the
    /// decoder's output, the RGB copy, a rotated copy when EXIF asks for one, and 32 MiB
    /// for the detector's input tensor (at most 1280 px a side: `max_detect_side`) and
    /// the aligned face chips.
    pub fn working_set_bytes(&self) -> u64 {
        let px = self.width as u64 * self.height as u64;
        let per_px = self.decoded_bytes_per_pixel as u64 + 3 + if self.rotates { 3 } else { 0 };
        px * per_px + (32 << 20)
    }
}

/// Reads and checks an image's header under `limits` without decoding pixels: byte
/// size, format signature, completeness (JPEG EOI, PNG IEND, WebP RIFF length), pixel
/// count and minimum side. [`decode`] runs the same checks first; a caller that must
/// bound work before committing to it (admission control, a liveness frame that must
/// match an announced size) probes first. Never panics on any input.
pub fn probe(bytes: &[u8], limits: &DecodeLimits) -> Result<ImageHeader, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    if bytes.len() > limits.max_bytes {
        return Err(ImageError::TooLarge {
            size: bytes.len(),
            limit: limits.max_bytes,
        });
    }
    let format = sniff(bytes)?;
    match format {
        SourceFormat::Jpeg => check_jpeg_complete(bytes)?,
        SourceFormat::Png => check_png_complete(bytes)?,
        SourceFormat::Webp => check_webp_complete(bytes)?,
        SourceFormat::Bmp => {}
    }

    let reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            megapixels: pixels as f64 / 1e6,
            limit_megapixels: limits.max_pixels as f64 / 1e6,
        });
    }
    if width < limits.min_side || height < limits.min_side {
        return Err(ImageError::TooSmall {
            width,
            height,
            min_side: limits.min_side,
        });
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    Ok(ImageHeader {
        format,
        width,
        height,
        decoded_bytes_per_pixel: decoder.color_type().bytes_per_pixel(),
        rotates: orientation != image::metadata::Orientation::NoTransforms,
    })
}

/// Decodes `bytes` under `limits`. Never panics on any input.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<DecodedImage, ImageError> {
    let header = probe(bytes, limits)?;
    let (format, width, height) = (header.format, header.width, header.height);
    let pixels = width as u64 * height as u64;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut image_limits = image::Limits::default();
    image_limits.max_image_width = Some(width);
    image_limits.max_image_height = Some(height);
    // RGBA16 is the widest layout a supported decoder produces: 8 bytes a pixel.
    image_limits.max_alloc = Some(pixels.saturating_mul(8).saturating_add(1 << 20));
    reader.limits(image_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(|e| match e {
        image::ImageError::Limits(_) => ImageError::TooManyPixels {
            width,
            height,
            megapixels: pixels as f64 / 1e6,
            limit_megapixels: limits.max_pixels as f64 / 1e6,
        },
        other => corrupt(other),
    })?;
    img.apply_orientation(orientation);
    let exif_orientation = orientation.to_exif();
    Ok(DecodedImage {
        rgb: img.into_rgb8(),
        format,
        exif_orientation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, Rgb};

    fn sample(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
        })
    }

    fn encode(img: &RgbImage, fmt: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, fmt).unwrap();
        out.into_inner()
    }

    #[test]
    fn decodes_all_supported_formats() {
        let img = sample(120, 90);
        for (fmt, want) in [
            (ImageFormat::Png, SourceFormat::Png),
            (ImageFormat::Jpeg, SourceFormat::Jpeg),
            (ImageFormat::Bmp, SourceFormat::Bmp),
            (ImageFormat::WebP, SourceFormat::Webp),
        ] {
            let bytes = encode(&img, fmt);
            let d = decode(&bytes, &DecodeLimits::default()).unwrap();
            assert_eq!(d.format, want);
            assert_eq!((d.width(), d.height()), (120, 90));
        }
    }

    #[test]
    fn rejects_bad_inputs_with_distinct_errors() {
        let lim = DecodeLimits::default();
        assert_eq!(decode(&[], &lim).unwrap_err(), ImageError::Empty);
        assert_eq!(
            decode(b"hello, this is not an image", &lim)
                .unwrap_err()
                .code(),
            "InvalidImageFormat"
        );
        // GIF is a known format that honnin does not accept.
        assert_eq!(
            decode(b"GIF89a\x01\x00\x01\x00", &lim).unwrap_err().code(),
            "InvalidImageFormat"
        );
        let png = encode(&sample(100, 100), ImageFormat::Png);
        let small = DecodeLimits {
            max_bytes: png.len() - 1,
            ..lim
        };
        assert_eq!(decode(&png, &small).unwrap_err().code(), "ImageTooLarge");
        let tiny = encode(&sample(79, 200), ImageFormat::Png);
        assert_eq!(decode(&tiny, &lim).unwrap_err().code(), "ImageTooSmall");
    }

    #[test]
    fn truncated_files_are_corrupt() {
        for fmt in [
            ImageFormat::Jpeg,
            ImageFormat::Png,
            ImageFormat::WebP,
            ImageFormat::Bmp,
        ] {
            let bytes = encode(&sample(200, 160), fmt);
            for cut in [bytes.len() / 2, bytes.len() - 3] {
                let err = decode(&bytes[..cut], &DecodeLimits::default()).unwrap_err();
                assert_eq!(err.code(), "CorruptImage", "{fmt:?} cut at {cut}: {err}");
            }
        }
    }

    #[test]
    fn decompression_bomb_is_refused_before_decoding() {
        // A PNG header that claims 20000x20000 pixels in a few hundred bytes.
        let mut buf = Cursor::new(Vec::new());
        let enc = image::codecs::png::PngEncoder::new(&mut buf);
        let w = 20_000u32;
        let h = 20_000u32;
        // Encoding the real pixels would take 1.2 GB; write a 1-row image then patch the header.
        enc.write_image(
            &vec![0u8; (w * 3) as usize],
            w,
            1,
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
        let mut bytes = buf.into_inner();
        bytes[20..24].copy_from_slice(&h.to_be_bytes()); // IHDR height
        let crc = crc32fast::hash(&bytes[12..29]); // IHDR type + data
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode(&bytes, &DecodeLimits::default()).unwrap_err();
        assert_eq!(err.code(), "ImageDimensionsTooLarge", "{err}");
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 120x90 JPEG tagged "rotate 90° clockwise" (orientation 6) must come out 90x120.
        let img = sample(120, 90);
        let jpeg = encode(&img, ImageFormat::Jpeg);
        let tagged = crate::decode::test_support::with_exif_orientation(&jpeg, 6);
        let d = decode(&tagged, &DecodeLimits::default()).unwrap();
        assert_eq!(d.exif_orientation, 6);
        assert_eq!((d.width(), d.height()), (90, 120));
        // The top-left pixel of the upright image is the bottom-left pixel of the stored one.
        let stored = decode(&jpeg, &DecodeLimits::default()).unwrap();
        let a = d.rgb.get_pixel(0, 0);
        let b = stored.rgb.get_pixel(0, 89);
        for c in 0..3 {
            assert!((a[c] as i32 - b[c] as i32).abs() <= 12, "{a:?} vs {b:?}");
        }
    }
}

/// Helpers shared by this crate's tests (and the integration tests through `pub`).
#[doc(hidden)]
pub mod test_support {
    /// Inserts a minimal EXIF APP1 segment carrying `orientation` after the SOI marker.
    pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        let mut tiff = Vec::new();
        tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08"); // big-endian TIFF header, IFD at 8
        tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
        tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
        tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
        tiff.extend_from_slice(&1u32.to_be_bytes()); // count
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0]);
        tiff.extend_from_slice(&0u32.to_be_bytes()); // no next IFD
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }
}
