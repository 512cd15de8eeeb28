//! # honnin-web
//!
//! The static browser assets of honnin, compiled into the binary with
//! `include_bytes!`: no build step, no npm, nothing fetched at build or run time. The
//! server looks a request path up with [`asset`] and answers with the asset's
//! `content_type` and `body`; everything else about serving (caching headers, whether
//! the demo pages are enabled at all) is the server's business.
//!
//! | path | what |
//! |---|---|
//! | `/static/honnin-liveness.js` | The `<honnin-liveness>` custom element: a dependency-free ES module that captures the camera, shows the oval and the colour sequence, and speaks the liveness streaming protocol (`docs/liveness-protocol.md`). |
//! | `/demo/verify` | The identity-verification demo: document upload (`PUT /demo/api/verifications/{id}/document`), the liveness component, then the decision record (`GET /demo/api/verifications/{id}`), into the collection `demo-verify`. |
//! | `/demo/liveness` | A demo page: creates a session through the demo-only backend (`POST /demo/api/liveness-sessions`), mounts the component, then shows the result (`GET /demo/api/liveness-sessions/{id}`). |
//!
//! Embedding the component in a page of your own:
//!
//! ```html
//! <script type="module" src="https://honnin.example/static/honnin-liveness.js"></script>
//! <honnin-liveness session-id="…" client-token="…" server="https://honnin.example"></honnin-liveness>
//! <script>
//!   document.querySelector('honnin-liveness')
//!     .addEventListener('honnin-liveness-complete', (e) => {
//!       // e.detail = {sessionId, status, reason}; your backend now reads the result
//!     });
//! </script>
//! ```
//!
//! The component never learns the decision: only the customer's backend reads it with
//! its API key.

#![warn(missing_docs)]

/// One static asset: the path it is served at, its `Content-Type` and its bytes.
#[derive(Debug)]
pub struct Asset {
    /// The request path, starting with `/`.
    pub path: &'static str,
    /// The `Content-Type` header value, charset included for text.
    pub content_type: &'static str,
    /// The bytes to send.
    pub body: &'static [u8],
}

/// `Content-Type` of JavaScript modules.
pub const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
/// `Content-Type` of HTML pages.
pub const HTML: &str = "text/html; charset=utf-8";

/// Path of the `<honnin-liveness>` component.
pub const LIVENESS_COMPONENT_PATH: &str = "/static/honnin-liveness.js";
/// Path of the liveness demo page.
pub const LIVENESS_DEMO_PATH: &str = "/demo/liveness";
/// Path of the identity-verification demo page.
pub const VERIFY_DEMO_PATH: &str = "/demo/verify";

/// The hosted login page of the OpenID Connect provider (`GET /oidc/authorize`): HTML
/// with one placeholder, `{{CONFIG}}`, inside a `<script type="application/json">`
/// element, which the server replaces with the page's JSON configuration
/// (`requestId`, `sessionId`, `clientToken`, `clientName`; every `<` written `\u003c`).
/// The page mounts the liveness component and, when the check has ended, posts the
/// request id to `/oidc/authorize/complete`, which redirects to the application.
pub const OIDC_LOGIN_TEMPLATE: &str = include_str!("../assets/oidc-login.html");
/// The placeholder of [`OIDC_LOGIN_TEMPLATE`].
pub const OIDC_LOGIN_PLACEHOLDER: &str = "{{CONFIG}}";

/// Every asset, in no particular order. Paths are unique.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: LIVENESS_COMPONENT_PATH,
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/honnin-liveness.js"),
    },
    Asset {
        path: LIVENESS_DEMO_PATH,
        content_type: HTML,
        body: include_bytes!("../assets/demo-liveness.html"),
    },
    Asset {
        path: VERIFY_DEMO_PATH,
        content_type: HTML,
        body: include_bytes!("../assets/demo-verify.html"),
    },
];

/// The asset served at `path` (exact match, no query string), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Whether `path` is a demo page (served only when the demo is enabled).
pub fn is_demo(path: &str) -> bool {
    path.starts_with("/demo/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(a: &Asset) -> &'static str {
        std::str::from_utf8(a.body).expect("text assets are UTF-8")
    }

    #[test]
    fn every_asset_is_non_empty_with_a_known_type_and_a_unique_path() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            assert!(a.path.starts_with('/'), "{}", a.path);
            assert!(
                [JAVASCRIPT, HTML].contains(&a.content_type),
                "{}: {}",
                a.path,
                a.content_type
            );
            assert!(
                ASSETS[i + 1..].iter().all(|b| b.path != a.path),
                "duplicate {}",
                a.path
            );
            // Text assets must be valid UTF-8, as their charset says.
            let _ = text(a);
        }
    }

    #[test]
    fn the_login_page_has_its_one_placeholder_inside_a_json_script() {
        let t = OIDC_LOGIN_TEMPLATE;
        assert_eq!(t.matches(OIDC_LOGIN_PLACEHOLDER).count(), 1);
        let at = t.find(OIDC_LOGIN_PLACEHOLDER).unwrap();
        let open = t[..at].rfind("<script").unwrap();
        assert!(t[open..at].contains("type=\"application/json\""));
        assert!(t.contains("/oidc/authorize/complete"));
    }

    #[test]
    fn lookup() {
        assert_eq!(
            asset("/static/honnin-liveness.js").unwrap().content_type,
            JAVASCRIPT
        );
        assert_eq!(asset("/demo/liveness").unwrap().content_type, HTML);
        assert_eq!(asset(VERIFY_DEMO_PATH).unwrap().content_type, HTML);
        assert!(is_demo(VERIFY_DEMO_PATH));
        assert!(asset("/demo/liveness/").is_none());
        assert!(asset("/static/nope.js").is_none());
        assert!(asset("").is_none());
        assert!(is_demo(LIVENESS_DEMO_PATH));
        assert!(!is_demo(LIVENESS_COMPONENT_PATH));
    }

    #[test]
    fn the_component_is_self_contained() {
        let js = text(asset(LIVENESS_COMPONENT_PATH).unwrap());
        for line in js.lines() {
            let l = line.trim_start();
            assert!(
                !(l.starts_with("import ") || l.starts_with("import(") || l.contains(" import(")),
                "the component must not import anything: {line}"
            );
            assert!(
                !(l.contains("http://") || l.contains("https://"))
                    || l.starts_with("//")
                    || l.starts_with('*'),
                "no external URL outside comments: {line}"
            );
        }
        assert!(js.contains("customElements.define('honnin-liveness'"));
        assert!(js.contains("attachShadow"));
    }

    #[test]
    fn the_demo_page_loads_the_component() {
        let html = text(asset(LIVENESS_DEMO_PATH).unwrap());
        assert!(html.contains(r#"src="/static/honnin-liveness.js""#));
        assert!(html.contains("<honnin-liveness") || html.contains("'honnin-liveness'"));
        assert!(html.contains("/demo/api/liveness-sessions"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
