//! `clientSecretRequest`: validate, send to `csr`, then poll or hand back a pending result.

use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use gloo_timers::future::TimeoutFuture;
use serde_json::Value;
use skapi_core::wire::PollBody;
use skapi_core::{id, ApiError, ErrorCode, Request};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const METHOD: &str = "clientSecretRequest()";
/// skapi-js's interval when `poll()` is called without one.
pub const DEFAULT_LATENCY_MS: u32 = 1000;

/// Callbacks a caller may pass along with the params.
#[derive(Clone, Default)]
pub struct Callbacks {
    pub on_response: Option<js_sys::Function>,
    pub on_error: Option<js_sys::Function>,
}

impl Callbacks {
    pub fn from(obj: &JsValue) -> Callbacks {
        Callbacks { on_response: js::function(obj, "onResponse"), on_error: js::function(obj, "onError") }
    }

    /// Calls `onResponse` (if any) and passes the value on.
    pub fn respond(&self, value: JsValue) -> Result<JsValue, JsValue> {
        if let Some(f) = &self.on_response {
            f.call1(&JsValue::NULL, &value)?;
        }
        Ok(value)
    }

    /// Calls `onError` (if any) and passes the error on.
    pub fn fail(&self, error: JsValue) -> Result<JsValue, JsValue> {
        if let Some(f) = &self.on_error {
            f.call1(&JsValue::NULL, &error)?;
        }
        Err(error)
    }
}

/// True when `answer` is the status envelope of request `short` that has not finished — and
/// not a third-party body that merely looks like one.
pub fn is_unfinished(answer: &Value, short: &str) -> bool {
    answer.get("id").and_then(Value::as_str) == Some(short)
        && matches!(answer.get("status").and_then(Value::as_str), Some("pending" | "running"))
}

/// Polls a full id every `interval_ms` until it finishes; the third party's answer, or the
/// failure as an error.
pub async fn poll_until_done(client: &Client, full_id: &str, interval_ms: u32) -> Result<Value, SdkError> {
    let short = id::split_full(full_id).map(|(_, s)| s.to_owned()).unwrap_or_default();
    let body = PollBody {
        service: Some(client.service.clone()),
        owner: Some(client.owner.clone()),
        id: Some(full_id.to_owned()),
        ..Default::default()
    };
    loop {
        TimeoutFuture::new(interval_ms).await;
        let answer = client.post("csr-poll", &body).await?;
        if !is_unfinished(&answer, &short) {
            return Ok(answer);
        }
    }
}

/// The interval a `poll()` call asks for: a number, `{latency}`, or the default.
fn latency_of(arg: &JsValue) -> Result<u32, SdkError> {
    let value = if arg.is_object() { js::get(arg, "latency") } else { arg.clone() };
    match value.as_f64() {
        None if value.is_undefined() || value.is_null() => Ok(DEFAULT_LATENCY_MS),
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(if ms == 0.0 { DEFAULT_LATENCY_MS } else { ms.min(u32::MAX as f64) as u32 }),
        _ => Err(SdkError::new(ErrorCode::InvalidParameter, "\"latency\" should be a non-negative number.")),
    }
}

/// A `poll()` function for a pending result: polls `full_id` and settles with the outcome.
pub fn poll_function(client: Rc<Client>, full_id: String, callbacks: Callbacks, method: &'static str) -> JsValue {
    let poll = move |arg: JsValue| -> js_sys::Promise {
        let (client, full_id, callbacks) = (client.clone(), full_id.clone(), callbacks.clone());
        wasm_bindgen_futures::future_to_promise(async move {
            let interval = latency_of(&arg).map_err(|e| e.into_js(method))?;
            match poll_until_done(&client, &full_id, interval).await {
                Ok(answer) => callbacks.respond(js::from_serde(&answer)),
                Err(e) => callbacks.fail(e.into_js(method)),
            }
        })
    };
    Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(poll).into_js_value()
}

pub async fn client_secret_request(client: Rc<Client>, params: JsValue) -> Result<JsValue, JsValue> {
    let callbacks = Callbacks::from(&params);
    let invalid = |e: ApiError| SdkError::from(e).into_js(METHOD);
    let json = js::to_json(&params)
        .ok_or_else(|| invalid(ApiError::invalid_parameter("\"params\" should be type: <object>.")))?;
    // Validation errors reject before any network call (and, as in skapi-js, skip onError).
    let (request, poll_ms) = Request::from_js(&json).map_err(invalid)?;

    let accepted = match client.post("csr", &request.to_wire(&client.service, &client.owner)).await {
        Ok(answer) => answer,
        Err(e) => return callbacks.fail(e.into_js(METHOD)),
    };
    let short = accepted.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    if !is_unfinished(&accepted, &short) {
        // Anything else (e.g. a backend that answers at once) goes back as it is.
        return callbacks.respond(js::from_serde(&accepted));
    }
    let full_id = id::full(&id::key_v2(request.method, &request.url, &client.service), &short);

    if poll_ms > 0.0 {
        let interval = poll_ms.min(u32::MAX as f64).max(1.0) as u32;
        return match poll_until_done(&client, &full_id, interval).await {
            Ok(answer) => callbacks.respond(js::from_serde(&answer)),
            Err(e) => callbacks.fail(e.into_js(METHOD)),
        };
    }
    let result = js::from_serde(&accepted);
    js::set(&result, "poll", &poll_function(client, full_id, callbacks.clone(), METHOD));
    callbacks.respond(result)
}
