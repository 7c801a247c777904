//! The HTTP API over real loopback HTTP, against a stand-in third-party API.

use crate::support::*;
use serde_json::{json, Value};

fn seed_request(api: &str) -> Value {
    json!({
        "service": SERVICE, "owner": OWNER,
        "clientSecretName": "openai",
        "url": format!("{api}/v1/images/generations"),
        "method": "post",
        "headers": {"Content-Type": "application/json", "Authorization": "Bearer $CLIENT_SECRET"},
        "data": {"model": "gpt-image-1.5", "prompt": "A cute baby sea otter", "n": 1, "size": "1024x1024"}
    })
}

fn full_id_v2(method: &str, url: &str, short: &str) -> String {
    format!("[{method}]{}#{SERVICE}:{short}", url.to_lowercase())
}

async fn seed_openai_example_runs_with_the_real_secret_and_keeps_the_placeholder(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);

    let (status, accepted) = server.call("csr", "caller-a", seed_request(&api)).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["status"], "pending");
    let short = accepted["id"].as_str().unwrap();
    assert!(skapi_core::id::is_short(short), "{short}");

    let url = format!("{api}/v1/images/generations");
    let (status, result) = server.poll_until_done("caller-a", &full_id_v2("POST", &url, short)).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["data"][0]["b64_json"], "image of A cute baby sea otter");

    let seen = stand_in.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].headers["authorization"], format!("Bearer {SECRET}"));
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let sent: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(sent, json!({"model": "gpt-image-1.5", "prompt": "A cute baby sea otter", "n": 1, "size": "1024x1024"}));

    let (status, page) = server
        .call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": format!("[POST]{}#{SERVICE}:", url.to_lowercase())}))
        .await;
    assert_eq!(status, 200);
    let item = &page["list"][0];
    assert_eq!(item["id"], short, "history ids are the ids csr answered");
    assert_eq!(item["stts"], "resolved");
    assert_eq!(item["rslv"]["status_code"], 200);
    assert_eq!(item["reqbdy"]["prompt"], "A cute baby sea otter");
    assert!(item["stmp"].as_u64().unwrap() <= item["utmp"].as_u64().unwrap());
    assert_eq!(item["expt"].as_u64().unwrap() - item["stmp"].as_u64().unwrap(), 15 * 60 * 1000);
    assert_eq!(page["endOfList"], true);

    for (path, bytes) in server.data_files() {
        assert!(!contains_bytes(&bytes, SECRET.as_bytes()), "{path} holds the secret in clear");
    }
}

async fn get_with_the_secret_in_params(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("maps", &[]);
    let url = format!("{api}/maps");
    let (status, accepted) = server
        .call(
            "csr",
            "caller-a",
            json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "maps", "url": url, "method": "GET",
                   "params": {"key": "$CLIENT_SECRET", "q": "Seoul"}}),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    let short = accepted["id"].as_str().unwrap();
    let (status, result) = server.poll_until_done("caller-a", &full_id_v2("GET", &url, short)).await;
    assert_eq!((status, result), (200, json!({"place": "Seoul"})));
    let seen = stand_in.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].query["key"], SECRET);
    assert!(seen[0].body.is_empty());

    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": format!("[GET]{}#{SERVICE}:", url.to_lowercase())})).await;
    assert_eq!(page["list"][0]["reqbdy"], json!({"key": "$CLIENT_SECRET", "q": "Seoul"}));
}

