//! A `Remote` that encrypts names and contents the way rclone crypt does, wrapping any
//! other remote, so every provider gets client-side encryption.
//!
//! Names: each segment is encrypted by the configured [`NameCipher`]. Local names that are
//! not UTF-8 are first written with rclone's quoting of invalid bytes (`‛XX`), which keeps
//! them readable by stock rclone and exact on the way back.
//!
//! Contents: uploads encrypt from a re-openable [`Source`] with block-exact random access
//! (a multipart upload still reads its parts in parallel), and hash the ciphertext in the
//! same pass, so the upload is verified against the wrapped remote's MD5 without reading
//! the file twice. Reads decrypt with ranged opens. Sizes are translated both ways.
//!
//! Listings skip names that do not decrypt, with a warning, as rclone does. But a
//! directory where *nothing* decrypts is an error: an empty listing would make a PULL SYNC
//! with a wrong password delete the whole local tree.

use super::content::{
    BLOCK_DATA_SIZE, BLOCK_SIZE, EncryptReader, FILE_HEADER_SIZE, Nonce, decrypted_size, encrypted_size,
};
use super::{CryptError, DecryptReader, Keys, NameCipher};
use crate::error::{Error, Kind, Result};
use crate::path::{RelPath, decode_key_segment, display_bytes, encode_key_segment};
use crate::remote::{Entry, Features, Md5, Nanos, Opened, PutInfo, Remote, RemoteRef, RootState, Source};
use md5::Digest;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const HEADER: u64 = FILE_HEADER_SIZE as u64;
const BLOCK: u64 = BLOCK_SIZE as u64;
const DATA: u64 = BLOCK_DATA_SIZE as u64;

/// The text of the error for a directory where no name decrypts.
pub const NO_NAME_DECRYPTS: &str = "No remote file names could be decrypted - wrong encryption password or salt?";

pub struct CryptRemote {
    inner: RemoteRef,
    keys: Keys,
    names: NameCipher,
    undecryptable: AtomicU64,
}

fn crypt_error(e: CryptError) -> Error {
    Error::new(Kind::Corrupted, e.to_string())
}

/// Decryption failures inside a reader come back as `io::Error`s carrying a `CryptError`;
/// give them our kind so they read as corruption, not as disk trouble.
struct MapErrors<R>(R);

impl<R: Read> Read for MapErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match CryptError::from_io(&e) {
            Some(ce) => Error::new(Kind::Corrupted, ce.to_string()).into(),
            None => e,
        })
    }
}

impl CryptRemote {
    pub fn new(inner: RemoteRef, keys: Keys, names: NameCipher) -> CryptRemote {
        CryptRemote { inner, keys, names, undecryptable: AtomicU64::new(0) }
    }

    pub fn inner(&self) -> &RemoteRef {
        &self.inner
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Names skipped so far because they did not decrypt.
    pub fn undecryptable(&self) -> u64 {
        self.undecryptable.load(Relaxed)
    }

    fn plain_to_str(seg: &[u8]) -> String {
        encode_key_segment(seg)
    }

    /// The wrapped remote's path for a file (`dir = false`) or directory.
    pub fn encrypt_path(&self, path: &RelPath, dir: bool) -> Result<RelPath> {
        if path.is_root() {
            return Ok(RelPath::root());
        }
        let plain: Vec<String> = path.segments().map(Self::plain_to_str).collect();
        let joined = plain.join("/");
        let enc = if dir { self.names.encrypt_dir_name(&joined) } else { self.names.encrypt_file_name(&joined) };
        let enc = enc.map_err(|e| crypt_error(e).with_path(path.display()))?;
        RelPath::new(enc.as_bytes())
    }

    /// The entry as the wrapped remote knows it (encrypted name and size).
    fn inner_entry(&self, path: &RelPath, entry: &Entry) -> Result<(RelPath, Entry)> {
        let p = self.encrypt_path(path, entry.is_dir())?;
        let mut e = entry.clone();
        e.name = p.file_name().to_vec();
        if !entry.is_dir() && entry.size >= 0 {
            e.size = encrypted_size(entry.size as u64) as i64;
        }
        Ok((p, e))
    }

    fn decrypt_entry(&self, mut e: Entry) -> std::result::Result<Entry, String> {
        let name = std::str::from_utf8(&e.name).map_err(|_| "not UTF-8".to_string())?;
        let plain = if e.is_dir() { self.names.decrypt_dir_name(name) } else { self.names.decrypt_file_name(name) };
        let plain = plain.map_err(|err| err.to_string())?;
        if !e.is_dir() && e.size >= 0 {
            e.size = decrypted_size(e.size as u64).map_err(|err| err.to_string())? as i64;
        }
        e.name = decode_key_segment(&plain);
        e.md5 = None;
        Ok(e)
    }
}

/// The encrypted form of a source: `encrypted_size` bytes, readable from any offset.
struct EncryptedSource<'a> {
    src: &'a dyn Source,
    keys: &'a Keys,
    nonce: Nonce,
    /// MD5 of the ciphertext, when one reader produced all of it.
    md5: Mutex<Option<Md5>>,
}

