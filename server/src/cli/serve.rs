//! `skapi-server serve`: the flags, and the server's settings made from them.

use super::DataDir;
use clap::Args;
use skapi_server::ServeConfig;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    listen: String,
    #[command(flatten)]
    data: DataDir,
    /// Let secrets go to loopback and private addresses (tests and local development only).
    #[arg(long)]
    allow_private_upstreams: bool,
    /// Milliseconds a third party may take to answer.
    #[arg(long, default_value_t = 120_000, env = "SKAPI_UPSTREAM_TIMEOUT_MS")]
    upstream_timeout_ms: u64,
    /// Requests without a queue that may run at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Of those, how many one caller may run at once (default: a quarter of --concurrency). A
    /// caller is the signed-in user, else its public identifier and, apart, its address.
    #[arg(long)]
    max_running_per_caller: Option<usize>,
    /// Of those, how many one key may run at once (default: half of --concurrency).
    #[arg(long)]
    max_running_per_key: Option<usize>,
    /// Longest third-party answer kept whole, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    max_response_bytes: usize,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_request_bytes: usize,
    /// Directory of static pages served at `/` (dashboard, demo).
    #[arg(long)]
    www: Option<PathBuf>,
    /// Milliseconds an expired record still answers EXPIRED before it is purged.
    #[arg(long, default_value_t = 600_000)]
    expired_grace_ms: u64,
    /// Milliseconds between purges of expired records.
    #[arg(long, default_value_t = 60_000)]
    purge_interval_ms: u64,
    /// Directory of the SDK build (wasm-pack's `pkg/`) served at `/pkg/`.
    #[arg(long)]
    pkg: Option<PathBuf>,
    /// File holding the admin token (created with a random one when missing; default
    /// `<data-dir>/admin.token`). The SKAPI_ADMIN_TOKEN variable overrides it.
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// File holding the HS256 secret user tokens are signed with (32 bytes or more).
    #[arg(long)]
    jwt_secret_file: Option<PathBuf>,
    /// JWKS (RS256/ES256 public keys) user tokens are signed with, from a file...
    #[arg(long, conflicts_with = "jwt_secret_file")]
    jwks_file: Option<PathBuf>,
    /// ...or from a URL.
    #[arg(long, conflicts_with_all = ["jwt_secret_file", "jwks_file"])]
    jwks_url: Option<String>,
    /// Required `iss` of user tokens.
    #[arg(long)]
    jwt_issuer: Option<String>,
    /// Required `aud` of user tokens.
    #[arg(long)]
    jwt_audience: Option<String>,
    /// Milliseconds a claim on a running request lasts unless renewed (several instances on one
    /// database: an instance that dies leaves its running requests INTERRUPTED after this).
    #[arg(long, default_value_t = 10_000, env = "SKAPI_LEASE_MS")]
    lease_ms: u64,
    /// Also serve GET /metrics, without the admin token, on this address (e.g. 127.0.0.1:9187
    /// for a Prometheus on the same host).
    #[arg(long, env = "SKAPI_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// Log lines as text (default) or as JSON objects, one a line, for log shippers.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "SKAPI_LOG_FORMAT")]
    log_format: LogFormat,
    /// On SIGTERM or SIGINT, milliseconds running requests may take to finish (new work is
    /// refused meanwhile) before they end INTERRUPTED and the process exits.
    #[arg(long, default_value_t = 30_000, env = "SKAPI_SHUTDOWN_GRACE_MS")]
    shutdown_grace_ms: u64,
    /// Milliseconds a request's headers may take to arrive whole (also how long a kept-alive
    /// connection may sit idle).
    #[arg(long, default_value_t = 15_000, env = "SKAPI_HEADER_TIMEOUT_MS")]
    header_timeout_ms: u64,
    /// Milliseconds a request's body may take to arrive whole.
    #[arg(long, default_value_t = 30_000, env = "SKAPI_BODY_TIMEOUT_MS")]
    body_timeout_ms: u64,
    /// Milliseconds a write may wait for a peer that takes nothing before its connection ends.
    #[arg(long, default_value_t = 60_000, env = "SKAPI_WRITE_TIMEOUT_MS")]
    write_timeout_ms: u64,
    /// Connections open at once (the rest wait to be accepted); default: half the open-file
    /// limit, which the server raises to the system's hard limit at start.
    #[arg(long, env = "SKAPI_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// A proxy in front of this server (CIDR, repeatable): for calls from it, the client's
    /// address is taken from X-Forwarded-For (the nearest address not itself trusted).
    #[arg(long = "trusted-proxy", value_parser = parse_cidr)]
    trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve the demo: offline stand-ins for an image API and a GET-style API at /demo-api,
    /// and the `demo` service's keys `openai` and `maps` (random secrets) pointing at them.
    #[arg(long)]
    demo: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_cidr(s: &str) -> Result<ipnet::IpNet, String> {
    s.parse::<ipnet::IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("\"{s}\" is not an address or CIDR range (e.g. 10.0.0.0/8)"))
}

fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec())
}

fn serve_config(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    skapi_server::secrets::create_data_dir(&args.data.data_dir)?;
    let token_file = args.admin_token_file.unwrap_or_else(|| args.data.data_dir.join("admin.token"));
    let admin_token = match std::env::var("SKAPI_ADMIN_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        _ => skapi_server::secrets::load_or_create_token(&token_file).map_err(|e| anyhow::anyhow!("{}: {e}", token_file.display()))?,
    };
    eprintln!("skapi-server: admin token in {}", token_file.display());
    let auth = skapi_server::auth::AuthConfig {
        hs256_secret: args.jwt_secret_file.as_deref().map(read_file).transpose()?,
        jwks_file: args.jwks_file,
        jwks_url: args.jwks_url,
        issuer: args.jwt_issuer,
        audience: args.jwt_audience,
    };
    Ok(ServeConfig {
        allow_private_upstreams: args.allow_private_upstreams,
        upstream_timeout: Duration::from_millis(args.upstream_timeout_ms),
        concurrency: args.concurrency,
        max_running_per_caller: args.max_running_per_caller,
        max_running_per_key: args.max_running_per_key,
        max_response_bytes: args.max_response_bytes,
        max_request_bytes: args.max_request_bytes,
        www_dir: args.www,
        pkg_dir: args.pkg,
        expired_grace: Duration::from_millis(args.expired_grace_ms),
        purge_interval: Duration::from_millis(args.purge_interval_ms.max(10)),
        admin_token,
        auth,
        demo: args.demo,
        database: args.data.database.clone(),
        lease: Duration::from_millis(args.lease_ms.max(300)),
        trusted_proxies: args.trusted_proxies,
        shutdown_grace: Duration::from_millis(args.shutdown_grace_ms),
        metrics_listen: args.metrics_listen,
        http: skapi_server::http::Limits {
            header_timeout: Duration::from_millis(args.header_timeout_ms.max(100)),
            body_timeout: Duration::from_millis(args.body_timeout_ms.max(100)),
            write_timeout: Duration::from_millis(args.write_timeout_ms.max(100)),
            ..Default::default()
        },
        max_connections: args.max_connections,
        ..ServeConfig::new(args.listen, args.data.data_dir)
    })
}

/// Sets up logging, then runs the server until it is stopped.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "skapi_server=info,tower_http=warn".into());
    let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
    match args.log_format {
        // One JSON object a line, with the request's span (and so its id) in every line.
        LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let config = serve_config(args)?;
    tokio::runtime::Runtime::new()?.block_on(skapi_server::serve(config))
}
