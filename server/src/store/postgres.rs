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

use super::row::{json_text, KeyRow, RecordRow};
use super::sql::{self, ms, Arg};
use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// Connections each instance keeps at most.
const POOL: usize = 8;
/// How long a call waits for a connection (a free one, or a new one to a database that is
/// back) before it answers `Unavailable`.
const WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Schema migrations (`server/migrations/postgres/`), applied in order, each once;
/// `schema_migrations` records those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/0001_initial.sql"),
    include_str!("../../migrations/postgres/0002_leases.sql"),
    include_str!("../../migrations/postgres/0003_streams.sql"),
    include_str!("../../migrations/postgres/0004_claims.sql"),
    include_str!("../../migrations/postgres/0005_unfinished_indexes.sql"),
];

/// An error and what it says it came from, `a: b: c` — a driver's own text alone is often just
/// "db error", with the server's message in its source.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> StoreError {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            return StoreError::Exists("that row".into());
        }
        if e.code() == Some(&SqlState::DISK_FULL) {
            return StoreError::Full;
        }
        let going_away = [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW, SqlState::CONNECTION_FAILURE];
        // The connection itself failed: closed, refused, reset, timed out.
        let text = e.to_string();
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        let connection = e.is_closed() || io || text.starts_with("error connecting") || text.starts_with("timeout");
        if connection || e.code().is_some_and(|c| going_away.contains(c)) {
            return StoreError::Unavailable(format!("postgres: {}", with_sources(&e)));
        }
        StoreError::Database(format!("postgres: {}", with_sources(&e)))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            // Every connection busy, or none can be made now (the database is away).
            other => StoreError::Unavailable(format!("postgres pool: {}", with_sources(&other))),
        }
    }
}

pub struct PgStore {
    /// Broken connections (a database restart, a failover) are dropped when they come back to
    /// the pool and new ones made on demand: the server comes back on its own with the database.
    pool: Pool,
    /// Writes waiting for a committer.
    writes: mpsc::UnboundedSender<Write>,
}

/// Batches committing at once: while one commits, the next gathers.
const COMMITTERS: usize = 2;
/// Most writes in one batch.
const MAX_BATCH: usize = 256;

/// Values of one statement, owned so that the statement can wait for its batch.
type Values = Vec<Box<dyn ToSql + Sync + Send>>;

/// A write waiting for its batch: a statement, its values, and who waits for its rows.
struct Write {
    sql: &'static str,
    values: Values,
    reply: oneshot::Sender<StoreResult<Vec<Row>>>,
}

fn params(values: &Values) -> Vec<&(dyn ToSql + Sync)> {
    values.iter().map(|v| v.as_ref() as &(dyn ToSql + Sync)).collect()
}

/// Runs `batch` in one transaction, its statements pipelined, and commits once.
async fn commit_batch(pool: &Pool, batch: &[Write]) -> StoreResult<Vec<Vec<Row>>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let values: Vec<_> = batch.iter().map(|w| params(&w.values)).collect();
    let statements = futures_util::future::try_join_all(batch.iter().map(|w| tx.prepare_cached(w.sql))).await?;
    let rows = futures_util::future::try_join_all(statements.iter().zip(&values).map(|(s, v)| tx.query(s, v))).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A committer: takes every write waiting (up to [`MAX_BATCH`]), commits them together and
/// answers each. When a batch fails for one write's sake (a constraint, say) and not because
/// the database is away, its writes are run again one by one, so that only that one fails.
async fn commit_writes(pool: Pool, writes: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Write>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut waiting = writes.lock().await;
            if waiting.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return; // the store is gone
            }
        }
        match commit_batch(&pool, &batch).await {
            Ok(rows) => {
                for (write, rows) in batch.into_iter().zip(rows) {
                    let _ = write.reply.send(Ok(rows));
                }
            }
            Err(StoreError::Unavailable(why)) => {
                for write in batch {
                    let _ = write.reply.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            Err(e) if batch.len() == 1 => {
                let _ = batch.pop().expect("one write").reply.send(Err(e));
            }
            Err(_) => {
                for write in batch {
                    let alone = commit_batch(&pool, std::slice::from_ref(&write)).await;
                    let _ = write.reply.send(alone.map(|mut rows| rows.pop().unwrap_or_default()));
                }
            }
        }
    }
}

