//! What every handler shares, opened from the configuration.

use crate::{auth, engine, keyring, metrics, ratelimit, secrets, shares, store, upstream, ServeConfig};
use std::sync::Arc;

/// Everything a handler needs, passed explicitly as axum state.
#[derive(Clone)]
pub struct AppState {
    pub db: store::Db,
    pub keyring: Arc<keyring::Keyring>,
    pub engine: Arc<engine::Engine>,
    pub auth: Arc<auth::Verifier>,
    pub limiter: Arc<ratelimit::RateLimiter>,
    pub config: Arc<ServeConfig>,
}

impl AppState {
    /// Opens the data directory (creating the database and master key on first run), marks
    /// requests interrupted by a previous crash, and resumes pending ones.
    pub async fn open(config: ServeConfig) -> anyhow::Result<AppState> {
        secrets::create_data_dir(&config.data_dir)?;
        metrics::install();
        let (database, data_dir) = (config.database.clone(), config.data_dir.clone());
        let store = store::open(database.as_deref(), &data_dir).await?;
        let db = store::Db::new(store);
        let secrets = Arc::new(secrets::MasterKey::load_or_create(&config.data_dir)?);
        let keyring = Arc::new(keyring::Keyring::new(db.clone(), secrets));
        let upstream = upstream::Upstream::new(&config)?;
        let shares = shares::Shares::for_concurrency(config.concurrency, config.max_running_per_caller, config.max_running_per_key);
        let engine = engine::Engine::new(db.clone(), keyring.clone(), upstream, config.concurrency, shares, config.lease);
        let auth = Arc::new(auth::Verifier::load(&config.auth).await?);
        engine.recover().await?;
        engine.spawn_purger(config.purge_interval, config.expired_grace);
        engine.spawn_maintenance();
        Ok(AppState { db, keyring, engine, auth, limiter: Arc::default(), config: Arc::new(config) })
    }
}
