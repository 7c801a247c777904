//! Helpers shared by the browser tests.
#![allow(dead_code)]

use js_sys::{Promise, Reflect, JSON};
use serde_json::{json, Value};
use skapi_wasm::Skapi;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

pub const SERVICE: &str = "svc-browser";
pub const OWNER: &str = "owner-browser";

pub fn endpoint() -> &'static str {
    option_env!("SKAPI_TEST_ENDPOINT").expect("run through scripts/test-browser.sh (SKAPI_TEST_ENDPOINT)")
}

pub fn stand_in() -> &'static str {
    option_env!("SKAPI_TEST_STANDIN").expect("run through scripts/test-browser.sh (SKAPI_TEST_STANDIN)")
}

pub fn skapi() -> Skapi {
    Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": endpoint()})))).unwrap()
}

pub fn js(v: Value) -> JsValue {
    JSON::parse(&v.to_string()).unwrap()
}

pub fn rust(v: &JsValue) -> Value {
    serde_json::from_str(&JSON::stringify(v).unwrap().as_string().unwrap()).unwrap()
}

pub fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap()
}

/// The seed's OpenAI images example, pointed at the stand-in.
pub fn seed(extra: Value) -> Value {
    let mut params = json!({
        "clientSecretName": "openai",
        "url": format!("{}/v1/images/generations", stand_in()),
        "method": "POST",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer $CLIENT_SECRET"},
        "data": {"model": "gpt-image-1.5", "prompt": "A cute baby sea otter", "n": 1, "size": "1024x1024"}
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

pub async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

pub fn assert_skapi_error(err: &JsValue, code: &str, name: &str) {
    assert!(err.is_instance_of::<js_sys::Error>(), "rejections are Error objects");
    assert_eq!(get(err, "code").as_string().as_deref(), Some(code), "{:?}", get(err, "message"));
    assert_eq!(get(err, "name").as_string().as_deref(), Some(name));
    assert!(get(err, "message").as_string().is_some_and(|m| !m.is_empty()));
}

/// A JS function that records its arguments, and the array it records them in.
pub fn recorder() -> (js_sys::Function, js_sys::Array) {
    let seen = js_sys::Array::new();
    let record = seen.clone();
    let f = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
        record.push(&v);
    });
    (f.into_js_value().unchecked_into(), seen)
}

/// `obj[name](arg)`
pub fn call(obj: &JsValue, name: &str, arg: &JsValue) -> JsValue {
    let f: js_sys::Function = get(obj, name).dyn_into().unwrap_or_else(|_| panic!("{name} is not a function"));
    f.call1(obj, arg).unwrap()
}

/// `obj[name](arg)`, a promise, awaited.
pub async fn call_async(obj: &JsValue, name: &str, arg: &JsValue) -> Result<JsValue, JsValue> {
    settle(call(obj, name, arg).dyn_into().expect("a promise")).await
}

pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Runs the garbage collector when the browser exposes it (`--js-flags=--expose-gc`), then
/// lets finalizers run.
pub async fn collect_garbage() {
    if let Ok(gc) = js_sys::Reflect::get(&js_sys::global(), &"gc".into()).and_then(|f| f.dyn_into::<js_sys::Function>()) {
        let _ = gc.call0(&JsValue::NULL);
    }
    sleep(50).await;
}
