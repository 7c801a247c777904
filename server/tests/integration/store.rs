//! The storage engines' conformance suite: one test per behaviour, each run on SQLite and on
//! PostgreSQL (`store::sqlite::…`, `store::postgres::…`), against the `Store` traits.

use crate::support::*;
use serde_json::json;
use skapi_core::positions::Position;
use skapi_core::wire::{Chunk, CsrBody, Status};
use skapi_core::{ApiError, ErrorCode, Method};
use skapi_server::domain::{Claim, DayCount, DayCounter, Finalize, HistoryQuery, KeyRecord, Limit, NewRecord, Outcome};
use skapi_server::store::postgres::PgStore;
use skapi_server::store::sqlite::{SqliteStore, DB_FILE};
use skapi_server::store::{Counts, IdleWork, KeyStore, QuotaCheck, RecordStore, Store, StoreError};

fn key(name: &str) -> KeyRecord {
    KeyRecord {
        service: SERVICE.into(),
        name: name.into(),
        sealed_secret: vec![1, 2, 3],
        locked: true,
        destinations: skapi_server::destination::Destinations::Only(vec!["https://api.example.com/v1".into()]),
        positions: vec![Position::Headers],
        rate_per_caller: Some(5),
        rate_total: None,
        created: 1,
        updated: 2,
        request_schema: Some(json!({"properties": {"data": {"properties": {"n": {"maximum": 1}}}}})),
        daily_per_caller: Some(100),
        daily_total: None,
        daily_tokens_per_caller: Some(5_000_000_000),
        daily_tokens_total: None,
    }
}

fn record(id: &str, queue: Option<&str>, created: u64) -> NewRecord {
    let url = "https://api.example.com/v1/x";
    NewRecord {
        id: id.into(),
        service: SERVICE.into(),
        owner: OWNER.into(),
        caller: "pid:a".into(),
        counted_as: vec!["pid:a".into(), "addr:192.0.2.0/24".into()],
        key_name: "k".into(),
        method: Method::Post,
        url: url.into(),
        key_v1: skapi_core::id::key_v1(Method::Post, url, queue),
        key_v2: skapi_core::id::key_v2(Method::Post, url, SERVICE),
        queue: queue.map(str::to_owned),
        queue_key: queue.map(|q| format!("k:{q}")),
        request: serde_json::from_value::<CsrBody>(json!({"url": url, "data": {"n": created}})).unwrap(),
        request_body: Some(json!({"n": created})),
        created,
        expires: created + 1_000_000,
    }
}

/// A store of `engine`, fresh, and where its data lives (for tests that spoil it by hand).
struct Opened {
    store: Box<dyn Store>,
    at: Place,
}

enum Place {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

async fn open(engine: Engine) -> Opened {
    match engine {
        Engine::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            Opened { store: Box::new(SqliteStore::open(&dir.path().join(DB_FILE)).unwrap()), at: Place::Sqlite(dir) }
        }
        Engine::Postgres => {
            let url = blocking(fresh_postgres_database);
            Opened { store: Box::new(PgStore::open(&url).await.unwrap()), at: Place::Postgres(url) }
        }
    }
}

