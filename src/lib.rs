//! skapi-wasm: Skapi's client-secret requests, in Rust compiled to WebAssembly.
//!
//! The JS API is that of `skapi-js` (`new Skapi(service, owner, options)`,
//! `clientSecretRequest`, `clientSecretRequestHistory`); the pure logic lives in `skapi-core`
//! and is tested natively. This crate is the request flows in the browser: the browser's APIs
//! through web-sys (`web`), waits through gloo-timers, values across the boundary through
//! serde-wasm-bindgen.

mod callbacks;
mod client;
mod error;
mod files;
mod follow_up;
mod form;
mod forward;
mod history;
mod identity;
mod js;
mod plain;
mod poll;
mod request;
mod stream;
mod tasks;
mod turns;
mod web;

use client::{Client, Route};
use futures_util::future::{AbortHandle, Abortable};
use history::Cursors;
use std::rc::Rc;
use tasks::Tasks;
use turns::Turns;
use wasm_bindgen::prelude::*;

pub use error::SdkError;

// Talc instead of the default dlmalloc: a fraction of its size in the wasm.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// A connection to one Skapi service (on Skapi's backend or a self-hosted `skapi-server`).
#[wasm_bindgen]
pub struct Skapi {
    client: Rc<Client>,
    /// Requests, polls and stream readings that can be stopped.
    tasks: Rc<Tasks>,
    /// Client-side order of calls sharing a queue.
    turns: Turns,
    /// History pages read so far.
    cursors: Rc<Cursors>,
}

#[wasm_bindgen]
impl Skapi {
    /// `new Skapi(service, owner, {endpoint})`. `endpoint` is the base URL of a self-hosted
    /// skapi-server; without it the SDK finds Skapi's gateways through `options.cdn` (default:
    /// Skapi's CDN).
    #[wasm_bindgen(constructor)]
    pub fn new(service: String, owner: String, options: Option<JsValue>) -> Result<Skapi, JsValue> {
        let option = |key: &str| options.as_ref().map(|o| js::get(o, key)).and_then(|v| v.as_string()).filter(|s| !s.is_empty());
        let route = match (option("endpoint"), option("cdn")) {
            (Some(endpoint), _) => Route::Endpoint(endpoint),
            (None, cdn) => Route::Cdn(cdn.unwrap_or_else(|| skapi_core::gateway::DEFAULT_CDN.to_owned())),
        };
        let client = Client::new(service, owner, route).map_err(|e| e.into_js("Skapi"))?;
        Ok(Skapi { client: Rc::new(client), tasks: Tasks::new(), turns: Turns::default(), cursors: Rc::default() })
    }

    /// Sends a request through the service's stored secret. With `poll` > 0 resolves with the
    /// third party's final answer; otherwise at once with `{id, status: 'pending', poll()}`.
    #[wasm_bindgen(js_name = clientSecretRequest)]
    pub fn client_secret_request(&self, params: JsValue) -> js_sys::Promise {
        request::client_secret_request(self.client.clone(), self.tasks.clone(), &self.turns, params)
    }

    /// Skapi's current door: `form` (a submit event, form, `FormData`, object or `null`) is the
    /// body, merged into `data` (`params` for GET, DELETE, HEAD); `options` holds the rest
    /// (`secretName` optional, `method` POST by default, `multipart`, `skapiHeaders`, …).
    #[wasm_bindgen(js_name = forwardRequest)]
    pub fn forward_request(&self, form: JsValue, options: JsValue) -> js_sys::Promise {
        forward::forward_request(self.client.clone(), self.tasks.clone(), &self.turns, form, options)
    }

    /// Lists past requests for a url and method: `{list, startKey, endOfList, startKeyHistory,
    /// pending}`.
    #[wasm_bindgen(js_name = clientSecretRequestHistory)]
    pub fn client_secret_request_history(&self, params: JsValue, fetch_options: Option<JsValue>) -> js_sys::Promise {
        let (client, tasks, cursors) = (self.client.clone(), self.tasks.clone(), self.cursors.clone());
        // `params.signal` rejects the call at once.
        let signal = web::abort::signal_of(&js::get(&params, "signal"));
        let listing = history::client_secret_request_history(client, tasks, cursors, params, fetch_options);
        let Some(signal) = signal else {
            return js::promise(listing);
        };
        if signal.aborted() {
            return js_sys::Promise::reject(&SdkError::aborted());
        }
        let (handle, registration) = AbortHandle::new_pair();
        js::promise(async move {
            let _watch = web::abort::Watch::new(&signal, Box::new(move || handle.abort()));
            Abortable::new(listing, registration).await.unwrap_or_else(|_| Err(SdkError::aborted()))
        })
    }

    /// Reads a stream by id (one this page did not start, or after a reload) from chunk
    /// `since` on: `onStream(chunk, seq, via)` per chunk, then resolves like a streamed
    /// `clientSecretRequest`. The promise has `stop()`.
    #[wasm_bindgen(js_name = clientSecretRequestStream)]
    pub fn client_secret_request_stream(&self, request_id: JsValue, options: Option<JsValue>) -> js_sys::Promise {
        follow_up::read_stream(self.client.clone(), self.tasks.clone(), request_id, options.unwrap_or_else(|| js_sys::Object::new().into()))
    }

