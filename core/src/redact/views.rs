//! The readings of a text (or of bytes) in which the secret is looked for: as written or
//! escaped (percent, JSON, `\x`/`\u{…}`, HTML character references — any mix), hex, base64
//! (both alphabets, every alignment, wrapped at line breaks) and UTF-16 (either byte order,
//! either alignment). [`scan`] runs them all and says where the secret is and where a tail that
//! could still begin it starts.

use std::collections::VecDeque;

/// How an occurrence is written, so that its replacement is written the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Form {
    /// One byte a character: the placeholder as written.
    Bytes,
    /// UTF-16, little-endian.
    Utf16Le,
    /// UTF-16, big-endian.
    Utf16Be,
}

/// Where an occurrence of the secret is in the source, and how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Span {
    pub start: usize,
    pub end: usize,
    pub form: Form,
}

/// One decoded byte and the span of source text it came from.
#[derive(Clone, Copy, Debug)]
struct Piece {
    byte: u8,
    start: usize,
    end: usize,
}

/// Looks for the secret in one dense view's stream of decoded bytes (hex, base64, UTF-16).
struct Matcher<'a> {
    secret: &'a [u8],
    form: Form,
    /// The last `secret.len()` pieces of the current run.
    window: VecDeque<Piece>,
    /// Source spans that decode to the secret.
    found: Vec<Span>,
    /// Earliest start of a tail of the text that decodes to a beginning of the secret.
    tail: Option<usize>,
    /// Only tails holding this many whole bytes of the secret count (0: a few bits of its
    /// first byte too).
    min_bytes: usize,
}

impl<'a> Matcher<'a> {
    fn new(secret: &'a [u8], form: Form) -> Matcher<'a> {
        Matcher { secret, form, window: VecDeque::with_capacity(secret.len() + 1), found: Vec::new(), tail: None, min_bytes: 0 }
    }

    fn push(&mut self, byte: u8, start: usize, end: usize) {
        self.window.push_back(Piece { byte, start, end });
        if self.window.len() > self.secret.len() {
            self.window.pop_front();
        }
        let m = self.secret.len();
        if self.window.len() == m && byte == self.secret[m - 1] && self.window.iter().zip(self.secret).all(|(p, s)| p.byte == *s) {
            self.found.push(Span { start: self.window[0].start, end, form: self.form });
        }
    }

    /// Ends a run of decodable text: nothing matches across it.
    fn reset(&mut self) {
        self.window.clear();
    }

    /// The view has reached the end of the text: the window's pieces, then from `rest` on
    /// `nbits` bits of one more byte (`value`, high bits first). Records where a tail that
    /// could be a beginning of the secret starts.
    fn end(&mut self, rest: usize, value: u8, nbits: u32) {
        let mut cut = None;
        let (m, n) = (self.secret.len(), self.window.len());
        let partial = |next: u8| nbits == 0 || next >> (8 - nbits) == value;
        if self.window.back().is_some_and(|p| p.end >= rest) {
            for k in (self.min_bytes.max(1)..=n.min(m - 1)).rev() {
                let whole = self.window.iter().skip(n - k).zip(self.secret).all(|(p, s)| p.byte == *s);
                if whole && partial(self.secret[k]) {
                    cut = Some(self.window[n - k].start);
                    break;
                }
            }
        }
        // Fewer than 4 bits of the first byte say nothing worth a cut (and would cut ordinary
        // text at random).
        if cut.is_none() && self.min_bytes == 0 && nbits >= 4 && partial(self.secret[0]) {
            cut = Some(rest);
        }
        if let Some(at) = cut {
            self.tail = Some(self.tail.map_or(at, |t| t.min(at)));
        }
    }
}

pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn base64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// What one way of reading the text from a start position found.
enum Spelling {
    /// The whole secret, ending here.
    Whole(usize),
    /// The text ended after a beginning of the secret (or an escape the end cut short),
    /// having read this many of its bytes whole.
    Tail(usize),
}

/// The value of the digits (in `radix`, 10 or 16) of `text[from..]` up to a byte that is not
/// one, if there are `1..=max` of them (at most 8); and where they end.
fn number(text: &[u8], from: usize, max: usize, radix: u32) -> Option<(u32, usize)> {
    let digit = |d: &u8| char::from(*d).to_digit(radix);
    let digits = text.get(from..)?.iter().take(max + 1).take_while(|d| digit(d).is_some()).count();
    if digits == 0 || digits > max {
        return None;
    }
    let value = text[from..from + digits].iter().fold(0u32, |acc, d| acc * radix + digit(d).unwrap_or(0));
    Some((value, from + digits))
}

/// A `\uXXXX` escape's code unit at `at`.
fn unicode_unit(text: &[u8], at: usize) -> Option<u32> {
    if text.get(at) != Some(&b'\\') || text.get(at + 1) != Some(&b'u') {
        return None;
    }
    text.get(at + 2..at + 6)?.iter().try_fold(0u32, |acc, &d| Some(acc << 4 | hex_value(d)? as u32))
}

/// Most digits a numeric character reference is read with (leading zeros included).
const REFERENCE_DIGITS: usize = 8;

/// HTML's named references for the characters an API key is made of (and the few that
/// browsers also read without the `;`).
const NAMED: [(&str, char); 36] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("sol", '/'),
    ("bsol", '\\'),
    ("colon", ':'),
    ("semi", ';'),
    ("equals", '='),
    ("plus", '+'),
    ("minus", '\u{2212}'),
    ("lowbar", '_'),
    ("UnderBar", '_'),
    ("period", '.'),
    ("comma", ','),
    ("excl", '!'),
    ("quest", '?'),
    ("num", '#'),
    ("dollar", '$'),
    ("percnt", '%'),
    ("ast", '*'),
    ("midast", '*'),
    ("lpar", '('),
    ("rpar", ')'),
    ("lsqb", '['),
    ("rsqb", ']'),
    ("lcub", '{'),
    ("rcub", '}'),
    ("verbar", '|'),
    ("commat", '@'),
    ("grave", '`'),
    ("Hat", '^'),
    ("Tab", '\t'),
    ("NewLine", '\n'),
    ("nbsp", '\u{a0}'),
];

