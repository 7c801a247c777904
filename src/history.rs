//! `clientSecretRequestHistory`: one page of past requests for a url and method, mapped to
//! `PollingResult`s, with a promise per unfinished item when `poll` > 0.

use crate::callbacks::Callbacks;
use crate::client::Client;
use crate::error::SdkError;
use crate::js::{self, Js};
use crate::poll;
use crate::tasks::{self, Tasks};
use skapi_core::request::ResponseType;
use skapi_core::tree::{Kind, Tree};
use skapi_core::wire::{HistoryPage, PollBody, PollingResult, QueueExact, Status};
use skapi_core::{id, ApiError, ErrorCode, Method};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

const METHOD: &str = "clientSecretRequestHistory()";

/// The `startKey`s used so far, per history query (for `fetchMore` and `startKeyHistory`):
/// a JavaScript `Map` from the query's key to the array of its `startKey`s.
pub struct Cursors(js_sys::Map);

impl Default for Cursors {
    fn default() -> Cursors {
        Cursors(js_sys::Map::new())
    }
}

impl Cursors {
    /// A copy of the keys used so far by `query` (empty for a new query).
    fn get(&self, query: &str) -> js_sys::Array {
        let keys = self.0.get(&JsValue::from_str(query));
        if keys.is_undefined() {
            js_sys::Array::new()
        } else {
            js_sys::Array::from(&keys)
        }
    }

    fn set(&self, query: &str, keys: &js_sys::Array) {
        self.0.set(&JsValue::from_str(query), keys);
    }
}

/// `{list, startKey, endOfList, startKeyHistory, pending}`
fn history_page(list: &js_sys::Array, start_key: &JsValue, end_of_list: bool, keys: &js_sys::Array, pending: &js_sys::Array) -> JsValue {
    let page: JsValue = js_sys::Object::new().into();
    js::set(&page, "list", list);
    js::set(&page, "startKey", start_key);
    js::set(&page, "endOfList", &end_of_list.into());
    js::set(&page, "startKeyHistory", keys);
    js::set(&page, "pending", pending);
    page
}

struct Query {
    method: Method,
    url: String,
    queue: Option<String>,
    status: Option<Status>,
    poll_ms: f64,
    response_type: Option<ResponseType>,
    /// Skapi's listing modifiers: label stubs instead of bodies, the queue matched exactly, one
    /// queue left out.
    compact: bool,
    queue_exact: bool,
    queue_exclude: Option<String>,
}

fn text(obj: &Js, key: &str) -> Option<String> {
    js::text(&obj.0, key)
}

fn parse_query(params: &Js) -> Result<Query, ApiError> {
    if params.kind() != Kind::Object {
        return Err(ApiError::invalid_parameter("\"params\" should be type: <object>."));
    }
    let url = text(params, "url").ok_or_else(|| ApiError::invalid_parameter("Key \"url\" is required."))?;
    skapi_core::url::validate(&url)?;
    let method = Method::parse(&text(params, "method").ok_or_else(|| ApiError::invalid_parameter("Key \"method\" is required."))?)?;
    let status =
        match text(params, "status") {
            Some(s) => Some(Status::parse(&s).ok_or_else(|| {
                ApiError::invalid_parameter("\"status\" should be either \"pending\" or \"running\" or \"resolved\" or \"failed\".")
            })?),
            None => None,
        };
    let poll_ms = params.field("poll", |v| match v.map(|v| (v.kind(), v.number())) {
        None | Some((Kind::Null, _)) => Ok(0.0),
        Some((Kind::Number, n)) => Ok(n.unwrap_or(-1.0)),
        Some(_) => Err(ApiError::invalid_parameter("\"poll\" should be type: <number>.")),
    })?;
    if poll_ms < 0.0 {
        return Err(ApiError::invalid_parameter("\"poll\" should be a non-negative number."));
    }
    let response_type = text(params, "responseType").map(|t| ResponseType::checked(&t)).transpose()?;
    let flag = |key: &str| {
        params.field(key, |v| match v.map(|v| (v.kind(), v.boolean())) {
            None | Some((Kind::Null | Kind::Other, _)) => Ok(false),
            Some((Kind::Bool, b)) => Ok(b == Some(true)),
            Some(_) => Err(ApiError::invalid_parameter(["\"", key, "\" should be type: <boolean>."].concat())),
        })
    };
    let (compact, queue_exact) = (flag("compact")?, flag("queue_exact")?);
    let queue_exclude = text(params, "queue_exclude");
    Ok(Query { method, url, queue: text(params, "queue"), status, poll_ms, response_type, compact, queue_exact, queue_exclude })
}

