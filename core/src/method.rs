//! The HTTP methods a client-secret request may use: skapi-js 1.5.8's four, and `PATCH` and
//! `HEAD` as Skapi's newest SDK accepts them.

use crate::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Patch,
    Head,
}

pub const INVALID_METHOD: &str = r#""method" should be either "GET" or "POST" or "DELETE" or "PUT" or "PATCH" or "HEAD"."#;

impl Method {
    /// Parses a method name in any case, with skapi-js's error message.
    pub fn parse(s: &str) -> Result<Method, ApiError> {
        match s.to_ascii_lowercase().as_str() {
            "get" => Ok(Method::Get),
            "post" => Ok(Method::Post),
            "put" => Ok(Method::Put),
            "delete" => Ok(Method::Delete),
            "patch" => Ok(Method::Patch),
            "head" => Ok(Method::Head),
            _ => Err(ApiError::invalid_parameter(INVALID_METHOD)),
        }
    }

    pub fn upper(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Patch => "PATCH",
            Method::Head => "HEAD",
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Delete => "delete",
            Method::Patch => "patch",
            Method::Head => "head",
        }
    }

    /// POST, PUT and PATCH carry `data` as a body; GET, DELETE and HEAD carry `params` in the
    /// query.
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put | Method::Patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_any_case_and_refuses_others() {
        assert_eq!(Method::parse("pOsT").unwrap(), Method::Post);
        assert_eq!(Method::parse("delete").unwrap(), Method::Delete);
        assert_eq!(Method::parse("Patch").unwrap(), Method::Patch);
        assert_eq!(Method::parse("HEAD").unwrap(), Method::Head);
        assert!(Method::Patch.has_body() && !Method::Head.has_body());
        let err = Method::parse("TRACE").unwrap_err();
        assert_eq!(err.message, INVALID_METHOD);
        assert!(Method::parse("").is_err());
    }
}
