//! The read-only HTTP provider against real servers on loopback: `rclone serve http`
//! (rclone 1.75: Range, Last-Modified) and Python's `http.server` (no Range), with a
//! tree of awkward names; pulls through the engine, a no-op re-pull, faults, writes
//! refused, and what rclone's own http backend reads of the same URL.

mod common;

use cloudsync::Kind;
use cloudsync::engine::{FileAction, Mode};
use cloudsync::path::RelPath;
use cloudsync::remote::http::{HttpOptions, HttpRemote};
use cloudsync::remote::local::LocalRemote;
use cloudsync::remote::{PutInfo, Remote, RootState};
use common::faults::{FaultProxy, slow_down};
use common::servers;
use common::{Bytes, Side, T1, count, run_between, set_mtime, transfers};
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const NAMES: &[&str] =
    &["plain.txt", "with space.bin", "caf\u{e9} \u{65e5}.txt", "one%.txt", "hash#amp&plus+.txt", "colon:x"];

/// A tree on disk: every name at the top and in `sub dir/deeper`, distinct sizes and times.
fn tree(root: &Path) -> Vec<(String, Vec<u8>, i64)> {
    let mut files = Vec::new();
    for (d, dir) in ["", "sub dir/", "sub dir/deeper/"].iter().enumerate() {
        for (i, name) in NAMES.iter().enumerate() {
            let rel = format!("{dir}{name}");
            let data: Vec<u8> = (0..(i * 1000 + d * 77 + 1)).map(|k| (k * 31 + i) as u8).collect();
            let p = root.join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, &data).unwrap();
            let t = T1 + (d * 10 + i) as i64 * 1_000_000_000;
            set_mtime(&p, t);
            files.push((rel, data, t - t % 1_000_000_000));
        }
    }
    files
}

fn rclone_http(dir: &Path) -> String {
    let port = servers::port();
    let mut cmd = Command::new(common::rclone_current());
    cmd.args(["serve", "http", "--addr"]).arg(format!("127.0.0.1:{port}")).arg(dir).env("RCLONE_CONFIG", "/dev/null");
    servers::serve(cmd, port, "rclone serve http");
    format!("http://127.0.0.1:{port}/")
}

fn python_http(dir: &Path) -> String {
    let port = servers::port();
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "http.server", "--bind", "127.0.0.1", "--directory"]).arg(dir).arg(port.to_string());
    servers::serve(cmd, port, "python3 -m http.server");
    format!("http://127.0.0.1:{port}/")
}

fn remote(url: &str, folder: &str) -> Arc<HttpRemote> {
    Arc::new(HttpRemote::new(HttpOptions::new(url, folder)).unwrap())
}

fn local_side(root: &Path) -> Side {
    std::fs::create_dir_all(root).unwrap();
    Side {
        remote: Arc::new(LocalRemote::new(root.to_path_buf(), Default::default(), None)),
        local_root: Some(root.into()),
    }
}

fn pull_and_check(url: &str, files: &[(String, Vec<u8>, i64)]) {
    let tmp = tempfile::tempdir().unwrap();
    let src = remote(url, "");
    let dst = local_side(&tmp.path().join("pulled"));
    let (r, ev) = run_between(src.as_ref(), &dst, Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(count(&ev, FileAction::CopiedNew), files.len());
    let got = dst.files();
    for (rel, data, t) in files {
        let (d, m) = &got[rel.as_str()];
        assert_eq!(d, data, "{rel}");
        assert_eq!(*m, *t, "{rel}: the server's Last-Modified");
    }
    assert_eq!(got.len(), files.len());
    // Nothing changed: nothing is transferred again.
    let again = remote(url, "");
    let (r, ev) = run_between(again.as_ref(), &dst, Mode::Sync, |_| {});
    assert!(r.error.is_none());
    assert_eq!(transfers(&ev), 0);
}

#[test]
fn a_tree_served_by_rclone_lists_reads_and_pulls() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let files = tree(&root);
    let url = rclone_http(&root);
    let r = remote(&url, "");
    let mut l = r.list_dir(&RelPath::root(), &mut |e| panic!("{e}")).unwrap();
    l.sort_by(|a, b| a.name.cmp(&b.name));
    let mut want: Vec<&str> = NAMES.iter().copied().chain(["sub dir"]).collect();
    want.sort();
    assert_eq!(l.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()).collect::<Vec<_>>(), want);
    let f = l.iter().find(|e| e.name == b"with space.bin").unwrap();
    assert_eq!(f.size, 1001);
    assert_eq!(f.mtime, Some(files[1].2));
    let counts: std::collections::HashMap<_, _> = r.request_counts().into_iter().collect();
    assert_eq!((counts["LIST"], counts["HEAD"]), (1, NAMES.len() as u64), "one HEAD per file");
    // Ranged reads.
    let p = RelPath::from_str_checked("with space.bin").unwrap();
    let mut buf = Vec::new();
    r.open(&p, f, 10, 20).unwrap().reader.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, &files[1].1[10..30]);
    // Roots.
    assert_eq!(remote(&url, "sub dir").root_state().unwrap(), RootState::Dir);
    assert_eq!(remote(&url, "sub dir/plain.txt").root_state().unwrap(), RootState::File);
    assert_eq!(remote(&url, "nope").root_state().unwrap(), RootState::Missing);
    let e = remote(&url, "nope").list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::DirNotFound);
    pull_and_check(&url, &files);
}

#[test]
fn python_http_server_pulls_without_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let files = tree(&root);
    pull_and_check(&python_http(&root), &files);
}

