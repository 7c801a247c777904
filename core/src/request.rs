//! A client-secret request's rules, written once over [`Tree`]: the SDK checks the JS API's
//! params (milliseconds) on JavaScript values before any network call; the server checks `csr`
//! bodies (seconds) on `serde_json` values, then keeps them as a [`Request`].

use crate::text::decimal;
use crate::tree::{Kind, Tree};
#[cfg(feature = "json")]
use crate::upload::{self, Upload};
#[cfg(feature = "json")]
use crate::wire::{CsrBody, WireFile};
use crate::{placeholder, url, ApiError, Method};
#[cfg(feature = "json")]
use serde_json::{Map, Value};

/// Records expire this long after creation unless the caller says otherwise.
pub const DEFAULT_EXPIRES_MS: u64 = 15 * 60 * 1000;
/// Queue names longer than this are refused.
pub const MAX_QUEUE_LEN: usize = 256;
/// The longest a record may be kept: 30 days. Longer (or non-finite) `expires` are refused.
pub const MAX_EXPIRES_MS: u64 = 30 * 24 * 60 * 60 * 1000;
/// skapi-js's poll interval for `poll: true`.
const POLL_WHEN_TRUE_MS: f64 = 1000.0;

/// Headers that belong to the connection, not to the request: the server sets them itself, and
/// a caller who could set them could bend where and how the secret is delivered (a `Host` that
/// a shared front end routes by, a smuggled body length).
const CONNECTION_HEADERS: [&str; 9] =
    ["host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "expect"];

/// Headers that would have the third party answer in part: the server must read an answer
/// whole to keep the secret out of it (two halves of an answer would each hold half).
const PARTIAL_ANSWER_HEADERS: [&str; 2] = ["range", "if-range"];

/// True when the caller may not set header `name` (any case).
pub fn forbidden_header(name: &str) -> bool {
    connection_header(&name.to_ascii_lowercase())
}

/// [`forbidden_header`] of a name already lower-cased.
fn connection_header(lower: &str) -> bool {
    CONNECTION_HEADERS.contains(&lower) || lower.starts_with("proxy-")
}

/// Headers under this prefix are written by the server from the verified identity
/// (`skapiHeaders`): a destination trusts them only because no caller can set them.
pub const RESERVED_HEADER_PREFIX: &str = "x-skapi-";

/// Why the caller may not set header `name`, if it may not.
fn header_refusal(name: &str) -> Option<ApiError> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with(RESERVED_HEADER_PREFIX) {
        return Some(ApiError::invalid_parameter(
            [
                "\"headers\" cannot set \"",
                name,
                "\": the \"x-skapi-\" prefix is reserved. Use \"skapiHeaders\" to tell the destination who the caller is.",
            ]
            .concat(),
        ));
    }
    if connection_header(&lower) {
        return Some(ApiError::invalid_parameter(["Header \"", name, "\" may not be set: the server sets it itself."].concat()));
    }
    PARTIAL_ANSWER_HEADERS.contains(&lower.as_str()).then(|| {
        ApiError::invalid_parameter(
            ["Header \"", name, "\" may not be set: the server reads every answer whole, to keep the secret out of it."].concat(),
        )
    })
}

/// How the caller wants the answer handed over (Skapi's newest SDK's `responseType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseType {
    ArrayBuffer,
    Blob,
    Text,
    Json,
}

impl ResponseType {
    pub const ALL: [ResponseType; 4] = [ResponseType::ArrayBuffer, ResponseType::Blob, ResponseType::Text, ResponseType::Json];

    pub fn as_str(self) -> &'static str {
        match self {
            ResponseType::ArrayBuffer => "arrayBuffer",
            ResponseType::Blob => "blob",
            ResponseType::Text => "text",
            ResponseType::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<ResponseType> {
        ResponseType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// [`ResponseType::parse`], refusing any other name with skapi's message.
    pub fn checked(s: &str) -> Result<ResponseType, ApiError> {
        ResponseType::parse(s)
            .ok_or_else(|| ApiError::invalid_parameter("\"responseType\" should be either \"arrayBuffer\" or \"blob\" or \"text\" or \"json\"."))
    }

    /// The caller wants bytes: the server keeps any answer as bytes, exactly.
    pub fn wants_bytes(self) -> bool {
        matches!(self, ResponseType::ArrayBuffer | ResponseType::Blob)
    }
}

/// Which of the JS API's two doors a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `clientSecretRequest(params)` (and every `csr` body): a secret is named and its
    /// placeholder used.
    ClientSecretRequest,
    /// `forwardRequest(form, options)`: a secret is optional; without one the request carries
    /// only what the caller wrote.
    ForwardRequest,
}

/// Where a request's numbers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    /// The JS API: `expires` and `poll` in milliseconds.
    Js,
    /// A `csr` body: `expires` in seconds, no poll interval.
    Wire,
}

