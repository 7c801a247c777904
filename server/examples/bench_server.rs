//! Server throughput: N clients each loop csr → (third party answers at once) → poll until
//! resolved, against an in-process skapi-server on a fresh data directory and an in-process
//! stand-in API. Prints completed requests/s, latency percentiles and the process's memory.
//!
//! `cargo run --release -p skapi-server --example bench_server -- [clients…] [--seconds S] [--poll-ms MS] [--queue]`
//! `… -- --queue-overhead 1000` — 1,000 requests through one queue, time per request
//! `… -- [clients…] --direct URL` — the same load against a plain proxy (e.g. nginx) at URL
//! `… -- --stand-in-only ADDR` — only serve the stand-in API at ADDR (for bench/server.sh)
//! `… -- [clients…] --stand-in URL` — use that stand-in instead of an in-process one
//! `… -- [clients…] --instances N --database postgres://…` — N `skapi-server` processes (the
//!   release binary) on one PostgreSQL, the clients spread over them
//! `… -- [clients…] --instances 1` — one such process on SQLite: the server in a process of its
//!   own, as nginx is, not sharing this one's runtime with the clients
//! `… -- [clients…] --rate R` — the clients start R requests a second between them, evenly
//!   spread, instead of each starting its next as soon as it can: latency at a given load rather
//!   than at saturation (each time counts from when its request was due)
//! `… -- [clients…] --floor` — the same exchanges against a bare in-memory server (no key, no
//!   store, no checks): what the protocol's three HTTP exchanges alone cost on this machine, the
//!   ceiling any server answering this load here can reach
//! `… -- [clients…] --floor durable` — that bare server plus the two durable writes a request
//!   needs (its arrival before the answer, its result before polls see it), each an INSERT or
//!   UPDATE of one row in SQLite (WAL, `synchronous = FULL`) committed in groups by one writer
//!   thread: the ceiling with durability and nothing else

use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use skapi_server::keyring::NewKey;
use skapi_server::{AppState, ServeConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The server's own allocator (see `main.rs`), for the server running in this process.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Serves `app` on a free loopback port, listening as `skapi-server` does (`TCP_NODELAY`).
async fn listen(app: Router) -> String {
    let listener = skapi_server::listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap() });
    format!("http://{addr}")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Run {
    completed: usize,
    seconds: f64,
    accept_ms: Vec<f64>,
    total_ms: Vec<f64>,
    polls: usize,
    /// The server's resident memory once it was up, and the peak after the load (kB).
    rest_kb: u64,
    load_kb: u64,
    /// CPU time the server spent during the load (user + system, ms; with the clients when it
    /// runs in this process): steadier than the rate on a machine whose speed drifts, and the
    /// figure to compare between builds.
    cpu_ms: f64,
}

fn stand_in_app() -> Router {
    Router::new().route("/api", post(|body: Json<Value>| async move { Json(json!({"echo": body.0})) }))
}