struct HashingRead<'a, R> {
    inner: R,
    hasher: Option<md5::Md5>,
    pos: u64,
    total: u64,
    slot: &'a Mutex<Option<Md5>>,
}

impl<R: Read> Read for HashingRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
            self.pos += n as u64;
            if self.pos == self.total
                && let (Some(h), Ok(mut slot)) = (self.hasher.take(), self.slot.lock())
            {
                *slot = Some(h.finalize().into());
            }
        }
        Ok(n)
    }
}

impl Source for EncryptedSource<'_> {
    fn size(&self) -> u64 {
        encrypted_size(self.src.size())
    }

    fn mtime(&self) -> Result<Nanos> {
        self.src.mtime()
    }

    fn posix_meta(&self) -> crate::remote::PosixMeta {
        self.src.posix_meta()
    }

    fn open_at(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.open_range(offset, len, false)
    }

    fn open_for_hash(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.open_range(offset, len, true)
    }
}

impl EncryptedSource<'_> {
    /// Ciphertext bytes `[offset, offset + len)`; `for_hash` reads the plaintext with
    /// [`Source::open_for_hash`] (not a transfer).
    fn open_range(&self, offset: u64, len: u64, for_hash: bool) -> Result<Box<dyn Read + Send + '_>> {
        let total = self.size();
        let len = len.min(total.saturating_sub(offset));
        if len == 0 {
            return Ok(Box::new(io::empty()));
        }
        let plain_size = self.src.size();
        // Blocks covering [offset, offset + len) of the ciphertext.
        let first = offset.saturating_sub(HEADER) / BLOCK;
        let last = (offset + len - 1).saturating_sub(HEADER) / BLOCK;
        let plain_start = (first * DATA).min(plain_size);
        let plain_end = ((last + 1) * DATA).min(plain_size);
        let plain = if for_hash {
            self.src.open_for_hash(plain_start, plain_end - plain_start)?
        } else {
            self.src.open_at(plain_start, plain_end - plain_start)?
        };
        let mut nonce = self.nonce;
        nonce.add(first);
        let enc = EncryptReader::with_nonce(plain, self.keys, nonce);
        // The reader starts with a header (for `first` > 0 one we do not want) followed by
        // block `first`: skip to the requested offset.
        let stream_start = if first == 0 { 0 } else { HEADER + first * BLOCK - HEADER };
        let skip = if first == 0 { offset } else { offset - stream_start };
        let mut r = MapErrors(enc);
        io::copy(&mut (&mut r).take(skip), &mut io::sink())?;
        let full = offset == 0 && len == total;
        Ok(Box::new(HashingRead {
            inner: r.take(len),
            hasher: full.then(md5::Md5::new),
            pos: 0,
            total: len,
            slot: &self.md5,
        }))
    }
}

impl Remote for CryptRemote {
    fn describe(&self) -> String {
        format!("crypt:{}", self.inner.describe())
    }

    fn features(&self) -> Features {
        Features { hashes: crate::remote::hash::Hashes::NONE, md5_is_slow: false, ..self.inner.features() }
    }

