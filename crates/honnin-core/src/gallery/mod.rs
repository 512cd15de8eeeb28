//! The gallery: collections, their faces and users, and 1:N search.
//!
//! Every operation on a collection passes [`Context::authorize`](crate::context::Context::authorize) (role, collection
//! scope, the collection's identity); listings page with opaque tokens
//! ([`crate::paging`]); face ids are accepted in any UUID spelling and used in their
//! canonical one ([`crate::validate`]).
//!
//! Users (create, delete, list, associate faces, search by user) are in `users`.

mod users;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use honnin_engine::quality::QualityInputs;
use honnin_engine::{QualityLevel, RetakeReason, Template};
use honnin_storage::{CollectionRow, FaceRow};
use parking_lot::RwLock;

use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::config::{
    DEFAULT_PAGE_SIZE, MAX_COLLECTIONS_PAGE, MAX_DELETE_FACES, MAX_FACES_PAGE, MAX_FACES_PER_IMAGE,
    MAX_SEARCH_RESULTS,
};
use crate::context::{domain, FaceOrigin, Loaded};
use crate::crypto::{collection_key_ref, template_aad, DataKey};
use crate::error::{CoreError, Result};
use crate::index::{CollectionIndex, Hit};
use crate::model::*;
use crate::paging::{self, page_limit};
use crate::pipeline::Detection;
use crate::validate::{self, check_collection_id, check_external_id, check_user_id};

domain!(
    /// The gallery: collections, their faces and users, and 1:N search.
    Gallery
);

