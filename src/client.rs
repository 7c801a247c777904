//! The transport: where a service's API is (a fixed `endpoint`, or Skapi's gateways found
//! through its CDN), who is calling, and one `post` that frames every call as
//! docs/protocol.md says.

use crate::error::SdkError;
use crate::js::{self, Js};
use crate::web::fetch::{self, BodyReader};
use gloo_timers::future::TimeoutFuture;
use serde::Serialize;
use skapi_core::gateway::{self, Gateways};
use skapi_core::tree::{Kind, Tree};
use skapi_core::wire::{ContentMeta, PollBody};
use skapi_core::ErrorCode;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Where the gateways are, once found and the connection checked (the first call's answer
/// is every call's).
type Booted = Rc<RefCell<Option<Result<Rc<Gateways>, SdkError>>>>;

pub struct Client {
    pub service: String,
    pub owner: String,
    meta_header: String,
    /// Set once the gateways are found and the connection checked; every call waits for it.
    booted: Booted,
    /// Resolves when `booted` is set.
    boot: js_sys::Promise,
    /// Round-robin position over the gateways.
    calls: Cell<usize>,
    /// The logged-in user's tokens (`loginWithToken`).
    pub tokens: RefCell<Option<Tokens>>,
}

/// A logged-in user's tokens and the claims of the ID token.
#[derive(Clone)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
    pub claims: JsValue,
}

const EVENT_STREAM: &str = "text/event-stream";

/// The longest `Retry-After` the SDK waits out before retrying once.
const MAX_RETRY_AFTER_S: u32 = 60;

/// Where to find the API: a self-hosted skapi-server, or Skapi's CDN.
pub enum Route {
    Endpoint(String),
    Cdn(String),
}

fn network(e: JsValue) -> SdkError {
    let detail = e.as_string().or_else(|| js::text(&e, "message")).unwrap_or_default();
    SdkError::new(ErrorCode::NetworkError, ["Could not reach the server: ", &detail].concat())
}

/// What came back from one call.
struct Answer {
    status: u16,
    /// The answer's JSON, its text when it is not JSON, `null` when empty.
    value: JsValue,
    /// Seconds, from a `Retry-After` header.
    retry_after: Option<u32>,
}

/// A logged-in caller's credentials, as `call` sends them.
#[derive(Default)]
struct Credentials<'a> {
    id_token: Option<&'a str>,
    access_token: Option<&'a str>,
}

/// A call's POST body: JSON text with Skapi's headers; with files, multipart — the JSON in
/// part `request`, then each file as a part `file`.
fn post_body(body: &JsValue, files: Option<&js_sys::Array>) -> Result<JsValue, JsValue> {
    let json = js::stringify(body);
    let Some(files) = files else {
        return Ok(json.into());
    };
    let form = web_sys::FormData::new()?;
    form.append_with_str("request", &json)?;
    for file in files.iter() {
        // A File keeps its own name; the browser names any other Blob "blob".
        form.append_with_blob("file", file.unchecked_ref())?;
    }
    Ok(form.into())
}

/// GET `url` (`body` `None`), or POST `body` with Skapi's headers; fails when the network does.
async fn call(
    url: &str,
    body: Option<&JsValue>,
    meta: &str,
    credentials: Credentials<'_>,
    files: Option<&js_sys::Array>,
) -> Result<Answer, SdkError> {
    let body = body.map(|b| post_body(b, files)).transpose().map_err(network)?;
    // The browser writes a multipart body's Content-Type, with its boundary.
    let json = (body.is_some() && files.is_none()).then_some("application/json");
    let post = body.is_some().then_some(meta);
    let headers = [
        ("Content-Type", json),
        ("Accept", post.map(|_| "*/*")),
        ("Content-Meta", post),
        ("Authorization", credentials.id_token),
        ("X-Access-Token", credentials.access_token),
    ];
    let answer = fetch::fetch(&fetch::Call { url, headers: &headers, body: body.as_ref() }).await.map_err(network)?;
    let value = if answer.text.is_empty() { JsValue::NULL } else { js::parse(&answer.text) };
    Ok(Answer { status: answer.status, value, retry_after: answer.retry_after.and_then(|v| skapi_core::text::read_decimal(v.trim_ascii())) })
}

