//! Logged-in users and Locked keys, and rate limits as the SDK meets them, in headless Chromium.
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::json;
use skapi_wasm::Skapi;
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn id_token() -> &'static str {
    option_env!("SKAPI_TEST_ID_TOKEN").expect("run through scripts/test-browser.sh (SKAPI_TEST_ID_TOKEN)")
}

#[wasm_bindgen_test]
async fn locked_keys_work_only_for_a_logged_in_user() {
    let skapi = skapi();
    let locked = || js(seed(json!({"clientSecretName": "locked", "poll": 30})));
    let err = settle(skapi.client_secret_request(locked())).await.unwrap_err();
    assert_skapi_error(&err, "UNAUTHORIZED", "clientSecretRequest()");

    let user = settle(skapi.login_with_token(js(json!({"idToken": id_token(), "accessToken": id_token()})))).await.unwrap();
    assert_eq!(rust(&get(&user, "user_id")), json!("browser-user"));
    assert_eq!(rust(&get(&skapi.user(), "name")), json!("Browser User"));
    let result = settle(skapi.client_secret_request(locked())).await.unwrap();
    assert_eq!(rust(&result)["data"][0]["b64_json"], "image of A cute baby sea otter");

    // The user's records are theirs: an anonymous client on the same page does not see them.
    let url = format!("{}/v1/images/generations", stand_in());
    let mine = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    assert!(js_sys::Array::from(&get(&mine, "list")).length() >= 1);
    settle(skapi.logout()).await.unwrap();
    assert!(skapi.user().is_null());
    let anonymous = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let listed = rust(&get(&anonymous, "list"));
    let theirs = rust(&get(&mine, "list"));
    for item in theirs.as_array().unwrap() {
        assert!(!listed.as_array().unwrap().iter().any(|i| i["id"] == item["id"]), "an anonymous caller lists the user's record");
    }
    let err = settle(skapi.client_secret_request(locked())).await.unwrap_err();
    assert_skapi_error(&err, "UNAUTHORIZED", "clientSecretRequest()");

    let err = settle(skapi.login_with_token(js(json!({"idToken": "not-a-jwt"})))).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "loginWithToken()");
    let forged = format!("{}x", id_token());
    settle(skapi.login_with_token(js(json!({"idToken": forged})))).await.unwrap();
    let err = settle(skapi.client_secret_request(locked())).await.unwrap_err();
    assert_skapi_error(&err, "UNAUTHORIZED", "clientSecretRequest()");
}

#[wasm_bindgen_test]
async fn rate_limits_are_waited_out_once_then_reported() {
    let once = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": format!("{}/ratelimited", stand_in())})))).unwrap();
    let answer = settle(once.client_secret_request(js(seed(json!({}))))).await.unwrap();
    assert_eq!(rust(&answer), json!({"done": true}), "retried after Retry-After");

    let always = Skapi::new(SERVICE.into(), OWNER.into(), Some(js(json!({"endpoint": format!("{}/always429", stand_in())})))).unwrap();
    let err = settle(always.client_secret_request(js(seed(json!({}))))).await.unwrap_err();
    assert_skapi_error(&err, "RATE_LIMITED", "clientSecretRequest()");
    let _ = JsValue::NULL;
}
