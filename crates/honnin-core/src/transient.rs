//! Detect and compare, and transient face IDs (Azure Face's model): detect with
//! `returnFaceId` keeps each face's template (sealed, with a time to live) under a
//! random id that verify, identify, find-similar and group then take instead of images.
//!
//! A transient face ID belongs to the key that made it: another key sees it only if it
//! is an admin whose scope covers that key (see [`crate::context::Context::owned`]).

use std::collections::BTreeMap;

use honnin_storage::TransientRow;

use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::config::{
    FACE_ID_TTL_MAX, MAX_FACES_PER_IMAGE, MAX_GROUP_FACES, MAX_IDENTIFY_FACES, MAX_SEARCH_RESULTS,
};
use crate::context::domain;
use crate::crypto::transient_aad;
use crate::error::{CoreError, Result};
use crate::gallery::Gallery;
use crate::model::*;
use crate::pipeline::{all_faces, no_faces, Detection};
use crate::validate;

/// What `verify` compares a transient face with.
#[derive(Debug, Clone)]
pub enum VerifyTarget {
    /// Another transient face ID (face ↔ face).
    Face(String),
    /// A user of a collection (face ↔ user): the best similarity over the user's faces.
    User {
        /// The collection the user is in.
        collection: String,
        /// The user's id.
        user_id: String,
    },
}

/// Where `find_similar` looks.
#[derive(Debug, Clone)]
pub enum SimilarAmong {
    /// Among 1–1000 other transient face IDs (the query face itself is left out).
    Faces(Vec<String>),
    /// Among the faces of the collection of this name.
    Collection(String),
}

domain!(
    /// Detection, comparison and transient face IDs (verify, identify, find-similar, group).
    TransientFaces
);

