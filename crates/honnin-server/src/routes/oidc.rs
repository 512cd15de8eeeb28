//! The OpenID Connect provider (see `docs/login.md`): client registration under `/v1`,
//! and the protocol endpoints, which speak OAuth's formats (form bodies, `error` /
//! `error_description` JSON, redirects), not the `/v1` error body.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use honnin_core::oidc::{
    discovery, AuthorizeError, AuthorizeRequest, ClientInfo, Discovery, NewClient, TokenError,
    TokenRequest,
};
use serde::{Deserialize, Serialize};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Caller, Input, Path};
use crate::AppState;

/// The issuer: `login.issuer`; without it, `http://<Host>` of the request, but only for
/// a loopback host (a local trial): elsewhere the provider answers 503 until
/// `login.issuer` is set, so that no request's `Host` header chooses the issuer.
fn issuer(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let configured = s.config.service.login.issuer.trim_end_matches('/');
    if !configured.is_empty() {
        return Some(configured.to_string());
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok())?;
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !n.ends_with(':') => n,
        _ => host,
    };
    let loopback = name == "localhost"
        || name == "[::1]"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    loopback.then(|| format!("http://{host}"))
}

const NO_ISSUER: &str = "this server's OpenID Connect provider has no issuer: set login.issuer \
                         to its public https:// URL";

fn no_issuer_json() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CACHE_CONTROL, "no-store")],
        Json(TokenError {
            error: "temporarily_unavailable".into(),
            error_description: NO_ISSUER.into(),
            status: 503,
        }),
    )
        .into_response()
}

/// The client address of a request (as the failed-authentication guard counts it).
fn client_address(s: &AppState, req: &axum::http::request::Parts) -> IpAddr {
    s.auth_guard.client(req)
}

/// A page for an error that must not go back to the client (unknown client, wrong
/// redirect URI, unknown request): 400, plain HTML, the message escaped.
fn error_page(message: &str) -> Response {
    let escaped = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    (
        StatusCode::BAD_REQUEST,
        [(header::CACHE_CONTROL, "no-store")],
        Html(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Login error</title></head><body><main><h1>This login cannot go on</h1>\
             <p id=\"error\">{escaped}</p></main></body></html>"
        )),
    )
        .into_response()
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
        ],
    )
        .into_response()
}

fn authorize_error(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Shown(m) => error_page(&m),
        AuthorizeError::Redirect { location } => redirect(&location),
    }
}

fn token_error(e: TokenError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        Json(e.clone()),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        let v = if e.error == "invalid_client" {
            "Basic realm=\"honnin\"".to_string()
        } else {
            format!("Bearer error=\"{}\"", e.error)
        };
        if let Ok(v) = v.parse() {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    r
}

/// The provider's metadata (OpenID Connect Discovery 1.0).
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "login",
    responses(
        (status = 200, description = "The provider's metadata", body = Discovery),
        (status = 503, description = "temporarily_unavailable: login.issuer is not set (and the host is not loopback)", content_type = "application/json"),
    ))]
pub async fn configuration(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match issuer(&s, &headers) {
        Some(i) => Json(discovery(&i)).into_response(),
        None => no_issuer_json(),
    }
}

/// The authorization endpoint: checks the request (client, exact redirect URI,
/// `response_type=code`, `scope` with `openid`, PKCE S256) and answers the hosted
/// login page, which runs the liveness check. Errors about the client or its redirect
/// URI are a 400 page; other errors go back to the redirect URI (`error`, `state`).
#[utoipa::path(get, path = "/oidc/authorize", tag = "login",
    params(
        ("response_type" = String, Query, description = "code"),
        ("client_id" = String, Query),
        ("redirect_uri" = String, Query, description = "one of the client's, exactly"),
        ("scope" = String, Query, description = "must include openid"),
        ("state" = Option<String>, Query),
        ("nonce" = Option<String>, Query),
        ("code_challenge" = String, Query, description = "PKCE, S256"),
        ("code_challenge_method" = String, Query, description = "S256"),
        ("login_hint" = Option<String>, Query, description = "a user id: a 1:1 login"),
        ("prompt" = Option<String>, Query, description = "none is answered login_required"),
    ),
    responses(
        (status = 200, description = "The hosted login page", content_type = "text/html"),
        (status = 303, description = "An error, sent back to the redirect URI"),
        (status = 400, description = "Unknown client or redirect URI (a page, never a redirect)", content_type = "text/html"),
        (status = 429, description = "Too many logins started from this address (a page, Retry-After)", content_type = "text/html"),
        (status = 503, description = "login.issuer is not set (and the host is not loopback): a page", content_type = "text/html"),
    ))]
