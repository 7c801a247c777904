//! Polls that can be stopped: each running poll is registered with its full id and queue, so
//! `stopClientSecretPolling` can find it, and its promise carries `stop()`. A stopped poll
//! resolves `{id, status: 'stopped'}` and calls no callback; its timer and closures are dropped
//! with its future.

use crate::client::Client;
use crate::js;
use futures_util::future::{AbortHandle, Abortable};
use serde_json::json;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

pub struct PollEntry {
    /// Known once the server has answered with an id.
    pub full_id: RefCell<Option<String>>,
    pub queue: Option<String>,
    abort: AbortHandle,
}

// `stop()` is one long-lived function per client called with the poll's token, so a poll
// allocates no closure of its own (nothing waits on the garbage collector to be freed).
#[wasm_bindgen(inline_js = "export function attachStop(p, stop, token) { p.stop = () => stop(token); return p; }")]
extern "C" {
    #[wasm_bindgen(js_name = attachStop)]
    fn attach_stop(promise: &js_sys::Promise, stop: &JsValue, token: f64);
}

pub struct PollRegistry {
    next: Cell<u64>,
    entries: RefCell<HashMap<u64, Rc<PollEntry>>>,
    /// `(token) => stop that poll`
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
            let stop = move |token: f64| {
                if let Some(registry) = registry.upgrade() {
                    let entry = registry.entries.borrow_mut().remove(&(token as u64));
                    if let Some(entry) = entry {
                        entry.abort.abort();
                    }
                }
            };
            PollRegistry { next: Cell::new(0), entries: RefCell::new(HashMap::new()), stop_fn: Closure::<dyn FnMut(f64)>::new(stop).into_js_value() }
        })
    }

    /// Stops the polls `selector` names; returns how many.
    pub fn stop(&self, selector: &Selector) -> usize {
        let chosen: Vec<(u64, Rc<PollEntry>)> = self
            .entries
            .borrow()
            .iter()
            .filter(|(_, e)| match selector {
                Selector::All => true,
                Selector::Queue(q) => e.queue.as_deref() == Some(q.as_str()),
                Selector::Ids(ids) => e.full_id.borrow().as_ref().is_some_and(|id| ids.contains(id)),
            })
            .map(|(token, e)| (*token, e.clone()))
            .collect();
        let mut entries = self.entries.borrow_mut();
        for (token, entry) in &chosen {
            entries.remove(token);
            entry.abort.abort();
        }
        chosen.len()
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }
}

/// `{id, status: 'stopped'}`
pub fn stopped(full_id: Option<String>) -> JsValue {
    js::from_serde(&json!({"id": full_id, "status": "stopped"}))
}

/// Runs `work` as a stoppable poll and returns its promise, with `stop()` on it.
pub fn stoppable<F, W>(client: &Rc<Client>, full_id: Option<String>, queue: Option<String>, work: W) -> js_sys::Promise
where
    W: FnOnce(Rc<PollEntry>) -> F,
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let (abort, registration) = AbortHandle::new_pair();
    let entry = Rc::new(PollEntry { full_id: RefCell::new(full_id), queue, abort });
    let token = client.polls.next.get();
    client.polls.next.set(token + 1);
    client.polls.entries.borrow_mut().insert(token, entry.clone());
    let work: std::pin::Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(work(entry.clone()));
    let future = Abortable::new(work, registration);
    let registry_owner = client.clone();
    let promise = js::promise(async move {
        let outcome = future.await;
        registry_owner.polls.entries.borrow_mut().remove(&token);
        match outcome {
            Ok(result) => result,
            Err(_aborted) => Ok(stopped(entry.full_id.borrow().clone())),
        }
    });
    attach_stop(&promise, &client.polls.stop_fn, token as f64);
    promise
}
