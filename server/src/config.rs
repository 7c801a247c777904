//! Settings of a running server (from the `serve` command line).

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    /// Let secrets go to loopback, private, link-local and metadata addresses (tests, local dev).
    pub allow_private_upstreams: bool,
    /// How long a third party may take to answer.
    pub upstream_timeout: Duration,
    /// Requests without a queue running at once; the rest wait as `pending`.
    pub concurrency: usize,
    /// Of those, how many one caller and one key may hold (default: a quarter and a half).
    pub max_running_per_caller: Option<usize>,
    pub max_running_per_key: Option<usize>,
    /// Longest third-party body kept whole; a longer one is stored truncated.
    pub max_response_bytes: usize,
    /// Largest request body the API accepts.
    pub max_request_bytes: usize,
    /// Static pages (dashboard, demo) served at `/`, when set.
    pub www_dir: Option<PathBuf>,
    /// How long an expired record still answers `EXPIRED` before it is purged.
    pub expired_grace: Duration,
    /// How often expired records are purged.
    pub purge_interval: Duration,
    /// The SDK build (wasm-pack's `pkg/`) served at `/pkg/`, when set.
    pub pkg_dir: Option<PathBuf>,
    /// The admin API's bearer token; empty = the admin API refuses every call.
    pub admin_token: String,
    /// How user tokens are verified.
    pub auth: crate::auth::AuthConfig,
    /// Serve the demo's stand-in APIs at `/demo-api` and keep the `demo` service's keys.
    pub demo: bool,
    /// `postgres://…` to keep records and keys in PostgreSQL; default: SQLite in `data_dir`.
    pub database: Option<String>,
    /// How long a claim on a running request lasts unless its instance renews it.
    pub lease: Duration,
    /// Proxies whose `X-Forwarded-For` names the client's address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// On SIGTERM/SIGINT, how long running requests may take to finish before they are
    /// ended `INTERRUPTED` and the process exits.
    pub shutdown_grace: Duration,
    /// Serve `/metrics` without the admin token on this address too.
    pub metrics_listen: Option<String>,
    /// Header, body and write deadlines and the connection cap of the HTTP server (the cap,
    /// when `None`, follows the open-file limit).
    pub http: crate::http::Limits,
    pub max_connections: Option<usize>,
}

impl ServeConfig {
    pub fn new(listen: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            listen: listen.into(),
            data_dir: data_dir.into(),
            allow_private_upstreams: false,
            upstream_timeout: Duration::from_secs(120),
            concurrency: 64,
            max_running_per_caller: None,
            max_running_per_key: None,
            max_response_bytes: 8 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            www_dir: None,
            pkg_dir: None,
            admin_token: String::new(),
            auth: crate::auth::AuthConfig::default(),
            demo: false,
            database: None,
            lease: Duration::from_secs(10),
            trusted_proxies: Vec::new(),
            shutdown_grace: Duration::from_secs(30),
            metrics_listen: None,
            http: crate::http::Limits::default(),
            max_connections: None,
            expired_grace: Duration::from_secs(600),
            purge_interval: Duration::from_secs(60),
        }
    }
}
