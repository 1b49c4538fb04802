//! rclone crypt file contents (spec §5): the 32-byte header, 64 KiB blocks sealed with NaCl
//! secretbox (XSalsa20-Poly1305, tag first), the little-endian nonce schedule, size
//! arithmetic, streaming [`EncryptReader`] / [`DecryptReader`] and random access.
//!
//! Both readers hold one block buffer and transform it in place; when the caller's buffer can
//! take a whole block they work directly in it, so large reads cost no extra copy.

use std::io::{self, Read, Seek, SeekFrom};

use poly1305::Poly1305;
use poly1305::universal_hash::KeyInit;
use zeroize::Zeroize;

use super::CryptError;
use super::keys::Keys;
use super::salsa::XSalsa20;

/// Every encrypted file starts with these 8 bytes.
pub const FILE_MAGIC: &[u8; 8] = b"RCLONE\x00\x00";
/// Size of the per-file nonce that follows the magic.
pub const FILE_NONCE_SIZE: usize = 24;
/// Magic + nonce.
pub const FILE_HEADER_SIZE: usize = FILE_MAGIC.len() + FILE_NONCE_SIZE;
/// The Poly1305 tag in front of each block's ciphertext.
pub const BLOCK_HEADER_SIZE: usize = 16;
/// Plaintext bytes per block (the last block may hold fewer, never zero).
pub const BLOCK_DATA_SIZE: usize = 64 * 1024;
/// Encrypted bytes per full block.
pub const BLOCK_SIZE: usize = BLOCK_HEADER_SIZE + BLOCK_DATA_SIZE;

const HEADER: u64 = FILE_HEADER_SIZE as u64;
const DATA: u64 = BLOCK_DATA_SIZE as u64;
const BLOCK: u64 = BLOCK_SIZE as u64;
const TAG: u64 = BLOCK_HEADER_SIZE as u64;

// -------------------------------------------------------------------------------------------
// Sizes

/// Size of the encrypted file for `plain` bytes of plaintext (spec §5.5). Saturates instead of
/// wrapping for sizes no file can have (above ~2^64 · 65536/65552).
pub fn encrypted_size(plain: u64) -> u64 {
    let blocks = plain / DATA;
    let residue = plain % DATA;
    let mut size = HEADER.saturating_add(blocks.saturating_mul(BLOCK));
    if residue != 0 {
        size = size.saturating_add(TAG + residue);
    }
    size
}

/// Plaintext size of an encrypted file of `enc` bytes, or why no encrypted file has that size.
pub fn decrypted_size(enc: u64) -> Result<u64, CryptError> {
    let body = enc.checked_sub(HEADER).ok_or(CryptError::EncryptedFileTooShort)?;
    let blocks = body / BLOCK;
    let residue = body % BLOCK;
    let mut size = blocks * DATA;
    if residue != 0 {
        if residue <= TAG {
            return Err(CryptError::EncryptedFileBadHeader);
        }
        size += residue - TAG;
    }
    Ok(size)
}

// -------------------------------------------------------------------------------------------
// Nonces

/// A secretbox nonce: a 192-bit little-endian counter (byte 0 is least significant).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Nonce(pub [u8; FILE_NONCE_SIZE]);

impl Nonce {
    /// A fresh nonce from the OS CSPRNG.
    pub fn random() -> Result<Nonce, CryptError> {
        let mut n = [0u8; FILE_NONCE_SIZE];
        getrandom::getrandom(&mut n).map_err(|e| CryptError::ShortNonce(e.to_string()))?;
        Ok(Nonce(n))
    }

    /// A nonce read from a random source; fewer than 24 bytes is rclone's
    /// `short read of nonce: <error>` (with `EOF` when the source simply ended).
    pub fn from_reader<R: Read + ?Sized>(source: &mut R) -> Result<Nonce, CryptError> {
        let mut n = [0u8; FILE_NONCE_SIZE];
        let (got, err) = read_fill(source, &mut n);
        if got != FILE_NONCE_SIZE {
            let why = err.map_or_else(|| "EOF".to_owned(), |e| e.to_string());
            return Err(CryptError::ShortNonce(why));
        }
        Ok(Nonce(n))
    }

    /// The raw 24 bytes.
    pub fn as_bytes(&self) -> &[u8; FILE_NONCE_SIZE] {
        &self.0
    }

    /// Adds 1, carrying through all 24 bytes and wrapping at 2^192.
    pub fn increment(&mut self) {
        self.carry_from(0);
    }

    /// Adds `x` (used to skip `x` blocks), with rclone's carry rule: `x` goes into bytes 0..7
    /// and a carry out of byte 7 ripples upwards from byte 8.
    pub fn add(&mut self, x: u64) {
        let mut carry: u16 = 0;
        for (i, xb) in x.to_le_bytes().into_iter().enumerate() {
            carry += u16::from(self.0[i]) + u16::from(xb);
            self.0[i] = carry as u8;
            carry >>= 8;
        }
        if carry != 0 {
            self.carry_from(8);
        }
    }

    fn carry_from(&mut self, start: usize) {
        for b in &mut self.0[start..] {
            *b = b.wrapping_add(1);
            if *b != 0 {
                break;
            }
        }
    }
}

/// The file nonce from the first 32 bytes of an encrypted file (cryptcheck re-encrypts local
/// data with it to compare hashes without downloading).
pub fn read_nonce(header: &[u8]) -> Result<Nonce, CryptError> {
    let header = header.get(..FILE_HEADER_SIZE).ok_or(CryptError::EncryptedFileTooShort)?;
    if header[..FILE_MAGIC.len()] != FILE_MAGIC[..] {
        return Err(CryptError::EncryptedBadMagic);
    }
    let mut n = [0u8; FILE_NONCE_SIZE];
    n.copy_from_slice(&header[FILE_MAGIC.len()..]);
    Ok(Nonce(n))
}

// -------------------------------------------------------------------------------------------
// Random access

/// Where a plaintext range lives in the encrypted file (rclone `calculateUnderlying`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Underlying {
    /// First encrypted byte to read: the start of the block holding the plaintext offset.
    pub offset: u64,
    /// Encrypted bytes to read (whole blocks, at least one); `None` = to the end.
    pub limit: Option<u64>,
    /// Plaintext bytes to drop from the first decrypted block.
    pub discard: u64,
    /// Blocks skipped: the first block read uses nonce `N0 + blocks`.
    pub blocks: u64,
}

