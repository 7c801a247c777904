//! `csr-poll`: one request by its full id, or a history listing by id prefix.

use super::body::Wire;
use super::record::{in_queue, own_record};
use super::{Caller, Failure};
use crate::clock::now_ms;
use crate::domain::{HistoryQuery, Outcome, Record};
use crate::state::AppState;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;
use skapi_core::id;
use skapi_core::wire::{FailureBody, Form, HistoryPage, PollBody, QueueCount, RawHistoryItem, Resolution, Status, StatusEnvelope};

/// Which kind of `csr-poll` call a response answered (for the metrics; a single poll is `poll`).
#[derive(Clone, Copy, Debug)]
pub struct CallKind(pub &'static str);

fn kind(mut response: Response, kind: &'static str) -> Response {
    response.extensions_mut().insert(CallKind(kind));
    response
}

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

pub async fn csr_poll(State(state): State<AppState>, caller: Caller, Wire(body): Wire<PollBody>) -> Result<Response, Failure> {
    let service = caller.service(&state, body.service.as_deref()).await?;
    // 1.5.8 sends service and owner only in Content-Meta.
    let form = if body.service.is_some() { Form::V2 } else { Form::V1 };

    if let Some(full) = &body.id {
        if id::split_full(full).is_some() {
            return poll_one(&state, &caller, &service, full, body.since.map(u64::from), form).await;
        }
        if let Some(key) = id::split_prefix(full) {
            return history(&state, &caller, service, key, &body, form).await.map(|r| kind(r, "history"));
        }
        return Err(Failure::invalid_parameter(format!("\"{full}\" is not a request id or id prefix.")));
    }
    if let Some(prefix) = &body.id_prefix {
        let key = id::split_prefix(prefix).ok_or_else(|| Failure::invalid_parameter("\"id_prefix\" should end with \":\"."))?;
        return history(&state, &caller, service, key, &body, form).await.map(|r| kind(r, "history"));
    }
    if let Some(queue) = body.queue.as_deref().and_then(|q| q.strip_suffix(':')) {
        let in_queue = state.db.call(|store| store.count_waiting(&service, queue)).await?;
        return Ok(kind(Json(QueueCount { queue_name: queue.to_owned(), in_queue }).into_response(), "queue_count"));
    }
    Err(Failure::invalid_parameter("Key \"id\" is required."))
}

async fn poll_one(state: &AppState, caller: &Caller, service: &str, full_id: &str, since: Option<u64>, form: Form) -> Result<Response, Failure> {
    let record = own_record(state, caller, service, full_id).await?;
    // A streamed answer read from `since`; without it, the answer as for any request.
    if let (Some(since), true) = (since, record.streams()) {
        return Ok(Json(super::stream::page(state, record, since, form).await?).into_response());
    }
    match (record.status, record.outcome) {
        (Status::Resolved, Some(Outcome::Resolved { body, .. })) => Ok(Json(body).into_response()),
        (Status::Failed, Some(Outcome::Failed { error, status_code, body, .. })) => {
            Err(Failure::body(FailureBody { code: error.code, message: error.message, status_code, body }))
        }
        (status, _) => {
            let in_queue = in_queue(state, record.new.queue_key.as_deref(), status, record.seq).await?;
            let executed = record.executed.filter(|_| status == Status::Running).map(|ms| ms as f64);
            Ok(Json(StatusEnvelope { id: record.new.id, status: status.in_form(form), queue_name: record.new.queue, in_queue, executed })
                .into_response())
        }
    }
}

async fn history(state: &AppState, caller: &Caller, service: String, key: &str, body: &PollBody, form: Form) -> Result<Response, Failure> {
    let limit = body.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let after_seq = match &body.start_key {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_i64().ok_or_else(|| Failure::invalid_parameter("\"startKey\" is not valid."))?),
        Some(_) => return Err(Failure::invalid_parameter("\"startKey\" is not valid.")),
    };
    let query = HistoryQuery {
        service,
        caller: caller.identity.clone(),
        key: key.to_owned(),
        queue_prefix: body.queue.clone().filter(|q| !q.is_empty()),
        queue_exact: body.queue_exact.as_ref().and_then(|e| e.exact(body.queue.as_deref())).map(str::to_owned),
        queue_exclude: body.queue_exclude.clone(),
        status: body.status,
        ascending: body.ascending.unwrap_or(false),
        // One more than asked tells whether another page follows.
        limit: limit + 1,
        after_seq,
        live_at: now_ms(),
    };
    let mut records = state.db.call(|s| s.history(&query)).await?;
    let end_of_list = records.len() <= limit as usize;
    records.truncate(limit as usize);
    let start_key = match (end_of_list, records.last()) {
        (false, Some(last)) => Value::from(last.seq),
        _ => Value::Null,
    };
    let compact = body.compact == Some(true);
    let list = records.into_iter().map(|r| if compact { compact_item(r, form) } else { raw_item(r, form) }).collect();
    Ok(Json(HistoryPage { list, start_key, end_of_list }).into_response())
}

fn raw_item(record: Record, form: Form) -> RawHistoryItem {
    let resolution = |status_code: u16, body: Option<Value>, truncated: bool| {
        let (body, truncated) = if truncated { (None, body) } else { (body, None) };
        Resolution { status_code, body, truncated }
    };
    let (rslv, err) = match record.outcome {
        Some(Outcome::Resolved { status_code, body, truncated }) => (Some(resolution(status_code, Some(body), truncated)), None),
        Some(Outcome::Failed { error, status_code, body, truncated }) => (status_code.map(|code| resolution(code, body, truncated)), Some(error)),
        None => (None, None),
    };
    RawHistoryItem {
        id: record.new.id,
        stts: record.status.in_form(form),
        rslv,
        err,
        stmp: Some(record.new.created),
        utmp: Some(record.updated),
        reqbdy: record.new.request_body,
        expt: Some(record.new.expires),
        qid: record.new.queue,
        // Seconds, as Skapi's backend stamps it (the SDK shows it in ms).
        att: record.executed.map(|ms| ms as f64 / 1000.0),
        // Not kept yet: compact listings.
        reqtxt: None,
        rslvtxt: None,
        rslvmk: None,
        cmpct: None,
    }
}

/// Most characters of a compact item's texts.
const COMPACT_TEXT: usize = 200;

/// A value as a short text: a string as it is, anything else as JSON, cut at
/// [`COMPACT_TEXT`] characters.
fn head(value: &Value) -> String {
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.chars().take(COMPACT_TEXT).collect()
}

/// A `compact` history item: the bodies stay on the server; the item carries their heads
/// instead — `reqtxt` the request's method, url and the head of its body; `rslvtxt` the head of
/// the answer; `rslvmk` whether the answer is whole (resolved and not cut).
fn compact_item(record: Record, form: Form) -> RawHistoryItem {
    let reqtxt = match &record.new.request_body {
        Some(body) => format!("{} {} {}", record.new.method.upper(), record.new.url, head(body)),
        None => format!("{} {}", record.new.method.upper(), record.new.url),
    };
    let (rslvtxt, rslvmk) = match &record.outcome {
        Some(Outcome::Resolved { body, truncated, .. }) => (Some(head(body)), Some(!truncated)),
        Some(Outcome::Failed { body, error, .. }) => {
            (Some(body.as_ref().map_or_else(|| head(&Value::String(error.message.clone())), head)), Some(false))
        }
        None => (None, None),
    };
    let full = raw_item(record, form);
    RawHistoryItem { reqbdy: None, rslv: None, reqtxt: Some(reqtxt), rslvtxt, rslvmk, cmpct: Some(true), ..full }
}
