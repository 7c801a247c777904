//! The JS boundary: JavaScript values as Rust sees them. Wire bodies go out through serde and
//! serde-wasm-bindgen (`crate::plain`); answers are read straight from the JavaScript value
//! through the wire types' [`FromTree`] readers (serde-wasm-bindgen's deserializer would bring
//! float printing and its error formatting into the wasm); values the page wrote or a third
//! party answered stay JavaScript values ([`Js`]) from end to end — never turned into text or
//! Rust copies.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use skapi_core::tree::{FromTree, Kind, Tree};
use wasm_bindgen::{JsCast, JsValue};

/// A JavaScript value inside a wire type: carried through serde-wasm-bindgen as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Js(pub JsValue);

impl Default for Js {
    fn default() -> Js {
        Js(JsValue::UNDEFINED)
    }
}

impl Serialize for Js {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_wasm_bindgen::preserve::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Js {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Js, D::Error> {
        serde_wasm_bindgen::preserve::deserialize(d).map(Js)
    }
}

/// A value as `JSON.stringify` sees it (functions and `undefined` are not JSON).
impl Tree for Js {
    fn kind(&self) -> Kind {
        let v = &self.0;
        if v.is_null() {
            Kind::Null
        } else if v.as_bool().is_some() {
            Kind::Bool
        } else if v.as_f64().is_some() {
            Kind::Number
        } else if v.is_string() {
            Kind::Text
        } else if js_sys::Array::is_array(v) {
            Kind::Array
        } else if v.is_object() && !v.is_function() {
            Kind::Object
        } else {
            Kind::Other
        }
    }

    fn text(&self) -> Option<String> {
        self.0.as_string()
    }

    fn number(&self) -> Option<f64> {
        self.0.as_f64()
    }

    fn boolean(&self) -> Option<bool> {
        self.0.as_bool()
    }

    fn field<R>(&self, key: &str, f: impl FnOnce(Option<&Js>) -> R) -> R {
        // The lookup is not generic, so it is compiled once rather than once per caller.
        f(self.lookup(key).as_ref())
    }

    fn entries(&self, f: &mut dyn FnMut(&str, &Js) -> bool) {
        if let Some(array) = self.0.dyn_ref::<js_sys::Array>() {
            for item in array.iter() {
                if !f("", &Js(item)) {
                    return;
                }
            }
        } else if self.kind() == Kind::Object {
            let object: &js_sys::Object = self.0.unchecked_ref();
            for key in js_sys::Object::keys(object).iter() {
                let name = key.as_string().unwrap_or_default();
                if !f(&name, &Js(get(&self.0, &name))) {
                    return;
                }
            }
        }
    }
}

impl Js {
    /// `self[key]` unless absent, `undefined` or `self` is no object.
    #[inline(never)]
    fn lookup(&self, key: &str) -> Option<Js> {
        let value = if self.0.is_object() { get(&self.0, key) } else { JsValue::UNDEFINED };
        (!value.is_undefined()).then_some(Js(value))
    }
}

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

/// `obj[key]` when it is a non-empty string.
pub fn text(obj: &JsValue, key: &str) -> Option<String> {
    get(obj, key).as_string().filter(|s| !s.is_empty())
}

/// A Rust value as a fresh JS value, shaped as JSON would be (`None` is `null`): see
/// [`crate::plain`].
pub fn to_js<T: Serialize>(value: &T) -> JsValue {
    value.serialize(crate::plain::Plain(&serde_wasm_bindgen::Serializer::json_compatible())).unwrap_or(JsValue::NULL)
}

/// A JS value read as wire type `T`, or `None` when it does not have that shape.
pub fn read<T: FromTree<Js>>(value: &JsValue) -> Option<T> {
    T::from_tree(&Js(value.clone()))
}

/// `url` lower-cased as skapi-js does it (JavaScript's `toLowerCase`).
pub fn lower(url: &str) -> String {
    String::from(js_sys::JsString::from(url).to_lower_case())
}

/// JSON text as a JS value; text that is not JSON stays a string.
pub fn parse(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap_or_else(|_| JsValue::from_str(text))
}

/// A JS value as JSON text.
pub fn stringify(value: &JsValue) -> String {
    js_sys::JSON::stringify(value).ok().and_then(|s| s.as_string()).unwrap_or_default()
}

/// A JS promise for a Rust future. Every future is boxed to one type first, so the promise
/// machinery is compiled once rather than once per caller (it is most of the wasm's glue).
pub fn promise(future: impl std::future::Future<Output = Result<JsValue, JsValue>> + 'static) -> js_sys::Promise {
    let boxed: std::pin::Pin<Box<dyn std::future::Future<Output = Result<JsValue, JsValue>>>> = Box::pin(future);
    wasm_bindgen_futures::future_to_promise(boxed)
}
