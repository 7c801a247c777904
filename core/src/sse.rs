//! Server-sent events as a reader takes them off the wire: text in (decoded from UTF-8 by the
//! reader, a character split across pieces kept whole), whole events out, by the event-stream
//! rules of the HTML standard. Lines end in CR, LF or CRLF (a CR at the end of one
//! piece and an LF at the start of the next are one line end); a blank line ends an event;
//! `event:` names it (`message` by default), `data:` lines are joined with LF, one space after
//! the colon is dropped, and comments and other fields are ignored. An event without data is
//! not dispatched, nor is one the stream ends inside.

#[derive(Debug, Default)]
pub struct Parser {
    /// The text of a line not ended yet.
    line: String,
    /// The last piece ended in CR: an LF that starts the next one belongs to it.
    after_cr: bool,
    /// Whether a line has ended (a byte order mark that starts the first line is dropped).
    past_first_line: bool,
    /// The event's name; empty until an `event:` line names it.
    name: String,
    /// Its data lines joined so far; `None` until the first.
    data: Option<String>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Reads `text`, the next piece of the stream, and hands each event it completes to
    /// `on_event(name, data)`, until that returns `true` (enough read: the rest is dropped).
    /// Byte by byte, without `str`'s searchers and slicing panics (each weighs on the wasm).
    pub fn push(&mut self, mut text: &str, mut on_event: impl FnMut(&str, &str) -> bool) {
        if self.after_cr && !text.is_empty() {
            self.after_cr = false;
            text = text.strip_prefix('\n').unwrap_or(text);
        }
        while let Some(end) = text.bytes().position(|b| b == b'\n' || b == b'\r') {
            let bytes = text.as_bytes();
            let cr = bytes.get(end) == Some(&b'\r');
            let crlf = cr && bytes.get(end + 1) == Some(&b'\n');
            self.after_cr = cr && end + 1 == bytes.len();
            self.line.push_str(text.get(..end).unwrap_or_default());
            text = text.get(end + if crlf { 2 } else { 1 }..).unwrap_or_default();
            let line = std::mem::take(&mut self.line);
            if line.is_empty() {
                // A blank line: the event is whole (one without data is not dispatched).
                let name = std::mem::take(&mut self.name);
                if let Some(data) = self.data.take() {
                    if on_event(if name.is_empty() { "message" } else { &name }, &data) {
                        return;
                    }
                }
            } else {
                self.field(&line);
            }
        }
        self.line.push_str(text);
    }

    /// A line that is no blank line: a field, or a comment.
    fn field(&mut self, mut line: &str) {
        if !self.past_first_line {
            self.past_first_line = true;
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        let (field, value) = match crate::text::split_at_byte(line, b':', false) {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // Comments (an empty field), `id`, `retry` and unknown fields.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Event = (String, String);

    fn event(name: &str, data: &str) -> Event {
        (name.to_owned(), data.to_owned())
    }

    fn all(pieces: &[&str]) -> Vec<Event> {
        let mut parser = Parser::new();
        let mut events = Vec::new();
        for piece in pieces {
            parser.push(piece, |name, data| {
                events.push(event(name, data));
                false
            });
        }
        events
    }

    #[test]
    fn the_reader_may_stop_early() {
        let mut parser = Parser::new();
        let mut seen = Vec::new();
        parser.push("data: 1\n\ndata: 2\n\ndata: 3\n\n", |_, data| {
            seen.push(data.to_owned());
            data == "2"
        });
        assert_eq!(seen, ["1", "2"]);
    }

    #[test]
    fn events_are_named_and_their_data_lines_joined() {
        let text = "event: chunk\ndata: {\"seq\":1}\n\ndata: a\ndata:b\n\n: comment\nid: 7\nevent:end\ndata: {}\n\n";
        assert_eq!(all(&[text]), vec![event("chunk", "{\"seq\":1}"), event("message", "a\nb"), event("end", "{}")]);
    }

    #[test]
    fn every_line_end_is_one_and_a_crlf_may_be_split() {
        assert_eq!(all(&["data: 1\r\n\r\ndata: 2\r\rdata: 3\n\n"]), vec![event("message", "1"), event("message", "2"), event("message", "3")]);
        // CR | LF across pieces is one line end, not two (which would end the event early).
        assert_eq!(all(&["data: a\r", "\ndata: b\r", "\n\r", "\n"]), vec![event("message", "a\nb")]);
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let text = "\u{feff}event: chunk\r\ndata: {\"txt\":\"héllo\"}\r\n\r\nevent: end\ndata: {}\n\n";
        let whole = all(&[text]);
        assert_eq!(whole, vec![event("chunk", "{\"txt\":\"héllo\"}"), event("end", "{}")]);
        for at in (0..=text.len()).filter(|&at| text.is_char_boundary(at)) {
            assert_eq!(all(&[&text[..at], &text[at..]]), whole, "split at {at}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        assert_eq!(all(&chars.iter().map(String::as_str).collect::<Vec<_>>()), whole);
    }

    #[test]
    fn events_without_data_or_unfinished_are_not_dispatched() {
        assert_eq!(all(&["event: ping\n\n: keep-alive\n\ndata: cut off"]), vec![]);
        // `data` with no colon is a data line with an empty value.
        assert_eq!(all(&["data\n\n"]), vec![event("message", "")]);
    }
}
