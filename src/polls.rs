//! Polling: stoppable polls and the loop that polls one request until it finishes. Each running
//! poll is registered with its full id and queue, so `stopClientSecretPolling` can find it, and
//! its promise carries `stop()`. A stopped poll resolves `{id, status: 'stopped'}` and calls no
//! callback; its timer and closures are dropped with its future.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use skapi_core::request::ResponseType;
use skapi_core::wire::{Status, StatusEnvelope};
use skapi_core::{id, ErrorCode};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use wasm_bindgen::prelude::*;

/// skapi-js's interval when `poll()` is called without one.
pub const DEFAULT_LATENCY_MS: u32 = 1000;

pub struct PollEntry {
    /// Known once the server has answered with an id.
    pub full_id: RefCell<Option<String>>,
    pub queue: Option<String>,
    stop: Rc<StopSignal>,
}

/// Set by `stop()` or the caller's `AbortSignal`: the poll's future ends at its next wake-up,
/// dropping its timer and fetch.
#[derive(Default)]
struct StopSignal {
    stopped: Cell<bool>,
    /// Stopped by an `AbortSignal` (the promise then rejects, and the request is cancelled).
    aborted: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl StopSignal {
    fn stop(&self, aborted: bool) {
        self.aborted.set(aborted);
        self.stopped.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// A future that ends with `Err(())` as soon as its signal is set.
struct Stoppable {
    work: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>,
    signal: Rc<StopSignal>,
}

impl Future for Stoppable {
    type Output = Result<Result<JsValue, JsValue>, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.signal.stopped.get() {
            return Poll::Ready(Err(()));
        }
        *self.signal.waker.borrow_mut() = Some(cx.waker().clone());
        self.work.as_mut().poll(cx).map(Ok)
    }
}

// `stop()` is one long-lived function per client called with the poll's token, so a poll
// allocates no closure of its own (nothing waits on the garbage collector to be freed).
#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = attachStop)]
    fn attach_stop(promise: &js_sys::Promise, stop: &JsValue, token: f64);
    /// `answer` as `responseType` asks (`arrayBuffer`, `blob`, `text`; `json`: as it is).
    #[wasm_bindgen(js_name = shapeAnswer)]
    fn shape_answer(answer: JsValue, response_type: &str) -> JsValue;
    /// Calls `stop(token, true)` when `signal` aborts.
    #[wasm_bindgen(js_name = watchAbort)]
    fn watch_abort(signal: &JsValue, stop: &JsValue, token: f64);
    /// What a stopped poll resolves with: `{id, status: 'stopped'}`.
    fn stopped(full_id: Option<String>) -> JsValue;
}

pub struct PollRegistry {
    next: Cell<u64>,
    /// By token, in increasing order (tokens only grow).
    entries: RefCell<Vec<(u64, Rc<PollEntry>)>>,
    /// `(token, aborted) => stop that poll`
    stop_fn: JsValue,
}

/// What `stopClientSecretPolling` selects.
pub enum Selector {
    Ids(Vec<String>),
    Queue(String),
    All,
}

impl PollRegistry {
    pub fn new() -> Rc<PollRegistry> {
        Rc::new_cyclic(|registry: &std::rc::Weak<PollRegistry>| {
            let registry = registry.clone();
            let stop = move |token: f64, aborted: bool| {
                if let Some(entry) = registry.upgrade().and_then(|r| r.take(token as u64)) {
                    entry.stop.stop(aborted);
                }
            };
            PollRegistry { next: Cell::new(0), entries: RefCell::default(), stop_fn: Closure::<dyn FnMut(f64, bool)>::new(stop).into_js_value() }
        })
    }

    /// Removes the poll with `token` from the registry.
    fn take(&self, token: u64) -> Option<Rc<PollEntry>> {
        let mut entries = self.entries.borrow_mut();
        let at = entries.binary_search_by_key(&token, |(t, _)| *t).ok()?;
        Some(entries.remove(at).1)
    }

