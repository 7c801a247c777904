//! A caller's own request, as the calls about one request find it (`csr-poll`, `csr-cancel`,
//! `csr-stream`, `csr-finalize`), and its place in its queue.

use super::{Caller, Failure};
use crate::clock::now_ms;
use crate::domain::Record;
use crate::state::AppState;
use skapi_core::wire::Status;
use skapi_core::{id, ErrorCode};

/// The caller's own record for a full id. Another caller's record answers exactly as a
/// missing one does; an expired one answers `EXPIRED`.
pub async fn own_record(state: &AppState, caller: &Caller, service: &str, full_id: &str) -> Result<Record, Failure> {
    let not_found = || Failure::new(ErrorCode::NotExists, "The request does not exist.");
    let (key, short) = id::split_full(full_id).ok_or_else(not_found)?;
    // While the database is away every answer about a record is the store's (503): a caller
    // polling several records hears one story.
    let remembered = if state.db.away() { None } else { state.engine.recent.take(short) };
    let record = match remembered {
        Some(record) => Some(record),
        None => state.db.call(|s| s.get_record(short)).await?,
    };
    let record = record
        .filter(|r| r.new.service == service && r.new.caller == caller.identity && (r.new.key_v1 == key || r.new.key_v2 == key))
        .ok_or_else(not_found)?;
    if now_ms() >= record.new.expires {
        return Err(Failure::new(ErrorCode::Expired, "The request has expired."));
    }
    Ok(record)
}

/// The caller's own record that a body names (`service`, else Content-Meta's; `id`, a full id).
pub async fn named_record(state: &AppState, caller: &Caller, service: Option<&str>, full_id: Option<&str>) -> Result<Record, Failure> {
    let service = caller.service(state, service).await?;
    let full_id = full_id.ok_or_else(|| Failure::invalid_parameter("Key \"id\" is required."))?;
    own_record(state, caller, &service, full_id).await
}

/// A request's place in its queue, as Skapi counts it: the unfinished requests of the queue up
/// to and including this one — the running head reads 1, the next one 2; 0 once it has ended;
/// none without a queue.
pub async fn in_queue(state: &AppState, queue_key: Option<&str>, status: Status, seq: i64) -> Result<Option<u64>, Failure> {
    Ok(match (queue_key, status) {
        (Some(k), Status::Pending | Status::Running) => Some(state.db.call(|s| s.queue_position(k, seq)).await?),
        (Some(_), _) => Some(0),
        (None, _) => None,
    })
}
