//! `clientSecretRequest` (and the sending half of `forwardRequest`): check, send to `csr`, then
//! poll, read the stream or hand back a pending result.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::reject;
use crate::files;
use crate::identity;
use crate::js::{self, Js};
use crate::poll;
use crate::stream;
use crate::tasks::{self, Abort, Task, Tasks};
use crate::turns::{Turn, Turns};
use crate::web::bytes;
use skapi_core::request::{self as rules, Door, Units};
use skapi_core::tree::{Kind, Tree};
use skapi_core::wire::CsrBody;
use skapi_core::{encoding, id, upload, ApiError};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const METHOD: &str = "clientSecretRequest()";

/// The largest multipart body Skapi's SDK sends, in base64 characters: 2 MB less room for
/// the rest of the request.
const MAX_MULTIPART_B64: usize = 2 * 1024 * 1024 - 64 * 1024;

/// How a request came, besides its params.
pub struct How {
    pub door: Door,
    /// The JS method called, which names its errors.
    pub method: &'static str,
    pub callbacks: Callbacks,
    /// A form's `action`: where to go with the response.
    pub action: Option<String>,
    /// False for a form without files, whose `data` is looked through no further.
    pub may_hold_bytes: bool,
    /// `forwardRequest`'s `multipart: true`: the form itself is the body.
    pub multipart: Option<web_sys::FormData>,
}

/// `params[key]` as the wire carries it: an object or array as the page wrote it, else absent.
fn nested(params: &Js, key: &str) -> Option<Js> {
    params.field(key, |v| v.filter(|v| matches!(v.kind(), Kind::Object | Kind::Array)).cloned())
}

/// `clientSecretRequest(params | SubmitEvent | HTMLFormElement | FormData)`: checked at once;
/// calls sharing a queue run in call order. A form with an `action` goes there with the
/// response once it resolves.
pub fn client_secret_request(client: Rc<Client>, tasks: Rc<Tasks>, turns: &Turns, params: JsValue) -> js_sys::Promise {
    let how =
        How { door: Door::ClientSecretRequest, method: METHOD, callbacks: Callbacks::default(), action: None, may_hold_bytes: true, multipart: None };
    let (params, how) = match crate::form::read(&params) {
        Some(form) => match skapi_core::form::build(form.fields) {
            Ok(node) => (crate::form::to_js(&node, Some(&form.files)), How { action: form.action, may_hold_bytes: !form.files.is_empty(), ..how }),
            Err(e) => return reject(e, METHOD),
        },
        None => {
            let callbacks = Callbacks::from(&params);
            (params, How { callbacks, ..how })
        }
    };
    send(client, tasks, turns, Js(params), how)
}

/// `skapiHeaders` as the wire carries it: `true`/`false`, or `{user, service}` as booleans.
fn skapi_headers(params: &Js) -> Option<Js> {
    let value = js::get(&params.0, "skapiHeaders");
    if value.as_bool().is_some() {
        return Some(Js(value));
    }
    value.is_object().then(|| {
        let which = js_sys::Object::new();
        for key in ["user", "service"] {
            js::set(&which, key, &js::get(&value, key).is_truthy().into());
        }
        Js(which.into())
    })
}

/// Checks and sends `params`; with a form's `action`, goes there with the response.
pub fn send(client: Rc<Client>, tasks: Rc<Tasks>, turns: &Turns, params: Js, how: How) -> js_sys::Promise {
    let How { door, method, callbacks, action, may_hold_bytes, multipart } = how;
    // Errors in the params reject before any network call (and, as in skapi-js, skip onError).
    let mut request = match rules::check_at(&params, Units::Js, door) {
        Ok(checked) => checked,
        Err(e) => return reject(e, method),
    };
    if multipart.is_some() && !request.method.has_body() {
        return reject(ApiError::invalid_parameter("\"multipart\": true needs a method with a body (POST, PUT, PATCH)."), method);
    }
    // `data` itself may be bytes (a Blob, an ArrayBuffer, a typed array): the body as it is. A
    // file inside `data` would go out as `{}`: refused, naming where it is.
    // Files inside `data` go as parts of a multipart `csr`, markers standing in their places.
    let data = js::get(&params.0, "data");
    let found = if may_hold_bytes { files::bytes_at(&data) } else { None };
    let (raw, files) = match (multipart, found.as_deref()) {
        (Some(form), _) => (Some(Raw::Form(form)), None),
        (None, None) => (None, None),
        (None, Some("data")) => (Some(Raw::Bytes(data)), None),
        (None, Some(path)) if !files::is_multipart(&js::get(&params.0, "headers")) => return reject(upload::not_multipart(path), method),
        (None, Some(_)) => (None, Some(files::take_files(&data))),
    };
    if request.stream && request.queue.is_none() {
        // As Skapi's SDK: every stream has a queue.
        let user = client.tokens.borrow().as_ref().and_then(|t| js::text(&t.claims, "sub"));
        request.queue = Some(id::stream_queue(user.as_deref(), &identity::random_alphanumerics::<6>()));
    }
    let body: CsrBody<Js> = CsrBody {
        service: Some(client.service.clone()),
        owner: Some(client.owner.clone()),
        url: Some(request.url.clone()),
        // Each door sends the name its Skapi SDK sends.
        client_secret_name: request.client_secret_name.clone().filter(|_| door == Door::ClientSecretRequest),
        secret_name: request.client_secret_name.clone().filter(|_| door == Door::ForwardRequest),
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
        skapi_headers: skapi_headers(&params),
        response_type: request.response_type.map(|t| t.as_str().to_owned()),
        ..Default::default()
    };
    let turn = request.queue.as_deref().map(|q| turns.take(q));
    // Through `forwardRequest` a signal only stops this page's work, as in Skapi's SDK.
    let abort = Abort::of(&params.0, &client).map(|a| Abort { cancels: door == Door::ClientSecretRequest, ..a });
    let queue = request.queue.clone();
    let on_stream = js::function(&params.0, "onStream");
    let files = files.map(|(_, files)| files);
    let outgoing = Outgoing { client, tasks: tasks.clone(), request, body, raw, files, turn, callbacks, on_stream, action, method };
    tasks::spawn(&tasks, None, queue, abort, move |task| outgoing.run(task))
}

