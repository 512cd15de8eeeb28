//! API keys: management over the store alone (the free functions, so `honnin keys …`
//! works without loading the models), and the [`Keys`] domain of the service, which
//! adds authentication through the shared cache of [`Context`](crate::context::Context).
//!
//! The rule: **a key never creates, lists, revokes or reads anything broader than
//! itself.** Only admin keys manage keys. An unlimited admin manages every key; an admin
//! limited to a collection manages only keys limited to that same collection (any role,
//! admin included), and the keys it creates are bound to the collection's identity as
//! its own key is. A key limited to a collection is bound to that collection's identity
//! when it is created (if the collection exists) or on first use.
//!
//! Revoking a key ends its work: see [`revoke`].

use std::time::{Duration, Instant};

use honnin_storage::{KeyRow, Revocation, Store};

use crate::auth::{self, Action, CreatedKey, KeyInfo, Principal, Role};
use crate::clock::{now_ms, rfc3339};
use crate::context::{domain, KEY_CACHE_SECS, UNKNOWN_KEY_CACHE_MAX};
use crate::error::{CoreError, Result};
use crate::validate::{self, check_collection_id};

/// Longest key name, characters.
pub const MAX_KEY_NAME: usize = 128;

fn limited_to_other(p: &Principal) -> CoreError {
    CoreError::AccessDenied(format!(
        "this key is limited to collection `{}`: it manages keys limited to that collection only",
        p.collection.as_deref().unwrap_or("")
    ))
}

/// Whether the limited admin `p` may manage key `k` (same collection, same identity
/// or not yet bound to any).
fn in_scope(p: &Principal, k: &KeyRow) -> bool {
    match &p.collection {
        None => true,
        Some(name) => {
            k.collection_id.as_deref() == Some(name.as_str())
                && (k.scope_uid.is_none() || k.scope_uid == p.scope_uid)
        }
    }
}

/// Creates a key; the token is returned once and only its SHA-256 is stored. `name`
/// must be printable text of at most [`MAX_KEY_NAME`] characters.
pub async fn create(
    store: &Store,
    p: &Principal,
    role: Role,
    collection: Option<String>,
    name: &str,
) -> Result<CreatedKey> {
    p.check(Action::ManageKeys, None)?;
    validate::printable("name", name, MAX_KEY_NAME)?;
    if let Some(c) = &collection {
        check_collection_id(c)?;
    }
    let scope_uid = match (&p.collection, &collection) {
        // A limited admin creates keys limited to its own collection, bound as it is.
        (Some(mine), Some(c)) if mine == c => p.scope_uid.clone(),
        (Some(_), _) => return Err(limited_to_other(p)),
        (None, Some(c)) => store.get_collection(c).await?.map(|r| r.collection_uid),
        (None, None) => None,
    };
    let (key_id, secret, token) = auth::generate();
    store
        .insert_key(&KeyRow {
            key_id: key_id.clone(),
            secret_hash: auth::hash_secret(&secret),
            role: role.as_str().into(),
            collection_id: collection.clone(),
            name: name.into(),
            created_ms: now_ms(),
            revoked_ms: None,
            scope_uid,
        })
        .await?;
    Ok(CreatedKey {
        key_id,
        token,
        role,
        collection,
        name: name.into(),
    })
}

fn info(k: KeyRow) -> KeyInfo {
    KeyInfo {
        role: Role::parse(&k.role).unwrap_or(Role::Recognizer),
        key_id: k.key_id,
        collection: k.collection_id,
        name: k.name,
        created_at: rfc3339(k.created_ms),
        revoked_at: k.revoked_ms.map(rfc3339),
    }
}

/// The keys `p` may manage, active or revoked (never a secret): every key for an
/// unlimited admin, the keys of its own collection for a limited one.
pub async fn list(store: &Store, p: &Principal) -> Result<Vec<KeyInfo>> {
    p.check(Action::ManageKeys, None)?;
    let rows = match &p.collection {
        None => store.list_keys(None).await?,
        Some(name) => {
            store
                .list_keys(Some((name, p.scope_uid.as_deref().unwrap_or(""))))
                .await?
        }
    };
    Ok(rows
        .into_iter()
        .filter(|k| in_scope(p, k))
        .map(info)
        .collect())
}

/// Revokes an active key `p` may manage (any other id: `ResourceNotFound`, so a limited
/// admin learns nothing of keys outside its collection), in one transaction with the
/// end of its work: its open liveness sessions are cancelled (`FAILED`, reason
/// `KeyRevoked`; a running stream stops within a second), its verifications still
/// waiting for a step are `cancelled` (templates and images dropped), its webhooks are
/// disabled (pending deliveries failed), its transient faces deleted. Other servers
/// refuse the key within [`KEY_CACHE_SECS`].
pub async fn revoke(store: &Store, p: &Principal, key_id: &str) -> Result<Revocation> {
    p.check(Action::ManageKeys, None)?;
    let not_found = || {
        CoreError::ResourceNotFound(format!(
            "no active key `{}`",
            validate::escape_unprintable(&key_id.chars().take(64).collect::<String>())
        ))
    };
    let id = validate::key_id(key_id).ok_or_else(not_found)?;
    match store.get_key(&id).await? {
        Some(k) if k.revoked_ms.is_none() && in_scope(p, &k) => {}
        _ => return Err(not_found()),
    }
    store.revoke_key(&id, now_ms()).await?.ok_or_else(not_found)
}

