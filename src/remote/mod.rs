//! The `Remote` trait and the provider registry.
//!
//! A remote is one storage location with a root: a local directory, an S3 bucket prefix,
//! later every other provider. The required surface is small (list one directory, open for
//! reading with a range, put from a re-openable [`Source`], delete, mkdir/rmdir); optional
//! abilities are default methods plus [`Features`], which the engine checks instead of ever
//! naming a provider. Cross-cutting behaviour (dry run, request counting) wraps a remote
//! (see [`layers`]). Providers classify their own errors as retryable or permanent.
//!
//! Remotes never call the engine; they know nothing about sync decisions.

pub mod azureblob;
pub mod b2;
pub mod ftp;
pub mod gcs;
pub mod hash;
pub mod http;
pub mod kit;
pub mod layers;
pub mod local;
pub mod registry;
pub mod s3;
pub mod schema;
pub mod sftp;
pub mod spec;
pub mod swift;
pub mod webdav;

use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use std::io::Read;
use std::sync::Arc;

/// An MD5 digest.
pub type Md5 = [u8; 16];

/// Nanoseconds since the Unix epoch (covers 1678..2262, enough for file times).
pub type Nanos = i64;

pub const NANOS_PER_SEC: i64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    File,
    Dir,
}

/// One listed entry of a directory.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The leaf name in local form (raw bytes; see `path::decode_key_segment` for remotes
    /// that store names differently).
    pub name: Vec<u8>,
    pub kind: EntryKind,
    /// Size in bytes, -1 when unknown. Directories report 0 or -1.
    pub size: i64,
    /// Modification time when the listing provides it. `None` means the remote can tell it,
    /// at a cost, through [`Remote::mod_time`] (an S3 object whose `mtime` metadata has not
    /// been seen yet).
    pub mtime: Option<Nanos>,
    /// MD5 when the listing provides it for free (an S3 single-part ETag).
    pub md5: Option<Md5>,
    /// Provider details the provider itself needs again later (validators, inode).
    pub extra: Extra,
}

/// Provider-specific details kept with an entry. Only the provider that produced an entry
/// interprets these; the engine just carries them back.
#[derive(Clone, Debug, Default)]
pub struct Extra {
    pub etag: Option<Box<str>>,
    /// The provider's id of this object version (B2 `fileId`; later Drive, OneDrive, Box
    /// and pCloud ids).
    pub id: Option<Box<str>>,
    /// The server's own last-modified time (S3 `LastModified`).
    pub server_time: Option<Nanos>,
    pub storage_class: Option<Box<str>>,
    pub dev: u64,
    pub ino: u64,
    pub ctime: Nanos,
    /// A digest of another kind than MD5 the listing told (WebDAV's `oc:checksums`
    /// SHA1), which the provider answers [`Remote::hash`] and announces reads with.
    pub checksum: Option<hash::Checksum>,
    /// POSIX metadata (local files): mode, uid, gid.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    pub fn file(name: impl Into<Vec<u8>>, size: i64, mtime: Option<Nanos>) -> Entry {
        Entry { name: name.into(), kind: EntryKind::File, size, mtime, md5: None, extra: Extra::default() }
    }

    pub fn dir(name: impl Into<Vec<u8>>, mtime: Option<Nanos>) -> Entry {
        Entry { name: name.into(), kind: EntryKind::Dir, size: 0, mtime, md5: None, extra: Extra::default() }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == EntryKind::Dir
    }
}

impl Features {
    /// The remote can tell MD5 digests.
    pub fn md5(&self) -> bool {
        self.hashes.contains(hash::HashType::Md5)
    }
}

/// What a remote can do. The engine reads this; it never matches on a provider.
#[derive(Clone, Copy, Debug)]
pub struct Features {
    /// The digests the remote can tell of its objects (from listings, metadata, or by
    /// reading local files): see [`Remote::hash`].
    pub hashes: hash::Hashes,
    /// Computing a digest means reading the whole object (local files): avoid when possible.
    pub md5_is_slow: bool,
    /// The finest modification-time resolution the remote stores, in nanoseconds.
    /// `None` = modification times are not supported.
    pub precision: Option<Nanos>,
    /// [`Remote::set_mod_time`] works without re-uploading.
    pub set_mod_time: bool,
    /// The remote can hold empty directories.
    pub empty_dirs: bool,
    /// Directory modification times can be set.
    pub dir_mod_time: bool,
    /// Nothing can be written.
    pub read_only: bool,
    /// Names are case-insensitive on this remote.
    pub case_insensitive: bool,
    /// Reading the modification time of an object the listing could not describe costs a
    /// request (S3 HEAD); the engine fetches it lazily, only when sizes already match.
    pub lazy_mod_time: bool,
    /// The remote is a local filesystem (decides which bandwidth limit applies: uploads
    /// are writes to a non-local remote, downloads are reads from one).
    pub is_local: bool,
}

