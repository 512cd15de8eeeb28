//! Encryption at rest: AES-256-GCM everywhere.
//!
//! * The **master key** (32 random bytes) lives outside the database, in a file with
//!   mode 0600 (`<data-dir>/master.key`) or the `HONNIN_MASTER_KEY` environment variable
//!   (base64), so a database dump alone decrypts nothing.
//! * Each **collection** has its own data key, and the service has a few of its own
//!   (`service:transient` seals transient templates, liveness and verification data and
//!   webhook secrets; `service:page-tokens` seals page tokens). Each is stored *wrapped*
//!   (sealed by the master key) in the key vault, apart from the main database
//!   (`honnin_storage::KeyVault`), with its vault reference as associated data:
//!   `honnin-dek-v2:collection:<collection uid>` or `honnin-dek-v2:service:<name>`, so
//!   no collection name (not even `transient`) can stand for a service key.
//! * **Templates** are sealed with their collection's data key, with
//!   `face:<collection>:<face id>` as associated data (transient faces:
//!   `transient-face:<face id>`), so a ciphertext cannot be moved to another face or
//!   collection.
//! * Deleting a collection deletes its wrapped data key from the vault
//!   (crypto-shredding): its templates cannot be decrypted again from any copy of the
//!   faces table, and the vault's files are scrubbed (see `docs/security.md` for what
//!   holds for backups).
//!
//! Sealed format: 12-byte random nonce ‖ ciphertext ‖ 16-byte tag.

use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;

use crate::error::CoreError;

const NONCE: usize = 12;

/// A 256-bit AES-GCM key.
#[derive(Clone)]
pub struct DataKey {
    cipher: Aes256Gcm,
    raw: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// The key of 32 raw bytes (e.g. the decoded master key).
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&raw)),
            raw,
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let k = Aes256Gcm::generate_key(OsRng);
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&k);
        Self::from_bytes(raw)
    }

    /// Encrypts `plain`, binding it to `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut out = nonce.to_vec();
        // Encryption with a fresh nonce and in-memory buffers cannot fail.
        let ct = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .unwrap_or_default();
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a [`DataKey::seal`] output; fails if the key, `aad` or bytes differ.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CoreError> {
        if sealed.len() < NONCE + 16 {
            return Err(CoreError::Crypto("sealed data is too short".into()));
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| {
                CoreError::Crypto("authentication failed (wrong key or tampered data)".into())
            })
    }

    /// Seals this key under `master` for the vault entry `key_ref`
    /// (`collection:<uid>` or `service:<name>`; see [`collection_key_ref`]).
    pub fn wrap(&self, master: &DataKey, key_ref: &str) -> Vec<u8> {
        master.seal(&self.raw, format!("honnin-dek-v2:{key_ref}").as_bytes())
    }

    /// Recovers a key sealed by [`DataKey::wrap`] for the same `key_ref`.
    pub fn unwrap(wrapped: &[u8], master: &DataKey, key_ref: &str) -> Result<DataKey, CoreError> {
        Self::from_raw(master.open(wrapped, format!("honnin-dek-v2:{key_ref}").as_bytes())?)
    }

    /// Recovers a key wrapped by honnin before the vault (associated data
    /// `honnin-dek-v1:<collection name>` or `honnin-dek-v1:transient`), to move it.
    pub fn unwrap_legacy(
        wrapped: &[u8],
        master: &DataKey,
        context: &str,
    ) -> Result<DataKey, CoreError> {
        Self::from_raw(master.open(wrapped, format!("honnin-dek-v1:{context}").as_bytes())?)
    }

    fn from_raw(raw: Vec<u8>) -> Result<DataKey, CoreError> {
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CoreError::Crypto("wrapped key has the wrong length".into()))?;
        Ok(DataKey::from_bytes(arr))
    }
}

/// Associated data binding a template to its face.
pub fn template_aad(collection: &str, face_id: &str) -> Vec<u8> {
    format!("face:{collection}:{face_id}").into_bytes()
}

/// Associated data binding a login profile template to its collection and id.
pub fn profile_aad(collection: &str, template_id: &str) -> Vec<u8> {
    format!("login-profile:{collection}:{template_id}").into_bytes()
}

/// Associated data binding a transient template to its transient face id.
pub fn transient_aad(face_id: &str) -> Vec<u8> {
    format!("transient-face:{face_id}").into_bytes()
}

/// Associated data of a liveness session's sealed data (`what`: `reference`, `images`,
/// `live`, …).
pub fn liveness_aad(session_id: &str, what: &str) -> Vec<u8> {
    format!("liveness:{session_id}:{what}").into_bytes()
}

/// Associated data of the live-face template a finished liveness session keeps for its
/// verification.
pub fn live_template_aad(session_id: &str) -> Vec<u8> {
    liveness_aad(session_id, "live")
}

/// Associated data of a verification's sealed data (`what`: `document`, `images`).
pub fn verification_aad(verification_id: &str, what: &str) -> Vec<u8> {
    format!("verification:{verification_id}:{what}").into_bytes()
}

