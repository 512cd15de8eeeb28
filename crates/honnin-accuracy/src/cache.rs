//! Template caches: the templates of an image list stored in one binary file, so a
//! run over the same images (the same template model, detection options and face
//! selection) skips the embedding.
//!
//! Layout, little-endian: the magic `HNTCACH1`; the key's length (u32) and bytes; the
//! image count (u64); the relaxed-retry count (u64); then per image the vector's
//! length in floats (u32, 0 for "no template") and its f32s.

use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Result};

const CACHE_MAGIC: &[u8; 8] = b"HNTCACH1";

/// The contents of a cache: one vector per image (`None`: no template) and the count
/// of images found on the relaxed detection retry.
pub type Cached = (Vec<Option<Vec<f32>>>, usize);

/// Loads a template cache if it was stored under `key` and holds `n` images; `None`
/// when the file is missing, unreadable, truncated or made another way.
pub fn load(path: &Path, key: &str, n: usize) -> Option<Cached> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).ok()?;
    let mut r = &buf[..];
    let mut take = |k: usize| -> Option<&[u8]> {
        if r.len() < k {
            return None;
        }
        let (a, b) = r.split_at(k);
        r = b;
        Some(a)
    };
    if take(8)? != CACHE_MAGIC {
        return None;
    }
    let mlen = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
    if std::str::from_utf8(take(mlen)?).ok()? != key {
        return None;
    }
    let count = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
    let relaxed = u64::from_le_bytes(take(8)?.try_into().ok()?) as usize;
    if count != n {
        return None;
    }
    let mut vectors = Vec::with_capacity(n);
    for _ in 0..n {
        let d = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        if d == 0 {
            vectors.push(None);
            continue;
        }
        let raw = take(4 * d)?;
        vectors.push(Some(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ));
    }
    Some((vectors, relaxed))
}

/// Stores one vector per image (`None`: no template) and the relaxed-retry count under
/// `key` (the parent folder is created).
///
/// # Errors
/// [`Error::Write`] when the file cannot be written.
pub fn save(path: &Path, key: &str, vectors: &[Option<Vec<f32>>], relaxed: usize) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).ok();
    }
    let write = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).map_err(write)?);
    let mut body = || -> std::io::Result<()> {
        w.write_all(CACHE_MAGIC)?;
        w.write_all(&(key.len() as u32).to_le_bytes())?;
        w.write_all(key.as_bytes())?;
        w.write_all(&(vectors.len() as u64).to_le_bytes())?;
        w.write_all(&(relaxed as u64).to_le_bytes())?;
        for v in vectors {
            match v {
                None => w.write_all(&0u32.to_le_bytes())?,
                Some(v) => {
                    w.write_all(&(v.len() as u32).to_le_bytes())?;
                    for x in v {
                        w.write_all(&x.to_le_bytes())?;
                    }
                }
            }
        }
        w.flush()
    };
    body().map_err(write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_round_trips_and_refuses_another_key_or_count() {
        let dir = std::env::temp_dir().join(format!("honnin-cache-{}", std::process::id()));
        let path = dir.join("t.bin");
        let vectors = vec![Some(vec![0.5, -1.0]), None, Some(vec![2.0, 3.0])];
        save(&path, "k", &vectors, 1).unwrap();
        let back = load(&path, "k", 3).unwrap();
        assert_eq!(back, (vectors, 1));
        assert!(load(&path, "other", 3).is_none());
        assert!(load(&path, "k", 4).is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}
