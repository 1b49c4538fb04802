//! Running jobs synchronously with progress and log callbacks.

use super::api::{cloudsync_store, store_ref};
use super::cloudsync_result::{self, *};
use super::{Fail, c_string, call, clear, cloudsync_error, json_arg, put_string};
use crate::engine::{CancelToken, Progress};
use crate::task::runner::{self, JobObserver, JobOutcome};
use serde_json::Value;
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

/// What a progress callback returns.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cloudsync_callback_result {
    /// Go on.
    CLOUDSYNC_CONTINUE = 0,
    /// Abort the job: transfers stop, nothing is deleted, the job ends `ABORTED` and the
    /// run function returns `CLOUDSYNC_ABORTED`.
    CLOUDSYNC_ABORT = 1,
}

/// A job's progress, passed to the progress callback. Valid only during the callback.
#[repr(C)]
#[derive(Debug)]
pub struct cloudsync_progress {
    pub job_id: i64,
    /// 0..100, never going down within a job (TrueNAS's rule: the minimum of the file,
    /// byte and check percentages seen so far).
    pub percent: u32,
    pub files_done: u64,
    /// Files to transfer found so far (final once `listing_done`).
    pub files_total: u64,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub checks_done: u64,
    pub checks_total: u64,
    pub deletes: u64,
    pub errors: u64,
    /// Bytes per second over the last few seconds.
    pub speed: f64,
    /// Seconds left at the current speed, or -1 when unknown.
    pub eta_seconds: i64,
    pub elapsed_ms: u64,
    /// The listing is complete, so the totals are final.
    pub listing_done: bool,
    /// A one-line description such as `"3 / 10, 1.2 MiB/s"` (UTF-8, NUL-terminated).
    pub description: *const c_char,
}

/// Called about once a second while a job transfers. Return `CLOUDSYNC_CONTINUE` (0) or
/// `CLOUDSYNC_ABORT` (1); other values count as continue. Called from a library thread,
/// never concurrently with another callback of the same run. After a callback returned
/// `CLOUDSYNC_ABORT`, no callback of that run follows (neither progress nor log). A
/// callback may call other functions of the library on the same store (list, query,
/// `cloudsync_job_abort`), but not start a run and wait for it there.
pub type cloudsync_progress_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, progress: *const cloudsync_progress) -> u32>;

/// Called with every line written to the job's log (UTF-8, `len` bytes plus a NUL; valid
/// only during the callback). Called from library threads, never concurrently with
/// another callback of the same run; what the progress callback may do, this one may.
pub type cloudsync_log_callback =
    Option<unsafe extern "C" fn(userdata: *mut c_void, job_id: i64, line: *const c_char, len: usize)>;

/// Options of a run. A NULL options pointer means all defaults (no dry run, no callbacks).
/// Set `size` to `sizeof(cloudsync_run_options)` (`CLOUDSYNC_RUN_OPTIONS_INIT` does):
/// fields added in later versions go at the end, and the library reads only the fields
/// `size` covers, so a program built against this header keeps working with a newer
/// library. A `size` of 0 or below this version's first fields is refused with
/// `CLOUDSYNC_INVALID_ARGUMENT`.
#[repr(C)]
pub struct cloudsync_run_options {
    /// `sizeof(cloudsync_run_options)` as the caller's header defines it.
    pub size: usize,
    /// Decide and report only: nothing changes on either side, no scripts, no snapshot.
    pub dry_run: bool,
    pub progress: cloudsync_progress_callback,
    pub log: cloudsync_log_callback,
    /// Passed first to every callback; the library never touches it.
    pub userdata: *mut c_void,
}

/// The caller's callbacks, serialized by one lock so that C code needs none.
struct CObserver {
    progress: cloudsync_progress_callback,
    log: cloudsync_log_callback,
    userdata: *mut c_void,
    lock: Mutex<()>,
    cancel: CancelToken,
    /// A callback returned `CLOUDSYNC_ABORT`: none follows.
    stopped: std::sync::atomic::AtomicBool,
}

