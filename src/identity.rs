//! The anonymous caller's public identifier: 128 random bits as hex, kept per service and
//! owner in `localStorage` so that a reload still finds its own request history.

use crate::web::{random, storage};

/// The stored identifier for (service, owner), created on first use. Without storage (or with
/// a full one) it lasts this page's life.
pub fn public_identifier(service: &str, owner: &str) -> String {
    let key = ["skapi:public_identifier:", service, ":", owner].concat();
    if let Some(existing) = storage::get(storage::Area::Local, &key).filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return existing;
    }
    let fresh = skapi_core::encoding::hex(&random::bytes::<16>());
    storage::set(storage::Area::Local, &key, &fresh);
    fresh
}

/// `n` random letters and digits (a stream's minted queue name).
pub fn random_alphanumerics<const N: usize>() -> String {
    const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let letters = random::bytes::<N>().map(|b| ALPHABET[b as usize % 62]);
    String::from_utf8(letters.to_vec()).unwrap_or_default()
}
