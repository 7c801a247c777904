//! The real binary killed with SIGKILL mid-queue, then started again on the same data
//! directory: nothing lost, nothing sent twice, order kept.

mod support;

use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::*;

const BIN: &str = env!("CARGO_BIN_EXE_skapi-server");

/// Starts `skapi-server serve` and returns it with the URL it printed.
fn serve(data: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-private-upstreams", "--data-dir"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().trim_end_matches('/').to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    (child, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_queue_loses_nothing_and_sends_nothing_twice() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let mut add = Command::new(BIN)
        .args(["keys", "add", "--service", SERVICE, "--name", "openai", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(SECRET.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());

    let (mut first, base) = serve(dir.path());
    let client = Api::new(base);
    let url = format!("{api}/slow?ms=400&q=k");
    let mut ids = Vec::new();
    for i in 0..6 {
        let mut body = tagged(&url, &format!("t{i}"));
        body["queue"] = json!("k");
        ids.push(client.submit("caller-a", body).await);
    }
    for _ in 0..250 {
        if !stand_in.tags().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stand_in.tags(), vec!["t0"], "the head is running when the server dies");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();

    let (mut second, base) = serve(dir.path());
    let client = Api::new(base);
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
