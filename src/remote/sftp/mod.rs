//! SFTP (rclone `backend/sftp`): a folder on an SSH server, over our own synchronous SSH
//! client (`crate::ssh`).
//!
//! On-remote format as rclone writes it: names as they are, control characters and DEL as
//! their Unicode pictures (rclone's SFTP encoding, `Display`); bytes that are not UTF-8 go
//! as they are. Modification times are the files' own (SETSTAT, atime = mtime, 1 s).
//! Digests by running `md5sum` and `sha1sum` on the server where the account has a shell
//! (each probed once with empty input, as rclone does); an account without either
//! (`ForceCommand internal-sftp`) compares by size and time, said once in the log.
//!
//! Every upload is written to a temporary name next to its target, checked (size, and the
//! server's MD5, else SHA-1, of what it stored against the digest of what was sent),
//! given its time, then renamed into place with `posix-rename@openssh.com` (one step, the
//! old version replaced atomically). A failure deletes only the temporary file.
//!
//! The server's host key is checked against a pin when the options carry one; recording
//! the pin with the credential at its first verify is not built yet (docs/PROVIDERS.md).

pub mod provider;

use super::hash::{self, HashType, Hashes};
use super::kit::encoder::{self, Mask};
use super::kit::{dirs, partial};
use super::{Entry, Features, Md5, Nanos, Opened, PosixMeta, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use crate::ssh::auth::{Credentials, authenticate};
use crate::ssh::channel::Session;
use crate::ssh::hostkey::HostKey;
use crate::ssh::sftp::{OPEN_CREAT, OPEN_READ, OPEN_TRUNC, OPEN_WRITE, Sftp};
use crate::ssh::transport::{Endpoint, Transport};
use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// rclone's SFTP name encoding (`Display`): control characters and DEL as pictures.
const NAMES: Mask = Mask::CTL.or(Mask::DEL).or(Mask::ZERO).or(Mask::CRLF);

/// Settings of an SFTP remote.
#[derive(Clone)]
pub struct SftpOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: String,
    /// An OpenSSH private key (the keychain's), tried before the password.
    pub private_key: Option<String>,
    /// The folder: absolute (`/data`) or below the login directory (`data`).
    pub folder: String,
    /// The server's pinned host key (`TYPE BASE64`); `None` accepts the first one seen
    /// (and tells it through [`SftpRemote::host_key`]).
    pub host_key: Option<String>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub connections: usize,
}

