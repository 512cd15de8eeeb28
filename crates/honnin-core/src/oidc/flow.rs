//! The authorization code flow with PKCE (RFC 6749, RFC 7636, OpenID Connect Core 1.0).

use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use honnin_storage::{OidcClientRow, OidcGrantRow};

use super::clients::secret_hash;
use super::{paths, Oidc};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::{CoreError, Result};
use crate::liveness::{LivenessSessions, NewLivenessSession};
use crate::login::assertion;
use crate::login::levels::{attempt_threshold, LevelError};
use crate::login::{LoginOutcome, LoginRequest, Logins, SecurityLevel};
use crate::validate::check_user_id;

/// An authorization code is valid this long, seconds (RFC 6749 §4.1.2: "a maximum
/// authorization code lifetime of 10 minutes is RECOMMENDED"; one minute is ample for
/// a redirect).
pub const CODE_TTL_SECS: i64 = 60;
/// An access token (for the UserInfo endpoint) is valid this long, seconds.
pub const ACCESS_TOKEN_TTL_SECS: i64 = 300;
/// Longest `state`, `nonce` and `login_hint`, characters.
const MAX_PARAM_CHARS: usize = 512;

/// The query of `GET /oidc/authorize` (every member as sent, checked here).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// Must be `code`.
    pub response_type: Option<String>,
    /// A registered client.
    pub client_id: Option<String>,
    /// One of the client's redirect URIs, exactly.
    pub redirect_uri: Option<String>,
    /// Space-separated; must hold `openid`.
    pub scope: Option<String>,
    /// Returned unchanged with the code or the error.
    pub state: Option<String>,
    /// Put in the ID token.
    pub nonce: Option<String>,
    /// PKCE: BASE64URL(SHA-256(code_verifier)), 43 characters.
    pub code_challenge: Option<String>,
    /// PKCE: must be `S256`.
    pub code_challenge_method: Option<String>,
    /// A user id: the login is 1:1 against that user's profile.
    pub login_hint: Option<String>,
    /// `none` cannot be honoured (a face login needs the person): `login_required`.
    pub prompt: Option<String>,
}

/// Why an authorization request ended without a code.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    /// The client or the redirect URI cannot be trusted: shown to the user, never
    /// redirected (RFC 6749 §4.1.2.1).
    Shown(String),
    /// Sent back to the client's redirect URI as `error`, `error_description`, `state`.
    Redirect {
        /// The URL to redirect to, with the error parameters.
        location: String,
    },
}

/// What the hosted login page needs: the grant it completes and the liveness session
/// it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HostedLogin {
    /// The grant's id: the page posts it back when the check has ended.
    pub request_id: String,
    /// The liveness session to run.
    pub session_id: String,
    /// Its client token.
    pub client_token: String,
    /// The client's name, to show.
    pub client_name: String,
}

/// The form of `POST /oidc/token` (client credentials may also come in the
/// `Authorization: Basic` header).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokenRequest {
    /// Must be `authorization_code`.
    pub grant_type: Option<String>,
    /// The code from the redirect.
    pub code: Option<String>,
    /// The redirect URI of the authorization request.
    pub redirect_uri: Option<String>,
    /// PKCE: the verifier whose S256 challenge the request carried.
    pub code_verifier: Option<String>,
    /// `client_secret_post`: the client id.
    pub client_id: Option<String>,
    /// `client_secret_post`: the client secret.
    pub client_secret: Option<String>,
}

/// The token response (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenResponse {
    /// A JWT (RFC 9068) for the UserInfo endpoint.
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The ID token: a JWT, ES256.
    pub id_token: String,
    /// `openid`.
    pub scope: String,
}

/// A token endpoint or UserInfo error (RFC 6749 §5.2, RFC 6750 §3.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_token`, `server_error`.
    pub error: String,
    /// Why, for a developer.
    pub error_description: String,
    /// The HTTP status: 400, or 401 for `invalid_client` and `invalid_token`.
    #[serde(skip)]
    pub status: u16,
}

fn token_error(error: &str, description: impl Into<String>) -> TokenError {
    TokenError {
        status: if matches!(error, "invalid_client" | "invalid_token") {
            401
        } else {
            400
        },
        error: error.into(),
        error_description: description.into(),
    }
}

