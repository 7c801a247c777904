//! The `skapi-server` command: `serve` runs the API; `keys` manages client secrets in a data
//! directory (a running server on the same directory sees the change at once).

use clap::{Args, Parser, Subcommand};
use skapi_server::keyring::{Keyring, NewKey};
use skapi_server::{secrets::MasterKey, store, ServeConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "skapi-server", version, about = "Self-hosted backend for Skapi client-secret requests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Manage client-secret keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Args)]
struct DataDir {
    /// Directory holding the database and the master key.
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
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
    #[arg(long, default_value_t = 120_000)]
    upstream_timeout_ms: u64,
    /// Requests without a queue that may run at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
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
        /// URL prefix the secret may be sent to (repeatable; none = anywhere).
        #[arg(long = "destination")]
        destinations: Vec<String>,
        /// Overwrite a key of the same name.
        #[arg(long)]
        replace: bool,
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

fn open_keyring(data: &DataDir) -> anyhow::Result<Keyring> {
    std::fs::create_dir_all(&data.data_dir)?;
    let sqlite = store::sqlite::SqliteStore::open(&data.data_dir.join(store::sqlite::DB_FILE))?;
    let master = MasterKey::load_or_create(&data.data_dir)?;
    Ok(Keyring::new(store::Db::new(Arc::new(sqlite)), Arc::new(master)))
}

/// The secret from standard input, without the line break a shell or `echo` adds.
fn read_secret() -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin().read_to_string(&mut secret)?;
    let trimmed = secret.strip_suffix('\n').unwrap_or(&secret);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

fn keys(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add { data, key: KeyId { service, name }, locked, destinations, replace } => {
            let keyring = open_keyring(&data)?;
            let secret = read_secret()?;
            let info = keyring.add(NewKey { service, name, secret, locked, destinations }, replace)?;
            eprintln!("saved key \"{}\" of service \"{}\"{}", info.name, info.service, if info.locked { " (locked)" } else { "" });
        }
        KeysCommand::List { data, service, json } => {
            let keys = open_keyring(&data)?.list(service.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!("SERVICE\tNAME\tLOCKED\tDESTINATIONS");
                for k in keys {
                    let dests = if k.destinations.is_empty() { "(any)".to_owned() } else { k.destinations.join(" ") };
                    println!("{}\t{}\t{}\t{}", k.service, k.name, if k.locked { "yes" } else { "no" }, dests);
                }
            }
        }
        KeysCommand::Remove { data, key: KeyId { service, name } } => {
            if !open_keyring(&data)?.remove(&service, &name)? {
                anyhow::bail!("no key \"{name}\" in service \"{service}\"");
            }
            eprintln!("removed key \"{name}\" of service \"{service}\"");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => {
            use std::io::IsTerminal;
            tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "skapi_server=info,tower_http=warn".into()),
                )
                .init();
            let config = ServeConfig {
                allow_private_upstreams: args.allow_private_upstreams,
                upstream_timeout: Duration::from_millis(args.upstream_timeout_ms),
                concurrency: args.concurrency,
                max_response_bytes: args.max_response_bytes,
                max_request_bytes: args.max_request_bytes,
                www_dir: args.www,
                pkg_dir: args.pkg,
                expired_grace: Duration::from_millis(args.expired_grace_ms),
                purge_interval: Duration::from_millis(args.purge_interval_ms.max(10)),
                ..ServeConfig::new(args.listen, args.data.data_dir)
            };
            tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(skapi_server::serve(config)))
        }
        Command::Keys(command) => keys(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skapi-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
