//! Secrets at rest (truenas-cloudsync.md §12.2): a 32-byte seed file and XChaCha20-Poly1305.
//!
//! Every secret field is stored as `cs1:` + base64(nonce(24) || ciphertext || tag(16)),
//! with the associated data `cloudsync/v1/<field>` so that a value copied into another
//! field does not decrypt. A wrong or missing seed is an error for the operations that
//! need a secret — never a reason to delete anything (TrueNAS wipes every credential).
//! The key is kept in locked memory where the OS allows it and wiped on drop; it is never
//! logged (`Debug` prints nothing of it).

use crate::error::{Error, Kind, Result};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroize;

pub const PREFIX: &str = "cs1:";
/// The message every operation that needs a secret fails with when the seed is wrong.
pub const SEED_MISMATCH: &str = "Stored secrets cannot be decrypted: the secret seed does not match";
const MAX_PLAINTEXT: usize = 1024 * 1024;
const CHECK_TEXT: &str = "cloudsync-seed-check";

/// The fields secrets are bound to (their associated data).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// JSON of a credential's provider fields, without `type`.
    CredentialProvider,
    TaskEncryptionPassword,
    TaskEncryptionSalt,
    SeedCheck,
    /// A keychain entry's private key (OpenSSH text).
    KeychainPrivateKey,
}

impl Field {
    fn aad(self) -> &'static [u8] {
        match self {
            Field::CredentialProvider => b"cloudsync/v1/credential.provider",
            Field::TaskEncryptionPassword => b"cloudsync/v1/task.encryption_password",
            Field::TaskEncryptionSalt => b"cloudsync/v1/task.encryption_salt",
            Field::SeedCheck => b"cloudsync/v1/seed-check",
            Field::KeychainPrivateKey => b"cloudsync/v1/keychain.private_key",
        }
    }
}

/// The key, in locked memory, wiped on drop.
struct Key(Box<[u8; 32]>);

impl Key {
    fn new(bytes: [u8; 32]) -> Key {
        let k = Key(Box::new(bytes));
        // SAFETY: mlock only pins the pages of memory we own; failure is harmless.
        unsafe {
            libc::mlock(k.0.as_ptr().cast(), 32);
        }
        k
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
        // SAFETY: the same range that was locked in `new`.
        unsafe {
            libc::munlock(self.0.as_ptr().cast(), 32);
        }
    }
}

/// Encrypts and decrypts secret fields with the seed.
pub struct Secrets {
    key: Option<Key>,
    seed_path: PathBuf,
    /// Why there is no key: the seed file is missing, or it is not the one the store's
    /// secrets were written with.
    missing: bool,
}

/// The message when the seed file is not there at all.
pub fn seed_missing(path: &Path) -> String {
    format!(
        "Stored secrets cannot be decrypted: the secret seed file {} is missing (restore it from a backup; nothing is deleted)",
        path.display()
    )
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets").field("seed_path", &self.seed_path).field("loaded", &self.key.is_some()).finish()
    }
}

impl Secrets {
    /// Load the seed at `path`. With `create`, a missing seed is created (32 bytes from the
    /// OS CSPRNG, mode 0600, written to a temporary file, synced and renamed into place).
    /// Without it, a missing seed leaves secrets unavailable.
    pub fn load(path: &Path, create: bool) -> Result<Secrets> {
        match std::fs::read(path) {
            Ok(mut bytes) => {
                if bytes.len() != 32 {
                    bytes.zeroize();
                    return Err(Error::new(Kind::Usage, "the secret seed file must hold exactly 32 bytes")
                        .with_path(path.display().to_string()));
                }
                let mut k = [0u8; 32];
                k.copy_from_slice(&bytes);
                bytes.zeroize();
                let key = Key::new(k);
                k.zeroize();
                Ok(Secrets { key: Some(key), seed_path: path.to_path_buf(), missing: false })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut k = [0u8; 32];
                getrandom::getrandom(&mut k).map_err(|e| Error::other(format!("no random numbers: {e}")))?;
                if let Err(e) = write_seed(path, &k) {
                    k.zeroize();
                    if path.exists() {
                        return Secrets::load(path, false); // another process won the race
                    }
                    return Err(e);
                }
                let key = Key::new(k);
                k.zeroize();
                Ok(Secrets { key: Some(key), seed_path: path.to_path_buf(), missing: false })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Secrets { key: None, seed_path: path.to_path_buf(), missing: true })
            }
            Err(e) => Err(Error::io("read the secret seed", path.display(), e)),
        }
    }

    /// A seed given as bytes (imports, tests).
    pub fn from_seed(seed: [u8; 32]) -> Secrets {
        Secrets { key: Some(Key::new(seed)), seed_path: PathBuf::new(), missing: false }
    }

    /// No usable key: the seed at `path` is not the one the secrets were written with.
    pub fn mismatched(path: &Path) -> Secrets {
        Secrets { key: None, seed_path: path.to_path_buf(), missing: false }
    }

    /// The error of an operation that needs a secret while there is no key.
    fn unavailable(&self) -> Error {
        if self.missing {
            Error::new(Kind::Permission, seed_missing(&self.seed_path))
        } else {
            Error::new(Kind::Permission, SEED_MISMATCH)
        }
    }

    pub fn seed_path(&self) -> &Path {
        &self.seed_path
    }

    pub fn is_available(&self) -> bool {
        self.key.is_some()
    }

    fn cipher(&self) -> Result<XChaCha20Poly1305> {
        let key = self.key.as_ref().ok_or_else(|| self.unavailable())?;
        Ok(XChaCha20Poly1305::new(&(*key.0).into()))
    }

    /// Encrypt a secret for `field`. The empty string stays empty.
    pub fn encrypt(&self, field: Field, plaintext: &str) -> Result<String> {
        if plaintext.is_empty() {
            return Ok(String::new());
        }
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(Error::usage("a secret may be at most 1 MiB"));
        }
        let mut nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::other(format!("no random numbers: {e}")))?;
        let ct = self
            .cipher()?
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext.as_bytes(), aad: field.aad() })
            .map_err(|_| Error::other("encryption failed"))?;
        let mut blob = Vec::with_capacity(24 + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(blob)))
    }

    /// Decrypt a stored secret of `field`. An authentication failure is an error, never an
    /// empty value.
    pub fn decrypt(&self, field: Field, stored: &str) -> Result<String> {
        if stored.is_empty() {
            return Ok(String::new());
        }
        let b64 = stored
            .strip_prefix(PREFIX)
            .ok_or_else(|| Error::new(Kind::Corrupted, "a stored secret is not in cloudsync's format"))?;
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Error::new(Kind::Corrupted, "a stored secret is damaged"))?;
        if blob.len() < 24 + 16 {
            return Err(Error::new(Kind::Corrupted, "a stored secret is damaged"));
        }
        let (nonce, ct) = blob.split_at(24);
        let nonce: [u8; 24] =
            nonce.try_into().map_err(|_| Error::new(Kind::Corrupted, "a stored secret is damaged"))?;
        let mut plain = self
            .cipher()?
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: field.aad() })
            .map_err(|_| Error::new(Kind::Permission, SEED_MISMATCH))?;
        let text = String::from_utf8(std::mem::take(&mut plain)).map_err(|e| {
            let mut v = e.into_bytes();
            v.zeroize();
            Error::new(Kind::Corrupted, "a stored secret is not text")
        })?;
        Ok(text)
    }

    /// The seed-check record to store.
    pub fn make_check(&self) -> Result<String> {
        self.encrypt(Field::SeedCheck, CHECK_TEXT)
    }

    /// Whether this seed is the one the check record was made with.
    pub fn verify_check(&self, stored: &str) -> bool {
        self.decrypt(Field::SeedCheck, stored).is_ok_and(|t| t == CHECK_TEXT)
    }
}

