//! Text building without `core::fmt`: in the SDK's wasm, every `format!` brings the formatting
//! machinery along, so messages and ids are put together by concatenation instead.

/// `n` in decimal.
pub fn decimal(mut n: u64) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits[at..].iter().map(|&d| d as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_writes_what_display_writes() {
        for n in [0, 1, 9, 10, 99, 100, 429, 65_535, 1_000_000_007, u32::MAX as u64, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }
}
