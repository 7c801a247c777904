//! `clientSecretRequest`: check, send to `csr`, then poll or hand back a pending result; and
//! the calls that act on one request (cancel, queue count, stop polling).

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::SdkError;
use crate::js::{self, Js};
use crate::polls::{self, PollRegistry, Selector};
use crate::stream;
use crate::turns::Turns;
use skapi_core::request::{self as rules, Units};
use skapi_core::tree::{Kind, Tree};
use skapi_core::wire::{CsrBody, FinalizeBody, PollBody};
use skapi_core::{id, upload, ApiError, Method};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

const METHOD: &str = "clientSecretRequest()";

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = randomAlphanumerics)]
    fn random_alphanumerics(n: u32) -> String;
    /// Where `data` holds a file or bytes (`data`, `data[file]`), if it does.
    #[wasm_bindgen(js_name = bytesAt)]
    fn bytes_at(data: &JsValue) -> Option<String>;
    /// Resolves `[base64, content type]` of a Blob, ArrayBuffer or typed array.
    #[wasm_bindgen(js_name = base64Of)]
    fn base64_of(bytes: &JsValue) -> js_sys::Promise;
    /// `[data with a marker for each file, the files as Blobs]`.
    #[wasm_bindgen(js_name = takeFiles)]
    fn take_files(data: &JsValue) -> JsValue;
    /// Whether the headers ask for `multipart/form-data`.
    #[wasm_bindgen(js_name = isMultipart)]
    fn is_multipart(headers: &JsValue) -> bool;
}

fn reject(e: ApiError, method: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&SdkError::from(e).into_js(method))
}

/// `params[key]` as the wire carries it: an object or array as the page wrote it, else absent.
fn nested(params: &Js, key: &str) -> Option<Js> {
    params.field(key, |v| v.filter(|v| matches!(v.kind(), Kind::Object | Kind::Array)).cloned())
}

/// `clientSecretRequest(params | SubmitEvent | HTMLFormElement | FormData)`: checked at once;
/// calls sharing a queue run in call order. A form with an `action` goes there with the
/// response once it resolves.
pub fn client_secret_request(client: Rc<Client>, polls: Rc<PollRegistry>, turns: &Turns, params: JsValue) -> js_sys::Promise {
    let (params, action, callbacks) = match crate::form::read(&params) {
        Some(form) => match skapi_core::form::build(form.fields) {
            Ok(node) => (crate::form::to_js(&node, &form.files), form.action, Callbacks::default()),
            Err(e) => return reject(e, METHOD),
        },
        None => {
            let callbacks = Callbacks::from(&params);
            (params, None, callbacks)
        }
    };
    let Some(action) = action else {
        return send(client, polls, turns, Js(params), callbacks);
    };
    let sent = send(client.clone(), polls, turns, Js(params), callbacks);
    crate::form::go_to_action_after(&sent, &client.service, &action)
}

fn send(client: Rc<Client>, polls: Rc<PollRegistry>, turns: &Turns, params: Js, callbacks: Callbacks) -> js_sys::Promise {
    // Errors in the params reject before any network call (and, as in skapi-js, skip onError).
    let mut request = match rules::check(&params, Units::Js) {
        Ok(checked) => checked,
        Err(e) => return reject(e, METHOD),
    };
    // `data` itself may be bytes (a Blob, an ArrayBuffer, a typed array): the body as it is. A
    // file inside `data` would go out as `{}`: refused, naming where it is.
    // Files inside `data` go as parts of a multipart `csr`, markers standing in their places.
    let data = js::get(&params.0, "data");
    let (raw, files) = match bytes_at(&data).as_deref() {
        None => (None, None),
        Some("data") => (Some(data), None),
        Some(path) if !is_multipart(&js::get(&params.0, "headers")) => return reject(upload::not_multipart(path), METHOD),
        Some(_) => (None, Some(js_sys::Array::from(&take_files(&data)))),
    };
    if request.stream && request.queue.is_none() {
        // As Skapi's SDK: every stream has a queue.
        let user = client.tokens.borrow().as_ref().and_then(|t| js::text(&t.claims, "sub"));
        request.queue = Some(id::stream_queue(user.as_deref(), &random_alphanumerics(6)));
    }
    let on_stream = js::function(&params.0, "onStream");
    let mut body: CsrBody<Js> = CsrBody {
        service: Some(client.service.clone()),
        owner: Some(client.owner.clone()),
        url: Some(request.url.clone()),
        client_secret_name: Some(request.client_secret_name.clone()),
        method: Some(request.method.lower().to_owned()),
        headers: nested(&params, "headers"),
        data: match (&raw, &files) {
            (Some(_), _) => None,
            (_, Some(taken)) => Some(Js(taken.get(0))),
            _ => nested(&params, "data"),
        },
        params: nested(&params, "params"),
        poll: None,
        queue: request.queue.clone(),
        expires: request.expires_ms.map(rules::wire_expires),
        stream: request.stream.then_some(true),
        realtime: request.realtime.then_some(true),
        response_type: request.response_type.map(|t| t.as_str().to_owned()),
        ..Default::default()
    };
    let turn = request.queue.as_deref().map(|q| turns.take(q));
    let registry = polls.clone();
    let abort = polls::Abort::of(&params.0, &client);
    polls::stoppable(&polls, None, request.queue.clone(), abort, move |entry| async move {
        let mut turn = turn;
        if let Some(turn) = turn.as_mut() {
            turn.wait().await;
        }
        if let Some(raw) = raw {
            // Skapi's wire form for bytes: base64 beside the content type.
            let encoded = js_sys::Array::from(&JsFuture::from(base64_of(&raw)).await?);
            body.body_b64 = encoded.get(0).as_string();
            body.body_content_type = encoded.get(1).as_string().filter(|t| !t.is_empty());
        }
        let files = files.map(|taken| taken.get(1));
        let accepted = match client.post_with_files("csr", &body, files.as_ref()).await {
            Ok(answer) => answer,
            Err(e) => return callbacks.fail(e.into_js(METHOD)),
        };
        let Some(short) = polls::unfinished_id(&accepted) else {
            // Anything else (e.g. a backend that answers at once) goes back as it is.
            return callbacks.respond(accepted);
        };
        let full_id = id::full(&id::key_v2_of_lowered(request.method, &js::lower(&request.url), &client.service), &short);
        *entry.full_id.borrow_mut() = Some(full_id.clone());

        if request.stream {
            let interval = if request.poll_ms > 0.0 { polls::interval(request.poll_ms) } else { polls::DEFAULT_LATENCY_MS };
            let outcome = stream::read(&client, &full_id, 0, interval, on_stream, METHOD).await;
            drop(turn);
            return match outcome {
                Ok(result) => callbacks.respond(result),
                Err(e) => callbacks.fail(e),
            };
        }
        if request.poll_ms > 0.0 {
            let outcome = polls::poll_until_done(&client, &full_id, polls::interval(request.poll_ms), request.response_type).await;
            drop(turn);
            return match outcome {
                Ok(answer) => callbacks.respond(answer),
                Err(e) => callbacks.fail(e.into_js(METHOD)),
            };
        }
        drop(turn);
        let poll = polls::poll_function(client.clone(), registry, full_id, request.queue.clone(), callbacks.clone(), request.response_type, METHOD);
        js::set(&accepted, "poll", &poll);
        callbacks.respond(accepted)
    })
}

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

