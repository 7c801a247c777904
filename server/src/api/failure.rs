//! Errors as the API answers them: `{message, code}` with the code's HTTP status.

use crate::keyring::KeyringError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use skapi_core::wire::FailureBody;
use skapi_core::{ApiError, ErrorCode};

#[derive(Debug)]
pub struct Failure(pub FailureBody, pub Extra);

/// What an answer carries besides its body.
#[derive(Debug, Default)]
pub struct Extra {
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
    /// The page's origin is refused: the answer must carry no CORS grant.
    pub deny_cors: bool,
}

/// Marks a response whose CORS headers must be removed (see `api::strip_refused_cors`).
#[derive(Clone, Copy, Debug)]
pub struct DenyCors;

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure(FailureBody { code, message: message.into(), status_code: None, body: None }, Extra::default())
    }
    pub fn body(body: FailureBody) -> Failure {
        Failure(body, Extra::default())
    }
    pub fn retry_after(mut self, seconds: u64) -> Failure {
        self.1.retry_after = Some(seconds);
        self
    }
    pub fn deny_cors(mut self) -> Failure {
        self.1.deny_cors = true;
        self
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Failure {
        Failure::new(ErrorCode::InvalidParameter, message)
    }
    fn internal(e: &dyn std::fmt::Display) -> Failure {
        // The detail goes to the log only: it may name files or tables.
        tracing::error!(error = %e, "internal error");
        Failure::new(ErrorCode::ServerError, "The server failed to handle this call.")
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::new(e.code, e.message)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::Full => Failure::new(
                ErrorCode::StorageFull,
                "The server's storage is full: it takes no new requests until space is freed. Requests already accepted are kept.",
            ),
            StoreError::Unavailable(detail) => {
                tracing::warn!(error = detail, "the store is unavailable");
                Failure::new(ErrorCode::StorageUnavailable, "The server cannot reach its database right now; retry shortly.").retry_after(2)
            }
            other => Failure::internal(&other),
        }
    }
}

impl From<KeyringError> for Failure {
    fn from(e: KeyringError) -> Failure {
        match e {
            KeyringError::Invalid(message) => Failure::invalid_parameter(message),
            KeyringError::NotFound { .. } => Failure::new(ErrorCode::NotExists, e.to_string()),
            KeyringError::Store(StoreError::Exists(what)) => Failure::new(ErrorCode::Exists, format!("{what} already exists.")),
            KeyringError::Store(e @ (StoreError::Full | StoreError::Unavailable(_))) => e.into(),
            other => Failure::internal(&other),
        }
    }
}

impl From<axum::extract::rejection::BytesRejection> for Failure {
    fn from(e: axum::extract::rejection::BytesRejection) -> Failure {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Failure::new(ErrorCode::PayloadTooLarge, "The request body is larger than this server accepts.")
        } else {
            Failure::new(ErrorCode::InvalidRequest, format!("The request body could not be read: {e}."))
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = self.0.code;
        let mut response = (status, Json(self.0)).into_response();
        if let Some(seconds) = self.1.retry_after {
            response.headers_mut().insert("retry-after", seconds.into());
        }
        if self.1.deny_cors {
            response.extensions_mut().insert(DenyCors);
        }
        // For the metrics: which outcome this call had.
        response.extensions_mut().insert(code);
        response
    }
}
