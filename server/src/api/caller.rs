//! Who is calling: the service from `Content-Meta` or the body, the identity that owns
//! records — the SDK's public identifier, or for 1.5.8 (which sends none) IP and user agent —
//! and whom a per-caller rate limit counts.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use skapi_core::wire::ContentMeta;
use std::net::{IpAddr, SocketAddr};

use super::Failure;
use crate::state::AppState;
use skapi_core::ErrorCode;

/// Longest public identifier accepted (the SDK sends 32 hex digits).
const MAX_IDENTIFIER: usize = 128;
/// User agents are cut to this length before they become part of an identity.
const MAX_AGENT: usize = 256;

#[derive(Debug, Clone)]
pub struct Caller {
    pub meta: ContentMeta,
    /// The owner of records this caller creates and may read.
    pub identity: String,
    /// The verified user id, when logged in (Locked keys need one).
    pub user: Option<String>,
    /// The page's origin, for the service's CORS rule.
    pub origin: Option<String>,
    /// Who a per-caller rate limit counts: a signed-in user by `sub`; an anonymous caller by
    /// its identity *and* by its address, so that a fresh identifier per call gains nothing.
    pub counted_as: Vec<String>,
    /// The client's address is loopback (see [`Caller::shares_as`]).
    local: bool,
}

/// The client's address: the peer's, or — when the peer is a trusted proxy — the nearest
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(headers: &HeaderMap, peer: Option<IpAddr>, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer?;
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
    let hops: Vec<&str> = hops.map(str::trim).collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.trim_start_matches('[').split(']').next().unwrap_or(hop).parse::<IpAddr>() else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// The address as a rate-limit bucket: IPv4 as it is, IPv6 by its /64 (one host's share).
fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        v4 => format!("addr:{v4}"),
    }
}

impl Caller {
    pub fn from_parts(headers: &HeaderMap, address: Option<IpAddr>) -> Result<Caller, Failure> {
        let meta: ContentMeta = match headers.get("content-meta") {
            Some(v) => {
                let text = v.to_str().map_err(|_| Failure::invalid_parameter("The Content-Meta header is not text."))?;
                serde_json::from_str(text).map_err(|e| Failure::invalid_parameter(format!("The Content-Meta header is not valid: {e}.")))?
            }
            None => ContentMeta::default(),
        };
        if meta.public_identifier.len() > MAX_IDENTIFIER || meta.public_identifier.chars().any(char::is_control) {
            return Err(Failure::invalid_parameter("The public identifier is too long or holds control characters."));
        }
        let identity = if !meta.public_identifier.is_empty() {
            format!("pid:{}", meta.public_identifier)
        } else {
            let ip = address.map(|ip| ip.to_string()).unwrap_or_default();
            let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
            let agent: String = agent.chars().filter(|c| !c.is_control()).take(MAX_AGENT).collect();
            format!("anon:{ip}|{agent}")
        };
        let counted_as = std::iter::once(identity.clone()).chain(address.map(address_bucket)).collect();
        let local = address.is_some_and(|ip| ip.to_canonical().is_loopback());
        Ok(Caller { meta, identity, user: None, origin: None, counted_as, local })
    }

    /// Who a fair share of the running slots counts (`crate::shares`): as `counted_as`, but a
    /// loopback address is no one's — it is a proxy on the same host (without
    /// `--trusted-proxy`) or the operator's own tooling, and would put every caller in one share.
    pub fn shares_as(&self) -> &[String] {
        if self.local {
            &self.counted_as[..1]
        } else {
            &self.counted_as
        }
    }

    /// The service a call is for (the body's, else `Content-Meta`'s), once the page's origin
    /// is known to be allowed to call it.
    pub async fn service(&self, state: &AppState, from_body: Option<&str>) -> Result<String, Failure> {
        let service = from_body
            .filter(|s| !s.is_empty())
            .or(Some(self.meta.service.as_str()).filter(|s| !s.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| Failure::new(ErrorCode::InvalidRequest, "\"service\" is required."))?;
        if let Some(origin) = &self.origin {
            if let Some(allowed) = state.db.call(|store| store.service_origins(&service)).await? {
                if !allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
                    return Err(Failure::new(ErrorCode::InvalidCors, format!("The origin {origin} may not call this service.")).deny_cors());
                }
            }
        }
        Ok(service)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    /// A caller with a user token is that user (`sub:`); a token that does not verify is
    /// refused, whatever the key.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Failure> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let address = client_address(&parts.headers, peer, &state.config.trusted_proxies);
        let mut caller = Caller::from_parts(&parts.headers, address)?;
        caller.origin = parts.headers.get("origin").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(token) = parts.headers.get("authorization") {
            let token = token.to_str().map_err(|_| Failure::new(ErrorCode::Unauthorized, "The user token is not text."))?;
            let user = state.auth.verify(token).await?;
            caller.identity = format!("sub:{}", user.sub);
            caller.counted_as = vec![caller.identity.clone()];
            caller.user = Some(user.sub);
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", value.parse().unwrap());
        h
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let h = forwarded("6.6.6.6, 203.0.113.7, 10.1.1.1");
        assert_eq!(client_address(&h, ip("10.0.0.2"), &trusted), ip("203.0.113.7"), "nearest untrusted hop");
        assert_eq!(client_address(&h, ip("198.51.100.9"), &trusted), ip("198.51.100.9"), "an untrusted peer's header is ignored");
        assert_eq!(client_address(&h, ip("10.0.0.2"), &[]), ip("10.0.0.2"), "no trusted proxies");
        assert_eq!(client_address(&forwarded("garbage"), ip("10.0.0.2"), &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(&forwarded("[2001:db8::1]"), ip("10.0.0.2"), &trusted), ip("2001:db8::1"));
    }

    #[test]
    fn shares_count_an_address_unless_it_is_loopback() {
        let remote = Caller::from_parts(&HeaderMap::new(), "203.0.113.9".parse().ok()).unwrap();
        assert_eq!(remote.shares_as(), remote.counted_as);
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.2"] {
            let caller = Caller::from_parts(&HeaderMap::new(), local.parse().ok()).unwrap();
            assert_eq!(caller.shares_as(), vec![caller.identity.clone()], "{local}");
            assert_eq!(caller.counted_as.len(), 2, "rate limits still count it");
        }
    }

    #[test]
    fn anonymous_callers_are_counted_by_address_too_and_ipv6_by_its_64() {
        let caller = Caller::from_parts(&HeaderMap::new(), "2001:db8:1:2:aaaa::1".parse().ok()).unwrap();
        assert_eq!(caller.counted_as, vec!["anon:2001:db8:1:2:aaaa::1|".to_owned(), "addr:2001:db8:1:2::/64".to_owned()]);
    }
}
