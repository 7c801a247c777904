//! `skapi-server services`: per-service rules (the origins whose pages may call a service).

use super::DataDir;
use clap::Subcommand;
use skapi_server::store;

#[derive(Subcommand)]
pub enum ServicesCommand {
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

pub async fn run(command: ServicesCommand) -> anyhow::Result<()> {
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
