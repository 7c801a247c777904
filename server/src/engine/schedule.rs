//! What starts when: an unqueued request at once when there is room (else when a permit and
//! its caller's and key's shares free up); a queue's requests one at a time, by a worker that
//! takes the oldest pending record of its queue from the store.

use super::{lock, Backoff, Engine, Ready, Start};
use crate::clock::now_ms;
use crate::domain::{Claim, Record};
use crate::shares::ShareNames;
use crate::store::StoreError;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

/// A queue's worker: woken since it last looked, and the shares its runs count under.
pub(super) struct QueueState {
    woken: bool,
    names: ShareNames,
}

impl Engine {
    /// Room to start an unqueued request at once — its shares and a free permit, not
    /// draining — or `None`: then it is written `pending` and dispatched.
    pub fn start_now(self: &Arc<Self>, names: &ShareNames) -> Option<Start> {
        let share = self.shares.try_take(names)?;
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let tracked = self.work.token();
        // Checked once tracked: a drain that began meanwhile waits for this one.
        (!self.draining()).then(|| Start { tracked, permit, share, claim: self.claim() })
    }

    /// Runs a request whose record was written `running` under `start`'s claim, with the
    /// request and key its acceptance read.
    pub fn run_started(self: &Arc<Self>, record: Record, start: Start, ready: Ready) {
        let ready = Some(ready);
        let Start { tracked, permit, share, .. } = start;
        let span = tracing::Span::current();
        let engine = self.clone();
        self.work.spawn(
            async move {
                engine.run_claimed(record, permit, ready).await;
                drop(share);
                drop(tracked);
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
            self.work.spawn(async move { engine.run(&id, &names).await }.instrument(span));
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
        self.work.spawn(self.clone().queue_worker(queue_key).instrument(span));
    }

    pub(super) fn lease_until(&self, now: u64) -> u64 {
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
}
