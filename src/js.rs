//! Small conversions between JS values and JSON.

use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

/// `obj[key]`, or `undefined`.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    js_sys::Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn set(obj: &JsValue, key: &str, value: &JsValue) {
    // Only fails on frozen objects or non-objects, which this crate never passes.
    let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
}

/// `obj[key]` when it is a function.
pub fn function(obj: &JsValue, key: &str) -> Option<js_sys::Function> {
    get(obj, key).dyn_into::<js_sys::Function>().ok()
}

/// A JS value as JSON (functions and `undefined` dropped, as `JSON.stringify` does).
pub fn to_json(value: &JsValue) -> Option<Value> {
    if value.is_undefined() {
        return None;
    }
    let text = js_sys::JSON::stringify(value).ok()?.as_string()?;
    serde_json::from_str(&text).ok()
}

/// A Rust value as a fresh JS value.
pub fn from_serde<T: Serialize>(value: &T) -> JsValue {
    let text = serde_json::to_string(value).expect("wire values serialise");
    js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
}

/// A JS promise for a Rust future. Every future is boxed to one type first, so the promise
/// machinery is compiled once rather than once per caller (it is most of the wasm's glue).
pub fn promise(future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>> = Box::pin(future);
    wasm_bindgen_futures::future_to_promise(boxed)
}