    fn root_state(&self) -> Result<RootState> {
        self.inner.root_state()
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let enc_dir = self.encrypt_path(dir, true)?;
        let listed = self.inner.list_dir(&enc_dir, bad)?;
        let total = listed.len();
        let mut out = Vec::with_capacity(total);
        for e in listed {
            let shown = display_bytes(&e.name);
            match self.decrypt_entry(e) {
                Ok(plain) => out.push(plain),
                Err(why) => {
                    self.undecryptable.fetch_add(1, Relaxed);
                    log::warn!(
                        "{}: Skipping undecryptable file name: {why}",
                        display_bytes(enc_dir.as_bytes()).to_string() + "/" + &shown
                    );
                }
            }
        }
        if total > 0 && out.is_empty() {
            return Err(Error::new(Kind::Corrupted, NO_NAME_DECRYPTS).with_path(self.describe()));
        }
        Ok(out)
    }

    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        let (p, e) = self.inner_entry(path, entry)?;
        self.inner.mod_time(&p, &e)
    }

    fn md5(&self, _path: &RelPath, _entry: &Entry) -> Result<Option<Md5>> {
        Ok(None)
    }

    fn cached_md5(&self, _path: &RelPath, _entry: &Entry) -> Option<Md5> {
        None
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let (p, e) = self.inner_entry(path, entry)?;
        let mtime = Mutex::new(None);
        let meta = Mutex::new(crate::remote::PosixMeta::default());
        let limit = (len != u64::MAX).then_some(len);
        let reader = DecryptReader::open_range(
            &self.keys,
            |o, l| {
                let opened = self.inner.open(&p, &e, o, l.unwrap_or(u64::MAX)).map_err(io::Error::from)?;
                if let (Some(t), Ok(mut m)) = (opened.mtime, mtime.lock()) {
                    m.get_or_insert(t);
                }
                if let (false, Ok(mut m)) = (opened.meta.is_empty(), meta.lock()) {
                    *m = opened.meta;
                }
                Ok(opened.reader)
            },
            offset,
            limit,
        )
        .map_err(|err| {
            let e: Error = match CryptError::from_io(&err) {
                Some(ce) => crypt_error(ce.clone()),
                None => err.into(),
            };
            e.with_path(self.describe() + "/" + &path.display())
        })?;
        let mtime = mtime.lock().ok().and_then(|m| *m).or(entry.mtime);
        let meta = meta.lock().map(|m| *m).unwrap_or_default();
        // The ciphertext authenticates itself block by block (Poly1305): no digest of the
        // plaintext is announced.
        Ok(Opened { reader: Box::new(MapErrors(reader)), mtime, meta, md5: None, checksum: None })
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        let p = self.encrypt_path(path, false)?;
        let nonce = Nonce::random().map_err(crypt_error)?;
        let enc = EncryptedSource { src, keys: &self.keys, nonce, md5: Mutex::new(None) };
        let inner_info = PutInfo {
            size: encrypted_size(info.size),
            mtime: info.mtime,
            md5: None,
            mode: info.mode,
            uid: info.uid,
            gid: info.gid,
        };
        let stored = self.inner.put(&p, &enc, &inner_info)?;
        let computed = enc.md5.lock().ok().and_then(|m| *m);
        if let (Some(a), Some(b)) = (computed, stored.md5)
            && a != b
        {
            let _ = self.inner.delete(&p, &stored);
            return Err(Error::new(Kind::Corrupted, "corrupted on transfer: md5 of the encrypted data differs")
                .with_path(path.display())
                .with_retryable(true));
        }
        if let Some(md5) = computed {
            self.inner.remember_md5(&p, &stored, md5);
        }
        let mut e = stored;
        e.name = path.file_name().to_vec();
        e.size = info.size as i64;
        e.md5 = None;
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: crate::remote::PosixMeta) -> Result<()> {
        let (p, e) = self.inner_entry(path, entry)?;
        self.inner.set_mod_time(&p, &e, mtime, meta)
    }

    fn delete(&self, path: &RelPath, entry: &Entry) -> Result<()> {
        let (p, e) = self.inner_entry(path, entry)?;
        self.inner.delete(&p, &e)
    }

    fn delete_many(&self, items: &[(RelPath, Entry)], report: &mut dyn FnMut(&RelPath, Result<()>)) {
        let mut mapped = Vec::with_capacity(items.len());
        let mut back = std::collections::HashMap::new();
        for (path, entry) in items {
            match self.inner_entry(path, entry) {
                Ok((p, e)) => {
                    back.insert(p.clone(), path.clone());
                    mapped.push((p, e));
                }
                Err(err) => report(path, Err(err)),
            }
        }
        self.inner.delete_many(&mapped, &mut |p, r| {
            if let Some(plain) = back.get(p) {
                report(plain, r);
            }
        });
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.inner.mkdir(&self.encrypt_path(dir, true)?)
    }

    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        self.inner.rmdir(&self.encrypt_path(dir, true)?)
    }

    fn set_dir_mod_time(&self, dir: &RelPath, mtime: Nanos) -> Result<()> {
        self.inner.set_dir_mod_time(&self.encrypt_path(dir, true)?, mtime)
    }

    fn overlap_key(&self) -> Option<String> {
        self.inner.overlap_key()
    }

    fn flush(&self) {
        self.inner.flush();
    }

    fn remove_leftovers(&self) -> Result<u64> {
        self.inner.remove_leftovers()
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.inner.request_counts()
    }
}
