//! `csr`: accept a client-secret request, write it durably, start it, answer `pending`.

use super::body::CsrInput;
use super::{Caller, Failure};
use crate::clock::now_ms;
use crate::domain::{KeyRecord, NewRecord, Record};
use crate::engine::Ready;
use crate::quota;
use crate::shares::ShareNames;
use crate::state::AppState;
use crate::store::{QuotaCheck, RateCheck};
use axum::extract::State;
use axum::Json;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::OsRng;
use skapi_core::wire::{Status, StatusEnvelope};
use skapi_core::{id, ApiError, ErrorCode, Request, PLACEHOLDER};

/// Random alphanumerics that make short ids unguessable.
fn entropy() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 12];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char).collect()
}

/// Header names and values must be sendable (checked with the placeholder standing in).
fn check_headers(request: &Request) -> Result<(), ApiError> {
    for (name, value) in &request.headers {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let sendable =
            axum::http::HeaderName::from_bytes(name.as_bytes()).is_ok() && axum::http::HeaderValue::from_str(&text.replace(PLACEHOLDER, "x")).is_ok();
        if !sendable {
            return Err(ApiError::invalid_parameter(format!("Header \"{name}\" is not a valid HTTP header.")));
        }
    }
    Ok(())
}

/// Whether `key` (as found, or `None`) lets `caller` send `request`: it exists, is open to
/// this caller, and allows the destination and where the placeholder stands.
fn key_allows(key: Option<KeyRecord>, name: &str, caller: &Caller, request: &Request) -> Result<KeyRecord, Failure> {
    let key = key.ok_or_else(|| Failure::new(ErrorCode::NotExists, format!("Client secret \"{name}\" does not exist.")))?;
    if key.locked && caller.user.is_none() {
        return Err(Failure::new(ErrorCode::Unauthorized, format!("Client secret \"{name}\" is locked: only logged-in users may use it.")));
    }
    crate::destination::check(&key.destinations, &request.url)?;
    skapi_core::positions::check(&key.positions, request)?;
    if let Some(schema) = &key.request_schema {
        crate::rules::check(schema, request)?;
    }
    Ok(key)
}

/// An admission refused, and whether the per-minute count was taken for it first (a daily
/// quota refuses after it).
struct Refused {
    failure: Failure,
    rate_counted: bool,
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Refused {
        Refused { failure, rate_counted: false }
    }
}

/// [`key_allows`], then one request counted against the key's per-minute limits (unless
/// `count_rate` is false: counted already) and its daily quotas.
async fn admit(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: &Request,
    key: Option<KeyRecord>,
    count_rate: bool,
    now: u64,
) -> Result<KeyRecord, Refused> {
    let key = key_allows(key, name, caller, request)?;
    if count_rate {
        rate_limits(state, caller, &key, now).await?;
    }
    daily_quotas(state, caller, &key, now).await.map_err(|failure| Refused { failure, rate_counted: count_rate })?;
    Ok(key)
}

/// One request counted against the key's per-minute limits — or refused, and then nothing is
/// counted.
async fn rate_limits(state: &AppState, caller: &Caller, key: &KeyRecord, now: u64) -> Result<(), Failure> {
    let (service, name) = (&key.service, &key.name);
    let key_id = format!("{service}\0{name}");
    // A shared store counts for every instance; otherwise this process counts (in memory:
    // no trip to the store on this path).
    let (per_caller, total) = (key.rate_per_caller, key.rate_total);
    let verdict = if (per_caller.is_some() || total.is_some()) && state.db.store().shared() {
        match state.db.call(|s| s.rate_check(&key_id, &caller.counted_as, per_caller, total, now)).await? {
            RateCheck::Counted => Ok(()),
            RateCheck::Refused { retry_after } => Err(retry_after),
            RateCheck::NotKept => state.limiter.check(&key_id, &caller.counted_as, per_caller, total, now),
        }
    } else {
        state.limiter.check(&key_id, &caller.counted_as, per_caller, total, now)
    };
    if let Err(seconds) = verdict {
        crate::metrics::rate_limited();
        return Err(Failure::new(ErrorCode::RateLimited, format!("Too many requests with client secret \"{name}\"; retry in {seconds} s."))
            .retry_after(seconds));
    }
    Ok(())
}

/// One request counted against the key's daily quotas and token budgets (`crate::quota`) — or
/// refused until the UTC day turns, and then nothing is counted.
async fn daily_quotas(state: &AppState, caller: &Caller, key: &KeyRecord, now: u64) -> Result<(), Failure> {
    let counters = quota::counters(key, &caller.counted_as);
    if counters.is_empty() {
        return Ok(());
    }
    let QuotaCheck::Reached { index, limit } = state.db.call(|s| s.quota_take(&counters, quota::day(now))).await? else { return Ok(()) };
    let (which, message) = quota::refusal(key, &counters[index], limit);
    crate::metrics::quota_refused(&key.service, &key.name, which);
    Err(Failure::new(ErrorCode::QuotaExceeded, message).retry_after(quota::seconds_to_midnight(now)))
}

/// What accepting a request found: the key it names (`None`, and an empty name, for a request
/// that names none), and the key generation it was read under.
struct Admitted {
    name: String,
    key: Option<KeyRecord>,
    generation: Option<u64>,
}

