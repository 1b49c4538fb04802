//! ZFS awareness: which dataset holds a task's path (from /proc/self/mountinfo and
//! `zfs list`), locked or unmounted datasets, and snapshot-before-push with a cleanup
//! that runs on every exit path (truenas-cloudsync.md §7.5).
//!
//! Everything goes through the `zfs` command (`CLOUDSYNC_ZFS` names another binary), so
//! kernel ZFS and zfs-fuse behave alike. Where `<mountpoint>/.zfs/snapshot` cannot be
//! reached (zfs-fuse has no `.zfs` directory), the snapshot is cloned read-only to a
//! temporary dataset `<pool>/cloud_sync-<tag>-<time>-clone`, mounted under the temporary
//! directory, read from there, and destroyed before the snapshot.

use crate::error::{Error, Kind, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The prefix of every snapshot and clone cloudsync makes.
pub const PREFIX: &str = "cloud_sync-";

/// The `zfs` command.
#[derive(Clone, Debug)]
pub struct Zfs {
    bin: PathBuf,
}

impl Default for Zfs {
    fn default() -> Self {
        Zfs { bin: std::env::var_os("CLOUDSYNC_ZFS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("zfs")) }
    }
}

/// A filesystem dataset as `zfs list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetInfo {
    pub name: String,
    pub mountpoint: Option<PathBuf>,
    pub mounted: bool,
}

/// Where a local path lies: its dataset, the dataset's mountpoint and the path relative
/// to that mountpoint (empty at the mountpoint itself).
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    pub dataset: String,
    pub mountpoint: PathBuf,
    pub relative: PathBuf,
}

impl Zfs {
    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .output()
            .map_err(|e| Error::new(Kind::Unsupported, format!("cannot run {}: {e}", self.bin.display())))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("").trim();
            return Err(Error::other(format!("zfs {}: {first}", args.join(" "))));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Every filesystem dataset.
    pub fn filesystems(&self) -> Result<Vec<DatasetInfo>> {
        let text = self.run(&["list", "-H", "-t", "filesystem", "-o", "name,mountpoint,mounted"])?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split('\t');
                let name = f.next()?.to_string();
                let mp = f.next()?;
                let mounted = f.next()? == "yes";
                let mountpoint = mp.starts_with('/').then(|| PathBuf::from(mp));
                Some(DatasetInfo { name, mountpoint, mounted })
            })
            .collect())
    }

    /// The names of every snapshot.
    pub fn snapshots(&self) -> Result<Vec<String>> {
        Ok(self.run(&["list", "-H", "-t", "snapshot", "-o", "name"])?.lines().map(str::to_string).collect())
    }

    /// A dataset's key status (`available`/`unavailable`), or None where the ZFS has no
    /// encryption (zfs-fuse, pool version 23) or the dataset is not encrypted.
    pub fn keystatus(&self, dataset: &str) -> Option<String> {
        let v = self.run(&["get", "-H", "-o", "value", "keystatus", dataset]).ok()?;
        let v = v.trim();
        (v != "-" && !v.is_empty()).then(|| v.to_string())
    }

    pub fn snapshot(&self, name: &str, recursive: bool) -> Result<()> {
        let mut args = vec!["snapshot"];
        if recursive {
            args.push("-r");
        }
        args.push(name);
        self.run(&args).map(drop)
    }

    /// Destroy a snapshot or dataset, retrying while it is busy (a clone just unmounted).
    pub fn destroy(&self, name: &str, recursive: bool) -> Result<()> {
        let mut args = vec!["destroy"];
        if recursive {
            args.push("-r");
        }
        args.push(name);
        let mut last = None;
        for attempt in 0..20 {
            match self.run(&args) {
                Ok(_) => return Ok(()),
                Err(e) if e.message().contains("does not exist") => return Ok(()),
                Err(e) => last = Some(e),
            }
            std::thread::sleep(Duration::from_millis(100 * (attempt + 1).min(5)));
        }
        Err(last.unwrap_or_else(|| Error::other("zfs destroy failed")))
    }
}

/// Undo the octal escapes of /proc/self/mountinfo (`\040` for a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The ZFS mount (dataset, mountpoint) holding `path`, from /proc/self/mountinfo: the
/// deepest mountpoint above the path with file system type `zfs` (kernel) or `fuse.zfs`.
/// None when the path is not on ZFS.
pub fn mount_of(path: &Path) -> Result<Option<(String, PathBuf)>> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("read", "/proc/self/mountinfo", e))?;
    let mut best: Option<(String, PathBuf, usize)> = None;
    let mut deepest_any = 0usize;
    for line in info.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let Some(mp) = pre.split(' ').nth(4) else { continue };
        let mp = PathBuf::from(unescape(mp));
        if !path.starts_with(&mp) {
            continue;
        }
        let depth = mp.components().count();
        let mut f = post.split(' ');
        let (fstype, source) = (f.next().unwrap_or(""), unescape(f.next().unwrap_or("")));
        // A later, deeper or equal mount hides what is below it.
        if depth >= deepest_any {
            deepest_any = depth;
            best = matches!(fstype, "zfs" | "fuse.zfs").then_some((source, mp, depth));
        }
    }
    Ok(best.map(|(s, m, _)| (s, m)))
}

