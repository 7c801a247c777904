//! The bodies Skapi's current SDK (skapi-js 2.0.6, `forwardRequest` and its family) sends,
//! replayed exactly as it builds them: `secretName`, `stream`/`realtime` always present as
//! booleans, `skapiHeaders` as a choice, a multipart form as `body_b64`, a history call with
//! `id_prefix` and the boolean modifiers, polls and cancels by full id with `service` and
//! `owner` in the body.

use crate::support::*;
use base64::Engine as _;
use serde_json::{json, Value};
use std::time::Duration;

/// `csr` as `forwardRequest(form, options)` sends it once its options are normalised.
fn forwarded(url: &str, data: Value) -> Value {
    json!({
        "url": url,
        "method": "post",
        "secretName": "openai",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer $CLIENT_SECRET"},
        "data": data,
        "stream": false,
        "realtime": false,
        "skapiHeaders": {"user": false, "service": true},
        "service": SERVICE,
        "owner": OWNER,
    })
}

/// Polls a full id as `pollClientSecretResponse` does (`{id, service, owner}`) until it ends.
async fn poll_as_the_sdk(server: &Server, full: &str) -> (u16, Value) {
    for _ in 0..200 {
        let (status, answer) = server.call("csr-poll", "replay", json!({"id": full, "service": SERVICE, "owner": OWNER})).await;
        if !(status == 200 && matches!(answer["status"].as_str(), Some("pending" | "running")) && answer["id"].is_string()) {
            return (status, answer);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{full} did not end");
}

fn full_id(url: &str, accepted: &Value) -> String {
    format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap())
}

async fn a_forwarded_request_runs_and_is_listed_as_the_sdk_asks(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/echo");
    let mut body = forwarded(&url, json!({"prompt": "A cute baby sea otter", "tag": "replayed"}));
    body["queue"] = json!("images");
    body["expires"] = json!(3600);
    let (status, accepted) = server.call("csr", "replay", body).await;
    assert_eq!((status, accepted["status"].as_str(), accepted["queue_name"].as_str()), (200, Some("pending"), Some("images")), "{accepted}");
    let full = full_id(&url, &accepted);
    let (status, answer) = poll_as_the_sdk(&server, &full).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(serde_json::from_str::<Value>(answer["body"].as_str().unwrap()).unwrap()["prompt"], "A cute baby sea otter");
    let seen = &stand_in.seen()[0];
    assert_eq!(seen.headers["authorization"], format!("Bearer {SECRET}"));
    assert_eq!(seen.headers["x-skapi-service"], SERVICE);
    assert!(seen.headers.get("x-skapi-user").is_none(), "signed out: no user header");

    // forwardRequestHistory with a queue: the id travels as `id_prefix`, the modifiers as
    // booleans, only when true.
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let history = json!({"id_prefix": prefix, "queue": "images", "queue_exact": true, "compact": true, "service": SERVICE, "owner": OWNER});
    let (status, page) = server.call("csr-poll", "replay", history).await;
    assert_eq!(status, 200, "{page}");
    let item = &page["list"][0];
    assert_eq!((item["stts"].as_str(), item["qid"].as_str(), item["cmpct"].as_bool()), (Some("resolved"), Some("images"), Some(true)), "{item}");
    assert!(item["att"].is_number() && item.get("reqbdy").is_none(), "{item}");
    let (_, page) = server
        .call("csr-poll", "replay", json!({"id_prefix": prefix, "queue": "image", "queue_exact": true, "service": SERVICE, "owner": OWNER}))
        .await;
    assert_eq!(page["list"], json!([]), "queue_exact: no prefix match");
    let (_, page) = server.call("csr-poll", "replay", json!({"id": prefix, "queue_exclude": "images", "service": SERVICE, "owner": OWNER})).await;
    assert_eq!(page["list"], json!([]), "queue_exclude");

    // cancelForwardRequest of a finished request.
    let (status, answer) = server.call("csr-cancel", "replay", json!({"id": full, "service": SERVICE, "owner": OWNER})).await;
    assert_eq!((status, answer["removed"].as_bool()), (200, Some(false)), "{answer}");
}

/// `multipart: true`: the browser's own encoding of the form, base64, with its content type.
async fn a_multipart_form_goes_byte_for_byte(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/echo");
    let boundary = "----WebKitFormBoundaryq1W2e3R4t5Y6u7I8";
    let mut form = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n").into_bytes();
    form.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .bytes(),
    );
    form.extend(every_byte(2));
    form.extend(format!("\r\n--{boundary}--\r\n").bytes());
    let mut body = forwarded(&url, Value::Null);
    body.as_object_mut().unwrap().remove("data");
    body["headers"] = json!({"Authorization": "Bearer $CLIENT_SECRET"});
    body["body_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&form));
    body["body_content_type"] = json!(format!("multipart/form-data; boundary={boundary}"));
    let (status, accepted) = server.call("csr", "replay", body).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(poll_as_the_sdk(&server, &full_id(&url, &accepted)).await.0, 200);
    let seen = &stand_in.seen()[0];
    assert_eq!(seen.body.as_ref(), form.as_slice(), "the form's bytes, exactly");
    assert_eq!(seen.headers["content-type"], format!("multipart/form-data; boundary={boundary}"));
    assert_eq!(seen.headers["authorization"], format!("Bearer {SECRET}"));
}

/// `stream: true, realtime: true`, with the queue the SDK mints for a stream.
async fn a_realtime_stream_is_accepted_and_read_by_seq(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/sse?n=3");
    let mut body = forwarded(&url, json!({"stream": true}));
    body["stream"] = json!(true);
    body["realtime"] = json!(true);
    body["queue"] = json!("anonymous-Xy12Zq");
    let (status, accepted) = server.call("csr", "replay", body).await;
    assert_eq!(status, 200, "{accepted}");
    let full = full_id(&url, &accepted);
    let mut text = String::new();
    let mut since = 0;
    for _ in 0..200 {
        let (_, page) = server.call("csr-poll", "replay", json!({"id": full, "service": SERVICE, "owner": OWNER, "since": since})).await;
        for chunk in page["chunks"].as_array().into_iter().flatten() {
            text.push_str(chunk["txt"].as_str().unwrap());
        }
        since = page["last_seq"].as_u64().unwrap_or(since);
        if page["status"] == "resolved" && page["more"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(text.contains("\"i\":3") && text.ends_with("data: [DONE]\n\n"), "{text}");
}

/// A request that names no secret is refused, and nothing is sent.
async fn a_request_without_a_secret_goes_nowhere(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let mut body = forwarded(&format!("{api}/echo"), json!({"tag": "keyless"}));
    body.as_object_mut().unwrap().remove("secretName");
    body["headers"] = json!({"Content-Type": "application/json"});
    let (status, answer) = server.call("csr", "replay", body).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "{answer}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(stand_in.seen().is_empty(), "nothing left the server");
}

engine_tests! {
  both: [
    a_forwarded_request_runs_and_is_listed_as_the_sdk_asks,
    a_multipart_form_goes_byte_for_byte,
    a_realtime_stream_is_accepted_and_read_by_seq,
    a_request_without_a_secret_goes_nowhere,
  ],
}
