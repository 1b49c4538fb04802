//! One attempt of a run: the per-directory march, the checkers, the transfer workers and
//! the final deletion phase.
//!
//! Threads: `checkers` workers take directories from a shared queue, list both sides,
//! merge and decide; transfers go through a bounded channel to `transfers` workers; a
//! ticker reports progress every second and follows the bandwidth timetable. Deletions
//! are collected and applied after every transfer has finished, and only if the attempt
//! counted no error.

use super::decide::{Decision, Paths};
use super::spill::SpillList;
use super::stats::{FileAction, FileEvent, InFlight, Stats};
use super::{Mode, Run, Summary, SyncOptions};
use crate::engine::bwlimit::RateLimiter;
use crate::error::{Error, Kind, Result};
use crate::path::{RelPath, match_key};
use crate::remote::hash::{Checksum, Hasher};
use crate::remote::layers::DryRun;
use crate::remote::{Entry, EntryKind, Md5, Nanos, PutInfo, Remote, RootState, Source};
use md5::Digest;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Transfers that fail with a retryable error are tried this many times in one attempt.
const TRANSFER_TRIES: u32 = 3;
/// Queue depth between checkers and transfer workers (rclone `--max-backlog` is 10000;
/// a smaller queue keeps memory flat and is enough to keep the workers busy).
const BACKLOG: usize = 1024;
/// Files to delete kept in memory before the list continues in a temporary file.
const DELETIONS_IN_MEMORY: usize = 10_000;

struct DirJob {
    path: RelPath,
    src_present: bool,
    dst_present: bool,
    src_mtime: Option<Nanos>,
    dst_mtime: Option<Nanos>,
    /// (device, inode) of the source directories from the root down to this one.
    ancestors: Arc<Vec<(u64, u64)>>,
}

struct TransferJob {
    /// Source path: differs from `path` only when the names matched after Unicode
    /// normalisation (each side keeps its own spelling).
    src_path: RelPath,
    path: RelPath,
    src: Entry,
    dst: Option<Entry>,
}

struct DirQueue {
    state: Mutex<(VecDeque<DirJob>, usize)>,
    cv: Condvar,
}

impl DirQueue {
    fn push(&self, job: DirJob) {
        if let Ok(mut st) = self.state.lock() {
            st.0.push_back(job);
        }
        self.cv.notify_one();
    }

    /// Next job, or `None` when the queue is empty and no worker can add more.
    fn pop(&self, cancelled: &dyn Fn() -> bool) -> Option<DirJob> {
        let mut st = self.state.lock().ok()?;
        loop {
            if cancelled() {
                st.0.clear();
            }
            if let Some(job) = st.0.pop_front() {
                st.1 += 1;
                return Some(job);
            }
            if st.1 == 0 {
                self.cv.notify_all();
                return None;
            }
            st = self.cv.wait_timeout(st, Duration::from_millis(200)).ok()?.0;
        }
    }

    fn done(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.1 -= 1;
        }
        self.cv.notify_all();
    }
}

struct Shared<'a> {
    run: Run<'a>,
    /// Destination files to delete after the transfers (spills to disk when large).
    deletions: Mutex<SpillList>,
    dst_only_dirs: Mutex<Vec<RelPath>>,
    src_dirs: Mutex<Vec<RelPath>>,
    dir_times: Mutex<Vec<(RelPath, Nanos)>>,
    limiter: RateLimiter,
    transfers_queued: AtomicU64,
    checking_done: AtomicBool,
}

impl<'a> Shared<'a> {
    fn opts(&self) -> &SyncOptions {
        self.run.opts
    }
    fn stats(&self) -> &Stats {
        &self.run.stats
    }
    fn event(&self, path: &RelPath, action: FileAction, size: i64) {
        self.opts().observer.file_event(&FileEvent { path: path.clone(), action, size });
    }
    /// Count and log a failure on `path`. The error names the side that failed: a remote's
    /// or the local filesystem's own path when it carries one, else the relative path;
    /// and what was being done. Its text is the log line, and the job's error when it is
    /// the last one.
    fn fail(&self, path: &RelPath, what: &str, err: Error) {
        // `with_path` keeps a path the error already names.
        let err = if path.is_root() { err } else { err.with_path(path.display().to_string()) };
        let err = err.doing(what);
        if !err.is_cancelled() {
            self.run.log(log::Level::Error, &err.to_string());
            self.event(path, FileAction::Failed, -1);
        }
        self.stats().count_error(err);
    }
    fn cancelled(&self) -> bool {
        self.opts().cancel.is_cancelled()
    }

    /// The rate that applies now: uploads use the tx limit, downloads the rx limit.
    fn current_rate(&self) -> Option<u64> {
        let pair = self.opts().bwlimit.limit_now();
        let up = !self.run.dst.features().is_local;
        let down = !self.run.src.features().is_local;
        match (up, down) {
            (true, true) => [pair.tx, pair.rx].into_iter().flatten().min(),
            (false, true) => pair.rx,
            _ => pair.tx,
        }
    }
}

fn overlaps(a: &str, b: &str) -> Option<String> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if long == short {
        return Some(String::new());
    }
    let rest = long.strip_prefix(short)?;
    if short.ends_with('/') { Some(rest.to_string()) } else { rest.strip_prefix('/').map(str::to_string) }
}

