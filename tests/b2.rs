//! Backblaze B2 against the B2 fake (tests/fakes/b2.py) with the failures B2 documents:
//! expiring account tokens, upload URLs that fail and must be replaced, caps, endless
//! listings, corrupted downloads, large files that fail midway, wrong keys. Each test runs
//! its own fake, so scripted faults touch nobody else.

mod common;

use cloudsync::Kind;
use cloudsync::engine::{self, Mode, SyncOptions};
use cloudsync::path::RelPath;
use cloudsync::remote::local::LocalRemote;
use cloudsync::remote::{PutInfo, Remote};
use common::servers::{B2Fake, unique};
use common::{Bytes, Recorder, T1};
use serde_json::json;
use std::io::Read;
use std::sync::Arc;

fn rel(p: &str) -> RelPath {
    RelPath::from_str_checked(p).unwrap()
}

fn put(r: &dyn Remote, path: &str, data: &[u8]) -> cloudsync::Result<cloudsync::remote::Entry> {
    let info = PutInfo { size: data.len() as u64, mtime: Some(T1), ..PutInfo::default() };
    r.put(&rel(path), &Bytes(data.to_vec(), T1), &info)
}

#[test]
fn an_expired_token_is_renewed_once_and_the_call_repeated() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    put(r.as_ref(), "a", b"x").unwrap();
    let before = fake.calls("b2_authorize_account");
    fake.fault("expire_tokens", json!({}));
    let l = r.list_dir(&RelPath::root(), &mut |e| panic!("{e}")).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(fake.calls("b2_authorize_account") - before, 1, "one re-authorisation");
    // Downloads renew too.
    fake.fault("expire_tokens", json!({}));
    let mut data = Vec::new();
    r.open(&rel("a"), &l[0], 0, u64::MAX).unwrap().reader.read_to_end(&mut data).unwrap();
    assert_eq!(data, b"x");
}

#[test]
fn a_failed_upload_url_is_replaced() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    fake.fault("fail", json!({"call": "upload", "status": 503, "count": 2}));
    let before = fake.calls("b2_get_upload_url");
    put(r.as_ref(), "f", b"data").unwrap();
    assert_eq!(fake.calls("upload"), 3, "two failures, then success");
    assert_eq!(fake.calls("b2_get_upload_url") - before, 3, "a new upload URL after each failure");
    // The URL that worked is kept for the next upload.
    put(r.as_ref(), "g", b"more").unwrap();
    assert_eq!(fake.calls("b2_get_upload_url") - before, 3);
}

#[test]
fn a_cap_is_a_quota_error_and_not_retried() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    fake.fault("cap_exceeded", json!({"on": true}));
    let e = put(r.as_ref(), "f", b"data").unwrap_err();
    assert_eq!(e.kind(), Kind::Quota, "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("cap is exceeded"), "{e}");
    assert_eq!(fake.calls("upload"), 1);
}

#[test]
fn throttling_with_retry_after_is_waited_out() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    put(r.as_ref(), "f", b"data").unwrap();
    fake.fault("fail", json!({"call": "b2_list_file_names", "status": 429, "count": 1, "retry_after": 1}));
    let t = std::time::Instant::now();
    assert_eq!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().len(), 1);
    assert!(t.elapsed() >= std::time::Duration::from_millis(950), "{:?}", t.elapsed());
}

#[test]
fn an_endless_listing_is_an_error() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    for i in 0..3 {
        put(r.as_ref(), &format!("f{i}"), b"x").unwrap();
    }
    let r2 = fake.remote_with(&unique("bucket-"), "", |o| o.list_chunk = 1);
    for i in 0..3 {
        put(r2.as_ref(), &format!("f{i}"), b"x").unwrap();
    }
    fake.fault("loop_listing", json!({"count": 1000}));
    let e = r2.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::Protocol, "{e}");
    assert!(e.to_string().contains("never end"), "{e}");
}

#[test]
fn a_corrupted_download_is_caught_by_its_sha1_and_nothing_is_written() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    put(r.as_ref(), "file.bin", &vec![7u8; 10_000]).unwrap();
    fake.fault("corrupt_download", json!({"count": 100}));
    let tmp = tempfile::tempdir().unwrap();
    let dst = LocalRemote::new(tmp.path().to_path_buf(), Default::default(), None);
    let rec = Arc::new(Recorder::default());
    let opts = SyncOptions { mode: Mode::Copy, observer: rec.clone(), retries: 2, ..SyncOptions::default() };
    let report = engine::run(r.as_ref(), &dst, &opts);
    let e = report.error.expect("the copy fails");
    assert!(e.to_string().contains("sha1") || e.to_string().contains("SHA1"), "{e}");
    assert!(!tmp.path().join("file.bin").exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "no partial file left");
    // Without the fault the same copy verifies by SHA1.
    fake.fault("reset", json!({}));
    let report = engine::run(r.as_ref(), &dst, &opts);
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(std::fs::read(tmp.path().join("file.bin")).unwrap(), vec![7u8; 10_000]);
    let logs = rec.logs.lock().unwrap();
    assert!(!logs.iter().any(|(_, l)| l.contains("verified by size only")), "{logs:?}");
}

