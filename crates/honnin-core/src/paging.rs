//! Opaque page tokens (`nextToken`).
//!
//! A token is the position after which the next page starts, sealed (AES-256-GCM) with
//! the service's page-token key (`service:page-tokens` in the key vault, shared by every
//! server of a deployment) and bound to the listing it came from and to when it was
//! issued. A client cannot read another listing's ids from a token, cannot forge one,
//! cannot move one to another listing (another collection, another key's scope), and
//! cannot use one older than [`TOKEN_LIFETIME_SECS`]: all of these are refused with
//! `InvalidParameter` (Rekognition: `InvalidPaginationTokenException`).

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::crypto::{page_token_aad, DataKey};
use crate::error::{CoreError, Result};

/// A page token is valid this long after it was issued (Rekognition's: 24 hours).
pub const TOKEN_LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Serialize, Deserialize)]
struct Position {
    /// The last id of the page the token follows.
    after: String,
    /// Issued at, seconds since the epoch.
    iat: i64,
}

/// Seals `after` into a token for `listing` (e.g. `faces:<collection uid>:*`).
pub fn issue(key: &DataKey, listing: &str, after: &str, now_secs: i64) -> String {
    let plain = serde_json::to_vec(&Position {
        after: after.to_string(),
        iat: now_secs,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(key.seal(&plain, &page_token_aad(listing)))
}

/// Opens a token issued for `listing`; `None` in, `None` out.
pub fn open(
    key: &DataKey,
    listing: &str,
    token: Option<&str>,
    now_secs: i64,
) -> Result<Option<String>> {
    let Some(token) = token else { return Ok(None) };
    let bad = || {
        CoreError::InvalidParameter(
            "nextToken is not a token this service issued for this listing (or it expired)".into(),
        )
    };
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| bad())?;
    let plain = key
        .open(&sealed, &page_token_aad(listing))
        .map_err(|_| bad())?;
    let p: Position = serde_json::from_slice(&plain).map_err(|_| bad())?;
    if now_secs - p.iat > TOKEN_LIFETIME_SECS || p.iat - now_secs > 300 {
        return Err(bad());
    }
    Ok(Some(p.after))
}

/// The page size of a listing: `max` (1–`cap`) or `default`. Errors: InvalidParameter.
pub(crate) fn page_limit(max: Option<u32>, default: u32, cap: u32) -> Result<i64> {
    match max {
        Some(0) => Err(CoreError::InvalidParameter(
            "maxResults must be at least 1".into(),
        )),
        Some(m) if m > cap => Err(CoreError::InvalidParameter(format!(
            "maxResults must be at most {cap}"
        ))),
        Some(m) => Ok(m as i64),
        None => Ok(default as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_opaque_bound_and_checked() {
        let k = DataKey::generate();
        let t = issue(&k, "collections:*", "tenant-b-secret-name", 1_000);
        assert!(!t.contains("tenant"));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&t)
            .unwrap();
        assert!(
            !b64.windows(6).any(|w| w == b"tenant"),
            "the id is not readable"
        );
        assert_eq!(
            open(&k, "collections:*", Some(&t), 1_010)
                .unwrap()
                .as_deref(),
            Some("tenant-b-secret-name")
        );
        assert_eq!(open(&k, "collections:*", None, 0).unwrap(), None);
        for (listing, token, now) in [
            ("collections:uid-a", t.as_str(), 1_010), // another listing
            ("collections:*", t.as_str(), 1_000 + 86_401), // too old
            // What the token used to be: the base64 of an id.
            ("collections:*", "dGVuYW50LWI", 1_010),
            ("collections:*", "!!", 1_010),
        ] {
            let e = open(&k, listing, Some(token), now).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{listing} {token}");
        }
        assert!(open(&DataKey::generate(), "collections:*", Some(&t), 1_010).is_err());
    }
}
