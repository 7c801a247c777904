//! Scrubbing a secret out of anything the server stores or returns.

use crate::encoding::{base64, percent_encode, BASE64 as STANDARD, BASE64_URL as URL_SAFE};
use crate::PLACEHOLDER;

/// Replaces every occurrence of `secret` in `text` by the placeholder — as written, and in the
/// percent-encoded, form-encoded, JSON-escaped and base64 forms an upstream might echo it in.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(secret, PLACEHOLDER);
    let forms = [
        percent_encode(secret),
        percent_encode(secret).replace("%20", "+"),
        json_escape(secret),
        base64(secret.as_bytes(), STANDARD),
        base64(secret.as_bytes(), URL_SAFE),
        base64(secret.as_bytes(), STANDARD).trim_end_matches('=').to_owned(),
        base64(secret.as_bytes(), URL_SAFE).trim_end_matches('=').to_owned(),
    ];
    for form in forms {
        if form != secret && !form.is_empty() {
            out = out.replace(&form, PLACEHOLDER);
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_plain_encoded_and_escaped_forms() {
        let secret = "sk-a/b\"c d";
        let text = format!("raw {secret} pct sk-a%2Fb%22c%20d json {}", serde_json::to_string(secret).unwrap());
        let out = redact(&text, secret);
        assert!(!out.contains("sk-a"), "{out}");
        assert_eq!(out.matches(PLACEHOLDER).count(), 3);
    }

    #[test]
    fn removes_base64_forms() {
        assert_eq!(base64(b"sk-1", STANDARD), "c2stMQ==");
        assert_eq!(base64(b"any carnal pleas", STANDARD), "YW55IGNhcm5hbCBwbGVhcw==");
        assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8=");
        let secret = "sk-live-abc?";
        let text = format!("b64 {} url {} bare {}", base64(secret.as_bytes(), STANDARD), base64(secret.as_bytes(), URL_SAFE), base64(secret.as_bytes(), STANDARD).trim_end_matches('='));
        let out = redact(&text, secret);
        assert_eq!(out.matches(PLACEHOLDER).count(), 3, "{out}");
    }

    #[test]
    fn leaves_text_without_the_secret_alone() {
        assert_eq!(redact("hello", "sk-123"), "hello");
        assert_eq!(redact("hello", ""), "hello");
    }
}
