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
use views::{scan, Form, Span};

#[cfg(feature = "json")]
mod events;
mod views;

#[cfg(feature = "json")]
pub use events::EventGuard;

/// The placeholder written the way an occurrence was.
fn placeholder_in(form: Form, out: &mut Vec<u8>) {
    match form {
        Form::Bytes => out.extend_from_slice(PLACEHOLDER.as_bytes()),
        Form::Utf16Le => PLACEHOLDER.bytes().for_each(|b| out.extend([b, 0])),
        Form::Utf16Be => PLACEHOLDER.bytes().for_each(|b| out.extend([0, b])),
    }
}

/// Replaces `spans` (sorted or not, possibly overlapping) of `bytes` with the placeholder.
fn replace_spans(bytes: &[u8], mut spans: Vec<Span>) -> Vec<u8> {
    spans.sort_unstable();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for span in spans {
        // A UTF-16 occurrence overlapping one replaced already is left to the next pass, so
        // the text keeps its alignment.
        if span.end <= at || (span.start < at && span.form != Form::Bytes) {
            continue;
        }
        if span.start >= at {
            out.extend_from_slice(&bytes[at..span.start]);
            placeholder_in(span.form, &mut out);
        }
        at = span.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Replaces every occurrence of the secret in `bytes`, in every reading, until none is left
/// (a replacement can only join what was apart; a few passes reach the fixpoint).
///
/// An answer that is bytes (an image, audio, text in another encoding) is redacted so: the
/// secret's bytes as they are, in UTF-16 (either order), and in every reading [`redact`] knows
/// (base64 and hex of the raw bytes included), each replaced by the placeholder in the same form.
pub fn redact_bytes(bytes: &[u8], secret: &str) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if secret.is_empty() {
        return out;
    }
    for _ in 0..4 {
        let (spans, _) = scan(&out, secret.as_bytes());
        if spans.is_empty() {
            break;
        }
        out = replace_spans(&out, spans);
    }
    out
}

/// Replaces every occurrence of `secret` in `text` — as written or as any view decodes it —
/// by the placeholder.
pub fn redact(text: &str, secret: &str) -> String {
    let out = redact_bytes(text.as_bytes(), secret);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`redact`], and for an event stream also what its deltas spell when joined
/// (`events::redact_joined`): the whole of a text answer as the server keeps it.
pub fn redact_text(text: &str, secret: &str) -> String {
    let redacted = redact(text, secret);
    #[cfg(feature = "json")]
    if let Some(joined) = events::redact_joined(&redacted, secret) {
        return joined;
    }
    redacted
}

/// [`redact_bytes`], then cut to at most `max_bytes` without a tail that could begin the secret.
pub fn redact_bytes_truncated(bytes: &[u8], max_bytes: usize, secret: &str) -> Vec<u8> {
    let mut redacted = redact_bytes(bytes, secret);
    let end = releasable(&redacted, max_bytes.min(redacted.len()), secret, |_, i| i);
    redacted.truncate(end);
    redacted
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

/// A character that can stand in a JSON number.
#[cfg(feature = "json")]
fn numeric(c: u8) -> bool {
    c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// Whether a JSON number (digits, `.`, `e`, `+`, `-`) could spell the secret in some reading:
/// as written (`+` may be a space), in hex, or in base64 (either alphabet, any alignment). The
/// escape readings need `%`, `\` or `&`, which no number has.
#[cfg(feature = "json")]
fn numbers_can_spell(secret: &[u8]) -> bool {
    if secret.iter().all(|&c| numeric(c) || c == b' ') {
        return true;
    }
    let digit = |nibble: u8| nibble <= 9 || nibble == 0xe;
    if secret.iter().all(|&b| digit(b >> 4) && digit(b & 15)) {
        return true;
    }
    // Base64 characters that are numeric: `0`-`9`, `e`, `E`, and `+`/`-` (62 in either
    // alphabet). Only the characters carrying nothing but the secret's bits count.
    let numeric_sextet = |v: u32| matches!(v, 4 | 30 | 52..=62);
    (0..3usize).any(|lead| {
        let bits = 8 * (lead + secret.len());
        let (from, to) = ((8 * lead).div_ceil(6), bits / 6);
        (from..to).all(|k| {
            let sextet = (0..6).fold(0u32, |acc, b| {
                let bit = 6 * k + b;
                let byte = if bit / 8 < lead { 0 } else { secret[bit / 8 - lead] };
                acc << 1 | u32::from(byte >> (7 - bit % 8) & 1)
            });
            numeric_sextet(sextet)
        })
    })
}

/// The JSON text with each number that spells the secret written as a string instead, so that
/// parsing keeps its characters (a number would lose them, or be kept unredacted); `None` when
/// no number does.
#[cfg(feature = "json")]
fn quote_numbers(text: &str, secret: &str) -> Option<String> {
    if secret.is_empty() || !numbers_can_spell(secret.as_bytes()) {
        return None;
    }
    let b = text.as_bytes();
    let (mut out, mut at, mut i, mut in_string) = (String::new(), 0, 0, false);
    while i < b.len() {
        let c = b[i];
        if in_string {
            i += if c == b'\\' { 2 } else { 1 };
            in_string = c != b'"';
            continue;
        }
        if c == b'-' || c.is_ascii_digit() {
            let start = i;
            while i < b.len() && numeric(b[i]) {
                i += 1;
            }
            let number = &text[start..i];
            if number.len() >= secret.len() && redact(number, secret) != number {
                out.push_str(&text[at..start]);
                out.push('"');
                out.push_str(number);
                out.push('"');
                at = i;
            }
            continue;
        }
        in_string = c == b'"';
        i += 1;
    }
    (at > 0).then(|| out + &text[at..])
}

/// A third party's answer as text, redacted: a JSON answer parsed (and kept as JSON; a number
/// that spells the secret becomes a string, redacted), any other text as text
/// ([`redact_text`]).
#[cfg(feature = "json")]
pub fn redact_body(text: &str, secret: &str) -> Value {
    let quoted = quote_numbers(text, secret);
    match serde_json::from_str::<Value>(quoted.as_deref().unwrap_or(text)) {
        Ok(mut value) => {
            redact_json(&mut value, secret);
            value
        }
        Err(_) => Value::String(redact_text(text, secret)),
    }
}

/// How many bytes past a cut must be read so that an occurrence straddling it is still seen
/// whole (the longest reading of one byte is a numeric character reference, `&#x0000073;`).
pub fn lookahead(secret: &str) -> usize {
    views::WIDEST * secret.len() + 16
}

/// `text` redacted, then cut to at most `max_bytes`, then without any tail that could be the
/// beginning of the secret in any view (nor an escape left unfinished by the cut).
pub fn redact_truncated(text: &str, max_bytes: usize, secret: &str) -> String {
    let redacted = redact_text(text, secret);
    let end = releasable(redacted.as_bytes(), floor_char_boundary(&redacted, max_bytes), secret, floor_byte_boundary);
    redacted[..end].to_owned()
}

/// How much of redacted `redacted[..end]` can be given out: up to `end`, less any tail that
/// could be the beginning of the secret in any view (or an escape the cut left unfinished);
/// `boundary` moves a position back to where a cut may be (a character's start, for text).
fn releasable(redacted: &[u8], mut end: usize, secret: &str, boundary: fn(&[u8], usize) -> usize) -> usize {
    if secret.is_empty() {
        return end;
    }
    // Only the last few bytes can hold an encoded beginning of the secret.
    let reach = lookahead(secret) + 8;
    loop {
        let from = boundary(redacted, end.saturating_sub(reach));
        let (_, tail) = scan(&redacted[from..end], secret.as_bytes());
        match tail {
            Some(t) => end = boundary(redacted, from + t),
            None => break,
        }
        if end == 0 {
            break;
        }
    }
    end
}

fn floor_byte_boundary(bytes: &[u8], mut i: usize) -> usize {
    while i > 0 && i < bytes.len() && bytes[i] & 0xC0 == 0x80 {
        i -= 1;
    }
    i
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
    /// For an event stream: what its deltas spell when joined ([`EventGuard`]).
    #[cfg(feature = "json")]
    events: Option<EventGuard>,
}

impl StreamRedactor {
    pub fn new(secret: &str) -> StreamRedactor {
        StreamRedactor {
            secret: secret.to_owned(),
            context: String::new(),
            held: Vec::new(),
            #[cfg(feature = "json")]
            events: None,
        }
    }

    /// For an answer that is an event stream (`text/event-stream`): the deltas the page joins
    /// are read joined too.
    #[cfg(feature = "json")]
    pub fn for_events(secret: &str) -> StreamRedactor {
        StreamRedactor { events: Some(EventGuard::new(secret, lookahead(secret))), ..StreamRedactor::new(secret) }
    }

    /// Passes text that the views let out through the event guard, if there is one.
    fn guarded(&mut self, text: String) -> String {
        #[cfg(feature = "json")]
        if let Some(guard) = self.events.as_mut() {
            return guard.push(&text);
        }
        text
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
        let end = releasable(redacted.as_bytes(), redacted.len(), &self.secret, floor_byte_boundary).max(from);
        let out = redacted[from..end].to_owned();
        self.held = [&redacted.as_bytes()[end..], &incomplete].concat();
        // Keep as context the last `lookahead` bytes given out (whole characters).
        let given = &redacted[..end];
        self.context = given[ceil_char_boundary(given, given.len().saturating_sub(lookahead(&self.secret)))..].to_owned();
        self.guarded(out)
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
    #[cfg_attr(not(feature = "json"), allow(unused_mut))]
    pub fn finish(mut self) -> String {
        let rest = String::from_utf8_lossy(&self.held);
        let redacted = redact(&[self.context.as_str(), &rest].concat(), &self.secret);
        let rest = redacted[self.given_before(&redacted)..].to_owned();
        #[cfg(feature = "json")]
        if let Some(mut guard) = self.events.take() {
            let out = guard.push(&rest);
            return out + &guard.finish();
        }
        rest
    }

    /// How many bytes are held back now.
    pub fn held(&self) -> usize {
        #[cfg(feature = "json")]
        if let Some(guard) = &self.events {
            return self.held.len() + guard.held();
        }
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

pub(super) fn ceil_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

pub(super) fn floor_char_boundary(s: &str, at: usize) -> usize {
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

    /// A request that names no secret has none to redact: every reader gives its input back as
    /// it came (and ends).
    #[test]
    fn no_secret_changes_nothing() {
        let text = "data: {\"a\":\"$CLIENT_SECRET c2stbGl2ZQ== %41\"}\n\n";
        assert_eq!(redact(text, ""), text);
        assert_eq!(redact_text(text, ""), text);
        assert_eq!(redact_bytes(text.as_bytes(), ""), text.as_bytes());
        assert_eq!(redact_truncated(text, 10, ""), &text[..10]);
        #[cfg(feature = "json")]
        assert_eq!(redact_body(text, ""), Value::String(text.to_owned()));
        #[allow(unused_mut)]
        let mut streams = vec![StreamRedactor::new("")];
        #[cfg(feature = "json")]
        streams.push(StreamRedactor::for_events(""));
        for mut stream in streams {
            let mut out = stream.push(&text.as_bytes()[..7]);
            out.push_str(&stream.push(&text.as_bytes()[7..]));
            out.push_str(&stream.finish());
            assert_eq!(out, text);
        }
    }

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
    fn a_number_that_spells_the_secret_becomes_a_redacted_string() {
        let secret = "4242424242424242";
        let body = redact_body(&format!("{{\"card\":{secret},\"n\":[1,2.5,-3e2],\"x\":\"a\\\"{secret}\"}}"), secret);
        assert_eq!(body, serde_json::json!({"card": PLACEHOLDER, "n": [1, 2.5, -300.0], "x": format!("a\"{PLACEHOLDER}")}));
        assert_eq!(redact_body(secret, secret), Value::String(PLACEHOLDER.into()));
        assert_eq!(redact_body(&format!("9{secret}0"), secret), Value::String(format!("9{PLACEHOLDER}0")));
        // Longer than a float keeps: its digits are kept to be redacted, not rounded.
        let long = "12345678901234567890123";
        assert_eq!(redact_body(&format!("[{long}]"), long), serde_json::json!([PLACEHOLDER]));
        // A secret no number can spell leaves numbers as they are.
        assert!(!numbers_can_spell(SECRET.as_bytes()) && numbers_can_spell(b"1.5e+3") && numbers_can_spell(b"\x12\x34"));
        // Bytes whose base64 is digits (`1234`): a number can carry them too.
        assert!(numbers_can_spell(&[0xd7, 0x6d, 0xf8]) && !numbers_can_spell(&[0xd7, 0x6d, 0xf9, 0xff]));
    }

    #[test]
    fn bytes_are_redacted_as_bytes_in_each_form() {
        let mut utf16le = vec![0xff, 0xfe];
        let mut utf16be = vec![0xfe, 0xff];
        for u in format!("key {SECRET}.").encode_utf16() {
            utf16le.extend(u.to_le_bytes());
            utf16be.extend(u.to_be_bytes());
        }
        let raw = [b"\x89PNG\x00\xff".as_slice(), SECRET.as_bytes(), b"\xfe\x00"].concat();
        let latin1 = [b"caf\xe9 ".as_slice(), SECRET.as_bytes()].concat();
        let b64 = [b"\xff\x00".as_slice(), b64(SECRET.as_bytes(), BASE64).as_bytes()].concat();
        for bytes in [raw, latin1, b64, utf16le.clone(), utf16be.clone()] {
            let out = redact_bytes(&bytes, SECRET);
            assert!(!contains(&out, SECRET.as_bytes()) && out.len() < bytes.len() + PLACEHOLDER.len() * 2, "{out:?}");
            assert!(std::str::from_utf8(&bytes).is_err() || bytes.contains(&0));
        }
        // UTF-16 gets the placeholder in UTF-16, so the text stays readable.
        let out = redact_bytes(&utf16le, SECRET);
        let units: Vec<u16> = out[2..].chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(String::from_utf16(&units).unwrap(), format!("key {PLACEHOLDER}."));
        // A cut never leaves a beginning of the secret.
        let cut = redact_bytes_truncated(&[b"\xff\xfe".as_slice(), &SECRET.as_bytes()[..9]].concat(), 8, SECRET);
        assert_eq!(cut, b"\xff\xfe");
        let cut = redact_bytes_truncated(&[b"\xff\xfe".as_slice(), SECRET.as_bytes()].concat(), 8, SECRET);
        assert_eq!(cut, [b"\xff\xfe".as_slice(), &PLACEHOLDER.as_bytes()[..6]].concat());
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn deltas_of_a_whole_event_stream_are_read_joined() {
        let event = |c: &str| format!("data: {}\n\n", serde_json::json!({"choices": [{"delta": {"content": c}}]}));
        let text: String = ["the key is sk-live-", "Abc1", "23/xyz", " ok"].iter().map(|c| event(c)).collect();
        let Value::String(out) = redact_body(&text, SECRET) else { panic!("text") };
        assert!(out.contains(PLACEHOLDER) && !out.contains("Abc1"), "{out}");
        let mut stream = StreamRedactor::for_events(SECRET);
        let mut given = String::new();
        for piece in text.as_bytes().chunks(7) {
            given.push_str(&stream.push(piece));
        }
        given.push_str(&stream.finish());
        assert_eq!(given, out);
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
            // HTML references, decimal or hex, with or without `;`, zero-padded or not.
            12 => secret
                .chars()
                .enumerate()
                .map(|(i, c)| (i, c, secret.chars().nth(i + 1).is_none_or(|n| n.is_ascii_alphanumeric() || n == ';')))
                .map(|(i, c, before_digit)| match (bit(i), bit(i + 5), bit(i + 11) || before_digit) {
                    (true, true, semi) => format!("&#x{:0w$x}{}", c as u32, if semi { ";" } else { "" }, w = if bit(i + 3) { 4 } else { 1 }),
                    (true, false, semi) => format!("&#{:0w$}{}", c as u32, if semi { ";" } else { "" }, w = if bit(i + 3) { 6 } else { 1 }),
                    _ => c.to_string(),
                })
                .collect(),
            // `\xXX` (a code point, as JavaScript reads it) and `\u{X}` for characters below U+0100.
            13 => secret
                .chars()
                .enumerate()
                .map(|(i, c)| match (c as u32 <= 0xff, bit(i)) {
                    (true, true) => format!("\\x{:02x}", c as u32),
                    _ if bit(i + 7) => format!("\\u{{{:x}}}", c as u32),
                    _ => c.to_string(),
                })
                .collect(),
            _ => {
                let mut bytes = vec![b'u'; pad % 5];
                bytes.extend_from_slice(secret.as_bytes());
                bytes.extend_from_slice(&b"tail!"[..pad % 3]);
                let alphabet = if which % 2 == 0 { BASE64 } else { BASE64_URL };
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
        fn no_encoding_survives(secret in secret(), which in 0u8..14, mix in any::<u64>(), pad in 0usize..30,
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
        fn no_piece_of_a_stream_leaks(secret in secret(), which in 0u8..14, mix in any::<u64>(), pad in 0usize..30,
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
        fn no_cut_leaves_a_piece(secret in secret(), which in 0u8..14, mix in any::<u64>(), pad in 0usize..30,
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
