//! Request extractors: the authenticated caller ([`Caller`]) and request bodies as
//! JSON or multipart ([`Input`]), with every rejection turned into an [`ApiError`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use honnin_core::{CoreError, Principal};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::multipart::{self, Part};
use crate::AppState;

/// Per-key token buckets.
pub struct KeyLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl KeyLimiter {
    /// Buckets of `burst` requests per key, refilled at `per_second` requests per second
    /// (each at least 1).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        KeyLimiter {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    /// `Err(seconds to wait)` when the key is over its rate.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
            })
    }

    /// Forgets idle keys (called by the sweeper).
    pub fn shrink(&self) {
        self.limiter.retain_recent();
    }
}

/// Failed authentication, limited per client address: after `burst` failures (then
/// `per_second`), an address gets 429 `Throttling` with `Retry-After` and its requests
/// are refused before any key lookup until the wait is over. Successful requests cost
/// nothing here.
pub struct AuthGuard {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    /// Anonymous face-login starts per address (the OpenID Connect provider).
    login_starts: DefaultKeyedRateLimiter<IpAddr>,
    blocked: parking_lot::Mutex<HashMap<IpAddr, Instant>>,
    header: Option<axum::http::HeaderName>,
}

impl AuthGuard {
    /// A budget of `burst` failed authentications per client address, refilled at
    /// `per_second` per second (each at least 1). `client_ip_header` names the header a
    /// trusted proxy puts the client's address in (empty or not a header name: the
    /// connection's peer address).
    pub fn new(per_second: u32, burst: u32, client_ip_header: &str) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        AuthGuard {
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            login_starts: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(20).unwrap_or(NonZeroU32::MIN),
            )),
            blocked: parking_lot::Mutex::new(HashMap::new()),
            header: axum::http::HeaderName::from_bytes(client_ip_header.trim().as_bytes()).ok(),
        }
    }

    /// The client the failed-authentication budget is counted for: the address the
    /// nearest proxy appended to the configured header (its **last** address; what a
    /// client writes in front of it is ignored), else the connection's peer
    /// (unspecified when the server was not started with connection info, as in some
    /// tests: then every client shares one budget). IPv6 clients are counted per /64,
    /// the block one subscriber gets; an IPv4-mapped address counts as IPv4.
    pub fn client(&self, parts: &Parts) -> IpAddr {
        let from_header = self.header.as_ref().and_then(|h| {
            parts
                .headers
                .get_all(h)
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        });
        let ip = from_header.unwrap_or_else(|| {
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
        });
        budget_key(ip)
    }

    /// `Err(seconds)` while `ip` is blocked.
    fn check(&self, ip: IpAddr) -> Result<(), u64> {
        match self.blocked.lock().get(&ip) {
            Some(until) if *until > Instant::now() => {
                let wait = *until - Instant::now();
                Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
            }
            _ => Ok(()),
        }
    }

    /// Counts a failure; `Err(seconds)` when it exhausts the address's budget.
    fn failed(&self, ip: IpAddr) -> Result<(), u64> {
        metrics::counter!("honnin_auth_failures_total").increment(1);
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1));
            self.blocked.lock().insert(ip, Instant::now() + wait);
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Sets the budget of anonymous face-login starts per client address and minute
    /// (`limits.login_starts_per_minute`, at least 1).
    pub fn with_login_starts(mut self, per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        self.login_starts = RateLimiter::keyed(Quota::per_minute(n));
        self
    }

    /// Counts an anonymous face-login start from `ip`; `Err(seconds)` when over its
    /// budget.
    pub fn login_start(&self, ip: IpAddr) -> Result<(), u64> {
        self.login_starts.check_key(&ip).map_err(|not_until| {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .max(Duration::from_secs(1));
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets addresses no longer blocked (called by the sweeper).
    pub fn shrink(&self) {
        let now = Instant::now();
        self.blocked.lock().retain(|_, until| *until > now);
        self.limiter.retain_recent();
        self.login_starts.retain_recent();
    }
}

/// The unit one failed-authentication budget covers: an IPv4 address, or an IPv6 /64.
pub fn budget_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn auth_throttled(wait: u64) -> ApiError {
    metrics::counter!("honnin_auth_throttled_total").increment(1);
    let mut e = ApiError::from(CoreError::Throttling(format!(
        "too many failed authentications from this address; retry in {wait} s"
    )));
    e.retry_after = Some(wait.max(1));
    e
}

/// Authenticates a request's bearer key under the failed-authentication limit of its
/// client address (no per-key rate limit: see [`Caller`] for that).
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let ip = state.auth_guard.client(parts);
    if let Err(wait) = state.auth_guard.check(ip) {
        // Blocked: only a key this server recently authenticated gets through (no
        // database query); anything else waits.
        return bearer(parts)
            .ok()
            .and_then(|t| state.service.keys().authenticate_cached(t))
            .ok_or_else(|| auth_throttled(wait));
    }
    let principal = match bearer(parts) {
        Ok(token) => state.service.keys().authenticate(token).await,
        Err(e) => Err(e),
    };
    match principal {
        Ok(p) => Ok(p),
        Err(e @ CoreError::Unauthenticated(_)) => {
            state.auth_guard.failed(ip).map_err(auth_throttled)?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

/// The authenticated, rate-limited caller of a `/v1` route.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        if let Err(wait) = state.limiter.check(&principal.key_id) {
            metrics::counter!("honnin_throttled_requests_total").increment(1);
            let mut e = ApiError::from(CoreError::Throttling(format!(
                "this API key is over its rate limit of {} requests per second; retry in {wait} s",
                state.config.limits.rate_limit_per_second
            )));
            e.retry_after = Some(wait.max(1));
            return Err(e);
        }
        Ok(Caller(principal))
    }
}

/// The bearer token of a request (`Unauthenticated` when missing or malformed).
pub fn bearer(parts: &Parts) -> Result<&str, CoreError> {
    let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
        CoreError::Unauthenticated("missing `Authorization: Bearer <API key>` header".into())
    })?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            CoreError::Unauthenticated("the Authorization header must be `Bearer <API key>`".into())
        })
}

