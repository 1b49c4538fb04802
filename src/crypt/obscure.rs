//! rclone's "obscured" password form (`rclone obscure`, spec §3): AES-256-CTR under a
//! public key, IV first, base64 URL-safe unpadded.
//!
//! This is obfuscation, not protection; it exists only because rclone config files and
//! `RCLONE_CONFIG_*` variables carry passwords this way, and cloudsync reads and writes them.

use aes::Aes256;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use super::CryptError;
use super::encoding::{base64_decode, base64_encode};

/// rclone's fixed obscuring key (`fs/config/obscure`).
const OBSCURE_KEY: [u8; 32] = [
    0x9c, 0x93, 0x5b, 0x48, 0x73, 0x0a, 0x55, 0x4d, 0x6b, 0xfd, 0x7c, 0x63, 0xc8, 0x86, 0xa9, 0x2b, 0xd3, 0x90, 0x19,
    0x8e, 0xb8, 0x12, 0x8a, 0xfb, 0xf4, 0xde, 0x16, 0x2b, 0x8b, 0x95, 0xf6, 0x38,
];

const IV_LEN: usize = 16;

/// Obscures `plain` with a fresh random IV, as `rclone obscure` does.
pub fn obscure(plain: &str) -> Result<String, CryptError> {
    let mut iv = [0u8; IV_LEN];
    getrandom::getrandom(&mut iv).map_err(|e| CryptError::ObscureRandom(e.to_string()))?;
    Ok(obscure_with_iv(plain, &iv))
}

/// Obscures with a chosen IV: deterministic output for tests.
pub(crate) fn obscure_with_iv(plain: &str, iv: &[u8; IV_LEN]) -> String {
    let mut buf = Vec::with_capacity(IV_LEN + plain.len());
    buf.extend_from_slice(iv);
    buf.extend_from_slice(plain.as_bytes());
    aes_ctr(iv, &mut buf[IV_LEN..]);
    let out = base64_encode(&buf);
    buf.zeroize();
    out
}

/// Reveals an obscured value that must be UTF-8 text.
pub fn reveal(obscured: &str) -> Result<String, CryptError> {
    let bytes = reveal_bytes(obscured)?;
    String::from_utf8(bytes).map_err(|e| {
        let mut bytes = e.into_bytes();
        bytes.zeroize();
        CryptError::RevealNotUtf8
    })
}

/// Reveals an obscured value as raw bytes (rclone does not require UTF-8; scrypt takes bytes).
pub fn reveal_bytes(obscured: &str) -> Result<Vec<u8>, CryptError> {
    let mut buf = base64_decode(obscured.as_bytes()).map_err(CryptError::RevealBase64)?;
    if buf.len() < IV_LEN {
        return Err(CryptError::RevealTooShort);
    }
    let mut iv = [0u8; IV_LEN];
    iv.copy_from_slice(&buf[..IV_LEN]);
    aes_ctr(&iv, &mut buf[IV_LEN..]);
    let plain = buf[IV_LEN..].to_vec();
    buf.zeroize();
    Ok(plain)
}

/// AES-256-CTR with the obscure key: the IV is the whole initial counter block, incremented
/// as a 128-bit big-endian integer (Go's `cipher.NewCTR`).
fn aes_ctr(iv: &[u8; IV_LEN], data: &mut [u8]) {
    let cipher = Aes256::new(&Array::from(OBSCURE_KEY));
    let mut counter = u128::from_be_bytes(*iv);
    for chunk in data.chunks_mut(IV_LEN) {
        let mut block = Array::from(counter.to_be_bytes());
        cipher.encrypt_block(&mut block);
        for (d, k) in chunk.iter_mut().zip(block.iter()) {
            *d ^= k;
        }
        counter = counter.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Spec §13.1, deterministic rows.
    #[test]
    fn obscure_with_fixed_iv() {
        let rows = [
            ("", b"aaaaaaaaaaaaaaaa", "YWFhYWFhYWFhYWFhYWFhYQ"),
            ("potato", b"aaaaaaaaaaaaaaaa", "YWFhYWFhYWFhYWFhYWFhYXMaGgIlEQ"),
            ("potato", b"bbbbbbbbbbbbbbbb", "YmJiYmJiYmJiYmJiYmJiYp3gcEWbAw"),
        ];
        for (plain, iv, want) in rows {
            assert_eq!(obscure_with_iv(plain, iv), want, "obscure {plain:?}");
            assert_eq!(reveal(want).unwrap(), plain, "reveal {want:?}");
        }
    }

    // Spec §13.1, real `rclone obscure` outputs.
    #[test]
    fn reveal_real_rclone_outputs() {
        let rows = [
            ("shPcIISYhyqQMNITbRGghuZdrdP0KA", "potato"),
            ("Uu-AArJ7HIWVRBiEpU5hHwXQRaWVhw", "potato"),
            ("M6gT_I7hUYMMCF_qIQvOJA-tFIY4Ig", "potato"),
            ("zaDA1I0UUoLfGc0ZsGZ_iaRXOyj37qU", "sausage"),
        ];
        for (obscured, plain) in rows {
            assert_eq!(reveal(obscured).unwrap(), plain, "reveal {obscured:?}");
        }
    }

    // Spec §13.1, reveal errors.
    #[test]
    fn reveal_errors() {
        let rows = [
            (
                "YmJiYmJiYmJiYmJiYmJiYp*gcEWbAw",
                "base64 decode failed when revealing password - is it obscured?: \
                 illegal base64 data at input byte 22",
            ),
            ("aGVsbG8", "input too short when revealing password - is it obscured?"),
            ("", "input too short when revealing password - is it obscured?"),
        ];
        for (input, want) in rows {
            assert_eq!(reveal(input).unwrap_err().to_string(), want, "reveal {input:?}");
        }
    }

    #[test]
    fn random_obscure_round_trips() {
        for plain in ["", "potato", "a longer password with ünïcödé, more than one AES block"] {
            let a = obscure(plain).unwrap();
            let b = obscure(plain).unwrap();
            assert_ne!(a, b, "IV must be random");
            assert_eq!(reveal(&a).unwrap(), plain);
            assert_eq!(reveal(&b).unwrap(), plain);
        }
    }

    #[test]
    fn reveal_non_utf8() {
        // An obscured 0xFF byte: reveal refuses it, reveal_bytes returns it.
        let mut buf = vec![b'a'; IV_LEN];
        buf.push(0xFF);
        let iv: [u8; IV_LEN] = [b'a'; IV_LEN];
        aes_ctr(&iv, &mut buf[IV_LEN..]);
        let obscured = base64_encode(&buf);
        assert_eq!(reveal(&obscured).unwrap_err(), CryptError::RevealNotUtf8);
        assert_eq!(reveal_bytes(&obscured).unwrap(), vec![0xFF]);
    }

    #[test]
    fn reveal_garbage_never_panics() {
        for s in ["=", "====", "a", "ab", "\u{0}", "é", "YWFh\nYWFh", "-_-_-_-_-_-_-_-_-_-_-_-_"] {
            let _ = reveal(s);
            let _ = reveal_bytes(s);
        }
    }
}
