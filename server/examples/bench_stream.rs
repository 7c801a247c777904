//! Streamed answers: how long from the third party writing an event to a reader holding it,
//! pushed (`csr-stream`) and polled (`csr-poll {id, since}` every `--poll-ms`), beside the same
//! stand-in read directly; then many streams at once, each checked complete and in order.
//! Everything in this process, over loopback, on SQLite in a fresh data directory.
//!
//! `cargo run --release -p skapi-server --example bench_stream -- [--events 50] [--gap-ms 20]
//! [--poll-ms 50] [--streams 200] [--stream-events 100]`

use axum::body::Body;
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use skapi_server::keyring::NewKey;
use skapi_server::{AppState, ServeConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The clock every event's write time is read on (one process: one clock).
fn since_start_us() -> f64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e6
}

/// `n` SSE events `gap` ms apart, each stamped with the time it is written: `data: {"k":…,"t":…}`.
async fn events(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    let n: usize = q.get("n").and_then(|v| v.parse().ok()).unwrap_or(50);
    let gap = Duration::from_millis(q.get("gap").and_then(|v| v.parse().ok()).unwrap_or(20));
    let stream = futures_util::stream::unfold(0usize, move |k| async move {
        if k == n {
            return None;
        }
        if k > 0 {
            tokio::time::sleep(gap).await;
        }
        let event = format!("data: {{\"k\":{k},\"t\":{:.0}}}\n\n", since_start_us());
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(event)), k + 1))
    });
    ([("content-type", "text/event-stream")], Body::from_stream(stream)).into_response()
}

async fn listen(app: Router) -> String {
    let listener = skapi_server::listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    format!("http://{addr}")
}

