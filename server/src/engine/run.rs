//! A claimed request's life: its key read again and its destination checked again, the call,
//! its end written (waiting out an outage of the store), and the ways it is stopped early — a
//! cancel, its expiry, the shutdown.

use super::{failure, lock, Backoff, Engine, Ready, Runner, Stop};
use crate::clock::now_ms;
use crate::destination::Destinations;
use crate::domain::{KeyRecord, NewRecord, Outcome, Record};
use crate::keyring::KeyringError;
use crate::store::StoreError;
use skapi_core::request::SkapiHeaders;
use skapi_core::wire::Status;
use skapi_core::{ApiError, ErrorCode, Request};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

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

impl Engine {
    /// Cancels a request: a pending one is never sent; a running one is aborted.
    pub async fn cancel(&self, id: &str) -> Result<Cancel, StoreError> {
        let error = ApiError::new(ErrorCode::Canceled, "The request was cancelled before it was sent.");
        if self.db.call(|s| s.fail_pending(id, &error, now_ms())).await? {
            // Its readers learn that it ended without a stream.
            lock(&self.streams).remove(id);
            return Ok(Cancel::BeforeSending);
        }
        let Some(Runner { stop: abort, .. }) = lock(&self.running).remove(id) else {
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

    pub(super) async fn run_claimed(&self, record: Record, _permit: tokio::sync::OwnedSemaphorePermit, ready: Option<Ready>) {
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
        // `executed` is the claim's time (a record is claimed to be sent); none would only make
        // the fence ask the store.
        lock(&self.running).insert(id.to_owned(), Runner { claimed: record.executed.unwrap_or(0), stop: abort });
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
        if !record.new.key_name.is_empty() {
            self.usage.ended(&record.new.service, &record.new.key_name, outcome.label(), now_ms());
        }
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

    /// Re-reads the key (it may have changed since acceptance), re-checks where the secret may
    /// go, and sends. A request that starts as it is accepted comes `ready`: its key was read
    /// a moment ago.
    async fn execute(&self, record: &NewRecord, ready: Option<Ready>) -> Outcome {
        if let Some(Ready { request, key }) = ready {
            let opened = self.keyring.unseal(&key).map(|secret| Some((key, secret)));
            return self.send(record, &request, opened).await;
        }
        let request = match Request::from_wire(&record.request) {
            Ok(r) => r,
            Err(e) => return Outcome::Failed { error: e, status_code: None, body: None, truncated: false },
        };
        if record.key_name.is_empty() {
            return self.send_keyless(record, &request).await;
        }
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
    async fn send(&self, record: &NewRecord, request: &Request, opened: Result<Option<(KeyRecord, String)>, KeyringError>) -> Outcome {
        let (key, secret) = match opened {
            Ok(Some(found)) => found,
            Ok(None) => return failure(ErrorCode::NotExists, format!("The client secret \"{}\" no longer exists.", record.key_name)),
            Err(e) => {
                tracing::error!(key = record.key_name, error = %e, "client secret could not be opened");
                return failure(ErrorCode::ServerError, "The client secret could not be opened.");
            }
        };
        // The key as it is now: its operator may have narrowed where it goes, or its rules.
        let allowed = crate::destination::check(&key.destinations, &request.url)
            .and_then(|()| key.request_schema.as_ref().map_or(Ok(()), |schema| crate::rules::check(schema, request)));
        if let Err(e) = allowed {
            return Outcome::Failed { error: e, status_code: None, body: None, truncated: false };
        }
        let (outcome, tokens) = self.call(record, request, &secret, &key.destinations, key.counts_days()).await;
        if let Some(tokens) = tokens.filter(|&n| n > 0) {
            self.count_tokens(&key, record, tokens).await;
        }
        outcome
    }

    /// Adds the tokens an answer used to the counters its request counted on (today's: a budget
    /// is per UTC day). Not counted if the store is away: the answer is not held back for it.
    async fn count_tokens(&self, key: &KeyRecord, record: &NewRecord, tokens: u64) {
        let counters: Vec<String> = crate::quota::counters(key, &record.counted_as).into_iter().map(|c| c.name).collect();
        let day = crate::quota::day(now_ms());
        if let Err(e) = self.db.call(|s| s.tokens_add(&counters, day, tokens)).await {
            tracing::warn!(id = record.id, tokens, error = %e, "the tokens an answer used could not be counted");
        }
    }

    /// Sends a request that names no secret, if its service still forwards such requests there
    /// (the operator's list as it is now: a change since acceptance holds for it too).
    async fn send_keyless(&self, record: &NewRecord, request: &Request) -> Outcome {
        let mut backoff = Backoff::default();
        let allowed = loop {
            match self.db.call(|s| s.forward_destinations(&record.service)).await {
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(id = record.id, error = e, "the store is unavailable; the request waits for its destinations");
                    backoff.wait().await;
                }
                other => break other,
            }
        };
        let allowed = match allowed {
            Ok(list) => list.unwrap_or_default(),
            Err(e) => {
                tracing::error!(service = record.service, error = %e, "forward destinations could not be read");
                return failure(ErrorCode::ServerError, "The service's forwarding could not be read.");
            }
        };
        if let Err(e) = crate::destination::check_keyless(&allowed, &request.url) {
            return Outcome::Failed { error: e, status_code: None, body: None, truncated: false };
        }
        // No secret: nothing to put in, nothing to redact.
        self.call(record, request, "", &Destinations::Only(allowed), false).await.0
    }

    /// The call itself, timed for the metrics under the host of the destination it went under;
    /// with `meter`, also the tokens its answer reports it used.
    async fn call(&self, record: &NewRecord, request: &Request, secret: &str, under: &Destinations, meter: bool) -> (Outcome, Option<u64>) {
        match self.still_claimed(&record.id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(id = record.id, "another instance ended this request while this one was held up; it is not sent");
                return (failure(ErrorCode::Interrupted, "Another server ended this request while this one was held up; it was not sent."), None);
            }
            Err(e) => {
                tracing::error!(id = record.id, error = %e, "the claim on a request could not be checked; it is not sent");
                return (failure(ErrorCode::ServerError, "The server could not confirm its claim on this request; it was not sent."), None);
            }
        }
        // A configured destination's host only: paths and queries carry caller data, and any
        // other host is the caller's choice (a label each would grow the metrics without bound).
        let host = crate::destination::metric_host(under, &request.url);
        let started = std::time::Instant::now();
        let told = told(request.skapi_headers, &record.caller, &record.service);
        let (outcome, tokens) = if request.stream {
            self.stream(&record.id, request, secret, &told, meter).await
        } else {
            let outcome = self.upstream.send(request, secret, &told).await;
            let tokens = match &outcome {
                Outcome::Resolved { body, .. } | Outcome::Failed { body: Some(body), .. } if meter => crate::quota::tokens_used(body),
                _ => None,
            };
            (outcome, tokens)
        };
        crate::metrics::upstream_call(&host, outcome.label(), started.elapsed());
        (outcome, tokens)
    }

    /// The fence before a request is sent: whether this instance still holds its claim. No other
    /// instance ends a request before its lease runs out, so within the first half of the
    /// claim's lease the answer is yes without asking. Later (this instance was held up: by the
    /// store, a key read, the machine), the store renews the lease only if the request still
    /// runs; one another instance has meanwhile ended, its lease taken for run out, is not sent.
    async fn still_claimed(&self, id: &str) -> Result<bool, StoreError> {
        let claimed = lock(&self.running).get(id).map_or(0, |runner| runner.claimed);
        if now_ms() < claimed.saturating_add(self.lease.as_millis() as u64 / 2) {
            return Ok(true);
        }
        let ids = [id.to_owned()];
        let mut backoff = Backoff::default();
        loop {
            let lease_until = self.lease_until(now_ms());
            match self.db.call(|s| s.renew_leases(&ids, lease_until)).await {
                // The store is away: the claim is checked once it is back (the record's expiry
                // and a cancel still end the wait).
                Err(StoreError::Unavailable(e)) => {
                    tracing::warn!(id, error = e, "the store is unavailable; the request waits to confirm its claim");
                    backoff.wait().await;
                }
                other => return other.map(|renewed| renewed == 1),
            }
        }
    }
}

/// The headers `skapiHeaders` asks for, from what the server verified when it accepted the
/// request: the user only for a signed-in caller (`sub:` in its record), the service it runs
/// under.
fn told(asked: SkapiHeaders, caller: &str, service: &str) -> Vec<(&'static str, String)> {
    let user = caller.strip_prefix("sub:").filter(|_| asked.user).map(|user| ("x-skapi-user", user.to_owned()));
    let service = asked.service.then(|| ("x-skapi-service", service.to_owned()));
    user.into_iter().chain(service).collect()
}
