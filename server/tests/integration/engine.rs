//! The request engine: queue order, parallelism, expiry, cancel, third-party faults, history
//! filters and paging.

use crate::support::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn wait_until(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached in 10 s");
}

async fn one_queue_runs_in_acceptance_order_from_concurrent_clients(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/slow?ms=1&q=one");
    let mut clients = Vec::new();
    for c in 0..8 {
        let (api, url) = (server.api.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..25 {
                let mut body = tagged(&url, &format!("c{c}-{i}"));
                body["queue"] = json!("ordered");
                ids.push(api.submit("caller-a", body).await);
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for c in clients {
        ids.extend(c.await.unwrap());
    }
    assert_eq!(ids.len(), 200);
    for id in &ids {
        let (status, _) = server.poll_until_done("caller-a", id).await;
        assert_eq!(status, 200);
    }
    // Acceptance order: the server's history, oldest first.
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": prefix, "ascending": true, "limit": 1000})).await;
    let accepted: Vec<String> = page["list"].as_array().unwrap().iter().map(|i| i["reqbdy"]["tag"].as_str().unwrap().to_owned()).collect();
    assert_eq!(accepted.len(), 200);
    assert_eq!(stand_in.tags(), accepted, "the stand-in saw the queue in acceptance order");
    assert_eq!(stand_in.inflight.lock().unwrap().max_per_queue, 1);
}

async fn twenty_queues_interleave_and_unqueued_requests_run_in_parallel(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let mut ids = Vec::new();
    for q in 0..20 {
        for i in 0..3 {
            let mut body = tagged(&format!("{api}/slow?ms=60&q=q{q}"), &format!("q{q}-{i}"));
            body["queue"] = json!(format!("q{q}"));
            ids.push(server.submit("caller-a", body).await);
        }
    }
    for id in &ids {
        server.poll_until_done("caller-a", id).await;
    }
    {
        let inflight = stand_in.inflight.lock().unwrap();
        assert_eq!(inflight.max_per_queue, 1, "each queue one at a time");
        assert!(inflight.max > 1, "queues run beside each other (max in flight {})", inflight.max);
    }
    for q in 0..20 {
        let tags: Vec<String> = stand_in.tags().into_iter().filter(|t| t.starts_with(&format!("q{q}-"))).collect();
        assert_eq!(tags, vec![format!("q{q}-0"), format!("q{q}-1"), format!("q{q}-2")]);
    }

    // Without a queue: parallel, but never more than --concurrency at once.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let limited = start_server_with(dir.clone(), skapi_server::ServeConfig { concurrency: 3, ..config(engine, dir.path()) }).await;
    limited.add_key("openai", &[]);
    let (api2, stand_in2) = start_stand_in().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(limited.submit("caller-a", tagged(&format!("{api2}/slow?ms=80"), &format!("u{i}"))).await);
    }
    for id in &ids {
        let (status, _) = limited.poll_until_done("caller-a", id).await;
        assert_eq!(status, 200, "excess waits as pending and is never dropped");
    }
    let max = stand_in2.inflight.lock().unwrap().max;
    assert!((2..=3).contains(&max), "max in flight {max}");
}

async fn expiry_abandons_work_answers_expired_and_purges(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(
        dir.clone(),
        skapi_server::ServeConfig {
            expired_grace: Duration::from_millis(1500),
            purge_interval: Duration::from_millis(50),
            ..config(engine, dir.path())
        },
    )
    .await;
    server.add_key("openai", &[]);
    // Runs longer than it may live: abandoned at expiry (wire `expires` is in seconds).
    let mut head = tagged(&format!("{api}/slow?ms=3000&q=x"), "head");
    head["queue"] = json!("x");
    head["expires"] = json!(2);
    let head = server.submit("caller-a", head).await;
    // Waits behind it and expires before its turn (the head runs 2 s): never sent.
    let mut behind = tagged(&format!("{api}/slow?ms=3000&q=x"), "behind");
    behind["queue"] = json!("x");
    behind["expires"] = json!(1);
    let behind = server.submit("caller-a", behind).await;

    tokio::time::sleep(Duration::from_millis(2100)).await;
    for id in [&head, &behind] {
        let (status, answer) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": id})).await;
        assert_eq!((status, answer["code"].as_str()), (410, Some("EXPIRED")), "{answer}");
    }
    wait_until(|| {
        let short = head.rsplit_once('#').unwrap().1.split_once(':').unwrap().1;
        let record = blocking(|| tokio::runtime::Handle::current().block_on(server.state.db.store().get_record(short)));
        record.unwrap().is_none()
    })
    .await;
    let (status, answer) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": behind})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_EXISTS")), "purged after the grace period");
    assert_eq!(stand_in.tags(), vec!["head"], "the expired waiting request was never sent");
}

