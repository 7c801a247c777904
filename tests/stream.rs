//! Streamed answers in headless Chromium: the SDK against a real skapi-server and a stand-in
//! for OpenAI's streamed chat completions (`tests/standin.mjs`), pushed, polled, dropped and
//! resumed, read again by id, finalized, failed, cancelled and stopped.
#![cfg(target_arch = "wasm32")]

use serde_json::{json, Value};
use skapi_wasm::Skapi;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;

use common::*;

fn chat_url(query: &str) -> String {
    format!("{}/v1/chat/completions{query}", stand_in())
}

/// A streamed chat request to the stand-in (`query` tunes it: `?text=…&gap=…&die=…&split=1`).
fn chat(query: &str, extra: Value) -> Value {
    let mut params = json!({
        "clientSecretName": "openai",
        "url": chat_url(query),
        "method": "POST",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET"},
        "data": {"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Hi"}]},
        "stream": true,
    });
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

/// An `onStream` that records `[chunk, seq, via]`, and what it recorded.
fn stream_recorder() -> (js_sys::Function, js_sys::Array) {
    let seen = js_sys::Array::new();
    let record = seen.clone();
    let f = Closure::<dyn FnMut(JsValue, JsValue, JsValue)>::new(move |chunk: JsValue, seq: JsValue, via: JsValue| {
        record.push(&js_sys::Array::of3(&chunk, &seq, &via));
    });
    (f.into_js_value().unchecked_into(), seen)
}

/// The chunks recorded: `(text, seq, via)`.
fn chunks(seen: &js_sys::Array) -> Vec<(String, u64, String)> {
    rust(seen)
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c[0].as_str().unwrap().to_owned(), c[1].as_u64().unwrap(), c[2].as_str().unwrap().to_owned()))
        .collect()
}

