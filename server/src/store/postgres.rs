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
use ::postgres::types::ToSql;
use ::postgres::{Client, NoTls, Row};
use std::sync::Mutex;

/// Connections each instance keeps.
const POOL: usize = 4;

/// Schema migrations (`server/migrations/postgres/`), applied in order, each once;
/// `schema_migrations` records those applied.
const MIGRATIONS: &[&str] = &[include_str!("../../migrations/postgres/0001_initial.sql"), include_str!("../../migrations/postgres/0002_leases.sql")];

impl From<::postgres::Error> for StoreError {
    fn from(e: ::postgres::Error) -> StoreError {
        if e.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION) {
            return StoreError::Exists("that row".into());
        }
        if e.code() == Some(&::postgres::error::SqlState::DISK_FULL) {
            return StoreError::Full;
        }
        use ::postgres::error::SqlState;
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

pub struct PgStore {
    /// Where to connect again after the database went away.
    config: ::postgres::Config,
    pool: Vec<Mutex<Client>>,
    next: std::sync::atomic::AtomicUsize,
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

fn record_row(row: &Row) -> RecordRow {
    RecordRow {
        seq: row.get("seq"),
        id: row.get("id"),
        service: row.get("service"),
        owner: row.get("owner"),
        caller: row.get("caller"),
        key_name: row.get("key_name"),
        method: row.get("method"),
        url: row.get("url"),
        key_v1: row.get("key_v1"),
        key_v2: row.get("key_v2"),
        queue: row.get("queue"),
        queue_key: row.get("queue_key"),
        request: row.get("request"),
        request_body: row.get("request_body"),
        status: row.get("status"),
        status_code: row.get::<_, Option<i32>>("status_code").map(|v| v as u16),
        response_body: row.get("response_body"),
        truncated: row.get("truncated"),
        error_code: row.get("error_code"),
        error_message: row.get("error_message"),
        created: row.get::<_, i64>("created") as u64,
        updated: row.get::<_, i64>("updated") as u64,
        expires: row.get::<_, i64>("expires") as u64,
    }
}

fn records(rows: Vec<Row>) -> StoreResult<Vec<Record>> {
    rows.iter().map(|r| Record::try_from(record_row(r))).collect()
}

impl PgStore {
    /// Connects (a few connections) and applies the migrations this server knows.
    pub fn open(url: &str) -> StoreResult<PgStore> {
        let mut config: ::postgres::Config = url.parse()?;
        // A database that is away answers fast: calls fail with `Unavailable`, never hang.
        config.connect_timeout(std::time::Duration::from_secs(2));
        let mut first = config.connect(NoTls)?;
        Self::migrate(&mut first)?;
        let mut pool = vec![Mutex::new(first)];
        for _ in 1..POOL {
            pool.push(Mutex::new(config.connect(NoTls)?));
        }
        Ok(PgStore { config, pool, next: Default::default() })
    }

    fn migrate(client: &mut Client) -> StoreResult<()> {
        client.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)")?;
        // One instance migrates at a time.
        let mut tx = client.transaction()?;
        tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")?;
        let applied: i64 = tx.query_one("SELECT COUNT(*) FROM schema_migrations", &[])?.get(0);
        if applied as usize > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!("database schema version {applied} is newer than this server knows ({})", MIGRATIONS.len())));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[&((i + 1) as i32)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A connection of the pool, connected again first if the database dropped it (a restart,
    /// a failover): the server comes back on its own once the database does.
    fn client(&self) -> StoreResult<std::sync::MutexGuard<'_, Client>> {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.pool.len();
        let mut client = self.pool[i].lock().unwrap_or_else(|e| e.into_inner());
        if client.is_closed() {
            *client = self.config.connect(NoTls)?;
            tracing::info!("reconnected to PostgreSQL");
        }
        Ok(client)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // A postgres::Client blocks when dropped, which must never happen on an async worker
        // thread (the last handle may well be dropped there).
        let pool = std::mem::take(&mut self.pool);
        let _ = std::thread::spawn(move || drop(pool));
    }
}

impl Store for PgStore {
    fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
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
        let result = self.client()?.execute(
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
        );
        match result.map_err(StoreError::from) {
            Err(StoreError::Exists(_)) => Err(StoreError::Exists(format!("key \"{}\" of service \"{}\"", key.name, key.service))),
            other => other.map(|_| ()),
        }
    }

    fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        let row = self.client()?.query_opt("SELECT * FROM keys WHERE service = $1 AND name = $2", &[&service, &name])?;
        row.as_ref().map(key_from_row).transpose()
    }

    fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let rows = self.client()?.query("SELECT * FROM keys WHERE $1::TEXT IS NULL OR service = $1 ORDER BY service, name", &[&service])?;
        rows.iter().map(key_from_row).collect()
    }

    fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        Ok(self.client()?.execute("DELETE FROM keys WHERE service = $1 AND name = $2", &[&service, &name])? > 0)
    }

    fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        let row = self.client()?.query_opt("SELECT cors_origins FROM services WHERE service = $1", &[&service])?;
        row.map(|r| serde_json::from_str(r.get(0)).map_err(|e| StoreError::Corrupt(format!("cors origins: {e}")))).transpose()
    }

    fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        match origins {
            Some(origins) => self.client()?.execute(
                "INSERT INTO services (service, cors_origins, updated) VALUES ($1, $2, $3)
                 ON CONFLICT (service) DO UPDATE SET cors_origins = EXCLUDED.cors_origins, updated = EXCLUDED.updated",
                &[&service, &serde_json::to_string(origins).expect("strings serialise"), &ms(now)],
            )?,
            None => self.client()?.execute("DELETE FROM services WHERE service = $1", &[&service])?,
        };
        Ok(())
    }

    fn insert_record(&self, r: &NewRecord) -> StoreResult<i64> {
        let request = serde_json::to_string(&r.request).expect("wire bodies serialise");
        let request_body = r.request_body.as_ref().map(json_text);
        let row = self.client()?.query_one(
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
        )?;
        Ok(row.get(0))
    }

    fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        let row = self.client()?.query_opt("SELECT * FROM records WHERE id = $1", &[&id])?;
        row.map(|r| Record::try_from(record_row(&r))).transpose()
    }

    fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let (status, status_code, body, truncated, error) = match outcome {
            Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
            Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
        };
        let n = self.client()?.execute(
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
        )?;
        Ok(n > 0)
    }

    fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let n = self.client()?.execute(
            "UPDATE records SET status = 'failed', error_code = $2, error_message = $3, updated = $4 WHERE id = $1 AND status = 'pending'",
            &[&id, &error.code.as_str(), &error.message, &ms(now)],
        )?;
        Ok(n > 0)
    }

    fn counts(&self) -> StoreResult<(u64, u64, u64)> {
        let row = self.client()?.query_one(super::COUNTS_SQL, &[])?;
        let n = |i: usize| row.get::<_, Option<i64>>(i).unwrap_or(0) as u64;
        Ok((n(0), n(1), n(2)))
    }

    fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        let row =
            self.client()?.query_one("SELECT COUNT(*) FROM records WHERE service = $1 AND queue = $2 AND status = 'pending'", &[&service, &queue])?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        // One instance purges at a time; the others skip this round.
        let mine: bool = tx.query_one("SELECT pg_try_advisory_xact_lock(7461626)", &[])?.get(0);
        let n = if mine { tx.execute("DELETE FROM records WHERE expires <= $1", &[&ms(cutoff)])? as usize } else { 0 };
        tx.commit()?;
        Ok(n)
    }

    fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
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
        records(self.client()?.query(&sql, &args)?)
    }

    fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        let row = self
            .client()?
            .query_one("SELECT COUNT(*) FROM records WHERE queue_key = $1 AND status = 'pending' AND seq <= $2", &[&queue_key, &seq])?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn pending(&self) -> StoreResult<Vec<Record>> {
        records(self.client()?.query("SELECT * FROM records WHERE status = 'pending' ORDER BY seq", &[])?)
    }

    fn next_in_queue(&self, queue_key: &str) -> StoreResult<Option<String>> {
        let row =
            self.client()?.query_opt("SELECT id FROM records WHERE queue_key = $1 AND status = 'pending' ORDER BY seq LIMIT 1", &[&queue_key])?;
        Ok(row.map(|r| r.get(0)))
    }

    fn claim(&self, id: &str, now: u64, lease_until: u64) -> StoreResult<bool> {
        let n = self.client()?.execute(
            "UPDATE records SET status = 'running', updated = $2, lease_until = $3 WHERE id = $1 AND status = 'pending'",
            &[&id, &ms(now), &ms(lease_until)],
        )?;
        Ok(n > 0)
    }

    fn claim_next_in_queue(&self, queue_key: &str, now: u64, lease_until: u64) -> StoreResult<Option<String>> {
        let mut client = self.client()?;
        let mut tx = client.transaction()?;
        let head = tx.query_opt(
            "SELECT id, status FROM records WHERE queue_key = $1 AND status IN ('pending', 'running') ORDER BY seq LIMIT 1 FOR UPDATE",
            &[&queue_key],
        )?;
        let claimed = match head {
            Some(row) if row.get::<_, &str>(1) == "pending" => {
                let id: String = row.get(0);
                tx.execute(
                    "UPDATE records SET status = 'running', updated = $2, lease_until = $3 WHERE id = $1",
                    &[&id, &ms(now), &ms(lease_until)],
                )?;
                Some(id)
            }
            _ => None,
        };
        tx.commit()?;
        Ok(claimed)
    }

    fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<()> {
        if !ids.is_empty() {
            self.client()?.execute("UPDATE records SET lease_until = $2 WHERE id = ANY($1) AND status = 'running'", &[&ids, &ms(lease_until)])?;
        }
        Ok(())
    }

    fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        Ok(self.client()?.execute(
            "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3
             WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < $3",
            &[&error.code.as_str(), &error.message, &ms(now)],
        )? as usize)
    }

    fn idle_work(&self, before: u64) -> StoreResult<(Vec<String>, Vec<String>)> {
        let mut client = self.client()?;
        let queues = client
            .query(
                "SELECT DISTINCT queue_key FROM records r WHERE status = 'pending' AND queue_key IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM records x WHERE x.queue_key = r.queue_key AND x.status = 'running')",
                &[],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let ids = client
            .query("SELECT id FROM records WHERE status = 'pending' AND queue_key IS NULL AND created < $1 ORDER BY seq LIMIT 1000", &[&ms(before)])?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok((queues, ids))
    }

    fn shared(&self) -> bool {
        true
    }

    fn rate_check(
        &self,
        key_id: &str,
        callers: &[String],
        per_caller: Option<u32>,
        total: Option<u32>,
        now: u64,
    ) -> Option<StoreResult<Result<(), u64>>> {
        if per_caller.is_none() && total.is_none() {
            return Some(Ok(Ok(())));
        }
        const WINDOW_MS: u64 = 60_000;
        let window = (now / WINDOW_MS * WINDOW_MS) as i64;
        let retry_after = ((now / WINDOW_MS + 1) * WINDOW_MS - now).div_ceil(1000).max(1);
        let attempt = || -> StoreResult<Result<(), u64>> {
            let mut client = self.client()?;
            let mut tx = client.transaction()?;
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
                    )?
                    .get(0);
                if count as u32 > limit {
                    tx.rollback()?;
                    return Ok(Err(retry_after));
                }
            }
            tx.execute("DELETE FROM rate_windows WHERE window_start < $1", &[&(window - WINDOW_MS as i64)])?;
            tx.commit()?;
            Ok(Ok(()))
        };
        Some(attempt())
    }

    fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        Ok(self.client()?.execute(
            "UPDATE records SET status = 'failed', error_code = $1, error_message = $2, updated = $3 WHERE status = 'running'",
            &[&error.code.as_str(), &error.message, &ms(now)],
        )? as usize)
    }
}
