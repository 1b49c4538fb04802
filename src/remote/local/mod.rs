//! The local filesystem remote: a directory tree on a NAS dataset, a USB disk or a mount.
//!
//! Every operation walks from a descriptor of the root with `openat(O_NOFOLLOW)` one
//! segment at a time, so a symlink planted in the tree (for example during a PULL) can
//! never redirect a write, rename or delete outside the root. Writes go to a temporary
//! name in the target directory and are renamed into place only when complete; a failed
//! or cancelled write removes its temporary file.
//!
//! Symlinks are skipped with a warning unless the remote follows them (`-L`); loop
//! detection while following is the engine's job (it tracks device and inode of the
//! directories on the current path, which this remote reports in [`Extra`]).

use super::hash::{Checksum, HashType, Hasher};
use super::{Entry, EntryKind, Extra, Features, Md5, Nanos, Opened, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::index::{FileKey, Index, UploadRecord};
use crate::path::{RelPath, display_bytes};
use crate::process::Owner;
use md5::Digest;
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, UtimensatFlags, fstat, fstatat, mkdirat, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{UnlinkatFlags, unlinkat};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

mod chunked;

/// Files at least this large are downloaded with several ranged streams in parallel.
const MULTI_THREAD_CUTOFF: u64 = 256 * 1024 * 1024;
const MULTI_THREAD_STREAMS: u64 = 4;
const COPY_BUF: usize = 128 * 1024;

/// Options of a local remote.
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// Follow symlinks (rclone `-L`); otherwise they are skipped with a warning.
    pub follow_symlinks: bool,
    /// The owner and group of files and directories a transfer creates when the source
    /// carries none (running as root only). Default: the owner of the root directory
    /// (the dataset's), never root:root by accident.
    pub owner: Option<(u32, u32)>,
}

pub struct LocalRemote {
    root: PathBuf,
    opts: LocalOptions,
    index: Option<Arc<Index>>,
    /// The key of this root in the hash index: its canonical path.
    index_root: String,
    precision: OnceLock<Nanos>,
    root_owner: OnceLock<Option<(u32, u32)>>,
    /// Temporary files of earlier runs that listings came across (see `remove_leftovers`).
    leftovers: std::sync::Mutex<Vec<RelPath>>,
}

impl LocalRemote {
    pub fn new(root: impl Into<PathBuf>, opts: LocalOptions, index: Option<Arc<Index>>) -> LocalRemote {
        let root = root.into();
        let index_root = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone()).to_string_lossy().into_owned();
        LocalRemote {
            root,
            opts,
            index,
            index_root,
            precision: OnceLock::new(),
            root_owner: OnceLock::new(),
            leftovers: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shown(&self, rel: &RelPath) -> String {
        if rel.is_root() {
            self.root.display().to_string()
        } else {
            format!("{}/{}", self.root.display(), rel.display())
        }
    }

    fn open_root(&self) -> Result<OwnedFd> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        openat(nix::fcntl::AT_FDCWD, &self.root, flags, Mode::empty()).map_err(|e| match e {
            Errno::ENOENT => {
                Error::new(Kind::DirNotFound, "directory not found").with_path(self.root.display().to_string())
            }
            e => self.errno(e, "open directory", &RelPath::root()),
        })
    }

