//! Where a key's secret may be sent: URL prefixes with scheme, host and port exact and the
//! path matched on a `/` boundary (`https://api.x.com/v1` allows `/v1` and `/v1/…`, not `/v10`).

use skapi_core::{ApiError, ErrorCode};
use url::Url;

pub const NOT_ALLOWED: &str = "Destination is not allowed for this client secret.";

/// Parses and normalises a destination prefix given by an operator.
pub fn normalize(prefix: &str) -> Result<String, String> {
    let url = Url::parse(prefix).map_err(|e| format!("destination \"{prefix}\" is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("destination \"{prefix}\" must be an http(s) URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("destination \"{prefix}\" must not carry a user name or password"));
    }
    let mut url = url;
    url.set_query(None);
    url.set_fragment(None);
    Ok(url.to_string())
}

/// True when the raw url has a shape that could make a prefix check lie: a backslash, a `..`
/// segment (plain or percent-encoded) or user info.
fn suspicious(raw: &str, url: &Url) -> bool {
    let lower = raw.to_ascii_lowercase();
    let path_end = lower.find(['?', '#']).unwrap_or(lower.len());
    let path_part = &lower[..path_end];
    raw.contains('\\')
        || path_part.split('/').any(|seg| matches!(seg, ".." | "%2e%2e" | ".%2e" | "%2e."))
        || !url.username().is_empty()
        || url.password().is_some()
}

fn under(prefix: &Url, url: &Url) -> bool {
    if prefix.scheme() != url.scheme()
        || prefix.host_str() != url.host_str()
        || prefix.port_or_known_default() != url.port_or_known_default()
    {
        return false;
    }
    let base = prefix.path().trim_end_matches('/');
    let path = url.path();
    base.is_empty() || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Checks `raw` (the request url) against a key's destinations; no destinations = anywhere.
pub fn check(destinations: &[String], raw: &str) -> Result<(), ApiError> {
    let refuse = || ApiError::new(ErrorCode::InvalidRequest, NOT_ALLOWED);
    let url = Url::parse(raw).map_err(|_| ApiError::invalid_parameter(format!("\"{raw}\" is an invalid url.")))?;
    if destinations.is_empty() {
        return Ok(());
    }
    if suspicious(raw, &url) {
        return Err(refuse());
    }
    let allowed = destinations.iter().filter_map(|d| Url::parse(d).ok()).any(|prefix| under(&prefix, &url));
    if allowed {
        Ok(())
    } else {
        Err(refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests() -> Vec<String> {
        vec![normalize("https://api.openai.com/v1").unwrap(), normalize("http://127.0.0.1:9000/").unwrap()]
    }

    #[test]
    fn allows_urls_under_a_prefix() {
        for u in [
            "https://api.openai.com/v1",
            "https://api.openai.com/v1/images/generations?x=$CLIENT_SECRET",
            "https://API.OpenAI.com:443/v1/x",
            "http://127.0.0.1:9000/anything",
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
        ] {
            assert_eq!(check(&dests(), u).unwrap_err().message, NOT_ALLOWED, "{u}");
        }
    }

    #[test]
    fn no_destinations_means_anywhere() {
        assert!(check(&[], "https://anywhere.example/x").is_ok());
    }

    #[test]
    fn normalizes_operator_input() {
        assert_eq!(normalize("HTTPS://Api.X.com/v1?q=1").unwrap(), "https://api.x.com/v1");
        assert!(normalize("ftp://x.io").is_err());
        assert!(normalize("https://u:p@x.io").is_err());
        assert!(normalize("nope").is_err());
    }
}
