//! Test harness: a real skapi-server on loopback, and a stand-in third-party API that records
//! what it received (so a test can check the real secret arrived) and answers by path.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use skapi_server::destination::Destinations;
use skapi_server::keyring::NewKey;
use skapi_server::{AppState, ServeConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const SERVICE: &str = "svc-test";
pub const OWNER: &str = "owner-test";
pub const SECRET: &str = "sk-test-5ecr3t/+=";

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
/// event 1 (plain, then base64 across the write boundary too).
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

/// A client of a running skapi-server (in this process or another).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Server {
    pub api: Api,
    pub state: AppState,
    pub dir: Arc<tempfile::TempDir>,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The test server's settings. With `SKAPI_TEST_BACKEND=postgres` the server keeps its records
/// in a fresh PostgreSQL database instead of SQLite (the same tests, the other engine).
pub fn config(dir: &std::path::Path) -> ServeConfig {
    let database = match std::env::var("SKAPI_TEST_BACKEND").as_deref() {
        Ok("postgres") => Some(blocking(fresh_postgres_database)),
        _ => None,
    };
    ServeConfig { allow_private_upstreams: true, upstream_timeout: Duration::from_secs(5), database, ..ServeConfig::new("127.0.0.1:0", dir) }
}

/// Runs store work from a test body: the PostgreSQL client blocks, which an async worker
/// thread may only do inside `block_in_place`.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// Starts skapi-server on a fresh data directory.
pub async fn start_server() -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    start_server_with(dir.clone(), config(dir.path())).await
}

pub async fn start_server_with(dir: Arc<tempfile::TempDir>, config: ServeConfig) -> Server {
    let state = AppState::open(config).await.unwrap();
    // As `serve` listens (TCP_NODELAY).
    let listener = skapi_server::listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = skapi_server::api::router(state.clone());
    let limits = state.config.http.clone();
    tokio::spawn(skapi_server::http::serve(listener, app, limits, std::future::pending()));
    Server { api: Api::new(format!("http://{addr}")), state, dir }
}

impl Server {
    /// Adds key `name` with these destinations; none given = any destination (chosen
    /// explicitly, as an operator must).
    pub fn add_key(&self, name: &str, destinations: &[&str]) {
        self.add_key_valued(name, SECRET, destinations)
    }

    /// The same with another secret value.
    pub fn add_key_valued(&self, name: &str, secret: &str, destinations: &[&str]) {
        blocking(|| tokio::runtime::Handle::current().block_on(self.add_key_now(name, secret, destinations)))
    }

    async fn add_key_now(&self, name: &str, secret: &str, destinations: &[&str]) {
        self.state
            .keyring
            .add(
                NewKey {
                    service: SERVICE.into(),
                    name: name.into(),
                    secret: secret.into(),
                    locked: false,
                    destinations: if destinations.is_empty() {
                        Destinations::Any
                    } else {
                        Destinations::Only(destinations.iter().map(|d| d.to_string()).collect())
                    },
                    ..Default::default()
                },
                false,
            )
            .await
            .unwrap();
    }

    /// Every file in the data directory, as bytes.
    pub fn data_files(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect()
    }
}

impl Api {
    pub fn new(base: String) -> Api {
        Api { base, http: reqwest::Client::new() }
    }

    /// POSTs `body` to an endpoint as an SDK would, with a public identifier in Content-Meta.
    pub async fn call(&self, endpoint: &str, identifier: &str, body: Value) -> (u16, Value) {
        self.call_forwarded(endpoint, identifier, None, body).await
    }

    /// A POST to an endpoint as an SDK makes it: a public identifier in Content-Meta.
    fn post(&self, endpoint: &str, identifier: &str) -> reqwest::RequestBuilder {
        let meta = json!({"public_identifier": identifier, "service": SERVICE, "owner": OWNER});
        self.http.post(format!("{}/{endpoint}", self.base)).header("content-meta", meta.to_string())
    }

    /// Opens `csr-stream` for request `id` (from chunk `since`, when given): the answer, its
    /// events unread.
    pub async fn open_stream(&self, identifier: &str, id: &str, since: Option<u64>) -> reqwest::Response {
        let mut body = json!({"service": SERVICE, "owner": OWNER, "id": id});
        if let Some(since) = since {
            body["since"] = json!(since);
        }
        self.post("csr-stream", identifier).body(body.to_string()).send().await.unwrap()
    }

