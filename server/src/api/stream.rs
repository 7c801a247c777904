//! Streamed answers (2.x): a page of chunks for `csr-poll {id, since}`; `csr-stream` (ours),
//! which pushes the chunks to the reader as they are stored; and `csr-finalize`, which
//! replaces a finished stream's chunks by one stored body.

use super::body::Wire;
use super::record::named_record;
use super::{Caller, Failure};
use crate::clock::now_ms;
use crate::domain::{Finalize, Outcome, Record};
use crate::state::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use skapi_core::wire::{Chunk, FailureBody, FinalizeAnswer, FinalizeBody, Form, PollBody, StreamPage};
use std::time::Duration;

/// Most chunks in one page; `more` says a page was cut there.
const PAGE: u32 = 200;

/// The chunks of a streamed request after `since`, with its status. The record is read before
/// its chunks, so a final status comes with every chunk.
pub async fn page(state: &AppState, record: Record, since: u64, form: Form) -> Result<StreamPage, Failure> {
    let mut chunks = state.db.call(|s| s.chunks(&record.new.id, since, PAGE + 1)).await?;
    let more = chunks.len() > PAGE as usize;
    chunks.truncate(PAGE as usize);
    let in_queue = super::record::in_queue(state, record.new.queue_key.as_deref(), record.status, record.seq).await?;
    let (error, status_code, truncated) = match record.outcome {
        Some(Outcome::Failed { error, status_code, body, truncated }) => {
            (Some(FailureBody { code: error.code, message: error.message, status_code, body }), status_code, truncated)
        }
        Some(Outcome::Resolved { status_code, truncated, .. }) => (None, Some(status_code), truncated),
        None => (None, None, false),
    };
    Ok(StreamPage {
        id: record.new.id,
        status: record.status.in_form(form),
        queue_name: record.new.queue,
        in_queue,
        stream: true,
        status_code,
        truncated,
        last_seq: chunks.last().map_or(since, |c| c.seq),
        chunks,
        more,
        error,
    })
}

pub async fn csr_finalize(State(state): State<AppState>, caller: Caller, Wire(body): Wire<FinalizeBody>) -> Result<Json<FinalizeAnswer>, Failure> {
    let record = named_record(&state, &caller, body.service.as_deref(), body.id.as_deref()).await?;
    let (finalized, message) = match state.db.call(|s| s.finalize(&record.new.id, body.data.as_ref(), now_ms())).await? {
        Finalize::Done => (true, "The streamed response is stored."),
        Finalize::NotFinished => (false, "The request has not finished yet."),
        Finalize::NotStream => (false, "The request was not sent with stream, so its response is already stored."),
    };
    Ok(Json(FinalizeAnswer { finalized, message: message.to_owned() }))
}

/// How often a push reader looks at the store though its watch said nothing: on a shared
/// database another instance may run the stream (and only the store tells); alone, the watch
/// tells of every chunk and of the end, and the look is a safety net.
const LOOK_SHARED: Duration = Duration::from_millis(250);
const LOOK_ALONE: Duration = Duration::from_secs(5);

/// A push reader's place in a stream.
struct Reader {
    state: AppState,
    id: String,
    since: u64,
    form: Form,
    watch: Option<tokio::sync::watch::Receiver<u64>>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.watch = None;
        self.state.engine.unwatch_stream(&self.id);
    }
}

impl Reader {
    /// Chunks after `since`, as events; `since` moves past them.
    async fn chunks(&mut self) -> Result<Option<Vec<Event>>, Failure> {
        let chunks = self.state.db.call(|s| s.chunks(&self.id, self.since, PAGE)).await?;
        let Some(last) = chunks.last() else { return Ok(None) };
        self.since = last.seq;
        Ok(Some(chunks.iter().map(chunk_event).collect()))
    }

    /// The next events: the chunks after `since` (`event: chunk`, `id:` its seq), or once the
    /// stream has ended and every chunk was sent, `event: end` with the final page (no chunks);
    /// `None` after that.
    async fn next(mut self) -> Option<(Result<Vec<Event>, Failure>, Option<Reader>)> {
        let engine = self.state.engine.clone();
        let look = if self.state.db.store().shared() { LOOK_SHARED } else { LOOK_ALONE };
        loop {
            // Subscribed before reading, so that a chunk stored meanwhile still wakes us.
            if self.watch.is_none() {
                self.watch = Some(engine.watch_stream(&self.id));
            }
            match self.chunks().await {
                Ok(Some(events)) => return Some((Ok(events), Some(self))),
                Ok(None) => {}
                Err(e) => return Some((Err(e), None)),
            }
            let record = match self.state.db.call(|s| s.get_record(&self.id)).await {
                Ok(Some(record)) => record,
                Ok(None) => return None, // expired and purged
                Err(e) => return Some((Err(e.into()), None)),
            };
            if record.status.is_final() {
                // Ended after the chunks were read: any last ones first, then the end.
                match self.chunks().await {
                    Ok(Some(events)) => return Some((Ok(events), Some(self))),
                    Ok(None) => {}
                    Err(e) => return Some((Err(e), None)),
                }
                let (state, since, form) = (self.state.clone(), self.since, self.form);
                let end = page(&state, record, since, form).await.map(|page| vec![json_event(Event::default().event("end"), &page)]);
                return Some((end, None));
            }
            // Closed once the stream's end is written (or it was cancelled before it ran): look
            // once more, and watch anew should it not have ended after all.
            let Some(watch) = self.watch.as_mut() else { continue };
            if tokio::time::timeout(look, watch.changed()).await.is_ok_and(|r| r.is_err()) {
                self.watch = None;
            }
        }
    }
}

fn chunk_event(chunk: &Chunk) -> Event {
    json_event(Event::default().event("chunk").id(chunk.seq.to_string()), chunk)
}

/// An event whose data is `value` as JSON (our own wire types: they always serialize).
fn json_event(event: Event, value: &impl serde::Serialize) -> Event {
    event.data(serde_json::to_string(value).unwrap_or_default())
}

/// `csr-stream {service, owner, id, since?}`: the caller's streamed request as server-sent
/// events, pushed as each chunk is stored — `event: chunk` (`id:` its seq, data `{seq, txt}`),
/// then `event: end` with the final stream page. A dropped reader comes back with `since`: the
/// last seq it holds (`Last-Event-ID`, too).
pub async fn csr_stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    Wire(body): Wire<PollBody>,
) -> Result<Response, Failure> {
    let record = named_record(&state, &caller, body.service.as_deref(), body.id.as_deref()).await?;
    if !record.streams() {
        return Err(Failure::new(skapi_core::ErrorCode::InvalidRequest, "The request was not sent with stream (or was finalized): poll it."));
    }
    let last_event = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let form = if body.service.is_some() { Form::V2 } else { Form::V1 };
    let reader = Reader { state, id: record.new.id, since: body.since.map(u64::from).or(last_event).unwrap_or(0), form, watch: None };
    let batches = futures_util::stream::unfold(Some(reader), |reader| async move { reader?.next().await });
    // A batch is the chunks stored since the reader last looked; each is an event of its own.
    let events = batches.flat_map(|batch| {
        let events: Vec<Result<Event, std::io::Error>> = match batch {
            Ok(events) => events.into_iter().map(Ok).collect(),
            Err(failure) => vec![Err(std::io::Error::other(failure.0.message))],
        };
        futures_util::stream::iter(events)
    });
    // Kept alive through a long wait (a queued stream, a slow third party): proxies that close
    // idle connections see a comment now and then.
    Ok(([("x-accel-buffering", "no")], Sse::new(events).keep_alive(KeepAlive::default())).into_response())
}
