//! The third-party call: fill in the secret, send, read a bounded answer, scrub the secret out
//! of whatever comes back.

use crate::config::ServeConfig;
use crate::domain::Outcome;
use crate::netguard::{self, GuardedResolver, PrivateAddress};
use serde_json::{Map, Value};
use skapi_core::placeholder::{fill, fill_value};
use skapi_core::redact::{self, redact};
use skapi_core::wire::BinaryBody;
use skapi_core::{content, encoding, upload};
use skapi_core::{ApiError, ErrorCode, Method, Request};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub struct Upstream {
    client: reqwest::Client,
    allow_private: bool,
    /// Private addresses the operator's own setup needs (the demo's stand-ins), by IP and port.
    allowed: std::sync::RwLock<Vec<std::net::SocketAddr>>,
    max_response_bytes: usize,
}

/// `key=value` pairs of a flat object; arrays repeat the key.
fn pairs(map: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in map {
        match v {
            Value::Array(items) => out.extend(items.iter().map(|i| (k.clone(), upload::field_text(i)))),
            other => out.push((k.clone(), upload::field_text(other))),
        }
    }
    out
}

/// Whether the caller's `Content-Type` (`Request::content_type`) is a urlencoded form.
fn is_form(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"))
}

/// The `multipart/form-data` body of a request: `data`'s fields as text (the secret filled
/// in), then its files byte for byte.
fn multipart_form(request: &Request, secret: &str) -> reqwest::multipart::Form {
    let data = request.data.as_ref().map(|d| fill_value(d, secret));
    let mut form = reqwest::multipart::Form::new();
    let Some(Value::Object(data)) = &data else {
        return form;
    };
    for part in upload::parts(data) {
        form = match part {
            upload::Part::Text { name, value } => form.text(name, value),
            upload::Part::File { name, file } => {
                let Some(file) = request.files.get(file) else { continue };
                let part = |kind: &str| reqwest::multipart::Part::bytes(file.bytes.clone()).file_name(file.filename.clone()).mime_str(kind);
                // A type that does not parse goes out as bytes of no particular kind.
                let part = part(&file.content_type).or_else(|_| part("application/octet-stream")).expect("a valid type");
                form.part(name, part)
            }
        };
    }
    form
}

fn failed(code: ErrorCode, message: String) -> Outcome {
    Outcome::Failed { error: ApiError::new(code, message), status_code: None, body: None, truncated: false }
}