/// Servers to load: one in this process (SQLite), or `instances` processes on `database` (on
/// SQLite in their data directory when it is empty).
struct Servers {
    bases: Vec<String>,
    children: Vec<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl Servers {
    /// The processes whose CPU and memory are the server's, as `/proc` names them: this one
    /// (the server and the clients) when the server runs here, else the server processes.
    fn processes(&self) -> Vec<String> {
        if self.children.is_empty() {
            return vec!["self".to_owned()];
        }
        self.children.iter().map(|child| child.id().to_string()).collect()
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What the floor server keeps: nothing, or a row per request written durably.
#[derive(Clone, Copy, PartialEq)]
enum Floor {
    Bare,
    Durable,
}

/// One row write for the durable floor's writer thread, and where to say it committed.
type FloorWrite = (u64, Option<String>, tokio::sync::oneshot::Sender<()>);

/// The durable floor's writer: group commit, as the SQLite store does it (every write waiting
/// when a batch begins shares its transaction and its fsync; none is answered before).
fn floor_writer(path: std::path::PathBuf) -> std::sync::mpsc::Sender<FloorWrite> {
    let (sender, writes) = std::sync::mpsc::channel::<FloorWrite>();
    std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch("CREATE TABLE requests (id INTEGER PRIMARY KEY, answer TEXT)").unwrap();
        while let Ok(first) = writes.recv() {
            let mut batch = vec![first];
            batch.extend(writes.try_iter().take(511));
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            for (id, answer, _) in &batch {
                match answer {
                    None => conn.prepare_cached("INSERT INTO requests (id) VALUES (?1)").unwrap().execute([*id as i64]).unwrap(),
                    Some(a) => conn.prepare_cached("UPDATE requests SET answer = ?2 WHERE id = ?1").unwrap().execute((*id as i64, a)).unwrap(),
                };
            }
            conn.execute_batch("COMMIT").unwrap();
            for (_, _, done) in batch {
                let _ = done.send(());
            }
        }
    });
    sender
}

/// The floor: `csr` parses its body, sends `data` to `url` with the secret in a spawned task
/// and answers an id; `csr-poll` answers the third party's body once it is in memory. Durable,
/// it also writes the request before answering and its result before polls see it.
async fn floor_server(floor: Floor) -> Servers {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    type Answers = Arc<Mutex<(u64, HashMap<u64, Option<axum::body::Bytes>>)>>;
    let answers: Answers = Arc::default();
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let writer = (floor == Floor::Durable).then(|| Arc::new(Mutex::new(floor_writer(dir.path().join("floor.sqlite3")))));
    let durably = move |writer: Option<Arc<Mutex<std::sync::mpsc::Sender<FloorWrite>>>>, id: u64, answer: Option<String>| async move {
        if let Some(writer) = writer {
            let (done, committed) = tokio::sync::oneshot::channel();
            writer.lock().unwrap().send((id, answer, done)).unwrap();
            committed.await.unwrap();
        }
    };
    let (a1, a2) = (answers.clone(), answers);
    let app = Router::new()
        .route(
            "/csr",
            post(move |body: String| {
                let (answers, http, writer) = (a1.clone(), http.clone(), writer.clone());
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    let id = {
                        let mut answers = answers.lock().unwrap();
                        answers.0 += 1;
                        answers.0
                    };
                    durably(writer.clone(), id, None).await;
                    answers.lock().unwrap().1.insert(id, None);
                    let request = http
                        .post(body["url"].as_str().unwrap())
                        .header("authorization", "Bearer sk-bench-secret")
                        .header("content-type", "application/json")
                        .body(body["data"].to_string());
                    tokio::spawn(async move {
                        let answer = request.send().await.unwrap().bytes().await.unwrap();
                        durably(writer, id, Some(String::from_utf8_lossy(&answer).into_owned())).await;
                        answers.lock().unwrap().1.insert(id, Some(answer));
                    });
                    Json(json!({"id": id.to_string()}))
                }
            }),
        )
        .route(
            "/csr-poll",
            post(move |body: String| {
                let answers = a2.clone();
                async move {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    let id: u64 = body["id"].as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap();
                    let mut answers = answers.lock().unwrap();
                    match answers.1.get(&id) {
                        Some(Some(_)) => answers.1.remove(&id).flatten().unwrap().into_response(),
                        _ => Json(json!({"status": "running"})).into_response(),
                    }
                }
            }),
        );
    Servers { bases: vec![listen(app).await], children: Vec::new(), _dir: dir }
}

/// The key every benchmark sends through (to the local stand-in: any destination).
fn bench_key() -> NewKey {
    NewKey {
        service: "bench".into(),
        name: "k".into(),
        secret: "sk-bench-secret".into(),
        destinations: skapi_server::destination::Destinations::Any,
        ..Default::default()
    }
}

