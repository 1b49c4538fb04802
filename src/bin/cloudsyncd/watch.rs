//! Noticing task changes without a restart and without polling: inotify on the database's
//! directory wakes the daemon when the database or its WAL is written (by the CLI, the C
//! API, another process or this one), then the enabled tasks' schedules are re-read (a
//! cheap query that decrypts nothing) and handed to the scheduler. `core.reload`, SIGHUP
//! and a slow reconciliation timer (which also re-reads the wall clock) do the same.

use crate::schedule::{Command, TaskSchedule};
use cloudsync::store::Store;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::Signal;
use tokio::sync::{Notify, mpsc, watch};

/// Writes usually come in bursts (a transaction, a checkpoint): wait this long after the
/// first one, then read once.
const SETTLE: Duration = Duration::from_millis(200);

/// The enabled, valid schedules of the stored tasks, and the tasks that cannot be
/// scheduled with the reason.
pub fn load(store: &Store) -> cloudsync::Result<(Vec<TaskSchedule>, BTreeMap<i64, String>)> {
    let mut tasks = Vec::new();
    let mut problems = BTreeMap::new();
    for (id, body) in store.list_task_bodies()? {
        match body.map(|b| TaskSchedule::from_body(id, &b)) {
            Some(Ok(Some(t))) => tasks.push(t),
            Some(Ok(None)) => {}
            Some(Err(why)) => {
                problems.insert(id, why);
            }
            None => {
                problems.insert(id, "its stored body is damaged".into());
            }
        }
    }
    Ok((tasks, problems))
}

/// Watch the directory of database `db` for writes to it, its WAL or its journal. A
/// thread blocked in `read(2)` on the inotify descriptor (no wake-ups while nothing is
/// written) bumps the returned generation counter on each batch of relevant events.
pub fn watch_db(db: &Path) -> io::Result<watch::Receiver<u64>> {
    let dir = db.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = db.file_name().map(OsString::from).unwrap_or_default();
    let names: Vec<OsString> = ["", "-wal", "-journal"]
        .iter()
        .map(|suffix| {
            let mut n = name.clone();
            n.push(suffix);
            n
        })
        .collect();
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
    inotify.add_watch(
        dir,
        AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE,
    )?;
    let (tx, rx) = watch::channel(0u64);
    std::thread::Builder::new().name("cloudsyncd-inotify".into()).stack_size(64 * 1024).spawn(move || {
        loop {
            match inotify.read_events() {
                Ok(events) => {
                    if events.iter().any(|e| e.name.as_ref().is_some_and(|n| names.contains(n))) {
                        tx.send_modify(|generation| *generation += 1);
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    log::warn!("watching the database stopped: {e}");
                    return;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    })?;
    Ok(rx)
}

/// Send the scheduler the current schedules whenever they may have changed, until `stop`.
pub async fn run(
    store: Arc<Store>,
    db: &Path,
    reload: Arc<Notify>,
    mut hup: Signal,
    reconcile: Duration,
    scheduler: mpsc::UnboundedSender<Command>,
    mut stop: watch::Receiver<bool>,
) {
    let mut writes = match watch_db(db) {
        Ok(w) => Some(w),
        Err(e) => {
            log::warn!(
                "cannot watch {} for changes ({e}); task changes are seen on `core.reload`, SIGHUP or within {}s",
                db.display(),
                reconcile.as_secs()
            );
            None
        }
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + reconcile, reconcile);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reported = BTreeMap::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            () = reload.notified() => log::debug!("reloading the schedule (requested)"),
            _ = hup.recv() => log::info!("SIGHUP: reloading the schedule"),
            _ = tick.tick() => {}
            () = db_written(&mut writes) => {}
        }
        let s = store.clone();
        match tokio::task::spawn_blocking(move || load(&s)).await {
            Ok(Ok((tasks, problems))) => {
                for (id, why) in problems.iter().filter(|(id, why)| reported.get(*id) != Some(*why)) {
                    log::warn!("task {id} is not scheduled: {why}");
                }
                reported = problems;
                if scheduler.send(Command::Set(tasks)).is_err() {
                    return;
                }
            }
            Ok(Err(e)) => log::warn!("cannot read the tasks' schedules: {e}"),
            Err(e) => log::error!("reading the schedules failed: {e}"),
        }
    }
}

/// Wait for a write to the database, then for the burst to settle (writes during the
/// wait are covered by the read that follows).
async fn db_written(writes: &mut Option<watch::Receiver<u64>>) {
    let Some(rx) = writes else { return std::future::pending().await };
    if rx.changed().await.is_err() {
        *writes = None; // the watching thread ended (and said why)
        return std::future::pending().await;
    }
    tokio::time::sleep(SETTLE).await;
    rx.borrow_and_update();
}
