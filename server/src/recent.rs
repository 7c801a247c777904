//! Requests this process has just finished, kept in memory for the poll that usually comes
//! next: that poll is then answered without a trip to the store.
//!
//! Sound because a finished record does not change: only a stream's `csr-finalize` rewrites
//! one (streams are never kept here) and the purge deletes expired ones (their expiry is
//! checked on every read, as for a stored record). A record enters only once its end has
//! been written, and leaves when it is read once or when newer ones push it out.
//!
//! Memory is bounded by bytes as well as by count: an answer may be megabytes, and a caller
//! need never poll. A large record is not kept (its poll reads the store, as it would anyway).

use crate::domain::{Outcome, Record};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many finished records are kept at most (a few seconds' worth under load).
const KEPT: usize = 4096;
/// Roughly how many bytes the kept records hold at most together ...
const KEPT_BYTES: usize = 8 << 20;
/// ... and each at most: a record over this is not kept.
const RECORD_BYTES: usize = 64 << 10;

#[derive(Default)]
pub struct Recent {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Each record with its weight (see [`weight`]).
    records: HashMap<String, (Record, usize)>,
    /// Ids in the order they came in: the oldest go first.
    order: VecDeque<String>,
    /// The weights of the records kept now, together.
    bytes: usize,
}

/// Roughly how many bytes `values` hold (strings by length, anything else a few bytes), counted
/// no further than just past `limit`: a large answer costs no more to weigh than a small one.
fn weight<'a>(values: impl IntoIterator<Item = &'a Value>, limit: usize) -> usize {
    let (mut total, mut stack) = (0, values.into_iter().collect::<Vec<_>>());
    while let Some(value) = stack.pop() {
        total += 8 + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => {
                stack.extend(items);
                0
            }
            Value::Object(map) => {
                stack.extend(map.values());
                map.keys().map(String::len).sum()
            }
            _ => 0,
        };
        if total > limit {
            break;
        }
    }
    total
}

/// A record's [`weight`]: its request's values, files and raw body, and its answer.
fn record_weight(record: &Record) -> usize {
    let request = &record.new.request;
    let answer = match &record.outcome {
        Some(Outcome::Resolved { body, .. }) => Some(body),
        Some(Outcome::Failed { body, .. }) => body.as_ref(),
        None => None,
    };
    let raw = request.body_b64.as_ref().map_or(0, String::len) + request.files.iter().flatten().map(|f| f.body_b64.len()).sum::<usize>();
    let values = [&request.headers, &request.data, &request.params, &record.new.request_body].into_iter().flatten().chain(answer);
    raw + weight(values, RECORD_BYTES.saturating_sub(raw))
}

impl Recent {
    /// Keeps a record whose end has been written (one that streams is not kept).
    pub fn finished(&self, record: Record) {
        if record.streams() || !record.status.is_final() {
            return;
        }
        let bytes = record_weight(&record);
        if bytes > RECORD_BYTES {
            return;
        }
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while kept.order.len() >= KEPT || kept.bytes + bytes > KEPT_BYTES {
            let Some(oldest) = kept.order.pop_front() else { break };
            if let Some((_, gone)) = kept.records.remove(&oldest) {
                kept.bytes -= gone;
            }
        }
        kept.order.push_back(record.new.id.clone());
        kept.bytes += bytes;
        kept.records.insert(record.new.id.clone(), (record, bytes));
    }

