//! Finding and filling the `$CLIENT_SECRET` placeholder in nested values.

use crate::tree::Tree;
#[cfg(feature = "json")]
use serde_json::Value;

pub const PLACEHOLDER: &str = "$CLIENT_SECRET";

/// True when `text` holds the placeholder. (A byte-window search: `str::contains` with a
/// string pattern brings a searcher and its panic paths into the wasm.)
pub fn in_text(text: &str) -> bool {
    text.as_bytes().windows(PLACEHOLDER.len()).any(|w| w == PLACEHOLDER.as_bytes())
}

/// True when any string inside `value` (object values and array items, at any depth up to
/// [`crate::tree::MAX_DEPTH`]) holds the placeholder. Object keys are not searched: the server
/// only substitutes values.
pub fn contains<T: Tree>(value: &T) -> bool {
    value.any_text(&in_text)
}

/// Replaces every placeholder in a string.
pub fn fill(s: &str, secret: &str) -> String {
    s.replace(PLACEHOLDER, secret)
}

/// A copy of `value` with every placeholder inside its strings replaced by `secret`.
#[cfg(feature = "json")]
pub fn fill_value(value: &Value, secret: &str) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s, secret)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill_value(v, secret)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), fill_value(v, secret))).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_placeholder_at_any_depth() {
        assert!(contains(&json!("Bearer $CLIENT_SECRET")));
        assert!(contains(&json!({"a": [1, {"b": "x$CLIENT_SECRETy"}]})));
        assert!(!contains(&json!({"$CLIENT_SECRET": "key only"})));
        assert!(!contains(&json!({"a": ["$CLIENT_SECRE", 3, null, true]})));
    }

    #[test]
    fn survives_deep_nesting() {
        let nest = |depth: usize| (0..depth).fold(json!("$CLIENT_SECRET"), |v, _| Value::Array(vec![v]));
        assert!(contains(&nest(crate::tree::MAX_DEPTH)));
        // Deeper than any JSON parser accepts: not searched, and no overflow.
        let mut v = nest(100_000);
        assert!(!contains(&v));
        // serde_json's own recursive Drop would overflow; take it apart iteratively.
        while let Value::Array(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }

    #[test]
    fn fills_every_occurrence_and_keeps_the_rest() {
        let v = json!({"auth": "$CLIENT_SECRET:$CLIENT_SECRET", "n": 1, "list": ["k=$CLIENT_SECRET", false]});
        assert_eq!(fill_value(&v, "s3"), json!({"auth": "s3:s3", "n": 1, "list": ["k=s3", false]}));
    }
}
