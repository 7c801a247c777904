//! Managing client-secret keys: what the CLI (and the admin API) call. Values go in sealed and
//! never come back out, except to the engine at the moment of sending.

use crate::clock::now_ms;
use crate::secrets::{MasterKey, SecretError};
use crate::store::{Db, KeyRecord, StoreError};
use serde::Serialize;
use std::sync::Arc;

pub struct Keyring {
    db: Db,
    master: Arc<MasterKey>,
}

/// A key as shown to operators: never its value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyInfo {
    pub service: String,
    pub name: String,
    pub locked: bool,
    pub destinations: Vec<String>,
    pub created: u64,
    pub updated: u64,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub service: String,
    pub name: String,
    pub secret: String,
    pub locked: bool,
    pub destinations: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

fn context(service: &str, name: &str) -> String {
    format!("{service}\0{name}")
}

impl From<KeyRecord> for KeyInfo {
    fn from(k: KeyRecord) -> Self {
        KeyInfo { service: k.service, name: k.name, locked: k.locked, destinations: k.destinations, created: k.created, updated: k.updated }
    }
}

impl Keyring {
    pub fn new(db: Db, master: Arc<MasterKey>) -> Keyring {
        Keyring { db, master }
    }

    /// Saves a key; `replace` lets it overwrite one of the same name.
    pub fn add(&self, key: NewKey, replace: bool) -> Result<KeyInfo, KeyringError> {
        let invalid = |m: &str| Err(KeyringError::Invalid(m.to_owned()));
        if key.service.trim().is_empty() {
            return invalid("the service id must not be empty");
        }
        if key.name.trim().is_empty() {
            return invalid("the key name must not be empty");
        }
        if key.secret.is_empty() {
            return invalid("the secret value must not be empty");
        }
        let destinations = key
            .destinations
            .iter()
            .map(|d| crate::destination::normalize(d).map_err(KeyringError::Invalid))
            .collect::<Result<Vec<_>, _>>()?;
        let now = now_ms();
        let created = match self.db.blocking().get_key(&key.service, &key.name)? {
            Some(existing) if replace => existing.created,
            _ => now,
        };
        let record = KeyRecord {
            sealed_secret: self.master.seal(&context(&key.service, &key.name), &key.secret),
            service: key.service,
            name: key.name,
            locked: key.locked,
            destinations,
            created,
            updated: now,
        };
        self.db.blocking().insert_key(&record, replace)?;
        Ok(record.into())
    }

    pub fn list(&self, service: Option<&str>) -> Result<Vec<KeyInfo>, KeyringError> {
        Ok(self.db.blocking().list_keys(service)?.into_iter().map(KeyInfo::from).collect())
    }

    pub fn remove(&self, service: &str, name: &str) -> Result<bool, KeyringError> {
        Ok(self.db.blocking().remove_key(service, name)?)
    }

    /// The key and its opened value, read fresh from the store (so a change made by the CLI
    /// on the same data directory is seen at once).
    pub async fn open(&self, service: &str, name: &str) -> Result<Option<(KeyRecord, String)>, KeyringError> {
        let (s, n) = (service.to_owned(), name.to_owned());
        let Some(key) = self.db.call(move |store| store.get_key(&s, &n)).await? else {
            return Ok(None);
        };
        let secret = self.master.open(&context(&key.service, &key.name), &key.sealed_secret)?;
        Ok(Some((key, secret)))
    }

    /// The key without its value (for checks at acceptance time).
    pub async fn get(&self, service: &str, name: &str) -> Result<Option<KeyRecord>, KeyringError> {
        let (s, n) = (service.to_owned(), name.to_owned());
        Ok(self.db.call(move |store| store.get_key(&s, &n)).await?)
    }
}
