//! A secret split across the deltas of a streamed answer. An LLM API streams its text as
//! server-sent events, each carrying the next few characters (OpenAI's chat
//! `choices[].delta.content`, its Responses API's `delta`, Anthropic's `delta.text`, Gemini's
//! `parts[].text`), and the page joins them: a secret spread over several events is whole
//! again on the page though no single event holds it. So the deltas of each channel are joined
//! and read as one text, and the events that carry an occurrence are rewritten.

use super::views::{scan, scan_tails, Span};
use super::{ceil_char_boundary, floor_char_boundary};
use crate::PLACEHOLDER;
use serde_json::Value;
use std::collections::HashMap;

/// Where one event carries a delta: the channel it extends (deltas of one channel are joined)
/// and the JSON pointer of its text within the event's data.
struct DeltaAt {
    channel: String,
    pointer: String,
}

/// The deltas an event's data carries, in the shapes of the APIs named above.
fn deltas(data: &Value) -> Vec<DeltaAt> {
    let mut out = Vec::new();
    let mut at = |channel: String, pointer: String| {
        if data.pointer(&pointer).is_some_and(Value::is_string) {
            out.push(DeltaAt { channel, pointer });
        }
    };
    if let Some(choices) = data.get("choices").and_then(Value::as_array) {
        for (i, choice) in choices.iter().enumerate() {
            let n = choice.get("index").and_then(Value::as_u64).unwrap_or(i as u64);
            for field in ["content", "reasoning_content", "reasoning", "refusal"] {
                at(format!("choice/{n}/{field}"), format!("/choices/{i}/delta/{field}"));
            }
            at(format!("choice/{n}/text"), format!("/choices/{i}/text"));
            if let Some(calls) = choice.pointer("/delta/tool_calls").and_then(Value::as_array) {
                for (j, call) in calls.iter().enumerate() {
                    let k = call.get("index").and_then(Value::as_u64).unwrap_or(j as u64);
                    at(format!("choice/{n}/tool/{k}"), format!("/choices/{i}/delta/tool_calls/{j}/function/arguments"));
                }
            }
        }
    }
    if let Some(kind) = data.get("type").and_then(Value::as_str) {
        let index = |key: &str| data.get(key).and_then(Value::as_u64).unwrap_or(0);
        if kind == "content_block_delta" {
            for field in ["text", "partial_json", "thinking"] {
                at(format!("block/{}/{field}", index("index")), format!("/delta/{field}"));
            }
        } else if kind.ends_with(".delta") {
            at(format!("{kind}/{}/{}", index("output_index"), index("content_index")), "/delta".into());
        }
    }
    if let Some(candidates) = data.get("candidates").and_then(Value::as_array) {
        for (i, candidate) in candidates.iter().enumerate() {
            let parts = candidate.pointer("/content/parts").and_then(Value::as_array).map_or(0, Vec::len);
            for j in 0..parts {
                at(format!("candidate/{i}/{j}"), format!("/candidates/{i}/content/parts/{j}/text"));
            }
        }
    }
    out
}

/// One event of the stream: its text (the blank line that ends it included), and its data
/// parsed when it carries deltas.
struct Event {
    text: String,
    data: Option<(Value, Vec<DeltaAt>)>,
    /// A delta was rewritten: the text must be written again from `data`.
    changed: bool,
}

/// The lines of `text` with their line ends (CR, LF or CRLF).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let mut i = start;
        while i < bytes.len() && !matches!(bytes[i], b'\n' | b'\r') {
            i += 1;
        }
        if i < bytes.len() {
            i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
        }
        let line = &text[start..i];
        start = i;
        Some(line)
    })
}

