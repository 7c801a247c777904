//! Daily quotas and token budgets per key: requests and tokens a UTC day, per caller and in
//! total. Once one is used up the next call answers 429 `QUOTA_EXCEEDED` with `Retry-After` (to
//! the next UTC midnight) and nothing is sent — the call that crossed a token budget completed;
//! the counts outlive a restart and are shared by instances on one database.

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

fn budget_key(per_caller: Option<u64>, total: Option<u64>) -> NewKey {
    NewKey { daily_tokens_per_caller: per_caller, daily_tokens_total: total, ..quota_key(None, None) }
}

/// A `csr` through the `openai` key to `url` as `caller` (as in [`send`]), waited for until it
/// has ended when accepted (its tokens are counted as it ends): its status, answer and
/// `Retry-After`.
async fn spend(server: &Api, caller: &str, url: &str, stream: bool) -> (u16, Value, Option<u64>) {
    let (identifier, address) = caller.split_once('@').unwrap_or((caller, "203.0.113.1"));
    let mut body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"model": "m"}});
    if stream {
        body["stream"] = json!(true);
    }
    let response = server.send_forwarded("csr", identifier, Some(address), body).await;
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    if status == 200 {
        let full_id = format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), answer["id"].as_str().expect("an id"));
        let (status, done) = server.poll_until_done(identifier, &full_id).await;
        return (status, done, None);
    }
    (status, answer, retry)
}

/// Today's `{requests, tokens}` of each key, as `/admin/usage` reports them.
async fn today(server: &Server) -> Value {
    let url = format!("{}/admin/usage?service={SERVICE}", server.base);
    let response = server.http.get(url).bearer_auth("admin-token-for-quotas").send().await.unwrap();
    let report: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    report.as_array().unwrap().iter().map(|k| (k["name"].as_str().unwrap().to_owned(), k["today"].clone())).collect::<serde_json::Map<_, _>>().into()
}

