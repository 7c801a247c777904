//! Fair shares of the running slots. The concurrency limit bounds what runs at once; without
//! shares, one caller flooding slow requests would hold every slot and everyone else would wait
//! for its upstream timeouts. A request takes one share of each name it counts under — each
//! name its caller is counted as (the user, or the public identifier and the address, as the
//! rate limits count), and its key — before it takes a slot; each name has a cap below the
//! limit. Waiting for a share holds no slot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The names one request counts under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareNames {
    callers: Vec<String>,
    key: String,
}

impl ShareNames {
    /// For a caller counted as `callers` (api::Caller's `counted_as`) using `key_name` of
    /// `service`.
    pub fn new(callers: &[String], service: &str, key_name: &str) -> ShareNames {
        ShareNames { callers: callers.to_vec(), key: format!("{service}\0{key_name}") }
    }

    /// Each name with its cap, in one order for every request (so that no two requests wait
    /// for each other's shares).
    fn capped(&self, caps: &Caps) -> Vec<(String, usize)> {
        let mut names: Vec<(String, usize)> =
            self.callers.iter().map(|c| (format!("caller\0{c}"), caps.per_caller)).chain([(format!("key\0{}", self.key), caps.per_key)]).collect();
        names.sort();
        names.dedup();
        names
    }
}

#[derive(Debug, Clone, Copy)]
struct Caps {
    per_caller: usize,
    per_key: usize,
}

/// The shares of this process's running slots.
pub struct Shares {
    caps: Caps,
    /// One semaphore a name while anything holds or waits for a share of it.
    names: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

/// Shares held; given back when dropped.
pub struct Held {
    permits: Vec<(String, usize, OwnedSemaphorePermit)>,
    names: Arc<Mutex<HashMap<String, Arc<Semaphore>>>>,
}

impl Shares {
    /// At most `per_caller` requests of one caller and `per_key` of one key run at once.
    pub fn new(per_caller: usize, per_key: usize) -> Shares {
        Shares { caps: Caps { per_caller: per_caller.max(1), per_key: per_key.max(1) }, names: Default::default() }
    }

    /// The default caps for a concurrency limit: a caller a quarter of it, a key half (at
    /// least 2 each, so that a small limit still runs a caller's requests side by side).
    pub fn for_concurrency(concurrency: usize, per_caller: Option<usize>, per_key: Option<usize>) -> Shares {
        let part = |n: usize| n.max(2).min(concurrency.max(1));
        Shares::new(per_caller.unwrap_or(part(concurrency / 4)), per_key.unwrap_or(part(concurrency / 2)))
    }

    fn semaphore(&self, name: &str, cap: usize) -> Arc<Semaphore> {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.entry(name.to_owned()).or_insert_with(|| Arc::new(Semaphore::new(cap))).clone()
    }

    /// Every share of `names` if each is free now.
    pub fn try_take(&self, names: &ShareNames) -> Option<Held> {
        let mut held = Held { permits: Vec::new(), names: self.names.clone() };
        for (name, cap) in names.capped(&self.caps) {
            let permit = self.semaphore(&name, cap).try_acquire_owned().ok()?;
            held.permits.push((name, cap, permit));
        }
        Some(held)
    }

    /// Every share of `names`, waiting for each in turn.
    pub async fn take(&self, names: &ShareNames) -> Held {
        let mut held = Held { permits: Vec::new(), names: self.names.clone() };
        for (name, cap) in names.capped(&self.caps) {
            let permit = self.semaphore(&name, cap).acquire_owned().await.expect("share semaphores are never closed");
            held.permits.push((name, cap, permit));
        }
        held
    }

    /// How many names are tracked now (for tests: none once nothing runs).
    pub fn tracked(&self) -> usize {
        self.names.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let permits = std::mem::take(&mut self.permits);
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        for (name, cap, permit) in permits {
            drop(permit);
            // Forgotten once nothing holds or waits for a share of it.
            if names.get(&name).is_some_and(|s| Arc::strong_count(s) == 1 && s.available_permits() == cap) {
                names.remove(&name);
            }
        }
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
        drop(a1);
        assert!(shares.try_take(&names("a", "k")).is_some());
        drop(b);
    }

    #[test]
    fn default_caps_are_a_quarter_and_a_half_but_never_below_two() {
        let caps = |c| Shares::for_concurrency(c, None, None).caps;
        assert_eq!((caps(64).per_caller, caps(64).per_key), (16, 32));
        assert_eq!((caps(3).per_caller, caps(3).per_key), (2, 2));
        assert_eq!((caps(1).per_caller, caps(1).per_key), (1, 1));
        assert_eq!(Shares::for_concurrency(64, Some(5), Some(64)).caps.per_key, 64);
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
