//! The statements both engines run, written once. They use PostgreSQL's placeholders (`$1`,
//! `$2`, …); SQLite reads the same text with its own numbered ones ([`lite`]). Only where the
//! dialects differ does an engine keep a statement of its own (PostgreSQL's row locks,
//! advisory locks and arrays).
//!
//! Every update that reports whether it changed a row says so with `RETURNING id`, so that
//! both engines count changed rows the same way (as rows returned).
//!
//! The values a statement takes are described here too, once, as [`Param`]s (an engine binds
//! each as its driver's type): what differs between the engines is how they bind, not what.

use super::ServiceList;
use crate::domain::{Claim, DayCount, DayCounter, HistoryQuery, KeyRecord, NewRecord, Outcome};
use skapi_core::wire::Chunk;
use skapi_core::ApiError;

/// `sql` with SQLite's numbered placeholders: `$3` → `?3` (the statements here hold no `$` in
/// any literal).
pub fn lite(sql: &str) -> String {
    sql.replace('$', "?")
}

pub const GET_KEY: &str = "SELECT * FROM keys WHERE service = $1 AND name = $2";
pub const LIST_KEYS: &str = "SELECT * FROM keys WHERE CAST($1 AS TEXT) IS NULL OR service = $1 ORDER BY service, name";
pub const REMOVE_KEY: &str = "DELETE FROM keys WHERE service = $1 AND name = $2 RETURNING name";
pub const INSERT_KEY: &str =
    "INSERT INTO keys (service, name, secret, locked, destinations, positions, rate_per_caller, rate_total, created, updated, request_schema,
        daily_per_caller, daily_total, daily_tokens_per_caller, daily_tokens_total)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)";
/// [`INSERT_KEY`] that replaces a key of the same service and name.
pub const REPLACE_KEY: &str =
    "INSERT INTO keys (service, name, secret, locked, destinations, positions, rate_per_caller, rate_total, created, updated, request_schema,
        daily_per_caller, daily_total, daily_tokens_per_caller, daily_tokens_total)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
     ON CONFLICT (service, name) DO UPDATE SET secret = excluded.secret, locked = excluded.locked, destinations = excluded.destinations,
     positions = excluded.positions, rate_per_caller = excluded.rate_per_caller, rate_total = excluded.rate_total,
     created = excluded.created, updated = excluded.updated, request_schema = excluded.request_schema,
     daily_per_caller = excluded.daily_per_caller, daily_total = excluded.daily_total,
     daily_tokens_per_caller = excluded.daily_tokens_per_caller, daily_tokens_total = excluded.daily_tokens_total";

pub const SERVICE_ORIGINS: &str = "SELECT cors_origins FROM services WHERE service = $1";
pub const SET_SERVICE_ORIGINS: &str = "INSERT INTO services (service, cors_origins, updated) VALUES ($1, $2, $3)
     ON CONFLICT (service) DO UPDATE SET cors_origins = excluded.cors_origins, updated = excluded.updated";
pub const CLEAR_SERVICE_ORIGINS: &str = "DELETE FROM services WHERE service = $1";

/// A service's rule kept as a JSON list of strings: how it is read, set and cleared.
pub struct ListRule {
    pub read: &'static str,
    pub set: &'static str,
    pub clear: &'static str,
    /// What it is, for the error when it cannot be read.
    pub what: &'static str,
}

const ORIGINS: ListRule = ListRule { read: SERVICE_ORIGINS, set: SET_SERVICE_ORIGINS, clear: CLEAR_SERVICE_ORIGINS, what: "cors origins" };
const FORWARD_DESTINATIONS: ListRule = ListRule { read: FORWARDING, set: SET_FORWARDING, clear: CLEAR_FORWARDING, what: "forward destinations" };

/// How `list` is kept.
pub fn list_rule(list: ServiceList) -> &'static ListRule {
    match list {
        ServiceList::CorsOrigins => &ORIGINS,
        ServiceList::ForwardDestinations => &FORWARD_DESTINATIONS,
    }
}

/// The statement and values that set `rule` to `list` — or, with `None`, clear it.
pub fn set_list(rule: &ListRule, service: &str, list: Option<&[String]>, now: u64) -> (&'static str, Vec<Param>) {
    match list {
        Some(list) => (rule.set, Vec::from(params![service, serde_json::to_string(list).expect("strings serialise"), now])),
        None => (rule.clear, Vec::from(params![service])),
    }
}

pub const FORWARDING: &str = "SELECT destinations FROM forwarding WHERE service = $1";
pub const SET_FORWARDING: &str = "INSERT INTO forwarding (service, destinations, updated) VALUES ($1, $2, $3)
     ON CONFLICT (service) DO UPDATE SET destinations = excluded.destinations, updated = excluded.updated";
