//! Scheduling: every accepted request runs at most once, in the background. Requests of one
//! queue (service, method, url, queue name) run one at a time in arrival order; the rest start
//! at once, bounded by a concurrency limit (the excess waits as `pending`). A request is
//! claimed in the store with a lease before it runs, so that several instances sharing a store
//! never run the same request, nor two of one queue at once.
//!
//! By concern: `schedule` (what starts when), `run` (a claimed request's life, cancels),
//! `streams` (a streamed answer's chunks and their readers), `upkeep` (recovery, leases,
//! purging), `shutdown` (the drain). The work it starts is tracked by a `TaskTracker`, which
//! the drain waits on; its upkeep loops stop at a `CancellationToken`.

mod run;
mod schedule;
mod shutdown;
mod streams;
mod upkeep;

use crate::domain::{Claim, KeyRecord, Outcome};
use crate::keyring::Keyring;
use crate::shares::{Held, Shares};
use crate::store::Db;
use crate::upstream::Upstream;
use skapi_core::{ApiError, ErrorCode, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

pub use run::Cancel;

/// How a running request is stopped from outside: the error it ends with, and where to say
/// that its record is written.
type Stop = (ApiError, oneshot::Sender<()>);

/// A request running in this process.
struct Runner {
    /// When it was claimed: its lease counts from then.
    claimed: u64,
    /// How to stop it from outside (the runner acknowledges once the record is written).
    stop: oneshot::Sender<Stop>,
}

pub struct Engine {
    db: Db,
    keyring: Arc<Keyring>,
    upstream: Upstream,
    permits: Arc<Semaphore>,
    /// What each caller and key may hold of the permits (`crate::shares`).
    shares: Shares,
    /// Queues with a worker: whether new work arrived since the worker last looked, and whose
    /// shares the worker's runs count under (the latest request's).
    queues: Mutex<HashMap<String, schedule::QueueState>>,
    /// Requests running in this process.
    running: Mutex<HashMap<String, Runner>>,
    /// Streams running in this process, or awaited by a push reader (`csr-stream`) here: each
    /// one's last stored `seq`; dropped once the stream's end is written (or its last reader
    /// leaves before it started).
    streams: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// How long a claim on a running request lasts unless renewed.
    lease: Duration,
    /// Names this process's claims (random per start), and counts them.
    instance: String,
    claims: AtomicU64,
    /// Set when the server stops: nothing new is claimed; what runs finishes.
    draining: AtomicBool,
    /// Every request's run and every queue's worker, and a start being written: the drain waits
    /// for them.
    work: TaskTracker,
    /// The upkeep loops (leases, purging), stopped by `stop` once the work is done.
    upkeep: TaskTracker,
    stop: CancellationToken,
    /// Each key's requests of the last hour by outcome, for the dashboard.
    pub usage: crate::usage::Usage,
    /// Requests just finished here, for the poll that usually follows.
    pub recent: crate::recent::Recent,
}

/// Room to run one unqueued request at once, taken before its record is written (as `running`
/// under `claim`: one write instead of an insert and a claim). Tracked as work until it runs or
/// is dropped, so a drain waits for it.
pub struct Start {
    tracked: TaskTrackerToken,
    permit: tokio::sync::OwnedSemaphorePermit,
    share: Held,
    pub claim: Claim,
}

/// What accepting a request already holds when it starts at once: the request checked and its
/// key as read then (one read and one parse less).
pub struct Ready {
    pub request: Request,
    pub key: KeyRecord,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The wait between tries while the store is away: 200 ms, doubling up to a second, so that a
/// write lands within a second of the database coming back.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff(Duration::from_millis(200))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(1));
    }
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Outcome {
    Outcome::Failed { error: ApiError::new(code, message), status_code: None, body: None, truncated: false }
}

impl Engine {
    pub fn new(db: Db, keyring: Arc<Keyring>, upstream: Upstream, concurrency: usize, shares: Shares, lease: Duration) -> Arc<Engine> {
        Arc::new(Engine {
            db,
            keyring,
            upstream,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            shares,
            queues: Mutex::new(HashMap::new()),
            running: Mutex::new(HashMap::new()),
            streams: Mutex::new(HashMap::new()),
            lease,
            instance: {
                use chacha20poly1305::aead::rand_core::RngCore;
                format!("{:016x}", chacha20poly1305::aead::OsRng.next_u64())
            },
            claims: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            work: TaskTracker::new(),
            upkeep: TaskTracker::new(),
            stop: CancellationToken::new(),
            usage: Default::default(),
            recent: Default::default(),
        })
    }

    /// Lets secrets go to this one private address (the demo's stand-ins on this server).
    pub fn allow_upstream(&self, addr: std::net::SocketAddr) {
        self.upstream.allow(addr);
    }
}
