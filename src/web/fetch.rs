//! HTTP through the Fetch API: a call's whole answer, or an answer's body read as it arrives.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, ReadableStreamDefaultReader, RequestInit, Response, TextDecodeOptions, TextDecoder};

/// A request to send: `body` set makes it a POST.
pub struct Call<'a> {
    pub url: &'a str,
    /// Name and value; a `None` value is left out.
    pub headers: &'a [(&'a str, Option<&'a str>)],
    /// JSON text, or `FormData` (the browser then writes the multipart `Content-Type`).
    pub body: Option<&'a JsValue>,
}

/// A finished call: its status, its body as text, its `Retry-After`.
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub retry_after: Option<String>,
}

async fn send(call: &Call<'_>, signal: Option<&web_sys::AbortSignal>) -> Result<Response, JsValue> {
    let headers = Headers::new()?;
    for (name, value) in call.headers {
        if let Some(value) = value {
            headers.set(name, value)?;
        }
    }
    let init = RequestInit::new();
    init.set_method(if call.body.is_some() { "POST" } else { "GET" });
    init.set_headers(&headers);
    if let Some(body) = call.body {
        init.set_body(body);
    }
    if let Some(signal) = signal {
        init.set_signal(Some(signal));
    }
    let response = JsFuture::from(super::window()?.fetch_with_str_and_init(call.url, &init)).await?;
    Ok(response.unchecked_into())
}

/// Sends `call` and reads its whole answer; fails when the network does.
pub async fn fetch(call: &Call<'_>) -> Result<Answer, JsValue> {
    let response = send(call, None).await?;
    let text = JsFuture::from(response.text()?).await?.as_string().unwrap_or_default();
    Ok(Answer { status: response.status(), text, retry_after: response.headers().get("retry-after").ok().flatten() })
}

/// An answer's body, read as text piece by piece; dropping it aborts the fetch.
pub struct BodyReader {
    reader: ReadableStreamDefaultReader,
    /// Keeps a character split across pieces for the next.
    decoder: TextDecoder,
    /// `{stream: true}`, made once for every piece.
    streaming: TextDecodeOptions,
    abort: AbortController,
}

impl BodyReader {
    /// Sends `call` and, when the answer succeeded with a body of `content_type`, reads that
    /// body as it arrives; `None` when it did not (the fetch is then aborted) or the network failed.
    pub async fn open(call: &Call<'_>, content_type: &str) -> Option<BodyReader> {
        let abort = AbortController::new().ok()?;
        let response = send(call, Some(&abort.signal())).await.ok()?;
        let wanted = response.ok() && response.headers().get("content-type").ok().flatten().is_some_and(|t| t.starts_with(content_type));
        let (Some(body), true) = (response.body(), wanted) else {
            abort.abort();
            return None;
        };
        let decoder = TextDecoder::new().ok()?;
        let streaming = TextDecodeOptions::new();
        streaming.set_stream(true);
        Some(BodyReader { reader: body.get_reader().unchecked_into(), decoder, streaming, abort })
    }

    /// The next piece of the body's text; `None` at its end. Fails when the connection breaks.
    pub async fn next(&mut self) -> Result<Option<String>, JsValue> {
        let read = JsFuture::from(self.reader.read()).await?;
        if crate::js::get(&read, "done").is_truthy() {
            return Ok(None);
        }
        let piece: js_sys::Object = crate::js::get(&read, "value").unchecked_into();
        self.decoder.decode_with_buffer_source_and_options(&piece, &self.streaming).map(Some)
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        self.abort.abort();
    }
}
