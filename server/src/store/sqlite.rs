//! The embedded default: one SQLite file in the data directory, in WAL mode with full sync, so
//! a record `csr` has acknowledged survives a crash.

use super::row::{json_text, KeyRow, RecordRow};
use super::*;
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};
use std::path::Path;
use std::sync::Mutex;

pub const DB_FILE: &str = "skapi.sqlite3";

/// Schema migrations (`server/migrations/sqlite/`), applied in order, each once;
/// `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/0001_initial.sql"),
    include_str!("../../migrations/sqlite/0002_queue_indexes.sql"),
    include_str!("../../migrations/sqlite/0003_services.sql"),
    include_str!("../../migrations/sqlite/0004_leases.sql"),
];

/// Connections that only read (WAL lets them read beside the writer).
const READERS: usize = 4;
/// Most writes committed together in one transaction.
const MAX_BATCH: usize = 512;

/// A write waiting for the writer thread: it runs its statements and returns what reports its
/// outcome once the batch's commit is known.
type Job = Box<dyn FnOnce(&Connection) -> (bool, Box<dyn FnOnce(Result<(), Committed>) + Send>) + Send>;

/// Why a batch did not commit.
#[derive(Clone, Debug)]
struct Committed {
    full: bool,
    message: String,
}

impl Committed {
    fn from(e: rusqlite::Error) -> Committed {
        Committed { full: e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull), message: e.to_string() }
    }
}

/// Writes go to one thread that commits them in batches ("group commit"): one fsync for every
/// write waiting at that moment, and no write is acknowledged before its batch is on disk.
/// Reads use a small pool of their own connections.
pub struct SqliteStore {
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
    readers: Arc<Readers>,
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

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

/// The writer thread: runs each job in a savepoint of the batch's transaction (a failing job
/// rolls back alone), commits, then tells every job how the commit went.
fn write_batches(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE").map_err(Committed::from);
        let mut reports = Vec::with_capacity(batch.len());
        for job in batch {
            if begun.is_err() {
                reports.push(job(&conn).1);
                continue;
            }
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, report) = job(&conn);
            if !ok {
                let _ = conn.execute_batch("ROLLBACK TO job");
            }
            let _ = conn.execute_batch("RELEASE job");
            reports.push(report);
        }
        let committed = begun.and_then(|()| conn.execute_batch("COMMIT").map_err(Committed::from));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for report in reports {
            report(committed.clone());
        }
    }
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        // SQLite creates the -wal and -shm files with the database file's mode: 0600 for all.
        crate::secrets::make_private(path)?;
        let mut conn = connect(path)?;
        Self::migrate(&mut conn)?;
        let connections = (0..READERS).map(|_| connect(path).map(Mutex::new)).collect::<rusqlite::Result<Vec<_>>>()?;
        let (sender, jobs) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_batches(conn, jobs))
            .map_err(|e| StoreError::Corrupt(format!("the writer thread could not start: {e}")))?;
        Ok(SqliteStore { writer: Mutex::new(sender), readers: Arc::new(Readers { connections, next: Default::default() }) })
    }

    /// Runs `work` on the writer thread, in the next batch; returns once that batch committed.
    async fn write<T: Send + 'static>(&self, work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static) -> StoreResult<T> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = work(conn);
            let ok = result.is_ok();
            let report = move |committed: Result<(), Committed>| {
                let _ = reply.send(match (result, committed) {
                    (Err(e), _) => Err(e),
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(Committed { full: true, .. })) => Err(StoreError::Full),
                    (Ok(_), Err(e)) => Err(StoreError::Corrupt(format!("the write could not be committed: {}", e.message))),
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
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!("database schema version {applied} is newer than this server knows ({})", MIGRATIONS.len())));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }
}

