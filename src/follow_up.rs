//! Calls that follow up on requests already made: cancel one, finalize a stream, read a
//! stream by id, count a queue, stop polling.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::reject;
use crate::js::{self, Js};
use crate::poll;
use crate::stream;
use crate::tasks::{self, Abort, Selector, Tasks};
use skapi_core::request as rules;
use skapi_core::wire::{FinalizeBody, PollBody};
use skapi_core::{id, ApiError, Method};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// The full id a caller means: `id` when it is a full id, else the request `id` to `params`'
/// `url` by its `method`.
fn full_id(client: &Client, id: Option<String>, params: &JsValue) -> Result<String, ApiError> {
    let short = id.filter(|id| !id.is_empty()).ok_or_else(|| ApiError::invalid_parameter("Key \"id\" is required."))?;
    if id::split_full(&short).is_some() {
        return Ok(short);
    }
    let url = js::text(params, "url").ok_or_else(|| ApiError::invalid_parameter("Key \"url\" is required."))?;
    let method = Method::parse(&js::text(params, "method").ok_or_else(|| ApiError::invalid_parameter("Key \"method\" is required."))?)?;
    Ok(id::full(&id::key_v2_of_lowered(method, &js::lower(&url), &client.service), &short))
}

/// POSTs `body` (a wire body, checked already) to `endpoint`: the answer, or the error named
/// after `method`. The one call behind cancel, finalize and queue counts.
fn post(client: Rc<Client>, endpoint: &'static str, body: Result<JsValue, ApiError>, method: &'static str) -> js_sys::Promise {
    match body {
        Ok(body) => js::promise(async move { client.post_js(endpoint, body).await.map_err(|e| e.into_js(method)) }),
        Err(e) => reject(e, method),
    }
}

/// `cancelClientSecretRequest({url, method, id})`: `{removed, message}`.
pub fn cancel(client: Rc<Client>, params: JsValue) -> js_sys::Promise {
    let body = full_id(&client, js::text(&params, "id"), &params).map(|id| client.cancel_body(id));
    post(client, "csr-cancel", body, "cancelClientSecretRequest()")
}

/// A stream reading's `since` or `poll` option: a non-negative number, `default` when absent.
fn option_number(options: &JsValue, key: &str, default: f64) -> Result<f64, ApiError> {
    Ok(rules::opt_number(&Js(options.clone()), key, None)?.unwrap_or(default))
}

/// `clientSecretRequestStream(requestId, {url, method, onStream, since, poll, onResponse,
/// onError})`: reads a stream by id, from chunk `since` on; the promise has `stop()`.
pub fn read_stream(client: Rc<Client>, tasks: Rc<Tasks>, request_id: JsValue, options: JsValue) -> js_sys::Promise {
    const NAME: &str = "clientSecretRequestStream()";
    let checked = full_id(&client, request_id.as_string(), &options).and_then(|full_id| {
        let since = option_number(&options, "since", 0.0)?;
        let poll = option_number(&options, "poll", poll::DEFAULT_LATENCY_MS.into())?;
        Ok((full_id, since as u64, if poll > 0.0 { poll::interval(poll) } else { poll::DEFAULT_LATENCY_MS }))
    });
    let (full_id, since, interval) = match checked {
        Ok(checked) => checked,
        Err(e) => return reject(e, NAME),
    };
    let (callbacks, on_stream) = (Callbacks::from(&options), js::function(&options, "onStream"));
    let abort = Abort::of(&options, &client);
    tasks::spawn(&tasks, Some(full_id.clone()), None, abort, move |_| async move {
        match stream::read(&client, &full_id, since, interval, on_stream, NAME).await {
            Ok(result) => callbacks.respond(result),
            Err(e) => callbacks.fail(e),
        }
    })
}

/// `clientSecretRequestFinalize(requestId, data?, {url, method})`: `{finalized, message}`.
pub fn finalize(client: Rc<Client>, request_id: JsValue, data: JsValue, options: JsValue) -> js_sys::Promise {
    let data = (!data.is_undefined() && !data.is_null()).then_some(Js(data));
    let body = full_id(&client, request_id.as_string(), &options)
        .map(|id| js::to_js(&FinalizeBody { service: Some(client.service.clone()), owner: Some(client.owner.clone()), id: Some(id), data }));
    post(client, "csr-finalize", body, "clientSecretRequestFinalize()")
}

/// `clientSecretRequestQueueCount({queue})`: `{queue_name, in_queue}`.
pub fn queue_count(client: Rc<Client>, params: JsValue) -> js_sys::Promise {
    let queue = js::text(&params, "queue").ok_or_else(|| ApiError::invalid_parameter("\"queue\" is required."));
    let body = queue.map(|queue| js::to_js(&PollBody { queue: Some(queue + ":"), ..client.poll_body() }));
    post(client, "csr-poll", body, "clientSecretRequestQueueCount()")
}

/// `stopClientSecretPolling({url?, method?, id?, queue?}?)`: how many polls were stopped.
pub fn stop_polling(client: &Client, tasks: &Tasks, params: &JsValue) -> usize {
    let selector = if let Some(id) = js::text(params, "id") {
        let mut ids = vec![id.clone()];
        if let Ok(full) = full_id(client, Some(id), params) {
            ids.push(full);
        }
        Selector::Ids(ids)
    } else if let Some(queue) = js::text(params, "queue") {
        Selector::Queue(queue)
    } else {
        Selector::All
    };
    tasks.stop(&selector)
}
