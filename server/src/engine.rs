//! Scheduling: every accepted request runs at most once, in the background. Requests of one
//! queue (service, method, url, queue name) run one at a time in arrival order; the rest start
//! at once, bounded by a concurrency limit (the excess waits as `pending`). A request is
//! claimed in the store with a lease before it runs, so that several instances sharing a store
//! never run the same request, nor two of one queue at once.

use crate::clock::now_ms;
use crate::keyring::{Keyring, KeyringError};
use crate::shares::{Held, ShareNames, Shares};
use crate::store::{Claim, Db, KeyRecord, Outcome, Record, StoreError};
use crate::upstream::{answered, Upstream};
use serde_json::Value;
use skapi_core::wire::{Chunk, Status};
use skapi_core::{ApiError, ErrorCode, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch, Notify, Semaphore};
use tracing::Instrument;

/// How a running request is stopped from outside: the error it ends with, and where to say
/// that its record is written.
type Stop = (ApiError, oneshot::Sender<()>);

pub struct Engine {
    db: Db,
    keyring: Arc<Keyring>,
    upstream: Upstream,
    permits: Arc<Semaphore>,
    /// What each caller and key may hold of the permits (`crate::shares`).
    shares: Shares,
    /// Queues with a worker: whether new work arrived since the worker last looked, and whose
    /// shares the worker's runs count under (the latest request's).
    queues: Mutex<HashMap<String, QueueState>>,
    /// Requests running in this process, and how to cancel each (the runner acknowledges once
    /// the record is written).
    running: Mutex<HashMap<String, oneshot::Sender<Stop>>>,
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
    /// Claims being made or requests running in this process, and a wake-up when that changes.
    busy: AtomicUsize,
    idle: Notify,
    /// Each key's requests of the last hour by outcome, for the dashboard.
    pub usage: crate::usage::Usage,
    /// Requests just finished here, for the poll that usually follows.
    pub recent: crate::recent::Recent,
}

/// Counts one claim-and-run in [`Engine::busy`] until dropped (a drain waits for it).
struct Busy(Arc<Engine>);