/// The words of the chat answer the chunks carry, in order (the SSE events joined, then read).
fn words(chunks: &[(String, u64, String)]) -> String {
    let text: String = chunks.iter().map(|c| c.0.as_str()).collect();
    text.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

fn assert_in_order_once(chunks: &[(String, u64, String)]) {
    let seqs: Vec<u64> = chunks.iter().map(|c| c.1).collect();
    assert_eq!(seqs, (1..=chunks.len() as u64).collect::<Vec<_>>(), "seq 1, 2, 3… each once");
}

async fn streamed(skapi: &Skapi, params: Value) -> (Value, Vec<(String, u64, String)>) {
    let (on_stream, seen) = stream_recorder();
    let params = js(params);
    js_sys::Reflect::set(&params, &"onStream".into(), &on_stream).unwrap();
    let result = settle(skapi.client_secret_request(params)).await.unwrap();
    (rust(&result), chunks(&seen))
}

#[wasm_bindgen_test]
async fn a_streamed_chat_reaches_on_stream_pushed_in_order_and_resolves() {
    let skapi = skapi();
    let (result, chunks) = streamed(&skapi, chat("?text=one+two+three+four+five", json!({}))).await;
    assert_eq!(words(&chunks), "one two three four five");
    assert_in_order_once(&chunks);
    assert!(chunks.iter().all(|c| c.2 == "push"), "the server pushed every chunk: {chunks:?}");
    assert_eq!(result["status"], "resolved");
    assert_eq!(result["status_code"], 200);
    assert_eq!(result["stream"], true);
    assert_eq!(result["last_seq"], chunks.len());
    // A stream without a queue got one, as Skapi's SDK names it.
    let history = settle(skapi.client_secret_request_history(js(json!({"url": chat_url("?text=one+two+three+four+five"), "method": "POST"})), None))
        .await
        .unwrap();
    let items = rust(&get(&history, "list"));
    let item = items.as_array().unwrap().iter().find(|i| i["id"] == result["id"]).expect("the stream is in history");
    let queue = item["queue_name"].as_str().unwrap_or_default();
    let random = queue.strip_prefix("anonymous-").unwrap_or_default();
    assert!(random.len() == 6 && random.bytes().all(|b| b.is_ascii_alphanumeric()), "{queue}");

    // Read again by id, from a chunk on, as after a reload.
    let (on_stream, seen) = stream_recorder();
    let options = js(json!({"url": chat_url("?text=one+two+three+four+five"), "method": "POST", "since": 2}));
    js_sys::Reflect::set(&options, &"onStream".into(), &on_stream).unwrap();
    let again = settle(skapi.client_secret_request_stream(result["id"].as_str().unwrap().into(), Some(options))).await.unwrap();
    let again_chunks = self::chunks(&seen);
    assert_eq!(again_chunks.iter().map(|c| c.1).collect::<Vec<_>>(), (3..=chunks.len() as u64).collect::<Vec<_>>());
    assert_eq!(again_chunks.iter().map(|c| &c.0).collect::<Vec<_>>(), chunks[2..].iter().map(|c| &c.0).collect::<Vec<_>>());
    assert_eq!(rust(&again)["last_seq"], chunks.len());

    // Finalized: the chunks become one stored body; a second finalize is refused.
    let options = || Some(js(json!({"url": chat_url("?text=one+two+three+four+five"), "method": "POST"})));
    let id: JsValue = result["id"].as_str().unwrap().into();
    let done = rust(&settle(skapi.client_secret_request_finalize(id.clone(), JsValue::UNDEFINED, options())).await.unwrap());
    assert_eq!(done["finalized"], true, "{done}");
    let again = rust(&settle(skapi.client_secret_request_finalize(id, JsValue::UNDEFINED, options())).await.unwrap());
    assert_eq!(again["finalized"], false);
    assert_eq!(again["message"], "The request was not sent with stream, so its response is already stored.");
}

#[wasm_bindgen_test]
async fn the_chunks_are_exactly_what_the_third_party_wrote_in_whole_characters() {
    let (result, chunks) = streamed(&skapi(), chat("?text=ça+va+한국어&emoji=1", json!({}))).await;
    assert_eq!(result["status"], "resolved");
    let event = |content: &str| format!("data: {}\n\n", json!({"choices": [{"delta": {"content": content}}]}));
    let expected = [event("ça"), event(" va"), event(" 한국어"), event(" 🦦 é"), "data: [DONE]\n\n".to_owned()].concat();
    let text: String = chunks.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(text, expected, "byte for byte, the emoji whole although it arrived in two writes");
    assert!(!text.contains('\u{fffd}'), "no character was split");
    assert_in_order_once(&chunks);
}

#[wasm_bindgen_test]
async fn without_push_the_stream_is_read_by_polling() {
    let skapi = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": format!("{}/nopush", stand_in())})))).unwrap();
    let (result, chunks) = streamed(&skapi, chat("?text=a+b+c+d&gap=30", json!({"poll": 25}))).await;
    assert_eq!(words(&chunks), "a b c d");
    assert_in_order_once(&chunks);
    assert!(chunks.iter().all(|c| c.2 == "poll"), "{chunks:?}");
    assert_eq!(result["status"], "resolved");
    assert_eq!(result["last_seq"], chunks.len());
}

#[wasm_bindgen_test]
async fn a_dropped_push_resumes_without_losing_or_repeating_a_chunk() {
    let skapi = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": format!("{}/droppush", stand_in())})))).unwrap();
    let text = "w1 w2 w3 w4 w5 w6 w7 w8 w9 w10";
    let (result, chunks) = streamed(&skapi, chat(&format!("?text={}&gap=15", text.replace(' ', "+")), json!({"poll": 25}))).await;
    assert_eq!(words(&chunks), text);
    assert_in_order_once(&chunks);
    assert_eq!(result["status"], "resolved");
}

#[wasm_bindgen_test]
async fn a_third_party_that_dies_mid_stream_ends_failed_with_what_it_wrote() {
    let (result, chunks) = streamed(&skapi(), chat("?text=alpha+beta+gamma+delta&die=2", json!({}))).await;
    assert_eq!(result["status"], "failed", "{result}");
    assert_eq!(words(&chunks), "alpha beta");
    assert_in_order_once(&chunks);
    assert!(result["error"]["code"].is_string(), "{result}");
    assert_eq!(result["last_seq"], chunks.len());
}

#[wasm_bindgen_test]
async fn a_secret_split_across_writes_reaches_no_chunk() {
    let (result, chunks) = streamed(&skapi(), chat("?text=key+follows&split=1", json!({}))).await;
    assert_eq!(result["status"], "resolved");
    let text: String = chunks.iter().map(|c| c.0.as_str()).collect();
    assert!(text.contains("\"key\""), "{text}");
    assert!(!text.contains("sk-browser"), "the secret reached a chunk: {text}");
}

#[wasm_bindgen_test]
async fn a_stream_can_be_stopped_and_cancelled_mid_answer() {
    let skapi = skapi();
    let (on_stream, seen) = stream_recorder();
    let params = js(chat("?text=s1+s2+s3+s4+s5+s6+s7+s8&gap=150", json!({})));
    js_sys::Reflect::set(&params, &"onStream".into(), &on_stream).unwrap();
    let running = skapi.client_secret_request(params);
    while seen.length() == 0 {
        sleep(20).await;
    }
    call(&running, "stop", &JsValue::UNDEFINED);
    let stopped = rust(&settle(running).await.unwrap());
    assert_eq!(stopped["status"], "stopped");
    let id = stopped["id"].as_str().unwrap().to_owned();

    // Cancelled on the server: a reader of the same stream ends failed, CANCELED.
    let url = chat_url("?text=s1+s2+s3+s4+s5+s6+s7+s8&gap=150");
    let reading = skapi.client_secret_request_stream(id.clone().into(), Some(js(json!({"url": url, "method": "POST"}))));
    let removed = settle(skapi.cancel_client_secret_request(js(json!({"url": url, "method": "POST", "id": id})))).await.unwrap();
    assert_eq!(rust(&removed)["removed"], true, "{:?}", rust(&removed));
    let ended = rust(&settle(reading).await.unwrap());
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ended["error"]["code"], "CANCELED");
}

#[wasm_bindgen_test]
async fn stream_options_are_checked_before_anything_is_sent() {
    let skapi = skapi();
    let err = settle(skapi.client_secret_request(js(chat("", json!({"stream": false, "realtime": true}))))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
    let err = settle(skapi.client_secret_request_stream(JsValue::UNDEFINED, None)).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequestStream()");
    let options = js(json!({"url": chat_url(""), "method": "POST", "since": -1}));
    let err = settle(skapi.client_secret_request_stream("1:a".into(), Some(options))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequestStream()");
    let err = settle(skapi.client_secret_request_finalize("1:a".into(), JsValue::UNDEFINED, None)).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequestFinalize()");
}
