//! SQLite's writer thread: every write goes through it, and it commits whatever is waiting in
//! one transaction (group commit: one fsync for every write of the moment, none acknowledged
//! before its batch is on disk); it also keeps the WAL from growing without bound.

use super::super::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most writes committed together in one transaction.
pub(super) const MAX_BATCH: usize = 512;

/// A write waiting for the writer thread: given the batch's connection, it runs its statements
/// and returns what reports its outcome once the batch's commit is known; given why the batch
/// could not begin, it runs nothing and reports that.
pub(super) type Job = Box<dyn FnOnce(Result<&Connection, &Committed>) -> (bool, Box<dyn FnOnce(Result<(), Committed>) + Send>) + Send>;

/// Why a batch did not begin or commit.
#[derive(Clone, Debug)]
pub(super) struct Committed {
    code: Option<rusqlite::ErrorCode>,
    message: String,
}

impl Committed {
    fn from(e: rusqlite::Error) -> Committed {
        Committed { code: e.sqlite_error_code(), message: e.to_string() }
    }

    /// The error a write of the batch answers with.
    pub(super) fn error(self) -> StoreError {
        use rusqlite::ErrorCode::*;
        match self.code {
            Some(DiskFull) => StoreError::Full,
            // Another process holds the file, or it cannot be written now.
            Some(DatabaseBusy | DatabaseLocked | ReadOnly | CannotOpen) => StoreError::Unavailable(self.message),
            _ => StoreError::Database(format!("the write could not be committed: {}", self.message)),
        }
    }
}

/// The writer thread: runs each job in a savepoint of the batch's transaction (a failing job
/// rolls back alone), commits, then tells every job how the commit went.
pub(super) fn write_batches(conn: Connection, jobs: std::sync::mpsc::Receiver<Job>, keys: Arc<AtomicU64>, wal: std::path::PathBuf) {
    let mut batches = 0u64;
    // SQLite's data version changes when another connection commits (never for this one's own
    // commits; the readers never write): then a key may have changed unseen.
    let data_version = |conn: &Connection| conn.prepare_cached("PRAGMA data_version").and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)));
    let mut seen_version = data_version(&conn).ok();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let begun = conn.execute_batch("BEGIN IMMEDIATE").map_err(Committed::from);
        // Holding the write lock, nobody else commits until this batch has: a version read now
        // stays true for every job of the batch.
        if begun.is_ok() {
            let version = data_version(&conn).ok();
            if version.is_none() || version != seen_version {
                keys.fetch_add(1, Ordering::SeqCst);
                seen_version = version;
            }
        }
        let generation = keys.load(Ordering::SeqCst);
        let mut reports = Vec::with_capacity(batch.len());
        for job in batch {
            if let Err(why) = &begun {
                reports.push(job(Err(why)).1);
                continue;
            }
            let _ = conn.execute_batch("SAVEPOINT job");
            let (ok, report) = job(Ok(&conn));
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
        // A key write moved the generation as it ran, for the inserts after it in this batch;
        // it moves again now that it is visible, so that a key a reader took while it was not
        // yet committed is not kept under the newer number.
        if keys.load(Ordering::SeqCst) != generation {
            keys.fetch_add(1, Ordering::SeqCst);
        }
        for report in reports {
            report(committed.clone());
        }
        batches += 1;
        if batches % WAL_CHECK_EVERY == 0 {
            restart_a_long_wal(&conn, &wal);
        }
    }
}

/// How many batches go by between looks at the WAL's size.
const WAL_CHECK_EVERY: u64 = 64;
/// A WAL longer than this is checkpointed and started over.
const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;

/// SQLite's own checkpoints copy the WAL into the database but start it over only when no
/// reader is using it — under steady reads (every `csr` reads its queue position) that moment
/// never comes, and a burst grew the WAL past a gigabyte. A RESTART checkpoint waits for the
/// readers of the moment (their reads take milliseconds; at most the writer's busy timeout)
/// so that the next write starts the WAL over; `journal_size_limit` then cuts the file back.
fn restart_a_long_wal(conn: &Connection, wal: &Path) {
    if std::fs::metadata(wal).map_or(0, |m| m.len()) > WAL_RESTART_BYTES {
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "the WAL could not be checkpointed; it is tried again later");
        }
    }
}
