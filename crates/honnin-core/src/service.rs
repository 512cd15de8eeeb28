//! [`Service`]: every face operation, independent of HTTP.
//!
//! The native `/v1` API (crate `honnin-server`) and any future front end (an AWS
//! JSON 1.1 adapter) are thin layers that authenticate, parse and call these methods.
//! The service owns the engine, the store, the keys and the in-memory search index;
//! it keeps the index in step with the database written by other processes
//! ([`Service::sync_once`]) and enforces time-to-live ([`Service::sweep_once`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use honnin_engine::{DecodedImage, DetectOptions, Engine, Face, QualityLevel, Template};
use honnin_storage::{CollectionRow, FaceRow, KeyRow, Store, TransientRow, UserRow};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::auth::{self, Action, CreatedKey, KeyInfo, Principal, Role};
use crate::crypto::{template_aad, DataKey};
use crate::error::{CoreError, Result};
use crate::index::{CollectionIndex, Hit, Weighting};
use crate::model::*;

/// Tunables of the service, with documented defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct ServiceConfig {
    /// Default search/verify threshold, as a false-match rate (1e-5 → similarity 70).
    pub match_fmr: f64,
    /// Threshold for associating a face with a user's other faces (1e-4 → 60).
    pub user_match_fmr: f64,
    /// Transient face ID lifetime when the caller gives none, seconds.
    pub face_id_ttl_default_secs: u64,
    /// Shortest transient face ID lifetime a caller may ask for, seconds (tests lower it).
    pub face_id_ttl_min_secs: u64,
    /// At most this many faces per user (Rekognition: 100).
    pub max_faces_per_user: usize,
    /// Smallest face `detect`/`index` look for, pixels.
    pub min_face_size: f32,
    /// How long deleted faces are remembered for other processes, seconds.
    pub tombstone_retention_secs: u64,
    /// Overlap of successive change polls, milliseconds (covers commit delays and clock skew).
    pub sync_margin_ms: i64,
    /// Face Liveness sessions.
    pub liveness: crate::liveness::LivenessConfig,
    /// Identity verifications (document → liveness → compare → duplicates → enrolment).
    pub verification: crate::verification::VerificationConfig,
    /// Webhook delivery.
    pub webhooks: crate::webhooks::WebhookConfig,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            match_fmr: 1e-5,
            user_match_fmr: 1e-4,
            face_id_ttl_default_secs: 86_400,
            face_id_ttl_min_secs: FACE_ID_TTL_MIN,
            max_faces_per_user: 100,
            min_face_size: 40.0,
            tombstone_retention_secs: 86_400,
            sync_margin_ms: 5_000,
            liveness: crate::liveness::LivenessConfig::default(),
            verification: crate::verification::VerificationConfig::default(),
            webhooks: crate::webhooks::WebhookConfig::default(),
        }
    }
}

/// Bounds on request parameters (Rekognition's where they exist).
pub const FACE_ID_TTL_MIN: u64 = 60;
pub const FACE_ID_TTL_MAX: u64 = 86_400;
pub const MAX_SEARCH_RESULTS: usize = 4_096;
pub const MAX_DELETE_FACES: usize = 4_096;
pub const MAX_ASSOCIATE_FACES: usize = 100;
pub const MAX_GROUP_FACES: usize = 1_000;
pub const MAX_IDENTIFY_FACES: usize = 10;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(t).to_string()
}

fn valid_id(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' || extra.contains(&b)
        })
}

/// Validates a collection id: 1–255 of `[a-zA-Z0-9_.-]` (Rekognition's rule).
pub fn check_collection_id(id: &str) -> Result<()> {
    if valid_id(id, 255, &[]) {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "collectionId `{}` must be 1–255 characters of [a-zA-Z0-9_.-]",
            id.chars().take(64).collect::<String>()
        )))
    }
}

/// Validates a user id: 1–128 of `[a-zA-Z0-9_.:-]`.
pub fn check_user_id(id: &str) -> Result<()> {
    if valid_id(id, 128, b":") {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(
            "userId must be 1–128 characters of [a-zA-Z0-9_.:-]".into(),
        ))
    }
}

