//! Request ids: the server's short id and the full ids the SDKs build from it.
//!
//! - short id: `<ms timestamp>:<entropy>` (opaque to the SDKs)
//! - 1.5.8 full id: `[METHOD]<url lower-cased>` + `#<queue>` when queued + `:` + short id
//! - 2.0 full id: `[METHOD]<url lower-cased>#<service>:<short id>`
//!
//! A full id is split into its *key* (everything before the short id, without the `:`) and the
//! short id; a record matches when the key equals its 1.5.8 or 2.0 key. Urls and short ids both
//! hold `:` and `#`, so the split works from the right, where the short id's shape is known.

use crate::Method;

/// `[METHOD]<url lower-cased>`
pub fn base(method: Method, url: &str) -> String {
    base_of_lowered(method, &url.to_lowercase())
}

/// [`base`] of a url the caller lower-cased already (the SDK, with JavaScript's `toLowerCase`,
/// as skapi-js does, so the wasm carries no Unicode case tables).
pub fn base_of_lowered(method: Method, url_lowered: &str) -> String {
    ["[", method.upper(), "]", url_lowered].concat()
}

/// The key of a 1.5.8 full id: the base, then `#<queue>` when there is a queue.
pub fn key_v1(method: Method, url: &str, queue: Option<&str>) -> String {
    match queue {
        Some(q) => [&base(method, url), "#", q].concat(),
        None => base(method, url),
    }
}

/// The key of a 2.0 full id: the base, then `#<service>`.
pub fn key_v2(method: Method, url: &str, service: &str) -> String {
    key_v2_of_lowered(method, &url.to_lowercase(), service)
}

/// [`key_v2`] of a url the caller lower-cased already.
pub fn key_v2_of_lowered(method: Method, url_lowered: &str, service: &str) -> String {
    [&base_of_lowered(method, url_lowered), "#", service].concat()
}

/// `<key>:<short id>`
pub fn full(key: &str, short_id: &str) -> String {
    [key, ":", short_id].concat()
}

/// A short id from a millisecond timestamp and alphanumeric entropy.
pub fn short(ms: u64, entropy: &str) -> String {
    [&crate::text::decimal(ms), ":", entropy].concat()
}

/// The queue Skapi's 2.x SDK gives a stream whose caller named none: `<user id or
/// anonymous>-<random alphanumerics>` (`random` is the caller's to draw).
pub fn stream_queue(user_id: Option<&str>, random: &str) -> String {
    [user_id.filter(|u| !u.is_empty()).unwrap_or("anonymous"), "-", random].concat()
}

/// True when `s` has the shape of a short id: digits, `:`, one or more ASCII alphanumerics.
pub fn is_short(s: &str) -> bool {
    match crate::text::split_at_byte(s, b':', false) {
        Some((ms, entropy)) => {
            !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit()) && !entropy.is_empty() && entropy.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        None => false,
    }
}

/// Splits a full id into `(key, short id)`; `None` when it does not end in a short id.
pub fn split_full(full: &str) -> Option<(&str, &str)> {
    let (rest, entropy) = crate::text::split_at_byte(full, b':', true)?;
    let (key, ms) = crate::text::split_at_byte(rest, b':', true)?;
    let short = full.get(key.len() + 1..)?;
    debug_assert_eq!(short.len(), ms.len() + 1 + entropy.len());
    if is_short(short) && key.starts_with('[') {
        Some((key, short))
    } else {
        None
    }
}

/// Splits a history prefix (`<key>:`) into its key; `None` without the trailing `:`.
pub fn split_prefix(prefix: &str) -> Option<&str> {
    let key = prefix.strip_suffix(':')?;
    key.starts_with('[').then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://API.openai.com/v1/images/generations";

    #[test]
    fn names_a_stream_queue_after_its_user() {
        assert_eq!(stream_queue(Some("user-1"), "aB3dE9"), "user-1-aB3dE9");
        assert_eq!(stream_queue(None, "aB3dE9"), "anonymous-aB3dE9");
        assert_eq!(stream_queue(Some(""), "aB3dE9"), "anonymous-aB3dE9");
    }

    #[test]
    fn composes_both_protocol_forms() {
        let short = short(1700000003000, "a003");
        assert_eq!(
            full(&key_v1(Method::Post, URL, Some("image-jobs")), &short),
            "[POST]https://api.openai.com/v1/images/generations#image-jobs:1700000003000:a003"
        );
        assert_eq!(full(&key_v1(Method::Get, URL, None), &short), "[GET]https://api.openai.com/v1/images/generations:1700000003000:a003");
        assert_eq!(full(&key_v2(Method::Put, URL, "svc1"), &short), "[PUT]https://api.openai.com/v1/images/generations#svc1:1700000003000:a003");
    }

    #[test]
    fn splits_from_the_right_even_with_colons_and_hashes_in_the_url() {
        let key = key_v1(Method::Post, "https://x.io:8443/a:b#frag", Some("q#1:2"));
        let id = full(&key, "17:zz9");
        assert_eq!(split_full(&id), Some((key.as_str(), "17:zz9")));
    }

    #[test]
    fn refuses_ids_without_a_short_id() {
        for bad in ["", "17:ab", "[POST]x:", "[POST]x:abc:def", "[POST]x:17:", "[POST]x:17:a-b", "POST]x:17:ab"] {
            assert_eq!(split_full(bad), None, "{bad}");
        }
    }

    #[test]
    fn history_prefixes_end_in_a_colon() {
        assert_eq!(split_prefix("[POST]https://a.io#svc:"), Some("[POST]https://a.io#svc"));
        assert_eq!(split_prefix("[POST]https://a.io"), None);
    }

    #[test]
    fn short_ids_have_a_fixed_shape() {
        assert!(is_short("1:a"));
        assert!(!is_short("a:1"));
        assert!(!is_short("1:"));
        assert!(!is_short("1:a:b"));
    }
}
