//! cloudsyncd end to end: the real binary against a temporary store, control socket and S3
//! server. Schedule pickup without a restart, runs and dry runs through the socket, abort,
//! the peer check, bad requests, SIGTERM during a job, and the CLI going through the daemon.

mod common;

use cloudsync::store::Store;
use cloudsync::task::api;
use cloudsync::task::model::{Caller, PathPolicy};
use common::*;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const ADMIN: Option<Caller> = Some(Caller { full_admin: true });

/// A temporary installation: state directory, a pool root whose `tank` is a different
/// filesystem (a directory in /dev/shm, reached through a symlink) so that jobs accept it
/// as a dataset, and an S3 server.
struct Env {
    tmp: tempfile::TempDir,
    _shm: tempfile::TempDir,
    s3: S3Server,
    pool: PathBuf,
    data: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let shm =
        tempfile::Builder::new().prefix("cloudsyncd-test").tempdir_in("/dev/shm").expect("a directory in /dev/shm");
    assert_ne!(
        std::fs::metadata(tmp.path()).unwrap().dev(),
        std::fs::metadata(shm.path()).unwrap().dev(),
        "these tests need /dev/shm on a filesystem of its own (it stands in for a dataset)"
    );
    let pool = tmp.path().join("mnt");
    std::fs::create_dir_all(&pool).unwrap();
    std::os::unix::fs::symlink(shm.path(), pool.join("tank")).unwrap();
    let data = pool.join("tank/data");
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/a.txt"), b"alpha").unwrap();
    std::fs::write(data.join("b.bin"), vec![7u8; 100_000]).unwrap();
    let s3 = S3Server::start();
    let _ = s3.remote("bucket", "", None); // creates the bucket
    Env { tmp, _shm: shm, s3, pool, data }
}

impl Env {
    fn db(&self) -> PathBuf {
        self.tmp.path().join("state/cloudsync.db")
    }
    fn seed(&self) -> PathBuf {
        self.tmp.path().join("state/seed")
    }
    fn socket(&self) -> PathBuf {
        self.tmp.path().join("run/cloudsyncd.sock")
    }

    /// The store, opened by this process (as the CLI or a library user would).
    fn store(&self) -> Store {
        Store::open(&self.db(), &self.seed()).unwrap()
    }

    fn policy(&self) -> PathPolicy {
        PathPolicy { pool_root: self.pool.clone(), require_dataset: true }
    }

    fn credential_body(&self) -> Value {
        json!({"name": "s3", "provider": {"type": "S3", "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
               "endpoint": self.s3.endpoint, "force_path_style": true}})
    }

    fn task_body(&self, credential: i64, extra: Value) -> Value {
        let mut body = json!({"description": "nightly", "path": self.data, "credentials": credential,
                              "attributes": {"bucket": "bucket", "folder": "backup"}, "direction": "PUSH",
                              "transfer_mode": "SYNC", "schedule": {"minute": "0", "hour": "4"}});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    /// A credential and a task created through the library (another process, as far as the
    /// daemon is concerned).
    fn task_via_library(&self, extra: Value) -> i64 {
        let store = self.store();
        let cred = match api::credential_list(&store, false).unwrap().first() {
            Some(c) => c["id"].as_i64().unwrap(),
            None => api::credential_create(&store, &self.credential_body()).unwrap()["id"].as_i64().unwrap(),
        };
        let t = api::task_create(&store, &self.task_body(cred, extra), ADMIN, &self.policy())
            .unwrap_or_else(|e| panic!("invalid task: {e}"));
        t["id"].as_i64().unwrap()
    }

    fn remote_files(&self, prefix: &str) -> Vec<String> {
        let side = Side { remote: self.s3.remote("bucket", prefix, None), local_root: None };
        side.file_paths().into_iter().collect()
    }

    fn start(&self, extra: &[&str]) -> Daemon {
        Daemon::start(self, extra)
    }
}

/// A line-delimited JSON client.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(socket: &Path) -> Client {
        let s = UnixStream::connect(socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Client { reader: BufReader::new(s.try_clone().unwrap()), writer: s }
    }