fn check_external_id(id: &str) -> Result<()> {
    if valid_id(id, 255, b":") {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(
            "externalImageId must be 1–255 characters of [a-zA-Z0-9_.:-]".into(),
        ))
    }
}

fn check_face_id(id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(id).is_ok() {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter(format!(
            "faceId `{}` is not a UUID",
            id.chars().take(64).collect::<String>()
        )))
    }
}

fn check_similarity(t: Option<f32>, name: &str) -> Result<Option<f32>> {
    match t {
        Some(v) if !(0.0..=100.0).contains(&v) || v.is_nan() => Err(CoreError::InvalidParameter(
            format!("{name} must be between 0 and 100"),
        )),
        other => Ok(other),
    }
}

fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

fn decode_token(t: Option<&str>) -> Result<Option<String>> {
    t.map(|t| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                CoreError::InvalidParameter("nextToken is not a token this service issued".into())
            })
    })
    .transpose()
}

fn page_limit(max: Option<u32>, default: u32, cap: u32) -> Result<i64> {
    match max {
        Some(0) => Err(CoreError::InvalidParameter(
            "maxResults must be at least 1".into(),
        )),
        Some(m) if m > cap => Err(CoreError::InvalidParameter(format!(
            "maxResults must be at most {cap}"
        ))),
        Some(m) => Ok(m as i64),
        None => Ok(default as i64),
    }
}

/// A collection as the index holds it.
pub(crate) struct Loaded {
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
    pub(crate) transient_key: DataKey,
    config: ServiceConfig,
    pub(crate) weighting: Weighting,
    /// The passive presentation-attack model, for liveness sessions.
    pub(crate) pad: Arc<honnin_engine::pad::PadModel>,
    collections: RwLock<HashMap<String, Arc<Loaded>>>,
    sync_since: parking_lot::Mutex<i64>,
    key_cache: parking_lot::Mutex<HashMap<String, (KeyRow, std::time::Instant)>>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("backend", &self.store.backend())
            .finish()
    }
}

const MASTER_CHECK: &str = "master_key_check";
const TRANSIENT_KEY: &str = "transient_data_key";

