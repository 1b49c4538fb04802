//! rclone crypt file and directory names (spec §6–§9): EME-AES-256 name encryption with
//! PKCS#7 padding, the `obfuscate` and `off` modes, the base32 / base64 / base32768 encodings,
//! `directory_name_encryption`, version suffixes and encoded-length limits.
//!
//! Paths are `/`-separated `&str`; each segment is transformed on its own.

use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::Zeroize;

use super::encoding::{base32_decode, base32_encode, base64_decode, base64_encode, base32768_decode, base32768_encode};
use super::keys::Keys;
use super::version;
use super::{CryptError, PaddingError};

/// AES block size, which names are padded to.
const NAME_BLOCK: usize = 16;
/// rclone refuses decoded names longer than this; EME takes at most 128 blocks.
const MAX_DECODED_NAME: usize = 2048;
/// Longest plaintext segment that pads to at most 128 blocks.
const MAX_PLAIN_SEGMENT: usize = MAX_DECODED_NAME - 1;

/// `filename_encryption`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameMode {
    /// EME-encrypted, encoded names (rclone's default).
    Standard,
    /// Weak, reversible rotation of characters.
    Obfuscate,
    /// Names in clear, file names get the suffix (`.bin`).
    Off,
}

impl NameMode {
    /// Parses the option value, case-insensitively, as rclone does.
    pub fn parse(s: &str) -> Result<NameMode, CryptError> {
        match s.to_lowercase().as_str() {
            "standard" => Ok(NameMode::Standard),
            "obfuscate" => Ok(NameMode::Obfuscate),
            "off" => Ok(NameMode::Off),
            other => Err(CryptError::UnknownMode(other.to_owned())),
        }
    }
}

/// `filename_encoding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameEncoding {
    /// base32hex, lower case, unpadded; case-insensitive (rclone's default).
    Base32,
    /// base64 URL-safe, unpadded; case-sensitive.
    Base64,
    /// base32768, for backends that count UTF-16 units.
    Base32768,
}

impl NameEncoding {
    /// Parses the option value, case-insensitively, as rclone does.
    pub fn parse(s: &str) -> Result<NameEncoding, CryptError> {
        match s.to_lowercase().as_str() {
            "base32" => Ok(NameEncoding::Base32),
            "base64" => Ok(NameEncoding::Base64),
            "base32768" => Ok(NameEncoding::Base32768),
            other => Err(CryptError::UnknownEncoding(other.to_owned())),
        }
    }

    /// Encodes raw bytes (the EME output) as a name.
    pub fn encode(self, raw: &[u8]) -> String {
        match self {
            NameEncoding::Base32 => base32_encode(raw),
            NameEncoding::Base64 => base64_encode(raw),
            NameEncoding::Base32768 => base32768_encode(raw),
        }
    }

    /// Decodes a name to raw bytes, with the errors (and offsets) of rclone's Go decoders.
    pub fn decode(self, name: &str) -> Result<Vec<u8>, CryptError> {
        match self {
            NameEncoding::Base32 => base32_decode(name),
            NameEncoding::Base64 => base64_decode(name.as_bytes()).map_err(CryptError::IllegalBase64),
            NameEncoding::Base32768 => base32768_decode(name).map_err(CryptError::IllegalBase32768),
        }
    }
}

/// How a destination backend limits one path segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameLimit {
    /// At most this many bytes of UTF-8 (most backends: 255).
    Bytes(usize),
    /// At most this many UTF-16 code units (OneDrive, Dropbox, Box: 255).
    Utf16Units(usize),
}

/// Checks every segment of an encrypted path against a backend's limit, so that an
/// over-long name is reported clearly before upload instead of failing obscurely there.
pub fn check_name_length(
    encrypted_path: &str,
    limit: NameLimit,
    backend: &str,
    plaintext_path: &str,
) -> Result<(), CryptError> {
    let too_long = encrypted_path.split('/').any(|seg| match limit {
        NameLimit::Bytes(max) => seg.len() > max,
        NameLimit::Utf16Units(max) => seg.encode_utf16().count() > max,
    });
    if too_long {
        return Err(CryptError::NameTooLong { backend: backend.to_owned(), path: plaintext_path.to_owned() });
    }
    Ok(())
}

/// Encrypts and decrypts names for one crypt remote.
pub struct NameCipher {
    mode: NameMode,
    encoding: NameEncoding,
    dir_name_encryption: bool,
    suffix: String,
    aes: Aes256,
    tweak: [u8; NAME_BLOCK],
    /// Sum of the name key's bytes: the secret part of the obfuscation rotation.
    key_sum: i64,
}

impl Drop for NameCipher {
    fn drop(&mut self) {
        self.tweak.zeroize();
        self.key_sum.zeroize();
    }
}

impl std::fmt::Debug for NameCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameCipher")
            .field("mode", &self.mode)
            .field("encoding", &self.encoding)
            .field("dir_name_encryption", &self.dir_name_encryption)
            .field("suffix", &self.suffix)
            .finish_non_exhaustive()
    }
}

impl NameCipher {
    /// A name cipher with the default `.bin` suffix for `off` mode.
    pub fn new(keys: &Keys, mode: NameMode, encoding: NameEncoding, dir_name_encryption: bool) -> NameCipher {
        NameCipher {
            mode,
            encoding,
            dir_name_encryption,
            suffix: ".bin".to_owned(),
            aes: Aes256::new(keys.name_key().into()),
            tweak: *keys.name_tweak(),
            key_sum: keys.name_key().iter().map(|&b| i64::from(b)).sum(),
        }
    }

    /// Sets the `off`-mode suffix: `none` (any case) means no suffix. A suffix without a
    /// leading `.` gets one, and the returned warning should be logged, as rclone does.
    pub fn set_suffix(&mut self, suffix: &str) -> Option<CryptError> {
        if suffix.eq_ignore_ascii_case("none") {
            self.suffix.clear();
            return None;
        }
        if !suffix.is_empty() && !suffix.starts_with('.') {
            self.suffix = format!(".{suffix}");
            return Some(CryptError::SuffixMissingDot);
        }
        self.suffix = suffix.to_owned();
        None
    }

    /// The name mode.
    pub fn mode(&self) -> NameMode {
        self.mode
    }

    /// The name encoding.
    pub fn encoding(&self) -> NameEncoding {
        self.encoding
    }

    /// Whether directory segments are transformed.
    pub fn dir_name_encryption(&self) -> bool {
        self.dir_name_encryption
    }

    /// The `off`-mode suffix ("" for none).
    pub fn suffix(&self) -> &str {
        &self.suffix
    }

