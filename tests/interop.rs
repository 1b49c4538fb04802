//! Interoperability with the real rclone (Debian's 1.60): what cloudsync writes, rclone
//! reads identically (names, sizes, hashes, modification times), and the other way round.
//! rclone is pointed at bucket roots: on a `bucket/prefix` root it HEADs the prefix, which
//! s3s-fs answers with a 500 (a known s3s-fs bug), and rclone then retries for minutes.

mod common;

use cloudsync::engine::{self, SyncOptions};
use cloudsync::index::Index;
use cloudsync::remote::local::LocalRemote;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

fn rclone_cmd(s3: &S3Server, args: &[&str]) -> Output {
    let bin = rclone().expect("rclone not found: scripts/test installs it (apt-get install rclone)");
    let mut c = Command::new(bin);
    c.args(args).env_remove("AWS_CA_BUNDLE").env("RCLONE_CONFIG", "/dev/null");
    for (k, v) in s3.rclone_env("t") {
        c.env(k, v);
    }
    c.output().expect("run rclone")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "rclone failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tree with nested directories, odd names (spaces, non-ASCII, not UTF-8), an empty
/// file, and odd nanosecond times.
fn fixture(dir: &Path) {
    let files: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"plain.txt".to_vec(), b"hello".to_vec()),
        (b"with space/and more.bin".to_vec(), vec![1u8; 70_000]),
        ("d\u{e9}j\u{e0} vu/\u{65e5}\u{672c}.txt".as_bytes().to_vec(), b"unicode".to_vec()),
        (b"empty".to_vec(), Vec::new()),
        (b"deep/a/b/c/leaf".to_vec(), b"leaf".to_vec()),
        (b"latin1 \xe9t\xe9.txt".to_vec(), b"not utf-8 name".to_vec()),
    ];
    for (i, (name, data)) in files.iter().enumerate() {
        let p = dir.join(std::ffi::OsStr::from_bytes(name));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        set_mtime(&p, T1 + i as i64 * 1_000_000_001);
    }
}

/// rclone lsjson -R: path → (size, modtime string). `--max-depth` makes rclone walk one
/// directory at a time instead of a recursive ListR (whose empty `delimiter=` s3s-fs mishandles).
fn rclone_listing(s3: &S3Server, remote: &str) -> BTreeMap<String, (i64, String)> {
    let out = ok(rclone_cmd(s3, &["lsjson", "-R", "--max-depth", "64", "--files-only", remote]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["Path"].as_str().unwrap().to_string(),
                (e["Size"].as_i64().unwrap(), e["ModTime"].as_str().unwrap().to_string()),
            )
        })
        .collect()
}

fn rfc3339(n: i64) -> String {
    // rclone lsjson prints UTC with nine fraction digits.
    let secs = n.div_euclid(1_000_000_000);
    let ns = n.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = cloudsync::remote::kit::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ns:09}Z", sod / 3600, sod / 60 % 60, sod % 60)
}

#[test]
fn rclone_reads_what_cloudsync_pushed() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    fixture(&src_dir);
    // One multipart object too (rclone checks its size; it has no single MD5).
    std::fs::write(src_dir.join("big.bin"), vec![9u8; 11 * 1024 * 1024]).unwrap();
    set_mtime(&src_dir.join("big.bin"), T2);
    let src = LocalRemote::new(src_dir.clone(), Default::default(), None);
    let dst = s3.remote_with("pushed", "", None, |o| {
        o.upload_cutoff = 5 * 1024 * 1024;
        o.chunk_size = 5 * 1024 * 1024;
    });
    let rep = engine::run(&src, dst.as_ref(), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);

    let out = rclone_cmd(&s3, &["check", src_dir.to_str().unwrap(), "t:pushed"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rclone check failed:\n{text}");
    assert!(text.contains("0 differences found"), "{text}");

    // rclone sees every file with our names, sizes and modification times.
    let listing = rclone_listing(&s3, "t:pushed");
    let local = Side { remote: Arc::new(LocalRemote::new(src_dir, Default::default(), None)), local_root: None };
    let files = local.files();
    assert_eq!(listing.len(), files.len(), "{listing:?}");
    for (path, (data, mtime)) in files {
        let key = if path.contains('\u{fffd}') { "latin1 \u{fffd}t\u{fffd}.txt".to_string() } else { path.clone() };
        let (size, time) = listing.get(&key).unwrap_or_else(|| panic!("rclone does not list {key:?}: {listing:?}"));
        assert_eq!(*size as usize, data.len(), "{path}");
        assert_eq!(*time, rfc3339(mtime), "modification time of {path} as rclone reads it");
    }
}

#[test]
fn cloudsync_sees_rclone_pushes_as_unchanged() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    fixture(&src_dir);
    ok(rclone_cmd(&s3, &["mkdir", "t:byrclone"]));
    ok(rclone_cmd(&s3, &["copy", src_dir.to_str().unwrap(), "t:byrclone"]));

    let index = Arc::new(Index::open(&tmp.path().join("index.db")).unwrap());
    let src = LocalRemote::new(src_dir.clone(), Default::default(), Some(index.clone()));
    let dst = s3.remote("byrclone", "", Some(index.clone()));
    let rep = engine::run(&src, dst.as_ref(), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    assert_eq!(rep.summary.files_transferred, 0, "an rclone push must look unchanged");
    assert_eq!(rep.summary.mod_times_updated, 0);
    assert_eq!(rep.summary.files_deleted, 0);

    // Pull rclone's objects: identical bytes and times.
    let back = tmp.path().join("back");
    let rep =
        engine::run(dst.as_ref(), &LocalRemote::new(back.clone(), Default::default(), None), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    let a = Side { remote: Arc::new(LocalRemote::new(src_dir, Default::default(), None)), local_root: None }.files();
    let b = Side { remote: Arc::new(LocalRemote::new(back, Default::default(), None)), local_root: None }.files();
    assert_eq!(a, b);
}

#[test]
fn modtime_updates_are_read_both_ways() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::write(src_dir.join("f"), b"same content").unwrap();
    set_mtime(&src_dir.join("f"), T1);
    let index = Arc::new(Index::open(&tmp.path().join("index.db")).unwrap());
    let src = LocalRemote::new(src_dir.clone(), Default::default(), Some(index.clone()));
    let push = || {
        let dst = s3.remote("mtimes", "", Some(index.clone()));
        let rep = engine::run(&src, dst.as_ref(), &SyncOptions::default());
        assert!(rep.error.is_none(), "{:?}", rep.error);
        rep.summary
    };
    push();
    // cloudsync changes only the time (CopyObject): rclone reads the new time.
    set_mtime(&src_dir.join("f"), T2);
    assert_eq!(push().mod_times_updated, 1);
    assert_eq!(rclone_listing(&s3, "t:mtimes")["f"].1, rfc3339(T2));
    // rclone changes only the time: cloudsync notices (the object's LastModified moved,
    // so the index entry is stale) and finds nothing to transfer once the local time agrees.
    set_mtime(&src_dir.join("f"), T3);
    ok(rclone_cmd(&s3, &["copy", src_dir.to_str().unwrap(), "t:mtimes"]));
    assert_eq!(rclone_listing(&s3, "t:mtimes")["f"].1, rfc3339(T3));
    let s = push();
    assert_eq!((s.files_transferred, s.mod_times_updated), (0, 0));
}
