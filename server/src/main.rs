//! The `skapi-server` command: `serve` runs the API; `keys` manages client secrets in a data
//! directory (a running server on the same directory sees the change at once).

use clap::{Args, Parser, Subcommand};
use skapi_core::positions::Position;
use skapi_server::destination::Destinations;
use skapi_server::keyring::{KeyEdit, Keyring, KeyringError, NewKey};
use skapi_server::store::StoreError;
use skapi_server::{secrets::MasterKey, store, ServeConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc rather than glibc's malloc: a request's memory is made on one thread and freed on
/// another (runtime workers, the SQLite writer), and glibc then takes the arena's lock; under
/// load the waits on it were a tenth of the process's time (BENCHMARKS.md, "Server").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "skapi-server", version, about = "Self-hosted backend for Skapi client-secret requests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(Box<ServeArgs>),
    /// Manage client-secret keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage per-service rules.
    #[command(subcommand)]
    Services(ServicesCommand),
}

#[derive(Subcommand)]
enum ServicesCommand {
    /// Set the origins whose pages may call a service (default: any origin).
    Cors {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        service: String,
        /// An allowed origin, e.g. https://app.example.com (repeatable).
        #[arg(long = "origin", required_unless_present = "any_origin")]
        origins: Vec<String>,
        /// Allow any origin again.
        #[arg(long, conflicts_with = "origins")]
        any_origin: bool,
    },
}

#[derive(Args)]
struct DataDir {
    /// Directory holding the master key (and the SQLite database, unless --database is given).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// Keep records and keys in PostgreSQL (postgres://…) instead of SQLite. Every instance on
    /// one database needs the same master key file.
    #[arg(long, env = "SKAPI_DATABASE")]
    database: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
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

/// Where the placeholder may stand and how often a key may be used.
#[derive(Args)]
struct KeyRules {
    /// Where the placeholder may stand: url, headers, data, params (repeatable or
    /// comma-separated; none = anywhere).
    #[arg(long = "allow", value_delimiter = ',', value_parser = parse_position)]
    positions: Vec<Position>,
    /// Requests per minute one caller may make with the key.
    #[arg(long)]
    rate_per_caller: Option<u32>,
    /// Requests per minute all callers together may make with the key.
    #[arg(long)]
    rate_total: Option<u32>,
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

fn parse_position(s: &str) -> Result<Position, String> {
    Position::parse(s).ok_or_else(|| format!("\"{s}\" is not one of url, headers, data, params"))
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Save a key; its value is read from standard input.
    Add {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        key: KeyId,
        /// Only logged-in users may use the key.
        #[arg(long)]
        locked: bool,
        /// URL prefix the secret may be sent to (repeatable; `https://*.example.com/…` for any
        /// subdomain). Required, unless --any-destination.
        #[arg(long = "destination", required_unless_present = "any_destination")]
        destinations: Vec<String>,
        /// Let the secret go to any URL (not recommended: anyone who can call the service can
        /// then send the key to a server of their own).
        #[arg(long, conflicts_with = "destinations")]
        any_destination: bool,
        #[command(flatten)]
        rules: KeyRules,
        /// Overwrite a key of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Change a key; what is not given stays as it is.
    Edit {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        key: KeyId,
        /// Read a new value from standard input.
        #[arg(long)]
        value_from_stdin: bool,
        /// Lock (true) or unlock (false) the key.
        #[arg(long)]
        locked: Option<bool>,
        /// Replace the destinations with these (repeatable).
        #[arg(long = "destination", conflicts_with = "any_destination")]
        destinations: Vec<String>,
        /// Let the secret go to any URL (not recommended).
        #[arg(long)]
        any_destination: bool,
        /// Replace the allowed placeholder positions (repeatable or comma-separated).
        #[arg(long = "allow", value_delimiter = ',', value_parser = parse_position, conflicts_with = "allow_anywhere")]
        positions: Vec<Position>,
        /// Allow the placeholder anywhere.
        #[arg(long)]
        allow_anywhere: bool,
        /// Requests per minute one caller may make (0 = no limit).
        #[arg(long)]
        rate_per_caller: Option<u32>,
        /// Requests per minute all callers together may make (0 = no limit).
        #[arg(long)]
        rate_total: Option<u32>,
    },
    /// List keys (never their values).
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        service: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key.
    Remove {
        #[command(flatten)]
        data: DataDir,
        #[command(flatten)]
        key: KeyId,
    },
}

/// Which key: its service and name.
#[derive(Args)]
struct KeyId {
    #[arg(long)]
    service: String,
    #[arg(long)]
    name: String,
}

async fn open_keyring(data: &DataDir) -> anyhow::Result<Keyring> {
    skapi_server::secrets::create_data_dir(&data.data_dir)?;
    let store = store::open(data.database.as_deref(), &data.data_dir).await?;
    let master = MasterKey::load_or_create(&data.data_dir)?;
    Ok(Keyring::new(store::Db::new(store), Arc::new(master)))
}

/// The secret from standard input, without the line break a shell or `echo` adds.
fn read_secret() -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin().read_to_string(&mut secret)?;
    let trimmed = secret.strip_suffix('\n').unwrap_or(&secret);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

async fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add { data, key: KeyId { service, name }, locked, destinations, any_destination, rules, replace } => {
            let keyring = open_keyring(&data).await?;
            let secret = read_secret()?;
            let KeyRules { positions, rate_per_caller, rate_total } = rules;
            let destinations = if any_destination { Destinations::Any } else { Destinations::Only(destinations) };
            let key = NewKey { service, name, secret, locked, destinations, positions, rate_per_caller, rate_total };
            let info = keyring.add(key, replace).await.map_err(|e| match e {
                KeyringError::Store(StoreError::Exists(what)) => anyhow::anyhow!("{what} already exists (use --replace to overwrite it)"),
                other => other.into(),
            })?;
            eprintln!("saved key \"{}\" of service \"{}\"{}", info.name, info.service, if info.locked { " (locked)" } else { "" });
            if info.destinations.is_any() {
                eprintln!("warning: the key may be sent to any destination: anyone who can call the service can send it to a server of their own");
            }
        }
        KeysCommand::List { data, service, json } => {
            let keys = open_keyring(&data).await?.list(service.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!("SERVICE\tNAME\tLOCKED\tENDS WITH\tDESTINATIONS\tPLACEHOLDER IN\tLIMITS (per min)");
                for k in keys {
                    let dests = k.destinations.describe();
                    let positions = if k.positions.is_empty() {
                        "(any)".to_owned()
                    } else {
                        k.positions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
                    };
                    let limit = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\tcaller {} / total {}",
                        k.service,
                        k.name,
                        if k.locked { "yes" } else { "no" },
                        if k.hint.is_empty() { "-".to_owned() } else { format!("…{}", k.hint) },
                        dests,
                        positions,
                        limit(k.rate_per_caller),
                        limit(k.rate_total)
                    );
                }
            }
        }
        KeysCommand::Edit {
            data,
            key: KeyId { service, name },
            value_from_stdin,
            locked,
            destinations,
            any_destination,
            positions,
            allow_anywhere,
            rate_per_caller,
            rate_total,
        } => {
            let keyring = open_keyring(&data).await?;
            let limit = |n: Option<u32>| n.map(|n| (n > 0).then_some(n));
            let edit = KeyEdit {
                secret: if value_from_stdin { Some(read_secret()?) } else { None },
                locked,
                destinations: if any_destination {
                    Some(Destinations::Any)
                } else {
                    (!destinations.is_empty()).then_some(Destinations::Only(destinations))
                },
                positions: if allow_anywhere { Some(Vec::new()) } else { (!positions.is_empty()).then_some(positions) },
                rate_per_caller: limit(rate_per_caller),
                rate_total: limit(rate_total),
            };
            let info = keyring.edit(&service, &name, edit).await?;
            eprintln!("updated key \"{}\" of service \"{}\"", info.name, info.service);
        }
        KeysCommand::Remove { data, key: KeyId { service, name } } => {
            if !open_keyring(&data).await?.remove(&service, &name).await? {
                anyhow::bail!("no key \"{name}\" in service \"{service}\"");
            }
            eprintln!("removed key \"{name}\" of service \"{service}\"");
        }
    }
    Ok(())
}