async fn cancel_in_each_state(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let mut running = tagged(&format!("{api}/slow?ms=5000&q=c"), "running");
    running["queue"] = json!("c");
    let running = server.submit("caller-a", running).await;
    let mut waiting = tagged(&format!("{api}/slow?ms=5000&q=c"), "waiting");
    waiting["queue"] = json!("c");
    let waiting = server.submit("caller-a", waiting).await;
    wait_until(|| stand_in.tags() == vec!["running"]).await;

    let (_, count) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "queue": "c:"})).await;
    assert_eq!(count, json!({"queue_name": "c", "in_queue": 1}));
    let (_, envelope) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": waiting})).await;
    assert_eq!((envelope["status"].as_str(), envelope["in_queue"].as_u64()), (Some("pending"), Some(2)), "behind the running head");
    let (_, envelope) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": running})).await;
    assert_eq!((envelope["status"].as_str(), envelope["in_queue"].as_u64()), (Some("running"), Some(1)), "the running head reads 1");

    let (status, answer) = server.call("csr-cancel", "caller-b", json!({"service": SERVICE, "id": waiting})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_EXISTS")), "no caller cancels another's request");

    let (status, answer) = server.call("csr-cancel", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": waiting})).await;
    assert_eq!((status, answer["removed"].as_bool()), (200, Some(true)), "{answer}");
    let (status, answer) = server.call("csr-cancel", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": running})).await;
    assert_eq!((status, answer["removed"].as_bool()), (200, Some(true)), "{answer}");
    for id in [&waiting, &running] {
        let (status, answer) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": id})).await;
        assert_eq!((status, answer["code"].as_str()), (409, Some("CANCELED")), "{answer}");
    }
    let (_, answer) = server.call("csr-cancel", "caller-a", json!({"service": SERVICE, "id": running})).await;
    assert_eq!(answer["removed"], false, "a finished request is not removed again");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stand_in.tags(), vec!["running"], "the cancelled pending request was never sent");
    assert_eq!(stand_in.inflight.lock().unwrap().now, 0, "the running call was aborted");
}

async fn respond_raw(mut stream: tokio::net::TcpStream, response: Vec<u8>, then_close: bool) {
    let mut buf = vec![0u8; 65536];
    let _ = stream.read(&mut buf).await;
    let _ = stream.write_all(&response).await;
    if !then_close {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
}

async fn third_party_faults_end_in_a_defined_state(engine: Engine) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(
        dir.clone(),
        skapi_server::ServeConfig { upstream_timeout: Duration::from_millis(400), max_response_bytes: 1000, ..config(engine, dir.path()) },
    )
    .await;
    server.add_key("openai", &[]);

    let reset = raw_server(|s| respond_raw(s, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789".to_vec(), true)).await;
    let silent = raw_server(|s| respond_raw(s, Vec::new(), false)).await;
    let mut not_utf8 = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nab".to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe, b'c', b'd']);
    let not_utf8 = raw_server(move |s| respond_raw(s, not_utf8.clone(), true)).await;
    let long_body = format!("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}", "x".repeat(5000)).into_bytes();
    let long = raw_server(move |s| respond_raw(s, long_body.clone(), true)).await;
    let bad_gateway = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy".to_vec();
    let unavailable = raw_server(move |s| respond_raw(s, bad_gateway.clone(), true)).await;

    let cases: Vec<(&str, String, u16, Option<&str>)> = vec![
        ("reset mid-body", reset, 502, Some("NETWORK_ERROR")),
        ("no answer", silent, 504, Some("TIMEOUT")),
        ("refused", "http://127.0.0.1:9".to_owned(), 502, Some("NETWORK_ERROR")),
        ("5xx", unavailable, 502, Some("THIRD_PARTY_ERROR")),
        ("not UTF-8", not_utf8, 200, None),
        ("too long", long, 200, None),
    ];
    for (what, base, status, code) in cases {
        let id = server.submit("caller-a", tagged(&format!("{base}/x"), what)).await;
        let (got, answer) = server.poll_until_done("caller-a", &id).await;
        assert_eq!((got, answer["code"].as_str()), (status, code), "{what}: {answer}");
        match what {
            // Kept exactly, as bytes (no content type was given).
            "not UTF-8" => assert_eq!(answer, json!({"body_b64": "YWL//mNk", "body_content_type": "application/octet-stream"})),
            "too long" => {
                assert_eq!(answer, json!("x".repeat(1000)));
                let prefix = format!("[POST]{}/x#{SERVICE}:", base.to_lowercase());
                let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": prefix})).await;
                let rslv = &page["list"][0]["rslv"];
                assert!(rslv.get("body").is_none() && rslv["truncated"].as_str().unwrap().len() == 1000, "{rslv}");
            }
            "5xx" => assert_eq!((answer["status_code"].as_u64(), answer["body"].as_str()), (Some(503), Some("busy"))),
            _ => {}
        }
    }
}

async fn history_filters_and_pages(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/slow?ms=1");
    let mut ids = Vec::new();
    for (i, queue) in [Some("img-a"), Some("img-b"), None, Some("img-a"), Some("other")].iter().enumerate() {
        let mut body = tagged(&url, &format!("t{i}"));
        if let Some(q) = queue {
            body["queue"] = json!(q);
        }
        ids.push(server.submit("caller-a", body).await);
    }
    let failing = server.submit("caller-a", tagged(&format!("{api}/status/500"), "fails")).await;
    for id in ids.iter().chain([&failing]) {
        server.poll_until_done("caller-a", id).await;
    }
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let tags =
        |page: &Value| -> Vec<String> { page["list"].as_array().unwrap().iter().map(|i| i["reqbdy"]["tag"].as_str().unwrap().to_owned()).collect() };
    let list = |extra: Value| {
        let mut body = json!({"service": SERVICE, "owner": OWNER});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let api = server.api.clone();
        async move { api.call("csr-poll", "caller-a", body).await.1 }
    };
    assert_eq!(tags(&list(json!({"id": prefix})).await), vec!["t4", "t3", "t2", "t1", "t0"], "newest first");
    assert_eq!(tags(&list(json!({"id_prefix": prefix, "queue": "img"})).await), vec!["t3", "t1", "t0"], "queue is a prefix");
    assert_eq!(tags(&list(json!({"id_prefix": prefix, "queue_exact": "img-a"})).await), vec!["t3", "t0"]);
    // Skapi's current SDK: `queue_exact: true` matches `queue` exactly.
    assert_eq!(tags(&list(json!({"id_prefix": prefix, "queue": "img-a", "queue_exact": true})).await), vec!["t3", "t0"]);
    assert_eq!(tags(&list(json!({"id_prefix": prefix, "queue": "img", "queue_exact": true})).await), Vec::<String>::new());
    assert_eq!(tags(&list(json!({"id": prefix, "queue_exclude": "img-a"})).await), vec!["t4", "t2", "t1"]);
    assert_eq!(tags(&list(json!({"id": prefix, "ascending": true})).await), vec!["t0", "t1", "t2", "t3", "t4"]);
    let failed_prefix = format!("[POST]{api}/status/500#{SERVICE}:");
    assert_eq!(tags(&list(json!({"id": failed_prefix, "status": "failed"})).await), vec!["fails"]);
    assert_eq!(tags(&list(json!({"id": prefix, "status": "failed"})).await), Vec::<String>::new());

    let first = list(json!({"id": prefix, "limit": 2})).await;
    assert_eq!((tags(&first), first["endOfList"].as_bool()), (vec!["t4".to_owned(), "t3".to_owned()], Some(false)));
    let second = list(json!({"id": prefix, "limit": 2, "startKey": first["startKey"]})).await;
    assert_eq!(tags(&second), vec!["t2", "t1"]);
    let third = list(json!({"id": prefix, "limit": 2, "startKey": second["startKey"]})).await;
    assert_eq!((tags(&third), third["endOfList"].as_bool(), third["startKey"].is_null()), (vec!["t0".to_owned()], Some(true), true));
}

/// When a request began executing: a running poll carries `executed` (ms), history items `att`
/// (seconds, as Skapi's backend stamps it); a `compact` listing carries the heads of the bodies
/// instead of the bodies.
async fn execution_time_and_compact_listings(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/slow?ms=600&q=x");
    let before = skapi_server::clock::now_ms();
    let id = server.submit("caller-a", tagged(&url, "timed")).await;
    let mut running = Value::Null;
    for _ in 0..100 {
        let (_, envelope) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": id})).await;
        if envelope["status"] == "running" {
            running = envelope;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let executed = running["executed"].as_f64().unwrap_or_else(|| panic!("a running poll says when it began: {running}"));
    assert!(executed >= before as f64 && executed <= skapi_server::clock::now_ms() as f64, "{executed}");
    assert_eq!(server.poll_until_done("caller-a", &id).await.0, 200);

    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": prefix})).await;
    let item = &page["list"][0];
    assert_eq!(item["att"].as_f64(), Some(executed / 1000.0), "seconds: {item}");
    assert!(item["reqbdy"].is_object() && item["rslv"].is_object() && item.get("cmpct").is_none(), "{item}");

    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": prefix, "compact": true})).await;
    let item = &page["list"][0];
    assert!(item.get("reqbdy").is_none() && item.get("rslv").is_none(), "the bodies stay on the server: {item}");
    assert_eq!((item["cmpct"].as_bool(), item["rslvmk"].as_bool()), (Some(true), Some(true)), "{item}");
    let reqtxt = item["reqtxt"].as_str().unwrap();
    assert!(reqtxt.starts_with(&format!("POST {url}")) && reqtxt.contains("timed"), "{reqtxt}");
    assert!(item["rslvtxt"].as_str().unwrap().contains("timed"), "{item}");
    assert_eq!(item["att"].as_f64(), Some(executed / 1000.0));
}

/// The fence before sending: a request claimed here and then held up — its key read waits on a
/// lock — while another instance ended it (as one ends a request whose lease it took for run
/// out) is not sent when the holdup ends; the queue goes on. PostgreSQL only: another instance
/// and a table lock are its.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_another_instance_ended_while_this_one_was_held_up_is_not_sent_on_postgres() {
    let (api, stand_in) = start_stand_in().await;
    let mut database = None;
    let server = server_with(Engine::Postgres, |c| {
        c.lease = Duration::from_millis(600);
        database = c.database.clone();
    })
    .await;
    let database = database.unwrap();
    server.add_key("openai", &[]);
    let url = format!("{api}/slow?ms=1500");
    let queued = |tag: &str| {
        let mut body = tagged(&url, tag);
        body["queue"] = json!("fenced");
        body
    };
    let mut ids = Vec::new();
    for tag in ["first", "held", "after"] {
        ids.push(server.submit("caller-a", queued(tag)).await);
    }
    let held = ids[1].split_once(&format!("#{SERVICE}:")).unwrap().1.to_owned();
    let ended_elsewhere = tokio::task::spawn_blocking(move || {
        let status = |client: &mut ::postgres::Client| -> String { client.query_one("SELECT status FROM records WHERE id = $1", &[&held]).unwrap().get(0) };
        let mut holder = ::postgres::Client::connect(&database, ::postgres::NoTls).unwrap();
        let mut other = ::postgres::Client::connect(&database, ::postgres::NoTls).unwrap();
        let mut lock = holder.transaction().unwrap();
        lock.batch_execute("LOCK TABLE keys IN ACCESS EXCLUSIVE MODE").unwrap();
        assert_eq!(status(&mut other), "pending", "locked while the first request still runs");
        // Claimed once the first is done; its key read now waits for the lock.
        for _ in 0..500 {
            if status(&mut other) == "running" {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let ended = other
            .execute("UPDATE records SET status = 'failed', error_code = 'INTERRUPTED', error_message = 'ended elsewhere' WHERE id = $1 AND status = 'running'", &[&held])
            .unwrap();
        // Past half the lease since the claim: the fence asks the store.
        std::thread::sleep(Duration::from_millis(500));
        lock.rollback().unwrap();
        ended
    })
    .await
    .unwrap();
    assert_eq!(ended_elsewhere, 1, "the held request was claimed, and ended by 'another instance'");
    let (status, answer) = server.poll_until_done("caller-a", &ids[2]).await;
    assert_eq!(status, 200, "the queue went on: {answer}");
    let (_, answer) = server.poll_until_done("caller-a", &ids[1]).await;
    assert_eq!((answer["code"].as_str(), answer["message"].as_str()), (Some("INTERRUPTED"), Some("ended elsewhere")), "{answer}");
    assert_eq!(stand_in.tags(), ["first", "after"], "the request ended elsewhere was not sent");
}

engine_tests! {
  both: [
    execution_time_and_compact_listings,
    one_queue_runs_in_acceptance_order_from_concurrent_clients: 4,
    twenty_queues_interleave_and_unqueued_requests_run_in_parallel: 4,
    expiry_abandons_work_answers_expired_and_purges,
    cancel_in_each_state,
    third_party_faults_end_in_a_defined_state,
    history_filters_and_pages,
  ],
}