fn key_row(row: &Row) -> rusqlite::Result<KeyRow> {
    Ok(KeyRow {
        service: row.get("service")?,
        name: row.get("name")?,
        secret: row.get("secret")?,
        locked: row.get("locked")?,
        destinations: row.get("destinations")?,
        positions: row.get("positions")?,
        rate_per_caller: row.get("rate_per_caller")?,
        rate_total: row.get("rate_total")?,
        created: row.get("created")?,
        updated: row.get("updated")?,
    })
}

fn record_row(row: &Row) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        seq: row.get("seq")?,
        id: row.get("id")?,
        service: row.get("service")?,
        owner: row.get("owner")?,
        caller: row.get("caller")?,
        key_name: row.get("key_name")?,
        method: row.get("method")?,
        url: row.get("url")?,
        key_v1: row.get("key_v1")?,
        key_v2: row.get("key_v2")?,
        queue: row.get("queue")?,
        queue_key: row.get("queue_key")?,
        request: row.get("request")?,
        request_body: row.get("request_body")?,
        status: row.get("status")?,
        status_code: row.get("status_code")?,
        response_body: row.get("response_body")?,
        truncated: row.get("truncated")?,
        error_code: row.get("error_code")?,
        error_message: row.get("error_message")?,
        created: row.get("created")?,
        updated: row.get("updated")?,
        expires: row.get("expires")?,
    })
}