impl Gallery<'_> {
    // ------------------------------------------------------------------ collections

    /// Creates a collection under a new identity, its data key first in the vault. A
    /// key limited to a collection name may create it if the key was never bound (it is
    /// bound to the new collection here); a key bound to a deleted collection may not
    /// create its successor.
    pub async fn create_collection(&self, p: &Principal, id: &str) -> Result<CollectionInfo> {
        check_collection_id(id)?;
        p.check(Action::Enroll, Some(id))?;
        let exists =
            || CoreError::ResourceAlreadyExists(format!("collection `{id}` already exists"));
        if let (Some(_), Some(mine)) = (&p.collection, &p.scope_uid) {
            return Err(match self.store().get_collection(id).await? {
                Some(row) if row.collection_uid == *mine => exists(),
                _ => CoreError::AccessDenied(format!(
                    "this key was limited to an earlier collection named `{id}`, since deleted; it grants nothing in a new one"
                )),
            });
        }
        let key = DataKey::generate();
        let uid = uuid::Uuid::new_v4().simple().to_string();
        let key_ref = collection_key_ref(&uid);
        let now = now_ms();
        self.store()
            .vault()
            .put_if_absent(&key_ref, &key.wrap(self.master(), &key_ref), now)
            .await?;
        let inserted = self
            .store()
            .insert_collection(&CollectionRow {
                collection_id: id.into(),
                collection_uid: uid.clone(),
                face_model: self.engine().template_model().into(),
                wrapped_key: Vec::new(),
                created_ms: now,
            })
            .await;
        if let Err(e) = inserted {
            self.store().vault().delete(&key_ref).await?;
            return Err(match CoreError::from(e) {
                CoreError::ResourceAlreadyExists(_) => exists(),
                other => other,
            });
        }
        if p.collection.is_some() && !self.store().bind_key_scope(&p.key_id, &uid).await? {
            tracing::debug!(key = %p.key_id, "the creating key was bound meanwhile");
        }
        self.insert_loaded(
            id,
            Arc::new(Loaded {
                uid,
                key,
                index: RwLock::new(CollectionIndex::new(self.weighting.dim())),
            }),
        );
        Ok(CollectionInfo {
            collection_id: id.into(),
            face_count: 0,
            user_count: 0,
            face_model_version: self.engine().template_model().into(),
            creation_timestamp: rfc3339(now),
        })
    }

    async fn info(&self, row: &CollectionRow) -> Result<CollectionInfo> {
        Ok(CollectionInfo {
            collection_id: row.collection_id.clone(),
            face_count: self.store().count_faces(&row.collection_id).await?,
            user_count: self.store().count_users(&row.collection_id).await?,
            face_model_version: row.face_model.clone(),
            creation_timestamp: rfc3339(row.created_ms),
        })
    }

    /// A collection's counts, template space and creation time. Errors: `ResourceNotFound`,
    /// `AccessDenied` outside the key's scope.
    pub async fn describe_collection(&self, p: &Principal, id: &str) -> Result<CollectionInfo> {
        self.authorize(p, Action::Recognize, id).await?;
        let row = self.store().get_collection(id).await?.ok_or_else(|| {
            CoreError::ResourceNotFound(format!("collection `{id}` does not exist"))
        })?;
        self.info(&row).await
    }

    /// Collections the caller may see, in id order. A limited key's listing is filtered
    /// in the database before paging (it holds its own collection or nothing), and every
    /// `nextToken` is opaque and bound to the caller's listing ([`crate::paging`]).
    pub async fn list_collections(
        &self,
        p: &Principal,
        max: Option<u32>,
        token: Option<&str>,
    ) -> Result<CollectionList> {
        p.check(Action::Recognize, None)?;
        let limit = page_limit(max, DEFAULT_PAGE_SIZE, MAX_COLLECTIONS_PAGE)?;
        let scope = match &p.collection {
            None => None,
            Some(_) => match self.scope_collection(p).await? {
                Some(c) => Some(c.uid.clone()),
                // Its collection is gone (or was replaced): it sees nothing.
                None => Some(String::new()),
            },
        };
        let listing = format!("collections:{}", scope.as_deref().unwrap_or("*"));
        let now = now_ms() / 1000;
        let after = paging::open(&self.page_key, &listing, token, now)?;
        let rows = self
            .store()
            .list_collections(after.as_deref(), limit, scope.as_deref())
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| {
                rows.last()
                    .map(|r| paging::issue(&self.page_key, &listing, &r.collection_id, now))
            })
            .flatten();
        let mut out = Vec::new();
        for r in &rows {
            out.push(self.info(r).await?);
        }
        Ok(CollectionList {
            collections: out,
            next_token: next,
        })
    }

    /// Deletes a collection and every record about it (faces, users, verifications and
    /// their liveness sessions, events; keys bound to it (or made for its name and never used) are revoked), then its data key
    /// (crypto-shredding). See `honnin_storage`'s erasure module.
    pub async fn delete_collection(&self, p: &Principal, id: &str) -> Result<()> {
        self.authorize(p, Action::Enroll, id).await?;
        let Some(d) = self.store().delete_collection(id, now_ms()).await? else {
            return Err(CoreError::ResourceNotFound(format!(
                "collection `{id}` does not exist"
            )));
        };
        self.drop_loaded(id);
        self.forget_keys();
        tracing::info!(collection = %id, faces = d.faces, users = d.users, verifications = d.verifications, keys_revoked = d.revoked.keys, "collection deleted");
        Ok(())
    }

    // ------------------------------------------------------------------ faces

    pub(crate) fn stored_face(&self, row: &FaceRow) -> StoredFace {
        let d: StoredDetails = serde_json::from_str(&row.details).unwrap_or(StoredDetails {
            bounding_box: Default::default(),
            confidence: 0.0,
            quality_for_recognition: QualityLevel::Low,
        });
        StoredFace {
            face_id: row.face_id.clone(),
            bounding_box: d.bounding_box,
            image_id: row.image_id.clone(),
            external_image_id: row.external_image_id.clone(),
            confidence: d.confidence,
            quality_for_recognition: d.quality_for_recognition,
            user_id: row.user_id.clone(),
            index_timestamp: rfc3339(row.created_ms),
        }
    }

    /// Detects faces in an image and stores (templates of) those that pass the quality
    /// filter. Returns once the faces are durably stored.
    pub async fn index_faces(
        &self,
        p: &Principal,
        collection: &str,
        image: Vec<u8>,
        external_image_id: Option<String>,
        max_faces: Option<usize>,
        filter: QualityFilter,
    ) -> Result<IndexResult> {
        let c = self.authorize(p, Action::Enroll, collection).await?;
        if let Some(e) = &external_image_id {
            check_external_id(e)?;
        }
        let max = max_faces.unwrap_or(MAX_FACES_PER_IMAGE);
        if !(1..=MAX_FACES_PER_IMAGE).contains(&max) {
            return Err(CoreError::InvalidParameter(format!(
                "maxFaces must be between 1 and {MAX_FACES_PER_IMAGE}"
            )));
        }
        let thresholds = self.engine().config().quality;
        let choose = Box::new(move |faces: &[honnin_engine::Face]| {
            let reasons = index_decisions(faces, filter, &thresholds, max);
            let keep = (0..faces.len())
                .filter(|i| reasons[*i].is_empty())
                .collect();
            Ok((keep, reasons))
        });
        let (a, reasons) = self
            .analyse(
                image,
                "image",
                Detection::Usual(self.detect_options(MAX_FACES_PER_IMAGE)),
                choose,
            )
            .await?;
        let unindexed = a
            .faces
            .iter()
            .zip(reasons)
            .filter(|(_, r)| !r.is_empty())
            .map(|(f, reasons)| UnindexedFace {
                reasons,
                face_detail: FaceDetail::from(f),
            })
            .collect();
        let now = now_ms();
        let image_id = uuid::Uuid::new_v4().to_string();
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for (i, t) in &a.templates {
            let f = &a.faces[*i];
            let origin = FaceOrigin {
                user_id: None,
                external_image_id: external_image_id.clone(),
                image_id: image_id.clone(),
                details: StoredDetails {
                    bounding_box: f.bounding_box,
                    confidence: f.confidence,
                    quality_for_recognition: f.quality_for_recognition,
                },
            };
            let row = self.sealed_face_row(&c, collection, origin, t, now);
            records.push(FaceRecord {
                face: self.stored_face(&row),
                face_detail: FaceDetail::from(f),
            });
            rows.push((row, t));
        }
        self.insert_and_index(&c, &rows).await?;
        Ok(IndexResult {
            face_records: records,
            unindexed_faces: unindexed,
            face_model_version: self.engine().template_model().into(),
            faces_omitted: a.omitted as u32,
        })
    }

    /// A new face row for template `t`, sealed with the collection's key (bound to the
    /// collection and the new face id).
    pub(crate) fn sealed_face_row(
        &self,
        c: &Loaded,
        collection: &str,
        origin: FaceOrigin,
        t: &Template,
        now: i64,
    ) -> FaceRow {
        let face_id = uuid::Uuid::new_v4().to_string();
        FaceRow {
            template: c
                .key
                .seal(&t.to_bytes(), &template_aad(collection, &face_id)),
            face_id,
            collection_id: collection.into(),
            user_id: origin.user_id,
            external_image_id: origin.external_image_id,
            image_id: origin.image_id,
            details: serde_json::to_string(&origin.details).unwrap_or_default(),
            created_ms: now,
            updated_ms: now,
        }
    }

    /// Stores new faces, then adds them to this process's index (other processes pick
    /// them up from the change feed).
    pub(crate) async fn insert_and_index(
        &self,
        c: &Loaded,
        rows: &[(FaceRow, &Template)],
    ) -> Result<()> {
        let only_rows: Vec<FaceRow> = rows.iter().map(|r| r.0.clone()).collect();
        self.store()
            .insert_faces(&only_rows, Some(&c.uid))
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::ResourceNotFound(_) => {
                    CoreError::ResourceNotFound("the collection was deleted meanwhile".into())
                }
                other => other,
            })?;
        let vectors: Vec<Vec<f32>> = rows
            .iter()
            .map(|(_, t)| self.weighting.apply(&t.vector))
            .collect();
        let mut idx = c.index.write();
        for ((row, _), v) in rows.iter().zip(&vectors) {
            idx.upsert(&row.face_id, row.user_id.as_deref(), v);
        }
        Ok(())
    }

    /// The stored faces of index hits with their similarities, in the hits' order (best
    /// first); a hit deleted meanwhile is dropped.
    pub(crate) async fn hit_rows(
        &self,
        collection: &str,
        hits: &[Hit],
    ) -> Result<Vec<(FaceRow, f32)>> {
        let ids: Vec<String> = hits.iter().map(|h| h.face_id.to_string()).collect();
        let mut rows: HashMap<String, FaceRow> = self
            .store()
            .get_faces(collection, &ids)
            .await?
            .into_iter()
            .map(|r| (r.face_id.clone(), r))
            .collect();
        Ok(hits
            .iter()
            .filter_map(|h| {
                rows.remove(&*h.face_id)
                    .map(|r| (r, self.similarity(h.score)))
            })
            .collect())
    }

    /// One page of a collection's faces in face-id order (`max` 1–4096, default 100),
    /// only `user`'s with `user`; `token` is the previous page's opaque `nextToken`.
    pub async fn list_faces(
        &self,
        p: &Principal,
        collection: &str,
        max: Option<u32>,
        token: Option<&str>,
        user: Option<&str>,
    ) -> Result<FaceList> {
        let c = self.authorize(p, Action::Recognize, collection).await?;
        if let Some(u) = user {
            check_user_id(u)?;
        }
        let limit = page_limit(max, DEFAULT_PAGE_SIZE, MAX_FACES_PAGE)?;
        let listing = format!("faces:{}:{}", c.uid, user.unwrap_or("*"));
        let now = now_ms() / 1000;
        let after = paging::open(&self.page_key, &listing, token, now)?;
        let rows = self
            .store()
            .list_faces(collection, after.as_deref(), limit, user)
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| {
                rows.last()
                    .map(|r| paging::issue(&self.page_key, &listing, &r.face_id, now))
            })
            .flatten();
        Ok(FaceList {
            faces: rows.iter().map(|r| self.stored_face(r)).collect(),
            next_token: next,
        })
    }

    /// Deletes 1–[`MAX_DELETE_FACES`](crate::config::MAX_DELETE_FACES) faces (ids in any UUID
    /// spelling) from storage and the index; other processes drop them on their next sync
    /// (tombstones). Ids that are malformed or not in the collection are reported, not
    /// errors.
    pub async fn delete_faces(
        &self,
        p: &Principal,
        collection: &str,
        ids: &[String],
    ) -> Result<DeleteFacesResult> {
        let c = self.authorize(p, Action::Enroll, collection).await?;
        if ids.is_empty() || ids.len() > MAX_DELETE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_DELETE_FACES} ids"
            )));
        }
        let mut failures = Vec::new();
        let mut valid = Vec::new();
        for id in ids {
            if let Some(canonical) = validate::canonical_uuid(id) {
                if !valid.contains(&canonical) {
                    valid.push(canonical);
                }
            } else {
                failures.push(FaceFailure {
                    face_id: id.clone(),
                    reasons: vec!["INVALID_FACE_ID".into()],
                });
            }
        }
        let deleted = self
            .store()
            .delete_faces(collection, &valid, now_ms())
            .await?;
        self.store().erase_checkpoint().await?;
        {
            let mut idx = c.index.write();
            for id in &deleted {
                idx.remove(id);
            }
        }
        let gone: HashSet<&String> = deleted.iter().collect();
        for id in valid.iter().filter(|id| !gone.contains(id)) {
            failures.push(FaceFailure {
                face_id: id.clone(),
                reasons: vec!["FACE_NOT_FOUND".into()],
            });
        }
        Ok(DeleteFacesResult {
            deleted_faces: deleted,
            unsuccessful_face_deletions: failures,
        })
    }

    // ------------------------------------------------------------------ search

    async fn probe_vector(
        &self,
        p: &Principal,
        c: &Loaded,
        probe: Probe,
    ) -> Result<(
        Vec<f32>,
        Option<String>,
        Option<honnin_engine::engine::RatioBox>,
        Option<QualityInputs>,
    )> {
        match probe {
            Probe::Image(bytes) => {
                let (f, t) = self.largest_face(bytes, "image").await?;
                Ok((
                    self.weighting.apply(&t.vector),
                    None,
                    Some(f.bounding_box),
                    Some(f.quality_inputs()),
                ))
            }
            Probe::CollectionFace(id) => {
                let id = validate::face_id(&id)?;
                let v = c
                    .index
                    .read()
                    .vector(&id)
                    .map(|v| v.to_vec())
                    .ok_or_else(|| {
                        CoreError::ResourceNotFound(format!(
                            "face `{id}` is not in this collection"
                        ))
                    })?;
                Ok((v, Some(id), None, None))
            }
            Probe::TransientFace(id) => {
                let id = validate::face_id(&id)?;
                let t = self
                    .transient_templates(p, std::slice::from_ref(&id))
                    .await?
                    .remove(0);
                Ok((self.weighting.apply(&t.vector), Some(id), None, None))
            }
        }
    }

    /// Why a search that found nothing should be retried with a better photo: the probe
    /// (an image's face; `None` for stored probes) is turned, small or blurred, and some
    /// face of the collection (with `users_only`, a face of a user) scored between the retake floor
    /// (`NonMatchLimits::min_similarity`) and the threshold. Empty otherwise: nothing
    /// came close, or the probe was good, and "no match" stands.
    fn probe_retake_reasons(
        &self,
        c: &Loaded,
        queries: &[Vec<f32>],
        quality: Option<&QualityInputs>,
        users_only: bool,
    ) -> Vec<RetakeReason> {
        let Some(q) = quality else {
            return Vec::new();
        };
        let limits = &self.config().retake;
        let floor = self.score_for(limits.min_similarity);
        let idx = c.index.read();
        let keep = |i: usize| !users_only || idx.has_user(i);
        let close = queries
            .iter()
            .any(|v| !idx.search(v, floor, 1, &keep).is_empty());
        if close {
            limits.single_face_reasons(limits.min_similarity, q)
        } else {
            Vec::new()
        }
    }

    /// Faces of a collection similar to a probe (image, indexed face or transient face).
    pub async fn search_faces(
        &self,
        p: &Principal,
        collection: &str,
        probe: Probe,
        threshold: Option<f32>,
        max_results: Option<usize>,
    ) -> Result<SearchResult> {
        let c = self.authorize(p, Action::Recognize, collection).await?;
        let threshold = validate::similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().match_fmr));
        let k = max_results.unwrap_or(10);
        if !(1..=MAX_SEARCH_RESULTS).contains(&k) {
            return Err(CoreError::InvalidParameter(format!(
                "maxResults must be between 1 and {MAX_SEARCH_RESULTS}"
            )));
        }
        let (query, searched_id, bbox, quality) = self.probe_vector(p, &c, probe).await?;
        let min = self.score_for(threshold);
        let hits: Vec<Hit> = {
            let idx = c.index.read();
            let exclude = searched_id.clone();
            let want = if exclude.is_some() { k + 1 } else { k };
            idx.search(&query, min, want, &|_| true)
                .into_iter()
                .filter(|h| Some(&*h.face_id) != exclude.as_deref())
                .take(k)
                .collect()
        };
        let matches: Vec<FaceMatch> = self
            .hit_rows(collection, &hits)
            .await?
            .iter()
            .map(|(r, similarity)| FaceMatch {
                similarity: *similarity,
                face: self.stored_face(r),
            })
            .collect();
        let retake_reasons = if matches.is_empty() {
            self.probe_retake_reasons(&c, &[query], quality.as_ref(), false)
        } else {
            Vec::new()
        };
        Ok(SearchResult {
            searched_face_id: searched_id,
            searched_face_bounding_box: bbox,
            retake_reasons,
            face_matches: matches,
            threshold: self.threshold_info(threshold),
            face_model_version: self.engine().template_model().into(),
        })
    }
}

