//! Random bytes from Web Crypto (`crypto.getRandomValues`).

/// `N` random bytes. Every browser that runs WebAssembly has Web Crypto; where it cannot be
/// reached the bytes stay zero (they name a caller's history and a stream's queue, they guard
/// nothing).
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut bytes);
    }
    bytes
}