impl Busy {
    fn enter(engine: &Arc<Engine>) -> Busy {
        engine.busy.fetch_add(1, Ordering::SeqCst);
        Busy(engine.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

/// Room to run one unqueued request at once, taken before its record is written (as `running`
/// under `claim`: one write instead of an insert and a claim). Counts as busy until it runs or
/// is dropped, so a drain waits for it.
pub struct Start {
    busy: Busy,
    permit: tokio::sync::OwnedSemaphorePermit,
    share: Held,
    pub claim: Claim,
}

/// A queue's worker: woken since it last looked, and the shares its runs count under.
struct QueueState {
    woken: bool,
    names: ShareNames,
}

/// What accepting a request already holds when it starts at once: the request checked and its
/// key as read then (one read and one parse less).
pub struct Ready {
    pub request: Request,
    pub key: KeyRecord,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// It had not started and never will.
    BeforeSending,
    /// It was running; the call was aborted.
    WhileRunning,
    /// It had already finished, or runs in another process.
    NotRemoved,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An unqueued pending request older than this is picked up by any instance.
const IDLE_AFTER_MS: u64 = 2_000;

/// Removes a request from the running registry however its run ends.
struct Running<'a> {
    engine: &'a Engine,
    id: &'a str,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        lock(&self.engine.running).remove(self.id);
        // A stream's watchers learn that it ended (its end is written by now).
        lock(&self.engine.streams).remove(self.id);
    }
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
            busy: AtomicUsize::new(0),
            idle: Notify::new(),
            usage: Default::default(),
            recent: Default::default(),
        })
    }

    /// Stops taking work: no pending request is claimed from now on (it stays pending, for the
    /// next start or another instance); running ones go on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves once nothing is being claimed or run in this process.
    pub async fn drained(&self) {
        loop {
            let changed = self.idle.notified();
            if self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            changed.await;
        }
    }

    /// Ends every request still running here with `INTERRUPTED` (its call is dropped), and
    /// logs each: the server is stopping before they finished.
    pub async fn interrupt_running(&self, why: &str) {
        let stops: Vec<(String, oneshot::Sender<Stop>)> = lock(&self.running).drain().collect();
        for (id, stop) in stops {
            tracing::warn!(id, why, "request interrupted by the shutdown; it is not sent again");
            let error = ApiError::new(ErrorCode::Interrupted, "The server stopped while this request was running; it was not sent again.");
            let (ack, acked) = oneshot::channel();
            if stop.send((error, ack)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), acked).await;
            }
        }
    }

    /// Lets secrets go to this one private address (the demo's stand-ins on this server).
    pub fn allow_upstream(&self, addr: std::net::SocketAddr) {
        self.upstream.allow(addr);
    }

    /// A watch on a streamed request: its value is the last stored `seq`, and it closes once
    /// the stream's end is written here (or the request was cancelled before it ran). Made
    /// before the stream starts when a reader comes first, so that each reader is woken by its
    /// own request's progress alone.
    pub fn watch_stream(&self, id: &str) -> watch::Receiver<u64> {
        lock(&self.streams).entry(id.to_owned()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// How many streams are watched or run here now.
    pub fn watched_streams(&self) -> usize {
        lock(&self.streams).len()
    }

    /// A reader of `id` has gone: a watch made for a stream that does not run here goes with
    /// its last reader.
    pub fn unwatch_stream(&self, id: &str) {
        let mut streams = lock(&self.streams);
        if streams.get(id).is_some_and(|w| w.receiver_count() == 0) && !lock(&self.running).contains_key(id) {
            streams.remove(id);
        }
    }

    /// Cancels a request: a pending one is never sent; a running one is aborted.
    pub async fn cancel(&self, id: &str) -> Result<Cancel, StoreError> {
        let error = ApiError::new(ErrorCode::Canceled, "The request was cancelled before it was sent.");
        if self.db.call(|s| s.fail_pending(id, &error, now_ms())).await? {
            // Its readers learn that it ended without a stream.
            lock(&self.streams).remove(id);
            return Ok(Cancel::BeforeSending);
        }
        let Some(abort) = lock(&self.running).remove(id) else {
            return Ok(Cancel::NotRemoved);
        };
        let (ack, acked) = oneshot::channel();
        let canceled = ApiError::new(ErrorCode::Canceled, "The request was cancelled while it ran; the call was aborted.");
        if abort.send((canceled, ack)).is_err() {
            return Ok(Cancel::NotRemoved);
        }
        // The runner writes the record, then answers; a dropped runner answers too (Err).
        let _ = tokio::time::timeout(Duration::from_secs(10), acked).await;
        Ok(Cancel::WhileRunning)
    }

    /// Deletes records `grace` after they expired, every `interval`, for as long as the
    /// engine lives.
    pub fn spawn_purger(self: &Arc<Self>, interval: Duration, grace: Duration) {
        let engine = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(engine) = engine.upgrade() else { return };
                let cutoff = now_ms().saturating_sub(grace.as_millis() as u64);
                match engine.db.call(|s| s.purge_expired(cutoff)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "expired records purged"),
                    Err(e) => tracing::error!(error = %e, "purging expired records failed"),
                }
            }
        });
    }

    /// After a restart: a request that was `running` may or may not have reached the third
    /// party, so it ends `INTERRUPTED` rather than being sent twice; `pending` ones run again,
    /// in arrival order.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let interrupted = ApiError::new(ErrorCode::Interrupted, "The server stopped while this request was running; it was not sent again.");
        let now = now_ms();
        // Alone on its store, this process knows that whatever runs was its own; with a shared
        // store another instance may be running it, and only a lease running out tells.
        let n = if self.db.store().shared() { 0 } else { self.db.call(|s| s.fail_running(&interrupted, now)).await? };
        if n > 0 {
            tracing::warn!(count = n, "requests interrupted by a previous stop marked failed");
        }
        for record in self.db.call(|s| s.pending()).await? {
            // A queue's worker finds its records itself; one dispatch per queue is enough.
            let names = ShareNames::new(std::slice::from_ref(&record.new.caller), &record.new.service, &record.new.key_name);
            self.dispatch(record.new.id, record.new.queue_key, names);
        }
        Ok(())
    }

    /// Room to start an unqueued request at once — its shares and a free permit, not
    /// draining — or `None`: then it is written `pending` and dispatched.
    pub fn start_now(self: &Arc<Self>, names: &ShareNames) -> Option<Start> {
        let share = self.shares.try_take(names)?;
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let busy = Busy::enter(self);
        // Checked once counted busy: a drain that began meanwhile waits for this one.
        (!self.draining()).then(|| Start { busy, permit, share, claim: self.claim() })
    }

    /// Runs a request whose record was written `running` under `start`'s claim, with the
    /// request and key its acceptance read.
    pub fn run_started(self: &Arc<Self>, record: Record, start: Start, ready: Ready) {
        let ready = Some(ready);
        let Start { busy, permit, share, .. } = start;
        let span = tracing::Span::current();
        let engine = self.clone();
        tokio::spawn(
            async move {
                engine.run_claimed(record, permit, ready).await;
                drop(share);
                drop(busy);
            }
            .instrument(span),
        );
    }

    /// Starts a request that was just written as `pending`. A queued one is not handed over by
    /// id: the queue's worker takes the oldest pending record of its queue from the store, so
    /// the order is the order of acceptance whatever order the handlers get here in.
    pub fn dispatch(self: &Arc<Self>, id: String, queue_key: Option<String>, names: ShareNames) {
        if self.draining() {
            return;
        }
        // The work carries the span of whatever dispatched it (an HTTP request's id).
        let span = tracing::Span::current();
        let Some(queue_key) = queue_key else {
            let engine = self.clone();
            tokio::spawn(async move { engine.run(&id, &names).await }.instrument(span));
            return;
        };
        let mut queues = lock(&self.queues);
        if let Some(queue) = queues.get_mut(&queue_key) {
            queue.woken = true;
            if names != ShareNames::default() {
                queue.names = names;
            }
            return;
        }
        queues.insert(queue_key.clone(), QueueState { woken: false, names });
        tokio::spawn(self.clone().queue_worker(queue_key).instrument(span));
    }

    fn lease_until(&self, now: u64) -> u64 {
        now + self.lease.as_millis() as u64
    }

    /// A new claim: now, with a fresh lease, under a token no other claim has.
    fn claim(&self) -> Claim {
        let now = now_ms();
        let token = format!("{}.{}", self.instance, self.claims.fetch_add(1, Ordering::Relaxed));
        Claim { now, lease_until: self.lease_until(now), token }
    }

    async fn queue_worker(self: Arc<Self>, queue_key: String) {
        // A claim whose answer was lost to an outage, to be asked again as it was.
        let mut unanswered: Option<Claim> = None;
        loop {
            let names = lock(&self.queues).get(&queue_key).map(|q| q.names).unwrap_or_default();
            let share = self.shares.take(&names).await;
            let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let busy = Busy::enter(&self);
            if self.draining() {
                lock(&self.queues).remove(&queue_key);
                return;
            }
            let claim = unanswered.take().unwrap_or_else(|| self.claim());
            // Claimed only while nothing of this queue runs — here or in another instance.
            match self.db.call(|s| s.claim_next_in_queue(&queue_key, &claim)).await {
                Ok(Some(record)) => {
                    self.run_claimed(record, permit, None).await;
                    drop(share);
                }
                Ok(None) => {
                    drop(permit);
                    drop(share);
                    drop(busy);
                    // Retire unless work arrived while this worker was looking.
                    let mut queues = lock(&self.queues);
                    match queues.get_mut(&queue_key) {
                        Some(queue) if queue.woken => queue.woken = false,
                        _ => {
                            queues.remove(&queue_key);
                            return;
                        }
                    }
                }
                Err(e) => {
                    drop(permit);
                    tracing::error!(queue = queue_key, error = %e, "queue could not be read; retrying");
                    if matches!(e, StoreError::Unavailable(_)) {
                        unanswered = Some(claim);
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Runs a request without a queue, if it is still pending.
    async fn run(self: &Arc<Self>, id: &str, names: &ShareNames) {
        // Shares first: waiting for them holds no permit.
        let _share = self.shares.take(names).await;
        let permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let _busy = Busy::enter(self);
        if self.draining() {
            return;
        }
        let claim = self.claim();
        let mut backoff = Backoff::default();
        loop {
            match self.db.call(|s| s.claim(id, &claim)).await {
                Ok(Some(record)) => return self.run_claimed(record, permit, None).await,
                Ok(None) => return,
                // The claim may have been taken though its answer was lost: asked again as it
                // was once the store is back, it tells (a request is never left running unrun).
                Err(StoreError::Unavailable(e)) if !self.draining() => {
                    tracing::warn!(id, error = e, "the store is unavailable; the claim will be asked again");
                    backoff.wait().await;
                }
                Err(e) => return tracing::error!(id, error = %e, "request could not be claimed"),
            }
        }
    }

    async fn run_claimed(&self, record: Record, _permit: tokio::sync::OwnedSemaphorePermit, ready: Option<Ready>) {
        let id = record.new.id.clone();
        if let Err(e) = self.try_run(record, ready).await {
            tracing::error!(id, error = %e, "request could not be run");
            let outcome = failure(ErrorCode::ServerError, "The server failed while running this request.");
            let _ = self.db.call(|s| s.finish(&id, &outcome, now_ms())).await;
        }
    }

    /// Runs a request this instance has claimed (it is `running`, leased to us): the record
    /// as the claim returned it.
    async fn try_run(&self, record: Record, ready: Option<Ready>) -> Result<(), StoreError> {
        let id = record.new.id.as_str();
        let (abort, aborted) = oneshot::channel::<Stop>();
        lock(&self.running).insert(id.to_owned(), abort);
        if record.new.request.stream == Some(true) {
            // Readers that came first already watch it.
            lock(&self.streams).entry(id.to_owned()).or_insert_with(|| watch::channel(0).0);
        }
        let registered = Running { engine: self, id };
        let now = now_ms();
        if now >= record.new.expires {
            let outcome = failure(ErrorCode::Expired, "The request expired before it could run.");
            self.db.call(|s| s.finish(id, &outcome, now)).await?;
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(record.new.expires - now);
        let mut ack = None;
        let outcome = tokio::select! {
            outcome = self.execute(&record.new, ready) => outcome,
            Ok((error, acknowledge)) = aborted => {
                ack = Some(acknowledge);
                Outcome::Failed { error, status_code: None, body: None, truncated: false }
            }
            _ = tokio::time::sleep_until(deadline) => {
                failure(ErrorCode::Expired, "The request expired while it ran; the call was abandoned.")
            }
        };
        match &outcome {
            Outcome::Resolved { status_code, .. } => tracing::info!(id, status_code, "request resolved"),
            Outcome::Failed { error, status_code, .. } => tracing::info!(id, code = error.code.as_str(), status_code, "request failed"),
        }
        self.usage.ended(&record.new.service, &record.new.key_name, outcome.label(), now_ms());
        let ended = self.record_end(id, &outcome, record.new.expires).await?;
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
        drop(registered);
        if let Some(updated) = ended {
            let status = match outcome {
                Outcome::Resolved { .. } => Status::Resolved,
                Outcome::Failed { .. } => Status::Failed,
            };
            self.recent.finished(Record { status, outcome: Some(outcome), updated, ..record });
        }
        Ok(())
    }

    /// Writes how a request ended. While the store is unavailable (a database restart) it tries
    /// again — the request stays registered as running here meanwhile, so its lease is renewed —
    /// until the record's own expiry: an answer the third party gave is not lost to an outage.
    /// Returns the time it was written at, when this write is what ended the request.
    async fn record_end(&self, id: &str, outcome: &Outcome, give_up_at: u64) -> Result<Option<u64>, StoreError> {
        let mut backoff = Backoff::default();
        loop {
            let now = now_ms();
            match self.db.call(|s| s.finish(id, outcome, now)).await {
                Err(StoreError::Unavailable(e)) if now_ms() < give_up_at => {
                    tracing::warn!(id, error = e, "the store is unavailable; the request's end will be written once it is back");
                    backoff.wait().await;
                }
                other => return other.map(|ended| ended.then_some(now)),
            }
        }
    }

    /// Keeps the leases of this instance's running requests fresh, ends requests whose lease ran
    /// out (their instance died), and picks up work nobody is doing (a queue left by a dead
    /// instance, a request accepted by one that died before starting it).
    pub fn spawn_maintenance(self: &Arc<Self>) {
        let engine = Arc::downgrade(self);
        // At least once a second whatever the lease: work an instance left (a drained queue, a
        // dead instance's pending requests) is picked up that soon.
        let every = (self.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(1));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(engine) = engine.upgrade() else { return };
                let now = now_ms();
                let mine: Vec<String> = lock(&engine.running).keys().cloned().collect();
                let lease_until = engine.lease_until(now);
                let interrupted = ApiError::new(ErrorCode::Interrupted, "The server running this request stopped; it was not sent again.");
                let work = engine
                    .db
                    .call(|s| {
                        Box::pin(async move {
                            s.renew_leases(&mine, lease_until).await?;
                            s.fail_expired_leases(&interrupted, now).await?;
                            s.idle_work(now.saturating_sub(IDLE_AFTER_MS)).await
                        })
                    })
                    .await;
                match work {
                    Ok((queues, ids)) => {
                        // Work left idle (its instance gone) counts under no caller of its own.
                        for queue_key in queues {
                            engine.dispatch(String::new(), Some(queue_key), ShareNames::default());
                        }
                        for id in ids {
                            engine.dispatch(id, None, ShareNames::default());
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "lease upkeep failed"),
                }
            }
        });
    }

    /// Re-reads the key (it may have changed since acceptance), re-checks where the secret may
    /// go, and sends. A request that starts as it is accepted comes `ready`: its key was read
    /// a moment ago.
    async fn execute(&self, record: &crate::store::NewRecord, ready: Option<Ready>) -> Outcome {
        if let Some(Ready { request, key }) = ready {
            let opened = self.keyring.unseal(&key).map(|secret| Some((key, secret)));
            return self.send(record, &request, opened).await;
        }
        let request = match Request::from_wire(&record.request) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed { error: e, status_code: None, body: None, truncated: false },
        };
        let mut backoff = Backoff::default();
        let opened = loop {
            match self.keyring.open(&record.service, &record.key_name).await {
                // The store is away: the request stays running under its lease and waits for it
                // (its expiry and a cancel still end it), rather than failing for it.
                Err(KeyringError::Store(StoreError::Unavailable(e))) => {
                    tracing::warn!(id = record.id, error = e, "the store is unavailable; the request waits for its key");
                    backoff.wait().await;
                }
                other => break other,
            }
        };
        self.send(record, &request, opened).await
    }

    /// Sends `request` with the key found for it, if it still may go where it goes.
    async fn send(&self, record: &crate::store::NewRecord, request: &Request, opened: Result<Option<(KeyRecord, String)>, KeyringError>) -> Outcome {
        let (key, secret) = match opened {
            Ok(Some(found)) => found,
            Ok(None) => return failure(ErrorCode::NotExists, format!("The client secret \"{}\" no longer exists.", record.key_name)),
            Err(e) => {
                tracing::error!(key = record.key_name, error = %e, "client secret could not be opened");
                return failure(ErrorCode::ServerError, "The client secret could not be opened.");
            }
        };
        if let Err(e) = crate::destination::check(&key.destinations, &request.url) {
            return Outcome::Failed { error: e, status_code: None, body: None, truncated: false };
        }
        // A configured destination's host only: paths and queries carry caller data, and any
        // other host is the caller's choice (a label each would grow the metrics without bound).
        let host = crate::destination::metric_host(&key.destinations, &request.url);
        let started = std::time::Instant::now();
        let outcome = if request.stream { self.stream(&record.id, request, &secret).await } else { self.upstream.send(request, &secret).await };
        crate::metrics::upstream_call(&host, outcome.label(), started.elapsed());
        outcome
    }

    /// Sends a streamed request and keeps its answer as it arrives: each piece (redacted,
    /// whole characters) is a chunk written durably before anyone can read it. It ends with the
    /// status and no body (the chunks are the body); a failure keeps the text so far too.
    async fn stream(&self, id: &str, request: &Request, secret: &str) -> Outcome {
        let answer = match self.upstream.send_streaming(request, secret).await {
            Ok(answer) => answer,
            Err(failed) => return failed,
        };
        let mut pieces = Pieces::read(answer);
        let (mut seq, mut text) = (0, String::new());
        let ended = loop {
            let (piece, end) = pieces.next_chunk().await;
            if !piece.is_empty() {
                seq += 1;
                let chunk = Chunk { seq, txt: piece };
                if let Err(failed) = self.store_chunk(id, &chunk).await {
                    return failed;
                }
                if let Some(watchers) = lock(&self.streams).get(id) {
                    watchers.send_replace(seq);
                }
                text.push_str(&chunk.txt);
            }
            if let Some(end) = end {
                break end;
            }
        };
        let (status_code, truncated) = (pieces.status_code, pieces.finished().await);
        let outcome = ended.unwrap_or_else(|| answered(status_code, Value::Null, truncated));
        match outcome {
            // What the third party wrote before the failure is kept in the record too.
            Outcome::Failed { error, status_code: code, truncated: cut, .. } => {
                Outcome::Failed { error, status_code: code.or(Some(status_code)), body: Some(Value::String(text)), truncated: cut || truncated }
            }
            resolved => resolved,
        }
    }

    /// Writes one chunk durably, waiting out an outage of the store.
    async fn store_chunk(&self, id: &str, chunk: &Chunk) -> Result<(), Outcome> {
        let (mut backoff, mut retried) = (Backoff::default(), false);
        loop {
            match self.db.call(|s| s.append_chunks(id, std::slice::from_ref(chunk))).await {
                Ok(()) => return Ok(()),
                // Written by the try whose answer the outage swallowed.
                Err(StoreError::Exists(_)) if retried => return Ok(()),
                // The store is away: the stream waits for it (its expiry and a cancel still end
                // it).
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(id, error = e, "the store is unavailable; the stream waits for it");
                    backoff.wait().await;
                    retried = true;
                }
                Err(e) => {
                    tracing::error!(id, error = %e, "a chunk could not be stored");
                    return Err(failure(ErrorCode::ServerError, "The answer could not be stored."));
                }
            }
        }
    }
}

/// Pieces of a streamed answer smaller than this wait up to [`GATHER`] for more to be stored
/// with them (an answer written a byte at a time would otherwise be a row a byte).
const SMALL_CHUNK: usize = 32;
const GATHER: Duration = Duration::from_millis(3);
/// The largest chunk stored at once.
const MAX_CHUNK: usize = 64 * 1024;

/// A streamed answer read on a task of its own: what arrives while a chunk is being written
/// waits in a channel and is stored with the next one. The task ends with whether the answer
/// was cut (it is aborted if the run is).
struct Pieces {
    status_code: u16,
    arrived: tokio::sync::mpsc::Receiver<Result<Option<String>, Outcome>>,
    reader: tokio::task::JoinHandle<bool>,
}

impl Pieces {
    fn read(mut answer: crate::upstream::Streaming) -> Pieces {
        let status_code = answer.status_code;
        let (tx, arrived) = tokio::sync::mpsc::channel(256);
        let reader = tokio::spawn(async move {
            loop {
                let next = answer.next().await;
                let end = !matches!(next, Ok(Some(_)));
                if tx.send(next).await.is_err() || end {
                    return answer.truncated;
                }
            }
        });
        Pieces { status_code, arrived, reader }
    }

    /// The next chunk to store — every piece that has arrived, and for a small one what
    /// arrives within [`GATHER`] — and, once the answer is over, how it ended (`Some(None)`:
    /// whole; `Some(Some(outcome))`: failed).
    async fn next_chunk(&mut self) -> (String, Option<Option<Outcome>>) {
        let mut chunk = String::new();
        let mut deadline = None;
        loop {
            let next = if chunk.is_empty() {
                self.arrived.recv().await
            } else if let Ok(next) = self.arrived.try_recv() {
                Some(next)
            } else if chunk.len() < SMALL_CHUNK {
                let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + GATHER);
                match tokio::time::timeout_at(until, self.arrived.recv()).await {
                    Ok(next) => next,
                    Err(_) => return (chunk, None),
                }
            } else {
                return (chunk, None);
            };
            match next {
                Some(Ok(Some(piece))) => chunk.push_str(&piece),
                Some(Ok(None)) => return (chunk, Some(None)),
                Some(Err(failed)) => return (chunk, Some(Some(failed))),
                None => return (chunk, Some(Some(failure(ErrorCode::ServerError, "The answer could not be read.")))),
            }
            if chunk.len() >= MAX_CHUNK {
                return (chunk, None);
            }
        }
    }

    /// Whether the answer was cut, once it has ended.
    async fn finished(&mut self) -> bool {
        (&mut self.reader).await.unwrap_or(false)
    }
}

impl Drop for Pieces {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
