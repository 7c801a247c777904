//! Errors as they reach JavaScript: `SkapiError`, a real `Error` subclass with `code`,
//! `message` and `name` (the method that failed), plus `status_code` and `body` when a third
//! party answered.

use crate::js::{self, Js};
use skapi_core::wire::FailureBody;
use skapi_core::{ApiError, ErrorCode};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/error.js")]
extern "C" {
    type SkapiError;
    /// `status_code` and `body` are set when given (a third party's failure).
    #[wasm_bindgen(constructor)]
    fn new(message: &str, code: &str, name: &str, status_code: Option<u16>, body: Option<JsValue>) -> SkapiError;
}

/// An error inside the SDK, before it is given a method name and turned into a `SkapiError`.
#[derive(Debug, Clone)]
pub struct SdkError {
    /// A code of [`ErrorCode`], or the HTTP status as text when the server gave none.
    pub code: String,
    pub message: String,
    pub status_code: Option<u16>,
    /// The third party's answer, as the server handed it over.
    pub body: Option<JsValue>,
}

/// Codes a text answer `"CODE: message"` may carry besides [`ErrorCode`]'s (skapi-js's list).
const TEXT_CODES: [&str; 3] = ["SERVICE_DISABLED", "ERROR", "INVALID_CORS"];

impl SdkError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> SdkError {
        SdkError { code: code.as_str().to_owned(), message: message.into(), status_code: None, body: None }
    }

    /// From an HTTP error answer (its JSON, or its text when it is not JSON): JSON `{message,
    /// code, …}`, a text `"CODE: message"`, or else the status.
    pub fn from_answer(status: u16, answer: &JsValue) -> SdkError {
        let status_text = || skapi_core::text::decimal(status.into());
        if let Some(failure) = js::read::<FailureBody<Js>>(answer) {
            let body = failure.body.map(|b| b.0);
            return SdkError { code: failure.code.as_str().to_owned(), message: failure.message, status_code: failure.status_code, body };
        }
        if let Some(message) = js::text(answer, "message").filter(|_| answer.is_object()) {
            let code = js::text(answer, "code").unwrap_or_else(status_text);
            return SdkError { code, message, status_code: None, body: None };
        }
        let text = if answer.is_null() { String::new() } else { answer.as_string().unwrap_or_else(|| js::stringify(answer)) };
        // `CODE: message`
        if let Some((code, message)) = skapi_core::text::split_at_byte(&text, b':', false).and_then(|(c, m)| Some((c, m.strip_prefix(' ')?))) {
            if ErrorCode::parse(code).is_some() || TEXT_CODES.contains(&code) {
                return SdkError { code: code.to_owned(), message: message.to_owned(), status_code: None, body: None };
            }
        }
        let message = if text.is_empty() { ["The server answered ", &status_text(), "."].concat() } else { text };
        SdkError { code: status_text(), message, status_code: None, body: None }
    }

    /// The `SkapiError` for JS, named after the method that failed (e.g. `clientSecretRequest()`).
    pub fn into_js(self, method: &str) -> JsValue {
        let name = if method.ends_with(')') || method == "Skapi" { method.to_owned() } else { [method, "()"].concat() };
        self.into_js_as(&name)
    }

    /// The `SkapiError` for JS, named `name` as it is (e.g. `AbortError`).
    pub fn into_js_as(self, name: &str) -> JsValue {
        SkapiError::new(&self.message, &self.code, name, self.status_code, self.body).into()
    }

    /// The rejection of an aborted call: a `SkapiError` named `AbortError`, code `CANCELED`.
    pub fn aborted() -> JsValue {
        SdkError::new(ErrorCode::Canceled, "The request was aborted.").into_js_as("AbortError")
    }
}

impl From<ApiError> for SdkError {
    fn from(e: ApiError) -> SdkError {
        SdkError::new(e.code, e.message)
    }
}

/// A promise rejected with `e`, named after `method`: a call's parameters refused before
/// anything is sent.
pub fn reject(e: ApiError, method: &str) -> js_sys::Promise {
    js_sys::Promise::reject(&SdkError::from(e).into_js(method))
}
