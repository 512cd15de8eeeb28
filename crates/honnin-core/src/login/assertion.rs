//! Login assertions: a JWT (ES256) that a relying party verifies offline with the keys
//! published at `/.well-known/jwks.json`.
//!
//! Keys: ECDSA P-256 key pairs made with `ring`, signed and verified with
//! `jsonwebtoken`. The private key (PKCS#8) is sealed with the service key
//! `service:login-signing` (itself wrapped by the master key in the vault) and stored in
//! `login_signing_keys`. A key signs for [`LoginConfig::key_rotation_secs`]; then the
//! next signature makes a new key and uses it at once (a relying party meeting an
//! unknown `kid` fetches the JWKS again, as OpenID Connect libraries do). A key stays
//! published for its signing period plus the longest assertion lifetime plus a day, so an
//! assertion is never left without its key; then the sweep deletes it.
//!
//! [`LoginConfig::key_rotation_secs`]: crate::config::login::LoginConfig::key_rotation_secs

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::{Deserialize, Serialize};

use honnin_storage::SigningKeyRow;

use crate::clock::now_ms;
use crate::context::Context;
use crate::error::{CoreError, Result};

/// The prefix of every OpenID Connect client id (`hnc_…`): an audience that only the
/// provider's ID tokens carry (a `/v1` login may not name one).
pub const CLIENT_ID_PREFIX: &str = "hnc_";

/// The JOSE algorithm of every assertion.
pub const ALGORITHM: &str = "ES256";
/// How long a retired key stays published beyond the last assertion it signed, seconds.
const PUBLISH_MARGIN_SECS: u64 = 86_400;
/// The additional-data label of a sealed private key.
fn private_key_aad(kid: &str) -> Vec<u8> {
    format!("honnin-login-signing-v1:{kid}").into_bytes()
}

/// The claims of a login assertion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssertionClaims {
    /// Issuer: `login.issuer` (default `urn:honnin`); in an ID token, the provider's
    /// issuer URL.
    pub iss: String,
    /// Subject: the user id the face was matched to.
    pub sub: String,
    /// Audience: the relying party (the caller's `audience`, an OIDC client id).
    pub aud: String,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch (`iat + login.assertion_ttl_secs`).
    pub exp: i64,
    /// When the person was authenticated, seconds since the epoch (OIDC `auth_time`).
    pub auth_time: i64,
    /// The relying party's nonce, echoed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nonce: Option<String>,
    /// A unique id of this assertion (the login attempt's id).
    pub jti: String,
    /// Authentication methods (RFC 8176): `face` and `liveness`.
    pub amr: Vec<String>,
    /// The security level: `urn:honnin:acr:<level>`.
    pub acr: String,
    /// The collection the user was matched in.
    pub collection_id: String,
    /// The liveness confidence of the session, 0–100.
    pub liveness_confidence: f32,
    /// The similarity of the match, 0–100.
    pub match_similarity: f32,
    /// The false-match rate the similarity threshold of the attempt stood for (per
    /// comparison).
    pub match_fmr: f64,
}

/// A public key in JWK form (RFC 7517), EC P-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// `EC`.
    pub kty: String,
    /// `P-256`.
    pub crv: String,
    /// The x coordinate, base64url (32 bytes).
    pub x: String,
    /// The y coordinate, base64url (32 bytes).
    pub y: String,
    /// The key id.
    pub kid: String,
    /// `ES256`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// The published key set (`/.well-known/jwks.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// Every key that signs or signed an assertion still valid, newest first.
    pub keys: Vec<Jwk>,
}

fn crypto(what: &str) -> impl FnOnce(ring::error::Unspecified) -> CoreError + '_ {
    move |_| CoreError::Crypto(format!("{what} failed"))
}

