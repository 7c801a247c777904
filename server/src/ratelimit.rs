//! Per-key rate limits, per caller and in total, in fixed one-minute windows (one process's
//! memory: each instance counts its own).

use std::collections::HashMap;
use std::sync::Mutex;

const WINDOW_MS: u64 = 60_000;
/// Stale windows are dropped once the map holds this many.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateLimiter {
    /// Counts one request with key `key_id` against the total and, for each name the caller
    /// is counted as, the per-caller limit; or returns the seconds to wait when a limit is
    /// reached (nothing is counted then).
    pub fn check(&self, key_id: &str, callers: &[String], per_caller: Option<u32>, total: Option<u32>, now_ms: u64) -> Result<(), u64> {
        if per_caller.is_none() && total.is_none() {
            return Ok(());
        }
        let window = now_ms / WINDOW_MS;
        let retry_after = ((window + 1) * WINDOW_MS - now_ms).div_ceil(1000).max(1);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, (w, _)| *w == window);
        }
        let counters: Vec<(String, Option<u32>)> = std::iter::once((format!("{key_id}\0*"), total))
            .chain(callers.iter().map(|caller| (format!("{key_id}\0{caller}"), per_caller)))
            .collect();
        let full = counters.iter().any(|(id, limit)| match (limit, windows.get(id)) {
            (Some(limit), Some((w, count))) => *w == window && count >= limit,
            _ => false,
        });
        if full {
            return Err(retry_after);
        }
        for (id, limit) in counters {
            if limit.is_some() {
                let entry = windows.entry(id).or_insert((window, 0));
                if entry.0 != window {
                    *entry = (window, 0);
                }
                entry.1 += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str) -> Vec<String> {
        vec![name.to_owned()]
    }

    #[test]
    fn limits_each_caller_and_everyone() {
        let limiter = RateLimiter::default();
        let t = 120_000;
        assert!(limiter.check("k", &who("a"), Some(2), Some(3), t).is_ok());
        assert!(limiter.check("k", &who("a"), Some(2), Some(3), t + 1).is_ok());
        assert_eq!(limiter.check("k", &who("a"), Some(2), Some(3), t + 1_000), Err(59));
        assert!(limiter.check("k", &who("b"), Some(2), Some(3), t + 2).is_ok());
        assert!(limiter.check("k", &who("c"), Some(2), Some(3), t + 3).is_err(), "the total is reached");
        assert!(limiter.check("other", &who("a"), Some(2), Some(3), t).is_ok(), "keys count apart");
        assert!(limiter.check("k", &who("a"), Some(2), Some(3), t + 60_000).is_ok(), "a new window");
        assert!(limiter.check("k", &who("a"), None, None, t).is_ok());
    }

    #[test]
    fn a_caller_counted_under_two_names_is_limited_by_either() {
        let limiter = RateLimiter::default();
        let t = 120_000;
        let as_ = |id: &str| vec![format!("pid:{id}"), "addr:10.0.0.1".to_owned()];
        assert!(limiter.check("k", &as_("a"), Some(2), None, t).is_ok());
        assert!(limiter.check("k", &as_("b"), Some(2), None, t).is_ok());
        assert!(limiter.check("k", &as_("c"), Some(2), None, t).is_err(), "a new identifier, the same address");
        assert!(limiter.check("k", &["pid:c".to_owned(), "addr:10.0.0.2".to_owned()], Some(2), None, t).is_ok());
    }
}
