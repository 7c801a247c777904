//! Forwarding without a secret (Skapi's newest door, `forwardRequest` with no `secretName`): a
//! request that names no secret goes only to destinations the service's operator allowed — by
//! default none — with the same matching rules as a key's destinations, checked as it is
//! accepted and again as it is sent; queues, streams and the address guard as for any request.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const ADMIN: &str = "admin-token-for-forwarding";

/// `PUT /admin/services/{SERVICE}` with `body`.
async fn put_rules(server: &Server, body: Value) -> (u16, Value) {
    let response =
        server.http.put(format!("{}/admin/services/{SERVICE}", server.base)).bearer_auth(ADMIN).body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

/// A `csr` naming no secret, as `forwardRequest(null, {url, data})` sends it.
fn keyless(url: &str, tag: &str) -> Value {
    json!({"service": SERVICE, "owner": OWNER, "url": url, "method": "post", "headers": {"Content-Type": "application/json"},
           "data": {"tag": tag}, "stream": false, "realtime": false, "skapiHeaders": true})
}

fn full_id(url: &str, accepted: &Value) -> String {
    format!("[POST]{}#{SERVICE}:{}", url.to_lowercase(), accepted["id"].as_str().unwrap())
}

async fn keyless_requests_go_only_where_the_operator_allowed(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| c.admin_token = ADMIN.into()).await;
    let echo = format!("{api}/echo");
    let (status, answer) = server.call("csr", "page", keyless(&echo, "before")).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "none allowed by default: {answer}");

    let (status, rules) = put_rules(&server, json!({"forward_destinations": [echo, format!("{api}/sse")]})).await;
    assert_eq!(status, 200, "{rules}");
    assert_eq!(rules["forward_destinations"], json!([echo, format!("{api}/sse")]), "{rules}");
    assert_eq!(rules["cors_origins"], Value::Null, "the other rule stays as it was");

    let (status, accepted) = server.call("csr", "page", keyless(&echo, "allowed")).await;
    assert_eq!(status, 200, "{accepted}");
    let (status, answer) = server.poll_until_done("page", &full_id(&echo, &accepted)).await;
    assert_eq!(status, 200, "{answer}");
    let seen = stand_in.seen().into_iter().find(|s| s.path == "/echo").expect("it arrived");
    assert!(seen.headers.get("authorization").is_none(), "only what the caller supplied");
    assert_eq!(seen.headers["x-skapi-service"], SERVICE, "skapiHeaders as for any request");

    // Outside the list, a placeholder with no secret to fill: refused, nothing sent.
    let (status, answer) = server.call("csr", "page", keyless(&format!("{api}/status/200"), "outside")).await;
    assert_eq!((status, answer["message"].as_str()), (400, Some(skapi_server::destination::KEYLESS_NOT_ALLOWED)), "{answer}");
    let mut placeholder = keyless(&echo, "placeholder");
    placeholder["headers"]["Authorization"] = json!("Bearer $CLIENT_SECRET");
    let (status, answer) = server.call("csr", "page", placeholder).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{answer}");
    assert!(!stand_in.tags().iter().any(|t| t == "outside" || t == "placeholder"), "nothing was sent");

    // A stream and a queue, as for any request.
    let sse = format!("{api}/sse?n=2");
    let mut streamed = keyless(&sse, "streamed");
    streamed["stream"] = json!(true);
    streamed["queue"] = json!("chat");
    let (status, accepted) = server.call("csr", "page", streamed).await;
    assert_eq!(status, 200, "{accepted}");
    let full = full_id(&sse, &accepted);
    let mut ended = Value::Null;
    for _ in 0..200 {
        let (_, page) = server.call("csr-poll", "page", json!({"service": SERVICE, "id": full, "since": 0})).await;
        if page["status"] == "resolved" {
            ended = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ended["chunks"].as_array().is_some_and(|c| !c.is_empty()), "{ended}");

    // Removed: the next request is refused at once (no restart), and a queued one accepted
    // before is checked again before it is sent.
    let slow = format!("{api}/slow?ms=400&q=f");
    put_rules(&server, json!({"forward_destinations": [format!("{api}/slow")]})).await;
    let mut head = keyless(&slow, "head");
    head["queue"] = json!("f");
    let mut waiting = keyless(&slow, "waiting");
    waiting["queue"] = json!("f");
    let (_, head) = server.call("csr", "page", head).await;
    let (_, waiting) = server.call("csr", "page", waiting).await;
    stand_in.wait_for_first().await;
    let (status, rules) = put_rules(&server, json!({"forward_destinations": null})).await;
    assert_eq!((status, &rules["forward_destinations"]), (200, &Value::Null), "{rules}");
    let (status, answer) = server.call("csr", "page", keyless(&echo, "after")).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "{answer}");
    assert_eq!(server.poll_until_done("page", &full_id(&slow, &head)).await.0, 200, "the running one finishes");
    let (status, answer) = server.poll_until_done("page", &full_id(&slow, &waiting)).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "checked again before sending: {answer}");
    assert!(!stand_in.tags().iter().any(|t| t == "waiting" || t == "after"), "{:?}", stand_in.tags());
}

