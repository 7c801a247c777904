//! The embedded default: one SQLite file in the data directory, in WAL mode with full sync, so
//! a record `csr` has acknowledged survives a crash.

use super::*;
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};
use skapi_core::ErrorCode;
use std::path::Path;
use std::sync::Mutex;

pub const DB_FILE: &str = "skapi.sqlite3";

/// Schema migrations, applied in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE keys (
    service      TEXT NOT NULL,
    name         TEXT NOT NULL,
    secret       BLOB NOT NULL,
    locked       INTEGER NOT NULL,
    destinations TEXT NOT NULL,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    PRIMARY KEY (service, name)
);
CREATE TABLE records (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    service       TEXT NOT NULL,
    owner         TEXT NOT NULL,
    caller        TEXT NOT NULL,
    key_name      TEXT NOT NULL,
    method        TEXT NOT NULL,
    url           TEXT NOT NULL,
    key_v1        TEXT NOT NULL,
    key_v2        TEXT NOT NULL,
    queue         TEXT,
    queue_key     TEXT,
    request       TEXT NOT NULL,
    request_body  TEXT,
    status        TEXT NOT NULL,
    status_code   INTEGER,
    response_body TEXT,
    truncated     INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    created       INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    expires       INTEGER NOT NULL
);
CREATE INDEX records_by_v2 ON records (service, caller, key_v2, seq);
CREATE INDEX records_by_v1 ON records (service, caller, key_v1, seq);
CREATE INDEX records_by_status ON records (status, seq);
CREATE INDEX records_by_queue ON records (queue_key, status, seq);
"#, r#"
CREATE INDEX records_by_queue_name ON records (service, queue, status);
CREATE INDEX records_by_expiry ON records (expires);
"#, r#"
ALTER TABLE keys ADD COLUMN positions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE keys ADD COLUMN rate_per_caller INTEGER;
ALTER TABLE keys ADD COLUMN rate_total INTEGER;
CREATE TABLE services (
    service      TEXT PRIMARY KEY,
    cors_origins TEXT NOT NULL,
    updated      INTEGER NOT NULL
);
"#];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let store = SqliteStore { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> StoreResult<()> {
        let mut conn = self.lock();
        let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Corrupt(format!(
                "database schema version {applied} is newer than this server knows ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).expect("serialising a JSON value does not fail")
}

fn parse_json(text: Option<String>, what: &str) -> StoreResult<Option<Value>> {
    text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))).transpose()
}

fn key_from_row(row: &Row) -> rusqlite::Result<KeyRecord> {
    let destinations: String = row.get("destinations")?;
    let positions: String = row.get("positions")?;
    Ok(KeyRecord {
        service: row.get("service")?,
        name: row.get("name")?,
        sealed_secret: row.get("secret")?,
        locked: row.get("locked")?,
        destinations: serde_json::from_str(&destinations).unwrap_or_default(),
        positions: serde_json::from_str(&positions).unwrap_or_default(),
        rate_per_caller: row.get("rate_per_caller")?,
        rate_total: row.get("rate_total")?,
        created: row.get("created")?,
        updated: row.get("updated")?,
    })
}

/// Raw columns of a record row; decoded outside rusqlite's closure so JSON errors surface.
struct RecordRow {
    seq: i64,
    id: String,
    service: String,
    owner: String,
    caller: String,
    key_name: String,
    method: String,
    url: String,
    key_v1: String,
    key_v2: String,
    queue: Option<String>,
    queue_key: Option<String>,
    request: String,
    request_body: Option<String>,
    status: String,
    status_code: Option<u16>,
    response_body: Option<String>,
    truncated: bool,
    error_code: Option<String>,
    error_message: Option<String>,
    created: u64,
    updated: u64,
    expires: u64,
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

impl TryFrom<RecordRow> for Record {
    type Error = StoreError;

