//! Reading a form (a `SubmitEvent`, an `HTMLFormElement` or `FormData`) into fields; the nesting
//! of bracket names is `skapi_core::form`'s. A submit event is `preventDefault()`ed here,
//! synchronously, before anything else happens.

use crate::js;
use skapi_core::form::{Field, FieldValue, Node};
use skapi_core::ApiError;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{HtmlElement, HtmlFormElement, HtmlInputElement, HtmlSelectElement, HtmlTextAreaElement};

// Defines, never assigns: a field named `__proto__[x]` becomes an own property called
// `__proto__`, not a new prototype.
#[wasm_bindgen(
    inline_js = "export function own(o, k, v) { Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true }); }"
)]
extern "C" {
    fn own(object: &JsValue, key: &str, value: &JsValue);
}

/// The params a form made, as the JS object an object call would have passed.
pub fn to_js(node: &Node) -> JsValue {
    match node {
        Node::Null => JsValue::NULL,
        Node::Text(s) => JsValue::from_str(s),
        Node::Number(n) => JsValue::from_f64(*n),
        Node::Bool(b) => JsValue::from_bool(*b),
        Node::Array(items) => items.iter().map(to_js).collect::<js_sys::Array>().into(),
        Node::Object(entries) => {
            let object: JsValue = js_sys::Object::new().into();
            for (key, value) in entries {
                own(&object, key, &to_js(value));
            }
            object
        }
    }
}

/// The key the JS loader puts on a form snapshot taken while the module was still loading.
const SNAPSHOT: &str = "__skapiFormSnapshot";

/// A form to read, and what to do after.
pub struct FormInput {
    pub fields: Vec<Field>,
    /// The form's `action`, resolved against the page: where to go with the response.
    pub action: Option<String>,
}

fn refuse_files() -> ApiError {
    ApiError::invalid_parameter("File inputs are not supported by clientSecretRequest(): send files from your own code.")
}

/// The form behind `input`, when it is one; `None` for a plain params object.
pub fn read(input: &JsValue) -> Option<Result<FormInput, ApiError>> {
    if let Some(event) = input.dyn_ref::<web_sys::SubmitEvent>() {
        event.prevent_default();
        let form = event.target()?.dyn_into::<HtmlFormElement>().ok()?;
        return Some(read_form(&form, event.submitter().and_then(|s| s.dyn_into().ok()).as_ref()));
    }
    if let Some(form) = input.dyn_ref::<HtmlFormElement>() {
        return Some(read_form(form, None));
    }
    if let Some(data) = input.dyn_ref::<web_sys::FormData>() {
        return Some(read_form_data(data).map(|fields| FormInput { fields, action: None }));
    }
    if input.is_object() && js::get(input, SNAPSHOT).is_truthy() {
        let form = js::get(input, "form").dyn_into::<HtmlFormElement>().ok()?;
        let submitter = js::get(input, "submitter").dyn_into::<HtmlElement>().ok();
        return Some(read_form(&form, submitter.as_ref()));
    }
    None
}

fn action_of(form: &HtmlFormElement) -> Option<String> {
    form.get_attribute("action")?;
    // `form.action` is the attribute resolved against the page's URL.
    Some(form.action())
}

fn read_form(form: &HtmlFormElement, submitter: Option<&HtmlElement>) -> Result<FormInput, ApiError> {
    let mut fields = Vec::new();
    let elements = form.elements();
    for i in 0..elements.length() {
        let Some(element) = elements.item(i) else { continue };
        read_control(&element, &mut fields)?;
    }
    // HTML's rule: of the buttons, only the one that submitted the form counts.
    if let Some(submitter) = submitter {
        let name = js::get(submitter, "name").as_string().unwrap_or_default();
        if !name.is_empty() && !submitter.matches(":disabled").unwrap_or(false) {
            let value = js::get(submitter, "value").as_string().unwrap_or_default();
            fields.push(Field { name, value: FieldValue::Text(value), many: false });
        }
    }
    Ok(FormInput { fields, action: action_of(form) })
}