fn content(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// The text cut into whole events (each ends with a blank line) and what follows the last.
fn split(text: &str) -> (Vec<&str>, &str) {
    let (mut events, mut start, mut at) = (Vec::new(), 0, 0);
    for line in lines(text) {
        at += line.len();
        let ended = line.ends_with(['\n', '\r']);
        if ended && content(line).is_empty() {
            events.push(&text[start..at]);
            start = at;
        }
    }
    (events, &text[start..])
}

impl Event {
    fn parse(text: &str) -> Event {
        let data: Vec<&str> = lines(text).filter_map(|l| content(l).strip_prefix("data:")).map(|d| d.strip_prefix(' ').unwrap_or(d)).collect();
        let data = (!data.is_empty())
            .then(|| serde_json::from_str::<Value>(&data.join("\n")).ok())
            .flatten()
            .map(|value| {
                let at = deltas(&value);
                (value, at)
            })
            .filter(|(_, at)| !at.is_empty());
        Event { text: text.to_owned(), data, changed: false }
    }

    /// The event as text: as it came, or with its data lines written again as one.
    fn into_text(self) -> String {
        let (true, Some((value, _))) = (self.changed, &self.data) else { return self.text };
        let mut out = String::with_capacity(self.text.len());
        let mut written = false;
        for line in lines(&self.text) {
            if !content(line).starts_with("data:") {
                out.push_str(line);
            } else if !written {
                written = true;
                out.push_str("data: ");
                out.push_str(&value.to_string());
                out.push_str(&line[content(line).len()..]);
            }
        }
        out
    }
}

/// A channel's deltas joined: the text, and for each piece the event, its pointer and where
/// it starts in the text.
struct Joined {
    text: String,
    pieces: Vec<(usize, String, usize)>,
}

/// The deltas of `events` joined by channel, each after `lead(channel)` (what was given out of
/// it already).
fn join<'a>(events: &[Event], lead: impl Fn(&str) -> &'a str) -> HashMap<String, Joined> {
    let mut channels: HashMap<String, Joined> = HashMap::new();
    for (e, event) in events.iter().enumerate() {
        let Some((value, at)) = &event.data else { continue };
        for delta in at {
            let text = value.pointer(&delta.pointer).and_then(Value::as_str).unwrap_or_default();
            let joined =
                channels.entry(delta.channel.clone()).or_insert_with(|| Joined { text: lead(&delta.channel).to_owned(), pieces: Vec::new() });
            joined.pieces.push((e, delta.pointer.clone(), joined.text.len()));
            joined.text.push_str(text);
        }
    }
    channels
}

/// Replaces the occurrences `spans` of a channel's joined text in the events that carry it:
/// the piece where an occurrence starts gets the placeholder, the others lose their part of it.
/// Parts before `from` (given out already) are left alone. Returns whether anything changed.
fn rewrite(events: &mut [Event], joined: &Joined, mut spans: Vec<Span>, from: usize) -> bool {
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for span in spans {
        let start = floor_char_boundary(&joined.text, span.start.max(from));
        let end = ceil_char_boundary(&joined.text, span.end);
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ if start < end => merged.push((start, end)),
            _ => {}
        }
    }
    let mut changed = false;
    for (i, (e, pointer, piece_start)) in joined.pieces.iter().enumerate().rev() {
        let piece_end = joined.pieces.get(i + 1).map_or(joined.text.len(), |p| p.2);
        let Some((value, _)) = events[*e].data.as_mut() else { continue };
        let Some(Value::String(piece)) = value.pointer_mut(pointer) else { continue };
        for &(start, end) in merged.iter().rev() {
            let (a, b) = (start.max(*piece_start), end.min(piece_end));
            if a >= b {
                continue;
            }
            let with = if start >= *piece_start { PLACEHOLDER } else { "" };
            piece.replace_range(a - piece_start..b - piece_start, with);
            changed = true;
            events[*e].changed = true;
        }
    }
    changed
}

