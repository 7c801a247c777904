//! A key's request rules (JSON Schema): a request that does not satisfy them is refused before
//! anything is recorded or sent, naming the place and the rule; a queued request is checked
//! again just before it is sent; a change of the rules holds from the next call; rules that are
//! not JSON Schema are refused when saved.

use crate::support::*;
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-for-rules";

/// OpenAI's images API, as a page may use it: one image, of one model, of a known size.
fn images_schema(max_n: u32) -> Value {
    json!({
        "type": "object",
        "properties": {
            "method": {"const": "POST"},
            "data": {
                "type": "object",
                "required": ["model", "prompt"],
                "properties": {
                    "model": {"enum": ["gpt-image-1.5"]},
                    "n": {"type": "integer", "minimum": 1, "maximum": max_n},
                    "size": {"enum": ["1024x1024"]}
                }
            }
        }
    })
}

async fn admin(server: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response =
        server.http.request(method, format!("{}/admin{path}", server.base)).bearer_auth(ADMIN).body(body.to_string()).send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
}

fn image_request(url: &str, n: u32, tag: &str) -> Value {
    json!({"clientSecretName": "openai", "url": url, "method": "post",
           "headers": {"Authorization": "Bearer $CLIENT_SECRET"},
           "data": {"model": "gpt-image-1.5", "prompt": tag, "tag": tag, "n": n, "size": "1024x1024"}})
}

async fn a_request_outside_the_rules_is_refused_naming_the_place_and_the_rule(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| c.admin_token = ADMIN.into()).await;
    let key = json!({"service": SERVICE, "name": "openai", "secret": SECRET, "destinations": "any", "request_schema": images_schema(1)});
    let (status, created) = admin(&server, reqwest::Method::POST, "/keys", key).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["request_schema"], images_schema(1), "the rules are listed with the key");
    let url = format!("{api}/echo");

    let (status, answer) = server.call("csr", "page", with_service(image_request(&url, 2, "two"))).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["message"].as_str()),
        (400, Some("INVALID_REQUEST"), Some("/data/n: 2 is greater than the maximum of 1"))
    );
    let mut other_model = image_request(&url, 1, "dall-e");
    other_model["data"]["model"] = json!("dall-e-3");
    let (status, answer) = server.call("csr", "page", with_service(other_model)).await;
    assert_eq!((status, answer["message"].as_str()), (400, Some("/data/model: \"dall-e-3\" is not one of \"gpt-image-1.5\"")), "{answer}");
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, history) = server.call("csr-poll", "page", json!({"service": SERVICE, "id": prefix})).await;
    assert_eq!(history["list"], json!([]), "nothing was recorded");

    let id = server.submit("page", image_request(&url, 1, "one")).await;
    assert_eq!(server.poll_until_done("page", &id).await.0, 200, "inside the rules: sent");

    // Tightened while a queued request waits: it is checked again before it is sent.
    let slow = format!("{api}/slow?ms=400&q=r");
    let mut head = image_request(&slow, 1, "head");
    head["queue"] = json!("r");
    let mut waiting = image_request(&slow, 1, "waiting");
    waiting["queue"] = json!("r");
    let head = server.submit("page", head).await;
    let waiting = server.submit("page", waiting).await;
    stand_in.wait_for_first().await;
    let mut no_images = images_schema(1);
    no_images["properties"]["data"]["properties"]["n"]["maximum"] = json!(0);
    let (status, edited) = admin(&server, reqwest::Method::PATCH, &format!("/keys/{SERVICE}/openai"), json!({"request_schema": no_images})).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(server.poll_until_done("page", &head).await.0, 200, "the running one finishes");
    let (status, answer) = server.poll_until_done("page", &waiting).await;
    assert_eq!((status, answer["message"].as_str()), (400, Some("/data/n: 1 is greater than the maximum of 0")), "{answer}");
    let (status, _) = server.call("csr", "page", with_service(image_request(&url, 1, "after"))).await;
    assert_eq!(status, 400, "the next call meets the new rules");

    // Rules removed (`null`): anything the key's other limits allow goes.
    let (status, edited) = admin(&server, reqwest::Method::PATCH, &format!("/keys/{SERVICE}/openai"), json!({"request_schema": null})).await;
    assert_eq!((status, &edited["request_schema"]), (200, &Value::Null), "{edited}");
    let id = server.submit("page", image_request(&url, 5, "five")).await;
    assert_eq!(server.poll_until_done("page", &id).await.0, 200);
    let tags = stand_in.tags();
    assert!(!tags.iter().any(|t| ["two", "dall-e", "waiting", "after"].contains(&t.as_str())), "{tags:?}");
}

