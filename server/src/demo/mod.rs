//! The demo's offline stand-ins for the seed's third-party APIs, served by skapi-server itself
//! under `/demo-api` (with `serve --demo`), and the keys that point at them:
//! - `POST /demo-api/v1/images/generations` — OpenAI's image API shape (`model`, `prompt`, `n`,
//!   `size` → `data[].b64_json`); checks `Authorization: Bearer <the openai key>` and draws a
//!   picture that depends on the prompt;
//! - `GET /demo-api/geo?key=<the maps key>&q=…[&delay=ms]` — a GET-style API with the key in
//!   the query.
//!
//! Each secret is random, sealed like any other and shown nowhere; the stand-ins check what
//! they receive against the keyring at request time.

mod png;

use crate::destination::Destinations;
use crate::keyring::{KeyEdit, NewKey};
use crate::AppState;
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
/// How long the stand-in "generates" an image, so the demo shows its pending state.
const IMAGE_DELAY: Duration = Duration::from_millis(1500);
const PICTURE_SIDE: u32 = 256;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/images/generations", post(images)).route("/geo", get(geo))
}

/// Makes sure the demo keys exist (a random secret each, kept across restarts) and point at
/// this server's stand-ins at `base` (`http://127.0.0.1:PORT`).
pub async fn ensure_keys(state: &AppState, base: &str) -> anyhow::Result<()> {
    for (name, path, positions) in [
        ("openai", "/demo-api/v1", vec![skapi_core::positions::Position::Headers]),
        ("maps", "/demo-api/geo", vec![skapi_core::positions::Position::Params]),
    ] {
        let destinations = Destinations::Only(vec![format!("{base}{path}")]);
        let existing = state.keyring.list(Some(SERVICE)).await?.into_iter().find(|k| k.name == name);
        if let Some(key) = existing {
            // Follow this server's address, unless the operator pointed the key at a real API.
            if matches!(&key.destinations, Destinations::Only(list) if list.iter().all(|d| d.contains("/demo-api/"))) {
                let edit = KeyEdit { destinations: Some(destinations), ..Default::default() };
                state.keyring.edit(SERVICE, name, edit).await?;
            }
        } else {
            let secret = crate::secrets::random_hex(32);
            let key = NewKey { service: SERVICE.into(), name: name.into(), secret, destinations, positions, ..Default::default() };
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

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A picture that visibly depends on the prompt: its colours, and one disc per word.
fn picture(prompt: &str, variant: u32) -> Vec<u8> {
    let seed = fnv(&format!("{prompt}#{variant}"));
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
    let expected = secret_of(&state, "openai").await.map(|s| format!("Bearer {s}"));
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if expected.is_none() || given != expected.as_deref() {
        return openai_error(StatusCode::UNAUTHORIZED, "Incorrect API key provided.");
    }
    let request: ImageRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return openai_error(StatusCode::BAD_REQUEST, &format!("We could not parse the JSON body of your request: {e}")),
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

async fn geo(State(state): State<AppState>, Query(query): Query<HashMap<String, String>>) -> Response {
    let expected = secret_of(&state, "maps").await;
    if expected.is_none() || query.get("key") != expected.as_ref() {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "The API key is missing or wrong."}))).into_response();
    }
    let q = query.get("q").cloned().unwrap_or_default();
    let delay = query.get("delay").and_then(|d| d.parse::<u64>().ok()).unwrap_or(0).min(5000);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    let h = fnv(&q.to_lowercase());
    // Whole thousandths, so the numbers print short.
    let lat = ((h % 180_000) as i64 - 90_000) as f64 / 1000.0;
    let lon = (((h >> 20) % 360_000) as i64 - 180_000) as f64 / 1000.0;
    Json(json!({"query": q, "lat": lat, "lon": lon, "answered_at": crate::clock::now_ms()})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_depend_on_the_prompt() {
        let otter = picture("A cute baby sea otter", 0);
        assert_eq!(otter, picture("A cute baby sea otter", 0));
        assert_ne!(otter, picture("A grumpy old walrus", 0));
        assert_ne!(otter, picture("A cute baby sea otter", 1));
    }
}