async fn a_spent_token_budget_refuses_and_the_call_that_crossed_it_completed(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = skapi_server::ServeConfig { admin_token: "admin-token-for-quotas".into(), ..behind_a_proxy(engine, &dir) };
    let server = start_server_with(dir.clone(), config).await;
    server.state.keyring.add(budget_key(Some(100), Some(250)), false).await.unwrap();
    let (sixty, eighty) = (format!("{api}/usage?tokens=60"), format!("{api}/usage?tokens=80&style=anthropic"));

    let (status, answer, _) = spend(&server, "caller-a@203.0.113.1", &sixty, false).await;
    assert_eq!((status, &answer["usage"]["total_tokens"]), (200, &json!(60)), "{answer}");
    assert_eq!(spend(&server, "caller-a@203.0.113.1", &sixty, false).await.0, 200, "60 of 100 used: the call that crosses the budget runs");
    let (status, answer, retry) = spend(&server, "caller-a@203.0.113.1", &sixty, false).await;
    assert_eq!((status, answer["code"].as_str()), (429, Some("QUOTA_EXCEEDED")), "{answer}");
    assert_eq!(
        answer["message"],
        "The daily token budget of client secret \"openai\" is used up (100 tokens a day per caller); it renews at 00:00 UTC."
    );
    assert!(retry.is_some_and(|s| (1..=86_400).contains(&s)), "Retry-After to the next UTC midnight: {retry:?}");
    assert_eq!(spend(&server, "fresh-identifier@203.0.113.1", &sixty, false).await.0, 429, "a fresh identifier from the same address gains nothing");

    // 120 so far in total; Anthropic's input + output count as well.
    assert_eq!(spend(&server, "caller-b@203.0.113.2", &eighty, false).await.0, 200);
    assert_eq!(spend(&server, "caller-c@203.0.113.3", &eighty, false).await.0, 200, "200 of 250: it crosses the total and runs");
    let (status, answer, _) = spend(&server, "caller-d@203.0.113.4", &sixty, false).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (429, Some("The daily token budget of client secret \"openai\" is used up (250 tokens a day in total); it renews at 00:00 UTC."))
    );
    assert_eq!(stand_in.seen().iter().filter(|r| r.path == "/usage").count(), 4, "nothing refused was sent");
    assert_eq!(today(&server).await["openai"], json!({"requests": 4, "tokens": 280}));
    let rendered = skapi_server::metrics::render();
    for quota in ["daily_tokens_per_caller", "daily_tokens_total"] {
        assert!(rendered.contains(&format!(r#"skapi_quota_refused_total{{service="svc-test",key="openai",quota="{quota}"}}"#)), "{rendered}");
    }
}

/// A streamed answer's tokens are its last usage event's.
async fn a_streamed_answer_spends_the_tokens_of_its_usage_event(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = skapi_server::ServeConfig { admin_token: "admin-token-for-quotas".into(), ..behind_a_proxy(engine, &dir) };
    let server = start_server_with(dir.clone(), config).await;
    server.state.keyring.add(budget_key(None, Some(50)), false).await.unwrap();
    let url = format!("{api}/sse?n=2&ms=1&usage=70");
    assert_eq!(spend(&server, "caller-a", &url, true).await.0, 200);
    assert_eq!(today(&server).await["openai"], json!({"requests": 1, "tokens": 70}));
    assert_eq!(spend(&server, "caller-a", &url, true).await.0, 429);
    // Without a usage event nothing is counted (and a key without daily limits reports none).
    server.state.keyring.add(NewKey { name: "plain".into(), ..quota_key(None, None) }, false).await.unwrap();
    assert_eq!(today(&server).await["plain"], Value::Null);
}

/// Token counts are the store's as well.
async fn token_budgets_outlive_a_restart_and_are_shared_by_instances(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let url = format!("{api}/usage?tokens=60");
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = behind_a_proxy(engine, &dir);
    let first = start_server_with(dir.clone(), config.clone()).await;
    first.state.keyring.add(budget_key(Some(100), None), false).await.unwrap();
    assert_eq!(spend(&first, "caller-a", &url, false).await.0, 200);
    let second = start_server_with(dir.clone(), config).await;
    assert_eq!(spend(&second, "caller-a", &url, false).await.0, 200);
    assert_eq!(spend(&second, "caller-a", &url, false).await.0, 429, "counted across servers");
    assert_eq!(spend(&first, "caller-a", &url, false).await.0, 429);
}

/// A daily quota refuses under the key remembered from the caller's last request; the server
/// reads the key again before refusing, and counts the request against the per-minute limit
/// once, not once per read.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_under_a_remembered_key_counts_the_minute_once_on_sqlite() {
    let (api, _stand_in) = start_stand_in().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let server = start_server_with(dir.clone(), behind_a_proxy(Engine::Sqlite, &dir)).await;
    server.state.keyring.add(NewKey { rate_per_caller: Some(3), ..quota_key(Some(1), None) }, false).await.unwrap();
    let url = format!("{api}/echo");
    assert_eq!(send(&server, "caller-a", &url, "one").await.0, 200);
    let codes: Vec<_> = [send(&server, "caller-a", &url, "two").await, send(&server, "caller-a", &url, "three").await]
        .into_iter()
        .map(|(status, answer, _)| (status, answer["code"].as_str().map(str::to_owned)))
        .collect();
    let quota = (429, Some("QUOTA_EXCEEDED".to_owned()));
    assert_eq!(codes, [quota.clone(), quota], "three requests in the minute: the per-minute limit of 3 is not reached");
}

engine_tests! {
  both: [
    a_used_up_quota_refuses_until_the_day_turns,
    quotas_outlive_a_restart_and_are_shared_by_instances,
    a_spent_token_budget_refuses_and_the_call_that_crossed_it_completed,
    a_streamed_answer_spends_the_tokens_of_its_usage_event,
    token_budgets_outlive_a_restart_and_are_shared_by_instances,
  ],
}
