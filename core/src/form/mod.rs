//! Turning a form's named controls into the params object, as skapi-js does: bracket names
//! nest (`headers[Authorization]` → `headers.Authorization`, `data[a][b]` → `data.a.b`),
//! numeric segments make arrays, `name[]` appends, a repeated name becomes an array.
//!
//! Names are untrusted page input: every limit below answers `INVALID_PARAMETER`, never a
//! panic, a hang or a huge allocation. `__proto__` and friends are plain keys here, and stay
//! plain own properties in JS (the SDK defines properties rather than assigning them).

mod control;

use crate::text::decimal;
use crate::ApiError;
pub use control::{Control, ControlKind, InputReads};

/// Longest control name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Most bracket segments in one name.
pub const MAX_DEPTH: usize = 32;
/// Largest array index a name may use (arrays are filled with `null` up to it).
pub const MAX_INDEX: usize = 1000;

/// One control's value, already typed by the control it came from.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Text(String),
    Number(f64),
    Bool(bool),
    /// A chosen file: its place in the list of the form's files, which the caller keeps.
    File(usize),
}

/// The params a form makes: JSON-shaped, objects keeping their keys in document order.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Text(String),
    Number(f64),
    Bool(bool),
    File(usize),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl From<FieldValue> for Node {
    fn from(value: FieldValue) -> Node {
        match value {
            FieldValue::Text(s) => Node::Text(s),
            FieldValue::Number(n) => Node::Number(n),
            FieldValue::Bool(b) => Node::Bool(b),
            FieldValue::File(n) => Node::File(n),
        }
    }
}

/// The value at `key` of an object's entries, made by `make` when missing.
fn entry<'a>(map: &'a mut Vec<(String, Node)>, key: &str, make: impl FnOnce() -> Node) -> &'a mut Node {
    let at = match map.iter().position(|(k, _)| k == key) {
        Some(at) => at,
        None => {
            map.push((key.to_owned(), make()));
            map.len() - 1
        }
    };
    match map.get_mut(at) {
        Some((_, node)) => node,
        // Found or just pushed. (`get_mut`, not indexing: see `container_for`.)
        None => unreachable!(),
    }
}

/// One name/value pair, in document order. `many` marks values of a `<select multiple>`,
/// which make an array even when only one option is selected.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub value: FieldValue,
    pub many: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
    Append,
}

fn invalid(name: &str, why: &str) -> ApiError {
    let shown: String = name.chars().take(60).collect();
    let ellipsis = if shown.len() < name.len() { "…" } else { "" };
    ApiError::invalid_parameter(["Form field name \"", &shown, ellipsis, "\" ", why, "."].concat())
}

/// Splits `a[b][0][]` into segments. A name without `[` is one plain key, whatever else it
/// holds (so `a]]b` is the key `a]]b`).
fn parse_name(name: &str) -> Result<Vec<Segment>, ApiError> {
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(name, &["is longer than ", &decimal(MAX_NAME_LEN as u64), " bytes"].concat()));
    }
    let Some(open) = name.bytes().position(|b| b == b'[') else {
        return Ok(vec![Segment::Key(name.to_owned())]);
    };
    if open == 0 {
        return Err(invalid(name, "cannot start with a bracket"));
    }
    // (`get` rather than indexing, here and below: no panic path, which the wasm would carry.)
    let mut segments = vec![Segment::Key(name.get(..open).unwrap_or_default().to_owned())];
    let mut rest = name.get(open..).unwrap_or_default();
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[').ok_or_else(|| invalid(name, "has text after a closing bracket"))?;
        let close = inner.bytes().position(|b| b == b']').ok_or_else(|| invalid(name, "has an unclosed bracket"))?;
        let segment = inner.get(..close).unwrap_or_default();
        if segment.bytes().any(|b| b == b'[') {
            return Err(invalid(name, "has a bracket inside a bracket"));
        }
        rest = inner.get(close + 1..).unwrap_or_default();
        segments.push(if segment.is_empty() {
            if !rest.is_empty() {
                return Err(invalid(name, "has \"[]\" before its last segment"));
            }
            Segment::Append
        } else if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            let index: usize = segment.parse().unwrap_or(usize::MAX);
            if index > MAX_INDEX {
                return Err(invalid(name, &["uses an index over ", &decimal(MAX_INDEX as u64)].concat()));
            }
            Segment::Index(index)
        } else {
            Segment::Key(segment.to_owned())
        });
        if segments.len() > MAX_DEPTH {
            return Err(invalid(name, &["nests deeper than ", &decimal(MAX_DEPTH as u64), " levels"].concat()));
        }
    }
    Ok(segments)
}

