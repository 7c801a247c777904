//! Streamed answers (2.x): a page of chunks for `csr-poll {id, since}`, and `csr-finalize`,
//! which replaces a finished stream's chunks by one stored body.

use super::poll::own_record;
use super::{parse_body, Caller, Failure};
use crate::clock::now_ms;
use crate::store::{Finalize, Outcome, Record};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;
use skapi_core::wire::{FailureBody, FinalizeAnswer, FinalizeBody, Form, Status, StreamPage};

/// Most chunks in one page; `more` says a page was cut there.
const PAGE: u32 = 200;

/// The chunks of a streamed request after `since`, with its status. The record is read before
/// its chunks, so a final status comes with every chunk.
pub async fn page(state: &AppState, record: Record, since: u64, form: Form) -> Result<StreamPage, Failure> {
    let mut chunks = state.db.call(|s| s.chunks(&record.new.id, since, PAGE + 1)).await?;
    let more = chunks.len() > PAGE as usize;
    chunks.truncate(PAGE as usize);
    let in_queue = match (&record.new.queue_key, record.status) {
        (Some(k), Status::Pending) => Some(state.db.call(|s| s.queue_position(k, record.seq)).await?),
        (Some(_), _) => Some(0),
        (None, _) => None,
    };
    let error = match record.outcome {
        Some(Outcome::Failed { error, status_code, body, .. }) => Some(FailureBody { code: error.code, message: error.message, status_code, body }),
        _ => None,
    };
    Ok(StreamPage {
        id: record.new.id,
        status: record.status.in_form(form),
        queue_name: record.new.queue,
        in_queue,
        stream: true,
        last_seq: chunks.last().map_or(since, |c| c.seq),
        chunks,
        more,
        error,
    })
}

pub async fn csr_finalize(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FinalizeAnswer>, Failure> {
    let body: FinalizeBody = parse_body(body)?;
    let service = caller.service(&state, body.service.as_deref()).await?;
    let full_id = body.id.as_deref().ok_or_else(|| Failure::invalid_parameter("Key \"id\" is required."))?;
    let record = own_record(&state, &caller, &service, full_id).await?;
    let (finalized, message) = match state.db.call(|s| s.finalize(&record.new.id, body.data.as_ref(), now_ms())).await? {
        Finalize::Done => (true, "The streamed response is stored."),
        Finalize::NotFinished => (false, "The request has not finished yet."),
        Finalize::NotStream => (false, "The request was not sent with stream, so its response is already stored."),
    };
    Ok(Json(FinalizeAnswer { finalized, message: message.to_owned() }))
}
