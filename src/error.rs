//! Errors as they reach JavaScript: `SkapiError`, a real `Error` subclass with `code`,
//! `message` and `name` (the method that failed), plus `status_code` and `body` when a third
//! party answered.

use serde_json::Value;
use skapi_core::wire::FailureBody;
use skapi_core::{ApiError, ErrorCode};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
export class SkapiError extends Error {
    constructor(message, code, name, extra) {
        super(message);
        this.name = name;
        this.code = code;
        if (extra) Object.assign(this, extra);
    }
}
export function makeSkapiError(message, code, name, extra) {
    return new SkapiError(message, code, name, extra);
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = makeSkapiError)]
    fn make_skapi_error(message: &str, code: &str, name: &str, extra: JsValue) -> JsValue;
}

/// An error inside the SDK, before it is given a method name and turned into a `SkapiError`.
#[derive(Debug, Clone, PartialEq)]
pub struct SdkError {
    /// A code of [`ErrorCode`], or the HTTP status as text when the server gave none.
    pub code: String,
    pub message: String,
    pub status_code: Option<u16>,
    pub body: Option<Value>,
}

impl SdkError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> SdkError {
        SdkError { code: code.as_str().to_owned(), message: message.into(), status_code: None, body: None }
    }

    /// From an HTTP error answer: JSON `{message, code, …}`, a text `"CODE: message"`, or else
    /// the status.
    pub fn from_answer(status: u16, text: &str) -> SdkError {
        if let Ok(failure) = serde_json::from_str::<FailureBody>(text) {
            return SdkError {
                code: failure.code.as_str().to_owned(),
                message: failure.message,
                status_code: failure.status_code,
                body: failure.body,
            };
        }
        if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
            if let Some(message) = map.get("message").and_then(Value::as_str) {
                let code = map.get("code").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| status.to_string());
                return SdkError { code, message: message.to_owned(), status_code: None, body: None };
            }
        }
        if let Some((code, message)) = text.split_once(": ") {
            if ErrorCode::parse(code).is_some() || code == "INVALID_CORS" || code == "SERVICE_DISABLED" || code == "ERROR" || code == "EXISTS" {
                return SdkError { code: code.to_owned(), message: message.to_owned(), status_code: None, body: None };
            }
        }
        let message = if text.is_empty() { format!("The server answered {status}.") } else { text.to_owned() };
        SdkError { code: status.to_string(), message, status_code: None, body: None }
    }

    /// The `SkapiError` for JS, named after the method that failed (e.g. `clientSecretRequest()`).
    pub fn into_js(self, method: &str) -> JsValue {
        let extra = js_sys::Object::new();
        if let Some(status) = self.status_code {
            crate::js::set(&extra, "status_code", &JsValue::from(status));
        }
        if let Some(body) = &self.body {
            crate::js::set(&extra, "body", &crate::js::from_serde(body));
        }
        let name = if method.ends_with(')') || method == "Skapi" { method.to_owned() } else { format!("{method}()") };
        make_skapi_error(&self.message, &self.code, &name, extra.into())
    }
}

impl From<ApiError> for SdkError {
    fn from(e: ApiError) -> SdkError {
        SdkError::new(e.code, e.message)
    }
}
