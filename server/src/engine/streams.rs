//! Streamed answers: each piece the third party writes is stored as a chunk before anyone can
//! read it, and the push readers (`csr-stream`) of a stream are woken by its own progress.

use super::{failure, lock, Backoff, Engine};
use crate::domain::Outcome;
use crate::store::StoreError;
use crate::upstream::answered;
use serde_json::Value;
use skapi_core::wire::Chunk;
use skapi_core::{ErrorCode, Request};
use std::time::Duration;
use tokio::sync::watch;

impl Engine {
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

    /// Sends a streamed request and keeps its answer as it arrives: each piece (redacted,
    /// whole characters) is a chunk written durably before anyone can read it. It ends with the
    /// status and no body (the chunks are the body); a failure keeps the text so far too. With
    /// `meter`, the tokens its usage events report come with it.
    pub(super) async fn stream(&self, id: &str, request: &Request, secret: &str, told: &[(&str, String)], meter: bool) -> (Outcome, Option<u64>) {
        let answer = match self.upstream.send_streaming(request, secret, told).await {
            Ok(answer) => answer,
            Err(failed) => return (failed, None),
        };
        let mut pieces = Pieces::read(answer);
        let (mut seq, mut text) = (0, String::new());
        let ended = loop {
            let (piece, end) = pieces.next_chunk().await;
            if !piece.is_empty() {
                seq += 1;
                let chunk = Chunk { seq, txt: piece };
                if let Err(failed) = self.store_chunk(id, &chunk).await {
                    return (failed, None);
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
        let tokens = if meter { crate::quota::tokens_streamed(&text) } else { None };
        let outcome = match outcome {
            // What the third party wrote before the failure is kept in the record too.
            Outcome::Failed { error, status_code: code, truncated: cut, .. } => {
                Outcome::Failed { error, status_code: code.or(Some(status_code)), body: Some(Value::String(text)), truncated: cut || truncated }
            }
            resolved => resolved,
        };
        (outcome, tokens)
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
