//! `csr-cancel`: stop a request of the caller's own — never sent if pending, aborted if running.

use super::body::Wire;
use super::record::named_record;
use super::{Caller, Failure};
use crate::engine::Cancel;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;

use skapi_core::wire::{CancelAnswer, PollBody};

pub async fn csr_cancel(State(state): State<AppState>, caller: Caller, Wire(body): Wire<PollBody>) -> Result<Json<CancelAnswer>, Failure> {
    let record = named_record(&state, &caller, body.service.as_deref(), body.id.as_deref()).await?;
    let (removed, message) = match state.engine.cancel(&record.new.id).await? {
        Cancel::BeforeSending => (true, "The request was cancelled before it was sent."),
        Cancel::WhileRunning => (true, "The request was cancelled while it ran; the call was aborted."),
        Cancel::NotRemoved => (false, "The request had already finished."),
    };
    Ok(Json(CancelAnswer { removed, message: message.to_owned() }))
}