/// The container segment `at` of a name needs: an object for a key, an array for an index.
/// (Read with `get`, as every lookup here: no indexing panic, whose message would bring number
/// formatting into the SDK's wasm.)
fn container_for(segments: &[Segment], at: usize) -> Node {
    match segments.get(at) {
        Some(Segment::Key(_)) => Node::Object(Vec::new()),
        Some(Segment::Index(_) | Segment::Append) => Node::Array(Vec::new()),
        None => Node::Null,
    }
}

/// Puts a leaf value at `slot`: a second value for the same name makes an array.
fn put_leaf(slot: &mut Node, value: Node, many: bool) {
    match slot {
        Node::Null => *slot = if many { Node::Array(vec![value]) } else { value },
        Node::Array(items) => items.push(value),
        other => {
            let first = std::mem::replace(other, Node::Null);
            *other = Node::Array(vec![first, value]);
        }
    }
}

fn insert(root: &mut Vec<(String, Node)>, name: &str, segments: &[Segment], value: Node, many: bool) -> Result<(), ApiError> {
    // `parse_name` always starts with a key; an error rather than a panic path otherwise.
    let Some(Segment::Key(first)) = segments.first() else {
        return Err(invalid(name, "conflicts with another field's name"));
    };
    if segments.len() == 1 {
        put_leaf(entry(root, first, || Node::Null), value, many);
        return Ok(());
    }
    let mut node = entry(root, first, || container_for(segments, 1));
    for (i, segment) in segments.iter().enumerate().skip(1) {
        let last = i == segments.len() - 1;
        let conflict = || invalid(name, "conflicts with another field's name");
        node = match (segment, node) {
            (Segment::Append, Node::Array(items)) => {
                items.push(if many { Node::Array(vec![value]) } else { value });
                return Ok(());
            }
            (Segment::Key(key), Node::Object(map)) => {
                if last {
                    put_leaf(entry(map, key, || Node::Null), value, many);
                    return Ok(());
                }
                entry(map, key, || container_for(segments, i + 1))
            }
            (Segment::Index(index), Node::Array(items)) => {
                if items.len() <= *index {
                    items.resize_with(*index + 1, || Node::Null);
                }
                let Some(slot) = items.get_mut(*index) else { return Err(conflict()) };
                if last {
                    put_leaf(slot, value, many);
                    return Ok(());
                }
                if matches!(slot, Node::Null) {
                    *slot = container_for(segments, i + 1);
                }
                slot
            }
            // An index into an object is a key ("0"), as in JS.
            (Segment::Index(index), Node::Object(map)) => {
                let key = decimal(*index as u64);
                if last {
                    put_leaf(entry(map, &key, || Node::Null), value, many);
                    return Ok(());
                }
                entry(map, &key, || container_for(segments, i + 1))
            }
            _ => return Err(conflict()),
        };
    }
    Err(invalid(name, "conflicts with another field's name"))
}

/// Builds the params object from a form's fields, in document order.
pub fn build(fields: impl IntoIterator<Item = Field>) -> Result<Node, ApiError> {
    let mut root = Vec::new();
    for field in fields {
        let segments = parse_name(&field.name)?;
        let in_data = segments.len() > 1 && matches!(&segments[0], Segment::Key(k) if k == "data");
        if matches!(field.value, FieldValue::File(_)) && !in_data {
            return Err(ApiError::invalid_parameter(
                ["File input \"", &field.name, "\" is outside \"data\": name it data[…], e.g. data[file]."].concat(),
            ));
        }
        insert(&mut root, &field.name, &segments, field.value.into(), field.many)?;
    }
    Ok(Node::Object(root))
}

