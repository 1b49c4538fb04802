//! Run control shared by every process that uses one store (§6.2–§6.4): the per-task
//! queue of one running and one waiting job, keyed by the task id alone; read/write locks
//! on overlapping local and remote paths; and abort requests.
//!
//! All of it lives in the database, so the daemon, the CLI and library users in other
//! processes see the same queue. A job whose process died (kill -9) is recognised by its
//! owner's pid *and* start time (a reused pid does not count), marked FAILED as
//! interrupted, and its locks are released; nothing stays stuck.

use crate::engine::CancelToken;
use crate::error::{Error, Kind, Result};
use crate::store::Store;
use crate::store::db::db_err;
use rusqlite::{OptionalExtension, Transaction, params};
use std::time::Duration;

const POLL: Duration = Duration::from_millis(200);
pub const INTERRUPTED: &str = "Interrupted: the process running this job stopped before it finished";

/// Job states (§6.1).
pub const WAITING: &str = "WAITING";
pub const RUNNING: &str = "RUNNING";
pub const SUCCESS: &str = "SUCCESS";
pub const FAILED: &str = "FAILED";
pub const ABORTED: &str = "ABORTED";

pub use crate::process::Owner;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Mark the jobs of dead processes interrupted and drop their locks.
fn reap(tx: &Transaction<'_>) -> Result<()> {
    let rows: Vec<(i64, i64, i64)> = {
        let mut stmt = tx
            .prepare("SELECT id, owner_pid, owner_start FROM jobs WHERE state IN ('WAITING', 'RUNNING')")
            .map_err(db_err)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?
    };
    for (id, pid, start) in rows {
        if !(Owner { pid, start }).alive() {
            tx.execute(
                "UPDATE jobs SET state = 'FAILED', error = ?2, finished = ?3 WHERE id = ?1",
                params![id, INTERRUPTED, now()],
            )
            .map_err(db_err)?;
            tx.execute("DELETE FROM path_locks WHERE job_id = ?1", params![id]).map_err(db_err)?;
        }
    }
    let lockers: Vec<(i64, i64)> = {
        let mut stmt = tx.prepare("SELECT DISTINCT owner_pid, owner_start FROM path_locks").map_err(db_err)?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?
    };
    for (pid, start) in lockers {
        if !(Owner { pid, start }).alive() {
            tx.execute("DELETE FROM path_locks WHERE owner_pid = ?1 AND owner_start = ?2", params![pid, start])
                .map_err(db_err)?;
        }
    }
    Ok(())
}

/// The outcome of asking to run a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    /// A new job, WAITING for its turn.
    New(i64),
    /// A job of this task was already waiting: that job is returned (§6.2).
    AlreadyQueued(i64),
}

impl Enqueued {
    pub fn job_id(self) -> i64 {
        match self {
            Enqueued::New(id) | Enqueued::AlreadyQueued(id) => id,
        }
    }
}

