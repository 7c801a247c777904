//! Files in a request: where they sit in `data`, whether they may be sent, how the body a third
//! party receives is laid out (`multipart/form-data`), and what history keeps of them.
//!
//! The SDK takes each `File`/`Blob` out of `data` and leaves a marker object `{"skapi:file": n}`
//! where it was, `n` being the file's place among the request's files (docs/protocol.md,
//! "Files"). Markers mean files only when the request carries files: without any, `data` goes
//! out exactly as written.

use crate::ApiError;
#[cfg(feature = "json")]
pub use with_json::*;

/// The key of a marker object standing for file `n` in `data`.
pub const FILE_KEY: &str = "skapi:file";

/// Whether a `Content-Type` header value is `multipart/form-data`.
pub fn is_multipart(content_type: &str) -> bool {
    // Byte by byte (`split`/`trim` would bring str's searchers and Unicode tables into the wasm).
    let media_type = crate::text::split_at_byte(content_type, b';', false).map_or(content_type, |(m, _)| m);
    media_type.trim_ascii().eq_ignore_ascii_case("multipart/form-data")
}

/// A file at `path` (`data[file]`) in a request that is not `multipart/form-data`.
pub fn not_multipart(path: &str) -> ApiError {
    ApiError::invalid_parameter(["\"", path, "\" holds a file: send files with the header \"Content-Type\": \"multipart/form-data\"."].concat())
}

#[cfg(feature = "json")]
mod with_json {
    use super::{is_multipart, not_multipart, FILE_KEY};
    use crate::ApiError;
    use serde_json::{Map, Value};

