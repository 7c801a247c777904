//! Pure logic shared by the SDK (compiled to wasm) and the server (native).
//!
//! Nothing here touches the network, a clock or JavaScript, so all of it is tested
//! natively with `cargo test -p skapi-core`.

pub mod encoding;
pub mod error;
pub mod form;
pub mod gateway;
pub mod id;
pub mod jwt;
pub mod method;
pub mod placeholder;
pub mod positions;
pub mod redact;
pub mod request;
pub mod url;
pub mod wire;

pub use error::{ApiError, ErrorCode};
pub use method::Method;
pub use placeholder::PLACEHOLDER;
pub use request::Request;

/// Property-test cases per property: `default`, or `PROPTEST_CASES` for a longer run.
#[cfg(test)]
pub(crate) fn test_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