/// Named references browsers read without their `;`.
const LEGACY: [&str; 5] = ["amp", "lt", "gt", "quot", "nbsp"];

/// An HTML character reference at `p` (`&#115;`, `&#x73;`, `&sol;`, `&amp` …): its character
/// and where it ends.
fn html_reference(text: &[u8], p: usize) -> Option<(char, usize)> {
    if text.get(p) != Some(&b'&') {
        return None;
    }
    let semicolon = |end: usize| if text.get(end) == Some(&b';') { end + 1 } else { end };
    if text.get(p + 1) == Some(&b'#') {
        let (value, end) = match text.get(p + 2) {
            Some(b'x' | b'X') => number(text, p + 3, REFERENCE_DIGITS, 16)?,
            _ => number(text, p + 2, REFERENCE_DIGITS, 10)?,
        };
        return Some((char::from_u32(value)?, semicolon(end)));
    }
    // The longest name that fits, as browsers read them.
    NAMED
        .iter()
        .filter(|(name, _)| text[p + 1..].starts_with(name.as_bytes()))
        .filter_map(|(name, c)| {
            let end = p + 1 + name.len();
            match text.get(end) {
                Some(b';') => Some((*c, end + 1)),
                _ if LEGACY.contains(name) => Some((*c, end)),
                _ => None,
            }
        })
        .max_by_key(|(_, end)| *end)
}