/// Where `path` lies in ZFS, checking that no dataset between its mounted dataset and the
/// path is locked or unmounted (a write there would land in the parent's directory).
/// None when the path is not on ZFS at all.
pub fn locate(zfs: &Zfs, path: &Path) -> Result<Option<Location>> {
    let Some((dataset, mountpoint)) = mount_of(path)? else { return Ok(None) };
    // A dataset whose mountpoint lies between the mounted one and the path, not mounted:
    // an encrypted dataset whose key is not loaded, or one unmounted by hand.
    if let Ok(all) = zfs.filesystems() {
        for d in all.iter().filter(|d| !d.mounted) {
            let Some(mp) = &d.mountpoint else { continue };
            if path.starts_with(mp) && mp.starts_with(&mountpoint) && mp != &mountpoint {
                if zfs.keystatus(&d.name).as_deref() == Some("unavailable") {
                    return Err(Error::new(Kind::Permission, "Dataset is locked").with_path(path.display().to_string()));
                }
                return Err(Error::new(Kind::Io, format!("Dataset {} is not mounted", d.name))
                    .with_path(path.display().to_string()));
            }
        }
    }
    if zfs.keystatus(&dataset).as_deref() == Some("unavailable") {
        return Err(Error::new(Kind::Permission, "Dataset is locked").with_path(path.display().to_string()));
    }
    let relative = path.strip_prefix(&mountpoint).map(Path::to_path_buf).unwrap_or_default();
    Ok(Some(Location { dataset, mountpoint, relative }))
}

/// V15: with `snapshot`, no child filesystem may lie under the path (one snapshot of the
/// dataset would not cover it). Empty when the path is not on ZFS.
pub fn child_filesystems(zfs: &Zfs, path: &Path) -> Result<Vec<String>> {
    let Some(loc) = locate(zfs, path)? else { return Ok(Vec::new()) };
    Ok(zfs
        .filesystems()?
        .into_iter()
        .filter(|d| d.name.starts_with(&format!("{}/", loc.dataset)))
        .filter(|d| d.mountpoint.as_ref().is_some_and(|mp| mp.starts_with(path) && mp != path))
        .map(|d| d.name)
        .collect())
}

/// The UTC time as `YYYYMMDDHHMMSS`.
fn utc_stamp() -> String {
    let tm = crate::task::joblog::now_tm(true);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The tag of a cloudsync snapshot or clone name (`<task id>` or `onetime`), if it is one.
pub fn owner_tag(name: &str) -> Option<&str> {
    let short = name.rsplit(['@', '/']).next()?;
    let rest = short.strip_prefix(PREFIX)?;
    let rest = rest.strip_suffix("-clone").unwrap_or(rest);
    let (tag, stamp) = rest.rsplit_once('-')?;
    let ok_tag = tag == "onetime" || (!tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()));
    (ok_tag && stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit())).then_some(tag)
}

/// A snapshot taken for one push, and where to read it. Destroyed by [`release`] or, on
/// any other way out (error, abort, panic), when dropped.
///
/// [`release`]: SnapshotRead::release
pub struct SnapshotRead {
    zfs: Zfs,
    pub snapshot: String,
    recursive: bool,
    clone: Option<(String, PathBuf)>,
    /// The directory the push reads: `<mountpoint>/.zfs/snapshot/<snap>/<relative>` or
    /// the same place in the read-only clone.
    pub read_path: PathBuf,
    released: bool,
    reporter: Option<Reporter>,
}

/// Receives what a [`SnapshotRead`] does when it is destroyed (the job log).
pub type Reporter = Box<dyn Fn(log::Level, &str) + Send + Sync>;

