//! What the server keeps, as the rest of the server sees it: keys (their values sealed),
//! requests and how they ended, and the questions asked of them. The store (`crate::store`)
//! reads and writes these; it does not define them.

use serde_json::Value;
use skapi_core::positions::Position;
use skapi_core::wire::{CsrBody, Status};
use skapi_core::{ApiError, Method};

/// A client-secret key as stored: the value only sealed. (`Default`: no value, no destination.)
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeyRecord {
    pub service: String,
    pub name: String,
    pub sealed_secret: Vec<u8>,
    pub locked: bool,
    /// Where the secret may be sent (`Any` only when the operator chose it).
    pub destinations: crate::destination::Destinations,
    /// Where the placeholder may stand; empty = anywhere.
    pub positions: Vec<Position>,
    /// Requests per minute one caller may make with this key.
    pub rate_per_caller: Option<u32>,
    /// Requests per minute all callers together may make with this key.
    pub rate_total: Option<u32>,
    pub created: u64,
    pub updated: u64,
    /// Request rules: a JSON Schema each request must satisfy (`crate::rules`).
    pub request_schema: Option<Value>,
    /// Requests a UTC day one caller may make with this key.
    pub daily_per_caller: Option<u32>,
    /// Requests a UTC day all callers together may make with this key.
    pub daily_total: Option<u32>,
    /// Tokens (as answers report them) a UTC day one caller may use with this key.
    pub daily_tokens_per_caller: Option<u64>,
    /// Tokens a UTC day all callers together may use with this key.
    pub daily_tokens_total: Option<u64>,
}

impl KeyRecord {
    /// Whether any daily quota or token budget holds for this key (then its use is counted).
    pub fn counts_days(&self) -> bool {
        self.daily_per_caller.is_some() || self.daily_total.is_some() || self.daily_tokens_per_caller.is_some() || self.daily_tokens_total.is_some()
    }
}

/// A request as accepted by `csr`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// The short id `csr` answered.
    pub id: String,
    pub service: String,
    pub owner: String,
    /// Who may read it: `sub:<user>`, `pid:<public identifier>` or `anon:<ip and agent>`.
    pub caller: String,
    /// Who its key's per-caller limits counted it as (the tokens its answer used count there).
    pub counted_as: Vec<String>,
    pub key_name: String,
    pub method: Method,
    pub url: String,
    /// 1.5.8 full-id key (`[METHOD]url` + `#queue`).
    pub key_v1: String,
    /// 2.0 full-id key (`[METHOD]url#service`).
    pub key_v2: String,
    pub queue: Option<String>,
    /// Unambiguous identity of the queue (service, method, url, queue name), when queued.
    pub queue_key: Option<String>,
    /// The request as received, placeholders included: what a restart re-runs.
    pub request: CsrBody,
    pub request_body: Option<Value>,
    pub created: u64,
    pub expires: u64,
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Resolved { status_code: u16, body: Value, truncated: bool },
    Failed { error: ApiError, status_code: Option<u16>, body: Option<Value>, truncated: bool },
}

impl Outcome {
    /// `resolved`, or the failure's error code (for logs, metrics and per-key figures).
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Resolved { .. } => "resolved",
            Outcome::Failed { error, .. } => error.code.as_str(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Arrival order.
    pub seq: i64,
    pub new: NewRecord,
    pub status: Status,
    pub outcome: Option<Outcome>,
    pub updated: u64,
    /// A streamed answer whose chunks were replaced by one stored body (`csr-finalize`).
    pub finalized: bool,
    /// When it began executing (ms): claimed to be sent. `None` while it waits.
    pub executed: Option<u64>,
}

impl Record {
    /// A record as the store's `insert_record` wrote it with `claim`: `running` since it arrived,
    /// begun at the claim's time.
    pub fn started(seq: i64, new: NewRecord, claim: &Claim) -> Record {
        let updated = new.created;
        Record { seq, new, status: Status::Running, outcome: None, updated, finalized: false, executed: Some(claim.now) }
    }

    /// True for a request sent with `stream`, whose answer is (still) kept in chunks.
    pub fn streams(&self) -> bool {
        self.new.request.stream == Some(true) && !self.finalized
    }
}

/// A claim on a request: when, the lease it takes, and a token naming this attempt — so that a
/// claim whose answer was lost (the connection broke as it committed) can be asked again and
/// found to have been taken, rather than leaving a request `running` that nobody runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub now: u64,
    pub lease_until: u64,
    pub token: String,
}

/// How `csr-finalize` went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finalize {
    Done,
    /// The request has not finished yet.
    NotFinished,
    /// Not sent with `stream`, or finalized already: its answer is stored as one body.
    NotStream,
}

/// Filters of a history listing; `key` matches a record's 1.5.8 or 2.0 key.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub service: String,
    pub caller: String,
    pub key: String,
    pub queue_prefix: Option<String>,
    pub queue_exact: Option<String>,
    pub queue_exclude: Option<String>,
    pub status: Option<Status>,
    pub ascending: bool,
    pub limit: u32,
    /// Continue after this `seq` (exclusive).
    pub after_seq: Option<i64>,
    /// Only records that have not expired at this time (ms).
    pub live_at: u64,
}

/// A counter of one UTC day that a request of a key counts on — the key's total (`*`) or one
/// name its caller is counted as — and the limits it is held to there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayCounter {
    pub name: String,
    /// Requests a day (`None`: counted, not limited).
    pub requests: Option<u32>,
    /// Tokens a day (`None`: counted, not limited).
    pub tokens: Option<u64>,
}

/// What a day's counter has counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DayCount {
    pub requests: u64,
    pub tokens: u64,
}

/// Which of a counter's limits a request ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Requests,
    Tokens,
}

impl DayCounter {
    /// The limit `used` has reached, if any: then one more request is refused.
    pub fn used_up(&self, used: DayCount) -> Option<Limit> {
        if self.requests.is_some_and(|quota| used.requests >= u64::from(quota)) {
            Some(Limit::Requests)
        } else if self.tokens.is_some_and(|budget| used.tokens >= budget) {
            Some(Limit::Tokens)
        } else {
            None
        }
    }
}
