//! `forwardRequest(form, options)`, Skapi's current door, in headless Chromium against
//! skapi-server: the form merged into `data` or `params`, files left out, `multipart: true`
//! with exact bytes, a signal that only stops this page's work, every refusal before anything
//! is sent, the history's `queue_exact`, `skapiHeaders` as the server writes them, and a request
//! without a secret refused by a server that allows none.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::HtmlFormElement;

wasm_bindgen_test_configure!(run_in_browser);

/// Runs JavaScript `body` (a function body of `a`) and returns what it returns.
fn run_js(body: &str, a: &JsValue) -> JsValue {
    js_sys::Function::new_with_args("a", body).call1(&JsValue::NULL, a).unwrap()
}

/// A form in the page holding only `inner`: the body, nothing about where it goes.
fn form(inner: &str) -> HtmlFormElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let form: HtmlFormElement = document.create_element("form").unwrap().dyn_into().unwrap();
    form.set_inner_html(inner);
    document.body().unwrap().append_child(&form).unwrap();
    form
}

/// Options sending to the stand-in's `path` with the key in the Authorization header, polling.
fn options(path: &str, extra: Value) -> Value {
    let mut options = json!({
        "secretName": "openai",
        "url": format!("{}{path}", stand_in()),
        "headers": {"Authorization": "Bearer $CLIENT_SECRET", "Content-Type": "application/json"},
        "poll": 30
    });
    for (k, v) in extra.as_object().unwrap() {
        options[k] = v.clone();
    }
    options
}

/// What the echoing stand-in received: `{method, raw, search, contentType}`.
async fn echoed(body: JsValue, options: Value) -> Value {
    let answer = settle(skapi().forward_request(body, js(options))).await.unwrap();
    rust(&answer)
}

#[wasm_bindgen_test]
async fn the_form_is_merged_into_data_and_the_options_win_a_clash() {
    let f = form(
        r#"<input name="prompt" value="A cute baby sea otter"><input name="n" type="number" value="3">
           <input name="size[w]" value="1024"><input name="tags" value="a"><input name="tags" value="b">"#,
    );
    let got = echoed(f.into(), options("/v1/echo", json!({"data": {"n": 1, "model": "gpt-image-1.5"}}))).await;
    assert_eq!(got["method"], "POST", "POST by default");
    let sent: Value = serde_json::from_str(got["raw"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"prompt": "A cute baby sea otter", "n": 1, "size": {"w": "1024"}, "tags": ["a", "b"], "model": "gpt-image-1.5"}));
}

#[wasm_bindgen_test]
async fn a_get_carries_the_form_in_its_query() {
    let data = run_js("const d = new FormData(); d.append('q', 'otters'); d.append('page', '2'); return d;", &JsValue::NULL);
    let got = echoed(data, options("/v1/echo", json!({"method": "GET", "params": {"page": "1"}}))).await;
    assert_eq!(got["method"], "GET");
    let mut query: Vec<&str> = got["search"].as_str().unwrap().trim_start_matches('?').split('&').collect();
    query.sort();
    assert_eq!(query, ["page=1", "q=otters"], "the explicit params win");
}