/// An escape at `p` that stands for one character, in any of the forms read here, beyond the
/// single-character JSON ones: `\uXXXX` (surrogate pairs joined), `\u{X…}`, `\xXX` (a code
/// point, as in JavaScript) and HTML references. Its character and where it ends; `Err` when the
/// text ends inside it.
fn escaped_char(text: &[u8], p: usize) -> Option<Result<(char, usize), ()>> {
    match (text[p], text.get(p + 1)) {
        (b'\\', Some(b'u')) if text.get(p + 2) == Some(&b'{') => {
            let (value, end) = number(text, p + 3, 6, 16)?;
            (text.get(end) == Some(&b'}')).then(|| char::from_u32(value).map(|c| Ok((c, end + 1))))?
        }
        (b'\\', Some(b'u')) => match unicode_unit(text, p) {
            Some(high @ 0xD800..=0xDBFF) => match unicode_unit(text, p + 6) {
                Some(low @ 0xDC00..=0xDFFF) => char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map(|c| Ok((c, p + 12))),
                // A high surrogate the end cut short of its pair.
                _ if text.len() - p < 12 && unfinished_or_empty(&text[p + 6..]) => Some(Err(())),
                _ => None,
            },
            Some(unit) => char::from_u32(unit).map(|c| Ok((c, p + 6))),
            None => None,
        },
        (b'\\', Some(b'x')) => {
            let (h, l) = (hex_value(*text.get(p + 2)?)?, hex_value(*text.get(p + 3)?)?);
            Some(Ok((char::from(h << 4 | l), p + 4)))
        }
        (b'&', _) => html_reference(text, p).map(Ok),
        _ => None,
    }
}

/// True when `rest` (the end of the text) is an escape cut short: `%`, `%X`, `\`, `\u`…`\uXXX`,
/// `\u{X…`, `\x`, `\xX`, `&`, `&#…`, `&#x…` or the beginning of a named reference.
fn unfinished_escape(rest: &[u8]) -> bool {
    let hex_digits = |d: &[u8], max: usize| d.len() <= max && d.iter().all(|&d| hex_value(d).is_some());
    match rest {
        [b'%'] | [b'\\'] | [b'&'] => true,
        [b'%', d] => hex_value(*d).is_some(),
        [b'\\', b'u', b'{', digits @ ..] => hex_digits(digits, 6),
        [b'\\', b'u', digits @ ..] => hex_digits(digits, 3),
        [b'\\', b'x', digits @ ..] => hex_digits(digits, 1),
        [b'&', b'#', b'x' | b'X', digits @ ..] => hex_digits(digits, REFERENCE_DIGITS),
        [b'&', b'#', digits @ ..] => digits.len() <= REFERENCE_DIGITS && digits.iter().all(u8::is_ascii_digit),
        [b'&', name @ ..] => NAMED.iter().any(|(n, _)| n.as_bytes().starts_with(name) && (n.len() > name.len() || !LEGACY.contains(n))),
        _ => false,
    }
}

fn unfinished_or_empty(rest: &[u8]) -> bool {
    rest.is_empty() || unfinished_escape(rest)
}