    fn try_from(r: RecordRow) -> StoreResult<Record> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("record {}: {what}", r.id));
        let status = Status::parse(&r.status).ok_or_else(|| corrupt("status"))?;
        let method = Method::parse(&r.method).map_err(|_| corrupt("method"))?;
        let request: CsrBody = serde_json::from_str(&r.request).map_err(|_| corrupt("request"))?;
        let body = parse_json(r.response_body, "response body")?;
        let outcome = match status {
            Status::Resolved => Some(Outcome::Resolved {
                status_code: r.status_code.unwrap_or(0),
                body: body.unwrap_or(Value::Null),
                truncated: r.truncated,
            }),
            Status::Failed => {
                let code = r.error_code.as_deref().and_then(ErrorCode::parse).unwrap_or(ErrorCode::ServerError);
                Some(Outcome::Failed {
                    error: ApiError::new(code, r.error_message.unwrap_or_default()),
                    status_code: r.status_code,
                    body,
                    truncated: r.truncated,
                })
            }
            Status::Pending | Status::Running => None,
        };
        Ok(Record {
            seq: r.seq,
            new: NewRecord {
                request_body: parse_json(r.request_body, "request body")?,
                id: r.id,
                service: r.service,
                owner: r.owner,
                caller: r.caller,
                key_name: r.key_name,
                method,
                url: r.url,
                key_v1: r.key_v1,
                key_v2: r.key_v2,
                queue: r.queue,
                queue_key: r.queue_key,
                request,
                created: r.created,
                expires: r.expires,
            },
            status,
            outcome,
            updated: r.updated,
        })
    }
}

fn records(rows: Vec<RecordRow>) -> StoreResult<Vec<Record>> {
    rows.into_iter().map(Record::try_from).collect()
}

impl Store for SqliteStore {
    fn insert_key(&self, key: &KeyRecord, replace: bool) -> StoreResult<()> {
        let conn = self.lock();
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
    }

    fn get_key(&self, service: &str, name: &str) -> StoreResult<Option<KeyRecord>> {
        let conn = self.lock();
        Ok(conn
            .query_row("SELECT * FROM keys WHERE service = ?1 AND name = ?2", params![service, name], key_from_row)
            .optional()?)
    }

    fn list_keys(&self, service: Option<&str>) -> StoreResult<Vec<KeyRecord>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT * FROM keys WHERE ?1 IS NULL OR service = ?1 ORDER BY service, name")?;
        let keys = stmt.query_map(params![service], key_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(keys)
    }

    fn remove_key(&self, service: &str, name: &str) -> StoreResult<bool> {
        let conn = self.lock();
        Ok(conn.execute("DELETE FROM keys WHERE service = ?1 AND name = ?2", params![service, name])? > 0)
    }

    fn service_origins(&self, service: &str) -> StoreResult<Option<Vec<String>>> {
        let conn = self.lock();
        let origins: Option<String> = conn
            .query_row("SELECT cors_origins FROM services WHERE service = ?1", params![service], |r| r.get(0))
            .optional()?;
        origins.map(|o| serde_json::from_str(&o).map_err(|e| StoreError::Corrupt(format!("cors origins: {e}")))).transpose()
    }

    fn set_service_origins(&self, service: &str, origins: Option<&[String]>, now: u64) -> StoreResult<()> {
        let conn = self.lock();
        match origins {
            Some(origins) => conn.execute(
                "INSERT OR REPLACE INTO services (service, cors_origins, updated) VALUES (?1, ?2, ?3)",
                params![service, serde_json::to_string(origins).expect("strings serialise"), now],
            )?,
            None => conn.execute("DELETE FROM services WHERE service = ?1", params![service])?,
        };
        Ok(())
    }

    fn insert_record(&self, r: &NewRecord) -> StoreResult<i64> {
        let conn = self.lock();
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
    }

    fn get_record(&self, id: &str) -> StoreResult<Option<Record>> {
        let row = self.lock().query_row("SELECT * FROM records WHERE id = ?1", params![id], record_row).optional()?;
        row.map(Record::try_from).transpose()
    }

