//! Durable state: client-secret keys and request records, behind one trait so that another
//! engine (PostgreSQL, for several instances) can stand beside the embedded SQLite default.
//!
//! The trait is async: PostgreSQL is driven by `tokio-postgres` through a pool; SQLite's
//! writes go to its writer thread and its reads to tokio's blocking pool, and both answer on
//! async channels, so no runtime thread waits on the database.

mod migrations;
pub mod postgres;
mod row;
mod sql;
pub use sql::DAY_MS;
pub mod sqlite;

use crate::domain::{Claim, DayCount, DayCounter, Finalize, HistoryQuery, KeyRecord, Limit, NewRecord, Outcome, Record};
use serde_json::Value;
use skapi_core::wire::Chunk;
use skapi_core::ApiError;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(rusqlite::Error),
    /// Stored data that cannot be read back (and only that).
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    /// The database refused a statement for another reason.
    #[error("database: {0}")]
    Database(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("the disk holding the database is full")]
    Full,
    #[error("database file: {0}")]
    File(#[from] std::io::Error),
    /// The database cannot be reached now (connection lost or refused, restarting, locked or
    /// read-only): the call may be tried again shortly.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl StoreError {
    /// `Full` for SQLite's "database or disk is full", else the error as it is.
    pub fn from_sqlite(e: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode::*;
        match e.sqlite_error_code() {
            Some(DiskFull) => StoreError::Full,
            // Another process holds the file, or it cannot be written or opened now.
            Some(DatabaseBusy | DatabaseLocked | ReadOnly | CannotOpen) => StoreError::Unavailable(e.to_string()),
            // A unique key taken (as PostgreSQL's unique violation).
            Some(ConstraintViolation)
                if matches!(&e, rusqlite::Error::SqliteFailure(f, _)
                    if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY) =>
            {
                StoreError::Exists("that row".into())
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Whether `csr-finalize` may replace this record's chunks (and with what, given the chunks'
/// texts), or why not.
pub(crate) fn finalized_body(
    record: &Record,
    data: Option<&Value>,
    texts: impl FnOnce() -> StoreResult<Vec<String>>,
) -> StoreResult<Result<Value, Finalize>> {
    if !record.status.is_final() {
        return Ok(Err(Finalize::NotFinished));
    }
    if !record.streams() {
        return Ok(Err(Finalize::NotStream));
    }
    Ok(Ok(match data {
        Some(data) => data.clone(),
        None => Value::String(texts()?.concat()),
    }))
}

/// How many records are unfinished, in the whole store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: u64,
    pub running: u64,
    /// Pending in a queue.
    pub queued: u64,
}

/// Work nobody is doing (its instance gone): queues with pending requests and none running,
/// and unqueued pending requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdleWork {
    pub queues: Vec<String>,
    pub requests: Vec<String>,
}

/// What counting one request against a key's limits in the store found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateCheck {
    /// Counted: under every limit.
    Counted,
    /// A limit is reached (nothing counted): retry after this many seconds.
    Refused { retry_after: u64 },
    /// This store keeps no counters: the process counts in memory.
    NotKept,
}

/// A service's rules kept as lists of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceList {
    /// The origins whose pages may call it.
    CorsOrigins,
    /// Where it forwards requests that name no secret.
    ForwardDestinations,
}