/// An image in a JSON body: `{ "bytes": "<base64>" }` (a `data:` URL prefix is allowed).
/// In a multipart body, send the file as a part with the field's name instead: its bytes
/// arrive as they are ([`ImageBytes::Raw`]).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageInput {
    /// The image file (JPEG, PNG, WebP or BMP; at most 5 MB, 40 megapixels), base64.
    #[schema(value_type = String)]
    pub bytes: ImageBytes,
}

/// The file of an [`ImageInput`]: base64 text from a JSON body (decoded by
/// [`ImageInput::decode`], which names the field in its error), or the raw bytes of a
/// multipart file part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageBytes {
    /// Base64, possibly as a `data:` URL, as sent in JSON.
    Base64(String),
    /// The bytes of a multipart file part.
    Raw(Vec<u8>),
}

impl Serialize for ImageBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ImageBytes::Base64(b) => s.serialize_str(b),
            ImageBytes::Raw(b) => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }
}

impl<'de> Deserialize<'de> for ImageBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ImageBytes;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ImageBytes, E> {
                Ok(ImageBytes::Base64(v.to_string()))
            }

            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<ImageBytes, E> {
                Ok(ImageBytes::Base64(v))
            }

            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ImageBytes, E> {
                Ok(ImageBytes::Raw(v.to_vec()))
            }

            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<ImageBytes, E> {
                Ok(ImageBytes::Raw(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl ImageInput {
    /// The file bytes; base64 is decoded here (`InvalidParameter` naming `field`).
    pub fn decode(self, field: &str) -> Result<Vec<u8>, ApiError> {
        let text = match self.bytes {
            ImageBytes::Raw(b) => return Ok(b),
            ImageBytes::Base64(t) => t,
        };
        let b64 = match text.split_once(";base64,") {
            Some((prefix, rest)) if prefix.starts_with("data:") => rest,
            _ => text.as_str(),
        };
        let engine = base64::engine::GeneralPurpose::new(
            &base64::alphabet::STANDARD,
            base64::engine::GeneralPurposeConfig::new()
                .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
        );
        let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        engine
            .decode(cleaned.as_bytes())
            .map_err(|e| ApiError::invalid(format!("{field}.bytes is not valid base64: {e}")))
    }
}

/// Fields of multipart bodies that are files (everything else is a text field).
const IMAGE_FIELDS: &[&str] = &[
    "image",
    "sourceImage",
    "targetImage",
    "referenceImage",
    "document",
];
/// Text fields kept as strings even when they look like numbers.
const STRING_FIELDS: &[&str] = &[
    "collectionId",
    "externalImageId",
    "faceId",
    "faceId2",
    "userId",
    "qualityFilter",
    "nextToken",
    "mode",
];

/// A request body given as `application/json`, or as `multipart/form-data` whose file
/// parts are images and whose text parts are the same fields as in JSON.
pub struct Input<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Input<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.starts_with("multipart/form-data") {
            let mut mp = Multipart::from_request(req, state)
                .await
                .map_err(|e| reject(e.status(), e.body_text()))?;
            let mut parts = Vec::new();
            while let Some(field) = mp
                .next_field()
                .await
                .map_err(|e| reject(e.status(), e.body_text()))?
            {
                let name = field.name().unwrap_or("").to_string();
                if name.is_empty() {
                    return Err(ApiError::invalid("every multipart part needs a name"));
                }
                let is_file = field.file_name().is_some() || IMAGE_FIELDS.contains(&name.as_str());
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| reject(e.status(), e.body_text()))?;
                let part = if is_file {
                    Part::File(bytes.into())
                } else {
                    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                        ApiError::invalid(format!("multipart field `{name}` is not UTF-8 text"))
                    })?;
                    Part::Json(if STRING_FIELDS.contains(&name.as_str()) {
                        serde_json::Value::String(text)
                    } else {
                        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
                    })
                };
                parts.push((name, part));
            }
            multipart::deserialize(parts)
                .map(Input)
                .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))
        } else if ct.starts_with("application/json") || ct.is_empty() {
            let bytes = axum::body::Bytes::from_request(req, state)
                .await
                .map_err(|e| reject(e.status(), e.body_text()))?;
            if bytes.is_empty() {
                return Err(ApiError::invalid("the request needs a JSON body"));
            }
            let Json(v) =
                Json::<T>::from_bytes(&bytes).map_err(|e| reject(e.status(), e.body_text()))?;
            Ok(Input(v))
        } else {
            Err(ApiError::invalid(format!(
                "unsupported Content-Type `{ct}`: send application/json or multipart/form-data"
            )))
        }
    }
}