pub(super) fn attempt(src: &dyn Remote, dst: &dyn Remote, opts: &SyncOptions, summary: &mut Summary) -> Result<()> {
    let dry_src;
    let dry_dst;
    let (src, dst): (&dyn Remote, &dyn Remote) = if opts.dry_run {
        dry_src = DryRun::new(src);
        dry_dst = DryRun::new(dst);
        (&dry_src, &dry_dst)
    } else {
        (src, dst)
    };
    if dst.features().read_only {
        return Err(Error::usage(format!("{} is read-only", dst.describe())));
    }
    if opts.mode == Mode::Move && src.features().read_only {
        // Refused before anything is copied: every copied file's deletion would fail.
        return Err(Error::usage(format!(
            "{} is read-only: MOVE deletes each file it copies from the source; use COPY or SYNC",
            src.describe()
        )));
    }
    if let (Some(a), Some(b)) = (src.overlap_key(), dst.overlap_key())
        && let Some(rest) = overlaps(&a, &b)
    {
        // Allowed only when a filter excludes the nested tree (sync-semantics.md §2).
        let excluded = !rest.is_empty() && !opts.filter.include_dir(rest.as_bytes());
        if !excluded {
            return Err(Error::new(
                Kind::Fatal,
                "can't sync or move files on overlapping remotes (try excluding the destination with a filter rule)",
            ));
        }
    }
    match src.root_state()? {
        RootState::Dir => {}
        RootState::Missing => {
            return Err(Error::new(Kind::DirNotFound, "error reading source root directory: directory not found")
                .with_path(src.describe()));
        }
        RootState::File => {
            return Err(Error::usage("the source is a file, not a directory").with_path(src.describe()));
        }
    }
    let dst_present = match dst.root_state()? {
        RootState::Dir => true,
        RootState::Missing => false,
        RootState::File => {
            return Err(Error::usage("the destination is a file, not a directory").with_path(dst.describe()));
        }
    };

    let window = super::decide::modify_window(src, dst, opts);
    let shared = Shared {
        run: Run {
            src,
            dst,
            opts,
            window,
            stats: Stats::default(),
            checksum_fallback_logged: AtomicBool::new(false),
            forced_upload_logged: AtomicBool::new(false),
        },
        deletions: Mutex::new(SpillList::new(DELETIONS_IN_MEMORY)),
        dst_only_dirs: Mutex::new(Vec::new()),
        src_dirs: Mutex::new(Vec::new()),
        dir_times: Mutex::new(Vec::new()),
        limiter: RateLimiter::new(None),
        transfers_queued: AtomicU64::new(0),
        checking_done: AtomicBool::new(false),
    };
    shared.limiter.set_rate(shared.current_rate());
    if !dst_present && !opts.dry_run {
        dst.mkdir(&RelPath::root())?;
    }
    let started = Instant::now();
    let root_ancestors = Arc::new(src.dir_identity(&RelPath::root()).into_iter().collect::<Vec<_>>());
    let queue = DirQueue { state: Mutex::new((VecDeque::new(), 0)), cv: Condvar::new() };
    queue.push(DirJob {
        path: RelPath::root(),
        src_present: true,
        dst_present,
        src_mtime: None,
        dst_mtime: None,
        ancestors: root_ancestors,
    });

    let finished = (Mutex::new(false), Condvar::new());
    let (tx, rx) = mpsc::sync_channel::<TransferJob>(BACKLOG);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        let shared = &shared;
        let queue = &queue;
        let finished = &finished;
        s.spawn(move || ticker(shared, started, finished));
        let workers: Vec<_> = (0..opts.transfers.max(1))
            .map(|_| {
                let rx = &rx;
                s.spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if shared.cancelled() {
                            continue; // drain without working
                        }
                        transfer(shared, job);
                    }
                })
            })
            .collect();
        let checkers: Vec<_> = (0..opts.checkers.max(1))
            .map(|_| {
                let tx = tx.clone();
                s.spawn(move || {
                    while let Some(job) = queue.pop(&|| shared.cancelled()) {
                        process_dir(shared, queue, &tx, job);
                        queue.done();
                    }
                })
            })
            .collect();
        drop(tx);
        for c in checkers {
            let _ = c.join();
        }
        shared.checking_done.store(true, Relaxed);
        shared.stats().listing_done.store(true, Relaxed);
        for w in workers {
            let _ = w.join();
        }
        finish_phase(shared);
        if let Ok(mut f) = finished.0.lock() {
            *f = true;
        }
        finished.1.notify_all();
    });

    src.flush();
    dst.flush();
    let st = &shared.run.stats;
    // What crashed runs left, once this run got through without errors (an unfinished
    // upload of a file this run could not reach stays resumable; a dry run's layers
    // remove nothing).
    if st.errors() == 0 && !opts.cancel.is_cancelled() {
        for side in [src, dst] {
            if let Err(e) = side.remove_leftovers() {
                shared.run.log(log::Level::Warn, &format!("{}: could not remove leftovers: {e}", side.describe()));
            }
        }
    }
    summary.files_transferred += st.files_done.load(Relaxed);
    summary.bytes_transferred += st.bytes_done.load(Relaxed);
    summary.files_deleted += st.deletes.load(Relaxed);
    summary.dirs_deleted += st.dirs_deleted.load(Relaxed);
    summary.mod_times_updated += st.mod_times_updated.load(Relaxed);
    summary.checks += st.checks_done.load(Relaxed);
    summary.errors = st.errors();

    if opts.cancel.is_cancelled() {
        return Err(Error::cancelled());
    }
    if st.errors() > 0 {
        let last = st.last_error.lock().ok().and_then(|mut l| l.take());
        let retryable = st.retryable_errors.load(Relaxed) > 0;
        let fatal = st.fatal.load(Relaxed);
        let err = last.unwrap_or_else(|| Error::other("errors occurred"));
        let err = if fatal { err } else { err.with_retryable(retryable) };
        return Err(err);
    }
    Ok(())
}

