//! Errors as the API answers them: `{message, code}` with the code's HTTP status.

use crate::keyring::KeyringError;
use crate::store::StoreError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use skapi_core::wire::FailureBody;
use skapi_core::{ApiError, ErrorCode};

#[derive(Debug)]
pub struct Failure(pub FailureBody);

impl Failure {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Failure {
        Failure(FailureBody { code, message: message.into(), status_code: None, body: None })
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
        Failure::internal(&e)
    }
}

impl From<KeyringError> for Failure {
    fn from(e: KeyringError) -> Failure {
        Failure::internal(&e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}
