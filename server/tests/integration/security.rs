//! The attacks a secret proxy meets, each attempted against a running server: every one is
//! refused, and the secret's bytes appear in no answer, no database file and no log line.

mod abuse;
mod leaks;

use crate::support::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use skapi_server::auth::AuthConfig;
use skapi_server::ServeConfig;
use std::path::PathBuf;
use std::time::Duration;

const HS_SECRET: &str = "test-hs256-secret-of-at-least-32-bytes!";
const ISSUER: &str = "https://issuer.test";
const AUDIENCE: &str = "skapi-test";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn now_s() -> u64 {
    skapi_server::clock::now_ms() / 1000
}

fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "exp": now_s() + 600, "iat": now_s()})
}

fn hs256(claims: &Value, secret: &[u8]) -> String {
    encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret)).unwrap()
}

fn signed(alg: Algorithm, kid: &str, pem: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(pem)).unwrap();
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem).unwrap(),
        _ => EncodingKey::from_ec_pem(&pem).unwrap(),
    };
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    encode(&header, claims, &key).unwrap()
}

fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hs_auth(config: &mut ServeConfig) {
    config.auth = AuthConfig {
        hs256_secret: Some(HS_SECRET.as_bytes().to_vec()),
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        ..Default::default()
    };
}

impl Api {
    /// `call` with a user token in `Authorization`, as skapi-js sends it (no `Bearer`).
    async fn call_as(&self, token: &str, endpoint: &str, body: Value) -> (u16, Value) {
        let meta = json!({"public_identifier": "", "service": SERVICE, "owner": OWNER});
        let response = self
            .http
            .post(format!("{}/{endpoint}", self.base))
            .header("content-meta", meta.to_string())
            .header("authorization", token)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null))
    }
}

fn locked_request(api: &str) -> Value {
    json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "locked", "url": format!("{api}/v1/images/generations"),
           "method": "post", "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"prompt": "otter"}})
}

async fn add_locked(server: &Server) {
    let key = skapi_server::keyring::NewKey {
        service: SERVICE.into(),
        name: "locked".into(),
        secret: SECRET.into(),
        locked: true,
        destinations: skapi_server::destination::Destinations::Any,
        ..Default::default()
    };
    server.state.keyring.add(key, false).await.unwrap();
}

