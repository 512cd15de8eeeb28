//! [`Context`]: what every domain of the service shares — the engine, the store, the
//! service's keys, the configuration, the admission gate, the in-memory search index of
//! every collection, the authentication cache — and the checks every operation makes
//! (a key's role and collection scope, who may see what another key created).
//!
//! The domains ([`crate::gallery`], [`crate::transient`], [`crate::liveness`],
//! [`crate::verification`], [`crate::webhooks`], [`crate::keys`]) are views over one
//! shared `Context` and depend on it and on the layers below, never on each other's
//! callers: see ARCHITECTURE.md's module graph. [`crate::Service`] opens the context and
//! hands out the views.
//!
//! The context keeps the index in step with the database written by other processes
//! ([`Context::sync_once`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use honnin_engine::{DetectOptions, Engine, Template};
use honnin_storage::{FaceRow, KeyRow, Store, TransientRow};
use parking_lot::RwLock;
use serde::Serialize;

use crate::admission::Admission;
use crate::auth::{Action, Principal, Role};
use crate::clock::now_ms;
use crate::crypto::{collection_key_ref, service_key_ref, template_aad, transient_aad, DataKey};
use crate::error::{CoreError, Result};
use crate::index::{CollectionIndex, Weighting};
use crate::model::*;
use crate::validate::{self, check_collection_id};

use crate::config::ServiceConfig;

/// How long an authenticated key (or an unknown key id) is remembered by one process:
/// a revocation reaches every server within this time.
pub const KEY_CACHE_SECS: u64 = 2;
/// At most this many unknown key ids are remembered (a flood of random ids is stopped
/// by the per-address limit on failed authentication, in the server).
pub(crate) const UNKNOWN_KEY_CACHE_MAX: usize = 10_000;

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

/// What one [`Context::sync_once`] applied to this process's index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// Faces added or updated (new template or user) from other processes' writes.
    pub faces_applied: usize,
    /// Faces removed on other processes' tombstones.
    pub faces_removed: usize,
    /// Collections created elsewhere and loaded here.
    pub collections_added: usize,
    /// Collections deleted (or re-created under a new identity) elsewhere and dropped
    /// here.
    pub collections_dropped: usize,
}

/// The state every domain shares. Opened once per process by [`crate::Service::open`].
pub struct Context {
    engine: Arc<Engine>,
    store: Store,
    master: DataKey,
    /// Seals transient templates, liveness and verification data, webhook secrets.
    pub(crate) transient_key: DataKey,
    /// Seals page tokens.
    pub(crate) page_key: DataKey,
    /// Seals the private keys that sign login assertions.
    pub(crate) login_key: DataKey,
    config: ServiceConfig,
    pub(crate) weighting: Weighting,
    pub(crate) admission: Arc<Admission>,
    pub(crate) egress: crate::egress::EgressPolicy,
    /// The passive presentation-attack model, for liveness sessions.
    pub(crate) pad: Arc<honnin_engine::pad::PadModel>,
    pub(crate) collections: RwLock<HashMap<String, Arc<Loaded>>>,
    pub(crate) sync_since: parking_lot::Mutex<i64>,
    pub(crate) key_cache: parking_lot::Mutex<HashMap<String, (KeyRow, Instant)>>,
    pub(crate) unknown_keys: parking_lot::Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("backend", &self.store.backend())
            .finish()
    }
}

const MASTER_CHECK: &str = "master_key_check";
/// Where the transient key was kept before the vault (moved at start-up).
const LEGACY_TRANSIENT_KEY: &str = "transient_data_key";