/// What checking a request yields besides "it is valid": its scalars. Its headers, data and
/// params stay in the caller's own values.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The secret to put in; `None` only through [`Door::ForwardRequest`].
    pub client_secret_name: Option<String>,
    pub url: String,
    pub method: Method,
    pub queue: Option<String>,
    /// Lifetime of the record in ms; `None` = [`DEFAULT_EXPIRES_MS`].
    pub expires_ms: Option<u64>,
    /// The JS API's poll interval in ms (0 = do not poll; always 0 for a `csr` body).
    pub poll_ms: f64,
    /// 2.x `stream: true`: the answer is kept, and read, in chunks as it arrives.
    pub stream: bool,
    /// 2.x `realtime: true` (only with `stream`).
    pub realtime: bool,
    pub response_type: Option<ResponseType>,
    pub skapi_headers: SkapiHeaders,
}

fn required(key: &str) -> ApiError {
    ApiError::invalid_parameter(["Key \"", key, "\" is required."].concat())
}

fn wrong_type(key: &str, ty: &str) -> ApiError {
    ApiError::invalid_parameter(["\"", key, "\" should be type: <", ty, ">."].concat())
}

/// A string field; `None` when absent, null or empty (skapi-js treats those alike).
fn opt_str<T: Tree>(obj: &T, key: &str) -> Result<Option<String>, ApiError> {
    obj.field(key, |v| match v.map(Tree::kind) {
        None | Some(Kind::Null | Kind::Other) => Ok(None),
        Some(Kind::Text) => Ok(v.and_then(Tree::text).filter(|s| !s.is_empty())),
        Some(_) => Err(wrong_type(key, "string")),
    })
}

/// A non-negative number; `true` counts as `when_true` where one is given.
pub fn opt_number<T: Tree>(obj: &T, key: &str, when_true: Option<f64>) -> Result<Option<f64>, ApiError> {
    let n = obj.field(key, |v| match v.map(|v| (v.kind(), v)) {
        None | Some((Kind::Null | Kind::Other, _)) => Ok(None),
        Some((Kind::Bool, v)) => match (v.boolean(), when_true) {
            (Some(false), _) => Ok(None),
            (_, Some(n)) => Ok(Some(n)),
            (_, None) => Err(wrong_type(key, "number")),
        },
        Some((Kind::Number, v)) => Ok(Some(v.number().unwrap_or(f64::NAN))),
        Some(_) => Err(wrong_type(key, "number")),
    })?;
    match n {
        Some(n) if !n.is_finite() || n < 0.0 => Err(ApiError::invalid_parameter(["\"", key, "\" should be a non-negative number."].concat())),
        other => Ok(other),
    }
}

fn check_expires(ms: f64) -> Result<u64, ApiError> {
    if !ms.is_finite() || ms < 1.0 {
        return Err(ApiError::invalid_parameter("\"expires\" should be a positive number."));
    }
    if ms > MAX_EXPIRES_MS as f64 {
        return Err(ApiError::invalid_parameter(
            ["\"expires\" should be at most ", &decimal(MAX_EXPIRES_MS), " ms (30 days; ", &decimal(MAX_EXPIRES_MS / 1000), " s on the wire)."]
                .concat(),
        ));
    }
    Ok(ms.round() as u64)
}

/// `expires` as the wire carries it: seconds, rounded up.
pub fn wire_expires(ms: u64) -> f64 {
    (ms as f64 / 1000.0).ceil()
}

/// The kind of an optional object field: `Ok(false)` when absent or null.
fn opt_object<T: Tree>(obj: &T, key: &str) -> Result<bool, ApiError> {
    obj.field(key, |v| match v.map(Tree::kind) {
        None | Some(Kind::Null | Kind::Other) => Ok(false),
        Some(Kind::Object) => Ok(true),
        Some(_) => Err(wrong_type(key, "object")),
    })
}

