//! `clientSecretRequest`: check, send to `csr`, then poll, read the stream or hand back a
//! pending result.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::SdkError;
use crate::files;
use crate::identity;
use crate::js::{self, Js};
use crate::poll;
use crate::stream;
use crate::tasks::{self, Abort, Tasks};
use crate::turns::Turns;
use crate::web::bytes;
use skapi_core::request::{self as rules, Units};
use skapi_core::tree::{Kind, Tree};
use skapi_core::wire::CsrBody;
use skapi_core::{encoding, id, upload, ApiError};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const METHOD: &str = "clientSecretRequest()";

pub fn reject(e: ApiError, method: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&SdkError::from(e).into_js(method))
}

/// `params[key]` as the wire carries it: an object or array as the page wrote it, else absent.
fn nested(params: &Js, key: &str) -> Option<Js> {
    params.field(key, |v| v.filter(|v| matches!(v.kind(), Kind::Object | Kind::Array)).cloned())
}

/// `clientSecretRequest(params | SubmitEvent | HTMLFormElement | FormData)`: checked at once;
/// calls sharing a queue run in call order. A form with an `action` goes there with the
/// response once it resolves.
pub fn client_secret_request(client: Rc<Client>, tasks: Rc<Tasks>, turns: &Turns, params: JsValue) -> js_sys::Promise {
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
        return send(client, tasks, turns, Js(params), callbacks);
    };
    let sent = send(client.clone(), tasks, turns, Js(params), callbacks);
    crate::form::go_to_action_after(sent, &client.service, action)
}

fn send(client: Rc<Client>, tasks: Rc<Tasks>, turns: &Turns, params: Js, callbacks: Callbacks) -> js_sys::Promise {
    // Errors in the params reject before any network call (and, as in skapi-js, skip onError).
    let mut request = match rules::check(&params, Units::Js) {
        Ok(checked) => checked,
        Err(e) => return reject(e, METHOD),
    };
    // `data` itself may be bytes (a Blob, an ArrayBuffer, a typed array): the body as it is. A
    // file inside `data` would go out as `{}`: refused, naming where it is.
    // Files inside `data` go as parts of a multipart `csr`, markers standing in their places.
    let data = js::get(&params.0, "data");
    let (raw, files) = match files::bytes_at(&data).as_deref() {
        None => (None, None),
        Some("data") => (Some(data), None),
        Some(path) if !files::is_multipart(&js::get(&params.0, "headers")) => return reject(upload::not_multipart(path), METHOD),
        Some(_) => (None, Some(files::take_files(&data))),
    };
    if request.stream && request.queue.is_none() {
        // As Skapi's SDK: every stream has a queue.
        let user = client.tokens.borrow().as_ref().and_then(|t| js::text(&t.claims, "sub"));
        request.queue = Some(id::stream_queue(user.as_deref(), &identity::random_alphanumerics::<6>()));
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
            (_, Some((marked, _))) => Some(Js(marked.clone())),
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
    let registry = tasks.clone();
    let abort = Abort::of(&params.0, &client);
    tasks::spawn(&tasks, None, request.queue.clone(), abort, move |task| async move {
        let mut turn = turn;
        if let Some(turn) = turn.as_mut() {
            turn.wait().await;
        }
        if let Some(raw) = raw {
            // Skapi's wire form for bytes: base64 beside the content type.
            let (bytes, content_type) = bytes::read(&bytes::as_blob(&raw)?).await?;
            body.body_b64 = Some(encoding::base64(&bytes, encoding::BASE64));
            body.body_content_type = Some(content_type).filter(|t| !t.is_empty());
        }
        let files = files.map(|(_, files)| files);
        let accepted = match client.post_with_files("csr", &body, files.as_ref()).await {
            Ok(answer) => answer,
            Err(e) => return callbacks.fail(e.into_js(METHOD)),
        };
        let Some(short) = poll::unfinished_id(&accepted) else {
            // Anything else (e.g. a backend that answers at once) goes back as it is.
            return callbacks.respond(accepted);
        };
        let full_id = id::full(&id::key_v2_of_lowered(request.method, &js::lower(&request.url), &client.service), &short);
        *task.full_id.borrow_mut() = Some(full_id.clone());

        if request.stream {
            let interval = if request.poll_ms > 0.0 { poll::interval(request.poll_ms) } else { poll::DEFAULT_LATENCY_MS };
            let outcome = stream::read(&client, &full_id, 0, interval, on_stream, METHOD).await;
            drop(turn);
            return match outcome {
                Ok(result) => callbacks.respond(result),
                Err(e) => callbacks.fail(e),
            };
        }
        if request.poll_ms > 0.0 {
            let outcome = poll::until_done(&client, &full_id, poll::interval(request.poll_ms), request.response_type).await;
            drop(turn);
            return match outcome {
                Ok(answer) => callbacks.respond(answer),
                Err(e) => callbacks.fail(e.into_js(METHOD)),
            };
        }
        drop(turn);
        let poll = poll::poll_function(client.clone(), registry, full_id, request.queue.clone(), callbacks.clone(), request.response_type, METHOD);
        js::set(&accepted, "poll", &poll);
        callbacks.respond(accepted)
    })
}
