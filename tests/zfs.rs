//! ZFS on real pools (zfs-fuse: the real zpool/zfs commands, pool version 23, no `.zfs`
//! directory, so snapshots are read through a read-only clone): dataset resolution,
//! snapshot-before-push reading a consistent image, and no snapshot or clone surviving
//! any outcome (success, failure, abort, failing pre-script, a crash's leftovers).

mod common;
mod zfs_support;

use cloudsync::store::Store;
use cloudsync::task::model::{self, Caller};
use cloudsync::task::queue;
use cloudsync::task::runner;
use serde_json::json;
use std::time::{Duration, Instant};
use zfs_support::*;

#[test]
fn tasks_record_their_dataset_and_snapshot_rules_apply() {
    let (_turn, e) = env();
    let data = e.pool.dataset("data");
    std::fs::create_dir_all(data.join("sub")).unwrap();
    let id = e.task(&data.join("sub"), json!({}));
    let t = e.store.get_task(id).unwrap();
    assert_eq!(t.body["dataset"], json!(format!("{}/data", e.pool.name)));
    assert_eq!(t.body["relative_path"], json!("sub"));

    // V15: a child filesystem under the path refuses snapshot.
    e.pool.dataset("data/child");
    let errs = model::validate(
        model::CREATE,
        &e.body(&data, json!({"snapshot": true})),
        &e.store,
        Some(Caller { full_admin: true }),
        &e.cfg.policy,
    )
    .unwrap_err();
    assert!(errs.iter().any(|(k, m)| k.ends_with("snapshot") && m.contains("no further nesting")), "{errs:?}");
    // A sibling path without children is fine.
    assert!(
        model::validate(
            model::CREATE,
            &e.body(&data.join("sub"), json!({"snapshot": true})),
            &e.store,
            Some(Caller { full_admin: true }),
            &e.cfg.policy
        )
        .is_ok()
    );
}

#[test]
fn snapshot_push_reads_a_consistent_image_and_leaves_nothing() {
    let (_turn, e) = env();
    let data = e.pool.dataset("photos");
    let old: Vec<u8> = (0..3u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(data.join("big.bin"), &old).unwrap();
    std::fs::write(data.join("small.txt"), b"small").unwrap();
    let id = e.task(&data, json!({"snapshot": true, "bwlimit": [{"time": "00:00", "bandwidth": 1048576}]}));
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| e.run(id));
        // While the push runs, the live file changes; the snapshot does not.
        let deadline = Instant::now() + Duration::from_secs(20);
        while e.pool.leftovers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(500));
        std::fs::write(data.join("big.bin"), vec![0xEEu8; old.len()]).unwrap();
        h.join().unwrap()
    });
    assert_eq!(out.state, "SUCCESS", "{out:?}");
    let excerpt = out.logs_excerpt.unwrap_or_default();
    assert!(excerpt.contains("Created snapshot") && excerpt.contains("Destroyed snapshot"), "{excerpt}");
    assert!(e.remote("big.bin").unwrap() == old, "the push read the live file, not the snapshot");
    assert_eq!(e.remote("small.txt").unwrap(), b"small");
    assert_eq!(e.pool.leftovers(), Vec::<String>::new());
}

#[test]
fn no_snapshot_survives_failure_abort_or_a_failing_pre_script() {
    let (_turn, e) = env();
    let data = e.pool.dataset("docs");
    std::fs::write(data.join("a.txt"), b"alpha").unwrap();

    // The engine fails after the snapshot exists: the server refuses the credential.
    let bad = e
        .store
        .create_credential("bad", &{
            let mut provider = e.s3.credential_provider();
            provider.insert("secret_access_key".into(), json!("wrong"));
            provider
        })
        .unwrap()
        .id;
    let failing = e.task(&data, json!({"snapshot": true, "credentials": bad}));
    let out = e.run(failing);
    assert_eq!(out.state, "FAILED", "{out:?}");
    assert!(out.logs_excerpt.unwrap_or_default().contains("Destroyed snapshot"));
    assert_eq!(e.pool.leftovers(), Vec::<String>::new(), "after a failure");

    // A failing pre-script stops the job before any snapshot.
    let pre = e.task(&data, json!({"snapshot": true, "pre_script": "exit 3"}));
    let out = e.run(pre);
    assert_eq!(out.state, "FAILED");
    assert!(out.error.unwrap_or_default().contains("Pre-script failed with exit code 3"));
    assert_eq!(e.pool.leftovers(), Vec::<String>::new(), "after a failing pre-script");

    // An abort from another process while the snapshot is being read.
    std::fs::write(data.join("big.bin"), vec![7u8; 6 << 20]).unwrap();
    let slow = e.task(&data, json!({"snapshot": true, "bwlimit": [{"time": "00:00", "bandwidth": 1048576}]}));
    let other = Store::open(e.store.path(), &e.store.path().with_file_name("seed")).unwrap();
    let out = std::thread::scope(|s| {
        let h = s.spawn(|| e.run(slow));
        let deadline = Instant::now() + Duration::from_secs(20);
        while e.pool.leftovers().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(700));
        assert!(queue::request_abort(&other, slow).unwrap());
        h.join().unwrap()
    });
    assert_eq!(out.state, "ABORTED", "{out:?}");
    assert_eq!(e.pool.leftovers(), Vec::<String>::new(), "after an abort");
}