/// A fresh key: its stored row (private key sealed under `Context::login_key`).
fn new_key(cx: &Context, now: i64) -> Result<SigningKeyRow> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(crypto("making a signing key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .map_err(|_| CoreError::Crypto("reading a new signing key failed".into()))?;
    // Uncompressed point: 0x04 ‖ x (32) ‖ y (32).
    let point = pair.public_key().as_ref();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut id = [0u8; 12];
    ring::rand::SecureRandom::fill(&rng, &mut id).map_err(crypto("making a key id"))?;
    let kid = b64.encode(id);
    let jwk = Jwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: b64.encode(&point[1..33]),
        y: b64.encode(&point[33..65]),
        kid: kid.clone(),
        alg: ALGORITHM.into(),
        use_: "sig".into(),
    };
    let cfg = &cx.config().login;
    let publish_ms =
        (cfg.key_rotation_secs + cfg.assertion_ttl_secs + PUBLISH_MARGIN_SECS) as i64 * 1000;
    Ok(SigningKeyRow {
        private_key: cx.login_key.seal(pkcs8.as_ref(), &private_key_aad(&kid)),
        public_jwk: serde_json::to_string(&jwk).map_err(CoreError::json("writing a JWK"))?,
        kid,
        alg: ALGORITHM.into(),
        created_ms: now,
        retire_ms: now + publish_ms,
    })
}

/// The key that signs now: the newest one still in its signing period, or a new one.
async fn signing_key(cx: &Context, now: i64) -> Result<(String, EncodingKey)> {
    let rotation_ms = cx.config().login.key_rotation_secs as i64 * 1000;
    let keys = cx.store().signing_keys(now).await?;
    let row = match keys.into_iter().find(|k| now - k.created_ms < rotation_ms) {
        Some(k) => k,
        None => {
            let k = new_key(cx, now)?;
            cx.store().insert_signing_key(&k).await?;
            tracing::info!(kid = %k.kid, "login: new assertion-signing key");
            k
        }
    };
    let pkcs8 = cx
        .login_key
        .open(&row.private_key, &private_key_aad(&row.kid))?;
    Ok((row.kid, EncodingKey::from_ec_der(&pkcs8)))
}

/// Signs `claims` with the current key. Errors: `Crypto`, storage errors.
pub(crate) async fn sign(cx: &Context, claims: &AssertionClaims) -> Result<String> {
    let (kid, key) = signing_key(cx, now_ms()).await?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some("JWT".into());
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| CoreError::Crypto(format!("signing the assertion: {e}")))
}

/// The published keys (creating the first key if there is none, so that the set is
/// never empty; retired keys are deleted by the sweep).
pub(crate) async fn jwks(cx: &Context) -> Result<Jwks> {
    let now = now_ms();
    let mut rows = cx.store().signing_keys(now).await?;
    if rows.is_empty() {
        signing_key(cx, now).await?;
        rows = cx.store().signing_keys(now).await?;
    }
    rows.iter()
        .map(|r| {
            serde_json::from_str(&r.public_jwk).map_err(CoreError::json("reading a stored JWK"))
        })
        .collect::<Result<Vec<Jwk>>>()
        .map(|keys| Jwks { keys })
}

/// Signs any claims with the current key, with the JOSE header `typ` (`JWT`, or
/// `at+jwt` for an access token, RFC 9068).
pub(crate) async fn sign_typed<T: Serialize>(
    cx: &Context,
    claims: &T,
    typ: &str,
) -> Result<String> {
    let (kid, key) = signing_key(cx, now_ms()).await?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid);
    header.typ = Some(typ.into());
    jsonwebtoken::encode(&header, claims, &key)
        .map_err(|e| CoreError::Crypto(format!("signing a token: {e}")))
}

/// Verifies a token this service signed (any published key), with `aud` and `iss`;
/// `None` when it does not verify (bad signature, unknown key, expired, other
/// audience or issuer).
pub(crate) async fn verify<T: serde::de::DeserializeOwned>(
    cx: &Context,
    token: &str,
    audience: &str,
    issuer: &str,
) -> Result<Option<T>> {
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(None);
    };
    let Some(kid) = header.kid else {
        return Ok(None);
    };
    let Some(row) = cx
        .store()
        .signing_keys(now_ms())
        .await?
        .into_iter()
        .find(|k| k.kid == kid)
    else {
        return Ok(None);
    };
    let jwk: Jwk =
        serde_json::from_str(&row.public_jwk).map_err(CoreError::json("reading a stored JWK"))?;
    let key = DecodingKey::from_ec_components(&jwk.x, &jwk.y)
        .map_err(|e| CoreError::Crypto(format!("a stored JWK: {e}")))?;
    let mut v = Validation::new(Algorithm::ES256);
    v.set_audience(&[audience]);
    v.set_issuer(&[issuer]);
    v.leeway = 0;
    Ok(jsonwebtoken::decode::<T>(token, &key, &v)
        .ok()
        .map(|d| d.claims))
}