fn read_control(element: &web_sys::Element, fields: &mut Vec<Field>) -> Result<(), ApiError> {
    let name = js::get(element, "name").as_string().unwrap_or_default();
    if name.is_empty() || element.matches(":disabled").unwrap_or(false) {
        return Ok(());
    }
    let mut push = |value: FieldValue, many: bool| fields.push(Field { name: name.clone(), value, many });
    if let Some(input) = element.dyn_ref::<HtmlInputElement>() {
        match input.type_().to_ascii_lowercase().as_str() {
            "file" => return Err(refuse_files()),
            "submit" | "image" | "button" | "reset" => {}
            "checkbox" => match (input.has_attribute("value"), input.checked()) {
                (false, checked) => push(FieldValue::Bool(checked), false),
                (true, true) => push(FieldValue::Text(input.value()), false),
                (true, false) => {}
            },
            "radio" => {
                if input.checked() {
                    push(FieldValue::Text(input.value()), false);
                }
            }
            "number" | "range" => {
                if !input.value().is_empty() {
                    let n = input.value_as_number();
                    if n.is_finite() {
                        push(FieldValue::Number(n), false);
                    }
                }
            }
            _ => push(FieldValue::Text(input.value()), false),
        }
    } else if let Some(select) = element.dyn_ref::<HtmlSelectElement>() {
        if select.multiple() {
            let options = select.selected_options();
            for i in 0..options.length() {
                if let Some(option) = options.item(i) {
                    push(FieldValue::Text(js::get(&option, "value").as_string().unwrap_or_default()), true);
                }
            }
        } else if select.selected_index() >= 0 {
            push(FieldValue::Text(select.value()), false);
        }
    } else if let Some(area) = element.dyn_ref::<HtmlTextAreaElement>() {
        push(FieldValue::Text(area.value()), false);
    }
    // <button>, <fieldset>, <output>, <object>: not values (the submitter is added apart).
    Ok(())
}

fn read_form_data(data: &web_sys::FormData) -> Result<Vec<Field>, ApiError> {
    let mut fields = Vec::new();
    let entries = js_sys::try_iter(data).ok().flatten().ok_or_else(|| ApiError::invalid_parameter("FormData could not be read."))?;
    for entry in entries {
        let entry: js_sys::Array = entry.map_err(|_| ApiError::invalid_parameter("FormData could not be read."))?.into();
        let name = entry.get(0).as_string().unwrap_or_default();
        let value = entry.get(1);
        if value.is_instance_of::<web_sys::File>() {
            return Err(refuse_files());
        }
        fields.push(Field { name, value: FieldValue::Text(value.as_string().unwrap_or_default()), many: false });
    }
    Ok(fields)
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

fn response_key(service: &str, url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    format!("skapi:form-response:{service}:{without_query}")
}

/// Keeps the response for the action page and goes there (as skapi-js does).
pub fn go_to_action(service: &str, action: &str, response: &JsValue) {
    if let (Some(storage), Ok(Some(text))) = (storage(), js_sys::JSON::stringify(response).map(|s| s.as_string())) {
        let _ = storage.set_item(&response_key(service, action), &text);
    }
    if let Some(location) = web_sys::window().map(|w| w.location()) {
        if location.href().ok().as_deref() == Some(action) {
            let _ = location.replace(action);
        } else {
            let _ = location.set_href(action);
        }
    }
}

/// The response a form with an `action` left for this page, once; `null` otherwise.
pub fn take_response(service: &str) -> JsValue {
    let Some(href) = web_sys::window().and_then(|w| w.location().href().ok()) else { return JsValue::NULL };
    let Some(storage) = storage() else { return JsValue::NULL };
    let key = response_key(service, &href);
    match storage.get_item(&key) {
        Ok(Some(text)) => {
            let _ = storage.remove_item(&key);
            js_sys::JSON::parse(&text).unwrap_or(JsValue::from_str(&text))
        }
        _ => JsValue::NULL,
    }
}
