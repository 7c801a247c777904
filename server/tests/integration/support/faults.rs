//! Upstreams that misbehave below HTTP: a bare TCP server and an API that refuses, resets, hangs
//! or fails a share of its calls.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A bare TCP server that hands every connection to `serve` (for faults HTTP servers won't make).
pub async fn raw_server<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(serve(stream));
        }
    });
    format!("http://{addr}")
}

/// Reads one HTTP request's body (enough HTTP for the stand-in below).
pub async fn read_body(stream: &mut tokio::net::TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// What a faulty API did with each tag, in arrival order.
#[derive(Default)]
pub struct Faulty {
    pub arrivals: Mutex<Vec<(String, &'static str)>>,
}

/// A stand-in API that answers each request by its tag's hash: OK, refuse (close at once),
/// reset (half an answer), hang (never answer), or 503. `faults` = share of faulty answers.
pub async fn faulty_api(faults: u64) -> (String, Arc<Faulty>) {
    let record = Arc::new(Faulty::default());
    let seen = record.clone();
    let base = raw_server(move |mut stream| {
        let seen = seen.clone();
        async move {
            let Some(body) = read_body(&mut stream).await else { return };
            let tag = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["tag"].as_str().map(str::to_owned)).unwrap_or_default();
            let hash = tag.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3));
            let fate = if hash % 100 >= faults { "ok" } else { ["refuse", "reset", "hang", "503"][(hash / 100 % 4) as usize] };
            seen.arrivals.lock().unwrap().push((tag.clone(), fate));
            match fate {
                "refuse" => {}
                "reset" => {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"par").await;
                }
                "hang" => tokio::time::sleep(Duration::from_secs(30)).await,
                "503" => {
                    let _ = stream.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}").await;
                }
                _ => {
                    let body = json!({"tag": tag}).to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                }
            }
        }
    })
    .await;
    (base, record)
}