impl SftpOptions {
    pub fn new(host: &str, port: u16, user: &str, pass: &str, folder: &str) -> SftpOptions {
        SftpOptions {
            host: host.into(),
            port,
            user: user.into(),
            pass: pass.into(),
            private_key: None,
            folder: folder.into(),
            host_key: None,
            connect_timeout: Duration::from_secs(60),
            io_timeout: Duration::from_secs(300),
            connections: 8,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A name on the wire (inverse: [`decode_name`]); bytes that are not UTF-8 stay raw.
fn encode_name(seg: &[u8]) -> Vec<u8> {
    encoder::encode_raw(seg, NAMES, NAMES)
}

fn decode_name(raw: &[u8]) -> Vec<u8> {
    encoder::decode_raw(raw, NAMES, NAMES)
}

/// A path quoted for a POSIX shell as rclone quotes it (a backslash before every
/// character outside a safe set).
fn shell_quote(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len() * 2);
    for &b in path {
        if b.is_ascii_alphanumeric() || b"_.,:/@-".contains(&b) || b >= 0x80 {
            out.push(b);
        } else {
            out.push(b'\\');
            out.push(b);
        }
    }
    out
}

pub struct SftpRemote {
    opts: SftpOptions,
    pool: Arc<Mutex<Vec<Sftp>>>,
    /// The root's absolute path, without a trailing `/` (`""` = `/`).
    root: Vec<u8>,
    /// The host key the first connection showed.
    seen_key: Mutex<Option<HostKey>>,
    /// `md5sum` runs on the server.
    md5sum: AtomicBool,
    /// `sha1sum` runs on the server.
    sha1sum: AtomicBool,
    dirs: Mutex<HashSet<Vec<u8>>>,
    leftovers: Mutex<Vec<RelPath>>,
    shown_root: String,
}

impl SftpRemote {
    pub fn new(opts: SftpOptions) -> Result<SftpRemote> {
        if opts.folder.split('/').any(|s| s == "." || s == "..") {
            return Err(Error::usage(format!("invalid folder {:?}", opts.folder)));
        }
        let mut r = SftpRemote {
            shown_root: String::new(),
            root: Vec::new(),
            pool: Arc::new(Mutex::new(Vec::new())),
            seen_key: Mutex::new(None),
            md5sum: AtomicBool::new(false),
            sha1sum: AtomicBool::new(false),
            dirs: Mutex::new(HashSet::new()),
            leftovers: Mutex::new(Vec::new()),
            opts,
        };
        let mut first = r.connect()?;
        let folder = r.opts.folder.trim_end_matches('/');
        let root = if folder.starts_with('/') {
            folder.as_bytes().to_vec()
        } else {
            let home = first.realpath(b".")?;
            let mut p = home.strip_suffix(b"/").unwrap_or(&home).to_vec();
            if !folder.is_empty() {
                p.push(b'/');
                p.extend_from_slice(folder.as_bytes());
            }
            p
        };
        r.root = if root == b"/" { Vec::new() } else { root };
        // rclone's probe: a digest command that prints the empty input's digest.
        let mut probe = |cmd: &[u8], empty: &[u8]| matches!(first.session().run(cmd, 4096), Ok((out, Some(0), _)) if out.starts_with(empty));
        r.md5sum.store(probe(b"md5sum", b"d41d8cd98f00b204e9800998ecf8427e"), Relaxed);
        r.sha1sum.store(probe(b"sha1sum", b"da39a3ee5e6b4b0d3255bfef95601890afd80709"), Relaxed);
        if !r.md5sum.load(Relaxed) && !r.sha1sum.load(Relaxed) {
            log::info!(
                "SFTP {}: the server runs neither md5sum nor sha1sum for this account; files are compared by size and time",
                r.opts.host
            );
        }
        r.shown_root = format!(
            "sftp://{}@{}{}",
            r.opts.user,
            dirs::host_port(&r.opts.host, r.opts.port),
            if r.root.is_empty() { "/".into() } else { crate::path::display_bytes(&r.root) }
        );
        lock(&r.pool).push(first);
        Ok(r)
    }

    /// The host key the server showed (to pin on a first verify).
    pub fn host_key(&self) -> Option<String> {
        lock(&self.seen_key).as_ref().map(HostKey::line)
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            host: self.opts.host.clone(),
            port: self.opts.port,
            connect_timeout: self.opts.connect_timeout,
            io_timeout: self.opts.io_timeout,
        }
    }

    fn connect(&self) -> Result<Sftp> {
        let ep = self.endpoint();
        let pinned = self.opts.host_key.clone();
        let mut t = Transport::connect(&ep, &mut |key| {
            if let Some(pin) = &pinned {
                let want = crate::keychain::parse_public(pin)?.1;
                if want != key.blob {
                    let want_fp = HostKey::parse(&want).map(|k| k.fingerprint()).unwrap_or_default();
                    return Err(Error::new(
                        Kind::Permission,
                        format!(
                            "the SSH server {} shows host key {} where {} was recorded: it was replaced or \
                             someone is in between; if the server's key really changed, save the credential again to trust the new one",
                            ep.shown(),
                            key.fingerprint(),
                            want_fp
                        ),
                    ));
                }
            }
            Ok(())
        })?;
        if let Some(k) = t.host_key() {
            lock(&self.seen_key).get_or_insert_with(|| k.clone());
        }
        let creds = match &self.opts.private_key {
            Some(k) => {
                Credentials::Key { private_key: k, password: Some(self.opts.pass.as_str()).filter(|p| !p.is_empty()) }
            }
            None => Credentials::Password(&self.opts.pass),
        };
        authenticate(&mut t, &ep.shown(), &self.opts.user, &creds)?;
        Sftp::start(Session::new(t, &ep.shown()))
    }

    /// Run `f` on a pooled connection (a new one when none is idle); a connection that
    /// failed is dropped, and a network failure is tried once more on a new one.
    fn with<T>(&self, mut f: impl FnMut(&mut Sftp) -> Result<T>) -> Result<T> {
        for attempt in 0..2 {
            let pooled = lock(&self.pool).pop();
            let mut c = match pooled {
                Some(c) => c,
                None => self.connect()?,
            };
            match f(&mut c) {
                Ok(v) => {
                    let mut p = lock(&self.pool);
                    if p.len() < self.opts.connections {
                        p.push(c);
                    }
                    return Ok(v);
                }
                Err(e) if e.kind() == Kind::Network && attempt == 0 => continue,
                Err(e) => {
                    if matches!(e.kind(), Kind::NotFound | Kind::Permission | Kind::Server | Kind::Unsupported) {
                        lock(&self.pool).push(c);
                    }
                    return Err(e);
                }
            }
        }
        unreachable!("the loop returns")
    }

    fn abs(&self, path: &RelPath) -> Vec<u8> {
        dirs::server_path(&self.root, path, encode_name)
    }

    fn shown(&self, path: &RelPath) -> String {
        dirs::shown(&self.shown_root, path)
    }

    fn ensure(&self, abs: &[u8]) -> Result<()> {
        if abs.len() <= 1 || lock(&self.dirs).contains(abs) {
            return Ok(());
        }
        if let Err(e) = self.with(|c| c.mkdir(abs)) {
            let exists = self.with(|c| c.stat(abs))?.is_some_and(|a| a.is_dir());
            if !exists {
                let parent = &abs[..abs.iter().rposition(|b| *b == b'/').unwrap_or(0)];
                if parent.is_empty() {
                    return Err(e);
                }
                self.ensure(parent)?;
                self.with(|c| c.mkdir(abs))?;
            }
        }
        lock(&self.dirs).insert(abs.to_vec());
        Ok(())
    }

    /// The digests the server computes for this account.
    fn digests(&self) -> Hashes {
        let mut h = Hashes::NONE;
        if self.md5sum.load(Relaxed) {
            h = h.with(HashType::Md5);
        }
        if self.sha1sum.load(Relaxed) {
            h = h.with(HashType::Sha1);
        }
        h
    }

    /// The server's digest of `abs` (`md5sum` or `sha1sum`), when it runs that command.
    fn remote_digest(&self, abs: &[u8], kind: HashType) -> Result<Option<hash::Checksum>> {
        let (cmd, len): (&[u8], usize) = match kind {
            HashType::Md5 => (b"md5sum", 16),
            HashType::Sha1 => (b"sha1sum", 20),
            _ => return Ok(None),
        };
        if !self.digests().contains(kind) {
            return Ok(None);
        }
        let line = [cmd, b" ", &shell_quote(abs)].concat();
        let (out, exit, stderr) = self.with(|c| c.session().run(&line, 64 * 1024))?;
        let name = String::from_utf8_lossy(cmd);
        if exit != Some(0) {
            return Err(Error::new(Kind::Server, format!("{name} failed on the server: {}", stderr.trim())));
        }
        // GNU coreutils escapes names with a backslash: the digest then starts with one.
        let word = out.split(|b| b.is_ascii_whitespace()).next().unwrap_or(b"");
        let word = word.strip_prefix(b"\\").unwrap_or(word);
        let mut value = vec![0u8; len];
        hex::decode_to_slice(word, &mut value)
            .map_err(|_| Error::new(Kind::Protocol, format!("{name} printed something that is not a digest")))?;
        Ok(Some(hash::Checksum { kind, value }))
    }

    fn entry(&self, name: Vec<u8>, a: &crate::ssh::sftp::Attrs) -> Entry {
        let mtime = a.atime_mtime.map(|(_, m)| i64::from(m) * super::NANOS_PER_SEC);
        if a.is_dir() { Entry::dir(name, mtime) } else { Entry::file(name, a.size.map_or(-1, |s| s as i64), mtime) }
    }
}

impl Remote for SftpRemote {
    fn describe(&self) -> String {
        self.shown_root.clone()
    }

