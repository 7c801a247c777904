//! The embedded default: one SQLite file in the data directory, in WAL mode with full sync, so
//! a record `csr` has acknowledged survives a crash.

mod driver;
mod writer;

use super::row::{self, json_text, list_from};
use super::sql::{self, params, Param};
use super::*;
use driver::{count, execute, first, ids, query, returned};
use rusqlite::{Connection, Row};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use writer::{write_batches, Committed, Job};

pub const DB_FILE: &str = "skapi.sqlite3";

/// Connections that only read (WAL lets them read beside the writer).
const READERS: usize = 4;
/// Writes go to one thread that commits them in batches ("group commit"): one fsync for every
/// write waiting at that moment, and no write is acknowledged before its batch is on disk.
/// Reads use a small pool of their own connections.
pub struct SqliteStore {
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
    readers: Arc<Readers>,
    /// The key generation (see [`KeyStore::key_generation`]): moved on by the writer when a key
    /// write of its own commits, or when it finds that another connection (the CLI) committed.
    keys: Arc<AtomicU64>,
}

/// The reading connections, used on tokio's blocking pool.
struct Readers {
    connections: Vec<Mutex<Connection>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Readers {
    /// A reading connection (round robin over the pool).
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.connections.len();
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.connections[i].lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long the writer waits for a lock another process holds (the CLI's writes take
/// milliseconds) before its writes answer `Unavailable`: a locked file makes calls fail fast,
/// never hang.
const WRITER_BUSY: std::time::Duration = std::time::Duration::from_millis(500);

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The WAL file keeps its largest size unless told: after a checkpoint lets it start over,
    // it is cut back to this (a burst of writes would otherwise leave hundreds of MB on disk).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Room for every shared statement (`prepare_cached`), so none is prepared twice.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        // SQLite creates the -wal and -shm files with the database file's mode: 0600 for all.
        crate::secrets::make_private(path)?;
        let mut conn = connect(path)?;
        Self::migrate(&mut conn)?;
        conn.busy_timeout(WRITER_BUSY)?;
        let connections = (0..READERS).map(|_| connect(path).map(Mutex::new)).collect::<rusqlite::Result<Vec<_>>>()?;
        let (sender, jobs) = std::sync::mpsc::channel::<Job>();
        let keys = Arc::new(AtomicU64::new(0));
        let writer_keys = keys.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn({
                let mut wal = path.as_os_str().to_owned();
                wal.push("-wal");
                let wal = std::path::PathBuf::from(wal);
                move || write_batches(conn, jobs, writer_keys, wal)
            })
            .map_err(|e| StoreError::Corrupt(format!("the writer thread could not start: {e}")))?;
        Ok(SqliteStore { writer: Mutex::new(sender), readers: Arc::new(Readers { connections, next: Default::default() }), keys })
    }

    /// Runs `work` on the writer thread, in the next batch; returns once that batch committed.
    async fn write<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => work(conn),
                Err(why) => Err(why.clone().error()),
            };
            let ok = result.is_ok();
            let report = move |committed: Result<(), Committed>| {
                let _ = reply.send(match (result, committed) {
                    (Err(e), _) => Err(e),
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(why)) => Err(why.error()),
                });
            };
            (ok, Box::new(report) as Box<dyn FnOnce(Result<(), Committed>) + Send>)
        });
        let sender = self.writer.lock().unwrap_or_else(|e| e.into_inner()).clone();
        sender.send(job).map_err(|_| StoreError::Corrupt("the writer thread has stopped".into()))?;
        answer.await.map_err(|_| StoreError::Corrupt("the writer thread has stopped".into()))?
    }

    /// Runs `work` on a reading connection, on the blocking pool.
    async fn read<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || work(&readers.lock())).await.map_err(|e| StoreError::Corrupt(format!("a read failed to run: {e}")))?
    }

    fn migrate(conn: &mut Connection) -> StoreResult<()> {
        let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (version, sql) in migrations::to_apply(applied, migrations::SQLITE)? {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        let (values, keys) = (sql::insert_key(key), self.keys.clone());
        let named = format!("key \"{}\" of service \"{}\"", key.name, key.service);
        self.write(move |conn| {
            keys.fetch_add(1, Ordering::SeqCst);
            match execute(conn, if replace { sql::REPLACE_KEY } else { sql::INSERT_KEY }, &values) {
                Err(StoreError::Exists(_)) => Err(StoreError::Exists(named)),
                other => other.map(|_| ()),
            }
        })
        .await
    }

    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        let values = params![service, name];
        self.read(move |conn| first(conn, sql::GET_KEY, &values, |r| row::key(r))).await
    }

    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let values = params![service];
        self.read(move |conn| query(conn, sql::LIST_KEYS, &values, |r| row::key(r))).await
    }

    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        let (values, keys) = (params![service, name], self.keys.clone());
        self.write(move |conn| {
            keys.fetch_add(1, Ordering::SeqCst);
            Ok(returned(conn, sql::REMOVE_KEY, &values)? > 0)
        })
        .await
    }

    async fn service_list(&self, list: ServiceList, service: &str) -> StoreResult<Option<Vec<String>>> {
        self.list_rule(sql::list_rule(list), service).await
    }

    async fn set_service_list(&self, list: ServiceList, service: &str, values: Option<&[String]>, now: u64) -> StoreResult<()> {
        self.set_list_rule(sql::list_rule(list), service, values, now).await
    }

    fn key_generation(&self) -> Option<u64> {
        Some(self.keys.load(Ordering::SeqCst))
    }
}

