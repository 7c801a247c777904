//! Wire types: the JSON bodies the SDKs send and the server answers (docs/protocol.md).
//! Defined once, used by the SDK and the server. Where a body carries values of the caller's
//! or the third party's (`data`, a response body, a `startKey`), the type is generic over how
//! they are held: `serde_json` values in the server (the default, [`crate::Json`]), JavaScript
//! values in the SDK, which hands them on untouched.

use crate::tree::{optional, FromTree, Kind, Tree};
use crate::{ApiError, ErrorCode, Json};
use serde::{Deserialize, Serialize};

serde_as_name!(Status, "pending, running, resolved or failed");

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
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct CsrBody<V = Json> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The seed's name for the secret (`clientSecretRequest` sends it).
    #[serde(rename = "clientSecretName", default, skip_serializing_if = "Option::is_none")]
    pub client_secret_name: Option<String>,
    /// Skapi's newest name for it (`forwardRequest` sends it); preferred when both are given.
    #[serde(rename = "secretName", default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<V>,
    /// 1.5.8 only: true iff the caller polls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Seconds (Skapi's wire unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    /// 2.x: the answer is kept as it arrives, in chunks a reader takes with `csr-poll {id,
    /// since}` (never sent to the third party: its own `stream` lives in `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// 2.x: the caller would also take the chunks over Skapi's websocket (accepted and kept;
    /// only with `stream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime: Option<bool>,
    /// Which of `x-skapi-user` and `x-skapi-service` the destination is told: `true`, or
    /// `{user, service}` (booleans). The server writes them from the verified identity.
    #[serde(rename = "skapiHeaders", default, skip_serializing_if = "Option::is_none")]
    pub skapi_headers: Option<V>,
    /// How the caller wants the answer (`arrayBuffer`, `blob`, `text`, `json`): with the first
    /// two the server keeps any answer as bytes (skapi-server's own; Skapi's SDK shapes it in
    /// the browser).
    #[serde(rename = "responseType", default, skip_serializing_if = "Option::is_none")]
    pub response_type: Option<String>,
    /// A raw request body (Skapi's form for bytes): standard base64 of the bytes sent as they
    /// are — never searched for the placeholder — instead of `data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_b64: Option<String>,
    /// The raw body's content type (the `Content-Type` header wins when the caller set one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_content_type: Option<String>,
    /// The request's files, which `data` places with markers (`crate::upload`). The SDK sends
    /// files as parts of a multipart `csr`, never here; the server keeps them here with the
    /// record, and accepts them here from a caller that cannot send multipart.
    #[cfg(feature = "json")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<WireFile>>,
}

/// A file of a request, as the record keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFile {
    pub filename: String,
    pub content_type: String,
    pub body_b64: String,
}

impl<V> CsrBody<V> {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// Place in the queue: the unfinished requests of the queue up to and including this one
    /// (the running head reads 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_queue: Option<u64>,
    /// When a running request began executing, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed: Option<f64>,
}

/// Body of `csr-poll`: a single poll (`id` is a full id), a history listing (`id` is a
/// prefix ending in `:`, or 2.0's `queue` + `id_prefix`), or a queue count (`queue: "<name>:"`
/// alone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct PollBody<V = Json> {
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
    /// Match the queue exactly rather than as a prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_exact: Option<QueueExact>,
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
    pub start_key: Option<V>,
    /// A streamed request's chunks after this `seq` (2.x); 0 = from the first. (32 bits: four
    /// billion chunks is room enough, and the SDK's serialiser then needs no 64-bit path.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u32>,
}

/// `queue_exact` as Skapi's current SDK sends it — `true`: `queue` is matched exactly — or as
/// an earlier form of this protocol did: the exact queue's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QueueExact {
    Flag(bool),
    Name(String),
}

