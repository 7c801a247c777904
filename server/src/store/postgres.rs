//! PostgreSQL, for running several skapi-server instances on one database (`serve --database
//! postgres://…`). Same records and keys as the SQLite default; migrations are versioned in a
//! `schema_migrations` table and applied at start.
//!
//! Several instances coordinate through the rows themselves: a queue's head is claimed under a
//! row lock (`SELECT … FOR UPDATE`) only while nothing of that queue runs; a running request
//! holds a lease its instance renews, and an instance that finds a lease run out ends that
//! request `INTERRUPTED`; expired records are purged under an advisory lock, by one instance at
//! a time.

use super::row::{json_text, KeyRow, RecordRow};
use super::*;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
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
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_initial.sql"), include_str!("../../migrations/postgres/0002_leases.sql")];

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
            return StoreError::Unavailable(format!("postgres: {e}"));
        }
        StoreError::Database(format!("postgres: {e}"))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> StoreError {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            // Every connection busy, or none can be made now (the database is away).
            other => StoreError::Unavailable(format!("postgres pool: {other}")),
        }
    }
}

pub struct PgStore {
    /// Broken connections (a database restart, a failover) are dropped when they come back to
    /// the pool and new ones made on demand: the server comes back on its own with the database.
    pool: Pool,
}

fn ms(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
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
        let store = PgStore { pool };
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
}

