//! `clientSecretRequestHistory`: one page of past requests for a url and method, mapped to
//! `PollingResult`s, with a promise per unfinished item when `poll` > 0.

use crate::client::Client;
use crate::error::SdkError;
use crate::js;
use crate::request::{poll_until_done, Callbacks};
use serde_json::Value;
use skapi_core::wire::{HistoryPage, PollBody, PollingResult, Status};
use skapi_core::{id, ApiError, ErrorCode, Method};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const METHOD: &str = "clientSecretRequestHistory()";

struct Query {
    method: Method,
    url: String,
    queue: Option<String>,
    status: Option<Status>,
    poll_ms: f64,
}

fn parse_query(params: &Value) -> Result<Query, ApiError> {
    let obj = params.as_object().ok_or_else(|| ApiError::invalid_parameter("\"params\" should be type: <object>."))?;
    let text = |key: &str| obj.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let url = text("url").ok_or_else(|| ApiError::invalid_parameter("Key \"url\" is required."))?;
    skapi_core::url::validate(&url)?;
    let method = Method::parse(&text("method").ok_or_else(|| ApiError::invalid_parameter("Key \"method\" is required."))?)?;
    let status =
        match text("status") {
            Some(s) => Some(Status::parse(&s).ok_or_else(|| {
                ApiError::invalid_parameter("\"status\" should be either \"pending\" or \"running\" or \"resolved\" or \"failed\".")
            })?),
            None => None,
        };
    let poll_ms = match obj.get("poll") {
        None | Some(Value::Null) => 0.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(-1.0),
        Some(_) => return Err(ApiError::invalid_parameter("\"poll\" should be type: <number>.")),
    };
    if poll_ms < 0.0 {
        return Err(ApiError::invalid_parameter("\"poll\" should be a non-negative number."));
    }
    Ok(Query { method, url, queue: text("queue"), status, poll_ms })
}

/// Paging options: `limit`, `startKey`, `fetchMore`, `ascending`.
struct Paging {
    limit: Option<u32>,
    start_key: Option<Value>,
    fetch_more: bool,
    ascending: Option<bool>,
}

fn parse_paging(options: Option<&Value>) -> Result<Paging, ApiError> {
    let empty = serde_json::Map::new();
    let obj = match options {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::invalid_parameter("\"fetchOptions\" should be type: <object>.")),
    };
    let limit = match obj.get("limit") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(n) if (1.0..=1000.0).contains(&n) => Some(n as u32),
            _ => return Err(ApiError::invalid_parameter("\"limit\" should be a number from 1 to 1000.")),
        },
    };
    Ok(Paging {
        limit,
        start_key: obj.get("startKey").filter(|v| !v.is_null()).cloned(),
        fetch_more: obj.get("fetchMore").and_then(Value::as_bool).unwrap_or(false),
        ascending: obj.get("ascending").and_then(Value::as_bool),
    })
}