/// Maps a plaintext range (`offset`, `limit` bytes, `None` = to the end) to the encrypted
/// range to fetch (spec §5.6). Saturates for offsets beyond any possible file.
pub fn calculate_underlying(offset: u64, limit: Option<u64>) -> Underlying {
    let blocks = offset / DATA;
    let discard = offset % DATA;
    let clamp = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    let underlying_offset = clamp(u128::from(HEADER) + u128::from(blocks) * u128::from(BLOCK));
    let underlying_limit = limit.map(|limit| {
        // rclone reads one block even for limit 0.
        let blocks_to_read = (u128::from(discard) + u128::from(limit)).div_ceil(u128::from(DATA)).max(1);
        clamp(blocks_to_read * u128::from(BLOCK))
    });
    Underlying { offset: underlying_offset, limit: underlying_limit, discard, blocks }
}

// -------------------------------------------------------------------------------------------
// Secretbox

/// The data key, wiped on drop; readers keep their own copy so they own no borrow.
#[derive(Clone)]
struct DataKey([u8; 32]);

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// XSalsa20 positioned after the Poly1305 key (keystream bytes 0..32), and the MAC keyed
/// with them, exactly as NaCl secretbox does.
fn secretbox_init(key: &DataKey, nonce: &Nonce) -> (XSalsa20, Poly1305) {
    let cipher = XSalsa20::new(&key.0, &nonce.0);
    let mut mac_key = cipher.poly1305_key();
    let mac = Poly1305::new((&mac_key).into());
    mac_key.zeroize();
    (cipher, mac)
}

/// Encrypts `data` in place and writes its tag: `tag || data` is then `secretbox.Seal`.
fn seal_in_place(key: &DataKey, nonce: &Nonce, tag: &mut [u8], data: &mut [u8]) {
    let (cipher, mac) = secretbox_init(key, nonce);
    cipher.apply_after_key(data);
    tag.copy_from_slice(&mac.compute_unpadded(data));
}

/// Authenticates then decrypts `data` in place (`secretbox.Open`). On failure `data` is left
/// as ciphertext: unauthenticated plaintext is never produced.
fn open_in_place(key: &DataKey, nonce: &Nonce, tag: &[u8; 16], data: &mut [u8]) -> bool {
    let (cipher, mac) = secretbox_init(key, nonce);
    let expected = mac.compute_unpadded(data);
    // Constant time: the difference is accumulated over all 16 bytes before testing it.
    let diff = expected.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if std::hint::black_box(diff) != 0 {
        return false;
    }
    cipher.apply_after_key(data);
    true
}

// -------------------------------------------------------------------------------------------
// I/O helpers