    /// Replaces a finished stream's chunks by one stored body (`data`, or else the chunks'
    /// text joined): `{finalized, message}`.
    #[wasm_bindgen(js_name = clientSecretRequestFinalize)]
    pub fn client_secret_request_finalize(&self, request_id: JsValue, data: JsValue, options: Option<JsValue>) -> js_sys::Promise {
        let options = options.unwrap_or_else(|| js_sys::Object::new().into());
        follow_up::finalize(self.client.clone(), request_id, data, options)
    }

    /// Cancels a request: `{removed, message}`. A pending request is never sent; a running one
    /// is aborted.
    #[wasm_bindgen(js_name = cancelClientSecretRequest)]
    pub fn cancel_client_secret_request(&self, params: JsValue) -> js_sys::Promise {
        follow_up::cancel(self.client.clone(), params)
    }

    /// Stops polls by `id` (with `url` and `method`, or a full id), by `queue`, or all; returns
    /// how many were stopped. Stopped polls resolve `{id, status: 'stopped'}`.
    #[wasm_bindgen(js_name = stopClientSecretPolling)]
    pub fn stop_client_secret_polling(&self, params: Option<JsValue>) -> u32 {
        follow_up::stop_polling(&self.client, &self.tasks, &params.unwrap_or(JsValue::UNDEFINED)) as u32
    }

    /// How many requests wait in queues of this name: `{queue_name, in_queue}`.
    #[wasm_bindgen(js_name = clientSecretRequestQueueCount)]
    pub fn client_secret_request_queue_count(&self, params: JsValue) -> js_sys::Promise {
        follow_up::queue_count(self.client.clone(), params)
    }

    /// Polls running now (for tests and diagnostics).
    #[wasm_bindgen(js_name = activePolls)]
    pub fn active_polls(&self) -> u32 {
        self.tasks.len() as u32
    }

    /// Logs a user in with tokens from your identity provider: `{idToken, accessToken?}`.
    /// Resolves with `user`. Locked keys then work, and records belong to that user.
    #[wasm_bindgen(js_name = loginWithToken)]
    pub fn login_with_token(&self, params: JsValue) -> js_sys::Promise {
        let name = "loginWithToken()";
        let text = |key: &str| js::get(&params, key).as_string().filter(|s| !s.is_empty());
        let Some(id_token) = text("idToken") else {
            return js_sys::Promise::reject(&SdkError::from(skapi_core::ApiError::invalid_parameter("Key \"idToken\" is required.")).into_js(name));
        };
        let claims = skapi_core::jwt::payload(&id_token).map(|text| js::parse(&text));
        match claims.and_then(|claims| skapi_core::jwt::check_claims(&js::Js(claims.clone())).map(|()| claims)) {
            Ok(claims) => {
                *self.client.tokens.borrow_mut() = Some(client::Tokens { id_token, access_token: text("accessToken"), claims });
                js_sys::Promise::resolve(&self.user())
            }
            Err(e) => js_sys::Promise::reject(&SdkError::from(e).into_js(name)),
        }
    }

    /// Forgets the logged-in user.
    pub fn logout(&self) -> js_sys::Promise {
        self.client.tokens.borrow_mut().take();
        js_sys::Promise::resolve(&JsValue::from_str("SUCCESS: The user has been logged out."))
    }

    /// The logged-in user (the ID token's claims, with `user_id` = `sub`), or `null`.
    #[wasm_bindgen(getter)]
    pub fn user(&self) -> JsValue {
        match &*self.client.tokens.borrow() {
            Some(tokens) => {
                // A copy of the claims, with `user_id` beside `sub`.
                let user: JsValue = js_sys::Object::assign(&js_sys::Object::new(), tokens.claims.unchecked_ref()).into();
                js::set(&user, "user_id", &js::get(&tokens.claims, "sub"));
                user
            }
            None => JsValue::NULL,
        }
    }

    /// The response a form with an `action` attribute left for this page (once), or `null`.
    #[wasm_bindgen(js_name = getFormResponse)]
    pub fn get_form_response(&self) -> js_sys::Promise {
        js_sys::Promise::resolve(&form::take_response(&self.client.service))
    }
}

// Answered by the npm package's loader itself (js/wrapper.mjs), so not exported: each export
// costs the wasm a shim. Here for Rust callers (the browser tests).
impl Skapi {
    pub fn service(&self) -> String {
        self.client.service.clone()
    }

    pub fn owner(&self) -> String {
        self.client.owner.clone()
    }

    /// True for the result of a stopped poll.
    pub fn is_poll_stopped(&self, result: JsValue) -> bool {
        result.is_object() && js::get(&result, "status").as_string().as_deref() == Some("stopped")
    }
}