    fn raw(&mut self, line: &[u8]) -> Value {
        self.writer.write_all(line).unwrap();
        let mut answer = String::new();
        self.reader.read_line(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("not JSON ({e}): {answer:?}"))
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let mut line = json!({"id": 1, "method": method, "params": params}).to_string().into_bytes();
        line.push(b'\n');
        self.raw(&line)
    }
}

/// The daemon binary, killed if a test leaves it running.
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    notify: UnixDatagram,
}

impl Daemon {
    fn start(e: &Env, extra: &[&str]) -> Daemon {
        static STARTS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let notify_path = e.tmp.path().join(format!("notify-{n}"));
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let log = e.tmp.path().join(format!("daemon-{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_cloudsyncd"))
            .arg("--foreground")
            .arg("--db")
            .arg(e.db())
            .arg("--seed")
            .arg(e.seed())
            .arg("--pool-root")
            .arg(&e.pool)
            .arg("--log-dir")
            .arg(e.tmp.path().join("jobs"))
            .arg("--socket")
            .arg(e.socket())
            .args(extra)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("CLOUDSYNCD_GROUP")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut d = Daemon { child, socket: e.socket(), log, notify };
        // sd_notify readiness: the socket is bound and the schedule loaded.
        assert_eq!(d.notification(), "READY=1", "log:\n{}", d.log());
        d
    }

