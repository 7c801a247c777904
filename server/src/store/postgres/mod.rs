//! PostgreSQL, for running several skapi-server instances on one database (`serve --database
//! postgres://…`). Same records and keys as the SQLite default; migrations are versioned in a
//! `schema_migrations` table and applied at start.
//!
//! Several instances coordinate through the rows themselves: a queue's head is claimed under a
//! row lock (`SELECT … FOR UPDATE`) only while nothing of that queue runs; a running request
//! holds a lease its instance renews, and an instance that finds a lease run out ends that
//! request `INTERRUPTED`; expired records are purged under an advisory lock, by one instance at
//! a time.
//!
//! The writes of a request's life (accept, claim, end) go through group commit: the writes
//! waiting at one moment run pipelined in one transaction and share its commit, and none is
//! answered before that commit.

mod commit;
mod driver;

use super::row::{self, json_text, list_from};
use super::sql::{self, ms, params, Param};
use super::*;
use commit::{commit_writes, Write, COMMITTERS};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use driver::bind;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{NoTls, Row};

/// Connections each instance keeps at most.
const POOL: usize = 8;
/// How long a call waits for a connection (a free one, or a new one to a database that is
/// back) before it answers `Unavailable`.
const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub struct PgStore {
    /// Broken connections (a database restart, a failover) are dropped when they come back to
    /// the pool and new ones made on demand: the server comes back on its own with the database.
    pool: Pool,
    /// Writes waiting for a committer.
    writes: mpsc::UnboundedSender<Write>,
}

fn records(rows: Vec<Row>) -> StoreResult<Vec<Record>> {
    rows.iter().map(row::record).collect()
}

impl PgStore {
    /// Connects and applies the migrations this server knows.
    pub async fn open(url: &str) -> StoreResult<PgStore> {
        let mut config: tokio_postgres::Config = url.parse()?;
        // A database that is away answers fast: calls fail with `Unavailable`, never hang.
        config.connect_timeout(WAIT);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .recycle_timeout(Some(WAIT))
            .build()
            .map_err(|e| StoreError::Database(format!("postgres pool: {e}")))?;
        let (writes, waiting) = mpsc::unbounded_channel();
        let waiting = Arc::new(tokio::sync::Mutex::new(waiting));
        for _ in 0..COMMITTERS {
            tokio::spawn(commit_writes(pool.clone(), waiting.clone()));
        }
        let store = PgStore { pool, writes };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.client().await?;
        client.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)").await?;
        // One instance migrates at a time.
        let tx = client.transaction().await?;
        tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE").await?;
        let applied: i64 = tx.query_one("SELECT COUNT(*) FROM schema_migrations", &[]).await?.try_get(0)?;
        for (version, sql) in migrations::to_apply(applied.max(0) as usize, migrations::POSTGRES)? {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&Param::from(version as u64)]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A connection of the pool (a new one when the pool has none that still works).
    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Rows of one statement on a pooled connection (its prepared form cached there).
    async fn query(&self, sql: &str, values: &[Param]) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, &bind(values)).await?)
    }

    async fn query_opt(&self, sql: &str, values: &[Param]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, values).await?.into_iter().next())
    }

    /// A count of one statement.
    async fn count(&self, sql: &str, values: &[Param]) -> StoreResult<u64> {
        let row = self.query_opt(sql, values).await?.ok_or_else(|| StoreError::Database("a count returned no row".into()))?;
        Ok(row.try_get::<_, Option<i64>>(0)?.unwrap_or(0).max(0) as u64)
    }

    /// Changed rows of one statement run outside a batch.
    async fn execute(&self, sql: &str, values: &[Param]) -> StoreResult<usize> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, &bind(values)).await? as usize)
    }

    /// A write of a request's life, committed with the others waiting at the same moment.
    async fn write(&self, sql: &'static str, values: Vec<Param>) -> StoreResult<Vec<Row>> {
        let (reply, rows) = oneshot::channel();
        self.writes.send(Write { sql, values, reply }).map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        rows.await.map_err(|_| StoreError::Unavailable("the store is closing".into()))?
    }

    async fn list_rule(&self, rule: &sql::ListRule, service: &str) -> StoreResult<Option<Vec<String>>> {
        let Some(row) = self.query_opt(rule.read, &params![service]).await? else { return Ok(None) };
        list_from(row.try_get(0)?, rule.what).map(Some)
    }

    async fn set_list_rule(&self, rule: &sql::ListRule, service: &str, list: Option<&[String]>, now: u64) -> StoreResult<()> {
        let (statement, values) = sql::set_list(rule, service, list, now);
        self.execute(statement, &values).await.map(|_| ())
    }

    /// Ids as rows of a query.
    fn ids(rows: Vec<Row>) -> StoreResult<Vec<String>> {
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

#[async_trait::async_trait]
impl KeyStore for PgStore {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        match self.execute(if replace { sql::REPLACE_KEY } else { sql::INSERT_KEY }, &sql::insert_key(key)).await {
            Err(StoreError::Exists(_)) => Err(StoreError::Exists(format!("key \"{}\" of service \"{}\"", key.name, key.service))),
            other => other.map(|_| ()),
        }
    }

    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        self.query_opt(sql::GET_KEY, &params![service, name]).await?.as_ref().map(row::key).transpose()
    }

    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        self.query(sql::LIST_KEYS, &params![service]).await?.iter().map(row::key).collect()
    }

    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        Ok(!self.query(sql::REMOVE_KEY, &params![service, name]).await?.is_empty())
    }

    async fn service_list(&self, list: ServiceList, service: &str) -> StoreResult<Option<Vec<String>>> {
        self.list_rule(sql::list_rule(list), service).await
    }

    async fn set_service_list(&self, list: ServiceList, service: &str, values: Option<&[String]>, now: u64) -> StoreResult<()> {
        self.set_list_rule(sql::list_rule(list), service, values, now).await
    }
}

