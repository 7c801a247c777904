//! How long redaction takes on a large answer: `cargo run --release -p skapi-core --example
//! redact_bench` (an 8 MB text answer, the same as JSON, and a cut at 4 MB).

use std::time::Instant;

fn main() {
    let secret = "sk-proj-Abc123xyz987/+=secretvalue";
    let line = r#"{"id":"chatcmpl-123","choices":[{"message":{"content":"words, numbers 12345, base64 aGVsbG8gd29ybGQ=, %20 escapes \\u00e9"}}]}"#;
    let mut text = String::new();
    while text.len() < 8 << 20 {
        text.push_str(line);
        text.push('\n');
    }
    let json = format!("[{}]", text.lines().collect::<Vec<_>>().join(","));
    let started = Instant::now();
    skapi_core::redact::redact(&text, secret);
    println!("redact, 8 MB of text:          {:>6.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    let started = Instant::now();
    skapi_core::redact::redact_body(&json, secret);
    println!("redact_body, 8 MB of JSON:     {:>6.0} ms", started.elapsed().as_secs_f64() * 1000.0);
    let started = Instant::now();
    skapi_core::redact::redact_truncated(&text, 4 << 20, secret);
    println!("redact_truncated, cut at 4 MB: {:>6.0} ms", started.elapsed().as_secs_f64() * 1000.0);
}