/// Paging options: `limit`, `startKey`, `fetchMore`, `ascending`.
struct Paging {
    limit: Option<u32>,
    start_key: Option<JsValue>,
    fetch_more: bool,
    ascending: Option<bool>,
}

fn parse_paging(options: &Js) -> Result<Paging, ApiError> {
    match options.kind() {
        Kind::Object => {}
        Kind::Null | Kind::Other => return Ok(Paging { limit: None, start_key: None, fetch_more: false, ascending: None }),
        _ => return Err(ApiError::invalid_parameter("\"fetchOptions\" should be type: <object>.")),
    }
    let limit = options.field("limit", |v| match v.map(|v| (v.kind(), v.number())) {
        None | Some((Kind::Null, _)) => Ok(None),
        Some((_, Some(n))) if (1.0..=1000.0).contains(&n) => Ok(Some(n as u32)),
        Some(_) => Err(ApiError::invalid_parameter("\"limit\" should be a number from 1 to 1000.")),
    })?;
    Ok(Paging {
        limit,
        start_key: options.field("startKey", |v| v.filter(|v| v.kind() != Kind::Null).map(|v| v.0.clone())),
        fetch_more: options.field("fetchMore", |v| v.and_then(Tree::boolean)).unwrap_or(false),
        ascending: options.field("ascending", |v| v.and_then(Tree::boolean)),
    })
}

fn invalid_answer() -> JsValue {
    SdkError::new(ErrorCode::InvalidRequest, "The history answer is not valid.").into_js(METHOD)
}