/// A request that names a secret: the key exists, lets this caller send this request there, and
/// its limits allow one more.
async fn keyed(state: &AppState, caller: &Caller, service: &str, name: String, request: &Request, now: u64) -> Result<Admitted, Failure> {
    let found = state.keyring.for_acceptance(service, &name).await?;
    let (mut generation, remembered) = (found.generation, found.remembered);
    let mut admitted = admit(state, caller, &name, request, found.key, true, now).await;
    if let (Err(refused), true) = (&admitted, remembered) {
        // A refusal rests on the key as stored now, never on one remembered; the minute's
        // count is taken once either way.
        let count_rate = !refused.rate_counted;
        generation = None;
        admitted = admit(state, caller, &name, request, state.keyring.get(service, &name).await?, count_rate, now).await;
    }
    Ok(Admitted { key: Some(admitted.map_err(|refused| refused.failure)?), name, generation })
}

/// A request that names no secret goes only where the service's operator allowed such requests
/// to go, and holds no placeholder: there is no secret to put in.
async fn keyless(state: &AppState, service: &str, request: &Request) -> Result<Admitted, Failure> {
    let allowed = state.db.call(|s| s.forward_destinations(service)).await?;
    let allowed = allowed.ok_or_else(|| {
        Failure::new(
            ErrorCode::InvalidRequest,
            format!("Service \"{service}\" forwards no request without \"secretName\": its operator has allowed no destination for them."),
        )
    })?;
    if request.has_placeholder() {
        return Err(Failure::invalid_parameter(format!(
            "A request without \"secretName\" has no secret to put in \"{PLACEHOLDER}\": name one, or leave the placeholder out."
        )));
    }
    crate::destination::check_keyless(&allowed, &request.url)?;
    Ok(Admitted { name: String::new(), key: None, generation: None })
}

pub async fn csr(State(state): State<AppState>, caller: Caller, CsrInput { body, files }: CsrInput) -> Result<Json<StatusEnvelope>, Failure> {
    if state.engine.draining() {
        return Err(Failure::new(ErrorCode::ShuttingDown, "The server is restarting: it takes no new requests; retry shortly.").retry_after(5));
    }
    let service = caller.service(&state, body.service.as_deref()).await?;
    let owner = body.owner.clone().filter(|o| !o.is_empty()).unwrap_or_else(|| caller.meta.owner.clone());
    let request = match files {
        Some(files) => Request::from_wire_with(&body, files)?,
        None => Request::from_wire(&body)?,
    };
    check_headers(&request)?;

    let now = now_ms();
    let Admitted { name, mut key, generation } = match request.client_secret_name.clone() {
        Some(name) => keyed(&state, &caller, &service, name, &request, now).await?,
        None => keyless(&state, &service, &request).await?,
    };
    let name = &name;

    let short_id = id::short(now, &entropy());
    let queue_key = request.queue.as_ref().map(|q| serde_json::json!([service, request.method.lower(), request.url.to_lowercase(), q]).to_string());
    let record = NewRecord {
        id: short_id.clone(),
        owner: owner.clone(),
        caller: caller.identity.clone(),
        counted_as: caller.counted_as.clone(),
        key_name: name.clone(),
        method: request.method,
        url: request.url.clone(),
        key_v1: id::key_v1(request.method, &request.url, request.queue.as_deref()),
        key_v2: id::key_v2(request.method, &request.url, &service),
        queue: request.queue.clone(),
        queue_key: queue_key.clone(),
        request: request.to_wire(&service, &owner),
        request_body: request.request_body(),
        created: now,
        expires: now.saturating_add(request.expires_ms()),
        service,
    };
    // An unqueued request with room to run now is written `running`, claimed: one write less.
    // (One without a secret takes the usual way: its destinations are read again as it runs.)
    let names = ShareNames::new(caller.shares_as(), &record.service, name);
    let start = if queue_key.is_none() && key.is_some() { state.engine.start_now(&names) } else { None };
    let claim = start.as_ref().map(|s| &s.claim);
    let inserted = match generation {
        Some(seen) => state.db.call(|s| s.insert_record_if(&record, claim, seen)).await?,
        None => None,
    };
    let seq = match inserted {
        Some(seq) => seq,
        None => {
            if generation.is_some() {
                // A key changed after it was read: the request goes on only if the key as
                // stored now allows it too. (Its rate count was taken once, above.)
                key = Some(key_allows(state.keyring.get(&record.service, name).await?, name, &caller, &request)?);
            }
            state.db.call(|s| s.insert_record(&record, claim)).await?
        }
    };
    if key.is_some() {
        state.engine.usage.used(&record.service, name, now);
    }
    let in_queue = match &queue_key {
        Some(k) => Some(state.db.call(|s| s.queue_position(k, seq)).await?),
        None => None,
    };
    let queue_name = request.queue.clone();
    match start {
        Some(start) => {
            let key = key.expect("only a request with a key starts at once");
            state.engine.run_started(Record::started(seq, record, &start.claim), start, Ready { request, key })
        }
        None => state.engine.dispatch(short_id.clone(), queue_key, names),
    }
    Ok(Json(StatusEnvelope { id: short_id, status: Status::Pending, queue_name, in_queue, executed: None }))
}