#[async_trait::async_trait]
impl RecordStore for PgStore {
    async fn insert_record(&self, r: &NewRecord, claim: Option<&Claim>) -> StoreResult<i64> {
        let rows = self.write(sql::INSERT_RECORD, sql::insert_record(r, claim)).await?;
        let row = rows.first().ok_or_else(|| StoreError::Database("an insert returned no sequence".into()))?;
        Ok(row.try_get(0)?)
    }

    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        self.query_opt(sql::GET_RECORD, &params![id]).await?.as_ref().map(row::record).transpose()
    }

    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        Ok(!self.write(sql::FINISH, sql::finish(id, outcome, now)).await?.is_empty())
    }

    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        Ok(!self.write(sql::FAIL_PENDING, sql::fail_pending(id, error, now)).await?.is_empty())
    }

    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        self.count(sql::COUNT_WAITING, &params![service, queue]).await
    }

    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One instance purges at a time; the others skip this round.
        let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock(7461626)", &[]).await?.try_get(0)?;
        let n = if mine {
            tx.execute(sql::PURGE_EXPIRED_CHUNKS, &[&ms(cutoff)]).await?;
            tx.execute(sql::QUOTA_PURGE, &bind(&sql::quota_days_before(cutoff))).await?;
            tx.execute(sql::PURGE_EXPIRED, &[&ms(cutoff)]).await? as usize
        } else {
            0
        };
        tx.commit().await?;
        Ok(n)
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let (statement, values) = sql::history(q);
        records(self.query(&statement, &values).await?)
    }

    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        self.count(sql::QUEUE_POSITION, &params![queue_key, seq]).await
    }

    async fn pending(&self) -> StoreResult<Vec<Record>> {
        records(self.query(sql::PENDING, &[]).await?)
    }

    async fn claim(&self, id: &str, claim: &Claim) -> StoreResult<Option<Record>> {
        Ok(records(self.write(sql::CLAIM, sql::claim(id, claim)).await?)?.pop())
    }

    async fn claim_next_in_queue(&self, queue_key: &str, claim: &Claim) -> StoreResult<Option<Record>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The head's row lock orders instances claiming the same queue.
        let head = tx.query_opt(&format!("{} FOR UPDATE", sql::QUEUE_HEAD), &[&queue_key]).await?;
        let claimed = match head {
            Some(row) => {
                let (id, status, by): (String, &str, Option<&str>) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                match (status, by) {
                    ("pending", _) => records(tx.query(sql::START, &bind(&sql::claim(&id, claim))).await?)?.pop(),
                    // Taken by this claim before; its answer was lost.
                    ("running", Some(by)) if by == claim.token => records(tx.query(sql::GET_RECORD, &[&id]).await?)?.pop(),
                    _ => None,
                }
            }
            None => None,
        };
        tx.commit().await?;
        Ok(claimed)
    }

    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<usize> {
        if ids.is_empty() {
            return Ok(0);
        }
        // One statement for every id (PostgreSQL's arrays).
        let client = self.client().await?;
        let statement = client.prepare_cached("UPDATE records SET lease_until = $2 WHERE id = ANY($1) AND status = 'running'").await?;
        Ok(client.execute(&statement, &[&ids, &ms(lease_until)]).await? as usize)
    }

    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        self.execute(sql::FAIL_EXPIRED_LEASES, &sql::fail_running(error, now)).await
    }

    async fn idle_work(&self, before: u64) -> StoreResult<IdleWork> {
        let queues = Self::ids(self.query(sql::IDLE_QUEUES, &[]).await?)?;
        let requests = Self::ids(self.query(sql::IDLE_REQUESTS, &params![before]).await?)?;
        Ok(IdleWork { queues, requests })
    }

    async fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        self.execute(sql::FAIL_RUNNING, &sql::fail_running(error, now)).await
    }

    async fn counts(&self) -> StoreResult<Counts> {
        let row = self.query_opt(sql::COUNTS, &[]).await?.ok_or_else(|| StoreError::Database("counts returned no row".into()))?;
        let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64) };
        Ok(Counts { pending: n(0)?, running: n(1)?, queued: n(2)? })
    }
}