#[wasm_bindgen_test]
async fn files_are_left_out_of_a_json_body() {
    let f = form(r#"<input name="note" value="kept"><input name="photo" type="file">"#);
    let input = f.query_selector("[name=photo]").unwrap().unwrap();
    run_js("const t = new DataTransfer(); t.items.add(new File(['x'], 'x.png', {type: 'image/png'})); a.files = t.files;", &input.into());
    let got = echoed(f.into(), options("/v1/echo", json!({}))).await;
    assert_eq!(serde_json::from_str::<Value>(got["raw"].as_str().unwrap()).unwrap(), json!({"note": "kept"}));
    // A plain object's files too.
    let object = run_js("return {note: 'kept', photo: new Blob(['x']), list: [1, new Uint8Array(2)]};", &JsValue::NULL);
    let got = echoed(object, options("/v1/echo", json!({}))).await;
    assert_eq!(serde_json::from_str::<Value>(got["raw"].as_str().unwrap()).unwrap(), json!({"note": "kept", "list": [1]}));
}

const WAV_SHA256: &str = "110009dcee21620b166f3abfecb5eff7a873be729d1c2d53822e7acc5f34eb9b";

#[wasm_bindgen_test]
async fn multipart_sends_the_form_as_the_browser_would_with_exact_bytes() {
    let f = form(r#"<input name="model" value="whisper-1"><input name="file" type="file">"#);
    let input = f.query_selector("[name=file]").unwrap().unwrap();
    run_js(
        "const t = new DataTransfer(); t.items.add(new File([Uint8Array.from({length: 512}, (_, i) => i % 256)], 'speech.wav', {type: 'audio/wav'})); a.files = t.files;",
        &input.into(),
    );
    let mut opts = options("/v1/hash", json!({"multipart": true}));
    opts["headers"] = json!({"Authorization": "Bearer $CLIENT_SECRET"});
    let got = rust(&settle(skapi().forward_request(f.into(), js(opts.clone()))).await.unwrap());
    assert!(got["contentType"].as_str().unwrap().starts_with("multipart/form-data; boundary="), "{got}");
    assert_eq!(
        got["parts"],
        json!([{"name": "model", "value": "whisper-1"}, {"name": "file", "filename": "speech.wav", "type": "audio/wav", "size": 512, "sha256": WAV_SHA256}]),
        "{got}"
    );
    // A plain object, field by field: arrays repeat, null is '', objects are JSON text.
    let object =
        run_js("return {n: 2, tags: ['a', 'b'], none: null, meta: {k: 1}, file: new Blob(['hello'], {type: 'text/plain'})};", &JsValue::NULL);
    let got = rust(&settle(skapi().forward_request(object, js(opts))).await.unwrap());
    let parts = got["parts"].as_array().unwrap();
    let texts: Vec<_> = parts.iter().filter(|p| p.get("value").is_some()).map(|p| (p["name"].clone(), p["value"].clone())).collect();
    assert_eq!(
        texts,
        vec![
            (json!("n"), json!("2")),
            (json!("tags"), json!("a")),
            (json!("tags"), json!("b")),
            (json!("none"), json!("")),
            (json!("meta"), json!("{\"k\":1}"))
        ]
    );
    assert_eq!(parts.last().unwrap()["sha256"], "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
}

#[wasm_bindgen_test]
async fn every_refusal_is_skapis_and_nothing_is_sent() {
    let skapi = skapi();
    let url = format!("{}/v1/echo?refused", stand_in());
    let cases = [
        (JsValue::NULL, JsValue::UNDEFINED, "INVALID_PARAMETER", "\"options\" is required in the second argument."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"apiKeyHeader": "Authorization"}))), "INVALID_PARAMETER", "\"apiKeyHeader\" and \"apiKeyScheme\" are no longer supported. Store the key as a client secret, name it with \"secretName\", and put \"$CLIENT_SECRET\" where the key goes."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"responseType": "response"}))), "INVALID_PARAMETER", "\"responseType\": \"response\" is not available here. The request is relayed from the server and what comes back is the stored answer, not a live Response; the destination's status code is the \"status_code\" of the row forwardRequestHistory lists."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"realtime": true}))), "INVALID_PARAMETER", "\"realtime\" requires \"stream\": true."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"multipart": "yes"}))), "INVALID_PARAMETER", "\"multipart\" should be type: <boolean>."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"multipart": true}))), "INVALID_PARAMETER", "\"multipart\": true needs a form body in the first argument."),
        (js(json!({"a": 1})), js(options("/v1/echo?refused", json!({"multipart": true, "data": {"b": 2}}))), "INVALID_PARAMETER", "\"data\" cannot be sent with \"multipart\": true. The form itself is the body."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"headers": {"Authorization": "Bearer $CLIENT_SECRET", "X-Skapi-User": "admin"}}))), "INVALID_PARAMETER", "\"headers\" cannot set \"X-Skapi-User\": the \"x-skapi-\" prefix is reserved. Use \"skapiHeaders\" to tell the destination who the caller is."),
        (JsValue::NULL, js(options("/v1/echo?refused", json!({"skapiHeaders": "user"}))), "INVALID_PARAMETER", "\"skapiHeaders\" should be type: <boolean> or { user?: boolean; service?: boolean }."),
    ];
    for (body, opts, code, message) in cases {
        let err = settle(skapi.forward_request(body, opts)).await.expect_err(message);
        assert_skapi_error(&err, code, "forwardRequest()");
        assert_eq!(get(&err, "message").as_string().as_deref(), Some(message));
    }
    let aborted = run_js("const c = new AbortController(); c.abort(); return c.signal;", &JsValue::NULL);
    let opts = js(options("/v1/echo?refused", json!({})));
    js_sys::Reflect::set(&opts, &"signal".into(), &aborted).unwrap();
    let err = settle(skapi.forward_request(JsValue::NULL, opts)).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_REQUEST", "forwardRequest()");
    assert_eq!(get(&err, "message").as_string().as_deref(), Some("\"signal\" was already aborted."));
    let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    assert_eq!(rust(&get(&history, "list")), json!([]), "nothing was sent");
}

