//! Fair shares of the running slots. The concurrency limit bounds what runs at once; without
//! shares, one caller flooding slow requests would hold every slot and everyone else would wait
//! for its upstream timeouts. A request takes one share of each name it counts under — each
//! name its caller is counted as (the user, or the public identifier and the address, as the
//! rate limits count), and its key — before it takes a slot; each name has a cap below the
//! limit. Waiting for a share holds no slot.
//!
//! Taking and giving back is one lock of a map of counts keyed by a hash of each name (every
//! request passes here: nothing is allocated on the way).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The most names one request counts under: its identity, its address, its key.
const MOST: usize = 3;

/// Which cap a name has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Caller,
    Key,
}

/// The names one request counts under, hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShareNames {
    names: [(u64, Option<Kind>); MOST],
}

fn hashed(kind: Kind, parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    (kind as u8).hash(&mut h);
    parts.hash(&mut h);
    h.finish()
}

impl ShareNames {
    /// For a caller counted as `callers` (`api::Caller::shares_as`, at most two) using
    /// `key_name` of `service`.
    pub fn new(callers: &[String], service: &str, key_name: &str) -> ShareNames {
        let mut names = [(0, None); MOST];
        names[0] = (hashed(Kind::Key, &[service, key_name]), Some(Kind::Key));
        for (slot, caller) in names[1..].iter_mut().zip(callers) {
            *slot = (hashed(Kind::Caller, &[caller]), Some(Kind::Caller));
        }
        ShareNames { names }
    }

    fn each(&self) -> impl Iterator<Item = (u64, Kind)> + '_ {
        self.names.iter().filter_map(|(h, kind)| kind.map(|k| (*h, k)))
    }
}

/// The shares of this process's running slots.
pub struct Shares {
    per_caller: usize,
    per_key: usize,
    inner: Arc<Inner>,
}

struct Inner {
    /// Shares held a name (absent: none).
    held: Mutex<HashMap<u64, usize>>,
    /// Woken when a share is given back.
    given_back: Notify,
}

/// Shares held; given back when dropped.
pub struct Held {
    names: ShareNames,
    inner: Arc<Inner>,
}

impl Shares {
    /// At most `per_caller` requests of one caller and `per_key` of one key run at once.
    pub fn new(per_caller: usize, per_key: usize) -> Shares {
        Shares {
            per_caller: per_caller.max(1),
            per_key: per_key.max(1),
            inner: Arc::new(Inner { held: Mutex::new(HashMap::new()), given_back: Notify::new() }),
        }
    }

    /// The default caps for a concurrency limit: a caller a quarter of it, a key half (at
    /// least 2 each, so that a small limit still runs a caller's requests side by side).
    pub fn for_concurrency(concurrency: usize, per_caller: Option<usize>, per_key: Option<usize>) -> Shares {
        let part = |n: usize| n.max(2).min(concurrency.max(1));
        Shares::new(per_caller.unwrap_or(part(concurrency / 4)), per_key.unwrap_or(part(concurrency / 2)))
    }

    fn cap(&self, kind: Kind) -> usize {
        match kind {
            Kind::Caller => self.per_caller,
            Kind::Key => self.per_key,
        }
    }

    /// Every share of `names` if each is free now.
    pub fn try_take(&self, names: &ShareNames) -> Option<Held> {
        let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
        if names.each().any(|(h, kind)| held.get(&h).copied().unwrap_or(0) >= self.cap(kind)) {
            return None;
        }
        for (h, _) in names.each() {
            *held.entry(h).or_insert(0) += 1;
        }
        Some(Held { names: *names, inner: self.inner.clone() })
    }

    /// Every share of `names`, waiting until they are free together.
    pub async fn take(&self, names: &ShareNames) -> Held {
        loop {
            // Registered before looking, so a share given back meanwhile still wakes us.
            let given_back = self.inner.given_back.notified();
            tokio::pin!(given_back);
            given_back.as_mut().enable();
            if let Some(held) = self.try_take(names) {
                return held;
            }
            given_back.await;
        }
    }

    /// How many names hold shares now (for tests: none once nothing runs).
    pub fn tracked(&self) -> usize {
        self.inner.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        {
            let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
            for (h, _) in self.names.each() {
                if let Some(n) = held.get_mut(&h) {
                    *n -= 1;
                    if *n == 0 {
                        held.remove(&h);
                    }
                }
            }
        }
        self.inner.given_back.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(caller: &str, key: &str) -> ShareNames {
        ShareNames::new(&[format!("pid:{caller}"), "addr:127.0.0.1".into()], "svc", key)
    }

    #[test]
    fn a_caller_or_key_gets_no_more_than_its_cap() {
        let shares = Shares::new(2, 3);
        let a1 = shares.try_take(&names("a", "k")).unwrap();
        let _a2 = shares.try_take(&names("a", "k")).unwrap();
        assert!(shares.try_take(&names("a", "k")).is_none(), "a's third");
        // Another identifier from the same address is the same caller.
        assert!(shares.try_take(&names("a-rotated", "k")).is_none());
        let other = ShareNames::new(&["pid:b".into(), "addr:10.0.0.2".into()], "svc", "k");
        let b = shares.try_take(&other).unwrap();
        assert!(shares.try_take(&ShareNames::new(&["pid:c".into()], "svc", "k")).is_none(), "the key's cap");
        assert!(shares.try_take(&ShareNames::new(&["pid:c".into()], "svc", "k2")).is_some(), "another key");
        drop(a1);
        assert!(shares.try_take(&names("a", "k")).is_some());
        drop(b);
    }

    #[test]
    fn default_caps_are_a_quarter_and_a_half_but_never_below_two() {
        let caps = |c| {
            let s = Shares::for_concurrency(c, None, None);
            (s.per_caller, s.per_key)
        };
        assert_eq!(caps(64), (16, 32));
        assert_eq!(caps(3), (2, 2));
        assert_eq!(caps(1), (1, 1));
        assert_eq!(Shares::for_concurrency(64, Some(5), Some(64)).per_key, 64);
    }

    #[tokio::test]
    async fn waiting_takes_the_share_once_given_back_and_names_are_forgotten() {
        let shares = Arc::new(Shares::new(1, 5));
        let first = shares.take(&names("a", "k")).await;
        let waiter = {
            let shares = shares.clone();
            tokio::spawn(async move { shares.take(&names("a", "k")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        drop(first);
        drop(waiter.await.unwrap());
        assert_eq!(shares.tracked(), 0);
    }
}