pub async fn authorize(State(s): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, _) = req.into_parts();
    if issuer(&s, &parts.headers).is_none() {
        let mut r = error_page(NO_ISSUER);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return r;
    }
    // Each start makes a liveness session under the client's key: bounded per address.
    if let Err(wait) = s.auth_guard.login_start(client_address(&s, &parts)) {
        let mut r = error_page("too many logins started from this address: wait and try again");
        *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        if let Ok(v) = wait.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let q: Result<AuthorizeRequest, _> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default());
    let Ok(q) = q else {
        return error_page("the request's parameters could not be read (a parameter twice?)");
    };
    match s.service.oidc().begin_login(&q).await {
        Ok(h) => {
            let json = serde_json::to_string(&h)
                .unwrap_or_default()
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026");
            let page = honnin_web::OIDC_LOGIN_TEMPLATE.replacen(
                honnin_web::OIDC_LOGIN_PLACEHOLDER,
                &json,
                1,
            );
            (
                [
                    (header::CACHE_CONTROL, "no-store"),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    (header::X_FRAME_OPTIONS, "DENY"),
                ],
                Html(page),
            )
                .into_response()
        }
        Err(e) => authorize_error(e),
    }
}

/// The form the hosted page posts when its liveness check has ended.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CompleteForm {
    /// The request id of the page.
    pub request: String,
}

/// Ends an authorization request: the face login runs, then a redirect to the client
/// with `code` and `state`, or `error=access_denied`.
#[utoipa::path(post, path = "/oidc/authorize/complete", tag = "login",
    request_body(content = CompleteForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Back to the client: code and state, or an error"),
        (status = 400, description = "Unknown, used or expired request (a page)", content_type = "text/html"),
        (status = 503, description = "login.issuer is not set (and the host is not loopback): a page", content_type = "text/html"),
    ))]
pub async fn complete(
    State(s): State<AppState>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 * 1024).await else {
        return error_page("the form is too large");
    };
    let Ok(form) = serde_urlencoded::from_bytes::<CompleteForm>(&bytes) else {
        return error_page("the form names no login request");
    };
    let ip = client_address(&s, &parts).to_string();
    let Some(iss) = issuer(&s, &headers) else {
        let mut r = error_page(NO_ISSUER);
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        return r;
    };
    match s.service.oidc().complete(&form.request, &iss, &ip).await {
        Ok(location) => redirect(&location),
        Err(e) => authorize_error(e),
    }
}

/// The token endpoint: `grant_type=authorization_code`, `code`, `redirect_uri`,
/// `code_verifier`; client authentication `client_secret_basic` or
/// `client_secret_post`. Errors are RFC 6749 §5.2 JSON.
#[utoipa::path(post, path = "/oidc/token", tag = "login",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "ID token and access token", content_type = "application/json"),
        (status = 400, description = "invalid_request, invalid_grant, unsupported_grant_type", content_type = "application/json"),
        (status = 401, description = "invalid_client", content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable: login.issuer is not set", content_type = "application/json"),
    ))]
