//! API key management over the store alone, so `honnin keys …` works without
//! loading the models. [`crate::Service`] delegates here.

use honnin_storage::{KeyRow, Store};

use crate::auth::{self, Action, CreatedKey, KeyInfo, Principal, Role};
use crate::error::{CoreError, Result};
use crate::service::{check_collection_id, now_ms, rfc3339};

/// Creates a key; the token is returned once and only its SHA-256 is stored.
pub async fn create(
    store: &Store,
    p: &Principal,
    role: Role,
    collection: Option<String>,
    name: &str,
) -> Result<CreatedKey> {
    p.check(Action::ManageKeys, None)?;
    if let Some(c) = &collection {
        check_collection_id(c)?;
    }
    if name.len() > 128 {
        return Err(CoreError::InvalidParameter(
            "key name must be at most 128 characters".into(),
        ));
    }
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

/// Every key, active or revoked (never a secret).
pub async fn list(store: &Store, p: &Principal) -> Result<Vec<KeyInfo>> {
    p.check(Action::ManageKeys, None)?;
    Ok(store
        .list_keys()
        .await?
        .into_iter()
        .map(|k| KeyInfo {
            role: Role::parse(&k.role).unwrap_or(Role::Recognizer),
            key_id: k.key_id,
            collection: k.collection_id,
            name: k.name,
            created_at: rfc3339(k.created_ms),
            revoked_at: k.revoked_ms.map(rfc3339),
        })
        .collect())
}

/// Revokes an active key. Other processes stop accepting it within 2 s (their cache).
pub async fn revoke(store: &Store, p: &Principal, key_id: &str) -> Result<()> {
    p.check(Action::ManageKeys, None)?;
    if !store.revoke_key(key_id, now_ms()).await? {
        return Err(CoreError::ResourceNotFound(format!(
            "no active key `{}`",
            key_id.chars().take(64).collect::<String>()
        )));
    }
    Ok(())
}

/// Whether any key exists (first start creates an admin key when none does).
pub async fn any(store: &Store) -> Result<bool> {
    Ok(!store.list_keys().await?.is_empty())
}
