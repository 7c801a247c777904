//! Pure logic shared by the SDK (compiled to wasm) and the server (native).
//!
//! Nothing here touches the network, a clock or JavaScript, so all of it is tested
//! natively with `cargo test -p skapi-core`.

/// Serde for an enum that travels as its name (`as_str` / `parse`): one small impl instead of
/// a derived visitor per direction.
macro_rules! serde_as_name {
    ($ty:ty, $what:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <$ty>::parse(&name).ok_or_else(|| serde::de::Error::invalid_value(serde::de::Unexpected::Str(&name), &$what))
            }
        }
    };
}

pub mod content;
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
pub mod sse;
pub mod text;
pub mod tree;
pub mod upload;
pub mod url;
pub mod wire;

pub use error::{ApiError, ErrorCode};
pub use method::Method;
pub use placeholder::PLACEHOLDER;
#[cfg(feature = "json")]
pub use request::Request;

/// How the server holds JSON values: the default value type of the generic wire types.
#[cfg(feature = "json")]
pub type Json = serde_json::Value;
/// Without the `json` feature (the SDK), every wire type names its value type itself.
#[cfg(not(feature = "json"))]
pub type Json = ();

/// Property-test cases per property: `default`, or `PROPTEST_CASES` for a longer run.
#[cfg(test)]
pub(crate) fn test_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
