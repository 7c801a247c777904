//! Deploys: the real binary gets SIGTERM (what systemd, Docker and Kubernetes send) while
//! requests run and wait. Running ones finish and are recorded, reaching the third party once;
//! new work is refused with `SHUTTING_DOWN` while polls are still answered; waiting ones stay
//! pending and run after the restart, in order; a second signal ends the drain at once.

use crate::support::*;
use serde_json::json;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for the process to exit by itself; its exit status.
async fn exit_of(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < within, "the server did not exit within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_tags(stand_in: &StandIn, n: usize) {
    for _ in 0..250 {
        if stand_in.inflight.lock().unwrap().now >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} requests did not reach the stand-in");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_running_requests_finish_and_keeps_waiting_ones_for_the_next_start_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let (mut server, client) = spawn_server(dir.path(), Stdio::null(), &[]);

    // Four unqueued requests to a 1.5-second API, and a queue of three whose head runs.
    let mut running = Vec::new();
    for i in 0..4 {
        running.push(client.submit("a", tagged(&format!("{api}/slow?ms=1500&q=free{i}"), &format!("r{i}"))).await);
    }
    let mut queued = Vec::new();
    for i in 0..3 {
        let mut body = tagged(&format!("{api}/slow?ms=1500&q=line"), &format!("q{i}"));
        body["queue"] = json!("line");
        queued.push(client.submit("a", body).await);
    }
    wait_for_tags(&stand_in, 5).await;

    signal(&server, "TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, refused) = client
        .call(
            "csr",
            "a",
            json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai",
        "url": format!("{api}/echo"), "method": "post", "headers": {"Authorization": "Bearer $CLIENT_SECRET"}}),
        )
        .await;
    assert_eq!((status, refused["code"].as_str()), (503, Some("SHUTTING_DOWN")), "{refused}");
    let ready = client.http.get(format!("{}/readyz", client.base)).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while draining: a load balancer sends no new calls");
    let (status, still) = client.call("csr-poll", "a", json!({"service": SERVICE, "id": running[0]})).await;
    assert_eq!((status, still["status"].as_str()), (200, Some("running")), "polls are answered during the drain: {still}");

    assert!(exit_of(&mut server, Duration::from_secs(10)).await.success(), "a drained server exits 0");

    let (mut server, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    for id in &running {
        let (status, answer) = client.poll_until_done("a", id).await;
        assert_eq!(status, 200, "finished during the drain, not INTERRUPTED: {answer}");
    }
    for id in &queued {
        let (status, answer) = client.poll_until_done("a", id).await;
        assert_eq!(status, 200, "{answer}");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let mut tags = stand_in.tags();
    tags.sort();
    assert_eq!(tags, ["q0", "q1", "q2", "r0", "r1", "r2", "r3"], "each reached the third party once");
    let order: Vec<String> = stand_in.tags().into_iter().filter(|t| t.starts_with('q')).collect();
    assert_eq!(order, ["q0", "q1", "q2"], "the queue ran in order across the restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_or_the_grace_ending_interrupts_what_still_runs_and_nothing_doubles_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    for (second_signal, grace) in [(true, "60000"), (false, "300")] {
        let dir = tempfile::tempdir().unwrap();
        cli_add_key(dir.path(), "openai");
        let (mut server, client) = spawn_server(dir.path(), Stdio::null(), &[("SKAPI_SHUTDOWN_GRACE_MS", grace)]);
        let before = stand_in.seen().len();
        let id = client.submit("a", tagged(&format!("{api}/slow?ms=4000&q=long"), "long")).await;
        wait_for_tags(&stand_in, 1).await;
        signal(&server, "TERM");
        if second_signal {
            tokio::time::sleep(Duration::from_millis(300)).await;
            signal(&server, "INT");
        }
        let started = Instant::now();
        assert!(exit_of(&mut server, Duration::from_secs(3)).await.success());
        assert!(started.elapsed() < Duration::from_secs(3), "did not wait for the 4-second call");

        let (mut server, client) = spawn_server(dir.path(), Stdio::null(), &[]);
        let (status, answer) = client.poll_until_done("a", &id).await;
        assert_eq!((status, answer["code"].as_str()), (500, Some("INTERRUPTED")), "{answer}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stand_in.seen().len(), before + 1, "sent once, never again after the restart");
        server.kill().unwrap();
        server.wait().unwrap();
    }
}

/// In process: with nothing running, a drain ends at once, and the upkeep loops (leases,
/// purging) stop when told rather than holding the stop up.
async fn an_idle_engine_drains_and_its_upkeep_stops_at_once(engine: Engine) {
    let server = start_server(engine).await;
    let engine = &server.state.engine;
    engine.drain();
    tokio::time::timeout(Duration::from_secs(2), engine.drained()).await.expect("an idle engine drains at once");
    tokio::time::timeout(Duration::from_secs(2), engine.stop_upkeep()).await.expect("the upkeep loops stop when told");
}

engine_tests! {
  both: [an_idle_engine_drains_and_its_upkeep_stops_at_once],
}
