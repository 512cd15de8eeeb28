//! [`Service`]: every face operation, independent of HTTP.
//!
//! The native `/v1` API (crate `honnin-server`) and any future front end (an AWS
//! JSON 1.1 adapter) are thin layers that authenticate, parse and call these methods.
//! The service owns the engine, the store, the keys and the in-memory search index;
//! it keeps the index in step with the database written by other processes
//! ([`Service::sync_once`]) and enforces time-to-live ([`Service::sweep_once`]).
//!
//! This module holds the service itself: opening it (keys from the vault), loading and
//! syncing collections, authentication and the checks every operation shares (a key's
//! role and collection scope, who may see what another key created). The operations
//! live beside it: `gallery` (collections, faces, users, search), `transient` (detect,
//! compare, transient face IDs), `liveness`, `verification`, `webhooks`; the way an
//! image goes through the engine is `pipeline`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use honnin_engine::{DetectOptions, Engine, Template};
use honnin_storage::{FaceRow, KeyRow, Store};
use parking_lot::RwLock;
use serde::Serialize;

use crate::admission::Admission;
use crate::auth::{self, Action, CreatedKey, KeyInfo, Principal, Role};
use crate::clock::now_ms;
use crate::crypto::{collection_key_ref, service_key_ref, template_aad, DataKey};
use crate::error::{CoreError, Result};
use crate::index::{CollectionIndex, Weighting};
use crate::model::*;
use crate::validate::check_collection_id;

use crate::config::ServiceConfig;

/// How long an authenticated key (or an unknown key id) is remembered by one process:
/// a revocation reaches every server within this time.
pub const KEY_CACHE_SECS: u64 = 2;
/// At most this many unknown key ids are remembered (a flood of random ids is stopped
/// by the per-address limit on failed authentication, in the server).
const UNKNOWN_KEY_CACHE_MAX: usize = 10_000;
/// A data key in the vault whose collection row does not exist is deleted once it is
/// this old (a collection creation interrupted between the vault and the database).
const ORPHAN_KEY_GRACE_MS: i64 = 10 * 60 * 1000;

/// A collection as the index holds it.
pub(crate) struct Loaded {
    /// The collection's identity: a re-created collection of the same name has another.
    pub(crate) uid: String,
    pub(crate) key: DataKey,
    pub(crate) index: RwLock<CollectionIndex>,
}

/// Where a new face comes from (what its row records besides the template).
pub(crate) struct FaceOrigin {
    pub(crate) user_id: Option<String>,
    pub(crate) external_image_id: Option<String>,
    pub(crate) image_id: String,
    pub(crate) details: StoredDetails,
}

/// What the periodic work did (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub transient_deleted: u64,
    pub tombstones_purged: u64,
    /// Liveness sessions that ran out of time unfinished.
    pub liveness_expired: u64,
    /// Liveness images deleted because nobody read them in time.
    pub liveness_images_cleared: u64,
    /// Liveness sessions deleted at the end of their retention.
    pub liveness_deleted: u64,
    /// Verification images (kept by policy) deleted at the end of their retention.
    pub verification_images_cleared: u64,
    /// Verification records deleted at the end of their retention.
    pub verifications_deleted: u64,
    /// Finished webhook deliveries forgotten.
    pub deliveries_purged: u64,
    /// Data keys left in the vault by an interrupted collection creation, deleted.
    pub orphan_keys_deleted: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub faces_applied: usize,
    pub faces_removed: usize,
    pub collections_added: usize,
    pub collections_dropped: usize,
}

/// The face service. Build one per process with [`Service::open`] and share it.
pub struct Service {
    engine: Arc<Engine>,
    store: Store,
    master: DataKey,
    /// Seals transient templates, liveness and verification data, webhook secrets.
    pub(crate) transient_key: DataKey,
    /// Seals page tokens.
    pub(crate) page_key: DataKey,
    config: ServiceConfig,
    pub(crate) weighting: Weighting,
    pub(crate) admission: Arc<Admission>,
    pub(crate) egress: crate::egress::EgressPolicy,
    /// The passive presentation-attack model, for liveness sessions.
    pub(crate) pad: Arc<honnin_engine::pad::PadModel>,
    collections: RwLock<HashMap<String, Arc<Loaded>>>,
    sync_since: parking_lot::Mutex<i64>,
    key_cache: parking_lot::Mutex<HashMap<String, (KeyRow, Instant)>>,
    unknown_keys: parking_lot::Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("backend", &self.store.backend())
            .finish()
    }
}

