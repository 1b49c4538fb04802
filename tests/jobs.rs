//! The job runner end to end: real jobs against a real S3 server, scripts, dry runs,
//! aborts, pre-flight checks, restore, and no secret anywhere it must not be.

mod common;

use cloudsync::engine::CancelToken;
use cloudsync::store::Store;
use cloudsync::task::model::{self, Caller, PathPolicy};
use cloudsync::task::queue;
use cloudsync::task::runner::{self, RunnerConfig};
use common::*;
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SECRET_PW: &str = "crypt-password-SECRET-1";
const SECRET_SALT: &str = "crypt-salt-SECRET-2";

struct Env {
    tmp: tempfile::TempDir,
    s3: S3Server,
    store: Store,
    cfg: RunnerConfig,
    cred: i64,
    data: PathBuf,
}

fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let _ = s3.remote("bucket", "", None); // creates the bucket
    let store = Store::open(&tmp.path().join("state/cloudsync.db"), &tmp.path().join("state/seed")).unwrap();
    let cred = store.create_credential("s3", &s3.credential_provider()).unwrap().id;
    let pool = tmp.path().join("mnt");
    let data = pool.join("tank/data");
    std::fs::create_dir_all(data.join("docs")).unwrap();
    std::fs::write(data.join("docs/a.txt"), b"alpha").unwrap();
    std::fs::write(data.join("b.bin"), vec![1u8; 200_000]).unwrap();
    let cfg = RunnerConfig {
        log_dir: tmp.path().join("logs"),
        index: None,
        policy: PathPolicy { pool_root: pool, require_dataset: false },
    };
    Env { tmp, s3, store, cfg, cred, data }
}

impl Env {
    fn task(&self, extra: Value) -> i64 {
        let mut body: Map<String, Value> = json!({
            "description": "nightly", "path": self.data.to_str().unwrap(), "credentials": self.cred,
            "attributes": {"bucket": "bucket", "folder": "backup"}, "direction": "PUSH", "transfer_mode": "SYNC",
        })
        .as_object()
        .cloned()
        .unwrap();
        for (k, v) in extra.as_object().unwrap() {
            body.insert(k.clone(), v.clone());
        }
        let body =
            model::validate(model::CREATE, &body, &self.store, Some(Caller { full_admin: true }), &self.cfg.policy)
                .unwrap_or_else(|e| panic!("invalid task: {e:?}"));
        self.store.create_task(&body).unwrap().id
    }

    fn run(&self, id: i64, dry_run: bool) -> runner::JobOutcome {
        runner::run_task(&self.store, &self.cfg, id, dry_run, None, CancelToken::new()).unwrap()
    }

    fn remote_files(&self, prefix: &str) -> Vec<String> {
        let side = Side { remote: self.s3.remote("bucket", prefix, None), local_root: None };
        side.file_paths().into_iter().collect()
    }
}