    /// Open directory `dir` below the root without following symlinks (unless this remote
    /// follows them and we are only reading). With `create`, missing directories are made.
    fn open_dir(&self, dir: &RelPath, create: bool) -> Result<OwnedFd> {
        if create && !self.root.exists() {
            // The root is the user's own path (it may legitimately contain symlinks);
            // only what lies below it is walked without following links.
            std::fs::create_dir_all(&self.root).map_err(|e| Error::io("create directory", self.root.display(), e))?;
        }
        let mut fd = self.open_root()?;
        let follow = self.opts.follow_symlinks && !create;
        let mut walked = RelPath::root();
        for seg in dir.segments() {
            walked = walked.join(seg)?;
            let name = OsStr::from_bytes(seg);
            let mut flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            if !follow {
                flags |= OFlag::O_NOFOLLOW;
            }
            let next = match openat(fd.as_fd(), name, flags, Mode::empty()) {
                Err(Errno::ENOENT) if create => {
                    let created = match mkdirat(fd.as_fd(), name, Mode::from_bits_truncate(0o777)) {
                        Ok(()) => true,
                        Err(Errno::EEXIST) => false,
                        Err(e) => return Err(self.errno(e, "create directory", &walked)),
                    };
                    let opened = openat(fd.as_fd(), name, flags, Mode::empty());
                    if let (true, Ok(new_dir), Some((uid, gid))) = (created, &opened, self.default_owner()) {
                        // Through the directory's own descriptor: no path to redirect.
                        self.chown_fd(new_dir.as_fd(), uid, gid, &walked)?;
                    }
                    opened
                }
                other => other,
            };
            fd = match next {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    return Err(Error::new(Kind::DirNotFound, "directory not found").with_path(self.shown(&walked)));
                }
                Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                    return Err(Error::new(
                        Kind::BadName,
                        "is not a directory (a symlink or file is in the way; refusing to follow it)",
                    )
                    .with_path(self.shown(&walked)));
                }
                Err(e) => return Err(self.errno(e, "open directory", &walked)),
            };
        }
        Ok(fd)
    }

    /// The owner for new files and directories without metadata of their own: the task's
    /// explicit owner, else the root directory's. None unless running as root (others
    /// cannot give files away).
    fn default_owner(&self) -> Option<(u32, u32)> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        self.opts.owner.or_else(|| {
            *self.root_owner.get_or_init(|| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(&self.root).ok().map(|m| (m.uid(), m.gid()))
            })
        })
    }

    fn chown_fd(&self, fd: BorrowedFd<'_>, uid: u32, gid: u32, rel: &RelPath) -> Result<()> {
        // SAFETY: fchown on a descriptor we own; no memory is passed.
        if unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EPERM) {
                log::debug!("{}: not permitted to change the owner", self.shown(rel));
                return Ok(());
            }
            return Err(Error::io("change owner", self.shown(rel), err));
        }
        Ok(())
    }

    /// Give a file just written its POSIX metadata: the source's owner, group and
    /// permission bits when it carries them (never setuid, setgid or sticky bits), else
    /// the default owner and the creation mode.
    fn apply_posix(&self, fd: BorrowedFd<'_>, meta: super::PosixMeta, rel: &RelPath) -> Result<()> {
        let am_root = nix::unistd::geteuid().is_root();
        let owner = match (meta.uid, meta.gid) {
            (Some(u), Some(g)) if am_root => Some((u, g)),
            (Some(u), None) if am_root => Some((u, self.default_owner().map_or(0, |o| o.1))),
            (None, Some(g)) if am_root => Some((self.default_owner().map_or(0, |o| o.0), g)),
            _ => self.default_owner(),
        };
        if let Some((uid, gid)) = owner {
            self.chown_fd(fd, uid, gid, rel)?;
        }
        if let Some(mode) = meta.mode {
            // SAFETY: fchmod on a descriptor we own.
            if unsafe { libc::fchmod(fd.as_raw_fd(), (mode & 0o777) as libc::mode_t) } != 0 {
                return Err(Error::io("change permissions", self.shown(rel), io::Error::last_os_error()));
            }
        }
        Ok(())
    }

    fn errno(&self, e: Errno, op: &str, rel: &RelPath) -> Error {
        Error::io(op, self.shown(rel), io::Error::from_raw_os_error(e as i32))
    }

    fn entry_from_stat(name: &[u8], st: &FileStat) -> Option<Entry> {
        let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let kind = if fmt == SFlag::S_IFREG {
            EntryKind::File
        } else if fmt == SFlag::S_IFDIR {
            EntryKind::Dir
        } else {
            return None;
        };
        Some(Entry {
            name: name.to_vec(),
            kind,
            size: if kind == EntryKind::File { st.st_size } else { 0 },
            mtime: Some(st.st_mtime * super::NANOS_PER_SEC + st.st_mtime_nsec),
            md5: None,
            extra: Extra {
                dev: st.st_dev,
                ino: st.st_ino,
                ctime: st.st_ctime * super::NANOS_PER_SEC + st.st_ctime_nsec,
                mode: st.st_mode & 0o7777,
                uid: st.st_uid,
                gid: st.st_gid,
                ..Extra::default()
            },
        })
    }

    fn file_key(&self, path: &RelPath, entry: &Entry) -> FileKey {
        FileKey {
            root: self.index_root.clone(),
            path: path.as_bytes().to_vec(),
            size: entry.size,
            mtime: entry.mtime.unwrap_or(0),
            ino: entry.extra.ino,
            ctime: entry.extra.ctime,
        }
    }

    /// Open a regular file for reading, without following a symlink at the last step unless
    /// this remote follows symlinks.
    fn open_file(&self, path: &RelPath) -> Result<File> {
        let dir = self.open_dir(&path.parent(), false)?;
        let mut flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC;
        if !self.opts.follow_symlinks {
            flags |= OFlag::O_NOFOLLOW;
        }
        let fd = openat(dir.as_fd(), OsStr::from_bytes(path.file_name()), flags, Mode::empty())
            .map_err(|e| self.errno(e, "open", path))?;
        Ok(File::from(fd))
    }

    fn probe_precision(&self) -> Nanos {
        // Known filesystems first: a probe would have to write into the user's tree.
        if let Ok(st) = nix::sys::statfs::statfs(&self.root) {
            let t = st.filesystem_type().0;
            match t {
                0x4d44 => return 2 * super::NANOS_PER_SEC,        // FAT: 2 s
                0x2011_BAB0 => return 10_000_000,                 // exFAT: 10 ms
                0xFE53_4D42 | 0xFF53_4D42 | 0x517B => return 100, // SMB2 / CIFS / SMB: 100 ns
                _ => {}
            }
        }
        1
    }

    /// Write the source into `file`, without a journal. A single stream is verified by
    /// whoever reads it (the engine hashes it); a large file is fetched as parallel ranged
    /// streams and checked here. Returns the digest when it was checked here.
    fn write_all_from(&self, file: &File, src: &dyn Source) -> Result<Option<Md5>> {
        let size = src.size();
        if size >= MULTI_THREAD_CUTOFF {
            file.set_len(size)?;
            return chunked::write_chunks(file, src, &vec![None; size.div_ceil(chunked::CHUNK) as usize], None);
        }
        let mut reader = src.open_at(0, size)?;
        // The copy buffer already batches writes: no second buffer.
        let mut out = file;
        let copied = copy_exact(&mut reader, &mut out, size)?;
        if copied != size {
            return Err(short_source(copied, size));
        }
        Ok(None)
    }

    /// The journal of a download that can be resumed: large enough, a source that names
    /// its version, and an index to keep the journal in.
    fn journal_key(&self, path: &RelPath, src: &dyn Source) -> Option<(&Index, String, String)> {
        let index = self.index.as_deref()?;
        if src.size() < chunked::RESUMABLE_MIN {
            return None;
        }
        Some((index, src.fingerprint()?, hex::encode(path.as_bytes())))
    }

    fn journal_remote(&self) -> String {
        format!("local:{}", self.index_root)
    }

    /// Take up the temporary file of an interrupted download of the same source version:
    /// (its name, the open file, the chunks that still verify). Temporary files of other
    /// versions whose writer is gone are removed, with their journal entries.
    fn reopen_partial(
        &self,
        dir: &OwnedFd,
        index: &Index,
        key: &str,
        source: &str,
        size: u64,
    ) -> Option<(Vec<u8>, File, Vec<Option<Md5>>)> {
        let remote = self.journal_remote();
        let me = Owner::me();
        let mut resumed = None;
        for rec in index.journal(&remote, Some(key)) {
            if rec.owner != me && rec.owner.alive() {
                continue; // another process is writing it
            }
            let name = hex::decode(&rec.session).unwrap_or_default();
            let flags = OFlag::O_RDWR | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let opened = (!name.is_empty() && is_partial_name(&name))
                .then(|| openat(dir.as_fd(), OsStr::from_bytes(&name), flags, Mode::empty()).ok())
                .flatten();
            let Some(fd) = opened else {
                index.journal_end(&remote, key, &rec.session);
                continue;
            };
            if try_lock(fd.as_fd()).is_err() {
                continue; // held by a writer after all
            }
            let file = File::from(fd);
            let fits = file.metadata().is_ok_and(|m| m.is_file() && m.len() == size);
            if resumed.is_some() || rec.source != source || rec.part_size != chunked::CHUNK || !fits {
                let _ = unlinkat(dir.as_fd(), OsStr::from_bytes(&name), UnlinkatFlags::NoRemoveDir);
                index.journal_end(&remote, key, &rec.session);
                continue;
            }
            let kept = chunked::verified_chunks(&file, size, &index.journal_parts(&remote, key, &rec.session));
            let _ = index.journal_start(&remote, &UploadRecord { owner: me, ..rec.clone() });
            resumed = Some((name, file, kept));
        }
        resumed
    }
}

