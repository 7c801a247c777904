//! Skapi's gateways: where a service's API lives when no `endpoint` is given (docs/protocol.md,
//! "Finding the backend"). The admin JSON maps names to base URLs; anonymous calls rotate over
//! the `*_public` bases, logged-in ones over the `*_private` bases.

use crate::encoding::percent_encode;
use crate::text::parts;
use crate::tree::{Kind, Tree};

/// Skapi's CDN, which serves each service's gateway JSON.
pub const DEFAULT_CDN: &str = "https://d3e9syvbtso631.cloudfront.net";
/// The admin gateway JSON of the 2.0 protocol line.
pub const ADMIN_JSON: &str = "admin-v2.json";

/// Where the admin gateway JSON of `service` is: `<cdn>/<first 4 chars of service>/admin-v2.json`.
pub fn admin_json_url(cdn: &str, service: &str) -> String {
    let prefix: String = service.chars().take(4).collect();
    [without_trailing_slashes(cdn), "/", &prefix, "/", ADMIN_JSON].concat()
}

/// `url` without its trailing `/`s (byte by byte: `trim_end_matches` brings a UTF-8 decoder).
fn without_trailing_slashes(url: &str) -> &str {
    url.get(..url.bytes().rposition(|b| b != b'/').map_or(0, |at| at + 1)).unwrap_or(url)
}

/// The gateways a service answers at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateways {
    /// Bases for anonymous calls (`csr`, `csr-poll`, …).
    pub public: Vec<String>,
    /// Bases for logged-in calls.
    pub private: Vec<String>,
    /// Base of the connection check (`service`).
    pub service: String,
}

impl Gateways {
    /// Every gateway at one base URL (a self-hosted skapi-server).
    pub fn single(endpoint: &str) -> Gateways {
        let base = [without_trailing_slashes(endpoint), "/"].concat();
        Gateways { public: vec![base.clone()], private: vec![base.clone()], service: base }
    }

    /// From the admin gateway JSON; `None` when it names no usable base.
    pub fn from_admin_json<T: Tree>(json: &T) -> Option<Gateways> {
        let (mut public, mut private, mut service) = (Vec::new(), Vec::new(), None);
        json.entries(&mut |key, value| {
            let base = if value.kind() == Kind::Text { value.text() } else { None };
            match (key, base) {
                ("service_public", base) => service = base,
                ("get_users_private", _) | (_, None) => {}
                (k, Some(base)) if parts(k, b'_').any(|part| part == "public") => public.push(base),
                (k, Some(base)) if parts(k, b'_').any(|part| part == "private") => private.push(base),
                _ => {}
            }
            true
        });
        if public.is_empty() || json.kind() != Kind::Object {
            return None;
        }
        Some(Gateways { private: if private.is_empty() { public.clone() } else { private }, public, service: service? })
    }

    /// The base for call number `counter` (round robin).
    pub fn pick(&self, logged_in: bool, counter: usize) -> &str {
        let bases = if logged_in { &self.private } else { &self.public };
        // `get`, and no remainder by a length that could be 0: no panic path in the wasm.
        counter.checked_rem(bases.len()).and_then(|at| bases.get(at)).map_or("", String::as_str)
    }

    /// The connection check's URL.
    pub fn service_check_url(&self, service: &str, owner: &str) -> String {
        [&self.service, "service?service=", &percent_encode(service), "&owner=", &percent_encode(owner), "&refresh=false"].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_json_by_the_service_prefix() {
        assert_eq!(admin_json_url("https://cdn.example/", "ap22abcdef"), "https://cdn.example/ap22/admin-v2.json");
    }

    #[test]
    fn rotates_over_public_or_private_bases() {
        let g = Gateways::from_admin_json(&json!({
            "admin_public": "https://a/", "admin_public_2": "https://b/", "extra_public": "https://c/",
            "admin_private": "https://p/", "get_users_private": "https://u/", "service_public": "https://s/",
            "userpool_id": "ap-x_1", "userpool_client": "client"
        }))
        .unwrap();
        let picked: Vec<&str> = (0..4).map(|i| g.pick(false, i)).collect();
        assert_eq!(picked, ["https://a/", "https://b/", "https://c/", "https://a/"]);
        assert_eq!(g.pick(true, 7), "https://p/");
        assert_eq!(g.service_check_url("svc 1", "o&1"), "https://s/service?service=svc%201&owner=o%261&refresh=false");
    }

    #[test]
    fn refuses_json_without_bases() {
        assert_eq!(Gateways::from_admin_json(&json!({"service_public": "https://s/"})), None);
        assert_eq!(Gateways::from_admin_json(&json!({"admin_public": "https://a/"})), None);
        assert_eq!(Gateways::from_admin_json(&json!([1])), None);
    }

    #[test]
    fn one_endpoint_serves_everything() {
        let g = Gateways::single("http://127.0.0.1:8787");
        assert_eq!(g.pick(false, 3), "http://127.0.0.1:8787/");
        assert_eq!(g.pick(true, 0), "http://127.0.0.1:8787/");
    }
}
