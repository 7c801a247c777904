//! The anonymous caller's public identifier: 128 random bits, kept per service and owner in
//! `localStorage` so that a reload still finds its own request history (storage and random
//! bytes are `browser.js`'s).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/browser.js")]
extern "C" {
    #[wasm_bindgen(js_name = publicIdentifier)]
    fn stored_identifier(key: &str) -> String;
}

/// The stored identifier for (service, owner), created on first use.
pub fn public_identifier(service: &str, owner: &str) -> String {
    stored_identifier(&["skapi:public_identifier:", service, ":", owner].concat())
}
