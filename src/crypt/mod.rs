//! rclone `crypt` compatibility: everything needed to read and write data that stock rclone
//! (v1.60.1 and later) can read and write, byte for byte.
//!
//! This module owns the crypt error type and the module layout; the format itself lives in
//! the submodules (specification: `shared/spec/rclone-crypt.md`):
//! - [`mod@obscure`]: rclone's "obscured" password form (§3);
//! - [`keys`]: scrypt key derivation (§4);
//! - [`content`]: the file format, streaming encryption/decryption and random access (§5);
//! - [`names`]: file-name encryption, obfuscation, `off` mode and directory rules (§6–§9);
//! - `encoding` (private): base32hex, base64 and base32768, decoding exactly as Go does (§7);
//! - `version` (private): the `-vYYYY-MM-DD-HHMMSS-mmm` suffixes kept in clear (§9.3).
//!
//! Error texts are rclone's own wherever rclone defines them, because users compare them with
//! rclone's documentation and logs.

use std::fmt;
use std::io;

pub mod check;
pub mod content;
mod encoding;
pub mod keys;
pub mod names;
pub mod obscure;
pub mod remote;
mod salsa;
mod version;

pub use content::{
    BLOCK_DATA_SIZE, BLOCK_HEADER_SIZE, BLOCK_SIZE, DecryptReader, EncryptReader, FILE_HEADER_SIZE, FILE_MAGIC,
    FILE_NONCE_SIZE, Nonce, Underlying, calculate_underlying, decrypted_size, encrypted_size, read_nonce,
};
pub use keys::Keys;
pub use names::{NameCipher, NameEncoding, NameLimit, NameMode, check_name_length};
pub use obscure::{obscure, reveal, reveal_bytes};

/// Which PKCS#7 padding check failed (rclone `backend/crypt/pkcs7`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaddingError {
    /// The input was empty.
    NotPadded,
    /// The input length is not a multiple of the block size.
    NotAMultiple,
    /// The last byte is larger than the block size.
    TooLong,
    /// The last byte is zero.
    TooShort,
    /// The padding bytes differ from each other.
    NotAllTheSame,
}

/// Everything that can go wrong in this module.
///
/// `Display` gives rclone's message where rclone has one, so logs read the same as rclone's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptError {
    /// A decoded name is not a whole number of AES blocks.
    NotAMultipleOfBlocksize,
    /// A name decoded to zero bytes.
    TooShortAfterDecode,
    /// A name decoded to more than 2048 bytes.
    TooLongAfterDecode,
    /// Fewer than 32 bytes where a file header was expected.
    EncryptedFileTooShort,
    /// A trailing block of 1 to 16 bytes: a tag with no data.
    EncryptedFileBadHeader,
    /// The file does not start with `RCLONE\0\0`.
    EncryptedBadMagic,
    /// A block failed Poly1305 authentication (corruption or wrong key).
    EncryptedBadBlock,
    /// A base32 name ended in `=`.
    BadBase32Encoding,
    /// A name does not carry the `off`-mode suffix, or is not an obfuscated name.
    NotAnEncryptedFile,
    /// A plaintext offset lies beyond the end of the file.
    BadSeek,
    /// A name decrypted to bytes that are not UTF-8 (rclone would return them raw).
    BadDecryptUtf8,
    /// PKCS#7 unpadding of a decrypted name failed.
    BadPadding(PaddingError),
    /// base32 decoding failed at this byte offset (Go's `CorruptInputError`).
    IllegalBase32(usize),
    /// base64 decoding failed at this byte offset (Go's `CorruptInputError`).
    IllegalBase64(usize),
    /// base32768 decoding failed at this UTF-16 unit index (the message doubles it, as Go does).
    IllegalBase32768(usize),
    /// `reveal` could not base64-decode its input (offset of the bad byte).
    RevealBase64(usize),
    /// `reveal` input shorter than the 16-byte IV.
    RevealTooShort,
    /// A revealed value is not UTF-8; use [`reveal_bytes`] to get the raw bytes.
    RevealNotUtf8,
    /// Reading randomness for an obscured value failed.
    ObscureRandom(String),
    /// The crypt `password` option is empty.
    PasswordNotSet,
    /// Revealing the `password` (`which` = "password") or `password2` option failed.
    BadConfigPassword {
        /// The option name, `password` or `password2`.
        which: &'static str,
        /// Why revealing failed.
        source: Box<CryptError>,
    },
    /// Unknown `filename_encryption` value (lower-cased, as rclone reports it).
    UnknownMode(String),
    /// Unknown `filename_encoding` value (lower-cased, as rclone reports it).
    UnknownEncoding(String),
    /// The `suffix` option lacks its leading `.` (a warning: a `.` is prepended).
    SuffixMissingDot,
    /// Fewer than 24 random bytes could be read for a file nonce.
    ShortNonce(String),
    /// A plaintext name segment is too long for EME (more than 2047 bytes).
    SegmentTooLong(usize),
    /// An encrypted path has a segment longer than the destination backend allows.
    NameTooLong {
        /// The backend whose limit was exceeded.
        backend: String,
        /// The plaintext path, for the admin to recognise.
        path: String,
    },
    /// Key derivation failed (cannot happen with rclone's fixed parameters).
    KeyDerivation(String),
}

