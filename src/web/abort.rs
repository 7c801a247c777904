//! A caller's `AbortSignal`, watched: a function to run when it aborts, its listener removed
//! when the watch is dropped.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::AbortSignal;

/// `value` when it is an `AbortSignal`.
pub fn signal_of(value: &JsValue) -> Option<AbortSignal> {
    value.dyn_ref::<AbortSignal>().cloned()
}

pub struct Watch {
    signal: AbortSignal,
    listener: Closure<dyn FnMut()>,
}

impl Watch {
    /// Runs `on_abort` once `signal` aborts (the caller checks `signal.aborted()` first).
    pub fn new(signal: &AbortSignal, on_abort: Box<dyn FnOnce()>) -> Watch {
        let mut on_abort = Some(on_abort);
        let listener = Closure::<dyn FnMut()>::new(move || {
            if let Some(f) = on_abort.take() {
                f();
            }
        });
        // A signal aborts once; the listener is removed when the watch is dropped.
        let _ = signal.add_event_listener_with_callback("abort", listener.as_ref().unchecked_ref());
        Watch { signal: signal.clone(), listener }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.signal.remove_event_listener_with_callback("abort", self.listener.as_ref().unchecked_ref());
    }
}
