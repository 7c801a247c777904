//! Reliability under load and faults (bounded in count and time, loopback only):
//! - 10,000 requests over 100 queues from 8 clients: every request ends, each queue keeps its
//!   order, nothing is sent twice, and the database and the stand-in API agree;
//! - the same under faults: the API refusing, resetting, hanging and answering 5xx at random,
//!   and the server killed with SIGKILL and restarted twice.

use crate::support::*;
use serde_json::json;
use skapi_core::wire::Status;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

async fn ten_thousand_requests_over_a_hundred_queues(engine: Engine) {
    let (api, stand_in) = faulty_api(0).await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/load");
    let started = Instant::now();
    let (_per_queue, ids) = send_load(&server.api, &url, 0, 10_000, 100, 8).await;
    assert_eq!(ids.len(), 10_000);
    // Wait for the engine to drain (bounded).
    let store = server.state.db.clone();
    let shorts: Vec<String> = ids.iter().map(|f| skapi_core::id::split_full(f).unwrap().1.to_owned()).collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if stand_in.arrivals.lock().unwrap().len() >= 10_000 && store.store().pending().await.unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the load did not finish in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let arrivals = stand_in.arrivals.lock().unwrap().clone();
    let tags: Vec<&String> = arrivals.iter().map(|(t, _)| t).collect();
    let unique: HashSet<&&String> = tags.iter().collect();
    assert_eq!((tags.len(), unique.len()), (10_000, 10_000), "each request sent exactly once");

    // Per queue, the API saw the acceptance order; the database agrees with the API.
    let mut by_queue: HashMap<String, Vec<String>> = HashMap::new();
    for tag in &tags {
        by_queue.entry(tag.split('-').next().unwrap().to_owned()).or_default().push((*tag).clone());
    }
    let mut resolved = 0;
    let mut accepted_by_queue: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for short in &shorts {
        let record = store.store().get_record(short).await.unwrap().expect("every record kept");
        assert_eq!(record.status, Status::Resolved, "{short}");
        resolved += 1;
        let tag = record.new.request_body.as_ref().unwrap()["tag"].as_str().unwrap().to_owned();
        accepted_by_queue.entry(record.new.queue.clone().unwrap()).or_default().push((record.seq, tag));
    }
    assert_eq!(resolved, 10_000);
    for (queue, mut accepted) in accepted_by_queue {
        accepted.sort();
        let accepted: Vec<String> = accepted.into_iter().map(|(_, t)| t).collect();
        assert_eq!(by_queue[&queue], accepted, "queue {queue} kept its order");
    }
    eprintln!("10,000 requests over 100 queues: {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_and_two_sigkills_lose_nothing_and_send_nothing_twice_on_sqlite() {
    let (api, stand_in) = faulty_api(20).await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let url = format!("{api}/faults");
    // A short upstream timeout, so hanging calls end (as TIMEOUT) within the test's bounds.
    let serve = |dir: &std::path::Path| spawn_server(dir, std::process::Stdio::null(), &[("SKAPI_UPSTREAM_TIMEOUT_MS", "500")]);

    let mut all_ids = Vec::new();
    for round in 0..3 {
        let (mut server, client) = serve(dir.path());
        let (_, ids) = send_load(&client, &url, round, 400, 10, 8).await;
        all_ids.extend(ids);
        if round < 2 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            server.kill().unwrap(); // SIGKILL, mid-load
            server.wait().unwrap();
        } else {
            // Let the last server drain, then check through it.
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut finished = 0;
            while finished < all_ids.len() {
                assert!(Instant::now() < deadline, "not every request ended in time ({finished}/{})", all_ids.len());
                finished = 0;
                for id in &all_ids {
                    let (status, answer) = client.call("csr-poll", "load", json!({"service": SERVICE, "id": id})).await;
                    let unfinished = status == 200 && matches!(answer["status"].as_str(), Some("pending" | "running")) && answer["id"].is_string();
                    if !unfinished {
                        finished += 1;
                    }
                }
                if finished < all_ids.len() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            }
            // Every request ended in a defined state.
            let mut codes: HashMap<String, usize> = HashMap::new();
            for id in &all_ids {
                let (status, answer) = client.call("csr-poll", "load", json!({"service": SERVICE, "id": id})).await;
                let code = if status == 200 { "RESOLVED".to_owned() } else { answer["code"].as_str().unwrap_or("?").to_owned() };
                assert!(
                    ["RESOLVED", "NETWORK_ERROR", "TIMEOUT", "THIRD_PARTY_ERROR", "INTERRUPTED"].contains(&code.as_str()),
                    "{id}: {status} {answer}"
                );
                *codes.entry(code).or_default() += 1;
            }
            eprintln!("1,200 requests under faults and two SIGKILLs: {codes:?}");
            assert!(codes.get("RESOLVED").copied().unwrap_or(0) > 600, "{codes:?}");
            server.kill().unwrap();
            server.wait().unwrap();
        }
    }
    let arrivals = stand_in.arrivals.lock().unwrap().clone();
    let mut seen = HashSet::new();
    for (tag, _) in &arrivals {
        assert!(seen.insert(tag.clone()), "{tag} was sent twice");
    }
    // Per queue, whatever was sent went in acceptance order (the database's), interrupted ones
    // simply absent.
    let store = skapi_server::store::sqlite::SqliteStore::open(&dir.path().join(skapi_server::store::sqlite::DB_FILE)).unwrap();
    let mut per_queue: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    for id in &all_ids {
        use skapi_server::store::RecordStore;
        let record = store.get_record(skapi_core::id::split_full(id).unwrap().1).await.unwrap().expect("every accepted request kept");
        let tag = record.new.request_body.as_ref().unwrap()["tag"].as_str().unwrap().to_owned();
        per_queue.entry(record.new.queue.clone().unwrap()).or_default().push((record.seq, tag));
    }
    for (queue, mut accepted) in per_queue {
        accepted.sort();
        let accepted: Vec<String> = accepted.into_iter().map(|(_, t)| t).collect();
        let sent: Vec<&String> = arrivals.iter().map(|(t, _)| t).filter(|t| t.split('-').next() == Some(queue.as_str())).collect();
        let order: Vec<&String> = accepted.iter().filter(|t| sent.contains(t)).collect();
        assert_eq!(sent.len(), order.len(), "queue {queue}: the API saw only accepted requests");
        assert_eq!(sent, order, "queue {queue}");
    }
}

