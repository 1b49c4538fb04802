//! Large downloads (16 MiB and more), written in 8 MiB chunks that the upload journal
//! records, so that a download interrupted by kill -9, an abort or a failed try resumes
//! from the chunks it already has instead of from zero (TrueNAS restarts every stopped
//! transfer from its first byte).
//!
//! A chunk counts as done only once its bytes are written and its MD5 is journaled; on
//! resume each journaled chunk is read back from the temporary file and kept only if it
//! still hashes the same. The rest is fetched with ranged reads of the same object version
//! (the source's fingerprint must match, and S3 sends `If-Match`), and the assembled file
//! is checked against the digest the source announces before it is renamed into place: a
//! resumed download that nothing can verify is discarded.

use super::{COPY_BUF, MULTI_THREAD_CUTOFF, MULTI_THREAD_STREAMS, hash_file, read_retry, short_source};
use crate::error::{Error, Kind, Result};
use crate::index::{Index, JournalPart};
use crate::remote::{Md5, Source};
use md5::Digest;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The unit a download journals.
pub(super) const CHUNK: u64 = 8 * 1024 * 1024;
/// Smaller downloads start over when interrupted (they cost less than the journal).
pub(super) const RESUMABLE_MIN: u64 = 2 * CHUNK;

/// Where the chunks of one download are journaled.
pub(super) struct Journal<'a> {
    pub index: &'a Index,
    pub remote: String,
    pub key: String,
    pub session: String,
}

/// Consecutive chunks `[first, end)` that are still missing, cut so that a large file is
/// fetched as `MULTI_THREAD_STREAMS` parallel ranges (as without resume).
fn missing_runs(size: u64, kept: &[Option<Md5>]) -> Vec<(u64, u64)> {
    let chunks = size.div_ceil(CHUNK);
    let streams = if size >= MULTI_THREAD_CUTOFF { MULTI_THREAD_STREAMS } else { 1 };
    let per = chunks.div_ceil(streams).max(1);
    let mut runs = Vec::new();
    for s in 0..streams {
        let (lo, hi) = (s * per, ((s + 1) * per).min(chunks));
        let mut i = lo;
        while i < hi {
            if kept.get(i as usize).is_some_and(Option::is_some) {
                i += 1;
                continue;
            }
            let start = i;
            while i < hi && !kept.get(i as usize).is_some_and(Option::is_some) {
                i += 1;
            }
            runs.push((start, i));
        }
    }
    runs
}

/// The chunks of the temporary file that still hold what the journal recorded.
pub(super) fn verified_chunks(file: &File, size: u64, parts: &[JournalPart]) -> Vec<Option<Md5>> {
    let chunks = size.div_ceil(CHUNK) as usize;
    let mut kept = vec![None; chunks];
    let mut buf = vec![0u8; COPY_BUF];
    for p in parts {
        let Some(i) = p.number.checked_sub(1).map(|i| i as usize).filter(|&i| i < chunks) else { continue };
        let offset = i as u64 * CHUNK;
        if p.size != CHUNK.min(size - offset) {
            continue;
        }
        let mut h = md5::Md5::new();
        let mut pos = offset;
        let end = offset + p.size;
        let mut ok = true;
        while pos < end {
            let want = (end - pos).min(COPY_BUF as u64) as usize;
            match file.read_at(&mut buf[..want], pos) {
                Ok(0) | Err(_) => {
                    ok = false;
                    break;
                }
                Ok(n) => {
                    h.update(&buf[..n]);
                    pos += n as u64;
                }
            }
        }
        let md5: Md5 = h.finalize().into();
        if ok && md5 == p.md5 {
            kept[i] = Some(md5);
        }
    }
    kept
}