/// Whether any key exists (first start creates an admin key when none does).
pub async fn any(store: &Store) -> Result<bool> {
    Ok(!store.list_keys(None).await?.is_empty())
}

domain!(
    /// The API keys of a running service: management (as the free functions) and
    /// authentication of bearer tokens through the shared cache.
    Keys
);

impl Keys<'_> {
    /// Creates an API key; the token is returned once and only its hash is stored.
    pub async fn create_key(
        &self,
        p: &Principal,
        role: Role,
        collection: Option<String>,
        name: &str,
    ) -> Result<CreatedKey> {
        create(self.store(), p, role, collection, name).await
    }

    /// The keys `p` may manage (see [`list`]).
    pub async fn list_keys(&self, p: &Principal) -> Result<Vec<KeyInfo>> {
        list(self.store(), p).await
    }

    /// Revokes a key and ends its work (see [`revoke`]).
    pub async fn revoke_key(
        &self,
        p: &Principal,
        key_id: &str,
    ) -> Result<honnin_storage::Revocation> {
        let r = revoke(self.store(), p, key_id).await?;
        self.key_cache.lock().clear();
        Ok(r)
    }

    /// Resolves a bearer token to a principal. A revocation takes effect on this server
    /// at once and on the others within [`KEY_CACHE_SECS`]. Unknown key ids are
    /// remembered as long, so repeating one costs no database query.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let bad = || CoreError::Unauthenticated("invalid API key".into());
        let (id, secret) = auth::parse_token(token).ok_or_else(bad)?;
        let fresh = |t: &Instant| t.elapsed() < Duration::from_secs(KEY_CACHE_SECS);
        let cached = self
            .key_cache
            .lock()
            .get(id)
            .filter(|(_, t)| fresh(t))
            .map(|(k, _)| k.clone());
        let row = match cached {
            Some(k) => k,
            None => {
                if self.unknown_keys.lock().get(id).is_some_and(fresh) {
                    metrics::counter!("honnin_auth_unknown_key_cache_hits_total").increment(1);
                    return Err(bad());
                }
                let Some(k) = self.store().get_key(id).await? else {
                    let mut unknown = self.unknown_keys.lock();
                    if unknown.len() >= UNKNOWN_KEY_CACHE_MAX {
                        unknown.retain(|_, t| fresh(t));
                        if unknown.len() >= UNKNOWN_KEY_CACHE_MAX {
                            unknown.clear();
                        }
                    }
                    unknown.insert(id.to_string(), Instant::now());
                    return Err(bad());
                };
                self.key_cache
                    .lock()
                    .insert(id.to_string(), (k.clone(), Instant::now()));
                k
            }
        };
        if !auth::secret_matches(secret, &row.secret_hash) {
            return Err(bad());
        }
        if row.revoked_ms.is_some() {
            return Err(CoreError::Unauthenticated(
                "this API key has been revoked".into(),
            ));
        }
        principal_of(row)
    }

    /// The principal of `token` if this process authenticated it within
    /// [`KEY_CACHE_SECS`] (no database query): a client address blocked for failed
    /// authentications keeps working with keys it has used successfully.
    pub fn authenticate_cached(&self, token: &str) -> Option<Principal> {
        let (id, secret) = auth::parse_token(token)?;
        let row = self
            .key_cache
            .lock()
            .get(id)
            .filter(|(_, t)| t.elapsed() < Duration::from_secs(KEY_CACHE_SECS))
            .map(|(k, _)| k.clone())?;
        (auth::secret_matches(secret, &row.secret_hash) && row.revoked_ms.is_none()).then(|| {
            Principal {
                key_id: row.key_id,
                role: Role::parse(&row.role).unwrap_or(Role::Recognizer),
                collection: row.collection_id,
                scope_uid: row.scope_uid,
            }
        })
    }
}

/// The principal of a stored key (whether it is revoked is the caller's check).
/// Errors: `Internal` for a role no code writes.
pub(crate) fn principal_of(row: KeyRow) -> Result<Principal> {
    Ok(Principal {
        key_id: row.key_id,
        role: Role::parse(&row.role)
            .ok_or_else(|| CoreError::Internal("stored key has an unknown role".into()))?,
        collection: row.collection_id,
        scope_uid: row.scope_uid,
    })
}