async fn locked_keys_need_a_verified_user_and_records_belong_to_them(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, hs_auth).await;
    add_locked(&server).await;

    let (status, answer) = server.call("csr", "anon", locked_request(&api)).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("UNAUTHORIZED")), "no token: {answer}");

    let none_alg = format!("{}.{}.", b64url(br#"{"alg":"none","typ":"JWT"}"#), b64url(claims("alice").to_string().as_bytes()));
    let mut expired = claims("alice");
    expired["exp"] = json!(now_s() - 120);
    let mut wrong_aud = claims("alice");
    wrong_aud["aud"] = json!("someone-else");
    let mut wrong_iss = claims("alice");
    wrong_iss["iss"] = json!("https://evil.test");
    let mut no_exp = claims("alice");
    no_exp.as_object_mut().unwrap().remove("exp");
    let attacks = [
        ("forged", hs256(&claims("alice"), b"another-secret-that-is-long-enough-too")),
        ("expired", hs256(&expired, HS_SECRET.as_bytes())),
        ("wrong audience", hs256(&wrong_aud, HS_SECRET.as_bytes())),
        ("wrong issuer", hs256(&wrong_iss, HS_SECRET.as_bytes())),
        ("no exp", hs256(&no_exp, HS_SECRET.as_bytes())),
        ("alg none", none_alg),
        ("RS256 on an HS256 server", signed(Algorithm::RS256, "test-rsa", "test-rsa.pem", &claims("alice"))),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in &attacks {
        let (status, answer) = server.call_as(token, "csr", locked_request(&api)).await;
        assert_eq!((status, answer["code"].as_str()), (401, Some("UNAUTHORIZED")), "{what}: {answer}");
    }
    assert!(stand_in.seen().is_empty(), "nothing was sent for a refused token");

    let alice = hs256(&claims("alice"), HS_SECRET.as_bytes());
    let (status, accepted) = server.call_as(&alice, "csr", locked_request(&api)).await;
    assert_eq!(status, 200, "{accepted}");
    let full = format!("[POST]{}/v1/images/generations#{SERVICE}:{}", api.to_lowercase(), accepted["id"].as_str().unwrap());
    let mut answer = Value::Null;
    for _ in 0..100 {
        let (_, a) = server.call_as(&format!("Bearer {alice}"), "csr-poll", json!({"service": SERVICE, "id": full})).await;
        answer = a;
        if answer["data"].is_array() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(answer["data"][0]["b64_json"], "image of otter");
    let bob = hs256(&claims("bob"), HS_SECRET.as_bytes());
    let (status, answer) = server.call_as(&bob, "csr-poll", json!({"service": SERVICE, "id": full})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_EXISTS")), "bob cannot read alice's record");
    let (status, answer) = server.call_as(&bob, "csr-cancel", json!({"service": SERVICE, "id": full})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("NOT_EXISTS")), "nor cancel it");
    let (status, _) = server.call("csr-poll", "anon", json!({"service": SERVICE, "id": full})).await;
    assert_eq!(status, 404, "nor can an anonymous caller");
}

/// `skapiHeaders` tells the destination who calls, in headers the server writes from what it
/// verified: `x-skapi-user` is the token's `sub` (absent for a caller without one, whatever
/// the body says), `x-skapi-service` the service; a caller's own `x-skapi-*` never gets through.
async fn skapi_headers_come_from_the_verified_identity_alone(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, hs_auth).await;
    server.add_key("openai", &[]);
    let url = format!("{api}/echo");
    let body = |tag: &str, asked: Value| {
        let mut body = tagged(&url, tag);
        body["service"] = json!(SERVICE);
        body["owner"] = json!(OWNER);
        body["skapiHeaders"] = asked;
        body
    };
    let alice = hs256(&claims("alice"), HS_SECRET.as_bytes());
    for (tag, token, asked, user, service) in [
        ("both", Some(&alice), json!(true), Some("alice"), Some(SERVICE)),
        ("user", Some(&alice), json!({"user": true}), Some("alice"), None),
        ("service", Some(&alice), json!({"service": true}), None, Some(SERVICE)),
        ("anonymous", None, json!(true), None, Some(SERVICE)),
        ("none", Some(&alice), json!(false), None, None),
    ] {
        let (status, accepted) = match token {
            Some(token) => server.call_as(token, "csr", body(tag, asked)).await,
            None => server.call("csr", "anon", body(tag, asked)).await,
        };
        assert_eq!(status, 200, "{tag}: {accepted}");
        for _ in 0..100 {
            if stand_in.tags().iter().any(|t| t == tag) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seen = stand_in.seen().into_iter().find(|s| serde_json::from_slice::<Value>(&s.body).is_ok_and(|b| b["tag"] == tag)).expect(tag);
        let header = |name: &str| seen.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
        assert_eq!((header("x-skapi-user").as_deref(), header("x-skapi-service").as_deref()), (user, service), "{tag}");
    }
    let mut forged = body("forged", json!(true));
    forged["headers"]["X-Skapi-User"] = json!("admin");
    let (status, answer) = server.call("csr", "anon", forged).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{answer}");
    assert!(!stand_in.tags().contains(&"forged".to_owned()), "nothing was sent");
}

async fn jwks_accepts_rs256_and_es256_and_refuses_algorithm_confusion(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| {
        c.auth = AuthConfig { jwks_file: Some(fixture("test-jwks.json")), audience: Some(AUDIENCE.into()), ..Default::default() }
    })
    .await;
    add_locked(&server).await;
    for token in
        [signed(Algorithm::RS256, "test-rsa", "test-rsa.pem", &claims("carol")), signed(Algorithm::ES256, "test-ec", "test-ec.pem", &claims("carol"))]
    {
        let (status, answer) = server.call_as(&token, "csr", locked_request(&api)).await;
        assert_eq!(status, 200, "{answer}");
    }
    // The RSA public key (which anyone may have) used as an HMAC secret.
    let public_pem = std::fs::read(fixture("test-rsa-public.pem")).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-rsa".into());
    let confused = encode(&header, &claims("mallory"), &EncodingKey::from_secret(&public_pem)).unwrap();
    let es_as_rs = {
        let mut t = signed(Algorithm::ES256, "test-ec", "test-ec.pem", &claims("mallory"));
        let (h, rest) = t.split_once('.').unwrap();
        let _ = h;
        t = format!("{}.{rest}", b64url(br#"{"alg":"RS256","kid":"test-ec"}"#));
        t
    };
    for (what, token) in [
        ("HS256 with the public key", confused),
        ("unknown kid", signed(Algorithm::RS256, "nope", "test-rsa.pem", &claims("mallory"))),
        ("alg swapped", es_as_rs),
    ] {
        let (status, answer) = server.call_as(&token, "csr", locked_request(&api)).await;
        assert_eq!((status, answer["code"].as_str()), (401, Some("UNAUTHORIZED")), "{what}: {answer}");
    }
}

async fn exfiltration_urls_and_look_alike_hosts_are_refused(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let (evil, evil_stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&format!("{api}/v1")]);
    let host_port = api.trim_start_matches("http://");
    let port = host_port.rsplit(':').next().unwrap();
    let attempts = [
        format!("{evil}/?{api}/v1"),
        format!("{evil}/v1/images"),
        format!("http://127.0.0.1.evil.test:{port}/v1/x"),
        format!("http://localhost:{port}/v1/x"),
        format!("http://user@{host_port}/v1/x"),
        format!("http://{host_port}@evil.test/v1/x"),
        format!("{api}/v1/../admin"),
        format!("{api}/v1/%2e%2e/admin"),
        format!("{api}/v1\\..\\admin"),
        format!("{api}/v10/x"),
        format!("http://$CLIENT_SECRET.{host_port}/v1/x"),
        format!("https://{host_port}/v1/x"),
    ];
    for url in attempts {
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET"}});
        let (status, answer) = server.call("csr", "a", body).await;
        assert_eq!(
            (status, answer["code"].as_str(), answer["message"].as_str()),
            (400, Some("INVALID_REQUEST"), Some("Destination is not allowed for this client secret.")),
            "{url}: {answer}"
        );
    }
    assert!(stand_in.seen().is_empty() && evil_stand_in.seen().is_empty());
}

async fn redirects_are_not_followed(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let (evil, evil_stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&api]);
    let url = format!("{api}/redirect?to={evil}/steal");
    let id = server
        .submit("a", json!({"clientSecretName": "openai", "url": url, "method": "get", "headers": {"Authorization": "Bearer $CLIENT_SECRET"}}))
        .await;
    let (status, body) = server.poll_until_done("a", &id).await;
    assert_eq!((status, body), (200, json!("moved")), "the 302 is the answer");
    assert!(evil_stand_in.seen().is_empty(), "the redirect target got nothing");
}

async fn private_loopback_and_metadata_addresses_are_refused(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| c.allow_private_upstreams = false).await;
    server.add_key("openai", &[]);
    let port = api.rsplit(':').next().unwrap();
    for url in [
        api.clone(),
        format!("http://localhost:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/x".to_owned(),
        "http://100.64.0.1/x".to_owned(),
        "http://0.0.0.0/x".to_owned(),
        "http://[fd00:ec2::254]/x".to_owned(),
        "http://224.0.0.1/x".to_owned(),
    ] {
        let id = server.submit("a", json!({"clientSecretName": "openai", "url": format!("{url}?k=$CLIENT_SECRET"), "method": "get"})).await;
        let (status, answer) = server.poll_until_done("a", &id).await;
        assert_eq!((status, answer["code"].as_str()), (502, Some("REFUSED")), "{url}: {answer}");
    }
    assert!(stand_in.seen().is_empty());
}

async fn placeholder_positions_rate_limits_sizes_and_cors(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    // Behind a proxy, so that callers come from addresses of their own.
    let server = server_with(engine, |c| {
        c.max_request_bytes = 4096;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |who: &str| Some(format!("198.51.100.{}", who.as_bytes()[0]));
    let key = skapi_server::keyring::NewKey {
        service: SERVICE.into(),
        name: "openai".into(),
        secret: SECRET.into(),
        positions: vec![skapi_core::positions::Position::Headers],
        rate_per_caller: Some(3),
        rate_total: Some(5),
        destinations: skapi_server::destination::Destinations::Any,
        ..Default::default()
    };
    server.state.keyring.add(key, false).await.unwrap();
    let request = |data: Value| {
        json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/echo"), "method": "post",
               "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": data})
    };
    let (status, answer) = server.call("csr", "a", request(json!({"prompt": "repeat after me: $CLIENT_SECRET"}))).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "smuggled into data: {answer}");

    for _ in 0..3 {
        assert_eq!(server.call_forwarded("csr", "a", from("a").as_deref(), request(json!({}))).await.0, 200);
    }
    let response = server
        .http
        .post(format!("{}/csr", server.base))
        .header("content-meta", json!({"public_identifier": "a", "service": SERVICE}).to_string())
        .header("x-forwarded-for", from("a").unwrap())
        .body(request(json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer["code"], "RATE_LIMITED");
    assert_eq!(server.call_forwarded("csr", "a2", from("a").as_deref(), request(json!({}))).await.0, 429, "a new identifier from the same address");
    assert_eq!(server.call_forwarded("csr", "b", from("b").as_deref(), request(json!({}))).await.0, 200);
    assert_eq!(server.call_forwarded("csr", "b", from("b").as_deref(), request(json!({}))).await.0, 200);
    assert_eq!(server.call_forwarded("csr", "c", from("c").as_deref(), request(json!({}))).await.0, 429, "the key's total is reached");

    let (status, answer) = server.call("csr", "d", request(json!({"big": "x".repeat(5000)}))).await;
    assert_eq!((status, answer["code"].as_str()), (413, Some("PAYLOAD_TOO_LARGE")), "{answer}");

    server.state.db.store().set_service_origins(SERVICE, Some(&["https://good.example".to_owned()]), 0).await.unwrap();
    let from = |origin: &'static str| {
        let http = server.http.clone();
        let base = server.base.clone();
        async move {
            http.post(format!("{base}/csr-poll"))
                .header("origin", origin)
                .header("content-meta", json!({"public_identifier": "a", "service": SERVICE}).to_string())
                .body(json!({"service": SERVICE, "id": "[GET]https://x.io#s:"}).to_string())
                .send()
                .await
                .unwrap()
        }
    };
    let refused = from("https://evil.example").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("access-control-allow-origin").is_none(), "no CORS grant for a refused page");
    let allowed = from("https://good.example").await;
    assert_eq!(allowed.status(), 200);
    assert!(allowed.headers().get("access-control-allow-origin").is_some());
    let _ = stand_in;
}

