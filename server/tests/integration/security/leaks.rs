//! The secret asked back in a shape the caller chooses: a content encoding, the answer's own
//! headers, a number, bytes that are not UTF-8 (raw, base64, UTF-16, latin-1, an upload echoed
//! back), base64 wrapped at line breaks, HTML references, `\x` escapes, deltas of a streamed
//! answer that the page joins, and an answer split by `Range`. The third party here is hostile:
//! it writes back whatever it was sent, in the shape the path names. Each answer is read by a
//! reader of this test's own (not the server's) in every way a page could decode it.

use super::*;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use base64::Engine as _;
use futures_util::StreamExt;
use skapi_core::PLACEHOLDER;
use std::collections::HashMap;

/// The hostile third party: it echoes `k` (the query's, else the bearer token) in the shape
/// `shape` names.
async fn hostile(
    Path(shape): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
    let k = query.get("k").map_or(bearer, String::as_str).to_owned();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let utf16 = |text: &str, big: bool| -> Vec<u8> {
        let bom: [u8; 2] = if big { [0xfe, 0xff] } else { [0xff, 0xfe] };
        bom.into_iter().chain(text.encode_utf16().flat_map(|u| if big { u.to_be_bytes() } else { u.to_le_bytes() })).collect()
    };
    let typed = |kind: &str, bytes: Vec<u8>| ([("content-type", kind.to_owned())], bytes).into_response();
    match shape.as_str() {
        "gzip" => {
            use std::io::Write;
            let asked = headers.get("accept-encoding").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let json = serde_json::to_vec(&json!({"echo": k, "asked": asked})).unwrap();
            if !asked.contains("gzip") {
                return typed("application/json", json);
            }
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(&json).unwrap();
            ([("content-type", "application/json"), ("content-encoding", "gzip")], gz.finish().unwrap()).into_response()
        }
        // An encoding nobody asked for and the server does not read.
        "br" => ([("content-type", "text/plain"), ("content-encoding", "br")], k.into_bytes()).into_response(),
        "type" => typed(&format!("application/x-{k}"), vec![0xff, 0x00, 0x01]),
        "text-type" => typed(&format!("text/plain; note={k}"), b"hello".to_vec()),
        "number" => typed("application/json", format!("{{\"n\":{k},\"list\":[1,{k}]}}").into_bytes()),
        "bare" => typed("application/json", k.into_bytes()),
        "raw" => typed("application/octet-stream", [b"\x89PNG\r\n\x1a\n\xff".as_slice(), k.as_bytes(), b"\x00\xfe"].concat()),
        "b64raw" => typed("application/octet-stream", [b"\xff\x00".as_slice(), b64(k.as_bytes()).as_bytes()].concat()),
        "utf16le" => typed("text/plain; charset=utf-16le", utf16(&format!("key: {k}\u{e9}"), false)),
        "utf16be" => typed("text/plain; charset=utf-16be", utf16(&format!("key: {k}\u{e9}"), true)),
        "latin1" => typed("text/plain; charset=iso-8859-1", [b"caf\xe9 ".as_slice(), k.as_bytes()].concat()),
        "echo-body" => typed("text/plain", body.to_vec()),
        "wrapped" => {
            let encoded = b64(format!("{}{k}{}", "x".repeat(50), "y".repeat(60)).as_bytes());
            let lines: Vec<&str> = encoded.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap()).collect();
            typed("text/plain", lines.join("\r\n").into_bytes())
        }
        "html" => typed("text/html", format!("<p>{}</p>", k.chars().map(|c| format!("&#{};", c as u32)).collect::<String>()).into_bytes()),
        "xescape" => {
            typed("application/javascript", format!("var k = \"{}\";", k.bytes().map(|b| format!("\\x{b:02x}")).collect::<String>()).into_bytes())
        }
        "deltas" => {
            // OpenAI's chat stream, three characters a delta, each event its own write.
            let text = format!("Your key is {k}. Bye.");
            let chars: Vec<char> = text.chars().collect();
            let mut events: Vec<String> = chars
                .chunks(3)
                .map(|c| format!("data: {}\n\n", json!({"choices": [{"index": 0, "delta": {"content": c.iter().collect::<String>()}}]})))
                .collect();
            events.push("data: [DONE]\n\n".into());
            let stream = futures_util::stream::iter(events.into_iter().map(|e| Ok::<_, std::io::Error>(axum::body::Bytes::from(e))));
            let stream = stream.then(|e| async move {
                tokio::time::sleep(Duration::from_millis(3)).await;
                e
            });
            ([("content-type", "text/event-stream")], axum::body::Body::from_stream(stream)).into_response()
        }
        "range" => (axum::http::StatusCode::PARTIAL_CONTENT, k).into_response(),
        // 1,000 bytes, each its own write, a millisecond apart.
        "bytewise" => {
            let bytes = futures_util::stream::iter(0..1000).then(|i| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b'a' + (i % 26) as u8]))
            });
            ([("content-type", "text/plain")], axum::body::Body::from_stream(bytes)).into_response()
        }
        _ => (axum::http::StatusCode::NOT_FOUND, "no such shape").into_response(),
    }
}

