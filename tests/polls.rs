//! Polls that stop, cancel, queues, expiry and gateway discovery, in headless Chromium.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use js_sys::Promise;
use serde_json::json;
use skapi_wasm::Skapi;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn slow_url(ms: u32) -> String {
    format!("{}/v1/images/generations?delay={ms}", stand_in())
}

#[wasm_bindgen_test]
async fn a_stopped_poll_resolves_stopped_and_calls_no_callback() {
    let skapi = skapi();
    let (on_response, responses) = recorder();
    let (on_error, errors) = recorder();
    let params = js(seed(json!({"url": slow_url(1500)})));
    js_sys::Reflect::set(&params, &"onResponse".into(), &on_response).unwrap();
    js_sys::Reflect::set(&params, &"onError".into(), &on_error).unwrap();
    let pending = settle(skapi.client_secret_request(params)).await.unwrap();
    assert_eq!(responses.length(), 1, "onResponse saw the pending result");
    let poll: Promise = call(&pending, "poll", &js(json!({"latency": 30}))).dyn_into().unwrap();
    assert_eq!(skapi.active_polls(), 1);
    call(&poll, "stop", &JsValue::UNDEFINED);
    let stopped = settle(poll).await.unwrap();
    assert_eq!(rust(&get(&stopped, "status")), json!("stopped"));
    assert!(get(&stopped, "id").as_string().unwrap().ends_with(&get(&pending, "id").as_string().unwrap()));
    assert!(skapi.is_poll_stopped(stopped));
    assert!(!skapi.is_poll_stopped(pending.clone()));
    assert_eq!(skapi.active_polls(), 0);
    sleep(100).await;
    assert_eq!((responses.length(), errors.length()), (1, 0), "no callback after the stop");

    // The request itself goes on: a new poll finds its answer.
    let result = call_async(&pending, "poll", &js(json!({"latency": 50}))).await.unwrap();
    assert_eq!(rust(&result)["data"][0]["b64_json"], "image of A cute baby sea otter");
}

#[wasm_bindgen_test]
async fn stop_client_secret_polling_by_id_queue_and_all() {
    let skapi = skapi();
    let pending = settle(skapi.client_secret_request(js(seed(json!({"url": slow_url(1200), "queue": "stop-q"}))))).await.unwrap();
    let start = || -> Promise { call(&pending, "poll", &js(json!({"latency": 40}))).dyn_into().unwrap() };
    let (a, b) = (start(), start());
    assert_eq!(skapi.stop_client_secret_polling(Some(js(json!({"queue": "other"})))), 0);
    assert_eq!(skapi.stop_client_secret_polling(Some(js(json!({"queue": "stop-q"})))), 2);
    for p in [a, b] {
        assert_eq!(rust(&get(&settle(p).await.unwrap(), "status")), json!("stopped"));
    }
    let c = start();
    let by_id = json!({"url": slow_url(1200), "method": "POST", "id": get(&pending, "id").as_string().unwrap()});
    assert_eq!(skapi.stop_client_secret_polling(Some(js(by_id))), 1);
    assert!(skapi.is_poll_stopped(settle(c).await.unwrap()));
    let (d, e) = (start(), start());
    assert_eq!(skapi.stop_client_secret_polling(None), 2);
    for p in [d, e] {
        assert!(skapi.is_poll_stopped(settle(p).await.unwrap()));
    }
    assert_eq!(skapi.active_polls(), 0);
}

#[wasm_bindgen_test]
async fn ten_thousand_polls_leave_nothing_behind() {
    let skapi = skapi();
    let pending = settle(skapi.client_secret_request(js(seed(json!({}))))).await.unwrap();
    let memory =
        || wasm_bindgen::memory().unchecked_into::<js_sys::WebAssembly::Memory>().buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length();
    let arg = js(json!({"latency": 60000}));
    // Warm up allocator pools before measuring.
    for _ in 0..200 {
        let p: Promise = call(&pending, "poll", &arg).dyn_into().unwrap();
        call(&p, "stop", &JsValue::UNDEFINED);
        settle(p).await.unwrap();
    }
    collect_garbage().await;
    let before = memory();
    for _ in 0..10_000 {
        let p: Promise = call(&pending, "poll", &arg).dyn_into().unwrap();
        call(&p, "stop", &JsValue::UNDEFINED);
        settle(p).await.unwrap();
    }
    assert_eq!(skapi.active_polls(), 0, "every poll left the registry");
    collect_garbage().await;
    let grown = memory() - before;
    assert!(grown <= 256 * 1024, "wasm memory grew {grown} bytes over 10,000 polls");
}

#[wasm_bindgen_test]
async fn cancel_a_request_then_its_poll_rejects_canceled() {
    let skapi = skapi();
    let url = slow_url(3000);
    let pending = settle(skapi.client_secret_request(js(seed(json!({"url": url}))))).await.unwrap();
    let id = get(&pending, "id").as_string().unwrap();
    let answer = settle(skapi.cancel_client_secret_request(js(json!({"url": url, "method": "POST", "id": id})))).await.unwrap();
    assert_eq!(rust(&answer)["removed"], true);
    let err = call_async(&pending, "poll", &js(json!({"latency": 20}))).await.unwrap_err();
    assert_skapi_error(&err, "CANCELED", "clientSecretRequest()");
    let err = settle(skapi.cancel_client_secret_request(js(json!({"url": url, "method": "POST"})))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "cancelClientSecretRequest()");
}

