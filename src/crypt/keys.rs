//! Crypt key material: scrypt derivation of the data key, name key and name tweak from the
//! password and salt (`password2`), exactly as rclone's `Cipher.Key` (spec §4).
//!
//! Derivation costs 16 MiB and ~50 ms, so callers derive once per job and share the [`Keys`];
//! the key bytes are wiped when it is dropped.

use zeroize::Zeroize;

use super::CryptError;
use super::obscure::reveal;

/// rclone's built-in salt, used when `password2` is empty.
pub const DEFAULT_SALT: [u8; 16] =
    [0xA8, 0x0D, 0xF4, 0x3A, 0x8F, 0xBD, 0x03, 0x08, 0xA7, 0xCA, 0xB8, 0x3E, 0x58, 0x1F, 0x86, 0xB1];

const SCRYPT_LOG_N: u8 = 14;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
const KEY_LEN: usize = 32 + 32 + 16;

/// The three secrets of a crypt remote.
#[derive(Clone)]
pub struct Keys {
    data: [u8; 32],
    name: [u8; 32],
    name_tweak: [u8; 16],
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.data.zeroize();
        self.name.zeroize();
        self.name_tweak.zeroize();
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

impl Keys {
    /// Derives the keys from a plaintext password and salt; `salt == ""` selects rclone's
    /// built-in salt. An empty password gives all-zero keys without running scrypt, as rclone
    /// does (its tests rely on it); configuration must reject empty passwords before this.
    pub fn derive(password: &str, salt: &str) -> Result<Keys, CryptError> {
        Keys::derive_bytes(password.as_bytes(), salt.as_bytes())
    }

    /// [`Keys::derive`] for passwords that are not UTF-8: rclone hands the raw bytes to
    /// scrypt, so a revealed password must not be re-encoded.
    pub fn derive_bytes(password: &[u8], salt: &[u8]) -> Result<Keys, CryptError> {
        if password.is_empty() {
            return Ok(Keys::zero());
        }
        let salt = if salt.is_empty() { &DEFAULT_SALT[..] } else { salt };
        let params = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)
            .map_err(|e| CryptError::KeyDerivation(e.to_string()))?;
        let mut out = [0u8; KEY_LEN];
        scrypt::scrypt(password, salt, &params, &mut out).map_err(|e| CryptError::KeyDerivation(e.to_string()))?;
        let keys = Keys::from_bytes(&out);
        out.zeroize();
        Ok(keys)
    }

    /// Keys from a crypt remote's configuration values, which rclone stores obscured:
    /// `password` (required) and `password2` (optional salt, "" = default salt).
    ///
    /// Unlike rclone, a password that reveals to the empty string is rejected too: it would
    /// silently select the all-zero test keys.
    pub fn from_obscured(password: &str, password2: &str) -> Result<Keys, CryptError> {
        if password.is_empty() {
            return Err(CryptError::PasswordNotSet);
        }
        let mut plain =
            reveal(password).map_err(|e| CryptError::BadConfigPassword { which: "password", source: Box::new(e) })?;
        if plain.is_empty() {
            return Err(CryptError::PasswordNotSet);
        }
        let mut salt = if password2.is_empty() {
            String::new()
        } else {
            reveal(password2).map_err(|e| CryptError::BadConfigPassword { which: "password2", source: Box::new(e) })?
        };
        let keys = Keys::derive(&plain, &salt);
        plain.zeroize();
        salt.zeroize();
        keys
    }

    /// The all-zero keys that rclone uses for an empty password (test vectors use them).
    pub fn zero() -> Keys {
        Keys { data: [0; 32], name: [0; 32], name_tweak: [0; 16] }
    }

