//! API keys and least-privilege roles.
//!
//! A key looks like `hn_<key id>_<secret>`: the id (16 hex chars) finds the stored row,
//! the secret (32 random bytes, base64url) is checked against its SHA-256 in constant
//! time. Only the hash is stored; the full key is shown once, when created.
//!
//! | role | may |
//! |---|---|
//! | `admin` | everything, including key management |
//! | `enroller` | create and delete collections, index and delete faces, manage users, verifications, webhooks — and everything a recognizer may |
//! | `recognizer` | detect, compare, search, verify, identify, find-similar, group, read collections and faces, liveness sessions; **not** create or delete enrolment data (like Azure's "Face Recognizer") |
//!
//! A key may be limited to one collection: it then sees and touches that collection
//! only, everywhere, and only that collection as it existed when the key was bound to it
//! (its identity, not its name: a key limited to `kyc` grants nothing in a `kyc` created
//! after the first was deleted). An admin key limited to a collection is that
//! collection's administrator: it creates, lists and revokes keys limited to the same
//! collection only, and sees what those keys created (liveness sessions, verifications,
//! webhooks, transient faces), never anything broader than itself. Whatever a key
//! creates (sessions, verifications, webhooks, transient face IDs) is private to it, its
//! collection's administrators and unlimited admins.

use aes_gcm::aead::{rand_core::RngCore, OsRng};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::CoreError;

/// A key's role: what it may do (see the table in the module docs). Lower-case on the
/// wire: `admin`, `enroller`, `recognizer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Everything, including key management ([`Action::ManageKeys`]).
    Admin,
    /// Enrolment ([`Action::Enroll`]: collections, faces, users, verifications,
    /// webhooks) and everything a recognizer may.
    Enroller,
    /// Recognition only ([`Action::Recognize`]): no enrolment data created or deleted.
    Recognizer,
}

impl Role {
    /// The wire name: `admin`, `enroller` or `recognizer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Enroller => "enroller",
            Role::Recognizer => "recognizer",
        }
    }
    /// The role of a wire name ([`Role::as_str`]); `None` for any other string
    /// (case-sensitive).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "enroller" => Some(Role::Enroller),
            "recognizer" => Some(Role::Recognizer),
            _ => None,
        }
    }
}

/// What an operation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Detect, compare, search, verify, identify, find-similar, group, read metadata.
    Recognize,
    /// Create or delete collections, index or delete faces, manage users.
    Enroll,
    /// Create, list and revoke API keys.
    ManageKeys,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The id of the caller's key (16 hex chars; `system` for in-process callers).
    pub key_id: String,
    /// The key's role.
    pub role: Role,
    /// The one collection this key may use, if limited.
    pub collection: Option<String>,
    /// The identity (`collection_uid`) of that collection, once the key is bound to it
    /// (a key made before its collection existed is bound on first use).
    pub scope_uid: Option<String>,
}

impl Principal {
    /// A principal for in-process callers (CLI tools, tests): admin, unlimited.
    pub fn system() -> Self {
        Principal {
            key_id: "system".into(),
            role: Role::Admin,
            collection: None,
            scope_uid: None,
        }
    }

    /// Whether this key is limited to one collection.
    pub fn is_limited(&self) -> bool {
        self.collection.is_some()
    }

    /// Checks that this caller may do `action` (on `collection`, if the action names one).
    pub fn check(&self, action: Action, collection: Option<&str>) -> Result<(), CoreError> {
        let allowed = match (self.role, action) {
            (Role::Admin, _) => true,
            (Role::Enroller, Action::ManageKeys) => false,
            (Role::Enroller, _) => true,
            (Role::Recognizer, Action::Recognize) => true,
            (Role::Recognizer, _) => false,
        };
        if !allowed {
            return Err(CoreError::AccessDenied(format!(
                "a {} key may not {}",
                self.role.as_str(),
                match action {
                    Action::Recognize => "use recognition operations",
                    Action::Enroll => "create or delete enrolment data",
                    Action::ManageKeys => "manage API keys",
                }
            )));
        }
        if let (Some(scope), Some(c)) = (&self.collection, collection) {
            if scope != c {
                return Err(CoreError::AccessDenied(format!(
                    "this key is limited to collection `{scope}`"
                )));
            }
        }
        Ok(())
    }
}

/// A freshly created key: the token is shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedKey {
    /// The key's id (16 hex chars): what `DELETE /v1/keys/{keyId}` and listings name.
    pub key_id: String,
    /// The full bearer token, `hn_<keyId>_<secret>`: shown only this once, never
    /// stored (only its SHA-256 is).
    pub token: String,
    /// The key's role.
    pub role: Role,
    /// The one collection the key is limited to; absent for an unlimited key.
    pub collection: Option<String>,
    /// The caller's label for the key (printable, at most 128 characters).
    pub name: String,
}

/// Key metadata (never the secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    /// The key's id (16 hex chars).
    pub key_id: String,
    /// The key's role.
    pub role: Role,
    /// The one collection the key is limited to; absent for an unlimited key.
    pub collection: Option<String>,
    /// The caller's label for the key.
    pub name: String,
    /// When the key was created, RFC 3339 UTC.
    pub created_at: String,
    /// When the key was revoked, RFC 3339 UTC; absent while it is active.
    pub revoked_at: Option<String>,
}

pub(crate) fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Makes a new (id, secret, token).
pub(crate) fn generate() -> (String, String, String) {
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let token = format!("hn_{id}_{secret}");
    (id, secret, token)
}

/// Splits a token into (id, secret); `None` when it is not shaped like a honnin key.
pub(crate) fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("hn_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((id, secret))
}

/// Constant-time comparison of a presented secret with a stored hash.
pub(crate) fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    let h = hash_secret(secret);
    h.len() == stored_hash.len() && bool::from(h.ct_eq(stored_hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_verify() {
        let (id, secret, token) = generate();
        assert_eq!(parse_token(&token), Some((id.as_str(), secret.as_str())));
        assert!(secret_matches(&secret, &hash_secret(&secret)));
        assert!(!secret_matches("wrong", &hash_secret(&secret)));
        assert!(parse_token("Bearer x").is_none());
        assert!(parse_token("hn_short_x").is_none());
        assert!(parse_token("hn_0123456789abcdef_").is_none());
    }

    #[test]
    fn roles_and_scopes() {
        let rec = Principal {
            key_id: "k".into(),
            role: Role::Recognizer,
            collection: None,
            scope_uid: None,
        };
        assert!(rec.check(Action::Recognize, Some("c")).is_ok());
        assert!(rec.check(Action::Enroll, Some("c")).is_err());
        let enr = Principal {
            role: Role::Enroller,
            collection: Some("c".into()),
            ..rec.clone()
        };
        assert!(enr.check(Action::Enroll, Some("c")).is_ok());
        assert!(enr.check(Action::Enroll, Some("d")).is_err(), "scoped to c");
        assert!(enr.check(Action::ManageKeys, None).is_err());
        assert!(Principal::system()
            .check(Action::ManageKeys, Some("x"))
            .is_ok());
    }
}
