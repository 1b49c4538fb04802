//! Does this file need transferring? rclone's `NeedTransfer` and `equal`
//! (sync-semantics.md §4), in the same order, with the same outcomes.
//!
//! The only cost-saving difference from rclone is upstream of this module: remotes answer
//! modification times and hashes from the metadata index when they can, so asking here is
//! usually free. Sizes are compared before any modification time is fetched.

use super::{CompareOptions, Run, SyncOptions};
use crate::error::{Kind, Result};
use crate::path::RelPath;
use crate::remote::hash::HashType;
use crate::remote::{Entry, Nanos, Remote};

/// The outcome for a file present on both sides.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Transfer the file (the reason is logged at debug level).
    Transfer(&'static str),
    /// Equal: nothing to do.
    Skip(&'static str),
    /// Equal content; set the destination modification time to this value, falling back to
    /// a transfer if the destination cannot.
    SetModTime(Nanos),
}

/// The paths of one file on each side. They differ when the names matched only after
/// Unicode normalisation: each side is then read under its own spelling.
pub struct Paths<'a> {
    pub src: &'a RelPath,
    pub dst: &'a RelPath,
}

/// The modify window: max(--modify-window, both precisions); `None` = unsupported.
pub fn modify_window(src: &dyn Remote, dst: &dyn Remote, opts: &SyncOptions) -> Option<Nanos> {
    let s = src.features().precision?;
    let d = dst.features().precision?;
    Some(opts.compare.modify_window.max(s).max(d))
}

impl Run<'_> {
    fn src_mtime(&self, path: &RelPath, e: &Entry) -> Result<Nanos> {
        match e.mtime {
            Some(t) => Ok(t),
            None => self.src.mod_time(path, e),
        }
    }

    fn dst_mtime(&self, path: &RelPath, e: &Entry) -> Result<Nanos> {
        match e.mtime {
            Some(t) => Ok(t),
            None => self.dst.mod_time(path, e),
        }
    }

    /// The digest kind both sides can tell (MD5 first, else the strongest), if any.
    fn common_hash(&self) -> Option<HashType> {
        self.src.features().hashes.and(self.dst.features().hashes).preferred()
    }

    /// Compare hashes: `Some(true)` equal, `Some(false)` different, `None` no usable hash.
    fn hashes_equal(&self, p: &Paths<'_>, src: &Entry, dst: &Entry) -> Result<Option<bool>> {
        let Some(kind) = self.common_hash() else {
            return Ok(None);
        };
        // Ask the cheap side first: if it has no hash, the slow side need not read a file.
        let src_side = (self.src, p.src, src);
        let dst_side = (self.dst, p.dst, dst);
        let (first, second) = if self.src.features().md5_is_slow { (dst_side, src_side) } else { (src_side, dst_side) };
        let Some(a) = first.0.hash(first.1, first.2, kind)? else {
            return Ok(None);
        };
        let Some(b) = second.0.hash(second.1, second.2, kind)? else {
            return Ok(None);
        };
        Ok(Some(a == b))
    }

    /// rclone `NeedTransfer` for a file present on both sides.
    pub fn decide(&self, p: &Paths<'_>, src: &Entry, dst: &Entry) -> Result<Decision> {
        let c: &CompareOptions = &self.opts.compare;
        if c.ignore_existing {
            return Ok(Decision::Skip("Destination exists, skipping"));
        }
        if c.ignore_times {
            return Ok(Decision::Transfer("Transferring unconditionally as --ignore-times is in use"));
        }
        if c.update {
            let window = self.window.unwrap_or(1_000_000_000);
            let st = self.src_mtime(p.src, src)?;
            let dt = self.dst_mtime(p.dst, dst)?.saturating_sub(st);
            if dt >= window {
                return Ok(Decision::Skip("Destination is newer than source, skipping"));
            }
            if dt <= -window {
                return self.equal(p, src, dst, true);
            }
            // Within the window: size only (size and hash with --checksum).
            if !self.sizes_equal(src, dst) {
                return Ok(Decision::Transfer("Sizes differ"));
            }
            if c.checksum && self.hashes_equal(p, src, dst)? == Some(false) {
                return Ok(Decision::Transfer("Hashes differ"));
            }
            return Ok(Decision::Skip("Destination mod time is within modify window, skipping"));
        }
        self.equal(p, src, dst, false)
    }

    fn sizes_equal(&self, src: &Entry, dst: &Entry) -> bool {
        self.opts.compare.ignore_size || src.size < 0 || dst.size < 0 || src.size == dst.size
    }

    /// rclone `equal`. With `mtime_matched` (from --update, source newer) the time
    /// comparison is treated as done and the content decides.
    fn equal(&self, p: &Paths<'_>, src: &Entry, dst: &Entry, mtime_newer: bool) -> Result<Decision> {
        let c = &self.opts.compare;
        if !self.sizes_equal(src, dst) {
            return Ok(Decision::Transfer("Sizes differ"));
        }
        if c.size_only {
            return Ok(Decision::Skip("Sizes identical"));
        }
        if c.checksum {
            return Ok(match self.hashes_equal(p, src, dst)? {
                Some(false) => Decision::Transfer("Hashes differ"),
                Some(true) => Decision::Skip("Size and hash identical"),
                None => {
                    self.note_checksum_fallback();
                    Decision::Skip("Sizes identical (no common hash)")
                }
            });
        }
        let Some(window) = self.window else {
            return Ok(Decision::Skip("Sizes identical (modification times not supported)"));
        };
        let src_time = self.src_mtime(p.src, src)?;
        if !mtime_newer {
            let dt = (self.dst_mtime(p.dst, dst)? - src_time).abs();
            if dt < window {
                return Ok(Decision::Skip("Size and modification time the same"));
            }
        }
        match self.hashes_equal(p, src, dst)? {
            Some(false) => Ok(Decision::Transfer("Hashes differ")),
            None if !c.refresh_times => Ok(Decision::Transfer("Modification times differ and no common hash")),
            _ if c.no_update_modtime => Ok(Decision::Skip("Content identical, not updating modification time")),
            _ => Ok(Decision::SetModTime(src_time)),
        }
    }

    fn note_checksum_fallback(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        if self.common_hash().is_none() && !self.checksum_fallback_logged.swap(true, Relaxed) {
            self.log(
                log::Level::Warn,
                "--checksum is in use but the source and destination have no hashes in common; falling back to --size-only",
            );
        }
    }

    /// Apply a `SetModTime` decision. Returns true if the file must be transferred instead.
    pub fn apply_set_mod_time(
        &self,
        path: &RelPath,
        dst: &Entry,
        mtime: Nanos,
        meta: crate::remote::PosixMeta,
    ) -> Result<bool> {
        match self.dst.set_mod_time(path, dst, mtime, meta) {
            Ok(()) => Ok(false),
            Err(e) if e.kind() == Kind::Unsupported => {
                use std::sync::atomic::Ordering::Relaxed;
                if !self.forced_upload_logged.swap(true, Relaxed) {
                    self.log(log::Level::Info, "Forced to upload files to set modification times on this backend.");
                }
                self.log(
                    log::Level::Debug,
                    &format!("{}: src and dst identical but can't set mod time without re-uploading", path.display()),
                );
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}