impl QueueExact {
    /// The queue to match exactly, given the listing's `queue`.
    pub fn exact<'a>(&'a self, queue: Option<&'a str>) -> Option<&'a str> {
        match self {
            QueueExact::Flag(true) => queue,
            QueueExact::Flag(false) => None,
            QueueExact::Name(name) => Some(name),
        }
    }
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct HistoryPage<V = Json> {
    pub list: Vec<RawHistoryItem<V>>,
    /// Where the next page starts; `null` at the end.
    #[serde(rename = "startKey")]
    pub start_key: V,
    #[serde(rename = "endOfList")]
    pub end_of_list: bool,
}

/// A record as the history listing sends it (Skapi's short keys).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct RawHistoryItem<V = Json> {
    pub id: String,
    pub stts: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rslv: Option<Resolution<V>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub err: Option<ApiError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stmp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utmp: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reqbdy: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expt: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qid: Option<String>,
    /// When the request began executing, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub att: Option<f64>,
    /// `compact` listings: the request's label line, the head of the answer, whether the answer
    /// is complete, and the flag itself (`reqbdy` and `rslv` are left out then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reqtxt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rslvtxt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rslvmk: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmpct: Option<bool>,
}

/// The third party's answer: `body` when whole, `truncated` (a prefix) when it was too long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct Resolution<V = Json> {
    pub status_code: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<V>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncated: Option<V>,
}

/// A failed request as `csr-poll` answers it: `{message, code}` plus the third party's status
/// and body when it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct FailureBody<V = Json> {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<V>,
}

/// A history item as the JS API returns it (`PollingResult`); timestamps in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct PollingResult<V = Json> {
    pub id: String,
    pub status: Status,
    pub status_code: Option<u16>,
    pub response_body: Option<V>,
    pub request_body: Option<V>,
    pub error: Option<ApiError>,
    pub created: Option<u64>,
    pub updated: Option<u64>,
    pub expires: Option<u64>,
    pub queue_name: Option<String>,
    /// When the request began executing, in ms (the listing's `att`, seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_complete_marker: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compact: Option<bool>,
}

impl<V> From<RawHistoryItem<V>> for PollingResult<V> {
    fn from(raw: RawHistoryItem<V>) -> Self {
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
            executed: raw.att.map(|s| s * 1000.0),
            request_text: raw.reqtxt,
            response_text: raw.rslvtxt,
            response_complete_marker: raw.rslvmk,
            compact: raw.cmpct.filter(|c| *c),
        }
    }
}

impl<T: Tree> FromTree<T> for Status {
    fn from_tree(v: &T) -> Option<Status> {
        Status::parse(&v.text()?)
    }
}

impl<T: Tree> FromTree<T> for ErrorCode {
    fn from_tree(v: &T) -> Option<ErrorCode> {
        ErrorCode::parse(&v.text()?)
    }
}

/// A required field of `obj`, read as `R`.
fn required<T: Tree, R: FromTree<T>>(obj: &T, key: &str) -> Option<R> {
    obj.field(key, |v| v.and_then(R::from_tree))
}

fn u16_in<T: Tree>(v: &T) -> Option<u16> {
    v.number().filter(|n| n.fract() == 0.0 && (0.0..=65535.0).contains(n)).map(|n| n as u16)
}

fn u64_in<T: Tree>(v: &T) -> Option<u64> {
    v.number().filter(|n| n.fract() == 0.0 && *n >= 0.0 && *n < 18_446_744_073_709_551_616.0).map(|n| n as u64)
}

fn text_in<T: Tree>(v: &T) -> Option<String> {
    (v.kind() == Kind::Text).then(|| v.text()).flatten()
}

impl<T: Tree> FromTree<T> for ApiError {
    fn from_tree(v: &T) -> Option<ApiError> {
        Some(ApiError { code: required(v, "code")?, message: v.field("message", |m| m.and_then(text_in))? })
    }
}

impl<T: Tree> FromTree<T> for StatusEnvelope {
    fn from_tree(v: &T) -> Option<StatusEnvelope> {
        Some(StatusEnvelope {
            id: v.field("id", |id| id.and_then(text_in))?,
            status: required(v, "status")?,
            queue_name: optional(v, "queue_name", text_in)?,
            in_queue: optional(v, "in_queue", u64_in)?,
            executed: optional(v, "executed", |n| n.number())?,
        })
    }
}

impl<T: Tree + Clone> FromTree<T> for FailureBody<T> {
    fn from_tree(v: &T) -> Option<FailureBody<T>> {
        Some(FailureBody {
            code: required(v, "code")?,
            message: v.field("message", |m| m.and_then(text_in))?,
            status_code: optional(v, "status_code", u16_in)?,
            body: optional(v, "body", |b| Some(b.clone()))?,
        })
    }
}

