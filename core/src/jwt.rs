//! Reading (not verifying) a JWT's claims: the SDK shows the logged-in user from its ID token;
//! the server verifies tokens with a real JWT library.

use crate::tree::{Kind, Tree};
use crate::ApiError;

fn invalid() -> ApiError {
    ApiError::invalid_parameter("\"idToken\" is not a valid JWT.")
}

/// The payload of a JWT as JSON text (not yet parsed: the SDK parses it with the browser's own
/// JSON), or `INVALID_PARAMETER` when the token is not one.
pub fn payload(token: &str) -> Result<String, ApiError> {
    let mut parts = crate::text::parts(token, b'.');
    let (Some(_header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let bytes = crate::encoding::base64_decode(payload).ok_or_else(invalid)?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

/// Checks parsed claims: an object naming its user (`sub`).
pub fn check_claims<T: Tree>(claims: &T) -> Result<(), ApiError> {
    if claims.kind() != Kind::Object {
        return Err(invalid());
    }
    if !claims.field("sub", |sub| sub.and_then(Tree::text).is_some_and(|s| !s.is_empty())) {
        return Err(ApiError::invalid_parameter("\"idToken\" names no user (\"sub\")."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(token: &str) -> Result<serde_json::Value, ApiError> {
        let claims: serde_json::Value = serde_json::from_str(&payload(token)?).map_err(|_| invalid())?;
        check_claims(&claims).map(|()| claims)
    }

    #[test]
    fn reads_claims_of_a_jwt() {
        // {"alg":"HS256"} . {"sub":"u1","exp":1} . sig
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSIsImV4cCI6MX0.c2ln";
        let c = claims(token).unwrap();
        assert_eq!(c["sub"], "u1");
        assert!(claims("a.b").is_err());
        assert!(claims("eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.c2ln").unwrap_err().message.contains("sub"));
        assert!(claims("eyJhbGciOiJIUzI1NiJ9.WzFd.c2ln").is_err(), "claims that are not an object");
    }
}