fn reject(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("the request body is larger than the limit: {text}"))
    } else {
        ApiError::invalid(text)
    }
}

/// Query parameters with their rejection mapped to `InvalidParameter`.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// Path parameters with their rejection mapped to `InvalidParameter`.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(header: Option<&str>) -> Parts {
        let mut b = axum::http::Request::builder().uri("/v1/collections");
        if let Some(h) = header {
            b = b.header("x-forwarded-for", h);
        }
        let mut p = b.body(()).unwrap().into_parts().0;
        p.extensions
            .insert(axum::extract::ConnectInfo(SocketAddr::from((
                [192, 0, 2, 7],
                40000,
            ))));
        p
    }

    /// A client cannot choose its budget by writing addresses in front of the one its
    /// proxy appends; without the setting, the header is ignored.
    #[test]
    fn the_proxy_appended_address_counts_not_the_clients() {
        let g = AuthGuard::new(5, 20, "x-forwarded-for");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            g.client(&parts(Some("10.9.8.7, 198.51.100.4"))),
            ip("198.51.100.4")
        );
        assert_eq!(g.client(&parts(Some("198.51.100.4"))), ip("198.51.100.4"));
        assert_eq!(g.client(&parts(Some("garbage"))), ip("192.0.2.7"));
        assert_eq!(g.client(&parts(None)), ip("192.0.2.7"));
        let plain = AuthGuard::new(5, 20, "");
        assert_eq!(plain.client(&parts(Some("198.51.100.4"))), ip("192.0.2.7"));
    }

    /// IPv6 clients share one budget per /64; IPv4-mapped addresses count as IPv4.
    #[test]
    fn ipv6_budgets_are_per_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            budget_key(ip("2001:db8:1:2:aaaa::1")),
            budget_key(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            budget_key(ip("2001:db8:1:2::1")),
            budget_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(budget_key(ip("::ffff:198.51.100.4")), ip("198.51.100.4"));
        assert_eq!(budget_key(ip("198.51.100.4")), ip("198.51.100.4"));
    }
}
