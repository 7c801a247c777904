//! The anonymous caller's public identifier: 128 random bits, kept per service and owner in
//! `localStorage` so that a reload still finds its own request history.

use wasm_bindgen::JsValue;

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    let filled = web_sys::window().and_then(|w| w.crypto().ok()).map(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok()).unwrap_or(false);
    if !filled {
        // No Web Crypto (very old or unusual hosts): fall back to Math.random.
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes.iter().flat_map(|b| [HEX[(b >> 4) as usize] as char, HEX[(b & 15) as usize] as char]).collect()
}

/// The stored identifier for (service, owner), created on first use.
pub fn public_identifier(service: &str, owner: &str) -> String {
    let key = ["skapi:public_identifier:", service, ":", owner].concat();
    let storage = web_sys::window().and_then(|w| w.local_storage().ok().flatten());
    if let Some(storage) = &storage {
        if let Ok(Some(existing)) = storage.get_item(&key) {
            if existing.len() == 32 && existing.bytes().all(|b| b.is_ascii_hexdigit()) {
                return existing;
            }
        }
    }
    let fresh = random_hex();
    if let Some(storage) = &storage {
        let _: Result<(), JsValue> = storage.set_item(&key, &fresh);
    }
    fresh
}
