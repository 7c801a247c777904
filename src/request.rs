//! `clientSecretRequest`: validate, send to `csr`, then poll or hand back a pending result.

use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use crate::polls::Selector;
use gloo_timers::future::TimeoutFuture;
use serde_json::Value;
use skapi_core::wire::PollBody;
use skapi_core::{id, ApiError, ErrorCode, Method, Request};
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
    answer.get("id").and_then(Value::as_str) == Some(short) && matches!(answer.get("status").and_then(Value::as_str), Some("pending" | "running"))
}

/// Polls a full id every `interval_ms` until it finishes; the third party's answer, or the
/// failure as an error.
pub async fn poll_until_done(client: &Client, full_id: &str, interval_ms: u32) -> Result<Value, SdkError> {
    let short = id::split_full(full_id).map(|(_, s)| s.to_owned()).unwrap_or_default();
    let body =
        PollBody { service: Some(client.service.clone()), owner: Some(client.owner.clone()), id: Some(full_id.to_owned()), ..Default::default() };
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

/// A `poll()` function for a pending result: polls `full_id` and settles with the outcome; the
/// promise it returns has `stop()`.
pub fn poll_function(client: Rc<Client>, full_id: String, queue: Option<String>, callbacks: Callbacks, method: &'static str) -> JsValue {
    let poll = move |arg: JsValue| -> js_sys::Promise {
        let interval = match latency_of(&arg) {
            Ok(ms) => ms,
            Err(e) => return js_sys::Promise::reject(&e.into_js(method)),
        };
        // The callbacks given to `poll()` itself (history items) win over the request's own.
        let callbacks = if arg.is_object() && (js::function(&arg, "onResponse").is_some() || js::function(&arg, "onError").is_some()) {
            Callbacks::from(&arg)
        } else {
            callbacks.clone()
        };
        let (client2, full_id2) = (client.clone(), full_id.clone());
        crate::polls::stoppable(&client, Some(full_id.clone()), queue.clone(), move |_| async move {
            match poll_until_done(&client2, &full_id2, interval).await {
                Ok(answer) => callbacks.respond(js::from_serde(&answer)),
                Err(e) => callbacks.fail(e.into_js(method)),
            }
        })
    };
    Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(poll).into_js_value()
}

/// `clientSecretRequest(params | SubmitEvent | HTMLFormElement | FormData)`: validated at once;
/// calls sharing a queue run in call order. A form with an `action` goes there with the
/// response once it resolves.
pub fn client_secret_request(client: Rc<Client>, params: JsValue) -> js_sys::Promise {
    let invalid = |e: ApiError| js_sys::Promise::reject(&SdkError::from(e).into_js(METHOD));
    let (json, action, callbacks) = match crate::form::read(&params) {
        Some(Ok(form)) => match skapi_core::form::build(form.fields) {
            Ok(json) => (json, form.action, Callbacks::default()),
            Err(e) => return invalid(e),
        },
        Some(Err(e)) => return invalid(e),
        None => match js::to_json(&params) {
            Some(json) => (json, None, Callbacks::from(&params)),
            None => return invalid(ApiError::invalid_parameter("\"params\" should be type: <object>.")),
        },
    };
    let Some(action) = action else {
        return send(client, json, callbacks);
    };
    let service = client.service.clone();
    let sent = send(client, json, callbacks);
    let go = Closure::once_into_js(move |response: JsValue| -> JsValue {
        crate::form::go_to_action(&service, &action, &response);
        response
    });
    let then = js_sys::Function::from(js::get(&sent, "then"));
    then.call1(&sent, &go).map(js_sys::Promise::from).unwrap_or(sent)
}

fn send(client: Rc<Client>, json: Value, callbacks: Callbacks) -> js_sys::Promise {
    let invalid = |e: ApiError| js_sys::Promise::reject(&SdkError::from(e).into_js(METHOD));
    // Validation errors reject before any network call (and, as in skapi-js, skip onError).
    let (request, poll_ms) = match Request::from_js(&json) {
        Ok(parsed) => parsed,
        Err(e) => return invalid(e),
    };
    let turn = request.queue.as_deref().map(|q| client.turns.take(q));
    let queue = request.queue.clone();
    crate::polls::stoppable(&client.clone(), None, queue, move |entry| async move {
        let mut turn = turn;
        if let Some(turn) = turn.as_mut() {
            turn.wait().await;
        }
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
        *entry.full_id.borrow_mut() = Some(full_id.clone());

        if poll_ms > 0.0 {
            let interval = poll_ms.min(u32::MAX as f64).max(1.0) as u32;
            let outcome = poll_until_done(&client, &full_id, interval).await;
            drop(turn);
            return match outcome {
                Ok(answer) => callbacks.respond(js::from_serde(&answer)),
                Err(e) => callbacks.fail(e.into_js(METHOD)),
            };
        }
        drop(turn);
        let result = js::from_serde(&accepted);
        js::set(&result, "poll", &poll_function(client.clone(), full_id, request.queue.clone(), callbacks.clone(), METHOD));
        callbacks.respond(result)
    })
}

fn text_field(obj: &Value, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The full id a caller means: a full id as is, or `id` of the request to `url` by `method`.
fn full_id_of(client: &Client, params: &Value) -> Result<String, ApiError> {
    let short = text_field(params, "id").ok_or_else(|| ApiError::invalid_parameter("Key \"id\" is required."))?;
    if id::split_full(&short).is_some() {
        return Ok(short);
    }
    let url = text_field(params, "url").ok_or_else(|| ApiError::invalid_parameter("Key \"url\" is required."))?;
    let method = Method::parse(&text_field(params, "method").ok_or_else(|| ApiError::invalid_parameter("Key \"method\" is required."))?)?;
    Ok(id::full(&id::key_v2(method, &url, &client.service), &short))
}

/// `cancelClientSecretRequest({url, method, id})`: `{removed, message}`.
pub async fn cancel(client: Rc<Client>, params: JsValue) -> Result<JsValue, JsValue> {
    const NAME: &str = "cancelClientSecretRequest()";
    let params = js::to_json(&params).unwrap_or(Value::Null);
    let full_id = full_id_of(&client, &params).map_err(|e| SdkError::from(e).into_js(NAME))?;
    let body = PollBody { service: Some(client.service.clone()), owner: Some(client.owner.clone()), id: Some(full_id), ..Default::default() };
    let answer = client.post("csr-cancel", &body).await.map_err(|e| e.into_js(NAME))?;
    Ok(js::from_serde(&answer))
}

/// `clientSecretRequestQueueCount({queue})`: `{queue_name, in_queue}`.
pub async fn queue_count(client: Rc<Client>, params: JsValue) -> Result<JsValue, JsValue> {
    const NAME: &str = "clientSecretRequestQueueCount()";
    let params = js::to_json(&params).unwrap_or(Value::Null);
    let queue = text_field(&params, "queue").ok_or_else(|| SdkError::from(ApiError::invalid_parameter("\"queue\" is required.")).into_js(NAME))?;
    let body =
        PollBody { service: Some(client.service.clone()), owner: Some(client.owner.clone()), queue: Some(format!("{queue}:")), ..Default::default() };
    let answer = client.post("csr-poll", &body).await.map_err(|e| e.into_js(NAME))?;
    Ok(js::from_serde(&answer))
}

/// `stopClientSecretPolling({url?, method?, id?, queue?}?)`: how many polls were stopped.
pub fn stop_polling(client: &Client, params: &JsValue) -> Result<usize, JsValue> {
    let params = js::to_json(params).unwrap_or(Value::Null);
    let selector = if text_field(&params, "id").is_some() {
        let mut ids = vec![text_field(&params, "id").unwrap_or_default()];
        if let Ok(full) = full_id_of(client, &params) {
            ids.push(full);
        }
        Selector::Ids(ids)
    } else if let Some(queue) = text_field(&params, "queue") {
        Selector::Queue(queue)
    } else {
        Selector::All
    };
    Ok(client.polls.stop(&selector))
}