fn all_bytes_under(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.extend(std::fs::read(e.path()).unwrap_or_default());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn push_succeeds_and_the_state_persists() {
    let e = env();
    let id = e.task(json!({}));
    let out = e.run(id, false);
    assert_eq!(out.state, "SUCCESS", "{out:?}");
    assert_eq!(e.remote_files("backup"), vec!["b.bin", "docs/a.txt"]);
    let excerpt = out.logs_excerpt.clone().unwrap();
    assert!(excerpt.contains("Copied (new)") && !excerpt.contains("Locking"), "{excerpt}");
    let record = queue::job_record(&e.store, out.job_id).unwrap();
    assert_eq!(record["progress"]["description"], "done", "{record}");
    assert_eq!((out.exit_code(), &record["error_details"]), (0, &Value::Null));
    let task = e.store.get_task(id).unwrap();
    assert_eq!(task.job.unwrap()["state"], "SUCCESS");
    // After a restart (a new store instance), the last state is still there.
    let again = Store::open(&e.tmp.path().join("state/cloudsync.db"), &e.tmp.path().join("state/seed")).unwrap();
    assert_eq!(again.get_task(id).unwrap().job.unwrap()["state"], "SUCCESS");
}

#[test]
fn secrets_reach_no_log_record_or_script_environment() {
    let e = env();
    let dump = e.tmp.path().join("env-dumps");
    std::fs::create_dir_all(&dump).unwrap();
    let id = e.task(json!({
        "encryption": true, "filename_encryption": true, "encryption_password": SECRET_PW, "encryption_salt": SECRET_SALT,
        "pre_script": format!("env > {}/pre.env\necho pre running", dump.display()),
        "post_script": format!("#!/bin/sh\nenv > {}/post.env\necho post running", dump.display()),
    }));
    let out = e.run(id, false);
    assert_eq!(out.state, "SUCCESS", "{out:?}");
    let pre = std::fs::read_to_string(dump.join("pre.env")).unwrap();
    assert!(
        pre.contains("CLOUD_SYNC_DIRECTION=PUSH")
            && pre.contains("CLOUD_SYNC_ENCRYPTION=1")
            && pre.contains("CLOUD_SYNC_BUCKET=bucket"),
        "{pre}"
    );
    assert!(pre.contains(&format!("CLOUD_SYNC_PATH={}", e.data.display())));
    let mut everything = all_bytes_under(e.tmp.path());
    everything.extend(serde_json::to_vec(&out).unwrap_or_default());
    everything.extend(format!("{:?}", e.store.get_task(id).unwrap().job).into_bytes());
    for secret in [SECRET_PW, SECRET_SALT, SECRET_KEY] {
        assert!(!contains(&everything, secret), "{secret} leaked into a log, record, script environment or file");
    }
    // The data is encrypted on the remote: no plaintext name.
    assert!(e.remote_files("backup").iter().all(|n| !n.contains("a.txt")));
}

#[test]
fn pre_script_failure_is_reported_exactly() {
    let e = env();
    let id = e.task(json!({"pre_script": "echo Custom error\nexit 123"}));
    let out = e.run(id, false);
    assert_eq!(out.state, "FAILED");
    assert_eq!(out.error.as_deref(), Some("Pre-script failed with exit code 123"));
    // The excerpt holds the script's lines only: locking and starting are progress
    // steps, as TrueNAS reports them (its test asserts this excerpt exactly).
    assert_eq!(out.logs_excerpt.as_deref(), Some("[Pre-script] Custom error\n"));
    assert_eq!(out.exit_code(), 1);
    assert!(e.remote_files("backup").is_empty(), "nothing transferred");
}

#[test]
fn post_script_does_not_run_after_a_failed_transfer() {
    let e = env();
    let marker = e.tmp.path().join("post-ran");
    // A credential whose server refuses connections.
    let dead = e
        .store
        .create_credential(
            "dead",
            json!({"type": "S3", "access_key_id": "a", "secret_access_key": "b", "endpoint": "http://127.0.0.1:9"})
                .as_object()
                .unwrap(),
        )
        .unwrap()
        .id;
    let id = e.task(json!({"credentials": dead, "post_script": format!("touch {}", marker.display())}));
    let out = e.run(id, false);
    assert_eq!(out.state, "FAILED");
    // One sentence naming the cause and the remote; the fields for programs.
    let err = out.error.clone().unwrap();
    eprintln!("job error: {err}\ndetails: {:?}", out.error_details);
    assert!(!err.contains('\n') && err.contains("connection refused"), "{err}");
    let d = out.error_details.clone().unwrap();
    assert_eq!((d.kind.as_str(), d.exit_code, d.provider.as_deref()), ("network", 5, Some("S3")), "{d:?}");
    assert!(d.remote.is_some_and(|r| err.contains(&r)), "{err}");
    assert_eq!(out.exit_code(), 5);
    let record = queue::job_record(&e.store, out.job_id).unwrap();
    assert_eq!(
        (record["error"].as_str(), record["error_details"]["exit_code"].as_i64()),
        (Some(err.as_str()), Some(5))
    );
    assert!(!marker.exists(), "the post-script ran after a failure");
}

#[test]
fn dry_run_runs_no_script_and_changes_nothing() {
    let e = env();
    let marker = e.tmp.path().join("ran");
    let id = e.task(json!({"pre_script": format!("touch {}", marker.display()), "post_script": format!("touch {}", marker.display())}));
    let out = e.run(id, true);
    assert_eq!(out.state, "SUCCESS");
    assert!(!marker.exists());
    let excerpt = out.logs_excerpt.unwrap();
    assert!(
        excerpt.contains("Dry run: pre-script skipped") && excerpt.contains("Dry run: post-script skipped"),
        "{excerpt}"
    );
    assert!(e.remote_files("backup").is_empty());
}

#[test]
fn abort_from_another_store_instance() {
    let e = env();
    std::fs::write(e.data.join("big"), vec![0u8; 8 * 1024 * 1024]).unwrap();
    let id = e.task(json!({"bwlimit": [{"time": "00:00", "bandwidth": 512 * 1024}]}));
    let other = Store::open(&e.tmp.path().join("state/cloudsync.db"), &e.tmp.path().join("state/seed")).unwrap();
    let started = Instant::now();
    std::thread::scope(|s| {
        let h = s.spawn(|| e.run(id, false));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(queue::request_abort(&other, id).unwrap(), "a live job to abort");
        let out = h.join().unwrap();
        assert_eq!(out.state, "ABORTED", "{out:?}");
    });
    assert!(started.elapsed() < Duration::from_secs(12), "abort took {:?}", started.elapsed());
    assert!(!e.remote_files("backup").contains(&"big".to_string()));
}

#[test]
fn pull_preflight_and_restore() {
    let e = env();
    let push = e.task(json!({}));
    assert_eq!(e.run(push, false).state, "SUCCESS");
    // A PULL from a folder that does not exist fails before touching anything.
    let missing = e.task(json!({"direction": "PULL", "attributes": {"bucket": "bucket", "folder": "nope"}}));
    let out = e.run(missing, false);
    assert_eq!(out.state, "FAILED");
    // TrueNAS's text (V20), naming the remote that lacks it; rclone's exit code 3.
    assert_eq!(out.error.as_deref(), Some("Directory does not exist [s3:bucket/nope]"));
    assert_eq!((out.exit_code(), out.error_details.unwrap().kind.as_str()), (3, "dir_not_found"));
    // Restore: the reversed, disabled task, run on demand into another directory.
    let stored = e.store.get_task(push).unwrap().body;
    let restore_path = e.cfg.policy.pool_root.join("tank/restore");
    std::fs::create_dir_all(&restore_path).unwrap();
    let body = model::restore_body(
        &stored,
        json!({"transfer_mode": "COPY", "path": restore_path.to_str().unwrap()}).as_object().unwrap(),
    )
    .unwrap();
    let body =
        model::validate(model::CREATE, &body, &e.store, Some(Caller { full_admin: true }), &e.cfg.policy).unwrap();
    assert_eq!(body["enabled"], false);
    let id = e.store.create_task(&body).unwrap().id;
    assert_eq!(e.run(id, false).state, "SUCCESS");
    assert_eq!(std::fs::read(restore_path.join("docs/a.txt")).unwrap(), b"alpha");
}

#[test]
fn verify_task_makes_the_remote_checks_validation_leaves_out() {
    use cloudsync::task::api;
    let e = env();
    let policy = &e.cfg.policy;
    let body = |extra: Value| {
        let mut b = json!({"description": "v", "path": e.data, "credentials": e.cred,
            "attributes": {"bucket": "bucket", "folder": "backup"}, "direction": "PUSH", "transfer_mode": "SYNC"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    let ok = api::task_verify(&e.store, &body(json!({})), None, policy).unwrap();
    assert_eq!(ok["valid"], true, "{ok}");
    // PULL from a folder that is not there (V20).
    let r = api::task_verify(&e.store, &body(json!({"direction": "PULL"})), None, policy).unwrap();
    assert_eq!(r["valid"], false);
    assert_eq!(r["errors"][0], json!(["cloud_sync_verify.attributes.folder", "Directory does not exist"]), "{r}");
    // An encrypted folder read with the wrong password.
    let enc = json!({"encryption": true, "filename_encryption": true, "encryption_password": SECRET_PW, "encryption_salt": SECRET_SALT});
    let id = e.task(enc.clone());
    assert_eq!(e.run(id, false).state, "SUCCESS");
    let mut wrong = enc.clone();
    wrong["encryption_password"] = json!("not the password");
    wrong["direction"] = json!("PULL");
    let r = api::task_verify(&e.store, &body(wrong), None, policy).unwrap();
    assert_eq!(r["valid"], false, "{r}");
    assert!(r["errors"][0][0].as_str().unwrap().ends_with("encryption_password"), "{r}");
    let mut right = enc;
    right["direction"] = json!("PULL");
    assert_eq!(api::task_verify(&e.store, &body(right), None, policy).unwrap()["valid"], true);
    // Validation errors come back as validation errors, before any request.
    assert!(matches!(
        api::task_verify(&e.store, &body(json!({"transfers": 0})), None, policy),
        Err(api::ApiError::Validation(_))
    ));
}