/// A body sent as it is (`body_b64`): bytes `data` was, or a form as multipart.
enum Raw {
    Bytes(JsValue),
    Form(web_sys::FormData),
}

/// A checked request on its way: what its task needs once it starts.
struct Outgoing {
    client: Rc<Client>,
    tasks: Rc<Tasks>,
    request: rules::Checked,
    body: CsrBody<Js>,
    /// Sent as `body_b64`.
    raw: Option<Raw>,
    /// The files taken out of `data`: parts of a multipart `csr`.
    files: Option<js_sys::Array>,
    /// Its place in its queue, given up once it has its answer.
    turn: Option<Turn>,
    callbacks: Callbacks,
    on_stream: Option<js_sys::Function>,
    /// A form's `action`: where to go with the response.
    action: Option<String>,
    /// The JS method it was called through, which names its errors.
    method: &'static str,
}

impl Outgoing {
    async fn run(mut self, task: Rc<Task>) -> Result<JsValue, JsValue> {
        let response = self.exchange(&task).await?;
        if let Some(action) = &self.action {
            crate::form::go_to_action(&self.client.service, action, &response)?;
        }
        Ok(response)
    }

    /// Its turn, the `csr`, then its answer: as it came, streamed, polled for, or pending.
    async fn exchange(&mut self, task: &Task) -> Result<JsValue, JsValue> {
        if let Some(turn) = self.turn.as_mut() {
            turn.wait().await;
        }
        let (client, request, callbacks, method) = (&self.client, &self.request, &self.callbacks, self.method);
        if let Some(raw) = &self.raw {
            // Skapi's wire form for bytes: base64 beside the content type.
            let (bytes, content_type) = match raw {
                Raw::Bytes(value) => bytes::read(&bytes::as_blob(value)?).await?,
                // The browser's own encoding of the form.
                Raw::Form(form) => bytes::multipart(form).await?,
            };
            let b64 = encoding::base64(&bytes, encoding::BASE64);
            if matches!(raw, Raw::Form(_)) && b64.len() > MAX_MULTIPART_B64 {
                let message = [
                    "Multipart body is too large: ",
                    &skapi_core::text::decimal(b64.len() as u64),
                    " bytes once base64 encoded, and the limit is ",
                    &skapi_core::text::decimal(MAX_MULTIPART_B64 as u64),
                    ". Upload the file first and send its url instead.",
                ]
                .concat();
                return Err(crate::SdkError::from(ApiError::invalid_parameter(message)).into_js(method));
            }
            self.body.body_b64 = Some(b64);
            self.body.body_content_type = Some(content_type).filter(|t| !t.is_empty());
        }
        let accepted = match client.post_with_files("csr", &self.body, self.files.as_ref()).await {
            Ok(answer) => answer,
            Err(e) => return callbacks.fail(e.into_js(method)),
        };
        let Some(short) = poll::unfinished_id(&accepted) else {
            // Anything else (e.g. a backend that answers at once) goes back as it is.
            return callbacks.respond(accepted);
        };
        let full_id = id::full(&id::key_v2_of_lowered(request.method, &js::lower(&request.url), &client.service), &short);
        *task.full_id.borrow_mut() = Some(full_id.clone());

        if request.stream {
            let interval = if request.poll_ms > 0.0 { poll::interval(request.poll_ms) } else { poll::DEFAULT_LATENCY_MS };
            let outcome = stream::read(client, &full_id, 0, interval, self.on_stream.take(), method).await;
            self.turn = None;
            return match outcome {
                Ok(result) => callbacks.respond(result),
                Err(e) => callbacks.fail(e),
            };
        }
        if request.poll_ms > 0.0 {
            let outcome = poll::until_done(client, &full_id, poll::interval(request.poll_ms), request.response_type).await;
            self.turn = None;
            return match outcome {
                Ok(done) => callbacks.respond_with(done.answer, done.executed),
                Err(e) => callbacks.fail(e.into_js(method)),
            };
        }
        self.turn = None;
        let poll =
            poll::poll_function(client.clone(), self.tasks.clone(), full_id, request.queue.clone(), callbacks.clone(), request.response_type, method);
        js::set(&accepted, "poll", &poll);
        callbacks.respond(accepted)
    }
}
