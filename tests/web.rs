//! The SDK in headless Chromium against a real skapi-server and a stand-in third-party API,
//! both started by `scripts/test-browser.sh` (which passes their addresses at build time).
#![cfg(target_arch = "wasm32")]

use js_sys::{Function, Promise, Reflect, JSON};
use serde_json::{json, Value};
use skapi_wasm::Skapi;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

mod common;

use common::*;

#[wasm_bindgen_test]
async fn seed_example_with_poll_resolves_with_the_third_party_answer() {
    let params = js(seed(json!({"poll": 50})));
    let seen = js_sys::Array::new();
    let record = seen.clone();
    let on_response = Closure::<dyn FnMut(JsValue)>::new(move |v: JsValue| {
        record.push(&v);
    });
    Reflect::set(&params, &"onResponse".into(), on_response.as_ref().unchecked_ref::<Function>()).unwrap();
    let result = settle(skapi().client_secret_request(params)).await.unwrap();
    let result = rust(&result);
    assert_eq!(result["data"][0]["b64_json"], "image of A cute baby sea otter");
    assert_eq!(result["n"], 1, "the number stayed a number");
    assert_eq!(seen.length(), 1, "onResponse was called once");
}

#[wasm_bindgen_test]
async fn seed_example_without_poll_resolves_pending_with_a_poll_method() {
    let pending = settle(skapi().client_secret_request(js(seed(json!({}))))).await.unwrap();
    assert_eq!(get(&pending, "status").as_string().as_deref(), Some("pending"));
    let id = get(&pending, "id").as_string().unwrap();
    assert!(skapi_core::id::is_short(&id), "{id}");
    let poll: Function = get(&pending, "poll").dyn_into().expect("a poll() method");
    let polled: Promise = poll.call1(&pending, &js(json!({"latency": 30}))).unwrap().dyn_into().unwrap();
    let result = rust(&settle(polled).await.unwrap());
    assert_eq!(result["data"][0]["b64_json"], "image of A cute baby sea otter");

    let url = format!("{}/v1/images/generations", stand_in());
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let list = rust(&get(&history, "list"));
    let item = list.as_array().unwrap().iter().find(|i| i["id"] == json!(id)).expect("the request is in history");
    assert_eq!(item["status"], "resolved");
    assert_eq!(item["status_code"], 200);
    assert_eq!(item["request_body"]["prompt"], "A cute baby sea otter");
    assert_eq!(item["response_body"]["data"][0]["b64_json"], "image of A cute baby sea otter");
    assert!(item["created"].as_u64().unwrap() <= item["updated"].as_u64().unwrap());
    assert!(!JSON::stringify(&history).unwrap().as_string().unwrap().contains("sk-browser"), "no secret in history");
    assert!(js_sys::Array::is_array(&get(&history, "pending")));
    assert!(js_sys::Array::is_array(&get(&history, "startKeyHistory")));
    assert!(get(&history, "endOfList").is_truthy() || get(&history, "startKey").is_truthy());
}

#[wasm_bindgen_test]
async fn history_with_poll_gives_a_promise_per_unfinished_item() {
    let url = format!("{}/v1/images/generations?delay=600", stand_in());
    let accepted = settle(skapi().client_secret_request(js(seed(json!({"url": url}))))).await.unwrap();
    let id = get(&accepted, "id").as_string().unwrap();
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "post", "poll": 40})), None)).await.unwrap();
    let pending: js_sys::Array = get(&history, "pending").dyn_into().unwrap();
    assert!(pending.length() >= 1, "the running request has a pending promise");
    let all = settle(Promise::all(&pending)).await.unwrap();
    let finals = rust(&all);
    let done = finals.as_array().unwrap().iter().find(|i| i["id"] == json!(id)).expect("our request settled");
    assert_eq!(done["status"], "resolved");
    assert_eq!(done["status_code"], 200);
    assert_eq!(done["response_body"]["data"][0]["b64_json"], "image of A cute baby sea otter");
}

