//! The connection to a service: where its API is (a fixed `endpoint`, or Skapi's gateways found
//! through its CDN), who is calling, and one `post` that frames every call as docs/protocol.md says.

use crate::error::SdkError;
use crate::polls::PollRegistry;
use crate::turns::Turns;
use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde::Serialize;
use serde_json::Value;
use skapi_core::gateway::{self, Gateways};
use skapi_core::wire::ContentMeta;
use skapi_core::ErrorCode;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, RequestMode, Response};

type Boot = Shared<LocalBoxFuture<'static, Result<Rc<Gateways>, SdkError>>>;

pub struct Client {
    pub service: String,
    pub owner: String,
    meta_header: String,
    /// Finds the gateways and checks the connection, once; every call waits for it.
    boot: Boot,
    /// Round-robin position over the gateways.
    calls: Cell<usize>,
    /// startKeys used so far, per history query (for `fetchMore` and `startKeyHistory`).
    pub history_keys: RefCell<HashMap<String, Vec<Value>>>,
    /// Polls that can be stopped.
    pub polls: Rc<PollRegistry>,
    /// Client-side order of calls sharing a queue.
    pub turns: Turns,
    /// The logged-in user's tokens (`loginWithToken`).
    pub tokens: RefCell<Option<Tokens>>,
}

/// A logged-in user's tokens and the claims of the ID token.
#[derive(Clone)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
    pub claims: serde_json::Map<String, Value>,
}

/// The longest `Retry-After` the SDK waits out before retrying once.
const MAX_RETRY_AFTER_S: u32 = 60;

/// Where to find the API: a self-hosted skapi-server, or Skapi's CDN.
pub enum Route {
    Endpoint(String),
    Cdn(String),
}

fn network(e: JsValue) -> SdkError {
    let detail = e.as_string().or_else(|| js_sys::Reflect::get(&e, &"message".into()).ok()?.as_string());
    SdkError::new(ErrorCode::NetworkError, format!("Could not reach the server: {}", detail.unwrap_or_default()))
}

/// What came back from one fetch.
struct Answer {
    status: u16,
    text: String,
    /// Seconds, from a `Retry-After` header.
    retry_after: Option<u32>,
}

async fn fetch(url: &str, init: &RequestInit) -> Result<Answer, SdkError> {
    let window = web_sys::window().ok_or_else(|| SdkError::new(ErrorCode::NetworkError, "No window to fetch from."))?;
    let response: Response = JsFuture::from(window.fetch_with_str_and_init(url, init)).await.map_err(network)?.dyn_into().map_err(network)?;
    let text = JsFuture::from(response.text().map_err(network)?).await.map_err(network)?.as_string().unwrap_or_default();
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|v| v.trim().parse().ok());
    Ok(Answer { status: response.status(), text, retry_after })
}

async fn get_json(url: &str) -> Result<(u16, String), SdkError> {
    let init = RequestInit::new();
    init.set_method("GET");
    init.set_mode(RequestMode::Cors);
    fetch(url, &init).await.map(|a| (a.status, a.text))
}

/// Finds the gateways, then checks the connection (`GET …/service`): any truthy JSON object
/// lets the SDK go on.
async fn boot(route: Route, service: String, owner: String) -> Result<Rc<Gateways>, SdkError> {
    let gateways = match route {
        Route::Endpoint(endpoint) => Gateways::single(&endpoint),
        Route::Cdn(cdn) => {
            let url = gateway::admin_json_url(&cdn, &service);
            let (status, text) = get_json(&url).await?;
            let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match Gateways::from_admin_json(&json) {
                Some(g) if status < 400 => g,
                _ => return Err(SdkError::new(ErrorCode::NotExists, "Service does not exist. Create your service from skapi.com")),
            }
        }
    };
    let (status, text) = get_json(&gateways.service_check_url(&service, &owner)).await?;
    if status >= 400 {
        return Err(SdkError::from_answer(status, &text));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) if !map.is_empty() => Ok(Rc::new(gateways)),
        _ => Err(SdkError::new(ErrorCode::InvalidRequest, "Invalid connection. The server did not confirm the service.")),
    }
}

impl Client {
    pub fn new(service: String, owner: String, route: Route) -> Result<Client, SdkError> {
        if service.is_empty() {
            return Err(SdkError::new(ErrorCode::InvalidParameter, "\"service\" is required."));
        }
        let base = match &route {
            Route::Endpoint(e) | Route::Cdn(e) => e,
        };
        if skapi_core::url::authority(base).is_none() {
            return Err(SdkError::new(ErrorCode::InvalidParameter, format!("\"{base}\" is an invalid url.")));
        }
        let meta =
            ContentMeta { public_identifier: crate::identity::public_identifier(&service, &owner), service: service.clone(), owner: owner.clone() };
        let boot = boot(route, service.clone(), owner.clone()).boxed_local().shared();
        // Start at once, as skapi-js does, so the first call does not wait for a round trip.
        wasm_bindgen_futures::spawn_local(boot.clone().map(|_| ()));
        Ok(Client {
            meta_header: serde_json::to_string(&meta).expect("strings serialise"),
            service,
            owner,
            boot,
            calls: Cell::new(0),
            history_keys: RefCell::new(HashMap::new()),
            polls: PollRegistry::new(),
            turns: Turns::default(),
            tokens: RefCell::new(None),
        })
    }

    /// POSTs `body` as JSON to endpoint `name` and returns the JSON answer. A 429 with
    /// `Retry-After` is waited out and retried once; a second one is `RATE_LIMITED`.
    pub async fn post(&self, name: &str, body: &impl Serialize) -> Result<Value, SdkError> {
        let gateways = self.boot.clone().await?;
        let body = JsValue::from_str(&serde_json::to_string(body).expect("wire bodies serialise"));
        let mut retried = false;
        loop {
            let tokens = self.tokens.borrow().clone();
            let call = self.calls.get();
            self.calls.set(call.wrapping_add(1));
            let url = format!("{}{}", gateways.pick(tokens.is_some(), call), name);
            let headers = web_sys::Headers::new().map_err(network)?;
            headers.set("Content-Type", "application/json").map_err(network)?;
            headers.set("Accept", "*/*").map_err(network)?;
            headers.set("Content-Meta", &self.meta_header).map_err(network)?;
            if let Some(tokens) = &tokens {
                // As skapi-js: the raw ID token, and on `csr` the access token too.
                headers.set("Authorization", &tokens.id_token).map_err(network)?;
                if let (Some(access), "csr") = (&tokens.access_token, name) {
                    headers.set("X-Access-Token", access).map_err(network)?;
                }
            }
            let init = RequestInit::new();
            init.set_method("POST");
            init.set_mode(RequestMode::Cors);
            init.set_headers(&headers);
            init.set_body(&body);
            let answer = fetch(&url, &init).await?;
            match (answer.status, answer.retry_after) {
                (429, Some(seconds)) if !retried && seconds <= MAX_RETRY_AFTER_S => {
                    retried = true;
                    gloo_timers::future::TimeoutFuture::new(seconds.max(1) * 1000).await;
                    continue;
                }
                (429, _) => {
                    let mut error = SdkError::from_answer(429, &answer.text);
                    error.code = ErrorCode::RateLimited.as_str().to_owned();
                    return Err(error);
                }
                (status, _) if status >= 400 => return Err(SdkError::from_answer(status, &answer.text)),
                _ => {}
            }
            if answer.text.is_empty() {
                return Ok(Value::Null);
            }
            return Ok(serde_json::from_str(&answer.text).unwrap_or(Value::String(answer.text)));
        }
    }
}
