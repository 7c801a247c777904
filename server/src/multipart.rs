//! Reading a `multipart/form-data` body that is already in memory (bounded by the body limit).

use axum::body::Bytes;

/// The parts of `body`, sent with `content_type` (which names the boundary).
pub fn parts(content_type: &str, body: Bytes) -> Result<multer::Multipart<'static>, multer::Error> {
    let boundary = multer::parse_boundary(content_type)?;
    Ok(multer::Multipart::new(futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) }), boundary))
}
