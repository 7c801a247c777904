//! Streamed answers (docs/protocol.md, "Streamed answers"): a stream's chunks reach `onStream`
//! in order, each once — pushed over `csr-stream` (server-sent events) while the server offers
//! it, resumed from the last chunk held when the connection drops, and read by polling
//! `csr-poll {since}` when push is unavailable. Events are cut from the body by
//! `skapi_core::sse`.

use crate::client::Client;
use crate::error::SdkError;
use crate::js::{self, Js};
use crate::poll;
use skapi_core::wire::{Chunk, PollBody, StreamPage};
use skapi_core::{id, sse};
use wasm_bindgen::prelude::*;

/// Push connections in a row that may drop without bringing a chunk before the reader falls
/// back to polling.
const PUSH_TRIES: u32 = 3;

/// How a chunk arrived, as `onStream`'s third argument says.
const VIA_PUSH: &str = "push";
const VIA_POLL: &str = "poll";

/// A reader's place in a stream: the last chunk handed to `onStream`.
struct Cursor {
    last: u64,
    on_stream: Option<js_sys::Function>,
}

impl Cursor {
    /// Hands `chunk` to `onStream` unless it was handed over already. An exception thrown by
    /// `onStream` ends the reading with it.
    fn deliver(&mut self, chunk: &Chunk, via: &str) -> Result<(), JsValue> {
        if chunk.seq <= self.last {
            return Ok(());
        }
        self.last = chunk.seq;
        match &self.on_stream {
            Some(f) => f.call3(&JsValue::NULL, &chunk.txt.as_str().into(), &(chunk.seq as f64).into(), &via.into()).map(drop),
            None => Ok(()),
        }
    }

    /// What the stream resolves with, from its final page (`answer` as it came):
    /// `{id, status, status_code, stream: true, last_seq, error?, truncated?}`.
    fn finish(&self, page: &StreamPage<Js>, answer: &JsValue) -> JsValue {
        let result: JsValue = js_sys::Object::new().into();
        js::set(&result, "id", &page.id.as_str().into());
        js::set(&result, "status", &page.status.as_str().into());
        js::set(&result, "status_code", &page.status_code.map_or(JsValue::NULL, JsValue::from));
        js::set(&result, "stream", &true.into());
        js::set(&result, "last_seq", &(self.last as f64).into());
        let error = js::get(answer, "error");
        if !error.is_undefined() {
            js::set(&result, "error", &error);
        }
        if page.truncated {
            js::set(&result, "truncated", &true.into());
        }
        result
    }
}

/// How one push connection ended.
enum Pushed {
    /// The stream ended: its final page.
    End(JsValue),
    /// The connection ended or broke before the stream did.
    Dropped,
    /// The server offers no push for this request.
    Unavailable,
}

/// One push connection, from `cursor.last` on. Dropping it closes the connection.
async fn push(client: &Client, body: &PollBody<Js>, cursor: &mut Cursor) -> Result<Pushed, JsValue> {
    let Some(mut connection) = client.open_events("csr-stream", js::to_js(body)).await else {
        return Ok(Pushed::Unavailable);
    };
    let mut events = sse::Parser::new();
    loop {
        let Ok(Some(piece)) = connection.next().await else {
            return Ok(Pushed::Dropped);
        };
        if let Some(pushed) = take_events(&mut events, &piece, cursor)? {
            return Ok(pushed);
        }
    }
}

/// Hands the chunks `piece` completes to `onStream`; `Some` when the connection is done with.
/// Not async and not inlined: the reading loop's state stays small.
#[inline(never)]
fn take_events(events: &mut sse::Parser, piece: &str, cursor: &mut Cursor) -> Result<Option<Pushed>, JsValue> {
    let mut outcome = Ok(None);
    events.push(piece, |name, data| {
        outcome = match name {
            "chunk" => match js::read::<Chunk>(&js::parse(data)) {
                Some(chunk) => cursor.deliver(&chunk, VIA_PUSH).map(|()| None),
                None => Ok(Some(Pushed::Dropped)),
            },
            "end" => Ok(Some(Pushed::End(js::parse(data)))),
            _ => Ok(None),
        };
        !matches!(outcome, Ok(None))
    });
    outcome
}

/// Reads the stream of request `full_id` from chunk `since` on (0: from the first) until it
/// ends, handing each chunk to `on_stream` once, in order. Resolves with
/// `{id, status, status_code, stream: true, last_seq}` (and `error` when it failed); a
/// request that did not stream resolves with its answer as a poll gives it.
pub async fn read(
    client: &Client,
    full_id: &str,
    since: u64,
    interval_ms: u32,
    on_stream: Option<js_sys::Function>,
    method: &'static str,
) -> Result<JsValue, JsValue> {
    let fail = |e: SdkError| e.into_js(method);
    let short = id::split_full(full_id).map(|(_, s)| s.to_owned()).unwrap_or_default();
    let mut cursor = Cursor { last: since, on_stream };
    let mut body = client.poll_body();
    body.id = Some(full_id.to_owned());

    let mut tries = 0;
    while tries < PUSH_TRIES {
        let before = cursor.last;
        body.since = Some(cursor.last as u32);
        match push(client, &body, &mut cursor).await? {
            Pushed::End(answer) => match js::read::<StreamPage<Js>>(&answer) {
                Some(page) if page.status.is_final() => return Ok(cursor.finish(&page, &answer)),
                // An end that is no final page: read the rest by polling.
                _ => break,
            },
            Pushed::Dropped => tries = if cursor.last > before { 1 } else { tries + 1 },
            Pushed::Unavailable => break,
        }
    }

    loop {
        body.since = Some(cursor.last as u32);
        let answer = client.post("csr-poll", &body).await.map_err(fail)?;
        match js::read::<StreamPage<Js>>(&answer) {
            Some(page) => {
                for chunk in &page.chunks {
                    cursor.deliver(chunk, VIA_POLL)?;
                }
                if page.more {
                    continue;
                }
                if page.status.is_final() {
                    return Ok(cursor.finish(&page, &answer));
                }
            }
            // Not (or no longer) a stream: its answer, once it has one.
            None if !poll::is_unfinished(&answer, &short) => return Ok(answer),
            None => {}
        }
        poll::sleep(interval_ms).await;
    }
}
