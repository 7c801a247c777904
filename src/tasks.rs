//! Work a caller can stop: every request in flight, poll and stream reading runs as a task,
//! registered with its full id and queue so `stopClientSecretPolling` can find it, its promise
//! carrying `stop()`. Stopping aborts the task's future (futures' `Abortable`): its timer,
//! fetch and callbacks are dropped with it, and the promise resolves `{id, status: 'stopped'}`
//! without calling a callback. The caller's `AbortSignal` ends it the same way, but the
//! promise rejects and the request is cancelled on the server.

use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use crate::web::abort::{self, Watch};
use futures_util::future::{AbortHandle, AbortRegistration, Abortable};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

/// One running task, as `stopClientSecretPolling` selects it.
pub struct Task {
    /// Known once the server has answered with an id.
    pub full_id: RefCell<Option<String>>,
    pub queue: Option<String>,
    handle: AbortHandle,
    /// Ended by the caller's `AbortSignal` (rather than `stop()`).
    by_signal: Cell<bool>,
}

/// What `stopClientSecretPolling` selects.
pub enum Selector {
    Ids(Vec<String>),
    Queue(String),
    All,
}

pub struct Tasks {
    next: Cell<u64>,
    /// By token, in increasing order (tokens only grow).
    entries: RefCell<Vec<(u64, Rc<Task>)>>,
    /// `stop(token)`: one function per client, bound to each task's token for its promise's
    /// `stop()`, so a task allocates no closure of its own.
    stop_fn: js_sys::Function,
}

impl Tasks {
    pub fn new() -> Rc<Tasks> {
        Rc::new_cyclic(|tasks: &std::rc::Weak<Tasks>| {
            let tasks = tasks.clone();
            let stop = move |token: f64| {
                if let Some(task) = tasks.upgrade().and_then(|t| t.take(token as u64)) {
                    task.handle.abort();
                }
            };
            Tasks { next: Cell::new(0), entries: RefCell::default(), stop_fn: Closure::<dyn Fn(f64)>::new(stop).into_js_value().into() }
        })
    }

    fn take(&self, token: u64) -> Option<Rc<Task>> {
        let mut entries = self.entries.borrow_mut();
        let at = entries.binary_search_by_key(&token, |(t, _)| *t).ok()?;
        let task = entries.get(at)?.1.clone();
        // `retain` rather than `remove(at)`: no panic path (its message formats numbers).
        entries.retain(|(t, _)| *t != token);
        Some(task)
    }

    /// Stops the tasks `selector` names; returns how many.
    pub fn stop(&self, selector: &Selector) -> usize {
        let chosen = |t: &Task| match selector {
            Selector::All => true,
            Selector::Queue(q) => t.queue.as_deref() == Some(q.as_str()),
            Selector::Ids(ids) => t.full_id.borrow().as_ref().is_some_and(|id| ids.contains(id)),
        };
        let mut stopped = 0;
        self.entries.borrow_mut().retain(|(_, t)| {
            let stop = chosen(t);
            if stop {
                t.handle.abort();
                stopped += 1;
            }
            !stop
        });
        stopped
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// What aborts a task: the caller's `AbortSignal`, and the client that cancels the request on
/// the server.
pub struct Abort {
    pub signal: web_sys::AbortSignal,
    pub client: Rc<Client>,
    /// Whether aborting rejects and cancels the request on the server (`clientSecretRequest`),
    /// or only stops this page's work, resolving `{id, status: 'stopped'}` (`forwardRequest`).
    pub cancels: bool,
}

impl Abort {
    /// `options.signal`, when `options` names one.
    pub fn of(options: &JsValue, client: &Rc<Client>) -> Option<Abort> {
        let signal = if options.is_object() { js::get(options, "signal") } else { JsValue::UNDEFINED };
        abort::signal_of(&signal).map(|signal| Abort { signal, client: client.clone(), cancels: true })
    }
}

type Work = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// Runs `work` as a task and returns its promise, with `stop()` on it; `abort` rejects it at
/// once (before anything is sent when the signal is aborted already) and cancels the request
/// on the server.
pub fn spawn<F, W>(tasks: &Rc<Tasks>, full_id: Option<String>, queue: Option<String>, abort: Option<Abort>, work: W) -> js_sys::Promise
where
    W: FnOnce(Rc<Task>) -> F,
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let Some((task, registration)) = prepare(full_id, queue, &abort) else {
        return js_sys::Promise::reject(&SdkError::aborted());
    };
    let work: Work = Box::pin(work(task.clone()));
    run(tasks, task, Abortable::new(work, registration), abort)
}

/// The task's entry and what stops it; `None` when its signal has aborted already. Apart from
/// [`spawn`] so that it is compiled once, not once per kind of work.
#[inline(never)]
fn prepare(full_id: Option<String>, queue: Option<String>, abort: &Option<Abort>) -> Option<(Rc<Task>, AbortRegistration)> {
    if abort.as_ref().is_some_and(|a| a.signal.aborted()) {
        return None;
    }
    let (handle, registration) = AbortHandle::new_pair();
    Some((Rc::new(Task { full_id: RefCell::new(full_id), queue, handle, by_signal: Cell::new(false) }), registration))
}

/// What [`spawn`] does once the work's type is erased (compiled once).
fn run(tasks: &Rc<Tasks>, task: Rc<Task>, work: Abortable<Work>, abort: Option<Abort>) -> js_sys::Promise {
    let token = tasks.next.get();
    tasks.next.set(token + 1);
    tasks.entries.borrow_mut().push((token, task.clone()));
    let registry = tasks.clone();
    let promise = js::promise(async move {
        let watch = abort.as_ref().map(|a| {
            let task = task.clone();
            Watch::new(
                &a.signal,
                Box::new(move || {
                    task.by_signal.set(true);
                    task.handle.abort();
                }),
            )
        });
        let outcome = work.await;
        drop(watch);
        registry.take(token);
        let full_id = task.full_id.borrow().clone();
        match (outcome, abort) {
            (Ok(result), _) => result,
            (Err(_), Some(abort)) if task.by_signal.get() && abort.cancels => {
                if let Some(id) = full_id {
                    // Cancelled on the server (a finished request is left as it is); the
                    // promise does not wait for it.
                    wasm_bindgen_futures::spawn_local(async move {
                        let _ = abort.client.cancel(id).await;
                    });
                }
                Err(SdkError::aborted())
            }
            (Err(_), _) => Ok(stopped(full_id)),
        }
    });
    js::set(&promise, "stop", &tasks.stop_fn.bind1(&JsValue::NULL, &(token as f64).into()));
    promise
}

/// What a stopped task resolves with: `{id, status: 'stopped'}`.
fn stopped(full_id: Option<String>) -> JsValue {
    let result = js_sys::Object::new();
    js::set(&result, "id", &full_id.map_or(JsValue::NULL, JsValue::from));
    js::set(&result, "status", &"stopped".into());
    result.into()
}