/// Reads the secret from `text[p..]` (secret bytes from `i` on), each byte as written, as
/// `%XX` in either case, a space as `+`, or an escape ([`escaped_char`], JSON's own); any mix,
/// at any position — so no earlier escape can hide a later one. `budget` bounds the search (the
/// secret holding `%`, `\` or `&` is what makes it branch).
fn spell(text: &[u8], p: usize, secret: &[u8], i: usize, budget: &mut u32) -> Option<Spelling> {
    if i == secret.len() {
        return Some(Spelling::Whole(p));
    }
    if p == text.len() {
        return (i > 0).then_some(Spelling::Tail(i));
    }
    if *budget == 0 {
        return None;
    }
    *budget -= 1;
    let want = secret[i];
    let rest = &text[p..];
    let mut best = None;
    let mut consider = |found: Option<Spelling>| match (found, &best) {
        (Some(Spelling::Whole(end)), _) => best = Some(Spelling::Whole(end)),
        (Some(Spelling::Tail(n)), None) => best = Some(Spelling::Tail(n)),
        (Some(Spelling::Tail(n)), Some(Spelling::Tail(m))) if n > *m => best = Some(Spelling::Tail(n)),
        _ => {}
    };
    if rest[0] == want || (want == b' ' && rest[0] == b'+') {
        consider(spell(text, p + 1, secret, i + 1, budget));
    }
    if rest[0] == b'%' && rest.len() >= 3 {
        if let (Some(h), Some(l)) = (hex_value(rest[1]), hex_value(rest[2])) {
            if h << 4 | l == want {
                consider(spell(text, p + 3, secret, i + 1, budget));
            }
        }
    }
    if rest[0] == b'\\' && rest.len() >= 2 {
        let simple = match rest[1] {
            b'"' | b'\\' | b'/' | b'\'' => Some(rest[1]),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if simple == Some(want) {
            consider(spell(text, p + 2, secret, i + 1, budget));
        }
        // `\xXX` read as a byte, as C and Python read it (JavaScript's code point is below).
        if rest[1] == b'x' && rest.len() >= 4 {
            if let (Some(h), Some(l)) = (hex_value(rest[2]), hex_value(rest[3])) {
                if h << 4 | l == want && want >= 0x80 {
                    consider(spell(text, p + 4, secret, i + 1, budget));
                }
            }
        }
    }
    if matches!(rest[0], b'\\' | b'&') {
        match escaped_char(text, p) {
            Some(Ok((c, end))) => {
                let mut buf = [0u8; 4];
                let bytes = c.encode_utf8(&mut buf).as_bytes();
                // The secret ending inside this character is not the secret.
                if bytes.len() <= secret.len() - i && bytes == &secret[i..i + bytes.len()] {
                    consider(spell(text, end, secret, i + bytes.len(), budget));
                }
            }
            Some(Err(())) => return Some(Spelling::Tail(i)),
            None => {}
        }
    }
    let cut_short = unfinished_escape(rest) && (rest.len() < 2 || rest[0] != b'%' || hex_value(rest[1]) == Some(want >> 4));
    if best.is_none() && cut_short {
        best = Some(Spelling::Tail(i));
    }
    best
}

/// Where the secret is spelled out in `text` (as written or escaped), and where the earliest
/// tail that could begin it starts (one that holds at least `min_bytes` whole bytes of it).
fn escapes(text: &[u8], secret: &[u8], min_bytes: usize) -> (Vec<Span>, Option<usize>) {
    let (mut found, mut tail) = (Vec::new(), None);
    for p in 0..text.len() {
        let c = text[p];
        if c != secret[0] && !matches!(c, b'%' | b'\\' | b'+' | b'&') {
            continue;
        }
        let mut budget = 64 * secret.len() as u32 + 64;
        match spell(text, p, secret, 0, &mut budget) {
            Some(Spelling::Whole(end)) => found.push(Span { start: p, end, form: Form::Bytes }),
            Some(Spelling::Tail(n)) if tail.is_none() && n >= min_bytes => tail = Some(p),
            _ => {}
        }
    }
    (found, tail)
}

/// Runs of hex digits decoded in pairs, starting `offset` (0 or 1) digits into each run.
fn hex(text: &[u8], offset: usize, m: &mut Matcher) {
    let mut run = 0;
    let mut i = 0;
    while i < text.len() {
        let Some(high) = hex_value(text[i]) else {
            run = 0;
            m.reset();
            i += 1;
            continue;
        };
        if run < offset {
            run += 1;
            i += 1;
            continue;
        }
        match text.get(i + 1).copied().and_then(hex_value) {
            Some(low) => {
                m.push(high << 4 | low, i, i + 2);
                run += 2;
                i += 2;
            }
            None if i + 1 == text.len() => return m.end(i, high, 4),
            None => {
                run += 1;
                i += 1;
            }
        }
    }
    m.end(text.len(), 0, 0);
}

/// How many bytes at `i` are a line break inside a run of base64 (MIME and PEM wrap it at 76
/// and 64 columns): CR and LF, or their JSON escapes `\r`, `\n` when the text is still JSON.
fn line_break(text: &[u8], i: usize) -> usize {
    match (text[i], text.get(i + 1)) {
        (b'\r' | b'\n', _) => 1,
        (b'\\', Some(b'r' | b'n')) => 2,
        _ => 0,
    }
}

/// Runs of base64 characters (either alphabet) decoded, starting `offset` (0 to 3) characters
/// into each run, so that data beginning anywhere in a run is read at its own alignment. Line
/// breaks do not end a run.
fn base64(text: &[u8], offset: usize, m: &mut Matcher) {
    let (mut run, mut acc, mut bits, mut byte_start) = (0usize, 0u32, 0u32, 0usize);
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        let Some(v) = base64_value(c) else {
            let skip = line_break(text, i);
            if skip == 0 {
                (run, acc, bits) = (0, 0, 0);
                m.reset();
            }
            i += skip.max(1);
            continue;
        };
        run += 1;
        if run > offset {
            if bits == 0 {
                byte_start = i;
            }
            acc = (acc << 6 | v as u32) & 0xfff;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                m.push((acc >> bits) as u8, byte_start, i + 1);
                byte_start = i;
            }
        }
        i += 1;
    }
    if run > offset && bits > 0 {
        m.end(byte_start, (acc & ((1 << bits) - 1)) as u8, bits);
    } else {
        m.end(text.len(), 0, 0);
    }
    // The padding after a match goes with it.
    for span in m.found.iter_mut() {
        while span.end < text.len() && text[span.end] == b'=' {
            span.end += 1;
        }
    }
}