// SAFETY: the callbacks are documented to be called from library threads; `userdata` is
// only passed back to them, and every call holds `lock`.
unsafe impl Send for CObserver {}
unsafe impl Sync for CObserver {}

impl JobObserver for CObserver {
    fn progress(&self, job_id: i64, percent: u32, description: &str, p: &Progress) {
        let Some(cb) = self.progress else { return };
        let desc = c_string(description);
        let cp = cloudsync_progress {
            job_id,
            percent,
            files_done: p.files_done,
            files_total: p.files_total,
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            checks_done: p.checks_done,
            checks_total: p.checks_total,
            deletes: p.deletes,
            errors: p.errors,
            speed: p.speed,
            eta_seconds: p.eta.map_or(-1, |e| e as i64),
            elapsed_ms: p.elapsed.as_millis() as u64,
            listing_done: p.listing_done,
            description: desc.as_ptr(),
        };
        let _serial = self.lock.lock();
        if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        // SAFETY: a C function pointer the caller supplied, called as documented.
        if unsafe { cb(self.userdata, &cp) } == cloudsync_callback_result::CLOUDSYNC_ABORT as u32 {
            self.stopped.store(true, std::sync::atomic::Ordering::Release);
            self.cancel.cancel();
        }
    }

    fn log(&self, job_id: i64, line: &str) {
        let Some(cb) = self.log else { return };
        let text = c_string(line);
        let len = text.as_bytes().len();
        let _serial = self.lock.lock();
        if self.stopped.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        // SAFETY: as above.
        unsafe { cb(self.userdata, job_id, text.as_ptr(), len) };
    }
}

/// The size of this version's options: every field up to `userdata`.
const RUN_OPTIONS_V1: usize = std::mem::offset_of!(cloudsync_run_options, userdata) + size_of::<*mut c_void>();

/// Read the options (NULL: defaults) into (dry_run, observer).
fn options(
    opts: *const cloudsync_run_options,
    cancel: &CancelToken,
) -> Result<(bool, Option<Arc<dyn JobObserver>>), Fail> {
    if opts.is_null() {
        return Ok((false, None));
    }
    // SAFETY: the caller passes a valid options struct of at least `size` bytes, and
    // every version has `size` first.
    let size = unsafe { std::ptr::addr_of!((*opts).size).read_unaligned() };
    if size < RUN_OPTIONS_V1 {
        return Err(Fail::new(
            CLOUDSYNC_INVALID_ARGUMENT,
            format!(
                "cloudsync_run_options.size is {size}: set it to sizeof(cloudsync_run_options) \
                 (CLOUDSYNC_RUN_OPTIONS_INIT), at least {RUN_OPTIONS_V1}"
            ),
        ));
    }
    // SAFETY: `size` covers this version's fields.
    let o = unsafe { &*opts };
    let observer: Option<Arc<dyn JobObserver>> = if o.progress.is_some() || o.log.is_some() {
        Some(Arc::new(CObserver {
            progress: o.progress,
            log: o.log,
            userdata: o.userdata,
            lock: Mutex::new(()),
            cancel: cancel.clone(),
            stopped: Default::default(),
        }))
    } else {
        None
    };
    Ok((o.dry_run, observer))
}

/// Report a finished job through the out-parameters and its code.
fn finish(
    outcome: JobOutcome,
    provider: Option<String>,
    job_id_out: *mut i64,
    outcome_out: *mut *mut c_char,
) -> Result<cloudsync_result, Fail> {
    if !job_id_out.is_null() {
        // SAFETY: checked non-NULL; the caller passes a valid `int64_t *`.
        unsafe { *job_id_out = outcome.job_id };
    }
    if !outcome_out.is_null() {
        put_string(outcome_out, serde_json::to_string(&outcome).unwrap_or_default());
    }
    match outcome.state.as_str() {
        "SUCCESS" => Ok(CLOUDSYNC_OK),
        "WAITING" => Ok(CLOUDSYNC_ALREADY_QUEUED),
        "ABORTED" => Err(Fail::new(CLOUDSYNC_ABORTED, format!("job {} was aborted", outcome.job_id))),
        _ => Err(Fail::job_failed(
            outcome.error.unwrap_or_else(|| "the job failed".into()),
            outcome.error_details.as_ref(),
        )
        .with_provider(provider)),
    }
}

