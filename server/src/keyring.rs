//! Managing client-secret keys: what the CLI, the admin API and the dashboard call. Values go
//! in sealed and never come back out, except to the engine at the moment of sending (and their
//! last four characters, as a hint, to operators).

use crate::clock::now_ms;
use crate::destination::Destinations;
use crate::domain::KeyRecord;
use crate::secrets::{MasterKey, SecretError};
use crate::store::{Db, StoreError};
use serde::{Deserialize, Serialize};
use skapi_core::positions::Position;
use std::sync::Arc;

pub struct Keyring {
    db: Db,
    master: Arc<MasterKey>,
    /// Keys as last read for acceptance, with the store's key generation at that read (only
    /// where the store has one: see [`Keyring::for_acceptance`]).
    remembered: std::sync::Mutex<std::collections::HashMap<String, (KeyRecord, u64)>>,
}

/// The key a request names, as [`Keyring::for_acceptance`] found it.
pub struct AcceptanceKey {
    pub key: Option<KeyRecord>,
    /// The store's key generation the key belongs to: accept with
    /// [`crate::store::Store::insert_record_if`] under it. `None`: read fresh, insert as is.
    pub generation: Option<u64>,
    /// Taken from memory rather than read just now.
    pub remembered: bool,
}

/// A key as shown to operators: never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    pub service: String,
    pub name: String,
    pub locked: bool,
    /// `"any"` (the operator's explicit choice) or the URL prefixes.
    pub destinations: Destinations,
    pub positions: Vec<Position>,
    pub rate_per_caller: Option<u32>,
    pub rate_total: Option<u32>,
    /// The value's last four characters (for values of 8 or more), to tell keys apart.
    pub hint: String,
    pub created: u64,
    pub updated: u64,
    /// The request rules (JSON Schema), when it has some.
    pub request_schema: Option<serde_json::Value>,
    pub daily_per_caller: Option<u32>,
    pub daily_total: Option<u32>,
    pub daily_tokens_per_caller: Option<u64>,
    pub daily_tokens_total: Option<u64>,
}

impl KeyInfo {
    /// Whether any daily quota or token budget holds for this key (then its use is counted).
    pub fn counts_days(&self) -> bool {
        self.daily_per_caller.is_some() || self.daily_total.is_some() || self.daily_tokens_per_caller.is_some() || self.daily_tokens_total.is_some()
    }
}

/// A new key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub service: String,
    pub name: String,
    pub secret: String,
    #[serde(default)]
    pub locked: bool,
    /// Required: at least one URL prefix, or `"any"`.
    #[serde(default)]
    pub destinations: Destinations,
    #[serde(default)]
    pub positions: Vec<Position>,
    #[serde(default)]
    pub rate_per_caller: Option<u32>,
    #[serde(default)]
    pub rate_total: Option<u32>,
    /// A JSON Schema each request must satisfy.
    #[serde(default)]
    pub request_schema: Option<serde_json::Value>,
    /// Requests a UTC day one caller may make with this key.
    #[serde(default)]
    pub daily_per_caller: Option<u32>,
    /// Requests a UTC day all callers together may make with this key.
    #[serde(default)]
    pub daily_total: Option<u32>,
    /// Tokens (as answers report them) a UTC day one caller may use with this key.
    #[serde(default)]
    pub daily_tokens_per_caller: Option<u64>,
    /// Tokens a UTC day all callers together may use with this key.
    #[serde(default)]
    pub daily_tokens_total: Option<u64>,
}

/// Changes to a key; absent fields stay as they are. For the limits, `null` removes the limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEdit {
    pub secret: Option<String>,
    pub locked: Option<bool>,
    pub destinations: Option<Destinations>,
    pub positions: Option<Vec<Position>>,
    #[serde(default, with = "double_option")]
    pub rate_per_caller: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    pub rate_total: Option<Option<u32>>,
    /// `null` removes the rules.
    #[serde(default, with = "double_option")]
    pub request_schema: Option<Option<serde_json::Value>>,
    #[serde(default, with = "double_option")]
    pub daily_per_caller: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    pub daily_total: Option<Option<u32>>,
    #[serde(default, with = "double_option")]
    pub daily_tokens_per_caller: Option<Option<u64>>,
    #[serde(default, with = "double_option")]
    pub daily_tokens_total: Option<Option<u64>>,
}

/// `absent` → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("{0}")]
    Invalid(String),
    #[error("no key \"{name}\" in service \"{service}\"")]
    NotFound { service: String, name: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

fn context(service: &str, name: &str) -> String {
    format!("{service}\0{name}")
}

fn hint(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 8 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    }
}

fn invalid<T>(message: impl Into<String>) -> Result<T, KeyringError> {
    Err(KeyringError::Invalid(message.into()))
}

