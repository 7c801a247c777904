//! Scrubbing a secret out of anything the server stores or returns.
//!
//! Replacing the secret's literal text is not enough: a third party may echo it escaped or
//! encoded, and whoever reads the answer decodes it. So the text is read through several
//! *views* — as written, percent-decoded (any mix of `%XX` and plain bytes, either case, `+`
//! as a space or not), JSON-unescaped (every escape form), hex-decoded (either case, both
//! alignments) and base64-decoded (standard and URL-safe alphabets, every alignment) — and
//! wherever a view finds the secret's bytes, the source text they came from is replaced by the
//! placeholder. A JSON answer is parsed first and each string (value or key) is redacted after
//! its escapes are decoded, so the answer keeps its structure.
//!
//! What cannot be caught this way — an arbitrary transform of the secret (reversed, hashed,
//! encrypted, split across fields) — is why destinations and placeholder positions, not
//! redaction, are the real defence.

use crate::PLACEHOLDER;
#[cfg(feature = "json")]
use serde_json::{Map, Value};
use std::collections::VecDeque;

/// One decoded byte and the span of source text it came from.
#[derive(Clone, Copy, Debug)]
struct Piece {
    byte: u8,
    start: usize,
    end: usize,
}

/// Looks for the secret in one dense view's stream of decoded bytes (hex, base64).
struct Matcher<'a> {
    secret: &'a [u8],
    /// The last `secret.len()` pieces of the current run.
    window: VecDeque<Piece>,
    /// Source spans that decode to the secret.
    found: Vec<(usize, usize)>,
    /// Earliest start of a tail of the text that decodes to a beginning of the secret.
    tail: Option<usize>,
}

