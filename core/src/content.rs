//! What kind of answer a third party gave: text — kept as text (JSON parsed) and redacted — or
//! bytes — kept exactly, as base64 beside their content type (docs/protocol.md, *Answers as
//! bytes*).

/// True when an answer with this `Content-Type` (if any) and these bytes is text: a textual
/// media type (or none) and UTF-8 — a character cut at the very end, by the size limit, does
/// not make it bytes.
pub fn is_text(content_type: Option<&str>, bytes: &[u8]) -> bool {
    content_type.is_none_or(textual) && utf8_but_a_cut_end(bytes)
}

/// `text/*`, JSON, XML, JavaScript, form-encoded and their `+json`/`+xml` kin; an empty type
/// says nothing, so counts as text.
fn textual(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let Some((kind, sub)) = essence.split_once('/') else { return essence.is_empty() };
    kind == "text"
        || (kind == "application"
            && (matches!(sub, "json" | "xml" | "javascript" | "ecmascript" | "x-www-form-urlencoded" | "x-ndjson" | "graphql-response+json")
                || sub.ends_with("+json")
                || sub.ends_with("+xml")))
}

fn utf8_but_a_cut_end(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        // `error_len` is `None` when the input ended inside a character.
        Err(e) => e.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_a_textual_type_and_utf8() {
        assert!(is_text(Some("application/json; charset=utf-8"), b"{\"a\":1}"));
        assert!(is_text(Some("text/event-stream"), "data: é\n\n".as_bytes()));
        assert!(is_text(Some("application/problem+json"), b"{}"));
        assert!(is_text(Some("Application/XML"), b"<a/>"));
        assert!(is_text(None, b"plain"));
        assert!(is_text(Some(""), b"plain"));
        // Cut inside the last character by the size limit: still text.
        assert!(is_text(Some("text/plain"), &"aé".as_bytes()[..2]));
    }

    #[test]
    fn bytes_are_any_other_type_or_not_utf8() {
        assert!(!is_text(Some("audio/mpeg"), b"ID3"));
        assert!(!is_text(Some("image/png"), b"\x89PNG"));
        assert!(!is_text(Some("application/octet-stream"), b"plain"));
        assert!(!is_text(Some("text/plain"), b"a\xff b"), "not UTF-8: kept exactly");
        assert!(!is_text(None, &[0xff, 0xfe, 0x00, 0x41]));
        assert!(!is_text(Some("application/jsonx"), b"{}"));
    }
}