    /// `call` through a proxy that says the client is `client` (`X-Forwarded-For`).
    pub async fn call_forwarded(&self, endpoint: &str, identifier: &str, client: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.post(endpoint, identifier).header("content-type", "application/json");
        if let Some(client) = client {
            request = request.header("x-forwarded-for", client);
        }
        let response = request.body(body.to_string()).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Polls a full id until it is no longer pending or running.
    pub async fn poll_until_done(&self, identifier: &str, full_id: &str) -> (u16, Value) {
        for _ in 0..200 {
            let (status, body) = self.call("csr-poll", identifier, json!({"service": SERVICE, "owner": OWNER, "id": full_id})).await;
            let unfinished = status == 200 && matches!(body["status"].as_str(), Some("pending" | "running")) && body["id"].is_string();
            if !unfinished {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("request {full_id} did not finish");
    }

    /// Sends a 2.0 `csr` and returns the full id to poll it by.
    pub async fn submit(&self, identifier: &str, mut body: Value) -> String {
        body["service"] = json!(SERVICE);
        body["owner"] = json!(OWNER);
        let (status, accepted) = self.call("csr", identifier, body.clone()).await;
        assert_eq!(status, 200, "{accepted}");
        let method = body["method"].as_str().unwrap().to_uppercase();
        format!("[{method}]{}#{SERVICE}:{}", body["url"].as_str().unwrap().to_lowercase(), accepted["id"].as_str().unwrap())
    }
}

/// A bare TCP server that hands every connection to `serve` (for faults HTTP servers won't make).
pub async fn raw_server<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{addr}")
}

/// A POST through the `openai` key to `url`, tagged so the stand-in's order can be checked.
pub fn tagged(url: &str, tag: &str) -> Value {
    json!({"clientSecretName": "openai", "url": url, "method": "post",
           "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"tag": tag}})
}

/// The secret as written and in the encodings it would most likely leak in (for scans of
/// answers, files and logs).
pub fn secret_forms() -> Vec<String> {
    use base64::Engine;
    vec![
        SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET),
        url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect(),
    ]
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `skapi-server` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_skapi-server");

/// `skapi-server keys add` through the CLI, the value on standard input.
pub fn cli_add_key(data: &std::path::Path, name: &str) {
    cli_add_key_with(data, name, &[]);
}

/// The same, with environment variables (e.g. `SKAPI_DATABASE`).
pub fn cli_add_key_with(data: &std::path::Path, name: &str, envs: &[(&str, &str)]) {
    use std::io::Write;
    let mut add = std::process::Command::new(BIN)
        .args(["keys", "add", "--any-destination", "--service", SERVICE, "--name", name, "--data-dir"])
        .arg(data)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(SECRET.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());
}

/// Starts `skapi-server serve` on `data` with `stderr` for its log; returns it and a client of
/// the URL it printed.
pub fn spawn_server(data: &std::path::Path, stderr: std::process::Stdio, envs: &[(&str, &str)]) -> (std::process::Child, Api) {
    spawn_server_with(data, stderr, envs, |_| {})
}

/// The same, with the command adjusted first (e.g. its resource limits).
pub fn spawn_server_with(
    data: &std::path::Path,
    stderr: std::process::Stdio,
    envs: &[(&str, &str)],
    adjust: impl FnOnce(&mut std::process::Command),
) -> (std::process::Child, Api) {
    use std::io::BufRead;
    let mut command = std::process::Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-upstreams", "--data-dir"])
        .arg(data)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    adjust(&mut command);
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, Api::new(url))
}

// ---- faults and load, shared by the reliability and instance tests ----

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one HTTP request's body (enough HTTP for the stand-in below).
pub async fn read_body(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// What a faulty API did with each tag, in arrival order.
#[derive(Default)]
pub struct Faulty {
    pub arrivals: Mutex<Vec<(String, &'static str)>>,
}

/// A stand-in API that answers each request by its tag's hash: OK, refuse (close at once),
/// reset (half an answer), hang (never answer), or 503. `faults` = share of faulty answers.
pub async fn faulty_api(faults: u64) -> (String, Arc<Faulty>) {
    let record = Arc::new(Faulty::default());
    let seen = record.clone();
    let base = raw_server(move |mut stream| {
        let seen = seen.clone();
        async move {
            let Some(body) = read_body(&mut stream).await else { return };
            let tag = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["tag"].as_str().map(str::to_owned)).unwrap_or_default();
            let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
            let fate = if hash % 100 >= faults { "ok" } else { ["refuse", "reset", "hang", "503"][(hash / 100 % 4) as usize] };
            seen.arrivals.lock().unwrap().push((tag.clone(), fate));
            match fate {
                "refuse" => {}
                "reset" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"par").await;
                }
                "hang" => tokio::time::sleep(Duration::from_secs(30)).await,
                "503" => {
                    let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").await;
                }
                _ => {
                    let body = json!({"tag": tag}).to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
            }
        }
    })
    .await;
    (base, record)
}

/// Per queue, the tags in acceptance order; and every full id.
pub type Accepted = (HashMap<String, Vec<String>>, Vec<String>);

/// Sends `total` tagged requests over `queues` queues from `clients` clients.
pub async fn send_load(api: &Api, url: &str, round: usize, total: usize, queues: usize, clients: usize) -> Accepted {
    let accepted: Arc<Mutex<Accepted>> = Arc::default();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (api, url, accepted) = (api.clone(), url.to_owned(), accepted.clone());
        tasks.push(tokio::spawn(async move {
            for i in (c..total).step_by(clients) {
                let queue = format!("q{}", i % queues);
                let tag = format!("{queue}-{round}.{i}");
                let mut body = tagged(&url, &tag);
                body["queue"] = json!(queue);
                body["service"] = json!(SERVICE);
                body["owner"] = json!(OWNER);
                let (status, answer) = api.call("csr", "load", body).await;
                assert_eq!(status, 200, "{answer}");
                let full = format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), answer["id"].as_str().unwrap());
                let mut a = accepted.lock().unwrap();
                a.0.entry(queue).or_default().push(tag);
                a.1.push(full);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(accepted).ok().unwrap().into_inner().unwrap()
}

/// A fresh database on the test PostgreSQL (`SKAPI_TEST_POSTGRES`), or `None`, saying so, when
/// there is none. Blocking: call it outside the async runtime.
pub fn fresh_postgres_database() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    // A PostgreSQL test without its database fails: it is never counted as passed.
    let base = std::env::var("SKAPI_TEST_POSTGRES").expect("SKAPI_TEST_POSTGRES is not set (scripts/test.sh starts a PostgreSQL and sets it)");
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("skapi_test_{}_{}_{n}", std::process::id(), skapi_server::clock::now_ms());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("the test PostgreSQL is reachable");
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    format!("{}/{name}", base.rsplit_once('/').unwrap().0)
}
