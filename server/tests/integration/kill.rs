//! The real binary killed with SIGKILL mid-queue, then started again on the same data
//! directory: nothing lost, nothing sent twice, order kept.

use crate::support::*;
use serde_json::json;
use std::process::Stdio;

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_queue_loses_nothing_and_sends_nothing_twice_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");

    let (mut first, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    let url = format!("{api}/slow?ms=400&q=k");
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut body = tagged(&url, &format!("t{i}"));
        body["queue"] = json!("k");
        ids.push(client.submit("caller-a", body).await);
    }
    stand_in.wait_for_first().await;
    assert_eq!(stand_in.tags(), vec!["t0"], "the head is running when the server dies");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let (mut second, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    let (status, answer) = client.poll_until_done("caller-a", &ids[0]).await;
    assert_eq!((status, answer["code"].as_str()), (500, Some("INTERRUPTED")), "{answer}");
    for id in &ids[1..] {
        let (status, answer) = client.poll_until_done("caller-a", id).await;
        assert_eq!(status, 200, "{answer}");
    }
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(stand_in.tags(), vec!["t0", "t1", "t2", "t3", "t4", "t5"], "each sent once, in order");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_ends_it_interrupted_with_its_chunks_kept_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let (mut first, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    let url = format!("{api}/sse?n=40&ms=50");
    let id = client
        .submit(
            "caller-a",
            json!({"clientSecretName": "openai", "url": url, "method": "post", "stream": true, "queue": "s",
        "headers": {"Authorization": "Bearer $CLIENT_SECRET"}}),
        )
        .await;
    let page = |client: Api, id: String| async move {
        client.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": id, "since": 0})).await.1
    };
    let mut before = json!(null);
    for _ in 0..100 {
        before = page(client.clone(), id.clone()).await;
        if before["chunks"].as_array().is_some_and(|c| c.len() >= 3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(before["status"], "running", "{before}");
    first.kill().unwrap(); // SIGKILL mid-stream
    first.wait().unwrap();
    let kept = before["chunks"].as_array().unwrap().len();

    let (mut second, client) = spawn_server(dir.path(), Stdio::null(), &[]);
    let after = page(client.clone(), id.clone()).await;
    assert_eq!((after["status"].as_str(), after["error"]["code"].as_str()), (Some("failed"), Some("INTERRUPTED")), "{after}");
    let chunks = after["chunks"].as_array().unwrap();
    assert!(chunks.len() >= kept && chunks.len() < 40, "the chunks so far are kept: {after}");
    assert_eq!(chunks[..kept], before["chunks"].as_array().unwrap()[..], "unchanged");
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(stand_in.seen().iter().filter(|s| s.path == "/sse").count(), 1, "not sent again");
}