/// The MD5 of a whole file, read with positional reads (the descriptor's offset stays).
fn hash_file(file: &File) -> Result<Md5> {
    let c = hash_file_as(file, HashType::Md5)?;
    Ok(c.value.try_into().unwrap_or_default())
}

/// A digest of a whole file, read with positional reads.
fn hash_file_as(file: &File, kind: HashType) -> Result<Checksum> {
    let mut h = Hasher::new(kind);
    let mut buf = vec![0u8; COPY_BUF];
    let mut pos = 0u64;
    loop {
        let n = match file.read_at(&mut buf, pos) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        h.update(&buf[..n]);
        pos += n as u64;
    }
    Ok(h.finish())
}

fn short_source(got: u64, want: u64) -> Error {
    Error::new(Kind::Corrupted, format!("source ended early: got {got} of {want} bytes")).with_retryable(true)
}

fn read_retry(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Copy until EOF, failing if more than `limit` bytes arrive. Returns the bytes copied.
pub(crate) fn copy_exact(r: &mut dyn Read, w: &mut dyn Write, limit: u64) -> Result<u64> {
    let mut buf = vec![0u8; COPY_BUF];
    let mut total = 0u64;
    loop {
        let n = read_retry(r, &mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
        if total > limit {
            return Err(Error::new(Kind::Corrupted, "source delivered more data than announced"));
        }
        w.write_all(&buf[..n])?;
    }
}

fn ts(nanos: Nanos) -> TimeSpec {
    let secs = nanos.div_euclid(super::NANOS_PER_SEC);
    let ns = nanos.rem_euclid(super::NANOS_PER_SEC);
    TimeSpec::new(secs, ns)
}

const UTIME_OMIT: TimeSpec = TimeSpec::new(0, libc::UTIME_OMIT);

use super::kit::partial::{is_partial as is_partial_name, name as partial_name};

/// Take an exclusive `flock` without waiting; it lasts as long as the open file.
#[allow(deprecated)] // nix's owning `Flock` would take the descriptor; the lock is all we need
fn try_lock(fd: BorrowedFd<'_>) -> nix::Result<()> {
    nix::fcntl::flock(fd.as_raw_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock)
}

/// Temporary files remembered for removal at most per run (a crash leaves one per
/// transfer that was running; more than this means the rest waits for the next run).
const MAX_LEFTOVERS: usize = 10_000;

/// What identifies one version of a local file: size, modification and change time
/// (rclone checks size and modification time; the change time also catches writes that
/// put the old modification time back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    size: i64,
    mtime: Nanos,
    ctime: Nanos,
}

impl Stamp {
    fn of(st: &FileStat) -> Stamp {
        Stamp {
            size: st.st_size,
            mtime: st.st_mtime * super::NANOS_PER_SEC + st.st_mtime_nsec,
            ctime: st.st_ctime * super::NANOS_PER_SEC + st.st_ctime_nsec,
        }
    }

    /// The stamp a listing entry recorded; unknown parts (-1 size, no time, ctime 0 for
    /// an entry that did not come from a local listing) are not compared.
    fn of_entry(e: &Entry) -> Stamp {
        let ctime = if e.extra.ctime == 0 { i64::MIN } else { e.extra.ctime };
        Stamp { size: e.size, mtime: e.mtime.unwrap_or(i64::MIN), ctime }
    }

    /// `Ok` when `now` is the same version of the file; otherwise the error rclone gives
    /// ("source file is being updated"), retryable: the next try reads the new version
    /// after the next listing.
    fn check(&self, now: &Stamp) -> Result<()> {
        let why = if self.size >= 0 && self.size != now.size {
            format!("size changed from {} to {}", self.size, now.size)
        } else if self.mtime != i64::MIN && self.mtime != now.mtime {
            format!(
                "modification time changed from {} to {}",
                crate::clock::rfc3339_nanos(self.mtime),
                crate::clock::rfc3339_nanos(now.mtime)
            )
        } else if self.ctime != i64::MIN && self.ctime != now.ctime {
            "it was changed (its change time moved)".to_string()
        } else {
            return Ok(());
        };
        Err(Error::new(Kind::SourceChanged, format!("can't copy - source file is being updated ({why})")))
    }
}

/// Reads a local file's range and, once the range is read, checks that the file is still
/// the version the listing described (rclone's "source file is being updated").
struct StableReader {
    file: File,
    left: u64,
    listed: Stamp,
    path: String,
}

impl Read for StableReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        self.left -= n as u64;
        if n == 0 || self.left == 0 {
            let st = fstat(self.file.as_fd()).map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            self.listed.check(&Stamp::of(&st)).map_err(|e| io::Error::from(e.with_path(self.path.clone())))?;
        }
        Ok(n)
    }
}