fn check_value(secret: &str) -> Result<(), KeyringError> {
    if secret.is_empty() {
        return invalid("the secret value must not be empty");
    }
    if secret.contains(skapi_core::PLACEHOLDER) {
        return invalid("the secret value must not contain the placeholder itself");
    }
    Ok(())
}

fn check_limits(per_caller: Option<u32>, total: Option<u32>) -> Result<(), KeyringError> {
    if per_caller == Some(0) || total == Some(0) {
        return invalid("a rate limit must be at least 1 request per minute (leave it out for none)");
    }
    Ok(())
}

/// Daily quotas (per caller, in total) and token budgets (the same).
fn check_quotas(requests: [Option<u32>; 2], tokens: [Option<u64>; 2]) -> Result<(), KeyringError> {
    if requests.contains(&Some(0)) {
        return invalid("a daily quota must be at least 1 request (leave it out for none)");
    }
    // The store counts in signed 64-bit integers.
    if tokens.iter().flatten().any(|&n| n == 0 || n > i64::MAX as u64) {
        return invalid("a daily token budget must be at least 1 token, and at most 9223372036854775807 (leave it out for none)");
    }
    Ok(())
}

/// Rules a key keeps must be JSON Schema this server can apply.
fn check_schema(schema: Option<&serde_json::Value>) -> Result<(), KeyringError> {
    schema.map_or(Ok(()), |s| crate::rules::valid(s).map_err(KeyringError::Invalid))
}

/// Normalised destinations; a key must have at least one, or be sent anywhere explicitly.
fn normalize_destinations(destinations: &Destinations) -> Result<Destinations, KeyringError> {
    if *destinations == Destinations::default() {
        return invalid("a key needs at least one destination (a URL prefix its secret may be sent to), or \"any destination\" chosen explicitly");
    }
    destinations.normalized().map_err(KeyringError::Invalid)
}

impl Keyring {
    pub fn new(db: Db, master: Arc<MasterKey>) -> Keyring {
        Keyring { db, master, remembered: Default::default() }
    }

    fn info(&self, key: KeyRecord) -> KeyInfo {
        let hint = self.master.open(&context(&key.service, &key.name), &key.sealed_secret).map(|s| hint(&s)).unwrap_or_default();
        KeyInfo {
            service: key.service,
            name: key.name,
            locked: key.locked,
            destinations: key.destinations,
            positions: key.positions,
            rate_per_caller: key.rate_per_caller,
            rate_total: key.rate_total,
            hint,
            created: key.created,
            updated: key.updated,
            request_schema: key.request_schema,
            daily_per_caller: key.daily_per_caller,
            daily_total: key.daily_total,
            daily_tokens_per_caller: key.daily_tokens_per_caller,
            daily_tokens_total: key.daily_tokens_total,
        }
    }

    /// Saves a key; `replace` lets it overwrite one of the same name.
    pub async fn add(&self, key: NewKey, replace: bool) -> Result<KeyInfo, KeyringError> {
        if key.service.trim().is_empty() || key.service.len() > 128 {
            return invalid("the service id must have 1 to 128 characters");
        }
        if key.name.trim().is_empty() || key.name.len() > 128 {
            return invalid("the key name must have 1 to 128 characters");
        }
        if key.service.chars().chain(key.name.chars()).any(char::is_control) {
            return invalid("the service id and key name must have no control characters");
        }
        check_value(&key.secret)?;
        check_limits(key.rate_per_caller, key.rate_total)?;
        check_quotas([key.daily_per_caller, key.daily_total], [key.daily_tokens_per_caller, key.daily_tokens_total])?;
        check_schema(key.request_schema.as_ref())?;
        let destinations = normalize_destinations(&key.destinations)?;
        let now = now_ms();
        let created = match self.db.call(|s| s.get_key(&key.service, &key.name)).await? {
            Some(existing) if replace => existing.created,
            _ => now,
        };
        let record = KeyRecord {
            sealed_secret: self.master.seal(&context(&key.service, &key.name), &key.secret),
            service: key.service,
            name: key.name,
            locked: key.locked,
            destinations,
            positions: key.positions,
            rate_per_caller: key.rate_per_caller,
            rate_total: key.rate_total,
            created,
            updated: now,
            request_schema: key.request_schema,
            daily_per_caller: key.daily_per_caller,
            daily_total: key.daily_total,
            daily_tokens_per_caller: key.daily_tokens_per_caller,
            daily_tokens_total: key.daily_tokens_total,
        };
        self.db.call(|s| s.insert_key(&record, replace)).await?;
        Ok(self.info(record))
    }