#[test]
fn leftovers_of_a_crash_are_destroyed() {
    let (_turn, e) = env();
    let data = e.pool.dataset("media");
    std::fs::write(data.join("a.txt"), b"alpha").unwrap();
    let id = e.task(&data, json!({"snapshot": true}));
    // A crashed job of this task and one of a task that no longer runs left these behind.
    let mine = format!("{}/media@cloud_sync-{id}-20200101000000", e.pool.name);
    let other = format!("{}/media@cloud_sync-9999-20200101000000", e.pool.name);
    let foreign = format!("{}/media@manual-keep", e.pool.name);
    for s in [&mine, &other, &foreign] {
        sh("zfs", &["snapshot", s]);
    }
    // The next run of the task clears its own leftovers...
    let out = e.run(id);
    assert_eq!(out.state, "SUCCESS", "{out:?}");
    assert!(out.logs_excerpt.unwrap_or_default().contains("Destroyed leftover"));
    let left = e.pool.leftovers();
    assert!(!left.contains(&mine) && left.contains(&other), "{left:?}");
    // ...and the daemon's start-up sweep clears those of jobs that are gone.
    let gone = runner::cleanup_stale_snapshots(&e.store).unwrap();
    assert!(gone.contains(&other), "{gone:?}");
    assert_eq!(e.pool.leftovers(), Vec::<String>::new());
    // Snapshots that are not cloudsync's are never touched.
    assert!(sh("zfs", &["list", "-H", "-t", "snapshot", "-o", "name"]).contains(&foreign));
}

#[test]
fn an_unmounted_dataset_fails_the_job_before_anything_is_touched() {
    let (_turn, e) = env();
    let data = e.pool.dataset("vault");
    std::fs::write(data.join("a.txt"), b"alpha").unwrap();
    let marker = e._tmp.path().join("pre-ran");
    let id = e.task(&data, json!({"pre_script": format!("touch {}", marker.display())}));
    sh("zfs", &["umount", &format!("{}/vault", e.pool.name)]);
    std::fs::create_dir_all(&data).unwrap(); // the empty directory left in the parent
    let out = e.run(id);
    assert_eq!(out.state, "FAILED", "{out:?}");
    assert!(out.error.unwrap_or_default().contains("is not mounted"));
    assert!(!marker.exists(), "the pre-script ran");
    assert!(e.remote("a.txt").is_none());
}

#[test]
fn the_daemon_sweeps_leftovers_at_start() {
    let (_turn, e) = env();
    let data = e.pool.dataset("archive");
    let left = format!("{}/archive@cloud_sync-4242-20200101000000", e.pool.name);
    zfs_support::sh("zfs", &["snapshot", &left]);
    let db = e.store.path().to_path_buf();
    let socket = e._tmp.path().join("d.sock");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cloudsyncd"))
        .args(["--foreground", "--db"])
        .arg(&db)
        .arg("--seed")
        .arg(db.with_file_name("seed"))
        .arg("--socket")
        .arg(&socket)
        .arg("--pool-root")
        .arg(&e.pool.root)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let came_up = socket.exists();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    assert!(came_up, "the daemon did not come up");
    assert_eq!(e.pool.leftovers(), Vec::<String>::new());
    drop(data);
}

/// Ctrl-C of `cloudsync task run` aborts the job: it is recorded ABORTED at once (not left
/// RUNNING for another process to notice), one line says so, the exit code is 130.
#[test]
fn ctrl_c_of_task_run_records_the_job_aborted() {
    let (_turn, e) = env();
    let data = e.pool.dataset("interrupted");
    std::fs::write(data.join("big.bin"), vec![5u8; 4 << 20]).unwrap();
    let slow = e.task(&data, json!({"bwlimit": [{"time": "00:00", "bandwidth": 262144}]}));
    let state = e.store.path().parent().unwrap().to_path_buf();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cloudsync"))
        .args(["task", "run", &slow.to_string()])
        .env("CLOUDSYNC_DB", e.store.path())
        .env("CLOUDSYNC_SEED", state.join("seed"))
        .env("CLOUDSYNC_LOG_DIR", e.cfg.log_dir.clone())
        .env("CLOUDSYNC_POOL_ROOT", &e.pool.root)
        .env("CLOUDSYNCD_SOCKET", state.join("no-daemon.sock"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let running =
        || queue::list_jobs(&e.store, Some(slow), 10).unwrap_or_default().iter().any(|j| j["state"] == "RUNNING");
    while !running() {
        assert!(Instant::now() < deadline, "the job never got going");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(1500)); // into the transfer
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("SIGINT: stopping"), "{err}");
    let jobs = queue::list_jobs(&e.store, Some(slow), 10).unwrap();
    assert_eq!(jobs[0]["state"], "ABORTED", "{jobs:?}");
}