/// Reports progress every second and follows the bandwidth timetable.
fn ticker(shared: &Shared<'_>, started: Instant, finished: &(Mutex<bool>, Condvar)) {
    let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut last_rate = shared.current_rate();
    loop {
        if let Ok(guard) = finished.0.lock()
            && !*guard
        {
            let _ = finished.1.wait_timeout(guard, Duration::from_secs(1));
        }
        let now = Instant::now();
        let bytes = shared.stats().bytes_done.load(Relaxed);
        samples.push_back((now, bytes));
        while samples.len() > 5 {
            samples.pop_front();
        }
        let speed = match (samples.front(), samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => (b.1.saturating_sub(a.1)) as f64 / (b.0 - a.0).as_secs_f64(),
            _ => 0.0,
        };
        shared.opts().observer.progress(&shared.stats().snapshot(started, speed));
        if finished.0.lock().map(|g| *g).unwrap_or(true) {
            return;
        }
        let rate = shared.current_rate();
        if rate != last_rate {
            shared.limiter.set_rate(rate);
            shared.run.log(log::Level::Info, &format!("Bandwidth limit changed to {}", rate_text(rate)));
            last_rate = rate;
        }
    }
}

fn rate_text(rate: Option<u64>) -> String {
    match rate {
        None => "off".into(),
        Some(r) => format!("{}/s", super::stats::human_bytes(r)),
    }
}

fn sorted(entries: Vec<Entry>, side: &str, dir: &RelPath, shared: &Shared<'_>) -> Vec<(Vec<u8>, Entry)> {
    let mut v: Vec<(Vec<u8>, Entry)> = entries.into_iter().map(|e| (match_key(&e.name, e.is_dir()), e)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|b, a| {
        let dup = a.0 == b.0;
        if dup {
            let what = if a.1.is_dir() { "directory" } else { "object" };
            let p = dir.join(&b.1.name).map(|p| p.display()).unwrap_or_default();
            shared.run.log(log::Level::Warn, &format!("{p}: Duplicate {what} found in {side} - ignoring"));
        }
        dup
    });
    v
}

fn process_dir(shared: &Shared<'_>, queue: &DirQueue, tx: &mpsc::SyncSender<TransferJob>, job: DirJob) {
    let run = &shared.run;
    let opts = shared.opts();
    let mut bad = |e: Error| shared.fail(&job.path, "listing", e);
    let src_list = if job.src_present {
        match run.src.list_dir(&job.path, &mut bad) {
            Ok(v) => v,
            Err(e) => {
                shared.fail(&job.path, "error reading source directory", e);
                return;
            }
        }
    } else {
        Vec::new()
    };
    let dst_list = if job.dst_present {
        match run.dst.list_dir(&job.path, &mut bad) {
            Ok(v) => v,
            Err(e) if e.kind() == Kind::DirNotFound => Vec::new(),
            Err(e) => {
                shared.fail(&job.path, "error reading destination directory", e);
                return;
            }
        }
    } else {
        Vec::new()
    };
    if job.src_present
        && !job.path.is_root()
        && opts.mode == Mode::Move
        && opts.delete_empty_src_dirs
        && let Ok(mut v) = shared.src_dirs.lock()
    {
        v.push(job.path.clone());
    }
    let include = |path: &RelPath, e: &Entry| {
        if e.is_dir() { opts.filter.include_dir(path.as_bytes()) } else { opts.filter.include_file(path.as_bytes()) }
    };
    let mut s = sorted(src_list, "source", &job.path, shared).into_iter().peekable();
    let mut d = sorted(dst_list, "destination", &job.path, shared).into_iter().peekable();
    let mut changed_here = false;
    loop {
        if shared.cancelled() {
            return;
        }
        let (se, de) = match (s.peek(), d.peek()) {
            (None, None) => break,
            (Some(_), None) => (s.next(), None),
            (None, Some(_)) => (None, d.next()),
            (Some(a), Some(b)) => match a.0.cmp(&b.0) {
                std::cmp::Ordering::Less => (s.next(), None),
                std::cmp::Ordering::Greater => (None, d.next()),
                std::cmp::Ordering::Equal => (s.next(), d.next()),
            },
        };
        let se = se.map(|x| x.1);
        let de = de.map(|x| x.1);
        // The destination keeps its own spelling of a name (sync-semantics.md §3.1).
        let name = de.as_ref().or(se.as_ref()).map(|e| e.name.clone()).unwrap_or_default();
        let path = match job.path.join(&name) {
            Ok(p) => p,
            Err(e) => {
                shared.fail(&job.path, "unusable name", e);
                continue;
            }
        };
        let src_path = match (&se, &de) {
            (Some(s), Some(d)) if s.name != d.name => match job.path.join(&s.name) {
                Ok(p) => p,
                Err(e) => {
                    shared.fail(&job.path, "unusable name", e);
                    continue;
                }
            },
            _ => path.clone(),
        };
        let probe = se.as_ref().or(de.as_ref());
        if let Some(p) = probe
            && !include(&path, p)
        {
            continue;
        }
        let paths = (path, src_path);
        changed_here |= handle_pair(shared, queue, tx, &job, paths, se, de);
    }
    // Directory modification times are set after all transfers (writing into a directory
    // changes its mtime), deepest first; only for directories that need it.
    if !job.path.is_root()
        && job.src_present
        && !opts.no_update_dir_modtime
        && run.dst.features().dir_mod_time
        && let (Some(src_t), Some(w)) = (job.src_mtime, run.window)
    {
        let differs = job.dst_mtime.is_none_or(|d| (d - src_t).abs() >= w);
        if (!job.dst_present || changed_here || differs)
            && let Ok(mut v) = shared.dir_times.lock()
        {
            v.push((job.path.clone(), src_t));
        }
    }
}