impl fmt::Display for PaddingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PaddingError::NotPadded => "bad PKCS#7 padding - not padded",
            PaddingError::NotAMultiple => "bad PKCS#7 padding - not a multiple of blocksize",
            PaddingError::TooLong => "bad PKCS#7 padding - too long",
            PaddingError::TooShort => "bad PKCS#7 padding - too short",
            PaddingError::NotAllTheSame => "bad PKCS#7 padding - not all the same",
        })
    }
}

impl fmt::Display for CryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CryptError::NotAMultipleOfBlocksize => f.write_str("not a multiple of blocksize"),
            CryptError::TooShortAfterDecode => f.write_str("too short after base32 decode"),
            CryptError::TooLongAfterDecode => f.write_str("too long after base32 decode"),
            CryptError::EncryptedFileTooShort => f.write_str("file is too short to be encrypted"),
            CryptError::EncryptedFileBadHeader => f.write_str("file has truncated block header"),
            CryptError::EncryptedBadMagic => f.write_str("not an encrypted file - bad magic string"),
            CryptError::EncryptedBadBlock => f.write_str("failed to authenticate decrypted block - bad password?"),
            CryptError::BadBase32Encoding => f.write_str("bad base32 filename encoding"),
            CryptError::NotAnEncryptedFile => f.write_str("not an encrypted file - does not match suffix"),
            CryptError::BadSeek => f.write_str("Seek beyond end of file"),
            CryptError::BadDecryptUtf8 => f.write_str("bad decryption - utf-8 invalid"),
            CryptError::BadPadding(p) => p.fmt(f),
            CryptError::IllegalBase32(i) => write!(f, "illegal base32 data at input byte {i}"),
            CryptError::IllegalBase64(i) => write!(f, "illegal base64 data at input byte {i}"),
            CryptError::IllegalBase32768(i) => {
                write!(f, "illegal base32768 data at input byte {}", i.saturating_mul(2))
            }
            CryptError::RevealBase64(i) => write!(
                f,
                "base64 decode failed when revealing password - is it obscured?: \
                 illegal base64 data at input byte {i}"
            ),
            CryptError::RevealTooShort => f.write_str("input too short when revealing password - is it obscured?"),
            CryptError::RevealNotUtf8 => f.write_str("revealed password is not valid UTF-8 - is it obscured?"),
            CryptError::ObscureRandom(e) => write!(f, "failed to read iv: {e}"),
            CryptError::PasswordNotSet => f.write_str("password not set in config file"),
            CryptError::BadConfigPassword { which, source } => {
                write!(f, "failed to decrypt {which}: {source}")
            }
            CryptError::UnknownMode(s) => write!(f, "unknown file name encryption mode {s:?}"),
            CryptError::UnknownEncoding(s) => write!(f, "unknown file name encoding mode {s:?}"),
            CryptError::SuffixMissingDot => f.write_str("suffix config setting should include a '.'"),
            CryptError::ShortNonce(e) => write!(f, "short read of nonce: {e}"),
            CryptError::SegmentTooLong(n) => {
                write!(f, "file name segment too long to encrypt: {n} bytes (at most 2047)")
            }
            CryptError::NameTooLong { backend, path } => {
                write!(f, "encrypted name too long for {backend}: {path}")
            }
            CryptError::KeyDerivation(e) => write!(f, "failed to make cipher: {e}"),
        }
    }
}

impl std::error::Error for CryptError {}

impl CryptError {
    /// The `CryptError` carried by an `io::Error` from [`EncryptReader`] or [`DecryptReader`],
    /// if the failure was a format or authentication problem rather than an I/O one.
    pub fn from_io(err: &io::Error) -> Option<&CryptError> {
        err.get_ref()?.downcast_ref::<CryptError>()
    }
}

impl From<CryptError> for io::Error {
    fn from(err: CryptError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, err)
    }
}

/// Deterministic pseudo-random bytes (xorshift) for property-style tests, so failures
/// reproduce.
#[cfg(test)]
pub(crate) fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