async fn rules_that_are_not_json_schema_are_refused_when_saved(engine: Engine) {
    let server = server_with(engine, |c| c.admin_token = ADMIN.into()).await;
    let key = |schema: Value| json!({"service": SERVICE, "name": "k", "secret": SECRET, "destinations": "any", "request_schema": schema});
    let (status, answer) = admin(&server, reqwest::Method::POST, "/keys", key(json!({"type": "no-such-type"}))).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not valid JSON Schema"), "{answer}");
    let (status, _) = admin(&server, reqwest::Method::POST, "/keys", key(json!({"type": "object"}))).await;
    assert_eq!(status, 201);
    let (status, answer) = admin(&server, reqwest::Method::PATCH, &format!("/keys/{SERVICE}/k"), json!({"request_schema": {"maximum": "one"}})).await;
    assert_eq!(status, 400, "{answer}");
    let (_, keys) = admin(&server, reqwest::Method::GET, "/keys", Value::Null).await;
    assert_eq!(keys[0]["request_schema"], json!({"type": "object"}), "a refused change changes nothing");
}

fn with_service(mut body: Value) -> Value {
    body["service"] = json!(SERVICE);
    body["owner"] = json!(OWNER);
    body
}

/// `keys add|edit --request-schema FILE` and `--no-request-schema`, and the daily quotas and
/// token budgets, from the command line.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sets_and_removes_request_rules_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("images.json");
    std::fs::write(&schema, images_schema(1).to_string()).unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"type\": \"no-such-type\"}").unwrap();
    let keys = |args: &[&str], stdin: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .args(["--data-dir", dir.path().to_str().unwrap(), "--service", SERVICE, "--name", "openai"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let refused = keys(&["keys", "add", "--any-destination", "--request-schema", bad.to_str().unwrap()], SECRET);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("not valid JSON Schema"), "{refused:?}");
    let added = keys(&["keys", "add", "--any-destination", "--request-schema", schema.to_str().unwrap()], SECRET);
    assert!(added.status.success(), "{added:?}");
    let listed = std::process::Command::new(BIN).args(["keys", "list", "--json", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["request_schema"], images_schema(1));
    let budgets = ["--daily-tokens-per-caller", "20000", "--daily-tokens-total", "1000000"];
    assert!(keys(&[&["keys", "edit", "--daily-per-caller", "2", "--daily-total", "5"][..], &budgets].concat(), "").status.success());
    let listed = std::process::Command::new(BIN).args(["keys", "list", "--json", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!((&listed[0]["daily_per_caller"], &listed[0]["daily_total"]), (&json!(2), &json!(5)), "the daily quotas");
    assert_eq!((&listed[0]["daily_tokens_per_caller"], &listed[0]["daily_tokens_total"]), (&json!(20000), &json!(1000000)), "the budgets");
    let table = std::process::Command::new(BIN).args(["keys", "list", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("requests caller 2 / total 5, tokens caller 20000 / total 1000000"), "{table}");
    assert!(keys(&["keys", "edit", "--daily-total", "0", "--daily-tokens-total", "0"], "").status.success());
    assert!(keys(&["keys", "edit", "--no-request-schema"], "").status.success());
    let listed = std::process::Command::new(BIN).args(["keys", "list", "--json", "--data-dir", dir.path().to_str().unwrap()]).output().unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["request_schema"], Value::Null);
    assert_eq!((&listed[0]["daily_per_caller"], &listed[0]["daily_total"]), (&json!(2), &Value::Null), "0 removes a quota");
    assert_eq!((&listed[0]["daily_tokens_per_caller"], &listed[0]["daily_tokens_total"]), (&json!(20000), &Value::Null), "and a budget");
}

engine_tests! {
  both: [
    a_request_outside_the_rules_is_refused_naming_the_place_and_the_rule,
    rules_that_are_not_json_schema_are_refused_when_saved,
  ],
}
