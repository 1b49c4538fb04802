//! Fixtures of the ZFS tests: zfs-fuse pools on files, a store, an S3 server.
#![allow(dead_code)]

use crate::common::*;
use cloudsync::engine::CancelToken;
use cloudsync::store::Store;
use cloudsync::task::model::{self, Caller, PathPolicy};
use cloudsync::task::runner::{self, RunnerConfig};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub fn sh(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Make sure a ZFS daemon answers (start zfs-fuse when none does).
pub fn zfs_ready() {
    static START: std::sync::Once = std::sync::Once::new();
    START.call_once(|| {
        if Command::new("zpool").arg("list").output().is_ok_and(|o| o.status.success()) {
            return;
        }
        // Left running for the later tests and test binaries (it serves every pool).
        #[allow(clippy::zombie_processes)]
        Command::new("zfs-fuse")
            .arg("--no-daemon")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("zfs-fuse (installed by scripts/setup-deps)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("zpool").arg("list").output().is_ok_and(|o| o.status.success()) {
            assert!(Instant::now() < deadline, "zfs-fuse did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

/// A pool on a file, mounted below a temporary pool root; destroyed when dropped.
pub struct Pool {
    pub name: String,
    pub root: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Pool {
    pub fn new() -> Pool {
        zfs_ready();
        static N: AtomicU32 = AtomicU32::new(0);
        let tmp = tempfile::tempdir().unwrap();
        let name = format!("cstest{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let img = tmp.path().join("pool.img");
        std::fs::File::create(&img).unwrap().set_len(256 << 20).unwrap();
        let root = tmp.path().join("mnt");
        let mp = root.join(&name);
        sh("zpool", &["create", "-m", mp.to_str().unwrap(), &name, img.to_str().unwrap()]);
        Pool { name, root, _tmp: tmp }
    }

    pub fn dataset(&self, rel: &str) -> PathBuf {
        sh("zfs", &["create", &format!("{}/{rel}", self.name)]);
        self.root.join(&self.name).join(rel)
    }

    /// The cloudsync snapshots and clones of this pool.
    pub fn leftovers(&self) -> Vec<String> {
        let all = sh("zfs", &["list", "-H", "-t", "all", "-o", "name"]);
        all.lines().filter(|l| l.starts_with(&self.name) && l.contains("cloud_sync-")).map(str::to_string).collect()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // zfs-fuse answers "pool is busy" for a moment after the last use of a mount.
        for _ in 0..50 {
            let ok = Command::new("zpool")
                .args(["destroy", "-f", &self.name])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            let _ =
                Command::new("zfs").args(["unmount", "-f", &self.name]).stderr(std::process::Stdio::null()).status();
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("warning: could not destroy test pool {}", self.name);
    }
}

pub struct Env {
    pub pool: Pool,
    pub s3: S3Server,
    pub store: Store,
    pub cfg: RunnerConfig,
    pub cred: i64,
    pub _tmp: tempfile::TempDir,
}

/// zfs-fuse can deadlock when two mounts race (two `zfs create` at once hang in D
/// state), so the tests of this file take turns.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn env() -> (std::sync::MutexGuard<'static, ()>, Env) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let pool = Pool::new();
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let _ = s3.remote("bucket", "", None);
    let store = Store::open(&tmp.path().join("state/cloudsync.db"), &tmp.path().join("state/seed")).unwrap();
    let cred = store.create_credential("s3", &s3.credential_provider()).unwrap().id;
    let cfg = RunnerConfig {
        log_dir: tmp.path().join("logs"),
        index: None,
        policy: PathPolicy { pool_root: pool.root.clone(), require_dataset: true },
    };
    (guard, Env { pool, s3, store, cfg, cred, _tmp: tmp })
}

impl Env {
    pub fn body(&self, path: &Path, extra: Value) -> Map<String, Value> {
        let mut body: Map<String, Value> = json!({
            "description": "zfs", "path": path.to_str().unwrap(), "credentials": self.cred,
            "attributes": {"bucket": "bucket", "folder": "backup"}, "direction": "PUSH", "transfer_mode": "SYNC",
        })
        .as_object()
        .cloned()
        .unwrap();
        for (k, v) in extra.as_object().unwrap() {
            body.insert(k.clone(), v.clone());
        }
        body
    }

    pub fn task(&self, path: &Path, extra: Value) -> i64 {
        let body = model::validate(
            model::CREATE,
            &self.body(path, extra),
            &self.store,
            Some(Caller { full_admin: true }),
            &self.cfg.policy,
        )
        .unwrap_or_else(|e| panic!("invalid task: {e:?}"));
        self.store.create_task(&body).unwrap().id
    }

    pub fn run(&self, id: i64) -> runner::JobOutcome {
        runner::run_task(&self.store, &self.cfg, id, false, None, CancelToken::new()).unwrap()
    }

    pub fn remote(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.s3.data.path().join("bucket/backup").join(key)).ok()
    }
}
