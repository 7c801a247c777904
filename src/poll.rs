//! Polling one request until it finishes, the `poll()` function a pending result carries, and
//! a final answer shaped as `responseType` asks.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use crate::tasks::{self, Abort, Tasks};
use crate::web::bytes;
use gloo_timers::future::TimeoutFuture;
use skapi_core::request::ResponseType;
use skapi_core::wire::{Status, StatusEnvelope};
use skapi_core::{encoding, id, ErrorCode};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// skapi-js's interval when `poll()` is called without one.
pub const DEFAULT_LATENCY_MS: u32 = 1000;

/// The id of the request whose unfinished status envelope `answer` is, if it is one.
pub fn unfinished_id(answer: &JsValue) -> Option<String> {
    js::read::<StatusEnvelope>(answer).filter(|e| matches!(e.status, Status::Pending | Status::Running)).map(|e| e.id)
}

/// True when `answer` is the status envelope of request `short` that has not finished — and
/// not a third-party body that merely looks like one.
pub fn is_unfinished(answer: &JsValue, short: &str) -> bool {
    unfinished_id(answer).is_some_and(|id| id == short)
}

/// Waits `ms` milliseconds (the timer is cleared if the wait is dropped).
pub fn sleep(ms: u32) -> TimeoutFuture {
    // setTimeout takes a signed 32-bit delay.
    TimeoutFuture::new(ms.min(i32::MAX as u32))
}

/// `answer` as `response_type` asks. Bytes the server kept as `{body_b64, body_content_type}`
/// become an `ArrayBuffer`, a `Blob` of that type or their UTF-8 text; any other answer is its
/// text (JSON text for a value), as bytes for the first two.
pub fn shaped(answer: JsValue, response_type: Option<ResponseType>) -> JsValue {
    let Some(wanted) = response_type.filter(|t| *t != ResponseType::Json) else {
        return answer;
    };
    let kept = (js::get(&answer, "body_b64").as_string(), js::get(&answer, "body_content_type").as_string());
    let (bytes, content_type) = match kept {
        (Some(b64), Some(content_type)) if answer.is_object() => (encoding::base64_decode(&b64).unwrap_or_default(), content_type),
        _ => {
            let text = answer.as_string().unwrap_or_else(|| js::stringify(&answer));
            if wanted == ResponseType::Text {
                return text.into();
            }
            let content_type = if answer.is_string() { "text/plain" } else { "application/json" };
            (text.into_bytes(), content_type.to_owned())
        }
    };
    match wanted {
        ResponseType::ArrayBuffer => bytes::array_buffer(&bytes),
        ResponseType::Blob => bytes::blob(&bytes, &content_type).unwrap_or(JsValue::NULL),
        _ => bytes::utf8(&bytes).into(),
    }
}

/// A finished request's answer, and when it began executing (ms) if a poll was told.
pub struct Done {
    pub answer: JsValue,
    pub executed: Option<f64>,
}

/// Polls a full id every `interval_ms` until it finishes; the third party's answer (as
/// `response_type` asks), or the failure as an error.
pub async fn until_done(client: &Client, full_id: &str, interval_ms: u32, response_type: Option<ResponseType>) -> Result<Done, SdkError> {
    let short = id::split_full(full_id).map(|(_, s)| s.to_owned()).unwrap_or_default();
    let mut body = client.poll_body();
    body.id = Some(full_id.to_owned());
    let mut executed = None;
    loop {
        sleep(interval_ms).await;
        let answer = client.post("csr-poll", &body).await?;
        match js::read::<StatusEnvelope>(&answer) {
            Some(envelope) if envelope.id == short && !envelope.status.is_final() => executed = envelope.executed.or(executed),
            _ => return Ok(Done { answer: shaped(answer, response_type), executed }),
        }
    }
}

/// A poll interval in ms as a timer takes it: at least 1.
pub fn interval(ms: f64) -> u32 {
    ms.clamp(1.0, u32::MAX as f64) as u32
}

/// The interval a `poll()` call asks for: a number, `{latency}`, or the default.
fn latency_of(arg: &JsValue) -> Result<u32, SdkError> {
    let value = if arg.is_object() { js::get(arg, "latency") } else { arg.clone() };
    match value.as_f64() {
        None if value.is_undefined() || value.is_null() => Ok(DEFAULT_LATENCY_MS),
        Some(ms) if ms.is_finite() && ms >= 0.0 => Ok(if ms == 0.0 { DEFAULT_LATENCY_MS } else { interval(ms) }),
        _ => Err(SdkError::new(ErrorCode::InvalidParameter, "\"latency\" should be a non-negative number.")),
    }
}

/// A `poll()` function for a pending result: polls `full_id` and settles with the outcome; the
/// promise it returns has `stop()`.
pub fn poll_function(
    client: Rc<Client>,
    tasks: Rc<Tasks>,
    full_id: String,
    queue: Option<String>,
    callbacks: Callbacks,
    response_type: Option<ResponseType>,
    method: &'static str,
) -> JsValue {
    let poll = move |arg: JsValue| -> js_sys::Promise {
        // `poll({responseType})` may ask for another shape than the request did.
        let response_type = js::text(&arg, "responseType").and_then(|t| ResponseType::parse(&t)).or(response_type);
        let interval = match latency_of(&arg) {
            Ok(ms) => ms,
            Err(e) => return js_sys::Promise::reject(&e.into_js(method)),
        };
        // The callbacks given to `poll()` itself (history items) win over the request's own.
        let callbacks = if Callbacks::given(&arg) { Callbacks::from(&arg) } else { callbacks.clone() };
        let abort = Abort::of(&arg, &client);
        let (client, full_id2) = (client.clone(), full_id.clone());
        tasks::spawn(&tasks, Some(full_id.clone()), queue.clone(), abort, move |_| async move {
            match until_done(&client, &full_id2, interval, response_type).await {
                Ok(done) => callbacks.respond_with(done.answer, done.executed),
                Err(e) => callbacks.fail(e.into_js(method)),
            }
        })
    };
    Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(poll).into_js_value()
}