async fn servers(instances: Option<(usize, String)>) -> Servers {
    let dir = tempfile::tempdir().unwrap();
    let Some((n, database)) = instances else {
        let config = ServeConfig { allow_private_upstreams: true, concurrency: 256, ..ServeConfig::new("127.0.0.1:0", dir.path()) };
        let state = AppState::open(config).await.unwrap();
        state.keyring.add(bench_key(), false).await.unwrap();
        let base = listen(skapi_server::api::router(state)).await;
        return Servers { bases: vec![base], children: Vec::new(), _dir: dir };
    };
    use std::io::{BufRead, Write};
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("skapi-server");
    let data = dir.path().to_owned();
    let database2 = database.clone();
    tokio::task::spawn_blocking(move || {
        let mut add = std::process::Command::new(&bin)
            .args(["keys", "add", "--service", "bench", "--name", "k", "--replace", "--any-destination", "--data-dir"])
            .arg(&data)
            .envs((!database2.is_empty()).then(|| ("SKAPI_DATABASE", database2.clone())))
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("target/release/skapi-server (cargo build --release -p skapi-server)");
        add.stdin.take().unwrap().write_all(b"sk-bench-secret").unwrap();
        assert!(add.wait().unwrap().success());
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for _ in 0..n {
            let mut child = std::process::Command::new(&bin)
                .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-upstreams", "--concurrency", "256", "--data-dir"])
                .arg(&data)
                .envs((!database2.is_empty()).then(|| ("SKAPI_DATABASE", database2.clone())))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            bases.push(line.trim().rsplit(' ').next().unwrap().trim_end_matches('/').to_owned());
            children.push(child);
        }
        Servers { bases, children, _dir: dir }
    })
    .await
    .unwrap()
}

/// How the clients load the server.
#[derive(Clone, Copy)]
struct Load {
    seconds: f64,
    poll_ms: u64,
    queue: bool,
    /// Requests per second the clients start together, evenly spread (each client on its own
    /// schedule); `None`: each starts its next request as soon as the last one is found.
    rate: Option<f64>,
}

async fn run(clients: usize, load: Load, external: Option<&str>, instances: Option<(usize, String)>, floor: Option<Floor>) -> Run {
    let stand_in = match external {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => listen(stand_in_app()).await,
    };
    let servers = match floor {
        Some(floor) => floor_server(floor).await,
        None => servers(instances).await,
    };
    let rest_kb = memory_kb(&servers).0;
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients * 2).build().unwrap();
    let Load { seconds, poll_ms, queue, rate } = load;
    let begun = Instant::now();
    let deadline = begun + Duration::from_secs_f64(seconds);
    let url = format!("{stand_in}/api");
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, base, url) = (http.clone(), servers.bases[c % servers.bases.len()].clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let meta = json!({"public_identifier": format!("client{c}"), "service": "bench", "owner": "o"}).to_string();
            let (mut accept, mut total, mut polls) = (Vec::new(), Vec::new(), 0usize);
            let mut body = json!({"service": "bench", "owner": "o", "clientSecretName": "k", "url": url, "method": "post",
                                  "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"n": 1}});
            if queue {
                body["queue"] = json!("one");
            }
            let body = body.to_string();
            for k in 0.. {
                // At a set rate a request counts from when it was due, so that a late start (the
                // client still busy with the last one) is in its time, not hidden.
                let start = match rate {
                    Some(rate) => {
                        let due = begun + Duration::from_secs_f64((k * clients + c) as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                if start >= deadline {
                    break;
                }
                let answer: Value = serde_json::from_str(
                    &http.post(format!("{base}/csr")).header("content-meta", &meta).body(body.clone()).send().await.unwrap().text().await.unwrap(),
                )
                .unwrap();
                accept.push(start.elapsed().as_secs_f64() * 1000.0);
                let id = format!("[POST]{}#bench:{}", url.to_lowercase(), answer["id"].as_str().unwrap());
                let poll = json!({"service": "bench", "id": id}).to_string();
                loop {
                    tokio::time::sleep(Duration::from_millis(poll_ms)).await;
                    polls += 1;
                    let answer: Value = serde_json::from_str(
                        &http
                            .post(format!("{base}/csr-poll"))
                            .header("content-meta", &meta)
                            .body(poll.clone())
                            .send()
                            .await
                            .unwrap()
                            .text()
                            .await
                            .unwrap(),
                    )
                    .unwrap_or(Value::Null);
                    if answer.get("echo").is_some() {
                        break;
                    }
                }
                total.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            (accept, total, polls)
        }));
    }
    let started = Instant::now();
    let cpu_before = cpu_ms(&servers);
    let mut run = Run { completed: 0, seconds: 0.0, accept_ms: Vec::new(), total_ms: Vec::new(), polls: 0, rest_kb, load_kb: 0, cpu_ms: 0.0 };
    for t in tasks {
        let (a, t, p) = t.await.unwrap();
        run.completed += t.len();
        run.accept_ms.extend(a);
        run.total_ms.extend(t);
        run.polls += p;
    }
    run.seconds = started.elapsed().as_secs_f64().max(seconds);
    run.cpu_ms = cpu_ms(&servers) - cpu_before;
    run.load_kb = memory_kb(&servers).1;
    run.accept_ms.sort_by(|a, b| a.total_cmp(b));
    run.total_ms.sort_by(|a, b| a.total_cmp(b));
    run
}

/// CPU time the server has used so far, user + system (ms, in clock ticks of 10 ms).
fn cpu_ms(servers: &Servers) -> f64 {
    servers.processes().iter().map(|pid| process_cpu_ms(pid)).sum()
}

/// CPU time of one process so far (/proc/PID/stat), user + system, ms.
fn process_cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces): utime is the
    // 14th field of the line, stime the 15th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<f64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) * 10.0
}

