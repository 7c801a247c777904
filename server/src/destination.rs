//! Where a key's secret may be sent: URL prefixes with scheme, host and port exact and the
//! path matched on a `/` boundary (`https://api.x.com/v1` allows `/v1` and `/v1/…`, not `/v10`).
//! The host's first label may be `*` (`https://*.x.com/v1`: any subdomain, not `x.com`
//! itself). A key sent anywhere says so explicitly ([`Destinations::Any`]); a key with no
//! destination at all is sent nowhere.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use skapi_core::{ApiError, ErrorCode};
use url::Url;

pub const NOT_ALLOWED: &str = "Destination is not allowed for this client secret.";
pub const KEYLESS_NOT_ALLOWED: &str = "Destination is not allowed for requests without a secret.";
pub const NONE_SET: &str = "This client secret has no destinations: its operator must add one (or choose \"any destination\" explicitly).";

/// A key's destinations: on the wire and in the store, `"any"` or a list of URL prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destinations {
    /// The operator chose to let the secret go to any URL.
    Any,
    /// Only under these prefixes (normalised); empty = nowhere.
    Only(Vec<String>),
}

impl Default for Destinations {
    fn default() -> Self {
        Destinations::Only(Vec::new())
    }
}

impl Destinations {
    pub fn is_any(&self) -> bool {
        matches!(self, Destinations::Any)
    }

    /// Normalises each prefix an operator gave (see [`normalize`]).
    pub fn normalized(&self) -> Result<Destinations, String> {
        match self {
            Destinations::Any => Ok(Destinations::Any),
            Destinations::Only(list) => list.iter().map(|d| normalize(d)).collect::<Result<_, _>>().map(Destinations::Only),
        }
    }

    /// As text for people: the prefixes, or `(any destination)`.
    pub fn describe(&self) -> String {
        match self {
            Destinations::Any => "(any destination)".to_owned(),
            Destinations::Only(list) if list.is_empty() => "(none: refused)".to_owned(),
            Destinations::Only(list) => list.join(" "),
        }
    }
}

impl Serialize for Destinations {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Destinations::Any => s.serialize_str("any"),
            Destinations::Only(list) => list.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Destinations {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            List(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "any" => Ok(Destinations::Any),
            Raw::Word(w) => Err(serde::de::Error::custom(format!("destinations should be \"any\" or a list of URLs, not \"{w}\""))),
            Raw::List(list) => Ok(Destinations::Only(list)),
        }
    }
}

/// Where a service forwards requests that name no secret, as an operator gives it: at least one
/// prefix (none at all is said by removing the list), each normalised as a key's.
pub fn normalize_forwarding(list: &[String]) -> Result<Vec<String>, String> {
    if list.is_empty() {
        return Err("give at least one destination, or remove the forwarding to forward nothing".into());
    }
    list.iter().map(|d| normalize(d)).collect()
}

/// [`check`] for a request that names no secret, against the destinations its service forwards
/// such requests to.
pub fn check_keyless(allowed: &[String], raw: &str) -> Result<(), ApiError> {
    check(&Destinations::Only(allowed.to_vec()), raw).map_err(|e| match e.message.as_str() {
        NOT_ALLOWED | NONE_SET => ApiError::new(ErrorCode::InvalidRequest, KEYLESS_NOT_ALLOWED),
        _ => e,
    })
}

/// Parses and normalises a destination prefix given by an operator.
pub fn normalize(prefix: &str) -> Result<String, String> {
    let url = Url::parse(prefix).map_err(|e| format!("destination \"{prefix}\" is not a URL: {e}"))?;
    let Some(host) = url.host_str().filter(|_| matches!(url.scheme(), "http" | "https")) else {
        return Err(format!("destination \"{prefix}\" must be an http(s) URL with a host"));
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("destination \"{prefix}\" must not carry a user name or password"));
    }
    if host.contains('*') {
        let rest = host.strip_prefix("*.").unwrap_or("*");
        if rest.contains('*') || rest.split('.').filter(|l| !l.is_empty()).count() < 2 {
            return Err(format!(
                "destination \"{prefix}\": a wildcard may only be the first label of a host with at least two more (https://*.example.com)"
            ));
        }
    }
    if suspicious(prefix, &url) {
        return Err(format!("destination \"{prefix}\" must not hold encoded or dot path segments"));
    }
    let mut url = url;
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.to_string())
}