impl SqliteStore {
    async fn list_rule(&self, rule: &'static sql::ListRule, service: &str) -> StoreResult<Option<Vec<String>>> {
        let values = params![service];
        let stored: Option<String> = self.read(move |conn| first(conn, rule.read, &values, |r| Ok(r.get(0)?))).await?;
        stored.map(|text| list_from(&text, rule.what)).transpose()
    }

    async fn set_list_rule(&self, rule: &sql::ListRule, service: &str, list: Option<&[String]>, now: u64) -> StoreResult<()> {
        let (statement, values) = sql::set_list(rule, service, list, now);
        self.write(move |conn| execute(conn, statement, &values).map(|_| ())).await
    }
}

/// Writes a new record (see [`RecordStore::insert_record`]); returns its arrival sequence.
fn insert(conn: &Connection, values: &[Param]) -> StoreResult<i64> {
    first(conn, sql::INSERT_RECORD, values, |r| Ok(r.get(0)?))?.ok_or_else(|| StoreError::Database("an insert returned no sequence".into()))
}

#[async_trait::async_trait]
impl RecordStore for SqliteStore {
    async fn insert_record(&self, r: &NewRecord, claim: Option<&Claim>) -> StoreResult<i64> {
        let values = sql::insert_record(r, claim);
        self.write(move |conn| insert(conn, &values)).await
    }