const MASTER_CHECK: &str = "master_key_check";
/// Where the transient key was kept before the vault (moved at start-up).
const LEGACY_TRANSIENT_KEY: &str = "transient_data_key";

impl Service {
    /// Checks the master key against the database, takes the service's keys from the
    /// vault (moving keys of older databases there), loads every collection's templates
    /// into memory and returns the service.
    pub async fn open(
        config: ServiceConfig,
        engine: Arc<Engine>,
        store: Store,
        master: DataKey,
    ) -> Result<Arc<Service>> {
        let b64 = base64::engine::general_purpose::STANDARD;
        // A sealed constant tells a wrong master key from a right one before any real data is touched.
        let check = b64.encode(master.seal(b"honnin", b"master-check"));
        let stored = store.put_meta_if_absent(MASTER_CHECK, &check).await?;
        let sealed = b64
            .decode(stored)
            .map_err(|_| CoreError::Config("corrupt master key check in the database".into()))?;
        if master.open(&sealed, b"master-check").is_err() {
            return Err(CoreError::Config(
                "the master key does not match this database (HONNIN_MASTER_KEY / master.key of another deployment?)".into(),
            ));
        }
        let legacy_transient = match store.get_meta(LEGACY_TRANSIENT_KEY).await? {
            Some(v) => Some(
                b64.decode(v)
                    .map_err(|_| CoreError::Config("corrupt transient key in the database".into()))
                    .and_then(|raw| DataKey::unwrap_legacy(&raw, &master, "transient"))?,
            ),
            None => None,
        };
        let transient_key = service_key(&store, &master, "transient", legacy_transient).await?;
        if store.get_meta(LEGACY_TRANSIENT_KEY).await?.is_some() {
            store.delete_meta(LEGACY_TRANSIENT_KEY).await?;
        }
        let page_key = service_key(&store, &master, "page-tokens", None).await?;
        let egress = crate::egress::EgressPolicy::new(
            config.webhooks.allow_http,
            config.webhooks.allow_public,
            &config.webhooks.allowed_networks,
        )?;

        let weighting = Weighting::for_engine(&engine)?;
        let pad = Arc::new(
            honnin_engine::pad::PadModel::load(engine.config().model_dir.as_deref())
                .map_err(|e| CoreError::Config(format!("presentation-attack model: {e}")))?,
        );
        let svc = Arc::new(Service {
            pad,
            engine,
            store,
            master,
            transient_key,
            page_key,
            admission: Arc::new(Admission::new(&config.admission)),
            egress,
            config,
            weighting,
            collections: RwLock::new(HashMap::new()),
            sync_since: parking_lot::Mutex::new(now_ms()),
            key_cache: parking_lot::Mutex::new(HashMap::new()),
            unknown_keys: parking_lot::Mutex::new(HashMap::new()),
        });
        for (id, _) in svc.store.collection_ids().await? {
            svc.load_collection(&id).await?;
        }
        Ok(svc)
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    pub(crate) fn master(&self) -> &DataKey {
        &self.master
    }

    /// Forgets every cached key (after revocations), so this server sees them at once.
    pub(crate) fn forget_keys(&self) {
        self.key_cache.lock().clear();
    }

    /// The admission gate of this process (metrics, tests).
    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    /// The webhook egress policy.
    pub fn egress(&self) -> &crate::egress::EgressPolicy {
        &self.egress
    }

    /// Templates held in memory, over all collections.
    pub fn templates_in_memory(&self) -> usize {
        self.collections
            .read()
            .values()
            .map(|c| c.index.read().len())
            .sum()
    }

    /// Bytes of template data per face in the index.
    pub fn bytes_per_template(&self) -> usize {
        CollectionIndex::new(self.weighting.dim()).bytes_per_template()
    }

    pub(crate) fn threshold_info(&self, similarity: f32) -> ThresholdInfo {
        let (fmr, measured) = self
            .engine
            .calibration()
            .map(|c| c.fmr_at(similarity))
            .unwrap_or((
                honnin_engine::calibration::fmr_for_similarity(similarity),
                false,
            ));
        ThresholdInfo {
            threshold: similarity,
            false_match_rate: fmr,
            false_match_rate_measured: measured,
        }
    }

    /// The similarity threshold for a false-match rate, from the calibration.
    pub fn threshold_for_fmr(&self, fmr: f64) -> f32 {
        self.engine.threshold_for_fmr(fmr)
    }

    pub(crate) fn similarity(&self, score: f32) -> f32 {
        self.engine
            .calibration()
            .map(|c| c.similarity(score))
            .unwrap_or(0.0)
    }

    pub(crate) fn score_for(&self, similarity: f32) -> f32 {
        self.engine
            .calibration()
            .map(|c| c.score_for_similarity(similarity))
            .unwrap_or(1.0)
    }

    pub(crate) fn detect_options(&self, max_faces: usize) -> DetectOptions {
        DetectOptions {
            min_face_size: self.config.min_face_size,
            max_faces,
            ..DetectOptions::default()
        }
    }

    // ------------------------------------------------------------------ loading and sync

    /// A collection's data key from the vault; a key still in the collection row (a
    /// database made before the vault) is moved to the vault first.
    async fn collection_key(&self, id: &str) -> Result<Option<(String, DataKey)>> {
        let Some(row) = self.store.get_collection(id).await? else {
            return Ok(None);
        };
        let key_ref = collection_key_ref(&row.collection_uid);
        let key = match self.store.vault().get(&key_ref).await? {
            Some(w) => DataKey::unwrap(&w, &self.master, &key_ref)?,
            None if !row.wrapped_key.is_empty() => {
                let key = DataKey::unwrap_legacy(&row.wrapped_key, &self.master, id)?;
                let w = self
                    .store
                    .vault()
                    .put_if_absent(&key_ref, &key.wrap(&self.master, &key_ref), now_ms())
                    .await?;
                let key = DataKey::unwrap(&w, &self.master, &key_ref)?;
                self.store.clear_legacy_wrapped_key(id).await?;
                tracing::info!(collection = %id, "moved the collection's data key to the key vault");
                key
            }
            None => {
                return Err(CoreError::Config(format!(
                    "the key vault ({}) holds no key for collection `{id}`: restore the key vault that belongs to this database",
                    self.store.vault().location()
                )))
            }
        };
        Ok(Some((row.collection_uid, key)))
    }

    async fn load_collection(&self, id: &str) -> Result<Option<Arc<Loaded>>> {
        let Some((uid, key)) = self.collection_key(id).await? else {
            return Ok(None);
        };
        let mut index = CollectionIndex::new(self.weighting.dim());
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list_faces(id, after.as_deref(), 5_000, None)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.face_id.clone());
            for f in &page {
                match self.open_template(&key, f) {
                    Ok(v) => index.upsert(&f.face_id, f.user_id.as_deref(), &v),
                    Err(e) => tracing::error!(face_id = %f.face_id, "cannot decrypt template: {e}"),
                }
            }
        }
        let loaded = Arc::new(Loaded {
            uid,
            key,
            index: RwLock::new(index),
        });
        self.collections
            .write()
            .insert(id.to_string(), loaded.clone());
        Ok(Some(loaded))
    }

    fn open_template(&self, key: &DataKey, f: &FaceRow) -> Result<Vec<f32>> {
        let plain = key.open(&f.template, &template_aad(&f.collection_id, &f.face_id))?;
        let t = Template::from_bytes(&plain).map_err(CoreError::engine("stored template"))?;
        if t.model != self.engine.template_model() {
            return Err(CoreError::Internal(format!(
                "template of model {} in a {} engine",
                t.model,
                self.engine.template_model()
            )));
        }
        Ok(self.weighting.apply(&t.vector))
    }

    pub(crate) async fn collection(&self, id: &str) -> Result<Arc<Loaded>> {
        if let Some(c) = self.collections.read().get(id) {
            return Ok(c.clone());
        }
        // Created by another process since the last sync.
        self.load_collection(id)
            .await?
            .ok_or_else(|| CoreError::ResourceNotFound(format!("collection `{id}` does not exist")))
    }

    pub(crate) fn insert_loaded(&self, id: &str, loaded: Arc<Loaded>) {
        self.collections.write().insert(id.to_string(), loaded);
    }

    pub(crate) fn drop_loaded(&self, id: &str) {
        self.collections.write().remove(id);
    }

    /// Applies other processes' writes and deletes to the in-memory index. A collection
    /// deleted and re-created elsewhere (same name, new identity) is reloaded.
    pub async fn sync_once(&self) -> Result<SyncReport> {
        let start = now_ms();
        let since = *self.sync_since.lock() - self.config.sync_margin_ms;
        let mut report = SyncReport::default();
        let ids: HashMap<String, String> = self.store.collection_ids().await?.into_iter().collect();
        let known: Vec<(String, String)> = self
            .collections
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.uid.clone()))
            .collect();
        for (k, uid) in &known {
            if ids.get(k) != Some(uid) {
                self.collections.write().remove(k);
                report.collections_dropped += 1;
            }
        }
        for id in ids.keys() {
            if !self.collections.read().contains_key(id)
                && self.load_collection(id).await?.is_some()
            {
                report.collections_added += 1;
            }
        }
        for f in self.store.faces_updated_since(since).await? {
            let Some(c) = self.collections.read().get(&f.collection_id).cloned() else {
                continue;
            };
            match self.open_template(&c.key, &f) {
                Ok(v) => {
                    c.index.write().upsert(&f.face_id, f.user_id.as_deref(), &v);
                    report.faces_applied += 1;
                }
                Err(e) => tracing::error!(face_id = %f.face_id, "cannot decrypt template: {e}"),
            }
        }
        for t in self.store.tombstones_since(since).await? {
            if let Some(c) = self.collections.read().get(&t.collection_id).cloned() {
                if c.index.write().remove(&t.face_id) {
                    report.faces_removed += 1;
                }
            }
        }
        *self.sync_since.lock() = start;
        Ok(report)
    }

    /// Enforces every time limit (transient faces, tombstones, liveness, verifications,
    /// finished deliveries) and removes data keys orphaned by an interrupted creation.
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        let now = now_ms();
        let live = self.store.sweep_liveness(now).await?;
        let ver = self.store.sweep_verifications(now).await?;
        let deliveries_purged = self
            .store
            .purge_deliveries(now - self.config.webhooks.retention_secs as i64 * 1000)
            .await?;
        let report = SweepReport {
            verification_images_cleared: ver.images_cleared,
            verifications_deleted: ver.deleted,
            deliveries_purged,
            liveness_expired: live.expired,
            liveness_images_cleared: live.images_cleared,
            liveness_deleted: live.deleted,
            transient_deleted: self.store.delete_expired_transient(now).await?,
            tombstones_purged: self
                .store
                .purge_tombstones(now - self.config.tombstone_retention_secs as i64 * 1000)
                .await?,
            orphan_keys_deleted: self.delete_orphan_keys(now).await?,
        };
        // Whatever was erased since the last sweep (expired data, images handed out,
        // templates dropped at a decision) leaves the files too, not only the tables:
        // at most one sweep interval after it was deleted.
        self.store.erase_checkpoint().await?;
        Ok(report)
    }

    async fn delete_orphan_keys(&self, now: i64) -> Result<u64> {
        let live: HashSet<String> = self
            .store
            .collection_ids()
            .await?
            .into_iter()
            .map(|(_, uid)| collection_key_ref(&uid))
            .collect();
        let mut n = 0;
        for e in self.store.vault().entries("collection:").await? {
            if !live.contains(&e.key_ref)
                && now - e.created_ms > ORPHAN_KEY_GRACE_MS
                && self.store.vault().delete(&e.key_ref).await?
            {
                n += 1;
            }
        }
        Ok(n)
    }

    // ------------------------------------------------------------------ keys

    /// Creates an API key; the token is returned once and only its hash is stored.
    pub async fn create_key(
        &self,
        p: &Principal,
        role: Role,
        collection: Option<String>,
        name: &str,
    ) -> Result<CreatedKey> {
        crate::keys::create(&self.store, p, role, collection, name).await
    }

    pub async fn list_keys(&self, p: &Principal) -> Result<Vec<KeyInfo>> {
        crate::keys::list(&self.store, p).await
    }

    /// Revokes a key and ends its work (see [`crate::keys::revoke`]).
    pub async fn revoke_key(
        &self,
        p: &Principal,
        key_id: &str,
    ) -> Result<honnin_storage::Revocation> {
        let r = crate::keys::revoke(&self.store, p, key_id).await?;
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
                let Some(k) = self.store.get_key(id).await? else {
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
        Ok(Principal {
            key_id: row.key_id,
            role: Role::parse(&row.role)
                .ok_or_else(|| CoreError::Internal("stored key has an unknown role".into()))?,
            collection: row.collection_id,
            scope_uid: row.scope_uid,
        })
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

    /// A key's stored row, through the authentication cache.
    pub(crate) async fn key_row(&self, key_id: &str) -> Result<Option<KeyRow>> {
        if let Some((k, t)) = self.key_cache.lock().get(key_id) {
            if t.elapsed() < Duration::from_secs(KEY_CACHE_SECS) {
                return Ok(Some(k.clone()));
            }
        }
        Ok(self.store.get_key(key_id).await?)
    }

    // ------------------------------------------------------------------ access checks

    /// The one check before any operation on a collection: the caller's role allows
    /// `action`, its scope names `collection`, the collection exists, and (for a limited
    /// key) it is the very collection the key was limited to, not a later one of the
    /// same name. A limited key made before its collection existed is bound to it here,
    /// on first use.
    pub(crate) async fn authorize(
        &self,
        p: &Principal,
        action: Action,
        collection: &str,
    ) -> Result<Arc<Loaded>> {
        check_collection_id(collection)?;
        p.check(action, Some(collection))?;
        let c = self.collection(collection).await?;
        self.check_scope(p, collection, &c).await?;
        Ok(c)
    }

    /// Whether a limited key may use the loaded collection `name` (see [`Service::authorize`]).
    pub(crate) async fn check_scope(&self, p: &Principal, name: &str, c: &Loaded) -> Result<()> {
        if p.collection.is_none() {
            return Ok(());
        }
        let earlier = || {
            CoreError::AccessDenied(format!(
                "this key was limited to an earlier collection named `{name}`, since deleted; it grants nothing in the new one"
            ))
        };
        match &p.scope_uid {
            Some(uid) if *uid == c.uid => Ok(()),
            Some(_) => Err(earlier()),
            None => {
                if self.store.bind_key_scope(&p.key_id, &c.uid).await? {
                    self.key_cache.lock().remove(&p.key_id);
                    return Ok(());
                }
                // Bound meanwhile, by another request (to this collection, or to one
                // deleted since), or not a stored key at all.
                match self.store.get_key(&p.key_id).await? {
                    Some(k) if k.scope_uid.as_deref() == Some(c.uid.as_str()) => Ok(()),
                    _ => Err(earlier()),
                }
            }
        }
    }

    /// The identity of the collection a limited key may use now, if it exists and the
    /// key is (or can be) bound to it; `None` for unlimited keys.
    pub(crate) async fn scope_collection(&self, p: &Principal) -> Result<Option<Arc<Loaded>>> {
        let Some(name) = &p.collection else {
            return Ok(None);
        };
        let c = match self.collection(name).await {
            Ok(c) => c,
            Err(CoreError::ResourceNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok(self.check_scope(p, name, &c).await.is_ok().then_some(c))
    }

    /// A principal for in-process callers (the demo) limited to `collection` as it
    /// exists now.
    pub async fn principal_for(
        &self,
        key_id: &str,
        role: Role,
        collection: &str,
    ) -> Result<Principal> {
        let c = self.collection(collection).await?;
        Ok(Principal {
            key_id: key_id.into(),
            role,
            collection: Some(collection.into()),
            scope_uid: Some(c.uid.clone()),
        })
    }

    /// Whether `p` may see (or delete) something another key created: its owner may; an
    /// unlimited admin may; an admin limited to a collection may see what keys limited
    /// to the same collection (the same identity) created. Nobody else.
    pub(crate) async fn may_see_owned(&self, p: &Principal, owner_key: &str) -> Result<bool> {
        if p.key_id == owner_key {
            return Ok(true);
        }
        if p.role != Role::Admin {
            return Ok(false);
        }
        let Some(name) = &p.collection else {
            return Ok(true);
        };
        let Some(owner) = self.key_row(owner_key).await? else {
            return Ok(false);
        };
        Ok(owner.collection_id.as_deref() == Some(name.as_str())
            && owner.scope_uid.is_some()
            && owner.scope_uid == p.scope_uid)
    }

    /// Whether `p` may read a key-independent record of `collection` (a verification):
    /// any admin whose scope is that collection as it exists now.
    pub(crate) async fn admin_of(&self, p: &Principal, collection: &str) -> Result<bool> {
        if p.role != Role::Admin {
            return Ok(false);
        }
        match &p.collection {
            None => Ok(true),
            Some(name) if name == collection => Ok(self.scope_collection(p).await?.is_some()),
            Some(_) => Ok(false),
        }
    }
}

/// One of the service's own keys (`service:<name>` in the vault), created on first use;
/// `legacy` is the key kept elsewhere by an older database, moved into the vault. When
/// several servers start at once the first write wins and all use that key.
async fn service_key(
    store: &Store,
    master: &DataKey,
    name: &str,
    legacy: Option<DataKey>,
) -> Result<DataKey> {
    let key_ref = service_key_ref(name);
    if let Some(w) = store.vault().get(&key_ref).await? {
        return DataKey::unwrap(&w, master, &key_ref);
    }
    let fresh = legacy.unwrap_or_else(DataKey::generate);
    let w = store
        .vault()
        .put_if_absent(&key_ref, &fresh.wrap(master, &key_ref), now_ms())
        .await?;
    DataKey::unwrap(&w, master, &key_ref)
}