impl<T: Tree + Clone> FromTree<T> for Resolution<T> {
    fn from_tree(v: &T) -> Option<Resolution<T>> {
        Some(Resolution {
            status_code: v.field("status_code", |s| s.and_then(u16_in))?,
            body: optional(v, "body", |b| Some(b.clone()))?,
            truncated: optional(v, "truncated", |b| Some(b.clone()))?,
        })
    }
}

impl<T: Tree + Clone> FromTree<T> for RawHistoryItem<T> {
    fn from_tree(v: &T) -> Option<RawHistoryItem<T>> {
        Some(RawHistoryItem {
            id: v.field("id", |id| id.and_then(text_in))?,
            stts: required(v, "stts")?,
            rslv: optional(v, "rslv", Resolution::from_tree)?,
            err: optional(v, "err", ApiError::from_tree)?,
            stmp: optional(v, "stmp", u64_in)?,
            utmp: optional(v, "utmp", u64_in)?,
            reqbdy: optional(v, "reqbdy", |b| Some(b.clone()))?,
            expt: optional(v, "expt", u64_in)?,
            qid: optional(v, "qid", text_in)?,
            att: optional(v, "att", |n| n.number())?,
            reqtxt: optional(v, "reqtxt", text_in)?,
            rslvtxt: optional(v, "rslvtxt", text_in)?,
            rslvmk: optional(v, "rslvmk", |b| b.boolean())?,
            cmpct: optional(v, "cmpct", |b| b.boolean())?,
        })
    }
}

/// A required array field of `obj`, every item read as `R`.
fn array<T: Tree, R: FromTree<T>>(obj: &T, key: &str) -> Option<Vec<R>> {
    let mut items = Vec::new();
    let mut all_read = obj.field(key, |a| a.map(Tree::kind)) == Some(Kind::Array);
    obj.field(key, |a| {
        if let Some(a) = a {
            a.entries(&mut |_, item| {
                match R::from_tree(item) {
                    Some(item) => items.push(item),
                    None => all_read = false,
                }
                all_read
            })
        }
    });
    all_read.then_some(items)
}

impl<T: Tree + Clone> FromTree<T> for HistoryPage<T> {
    fn from_tree(v: &T) -> Option<HistoryPage<T>> {
        Some(HistoryPage {
            list: array(v, "list")?,
            start_key: v.field("startKey", |k| k.cloned())?,
            end_of_list: v.field("endOfList", |e| e.and_then(Tree::boolean))?,
        })
    }
}

impl<T: Tree> FromTree<T> for Chunk {
    fn from_tree(v: &T) -> Option<Chunk> {
        Some(Chunk { seq: v.field("seq", |s| s.and_then(u64_in))?, txt: v.field("txt", |t| t.and_then(text_in))? })
    }
}

impl<T: Tree + Clone> FromTree<T> for StreamPage<T> {
    fn from_tree(v: &T) -> Option<StreamPage<T>> {
        let boolean = |key: &str| v.field(key, |b| b.and_then(Tree::boolean));
        Some(StreamPage {
            id: v.field("id", |id| id.and_then(text_in))?,
            status: required(v, "status")?,
            queue_name: optional(v, "queue_name", text_in)?,
            in_queue: optional(v, "in_queue", u64_in)?,
            stream: boolean("stream")?,
            status_code: optional(v, "status_code", u16_in)?,
            // Absent is false; present, it must be a boolean (as serde's `default` reads it).
            truncated: v.field("truncated", |t| match t {
                None => Some(false),
                Some(t) => t.boolean(),
            })?,
            chunks: array(v, "chunks")?,
            last_seq: v.field("last_seq", |s| s.and_then(u64_in))?,
            more: boolean("more")?,
            error: optional(v, "error", FailureBody::from_tree)?,
        })
    }
}

/// What the connection check (`GET service`) answers: any non-empty object lets an SDK go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCheck {
    pub service: String,
    #[serde(default)]
    pub owner: String,
    /// False while the server cannot serve the service.
    pub active: bool,
}

