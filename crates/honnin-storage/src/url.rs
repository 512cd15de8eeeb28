//! Database URLs that never print their password.
//!
//! A URL such as `postgres://honnin:s3cret@db/honnin` reaches error messages, logs and
//! `Debug` output in many ways. [`RedactedUrl`] keeps the real URL for connecting and
//! shows `postgres://honnin:***@db/honnin` everywhere else; [`RedactedUrl::scrub`]
//! removes the password from any text (a driver's error message, say) that might
//! quote it.

use std::fmt;

/// A database URL whose `Display` and `Debug` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl {
    url: String,
}

impl RedactedUrl {
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl { url: url.into() }
    }

    /// The real URL, for connecting only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The password in the URL's user information, if any (percent-encoded as written).
    fn password(&self) -> Option<&str> {
        let rest = &self.url[self.url.find("://")? + 3..];
        // The authority ends at the first '/', '?' or '#'; the user information at its
        // last '@' (a password may itself contain '@' only percent-encoded, but be safe).
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        let at = authority.rfind('@')?;
        let (_, pass) = authority[..at].split_once(':')?;
        (!pass.is_empty()).then_some(pass)
    }

    /// `text` with every occurrence of this URL's password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(p) => {
                let mut out = text.replace(p, "***");
                // A driver may quote it percent-decoded.
                let decoded = percent_decode(p);
                if decoded != p && !decoded.is_empty() {
                    out = out.replace(&decoded, "***");
                }
                out
            }
            None => text.to_string(),
        }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scrub(&self.url))
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        for (url, shown) in [
            (
                "postgres://honnin:s3cret@db:5432/honnin",
                "postgres://honnin:***@db:5432/honnin",
            ),
            ("mysql://u:p%40ss@h/db", "mysql://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "sqlite://honnin-data/honnin.db?mode=rwc",
                "sqlite://honnin-data/honnin.db?mode=rwc",
            ),
            ("postgres://u:pw@h/db?x=a@b", "postgres://u:***@h/db?x=a@b"),
            ("not a url", "not a url"),
        ] {
            let r = RedactedUrl::new(url);
            assert_eq!(r.to_string(), shown);
            assert!(format!("{r:?}").contains(shown));
        }
        let r = RedactedUrl::new("postgres://u:p%40ss@h/db");
        assert_eq!(
            r.scrub("password authentication failed for p@ss and p%40ss"),
            "password authentication failed for *** and ***"
        );
    }
}
