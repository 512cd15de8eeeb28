//! Users of a collection: create, delete, list, associate and disassociate faces, and
//! search by user (faces' matches aggregated per user).

use std::collections::{BTreeMap, HashSet};

use honnin_storage::UserRow;

use super::Gallery;
use crate::auth::{Action, Principal};
use crate::clock::{now_ms, rfc3339};
use crate::config::{
    DEFAULT_MAX_USERS, DEFAULT_PAGE_SIZE, MAX_ASSOCIATE_FACES, MAX_SEARCH_RESULTS, MAX_USERS,
    MAX_USERS_PAGE,
};
use crate::error::{CoreError, Result};
use crate::index::Hit;
use crate::model::*;
use crate::paging::{self, page_limit};
use crate::validate::{self, check_user_id};

impl Gallery<'_> {
    /// Creates a user (an id of the caller's, 1–128 characters of `[A-Za-z0-9_.:-]`) with no
    /// faces. Errors: `ResourceAlreadyExists`, `ResourceNotFound` for the collection.
    pub async fn create_user(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
    ) -> Result<UserInfo> {
        check_user_id(user)?;
        self.authorize(p, Action::Enroll, collection).await?;
        let now = now_ms();
        self.store()
            .insert_user(&UserRow {
                collection_id: collection.into(),
                user_id: user.into(),
                created_ms: now,
            })
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::ResourceAlreadyExists(_) => {
                    CoreError::ResourceAlreadyExists(format!("user `{user}` already exists"))
                }
                CoreError::ResourceNotFound(_) => {
                    CoreError::ResourceNotFound(format!("collection `{collection}` does not exist"))
                }
                other => other,
            })?;
        Ok(UserInfo {
            user_id: user.into(),
            creation_timestamp: rfc3339(now),
        })
    }

    /// Deletes a user and every record about the person: the user's faces (their
    /// templates), the verifications of that `externalUserId` with their liveness
    /// sessions, and events about them. With `keep_faces` the faces are only detached
    /// and stay indexed (Amazon Rekognition's `DeleteUser`).
    pub async fn delete_user(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
        keep_faces: bool,
    ) -> Result<()> {
        check_user_id(user)?;
        let c = self.authorize(p, Action::Enroll, collection).await?;
        let Some(d) = self
            .store()
            .delete_user(collection, user, now_ms(), keep_faces)
            .await?
        else {
            return Err(CoreError::ResourceNotFound(format!(
                "user `{user}` does not exist"
            )));
        };
        let mut idx = c.index.write();
        for f in &d.face_ids {
            if keep_faces {
                idx.set_user(f, None);
            } else {
                idx.remove(f);
            }
        }
        Ok(())
    }

    /// One page of a collection's users in id order (`max` 1–500, default 100); `token` is
    /// the previous page's opaque `nextToken`.
    pub async fn list_users(
        &self,
        p: &Principal,
        collection: &str,
        max: Option<u32>,
        token: Option<&str>,
    ) -> Result<UserList> {
        let c = self.authorize(p, Action::Recognize, collection).await?;
        let limit = page_limit(max, DEFAULT_PAGE_SIZE, MAX_USERS_PAGE)?;
        let listing = format!("users:{}", c.uid);
        let now = now_ms() / 1000;
        let after = paging::open(&self.page_key, &listing, token, now)?;
        let rows = self
            .store()
            .list_users(collection, after.as_deref(), limit)
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| {
                rows.last()
                    .map(|r| paging::issue(&self.page_key, &listing, &r.user_id, now))
            })
            .flatten();
        Ok(UserList {
            users: rows
                .iter()
                .map(|u| UserInfo {
                    user_id: u.user_id.clone(),
                    creation_timestamp: rfc3339(u.created_ms),
                })
                .collect(),
            next_token: next,
        })
    }

    /// Associates faces with a user. A face must match the user's existing faces at
    /// `user_match_threshold` (default: the threshold for FMR 1e-4), so one user never
    /// collects two people's faces.
    pub async fn associate_faces(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
        ids: &[String],
        threshold: Option<f32>,
    ) -> Result<AssociateResult> {
        check_user_id(user)?;
        let c = self.authorize(p, Action::Enroll, collection).await?;
        if ids.is_empty() || ids.len() > MAX_ASSOCIATE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_ASSOCIATE_FACES} ids"
            )));
        }
        let threshold = validate::similarity(threshold, "userMatchThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().user_match_fmr));
        if self.store().get_user(collection, user).await?.is_none() {
            return Err(CoreError::ResourceNotFound(format!(
                "user `{user}` does not exist"
            )));
        }
        let min = self.score_for(threshold);
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        {
            let idx = c.index.read();
            let mut members: Vec<Vec<f32>> = idx
                .faces_of_user(user)
                .iter()
                .filter_map(|f| idx.vector(f).map(|v| v.to_vec()))
                .collect();
            let mut count = members.len();
            let mut seen = HashSet::new();
            for given in ids {
                let fail =
                    |reason: &str, sim: Option<f32>, uid: Option<String>| AssociationFailure {
                        face_id: given.clone(),
                        reasons: vec![reason.into()],
                        similarity: sim,
                        user_id: uid,
                    };
                let Some(id) = validate::canonical_uuid(given).filter(|c| seen.insert(c.clone()))
                else {
                    failed.push(fail("INVALID_FACE_ID", None, None));
                    continue;
                };
                let id = &id;
                let Some(v) = idx.vector(id) else {
                    failed.push(fail("FACE_NOT_FOUND", None, None));
                    continue;
                };
                match idx.user_of(id).flatten() {
                    Some(u) if &*u == user => {
                        ok.push(id.clone());
                        continue;
                    }
                    Some(u) => {
                        failed.push(fail(
                            "ASSOCIATED_TO_A_DIFFERENT_USER",
                            None,
                            Some(u.to_string()),
                        ));
                        continue;
                    }
                    None => {}
                }
                if count >= self.config().max_faces_per_user {
                    failed.push(fail("EXCEEDS_MAX_FACES_PER_USER", None, None));
                    continue;
                }
                if !members.is_empty() {
                    let best = members
                        .iter()
                        .map(|m| honnin_engine::template::dot(m, v))
                        .fold(f32::NEG_INFINITY, f32::max);
                    if best < min {
                        failed.push(fail(
                            "LOW_MATCH_CONFIDENCE",
                            Some(self.similarity(best)),
                            None,
                        ));
                        continue;
                    }
                }
                members.push(v.to_vec());
                count += 1;
                ok.push(id.clone());
            }
        }
        let newly: Vec<String> = {
            let idx = c.index.read();
            ok.iter()
                .filter(|id| idx.user_of(id).flatten().is_none())
                .cloned()
                .collect()
        };
        self.store()
            .set_face_user(collection, &newly, Some(user), now_ms())
            .await?;
        {
            let mut idx = c.index.write();
            for id in &newly {
                idx.set_user(id, Some(user));
            }
        }
        Ok(AssociateResult {
            associated_faces: ok,
            unsuccessful_face_associations: failed,
            user_match_threshold: self.threshold_info(threshold),
        })
    }

    /// Detaches 1–[`MAX_ASSOCIATE_FACES`](crate::config::MAX_ASSOCIATE_FACES) faces from a
    /// user; they stay indexed. Faces not found or of another user are reported, not errors.
    pub async fn disassociate_faces(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
        ids: &[String],
    ) -> Result<DisassociateResult> {
        check_user_id(user)?;
        let c = self.authorize(p, Action::Enroll, collection).await?;
        if ids.is_empty() || ids.len() > MAX_ASSOCIATE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_ASSOCIATE_FACES} ids"
            )));
        }
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        {
            let idx = c.index.read();
            for id in ids {
                let canonical = validate::canonical_uuid(id).unwrap_or_else(|| id.clone());
                match idx.user_of(&canonical) {
                    Some(Some(u)) if &*u == user && !ok.contains(&canonical) => ok.push(canonical),
                    Some(Some(u)) if &*u == user => {}
                    Some(_) => failed.push(FaceFailure {
                        face_id: id.clone(),
                        reasons: vec!["ASSOCIATED_TO_A_DIFFERENT_USER".into()],
                    }),
                    None => failed.push(FaceFailure {
                        face_id: id.clone(),
                        reasons: vec!["FACE_NOT_FOUND".into()],
                    }),
                }
            }
        }
        self.store()
            .set_face_user(collection, &ok, None, now_ms())
            .await?;
        {
            let mut idx = c.index.write();
            for id in &ok {
                idx.set_user(id, None);
            }
        }
        Ok(DisassociateResult {
            disassociated_faces: ok,
            unsuccessful_face_disassociations: failed,
        })
    }

    pub(crate) fn aggregate_users(&self, hits: &[Hit], k: usize) -> Vec<UserMatch> {
        let mut best: BTreeMap<String, (f32, String)> = BTreeMap::new();
        for h in hits {
            let Some(u) = &h.user_id else { continue };
            let e = best
                .entry(u.to_string())
                .or_insert((f32::NEG_INFINITY, String::new()));
            if h.score > e.0 {
                *e = (h.score, h.face_id.to_string());
            }
        }
        let mut out: Vec<UserMatch> = best
            .into_iter()
            .map(|(user_id, (s, f))| UserMatch {
                similarity: self.similarity(s),
                user_id,
                best_face_id: f,
            })
            .collect();
        out.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then_with(|| a.user_id.cmp(&b.user_id))
        });
        out.truncate(k);
        out
    }

    /// Users of a collection similar to a probe, or to a user (by id: the best match of
    /// any of the user's faces).
    pub async fn search_users(
        &self,
        p: &Principal,
        collection: &str,
        probe: Option<Probe>,
        user: Option<&str>,
        threshold: Option<f32>,
        max_users: Option<usize>,
    ) -> Result<SearchUsersResult> {
        let c = self.authorize(p, Action::Recognize, collection).await?;
        let threshold = validate::similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config().match_fmr));
        let k = max_users.unwrap_or(DEFAULT_MAX_USERS);
        if !(1..=MAX_USERS).contains(&k) {
            return Err(CoreError::InvalidParameter(format!(
                "maxUsers must be between 1 and {MAX_USERS}"
            )));
        }
        let min = self.score_for(threshold);
        let (queries, exclude_user, bbox, quality) = match (probe, user) {
            (Some(probe), None) => {
                let (v, _, bbox, quality) = self.probe_vector(p, &c, probe).await?;
                (vec![v], None, bbox, quality)
            }
            (None, Some(u)) => {
                check_user_id(u)?;
                if self.store().get_user(collection, u).await?.is_none() {
                    return Err(CoreError::ResourceNotFound(format!(
                        "user `{u}` does not exist"
                    )));
                }
                let idx = c.index.read();
                let v: Vec<Vec<f32>> = idx
                    .faces_of_user(u)
                    .iter()
                    .filter_map(|f| idx.vector(f).map(|v| v.to_vec()))
                    .collect();
                if v.is_empty() {
                    return Err(CoreError::InvalidParameter(format!(
                        "user `{u}` has no faces to search with"
                    )));
                }
                (v, Some(u.to_string()), None, None)
            }
            _ => {
                return Err(CoreError::InvalidParameter(
                    "give exactly one of image, faceId or userId to search with".into(),
                ))
            }
        };
        let mut hits = Vec::new();
        {
            let idx = c.index.read();
            for q in &queries {
                hits.extend(idx.search(q, min, MAX_SEARCH_RESULTS, &|i| idx.has_user(i)));
            }
        }
        hits.retain(|h| h.user_id.as_deref() != exclude_user.as_deref());
        let user_matches = self.aggregate_users(&hits, k);
        let retake_reasons = if user_matches.is_empty() {
            self.probe_retake_reasons(&c, &queries, quality.as_ref(), true)
        } else {
            Vec::new()
        };
        Ok(SearchUsersResult {
            user_matches,
            retake_reasons,
            searched_face_bounding_box: bbox,
            threshold: self.threshold_info(threshold),
        })
    }
}
