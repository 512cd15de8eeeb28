//! Validation of what callers send, in one place: identifiers, canonical UUIDs,
//! printable text and similarity values.
//!
//! **Ids in UUID form are canonicalised at the boundary.** A face, transient face,
//! liveness session, verification or webhook id is accepted in any spelling the UUID
//! standard allows (upper case, `{…}`, `urn:uuid:…`, no hyphens) and turned into the
//! one form honnin stores (lower-case, hyphenated), so `FACE-ID` and `face-id` never
//! name two things, and a lookup or deletion never misses because of case. Key ids (16
//! hex digits) are lower-cased the same way.

use crate::error::{CoreError, Result};

fn valid_id(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' || extra.contains(&b)
        })
}

/// At most this much of a caller's bad value is quoted back in an error message.
const QUOTE: usize = 64;

fn quote(s: &str) -> String {
    s.chars()
        .take(QUOTE)
        .flat_map(char::escape_debug)
        .collect::<String>()
}

/// Validates a collection id: 1–255 of `[a-zA-Z0-9_.-]` (Rekognition's rule).
pub fn check_collection_id(id: &str) -> Result<()> {
    if valid_id(id, 255, &[]) {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "collectionId `{}` must be 1–255 characters of [a-zA-Z0-9_.-]",
            quote(id)
        )))
    }
}

/// Validates a user id: 1–128 of `[a-zA-Z0-9_.:-]`.
pub fn check_user_id(id: &str) -> Result<()> {
    if valid_id(id, 128, b":") {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(
            "userId must be 1–128 characters of [a-zA-Z0-9_.:-]".into(),
        ))
    }
}

/// Validates an external image id: 1–255 of `[a-zA-Z0-9_.:-]`.
pub fn check_external_id(id: &str) -> Result<()> {
    if valid_id(id, 255, b":") {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(
            "externalImageId must be 1–255 characters of [a-zA-Z0-9_.:-]".into(),
        ))
    }
}

/// The canonical spelling (lower-case, hyphenated) of a UUID given in any standard
/// form, or `None` if `id` is not a UUID.
pub fn canonical_uuid(id: &str) -> Option<String> {
    uuid::Uuid::parse_str(id.trim())
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// A face id (indexed or transient) in canonical form; `InvalidParameter` otherwise.
pub fn face_id(id: &str) -> Result<String> {
    canonical_uuid(id)
        .ok_or_else(|| CoreError::InvalidParameter(format!("faceId `{}` is not a UUID", quote(id))))
}

/// Key ids are 16 hex digits; the canonical form is lower-case.
pub fn key_id(id: &str) -> Option<String> {
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_ascii_lowercase())
}

/// Characters that are not printable text: controls (C0, DEL, C1), format characters
/// (bidi marks, overrides and isolates, zero-width characters, the byte-order mark, tag
/// characters…), line and paragraph separators, surrogates, private-use and unassigned
/// code points (noncharacters included), and Unicode's other default-ignorable code
/// points (invisible fillers, variation selectors, the soft hyphen): anything that can
/// hide or reorder text on a terminal or in a log. General categories from the
/// `unicode-properties` crate; the default-ignorable list from Unicode's
/// `DerivedCoreProperties.txt` (`Default_Ignorable_Code_Point`).
pub fn is_unprintable(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    matches!(
        c.general_category(),
        G::Control
            | G::Format
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::Surrogate
            | G::PrivateUse
            | G::Unassigned
    ) || matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Checks that `value` (the field `name`) is at most `max` characters of printable text.
pub fn printable(name: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(CoreError::InvalidParameter(format!(
            "{name} must be at most {max} characters"
        )));
    }
    if let Some(c) = value.chars().find(|c| is_unprintable(*c)) {
        return Err(CoreError::InvalidParameter(format!(
            "{name} must be printable text (it holds {})",
            c.escape_unicode()
        )));
    }
    Ok(())
}

/// Text safe to print on a terminal: unprintable characters shown escaped (`\u{1b}`).
pub fn escape_unprintable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if is_unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A similarity threshold 0–100, if given.
pub fn similarity(t: Option<f32>, name: &str) -> Result<Option<f32>> {
    match t {
        Some(v) if !(0.0..=100.0).contains(&v) || v.is_nan() => Err(CoreError::InvalidParameter(
            format!("{name} must be between 0 and 100"),
        )),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_one_spelling() {
        let canon = "67e55044-10b1-426f-9247-bb680e5fe0c8";
        for spelling in [
            canon,
            "67E55044-10B1-426F-9247-BB680E5FE0C8",
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}",
            "urn:uuid:67e55044-10b1-426f-9247-bb680e5fe0c8",
            "67e5504410b1426f9247bb680e5fe0c8",
        ] {
            assert_eq!(
                canonical_uuid(spelling).as_deref(),
                Some(canon),
                "{spelling}"
            );
            assert_eq!(face_id(spelling).unwrap(), canon);
        }
        assert!(canonical_uuid("not-a-uuid").is_none());
        assert!(face_id("x").is_err());
        assert_eq!(
            key_id("0123456789ABCDEF").as_deref(),
            Some("0123456789abcdef")
        );
        assert!(key_id("0123").is_none());
        assert!(key_id("0123456789abcdeg").is_none());
    }

    #[test]
    fn only_printable_text_passes() {
        assert!(printable("name", "Bob's key — ünïcode ok", 128).is_ok());
        for bad in [
            "\u{1b}[31mred",
            "tab\there",
            "line\nbreak",
            "bell\u{7}",
            "c1\u{9b}",
            "rtl\u{202E}txt.exe",
            "zero\u{200B}width",
            "\u{FEFF}bom",
            "alm\u{061C}",
            "line\u{2028}sep",
            "para\u{2029}sep",
            "soft\u{00AD}hyphen",
            "mongolian\u{180E}",
            "tag\u{E0041}",
            "selector\u{FE0F}",
            "filler\u{3164}",
            "nonchar\u{FFFF}",
            "private\u{E000}",
        ] {
            let e = printable("name", bad, 128).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{bad:?}");
        }
        assert!(printable("name", &"x".repeat(129), 128).is_err());
        assert_eq!(escape_unprintable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }
}
