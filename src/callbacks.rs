//! The `onResponse` / `onError` callbacks a caller may pass along with the params.

use crate::js;
use wasm_bindgen::JsValue;

#[derive(Clone, Default)]
pub struct Callbacks {
    pub on_response: Option<js_sys::Function>,
    pub on_error: Option<js_sys::Function>,
}

impl Callbacks {
    pub fn from(obj: &JsValue) -> Callbacks {
        Callbacks { on_response: js::function(obj, "onResponse"), on_error: js::function(obj, "onError") }
    }

    /// True when `obj` names either callback.
    pub fn given(obj: &JsValue) -> bool {
        obj.is_object() && (js::function(obj, "onResponse").is_some() || js::function(obj, "onError").is_some())
    }

    /// Calls `onResponse` (if any) and passes the value on.
    pub fn respond(&self, value: JsValue) -> Result<JsValue, JsValue> {
        self.respond_with(value, None)
    }

    /// [`Callbacks::respond`], with `meta.executed` (ms) when the server said when the request
    /// began executing.
    pub fn respond_with(&self, value: JsValue, executed: Option<f64>) -> Result<JsValue, JsValue> {
        if let Some(f) = &self.on_response {
            let meta = executed.map_or(JsValue::UNDEFINED, |ms| {
                let meta = js_sys::Object::new();
                js::set(&meta, "executed", &ms.into());
                meta.into()
            });
            f.call2(&JsValue::NULL, &value, &meta)?;
        }
        Ok(value)
    }

    /// Calls `onError` (if any) and passes the error on.
    pub fn fail(&self, error: JsValue) -> Result<JsValue, JsValue> {
        if let Some(f) = &self.on_error {
            f.call1(&JsValue::NULL, &error)?;
        }
        Err(error)
    }
}