impl Context {
    /// Checks the master key against the database, takes the service's keys from the
    /// vault (moving keys of older databases there), loads every collection's templates
    /// into memory and returns the service.
    pub(crate) async fn open(
        config: ServiceConfig,
        engine: Arc<Engine>,
        store: Store,
        master: DataKey,
    ) -> Result<Arc<Context>> {
        config
            .login
            .validate(config.liveness.images_ttl_secs)
            .map_err(CoreError::Config)?;
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
        let login_key = service_key(&store, &master, "login-signing", None).await?;
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
        let svc = Arc::new(Context {
            pad,
            engine,
            store,
            master,
            transient_key,
            page_key,
            login_key,
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

    /// The face engine (detection, templates, calibration).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The service's configuration.
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

    /// A template sealed with the transient key under `aad`. Errors: `Internal` when
    /// the seal does not open (another key, another `aad`) or holds no template.
    pub(crate) fn open_transient_template(&self, sealed: &[u8], aad: &[u8]) -> Result<Template> {
        let plain = self.transient_key.open(sealed, aad)?;
        Template::from_bytes(&plain).map_err(CoreError::engine("stored template"))
    }

    /// The live-face template of a finishing liveness session, sealed with the
    /// transient key; the session's finish stores it with the finished status, and a
    /// verification's decision, a login or a profile enrolment opens it.
    pub(crate) fn seal_live_template(&self, session_id: &str, live: &Template) -> Vec<u8> {
        self.transient_key.seal(
            &live.to_bytes(),
            &crate::crypto::live_template_aad(session_id),
        )
    }

    /// Templates of transient faces, in the order asked (ids in any UUID spelling);
    /// unknown or expired ids, and ids of a key the caller may not see, are
    /// `ResourceNotFound`.
    pub(crate) async fn transient_templates(
        &self,
        p: &Principal,
        ids: &[String],
    ) -> Result<Vec<Template>> {
        let ids: Vec<String> = ids
            .iter()
            .map(|id| validate::face_id(id))
            .collect::<Result<_>>()?;
        let rows: HashMap<String, TransientRow> = self
            .store()
            .get_transient(&ids, now_ms())
            .await?
            .into_iter()
            .map(|r| (r.face_id.clone(), r))
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for id in &ids {
            let missing =
                || CoreError::ResourceNotFound(format!("faceId `{id}` is unknown or has expired"));
            let r = rows.get(id).ok_or_else(missing)?;
            let r = self.owned(p, &r.owner_key, None, r, missing).await?;
            // Sealed before transient faces had their own context: the legacy one.
            let plain = self
                .transient_key
                .open(&r.template, &transient_aad(id))
                .or_else(|_| {
                    self.transient_key
                        .open(&r.template, &template_aad("transient", id))
                })?;
            out.push(Template::from_bytes(&plain).map_err(CoreError::engine("stored template"))?);
        }
        Ok(out)
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

    /// Whether a limited key may use the loaded collection `name` (see [`Context::authorize`]).
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

    /// The one rule for records that belong to the key that created them (liveness
    /// sessions, verifications, webhooks, transient faces): `row` if `p` may see it
    /// ([`Context::may_see_owned`]; for a record of a collection, `collection`, also
    /// [`Context::admin_of`] that collection), otherwise the error of `hidden` — the
    /// answer for an id that does not exist, so a key learns nothing of others' records.
    pub(crate) async fn owned<T>(
        &self,
        p: &Principal,
        owner_key: &str,
        collection: Option<&str>,
        row: T,
        hidden: impl FnOnce() -> CoreError,
    ) -> Result<T> {
        if self.may_see_owned(p, owner_key).await? {
            return Ok(row);
        }
        match collection {
            Some(c) if self.admin_of(p, c).await? => Ok(row),
            _ => Err(hidden()),
        }
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

/// Declares a domain of the service: a view over the shared [`Context`] that derefs to
/// it, so a domain's methods reach the store, the engine and the shared checks as
/// `self.store()`, `self.authorize(…)`. Built by [`crate::Service`]'s accessors, or by a
/// higher domain from its own context (`Gallery::new(self.cx)`).
macro_rules! domain {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            pub(crate) cx: &'a std::sync::Arc<$crate::context::Context>,
        }

        impl<'a> $name<'a> {
            /// This domain over the shared context.
            pub(crate) fn new(cx: &'a std::sync::Arc<$crate::context::Context>) -> Self {
                Self { cx }
            }
        }

        impl std::ops::Deref for $name<'_> {
            type Target = $crate::context::Context;

            fn deref(&self) -> &Self::Target {
                self.cx
            }
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}
pub(crate) use domain;