/// True when the raw url has a shape that could make a prefix check lie: a backslash, user
/// info, a `.` or `..` segment (also next to a `;` parameter), or an encoded `/`, `\` or `.`
/// in the path (in either case, also encoded again as `%25…`), which a server behind the
/// destination may decode into a traversal.
fn suspicious(raw: &str, url: &Url) -> bool {
    let lower = raw.to_ascii_lowercase();
    let after_scheme = lower.find("://").map_or(0, |i| i + 3);
    let path_start = lower[after_scheme..].find('/').map_or(lower.len(), |i| after_scheme + i);
    let path_end = lower[path_start..].find(['?', '#']).map_or(lower.len(), |i| path_start + i);
    let mut path = lower[path_start..path_end].to_owned();
    // `%252e` is `%2e` once decoded: undo every layer of encoded percent signs first.
    while path.contains("%25") {
        path = path.replace("%25", "%");
    }
    let dot_segment = |seg: &str| seg.split(';').any(|piece| matches!(piece, "." | ".."));
    raw.contains('\\')
        || ["%2f", "%5c", "%2e"].iter().any(|encoded| path.contains(encoded))
        || path.split('/').any(dot_segment)
        || !url.username().is_empty()
        || url.password().is_some()
}

fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(parent) => host.len() > parent.len() + 1 && host.ends_with(parent) && host[..host.len() - parent.len()].ends_with('.'),
        None => pattern == host,
    }
}