/// Fetch every chunk not in `kept` into `file` (already `size` long), journaling each as
/// it completes. Returns the digest of the whole file when it was checked here: always
/// after a resume or a parallel fetch (no single stream that the engine could hash);
/// a resumed file without any digest to check against is an error.
pub(super) fn write_chunks(
    file: &File,
    src: &dyn Source,
    kept: &[Option<Md5>],
    journal: Option<&Journal<'_>>,
) -> Result<Option<Md5>> {
    let size = src.size();
    let runs = missing_runs(size, kept);
    let resumed = kept.iter().any(Option::is_some);
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let workers = runs.len().min(MULTI_THREAD_STREAMS as usize);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(&(first, end)) = runs.get(next.fetch_add(1, Relaxed)) {
                    if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    if let Err(e) = fetch_run(file, src, first, end, journal)
                        && let Ok(mut f) = failed.lock()
                    {
                        f.get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = failed.lock().map_err(|_| Error::other("lock poisoned"))?.take() {
        return Err(e);
    }
    let whole_stream = !resumed && runs.len() == 1 && runs[0] == (0, size.div_ceil(CHUNK));
    if whole_stream {
        return Ok(None); // one full read: the engine hashed and checked it
    }
    let Some(expected) = src.announced_md5() else {
        if let Some(want) = src.announced_checksum() {
            let got = super::hash_file_as(file, want.kind)?;
            if got != want {
                return Err(Error::new(
                    Kind::Corrupted,
                    format!("corrupted on transfer: {} differs ({got} vs {want})", want.kind.name()),
                )
                .with_retryable(true));
            }
            src.mark_verified();
            return Ok(None);
        }
        if resumed {
            return Err(Error::new(
                Kind::Corrupted,
                "a resumed download cannot be verified (the source tells no hash of it): starting over",
            )
            .with_retryable(true));
        }
        return Ok(None);
    };
    let got = hash_file(file)?;
    if got != expected {
        return Err(Error::new(
            Kind::Corrupted,
            format!(
                "corrupted on transfer: md5 hashes differ src({}) vs dst({})",
                hex::encode(expected),
                hex::encode(got)
            ),
        )
        .with_retryable(true));
    }
    Ok(Some(got))
}

/// One ranged read covering chunks `[first, end)`, written in place chunk by chunk.
fn fetch_run(file: &File, src: &dyn Source, first: u64, end: u64, journal: Option<&Journal<'_>>) -> Result<()> {
    let size = src.size();
    let start = first * CHUNK;
    let stop = (end * CHUNK).min(size);
    let mut reader = src.open_at(start, stop - start)?;
    let mut buf = vec![0u8; COPY_BUF];
    for chunk in first..end {
        let offset = chunk * CHUNK;
        let len = CHUNK.min(size - offset);
        let mut h = md5::Md5::new();
        let mut pos = offset;
        while pos < offset + len {
            let want = (offset + len - pos).min(COPY_BUF as u64) as usize;
            let n = read_retry(&mut reader, &mut buf[..want])?;
            if n == 0 {
                return Err(short_source(pos - start, stop - start));
            }
            h.update(&buf[..n]);
            file.write_all_at(&buf[..n], pos)?;
            pos += n as u64;
        }
        if let Some(j) = journal {
            let part = JournalPart { number: chunk + 1, etag: String::new(), md5: h.finalize().into(), size: len };
            j.index.journal_part(&j.remote, &j.key, &j.session, &part)?;
        }
    }
    // The reader must end where the range does (the engine's reader checks the source).
    let mut one = [0u8; 1];
    if read_retry(&mut reader, &mut one)? != 0 {
        return Err(Error::new(Kind::Corrupted, "source delivered more data than announced"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_skip_kept_chunks_and_split_large_files_into_streams() {
        let d = Some([0u8; 16]);
        assert_eq!(missing_runs(5 * CHUNK, &[None; 5]), vec![(0, 5)]);
        assert_eq!(missing_runs(5 * CHUNK - 1, &[d, d, None, d, None]), vec![(2, 3), (4, 5)]);
        // 256 MiB = 32 chunks in 4 streams of 8.
        let runs = missing_runs(MULTI_THREAD_CUTOFF, &[None; 32]);
        assert_eq!(runs, vec![(0, 8), (8, 16), (16, 24), (24, 32)]);
        let mut kept = vec![None; 32];
        kept[0] = d;
        kept[1] = d;
        kept[9] = d;
        assert_eq!(missing_runs(MULTI_THREAD_CUTOFF, &kept), vec![(2, 8), (8, 9), (10, 16), (16, 24), (24, 32)]);
    }
}
