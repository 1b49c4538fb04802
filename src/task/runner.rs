//! The job runner: the one function that the CLI, the C API and the daemon call to run a
//! task (truenas-cloudsync.md §7.2), so that queues, locks, abort, progress and logs behave
//! the same whoever starts a job.
//!
//! Steps: queue (one running + one waiting per task id) → path locks → local path checks
//! → remote pre-flight (PULL: the folder exists and is a directory) → pre-script (not in a
//! dry run) → [snapshot: the ZFS layer] → the engine → post-script after a successful
//! transfer (not in a dry run) → state persisted into the task. An abort request from any
//! process cancels the engine and terminates a running script.

use super::joblog::{self, JobLog};
use super::model::PathPolicy;
use super::queue::{self, ABORTED, Enqueued, FAILED, LockKind, SUCCESS};
use super::{providers, script};
use crate::crypt::remote::CryptRemote;
use crate::crypt::{Keys, NameCipher, NameEncoding, NameMode};
use crate::engine::{
    self, BwTimetable, CancelToken, CompareOptions, FileEvent, Filter, Mode, Observer, Progress, SyncOptions,
};
use crate::error::{Error, Kind, Result};
use crate::index::Index;
use crate::remote::kit::http::HttpConfig;
use crate::remote::local::{LocalOptions, LocalRemote};
use crate::remote::registry::{self, BuildRequest};
use crate::remote::{Remote, RemoteRef, RootState};
use crate::store::{Store, Task};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where a runner keeps its files and what it uses.
#[derive(Clone)]
pub struct RunnerConfig {
    /// Job logs go to `<log_dir>/<job id>.log` (directory mode 0700).
    pub log_dir: PathBuf,
    pub index: Option<Arc<Index>>,
    pub policy: PathPolicy,
}

impl RunnerConfig {
    /// The layout the CLI, the C API and the daemon share: logs in `<dir>/jobs` (unless
    /// `log_dir`), the metadata index in `<dir>/index.db`, where `dir` holds the database.
    /// An index that cannot be opened is left out (runs then hash and HEAD again).
    pub fn beside(db: &Path, log_dir: Option<PathBuf>, policy: PathPolicy) -> RunnerConfig {
        let dir = db.parent().map(Path::to_path_buf).unwrap_or_default();
        let index = match Index::open(&dir.join("index.db")) {
            Ok(i) => Some(Arc::new(i)),
            Err(e) => {
                log::warn!("metadata index unavailable, runs will re-hash: {e}");
                None
            }
        };
        RunnerConfig { log_dir: log_dir.unwrap_or_else(|| dir.join("jobs")), index, policy }
    }
}

/// Receives a job's progress and log lines while it runs (the CLI's progress bar, the C
/// API's callbacks). Called from worker threads.
pub trait JobObserver: Send + Sync {
    /// About once a second while the engine runs: the job's percentage (the minimum seen
    /// so far, as TrueNAS reports it), its one-line description and the full counters.
    fn progress(&self, _job_id: i64, _percent: u32, _description: &str, _progress: &Progress) {}
    /// Every line written to the job log (locks, scripts, engine messages), as written.
    fn log(&self, _job_id: i64, _line: &str) {}
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct JobOutcome {
    pub job_id: i64,
    /// `SUCCESS`, `FAILED` or `ABORTED`; `WAITING` when the task already had a queued
    /// job and that job was returned instead of a new one.
    pub state: String,
    pub error: Option<String>,
    pub logs_excerpt: Option<String>,
    /// For a FAILED job: what the error's sentence names, as fields.
    pub error_details: Option<ErrorDetails>,
}

impl JobOutcome {
    /// The process exit code of a command that ran this job: rclone's for the error
    /// (sync-semantics.md §12), 0 for SUCCESS and a job already queued.
    pub fn exit_code(&self) -> i32 {
        exit_code(&self.state, self.error_details.as_ref())
    }
}

/// The exit code for a job that ended in `state` with `details` (see
/// [`JobOutcome::exit_code`]; also for job records read back from the store).
pub fn exit_code(state: &str, details: Option<&ErrorDetails>) -> i32 {
    match state {
        queue::SUCCESS | queue::WAITING => 0,
        queue::ABORTED => 1,
        _ => details.map_or(1, |d| d.exit_code),
    }
}

/// A failed job's error as fields, for programs (the job record's `error_details`, the C
/// error object, Python's exception): the rclone exit code, the error's kind and the
/// context its sentence names. Never secrets: built from the error's context only.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ErrorDetails {
    /// `network`, `server`, `permission`, `dir_not_found`, ... (the error's kind).
    pub kind: String,
    pub exit_code: i32,
    pub retryable: bool,
    pub http_status: Option<u16>,
    /// The TrueNAS provider type of the remote that failed (`S3`, `SFTP`).
    pub provider: Option<String>,
    pub remote: Option<String>,
    pub path: Option<String>,
}