/// Runs one CLI command on a small runtime of its own (the store is async).
fn once(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(command)
}

async fn services(command: ServicesCommand) -> anyhow::Result<()> {
    match command {
        ServicesCommand::Cors { data, service, origins, any_origin } => {
            skapi_server::secrets::create_data_dir(&data.data_dir)?;
            let store = store::open(data.database.as_deref(), &data.data_dir).await?;
            let origins = if any_origin {
                None
            } else {
                Some(
                    origins
                        .iter()
                        .map(|o| skapi_server::api::normalize_origin(o).map_err(|f| anyhow::anyhow!(f.0.message)))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                )
            };
            store.set_service_origins(&service, origins.as_deref(), skapi_server::clock::now_ms()).await?;
            match origins {
                Some(o) => eprintln!("service \"{service}\" may be called from: {}", o.join(" ")),
                None => eprintln!("service \"{service}\" may be called from any origin"),
            }
        }
    }
    Ok(())
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            use std::io::IsTerminal;
            let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "skapi_server=info,tower_http=warn".into());
            let logs = tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter);
            match args.log_format {
                // One JSON object a line, with the request's span (and so its id) in every line.
                LogFormat::Json => logs.json().with_current_span(true).with_span_list(false).init(),
                LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
            }
            let config = match serve_config(*args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("skapi-server: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(skapi_server::serve(config)))
        }
        Command::Keys(command) => once(keys(command)),
        Command::Services(command) => once(services(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skapi-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