/// `text` (redacted already) with every occurrence of the secret that the deltas of an event
/// stream form when joined replaced; `None` when there is none (or no event stream).
pub fn redact_joined(text: &str, secret: &str) -> Option<String> {
    if secret.is_empty() || !text.contains("data:") {
        return None;
    }
    let (whole, rest) = split(text);
    let mut events: Vec<Event> = whole.into_iter().chain(Some(rest).filter(|r| !r.is_empty())).map(Event::parse).collect();
    let mut changed = false;
    for _ in 0..4 {
        let mut again = false;
        for joined in join(&events, |_| "").values() {
            let (spans, _) = scan(joined.text.as_bytes(), secret.as_bytes());
            again |= !spans.is_empty() && rewrite(&mut events, joined, spans, 0);
        }
        changed |= again;
        if !again {
            break;
        }
    }
    changed.then(|| events.into_iter().map(Event::into_text).collect())
}

/// How many bytes of the secret a delta must end in for the events from it on to be held.
const HOLD_FROM_BYTES: usize = 2;

/// The same for a stream, piece by piece: whole events are given out once no channel's joined
/// deltas end in what could still begin the secret; an event that could is held (with those
/// after it) until the next piece tells.
pub struct EventGuard {
    secret: String,
    /// Text after the last whole event.
    partial: String,
    /// Whole events not given out yet.
    held: Vec<Event>,
    /// The end of each channel's joined deltas given out already (read again before what
    /// follows, so an occurrence reaching back into it is seen).
    context: HashMap<String, String>,
    reach: usize,
}

impl EventGuard {
    pub fn new(secret: &str, reach: usize) -> EventGuard {
        EventGuard { secret: secret.to_owned(), partial: String::new(), held: Vec::new(), context: HashMap::new(), reach }
    }

    /// Takes the next redacted text; returns the events that can be given out now.
    pub fn push(&mut self, text: &str) -> String {
        self.partial.push_str(text);
        let (whole, rest) = split(&self.partial);
        let rest = rest.len();
        self.held.extend(whole.into_iter().map(Event::parse));
        self.partial.drain(..self.partial.len() - rest);
        let keep = self.settle();
        self.give(keep)
    }

