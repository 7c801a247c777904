//! `forwardRequest(form, options)`, Skapi's current door: the first argument is the body — a
//! submit event, a form, `FormData`, a plain object or `null` — and everything else is in
//! `options`. The body is read with the bracket rules and merged into `data` (into `params` for
//! GET, DELETE and HEAD), the options' own keys winning; with `multipart: true` it goes as the
//! browser would post it, files and all.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::reject;
use crate::files;
use crate::form::Source;
use crate::js::{self, Js};
use crate::request::{self, How};
use crate::tasks::Tasks;
use crate::turns::Turns;
use crate::web::abort;
use skapi_core::request::Door;
use skapi_core::{ApiError, ErrorCode};
use std::rc::Rc;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::FormData;

const METHOD: &str = "forwardRequest()";

fn refused(message: &str) -> ApiError {
    ApiError::invalid_parameter(message)
}

/// Checks what Skapi's SDK refuses outright, reads the body (a submit event is prevented here,
/// synchronously) and sends.
pub fn forward_request(client: Rc<Client>, tasks: Rc<Tasks>, turns: &Turns, form: JsValue, options: JsValue) -> js_sys::Promise {
    match prepare(&form, &options).and_then(|prepared| Ok((prepared, project(&client, &options)?))) {
        Ok(((params, multipart), client)) => {
            let callbacks = Callbacks::from(&options);
            let how = How { door: Door::ForwardRequest, method: METHOD, callbacks, action: None, may_hold_bytes: true, multipart };
            request::send(client, tasks, turns, Js(params), how)
        }
        Err(e) => reject(e, METHOD),
    }
}

/// The connection this call goes through: the instance's own, or — with `options.service` or
/// `owner` — the same acting for that project (each defaults to the instance's).
fn project(client: &Rc<Client>, options: &JsValue) -> Result<Rc<Client>, ApiError> {
    let text = |key: &str| {
        let value = js::get(options, key);
        match value.as_string() {
            _ if value.is_undefined() || value.is_null() => Ok(None),
            Some(text) if !text.is_empty() => Ok(Some(text)),
            _ => Err(refused(&["\"", key, "\" should be type: <string>."].concat())),
        }
    };
    match (text("service")?, text("owner")?) {
        (None, None) => Ok(client.clone()),
        (service, owner) => {
            Ok(Rc::new(client.for_project(service.unwrap_or_else(|| client.service.clone()), owner.unwrap_or_else(|| client.owner.clone()))))
        }
    }
}

/// The params `clientSecretRequest` would take for this call, and the multipart body when the
/// form itself is the body.
fn prepare(form: &JsValue, options: &JsValue) -> Result<(JsValue, Option<FormData>), ApiError> {
    if !options.is_object() {
        return Err(refused("\"options\" is required in the second argument."));
    }
    let given = |key: &str| !js::get(options, key).is_undefined();
    if given("apiKeyHeader") || given("apiKeyScheme") {
        return Err(refused(
            "\"apiKeyHeader\" and \"apiKeyScheme\" are no longer supported. Store the key as a client secret, name it with \"secretName\", and put \"$CLIENT_SECRET\" where the key goes.",
        ));
    }
    let multipart = js::get(options, "multipart");
    if !(multipart.is_undefined() || multipart.is_null() || multipart.as_bool().is_some()) {
        return Err(refused("\"multipart\" should be type: <boolean>."));
    }
    if js::text(options, "responseType").as_deref() == Some("response") {
        return Err(refused(
            "\"responseType\": \"response\" is not available here. The request is relayed from the server and what comes back is the stored answer, not a live Response; the destination's status code is the \"status_code\" of the row forwardRequestHistory lists.",
        ));
    }
    if abort::signal_of(&js::get(options, "signal")).is_some_and(|s| s.aborted()) {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "\"signal\" was already aborted."));
    }

    // A copy of the options, so that the caller's object is left as it was.
    let params: JsValue = js_sys::Object::assign(&js_sys::Object::new(), options.unchecked_ref()).into();
    if js::text(&params, "method").filter(|m| !m.is_empty()).is_none() {
        js::set(&params, "method", &"POST".into());
    }
    if multipart.as_bool() == Some(true) {
        let data = js::get(options, "data");
        if !(data.is_undefined() || data.is_null()) {
            return Err(refused("\"data\" cannot be sent with \"multipart\": true. The form itself is the body."));
        }
        return Ok((params, Some(multipart_body(form)?)));
    }
    if let Some(fields) = fields_of(form)? {
        let method = js::text(&params, "method").unwrap_or_default();
        let into = if ["get", "delete", "head"].iter().any(|m| m.eq_ignore_ascii_case(&method)) { "params" } else { "data" };
        let own = js::get(&params, into);
        // The options' own keys win a clash: they were written for this call.
        let merged = js_sys::Object::assign(&js_sys::Object::new(), fields.unchecked_ref());
        if own.is_object() {
            js_sys::Object::assign(&merged, own.unchecked_ref());
        }
        if js_sys::Object::keys(&merged).length() > 0 {
            js::set(&params, into, &merged);
        }
    }
    Ok((params, None))
}

/// The body's fields as a plain object, files left out (JSON has no room for them); `None`
/// for `null` or anything that is no body.
fn fields_of(form: &JsValue) -> Result<Option<JsValue>, ApiError> {
    if let Some(read) = crate::form::read(form) {
        let node = skapi_core::form::build_body(read.fields)?;
        return Ok(Some(crate::form::to_js(&node, None)));
    }
    Ok((form.is_object() && !form.is_function() && !form.is_array()).then(|| files::without_files(form)))
}

/// The body as `multipart/form-data` parts, as the browser would post the form: its own
/// `FormData`, or a plain object's fields appended one by one.
fn multipart_body(form: &JsValue) -> Result<FormData, ApiError> {
    if form.is_undefined() || form.is_null() {
        return Err(refused("\"multipart\": true needs a form body in the first argument."));
    }
    let wrong = || refused("\"form\" should be a submit event, a form element, FormData, or an object.");
    match crate::form::source(form) {
        Some(Source::Form(element, _)) => return FormData::new_with_form(&element).map_err(|_| wrong()),
        Some(Source::Data(data)) => return Ok(data),
        None if form.is_instance_of::<web_sys::SubmitEvent>() => return Err(wrong()),
        None => {}
    }
    if !form.is_object() || form.is_array() {
        return Err(wrong());
    }
    let data = FormData::new().map_err(|_| wrong())?;
    for key in js_sys::Object::keys(form.unchecked_ref::<js_sys::Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        append(&data, &key, &js::get(form, &key));
    }
    Ok(data)
}

/// One value as a browser appends it: arrays repeat the field, files go as files, `null` as
/// `''`, objects as their JSON text.
fn append(data: &FormData, key: &str, value: &JsValue) {
    if value.is_undefined() {
        return;
    }
    if let Some(items) = value.dyn_ref::<js_sys::Array>() {
        items.iter().for_each(|item| append(data, key, &item));
        return;
    }
    let _ = if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
        data.append_with_blob(key, blob)
    } else if value.is_null() {
        data.append_with_str(key, "")
    } else if let Some(text) = value.as_string() {
        data.append_with_str(key, &text)
    } else if value.is_object() {
        data.append_with_str(key, &js::stringify(value))
    } else {
        data.append_with_str(key, &String::from(value.unchecked_ref::<js_sys::Object>().to_string()))
    };
}
