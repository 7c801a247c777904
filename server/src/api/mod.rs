//! The HTTP API (docs/protocol.md): thin handlers over the engine and the store.

mod admin;
mod caller;
mod cancel;
mod csr;
mod failure;
mod poll;

pub use admin::normalize_origin;
pub use caller::Caller;
pub use failure::Failure;

use crate::AppState;
use axum::extract::{DefaultBodyLimit, Query};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use skapi_core::wire::ServiceCheck;
use tower_http::cors::{AllowHeaders, AllowMethods, AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

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
        .route("/csr", post(csr::csr))
        .route("/csr-poll", post(poll::csr_poll))
        .route("/csr-cancel", post(cancel::csr_cancel))
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
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
async fn service(Query(q): Query<ServiceQuery>) -> Result<Json<ServiceCheck>, Failure> {
    let service = q.service.filter(|s| !s.is_empty()).ok_or_else(|| Failure::invalid_parameter("\"service\" is required."))?;
    Ok(Json(ServiceCheck { service, owner: q.owner.unwrap_or_default(), active: true }))
}

/// Reads a JSON body, with a clear error when it is not JSON of the right shape.
fn parse_body<T: serde::de::DeserializeOwned>(body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>) -> Result<T, Failure> {
    serde_json::from_slice(&body?).map_err(|e| Failure::invalid_parameter(format!("The request body is not valid: {e}.")))
}
