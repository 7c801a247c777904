//! `skapi-server keys`: add, edit, list and remove client-secret keys in a data directory.

use super::DataDir;
use clap::{Args, Subcommand};
use skapi_core::positions::Position;
use skapi_server::destination::Destinations;
use skapi_server::keyring::{KeyEdit, Keyring, KeyringError, NewKey};
use skapi_server::store::StoreError;
use skapi_server::{secrets::MasterKey, store};
use std::io::Read;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum KeysCommand {
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
    /// Change a key; what is not given stays as it is, and 0 removes a daily quota or budget.
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
        /// Replace the request rules with this JSON Schema file.
        #[arg(long, value_name = "FILE", conflicts_with = "no_request_schema")]
        request_schema: Option<std::path::PathBuf>,
        /// Remove the request rules.
        #[arg(long)]
        no_request_schema: bool,
        #[command(flatten)]
        daily: DailyLimits,
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

/// Where the placeholder may stand and how often a key may be used.
#[derive(Args)]
pub struct KeyRules {
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
    /// A JSON Schema (draft 2020-12) file each request must satisfy: `{method, url, headers,
    /// data, params}` as the caller sent them.
    #[arg(long, value_name = "FILE")]
    request_schema: Option<std::path::PathBuf>,
    #[command(flatten)]
    daily: DailyLimits,
}

/// How much a key may be used in a UTC day (`keys add`, and `keys edit`, where 0 removes one).
#[derive(Args)]
pub struct DailyLimits {
    /// Requests a UTC day one caller may make with the key.
    #[arg(long)]
    daily_per_caller: Option<u32>,
    /// Requests a UTC day all callers together may make with the key.
    #[arg(long)]
    daily_total: Option<u32>,
    /// Tokens (from each answer's usage: OpenAI's `total_tokens`, Anthropic's input plus
    /// output) a UTC day one caller may use with the key; the call that crosses it completes.
    #[arg(long)]
    daily_tokens_per_caller: Option<u64>,
    /// Tokens a UTC day all callers together may use with the key.
    #[arg(long)]
    daily_tokens_total: Option<u64>,
}

/// A request schema file's JSON (checked as JSON Schema when the key is saved).
fn read_schema(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not JSON: {e}", path.display()))
}

fn parse_position(s: &str) -> Result<Position, String> {
    Position::parse(s).ok_or_else(|| format!("\"{s}\" is not one of url, headers, data, params"))
}

/// Which key: its service and name.
#[derive(Args)]
pub struct KeyId {
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

pub async fn run(command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Add { data, key: KeyId { service, name }, locked, destinations, any_destination, rules, replace } => {
            let keyring = open_keyring(&data).await?;
            let secret = read_secret()?;
            let request_schema = rules.request_schema.as_deref().map(read_schema).transpose()?;
            let destinations = if any_destination { Destinations::Any } else { Destinations::Only(destinations) };
            let key = NewKey {
                service,
                name,
                secret,
                locked,
                destinations,
                request_schema,
                positions: rules.positions,
                rate_per_caller: rules.rate_per_caller,
                rate_total: rules.rate_total,
                daily_per_caller: rules.daily.daily_per_caller,
                daily_total: rules.daily.daily_total,
                daily_tokens_per_caller: rules.daily.daily_tokens_per_caller,
                daily_tokens_total: rules.daily.daily_tokens_total,
            };
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
                println!("SERVICE\tNAME\tLOCKED\tENDS WITH\tDESTINATIONS\tPLACEHOLDER IN\tLIMITS (per min)\tPER DAY");
                for k in keys {
                    let dests = k.destinations.describe();
                    let positions = if k.positions.is_empty() {
                        "(any)".to_owned()
                    } else {
                        k.positions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
                    };
                    let limit = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                    let budget = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\tcaller {} / total {}\trequests caller {} / total {}, tokens caller {} / total {}",
                        k.service,
                        k.name,
                        if k.locked { "yes" } else { "no" },
                        if k.hint.is_empty() { "-".to_owned() } else { format!("…{}", k.hint) },
                        dests,
                        positions,
                        limit(k.rate_per_caller),
                        limit(k.rate_total),
                        limit(k.daily_per_caller),
                        limit(k.daily_total),
                        budget(k.daily_tokens_per_caller),
                        budget(k.daily_tokens_total)
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
            request_schema,
            no_request_schema,
            daily,
        } => {
            let keyring = open_keyring(&data).await?;
            let request_schema = match (request_schema, no_request_schema) {
                (Some(path), _) => Some(Some(read_schema(&path)?)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let limit = |n: Option<u32>| n.map(|n| (n > 0).then_some(n));
            let budget = |n: Option<u64>| n.map(|n| (n > 0).then_some(n));
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
                request_schema,
                daily_per_caller: limit(daily.daily_per_caller),
                daily_total: limit(daily.daily_total),
                daily_tokens_per_caller: budget(daily.daily_tokens_per_caller),
                daily_tokens_total: budget(daily.daily_tokens_total),
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