/// A small tmpfs for the data directory (root only; `SKAPI_SKIP_DISK_FULL=1` skips the test
/// where mounting is not allowed, saying so).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap().keep();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then_some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_new_work_clearly_and_keeps_what_was_accepted_on_sqlite() {
    let Some(disk) = Tmpfs::mount("1m") else {
        if std::env::var("SKAPI_SKIP_DISK_FULL").as_deref() == Ok("1") {
            eprintln!("SKIPPED: a tmpfs could not be mounted here (SKAPI_SKIP_DISK_FULL=1)");
            return;
        }
        panic!("mounting a tmpfs failed: run as root, or set SKAPI_SKIP_DISK_FULL=1 to skip this test");
    };
    let (api, _stand_in) = faulty_api(0).await;
    cli_add_key(&disk.0, "openai");
    let (mut server, client) = spawn_server(&disk.0, std::process::Stdio::null(), &[]);
    let url = format!("{api}/full");
    let filler = "x".repeat(16 * 1024);
    let mut accepted = Vec::new();
    let mut refusal = None;
    for i in 0..500 {
        let mut body = tagged(&url, &format!("full-{i}"));
        body["data"]["filler"] = json!(filler);
        body["service"] = json!(SERVICE);
        let (status, answer) = client.call("csr", "disk", body).await;
        if status == 200 {
            accepted.push(format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), answer["id"].as_str().unwrap()));
        } else {
            refusal = Some((status, answer));
            break;
        }
    }
    let (status, answer) = refusal.expect("the disk never filled up");
    assert_eq!((status, answer["code"].as_str()), (507, Some("STORAGE_FULL")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("storage is full"));
    assert!(accepted.len() >= 5, "some requests fitted first ({})", accepted.len());
    // Nothing accepted is lost: each one still answers, with its own state.
    for id in &accepted {
        let (status, answer) = client.call("csr-poll", "disk", json!({"service": SERVICE, "id": id})).await;
        assert_ne!(answer["code"].as_str(), Some("NOT_EXISTS"), "{id} was lost: {status} {answer}");
    }
    // And the server is still up, refusing clearly.
    let (status, _) = client.call("csr", "disk", tagged(&url, "after")).await;
    assert!(status == 507 || status == 200, "{status}");
    server.kill().unwrap();
    server.wait().unwrap();
}

engine_tests! {
  both: [],
  sqlite: [
    ten_thousand_requests_over_a_hundred_queues: 4,
  ],
}