    /// Whether the record with this short id is kept now.
    pub fn holds(&self, id: &str) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).records.contains_key(id)
    }

    /// The finished record with this short id, if kept; it is kept no longer.
    pub fn take(&self, id: &str) -> Option<Record> {
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (record, bytes) = kept.records.remove(id)?;
        kept.bytes -= bytes;
        // Its place in `order` is left to age out: `finished` removes by id, which is gone.
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{NewRecord, Outcome};
    use skapi_core::wire::{CsrBody, Status};

    fn record(id: &str, status: Status, stream: bool) -> Record {
        let request = CsrBody { stream: stream.then_some(true), ..Default::default() };
        let new = NewRecord {
            id: id.into(),
            service: "s".into(),
            owner: "o".into(),
            caller: "c".into(),
            counted_as: vec!["c".into()],
            key_name: "k".into(),
            method: skapi_core::Method::Get,
            url: "https://x.example/".into(),
            key_v1: String::new(),
            key_v2: String::new(),
            queue: None,
            queue_key: None,
            request,
            request_body: None,
            created: 1,
            expires: 2,
        };
        let outcome = Some(Outcome::Resolved { status_code: 200, body: serde_json::json!(1), truncated: false });
        Record { seq: 1, new, status, outcome, updated: 1, finalized: false, executed: None }
    }

    #[test]
    fn keeps_finished_records_until_read_once() {
        let recent = Recent::default();
        recent.finished(record("a", Status::Resolved, false));
        assert_eq!(recent.take("a").map(|r| r.new.id), Some("a".into()));
        assert!(recent.take("a").is_none(), "read once, then from the store");
    }

    #[test]
    fn keeps_no_stream_and_nothing_unfinished() {
        let recent = Recent::default();
        recent.finished(record("s", Status::Resolved, true));
        recent.finished(record("r", Status::Running, false));
        assert!(recent.take("s").is_none() && recent.take("r").is_none());
    }

    /// A finished record whose answer is a string of `len` bytes.
    fn answered(id: &str, len: usize) -> Record {
        let mut r = record(id, Status::Resolved, false);
        r.outcome = Some(Outcome::Resolved { status_code: 200, body: serde_json::json!({"text": "x".repeat(len)}), truncated: false });
        r
    }

    #[test]
    fn a_large_record_is_not_kept() {
        let recent = Recent::default();
        recent.finished(answered("big", RECORD_BYTES));
        recent.finished(answered("small", 1000));
        assert!(!recent.holds("big") && recent.holds("small"));
        let mut files = record("file", Status::Resolved, false);
        files.new.request.files = Some(vec![skapi_core::wire::WireFile {
            filename: "f".into(),
            content_type: "application/octet-stream".into(),
            body_b64: "A".repeat(RECORD_BYTES),
        }]);
        recent.finished(files);
        assert!(!recent.holds("file"), "the request's files weigh too");
    }

    #[test]
    fn the_kept_bytes_stay_within_their_bound() {
        let recent = Recent::default();
        let each = RECORD_BYTES / 2;
        let fit = KEPT_BYTES / each;
        for i in 0..fit * 2 {
            recent.finished(answered(&i.to_string(), each));
        }
        assert!(!recent.holds("0"), "the oldest made room");
        assert!(recent.holds(&(fit * 2 - 1).to_string()));
        let bytes = recent.inner.lock().unwrap().bytes;
        assert!(bytes <= KEPT_BYTES && bytes > KEPT_BYTES / 2, "{bytes}");
        for i in 0..fit * 2 {
            recent.take(&i.to_string());
        }
        assert_eq!(recent.inner.lock().unwrap().bytes, 0, "what is read is counted out");
    }

    #[test]
    fn weighing_stops_past_its_limit() {
        let many = Value::Array(vec![Value::from("abcdefgh"); 1_000_000]);
        let w = weight([&many], 1000);
        assert!(w > 1000 && w < 1100, "{w}");
    }

    #[test]
    fn the_oldest_make_room() {
        let recent = Recent::default();
        for i in 0..KEPT + 10 {
            recent.finished(record(&i.to_string(), Status::Failed, false));
        }
        assert!(recent.take("0").is_none() && recent.take("9").is_none());
        assert!(recent.take("10").is_some() && recent.take(&(KEPT + 9).to_string()).is_some());
        let kept = recent.inner.lock().unwrap();
        assert!(kept.order.len() <= KEPT && kept.records.len() <= KEPT);
    }
}
