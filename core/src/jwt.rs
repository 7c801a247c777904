//! Reading (not verifying) a JWT's claims: the SDK shows the logged-in user from its ID token;
//! the server verifies tokens with a real JWT library.

use crate::ApiError;
use serde_json::{Map, Value};

/// The claims of a JWT, or `INVALID_PARAMETER` when it is not one. `sub` is required.
pub fn claims(token: &str) -> Result<Map<String, Value>, ApiError> {
    let invalid = || ApiError::invalid_parameter("\"idToken\" is not a valid JWT.");
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let bytes = crate::encoding::base64_decode(payload).ok_or_else(invalid)?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if !claims.get("sub").and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid_parameter("\"idToken\" names no user (\"sub\")."));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claims_of_a_jwt() {
        // {"alg":"HS256"} . {"sub":"u1","exp":1} . sig
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6MX0.c2ln";
        let c = claims(token).unwrap();
        assert_eq!(c["sub"], "u1");
        assert!(claims("a.b").is_err());
        assert!(claims("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln").unwrap_err().message.contains("sub"));
    }
}