    /// Transforms one segment according to the mode: EME + encoding (standard), rotation
    /// (obfuscate) or nothing (off).
    pub fn encrypt_segment(&self, plain: &str) -> Result<String, CryptError> {
        match self.mode {
            NameMode::Standard => self.eme_encrypt_segment(plain),
            NameMode::Obfuscate => Ok(self.obfuscate_segment(plain)),
            NameMode::Off => Ok(plain.to_owned()),
        }
    }

    /// Inverse of [`NameCipher::encrypt_segment`].
    pub fn decrypt_segment(&self, cipher: &str) -> Result<String, CryptError> {
        match self.mode {
            NameMode::Standard => self.eme_decrypt_segment(cipher),
            NameMode::Obfuscate => self.deobfuscate_segment(cipher),
            NameMode::Off => Ok(cipher.to_owned()),
        }
    }

    /// The underlying path of a file (rclone `EncryptFileName`).
    pub fn encrypt_file_name(&self, path: &str) -> Result<String, CryptError> {
        if self.mode == NameMode::Off {
            return Ok(format!("{path}{}", self.suffix));
        }
        self.transform_path(path, true)
    }

    /// The plaintext path of an underlying file (rclone `DecryptFileName`).
    pub fn decrypt_file_name(&self, path: &str) -> Result<String, CryptError> {
        if self.mode == NameMode::Off {
            let plain = path
                .strip_suffix(self.suffix.as_str())
                .filter(|rest| !rest.is_empty())
                .ok_or(CryptError::NotAnEncryptedFile)?;
            if version::matches(plain) && version::remove(plain).is_some_and(|(_, unversioned)| unversioned.is_empty())
            {
                return Err(CryptError::NotAnEncryptedFile);
            }
            // The version string, if any, stays on.
            return Ok(plain.to_owned());
        }
        self.transform_path(path, false)
    }

    /// The underlying path of a directory (rclone `EncryptDirName`).
    pub fn encrypt_dir_name(&self, path: &str) -> Result<String, CryptError> {
        if self.mode == NameMode::Off || !self.dir_name_encryption {
            return Ok(path.to_owned());
        }
        self.transform_path(path, true)
    }

    /// The plaintext path of an underlying directory (rclone `DecryptDirName`).
    pub fn decrypt_dir_name(&self, path: &str) -> Result<String, CryptError> {
        if self.mode == NameMode::Off || !self.dir_name_encryption {
            return Ok(path.to_owned());
        }
        self.transform_path(path, false)
    }

    /// Transforms the segments of a path (all, or only the last without directory name
    /// encryption); a version on the last segment is lifted off and put back in clear.
    fn transform_path(&self, path: &str, encrypt: bool) -> Result<String, CryptError> {
        let segments: Vec<&str> = path.split('/').collect();
        let last = segments.len() - 1;
        let mut out = Vec::with_capacity(segments.len());
        for (i, &seg) in segments.iter().enumerate() {
            if !self.dir_name_encryption && i != last {
                out.push(seg.to_owned());
                continue;
            }
            let mut lifted = None;
            let mut seg = seg.to_owned();
            if i == last
                && version::matches(&seg)
                && let Some((v, rest)) = version::remove(&seg)
            {
                lifted = Some(v);
                seg = rest;
            }
            let mut done = if encrypt { self.encrypt_segment(&seg)? } else { self.decrypt_segment(&seg)? };
            if let Some(v) = lifted {
                done = version::add(&done, &v);
            }
            out.push(done);
        }
        Ok(out.join("/"))
    }

    fn eme_encrypt_segment(&self, plain: &str) -> Result<String, CryptError> {
        if plain.is_empty() {
            return Ok(String::new());
        }
        if plain.len() > MAX_PLAIN_SEGMENT {
            return Err(CryptError::SegmentTooLong(plain.len()));
        }
        let mut buf = pkcs7_pad(plain.as_bytes());
        eme(&self.aes, &self.tweak, &mut buf, true);
        Ok(self.encoding.encode(&buf))
    }

    fn eme_decrypt_segment(&self, cipher: &str) -> Result<String, CryptError> {
        if cipher.is_empty() {
            return Ok(String::new());
        }
        let mut raw = self.encoding.decode(cipher)?;
        if !raw.len().is_multiple_of(NAME_BLOCK) {
            return Err(CryptError::NotAMultipleOfBlocksize);
        }
        if raw.is_empty() {
            return Err(CryptError::TooShortAfterDecode);
        }
        if raw.len() > MAX_DECODED_NAME {
            return Err(CryptError::TooLongAfterDecode);
        }
        eme(&self.aes, &self.tweak, &mut raw, false);
        let len = pkcs7_unpadded_len(&raw).map_err(CryptError::BadPadding)?;
        raw.truncate(len);
        // rclone would return the raw bytes; a Rust path must be UTF-8.
        String::from_utf8(raw).map_err(|_| CryptError::BadDecryptUtf8)
    }