/// Queue a job for `task_id` (`None`: a one-time run, which has no queue).
pub fn enqueue(store: &Store, task_id: Option<i64>, dry_run: bool) -> Result<Enqueued> {
    let me = Owner::me();
    store.transaction(|tx| {
        reap(tx)?;
        if let Some(t) = task_id {
            let waiting: Option<i64> = tx
                .query_row("SELECT id FROM jobs WHERE task_id = ?1 AND state = 'WAITING' ORDER BY id LIMIT 1", params![t], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(db_err)?;
            if let Some(id) = waiting {
                return Ok(Enqueued::AlreadyQueued(id));
            }
        }
        tx.execute(
            "INSERT INTO jobs (task_id, state, dry_run, created, owner_pid, owner_start) VALUES (?1, 'WAITING', ?2, ?3, ?4, ?5)",
            params![task_id, dry_run, now(), me.pid, me.start],
        )
        .map_err(db_err)?;
        Ok(Enqueued::New(tx.last_insert_rowid()))
    })
}

/// Wait until job `job_id` may run (no other job of its task is RUNNING), then mark it
/// RUNNING. An abort request while waiting ends the job ABORTED.
pub fn wait_turn(store: &Store, job_id: i64, cancel: &CancelToken) -> Result<()> {
    loop {
        let started = store.transaction(|tx| {
            reap(tx)?;
            let (task, abort): (Option<i64>, bool) = tx
                .query_row("SELECT task_id, abort_requested FROM jobs WHERE id = ?1", params![job_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(db_err)?;
            if abort || cancel.is_cancelled() {
                // Committed before the abort is reported (an error would roll it back).
                tx.execute("UPDATE jobs SET state = 'ABORTED', finished = ?2 WHERE id = ?1", params![job_id, now()])
                    .map_err(db_err)?;
                return Ok(None);
            }
            let busy = match task {
                Some(t) => tx
                    .query_row(
                        "SELECT COUNT(*) FROM jobs WHERE task_id = ?1 AND id != ?2 AND (state = 'RUNNING' OR (state = 'WAITING' AND id < ?2))",
                        params![t, job_id],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(db_err)?
                    > 0,
                None => false,
            };
            if busy {
                return Ok(Some(false));
            }
            tx.execute("UPDATE jobs SET state = 'RUNNING', started = ?2 WHERE id = ?1", params![job_id, now()])
                .map_err(db_err)?;
            Ok(Some(true))
        })?;
        match started {
            None => return Err(Error::cancelled()),
            Some(true) => return Ok(()),
            Some(false) => {}
        }
        std::thread::sleep(POLL);
    }
}

/// Ask the live job of `task_id` (WAITING or RUNNING) to abort. False if there is none.
pub fn request_abort(store: &Store, task_id: i64) -> Result<bool> {
    store.transaction(|tx| {
        reap(tx)?;
        let n = tx
            .execute(
                "UPDATE jobs SET abort_requested = 1 WHERE task_id = ?1 AND state IN ('WAITING', 'RUNNING')",
                params![task_id],
            )
            .map_err(db_err)?;
        Ok(n > 0)
    })
}

/// Whether `task_id` has a WAITING or RUNNING job (of a live process).
pub fn task_has_live_job(store: &Store, task_id: i64) -> Result<bool> {
    store.transaction(|tx| {
        reap(tx)?;
        tx.query_row(
            "SELECT COUNT(*) FROM jobs WHERE task_id = ?1 AND state IN ('WAITING', 'RUNNING')",
            params![task_id],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(db_err)
    })
}

/// Whether an abort was requested for a job (polled by the running job).
pub fn abort_requested(store: &Store, job_id: i64) -> Result<bool> {
    store.transaction(|tx| {
        tx.query_row("SELECT abort_requested FROM jobs WHERE id = ?1", params![job_id], |r| r.get(0)).map_err(db_err)
    })
}

/// Record the end of a job and release its locks.
pub fn finish(
    store: &Store,
    job_id: i64,
    state: &str,
    error: Option<&str>,
    details: Option<&super::runner::ErrorDetails>,
    excerpt: Option<&str>,
) -> Result<()> {
    let details = details.and_then(|d| serde_json::to_string(d).ok());
    store.transaction(|tx| {
        tx.execute(
            "UPDATE jobs SET state = ?2, error = ?3, logs_excerpt = ?4, finished = ?5, error_details = ?6 WHERE id = ?1",
            params![job_id, state, error, excerpt, now(), details],
        )
        .map_err(db_err)?;
        if state == SUCCESS {
            let done = serde_json::json!({"percent": 100, "description": "done"}).to_string();
            tx.execute("UPDATE jobs SET progress = ?2 WHERE id = ?1", params![job_id, done]).map_err(db_err)?;
        }
        tx.execute("DELETE FROM path_locks WHERE job_id = ?1", params![job_id]).map_err(db_err)?;
        Ok(())
    })
}

/// Record a running job's progress, for other processes to show.
pub fn set_progress(store: &Store, job_id: i64, percent: u32, description: &str) -> Result<()> {
    let progress = serde_json::json!({"percent": percent, "description": description}).to_string();
    store.transaction(|tx| {
        tx.execute("UPDATE jobs SET progress = ?2 WHERE id = ?1", params![job_id, progress]).map_err(db_err).map(drop)
    })
}

/// Ask one job (WAITING or RUNNING) to abort. False if it is not live.
pub fn request_job_abort(store: &Store, job_id: i64) -> Result<bool> {
    store.transaction(|tx| {
        reap(tx)?;
        let n = tx
            .execute(
                "UPDATE jobs SET abort_requested = 1 WHERE id = ?1 AND state IN ('WAITING', 'RUNNING')",
                params![job_id],
            )
            .map_err(db_err)?;
        Ok(n > 0)
    })
}

/// Record where a job's log file is.
pub fn set_logs_path(store: &Store, job_id: i64, path: &str) -> Result<()> {
    store.transaction(|tx| {
        tx.execute("UPDATE jobs SET logs_path = ?2 WHERE id = ?1", params![job_id, path]).map_err(db_err).map(drop)
    })
}

const JOB_COLUMNS: &str = "id, task_id, state, dry_run, created, started, finished, progress, error, logs_path, \
     logs_excerpt, abort_requested, error_details";

fn job_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<serde_json::Value> {
    let progress: Option<String> = r.get(7)?;
    let progress = progress
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .unwrap_or_else(|| serde_json::json!({"percent": 0, "description": ""}));
    Ok(serde_json::json!({
        "id": r.get::<_, i64>(0)?,
        "task_id": r.get::<_, Option<i64>>(1)?,
        "state": r.get::<_, String>(2)?,
        "dry_run": r.get::<_, bool>(3)?,
        "time_created": r.get::<_, i64>(4)?,
        "time_started": r.get::<_, Option<i64>>(5)?,
        "time_finished": r.get::<_, Option<i64>>(6)?,
        "progress": progress,
        "error": r.get::<_, Option<String>>(8)?,
        "logs_path": r.get::<_, Option<String>>(9)?,
        "logs_excerpt": r.get::<_, Option<String>>(10)?,
        "abort_requested": r.get::<_, bool>(11)?,
        "error_details": r
            .get::<_, Option<String>>(12)?
            .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
            .unwrap_or(serde_json::Value::Null),
    }))
}

/// One job as JSON: id, task_id, state, dry_run, times (Unix seconds), progress
/// `{percent, description}`, error, logs_path, logs_excerpt, abort_requested and
/// error_details (a FAILED job's [`super::runner::ErrorDetails`], else null).
pub fn job_record(store: &Store, job_id: i64) -> Result<serde_json::Value> {
    store.transaction(|tx| {
        reap(tx)?;
        tx.query_row(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"), params![job_id], job_row)
            .optional()
            .map_err(db_err)?
            .ok_or_else(|| Error::new(Kind::NotFound, format!("job {job_id} does not exist")))
    })
}

/// The newest `limit` jobs, of one task or of all, newest first.
pub fn list_jobs(store: &Store, task_id: Option<i64>, limit: u32) -> Result<Vec<serde_json::Value>> {
    store.transaction(|tx| {
        reap(tx)?;
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE (?1 IS NULL OR task_id = ?1) ORDER BY id DESC LIMIT ?2");
        let mut stmt = tx.prepare(&sql).map_err(db_err)?;
        stmt.query_map(params![task_id, limit], job_row)
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)
    })
}

/// A job's state and error, as stored.
pub fn job_state(store: &Store, job_id: i64) -> Result<(String, Option<String>)> {
    store.transaction(|tx| {
        reap(tx)?;
        tx.query_row("SELECT state, error FROM jobs WHERE id = ?1", params![job_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(db_err)?
            .ok_or_else(|| Error::new(Kind::NotFound, format!("job {job_id} does not exist")))
    })
}

/// Whether two lock keys overlap: equal, or one is a path prefix of the other.
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('/'), b.trim_end_matches('/'));
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long == short || short.is_empty() || long.strip_prefix(short).is_some_and(|r| r.starts_with('/'))
}

/// Which path a lock is for (§6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    Local,
    Remote,
}

impl LockKind {
    fn as_str(self) -> &'static str {
        match self {
            LockKind::Local => "local",
            LockKind::Remote => "remote",
        }
    }
}

/// Whether a live job holds a lock on a local path overlapping `path` (a task's `locked`).
pub fn local_path_locked(store: &Store, path: &str) -> Result<bool> {
    store.transaction(|tx| {
        reap(tx)?;
        let mut stmt = tx.prepare("SELECT key FROM path_locks WHERE kind = 'local'").map_err(db_err)?;
        let keys = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(db_err)?;
        Ok(keys.iter().any(|k| overlaps(k, path)))
    })
}

/// Take a read (`write = false`) or write lock on `key` for `job_id`, waiting while an
/// overlapping lock of another job conflicts (readers share, writers are exclusive).
pub fn lock_path(
    store: &Store,
    job_id: i64,
    kind: LockKind,
    key: &str,
    write: bool,
    cancel: &CancelToken,
) -> Result<()> {
    let me = Owner::me();
    loop {
        cancel.check()?;
        let taken = store.transaction(|tx| {
            reap(tx)?;
            let held: Vec<(String, bool)> = {
                let mut stmt =
                    tx.prepare("SELECT key, write FROM path_locks WHERE kind = ?1 AND job_id != ?2").map_err(db_err)?;
                stmt.query_map(params![kind.as_str(), job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(db_err)?
                    .collect::<std::result::Result<_, _>>()
                    .map_err(db_err)?
            };
            if held.iter().any(|(k, w)| (write || *w) && overlaps(k, key)) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO path_locks (job_id, kind, key, write, owner_pid, owner_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![job_id, kind.as_str(), key, write, me.pid, me.start],
            )
            .map_err(db_err)?;
            Ok(true)
        })?;
        if taken {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("db"), &dir.join("seed")).unwrap()
    }

    #[test]
    fn one_running_and_one_queued_per_task() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let a = enqueue(&s, Some(1), false).unwrap();
        assert!(matches!(a, Enqueued::New(_)));
        wait_turn(&s, a.job_id(), &CancelToken::new()).unwrap();
        let b = enqueue(&s, Some(1), true).unwrap();
        assert!(matches!(b, Enqueued::New(_)), "a dry run shares the queue");
        assert_eq!(enqueue(&s, Some(1), false).unwrap(), Enqueued::AlreadyQueued(b.job_id()));
        // Another task is not held up.
        let other = enqueue(&s, Some(2), false).unwrap();
        wait_turn(&s, other.job_id(), &CancelToken::new()).unwrap();
        // b waits until a finishes.
        let s2 = store(d.path());
        let bid = b.job_id();
        let h = std::thread::spawn(move || wait_turn(&s2, bid, &CancelToken::new()));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(job_state(&s, bid).unwrap().0, WAITING);
        finish(&s, a.job_id(), SUCCESS, None, None, None).unwrap();
        h.join().unwrap().unwrap();
        assert_eq!(job_state(&s, bid).unwrap().0, RUNNING);
    }

    #[test]
    fn abort_of_a_waiting_job() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let a = enqueue(&s, Some(5), false).unwrap();
        wait_turn(&s, a.job_id(), &CancelToken::new()).unwrap();
        let b = enqueue(&s, Some(5), false).unwrap();
        assert!(request_abort(&s, 5).unwrap());
        assert!(wait_turn(&s, b.job_id(), &CancelToken::new()).unwrap_err().is_cancelled());
        assert_eq!(job_state(&s, b.job_id()).unwrap().0, ABORTED);
        assert!(abort_requested(&s, a.job_id()).unwrap(), "the running job sees the request too");
        assert!(!request_abort(&s, 99).unwrap());
    }

    #[test]
    fn path_locks_share_reads_and_exclude_writes() {
        let d = tempfile::tempdir().unwrap();
        let s = store(d.path());
        let c = CancelToken::new();
        lock_path(&s, 1, LockKind::Local, "/mnt/tank/data", false, &c).unwrap();
        lock_path(&s, 2, LockKind::Local, "/mnt/tank/data/sub", false, &c).unwrap();
        lock_path(&s, 3, LockKind::Local, "/mnt/tank/database", true, &c).unwrap(); // no overlap
        let s2 = store(d.path());
        let c2 = CancelToken::new();
        let c3 = c2.clone();
        let h = std::thread::spawn(move || lock_path(&s2, 4, LockKind::Local, "/mnt/tank", true, &c2));
        std::thread::sleep(Duration::from_millis(500));
        assert!(!h.is_finished(), "a writer waits for overlapping readers");
        c3.cancel();
        assert!(h.join().unwrap().unwrap_err().is_cancelled());
        finish(&s, 1, SUCCESS, None, None, None).unwrap();
        finish(&s, 2, SUCCESS, None, None, None).unwrap();
        finish(&s, 3, SUCCESS, None, None, None).unwrap();
        lock_path(&s, 4, LockKind::Local, "/mnt/tank", true, &c).unwrap();
        assert!(overlaps("1/bucket/a", "1/bucket/a/b") && !overlaps("1/bucket/a", "1/bucket/ab"));
    }

    /// A job whose process is killed with SIGKILL shows as interrupted and holds nothing.
    #[test]
    fn killed_runner_leaves_nothing_stuck() {
        if std::env::var_os("CLOUDSYNC_QUEUE_CHILD").is_some() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "task::queue::tests::child_role", "--ignored", "--nocapture", "--test-threads=1"])
            .env("CLOUDSYNC_QUEUE_CHILD", d.path())
            .spawn()
            .unwrap();
        let s = store(d.path());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let job = loop {
            assert!(std::time::Instant::now() < deadline, "the child never started its job");
            if let Ok(id) = std::fs::read_to_string(d.path().join("job"))
                && let Ok(id) = id.trim().parse::<i64>()
            {
                break id;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(job_state(&s, job).unwrap().0, RUNNING);
        child.kill().unwrap();
        child.wait().unwrap();
        let (state, error) = job_state(&s, job).unwrap();
        assert_eq!(state, FAILED);
        assert_eq!(error.as_deref(), Some(INTERRUPTED));
        // Its lock is gone and its task can run again.
        lock_path(&s, 99, LockKind::Remote, "1/bucket", true, &CancelToken::new()).unwrap();
        let next = enqueue(&s, Some(7), false).unwrap();
        wait_turn(&s, next.job_id(), &CancelToken::new()).unwrap();
    }

    #[test]
    #[ignore = "run by killed_runner_leaves_nothing_stuck in a child process"]
    fn child_role() {
        let Some(dir) = std::env::var_os("CLOUDSYNC_QUEUE_CHILD") else { return };
        let dir = std::path::PathBuf::from(dir);
        let s = store(&dir);
        let job = enqueue(&s, Some(7), false).unwrap().job_id();
        wait_turn(&s, job, &CancelToken::new()).unwrap();
        lock_path(&s, job, LockKind::Remote, "1/bucket/folder", true, &CancelToken::new()).unwrap();
        std::fs::write(dir.join("job"), job.to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(60));
    }
}
