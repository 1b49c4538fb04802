//! Layers that wrap a remote to add behaviour without the remote knowing.
//!
//! [`DryRun`] guarantees that a dry run changes nothing: every mutating call succeeds
//! without touching the wrapped remote, whatever the engine asks for. [`Context`] stamps
//! the provider and the remote on every error, once.

use super::{Entry, Features, Md5, Nanos, Opened, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Result};
use crate::path::RelPath;

/// Passes reads through and turns every write into a no-op.
pub struct DryRun<'a> {
    inner: &'a dyn Remote,
}

impl<'a> DryRun<'a> {
    pub fn new(inner: &'a dyn Remote) -> DryRun<'a> {
        DryRun { inner }
    }
}

impl Remote for DryRun<'_> {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn features(&self) -> Features {
        self.inner.features()
    }
    fn root_state(&self) -> Result<RootState> {
        self.inner.root_state()
    }
    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        self.inner.list_dir(dir, bad)
    }
    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        self.inner.mod_time(path, entry)
    }
    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        self.inner.md5(path, entry)
    }
    fn hash(
        &self,
        path: &RelPath,
        entry: &Entry,
        kind: super::hash::HashType,
    ) -> Result<Option<super::hash::Checksum>> {
        self.inner.hash(path, entry, kind)
    }
    fn cached_md5(&self, path: &RelPath, entry: &Entry) -> Option<Md5> {
        self.inner.cached_md5(path, entry)
    }
    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        self.inner.open(path, entry, offset, len)
    }
    fn put(&self, path: &RelPath, _src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        Ok(Entry::file(path.file_name(), info.size as i64, info.mtime))
    }
    fn set_mod_time(&self, _path: &RelPath, _entry: &Entry, _mtime: Nanos, _meta: super::PosixMeta) -> Result<()> {
        Ok(())
    }
    fn delete(&self, _path: &RelPath, _entry: &Entry) -> Result<()> {
        Ok(())
    }
    fn mkdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }
    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }
    fn set_dir_mod_time(&self, _dir: &RelPath, _mtime: Nanos) -> Result<()> {
        Ok(())
    }
    fn dir_identity(&self, dir: &RelPath) -> Option<(u64, u64)> {
        self.inner.dir_identity(dir)
    }
    fn overlap_key(&self) -> Option<String> {
        self.inner.overlap_key()
    }
    fn flush(&self) {
        self.inner.flush();
    }
    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.inner.request_counts()
    }
}

/// Stamps every error coming out of a remote with its provider and its location, once,
/// so providers never repeat them in messages (the C API's error object and the job
/// records read them from the error). Everything else passes straight through.
pub struct Context {
    inner: super::RemoteRef,
    provider: &'static str,
}

impl Context {
    pub fn wrap(inner: super::RemoteRef, provider: &'static str) -> super::RemoteRef {
        std::sync::Arc::new(Context { inner, provider })
    }

    fn stamp(&self, e: Error) -> Error {
        e.with_provider(self.provider).or_remote(|| self.inner.describe())
    }
}

impl Remote for Context {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn features(&self) -> Features {
        self.inner.features()
    }
    fn root_state(&self) -> Result<RootState> {
        self.inner.root_state().map_err(|e| self.stamp(e))
    }
    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        self.inner.list_dir(dir, &mut |e| bad(self.stamp(e))).map_err(|e| self.stamp(e))
    }
    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        self.inner.mod_time(path, entry).map_err(|e| self.stamp(e))
    }
    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        self.inner.md5(path, entry).map_err(|e| self.stamp(e))
    }
    fn hash(
        &self,
        path: &RelPath,
        entry: &Entry,
        kind: super::hash::HashType,
    ) -> Result<Option<super::hash::Checksum>> {
        self.inner.hash(path, entry, kind).map_err(|e| self.stamp(e))
    }
    fn remember_md5(&self, path: &RelPath, entry: &Entry, md5: Md5) {
        self.inner.remember_md5(path, entry, md5)
    }
    fn cached_md5(&self, path: &RelPath, entry: &Entry) -> Option<Md5> {
        self.inner.cached_md5(path, entry)
    }
    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        self.inner.open(path, entry, offset, len).map_err(|e| self.stamp(e))
    }
    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        self.inner.put(path, src, info).map_err(|e| self.stamp(e))
    }
    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: super::PosixMeta) -> Result<()> {
        self.inner.set_mod_time(path, entry, mtime, meta).map_err(|e| self.stamp(e))
    }
    fn delete(&self, path: &RelPath, entry: &Entry) -> Result<()> {
        self.inner.delete(path, entry).map_err(|e| self.stamp(e))
    }
    fn delete_many(&self, items: &[(RelPath, Entry)], report: &mut dyn FnMut(&RelPath, Result<()>)) {
        self.inner.delete_many(items, &mut |p, r| report(p, r.map_err(|e| self.stamp(e))))
    }
    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.inner.mkdir(dir).map_err(|e| self.stamp(e))
    }
    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        self.inner.rmdir(dir).map_err(|e| self.stamp(e))
    }
    fn set_dir_mod_time(&self, dir: &RelPath, mtime: Nanos) -> Result<()> {
        self.inner.set_dir_mod_time(dir, mtime).map_err(|e| self.stamp(e))
    }
    fn dir_identity(&self, dir: &RelPath) -> Option<(u64, u64)> {
        self.inner.dir_identity(dir)
    }
    fn overlap_key(&self) -> Option<String> {
        self.inner.overlap_key()
    }
    fn flush(&self) {
        self.inner.flush();
    }
    fn remove_leftovers(&self) -> Result<u64> {
        self.inner.remove_leftovers().map_err(|e| self.stamp(e))
    }
    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.inner.request_counts()
    }
}