    fn features(&self) -> Features {
        Features {
            hashes: self.digests(),
            md5_is_slow: true,
            precision: Some(super::NANOS_PER_SEC),
            set_mod_time: true,
            empty_dirs: true,
            dir_mod_time: true,
            read_only: false,
            case_insensitive: false,
            lazy_mod_time: false,
            is_local: false,
        }
    }

    fn root_state(&self) -> Result<RootState> {
        let abs = self.abs(&RelPath::root());
        Ok(match self.with(|c| c.stat(&abs)).map_err(|e| e.with_path(self.shown_root.clone()))? {
            None => RootState::Missing,
            Some(a) if a.is_dir() => RootState::Dir,
            Some(_) => RootState::File,
        })
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let abs = self.abs(dir);
        let listed = self
            .with(|c| c.list(&abs))
            .map_err(|e| e.with_path(self.shown(dir)))?
            .ok_or_else(|| Error::new(Kind::DirNotFound, "directory not found").with_path(self.shown(dir)))?;
        let mut out = Vec::with_capacity(listed.len());
        for (raw, attrs) in listed {
            let name = decode_name(&raw);
            let attrs =
                if attrs.is_link() {
                    // Followed, as rclone does (skip_links off).
                    let target = [&abs[..], b"/", &raw].concat();
                    match self.with(|c| c.stat(&target))? {
                        Some(a) => a,
                        None => {
                            bad(Error::new(Kind::NotFound, "a symbolic link whose target is missing")
                                .with_path(format!("{}/{}", self.shown(dir), crate::path::display_bytes(&raw))));
                            continue;
                        }
                    }
                } else {
                    attrs
                };
            let path = match dir.join(&name) {
                Ok(p) => p,
                Err(e) => {
                    bad(e.with_path(format!("{}/{}", self.shown(dir), crate::path::display_bytes(&raw))));
                    continue;
                }
            };
            if !attrs.is_dir() && partial::is_partial(&name) {
                let mut l = lock(&self.leftovers);
                if l.len() < 10_000 {
                    l.push(path);
                }
                continue;
            }
            if !(attrs.is_dir() || attrs.is_file()) {
                continue; // sockets, devices, fifos
            }
            out.push(self.entry(name, &attrs));
        }
        lock(&self.dirs).insert(abs);
        Ok(out)
    }

    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        if entry.md5.is_some() {
            return Ok(entry.md5);
        }
        let got = self.remote_digest(&self.abs(path), HashType::Md5).map_err(|e| e.with_path(self.shown(path)))?;
        Ok(got.and_then(|c| c.value.try_into().ok()))
    }

