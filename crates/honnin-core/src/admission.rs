//! Admission control for the engine: CPU-heavy work is bounded, memory-heavy work is
//! budgeted, and abandoned work stops.
//!
//! Every request that decodes an image and runs the networks takes one **CPU slot**
//! (by default as many as the machine has cores) and reserves its **working set** from
//! a memory budget (the decoded size of its image from the header, plus the detector's
//! input: [`honnin_engine::ImageHeader::working_set_bytes`]) before its work starts.
//! Requests wait in a bounded **queue** for both; when the queue is full the request is
//! refused at once with `ServiceUnavailable` (HTTP 503 + `Retry-After`) instead of
//! piling up memory and latency.
//!
//! Work runs on the blocking pool. If the request is dropped (its client disconnected,
//! or the server's request timeout fired) while it waits, it never starts; while it
//! runs, it stops at the next stage boundary (decode → detect → each face's align and
//! embed): a [`Cancel`] flag is set when the request's future is dropped.
//!
//! Liveness frames are not admitted here: a stream's frames are small (at most
//! 512 KiB of JPEG of the announced size, checked from the header before decoding),
//! paced by the client and bounded per session.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{CoreError, Result};

/// Admission tunables (`service.admission` in the configuration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", default)]
pub struct AdmissionConfig {
    /// Engine jobs that run at once; 0 = one per core (`available_parallelism`).
    pub max_concurrent: usize,
    /// Jobs that may wait for a slot or for memory; more are refused with 503.
    /// 0 = 4 per running slot.
    pub max_queued: usize,
    /// Memory the running and admitted jobs may reserve together, MiB (the largest
    /// image honnin accepts, 40 MP, reserves about 390 MiB).
    pub memory_budget_mib: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            max_concurrent: 0,
            max_queued: 0,
            memory_budget_mib: 1536,
        }
    }
}

/// Set when the request that owns a job is gone; the job checks it between stages.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the request that owns the job is gone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Cancelled)` once cancelled: use with `?` between stages.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            metrics::counter!("honnin_engine_cancelled_total").increment(1);
            Err(CoreError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// A guard that cancels when dropped (held by the request's future).
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }
}

/// Cancels its [`Cancel`] when dropped, unless [`CancelOnDrop::disarm`]ed.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl CancelOnDrop {
    /// The job finished: nothing to cancel.
    pub fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        (self.0).0.store(true, Ordering::Relaxed);
    }
}

/// The admission gate of one process.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    /// Memory units are MiB.
    memory_mib: u64,
    max_queued: usize,
    queued: AtomicUsize,
    running: usize,
    /// Jobs that began their work (passed the first cancellation check).
    started: AtomicUsize,
}

/// What an admitted job holds until it ends (moved into the blocking task, so the
/// resources count as used until the work really stops).
#[derive(Debug)]
pub struct Admitted {
    _slot: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

/// Decrements the queue count however the wait ends (admitted, refused, dropped).
struct QueueGuard<'a>(&'a AtomicUsize);

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        let left = self.0.fetch_sub(1, Ordering::Relaxed) - 1;
        metrics::gauge!("honnin_engine_queue_depth").set(left as f64);
    }
}

impl Admission {
    /// The gate for `cfg`: `max_concurrent` slots (0: one per core), `max_queued` waiting
    /// jobs (0: 4 per slot), `memory_budget_mib` of memory (at least 64 MiB).
    pub fn new(cfg: &AdmissionConfig) -> Admission {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let running = if cfg.max_concurrent == 0 {
            cores
        } else {
            cfg.max_concurrent
        };
        let max_queued = if cfg.max_queued == 0 {
            4 * running
        } else {
            cfg.max_queued
        };
        let memory_mib = cfg.memory_budget_mib.clamp(64, u32::MAX as u64);
        Admission {
            slots: Arc::new(Semaphore::new(running)),
            memory: Arc::new(Semaphore::new(memory_mib as usize)),
            memory_mib,
            max_queued,
            queued: AtomicUsize::new(0),
            running,
            started: AtomicUsize::new(0),
        }
    }

