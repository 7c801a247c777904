//! Where the placeholder stands in a request: a key may allow it only in some positions, so a
//! secret meant for an `Authorization` header cannot be smuggled into a chat prompt.

#[cfg(feature = "json")]
use crate::{placeholder, ApiError, ErrorCode, Request, PLACEHOLDER};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    Url,
    Headers,
    Data,
    Params,
}

impl Position {
    pub const ALL: [Position; 4] = [Position::Url, Position::Headers, Position::Data, Position::Params];

    pub fn as_str(self) -> &'static str {
        match self {
            Position::Url => "url",
            Position::Headers => "headers",
            Position::Data => "data",
            Position::Params => "params",
        }
    }

    pub fn parse(s: &str) -> Option<Position> {
        Position::ALL.into_iter().find(|p| p.as_str() == s.trim().to_ascii_lowercase())
    }
}

/// The positions where `request` holds the placeholder.
#[cfg(feature = "json")]
pub fn used(request: &Request) -> Vec<Position> {
    let mut out = Vec::new();
    if request.url.contains(PLACEHOLDER) {
        out.push(Position::Url);
    }
    if request.headers.values().any(placeholder::contains) {
        out.push(Position::Headers);
    }
    if request.data.as_ref().is_some_and(placeholder::contains) {
        out.push(Position::Data);
    }
    if request.params.as_ref().is_some_and(|p| p.values().any(placeholder::contains)) {
        out.push(Position::Params);
    }
    out
}

/// Refuses a request whose placeholder stands where the key does not allow it (`allowed` empty
/// = anywhere).
#[cfg(feature = "json")]
pub fn check(allowed: &[Position], request: &Request) -> Result<(), ApiError> {
    if allowed.is_empty() {
        return Ok(());
    }
    match used(request).into_iter().find(|p| !allowed.contains(p)) {
        Some(p) => {
            Err(ApiError::new(ErrorCode::InvalidRequest, format!("\"$CLIENT_SECRET\" is not allowed in \"{}\" for this client secret.", p.as_str())))
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: serde_json::Value) -> Request {
        let mut base = json!({"clientSecretName": "k", "method": "POST", "url": "https://x.io/a"});
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        Request::from_js(&base).unwrap().0
    }

    #[test]
    fn finds_every_position_used() {
        let r = request(json!({"url": "https://x.io/?k=$CLIENT_SECRET", "headers": {"A": "$CLIENT_SECRET"}, "data": {"p": ["$CLIENT_SECRET"]}}));
        assert_eq!(used(&r), vec![Position::Url, Position::Headers, Position::Data]);
    }

    #[test]
    fn refuses_positions_the_key_does_not_allow() {
        let smuggled = request(json!({"headers": {"Authorization": "Bearer $CLIENT_SECRET"}, "data": {"prompt": "say $CLIENT_SECRET"}}));
        let err = check(&[Position::Headers], &smuggled).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest);
        assert!(err.message.contains("\"data\""), "{}", err.message);
        assert!(check(&[Position::Headers, Position::Data], &smuggled).is_ok());
        assert!(check(&[], &smuggled).is_ok());
    }

    #[test]
    fn parses_names() {
        assert_eq!(Position::parse(" Headers "), Some(Position::Headers));
        assert_eq!(Position::parse("body"), None);
    }
}