/// The text read as UTF-16 from `offset` (0 or 1), each character given as its UTF-8 bytes.
fn utf16(text: &[u8], offset: usize, m: &mut Matcher) {
    let big_endian = m.form == Form::Utf16Be;
    let unit = |at: usize| if big_endian { u16::from_be_bytes([text[at], text[at + 1]]) } else { u16::from_le_bytes([text[at], text[at + 1]]) };
    let mut i = offset;
    while i + 1 < text.len() {
        let (c, len) = match unit(i) {
            high @ 0xD800..=0xDBFF if i + 3 < text.len() => match unit(i + 2) {
                low @ 0xDC00..=0xDFFF => (char::from_u32(0x10000 + ((high as u32 - 0xD800) << 10) + (low as u32 - 0xDC00)), 4),
                _ => (None, 2),
            },
            u => (char::from_u32(u as u32), 2),
        };
        match c {
            Some(c) => {
                let mut buf = [0u8; 4];
                for &b in c.encode_utf8(&mut buf).as_bytes() {
                    m.push(b, i, i + len);
                }
            }
            None => m.reset(),
        }
        i += len;
    }
    match (i < text.len(), m.form) {
        // Half a code unit is left: little-endian, it is the low byte (an ASCII character whole).
        (true, Form::Utf16Le) => m.end(i, text[i], 8),
        (true, _) => m.end(i, 0, 0),
        (false, _) => m.end(text.len(), 0, 0),
    }
}

/// Every reading of `text`: the secret's spans, and the earliest tail that could begin it.
pub(super) fn scan(text: &[u8], secret: &[u8]) -> (Vec<Span>, Option<usize>) {
    scan_tails(text, secret, 0)
}