async fn the_admin_api_needs_its_token_and_never_shows_a_value(engine: Engine) {
    let server = server_with(engine, |c| c.admin_token = "admin-token-for-tests".into()).await;
    let admin = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let mut request = server.http.request(method, format!("{}/admin{path}", server.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    use reqwest::Method;
    assert_eq!(admin(Method::GET, "/keys", "wrong", None).await.0, 401);
    assert_eq!(admin(Method::GET, "/keys", "", None).await.0, 401);
    let new_key = json!({"service": SERVICE, "name": "openai", "secret": SECRET, "locked": true, "destinations": ["https://api.openai.com/v1"], "positions": ["headers"]});
    let (status, created) = admin(Method::POST, "/keys", "admin-token-for-tests", Some(new_key.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["hint"], &SECRET[SECRET.len() - 4..]);
    assert_eq!(admin(Method::POST, "/keys", "admin-token-for-tests", Some(new_key)).await.1["code"], "EXISTS");
    let without = json!({"service": SERVICE, "name": "nowhere", "secret": SECRET});
    let (status, refused) = admin(Method::POST, "/keys", "admin-token-for-tests", Some(without)).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("at least one destination"), "{refused}");
    let anywhere = json!({"service": SERVICE, "name": "anywhere", "secret": SECRET, "destinations": "any"});
    let (status, created) = admin(Method::POST, "/keys", "admin-token-for-tests", Some(anywhere)).await;
    assert_eq!((status, created["destinations"].as_str()), (201, Some("any")), "{created}");
    assert_eq!(admin(Method::DELETE, &format!("/keys/{SERVICE}/anywhere"), "admin-token-for-tests", None).await.0, 204);
    let (status, edited) = admin(
        Method::PATCH,
        &format!("/keys/{SERVICE}/openai"),
        "admin-token-for-tests",
        Some(json!({"locked": false, "secret": "sk-replaced-value-9876", "rate_total": 10})),
    )
    .await;
    assert_eq!(
        (status, edited["locked"].as_bool(), edited["hint"].as_str(), edited["rate_total"].as_u64()),
        (200, Some(false), Some("9876"), Some(10))
    );
    let (_, list) = admin(Method::GET, "/keys", "admin-token-for-tests", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("sk-replaced") && !list.to_string().contains(SECRET), "{list}");
    assert_eq!(admin(Method::PATCH, "/keys/x/nope", "admin-token-for-tests", Some(json!({"locked": true}))).await.0, 404);
    assert_eq!(admin(Method::PATCH, &format!("/keys/{SERVICE}/openai"), "admin-token-for-tests", Some(json!({"lokced": true}))).await.0, 400);
    let (status, _) =
        admin(Method::PUT, &format!("/services/{SERVICE}"), "admin-token-for-tests", Some(json!({"cors_origins": ["https://App.Example:443/path"]})))
            .await;
    assert_eq!(status, 200);
    assert_eq!(
        admin(Method::GET, &format!("/services/{SERVICE}"), "admin-token-for-tests", None).await.1["cors_origins"],
        json!(["https://app.example"])
    );
    assert_eq!(admin(Method::DELETE, &format!("/keys/{SERVICE}/openai"), "admin-token-for-tests", None).await.0, 204);
    assert_eq!(admin(Method::DELETE, &format!("/keys/{SERVICE}/openai"), "admin-token-for-tests", None).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_secret_is_in_no_answer_no_file_and_no_log_line_on_sqlite() {
    let (api, stand_in) = start_stand_in().await;
    let dir = tempfile::tempdir().unwrap();
    cli_add_key(dir.path(), "openai");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut server, client) = spawn_server(dir.path(), log.into(), &[("RUST_LOG", "debug")]);

    let mut answers = Vec::new();
    let requests = [
        json!({"clientSecretName": "openai", "url": format!("{api}/echo-forms?key=$CLIENT_SECRET"), "method": "get", "headers": {"Authorization": "Bearer $CLIENT_SECRET"}}),
        json!({"clientSecretName": "openai", "url": format!("{api}/leak"), "method": "post", "data": {"k": "$CLIENT_SECRET"}}),
        json!({"clientSecretName": "openai", "url": "http://127.0.0.1:9/refused?key=$CLIENT_SECRET", "method": "get"}),
        json!({"clientSecretName": "openai", "url": format!("{api}/status/500"), "method": "get", "params": {"key": "$CLIENT_SECRET"}}),
    ];
    for request in requests {
        let url = request["url"].as_str().unwrap().to_owned();
        let id = client.submit("a", request).await;
        answers.push(client.poll_until_done("a", &id).await.1);
        let prefix = format!("{}:", id.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap().0);
        answers.push(client.call("csr-poll", "a", json!({"service": SERVICE, "id": prefix})).await.1);
        let _ = url;
    }
    assert!(stand_in.seen().iter().any(|s| s.query.get("key").map(String::as_str) == Some(SECRET)), "the secret did reach the API");
    let echoed = &answers[0];
    assert_eq!(echoed["body"]["plain"], "$CLIENT_SECRET", "{echoed}");
    assert_eq!(echoed["body"]["b64"], "$CLIENT_SECRET");
    assert_eq!(echoed["body"]["b64url"], "$CLIENT_SECRET");
    assert_eq!(echoed["body"]["pct"], "$CLIENT_SECRET");
    assert_eq!(echoed["body"]["auth"], "Bearer $CLIENT_SECRET");

    server.kill().unwrap();
    server.wait().unwrap();
    let forms = secret_forms();
    let all_answers = serde_json::to_string(&answers).unwrap();
    let log = std::fs::read(&log_path).unwrap();
    assert!(log.len() > 100, "the server did log");
    for form in &forms {
        assert!(!all_answers.contains(form.as_str()), "an answer holds {form}");
        assert!(!contains_bytes(&log, form.as_bytes()), "the log holds {form}");
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path != log_path {
                assert!(!contains_bytes(&std::fs::read(&path).unwrap(), form.as_bytes()), "{} holds {form}", path.display());
            }
        }
    }
}

/// Reads a streamed request with `csr-poll {id, since}` until it has ended (10 s at most):
/// its text, and how many chunks it was stored in.
async fn read_stream(server: &Server, identifier: &str, id: &str) -> (String, usize) {
    let (mut text, mut chunks, mut since) = (String::new(), 0, 0);
    for _ in 0..2000 {
        let (status, page) = server.call("csr-poll", identifier, json!({"service": SERVICE, "owner": OWNER, "id": id, "since": since})).await;
        assert_eq!(status, 200, "{page}");
        for chunk in page["chunks"].as_array().unwrap() {
            text.push_str(chunk["txt"].as_str().unwrap());
            chunks += 1;
        }
        since = page["last_seq"].as_u64().unwrap();
        if matches!(page["status"].as_str(), Some("resolved" | "failed")) && page["more"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (text, chunks)
}

/// Each word of `text` (a run of base64 or hex characters) decoded as base64 from each of its
/// first 4 characters, and as hex from each of its first 2.
fn word_readings(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for word in text.split(|c: char| !c.is_ascii_alphanumeric() && !"+/-_".contains(c)) {
        for offset in 0..4.min(word.len()) {
            out.push(skapi_core::encoding::base64_decode(&word[offset..]).unwrap_or_default());
        }
        for offset in 0..2.min(word.len()) {
            let hex = &word[offset..];
            out.push((0..hex.len() / 2).filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect());
        }
    }
    out
}

/// Every way a reader could decode `text` — as written, percent-decoded, hex-decoded and
/// base64-decoded at each alignment, each piece between placeholders apart — and whether any
/// of them holds 8 bytes in a row of the secret.
fn leaks_secret(text: &str) -> Option<String> {
    let windows: Vec<&[u8]> = SECRET.as_bytes().windows(8).collect();
    let holds = |bytes: &[u8]| windows.iter().any(|w| contains_bytes(bytes, w));
    let pct = |s: &str| -> Vec<u8> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        out
    };
    for piece in text.split(skapi_core::PLACEHOLDER) {
        let mut readings = vec![piece.as_bytes().to_vec(), pct(piece)];
        readings.extend(word_readings(piece));
        if let Some(r) = readings.iter().find(|r| holds(r)) {
            return Some(format!("{piece:?} reads as {:?}", String::from_utf8_lossy(r)));
        }
    }
    None
}

async fn redaction_decodes_escapes_percent_hex_and_base64_at_any_alignment(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&api]);
    for query in ["", "?as=text"] {
        let id = server
            .submit("a", json!({"clientSecretName": "openai", "url": format!("{api}/echo-encodings{query}"), "method": "get", "params": {"k": "$CLIENT_SECRET"}}))
            .await;
        let (status, answer) = server.poll_until_done("a", &id).await;
        assert_eq!(status, 200, "{answer}");
        let text = answer.to_string();
        assert!(leaks_secret(&text).is_none(), "{query}: {:?}\n{text}", leaks_secret(&text));
        if query.is_empty() {
            assert!(answer.is_object(), "a JSON answer stays JSON: {answer}");
            for (name, value) in answer.as_object().unwrap() {
                let value = value.as_str().unwrap_or_default();
                assert!(value.contains(skapi_core::PLACEHOLDER) || name.contains(skapi_core::PLACEHOLDER), "{name}: {value}");
            }
        } else {
            assert_eq!(answer.as_str().map(|t| t.lines().count()), Some(10), "{answer}");
        }
        // And the same in the history listing.
        let prefix = format!("{}:", id.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap().0);
        let (_, history) = server.call("csr-poll", "a", json!({"service": SERVICE, "id": prefix})).await;
        assert!(leaks_secret(&history.to_string()).is_none(), "{history}");
    }
    // The test's own reader finds the secret in the raw answer (so it can fail).
    assert!(leaks_secret(&crate::support::echo_encodings(false)).is_some());
    assert!(leaks_secret(&crate::support::echo_encodings(true)).is_some());
}

async fn a_truncated_answer_never_ends_with_a_piece_of_the_secret(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let limit = 200;
    let server = server_with(engine, |c| c.max_response_bytes = limit).await;
    server.add_key("openai", &[&api]);
    for n in (limit - SECRET.len() - 4)..=(limit + 2) {
        let id = server
            .submit(
                "a",
                json!({"clientSecretName": "openai", "url": format!("{api}/filler?n={n}"), "method": "get", "params": {"k": "$CLIENT_SECRET"}}),
            )
            .await;
        let (status, answer) = server.poll_until_done("a", &id).await;
        assert_eq!(status, 200, "{answer}");
        let prefix = format!("{}:", id.rsplit_once(':').unwrap().0.rsplit_once(':').unwrap().0);
        let (_, history) = server.call("csr-poll", "a", json!({"service": SERVICE, "id": prefix, "limit": 1})).await;
        let item = &history["list"][0];
        assert!(item["rslv"]["truncated"].is_string(), "n = {n}: {item}");
        let kept = item["rslv"]["truncated"].as_str().unwrap();
        assert!(kept.len() <= limit, "n = {n}: {} bytes", kept.len());
        for k in 1..=SECRET.len() {
            assert!(!kept.ends_with(&SECRET[..k]), "n = {n}: ends with {:?}", &SECRET[..k]);
        }
        assert!(kept.starts_with(&"x".repeat(n.min(limit) - SECRET.len())), "n = {n}: the filler is kept");
    }
}

async fn connection_headers_are_refused_by_name(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&api]);
    for header in ["Host", "content-length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization"] {
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/echo"), "method": "post",
                          "headers": {"Authorization": "Bearer $CLIENT_SECRET", header: "evil.example"}});
        let (status, answer) = server.call("csr", "a", body).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{header}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(&format!("\"{header}\"")), "{answer}");
    }
    assert!(stand_in.seen().is_empty());
}