/// Checks a request — the JS API's params or a `csr` body — by the rules both the SDK and the
/// server apply, with skapi-js's messages.
pub fn check<T: Tree>(params: &T, units: Units) -> Result<Checked, ApiError> {
    check_at(params, units, Door::ClientSecretRequest)
}

/// [`check`], for a request that came through `door`.
pub fn check_at<T: Tree>(params: &T, units: Units, door: Door) -> Result<Checked, ApiError> {
    if params.kind() != Kind::Object {
        return Err(ApiError::invalid_parameter("\"params\" should be type: <object>."));
    }
    let poll_ms = match units {
        Units::Js => opt_number(params, "poll", Some(POLL_WHEN_TRUE_MS))?.unwrap_or(0.0),
        Units::Wire => 0.0,
    };
    let to_ms = |n: f64| if units == Units::Wire { n * 1000.0 } else { n };
    let expires_ms = opt_number(params, "expires", None)?.map(|n| check_expires(to_ms(n))).transpose()?;
    // `secretName`, Skapi's newest name for it, wins when both are given.
    let client_secret_name = opt_str(params, "secretName")?.or(opt_str(params, "clientSecretName")?);
    if client_secret_name.is_none() && door == Door::ClientSecretRequest {
        return Err(required("clientSecretName"));
    }
    let method = opt_str(params, "method")?.ok_or_else(|| required("method"))?;
    let url = opt_str(params, "url")?.ok_or_else(|| required("url"))?;
    url::validate(&url)?;
    let method = Method::parse(&method)?;

    params.field("headers", |headers| {
        let Some(headers) = headers.filter(|h| !matches!(h.kind(), Kind::Null | Kind::Other)) else { return Ok(()) };
        if headers.kind() != Kind::Object {
            return Err(wrong_type("headers", "object"));
        }
        let mut problem = None;
        headers.entries(&mut |name, value| {
            problem = if matches!(value.kind(), Kind::Object | Kind::Array) {
                Some(ApiError::invalid_parameter("\"headers\" values should be strings."))
            } else {
                header_refusal(name)
            };
            problem.is_none()
        });
        problem.map_or(Ok(()), Err)
    })?;
    params.field("data", |v| match v.map(Tree::kind) {
        None | Some(Kind::Null | Kind::Other | Kind::Object | Kind::Array) => Ok(()),
        Some(_) => Err(wrong_type("data", "object")),
    })?;
    opt_object(params, "params")?;
    let queue = opt_str(params, "queue")?;
    if queue.as_ref().is_some_and(|q| q.len() > MAX_QUEUE_LEN) {
        return Err(ApiError::invalid_parameter(["\"queue\" should be at most ", &decimal(MAX_QUEUE_LEN as u64), " bytes."].concat()));
    }
    if queue.as_ref().is_some_and(|q| q.chars().any(char::is_control)) {
        return Err(ApiError::invalid_parameter("\"queue\" should have no control characters."));
    }

    let in_field = |key: &str| params.field(key, |v| v.is_some_and(|v| matches!(v.kind(), Kind::Object | Kind::Array) && placeholder::contains(v)));
    // Only a named secret needs a place to go.
    let named = client_secret_name.is_some();
    if named && !(placeholder::in_text(&url) || in_field("headers") || in_field("data") || in_field("params")) {
        // skapi-js names `data` for POST only (PUT too carries a body, yet it says "params").
        let target = if matches!(method, Method::Post | Method::Patch) { "\"data\"" } else { "\"params\"" };
        return Err(ApiError::invalid_parameter(
            ["At least one parameter value should include \"$CLIENT_SECRET\" in ", target, " or \"headers\"."].concat(),
        ));
    }
    let skapi_headers = params.field("skapiHeaders", SkapiHeaders::read)?;
    let flag = |key: &str| params.field(key, |v| v.and_then(Tree::boolean) == Some(true));
    let (stream, realtime) = (flag("stream"), flag("realtime"));
    if realtime && !stream {
        return Err(ApiError::invalid_parameter("\"realtime\" requires \"stream\": true."));
    }
    let response_type = opt_str(params, "responseType")?.map(|t| ResponseType::checked(&t)).transpose()?;
    Ok(Checked { client_secret_name, url, method, queue, expires_ms, poll_ms, stream, realtime, response_type, skapi_headers })
}

