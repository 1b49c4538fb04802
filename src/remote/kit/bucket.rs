//! What bucket stores share: checking that the metadata index's record of an object
//! (its modification time, its MD5) still describes what a listing shows, so that the
//! index saves a HEAD per object (S3, Swift: their listings carry no user metadata).

use crate::index::ObjectMeta;
use crate::remote::{Md5, Nanos};

/// What a listing tells of an object, for [`validate`].
pub struct Listed<'a> {
    pub size: i64,
    /// The listed ETag or hash ("" when the server lists none).
    pub etag: &'a str,
}

/// Whether what the index recorded for an object still describes the listed object.
/// `Some(None)`: valid as is. `Some(Some(meta))`: valid, and the first listing after our
/// own upload completes the record (the PUT answer carries no LastModified, and some
/// servers send no ETag there either). `None`: stale.
///
/// Some servers list no ETags; then size and LastModified are the validators.
pub fn validate(
    m: &ObjectMeta,
    o: &Listed<'_>,
    server_time: Option<Nanos>,
    listed_md5: Option<Md5>,
) -> Option<Option<ObjectMeta>> {
    if m.size != o.size {
        return None;
    }
    let first_listing = m.server_time.is_none();
    if !first_listing && m.server_time != server_time {
        return None;
    }
    let etag_ok = if o.etag.is_empty() || m.etag == o.etag {
        true
    } else if m.etag.is_empty() && first_listing {
        // We uploaded it but were not told the ETag: accept the listed one only if it
        // agrees with the MD5 we computed.
        matches!((m.md5, listed_md5), (Some(a), Some(b)) if a == b) || (m.md5.is_none() && listed_md5.is_none())
    } else {
        false
    };
    if !etag_ok {
        return None;
    }
    if first_listing || (m.etag.is_empty() && !o.etag.is_empty()) {
        let etag = if o.etag.is_empty() { m.etag.clone() } else { o.etag.to_string() };
        return Some(Some(ObjectMeta { etag, server_time: server_time.or(m.server_time), ..m.clone() }));
    }
    Some(None)
}

use super::encoder::{self, Mask};
use crate::error::{Error, Kind, Result};
use crate::path::{RelPath, decode_key_segment, encode_key_segment};
use crate::remote::{Entry, Features, Opened, RootState, hash::Hashes};

/// How a provider spells local names in object keys (rclone's encoding per backend).
#[derive(Clone, Copy, Debug)]
pub enum Codec {
    /// S3's (`path::encode_key_segment`: InvalidUtf8, Slash, Dot).
    S3,
    Mask(Mask),
}

/// A location in a bucket store: the bucket and a key prefix, and how names are spelled.
#[derive(Clone, Debug)]
pub struct Keys {
    /// The prefix of messages (`azureblob`).
    pub scheme: &'static str,
    pub bucket: String,
    /// Without leading or trailing `/`.
    pub prefix: String,
    pub codec: Codec,
}

impl Keys {
    pub fn new(scheme: &'static str, bucket: &str, prefix: &str, codec: Codec) -> Keys {
        Keys { scheme, bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string(), codec }
    }

    pub fn encode(&self, seg: &[u8]) -> String {
        match self.codec {
            Codec::S3 => encode_key_segment(seg),
            Codec::Mask(m) => encoder::encode(seg, m),
        }
    }

    pub fn decode(&self, seg: &str) -> Vec<u8> {
        match self.codec {
            Codec::S3 => decode_key_segment(seg),
            Codec::Mask(m) => encoder::decode(seg, m),
        }
    }

    /// The object key of a path.
    pub fn key(&self, path: &RelPath) -> String {
        let mut k = self.prefix.clone();
        for seg in path.segments() {
            if !k.is_empty() {
                k.push('/');
            }
            k.push_str(&self.encode(seg));
        }
        k
    }

    /// The listing prefix of a directory (`""` or ending in `/`).
    pub fn dir_prefix(&self, dir: &RelPath) -> String {
        let k = self.key(dir);
        if k.is_empty() { k } else { k + "/" }
    }