    fn mark_running(&self, id: &str, now: u64) -> StoreResult<bool> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE records SET status = 'running', updated = ?2 WHERE id = ?1 AND status = 'pending'",
            params![id, now],
        )?;
        Ok(n > 0)
    }

    fn finish(&self, id: &str, outcome: &Outcome, now: u64) -> StoreResult<bool> {
        let (status, status_code, body, truncated, error) = match outcome {
            Outcome::Resolved { status_code, body, truncated } => ("resolved", Some(*status_code), Some(body), *truncated, None),
            Outcome::Failed { error, status_code, body, truncated } => ("failed", *status_code, body.as_ref(), *truncated, Some(error)),
        };
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE records SET status = ?2, status_code = ?3, response_body = ?4, truncated = ?5,
                error_code = ?6, error_message = ?7, updated = ?8
             WHERE id = ?1 AND status IN ('pending', 'running')",
            params![
                id,
                status,
                status_code,
                body.map(json_text),
                truncated,
                error.map(|e| e.code.as_str()),
                error.map(|e| e.message.as_str()),
                now
            ],
        )?;
        Ok(n > 0)
    }

    fn fail_pending(&self, id: &str, error: &ApiError, now: u64) -> StoreResult<bool> {
        let conn = self.lock();
        let n = conn.execute(
            "UPDATE records SET status = 'failed', error_code = ?2, error_message = ?3, updated = ?4
             WHERE id = ?1 AND status = 'pending'",
            params![id, error.code.as_str(), error.message, now],
        )?;
        Ok(n > 0)
    }

    fn count_waiting(&self, service: &str, queue: &str) -> StoreResult<u64> {
        let conn = self.lock();
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM records WHERE service = ?1 AND queue = ?2 AND status = 'pending'",
            params![service, queue],
            |r| r.get(0),
        )?)
    }

    fn purge_expired(&self, cutoff: u64) -> StoreResult<usize> {
        let conn = self.lock();
        Ok(conn.execute("DELETE FROM records WHERE expires <= ?1", params![cutoff])?)
    }

    fn history(&self, q: &HistoryQuery) -> StoreResult<Vec<Record>> {
        let mut sql = String::from(
            "SELECT * FROM records WHERE service = ? AND caller = ? AND (key_v1 = ? OR key_v2 = ?) AND expires > ?",
        );
        let mut args: Vec<Box<dyn ToSql>> = vec![
            Box::new(q.service.clone()),
            Box::new(q.caller.clone()),
            Box::new(q.key.clone()),
            Box::new(q.key.clone()),
            Box::new(q.live_at),
        ];
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
        let conn = self.lock();
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), record_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        drop(conn);
        records(rows)
    }

    fn queue_position(&self, queue_key: &str, seq: i64) -> StoreResult<u64> {
        let conn = self.lock();
        Ok(conn.query_row(
            "SELECT COUNT(*) FROM records WHERE queue_key = ?1 AND status = 'pending' AND seq <= ?2",
            params![queue_key, seq],
            |r| r.get(0),
        )?)
    }

    fn pending(&self) -> StoreResult<Vec<Record>> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT * FROM records WHERE status = 'pending' ORDER BY seq")?;
        let rows = stmt.query_map([], record_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        drop(stmt);
        drop(conn);
        records(rows)
    }

    fn next_in_queue(&self, queue_key: &str) -> StoreResult<Option<String>> {
        let conn = self.lock();
        Ok(conn
            .query_row(
                "SELECT id FROM records WHERE queue_key = ?1 AND status = 'pending' ORDER BY seq LIMIT 1",
                params![queue_key],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn fail_running(&self, error: &ApiError, now: u64) -> StoreResult<usize> {
        let conn = self.lock();
        Ok(conn.execute(
            "UPDATE records SET status = 'failed', error_code = ?1, error_message = ?2, updated = ?3 WHERE status = 'running'",
            params![error.code.as_str(), error.message, now],
        )?)
    }
}