/// Keys and the services they belong to.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()>;
    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>>;
    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>>;
    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool>;
    /// A service's rule kept as a list; `None` when it has none.
    async fn service_list(&self, list: ServiceList, service: &str) -> StoreResult<Option<Vec<String>>>;
    /// Sets (or with `None` removes) a service's rule kept as a list.
    async fn set_service_list(&self, list: ServiceList, service: &str, values: Option<&[String]>, now: u64) -> StoreResult<()>;
    /// Origins allowed to call a service; `None` = any origin.
    async fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        self.service_list(ServiceList::CorsOrigins, service).await
    }
    /// Sets (or with `None` clears) the origins allowed to call a service.
    async fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        self.set_service_list(ServiceList::CorsOrigins, service, origins, now).await
    }
    /// Where a service forwards requests that name no secret (normalised URL prefixes);
    /// `None` = nowhere.
    async fn forward_destinations(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        self.service_list(ServiceList::ForwardDestinations, service).await
    }
    /// Sets (or with `None` removes) where a service forwards requests that name no secret.
    async fn set_forward_destinations(&self, service: &str, destinations: Option<&[String]>, now: u64) -> StoreResult<()> {
        self.set_service_list(ServiceList::ForwardDestinations, service, destinations, now).await
    }
    /// Where keys may be remembered between calls: a number that changes whenever any key
    /// may have changed — by this process or another one (the CLI) — as
    /// [`RecordStore::insert_record_if`] sees it. `None` (the default): keys must be read fresh
    /// for every request.
    fn key_generation(&self) -> Option<u64> {
        None
    }
}

/// Requests: accepted, claimed, ended, listed, and the queues they wait in.
#[async_trait::async_trait]
pub trait RecordStore: Send + Sync {
    /// Writes a new record: `pending`, or with `claim` already `running` under it (a request
    /// that starts at once). Returns its arrival sequence.
    async fn insert_record(&self, record: &NewRecord, claim: Option<&Claim>) -> StoreResult<i64>;
    /// [`Self::insert_record`], provided the key generation is still `seen` when the insert
    /// commits — that is, the key the request was checked against is still the key as stored.
    /// `None`, and nothing written, when it is not.
    async fn insert_record_if(&self, record: &NewRecord, claim: Option<&Claim>, seen: u64) -> StoreResult<Option<i64>> {
        let _ = seen;
        self.insert_record(record, claim).await.map(Some)
    }
    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>>;
    /// Ends an unfinished record; false when it had already ended.
    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool>;
    /// Ends a record that has not started (`pending`) with `error`; false otherwise.
    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool>;
    /// Requests waiting (`pending`) in queues of this name, over all urls and methods.
    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64>;
    /// Deletes records that expired at or before `cutoff`; returns how many.
    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize>;
    async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<Record>>;
    /// Unfinished requests (pending or running) of the same queue that arrived up to and
    /// including `seq`: the running head is 1, the next one 2.
    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64>;
    /// Every `pending` record, in arrival order.
    async fn pending(&self) -> StoreResult<Vec<Record>>;
    /// `pending` → `running` under `claim`: the record as it now is, or `None` when it was no
    /// longer pending (and not taken by this same claim before).
    async fn claim(&self, id: &str, claim: &Claim) -> StoreResult<Option<Record>>;
    /// Atomically: when no request of the queue runs, its oldest pending one turns `running`
    /// under `claim` and is returned (also when this same claim took it before).
    async fn claim_next_in_queue(&self, queue_key: &str, claim: &Claim) -> StoreResult<Option<Record>>;
    /// Extends the leases of requests this instance runs; returns how many still ran (a request
    /// another instance ended, its lease taken for run out, is not renewed).
    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<usize>;
    /// Ends `running` records whose lease ran out (their instance died) with `error`.
    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize>;
    /// Work nobody is doing; of unqueued requests, those accepted before `before`.
    async fn idle_work(&self, before: u64) -> StoreResult<IdleWork>;
    /// Ends every `running` record with `error` (after a crash); returns how many.
    async fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize>;
    async fn counts(&self) -> StoreResult<Counts>;
}

/// Streamed answers, kept in chunks as they are written.
#[async_trait::async_trait]
pub trait StreamStore: Send + Sync {
    /// Adds pieces of a streamed answer (their `seq`s continue the record's).
    async fn append_chunks(&self, id: &str, chunks: &[Chunk]) -> StoreResult<()>;
    /// A streamed answer's chunks after `since`, at most `limit`, in order.
    async fn chunks(&self, id: &str, since: u64, limit: u32) -> StoreResult<Vec<Chunk>>;
    /// Replaces a finished stream's chunks by one stored body: `data`, or else the chunks'
    /// text joined.
    async fn finalize(&self, id: &str, data: Option<&Value>, now: u64) -> StoreResult<Finalize>;
}

