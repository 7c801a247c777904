//! The master key, kept in a file beside (never inside) the database, and the sealing of
//! secret values with it (XChaCha20-Poly1305; the key's service and name are bound in as
//! associated data, so a sealed value cannot be moved to another key).

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write;
use std::path::Path;

pub const MASTER_KEY_FILE: &str = "master.key";
const NONCE_LEN: usize = 24;

pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("master key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("master key file {0} must hold exactly 32 bytes")]
    BadKeyFile(String),
    #[error("a sealed secret could not be opened (wrong master key or damaged data)")]
    Open,
}

impl MasterKey {
    /// Loads `<data_dir>/master.key`, creating it (32 random bytes, mode 0600) on first run.
    pub fn load_or_create(data_dir: &Path) -> Result<MasterKey, SecretError> {
        let path = data_dir.join(MASTER_KEY_FILE);
        let shown = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = XChaCha20Poly1305::generate_key(&mut OsRng);
                write_private(&path, &key).map_err(|e| SecretError::Io(shown.clone(), e))?;
                key.to_vec()
            }
            Err(e) => return Err(SecretError::Io(shown, e)),
        };
        if bytes.len() != 32 {
            return Err(SecretError::BadKeyFile(shown));
        }
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SecretError::BadKeyFile(shown))?;
        Ok(MasterKey { cipher })
    }

    /// `nonce || ciphertext` of `secret`, bound to `context`.
    pub fn seal(&self, context: &str, secret: &str) -> Vec<u8> {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: context.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption does not fail for in-memory data");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<String, SecretError> {
        if sealed.len() < NONCE_LEN {
            return Err(SecretError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let plain =
            self.cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() }).map_err(|_| SecretError::Open)?;
        String::from_utf8(plain).map_err(|_| SecretError::Open)
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    use chacha20poly1305::aead::rand_core::RngCore;
    let mut bytes = vec![0u8; n];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The admin token in `path`, created (32 random bytes as hex, mode 0600) when missing.
pub fn load_or_create_token(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(token) => Ok(token.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_hex(32);
            write_private(path, token.as_bytes())?;
            Ok(token)
        }
        Err(e) => Err(e),
    }
}

/// Creates the data directory (and its parents) readable by this user only. An existing
/// directory is left as the operator set it.
pub fn create_data_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes `path` readable and writable by this user only (creating it empty when missing).
pub fn make_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_file_once_and_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load_or_create(dir.path()).unwrap();
        let sealed = a.seal("svc\0openai", "sk-123");
        let b = MasterKey::load_or_create(dir.path()).unwrap();
        assert_eq!(b.open("svc\0openai", &sealed).unwrap(), "sk-123");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn sealed_values_hide_the_secret_and_stay_bound_to_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::load_or_create(dir.path()).unwrap();
        let sealed = key.seal("svc\0a", "sk-very-secret");
        assert!(!sealed.windows(6).any(|w| w == b"sk-ver"));
        assert!(key.open("svc\0b", &sealed).is_err());
        assert!(key.open("svc\0a", &sealed[..10]).is_err());
    }

    #[test]
    fn refuses_a_damaged_key_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MASTER_KEY_FILE), b"short").unwrap();
        assert!(matches!(MasterKey::load_or_create(dir.path()), Err(SecretError::BadKeyFile(_))));
    }
}