/// Write-to-read delays (ms) of every event stamp in `text`, and the event numbers seen.
fn stamps(text: &str, now_us: f64, delays: &mut Vec<f64>, seen: &mut Vec<u64>) {
    for event in text.split("data: ").filter_map(|e| serde_json::from_str::<Value>(e.trim()).ok()) {
        if let (Some(k), Some(t)) = (event["k"].as_u64(), event["t"].as_f64()) {
            delays.push((now_us - t) / 1000.0);
            seen.push(k);
        }
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn post(&self, endpoint: &str, body: Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/{endpoint}", self.base))
            .header("content-meta", json!({"public_identifier": "bench", "service": "bench", "owner": "o"}).to_string())
            .body(body.to_string())
    }

    /// Starts a streamed request to `url`; its full id.
    async fn start(&self, url: &str, queue: &str) -> String {
        let body = json!({"service": "bench", "owner": "o", "clientSecretName": "k", "url": url, "method": "post", "stream": true,
                          "queue": queue, "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"stream": true}});
        let answer: Value = serde_json::from_str(&self.post("csr", body).send().await.unwrap().text().await.unwrap()).unwrap();
        format!("[POST]{}#bench:{}", url.to_lowercase(), answer["id"].as_str().expect("accepted"))
    }

    /// Reads a stream by push to its end: the delays and event numbers.
    async fn push(&self, id: &str) -> (Vec<f64>, Vec<u64>) {
        let mut response = self.post("csr-stream", json!({"service": "bench", "owner": "o", "id": id, "since": 0})).send().await.unwrap();
        let (mut delays, mut seen, mut buffer) = (Vec::new(), Vec::new(), String::new());
        while let Some(bytes) = response.chunk().await.unwrap() {
            let now = since_start_us();
            buffer.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(at) = buffer.find("\n\n") {
                let event: String = buffer.drain(..at + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    if event.contains("event: chunk") {
                        let chunk: Value = serde_json::from_str(data).unwrap();
                        stamps(chunk["txt"].as_str().unwrap_or(""), now, &mut delays, &mut seen);
                    }
                }
            }
        }
        (delays, seen)
    }

    /// Reads a stream by polling `since` every `every` to its end.
    async fn poll(&self, id: &str, every: Duration) -> (Vec<f64>, Vec<u64>) {
        let (mut delays, mut seen, mut since) = (Vec::new(), Vec::new(), 0);
        loop {
            let answer = self.post("csr-poll", json!({"service": "bench", "owner": "o", "id": id, "since": since})).send().await.unwrap();
            let page: Value = serde_json::from_str(&answer.text().await.unwrap()).unwrap();
            let now = since_start_us();
            for chunk in page["chunks"].as_array().into_iter().flatten() {
                stamps(chunk["txt"].as_str().unwrap_or(""), now, &mut delays, &mut seen);
            }
            since = page["last_seq"].as_u64().unwrap_or(since);
            if matches!(page["status"].as_str(), Some("resolved" | "failed")) && page["more"] != true {
                return (delays, seen);
            }
            if page["more"] != true {
                tokio::time::sleep(every).await;
            }
        }
    }
}

/// The stand-in read directly: delays of each event.
async fn direct(http: &reqwest::Client, url: &str) -> Vec<f64> {
    let mut response = http.post(url).send().await.unwrap();
    let (mut delays, mut seen) = (Vec::new(), Vec::new());
    while let Some(bytes) = response.chunk().await.unwrap() {
        stamps(&String::from_utf8_lossy(&bytes), since_start_us(), &mut delays, &mut seen);
    }
    delays
}

fn row(name: &str, mut delays: Vec<f64>) {
    delays.sort_by(f64::total_cmp);
    let at = |p: f64| delays.get(((delays.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN);
    println!("{name:<44} {:>7} {:>9.2} {:>9.2} {:>9.2}", delays.len(), at(0.5), at(0.99), at(1.0));
}

fn memory_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value =
        |flag: &str, default: u64| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default);
    let (events_n, gap, poll_ms, streams, stream_events) =
        (value("--events", 50), value("--gap-ms", 20), value("--poll-ms", 50), value("--streams", 200), value("--stream-events", 100));
    since_start_us();

    let stand_in = listen(Router::new().route("/events", post(events))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig { allow_private_upstreams: true, concurrency: 1024, ..ServeConfig::new("127.0.0.1:0", dir.path()) };
    let state = AppState::open(config).await.unwrap();
    let key = NewKey {
        service: "bench".into(),
        name: "k".into(),
        secret: "sk-bench-secret".into(),
        destinations: skapi_server::destination::Destinations::Any,
        ..Default::default()
    };
    state.keyring.add(key, false).await.unwrap();
    let client = Client { http: reqwest::Client::new(), base: listen(skapi_server::api::router(state)).await };
    let url = format!("{stand_in}/events?n={events_n}&gap={gap}");

    println!("streamed answers: {events_n} events {gap} ms apart, write → read delay in ms (one process, loopback, SQLite)");
    println!("{:<44} {:>7} {:>9} {:>9} {:>9}", "reader", "events", "p50", "p99", "max");
    row("the stand-in read directly", direct(&client.http, &url).await);
    let id = client.start(&url, "push-1").await;
    let (delays, seen) = client.push(&id).await;
    assert_eq!(seen, (0..events_n).collect::<Vec<_>>(), "push: every event once, in order");
    if std::env::var_os("BENCH_DEBUG").is_some() {
        eprintln!("push delays in order: {:?}", delays.iter().map(|d| format!("{d:.1}")).collect::<Vec<_>>());
    }
    row("push (csr-stream)", delays);
    let id = client.start(&url, "poll-1").await;
    let (delays, seen) = client.poll(&id, Duration::from_millis(poll_ms)).await;
    assert_eq!(seen, (0..events_n).collect::<Vec<_>>(), "polling: every event once, in order");
    row(&format!("polling (csr-poll since, every {poll_ms} ms)"), delays);

    let rest_kb = memory_kb();
    let url = format!("{stand_in}/events?n={stream_events}&gap={gap}");
    let started = Instant::now();
    let readers: Vec<_> = (0..streams)
        .map(|s| {
            let (client, url) = (Client { http: client.http.clone(), base: client.base.clone() }, url.clone());
            tokio::spawn(async move {
                let id = client.start(&url, &format!("many-{s}")).await;
                client.push(&id).await
            })
        })
        .collect();
    let mut peak_kb = rest_kb;
    let mut all = Vec::new();
    for reader in readers {
        let (delays, seen) = reader.await.unwrap();
        assert_eq!(seen, (0..stream_events).collect::<Vec<_>>(), "every stream complete and in order");
        all.extend(delays);
        peak_kb = peak_kb.max(memory_kb());
    }
    println!();
    println!(
        "{streams} streams at once, {stream_events} events each ({gap} ms apart): all complete and in order in {:.1} s; RSS {} → {} MB (this process: server, stand-in and readers)",
        started.elapsed().as_secs_f64(),
        rest_kb / 1024,
        peak_kb / 1024
    );
    row(&format!("push, {streams} streams at once"), all);
}
