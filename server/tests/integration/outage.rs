//! The database going away under a running server (PostgreSQL stopped, fast and immediate;
//! SQLite's file locked by another process): calls answer 503 `STORAGE_UNAVAILABLE` with
//! `Retry-After` at once (no hang), readiness and the service check say so, and once the
//! database is back the server accepts again on its own; what was accepted is kept, and a
//! request that ran through the outage is recorded as it ended. The PostgreSQL stopped and started
//! is the test's own (`PrivatePostgres`): the other tests' database stays up.

use crate::support::*;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A server process on a PostgreSQL of this test's own (60 s leases), with the `openai` key, and
/// a stand-in API.
struct OnPostgres {
    postgres: PrivatePostgres,
    api: String,
    stand_in: StandIn,
    _dir: tempfile::TempDir,
    server: std::process::Child,
    client: Api,
}

impl OnPostgres {
    async fn start() -> OnPostgres {
        let postgres = tokio::task::spawn_blocking(PrivatePostgres::start).await.unwrap();
        let url = postgres.url();
        let database = tokio::task::spawn_blocking(move || fresh_database_on(&url)).await.unwrap();
        let (api, stand_in) = start_stand_in().await;
        let dir = tempfile::tempdir().unwrap();
        let envs = [("SKAPI_DATABASE", database.as_str()), ("SKAPI_LEASE_MS", "60000")];
        cli_add_key_with(dir.path(), "openai", &envs);
        let (server, client) = spawn_server(dir.path(), Stdio::null(), &envs);
        OnPostgres { postgres, api, stand_in, _dir: dir, server, client }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_going_away_answers_503_and_the_server_comes_back_by_itself() {
    let OnPostgres { postgres, api, stand_in, _dir, mut server, client } = OnPostgres::start().await;
    let quick = client.submit("a", tagged(&format!("{api}/echo"), "before")).await;
    assert_eq!(client.poll_until_done("a", &quick).await.0, 200);
    // Finished and never polled: the server still holds it in memory for its first poll.
    let unpolled = client.submit("a", tagged(&format!("{api}/echo"), "unpolled")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    for mode in ["fast", "immediate"] {
        // A request that is still running when the database goes away.
        let through = client.submit("a", tagged(&format!("{api}/slow?ms=2500&q={mode}"), &format!("through-{mode}"))).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        postgres.stop(mode);

        refused_at_once(&client, &api, mode).await;
        for id in [&quick, &unpolled] {
            let (status, polled) = client.call("csr-poll", "a", json!({"service": SERVICE, "id": id})).await;
            assert_eq!((status, polled["code"].as_str()), (503, Some("STORAGE_UNAVAILABLE")), "{mode}: polls too: {polled}");
        }
        assert_eq!(client.http.get(format!("{}/readyz", client.base)).send().await.unwrap().status(), 503, "{mode}: not ready");
        let check: serde_json::Value = client.http.get(format!("{}/service?service={SERVICE}", client.base)).send().await.unwrap().json_value().await;
        assert_eq!(check["active"], false, "{mode}: the service check claims no health it does not have");

        tokio::time::sleep(Duration::from_millis(2500)).await; // the running call ends while the database is away
        postgres.start_again();
        let id = accepted_within_10_s(&client, &api, &format!("after-{mode}")).await;
        assert_eq!(client.poll_until_done("a", &id).await.0, 200, "{mode}: new work runs");
        let (status, answer) = client.poll_until_done("a", &through).await;
        assert_eq!(status, 200, "{mode}: the request that ran through the outage is recorded as it ended: {answer}");
        assert_eq!(client.poll_until_done("a", &quick).await.0, 200, "{mode}: what was accepted before is kept");
        assert_eq!(client.poll_until_done("a", &unpolled).await.0, 200, "{mode}: and what ended before");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let tags = stand_in.tags();
    for tag in ["before", "unpolled", "through-fast", "after-fast", "through-immediate", "after-immediate"] {
        assert_eq!(tags.iter().filter(|t| *t == tag).count(), 1, "{tag} reached the third party exactly once: {tags:?}");
    }
}

/// Load through database restarts: one client per queue keeps sending while PostgreSQL is
/// stopped (fast, then immediate) and started again. Every request `csr` accepted reaches the
/// third party exactly once, in its queue's order, and ends resolved; a refused one may still
/// have been written (a commit whose answer the lost connection swallowed) and then runs once,
/// in order, too; none is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_load_nothing_accepted_is_lost_or_sent_twice_across_postgres_restarts() {
    let OnPostgres { postgres, api, stand_in, _dir, mut server, client } = OnPostgres::start().await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|c| {
            let (client, url, stop) = (client.clone(), format!("{api}/echo"), stop.clone());
            tokio::spawn(async move {
                let queue = format!("q{c}");
                // (tag, full id when accepted), in sending order: the queue's order.
                let mut sent: Vec<(String, Option<String>)> = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let tag = format!("{queue}-{}", sent.len());
                    let mut body = tagged(&url, &tag);
                    body["queue"] = json!(queue);
                    body["service"] = json!(SERVICE);
                    body["owner"] = json!(OWNER);
                    let (status, answer) = client.call("csr", "load", body).await;
                    match status {
                        200 => {
                            let id = format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), answer["id"].as_str().unwrap());
                            sent.push((tag, Some(id)));
                        }
                        503 => {
                            assert_eq!(answer["code"], "STORAGE_UNAVAILABLE", "{answer}");
                            sent.push((tag, None));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        other => panic!("csr answered {other}: {answer}"),
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                sent
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for mode in ["fast", "immediate"] {
        postgres.stop(mode);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        postgres.start_again();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = Vec::new();
    for sender in senders {
        sent.push(sender.await.unwrap());
    }

    let (mut accepted, mut refused) = (0, 0);
    for queue in &sent {
        for (tag, id) in queue {
            match id {
                Some(id) => {
                    accepted += 1;
                    let (status, answer) = client.poll_until_done("load", id).await;
                    assert_eq!(status, 200, "{tag} accepted, then: {answer}");
                }
                None => refused += 1,
            }
        }
    }
    assert!(refused > 0, "the load ran into the outages ({accepted} accepted)");
    tokio::time::sleep(Duration::from_millis(500)).await; // refused-but-written ones, if any, run too
    server.kill().unwrap();
    server.wait().unwrap();
    let arrivals = stand_in.tags();
    for queue in &sent {
        let order: std::collections::HashMap<&str, usize> = queue.iter().enumerate().map(|(i, (tag, _))| (tag.as_str(), i)).collect();
        let arrived: Vec<usize> = arrivals.iter().filter_map(|tag| order.get(tag.as_str()).copied()).collect();
        assert!(arrived.windows(2).all(|w| w[0] < w[1]), "a queue ran out of order or sent a request twice: {arrived:?}");
        for (tag, id) in queue {
            if id.is_some() {
                assert!(arrivals.contains(tag), "{tag} was accepted but never sent");
            }
        }
    }
}

/// A `csr` while the database is away: 503 `STORAGE_UNAVAILABLE` with `Retry-After`, at once.
async fn refused_at_once(client: &Api, api: &str, case: &str) {
    let started = Instant::now();
    let response = client
        .http
        .post(format!("{}/csr", client.base))
        .header("content-meta", json!({"public_identifier": "a", "service": SERVICE, "owner": OWNER}).to_string())
        .body(
            json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/echo"), "method": "post",
                     "headers": {"Authorization": "Bearer $CLIENT_SECRET"}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "{case}");
    assert!(response.headers().get("retry-after").is_some(), "{case}: Retry-After");
    let answer: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["code"], "STORAGE_UNAVAILABLE", "{case}: {answer}");
    assert!(started.elapsed() < Duration::from_secs(3), "{case}: answered at once, not after a hang");
}

/// Sends a request tagged `tag` until it is accepted (within 10 s of the database coming
/// back); returns its full id.
async fn accepted_within_10_s(client: &Api, api: &str, tag: &str) -> String {
    let back = Instant::now();
    loop {
        let body = tagged(&format!("{api}/echo"), tag);
        let (status, accepted) = client
            .call(
                "csr",
                "a",
                json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai",
            "url": body["url"], "method": "post", "headers": body["headers"], "data": body["data"]}),
            )
            .await;
        if status == 200 {
            return format!("[POST]{}#{SERVICE}:{}", format!("{api}/echo").to_lowercase(), accepted["id"].as_str().unwrap());
        }
        assert!(back.elapsed() < Duration::from_secs(10), "{tag}: still refused 10 s after the database came back: {accepted}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_sqlite_file_answers_503_and_the_server_comes_back_by_itself() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let (mut server, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    let through = client.submit("a", tagged(&format!("{api}/slow?ms=1500&q=locked"), "through")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Another process takes SQLite's write lock and keeps it.
    let other = rusqlite::Connection::open(dir.path().join(skapi_server::store::sqlite::DB_FILE)).unwrap();
    other.busy_timeout(Duration::from_secs(5)).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    refused_at_once(&client, &api, "locked").await;
    // Reads go on beside the lock (WAL): the running request can still be polled.
    let (status, polled) = client.call("csr-poll", "a", json!({"service": SERVICE, "id": through})).await;
    assert_eq!((status, polled["status"].as_str()), (200, Some("running")), "{polled}");
    tokio::time::sleep(Duration::from_millis(1800)).await; // the running call ends while the file is locked
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);

    let id = accepted_within_10_s(&client, &api, "after").await;
    assert_eq!(client.poll_until_done("a", &id).await.0, 200, "new work runs");
    let (status, answer) = client.poll_until_done("a", &through).await;
    assert_eq!(status, 200, "the request that ran while the file was locked is recorded as it ended: {answer}");
    server.kill().unwrap();
    server.wait().unwrap();
    let tags = stand_in.tags();
    for tag in ["through", "after"] {
        assert_eq!(tags.iter().filter(|t| *t == tag).count(), 1, "{tag} reached the third party exactly once: {tags:?}");
    }
}

trait JsonValue {
    async fn json_value(self) -> serde_json::Value;
}

impl JsonValue for reqwest::Response {
    async fn json_value(self) -> serde_json::Value {
        serde_json::from_str(&self.text().await.unwrap()).unwrap_or(serde_json::Value::Null)
    }
}