fn credential_type(s: &cloudsync_store, body: &serde_json::Map<String, Value>) -> Option<String> {
    let id = body.get("credentials").and_then(Value::as_i64)?;
    let c = s.store.get_credential(id).ok()?;
    c.provider.get("type").and_then(Value::as_str).map(str::to_string)
}

/// The shape of both run functions: clear the out-parameters, read the options, run,
/// report. `start` runs the job and names the provider of its credential.
fn run_with(
    store: *const cloudsync_store,
    options: *const cloudsync_run_options,
    job_id_out: *mut i64,
    outcome_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
    start: impl FnOnce(
        &cloudsync_store,
        &runner::RunnerConfig,
        bool,
        Option<Arc<dyn JobObserver>>,
        CancelToken,
    ) -> Result<(JobOutcome, Option<String>), Fail>,
) -> cloudsync_result {
    call(error_out, || {
        clear(outcome_out);
        if !job_id_out.is_null() {
            // SAFETY: checked non-NULL.
            unsafe { *job_id_out = 0 };
        }
        let s = store_ref(store)?;
        let cancel = CancelToken::new();
        let (dry_run, observer) = self::options(options, &cancel)?;
        let cfg = s.runner()?;
        let (outcome, provider) = start(s, &cfg, dry_run, observer, cancel)?;
        finish(outcome, provider, job_id_out, outcome_out)
    })
}

/// Run saved task `task_id` now and wait for it (also a disabled task), on the calling
/// thread; callbacks come from library threads while it runs.
///
/// Returns `CLOUDSYNC_OK` when the job succeeded, `CLOUDSYNC_JOB_FAILED` (the error's
/// message is the job's error) or `CLOUDSYNC_ABORTED`, `CLOUDSYNC_ALREADY_QUEUED` when
/// the task already had a waiting job (its id is returned; nothing new runs), or another
/// code when the job could not be started. `*job_id_out` (may be NULL) gets the job id;
/// `*outcome_out` (may be NULL) the outcome as JSON `{job_id, state, error,
/// logs_excerpt}` to free with `cloudsync_string_free` (set for every job that ran,
/// whatever its result). `options` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_run(
    store: *const cloudsync_store,
    task_id: i64,
    options: *const cloudsync_run_options,
    job_id_out: *mut i64,
    outcome_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    run_with(store, options, job_id_out, outcome_out, error_out, |s, cfg, dry_run, observer, cancel| {
        let provider = s.store.get_task(task_id).ok().and_then(|t| credential_type(s, &t.body));
        Ok((runner::run_task(&s.store, cfg, task_id, dry_run, observer, cancel)?, provider))
    })
}

/// Run an unsaved task body once (TrueNAS's `sync_onetime`): `task_json` is validated
/// as by create under the `cloud_sync_sync_onetime` schema, which refuses `pre_script`
/// and `post_script` ("This option may not be used for onetime cloud sync operations"),
/// then run like [`cloudsync_task_run`] (no queue; locks still apply).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_run_onetime(
    store: *const cloudsync_store,
    task_json: *const c_char,
    options: *const cloudsync_run_options,
    job_id_out: *mut i64,
    outcome_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    run_with(store, options, job_id_out, outcome_out, error_out, |s, cfg, dry_run, observer, cancel| {
        let body = json_arg(task_json, "task_json")?;
        let valid = crate::task::api::onetime_validate(&s.store, &body, None, &s.policy())?;
        let valid = valid.as_object().cloned().unwrap_or_default();
        let provider = credential_type(s, &valid);
        Ok((runner::run_onetime(&s.store, cfg, &valid, dry_run, observer, cancel)?, provider))
    })
}