/// Handle one merged entry. Returns true if the destination directory changes because
/// of it.
fn handle_pair(
    shared: &Shared<'_>,
    queue: &DirQueue,
    tx: &mpsc::SyncSender<TransferJob>,
    job: &DirJob,
    (path, src_path): (RelPath, RelPath),
    se: Option<Entry>,
    de: Option<Entry>,
) -> bool {
    let run = &shared.run;
    let opts = shared.opts();
    match (se, de) {
        (Some(s), None) if s.kind == EntryKind::Dir => {
            let Some(ancestors) = descend_ancestors(shared, job, &path, &s) else {
                return false;
            };
            let mut changed = false;
            if opts.create_empty_src_dirs && run.dst.features().empty_dirs {
                changed = true;
                if opts.dry_run {
                    run.log(
                        log::Level::Info,
                        &format!("{}: Skipped make directory as --dry-run is set", path.display()),
                    );
                    shared.event(&path, FileAction::WouldMakeDir, 0);
                } else {
                    match run.dst.mkdir(&path) {
                        Ok(()) => shared.event(&path, FileAction::MadeDir, 0),
                        Err(e) => shared.fail(&path, "Failed to make directory", e),
                    }
                }
            }
            queue.push(DirJob {
                path,
                src_present: true,
                dst_present: false,
                src_mtime: s.mtime,
                dst_mtime: None,
                ancestors,
            });
            changed
        }
        (Some(s), None) => {
            queue_transfer(shared, tx, path, src_path, s, None);
            true
        }
        (None, Some(d)) => {
            if opts.mode != Mode::Sync {
                return false;
            }
            if d.kind == EntryKind::Dir {
                if run.dst.features().empty_dirs
                    && let Ok(mut v) = shared.dst_only_dirs.lock()
                {
                    v.push(path.clone());
                }
                queue.push(DirJob {
                    path,
                    src_present: false,
                    dst_present: true,
                    src_mtime: None,
                    dst_mtime: d.mtime,
                    ancestors: job.ancestors.clone(),
                });
            } else {
                let pushed = shared
                    .deletions
                    .lock()
                    .map_err(|_| Error::other("lock poisoned"))
                    .and_then(|mut v| v.push(path.clone(), d.size));
                if let Err(e) = pushed {
                    shared.fail(&path, "cannot remember a file to delete", e);
                }
            }
            true
        }
        (Some(s), Some(d)) if s.kind == EntryKind::Dir => {
            let Some(ancestors) = descend_ancestors(shared, job, &path, &s) else {
                return false;
            };
            queue.push(DirJob {
                path,
                src_present: true,
                dst_present: true,
                src_mtime: s.mtime,
                dst_mtime: d.mtime,
                ancestors,
            });
            false
        }
        (Some(s), Some(d)) => {
            run.stats.checks_total.fetch_add(1, Relaxed);
            let decision = run.decide(&Paths { src: &src_path, dst: &path }, &s, &d);
            run.stats.checks_done.fetch_add(1, Relaxed);
            match decision {
                Err(e) => {
                    shared.fail(&path, "Failed to check", e);
                    false
                }
                Ok(Decision::Transfer(why)) => {
                    run.log(log::Level::Debug, &format!("{}: {why}", path.display()));
                    queue_transfer(shared, tx, path, src_path, s, Some(d));
                    true
                }
                Ok(Decision::Skip(why)) => {
                    run.log(log::Level::Debug, &format!("{}: {why}; Unchanged skipping", path.display()));
                    shared.event(&path, FileAction::Unchanged, s.size);
                    if opts.mode == Mode::Move && !opts.compare.ignore_existing {
                        delete_source(shared, &src_path, &s);
                    }
                    false
                }
                Ok(Decision::SetModTime(t)) => {
                    if opts.dry_run {
                        run.log(
                            log::Level::Info,
                            &format!("{}: Skipped set modification time as --dry-run is set", path.display()),
                        );
                        shared.event(&path, FileAction::WouldUpdateModTime, s.size);
                        return false;
                    }
                    // The source's POSIX metadata goes along (an S3 copy replaces all of it).
                    let meta = if run.src.features().is_local {
                        crate::remote::PosixMeta {
                            mode: Some(s.extra.mode),
                            uid: Some(s.extra.uid),
                            gid: Some(s.extra.gid),
                        }
                    } else {
                        crate::remote::PosixMeta::default()
                    };
                    match run.apply_set_mod_time(&path, &d, t, meta) {
                        Ok(false) => {
                            run.stats.mod_times_updated.fetch_add(1, Relaxed);
                            run.log(
                                log::Level::Info,
                                &format!("{}: Updated modification time in destination", path.display()),
                            );
                            shared.event(&path, FileAction::UpdatedModTime, s.size);
                            if opts.mode == Mode::Move {
                                delete_source(shared, &src_path, &s);
                            }
                            false
                        }
                        Ok(true) => {
                            queue_transfer(shared, tx, path, src_path, s, Some(d));
                            true
                        }
                        Err(e) => {
                            shared.fail(&path, "Failed to set modification time", e);
                            false
                        }
                    }
                }
            }
        }
        (None, None) => false,
    }
}

