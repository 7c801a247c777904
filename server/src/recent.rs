//! Requests this process has just finished, kept in memory for the poll that usually comes
//! next: that poll is then answered without a trip to the store.
//!
//! Sound because a finished record does not change: only a stream's `csr-finalize` rewrites
//! one (streams are never kept here) and the purge deletes expired ones (their expiry is
//! checked on every read, as for a stored record). A record enters only once its end has
//! been written, and leaves when it is read once or when newer ones push it out.

use crate::store::Record;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// How many finished records are kept at most (a few seconds' worth under load).
const KEPT: usize = 4096;

#[derive(Default)]
pub struct Recent {
    inner: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    records: HashMap<String, Record>,
    /// Ids in the order they came in: the oldest go first.
    order: VecDeque<String>,
}

impl Recent {
    /// Keeps a record whose end has been written (one that streams is not kept).
    pub fn finished(&self, record: Record) {
        if record.streams() || !record.status.is_final() {
            return;
        }
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while kept.order.len() >= KEPT {
            if let Some(oldest) = kept.order.pop_front() {
                kept.records.remove(&oldest);
            }
        }
        kept.order.push_back(record.new.id.clone());
        kept.records.insert(record.new.id.clone(), record);
    }

    /// Whether the record with this short id is kept now.
    pub fn holds(&self, id: &str) -> bool {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).records.contains_key(id)
    }

    /// The finished record with this short id, if kept; it is kept no longer.
    pub fn take(&self, id: &str) -> Option<Record> {
        let mut kept = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let record = kept.records.remove(id)?;
        // Its place in `order` is left to age out: `finished` removes by id, which is gone.
        Some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewRecord, Outcome};
    use skapi_core::wire::{CsrBody, Status};

    fn record(id: &str, status: Status, stream: bool) -> Record {
        let request = CsrBody { stream: stream.then_some(true), ..Default::default() };
        let new = NewRecord {
            id: id.into(),
            service: "s".into(),
            owner: "o".into(),
            caller: "c".into(),
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
        Record { seq: 1, new, status, outcome, updated: 1, finalized: false }
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