#[async_trait::async_trait]
impl Store for PgStore {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        let conflict = if replace {
            " ON CONFLICT (service, name) DO UPDATE SET secret = EXCLUDED.secret, locked = EXCLUDED.locked,
              destinations = EXCLUDED.destinations, positions = EXCLUDED.positions, rate_per_caller = EXCLUDED.rate_per_caller,
              rate_total = EXCLUDED.rate_total, created = EXCLUDED.created, updated = EXCLUDED.updated"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO keys (service, name, secret, locked, destinations, positions, rate_per_caller, rate_total, created, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10){conflict}"
        );
        let destinations = serde_json::to_string(&key.destinations).expect("strings serialise");
        let positions = serde_json::to_string(&key.positions).expect("positions serialise");
        let result = self
            .client()
            .await?
            .execute(
                &sql,
                &[
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
                ],
            )
            .await;
        match result.map_err(StoreError::from) {
            Err(StoreError::Exists(_)) => Err(StoreError::Exists(format!("key \"{}\" of service \"{}\"", key.name, key.service))),
            other => other.map(|_| ()),
        }
    }

    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        let row = self.client().await?.query_opt("SELECT * FROM keys WHERE service = $1 AND name = $2", &[&service, &name]).await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let rows =
            self.client().await?.query("SELECT * FROM keys WHERE $1::TEXT IS NULL OR service = $1 ORDER BY service, name", &[&service]).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        Ok(self.client().await?.execute("DELETE FROM keys WHERE service = $1 AND name = $2", &[&service, &name]).await? > 0)
    }

    async fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        let row = self.client().await?.query_opt("SELECT cors_origins FROM services WHERE service = $1", &[&service]).await?;
        let Some(row) = row else { return Ok(None) };
        serde_json::from_str(row.try_get(0)?).map(Some).map_err(|e| StoreError::Corrupt(format!("cors origins: {e}")))
    }

    async fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        match origins {
            Some(origins) => {
                self.client()
                    .await?
                    .execute(
                        "INSERT INTO services (service, cors_origins, updated) VALUES ($1, $2, $3)
                 ON CONFLICT (service) DO UPDATE SET cors_origins = EXCLUDED.cors_origins, updated = EXCLUDED.updated",
                        &[&service, &serde_json::to_string(origins).expect("strings serialise"), &ms(now)],
                    )
                    .await?
            }
            None => self.client().await?.execute("DELETE FROM services WHERE service = $1", &[&service]).await?,
        };
        Ok(())
    }

    async fn insert_record(&self, r: &NewRecord) -> StoreResult<i64> {
        let request = serde_json::to_string(&r.request).expect("wire bodies serialise");
        let request_body = r.request_body.as_ref().map(json_text);
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO records (id, service, owner, caller, key_name, method, url, key_v1, key_v2, queue, queue_key,
                request, request_body, status, created, updated, expires)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending', $14, $14, $15) RETURNING seq",
                &[
                    &r.id,
                    &r.service,
                    &r.owner,
                    &r.caller,
                    &r.key_name,
                    &r.method.lower(),
                    &r.url,
                    &r.key_v1,
                    &r.key_v2,
                    &r.queue,
                    &r.queue_key,
                    &request,
                    &request_body,
                    &ms(r.created),
                    &ms(r.expires),
                ],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        let row = self.client().await?.query_opt("SELECT * FROM records WHERE id = $1", &[&id]).await?;
        row.map(|r| Record::try_from(record_row(&r)?)).transpose()
    }

    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let (status, status_code, body, truncated, error) = match outcome {
            Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
            Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
        };
        let n = self.client().await?.execute(
            "UPDATE records SET status = $2, status_code = $3, response_body = $4, truncated = $5, error_code = $6, error_message = $7, updated = $8
             WHERE id = $1 AND status IN ('pending', 'running')",
            &[
                &id,
                &status,
                &status_code.map(|c| c as i32),
                &body.map(json_text),
                &truncated,
                &error.map(|e| e.code.as_str()),
                &error.map(|e| e.message.as_str()),
                &ms(now),
            ],
        ).await?;
        Ok(n > 0)
    }

    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE records SET status = 'failed', error_code = $2, error_message = $3, updated = $4 WHERE id = $1 AND status = 'pending'",
                &[&id, &error.code.as_str(), &error.message, &ms(now)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn counts(&self) -> StoreResult<(u64, u64, u64)> {
        let row = self.client().await?.query_one(super::COUNTS_SQL, &[]).await?;
        let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<_, Option<i64>>(i)?.unwrap_or(0) as u64) };
        Ok((n(0)?, n(1)?, n(2)?))
    }

    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM records WHERE service = $1 AND queue = $2 AND status = 'pending'", &[&service, &queue])
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // One instance purges at a time; the others skip this round.
        let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock(7461626)", &[]).await?.try_get(0)?;
        let n = if mine { tx.execute("DELETE FROM records WHERE expires <= $1", &[&ms(cutoff)]).await? as usize } else { 0 };
        tx.commit().await?;
        Ok(n)
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let live_at = ms(q.live_at);
        let limit = q.limit as i64;
        let status = q.status.map(|s| s.as_str());
        let mut sql = String::from("SELECT * FROM records WHERE service = $1 AND caller = $2 AND (key_v1 = $3 OR key_v2 = $3) AND expires > $4");
        let mut args: Vec<&(dyn ToSql + Sync)> = vec![&q.service, &q.caller, &q.key, &live_at];
        if let Some(prefix) = &q.queue_prefix {
            args.push(prefix);
            sql.push_str(&format!(" AND starts_with(queue, ${})", args.len()));
        }
        if let Some(exact) = &q.queue_exact {
            args.push(exact);
            sql.push_str(&format!(" AND queue = ${}", args.len()));
        }
        if let Some(exclude) = &q.queue_exclude {
            args.push(exclude);
            sql.push_str(&format!(" AND (queue IS NULL OR queue <> ${})", args.len()));
        }
        if let Some(status) = &status {
            args.push(status);
            sql.push_str(&format!(" AND status = ${}", args.len()));
        }
        if let Some(after) = &q.after_seq {
            args.push(after);
            sql.push_str(&format!(" AND seq {} ${}", if q.ascending { ">" } else { "<" }, args.len()));
        }
        args.push(&limit);
        sql.push_str(&format!(" ORDER BY seq {} LIMIT ${}", if q.ascending { "ASC" } else { "DESC" }, args.len()));
        records(self.client().await?.query(&sql, &args).await?)
    }

    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        let row = self
            .client()
            .await?
            .query_one("SELECT COUNT(*) FROM records WHERE queue_key = $1 AND status = 'pending' AND seq <= $2", &[&queue_key, &seq])
            .await?;
        Ok(row.try_get::<_, i64>(0)? as u64)
    }

    async fn pending(&self) -> StoreResult<Vec<Record>> {
        records(self.client().await?.query("SELECT * FROM records WHERE status = 'pending' ORDER BY seq", &[]).await?)
    }

    async fn next_in_queue(&self, queue_key: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt("SELECT id FROM records WHERE queue_key = $1 AND status = 'pending' ORDER BY seq LIMIT 1", &[&queue_key])
            .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    async fn claim(&self, id: &str, now: u64, lease_until: u64) -> StoreResult<bool> {
        let n = self
            .client()
            .await?
            .execute(
                "UPDATE records SET status = 'running', updated = $2, lease_until = $3 WHERE id = $1 AND status = 'pending'",
                &[&id, &ms(now), &ms(lease_until)],
            )
            .await?;
        Ok(n > 0)
    }

    async fn claim_next_in_queue(&self, queue_key: &str, now: u64, lease_until: u64) -> StoreResult<Option<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let head = tx
            .query_opt(
                "SELECT id, status FROM records WHERE queue_key = $1 AND status IN ('pending', 'running') ORDER BY seq LIMIT 1 FOR UPDATE",
                &[&queue_key],
            )
            .await?;
        let claimed = match head {
            Some(row) if row.try_get::<_, &str>(1)? == "pending" => {
                let id: String = row.try_get(0)?;
                tx.execute("UPDATE records SET status = 'running', updated = $2, lease_until = $3 WHERE id = $1", &[&id, &ms(now), &ms(lease_until)])
                    .await?;
                Some(id)
            }
            _ => None,
        };
        tx.commit().await?;
        Ok(claimed)
    }

    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<()> {
        if !ids.is_empty() {
            self.client()
                .await?
                .execute("UPDATE records SET lease_until = $2 WHERE id = ANY($1) AND status = 'running'", &[&ids, &ms(lease_until)])
                .await?;
        }
        Ok(())
    }

    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3
             WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < $3",
                &[&error.code.as_str(), &error.message, &ms(now)],
            )
            .await? as usize)
    }

    async fn idle_work(&self, before: u64) -> StoreResult<(Vec<String>, Vec<String>)> {
        let client = self.client().await?;
        let queues = client
            .query(
                "SELECT DISTINCT queue_key FROM records r WHERE status = 'pending' AND queue_key IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM records x WHERE x.queue_key = r.queue_key AND x.status = 'running')",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let ids = client
            .query("SELECT id FROM records WHERE status = 'pending' AND queue_key IS NULL AND created < $1 ORDER BY seq LIMIT 1000", &[&ms(before)])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok((queues, ids))
    }

    fn shared(&self) -> bool {
        true
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
        Ok(self
            .client()
            .await?
            .execute(
                "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3 WHERE status = 'running'",
                &[&error.code.as_str(), &error.message, &ms(now)],
            )
            .await? as usize)
    }
}