async fn get(url: &str) -> Result<Answer, SdkError> {
    call(url, None, "", Credentials::default(), None).await
}

/// Finds the gateways, then checks the connection (`GET …/service`): any non-empty JSON object
/// lets the SDK go on.
async fn boot(route: Route, service: String, owner: String) -> Result<Rc<Gateways>, SdkError> {
    let gateways = match route {
        Route::Endpoint(endpoint) => Gateways::single(&endpoint),
        Route::Cdn(cdn) => {
            let answer = get(&gateway::admin_json_url(&cdn, &service)).await?;
            match Gateways::from_admin_json(&Js(answer.value)) {
                Some(g) if answer.status < 400 => g,
                _ => return Err(SdkError::new(ErrorCode::NotExists, "Service does not exist. Create your service from skapi.com")),
            }
        }
    };
    let answer = get(&gateways.service_check_url(&service, &owner)).await?;
    if answer.status >= 400 {
        return Err(SdkError::from_answer(answer.status, &answer.value));
    }
    let check = Js(answer.value);
    let mut non_empty = false;
    check.entries(&mut |_, _| {
        non_empty = true;
        false
    });
    if check.kind() == Kind::Object && non_empty {
        Ok(Rc::new(gateways))
    } else {
        Err(SdkError::new(ErrorCode::InvalidRequest, "Invalid connection. The server did not confirm the service."))
    }
}