    /// `scheme:bucket/key` for messages.
    pub fn shown(&self, path: &RelPath) -> String {
        format!("{}:{}/{}", self.scheme, self.bucket, self.key(path))
    }

    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("{}:{}", self.scheme, self.bucket)
        } else {
            format!("{}:{}/{}", self.scheme, self.bucket, self.prefix)
        }
    }

    /// The local name of a listed key (or common prefix, ending in `/`) that is a direct
    /// child of `dir` (whose listing prefix is `prefix`); `None` for anything else. A name
    /// that cannot be a local name is reported through `bad` and left out.
    pub fn child(&self, dir: &RelPath, prefix: &str, listed: &str, bad: &mut dyn FnMut(Error)) -> Option<Vec<u8>> {
        let rest = listed.strip_prefix(prefix)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains('/') {
            return None;
        }
        let name = self.decode(rest);
        match dir.join(&name) {
            Ok(_) => Some(name),
            Err(e) => {
                bad(e.with_path(format!("{}:{}/{listed}", self.scheme, self.bucket)));
                None
            }
        }
    }
}

/// The features every bucket store shares: no directories of their own, modification
/// times settable without a new upload.
pub fn features(hashes: Hashes, precision: i64, lazy_mod_time: bool) -> Features {
    Features {
        hashes,
        md5_is_slow: false,
        precision: Some(precision),
        set_mod_time: true,
        empty_dirs: false,
        dir_mod_time: false,
        read_only: false,
        case_insensitive: false,
        lazy_mod_time,
        is_local: false,
    }
}

/// Whether a location exists, from two one-entry listings: `children(prefix)` tells if
/// anything is below the root's listing prefix (`Err` of kind `DirNotFound`: the bucket
/// is missing), `first(key)` the first key starting with the root's own key.
pub fn root_state(
    keys: &Keys,
    children: impl FnOnce(&str) -> Result<bool>,
    first: impl FnOnce(&str) -> Result<Option<String>>,
) -> Result<RootState> {
    let prefix = keys.dir_prefix(&RelPath::root());
    match children(&prefix) {
        Ok(any) if prefix.is_empty() || any => return Ok(RootState::Dir),
        Ok(_) => {}
        Err(e) if e.kind() == Kind::DirNotFound => return Ok(RootState::Missing),
        Err(e) => return Err(e),
    }
    // No children: is the prefix itself an object? The smallest key with this prefix
    // comes first, so one key is enough (and no HEAD of a "directory" is ever sent).
    if first(&keys.prefix)?.is_some_and(|k| k == keys.prefix) {
        return Ok(RootState::File);
    }
    Ok(RootState::Missing)
}

/// The byte range of a read of `entry` (`len = u64::MAX`: to the end), and whether it is
/// ranged: `None` when it is empty (nothing to ask the server for).
pub fn read_range(entry: &Entry, offset: u64, len: u64) -> (u64, bool) {
    let size = entry.size.max(0) as u64;
    let len = len.min(size.saturating_sub(offset));
    (len, offset > 0 || len < size)
}

/// What an empty ranged read returns.
pub fn empty_read(entry: &Entry) -> Opened {
    let mut o = Opened::plain(Box::new(std::io::empty()));
    o.mtime = entry.mtime;
    o.md5 = entry.md5;
    o
}

/// The checks every download answer passes: a ranged read got a 206, and the body is
/// announced as exactly the bytes asked for.
pub fn check_read(resp: &super::http::HttpResponse, ranged: bool, len: u64) -> Result<()> {
    if ranged && resp.status().as_u16() != 206 {
        return Err(Error::new(Kind::Protocol, "the server ignored the requested byte range"));
    }
    if let Some(cl) = super::http::header(resp, "content-length").and_then(|v| v.parse::<u64>().ok())
        && cl != len
    {
        return Err(Error::new(Kind::Protocol, format!("the server sent {cl} bytes where {len} were expected"))
            .with_retryable(true));
    }
    Ok(())
}

/// rclone's POSIX metadata keys (`--metadata`): `mode` in octal with the file type
/// (`100644`), `uid` and `gid` in decimal; the provider puts them under its metadata prefix.
pub fn posix_pairs(meta: crate::remote::PosixMeta) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(mode) = meta.mode {
        v.push(("mode", format!("{:o}", 0o100000 | (mode & 0o7777))));
    }
    if let Some(uid) = meta.uid {
        v.push(("uid", uid.to_string()));
    }
    if let Some(gid) = meta.gid {
        v.push(("gid", gid.to_string()));
    }
    v
}

/// Read rclone's POSIX metadata (`get` answers the key without the provider's prefix);
/// values that do not parse are ignored.
pub fn posix_from<'r>(get: impl Fn(&str) -> Option<&'r str>) -> crate::remote::PosixMeta {
    crate::remote::PosixMeta {
        mode: get("mode").and_then(|v| u32::from_str_radix(v.trim(), 8).ok()).map(|m| m & 0o7777),
        uid: get("uid").and_then(|v| v.trim().parse().ok()),
        gid: get("gid").and_then(|v| v.trim().parse().ok()),
    }
}
