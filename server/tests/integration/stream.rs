//! Streamed answers (2.x `stream: true`): chunks kept as the third party writes them and read
//! with `csr-poll {id, since}`, the secret redacted also when split across writes, failures
//! and cancels mid-stream, `csr-finalize`. On both engines.

use crate::support::*;
use serde_json::{json, Value};
use skapi_core::PLACEHOLDER;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn streamed(url: &str) -> Value {
    json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post", "queue": "chat-1",
           "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"model": "m", "stream": true}, "stream": true})
}

/// Starts a streamed request; its full id.
async fn start(server: &Server, url: &str) -> String {
    let (status, accepted) = server.call("csr", "reader", streamed(url)).await;
    assert_eq!(status, 200, "{accepted}");
    format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap())
}

/// Starts the same request to the stand-in's `/echo` without `stream`; its full id.
async fn start_plain(server: &Server, api: &str) -> String {
    let url = format!("{api}/echo");
    let mut plain = streamed(&url);
    plain.as_object_mut().unwrap().remove("stream");
    let (_, accepted) = server.call("csr", "reader", plain).await;
    format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap())
}

/// Reads the stream from `since` until it ends: every chunk, the final page, and whether any
/// chunk came while the request still ran.
async fn read_to_end(server: &Server, id: &str) -> (Vec<(u64, String)>, Value, bool) {
    let (mut chunks, mut since, mut live) = (Vec::new(), 0, false);
    let started = Instant::now();
    loop {
        let (status, page) = server.call("csr-poll", "reader", json!({"service": SERVICE, "owner": OWNER, "id": id, "since": since})).await;
        assert_eq!((status, &page["stream"]), (200, &json!(true)), "{page}");
        for chunk in page["chunks"].as_array().unwrap() {
            chunks.push((chunk["seq"].as_u64().unwrap(), chunk["txt"].as_str().unwrap().to_owned()));
            live |= matches!(page["status"].as_str(), Some("pending" | "running"));
        }
        since = page["last_seq"].as_u64().unwrap();
        if matches!(page["status"].as_str(), Some("resolved" | "failed")) && page["more"] == false {
            return (chunks, page, live);
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the stream did not end: {page}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn joined(chunks: &[(u64, String)]) -> String {
    chunks.iter().map(|(_, t)| t.as_str()).collect()
}

async fn chunks_arrive_in_order_while_the_answer_is_written_and_the_secret_never_reaches_one(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let id = start(&server, &format!("{api}/sse?n=8&ms=30&split=1")).await;
    let (chunks, last, live) = read_to_end(&server, &id).await;

    assert_eq!(last["status"], "resolved", "{last}");
    assert!(live, "chunks are read while the third party still writes");
    let seqs: Vec<u64> = chunks.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "seq from 1, no gap, each once");
    assert!(chunks.len() >= 8, "one chunk or more a write: {}", chunks.len());
    let text = joined(&chunks);
    let query: HashMap<String, String> = [("n", "8"), ("split", "1")].map(|(k, v)| (k.to_owned(), v.to_owned())).into();
    let written: String = sse_pieces(&query).concat();
    assert!(text.starts_with("data: {\"i\":1,\"t\":\"tok1 é\"}\n\ndata: key "), "{text}");
    assert!(text.ends_with("data: {\"i\":8,\"t\":\"tok8 é\"}\n\ndata: [DONE]\n\n"), "{text}");
    // Split across writes — plain, and base64 across the write boundary — and still replaced.
    assert!(text.contains(&format!("data: key {PLACEHOLDER} and ")) && text.contains(&format!("{PLACEHOLDER} done\n\n")), "{text}");
    for form in secret_forms() {
        assert!(!text.contains(&form), "the secret ({form}) reached a chunk: {text}");
        for (_, chunk) in &chunks {
            assert!(!chunk.contains(&form), "{chunk}");
        }
    }
    // Everything but the secret arrived as written.
    let events: Vec<&str> = written.split("\n\n").filter(|e| e.starts_with("data: {")).collect();
    for event in events {
        assert!(text.contains(event), "{event} missing from {text}");
    }
    // The SDK's stream flag went nowhere; the destination's own `stream` went as written.
    let sent: Value = serde_json::from_slice(&stand_in.seen()[0].body).unwrap();
    assert_eq!(sent, json!({"model": "m", "stream": true}));

    // Without `since`, the answer as for any request: a streamed one settles with no body.
    let (status, answer) = server.call("csr-poll", "reader", json!({"service": SERVICE, "owner": OWNER, "id": id})).await;
    assert_eq!((status, answer), (200, Value::Null));
    // Another caller reads nothing of it.
    let (status, other) = server.call("csr-poll", "someone-else", json!({"service": SERVICE, "owner": OWNER, "id": id, "since": 0})).await;
    assert_eq!((status, other["code"].as_str()), (404, Some("NOT_EXISTS")), "{other}");
}

async fn a_finished_stream_is_finalized_once_into_one_body(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let finalize = |id: &str, data: Option<Value>| {
        let mut body = json!({"service": SERVICE, "owner": OWNER, "id": id});
        if let Some(data) = data {
            body["data"] = data;
        }
        server.call("csr-finalize", "reader", body)
    };
    let id = start(&server, &format!("{api}/sse?n=3&ms=200")).await;
    let (status, early) = finalize(&id, None).await;
    assert_eq!((status, early), (200, json!({"finalized": false, "message": "The request has not finished yet."})));
    let (chunks, _, _) = read_to_end(&server, &id).await;
    let (status, done) = finalize(&id, None).await;
    assert_eq!((status, &done["finalized"]), (200, &json!(true)), "{done}");
    // Later polls and history answer the stored body, as for a request that did not stream.
    let (status, body) = server.call("csr-poll", "reader", json!({"service": SERVICE, "owner": OWNER, "id": id, "since": 0})).await;
    assert_eq!((status, body), (200, json!(joined(&chunks))));
    let (_, again) = finalize(&id, None).await;
    assert_eq!(again["finalized"], false, "once: {again}");

    let id = start(&server, &format!("{api}/sse?n=2&ms=5")).await;
    read_to_end(&server, &id).await;
    assert_eq!(finalize(&id, Some(json!({"reply": "tok1 tok2"}))).await.1["finalized"], true);
    let (_, body) = server.call("csr-poll", "reader", json!({"service": SERVICE, "owner": OWNER, "id": id})).await;
    assert_eq!(body, json!({"reply": "tok1 tok2"}), "the caller's data wins");

    let plain_id = start_plain(&server, &api).await;
    server.poll_until_done("reader", &plain_id).await;
    let (_, refused) = finalize(&plain_id, None).await;
    assert_eq!(refused, json!({"finalized": false, "message": "The request was not sent with stream, so its response is already stored."}));
}

async fn a_stream_that_breaks_or_is_refused_or_cancelled_ends_failed_with_its_chunks_kept(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);

    let id = start(&server, &format!("{api}/sse?n=6&ms=10&fail=3")).await;
    let (chunks, last, _) = read_to_end(&server, &id).await;
    assert_eq!((last["status"].as_str(), last["error"]["code"].as_str()), (Some("failed"), Some("NETWORK_ERROR")), "{last}");
    assert_eq!(last["error"]["status_code"], 200);
    assert_eq!(joined(&chunks), "data: {\"i\":1,\"t\":\"tok1 é\"}\n\ndata: {\"i\":2,\"t\":\"tok2 é\"}\n\ndata: {\"i\":3,\"t\":\"tok3 é\"}\n\n");
    assert_eq!(last["error"]["body"], json!(joined(&chunks)), "the failure keeps what was written");

    let id = start(&server, &format!("{api}/sse?n=1&status=429")).await;
    let (_, last, _) = read_to_end(&server, &id).await;
    assert_eq!((last["error"]["code"].as_str(), last["error"]["status_code"].as_u64()), (Some("THIRD_PARTY_ERROR"), Some(429)), "{last}");

    let id = start(&server, &format!("{api}/sse?n=50&ms=50")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, cancelled) = server.call("csr-cancel", "reader", json!({"service": SERVICE, "owner": OWNER, "id": id})).await;
    assert_eq!((status, &cancelled["removed"]), (200, &json!(true)), "{cancelled}");
    let (chunks, last, _) = read_to_end(&server, &id).await;
    assert_eq!(last["error"]["code"], "CANCELED", "{last}");
    assert!(!chunks.is_empty() && chunks.len() < 20, "stopped at once, what came kept: {}", chunks.len());

    // `--max-response-bytes` bounds a stream as it bounds a body: ended there, kept, marked.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let small = start_server_with(dir.clone(), skapi_server::ServeConfig { max_response_bytes: 100, ..config(engine, dir.path()) }).await;
    small.add_key("openai", &[]);
    let id = start(&small, &format!("{api}/sse?n=20&ms=5")).await;
    let (chunks, last, _) = read_to_end(&small, &id).await;
    assert_eq!(last["status"], "resolved", "{last}");
    let text = joined(&chunks);
    assert!(text.len() <= 100 && text.starts_with("data: {\"i\":1,"), "{text}");
    let short = id.split_once(&format!("#{SERVICE}:")).unwrap().1;
    let record = small.state.db.store().get_record(short).await.unwrap().unwrap();
    assert!(matches!(record.outcome, Some(skapi_server::domain::Outcome::Resolved { truncated: true, .. })), "{:?}", record.outcome);

    let mut realtime = streamed(&format!("{api}/sse"));
    realtime.as_object_mut().unwrap().remove("stream");
    realtime["realtime"] = json!(true);
    let (status, refused) = server.call("csr", "reader", realtime).await;
    assert_eq!((status, refused["message"].as_str()), (400, Some("\"realtime\" requires \"stream\": true.")), "{refused}");
}

/// Reads `csr-stream` from `since`: the chunks until `stop_after` of them (then the connection
/// is dropped) or the end, and the end event's page.
async fn push(server: &Server, id: &str, since: u64, stop_after: Option<usize>) -> (Vec<(u64, String)>, Option<Value>) {
    let mut response = server.open_stream("reader", id, Some(since)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (mut buffer, mut chunks) = (String::new(), Vec::new());
    while let Some(bytes) = response.chunk().await.unwrap() {
        buffer.push_str(std::str::from_utf8(&bytes).unwrap());
        while let Some(at) = buffer.find("\n\n") {
            let event: String = buffer.drain(..at + 2).collect();
            let field = |name: &str| event.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
            let data: Value = serde_json::from_str(&field("data: ").unwrap()).unwrap();
            match field("event: ").as_deref() {
                Some("chunk") => {
                    assert_eq!(field("id: ").unwrap(), data["seq"].to_string());
                    chunks.push((data["seq"].as_u64().unwrap(), data["txt"].as_str().unwrap().to_owned()));
                    if stop_after.is_some_and(|n| chunks.len() >= n) {
                        return (chunks, None);
                    }
                }
                Some("end") => return (chunks, Some(data)),
                other => panic!("unexpected event {other:?}: {event}"),
            }
        }
    }
    (chunks, None)
}

async fn chunks_are_pushed_as_they_are_stored_and_a_dropped_reader_resumes_from_its_seq(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let id = start(&server, &format!("{api}/sse?n=8&ms=60&split=1")).await;

    let (first, none) = push(&server, &id, 0, Some(3)).await;
    assert!(none.is_none());
    let resume_at = first.last().unwrap().0;
    let (rest, end) = push(&server, &id, resume_at, None).await;
    let end = end.expect("the end event");
    assert_eq!(
        (end["status"].as_str(), &end["stream"], end["last_seq"].as_u64()),
        (Some("resolved"), &json!(true), rest.last().map(|c| c.0)),
        "{end}"
    );

    let pushed: Vec<(u64, String)> = first.into_iter().chain(rest).collect();
    let seqs: Vec<u64> = pushed.iter().map(|c| c.0).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every chunk once, in order, across the reconnect");
    let (polled, _, _) = read_to_end(&server, &id).await;
    assert_eq!(pushed, polled, "push and polling deliver the same chunks");
    for form in secret_forms() {
        assert!(!joined(&pushed).contains(&form));
    }
    // A finished stream pushes only its end; a request that did not stream is refused.
    let (none, end) = push(&server, &id, seqs.len() as u64, None).await;
    assert!(none.is_empty() && end.is_some());
    let plain_id = start_plain(&server, &api).await;
    let (status, refused) = server.call("csr-stream", "reader", json!({"service": SERVICE, "owner": OWNER, "id": plain_id})).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("INVALID_REQUEST")), "{refused}");
}

