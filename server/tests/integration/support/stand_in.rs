//! The stand-in third-party API: records what it received (so a test can check the real secret
//! arrived) and answers by path.

use super::SECRET;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
pub struct StandIn {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Calls in flight now, in all and per `q` query parameter, and the most seen at once.
    pub inflight: Arc<Mutex<Inflight>>,
}

#[derive(Default)]
pub struct Inflight {
    pub now: usize,
    pub max: usize,
    pub per_queue: HashMap<String, usize>,
    pub max_per_queue: usize,
}

impl StandIn {
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The `tag` field of every JSON body received, in arrival order.
    pub fn tags(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter_map(|s| serde_json::from_slice::<Value>(&s.body).ok())
            .filter_map(|v| v["tag"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits (at most 5 s) until the first request has arrived.
    pub async fn wait_for_first(&self) {
        for _ in 0..250 {
            if !self.tags().is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// Counts a call in flight until dropped.
struct InflightGuard(StandIn, String);

impl InflightGuard {
    fn enter(stand_in: &StandIn, queue: &str) -> InflightGuard {
        let mut f = stand_in.inflight.lock().unwrap();
        f.now += 1;
        f.max = f.max.max(f.now);
        let n = f.per_queue.entry(queue.to_owned()).or_default();
        *n += 1;
        let n = *n;
        f.max_per_queue = f.max_per_queue.max(n);
        InflightGuard(stand_in.clone(), queue.to_owned())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        let mut f = self.0.inflight.lock().unwrap();
        f.now -= 1;
        *f.per_queue.get_mut(&self.1).unwrap() -= 1;
    }
}

async fn record(
    State(stand_in): State<StandIn>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    stand_in.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let path = uri.path();
    if path == "/sse" {
        return sse(&query);
    }
    if path == "/bytes" {
        // Every byte value, `n` times (default 1), as `type` (default application/octet-stream).
        let n = query.get("n").and_then(|v| v.parse().ok()).unwrap_or(1);
        let status = query.get("status").and_then(|v| v.parse().ok()).and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
        let kind = query.get("type").cloned().unwrap_or_else(|| "application/octet-stream".into());
        return (status, [("content-type", kind)], every_byte(n)).into_response();
    }
    if path == "/v1/images/generations" {
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {SECRET}")) {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "Incorrect API key provided"}}))).into_response();
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        return Json(json!({"created": 1, "data": [{"b64_json": format!("image of {}", request["prompt"].as_str().unwrap_or(""))}]})).into_response();
    }
    if path == "/maps" {
        if query.get("key").map(String::as_str) != Some(SECRET) {
            return (StatusCode::FORBIDDEN, "bad key").into_response();
        }
        return Json(json!({"place": query.get("q").cloned().unwrap_or_default()})).into_response();
    }
    if path == "/usage" {
        // An answer that reports `tokens` used: OpenAI's shape, or (`style=anthropic`) Anthropic's.
        let tokens: u64 = query.get("tokens").and_then(|v| v.parse().ok()).unwrap_or(0);
        let usage = match query.get("style").map(String::as_str) {
            Some("anthropic") => json!({"input_tokens": tokens / 4, "output_tokens": tokens - tokens / 4}),
            _ => json!({"prompt_tokens": tokens / 4, "completion_tokens": tokens - tokens / 4, "total_tokens": tokens}),
        };
        return Json(json!({"choices": [{"message": {"content": "ok"}}], "usage": usage})).into_response();
    }
    if path == "/redirect" {
        let to = query.get("to").cloned().unwrap_or_default();
        return (StatusCode::FOUND, [("location", to)], "moved").into_response();
    }
    if path == "/echo-forms" {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(SECRET);
        let u = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
        let pct: String = url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect();
        let body = json!({"plain": SECRET, "b64": b, "b64url": u, "pct": pct, "auth": headers.get("authorization").and_then(|v| v.to_str().ok())});
        return (StatusCode::BAD_REQUEST, [("x-echo", SECRET)], Json(body)).into_response();
    }
    if path == "/echo-encodings" {
        let as_text = query.get("as").map(String::as_str) == Some("text");
        let content_type = if as_text { "text/plain" } else { "application/json" };
        return ([("content-type", content_type)], echo_encodings(as_text)).into_response();
    }
    if path == "/filler" {
        let n = query.get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
        return format!("{}{SECRET} and the rest of the answer", "x".repeat(n)).into_response();
    }
    if path == "/leak" {
        return (StatusCode::BAD_REQUEST, format!("{{\"echo\": \"your key {SECRET} is wrong\"}}")).into_response();
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let code = code.parse().unwrap_or(500);
        return (StatusCode::from_u16(code).unwrap(), Json(json!({"status": code}))).into_response();
    }
    if path == "/slow" {
        let _inflight = InflightGuard::enter(&stand_in, query.get("q").map(String::as_str).unwrap_or(""));
        let ms = query.get("ms").and_then(|m| m.parse().ok()).unwrap_or(300);
        // `hold=TAG`: the request so tagged takes 60 s, the others `ms` (all on one url, so one
        // queue): a test can stop an instance while that one surely still runs.
        let tag = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["tag"].as_str().map(str::to_owned));
        let held = tag.is_some() && query.get("hold") == tag.as_ref();
        tokio::time::sleep(Duration::from_millis(if held { 60_000 } else { ms })).await;
    }
    Json(json!({"method": method.as_str(), "path": path, "body": String::from_utf8_lossy(&body)})).into_response()
}

/// Every byte value 0..=255, `n` times over.
pub fn every_byte(n: usize) -> Vec<u8> {
    (0..=255u8).cycle().take(256 * n).collect()
}

/// The pieces `/sse` writes: `n` events `data: {"i":k}` (OpenAI's shape: `data: …` and a
/// blank line), then `data: [DONE]`; with `split`, the secret written in two writes after
/// event 1 (plain, then base64 across the write boundary too); with `usage=N`, a last event
/// reporting N tokens used, as OpenAI's `stream_options.include_usage` does.
pub fn sse_pieces(query: &HashMap<String, String>) -> Vec<String> {
    use base64::Engine;
    let n: usize = query.get("n").and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut pieces: Vec<String> = (1..=n).map(|i| format!("data: {{\"i\":{i},\"t\":\"tok{i} é\"}}\n\n")).collect();
    if query.contains_key("split") {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("ab{SECRET}"));
        let (s, b) = (SECRET.len() / 2, b64.len() / 2);
        let insert = [format!("data: key {}", &SECRET[..s]), format!("{} and {}", &SECRET[s..], &b64[..b]), format!("{} done\n\n", &b64[b..])];
        for (k, piece) in insert.into_iter().enumerate() {
            pieces.insert(1 + k, piece);
        }
    }
    if let Some(tokens) = query.get("usage") {
        pieces.push(format!("data: {{\"choices\":[],\"usage\":{{\"total_tokens\":{tokens}}}}}\n\n"));
    }
    pieces.push("data: [DONE]\n\n".into());
    pieces
}

/// A streamed answer (`text/event-stream`): [`sse_pieces`], `ms` apart (default 20); with
/// `fail=K` the connection breaks after K pieces; with `status=S`, answered with status S.
fn sse(query: &HashMap<String, String>) -> axum::response::Response {
    let pieces = sse_pieces(query);
    let gap = Duration::from_millis(query.get("ms").and_then(|v| v.parse().ok()).unwrap_or(20));
    let fail: Option<usize> = query.get("fail").and_then(|v| v.parse().ok());
    let status = query.get("status").and_then(|v| v.parse().ok()).and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
    let stream = futures_util::stream::unfold(0usize, move |k| {
        let piece = pieces.get(k).cloned();
        async move {
            if k > 0 {
                tokio::time::sleep(gap).await;
            }
            match (piece, fail) {
                (_, Some(f)) if k == f => Some((Err(std::io::Error::other("the stand-in broke the stream")), k + 1)),
                (_, Some(f)) if k > f => None,
                (Some(piece), _) => Some((Ok(Bytes::from(piece)), k + 1)),
                (None, _) => None,
            }
        }
    });
    (status, [("content-type", "text/event-stream")], axum::body::Body::from_stream(stream)).into_response()
}

/// The secret written back in every encoding a reader might decode: JSON escapes of every
/// character and of one, percent-encoding of every byte (either case) and of some, hex in
/// either case, base64 and base64url at several alignments (e.g. `Basic base64(user:secret)`),
/// and the secret as an object key. As JSON text, or (`text`) as plain lines.
pub fn echo_encodings(text: bool) -> String {
    use base64::Engine;
    let (std, url) = (base64::engine::general_purpose::STANDARD, base64::engine::general_purpose::URL_SAFE_NO_PAD);
    let every_escaped: String = SECRET.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
    let one_escaped = SECRET.replacen('k', "\\u006B", 1);
    let forms = [
        ("every_escaped", every_escaped.clone()),
        ("one_escaped", one_escaped),
        ("pct_upper", SECRET.bytes().map(|b| format!("%{b:02X}")).collect()),
        ("pct_lower", SECRET.bytes().map(|b| format!("%{b:02x}")).collect()),
        ("pct_some", SECRET.bytes().enumerate().map(|(i, b)| if i % 3 == 0 { format!("%{b:02x}") } else { (b as char).to_string() }).collect()),
        ("hex", SECRET.bytes().map(|b| format!("{b:02x}")).collect()),
        ("hex_upper", SECRET.bytes().map(|b| format!("{b:02X}")).collect()),
        ("basic", format!("Basic {}", std.encode(format!("user:{SECRET}")))),
        ("b64_shift1", std.encode(format!("a{SECRET}!"))),
        ("b64url_shift2", url.encode(format!("ab{SECRET}"))),
    ];
    if text {
        return forms.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    }
    let fields: Vec<String> = forms.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect();
    format!("{{{},\"{every_escaped}\":\"as a key\"}}", fields.join(","))
}

/// Starts the stand-in API; returns its base url (`http://127.0.0.1:PORT`).
pub async fn start_stand_in() -> (String, StandIn) {
    let stand_in = StandIn::default();
    let app = Router::new().route("/{*path}", any(record)).route("/v1/images/generations", post(record)).with_state(stand_in.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), stand_in)
}
