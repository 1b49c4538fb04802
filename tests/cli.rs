//! The `cloudsync` command line: the surface others script against.

mod common;

use common::*;
use std::process::{Command, Output};

fn cloudsync(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudsync"));
    c.args(args)
        .env_remove("CLOUDSYNC_S3_ENDPOINT")
        .env_remove("CLOUDSYNC_S3_ACCESS_KEY_ID")
        .env_remove("CLOUDSYNC_S3_SECRET_ACCESS_KEY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn usage_errors_exit_2_with_a_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for (args, needle) in [
        (vec!["sync", d, "x", "--bwlimit", "25:00,1M"], "invalid hour"),
        (vec!["sync", d, "x", "--exclude", "***"], "too many stars"),
        (vec!["sync", d, "s3:bucket"], "needs S3 credentials"),
        (vec!["sync", d, "s3:"], "s3:BUCKET"),
        (vec!["sync", d, "x", "--checksum", "--size-only"], "cannot be used together"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ] {
        let o = cloudsync(&args, &[("CLOUDSYNC_INDEX", &format!("{d}/i.db"))]);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn missing_source_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let o = cloudsync(
        &["copy", tmp.path().join("nope").to_str().unwrap(), tmp.path().join("d").to_str().unwrap(), "--no-index"],
        &[],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("directory not found"), "{}", stderr(&o));
}

#[test]
fn json_summary_and_s3_round_trip_without_leaking_the_secret() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a"), b"aaa").unwrap();
    std::fs::write(src.join("sub/b"), b"bb").unwrap();
    let idx = tmp.path().join("idx.db");
    let env = [
        ("CLOUDSYNC_S3_ENDPOINT", s3.endpoint.as_str()),
        ("CLOUDSYNC_S3_ACCESS_KEY_ID", ACCESS_KEY),
        ("CLOUDSYNC_S3_SECRET_ACCESS_KEY", SECRET_KEY),
        ("CLOUDSYNC_INDEX", idx.to_str().unwrap()),
    ];
    let run = |args: &[&str]| {
        let o = cloudsync(args, &env);
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
        assert!(!all.contains(SECRET_KEY), "the secret leaked: {all}");
        o
    };
    let o = run(&["sync", src.to_str().unwrap(), "s3:cli/backup", "--json", "-vv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["files_transferred"], 2);
    assert_eq!(v["bytes_transferred"], 5);
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["error"], serde_json::Value::Null);
    assert_eq!(v["requests"]["destination"]["PUT"], 3, "two objects and the bucket creation");

    let o = run(&["sync", src.to_str().unwrap(), "s3:cli/backup", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!((v["files_transferred"].as_u64(), v["requests"]["destination"]["HEAD"].as_u64()), (Some(0), Some(0)));

    std::fs::remove_file(src.join("a")).unwrap();
    let o = run(&["sync", src.to_str().unwrap(), "s3:cli/backup", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["files_deleted"], 1, "the plan reports the deletion");
    let back = tmp.path().join("back");
    let o = run(&["copy", "s3:cli/backup", back.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(std::fs::read(back.join("a")).unwrap(), b"aaa", "the dry run deleted nothing");

    let o = run(&["sync", src.to_str().unwrap(), "s3:cli/backup", "--s3-secret-access-key", "another-wrong-secret"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(!stderr(&o).contains("another-wrong-secret"));
    assert!(
        stderr(&o).contains("secret access key is wrong") || stderr(&o).contains("access denied"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn encrypted_target_and_cryptcheck() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("docs")).unwrap();
    std::fs::write(src.join("docs/plan.txt"), b"the plan").unwrap();
    std::fs::write(src.join("big.bin"), vec![3u8; 300_000]).unwrap();
    let usb = tmp.path().join("usb");
    let env = [("CLOUDSYNC_ENCRYPT_PASSWORD", "hunter2-but-longer"), ("CLOUDSYNC_INDEX", "/dev/null/none")];
    let o =
        cloudsync(&["sync", src.to_str().unwrap(), usb.to_str().unwrap(), "--no-index", "--encrypt-salt", "s"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let names: Vec<String> =
        std::fs::read_dir(&usb).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| n != "docs" && n != "big.bin" && n.len() >= 16), "names are encrypted: {names:?}");

    let check = |extra: &[&str]| {
        let mut args = vec!["cryptcheck", src.to_str().unwrap(), usb.to_str().unwrap(), "--encrypt-salt", "s"];
        args.extend_from_slice(extra);
        cloudsync(&args, &env)
    };
    let o = check(&[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("0 differences found") && stderr(&o).contains("2 matching files"), "{}", stderr(&o));

    std::fs::write(src.join("docs/plan.txt"), b"the PLAN").unwrap();
    let o = check(&["--json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["differing"], serde_json::json!(["docs/plan.txt"]));

    let back = tmp.path().join("back");
    let o = cloudsync(
        &[
            "copy",
            usb.to_str().unwrap(),
            back.to_str().unwrap(),
            "--no-index",
            "--encrypt-salt",
            "s",
            "--encrypted-side",
            "source",
        ],
        &env,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(back.join("big.bin")).unwrap(), vec![3u8; 300_000]);
    assert_eq!(std::fs::read(back.join("docs/plan.txt")).unwrap(), b"the plan");
}

#[test]
fn credentials_tasks_and_jobs_from_the_command_line() {
    let s3 = S3Server::start();
    let _ = s3.remote("bkt", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("mnt");
    let data = pool.join("tank/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f.txt"), b"payload").unwrap();
    let db = tmp.path().join("state/cloudsync.db");
    let env = [
        ("CLOUDSYNC_DB", db.to_str().unwrap()),
        ("CLOUDSYNC_POOL_ROOT", pool.to_str().unwrap()),
        ("CLOUDSYNC_INDEX", "/nonexistent"),
    ];
    let run = |args: &[&str]| {
        let o = cloudsync(args, &env);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let cred = serde_json::json!({"name": "minio", "provider": {"type": "S3", "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY, "endpoint": s3.endpoint}});
    let (code, out, err) = run(&["credential", "add", &cred.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"].as_i64().unwrap();
    let (code, out, _) = run(&["credential", "verify", &id.to_string()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"valid\": true"));
    let (_, out, _) = run(&["credential", "list", "--json"]);
    assert!(!out.contains(SECRET_KEY) && out.contains("********"), "{out}");

    let bad = serde_json::json!({"path": "/etc", "credentials": id, "attributes": {"bucket": "bkt", "folder": "x"}, "direction": "PUSH", "transfer_mode": "SYNC"});
    let (code, _, err) = run(&["task", "create", &bad.to_string()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cloud_sync_create.path: The path must reside within a pool mount point"), "{err}");

    // The test machine has no datasets: a plain directory below the pool root is refused
    // when the task is saved (TrueNAS's sentence, and how to allow it)...
    let task = serde_json::json!({"description": "nightly", "path": data, "credentials": id,
        "attributes": {"bucket": "bkt", "folder": "backup"}, "direction": "PUSH", "transfer_mode": "SYNC"});
    let (code, _, err) = run(&["task", "create", &task.to_string()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("cloud_sync_create.path: The path must reside within a pool mount point"), "{err}");
    assert!(err.contains("is not on a ZFS dataset") && err.contains("--plain-directories"), "{err}");
    // ... and accepted with --plain-directories.
    let (code, out, err) = run(&["--plain-directories", "task", "create", &task.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let tid = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"].as_i64().unwrap();
    let (code, out, err) = run(&["task", "run", &tid.to_string()]);
    // Run without the switch, the job refuses the plain directory before touching it
    // (rclone's usage exit status).
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(out.contains("The path must reside within a pool mount point"), "{out}");
    // Its log says why, though it failed before any transfer.
    let (_, out, _) = run(&["task", "logs", &tid.to_string()]);
    assert!(out.contains("ERROR") && out.contains("The path must reside within a pool mount point"), "{out}");
    let (_, out, _) = run(&["task", "list"]);
    assert!(out.contains("nightly") && out.contains("FAILED"), "{out}");

    let (code, _, err) = run(&["credential", "delete", &id.to_string()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("This credential is used by cloud sync task nightly"), "{err}");
    let (code, out, _) = run(&[
        "--plain-directories",
        "task",
        "restore",
        &tid.to_string(),
        &serde_json::json!({"transfer_mode": "COPY", "path": data}).to_string(),
    ]);
    assert_eq!(code, Some(0));
    assert!(out.contains("\"direction\": \"PULL\"") && out.contains("\"enabled\": false"), "{out}");
    let (_, out, _) = run(&["config", "export"]);
    assert!(!out.contains(SECRET_KEY) && out.contains("cs1:"), "{out}");
    let (code, out, _) = run(&["ls", &id.to_string()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("bkt/"), "{out}");
}

#[test]
fn secrets_are_printed_only_when_revealed() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("mnt");
    let data = pool.join("tank/data");
    std::fs::create_dir_all(&data).unwrap();
    let db = tmp.path().join("state/cloudsync.db");
    let env = [
        ("CLOUDSYNC_DB", db.to_str().unwrap()),
        ("CLOUDSYNC_POOL_ROOT", pool.to_str().unwrap()),
        ("CLOUDSYNC_PLAIN_DIRECTORIES", "1"),
    ];
    let run = |args: &[&str]| {
        let o = cloudsync(args, &env);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(!stderr(&o).contains("s3cr3t-k3y") && !stderr(&o).contains("crypt-pa55"), "{}", stderr(&o));
        out
    };
    let cred = serde_json::json!({"name": "aws", "provider": {"type": "S3", "access_key_id": "AKIAEXAMPLE",
        "secret_access_key": "s3cr3t-k3y", "endpoint": "http://127.0.0.1:9"}});
    let out = run(&["credential", "add", &cred.to_string()]);
    assert!(!out.contains("s3cr3t-k3y") && out.contains("********"), "credential add: {out}");
    let id = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"].as_i64().unwrap();
    let body = serde_json::json!({"provider": {"type": "S3", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-k3y2"}});
    let out = run(&["credential", "update", &id.to_string(), &body.to_string()]);
    assert!(!out.contains("s3cr3t-k3y2"), "credential update: {out}");
    let out = run(&["credential", "show", &id.to_string(), "--reveal"]);
    assert!(out.contains("s3cr3t-k3y2"), "--reveal shows it: {out}");

    let task = serde_json::json!({"path": data, "credentials": id, "attributes": {"bucket": "b", "folder": ""},
        "direction": "PUSH", "transfer_mode": "COPY", "encryption": true, "encryption_password": "crypt-pa55",
        "encryption_salt": "crypt-sa1t"});
    let out = run(&["task", "create", &task.to_string()]);
    for secret in ["crypt-pa55", "crypt-sa1t", "s3cr3t-k3y2"] {
        assert!(!out.contains(secret), "task create printed {secret}: {out}");
    }
    let tid = serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"].as_i64().unwrap();
    let out = run(&["task", "update", &tid.to_string(), r#"{"description": "renamed"}"#]);
    assert!(
        !out.contains("crypt-pa55") && !out.contains("s3cr3t-k3y2") && out.contains("renamed"),
        "task update: {out}"
    );
    let out = run(&["task", "update", &tid.to_string(), r#"{"description": "again"}"#, "--reveal"]);
    assert!(out.contains("crypt-pa55"), "--reveal: {out}");
    let out = run(&["task", "show", &tid.to_string()]);
    assert!(!out.contains("crypt-pa55"), "task show: {out}");
}

#[test]
fn syncing_a_tree_into_its_own_new_subdirectory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"a").unwrap();
    for (verb, sub) in [("sync", "sub"), ("move", "sub/deeper"), ("copy", "new")] {
        let dst = src.join(sub);
        let o = cloudsync(&[verb, src.to_str().unwrap(), dst.to_str().unwrap(), "--no-index"], &[]);
        assert_eq!(o.status.code(), Some(7), "{verb}: {}", stderr(&o));
        assert!(stderr(&o).contains("overlapping remotes"), "{}", stderr(&o));
        assert!(!dst.exists(), "{verb} created {}", dst.display());
    }
    // A relative spelling of the same thing.
    let o = Command::new(env!("CARGO_BIN_EXE_cloudsync"))
        .current_dir(tmp.path())
        .args(["sync", "src", "src/../src/x", "--no-index"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(&src).unwrap().count(), 1, "nothing was copied into the tree");
}

#[test]
fn providers_are_listed_from_the_registry() {
    let o = cloudsync(&["providers"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let s3 = out.lines().find(|l| l.starts_with("S3 ")).unwrap_or_else(|| panic!("{out}"));
    assert!(s3.contains("access_key_id*") && s3.contains("secret_access_key*"), "{s3}");
    let o = cloudsync(&["providers", "--json"], &[]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"S3") && names.contains(&"GOOGLE_PHOTOS") && names.len() >= 17, "{names:?}");
}

#[test]
fn jobs_and_schedules_from_the_command_line() {
    let s3 = S3Server::start();
    let _ = s3.remote("jobs", "", None);
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("mnt");
    let data = pool.join("usb/photos");
    std::fs::create_dir_all(data.join("2026")).unwrap();
    std::fs::write(data.join("2026/a.jpg"), vec![1u8; 300_000]).unwrap();
    std::fs::write(data.join("b.jpg"), b"bee").unwrap();
    let db = tmp.path().join("state/cloudsync.db");
    let env = [
        ("CLOUDSYNC_DB", db.to_str().unwrap()),
        ("CLOUDSYNC_POOL_ROOT", pool.to_str().unwrap()),
        ("CLOUDSYNC_INDEX", "/nonexistent"),
        ("CLOUDSYNCD_SOCKET", "/nonexistent/cloudsyncd.sock"),
        ("CLOUDSYNC_PLAIN_DIRECTORIES", "1"),
        ("TZ", "UTC"),
    ];
    let run = |args: &[&str]| {
        let o = cloudsync(args, &env);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), stderr(&o))
    };
    let json = |out: &str| serde_json::from_str::<serde_json::Value>(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let cred = serde_json::json!({"name": "s3", "provider": {"type": "S3", "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY, "endpoint": s3.endpoint}});
    let (code, out, err) = run(&["credential", "add", &cred.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let cid = json(&out)["id"].as_i64().unwrap();
    let task = serde_json::json!({"description": "usb photos", "path": data, "credentials": cid,
        "attributes": {"bucket": "jobs", "folder": "photos"}, "direction": "PUSH", "transfer_mode": "COPY",
        "schedule": {"minute": "30", "hour": "3", "dom": "*", "month": "*", "dow": "*"}});
    let (code, out, err) = run(&["task", "create", &task.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let tid = json(&out)["id"].as_i64().unwrap().to_string();

    // The schedule and the next run, computed here (no daemon runs).
    let (_, out, _) = run(&["task", "list", "--json"]);
    let listed = &json(&out)[0];
    assert_eq!(listed["enabled"], true);
    assert_eq!(listed["schedule"]["hour"], "3");
    let next =
        chrono::DateTime::parse_from_rfc3339(listed["next_run"].as_str().unwrap()).unwrap().with_timezone(&chrono::Utc);
    let now = chrono::Utc::now();
    assert!(next > now && next - now <= chrono::Duration::hours(24), "{next}");
    assert_eq!(next.format("%H:%M").to_string(), "03:30");
    let (_, out, _) = run(&["task", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for col in ["ID", "DESCRIPTION", "DIRECTION", "PATH", "ENABLED", "SCHEDULE", "NEXT RUN", "LAST JOB"] {
        assert!(lines[0].contains(col), "{out}");
    }
    // Aligned: each column starts at the same offset in the header and the row.
    let at = |line: &str, text: &str| line.find(text).unwrap_or_else(|| panic!("{text:?} in {line:?}"));
    assert_eq!(at(lines[0], "ENABLED"), at(lines[1], "yes"), "{out}");
    assert_eq!(at(lines[0], "SCHEDULE"), at(lines[1], "30 3 * * *"), "{out}");
    assert_eq!(at(lines[0], "NEXT RUN"), at(lines[1], &next.format("%Y-%m-%d 03:30").to_string()), "{out}");
    assert!(lines[1].trim_end().ends_with('-'), "no job yet: {out}");

    // A partial schedule: the missing fields become `*`, and the command says so.
    let (code, _, err) = run(&["task", "update", &tid, r#"{"schedule": {"minute": "*/5"}}"#]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("schedule: */5 * * * * (next run: "), "{err}");
    let (code, _, err) = run(&["task", "update", &tid, r#"{"enabled": false}"#]);
    assert_eq!(code, Some(0), "{err}");
    let (_, out, _) = run(&["task", "list", "--json"]);
    assert_eq!(json(&out)[0]["next_run"], serde_json::Value::Null, "a disabled task never runs: {out}");
    let (_, out, _) = run(&["task", "list"]);
    assert!(out.lines().nth(1).unwrap().contains(" no "), "{out}");

    // `task run --follow`: the log on stderr, one sentence at the end.
    let (code, out, err) = run(&["task", "run", "--follow", &tid]);
    assert_eq!(code, Some(0), "{out}{err}");
    let job =
        out.trim().strip_prefix("Job ").and_then(|r| r.strip_suffix(" succeeded.")).unwrap_or_else(|| panic!("{out}"));
    assert!(err.contains("Locking local path"), "{err}");
    assert_eq!(std::fs::read(s3.data.path().join("jobs/photos/2026/a.jpg")).unwrap().len(), 300_000);

    // The job commands.
    let (code, out, _) = run(&["job", "show", job]);
    assert_eq!(code, Some(0));
    let record = json(&out);
    assert_eq!((record["state"].as_str(), record["task_id"].to_string()), (Some("SUCCESS"), tid.clone()));
    let (_, out, _) = run(&["job", "log", job]);
    // The log holds what the transfer said; the locking steps were progress (above).
    assert!(out.contains("a.jpg") && !out.contains("Locking"), "{out}");
    let (_, follow, _) = run(&["job", "log", "--follow", job]);
    assert_eq!(follow, out, "an ended job's log, followed, is the whole log");
    let (_, out, _) = run(&["job", "list"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(at(lines[0], "STATE"), at(lines[1], "SUCCESS"), "{out}");
    assert!(lines[1].starts_with(&format!("{job} ")), "{out}");
    let (_, out, _) = run(&["job", "list", "--task", &tid, "--json"]);
    assert_eq!(json(&out).as_array().unwrap().len(), 1);
    let (code, out, _) = run(&["job", "abort", job]);
    assert_eq!((code, out.trim()), (Some(0), r#"{"aborted":false}"#), "an ended job is not aborted");
    let (code, _, err) = run(&["job", "show", "999"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("job 999 does not exist"), "{err}");
    let (code, _, err) = run(&["job", "list", "--task", "999"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("999"), "{err}");

    // A job that fails: the closing sentence names the cause; the exit status is
    // rclone's for it (2: the task is not valid here).
    let mut strict = env.to_vec();
    strict.retain(|(k, _)| *k != "CLOUDSYNC_PLAIN_DIRECTORIES");
    strict.push(("CLOUDSYNC_PLAIN_DIRECTORIES", "0"));
    let o = cloudsync(&["task", "run", "-f", &tid], &strict);
    let (code, out) = (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned());
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.starts_with("Job ")
            && out.contains(" failed: ")
            && out.contains("The path must reside within a pool mount point"),
        "{out}"
    );
    let (_, out, _) = run(&["task", "list"]);
    assert!(out.lines().nth(1).unwrap().trim_end().ends_with("FAILED"), "{out}");

    // A PULL from a folder that is not there: one sentence naming the remote, exit 3
    // (rclone's "directory not found"), the fields in the outcome.
    let pull = serde_json::json!({"description": "from nowhere", "path": data, "credentials": cid,
        "attributes": {"bucket": "jobs", "folder": "nope"}, "direction": "PULL", "transfer_mode": "COPY"});
    let (code, out, err) = run(&["task", "create", &pull.to_string()]);
    assert_eq!(code, Some(0), "{err}");
    let pid = json(&out)["id"].as_i64().unwrap().to_string();
    let (code, out, _) = run(&["task", "run", &pid]);
    assert_eq!(code, Some(3), "{out}");
    let outcome = json(&out);
    assert_eq!(outcome["error"], "Directory does not exist [s3:jobs/nope]", "{out}");
    assert_eq!(outcome["error_details"]["exit_code"], 3, "{out}");
    let excerpt = outcome["logs_excerpt"].as_str().unwrap();
    assert!(
        excerpt.lines().count() == 1 && excerpt.ends_with(" ERROR : Directory does not exist [s3:jobs/nope]\n"),
        "a refused pull logs its error and nothing else: {out}"
    );
}