#[wasm_bindgen_test]
async fn get_with_the_secret_in_params() {
    let params = json!({"clientSecretName": "maps", "url": format!("{}/maps", stand_in()), "method": "get",
                        "params": {"key": "$CLIENT_SECRET", "q": "Seoul"}, "poll": 30});
    let result = settle(skapi().client_secret_request(js(params))).await.unwrap();
    assert_eq!(rust(&result), json!({"place": "Seoul"}));
}

#[wasm_bindgen_test]
async fn invalid_params_reject_before_any_network_call() {
    // An endpoint nobody listens on: a network call would fail with NETWORK_ERROR instead.
    let offline = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": "http://127.0.0.1:9/"})))).unwrap();
    let cases = [
        (
            seed(json!({"headers": {"Authorization": "Bearer x"}})),
            "At least one parameter value should include \"$CLIENT_SECRET\" in \"data\" or \"headers\".",
        ),
        (seed(json!({"method": "TRACE"})), skapi_core::method::INVALID_METHOD),
        (seed(json!({"poll": -1})), "\"poll\" should be a non-negative number."),
        (seed(json!({"clientSecretName": ""})), "Key \"clientSecretName\" is required."),
        (seed(json!({"url": "not a url"})), "\"not a url\" is an invalid url."),
    ];
    for (params, message) in cases {
        let err = settle(offline.client_secret_request(js(params))).await.unwrap_err();
        assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
        assert_eq!(get(&err, "message").as_string().as_deref(), Some(message));
    }
    let err = settle(offline.client_secret_request(JsValue::UNDEFINED)).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
    let err =
        settle(offline.client_secret_request_history(js(json!({"url": "https://x.io", "method": "POST", "poll": -5})), None)).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequestHistory()");
    // The same call against the offline endpoint, once valid, does reach for the network.
    let err = settle(offline.client_secret_request(js(seed(json!({}))))).await.unwrap_err();
    assert_skapi_error(&err, "NETWORK_ERROR", "clientSecretRequest()");
}

#[wasm_bindgen_test]
async fn failures_reject_with_status_and_body_and_call_on_error() {
    let params = js(seed(json!({"url": format!("{}/status/500", stand_in()), "poll": 30})));
    let errors = js_sys::Array::new();
    let record = errors.clone();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(move |e: JsValue| {
        record.push(&e);
    });
    Reflect::set(&params, &"onError".into(), on_error.as_ref().unchecked_ref::<Function>()).unwrap();
    let err = settle(skapi().client_secret_request(params)).await.unwrap_err();
    assert_skapi_error(&err, "THIRD_PARTY_ERROR", "clientSecretRequest()");
    assert_eq!(get(&err, "status_code").as_f64(), Some(500.0));
    assert_eq!(rust(&get(&err, "body")), json!({"status": 500}));
    assert_eq!(errors.length(), 1);

    let err = settle(skapi().client_secret_request(js(seed(json!({"clientSecretName": "missing"}))))).await.unwrap_err();
    assert_skapi_error(&err, "NOT_EXISTS", "clientSecretRequest()");
}

#[wasm_bindgen_test]
fn the_public_identifier_is_kept_per_service() {
    let key = format!("skapi:public_identifier:{SERVICE}:{OWNER}");
    let _ = skapi();
    let storage = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let first = storage.get_item(&key).unwrap().expect("stored");
    assert_eq!(first.len(), 32);
    let _ = skapi();
    assert_eq!(storage.get_item(&key).unwrap().unwrap(), first);
}

/// JSON with every object's keys sorted, so two documents compare by content.
fn canonical(v: &JsValue) -> String {
    let f = Function::new_with_args(
        "v",
        "return JSON.stringify(v, (k, x) => x && typeof x === 'object' && !Array.isArray(x) ? \
         Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x)",
    );
    f.call1(&JsValue::NULL, v).unwrap().as_string().unwrap()
}

