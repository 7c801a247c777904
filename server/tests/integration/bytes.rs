//! Answers as bytes: a third party's answer that is not text (audio, images, anything not
//! UTF-8) is kept exactly, as `{body_b64, body_content_type}`, in polls and history alike.

use crate::support::*;
use serde_json::{json, Value};
use skapi_core::encoding::base64_decode;

fn decoded(body: &Value) -> Vec<u8> {
    base64_decode(body["body_b64"].as_str().unwrap_or_else(|| panic!("no body_b64: {body}"))).unwrap()
}

async fn bytes_come_back_exactly_with_their_content_type(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
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

async fn bytes_over_the_limit_are_cut_there_and_marked(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), skapi_server::ServeConfig { max_response_bytes: 100, ..config(engine, dir.path()) }).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/bytes?n=2&type=audio%2Fmpeg");
    let id = server.submit("caller-a", tagged(&url, "big")).await;
    let (status, body) = server.poll_until_done("caller-a", &id).await;
    assert_eq!(status, 200, "{body}");
    // Bytes are cut as text is: never after what could begin the secret in some reading. Byte
    // 99 is `c`, which read as base64 holds the first 6 bits of the secret's `s`: left out.
    assert_eq!(decoded(&body), every_byte(1)[..99]);
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    assert_eq!(decoded(&page["list"][0]["rslv"]["truncated"]), every_byte(1)[..99], "marked truncated: {page}");
}

async fn patch_sends_its_body_and_head_its_query_keeping_the_status(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
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

async fn a_caller_that_asks_for_bytes_gets_text_answers_as_bytes_redacted(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
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

async fn a_raw_body_goes_out_byte_for_byte_and_history_keeps_only_its_type_and_size(engine: Engine) {
    use base64::Engine;
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
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

/// Sends a multipart `csr` as the SDK does: the body as JSON in part `request`, then the files.
async fn submit_multipart(api: &Api, body: &Value, files: &[(&str, &str, Vec<u8>)]) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new().text("request", body.to_string());
    for (name, content_type, bytes) in files {
        form = form.part("file", reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()).mime_str(content_type).unwrap());
    }
    let meta = json!({"public_identifier": "caller-a", "service": SERVICE, "owner": OWNER});
    let response = api.http.post(format!("{}/csr", api.base)).header("content-meta", meta.to_string()).multipart(form).send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

/// The parts of a multipart body as the third party read them: (name, file name, type, bytes).
async fn parts_seen(seen: &Seen) -> Vec<(String, Option<String>, Option<String>, Vec<u8>)> {
    let content_type = seen.headers.get("content-type").and_then(|v| v.to_str().ok()).expect("a content type");
    let boundary = multer::parse_boundary(content_type).unwrap_or_else(|e| panic!("{content_type}: {e}"));
    let body = seen.body.clone();
    let mut parts = multer::Multipart::new(futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) }), boundary);
    let mut out = Vec::new();
    while let Some(part) = parts.next_field().await.unwrap() {
        let (name, file_name) = (part.name().unwrap_or("").to_owned(), part.file_name().map(str::to_owned));
        let content_type = part.content_type().map(ToString::to_string);
        out.push((name, file_name, content_type, part.bytes().await.unwrap().to_vec()));
    }
    out
}