#[async_trait::async_trait]
impl StreamStore for PgStore {
    async fn append_chunks(&self, id: &str, chunks: &[Chunk]) -> StoreResult<()> {
        let writes = chunks.iter().map(|c| self.write(sql::INSERT_CHUNK, sql::chunk(id, c)));
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn chunks(&self, id: &str, since: u64, limit: u32) -> StoreResult<Vec<Chunk>> {
        self.query(sql::CHUNKS, &params![id, since, limit]).await?.iter().map(row::chunk).collect()
    }

    async fn finalize(&self, id: &str, data: Option<&Value>, now: u64) -> StoreResult<Finalize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row lock orders two finalizes of the same request.
        let Some(row) = tx.query_opt(&format!("{} FOR UPDATE", sql::GET_RECORD), &[&id]).await? else { return Ok(Finalize::NotStream) };
        let record = row::record(&row)?;
        let texts = tx.query(sql::CHUNK_TEXTS, &[&id]).await?;
        let texts = || texts.iter().map(|r| Ok(r.try_get(0)?)).collect();
        let outcome = match finalized_body(&record, data, texts)? {
            Err(refused) => refused,
            Ok(body) => {
                tx.execute(sql::FINALIZE, &bind(&params![id, json_text(&body), now])).await?;
                tx.execute(sql::DELETE_CHUNKS, &[&id]).await?;
                Finalize::Done
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

/// A [`sql::QUOTA_COUNT`] row, if any: what a day's counter has counted (zero without a row).
fn day_count(row: Option<Row>) -> StoreResult<DayCount> {
    match row {
        Some(row) => Ok(sql::day_count(row.try_get(0)?, row.try_get(1)?)),
        None => Ok(DayCount::default()),
    }
}

#[async_trait::async_trait]
impl LimitStore for PgStore {
    async fn quota_take(&self, counters: &[DayCounter], day: i64) -> StoreResult<QuotaCheck> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The upsert's row lock orders instances counting the same counter.
        for (index, counter) in counters.iter().enumerate() {
            if tx.query_opt(sql::QUOTA_TAKE, &bind(&sql::quota_take(counter, day))).await?.is_none() {
                // Which limit it was, from the row the upsert left as it was.
                let used = day_count(tx.query_opt(sql::QUOTA_COUNT, &bind(&params![&counter.name, day])).await?)?;
                tx.rollback().await?;
                let limit = counter.used_up(used).unwrap_or(Limit::Requests);
                return Ok(QuotaCheck::Reached { index, limit });
            }
        }
        tx.commit().await?;
        Ok(QuotaCheck::Counted)
    }

    async fn tokens_add(&self, counters: &[String], day: i64, tokens: u64) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        for counter in counters {
            tx.execute(sql::TOKENS_ADD, &bind(&params![counter, day, tokens])).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn day_counts(&self, counters: &[String], day: i64) -> StoreResult<Vec<DayCount>> {
        let client = self.client().await?;
        let mut counts = Vec::with_capacity(counters.len());
        for counter in counters {
            counts.push(day_count(client.query_opt(sql::QUOTA_COUNT, &bind(&params![counter, day])).await?)?);
        }
        Ok(counts)
    }

    async fn rate_check(&self, key_id: &str, callers: &[String], per_caller: Option<u32>, total: Option<u32>, now: u64) -> StoreResult<RateCheck> {
        if per_caller.is_none() && total.is_none() {
            return Ok(RateCheck::Counted);
        }
        const WINDOW_MS: u64 = 60_000;
        let window = (now / WINDOW_MS * WINDOW_MS) as i64;
        let retry_after = ((now / WINDOW_MS + 1) * WINDOW_MS - now).div_ceil(1000).max(1);
        let attempt = async {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let each = callers.iter().map(|caller| (format!("{key_id}\0{caller}"), per_caller));
            for (counter, limit) in std::iter::once((format!("{key_id}\0*"), total)).chain(each) {
                let Some(limit) = limit else { continue };
                // PostgreSQL text holds no NUL.
                let counter = counter.replace('\0', "\u{1}");
                // The row lock taken by the upsert orders instances counting the same window.
                let count: i32 = tx
                    .query_one(
                        "INSERT INTO rate_windows (counter, window_start, count) VALUES ($1, $2, 1)
                         ON CONFLICT (counter, window_start) DO UPDATE SET count = rate_windows.count + 1 RETURNING count",
                        &[&counter, &window],
                    )
                    .await?
                    .try_get(0)?;
                if count as u32 > limit {
                    tx.rollback().await?;
                    return Ok(RateCheck::Refused { retry_after });
                }
            }
            tx.execute("DELETE FROM rate_windows WHERE window_start < $1", &[&(window - WINDOW_MS as i64)]).await?;
            tx.commit().await?;
            Ok(RateCheck::Counted)
        };
        attempt.await
    }
}

impl Store for PgStore {
    fn shared(&self) -> bool {
        true
    }
}
