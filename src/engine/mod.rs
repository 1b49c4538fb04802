//! The transfer engine: rclone-compatible sync, copy and move between two remotes.
//!
//! A run walks both trees one directory at a time (checkers list both sides, sort the
//! listings by rclone's match key and merge them), decides per file with rclone's rules
//! ([`decide`]), feeds transfers to a fixed pool of workers over a bounded queue, and
//! deletes from the destination only after every transfer finished and only if no error
//! happened (sync-semantics.md §5.2). Memory is bounded by the size of one directory
//! listing per checker plus the queue; file data is streamed through fixed buffers.
//!
//! The engine never names a provider: it reads [`Features`](crate::remote::Features).

pub mod bwlimit;
mod decide;
pub mod filter;
mod run;
mod spill;
pub mod stats;

pub use bwlimit::{BwTimetable, RateLimiter};
pub use filter::{Filter, FilterBuilder};
pub use stats::{CancelToken, FileAction, FileEvent, LogObserver, Observer, Progress};

use crate::error::{Error, Kind};
use crate::remote::{Nanos, Remote};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// sync, copy or move (sync-semantics.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// Make the destination identical to the source (within the filters).
    Sync,
    /// Copy new and changed files; never delete.
    Copy,
    /// Copy, then delete each source file (also when the destination was already equal).
    Move,
}

/// How files are compared (sync-semantics.md §4 and §11).
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// `--modify-window` in nanoseconds (default 1 ns).
    pub modify_window: Nanos,
    pub checksum: bool,
    pub size_only: bool,
    pub ignore_size: bool,
    pub ignore_times: bool,
    pub ignore_existing: bool,
    pub update: bool,
    pub no_update_modtime: bool,
    pub refresh_times: bool,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            modify_window: 1,
            checksum: false,
            size_only: false,
            ignore_size: false,
            ignore_times: false,
            ignore_existing: false,
            update: false,
            no_update_modtime: false,
            refresh_times: false,
        }
    }
}

/// Everything a run needs besides the two remotes.
#[derive(Clone)]
pub struct SyncOptions {
    pub mode: Mode,
    /// Decide and report, change nothing on either side.
    pub dry_run: bool,
    pub filter: Arc<Filter>,
    /// Parallel file transfers (default 4).
    pub transfers: usize,
    /// Parallel directory listings and checks (default 8).
    pub checkers: usize,
    pub create_empty_src_dirs: bool,
    /// Move: remove source directories that the move emptied.
    pub delete_empty_src_dirs: bool,
    pub no_update_dir_modtime: bool,
    pub bwlimit: BwTimetable,
    pub compare: CompareOptions,
    /// `--max-delete`: the delete that would exceed this is a fatal error.
    pub max_delete: Option<u64>,
    /// Whole-run attempts while retryable errors remain (default 3).
    pub retries: u32,
    /// Wait between whole-run attempts.
    pub retries_sleep: Duration,
    pub cancel: CancelToken,
    pub observer: Arc<dyn Observer>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            mode: Mode::Sync,
            dry_run: false,
            filter: Arc::new(Filter::empty()),
            transfers: 4,
            checkers: 8,
            create_empty_src_dirs: false,
            delete_empty_src_dirs: false,
            no_update_dir_modtime: false,
            bwlimit: BwTimetable::unlimited(),
            compare: CompareOptions::default(),
            max_delete: None,
            retries: 3,
            retries_sleep: Duration::ZERO,
            cancel: CancelToken::new(),
            observer: Arc::new(LogObserver),
        }
    }
}

/// What a run did. Counts add up over all attempts.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    pub files_transferred: u64,
    pub bytes_transferred: u64,
    pub files_deleted: u64,
    pub dirs_deleted: u64,
    pub mod_times_updated: u64,
    pub checks: u64,
    /// Errors counted in the last attempt.
    pub errors: u64,
    pub attempts: u32,
    pub dry_run: bool,
    pub elapsed_secs: f64,
}

/// The result of a run: what it did, and the error that ended it, if any.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    pub error: Option<Error>,
}

impl Report {
    /// rclone-compatible exit code (sync-semantics.md §12).
    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, Error::exit_code)
    }

    pub fn into_result(self) -> crate::Result<Summary> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.summary),
        }
    }
}

/// Run `opts.mode` from `src` to `dst`, retrying the whole run while retryable errors
/// remain (rclone `--retries`).
pub fn run(src: &dyn Remote, dst: &dyn Remote, opts: &SyncOptions) -> Report {
    let started = Instant::now();
    let mut summary = Summary { dry_run: opts.dry_run, ..Summary::default() };
    let attempts = opts.retries.max(1);
    let mut last_error = None;
    for attempt in 1..=attempts {
        summary.attempts = attempt;
        let outcome = run::attempt(src, dst, opts, &mut summary);
        match outcome {
            Ok(()) => {
                last_error = None;
                break;
            }
            Err(e) => {
                let fatal = matches!(e.kind(), Kind::Fatal | Kind::Cancelled | Kind::Usage | Kind::DirNotFound);
                let msg = format!("Attempt {attempt}/{attempts} failed with {} errors and: {e}", summary.errors.max(1));
                opts.observer.log(log::Level::Error, &msg);
                let retry = !fatal && e.is_retryable() && attempt < attempts && !opts.cancel.is_cancelled();
                if fatal && e.kind() == Kind::Fatal {
                    opts.observer.log(log::Level::Error, "Fatal error received - not attempting retries");
                } else if !e.is_retryable() && attempt < attempts && !fatal {
                    opts.observer.log(log::Level::Error, "Can't retry any of the errors - not attempting retries");
                }
                last_error = Some(e);
                if !retry {
                    break;
                }
                std::thread::sleep(opts.retries_sleep);
            }
        }
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Report { summary, error: last_error }
}

/// State of one attempt, shared by its threads.
pub(crate) struct Run<'a> {
    pub src: &'a dyn Remote,
    pub dst: &'a dyn Remote,
    pub opts: &'a SyncOptions,
    pub window: Option<Nanos>,
    pub stats: stats::Stats,
    pub checksum_fallback_logged: AtomicBool,
    pub forced_upload_logged: AtomicBool,
}

impl Run<'_> {
    pub fn log(&self, level: log::Level, msg: &str) {
        self.opts.observer.log(level, msg);
    }
}
