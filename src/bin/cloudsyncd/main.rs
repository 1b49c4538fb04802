//! `cloudsyncd`: the scheduling daemon. Thin: it runs the enabled tasks on their cron
//! schedules (in the system's local time zone) and serves the control socket; every job
//! runs through the library's job runner, exactly as `cloudsync task run` does.
//!
//! One current-thread tokio runtime; jobs and requests run on blocking threads. Idle, the
//! daemon sleeps until the next fire: task changes arrive through inotify on the
//! database directory, `core.reload` or SIGHUP, and a reconciliation timer (default
//! 300 s) re-reads the schedule and the wall clock. SIGTERM (or SIGINT) cancels running
//! jobs, waits until they are recorded ABORTED and exits 0. See docs/DAEMON.md.

mod args;
mod control;
mod dispatch;
mod jobs;
mod schedule;
mod system;
mod watch;

use args::{Args, Parsed};
use cloudsync::store::Store;
use cloudsync::task::runner::RunnerConfig;
use schedule::{Command, Schedule, SystemClock};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Notify, mpsc};

/// How long jobs get to record their end after SIGTERM (a script gets SIGTERM, then
/// SIGKILL after 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1), |k| std::env::var_os(k)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Help) => {
            print!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("cloudsyncd {}", cloudsync::VERSION);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("cloudsyncd: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if args.verbose > 0 { log::LevelFilter::Debug } else { log::LevelFilter::Info };
    system::init_logging(args.foreground || args.log_stderr, level);
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<ExitCode, String> {
    let db = args.db();
    let seed = args.seed.clone().unwrap_or_else(|| db.with_file_name("seed"));
    let group = match &args.group {
        Some(name) => match nix::unistd::Group::from_name(name) {
            Ok(Some(g)) => Some((name.clone(), g.gid.as_raw())),
            Ok(None) => return Err(format!("there is no group named {name:?}")),
            Err(e) => return Err(format!("cannot look up group {name:?}: {e}")),
        },
        None => None,
    };
    let store = Arc::new(Store::open(&db, &seed).map_err(|e| format!("cannot open {}: {e}", db.display()))?);
    if !store.secrets_available() {
        log::error!(
            "stored secrets cannot be decrypted with {}: jobs that need them will fail until the seed is restored",
            seed.display()
        );
    }
    // Snapshots and clones that jobs of a crashed process left behind (§7.5): the
    // jobs are gone, so nothing reads them any more. Quick, and silent where no ZFS is.
    match cloudsync::task::runner::cleanup_stale_snapshots(&store) {
        Ok(gone) if !gone.is_empty() => log::warn!("destroyed {} leftover snapshot(s) and clone(s)", gone.len()),
        Ok(_) => {}
        Err(e) => log::debug!("no ZFS snapshot sweep: {e}"),
    }
    let db = std::fs::canonicalize(&db).unwrap_or(db);
    let config: jobs::ConfigFn = {
        let (db, log_dir, policy) = (db.clone(), args.log_dir.clone(), args.policy());
        Box::new(move || RunnerConfig::beside(&db, log_dir.clone(), policy.clone()))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let code = runtime.block_on(daemon(args, store, db, config, group));
    // Requests still running on blocking threads (a slow listing) are not waited for.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

async fn daemon(
    args: Args,
    store: Arc<Store>,
    db: PathBuf,
    config: jobs::ConfigFn,
    group: Option<(String, u32)>,
) -> Result<ExitCode, String> {
    let sig = |kind: SignalKind| signal(kind).map_err(|e| format!("cannot handle signals: {e}"));
    let (mut sigterm, mut sigint, sighup) =
        (sig(SignalKind::terminate())?, sig(SignalKind::interrupt())?, sig(SignalKind::hangup())?);
    let notifier = system::Notifier::from_env();
    let policy = args.policy();
    let jobs = jobs::Jobs::new(store.clone(), config, tokio::runtime::Handle::current());
    let reload = Arc::new(Notify::new());
    let next_runs: Arc<Mutex<BTreeMap<i64, String>>> = Arc::default();
    let ctx = Arc::new(dispatch::Context {
        store: store.clone(),
        jobs: jobs.clone(),
        policy,
        db: db.clone(),
        next_runs: next_runs.clone(),
        reload: reload.clone(),
    });
    let access = Arc::new(control::Access { daemon_uid: nix::unistd::geteuid().as_raw(), group: group.clone() });

    // The first schedule, before anyone is told that we are ready.
    let s = store.clone();
    let (tasks, problems) = tokio::task::spawn_blocking(move || watch::load(&s))
        .await
        .map_err(|e| format!("reading the schedules failed: {e}"))?
        .map_err(|e| format!("cannot read the tasks: {e}"))?;
    for (id, why) in &problems {
        log::warn!("task {id} is not scheduled: {why}");
    }
    let (commands, mut scheduled) = mpsc::unbounded_channel();
    let _ = commands.send(Command::Set(tasks));

    let listener = control::bind(&args.socket, group.as_ref().map(|g| g.1))?;
    let listener = tokio::net::UnixListener::from_std(listener)
        .map_err(|e| format!("cannot listen on {}: {e}", args.socket.display()))?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(control::serve(listener, ctx, access, stopped.clone()));
    let watcher = {
        let (store, db, reload, commands) = (store.clone(), db.clone(), reload.clone(), commands.clone());
        let every = Duration::from_secs(args.reconcile);
        tokio::spawn(async move { watch::run(store, &db, reload, sighup, every, commands, stopped).await })
    };
    log::info!(
        "cloudsyncd {} ready: database {}, socket {}{}",
        cloudsync::VERSION,
        db.display(),
        args.socket.display(),
        group.as_ref().map(|(n, _)| format!(" (group {n})")).unwrap_or_default()
    );
    notifier.notify("READY=1");

    let fire = |task_id: i64| {
        let jobs = jobs.clone();
        tokio::task::spawn_blocking(move || match jobs.start(task_id, false) {
            Ok(jobs::Started::New(job)) => log::info!("task {task_id}: scheduled run started as job {job}"),
            Ok(jobs::Started::AlreadyQueued(job)) => {
                log::info!("task {task_id}: scheduled run skipped, job {job} is already waiting")
            }
            Err(e) => log::warn!("task {task_id}: scheduled run could not start: {e}"),
        });
    };
    let publish = |s: &Schedule<chrono::Local>| {
        let runs = s.next_runs().into_iter().filter_map(|(id, at)| Some((id, at?.to_rfc3339()))).collect();
        if let Ok(mut m) = next_runs.lock() {
            *m = runs;
        }
    };
    let mut schedule = Schedule::default();
    tokio::select! {
        () = schedule::run(&SystemClock, &mut schedule, &mut scheduled, fire, publish) => {}
        _ = sigterm.recv() => log::info!("SIGTERM: stopping"),
        _ = sigint.recv() => log::info!("SIGINT: stopping"),
    }

    notifier.notify("STOPPING=1");
    let _ = stop.send(true);
    let _ = server.await;
    let _ = watcher.await;
    let _ = std::fs::remove_file(&args.socket);
    jobs.shutdown();
    let live = jobs.live();
    if live > 0 {
        log::info!("aborting {live} running job(s)");
    }
    if jobs.wait_idle(STOP_TIMEOUT).await {
        log::info!("stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(format!("{} job(s) did not stop within {}s", jobs.live(), STOP_TIMEOUT.as_secs()))
    }
}