#[test]
fn writes_are_refused_with_a_sentence() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    tree(&root);
    let url = rclone_http(&root);
    let r = remote(&url, "");
    let err =
        r.put(&RelPath::from_str_checked("x").unwrap(), &Bytes(b"x".to_vec(), T1), &PutInfo::default()).unwrap_err();
    assert_eq!(err.kind(), Kind::Unsupported);
    assert!(err.to_string().contains("read-only"), "{err}");
    // A push through the engine fails and changes nothing.
    let src = local_side(&tmp.path().join("src"));
    src.write("new.txt", b"new", T1);
    let dst = Side { remote: r.clone(), local_root: None };
    let (rep, _) = run_between(src.remote.as_ref(), &dst, Mode::Copy, |_| {});
    assert!(rep.error.is_some());
    assert!(!root.join("new.txt").exists());
}

#[test]
fn a_busy_server_is_waited_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    tree(&root);
    let url = rclone_http(&root);
    let proxy = FaultProxy::start(url.trim_end_matches('/'));
    proxy.add(1, |s| s.method == "GET", slow_down(Some("1")));
    proxy.add(1, |s| s.method == "HEAD", slow_down(None));
    let r = remote(&format!("{}/", proxy.endpoint), "sub dir");
    let t = std::time::Instant::now();
    let l = r.list_dir(&RelPath::root(), &mut |e| panic!("{e}")).unwrap();
    assert_eq!(l.len(), NAMES.len() + 1);
    assert!(t.elapsed() >= std::time::Duration::from_millis(900), "Retry-After honoured");
}

#[test]
fn the_registry_builds_and_verifies_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    tree(&root);
    let url = rclone_http(&root);
    let cred = serde_json::json!({"type": "HTTP", "url": url});
    let v = cloudsync::task::api::credential_verify(&cred);
    assert_eq!(v["valid"], true, "{v}");
    // A closed port: a clear error, not a hang.
    let closed = format!("http://127.0.0.1:{}/", servers::port());
    let v = cloudsync::task::api::credential_verify(&serde_json::json!({"type": "HTTP", "url": closed}));
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("127.0.0.1"), "{v}");
}

/// rclone's http backend reads the same names, sizes and times from the same URL (and
/// cloudsync lists a name rclone cannot).
#[test]
fn rclone_reads_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let files = tree(&root);
    let url = rclone_http(&root);
    let out = Command::new(common::rclone_current())
        .args(["lsjson", "-R", "--files-only", "--http-url", &url, ":http:"])
        .env("RCLONE_CONFIG", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    // rclone 1.75 skips a top-level `colon:x` ("object not found": it reads the link as a
    // URL scheme); cloudsync lists it. Everything else is the same.
    let listed: Vec<&str> = v.iter().map(|e| e["Path"].as_str().unwrap()).collect();
    let missed: Vec<&String> = files.iter().map(|f| &f.0).filter(|p| !listed.contains(&p.as_str())).collect();
    assert!(missed.iter().all(|p| p.as_str() == "colon:x"), "{missed:?}");
    for e in v {
        let path = e["Path"].as_str().unwrap();
        let (_, data, t) = files.iter().find(|f| f.0 == path).unwrap_or_else(|| panic!("{path}"));
        assert_eq!(e["Size"].as_u64().unwrap() as usize, data.len(), "{path}");
        let m = chrono::DateTime::parse_from_rfc3339(e["ModTime"].as_str().unwrap()).unwrap();
        assert_eq!(m.timestamp_nanos_opt().unwrap(), *t, "{path}");
    }
}

/// A file whose HEAD is refused fails the pull, and a SYNC deletes nothing after it; a
/// file whose download is cut short is never left half-written.
#[test]
fn errors_block_deletions_and_cut_downloads_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("www");
    let files = tree(&root);
    let url = rclone_http(&root);
    let proxy = FaultProxy::start(url.trim_end_matches('/'));
    let r = remote(&format!("{}/", proxy.endpoint), "");
    let dst = local_side(&tmp.path().join("pulled"));
    dst.write("only here", b"keep me", T1);
    proxy.add(
        usize::MAX,
        |s| s.method == "HEAD" && s.path == "/plain.txt",
        common::faults::Fault::Answer { status: 403, headers: vec![], body: String::new() },
    );
    let (rep, _) = run_between(r.as_ref(), &dst, Mode::Sync, |_| {});
    let e = rep.error.expect("a refused HEAD fails the run");
    assert!(e.to_string().contains("plain.txt"), "{e}");
    assert!(tmp.path().join("pulled/only here").exists(), "nothing is deleted after an error");
    // Every download of one file cut after 100 bytes: retried, then an error, and no
    // partial file under its name.
    let proxy = FaultProxy::start(url.trim_end_matches('/'));
    let big = files.iter().find(|f| f.0 == "sub dir/deeper/colon:x").unwrap();
    assert!(big.1.len() > 100);
    proxy.add(
        usize::MAX,
        |s| s.method == "GET" && s.path.ends_with("/colon%3Ax"),
        common::faults::Fault::CutBody { after: 100 },
    );
    let r = remote(&format!("{}/", proxy.endpoint), "");
    let dst = local_side(&tmp.path().join("pulled2"));
    let (rep, _) = run_between(r.as_ref(), &dst, Mode::Copy, |_| {});
    assert!(rep.error.is_some(), "a cut download is an error");
    assert!(!tmp.path().join("pulled2/sub dir/deeper/colon:x").exists());
    let leftovers: Vec<_> = walk(&tmp.path().join("pulled2")).into_iter().filter(|p| p.contains("partial")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(tmp.path().join("pulled2/sub dir/deeper/plain.txt").exists(), "the other files arrived");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path().to_string_lossy().into_owned());
        }
    }
    out
}