fn write_seed(path: &Path, seed: &[u8; 32]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir.display(), e))?;
    }
    let mut rnd = [0u8; 6];
    let _ = getrandom::getrandom(&mut rnd);
    let tmp = path.with_extension(format!("tmp.{}", hex::encode(rnd)));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(seed)?;
        f.sync_all()?;
        // Never replace a seed: a hard link fails if another process created one first,
        // and the caller then loads that one.
        std::fs::hard_link(&tmp, path)?;
        std::fs::remove_file(&tmp)?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io("create the secret seed", path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_bound_to_the_field() {
        let s = Secrets::from_seed([7; 32]);
        let stored = s.encrypt(Field::TaskEncryptionPassword, "hunter2").unwrap();
        assert!(stored.starts_with("cs1:"));
        assert!(!stored.contains("hunter2"));
        assert_eq!(s.decrypt(Field::TaskEncryptionPassword, &stored).unwrap(), "hunter2");
        // Copied into another field: does not decrypt.
        let e = s.decrypt(Field::TaskEncryptionSalt, &stored).unwrap_err();
        assert_eq!(e.to_string(), SEED_MISMATCH);
        // Two encryptions differ (random nonces).
        assert_ne!(stored, s.encrypt(Field::TaskEncryptionPassword, "hunter2").unwrap());
        assert_eq!(s.encrypt(Field::TaskEncryptionSalt, "").unwrap(), "");
        assert_eq!(s.decrypt(Field::TaskEncryptionSalt, "").unwrap(), "");
    }

    #[test]
    fn wrong_seed_and_garbage_are_errors_not_empty_values() {
        let a = Secrets::from_seed([1; 32]);
        let b = Secrets::from_seed([2; 32]);
        let stored = a.encrypt(Field::CredentialProvider, "{\"k\":\"v\"}").unwrap();
        assert_eq!(b.decrypt(Field::CredentialProvider, &stored).unwrap_err().to_string(), SEED_MISMATCH);
        assert!(!b.verify_check(&a.make_check().unwrap()));
        assert!(a.verify_check(&a.make_check().unwrap()));
        for bad in ["plain", "cs1:!!!", "cs1:AAAA", "AAECAwQFBgfF1tLMuXg1"] {
            assert!(a.decrypt(Field::CredentialProvider, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seed_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("etc/seed");
        let missing = Secrets::load(&p, false).unwrap();
        assert!(!missing.is_available());
        let e = missing.encrypt(Field::TaskEncryptionPassword, "x").unwrap_err().to_string();
        assert_eq!(e, seed_missing(&p));
        assert!(e.contains("is missing") && e.contains(&p.display().to_string()), "{e}");
        let s = Secrets::load(&p, true).unwrap();
        let stored = s.encrypt(Field::TaskEncryptionSalt, "salt").unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap().len(), 32);
        let again = Secrets::load(&p, true).unwrap();
        assert_eq!(again.decrypt(Field::TaskEncryptionSalt, &stored).unwrap(), "salt");
        std::fs::write(&p, b"short").unwrap();
        assert!(Secrets::load(&p, true).is_err());
        assert!(format!("{:?}", again).contains("loaded: true"));
    }
}
