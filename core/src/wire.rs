//! Wire types: the JSON bodies the SDKs send and the server answers (docs/protocol.md).
//! Defined once, used by the SDK and the server.

use crate::{ApiError, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `Content-Meta` header: who is calling which service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentMeta {
    #[serde(default)]
    pub public_identifier: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub owner: String,
}

/// Body of `csr`, in the 1.5.8 form (with `poll`, without `service`) or the 2.0 form.
/// Every field is optional so that validation can say what is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CsrBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(rename = "clientSecretName", default, skip_serializing_if = "Option::is_none")]
    pub client_secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// 1.5.8 only: true iff the caller polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Seconds (Skapi's wire unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
}

impl CsrBody {
    /// 1.5.8 bodies carry no `service`; 2.0 bodies do.
    pub fn form(&self) -> Form {
        if self.service.is_some() {
            Form::V2
        } else {
            Form::V1
        }
    }
}

/// The two protocol generations the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// skapi-js 1.5.x: knows only `pending`; ids carry the queue.
    V1,
    /// skapi-js 2.x: `running` too; ids carry the service.
    V2,
}

/// Lifecycle of a request record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Running,
    Resolved,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Running => "running",
            Status::Resolved => "resolved",
            Status::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "running" => Some(Status::Running),
            "resolved" => Some(Status::Resolved),
            "failed" => Some(Status::Failed),
            _ => None,
        }
    }
    pub fn is_final(self) -> bool {
        matches!(self, Status::Resolved | Status::Failed)
    }
    /// How a status is reported in a protocol form: 1.5.8 knows only `pending`.
    pub fn in_form(self, form: Form) -> Status {
        match (self, form) {
            (Status::Running, Form::V1) => Status::Pending,
            (s, _) => s,
        }
    }
}

/// What `csr` answers, and what `csr-poll` answers while a request is unfinished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusEnvelope {
    pub id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    /// Position in the queue: 1 = next to run (0 once running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_queue: Option<u64>,
}

/// Body of `csr-poll`: a single poll (`id` is a full id), a history listing (`id` is a
/// prefix ending in `:`, or 2.0's `queue` + `id_prefix`), or a queue count (`queue: "<name>:"`
/// alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_exclude: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ascending: Option<bool>,
    #[serde(rename = "startKey", default, skip_serializing_if = "Option::is_none")]
    pub start_key: Option<Value>,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub list: Vec<RawHistoryItem>,
    /// Where the next page starts; `null` at the end.
    #[serde(rename = "startKey")]
    pub start_key: Value,
    #[serde(rename = "endOfList")]
    pub end_of_list: bool,
}

/// A record as the history listing sends it (Skapi's short keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawHistoryItem {
    pub id: String,
    pub stts: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rslv: Option<Resolution>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<ApiError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stmp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utmp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reqbdy: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qid: Option<String>,
}

/// The third party's answer: `body` when whole, `truncated` (a prefix) when it was too long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<Value>,
}

/// A failed request as `csr-poll` answers it: `{message, code}` plus the third party's status
/// and body when it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A history item as the JS API returns it (`PollingResult`); timestamps in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollingResult {
    pub id: String,
    pub status: Status,
    pub status_code: Option<u16>,
    pub response_body: Option<Value>,
    pub request_body: Option<Value>,
    pub error: Option<ApiError>,
    pub created: Option<u64>,
    pub updated: Option<u64>,
    pub expires: Option<u64>,
    pub queue_name: Option<String>,
}

impl From<RawHistoryItem> for PollingResult {
    fn from(raw: RawHistoryItem) -> Self {
        let (status_code, response_body) = match raw.rslv {
            Some(r) => (Some(r.status_code), r.body.or(r.truncated)),
            None => (None, None),
        };
        PollingResult {
            id: raw.id,
            status: raw.stts,
            status_code,
            response_body,
            request_body: raw.reqbdy,
            error: raw.err,
            created: raw.stmp,
            updated: raw.utmp,
            expires: raw.expt,
            queue_name: raw.qid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_1_5_8_csr_body_in_its_observed_form() {
        let body: CsrBody = serde_json::from_value(json!({
            "service": null, "owner": "o", "url": "https://x.io", "clientSecretName": "k", "method": "post",
            "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"n": 1}, "params": {},
            "poll": false, "queue": "image-jobs", "expires": 3600
        }))
        .unwrap();
        assert_eq!(body.form(), Form::V1);
        assert_eq!(body.poll, Some(false));
        assert_eq!(body.expires, Some(3600.0));
    }

    #[test]
    fn absent_options_are_absent_keys() {
        let body = CsrBody { service: Some("s".into()), url: Some("u".into()), ..Default::default() };
        assert_eq!(serde_json::to_value(&body).unwrap(), json!({"service": "s", "url": "u"}));
        assert_eq!(body.form(), Form::V2);
    }

    #[test]
    fn maps_raw_history_items_like_skapi_js() {
        let raw: RawHistoryItem = serde_json::from_value(json!({
            "id": "1:a", "stts": "resolved", "rslv": {"status_code": 200, "truncated": "abc"},
            "stmp": 1, "utmp": 2, "reqbdy": {"n": 1}, "expt": 3, "qid": "q"
        }))
        .unwrap();
        let item = PollingResult::from(raw);
        assert_eq!(item.status_code, Some(200));
        assert_eq!(item.response_body, Some(json!("abc")));
        assert_eq!((item.created, item.updated, item.expires), (Some(1), Some(2), Some(3)));
        assert_eq!(item.queue_name.as_deref(), Some("q"));
    }

    #[test]
    fn running_reads_as_pending_in_1_5_8() {
        assert_eq!(Status::Running.in_form(Form::V1), Status::Pending);
        assert_eq!(Status::Running.in_form(Form::V2), Status::Running);
        assert_eq!(Status::Failed.in_form(Form::V1), Status::Failed);
    }
}
