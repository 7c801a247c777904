//! Reading a form (a `SubmitEvent`, an `HTMLFormElement` or `FormData`) into fields; which
//! controls count is the DOM glue's (`browser.js`), the nesting of bracket names is
//! `skapi_core::form`'s. A submit event is `preventDefault()`ed synchronously, before anything
//! else happens.

use crate::js;
use skapi_core::form::{Field, FieldValue, Node};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = readForm)]
    fn read_form(input: &JsValue) -> JsValue;
    fn own(object: &JsValue, key: &str, value: &JsValue);
    #[wasm_bindgen(js_name = goToActionAfter)]
    fn go_to_after(sent: &js_sys::Promise, prefix: &str, action: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = takeResponse)]
    fn take(prefix: &str) -> JsValue;
}

/// The params a form made, as the JS object an object call would have passed (its files
/// where the form placed them).
pub fn to_js(node: &Node, files: &[JsValue]) -> JsValue {
    match node {
        Node::Null => JsValue::NULL,
        Node::Text(s) => JsValue::from_str(s),
        Node::Number(n) => JsValue::from_f64(*n),
        Node::Bool(b) => JsValue::from_bool(*b),
        Node::File(n) => files.get(*n).cloned().unwrap_or(JsValue::NULL),
        Node::Array(items) => items.iter().map(|item| to_js(item, files)).collect::<js_sys::Array>().into(),
        Node::Object(entries) => {
            let object: JsValue = js_sys::Object::new().into();
            for (key, value) in entries {
                own(&object, key, &to_js(value, files));
            }
            object
        }
    }
}

/// A form to read, and what to do after.
pub struct FormInput {
    pub fields: Vec<Field>,
    /// The chosen files, which `FieldValue::File` counts.
    pub files: Vec<JsValue>,
    /// The form's `action`, resolved against the page: where to go with the response.
    pub action: Option<String>,
}

/// The form behind `input`, when it is one; `None` for a plain params object.
pub fn read(input: &JsValue) -> Option<FormInput> {
    let form = read_form(input);
    if form.is_undefined() {
        return None;
    }
    let fields: js_sys::Array = js::get(&form, "fields").unchecked_into();
    let mut files = Vec::new();
    let fields = fields.iter().map(|field| {
        let field: js_sys::Array = field.unchecked_into();
        let value = field.get(1);
        let value = match (value.as_bool(), value.as_f64(), value.as_string()) {
            (Some(b), _, _) => FieldValue::Bool(b),
            (_, Some(n), _) => FieldValue::Number(n),
            (_, _, Some(text)) => FieldValue::Text(text),
            _ => {
                files.push(value);
                FieldValue::File(files.len() - 1)
            }
        };
        Field { name: field.get(0).as_string().unwrap_or_default(), value, many: field.get(2).is_truthy() }
    });
    let fields = fields.collect();
    Some(FormInput { fields, files, action: js::get(&form, "action").as_string() })
}

/// Where a form's response waits for its action page.
fn response_prefix(service: &str) -> String {
    ["skapi:form-response:", service, ":"].concat()
}

/// Once `sent` resolves, keeps its response for the action page and goes there (as skapi-js
/// does); the promise resolves with the response all the same.
pub fn go_to_action_after(sent: &js_sys::Promise, service: &str, action: &str) -> js_sys::Promise {
    go_to_after(sent, &response_prefix(service), action)
}

/// The response a form with an `action` left for this page, once; `null` otherwise.
pub fn take_response(service: &str) -> JsValue {
    take(&response_prefix(service))
}
