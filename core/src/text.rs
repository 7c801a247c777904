//! Text building without `core::fmt`: in the SDK's wasm, every `format!` brings the formatting
//! machinery along, so messages and ids are put together by concatenation instead.

/// `n` in decimal.
pub fn decimal(mut n: u64) -> String {
    // Least significant first, then reversed: no indexing (a panic path would bring number
    // formatting into the SDK's wasm).
    let mut digits = Vec::with_capacity(20);
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| d as char).collect()
}

/// `s` read as a decimal number: ASCII digits only (no sign, no spaces), at most `u32::MAX`
/// (more saturates). Smaller in the wasm than `str::parse`.
pub fn read_decimal(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n.saturating_mul(10).saturating_add(u32::from(b - b'0'))))
}

/// `s` split around the first `sep` (an ASCII byte), or the last when `last`. Byte by byte:
/// `str`'s pattern searchers would each bring their own code into the wasm.
pub fn split_at_byte(s: &str, sep: u8, last: bool) -> Option<(&str, &str)> {
    let at = if last { s.bytes().rposition(|b| b == sep) } else { s.bytes().position(|b| b == sep) }?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// The parts of `s` between `sep`s (an ASCII byte), in order.
pub fn parts(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let current = rest?;
        match split_at_byte(current, sep, false) {
            Some((part, after)) => {
                rest = Some(after);
                Some(part)
            }
            None => rest.take(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(read_decimal("120"), Some(120));
        assert_eq!(read_decimal("0"), Some(0));
        assert_eq!(read_decimal("99999999999"), Some(u32::MAX));
        for bad in ["", " 1", "1.5", "-1", "+1", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(read_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn splits_as_str_does() {
        for s in ["", ":", "a:b", "a:b:c", "::", "é:ü:x", "abc"] {
            assert_eq!(split_at_byte(s, b':', false), s.split_once(':'), "{s}");
            assert_eq!(split_at_byte(s, b':', true), s.rsplit_once(':'), "{s}");
            assert_eq!(parts(s, b':').collect::<Vec<_>>(), s.split(':').collect::<Vec<_>>(), "{s}");
        }
    }

    #[test]
    fn decimal_writes_what_display_writes() {
        for n in [0, 1, 9, 10, 99, 100, 429, 65_535, 1_000_000_007, u32::MAX as u64, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }
}
