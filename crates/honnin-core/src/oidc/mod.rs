//! An OpenID Connect provider over face login: a web application adds "log in with your
//! face" with any standard OIDC library (authorization code flow with PKCE).
//!
//! * `clients`: relying parties registered by an enroller or admin key of a
//!   collection (client id and secret, exact redirect URIs, the security level). Logins
//!   of a client run as the key that registered it, in its collection.
//! * `flow`: `begin_login` (the authorization endpoint) checks the request and opens a grant bound to a new liveness
//!   session (the hosted page runs it); `complete` runs the face login (1:N, or 1:1
//!   with `login_hint`) and issues a one-time code; `token` trades the code (client
//!   authentication, the same redirect URI, the PKCE verifier) for the ID token and an
//!   access token; `userinfo` answers for an access token.
//!
//! Every token is an ES256 JWT signed with the keys of [`crate::login::assertion`]
//! (`/.well-known/jwks.json`).

mod clients;
mod flow;

pub use clients::{ClientInfo, NewClient, MAX_REDIRECT_URIS};
pub use flow::{
    AuthorizeError, AuthorizeRequest, HostedLogin, TokenError, TokenRequest, TokenResponse,
    UserInfo, ACCESS_TOKEN_TTL_SECS, CODE_TTL_SECS,
};

use serde::{Deserialize, Serialize};

use crate::context::domain;
use crate::login::SecurityLevel;

domain!(
    /// The OpenID Connect provider (see the module docs).
    Oidc
);

/// Paths of the provider's endpoints, below its issuer URL.
pub mod paths {
    /// Discovery (OpenID Connect Discovery 1.0).
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    /// The published keys.
    pub const JWKS: &str = "/.well-known/jwks.json";
    /// The authorization endpoint.
    pub const AUTHORIZE: &str = "/oidc/authorize";
    /// Where the hosted page posts when its liveness check has ended.
    pub const COMPLETE: &str = "/oidc/authorize/complete";
    /// The token endpoint.
    pub const TOKEN: &str = "/oidc/token";
    /// The UserInfo endpoint.
    pub const USERINFO: &str = "/oidc/userinfo";
}

/// The provider's metadata (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discovery {
    /// The issuer URL (`iss` of every token).
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The UserInfo endpoint.
    pub userinfo_endpoint: String,
    /// The key set.
    pub jwks_uri: String,
    /// `["code"]`.
    pub response_types_supported: Vec<String>,
    /// `["query"]`.
    pub response_modes_supported: Vec<String>,
    /// `["authorization_code"]`.
    pub grant_types_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// `["ES256"]`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `["openid"]`.
    pub scopes_supported: Vec<String>,
    /// `["client_secret_basic", "client_secret_post"]`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `["S256"]` (PKCE is required).
    pub code_challenge_methods_supported: Vec<String>,
    /// The claims an ID token carries.
    pub claims_supported: Vec<String>,
    /// `urn:honnin:acr:<level>` of every level.
    pub acr_values_supported: Vec<String>,
}

/// The metadata of the provider at `issuer` (no trailing slash).
pub fn discovery(issuer: &str) -> Discovery {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    Discovery {
        issuer: issuer.into(),
        authorization_endpoint: format!("{issuer}{}", paths::AUTHORIZE),
        token_endpoint: format!("{issuer}{}", paths::TOKEN),
        userinfo_endpoint: format!("{issuer}{}", paths::USERINFO),
        jwks_uri: format!("{issuer}{}", paths::JWKS),
        response_types_supported: s(&["code"]),
        response_modes_supported: s(&["query"]),
        grant_types_supported: s(&["authorization_code"]),
        subject_types_supported: s(&["public"]),
        id_token_signing_alg_values_supported: s(&["ES256"]),
        scopes_supported: s(&["openid"]),
        token_endpoint_auth_methods_supported: s(&["client_secret_basic", "client_secret_post"]),
        code_challenge_methods_supported: s(&["S256"]),
        claims_supported: s(&[
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "jti",
            "collection_id",
            "liveness_confidence",
            "match_similarity",
            "match_fmr",
        ]),
        acr_values_supported: SecurityLevel::ALL.iter().map(|l| l.acr()).collect(),
    }
}