/// Which of the caller's verified facts the destination is told (`skapiHeaders`), in headers
/// the server writes itself: `x-skapi-user` (the signed-in user's id; never for a caller
/// who is not signed in) and `x-skapi-service`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkapiHeaders {
    pub user: bool,
    pub service: bool,
}

impl SkapiHeaders {
    /// `true` (both), `false` or absent (neither), or `{user, service}` (each when `true`).
    fn read<T: Tree>(value: Option<&T>) -> Result<SkapiHeaders, ApiError> {
        let chosen = |v: &T, key: &str| v.field(key, |b| b.and_then(Tree::boolean) == Some(true));
        match value.map(|v| (v.kind(), v)) {
            None | Some((Kind::Null | Kind::Other, _)) => Ok(SkapiHeaders::default()),
            Some((Kind::Bool, v)) => {
                let all = v.boolean() == Some(true);
                Ok(SkapiHeaders { user: all, service: all })
            }
            Some((Kind::Object, v)) => Ok(SkapiHeaders { user: chosen(v, "user"), service: chosen(v, "service") }),
            Some(_) => Err(ApiError::invalid_parameter("\"skapiHeaders\" should be type: <boolean> or { user?: boolean; service?: boolean }.")),
        }
    }

    /// Whether any is asked for.
    pub fn any(self) -> bool {
        self.user || self.service
    }
}

/// A checked request as the server keeps and sends it.
#[cfg(feature = "json")]
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The secret to put in; `None` for a request that names none (Skapi's newest door, which a
    /// server forwards only where its operator allowed).
    pub client_secret_name: Option<String>,
    pub url: String,
    pub method: Method,
    pub headers: Map<String, Value>,
    pub data: Option<Value>,
    pub params: Option<Map<String, Value>>,
    pub queue: Option<String>,
    /// Lifetime of the record in ms; `None` = [`DEFAULT_EXPIRES_MS`].
    pub expires_ms: Option<u64>,
    /// The answer is kept in chunks as it arrives (2.x `stream`).
    pub stream: bool,
    /// 2.x `realtime` (only with `stream`): kept, not acted on.
    pub realtime: bool,
    /// With `arrayBuffer` or `blob`, any answer is kept as bytes.
    pub response_type: Option<ResponseType>,
    /// A raw body (`body_b64` on the wire) and its content type, sent instead of `data`.
    pub raw_body: Option<(Vec<u8>, String)>,
    /// Files `data` places with markers, sent as `multipart/form-data` (`crate::upload`).
    pub files: Vec<Upload>,
    /// What the destination is told of the caller, by the server (`skapiHeaders`).
    pub skapi_headers: SkapiHeaders,
}

#[cfg(feature = "json")]
impl Request {
    /// From the JS API's `clientSecretRequest(params)` object, as JSON. Returns the request and
    /// the poll interval in ms (0 = do not poll).
    pub fn from_js(params: &Value) -> Result<(Request, f64), ApiError> {
        let checked = check(params, Units::Js)?;
        let poll = checked.poll_ms;
        Ok((Request::assemble(checked, params), poll))
    }

    /// From a `csr` body (either protocol form); `expires` there is in seconds. Its files are
    /// in `files`, base64 (a kept record, a caller that cannot send multipart).
    pub fn from_wire(body: &CsrBody) -> Result<Request, ApiError> {
        let mut files = Vec::new();
        for (n, file) in body.files.iter().flatten().enumerate() {
            let bytes = crate::encoding::base64_decode(&file.body_b64)
                .ok_or_else(|| ApiError::invalid_parameter(format!("\"files[{n}][body_b64]\" should be base64.")))?;
            files.push(Upload { filename: file.filename.clone(), content_type: file.content_type.clone(), bytes });
        }
        Request::from_wire_with(body, files)
    }

