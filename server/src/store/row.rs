//! Rows as both engines read them back, decoded by one mapping: an engine only says how to read
//! a column of its driver ([`Columns`]); what the columns mean is written here once. Stored
//! data that cannot be read surfaces as `Corrupt`, never as a panic.

use super::{StoreError, StoreResult};
use crate::domain::{KeyRecord, NewRecord, Outcome, Record};
use serde_json::Value;
use skapi_core::wire::{Chunk, CsrBody, Status};
use skapi_core::{ApiError, ErrorCode, Method};

/// How an engine reads one column of a row, by name.
pub trait Columns {
    fn text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn flag(&self, name: &str) -> StoreResult<bool>;
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>>;
}

/// A column that may not be NULL.
fn required<T>(value: Option<T>, name: &str) -> StoreResult<T> {
    value.ok_or_else(|| StoreError::Corrupt(format!("column {name} is empty")))
}

fn text(row: &impl Columns, name: &str) -> StoreResult<String> {
    required(row.text(name)?, name)
}

/// A time or count as stored (never negative).
fn count(row: &impl Columns, name: &str) -> StoreResult<u64> {
    Ok(required(row.int(name)?, name)?.max(0) as u64)
}

/// A JSON value as stored text.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialising a JSON value does not fail")
}

fn parse_json(text: Option<String>, what: &str) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))).transpose()
}

/// A list of strings kept as JSON text (a service's origins, its forward destinations).
pub fn list_from(text: &str, what: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A key row. A key whose destinations or placeholder positions cannot be read is refused as
/// corrupt: reading it as "none" or "anywhere" could widen where its secret may go.
pub fn key(row: &impl Columns) -> StoreResult<KeyRecord> {
    let (service, name) = (text(row, "service")?, text(row, "name")?);
    let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("key {service}/{name}: {what}: {e}"));
    let destinations = serde_json::from_str(&text(row, "destinations")?).map_err(|e| corrupt("destinations", e))?;
    let positions = serde_json::from_str(&text(row, "positions")?).map_err(|e| corrupt("placeholder positions", e))?;
    let limit = |column: &str| -> StoreResult<Option<u32>> { Ok(row.int(column)?.and_then(|n| u32::try_from(n).ok())) };
    let budget = |column: &str| -> StoreResult<Option<u64>> { Ok(row.int(column)?.and_then(|n| u64::try_from(n).ok())) };
    Ok(KeyRecord {
        sealed_secret: row.bytes("secret")?,
        locked: row.flag("locked")?,
        destinations,
        positions,
        rate_per_caller: limit("rate_per_caller")?,
        rate_total: limit("rate_total")?,
        created: count(row, "created")?,
        updated: count(row, "updated")?,
        // Unreadable rules are refused as corrupt too: read as "none" they would let anything by.
        request_schema: parse_json(row.text("request_schema")?, &format!("key {service}/{name}: request schema"))?,
        daily_per_caller: limit("daily_per_caller")?,
        daily_total: limit("daily_total")?,
        daily_tokens_per_caller: budget("daily_tokens_per_caller")?,
        daily_tokens_total: budget("daily_tokens_total")?,
        service,
        name,
    })
}

/// A record row.
pub fn record(row: &impl Columns) -> StoreResult<Record> {
    let id = text(row, "id")?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("record {id}: {what}"));
    let status = Status::parse(&text(row, "status")?).ok_or_else(|| corrupt("status"))?;
    let method = Method::parse(&text(row, "method")?).map_err(|_| corrupt("method"))?;
    let request: CsrBody = serde_json::from_str(&text(row, "request")?).map_err(|_| corrupt("request"))?;
    let body = parse_json(row.text("response_body")?, "response body")?;
    let status_code = row.int("status_code")?.and_then(|c| u16::try_from(c).ok());
    let truncated = row.flag("truncated")?;
    let outcome = match status {
        Status::Resolved => Some(Outcome::Resolved { status_code: status_code.unwrap_or(0), body: body.unwrap_or(Value::Null), truncated }),
        Status::Failed => {
            let code = row.text("error_code")?.as_deref().and_then(ErrorCode::parse).unwrap_or(ErrorCode::ServerError);
            let message = row.text("error_message")?.unwrap_or_default();
            Some(Outcome::Failed { error: ApiError::new(code, message), status_code, body, truncated })
        }
        Status::Pending | Status::Running => None,
    };
    Ok(Record {
        seq: required(row.int("seq")?, "seq")?,
        new: NewRecord {
            service: text(row, "service")?,
            owner: text(row, "owner")?,
            // Records kept before callers were stored with them count as their reader.
            counted_as: match row.text("counted_as")? {
                Some(list) => list_from(&list, "counted as")?,
                None => vec![text(row, "caller")?],
            },
            caller: text(row, "caller")?,
            key_name: text(row, "key_name")?,
            method,
            url: text(row, "url")?,
            key_v1: text(row, "key_v1")?,
            key_v2: text(row, "key_v2")?,
            queue: row.text("queue")?,
            queue_key: row.text("queue_key")?,
            request,
            request_body: parse_json(row.text("request_body")?, "request body")?,
            created: count(row, "created")?,
            expires: count(row, "expires")?,
            id,
        },
        status,
        outcome,
        updated: count(row, "updated")?,
        finalized: row.flag("finalized")?,
        executed: row.int("started")?.map(|ms| ms.max(0) as u64),
    })
}

/// A chunk row (`seq`, `txt`).
pub fn chunk(row: &impl Columns) -> StoreResult<Chunk> {
    Ok(Chunk { seq: count(row, "seq")?, txt: text(row, "txt")? })
}
