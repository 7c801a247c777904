//! `skapi-server services`: per-service rules — the origins whose pages may call a service, and
//! where it forwards requests that name no secret.

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
    /// Set where a service forwards requests that name no secret (default: nowhere). The same
    /// rules as a key's destinations: a URL prefix, its host's first label may be `*`.
    Forward {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        service: String,
        /// A URL prefix such requests may go to, e.g. https://api.example.com/v1 (repeatable).
        #[arg(long = "destination", required_unless_present = "none")]
        destinations: Vec<String>,
        /// Forward no request without a secret again.
        #[arg(long, conflicts_with = "destinations")]
        none: bool,
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
        ServicesCommand::Forward { data, service, destinations, none } => {
            skapi_server::secrets::create_data_dir(&data.data_dir)?;
            let store = store::open(data.database.as_deref(), &data.data_dir).await?;
            let destinations =
                if none { None } else { Some(skapi_server::destination::normalize_forwarding(&destinations).map_err(anyhow::Error::msg)?) };
            store.set_forward_destinations(&service, destinations.as_deref(), skapi_server::clock::now_ms()).await?;
            match destinations {
                Some(d) => eprintln!("service \"{service}\" forwards requests without a secret to: {}", d.join(" ")),
                None => eprintln!("service \"{service}\" forwards no request without a secret"),
            }
        }
    }
    Ok(())
}
