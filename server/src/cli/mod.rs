//! The `skapi-server` command line, a module per command: `serve` runs the API, `keys` manages
//! client secrets in a data directory (a running server on the same directory sees the change at
//! once), `services` sets per-service rules.

mod keys;
mod serve;
mod services;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "skapi-server", version, about = "Self-hosted backend for Skapi client-secret requests")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API.
    Serve(Box<serve::ServeArgs>),
    /// Manage client-secret keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage per-service rules.
    #[command(subcommand)]
    Services(services::ServicesCommand),
}

#[derive(Args)]
pub struct DataDir {
    /// Directory holding the master key (and the SQLite database, unless --database is given).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Keep records and keys in PostgreSQL (postgres://…) instead of SQLite. Every instance on
    /// one database needs the same master key file.
    #[arg(long, env = "SKAPI_DATABASE")]
    pub database: Option<String>,
}

/// Runs one CLI command on a small runtime of its own (the store is async).
fn once(command: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(command)
}

/// Runs the command the arguments name; what failed is printed.
pub fn run() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Serve(args) => serve::run(*args),
        Command::Keys(command) => once(keys::run(command)),
        Command::Services(command) => once(services::run(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skapi-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}
