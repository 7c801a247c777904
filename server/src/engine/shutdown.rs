//! Stopping: the drain takes no new work and waits for what runs; what still runs when it
//! ends is interrupted; then the upkeep loops stop.

use super::{lock, Engine, Stop};
use skapi_core::{ApiError, ErrorCode};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::oneshot;

impl Engine {
    /// Stops taking work: no pending request is claimed from now on (it stays pending, for the
    /// next start or another instance); running ones go on.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.work.close();
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves once nothing is being claimed or run in this process (after [`Engine::drain`]).
    pub async fn drained(&self) {
        self.work.wait().await;
    }

    /// Ends every request still running here with `INTERRUPTED` (its call is dropped), and
    /// logs each: the server is stopping before they finished.
    pub async fn interrupt_running(&self, why: &str) {
        let stops: Vec<(String, oneshot::Sender<Stop>)> = lock(&self.running).drain().map(|(id, runner)| (id, runner.stop)).collect();
        for (id, stop) in stops {
            tracing::warn!(id, why, "request interrupted by the shutdown; it is not sent again");
            let error = ApiError::new(ErrorCode::Interrupted, "The server stopped while this request was running; it was not sent again.");
            let (ack, acked) = oneshot::channel();
            if stop.send((error, ack)).is_ok() {
                let _ = tokio::time::timeout(Duration::from_secs(5), acked).await;
            }
        }
    }

    /// Stops the upkeep loops (lease renewal, purging) and waits for them: the last step of a
    /// stop, once no request runs here any more.
    pub async fn stop_upkeep(&self) {
        self.stop.cancel();
        self.upkeep.close();
        self.upkeep.wait().await;
    }
}
