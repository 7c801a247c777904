//! What an operator sees: a request id on every answer and in every log line a call causes
//! (JSON logs too), Prometheus metrics behind the admin token or on their own address, health
//! and readiness — and no secret, caller identifier, url path or query in any of them.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const PUBLIC_ID: &str = "pid-known-to-the-test-7f3a";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_ids_json_logs_metrics_and_health_show_no_secret_on_sqlite() {
    let (api, _stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let log_path = dir.path().join("server.log");
    let metrics_port = free_port();
    let metrics_listen = format!("127.0.0.1:{metrics_port}");
    let envs = [
        ("SKAPI_LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
        ("SKAPI_ADMIN_TOKEN", "admin-for-ops"),
        ("SKAPI_METRICS_LISTEN", metrics_listen.as_str()),
    ];
    let (mut server, client) = spawn_server(dir.path(), std::fs::File::create(&log_path).unwrap().into(), &envs);

    // Request ids: one per call, answered back; the caller's own kept.
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/v1/images/generations?q=private-query"),
                      "method": "post", "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"prompt": "otter"}});
    let csr = |request_id: Option<&str>| {
        let mut call = client
            .http
            .post(format!("{}/csr", client.base))
            .header("content-meta", json!({"public_identifier": PUBLIC_ID, "service": SERVICE, "owner": OWNER}).to_string())
            .body(body.to_string());
        if let Some(id) = request_id {
            call = call.header("x-request-id", id);
        }
        call.send()
    };
    let first = csr(None).await.unwrap();
    let first_id = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let accepted: Value = serde_json::from_str(&first.text().await.unwrap()).unwrap();
    let second = csr(Some("req-from-the-caller-1")).await.unwrap();
    assert_eq!(second.headers()["x-request-id"], "req-from-the-caller-1");
    assert!(!first_id.is_empty() && first_id != "req-from-the-caller-1");
    // One that could pass for other fields of a log line is replaced by the server's own.
    let forged = "x\" key deleted by=admin";
    let third = csr(Some(forged)).await.unwrap();
    let third_id = third.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(third_id != forged && third_id.len() == 36, "{third_id}");
    let full =
        format!("[POST]{}#{SERVICE}:{}", format!("{api}/v1/images/generations?q=private-query").to_lowercase(), accepted["id"].as_str().unwrap());
    let (status, answer) = client.poll_until_done(PUBLIC_ID, &full).await;
    assert_eq!(status, 200, "{answer}");
    let _ = client.call("csr-poll", PUBLIC_ID, json!({"service": SERVICE, "queue": "nothing:"})).await;

    // Health and readiness.
    assert_eq!(client.http.get(format!("{}/healthz", client.base)).send().await.unwrap().status(), 200);
    assert_eq!(client.http.get(format!("{}/readyz", client.base)).send().await.unwrap().status(), 200);

    // Metrics: behind the admin token, and without it on the metrics address.
    let metrics_url = format!("{}/metrics", client.base);
    assert_eq!(client.http.get(&metrics_url).send().await.unwrap().status(), 401);
    let text = client.http.get(&metrics_url).bearer_auth("admin-for-ops").send().await.unwrap().text().await.unwrap();
    let open = client.http.get(format!("http://{metrics_listen}/metrics")).send().await.unwrap().text().await.unwrap();
    for metrics in [&text, &open] {
        for expected in [
            r#"skapi_api_calls_total{endpoint="csr",outcome="OK"}"#,
            r#"skapi_api_calls_total{endpoint="queue_count",outcome="OK"}"#,
            // The key may go anywhere: no configured host to name, so the calls count as `other`.
            r#"skapi_upstream_calls_total{host="other",outcome="resolved"}"#,
            "skapi_upstream_duration_seconds_bucket",
            r#"skapi_requests{state="pending"}"#,
            "skapi_store_duration_seconds",
        ] {
            assert!(metrics.contains(expected), "{expected} missing from\n{metrics}");
        }
        for secret_or_caller in [SECRET, PUBLIC_ID, "/v1/images", "private-query", "otter", "caller"] {
            assert!(!metrics.contains(secret_or_caller), "{secret_or_caller} in the metrics");
        }
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> =
        log.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).expect("every JSON log line parses")).collect();
    assert!(!lines.is_empty(), "the server logged in JSON:\n{log}");
    // The first call's end (the second one's may be logged before it).
    let resolved = lines
        .iter()
        .find(|l| l["fields"]["message"] == "request resolved" && l["fields"]["id"] == accepted["id"])
        .expect("the engine logged the request's end");
    assert_eq!(resolved["span"]["request_id"], first_id.as_str(), "the engine's line carries the id of the call that caused it: {resolved}");
    for form in secret_forms().iter().chain([PUBLIC_ID.to_owned()].iter()) {
        assert!(!log.contains(form.as_str()), "{form} in the JSON log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_connections_end_on_the_metrics_address_too_and_the_open_file_limit_is_raised_on_sqlite() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let envs = [("SKAPI_METRICS_LISTEN", metrics_listen.as_str()), ("SKAPI_HEADER_TIMEOUT_MS", "500")];
    // Started with the common soft limit of 1,024 open files, below the hard one.
    let (mut server, client) = spawn_server_with(dir.path(), std::process::Stdio::null(), &envs, |command| {
        use std::os::unix::process::CommandExt;
        // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
                limit.rlim_cur = limit.rlim_max.min(1024);
                libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
                Ok(())
            });
        }
    });
    for address in [metrics_listen.clone(), client.base.trim_start_matches("http://").to_owned()] {
        // Headers that never end: the connection is closed soon after the header timeout.
        let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await.expect("closed").ok();
        assert!(started.elapsed() < Duration::from_secs(3), "{address}: closed after {:?}", started.elapsed());
    }
    assert_eq!(client.http.get(format!("http://{metrics_listen}/metrics")).send().await.unwrap().status(), 200);
    // The soft open-file limit was raised to the hard one at start.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.id())).unwrap();
    let files: Vec<&str> = limits.lines().find(|l| l.starts_with("Max open files")).unwrap().split_whitespace().collect();
    assert_eq!(files[3], files[4], "soft and hard limit: {limits}");
    server.kill().unwrap();
    server.wait().unwrap();
}
