//! kill -9 at seeded random points of a push and of a pull (multipart uploads, resumable
//! large downloads, small files), each followed by a re-run: the trees end identical, no
//! temporary file and no unfinished upload is left, and nothing that was complete before
//! the kill is transferred again (counted at a proxy in front of s3s-fs).

mod common;

use cloudsync::engine::{self, Mode, SyncOptions};
use cloudsync::path::RelPath;
use cloudsync::remote::local::{LocalOptions, LocalRemote};
use cloudsync::remote::s3::{S3Options, S3Remote};
use cloudsync::remote::{Entry, Remote};
use common::faults::{FaultProxy, Seen};
use common::{ACCESS_KEY, Rng, S3Server, SECRET_KEY};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const MIB: usize = 1024 * 1024;
const ROUNDS: u64 = 20;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// The tree: small files, two multipart files, one large (resumable) download.
fn layout() -> Vec<(String, usize)> {
    let mut files: Vec<(String, usize)> = (0..16).map(|i| (format!("small/f{i:02}.txt"), 1000 + i * 3000)).collect();
    files.push(("media/a.bin".into(), 12 * MIB + 3));
    files.push(("media/b.bin".into(), 11 * MIB));
    files.push(("media/big.iso".into(), 36 * MIB + 7));
    files
}

fn write_file(root: &Path, rel: &str, data: &[u8], mtime: i64) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    common::set_mtime(&p, mtime);
}

/// (content, mtime) of every file below `root`, temporary files included.
fn local_tree(root: &Path) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let m = std::fs::metadata(&p).unwrap();
                use std::os::unix::fs::MetadataExt;
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, (std::fs::read(&p).unwrap(), m.mtime() * 1_000_000_000 + m.mtime_nsec()));
            }
        }
    }
    out
}

/// (content, mtime) of every object, read back directly from the server.
fn remote_tree(r: &S3Remote) -> BTreeMap<String, (Vec<u8>, i64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![RelPath::root()];
    while let Some(d) = stack.pop() {
        for e in r.list_dir(&d, &mut |_| {}).unwrap() {
            let p = d.join(&e.name).unwrap();
            if e.is_dir() {
                stack.push(p);
                continue;
            }
            out.insert(p.display(), (read_object(r, &p, &e), r.mod_time(&p, &e).unwrap()));
        }
    }
    out
}

fn read_object(r: &S3Remote, p: &RelPath, e: &Entry) -> Vec<u8> {
    let mut v = Vec::new();
    r.open(p, e, 0, u64::MAX).unwrap().reader.read_to_end(&mut v).unwrap();
    v
}

fn uploads_in_progress(server: &S3Server) -> usize {
    std::fs::read_dir(server.data.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".upload_id-"))
        .count()
}

