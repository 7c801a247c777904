//! The admin HTTP API (the dashboard's, and any operator script's): keys, and a service's rules
//! (its CORS origins, where it forwards requests that name no secret), behind the admin token
//! (`Authorization: Bearer <token>`, compared in constant time).

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
use serde::{Deserialize, Serialize};
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

/// Each key's requests of the last hour by outcome and its last use, as this instance saw them;
/// and, for a key with daily limits, today's requests and tokens as the store counted them.
async fn usage(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Vec<crate::usage::KeyUsage>>, Failure> {
    let now = crate::clock::now_ms();
    let keys = state.keyring.list(q.service.as_deref()).await?;
    let known: Vec<(String, String)> = keys.iter().map(|k| (k.service.clone(), k.name.clone())).collect();
    let mut report = state.engine.usage.report(q.service.as_deref(), &known, now);
    let counted: Vec<&KeyInfo> = keys.iter().filter(|k| k.counts_days()).collect();
    let counters: Vec<String> = counted.iter().map(|k| crate::quota::total_counter(&k.service, &k.name)).collect();
    let today = state.db.call(|s| s.day_counts(&counters, crate::quota::day(now))).await?;
    for (key, today) in counted.into_iter().zip(today) {
        if let Some(row) = report.iter_mut().find(|u| u.service == key.service && u.name == key.name) {
            row.today = Some(today);
        }
    }
    Ok(Json(report))
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

/// A service's rules, as `GET` and `PUT /admin/services/{service}` answer them.
#[derive(Serialize)]
struct ServiceRules {
    service: String,
    /// Origins allowed to call the service (`scheme://host[:port]`); `null` = any origin.
    cors_origins: Option<Vec<String>>,
    /// Where requests that name no secret may go (URL prefixes); `null` = nowhere.
    forward_destinations: Option<Vec<String>>,
}

/// A change to a service's rules: each field given is set (`null` removes the rule), each left
/// out stays as it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceChange {
    #[serde(default, rename = "service")]
    _service: Option<String>,
    #[serde(default, with = "crate::keyring::double_option")]
    cors_origins: Option<Option<Vec<String>>>,
    #[serde(default, with = "crate::keyring::double_option")]
    forward_destinations: Option<Option<Vec<String>>>,
}

async fn service_rules(state: &AppState, service: String) -> Result<ServiceRules, Failure> {
    let cors_origins = state.db.call(|store| store.service_origins(&service)).await?;
    let forward_destinations = state.db.call(|store| store.forward_destinations(&service)).await?;
    Ok(ServiceRules { service, cors_origins, forward_destinations })
}

async fn get_service(State(state): State<AppState>, Path(service): Path<String>) -> Result<Json<ServiceRules>, Failure> {
    Ok(Json(service_rules(&state, service).await?))
}

async fn put_service(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Wire(change): Wire<ServiceChange>,
) -> Result<Json<ServiceRules>, Failure> {
    // Both checked before either is written: a refused change changes nothing.
    let origins = change
        .cors_origins
        .map(|rule| rule.map(|list| list.iter().map(|o| normalize_origin(o)).collect::<Result<Vec<_>, _>>()).transpose())
        .transpose()?;
    let forwarding = change
        .forward_destinations
        .map(|rule| rule.map(|list| crate::destination::normalize_forwarding(&list).map_err(Failure::invalid_parameter)).transpose())
        .transpose()?;
    let now = crate::clock::now_ms();
    if let Some(origins) = origins {
        state.db.call(|store| store.set_service_origins(&service, origins.as_deref(), now)).await?;
    }
    if let Some(forwarding) = forwarding {
        state.db.call(|store| store.set_forward_destinations(&service, forwarding.as_deref(), now)).await?;
    }
    Ok(Json(service_rules(&state, service).await?))
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
