//! Registered relying parties.

use base64::Engine as _;
use honnin_storage::OidcClientRow;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Oidc;
use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::error::{CoreError, Result};
use crate::login::assertion::CLIENT_ID_PREFIX;
use crate::login::SecurityLevel;

/// Most redirect URIs one client registers.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest client name and redirect URI, characters.
const MAX_NAME_CHARS: usize = 100;
const MAX_URI_CHARS: usize = 2_000;

/// `POST /v1/oidc/clients`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewClient {
    /// Shown on the hosted login page: 1–100 printable characters.
    pub name: String,
    /// The collection people log in to (their profiles are there).
    pub collection_id: String,
    /// 1–10 absolute `https://` URLs without a fragment (`http://` only for
    /// `127.0.0.1`, `[::1]` and `localhost`, RFC 8252); matched exactly.
    pub redirect_uris: Vec<String>,
    /// The security level of its logins; default `login.default_level`.
    pub level: Option<SecurityLevel>,
}

/// A registered client.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientInfo {
    /// The client id (`client_id`).
    pub client_id: String,
    /// The client secret: shown once, when the client is registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Its name.
    pub name: String,
    /// Its collection.
    pub collection_id: String,
    /// Its redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The security level of its logins.
    pub level: SecurityLevel,
    /// The key that registered it (its logins run as that key).
    pub owner_key_id: String,
    /// When it was registered, RFC 3339 UTC.
    pub created_at: String,
}

fn check_redirect_uri(u: &str) -> Result<()> {
    let bad = |why: &str| CoreError::InvalidParameter(format!("redirect URI `{u}`: {why}"));
    if u.chars().count() > MAX_URI_CHARS {
        return Err(bad("too long"));
    }
    let parsed = url::Url::parse(u).map_err(|_| bad("not an absolute URL"))?;
    if parsed.fragment().is_some() {
        return Err(bad("must not have a fragment"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http"
            if matches!(
                parsed.host_str(),
                Some("127.0.0.1") | Some("[::1]") | Some("localhost")
            ) =>
        {
            Ok(())
        }
        _ => Err(bad("https only (http for 127.0.0.1, [::1] and localhost)")),
    }
}

pub(crate) fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

pub(crate) fn info(r: OidcClientRow, secret: Option<String>) -> Result<ClientInfo> {
    Ok(ClientInfo {
        client_id: r.client_id,
        client_secret: secret,
        name: r.name,
        collection_id: r.collection_id,
        redirect_uris: serde_json::from_str(&r.redirect_uris)
            .map_err(CoreError::json("stored redirect URIs"))?,
        level: SecurityLevel::parse(&r.level)
            .ok_or_else(|| CoreError::Internal(format!("stored level `{}`", r.level)))?,
        owner_key_id: r.owner_key,
        created_at: rfc3339(r.created_ms),
    })
}

impl Oidc<'_> {
    /// Registers a client of collection `req.collection_id`, owned by the caller (an
    /// enroller or admin key of that collection). Errors: `InvalidParameter`,
    /// `AccessDenied`, `ResourceNotFound`.
    pub async fn create_client(&self, p: &Principal, req: &NewClient) -> Result<ClientInfo> {
        let name = req.name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_CHARS
            || name.chars().any(|c| c.is_control())
        {
            return Err(CoreError::InvalidParameter(format!(
                "name must be 1–{MAX_NAME_CHARS} printable characters"
            )));
        }
        if req.redirect_uris.is_empty() || req.redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(CoreError::InvalidParameter(format!(
                "redirectUris must hold 1–{MAX_REDIRECT_URIS} URLs"
            )));
        }
        for u in &req.redirect_uris {
            check_redirect_uri(u)?;
        }
        self.authorize(p, Action::Enroll, &req.collection_id)
            .await?;
        let level = match req.level {
            Some(l) => l,
            None => SecurityLevel::parse(&self.config().login.default_level).ok_or_else(|| {
                CoreError::Config(format!(
                    "login.default_level `{}`",
                    self.config().login.default_level
                ))
            })?,
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut id = [0u8; 16];
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut id);
        rand::rng().fill_bytes(&mut secret);
        let secret = b64.encode(secret);
        let row = OidcClientRow {
            client_id: format!("{CLIENT_ID_PREFIX}{}", hex::encode(id)),
            secret_hash: secret_hash(&secret),
            name: name.into(),
            owner_key: p.key_id.clone(),
            collection_id: req.collection_id.clone(),
            redirect_uris: serde_json::to_string(&req.redirect_uris)
                .map_err(CoreError::json("redirect URIs"))?,
            level: level.as_str().into(),
            created_ms: now_ms(),
        };
        self.store().insert_oidc_client(&row).await?;
        info(row, Some(secret))
    }

    /// The clients the caller may see: its own, and (an admin) those of the keys it
    /// oversees.
    pub async fn list_clients(&self, p: &Principal) -> Result<Vec<ClientInfo>> {
        p.check(Action::Recognize, None)?;
        let mut out = Vec::new();
        for c in self.store().list_oidc_clients().await? {
            if self.may_see_owned(p, &c.owner_key).await? {
                out.push(info(c, None)?);
            }
        }
        Ok(out)
    }

    /// Deletes a client and its pending grants. Errors: `ResourceNotFound` (unknown, or
    /// another key's), `AccessDenied` (a recognizer key).
    pub async fn delete_client(&self, p: &Principal, id: &str) -> Result<()> {
        let missing = || CoreError::ResourceNotFound(format!("client `{id}` does not exist"));
        let c = self
            .store()
            .get_oidc_client(id)
            .await?
            .ok_or_else(missing)?;
        let owner = c.owner_key.clone();
        let c = self.owned(p, &owner, None, c, missing).await?;
        p.check(Action::Enroll, Some(&c.collection_id))?;
        self.store().delete_oidc_client(id).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for ok in [
            "https://app.example/cb",
            "https://app.example/cb?x=1",
            "http://127.0.0.1:8080/cb",
            "http://localhost/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(check_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example/cb",
            "https://app.example/cb#frag",
            "/relative",
            "javascript:alert(1)",
            "ftp://x/",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
