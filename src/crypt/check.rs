//! Verify a local tree against an encrypted remote without downloading it (rclone
//! `cryptcheck`): for each file, read the object's 32-byte header to learn its nonce,
//! encrypt the local file again with that nonce, and compare the MD5 of the result with
//! the MD5 the wrapped remote reports for the object.

use super::content::{EncryptReader, FILE_HEADER_SIZE, read_nonce};
use super::remote::CryptRemote;
use crate::engine::{CancelToken, Filter};
use crate::error::{Error, Kind, Result};
use crate::path::{RelPath, match_key};
use crate::remote::{Entry, Remote};
use md5::Digest;
use std::io::Read;

/// The outcome of a check.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct CheckReport {
    pub matching: u64,
    /// Files whose size or encrypted MD5 differ.
    pub differing: Vec<String>,
    pub missing_on_remote: Vec<String>,
    pub missing_locally: Vec<String>,
    /// Files that could not be compared (the remote has no MD5 for the object, or an
    /// error), with the reason.
    pub unchecked: Vec<(String, String)>,
}

impl CheckReport {
    pub fn differences(&self) -> usize {
        self.differing.len() + self.missing_on_remote.len() + self.missing_locally.len()
    }
}

/// Compare `local` with the encrypted `remote`, file by file, one directory at a time.
pub fn cryptcheck(
    local: &dyn Remote,
    remote: &CryptRemote,
    filter: &Filter,
    cancel: &CancelToken,
) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    let mut dirs = vec![(RelPath::root(), true, true)];
    while let Some((dir, in_local, in_remote)) = dirs.pop() {
        cancel.check()?;
        let mut bad = |e: Error| report.unchecked.push((e.path().unwrap_or_default().to_string(), e.to_string()));
        let mut l = if in_local { local.list_dir(&dir, &mut bad)? } else { Vec::new() };
        let mut r = if in_remote {
            match remote.list_dir(&dir, &mut bad) {
                Ok(v) => v,
                Err(e) if e.kind() == Kind::DirNotFound => Vec::new(),
                Err(e) => return Err(e),
            }
        } else {
            Vec::new()
        };
        let key = |e: &Entry| match_key(&e.name, e.is_dir());
        l.sort_by_key(key);
        r.sort_by_key(key);
        let (mut li, mut ri) = (l.into_iter().peekable(), r.into_iter().peekable());
        loop {
            let (a, b) = match (li.peek(), ri.peek()) {
                (None, None) => break,
                (Some(_), None) => (li.next(), None),
                (None, Some(_)) => (None, ri.next()),
                (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                    std::cmp::Ordering::Less => (li.next(), None),
                    std::cmp::Ordering::Greater => (None, ri.next()),
                    std::cmp::Ordering::Equal => (li.next(), ri.next()),
                },
            };
            let Some(any) = a.as_ref().or(b.as_ref()) else { break };
            let path = dir.join(&any.name)?;
            let included =
                if any.is_dir() { filter.include_dir(path.as_bytes()) } else { filter.include_file(path.as_bytes()) };
            if !included {
                continue;
            }
            match (a, b) {
                (Some(x), _) if x.is_dir() => dirs.push((path, true, true)),
                (None, Some(y)) if y.is_dir() => dirs.push((path, false, true)),
                (Some(_), None) => report.missing_on_remote.push(path.display()),
                (None, Some(_)) => report.missing_locally.push(path.display()),
                (Some(x), Some(y)) => match compare(local, remote, &path, &x, &y) {
                    Ok(Some(true)) => report.matching += 1,
                    Ok(Some(false)) => report.differing.push(path.display()),
                    Ok(None) => report.unchecked.push((path.display(), "the remote has no MD5 for this object".into())),
                    Err(e) => report.unchecked.push((path.display(), e.to_string())),
                },
                (None, None) => {}
            }
        }
    }
    Ok(report)
}

fn compare(local: &dyn Remote, remote: &CryptRemote, path: &RelPath, l: &Entry, r: &Entry) -> Result<Option<bool>> {
    if l.size != r.size {
        return Ok(Some(false));
    }
    let inner = remote.inner();
    let enc_path = remote.encrypt_path(path, false)?;
    let mut enc_entry = r.clone();
    enc_entry.name = enc_path.file_name().to_vec();
    enc_entry.size = super::content::encrypted_size(r.size.max(0) as u64) as i64;
    let Some(remote_md5) = inner.md5(&enc_path, &enc_entry)? else { return Ok(None) };
    let mut header = [0u8; FILE_HEADER_SIZE];
    inner.open(&enc_path, &enc_entry, 0, FILE_HEADER_SIZE as u64)?.reader.read_exact(&mut header)?;
    let nonce = read_nonce(&header).map_err(|e| Error::new(Kind::Corrupted, e.to_string()))?;
    let plain = local.open(path, l, 0, u64::MAX)?.reader;
    let mut enc = EncryptReader::with_nonce(plain, remote.keys(), nonce);
    let mut h = md5::Md5::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = enc.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let local_md5: [u8; 16] = h.finalize().into();
    Ok(Some(local_md5 == remote_md5))
}