/// Removes a temporary file unless disarmed.
struct TempGuard<'a> {
    dir: &'a OwnedFd,
    name: Vec<u8>,
    armed: bool,
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = unlinkat(self.dir.as_fd(), OsStr::from_bytes(&self.name), UnlinkatFlags::NoRemoveDir);
        }
    }
}

impl Remote for LocalRemote {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn features(&self) -> Features {
        Features {
            hashes: super::hash::Hashes::ALL,
            md5_is_slow: true,
            precision: Some(*self.precision.get_or_init(|| self.probe_precision())),
            set_mod_time: true,
            empty_dirs: true,
            dir_mod_time: true,
            read_only: false,
            case_insensitive: false,
            lazy_mod_time: false,
            is_local: true,
        }
    }

    fn root_state(&self) -> Result<RootState> {
        match std::fs::metadata(&self.root) {
            Ok(m) if m.is_dir() => Ok(RootState::Dir),
            Ok(_) => Ok(RootState::File),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(RootState::Missing),
            Err(e) => Err(Error::io("stat", self.root.display(), e)),
        }
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let fd = self.open_dir(dir, false)?;
        let dup = fd.try_clone().map_err(|e| Error::io("open directory", self.shown(dir), e))?;
        let mut d = nix::dir::Dir::from_fd(dup).map_err(|e| self.errno(e, "read directory", dir))?;
        let mut out = Vec::new();
        for item in d.iter() {
            let item = item.map_err(|e| self.errno(e, "read directory", dir))?;
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            if is_partial_name(name) {
                // Ours: never a source file. One a live writer holds is left alone.
                if let (Ok(mut l), Ok(p)) = (self.leftovers.lock(), dir.join(name))
                    && l.len() < MAX_LEFTOVERS
                {
                    l.push(p);
                }
                continue;
            }
            let st = match fstatat(fd.as_fd(), item.file_name(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue, // vanished since readdir
                Err(e) => {
                    bad(self.errno(e, "stat", &dir.join(name).unwrap_or_default()));
                    continue;
                }
            };
            let shown = || self.shown(&dir.join(name).unwrap_or_default());
            let is_link = (SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT) == SFlag::S_IFLNK;
            let st = if is_link {
                if !self.opts.follow_symlinks {
                    log::warn!("{}: Can't follow symlink without -L/--copy-links", shown());
                    continue;
                }
                match fstatat(fd.as_fd(), item.file_name(), nix::fcntl::AtFlags::empty()) {
                    Ok(st) => st,
                    Err(e) => {
                        bad(Error::new(Kind::Io, format!("symlink: stat failed: {}", e.desc())).with_path(shown()));
                        continue;
                    }
                }
            } else {
                st
            };
            match Self::entry_from_stat(name, &st) {
                Some(e) => out.push(e),
                None => log::info!("{}: skipping special file (not a regular file or directory)", shown()),
            }
        }
        Ok(out)
    }

    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        let key = self.file_key(path, entry);
        if let Some(index) = &self.index
            && let Some(md5) = index.get_local_md5(&key)
        {
            return Ok(Some(md5));
        }
        let mut f = self.open_file(path)?;
        let mut h = md5::Md5::new();
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = read_retry(&mut f, &mut buf).map_err(|e| Error::io("read", self.shown(path), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let md5: Md5 = h.finalize().into();
        if let Some(index) = &self.index {
            index.put_local_md5(&key, md5);
        }
        Ok(Some(md5))
    }

    fn hash(&self, path: &RelPath, entry: &Entry, kind: HashType) -> Result<Option<Checksum>> {
        if kind == HashType::Md5 {
            return Ok(self.md5(path, entry)?.map(|m| Checksum { kind, value: m.to_vec() }));
        }
        // Other kinds are read from the file each time (only --checksum against a
        // remote without MD5 asks for them).
        let mut f = self.open_file(path)?;
        let mut h = Hasher::new(kind);
        let mut buf = vec![0u8; COPY_BUF];
        loop {
            let n = read_retry(&mut f, &mut buf).map_err(|e| Error::io("read", self.shown(path), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(Some(h.finish()))
    }

    fn remember_md5(&self, path: &RelPath, entry: &Entry, md5: Md5) {
        if let Some(index) = &self.index {
            index.put_local_md5(&self.file_key(path, entry), md5);
        }
    }

    fn cached_md5(&self, path: &RelPath, entry: &Entry) -> Option<Md5> {
        self.index.as_ref()?.get_local_md5(&self.file_key(path, entry))
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let mut f = self.open_file(path)?;
        let st = fstat(f.as_fd()).map_err(|e| self.errno(e, "stat", path))?;
        if (SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT) != SFlag::S_IFREG {
            return Err(Error::new(Kind::Io, "not a regular file").with_path(self.shown(path)));
        }
        // The file must still be the one the listing described, and must stay so until
        // its last byte is read: a file written to meanwhile would be stored torn.
        let listed = Stamp::of_entry(entry);
        listed.check(&Stamp::of(&st)).map_err(|e| e.with_path(self.shown(path)))?;
        if offset > 0 {
            f.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seek", self.shown(path), e))?;
        }
        Ok(Opened {
            reader: Box::new(StableReader { file: f, left: len, listed, path: self.shown(path) }),
            mtime: Some(st.st_mtime * super::NANOS_PER_SEC + st.st_mtime_nsec),
            meta: super::PosixMeta { mode: Some(st.st_mode & 0o7777), uid: Some(st.st_uid), gid: Some(st.st_gid) },
            md5: None,
            checksum: None,
        })
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a file at the root itself"));
        }
        let dir = self.open_dir(&path.parent(), true)?;
        let name = path.file_name();
        let size = src.size();
        let journal_key = self.journal_key(path, src);
        let reopened =
            journal_key.as_ref().and_then(|(index, source, key)| self.reopen_partial(&dir, index, key, source, size));
        let resuming = reopened.is_some();
        let (tmp, file, kept) = match reopened {
            Some(r) => r,
            None => {
                let tmp = partial_name(name);
                let fd = openat(
                    dir.as_fd(),
                    OsStr::from_bytes(&tmp),
                    OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o666),
                )
                .map_err(|e| self.errno(e, "create", path))?;
                // Held until the descriptor closes (or the process dies): how a later run
                // tells a leftover from a file being written.
                if let Err(e) = try_lock(fd.as_fd()) {
                    let _ = unlinkat(dir.as_fd(), OsStr::from_bytes(&tmp), UnlinkatFlags::NoRemoveDir);
                    return Err(self.errno(e, "lock", path));
                }
                (tmp, File::from(fd), Vec::new())
            }
        };
        let mut guard = TempGuard { dir: &dir, name: tmp.clone(), armed: true };
        let journal = journal_key.map(|(index, source, key)| {
            let j = chunked::Journal { index, remote: self.journal_remote(), key, session: hex::encode(&tmp) };
            if !resuming {
                let rec = UploadRecord {
                    key: j.key.clone(),
                    session: j.session.clone(),
                    source,
                    part_size: chunked::CHUNK,
                    started: chrono::Utc::now().timestamp(),
                    owner: Owner::me(),
                };
                if let Err(e) = index.journal_start(&j.remote, &rec) {
                    log::warn!("{}: the download is not journaled, it cannot resume: {e}", self.shown(path));
                }
            }
            j
        });
        let written = match &journal {
            Some(j) => {
                if resuming {
                    let have = kept.iter().filter(|k| k.is_some()).count() as u64 * chunked::CHUNK;
                    log::info!(
                        "{}: resuming an interrupted download ({} bytes kept)",
                        self.shown(path),
                        have.min(size)
                    );
                }
                file.set_len(size).map_err(|e| Error::io("resize", self.shown(path), e))?;
                let kept = if kept.is_empty() { vec![None; size.div_ceil(chunked::CHUNK) as usize] } else { kept };
                chunked::write_chunks(&file, src, &kept, Some(j))
            }
            None => self.write_all_from(&file, src),
        };
        let verified = match written {
            Ok(v) => v,
            Err(e) => {
                // A journaled download that failed for any reason but bad data stays for
                // the next try to resume; the next run removes it if nothing resumes it.
                if let Some(j) = &journal {
                    if e.kind() == Kind::Corrupted {
                        j.index.journal_end(&j.remote, &j.key, &j.session);
                    } else {
                        guard.armed = false;
                    }
                }
                return Err(e.with_path(self.shown(path)));
            }
        };
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let meta = match src.posix_meta() {
            m if !m.is_empty() => m,
            _ => super::PosixMeta { mode: info.mode, uid: info.uid, gid: info.gid },
        };
        self.apply_posix(file.as_fd(), meta, path)?;
        nix::sys::stat::futimens(file.as_fd(), &UTIME_OMIT, &ts(mtime))
            .map_err(|e| self.errno(e, "set modification time", path))?;
        let st = fstat(file.as_fd()).map_err(|e| self.errno(e, "stat", path))?;
        if st.st_size as u64 != size {
            return Err(Error::new(Kind::Corrupted, "corrupted on transfer: sizes differ").with_path(self.shown(path)));
        }
        drop(file);
        renameat(dir.as_fd(), OsStr::from_bytes(&tmp), dir.as_fd(), OsStr::from_bytes(name))
            .map_err(|e| self.errno(e, "rename into place", path))?;
        guard.armed = false;
        if let Some(j) = &journal {
            j.index.journal_end(&j.remote, &j.key, &j.session);
        }
        let mut stored = Self::entry_from_stat(name, &st)
            .ok_or_else(|| Error::new(Kind::Io, "written file is not a regular file").with_path(self.shown(path)))?;
        stored.md5 = verified;
        Ok(stored)
    }

    fn set_mod_time(&self, path: &RelPath, _entry: &Entry, mtime: Nanos, _meta: super::PosixMeta) -> Result<()> {
        let dir = self.open_dir(&path.parent(), false)?;
        utimensat(
            dir.as_fd(),
            OsStr::from_bytes(path.file_name()),
            &UTIME_OMIT,
            &ts(mtime),
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| self.errno(e, "set modification time", path))
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        let dir = self.open_dir(&path.parent(), false)?;
        unlinkat(dir.as_fd(), OsStr::from_bytes(path.file_name()), UnlinkatFlags::NoRemoveDir)
            .map_err(|e| self.errno(e, "delete", path))
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.open_dir(dir, true).map(drop)
    }

    fn flush(&self) {
        if let Some(index) = &self.index {
            index.flush();
        }
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let found = std::mem::take(&mut *self.leftovers.lock().map_err(|_| Error::other("lock poisoned"))?);
        let mut removed = 0;
        for path in found {
            let Ok(dir) = self.open_dir(&path.parent(), false) else { continue };
            let name = OsStr::from_bytes(path.file_name());
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
            let Ok(fd) = openat(dir.as_fd(), name, flags, Mode::empty()) else { continue };
            let regular = fstat(fd.as_fd())
                .is_ok_and(|st| (SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT) == SFlag::S_IFREG);
            // A writer that is alive holds the lock: only a dead one's file is removed.
            if !regular || try_lock(fd.as_fd()).is_err() {
                continue;
            }
            match unlinkat(dir.as_fd(), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) => {
                    log::info!("{}: removed a temporary file an interrupted transfer left", self.shown(&path));
                    removed += 1;
                    if let Some(index) = &self.index {
                        let session = hex::encode(path.file_name());
                        let remote = self.journal_remote();
                        for rec in index.journal(&remote, None).into_iter().filter(|r| r.session == session) {
                            index.journal_end(&remote, &rec.key, &rec.session);
                        }
                    }
                }
                Err(e) => log::warn!("{}: could not remove a leftover temporary file: {}", self.shown(&path), e.desc()),
            }
        }
        Ok(removed)
    }

    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        if dir.is_root() {
            return std::fs::remove_dir(&self.root).map_err(|e| Error::io("remove directory", self.root.display(), e));
        }
        let parent = self.open_dir(&dir.parent(), false)?;
        unlinkat(parent.as_fd(), OsStr::from_bytes(dir.file_name()), UnlinkatFlags::RemoveDir)
            .map_err(|e| self.errno(e, "remove directory", dir))
    }

    fn dir_identity(&self, dir: &RelPath) -> Option<(u64, u64)> {
        let fd = self.open_dir(dir, false).ok()?;
        let st = fstat(fd.as_fd()).ok()?;
        Some((st.st_dev, st.st_ino))
    }

    fn overlap_key(&self) -> Option<String> {
        // A root that does not exist yet still lies somewhere: below its nearest existing
        // ancestor (`sync a a/new` must be refused before `a/new` is created).
        let mut missing = Vec::new();
        let mut at = self.root.as_path();
        let canon = loop {
            match std::fs::canonicalize(at) {
                Ok(c) => break c,
                Err(_) => {
                    missing.push(at.file_name()?.to_owned());
                    at = at.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                }
            }
        };
        let full = missing.iter().rev().fold(canon, |p, seg| p.join(seg));
        Some(format!("local:{}", full.display()))
    }

    fn set_dir_mod_time(&self, dir: &RelPath, mtime: Nanos) -> Result<()> {
        let fd = self.open_dir(dir, false)?;
        nix::sys::stat::futimens(fd.as_fd(), &UTIME_OMIT, &ts(mtime))
            .map_err(|e| self.errno(e, "set modification time", dir))
    }
}

impl std::fmt::Debug for LocalRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalRemote({})", display_bytes(self.root.as_os_str().as_bytes()))
    }
}
