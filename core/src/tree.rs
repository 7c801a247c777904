//! A read-only view of a JSON-like value, so that the rules about request values are written
//! once: the server applies them to `serde_json` values, the SDK to JavaScript values (which it
//! never turns into text or Rust copies, so the third party gets exactly what the page wrote).

/// What a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    Text,
    Array,
    Object,
    /// Anything JSON cannot hold (`undefined`, a function, a `File`…).
    Other,
}

/// How deep [`Tree::any_text`] looks: deeper values are not searched (JSON parsers refuse them
/// anyway; this keeps a hostile value from exhausting the stack).
pub const MAX_DEPTH: usize = 128;

pub trait Tree: Sized {
    fn kind(&self) -> Kind;
    /// The text of a [`Kind::Text`] value.
    fn text(&self) -> Option<String>;
    /// The number of a [`Kind::Number`] value.
    fn number(&self) -> Option<f64>;
    /// The value of a [`Kind::Bool`] value.
    fn boolean(&self) -> Option<bool>;
    /// Calls `f` with the value at `key` of an object (`None` when absent or not an object).
    fn field<R>(&self, key: &str, f: impl FnOnce(Option<&Self>) -> R) -> R;
    /// Calls `f` with each entry of an object (its key) or item of an array (`""`), in order,
    /// until `f` returns `false`.
    fn entries(&self, f: &mut dyn FnMut(&str, &Self) -> bool);

    /// True when any string inside (object values and array items, at any depth up to
    /// [`MAX_DEPTH`]) satisfies `test`. Keys are not searched.
    fn any_text(&self, test: &dyn Fn(&str) -> bool) -> bool {
        fn walk<T: Tree>(v: &T, test: &dyn Fn(&str) -> bool, depth: usize) -> bool {
            match v.kind() {
                Kind::Text => v.text().is_some_and(|s| test(&s)),
                Kind::Array | Kind::Object if depth < MAX_DEPTH => {
                    let mut found = false;
                    v.entries(&mut |_, child| {
                        found = walk(child, test, depth + 1);
                        !found
                    });
                    found
                }
                _ => false,
            }
        }
        walk(self, test, 0)
    }
}

/// Reads a wire type out of a value: how the SDK reads what the server's serde derives wrote,
/// straight from the JavaScript value (a test checks both readings of a type agree). `None`
/// when the value does not have the type's shape.
pub trait FromTree<T: Tree>: Sized {
    fn from_tree(value: &T) -> Option<Self>;
}

/// What an optional field reads as: absent/`null` → `Some(None)`; present and of the type →
/// `Some(Some(_))`; present and not of the type → `None` (the whole value is refused).
pub fn optional<T: Tree, R>(obj: &T, key: &str, read: impl FnOnce(&T) -> Option<R>) -> Option<Option<R>> {
    obj.field(key, |v| match v {
        None => Some(None),
        Some(v) if v.kind() == Kind::Null => Some(None),
        Some(v) => read(v).map(Some),
    })
}

#[cfg(feature = "json")]
impl Tree for serde_json::Value {
    fn kind(&self) -> Kind {
        use serde_json::Value;
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::Text,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn text(&self) -> Option<String> {
        self.as_str().map(str::to_owned)
    }

    fn number(&self) -> Option<f64> {
        self.as_f64()
    }

    fn boolean(&self) -> Option<bool> {
        self.as_bool()
    }

    fn field<R>(&self, key: &str, f: impl FnOnce(Option<&Self>) -> R) -> R {
        f(self.as_object().and_then(|m| m.get(key)))
    }

    fn entries(&self, f: &mut dyn FnMut(&str, &Self) -> bool) {
        match self {
            serde_json::Value::Array(items) => {
                for item in items {
                    if !f("", item) {
                        return;
                    }
                }
            }
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if !f(k, v) {
                        return;
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn searches_strings_at_any_depth_but_not_keys() {
        let v = json!({"a": [1, {"b": "x $CLIENT_SECRET"}], "$CLIENT_SECRET": 2});
        assert!(v.any_text(&|s| s.contains("$CLIENT_SECRET")));
        assert!(!json!({"$CLIENT_SECRET": 1}).any_text(&|s| s.contains("$CLIENT_SECRET")));
        assert_eq!(json!([]).kind(), Kind::Array);
        assert_eq!(v.field("a", |a| a.map(Tree::kind)), Some(Kind::Array));
    }

    #[test]
    fn stops_at_the_depth_limit_without_overflowing() {
        let mut v = json!("$CLIENT_SECRET");
        for _ in 0..(MAX_DEPTH + 10) {
            v = json!([v]);
        }
        assert!(!v.any_text(&|s| s.contains("$CLIENT_SECRET")));
    }
}