/// The ancestor chain for descending into source directory `s`, or `None` (after
/// counting an error) when `s` is one of its own ancestors: a symlink loop.
fn descend_ancestors(shared: &Shared<'_>, job: &DirJob, path: &RelPath, s: &Entry) -> Option<Arc<Vec<(u64, u64)>>> {
    let id = (s.extra.dev, s.extra.ino);
    if id == (0, 0) {
        return Some(job.ancestors.clone());
    }
    if job.ancestors.contains(&id) {
        shared.fail(
            path,
            "not descending",
            Error::new(Kind::Io, "directory loop detected: a symlink points back to one of its parent directories"),
        );
        return None;
    }
    let mut v = Vec::with_capacity(job.ancestors.len() + 1);
    v.extend_from_slice(&job.ancestors);
    v.push(id);
    Some(Arc::new(v))
}

fn queue_transfer(
    shared: &Shared<'_>,
    tx: &mpsc::SyncSender<TransferJob>,
    path: RelPath,
    src_path: RelPath,
    src: Entry,
    dst: Option<Entry>,
) {
    let stats = shared.stats();
    let size = src.size.max(0) as u64;
    if shared.opts().dry_run {
        shared.run.log(
            log::Level::Info,
            &format!("{}: Skipped copy as --dry-run is set (size {})", path.display(), src.size),
        );
        shared.event(&path, FileAction::WouldCopy, src.size);
        stats.files_total.fetch_add(1, Relaxed);
        stats.files_done.fetch_add(1, Relaxed);
        stats.bytes_total.fetch_add(size, Relaxed);
        stats.bytes_done.fetch_add(size, Relaxed);
        if shared.opts().mode == Mode::Move {
            delete_source(shared, &src_path, &src);
        }
        return;
    }
    stats.files_total.fetch_add(1, Relaxed);
    stats.bytes_total.fetch_add(size, Relaxed);
    shared.transfers_queued.fetch_add(1, Relaxed);
    let _ = tx.send(TransferJob { path, src_path, src, dst });
}

fn delete_source(shared: &Shared<'_>, path: &RelPath, src: &Entry) {
    if shared.opts().dry_run {
        shared.run.log(log::Level::Info, &format!("{}: Skipped delete as --dry-run is set", path.display()));
        return;
    }
    match shared.run.src.delete(path, src) {
        Ok(()) => shared.event(path, FileAction::DeletedSource, src.size),
        Err(e) => shared.fail(path, "Failed to delete source after move", e),
    }
}

fn transfer(shared: &Shared<'_>, job: TransferJob) {
    let stats = shared.stats();
    let inflight =
        Arc::new(InFlight { name: job.path.display(), size: job.src.size.max(0) as u64, done: AtomicU64::new(0) });
    if let Ok(mut v) = stats.transferring.lock() {
        v.push(inflight.clone());
    }
    let mut tries = 0;
    let result = loop {
        tries += 1;
        let r = copy_one(shared, &job, &inflight);
        match r {
            Err(e) if e.is_retryable() && tries < TRANSFER_TRIES && !shared.cancelled() => {
                shared.run.log(log::Level::Debug, &format!("{}: retrying after: {e}", job.path.display()));
                // Take back what the failed try counted.
                let counted = inflight.done.swap(0, Relaxed);
                stats.bytes_done.fetch_sub(counted.min(stats.bytes_done.load(Relaxed)), Relaxed);
                std::thread::sleep(Duration::from_millis(100 * u64::from(tries)));
            }
            other => break other,
        }
    };
    if let Ok(mut v) = stats.transferring.lock() {
        v.retain(|t| !Arc::ptr_eq(t, &inflight));
    }
    match result {
        Ok(_) => {
            stats.files_done.fetch_add(1, Relaxed);
            let (action, text) = if job.dst.is_some() {
                (FileAction::CopiedReplaced, "Copied (replaced existing)")
            } else {
                (FileAction::CopiedNew, "Copied (new)")
            };
            shared.run.log(log::Level::Info, &format!("{}: {text}", job.path.display()));
            shared.event(&job.path, action, job.src.size);
            if shared.opts().mode == Mode::Move {
                delete_source(shared, &job.src_path, &job.src);
            }
        }
        Err(e) => shared.fail(&job.path, "Failed to copy", e),
    }
}

