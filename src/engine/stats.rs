//! Run statistics, progress snapshots, the observer interface and cancellation.
//!
//! Counters are atomics shared by every worker. An [`Observer`] receives the run's log
//! lines, per-file events and a progress snapshot about once a second; the CLI draws a
//! progress bar from it, the job runner writes job logs and persisted progress.

use crate::error::Error;
use crate::path::RelPath;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cancellation flag shared by everything working for one run. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Relaxed)
    }
    /// `Err(cancelled)` once cancelled, for `?` in loops.
    pub fn check(&self) -> crate::Result<()> {
        if self.is_cancelled() { Err(Error::cancelled()) } else { Ok(()) }
    }
}

/// What happened to one file or directory (the decision log; rclone's `--use-json-log`
/// per-file lines). Tests replay it to predict the final destination listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileAction {
    /// Copied to a destination where it did not exist.
    CopiedNew,
    /// Copied over a different destination file.
    CopiedReplaced,
    /// The destination was equal; nothing done.
    Unchanged,
    /// Same content, the destination's modification time was updated in place.
    UpdatedModTime,
    /// Deleted from the destination (sync).
    Deleted,
    /// Deleted from the source after a move.
    DeletedSource,
    /// A directory was created on the destination.
    MadeDir,
    /// A directory was removed from the destination.
    RemovedDir,
    /// A directory's modification time was set.
    SetDirModTime,
    /// Dry run: this action would have been taken.
    WouldCopy,
    WouldDelete,
    WouldUpdateModTime,
    WouldMakeDir,
    /// The operation failed (the error is also logged and counted).
    Failed,
}

#[derive(Clone, Debug)]
pub struct FileEvent {
    pub path: RelPath,
    pub action: FileAction,
    pub size: i64,
}

/// A point-in-time view of a run's progress.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub files_done: u64,
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub checks_done: u64,
    pub checks_total: u64,
    pub deletes: u64,
    pub errors: u64,
    /// Bytes per second over the last few seconds.
    pub speed: f64,
    /// Seconds left at the current speed, when it can be estimated.
    pub eta: Option<u64>,
    pub elapsed: Duration,
    /// Files being transferred right now, with bytes done and size.
    pub transferring: Vec<(String, u64, u64)>,
    /// The listing is complete, so the totals are final.
    pub listing_done: bool,
}

impl Progress {
    /// Overall percentage. Bytes weigh when there are any to move, so one large file
    /// shows movement instead of 0% until it is done (TrueNAS takes the minimum of the
    /// file, byte and check percentages, which sits at 0% for a single file); without
    /// bytes, the file and check percentages decide (the smaller of them). Never 100
    /// before the listing is complete.
    pub fn percent(&self) -> u32 {
        let pct = |d: u64, t: u64| (d.min(t) * 100).checked_div(t).map(|p| p as u32);
        let p = pct(self.bytes_done, self.bytes_total).unwrap_or_else(|| {
            [pct(self.files_done, self.files_total), pct(self.checks_done, self.checks_total)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(if self.listing_done { 100 } else { 0 })
        });
        if self.listing_done { p } else { p.min(99) }
    }

    /// The TrueNAS-style one-line description: `75 / 3546, 752 MiB / 27.6 GiB, 7.9 MiB/s,
    /// ETA 1h2m3s, checks: 89 / 89`.
    pub fn description(&self) -> String {
        let mut parts = Vec::new();
        if self.files_total > 0 {
            parts.push(format!("{} / {}", self.files_done, self.files_total));
        }
        if self.bytes_total > 0 {
            let mut s = format!(
                "{} / {}, {}/s",
                human_bytes(self.bytes_done),
                human_bytes(self.bytes_total),
                human_bytes(self.speed as u64)
            );
            if let Some(eta) = self.eta {
                s.push_str(&format!(", ETA {}", human_duration(eta)));
            }
            parts.push(s);
        }
        if self.checks_total > 0 {
            parts.push(format!("checks: {} / {}", self.checks_done, self.checks_total));
        }
        parts.join(", ")
    }
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.3} {}", UNITS[u]) }
}

pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// Receives what a run reports. All methods may be called from several worker threads at
/// once and must return quickly. Every method has a default, so an observer implements
/// only what it needs.
pub trait Observer: Send + Sync {
    /// A log line (already formatted, without timestamp or level).
    fn log(&self, level: log::Level, message: &str) {
        log::log!(target: "cloudsync", level, "{message}");
    }
    /// One per-file decision or action.
    fn file_event(&self, event: &FileEvent) {
        let _ = event;
    }
    /// Progress, about once a second, and once more at the end.
    fn progress(&self, progress: &Progress) {
        let _ = progress;
    }
}

/// The observer used when the caller gives none: logs through the `log` crate.
pub struct LogObserver;
impl Observer for LogObserver {}

/// Shared counters of one run.
#[derive(Default)]
pub struct Stats {
    pub files_done: AtomicU64,
    pub files_total: AtomicU64,
    pub bytes_done: AtomicU64,
    pub bytes_total: AtomicU64,
    pub checks_done: AtomicU64,
    pub checks_total: AtomicU64,
    pub deletes: AtomicU64,
    pub dirs_deleted: AtomicU64,
    pub errors: AtomicU64,
    pub mod_times_updated: AtomicU64,
    pub listing_done: AtomicBool,
    pub transferring: Mutex<Vec<Arc<InFlight>>>,
    pub last_error: Mutex<Option<Error>>,
    pub retryable_errors: AtomicU64,
    pub fatal: AtomicBool,
}

/// One transfer in progress.
pub struct InFlight {
    pub name: String,
    pub size: u64,
    pub done: AtomicU64,
}

impl Stats {
    pub fn count_error(&self, err: Error) {
        self.errors.fetch_add(1, Relaxed);
        if err.is_retryable() {
            self.retryable_errors.fetch_add(1, Relaxed);
        }
        if err.kind() == crate::error::Kind::Fatal {
            self.fatal.store(true, Relaxed);
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(err);
        }
    }

    pub fn errors(&self) -> u64 {
        self.errors.load(Relaxed)
    }

    pub fn snapshot(&self, started: Instant, speed: f64) -> Progress {
        let transferring = self
            .transferring
            .lock()
            .map(|v| v.iter().map(|t| (t.name.clone(), t.done.load(Relaxed), t.size)).collect())
            .unwrap_or_default();
        let bytes_done = self.bytes_done.load(Relaxed);
        let bytes_total = self.bytes_total.load(Relaxed);
        let eta = (speed > 0.0 && bytes_total > bytes_done).then(|| ((bytes_total - bytes_done) as f64 / speed) as u64);
        Progress {
            files_done: self.files_done.load(Relaxed),
            files_total: self.files_total.load(Relaxed),
            bytes_done,
            bytes_total,
            checks_done: self.checks_done.load(Relaxed),
            checks_total: self.checks_total.load(Relaxed),
            deletes: self.deletes.load(Relaxed),
            errors: self.errors.load(Relaxed),
            speed,
            eta,
            elapsed: started.elapsed(),
            transferring,
            listing_done: self.listing_done.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_weighs_bytes() {
        let p = Progress {
            files_done: 75,
            files_total: 3546,
            bytes_done: 50,
            bytes_total: 100,
            checks_done: 89,
            checks_total: 89,
            listing_done: true,
            ..Default::default()
        };
        assert_eq!(p.percent(), 50);
        // One large file under way moves the percentage.
        let one =
            Progress { files_total: 1, bytes_done: 400, bytes_total: 1000, listing_done: true, ..Default::default() };
        assert_eq!(one.percent(), 40);
        // Nothing to move: files and checks decide; not 100 before the listing is done.
        let checks = Progress { checks_done: 30, checks_total: 60, ..Default::default() };
        assert_eq!(checks.percent(), 50);
        let done = Progress { checks_done: 60, checks_total: 60, ..Default::default() };
        assert_eq!(done.percent(), 99);
        assert_eq!(Progress { listing_done: true, ..done }.percent(), 100);
        assert!(p.description().starts_with("75 / 3546, 50 B / 100 B"));
        assert!(p.description().ends_with("checks: 89 / 89"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.500 KiB");
        assert_eq!(human_duration(3723), "1h2m3s");
    }
}
