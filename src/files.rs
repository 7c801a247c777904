//! Files and bytes inside a request's `data` (docs/protocol.md, "Files"): where they are, and
//! `data` with each replaced by the marker `skapi_core::upload` reads, the files apart.

use crate::js;
use crate::web::bytes;
use skapi_core::upload;
use wasm_bindgen::{JsCast, JsValue};

/// How deep into `data` files are looked for.
const MAX_DEPTH: usize = 32;

fn keys(value: &JsValue) -> js_sys::Array {
    js_sys::Object::keys(value.unchecked_ref::<js_sys::Object>())
}

/// Where `value` holds a `File`, `Blob`, `ArrayBuffer` or typed array — `data`, `data[file]`,
/// `data[list][0]` — if it does. JSON would send such a value as `{}`.
pub fn bytes_at(value: &JsValue) -> Option<String> {
    fn find(value: &JsValue, path: &mut String, depth: usize) -> bool {
        if !value.is_object() || depth > MAX_DEPTH {
            return false;
        }
        if bytes::is_bytes(value) {
            return true;
        }
        for key in keys(value).iter() {
            let key = key.as_string().unwrap_or_default();
            let len = path.len();
            path.extend(["[", &key, "]"]);
            if find(&js::get(value, &key), path, depth + 1) {
                return true;
            }
            path.truncate(len);
        }
        false
    }
    let mut path = String::from("data");
    find(value, &mut path, 0).then_some(path)
}

/// `data` with each file or bytes in it replaced by a marker `{"skapi:file": n}`, and the
/// files as `Blob`s in that order.
pub fn take_files(data: &JsValue) -> (JsValue, js_sys::Array) {
    fn walk(value: &JsValue, files: &js_sys::Array, depth: usize) -> JsValue {
        if bytes::is_bytes(value) {
            files.push(&bytes::as_blob(value).map_or(JsValue::NULL, JsValue::from));
            let marker: JsValue = js_sys::Object::new().into();
            js::set(&marker, upload::FILE_KEY, &(files.length() - 1).into());
            return marker;
        }
        if !value.is_object() || depth > MAX_DEPTH {
            return value.clone();
        }
        if let Some(array) = value.dyn_ref::<js_sys::Array>() {
            return array.iter().map(|item| walk(&item, files, depth + 1)).collect::<js_sys::Array>().into();
        }
        // Own data properties, as JSON has them: a key `__proto__` stays a key.
        let entries: js_sys::Array = keys(value)
            .iter()
            .map(|key| {
                let item = walk(&js::get(value, &key.as_string().unwrap_or_default()), files, depth + 1);
                js_sys::Array::of2(&key, &item)
            })
            .collect();
        js_sys::Object::from_entries(&entries).map_or(JsValue::NULL, JsValue::from)
    }
    let files = js_sys::Array::new();
    (walk(data, &files, 0), files)
}

/// A plain object or array with every file or bytes value in it left out (at any depth); other
/// objects (a `Date`) are kept as they are, for JSON to write as it writes them.
pub fn without_files(value: &JsValue) -> JsValue {
    fn walk(value: &JsValue, depth: usize) -> JsValue {
        if depth > MAX_DEPTH {
            return value.clone();
        }
        if let Some(array) = value.dyn_ref::<js_sys::Array>() {
            return array.iter().filter(|item| !bytes::is_bytes(item)).map(|item| walk(&item, depth + 1)).collect::<js_sys::Array>().into();
        }
        let plain = value.is_object() && {
            let proto = js_sys::Object::get_prototype_of(value);
            proto.is_null() || proto == js_sys::Object::get_prototype_of(&js_sys::Object::new())
        };
        if !plain {
            return value.clone();
        }
        let out = js_sys::Object::new();
        for key in keys(value).iter() {
            let key = key.as_string().unwrap_or_default();
            let item = js::get(value, &key);
            if !bytes::is_bytes(&item) {
                js::set(&out, &key, &walk(&item, depth + 1));
            }
        }
        out.into()
    }
    walk(value, 0)
}

/// Whether `headers` ask for `multipart/form-data`.
pub fn is_multipart(headers: &JsValue) -> bool {
    if !headers.is_object() {
        return false;
    }
    let key = keys(headers).iter().filter_map(|k| k.as_string()).find(|k| k.eq_ignore_ascii_case("content-type"));
    key.and_then(|k| js::get(headers, &k).as_string()).is_some_and(|v| upload::is_multipart(&v))
}
