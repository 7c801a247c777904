//! The small URL checks the SDK and the server agree on.
//!
//! The SDK avoids a full URL parser (it would weigh on the wasm download); the server parses
//! with a real one before sending, after these checks pass.

use crate::{ApiError, ErrorCode};

/// The answer to any url a key's secret may not be sent to.
pub const DESTINATION_NOT_ALLOWED: &str = "Destination is not allowed for this client secret.";

/// The part of an absolute http(s) URL between `//` and the path, or `None` when `url` is not
/// an absolute http(s) URL with a host.
pub fn authority(url: &str) -> Option<&str> {
    let rest = strip_prefix_ignore_case(url, "https://").or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let end = rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(rest.len());
    // (`get` rather than indexing: no panic path, which the wasm would carry.)
    let authority = rest.get(..end)?;
    let host = crate::text::split_at_byte(authority, b'@', true).map_or(authority, |(_, host)| host);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    Some(authority)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let (head, tail) = (s.get(..prefix.len())?, s.get(prefix.len()..)?);
    head.eq_ignore_ascii_case(prefix).then_some(tail)
}

/// Checks a request url as skapi-js does (`"…" is an invalid url.`), and that the placeholder
/// is nowhere before the path: a secret in the host would be sent wherever the caller wants.
pub fn validate(url: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::invalid_parameter(["\"", url, "\" is an invalid url."].concat());
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let authority = authority(url).ok_or_else(invalid)?;
    if authority.contains('$') {
        // A secret in the host, port or user info would go wherever the caller points it.
        return Err(ApiError::new(ErrorCode::InvalidRequest, DESTINATION_NOT_ALLOWED));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_urls() {
        for u in [
            "https://api.openai.com/v1/images/generations",
            "HTTP://127.0.0.1:8080",
            "https://x.io?k=$CLIENT_SECRET",
            "https://x.io/$CLIENT_SECRET/a",
        ] {
            assert!(validate(u).is_ok(), "{u}");
        }
    }

    #[test]
    fn refuses_non_urls_with_skapi_js_message() {
        let err = validate("not a url").unwrap_err();
        assert_eq!(err.message, "\"not a url\" is an invalid url.");
        for u in ["ftp://x.io", "https://", "https:///path", "https://:80/", "//x.io", "https://x .io"] {
            assert!(validate(u).is_err(), "{u}");
        }
    }

    #[test]
    fn refuses_placeholder_before_the_path() {
        for u in ["https://$CLIENT_SECRET.evil.io/", "https://user:$CLIENT_SECRET@x.io/", "https://x.io:$CLIENT_SECRET/"] {
            let err = validate(u).unwrap_err();
            assert_eq!((err.code, err.message.as_str()), (ErrorCode::InvalidRequest, DESTINATION_NOT_ALLOWED), "{u}");
        }
    }

    #[test]
    fn authority_stops_at_path_query_or_fragment() {
        assert_eq!(authority("https://a.io:8/x"), Some("a.io:8"));
        assert_eq!(authority("https://a.io?x"), Some("a.io"));
        assert_eq!(authority("https://u@a.io#f"), Some("u@a.io"));
    }
}
