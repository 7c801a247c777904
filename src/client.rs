//! The connection to a service: where its API is, who is calling, and one `post` that frames
//! every call as PROTOCOL.md describes.

use crate::error::SdkError;
use serde::Serialize;
use serde_json::Value;
use skapi_core::wire::ContentMeta;
use skapi_core::ErrorCode;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{RequestInit, RequestMode, Response};

pub struct Client {
    pub service: String,
    pub owner: String,
    /// Base URL of the API, ending in `/`.
    base: String,
    meta_header: String,
    /// startKeys used so far, per history query (for `fetchMore` and `startKeyHistory`).
    pub history_keys: RefCell<HashMap<String, Vec<Value>>>,
}

/// `base` and an endpoint name joined with exactly one `/`.
pub fn join(base: &str, name: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), name.trim_start_matches('/'))
}

impl Client {
    pub fn new(service: String, owner: String, endpoint: Option<String>) -> Result<Client, SdkError> {
        if service.is_empty() {
            return Err(SdkError::new(ErrorCode::InvalidParameter, "\"service\" is required."));
        }
        let base = endpoint.ok_or_else(|| {
            SdkError::new(
                ErrorCode::InvalidRequest,
                "options.endpoint is required: give the base URL of your skapi-server (gateway discovery is not built yet).",
            )
        })?;
        if skapi_core::url::authority(&base).is_none() {
            return Err(SdkError::new(ErrorCode::InvalidParameter, format!("\"{base}\" is an invalid url.")));
        }
        let meta = ContentMeta {
            public_identifier: crate::identity::public_identifier(&service, &owner),
            service: service.clone(),
            owner: owner.clone(),
        };
        Ok(Client {
            meta_header: serde_json::to_string(&meta).expect("strings serialise"),
            service,
            owner,
            base,
            history_keys: RefCell::new(HashMap::new()),
        })
    }

    /// POSTs `body` as JSON to `<endpoint>/<name>` and returns the JSON answer.
    pub async fn post(&self, name: &str, body: &impl Serialize) -> Result<Value, SdkError> {
        let network = |e: JsValue| {
            let detail = e.as_string().or_else(|| js_sys::Reflect::get(&e, &"message".into()).ok()?.as_string());
            SdkError::new(ErrorCode::NetworkError, format!("Could not reach the server: {}", detail.unwrap_or_default()))
        };
        let headers = web_sys::Headers::new().map_err(network)?;
        headers.set("Content-Type", "application/json").map_err(network)?;
        headers.set("Accept", "*/*").map_err(network)?;
        headers.set("Content-Meta", &self.meta_header).map_err(network)?;
        let init = RequestInit::new();
        init.set_method("POST");
        init.set_mode(RequestMode::Cors);
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(&serde_json::to_string(body).expect("wire bodies serialise")));

        let window = web_sys::window().ok_or_else(|| SdkError::new(ErrorCode::NetworkError, "No window to fetch from."))?;
        let response: Response = JsFuture::from(window.fetch_with_str_and_init(&join(&self.base, name), &init))
            .await
            .map_err(network)?
            .dyn_into()
            .map_err(network)?;
        let text = JsFuture::from(response.text().map_err(network)?).await.map_err(network)?.as_string().unwrap_or_default();
        let status = response.status();
        if status >= 400 {
            return Err(SdkError::from_answer(status, &text));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}
