//! Three skapi-server instances on one PostgreSQL behave as one: any instance answers any
//! poll, a queue runs one at a time in acceptance order whichever instance accepted each
//! request, and an instance killed mid-queue leaves its running request INTERRUPTED (once its
//! lease runs out) while another instance takes the rest of the queue, in order.
//! Needs `SKAPI_TEST_POSTGRES` (the test command starts a PostgreSQL on loopback); without it
//! they fail.

use crate::support::*;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// These tests each run several server processes: one at a time, so timing holds on 2 cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_queues_polls_and_a_dead_instances_work_on_postgres() {
    let _serial = SERIAL.lock().await;
    let database = tokio::task::spawn_blocking(fresh_postgres_database).await.unwrap();
    let (api, stand_in) = start_stand_in().await;
    // One data directory: every instance needs the same master key.
    let dir = tempfile::tempdir().unwrap();
    let envs = [("SKAPI_DATABASE", database.as_str()), ("SKAPI_LEASE_MS", "1000"), ("SKAPI_ADMIN_TOKEN", "admin-for-tests")];
    cli_add_key_with(dir.path(), "openai", &envs);
    let mut instances: Vec<(std::process::Child, Api)> = (0..3).map(|_| spawn_server(dir.path(), Stdio::null(), &envs)).collect();

    // One queue, requests accepted round robin by the three instances.
    let url = format!("{api}/slow?ms=60&q=shared");
    let mut ids = Vec::new();
    for i in 0..24 {
        let mut body = tagged(&url, &format!("s{i:02}"));
        body["queue"] = json!("shared");
        ids.push(instances[i % 3].1.submit("caller", body).await);
    }
    for (i, id) in ids.iter().enumerate() {
        // Polled through another instance than the one that accepted it.
        let (status, answer) = instances[(i + 1) % 3].1.poll_until_done("caller", id).await;
        assert_eq!(status, 200, "{answer}");
    }
    let expected: Vec<String> = (0..24).map(|i| format!("s{i:02}")).collect();
    assert_eq!(stand_in.tags(), expected, "one queue, acceptance order, across instances");
    assert_eq!(stand_in.inflight.lock().unwrap().max_per_queue, 1, "never two at once");
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = instances[2].1.call("csr-poll", "caller", json!({"service": SERVICE, "id": prefix, "limit": 100})).await;
    assert_eq!(page["list"].as_array().unwrap().len(), 24, "history through any instance");

    // A key's rate limit counts across instances.
    let limited = json!({"service": SERVICE, "name": "limited", "secret": SECRET, "destinations": "any", "rate_total": 3});
    let created = instances[0]
        .1
        .http
        .post(format!("{}/admin/keys", instances[0].1.base))
        .bearer_auth("admin-for-tests")
        .body(limited.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "limited", "url": format!("{api}/echo"), "method": "post",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET"}});
        statuses.push(instances[i % 3].1.call("csr", &format!("caller{i}"), body).await.0);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429], "three in total, whichever instance");

    // An instance dies while it runs the queue's head. The head must be the first instance's:
    // the others, which take up a queue they see idle at their next look (as they should), are
    // paused until it has arrived (under load one of them took it first now and then).
    let signal_others = |signal| {
        for (child, _) in &instances[1..] {
            // SAFETY: kill(2) on a child of this process, which it has not waited for.
            assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        }
    };
    signal_others(libc::SIGSTOP);
    let url = format!("{api}/slow?ms=800&q=killed&hold=k0");
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut body = tagged(&url, &format!("k{i}"));
        body["queue"] = json!("killed");
        ids.push(instances[0].1.submit("caller", body).await);
    }
    for _ in 0..250 {
        if stand_in.tags().iter().any(|t| t == "k0") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_others(libc::SIGCONT);
    assert!(stand_in.tags().iter().any(|t| t == "k0"), "the queue's head reached the API from the first instance");
    let (mut dead, _) = instances.remove(0);
    dead.kill().unwrap(); // SIGKILL while k0 runs
    dead.wait().unwrap();
    let survivor = instances[0].1.clone();
    let (status, answer) = survivor.poll_until_done("caller", &ids[0]).await;
    assert_eq!((status, answer["code"].as_str()), (500, Some("INTERRUPTED")), "{answer}");
    for id in &ids[1..] {
        let (status, answer) = survivor.poll_until_done("caller", id).await;
        assert_eq!(status, 200, "{answer}");
    }
    let killed: Vec<String> = stand_in.tags().into_iter().filter(|t| t.starts_with('k')).collect();
    assert_eq!(killed, vec!["k0", "k1", "k2", "k3", "k4", "k5"], "the rest of the queue, in order, each once");
    for (mut child, _) in instances {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// The reliability suite's faults, with three instances: the API refusing, resetting, hanging
/// and answering 503 at random, and an instance killed with SIGKILL (and started again) twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_and_sigkills_across_three_instances_on_postgres() {
    let _serial = SERIAL.lock().await;
    let database = tokio::task::spawn_blocking(fresh_postgres_database).await.unwrap();
    let (api, stand_in) = faulty_api(20).await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [("SKAPI_DATABASE", database.as_str()), ("SKAPI_LEASE_MS", "1000"), ("SKAPI_UPSTREAM_TIMEOUT_MS", "500")];
    cli_add_key_with(dir.path(), "openai", &envs);
    let mut instances: Vec<(std::process::Child, Api)> = (0..3).map(|_| spawn_server(dir.path(), Stdio::null(), &envs)).collect();
    let url = format!("{api}/faults");
    let mut ids = Vec::new();
    for (round, instance) in instances.iter_mut().enumerate() {
        let (_, sent) = send_load(&instance.1, &url, round, 300, 10, 8).await;
        ids.extend(sent);
        if round < 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (mut child, _) = std::mem::replace(instance, spawn_server(dir.path(), Stdio::null(), &envs));
            child.kill().unwrap(); // SIGKILL mid-load; a fresh instance takes its place
            child.wait().unwrap();
        }
    }
    let client = instances[2].1.clone();
    let mut codes: std::collections::HashMap<String, usize> = Default::default();
    for id in &ids {
        let (status, answer) = client.poll_until_done("load", id).await;
        let code = if status == 200 { "RESOLVED".to_owned() } else { answer["code"].as_str().unwrap_or("?").to_owned() };
        assert!(["RESOLVED", "NETWORK_ERROR", "TIMEOUT", "THIRD_PARTY_ERROR", "INTERRUPTED"].contains(&code.as_str()), "{id}: {status} {answer}");
        *codes.entry(code).or_default() += 1;
    }
    eprintln!("900 requests, three instances, faults and two SIGKILLs: {codes:?}");
    let arrivals = stand_in.arrivals.lock().unwrap().clone();
    let mut seen = std::collections::HashSet::new();
    for (tag, _) in &arrivals {
        assert!(seen.insert(tag.clone()), "{tag} was sent twice");
    }
    // Each queue: what reached the API came in acceptance order (history, oldest first).
    for q in 0..10 {
        let queue = format!("q{q}");
        let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
        let (_, page) = client
            .call("csr-poll", "load", json!({"service": SERVICE, "id_prefix": prefix, "queue_exact": queue, "ascending": true, "limit": 1000}))
            .await;
        let accepted: Vec<String> = page["list"].as_array().unwrap().iter().map(|i| i["reqbdy"]["tag"].as_str().unwrap().to_owned()).collect();
        let sent: Vec<&String> = arrivals.iter().map(|(t, _)| t).filter(|t| t.split('-').next() == Some(queue.as_str())).collect();
        let order: Vec<&String> = accepted.iter().filter(|t| sent.contains(t)).collect();
        assert_eq!(sent, order, "queue {queue}");
        assert_eq!(sent.len(), order.len());
    }
    for (mut child, _) in instances {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_instance_finishes_what_it_runs_and_leaves_its_queue_to_the_other_on_postgres() {
    let _serial = SERIAL.lock().await;
    let database = tokio::task::spawn_blocking(fresh_postgres_database).await.unwrap();
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    // Long leases: nothing here may wait for one to run out.
    let envs = [("SKAPI_DATABASE", database.as_str()), ("SKAPI_LEASE_MS", "30000")];
    cli_add_key_with(dir.path(), "openai", &envs);
    let (mut a, api_a) = spawn_server(dir.path(), Stdio::null(), &envs);
    let (mut b, api_b) = spawn_server(dir.path(), Stdio::null(), &envs);

    let url = format!("{api}/slow?ms=800&q=drain");
    let mut ids = Vec::new();
    for i in 0..4 {
        let mut body = tagged(&url, &format!("d{i}"));
        body["queue"] = json!("drain");
        ids.push(api_a.submit("caller", body).await);
    }
    stand_in.wait_for_first().await;
    let started = std::time::Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &a.id().to_string()]).status().unwrap();
    assert!(status.success());
    for id in &ids {
        let (status, answer) = api_b.poll_until_done("caller", id).await;
        assert_eq!(status, 200, "finished by the draining instance or taken by the other: {answer}");
    }
    assert!(started.elapsed() < Duration::from_secs(20), "the other instance did not wait for a 30-second lease");
    assert!(a.wait().unwrap().success(), "the drained instance exits 0");
    b.kill().unwrap();
    b.wait().unwrap();
    assert_eq!(stand_in.tags(), ["d0", "d1", "d2", "d3"], "in order, each once");
}

