//! Daily quotas and token budgets per key: the counters a request counts on, what a refusal
//! says, and the tokens an answer reports it used.
//!
//! A key with any daily limit counts each request on its total counter (`*`) and — when it has
//! a per-caller limit — on one counter per name its caller is counted as (the names the
//! per-minute limits count: a signed-in user, else the public identifier *and* the address).
//! Tokens are added to the same counters when the answer arrives, so the call that crosses a
//! budget completes and the next one is refused.

use crate::domain::{DayCounter, KeyRecord, Limit};
use crate::store::DAY_MS;
use serde_json::Value;

/// The UTC day of `now_ms`, as the counters number them.
pub fn day(now_ms: u64) -> i64 {
    (now_ms / DAY_MS) as i64
}

/// Seconds to the next UTC midnight (at least 1): a refusal's `Retry-After`.
pub fn seconds_to_midnight(now_ms: u64) -> u64 {
    (DAY_MS - now_ms % DAY_MS).div_ceil(1000)
}

/// The name of a key's counter: its total (`of` = `*`) or one caller's.
fn counter_name(service: &str, name: &str, of: &str) -> String {
    // PostgreSQL text holds no NUL: the parts are joined with U+0001.
    [service, name, of].join("\u{1}")
}

/// The counter of a key's total.
pub fn total_counter(service: &str, name: &str) -> String {
    counter_name(service, name, "*")
}

/// The counters a request of `key` by a caller `counted_as` counts on (none for a key without
/// daily limits): the total first, then the caller's.
pub fn counters(key: &KeyRecord, counted_as: &[String]) -> Vec<DayCounter> {
    if !key.counts_days() {
        return Vec::new();
    }
    let total = DayCounter { name: total_counter(&key.service, &key.name), requests: key.daily_total, tokens: key.daily_tokens_total };
    let per_caller = key.daily_per_caller.is_some() || key.daily_tokens_per_caller.is_some();
    let callers = counted_as.iter().filter(|_| per_caller).map(|of| DayCounter {
        name: counter_name(&key.service, &key.name, of),
        requests: key.daily_per_caller,
        tokens: key.daily_tokens_per_caller,
    });
    std::iter::once(total).chain(callers).collect()
}

/// Why a request was refused: the metric's `quota` label and the caller's message.
pub fn refusal(key: &KeyRecord, counter: &DayCounter, limit: Limit) -> (&'static str, String) {
    let total = counter.name == total_counter(&key.service, &key.name);
    let scope = if total { "in total" } else { "per caller" };
    let name = &key.name;
    match limit {
        Limit::Requests => (
            if total { "daily_total" } else { "daily_per_caller" },
            format!(
                "The daily quota of client secret \"{name}\" is used up ({} requests a day {scope}); it renews at 00:00 UTC.",
                counter.requests.unwrap_or_default()
            ),
        ),
        Limit::Tokens => (
            if total { "daily_tokens_total" } else { "daily_tokens_per_caller" },
            format!(
                "The daily token budget of client secret \"{name}\" is used up ({} tokens a day {scope}); it renews at 00:00 UTC.",
                counter.tokens.unwrap_or_default()
            ),
        ),
    }
}

/// Token figures seen so far in an answer; the last of each kind wins (a stream's usage grows
/// as it goes).
#[derive(Debug, Default)]
struct Seen {
    total: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
}

impl Seen {
    /// Reads the usage objects of one JSON answer or event: `usage` (OpenAI, Anthropic's
    /// `message_delta`), `message.usage` (Anthropic's `message_start`), `response.usage`
    /// (OpenAI's Responses events) and `usageMetadata` (Gemini).
    fn read(&mut self, value: &Value) {
        let usages = [&value["usage"], &value["message"]["usage"], &value["response"]["usage"]];
        for usage in usages.into_iter().filter(|u| u.is_object()) {
            let number = |key: &str| usage[key].as_u64();
            self.total = number("total_tokens").or(self.total);
            self.input = number("input_tokens").or(self.input);
            self.output = number("output_tokens").or(self.output);
        }
        if let Some(total) = value["usageMetadata"]["totalTokenCount"].as_u64() {
            self.total = Some(total);
        }
    }

    /// OpenAI's and Gemini's total; else Anthropic's input plus output.
    fn tokens(&self) -> Option<u64> {
        match (self.total, self.input, self.output) {
            (Some(total), _, _) => Some(total),
            (None, None, None) => None,
            (None, input, output) => Some(input.unwrap_or(0).saturating_add(output.unwrap_or(0))),
        }
    }
}

/// The tokens an answer reports it used: a JSON body's `usage`, or — for a body kept as text —
/// the JSON it holds, or the events of an event stream.
pub fn tokens_used(body: &Value) -> Option<u64> {
    match body {
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(value) if value.is_object() => tokens_used(&value),
            _ => tokens_streamed(text),
        },
        value => {
            let mut seen = Seen::default();
            seen.read(value);
            seen.tokens()
        }
    }
}

