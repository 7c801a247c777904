//! skapi-server in this process, on loopback and a fresh data directory, and a client of any
//! running skapi-server.

use super::{blocking, Engine, OWNER, SECRET, SERVICE};
use serde_json::{json, Value};
use skapi_server::destination::Destinations;
use skapi_server::keyring::NewKey;
use skapi_server::{AppState, ServeConfig};
use std::sync::Arc;
use std::time::Duration;

/// A client of a running skapi-server (in this process or another).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Server {
    pub api: Api,
    pub state: AppState,
    pub dir: Arc<tempfile::TempDir>,
}

impl std::ops::Deref for Server {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// The test server's settings, its records kept by `engine`.
pub fn config(engine: Engine, dir: &std::path::Path) -> ServeConfig {
    ServeConfig {
        allow_private_upstreams: true,
        upstream_timeout: Duration::from_secs(5),
        database: engine.database(),
        ..ServeConfig::new("127.0.0.1:0", dir)
    }
}

/// Starts skapi-server on a fresh data directory, its settings adjusted first.
pub async fn server_with(engine: Engine, adjust: impl FnOnce(&mut ServeConfig)) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut config = config(engine, dir.path());
    adjust(&mut config);
    start_server_with(dir, config).await
}

/// Starts skapi-server on a fresh data directory.
pub async fn start_server(engine: Engine) -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    start_server_with(dir.clone(), config(engine, dir.path())).await
}

pub async fn start_server_with(dir: Arc<tempfile::TempDir>, config: ServeConfig) -> Server {
    let state = AppState::open(config).await.unwrap();
    // As `serve` listens (TCP_NODELAY).
    let listener = skapi_server::listen("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = skapi_server::api::router(state.clone());
    let limits = state.config.http.clone();
    tokio::spawn(skapi_server::http::serve(listener, app, limits, std::future::pending()));
    Server { api: Api::new(format!("http://{addr}")), state, dir }
}

impl Server {
    /// Adds key `name` with these destinations; none given = any destination (chosen
    /// explicitly, as an operator must).
    pub fn add_key(&self, name: &str, destinations: &[&str]) {
        self.add_key_valued(name, SECRET, destinations)
    }

    /// The same with another secret value.
    pub fn add_key_valued(&self, name: &str, secret: &str, destinations: &[&str]) {
        blocking(|| tokio::runtime::Handle::current().block_on(self.add_key_now(name, secret, destinations)))
    }

    async fn add_key_now(&self, name: &str, secret: &str, destinations: &[&str]) {
        self.state
            .keyring
            .add(
                NewKey {
                    service: SERVICE.into(),
                    name: name.into(),
                    secret: secret.into(),
                    locked: false,
                    destinations: if destinations.is_empty() {
                        Destinations::Any
                    } else {
                        Destinations::Only(destinations.iter().map(|d| d.to_string()).collect())
                    },
                    ..Default::default()
                },
                false,
            )
            .await
            .unwrap();
    }

    /// Every file in the data directory, as bytes.
    pub fn data_files(&self) -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect()
    }
}

impl Api {
    pub fn new(base: String) -> Api {
        Api { base, http: reqwest::Client::new() }
    }

    /// POSTs `body` to an endpoint as an SDK would, with a public identifier in Content-Meta.
    pub async fn call(&self, endpoint: &str, identifier: &str, body: Value) -> (u16, Value) {
        self.call_forwarded(endpoint, identifier, None, body).await
    }

    /// A POST to an endpoint as an SDK makes it: a public identifier in Content-Meta.
    fn post(&self, endpoint: &str, identifier: &str) -> reqwest::RequestBuilder {
        let meta = json!({"public_identifier": identifier, "service": SERVICE, "owner": OWNER});
        self.http.post(format!("{}/{endpoint}", self.base)).header("content-meta", meta.to_string())
    }

    /// Opens `csr-stream` for request `id` (from chunk `since`, when given): the answer, its
    /// events unread.
    pub async fn open_stream(&self, identifier: &str, id: &str, since: Option<u64>) -> reqwest::Response {
        let mut body = json!({"service": SERVICE, "owner": OWNER, "id": id});
        if let Some(since) = since {
            body["since"] = json!(since);
        }
        self.post("csr-stream", identifier).body(body.to_string()).send().await.unwrap()
    }

    /// `call` through a proxy that says the client is `client` (`X-Forwarded-For`).
    pub async fn call_forwarded(&self, endpoint: &str, identifier: &str, client: Option<&str>, body: Value) -> (u16, Value) {
        let response = self.send_forwarded(endpoint, identifier, client, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// [`Api::call_forwarded`]'s answer, unread (its headers too).
    pub async fn send_forwarded(&self, endpoint: &str, identifier: &str, client: Option<&str>, body: Value) -> reqwest::Response {
        let mut request = self.post(endpoint, identifier).header("content-type", "application/json");
        if let Some(client) = client {
            request = request.header("x-forwarded-for", client);
        }
        request.body(body.to_string()).send().await.unwrap()
    }

    /// Polls a full id until it is no longer pending or running.
    pub async fn poll_until_done(&self, identifier: &str, full_id: &str) -> (u16, Value) {
        for _ in 0..200 {
            let (status, body) = self.call("csr-poll", identifier, json!({"service": SERVICE, "owner": OWNER, "id": full_id})).await;
            let unfinished = status == 200 && matches!(body["status"].as_str(), Some("pending" | "running")) && body["id"].is_string();
            if !unfinished {
                return (status, body);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("request {full_id} did not finish");
    }

    /// Sends a 2.0 `csr` and returns the full id to poll it by.
    pub async fn submit(&self, identifier: &str, mut body: Value) -> String {
        body["service"] = json!(SERVICE);
        body["owner"] = json!(OWNER);
        let (status, accepted) = self.call("csr", identifier, body.clone()).await;
        assert_eq!(status, 200, "{accepted}");
        let method = body["method"].as_str().unwrap().to_uppercase();
        format!("[{method}]{}#{SERVICE}:{}", body["url"].as_str().unwrap().to_lowercase(), accepted["id"].as_str().unwrap())
    }
}

/// A POST through the `openai` key to `url`, tagged so the stand-in's order can be checked.
pub fn tagged(url: &str, tag: &str) -> Value {
    json!({"clientSecretName": "openai", "url": url, "method": "post",
           "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"tag": tag}})
}
