//! skapi-server: keeps client secrets, runs client-secret requests, records their results.
//!
//! Layout: `api/` (HTTP handlers, thin) over `state` (what they share) → `engine` (scheduling)
//! → `upstream` (the third-party call) and `store/` (records and keys, behind the
//! [`store::Store`] trait). `secrets` holds the master key; `keyring` is what the CLI and the
//! admin API use to manage keys. This file runs it all: listening, serving, stopping.

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod destination;
pub mod domain;
pub mod engine;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod multipart;
pub mod netguard;
pub mod quota;
pub mod ratelimit;
pub mod recent;
pub mod rules;
pub mod secrets;
pub mod shares;
pub mod state;
pub mod store;
pub mod upstream;
pub mod usage;

pub use config::ServeConfig;
pub use state::AppState;

/// Runs the HTTP API until the process is stopped.
/// Listens on `addr` with `TCP_NODELAY`, which the connections it accepts inherit: small
/// writes go out at once, so a pushed stream's events are not held back by Nagle's algorithm
/// waiting on a delayed ACK (≈ 40 ms).
pub async fn listen(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(addr).await?.next().ok_or_else(|| std::io::Error::other(format!("{addr} names no address")))?;
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

pub async fn serve(mut config: ServeConfig) -> anyhow::Result<()> {
    let open_files = http::raise_open_files();
    config.http.max_connections = config.max_connections.unwrap_or_else(|| http::connections_for(open_files));
    tracing::info!(open_files, max_connections = config.http.max_connections, "connection limits");
    let address = config.listen.clone();
    let state = AppState::open(config).await?;
    let listener = listen(&address).await?;
    let addr = listener.local_addr()?;
    if state.config.demo {
        // The demo's stand-ins live on this very server, on loopback.
        let own = std::net::SocketAddr::new(if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() }, addr.port());
        state.engine.allow_upstream(own);
        demo::ensure_keys(&state, &format!("http://{own}")).await?;
    }
    if let Some(metrics_listen) = &state.config.metrics_listen {
        // The metrics without the admin token, on an address of the operator's choosing.
        let listener = tokio::net::TcpListener::bind(metrics_listen).await?;
        tracing::info!(address = %listener.local_addr()?, "metrics served at /metrics");
        let app = axum::Router::new().route("/metrics", axum::routing::get(api::metrics_text)).with_state(state.clone());
        tokio::spawn(http::serve(listener, app, state.config.http.clone(), std::future::pending()));
    }
    println!("skapi-server listening on http://{addr}/");
    let (engine, grace, limits) = (state.engine.clone(), state.config.shutdown_grace, state.config.http.clone());
    http::serve(listener, api::router(state), limits, drain(engine, grace)).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves when SIGTERM or SIGINT arrives (what systemd, Docker and Kubernetes send).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                return;
            }
            _ => tracing::warn!("signal handlers could not be installed; only Ctrl-C stops the server"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// The deploy path: on the first signal, take no new work (`csr` answers `SHUTTING_DOWN`, polls
/// go on) and let running requests finish for up to `grace`; then, or at a second signal, end
/// what still runs `INTERRUPTED`. Pending requests stay pending for the next start (or, on a
/// shared database, for the other instances); last, the upkeep loops stop. Resolves when the
/// HTTP server may close.
async fn drain(engine: std::sync::Arc<engine::Engine>, grace: std::time::Duration) {
    stop_signal().await;
    engine.drain();
    tracing::info!(grace_ms = grace.as_millis() as u64, "stopping: no new work; running requests may finish");
    tokio::select! {
        _ = engine.drained() => tracing::info!("every running request finished"),
        _ = tokio::time::sleep(grace) => engine.interrupt_running("the shutdown grace ended").await,
        _ = stop_signal() => engine.interrupt_running("a second stop signal").await,
    }
    engine.stop_upkeep().await;
}
