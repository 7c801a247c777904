//! `csr-cancel`: stop a request of the caller's own — never sent if pending, aborted if running.

use super::record::named_record;
use super::{parse_body, Caller, Failure};
use crate::engine::Cancel;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::Json;

use skapi_core::wire::{CancelAnswer, PollBody};

pub async fn csr_cancel(State(state): State<AppState>, caller: Caller, body: Result<Bytes, BytesRejection>) -> Result<Json<CancelAnswer>, Failure> {
    let body: PollBody = parse_body(body)?;
    let record = named_record(&state, &caller, body.service.as_deref(), body.id.as_deref()).await?;
    let (removed, message) = match state.engine.cancel(&record.new.id).await? {
        Cancel::BeforeSending => (true, "The request was cancelled before it was sent."),
        Cancel::WhileRunning => (true, "The request was cancelled while it ran; the call was aborted."),
        Cancel::NotRemoved => (false, "The request had already finished."),
    };
    Ok(Json(CancelAnswer { removed, message: message.to_owned() }))
}