#[wasm_bindgen_test]
async fn a_signal_stops_this_pages_poll_and_leaves_the_request_alone() {
    let skapi = skapi();
    let controller = web_sys::AbortController::new().unwrap();
    let opts = js(options("/v1/images/generations?delay=1500&signal=forward", json!({"data": {"prompt": "slow otter"}, "poll": 100})));
    js_sys::Reflect::set(&opts, &"signal".into(), &controller.signal()).unwrap();
    let pending = skapi.forward_request(JsValue::NULL, opts);
    sleep(400).await;
    controller.abort();
    let result = settle(pending).await.expect("an abort resolves, as Skapi's SDK's does");
    assert_eq!(get(&result, "status").as_string().as_deref(), Some("stopped"));
    // The request itself goes on and finishes on the server.
    let url = format!("{}/v1/images/generations?delay=1500&signal=forward", stand_in());
    let mut status = String::new();
    for _ in 0..40 {
        let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
        status = rust(&get(&history, "list"))[0]["status"].as_str().unwrap_or_default().to_owned();
        if status == "resolved" {
            break;
        }
        sleep(100).await;
    }
    assert_eq!(status, "resolved");
}

#[wasm_bindgen_test]
async fn history_matches_a_queue_exactly_or_leaves_one_out() {
    let skapi = skapi();
    let url = format!("{}/v1/images/generations?history=exact", stand_in());
    for queue in ["u1", "u1-bg", "u2"] {
        let opts = json!({"secretName": "openai", "url": url, "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"prompt": queue}, "queue": queue, "poll": 30});
        settle(skapi.forward_request(JsValue::NULL, js(opts))).await.unwrap();
    }
    let queues = |page: &JsValue| {
        let mut names: Vec<String> =
            rust(&get(page, "list")).as_array().unwrap().iter().map(|i| i["queue_name"].as_str().unwrap_or_default().to_owned()).collect();
        names.sort();
        names
    };
    let prefix = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST", "queue": "u1"})), None)).await.unwrap();
    assert_eq!(queues(&prefix).len(), 2, "a queue is a prefix: {:?}", queues(&prefix));
    let exact = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST", "queue": "u1", "queue_exact": true})), None))
        .await
        .unwrap();
    assert_eq!(queues(&exact).len(), 1, "queue_exact: {:?}", queues(&exact));
    let excluded =
        settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST", "queue_exclude": "u1-bg"})), None)).await.unwrap();
    assert_eq!(queues(&excluded).len(), 2, "queue_exclude: {:?}", queues(&excluded));
    let err = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST", "compact": "yes"})), None)).await.unwrap_err();
    assert_eq!(get(&err, "message").as_string().as_deref(), Some("\"compact\" should be type: <boolean>."));
}

fn id_token() -> &'static str {
    option_env!("SKAPI_TEST_ID_TOKEN").expect("run through scripts/test-browser.sh (SKAPI_TEST_ID_TOKEN)")
}

#[wasm_bindgen_test]
async fn skapi_headers_carry_what_the_server_verified() {
    let skapi = skapi();
    let ask = |asked: Value| js(options("/v1/echo", json!({"skapiHeaders": asked})));
    let got = rust(&settle(skapi.forward_request(JsValue::NULL, ask(json!(true)))).await.unwrap());
    assert_eq!(got["told"], json!({"user": null, "service": SERVICE}), "signed out: the service, no user");
    let got = rust(&settle(skapi.forward_request(JsValue::NULL, ask(json!(false)))).await.unwrap());
    assert!(got.get("told").is_none(), "not asked, not told: {got}");

    settle(skapi.login_with_token(js(json!({"idToken": id_token(), "accessToken": id_token()})))).await.unwrap();
    let got = rust(&settle(skapi.forward_request(JsValue::NULL, ask(json!({"user": true})))).await.unwrap());
    assert_eq!(got["told"], json!({"user": "browser-user", "service": null}), "the verified token's sub");
    settle(skapi.logout()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_request_without_a_secret_is_refused_where_none_is_allowed() {
    let options = json!({"url": format!("{}/v1/echo", stand_in()), "data": {"tag": "keyless"}, "poll": 30});
    let err = settle(skapi().forward_request(JsValue::NULL, js(options))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_REQUEST", "forwardRequest()");
    let message = js_sys::Reflect::get(&err, &"message".into()).unwrap().as_string().unwrap();
    assert!(message.contains("forwards no request without \"secretName\""), "{message}");
}

/// `options.service` and `owner` act for another project for one call (an admin page), its
/// polls included; the instance's own stays as it was.
#[wasm_bindgen_test]
async fn options_service_and_owner_act_for_another_project() {
    let skapi = skapi();
    // "ap22compat" has a key "openai" of its own (scripts/test-browser.sh): accepted and polled
    // under that service — polls under the instance's would not find the request.
    let got = echoed(JsValue::NULL, options("/v1/echo", json!({"service": "ap22compat", "owner": "someone-else", "data": {"tag": "other"}}))).await;
    assert_eq!(got["method"], "POST", "{got}");
    let err = settle(skapi.forward_request(JsValue::NULL, js(options("/v1/echo", json!({"service": "svc-nowhere"}))))).await.unwrap_err();
    assert_skapi_error(&err, "NOT_EXISTS", "forwardRequest()");
    let err = settle(skapi.forward_request(JsValue::NULL, js(options("/v1/echo", json!({"service": 5}))))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "forwardRequest()");
    assert_eq!(skapi.service(), SERVICE, "the instance's own is untouched");
    let got = echoed(JsValue::NULL, options("/v1/echo", json!({"data": {"tag": "own"}}))).await;
    assert_eq!(got["method"], "POST");
}

/// A key's daily quota used up: `QUOTA_EXCEEDED` at once — not waited out and retried as a
/// per-minute limit is (the key `quota` allows one request a day: scripts/test-browser.sh).
#[wasm_bindgen_test]
async fn a_used_up_daily_quota_is_quota_exceeded_at_once() {
    let skapi = skapi();
    let options = || js(options("/v1/echo", json!({"secretName": "quota", "data": {"tag": "quota"}})));
    // The day's one request (a rerun of this test finds it used already).
    let first = settle(skapi.forward_request(JsValue::NULL, options())).await;
    let started = js_sys::Date::now();
    let err = match first {
        Err(err) => err,
        Ok(_) => settle(skapi.forward_request(JsValue::NULL, options())).await.unwrap_err(),
    };
    assert_skapi_error(&err, "QUOTA_EXCEEDED", "forwardRequest()");
    assert!(js_sys::Date::now() - started < 5_000.0, "answered at once, not after a wait");
}