pub async fn client_secret_request_history(client: Rc<Client>, params: JsValue, fetch_options: Option<JsValue>) -> Result<JsValue, JsValue> {
    let invalid = |e: ApiError| SdkError::from(e).into_js(METHOD);
    let params = js::to_json(&params).unwrap_or(Value::Null);
    let query = parse_query(&params).map_err(invalid)?;
    let paging = parse_paging(fetch_options.as_ref().and_then(js::to_json).as_ref()).map_err(invalid)?;

    let key = id::key_v2(query.method, &query.url, &client.service);
    let prefix = format!("{key}:");
    let history_key = format!("{prefix}|{:?}|{:?}|{:?}", query.queue, query.status, paging.ascending);
    let used = client.history_keys.borrow().get(&history_key).cloned().unwrap_or_default();
    let start_key = match (&paging.start_key, paging.fetch_more) {
        (Some(k), _) => Some(k.clone()),
        (None, true) => used.last().cloned().filter(|k| !k.is_null()),
        (None, false) => None,
    };
    if paging.fetch_more && start_key.is_none() && !used.is_empty() {
        // The previous page was the last one.
        let page = js::from_serde(&serde_json::json!({"list": [], "startKey": null, "endOfList": true}));
        js::set(&page, "startKeyHistory", &js::from_serde(&used));
        js::set(&page, "pending", &js_sys::Array::new());
        return Ok(page);
    }
    let mut body = PollBody {
        service: Some(client.service.clone()),
        owner: Some(client.owner.clone()),
        status: query.status,
        limit: paging.limit,
        ascending: paging.ascending,
        start_key: start_key.clone(),
        ..Default::default()
    };
    match &query.queue {
        Some(q) => {
            body.queue = Some(q.clone());
            body.id_prefix = Some(prefix.clone());
        }
        None => body.id = Some(prefix.clone()),
    }
    let answer = client.post("csr-poll", &body).await.map_err(|e| e.into_js(METHOD))?;
    let page: HistoryPage = serde_json::from_value(answer)
        .map_err(|e| SdkError::new(ErrorCode::InvalidRequest, format!("The history answer is not valid: {e}")).into_js(METHOD))?;

    let mut keys = if paging.fetch_more { used } else { Vec::new() };
    keys.push(page.start_key.clone());
    client.history_keys.borrow_mut().insert(history_key, keys.clone());

    let pending = js_sys::Array::new();
    let list = js_sys::Array::new();
    for raw in page.list {
        let item = PollingResult::from(raw);
        let value = js::from_serde(&item);
        if !item.status.is_final() {
            let full_id = id::full(&key, &item.id);
            let queue = item.queue_name.clone();
            js::set(&value, "poll", &crate::request::poll_function(client.clone(), full_id.clone(), queue.clone(), Callbacks::default(), METHOD));
            if query.poll_ms > 0.0 {
                let interval = query.poll_ms.min(u32::MAX as f64).max(1.0) as u32;
                let (c, page_query) = (client.clone(), body.clone());
                let id = full_id.clone();
                pending.push(&crate::polls::stoppable(&client, Some(full_id), queue, move |_| settle(c, id, item, interval, page_query)));
            }
        }
        list.push(&value);
    }
    let result = js_sys::Object::new();
    js::set(&result, "list", &list);
    js::set(&result, "startKey", &js::from_serde(&page.start_key));
    js::set(&result, "endOfList", &JsValue::from_bool(page.end_of_list));
    js::set(&result, "startKeyHistory", &js::from_serde(&keys));
    js::set(&result, "pending", &pending);
    Ok(result.into())
}

/// Polls one unfinished item, then reads its final record from the same history page (the poll
/// answer alone lacks the status code and timestamps of a resolved request).
async fn settle(client: Rc<Client>, full_id: String, item: PollingResult, interval: u32, page_query: PollBody) -> Result<JsValue, JsValue> {
    let outcome = poll_until_done(&client, &full_id, interval).await;
    if let Ok(answer) = client.post("csr-poll", &page_query).await {
        if let Ok(page) = serde_json::from_value::<HistoryPage>(answer) {
            if let Some(raw) = page.list.into_iter().find(|r| r.id == item.id && r.stts.is_final()) {
                return Ok(js::from_serde(&PollingResult::from(raw)));
            }
        }
    }
    // Not on that page any more: build the final record from the poll's own answer.
    let mut done = item;
    match outcome {
        Ok(body) => {
            done.status = Status::Resolved;
            done.response_body = Some(body);
        }
        Err(SdkError { code, message, status_code, body }) => {
            if code == ErrorCode::Expired.as_str() || code == ErrorCode::NetworkError.as_str() {
                return Err(SdkError { code, message, status_code, body }.into_js(METHOD));
            }
            done.status = Status::Failed;
            done.status_code = status_code;
            done.response_body = body;
            done.error = Some(ApiError::new(ErrorCode::parse(&code).unwrap_or(ErrorCode::ServerError), message));
        }
    }
    Ok(js::from_serde(&done))
}