pub(super) async fn start_hostile() -> String {
    let app = axum::Router::new().route("/{shape}", axum::routing::any(hostile));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Every way this reader decodes `bytes`: as they are; without NUL bytes (UTF-16 of ASCII);
/// HTML references and `\x`/`\u` escapes decoded; percent-decoded; base64 runs (line breaks
/// removed) and hex runs decoded at each alignment; the deltas of an event stream joined.
fn readings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let mut out = vec![bytes.to_vec(), bytes.iter().copied().filter(|&b| b != 0).collect()];
    let mut unescaped = String::new();
    let mut rest = text.as_str();
    while let Some(c) = rest.chars().next() {
        let decoded = if let Some(r) = rest.strip_prefix("&#") {
            let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok().and_then(char::from_u32).map(|c| (c, 2 + digits.len() + usize::from(r[digits.len()..].starts_with(';'))))
        } else if let Some(r) = rest.strip_prefix("\\x").or_else(|| rest.strip_prefix("\\u00")) {
            r.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()).map(|b| (b as char, if rest.starts_with("\\x") { 4 } else { 6 }))
        } else if let Some(r) = rest.strip_prefix('%') {
            r.get(..2).and_then(|h| u8::from_str_radix(h, 16).ok()).map(|b| (b as char, 3))
        } else {
            None
        };
        let (c, len) = decoded.unwrap_or((c, c.len_utf8()));
        unescaped.push(c);
        rest = &rest[len..];
    }
    out.push(unescaped.into_bytes());
    out.extend(super::word_readings(&text.replace("\r\n", "").replace('\n', "")));
    let joined: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::to_owned))
        .collect();
    out.push(joined.into_bytes());
    out
}

/// Whether any reading of `bytes` holds `secret` (or, for a long one, 8 of its bytes in a row).
fn leaks(bytes: &[u8], secret: &str) -> Option<String> {
    let n = secret.len().min(8);
    let windows: Vec<&[u8]> = secret.as_bytes().windows(n).collect();
    readings(bytes).into_iter().find(|r| windows.iter().any(|w| contains_bytes(r, w))).map(|r| format!("{:?}", String::from_utf8_lossy(&r)))
}

/// What the caller gets back as bytes: a text answer as its text, bytes from `body_b64`.
fn answer_bytes(answer: &Value) -> Vec<u8> {
    let body = if answer["body"].is_null() { answer } else { &answer["body"] };
    match (body["body_b64"].as_str(), body) {
        (Some(b64), _) => skapi_core::encoding::base64_decode(b64).unwrap(),
        (None, Value::String(s)) => s.clone().into_bytes(),
        (None, other) => other.to_string().into_bytes(),
    }
}