#[wasm_bindgen_test]
async fn queue_count_and_client_side_queue_order() {
    let skapi = skapi();
    let url = slow_url(600);
    // Two calls on one queue, made together: the second is sent only after the first resolved.
    let first = skapi.client_secret_request(js(seed(json!({"url": url, "queue": "order-q", "poll": 30}))));
    let second = skapi.client_secret_request(js(seed(json!({"url": url, "queue": "order-q", "poll": 30}))));
    sleep(150).await;
    let count = settle(skapi.client_secret_request_queue_count(js(json!({"queue": "order-q"})))).await.unwrap();
    assert_eq!(rust(&count), json!({"queue_name": "order-q", "in_queue": 0}), "the second call is still in the browser");
    settle(first).await.unwrap();
    settle(second).await.unwrap();
    let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST", "queue": "order-q"})), None)).await.unwrap();
    let list = rust(&get(&history, "list"));
    let items = list.as_array().unwrap();
    assert_eq!(items.len(), 2);
    let (newer, older) = (&items[0], &items[1]);
    assert!(newer["created"].as_u64() >= older["updated"].as_u64(), "sent after the first finished: {list}");

    // Without polling, queued calls are sent in order and wait on the server.
    let a = settle(skapi.client_secret_request(js(seed(json!({"url": url, "queue": "count-q"}))))).await.unwrap();
    let b = settle(skapi.client_secret_request(js(seed(json!({"url": url, "queue": "count-q"}))))).await.unwrap();
    assert_eq!(rust(&get(&b, "in_queue")), json!(2), "the first counts while it waits or runs: {:?}", rust(&b));
    let count = settle(skapi.client_secret_request_queue_count(js(json!({"queue": "count-q"})))).await.unwrap();
    assert_eq!(rust(&count), json!({"queue_name": "count-q", "in_queue": 1}));
    let _ = (a, b);
    let err = settle(skapi.client_secret_request_queue_count(js(json!({})))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequestQueueCount()");
}

#[wasm_bindgen_test]
async fn polling_an_expired_request_rejects_expired() {
    let err = settle(skapi().client_secret_request(js(seed(json!({"url": slow_url(4000), "expires": 1000, "poll": 100}))))).await.unwrap_err();
    assert_skapi_error(&err, "EXPIRED", "clientSecretRequest()");
}

#[wasm_bindgen_test]
async fn finds_the_gateways_through_the_cdn_without_an_endpoint() {
    let cdn = format!("{}/cdn", stand_in());
    let skapi = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"cdn": cdn})))).unwrap();
    let result = settle(skapi.client_secret_request(js(seed(json!({"poll": 30}))))).await.unwrap();
    assert_eq!(rust(&result)["data"][0]["b64_json"], "image of A cute baby sea otter");

    let unknown = Skapi::new("none-such".into(), OWNER.into(), Some(js(json!({"cdn": cdn})))).unwrap();
    let err = settle(unknown.client_secret_request(js(seed(json!({}))))).await.unwrap_err();
    assert_skapi_error(&err, "NOT_EXISTS", "clientSecretRequest()");
}

/// `new AbortController()`
fn abort_controller() -> JsValue {
    let constructor: js_sys::Function = get(&js_sys::global(), "AbortController").dyn_into().unwrap();
    js_sys::Reflect::construct(&constructor, &js_sys::Array::new()).unwrap()
}

fn with_signal(params: serde_json::Value, controller: &JsValue) -> JsValue {
    let params = js(params);
    js_sys::Reflect::set(&params, &"signal".into(), &get(controller, "signal")).unwrap();
    params
}

#[wasm_bindgen_test]
async fn an_aborted_signal_rejects_at_once_and_sends_nothing() {
    let skapi = skapi();
    let controller = abort_controller();
    call(&controller, "abort", &JsValue::UNDEFINED);
    let url = format!("{}&tag=aborted-before", slow_url(10));
    let err = settle(skapi.client_secret_request(with_signal(seed(json!({"url": url, "poll": 30})), &controller))).await.unwrap_err();
    assert_skapi_error(&err, "CANCELED", "AbortError");
    let err = settle(skapi.client_secret_request_history(with_signal(json!({"url": url, "method": "POST"}), &controller), None)).await.unwrap_err();
    assert_skapi_error(&err, "CANCELED", "AbortError");
    sleep(100).await;
    let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    assert_eq!(rust(&get(&history, "list")), json!([]), "nothing was sent");
}

#[wasm_bindgen_test]
async fn aborting_a_running_request_rejects_and_cancels_it_on_the_server() {
    let skapi = skapi();
    let controller = abort_controller();
    let url = format!("{}&tag=aborted-running", slow_url(1500));
    let running = skapi.client_secret_request(with_signal(seed(json!({"url": url, "poll": 30})), &controller));
    sleep(200).await;
    call(&controller, "abort", &JsValue::UNDEFINED);
    let err = settle(running).await.unwrap_err();
    assert_skapi_error(&err, "CANCELED", "AbortError");
    assert_eq!(skapi.active_polls(), 0);
    // The server was told: the request ends cancelled, not resolved.
    let mut status = json!(null);
    for _ in 0..50 {
        let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
        status = rust(&get(&history, "list"))[0].clone();
        if status["status"] == "failed" {
            break;
        }
        sleep(50).await;
    }
    assert_eq!((status["status"].as_str(), status["error"]["code"].as_str()), (Some("failed"), Some("CANCELED")), "{status}");

    // poll() takes a signal too.
    let pending = settle(skapi.client_secret_request(js(seed(json!({"url": format!("{}&tag=aborted-poll", slow_url(1500))}))))).await.unwrap();
    let controller = abort_controller();
    let polling: Promise = call(&pending, "poll", &with_signal(json!({"latency": 30}), &controller)).dyn_into().unwrap();
    sleep(100).await;
    call(&controller, "abort", &JsValue::UNDEFINED);
    assert_skapi_error(&settle(polling).await.unwrap_err(), "CANCELED", "AbortError");
}