    /// Keys from the 80 bytes of scrypt output: data key, name key, name tweak.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Keys {
        let mut keys = Keys::zero();
        keys.data.copy_from_slice(&bytes[..32]);
        keys.name.copy_from_slice(&bytes[32..64]);
        keys.name_tweak.copy_from_slice(&bytes[64..]);
        keys
    }

    /// The XSalsa20-Poly1305 key for file contents.
    pub fn data_key(&self) -> &[u8; 32] {
        &self.data
    }

    /// The AES-256 key for EME name encryption (its byte sum also drives obfuscation).
    pub fn name_key(&self) -> &[u8; 32] {
        &self.name
    }

    /// The EME tweak for name encryption.
    pub fn name_tweak(&self) -> &[u8; 16] {
        &self.name_tweak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // Spec §13.2. scrypt is slow in debug builds, so all rows share one test.
    #[test]
    fn derivation_vectors() {
        let rows: &[(&str, &str, &str, &str, &str)] = &[
            ("", "", &"00".repeat(32), &"00".repeat(32), &"00".repeat(16)),
            (
                "potato",
                "",
                "7455c71ab17c865b8471f47b79acb07eb31d5678b80c7e2eaf4fc8066a9ee468",
                "765da27ab15d77f95796711f7b93ad63bbb484072e7180a8d17a9bbec14270d0",
                "c18d5932f55b2828c5e1e87215520310",
            ),
            (
                "Potato",
                "",
                "aeea6ad347df75b963ce12f57623e946d42ed8bf3e928b39243794133e5ef75e",
                "54f7026e8afc560a86636aab2c9c5162e51a122351836eaf50420f981c860a19",
                "f8c1b6272d529b4a8fdaeb424a28ddf3",
            ),
            (
                "potato",
                "sausage",
                "8e9b6b99f8690467a071f9cb92d0aa787f8ff178bec96f999fd5206e644a1b50",
                "3ea95ef681782dc9d9955d225bfd442c6f5d6897b029015c6f462e2a9dae2ce3",
                "f17fd7141d65274f363fc2a04dd2148a",
            ),
            (
                "potato",
                "Sausage",
                "da818c67ef110fc8d5c8624b7fe29e3535b08d798489accba0ff0272031a5e64",
                "02817e7bea99815ad02db96448b028277c20b4d4a468ad4e5c290f79efeedb3b",
                "9ab50b3dcb605955a54de6b6470323e2",
            ),
        ];
        for (pw, salt, data, name, tweak) in rows {
            let k = Keys::derive(pw, salt).unwrap();
            assert_eq!(hex(k.data_key()), *data, "data key for {pw:?}/{salt:?}");
            assert_eq!(hex(k.name_key()), *name, "name key for {pw:?}/{salt:?}");
            assert_eq!(hex(k.name_tweak()), *tweak, "tweak for {pw:?}/{salt:?}");
        }
    }

    #[test]
    fn from_obscured_config_values() {
        // Real `rclone obscure` outputs (§13.1): potato / sausage.
        let k = Keys::from_obscured("shPcIISYhyqQMNITbRGghuZdrdP0KA", "zaDA1I0UUoLfGc0ZsGZ_iaRXOyj37qU").unwrap();
        assert_eq!(hex(k.data_key()), "8e9b6b99f8690467a071f9cb92d0aa787f8ff178bec96f999fd5206e644a1b50");
        assert_eq!(Keys::from_obscured("", "").unwrap_err(), CryptError::PasswordNotSet);
        // The obscured empty string.
        assert_eq!(Keys::from_obscured("YWFhYWFhYWFhYWFhYWFhYQ", "").unwrap_err(), CryptError::PasswordNotSet);
        let e = Keys::from_obscured("aGVsbG8", "").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to decrypt password: input too short when revealing password - is it obscured?"
        );
        let e = Keys::from_obscured("shPcIISYhyqQMNITbRGghuZdrdP0KA", "!").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to decrypt password2: base64 decode failed when revealing password - \
             is it obscured?: illegal base64 data at input byte 0"
        );
    }

    #[test]
    fn debug_does_not_leak() {
        let k = Keys::from_bytes(&[0x41; KEY_LEN]);
        assert_eq!(format!("{k:?}"), "Keys(<redacted>)");
    }
}