/// What a queue count (`csr-poll {queue: "<name>:"}`) answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueCount {
    pub queue_name: String,
    /// Requests waiting in queues of that name, all callers together.
    pub in_queue: u64,
}

/// A third party's answer that is not text (audio, an image, any bytes): kept exactly, as
/// base64 beside its content type — the body a poll answers and history keeps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryBody {
    pub body_b64: String,
    pub body_content_type: String,
}

/// One piece of a streamed answer, as the third party wrote it (redacted, whole characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// 1, 2, 3… with no gap.
    pub seq: u64,
    pub txt: String,
}

/// What `csr-poll {id, since}` answers for a streamed request: the chunks after `since`, in
/// order; `last_seq` is the `since` of the next call; `more` when this page was cut short.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct StreamPage<V = Json> {
    pub id: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_queue: Option<u64>,
    /// Always true: tells a stream page from a third party's body.
    pub stream: bool,
    /// The third party's status once it answered (skapi-server's own: Skapi's page has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// True when the stream was cut at `--max-response-bytes` (skapi-server's own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    pub chunks: Vec<Chunk>,
    pub last_seq: u64,
    pub more: bool,
    /// Once the stream failed: why, with the third party's status and what it wrote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<FailureBody<V>>,
}

/// Body of `csr-finalize`: a finished stream's chunks are replaced by one stored body, `data`
/// or else the chunks' text joined.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "V: Deserialize<'de>"))]
pub struct FinalizeBody<V = Json> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<V>,
}

/// What `csr-finalize` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalizeAnswer {
    pub finalized: bool,
    pub message: String,
}