/// The `Content-Meta` header of a service and owner: who the caller is to it.
fn meta_header(service: &str, owner: &str) -> String {
    let meta = ContentMeta { public_identifier: crate::identity::public_identifier(service, owner), service: service.into(), owner: owner.into() };
    js::stringify(&js::to_js(&meta))
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
            return Err(SdkError::new(ErrorCode::InvalidParameter, ["\"", base, "\" is an invalid url."].concat()));
        }
        // Started at once, as skapi-js does, so the first call does not wait for a round trip.
        let booted = Booted::default();
        let (cell, work) = (booted.clone(), boot(route, service.clone(), owner.clone()));
        let boot = js::promise(async move {
            *cell.borrow_mut() = Some(work.await);
            Ok(JsValue::UNDEFINED)
        });
        Ok(Client { meta_header: meta_header(&service, &owner), service, owner, booted, boot, calls: Cell::new(0), tokens: RefCell::new(None) })
    }

    /// The same connection acting for another project (`options.service`/`owner` of one call, as
    /// an admin page acting on another project does): its calls carry that service and owner,
    /// and the caller as signed in now.
    pub fn for_project(&self, service: String, owner: String) -> Client {
        Client {
            meta_header: meta_header(&service, &owner),
            service,
            owner,
            booted: self.booted.clone(),
            boot: self.boot.clone(),
            calls: Cell::new(self.calls.get()),
            tokens: RefCell::new(self.tokens.borrow().clone()),
        }
    }

    /// A `csr-poll`/`csr-cancel` body of this service, to be completed by the caller.
    pub fn poll_body(&self) -> PollBody<Js> {
        PollBody { service: Some(self.service.clone()), owner: Some(self.owner.clone()), ..Default::default() }
    }

    /// POSTs `body` (a wire type, as JSON) to endpoint `name` and returns the answer (parsed
    /// when it is JSON). A 429 or 503 with `Retry-After` is waited out and retried once; a
    /// second 429 is `RATE_LIMITED`.
    pub fn post(&self, name: &'static str, body: &impl Serialize) -> impl std::future::Future<Output = Result<JsValue, SdkError>> + '_ {
        self.post_with_files(name, body, None)
    }

    /// `post`, with `files` (an array of Blobs) as parts of a multipart body after the JSON.
    pub fn post_with_files<'a>(
        &'a self,
        name: &'static str,
        body: &impl Serialize,
        files: Option<&'a js_sys::Array>,
    ) -> impl std::future::Future<Output = Result<JsValue, SdkError>> + 'a {
        // Made a JS value here, so that the sending below is compiled once for every body type.
        self.send(name, js::to_js(body), files)
    }

    /// The gateways, once the connection check has found them.
    async fn gateways(&self) -> Result<Rc<Gateways>, SdkError> {
        loop {
            if let Some(booted) = self.booted.borrow().clone() {
                return booted;
            }
            // The boot future only ever resolves, and sets `booted` before it does.
            let _ = JsFuture::from(self.boot.clone()).await;
        }
    }

    /// Where the next call to endpoint `name` goes (round robin over the gateways), and the
    /// logged-in user's tokens if any.
    fn target(&self, gateways: &Gateways, name: &str) -> (String, Option<Tokens>) {
        let tokens = self.tokens.borrow().clone();
        let call = self.calls.get();
        self.calls.set(call.wrapping_add(1));
        ([gateways.pick(tokens.is_some(), call), name].concat(), tokens)
    }

    /// Opens endpoint `name`'s server-sent events for `body` (a wire body as a JS value); `None`
    /// when they cannot be read: the network failed, or the server answered with no event stream.
    pub async fn open_events(&self, name: &'static str, body: JsValue) -> Option<BodyReader> {
        let gateways = self.gateways().await.ok()?;
        let (url, tokens) = self.target(&gateways, name);
        let body = JsValue::from(js::stringify(&body));
        let headers = [
            ("Content-Type", Some("application/json")),
            ("Accept", Some(EVENT_STREAM)),
            ("Content-Meta", Some(self.meta_header.as_str())),
            ("Authorization", tokens.as_ref().map(|t| t.id_token.as_str())),
        ];
        BodyReader::open(&fetch::Call { url: &url, headers: &headers, body: Some(&body) }, EVENT_STREAM).await
    }

    /// The `csr-cancel` body for request `full_id`.
    pub fn cancel_body(&self, full_id: String) -> JsValue {
        js::to_js(&PollBody { id: Some(full_id), ..self.poll_body() })
    }

    /// Cancels request `full_id`: `{removed, message}`.
    pub fn cancel(&self, full_id: String) -> impl std::future::Future<Output = Result<JsValue, SdkError>> + '_ {
        self.post_js("csr-cancel", self.cancel_body(full_id))
    }

    /// `post` of a body made a JS value already.
    pub fn post_js(&self, name: &'static str, body: JsValue) -> impl std::future::Future<Output = Result<JsValue, SdkError>> + '_ {
        self.send(name, body, None)
    }

    async fn send(&self, name: &'static str, body: JsValue, files: Option<&js_sys::Array>) -> Result<JsValue, SdkError> {
        let gateways = self.gateways().await?;
        let mut retried = false;
        loop {
            let (url, tokens) = self.target(&gateways, name);
            // As skapi-js: the raw ID token, and on `csr` the access token too.
            let credentials = Credentials {
                id_token: tokens.as_ref().map(|t| t.id_token.as_str()),
                access_token: tokens.as_ref().and_then(|t| t.access_token.as_deref()).filter(|_| name == "csr"),
            };
            let answer = call(&url, Some(&body), &self.meta_header, credentials, files).await?;
            // A daily quota used up is no per-minute limit: no wait helps before the day turns.
            let quota = answer.status == 429 && js::text(&answer.value, "code").as_deref() == Some(ErrorCode::QuotaExceeded.as_str());
            match (answer.status, answer.retry_after) {
                // Over a rate limit, or the server restarting or without its database: wait
                // out what it asks once, then try again.
                (429 | 503, Some(seconds)) if !retried && !quota && seconds <= MAX_RETRY_AFTER_S => {
                    retried = true;
                    TimeoutFuture::new(seconds.max(1) * 1000).await;
                    continue;
                }
                (429, _) if !quota => {
                    let mut error = SdkError::from_answer(429, &answer.value);
                    error.code = ErrorCode::RateLimited.as_str().to_owned();
                    return Err(error);
                }
                (status, _) if status >= 400 => return Err(SdkError::from_answer(status, &answer.value)),
                _ => {}
            }
            return Ok(answer.value);
        }
    }
}
