//! In-memory 1:N search over a collection's templates — exact results, fast scans.
//!
//! Each template is kept twice: the exact f32 vector (pre-scaled by √weight per
//! recognizer so that one dot product *is* the fused score) and an int8 copy with a
//! per-vector scale. A search scans the int8 copies (a quarter of the memory
//! traffic), bounds each approximation error rigorously, and rescores in f32 every
//! candidate the bound cannot exclude. The result is exactly what a full f32 scan
//! would return; the int8 pass only decides what need not be looked at.
//!
//! Error bound: with `a = s_a·q_a + e_a`, `b = s_b·q_b + e_b`, `|e| ≤ s/2` per
//! element, `|a·b − s_a s_b q_a·q_b| ≤ s_a s_b (‖q_a‖₁/2 + ‖q_b‖₁/2 + d/4)`.

use std::collections::HashMap;
use std::sync::Arc;

use rayon::prelude::*;

/// How template parts are weighted in the fused score.
#[derive(Debug, Clone, PartialEq)]
pub struct Weighting {
    /// (dimension, weight) per recognizer, weights summing to 1.
    pub parts: Vec<(usize, f32)>,
}

impl Weighting {
    /// The weighting of `engine`'s recognizers, from its calibration, normalised to sum to 1.
    pub fn for_engine(engine: &honnin_engine::Engine) -> Result<Weighting, crate::CoreError> {
        let cal = engine
            .calibration()
            .ok_or_else(|| crate::CoreError::Config("the engine has no calibration".into()))?;
        let raw: Vec<(usize, f32)> = engine
            .config()
            .recognizers
            .iter()
            .map(|k| {
                let w = cal
                    .parts
                    .iter()
                    .find(|p| p.recognizer == k.name())
                    .map(|p| p.weight)
                    .unwrap_or(1.0);
                (k.dim(), w)
            })
            .collect();
        let total: f32 = raw.iter().map(|p| p.1).sum();
        Ok(Weighting {
            parts: raw.into_iter().map(|(d, w)| (d, w / total)).collect(),
        })
    }

    /// Length of a full template: the sum of the recognizers' embedding dimensions.
    pub fn dim(&self) -> usize {
        self.parts.iter().map(|p| p.0).sum()
    }

    /// Scales each part by √weight, so `apply(a)·apply(b)` is the fused score.
    pub fn apply(&self, v: &[f32]) -> Vec<f32> {
        let mut out = Vec::with_capacity(v.len());
        let mut off = 0;
        for &(d, w) in &self.parts {
            let s = w.max(0.0).sqrt();
            out.extend(v[off..(off + d).min(v.len())].iter().map(|x| x * s));
            off += d;
        }
        out
    }
}

#[inline]
fn dot_i8_generic(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let ca = a.chunks_exact(16);
    let cb = b.chunks_exact(16);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += *x as i32 * *y as i32;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    // The same code, compiled for AVX2 (runtime-dispatched below).
    dot_i8_generic(a, b)
}

/// int8 dot product, using AVX2 when the CPU has it.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above; the result is cached by std).
            return unsafe { dot_i8_avx2(a, b) };
        }
    }
    dot_i8_generic(a, b)
}

/// Symmetric per-vector int8 quantisation: (codes, scale, L1 norm of the codes).
pub fn quantize(v: &[f32]) -> (Vec<i8>, f32, u32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let q: Vec<i8> = v
        .iter()
        .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let l1 = q.iter().map(|x| x.unsigned_abs() as u32).sum();
    (q, scale, l1)
}

/// One collection's templates.
#[derive(Debug, Default)]
pub struct CollectionIndex {
    dim: usize,
    ids: Vec<Arc<str>>,
    users: Vec<Option<Arc<str>>>,
    exact: Vec<f32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    l1: Vec<u32>,
    pos: HashMap<Arc<str>, usize>,
}

/// A search hit: position in the index and exact fused score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The face's id in the collection.
    pub face_id: Arc<str>,
    /// The user the face belongs to, if any.
    pub user_id: Option<Arc<str>>,
    /// The exact fused score (weighted dot product, −1…1), not yet a similarity.
    pub score: f32,
}

/// Vectors per parallel scan task.
const CHUNK: usize = 4096;

