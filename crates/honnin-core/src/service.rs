//! [`Service`]: the face service, independent of HTTP — a thin façade that opens the
//! shared [`Context`] and hands out its domains.
//!
//! The native `/v1` API (crate `honnin-server`) and any later front end (the AWS JSON 1.1
//! adapter) are thin layers that authenticate, parse and call a domain:
//!
//! | accessor | domain | what |
//! |---|---|---|
//! | [`Service::gallery`] | [`Gallery`] | collections, faces, users, 1:N search |
//! | [`Service::transient`] | [`TransientFaces`] | detect, compare, transient face IDs: verify, identify, find-similar, group |
//! | [`Service::liveness`] | [`LivenessSessions`] | Face Liveness sessions and their results |
//! | [`Service::verifications`] | [`Verifications`] | identity verifications |
//! | [`Service::webhooks`] | [`Webhooks`] | webhooks, events and their delivery |
//! | [`Service::keys`] | [`Keys`] | API keys and authentication |
//!
//! A domain may use a lower one (a verification creates its liveness session, enrols
//! through the gallery, emits its event through the webhooks); what would make two
//! domains call each other lives here instead: a liveness stream that belongs to
//! a verification ([`Service::open_liveness_stream`], [`Service::complete_liveness_stream`],
//! [`Service::fail_liveness_stream`]), and the time limits of all of them
//! ([`Service::sweep_once`]). `Service` derefs to the [`Context`] (engine, store,
//! configuration, thresholds, admission gate).

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::Arc;

use honnin_engine::Engine;
use honnin_storage::Store;
use serde::Serialize;

use crate::clock::now_ms;
use crate::config::ServiceConfig;
use crate::context::Context;
use crate::crypto::{collection_key_ref, DataKey};
use crate::error::Result;
use crate::gallery::Gallery;
use crate::keys::Keys;
use crate::liveness::{LivenessResults, LivenessSessions, LivenessTicket};
use crate::login::Logins;
use crate::oidc::Oidc;
use crate::transient::TransientFaces;
use crate::verification::Verifications;
use crate::webhooks::Webhooks;
use honnin_liveness::LivenessOutcome;

/// A data key in the vault whose collection row does not exist is deleted once it is
/// this old (a collection creation interrupted between the vault and the database).
const ORPHAN_KEY_GRACE_MS: i64 = 10 * 60 * 1000;

/// What the periodic work did (for metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Transient faces deleted at the end of their time-to-live.
    pub transient_deleted: u64,
    /// Deletion records (for other servers' indexes) forgotten.
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
    /// Login attempt records deleted at the end of their retention.
    pub login_attempts_deleted: u64,
    /// Assertion-signing keys deleted once no assertion they signed can be valid.
    pub signing_keys_retired: u64,
    /// OpenID Connect grants (requests and codes) deleted once expired.
    pub oidc_grants_deleted: u64,
    /// Lock-out rows that lock nothing and were idle for `login.attempts_retention_secs`.
    pub lockouts_deleted: u64,
}

/// The face service. Build one per process with [`Service::open`] and share it.
#[derive(Debug)]
pub struct Service {
    cx: Arc<Context>,
}

impl Deref for Service {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.cx
    }
}

impl Service {
    /// Checks the master key against the database, takes the service's keys from the
    /// vault (moving keys of older databases there), loads every collection's templates
    /// into memory and returns the service. Errors: `Config` for a master key of
    /// another database or a key vault that lacks a collection's key; storage errors.
    pub async fn open(
        config: ServiceConfig,
        engine: Arc<Engine>,
        store: Store,
        master: DataKey,
    ) -> Result<Arc<Service>> {
        let cx = Context::open(config, engine, store, master).await?;
        Ok(Arc::new(Service { cx }))
    }