/// The tokens a streamed answer (server-sent events) reports it used: its usage events, the
/// last figure of each kind (OpenAI's final chunk with `stream_options.include_usage`,
/// Anthropic's `message_start` and last `message_delta`, the Responses API's
/// `response.completed`).
pub fn tokens_streamed(text: &str) -> Option<u64> {
    let mut seen = Seen::default();
    let mut parser = skapi_core::sse::Parser::new();
    let mut on_event = |_: &str, data: &str| {
        if data.contains("usage") || data.contains("Tokens") {
            if let Ok(value) = serde_json::from_str::<Value>(data) {
                seen.read(&value);
            }
        }
        false
    };
    parser.push(text, &mut on_event);
    // An answer whose last event was not followed by a blank line still counts it.
    parser.push("\n\n", &mut on_event);
    seen.tokens()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(per_caller: Option<u32>, total: Option<u32>, tokens_per_caller: Option<u64>, tokens_total: Option<u64>) -> KeyRecord {
        KeyRecord {
            service: "svc".into(),
            name: "openai".into(),
            daily_per_caller: per_caller,
            daily_total: total,
            daily_tokens_per_caller: tokens_per_caller,
            daily_tokens_total: tokens_total,
            ..Default::default()
        }
    }

    #[test]
    fn a_key_without_daily_limits_counts_nothing() {
        assert!(counters(&key(None, None, None, None), &["pid:a".into()]).is_empty());
    }

    #[test]
    fn the_total_is_always_counted_and_callers_only_under_a_per_caller_limit() {
        let callers = ["pid:a".to_owned(), "addr:10.0.0.0/24".to_owned()];
        let only_total = counters(&key(None, Some(5), None, None), &callers);
        assert_eq!(only_total, [DayCounter { name: "svc\u{1}openai\u{1}*".into(), requests: Some(5), tokens: None }]);

        let per_caller_tokens = counters(&key(None, None, Some(1000), None), &callers);
        let names: Vec<&str> = per_caller_tokens.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["svc\u{1}openai\u{1}*", "svc\u{1}openai\u{1}pid:a", "svc\u{1}openai\u{1}addr:10.0.0.0/24"]);
        assert_eq!((per_caller_tokens[0].requests, per_caller_tokens[0].tokens), (None, None), "the total is counted, not limited");
        assert_eq!((per_caller_tokens[1].requests, per_caller_tokens[1].tokens), (None, Some(1000)));
    }

    #[test]
    fn refusals_name_the_limit_and_its_scope() {
        let k = key(Some(2), None, None, Some(50_000));
        let all = counters(&k, &["pid:a".into()]);
        assert_eq!(
            refusal(&k, &all[1], Limit::Requests),
            (
                "daily_per_caller",
                "The daily quota of client secret \"openai\" is used up (2 requests a day per caller); it renews at 00:00 UTC.".into()
            )
        );
        assert_eq!(
            refusal(&k, &all[0], Limit::Tokens),
            (
                "daily_tokens_total",
                "The daily token budget of client secret \"openai\" is used up (50000 tokens a day in total); it renews at 00:00 UTC.".into()
            )
        );
    }

    #[test]
    fn a_counter_is_used_up_at_its_limit() {
        let counter = DayCounter { name: "c".into(), requests: Some(3), tokens: Some(100) };
        let used = |requests, tokens| counter.used_up(crate::domain::DayCount { requests, tokens });
        assert_eq!(used(2, 99), None);
        assert_eq!(used(3, 0), Some(Limit::Requests));
        assert_eq!(used(0, 100), Some(Limit::Tokens));
        assert_eq!(used(0, 250), Some(Limit::Tokens), "the call that crossed it completed");
    }

    #[test]
    fn the_day_turns_at_utc_midnight() {
        assert_eq!(day(DAY_MS * 3 + 5), 3);
        assert_eq!(seconds_to_midnight(DAY_MS * 3), 86_400);
        assert_eq!(seconds_to_midnight(DAY_MS * 4 - 1), 1);
    }

    #[test]
    fn tokens_of_json_answers() {
        let openai = json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}});
        assert_eq!(tokens_used(&openai), Some(21));
        let anthropic = json!({"content": [], "usage": {"input_tokens": 10, "output_tokens": 25}});
        assert_eq!(tokens_used(&anthropic), Some(35));
        let responses = json!({"output": [], "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}});
        assert_eq!(tokens_used(&responses), Some(12));
        let gemini = json!({"candidates": [], "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 8}});
        assert_eq!(tokens_used(&gemini), Some(8));
        let images = json!({"data": [{"b64_json": "…"}], "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210}});
        assert_eq!(tokens_used(&images), Some(4210));
        assert_eq!(tokens_used(&json!({"data": []})), None, "no usage: nothing counted");
        assert_eq!(tokens_used(&json!({"usage": null})), None);
        assert_eq!(tokens_used(&Value::String(openai.to_string())), Some(21), "a JSON answer kept as text");
        assert_eq!(tokens_used(&Value::String("plain text".into())), None);
    }

    #[test]
    fn tokens_of_streamed_answers() {
        let openai = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2,\"total_tokens\":10}}\n\n",
            "data: [DONE]\n\n"
        );
        assert_eq!(tokens_streamed(openai), Some(10));
        let anthropic = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: content_block_delta\n",
            "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_stop\n",
            "data: {\"type\":\"message_stop\"}"
        );
        assert_eq!(tokens_streamed(anthropic), Some(40), "input from message_start, output from the last message_delta");
        let responses = "event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":4,\"total_tokens\":7}}}\r\n\r\n";
        assert_eq!(tokens_streamed(responses), Some(7));
        assert_eq!(tokens_streamed("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"), None, "a stream without usage counts nothing");
        assert_eq!(tokens_used(&Value::String(openai.into())), Some(10), "an event stream kept as one body");
    }
}