#[wasm_bindgen_test]
async fn tricky_values_reach_the_third_party_as_the_page_wrote_them() {
    // Parsed by the browser, so `-0`, big numbers and a `__proto__` key are the page's own.
    let data = JSON::parse(
        r#"{"big": 12345678901234567890, "huge": 1e300, "tiny": 5e-324, "third": 0.30000000000000004, "neg0": -0,
            "ключ": "значение", "emoji😀": ["😀", null, [[]], {"__proto__": {"x": 1}}], "__proto__": {"polluted": true},
            "nested": [[1, [2, [null, [true, false]]]]], "nothing": null, "auth": "Bearer $CLIENT_SECRET"}"#,
    )
    .unwrap();
    let params = js(json!({
        "clientSecretName": "openai",
        "url": format!("{}/v1/echo", stand_in()),
        "method": "POST",
        "headers": {"Content-Type": "application/json"},
        "params": {"list": [1, "two", null], "big": 12345678901234567890u64, "uni": "ключ✓"},
        "poll": 30
    }));
    Reflect::set(&params, &"data".into(), &data).unwrap();
    let echoed = settle(skapi().client_secret_request(params)).await.unwrap();
    let raw = get(&echoed, "raw").as_string().expect("the stand-in wrote back the body");
    let received = JSON::parse(&raw).unwrap();
    let written = JSON::parse(&JSON::stringify(&data).unwrap().as_string().unwrap()).unwrap();
    assert_eq!(canonical(&received), canonical(&written), "the body, as the page wrote it (as JSON.stringify gives it)");
    assert!(Reflect::get(&js_sys::Object::new(), &"polluted".into()).unwrap().is_undefined(), "no prototype was touched");
    let query = web_sys::UrlSearchParams::new_with_str(&get(&echoed, "search").as_string().unwrap()).unwrap();
    let list: Vec<String> = query.get_all("list").iter().map(|v| v.as_string().unwrap()).collect();
    assert_eq!(list, ["1", "two", ""]);
    assert_eq!(query.get("big").as_deref(), Some("12345678901234567000"), "what String(12345678901234567890) gives");
    assert_eq!(query.get("uni").as_deref(), Some("ключ✓"));
}

#[wasm_bindgen_test]
async fn patch_sends_its_body_and_head_its_headers() {
    let url = format!("{}/v1/echo", stand_in());
    let patch = json!({"clientSecretName": "openai", "url": url, "method": "PATCH", "headers": {"Authorization": "Bearer $CLIENT_SECRET"},
                       "data": {"n": 1}, "poll": 30});
    let echoed = rust(&settle(skapi().client_secret_request(js(patch))).await.unwrap());
    assert_eq!((echoed["method"].as_str(), echoed["raw"].as_str()), (Some("PATCH"), Some(r#"{"n":1}"#)), "{echoed}");

    let head = json!({"clientSecretName": "openai", "url": url, "method": "head", "headers": {"Authorization": "Bearer $CLIENT_SECRET"},
                      "params": {"q": "1"}, "poll": 30});
    let answered = settle(skapi().client_secret_request(js(head))).await.unwrap();
    assert!(answered.as_string().is_some_and(|s| s.is_empty()) || answered.is_null(), "a HEAD answer has no body: {answered:?}");
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "HEAD"})), None)).await.unwrap();
    let item = rust(&get(&history, "list"))[0].clone();
    assert_eq!((item["status"].as_str(), item["status_code"].as_u64()), (Some("resolved"), Some(200)), "{item}");
    assert_eq!(item["request_body"], json!({"q": "1"}));
}

fn bytes_of(buffer: &JsValue) -> Vec<u8> {
    assert!(buffer.is_instance_of::<js_sys::ArrayBuffer>(), "an ArrayBuffer: {buffer:?}");
    js_sys::Uint8Array::new(buffer).to_vec()
}

async fn blob_bytes(blob: &JsValue) -> (String, Vec<u8>) {
    let kind = get(blob, "type").as_string().expect("a Blob");
    let buffer = settle(call(blob, "arrayBuffer", &JsValue::UNDEFINED).dyn_into().unwrap()).await.unwrap();
    (kind, bytes_of(&buffer))
}