/// Where a put's data comes from: re-openable at any offset, so that a provider can retry
/// a request or upload parts in parallel without buffering them in memory.
pub trait Source: Send + Sync {
    /// Exact number of bytes the source delivers.
    fn size(&self) -> u64;
    /// The source's modification time. May cost a request when the listing did not tell
    /// it, unless a reader opened earlier already learned it (an S3 GET returns it).
    fn mtime(&self) -> Result<Nanos>;
    /// Open a reader for `len` bytes starting at `offset`. A reader delivers exactly `len`
    /// bytes and then EOF; it fails if the underlying data ends early or changed.
    fn open_at(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>>;
    /// POSIX metadata the source carries, known once a reader was opened (an S3 GET
    /// returns it). Empty when there is none.
    fn posix_meta(&self) -> PosixMeta {
        PosixMeta::default()
    }
    /// The MD5 the source announced for its whole content (from its listing, its index or
    /// a reader opened earlier), which a put must match: a destination that assembles the
    /// data from ranged reads (no single stream the engine could hash) checks the result
    /// against it before the file appears.
    fn announced_md5(&self) -> Option<Md5> {
        None
    }
    /// A digest of another kind the source announced (see [`Opened::checksum`]).
    fn announced_checksum(&self) -> Option<hash::Checksum> {
        None
    }
    /// The destination checked what it stored against an announced digest (a file
    /// assembled from ranged reads): the transfer counts as verified by content.
    fn mark_verified(&self) {}
    /// Names this version of the source's data, so that an upload interrupted by a crash
    /// can be resumed only from the very same data. `None`: the data cannot be told
    /// apart from another version (or is produced anew each time, like ciphertext with a
    /// fresh nonce), so interrupted uploads of it start over.
    fn fingerprint(&self) -> Option<String> {
        None
    }
    /// Open a reader like [`Source::open_at`] whose bytes are only hashed, not
    /// transferred: not counted as progress, not subject to the bandwidth limit.
    fn open_for_hash(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.open_at(offset, len)
    }
    /// The MD5 of the whole content, reading it if nobody announced one. For uploads that
    /// must name the digest before sending any data (rclone's `Md5chksum` metadata of a
    /// multipart upload); the default reads the data once through [`Source::open_for_hash`].
    fn content_md5(&self) -> Result<Md5> {
        if let Some(md5) = self.announced_md5() {
            return Ok(md5);
        }
        Ok(hash::md5_of(&mut self.open_for_hash(0, self.size())?)?)
    }
}

/// POSIX ownership and permissions carried with a file (rclone's metadata keys `mode`,
/// `uid`, `gid`). `mode` holds the permission bits only (0o7777 at most).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PosixMeta {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl PosixMeta {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.uid.is_none() && self.gid.is_none()
    }
}

/// What a put knows about the object besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct PutInfo {
    pub size: u64,
    /// The modification time when already known; otherwise ask [`Source::mtime`] (after
    /// reading, when that is free).
    pub mtime: Option<Nanos>,
    /// The content MD5 if known before the upload starts (lets S3 send Content-MD5).
    pub md5: Option<Md5>,
    /// POSIX metadata to record, when the source has it.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// Whether the root of a remote exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootState {
    Dir,
    Missing,
    /// The root names a file, not a directory.
    File,
}

/// One storage location. All methods take paths relative to the remote's root.
/// Implementations are shared between worker threads.
pub trait Remote: Send + Sync {
    /// A short description for messages, e.g. `s3:bucket/prefix` or `/mnt/tank/data`.
    fn describe(&self) -> String;

    fn features(&self) -> Features;

    /// Whether the root exists and is a directory.
    fn root_state(&self) -> Result<RootState>;

    /// The entries of one directory, in any order. A missing directory is an error of kind
    /// [`Kind::DirNotFound`]. Entries whose names cannot be used safely are reported through
    /// `bad` (with the error explaining why) and left out.
    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>>;