async fn the_demo_chat_stand_in_streams_openai_events_through_the_server(engine: Engine) {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), skapi_server::ServeConfig { demo: true, ..config(engine, dir.path()) }).await;
    skapi_server::demo::ensure_keys(&server.state, &server.base).await.unwrap();
    let url = format!("{}/demo-api/v1/chat/completions", server.base);
    let body = json!({"service": "demo", "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post", "queue": "chat-1",
        "stream": true, "headers": {"Authorization": "Bearer $CLIENT_SECRET", "Content-Type": "application/json"},
        "data": {"model": "gpt-4o-mini", "stream": true, "messages": [{"role": "user", "content": "Tell me about sea otters"}]}});
    let (status, accepted) = server.call("csr", "reader", body).await;
    assert_eq!(status, 200, "{accepted}");
    let id = format!("[POST]{}#demo:{}", url.to_lowercase(), accepted["id"].as_str().unwrap());
    let (mut text, mut since) = (String::new(), 0);
    let last = loop {
        let (_, page) = server.call("csr-poll", "reader", json!({"service": "demo", "owner": OWNER, "id": id, "since": since})).await;
        for chunk in page["chunks"].as_array().unwrap_or(&Vec::new()) {
            text.push_str(chunk["txt"].as_str().unwrap());
        }
        since = page["last_seq"].as_u64().unwrap_or(since);
        if matches!(page["status"].as_str(), Some("resolved" | "failed")) {
            break page;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(last["status"], "resolved", "{last}");
    // What a chat page does with it: the deltas' content, joined.
    let answer: String = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert!(answer.starts_with("This is the offline stand-in answering \"Tell me about sea otters\""), "{answer}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

engine_tests! {
  both: [
    chunks_arrive_in_order_while_the_answer_is_written_and_the_secret_never_reaches_one,
    a_finished_stream_is_finalized_once_into_one_body,
    a_stream_that_breaks_or_is_refused_or_cancelled_ends_failed_with_its_chunks_kept,
    chunks_are_pushed_as_they_are_stored_and_a_dropped_reader_resumes_from_its_seq,
    the_demo_chat_stand_in_streams_openai_events_through_the_server,
  ],
}