    fn notification(&mut self) -> String {
        let mut buf = [0u8; 256];
        match self.notify.recv(&mut buf) {
            Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Err(e) => format!("no notification ({e}); exited: {:?}", self.child.try_wait()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket)
    }

    /// The result of a call (panics on an error answer).
    fn result(&self, method: &str, params: Value) -> Value {
        let a = self.client().call(method, params.clone());
        assert!(a.get("error").is_none(), "{method} {params}: {a}\nlog:\n{}", self.log());
        a["result"].clone()
    }

    /// The job record once the job has ended.
    fn wait_job(&self, job: i64, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let rec = self.result("core.job", json!([job]));
            if matches!(rec["state"].as_str(), Some("SUCCESS" | "FAILED" | "ABORTED")) {
                return rec;
            }
            assert!(Instant::now() < deadline, "job {job} did not end: {rec}\nlog:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "cloudsyncd did not exit\nlog:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn terminate(&mut self) -> ExitStatus {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM)
            .unwrap();
        self.wait_exit(Duration::from_secs(30))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live (non-zombie) processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = stat.rfind(')').is_some_and(|i| stat[i + 1..].trim_start().starts_with('Z'));
        if !zombie && std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
            out.push(pid);
        }
    }
    out
}

fn wait_for_process(argv: &[&str], d: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes(argv).is_empty() {
        assert!(Instant::now() < deadline, "{argv:?} never started\nlog:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ping_readiness_and_garbage_lines_get_error_objects() {
    let e = env();
    let mut d = e.start(&[]);
    assert_eq!(d.result("core.ping", json!([])), "pong");
    let mode = std::fs::metadata(e.socket()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the socket is private by default");

    let mut c = d.client();
    let code = |a: &Value| a["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {a}")).to_string();
    assert_eq!(code(&c.raw(b"garbage\n")), "EINVAL");
    assert_eq!(code(&c.raw(b"\x00\xff\xfe binary\n")), "EINVAL");
    assert_eq!(code(&c.raw(b"{\"id\": 3, \"method\": 42}\n")), "EINVAL");
    let unknown = c.raw(b"{\"id\": 4, \"method\": \"no.such.method\"}\n");
    assert_eq!((code(&unknown), unknown["id"].clone()), ("ENOMETHOD".to_string(), json!(4)));
    assert_eq!(code(&c.call("cloudsync.sync", json!(["one"]))), "EINVAL");
    let mut huge = vec![b'['; 1024 * 1024 + 100];
    huge.push(b'\n');
    assert_eq!(code(&c.raw(&huge)), "E2BIG");
    // The same connection still works, and so does a new one.
    assert_eq!(c.call("core.ping", json!([]))["result"], "pong");

    // A client that sends half a request and stalls holds up nobody.
    let mut stalled = UnixStream::connect(e.socket()).unwrap();
    stalled.write_all(b"{\"id\": 1, \"meth").unwrap();
    let started = Instant::now();
    assert_eq!(d.result("core.ping", json!([])), "pong");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A client that disconnects in the middle of a request does no harm either.
    let mut gone = UnixStream::connect(e.socket()).unwrap();
    gone.write_all(b"{\"id\": 1, \"method\": \"cloudsync.query\"}\n").unwrap();
    drop(gone);
    assert!(d.result("core.methods", json!([])).as_array().is_some_and(|m| m.len() > 10));
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon is still up");

    assert!(d.terminate().success(), "log:\n{}", d.log());
    assert_eq!(d.notification(), "STOPPING=1");
    assert!(!e.socket().exists(), "the socket is removed at exit");
}

#[test]
fn a_task_created_after_start_is_scheduled_without_a_restart() {
    let e = env();
    let d = e.start(&[]);
    assert_eq!(d.result("core.schedule", json!([])), json!([]));
    // Created by another process through the library; nobody tells the daemon.
    let started = Instant::now();
    let id = e.task_via_library(json!({"schedule": {"minute": "17", "hour": "3"}}));
    let next_run = loop {
        let schedule = d.result("core.schedule", json!([]));
        if let Some(entry) = schedule.as_array().unwrap().iter().find(|x| x["id"] == id) {
            break entry["next_run"].as_str().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "not picked up: {schedule}\nlog:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(next_run.contains("T03:17:00"), "{next_run}");
    let parsed = chrono::DateTime::parse_from_rfc3339(&next_run).unwrap();
    let ahead = parsed.signed_duration_since(chrono::Utc::now());
    assert!(ahead > chrono::TimeDelta::zero() && ahead <= chrono::TimeDelta::hours(25), "{next_run}");
    assert_eq!(d.result("cloudsync.query", json!([id]))["next_run"], next_run.as_str());

    // Disabled by another process: it leaves the schedule.
    let store = e.store();
    api::task_update(&store, id, &json!({"enabled": false}), ADMIN, &e.policy()).unwrap();
    let started = Instant::now();
    while d.result("core.schedule", json!([])) != json!([]) {
        assert!(started.elapsed() < Duration::from_secs(10), "still scheduled\nlog:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(d.result("cloudsync.query", json!([id]))["next_run"], Value::Null);
    // Changes through the socket apply at once.
    d.result("cloudsync.update", json!([id, {"enabled": true, "schedule": {"minute": "*/5", "hour": "*"}}]));
    let started = Instant::now();
    while d.result("cloudsync.query", json!([id]))["next_run"].is_null() {
        assert!(started.elapsed() < Duration::from_secs(5), "not rescheduled\nlog:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sync_and_dry_run_through_the_socket_and_the_cli() {
    let e = env();
    let d = e.start(&[]);
    let cred = d.result("cloudsync.credentials.create", json!([e.credential_body()]));
    assert_eq!(cred["provider"]["secret_access_key"], "********", "never revealed over the socket");
    let task = d.result("cloudsync.create", json!([e.task_body(cred["id"].as_i64().unwrap(), json!({}))]));
    let id = task["id"].as_i64().unwrap();

    let dry = d.result("cloudsync.sync", json!([id, {"dry_run": true}])).as_i64().unwrap();
    let rec = d.wait_job(dry, Duration::from_secs(60));
    assert_eq!(rec["state"], "SUCCESS", "{rec}");
    assert_eq!(rec["dry_run"], true);
    assert!(e.remote_files("backup").is_empty(), "a dry run transfers nothing");

    let real = d.result("cloudsync.sync", json!([id])).as_i64().unwrap();
    let rec = d.wait_job(real, Duration::from_secs(60));
    assert_eq!(rec["state"], "SUCCESS", "{rec}");
    assert_eq!(rec["progress"]["percent"], 100, "{rec}");
    assert!(rec["logs_excerpt"].as_str().unwrap().contains("Copied (new)"), "{rec}");
    assert_eq!(e.remote_files("backup"), vec!["b.bin", "docs/a.txt"]);
    let jobs = d.result("core.get_jobs", json!([id]));
    let ids: Vec<i64> = jobs.as_array().unwrap().iter().map(|j| j["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![real, dry], "newest first");
    assert_eq!(d.result("cloudsync.query", json!([id]))["job"]["state"], "SUCCESS", "persisted into the task");

    // The CLI goes through the daemon when it serves the same database.
    std::fs::write(e.data.join("c.txt"), b"new").unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cloudsync"))
            .args(args)
            .env("CLOUDSYNC_DB", e.db())
            .env("CLOUDSYNC_SEED", e.seed())
            .env("CLOUDSYNC_POOL_ROOT", &e.pool)
            .env("CLOUDSYNCD_SOCKET", e.socket())
            .output()
            .unwrap()
    };
    let out = cli(&["task", "run", &id.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let outcome: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome["state"], "SUCCESS");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Copied (new)"), "the job log is followed");
    assert!(e.remote_files("backup").contains(&"c.txt".to_string()));
    assert_eq!(d.log().matches("cloudsync.sync done").count(), 3, "the CLI's run went through the daemon");
    let out = cli(&["task", "abort", &id.to_string()]);
    assert!(out.status.success());
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"aborted": false}));
    // --follow through the daemon: the log on stderr, one sentence; `job abort` and the
    // next run as the daemon schedules it.
    let out = cli(&["task", "run", "--follow", &id.to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let job = stdout
        .trim()
        .strip_prefix("Job ")
        .and_then(|r| r.strip_suffix(" succeeded."))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("There was nothing to transfer"), "the job log is followed");
    assert_eq!(d.log().matches("cloudsync.sync done").count(), 4);
    let out = cli(&["job", "abort", job]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"aborted": false}));
    assert!(d.log().contains("core.job_abort"), "asked through the daemon");
    let out = cli(&["task", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let daemons = d.result("core.schedule", json!([]));
    let theirs = daemons.as_array().unwrap().iter().find(|r| r["id"] == json!(id)).map(|r| r["next_run"].clone());
    let ours = listed.as_array().unwrap().iter().find(|t| t["id"] == json!(id)).map(|t| t["next_run"].clone());
    assert_eq!(ours, theirs.or(Some(Value::Null)), "the daemon's next run: {listed}");
    // A daemon serving another database is not used: the CLI runs the job itself.
    let out = Command::new(env!("CARGO_BIN_EXE_cloudsync"))
        .args(["task", "run", "1"])
        .env("CLOUDSYNC_DB", e.tmp.path().join("other/cloudsync.db"))
        .env("CLOUDSYNCD_SOCKET", e.socket())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("task 1 does not exist"), "{out:?}");
    assert_eq!(d.log().matches("cloudsync.sync").count(), 4);

    // A job that fails through the daemon: one sentence in the record, at the end of
    // `task run --follow` and in the daemon's log (syslog; stderr here) at error level,
    // its fields in error_details, and rclone's exit code.
    let pull =
        json!({"direction": "PULL", "transfer_mode": "COPY", "attributes": {"bucket": "bucket", "folder": "nope"}});
    let pull = d.result("cloudsync.create", json!([e.task_body(cred["id"].as_i64().unwrap(), pull)]));
    let out = cli(&["task", "run", "--follow", &pull["id"].to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let sentence = "Directory does not exist [s3:bucket/nope]";
    assert!(stdout.starts_with("Job ") && stdout.trim_end().ends_with(&format!(" failed: {sentence}")), "{stdout}");
    let rec = d.result("cloudsync.query", json!([pull["id"]]))["job"].clone();
    assert_eq!((rec["error"].as_str(), rec["error_details"]["exit_code"].as_i64()), (Some(sentence), Some(3)), "{rec}");
    assert_eq!(rec["error_details"]["provider"], "S3", "{rec}");
    let line = d.log().lines().find(|l| l.contains(sentence)).map(str::to_string).unwrap_or_default();
    assert!(line.contains("ERROR") && line.contains("FAILED"), "the daemon's log line: {line:?}\n{}", d.log());
}

#[test]
fn abort_through_the_socket_ends_the_job_and_its_script() {
    let e = env();
    let d = e.start(&[]);
    let id = e.task_via_library(json!({"pre_script": "sleep 31.7"}));
    let job = d.result("cloudsync.sync", json!([id])).as_i64().unwrap();
    wait_for_process(&["sleep", "31.7"], &d);
    assert_eq!(d.result("core.job", json!([job]))["state"], "RUNNING");
    // One running and one waiting: a further request returns the waiting job.
    let waiting = d.result("cloudsync.sync", json!([id])).as_i64().unwrap();
    assert_ne!(waiting, job);
    assert_eq!(d.result("cloudsync.sync", json!([id, {"dry_run": true}])), waiting);
    assert_eq!(d.result("core.job", json!([waiting]))["state"], "WAITING");

    let started = Instant::now();
    assert_eq!(d.result("cloudsync.abort", json!([id])), true);
    let rec = d.wait_job(job, Duration::from_secs(10));
    assert_eq!(rec["state"], "ABORTED", "{rec}");
    assert!(started.elapsed() < Duration::from_secs(10), "abort took {:?}", started.elapsed());
    assert_eq!(d.wait_job(waiting, Duration::from_secs(10))["state"], "ABORTED");
    assert!(processes(&["sleep", "31.7"]).is_empty(), "the script's process survived the abort");
    assert_eq!(d.result("cloudsync.abort", json!([id])), false, "nothing left to abort");
}

#[test]
fn sigterm_during_a_job_records_it_aborted_and_leaves_no_process() {
    let e = env();
    let mut d = e.start(&[]);
    let id = e.task_via_library(json!({"pre_script": "sleep 32.9"}));
    let job = d.result("cloudsync.sync", json!([id])).as_i64().unwrap();
    wait_for_process(&["sleep", "32.9"], &d);
    let started = Instant::now();
    let status = d.terminate();
    assert!(status.success(), "exit status {status:?}\nlog:\n{}", d.log());
    assert!(started.elapsed() < Duration::from_secs(15), "stopping took {:?}", started.elapsed());
    assert!(processes(&["sleep", "32.9"]).is_empty(), "the script's process survived the daemon");
    let store = e.store();
    assert_eq!(api::job_get(&store, job).unwrap()["state"], "ABORTED");
    assert_eq!(store.get_task(id).unwrap().job.unwrap()["state"], "ABORTED");
    assert!(!e.socket().exists());
}

/// Connect as uid and gid 65534 from a forked child, send `core.ping`, and return what the
/// daemon answered. After the fork only system calls run (the parent has threads).
fn ping_as_nobody(socket: &Path) -> String {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket as new_socket};
    use nix::unistd::{ForkResult, Gid, Uid};
    use std::os::fd::AsRawFd;
    let addr = UnixAddr::new(socket).unwrap();
    let (from_child, to_parent) = nix::unistd::pipe().unwrap();
    // SAFETY: the child only makes system calls on memory prepared before the fork, then
    // leaves with _exit.
    match unsafe { nix::unistd::fork() }.unwrap() {
        ForkResult::Child => {
            drop(from_child);
            let mut buf = [0u8; 2048];
            let mut len = 0;
            let connected = (|| {
                nix::unistd::setgroups(&[]).ok()?;
                nix::unistd::setgid(Gid::from_raw(65534)).ok()?;
                nix::unistd::setuid(Uid::from_raw(65534)).ok()?;
                let fd = new_socket(AddressFamily::Unix, SockType::Stream, SockFlag::empty(), None).ok()?;
                connect(fd.as_raw_fd(), &addr).ok()?;
                // A refused peer may be answered and closed before this write lands: EPIPE
                // then, but the answer is already queued for reading.
                let _ = nix::unistd::write(&fd, b"{\"id\": 1, \"method\": \"core.ping\"}\n");
                while len < buf.len() {
                    match nix::unistd::read(&fd, &mut buf[len..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => len += n,
                    }
                    if buf[..len].contains(&b'\n') {
                        break;
                    }
                }
                Some(())
            })();
            let _ = match connected {
                Some(()) => nix::unistd::write(&to_parent, &buf[..len]),
                None => nix::unistd::write(&to_parent, b"the child could not connect"),
            };
            // SAFETY: ends the forked child without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(to_parent);
            let mut answer = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(from_child), &mut answer).unwrap();
            nix::sys::wait::waitpid(child, None).unwrap();
            answer
        }
    }
}

#[test]
fn a_peer_that_is_not_allowed_is_refused() {
    assert!(nix::unistd::geteuid().is_root(), "this test runs a client as another user: run it as root");
    let e = env();
    let d = e.start(&[]);
    // Let anyone reach the socket, so that the peer check is what decides.
    std::fs::set_permissions(e.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(e.socket().parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(e.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let answer = ping_as_nobody(&e.socket());
    let v: Value = serde_json::from_str(answer.trim()).unwrap_or_else(|_| panic!("{answer}"));
    assert_eq!(v["error"]["code"], "EPERM", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("uid 65534"), "{v}");
    assert!(d.log().contains("refused a connection"), "{}", d.log());
    assert_eq!(d.result("core.ping", json!([])), "pong", "root is still served");
    drop(d);

    // With --group, members are served (and the socket is 0660 in that group).
    let group =
        nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(65534)).unwrap().expect("a group with gid 65534");
    let d = e.start(&["--group", &group.name]);
    let md = std::fs::metadata(e.socket()).unwrap();
    assert_eq!((md.permissions().mode() & 0o777, md.gid()), (0o660, 65534));
    std::fs::set_permissions(e.socket().parent().unwrap(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let answer = ping_as_nobody(&e.socket());
    assert!(answer.contains("\"pong\""), "{answer}\nlog:\n{}", d.log());
}

#[test]
fn a_task_due_every_minute_runs_by_itself() {
    let e = env();
    let d = e.start(&[]);
    let id = e.task_via_library(json!({"schedule": {"minute": "*", "hour": "*"}}));
    // The next minute boundary, plus the time the job takes: at most about 61 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let jobs = d.result("core.get_jobs", json!([id]));
        if let Some(j) = jobs.as_array().and_then(|a| a.first()) {
            break j["id"].as_i64().unwrap();
        }
        assert!(Instant::now() < deadline, "the task did not fire\nlog:\n{}", d.log());
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(d.wait_job(job, Duration::from_secs(60))["state"], "SUCCESS");
    assert!(d.log().contains(&format!("task {id}: scheduled run started as job {job}")), "{}", d.log());
    assert_eq!(e.remote_files("backup"), vec!["b.bin", "docs/a.txt"]);
}

#[test]
fn the_keychain_through_the_socket_never_sends_a_private_key_back() {
    let e = env();
    let mut d = e.start(&[]);
    let pair = d.result("keychaincredential.generate_ssh_key_pair", json!([]));
    assert!(pair["private_key"].as_str().unwrap().starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    let created =
        d.result("keychaincredential.create", json!([{"name": "nas key", "type": "SSH_KEY_PAIR", "attributes": pair}]));
    assert_eq!(created["attributes"]["private_key"], "********");
    assert_eq!(created["attributes"]["public_key"], pair["public_key"]);
    let id = created["id"].as_i64().unwrap();
    let listed = d.result("keychaincredential.query", json!([]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains("PRIVATE KEY"), "{listed}");
    let mut c = d.client();
    let bad = c.call(
        "keychaincredential.create",
        json!([{"name": "x", "type": "SSH_KEY_PAIR",
        "attributes": {"private_key": "not a key"}}]),
    );
    assert_eq!(bad["error"]["code"], "EINVAL", "{bad}");
    assert!(bad.to_string().contains("not in a format cloudsync reads"), "{bad}");
    assert_eq!(d.result("keychaincredential.delete", json!([id])), json!(true));
    assert_eq!(d.result("keychaincredential.query", json!([])), json!([]));
    assert!(d.terminate().success(), "log:\n{}", d.log());
}