pub async fn token(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let bad = |d: &str| {
        token_error(TokenError {
            error: "invalid_request".into(),
            error_description: d.into(),
            status: 400,
        })
    };
    let Ok(form) = serde_urlencoded::from_bytes::<TokenRequest>(&body) else {
        return bad("the form could not be read (a parameter twice?)");
    };
    let basic = match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => match basic_credentials(v) {
            Some(c) => Some(c),
            None => {
                return token_error(TokenError {
                    error: "invalid_client".into(),
                    error_description: "the Authorization header is not HTTP Basic credentials"
                        .into(),
                    status: 401,
                })
            }
        },
        Some(Err(_)) => return bad("the Authorization header is not text"),
    };
    let Some(iss) = issuer(&s, &headers) else {
        return no_issuer_json();
    };
    match s.service.oidc().token(&form, basic, &iss).await {
        Ok(t) => (
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
            Json(t),
        )
            .into_response(),
        Err(e) => token_error(e),
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_credentials(v: &str) -> Option<(String, String)> {
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((dec(id)?, dec(secret)?))
}

/// The UserInfo endpoint: `sub` of the access token's user.
#[utoipa::path(get, path = "/oidc/userinfo", tag = "login",
    responses(
        (status = 200, description = "The user", content_type = "application/json"),
        (status = 401, description = "invalid_token", content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable: login.issuer is not set", content_type = "application/json"),
    ))]
pub async fn userinfo(State(s): State<AppState>, headers: HeaderMap) -> Response {
    userinfo_of(&s, &headers).await
}

/// The UserInfo endpoint by POST (OpenID Connect Core §5.3.1), the token in the
/// `Authorization` header.
#[utoipa::path(post, path = "/oidc/userinfo", tag = "login",
    responses(
        (status = 200, description = "The user", content_type = "application/json"),
        (status = 401, description = "invalid_token", content_type = "application/json"),
        (status = 503, description = "temporarily_unavailable: login.issuer is not set", content_type = "application/json"),
    ))]
pub async fn userinfo_post(State(s): State<AppState>, headers: HeaderMap) -> Response {
    userinfo_of(&s, &headers).await
}

async fn userinfo_of(s: &AppState, headers: &HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
        });
    let Some(iss) = issuer(s, headers) else {
        return no_issuer_json();
    };
    match s.service.oidc().userinfo(bearer, &iss).await {
        Ok(u) => ([(header::CACHE_CONTROL, "no-store")], Json(u)).into_response(),
        Err(e) => token_error(e),
    }
}

/// Register an OpenID Connect client (relying party) of a collection. The secret is
/// shown once.
#[utoipa::path(post, path = "/v1/oidc/clients", tag = "login",
    request_body = NewClient,
    responses(
        (status = 201, description = "The client, with its secret (once)", body = ClientInfo),
        (status = 400, description = "InvalidParameter", body = ErrorBody),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound (collection)", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn create_client(
    State(s): State<AppState>,
    Caller(p): Caller,
    Input(r): Input<NewClient>,
) -> ApiResult<(StatusCode, Json<ClientInfo>)> {
    Ok((
        StatusCode::CREATED,
        Json(s.service.oidc().create_client(&p, &r).await?),
    ))
}

/// The registered clients.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientList {
    /// The caller's clients (an admin: those of the keys it oversees).
    pub clients: Vec<ClientInfo>,
}

/// List the OpenID Connect clients the caller may see (never their secrets).
#[utoipa::path(get, path = "/v1/oidc/clients", tag = "login",
    responses(
        (status = 200, description = "Clients", body = ClientList),
        (status = 403, description = "AccessDenied", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn list_clients(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> ApiResult<Json<ClientList>> {
    Ok(Json(ClientList {
        clients: s.service.oidc().list_clients(&p).await?,
    }))
}

/// Delete an OpenID Connect client and its pending logins.
#[utoipa::path(delete, path = "/v1/oidc/clients/{clientId}", tag = "login",
    params(("clientId" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "AccessDenied", body = ErrorBody),
        (status = 404, description = "ResourceNotFound", body = ErrorBody),
    ),
    security(("apiKey" = [])))]
pub async fn delete_client(
    State(s): State<AppState>,
    Caller(p): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    s.service.oidc().delete_client(&p, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my%20client:s%3Acret")
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("my client".into(), "s:cret".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
    }
}