/// What `csr-cancel` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelAnswer {
    /// True when the request was pending or running and is now cancelled.
    pub removed: bool,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// The SDK's reading of a wire type and the server's serde agree, for `sample`.
    fn same_reading<R>(sample: Value)
    where
        R: FromTree<Value> + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let by_tree = R::from_tree(&sample);
        let by_serde = serde_json::from_value::<R>(sample.clone()).ok();
        assert_eq!(by_tree, by_serde, "{sample}");
    }

    #[test]
    fn the_sdk_reads_wire_types_as_serde_does() {
        for sample in [
            json!({"id": "1:a", "status": "pending"}),
            json!({"id": "1:a", "status": "running", "queue_name": "q", "in_queue": 2}),
            json!({"id": "1:a", "status": "pending", "queue_name": null}),
            json!({"id": "1:a", "status": "ok"}),
            json!({"id": 1, "status": "pending"}),
            json!({"status": "pending"}),
            json!({"id": "1:a", "status": "pending", "in_queue": -1}),
            json!({"id": "1:a", "status": "pending", "in_queue": 1.5}),
            json!([1, 2]),
            json!("pending"),
        ] {
            same_reading::<StatusEnvelope>(sample);
        }
        for sample in [
            json!({"code": "THIRD_PARTY_ERROR", "message": "m", "status_code": 500, "body": {"e": 1}}),
            json!({"code": "EXPIRED", "message": "m"}),
            json!({"code": "EXPIRED", "message": "m", "body": null}),
            json!({"code": "NOPE", "message": "m"}),
            json!({"code": "EXPIRED"}),
            json!({"code": "EXPIRED", "message": "m", "status_code": 70000}),
            json!({"message": "no code"}),
        ] {
            same_reading::<FailureBody>(sample);
        }
        let item = json!({"id": "1:a", "stts": "resolved", "rslv": {"status_code": 200, "body": {"x": [1]}}, "stmp": 1, "utmp": 2,
                          "reqbdy": {"n": 1}, "expt": 3, "qid": "q"});
        for sample in [
            json!({"list": [item.clone()], "startKey": {"k": 1}, "endOfList": false}),
            json!({"list": [], "startKey": null, "endOfList": true}),
            json!({"list": [{"id": "1:b", "stts": "failed", "err": {"code": "TIMEOUT", "message": "slow"}, "rslv": null}], "startKey": "k", "endOfList": true}),
            json!({"list": [{"id": "1:b", "stts": "failed", "err": {"code": "TIMEOUT"}}], "startKey": "k", "endOfList": true}),
            json!({"list": [{"id": "1:b", "stts": "done"}], "startKey": null, "endOfList": true}),
            json!({"list": [{"id": "1:b", "stts": "resolved", "rslv": {"body": 1}}], "startKey": null, "endOfList": true}),
            json!({"list": [item.clone()], "endOfList": true}),
            json!({"list": [item], "startKey": null}),
            json!({"list": {}, "startKey": null, "endOfList": true}),
        ] {
            same_reading::<HistoryPage>(sample);
        }
    }

    #[test]
    fn the_sdk_reads_stream_pages_as_serde_does() {
        let page = json!({"id": "1:a", "status": "running", "queue_name": "q", "in_queue": 0, "stream": true,
                          "chunks": [{"seq": 1, "txt": "he"}, {"seq": 2, "txt": "llo"}], "last_seq": 2, "more": false});
        let mut failed = page.clone();
        failed["status"] = json!("failed");
        failed["status_code"] = json!(500);
        failed["error"] = json!({"code": "THIRD_PARTY_ERROR", "message": "m", "status_code": 500, "body": "he"});
        let mut truncated = page.clone();
        truncated["truncated"] = json!(true);
        let mut samples = vec![page.clone(), failed, truncated];
        for (key, value) in [
            ("chunks", json!([{"seq": 1}])),
            ("chunks", json!([{"seq": -1, "txt": "x"}])),
            ("chunks", json!({})),
            ("last_seq", json!("2")),
            ("more", json!(null)),
            ("stream", json!(1)),
            ("truncated", json!(null)),
            ("status_code", json!(null)),
            ("error", json!({"message": "no code"})),
        ] {
            let mut sample = page.clone();
            sample[key] = value;
            samples.push(sample);
        }
        for key in ["chunks", "last_seq", "more", "stream", "id"] {
            let mut sample = page.clone();
            sample.as_object_mut().unwrap().remove(key);
            samples.push(sample);
        }
        for sample in samples {
            same_reading::<StreamPage>(sample);
        }
    }

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
        let body: CsrBody = CsrBody { service: Some("s".into()), url: Some("u".into()), ..Default::default() };
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
    fn newest_items_map_to_skapis_names() {
        let raw: RawHistoryItem = serde_json::from_value(json!({
            "id": "1:a", "stts": "resolved", "att": 1700000000, "reqtxt": "draw", "rslvtxt": "an otter", "rslvmk": true, "cmpct": true
        }))
        .unwrap();
        let item = serde_json::to_value(PollingResult::from(raw)).unwrap();
        assert_eq!(item["executed"], json!(1700000000000.0), "att is seconds, executed ms");
        assert_eq!((&item["request_text"], &item["response_text"]), (&json!("draw"), &json!("an otter")));
        assert_eq!((&item["response_complete_marker"], &item["compact"]), (&json!(true), &json!(true)));
        let plain =
            serde_json::to_value(PollingResult::from(serde_json::from_value::<RawHistoryItem>(json!({"id": "1:b", "stts": "pending"})).unwrap()))
                .unwrap();
        assert!(plain.get("executed").is_none() && plain.get("compact").is_none(), "absent, not null: {plain}");
    }

    #[test]
    fn queue_exact_is_a_flag_or_a_name() {
        let flag: PollBody = serde_json::from_value(json!({"queue": "u1", "queue_exact": true})).unwrap();
        assert_eq!(flag.queue_exact.as_ref().and_then(|e| e.exact(flag.queue.as_deref())), Some("u1"));
        let off: PollBody = serde_json::from_value(json!({"queue": "u1", "queue_exact": false})).unwrap();
        assert_eq!(off.queue_exact.as_ref().and_then(|e| e.exact(off.queue.as_deref())), None);
        let name: PollBody = serde_json::from_value(json!({"queue_exact": "img-a"})).unwrap();
        assert_eq!(name.queue_exact.as_ref().and_then(|e| e.exact(None)), Some("img-a"));
    }

    #[test]
    fn running_reads_as_pending_in_1_5_8() {
        assert_eq!(Status::Running.in_form(Form::V1), Status::Pending);
        assert_eq!(Status::Running.in_form(Form::V2), Status::Running);
        assert_eq!(Status::Failed.in_form(Form::V1), Status::Failed);
    }
}
