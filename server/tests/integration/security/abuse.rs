//! One caller against everyone else: labels minted by callers, slots taken by one caller's
//! slow requests, connections that never finish.

use super::*;

async fn metric_labels_name_configured_hosts_only(engine: Engine) {
    let server = server_with(engine, |c| c.admin_token = "admin-token-for-tests".into()).await;
    server.add_key("anywhere", &[]);
    // Hosts of the caller's choosing (loopback, so nothing leaves the machine; nothing listens).
    for i in 0..20 {
        let url = format!("http://127.0.{i}.{}:9/x", 200 + i);
        let id =
            server.submit("caller", json!({"clientSecretName": "anywhere", "url": url, "method": "get", "params": {"k": "$CLIENT_SECRET"}})).await;
        server.poll_until_done("caller", &id).await;
    }
    let metrics =
        server.http.get(format!("{}/metrics", server.base)).bearer_auth("admin-token-for-tests").send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"skapi_upstream_calls_total{host="other",outcome="NETWORK_ERROR"}"#), "{metrics}");
    assert!(!metrics.contains("127.0.5.205"), "a caller's host became a label:\n{metrics}");
}

/// A server whose connection limits are small enough for a test to reach.
async fn tight_server(engine: Engine) -> Server {
    server_with(engine, |c| {
        c.http = skapi_server::http::Limits {
            header_timeout: Duration::from_millis(800),
            body_timeout: Duration::from_millis(800),
            write_timeout: Duration::from_millis(800),
            max_connections: 150,
        }
    })
    .await
}

/// Opens a connection that sends `head` and then nothing more.
async fn stalled(base: &str, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

/// Waits until the server closes `stream` (reads to its end); how long that took.
async fn closed_within(stream: &mut tokio::net::TcpStream, limit: Duration) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut sink = Vec::new();
    tokio::time::timeout(limit, stream.read_to_end(&mut sink)).await.expect("the server closed the connection").ok();
    started.elapsed()
}

async fn slow_and_half_open_connections_are_closed_and_health_answers_through_a_flood(engine: Engine) {
    let server = tight_server(engine).await;
    // Headers that never end, a body that never comes, and nothing at all.
    let mut slow_head = stalled(&server.base, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await;
    let mut slow_body =
        stalled(&server.base, "POST /csr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"a\":").await;
    let mut silent = stalled(&server.base, "").await;
    for stream in [&mut slow_head, &mut slow_body, &mut silent] {
        let took = closed_within(stream, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
    // A flood of them, twice the connection cap: health still answers, within seconds.
    let mut flood = Vec::new();
    for _ in 0..300 {
        flood.push(stalled(&server.base, "GET / HTTP/1.1\r\nHost: x\r\n").await);
    }
    let started = std::time::Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(15), server.http.get(format!("{}/healthz", server.base)).send()).await;
    let status = health.expect("health answered in time").unwrap().status();
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(10), "health took {:?}", started.elapsed());
    drop(flood);
}

async fn one_caller_flooding_slow_requests_leaves_room_for_the_others(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| {
        c.concurrency = 8;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    server.add_key("k", &[]);
    server.add_key("k2", &[]);
    // One address, a fresh public identifier for every request: 24 requests that take 3 s.
    let slow = format!("{api}/slow?ms=3000");
    for i in 0..24 {
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "k", "url": slow, "method": "post",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"i": i}});
        let (status, answer) = server.call_forwarded("csr", &format!("flood-{i}"), Some("10.1.0.1"), body).await;
        assert_eq!(status, 200, "{answer}");
    }
    // Its share reaches the stand-in; then nothing more of it while those run.
    let running = || stand_in.seen().iter().filter(|s| s.path == "/slow").count();
    for _ in 0..100 {
        if running() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(running(), 2, "a caller runs at most its share (a quarter of 8)");
    // Everyone else is served at once: another caller, and another key.
    for (caller, address, key) in [("other", "10.2.0.2", "k"), ("third", "10.3.0.3", "k2")] {
        let started = std::time::Instant::now();
        let url = format!("{api}/echo?who={caller}");
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": key, "url": url, "method": "get",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET"}});
        let (status, accepted) = server.call_forwarded("csr", caller, Some(address), body).await;
        assert_eq!(status, 200, "{accepted}");
        let full = format!("[GET]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap());
        let (status, answer) = server.poll_until_done(caller, &full).await;
        assert_eq!(status, 200, "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2), "{caller} waited {:?}", started.elapsed());
    }
}

/// Starts a streamed request; its full id.
async fn start_stream(server: &Server, url: &str, queue: &str) -> String {
    let body = json!({"clientSecretName": "k", "url": url, "method": "get", "queue": queue,
                      "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "stream": true});
    server.submit("reader", body).await
}

async fn idle_push_readers_cost_little_and_wake_for_their_own_stream(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("k", &[]);
    // A stream that takes a while holds the queue; the next one waits, pending, with readers.
    let url = format!("{api}/sse?n=3&ms=700");
    start_stream(&server, &url, "q").await;
    let waiting = start_stream(&server, &url, "q").await;
    let mut readers = Vec::new();
    for _ in 0..100 {
        let response = server.open_stream("reader", &waiting, None).await;
        assert_eq!(response.status(), 200);
        readers.push(response);
    }
    // Other streams starting and writing wake none of them.
    for _ in 0..3 {
        start_stream(&server, &format!("{api}/sse?n=5&ms=20"), "other").await;
    }
    let before = server.state.db.calls();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let calls = server.state.db.calls() - before;
    // Each reader looking every 250 ms would be 800 reads a second; the streams' own writes
    // are a few dozen. (On a shared database a reader must still look that often: another
    // instance may run its stream, and only the store tells.)
    if !server.state.db.store().shared() {
        assert!(calls < 150, "{calls} store calls in a second with 100 idle readers");
    }
    // Each reader gets its stream once it runs, to its end.
    for response in readers.drain(..10) {
        let text = tokio::time::timeout(Duration::from_secs(10), response.text()).await.expect("the stream ended").unwrap();
        assert!(text.contains("event: chunk") && text.contains("event: end"), "{text}");
    }
    drop(readers);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.state.engine.watched_streams(), 0, "readers gone, nothing left watched");
}

async fn a_stream_written_a_byte_at_a_time_is_stored_in_fewer_chunks(engine: Engine) {
    let api = super::leaks::start_hostile().await;
    let server = start_server(engine).await;
    server.add_key("k", &[]);
    let url = format!("{api}/bytewise");
    let started = std::time::Instant::now();
    let id = start_stream(&server, &url, "b").await;
    let (text, chunks) = super::read_stream(&server, "reader", &id).await;
    assert_eq!(text.len(), 1000, "every byte kept, in order");
    assert!(text.starts_with("abcdefghijklmnopqrstuvwxyzabc"));
    // Small pieces are gathered for 3 ms: at most one chunk per 3 ms of the stream (however
    // slow this machine made the writes), where one a write would be 1,000.
    let took = started.elapsed().as_secs_f64() * 1000.0;
    assert!(chunks as f64 <= took / 3.0 * 1.2 + 20.0, "{chunks} chunks for 1,000 one-byte writes in {took:.0} ms");
}

engine_tests! {
  both: [
    slow_and_half_open_connections_are_closed_and_health_answers_through_a_flood,
    metric_labels_name_configured_hosts_only,
    one_caller_flooding_slow_requests_leaves_room_for_the_others,
    idle_push_readers_cost_little_and_wake_for_their_own_stream,
    a_stream_written_a_byte_at_a_time_is_stored_in_fewer_chunks,
  ],
}