    /// The stream has ended: everything, rewritten where the joined deltas hold the secret.
    pub fn finish(mut self) -> String {
        let rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            self.held.push(Event::parse(&rest));
        }
        self.settle();
        self.give(self.held.len())
    }

    /// Rewrites what the held events form with what was given out; returns how many held
    /// events can be given out (those before the first that carries a possible beginning).
    fn settle(&mut self) -> usize {
        let mut keep = self.held.len();
        let mut channels = self.channels();
        let mut rewritten = false;
        for (channel, joined) in &channels {
            let from = self.context.get(channel).map_or(0, String::len);
            let (spans, _) = scan(joined.text.as_bytes(), self.secret.as_bytes());
            if !spans.is_empty() {
                rewritten |= rewrite(&mut self.held, joined, spans, from);
            }
        }
        if rewritten {
            channels = self.channels();
        }
        for (channel, joined) in &channels {
            let from = self.context.get(channel).map_or(0, String::len);
            // A delta ending in less than two bytes of the secret (its first character, a
            // digit or two read as hex, a trailing `%`) is given out: should the secret follow,
            // only what comes after the given text is replaced, so the page learns at most that
            // byte. Holding for it would delay every delta that happens to end in an `s` (an
            // OpenAI key begins `sk-`), which is most of them.
            let (_, tail) = scan_tails(joined.text.as_bytes(), self.secret.as_bytes(), HOLD_FROM_BYTES);
            if let Some(tail) = tail {
                // The first held piece that reaches the tail, and all after it.
                let first = joined.pieces.iter().enumerate().find(|(i, p)| {
                    let end = joined.pieces.get(i + 1).map_or(joined.text.len(), |q| q.2);
                    end > tail.max(from) || p.2 >= tail
                });
                if let Some((_, (e, _, _))) = first {
                    keep = keep.min(*e);
                }
            }
        }
        keep
    }

    /// The held events' deltas joined by channel, each after its context.
    fn channels(&self) -> HashMap<String, Joined> {
        join(&self.held, |channel| self.context.get(channel).map_or("", String::as_str))
    }

    /// Gives out the first `n` held events and keeps their deltas' end as context.
    fn give(&mut self, n: usize) -> String {
        let given: Vec<Event> = self.held.drain(..n).collect();
        for (name, joined) in join(&given, |_| "") {
            let context = self.context.entry(name).or_default();
            context.push_str(&joined.text);
            let cut = ceil_char_boundary(context, context.len().saturating_sub(self.reach));
            context.drain(..cut);
        }
        given.into_iter().map(Event::into_text).collect()
    }

    /// How many bytes are held back now.
    pub fn held(&self) -> usize {
        self.partial.len() + self.held.iter().map(|e| e.text.len()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-Abc123/xyz";

    fn openai(content: &str) -> String {
        format!("data: {}\n\n", serde_json::json!({"choices": [{"index": 0, "delta": {"content": content}}]}))
    }

    fn anthropic(text: &str) -> String {
        format!(
            "event: content_block_delta\ndata: {}\n\n",
            serde_json::json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}})
        )
    }

    fn joined_content(text: &str) -> String {
        split(text)
            .0
            .into_iter()
            .map(Event::parse)
            .filter_map(|e| e.data)
            .flat_map(|(v, at)| at.into_iter().map(move |d| v.pointer(&d.pointer).and_then(Value::as_str).unwrap_or_default().to_owned()))
            .collect()
    }

    #[test]
    fn a_secret_split_across_deltas_is_replaced_in_the_joined_text() {
        for shape in [openai as fn(&str) -> String, anthropic] {
            let pieces = ["Your key: ", "sk", "-live-A", "bc123", "/xy", "z. Bye", "."];
            let text: String = pieces.iter().map(|p| shape(p)).chain(["data: [DONE]\n\n".to_owned()]).collect();
            let out = redact_joined(&text, SECRET).expect("rewritten");
            assert_eq!(joined_content(&out), format!("Your key: {PLACEHOLDER}. Bye."));
            assert!(out.ends_with("data: [DONE]\n\n"), "{out}");
            assert_eq!(split(&out).0.len(), 8, "every event is kept: {out}");
        }
        // Nothing to do: no event stream, or no occurrence.
        assert!(redact_joined("plain text", SECRET).is_none());
        assert!(redact_joined(&openai("hello"), SECRET).is_none());
    }

    #[test]
    fn a_stream_holds_only_the_events_that_could_begin_the_secret() {
        let mut guard = EventGuard::new(SECRET, 200);
        assert_eq!(guard.push(&openai("Hello ")), openai("Hello "));
        // A few bits of the secret's first byte (`7` read as hex, `c` as base64, a `%`) are
        // no reason to wait.
        for bits in ["n=7", "abc", "50%", "this", "n=73"] {
            assert_eq!(guard.push(&openai(bits)), openai(bits), "{bits}");
        }
        // "sk-li" could begin the secret: held.
        assert_eq!(guard.push(&openai("sk-li")), "");
        // A partial event is held until its blank line.
        let next = openai("ve-Abc123/xyz!");
        assert_eq!(guard.push(&next[..10]), "");
        let out = guard.push(&next[10..]);
        assert_eq!(joined_content(&out), format!("{PLACEHOLDER}!"));
        // "sk-limit" turns out not to be the secret: given out as it came.
        assert_eq!(guard.push(&openai("sk-li")), "");
        assert_eq!(guard.push(&openai("mit")), [openai("sk-li"), openai("mit")].concat());
        assert_eq!(guard.held(), 0);
        assert_eq!(guard.push(&openai("sk")), "");
        assert_eq!(guard.finish(), openai("sk"));
    }
}
