//! `localStorage` and `sessionStorage`. Either may be missing or throw on access (privacy
//! settings, a sandboxed frame) or on writing (a full quota): the SDK then goes on without it,
//! so every call here answers `None` or does nothing rather than fail.

use web_sys::Storage;

#[derive(Clone, Copy)]
pub enum Area {
    /// Kept across visits: the public identifier.
    Local,
    /// Kept for the tab: a form's response on its way to the action page.
    Session,
}

fn open(area: Area) -> Option<Storage> {
    let window = web_sys::window()?;
    let storage = match area {
        Area::Local => window.local_storage(),
        Area::Session => window.session_storage(),
    };
    storage.ok().flatten()
}

pub fn get(area: Area, key: &str) -> Option<String> {
    open(area)?.get_item(key).ok().flatten()
}

/// Whether the value was kept.
pub fn set(area: Area, key: &str, value: &str) -> bool {
    open(area).is_some_and(|s| s.set_item(key, value).is_ok())
}

pub fn remove(area: Area, key: &str) {
    if let Some(storage) = open(area) {
        let _ = storage.remove_item(key);
    }
}