async fn files_go_out_as_multipart_with_their_names_types_and_exact_bytes(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/v1/audio/transcriptions");
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET", "Content-Type": "multipart/form-data"},
        "data": {"model": "whisper-1", "key": "$CLIENT_SECRET", "meta": {"lang": "ko"}, "file": {"skapi:file": 0},
                 "attachments": [{"skapi:file": 1}, {"skapi:file": 2}]}});
    let files = [("speech.wav", "audio/wav", every_byte(3)), ("a.png", "image/png", vec![0x89, b'P', 0]), ("empty.txt", "text/plain", vec![])];
    let (status, accepted) = submit_multipart(&server, &body, &files).await;
    assert_eq!(status, 200, "{accepted}");
    let full_id = format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap());
    let (status, answer) = server.poll_until_done("caller-a", &full_id).await;
    assert_eq!(status, 200, "{answer}");

    let seen = stand_in.seen().into_iter().find(|s| s.path == "/v1/audio/transcriptions").expect("the upload arrived");
    let text = |name: &str, value: &str| (name.to_owned(), None, None, value.as_bytes().to_vec());
    let file = |name: &str, (file_name, kind, bytes): &(&str, &str, Vec<u8>)| {
        (name.to_owned(), Some(file_name.to_string()), Some(kind.to_string()), bytes.clone())
    };
    assert_eq!(
        parts_seen(&seen).await,
        vec![
            text("key", SECRET),
            text("meta[lang]", "ko"),
            text("model", "whisper-1"),
            file("attachments", &files[1]),
            file("attachments", &files[2]),
            file("file", &files[0]),
        ],
        "text fields with the secret filled in, then every file byte for byte"
    );
    assert_eq!(seen.headers.get("authorization").unwrap(), &format!("Bearer {SECRET}"));

    // History keeps each file's name, type and size, never its bytes.
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": prefix})).await;
    let kept = &page["list"][0]["reqbdy"];
    assert_eq!(kept["file"], json!({"filename": "speech.wav", "content_type": "audio/wav", "size": 768}), "{page}");
    assert_eq!(kept["attachments"][1], json!({"filename": "empty.txt", "content_type": "text/plain", "size": 0}));
    assert_eq!(kept["key"], "$CLIENT_SECRET", "as written");

    // The JSON form (files in base64) reaches the third party the same way.
    use base64::Engine;
    let mut json_form = body.clone();
    json_form["url"] = json!(format!("{api}/v1/json-form"));
    json_form["data"] = json!({"file": {"skapi:file": 0}});
    // A type that does not parse goes out as application/octet-stream.
    json_form["files"] = json!([{"filename": "x.bin", "content_type": "not a type",
                                 "body_b64": base64::engine::general_purpose::STANDARD.encode(every_byte(1))}]);
    let id = server.submit("caller-a", json_form).await;
    assert_eq!(server.poll_until_done("caller-a", &id).await.0, 200);
    let seen = stand_in.seen().into_iter().find(|s| s.path == "/v1/json-form").expect("arrived");
    assert_eq!(parts_seen(&seen).await, vec![("file".into(), Some("x.bin".into()), Some("application/octet-stream".into()), every_byte(1))]);
}

async fn files_without_multipart_or_over_the_limit_are_refused_before_anything_is_sent(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), skapi_server::ServeConfig { max_request_bytes: 4096, ..config(engine, dir.path()) }).await;
    server.add_key("openai", &[]);
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/v1/files"), "method": "post",
        "headers": {"Content-Type": "application/json", "Authorization": "$CLIENT_SECRET"}, "data": {"purpose": "x", "doc": {"skapi:file": 0}}});
    let one = [("a.txt", "text/plain", b"hello".to_vec())];
    let (status, refused) = submit_multipart(&server, &body, &one).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["message"], "\"data[doc]\" holds a file: send files with the header \"Content-Type\": \"multipart/form-data\".");

    let mut body = body;
    body["headers"] = json!({"Content-Type": "multipart/form-data", "Authorization": "$CLIENT_SECRET"});
    let (status, refused) = submit_multipart(&server, &body, &[("big.bin", "application/octet-stream", vec![7; 5000])]).await;
    assert_eq!((status, refused["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{refused}");
    for (files, message) in [(&[][..], "File 0 is not placed"), (&[one[0].clone(), one[0].clone()][..], "File 1 is not placed")] {
        let mut unplaced = body.clone();
        unplaced["data"] = json!({"purpose": "x"});
        if files.is_empty() {
            unplaced["files"] = json!([{"filename": "a", "content_type": "text/plain", "body_b64": ""}]);
            let (status, refused) = server.call("csr", "caller-a", unplaced).await;
            assert_eq!(status, 400);
            assert!(refused["message"].as_str().unwrap().contains(message), "{refused}");
        } else {
            unplaced["data"] = json!({"doc": {"skapi:file": 0}});
            let (status, refused) = submit_multipart(&server, &unplaced, files).await;
            assert_eq!(status, 400);
            assert!(refused["message"].as_str().unwrap().contains(message), "{refused}");
        }
    }
    let (status, refused) = submit_multipart(&server, &json!("no body"), &one).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{refused}");
    assert!(stand_in.seen().is_empty(), "nothing was sent");
}

engine_tests! {
  both: [
    bytes_come_back_exactly_with_their_content_type,
    bytes_over_the_limit_are_cut_there_and_marked,
    patch_sends_its_body_and_head_its_query_keeping_the_status,
    a_caller_that_asks_for_bytes_gets_text_answers_as_bytes_redacted,
    a_raw_body_goes_out_byte_for_byte_and_history_keeps_only_its_type_and_size,
    files_go_out_as_multipart_with_their_names_types_and_exact_bytes,
    files_without_multipart_or_over_the_limit_are_refused_before_anything_is_sent,
  ],
}