/// The admin API checks what it is given, and a refused change changes nothing.
async fn forward_rules_are_checked_as_key_destinations_are(engine: Engine) {
    let server = server_with(engine, |c| c.admin_token = ADMIN.into()).await;
    for bad in [json!([]), json!(["not a url"]), json!(["ftp://files.example.com"]), json!(["https://user:pw@api.example.com/v1"])] {
        let (status, answer) = put_rules(&server, json!({"forward_destinations": bad, "cors_origins": ["https://app.example"]})).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{bad}: {answer}");
    }
    let (_, rules) = put_rules(&server, json!({})).await;
    assert_eq!((&rules["forward_destinations"], &rules["cors_origins"]), (&Value::Null, &Value::Null), "nothing was written: {rules}");
    let (status, rules) = put_rules(&server, json!({"forward_destinations": ["https://*.example.com/v1/"]})).await;
    assert_eq!((status, &rules["forward_destinations"]), (200, &json!(["https://*.example.com/v1/"])), "{rules}");
    let (status, answer) = put_rules(&server, json!({"forward_destination": ["https://x.example.com"]})).await;
    assert_eq!(status, 400, "a misspelt rule is refused, not ignored: {answer}");
    let response = server.http.get(format!("{}/admin/services/{SERVICE}", server.base)).send().await.unwrap();
    assert_eq!(response.status(), 401, "behind the admin token");
}

/// The address guard holds for requests without a secret as for any other.
async fn keyless_requests_meet_the_address_guard(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| {
        c.admin_token = ADMIN.into();
        c.allow_private_upstreams = false;
    })
    .await;
    put_rules(&server, json!({"forward_destinations": [format!("{api}/echo")]})).await;
    let echo = format!("{api}/echo");
    let (status, accepted) = server.call("csr", "page", keyless(&echo, "private")).await;
    assert_eq!(status, 200, "{accepted}");
    let (status, answer) = server.poll_until_done("page", &full_id(&echo, &accepted)).await;
    assert_eq!((status, answer["code"].as_str()), (502, Some("REFUSED")), "{answer}");
    assert!(stand_in.seen().is_empty());
}

engine_tests! {
  both: [
    keyless_requests_go_only_where_the_operator_allowed,
    forward_rules_are_checked_as_key_destinations_are,
    keyless_requests_meet_the_address_guard,
  ],
}

/// `skapi-server services forward` on the data directory of a running server: the next request
/// sees it (no restart); `--none` takes it back; a bad destination is refused with its reason.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sets_and_removes_forwarding_for_a_running_server_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    let forward = |args: &[&str]| {
        std::process::Command::new(BIN).args(["services", "forward", "--service", SERVICE, "--data-dir"]).arg(dir.path()).args(args).output().unwrap()
    };
    let (mut server, client) = spawn_server(dir.path(), std::process::Stdio::null(), &[]);
    let echo = format!("{api}/echo");
    assert_eq!(client.call("csr", "page", keyless(&echo, "before")).await.0, 400);

    let bad = forward(&["--destination", "ftp://files.example.com"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("must be an http(s) URL"), "{bad:?}");
    let set = forward(&["--destination", &echo]);
    assert!(set.status.success(), "{set:?}");
    assert!(String::from_utf8_lossy(&set.stderr).contains(&echo), "it says what it set: {set:?}");
    let (status, accepted) = client.call("csr", "page", keyless(&echo, "allowed")).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(client.poll_until_done("page", &full_id(&echo, &accepted)).await.0, 200);

    assert!(forward(&["--none"]).status.success());
    assert_eq!(client.call("csr", "page", keyless(&echo, "after")).await.0, 400);
    assert_eq!(stand_in.tags(), vec!["allowed"]);
    server.kill().unwrap();
    server.wait().unwrap();
}
