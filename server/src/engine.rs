//! Scheduling: every accepted request runs exactly once, in the background. Requests of one
//! queue (service, method, url, queue name) run one at a time in arrival order; the rest start
//! at once, bounded by a concurrency limit (the excess waits as `pending`).

use crate::clock::now_ms;
use crate::keyring::Keyring;
use crate::store::{Db, Outcome, StoreError};
use crate::upstream::Upstream;
use skapi_core::{ApiError, ErrorCode, Request};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// A queue's worker stops after this long without work (it is started again on demand).
const QUEUE_IDLE: Duration = Duration::from_secs(30);

pub struct Engine {
    db: Db,
    keyring: Arc<Keyring>,
    upstream: Upstream,
    permits: Arc<Semaphore>,
    /// One worker per active queue, fed in arrival order.
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<String>>>,
}

fn failure(code: ErrorCode, message: impl Into<String>) -> Outcome {
    Outcome::Failed { error: ApiError::new(code, message), status_code: None, body: None, truncated: false }
}

impl Engine {
    pub fn new(db: Db, keyring: Arc<Keyring>, upstream: Upstream, concurrency: usize) -> Arc<Engine> {
        Arc::new(Engine {
            db,
            keyring,
            upstream,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queues: Mutex::new(HashMap::new()),
        })
    }

    /// After a restart: a request that was `running` may or may not have reached the third
    /// party, so it ends `INTERRUPTED` rather than being sent twice; `pending` ones run again,
    /// in arrival order.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let interrupted = ApiError::new(
            ErrorCode::Interrupted,
            "The server stopped while this request was running; it was not sent again.",
        );
        let now = now_ms();
        let n = self.db.call(move |s| s.fail_running(&interrupted, now)).await?;
        if n > 0 {
            tracing::warn!(count = n, "requests interrupted by a previous stop marked failed");
        }
        for record in self.db.call(|s| s.pending()).await? {
            self.dispatch(record.new.id, record.new.queue_key);
        }
        Ok(())
    }

    /// Starts a request that was just written as `pending`.
    pub fn dispatch(self: &Arc<Self>, id: String, queue_key: Option<String>) {
        let Some(queue_key) = queue_key else {
            let engine = self.clone();
            tokio::spawn(async move { engine.run(&id).await });
            return;
        };
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let id = match queues.get(&queue_key) {
            Some(tx) => match tx.send(id) {
                Ok(()) => return,
                Err(mpsc::error::SendError(id)) => id,
            },
            None => id,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(id).expect("the receiver is alive");
        queues.insert(queue_key.clone(), tx);
        tokio::spawn(self.clone().queue_worker(queue_key, rx));
    }

    async fn queue_worker(self: Arc<Self>, queue_key: String, mut rx: mpsc::UnboundedReceiver<String>) {
        loop {
            let next = match tokio::time::timeout(QUEUE_IDLE, rx.recv()).await {
                Ok(Some(id)) => id,
                Ok(None) => return,
                Err(_idle) => {
                    // Retire under the map's lock, so no request is sent to a worker that left.
                    let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
                    match rx.try_recv() {
                        Ok(id) => id,
                        Err(_) => {
                            queues.remove(&queue_key);
                            return;
                        }
                    }
                }
            };
            self.run(&next).await;
        }
    }

    async fn run(&self, id: &str) {
        if let Err(e) = self.try_run(id).await {
            tracing::error!(id, error = %e, "request could not be run");
            let id = id.to_owned();
            let outcome = failure(ErrorCode::ServerError, "The server failed while running this request.");
            let _ = self.db.call(move |s| s.finish(&id, &outcome, now_ms())).await;
        }
    }

    async fn try_run(&self, id: &str) -> Result<(), StoreError> {
        let owned = id.to_owned();
        let Some(record) = self.db.call(move |s| s.get_record(&owned)).await? else {
            return Ok(());
        };
        if record.status != skapi_core::wire::Status::Pending {
            return Ok(());
        }
        let _permit = self.permits.clone().acquire_owned().await.expect("the semaphore is never closed");
        let now = now_ms();
        let owned = id.to_owned();
        if now >= record.new.expires {
            let outcome = failure(ErrorCode::Expired, "The request expired before it could run.");
            self.db.call(move |s| s.finish(&owned, &outcome, now)).await?;
            return Ok(());
        }
        if !self.db.call(move |s| s.mark_running(&owned, now)).await? {
            return Ok(());
        }
        let outcome = self.execute(&record.new).await;
        let owned = id.to_owned();
        self.db.call(move |s| s.finish(&owned, &outcome, now_ms())).await?;
        Ok(())
    }

    /// Re-reads the key (it may have changed since acceptance), re-checks where the secret may
    /// go, and sends.
    async fn execute(&self, record: &crate::store::NewRecord) -> Outcome {
        let request = match Request::from_wire(&record.request) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed { error: e, status_code: None, body: None, truncated: false },
        };
        let (key, secret) = match self.keyring.open(&record.service, &record.key_name).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                return failure(ErrorCode::NotExists, format!("The client secret \"{}\" no longer exists.", record.key_name))
            }
            Err(e) => {
                tracing::error!(key = record.key_name, error = %e, "client secret could not be opened");
                return failure(ErrorCode::ServerError, "The client secret could not be opened.");
            }
        };
        if let Err(e) = crate::destination::check(&key.destinations, &request.url) {
            return Outcome::Failed { error: e, status_code: None, body: None, truncated: false };
        }
        self.upstream.send(&request, &secret).await
    }
}
