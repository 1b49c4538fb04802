//! The jobs this daemon runs. Each runs on a blocking worker thread through the library's
//! job runner ([`runner::run_enqueued`]), so queues, path locks, abort, progress and logs
//! are exactly those of `cloudsync task run`. This module only keeps each live job's
//! [`CancelToken`] (for abort and shutdown) and a count to wait on at shutdown.

use cloudsync::engine::CancelToken;
use cloudsync::store::Store;
use cloudsync::task::queue::{self, Enqueued};
use cloudsync::task::runner::{self, JobOutcome, RunnerConfig};
use cloudsync::{Error, Kind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

/// How long after the last job ends the memory it freed is returned once more: after
/// tokio's idle blocking threads (kept 10 s) are gone.
const IDLE_TRIM_DELAY: Duration = Duration::from_secs(12);

/// The message of a run refused because the daemon is stopping.
pub const SHUTTING_DOWN: &str = "cloudsyncd is shutting down";

/// How a run request ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// A new job, started (it may still wait for its turn in the task's queue).
    New(i64),
    /// The task already had a waiting job: that one (§6.2).
    AlreadyQueued(i64),
}

impl Started {
    pub fn job_id(self) -> i64 {
        match self {
            Started::New(id) | Started::AlreadyQueued(id) => id,
        }
    }
}

struct LiveJob {
    task_id: i64,
    cancel: CancelToken,
}

#[derive(Default)]
struct State {
    live: HashMap<i64, LiveJob>,
    stopping: bool,
}

/// Builds a job's runner configuration. Called per job, so that what a job opens (the
/// metadata index and its cache) is released when the daemon is idle again.
pub type ConfigFn = Box<dyn Fn() -> RunnerConfig + Send + Sync>;

/// The daemon's running jobs.
pub struct Jobs {
    store: Arc<Store>,
    config: ConfigFn,
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    live_count: watch::Sender<usize>,
}

impl Jobs {
    /// Jobs run on `runtime`'s blocking threads, each with the configuration `config` makes.
    pub fn new(store: Arc<Store>, config: ConfigFn, runtime: tokio::runtime::Handle) -> Arc<Jobs> {
        Arc::new(Jobs { store, config, runtime, state: Mutex::default(), live_count: watch::Sender::new(0) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves only a map behind: keep using it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a run of saved task `task_id` and start it on a worker thread. Blocks for a
    /// database transaction, so call it from a blocking thread. Works for disabled tasks
    /// too (a manual run, §8).
    pub fn start(self: &Arc<Self>, task_id: i64, dry_run: bool) -> cloudsync::Result<Started> {
        if self.state().stopping {
            return Err(Error::new(Kind::Other, SHUTTING_DOWN));
        }
        // Only a missing task is refused here; any other problem (a seed that does not
        // match, an invalid task) fails the job visibly, with its message in the record.
        if let Err(e) = self.store.get_task(task_id)
            && e.kind() == Kind::NotFound
        {
            return Err(e);
        }
        let job_id = match queue::enqueue(&self.store, Some(task_id), dry_run)? {
            Enqueued::AlreadyQueued(id) => return Ok(Started::AlreadyQueued(id)),
            Enqueued::New(id) => id,
        };
        let cancel = CancelToken::new();
        {
            let mut st = self.state();
            if st.stopping {
                drop(st);
                let _ = queue::finish(&self.store, job_id, queue::ABORTED, None, None, None);
                return Err(Error::new(Kind::Other, SHUTTING_DOWN));
            }
            st.live.insert(job_id, LiveJob { task_id, cancel: cancel.clone() });
            self.live_count.send_replace(st.live.len());
        }
        let guard = Registered { jobs: self.clone(), job_id, ran: false };
        self.runtime.spawn_blocking(move || {
            let mut guard = guard;
            guard.ran = true;
            let jobs = &guard.jobs;
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let cfg = (jobs.config)();
                runner::run_enqueued(&jobs.store, &cfg, job_id, task_id, dry_run, None, cancel)
            }));
            let outcome = run.unwrap_or_else(|_| Err(Error::other("the job runner failed unexpectedly (a bug)")));
            jobs.report(task_id, job_id, outcome);
        });
        Ok(Started::New(job_id))
    }

    fn report(&self, task_id: i64, job_id: i64, outcome: cloudsync::Result<JobOutcome>) {
        match outcome {
            Ok(o) => match o.state.as_str() {
                queue::SUCCESS => log::info!("task {task_id}: job {job_id} finished: SUCCESS"),
                queue::ABORTED => log::info!("task {task_id}: job {job_id} was aborted"),
                state => log::error!("task {task_id}: job {job_id} {state}: {}", o.error.as_deref().unwrap_or("")),
            },
            Err(e) => {
                log::error!("task {task_id}: job {job_id} could not run: {e}");
                // The runner could not even record its end (or panicked): do it here, so
                // that the task's queue does not stay blocked by a job nobody runs.
                if queue::job_state(&self.store, job_id)
                    .is_ok_and(|(state, _)| state == queue::WAITING || state == queue::RUNNING)
                {
                    let _ = queue::finish(
                        &self.store,
                        job_id,
                        queue::FAILED,
                        Some(&e.to_string()),
                        Some(&runner::ErrorDetails::of(&e)),
                        None,
                    );
                }
            }
        }
    }

    /// Cancel this daemon's live jobs of `task_id` at once (the database abort flag, which
    /// other processes use, is set by the caller). Returns how many there were.
    pub fn cancel_task(&self, task_id: i64) -> usize {
        let st = self.state();
        let mut n = 0;
        for job in st.live.values().filter(|j| j.task_id == task_id) {
            job.cancel.cancel();
            n += 1;
        }
        n
    }

    /// Cancel one live job of this daemon. False if it is not one.
    pub fn cancel_job(&self, job_id: i64) -> bool {
        self.state().live.get(&job_id).map(|j| j.cancel.cancel()).is_some()
    }

    /// How many jobs run (or wait) in this daemon.
    pub fn live(&self) -> usize {
        self.state().live.len()
    }

    /// Refuse new runs and cancel every live job (SIGTERM).
    pub fn shutdown(&self) {
        let mut st = self.state();
        st.stopping = true;
        for job in st.live.values() {
            job.cancel.cancel();
        }
    }

    /// Wait until no job is live, at most `timeout`. True when none is.
    pub async fn wait_idle(&self, timeout: Duration) -> bool {
        let mut rx = self.live_count.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await.is_ok_and(|r| r.is_ok())
    }
}

/// A registered job: unregistered when its worker ends, however it ends. A worker that
/// never ran (the runtime was already shutting down) leaves its job ABORTED, not WAITING.
struct Registered {
    jobs: Arc<Jobs>,
    job_id: i64,
    ran: bool,
}

impl Drop for Registered {
    fn drop(&mut self) {
        if !self.ran {
            let _ = queue::finish(&self.jobs.store, self.job_id, queue::ABORTED, None, None, None);
        }
        let idle = {
            let mut st = self.jobs.state();
            st.live.remove(&self.job_id);
            self.jobs.live_count.send_replace(st.live.len());
            st.live.is_empty()
        };
        if idle {
            crate::system::release_memory();
            // Once more after the idle worker threads have ended (tokio keeps them 10 s),
            // since their arenas still held memory: one wake-up per idle period.
            let jobs = self.jobs.clone();
            self.jobs.runtime.spawn(async move {
                tokio::time::sleep(IDLE_TRIM_DELAY).await;
                if jobs.live() == 0 {
                    crate::system::release_memory();
                }
            });
        }
    }
}