    async fn insert_record_if(&self, r: &NewRecord, claim: Option<&Claim>, seen: u64) -> StoreResult<Option<i64>> {
        let (values, keys) = (sql::insert_record(r, claim), self.keys.clone());
        // The batch checked the data version as it began, and key writes run on this same
        // thread: the generation read here is the one this insert commits under.
        self.write(move |conn| if keys.load(Ordering::SeqCst) == seen { insert(conn, &values).map(Some) } else { Ok(None) }).await
    }

    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        let values = params![id];
        self.read(move |conn| first(conn, sql::GET_RECORD, &values, |r| row::record(r))).await
    }

    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let values = sql::finish(id, outcome, now);
        self.write(move |conn| Ok(returned(conn, sql::FINISH, &values)? > 0)).await
    }

    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let values = sql::fail_pending(id, error, now);
        self.write(move |conn| Ok(returned(conn, sql::FAIL_PENDING, &values)? > 0)).await
    }

    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        let values = params![service, queue];
        self.read(move |conn| count(conn, sql::COUNT_WAITING, &values)).await
    }

    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        self.write(move |conn| {
            execute(conn, sql::PURGE_EXPIRED_CHUNKS, &params![cutoff])?;
            execute(conn, sql::QUOTA_PURGE, &sql::quota_days_before(cutoff))?;
            execute(conn, sql::PURGE_EXPIRED, &params![cutoff])
        })
        .await
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let (statement, values) = sql::history(q);
        self.read(move |conn| query(conn, &statement, &values, |r| row::record(r))).await
    }

    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        let values = params![queue_key, seq];
        self.read(move |conn| count(conn, sql::QUEUE_POSITION, &values)).await
    }

    async fn pending(&self) -> StoreResult<Vec<Record>> {
        self.read(|conn| query(conn, sql::PENDING, &[], |r| row::record(r))).await
    }

    async fn claim(&self, id: &str, claim: &Claim) -> StoreResult<Option<Record>> {
        let values = sql::claim(id, claim);
        self.write(move |conn| first(conn, sql::CLAIM, &values, |r| row::record(r))).await
    }

    async fn claim_next_in_queue(&self, queue_key: &str, claim: &Claim) -> StoreResult<Option<Record>> {
        let (values, claim) = (params![queue_key], claim.clone());
        // The writer thread runs one job at a time: the look and the claim are one step.
        self.write(move |conn| {
            let head: Option<(String, String, Option<String>)> = first(conn, sql::QUEUE_HEAD, &values, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            match head {
                Some((id, status, _)) if status == "pending" => first(conn, sql::START, &sql::claim(&id, &claim), |r| row::record(r)),
                // Taken by this claim before; its answer was lost.
                Some((id, status, Some(by))) if status == "running" && by == claim.token => {
                    first(conn, sql::GET_RECORD, &params![id], |r| row::record(r))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<usize> {
        let ids = ids.to_vec();
        self.write(move |conn| ids.iter().map(|id| execute(conn, sql::RENEW_LEASE, &params![id, lease_until])).sum()).await
    }

    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        let values = sql::fail_running(error, now);
        self.write(move |conn| execute(conn, sql::FAIL_EXPIRED_LEASES, &values)).await
    }

    async fn idle_work(&self, before: u64) -> StoreResult<IdleWork> {
        self.read(move |conn| Ok(IdleWork { queues: ids(conn, sql::IDLE_QUEUES, &[])?, requests: ids(conn, sql::IDLE_REQUESTS, &params![before])? }))
            .await
    }

    async fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        let values = sql::fail_running(error, now);
        self.write(move |conn| execute(conn, sql::FAIL_RUNNING, &values)).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        self.read(|conn| {
            let n = |r: &Row, i: usize| -> StoreResult<u64> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64) };
            let counts = first(conn, sql::COUNTS, &[], |r| Ok(Counts { pending: n(r, 0)?, running: n(r, 1)?, queued: n(r, 2)? }))?;
            Ok(counts.unwrap_or_default())
        })
        .await
    }
}

#[async_trait::async_trait]
impl StreamStore for SqliteStore {
    async fn append_chunks(&self, id: &str, chunks: &[Chunk]) -> StoreResult<()> {
        let values: Vec<Vec<Param>> = chunks.iter().map(|c| sql::chunk(id, c)).collect();
        self.write(move |conn| {
            for chunk in &values {
                execute(conn, sql::INSERT_CHUNK, chunk)?;
            }
            Ok(())
        })
        .await
    }

    async fn chunks(&self, id: &str, since: u64, limit: u32) -> StoreResult<Vec<Chunk>> {
        let values = params![id, since, limit];
        self.read(move |conn| query(conn, sql::CHUNKS, &values, |r| row::chunk(r))).await
    }

    async fn finalize(&self, id: &str, data: Option<&Value>, now: u64) -> StoreResult<Finalize> {
        let (id, data) = (id.to_owned(), data.cloned());
        // The writer runs one job at a time: the look and the change are one step.
        self.write(move |conn| {
            let Some(record) = first(conn, sql::GET_RECORD, &params![&id], |r| row::record(r))? else { return Ok(Finalize::NotStream) };
            let texts = || query(conn, sql::CHUNK_TEXTS, &params![&id], |r| Ok(r.get(0)?));
            match finalized_body(&record, data.as_ref(), texts)? {
                Err(refused) => Ok(refused),
                Ok(body) => {
                    execute(conn, sql::FINALIZE, &params![&id, json_text(&body), now])?;
                    execute(conn, sql::DELETE_CHUNKS, &params![&id])?;
                    Ok(Finalize::Done)
                }
            }
        })
        .await
    }
}

/// Rate limits are counted in the process (one SQLite file serves one server); daily quotas in
/// the file, to outlive a restart.
#[async_trait::async_trait]
impl LimitStore for SqliteStore {
    async fn quota_take(&self, counters: &[DayCounter], day: i64) -> StoreResult<QuotaCheck> {
        let counters = counters.to_vec();
        // The writer runs one job at a time: the looks and the counts are one step.
        self.write(move |conn| {
            for (index, counter) in counters.iter().enumerate() {
                if let Some(limit) = counter.used_up(day_count(conn, &counter.name, day)?) {
                    return Ok(QuotaCheck::Reached { index, limit });
                }
            }
            for counter in &counters {
                returned(conn, sql::QUOTA_TAKE, &sql::quota_take(counter, day))?;
            }
            Ok(QuotaCheck::Counted)
        })
        .await
    }

    async fn tokens_add(&self, counters: &[String], day: i64, tokens: u64) -> StoreResult<()> {
        let counters = counters.to_vec();
        self.write(move |conn| {
            for counter in &counters {
                execute(conn, sql::TOKENS_ADD, &params![counter, day, tokens])?;
            }
            Ok(())
        })
        .await
    }

    async fn day_counts(&self, counters: &[String], day: i64) -> StoreResult<Vec<DayCount>> {
        let counters = counters.to_vec();
        self.read(move |conn| counters.iter().map(|counter| day_count(conn, counter, day)).collect()).await
    }
}

/// What `counter` has counted on `day`.
fn day_count(conn: &Connection, counter: &str, day: i64) -> StoreResult<DayCount> {
    let row = first(conn, sql::QUOTA_COUNT, &params![counter, day], |r| Ok(sql::day_count(r.get(0)?, r.get(1)?)))?;
    Ok(row.unwrap_or_default())
}

impl Store for SqliteStore {}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements that look for unfinished work find it through the partial indexes, never
    /// by reading every record (SQLite uses a partial index only when the statement names its
    /// condition).
    #[test]
    fn unfinished_work_is_found_through_the_partial_indexes() {
        let dir = tempfile::tempdir().unwrap();
        SqliteStore::open(&dir.path().join(DB_FILE)).unwrap();
        let conn = connect(&dir.path().join(DB_FILE)).unwrap();
        for statement in [
            sql::PENDING,
            sql::COUNTS,
            sql::IDLE_QUEUES,
            sql::IDLE_REQUESTS,
            sql::FAIL_RUNNING,
            sql::FAIL_EXPIRED_LEASES,
            sql::QUEUE_HEAD,
            sql::QUEUE_POSITION,
            sql::COUNT_WAITING,
        ] {
            let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", sql::lite(statement))).unwrap();
            let values = rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, plan.parameter_count()));
            let steps: Vec<String> = plan.query_map(values, |r| r.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
            // Reading a whole partial index is reading the unfinished records only.
            let whole_table = |s: &String| (s.starts_with("SCAN records") || s.starts_with("SCAN r")) && !s.contains(" INDEX records_");
            assert!(!steps.iter().any(whole_table), "{statement}\n{steps:#?}");
        }
    }
}