pub const CLEAR_FORWARDING: &str = "DELETE FROM forwarding WHERE service = $1";

/// A new record, `pending` — or `running` under claim `$17`, leased until `$16`, begun at `$18`,
/// when it starts at once (one write less than a claim after the insert); returns its arrival
/// sequence.
pub const INSERT_RECORD: &str = "INSERT INTO records (id, service, owner, caller, key_name, method, url, key_v1, key_v2, queue, queue_key,
        request, request_body, status, created, updated, expires, lease_until, claim, started, counted_as)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, CASE WHEN CAST($17 AS TEXT) IS NULL THEN 'pending' ELSE 'running' END,
        $14, $14, $15, $16, $17, $18, $19) RETURNING seq";
pub const GET_RECORD: &str = "SELECT * FROM records WHERE id = $1";
/// Ends an unfinished record: status, status code, body, truncated, error code and message, time.
pub const FINISH: &str = "UPDATE records SET status = $2, status_code = $3, response_body = $4, truncated = $5,
        error_code = $6, error_message = $7, updated = $8
     WHERE id = $1 AND status IN ('pending', 'running') RETURNING id";
pub const FAIL_PENDING: &str = "UPDATE records SET status = 'failed', error_code = $2, error_message = $3, updated = $4
     WHERE id = $1 AND status = 'pending' RETURNING id";
/// `pending` → `running`, leased until `$3`, by claim `$4` — or a record claim `$4` already took
/// (asked again after its answer was lost); returns the record, which the runner needs next.
pub const CLAIM: &str = "UPDATE records SET status = 'running', updated = $2, started = $2, lease_until = $3, claim = $4
     WHERE id = $1 AND (status = 'pending' OR (status = 'running' AND claim = $4)) RETURNING *";
/// The oldest unfinished request of a queue, its status and the claim that runs it (a claim
/// reads it first).
pub const QUEUE_HEAD: &str = "SELECT id, status, claim FROM records WHERE queue_key = $1 AND status IN ('pending', 'running') ORDER BY seq LIMIT 1";
/// A queue's head → `running` by claim `$4` (the head was read under a lock); returns the record.
pub const START: &str = "UPDATE records SET status = 'running', updated = $2, started = $2, lease_until = $3, claim = $4 WHERE id = $1 RETURNING *";
pub const RENEW_LEASE: &str = "UPDATE records SET lease_until = $2 WHERE id = $1 AND status = 'running'";
pub const FAIL_EXPIRED_LEASES: &str = "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3
     WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < $3";
pub const FAIL_RUNNING: &str = "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3 WHERE status = 'running'";
pub const PURGE_EXPIRED: &str = "DELETE FROM records WHERE expires <= $1";
/// The chunks of the records [`PURGE_EXPIRED`] deletes (run first).
pub const PURGE_EXPIRED_CHUNKS: &str = "DELETE FROM chunks WHERE request_id IN (SELECT id FROM records WHERE expires <= $1)";

pub const INSERT_CHUNK: &str = "INSERT INTO chunks (request_id, seq, txt) VALUES ($1, $2, $3)";
pub const CHUNKS: &str = "SELECT seq, txt FROM chunks WHERE request_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
pub const CHUNK_TEXTS: &str = "SELECT txt FROM chunks WHERE request_id = $1 ORDER BY seq";
pub const DELETE_CHUNKS: &str = "DELETE FROM chunks WHERE request_id = $1";
/// A finished stream's one stored body.
pub const FINALIZE: &str = "UPDATE records SET response_body = $2, finalized = TRUE, updated = $3 WHERE id = $1";

/// How many records are pending, running, and pending in a queue, in the whole store. (Each
/// count names its status as the partial indexes over unfinished records do, which SQLite
/// needs to use them.)
pub const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM records WHERE status = 'pending'), (SELECT COUNT(*) FROM records WHERE status = 'running'),
        (SELECT COUNT(*) FROM records WHERE status = 'pending' AND queue_key IS NOT NULL)";
pub const COUNT_WAITING: &str = "SELECT COUNT(*) FROM records WHERE service = $1 AND queue = $2 AND status = 'pending'";
/// Unfinished requests of a queue up to and including `$2`: the running head counts (it reads 1).
pub const QUEUE_POSITION: &str = "SELECT COUNT(*) FROM records WHERE queue_key = $1 AND status IN ('pending', 'running') AND seq <= $2";
pub const PENDING: &str = "SELECT * FROM records WHERE status = 'pending' ORDER BY seq";
/// Queues with pending requests and none running.
pub const IDLE_QUEUES: &str = "SELECT DISTINCT queue_key FROM records r WHERE status = 'pending' AND queue_key IS NOT NULL
     AND NOT EXISTS (SELECT 1 FROM records x WHERE x.queue_key = r.queue_key AND x.status = 'running')";
