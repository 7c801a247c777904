//! Group commit on PostgreSQL: the writes of a request's life waiting at one moment run
//! pipelined in one transaction and share its commit; none is answered before that commit.

use super::super::sql::Param;
use super::super::{StoreError, StoreResult};
use super::driver::bind;
use deadpool_postgres::Pool;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Row;

/// Batches committing at once: while one commits, the next gathers.
pub(super) const COMMITTERS: usize = 2;
/// Most writes in one batch.
const MAX_BATCH: usize = 256;

/// A write waiting for its batch: a statement, its values, and who waits for its rows.
pub(super) struct Write {
    pub(super) sql: &'static str,
    pub(super) values: Vec<Param>,
    pub(super) reply: oneshot::Sender<StoreResult<Vec<Row>>>,
}

/// Runs `batch` in one transaction, its statements pipelined, and commits once.
async fn commit_batch(pool: &Pool, batch: &[Write]) -> StoreResult<Vec<Vec<Row>>> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let values: Vec<_> = batch.iter().map(|w| bind(&w.values)).collect();
    let statements = futures_util::future::try_join_all(batch.iter().map(|w| tx.prepare_cached(w.sql))).await?;
    let rows = futures_util::future::try_join_all(statements.iter().zip(&values).map(|(s, v)| tx.query(s, v))).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A committer: takes every write waiting (up to [`MAX_BATCH`]), commits them together and
/// answers each. When a batch fails for one write's sake (a constraint, say) and not because
/// the database is away, its writes are run again one by one, so that only that one fails.
pub(super) async fn commit_writes(pool: Pool, writes: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Write>>>) {
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