    /// Stops the polls `selector` names; returns how many.
    pub fn stop(&self, selector: &Selector) -> usize {
        let chosen = |e: &PollEntry| match selector {
            Selector::All => true,
            Selector::Queue(q) => e.queue.as_deref() == Some(q.as_str()),
            Selector::Ids(ids) => e.full_id.borrow().as_ref().is_some_and(|id| ids.contains(id)),
        };
        let mut stopped = Vec::new();
        self.entries.borrow_mut().retain(|(_, e)| {
            let stop = chosen(e);
            if stop {
                stopped.push(e.clone());
            }
            !stop
        });
        // Signalled outside the borrow: a stopped future touches the registry as it ends.
        for entry in &stopped {
            entry.stop.stop(false);
        }
        stopped.len()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// What aborts a poll: the caller's `AbortSignal`, and the client that cancels the request on
/// the server.
pub struct Abort {
    pub signal: JsValue,
    pub client: Rc<Client>,
}

impl Abort {
    /// `options.signal`, when `options` names one.
    pub fn of(options: &JsValue, client: &Rc<Client>) -> Option<Abort> {
        let signal = if options.is_object() { js::get(options, "signal") } else { JsValue::UNDEFINED };
        signal.is_object().then(|| Abort { signal, client: client.clone() })
    }
}

/// The rejection of an aborted call: a `SkapiError` named `AbortError`, code `CANCELED`.
pub fn aborted() -> JsValue {
    SdkError::new(ErrorCode::Canceled, "The request was aborted.").into_js_as("AbortError")
}

/// Runs `work` as a stoppable poll and returns its promise, with `stop()` on it; `abort`
/// rejects it at once (before anything is sent when the signal is aborted already) and
/// cancels the request on the server.
pub fn stoppable<F, W>(polls: &Rc<PollRegistry>, full_id: Option<String>, queue: Option<String>, abort: Option<Abort>, work: W) -> js_sys::Promise
where
    W: FnOnce(Rc<PollEntry>) -> F,
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    if abort.as_ref().is_some_and(|a| js::get(&a.signal, "aborted").is_truthy()) {
        return js_sys::Promise::reject(&aborted());
    }
    let signal = Rc::new(StopSignal::default());
    let entry = Rc::new(PollEntry { full_id: RefCell::new(full_id), queue, stop: signal.clone() });
    let work = Box::pin(work(entry.clone()));
    run(polls, entry, Stoppable { work, signal }, abort)
}

/// The part of [`stoppable`] that does not depend on the work's type (compiled once).
fn run(polls: &Rc<PollRegistry>, entry: Rc<PollEntry>, future: Stoppable, abort: Option<Abort>) -> js_sys::Promise {
    let token = polls.next.get();
    polls.next.set(token + 1);
    polls.entries.borrow_mut().push((token, entry.clone()));
    if let Some(abort) = &abort {
        watch_abort(&abort.signal, &polls.stop_fn, token as f64);
    }
    let registry = polls.clone();
    let promise = js::promise(async move {
        let outcome = future.await;
        registry.take(token);
        let full_id = entry.full_id.borrow().clone();
        match (outcome, abort) {
            (Ok(result), _) => result,
            (Err(()), Some(abort)) if entry.stop.aborted.get() => {
                if let Some(id) = full_id {
                    // Cancelled on the server by `cancelClientSecretRequest` itself (a finished
                    // request is left as it is); the promise does not wait for it.
                    let params = js_sys::Object::new();
                    js::set(&params, "id", &id.into());
                    let _ = js::promise(crate::request::cancel(abort.client, params.into()));
                }
                Err(aborted())
            }
            (Err(()), _) => Ok(stopped(full_id)),
        }
    });
    attach_stop(&promise, &polls.stop_fn, token as f64);
    promise
}

/// The id of the request whose unfinished status envelope `answer` is, if it is one.
pub fn unfinished_id(answer: &JsValue) -> Option<String> {
    js::read::<StatusEnvelope>(answer).filter(|e| matches!(e.status, Status::Pending | Status::Running)).map(|e| e.id)
}

/// True when `answer` is the status envelope of request `short` that has not finished — and
/// not a third-party body that merely looks like one.
pub fn is_unfinished(answer: &JsValue, short: &str) -> bool {
    unfinished_id(answer).is_some_and(|id| id == short)
}

/// `answer` as `response_type` asks.
pub fn shaped(answer: JsValue, response_type: Option<ResponseType>) -> JsValue {
    match response_type {
        Some(t) => shape_answer(answer, t.as_str()),
        None => answer,
    }
}

/// Polls a full id every `interval_ms` until it finishes; the third party's answer (as
/// `response_type` asks), or the failure as an error.
pub async fn poll_until_done(client: &Client, full_id: &str, interval_ms: u32, response_type: Option<ResponseType>) -> Result<JsValue, SdkError> {
    let short = id::split_full(full_id).map(|(_, s)| s.to_owned()).unwrap_or_default();
    let mut body = client.poll_body();
    body.id = Some(full_id.to_owned());
    loop {
        crate::timer::sleep(interval_ms).await;
        let answer = client.post("csr-poll", &body).await?;
        if !is_unfinished(&answer, &short) {
            return Ok(shaped(answer, response_type));
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
    polls: Rc<PollRegistry>,
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
        stoppable(&polls, Some(full_id.clone()), queue.clone(), abort, move |_| async move {
            match poll_until_done(&client, &full_id2, interval, response_type).await {
                Ok(answer) => callbacks.respond(answer),
                Err(e) => callbacks.fail(e.into_js(method)),
            }
        })
    };
    Closure::<dyn FnMut(JsValue) -> js_sys::Promise>::new(poll).into_js_value()
}