    /// The modification time of a file whose listing entry had `mtime: None`.
    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        let _ = path;
        entry.mtime.ok_or_else(|| Error::new(Kind::Unsupported, "modification time unknown"))
    }

    /// The MD5 of a file, if the remote can tell it (maybe by reading it: see
    /// [`Features::md5_is_slow`]).
    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        let _ = path;
        Ok(entry.md5)
    }

    /// The digest of `kind` of a file, if the remote can tell it (maybe by reading it).
    /// The default knows MD5 only.
    fn hash(&self, path: &RelPath, entry: &Entry, kind: hash::HashType) -> Result<Option<hash::Checksum>> {
        match kind {
            hash::HashType::Md5 => Ok(self.md5(path, entry)?.map(|m| hash::Checksum { kind, value: m.to_vec() })),
            _ => Ok(None),
        }
    }

    /// Remember a digest computed by the engine while streaming the file (so that a local
    /// remote never hashes the same unchanged file twice).
    fn remember_md5(&self, path: &RelPath, entry: &Entry, md5: Md5) {
        let _ = (path, entry, md5);
    }

    /// The MD5 if it is known without reading the file (from the listing or the index).
    fn cached_md5(&self, path: &RelPath, entry: &Entry) -> Option<Md5> {
        let _ = path;
        entry.md5
    }

    /// Open a file for reading `len` bytes from `offset` (`len = u64::MAX`: to the end).
    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened>;

    /// Store a file from `src`. The object appears only when complete and verified; a put
    /// that fails or is cancelled leaves nothing behind (nor a previous version damaged).
    /// Returns the stored entry (size, mtime, md5 when the provider knows it).
    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry>;

    /// Set the modification time without re-uploading, keeping `meta` (the source's POSIX
    /// metadata, when it has any) recorded with the object. Errors of kind
    /// [`Kind::Unsupported`] mean "re-upload to change it".
    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: PosixMeta) -> Result<()> {
        let _ = (path, entry, mtime, meta);
        Err(Error::new(Kind::Unsupported, "can't set modification time"))
    }

    fn delete(&self, path: &RelPath, entry: &Entry) -> Result<()>;

    /// Delete many files; providers with batch deletes override this.
    fn delete_many(&self, items: &[(RelPath, Entry)], report: &mut dyn FnMut(&RelPath, Result<()>)) {
        for (path, entry) in items {
            report(path, self.delete(path, entry));
        }
    }

    /// Create a directory and its parents (no-op on remotes without directories).
    fn mkdir(&self, dir: &RelPath) -> Result<()>;

    /// Remove an empty directory.
    fn rmdir(&self, dir: &RelPath) -> Result<()>;

    /// Set a directory's modification time (only where [`Features::dir_mod_time`]).
    fn set_dir_mod_time(&self, dir: &RelPath, mtime: Nanos) -> Result<()> {
        let _ = (dir, mtime);
        Ok(())
    }

    /// The device and inode of a directory, for symlink loop detection (local only).
    fn dir_identity(&self, dir: &RelPath) -> Option<(u64, u64)> {
        let _ = dir;
        None
    }

    /// A key identifying the storage location, used to refuse syncing a location onto
    /// itself or into its own subtree: two keys overlap when one is a prefix of the other
    /// at a `/` boundary. `None` = cannot overlap with anything.
    fn overlap_key(&self) -> Option<String> {
        None
    }

    /// Make what this remote learned durable (the metadata index). Called at the end of a
    /// run; cheap when there is nothing to write.
    fn flush(&self) {}

    /// Remove what interrupted earlier runs left behind and this run came across:
    /// temporary files of downloads killed midway, unfinished uploads. Called once at the
    /// end of a run that changes things (never in a dry run); returns how many were
    /// removed. Never touches anything this remote did not create.
    fn remove_leftovers(&self) -> Result<u64> {
        Ok(0)
    }

    /// Requests made so far, by type (e.g. `("HEAD", 3)`), for remotes that talk HTTP.
    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

pub type RemoteRef = Arc<dyn Remote>;

/// An open object: its data, and its modification time when opening revealed it.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub mtime: Option<Nanos>,
    /// POSIX metadata stored with the object (S3: `X-Amz-Meta-Mode/Uid/Gid` as rclone
    /// writes them with `--metadata`), when the read told it.
    pub meta: PosixMeta,
    /// The MD5 of the whole object as the server announces it with this read (S3: the
    /// `ETag` of a single-part object, rclone's `X-Amz-Meta-Md5chksum`), even for a ranged
    /// read. The engine checks the bytes of a full read against it; a ranged download
    /// checks the assembled file. `None` when the server tells no digest.
    pub md5: Option<Md5>,
    /// Another digest of the whole object the server announces (S3's full-object
    /// `x-amz-checksum-*`), checked the same way; the strongest one it tells.
    pub checksum: Option<hash::Checksum>,
}

impl Opened {
    /// An open object that announces nothing beyond its bytes.
    pub fn plain(reader: Box<dyn Read + Send>) -> Opened {
        Opened { reader, mtime: None, meta: PosixMeta::default(), md5: None, checksum: None }
    }
}