async fn encoded_traversal_and_wildcards_in_destinations(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&format!("{api}/allowed"), "http://*.example.test/v1"]);
    let csr = |url: String| {
        json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": url, "method": "post",
               "headers": {"Authorization": "Bearer $CLIENT_SECRET"}})
    };
    for path in ["..%2fx", "..%2Fx", "..%5cx", "%2e%2e/x", "%252e%252e/x", "..;/x", "x%2f..%2fy"] {
        let (status, answer) = server.call("csr", "a", csr(format!("{api}/allowed/{path}"))).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "{path}: {answer}");
    }
    assert_eq!(server.call("csr", "a", csr(format!("{api}/allowed/x"))).await.0, 200);
    assert_eq!(server.call("csr", "a", csr("http://api.example.test/v1/chat".into())).await.0, 200, "a subdomain of the wildcard");
    for url in ["http://example.test/v1/chat", "http://api.example.test.evil.io/v1/chat", "http://api.example.test/v2"] {
        let (status, answer) = server.call("csr", "a", csr(url.into())).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "{url}: {answer}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(stand_in.seen().iter().all(|s| s.path == "/allowed/x"), "only the allowed call arrived");
}

async fn a_key_without_destinations_is_sent_nowhere(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    let key = |destinations| skapi_server::keyring::NewKey {
        service: SERVICE.into(),
        name: "openai".into(),
        secret: SECRET.into(),
        destinations,
        ..Default::default()
    };
    use skapi_server::destination::Destinations;
    let refused = server.state.keyring.add(key(Destinations::Only(vec![])), false).await;
    assert!(refused.unwrap_err().to_string().contains("at least one destination"));
    // A key stored without destinations (e.g. by an older version) refuses every request.
    let record = skapi_server::domain::KeyRecord {
        service: SERVICE.into(),
        name: "old".into(),
        sealed_secret: vec![0; 40],
        destinations: Destinations::Only(vec![]),
        ..Default::default()
    };
    server.state.db.store().insert_key(&record, false).await.unwrap();
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "old", "url": format!("{api}/x"), "method": "get", "params": {"k": "$CLIENT_SECRET"}});
    let (status, answer) = server.call("csr", "a", body).await;
    assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_REQUEST")), "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("no destinations"), "{answer}");
    assert!(stand_in.seen().is_empty());
}