/// Sends `request` through key `key`, and returns the final answer after checking that no way
/// of reading it — the poll, the history item, the database files — gives the secret back.
async fn ask(server: &Server, secret: &str, request: Value) -> (u16, Value) {
    let id = server.submit("caller", request).await;
    let (status, answer) = server.poll_until_done("caller", &id).await;
    assert!(leaks(&answer_bytes(&answer), secret).is_none(), "the answer leaks: {:?}\n{answer}", leaks(&answer_bytes(&answer), secret));
    assert!(leaks(answer.to_string().as_bytes(), secret).is_none(), "{answer}");
    let prefix = format!("{}:", id.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap().0);
    let (_, history) = server.call("csr-poll", "caller", json!({"service": SERVICE, "id": prefix})).await;
    for item in history["list"].as_array().unwrap() {
        assert!(leaks(item.to_string().as_bytes(), secret).is_none(), "history leaks: {item}");
        assert!(leaks(&answer_bytes(&item["rslv"]), secret).is_none(), "history's bytes leak: {item}");
    }
    for (path, bytes) in server.data_files() {
        for form in [secret.as_bytes().to_vec(), base64::engine::general_purpose::STANDARD.encode(secret).into_bytes()] {
            assert!(!contains_bytes(&bytes, &form), "{path} holds {:?}", String::from_utf8_lossy(&form));
        }
        let wide: Vec<u8> = secret.bytes().flat_map(|b| [b, 0]).collect();
        assert!(!contains_bytes(&bytes, &wide), "{path} holds the secret in UTF-16");
    }
    (status, answer)
}

/// The hostile third party, and a server with key `k` that may go anywhere.
async fn hostile_and_server(engine: Engine) -> (String, Server) {
    let api = start_hostile().await;
    let server = start_server(engine).await;
    server.add_key("k", &[]);
    (api, server)
}

fn get(url: String, headers: Value) -> Value {
    json!({"clientSecretName": "k", "url": url, "method": "get", "params": {"k": "$CLIENT_SECRET"}, "headers": headers})
}

async fn the_caller_cannot_choose_the_content_encoding(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    for accept in ["gzip", "gzip, deflate, br", "identity;q=0, gzip"] {
        let (status, answer) = ask(&server, SECRET, get(format!("{api}/gzip"), json!({"Accept-Encoding": accept}))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["echo"], PLACEHOLDER, "decoded, then redacted: {answer}");
        // Also for a key whose placeholder stands in a header only, and asked for as bytes.
        let bytes = json!({"clientSecretName": "k", "url": format!("{api}/gzip"), "method": "get", "responseType": "arrayBuffer",
                           "headers": {"Authorization": "Bearer $CLIENT_SECRET", "accept-encoding": accept}});
        let (status, answer) = ask(&server, SECRET, bytes).await;
        assert_eq!(status, 200, "{answer}");
        assert!(String::from_utf8(answer_bytes(&answer)).unwrap().contains(PLACEHOLDER), "{answer}");
    }
    // An encoding the server did not ask for and cannot read: nothing of the answer is kept.
    let (status, answer) = ask(&server, SECRET, get(format!("{api}/br"), json!({}))).await;
    assert_eq!((status, answer["code"].as_str()), (502, Some("REFUSED")), "{answer}");
    assert!(answer["body"].is_null() && answer["message"].as_str().unwrap().contains("\"br\""), "{answer}");
}

async fn the_answers_content_type_is_redacted_where_returned_and_stored(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    for (shape, response_type) in [("type", None), ("text-type", Some("arrayBuffer")), ("text-type", Some("blob"))] {
        let mut request = get(format!("{api}/{shape}"), json!({}));
        if let Some(t) = response_type {
            request["responseType"] = json!(t);
        }
        let (status, answer) = ask(&server, SECRET, request).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer["body_content_type"].as_str().unwrap().contains(PLACEHOLDER), "{shape}: {answer}");
    }
}

async fn a_numeric_secret_is_redacted_in_numbers(engine: Engine) {
    let api = start_hostile().await;
    let server = start_server(engine).await;
    let secret = "98765432109876543210";
    server.add_key_valued("k", secret, &[]);
    let (status, answer) = ask(&server, secret, get(format!("{api}/number"), json!({}))).await;
    assert_eq!((status, &answer), (200, &json!({"n": PLACEHOLDER, "list": [1, PLACEHOLDER]})));
    let (status, answer) = ask(&server, secret, get(format!("{api}/bare"), json!({}))).await;
    assert_eq!((status, &answer), (200, &json!(PLACEHOLDER)));
}

