//! A form as a request: its fields (read by `web::form`) nested into the params object by
//! `skapi_core::form`, and a form with an `action` sent on to that page with its response, as
//! skapi-js does.

use crate::js;
use crate::web::{self, storage};
use skapi_core::form::Node;
use wasm_bindgen::JsValue;

pub use crate::web::form::{read, source, Source};

/// The params a form made, as the JS object an object call would have passed: its files where
/// the form placed them, or — with no `files` — left out.
pub fn to_js(node: &Node, files: Option<&[JsValue]>) -> JsValue {
    let kept = |node: &&Node| files.is_some() || !matches!(node, Node::File(_));
    match node {
        Node::Null => JsValue::NULL,
        Node::Text(s) => JsValue::from_str(s),
        Node::Number(n) => JsValue::from_f64(*n),
        Node::Bool(b) => JsValue::from_bool(*b),
        Node::File(n) => files.and_then(|f| f.get(*n)).cloned().unwrap_or(JsValue::NULL),
        Node::Array(items) => items.iter().filter(kept).map(|item| to_js(item, files)).collect::<js_sys::Array>().into(),
        // Own data properties (a field named `__proto__[x]` makes a key `__proto__`, as JSON
        // would), defined in one call.
        Node::Object(entries) => {
            let entries: js_sys::Array =
                entries.iter().filter(|(_, value)| kept(&value)).map(|(key, value)| js_sys::Array::of2(&key.into(), &to_js(value, files))).collect();
            js_sys::Object::from_entries(&entries).map_or(JsValue::NULL, JsValue::from)
        }
    }
}

/// Where a form's response waits for its action page: per service and page (its URL without
/// query or fragment).
fn response_key(service: &str, url: &str) -> String {
    let page = url.bytes().position(|b| b == b'?' || b == b'#').and_then(|end| url.get(..end)).unwrap_or(url);
    ["skapi:form-response:", service, ":", page].concat()
}

/// Keeps `response` for the action page and goes there, as skapi-js does.
pub fn go_to_action(service: &str, action: &str, response: &JsValue) -> Result<(), JsValue> {
    // Full or unavailable storage: the page still goes on.
    storage::set(storage::Area::Session, &response_key(service, action), &js::stringify(response));
    let location = web::window()?.location();
    if location.href().ok().as_deref() == Some(action) {
        location.replace(action)
    } else {
        location.set_href(action)
    }
}

/// The response a form with an `action` left for this page, once; `null` otherwise.
pub fn take_response(service: &str) -> JsValue {
    let Some(href) = web_sys::window().and_then(|w| w.location().href().ok()) else {
        return JsValue::NULL;
    };
    let key = response_key(service, &href);
    match storage::get(storage::Area::Session, &key) {
        Some(text) => {
            storage::remove(storage::Area::Session, &key);
            js::parse(&text)
        }
        None => JsValue::NULL,
    }
}