fn key_row(row: &Row) -> StoreResult<KeyRow> {
    let n = |v: Option<i32>| v.map(i64::from);
    Ok(KeyRow {
        service: row.try_get("service")?,
        name: row.try_get("name")?,
        secret: row.try_get("secret")?,
        locked: row.try_get("locked")?,
        destinations: row.try_get("destinations")?,
        positions: row.try_get("positions")?,
        rate_per_caller: n(row.try_get("rate_per_caller")?),
        rate_total: n(row.try_get("rate_total")?),
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

fn key_from_row(row: &Row) -> StoreResult<KeyRecord> {
    key_row(row)?.try_into()
}

/// A record row, every column read fallibly (a column of the wrong type is an error, never a
/// panic).
fn record_row(row: &Row) -> StoreResult<RecordRow> {
    let time = |name: &str| -> StoreResult<u64> { Ok(row.try_get::<_, i64>(name)?.max(0) as u64) };
    Ok(RecordRow {
        seq: row.try_get("seq")?,
        id: row.try_get("id")?,
        service: row.try_get("service")?,
        owner: row.try_get("owner")?,
        caller: row.try_get("caller")?,
        key_name: row.try_get("key_name")?,
        method: row.try_get("method")?,
        url: row.try_get("url")?,
        key_v1: row.try_get("key_v1")?,
        key_v2: row.try_get("key_v2")?,
        queue: row.try_get("queue")?,
        queue_key: row.try_get("queue_key")?,
        request: row.try_get("request")?,
        request_body: row.try_get("request_body")?,
        status: row.try_get("status")?,
        status_code: row.try_get::<_, Option<i32>>("status_code")?.map(|v| v as u16),
        response_body: row.try_get("response_body")?,
        truncated: row.try_get("truncated")?,
        error_code: row.try_get("error_code")?,
        error_message: row.try_get("error_message")?,
        created: time("created")?,
        updated: time("updated")?,
        expires: time("expires")?,
        finalized: row.try_get("finalized")?,
    })
}

fn records(rows: Vec<Row>) -> StoreResult<Vec<Record>> {
    rows.iter().map(|r| Record::try_from(record_row(r)?)).collect()
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
        if applied as usize > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!("database schema version {applied} is newer than this server knows ({})", MIGRATIONS.len())));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            tx.batch_execute(sql).await?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&((i + 1) as i32)]).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A connection of the pool (a new one when the pool has none that still works).
    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        Ok(self.pool.get().await?)
    }

    /// Rows of one statement on a pooled connection (its prepared form cached there).
    async fn query(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, values).await?)
    }

    async fn query_opt(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, values).await?.into_iter().next())
    }

    /// A count of one statement.
    async fn count(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let row = self.query_opt(sql, values).await?.ok_or_else(|| StoreError::Database("a count returned no row".into()))?;
        Ok(row.try_get::<_, Option<i64>>(0)?.unwrap_or(0).max(0) as u64)
    }

    /// Changed rows of one statement run outside a batch.
    async fn execute(&self, sql: &str, values: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, values).await?)
    }

    /// A write of a request's life, committed with the others waiting at the same moment.
    async fn write(&self, sql: &'static str, values: Values) -> StoreResult<Vec<Row>> {
        let (reply, rows) = oneshot::channel();
        self.writes.send(Write { sql, values, reply }).map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
        rows.await.map_err(|_| StoreError::Unavailable("the store is closing".into()))?
    }

    /// Ids as rows of a query.
    fn ids(rows: Vec<Row>) -> StoreResult<Vec<String>> {
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        let destinations = serde_json::to_string(&key.destinations).expect("strings serialise");
        let positions = serde_json::to_string(&key.positions).expect("positions serialise");
        let values: [&(dyn ToSql + Sync); 10] = [
            &key.service,
            &key.name,
            &key.sealed_secret,
            &key.locked,
            &destinations,
            &positions,
            &key.rate_per_caller.map(|v| v as i32),
            &key.rate_total.map(|v| v as i32),
            &ms(key.created),
            &ms(key.updated),
        ];
        match self.execute(if replace { sql::REPLACE_KEY } else { sql::INSERT_KEY }, &values).await {
            Err(StoreError::Exists(_)) => Err(StoreError::Exists(format!("key \"{}\" of service \"{}\"", key.name, key.service))),
            other => other.map(|_| ()),
        }
    }

    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        self.query_opt(sql::GET_KEY, &[&service, &name]).await?.as_ref().map(key_from_row).transpose()
    }

    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        self.query(sql::LIST_KEYS, &[&service]).await?.iter().map(key_from_row).collect()
    }

    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        Ok(!self.query(sql::REMOVE_KEY, &[&service, &name]).await?.is_empty())
    }

    async fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        let Some(row) = self.query_opt(sql::SERVICE_ORIGINS, &[&service]).await? else { return Ok(None) };
        serde_json::from_str(row.try_get(0)?).map(Some).map_err(|e| StoreError::Corrupt(format!("cors origins: {e}")))
    }

    async fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        match origins {
            Some(origins) => {
                let origins = serde_json::to_string(origins).expect("strings serialise");
                self.execute(sql::SET_SERVICE_ORIGINS, &[&service, &origins, &ms(now)]).await?
            }
            None => self.execute(sql::CLEAR_SERVICE_ORIGINS, &[&service]).await?,
        };
        Ok(())
    }

    async fn insert_record(&self, r: &NewRecord, claim: Option<&Claim>) -> StoreResult<i64> {
        let values: Values = vec![
            Box::new(r.id.clone()),
            Box::new(r.service.clone()),
            Box::new(r.owner.clone()),
            Box::new(r.caller.clone()),
            Box::new(r.key_name.clone()),
            Box::new(r.method.lower()),
            Box::new(r.url.clone()),
            Box::new(r.key_v1.clone()),
            Box::new(r.key_v2.clone()),
            Box::new(r.queue.clone()),
            Box::new(r.queue_key.clone()),
            Box::new(serde_json::to_string(&r.request).expect("wire bodies serialise")),
            Box::new(r.request_body.as_ref().map(json_text)),
            Box::new(ms(r.created)),
            Box::new(ms(r.expires)),
            Box::new(claim.map(|c| ms(c.lease_until))),
            Box::new(claim.map(|c| c.token.clone())),
        ];
        let rows = self.write(sql::INSERT_RECORD, values).await?;
        let row = rows.first().ok_or_else(|| StoreError::Database("an insert returned no sequence".into()))?;
        Ok(row.try_get(0)?)
    }

    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        self.query_opt(sql::GET_RECORD, &[&id]).await?.map(|r| Record::try_from(record_row(&r)?)).transpose()
    }

    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let (status, status_code, body, truncated, error) = match outcome {
            Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
            Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
        };
        let values: Values = vec![
            Box::new(id.to_owned()),
            Box::new(status),
            Box::new(status_code.map(|c| c as i32)),
            Box::new(body.map(json_text)),
            Box::new(truncated),
            Box::new(error.map(|e| e.code.as_str())),
            Box::new(error.map(|e| e.message.clone())),
            Box::new(ms(now)),
        ];
        Ok(!self.write(sql::FINISH, values).await?.is_empty())
    }

    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let values: Values = vec![Box::new(id.to_owned()), Box::new(error.code.as_str()), Box::new(error.message.clone()), Box::new(ms(now))];
        Ok(!self.write(sql::FAIL_PENDING, values).await?.is_empty())
    }

    async fn counts(&self) -> StoreResult<(u64, u64, u64)> {
        let row = self.query_opt(sql::COUNTS, &[]).await?.ok_or_else(|| StoreError::Database("counts returned no row".into()))?;
        let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<_, Option<i64>>(i)?.unwrap_or(0) as u64) };
        Ok((n(0)?, n(1)?, n(2)?))
    }

    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        self.count(sql::COUNT_WAITING, &[&service, &queue]).await
    }

    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One instance purges at a time; the others skip this round.
        let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock(7461626)", &[]).await?.try_get(0)?;
        let n = if mine {
            tx.execute(sql::PURGE_EXPIRED_CHUNKS, &[&ms(cutoff)]).await?;
            tx.execute(sql::PURGE_EXPIRED, &[&ms(cutoff)]).await? as usize
        } else {
            0
        };
        tx.commit().await?;
        Ok(n)
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let (sql, args) = sql::history(q);
        let values: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| match a {
                Arg::Text(s) => s as &(dyn ToSql + Sync),
                Arg::Int(n) => n as &(dyn ToSql + Sync),
            })
            .collect();
        records(self.query(&sql, &values).await?)
    }

    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        self.count(sql::QUEUE_POSITION, &[&queue_key, &seq]).await
    }

    async fn pending(&self) -> StoreResult<Vec<Record>> {
        records(self.query(sql::PENDING, &[]).await?)
    }

    async fn next_in_queue(&self, queue_key: &str) -> StoreResult<Option<String>> {
        Ok(self.query_opt(sql::NEXT_IN_QUEUE, &[&queue_key]).await?.map(|r| r.try_get(0)).transpose()?)
    }

    async fn claim(&self, id: &str, claim: &Claim) -> StoreResult<Option<Record>> {
        let values: Values = vec![Box::new(id.to_owned()), Box::new(ms(claim.now)), Box::new(ms(claim.lease_until)), Box::new(claim.token.clone())];
        Ok(records(self.write(sql::CLAIM, values).await?)?.pop())
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
                    ("pending", _) => records(tx.query(sql::START, &[&id, &ms(claim.now), &ms(claim.lease_until), &claim.token]).await?)?.pop(),
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

    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<()> {
        if !ids.is_empty() {
            // One statement for every id (PostgreSQL's arrays).
            self.execute("UPDATE records SET lease_until = $2 WHERE id = ANY($1) AND status = 'running'", &[&ids, &ms(lease_until)]).await?;
        }
        Ok(())
    }

    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        Ok(self.execute(sql::FAIL_EXPIRED_LEASES, &[&error.code.as_str(), &error.message, &ms(now)]).await? as usize)
    }

    async fn idle_work(&self, before: u64) -> StoreResult<(Vec<String>, Vec<String>)> {
        let queues = Self::ids(self.query(sql::IDLE_QUEUES, &[]).await?)?;
        let ids = Self::ids(self.query(sql::IDLE_REQUESTS, &[&ms(before)]).await?)?;
        Ok((queues, ids))
    }

    fn shared(&self) -> bool {
        true
    }

    async fn append_chunks(&self, id: &str, chunks: &[Chunk]) -> StoreResult<()> {
        let writes = chunks.iter().map(|c| {
            let values: Values = vec![Box::new(id.to_owned()), Box::new(ms(c.seq)), Box::new(c.txt.clone())];
            self.write(sql::INSERT_CHUNK, values)
        });
        futures_util::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn chunks(&self, id: &str, since: u64, limit: u32) -> StoreResult<Vec<Chunk>> {
        let rows = self.query(sql::CHUNKS, &[&id, &ms(since), &i64::from(limit)]).await?;
        rows.iter().map(|r| Ok(Chunk { seq: r.try_get::<_, i64>(0)?.max(0) as u64, txt: r.try_get(1)? })).collect()
    }

    async fn finalize(&self, id: &str, data: Option<&Value>, now: u64) -> StoreResult<Finalize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The row lock orders two finalizes of the same request.
        let Some(row) = tx.query_opt(&format!("{} FOR UPDATE", sql::GET_RECORD), &[&id]).await? else { return Ok(Finalize::NotStream) };
        let record = Record::try_from(record_row(&row)?)?;
        let texts = tx.query(sql::CHUNK_TEXTS, &[&id]).await?;
        let texts = || texts.iter().map(|r| Ok(r.try_get(0)?)).collect();
        let outcome = match finalized_body(&record, data, texts)? {
            Err(refused) => refused,
            Ok(body) => {
                tx.execute(sql::FINALIZE, &[&id, &json_text(&body), &ms(now)]).await?;
                tx.execute(sql::DELETE_CHUNKS, &[&id]).await?;
                Finalize::Done
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn rate_check(
        &self,
        key_id: &str,
        callers: &[String],
        per_caller: Option<u32>,
        total: Option<u32>,
        now: u64,
    ) -> StoreResult<Option<Result<(), u64>>> {
        if per_caller.is_none() && total.is_none() {
            return Ok(Some(Ok(())));
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
                    return Ok(Err(retry_after));
                }
            }
            tx.execute("DELETE FROM rate_windows WHERE window_start < $1", &[&(window - WINDOW_MS as i64)]).await?;
            tx.commit().await?;
            Ok(Ok(()))
        };
        attempt.await.map(Some)
    }

    async fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        Ok(self.execute(sql::FAIL_RUNNING, &[&error.code.as_str(), &error.message, &ms(now)]).await? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn errors_say_what_they_came_from() {
        let e = Layer("db error", Some(Box::new(Layer("FATAL: the database system is shutting down", None))));
        assert_eq!(with_sources(&e), "db error: FATAL: the database system is shutting down");
        // A source the error already quotes is not said twice.
        let e = Layer("timeout: connect", Some(Box::new(Layer("connect", None))));
        assert_eq!(with_sources(&e), "timeout: connect");
    }
}
