//! Where a secret could show: the forms it would leak in, and a search of bytes for them.

use super::SECRET;

/// The secret as written and in the encodings it would most likely leak in (for scans of
/// answers, files and logs).
pub fn secret_forms() -> Vec<String> {
    use base64::Engine;
    vec![
        SECRET.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(SECRET),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET),
        url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect(),
    ]
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
