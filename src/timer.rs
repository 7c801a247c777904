//! Waiting: a future that resolves after a delay, its `setTimeout` cleared when it is dropped
//! (a stopped poll leaves no timer behind).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

pub struct Sleep {
    handle: Option<i32>,
    done: JsFuture,
}

/// Resolves after `ms` milliseconds.
pub fn sleep(ms: u32) -> Sleep {
    let mut handle = None;
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        handle =
            web_sys::window().and_then(|w| w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.min(i32::MAX as u32) as i32).ok());
        if handle.is_none() {
            // No window to time with: go on at once rather than never.
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    Sleep { handle, done: JsFuture::from(promise) }
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
        if let (Some(handle), Some(window)) = (self.handle, web_sys::window()) {
            window.clear_timeout_with_handle(handle);
        }
    }
}