impl Opened {
    /// Runs `sql` ($1 the one value) on the database beside the store, as another process would.
    async fn alter(&self, sql: &str, value: &str) {
        match &self.at {
            Place::Sqlite(dir) => {
                rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap().execute(&sql.replace('$', "?"), [value]).unwrap();
            }
            Place::Postgres(url) => {
                let (raw, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                raw.execute(sql, &[&value]).await.unwrap();
            }
        }
    }
}

fn claim(now: u64, lease_until: u64, token: &str) -> Claim {
    Claim { now, lease_until, token: token.into() }
}

/// `1:a` and `2:b` in queue `q`, `3:c` unqueued, accepted in that order; their sequences.
async fn three_records(store: &dyn Store) -> [i64; 3] {
    let s1 = store.insert_record(&record("1:a", Some("q"), 10), None).await.unwrap();
    let s2 = store.insert_record(&record("2:b", Some("q"), 11), None).await.unwrap();
    let s3 = store.insert_record(&record("3:c", None, 12), None).await.unwrap();
    [s1, s2, s3]
}

fn pending_ids(records: Vec<skapi_server::domain::Record>) -> Vec<String> {
    records.into_iter().map(|r| r.new.id).collect()
}

async fn keys_are_added_replaced_listed_and_removed(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    store.insert_key(&key("k"), false).await.unwrap();
    assert!(matches!(store.insert_key(&key("k"), false).await, Err(StoreError::Exists(_))));
    let mut changed = key("k");
    changed.locked = false;
    store.insert_key(&changed, true).await.unwrap();
    assert_eq!(store.get_key(SERVICE, "k").await.unwrap(), Some(changed));
    store.insert_key(&KeyRecord { service: "other".into(), ..key("k2") }, false).await.unwrap();
    assert_eq!(store.list_keys(Some(SERVICE)).await.unwrap().len(), 1);
    assert_eq!(store.list_keys(None).await.unwrap().len(), 2);
    assert!(store.remove_key("other", "k2").await.unwrap());
    assert!(!store.remove_key("other", "k2").await.unwrap());
    assert_eq!(store.get_key("other", "k2").await.unwrap(), None);
}

async fn service_rules_are_set_and_cleared_apart(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(store.service_origins(SERVICE).await.unwrap(), None);
    assert_eq!(store.forward_destinations(SERVICE).await.unwrap(), None, "no service forwards without a secret until told");
    store.set_service_origins(SERVICE, Some(&list(&["https://a.example"])), 5).await.unwrap();
    store.set_forward_destinations(SERVICE, Some(&list(&["https://api.example.com/v1"])), 5).await.unwrap();
    assert_eq!(store.service_origins(SERVICE).await.unwrap(), Some(list(&["https://a.example"])));
    assert_eq!(store.forward_destinations(SERVICE).await.unwrap(), Some(list(&["https://api.example.com/v1"])));
    store.set_forward_destinations(SERVICE, Some(&list(&["https://b.example.com/", "https://*.c.example.com/"])), 6).await.unwrap();
    assert_eq!(store.forward_destinations(SERVICE).await.unwrap(), Some(list(&["https://b.example.com/", "https://*.c.example.com/"])));
    store.set_service_origins(SERVICE, None, 7).await.unwrap();
    assert_eq!(store.service_origins(SERVICE).await.unwrap(), None);
    assert!(store.forward_destinations(SERVICE).await.unwrap().is_some(), "each rule apart");
    store.set_forward_destinations(SERVICE, None, 8).await.unwrap();
    assert_eq!(store.forward_destinations(SERVICE).await.unwrap(), None);
    assert_eq!(store.forward_destinations("other").await.unwrap(), None);
}

async fn records_keep_acceptance_order_and_queue_counts(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let [s1, s2, s3] = three_records(store.as_ref()).await;
    assert!(s1 < s2 && s2 < s3);
    assert_eq!(store.queue_position("k:q", s2).await.unwrap(), 2);
    assert_eq!(store.count_waiting(SERVICE, "q").await.unwrap(), 2);
    assert_eq!(pending_ids(store.pending().await.unwrap()), ["1:a", "2:b", "3:c"]);
    assert_eq!(store.counts().await.unwrap(), Counts { pending: 3, running: 0, queued: 2 });
}

async fn a_queue_runs_one_claimed_request_at_a_time(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let [s1, s2, _] = three_records(store.as_ref()).await;
    let first = claim(20, 1_000, "i1.1");
    let head = store.claim_next_in_queue("k:q", &first).await.unwrap().expect("the head is claimed");
    assert_eq!((head.new.id.as_str(), head.status, head.updated), ("1:a", Status::Running, 20), "the claim returns the record as it now is");
    // Asked again as it was (its answer lost to an outage), the same claim finds what it took.
    assert_eq!(store.claim_next_in_queue("k:q", &first).await.unwrap().map(|r| r.new.id), Some("1:a".to_owned()));
    assert_eq!(store.claim_next_in_queue("k:q", &claim(21, 1_000, "i1.2")).await.unwrap(), None, "one at a time per queue");
    assert!(store.claim("1:a", &claim(21, 1_000, "i2.1")).await.unwrap().is_none(), "only a pending record starts");
    let idle = IdleWork { queues: vec![], requests: vec!["3:c".to_owned()] };
    assert_eq!(store.idle_work(100).await.unwrap(), idle, "the queue is busy; 3:c waits");
    let queued: Vec<String> = pending_ids(store.pending().await.unwrap()).into_iter().filter(|id| id != "3:c").collect();
    assert_eq!(queued, ["2:b"], "2:b is the queue's next");
    assert_eq!(store.counts().await.unwrap(), Counts { pending: 2, running: 1, queued: 1 });
    assert_eq!((store.queue_position("k:q", s1).await.unwrap(), store.queue_position("k:q", s2).await.unwrap()), (1, 2), "the running head counts");
}

async fn a_record_ends_once_and_reads_back_as_written(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let [s1, ..] = three_records(store.as_ref()).await;
    store.claim_next_in_queue("k:q", &claim(20, 1_000, "i1.1")).await.unwrap();
    let resolved = Outcome::Resolved { status_code: 200, body: json!({"ok": true}), truncated: false };
    assert!(store.finish("1:a", &resolved, 30).await.unwrap());
    assert!(!store.finish("1:a", &resolved, 31).await.unwrap(), "a finished record stays as it is");
    let got = store.get_record("1:a").await.unwrap().unwrap();
    assert_eq!((got.status, got.outcome, got.updated, got.seq), (Status::Resolved, Some(resolved), 30, s1));
    assert_eq!(got.new, record("1:a", Some("q"), 10));
    let canceled = ApiError::new(ErrorCode::Canceled, "cancelled");
    assert!(store.fail_pending("2:b", &canceled, 40).await.unwrap());
    assert!(!store.fail_pending("2:b", &canceled, 41).await.unwrap());
    match store.get_record("2:b").await.unwrap().unwrap().outcome {
        Some(Outcome::Failed { error, .. }) => assert_eq!(error.code, ErrorCode::Canceled),
        other => panic!("{other:?}"),
    }
    assert_eq!(pending_ids(store.pending().await.unwrap()), ["3:c"]);
}

async fn a_claim_holds_a_lease_until_it_runs_out(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    three_records(store.as_ref()).await;
    let third = claim(50, 55, "i1.3");
    let claimed = store.claim("3:c", &third).await.unwrap().expect("a pending record is claimed");
    assert_eq!((claimed.new.id.as_str(), claimed.status, claimed.executed), ("3:c", Status::Running, Some(50)), "begun when claimed");
    assert_eq!(store.get_record("2:b").await.unwrap().unwrap().executed, None, "a waiting request has not begun");
    assert!(store.claim("3:c", &third).await.unwrap().is_some(), "asked again, the same claim finds it taken by itself");
    assert!(store.claim("3:c", &claim(50, 55, "i2.2")).await.unwrap().is_none(), "another claim does not");
    assert_eq!(store.renew_leases(&["3:c".to_owned(), "2:b".to_owned()], 58).await.unwrap(), 1, "the one running is renewed");
    let interrupted = ApiError::new(ErrorCode::Interrupted, "stopped");
    assert_eq!(store.fail_expired_leases(&interrupted, 57).await.unwrap(), 0, "the lease still holds");
    assert_eq!(store.fail_expired_leases(&interrupted, 59).await.unwrap(), 1, "the lease ran out");
    assert_eq!(store.renew_leases(&["3:c".to_owned()], 70).await.unwrap(), 0, "ended elsewhere: not renewed");
    assert_eq!(store.get_record("3:c").await.unwrap().unwrap().status, Status::Failed);
    assert_eq!(store.fail_running(&interrupted, 60).await.unwrap(), 0);
    store.claim("1:a", &claim(61, 100, "i1.4")).await.unwrap().expect("claimed");
    assert_eq!(store.fail_running(&interrupted, 62).await.unwrap(), 1, "after a crash, whatever ran ends");
}

async fn history_filters_and_pages(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let [_, _, s3] = three_records(store.as_ref()).await;
    store.finish("1:a", &Outcome::Resolved { status_code: 200, body: json!(1), truncated: false }, 30).await.unwrap();
    let query = async |f: &dyn Fn(&mut HistoryQuery)| {
        let mut q = HistoryQuery {
            service: SERVICE.into(),
            caller: "pid:a".into(),
            key: skapi_core::id::key_v2(Method::Post, "https://api.example.com/v1/x", SERVICE),
            limit: 10,
            live_at: 0,
            ..Default::default()
        };
        f(&mut q);
        store.history(&q).await.unwrap().into_iter().map(|r| r.new.id).collect::<Vec<_>>()
    };
    assert_eq!(query(&|_| {}).await, vec!["3:c", "2:b", "1:a"]);
    assert_eq!(query(&|q| q.ascending = true).await, vec!["1:a", "2:b", "3:c"]);
    assert_eq!(query(&|q| q.queue_prefix = Some("q".into())).await, vec!["2:b", "1:a"]);
    assert_eq!(query(&|q| q.queue_exact = Some("q".into())).await, vec!["2:b", "1:a"]);
    assert_eq!(query(&|q| q.queue_exclude = Some("q".into())).await, vec!["3:c"]);
    assert_eq!(query(&|q| q.status = Some(Status::Resolved)).await, vec!["1:a"]);
    assert_eq!(
        query(&|q| {
            q.limit = 1;
            q.after_seq = Some(s3)
        })
        .await,
        vec!["2:b"]
    );
    assert_eq!(query(&|q| q.caller = "pid:b".into()).await, Vec::<String>::new());
    assert_eq!(query(&|q| q.key = skapi_core::id::key_v1(Method::Post, "https://api.example.com/v1/x", Some("q"))).await, vec!["2:b", "1:a"]);
    assert_eq!(query(&|q| q.live_at = 10_000_000).await, Vec::<String>::new(), "expired records are not listed");
}

async fn expired_records_are_purged_with_their_chunks(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    three_records(store.as_ref()).await;
    store.append_chunks("1:a", &[Chunk { seq: 1, txt: "x".into() }]).await.unwrap();
    // A day's quota counters go with the purge once the day is over.
    let old_day = vec![DayCounter { name: "c".into(), requests: Some(1), tokens: None }];
    assert_eq!(store.quota_take(&old_day, -2).await.unwrap(), QuotaCheck::Counted);
    assert_eq!(store.quota_take(&old_day, -2).await.unwrap(), QuotaCheck::Reached { index: 0, limit: Limit::Requests });
    assert_eq!(store.purge_expired(1_000_011).await.unwrap(), 2);
    assert_eq!(store.quota_take(&old_day, -2).await.unwrap(), QuotaCheck::Counted, "a counter two days before the cutoff's day was purged");
    assert_eq!(store.get_record("1:a").await.unwrap(), None);
    assert_eq!(store.chunks("1:a", 0, 10).await.unwrap(), vec![]);
    assert!(store.get_record("3:c").await.unwrap().is_some());
}

/// A day's counters count requests and tokens; one that has reached either limit refuses the
/// next request on every counter (nothing counted); a record keeps who it was counted as.
async fn day_counters_count_requests_and_tokens(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let counters = [
        DayCounter { name: "k\u{1}*".into(), requests: None, tokens: None },
        DayCounter { name: "k\u{1}pid:a".into(), requests: Some(3), tokens: Some(100) },
    ];
    let names = counters.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    let day = 20_000;
    assert_eq!(store.day_counts(&names, day).await.unwrap(), [DayCount::default(); 2], "nothing counted yet");
    assert_eq!(store.quota_take(&counters, day).await.unwrap(), QuotaCheck::Counted);
    store.tokens_add(&names, day, 150).await.unwrap();
    let counted = DayCount { requests: 1, tokens: 150 };
    assert_eq!(store.day_counts(&names, day).await.unwrap(), [counted; 2]);
    assert_eq!(store.quota_take(&counters, day).await.unwrap(), QuotaCheck::Reached { index: 1, limit: Limit::Tokens });
    assert_eq!(store.day_counts(&names, day).await.unwrap(), [counted; 2], "a refused request counts nowhere");
    assert_eq!(store.day_counts(&names, day + 1).await.unwrap(), [DayCount::default(); 2], "the next day counts afresh");
    store.tokens_add(&names[..1], day + 1, 7).await.unwrap();
    store.tokens_add(&names[..1], day + 1, 5).await.unwrap();
    assert_eq!(store.day_counts(&names[..1], day + 1).await.unwrap(), [DayCount { requests: 0, tokens: 12 }]);

    three_records(store.as_ref()).await;
    let kept = store.get_record("1:a").await.unwrap().unwrap();
    assert_eq!(kept.new.counted_as, ["pid:a", "addr:192.0.2.0/24"]);
}

/// Writes arriving together (committed together by both engines): one that fails — an id
/// already taken — fails alone; every other one is written and answered.
async fn a_failing_write_fails_alone_among_those_committed_with_it(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let store = store.as_ref();
    store.insert_record(&record("3:c", None, 12), None).await.unwrap();
    let writes = (0..40).map(|i| {
        let id = if i == 17 { "3:c".to_owned() } else { format!("batch:{i}") };
        async move { (id.clone(), store.insert_record(&record(&id, None, 100 + i), None).await) }
    });
    let answers = futures_util::future::join_all(writes).await;
    for (id, answer) in answers {
        match (id.as_str(), answer) {
            ("3:c", Err(StoreError::Exists(_))) => {}
            ("3:c", other) => panic!("a taken id was written again: {other:?}"),
            (id, Ok(_)) => assert_eq!(store.get_record(id).await.unwrap().map(|r| r.status), Some(Status::Pending), "{id}"),
            (id, Err(e)) => panic!("{id} failed beside the failing write: {e}"),
        }
    }
}

/// Chunks are kept in order and read in pages; finalize replaces them by one body, only once
/// the request has finished and only for a streamed one.
async fn streams_keep_chunks_in_order_and_finalize_once(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let chunk = |seq: u64, txt: &str| Chunk { seq, txt: txt.into() };
    let mut streamed = record("s:1", None, 2_000_000);
    streamed.request.stream = Some(true);
    store.insert_record(&streamed, None).await.unwrap();
    store.append_chunks("s:1", &[chunk(1, "data: a"), chunk(2, "é\n")]).await.unwrap();
    store.append_chunks("s:1", &[chunk(3, "data: [DONE]")]).await.unwrap();
    assert_eq!(store.chunks("s:1", 0, 2).await.unwrap(), vec![chunk(1, "data: a"), chunk(2, "é\n")]);
    assert_eq!(store.chunks("s:1", 2, 10).await.unwrap(), vec![chunk(3, "data: [DONE]")]);
    assert_eq!(store.chunks("s:1", 3, 10).await.unwrap(), vec![]);
    assert!(store.get_record("s:1").await.unwrap().unwrap().streams());
    assert_eq!(store.finalize("s:1", None, 2_000_001).await.unwrap(), Finalize::NotFinished);
    let ended = Outcome::Resolved { status_code: 200, body: serde_json::Value::Null, truncated: false };
    assert!(store.finish("s:1", &ended, 2_000_002).await.unwrap());
    assert_eq!(store.finalize("s:1", None, 2_000_003).await.unwrap(), Finalize::Done);
    let done = store.get_record("s:1").await.unwrap().unwrap();
    assert!(done.finalized && !done.streams());
    assert_eq!(done.outcome, Some(Outcome::Resolved { status_code: 200, body: json!("data: aé\ndata: [DONE]"), truncated: false }));
    assert_eq!(store.chunks("s:1", 0, 10).await.unwrap(), vec![], "the chunks are replaced");
    assert_eq!(store.finalize("s:1", None, 2_000_004).await.unwrap(), Finalize::NotStream, "finalized once");
    let mut given = record("s:2", None, 2_000_000);
    given.request.stream = Some(true);
    store.insert_record(&given, None).await.unwrap();
    store.append_chunks("s:2", &[chunk(1, "x")]).await.unwrap();
    assert!(store.finish("s:2", &ended, 2_000_002).await.unwrap());
    assert_eq!(store.finalize("s:2", Some(&json!({"answer": 42})), 2_000_003).await.unwrap(), Finalize::Done);
    let done = store.get_record("s:2").await.unwrap().unwrap();
    assert_eq!(done.outcome, Some(Outcome::Resolved { status_code: 200, body: json!({"answer": 42}), truncated: false }), "data wins");
    store.insert_record(&record("n:1", None, 2_000_000), None).await.unwrap();
    assert!(store.finish("n:1", &ended, 2_000_002).await.unwrap());
    assert_eq!(store.finalize("n:1", None, 2_000_003).await.unwrap(), Finalize::NotStream);
    assert_eq!(store.finalize("none:1", None, 2_000_003).await.unwrap(), Finalize::NotStream, "no such record");
}

/// Written claimed: `running` under its claim and lease from the start, in arrival order.
async fn a_record_written_claimed_runs_under_its_lease(engine: Engine) {
    let Opened { store, .. } = open(engine).await;
    let claim = Claim { now: 4_000_000, lease_until: 4_000_500, token: "i.9".into() };
    let seq = store.insert_record(&record("c:1", None, 4_000_000), Some(&claim)).await.unwrap();
    let started = store.get_record("c:1").await.unwrap().unwrap();
    assert_eq!((started.status, started.seq, started.updated, started.executed), (Status::Running, seq, 4_000_000, Some(4_000_000)));
    let other = Claim { token: "j.1".into(), ..claim.clone() };
    assert!(store.claim("c:1", &other).await.unwrap().is_none(), "no other claim takes it");
    assert!(store.claim("c:1", &claim).await.unwrap().is_some(), "its own claim, asked again, finds it");
    assert!(store.pending().await.unwrap().iter().all(|r| r.new.id != "c:1"));
    let interrupted = ApiError::new(ErrorCode::Interrupted, "gone");
    store.fail_expired_leases(&interrupted, 4_000_400).await.unwrap();
    assert_eq!(store.get_record("c:1").await.unwrap().unwrap().status, Status::Running, "leased");
    store.fail_expired_leases(&interrupted, 4_000_600).await.unwrap();
    assert_eq!(store.get_record("c:1").await.unwrap().unwrap().status, Status::Failed, "its lease ran out");
}

/// A key whose destinations or positions cannot be read is refused as corrupt — read as "none"
/// or "anywhere" it could widen where its secret may go.
async fn unreadable_keys_are_refused_as_corrupt(engine: Engine) {
    let opened = open(engine).await;
    let store = opened.store.as_ref();
    for (column, name) in [("destinations", "bad-destinations"), ("positions", "bad-positions"), ("request_schema", "bad-rules")] {
        store.insert_key(&key(name), false).await.unwrap();
        opened.alter(&format!("UPDATE keys SET {column} = 'not json' WHERE name = $1"), name).await;
        assert!(matches!(store.get_key(SERVICE, name).await, Err(StoreError::Corrupt(_))), "{column}");
        assert!(matches!(store.list_keys(Some(SERVICE)).await, Err(StoreError::Corrupt(_))), "{column}");
        store.remove_key(SERVICE, name).await.unwrap();
    }
}

/// Opening a store again applies no migration twice, and keeps what it holds.
async fn opening_again_migrates_nothing_twice(engine: Engine) {
    let opened = open(engine).await;
    opened.store.insert_key(&key("k"), false).await.unwrap();
    let again: Box<dyn Store> = match &opened.at {
        Place::Sqlite(dir) => Box::new(SqliteStore::open(&dir.path().join(DB_FILE)).unwrap()),
        Place::Postgres(url) => Box::new(PgStore::open(url).await.unwrap()),
    };
    assert_eq!(again.get_key(SERVICE, "k").await.unwrap(), Some(key("k")));
}

/// SQLite's key generation moves with every key write — its own, or one another process
/// (the CLI) commits to the same file — and an insert made under an older one writes nothing.
async fn key_generation_follows_every_key_write(engine: Engine) {
    assert_eq!(engine, Engine::Sqlite, "SQLite alone remembers keys between calls");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    let store = SqliteStore::open(&path).unwrap();
    let generation = || store.key_generation().unwrap();
    let g0 = generation();
    assert_eq!(store.insert_record_if(&record("1:a", None, 10), None, g0).await.unwrap(), Some(1), "nothing changed: written");
    assert_eq!(generation(), g0, "a record is not a key");

    store.insert_key(&key("k"), false).await.unwrap();
    let g1 = generation();
    assert_ne!(g1, g0);
    assert_eq!(store.insert_record_if(&record("2:b", None, 11), None, g0).await.unwrap(), None);
    assert!(store.get_record("2:b").await.unwrap().is_none(), "nothing written under a stale generation");

    // Another connection, as the CLI's: seen by the next write the store makes.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute("UPDATE keys SET locked = 0", []).unwrap();
    assert_eq!(store.insert_record_if(&record("3:c", None, 12), None, g1).await.unwrap(), None, "the other process's change is seen");
    let g2 = generation();
    assert_ne!(g2, g1);
    assert!(store.insert_record_if(&record("4:d", None, 13), None, g2).await.unwrap().is_some());

    store.remove_key(SERVICE, "k").await.unwrap();
    assert_ne!(generation(), g2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_example_runs_on_postgres() {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(Engine::Postgres).await;
    let key = skapi_server::keyring::NewKey {
        service: SERVICE.into(),
        name: "openai".into(),
        secret: SECRET.into(),
        destinations: skapi_server::destination::Destinations::Any,
        ..Default::default()
    };
    server.state.keyring.add(key, false).await.unwrap();
    let id = server
        .submit(
            "a",
            json!({"clientSecretName": "openai", "url": format!("{api}/v1/images/generations"), "method": "post",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"prompt": "otter on postgres"}}),
        )
        .await;
    let (status, body) = server.poll_until_done("a", &id).await;
    assert_eq!((status, body["data"][0]["b64_json"].as_str()), (200, Some("image of otter on postgres")));
    assert_eq!(stand_in.seen()[0].headers["authorization"], format!("Bearer {SECRET}"));
    assert!(!server.data_files().iter().any(|(_, b)| contains_bytes(b, SECRET.as_bytes())));
}

engine_tests! {
  both: [
    keys_are_added_replaced_listed_and_removed,
    service_rules_are_set_and_cleared_apart,
    records_keep_acceptance_order_and_queue_counts,
    a_queue_runs_one_claimed_request_at_a_time,
    a_record_ends_once_and_reads_back_as_written,
    a_claim_holds_a_lease_until_it_runs_out,
    history_filters_and_pages,
    expired_records_are_purged_with_their_chunks,
    day_counters_count_requests_and_tokens,
    a_failing_write_fails_alone_among_those_committed_with_it,
    streams_keep_chunks_in_order_and_finalize_once,
    a_record_written_claimed_runs_under_its_lease,
    unreadable_keys_are_refused_as_corrupt,
    opening_again_migrates_nothing_twice,
  ],
  sqlite: [key_generation_follows_every_key_write],
}