async fn expires_past_its_maximum_is_refused(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&api]);
    for expires in [json!(1e308), json!(1e20), json!(30 * 24 * 3600 + 1)] {
        let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/x"), "method": "get",
                          "params": {"k": "$CLIENT_SECRET"}, "expires": expires});
        let (status, answer) = server.call("csr", "a", body).await;
        assert_eq!((status, answer["code"].as_str()), (400, Some("INVALID_PARAMETER")), "{expires}: {answer}");
    }
}

async fn per_caller_limits_count_anonymous_callers_by_address_too(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let limited = async |server: &Server| {
        let key = skapi_server::keyring::NewKey {
            service: SERVICE.into(),
            name: "openai".into(),
            secret: SECRET.into(),
            destinations: skapi_server::destination::Destinations::Any,
            rate_per_caller: Some(5),
            ..Default::default()
        };
        server.state.keyring.add(key, false).await.unwrap();
    };
    let server = server_with(engine, |c| c.trusted_proxies = vec!["127.0.0.2/32".parse().unwrap()]).await;
    limited(&server).await;
    let body = json!({"service": SERVICE, "owner": OWNER, "clientSecretName": "openai", "url": format!("{api}/x"), "method": "get", "params": {"k": "$CLIENT_SECRET"}});
    // A fresh public identifier for every call (2.0) gains nothing.
    let mut statuses = Vec::new();
    for i in 0..7 {
        statuses.push(server.call("csr", &format!("rotated-{i}"), body.clone()).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);

    // Nor does a fresh user agent for every 1.5.8 call, from a server whose window is fresh.
    let server = server_with(engine, |c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    limited(&server).await;
    let mut v1 = body.clone();
    v1.as_object_mut().unwrap().remove("service");
    let send = |agent: String, forwarded: Option<&'static str>| {
        let mut request = server
            .http
            .post(format!("{}/csr", server.base))
            .header("content-meta", json!({"public_identifier": "", "service": SERVICE, "owner": OWNER}).to_string())
            .header("user-agent", agent)
            .body(v1.to_string());
        if let Some(f) = forwarded {
            request = request.header("x-forwarded-for", f);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut statuses = Vec::new();
    for i in 0..7 {
        statuses.push(send(format!("agent-{i}"), Some("203.0.113.1")).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429], "one client address behind a trusted proxy");
    assert_eq!(send("agent-x".into(), Some("203.0.113.2")).await, 200, "another client behind the same proxy counts apart");
}

async fn tokens_not_valid_yet_or_with_critical_extensions_are_refused(engine: Engine) {
    let (api, stand_in) = start_stand_in().await;
    let server = server_with(engine, hs_auth).await;
    add_locked(&server).await;
    let mut future = claims("alice");
    future["nbf"] = json!(now_s() + 600);
    let mut just_now = claims("alice");
    just_now["nbf"] = json!(now_s() + 1);
    let crit = {
        let mut header = Header::new(Algorithm::HS256);
        header.crit = Some(vec!["exp".into()]);
        encode(&header, &claims("alice"), &EncodingKey::from_secret(HS_SECRET.as_bytes())).unwrap()
    };
    for (what, token) in [("nbf in the future", hs256(&future, HS_SECRET.as_bytes())), ("crit header", crit)] {
        let (status, answer) = server.call_as(&token, "csr", locked_request(&api)).await;
        assert_eq!((status, answer["code"].as_str()), (401, Some("UNAUTHORIZED")), "{what}: {answer}");
    }
    let (status, answer) = server.call_as(&hs256(&just_now, HS_SECRET.as_bytes()), "csr", locked_request(&api)).await;
    assert_eq!(status, 200, "nbf within the leeway: {answer}");
    let _ = stand_in;
}

async fn the_admin_api_reports_each_keys_last_hour(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = server_with(engine, |c| c.admin_token = "admin-token-for-usage".into()).await;
    server.add_key("openai", &[&api]);
    let id = server
        .submit("a", json!({"clientSecretName": "openai", "url": format!("{api}/status/502"), "method": "get", "params": {"k": "$CLIENT_SECRET"}}))
        .await;
    server.poll_until_done("a", &id).await;
    let id = server
        .submit("a", json!({"clientSecretName": "openai", "url": format!("{api}/maps"), "method": "get", "params": {"key": "$CLIENT_SECRET"}}))
        .await;
    server.poll_until_done("a", &id).await;
    let usage = |token: &'static str| {
        let request = server.http.get(format!("{}/admin/usage?service={SERVICE}", server.base)).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), serde_json::from_str::<Value>(&response.text().await.unwrap()).unwrap_or(Value::Null))
        }
    };
    assert_eq!(usage("wrong").await.0, 401);
    let (status, report) = usage("admin-token-for-usage").await;
    assert_eq!(status, 200);
    let key = &report[0];
    assert_eq!((key["service"].as_str(), key["name"].as_str()), (Some(SERVICE), Some("openai")));
    assert_eq!(key["last_hour"], json!({"THIRD_PARTY_ERROR": 1, "resolved": 1}), "{report}");
    assert!(key["last_used"].as_u64().is_some_and(|t| t + 60_000 > skapi_server::clock::now_ms()));
}