/// What counting one request against daily quotas found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaCheck {
    /// Counted on every counter.
    Counted,
    /// The counter at `index` had reached `limit`: nothing was counted.
    Reached { index: usize, limit: Limit },
}

/// Limits counted in the store, so that every instance sharing it counts together.
#[async_trait::async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one request on each counter of UTC day `day`, all or none (none once one of them
    /// has reached a limit); durable, on every engine.
    async fn quota_take(&self, counters: &[DayCounter], day: i64) -> StoreResult<QuotaCheck>;
    /// Adds the tokens an answer used to each named counter of UTC day `day`.
    async fn tokens_add(&self, counters: &[String], day: i64, tokens: u64) -> StoreResult<()>;
    /// What each named counter has counted on UTC day `day` (zero where it counted nothing).
    async fn day_counts(&self, counters: &[String], day: i64) -> StoreResult<Vec<DayCount>>;
    /// Counts one request against a key's limits: the total, and the per-caller limit for each
    /// name the caller is counted as.
    async fn rate_check(
        &self,
        _key_id: &str,
        _callers: &[String],
        _per_caller: Option<u32>,
        _total: Option<u32>,
        _now: u64,
    ) -> StoreResult<RateCheck> {
        Ok(RateCheck::NotKept)
    }
}

/// A storage engine: every concern above.
pub trait Store: KeyStore + RecordStore + StreamStore + LimitStore + 'static {
    /// True when several server instances may share this store.
    fn shared(&self) -> bool {
        false
    }
}

/// Opens the store a server or the CLI was pointed at: PostgreSQL for a `postgres://` URL,
/// else SQLite in the data directory.
pub async fn open(database: Option<&str>, data_dir: &std::path::Path) -> StoreResult<Arc<dyn Store>> {
    match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(Arc::new(postgres::PgStore::open(url).await?)),
        Some(other) => Err(StoreError::Corrupt(format!("unsupported database URL \"{other}\" (expected postgres://…)"))),
        None => {
            let path = data_dir.join(sqlite::DB_FILE);
            // Opening runs the migrations: file work, off the async threads.
            let store = tokio::task::spawn_blocking(move || sqlite::SqliteStore::open(&path))
                .await
                .map_err(|e| StoreError::Corrupt(format!("opening the database failed: {e}")))??;
            Ok(Arc::new(store))
        }
    }
}

/// A store call's future, as [`Store`]'s methods return them.
pub type StoreCall<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<T>> + Send + 'a>>;

/// The store as the server uses it: every call timed for `/metrics`, and whether the last one
/// found the database away.
#[derive(Clone)]
pub struct Db {
    store: Arc<dyn Store>,
    away: Arc<std::sync::atomic::AtomicBool>,
    calls: Arc<std::sync::atomic::AtomicU64>,
}

impl Db {
    pub fn new(store: Arc<dyn Store>) -> Db {
        Db { store, away: Default::default(), calls: Default::default() }
    }

    /// How many store calls this server has made (what idle work costs shows here).
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs one store call: `db.call(|s| s.get_record(id)).await`.
    pub async fn call<'a, T>(&'a self, f: impl FnOnce(&'a dyn Store) -> StoreCall<'a, T>) -> StoreResult<T> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let result = f(self.store.as_ref()).await;
        crate::metrics::store_call(started.elapsed(), result.is_err());
        // Written only when it changes: every call of every thread reads it.
        let away = match &result {
            Err(StoreError::Unavailable(_)) => true,
            Ok(_) => false,
            Err(_) => return result,
        };
        if self.away() != away {
            self.away.store(away, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// Whether the last store call found the database away (and none has reached it since).
    pub fn away(&self) -> bool {
        self.away.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store itself, for calls that need no timing (the CLI, tests).
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
}
