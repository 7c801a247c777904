//! Bytes as the page holds them: `Blob`s (and `File`s), `ArrayBuffer`s and typed arrays.

use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag};

#[wasm_bindgen]
extern "C" {
    /// `Uint8Array.prototype.slice.call(view)`, its result handed to the wasm as a `Vec`: the
    /// bytes of a view in one copy (js-sys's `to_vec` checks a length it has just read, and its
    /// failure message would bring number formatting into the wasm).
    #[wasm_bindgen(js_namespace = ["Uint8Array", "prototype", "slice"], js_name = call)]
    fn copy_out(view: &Uint8Array) -> Vec<u8>;
}

/// A `Blob` (a `File` too), an `ArrayBuffer` or a view of one (a typed array, a `DataView`).
pub fn is_bytes(value: &JsValue) -> bool {
    value.is_instance_of::<Blob>() || value.is_instance_of::<ArrayBuffer>() || ArrayBuffer::is_view(value)
}

/// A `Blob` of `parts` (buffers, views, blobs) and `content_type`: the one constructor call.
fn new_blob(parts: &JsValue, content_type: &str) -> Result<Blob, JsValue> {
    let options = BlobPropertyBag::new();
    options.set_type(content_type);
    Blob::new_with_buffer_source_sequence_and_options(&Array::of1(parts), &options)
}

/// `value` (see [`is_bytes`]) as a `Blob`: itself when it is one.
pub fn as_blob(value: &JsValue) -> Result<Blob, JsValue> {
    match value.dyn_ref::<Blob>() {
        Some(blob) => Ok(blob.clone()),
        None => new_blob(value, ""),
    }
}

/// A blob's bytes and its type (`""` when it has none).
pub async fn read(blob: &Blob) -> Result<(Vec<u8>, String), JsValue> {
    let buffer = JsFuture::from(blob.array_buffer()).await?;
    Ok((copy_out(&Uint8Array::new(&buffer)), blob.type_()))
}

/// `form` as the browser posts it: a `multipart/form-data` body and its content type. (The
/// type is read from the headers: a blob's type would be lower-cased, boundary and all.)
pub async fn multipart(form: &web_sys::FormData) -> Result<(Vec<u8>, String), JsValue> {
    let encoded = web_sys::Response::new_with_opt_form_data(Some(form))?;
    let content_type = encoded.headers().get("content-type")?.unwrap_or_default();
    let buffer = JsFuture::from(encoded.array_buffer()?).await?;
    Ok((copy_out(&Uint8Array::new(&buffer)), content_type))
}

/// `bytes` as a fresh `ArrayBuffer`.
pub fn array_buffer(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).buffer().into()
}

/// `bytes` as a `Blob` of `content_type`.
pub fn blob(bytes: &[u8], content_type: &str) -> Result<JsValue, JsValue> {
    new_blob(&Uint8Array::from(bytes), content_type).map(Into::into)
}

/// `bytes` as UTF-8 text, as the page's `TextDecoder` reads it (a byte order mark dropped, bad
/// bytes replaced).
pub fn utf8(bytes: &[u8]) -> String {
    let decoder = web_sys::TextDecoder::new();
    decoder.and_then(|d| d.decode_with_buffer_source_and_options(&Uint8Array::from(bytes), &web_sys::TextDecodeOptions::new())).unwrap_or_default()
}
