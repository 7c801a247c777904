//! Daily quotas per key: requests a UTC day per caller and in total. Once one is used up the
//! next call answers 429 `QUOTA_EXCEEDED` with `Retry-After` (to the next UTC midnight) and
//! nothing is sent; the counts outlive a restart and are shared by instances on one database.

use crate::support::*;
use serde_json::{json, Value};
use skapi_server::keyring::NewKey;
use std::sync::Arc;

fn quota_key(per_caller: Option<u32>, total: Option<u32>) -> NewKey {
    NewKey {
        service: SERVICE.into(),
        name: "openai".into(),
        secret: SECRET.into(),
        destinations: skapi_server::destination::Destinations::Any,
        daily_per_caller: per_caller,
        daily_total: total,
        ..Default::default()
    }
}

/// A `csr` as `caller` (`pid@address`, the address as a trusted proxy forwards it) sends it:
/// its status, answer and `Retry-After`.
async fn send(server: &Api, caller: &str, url: &str, tag: &str) -> (u16, Value, Option<u64>) {
    let (caller, address) = caller.split_once('@').unwrap_or((caller, "203.0.113.1"));
    let mut body = tagged(url, tag);
    body["service"] = json!(SERVICE);
    body["owner"] = json!(OWNER);
    let response = server.send_forwarded("csr", caller, Some(address), body).await;
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null), retry)
}

/// Settings for a server behind a proxy on loopback, so that each caller has an address of its
/// own.
fn behind_a_proxy(engine: Engine, dir: &tempfile::TempDir) -> skapi_server::ServeConfig {
    skapi_server::ServeConfig { trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()], ..config(engine, dir.path()) }
}

async fn a_used_up_quota_refuses_until_the_day_turns(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), behind_a_proxy(engine, &dir)).await;
    server.state.keyring.add(quota_key(Some(2), Some(3)), false).await.unwrap();
    let url = format!("{api}/echo");
    for tag in ["a1", "a2"] {
        assert_eq!(send(&server, "caller-a@203.0.113.1", &url, tag).await.0, 200, "{tag}");
    }
    let (status, answer, retry) = send(&server, "caller-a@203.0.113.1", &url, "a3").await;
    assert_eq!((status, answer["code"].as_str()), (429, Some("QUOTA_EXCEEDED")), "{answer}");
    assert_eq!(answer["message"], "The daily quota of client secret \"openai\" is used up (2 requests a day per caller); it renews at 00:00 UTC.");
    let retry = retry.expect("Retry-After");
    assert!((1..=86_400).contains(&retry), "seconds to the next UTC midnight: {retry}");
    let (status, _, _) = send(&server, "fresh-identifier@203.0.113.1", &url, "rotated").await;
    assert_eq!(status, 429, "a fresh public identifier from the same address gains nothing");
    let (status, answer, _) = send(&server, "caller-b@203.0.113.2", &url, "b1").await;
    assert_eq!(status, 200, "another caller has a quota of its own: {answer}");
    let (status, answer, _) = send(&server, "caller-c@203.0.113.3", &url, "c1").await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (429, Some("The daily quota of client secret \"openai\" is used up (3 requests a day in total); it renews at 00:00 UTC."))
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut sent = stand_in.tags();
    sent.sort();
    assert_eq!(sent, ["a1", "a2", "b1"], "nothing refused was sent");
    let rendered = skapi_server::metrics::render();
    assert!(rendered.contains(r#"skapi_quota_refused_total{service="svc-test",key="openai",quota="daily_per_caller"}"#), "{rendered}");
}

/// The counts are the store's: a restarted server (SQLite: its file) and every instance on one
/// PostgreSQL count on.
async fn quotas_outlive_a_restart_and_are_shared_by_instances(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let url = format!("{api}/echo");
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = behind_a_proxy(engine, &dir);
    let first = start_server_with(dir.clone(), config.clone()).await;
    first.state.keyring.add(quota_key(Some(2), None), false).await.unwrap();
    assert_eq!(send(&first, "caller-a", &url, "one").await.0, 200);
    // Another server on the same data (the same file, or the same database).
    let second = start_server_with(dir.clone(), config).await;
    assert_eq!(send(&second, "caller-a", &url, "two").await.0, 200);
    assert_eq!(send(&second, "caller-a", &url, "three").await.0, 429, "counted across servers");
    assert_eq!(send(&first, "caller-a", &url, "four").await.0, 429);
}

engine_tests! {
  both: [
    a_used_up_quota_refuses_until_the_day_turns,
    quotas_outlive_a_restart_and_are_shared_by_instances,
  ],
}
