//! A key's request rules: a JSON Schema (draft 2020-12) that every request sent with the key must
//! satisfy, applied to `{method, url, headers, data, params}` as the caller sent them
//! (placeholders as written, the method in capitals, a form already read into its object).

use serde_json::{json, Value};
use skapi_core::{ApiError, ErrorCode, Request};

/// Whether `schema` is a JSON Schema this server can apply, and if not, why.
pub fn valid(schema: &Value) -> Result<(), String> {
    jsonschema::draft202012::new(schema).map(|_| ()).map_err(|e| format!("the request schema is not valid JSON Schema: {e}"))
}

/// The request as its rules see it.
fn instance(request: &Request) -> Value {
    json!({
        "method": request.method.upper(),
        "url": request.url,
        "headers": request.headers,
        "data": request.data,
        "params": request.params,
    })
}

/// Checks `request` against `schema`: `INVALID_REQUEST` naming the first place that breaks a
/// rule, and the rule (`/data/n: 2 is greater than the maximum of 1`).
pub fn check(schema: &Value, request: &Request) -> Result<(), ApiError> {
    let validator = jsonschema::draft202012::new(schema)
        .map_err(|_| ApiError::new(ErrorCode::InvalidRequest, "This client secret's request rules cannot be applied: its operator must fix them."))?;
    let instance = instance(request);
    let first = validator.iter_errors(&instance).next().map(|error| {
        let place = error.instance_path().to_string();
        let place = if place.is_empty() { "/".to_owned() } else { place };
        format!("{place}: {error}")
    });
    first.map_or(Ok(()), |refusal| Err(ApiError::new(ErrorCode::InvalidRequest, refusal)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skapi_core::wire::CsrBody;

    fn request(data: Value) -> Request {
        let body: CsrBody = serde_json::from_value(json!({
            "clientSecretName": "openai", "url": "https://api.openai.com/v1/images/generations", "method": "post",
            "headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": data
        }))
        .unwrap();
        Request::from_wire(&body).unwrap()
    }

    #[test]
    fn the_first_broken_rule_is_named_with_its_place() {
        let schema = json!({
            "type": "object",
            "properties": {
                "method": {"const": "POST"},
                "data": {"type": "object", "required": ["model"], "properties": {
                    "model": {"enum": ["gpt-image-1.5"]},
                    "n": {"type": "integer", "maximum": 1}
                }}
            }
        });
        assert!(check(&schema, &request(json!({"model": "gpt-image-1.5", "n": 1}))).is_ok());
        let refused = check(&schema, &request(json!({"model": "gpt-image-1.5", "n": 2}))).unwrap_err();
        assert_eq!((refused.code, refused.message.as_str()), (ErrorCode::InvalidRequest, "/data/n: 2 is greater than the maximum of 1"));
        let refused = check(&schema, &request(json!({"n": 1}))).unwrap_err();
        assert_eq!(refused.message, "/data: \"model\" is a required property");
        let root = check(&json!({"not": {}}), &request(json!({}))).unwrap_err();
        assert!(root.message.starts_with("/: "), "{}", root.message);
    }

    /// The examples of docs/paid-keys.md are rules this server applies, and refuse what the page
    /// says they refuse.
    #[test]
    fn the_documented_examples_hold() {
        let page = include_str!("../../docs/paid-keys.md");
        let examples: Vec<Value> = page.split("```json\n").skip(1).map(|b| serde_json::from_str(b.split("```").next().unwrap()).unwrap()).collect();
        assert_eq!(examples.len(), 2, "the images and the chat rules");
        for schema in &examples {
            valid(schema).unwrap();
        }
        let images = &examples[0];
        let one = json!({"model": "gpt-image-1.5", "prompt": "an otter", "n": 1, "size": "1024x1024"});
        assert!(check(images, &request(one.clone())).is_ok());
        let mut two = one.clone();
        two["n"] = json!(2);
        assert_eq!(check(images, &request(two)).unwrap_err().message, "/data/n: 2 is greater than the maximum of 1");
        let mut long = one;
        long["prompt"] = json!("x".repeat(1001));
        assert!(check(images, &request(long)).is_err(), "a prompt over 1,000 characters");
        let chat = &examples[1];
        let ask = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 800});
        assert!(check(chat, &request(ask.clone())).is_ok());
        let mut dear = ask;
        dear["model"] = json!("o1");
        assert!(check(chat, &request(dear)).is_err(), "another model");
    }

    #[test]
    fn a_schema_that_is_not_json_schema_is_refused() {
        assert!(valid(&json!({"type": "object", "properties": {"n": {"maximum": 1}}})).is_ok());
        let why = valid(&json!({"type": "no-such-type"})).unwrap_err();
        assert!(why.starts_with("the request schema is not valid JSON Schema: "), "{why}");
        assert!(valid(&json!({"minimum": "one"})).is_err());
    }
}