/// Associated data of a webhook's signing secret.
pub fn webhook_secret_aad(webhook_id: &str) -> Vec<u8> {
    format!("webhook:{webhook_id}:secret").into_bytes()
}

/// Associated data of a page token of `listing` (e.g. `faces:<collection uid>:*`).
pub fn page_token_aad(listing: &str) -> Vec<u8> {
    format!("honnin-page-v1:{listing}").into_bytes()
}

/// The vault reference of a collection's data key.
pub fn collection_key_ref(uid: &str) -> String {
    format!("collection:{uid}")
}

/// The vault reference of one of the service's own keys.
pub fn service_key_ref(name: &str) -> String {
    format!("service:{name}")
}

/// Loads the master key from `HONNIN_MASTER_KEY` (base64) or `path`; creates the file
/// (mode 0600) with a random key when `create` is true and it does not exist.
/// Returns the key and whether it was created.
pub fn load_master_key(path: &Path, create: bool) -> Result<(DataKey, bool), CoreError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Ok(v) = std::env::var("HONNIN_MASTER_KEY") {
        let raw = b64
            .decode(v.trim())
            .map_err(|e| CoreError::Config(format!("HONNIN_MASTER_KEY is not base64: {e}")))?;
        let arr: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| CoreError::Config("HONNIN_MASTER_KEY must decode to 32 bytes".into()))?;
        return Ok((DataKey::from_bytes(arr), false));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let raw = b64
                .decode(text.trim())
                .map_err(|e| CoreError::Config(format!("{}: not base64: {e}", path.display())))?;
            let arr: [u8; 32] = raw.as_slice().try_into().map_err(|_| {
                CoreError::Config(format!("{}: must hold 32 bytes", path.display()))
            })?;
            Ok((DataKey::from_bytes(arr), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = DataKey::generate();
            write_private(path, format!("{}\n", b64.encode(key.raw)).as_bytes())?;
            Ok((key, true))
        }
        Err(e) => Err(CoreError::Config(format!(
            "master key {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a file readable by its owner only (0600 on Unix), refusing to overwrite.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CoreError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::Config(format!("{}: {e}", dir.display())))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| CoreError::Config(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = DataKey::generate();
        let s = k.seal(b"template bytes", b"face:c:f1");
        assert_eq!(k.open(&s, b"face:c:f1").unwrap(), b"template bytes");
        assert!(k.open(&s, b"face:c:f2").is_err(), "moved to another face");
        assert!(
            DataKey::generate().open(&s, b"face:c:f1").is_err(),
            "another key"
        );
        let mut t = s.clone();
        t[20] ^= 1;
        assert!(k.open(&t, b"face:c:f1").is_err(), "tampered");
        assert!(k.open(&s[..10], b"x").is_err());
        assert_ne!(
            k.seal(b"x", b""),
            k.seal(b"x", b""),
            "fresh nonce each time"
        );
    }

    #[test]
    fn wrapped_keys_need_the_master_and_the_context() {
        let master = DataKey::generate();
        let dek = DataKey::generate();
        let w = dek.wrap(&master, &collection_key_ref("uid-a"));
        let back = DataKey::unwrap(&w, &master, &collection_key_ref("uid-a")).unwrap();
        assert_eq!(back.raw, dek.raw);
        assert!(DataKey::unwrap(&w, &master, &collection_key_ref("uid-b")).is_err());
        assert!(DataKey::unwrap(&w, &DataKey::generate(), &collection_key_ref("uid-a")).is_err());
    }

    /// A collection named `transient` (or anything else) never shares the encryption
    /// context of the service's transient key: a wrapped service key does not unwrap as
    /// a collection's, whatever the collection is called, and transient templates are
    /// bound to a context no collection face uses.
    #[test]
    fn no_collection_shares_a_service_keys_context() {
        let master = DataKey::generate();
        let service = DataKey::generate().wrap(&master, &service_key_ref("transient"));
        for name in ["transient", "service:transient", "service", ""] {
            assert!(
                DataKey::unwrap(&service, &master, &collection_key_ref(name)).is_err(),
                "{name}"
            );
        }
        assert!(DataKey::unwrap(&service, &master, &service_key_ref("transient")).is_ok());
        // Before the vault both were `honnin-dek-v1:transient`.
        let legacy = master.seal(&[7u8; 32], b"honnin-dek-v1:transient");
        assert!(DataKey::unwrap_legacy(&legacy, &master, "transient").is_ok());
        assert!(DataKey::unwrap(&legacy, &master, &collection_key_ref("transient")).is_err());
        assert_ne!(transient_aad("f1"), template_aad("transient", "f1"));
    }

    #[test]
    fn master_key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("honnin-mk-{}", std::process::id()));
        let path = dir.join("master.key");
        let _ = std::fs::remove_file(&path);
        let (k1, created) = load_master_key(&path, true).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let (k2, created) = load_master_key(&path, true).unwrap();
        assert!(!created);
        assert_eq!(k1.raw, k2.raw);
        assert!(load_master_key(&dir.join("absent.key"), false).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