fn copy_one(shared: &Shared<'_>, job: &TransferJob, inflight: &Arc<InFlight>) -> Result<Entry> {
    let run = &shared.run;
    let (sf, df) = (run.src.features(), run.dst.features());
    let common_hash = sf.md5() && df.md5();
    let expected = if common_hash { run.src.cached_md5(&job.src_path, &job.src) } else { None };
    let source = EngineSource {
        shared,
        path: &job.src_path,
        entry: &job.src,
        expected,
        hash: common_hash,
        computed: Mutex::new(None),
        announced: Mutex::new(None),
        checksum: Mutex::new(None),
        verified: AtomicBool::new(false),
        mtime: Mutex::new(job.src.mtime),
        meta: Mutex::new(crate::remote::PosixMeta::default()),
        inflight: inflight.clone(),
    };
    // A destination that needs the time before the data (object metadata) gets it now;
    // a local destination sets it after writing, when a GET may already have revealed it.
    let mtime = match job.src.mtime {
        Some(t) => Some(t),
        None if !df.is_local => Some(run.src.mod_time(&job.src_path, &job.src)?),
        None => None,
    };
    let info = PutInfo {
        size: job.src.size.max(0) as u64,
        mtime,
        md5: expected,
        mode: sf.is_local.then_some(job.src.extra.mode),
        uid: sf.is_local.then_some(job.src.extra.uid),
        gid: sf.is_local.then_some(job.src.extra.gid),
    };
    let new = run.dst.put(&job.path, &source, &info)?;
    // What the source's bytes hash to: computed while streaming them, else what the
    // source announced (its listing, index or GET answer).
    let src_md5 = source.computed.lock().ok().and_then(|c| *c).or_else(|| source.announced_md5());
    let corrupted = if new.size >= 0 && job.src.size >= 0 && new.size != job.src.size {
        Some(format!("corrupted on transfer: sizes differ src({}) vs dst({})", job.src.size, new.size))
    } else {
        match (src_md5, new.md5) {
            (Some(a), Some(b)) if a != b => Some(format!(
                "corrupted on transfer: md5 hashes differ src({}) vs dst({})",
                hex::encode(a),
                hex::encode(b)
            )),
            (Some(_), Some(_)) => {
                source.verified.store(true, Relaxed);
                None
            }
            _ => None,
        }
    };
    if let Some(msg) = corrupted {
        if let Err(e) = run.dst.delete(&job.path, &new) {
            run.log(log::Level::Error, &format!("{}: failed to remove corrupted copy: {e}", job.path.display()));
        }
        return Err(Error::new(Kind::Corrupted, msg).with_retryable(true));
    }
    if let Some(md5) = *source.computed.lock().map_err(|_| Error::other("lock poisoned"))? {
        if sf.md5_is_slow {
            run.src.remember_md5(&job.src_path, &job.src, md5);
        }
        // Every destination learns the digest: a local one saves re-reading the file, an
        // object store one can validate its metadata record with it.
        run.dst.remember_md5(&job.path, &new, md5);
    }
    if !source.verified.load(Relaxed) {
        run.log(
            log::Level::Info,
            &format!("{}: verified by size only: neither side could tell a hash of this file", job.path.display()),
        );
    }
    Ok(new)
}

/// The engine's view of a source file: every reader it opens counts bytes, obeys the
/// bandwidth limit and cancellation, and (when the two sides share a hash) computes the
/// MD5 of a full read and checks it against the digest the source announced.
struct EngineSource<'s, 'a> {
    shared: &'s Shared<'a>,
    path: &'s RelPath,
    entry: &'s Entry,
    /// The digest known before reading (listing or index).
    expected: Option<Md5>,
    /// Hash full reads even when nothing announces a digest (the destination can use it).
    hash: bool,
    computed: Mutex<Option<Md5>>,
    /// The digest a reader's open announced (an S3 GET's ETag or `Md5chksum`).
    announced: Mutex<Option<Md5>>,
    /// A digest of another kind a reader's open announced (S3 `x-amz-checksum-*`), when
    /// nothing told an MD5.
    checksum: Mutex<Option<Checksum>>,
    /// A full read matched an announced digest, or the destination's digest matched.
    verified: AtomicBool,
    mtime: Mutex<Option<Nanos>>,
    meta: Mutex<crate::remote::PosixMeta>,
    inflight: Arc<InFlight>,
}

impl Source for EngineSource<'_, '_> {
    fn size(&self) -> u64 {
        self.entry.size.max(0) as u64
    }

    fn mtime(&self) -> Result<Nanos> {
        if let Some(t) = self.mtime.lock().ok().and_then(|m| *m) {
            return Ok(t);
        }
        self.shared.run.src.mod_time(self.path, self.entry)
    }

    fn posix_meta(&self) -> crate::remote::PosixMeta {
        self.meta.lock().map(|m| *m).unwrap_or_default()
    }