    /// Collections, faces, users and 1:N search.
    pub fn gallery(&self) -> Gallery<'_> {
        Gallery::new(&self.cx)
    }

    /// Detection, comparison and transient face IDs.
    pub fn transient(&self) -> TransientFaces<'_> {
        TransientFaces::new(&self.cx)
    }

    /// Face Liveness sessions.
    pub fn liveness(&self) -> LivenessSessions<'_> {
        LivenessSessions::new(&self.cx)
    }

    /// Identity verifications.
    pub fn verifications(&self) -> Verifications<'_> {
        Verifications::new(&self.cx)
    }

    /// Webhooks and events.
    pub fn webhooks(&self) -> Webhooks<'_> {
        Webhooks::new(&self.cx)
    }

    /// Face login: enrolment profiles, login attempts, assertions.
    pub fn logins(&self) -> Logins<'_> {
        Logins::new(&self.cx)
    }

    /// The OpenID Connect provider over face login.
    pub fn oidc(&self) -> Oidc<'_> {
        Oidc::new(&self.cx)
    }

    /// API keys and authentication.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(&self.cx)
    }

    /// Checks the client token and claims the session's one stream. A verification's
    /// session streams only once its document is in (checked after the session's own
    /// checks, before the claim). Errors: SessionNotFound, InvalidClientToken,
    /// SessionCancelled, SessionExpired, a verification's step error,
    /// SessionAlreadyStarted.
    pub async fn open_liveness_stream(&self, id: &str, token: &str) -> Result<LivenessTicket> {
        let verifications = self.verifications();
        self.liveness()
            .open_stream(id, token, |session| async move {
                verifications.check_liveness_stream(&session).await
            })
            .await
    }

    /// Records a finished stream (results, sealed images, the reference match) and then
    /// decides the verification it belongs to, if any.
    pub async fn complete_liveness_stream(
        &self,
        t: &LivenessTicket,
        outcome: LivenessOutcome,
    ) -> Result<LivenessResults> {
        let (results, verification) = self.liveness().complete_stream(t, outcome).await?;
        self.verifications()
            .decide_after_liveness(&t.session_id, verification.as_deref())
            .await;
        Ok(results)
    }

    /// Ends a stream that could not run to its end (protocol error, client gone), then
    /// decides the verification it belongs to, if any.
    pub async fn fail_liveness_stream(
        &self,
        t: &LivenessTicket,
        code: &str,
        message: &str,
        frames_received: u32,
    ) -> Result<LivenessResults> {
        let (results, verification) = self
            .liveness()
            .fail_stream(t, code, message, frames_received)
            .await?;
        self.verifications()
            .decide_after_liveness(&t.session_id, verification.as_deref())
            .await;
        Ok(results)
    }

    /// Enforces every time limit (transient faces, tombstones, liveness, verifications,
    /// finished deliveries, login attempts, retired signing keys) and removes data keys orphaned by an interrupted creation.
    pub async fn sweep_once(&self) -> Result<SweepReport> {
        let now = now_ms();
        let live = self.store().sweep_liveness(now).await?;
        let ver = self.store().sweep_verifications(now).await?;
        let deliveries_purged = self
            .store()
            .purge_deliveries(now - self.config().webhooks.retention_secs as i64 * 1000)
            .await?;
        let report = SweepReport {
            verification_images_cleared: ver.images_cleared,
            verifications_deleted: ver.deleted,
            deliveries_purged,
            liveness_expired: live.expired,
            liveness_images_cleared: live.images_cleared,
            liveness_deleted: live.deleted,
            transient_deleted: self.store().delete_expired_transient(now).await?,
            tombstones_purged: self
                .store()
                .purge_tombstones(now - self.config().tombstone_retention_secs as i64 * 1000)
                .await?,
            orphan_keys_deleted: self.delete_orphan_keys(now).await?,
            login_attempts_deleted: self.store().sweep_login_attempts(now).await?,
            signing_keys_retired: self.store().delete_retired_signing_keys(now).await?,
            oidc_grants_deleted: self.store().sweep_oidc_grants(now).await?,
            lockouts_deleted: self
                .store()
                .sweep_lockouts(
                    now,
                    now - self.config().login.attempts_retention_secs as i64 * 1000,
                )
                .await?,
        };
        // Whatever was erased since the last sweep (expired data, images handed out,
        // templates dropped at a decision) leaves the files too, not only the tables:
        // at most one sweep interval after it was deleted.
        self.store().erase_checkpoint().await?;
        Ok(report)
    }

    /// Deletes the vault's collection keys whose collection does not exist (older than
    /// [`ORPHAN_KEY_GRACE_MS`]).
    async fn delete_orphan_keys(&self, now: i64) -> Result<u64> {
        let live: HashSet<String> = self
            .store()
            .collection_ids()
            .await?
            .into_iter()
            .map(|(_, uid)| collection_key_ref(&uid))
            .collect();
        let mut n = 0;
        for e in self.store().vault().entries("collection:").await? {
            if !live.contains(&e.key_ref)
                && now - e.created_ms > ORPHAN_KEY_GRACE_MS
                && self.store().vault().delete(&e.key_ref).await?
            {
                n += 1;
            }
        }
        Ok(n)
    }
}