    /// One file of a request.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Upload {
        /// The name the file had in the browser (`blob` for a Blob without one).
        pub filename: String,
        pub content_type: String,
        pub bytes: Vec<u8>,
    }

    impl Upload {
        /// What history keeps of a file: its name, type and size, never its bytes.
        pub fn summary(&self) -> Value {
            serde_json::json!({"filename": self.filename, "content_type": self.content_type, "size": self.bytes.len()})
        }
    }

    /// The file a marker object stands for.
    pub fn marker(value: &Value) -> Option<usize> {
        let map = value.as_object().filter(|m| m.len() == 1)?;
        usize::try_from(map.get(FILE_KEY)?.as_u64()?).ok()
    }

    /// Where each marker sits in `data`, as `data[a][0]`, in document order.
    fn markers(value: &Value, path: &mut String, out: &mut Vec<(String, usize)>) {
        if let Some(n) = marker(value) {
            out.push((path.clone(), n));
            return;
        }
        let mut visit = |key: &str, child: &Value| {
            let len = path.len();
            path.push('[');
            path.push_str(key);
            path.push(']');
            markers(child, path, out);
            path.truncate(len);
        };
        match value {
            Value::Object(map) => map.iter().for_each(|(k, v)| visit(k, v)),
            Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| visit(&i.to_string(), v)),
            _ => {}
        }
    }

    /// A request with `files` may be sent: it has a body, a multipart content type, and `data`
    /// places every file exactly once.
    pub fn check(data: Option<&Value>, files: &[Upload], has_body: bool, content_type: Option<&str>) -> Result<(), ApiError> {
        let multipart = content_type.is_some_and(is_multipart);
        if multipart && has_body && data.is_some_and(|d| !d.is_object()) {
            return Err(ApiError::invalid_parameter("\"data\" should be an object: its fields make the multipart/form-data body."));
        }
        if files.is_empty() {
            return Ok(());
        }
        let mut found = Vec::new();
        if let Some(data) = data {
            markers(data, &mut "data".to_owned(), &mut found);
        }
        let first = found.first().map_or("data", |(path, _)| path.as_str());
        if !has_body {
            return Err(ApiError::invalid_parameter(format!("\"{first}\" holds a file: files need a method with a body (POST, PUT, PATCH).")));
        }
        if !multipart {
            return Err(not_multipart(first));
        }
        let mut placed = vec![false; files.len()];
        for (path, n) in &found {
            match placed.get_mut(*n) {
                Some(seen @ false) => *seen = true,
                Some(true) => return Err(ApiError::invalid_parameter(format!("\"{path}\": file {n} is placed twice."))),
                None => return Err(ApiError::invalid_parameter(format!("\"{path}\": there is no file {n}."))),
            }
        }
        match placed.iter().position(|p| !p) {
            Some(n) => Err(ApiError::invalid_parameter(format!("File {n} is not placed in \"data\"."))),
            None => Ok(()),
        }
    }

    /// One part of a multipart body.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Part {
        Text { name: String, value: String },
        File { name: String, file: usize },
    }

    /// A value as a form field's text: strings as written, `null` empty, anything else as JSON.
    pub fn field_text(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }

    /// The parts of `data` (an object, markers standing for files): the text fields, then the
    /// files (some APIs, S3's form uploads among them, read fields only before the file), each in
    /// key order. Keys nest with brackets (`meta[lang]`); an array repeats its key for each text or
    /// file in it (as a form with several values of one name does) and indexes objects and arrays
    /// inside it (`items[0][id]`).
    pub fn parts(data: &Map<String, Value>) -> Vec<Part> {
        fn walk(name: String, value: &Value, out: &mut Vec<Part>) {
            if let Some(file) = marker(value) {
                out.push(Part::File { name, file });
                return;
            }
            match value {
                Value::Object(map) => map.iter().for_each(|(k, v)| walk(format!("{name}[{k}]"), v, out)),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let nested = matches!(item, Value::Object(_) | Value::Array(_)) && marker(item).is_none();
                        walk(if nested { format!("{name}[{i}]") } else { name.clone() }, item, out);
                    }
                }
                scalar => out.push(Part::Text { name, value: field_text(scalar) }),
            }
        }
        let mut out = Vec::new();
        for (key, value) in data {
            walk(key.clone(), value, &mut out);
        }
        // Stable: each kind keeps its order.
        out.sort_by_key(|part| matches!(part, Part::File { .. }));
        out
    }

    /// `data` as history keeps it: each marker replaced by its file's summary.
    pub fn summarized(data: &Value, files: &[Upload]) -> Value {
        if let Some(file) = marker(data).and_then(|n| files.get(n)) {
            return file.summary();
        }
        match data {
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), summarized(v, files))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(|v| summarized(v, files)).collect()),
            other => other.clone(),
        }
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, bytes: &[u8]) -> Upload {
        Upload { filename: name.into(), content_type: "audio/wav".into(), bytes: bytes.to_vec() }
    }

    const MULTIPART: Option<&str> = Some("multipart/form-data");

    #[test]
    fn markers_are_exactly_one_key_with_a_whole_number() {
        assert_eq!(marker(&json!({"skapi:file": 2})), Some(2));
        for not in [json!({"skapi:file": "2"}), json!({"skapi:file": 1.5}), json!({"skapi:file": -1}), json!({"skapi:file": 0, "x": 1}), json!([0])] {
            assert_eq!(marker(&not), None, "{not}");
        }
    }

    #[test]
    fn multipart_content_types_are_recognised_with_parameters_and_any_case() {
        assert!(is_multipart("multipart/form-data"));
        assert!(is_multipart(" Multipart/Form-Data; boundary=x"));
        assert!(is_multipart("multipart/form-data ;boundary=x"));
        for not in ["multipart/mixed", "application/json", "multipart/form", "multipart/form-datax", ""] {
            assert!(!is_multipart(not), "{not}");
        }
    }

    #[test]
    fn files_need_a_body_a_multipart_type_and_a_place_each() {
        let files = [file("a.wav", b"a"), file("b.wav", b"b")];
        let data = json!({"model": "whisper-1", "file": {"skapi:file": 0}, "more": [{"skapi:file": 1}]});
        assert_eq!(check(Some(&data), &files, true, MULTIPART), Ok(()));
        assert_eq!(check(Some(&data), &[], false, None), Ok(()), "no files: markers mean nothing");

        let message = |r: Result<(), ApiError>| r.unwrap_err().message;
        assert_eq!(
            message(check(Some(&data), &files, true, Some("application/json"))),
            "\"data[file]\" holds a file: send files with the header \"Content-Type\": \"multipart/form-data\"."
        );
        assert!(message(check(Some(&data), &files, false, MULTIPART)).contains("a method with a body"));
        assert!(message(check(Some(&json!({"file": {"skapi:file": 0}})), &files, true, MULTIPART)).contains("File 1 is not placed"));
        let twice = json!({"a": {"skapi:file": 0}, "b": {"skapi:file": 0}, "c": {"skapi:file": 1}});
        assert_eq!(message(check(Some(&twice), &files, true, MULTIPART)), "\"data[b]\": file 0 is placed twice.");
        assert_eq!(message(check(Some(&json!({"a": {"skapi:file": 5}})), &files, true, MULTIPART)), "\"data[a]\": there is no file 5.");
        assert!(message(check(Some(&json!([{"skapi:file": 0}])), &files[..1], true, MULTIPART)).contains("should be an object"));
        assert!(message(check(Some(&json!("text")), &[], true, MULTIPART)).contains("should be an object"), "with or without files");
        assert!(message(check(None, &files[..1], true, MULTIPART)).contains("File 0 is not placed"));
    }

    #[test]
    fn parts_nest_keys_repeat_array_names_and_index_nested_arrays() {
        let data = json!({
            "model": "whisper-1", "n": 2, "flag": true, "none": null,
            "meta": {"lang": "ko"}, "tags": ["a", "b"], "file": {"skapi:file": 0},
            "attachments": [{"skapi:file": 1}, {"skapi:file": 2}], "items": [{"id": 7}, ["x"]]
        });
        let text = |name: &str, value: &str| Part::Text { name: name.into(), value: value.into() };
        let file = |name: &str, file| Part::File { name: name.into(), file };
        assert_eq!(
            parts(data.as_object().unwrap()),
            vec![
                text("flag", "true"),
                text("items[0][id]", "7"),
                text("items[1]", "x"),
                text("meta[lang]", "ko"),
                text("model", "whisper-1"),
                text("n", "2"),
                text("none", ""),
                text("tags", "a"),
                text("tags", "b"),
                file("attachments", 1),
                file("attachments", 2),
                file("file", 0),
            ]
        );
    }

    #[test]
    fn history_keeps_each_file_as_its_name_type_and_size() {
        let files = [file("a.wav", b"abc")];
        let data = json!({"model": "m", "list": [{"skapi:file": 0}]});
        assert_eq!(summarized(&data, &files), json!({"model": "m", "list": [{"filename": "a.wav", "content_type": "audio/wav", "size": 3}]}));
    }
}