    fn fingerprint(&self) -> Option<String> {
        // A local file: its stamp (inode and change time too). An object: its ETag, else
        // the server's own time of its last write.
        let e = self.entry;
        if e.extra.ino != 0 {
            return Some(format!("file:{}:{}:{}:{}", e.size, e.mtime?, e.extra.ino, e.extra.ctime));
        }
        match (e.extra.etag.as_deref().filter(|t| !t.is_empty()), e.extra.server_time) {
            (Some(etag), _) => Some(format!("etag:{}:{etag}", e.size)),
            (None, Some(t)) => Some(format!("time:{}:{t}", e.size)),
            (None, None) => None,
        }
    }

    fn announced_md5(&self) -> Option<Md5> {
        self.expected.or_else(|| self.announced.lock().ok().and_then(|a| *a))
    }

    fn announced_checksum(&self) -> Option<Checksum> {
        self.checksum.lock().ok().and_then(|c| c.clone())
    }

    fn mark_verified(&self) {
        self.verified.store(true, Relaxed);
    }

    fn content_md5(&self) -> Result<Md5> {
        if let Some(md5) = self.announced_md5() {
            return Ok(md5);
        }
        // The source remote's own way (a local file hashed once and kept in the index),
        // not counted as transferred bytes.
        let md5 = match self.shared.run.src.md5(self.path, self.entry)? {
            Some(md5) => md5,
            None => crate::remote::hash::md5_of(&mut self.open_for_hash(0, self.size())?)?,
        };
        // The source's digest from now on: what the destination stored is checked against it.
        if let Ok(mut a) = self.announced.lock() {
            a.get_or_insert(md5);
        }
        Ok(md5)
    }

    fn open_for_hash(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.shared.opts().cancel.check()?;
        let want = len.min(self.size().saturating_sub(offset));
        Ok(self.shared.run.src.open(self.path, self.entry, offset, want)?.reader)
    }

    fn open_at(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        self.shared.opts().cancel.check()?;
        let size = self.size();
        let want = len.min(size.saturating_sub(offset));
        let opened = self.shared.run.src.open(self.path, self.entry, offset, want)?;
        if let Some(md5) = opened.md5
            && let Ok(mut a) = self.announced.lock()
        {
            a.get_or_insert(md5);
        }
        if let Some(c) = opened.checksum
            && let Ok(mut a) = self.checksum.lock()
        {
            a.get_or_insert(c);
        }
        if let Some(t) = opened.mtime
            && let Ok(mut m) = self.mtime.lock()
        {
            m.get_or_insert(t);
        }
        if !opened.meta.is_empty()
            && let Ok(mut m) = self.meta.lock()
        {
            *m = opened.meta;
        }
        let full = offset == 0 && want == size;
        // A digest of another kind is checked only where no MD5 is.
        let other = (full && self.announced_md5().is_none()).then(|| self.announced_checksum()).flatten();
        Ok(Box::new(MeterReader {
            src: self,
            inner: opened.reader,
            other: other.map(|c| (Hasher::new(c.kind), c)),
            hasher: (full && (self.hash || self.announced_md5().is_some())).then(md5::Md5::new),
            digest: None,
            pos: 0,
            want,
            finished: false,
        }))
    }
}

struct MeterReader<'r, 's, 'a> {
    src: &'r EngineSource<'s, 'a>,
    inner: Box<dyn Read + Send>,
    /// The hasher for a non-MD5 digest the source announced, and that digest.
    other: Option<(Hasher, Checksum)>,
    hasher: Option<md5::Md5>,
    digest: Option<Md5>,
    pos: u64,
    want: u64,
    finished: bool,
}

impl MeterReader<'_, '_, '_> {
    fn at_eof(&mut self) -> io::Result<usize> {
        self.finished = true;
        if self.pos != self.want {
            return Err(Error::new(
                Kind::Corrupted,
                format!("source ended early: got {} of {} bytes", self.pos, self.want),
            )
            .with_retryable(true)
            .into());
        }
        if let Some((hasher, want)) = self.other.take() {
            let got = hasher.finish();
            if got != want {
                return Err(Error::new(
                    Kind::Corrupted,
                    format!(
                        "{} differs from the source's ({got} vs {want}): the data was corrupted in transit",
                        want.kind.name()
                    ),
                )
                .with_retryable(true)
                .into());
            }
            self.src.verified.store(true, Relaxed);
        }
        if let (Some(got), Some(exp)) = (self.digest, self.src.announced_md5()) {
            if got == exp {
                self.src.verified.store(true, Relaxed);
                return Ok(0);
            }
            return Err(Error::new(
                Kind::Corrupted,
                format!(
                    "md5 hash differs from the source's ({} vs {}): the data changed or was corrupted in transit",
                    hex::encode(got),
                    hex::encode(exp)
                ),
            )
            .with_retryable(true)
            .into());
        }
        Ok(0)
    }
}