    fn obfuscate_segment(&self, plain: &str) -> String {
        if plain.is_empty() {
            return String::new();
        }
        let sum: i64 = plain.chars().map(|c| i64::from(u32::from(c))).sum();
        let mut dir = sum % 256;
        let mut out = format!("{dir}.");
        dir += self.key_sum;
        for c in plain.chars() {
            let r = i64::from(u32::from(c));
            match c {
                '!' => out.push_str("!!"),
                '0'..='9' => push_code(&mut out, '0' as i64 + (r - '0' as i64 + dir % 9 + 1) % 10),
                'A'..='Z' | 'a'..='z' => {
                    let mut pos = r - 'A' as i64;
                    if pos >= 26 {
                        pos -= 6;
                    }
                    pos = (pos + dir % 25 + 1) % 52;
                    if pos >= 26 {
                        pos += 6;
                    }
                    push_code(&mut out, 'A' as i64 + pos);
                }
                '\u{A0}'..='\u{FF}' => push_code(&mut out, 0xA0 + (r - 0xA0 + dir % 95 + 1) % 96),
                _ if r >= 0x100 => {
                    let base = r - r % 256;
                    let rotated = base + (r - base + dir % 127 + 1) % 256;
                    // A rotation into the surrogate range is not a character: quote instead.
                    match u32::try_from(rotated).ok().and_then(char::from_u32) {
                        Some(n) => out.push(n),
                        None => {
                            out.push('!');
                            out.push(c);
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        out
    }

    fn deobfuscate_segment(&self, cipher: &str) -> Result<String, CryptError> {
        if cipher.is_empty() {
            return Ok(String::new());
        }
        let (num, rest) = cipher.split_once('.').ok_or(CryptError::NotAnEncryptedFile)?;
        if num == "!" {
            return Ok(rest.to_owned());
        }
        // Same grammar as Go's strconv.Atoi: optional sign, decimal digits, i64 range.
        let num: i64 = num.parse().map_err(|_| CryptError::NotAnEncryptedFile)?;
        let dir = num.wrapping_add(self.key_sum);
        let mut out = String::with_capacity(rest.len());
        let mut quoted = false;
        // The arithmetic follows rclone literally (Go's truncating %), so even names with a
        // negative prefix decode to what rclone shows.
        for c in rest.chars() {
            let r = i64::from(u32::from(c));
            if quoted {
                out.push(c);
                quoted = false;
                continue;
            }
            match c {
                '!' => quoted = true,
                '0'..='9' => {
                    let mut n = r - (dir % 9 + 1);
                    if n < '0' as i64 {
                        n += 10;
                    }
                    push_code(&mut out, n);
                }
                'A'..='Z' | 'a'..='z' => {
                    let mut pos = r - 'A' as i64;
                    if pos >= 26 {
                        pos -= 6;
                    }
                    pos -= dir % 25 + 1;
                    if pos < 0 {
                        pos += 52;
                    }
                    if pos >= 26 {
                        pos += 6;
                    }
                    push_code(&mut out, 'A' as i64 + pos);
                }
                '\u{A0}'..='\u{FF}' => {
                    let mut n = r - (dir % 95 + 1);
                    if n < 0xA0 {
                        n += 96;
                    }
                    push_code(&mut out, n);
                }
                _ if r >= 0x100 => {
                    let base = r - r % 256;
                    let mut n = r - (dir % 127 + 1);
                    if n < base {
                        n += 256;
                    }
                    push_code(&mut out, n);
                }
                _ => out.push(c),
            }
        }
        Ok(out)
    }
}

/// Appends a code point the way Go's `WriteRune` does: invalid values become U+FFFD.
fn push_code(out: &mut String, code: i64) {
    let c = u32::try_from(code).ok().and_then(char::from_u32);
    out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
}

fn pkcs7_pad(data: &[u8]) -> Vec<u8> {
    let pad = NAME_BLOCK - data.len() % NAME_BLOCK;
    let mut out = Vec::with_capacity(data.len() + pad);
    out.extend_from_slice(data);
    out.extend(std::iter::repeat_n(pad as u8, pad));
    out
}

/// Length of the data before PKCS#7 padding, checked in rclone's order.
fn pkcs7_unpadded_len(data: &[u8]) -> Result<usize, PaddingError> {
    let Some(&last) = data.last() else {
        return Err(PaddingError::NotPadded);
    };
    if !data.len().is_multiple_of(NAME_BLOCK) {
        return Err(PaddingError::NotAMultiple);
    }
    let pad = usize::from(last);
    if pad > NAME_BLOCK {
        return Err(PaddingError::TooLong);
    }
    if pad == 0 {
        return Err(PaddingError::TooShort);
    }
    if data[data.len() - pad..].iter().any(|&b| b != last) {
        return Err(PaddingError::NotAllTheSame);
    }
    Ok(data.len() - pad)
}

/// Doubling in GF(2^128) with EME's little-endian bit order.
fn mult_by_two(x: &[u8; 16]) -> [u8; 16] {
    let mut y = [0u8; 16];
    y[0] = x[0] << 1;
    for j in 1..16 {
        y[j] = (x[j] << 1) | (x[j - 1] >> 7);
    }
    if x[15] >= 0x80 {
        y[0] ^= 0x87;
    }
    y
}

fn xor_into(dst: &mut [u8], src: &[u8; 16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// EME (ECB-Mix-ECB, `rfjakob/eme`) in place over 1..=128 AES blocks. Callers check the
/// length; anything else is left untouched rather than panicking as the Go library does.
fn eme(aes: &Aes256, tweak: &[u8; 16], data: &mut [u8], encrypt: bool) {
    let m = data.len() / NAME_BLOCK;
    if !data.len().is_multiple_of(NAME_BLOCK) || m == 0 || m > MAX_DECODED_NAME / NAME_BLOCK {
        return;
    }
    let cipher = |block: &mut [u8]| {
        let block: &mut Array<u8, _> = match <&mut [u8; 16]>::try_from(block) {
            Ok(b) => b.into(),
            Err(_) => return,
        };
        if encrypt {
            aes.encrypt_block(block);
        } else {
            aes.decrypt_block(block);
        }
    };
    // L is AES *encryption* of zero in both directions.
    let mut l = Array::from([0u8; 16]);
    aes.encrypt_block(&mut l);
    let mut l_table = [[0u8; 16]; MAX_DECODED_NAME / NAME_BLOCK];
    let mut lj: [u8; 16] = l.into();
    for entry in l_table.iter_mut().take(m) {
        lj = mult_by_two(&lj);
        *entry = lj;
    }

    // PPP_j = E(P_j ^ L_j), in place.
    for (block, lj) in data.chunks_exact_mut(NAME_BLOCK).zip(&l_table) {
        xor_into(block, lj);
        cipher(block);
    }
    // MP = xor of all PPP_j ^ T; MC = E(MP); M = MP ^ MC.
    let mut mp = *tweak;
    for block in data.chunks_exact(NAME_BLOCK) {
        for (a, b) in mp.iter_mut().zip(block) {
            *a ^= b;
        }
    }
    let mut mc = mp;
    cipher(&mut mc);
    let mut mask = mp;
    for (a, b) in mask.iter_mut().zip(&mc) {
        *a ^= b;
    }
    // CCC_j = PPP_j ^ 2^j·M for j >= 1; CCC_0 = MC ^ T ^ xor of the other CCC_j.
    let mut ccc0 = mc;
    xor_into(&mut ccc0, tweak);
    for block in data.chunks_exact_mut(NAME_BLOCK).skip(1) {
        mask = mult_by_two(&mask);
        xor_into(block, &mask);
        for (a, b) in ccc0.iter_mut().zip(block.iter()) {
            *a ^= b;
        }
    }
    data[..NAME_BLOCK].copy_from_slice(&ccc0);
    // C_j = E(CCC_j) ^ L_j.
    for (block, lj) in data.chunks_exact_mut(NAME_BLOCK).zip(&l_table) {
        cipher(block);
        xor_into(block, lj);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    use NameEncoding::{Base32, Base64, Base32768};

    const ENCODINGS: [NameEncoding; 3] = [Base32, Base64, Base32768];

    fn zero(mode: NameMode, enc: NameEncoding, dirs: bool) -> NameCipher {
        NameCipher::new(&Keys::zero(), mode, enc, dirs)
    }

    fn potato() -> &'static Keys {
        static K: OnceLock<Keys> = OnceLock::new();
        K.get_or_init(|| Keys::derive("potato", "").unwrap())
    }

    fn potato_sausage() -> &'static Keys {
        static K: OnceLock<Keys> = OnceLock::new();
        K.get_or_init(|| Keys::derive("potato", "sausage").unwrap())
    }

    /// Picks the column of a (base32, base64, base32768) row.
    fn col<'a>(row: &(&'a str, &'a str, &'a str), enc: NameEncoding) -> &'a str {
        match enc {
            Base32 => row.1,
            Base64 => row.2,
            Base32768 => row.0,
        }
    }

    // §13.3: (input, base32, base64, base32768).
    const RAW: &[(&str, &str, &str, &str)] = &[
        ("", "", "", ""),
        ("1", "64", "MQ", "㼿"),
        ("12", "64p0", "MTI", "㻙ɟ"),
        ("123", "64p36", "MTIz", "㻙ⲿ"),
        ("1234", "64p36d0", "MTIzNA", "㻙ⲍƟ"),
        ("12345", "64p36d1l", "MTIzNDU", "㻙ⲍ⍟"),
        ("123456", "64p36d1l6o", "MTIzNDU2", "㻙ⲍ⍆ʏ"),
        ("1234567", "64p36d1l6org", "MTIzNDU2Nw", "㻙ⲍ⍆觟"),
        ("12345678", "64p36d1l6orjg", "MTIzNDU2Nzg", "㻙ⲍ⍆觓ɧ"),
        ("123456789", "64p36d1l6orjge8", "MTIzNDU2Nzg5", "㻙ⲍ⍆觓栯"),
        ("1234567890", "64p36d1l6orjge9g", "MTIzNDU2Nzg5MA", "㻙ⲍ⍆觓栩ɣ"),
        ("12345678901", "64p36d1l6orjge9g64", "MTIzNDU2Nzg5MDE", "㻙ⲍ⍆觓栩朧"),
        ("123456789012", "64p36d1l6orjge9g64p0", "MTIzNDU2Nzg5MDEy", "㻙ⲍ⍆觓栩朤ʅ"),
        ("1234567890123", "64p36d1l6orjge9g64p36", "MTIzNDU2Nzg5MDEyMw", "㻙ⲍ⍆觓栩朤談"),
        ("12345678901234", "64p36d1l6orjge9g64p36d0", "MTIzNDU2Nzg5MDEyMzQ", "㻙ⲍ⍆觓栩朤諆ɔ"),
        ("123456789012345", "64p36d1l6orjge9g64p36d1l", "MTIzNDU2Nzg5MDEyMzQ1", "㻙ⲍ⍆觓栩朤諆媕"),
        ("1234567890123456", "64p36d1l6orjge9g64p36d1l6o", "MTIzNDU2Nzg5MDEyMzQ1Ng", "㻙ⲍ⍆觓栩朤諆媕䆿"),
        ("a", "c4", "YQ", "坟"),
        ("123456789abcdef", "64p36d1l6orjgeb1c9hm8pb6", "MTIzNDU2Nzg5YWJjZGVm", "㻙ⲍ⍆觓栫ᣉ洨识"),
        ("123456789abcdef0", "64p36d1l6orjgeb1c9hm8pb660", "MTIzNDU2Nzg5YWJjZGVmMA", "㻙ⲍ⍆觓栫ᣉ洨识㺿"),
    ];

    #[test]
    fn raw_encodings() {
        for &(input, b32, b64, b32768) in RAW {
            for (enc, want) in [(Base32, b32), (Base64, b64), (Base32768, b32768)] {
                assert_eq!(enc.encode(input.as_bytes()), want, "{enc:?} of {input:?}");
                assert_eq!(enc.decode(want).unwrap(), input.as_bytes(), "{enc:?} {want:?}");
            }
            assert_eq!(Base32.decode(&b32.to_uppercase()).unwrap(), input.as_bytes());
        }
    }

    // §13.4
    #[test]
    fn raw_decoding_errors() {
        let rows = [
            (Base32, "64=", CryptError::BadBase32Encoding),
            (Base32, "!", CryptError::IllegalBase32(0)),
            (Base32, "hello=hello", CryptError::IllegalBase32(5)),
            (Base64, "64=", CryptError::IllegalBase64(2)),
            (Base64, "!", CryptError::IllegalBase64(0)),
            (Base64, "Hello=Hello", CryptError::IllegalBase64(5)),
            (Base32768, "㼿c", CryptError::IllegalBase32768(1)),
            (Base32768, "!", CryptError::IllegalBase32768(0)),
            (Base32768, "㻙ⲿ=㻙ⲿ", CryptError::IllegalBase32768(2)),
        ];
        for (enc, input, err) in rows {
            assert_eq!(enc.decode(input), Err(err), "{enc:?} {input:?}");
        }
        assert_eq!(CryptError::BadBase32Encoding.to_string(), "bad base32 filename encoding");
        assert_eq!(CryptError::IllegalBase32(5).to_string(), "illegal base32 data at input byte 5");
        assert_eq!(CryptError::IllegalBase64(2).to_string(), "illegal base64 data at input byte 2");
        assert_eq!(CryptError::IllegalBase32768(1).to_string(), "illegal base32768 data at input byte 2");
    }

    // §13.5: (plaintext, base32, base64, base32768) under the zero key.
    const SEGMENTS: &[(&str, &str, &str, &str)] = &[
        ("", "", "", ""),
        ("1", "p0e52nreeaj0a5ea7s64m4j72s", "yBxRX25ypgUVyj8MSxJnFw", "詮㪗鐮僀伎作㻖㢧⪟"),
        ("12", "l42g6771hnv3an9cgc8cr2n1ng", "qQUDHOGN_jVdLIMQzYrhvA", "竢朧䉱虃光塬䟛⣡蓟"),
        ("123", "qgm4avr35m5loi1th53ato71v0", "1CxFf2Mti1xIPYlGruDh-A", "遶㞟鋅缕袡鲅ⵝ蝁ꌟ"),
        ("1234", "8ivr2e9plj3c3esisjpdisikos", "RL-xOTmsxsG7kuTy2XJUxw", "䢟銮䵵狌㐜燳谒颴詟"),
        ("12345", "rh9vu63q3o29eqmj4bg6gg7s44", "3FP_GHoeBJdq0yLgaED8IQ", "钉Ꞇ㖃蚩憶狫朰杜㜿"),
        ("123456", "bn717l3alepn75b2fb2ejmi4b4", "Xc4T1Gqrs3OVYnrE6dpEWQ", "啇ᚵⵕ憗䋫➫➓肤卟"),
        ("1234567", "n6bo9jmb1qe3b1ogtj5qkf19k8", "uZeEzssOnDWHEOzLqjwpog", "茫螓翁連劘樓㶔抉矟"),
        ("12345678", "u9t24j7uaq94dh5q53m3s4t9ok", "8noiTP5WkkbEuijsPhOpxQ", "龝☳䘊辄岅較络㧩襟"),
        ("123456789", "37hn305g6j12d1g0kkrl7ekbs4", "GeNxgLA0wiaGAKU3U7qL4Q", "ⲱ苀㱆犂媐Ꮤ锇惫靟"),
        ("1234567890", "ot8d91eplaglb62k2b1trm2qv0", "x1DUhdmqoVWYVBLD3dha-A", "計宁憕偵匢皫╛纺ꌟ"),
        ("12345678901", "h168vvrgb53qnrtvvmb378qrcs", "iEyP_3BZR6vvv_2WM6NbZw", "檆䨿鑫㪺藝ꡖ勇䦛婟"),
        ("123456789012", "s3hsdf9e29ithrqbjqu01t8q2s", "4OPGvS4SZdjvS568APUaFw", "雑頏䰂䲝淚哚鹡魺⪟"),
        ("1234567890123", "cf3jimlv1q2oc553mv7s3mh3eo", "Y8c5Wr8OhYYUo7fPwdojdg", "塃璶繁躸圅㔟䗃肃懟"),
        ("12345678901234", "moq0uqdlqrblrc5pa5u5c7hq9g", "tjQPabXW112wuVF8Vh46TA", "腺ᕚ崚鏕鏥讥鼌䑺䲿"),
        ("123456789012345", "eeam3li4rnommi3a762h5n7meg", "c5Vh1kTd8WtIajmFEtz2dA", "怪绕滻蕶肣但⠥荖惟"),
        (
            "1234567890123456",
            "mijbj0frqf6ms7frcr6bd9h0env53jv96pjaaoirk7forcgpt70g",
            "tKa5gfvTzW4d-2bMtqYgdf5Rz-k2ZqViW6HfjbIZ6cE",
            "肳哀旚挶靏鏻㾭䱠慟㪳ꏆ賊兲铧敻塹魀ʟ",
        ),
    ];

    #[test]
    fn segment_encryption() {
        for enc in ENCODINGS {
            let c = zero(NameMode::Standard, enc, true);
            for &(plain, b32, b64, b32768) in SEGMENTS {
                let want = col(&(b32768, b32, b64), enc);
                assert_eq!(c.encrypt_segment(plain).unwrap(), want, "{enc:?} {plain:?}");
                assert_eq!(c.decrypt_segment(want).unwrap(), plain, "{enc:?} {want:?}");
                if enc == Base32 {
                    assert_eq!(c.decrypt_segment(&want.to_uppercase()).unwrap(), plain);
                }
            }
        }
    }

    // §13.6
    #[test]
    fn segment_decryption_errors() {
        use CryptError::*;
        let too_long = PaddingError::TooLong;
        let rows: Vec<(NameEncoding, String, CryptError)> = vec![
            (Base32, "64=".into(), BadBase32Encoding),
            (Base32, "!".into(), IllegalBase32(0)),
            (Base32, "a".repeat(3328), TooLongAfterDecode),
            (Base32, "c4".into(), NotAMultipleOfBlocksize),
            (Base32, "64p36d1l6orjgeb1c9hm8pb6".into(), NotAMultipleOfBlocksize),
            (Base32, "64p36d1l6orjgeb1c9hm8pb660".into(), BadPadding(too_long)),
            (Base64, "6H=".into(), IllegalBase64(2)),
            (Base64, "!".into(), IllegalBase64(0)),
            (Base64, "a".repeat(2816), TooLongAfterDecode),
            (Base64, "YQ".into(), NotAMultipleOfBlocksize),
            (Base64, "MTIzNDU2Nzg5YWJjZGVm".into(), NotAMultipleOfBlocksize),
            (Base64, "MTIzNDU2Nzg5YWJjZGVmMA".into(), BadPadding(too_long)),
            (Base32768, "怪=".into(), IllegalBase32768(1)),
            (Base32768, "!".into(), IllegalBase32768(0)),
            (Base32768, "怪".repeat(1280), TooLongAfterDecode),
            (Base32768, "坟".into(), NotAMultipleOfBlocksize),
            (Base32768, "㻙ⲍ⍆觓栫ᣉ洨识".into(), NotAMultipleOfBlocksize),
            (Base32768, "㻙ⲍ⍆觓栫ᣉ洨识㺿".into(), BadPadding(too_long)),
        ];
        for (enc, input, err) in rows {
            let c = zero(NameMode::Standard, enc, true);
            assert_eq!(c.decrypt_segment(&input), Err(err), "{enc:?} {input:.40}");
        }
        // The decoded lengths the spec gives for the too-long rows.
        assert_eq!(Base32.decode(&"a".repeat(3328)).unwrap().len(), 2080);
        assert_eq!(Base64.decode(&"a".repeat(2816)).unwrap().len(), 2112);
        assert_eq!(Base32768.decode(&"怪".repeat(1280)).unwrap().len(), 2400);
        // Zero-key EME decryption of "123456789abcdef0" ends in 0x3a.
        let mut raw = b"123456789abcdef0".to_vec();
        let c = zero(NameMode::Standard, Base32, true);
        eme(&c.aes, &c.tweak, &mut raw, false);
        assert_eq!(
            raw,
            [0xb9, 0x6f, 0xd7, 0xc3, 0xc5, 0x09, 0x59, 0x88, 0x69, 0x7c, 0x15, 0xd9, 0xda, 0x40, 0xc9, 0x3a]
        );
        // Messages.
        assert_eq!(NotAMultipleOfBlocksize.to_string(), "not a multiple of blocksize");
        assert_eq!(TooShortAfterDecode.to_string(), "too short after base32 decode");
        assert_eq!(TooLongAfterDecode.to_string(), "too long after base32 decode");
        assert_eq!(BadPadding(too_long).to_string(), "bad PKCS#7 padding - too long");
        // A trailing base32768 character alone decodes to nothing.
        let c = zero(NameMode::Standard, Base32768, true);
        assert_eq!(c.decrypt_segment("ƀ"), Err(TooShortAfterDecode));
    }

    #[test]
    fn pkcs7_errors_in_order() {
        use PaddingError::*;
        assert_eq!(pkcs7_unpadded_len(&[]), Err(NotPadded));
        assert_eq!(pkcs7_unpadded_len(&[1; 15]), Err(NotAMultiple));
        assert_eq!(pkcs7_unpadded_len(&[17; 16]), Err(TooLong));
        assert_eq!(pkcs7_unpadded_len(&[0; 16]), Err(TooShort));
        let mut b = [3u8; 16];
        b[13] = 2;
        assert_eq!(pkcs7_unpadded_len(&b), Err(NotAllTheSame));
        assert_eq!(pkcs7_unpadded_len(&[16; 16]), Ok(0));
        assert_eq!(NotAllTheSame.to_string(), "bad PKCS#7 padding - not all the same");
        assert_eq!(NotPadded.to_string(), "bad PKCS#7 padding - not padded");
        assert_eq!(TooShort.to_string(), "bad PKCS#7 padding - too short");
        assert_eq!(NotAMultiple.to_string(), "bad PKCS#7 padding - not a multiple of blocksize");
    }

    #[test]
    fn segment_length_limits() {
        let c = zero(NameMode::Standard, Base32, true);
        let max = "a".repeat(2047);
        let enc = c.encrypt_segment(&max).unwrap();
        assert_eq!(c.decrypt_segment(&enc).unwrap(), max);
        let e = c.encrypt_segment(&"a".repeat(2048)).unwrap_err();
        assert_eq!(e, CryptError::SegmentTooLong(2048));
    }

    // §13.7: (plaintext, encrypted with dir encryption, encrypted without), per encoding.
    fn path_rows(enc: NameEncoding) -> Vec<(&'static str, &'static str, &'static str)> {
        match enc {
            Base32 => vec![
                ("1", "p0e52nreeaj0a5ea7s64m4j72s", "p0e52nreeaj0a5ea7s64m4j72s"),
                ("1/12", "p0e52nreeaj0a5ea7s64m4j72s/l42g6771hnv3an9cgc8cr2n1ng", "1/l42g6771hnv3an9cgc8cr2n1ng"),
                (
                    "1/12/123",
                    "p0e52nreeaj0a5ea7s64m4j72s/l42g6771hnv3an9cgc8cr2n1ng/qgm4avr35m5loi1th53ato71v0",
                    "1/12/qgm4avr35m5loi1th53ato71v0",
                ),
                (
                    "1-v2001-02-03-040506-123",
                    "p0e52nreeaj0a5ea7s64m4j72s-v2001-02-03-040506-123",
                    "p0e52nreeaj0a5ea7s64m4j72s-v2001-02-03-040506-123",
                ),
                (
                    "1/12-v2001-02-03-040506-123",
                    "p0e52nreeaj0a5ea7s64m4j72s/l42g6771hnv3an9cgc8cr2n1ng-v2001-02-03-040506-123",
                    "1/l42g6771hnv3an9cgc8cr2n1ng-v2001-02-03-040506-123",
                ),
            ],
            Base64 => vec![
                ("1", "yBxRX25ypgUVyj8MSxJnFw", "yBxRX25ypgUVyj8MSxJnFw"),
                ("1/12", "yBxRX25ypgUVyj8MSxJnFw/qQUDHOGN_jVdLIMQzYrhvA", "1/qQUDHOGN_jVdLIMQzYrhvA"),
                (
                    "1/12/123",
                    "yBxRX25ypgUVyj8MSxJnFw/qQUDHOGN_jVdLIMQzYrhvA/1CxFf2Mti1xIPYlGruDh-A",
                    "1/12/1CxFf2Mti1xIPYlGruDh-A",
                ),
                (
                    "1-v2001-02-03-040506-123",
                    "yBxRX25ypgUVyj8MSxJnFw-v2001-02-03-040506-123",
                    "yBxRX25ypgUVyj8MSxJnFw-v2001-02-03-040506-123",
                ),
                (
                    "1/12-v2001-02-03-040506-123",
                    "yBxRX25ypgUVyj8MSxJnFw/qQUDHOGN_jVdLIMQzYrhvA-v2001-02-03-040506-123",
                    "1/qQUDHOGN_jVdLIMQzYrhvA-v2001-02-03-040506-123",
                ),
            ],
            Base32768 => vec![
                ("1", "詮㪗鐮僀伎作㻖㢧⪟", "詮㪗鐮僀伎作㻖㢧⪟"),
                ("1/12", "詮㪗鐮僀伎作㻖㢧⪟/竢朧䉱虃光塬䟛⣡蓟", "1/竢朧䉱虃光塬䟛⣡蓟"),
                ("1/12/123", "詮㪗鐮僀伎作㻖㢧⪟/竢朧䉱虃光塬䟛⣡蓟/遶㞟鋅缕袡鲅ⵝ蝁ꌟ", "1/12/遶㞟鋅缕袡鲅ⵝ蝁ꌟ"),
                (
                    "1-v2001-02-03-040506-123",
                    "詮㪗鐮僀伎作㻖㢧⪟-v2001-02-03-040506-123",
                    "詮㪗鐮僀伎作㻖㢧⪟-v2001-02-03-040506-123",
                ),
                (
                    "1/12-v2001-02-03-040506-123",
                    "詮㪗鐮僀伎作㻖㢧⪟/竢朧䉱虃光塬䟛⣡蓟-v2001-02-03-040506-123",
                    "1/竢朧䉱虃光塬䟛⣡蓟-v2001-02-03-040506-123",
                ),
            ],
        }
    }

    #[test]
    fn standard_paths() {
        for enc in ENCODINGS {
            let on = zero(NameMode::Standard, enc, true);
            let off = zero(NameMode::Standard, enc, false);
            let one = enc.encode(b"1");
            for (plain, with_dirs, without_dirs) in path_rows(enc) {
                assert_eq!(on.encrypt_file_name(plain).unwrap(), with_dirs, "{enc:?} {plain}");
                assert_eq!(on.encrypt_dir_name(plain).unwrap(), with_dirs, "{enc:?} dir {plain}");
                assert_eq!(off.encrypt_file_name(plain).unwrap(), without_dirs, "{enc:?} {plain}");
                assert_eq!(on.decrypt_file_name(with_dirs).unwrap(), plain);
                assert_eq!(on.decrypt_dir_name(with_dirs).unwrap(), plain);
                assert_eq!(off.decrypt_file_name(without_dirs).unwrap(), plain);
                if !plain.contains("-v") {
                    // Upper case is fine for base32 (a version's "-v" must stay lower case).
                    if enc == Base32 {
                        assert_eq!(on.decrypt_file_name(&with_dirs.to_uppercase()).unwrap(), plain);
                    }
                    // A stray leading block breaks the first segment.
                    let bad = format!("{one}{with_dirs}");
                    assert_eq!(on.decrypt_file_name(&bad), Err(CryptError::NotAMultipleOfBlocksize));
                    assert_eq!(on.decrypt_dir_name(&bad), Err(CryptError::NotAMultipleOfBlocksize));
                    // Without directory encryption, dir names pass through untouched.
                    assert_eq!(off.decrypt_dir_name(with_dirs).unwrap(), with_dirs);
                    assert_eq!(off.decrypt_dir_name(plain).unwrap(), plain);
                }
            }
            for mode_dirs in [zero(NameMode::Standard, enc, false), zero(NameMode::Off, enc, true)] {
                assert_eq!(mode_dirs.encrypt_dir_name("1/12").unwrap(), "1/12");
                assert_eq!(mode_dirs.encrypt_dir_name("1/12/123").unwrap(), "1/12/123");
            }
        }
    }

    // §13.8 encryption.
    #[test]
    fn obfuscate_and_off_encryption() {
        for enc in ENCODINGS {
            let off = zero(NameMode::Off, enc, true);
            assert_eq!(off.encrypt_file_name("1/12/123").unwrap(), "1/12/123.bin");
            let mut jpg = zero(NameMode::Off, enc, true);
            assert_eq!(jpg.set_suffix(".jpg"), None);
            assert_eq!(jpg.encrypt_file_name("1/12/123").unwrap(), "1/12/123.jpg");
            let mut none = zero(NameMode::Off, enc, true);
            assert_eq!(none.set_suffix("NONE"), None);
            assert_eq!(none.encrypt_file_name("1/12/123").unwrap(), "1/12/123");
            let mut nodot = zero(NameMode::Off, enc, true);
            assert_eq!(nodot.set_suffix("jpg"), Some(CryptError::SuffixMissingDot));
            assert_eq!(nodot.suffix(), ".jpg");

            let rows = [
                (true, "1/12/123/!hello", "49.6/99.23/150.890/53.!!lipps"),
                (
                    true,
                    "1/12/123/!hello-v2001-02-03-040506-123",
                    "49.6/99.23/150.890/53-v2001-02-03-040506-123.!!lipps",
                ),
                (
                    true,
                    "1/12/123/hello-v2001-02-03-040506-123.txt",
                    "49.6/99.23/150.890/162.uryyB-v2001-02-03-040506-123.GKG",
                ),
                (true, "¡", "161.ä"),
                (true, "Π", "160.ς"),
                (false, "1/12/123/!hello", "1/12/123/53.!!lipps"),
                (false, "1/12/123/!hello-v2001-02-03-040506-123", "1/12/123/53-v2001-02-03-040506-123.!!lipps"),
                (false, "¡", "161.ä"),
                (false, "Π", "160.ς"),
            ];
            for (dirs, plain, want) in rows {
                let c = zero(NameMode::Obfuscate, enc, dirs);
                assert_eq!(c.encrypt_file_name(plain).unwrap(), want, "{plain} dirs={dirs}");
                assert_eq!(c.decrypt_file_name(want).unwrap(), plain, "{want} dirs={dirs}");
            }
        }
    }

    // §13.8 decryption.
    #[test]
    fn obfuscate_and_off_decryption() {
        use CryptError::NotAnEncryptedFile as Nae;
        /// (mode, directory name encryption, suffix option, input, result)
        type Row = (NameMode, bool, Option<&'static str>, &'static str, Result<&'static str, CryptError>);
        for enc in ENCODINGS {
            let rows: [Row; 14] = [
                (NameMode::Off, true, None, "1/12/123.bin", Ok("1/12/123")),
                (NameMode::Off, true, None, "1/12/123.bix", Err(Nae)),
                (NameMode::Off, true, None, ".bin", Err(Nae)),
                (
                    NameMode::Off,
                    true,
                    None,
                    "1/12/123-v2001-02-03-040506-123.bin",
                    Ok("1/12/123-v2001-02-03-040506-123"),
                ),
                (
                    NameMode::Off,
                    true,
                    None,
                    "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.bin",
                    Ok("1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123"),
                ),
                (
                    NameMode::Off,
                    true,
                    None,
                    "1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.txt.bin",
                    Ok("1/12/123-v1970-01-01-010101-123-v2001-02-03-040506-123.txt"),
                ),
                (NameMode::Off, true, Some(".jpg"), "1/12/123.jpg", Ok("1/12/123")),
                (NameMode::Off, true, Some("none"), "1/12/123", Ok("1/12/123")),
                (NameMode::Obfuscate, true, None, "!.hello", Ok("hello")),
                (NameMode::Obfuscate, true, None, "hello", Err(Nae)),
                (NameMode::Obfuscate, true, None, "161.ä", Ok("¡")),
                (NameMode::Obfuscate, true, None, "160.ς", Ok("Π")),
                (NameMode::Obfuscate, false, None, "1/12/123/53.!!lipps", Ok("1/12/123/!hello")),
                (
                    NameMode::Obfuscate,
                    false,
                    None,
                    "1/12/123/53-v2001-02-03-040506-123.!!lipps",
                    Ok("1/12/123/!hello-v2001-02-03-040506-123"),
                ),
            ];
            for (mode, dirs, suffix, input, want) in rows {
                let mut c = zero(mode, enc, dirs);
                if let Some(s) = suffix {
                    c.set_suffix(s);
                }
                let got = c.decrypt_file_name(input);
                assert_eq!(got.as_deref().map_err(Clone::clone), want, "{mode:?} {input}");
            }
            // A version and nothing else is not a file name.
            let off = zero(NameMode::Off, enc, true);
            assert_eq!(off.decrypt_file_name("-v2001-02-03-040506-123.bin"), Err(Nae));
            for name in ["1/12/123.bin", "1/12/123", ".bin"] {
                assert_eq!(off.decrypt_dir_name(name).unwrap(), name);
            }
            assert_eq!(Nae.to_string(), "not an encrypted file - does not match suffix");
        }
    }

    // §13.8 round trips (TestEncDecMatches).
    #[test]
    fn enc_dec_matches() {
        for enc in ENCODINGS {
            for (mode, path) in [
                (NameMode::Standard, "1/2/3/4"),
                (NameMode::Off, "1/2/3/4"),
                (NameMode::Obfuscate, "1/2/3/4/!helloΠ"),
                (NameMode::Obfuscate, "Avatar The Last Airbender"),
            ] {
                let c = zero(mode, enc, true);
                let e = c.encrypt_file_name(path).unwrap();
                assert_eq!(c.decrypt_file_name(&e).unwrap(), path, "{mode:?} {enc:?}");
            }
        }
    }

    // §13.14: names written by rclone 1.60.1.
    #[test]
    fn real_rclone_names() {
        let ob = NameMode::Obfuscate;
        let std = NameMode::Standard;
        let rows: [(&Keys, NameMode, NameEncoding, bool, &str, &str); 18] = [
            (potato(), std, Base32, true, "hello.txt", "oqt3pleorvo0jmt050a7sstgpo"),
            (potato(), std, Base32, true, "empty.bin", "pbno2jm7smkmvu4t963kojh1t8"),
            (potato(), std, Base32, true, "dir1/a", "90oamaalos4vlckfk9sdjulqgc/s83tjtk0e6aogosoteqti6f544"),
            (potato(), std, Base32, false, "dir1/a", "dir1/s83tjtk0e6aogosoteqti6f544"),
            (potato(), std, Base32, true, "big.bin", "6cokbdo2dp5jkoap8nlo122hgk"),
            (potato_sausage(), std, Base32, true, "hello.txt", "dvhjn229ej4s3k94n1mf5une30"),
            (potato_sausage(), std, Base32, true, "empty.bin", "knht8j75gm377e8g9ana68ma9s"),
            (potato_sausage(), std, Base32, true, "dir1/a", "ba09v30a4ee52fu11l4t6ve2bk/0pafnuo05kiri5rkftm2fsb7b4"),
            (potato_sausage(), std, Base64, true, "hello.txt", "b-M7iEl0ycHRJLhs8vruGA"),
            (potato_sausage(), std, Base64, true, "empty.bin", "pePUTOWFhnO5EEquoyLKTw"),
            (potato_sausage(), std, Base64, true, "dir1/a", "WoCfjAojnFE_wQ1J033CXQ/BlT7-wAtJbkXdH9sJ_FnWQ"),
            (potato_sausage(), std, Base32768, true, "hello.txt", "幑畂⛎狼㓉㤡聅ꆎ⬿"),
            (potato_sausage(), std, Base32768, true, "empty.bin", "祑魳䋰织䐈枊莦䤊也"),
            (potato_sausage(), std, Base32768, true, "dir1/a", "厠乃ᄤ急➾ᖵ㧦ꑢ啟/ᒪ敞虥碻漛硝纯韇卟"),
            (potato(), ob, Base32, true, "hello.txt", "162.rovvy.DHD"),
            (potato(), ob, Base32, true, "empty.bin", "150.BJMQV.yFK"),
            (potato(), ob, Base32, true, "dir1/a", "112.nsB3/97.u"),
            (potato(), NameMode::Off, Base32, true, "hello.txt", "hello.txt.bin"),
        ];
        for (keys, mode, enc, dirs, plain, want) in rows {
            let c = NameCipher::new(keys, mode, enc, dirs);
            assert_eq!(c.encrypt_file_name(plain).unwrap(), want, "{mode:?} {enc:?} {plain}");
            assert_eq!(c.decrypt_file_name(want).unwrap(), plain, "{mode:?} {enc:?} {want}");
        }
        // Encoded-length checks (potato, no salt).
        let len = |enc: NameEncoding, n: usize| {
            let c = NameCipher::new(potato(), std, enc, true);
            c.encrypt_segment(&"a".repeat(n)).unwrap().chars().count()
        };
        assert_eq!(len(Base32, 143), 231);
        assert_eq!(len(Base32, 144), 256);
        assert_eq!(len(Base64, 143), 192);
        assert_eq!(len(Base64, 144), 214);
        assert_eq!(len(Base64, 175), 235);
        assert_eq!(len(Base64, 176), 256);
    }

    #[test]
    fn name_length_check() {
        let c = NameCipher::new(&Keys::zero(), NameMode::Standard, Base32, true);
        let ok = c.encrypt_file_name(&format!("d/{}", "a".repeat(143))).unwrap();
        assert_eq!(check_name_length(&ok, NameLimit::Bytes(255), "s3", "x"), Ok(()));
        let long = c.encrypt_file_name(&format!("d/{}", "a".repeat(144))).unwrap();
        let e = check_name_length(&long, NameLimit::Bytes(255), "s3", "d/aaa").unwrap_err();
        assert_eq!(e.to_string(), "encrypted name too long for s3: d/aaa");
        // base32768 counts UTF-16 units: 463 bytes fit in 255 units, 464 do not.
        let c = NameCipher::new(&Keys::zero(), NameMode::Standard, Base32768, true);
        let fits = c.encrypt_segment(&"a".repeat(463)).unwrap();
        assert_eq!(check_name_length(&fits, NameLimit::Utf16Units(255), "onedrive", "x"), Ok(()));
        let over = c.encrypt_segment(&"a".repeat(464)).unwrap();
        assert!(check_name_length(&over, NameLimit::Utf16Units(255), "onedrive", "x").is_err());
    }

    #[test]
    fn option_parsing() {
        assert_eq!(NameMode::parse("Standard"), Ok(NameMode::Standard));
        assert_eq!(NameMode::parse("OFF"), Ok(NameMode::Off));
        assert_eq!(NameMode::parse("obfuscate"), Ok(NameMode::Obfuscate));
        assert_eq!(NameMode::parse("Weird").unwrap_err().to_string(), "unknown file name encryption mode \"weird\"");
        assert_eq!(NameEncoding::parse("BASE32768"), Ok(Base32768));
        assert_eq!(
            NameEncoding::parse("base16").unwrap_err().to_string(),
            "unknown file name encoding mode \"base16\""
        );
    }

    #[test]
    fn obfuscate_quirks() {
        let c = zero(NameMode::Obfuscate, Base32, true);
        // A rotation landing in the surrogate range quotes the original character.
        let plain = "\u{D7FF}";
        let e = c.encrypt_segment(plain).unwrap();
        assert_eq!(c.decrypt_segment(&e).unwrap(), plain);
        // Odd prefixes decode as rclone would instead of failing or panicking.
        for name in ["-5.abc", "+5.abc", "007.abc", "-9223372036854775808.Zz9ÿ\u{FFFF}", "9223372036854775807.aZ"] {
            assert!(c.decrypt_segment(name).is_ok(), "{name}");
        }
        assert_eq!(c.decrypt_segment("99999999999999999999.a"), Err(CryptError::NotAnEncryptedFile));
        assert_eq!(c.decrypt_segment(".a"), Err(CryptError::NotAnEncryptedFile));
    }

    #[test]
    fn hostile_names_never_panic() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet: Vec<char> =
            "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=!./\r\n ƀɀ㼿怪ÿ€😀ı\u{0}"
                .chars()
                .collect();
        for mode in [NameMode::Standard, NameMode::Obfuscate, NameMode::Off] {
            for enc in ENCODINGS {
                for dirs in [true, false] {
                    let c = zero(mode, enc, dirs);
                    for _ in 0..300 {
                        let len = (next() % 80) as usize;
                        let s: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
                        let _ = c.decrypt_file_name(&s);
                        let _ = c.decrypt_dir_name(&s);
                        let _ = enc.decode(&s);
                        // An empty off-mode name becomes the bare suffix, which rclone rejects.
                        let bare_suffix = mode == NameMode::Off && s.is_empty();
                        if let (Ok(e), false) = (c.encrypt_file_name(&s), bare_suffix) {
                            assert_eq!(c.decrypt_file_name(&e).as_deref(), Ok(s.as_str()), "{mode:?} {enc:?} {s:?}");
                        }
                    }
                }
            }
        }
    }
}
