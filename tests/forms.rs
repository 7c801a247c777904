//! Forms as pages submit them, read by the SDK in headless Chromium: control types, bracket
//! names, the submitter, refusals, and no prototype pollution. What the SDK built is read back
//! from the server's record of the request (`request_body`).
#![cfg(target_arch = "wasm32")]

mod common;

use common::*;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{HtmlFormElement, SubmitEvent};

wasm_bindgen_test_configure!(run_in_browser);

/// A form in the page with `inner` as its controls, sending the seed request with `tag`.
fn form(tag: &str, inner: &str) -> HtmlFormElement {
    let document = web_sys::window().unwrap().document().unwrap();
    let form: HtmlFormElement = document.create_element("form").unwrap().dyn_into().unwrap();
    form.set_inner_html(&format!(
        r#"<input name="clientSecretName" type="hidden" value="openai">
           <input name="url" type="hidden" value="{}/v1/images/generations?form={tag}">
           <input name="method" type="hidden" value="POST">
           <input name="headers[Authorization]" type="hidden" value="Bearer $CLIENT_SECRET">
           {inner}"#,
        stand_in()
    ));
    document.body().unwrap().append_child(&form).unwrap();
    form
}

/// Sends `input` and returns the request body the server recorded.
async fn recorded(input: JsValue, tag: &str) -> Value {
    let skapi = skapi();
    let pending = settle(skapi.client_secret_request(input)).await.unwrap();
    let id = get(&pending, "id");
    let url = format!("{}/v1/images/generations?form={tag}", stand_in());
    let history = settle(skapi.client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let list = rust(&get(&history, "list"));
    list.as_array().unwrap().iter().find(|i| i["id"] == rust(&id)).expect("recorded")["request_body"].clone()
}

#[wasm_bindgen_test]
async fn control_types_and_bracket_names() {
    let f = form(
        "types",
        r#"<input name="data[n]" type="number" value="2">
           <input name="data[empty]" type="number" value="">
           <input name="data[ratio]" type="range" min="0" max="1" step="0.25" value="0.5">
           <input name="data[on]" type="checkbox" checked>
           <input name="data[off]" type="checkbox">
           <input name="data[agree]" type="checkbox" value="yes" checked>
           <input name="data[skip]" type="checkbox" value="no">
           <input name="data[size]" type="radio" value="small">
           <input name="data[size]" type="radio" value="large" checked>
           <select name="data[colors]" multiple><option selected>red</option><option>green</option><option selected>blue</option></select>
           <select name="data[one]" multiple><option selected>only</option></select>
           <select name="data[model]"><option>a</option><option selected>gpt-image-1.5</option></select>
           <textarea name="data[prompt]">A cute baby sea otter</textarea>
           <input name="data[list][1]" value="second">
           <input name="data[list][0]" value="first">
           <input name="data[tags][]" value="t1"><input name="data[tags][]" value="t2">
           <input name="data[again]" value="1"><input name="data[again]" value="2">
           <input name="data[deep][a][b]" value="x">
           <input name="data[gone]" value="disabled" disabled>
           <fieldset disabled><input name="data[inside]" value="disabled too"></fieldset>
           <input value="no name">
           <button name="data[button]" value="not the submitter">b</button>"#,
    );
    let body = recorded(f.into(), "types").await;
    assert_eq!(
        body,
        json!({"n": 2, "ratio": 0.5, "on": true, "off": false, "agree": "yes", "size": "large",
               "colors": ["red", "blue"], "one": ["only"], "model": "gpt-image-1.5", "prompt": "A cute baby sea otter",
               "list": ["first", "second"], "tags": ["t1", "t2"], "again": ["1", "2"], "deep": {"a": {"b": "x"}}})
    );
}

#[wasm_bindgen_test]
async fn a_submit_event_is_cancelled_at_once_and_names_its_submitter() {
    let f = form("submit", r#"<input name="data[prompt]" value="otter"><button name="data[via]" value="the button">Go</button>"#);
    let init = web_sys::SubmitEventInit::new();
    init.set_cancelable(true);
    let button: web_sys::HtmlElement = f.query_selector("button").unwrap().unwrap().dyn_into().unwrap();
    init.set_submitter(Some(&button));
    let event = SubmitEvent::new_with_event_init_dict("submit", &init).unwrap();
    // Dispatch so the event has its form as target; a listener hands it to the SDK.
    let skapi = skapi();
    let sent = std::rc::Rc::new(std::cell::RefCell::new(None));
    let keep = sent.clone();
    let listener = Closure::<dyn FnMut(SubmitEvent)>::new(move |e: SubmitEvent| {
        *keep.borrow_mut() = Some(skapi.client_secret_request(e.clone().into()));
        assert!(e.default_prevented(), "preventDefault() happened synchronously");
    });
    f.add_event_listener_with_callback("submit", listener.as_ref().unchecked_ref()).unwrap();
    f.dispatch_event(&event).unwrap();
    assert!(event.default_prevented());
    let pending = settle(sent.borrow_mut().take().unwrap()).await.unwrap();
    assert_eq!(rust(&get(&pending, "status")), json!("pending"));
    let body = recorded_by_id(&pending, "submit").await;
    assert_eq!(body, json!({"prompt": "otter", "via": "the button"}));
}

async fn recorded_by_id(pending: &JsValue, tag: &str) -> Value {
    let url = format!("{}/v1/images/generations?form={tag}", stand_in());
    let history = settle(skapi().client_secret_request_history(js(json!({"url": url, "method": "POST"})), None)).await.unwrap();
    let list = rust(&get(&history, "list"));
    list.as_array().unwrap().iter().find(|i| i["id"] == rust(&get(pending, "id"))).expect("recorded")["request_body"].clone()
}

#[wasm_bindgen_test]
async fn form_data_is_accepted() {
    let data = web_sys::FormData::new().unwrap();
    for (k, v) in [
        ("clientSecretName", "openai"),
        ("method", "POST"),
        ("headers[Authorization]", "Bearer $CLIENT_SECRET"),
        ("data[a][]", "1"),
        ("data[a][]", "2"),
    ] {
        data.append_with_str(k, v).unwrap();
    }
    data.append_with_str("url", &format!("{}/v1/images/generations?form=formdata", stand_in())).unwrap();
    assert_eq!(recorded(data.into(), "formdata").await, json!({"a": ["1", "2"]}));

    let bad_name = form("badname", r#"<input name="data[open" value="x">"#);
    let err = settle(skapi().client_secret_request(bad_name.into())).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
}

/// Runs JavaScript `body` (a function body of `a` and `b`) and returns what it returns.
fn run_js(body: &str, a: &JsValue, b: &JsValue) -> JsValue {
    js_sys::Function::new_with_args("a, b", body).call2(&JsValue::NULL, a, b).unwrap()
}

/// Two files made in the page: every byte value twice as `speech.wav`, and `notes.txt`.
fn two_files() -> JsValue {
    run_js(
        "return [new File([Uint8Array.from({length: 512}, (_, i) => i % 256)], 'speech.wav', {type: 'audio/wav'}),
                 new File(['hello'], 'notes.txt', {type: 'text/plain'})];",
        &JsValue::NULL,
        &JsValue::NULL,
    )
}

/// A file part as the hashing stand-in describes it.
fn file_part(name: &str, filename: &str, kind: &str, size: usize, sha256: &str) -> Value {
    json!({"name": name, "filename": filename, "type": kind, "size": size, "sha256": sha256})
}
const WAV_SHA256: &str = "110009dcee21620b166f3abfecb5eff7a873be729d1c2d53822e7acc5f34eb9b";
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

/// A form that uploads to the hashing stand-in and waits for its answer.
fn upload_form(inner: &str) -> HtmlFormElement {
    let f = form("upload", inner);
    let url = f.query_selector("[name=url]").unwrap().unwrap();
    url.set_attribute("value", &format!("{}/v1/hash", stand_in())).unwrap();
    f.insert_adjacent_html(
        "beforeend",
        r#"<input name="headers[Content-Type]" type="hidden" value="multipart/form-data"><input name="poll" type="number" value="30">"#,
    )
    .unwrap();
    f
}

#[wasm_bindgen_test]
async fn a_form_with_file_inputs_uploads_every_chosen_file_and_leaves_empty_inputs_out() {
    let f = upload_form(
        r#"<input name="data[model]" value="whisper-1">
           <input name="data[file]" type="file" multiple>
           <input name="data[none]" type="file">"#,
    );
    // Files are chosen as a user would, through a DataTransfer.
    let input = f.query_selector("[name='data[file]']").unwrap().unwrap();
    run_js("const t = new DataTransfer(); for (const f of b) t.items.add(f); a.files = t.files;", &input, &two_files());
    let hashed = rust(&settle(skapi().client_secret_request(f.into())).await.unwrap());
    assert_eq!(
        hashed["parts"],
        json!([
            {"name": "model", "value": "whisper-1"},
            file_part("file", "speech.wav", "audio/wav", 512, WAV_SHA256),
            file_part("file", "notes.txt", "text/plain", 5, HELLO_SHA256),
        ]),
        "{hashed}"
    );
}

#[wasm_bindgen_test]
async fn form_data_with_files_uploads_them() {
    let data = web_sys::FormData::new().unwrap();
    let fields = [("clientSecretName", "openai"), ("method", "POST"), ("headers[Authorization]", "Bearer $CLIENT_SECRET")];
    for (k, v) in fields {
        data.append_with_str(k, v).unwrap();
    }
    data.append_with_str("headers[Content-Type]", "multipart/form-data").unwrap();
    data.append_with_str("url", &format!("{}/v1/hash", stand_in())).unwrap();
    data.append_with_str("data[purpose]", "assistants").unwrap();
    let files = js_sys::Array::from(&two_files());
    run_js("a.append('data[upload]', b[0]); a.append('data[empty]', new File([], ''));", &data, &files);
    // FormData's values are text: no `poll` number; the pending result's poll() waits for it.
    let pending = settle(skapi().client_secret_request(data.into())).await.unwrap();
    let hashed = rust(&call_async(&pending, "poll", &JsValue::UNDEFINED).await.unwrap());
    assert_eq!(
        hashed["parts"],
        json!([{"name": "purpose", "value": "assistants"}, file_part("upload", "speech.wav", "audio/wav", 512, WAV_SHA256)]),
        "an empty file (an unchosen input) is left out: {hashed}"
    );
}

#[wasm_bindgen_test]
async fn a_file_input_outside_data_or_without_a_multipart_type_is_refused() {
    let outside = form("outside", r#"<input name="file" type="file">"#);
    let input = outside.query_selector("[name=file]").unwrap().unwrap();
    run_js("const t = new DataTransfer(); t.items.add(b[0]); a.files = t.files;", &input, &two_files());
    let err = settle(skapi().client_secret_request(outside.into())).await.unwrap_err();
    assert_skapi_error(&err, "INVALID_PARAMETER", "clientSecretRequest()");
    assert_eq!(get(&err, "message").as_string().as_deref(), Some("File input \"file\" is outside \"data\": name it data[…], e.g. data[file]."));

    let json_form = form("notmultipart", r#"<input name="data[doc]" type="file">"#);
    let input = json_form.query_selector("[name='data[doc]']").unwrap().unwrap();
    run_js("const t = new DataTransfer(); t.items.add(b[1]); a.files = t.files;", &input, &two_files());
    let err = settle(skapi().client_secret_request(json_form.into())).await.unwrap_err();
    assert_eq!(
        get(&err, "message").as_string().as_deref(),
        Some("\"data[doc]\" holds a file: send files with the header \"Content-Type\": \"multipart/form-data\".")
    );
}

#[wasm_bindgen_test]
async fn prototype_names_pollute_nothing() {
    let f = form(
        "proto",
        r#"<input name="data[__proto__][polluted]" value="yes">
           <input name="__proto__[polluted]" value="yes">
           <input name="constructor[prototype][polluted]" value="yes">"#,
    );
    let body = recorded(f.into(), "proto").await;
    assert_eq!(body["__proto__"]["polluted"], "yes", "kept as a plain own property: {body}");
    let probe = js_sys::Object::new();
    assert!(get(&probe, "polluted").is_undefined(), "Object.prototype is untouched");
    assert!(js_sys::Reflect::get(&js_sys::Object::get_prototype_of(&probe), &"polluted".into()).unwrap().is_undefined());
}