pub async fn client_secret_request_history(
    client: Rc<Client>,
    tasks: Rc<Tasks>,
    cursors: Rc<Cursors>,
    params: JsValue,
    fetch_options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let invalid = |e: ApiError| SdkError::from(e).into_js(METHOD);
    let query = parse_query(&Js(params)).map_err(invalid)?;
    let paging = parse_paging(&Js(fetch_options.unwrap_or(JsValue::UNDEFINED))).map_err(invalid)?;

    let key = id::key_v2_of_lowered(query.method, &js::lower(&query.url), &client.service);
    let prefix = [key.as_str(), ":"].concat();
    let ascending = match paging.ascending {
        None => "",
        Some(true) => "asc",
        Some(false) => "desc",
    };
    // One cursor list per query: the prefix, the filters and the order.
    let history_key = [
        prefix.as_str(),
        "\n",
        query.queue.as_deref().unwrap_or("\u{0}"),
        "\n",
        query.status.map_or("", Status::as_str),
        "\n",
        ascending,
        if query.queue_exact { "\n=" } else { "\n" },
        if query.compact { "\nc" } else { "\n" },
        query.queue_exclude.as_deref().unwrap_or("\u{0}"),
    ]
    .concat();
    let used = cursors.get(&history_key);
    let last_used = (used.length() > 0).then(|| used.get(used.length() - 1));
    let start_key = match (&paging.start_key, paging.fetch_more) {
        (Some(k), _) => Some(k.clone()),
        (None, true) => last_used.clone().filter(|k| !k.is_null()),
        (None, false) => None,
    };
    if paging.fetch_more && start_key.is_none() && last_used.is_some() {
        // The previous page was the last one.
        return Ok(history_page(&js_sys::Array::new(), &JsValue::NULL, true, &used, &js_sys::Array::new()));
    }
    let mut body = PollBody {
        status: query.status,
        limit: paging.limit,
        ascending: paging.ascending,
        start_key: start_key.map(Js),
        compact: query.compact.then_some(true),
        // Sent only as `true`, as Skapi's SDK does.
        queue_exact: (query.queue_exact && query.queue.is_some()).then_some(QueueExact::Flag(true)),
        queue_exclude: query.queue_exclude.clone(),
        ..client.poll_body()
    };
    match &query.queue {
        Some(q) => {
            body.queue = Some(q.clone());
            body.id_prefix = Some(prefix.clone());
        }
        None => body.id = Some(prefix.clone()),
    }
    let answer = client.post("csr-poll", &body).await.map_err(|e| e.into_js(METHOD))?;
    let page: HistoryPage<Js> = js::read(&answer).ok_or_else(invalid_answer)?;

    let keys = if paging.fetch_more { used } else { js_sys::Array::new() };
    keys.push(&page.start_key.0);
    cursors.set(&history_key, &keys);

    let pending = js_sys::Array::new();
    let list = js_sys::Array::new();
    for raw in page.list {
        let item = PollingResult::from(raw);
        let value = shaped_item(js::to_js(&item), query.response_type);
        if !item.status.is_final() {
            let full_id = id::full(&key, &item.id);
            let queue = item.queue_name.clone();
            let poll =
                poll::poll_function(client.clone(), tasks.clone(), full_id.clone(), queue.clone(), Callbacks::default(), query.response_type, METHOD);
            js::set(&value, "poll", &poll);
            if query.poll_ms > 0.0 {
                let interval = poll::interval(query.poll_ms);
                let (c, page_query, id, shape) = (client.clone(), body.clone(), full_id.clone(), query.response_type);
                pending.push(&tasks::spawn(&tasks, Some(full_id), queue, None, move |_| settle(c, id, item, interval, page_query, shape)));
            }
        }
        list.push(&value);
    }
    Ok(history_page(&list, &page.start_key.0, page.end_of_list, &js_sys::Array::from(&keys), &pending))
}

/// A history item (a `PollingResult`) with its answer as `response_type` asks.
fn shaped_item(item: JsValue, response_type: Option<ResponseType>) -> JsValue {
    let body = js::get(&item, "response_body");
    if response_type.is_some() && !body.is_null() && !body.is_undefined() {
        js::set(&item, "response_body", &poll::shaped(body, response_type));
    }
    item
}

/// Polls one unfinished item, then reads its final record from the same history page (the poll
/// answer alone lacks the status code and timestamps of a resolved request).
async fn settle(
    client: Rc<Client>,
    full_id: String,
    item: PollingResult<Js>,
    interval: u32,
    page_query: PollBody<Js>,
    response_type: Option<ResponseType>,
) -> Result<JsValue, JsValue> {
    let outcome = poll::until_done(&client, &full_id, interval, None).await;
    if let Ok(answer) = client.post("csr-poll", &page_query).await {
        if let Some(page) = js::read::<HistoryPage<Js>>(&answer) {
            if let Some(raw) = page.list.into_iter().find(|r| r.id == item.id && r.stts.is_final()) {
                return Ok(shaped_item(js::to_js(&PollingResult::from(raw)), response_type));
            }
        }
    }
    // Not on that page any more: build the final record from the poll's own answer.
    let mut done = item;
    match outcome {
        Ok(body) => {
            done.status = Status::Resolved;
            done.response_body = Some(Js(body.answer));
        }
        Err(e) if e.code == ErrorCode::Expired.as_str() || e.code == ErrorCode::NetworkError.as_str() => return Err(e.into_js(METHOD)),
        Err(SdkError { code, message, status_code, body }) => {
            done.status = Status::Failed;
            done.status_code = status_code;
            done.response_body = body.map(Js);
            done.error = Some(ApiError::new(ErrorCode::parse(&code).unwrap_or(ErrorCode::ServerError), message));
        }
    }
    Ok(shaped_item(js::to_js(&done), response_type))
}
