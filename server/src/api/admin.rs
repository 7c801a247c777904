//! The admin HTTP API (the dashboard's, and any operator script's): keys and service CORS
//! rules, behind the admin token (`Authorization: Bearer <token>`, compared in constant time).

use super::body::Wire;
use super::Failure;
use crate::keyring::{KeyEdit, KeyInfo, NewKey};
use crate::state::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Deserialize;
use skapi_core::wire::ServiceOrigins;
use skapi_core::ErrorCode;
use subtle::ConstantTimeEq;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/keys", get(list_keys).post(add_key))
        .route("/keys/{service}/{name}", patch(edit_key).delete(remove_key))
        .route("/services/{service}", get(get_service).put(put_service))
        .route("/usage", get(usage))
        .layer(axum::middleware::from_fn_with_state(state, require_admin))
}

/// Lets a call through only with the admin token.
pub(super) async fn require_admin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let given = request.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    let expected = state.config.admin_token.as_bytes();
    if expected.is_empty() || !bool::from(given.as_bytes().ct_eq(expected)) {
        return Failure::new(ErrorCode::Unauthorized, "The admin token is missing or wrong.").into_response();
    }
    next.run(request).await
}

#[derive(Deserialize)]
struct ListQuery {
    service: Option<String>,
}

/// Each key's requests of the last hour by outcome and its last use, as this instance saw them.
async fn usage(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Json<Vec<crate::usage::KeyUsage>> {
    Json(state.engine.usage.report(q.service.as_deref(), crate::clock::now_ms()))
}

async fn list_keys(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<KeyInfo>>, Failure> {
    Ok(Json(state.keyring.list(q.service.as_deref()).await?))
}

async fn add_key(State(state): State<AppState>, Wire(key): Wire<NewKey>) -> Result<(StatusCode, Json<KeyInfo>), Failure> {
    Ok((StatusCode::CREATED, Json(state.keyring.add(key, false).await?)))
}

async fn edit_key(
    State(state): State<AppState>,
    Path((service, name)): Path<(String, String)>,
    Wire(edit): Wire<KeyEdit>,
) -> Result<Json<KeyInfo>, Failure> {
    Ok(Json(state.keyring.edit(&service, &name, edit).await?))
}

async fn remove_key(State(state): State<AppState>, Path((service, name)): Path<(String, String)>) -> Result<StatusCode, Failure> {
    if state.keyring.remove(&service, &name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Failure::new(ErrorCode::NotExists, format!("No key \"{name}\" in service \"{service}\".")))
    }
}

async fn get_service(State(state): State<AppState>, Path(service): Path<String>) -> Result<Json<ServiceOrigins>, Failure> {
    let cors_origins = state.db.call(|store| store.service_origins(&service)).await?;
    Ok(Json(ServiceOrigins { service, cors_origins }))
}

async fn put_service(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Wire(rules): Wire<ServiceOrigins>,
) -> Result<Json<ServiceOrigins>, Failure> {
    let origins = rules.cors_origins.map(|list| list.iter().map(|o| normalize_origin(o)).collect::<Result<Vec<_>, _>>()).transpose()?;
    state.db.call(|store| store.set_service_origins(&service, origins.as_deref(), crate::clock::now_ms())).await?;
    Ok(Json(ServiceOrigins { service, cors_origins: origins }))
}

/// `scheme://host[:port]`, lower-cased; `*` stays `*`.
pub fn normalize_origin(origin: &str) -> Result<String, Failure> {
    if origin == "*" {
        return Ok(origin.to_owned());
    }
    let url = url::Url::parse(origin).map_err(|_| Failure::invalid_parameter(format!("\"{origin}\" is not an origin.")))?;
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(Failure::invalid_parameter(format!("\"{}\" is not an origin.", url)));
    }
    Ok(origin.ascii_serialization())
}
