//! Error codes shared by the SDK and the server; on the wire they travel as `{message, code}`.

use serde::{Deserialize, Serialize};
use std::fmt;

serde_as_name!(ErrorCode, "an error code such as INVALID_PARAMETER");

/// Every code the project produces. The SDK surfaces them as `SkapiError.code`;
/// the server answers them as `{message, code}` with the HTTP status of [`ErrorCode::http_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A parameter is missing or malformed (checked before any network call).
    InvalidParameter,
    /// The request is well-formed but not allowed (destination, protocol misuse, connection).
    InvalidRequest,
    /// No such key, record or queue.
    NotExists,
    /// A Locked key without a valid user token, or another caller's record.
    Unauthorized,
    /// The record's `expires` has passed.
    Expired,
    /// Too many requests; retry after the `Retry-After` seconds.
    RateLimited,
    /// A key's daily quota is used up: no retry helps before the UTC day turns (`Retry-After`).
    QuotaExceeded,
    /// The SDK could not reach the server, or the server could not reach the third party.
    NetworkError,
    /// The third party answered with a status ≥ 400 (`status_code` and body are kept).
    ThirdPartyError,
    /// The third party did not answer within the server's upstream timeout.
    Timeout,
    /// The server refused to send the secret (private address, destination, redirect).
    Refused,
    /// The request was cancelled before it finished.
    Canceled,
    /// The server stopped while the request was running; it is not sent twice.
    Interrupted,
    /// An unexpected failure inside the server.
    ServerError,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The page's origin may not call this service (no CORS grant).
    InvalidCors,
    /// A key of that name already exists.
    Exists,
    /// The server's disk is full: it takes no new work until space is freed.
    StorageFull,
    /// The server is stopping (a deploy or restart): retry after `Retry-After` seconds.
    ShuttingDown,
    /// The server cannot reach its database now: retry after `Retry-After` seconds.
    StorageUnavailable,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidRequest,
        ErrorCode::NotExists,
        ErrorCode::Unauthorized,
        ErrorCode::Expired,
        ErrorCode::RateLimited,
        ErrorCode::QuotaExceeded,
        ErrorCode::NetworkError,
        ErrorCode::ThirdPartyError,
        ErrorCode::Timeout,
        ErrorCode::Refused,
        ErrorCode::Canceled,
        ErrorCode::Interrupted,
        ErrorCode::ServerError,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidCors,
        ErrorCode::Exists,
        ErrorCode::StorageFull,
        ErrorCode::ShuttingDown,
        ErrorCode::StorageUnavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidParameter => "INVALID_PARAMETER",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::NotExists => "NOT_EXISTS",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Expired => "EXPIRED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorCode::NetworkError => "NETWORK_ERROR",
            ErrorCode::ThirdPartyError => "THIRD_PARTY_ERROR",
            ErrorCode::Timeout => "TIMEOUT",
            ErrorCode::Refused => "REFUSED",
            ErrorCode::Canceled => "CANCELED",
            ErrorCode::Interrupted => "INTERRUPTED",
            ErrorCode::ServerError => "SERVER_ERROR",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::InvalidCors => "INVALID_CORS",
            ErrorCode::Exists => "EXISTS",
            ErrorCode::StorageFull => "STORAGE_FULL",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::StorageUnavailable => "STORAGE_UNAVAILABLE",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The HTTP status the server answers this code with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidParameter | ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::InvalidCors => 403,
            ErrorCode::Exists => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::NotExists => 404,
            ErrorCode::Canceled => 409,
            ErrorCode::Expired => 410,
            ErrorCode::RateLimited | ErrorCode::QuotaExceeded => 429,
            ErrorCode::ServerError | ErrorCode::Interrupted => 500,
            ErrorCode::ThirdPartyError | ErrorCode::NetworkError | ErrorCode::Refused => 502,
            ErrorCode::Timeout => 504,
            ErrorCode::StorageFull => 507,
            ErrorCode::ShuttingDown | ErrorCode::StorageUnavailable => 503,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a code and a human message: `{message, code}` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into() }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
        assert_eq!(ErrorCode::parse("NOPE"), None);
    }
}