    /// From a `csr` body and the files that came with it (the parts of a multipart `csr`).
    pub fn from_wire_with(body: &CsrBody, files: Vec<Upload>) -> Result<Request, ApiError> {
        // JSON has no room for a non-finite number: check it before it turns into `null`.
        if let Some(seconds) = body.expires {
            check_expires(seconds * 1000.0)?;
        }
        let value = serde_json::to_value(body).map_err(|e| ApiError::invalid_parameter(e.to_string()))?;
        // Either door's body: the secret is optional on the wire (the server decides what a
        // request without one may do).
        let mut request = Request::assemble(check_at(&value, Units::Wire, Door::ForwardRequest)?, &value);
        if let Some(b64) = &body.body_b64 {
            if request.data.is_some() {
                return Err(ApiError::invalid_parameter("\"data\" and \"body_b64\" cannot both be given."));
            }
            if !request.method.has_body() {
                return Err(ApiError::invalid_parameter("\"body_b64\" needs a method with a body (POST, PUT, PATCH)."));
            }
            let bytes = crate::encoding::base64_decode(b64).ok_or_else(|| ApiError::invalid_parameter("\"body_b64\" should be base64."))?;
            let content_type = body.body_content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
            request.raw_body = Some((bytes, content_type));
        }
        upload::check(request.data.as_ref(), &files, request.method.has_body(), request.content_type())?;
        request.files = files;
        Ok(request)
    }