impl Upstream {
    pub fn new(config: &ServeConfig) -> anyhow::Result<Upstream> {
        let client = reqwest::Client::builder()
            .timeout(config.upstream_timeout)
            .connect_timeout(config.upstream_timeout.min(Duration::from_secs(30)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private: config.allow_private_upstreams }))
            .user_agent(concat!("skapi-server/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstream {
            client,
            allow_private: config.allow_private_upstreams,
            allowed: Default::default(),
            max_response_bytes: config.max_response_bytes,
        })
    }

    /// Allows one private address (IP literal and port) as a destination.
    pub fn allow(&self, addr: std::net::SocketAddr) {
        self.allowed.write().unwrap_or_else(|e| e.into_inner()).push(addr);
    }

    fn allowed(&self, ip: std::net::IpAddr, port: Option<u16>) -> bool {
        self.allow_private
            || netguard::is_public(ip)
            || port.is_some_and(|p| self.allowed.read().unwrap_or_else(|e| e.into_inner()).contains(&std::net::SocketAddr::new(ip, p)))
    }

    /// Sends `request` with `secret` filled in, and the headers the server `told` the
    /// destination itself (`skapiHeaders`: never searched for the placeholder). Every text in
    /// the outcome is free of the secret.
    pub async fn send(&self, request: &Request, secret: &str, told: &[(&str, String)]) -> Outcome {
        match self.try_send(request, secret, told).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    /// Sends a streamed request: its answer is read piece by piece ([`Streaming::next`]).
    pub async fn send_streaming(&self, request: &Request, secret: &str, told: &[(&str, String)]) -> Result<Streaming, Outcome> {
        let response = self.start(request, secret, told).await?;
        unreadable_encoding(&response, secret)?;
        let events = content_type(&response, secret).is_some_and(|t| t.to_ascii_lowercase().starts_with("text/event-stream"));
        Ok(Streaming {
            status_code: response.status().as_u16(),
            response,
            redactor: Some(if events { redact::StreamRedactor::for_events(secret) } else { redact::StreamRedactor::new(secret) }),
            secret: secret.to_owned(),
            room: self.max_response_bytes,
            truncated: false,
        })
    }

    async fn try_send(&self, request: &Request, secret: &str, told: &[(&str, String)]) -> Result<Outcome, Outcome> {
        let response = self.start(request, secret, told).await?;
        let bytes = request.response_type.is_some_and(|t| t.wants_bytes());
        self.read_whole(response, secret, bytes).await
    }

    /// Fills the secret in and sends; the answer's head, or how sending failed.
    async fn start(&self, request: &Request, secret: &str, told: &[(&str, String)]) -> Result<reqwest::Response, Outcome> {
        let mut url = Url::parse(&fill(&request.url, secret))
            .map_err(|_| failed(ErrorCode::InvalidRequest, "The url is invalid once the secret is filled in.".into()))?;
        if let Some(params) = &request.params {
            let filled = fill_value(&Value::Object(params.clone()), secret);
            if let Value::Object(map) = filled {
                url.query_pairs_mut().extend_pairs(pairs(&map));
            }
        }
        let literal_ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        };
        if literal_ip.is_some_and(|ip| !self.allowed(ip, url.port_or_known_default())) {
            return Err(failed(ErrorCode::Refused, PrivateAddress.to_string()));
        }

        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
            Method::Patch => reqwest::Method::PATCH,
            Method::Head => reqwest::Method::HEAD,
        };
        let mut builder = self.client.request(method, url);
        let mut has_content_type = false;
        let multipart = request.is_multipart() && request.raw_body.is_none();
        for (name, value) in &request.headers {
            // The encodings asked for are the ones the server decodes before redacting (reqwest
            // asks for them itself): one the caller chose would come back unread, secret inside.
            if name.eq_ignore_ascii_case("accept-encoding") {
                continue;
            }
            let content_type = name.eq_ignore_ascii_case("content-type");
            if content_type && multipart {
                // Its boundary is ours to choose (reqwest sets the header with it).
                continue;
            }
            has_content_type |= content_type;
            builder = builder.header(name.as_str(), fill(&upload::field_text(value), secret));
        }
        for (name, value) in told {
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| failed(ErrorCode::InvalidRequest, format!("\"{name}\" cannot carry this value as an HTTP header.")))?;
            builder = builder.header(*name, value);
        }
        if multipart {
            builder = builder.multipart(multipart_form(request, secret));
        } else if let (true, Some((bytes, content_type))) = (request.method.has_body(), &request.raw_body) {
            // Bytes go as they are: the placeholder is never searched for in them.
            if !has_content_type {
                builder = builder.header("content-type", content_type.as_str());
            }
            builder = builder.body(bytes.clone());
        } else if let (true, Some(data)) = (request.method.has_body(), &request.data) {
            let data = fill_value(data, secret);
            if is_form(request.content_type()) {
                let map = data.as_object().cloned().unwrap_or_default();
                let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs(&map)).finish();
                builder = builder.body(body);
            } else {
                if !has_content_type {
                    builder = builder.header("content-type", "application/json");
                }
                builder = builder.body(serde_json::to_vec(&data).expect("JSON values serialise"));
            }
        }

        builder.send().await.map_err(|e| transport_failure(e, secret))
    }

    /// Reads a whole answer, bounded by `--max-response-bytes`, and redacts it: text as text
    /// (JSON parsed), bytes as bytes. With `as_bytes` (the caller asked for bytes) a text answer
    /// is kept as bytes too, its text redacted as any text is.
    async fn read_whole(&self, mut response: reqwest::Response, secret: &str, as_bytes: bool) -> Result<Outcome, Outcome> {
        let status = response.status().as_u16();
        unreadable_encoding(&response, secret)?;
        // Read a little past the limit, so that a secret straddling it is still redacted whole
        // before the body is cut.
        let limit = self.max_response_bytes;
        let read_limit = limit.saturating_add(redact::lookahead(secret));
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_failure(e, secret))? {
            let room = read_limit - bytes.len();
            bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.len() >= room {
                break;
            }
        }
        let content_type = content_type(&response, secret);
        let large = bytes.len() > 256 * 1024;
        let scrub = {
            let secret = secret.to_owned();
            move || redact_answer(bytes, content_type, limit, &secret, as_bytes)
        };
        // Reading a large answer through every encoding takes a while (≈ 50 ms a megabyte):
        // off the async workers.
        let (body, truncated) = if large { tokio::task::spawn_blocking(scrub).await.unwrap_or((Value::Null, false)) } else { scrub() };
        Ok(answered(status, body, truncated))
    }
}

/// The answer's `Content-Type`, redacted (it is returned and stored as `body_content_type`).
fn content_type(response: &reqwest::Response, secret: &str) -> Option<String> {
    let value = response.headers().get(reqwest::header::CONTENT_TYPE)?;
    Some(redact::redact(&String::from_utf8_lossy(value.as_bytes()), secret))
}

/// Refuses an answer still encoded once reqwest has decoded what it asked for (gzip, deflate):
/// compressed bytes cannot be searched for the secret, so they are neither kept nor returned.
fn unreadable_encoding(response: &reqwest::Response, secret: &str) -> Result<(), Outcome> {
    let Some(encoding) = response.headers().get(reqwest::header::CONTENT_ENCODING) else { return Ok(()) };
    let encoding = redact::redact(&String::from_utf8_lossy(encoding.as_bytes()), secret);
    if encoding.trim().eq_ignore_ascii_case("identity") {
        return Ok(());
    }
    Err(Outcome::Failed {
        error: ApiError::new(
            ErrorCode::Refused,
            format!("The third party answered in the content encoding \"{encoding}\", which the server cannot read to keep the secret out of it: the answer is not kept."),
        ),
        status_code: Some(response.status().as_u16()),
        body: None,
        truncated: false,
    })
}

