//! Per-key use over the last hour, for the dashboard: how each key's requests ended, minute by
//! minute, and when it was last used. Counted in this process (each instance counts what it
//! accepted and ran), kept for an hour, nothing written to the store. (Today's use against a
//! key's daily limits is the store's: `crate::quota`.)

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

const MINUTE_MS: u64 = 60_000;
const KEPT_MINUTES: u64 = 60;

#[derive(Default)]
struct KeyUse {
    /// (minute, outcome → count), oldest first.
    minutes: VecDeque<(u64, BTreeMap<&'static str, u64>)>,
    last_used: Option<u64>,
}

impl KeyUse {
    fn forget_before(&mut self, minute: u64) {
        while self.minutes.front().is_some_and(|(m, _)| *m + KEPT_MINUTES <= minute) {
            self.minutes.pop_front();
        }
    }
}

/// One key's figures, as the admin API answers them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyUsage {
    pub service: String,
    pub name: String,
    /// Requests that ended in the last hour, by outcome (`resolved` or an error code).
    pub last_hour: BTreeMap<&'static str, u64>,
    /// When a request last used the key (ms), if this process has seen one.
    pub last_used: Option<u64>,
    /// Today's requests and tokens (UTC), counted by every instance, for a key with a daily
    /// quota or token budget (`None` for one without: its use is not counted by the day).
    pub today: Option<crate::domain::DayCount>,
}

#[derive(Default)]
pub struct Usage {
    keys: Mutex<HashMap<(String, String), KeyUse>>,
}

impl Usage {
    fn with<T>(&self, service: &str, name: &str, f: impl FnOnce(&mut KeyUse) -> T) -> T {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        f(keys.entry((service.to_owned(), name.to_owned())).or_default())
    }

    /// A request was accepted for the key.
    pub fn used(&self, service: &str, name: &str, now_ms: u64) {
        self.with(service, name, |k| k.last_used = Some(now_ms));
    }

    /// A request of the key ended with `outcome`.
    pub fn ended(&self, service: &str, name: &str, outcome: &'static str, now_ms: u64) {
        let minute = now_ms / MINUTE_MS;
        self.with(service, name, |k| {
            k.forget_before(minute);
            match k.minutes.back_mut() {
                Some((m, counts)) if *m == minute => *counts.entry(outcome).or_default() += 1,
                _ => k.minutes.push_back((minute, BTreeMap::from([(outcome, 1)]))),
            }
        });
    }

    /// Every key's figures (of `service`, when given): those of `known` (service, name) — the
    /// keys the store holds, used here or not — and any other this process has seen; sorted by
    /// service and name.
    pub fn report(&self, service: Option<&str>, known: &[(String, String)], now_ms: u64) -> Vec<KeyUsage> {
        let minute = now_ms / MINUTE_MS;
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for (service, name) in known {
            keys.entry((service.clone(), name.clone())).or_default();
        }
        let mut out: Vec<KeyUsage> = keys
            .iter_mut()
            .filter(|((s, _), _)| service.is_none_or(|wanted| wanted == s))
            .map(|((service, name), k)| {
                k.forget_before(minute);
                let mut last_hour = BTreeMap::new();
                for (_, counts) in &k.minutes {
                    for (outcome, n) in counts {
                        *last_hour.entry(*outcome).or_default() += n;
                    }
                }
                KeyUsage { service: service.clone(), name: name.clone(), last_hour, last_used: k.last_used, today: None }
            })
            .collect();
        out.sort_by(|a, b| (&a.service, &a.name).cmp(&(&b.service, &b.name)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_for_an_hour_and_remembers_the_last_use() {
        let usage = Usage::default();
        let t = 10 * MINUTE_MS;
        usage.used("s", "k", t);
        usage.ended("s", "k", "resolved", t);
        usage.ended("s", "k", "resolved", t + 1);
        usage.ended("s", "k", "THIRD_PARTY_ERROR", t + 30 * MINUTE_MS);
        usage.ended("other", "k", "resolved", t);
        let report = usage.report(Some("s"), &[], t + 30 * MINUTE_MS);
        assert_eq!(report.len(), 1);
        assert_eq!(report[0].last_hour, BTreeMap::from([("THIRD_PARTY_ERROR", 1), ("resolved", 2)]));
        assert_eq!(report[0].last_used, Some(t));
        let later = usage.report(Some("s"), &[], t + 61 * MINUTE_MS);
        assert_eq!(later[0].last_hour, BTreeMap::from([("THIRD_PARTY_ERROR", 1)]), "an hour later the first minute is gone");
        assert_eq!(usage.report(None, &[], t).len(), 2);
    }

    #[test]
    fn keys_the_store_holds_are_reported_unused() {
        let usage = Usage::default();
        usage.ended("s", "used", "resolved", MINUTE_MS);
        let known = [("s".to_owned(), "unused".to_owned()), ("other".to_owned(), "elsewhere".to_owned())];
        let report = usage.report(Some("s"), &known, MINUTE_MS);
        let names: Vec<&str> = report.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["unused", "used"], "another service's key is left out");
        assert_eq!((report[0].last_hour.len(), report[0].last_used), (0, None));
    }
}
