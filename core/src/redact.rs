//! Scrubbing a secret out of anything the server stores or returns.

use crate::PLACEHOLDER;

/// Replaces every occurrence of `secret` in `text` by the placeholder — as written, and in the
/// percent-encoded and JSON-escaped forms an upstream might echo it back in.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let mut out = text.replace(secret, PLACEHOLDER);
    for form in [percent_encode(secret), json_escape(secret)] {
        if form != secret && !form.is_empty() {
            out = out.replace(&form, PLACEHOLDER);
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
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
    fn leaves_text_without_the_secret_alone() {
        assert_eq!(redact("hello", "sk-123"), "hello");
        assert_eq!(redact("hello", ""), "hello");
    }
}