fn cli(args: &[&str], proxy: &FaultProxy) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudsync"));
    c.args(args)
        .args(["--s3-upload-cutoff", "5", "--s3-chunk-size", "5"])
        .env("CLOUDSYNC_S3_ENDPOINT", &proxy.endpoint)
        .env("CLOUDSYNC_S3_ACCESS_KEY_ID", ACCESS_KEY)
        .env("CLOUDSYNC_S3_SECRET_ACCESS_KEY", SECRET_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Start the command, kill -9 it after `delay` (unless it finished first).
fn run_killed(mut c: Command, delay: Duration) {
    let mut child = c.spawn().unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

fn run_to_end(mut c: Command, proxy: &FaultProxy) -> String {
    c.arg("-vv");
    let out = c.output().unwrap();
    if out.status.code() != Some(0) {
        let seen = proxy.seen.lock().unwrap();
        let last: Vec<String> = seen
            .iter()
            .rev()
            .take(12)
            .map(|s| format!("{} {}?{} -> {}", s.method, s.path, s.query, s.status))
            .collect();
        panic!("re-run failed: {}\nlast requests: {last:#?}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn is_upload_of(s: &Seen, key: &str) -> bool {
    (s.method == "PUT" || s.method == "POST") && s.path.ends_with(key)
}

fn is_download_of(s: &Seen, key: &str) -> bool {
    s.method == "GET" && s.path.ends_with(key)
}

#[test]
fn push_killed_at_random_points_then_rerun() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let direct = Arc::new(S3Remote::new(S3Options::new(server.client_config(), "kill", "tree"), None).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let index = tmp.path().join("index.db");
    let mut rng = Rng(0x5EED_0001);
    for (rel, len) in layout() {
        write_file(&src, &rel, &content(len, rng.next()), 1_600_000_000_000_000_000);
    }
    let (src_s, index_s) = (src.to_str().unwrap().to_string(), index.to_str().unwrap().to_string());
    let args = ["copy", &src_s, "s3:kill/tree", "--index", &index_s];
    for round in 0..ROUNDS {
        // Change the large files and a few small ones, so that uploads are in flight.
        for (rel, len) in layout() {
            if rel.starts_with("media/") || rng.below(4) == 0 {
                let t = 1_600_000_000_000_000_000 + (round as i64 + 1) * 1_000_000_007;
                write_file(&src, &rel, &content(len, rng.next()), t);
            }
        }
        let delay = Duration::from_millis(20 + rng.below(900));
        run_killed(cli(&args, &proxy), delay);
        // What is complete now must not be sent again.
        let want = local_tree(&src);
        let done: Vec<String> =
            remote_tree(&direct).into_iter().filter(|(k, v)| want.get(k) == Some(v)).map(|(k, _)| k).collect();
        let before = proxy.seen.lock().unwrap().len();
        let log = run_to_end(cli(&args, &proxy), &proxy);
        let seen: Vec<Seen> = proxy.seen.lock().unwrap()[before..].to_vec();
        for k in &done {
            let again = seen.iter().filter(|s| is_upload_of(s, k)).count();
            if again > 0 {
                eprintln!("{}", log.lines().filter(|l| l.contains(k.as_str())).collect::<Vec<_>>().join("\n"));
            }
            let what: Vec<String> = seen
                .iter()
                .filter(|s| s.path.ends_with(k.as_str()))
                .map(|s| format!("{} ?{} -> {}", s.method, s.query, s.status))
                .collect();
            assert_eq!(
                again, 0,
                "round {round} (kill after {delay:?}): {k} was complete and was uploaded again: {what:#?}"
            );
        }
        assert_eq!(remote_tree(&direct), want, "round {round}: the trees differ");
        assert_eq!(uploads_in_progress(&server), 0, "round {round}: an unfinished upload was left");
    }
}

#[test]
fn pull_killed_at_random_points_then_rerun() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let direct = Arc::new(S3Remote::new(S3Options::new(server.client_config(), "killpull", "tree"), None).unwrap());
    direct.mkdir(&RelPath::root()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let upstream = tmp.path().join("upstream");
    let dst = tmp.path().join("dst");
    let index = tmp.path().join("index.db");
    let mut rng = Rng(0x5EED_0002);
    for (rel, len) in layout() {
        write_file(&upstream, &rel, &content(len, rng.next()), 1_600_000_000_000_000_000);
    }
    let (dst_s, index_s) = (dst.to_str().unwrap().to_string(), index.to_str().unwrap().to_string());
    let args = ["copy", "s3:killpull/tree", &dst_s, "--index", &index_s];
    let upstream_remote = LocalRemote::new(&upstream, LocalOptions::default(), None);
    for round in 0..ROUNDS {
        for (rel, len) in layout() {
            if rel.starts_with("media/") || rng.below(4) == 0 {
                let t = 1_600_000_000_000_000_000 + (round as i64 + 1) * 1_000_000_007;
                write_file(&upstream, &rel, &content(len, rng.next()), t);
            }
        }
        let opts = SyncOptions { mode: Mode::Copy, retries: 1, ..SyncOptions::default() };
        assert!(engine::run(&upstream_remote, direct.as_ref(), &opts).error.is_none());
        let want = local_tree(&upstream);
        let delay = Duration::from_millis(20 + rng.below(900));
        run_killed(cli(&args, &proxy), delay);
        let done: Vec<String> = if dst.exists() {
            local_tree(&dst).into_iter().filter(|(k, v)| want.get(k) == Some(v)).map(|(k, _)| k).collect()
        } else {
            Vec::new()
        };
        let before = proxy.seen.lock().unwrap().len();
        run_to_end(cli(&args, &proxy), &proxy);
        let seen: Vec<Seen> = proxy.seen.lock().unwrap()[before..].to_vec();
        for k in &done {
            let again = seen.iter().filter(|s| is_download_of(s, k)).count();
            assert_eq!(again, 0, "round {round} (kill after {delay:?}): {k} was complete and was downloaded again");
        }
        let got = local_tree(&dst);
        let temps: Vec<&String> = got.keys().filter(|k| k.ends_with(".cloudsync-partial")).collect();
        assert!(temps.is_empty(), "round {round}: temporary files left: {temps:?}");
        assert_eq!(got, want, "round {round}: the trees differ");
    }
}
