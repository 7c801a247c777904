//! The demo's offline stand-ins for the seed's third-party APIs, served by skapi-server itself
//! under `/demo-api` (with `serve --demo`), and the keys that point at them:
//! - `POST /demo-api/v1/images/generations` — OpenAI's image API shape (`model`, `prompt`, `n`,
//!   `size` → `data[].b64_json`); checks `Authorization: Bearer <the openai key>` and draws a
//!   picture that depends on the prompt;
//! - `POST /demo-api/v1/chat/completions` — OpenAI's chat API shape (`model`, `messages`,
//!   `stream`); with `stream: true` the answer comes as OpenAI streams it — server-sent events
//!   `data: {choices:[{delta:{content}}]}` a few tens of ms apart, then `data: [DONE]`;
//! - `POST /demo-api/v1/audio/transcriptions` — OpenAI's speech-to-text shape (multipart:
//!   `model`, `file` → `{text}`); says what file it received;
//! - `GET /demo-api/geo?key=<the maps key>&q=…[&delay=ms]` — a GET-style API with the key in
//!   the query.
//!
//! Each secret is random, sealed like any other and shown nowhere; the stand-ins check what
//! they receive against the keyring at request time.

mod png;

use crate::destination::Destinations;
use crate::keyring::{KeyEdit, NewKey};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use skapi_core::encoding;
use std::collections::HashMap;
use std::time::Duration;

pub const SERVICE: &str = "demo";
/// How far apart the chat stand-in writes its tokens when it streams.
const TOKEN_GAP: Duration = Duration::from_millis(40);
/// How long the stand-in "generates" an image, so the demo shows its pending state.
const IMAGE_DELAY: Duration = Duration::from_millis(1500);
const PICTURE_SIDE: u32 = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/images/generations", post(images))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/audio/transcriptions", post(transcriptions))
        .route("/geo", get(geo))
}

/// Makes sure the demo keys exist (a random secret each, kept across restarts) and point at
/// this server's stand-ins at `base` (`http://127.0.0.1:PORT`).
/// The demo's image key is spent with care, as a paid one should be (docs/paid-keys.md): its
/// image requests ask for one picture of one model and size, and each caller has a day's quota.
fn image_rules() -> Value {
    json!({
        "if": {"properties": {"url": {"pattern": "/images/generations$"}}},
        "then": {"properties": {"data": {
            "type": "object",
            "required": ["model", "prompt"],
            "properties": {
                "model": {"enum": ["gpt-image-1.5"]},
                "n": {"type": "integer", "minimum": 1, "maximum": 1},
                "size": {"enum": ["1024x1024"]}
            }
        }}}
    })
}

/// Requests a day one caller may make with the demo's `openai` key.
const DEMO_DAILY_PER_CALLER: u32 = 200;

pub async fn ensure_keys(state: &AppState, base: &str) -> anyhow::Result<()> {
    for (name, path, positions) in [
        ("openai", "/demo-api/v1", vec![skapi_core::positions::Position::Headers]),
        ("maps", "/demo-api/geo", vec![skapi_core::positions::Position::Params]),
    ] {
        let guarded = name == "openai";
        let (rules, quota) = (guarded.then(image_rules), guarded.then_some(DEMO_DAILY_PER_CALLER));
        let destinations = Destinations::Only(vec![format!("{base}{path}")]);
        let existing = state.keyring.list(Some(SERVICE)).await?.into_iter().find(|k| k.name == name);
        if let Some(key) = existing {
            // Follow this server's address, unless the operator pointed the key at a real API.
            if matches!(&key.destinations, Destinations::Only(list) if list.iter().all(|d| d.contains("/demo-api/"))) {
                let edit =
                    KeyEdit { destinations: Some(destinations), request_schema: Some(rules), daily_per_caller: Some(quota), ..Default::default() };
                state.keyring.edit(SERVICE, name, edit).await?;
            }
        } else {
            let secret = crate::secrets::random_hex(32);
            let key = NewKey {
                service: SERVICE.into(),
                name: name.into(),
                secret,
                destinations,
                positions,
                request_schema: rules,
                daily_per_caller: quota,
                ..Default::default()
            };
            state.keyring.add(key, false).await?;
        }
    }
    Ok(())
}

async fn secret_of(state: &AppState, name: &str) -> Option<String> {
    state.keyring.open(SERVICE, name).await.ok().flatten().map(|(_, secret)| secret)
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "invalid_request_error"}}))).into_response()
}

