//! Waiting: a future that resolves after a delay, its `setTimeout` cleared when it is dropped
//! (a stopped poll leaves no timer behind).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    /// `[promise, handle]`
    fn after(ms: u32) -> js_sys::Array;
    fn cancel(handle: &JsValue);
}

pub struct Sleep {
    handle: Option<JsValue>,
    done: JsFuture,
}

/// Resolves after `ms` milliseconds.
pub fn sleep(ms: u32) -> Sleep {
    let timer = after(ms.min(i32::MAX as u32));
    Sleep { handle: Some(timer.get(1)), done: JsFuture::from(js_sys::Promise::from(timer.get(0))) }
}
impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match Pin::new(&mut self.done).poll(cx) {
            Poll::Ready(_) => {
                self.handle = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            cancel(handle);
        }
    }
}