/// A whole answer redacted, and whether it was cut at `limit`: text as text (JSON parsed, an
/// event stream's deltas read joined), bytes as bytes (`redact::redact_bytes`).
fn redact_answer(bytes: Vec<u8>, content_type: Option<String>, limit: usize, secret: &str, as_bytes: bool) -> (Value, bool) {
    let truncated = bytes.len() > limit;
    let binary = |bytes: &[u8], kind: String| {
        serde_json::to_value(BinaryBody { body_b64: encoding::base64(bytes, encoding::BASE64), body_content_type: kind })
    };
    if !content::is_text(content_type.as_deref(), &bytes[..bytes.len().min(limit)]) {
        let kept = if truncated { redact::redact_bytes_truncated(&bytes, limit, secret) } else { redact::redact_bytes(&bytes, secret) };
        let body = binary(&kept, content_type.unwrap_or_else(|| "application/octet-stream".into()));
        return (body.unwrap_or(Value::Null), truncated);
    }
    let text = String::from_utf8_lossy(&bytes);
    if as_bytes {
        let text = if truncated { redact::redact_truncated(&text, limit, secret) } else { redact::redact_text(&text, secret) };
        return (binary(text.as_bytes(), content_type.unwrap_or_else(|| "text/plain".into())).unwrap_or(Value::Null), truncated);
    }
    let body = if truncated { Value::String(redact::redact_truncated(&text, limit, secret)) } else { redact::redact_body(&text, secret) };
    (body, truncated)
}

/// A streamed answer being read.
pub struct Streaming {
    pub status_code: u16,
    response: reqwest::Response,
    /// `None` once the answer has ended.
    redactor: Option<redact::StreamRedactor>,
    secret: String,
    /// Bytes that may still be read (`--max-response-bytes`).
    room: usize,
    /// The answer went past the limit and was cut there.
    pub truncated: bool,
}

impl Streaming {
    /// The next piece of the answer to keep — redacted, whole characters — or `None` once it
    /// has ended (or was cut at the limit: a held-back tail is then dropped, as a cut body's
    /// is). A connection that fails mid-answer is the failure's outcome.
    pub async fn next(&mut self) -> Result<Option<String>, Outcome> {
        while let Some(redactor) = self.redactor.as_mut() {
            let bytes = match self.response.chunk().await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => return Ok(Some(self.redactor.take().map(|r| r.finish()).unwrap_or_default()).filter(|t| !t.is_empty())),
                Err(e) => {
                    self.redactor = None;
                    return Err(transport_failure(e, &self.secret));
                }
            };
            let take = bytes.len().min(self.room);
            self.room -= take;
            let text = redactor.push(&bytes[..take]);
            if take < bytes.len() || self.room == 0 {
                self.truncated = take < bytes.len() || self.response.chunk().await.is_ok_and(|more| more.is_some());
                if self.truncated {
                    self.redactor = None;
                } else {
                    let rest = self.redactor.take().map(|r| r.finish()).unwrap_or_default();
                    return Ok(Some(text + &rest).filter(|t| !t.is_empty()));
                }
            }
            if !text.is_empty() {
                return Ok(Some(text));
            }
        }
        Ok(None)
    }
}

/// How a request ended once the third party answered: resolved, or failed when its status is
/// 400 or more (status and body kept either way).
pub fn answered(status: u16, body: Value, truncated: bool) -> Outcome {
    if status >= 400 {
        let reason = reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("");
        Outcome::Failed {
            error: ApiError::new(ErrorCode::ThirdPartyError, format!("The third party answered {status} {reason}.").replace(" .", ".")),
            status_code: Some(status),
            body: Some(body),
            truncated,
        }
    } else {
        Outcome::Resolved { status_code: status, body, truncated }
    }
}

fn transport_failure(error: reqwest::Error, secret: &str) -> Outcome {
    // The url may hold the secret: leave it out of the message (and redact all the same).
    let error = error.without_url();
    let mut chain = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut refused = false;
    while let Some(e) = source {
        refused |= e.is::<PrivateAddress>();
        chain.push(e.to_string());
        source = e.source();
    }
    let code = if refused {
        ErrorCode::Refused
    } else if error.is_timeout() {
        ErrorCode::Timeout
    } else {
        ErrorCode::NetworkError
    };
    failed(code, redact(&chain.join(": "), secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_params_to_pairs() {
        let map = json!({"a": "x", "n": 1, "list": [1, "b"], "o": {"k": true}, "z": null});
        let got = pairs(map.as_object().unwrap());
        assert!(got.contains(&("a".into(), "x".into())));
        assert!(got.contains(&("list".into(), "1".into())) && got.contains(&("list".into(), "b".into())));
        assert!(got.contains(&("o".into(), "{\"k\":true}".into())));
        assert!(got.contains(&("z".into(), "".into())));
    }

    #[test]
    fn recognises_form_content_type_in_any_case() {
        assert!(is_form(Some("Application/X-WWW-Form-Urlencoded; charset=utf-8")));
        assert!(!is_form(Some("application/json")) && !is_form(None));
    }
}