    /// The caller's `Content-Type` header, if it set one as text.
    pub fn content_type(&self) -> Option<&str> {
        self.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("content-type")).and_then(|(_, v)| v.as_str())
    }

    /// The body goes to the third party as `multipart/form-data`.
    pub fn is_multipart(&self) -> bool {
        self.method.has_body() && (!self.files.is_empty() || self.content_type().is_some_and(upload::is_multipart))
    }

    fn assemble(c: Checked, obj: &Value) -> Request {
        let object = |key: &str| obj.get(key).and_then(Value::as_object).cloned();
        Request {
            client_secret_name: c.client_secret_name,
            url: c.url,
            method: c.method,
            headers: object("headers").unwrap_or_default(),
            data: obj.get("data").filter(|v| !v.is_null()).cloned(),
            params: object("params"),
            queue: c.queue,
            expires_ms: c.expires_ms,
            stream: c.stream,
            realtime: c.realtime,
            response_type: c.response_type,
            raw_body: None,
            files: Vec::new(),
            skapi_headers: c.skapi_headers,
        }
    }

    /// The placeholder may stand in the url, a header value, `data` or `params`, at any depth.
    pub fn has_placeholder(&self) -> bool {
        self.url.contains(crate::PLACEHOLDER)
            || self.headers.values().any(placeholder::contains)
            || self.data.as_ref().is_some_and(placeholder::contains)
            || self.params.as_ref().is_some_and(|p| p.values().any(placeholder::contains))
    }

    /// The 2.0 `csr` body for this request (expires in seconds, rounded up).
    pub fn to_wire(&self, service: &str, owner: &str) -> CsrBody {
        CsrBody {
            service: Some(service.to_owned()),
            owner: Some(owner.to_owned()),
            url: Some(self.url.clone()),
            client_secret_name: self.client_secret_name.clone(),
            secret_name: None,
            method: Some(self.method.lower().to_owned()),
            headers: (!self.headers.is_empty()).then(|| Value::Object(self.headers.clone())),
            data: self.data.clone(),
            params: self.params.clone().map(Value::Object),
            poll: None,
            queue: self.queue.clone(),
            expires: self.expires_ms.map(wire_expires),
            stream: self.stream.then_some(true),
            realtime: self.realtime.then_some(true),
            skapi_headers: self
                .skapi_headers
                .any()
                .then(|| serde_json::json!({"user": self.skapi_headers.user, "service": self.skapi_headers.service})),
            response_type: self.response_type.map(|t| t.as_str().to_owned()),
            body_b64: self.raw_body.as_ref().map(|(bytes, _)| crate::encoding::base64(bytes, crate::encoding::BASE64)),
            body_content_type: self.raw_body.as_ref().map(|(_, content_type)| content_type.clone()),
            files: (!self.files.is_empty()).then(|| {
                let wire = |f: &Upload| WireFile {
                    filename: f.filename.clone(),
                    content_type: f.content_type.clone(),
                    body_b64: crate::encoding::base64(&f.bytes, crate::encoding::BASE64),
                };
                self.files.iter().map(wire).collect()
            }),
        }
    }

    /// What the record keeps as `request_body`: `data`, or `params` for GET/DELETE, with the
    /// placeholders as written; of a raw body, its content type and size, and of each file its
    /// name, type and size (not their bytes).
    pub fn request_body(&self) -> Option<Value> {
        if let Some((bytes, content_type)) = &self.raw_body {
            return Some(serde_json::json!({"body_content_type": content_type, "size": bytes.len()}));
        }
        if self.method.has_body() && !self.files.is_empty() {
            self.data.as_ref().map(|data| upload::summarized(data, &self.files))
        } else if self.method.has_body() {
            self.data.clone()
        } else {
            self.params.clone().map(Value::Object)
        }
    }

    pub fn expires_ms(&self) -> u64 {
        self.expires_ms.unwrap_or(DEFAULT_EXPIRES_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed() -> Value {
        json!({
            "clientSecretName": "openai",
            "url": "https://api.openai.com/v1/images/generations",
            "method": "POST",
            "headers": {"Content-Type": "application/json", "Authorization": "Bearer $CLIENT_SECRET"},
            "data": {"model": "gpt-image-1.5", "prompt": "A cute baby sea otter", "n": 1, "size": "1024x1024"}
        })
    }

    fn with(mut v: Value, key: &str, val: Value) -> Value {
        v[key] = val;
        v
    }

    fn err(v: Value) -> String {
        Request::from_js(&v).unwrap_err().message
    }

    #[test]
    fn the_content_type_header_is_found_in_any_case() {
        let headers = json!({"Authorization": "Bearer $CLIENT_SECRET", "Content-TYPE": "Application/X-WWW-Form-Urlencoded"});
        let (r, _) = Request::from_js(&with(seed(), "headers", headers)).unwrap();
        assert_eq!(r.content_type(), Some("Application/X-WWW-Form-Urlencoded"));
        let (r, _) = Request::from_js(&with(seed(), "headers", json!({"Authorization": "$CLIENT_SECRET"}))).unwrap();
        assert_eq!(r.content_type(), None);
    }

    #[test]
    fn accepts_the_seed_example() {
        let (r, poll) = Request::from_js(&seed()).unwrap();
        assert_eq!(poll, 0.0);
        assert_eq!(r.method, Method::Post);
        assert_eq!(r.request_body().unwrap()["prompt"], "A cute baby sea otter");
        let wire = r.to_wire("svc", "own");
        assert_eq!(wire.method.as_deref(), Some("post"));
        assert_eq!(wire.expires, None);
        assert_eq!(Request::from_wire(&wire).unwrap(), r);
    }

    #[test]
    fn forward_request_names_a_secret_only_when_it_wants_one() {
        let mut keyless = with(seed(), "headers", json!({"Authorization": "Bearer public"}));
        keyless.as_object_mut().unwrap().remove("clientSecretName");
        let checked = check_at(&keyless, Units::Js, Door::ForwardRequest).unwrap();
        assert_eq!(checked.client_secret_name, None, "no secret, no placeholder needed");
        assert_eq!(check(&keyless, Units::Js).unwrap_err().message, "Key \"clientSecretName\" is required.", "the seed's door still needs one");
        let named = with(keyless, "secretName", json!("openai"));
        assert_eq!(
            check_at(&named, Units::Js, Door::ForwardRequest).unwrap_err().message,
            "At least one parameter value should include \"$CLIENT_SECRET\" in \"data\" or \"headers\".",
            "a named secret needs its placeholder"
        );
        let both = with(with(seed(), "secretName", json!("new")), "clientSecretName", json!("old"));
        assert_eq!(check(&both, Units::Wire).unwrap().client_secret_name.as_deref(), Some("new"), "secretName wins");
    }

    #[test]
    fn skapi_headers_are_a_flag_or_a_choice() {
        let both = SkapiHeaders { user: true, service: true };
        let user = SkapiHeaders { user: true, service: false };
        for (given, chosen) in [
            (json!(true), both),
            (json!(false), SkapiHeaders::default()),
            (json!({"user": true}), user),
            (json!({"user": true, "service": "yes"}), user),
            (json!(null), SkapiHeaders::default()),
        ] {
            let checked = check(&with(seed(), "skapiHeaders", given.clone()), Units::Wire).unwrap();
            assert_eq!(checked.skapi_headers, chosen, "{given}");
        }
        // Kept with the record: a restart sends what was asked.
        let body: CsrBody = serde_json::from_value(with(seed(), "skapiHeaders", json!({"service": true}))).unwrap();
        let kept = Request::from_wire(&body).unwrap().to_wire("s", "o");
        assert_eq!(Request::from_wire(&kept).unwrap().skapi_headers, SkapiHeaders { user: false, service: true });
        for bad in [json!("yes"), json!(1), json!(["user"])] {
            assert_eq!(
                err(with(seed(), "skapiHeaders", bad)),
                "\"skapiHeaders\" should be type: <boolean> or { user?: boolean; service?: boolean }."
            );
        }
    }

    #[test]
    fn the_skapi_header_prefix_is_the_servers() {
        for name in ["x-skapi-user", "X-Skapi-Service", "x-SKAPI-anything"] {
            let refused = with(seed(), "headers", json!({"Authorization": "Bearer $CLIENT_SECRET", name: "me"}));
            let expected = format!(
                "\"headers\" cannot set \"{name}\": the \"x-skapi-\" prefix is reserved. Use \"skapiHeaders\" to tell the destination who the caller is."
            );
            assert_eq!(err(refused.clone()), expected);
            assert_eq!(check_at(&refused, Units::Js, Door::ForwardRequest).unwrap_err().message, expected);
        }
        let near = with(seed(), "headers", json!({"Authorization": "Bearer $CLIENT_SECRET", "x-skapi": "1", "x-skap-user": "1"}));
        assert!(check(&near, Units::Js).is_ok(), "only the prefix itself is reserved");
    }

    #[test]
    fn uses_skapi_js_messages() {
        let mut no_name = seed();
        no_name.as_object_mut().unwrap().remove("clientSecretName");
        assert_eq!(err(no_name.clone()), "Key \"clientSecretName\" is required.");
        let renamed = with(no_name, "secretName", json!("openai"));
        assert_eq!(Request::from_js(&renamed).unwrap().0.client_secret_name.as_deref(), Some("openai"), "Skapi's newest name is accepted");
        let wire: CsrBody = serde_json::from_value(with(renamed, "method", json!("post"))).unwrap();
        assert_eq!(wire.secret_name.as_deref(), Some("openai"), "on the wire too");
        assert_eq!(Request::from_wire(&wire).unwrap().client_secret_name.as_deref(), Some("openai"));
        assert_eq!(err(with(seed(), "method", json!("TRACE"))), crate::method::INVALID_METHOD);
        assert_eq!(err(with(seed(), "poll", json!(-1))), "\"poll\" should be a non-negative number.");
        assert_eq!(err(with(seed(), "url", json!("not a url"))), "\"not a url\" is an invalid url.");
        let no_secret = with(seed(), "headers", json!({"Authorization": "Bearer x"}));
        assert_eq!(err(no_secret.clone()), "At least one parameter value should include \"$CLIENT_SECRET\" in \"data\" or \"headers\".");
        assert_eq!(
            err(with(no_secret, "method", json!("get"))),
            "At least one parameter value should include \"$CLIENT_SECRET\" in \"params\" or \"headers\"."
        );
    }

    #[test]
    fn finds_the_placeholder_in_url_nested_data_and_params() {
        let base = with(seed(), "headers", json!({}));
        assert!(Request::from_js(&with(base.clone(), "url", json!("https://x.io/?k=$CLIENT_SECRET"))).is_ok());
        assert!(Request::from_js(&with(base.clone(), "data", json!({"a": {"b": ["$CLIENT_SECRET"]}}))).is_ok());
        let get = with(with(base, "method", json!("get")), "params", json!({"key": "$CLIENT_SECRET"}));
        let (r, _) = Request::from_js(&get).unwrap();
        assert_eq!(r.request_body(), Some(json!({"key": "$CLIENT_SECRET"})));
    }

    #[test]
    fn converts_expires_between_ms_and_wire_seconds() {
        let (r, poll) = Request::from_js(&with(with(seed(), "expires", json!(3_600_500)), "poll", json!(true))).unwrap();
        assert_eq!(poll, 1000.0);
        assert_eq!(r.to_wire("s", "o").expires, Some(3601.0));
        assert!(Request::from_js(&with(seed(), "expires", json!(0))).is_err());
        let back = Request::from_wire(&CsrBody { expires: Some(60.0), ..r.to_wire("s", "o") }).unwrap();
        assert_eq!(back.expires_ms(), 60_000);
    }

    #[test]
    fn refuses_connection_headers_by_name() {
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "Keep-Alive",
            "TE",
            "Upgrade",
            "Proxy-Authorization",
            "proxy-anything",
            "Range",
            "if-range",
        ] {
            let mut headers = json!({"Authorization": "Bearer $CLIENT_SECRET"});
            headers[name] = json!("x");
            let message = err(with(seed(), "headers", headers));
            assert!(message.contains(&format!("\"{name}\"")), "{name}: {message}");
        }
        assert!(Request::from_js(&with(seed(), "headers", json!({"Authorization": "Bearer $CLIENT_SECRET", "X-Host": "h"}))).is_ok());
    }

    #[test]
    fn refuses_expires_past_the_maximum_or_not_finite() {
        assert!(err(with(seed(), "expires", json!(1e20))).contains("at most"));
        assert!(Request::from_js(&with(seed(), "expires", json!(MAX_EXPIRES_MS))).is_ok());
        let (r, _) = Request::from_js(&seed()).unwrap();
        for seconds in [1e308, 1e20, f64::INFINITY, f64::NAN, (MAX_EXPIRES_MS / 1000 + 1) as f64] {
            let wire = CsrBody { expires: Some(seconds), ..r.to_wire("s", "o") };
            assert_eq!(Request::from_wire(&wire).unwrap_err().code, crate::ErrorCode::InvalidParameter, "{seconds}");
        }
    }

    #[test]
    fn refuses_wrong_types() {
        assert!(err(with(seed(), "headers", json!("x"))).contains("\"headers\" should be type: <object>"));
        assert!(err(with(seed(), "headers", json!({"a": {"b": 1}}))).contains("strings"));
        assert!(err(with(seed(), "data", json!("$CLIENT_SECRET"))).contains("\"data\" should be type"));
        assert!(err(with(seed(), "queue", json!(3))).contains("\"queue\" should be type: <string>"));
        assert!(err(with(seed(), "queue", json!("q".repeat(300)))).contains("at most"));
        assert!(err(json!([1])).contains("params"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::wire::CsrBody;
    use proptest::prelude::*;
    use serde_json::json;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            ".{0,12}".prop_map(Value::String),
            Just(Value::String("$CLIENT_SECRET".into())),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::hash_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_cases(1000)))]

        /// Any JSON as a csr body: a validated request or INVALID_PARAMETER/INVALID_REQUEST,
        /// never a panic; and a request that validates has a placeholder somewhere.
        #[test]
        fn csr_bodies_validate_or_refuse(body in prop::collection::hash_map(
            prop_oneof![Just("url".to_owned()), Just("clientSecretName".to_owned()), Just("method".to_owned()),
                        Just("headers".to_owned()), Just("data".to_owned()), Just("params".to_owned()),
                        Just("expires".to_owned()), Just("queue".to_owned()), ".{0,8}"],
            json_value(), 0..8)) {
            let value = Value::Object(body.into_iter().collect());
            if let Ok(wire) = serde_json::from_value::<CsrBody>(value.clone()) {
                match Request::from_wire(&wire) {
                    Ok(request) => prop_assert!(request.has_placeholder()),
                    Err(e) => prop_assert!(matches!(e.code, crate::ErrorCode::InvalidParameter | crate::ErrorCode::InvalidRequest)),
                }
            }
            let _ = Request::from_js(&value);
        }

        /// Filling in the secret leaves no placeholder behind and changes nothing else.
        #[test]
        fn substitution_fills_every_placeholder(value in json_value(), secret in "[a-zA-Z0-9_-]{1,20}") {
            let filled = crate::placeholder::fill_value(&value, &secret);
            prop_assert!(!crate::placeholder::contains(&filled));
            let back = crate::placeholder::fill_value(&value, crate::PLACEHOLDER);
            prop_assert_eq!(back, value);
        }

        /// A composed full id splits back into its key and short id, whatever the url and queue.
        #[test]
        fn full_ids_split_back(url in ".{0,40}", queue in proptest::option::of(".{0,10}"), ms in any::<u64>(), entropy in "[a-zA-Z0-9]{1,12}") {
            let short = crate::id::short(ms, &entropy);
            let key = crate::id::key_v1(crate::Method::Post, &url, queue.as_deref());
            let full = crate::id::full(&key, &short);
            prop_assert_eq!(crate::id::split_full(&full), Some((key.as_str(), short.as_str())));
        }

        /// Splitting any string never panics.
        #[test]
        fn id_splitting_never_panics(text in ".{0,60}") {
            let _ = crate::id::split_full(&text);
            let _ = crate::id::split_prefix(&text);
        }
    }
}