impl Service {
    /// Checks the master key against the database, loads every collection's templates
    /// into memory and returns the service.
    pub async fn open(
        config: ServiceConfig,
        engine: Arc<Engine>,
        store: Store,
        master: DataKey,
    ) -> Result<Arc<Service>> {
        // A sealed constant tells a wrong master key from a right one before any real data is touched.
        let check = base64::engine::general_purpose::STANDARD
            .encode(master.seal(b"honnin", b"master-check"));
        let stored = store.put_meta_if_absent(MASTER_CHECK, &check).await?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .map_err(|_| CoreError::Config("corrupt master key check in the database".into()))?;
        if master.open(&sealed, b"master-check").is_err() {
            return Err(CoreError::Config(
                "the master key does not match this database (HONNIN_MASTER_KEY / master.key of another deployment?)".into(),
            ));
        }
        let wrapped = base64::engine::general_purpose::STANDARD
            .encode(DataKey::generate().wrap(&master, "transient"));
        let stored = store.put_meta_if_absent(TRANSIENT_KEY, &wrapped).await?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(stored)
            .map_err(|_| CoreError::Config("corrupt transient key in the database".into()))?;
        let transient_key = DataKey::unwrap(&raw, &master, "transient")?;

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
            config,
            weighting,
            collections: RwLock::new(HashMap::new()),
            sync_since: parking_lot::Mutex::new(now_ms()),
            key_cache: parking_lot::Mutex::new(HashMap::new()),
        });
        for id in svc.store.collection_ids().await? {
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

    // ------------------------------------------------------------------ loading and sync

    async fn load_collection(&self, id: &str) -> Result<Option<Arc<Loaded>>> {
        let Some(row) = self.store.get_collection(id).await? else {
            return Ok(None);
        };
        let key = DataKey::unwrap(&row.wrapped_key, &self.master, &row.collection_id)?;
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
        let t = Template::from_bytes(&plain).map_err(|e| CoreError::Internal(e.to_string()))?;
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

    /// Applies other processes' writes and deletes to the in-memory index.
    pub async fn sync_once(&self) -> Result<SyncReport> {
        let start = now_ms();
        let since = *self.sync_since.lock() - self.config.sync_margin_ms;
        let mut report = SyncReport::default();
        let ids: HashSet<String> = self.store.collection_ids().await?.into_iter().collect();
        let known: Vec<String> = self.collections.read().keys().cloned().collect();
        for k in &known {
            if !ids.contains(k) {
                self.collections.write().remove(k);
                report.collections_dropped += 1;
            }
        }
        for id in &ids {
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

    /// Deletes expired transient faces and forgets old tombstones.
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        let now = now_ms();
        let live = self.store.sweep_liveness(now).await?;
        let ver = self.store.sweep_verifications(now).await?;
        let deliveries_purged = self
            .store
            .purge_deliveries(now - self.config.webhooks.retention_secs as i64 * 1000)
            .await?;
        Ok(SweepReport {
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
        })
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

    pub async fn revoke_key(&self, p: &Principal, key_id: &str) -> Result<()> {
        crate::keys::revoke(&self.store, p, key_id).await?;
        self.key_cache.lock().remove(key_id);
        Ok(())
    }

    /// Resolves a bearer token to a principal. Revocation takes effect within 2 s.
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let bad = || CoreError::Unauthenticated("invalid API key".into());
        let (id, secret) = auth::parse_token(token).ok_or_else(bad)?;
        let cached = self
            .key_cache
            .lock()
            .get(id)
            .filter(|(_, t)| t.elapsed() < Duration::from_secs(2))
            .map(|(k, _)| k.clone());
        let row = match cached {
            Some(k) => k,
            None => {
                let k = self.store.get_key(id).await?.ok_or_else(bad)?;
                self.key_cache
                    .lock()
                    .insert(id.to_string(), (k.clone(), std::time::Instant::now()));
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
        })
    }

    // ------------------------------------------------------------------ engine helpers

    /// Decodes and detects on a blocking thread (CPU work never blocks the async runtime).
    pub(crate) async fn analyse(
        &self,
        bytes: Vec<u8>,
        opts: DetectOptions,
        what: &'static str,
    ) -> Result<(DecodedImage, Vec<Face>)> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let img = engine
                .decode(&bytes)
                .map_err(|e| CoreError::from_engine(e, what))?;
            let faces = engine
                .detect(&img, &opts)
                .map_err(|e| CoreError::from_engine(e, what))?;
            Ok((img, faces))
        })
        .await
        .map_err(|e| CoreError::Internal(format!("worker: {e}")))?
    }

    pub(crate) async fn templates(
        &self,
        img: DecodedImage,
        faces: Vec<Face>,
    ) -> Result<(DecodedImage, Vec<Face>, Vec<Template>)> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let t = engine
                .templates(&img, &faces)
                .map_err(|e| CoreError::from_engine(e, "image"))?;
            Ok((img, faces, t))
        })
        .await
        .map_err(|e| CoreError::Internal(format!("worker: {e}")))?
    }

    pub(crate) fn detect_options(&self, max_faces: usize) -> DetectOptions {
        DetectOptions {
            min_face_size: self.config.min_face_size,
            max_faces,
            ..DetectOptions::default()
        }
    }

    /// The largest face of an image and its template.
    async fn largest_face(&self, bytes: Vec<u8>, what: &'static str) -> Result<(Face, Template)> {
        let (img, faces) = self.analyse(bytes, self.detect_options(1), what).await?;
        if faces.is_empty() {
            return Err(CoreError::NoFaceDetected(what.into()));
        }
        let (_, mut faces, mut t) = self.templates(img, faces).await?;
        Ok((faces.remove(0), t.remove(0)))
    }

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
        let max = max_faces.unwrap_or(100);
        if !(1..=100).contains(&max) {
            return Err(CoreError::InvalidParameter(
                "maxFaces must be between 1 and 100".into(),
            ));
        }
        let ttl = match face_id_ttl {
            None => None,
            Some(t) => {
                let t = t.unwrap_or(self.config.face_id_ttl_default_secs);
                let min = self.config.face_id_ttl_min_secs;
                if !(min..=FACE_ID_TTL_MAX).contains(&t) {
                    return Err(CoreError::InvalidParameter(format!(
                        "faceIdTimeToLive must be between {min} and {FACE_ID_TTL_MAX} seconds"
                    )));
                }
                Some(t)
            }
        };
        let (img, faces) = self
            .analyse(image, self.detect_options(max), "image")
            .await?;
        let (w, h) = (img.width(), img.height());
        let mut details: Vec<FaceDetail> = faces.iter().map(FaceDetail::from).collect();
        if let Some(ttl) = ttl {
            let (_, _, templates) = self.templates(img, faces).await?;
            let now = now_ms();
            let expires = now + ttl as i64 * 1000;
            let mut rows = Vec::new();
            for (d, t) in details.iter_mut().zip(&templates) {
                let id = uuid::Uuid::new_v4().to_string();
                let stored = StoredDetails {
                    bounding_box: d.bounding_box,
                    confidence: d.confidence,
                    quality_for_recognition: d.quality_for_recognition,
                };
                rows.push(TransientRow {
                    face_id: id.clone(),
                    owner_key: p.key_id.clone(),
                    template: self
                        .transient_key
                        .seal(&t.to_bytes(), &template_aad("transient", &id)),
                    details: serde_json::to_string(&stored).unwrap_or_default(),
                    created_ms: now,
                    expires_ms: expires,
                });
                d.face_id = Some(id);
                d.face_id_expires_at = Some(rfc3339(expires));
            }
            self.store.insert_transient(&rows).await?;
        }
        Ok(DetectResult {
            image_width: w,
            image_height: h,
            face_details: details,
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
        let threshold = check_similarity(threshold, "similarityThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.match_fmr));
        let (sface, stemplate) = self.largest_face(source, "sourceImage").await?;
        let (img, faces) = self
            .analyse(target, self.detect_options(100), "targetImage")
            .await?;
        let (_, faces, templates) = self.templates(img, faces).await?;
        let mut matches = Vec::new();
        let mut unmatched = Vec::new();
        for (f, t) in faces.iter().zip(&templates) {
            let c = self
                .engine
                .compare(&stemplate, t)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            if c.similarity >= threshold {
                matches.push(CompareMatch {
                    similarity: c.similarity,
                    face: ComparedFace::from(f),
                });
            } else {
                unmatched.push(ComparedFace::from(f));
            }
        }
        matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(CompareResult {
            source_image_face: ComparedFace::from(&sface),
            face_matches: matches,
            unmatched_faces: unmatched,
            similarity_threshold: self.threshold_info(threshold),
        })
    }

    // ------------------------------------------------------------------ collections

    pub async fn create_collection(&self, p: &Principal, id: &str) -> Result<CollectionInfo> {
        check_collection_id(id)?;
        p.check(Action::Enroll, Some(id))?;
        let key = DataKey::generate();
        let now = now_ms();
        self.store
            .insert_collection(&CollectionRow {
                collection_id: id.into(),
                face_model: self.engine.template_model().into(),
                wrapped_key: key.wrap(&self.master, id),
                created_ms: now,
            })
            .await
            .map_err(|e| match CoreError::from(e) {
                CoreError::ResourceAlreadyExists(_) => {
                    CoreError::ResourceAlreadyExists(format!("collection `{id}` already exists"))
                }
                other => other,
            })?;
        self.collections.write().insert(
            id.into(),
            Arc::new(Loaded {
                key,
                index: RwLock::new(CollectionIndex::new(self.weighting.dim())),
            }),
        );
        Ok(CollectionInfo {
            collection_id: id.into(),
            face_count: 0,
            user_count: 0,
            face_model_version: self.engine.template_model().into(),
            creation_timestamp: rfc3339(now),
        })
    }

    async fn info(&self, row: &CollectionRow) -> Result<CollectionInfo> {
        Ok(CollectionInfo {
            collection_id: row.collection_id.clone(),
            face_count: self.store.count_faces(&row.collection_id).await?,
            user_count: self.store.count_users(&row.collection_id).await?,
            face_model_version: row.face_model.clone(),
            creation_timestamp: rfc3339(row.created_ms),
        })
    }

    pub async fn describe_collection(&self, p: &Principal, id: &str) -> Result<CollectionInfo> {
        check_collection_id(id)?;
        p.check(Action::Recognize, Some(id))?;
        let row = self.store.get_collection(id).await?.ok_or_else(|| {
            CoreError::ResourceNotFound(format!("collection `{id}` does not exist"))
        })?;
        self.info(&row).await
    }

    pub async fn list_collections(
        &self,
        p: &Principal,
        max: Option<u32>,
        token: Option<&str>,
    ) -> Result<CollectionList> {
        p.check(Action::Recognize, None)?;
        let limit = page_limit(max, 100, 1000)?;
        let after = decode_token(token)?;
        let rows = self.store.list_collections(after.as_deref(), limit).await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| encode_token(&r.collection_id)))
            .flatten();
        let mut out = Vec::new();
        for r in rows.iter().filter(|r| p.sees(&r.collection_id)) {
            out.push(self.info(r).await?);
        }
        Ok(CollectionList {
            collections: out,
            next_token: next,
        })
    }

    /// Deletes a collection with its faces, users and data key (crypto-shredding).
    pub async fn delete_collection(&self, p: &Principal, id: &str) -> Result<()> {
        check_collection_id(id)?;
        p.check(Action::Enroll, Some(id))?;
        if !self.store.delete_collection(id, now_ms()).await? {
            return Err(CoreError::ResourceNotFound(format!(
                "collection `{id}` does not exist"
            )));
        }
        self.collections.write().remove(id);
        Ok(())
    }

    // ------------------------------------------------------------------ faces

    fn stored_face(&self, row: &FaceRow) -> StoredFace {
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
        check_collection_id(collection)?;
        p.check(Action::Enroll, Some(collection))?;
        if let Some(e) = &external_image_id {
            check_external_id(e)?;
        }
        let max = max_faces.unwrap_or(100);
        if !(1..=100).contains(&max) {
            return Err(CoreError::InvalidParameter(
                "maxFaces must be between 1 and 100".into(),
            ));
        }
        let c = self.collection(collection).await?;
        let (img, faces) = self
            .analyse(image, self.detect_options(100), "image")
            .await?;
        let thresholds = self.engine.config().quality;
        let bar = match filter {
            QualityFilter::None | QualityFilter::Low => None,
            QualityFilter::Auto | QualityFilter::Medium => Some(QualityLevel::Medium),
            QualityFilter::High => Some(QualityLevel::High),
        };
        let mut keep = Vec::new();
        let mut unindexed = Vec::new();
        for f in faces {
            let mut reasons: Vec<String> = Vec::new();
            if filter == QualityFilter::Low {
                // The lowest bar: only faces too small, too turned or too uncertain to be usable.
                let q = f.quality_inputs();
                if q.size < 20.0 {
                    reasons.push("SMALL_BOUNDING_BOX".into());
                }
                if q.pose.yaw.abs() > 70.0 || q.pose.pitch.abs() > 55.0 {
                    reasons.push("EXTREME_POSE".into());
                }
                if q.confidence < 50.0 {
                    reasons.push("LOW_CONFIDENCE".into());
                }
            } else if let Some(level) = bar {
                if f.quality_for_recognition < level {
                    reasons = thresholds
                        .shortfalls(&f.quality_inputs(), level)
                        .iter()
                        .map(|r| {
                            serde_json::to_value(r)
                                .ok()
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default()
                        })
                        .collect();
                    if reasons.is_empty() {
                        reasons.push("LOW_FACE_QUALITY".into());
                    }
                }
            }
            if reasons.is_empty() {
                keep.push(f);
            } else {
                unindexed.push(UnindexedFace {
                    reasons,
                    face_detail: FaceDetail::from(&f),
                });
            }
        }
        // Largest first already; the rest exceed maxFaces.
        for f in keep.drain(max.min(keep.len())..) {
            unindexed.push(UnindexedFace {
                reasons: vec!["EXCEEDS_MAX_FACES".into()],
                face_detail: FaceDetail::from(&f),
            });
        }
        let (_, keep, templates) = self.templates(img, keep).await?;
        let now = now_ms();
        let image_id = uuid::Uuid::new_v4().to_string();
        let mut rows = Vec::new();
        let mut records = Vec::new();
        for (f, t) in keep.iter().zip(&templates) {
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
            face_model_version: self.engine.template_model().into(),
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
        self.store.insert_faces(&only_rows).await?;
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
            .store
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

    pub async fn list_faces(
        &self,
        p: &Principal,
        collection: &str,
        max: Option<u32>,
        token: Option<&str>,
        user: Option<&str>,
    ) -> Result<FaceList> {
        check_collection_id(collection)?;
        p.check(Action::Recognize, Some(collection))?;
        if let Some(u) = user {
            check_user_id(u)?;
        }
        self.collection(collection).await?;
        let limit = page_limit(max, 100, 4096)?;
        let after = decode_token(token)?;
        let rows = self
            .store
            .list_faces(collection, after.as_deref(), limit, user)
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| encode_token(&r.face_id)))
            .flatten();
        Ok(FaceList {
            faces: rows.iter().map(|r| self.stored_face(r)).collect(),
            next_token: next,
        })
    }

    pub async fn delete_faces(
        &self,
        p: &Principal,
        collection: &str,
        ids: &[String],
    ) -> Result<DeleteFacesResult> {
        check_collection_id(collection)?;
        p.check(Action::Enroll, Some(collection))?;
        if ids.is_empty() || ids.len() > MAX_DELETE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_DELETE_FACES} ids"
            )));
        }
        let c = self.collection(collection).await?;
        let mut failures = Vec::new();
        let mut valid = Vec::new();
        for id in ids {
            if check_face_id(id).is_ok() {
                valid.push(id.clone());
            } else {
                failures.push(FaceFailure {
                    face_id: id.clone(),
                    reasons: vec!["INVALID_FACE_ID".into()],
                });
            }
        }
        let deleted = self
            .store
            .delete_faces(collection, &valid, now_ms())
            .await?;
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
    )> {
        match probe {
            Probe::Image(bytes) => {
                let (f, t) = self.largest_face(bytes, "image").await?;
                Ok((self.weighting.apply(&t.vector), None, Some(f.bounding_box)))
            }
            Probe::CollectionFace(id) => {
                check_face_id(&id)?;
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
                Ok((v, Some(id), None))
            }
            Probe::TransientFace(id) => {
                let t = self
                    .transient(p, std::slice::from_ref(&id))
                    .await?
                    .remove(0);
                Ok((self.weighting.apply(&t.vector), Some(id), None))
            }
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
        check_collection_id(collection)?;
        p.check(Action::Recognize, Some(collection))?;
        let threshold = check_similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.match_fmr));
        let k = max_results.unwrap_or(10);
        if !(1..=MAX_SEARCH_RESULTS).contains(&k) {
            return Err(CoreError::InvalidParameter(format!(
                "maxResults must be between 1 and {MAX_SEARCH_RESULTS}"
            )));
        }
        let c = self.collection(collection).await?;
        let (query, searched_id, bbox) = self.probe_vector(p, &c, probe).await?;
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
        let matches = self
            .hit_rows(collection, &hits)
            .await?
            .iter()
            .map(|(r, similarity)| FaceMatch {
                similarity: *similarity,
                face: self.stored_face(r),
            })
            .collect();
        Ok(SearchResult {
            searched_face_id: searched_id,
            searched_face_bounding_box: bbox,
            face_matches: matches,
            threshold: self.threshold_info(threshold),
            face_model_version: self.engine.template_model().into(),
        })
    }

    // ------------------------------------------------------------------ users

    pub async fn create_user(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
    ) -> Result<UserInfo> {
        check_collection_id(collection)?;
        check_user_id(user)?;
        p.check(Action::Enroll, Some(collection))?;
        let now = now_ms();
        self.store
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

    pub async fn delete_user(&self, p: &Principal, collection: &str, user: &str) -> Result<()> {
        check_collection_id(collection)?;
        check_user_id(user)?;
        p.check(Action::Enroll, Some(collection))?;
        let c = self.collection(collection).await?;
        if !self.store.delete_user(collection, user, now_ms()).await? {
            return Err(CoreError::ResourceNotFound(format!(
                "user `{user}` does not exist"
            )));
        }
        let mut idx = c.index.write();
        for f in idx.faces_of_user(user) {
            idx.set_user(&f, None);
        }
        Ok(())
    }

    pub async fn list_users(
        &self,
        p: &Principal,
        collection: &str,
        max: Option<u32>,
        token: Option<&str>,
    ) -> Result<UserList> {
        check_collection_id(collection)?;
        p.check(Action::Recognize, Some(collection))?;
        self.collection(collection).await?;
        let limit = page_limit(max, 100, 500)?;
        let after = decode_token(token)?;
        let rows = self
            .store
            .list_users(collection, after.as_deref(), limit)
            .await?;
        let next = (rows.len() as i64 == limit)
            .then(|| rows.last().map(|r| encode_token(&r.user_id)))
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
        check_collection_id(collection)?;
        check_user_id(user)?;
        p.check(Action::Enroll, Some(collection))?;
        if ids.is_empty() || ids.len() > MAX_ASSOCIATE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_ASSOCIATE_FACES} ids"
            )));
        }
        let threshold = check_similarity(threshold, "userMatchThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.user_match_fmr));
        let c = self.collection(collection).await?;
        if self.store.get_user(collection, user).await?.is_none() {
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
            for id in ids {
                let fail =
                    |reason: &str, sim: Option<f32>, uid: Option<String>| AssociationFailure {
                        face_id: id.clone(),
                        reasons: vec![reason.into()],
                        similarity: sim,
                        user_id: uid,
                    };
                if check_face_id(id).is_err() || !seen.insert(id.clone()) {
                    failed.push(fail("INVALID_FACE_ID", None, None));
                    continue;
                }
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
                if count >= self.config.max_faces_per_user {
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
        self.store
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

    pub async fn disassociate_faces(
        &self,
        p: &Principal,
        collection: &str,
        user: &str,
        ids: &[String],
    ) -> Result<DisassociateResult> {
        check_collection_id(collection)?;
        check_user_id(user)?;
        p.check(Action::Enroll, Some(collection))?;
        if ids.is_empty() || ids.len() > MAX_ASSOCIATE_FACES {
            return Err(CoreError::InvalidParameter(format!(
                "faceIds must hold 1–{MAX_ASSOCIATE_FACES} ids"
            )));
        }
        let c = self.collection(collection).await?;
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        {
            let idx = c.index.read();
            for id in ids {
                match idx.user_of(id) {
                    Some(Some(u)) if &*u == user => ok.push(id.clone()),
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
        self.store
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

    fn aggregate_users(&self, hits: &[Hit], k: usize) -> Vec<UserMatch> {
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
        check_collection_id(collection)?;
        p.check(Action::Recognize, Some(collection))?;
        let threshold = check_similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.match_fmr));
        let k = max_users.unwrap_or(10);
        if !(1..=500).contains(&k) {
            return Err(CoreError::InvalidParameter(
                "maxUsers must be between 1 and 500".into(),
            ));
        }
        let c = self.collection(collection).await?;
        let min = self.score_for(threshold);
        let (queries, exclude_user, bbox) = match (probe, user) {
            (Some(probe), None) => {
                let (v, _, bbox) = self.probe_vector(p, &c, probe).await?;
                (vec![v], None, bbox)
            }
            (None, Some(u)) => {
                check_user_id(u)?;
                if self.store.get_user(collection, u).await?.is_none() {
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
                (v, Some(u.to_string()), None)
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
        Ok(SearchUsersResult {
            user_matches: self.aggregate_users(&hits, k),
            searched_face_bounding_box: bbox,
            threshold: self.threshold_info(threshold),
        })
    }

    // ------------------------------------------------------------------ transient faces

    /// Templates of transient faces, in the order asked; unknown or expired ids and ids
    /// of another key (unless admin) are `ResourceNotFound`.
    async fn transient(&self, p: &Principal, ids: &[String]) -> Result<Vec<Template>> {
        for id in ids {
            check_face_id(id)?;
        }
        let rows: HashMap<String, TransientRow> = self
            .store
            .get_transient(ids, now_ms())
            .await?
            .into_iter()
            .map(|r| (r.face_id.clone(), r))
            .collect();
        ids.iter()
            .map(|id| {
                let r = rows
                    .get(id)
                    .filter(|r| p.role == Role::Admin || r.owner_key == p.key_id)
                    .ok_or_else(|| {
                        CoreError::ResourceNotFound(format!(
                            "faceId `{id}` is unknown or has expired"
                        ))
                    })?;
                let plain = self
                    .transient_key
                    .open(&r.template, &template_aad("transient", id))?;
                Template::from_bytes(&plain).map_err(|e| CoreError::Internal(e.to_string()))
            })
            .collect()
    }

    /// face ↔ face (two transient ids) or face ↔ user (transient id against a user's faces).
    pub async fn verify(
        &self,
        p: &Principal,
        face_id: &str,
        other: VerifyTarget,
        threshold: Option<f32>,
    ) -> Result<VerifyResult> {
        p.check(Action::Recognize, None)?;
        let threshold = check_similarity(threshold, "threshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.match_fmr));
        let a = self.weighting.apply(
            &self
                .transient(p, &[face_id.to_string()])
                .await?
                .remove(0)
                .vector,
        );
        let score = match other {
            VerifyTarget::Face(b) => {
                let b = self
                    .weighting
                    .apply(&self.transient(p, &[b]).await?.remove(0).vector);
                honnin_engine::template::dot(&a, &b)
            }
            VerifyTarget::User {
                collection,
                user_id,
            } => {
                check_collection_id(&collection)?;
                check_user_id(&user_id)?;
                p.check(Action::Recognize, Some(&collection))?;
                let c = self.collection(&collection).await?;
                if self.store.get_user(&collection, &user_id).await?.is_none() {
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
        check_collection_id(collection)?;
        p.check(Action::Recognize, Some(collection))?;
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
        let threshold = check_similarity(threshold, "confidenceThreshold")?
            .unwrap_or_else(|| self.threshold_for_fmr(self.config.match_fmr));
        let min = self.score_for(threshold);
        let c = self.collection(collection).await?;
        let templates = self.transient(p, face_ids).await?;
        let idx = c.index.read();
        Ok(face_ids
            .iter()
            .zip(&templates)
            .map(|(id, t)| {
                let q = self.weighting.apply(&t.vector);
                let hits = idx.search(&q, min, MAX_SEARCH_RESULTS, &|i| idx.has_user(i));
                IdentifyResult {
                    face_id: id.clone(),
                    candidates: self
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
                self.score_for(self.threshold_for_fmr(self.config.match_fmr))
            }
            SimilarMode::MatchFace => -1.0,
        };
        let q = self.weighting.apply(
            &self
                .transient(p, &[face_id.to_string()])
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
                let ts = self.transient(p, &ids).await?;
                ids.iter()
                    .zip(&ts)
                    .filter(|(id, _)| id.as_str() != face_id)
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
                check_collection_id(&collection)?;
                p.check(Action::Recognize, Some(&collection))?;
                let c = self.collection(&collection).await?;
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
        let mut uniq = face_ids.to_vec();
        uniq.sort();
        uniq.dedup();
        let threshold = self.threshold_for_fmr(self.config.match_fmr);
        let min = self.score_for(threshold);
        let vs: Vec<Vec<f32>> = self
            .transient(p, &uniq)
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

/// What `verify` compares a transient face with.
#[derive(Debug, Clone)]
pub enum VerifyTarget {
    Face(String),
    User { collection: String, user_id: String },
}

/// Where `find_similar` looks.
#[derive(Debug, Clone)]
pub enum SimilarAmong {
    Faces(Vec<String>),
    Collection(String),
}
