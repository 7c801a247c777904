//! Random bytes from Web Crypto (`crypto.getRandomValues`).

/// `N` random bytes. Without Web Crypto (very old hosts) `Math.random` stands in: the bytes
/// name a caller's history and a stream's queue, they guard nothing.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    let filled = web_sys::window().and_then(|w| w.crypto().ok()).is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
    if !filled {
        bytes.iter_mut().for_each(|b| *b = (js_sys::Math::random() * 256.0) as u8);
    }
    bytes
}
