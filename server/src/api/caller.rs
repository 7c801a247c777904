//! Who is calling: the service from `Content-Meta` or the body, and the identity that owns
//! records — the SDK's public identifier, or for 1.5.8 (which sends none) IP and user agent.

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use skapi_core::wire::ContentMeta;
use std::net::SocketAddr;

use super::Failure;
use crate::AppState;
use skapi_core::ErrorCode;

/// Longest public identifier accepted (the SDK sends 32 hex digits).
const MAX_IDENTIFIER: usize = 128;
/// User agents are cut to this length before they become part of an identity.
const MAX_AGENT: usize = 256;

#[derive(Debug, Clone)]
pub struct Caller {
    pub meta: ContentMeta,
    /// The owner of records this caller creates and may read.
    pub identity: String,
    /// The verified user id, when logged in (Locked keys need one).
    pub user: Option<String>,
    /// The page's origin, for the service's CORS rule.
    pub origin: Option<String>,
}

impl Caller {
    pub fn from_parts(headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Caller, Failure> {
        let meta: ContentMeta = match headers.get("content-meta") {
            Some(v) => {
                let text = v.to_str().map_err(|_| Failure::invalid_parameter("The Content-Meta header is not text."))?;
                serde_json::from_str(text)
                    .map_err(|e| Failure::invalid_parameter(format!("The Content-Meta header is not valid: {e}.")))?
            }
            None => ContentMeta::default(),
        };
        if meta.public_identifier.len() > MAX_IDENTIFIER || meta.public_identifier.chars().any(char::is_control) {
            return Err(Failure::invalid_parameter("The public identifier is too long or holds control characters."));
        }
        let identity = if !meta.public_identifier.is_empty() {
            format!("pid:{}", meta.public_identifier)
        } else {
            let ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
            let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("");
            let agent: String = agent.chars().filter(|c| !c.is_control()).take(MAX_AGENT).collect();
            format!("anon:{ip}|{agent}")
        };
        Ok(Caller { meta, identity, user: None, origin: None })
    }

    /// The service a call is for (the body's, else `Content-Meta`'s), once the page's origin
    /// is known to be allowed to call it.
    pub async fn service(&self, state: &AppState, from_body: Option<&str>) -> Result<String, Failure> {
        let service = from_body
            .filter(|s| !s.is_empty())
            .or(Some(self.meta.service.as_str()).filter(|s| !s.is_empty()))
            .map(str::to_owned)
            .ok_or_else(|| Failure::new(ErrorCode::InvalidRequest, "\"service\" is required."))?;
        if let Some(origin) = &self.origin {
            let s = service.clone();
            if let Some(allowed) = state.db.call(move |store| store.service_origins(&s)).await? {
                if !allowed.iter().any(|a| a == "*" || a.eq_ignore_ascii_case(origin)) {
                    return Err(Failure::new(ErrorCode::InvalidCors, format!("The origin {origin} may not call this service.")).deny_cors());
                }
            }
        }
        Ok(service)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Failure;

    /// A caller with a user token is that user (`sub:`); a token that does not verify is
    /// refused, whatever the key.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, Failure> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        let mut caller = Caller::from_parts(&parts.headers, peer)?;
        caller.origin = parts.headers.get("origin").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Some(token) = parts.headers.get("authorization") {
            let token = token.to_str().map_err(|_| Failure::new(ErrorCode::Unauthorized, "The user token is not text."))?;
            let user = state.auth.verify(token).await?;
            caller.identity = format!("sub:{}", user.sub);
            caller.user = Some(user.sub);
        }
        Ok(caller)
    }
}