fn records(rows: Vec<RecordRow>) -> StoreResult<Vec<Record>> {
    rows.into_iter().map(Record::try_from).collect()
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |conn| {
            let verb = if replace { "INSERT OR REPLACE" } else { "INSERT" };
            let sql = format!(
                "{verb} INTO keys (service, name, secret, locked, destinations, positions, rate_per_caller, rate_total, created, updated)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
            );
            let destinations = serde_json::to_string(&key.destinations).expect("strings serialise");
            let positions = serde_json::to_string(&key.positions).expect("positions serialise");
            let result = conn.execute(
                &sql,
                params![
                    key.service,
                    key.name,
                    key.sealed_secret,
                    key.locked,
                    destinations,
                    positions,
                    key.rate_per_caller,
                    key.rate_total,
                    key.created,
                    key.updated
                ],
            );
            match result {
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Exists(format!("key \"{}\" of service \"{}\"", key.name, key.service)))
                }
                other => other.map(|_| ()).map_err(Into::into),
            }
        })
        .await
    }

    async fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        let (service, name) = (service.to_owned(), name.to_owned());
        let row = self
            .read(move |conn| {
                Ok(conn.query_row("SELECT * FROM keys WHERE service = ?1 AND name = ?2", params![service, name], key_row).optional()?)
            })
            .await?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let service = service.map(str::to_owned);
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare("SELECT * FROM keys WHERE ?1 IS NULL OR service = ?1 ORDER BY service, name")?;
                let rows = stmt.query_map(params![service], key_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        let keys = rows.into_iter().map(KeyRecord::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(keys)
    }

    async fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        let (service, name) = (service.to_owned(), name.to_owned());
        self.write(move |conn| Ok(conn.execute("DELETE FROM keys WHERE service = ?1 AND name = ?2", params![service, name])? > 0)).await
    }

    async fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        let service = service.to_owned();
        let origins: Option<String> = self
            .read(move |conn| {
                Ok(conn.query_row("SELECT cors_origins FROM services WHERE service = ?1", params![service], |r| r.get(0)).optional()?)
            })
            .await?;
        origins.map(|o| serde_json::from_str(&o).map_err(|e| StoreError::Corrupt(format!("cors origins: {e}")))).transpose()
    }

    async fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        let (service, origins) = (service.to_owned(), origins.map(<[String]>::to_vec));
        self.write(move |conn| {
            match origins {
                Some(origins) => conn.execute(
                    "INSERT OR REPLACE INTO services (service, cors_origins, updated) VALUES (?1, ?2, ?3)",
                    params![service, serde_json::to_string(&origins).expect("strings serialise"), now],
                )?,
                None => conn.execute("DELETE FROM services WHERE service = ?1", params![service])?,
            };
            Ok(())
        })
        .await
    }

    async fn insert_record(&self, r: &NewRecord) -> StoreResult<i64> {
        let r = r.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO records (id, service, owner, caller, key_name, method, url, key_v1, key_v2, queue, queue_key,
                    request, request_body, status, created, updated, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'pending', ?14, ?14, ?15)",
                params![
                    r.id,
                    r.service,
                    r.owner,
                    r.caller,
                    r.key_name,
                    r.method.lower(),
                    r.url,
                    r.key_v1,
                    r.key_v2,
                    r.queue,
                    r.queue_key,
                    serde_json::to_string(&r.request).expect("wire bodies serialise"),
                    r.request_body.as_ref().map(json_text),
                    r.created,
                    r.expires,
                ],
            )?;
            Ok(conn.last_insert_rowid())
        })
        .await
    }

    async fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        let id = id.to_owned();
        let row = self.read(move |conn| Ok(conn.query_row("SELECT * FROM records WHERE id = ?1", params![id], record_row).optional()?)).await?;
        row.map(Record::try_from).transpose()
    }

    async fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let (status, status_code, body, truncated, error) = match outcome {
            Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
            Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
        };
        let (id, body) = (id.to_owned(), body.map(json_text));
        let (code, message) = (error.map(|e| e.code.as_str()), error.map(|e| e.message.clone()));
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE records SET status = ?2, status_code = ?3, response_body = ?4, truncated = ?5,
                    error_code = ?6, error_message = ?7, updated = ?8
                 WHERE id = ?1 AND status IN ('pending', 'running')",
                params![id, status, status_code, body, truncated, code, message, now],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let (id, error) = (id.to_owned(), error.clone());
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE records SET status = 'failed', error_code = ?2, error_message = ?3, updated = ?4
                 WHERE id = ?1 AND status = 'pending'",
                params![id, error.code.as_str(), error.message, now],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn counts(&self) -> StoreResult<(u64, u64, u64)> {
        self.read(|conn| {
            Ok(conn
                .query_row(super::COUNTS_SQL, [], |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)))
                .map(|(p, r, q)| (p.unwrap_or(0) as u64, r.unwrap_or(0) as u64, q.unwrap_or(0) as u64))?)
        })
        .await
    }

    async fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        let (service, queue) = (service.to_owned(), queue.to_owned());
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM records WHERE service = ?1 AND queue = ?2 AND status = 'pending'",
                params![service, queue],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        self.write(move |conn| Ok(conn.execute("DELETE FROM records WHERE expires <= ?1", params![cutoff])?)).await
    }

    async fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let mut sql = String::from("SELECT * FROM records WHERE service = ? AND caller = ? AND (key_v1 = ? OR key_v2 = ?) AND expires > ?");
        let mut args: Vec<Box<dyn ToSql + Send>> =
            vec![Box::new(q.service.clone()), Box::new(q.caller.clone()), Box::new(q.key.clone()), Box::new(q.key.clone()), Box::new(q.live_at)];
        if let Some(prefix) = &q.queue_prefix {
            sql.push_str(" AND substr(queue, 1, length(?)) = ?");
            args.push(Box::new(prefix.clone()));
            args.push(Box::new(prefix.clone()));
        }
        if let Some(exact) = &q.queue_exact {
            sql.push_str(" AND queue = ?");
            args.push(Box::new(exact.clone()));
        }
        if let Some(exclude) = &q.queue_exclude {
            sql.push_str(" AND (queue IS NULL OR queue <> ?)");
            args.push(Box::new(exclude.clone()));
        }
        if let Some(status) = q.status {
            sql.push_str(" AND status = ?");
            args.push(Box::new(status.as_str()));
        }
        if let Some(after) = q.after_seq {
            sql.push_str(if q.ascending { " AND seq > ?" } else { " AND seq < ?" });
            args.push(Box::new(after));
        }
        sql.push_str(if q.ascending { " ORDER BY seq ASC" } else { " ORDER BY seq DESC" });
        sql.push_str(" LIMIT ?");
        args.push(Box::new(q.limit));
        let rows = self
            .read(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), record_row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        records(rows)
    }

    async fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        let queue_key = queue_key.to_owned();
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM records WHERE queue_key = ?1 AND status = 'pending' AND seq <= ?2",
                params![queue_key, seq],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn pending(&self) -> StoreResult<Vec<Record>> {
        let rows = self
            .read(|conn| {
                let mut stmt = conn.prepare("SELECT * FROM records WHERE status = 'pending' ORDER BY seq")?;
                let rows = stmt.query_map([], record_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        records(rows)
    }

    async fn next_in_queue(&self, queue_key: &str) -> StoreResult<Option<String>> {
        let queue_key = queue_key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT id FROM records WHERE queue_key = ?1 AND status = 'pending' ORDER BY seq LIMIT 1", params![queue_key], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    async fn claim(&self, id: &str, now: u64, lease_until: u64) -> StoreResult<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn.execute(
                "UPDATE records SET status = 'running', updated = ?2, lease_until = ?3 WHERE id = ?1 AND status = 'pending'",
                params![id, now, lease_until],
            )?;
            Ok(n > 0)
        })
        .await
    }

    async fn claim_next_in_queue(&self, queue_key: &str, now: u64, lease_until: u64) -> StoreResult<Option<String>> {
        let queue_key = queue_key.to_owned();
        // The writer thread runs one job at a time: the look and the claim are one step.
        self.write(move |conn| {
            let head: Option<(String, String)> = conn
                .query_row(
                    "SELECT id, status FROM records WHERE queue_key = ?1 AND status IN ('pending', 'running') ORDER BY seq LIMIT 1",
                    params![queue_key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            match head {
                Some((id, status)) if status == "pending" => {
                    conn.execute(
                        "UPDATE records SET status = 'running', updated = ?2, lease_until = ?3 WHERE id = ?1",
                        params![id, now, lease_until],
                    )?;
                    Ok(Some(id))
                }
                _ => Ok(None),
            }
        })
        .await
    }

    async fn renew_leases(&self, ids: &[String], lease_until: u64) -> StoreResult<()> {
        let ids = ids.to_vec();
        self.write(move |conn| {
            for id in &ids {
                conn.execute("UPDATE records SET lease_until = ?2 WHERE id = ?1 AND status = 'running'", params![id, lease_until])?;
            }
            Ok(())
        })
        .await
    }

    async fn fail_expired_leases(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        let error = error.clone();
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE records SET status = 'failed', error_code = ?1, error_message = ?2, updated = ?3
                 WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < ?3",
                params![error.code.as_str(), error.message, now],
            )?)
        })
        .await
    }

    async fn idle_work(&self, before: u64) -> StoreResult<(Vec<String>, Vec<String>)> {
        self.read(move |conn| Self::idle_work_on(conn, before)).await
    }

    async fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        let error = error.clone();
        self.write(move |conn| {
            Ok(conn.execute(
                "UPDATE records SET status = 'failed', error_code = ?1, error_message = ?2, updated = ?3 WHERE status = 'running'",
                params![error.code.as_str(), error.message, now],
            )?)
        })
        .await
    }
}

impl SqliteStore {
    fn idle_work_on(conn: &Connection, before: u64) -> StoreResult<(Vec<String>, Vec<String>)> {
        let mut stmt = conn.prepare(
            "SELECT DISTINCT queue_key FROM records r WHERE status = 'pending' AND queue_key IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM records x WHERE x.queue_key = r.queue_key AND x.status = 'running')",
        )?;
        let queues = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        let mut stmt =
            conn.prepare("SELECT id FROM records WHERE status = 'pending' AND queue_key IS NULL AND created < ?1 ORDER BY seq LIMIT 1000")?;
        let ids = stmt.query_map(params![before], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
        Ok((queues, ids))
    }
}