impl SnapshotRead {
    /// Snapshot the dataset holding `loc` as `<dataset>@cloud_sync-<tag>-<UTC time>`,
    /// recursively only when the path is the dataset's mountpoint (§7.5).
    pub fn take(zfs: &Zfs, loc: &Location, tag: &str) -> Result<SnapshotRead> {
        let short = format!("{PREFIX}{tag}-{}", utc_stamp());
        let snapshot = format!("{}@{short}", loc.dataset);
        let recursive = loc.relative.as_os_str().is_empty();
        zfs.snapshot(&snapshot, recursive)?;
        let mut guard = SnapshotRead {
            zfs: zfs.clone(),
            snapshot: snapshot.clone(),
            recursive,
            clone: None,
            read_path: PathBuf::new(),
            released: false,
            reporter: None,
        };
        let via_dir = loc.mountpoint.join(".zfs/snapshot").join(&short);
        if via_dir.is_dir() {
            guard.read_path = normalise(&via_dir.join(&loc.relative));
            return Ok(guard);
        }
        // No .zfs directory (zfs-fuse): read a read-only clone of the snapshot instead.
        let pool = loc.dataset.split('/').next().unwrap_or(&loc.dataset);
        let clone = format!("{pool}/{short}-clone");
        let mnt = std::env::temp_dir().join("cloudsync-snapshots").join(format!("{short}-{}", std::process::id()));
        std::fs::create_dir_all(&mnt).map_err(|e| Error::io("create directory", mnt.display(), e))?;
        let mp_opt = format!("mountpoint={}", mnt.display());
        guard.clone = Some((clone.clone(), mnt.clone()));
        zfs.run(&["clone", "-o", "readonly=on", "-o", &mp_opt, &snapshot, &clone])?;
        guard.read_path = normalise(&mnt.join(&loc.relative));
        Ok(guard)
    }

    /// Report the destruction (and any failure of it) to `reporter` as well.
    pub fn set_reporter(&mut self, reporter: Reporter) {
        self.reporter = Some(reporter);
    }

    /// Destroy the clone (if any) and the snapshot, with the recursion of the creation.
    /// A failure is reported as a warning and returned.
    pub fn release(mut self) -> Result<()> {
        self.destroy()
    }

    fn destroy(&mut self) -> Result<()> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let mut first_err = None;
        if let Some((clone, mnt)) = self.clone.take() {
            if let Err(e) = self.zfs.destroy(&clone, false) {
                first_err.get_or_insert(e);
            }
            let _ = std::fs::remove_dir(&mnt);
        }
        if let Err(e) = self.zfs.destroy(&self.snapshot, self.recursive) {
            first_err.get_or_insert(e);
        }
        match (&first_err, &self.reporter) {
            (None, Some(r)) => r(log::Level::Info, &format!("Destroyed snapshot {}", self.snapshot)),
            (Some(e), Some(r)) => r(log::Level::Warn, &format!("Could not destroy snapshot {}: {e}", self.snapshot)),
            (Some(e), None) => log::warn!("could not destroy snapshot {}: {e}", self.snapshot),
            (None, None) => {}
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for SnapshotRead {
    fn drop(&mut self) {
        let _ = self.destroy();
    }
}

/// `path` without a trailing `/.` or `/` (rclone once failed on a trailing `/.`).
fn normalise(path: &Path) -> PathBuf {
    path.components().collect()
}

/// Destroy the cloudsync snapshots and clones left behind by jobs that are gone (a crash):
/// every `cloud_sync-<tag>-<time>` whose tag `is_live` rejects. Clones go first.
/// Returns the names destroyed.
pub fn cleanup_stale(zfs: &Zfs, is_live: &dyn Fn(&str) -> bool) -> Result<Vec<String>> {
    let mut destroyed = Vec::new();
    for d in zfs.filesystems()? {
        if owner_tag(&d.name).is_some_and(|t| !is_live(t)) {
            zfs.destroy(&d.name, false)?;
            destroyed.push(d.name);
        }
    }
    for s in zfs.snapshots()? {
        if owner_tag(&s).is_some_and(|t| !is_live(t)) {
            zfs.destroy(&s, false)?;
            destroyed.push(s);
        }
    }
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_and_their_owners() {
        assert_eq!(owner_tag("tank/data@cloud_sync-12-20261124120000"), Some("12"));
        assert_eq!(owner_tag("tank@cloud_sync-onetime-20261124120000"), Some("onetime"));
        assert_eq!(owner_tag("tank/cloud_sync-7-20261124120000-clone"), Some("7"));
        assert_eq!(owner_tag("tank/data@cloud_sync-x-20261124120000"), None);
        assert_eq!(owner_tag("tank/data@auto-20261124120000"), None);
        assert_eq!(owner_tag("tank/data@cloud_sync-1-2026"), None);
        assert_eq!(utc_stamp().len(), 14);
    }

    #[test]
    fn mountinfo_escapes_and_paths() {
        assert_eq!(unescape(r"/mnt/my\040pool"), "/mnt/my pool");
        assert_eq!(normalise(Path::new("/mnt/tank/.zfs/snapshot/s/./")), PathBuf::from("/mnt/tank/.zfs/snapshot/s"));
        // The root file system here is not ZFS.
        assert_eq!(mount_of(Path::new("/")).unwrap(), None);
    }
}