/// Why each face (largest first) is not indexed under `filter` and `max`: empty when it
/// is indexed. Faces past `max` among those that pass are `EXCEEDS_MAX_FACES`.
fn index_decisions(
    faces: &[honnin_engine::Face],
    filter: QualityFilter,
    thresholds: &honnin_engine::quality::QualityThresholds,
    max: usize,
) -> Vec<Vec<String>> {
    let bar = match filter {
        QualityFilter::None | QualityFilter::Low => None,
        QualityFilter::Auto | QualityFilter::Medium => Some(QualityLevel::Medium),
        QualityFilter::High => Some(QualityLevel::High),
    };
    let mut kept = 0;
    faces
        .iter()
        .map(|f| {
            let name = |r: &honnin_engine::quality::QualityReason| {
                serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default()
            };
            let mut reasons: Vec<String> = Vec::new();
            if filter == QualityFilter::Low {
                // The lowest bar: only faces too small, too turned or too uncertain to be usable.
                reasons = honnin_engine::quality::UNUSABLE
                    .reasons(&f.quality_inputs())
                    .iter()
                    .map(name)
                    .collect();
            } else if let Some(level) = bar {
                if f.quality_for_recognition < level {
                    reasons = thresholds
                        .shortfalls(&f.quality_inputs(), level)
                        .iter()
                        .map(name)
                        .collect();
                    if reasons.is_empty() {
                        reasons.push("LOW_FACE_QUALITY".into());
                    }
                }
            }
            if reasons.is_empty() {
                kept += 1;
                if kept > max {
                    reasons.push("EXCEEDS_MAX_FACES".into());
                }
            }
            reasons
        })
        .collect()
}