async fn speaks_the_1_5_8_form_with_queue_ids_and_pending_only(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/slow");
    // 1.5.8: `poll` boolean, expires in seconds, service in the body of csr only.
    let mut body = seed_request(&api);
    body["url"] = json!(url);
    body["poll"] = json!(true);
    body["queue"] = json!("image-jobs");
    body["expires"] = json!(3600);
    let (status, accepted) = server.call("csr", "", body).await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["queue_name"], "image-jobs");
    assert_eq!(accepted["in_queue"], 1);
    let short = accepted["id"].as_str().unwrap().to_owned();
    let full = format!("[POST]{}#image-jobs:{short}", url.to_lowercase());

    // While it runs, a 1.5.8 poll (no service in the body) sees only `pending`.
    let mut statuses = Vec::new();
    loop {
        let (status, answer) = server.call("csr-poll", "", json!({"id": full})).await;
        assert_eq!(status, 200, "{answer}");
        if answer["id"] == json!(short) {
            statuses.push(answer["status"].as_str().unwrap().to_owned());
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(answer["method"], "POST");
        break;
    }
    assert!(!statuses.is_empty() && statuses.iter().all(|s| s == "pending"), "{statuses:?}");

    let (_, page) = server.call("csr-poll", "", json!({"id": format!("[POST]{}#image-jobs:", url.to_lowercase())})).await;
    assert_eq!(page["list"][0]["id"], json!(short));
    assert_eq!(page["list"][0]["qid"], "image-jobs");
    let expires = page["list"][0]["expt"].as_u64().unwrap() - page["list"][0]["stmp"].as_u64().unwrap();
    assert_eq!(expires, 3_600_000, "wire seconds are stored as ms");
    // The 1.5.8 prefix without the queue does not list queued requests.
    let (_, page) = server.call("csr-poll", "", json!({"id": format!("[POST]{}:", url.to_lowercase())})).await;
    assert_eq!(page["list"], json!([]));
}

async fn validates_everything_again(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let cases = [
        (json!({"clientSecretName": "nope"}), 404, "NOT_EXISTS", "Client secret \"nope\" does not exist."),
        (
            json!({"headers": {"Authorization": "Bearer x"}}),
            400,
            "INVALID_PARAMETER",
            "At least one parameter value should include \"$CLIENT_SECRET\" in \"data\" or \"headers\".",
        ),
        (json!({"method": "trace"}), 400, "INVALID_PARAMETER", skapi_core::method::INVALID_METHOD),
        (json!({"url": "not a url"}), 400, "INVALID_PARAMETER", "\"not a url\" is an invalid url."),
        (json!({"url": "http://$CLIENT_SECRET.evil.io/"}), 400, "INVALID_REQUEST", "Destination is not allowed for this client secret."),
        // No secret named (Skapi's newest door): forwarded only where the operator allowed, and
        // nowhere is allowed.
        (
            json!({"clientSecretName": null}),
            400,
            "INVALID_REQUEST",
            "Service \"svc-test\" forwards no request without \"secretName\": its operator has allowed no destination for them.",
        ),
        (json!({"headers": {"Bad Header": "$CLIENT_SECRET"}}), 400, "INVALID_PARAMETER", "Header \"Bad Header\" is not a valid HTTP header."),
        (json!({"expires": -5}), 400, "INVALID_PARAMETER", "\"expires\" should be a positive number."),
        // Skapi's current wire: `secretName` wins over `clientSecretName`; `x-skapi-*` is the server's.
        (json!({"secretName": "nope", "clientSecretName": "openai"}), 404, "NOT_EXISTS", "Client secret \"nope\" does not exist."),
        (
            json!({"headers": {"Authorization": "Bearer $CLIENT_SECRET", "X-Skapi-User": "admin"}}),
            400,
            "INVALID_PARAMETER",
            "\"headers\" cannot set \"X-Skapi-User\": the \"x-skapi-\" prefix is reserved. Use \"skapiHeaders\" to tell the destination who the caller is.",
        ),
        (
            json!({"skapiHeaders": "user"}),
            400,
            "INVALID_PARAMETER",
            "\"skapiHeaders\" should be type: <boolean> or { user?: boolean; service?: boolean }.",
        ),
    ];
    for (patch, status, code, message) in cases {
        let mut body = seed_request(&api);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (got_status, answer) = server.call("csr", "caller-a", body).await;
        assert_eq!((got_status, answer["code"].as_str(), answer["message"].as_str()), (status, Some(code), Some(message)), "{patch}");
    }
    let response = server.http.post(format!("{}/csr", server.base)).body("{not json").send().await.unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["code"], "INVALID_PARAMETER");
    let (status, answer) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": "garbage"})).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")));
    assert!(stand_in.seen().is_empty(), "nothing invalid was sent");
}

