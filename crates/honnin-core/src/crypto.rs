//! Encryption at rest: AES-256-GCM everywhere.
//!
//! * The **master key** (32 random bytes) lives outside the database, in a file with
//!   mode 0600 (`<data-dir>/master.key`) or the `HONNIN_MASTER_KEY` environment variable
//!   (base64), so a database dump alone decrypts nothing.
//! * Each **collection** has its own data key, stored in the database *wrapped* (sealed)
//!   by the master key with the collection id as associated data.
//! * **Templates** are sealed with their collection's data key, with
//!   `face:<collection>:<face id>` as associated data, so a ciphertext cannot be moved
//!   to another face or collection.
//! * Deleting a collection deletes its wrapped data key (crypto-shredding): its
//!   templates cannot be decrypted again from any copy of the faces table.
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

    /// Seals this key under `master` for storage.
    pub fn wrap(&self, master: &DataKey, context: &str) -> Vec<u8> {
        master.seal(&self.raw, format!("honnin-dek-v1:{context}").as_bytes())
    }

    /// Recovers a key sealed by [`DataKey::wrap`].
    pub fn unwrap(wrapped: &[u8], master: &DataKey, context: &str) -> Result<DataKey, CoreError> {
        let raw = master.open(wrapped, format!("honnin-dek-v1:{context}").as_bytes())?;
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
        let w = dek.wrap(&master, "coll-a");
        let back = DataKey::unwrap(&w, &master, "coll-a").unwrap();
        assert_eq!(back.raw, dek.raw);
        assert!(DataKey::unwrap(&w, &master, "coll-b").is_err());
        assert!(DataKey::unwrap(&w, &DataKey::generate(), "coll-a").is_err());
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