/// The UserInfo response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserInfo {
    /// The user id.
    pub sub: String,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    aud: String,
    client_id: String,
    scope: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// `location` with the query parameters `params` added (empty values left out).
fn with_query(location: &str, params: &[(&str, Option<&str>)]) -> String {
    match url::Url::parse(location) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in params {
                    if let Some(v) = v {
                        q.append_pair(k, v);
                    }
                }
            }
            u.to_string()
        }
        Err(_) => location.into(),
    }
}

fn redirect_error(g: &Ctx, error: &str, description: &str) -> AuthorizeError {
    AuthorizeError::Redirect {
        location: with_query(
            &g.redirect_uri,
            &[
                ("error", Some(error)),
                ("error_description", Some(description)),
                ("state", g.state.as_deref()),
            ],
        ),
    }
}

/// The redirect URI and state an error is returned to.
struct Ctx {
    redirect_uri: String,
    state: Option<String>,
}

fn too_long(v: &Option<String>) -> bool {
    v.as_ref().is_some_and(|s| {
        s.is_empty() || s.chars().count() > MAX_PARAM_CHARS || s.chars().any(char::is_control)
    })
}

fn pkce_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn is_pkce_string(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

impl Oidc<'_> {
    /// The principal a client's logins run as: the key that registered it, if it is
    /// still valid.
    async fn owner(&self, c: &OidcClientRow) -> Result<Option<Principal>> {
        let Some(k) = self.key_row(&c.owner_key).await? else {
            return Ok(None);
        };
        if k.revoked_ms.is_some() {
            return Ok(None);
        }
        Ok(crate::keys::principal_of(k).ok())
    }

    /// Checks an authorization request and opens its grant with a new liveness session
    /// for the hosted page.
    pub async fn begin_login(
        &self,
        req: &AuthorizeRequest,
    ) -> std::result::Result<HostedLogin, AuthorizeError> {
        let shown = |m: &str| AuthorizeError::Shown(m.to_string());
        let client_id = req
            .client_id
            .as_deref()
            .ok_or_else(|| shown("the request names no client (client_id)"))?;
        let client = self
            .store()
            .get_oidc_client(client_id)
            .await
            .map_err(|_| shown("the server could not read its clients; try again"))?
            .ok_or_else(|| shown("unknown client: this application is not registered"))?;
        let uris: Vec<String> = serde_json::from_str(&client.redirect_uris).unwrap_or_default();
        let redirect_uri = req
            .redirect_uri
            .clone()
            .ok_or_else(|| shown("the request names no redirect_uri"))?;
        if !uris.contains(&redirect_uri) {
            return Err(shown(
                "the redirect_uri is not one this application registered",
            ));
        }
        let g = Ctx {
            redirect_uri: redirect_uri.clone(),
            state: req.state.clone(),
        };
        if too_long(&req.state) || too_long(&req.nonce) || too_long(&req.login_hint) {
            return Err(redirect_error(
                &g,
                "invalid_request",
                "state, nonce and login_hint are 1–512 printable characters",
            ));
        }
        if req.response_type.as_deref() != Some("code") {
            return Err(redirect_error(
                &g,
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
        if !req
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|x| x == "openid"))
        {
            return Err(redirect_error(
                &g,
                "invalid_scope",
                "scope must include openid",
            ));
        }
        if req
            .prompt
            .as_deref()
            .is_some_and(|p| p.split(' ').any(|x| x == "none"))
        {
            return Err(redirect_error(
                &g,
                "login_required",
                "a face login needs the person: prompt=none cannot be honoured",
            ));
        }
        let challenge = match (&req.code_challenge, req.code_challenge_method.as_deref()) {
            (Some(c), Some("S256")) if is_pkce_string(c) && c.len() == 43 => c.clone(),
            (Some(_), Some("S256")) => {
                return Err(redirect_error(
                    &g,
                    "invalid_request",
                    "code_challenge must be BASE64URL(SHA-256(code_verifier)), 43 characters",
                ))
            }
            (Some(_), _) => {
                return Err(redirect_error(
                    &g,
                    "invalid_request",
                    "code_challenge_method must be S256",
                ))
            }
            (None, _) => {
                return Err(redirect_error(
                    &g,
                    "invalid_request",
                    "PKCE is required: code_challenge with code_challenge_method=S256",
                ))
            }
        };
        if let Some(h) = &req.login_hint {
            if check_user_id(h).is_err() {
                return Err(redirect_error(
                    &g,
                    "invalid_request",
                    "login_hint is not a user id",
                ));
            }
        }
        // The level must be holdable over the templates the login would compare with
        // (1:N: the whole collection's; 1:1: the hinted user's), before the person runs
        // the liveness check.
        let templates = match &req.login_hint {
            Some(u) => self
                .store()
                .profile_templates(&client.collection_id, Some(u))
                .await
                .map(|r| r.len() as u64),
            None => self
                .store()
                .profile_counts(&client.collection_id)
                .await
                .map(|(_, t)| t),
        };
        if let (Ok(n), Some(level)) = (templates, SecurityLevel::parse(&client.level)) {
            let target = level.target(&self.config().login.levels);
            if let Some(cal) = self.engine().calibration() {
                if let Err(LevelError::BeyondCalibration {
                    max_comparisons, ..
                }) = attempt_threshold(target, n, cal)
                {
                    return Err(redirect_error(
                        &g,
                        "invalid_request",
                        &format!(
                            "level `{}` cannot be held over {n} templates (at most \
                             {max_comparisons}): send login_hint with the user id",
                            level.as_str()
                        ),
                    ));
                }
            }
        }
        let unavailable = |e: CoreError| {
            tracing::warn!(error = %e, client = %client_id, "oidc: authorize failed");
            redirect_error(
                &g,
                "temporarily_unavailable",
                "the login could not be started; try again",
            )
        };
        let Some(owner) = self.owner(&client).await.map_err(unavailable)? else {
            return Err(redirect_error(
                &g,
                "unauthorized_client",
                "the key that registered this application was revoked",
            ));
        };
        let session = LivenessSessions::new(self.cx)
            .create_liveness_session(
                &owner,
                NewLivenessSession {
                    challenge: Default::default(),
                    audit_images_limit: 0,
                    reference_image: None,
                    device_correlation_id: None,
                },
            )
            .await
            .map_err(unavailable)?;
        let mut id = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        let request_id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id);
        let now = now_ms();
        let ttl = self.config().liveness.session_ttl_secs as i64 * 1000 + 60_000;
        self.store()
            .insert_oidc_grant(&OidcGrantRow {
                grant_id: request_id.clone(),
                code_hash: None,
                client_id: client.client_id.clone(),
                collection_id: client.collection_id.clone(),
                redirect_uri,
                state: req.state.clone(),
                nonce: req.nonce.clone(),
                code_challenge: challenge,
                login_hint: req.login_hint.clone(),
                liveness_session_id: session.session_id.clone(),
                user_id: None,
                login_id: None,
                auth_time_ms: None,
                id_token: None,
                status: "pending".into(),
                created_ms: now,
                expires_ms: now + ttl,
            })
            .await
            .map_err(|e| unavailable(e.into()))?;
        Ok(HostedLogin {
            request_id,
            session_id: session.session_id,
            client_token: session.client_token,
            client_name: client.name,
        })
    }

    /// Ends a grant once its liveness session has ended: the face login runs (1:N, or
    /// 1:1 with the request's `login_hint`) as the client's key, at the client's level;
    /// on success the client's redirect URI gets a one-time code, otherwise
    /// `access_denied`. `client_address` is the browser's address: failures lock it out
    /// (`client:ip-<address>`). Returns the URL to redirect to.
    pub async fn complete(
        &self,
        request_id: &str,
        issuer: &str,
        client_address: &str,
    ) -> std::result::Result<String, AuthorizeError> {
        let shown = |m: &str| AuthorizeError::Shown(m.to_string());
        let now = now_ms();
        let grant = self
            .store()
            .get_oidc_grant(request_id, now)
            .await
            .map_err(|_| shown("the server could not read the login request; try again"))?
            .filter(|g| g.status == "pending")
            .ok_or_else(|| shown("this login request is unknown, used or expired: start again"))?;
        // One post decides: a second (a double submit) is shown, and cannot undo the first.
        if !self
            .store()
            .start_oidc_grant(request_id)
            .await
            .unwrap_or(false)
        {
            return Err(shown("this login request is already being completed"));
        }
        let g = Ctx {
            redirect_uri: grant.redirect_uri.clone(),
            state: grant.state.clone(),
        };
        let denied = |why: &str| redirect_error(&g, "access_denied", why);
        let client = match self.store().get_oidc_client(&grant.client_id).await {
            Ok(Some(c)) => c,
            _ => return Err(shown("this application is no longer registered")),
        };
        let Ok(Some(owner)) = self.owner(&client).await else {
            return Err(redirect_error(
                &g,
                "unauthorized_client",
                "the key that registered this application was revoked",
            ));
        };
        let address: String = client_address
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == ':' {
                    c
                } else {
                    '-'
                }
            })
            .take(200)
            .collect();
        let req = LoginRequest {
            liveness_session_id: grant.liveness_session_id.clone(),
            user_id: grant.login_hint.clone(),
            level: SecurityLevel::parse(&client.level),
            audience: Some(client.client_id.clone()),
            nonce: grant.nonce.clone(),
            client_id: Some(format!("ip-{address}")),
        };
        let result = Logins::new(self.cx)
            .login_as_issuer(&owner, &client.collection_id, &req, Some(issuer))
            .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = self.store().delete_oidc_grant(request_id).await;
                return Err(denied(&format!(
                    "the face login could not run: {}",
                    e.code()
                )));
            }
        };
        let (LoginOutcome::Succeeded, Some(id_token), Some(user)) = (
            result.attempt.outcome,
            result.assertion.clone(),
            result.attempt.user_id.clone(),
        ) else {
            let _ = self.store().delete_oidc_grant(request_id).await;
            let why = match result.attempt.outcome {
                LoginOutcome::Locked => "too many failed logins: try again later".to_string(),
                _ => format!("face login failed ({})", result.attempt.reasons.join(", ")),
            };
            return Err(denied(&why));
        };
        let mut code = [0u8; 32];
        rand::rng().fill_bytes(&mut code);
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(code);
        let issued = self
            .store()
            .issue_oidc_code(
                request_id,
                &hex::encode(Sha256::digest(code.as_bytes())),
                &user,
                &result.attempt.login_id,
                now,
                &id_token,
                now + CODE_TTL_SECS * 1000,
            )
            .await
            .unwrap_or(false);
        if !issued {
            return Err(shown("this login request was already completed"));
        }
        Ok(with_query(
            &grant.redirect_uri,
            &[("code", Some(&code)), ("state", grant.state.as_deref())],
        ))
    }

    /// The token endpoint: authenticates the client (`basic`: the credentials of an
    /// `Authorization: Basic` header, else the form's), redeems the code once, checks
    /// the redirect URI and the PKCE verifier, and returns the ID token and an access
    /// token. A code that fails any check is spent.
    pub async fn token(
        &self,
        req: &TokenRequest,
        basic: Option<(String, String)>,
        issuer: &str,
    ) -> std::result::Result<TokenResponse, TokenError> {
        let internal = |e: CoreError| {
            tracing::warn!(error = %e, "oidc: token endpoint failed");
            token_error("server_error", "the server failed; try again")
        };
        let (client_id, secret) =
            match (basic, &req.client_id, &req.client_secret) {
                (Some((id, s)), _, _) => (id, s),
                (None, Some(id), Some(s)) => (id.clone(), s.clone()),
                _ => return Err(token_error(
                    "invalid_client",
                    "client authentication is required (client_secret_basic or client_secret_post)",
                )),
            };
        let client = self
            .store()
            .get_oidc_client(&client_id)
            .await
            .map_err(|e| internal(e.into()))?;
        let Some(client) =
            client.filter(|c| bool::from(c.secret_hash.as_slice().ct_eq(&secret_hash(&secret))))
        else {
            return Err(token_error(
                "invalid_client",
                "unknown client or wrong secret",
            ));
        };
        if !matches!(self.owner(&client).await, Ok(Some(_))) {
            return Err(token_error(
                "unauthorized_client",
                "the key that registered this client was revoked",
            ));
        }
        if req.grant_type.as_deref() != Some("authorization_code") {
            return Err(token_error(
                "unsupported_grant_type",
                "only grant_type=authorization_code is supported",
            ));
        }
        let (Some(code), Some(redirect_uri), Some(verifier)) =
            (&req.code, &req.redirect_uri, &req.code_verifier)
        else {
            return Err(token_error(
                "invalid_request",
                "code, redirect_uri and code_verifier are required",
            ));
        };
        let now = now_ms();
        let redeemed = self
            .store()
            .redeem_oidc_code(&hex::encode(Sha256::digest(code.as_bytes())), now)
            .await
            .map_err(|e| internal(e.into()))?;
        let grant = match redeemed {
            None => return Err(token_error("invalid_grant", "unknown code")),
            Some((_, false)) => {
                return Err(token_error(
                    "invalid_grant",
                    "the code was already used or has expired",
                ))
            }
            Some((g, true)) => g,
        };
        if grant.client_id != client.client_id {
            return Err(token_error(
                "invalid_grant",
                "the code was issued to another client",
            ));
        }
        if &grant.redirect_uri != redirect_uri {
            return Err(token_error(
                "invalid_grant",
                "redirect_uri differs from the authorization request's",
            ));
        }
        if !is_pkce_string(verifier)
            || !bool::from(
                pkce_s256(verifier)
                    .as_bytes()
                    .ct_eq(grant.code_challenge.as_bytes()),
            )
        {
            return Err(token_error(
                "invalid_grant",
                "the code_verifier does not match the code_challenge (PKCE)",
            ));
        }
        let (Some(id_token), Some(user)) = (grant.id_token, grant.user_id) else {
            return Err(token_error("invalid_grant", "the code holds no login"));
        };
        let claims = AccessClaims {
            iss: issuer.into(),
            sub: user,
            aud: format!("{issuer}{}", paths::USERINFO),
            client_id: client.client_id,
            scope: "openid".into(),
            iat: now / 1000,
            exp: now / 1000 + ACCESS_TOKEN_TTL_SECS,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let access_token = assertion::sign_typed(self.cx, &claims, "at+jwt")
            .await
            .map_err(internal)?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: ACCESS_TOKEN_TTL_SECS,
            id_token,
            scope: "openid".into(),
        })
    }

    /// The UserInfo endpoint: the subject of a valid access token of this issuer.
    pub async fn userinfo(
        &self,
        bearer: Option<&str>,
        issuer: &str,
    ) -> std::result::Result<UserInfo, TokenError> {
        let Some(token) = bearer else {
            return Err(token_error(
                "invalid_token",
                "an access token is required (Bearer)",
            ));
        };
        let aud = format!("{issuer}{}", paths::USERINFO);
        match assertion::verify::<AccessClaims>(self.cx, token, &aud, issuer).await {
            Ok(Some(c)) => Ok(UserInfo { sub: c.sub }),
            Ok(None) => Err(token_error(
                "invalid_token",
                "the access token is invalid or has expired",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "oidc: userinfo failed");
                Err(token_error(
                    "invalid_token",
                    "the access token could not be checked",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_is_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_pkce_string(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!is_pkce_string("short"));
        assert!(!is_pkce_string(&"a".repeat(129)));
        assert!(!is_pkce_string(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn errors_go_back_with_state_and_codes_with_their_query() {
        let g = Ctx {
            redirect_uri: "https://app.test/cb?x=1".into(),
            state: Some("s t".into()),
        };
        let AuthorizeError::Redirect { location } = redirect_error(&g, "access_denied", "no")
        else {
            panic!()
        };
        assert_eq!(
            location,
            "https://app.test/cb?x=1&error=access_denied&error_description=no&state=s+t"
        );
        assert_eq!(token_error("invalid_client", "x").status, 401);
        assert_eq!(token_error("invalid_grant", "x").status, 400);
    }
}