/// What OpenAI checks first, as OpenAI answers it: `Authorization: Bearer <the openai key>`.
async fn openai_key(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let expected = secret_of(state, "openai").await.map(|s| format!("Bearer {s}"));
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if expected.is_none() || given != expected.as_deref() {
        return Err(openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided."));
    }
    Ok(())
}

/// The key, then a JSON body of the endpoint's shape.
async fn openai_request<T: serde::de::DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<T, Response> {
    openai_key(state, headers).await?;
    serde_json::from_slice(body).map_err(|e| openai_error(StatusCode::BAD_REQUEST, &format!("We could not parse the JSON body of your request: {e}")))
}

fn fnv(bytes: impl AsRef<[u8]>) -> u64 {
    bytes.as_ref().iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A picture that visibly depends on the prompt: its colours, and one disc per word.
fn picture(prompt: &str, variant: u32) -> Vec<u8> {
    let seed = fnv(format!("{prompt}#{variant}"));
    let color = |shift: u32| -> [f32; 3] {
        let h = seed.rotate_left(shift);
        [(h & 0xff) as f32, ((h >> 8) & 0xff) as f32, ((h >> 16) & 0xff) as f32]
    };
    let (top, bottom, ink) = (color(0), color(21), color(42));
    let side = PICTURE_SIDE as f32;
    let discs: Vec<(f32, f32, f32)> = prompt
        .split_whitespace()
        .take(12)
        .map(|word| {
            let h = fnv(word) ^ seed;
            let x = (h & 0xffff) as f32 / 65535.0 * side;
            let y = ((h >> 16) & 0xffff) as f32 / 65535.0 * side;
            let r = 12.0 + ((h >> 32) & 0x3f) as f32;
            (x, y, r)
        })
        .collect();
    let mut rgb = Vec::with_capacity((PICTURE_SIDE * PICTURE_SIDE * 3) as usize);
    for y in 0..PICTURE_SIDE {
        for x in 0..PICTURE_SIDE {
            let t = y as f32 / side;
            let mut px = [0f32; 3];
            for c in 0..3 {
                px[c] = top[c] * (1.0 - t) + bottom[c] * t;
            }
            for (i, (cx, cy, r)) in discs.iter().enumerate() {
                let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                if d < *r {
                    let alpha = if i % 2 == 0 { 0.85 } else { 0.55 };
                    for c in 0..3 {
                        px[c] = px[c] * (1.0 - alpha) + (255.0 - ink[c]) * alpha;
                    }
                }
            }
            rgb.extend(px.iter().map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    png::encode_rgb(PICTURE_SIDE, PICTURE_SIDE, &rgb)
}

#[derive(Deserialize)]
struct ImageRequest {
    prompt: Option<String>,
    n: Option<u32>,
    model: Option<String>,
    size: Option<String>,
}

async fn images(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let request: ImageRequest = match openai_request(&state, &headers, &body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let Some(prompt) = request.prompt.filter(|p| !p.trim().is_empty()) else {
        return openai_error(StatusCode::BAD_REQUEST, "'prompt' is a required property.");
    };
    let n = request.n.unwrap_or(1);
    if !(1..=4).contains(&n) {
        return openai_error(StatusCode::BAD_REQUEST, "'n' must be between 1 and 4 in this stand-in.");
    }
    tokio::time::sleep(IMAGE_DELAY).await;
    let data = tokio::task::spawn_blocking(move || {
        (0..n)
            .map(|i| json!({"b64_json": encoding::base64(&picture(&prompt, i), encoding::BASE64), "revised_prompt": prompt}))
            .collect::<Vec<Value>>()
    })
    .await
    .unwrap_or_default();
    let created = crate::clock::now_ms() / 1000;
    Json(json!({"created": created, "data": data, "model": request.model, "size": request.size, "stand_in": true})).into_response()
}

#[derive(Deserialize)]
struct ChatRequest {
    model: Option<String>,
    #[serde(default)]
    messages: Vec<ChatMessage>,
    #[serde(default)]
    stream: bool,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(default)]
    role: String,
    #[serde(default)]
    content: String,
}

/// The stand-in's answer to `prompt`, as the tokens it streams (each a word and its space).
fn reply_tokens(prompt: &str) -> Vec<String> {
    let topic: String = prompt.split_whitespace().take(12).collect::<Vec<_>>().join(" ");
    let text = format!(
        "This is the offline stand-in answering \"{topic}\": each word you see was written by it a moment apart, \
         passed through skapi-server with the key filled in, and kept before it reached this page."
    );
    text.split_inclusive(' ').map(str::to_owned).collect()
}

async fn chat(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let request: ChatRequest = match openai_request(&state, &headers, &body).await {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let Some(prompt) = request.messages.iter().rev().find(|m| m.role == "user").map(|m| m.content.clone()) else {
        return openai_error(StatusCode::BAD_REQUEST, "'messages' must hold a message with role 'user'.");
    };
    let (model, created) = (request.model.unwrap_or_else(|| "stand-in".into()), crate::clock::now_ms() / 1000);
    let id = format!("chatcmpl-{:x}", fnv(format!("{prompt}{created}")));
    let tokens = reply_tokens(&prompt);
    if !request.stream {
        let message = json!({"role": "assistant", "content": tokens.concat()});
        return Json(json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                           "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}))
        .into_response();
    }
    let event = move |delta: Value, finish: Value| {
        let chunk = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let mut events = vec![event(json!({"role": "assistant", "content": ""}), Value::Null)];
    events.extend(tokens.into_iter().map(|t| event(json!({"content": t}), Value::Null)));
    events.push(event(json!({}), json!("stop")));
    events.push("data: [DONE]\n\n".to_owned());
    let stream = futures_util::stream::unfold(events.into_iter().enumerate(), |mut events| async move {
        let (i, event) = events.next()?;
        if i > 0 {
            tokio::time::sleep(TOKEN_GAP).await;
        }
        Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(event)), events))
    });
    ([("content-type", "text/event-stream"), ("cache-control", "no-cache")], axum::body::Body::from_stream(stream)).into_response()
}

/// OpenAI's transcription API shape: a multipart body with `model` and the recording in
/// `file`. The stand-in cannot listen: it says what it received, byte for byte.
async fn transcriptions(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(refused) = openai_key(&state, &headers).await {
        return refused;
    }
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let Ok(mut parts) = crate::multipart::parts(content_type, body) else {
        return openai_error(StatusCode::BAD_REQUEST, "The body must be multipart/form-data.");
    };
    let (mut model, mut file) = (None, None);
    while let Ok(Some(part)) = parts.next_field().await {
        let name = part.name().unwrap_or("").to_owned();
        let described = (part.file_name().unwrap_or("").to_owned(), part.content_type().map(ToString::to_string).unwrap_or_default());
        let Ok(bytes) = part.bytes().await else { break };
        match name.as_str() {
            "model" => model = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => file = Some((described, bytes)),
            _ => {}
        }
    }
    let (Some(model), Some(((filename, kind), bytes))) = (model, file) else {
        return openai_error(StatusCode::BAD_REQUEST, "Both 'model' and 'file' are required.");
    };
    let digest = fnv(&bytes[..]);
    let text = format!(
        "The stand-in received {filename} ({} bytes of {kind}, fingerprint {digest:016x}) for {model}. A real speech API would write out what it says.",
        bytes.len()
    );
    Json(json!({ "text": text })).into_response()
}

async fn geo(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let expected = secret_of(&state, "maps").await;
    if expected.is_none() || query.get("key") != expected.as_ref() {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "The API key is missing or wrong."}))).into_response();
    }
    let q = query.get("q").cloned().unwrap_or_default();
    let delay = query.get("delay").and_then(|d| d.parse::<u64>().ok()).unwrap_or(0).min(5000);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let h = fnv(q.to_lowercase());
    // Whole thousandths, so the numbers print short.
    let lat = ((h % 180_000) as i64 - 90_000) as f64 / 1000.0;
    let lon = (((h >> 20) % 360_000) as i64 - 180_000) as f64 / 1000.0;
    Json(json!({"query": q, "lat": lat, "lon": lon, "answered_at": crate::clock::now_ms()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_reply_is_words_that_join_into_one_answer() {
        let tokens = reply_tokens("Tell me about sea otters");
        assert!(tokens.len() > 20 && tokens.iter().all(|t| !t.is_empty()));
        assert!(tokens.concat().contains("\"Tell me about sea otters\""), "{}", tokens.concat());
        assert_eq!(tokens, reply_tokens("Tell me about sea otters"));
    }

    #[test]
    fn pictures_depend_on_the_prompt() {
        let otter = picture("A cute baby sea otter", 0);
        assert_eq!(otter, picture("A cute baby sea otter", 0));
        assert_ne!(otter, picture("A grumpy old walrus", 0));
        assert_ne!(otter, picture("A cute baby sea otter", 1));
    }
}