    /// Changes a key in place.
    pub async fn edit(&self, service: &str, name: &str, edit: KeyEdit) -> Result<KeyInfo, KeyringError> {
        let mut key = self
            .db
            .call(|s| s.get_key(service, name))
            .await?
            .ok_or_else(|| KeyringError::NotFound { service: service.to_owned(), name: name.to_owned() })?;
        if let Some(secret) = &edit.secret {
            check_value(secret)?;
            key.sealed_secret = self.master.seal(&context(service, name), secret);
        }
        if let Some(locked) = edit.locked {
            key.locked = locked;
        }
        if let Some(destinations) = &edit.destinations {
            key.destinations = normalize_destinations(destinations)?;
        }
        if let Some(positions) = edit.positions {
            key.positions = positions;
        }
        if let Some(limit) = edit.rate_per_caller {
            key.rate_per_caller = limit;
        }
        if let Some(limit) = edit.rate_total {
            key.rate_total = limit;
        }
        if let Some(schema) = edit.request_schema {
            check_schema(schema.as_ref())?;
            key.request_schema = schema;
        }
        if let Some(quota) = edit.daily_per_caller {
            key.daily_per_caller = quota;
        }
        if let Some(quota) = edit.daily_total {
            key.daily_total = quota;
        }
        if let Some(budget) = edit.daily_tokens_per_caller {
            key.daily_tokens_per_caller = budget;
        }
        if let Some(budget) = edit.daily_tokens_total {
            key.daily_tokens_total = budget;
        }
        check_limits(key.rate_per_caller, key.rate_total)?;
        check_quotas([key.daily_per_caller, key.daily_total], [key.daily_tokens_per_caller, key.daily_tokens_total])?;
        key.updated = now_ms();
        self.db.call(|s| s.insert_key(&key, true)).await?;
        Ok(self.info(key))
    }

    pub async fn list(&self, service: Option<&str>) -> Result<Vec<KeyInfo>, KeyringError> {
        Ok(self.db.call(|s| s.list_keys(service)).await?.into_iter().map(|k| self.info(k)).collect())
    }

    pub async fn remove(&self, service: &str, name: &str) -> Result<bool, KeyringError> {
        Ok(self.db.call(|s| s.remove_key(service, name)).await?)
    }

    /// The key and its opened value, read fresh from the store (so a change made by the CLI
    /// on the same data directory is seen at once).
    pub async fn open(&self, service: &str, name: &str) -> Result<Option<(KeyRecord, String)>, KeyringError> {
        let Some(key) = self.get(service, name).await? else {
            return Ok(None);
        };
        let secret = self.unseal(&key)?;
        Ok(Some((key, secret)))
    }

    /// A key's value, from the key as read.
    pub fn unseal(&self, key: &KeyRecord) -> Result<String, KeyringError> {
        Ok(self.master.open(&context(&key.service, &key.name), &key.sealed_secret)?)
    }

    /// The key without its value.
    pub async fn get(&self, service: &str, name: &str) -> Result<Option<KeyRecord>, KeyringError> {
        Ok(self.db.call(|s| s.get_key(service, name)).await?)
    }

    /// The key for checking a new request against. Where the store keeps a key generation,
    /// a key read before under the current generation is taken from memory — no trip to the
    /// store — and the request is then accepted only if the generation still holds when its
    /// insert commits. A refusal must not rest on a remembered key: see `remembered`.
    pub async fn for_acceptance(&self, service: &str, name: &str) -> Result<AcceptanceKey, KeyringError> {
        let Some(generation) = self.db.store().key_generation() else {
            return Ok(AcceptanceKey { key: self.get(service, name).await?, generation: None, remembered: false });
        };
        let id = [service, "\0", name].concat();
        let remember = |key: &KeyRecord| (key.clone(), generation);
        if let Some((key, _)) = self.remembered.lock().unwrap_or_else(|e| e.into_inner()).get(&id).filter(|(_, g)| *g == generation) {
            return Ok(AcceptanceKey { key: Some(key.clone()), generation: Some(generation), remembered: true });
        }
        // The generation was taken before this read: a key changed while it ran is not kept
        // under a number that outlives the change.
        let key = self.get(service, name).await?;
        let mut remembered = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        match &key {
            Some(key) => remembered.insert(id, remember(key)),
            None => remembered.remove(&id),
        };
        Ok(AcceptanceKey { key, generation: Some(generation), remembered: false })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_show_at_most_four_characters_of_long_values() {
        assert_eq!(hint("sk-abcdefgh1234"), "1234");
        assert_eq!(hint("short"), "");
    }

    #[test]
    fn edits_parse_null_as_removing_a_limit() {
        let e: KeyEdit = serde_json::from_str(r#"{"rate_total": null, "locked": true}"#).unwrap();
        assert_eq!((e.rate_total, e.rate_per_caller, e.locked), (Some(None), None, Some(true)));
        assert!(serde_json::from_str::<KeyEdit>(r#"{"secrt": "x"}"#).is_err());
    }
}