impl CollectionIndex {
    /// An empty index for weighted templates of `dim` floats.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Default::default()
        }
    }

    /// Faces held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no face is held.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Length of the templates held, floats.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Bytes of template data held per face (exact + int8 + scale + norm).
    pub fn bytes_per_template(&self) -> usize {
        self.dim * 4 + self.dim + 8
    }

    /// Inserts or replaces a face (`weighted` from [`Weighting::apply`]).
    pub fn upsert(&mut self, face_id: &str, user_id: Option<&str>, weighted: &[f32]) {
        if weighted.len() != self.dim {
            tracing::warn!(face_id, "template of wrong dimension ignored by the index");
            return;
        }
        let (q, s, l1) = quantize(weighted);
        let user = user_id.map(Arc::from);
        if let Some(&i) = self.pos.get(face_id) {
            self.users[i] = user;
            self.exact[i * self.dim..(i + 1) * self.dim].copy_from_slice(weighted);
            self.codes[i * self.dim..(i + 1) * self.dim].copy_from_slice(&q);
            self.scales[i] = s;
            self.l1[i] = l1;
            return;
        }
        let id: Arc<str> = Arc::from(face_id);
        self.pos.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.users.push(user);
        self.exact.extend_from_slice(weighted);
        self.codes.extend_from_slice(&q);
        self.scales.push(s);
        self.l1.push(l1);
    }

    /// Sets the user of an indexed face; false if the face is unknown.
    pub fn set_user(&mut self, face_id: &str, user_id: Option<&str>) -> bool {
        match self.pos.get(face_id) {
            Some(&i) => {
                self.users[i] = user_id.map(Arc::from);
                true
            }
            None => false,
        }
    }

    /// Removes a face; false if it was not there.
    pub fn remove(&mut self, face_id: &str) -> bool {
        let Some(i) = self.pos.remove(face_id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        let d = self.dim;
        if i != last {
            self.ids.swap(i, last);
            self.users.swap(i, last);
            self.scales.swap(i, last);
            self.l1.swap(i, last);
            self.exact.copy_within(last * d..(last + 1) * d, i * d);
            self.codes.copy_within(last * d..(last + 1) * d, i * d);
            self.pos.insert(self.ids[i].clone(), i);
        }
        self.ids.pop();
        self.users.pop();
        self.scales.pop();
        self.l1.pop();
        self.exact.truncate(last * d);
        self.codes.truncate(last * d);
        true
    }

    /// The weighted vector of a face.
    pub fn vector(&self, face_id: &str) -> Option<&[f32]> {
        self.pos
            .get(face_id)
            .map(|&i| &self.exact[i * self.dim..(i + 1) * self.dim])
    }

    /// The user of a face: `None` when the face is not held, `Some(None)` for a face of
    /// no user.
    pub fn user_of(&self, face_id: &str) -> Option<Option<Arc<str>>> {
        self.pos.get(face_id).map(|&i| self.users[i].clone())
    }

    /// Whether the face is held.
    pub fn contains(&self, face_id: &str) -> bool {
        self.pos.contains_key(face_id)
    }

    /// Faces (ids) belonging to `user`.
    pub fn faces_of_user(&self, user: &str) -> Vec<Arc<str>> {
        self.ids
            .iter()
            .zip(&self.users)
            .filter(|(_, u)| u.as_deref() == Some(user))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Exact search: every face whose fused score with `query` (weighted) is at least
    /// `min_score`, best first, at most `k`, keeping only faces `keep` accepts.
    pub fn search(
        &self,
        query: &[f32],
        min_score: f32,
        k: usize,
        keep: &(dyn Fn(usize) -> bool + Sync),
    ) -> Vec<Hit> {
        if query.len() != self.dim || self.ids.is_empty() || k == 0 {
            return Vec::new();
        }
        let d = self.dim;
        let (qa, sa, l1a) = quantize(query);
        // Candidates: (index, lower bound, upper bound) of the exact score.
        let mut cands: Vec<(usize, f32, f32)> = self
            .codes
            .par_chunks(CHUNK * d)
            .enumerate()
            .flat_map_iter(|(c, chunk)| {
                let base = c * CHUNK;
                let qa = &qa;
                chunk
                    .chunks_exact(d)
                    .enumerate()
                    .filter_map(move |(j, qb)| {
                        let i = base + j;
                        let s = sa * self.scales[i];
                        let approx = s * dot_i8(qa, qb) as f32;
                        let bound = s
                            * (0.5 * l1a as f32 + 0.5 * self.l1[i] as f32 + d as f32 / 4.0)
                            + 1e-6;
                        (approx + bound >= min_score && keep(i)).then_some((
                            i,
                            approx - bound,
                            approx + bound,
                        ))
                    })
            })
            .collect();
        // Only candidates whose upper bound reaches the k-th best lower bound can be in the top k.
        if cands.len() > k {
            let mut lows: Vec<f32> = cands.iter().map(|c| c.1).collect();
            let (_, kth, _) = lows.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            let floor = *kth;
            cands.retain(|c| c.2 >= floor);
        }
        let mut hits: Vec<(usize, f32)> = cands
            .par_iter()
            .map(|&(i, _, _)| {
                (
                    i,
                    honnin_engine::template::dot(query, &self.exact[i * d..(i + 1) * d]),
                )
            })
            .filter(|&(_, s)| s >= min_score)
            .collect();
        hits.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| self.ids[a.0].cmp(&self.ids[b.0]))
        });
        hits.truncate(k);
        hits.into_iter()
            .map(|(i, score)| Hit {
                face_id: self.ids[i].clone(),
                user_id: self.users[i].clone(),
                score,
            })
            .collect()
    }

    /// Index positions of faces belonging to users (for user searches).
    pub fn has_user(&self, i: usize) -> bool {
        self.users.get(i).is_some_and(|u| u.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: u64, d: usize) -> Vec<f32> {
        // xorshift noise, normalised
        let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
        let mut v: Vec<f32> = (0..d)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
        v.iter_mut().for_each(|a| *a /= n);
        v
    }

    fn brute(idx: &CollectionIndex, q: &[f32], min: f32, k: usize) -> Vec<(String, f32)> {
        let mut all: Vec<(String, f32)> = idx
            .ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    id.to_string(),
                    honnin_engine::template::dot(q, &idx.exact[i * idx.dim..(i + 1) * idx.dim]),
                )
            })
            .filter(|x| x.1 >= min)
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn int8_dot_matches_integer_arithmetic() {
        let a: Vec<i8> = (0..100).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..100).map(|i| (i * 13 % 255 - 127) as i8).collect();
        let naive: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(dot_i8(&a, &b), naive);
        assert_eq!(dot_i8_generic(&a, &b), naive);
    }

    #[test]
    fn search_is_exact_against_brute_force() {
        let d = 64;
        let mut idx = CollectionIndex::new(d);
        for i in 0..3000 {
            idx.upsert(&format!("f{i:05}"), None, &unit(i, d));
        }
        // Plant near-duplicates of the query.
        let q = unit(999_999, d);
        for j in 0..5 {
            let mut v = q.clone();
            v[j] += 0.2;
            let n = v.iter().map(|a| a * a).sum::<f32>().sqrt();
            v.iter_mut().for_each(|a| *a /= n);
            idx.upsert(&format!("dup{j}"), Some("u"), &v);
        }
        for (min, k) in [(0.5, 10), (0.0, 7), (-1.0, 3000), (0.95, 100), (0.2, 1)] {
            let got: Vec<(String, f32)> = idx
                .search(&q, min, k, &|_| true)
                .into_iter()
                .map(|h| (h.face_id.to_string(), h.score))
                .collect();
            assert_eq!(got, brute(&idx, &q, min, k), "min {min} k {k}");
        }
    }

    #[test]
    fn upsert_remove_and_users() {
        let d = 8;
        let mut idx = CollectionIndex::new(d);
        idx.upsert("a", None, &unit(1, d));
        idx.upsert("b", Some("u1"), &unit(2, d));
        idx.upsert("c", None, &unit(3, d));
        assert_eq!(idx.len(), 3);
        assert!(idx.remove("a"));
        assert!(!idx.remove("a"));
        assert_eq!(idx.len(), 2);
        assert_eq!(
            idx.vector("c").unwrap(),
            &unit(3, d)[..],
            "moved entry keeps its vector"
        );
        assert!(idx.set_user("c", Some("u1")));
        let mut f: Vec<String> = idx
            .faces_of_user("u1")
            .iter()
            .map(|s| s.to_string())
            .collect();
        f.sort();
        assert_eq!(f, ["b", "c"]);
        idx.upsert("b", None, &unit(4, d));
        assert_eq!(idx.len(), 2, "upsert replaces");
        assert_eq!(idx.user_of("b"), Some(None));
        let hits = idx.search(&unit(4, d), 0.99, 5, &|_| true);
        assert_eq!(hits.len(), 1);
        assert_eq!(&*hits[0].face_id, "b");
        // Wrong dimensions are ignored, not a panic.
        idx.upsert("x", None, &[1.0; 3]);
        assert!(idx.search(&[1.0; 3], 0.0, 5, &|_| true).is_empty());
    }

    #[test]
    fn weighting_makes_the_dot_the_fused_score() {
        let w = Weighting {
            parts: vec![(2, 0.25), (2, 0.75)],
        };
        let a = [1.0, 0.0, 0.0, 1.0];
        let b = [1.0, 0.0, 0.0, -1.0];
        let fused = 0.25 * 1.0 - 0.75 * 1.0;
        let got = honnin_engine::template::dot(&w.apply(&a), &w.apply(&b));
        assert!((got - fused).abs() < 1e-6);
    }
}