/// Unqueued pending requests accepted before `$1`.
pub const IDLE_REQUESTS: &str = "SELECT id FROM records WHERE status = 'pending' AND queue_key IS NULL AND created < $1 ORDER BY seq LIMIT 1000";

/// A value bound to a statement, as both engines bind it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Text(String),
    /// Times, counts, sequences and status codes (an engine narrows it to a column's width).
    Int(i64),
    Flag(bool),
    Bytes(Vec<u8>),
}

impl From<&str> for Param {
    fn from(v: &str) -> Param {
        Param::Text(v.to_owned())
    }
}

impl From<String> for Param {
    fn from(v: String) -> Param {
        Param::Text(v)
    }
}

impl From<&String> for Param {
    fn from(v: &String) -> Param {
        Param::Text(v.clone())
    }
}

impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}

impl From<u64> for Param {
    fn from(v: u64) -> Param {
        Param::Int(ms(v))
    }
}

impl From<u32> for Param {
    fn from(v: u32) -> Param {
        Param::Int(v.into())
    }
}

impl From<u16> for Param {
    fn from(v: u16) -> Param {
        Param::Int(v.into())
    }
}

impl From<bool> for Param {
    fn from(v: bool) -> Param {
        Param::Flag(v)
    }
}

impl From<&[u8]> for Param {
    fn from(v: &[u8]) -> Param {
        Param::Bytes(v.to_vec())
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Param {
        v.map_or(Param::Null, Into::into)
    }
}

/// The values of a statement, in placeholder order: `params![id, now]` (an array).
macro_rules! params {
    ($($value:expr),* $(,)?) => { [$($crate::store::sql::Param::from($value)),*] };
}
pub(crate) use params;

/// [`INSERT_KEY`] / [`REPLACE_KEY`].
pub fn insert_key(key: &KeyRecord) -> Vec<Param> {
    let destinations = serde_json::to_string(&key.destinations).expect("strings serialise");
    let positions = serde_json::to_string(&key.positions).expect("positions serialise");
    Vec::from(params![
        &key.service,
        &key.name,
        key.sealed_secret.as_slice(),
        key.locked,
        destinations,
        positions,
        key.rate_per_caller,
        key.rate_total,
        key.created,
        key.updated,
        key.request_schema.as_ref().map(super::row::json_text),
        key.daily_per_caller,
        key.daily_total,
        key.daily_tokens_per_caller,
        key.daily_tokens_total,
    ])
}

/// [`INSERT_RECORD`].
pub fn insert_record(r: &NewRecord, claim: Option<&Claim>) -> Vec<Param> {
    Vec::from(params![
        &r.id,
        &r.service,
        &r.owner,
        &r.caller,
        &r.key_name,
        r.method.lower(),
        &r.url,
        &r.key_v1,
        &r.key_v2,
        r.queue.as_ref(),
        r.queue_key.as_ref(),
        serde_json::to_string(&r.request).expect("wire bodies serialise"),
        r.request_body.as_ref().map(super::row::json_text),
        r.created,
        r.expires,
        claim.map(|c| c.lease_until),
        claim.map(|c| c.token.as_str()),
        claim.map(|c| c.now),
        (!r.counted_as.is_empty()).then(|| serde_json::to_string(&r.counted_as).expect("strings serialise")),
    ])
}

/// [`FINISH`].
pub fn finish(id: &str, outcome: &Outcome, now: u64) -> Vec<Param> {
    let (status, status_code, body, truncated, error) = match outcome {
        Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
        Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
    };
    Vec::from(params![
        id,
        status,
        status_code,
        body.map(super::row::json_text),
        truncated,
        error.map(|e| e.code.as_str()),
        error.map(|e| e.message.as_str()),
        now,
    ])
}

/// [`FAIL_PENDING`].
pub fn fail_pending(id: &str, error: &ApiError, now: u64) -> Vec<Param> {
    Vec::from(params![id, error.code.as_str(), error.message.as_str(), now])
}

/// [`FAIL_RUNNING`] and [`FAIL_EXPIRED_LEASES`].
pub fn fail_running(error: &ApiError, now: u64) -> Vec<Param> {
    Vec::from(params![error.code.as_str(), error.message.as_str(), now])
}

/// [`CLAIM`] and [`START`].
pub fn claim(id: &str, claim: &Claim) -> Vec<Param> {
    Vec::from(params![id, claim.now, claim.lease_until, claim.token.as_str()])
}

/// [`INSERT_CHUNK`].
pub fn chunk(id: &str, chunk: &Chunk) -> Vec<Param> {
    Vec::from(params![id, chunk.seq, chunk.txt.as_str()])
}

/// What a daily counter has counted on day `$2`: requests, tokens.
pub const QUOTA_COUNT: &str = "SELECT count, tokens FROM quota_days WHERE counter = $1 AND day = $2";
/// One more request for a daily counter, unless its requests have reached `$3` or its tokens
/// `$4`: a row returned when counted.
pub const QUOTA_TAKE: &str = "INSERT INTO quota_days (counter, day, count, tokens) VALUES ($1, $2, 1, 0)
     ON CONFLICT (counter, day) DO UPDATE SET count = quota_days.count + 1
     WHERE quota_days.count < $3 AND quota_days.tokens < $4 RETURNING count";
/// `$3` more tokens for a daily counter.
pub const TOKENS_ADD: &str = "INSERT INTO quota_days (counter, day, count, tokens) VALUES ($1, $2, 0, $3)
     ON CONFLICT (counter, day) DO UPDATE SET tokens = quota_days.tokens + excluded.tokens";
/// [`QUOTA_TAKE`]'s values: a limit left out is one never reached.
pub fn quota_take(counter: &DayCounter, day: i64) -> Vec<Param> {
    let tokens = counter.tokens.map_or(i64::MAX, |t| i64::try_from(t).unwrap_or(i64::MAX));
    Vec::from(params![&counter.name, day, counter.requests.map_or(i64::MAX, i64::from), tokens])
}

/// A [`QUOTA_COUNT`] row: requests, tokens.
pub fn day_count(requests: i64, tokens: i64) -> DayCount {
    DayCount { requests: requests.max(0) as u64, tokens: tokens.max(0) as u64 }
}

/// Counters of days before `$1` (they count nothing any more).
pub const QUOTA_PURGE: &str = "DELETE FROM quota_days WHERE day < $1";

/// A UTC day, as quota counters number them.
pub const DAY_MS: u64 = 86_400_000;

/// [`QUOTA_PURGE`]'s value when records are purged up to `cutoff` (ms): the days before the one
/// before it (a quota counts today only; yesterday's is kept while the day turns).
pub fn quota_days_before(cutoff: u64) -> Vec<Param> {
    Vec::from(params![(cutoff / DAY_MS) as i64 - 1])
}

/// A history listing: the statement and its values, in placeholder order.
pub fn history(q: &HistoryQuery) -> (String, Vec<Param>) {
    let mut args = Vec::from(params![&q.service, &q.caller, &q.key, q.live_at]);
    let mut sql = String::from("SELECT * FROM records WHERE service = $1 AND caller = $2 AND (key_v1 = $3 OR key_v2 = $3) AND expires > $4");
    let mut and = |condition: &str, arg: Param| {
        args.push(arg);
        // Every condition names its value `$_`: the next number.
        sql.push_str(&condition.replace("$_", &format!("${}", args.len())));
    };
    if let Some(prefix) = &q.queue_prefix {
        and(" AND substr(queue, 1, length($_)) = $_", Param::from(prefix));
    }
    if let Some(exact) = &q.queue_exact {
        and(" AND queue = $_", Param::from(exact));
    }
    if let Some(exclude) = &q.queue_exclude {
        and(" AND (queue IS NULL OR queue <> $_)", Param::from(exclude));
    }
    if let Some(status) = q.status {
        and(" AND status = $_", Param::from(status.as_str()));
    }
    if let Some(after) = q.after_seq {
        and(if q.ascending { " AND seq > $_" } else { " AND seq < $_" }, Param::Int(after));
    }
    and(if q.ascending { " ORDER BY seq ASC LIMIT $_" } else { " ORDER BY seq DESC LIMIT $_" }, Param::from(q.limit));
    (sql, args)
}

/// A time or count as a database integer.
pub fn ms(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_reads_the_same_numbered_placeholders() {
        assert_eq!(lite(FAIL_PENDING), FAIL_PENDING.replace("$2", "?2").replace("$1", "?1").replace("$3", "?3").replace("$4", "?4"));
        assert!(!lite(INSERT_RECORD).contains('$'));
    }

    #[test]
    fn history_numbers_its_values_in_order() {
        let q = HistoryQuery {
            service: "s".into(),
            caller: "c".into(),
            key: "k".into(),
            queue_prefix: Some("q".into()),
            status: Some(skapi_core::wire::Status::Pending),
            after_seq: Some(7),
            limit: 10,
            ..Default::default()
        };
        let (sql, args) = history(&q);
        assert!(sql.ends_with("AND substr(queue, 1, length($5)) = $5 AND status = $6 AND seq < $7 ORDER BY seq DESC LIMIT $8"), "{sql}");
        assert_eq!(args.len(), 8);
        assert_eq!(args[4], Param::Text("q".into()));
        assert_eq!(args[6], Param::Int(7));
        assert_eq!(args[7], Param::Int(10));
    }
}
