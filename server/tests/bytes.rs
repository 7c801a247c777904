//! Answers as bytes: a third party's answer that is not text (audio, images, anything not
//! UTF-8) is kept exactly, as `{body_b64, body_content_type}`, in polls and history alike.

mod support;

use serde_json::{json, Value};
use skapi_core::encoding::base64_decode;
use support::*;

fn decoded(body: &Value) -> Vec<u8> {
    base64_decode(body["body_b64"].as_str().unwrap_or_else(|| panic!("no body_b64: {body}"))).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_come_back_exactly_with_their_content_type() {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server().await;
    server.add_key("openai", &[]);
    for (kind, expected_type) in [("audio/mpeg", "audio/mpeg"), ("image/png", "image/png")] {
        let url = format!("{api}/bytes?n=3&type={}", kind.replace('/', "%2F"));
        let id = server.submit("caller-a", tagged(&url, kind)).await;
        let (status, body) = server.poll_until_done("caller-a", &id).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["body_content_type"], expected_type);
        assert_eq!(decoded(&body), every_byte(3), "{kind}: every byte value, exactly");
    }
    // Text that is not UTF-8 is kept exactly too (it used to lose bytes to U+FFFD).
    let id = server.submit("caller-a", tagged(&format!("{api}/bytes?type=text%2Fplain"), "latin")).await;
    let (_, body) = server.poll_until_done("caller-a", &id).await;
    assert_eq!((decoded(&body), body["body_content_type"].as_str()), (every_byte(1), Some("text/plain")));
    // JSON stays JSON.
    let id = server.submit("caller-a", tagged(&format!("{api}/echo"), "json")).await;
    assert!(server.poll_until_done("caller-a", &id).await.1["body"].is_string());

    // History keeps the same body; a failed answer keeps its bytes as well.
    let url = format!("{api}/bytes?type=image%2Fpng&status=422");
    let id = server.submit("caller-a", tagged(&url, "failed")).await;
    let (status, failed) = server.poll_until_done("caller-a", &id).await;
    assert_eq!((status, failed["status_code"].as_u64()), (502, Some(422)), "{failed}");
    assert_eq!(decoded(&failed["body"]), every_byte(1));
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    assert_eq!(decoded(&page["list"][0]["rslv"]["body"]), every_byte(1), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_over_the_limit_are_cut_there_and_marked() {
    let (api, _stand_in) = start_stand_in().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), skapi_server::ServeConfig { max_response_bytes: 100, ..config(dir.path()) }).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/bytes?n=2&type=audio%2Fmpeg");
    let id = server.submit("caller-a", tagged(&url, "big")).await;
    let (status, body) = server.poll_until_done("caller-a", &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(decoded(&body), every_byte(1)[..100]);
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    assert_eq!(decoded(&page["list"][0]["rslv"]["truncated"]), every_byte(1)[..100], "marked truncated: {page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_sends_its_body_and_head_its_query_keeping_the_status() {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server().await;
    server.add_key("openai", &[]);
    let mut patch = tagged(&format!("{api}/things/1"), "patched");
    patch["method"] = json!("patch");
    let id = server.submit("caller-a", patch).await;
    assert!(id.starts_with("[PATCH]"), "{id}");
    let (status, answer) = server.poll_until_done("caller-a", &id).await;
    assert_eq!((status, answer["method"].as_str()), (200, Some("PATCH")), "{answer}");
    assert_eq!(serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap(), json!({"tag": "patched"}));

    let head = json!({"clientSecretName": "openai", "url": format!("{api}/things/2"), "method": "HEAD",
                      "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "params": {"q": "x"}});
    let id = server.submit("caller-a", head).await;
    let (status, answer) = server.poll_until_done("caller-a", &id).await;
    assert_eq!(status, 200, "{answer}");
    let seen = stand_in.seen.lock().unwrap().iter().find(|s| s.path == "/things/2").cloned().expect("the HEAD request arrived");
    assert_eq!(seen.method, "HEAD");
    assert_eq!(seen.query.get("q").map(String::as_str), Some("x"));
    assert_eq!(seen.headers.get("authorization").and_then(|v| v.to_str().ok()), Some(format!("Bearer {SECRET}").as_str()));
    assert!(seen.body.is_empty(), "HEAD carries no body");

    // History keeps the query as the request body, as for GET.
    let prefix = format!("[HEAD]{}#{SERVICE}:", format!("{api}/things/2").to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    assert_eq!(page["list"][0]["reqbdy"], json!({"q": "x"}), "{page}");
    assert_eq!(page["list"][0]["rslv"]["status_code"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_that_asks_for_bytes_gets_text_answers_as_bytes_redacted() {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server().await;
    server.add_key("openai", &[]);
    let mut ask = tagged(&format!("{api}/things/3"), "as-bytes");
    ask["responseType"] = json!("arrayBuffer");
    let id = server.submit("caller-a", ask).await;
    let (status, body) = server.poll_until_done("caller-a", &id).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["body_content_type"], "application/json");
    let written = json!({"method": "POST", "path": "/things/3", "body": r#"{"tag":"as-bytes"}"#});
    assert_eq!(decoded(&body), serde_json::to_vec(&written).unwrap(), "the JSON text exactly as the third party wrote it");

    // Text is still redacted when it is kept as bytes.
    let mut leak = tagged(&format!("{api}/filler?n=3"), "leak");
    leak["responseType"] = json!("blob");
    let id = server.submit("caller-a", leak).await;
    let (_, body) = server.poll_until_done("caller-a", &id).await;
    let text = String::from_utf8(decoded(&body)).unwrap();
    assert_eq!(text, "xxx$CLIENT_SECRET and the rest of the answer");

    // `text` and `json` leave the answer as it is; anything else is refused.
    let mut as_text = tagged(&format!("{api}/things/4"), "as-text");
    as_text["responseType"] = json!("text");
    let id = server.submit("caller-a", as_text).await;
    assert_eq!(server.poll_until_done("caller-a", &id).await.1["path"], "/things/4");
    let mut wrong = tagged(&format!("{api}/things/5"), "wrong");
    wrong["responseType"] = json!("stream");
    wrong["service"] = json!(SERVICE);
    wrong["owner"] = json!(OWNER);
    let (status, refused) = server.call("csr", "caller-a", wrong).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{refused}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raw_body_goes_out_byte_for_byte_and_history_keeps_only_its_type_and_size() {
    use base64::Engine;
    let (api, stand_in) = start_stand_in().await;
    let server = start_server().await;
    server.add_key("openai", &[]);
    let body_b64 = base64::engine::general_purpose::STANDARD.encode(every_byte(2));
    let raw = json!({"clientSecretName": "openai", "url": format!("{api}/upload/1"), "method": "put",
                     "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "body_b64": body_b64, "body_content_type": "audio/wav"});
    let id = server.submit("caller-a", raw.clone()).await;
    let (status, _) = server.poll_until_done("caller-a", &id).await;
    assert_eq!(status, 200);
    let seen = stand_in.seen.lock().unwrap().iter().find(|s| s.path == "/upload/1").cloned().expect("the upload arrived");
    assert_eq!(seen.body.to_vec(), every_byte(2), "every byte value, exactly");
    assert_eq!(seen.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("audio/wav"));
    let prefix = format!("[PUT]{}#{SERVICE}:", format!("{api}/upload/1").to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    assert_eq!(page["list"][0]["reqbdy"], json!({"body_content_type": "audio/wav", "size": 512}), "not the bytes: {page}");

    let mut body = raw;
    body["service"] = json!(SERVICE);
    body["owner"] = json!(OWNER);
    for (key, value, message) in [
        ("data", json!({"n": 1}), "\"data\" and \"body_b64\" cannot both be given."),
        ("method", json!("get"), "\"body_b64\" needs a method with a body (POST, PUT, PATCH)."),
        ("body_b64", json!("not base64!"), "\"body_b64\" should be base64."),
    ] {
        let mut wrong = body.clone();
        wrong[key] = value;
        let (status, refused) = server.call("csr", "caller-a", wrong).await;
        assert_eq!((status, refused["message"].as_str()), (400, Some(message)), "{refused}");
    }
}
