//! A record as both engines read it back: raw columns, then decoded (JSON errors surface as
//! `Corrupt`, not as a panic).

use super::*;
use skapi_core::ErrorCode;

/// A JSON value as stored text.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialising a JSON value does not fail")
}

pub fn parse_json(text: Option<String>, what: &str) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))).transpose()
}

/// Raw columns of a key row, as either engine reads them.
pub struct KeyRow {
    pub service: String,
    pub name: String,
    pub secret: Vec<u8>,
    pub locked: bool,
    pub destinations: String,
    pub positions: String,
    pub rate_per_caller: Option<i64>,
    pub rate_total: Option<i64>,
    pub created: i64,
    pub updated: i64,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;

    /// A key whose destinations or placeholder positions cannot be read is refused as
    /// corrupt: reading it as "none" or "anywhere" could widen where its secret may go.
    fn try_from(k: KeyRow) -> StoreResult<KeyRecord> {
        let corrupt = |what: &str, e: serde_json::Error| StoreError::Corrupt(format!("key {}/{}: {what}: {e}", k.service, k.name));
        let destinations = serde_json::from_str(&k.destinations).map_err(|e| corrupt("destinations", e))?;
        let positions = serde_json::from_str(&k.positions).map_err(|e| corrupt("placeholder positions", e))?;
        let limit = |n: Option<i64>| n.and_then(|n| u32::try_from(n).ok());
        Ok(KeyRecord {
            destinations,
            positions,
            rate_per_caller: limit(k.rate_per_caller),
            rate_total: limit(k.rate_total),
            created: k.created.max(0) as u64,
            updated: k.updated.max(0) as u64,
            service: k.service,
            name: k.name,
            sealed_secret: k.secret,
            locked: k.locked,
        })
    }
}

/// Raw columns of a record row; decoded outside rusqlite's closure so JSON errors surface.
pub struct RecordRow {
    pub seq: i64,
    pub id: String,
    pub service: String,
    pub owner: String,
    pub caller: String,
    pub key_name: String,
    pub method: String,
    pub url: String,
    pub key_v1: String,
    pub key_v2: String,
    pub queue: Option<String>,
    pub queue_key: Option<String>,
    pub request: String,
    pub request_body: Option<String>,
    pub status: String,
    pub status_code: Option<u16>,
    pub response_body: Option<String>,
    pub truncated: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub created: u64,
    pub updated: u64,
    pub expires: u64,
    pub finalized: bool,
}

impl TryFrom<RecordRow> for Record {
    type Error = StoreError;

    fn try_from(r: RecordRow) -> StoreResult<Record> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("record {}: {what}", r.id));
        let status = Status::parse(&r.status).ok_or_else(|| corrupt("status"))?;
        let method = Method::parse(&r.method).map_err(|_| corrupt("method"))?;
        let request: CsrBody = serde_json::from_str(&r.request).map_err(|_| corrupt("request"))?;
        let body = parse_json(r.response_body, "response body")?;
        let outcome = match status {
            Status::Resolved => {
                Some(Outcome::Resolved { status_code: r.status_code.unwrap_or(0), body: body.unwrap_or(Value::Null), truncated: r.truncated })
            }
            Status::Failed => {
                let code = r.error_code.as_deref().and_then(ErrorCode::parse).unwrap_or(ErrorCode::ServerError);
                Some(Outcome::Failed {
                    error: ApiError::new(code, r.error_message.unwrap_or_default()),
                    status_code: r.status_code,
                    body,
                    truncated: r.truncated,
                })
            }
            Status::Pending | Status::Running => None,
        };
        Ok(Record {
            seq: r.seq,
            new: NewRecord {
                request_body: parse_json(r.request_body, "request body")?,
                id: r.id,
                service: r.service,
                owner: r.owner,
                caller: r.caller,
                key_name: r.key_name,
                method,
                url: r.url,
                key_v1: r.key_v1,
                key_v2: r.key_v2,
                queue: r.queue,
                queue_key: r.queue_key,
                request,
                created: r.created,
                expires: r.expires,
            },
            status,
            outcome,
            updated: r.updated,
            finalized: r.finalized,
        })
    }
}