impl ErrorDetails {
    pub fn of(e: &Error) -> ErrorDetails {
        ErrorDetails {
            kind: e.kind().name().to_string(),
            exit_code: e.exit_code(),
            retryable: e.is_retryable(),
            http_status: e.http_status(),
            provider: e.provider().map(str::to_string),
            remote: e.remote().map(str::to_string),
            path: e.path().map(str::to_string),
        }
    }
}

/// `verify_task`'s remote checks (§3.4) for a validated task body, with the verify
/// timeouts (15 s connect, 30 s I/O): the location can be listed (the bucket exists and
/// the credential may read it); PULL: the folder exists and is a directory (V20, V21);
/// encrypted: the names there decrypt with the task's password and salt. Returns the
/// problems as (field, message); provider errors are returned as errors.
pub fn verify_location(credential: &Map<String, Value>, body: &Map<String, Value>) -> Result<Vec<(String, String)>> {
    let attributes = body.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default();
    let inner = registry::build(&BuildRequest::verify(credential, &attributes))?;
    let remote = with_crypt(inner, body)?;
    let mut problems = Vec::new();
    let pull = body.get("direction").and_then(Value::as_str) == Some("PULL");
    match remote.root_state()? {
        RootState::Dir => {
            if body.get("encryption").and_then(Value::as_bool).unwrap_or(false) {
                match remote.list_dir(&crate::path::RelPath::root(), &mut |_| {}) {
                    Ok(_) => {}
                    Err(e) if e.kind() == Kind::Corrupted => {
                        problems.push(("encryption_password".to_string(), e.message().to_string()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        RootState::Missing if pull => {
            problems.push(("attributes.folder".to_string(), "Directory does not exist".to_string()));
        }
        RootState::Missing => {}
        RootState::File => problems.push(("attributes.folder".to_string(), "This is not a directory".to_string())),
    }
    Ok(problems)
}

/// Build the remote for a stored credential and the task's attributes (job timeouts;
/// aborted jobs keep their unfinished uploads for the next run to resume).
pub fn build_remote(
    credential: &Map<String, Value>,
    attributes: &Map<String, Value>,
    index: Option<Arc<Index>>,
) -> Result<RemoteRef> {
    build_remote_pinned(credential, attributes, index, None)
}

/// [`build_remote`] for a stored credential that keeps its server's host key.
pub fn build_remote_pinned(
    credential: &Map<String, Value>,
    attributes: &Map<String, Value>,
    index: Option<Arc<Index>>,
    host_keys: Option<&dyn registry::HostKeys>,
) -> Result<RemoteRef> {
    registry::build(&BuildRequest {
        credential,
        attributes,
        index,
        http: HttpConfig::JOB,
        keep_cancelled_uploads: true,
        host_keys,
    })
}

/// Verify a credential (§4.3): list what the account can see (its buckets, or the root
/// of a provider without buckets) with the verify timeouts.
pub fn verify_credential(credential: &Map<String, Value>) -> Result<()> {
    registry::verify(credential)
}

/// The buckets of a credential's account: (name, creation date).
pub fn list_buckets(credential: &Map<String, Value>) -> Result<Vec<(String, String)>> {
    registry::list_buckets(credential)
}

/// Create a bucket in a credential's account (Storj only, as TrueNAS).
pub fn create_bucket(credential: &Map<String, Value>, name: &str) -> Result<()> {
    registry::create_bucket(credential, name)
}

/// Wrap `inner` in rclone crypt when the task encrypts.
pub fn with_crypt(inner: RemoteRef, body: &Map<String, Value>) -> Result<RemoteRef> {
    if !body.get("encryption").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(inner);
    }
    let pw = body.get("encryption_password").and_then(Value::as_str).unwrap_or("");
    let salt = body.get("encryption_salt").and_then(Value::as_str).unwrap_or("");
    let keys = Keys::derive(pw, salt).map_err(|e| Error::usage(format!("encryption: {e}")))?;
    let mode = if body.get("filename_encryption").and_then(Value::as_bool).unwrap_or(false) {
        NameMode::Standard
    } else {
        NameMode::Off
    };
    let names = NameCipher::new(&keys, mode, NameEncoding::Base32, true);
    Ok(Arc::new(CryptRemote::new(inner, keys, names)))
}

/// Engine options from the task's `args` (only recognised options pass validation).
fn apply_args(args: &str, opts: &mut SyncOptions) -> Result<()> {
    let tokens = script::shell_words(args)?;
    let mut it = tokens.iter().peekable();
    while let Some(t) = it.next() {
        let (name, inline) = match t.split_once('=') {
            Some((n, v)) if t.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (t.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned()).unwrap_or_default();
        let c: &mut CompareOptions = &mut opts.compare;
        match name.as_str() {
            "--checksum" | "-c" => c.checksum = true,
            "--size-only" => c.size_only = true,
            "--ignore-size" => c.ignore_size = true,
            "--ignore-times" | "-I" => c.ignore_times = true,
            "--ignore-existing" => c.ignore_existing = true,
            "--update" | "-u" => c.update = true,
            "--no-update-modtime" => c.no_update_modtime = true,
            "--refresh-times" => c.refresh_times = true,
            "--checkers" => opts.checkers = value().parse().map_err(|_| Error::usage("--checkers needs a number"))?,
            "--retries" => opts.retries = value().parse().map_err(|_| Error::usage("--retries needs a number"))?,
            "--max-delete" => {
                opts.max_delete = Some(value().parse().map_err(|_| Error::usage("--max-delete needs a number"))?)
            }
            "--delete-empty-src-dirs" => opts.delete_empty_src_dirs = true,
            "--no-update-dir-modtime" => opts.no_update_dir_modtime = true,
            _ => {
                // Accepted for compatibility; the engine's behaviour is already what they ask
                // for (delete modes, buffers, timeouts) or they are not implemented yet.
                let takes_value = !matches!(
                    name.as_str(),
                    "--check-first"
                        | "--no-traverse"
                        | "--use-server-modtime"
                        | "--immutable"
                        | "--delete-after"
                        | "--delete-during"
                        | "--delete-before"
                        | "--delete-excluded"
                        | "--ignore-case"
                        | "--track-renames"
                        | "--b2-hard-delete"
                );
                if takes_value && inline.is_none() {
                    it.next();
                }
                log::info!("args: {name} is accepted but has no effect in this version");
            }
        }
    }
    Ok(())
}

/// Feeds the engine's log lines and progress into the job log, the job record and the
/// caller's observer.
struct JobSink {
    job_id: i64,
    log: Arc<JobLog>,
    outer: Option<Arc<dyn JobObserver>>,
    /// The latest progress, written to the job record by the watcher thread.
    latest: Arc<std::sync::Mutex<Option<(u32, String)>>>,
    max_percent: std::sync::atomic::AtomicU32,
}

impl Observer for JobSink {
    fn log(&self, level: log::Level, message: &str) {
        if level <= log::Level::Info {
            self.log.line(level, message);
        }
    }
    fn file_event(&self, _event: &FileEvent) {}
    fn progress(&self, p: &Progress) {
        self.log.stats(p);
        // Never backwards: totals grow while the listing runs, the job's percentage does not
        // drop with them.
        let pct = self.max_percent.fetch_max(p.percent(), std::sync::atomic::Ordering::Relaxed).max(p.percent());
        let desc = p.description();
        if let Some(o) = &self.outer {
            o.progress(self.job_id, pct, &desc, p);
        }
        if let Ok(mut l) = self.latest.lock() {
            *l = Some((pct, desc));
        }
    }
}

/// The local path checks of job start (§7.2 step 5), before anything is touched: a path
/// on a locked (or unmounted) dataset fails with `Dataset is locked`; the path exists and
/// is a directory on a dataset below the pool root. Returns its ZFS location, if on ZFS.
fn check_local_path(path: &str, policy: &PathPolicy, zfs: &crate::zfs::Zfs) -> Result<Option<crate::zfs::Location>> {
    let quoted = format!("'{}'", path.replace('\'', "\\'"));
    let location = crate::zfs::locate(zfs, Path::new(path))?;
    let md = std::fs::metadata(path)
        .map_err(|_| Error::new(Kind::DirNotFound, format!("Directory {quoted} does not exist")))?;
    if !md.is_dir() {
        return Err(Error::usage(format!("{quoted} is not a directory")));
    }
    if location.is_some() {
        return Ok(location);
    }
    use std::os::unix::fs::MetadataExt;
    let root = policy.require_dataset.then(|| std::fs::metadata(&policy.pool_root).ok()).flatten();
    if root.is_some_and(|r| r.dev() == md.dev()) {
        return Err(Error::usage(format!("Directory {quoted} must reside within volume mount point")));
    }
    Ok(None)
}

/// Destroy the snapshots and clones that crashed jobs left behind (§7.5): every
/// `cloud_sync-<task>-<time>` whose task has no live job, and `cloud_sync-onetime-*`
/// when no one-time job is live. The daemon calls this at start. Returns what it destroyed.
pub fn cleanup_stale_snapshots(store: &Store) -> Result<Vec<String>> {
    let live: Vec<Option<i64>> = queue::list_jobs(store, None, 10_000)?
        .into_iter()
        .filter(|j| matches!(j["state"].as_str(), Some("WAITING" | "RUNNING")))
        .map(|j| j["task_id"].as_i64())
        .collect();
    let is_live = |tag: &str| match tag {
        "onetime" => live.contains(&None),
        t => t.parse::<i64>().is_ok_and(|id| live.contains(&Some(id))),
    };
    let zfs = crate::zfs::Zfs::default();
    let destroyed = crate::zfs::cleanup_stale(&zfs, &is_live)?;
    for d in &destroyed {
        log::warn!("destroyed {d}, left behind by a job that is gone");
    }
    Ok(destroyed)
}

/// PULL pre-flight (V20, V21): the remote folder exists and is a directory.
fn preflight_pull(remote: &dyn Remote) -> Result<()> {
    match remote.root_state()? {
        RootState::Dir => Ok(()),
        RootState::Missing => {
            Err(Error::new(Kind::DirNotFound, "Directory does not exist").with_remote(remote.describe()))
        }
        RootState::File => Err(Error::usage("This is not a directory").with_remote(remote.describe())),
    }
}

fn script_environment(
    task_id: Option<i64>,
    body: &Map<String, Value>,
    credential: &Map<String, Value>,
) -> Vec<(String, String)> {
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let b = |k: &str| if body.get(k).and_then(Value::as_bool).unwrap_or(false) { "1" } else { "0" }.to_string();
    let mut env = Vec::new();
    if let Some(id) = task_id {
        env.push(("CLOUD_SYNC_ID".to_string(), id.to_string()));
    }
    for (k, v) in [
        ("DESCRIPTION", s("description")),
        ("DIRECTION", s("direction")),
        ("TRANSFER_MODE", s("transfer_mode")),
        ("ENCRYPTION", b("encryption")),
        ("FILENAME_ENCRYPTION", b("filename_encryption")),
        ("SNAPSHOT", b("snapshot")),
        ("PATH", s("path")),
    ] {
        env.push((format!("CLOUD_SYNC_{k}"), v));
    }
    let ty = credential.get("type").and_then(Value::as_str).unwrap_or("");
    let attrs = body.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default();
    env.extend(providers::script_env(ty, credential, &attrs));
    env
}

/// Run saved task `task_id` to completion (a synchronous call). `cancel` aborts it from
/// this process; [`queue::request_abort`] from any process.
pub fn run_task(
    store: &Store,
    cfg: &RunnerConfig,
    task_id: i64,
    dry_run: bool,
    observer: Option<Arc<dyn JobObserver>>,
    cancel: CancelToken,
) -> Result<JobOutcome> {
    // No job record for a task that does not exist.
    if !store.list_task_ids()?.contains(&task_id) {
        return Err(Error::new(Kind::NotFound, format!("task {task_id} does not exist")));
    }
    let job_id = match queue::enqueue(store, Some(task_id), dry_run)? {
        Enqueued::AlreadyQueued(id) => {
            return Ok(JobOutcome {
                job_id: id,
                state: queue::WAITING.into(),
                error: None,
                logs_excerpt: None,
                error_details: None,
            });
        }
        Enqueued::New(id) => id,
    };
    run_enqueued(store, cfg, job_id, task_id, dry_run, observer, cancel)
}

/// The second half of [`run_task`]: run job `job_id`, which [`queue::enqueue`] created for
/// saved task `task_id` ([`Enqueued::New`]), to completion. For callers that must know the
/// job id before the job runs (the daemon answers `cloudsync.sync` with it at once).
pub fn run_enqueued(
    store: &Store,
    cfg: &RunnerConfig,
    job_id: i64,
    task_id: i64,
    dry_run: bool,
    observer: Option<Arc<dyn JobObserver>>,
    cancel: CancelToken,
) -> Result<JobOutcome> {
    run_job(store, cfg, job_id, Some(task_id), None, dry_run, observer, cancel)
}

/// Run an unsaved, already validated task body once (`sync_onetime`, §7.3): no queue.
pub fn run_onetime(
    store: &Store,
    cfg: &RunnerConfig,
    body: &Map<String, Value>,
    dry_run: bool,
    observer: Option<Arc<dyn JobObserver>>,
    cancel: CancelToken,
) -> Result<JobOutcome> {
    // Scripts never run in a one-time run, however the body got here (§7.3).
    for script in ["pre_script", "post_script"] {
        if body.get(script).and_then(Value::as_str).is_some_and(|s| !s.trim().is_empty()) {
            return Err(Error::usage(format!(
                "{}.{script}: This option may not be used for onetime cloud sync operations",
                crate::task::model::ONETIME
            )));
        }
    }
    let job_id = queue::enqueue(store, None, dry_run)?.job_id();
    run_job(store, cfg, job_id, None, Some(body.clone()), dry_run, observer, cancel)
}

#[allow(clippy::too_many_arguments)]
fn run_job(
    store: &Store,
    cfg: &RunnerConfig,
    job_id: i64,
    task_id: Option<i64>,
    onetime: Option<Map<String, Value>>,
    dry_run: bool,
    observer: Option<Arc<dyn JobObserver>>,
    cancel: CancelToken,
) -> Result<JobOutcome> {
    let log = Arc::new(JobLog::create(&cfg.log_dir.join(format!("{job_id}.log")))?);
    let _ = queue::set_logs_path(store, job_id, &log.path().to_string_lossy());
    if let Some(o) = observer.clone() {
        log.set_tap(Box::new(move |line| o.log(job_id, line)));
    }
    let latest: Arc<std::sync::Mutex<Option<(u32, String)>>> = Arc::default();
    // Abort requests from other processes, and progress for them to read.
    let watcher_stop = CancelToken::new();
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let mut ticks = 0u32;
            while !watcher_stop.is_cancelled() {
                if queue::abort_requested(store, job_id).unwrap_or(false) {
                    cancel.cancel();
                }
                ticks += 1;
                if ticks.is_multiple_of(5)
                    && let Some((pct, desc)) = latest.lock().ok().and_then(|mut l| l.take())
                {
                    let _ = queue::set_progress(store, job_id, pct, &desc);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let r = job_body(store, cfg, job_id, task_id, onetime, dry_run, &log, observer, &cancel, latest.clone());
        watcher_stop.cancel();
        r
    });
    log.flush();
    // A job that failed before the engine said anything (a path refused, a credential
    // that cannot be read, a failed pre-script's own lines aside) still says why in its
    // log, once.
    if let Err(e) = &result
        && !(e.is_cancelled() || cancel.is_cancelled())
        && !script::is_script_failure(e)
        && !joblog::excerpt(log.path()).contains(e.message())
    {
        log.line(log::Level::Error, &e.to_string());
        log.flush();
    }
    let excerpt = joblog::excerpt(log.path());
    let (state, error, details) = match &result {
        Ok(()) => (SUCCESS, None, None),
        Err(e) if e.is_cancelled() || cancel.is_cancelled() => (ABORTED, None, None),
        Err(e) => (FAILED, Some(e.to_string()), Some(ErrorDetails::of(e))),
    };
    queue::finish(store, job_id, state, error.as_deref(), details.as_ref(), Some(&excerpt))?;
    if let Some(t) = task_id {
        let job = json!({"id": job_id, "state": state, "error": error, "error_details": details, "logs_path": log.path().to_string_lossy(), "logs_excerpt": excerpt, "dry_run": dry_run});
        let _ = store.set_task_job(t, &job);
    }
    Ok(JobOutcome { job_id, state: state.into(), error, logs_excerpt: Some(excerpt), error_details: details })
}

#[allow(clippy::too_many_arguments)]
fn job_body(
    store: &Store,
    cfg: &RunnerConfig,
    job_id: i64,
    task_id: Option<i64>,
    onetime: Option<Map<String, Value>>,
    dry_run: bool,
    log: &Arc<JobLog>,
    observer: Option<Arc<dyn JobObserver>>,
    cancel: &CancelToken,
    latest: Arc<std::sync::Mutex<Option<(u32, String)>>>,
) -> Result<()> {
    if task_id.is_some() {
        queue::wait_turn(store, job_id, cancel)?;
    }
    let body = match (task_id, onetime) {
        (Some(id), _) => store.get_task(id).map(|t: Task| t.body)?,
        (None, Some(b)) => b,
        (None, None) => return Err(Error::other("nothing to run")),
    };
    // A stored task is checked again before it runs: an import may have kept it with
    // problems, or the database may have been edited by hand.
    if let Some(problems) = body.get("import_problems") {
        return Err(Error::usage(format!("This task was imported with problems and must be fixed first: {problems}")));
    }
    let editable = super::model::merge_update(&body, &Map::new());
    if let Err(errs) = super::model::validate(super::model::UPDATE, &editable, store, None, &cfg.policy) {
        let text: Vec<String> = errs.iter().map(|(k, m)| format!("{k}: {m}")).collect();
        return Err(Error::usage(format!("The task is not valid: {}", text.join("; "))));
    }
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let cred_id = body.get("credentials").and_then(Value::as_i64).unwrap_or(-1);
    let credential = store.runnable(&store.get_credential(cred_id)?)?;
    let attributes = body.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default();
    let ty = credential.get("type").and_then(Value::as_str).unwrap_or("").to_string();
    let spec = providers::get(&ty)
        .ok_or_else(|| Error::new(Kind::Unsupported, format!("Provider {ty} is not supported by this version")))?;
    let push = s("direction") == "PUSH";
    let path = s("path");

    // Path locks (§6.3): local first, then remote.
    let remote_key = format!("{cred_id}/{}", providers::remote_path(spec, &attributes));
    let (local_write, remote_write) = if push { (false, true) } else { (true, false) };
    let rw = |w: bool| if w { "writing" } else { "reading" };
    // The steps are progress descriptions, as TrueNAS's `job.set_progress`, not log lines:
    // the log (and its excerpt) holds what the scripts and the transfer said.
    let step = |description: &str| {
        let _ = queue::set_progress(store, job_id, 0, description);
        if let Some(o) = &observer {
            o.progress(job_id, 0, description, &engine::Progress::default());
        }
    };
    step(&format!("Locking local path '{path}' for {}", rw(local_write)));
    queue::lock_path(store, job_id, LockKind::Local, &path, local_write, cancel)?;
    step(&format!("Locking remote path '{remote_key}' for {}", rw(remote_write)));
    queue::lock_path(store, job_id, LockKind::Remote, &remote_key, remote_write, cancel)?;
    step("Starting");

    let zfs = crate::zfs::Zfs::default();
    let location = check_local_path(&path, &cfg.policy, &zfs)?;
    let pins = crate::store::Pins { store, credential: cred_id };
    let remote = with_crypt(build_remote_pinned(&credential, &attributes, cfg.index.clone(), Some(&pins))?, &body)?;
    if !push {
        preflight_pull(remote.as_ref()).map_err(|e| e.with_provider(spec.type_name))?;
    }
    let env = script_environment(task_id, &body, &credential);
    if dry_run {
        if !s("pre_script").trim().is_empty() {
            log.line(log::Level::Info, "Dry run: pre-script skipped");
        }
        if body.get("snapshot").and_then(Value::as_bool).unwrap_or(false) {
            log.line(log::Level::Info, "Dry run: snapshot skipped, reading the live dataset");
        }
    } else {
        script::run(script::Which::Pre, &s("pre_script"), &env, log, cancel)?;
    }
    if body.get("follow_symlinks").and_then(Value::as_bool).unwrap_or(false)
        && body.get("snapshot").and_then(Value::as_bool).unwrap_or(false)
    {
        log.line(
            log::Level::Warn,
            "follow_symlinks with snapshot: links that point outside the snapshot read the live filesystem",
        );
    }

    // Snapshot-before-push (§7.5): from here on the snapshot is destroyed on every way
    // out, by `release` below or by the guard's drop (errors, abort, panic).
    let mut snapshot = None;
    let mut read_path = path.clone();
    if push && !dry_run && body.get("snapshot").and_then(Value::as_bool).unwrap_or(false) {
        let loc =
            location.as_ref().ok_or_else(|| Error::usage(format!("Snapshot: '{path}' is not on a ZFS dataset")))?;
        let tag = task_id.map_or_else(|| "onetime".to_string(), |t| t.to_string());
        if task_id.is_some() {
            // This job holds its task's turn: any snapshot of this task is a leftover.
            match crate::zfs::cleanup_stale(&zfs, &|t: &str| t != tag) {
                Ok(gone) => gone.iter().for_each(|g| log.line(log::Level::Warn, &format!("Destroyed leftover {g}"))),
                Err(e) => log.line(log::Level::Warn, &format!("Could not clean up leftover snapshots: {e}")),
            }
        }
        let mut snap = crate::zfs::SnapshotRead::take(&zfs, loc, &tag)?;
        let report_log = log.clone();
        snap.set_reporter(Box::new(move |level, line| report_log.line(level, line)));
        log.line(
            log::Level::Info,
            &format!("Created snapshot {}, reading {}", snap.snapshot, snap.read_path.display()),
        );
        read_path = snap.read_path.to_string_lossy().into_owned();
        snapshot = Some(snap);
    }
    let local: RemoteRef = Arc::new(LocalRemote::new(
        &read_path,
        LocalOptions {
            follow_symlinks: body.get("follow_symlinks").and_then(Value::as_bool).unwrap_or(false),
            ..LocalOptions::default()
        },
        cfg.index.clone(),
    ));
    let list = |k: &str| -> Vec<String> {
        body.get(k)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let pool_root = Path::new(&path).parent().is_some_and(|p| p == cfg.policy.pool_root);
    let filter = Filter::truenas(&list("exclude"), &list("include"), pool_root)
        .map_err(|e| Error::usage(format!("filter: {e}")))?;
    let slots: Vec<(String, Option<u64>)> = body
        .get("bwlimit")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| {
                    (
                        x.get("time").and_then(Value::as_str).unwrap_or("00:00").to_string(),
                        x.get("bandwidth").and_then(Value::as_u64),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let bwlimit = if slots.is_empty() {
        BwTimetable::unlimited()
    } else {
        BwTimetable::from_truenas(&slots).map_err(Error::usage)?
    };
    let sink = Arc::new(JobSink {
        job_id,
        log: log.clone(),
        outer: observer,
        latest,
        max_percent: std::sync::atomic::AtomicU32::new(0),
    });
    let mut opts = SyncOptions {
        mode: match s("transfer_mode").as_str() {
            "COPY" => Mode::Copy,
            "MOVE" => Mode::Move,
            _ => Mode::Sync,
        },
        dry_run,
        filter: Arc::new(filter),
        transfers: body.get("transfers").and_then(Value::as_u64).map_or(4, |t| t as usize),
        create_empty_src_dirs: body.get("create_empty_src_dirs").and_then(Value::as_bool).unwrap_or(false),
        bwlimit,
        cancel: cancel.clone(),
        observer: sink,
        ..SyncOptions::default()
    };
    apply_args(&s("args"), &mut opts)?;
    let (src, dst) = if push { (local, remote) } else { (remote, local) };
    let report = engine::run(src.as_ref(), dst.as_ref(), &opts);
    if let Some(e) = report.error {
        // The job's error is the sentence of the error that ended the run (the last
        // one, as rclone reports it), with its context; the log holds the others.
        return Err(e);
    }
    if dry_run {
        if !s("post_script").trim().is_empty() {
            log.line(log::Level::Info, "Dry run: post-script skipped");
        }
    } else {
        script::run(script::Which::Post, &s("post_script"), &env, log, cancel)?;
    }
    if let Some(snap) = snapshot {
        // A failed destroy is a warning, not a failed job (TrueNAS commit c3a4269c49).
        let _ = snap.release();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_without_buckets_say_so_before_any_request() {
        for ty in ["DROPBOX", "SFTP", "WEBDAV", "FTP"] {
            let mut c = Map::new();
            c.insert("type".into(), Value::String(ty.into()));
            // An endpoint that would refuse a connection: no request is made at all.
            c.insert("host".into(), Value::String("127.0.0.1".into()));
            let e = list_buckets(&c).unwrap_err();
            assert_eq!(e.to_string(), "This provider does not use buckets", "{ty}");
            assert_eq!(e.kind(), Kind::Usage);
        }
    }

    #[test]
    fn only_storj_creates_buckets_and_the_others_say_so_before_any_request() {
        for ty in ["S3", "B2", "AZUREBLOB", "GOOGLE_CLOUD_STORAGE", "OPENSTACK_SWIFT", "DROPBOX", "SFTP", "HTTP"] {
            let mut c = Map::new();
            c.insert("type".into(), Value::String(ty.into()));
            // A closed loopback port: a request would fail differently.
            c.insert("endpoint".into(), Value::String("http://127.0.0.1:9".into()));
            let e = create_bucket(&c, "new").unwrap_err();
            assert_eq!(e.to_string(), "This provider can't create buckets", "{ty}");
            assert_eq!(e.kind(), Kind::Usage);
        }
        let mut storj = Map::new();
        storj.insert("type".into(), Value::String("STORJ_IX".into()));
        for bad in ["", "a/b"] {
            let e = create_bucket(&storj, bad).unwrap_err();
            assert!(e.to_string().starts_with("Invalid bucket name"), "{e}");
        }
    }
}