impl Read for MeterReader<'_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.finished {
            return Ok(0);
        }
        let shared = self.src.shared;
        if shared.cancelled() {
            return Err(Error::cancelled().into());
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return self.at_eof();
        }
        if self.pos + n as u64 > self.want {
            return Err(Error::new(Kind::Corrupted, "source delivered more data than its size").into());
        }
        self.pos += n as u64;
        if let Some((h, _)) = self.other.as_mut() {
            h.update(&buf[..n]);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
            if self.pos == self.want {
                let d: Md5 = self.hasher.take().map(|h| h.finalize().into()).unwrap_or_default();
                self.digest = Some(d);
                if let Ok(mut c) = self.src.computed.lock() {
                    *c = Some(d);
                }
            }
        }
        shared.stats().bytes_done.fetch_add(n as u64, Relaxed);
        self.src.inflight.done.fetch_add(n as u64, Relaxed);
        if !shared.limiter.acquire(n, &|| shared.cancelled()) {
            return Err(Error::cancelled().into());
        }
        Ok(n)
    }
}

/// After all transfers: deletions (only without errors), emptied source directories for
/// move, directory modification times.
fn finish_phase(shared: &Shared<'_>) {
    let run = &shared.run;
    let opts = shared.opts();
    let stats = shared.stats();
    if shared.cancelled() {
        return;
    }
    let deletions = shared
        .deletions
        .lock()
        .map(|mut v| std::mem::replace(&mut *v, SpillList::new(1)))
        .unwrap_or_else(|_| SpillList::new(1));
    let mut dirs = shared.dst_only_dirs.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
    if opts.mode == Mode::Sync && (!deletions.is_empty() || !dirs.is_empty()) {
        if stats.errors() > 0 {
            run.log(log::Level::Error, "not deleting files as there were IO errors");
            run.log(log::Level::Error, "not deleting directories as there were IO errors");
        } else {
            delete_files(shared, deletions);
            if stats.errors() == 0 {
                dirs.sort_by_key(|d| std::cmp::Reverse(d.depth()));
                for d in dirs {
                    if opts.dry_run {
                        run.log(
                            log::Level::Info,
                            &format!("{}: Skipped remove directory as --dry-run is set", d.display()),
                        );
                        continue;
                    }
                    match run.dst.rmdir(&d) {
                        Ok(()) => {
                            stats.dirs_deleted.fetch_add(1, Relaxed);
                            run.log(log::Level::Info, &format!("{}: Removing directory", d.display()));
                            shared.event(&d, FileAction::RemovedDir, 0);
                        }
                        Err(e) => run.log(log::Level::Debug, &format!("{}: not removing directory: {e}", d.display())),
                    }
                }
            }
        }
    }
    if opts.mode == Mode::Move && opts.delete_empty_src_dirs && !opts.dry_run {
        let mut v = shared.src_dirs.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        v.sort_by_key(|d| std::cmp::Reverse(d.depth()));
        for d in v {
            if run.src.rmdir(&d).is_ok() {
                run.log(log::Level::Info, &format!("{}: Removing empty source directory", d.display()));
            }
        }
    }
    if !opts.dry_run {
        let mut times = shared.dir_times.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        times.sort_by_key(|(d, _)| std::cmp::Reverse(d.depth()));
        for (d, t) in times {
            match run.dst.set_dir_mod_time(&d, t) {
                Ok(()) => shared.event(&d, FileAction::SetDirModTime, 0),
                Err(e) => run.log(
                    log::Level::Debug,
                    &format!("{}: could not set directory modification time: {e}", d.display()),
                ),
            }
        }
    }
    if stats.files_done.load(Relaxed) == 0 && stats.deletes.load(Relaxed) == 0 && stats.errors() == 0 {
        run.log(log::Level::Info, "There was nothing to transfer");
    }
}

fn delete_files(shared: &Shared<'_>, deletions: SpillList) {
    let drained = deletions.drain(1000, |batch| {
        let chunk: Vec<(RelPath, Entry)> = batch
            .into_iter()
            .map(|(p, size)| {
                let e = Entry::file(p.file_name(), size, None);
                (p, e)
            })
            .collect();
        delete_chunk(shared, &chunk)
    });
    if let Err(e) = drained {
        shared.fail(&RelPath::root(), "reading the list of files to delete", e);
    }
}

/// Delete one chunk; false stops the deletions.
fn delete_chunk(shared: &Shared<'_>, chunk: &[(RelPath, Entry)]) -> bool {
    let run = &shared.run;
    let opts = shared.opts();
    let stats = shared.stats();
    {
        if shared.cancelled() {
            return false;
        }
        let mut allowed = chunk.len();
        if let Some(max) = opts.max_delete {
            let done = stats.deletes.load(Relaxed);
            allowed = allowed.min(max.saturating_sub(done) as usize);
        }
        let (now, over) = chunk.split_at(allowed);
        if opts.dry_run {
            for (p, e) in now {
                run.log(log::Level::Info, &format!("{}: Skipped delete as --dry-run is set", p.display()));
                shared.event(p, FileAction::WouldDelete, e.size);
                stats.deletes.fetch_add(1, Relaxed);
            }
        } else {
            run.dst.delete_many(now, &mut |p, r| match r {
                Ok(()) => {
                    stats.deletes.fetch_add(1, Relaxed);
                    run.log(log::Level::Info, &format!("{}: Deleted", p.display()));
                    shared.event(p, FileAction::Deleted, -1);
                }
                Err(e) => shared.fail(p, "Failed to delete", e),
            });
        }
        if let Some((p, _)) = over.first() {
            shared.fail(p, "Got fatal error on delete", Error::new(Kind::Fatal, "--max-delete threshold reached"));
            return false;
        }
    }
    true
}