    fn hash(&self, path: &RelPath, entry: &Entry, kind: HashType) -> Result<Option<hash::Checksum>> {
        if kind == HashType::Md5 {
            return Ok(self.md5(path, entry)?.map(|m| hash::Checksum { kind, value: m.to_vec() }));
        }
        self.remote_digest(&self.abs(path), kind).map_err(|e| e.with_path(self.shown(path)))
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let (len, _) = super::kit::bucket::read_range(entry, offset, len);
        let abs = self.abs(path);
        let map = |e: Error| e.with_path(self.shown(path));
        let mut conn = match lock(&self.pool).pop() {
            Some(c) => c,
            None => self.connect().map_err(map)?,
        };
        let handle = conn.open(&abs, OPEN_READ).map_err(map)?;
        let reader = Download {
            pool: self.pool.clone(),
            cap: self.opts.connections,
            conn: Some(conn),
            handle,
            offset,
            remaining: len,
            buf: Vec::new(),
            pos: 0,
        };
        let mut o = Opened::plain(Box::new(reader));
        o.mtime = entry.mtime;
        Ok(o)
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a file at the root itself"));
        }
        let shown = self.shown(path);
        let parent = path.parent();
        self.ensure(&self.abs(&parent)).map_err(|e| e.with_path(self.shown(&parent)))?;
        let size = src.size();
        // One source version has one temporary name, so that the next attempt or run goes
        // on where an interrupted upload of the same data stopped (data that changed
        // meanwhile has another fingerprint and starts over).
        let fingerprint = src.fingerprint();
        let tmp_name = match &fingerprint {
            Some(fp) => partial::stable_name(path.file_name(), &self.abs(path), fp),
            None => partial::name(path.file_name()),
        };
        let tmp = parent.join(&tmp_name)?;
        let tmp_abs = self.abs(&tmp);
        let final_abs = self.abs(path);
        let cleanup = |e: Error| {
            let _ = self.with(|c| c.remove(&tmp_abs));
            e.with_path(shown.clone())
        };
        // What the upload is checked by: the server's MD5, else its SHA-1.
        let check = self.digests().preferred();
        let new_hasher = || check.map(hash::Hasher::new);
        let hasher = Arc::new(Mutex::new(new_hasher()));
        let sent = self.with(|c| {
            let from = match c.stat(&tmp_abs)? {
                Some(a) if fingerprint.is_some() && a.size.is_some_and(|n| n > 0 && n <= size) => a.size.unwrap_or(0),
                Some(_) => {
                    c.remove(&tmp_abs)?;
                    0
                }
                None => 0,
            };
            *lock(&hasher) = new_hasher();
            if from > 0 {
                log::info!("{shown}: resuming an interrupted upload at byte {from} of {size}");
                if check.is_some() {
                    // The whole file's digest is compared with the server's below, so the
                    // kept prefix is checked with the rest.
                    let mut prefix = hash::Tee { inner: src.open_at(0, from)?, hasher: hasher.clone() };
                    let n = std::io::copy(&mut prefix, &mut std::io::sink())?;
                    if n != from {
                        return Err(Error::new(Kind::SourceChanged, "the source file is shorter than when listed"));
                    }
                }
            }
            let mut reader = hash::Tee { inner: src.open_at(from, size - from)?, hasher: hasher.clone() };
            let flags = if from > 0 { OPEN_WRITE } else { OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC };
            let h = c.open(&tmp_abs, flags)?;
            let n = c.write_from(&h, from, &mut reader);
            let closed = c.close(&h);
            let n = n?;
            closed?;
            Ok(from + n)
        });
        let sent = match sent {
            Ok(n) => n,
            // What reached the server is a prefix of this very version: kept for the next
            // attempt or run, unless the source itself failed (its data is not that version).
            Err(e)
                if fingerprint.is_some() && (e.is_cancelled() || matches!(e.kind(), Kind::Network | Kind::Server)) =>
            {
                return Err(e.with_path(shown));
            }
            Err(e) => return Err(cleanup(e)),
        };
        let sent_digest = lock(&hasher).take().map(hash::Hasher::finish);
        let stored = self.with(|c| c.stat(&tmp_abs)).map_err(cleanup)?;
        if sent != size || stored.as_ref().and_then(|a| a.size) != Some(size) {
            return Err(cleanup(
                Error::new(
                    Kind::Corrupted,
                    format!(
                        "corrupted on transfer: the server stored {:?} bytes of {size}",
                        stored.and_then(|a| a.size)
                    ),
                )
                .with_retryable(true),
            ));
        }
        if let (Some(ours), Some(kind)) = (&sent_digest, check)
            && let Some(theirs) = self.remote_digest(&tmp_abs, kind).map_err(cleanup)?
        {
            if theirs.value != ours.value {
                return Err(cleanup(
                    Error::new(
                        Kind::Corrupted,
                        format!(
                            "corrupted on transfer: the server's {} is {}, what was sent hashes to {}",
                            kind.name().to_uppercase(),
                            hex::encode(&theirs.value),
                            hex::encode(&ours.value)
                        ),
                    )
                    .with_retryable(true),
                ));
            }
            src.mark_verified();
        }
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime().map_err(cleanup)?,
        };
        let secs = mtime.div_euclid(super::NANOS_PER_SEC).clamp(0, i64::from(u32::MAX)) as u32;
        self.with(|c| c.set_times(&tmp_abs, secs, secs)).map_err(cleanup)?;
        let replaced = self.with(|c| c.rename(&tmp_abs, &final_abs)).map_err(cleanup)?;
        if !replaced {
            // A server without posix-rename: the old version goes only now.
            self.with(|c| c.remove(&final_abs)).map_err(cleanup)?;
            self.with(|c| c.rename(&tmp_abs, &final_abs)).map_err(cleanup)?;
        }
        // A leftover this upload went on from is gone now.
        lock(&self.leftovers).retain(|p| p != &tmp);
        let mut e = Entry::file(path.file_name(), size as i64, Some(i64::from(secs) * super::NANOS_PER_SEC));
        if let Some(c) = sent_digest.filter(|c| c.kind == HashType::Md5) {
            e.md5 = c.value.try_into().ok();
        }
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, _entry: &Entry, mtime: Nanos, _meta: PosixMeta) -> Result<()> {
        let secs = mtime.div_euclid(super::NANOS_PER_SEC).clamp(0, i64::from(u32::MAX)) as u32;
        self.with(|c| c.set_times(&self.abs(path), secs, secs)).map_err(|e| e.with_path(self.shown(path)))
    }

    fn set_dir_mod_time(&self, dir: &RelPath, mtime: Nanos) -> Result<()> {
        self.set_mod_time(dir, &Entry::dir(Vec::new(), None), mtime, PosixMeta::default())
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        self.with(|c| c.remove(&self.abs(path))).map_err(|e| e.with_path(self.shown(path)))
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.ensure(&self.abs(dir)).map_err(|e| e.with_path(self.shown(dir)))
    }

    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        if !dirs::check_empty(self, dir, || self.shown(dir))? {
            return Ok(());
        }
        let abs = self.abs(dir);
        self.with(|c| c.rmdir(&abs)).map_err(|e| e.with_path(self.shown(dir)))?;
        lock(&self.dirs).retain(|p| !p.starts_with(&abs));
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(self.shown_root.clone())
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let found = std::mem::take(&mut *lock(&self.leftovers));
        Ok(partial::remove_found(found, |p| self.with(|c| c.remove(&self.abs(p))), |p| self.shown(p)))
    }
}

/// A download on a connection of its own, read in pieces of at most 1 MiB (pipelined);
/// the connection goes back to the pool when the reader is dropped.
struct Download {
    pool: Arc<Mutex<Vec<Sftp>>>,
    cap: usize,
    conn: Option<Sftp>,
    handle: Vec<u8>,
    offset: u64,
    remaining: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for Download {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            let Some(c) = self.conn.as_mut() else { return Ok(0) };
            self.buf.clear();
            self.pos = 0;
            let n = c.read_into(&self.handle, self.offset, self.remaining.min(1 << 20), &mut self.buf)?;
            if n == 0 {
                return Err(Error::new(
                    Kind::Network,
                    format!("the file ended {} bytes early on the server", self.remaining),
                )
                .with_retryable(true)
                .into());
            }
            self.offset += n;
            self.remaining -= n;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if let Some(mut c) = self.conn.take()
            && c.close(&self.handle).is_ok()
        {
            let mut p = lock(&self.pool);
            if p.len() < self.cap {
                p.push(c);
            }
        }
    }
}