impl TransientFaces<'_> {
    // ------------------------------------------------------------------ detect / compare

    /// Detects faces; with `ttl` each face also gets a transient face ID kept (as an
    /// encrypted template only) until it expires.
    pub async fn detect(
        &self,
        p: &Principal,
        image: Vec<u8>,
        max_faces: Option<usize>,
        face_id_ttl: Option<Option<u64>>,
    ) -> Result<DetectResult> {
        p.check(Action::Recognize, None)?;
        let max = max_faces.unwrap_or(MAX_FACES_PER_IMAGE);
        if !(1..=MAX_FACES_PER_IMAGE).contains(&max) {
            return Err(CoreError::InvalidParameter(format!(
                "maxFaces must be between 1 and {MAX_FACES_PER_IMAGE}"
            )));
        }
        let cfg = self.config();
        let ttl = match face_id_ttl {
            None => None,
            Some(t) => {
                let t = t.unwrap_or(cfg.face_id_ttl_default_secs);
                let min = cfg.face_id_ttl_min_secs;
                if !(min..=FACE_ID_TTL_MAX).contains(&t) {
                    return Err(CoreError::InvalidParameter(format!(
                        "faceIdTimeToLive must be between {min} and {FACE_ID_TTL_MAX} seconds"
                    )));
                }
                Some(t)
            }
        };
        let choose = if ttl.is_some() {
            all_faces()
        } else {
            no_faces()
        };
        let (a, ()) = self
            .analyse(
                image,
                "image",
                Detection::Usual(self.detect_options(max)),
                choose,
            )
            .await?;
        let mut details: Vec<FaceDetail> = a.faces.iter().map(FaceDetail::from).collect();
        if let Some(ttl) = ttl {
            let now = now_ms();
            let expires = now + ttl as i64 * 1000;
            let mut rows = Vec::new();
            for (i, t) in &a.templates {
                let d = &mut details[*i];
                let id = uuid::Uuid::new_v4().to_string();
                let stored = StoredDetails {
                    bounding_box: d.bounding_box,
                    confidence: d.confidence,
                    quality_for_recognition: d.quality_for_recognition,
                };
                rows.push(TransientRow {
                    face_id: id.clone(),
                    owner_key: p.key_id.clone(),
                    template: self.transient_key.seal(&t.to_bytes(), &transient_aad(&id)),
                    details: serde_json::to_string(&stored).unwrap_or_default(),
                    created_ms: now,
                    expires_ms: expires,
                });
                d.face_id = Some(id);
                d.face_id_expires_at = Some(rfc3339(expires));
            }
            self.store().insert_transient(&rows).await?;
        }
        Ok(DetectResult {
            image_width: a.width,
            image_height: a.height,
            face_details: details,
            faces_omitted: a.omitted as u32,
        })
    }

    /// The largest face of `source` against every face of `target`.
    pub async fn compare(
        &self,
        p: &Principal,
        source: Vec<u8>,
        target: Vec<u8>,
        threshold: Option<f32>,
    ) -> Result<CompareResult> {
        p.check(Action::Recognize, None)?;
        let threshold = validate::similarity(threshold, "similarityThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().match_fmr));
        let (sface, stemplate) = self.largest_face(source, "sourceImage").await?;
        let (target, ()) = self
            .analyse(
                target,
                "targetImage",
                Detection::Usual(self.detect_options(MAX_FACES_PER_IMAGE)),
                all_faces(),
            )
            .await?;
        let mut matches = Vec::new();
        let mut unmatched = Vec::new();
        for (i, t) in &target.templates {
            let f = &target.faces[*i];
            let c = self
                .engine()
                .compare(&stemplate, t)
                .map_err(CoreError::engine("compare"))?;
            if c.similarity >= threshold {
                matches.push(CompareMatch {
                    similarity: c.similarity,
                    face: ComparedFace::from(f),
                });
            } else {
                let mut face = ComparedFace::from(f);
                face.retake_reasons = self.config().retake.retake_reasons(
                    c.similarity,
                    &sface.quality_inputs(),
                    &f.quality_inputs(),
                );
                unmatched.push(face);
            }
        }
        matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(CompareResult {
            source_image_face: ComparedFace::from(&sface),
            face_matches: matches,
            unmatched_faces: unmatched,
            similarity_threshold: self.threshold_info(threshold),
            faces_omitted: target.omitted as u32,
        })
    }

    // ------------------------------------------------------------------ transient faces

    /// face ↔ face (two transient ids) or face ↔ user (transient id against a user's faces).
    pub async fn verify(
        &self,
        p: &Principal,
        face_id: &str,
        other: VerifyTarget,
        threshold: Option<f32>,
    ) -> Result<VerifyResult> {
        p.check(Action::Recognize, None)?;
        let threshold = validate::similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().match_fmr));
        let a = self.weighting.apply(
            &self
                .transient_templates(p, &[face_id.to_string()])
                .await?
                .remove(0)
                .vector,
        );
        let score = match other {
            VerifyTarget::Face(b) => {
                let b = self
                    .weighting
                    .apply(&self.transient_templates(p, &[b]).await?.remove(0).vector);
                honnin_engine::template::dot(&a, &b)
            }
            VerifyTarget::User {
                collection,
                user_id,
            } => {
                validate::check_user_id(&user_id)?;
                let c = self.authorize(p, Action::Recognize, &collection).await?;
                if self
                    .store()
                    .get_user(&collection, &user_id)
                    .await?
                    .is_none()
                {
                    return Err(CoreError::ResourceNotFound(format!(
                        "user `{user_id}` does not exist"
                    )));
                }
                let idx = c.index.read();
                let faces = idx.faces_of_user(&user_id);
                if faces.is_empty() {
                    return Err(CoreError::InvalidParameter(format!(
                        "user `{user_id}` has no faces"
                    )));
                }
                faces
                    .iter()
                    .filter_map(|f| idx.vector(f))
                    .map(|v| honnin_engine::template::dot(&a, v))
                    .fold(f32::NEG_INFINITY, f32::max)
            }
        };
        let similarity = self.similarity(score);
        Ok(VerifyResult {
            is_identical: similarity >= threshold,
            similarity,
            threshold: self.threshold_info(threshold),
        })
    }

    /// 1:N: each transient face against the users of a collection.
    pub async fn identify(
        &self,
        p: &Principal,
        face_ids: &[String],
        collection: &str,
        max_candidates: Option<usize>,
        threshold: Option<f32>,
    ) -> Result<Vec<IdentifyResult>> {
        let c = self.authorize(p, Action::Recognize, collection).await?;
        if face_ids.is_empty() || face_ids.len() > MAX_IDENTIFY_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_IDENTIFY_FACES} ids"
            )));
        }
        let k = max_candidates.unwrap_or(10);
        if !(1..=100).contains(&k) {
            return Err(CoreError::InvalidParameter(
                "maxNumOfCandidatesReturned must be between 1 and 100".into(),
            ));
        }
        let threshold = validate::similarity(threshold, "confidenceThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().match_fmr));
        let min = self.score_for(threshold);
        let templates = self.transient_templates(p, face_ids).await?;
        let idx = c.index.read();
        Ok(face_ids
            .iter()
            .zip(&templates)
            .map(|(id, t)| {
                let q = self.weighting.apply(&t.vector);
                let hits = idx.search(&q, min, MAX_SEARCH_RESULTS, &|i| idx.has_user(i));
                IdentifyResult {
                    face_id: validate::canonical_uuid(id).unwrap_or_else(|| id.clone()),
                    candidates: Gallery::new(self.cx)
                        .aggregate_users(&hits, k)
                        .into_iter()
                        .map(|u| Candidate {
                            user_id: u.user_id,
                            similarity: u.similarity,
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// Faces similar to a transient face, among other transient faces or a collection.
    pub async fn find_similar(
        &self,
        p: &Principal,
        face_id: &str,
        among: SimilarAmong,
        mode: SimilarMode,
        max_candidates: Option<usize>,
    ) -> Result<Vec<SimilarFace>> {
        p.check(Action::Recognize, None)?;
        let k = max_candidates.unwrap_or(20);
        if !(1..=1000).contains(&k) {
            return Err(CoreError::InvalidParameter(
                "maxNumOfCandidatesReturned must be between 1 and 1000".into(),
            ));
        }
        let min = match mode {
            SimilarMode::MatchPerson => {
                self.score_for(self.threshold_for_fmr(self.config().match_fmr))
            }
            SimilarMode::MatchFace => -1.0,
        };
        let face_id = validate::face_id(face_id)?;
        let q = self.weighting.apply(
            &self
                .transient_templates(p, std::slice::from_ref(&face_id))
                .await?
                .remove(0)
                .vector,
        );
        let mut out: Vec<SimilarFace> = match among {
            SimilarAmong::Faces(ids) => {
                if ids.is_empty() || ids.len() > 1000 {
                    return Err(CoreError::InvalidParameter(
                        "faceIds must hold 1–1000 ids".into(),
                    ));
                }
                let ids: Vec<String> = ids
                    .iter()
                    .map(|id| validate::face_id(id))
                    .collect::<Result<_>>()?;
                let ts = self.transient_templates(p, &ids).await?;
                ids.iter()
                    .zip(&ts)
                    .filter(|(id, _)| **id != face_id)
                    .map(|(id, t)| {
                        (
                            id.clone(),
                            honnin_engine::template::dot(&q, &self.weighting.apply(&t.vector)),
                        )
                    })
                    .filter(|(_, s)| *s >= min)
                    .map(|(id, s)| SimilarFace {
                        face_id: id,
                        similarity: self.similarity(s),
                    })
                    .collect()
            }
            SimilarAmong::Collection(collection) => {
                let c = self.authorize(p, Action::Recognize, &collection).await?;
                let idx = c.index.read();
                idx.search(&q, min, k, &|_| true)
                    .into_iter()
                    .map(|h| SimilarFace {
                        face_id: h.face_id.to_string(),
                        similarity: self.similarity(h.score),
                    })
                    .collect()
            }
        };
        out.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then_with(|| a.face_id.cmp(&b.face_id))
        });
        out.truncate(k);
        Ok(out)
    }

    /// Groups 2–1000 transient faces: connected components at the match threshold;
    /// faces similar to no other face form the `messyGroup`.
    pub async fn group(&self, p: &Principal, face_ids: &[String]) -> Result<GroupResult> {
        p.check(Action::Recognize, None)?;
        if face_ids.len() < 2 || face_ids.len() > MAX_GROUP_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 2–{MAX_GROUP_FACES} ids"
            )));
        }
        let mut uniq: Vec<String> = face_ids
            .iter()
            .map(|id| validate::face_id(id))
            .collect::<Result<_>>()?;
        uniq.sort();
        uniq.dedup();
        if uniq.len() < 2 {
            return Err(CoreError::InvalidParameter(
                "faceIds must hold at least 2 distinct ids (spellings of one id are one id)".into(),
            ));
        }
        let threshold = self.threshold_for_fmr(self.config().match_fmr);
        let min = self.score_for(threshold);
        let vs: Vec<Vec<f32>> = self
            .transient_templates(p, &uniq)
            .await?
            .iter()
            .map(|t| self.weighting.apply(&t.vector))
            .collect();
        let n = vs.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for i in 0..n {
            for j in i + 1..n {
                if honnin_engine::template::dot(&vs[i], &vs[j]) >= min {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a] = b;
                    }
                }
            }
        }
        let mut comps: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (i, id) in uniq.iter().enumerate() {
            let r = find(&mut parent, i);
            comps.entry(r).or_default().push(id.clone());
        }
        let mut groups = Vec::new();
        let mut messy = Vec::new();
        for (_, g) in comps {
            if g.len() > 1 {
                groups.push(g);
            } else {
                messy.extend(g);
            }
        }
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Ok(GroupResult {
            groups,
            messy_group: messy,
            threshold: self.threshold_info(threshold),
        })
    }
}
