//! The browser's APIs, through web-sys: one module per concern. What the SDK does with them
//! (the request flows) is the rest of the crate.

pub mod abort;
pub mod bytes;
pub mod fetch;
pub mod form;
pub mod random;
pub mod storage;

use wasm_bindgen::JsValue;

/// The page's window: the SDK runs in a page (its fetch, storage, forms and location).
pub fn window() -> Result<web_sys::Window, JsValue> {
    web_sys::window().ok_or_else(|| JsValue::from_str("no window"))
}
