//! Reading (not verifying) a JWT's claims: the SDK shows the logged-in user from its ID token;
//! the server verifies tokens with a real JWT library.

use crate::ApiError;
use serde_json::{Map, Value};

/// Decodes unpadded base64url.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The claims of a JWT, or `INVALID_PARAMETER` when it is not one. `sub` is required.
pub fn claims(token: &str) -> Result<Map<String, Value>, ApiError> {
    let invalid = || ApiError::invalid_parameter("\"idToken\" is not a valid JWT.");
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let bytes = base64url_decode(payload).ok_or_else(invalid)?;
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
    fn decodes_base64url() {
        assert_eq!(base64url_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64url_decode("-_8").unwrap(), vec![0xfb, 0xff]);
        assert_eq!(base64url_decode("a*b"), None);
    }

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
