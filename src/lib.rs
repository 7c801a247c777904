//! skapi-wasm: Skapi's client-secret requests, in Rust compiled to WebAssembly.
//!
//! The JS API is that of `skapi-js` (`new Skapi(service, owner, options)`,
//! `clientSecretRequest`, `clientSecretRequestHistory`); the pure logic lives in `skapi-core`
//! and is tested natively. This crate is the browser glue: fetch, timers, storage, errors.

mod client;
mod error;
mod history;
mod identity;
mod js;
mod request;

use client::Client;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

pub use error::SdkError;

/// A connection to one Skapi service (on Skapi's backend or a self-hosted `skapi-server`).
#[wasm_bindgen]
pub struct Skapi {
    client: Rc<Client>,
}

#[wasm_bindgen]
impl Skapi {
    /// `new Skapi(service, owner, {endpoint})`. `endpoint` is the base URL of a self-hosted
    /// skapi-server.
    #[wasm_bindgen(constructor)]
    pub fn new(service: String, owner: String, options: Option<JsValue>) -> Result<Skapi, JsValue> {
        let endpoint = options
            .as_ref()
            .map(|o| js::get(o, "endpoint"))
            .and_then(|v| v.as_string())
            .filter(|s| !s.is_empty());
        let client = Client::new(service, owner, endpoint).map_err(|e| e.into_js("Skapi"))?;
        Ok(Skapi { client: Rc::new(client) })
    }

    #[wasm_bindgen(getter)]
    pub fn service(&self) -> String {
        self.client.service.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn owner(&self) -> String {
        self.client.owner.clone()
    }

    /// Sends a request through the service's stored secret. With `poll` > 0 resolves with the
    /// third party's final answer; otherwise at once with `{id, status: 'pending', poll()}`.
    #[wasm_bindgen(js_name = clientSecretRequest)]
    pub fn client_secret_request(&self, params: JsValue) -> js_sys::Promise {
        let client = self.client.clone();
        wasm_bindgen_futures::future_to_promise(request::client_secret_request(client, params))
    }

    /// Lists past requests for a url and method: `{list, startKey, endOfList, startKeyHistory,
    /// pending}`.
    #[wasm_bindgen(js_name = clientSecretRequestHistory)]
    pub fn client_secret_request_history(&self, params: JsValue, fetch_options: Option<JsValue>) -> js_sys::Promise {
        let client = self.client.clone();
        wasm_bindgen_futures::future_to_promise(history::client_secret_request_history(client, params, fetch_options))
    }
}