#[wasm_bindgen_test]
async fn answers_come_as_array_buffers_blobs_or_text_byte_for_byte() {
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(512).collect();
    let speech = |response_type: &str| {
        json!({"clientSecretName": "openai", "url": format!("{}/v1/audio/speech?n=2", stand_in()), "method": "POST",
               "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"input": "hello"}, "poll": 30, "responseType": response_type})
    };
    let buffer = settle(skapi().client_secret_request(js(speech("arrayBuffer")))).await.unwrap();
    assert_eq!(bytes_of(&buffer), every_byte, "every byte value, exactly");
    let blob = settle(skapi().client_secret_request(js(speech("blob")))).await.unwrap();
    assert_eq!(blob_bytes(&blob).await, ("audio/mpeg".to_owned(), every_byte.clone()));

    // A JSON answer asked for as bytes: the text the third party wrote, exactly.
    let echo = json!({"clientSecretName": "openai", "url": format!("{}/v1/echo", stand_in()), "method": "POST",
                      "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"n": 1}, "responseType": "arrayBuffer"});
    let pending = settle(skapi().client_secret_request(js(echo))).await.unwrap();
    let buffer = call_async(&pending, "poll", &js(json!({"latency": 30}))).await.unwrap();
    let text = String::from_utf8(bytes_of(&buffer)).unwrap();
    assert_eq!(text, r#"{"method":"POST","raw":"{\"n\":1}","search":"","contentType":"application/json"}"#);

    // History items too; an unknown responseType is refused.
    let url = format!("{}/v1/audio/speech?n=2", stand_in());
    let history =
        settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "POST", "responseType": "blob"})), None)).await.unwrap();
    let item = js_sys::Array::from(&get(&history, "list")).get(0);
    assert_eq!(blob_bytes(&get(&item, "response_body")).await, ("audio/mpeg".to_owned(), every_byte));
    let err = settle(skapi().client_secret_request(js(speech("stream")))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
}

#[wasm_bindgen_test]
async fn a_file_in_data_without_a_multipart_type_is_refused_naming_where_it_is_never_sent_as_an_empty_object() {
    let blob_class: js_sys::Function = get(&js_sys::global(), "Blob").dyn_into().unwrap();
    let blob = Reflect::construct(&blob_class, &js_sys::Array::of1(&js_sys::Array::of1(&"hello".into()))).unwrap();
    let bytes: JsValue = js_sys::Uint8Array::from(&[1u8, 2, 3][..]).into();
    let needs = |path: &str| format!("\"{path}\" holds a file: send files with the header \"Content-Type\": \"multipart/form-data\".");
    for (place, value, expected) in [("file", blob.clone(), needs("data[file]")), ("list", js_sys::Array::of1(&bytes).into(), needs("data[list][0]"))]
    {
        let params = js(seed(json!({"poll": 30})));
        let data = get(&params, "data");
        Reflect::set(&data, &place.into(), &value).unwrap();
        let err = settle(skapi().client_secret_request(params)).await.unwrap_err();
        assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
        assert_eq!(get(&err, "message").as_string(), Some(expected));
    }
}

/// Runs JavaScript `body` (a function body of `a`) and returns what it returns.
fn run_js(body: &str, a: &JsValue) -> JsValue {
    js_sys::Function::new_with_args("a", body).call1(&JsValue::NULL, a).unwrap()
}

/// Multipart params to the hashing stand-in, with `files` (a JS object) merged into `data`.
fn upload_params(files: &JsValue, data: Value) -> JsValue {
    let params = js(json!({"clientSecretName": "openai", "url": format!("{}/v1/hash", stand_in()), "method": "POST", "poll": 30,
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET", "Content-Type": "multipart/form-data"}, "data": data}));
    js_sys::Object::assign(get(&params, "data").unchecked_ref::<js_sys::Object>(), files.unchecked_ref::<js_sys::Object>());
    params
}

#[wasm_bindgen_test]
async fn files_in_data_reach_the_third_party_as_multipart_with_their_names_types_and_exact_bytes() {
    let files = run_js(
        "const bytes = Uint8Array.from({length: 512}, (_, i) => i % 256);
         return {file: new File([bytes], 'speech.wav', {type: 'audio/wav'}),
                 attachments: [new Blob(['hello'], {type: 'text/plain'}), bytes.subarray(0, 3)]};",
        &JsValue::NULL,
    );
    let params = upload_params(&files, json!({"model": "whisper-1", "meta": {"lang": "ko"}}));
    let hashed = rust(&settle(skapi().client_secret_request(params.clone())).await.unwrap());
    let file = |name: &str, filename: &str, kind: &str, size: usize, sha256: &str| json!({"name": name, "filename": filename, "type": kind, "size": size, "sha256": sha256});
    assert_eq!(
        hashed["parts"],
        json!([
            {"name": "meta[lang]", "value": "ko"},
            {"name": "model", "value": "whisper-1"},
            file("attachments", "blob", "text/plain", 5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
            file("attachments", "blob", "application/octet-stream", 3, "ae4b3280e56e2faf83f414a6e3dabe9d5fbe18976544c05fed121accb85b53fc"),
            file("file", "speech.wav", "audio/wav", 512, "110009dcee21620b166f3abfecb5eff7a873be729d1c2d53822e7acc5f34eb9b"),
        ]),
        "{hashed}"
    );
    assert_eq!(run_js("return a instanceof File", &get(&get(&params, "data"), "file")), true, "the caller's data is left as it was");

    // History keeps each file's name, type and size, not its bytes.
    let url = format!("{}/v1/hash", stand_in());
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let kept = rust(&js_sys::Array::from(&get(&history, "list")).get(0))["request_body"].clone();
    assert_eq!(kept["file"], json!({"filename": "speech.wav", "content_type": "audio/wav", "size": 512}), "{kept}");
    assert_eq!(kept["attachments"][1], json!({"filename": "blob", "content_type": "application/octet-stream", "size": 3}));
}

#[wasm_bindgen_test]
async fn a_file_over_the_servers_request_limit_is_refused_before_anything_is_sent() {
    // skapi-server's default --max-request-bytes is 1 MiB.
    let files = run_js("return {file: new File([new Uint8Array(1100000)], 'big.bin')};", &JsValue::NULL);
    let err = settle(skapi().client_secret_request(upload_params(&files, json!({"tag": "too-big"})))).await.unwrap_err();
    assert_skapi_error(&err, "PAYLOAD_TOO_LARGE", "clientSecretRequest()");
    let url = format!("{}/v1/hash", stand_in());
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let list = rust(&get(&history, "list"));
    assert!(list.as_array().unwrap().iter().all(|item| item["request_body"]["tag"] != "too-big"), "never recorded: {list}");
}

#[wasm_bindgen_test]
async fn a_blob_or_typed_array_as_data_is_sent_as_the_body_byte_for_byte() {
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(512).collect();
    // sha256 of every byte value twice, as the stand-in computes it.
    const DIGEST: &str = "110009dcee21620b166f3abfecb5eff7a873be729d1c2d53822e7acc5f34eb9b";
    let typed: JsValue = js_sys::Uint8Array::from(&every_byte[..]).into();
    let blob_class: js_sys::Function = get(&js_sys::global(), "Blob").dyn_into().unwrap();
    let options = js(json!({"type": "audio/wav"}));
    let blob = Reflect::construct(&blob_class, &js_sys::Array::of2(&js_sys::Array::of1(&typed), &options)).unwrap();
    for (data, content_type) in [(typed.clone(), "application/octet-stream"), (blob, "audio/wav")] {
        let params = js(json!({"clientSecretName": "openai", "url": format!("{}/v1/hash", stand_in()), "method": "POST",
                              "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "poll": 30}));
        Reflect::set(&params, &"data".into(), &data).unwrap();
        let hashed = rust(&settle(skapi().client_secret_request(params)).await.unwrap());
        assert_eq!(hashed["size"], 512, "{hashed}");
        assert_eq!((hashed["contentType"].as_str(), hashed["sha256"].as_str()), (Some(content_type), Some(DIGEST)), "exactly the bytes");
    }
}
