//! Database URLs that never print a secret.
//!
//! A URL such as `postgres://honnin:s3cret@db/honnin?sslpassword=…` reaches error
//! messages, logs and `Debug` output in many ways. [`RedactedUrl`] keeps the real URL
//! for connecting and shows a safe form everywhere else:
//!
//! * a URL that parses: scheme, user, host, port and path, with the password replaced
//!   by `***` and the whole query string by `?…` (libpq takes `password=` and other
//!   secrets there);
//! * anything that does not parse as a URL (a typo, a libpq `key=value` string): only
//!   its scheme, if it has one, and `(not shown: not a valid URL)`;
//! * `sqlite:` URLs as they are (a file path holds no secret).
//!
//! [`RedactedUrl::scrub`] removes the secrets (the password and every query value) from
//! any text, a driver's error message say, that might quote them.

use std::fmt;

/// Secrets shorter than this are not scrubbed from free text: replacing every "0" or
/// "ab" in a message would mangle it while protecting nothing (such a password is no
/// secret). They are still never shown in the URL itself.
const MIN_SCRUB_LEN: usize = 4;

/// A database URL whose `Display` and `Debug` hide its secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl {
    url: String,
}

impl RedactedUrl {
    /// Wraps `url` as given (any text: it is checked only when connecting).
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl { url: url.into() }
    }

    /// The real URL, for connecting only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// The strings that must never appear in text: the password (as written and
    /// percent-decoded) and every query value.
    fn secrets(&self) -> Vec<String> {
        if self.is_sqlite() {
            return Vec::new();
        }
        let mut out = Vec::new();
        match url::Url::parse(&self.url) {
            Ok(u) => {
                if let Some(p) = u.password() {
                    out.push(p.to_string());
                    if let Ok(d) = percent_decode(p) {
                        out.push(d);
                    }
                }
                for (_, v) in u.query_pairs() {
                    out.push(v.into_owned());
                }
                if let Some(q) = u.query() {
                    for pair in q.split('&') {
                        if let Some((_, v)) = pair.split_once('=') {
                            out.push(v.to_string());
                        }
                    }
                }
            }
            // Not a URL: every word after a `=` or a `:` could be a secret; the text
            // itself is never shown, and scrubbing relies on its pieces.
            Err(_) => {
                for piece in self.url.split([' ', '@', '/', '?', '&', '#']) {
                    if let Some((_, v)) = piece.split_once(['=', ':']) {
                        out.push(v.to_string());
                    }
                }
            }
        }
        out.retain(|s| s.len() >= MIN_SCRUB_LEN);
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }

    /// `text` with every secret of this URL replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in self.secrets() {
            out = out.replace(&s, "***");
        }
        out
    }

    fn shown(&self) -> String {
        if self.is_sqlite() {
            return self.url.clone();
        }
        match url::Url::parse(&self.url) {
            Ok(u) => {
                let mut s = format!("{}://", u.scheme());
                if !u.username().is_empty() {
                    s.push_str(u.username());
                    if u.password().is_some() {
                        s.push_str(":***");
                    }
                    s.push('@');
                }
                s.push_str(u.host_str().unwrap_or(""));
                if let Some(p) = u.port() {
                    s.push_str(&format!(":{p}"));
                }
                s.push_str(u.path());
                if u.query().is_some() {
                    s.push_str("?…");
                }
                s
            }
            Err(_) => match self.url.split_once("://") {
                Some((scheme, _))
                    if scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'+') =>
                {
                    format!("{scheme}://(not shown: not a valid URL)")
                }
                _ => "(not shown: not a valid URL)".to_string(),
            },
        }
    }
}

fn percent_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out)
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown())
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
    fn secrets_never_print() {
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
            ("postgres://u:pw@h/db?x=a@b", "postgres://u:***@h/db?…"),
            (
                "postgres://u:SECRET4@127.0.0.1:1/db?password=SECRET5",
                "postgres://u:***@127.0.0.1:1/db?…",
            ),
            (
                "postgres://u:SE/CRET9@127.0.0.1:1/db",
                "postgres://(not shown: not a valid URL)",
            ),
            (
                "host=127.0.0.1 port=1 user=u password=SECRET12",
                "(not shown: not a valid URL)",
            ),
            (
                "postgres://u:0@127.0.0.1:1/db",
                "postgres://u:***@127.0.0.1:1/db",
            ),
        ] {
            let r = RedactedUrl::new(url);
            assert_eq!(r.to_string(), shown, "{url}");
            assert!(format!("{r:?}").contains(shown));
        }
        let r = RedactedUrl::new("postgres://u:p%40ssword@h/db?sslpassword=Q1234567");
        assert_eq!(
            r.scrub("auth failed for p@ssword and p%40ssword; key Q1234567"),
            "auth failed for *** and ***; key ***"
        );
        // A one-character password is hidden in the URL, and text is left readable.
        let r = RedactedUrl::new("postgres://u:0@127.0.0.1:1/db");
        assert_eq!(
            r.scrub("connect 127.0.0.1:1 refused"),
            "connect 127.0.0.1:1 refused"
        );
        let r = RedactedUrl::new("host=h password=SECRET12");
        assert_eq!(r.scrub("bad: password=SECRET12"), "bad: password=***");
    }
}