async fn bytes_are_redacted_as_bytes(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    for shape in ["raw", "b64raw", "utf16le", "utf16be", "latin1"] {
        for response_type in [None, Some("arrayBuffer"), Some("text")] {
            let mut request = get(format!("{api}/{shape}"), json!({}));
            if let Some(t) = response_type {
                request["responseType"] = json!(t);
            }
            let (status, answer) = ask(&server, SECRET, request).await;
            assert_eq!(status, 200, "{shape}: {answer}");
            let bytes = answer_bytes(&answer);
            assert!(bytes.len() > 4, "{shape}: the answer is kept: {answer}");
            assert!(readings(&bytes).iter().any(|r| contains_bytes(r, PLACEHOLDER.as_bytes())), "{shape}: {answer}");
        }
    }
    // The caller's own upload makes the echo of its request bytes: a one-byte file that is not
    // UTF-8 beside a field holding the secret.
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "k", "url": format!("{api}/echo-body"), "method": "post",
                      "headers": {"Content-Type": "multipart/form-data"}, "data": {"note": "$CLIENT_SECRET", "file": {"skapi:file": 0}}});
    let form = reqwest::multipart::Form::new()
        .text("request", body.to_string())
        .part("file", reqwest::multipart::Part::bytes(vec![0xff]).file_name("x.bin").mime_str("application/octet-stream").unwrap());
    let meta = json!({"public_identifier": "caller", "service": SERVICE, "owner": OWNER});
    let response = server.http.post(format!("{}/csr", server.base)).header("content-meta", meta.to_string()).multipart(form).send().await.unwrap();
    let accepted: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let id = format!("[POST]{api}/echo-body#{SERVICE}:{}", accepted["id"].as_str().expect("accepted"));
    let (status, answer) = server.poll_until_done("caller", &id).await;
    assert_eq!(status, 200, "{answer}");
    let bytes = answer_bytes(&answer);
    assert!(contains_bytes(&bytes, PLACEHOLDER.as_bytes()) && contains_bytes(&bytes, b"\xff"), "{answer}");
    assert!(leaks(&bytes, SECRET).is_none(), "{:?}", String::from_utf8_lossy(&bytes));
}

async fn wrapped_base64_html_references_and_escapes_are_read(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    for shape in ["wrapped", "html", "xescape"] {
        let (status, answer) = ask(&server, SECRET, get(format!("{api}/{shape}"), json!({}))).await;
        assert_eq!(status, 200, "{shape}: {answer}");
        assert!(answer.as_str().unwrap().contains(PLACEHOLDER), "{shape}: {answer}");
    }
    // This test's reader does find the secret in what the third party wrote (so it can fail).
    let raw = reqwest::get(format!("{api}/wrapped?k={}", url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>())).await.unwrap();
    assert!(leaks(&raw.bytes().await.unwrap(), SECRET).is_some());
}

async fn a_secret_split_across_deltas_is_replaced_whole_and_when_streamed(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    let (status, answer) = ask(&server, SECRET, get(format!("{api}/deltas"), json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    let joined = String::from_utf8(readings(answer.as_str().unwrap().as_bytes()).pop().unwrap()).unwrap();
    assert_eq!(joined, format!("Your key is {PLACEHOLDER}. Bye."));

    let mut streamed = get(format!("{api}/deltas"), json!({}));
    streamed["stream"] = json!(true);
    streamed["queue"] = json!("chat");
    let id = server.submit("caller", streamed).await;
    let (text, _) = super::read_stream(&server, "caller", &id).await;
    assert!(leaks(text.as_bytes(), SECRET).is_none(), "{text}");
    let joined = String::from_utf8(readings(text.as_bytes()).pop().unwrap()).unwrap();
    assert_eq!(joined, format!("Your key is {PLACEHOLDER}. Bye."), "{text}");
}

async fn range_headers_are_refused_before_anything_is_sent(engine: Engine) {
    let (api, server) = hostile_and_server(engine).await;
    for header in ["Range", "if-range"] {
        let mut body = get(format!("{api}/range"), json!({header: "bytes=0-7"}));
        body["service"] = json!(SERVICE);
        body["owner"] = json!(OWNER);
        let (status, answer) = server.call("csr", "caller", body).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{answer}");
        assert!(answer["message"].as_str().unwrap().contains("whole"), "{answer}");
    }
}

engine_tests! {
  both: [
    the_caller_cannot_choose_the_content_encoding,
    the_answers_content_type_is_redacted_where_returned_and_stored,
    a_numeric_secret_is_redacted_in_numbers,
    bytes_are_redacted_as_bytes,
    wrapped_base64_html_references_and_escapes_are_read,
    a_secret_split_across_deltas_is_replaced_whole_and_when_streamed,
    range_headers_are_refused_before_anything_is_sent,
  ],
}