impl<'a> Matcher<'a> {
    fn new(secret: &'a [u8]) -> Matcher<'a> {
        Matcher { secret, window: VecDeque::with_capacity(secret.len() + 1), found: Vec::new(), tail: None }
    }

    fn push(&mut self, byte: u8, start: usize, end: usize) {
        self.window.push_back(Piece { byte, start, end });
        if self.window.len() > self.secret.len() {
            self.window.pop_front();
        }
        let m = self.secret.len();
        if self.window.len() == m && byte == self.secret[m - 1] && self.window.iter().zip(self.secret).all(|(p, s)| p.byte == *s) {
            self.found.push((self.window[0].start, end));
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
            for k in (1..=n.min(m - 1)).rev() {
                let whole = self.window.iter().skip(n - k).zip(self.secret).all(|(p, s)| p.byte == *s);
                if whole && partial(self.secret[k]) {
                    cut = Some(self.window[n - k].start);
                    break;
                }
            }
        }
        // Fewer than 4 bits of the first byte say nothing worth a cut (and would cut ordinary
        // text at random).
        if cut.is_none() && nbits >= 4 && partial(self.secret[0]) {
            cut = Some(rest);
        }
        if let Some(at) = cut {
            self.tail = Some(self.tail.map_or(at, |t| t.min(at)));
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
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
    /// The text ended after a beginning of the secret (or an escape the end cut short).
    Tail,
}

/// A `\uXXXX` escape's code unit at `at`.
fn unicode_unit(text: &[u8], at: usize) -> Option<u32> {
    if text.get(at) != Some(&b'\\') || text.get(at + 1) != Some(&b'u') {
        return None;
    }
    text.get(at + 2..at + 6)?.iter().try_fold(0u32, |acc, &d| Some(acc << 4 | hex_value(d)? as u32))
}

/// True when `rest` (the end of the text) is an escape cut short: `%`, `%X`, `\`, `\u`…`\uXXX`.
fn unfinished_escape(rest: &[u8]) -> bool {
    match rest {
        [b'%'] | [b'\\'] => true,
        [b'%', d] => hex_value(*d).is_some(),
        [b'\\', b'u', digits @ ..] => digits.len() <= 3 && digits.iter().all(|&d| hex_value(d).is_some()),
        _ => false,
    }
}

/// Reads the secret from `text[p..]` (secret bytes from `i` on), each byte as written, as
/// `%XX` in either case, a space as `+`, or a JSON escape (`\n`, `\"`, `\uXXXX`, surrogate
/// pairs); any mix, at any position — so no earlier escape can hide a later one. `budget`
/// bounds the search (the secret holding `%` or `\` is what makes it branch).
fn spell(text: &[u8], p: usize, secret: &[u8], i: usize, budget: &mut u32) -> Option<Spelling> {
    if i == secret.len() {
        return Some(Spelling::Whole(p));
    }
    if p == text.len() {
        return (i > 0).then_some(Spelling::Tail);
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
        (Some(Spelling::Tail), None) => best = Some(Spelling::Tail),
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
            b'"' | b'\\' | b'/' => Some(rest[1]),
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
        let decoded = match unicode_unit(text, p) {
            Some(high @ 0xD800..=0xDBFF) => match unicode_unit(text, p + 6) {
                Some(low @ 0xDC00..=0xDFFF) => char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map(|c| (c, 12)),
                // A high surrogate the end cut short of its pair.
                _ if text.len() - p < 12 && unfinished_or_empty(&text[p + 6..]) => return Some(Spelling::Tail),
                _ => None,
            },
            Some(unit) => char::from_u32(unit).map(|c| (c, 6)),
            None => None,
        };
        if let Some((c, len)) = decoded {
            let mut buf = [0u8; 4];
            let bytes = c.encode_utf8(&mut buf).as_bytes();
            let n = bytes.len().min(secret.len() - i);
            if bytes[..n] == secret[i..i + n] {
                if n < bytes.len() {
                    // The secret ends inside this character: not the secret.
                } else {
                    consider(spell(text, p + len, secret, i + n, budget));
                }
            }
        }
    }
    let cut_short = unfinished_escape(rest) && (rest.len() < 2 || rest[0] != b'%' || hex_value(rest[1]) == Some(want >> 4));
    if best.is_none() && cut_short {
        best = Some(Spelling::Tail);
    }
    best
}

fn unfinished_or_empty(rest: &[u8]) -> bool {
    rest.is_empty() || unfinished_escape(rest)
}

/// Where the secret is spelled out in `text` (as written or escaped), and where the earliest
/// tail that could begin it starts.
fn escapes(text: &[u8], secret: &[u8]) -> (Vec<(usize, usize)>, Option<usize>) {
    let (mut found, mut tail) = (Vec::new(), None);
    for p in 0..text.len() {
        let c = text[p];
        if c != secret[0] && c != b'%' && c != b'\\' && c != b'+' {
            continue;
        }
        let mut budget = 64 * secret.len() as u32 + 64;
        match spell(text, p, secret, 0, &mut budget) {
            Some(Spelling::Whole(end)) => found.push((p, end)),
            Some(Spelling::Tail) if tail.is_none() => tail = Some(p),
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

/// Runs of base64 characters (either alphabet) decoded, starting `offset` (0 to 3) characters
/// into each run, so that data beginning anywhere in a run is read at its own alignment.
fn base64(text: &[u8], offset: usize, m: &mut Matcher) {
    let (mut run, mut acc, mut bits, mut byte_start) = (0usize, 0u32, 0u32, 0usize);
    for (i, &c) in text.iter().enumerate() {
        let Some(v) = base64_value(c) else {
            (run, acc, bits) = (0, 0, 0);
            m.reset();
            continue;
        };
        run += 1;
        if run <= offset {
            continue;
        }
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
    if run > offset && bits > 0 {
        m.end(byte_start, (acc & ((1 << bits) - 1)) as u8, bits);
    } else {
        m.end(text.len(), 0, 0);
    }
    // The padding after a match goes with it.
    for span in m.found.iter_mut() {
        while span.1 < text.len() && text[span.1] == b'=' {
            span.1 += 1;
        }
    }
}

/// Every reading of `text`: the secret's spans, and the earliest tail that could begin it.
fn scan(text: &[u8], secret: &[u8]) -> (Vec<(usize, usize)>, Option<usize>) {
    type View = fn(&[u8], &mut Matcher);
    let views: [View; 6] =
        [|t, m| hex(t, 0, m), |t, m| hex(t, 1, m), |t, m| base64(t, 0, m), |t, m| base64(t, 1, m), |t, m| base64(t, 2, m), |t, m| base64(t, 3, m)];
    let (mut found, mut tail) = escapes(text, secret);
    for view in views {
        let mut m = Matcher::new(secret);
        view(text, &mut m);
        found.append(&mut m.found);
        tail = match (tail, m.tail) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    (found, tail)
}

/// Replaces `spans` (sorted or not, possibly overlapping) of `text` with the placeholder.
fn replace_spans(text: &str, mut spans: Vec<(usize, usize)>) -> String {
    spans.sort_unstable();
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in spans {
        if end <= at {
            continue;
        }
        if start >= at {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(PLACEHOLDER.as_bytes());
        }
        at = end;
    }
    out.extend_from_slice(&bytes[at..]);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Replaces every occurrence of `secret` in `text` — as written or as any view decodes it —
/// by the placeholder.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    let mut out = text.to_owned();
    // A replacement can only join text that was apart; a few passes reach the fixpoint.
    for _ in 0..4 {
        let (spans, _) = scan(out.as_bytes(), secret.as_bytes());
        if spans.is_empty() {
            break;
        }
        out = replace_spans(&out, spans);
    }
    out
}

/// Redacts every string of a JSON value, keys included, after its escapes are decoded.
#[cfg(feature = "json")]
pub fn redact_json(value: &mut Value, secret: &str) {
    match value {
        Value::String(s) => *s = redact(s, secret),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, secret)),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            *map = entries
                .into_iter()
                .map(|(k, mut v)| {
                    redact_json(&mut v, secret);
                    (redact(&k, secret), v)
                })
                .collect::<Map<String, Value>>();
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A third party's answer as text, redacted: a JSON answer parsed (and kept as JSON), any
/// other text as text.
#[cfg(feature = "json")]
pub fn redact_body(text: &str, secret: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            redact_json(&mut value, secret);
            value
        }
        Err(_) => Value::String(redact(text, secret)),
    }
}

/// How many bytes past a cut must be read so that an occurrence straddling it is still seen
/// whole (the longest encoding is `\u00XX` per byte).
pub fn lookahead(secret: &str) -> usize {
    6 * secret.len() + 16
}

/// `text` redacted, then cut to at most `max_bytes`, then without any tail that could be the
/// beginning of the secret in any view (nor an escape left unfinished by the cut).
pub fn redact_truncated(text: &str, max_bytes: usize, secret: &str) -> String {
    let redacted = redact(text, secret);
    let end = releasable(&redacted, floor_char_boundary(&redacted, max_bytes), secret);
    redacted[..end].to_owned()
}

/// How much of redacted text `redacted[..end]` can be given out: up to `end`, less any tail
/// that could be the beginning of the secret in any view (or an escape the cut left unfinished).
fn releasable(redacted: &str, mut end: usize, secret: &str) -> usize {
    if secret.is_empty() {
        return end;
    }
    // Only the last few bytes can hold an encoded beginning of the secret.
    let reach = lookahead(secret) + 8;
    loop {
        let from = floor_char_boundary(redacted, end.saturating_sub(reach));
        let window = &redacted.as_bytes()[from..end];
        let (_, tail) = scan(window, secret.as_bytes());
        match tail {
            Some(t) => end = floor_char_boundary(redacted, from + t),
            None => break,
        }
        if end == 0 {
            break;
        }
    }
    end
}

/// Redacts an answer that arrives in pieces (a streamed answer), giving out each part as soon
/// as it is safe: whole characters only, every occurrence of the secret replaced — also one
/// split across pieces, in any view [`redact`] reads — and any tail that could begin the
/// secret held back until the next piece tells (at most [`lookahead`] bytes and a few more).
pub struct StreamRedactor {
    secret: String,
    /// The end of what was given out already: read again before what follows, so that the
    /// views see a run of encoded text (base64, hex) from where it began.
    context: String,
    /// What has arrived and was not given out: redacted text that could begin the secret, then
    /// the bytes of a character not yet complete.
    held: Vec<u8>,
}

impl StreamRedactor {
    pub fn new(secret: &str) -> StreamRedactor {
        StreamRedactor { secret: secret.to_owned(), context: String::new(), held: Vec::new() }
    }

    /// Takes the next piece of the answer; returns the text that can be given out now (maybe
    /// none).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.held.extend_from_slice(bytes);
        let whole = complete_chars(&self.held);
        let arrived = String::from_utf8_lossy(&self.held[..whole]).into_owned();
        let incomplete = self.held[whole..].to_vec();
        let redacted = redact(&[self.context.as_str(), &arrived].concat(), &self.secret);
        let from = self.given_before(&redacted);
        let end = releasable(&redacted, redacted.len(), &self.secret).max(from);
        let out = redacted[from..end].to_owned();
        self.held = [&redacted.as_bytes()[end..], &incomplete].concat();
        // Keep as context the last `lookahead` bytes given out (whole characters).
        let given = &redacted[..end];
        self.context = given[ceil_char_boundary(given, given.len().saturating_sub(lookahead(&self.secret)))..].to_owned();
        out
    }

    /// Where new text starts in `redacted` (the context and what followed it, redacted
    /// together): after the context, or — when an occurrence reached back into the context (a
    /// base64 character given out carried a few bits of the secret's first byte, too few to
    /// tell anything) — where the placeholder begins, so that the occurrence is replaced whole.
    fn given_before(&self, redacted: &str) -> usize {
        let same = redacted.bytes().zip(self.context.bytes()).take_while(|(a, b)| a == b).count();
        floor_char_boundary(redacted, same)
    }

    /// The answer has ended: the rest, redacted (a tail that never became the secret is given
    /// out as it was; bytes that never became a character are replaced by U+FFFD).
    pub fn finish(self) -> String {
        let rest = String::from_utf8_lossy(&self.held);
        let redacted = redact(&[self.context.as_str(), &rest].concat(), &self.secret);
        redacted[self.given_before(&redacted)..].to_owned()
    }

    /// How many bytes are held back now.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// The length of `bytes` without an incomplete UTF-8 character at its end (invalid bytes
/// count as complete: they are replaced, not waited for).
fn complete_chars(bytes: &[u8]) -> usize {
    // A character is at most 4 bytes: look at the last 3 for the start of an unfinished one.
    for back in 1..=bytes.len().min(3) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: its lead is further back
        }
        let width = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if width > back { bytes.len() - back } else { bytes.len() };
    }
    bytes.len()
}

fn ceil_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::{base64 as b64, percent_encode, BASE64, BASE64_URL};

    const SECRET: &str = "sk-live-Abc123/xyz";

    #[test]
    fn a_stream_holds_back_only_what_could_begin_the_secret() {
        let mut stream = StreamRedactor::new(SECRET);
        assert_eq!(stream.push(b"data: hello "), "data: hello ");
        // "sk-li" could be the secret's beginning: held until the next piece tells.
        assert_eq!(stream.push(b"your key is sk-li"), "your key is ");
        assert_eq!(stream.push(b"ve-Abc123/xyz, bye"), format!("{PLACEHOLDER}, bye"));
        assert_eq!(stream.push(b" sk-li"), " ");
        assert_eq!(stream.push(b"mit reached"), "sk-limit reached");
        // A character split across pieces waits for its last byte.
        let e = "é".as_bytes();
        assert_eq!(stream.push(&e[..1]), "");
        assert_eq!(stream.push(&e[1..]), "é");
        assert_eq!(stream.push(b" s"), " ");
        assert_eq!(stream.finish(), "s");
    }

    fn hex_of(s: &[u8]) -> String {
        s.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn removes_plain_percent_form_and_json_escaped_forms() {
        let secret = "sk-a/b\"c d";
        let text = format!("raw {secret} pct sk-a%2Fb%22c%20d form sk-a%2fb%22c+d json {}", serde_json::to_string(secret).unwrap());
        let out = redact(&text, secret);
        assert!(!out.contains("sk-a"), "{out}");
        assert_eq!(out.matches(PLACEHOLDER).count(), 4);
    }

    #[test]
    fn json_escapes_of_every_or_one_character_are_decoded() {
        let every: String = SECRET.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let one = SECRET.replacen('s', "\\u0073", 1);
        let upper: String = SECRET.chars().map(|c| format!("\\u{:04X}", c as u32)).collect();
        for text in [format!("{{\"v\":\"{every}\"}}"), format!("{{\"v\":\"{one}\"}}"), format!("text {upper} end")] {
            let out = redact(&text, SECRET);
            assert!(!out.contains("\\u0073\\u006b") && !out.contains("sk-live") && !out.contains("u006B"), "{out}");
            let body = redact_body(&text, SECRET);
            assert!(!body.to_string().contains("sk-live"), "{body}");
        }
        let body = redact_body(&format!("{{\"v\":\"{every}\",\"n\":[1,{{\"{one}\":true}}]}}"), SECRET);
        assert_eq!(body, serde_json::json!({"v": PLACEHOLDER, "n": [1, {PLACEHOLDER: true}]}));
    }

    #[test]
    fn surrogate_pairs_are_joined() {
        let secret = "key-😀-x";
        let escaped = "key-\\ud83d\\ude00-x";
        clean_of(&redact(&format!("a {escaped} b"), secret), secret);
    }

    fn clean_of(out: &str, secret: &str) {
        assert!(!out.contains(secret) && out.contains(PLACEHOLDER), "{out}");
    }

    #[test]
    fn percent_encoding_of_every_byte_in_either_case_and_mixed() {
        let every_upper: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        let every_lower: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
        let mixed: String = SECRET.bytes().enumerate().map(|(i, b)| if i % 2 == 0 { format!("%{b:02x}") } else { (b as char).to_string() }).collect();
        for text in [every_upper, every_lower, mixed, percent_encode(SECRET)] {
            let out = redact(&format!("q={text}&x=1"), SECRET);
            assert_eq!(out, format!("q={PLACEHOLDER}&x=1"));
        }
    }

    #[test]
    fn hex_in_either_case_and_any_alignment() {
        let lower = hex_of(SECRET.as_bytes());
        for text in [lower.clone(), lower.to_uppercase(), format!("0{lower}"), format!("ab{lower}cd")] {
            let out = redact(&format!("hex: {text}"), SECRET);
            assert!(out.contains(PLACEHOLDER) && !out.to_lowercase().contains(&lower), "{out}");
        }
    }

    #[test]
    fn base64_at_any_alignment_in_both_alphabets() {
        for prefix in ["", "u", "us", "user:", "a much longer prefix of bytes:"] {
            for alphabet in [BASE64, BASE64_URL] {
                let encoded = b64(format!("{prefix}{SECRET}tail").as_bytes(), alphabet);
                let out = redact(&format!("Authorization: Basic {encoded}"), SECRET);
                let decoded = crate::encoding::base64_decode(out.rsplit(' ').next().unwrap_or("")).unwrap_or_default();
                assert!(out.contains(PLACEHOLDER), "{prefix:?}: {out}");
                assert!(!String::from_utf8_lossy(&decoded).contains("sk-live"), "{prefix:?}: {out}");
                // Nothing of the secret's encoding is left beside the placeholder.
                for part in out.split(PLACEHOLDER) {
                    let bytes = crate::encoding::base64_decode(part.trim_start_matches("Authorization: Basic ")).unwrap_or_default();
                    assert!(!String::from_utf8_lossy(&bytes).contains("live"), "{prefix:?}: {out}");
                }
            }
        }
    }

    #[test]
    fn secrets_ending_in_an_escape_character_are_found() {
        // Found by the property test: a trailing `%` or `\` was read as an unfinished escape.
        for secret in ["0a   A %", "key-with\\", "%41%"] {
            assert_eq!(redact(secret, secret), PLACEHOLDER, "{secret}");
            assert_eq!(redact(&format!("x{secret}y"), secret), format!("x{PLACEHOLDER}y"), "{secret}");
        }
    }

    #[test]
    fn leaves_text_without_the_secret_alone() {
        assert_eq!(redact("hello", "sk-123"), "hello");
        assert_eq!(redact("hello", ""), "hello");
        let json = r#"{"a":"\u00e9t\u00e9","b":[1,2.5,null]}"#;
        assert_eq!(redact_body(json, SECRET), serde_json::from_str::<Value>(json).unwrap());
    }

    #[test]
    fn a_cut_never_ends_with_a_beginning_of_the_secret() {
        let max = 40;
        for filler in 20..=60 {
            let text = format!("{}{SECRET} and more after it", "x".repeat(filler));
            let out = redact_truncated(&text, max, SECRET);
            assert!(out.len() <= max);
            for k in 1..SECRET.len() {
                assert!(!out.ends_with(&SECRET[..k]), "filler {filler}: {out}");
            }
            assert!(!out.contains(SECRET));
        }
    }

    #[test]
    fn a_cut_drops_encoded_beginnings_and_unfinished_escapes() {
        let pct: String = SECRET.bytes().map(|b| format!("%{b:02X}")).collect();
        let json: String = SECRET.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
        let hex = hex_of(SECRET.as_bytes());
        let b64 = b64(SECRET.as_bytes(), BASE64);
        for encoded in [pct, json, hex, b64] {
            for cut in 1..encoded.len() {
                // The text read ends inside the encoded secret.
                let text = format!("ok {}", &encoded[..cut]);
                let out = redact_truncated(&text, text.len(), SECRET);
                assert_eq!(out, "ok ", "{encoded} cut after {cut}");
            }
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::encoding::{base64 as b64, BASE64, BASE64_URL};
    use proptest::prelude::*;

    /// The secret written in encoding `which`; `mix` picks the spelling of each byte where an
    /// encoding allows several, `pad` the bytes around it for base64. Returns the encoded text
    /// the part of it that is the secret's alone (what must not survive), and where in the
    /// encoded text the first character carrying any bit of the secret is.
    fn encode(secret: &str, which: u8, mix: u64, pad: usize) -> (String, String, usize) {
        let bit = |i: usize| mix >> (i % 64) & 1 == 1;
        let units = |s: &str, upper: bool| -> String {
            s.encode_utf16().map(|u| if upper { format!("\\u{u:04X}") } else { format!("\\u{u:04x}") }).collect()
        };
        let text = match which {
            0 => secret.to_owned(),
            1 => secret.bytes().map(|b| format!("%{b:02X}")).collect(),
            2 => secret.bytes().map(|b| format!("%{b:02x}")).collect(),
            3 => secret
                .bytes()
                .enumerate()
                .map(|(i, b)| match (bit(i), bit(i + 17), b.is_ascii()) {
                    (true, true, _) => format!("%{b:02X}"),
                    (true, false, _) => format!("%{b:02x}"),
                    _ => String::from_utf8_lossy(&[b]).into_owned(),
                })
                .collect::<String>(),
            4 => crate::encoding::percent_encode(secret).replace("%20", "+"),
            5 => units(secret, bit(0)),
            6 => secret.chars().enumerate().map(|(i, c)| if bit(i) { units(&c.to_string(), bit(i + 9)) } else { c.to_string() }).collect(),
            7 => {
                let quoted = serde_json::to_string(secret).unwrap();
                quoted[1..quoted.len() - 1].to_owned()
            }
            8 => secret.bytes().map(|b| format!("{b:02x}")).collect(),
            9 => secret.bytes().map(|b| format!("{b:02X}")).collect(),
            _ => {
                let mut bytes = vec![b'u'; pad % 5];
                bytes.extend_from_slice(secret.as_bytes());
                bytes.extend_from_slice(&b"tail!"[..pad % 3]);
                let alphabet = if which == 10 { BASE64 } else { BASE64_URL };
                let encoded = b64(&bytes, alphabet);
                let (from, to) = ((8 * (pad % 5)).div_ceil(6), 8 * (pad % 5 + secret.len()) / 6);
                // The first character with 4 bits or more of the secret (2 bits tell nothing).
                let first = 8 * (pad % 5) / 6 + usize::from(8 * (pad % 5) % 6 == 4);
                return (encoded.clone(), encoded[from..to].to_owned(), first);
            }
        };
        // A mixed spelling of a multi-byte character is not UTF-8: fall back to the plain form.
        let text = if text.contains('\u{FFFD}') { secret.to_owned() } else { text };
        (text.clone(), text, 0)
    }

    fn secret() -> impl Strategy<Value = String> {
        "[ -~]{8,24}(é|😀|)"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::test_cases(2000)))]

        /// A secret in any listed encoding, anywhere in any text, does not survive redaction.
        #[test]
        fn no_encoding_survives(secret in secret(), which in 0u8..12, mix in any::<u64>(), pad in 0usize..30,
                                prefix in "[ -~]{0,12}", suffix in "[ -~]{0,12}") {
            let (encoded, alone, _) = encode(&secret, which, mix, pad);
            let out = redact(&format!("{prefix}{encoded}{suffix}"), &secret);
            prop_assert!(!out.contains(&alone), "{which}: {encoded} in {out}");
            prop_assert!(!out.contains(&secret), "{which}: {out}");
        }

        /// Streamed in pieces cut anywhere (inside a character, inside the secret's encoding),
        /// the pieces given out never hold the secret or a piece of it that a later piece
        /// completes, little is held back at any time, and an answer without the secret comes
        /// out exactly as it went in.
        #[test]
        fn no_piece_of_a_stream_leaks(secret in secret(), which in 0u8..12, mix in any::<u64>(), pad in 0usize..30,
                                      prefix in "[ -~]{0,40}(é|😀|)", suffix in "[ -~]{0,40}", cuts in proptest::collection::vec(0usize..400, 0..12),
                                      with_secret in any::<bool>()) {
            let (encoded, alone, _) = encode(&secret, which, mix, pad);
            let text = if with_secret { format!("{prefix}{encoded}{suffix}") } else { format!("{prefix}{suffix}") };
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (text.len() + 1)).collect();
            cuts.sort_unstable();
            let mut stream = StreamRedactor::new(&secret);
            let (mut given, mut at) = (String::new(), 0);
            for cut in cuts.into_iter().chain([text.len()]) {
                given.push_str(&stream.push(&text.as_bytes()[at..cut]));
                at = cut;
                prop_assert!(stream.held() <= lookahead(&secret) + 8 + 3, "held {} bytes", stream.held());
            }
            given.push_str(&stream.finish());
            prop_assert!(!given.contains(&alone) && !given.contains(&secret), "{which}: {given}");
            if !with_secret {
                prop_assert_eq!(&given, &redact(&text, &secret));
            }
        }

        /// Cut at a limit anywhere around the secret, in any listed encoding, the kept text holds
        /// no piece of the secret at its end and never the whole.
        #[test]
        fn no_cut_leaves_a_piece(secret in secret(), which in 0u8..12, mix in any::<u64>(), pad in 0usize..30,
                                 filler in "[a-z0-9 ]{0,4}", shift in 0usize..80, extra in 0usize..200) {
            let (encoded, alone, secret_from) = encode(&secret, which, mix, pad);
            let max = 64;
            let filler = filler.repeat(40);
            let lead = &filler[..(max + shift).saturating_sub(40).min(filler.len())];
            let text = format!("{lead}{encoded} and then the rest of the answer");
            // However much was read past the limit (the server reads `lookahead` more).
            let read = &text[..floor_char_boundary(&text, max + extra.min(lookahead(&secret)))];
            let out = redact_truncated(read, max, &secret);
            prop_assert!(out.len() <= max);
            prop_assert!(!out.contains(&alone) && !out.contains(&secret), "{which}: {out}");
            // After the filler, at most the encoding's own lead-in, then only the placeholder (or
            // a cut piece of it).
            let after = out.get(lead.len()..).unwrap_or("");
            let placeholder_only = |rest: &str| rest.is_empty() || rest.starts_with(PLACEHOLDER) || PLACEHOLDER.starts_with(rest);
            let ok = (0..=secret_from.min(after.len())).any(|j| after.starts_with(&encoded[..j]) && placeholder_only(&after[j..]));
            prop_assert!(ok, "{which}: {out}");
        }
    }
}