/// The poll that follows a request's end is answered from the server's memory; every later
/// one from the store. Both say the same, for answers and for failures alike.
async fn the_first_poll_after_the_end_answers_as_the_store_does(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    for path in ["v1/images/generations", "status/503", "leak?k=$CLIENT_SECRET"] {
        let url = format!("{api}/{path}");
        let mut body = seed_request(&api);
        body["url"] = json!(url);
        let (_, accepted) = server.call("csr", "caller-a", body).await;
        let short = accepted["id"].as_str().unwrap();
        let full = full_id_v2("POST", &url, short);
        for _ in 0..200 {
            if server.state.engine.recent.holds(short) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(server.state.engine.recent.holds(short), "{path}: kept once ended");
        let from_memory = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": full})).await;
        assert!(!server.state.engine.recent.holds(short), "read once");
        let from_store = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "owner": OWNER, "id": full})).await;
        assert_eq!(from_memory, from_store, "{path}");
        assert!(matches!(from_store.0, 200 | 502), "{path}: {from_store:?}");
    }
}

async fn failures_keep_status_and_body_and_never_the_secret(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);

    let mut body = seed_request(&api);
    body["url"] = json!(format!("{api}/status/503"));
    let (_, accepted) = server.call("csr", "caller-a", body).await;
    let full = full_id_v2("POST", &format!("{api}/status/503"), accepted["id"].as_str().unwrap());
    let (status, answer) = server.poll_until_done("caller-a", &full).await;
    assert_eq!(status, 502);
    assert_eq!(answer["code"], "THIRD_PARTY_ERROR");
    assert_eq!(answer["status_code"], 503);
    assert_eq!(answer["body"], json!({"status": 503}));

    let mut body = seed_request(&api);
    body["url"] = json!(format!("{api}/leak?k=$CLIENT_SECRET"));
    let (_, accepted) = server.call("csr", "caller-a", body).await;
    let full = full_id_v2("POST", &format!("{api}/leak?k=$CLIENT_SECRET"), accepted["id"].as_str().unwrap());
    let (status, answer) = server.poll_until_done("caller-a", &full).await;
    assert_eq!(status, 502);
    assert_eq!(answer["body"]["echo"], "your key $CLIENT_SECRET is wrong");
    assert!(!answer.to_string().contains(SECRET));

    // Nobody listens on port 9 of loopback: a network error, not a hang.
    let mut body = seed_request(&api);
    body["url"] = json!("http://127.0.0.1:9/v1?key=$CLIENT_SECRET");
    let (_, accepted) = server.call("csr", "caller-a", body).await;
    let full = full_id_v2("POST", "http://127.0.0.1:9/v1?key=$CLIENT_SECRET", accepted["id"].as_str().unwrap());
    let (status, answer) = server.poll_until_done("caller-a", &full).await;
    assert_eq!((status, answer["code"].as_str()), (502, Some("NETWORK_ERROR")), "{answer}");
    assert!(!answer.to_string().contains(SECRET));

    for (path, bytes) in server.data_files() {
        assert!(!contains_bytes(&bytes, SECRET.as_bytes()), "{path} holds the secret in clear");
    }
}

async fn form_urlencoded_bodies_follow_the_content_type(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let mut body = seed_request(&api);
    body["url"] = json!(format!("{api}/form"));
    body["headers"] = json!({"Content-Type": "application/x-www-form-urlencoded"});
    body["data"] = json!({"token": "$CLIENT_SECRET", "n": 2});
    let (_, accepted) = server.call("csr", "caller-a", body).await;
    let full = full_id_v2("POST", &format!("{api}/form"), accepted["id"].as_str().unwrap());
    let (status, _) = server.poll_until_done("caller-a", &full).await;
    assert_eq!(status, 200);
    let sent = String::from_utf8(stand_in.seen()[0].body.to_vec()).unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(sent.as_bytes()).into_owned().collect();
    assert!(pairs.contains(&("token".into(), SECRET.into())), "{sent}");
    assert!(pairs.contains(&("n".into(), "2".into())), "{sent}");
}