async fn a_large_answer_is_redacted_as_well(engine: Engine) {
    let (api, _stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("openai", &[&api]);
    let n = 600_000;
    let id = server
        .submit("a", json!({"clientSecretName": "openai", "url": format!("{api}/filler?n={n}"), "method": "get", "params": {"k": "$CLIENT_SECRET"}}))
        .await;
    let (status, answer) = server.poll_until_done("a", &id).await;
    assert_eq!(status, 200);
    let text = answer.as_str().expect("a text answer");
    assert_eq!(text.len(), n + skapi_core::PLACEHOLDER.len() + " and the rest of the answer".len());
    assert!(text.ends_with("$CLIENT_SECRET and the rest of the answer") && !text.contains(SECRET));
}

/// `skapi-server keys …` on the running server's store, as an operator would.
fn cli(server: &Server, args: &[&str]) {
    let mut command = std::process::Command::new(BIN);
    command.arg("keys").args(args).args(["--service", SERVICE, "--name", "k", "--data-dir"]).arg(server.dir.path());
    if let Some(database) = &server.state.config.database {
        command.env("SKAPI_DATABASE", database);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The server may keep a key in memory between requests; a change the CLI makes (another
/// process, unseen by the server) still holds from the very next request — locking, a
/// destination taken away, removal — and lifting a refusal holds as soon, too.
async fn key_changes_from_the_cli_hold_from_the_next_request(engine: Engine) {
    let (url, stand_in) = start_stand_in().await;
    let server = start_server(engine).await;
    server.add_key("k", &[&url]);
    let request = || json!({"clientSecretName": "k", "url": format!("{url}/x"), "method": "post", "data": {"k": "$CLIENT_SECRET"}});
    let send = |body: Value| {
        let api = &server.api;
        async move {
            let mut body = body;
            body["service"] = json!(SERVICE);
            body["owner"] = json!(OWNER);
            api.call("csr", "cli-change", body).await
        }
    };
    for _ in 0..3 {
        assert_eq!(send(request()).await.0, 200);
    }
    // Accepted requests are sent from tasks of their own: all three arrive before the count.
    for _ in 0..500 {
        if stand_in.seen().len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = stand_in.seen().len();
    assert_eq!(sent, 3, "the allowed requests were sent");

    // Each refusal twice: the second is decided on the refusing key as the server then keeps
    // it, which the next change must override as well.
    blocking(|| cli(&server, &["edit", "--locked", "true"]));
    for _ in 0..2 {
        let (status, body) = send(request()).await;
        assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")), "{body}");
    }
    blocking(|| cli(&server, &["edit", "--locked", "false"]));
    assert_eq!(send(request()).await.0, 200, "unlocked at once");

    blocking(|| cli(&server, &["edit", "--destination", "https://elsewhere.example.com/"]));
    for _ in 0..2 {
        let (status, body) = send(request()).await;
        assert_eq!((status, body["code"].as_str()), (400, Some("INVALID_REQUEST")), "{body}");
    }
    blocking(|| cli(&server, &["edit", "--destination", &url]));
    assert_eq!(send(request()).await.0, 200, "allowed again at once");

    blocking(|| cli(&server, &["remove"]));
    let (status, body) = send(request()).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_EXISTS")), "{body}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stand_in.seen().len(), sent + 2, "only the requests the key allowed were sent");
}

engine_tests! {
  both: [
    skapi_headers_come_from_the_verified_identity_alone,
    locked_keys_need_a_verified_user_and_records_belong_to_them,
    jwks_accepts_rs256_and_es256_and_refuses_algorithm_confusion,
    exfiltration_urls_and_look_alike_hosts_are_refused,
    redirects_are_not_followed,
    private_loopback_and_metadata_addresses_are_refused,
    placeholder_positions_rate_limits_sizes_and_cors,
    the_admin_api_needs_its_token_and_never_shows_a_value,
    redaction_decodes_escapes_percent_hex_and_base64_at_any_alignment,
    a_truncated_answer_never_ends_with_a_piece_of_the_secret,
    connection_headers_are_refused_by_name,
    encoded_traversal_and_wildcards_in_destinations,
    a_key_without_destinations_is_sent_nowhere,
    expires_past_its_maximum_is_refused,
    per_caller_limits_count_anonymous_callers_by_address_too,
    tokens_not_valid_yet_or_with_critical_extensions_are_refused,
    the_admin_api_reports_each_keys_last_hour,
    a_large_answer_is_redacted_as_well,
    key_changes_from_the_cli_hold_from_the_next_request,
  ],
}