#[test]
fn a_large_file_that_fails_is_cancelled_and_leaves_nothing() {
    let fake = B2Fake::start();
    let bucket = unique("bucket-");
    let r = fake.remote_with(&bucket, "", |o| {
        o.chunk_size = 1 << 20;
        o.upload_cutoff = 1 << 20;
        o.http.retries = 2;
    });
    fake.fault("fail", json!({"call": "upload", "status": 503, "count": 1000}));
    let e = put(r.as_ref(), "big", &vec![1u8; 3 << 20]).unwrap_err();
    assert_eq!(e.kind(), Kind::Server, "{e}");
    assert!(fake.calls("b2_cancel_large_file") >= 1);
    assert!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
    // Then it works, in parts, with the whole file's SHA1 recorded.
    fake.fault("reset", json!({}));
    let stored = put(r.as_ref(), "big", &vec![1u8; 3 << 20]).unwrap();
    assert_eq!(stored.size, 3 << 20);
    assert!(fake.calls("b2_finish_large_file") == 1);
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    let sha = sha1_hex(&vec![1u8; 3 << 20]);
    assert_eq!(l[0].extra.etag.as_deref(), Some(sha.as_str()), "large_file_sha1 is the content's");
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

#[test]
fn deleting_hides_and_a_hard_delete_removes_versions() {
    let fake = B2Fake::start();
    let bucket = unique("bucket-");
    let r = fake.remote(&bucket, "");
    let e = put(r.as_ref(), "f", b"v1").unwrap();
    r.delete(&rel("f"), &e).unwrap();
    assert!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
    assert_eq!(fake.calls("b2_hide_file"), 1);
    let hard = fake.remote_with(&bucket, "", |o| o.hard_delete = true);
    let e = put(hard.as_ref(), "g", b"v1").unwrap();
    hard.delete(&rel("g"), &e).unwrap();
    assert_eq!(fake.calls("b2_delete_file_version"), 1);
    assert!(hard.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
}

#[test]
fn a_wrong_key_fails_with_a_sentence_and_no_secret() {
    let fake = B2Fake::start();
    let mut o = fake.options(&unique("bucket-"), "");
    o.key = "wrong-secret-value".into();
    let r = cloudsync::remote::b2::B2Remote::new(o).unwrap();
    let e = r.root_state().unwrap_err();
    assert_eq!(e.kind(), Kind::Permission);
    let text = e.to_string();
    assert!(text.contains("refused the application key"), "{text}");
    assert!(!text.contains("wrong-secret-value"));
}

#[test]
fn the_registry_builds_b2_for_jobs_and_verifies_credentials() {
    let fake = B2Fake::start();
    // SAFETY: this test binary reads the variable only in this test.
    unsafe { std::env::set_var("CLOUDSYNC_B2_ENDPOINT", &fake.endpoint) };
    let bucket = unique("bucket-");
    fake.remote(&bucket, "");
    let cred = fake.credential_provider();
    cloudsync::task::runner::verify_credential(&cred).unwrap();
    let buckets = cloudsync::task::runner::list_buckets(&cred).unwrap();
    assert!(buckets.iter().any(|(n, _)| *n == bucket), "{buckets:?}");
    let attrs = json!({"bucket": bucket, "folder": "/backups", "chunk_size": 5});
    let r = cloudsync::task::runner::build_remote(&cred, attrs.as_object().unwrap(), None).unwrap();
    assert_eq!(r.describe(), format!("b2:{bucket}/backups"));
    put(r.as_ref(), "x", b"y").unwrap();
    // Errors of a remote built by the registry name its provider and location, once.
    let missing = cloudsync::remote::Entry::file("nope", 5, Some(T1));
    let e = r.open(&rel("nope"), &missing, 0, u64::MAX).err().expect("a missing file");
    assert_eq!((e.kind(), e.provider()), (Kind::NotFound, Some("B2")), "{e}");
    assert_eq!(e.remote(), Some(format!("b2:{bucket}/backups").as_str()));
    assert_eq!(e.to_string().matches(&format!("b2:{bucket}")).count(), 2, "path and remote, nothing more: {e}");
    let mut bad = cred.clone();
    bad.insert("key".into(), json!("nope"));
    let e = cloudsync::task::runner::verify_credential(&bad).unwrap_err();
    assert_eq!((e.kind(), e.provider()), (Kind::Permission, Some("B2")));
}

#[test]
fn checksum_compares_by_sha1_with_a_local_source() {
    let fake = B2Fake::start();
    let r = fake.remote(&unique("bucket-"), "");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("f"), b"same size A").unwrap();
    common::set_mtime(&tmp.path().join("f"), T1);
    let src = LocalRemote::new(tmp.path().to_path_buf(), Default::default(), None);
    let rec = Arc::new(Recorder::default());
    let mut opts = SyncOptions { mode: Mode::Sync, observer: rec.clone(), retries: 1, ..SyncOptions::default() };
    assert!(engine::run(&src, r.as_ref(), &opts).error.is_none());
    // Same size and time, other content: only a hash tells them apart.
    std::fs::write(tmp.path().join("f"), b"same size B").unwrap();
    common::set_mtime(&tmp.path().join("f"), T1);
    assert_eq!(common::transfers(&rec.events.lock().unwrap().split_off(0)), 1);
    assert!(engine::run(&src, r.as_ref(), &opts).error.is_none());
    assert_eq!(common::transfers(&rec.events.lock().unwrap().split_off(0)), 0, "size and time agree");
    opts.compare.checksum = true;
    assert!(engine::run(&src, r.as_ref(), &opts).error.is_none());
    assert_eq!(common::transfers(&rec.events.lock().unwrap().split_off(0)), 1, "--checksum compares SHA1");
    assert!(engine::run(&src, r.as_ref(), &opts).error.is_none());
    assert_eq!(common::transfers(&rec.events.lock().unwrap().split_off(0)), 0);
    let logs = rec.logs.lock().unwrap();
    assert!(!logs.iter().any(|(_, l)| l.contains("no hashes in common")), "{logs:?}");
}