/// A stream run by one instance is read through another, pushed and polled: the same chunks,
/// every one once and in order (the other instance looks at the store, having no watch of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_run_by_one_instance_is_read_through_another_on_postgres() {
    let _serial = SERIAL.lock().await;
    let database = tokio::task::spawn_blocking(fresh_postgres_database).await.unwrap();
    let (api, _stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let envs = [("SKAPI_DATABASE", database.as_str())];
    cli_add_key_with(dir.path(), "openai", &envs);
    let (mut first, one) = spawn_server(dir.path(), Stdio::null(), &envs);
    let (mut second, other) = spawn_server(dir.path(), Stdio::null(), &envs);
    let body = json!({"clientSecretName": "openai", "url": format!("{api}/sse?n=10&ms=30"), "method": "post", "stream": true, "queue": "s",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET"}});
    let id = one.submit("caller", body).await;

    // Pushed by the other instance.
    let mut response = other.open_stream("caller", &id, None).await;
    assert_eq!(response.status(), 200);
    let mut events = String::new();
    while let Some(bytes) = response.chunk().await.unwrap() {
        events.push_str(std::str::from_utf8(&bytes).unwrap());
    }
    let pushed: Vec<u64> = events.lines().filter_map(|l| l.strip_prefix("id: ")).map(|s| s.parse().unwrap()).collect();
    assert!(!pushed.is_empty() && events.contains("event: end"), "{events}");
    assert_eq!(pushed, (1..=pushed.len() as u64).collect::<Vec<_>>(), "every chunk once, in order");

    // Polled through either instance: the same chunks.
    let page = |api: &Api| {
        let api = api.clone();
        let id = id.clone();
        async move { api.call("csr-poll", "caller", json!({"service": SERVICE, "owner": OWNER, "id": id, "since": 0})).await.1 }
    };
    let (a, b) = (page(&one).await, page(&other).await);
    assert_eq!(a["chunks"], b["chunks"]);
    assert_eq!(a["chunks"].as_array().unwrap().len(), pushed.len());
    assert_eq!(a["status"], "resolved", "{a}");
    for child in [&mut first, &mut second] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