/// [`scan`], counting only tails that hold at least `min_bytes` whole bytes of the secret (0:
/// also a trailing `%`, or a hex or base64 character carrying a few bits of its first byte).
pub(super) fn scan_tails(text: &[u8], secret: &[u8], min_bytes: usize) -> (Vec<Span>, Option<usize>) {
    type View = fn(&[u8], &mut Matcher);
    let dense: [(View, Form); 6] = [
        (|t, m| hex(t, 0, m), Form::Bytes),
        (|t, m| hex(t, 1, m), Form::Bytes),
        (|t, m| base64(t, 0, m), Form::Bytes),
        (|t, m| base64(t, 1, m), Form::Bytes),
        (|t, m| base64(t, 2, m), Form::Bytes),
        (|t, m| base64(t, 3, m), Form::Bytes),
    ];
    let wide: [(View, Form); 4] = [
        (|t, m| utf16(t, 0, m), Form::Utf16Le),
        (|t, m| utf16(t, 1, m), Form::Utf16Le),
        (|t, m| utf16(t, 0, m), Form::Utf16Be),
        (|t, m| utf16(t, 1, m), Form::Utf16Be),
    ];
    // UTF-16 puts a zero byte beside every ASCII character: without one (or a secret with no
    // ASCII), nothing there can be UTF-16 of the secret.
    let utf16_possible = text.contains(&0) || !secret.iter().any(u8::is_ascii);
    let (mut found, mut tail) = escapes(text, secret, min_bytes);
    for (view, form) in dense.iter().chain(wide.iter().filter(|_| utf16_possible)) {
        let mut m = Matcher::new(secret, *form);
        m.min_bytes = min_bytes;
        view(text, &mut m);
        found.append(&mut m.found);
        tail = match (tail, m.tail) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    // UTF-16 of ASCII reads the same in both byte orders one byte apart: keep the reading
    // aligned with the start of the text (where a byte-order mark, if any, is).
    let aligned: Vec<Span> = found.iter().filter(|s| s.form != Form::Bytes && s.start % 2 == 0).copied().collect();
    found.retain(|s| s.form == Form::Bytes || s.start % 2 == 0 || !aligned.iter().any(|a| a.start < s.end && s.start < a.end));
    (found, tail)
}

/// The most bytes one byte of the secret takes in any reading (`&#x0000073;`), so that a
/// window this many times the secret's length (and a little more) holds any occurrence whole.
pub(super) const WIDEST: usize = 3 + REFERENCE_DIGITS + 1;

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str, secret: &str) -> Vec<(usize, usize)> {
        scan(text.as_bytes(), secret.as_bytes()).0.iter().map(|s| (s.start, s.end)).collect()
    }

    #[test]
    fn html_references_in_every_form() {
        let secret = "sk/1";
        for text in ["&#115;&#107;&#47;&#49;", "&#x73;&#X6B;&sol;1", "s&#0000107;/&#x00031", "&#115&#107&#47&#49"] {
            assert_eq!(spans(&format!("<p>{text}</p>"), secret), vec![(3, 3 + text.len())], "{text}");
        }
        // Not references: too many digits, an unknown name, a name that needs its `;`.
        assert!(spans("&#000000115;k/1", secret).is_empty());
        assert!(spans("s&kk;/1", secret).is_empty());
        assert!(spans("sk&sol1", secret).is_empty());
        assert_eq!(spans("a&ampb", "a&b"), vec![(0, 6)]);
    }

    #[test]
    fn backslash_x_and_braced_unicode_escapes() {
        let secret = "sk-é";
        for text in [r"\x73\x6b\x2d\xe9", r"\u{73}k\u{2D}\u{0000e9}", r"sk-\xc3\xa9"] {
            assert_eq!(spans(text, secret), vec![(0, text.len())], "{text}");
        }
    }

    #[test]
    fn base64_wrapped_at_line_breaks() {
        let secret = "sk-live-0123456789abcdef";
        let encoded = crate::encoding::base64(format!("key={secret};").as_bytes(), crate::encoding::BASE64);
        for sep in ["\r\n", "\n", "\\n", "\\r\\n"] {
            let wrapped = format!("{}{sep}{}", &encoded[..10], &encoded[10..]);
            assert!(!spans(&wrapped, secret).is_empty(), "{sep:?}");
        }
        // Any other character between still ends the run.
        assert!(spans(&format!("{}.{}", &encoded[..10], &encoded[10..]), secret).is_empty());
    }

    #[test]
    fn utf16_in_either_order_and_alignment() {
        let secret = "sk-live-1";
        for big_endian in [false, true] {
            for lead in 0..2 {
                let mut bytes = vec![b'x'; lead];
                for u in format!("<{secret}>").encode_utf16() {
                    bytes.extend(if big_endian { u.to_be_bytes() } else { u.to_le_bytes() });
                }
                let (found, _) = scan(&bytes, secret.as_bytes());
                // At an odd start, the reading aligned with the text (the other order, a byte
                // earlier) is the one kept.
                let (from, to) = (lead + 2, lead + 2 + 2 * secret.len());
                assert!(
                    found.iter().any(|s| s.form != Form::Bytes && s.start.abs_diff(from) <= 1 && s.end.abs_diff(to) <= 1),
                    "{big_endian} {lead}: {found:?}"
                );
            }
        }
    }

    #[test]
    fn cut_short_escapes_are_tails() {
        for rest in ["&", "&#", "&#11", "&#x7", "&so", "&sol", "\\x", "\\x7", "\\u{7", "%", "%7", "\\u00"] {
            assert!(unfinished_escape(rest.as_bytes()), "{rest}");
        }
        for rest in ["&amp", "&zz", "\\x7g", "&#123456789"] {
            assert!(!unfinished_escape(rest.as_bytes()), "{rest}");
        }
    }
}