async fn no_caller_reads_another_callers_records(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/v1/images/generations");
    let (_, accepted) = server.call("csr", "caller-a", seed_request(&api)).await;
    let full = full_id_v2("POST", &url, accepted["id"].as_str().unwrap());
    server.poll_until_done("caller-a", &full).await;

    let (status, answer) = server.call("csr-poll", "caller-b", json!({"service": SERVICE, "id": full})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_EXISTS")));
    let prefix = format!("[POST]{}#{SERVICE}:", url.to_lowercase());
    let (_, page) = server.call("csr-poll", "caller-b", json!({"service": SERVICE, "id": prefix})).await;
    assert_eq!(page["list"], json!([]));
    let (_, page) = server.call("csr-poll", "caller-a", json!({"service": SERVICE, "id": prefix})).await;
    assert_eq!(page["list"].as_array().unwrap().len(), 1);
}

async fn secrets_only_go_to_their_destinations_and_not_to_private_addresses(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&format!("{api}/v1")]);
    let mut body = seed_request(&api);
    body["url"] = json!(format!("{api}/v10/steal"));
    let (status, answer) = server.call("csr", "caller-a", body).await;
    assert_eq!(
        (status, answer["code"].as_str(), answer["message"].as_str()),
        (400, Some("INVALID_REQUEST"), Some("Destination is not allowed for this client secret."))
    );

    // Without --allow-private-upstreams, loopback is refused at send time.
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let strict = start_server_with(dir.clone(), skapi_server::ServeConfig { allow_private_upstreams: false, ..config(engine, dir.path()) }).await;
    strict.add_key("openai", &[]);
    let (_, accepted) = strict.call("csr", "caller-a", seed_request(&api)).await;
    let full = full_id_v2("POST", &format!("{api}/v1/images/generations"), accepted["id"].as_str().unwrap());
    let (status, answer) = strict.poll_until_done("caller-a", &full).await;
    assert_eq!((status, answer["code"].as_str()), (502, Some("REFUSED")), "{answer}");
    let mut body = seed_request(&api);
    body["url"] = json!("http://localhost:9/v1");
    let (_, accepted) = strict.call("csr", "caller-a", body).await;
    let (_, answer) = strict.poll_until_done("caller-a", &full_id_v2("POST", "http://localhost:9/v1", accepted["id"].as_str().unwrap())).await;
    assert_eq!(answer["code"], "REFUSED", "{answer}");
    assert!(stand_in.seen().is_empty());
}

async fn service_check_and_cors_preflight(engine: Engine) {
    let server = start_server(engine).await;
    let response = server.http.get(format!("{}/service?service=s1&owner=o&refresh=false", server.base)).send().await.unwrap();
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["service"], "s1");
    let preflight = server
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/csr", server.base))
        .header("origin", "http://page.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-meta, content-type, authorization, x-access-token")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_owned();
    for h in ["content-meta", "authorization", "x-access-token"] {
        assert!(allowed.contains(h), "{allowed}");
    }
}

engine_tests! {
  both: [
    seed_openai_example_runs_with_the_real_secret_and_keeps_the_placeholder,
    get_with_the_secret_in_params,
    speaks_the_1_5_8_form_with_queue_ids_and_pending_only,
    validates_everything_again,
    the_first_poll_after_the_end_answers_as_the_store_does,
    failures_keep_status_and_body_and_never_the_secret,
    form_urlencoded_bodies_follow_the_content_type,
    no_caller_reads_another_callers_records,
    secrets_only_go_to_their_destinations_and_not_to_private_addresses,
    service_check_and_cors_preflight,
  ],
}
