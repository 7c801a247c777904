//! Upkeep: after a start, what a previous stop left; while running, the leases of this
//! instance's requests, work another instance left, and expired records.

use super::{lock, Engine};
use crate::clock::now_ms;
use crate::shares::ShareNames;
use crate::store::{IdleWork, StoreError};
use skapi_core::{ApiError, ErrorCode};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// An unqueued pending request older than this is picked up by any instance.
const IDLE_AFTER_MS: u64 = 2_000;

/// An upkeep loop's clock: the engine at every tick, until the upkeep stops or the engine is
/// gone (a loop keeps no engine alive).
struct Ticks {
    engine: Weak<Engine>,
    interval: tokio::time::Interval,
    stop: CancellationToken,
}

impl Ticks {
    async fn next(&mut self) -> Option<Arc<Engine>> {
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => None,
            _ = self.interval.tick() => self.engine.upgrade(),
        }
    }
}

impl Engine {
    fn ticks(self: &Arc<Self>, every: Duration) -> Ticks {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticks { engine: Arc::downgrade(self), interval, stop: self.stop.clone() }
    }

    /// After a restart: a request that was `running` may or may not have reached the third
    /// party, so it ends `INTERRUPTED` rather than being sent twice; `pending` ones run again,
    /// in arrival order.
    pub async fn recover(self: &Arc<Self>) -> Result<(), StoreError> {
        let interrupted = ApiError::new(ErrorCode::Interrupted, "The server stopped while this request was running; it was not sent again.");
        let now = now_ms();
        // Alone on its store, this process knows that whatever runs was its own; with a shared
        // store another instance may be running it, and only a lease running out tells.
        let n = if self.db.store().shared() { 0 } else { self.db.call(|s| s.fail_running(&interrupted, now)).await? };
        if n > 0 {
            tracing::warn!(count = n, "requests interrupted by a previous stop marked failed");
        }
        for record in self.db.call(|s| s.pending()).await? {
            // A queue's worker finds its records itself; one dispatch per queue is enough.
            let names = ShareNames::new(std::slice::from_ref(&record.new.caller), &record.new.service, &record.new.key_name);
            self.dispatch(record.new.id, record.new.queue_key, names);
        }
        Ok(())
    }

    /// Deletes records `grace` after they expired, every `interval`, until the upkeep stops (or
    /// the engine is gone).
    pub fn spawn_purger(self: &Arc<Self>, interval: Duration, grace: Duration) {
        let mut ticks = self.ticks(interval);
        self.upkeep.spawn(async move {
            while let Some(engine) = ticks.next().await {
                let cutoff = now_ms().saturating_sub(grace.as_millis() as u64);
                match engine.db.call(|s| s.purge_expired(cutoff)).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "expired records purged"),
                    Err(e) => tracing::error!(error = %e, "purging expired records failed"),
                }
            }
        });
    }

    /// Keeps the leases of this instance's running requests fresh, ends requests whose lease ran
    /// out (their instance died), and picks up work nobody is doing (a queue left by a dead
    /// instance, a request accepted by one that died before starting it).
    pub fn spawn_maintenance(self: &Arc<Self>) {
        // At least once a second whatever the lease: work an instance left (a drained queue, a
        // dead instance's pending requests) is picked up that soon.
        let mut ticks = self.ticks((self.lease / 3).clamp(Duration::from_millis(100), Duration::from_secs(1)));
        self.upkeep.spawn(async move {
            while let Some(engine) = ticks.next().await {
                let now = now_ms();
                let mine: Vec<String> = lock(&engine.running).keys().cloned().collect();
                let lease_until = engine.lease_until(now);
                let interrupted = ApiError::new(ErrorCode::Interrupted, "The server running this request stopped; it was not sent again.");
                let work = engine
                    .db
                    .call(|s| {
                        Box::pin(async move {
                            s.renew_leases(&mine, lease_until).await?;
                            s.fail_expired_leases(&interrupted, now).await?;
                            s.idle_work(now.saturating_sub(IDLE_AFTER_MS)).await
                        })
                    })
                    .await;
                match work {
                    Ok(IdleWork { queues, requests }) => {
                        // Work left idle (its instance gone) counts under no caller of its own.
                        for queue_key in queues {
                            engine.dispatch(String::new(), Some(queue_key), ShareNames::default());
                        }
                        for id in requests {
                            engine.dispatch(id, None, ShareNames::default());
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "lease upkeep failed"),
                }
            }
        });
    }
}
