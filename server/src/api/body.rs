//! A call's wire body, read and checked once by an extractor: handlers take the typed body and
//! never see bytes. What cannot be read answers as a [`Failure`] (413 when too large, 400 when
//! not the expected JSON).

use super::Failure;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;
use skapi_core::upload::{self, Upload};
use skapi_core::wire::CsrBody;

/// A JSON body of type `T`.
pub struct Wire<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Wire<T> {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Wire<T>, Failure> {
        let bytes = Bytes::from_request(request, state).await?;
        parse(&bytes).map(Wire)
    }
}

/// Reads JSON of type `T`, with a clear error when it is not JSON of that shape.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| Failure::invalid_parameter(format!("The request body is not valid: {e}.")))
}

/// A `csr` body: JSON, or multipart with files (the SDK's form for them).
pub struct CsrInput {
    pub body: CsrBody,
    /// The files of a multipart body, in order; `None` for a JSON one.
    pub files: Option<Vec<Upload>>,
}

impl<S: Send + Sync> FromRequest<S> for CsrInput {
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<CsrInput, Failure> {
        let content_type = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let bytes = Bytes::from_request(request, state).await?;
        if !upload::is_multipart(&content_type) {
            return Ok(CsrInput { body: parse(&bytes)?, files: None });
        }
        let (body, files) = read_multipart(&content_type, bytes).await?;
        Ok(CsrInput { body, files: Some(files) })
    }
}

/// A multipart `csr` (the SDK's form for files): the body as JSON in the first part, named
/// `request`, then each file `data` places, in order, with its name and type.
async fn read_multipart(content_type: &str, body: Bytes) -> Result<(CsrBody, Vec<Upload>), Failure> {
    let invalid = |e: multer::Error| Failure::invalid_parameter(format!("The multipart body is not valid: {e}."));
    let mut parts = crate::multipart::parts(content_type, body).map_err(invalid)?;
    let first = parts.next_field().await.map_err(invalid)?;
    let Some(first) = first.filter(|f| f.name() == Some("request")) else {
        return Err(Failure::invalid_parameter("A multipart request starts with its JSON body, in a part named \"request\"."));
    };
    let body: CsrBody = parse(&first.bytes().await.map_err(invalid)?)?;
    if body.files.is_some() {
        return Err(Failure::invalid_parameter("Files come as parts of a multipart request, or in \"files\": not both."));
    }
    let mut files = Vec::new();
    while let Some(part) = parts.next_field().await.map_err(invalid)? {
        let filename = part.file_name().unwrap_or("blob").to_owned();
        let content_type = part.content_type().map_or_else(|| "application/octet-stream".to_owned(), ToString::to_string);
        files.push(Upload { filename, content_type, bytes: part.bytes().await.map_err(invalid)?.to_vec() });
    }
    Ok((body, files))
}