/// A form that is a request's body (`forwardRequest`'s first argument): every field, nested by
/// the same rules, and its files left out — the body goes as JSON, which has no room for them
/// (`multipart: true` sends the form itself instead).
pub fn build_body(fields: impl IntoIterator<Item = Field>) -> Result<Node, ApiError> {
    let mut root = Vec::new();
    for field in fields.into_iter().filter(|f| !matches!(f.value, FieldValue::File(_))) {
        let segments = parse_name(&field.name)?;
        insert(&mut root, &field.name, &segments, field.value.into(), field.many)?;
    }
    Ok(Node::Object(root))
}

/// The same params as JSON, for the native tests.
#[cfg(test)]
fn json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Null => Value::Null,
        Node::Text(s) => Value::String(s.clone()),
        Node::Number(n) if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 => Value::from(*n as i64),
        Node::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
        Node::Bool(b) => Value::Bool(*b),
        Node::File(n) => serde_json::json!({ crate::upload::FILE_KEY: n }),
        Node::Array(items) => Value::Array(items.iter().map(json).collect()),
        Node::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_form_leaves_its_files_out_wherever_they_are() {
        let text = |name: &str, value: &str| Field { name: name.into(), value: FieldValue::Text(value.into()), many: false };
        let file = |name: &str, n| Field { name: name.into(), value: FieldValue::File(n), many: false };
        let node = build_body(vec![text("prompt", "otter"), file("photo", 0), text("size[w]", "1024"), file("size[file]", 1)]).unwrap();
        assert_eq!(json(&node), json!({"prompt": "otter", "size": {"w": "1024"}}));
    }

    #[test]
    fn files_nest_like_any_value_and_only_inside_data() {
        let file = |name: &str, n, many| Field { name: name.into(), value: FieldValue::File(n), many };
        let node = build(vec![file("data[file]", 0, false), file("data[more]", 1, true), file("data[more]", 2, true)]).unwrap();
        assert_eq!(node, json!({"data": {"file": {"skapi:file": 0}, "more": [{"skapi:file": 1}, {"skapi:file": 2}]}}));
        for outside in ["file", "data", "headers[x]"] {
            let message = build(vec![file(outside, 0, false)]).unwrap_err().message;
            assert_eq!(message, format!("File input \"{outside}\" is outside \"data\": name it data[…], e.g. data[file]."));
        }
    }

    fn build(fields: Vec<Field>) -> Result<serde_json::Value, ApiError> {
        super::build(fields).map(|node| super::json(&node))
    }

    fn text(name: &str, value: &str) -> Field {
        Field { name: name.into(), value: FieldValue::Text(value.into()), many: false }
    }

    #[test]
    fn builds_the_seed_form() {
        let fields = vec![
            text("clientSecretName", "openai"),
            text("url", "https://api.openai.com/v1/images/generations"),
            text("method", "POST"),
            text("headers[Content-Type]", "application/json"),
            text("headers[Authorization]", "Bearer $CLIENT_SECRET"),
            text("data[model]", "gpt-image-1.5"),
            Field { name: "data[n]".into(), value: FieldValue::Number(1.0), many: false },
            text("data[size]", "1024x1024"),
            text("data[prompt]", "A cute baby sea otter"),
        ];
        assert_eq!(
            build(fields).unwrap(),
            json!({
                "clientSecretName": "openai", "url": "https://api.openai.com/v1/images/generations", "method": "POST",
                "headers": {"Content-Type": "application/json", "Authorization": "Bearer $CLIENT_SECRET"},
                "data": {"model": "gpt-image-1.5", "n": 1, "size": "1024x1024", "prompt": "A cute baby sea otter"}
            })
        );
    }

    #[test]
    fn nests_indexes_appends_and_repeats() {
        let fields = vec![
            text("data[a][b]", "x"),
            text("list[1]", "second"),
            text("list[0]", "first"),
            text("tags[]", "t1"),
            text("tags[]", "t2"),
            text("same", "1"),
            text("same", "2"),
            text("same", "3"),
            text("rows[0][name]", "r0"),
            text("rows[1][name]", "r1"),
            Field { name: "pick".into(), value: FieldValue::Text("only".into()), many: true },
            Field { name: "flag".into(), value: FieldValue::Bool(false), many: false },
        ];
        assert_eq!(
            build(fields).unwrap(),
            json!({"data": {"a": {"b": "x"}}, "list": ["first", "second"], "tags": ["t1", "t2"], "same": ["1", "2", "3"],
                   "rows": [{"name": "r0"}, {"name": "r1"}], "pick": ["only"], "flag": false})
        );
    }

    #[test]
    fn prototype_names_are_plain_keys() {
        let v = build(vec![text("__proto__[polluted]", "1"), text("constructor[prototype][x]", "2")]).unwrap();
        assert_eq!(v, json!({"__proto__": {"polluted": "1"}, "constructor": {"prototype": {"x": "2"}}}));
    }

    #[test]
    fn malformed_names_are_refused_or_plain() {
        for bad in ["a[", "[0]", "a[b]c", "a[]b", "a[][x]", "a[b[c]]", "x[99999999999999999999]", "x[1001]"] {
            let err = build(vec![text(bad, "v")]).unwrap_err();
            assert_eq!(err.code, crate::ErrorCode::InvalidParameter, "{bad}");
        }
        assert_eq!(build(vec![text("a]]b", "v")]).unwrap(), json!({"a]]b": "v"}));
        assert_eq!(build(vec![text("", "v")]).unwrap(), json!({"": "v"}));
        let deep = format!("a{}", "[x]".repeat(10_000));
        assert!(build(vec![text(&deep, "v")]).unwrap_err().message.contains("longer than"));
        let deep_short = format!("a{}", "[x]".repeat(40));
        assert!(build(vec![text(&deep_short, "v")]).unwrap_err().message.contains("deeper"));
        let huge = "n".repeat(1 << 20);
        assert!(build(vec![text(&huge, "v")]).unwrap_err().message.contains("longer than"));
        assert!(build(vec![text("a", "1"), text("a[b]", "2")]).is_err(), "scalar then object");
        assert!(build(vec![text("a[0]", "1"), text("a[b]", "2")]).is_err(), "array then key");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn build(fields: Vec<Field>) -> Result<Value, ApiError> {
        super::build(fields).map(|node| json(&node))
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z_]{0,6}", "[a-z]{1,4}(\\[[a-z0-9]{0,3}\\]){0,5}", "[\\[\\]a-z0-9_]{0,24}", any::<String>(),]
    }

    fn value() -> impl Strategy<Value = FieldValue> {
        prop_oneof![any::<String>().prop_map(FieldValue::Text), any::<f64>().prop_map(FieldValue::Number), any::<bool>().prop_map(FieldValue::Bool),]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_cases(2000)))]

        /// Any list of fields gives an object or INVALID_PARAMETER — never a panic — and the
        /// same input gives the same answer.
        #[test]
        fn never_panics_and_is_deterministic(fields in prop::collection::vec((name(), value(), any::<bool>()), 0..12)) {
            let fields: Vec<Field> = fields.into_iter().map(|(name, value, many)| Field { name, value, many }).collect();
            let first = build(fields.clone());
            match &first {
                Ok(v) => prop_assert!(v.is_object()),
                Err(e) => prop_assert_eq!(e.code, crate::ErrorCode::InvalidParameter),
            }
            prop_assert_eq!(first, build(fields));
        }

        /// A plain name (no brackets) always lands as a top-level key holding its value.
        #[test]
        fn plain_names_are_top_level_keys(key in "[a-zA-Z_][a-zA-Z0-9_]{0,10}", text in any::<String>()) {
            let v = build(vec![Field { name: key.clone(), value: FieldValue::Text(text.clone()), many: false }]).unwrap();
            prop_assert_eq!(&v[&key], &Value::String(text));
        }
    }
}