    /// Jobs that may run at once.
    pub fn slots(&self) -> usize {
        self.running
    }

    /// Waits for a slot and `bytes` of the memory budget (a job larger than the whole
    /// budget waits for all of it and runs alone). Refused with `ServiceUnavailable`
    /// when `max_queued` jobs already wait.
    pub async fn admit(&self, bytes: u64) -> Result<Admitted> {
        let waiting = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        let _queued = QueueGuard(&self.queued);
        metrics::gauge!("honnin_engine_queue_depth").set(waiting as f64);
        // A job that can start at once is never refused.
        let free_now = self.slots.available_permits() > 0;
        if waiting > self.max_queued && !free_now {
            metrics::counter!("honnin_engine_rejected_total", "why" => "queue_full").increment(1);
            return Err(CoreError::ServiceUnavailable(format!(
                "the server is at capacity ({} jobs running, {} waiting); retry shortly",
                self.running,
                waiting - 1
            )));
        }
        let mib = bytes.div_ceil(1 << 20).clamp(1, self.memory_mib) as u32;
        let memory = self
            .memory
            .clone()
            .acquire_many_owned(mib)
            .await
            .map_err(|_| CoreError::Internal("admission closed".into()))?;
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CoreError::Internal("admission closed".into()))?;
        Ok(Admitted {
            _slot: slot,
            _memory: memory,
        })
    }

    /// Counts a job that began its work (called by the pipeline).
    pub fn note_started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs that began their work since start-up (a job abandoned while it waited
    /// never does).
    pub fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Jobs waiting now.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// MiB of the memory budget reserved now.
    pub fn memory_reserved_mib(&self) -> u64 {
        self.memory_mib - self.memory.available_permits() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn gate(running: usize, queued: usize, mib: u64) -> Arc<Admission> {
        Arc::new(Admission::new(&AdmissionConfig {
            max_concurrent: running,
            max_queued: queued,
            memory_budget_mib: mib,
        }))
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let g = gate(1, 2, 1024);
        let running = g.admit(1).await.unwrap();
        // Two may wait…
        let w1 = tokio::spawn({
            let g = g.clone();
            async move { g.admit(1).await.map(|_| ()) }
        });
        let w2 = tokio::spawn({
            let g = g.clone();
            async move { g.admit(1).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(g.queued(), 2);
        // …the third is refused without waiting.
        let e = g.admit(1).await.unwrap_err();
        assert_eq!(e.code(), "ServiceUnavailable");
        drop(running);
        w1.await.unwrap().unwrap();
        w2.await.unwrap().unwrap();
        assert_eq!(g.queued(), 0);
    }

    #[tokio::test]
    async fn memory_is_reserved_until_the_job_ends() {
        let g = gate(4, 8, 100);
        let big = g.admit(80 << 20).await.unwrap();
        assert_eq!(g.memory_reserved_mib(), 80);
        // 30 MiB more does not fit: it waits although slots are free.
        let waiter = tokio::spawn({
            let g = g.clone();
            async move { g.admit(30 << 20).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(big);
        waiter.await.unwrap().unwrap();
        // Larger than the whole budget: runs alone instead of never.
        let huge = g.admit(10_000 << 20).await.unwrap();
        assert_eq!(g.memory_reserved_mib(), 100);
        drop(huge);
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_the_queue() {
        let g = gate(1, 4, 1024);
        let running = g.admit(1).await.unwrap();
        let w = tokio::spawn({
            let g = g.clone();
            async move { g.admit(1).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(g.queued(), 1);
        w.abort();
        let _ = w.await;
        assert_eq!(g.queued(), 0);
        drop(running);
    }

    #[test]
    fn cancel_on_drop_sets_the_flag_unless_disarmed() {
        let c = Cancel::default();
        drop(c.on_drop());
        assert!(c.is_cancelled());
        assert_eq!(c.check().unwrap_err().code(), "Cancelled");
        let c = Cancel::default();
        c.on_drop().disarm();
        assert!(!c.is_cancelled());
    }
}