/// Reads until `buf` is full or the source ends (Go's `readers.ReadFill`): the byte count and
/// the error that stopped it, `None` for end of input.
fn read_fill<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            // A reader claiming more than it was given must not make us slice out of bounds.
            Ok(k) => n += k.min(buf.len() - n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// An error a reader has failed with; it is returned again on every later call so that a
/// caller that retries never mistakes a failed stream for a finished one.
#[derive(Debug)]
struct Sticky {
    kind: io::ErrorKind,
    message: String,
    crypt: Option<CryptError>,
}

impl Sticky {
    fn new(err: &io::Error) -> Sticky {
        Sticky { kind: err.kind(), message: err.to_string(), crypt: CryptError::from_io(err).cloned() }
    }

    fn to_io(&self) -> io::Error {
        match &self.crypt {
            Some(c) => c.clone().into(),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

// -------------------------------------------------------------------------------------------
// Encryption

/// Encrypts a plaintext stream into rclone's format as it is read: header, then one sealed
/// block per 64 KiB of input.
///
/// A source error is returned after the bytes already produced, and again on every later read.
pub struct EncryptReader<R> {
    inner: R,
    key: DataKey,
    file_nonce: Nonce,
    /// Nonce of the next block to seal.
    nonce: Nonce,
    /// The header at first, then one sealed block (`tag || ciphertext`).
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// An error the source returned together with data; reported on the next read.
    pending: Option<io::Error>,
    eof: bool,
    failed: Option<Sticky>,
}

impl<R> std::fmt::Debug for EncryptReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptReader").field("nonce", &self.nonce).finish_non_exhaustive()
    }
}

impl<R: Read> EncryptReader<R> {
    /// Encrypts `inner` under a fresh random file nonce.
    pub fn new(inner: R, keys: &Keys) -> Result<Self, CryptError> {
        Ok(Self::with_nonce(inner, keys, Nonce::random()?))
    }

    /// Encrypts `inner` under a given file nonce. Only for reproducing an existing file
    /// byte for byte (cryptcheck, tests): reusing a nonce for other content breaks secrecy.
    pub fn with_nonce(inner: R, keys: &Keys, nonce: Nonce) -> Self {
        let mut buf = vec![0u8; BLOCK_SIZE].into_boxed_slice();
        buf[..FILE_MAGIC.len()].copy_from_slice(FILE_MAGIC);
        buf[FILE_MAGIC.len()..FILE_HEADER_SIZE].copy_from_slice(&nonce.0);
        EncryptReader {
            inner,
            key: DataKey(*keys.data_key()),
            file_nonce: nonce,
            nonce,
            buf,
            pos: 0,
            len: FILE_HEADER_SIZE,
            pending: None,
            eof: false,
            failed: None,
        }
    }

    /// The file nonce written in the header.
    pub fn file_nonce(&self) -> Nonce {
        self.file_nonce
    }

    /// The nonce the next block will use (file nonce + blocks sealed so far).
    pub fn next_nonce(&self) -> Nonce {
        self.nonce
    }

    /// The plaintext source.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, err: io::Error) -> io::Error {
        self.failed = Some(Sticky::new(&err));
        err
    }

    /// Reads the next plaintext chunk into `data` and seals it there, tag into `tag`.
    /// Returns the plaintext length, 0 at end of input.
    fn seal_next(&mut self, tag: &mut [u8], data: &mut [u8]) -> io::Result<usize> {
        let (n, err) = read_fill(&mut self.inner, &mut data[..BLOCK_DATA_SIZE]);
        if n == 0 {
            return match err {
                Some(e) => Err(self.fail(e)),
                None => {
                    self.eof = true;
                    Ok(0)
                }
            };
        }
        seal_in_place(&self.key, &self.nonce, tag, &mut data[..n]);
        self.nonce.increment();
        self.pending = err;
        Ok(n)
    }
}

impl<R: Read> Read for EncryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(s) = &self.failed {
            return Err(s.to_io());
        }
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.len {
            if self.eof {
                return Ok(0);
            }
            if let Some(e) = self.pending.take() {
                return Err(self.fail(e));
            }
            if out.len() >= BLOCK_SIZE {
                // Seal straight into the caller's buffer: no copy.
                let (tag, data) = out[..BLOCK_SIZE].split_at_mut(BLOCK_HEADER_SIZE);
                let n = self.seal_next(tag, data)?;
                return Ok(if n == 0 { 0 } else { BLOCK_HEADER_SIZE + n });
            }
            let mut buf = std::mem::take(&mut self.buf);
            let (tag, data) = buf.split_at_mut(BLOCK_HEADER_SIZE);
            let sealed = self.seal_next(tag, data);
            self.buf = buf;
            let n = sealed?;
            if n == 0 {
                return Ok(0);
            }
            self.pos = 0;
            self.len = BLOCK_HEADER_SIZE + n;
        }
        let n = out.len().min(self.len - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

// -------------------------------------------------------------------------------------------
// Decryption

/// Decrypts an rclone crypt stream as it is read, authenticating every block before any of
/// its plaintext is released.
///
/// Errors are `io::Error`s; format and authentication failures carry a [`CryptError`]
/// ([`CryptError::from_io`]). After an error every later read fails the same way.
///
/// The format has no end marker (spec §5.7): a stream cut at a block boundary decrypts
/// cleanly, so callers must compare the plaintext length with [`decrypted_size`] of the
/// listed object size.
pub struct DecryptReader<R> {
    inner: R,
    key: DataKey,
    file_nonce: Nonce,
    /// Nonce of the next block to open.
    nonce: Nonce,
    tag: [u8; BLOCK_HEADER_SIZE],
    /// Plaintext of the current block.
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Plaintext bytes to drop from the next block (random access).
    skip: usize,
    /// rclone reads the first block of a range even when the limit is 0; doing the same
    /// consumes the requested range and reports a bad seek.
    first_block_due: bool,
    limit: Option<u64>,
    pending: Option<io::Error>,
    eof: bool,
    failed: Option<Sticky>,
    pass_bad_blocks: bool,
}

impl<R> std::fmt::Debug for DecryptReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptReader")
            .field("file_nonce", &self.file_nonce)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl<R: Read> DecryptReader<R> {
    /// Reads and checks the 32-byte header of `inner`, then decrypts from the first block.
    pub fn new(mut inner: R, keys: &Keys) -> io::Result<Self> {
        let mut header = [0u8; FILE_HEADER_SIZE];
        let (n, err) = read_fill(&mut inner, &mut header);
        if let Some(e) = err {
            return Err(e);
        }
        if n < FILE_HEADER_SIZE {
            return Err(CryptError::EncryptedFileTooShort.into());
        }
        let nonce = read_nonce(&header)?;
        Ok(Self::build(inner, keys, nonce, 0, None))
    }

    /// Decrypts from plaintext `offset`, at most `limit` bytes (`None` = to the end), given
    /// the file nonce (from the header, see [`read_nonce`]) and `inner` positioned at
    /// [`calculate_underlying`]`(offset, limit).offset`.
    ///
    /// An offset past the end of the file fails with [`CryptError::BadSeek`] on the first
    /// read, except at an exact block boundary, where it reads as empty.
    pub fn new_at(inner: R, keys: &Keys, file_nonce: Nonce, offset: u64, limit: Option<u64>) -> Self {
        let u = calculate_underlying(offset, limit);
        let mut nonce = file_nonce;
        nonce.add(u.blocks);
        let mut reader = Self::build(inner, keys, file_nonce, u.discard as usize, limit);
        reader.nonce = nonce;
        reader
    }

    /// Opens a plaintext range the way rclone does, through `open(offset, length)`, which
    /// must return a reader of the encrypted object's bytes `[offset, offset + length)`
    /// (`None` = to the end): offset 0 reads the object (or header + the blocks needed) in
    /// one request; any other offset fetches the 32-byte header first, then the blocks.
    pub fn open_range<F>(keys: &Keys, mut open: F, offset: u64, limit: Option<u64>) -> io::Result<Self>
    where
        F: FnMut(u64, Option<u64>) -> io::Result<R>,
    {
        if offset == 0 {
            let length = limit.map(|l| {
                let u = calculate_underlying(0, Some(l));
                HEADER.saturating_add(u.limit.unwrap_or(0))
            });
            let mut reader = Self::new(open(0, length)?, keys)?;
            reader.limit = limit;
            return Ok(reader);
        }
        let mut header = [0u8; FILE_HEADER_SIZE];
        let (n, err) = read_fill(&mut open(0, Some(HEADER))?, &mut header);
        if let Some(e) = err {
            return Err(e);
        }
        if n < FILE_HEADER_SIZE {
            return Err(CryptError::EncryptedFileTooShort.into());
        }
        let nonce = read_nonce(&header)?;
        let u = calculate_underlying(offset, limit);
        let inner = open(u.offset, u.limit)?;
        Ok(Self::new_at(inner, keys, nonce, offset, limit))
    }

    fn build(inner: R, keys: &Keys, nonce: Nonce, skip: usize, limit: Option<u64>) -> Self {
        DecryptReader {
            inner,
            key: DataKey(*keys.data_key()),
            file_nonce: nonce,
            nonce,
            tag: [0; BLOCK_HEADER_SIZE],
            buf: vec![0u8; BLOCK_DATA_SIZE].into_boxed_slice(),
            pos: 0,
            len: 0,
            skip,
            first_block_due: true,
            limit,
            pending: None,
            eof: false,
            failed: None,
            pass_bad_blocks: false,
        }
    }

    /// rclone's `pass_bad_blocks`: output a block that fails authentication as zeros instead
    /// of failing. For manual recovery only; never for sync tasks.
    pub fn set_pass_bad_blocks(&mut self, on: bool) {
        self.pass_bad_blocks = on;
    }

    /// The file nonce from the header.
    pub fn file_nonce(&self) -> Nonce {
        self.file_nonce
    }

    /// The nonce the next block will be opened with.
    pub fn next_nonce(&self) -> Nonce {
        self.nonce
    }

    /// The encrypted source.
    pub fn into_inner(self) -> R {
        self.inner
    }

    fn fail(&mut self, err: io::Error) -> io::Error {
        self.failed = Some(Sticky::new(&err));
        err
    }

    /// Reads, authenticates and decrypts the next block into `dst`; the plaintext length,
    /// 0 at end of input.
    fn open_next(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            return Err(self.fail(e));
        }
        let (mut n, mut err) = read_fill(&mut self.inner, &mut self.tag);
        if n == BLOCK_HEADER_SIZE && err.is_none() {
            let (m, e) = read_fill(&mut self.inner, &mut dst[..BLOCK_DATA_SIZE]);
            n += m;
            err = e;
        }
        if n == 0 {
            return match err {
                Some(e) => Err(self.fail(e)),
                None => Ok(0),
            };
        }
        if n <= BLOCK_HEADER_SIZE {
            // A source error is likely the better explanation of a short read.
            let e = err.unwrap_or_else(|| CryptError::EncryptedFileBadHeader.into());
            return Err(self.fail(e));
        }
        let data = &mut dst[..n - BLOCK_HEADER_SIZE];
        if !open_in_place(&self.key, &self.nonce, &self.tag, data) {
            if let Some(e) = err {
                return Err(self.fail(e));
            }
            if !self.pass_bad_blocks {
                return Err(self.fail(CryptError::EncryptedBadBlock.into()));
            }
            data.fill(0);
        }
        self.nonce.increment();
        self.pending = err;
        Ok(n - BLOCK_HEADER_SIZE)
    }
}

impl<R: Read + Seek> DecryptReader<R> {
    /// Repositions to plaintext `offset` with a new `limit`, seeking the encrypted source
    /// (rclone `RangeSeek`). A reader that has failed stays failed.
    pub fn seek_to(&mut self, offset: u64, limit: Option<u64>) -> io::Result<()> {
        if let Some(s) = &self.failed {
            return Err(s.to_io());
        }
        let u = calculate_underlying(offset, limit);
        if let Err(e) = self.inner.seek(SeekFrom::Start(u.offset)) {
            return Err(self.fail(e));
        }
        self.nonce = self.file_nonce;
        self.nonce.add(u.blocks);
        self.pos = 0;
        self.len = 0;
        self.skip = u.discard as usize;
        self.first_block_due = true;
        self.limit = limit;
        self.pending = None;
        self.eof = false;
        Ok(())
    }
}

impl<R: Read> Read for DecryptReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(s) = &self.failed {
            return Err(s.to_io());
        }
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.pos < self.len {
                let mut n = out.len().min(self.len - self.pos);
                if let Some(limit) = self.limit {
                    n = n.min(usize::try_from(limit).unwrap_or(usize::MAX));
                }
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                if let Some(limit) = &mut self.limit {
                    *limit -= n as u64;
                }
                return Ok(n);
            }
            if self.eof || (self.limit == Some(0) && !self.first_block_due) {
                return Ok(0);
            }
            let whole_block_fits = self.limit.is_none_or(|l| l >= DATA);
            if self.skip == 0 && out.len() >= BLOCK_DATA_SIZE && whole_block_fits {
                // Decrypt straight into the caller's buffer: no copy.
                let n = self.open_next(&mut out[..BLOCK_DATA_SIZE])?;
                self.first_block_due = false;
                if n == 0 {
                    self.eof = true;
                }
                if let Some(limit) = &mut self.limit {
                    *limit -= n as u64;
                }
                return Ok(n);
            }
            let mut buf = std::mem::take(&mut self.buf);
            let opened = self.open_next(&mut buf);
            self.buf = buf;
            let n = opened?;
            self.first_block_due = false;
            // Also catches an offset inside a block that does not exist (n == 0, skip > 0).
            if self.skip > n {
                return Err(self.fail(CryptError::BadSeek.into()));
            }
            if n == 0 {
                self.eof = true;
                return Ok(0);
            }
            self.pos = self.skip;
            self.len = n;
            self.skip = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::io::Cursor;
    use std::sync::OnceLock;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// rclone's test pattern: byte i (from 1) is (i mod 257) mod 256.
    fn counter_pattern(n: usize) -> Vec<u8> {
        (1..=n).map(|i| (i % 257) as u8).collect()
    }

    use crate::crypt::pseudo_random;

    fn potato() -> &'static Keys {
        static K: OnceLock<Keys> = OnceLock::new();
        K.get_or_init(|| Keys::derive("potato", "").unwrap())
    }

    fn potato_sausage() -> &'static Keys {
        static K: OnceLock<Keys> = OnceLock::new();
        K.get_or_init(|| Keys::derive("potato", "sausage").unwrap())
    }

    fn nonce_1_to_24() -> Nonce {
        let mut n = [0u8; 24];
        for (i, b) in n.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        Nonce(n)
    }

    fn encrypt_all(keys: &Keys, nonce: Nonce, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        EncryptReader::with_nonce(plain, keys, nonce).read_to_end(&mut out).unwrap();
        out
    }

    fn decrypt_all(keys: &Keys, enc: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        DecryptReader::new(enc, keys)?.read_to_end(&mut out)?;
        Ok(out)
    }

    fn crypt_err(e: &io::Error) -> CryptError {
        CryptError::from_io(e).cloned().unwrap_or_else(|| panic!("not a crypt error: {e}"))
    }

    /// Reads with a fixed buffer size, to exercise partial reads.
    fn read_chunked<R: Read>(mut r: R, chunk: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                return Ok(out);
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// A source that yields `data`, then fails with `err` (message) instead of ending.
    struct FailAfter {
        data: Cursor<Vec<u8>>,
        err: &'static str,
    }

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.data.read(buf)?;
            if n == 0 && !buf.is_empty() {
                return Err(io::Error::other(self.err));
            }
            Ok(n)
        }
    }

    // §13.9
    #[test]
    fn encrypted_sizes() {
        let rows: &[(u64, u64)] = &[
            (0, 32),
            (1, 49),
            (65536, 65584),
            (65537, 65601),
            (1048576, 1048864),
            (1114111, 1114415),
            (1073741824, 1074004000),
            (1099511627777, 1099780063281),
            (200000, 200096),
        ];
        for &(plain, enc) in rows {
            assert_eq!(encrypted_size(plain), enc, "encrypted_size({plain})");
            assert_eq!(decrypted_size(enc), Ok(plain), "decrypted_size({enc})");
        }
    }

    // §13.10
    #[test]
    fn invalid_encrypted_sizes() {
        let rows = [
            (0, CryptError::EncryptedFileTooShort),
            (1, CryptError::EncryptedFileTooShort),
            (7, CryptError::EncryptedFileTooShort),
            (33, CryptError::EncryptedFileBadHeader),
            (48, CryptError::EncryptedFileBadHeader),
            (65585, CryptError::EncryptedFileBadHeader),
            (65600, CryptError::EncryptedFileBadHeader),
        ];
        for (enc, err) in rows {
            assert_eq!(decrypted_size(enc), Err(err), "decrypted_size({enc})");
        }
        // Extremes neither panic nor wrap.
        let body = u64::MAX - 32;
        let want = if body % 65552 > 16 {
            Ok(body / 65552 * 65536 + body % 65552 - 16)
        } else {
            Err(CryptError::EncryptedFileBadHeader)
        };
        assert_eq!(decrypted_size(u64::MAX), want);
        assert_eq!(encrypted_size(u64::MAX), u64::MAX);
    }

    // §13.11, increment: 00 → 01, k × FF → k × 00 then 01, 24 × FF → 24 × 00.
    #[test]
    fn nonce_increment() {
        let mut n = Nonce::default();
        n.increment();
        let mut want = [0u8; 24];
        want[0] = 1;
        assert_eq!(n.0, want);
        for k in 1..=23 {
            let mut n = Nonce::default();
            n.0[..k].fill(0xFF);
            n.increment();
            let mut want = [0u8; 24];
            want[k] = 1;
            assert_eq!(n.0, want, "k = {k}");
        }
        let mut n = Nonce([0xFF; 24]);
        n.increment();
        assert_eq!(n.0, [0u8; 24]);
    }

    // §13.11, add.
    #[test]
    fn nonce_add() {
        let mut n = Nonce::default();
        n.add(1);
        assert_eq!(n.0[0], 1);
        assert!(n.0[1..].iter().all(|&b| b == 0));
        // add(2^(8k) - 1) to k × FF, k = 1..8: FE, (k-1) × FF, 01.
        for k in 1..=8usize {
            let x = if k == 8 { u64::MAX } else { (1u64 << (8 * k)) - 1 };
            let mut n = Nonce::default();
            n.0[..k].fill(0xFF);
            n.add(x);
            let mut want = [0u8; 24];
            want[0] = 0xFE;
            want[1..k].fill(0xFF);
            want[k] = 0x01;
            assert_eq!(n.0, want, "k = {k}");
        }
        // add(2^64 - 1) to k × FF, k = 9..23: FE, 7 × FF, (k-8) × 00, 01.
        for k in 9..=23usize {
            let mut n = Nonce::default();
            n.0[..k].fill(0xFF);
            n.add(u64::MAX);
            let mut want = [0u8; 24];
            want[0] = 0xFE;
            want[1..8].fill(0xFF);
            want[k] = 0x01;
            assert_eq!(n.0, want, "k = {k}");
        }
        let mut n = Nonce([0xFF; 24]);
        n.add(u64::MAX);
        let mut want = [0u8; 24];
        want[0] = 0xFE;
        want[1..8].fill(0xFF);
        assert_eq!(n.0, want, "carry out of byte 23 is lost");
    }

    // §13.12
    #[test]
    fn calculate_underlying_table() {
        let rows: &[(u64, i64, u64, i64, u64, u64)] = &[
            (0, -1, 32, -1, 0, 0),
            (1, -1, 32, -1, 1, 0),
            (65535, -1, 32, -1, 65535, 0),
            (65536, -1, 65584, -1, 0, 1),
            (65537, -1, 65584, -1, 1, 1),
            (0, 1, 32, 65552, 0, 0),
            (1, 1, 32, 65552, 1, 0),
            (65535, 1, 32, 65552, 65535, 0),
            (65536, 1, 65584, 65552, 0, 1),
            (65537, 1, 65584, 65552, 1, 1),
            (0, 100, 32, 65552, 0, 0),
            (1, 100, 32, 65552, 1, 0),
            (65535, 100, 32, 131104, 65535, 0),
            (65536, 100, 65584, 65552, 0, 1),
            (65537, 100, 65584, 65552, 1, 1),
            (0, 65535, 32, 65552, 0, 0),
            (1, 65535, 32, 65552, 1, 0),
            (65535, 65535, 32, 131104, 65535, 0),
            (65536, 65535, 65584, 65552, 0, 1),
            (65537, 65535, 65584, 65552, 1, 1),
            (0, 65536, 32, 65552, 0, 0),
            (1, 65536, 32, 131104, 1, 0),
            (65535, 65536, 32, 131104, 65535, 0),
            (65536, 65536, 65584, 65552, 0, 1),
            (65537, 65536, 65584, 131104, 1, 1),
            (0, 65537, 32, 131104, 0, 0),
            (1, 65537, 32, 131104, 1, 0),
            (65535, 65537, 32, 131104, 65535, 0),
            (65536, 65537, 65584, 131104, 0, 1),
            (65537, 65537, 65584, 131104, 1, 1),
        ];
        let opt = |v: i64| u64::try_from(v).ok();
        for &(offset, limit, uoff, ulimit, discard, blocks) in rows {
            let got = calculate_underlying(offset, opt(limit));
            let want = Underlying { offset: uoff, limit: opt(ulimit), discard, blocks };
            assert_eq!(got, want, "offset {offset}, limit {limit}");
        }
        // Hostile values saturate instead of overflowing.
        let u = calculate_underlying(u64::MAX, Some(u64::MAX));
        assert_eq!((u.offset, u.limit), (u64::MAX, Some(u64::MAX)));
    }

    const SWEEP_OFFSETS: &[u64] = &[
        0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513,
        1023, 1024, 1025, 2047, 2048, 2049, 4095, 4096, 4097, 8191, 8192, 8193, 16383, 16384, 16385, 32767, 32768,
        32769, 65535, 65536, 65537, 131071, 131072, 131073, 149999, 150000,
    ];
    const SWEEP_LIMITS: &[i64] = &[-1, 0, 1, 65535, 65536, 65537, 131071, 131072, 131073];

    // §13.12 seek/limit sweep, one fresh ranged open per range.
    #[test]
    fn seek_limit_sweep_fresh_open() {
        let keys = Keys::zero();
        let plain = counter_pattern(150000);
        let enc = encrypt_all(&keys, Nonce::default(), &plain);
        for &offset in SWEEP_OFFSETS {
            for &limit in SWEEP_LIMITS {
                let limit = u64::try_from(limit).ok();
                if limit.is_some_and(|l| offset + l > 150000) {
                    continue;
                }
                let mut requests = Vec::new();
                let open = |off: u64, len: Option<u64>| -> io::Result<Cursor<Vec<u8>>> {
                    requests.push((off, len));
                    let start = (off as usize).min(enc.len());
                    let end = len.map_or(enc.len(), |l| (start + l as usize).min(enc.len()));
                    Ok(Cursor::new(enc[start..end].to_vec()))
                };
                let mut r = DecryptReader::open_range(&keys, open, offset, limit).unwrap();
                let got = read_chunked(&mut r, 7000).unwrap();
                let end = limit.map_or(plain.len(), |l| (offset + l) as usize);
                assert_eq!(got, &plain[offset as usize..end], "offset {offset}, limit {limit:?}");
                let inner = r.into_inner();
                assert_eq!(
                    inner.position() as usize,
                    inner.get_ref().len(),
                    "underlying range not consumed: offset {offset}, limit {limit:?}"
                );
                // rclone's opening strategy: one request at offset 0, else header then blocks.
                let u = calculate_underlying(offset, limit);
                if offset == 0 {
                    assert_eq!(requests, vec![(0, limit.map(|_| 32 + u.limit.unwrap_or(0)))]);
                } else {
                    assert_eq!(requests, vec![(0, Some(32)), (u.offset, u.limit)]);
                }
            }
        }
    }

    // §13.12 seek/limit sweep, one open then repeated seeks.
    #[test]
    fn seek_limit_sweep_repeated_seeks() {
        let keys = Keys::zero();
        let plain = counter_pattern(150000);
        let enc = encrypt_all(&keys, Nonce::default(), &plain);
        let mut r = DecryptReader::new(Cursor::new(enc), &keys).unwrap();
        for &offset in SWEEP_OFFSETS {
            for &limit in SWEEP_LIMITS {
                let limit = u64::try_from(limit).ok();
                if limit.is_some_and(|l| offset + l > 150000) {
                    continue;
                }
                r.seek_to(offset, limit).unwrap();
                let got = read_chunked(&mut r, 65536).unwrap();
                let end = limit.map_or(plain.len(), |l| (offset + l) as usize);
                assert_eq!(got, &plain[offset as usize..end], "offset {offset}, limit {limit:?}");
            }
        }
    }

    #[test]
    fn seek_beyond_end() {
        let keys = Keys::zero();
        let enc = encrypt_all(&keys, Nonce::default(), &counter_pattern(150000));
        let mut r = DecryptReader::new(Cursor::new(enc.clone()), &keys).unwrap();
        r.seek_to(150001, None).unwrap();
        let e = read_chunked(&mut r, 100).unwrap_err();
        assert_eq!(crypt_err(&e), CryptError::BadSeek);
        assert_eq!(e.to_string(), "Seek beyond end of file");
        // Past the end of the last block entirely.
        let mut r = DecryptReader::new(Cursor::new(enc.clone()), &keys).unwrap();
        r.seek_to(300000, None).unwrap();
        assert_eq!(crypt_err(&read_chunked(&mut r, 100).unwrap_err()), CryptError::BadSeek);
        // An exact block boundary past the end reads as empty.
        let mut r = DecryptReader::new(Cursor::new(enc), &keys).unwrap();
        r.seek_to(196608, None).unwrap();
        assert_eq!(read_chunked(&mut r, 100).unwrap(), b"");
    }

    const FILE0: &str = "52434c4f4e4500000102030405060708090a0b0c0d0e0f101112131415161718";

    fn file1() -> Vec<u8> {
        unhex(&format!("{FILE0}095b446cd6237bbcb08d09fb524ce565aa"))
    }

    fn file16() -> Vec<u8> {
        unhex(&format!("{FILE0}b9c4552a2710062918960a3e608c29b9aa8a5e1e165b6d075de4e9bb367fd6d4"))
    }

    // §13.13 content vectors.
    #[test]
    fn content_vectors() {
        let keys = Keys::zero();
        let rows: [(Vec<u8>, Vec<u8>); 3] =
            [(vec![], unhex(FILE0)), (vec![1], file1()), ((1..=16).collect(), file16())];
        for (plain, enc) in rows {
            assert_eq!(hex(&encrypt_all(&keys, nonce_1_to_24(), &plain)), hex(&enc));
            assert_eq!(decrypt_all(&keys, &enc).unwrap(), plain);
        }
    }

    // §13.13 encrypter behaviour.
    #[test]
    fn encrypter_behaviour() {
        let keys = Keys::zero();
        // The nonce comes from the counter-pattern source.
        let nonce = Nonce::from_reader(&mut &counter_pattern(24)[..]).unwrap();
        assert_eq!(nonce, nonce_1_to_24());
        let mut r = EncryptReader::with_nonce(&b"anything"[..], &keys, nonce);
        let mut head = [0u8; 32];
        r.read_exact(&mut head).unwrap();
        assert_eq!(hex(&head), FILE0);
        // A nonce source that runs dry.
        let e = Nonce::from_reader(&mut &counter_pattern(23)[..]).unwrap_err();
        assert_eq!(e.to_string(), "short read of nonce: EOF");
        // A source failing at once: the header first, then its error, then again.
        let src = FailAfter { data: Cursor::new(vec![]), err: "unexpected EOF" };
        let mut r = EncryptReader::with_nonce(src, &keys, nonce);
        let mut head = [0u8; 32];
        r.read_exact(&mut head).unwrap();
        assert_eq!(hex(&head), FILE0);
        assert_eq!(r.read(&mut head).unwrap_err().to_string(), "unexpected EOF");
        assert_eq!(r.read(&mut head).unwrap_err().to_string(), "unexpected EOF");
        // A source failing after data: the block is delivered, then the error.
        let src = FailAfter { data: Cursor::new(vec![1]), err: "potato" };
        let r = EncryptReader::with_nonce(src, &keys, nonce);
        let mut out = Vec::new();
        let e = r.take(1000).read_to_end(&mut out).unwrap_err();
        assert_eq!(e.to_string(), "potato");
        assert_eq!(out, file1());
        // Random nonces differ.
        let a = EncryptReader::new(&b""[..], &keys).unwrap().file_nonce();
        let b = EncryptReader::new(&b""[..], &keys).unwrap().file_nonce();
        assert_ne!(a, b);
    }

    // §13.13 decrypter behaviour.
    #[test]
    fn decrypter_behaviour() {
        let keys = Keys::zero();
        let file0 = unhex(FILE0);
        let r = DecryptReader::new(&file0[..], &keys).unwrap();
        assert_eq!(r.file_nonce(), nonce_1_to_24());
        assert_eq!(read_nonce(&file0), Ok(nonce_1_to_24()));
        for len in 0..32 {
            let e = DecryptReader::new(&file0[..len], &keys).unwrap_err();
            assert_eq!(crypt_err(&e), CryptError::EncryptedFileTooShort, "prefix {len}");
            assert_eq!(read_nonce(&file0[..len]), Err(CryptError::EncryptedFileTooShort));
        }
        let src = FailAfter { data: Cursor::new(vec![]), err: "potato" };
        assert_eq!(DecryptReader::new(src, &keys).unwrap_err().to_string(), "potato");
        for i in 0..8 {
            let mut bad = file0.clone();
            bad[i] ^= 0x01;
            let e = DecryptReader::new(&bad[..], &keys).unwrap_err();
            assert_eq!(crypt_err(&e), CryptError::EncryptedBadMagic, "byte {i}");
            assert_eq!(e.to_string(), "not an encrypted file - bad magic string");
        }
        // file16 then a source error: 16 bytes, then that error.
        let src = FailAfter { data: Cursor::new(file16()), err: "unexpected EOF" };
        let mut r = DecryptReader::new(src, &keys).unwrap();
        let mut buf = [0u8; 100];
        assert_eq!(r.read(&mut buf).unwrap(), 16);
        assert_eq!(&buf[..16], &(1..=16).collect::<Vec<u8>>()[..]);
        assert_eq!(r.read(&mut buf).unwrap_err().to_string(), "unexpected EOF");
        assert_eq!(r.read(&mut buf).unwrap_err().to_string(), "unexpected EOF");
        // Truncations of file16.
        let f16 = file16();
        for len in 0..f16.len() {
            let got = decrypt_all(&keys, &f16[..len]);
            let want = match len {
                0..=31 => Err(CryptError::EncryptedFileTooShort),
                32 => Ok(vec![]),
                33..=48 => Err(CryptError::EncryptedFileBadHeader),
                _ => Err(CryptError::EncryptedBadBlock),
            };
            assert_eq!(got.map_err(|e| crypt_err(&e)), want, "truncated to {len}");
        }
        // Any flipped byte.
        for i in 0..f16.len() {
            let mut bad = f16.clone();
            bad[i] ^= 0xFF;
            let want = if i < 8 { CryptError::EncryptedBadMagic } else { CryptError::EncryptedBadBlock };
            let e = decrypt_all(&keys, &bad).unwrap_err();
            assert_eq!(crypt_err(&e), want, "byte {i}");
        }
        // pass_bad_blocks outputs zeros for the bad block.
        let mut bad = f16.clone();
        *bad.last_mut().unwrap() ^= 0xFF;
        let mut r = DecryptReader::new(&bad[..], &keys).unwrap();
        r.set_pass_bad_blocks(true);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, vec![0u8; 16]);
        // file1 then a source error.
        let src = FailAfter { data: Cursor::new(file1()), err: "potato" };
        let r = DecryptReader::new(src, &keys).unwrap();
        assert_eq!(read_chunked(r, 100).unwrap_err().to_string(), "potato");
        // file1 read to the end.
        assert_eq!(decrypt_all(&keys, &file1()).unwrap(), vec![1]);
    }

    /// Encrypts and decrypts `plain` with the given read-buffer size on both sides.
    fn round_trip(keys: &Keys, plain: &[u8], chunk: usize) {
        let enc = read_chunked(EncryptReader::new(plain, keys).unwrap(), chunk).unwrap();
        assert_eq!(enc.len() as u64, encrypted_size(plain.len() as u64), "size {}", plain.len());
        let dec = read_chunked(DecryptReader::new(&enc[..], keys).unwrap(), chunk).unwrap();
        assert!(dec == plain, "round trip of {} bytes with buffer {chunk}", plain.len());
    }

    #[test]
    fn round_trips_edge_sizes() {
        let keys = Keys::zero();
        let mut sizes = vec![0usize, 1, 65535, 65536, 65537, 1024 * 1024 + 1];
        sizes.extend(
            pseudo_random(6, 7)
                .iter()
                .zip(pseudo_random(6, 9))
                .map(|(&a, b)| usize::from(a) * 1000 + usize::from(b) * 13),
        );
        for &size in &sizes {
            let plain = pseudo_random(size, size as u64 + 1);
            for chunk in [4096, 7, BLOCK_SIZE, 1 << 20] {
                round_trip(&keys, &plain, chunk);
            }
        }
        // Byte-at-a-time reads on the sizes around one block.
        for size in [0usize, 1, 65535, 65536, 65537] {
            round_trip(&keys, &pseudo_random(size, 3), 1);
        }
    }

    // §13.13: large round trips; the final nonce is the initial one plus the block count.
    #[test]
    fn round_trips_ten_megabytes() {
        let keys = Keys::zero();
        let plain = counter_pattern(10_000_000);
        let blocks = plain.len().div_ceil(BLOCK_DATA_SIZE) as u64;
        for chunk in [1, 32, 4096, 65536, 65537] {
            let mut enc_reader = EncryptReader::with_nonce(&plain[..], &keys, Nonce::default());
            let enc = read_chunked(&mut enc_reader, chunk).unwrap();
            let mut want = Nonce::default();
            want.add(blocks);
            assert_eq!(enc_reader.next_nonce(), want);
            let mut dec_reader = DecryptReader::new(&enc[..], &keys).unwrap();
            let dec = read_chunked(&mut dec_reader, chunk).unwrap();
            assert_eq!(dec_reader.next_nonce(), want);
            assert!(dec == plain, "buffer {chunk}");
        }
    }

    #[test]
    fn tamper_truncate_wrong_key() {
        let keys = potato();
        let plain = pseudo_random(200_000, 5);
        let enc = encrypt_all(keys, Nonce::random().unwrap(), &plain);
        for pos in [40, 65584 + 10, enc.len() - 1] {
            let mut bad = enc.clone();
            bad[pos] ^= 0x04;
            let e = decrypt_all(keys, &bad).unwrap_err();
            assert_eq!(crypt_err(&e), CryptError::EncryptedBadBlock, "byte {pos}");
            assert_eq!(e.to_string(), "failed to authenticate decrypted block - bad password?");
        }
        // Cut inside a block: authentication fails; cut inside a tag: bad header.
        let e = decrypt_all(keys, &enc[..enc.len() - 1]).unwrap_err();
        assert_eq!(crypt_err(&e), CryptError::EncryptedBadBlock);
        let e = decrypt_all(keys, &enc[..32 + BLOCK_SIZE + 10]).unwrap_err();
        assert_eq!(crypt_err(&e), CryptError::EncryptedFileBadHeader);
        // Cut at a block boundary decrypts cleanly (no end marker): size checks catch it.
        let cut = decrypt_all(keys, &enc[..32 + BLOCK_SIZE]).unwrap();
        assert_eq!(cut.len(), BLOCK_DATA_SIZE);
        assert_ne!(cut.len() as u64, decrypted_size(enc.len() as u64).unwrap());
        // Wrong password.
        let e = decrypt_all(potato_sausage(), &enc).unwrap_err();
        assert_eq!(crypt_err(&e), CryptError::EncryptedBadBlock);
        // Blocks swapped.
        let mut swapped = enc.clone();
        let (a, b) = swapped[32..32 + 2 * BLOCK_SIZE].split_at_mut(BLOCK_SIZE);
        a.swap_with_slice(b);
        assert_eq!(crypt_err(&decrypt_all(keys, &swapped).unwrap_err()), CryptError::EncryptedBadBlock);
    }

    // §13.15: files written by rclone 1.60.1.
    #[test]
    fn real_rclone_files() {
        let rows: [(&Keys, &[u8], &str); 6] = [
            (
                potato(),
                b"hello\n",
                "52434c4f4e4500005bb696bdd40ca5aaf84863d65597ea5acb25fedba1063f33e2b95fe04b0e3836e34db89294ad514728d94086bf3e",
            ),
            (
                potato(),
                b"x",
                "52434c4f4e4500001af3919d3832b50386e41dabb62143fb3afae59f602fd795f260850eb6e798d764b986810551bfddef",
            ),
            (potato(), b"", "52434c4f4e450000ab95c20f4368f53922d7ea139f08aa6ad2a052367c04592d"),
            (
                potato_sausage(),
                b"hello\n",
                "52434c4f4e45000016e686223d99a752691e40075189d0cbea1c03e2db4dfacd1e4ff83462a96588d6a4d7cac541b88d016c0da38862",
            ),
            (
                potato_sausage(),
                b"x",
                "52434c4f4e45000084a6464c823edf47e36b4f7ae16eca4075e43ae51628fce73f976848f2e26c83db41cd5918e9851676",
            ),
            (potato_sausage(), b"", "52434c4f4e450000d67584db3609ba4de4d9c39873d764b5d774f4debcf25bf9"),
        ];
        for (keys, plain, enc_hex) in rows {
            let enc = unhex(enc_hex);
            assert_eq!(decrypt_all(keys, &enc).unwrap(), plain);
            let nonce = read_nonce(&enc).unwrap();
            assert_eq!(hex(&encrypt_all(keys, nonce, plain)), enc_hex);
            assert_eq!(decrypted_size(enc.len() as u64), Ok(plain.len() as u64));
        }
    }

    // §13.16: a multi-block file written by rclone 1.60.1.
    #[test]
    fn real_rclone_multi_block_file() {
        let plain: Vec<u8> = (0..200000u64).map(|i| ((7 * i + 3) % 251) as u8).collect();
        assert_eq!(hex(&Sha256::digest(&plain)), "d2979f63fc353288130be1837d34f088e378e76c5baa67b8a6077c950db3c286");
        let header = unhex("52434c4f4e450000e121a01ee511bb56206ac356c46ecba40ff4bd48ed5d9552");
        let nonce = read_nonce(&header).unwrap();
        let enc = encrypt_all(potato(), nonce, &plain);
        assert_eq!(enc.len(), 200096);
        assert_eq!(hex(&Sha256::digest(&enc)), "d5da0c60a5b85805ffa16c96e5dc13ab812c6ce8b9f77552ccaac3b1ede80209");
        assert!(decrypt_all(potato(), &enc).unwrap() == plain);
    }

    /// A broken reader that claims to have read more than it was given.
    struct Liar;

    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            buf.fill(0x52);
            Ok(buf.len() + 10)
        }
    }

    #[test]
    fn lying_reader_does_not_panic() {
        let keys = Keys::zero();
        let mut out = vec![0u8; 200_000];
        let mut r = EncryptReader::with_nonce(Liar, &keys, Nonce::default());
        for _ in 0..4 {
            assert!(r.read(&mut out).is_ok());
            assert!(r.read(&mut out[..100]).is_ok());
        }
        // Liar's stream starts "RRRR...", not the magic.
        assert!(DecryptReader::new(Liar, &keys).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let keys = Keys::zero();
        for seed in 0..200u64 {
            let len = (seed as usize * 7919) % 70_000;
            let mut junk = pseudo_random(len, seed + 1);
            if seed % 2 == 0 && junk.len() >= 8 {
                junk[..8].copy_from_slice(FILE_MAGIC);
            }
            let _ = read_nonce(&junk);
            let _ = decrypt_all(&keys, &junk);
            if let Ok(mut r) = DecryptReader::new(Cursor::new(junk.clone()), &keys) {
                r.set_pass_bad_blocks(true);
                let _ = read_chunked(&mut r, 1000);
                let _ = r.seek_to(seed * 1_000_003, Some(seed));
                let _ = read_chunked(&mut r, 1000);
            }
            let _ = decrypted_size(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let _ = calculate_underlying(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15), Some(u64::MAX - seed));
        }
    }
}