fn under(prefix: &Url, url: &Url) -> bool {
    let hosts = match (prefix.host_str(), url.host_str()) {
        (Some(pattern), Some(host)) => host_matches(pattern, host),
        _ => false,
    };
    if prefix.scheme() != url.scheme() || !hosts || prefix.port_or_known_default() != url.port_or_known_default() {
        return false;
    }
    let base = prefix.path().trim_end_matches('/');
    let path = url.path();
    base.is_empty() || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Checks `raw` (the request url) against a key's destinations.
pub fn check(destinations: &Destinations, raw: &str) -> Result<(), ApiError> {
    let refuse = || ApiError::new(ErrorCode::InvalidRequest, NOT_ALLOWED);
    let url = Url::parse(raw).map_err(|_| ApiError::invalid_parameter(format!("\"{raw}\" is an invalid url.")))?;
    let list = match destinations {
        Destinations::Any => return Ok(()),
        Destinations::Only(list) if list.is_empty() => return Err(ApiError::new(ErrorCode::InvalidRequest, NONE_SET)),
        Destinations::Only(list) => list,
    };
    if suspicious(raw, &url) {
        return Err(refuse());
    }
    let allowed = list.iter().filter_map(|d| Url::parse(d).ok()).any(|prefix| under(&prefix, &url));
    if allowed {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// The label the metrics give a call to `raw`: the host of the destination it is under, as the
/// operator wrote it (`*.maps.example.com` for a wildcard), or `other` — so that callers cannot
/// mint labels (a key with "any destination" has no configured hosts).
pub fn metric_host(destinations: &Destinations, raw: &str) -> String {
    let (Destinations::Only(list), Ok(url)) = (destinations, Url::parse(raw)) else { return "other".into() };
    list.iter()
        .filter_map(|d| Url::parse(d).ok())
        .find(|prefix| under(prefix, &url))
        .and_then(|prefix| prefix.host_str().map(str::to_owned))
        .unwrap_or_else(|| "other".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_are_configured_hosts_or_other() {
        assert_eq!(metric_host(&dests(), "https://api.openai.com/v1/images"), "api.openai.com");
        assert_eq!(metric_host(&dests(), "https://eu.maps.example.com/v2/route"), "*.maps.example.com");
        assert_eq!(metric_host(&dests(), "https://evil.example/v1"), "other");
        assert_eq!(metric_host(&Destinations::Any, "https://api.openai.com/v1"), "other");
    }

    fn dests() -> Destinations {
        Destinations::Only(vec![
            normalize("https://api.openai.com/v1").unwrap(),
            normalize("http://127.0.0.1:9000/").unwrap(),
            normalize("https://*.maps.example.com/v2").unwrap(),
        ])
    }

    #[test]
    fn allows_urls_under_a_prefix() {
        for u in [
            "https://api.openai.com/v1",
            "https://api.openai.com/v1/images/generations?x=$CLIENT_SECRET",
            "https://API.OpenAI.com:443/v1/x",
            "http://127.0.0.1:9000/anything",
            "https://eu.maps.example.com/v2/route",
            "https://a.b.maps.example.com/v2",
            "https://api.openai.com/v1/x?q=%2e%2e%2f",
        ] {
            assert!(check(&dests(), u).is_ok(), "{u}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for u in [
            "https://api.openai.com/v10",
            "https://api.openai.com/",
            "http://api.openai.com/v1/x",
            "https://api.openai.com:8443/v1/x",
            "https://api.openai.com.evil.io/v1/x",
            "https://evil.io/?https://api.openai.com/v1",
            "https://user@api.openai.com/v1/x",
            "https://api.openai.com/v1/../admin",
            "https://api.openai.com/v1/%2e%2e/admin",
            "https://api.openai.com\\@evil.io/v1",
            "http://127.0.0.1:9001/",
            "https://maps.example.com/v2/route",
            "https://evilmaps.example.com/v2",
            "https://eu.maps.example.com.evil.io/v2",
        ] {
            assert_eq!(check(&dests(), u).unwrap_err().message, NOT_ALLOWED, "{u}");
        }
    }

    #[test]
    fn refuses_encoded_traversal() {
        for path in [
            "..%2fx",
            "..%2Fx",
            "..%5cx",
            "%2e%2e/x",
            "%2E./x",
            "x%2fy",
            "%252e%252e/x",
            "%25252e%25252e/x",
            "..;/x",
            "..;jsessionid=1/x",
            ".;/x",
            "x/..",
        ] {
            let u = format!("https://api.openai.com/v1/{path}");
            assert_eq!(check(&dests(), &u).unwrap_err().message, NOT_ALLOWED, "{u}");
        }
        assert!(check(&dests(), "https://api.openai.com/v1/a;b=c/d").is_ok(), "a plain path parameter is fine");
    }

    #[test]
    fn any_is_explicit_and_none_is_nowhere() {
        assert!(check(&Destinations::Any, "https://anywhere.example/x").is_ok());
        assert_eq!(check(&Destinations::default(), "https://anywhere.example/x").unwrap_err().message, NONE_SET);
        assert_eq!(serde_json::to_string(&Destinations::Any).unwrap(), "\"any\"");
        assert_eq!(serde_json::from_str::<Destinations>("\"any\"").unwrap(), Destinations::Any);
        assert_eq!(serde_json::from_str::<Destinations>("[\"https://x.io/\"]").unwrap(), Destinations::Only(vec!["https://x.io/".into()]));
        assert!(serde_json::from_str::<Destinations>("\"anywhere\"").is_err());
    }

    #[test]
    fn normalizes_operator_input() {
        assert_eq!(normalize("HTTPS://Api.X.com/v1?q=1").unwrap(), "https://api.x.com/v1");
        assert_eq!(normalize("https://*.X.com/v1").unwrap(), "https://*.x.com/v1");
        for bad in ["ftp://x.io", "https://u:p@x.io", "nope", "https://*.com/", "https://a.*.x.com/", "https://*/", "https://x.io/a/%2e%2e/b"] {
            assert!(normalize(bad).is_err(), "{bad}");
        }
    }
}