/// `cancelClientSecretRequest({url, method, id})`: `{removed, message}`.
pub async fn cancel(client: Rc<Client>, params: JsValue) -> Result<JsValue, JsValue> {
    const NAME: &str = "cancelClientSecretRequest()";
    let full_id = full_id(&client, js::text(&params, "id"), &params).map_err(|e| SdkError::from(e).into_js(NAME))?;
    let body = PollBody { id: Some(full_id), ..client.poll_body() };
    client.post("csr-cancel", &body).await.map_err(|e| e.into_js(NAME))
}

/// A stream reading's `since` or `poll` option: a non-negative number, `default` when absent.
fn option_number(options: &JsValue, key: &str, default: f64) -> Result<f64, ApiError> {
    Ok(rules::opt_number(&Js(options.clone()), key, None)?.unwrap_or(default))
}

/// `clientSecretRequestStream(requestId, {url, method, onStream, since, poll, onResponse,
/// onError})`: reads a stream by id, from chunk `since` on; the promise has `stop()`.
pub fn read_stream(client: Rc<Client>, polls: Rc<PollRegistry>, request_id: JsValue, options: JsValue) -> js_sys::Promise {
    const NAME: &str = "clientSecretRequestStream()";
    let checked = full_id(&client, request_id.as_string(), &options).and_then(|full_id| {
        let since = option_number(&options, "since", 0.0)?;
        let poll = option_number(&options, "poll", polls::DEFAULT_LATENCY_MS.into())?;
        Ok((full_id, since as u64, if poll > 0.0 { polls::interval(poll) } else { polls::DEFAULT_LATENCY_MS }))
    });
    let (full_id, since, interval) = match checked {
        Ok(checked) => checked,
        Err(e) => return reject(e, NAME),
    };
    let (callbacks, on_stream) = (Callbacks::from(&options), js::function(&options, "onStream"));
    let abort = polls::Abort::of(&options, &client);
    polls::stoppable(&polls, Some(full_id.clone()), None, abort, move |_| async move {
        match stream::read(&client, &full_id, since, interval, on_stream, NAME).await {
            Ok(result) => callbacks.respond(result),
            Err(e) => callbacks.fail(e),
        }
    })
}

/// `clientSecretRequestFinalize(requestId, data?, {url, method})`: `{finalized, message}`.
pub async fn finalize(client: Rc<Client>, request_id: JsValue, data: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    const NAME: &str = "clientSecretRequestFinalize()";
    let full_id = full_id(&client, request_id.as_string(), &options).map_err(|e| SdkError::from(e).into_js(NAME))?;
    let data = (!data.is_undefined() && !data.is_null()).then_some(Js(data));
    let body = FinalizeBody { service: Some(client.service.clone()), owner: Some(client.owner.clone()), id: Some(full_id), data };
    client.post("csr-finalize", &body).await.map_err(|e| e.into_js(NAME))
}

/// `clientSecretRequestQueueCount({queue})`: `{queue_name, in_queue}`.
pub async fn queue_count(client: Rc<Client>, params: JsValue) -> Result<JsValue, JsValue> {
    const NAME: &str = "clientSecretRequestQueueCount()";
    let queue = js::text(&params, "queue").ok_or_else(|| SdkError::from(ApiError::invalid_parameter("\"queue\" is required.")).into_js(NAME))?;
    let body = PollBody { queue: Some(queue + ":"), ..client.poll_body() };
    client.post("csr-poll", &body).await.map_err(|e| e.into_js(NAME))
}

/// `stopClientSecretPolling({url?, method?, id?, queue?}?)`: how many polls were stopped.
pub fn stop_polling(client: &Client, polls: &PollRegistry, params: &JsValue) -> usize {
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
    polls.stop(&selector)
}
