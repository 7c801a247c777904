//! What an operator watches, in Prometheus' text format (`GET /metrics`, or `--metrics-listen`).
//! Labels are chosen so that nothing a caller sends becomes one: endpoint names, outcome codes
//! and destination hosts only — never a secret, a caller's identifier, a url path or a query.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// The process-wide recorder (installed on first use; every server in the process shares it).
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder is installed, which this crate never does.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Makes sure the recorder exists before the first figure is recorded.
pub fn install() {
    handle();
}

/// One API call answered: `endpoint` (`csr`, `poll`, `history`, `queue_count`, `cancel`, …)
/// and its outcome (`OK` or an error code).
pub fn api_call(endpoint: &'static str, outcome: &'static str) {
    metrics::counter!("skapi_api_calls_total", "endpoint" => endpoint, "outcome" => outcome).increment(1);
}

/// One third-party call: the destination's host, how it ended (`resolved` or an error code)
/// and how long it took.
pub fn upstream_call(host: &str, outcome: &'static str, took: Duration) {
    let host = host.to_owned();
    metrics::counter!("skapi_upstream_calls_total", "host" => host.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("skapi_upstream_duration_seconds", "host" => host).record(took.as_secs_f64());
}

/// One store operation and whether it failed.
pub fn store_call(took: Duration, failed: bool) {
    metrics::histogram!("skapi_store_duration_seconds").record(took.as_secs_f64());
    if failed {
        metrics::counter!("skapi_store_errors_total").increment(1);
    }
}

/// A `csr` refused by a key's rate limit.
pub fn rate_limited() {
    metrics::counter!("skapi_rate_limited_total").increment(1);
}

/// A request refused by a daily quota: the service and key as the operator named them (never a
/// caller's), and which quota.
pub fn quota_refused(service: &str, key: &str, quota: &'static str) {
    metrics::counter!("skapi_quota_refused_total", "service" => service.to_owned(), "key" => key.to_owned(), "quota" => quota).increment(1);
}

/// Requests waiting and running now, in the whole store (all instances).
pub fn requests_now(pending: u64, running: u64, queued: u64) {
    metrics::gauge!("skapi_requests", "state" => "pending").set(pending as f64);
    metrics::gauge!("skapi_requests", "state" => "running").set(running as f64);
    metrics::gauge!("skapi_requests_queued").set(queued as f64);
}

/// Everything recorded so far, as Prometheus text.
pub fn render() -> String {
    handle().render()
}