/// Resident memory of the server (kB), now and at its peak (the processes' together).
fn memory_kb(servers: &Servers) -> (u64, u64) {
    servers.processes().iter().map(|pid| process_memory_kb(pid)).fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

/// Resident memory of one process (/proc/PID/status), now and at its peak (kB).
fn process_memory_kb(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(0);
    (field("VmRSS:"), field("VmHWM:"))
}

/// N clients POSTing to `url` as fast as they can (a proxy that adds the secret itself).
async fn direct(url: &str, clients: usize, seconds: f64) -> (f64, Vec<f64>) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, url) = (http.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let start = Instant::now();
                let response = http.post(&url).header("content-type", "application/json").body(r#"{"n":1}"#).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                response.bytes().await.unwrap();
                times.push(start.elapsed().as_secs_f64() * 1000.0);
            }
            times
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(|a, b| a.total_cmp(b));
    (all.len() as f64 / seconds, all)
}

/// `n` requests into one queue from 8 clients; the time until the last one resolved.
async fn queue_overhead(n: usize) {
    let stand_in = listen(Router::new().route("/api", post(|body: Json<Value>| async move { Json(json!({"echo": body.0})) }))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig { allow_private_upstreams: true, ..ServeConfig::new("127.0.0.1:0", dir.path()) };
    let state = AppState::open(config).await.unwrap();
    state.keyring.add(bench_key(), false).await.unwrap();
    let base = listen(skapi_server::api::router(state.clone())).await;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (http, base, url) = (http.clone(), base.clone(), format!("{stand_in}/api"));
        tasks.push(tokio::spawn(async move {
            let body = json!({"service": "bench", "owner": "o", "clientSecretName": "k", "url": url, "method": "post", "queue": "one",
                              "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"n": 1}})
            .to_string();
            for _ in (c..n).step_by(8) {
                http.post(format!("{base}/csr"))
                    .header("content-meta", r#"{"public_identifier":"q","service":"bench"}"#)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted = started.elapsed().as_secs_f64();
    while !state.db.store().pending().await.unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let total = started.elapsed().as_secs_f64();
    println!("{n} requests through one queue: accepted in {accepted:.2} s, all resolved after {total:.2} s → {:.2} ms per request (run one at a time: includes the stand-in's answer and three durable writes)", total * 1000.0 / n as f64);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value =
        |flag: &str, default: f64| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default);
    let seconds = value("--seconds", 10.0);
    let poll_ms = value("--poll-ms", 5.0) as u64;
    let rate = args.iter().any(|a| a == "--rate").then(|| value("--rate", 5000.0));
    let queue = args.iter().any(|a| a == "--queue");
    let floor = args.iter().position(|a| a == "--floor").map(|i| match args.get(i + 1).map(String::as_str) {
        Some("durable") => Floor::Durable,
        _ => Floor::Bare,
    });
    let mut clients: Vec<usize> = args.iter().take_while(|a| !a.starts_with("--")).filter_map(|a| a.parse().ok()).collect();
    if clients.is_empty() {
        clients = vec![1, 16, 64];
    }
    if let Some(n) = args.iter().position(|a| a == "--queue-overhead").map(|_| value("--queue-overhead", 1000.0) as usize) {
        queue_overhead(n).await;
        return;
    }
    if let Some(addr) = args.iter().position(|a| a == "--stand-in-only").and_then(|i| args.get(i + 1)) {
        let listener = skapi_server::listen(addr).await.unwrap();
        println!("stand-in listening on http://{}", listener.local_addr().unwrap());
        axum::serve(listener, stand_in_app()).await.unwrap();
        return;
    }
    let external = args.iter().position(|a| a == "--stand-in").and_then(|i| args.get(i + 1)).cloned();
    let database = args.iter().position(|a| a == "--database").and_then(|i| args.get(i + 1)).cloned();
    let instances =
        args.iter().position(|a| a == "--instances").map(|_| value("--instances", 1.0) as usize).map(|n| (n, database.unwrap_or_default()));
    if let Some(url) = args.iter().position(|a| a == "--direct").and_then(|i| args.get(i + 1)) {
        println!("plain proxy at {url}: POST, the proxy adds the secret; {seconds} s per row");
        println!("{:>8} {:>12} {:>14} {:>14}", "clients", "completed/s", "p50 ms", "p99 ms");
        for c in clients {
            let (rate, times) = direct(url, c, seconds).await;
            println!("{:>8} {:>12.0} {:>14.2} {:>14.2}", c, rate, percentile(&times, 0.5), percentile(&times, 0.99));
        }
        return;
    }
    let backend = match &instances {
        _ if floor == Some(Floor::Bare) => "the floor: a bare in-memory server, no key, store or checks".to_owned(),
        _ if floor == Some(Floor::Durable) => "the durable floor: a bare server that writes each request and its result to SQLite".to_owned(),
        Some((1, database)) if database.is_empty() => "one instance on SQLite, in a process of its own".to_owned(),
        Some((_, database)) if database.is_empty() => {
            eprintln!("several instances need a shared database: --database postgres://…");
            std::process::exit(2);
        }
        Some((n, _)) => format!("{n} instance(s) on PostgreSQL"),
        None => "one in-process instance on SQLite".to_owned(),
    };
    println!(
        "skapi-server ({backend}): csr → stand-in (answers at once) → resolved → polled every {poll_ms} ms{}{}; {seconds} s per row",
        if queue { ", one queue" } else { "" },
        rate.map(|r| format!("; {r:.0} requests/s offered, times from when each was due")).unwrap_or_default()
    );
    println!(
        "{:>8} {:>12} {:>14} {:>14} {:>14} {:>14} {:>10} {:>14} {:>11}",
        "clients", "completed/s", "accept p50 ms", "accept p99 ms", "total p50 ms", "total p99 ms", "polls/req", "RSS rest/peak", "CPU ms/req"
    );
    for c in clients {
        let r = run(c, Load { seconds, poll_ms, queue, rate }, external.as_deref(), instances.clone(), floor).await;
        println!(
            "{:>8} {:>12.0} {:>14.2} {:>14.2} {:>14.2} {:>14.2} {:>10.2} {:>8}/{} MB {:>11.3}",
            c,
            r.completed as f64 / r.seconds,
            percentile(&r.accept_ms, 0.5),
            percentile(&r.accept_ms, 0.99),
            percentile(&r.total_ms, 0.5),
            percentile(&r.total_ms, 0.99),
            r.polls as f64 / r.completed.max(1) as f64,
            r.rest_kb / 1024,
            r.load_kb / 1024,
            r.cpu_ms / r.completed.max(1) as f64
        );
    }
    println!("RSS: this process (server and bench clients), or with --instances the server processes': once up, and the peak so far");
    println!("CPU ms/req: CPU time (user + system) per completed request: this process's (server and clients), or with --instances the server processes' alone");
}
