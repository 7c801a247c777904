//! The HTTP API (docs/protocol.md): thin handlers over the engine and the store.

mod admin;
mod body;
mod caller;
mod cancel;
mod csr;
mod failure;
mod poll;
mod record;
mod stream;

pub use admin::normalize_origin;
pub use caller::Caller;
pub use failure::Failure;

use crate::state::AppState;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use skapi_core::wire::ServiceCheck;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

pub fn router(state: AppState) -> Router {
    // Skapi's default: any origin may call. Requested headers are mirrored because a wildcard
    // does not cover `Authorization`.
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods(AllowMethods::list([
            axum::http::Method::GET,
            axum::http::Method::POST,
            axum::http::Method::PUT,
            axum::http::Method::PATCH,
            axum::http::Method::DELETE,
        ]))
        .allow_headers(AllowHeaders::mirror_request())
        .max_age(std::time::Duration::from_secs(600));
    let mut router = Router::new()
        .route("/service", get(service))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text).route_layer(axum::middleware::from_fn_with_state(state.clone(), admin::require_admin)))
        .route("/csr", post(csr::csr))
        .route("/csr-poll", post(poll::csr_poll))
        .route("/csr-cancel", post(cancel::csr_cancel))
        .route("/csr-finalize", post(stream::csr_finalize))
        .route("/csr-stream", post(stream::csr_stream))
        .nest("/admin", admin::router(state.clone()));
    if state.config.demo {
        router = router.nest("/demo-api", crate::demo::router());
    }
    if let Some(dir) = &state.config.pkg_dir {
        router = router.nest_service("/pkg", tower_http::services::ServeDir::new(dir));
    }
    if let Some(dir) = &state.config.www_dir {
        router = router.fallback_service(tower_http::services::ServeDir::new(dir));
    }
    router
        .layer(DefaultBodyLimit::max(state.config.max_request_bytes))
        .layer(cors)
        .layer(axum::middleware::map_response(strip_refused_cors))
        .layer(axum::middleware::from_fn(count_calls))
        // Every call gets an id (`X-Request-Id`, kept when the caller sent one), answered back
        // and carried by every log line the call causes — the engine's work for it included.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::http::Request<_>| {
                    let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                    // The path only: queries carry caller data. Both recorded as strings: text
                    // logs print them quoted (neither can pass for another field of the line),
                    // JSON logs as JSON strings.
                    tracing::info_span!("request", request_id = id, method = %request.method(), path = request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(drop_unsafe_request_id))
        .with_state(state)
}

/// Whether a caller's `X-Request-Id` is kept: 1 to 128 letters, digits and `-_.:` (a UUID, a
/// trace id). Anything else is replaced by an id of the server's.
fn safe_request_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

fn drop_unsafe_request_id(mut request: axum::extract::Request) -> axum::extract::Request {
    let ids = request.headers().get_all("x-request-id");
    if ids.iter().count() > 1 || ids.iter().any(|id| !safe_request_id(id.as_bytes())) {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// Counts every call to the SDK-facing endpoints by kind and outcome.
async fn count_calls(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let endpoint = match request.uri().path() {
        "/csr" => Some("csr"),
        "/csr-poll" => Some("poll"),
        "/csr-cancel" => Some("cancel"),
        "/service" => Some("service"),
        _ => None,
    };
    let response = next.run(request).await;
    if let Some(endpoint) = endpoint {
        let endpoint = response.extensions().get::<poll::CallKind>().map_or(endpoint, |k| k.0);
        let outcome = response.extensions().get::<skapi_core::ErrorCode>().map_or("OK", |c| c.as_str());
        crate::metrics::api_call(endpoint, outcome);
    }
    response
}

/// Liveness: the process answers.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers and the server is not draining (a load balancer stops sending
/// new calls during a deploy's drain).
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match serving(&state).await {
        Ok(()) => "ready".into_response(),
        Err(why) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
    }
}

/// Whether the server takes work now: not draining, and its store answers.
async fn serving(state: &AppState) -> Result<(), &'static str> {
    if state.engine.draining() {
        return Err("draining");
    }
    state.db.call(|s| s.counts()).await.map(|_| ()).map_err(|_| "the store does not answer")
}

/// The metrics in Prometheus' text format (the store's counts read now).
pub async fn metrics_text(axum::extract::State(state): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Ok(counts) = state.db.call(|s| s.counts()).await {
        crate::metrics::requests_now(counts.pending, counts.running, counts.queued);
    }
    ([("content-type", "text/plain; version=0.0.4")], crate::metrics::render()).into_response()
}

/// A page whose origin the service refuses gets no CORS grant: its browser then keeps the
/// answer from it.
async fn strip_refused_cors(mut response: axum::response::Response) -> axum::response::Response {
    if response.extensions().get::<failure::DenyCors>().is_some() {
        let headers = response.headers_mut();
        let names: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with("access-control-")).cloned().collect();
        for name in names {
            headers.remove(name);
        }
    }
    response
}

#[derive(Deserialize)]
struct ServiceQuery {
    service: Option<String>,
    owner: Option<String>,
}

/// The SDKs' connection check: any truthy object lets them go on.
async fn service(State(state): State<AppState>, Query(q): Query<ServiceQuery>) -> Result<Json<ServiceCheck>, Failure> {
    let service = q.service.filter(|s| !s.is_empty()).ok_or_else(|| Failure::invalid_parameter("\"service\" is required."))?;
    // Active only while the store answers (an SDK still boots: its calls then wait out 503s).
    let active = serving(&state).await.is_ok();
    Ok(Json(ServiceCheck { service, owner: q.owner.unwrap_or_default(), active }))
}
