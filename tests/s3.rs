//! The S3 remote against a real S3 server (s3s-fs) and, for failures a real server will
//! not produce on demand, against a scripted fake server.

mod common;

use cloudsync::engine::{self, CancelToken, Mode, SyncOptions};
use cloudsync::error::{Error, Kind, Result};
use cloudsync::index::Index;
use cloudsync::path::RelPath;
use cloudsync::remote::local::LocalRemote;
use cloudsync::remote::s3::client::ClientConfig;
use cloudsync::remote::s3::{S3Options, S3Remote};
use cloudsync::remote::{Entry, Nanos, PutInfo, Remote, Source};
use common::fake::{FakeServer, Resp, list_xml};
use common::*;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn counts(r: &dyn Remote) -> std::collections::HashMap<&'static str, u64> {
    r.request_counts().into_iter().collect()
}

fn local(dir: &std::path::Path) -> Side {
    Side {
        remote: Arc::new(LocalRemote::new(dir.to_path_buf(), Default::default(), None)),
        local_root: Some(dir.to_path_buf()),
    }
}

fn tree(dir: &std::path::Path, n: usize) {
    for i in 0..n {
        let p = dir.join(format!("d{}/f{i}.txt", i % 5));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("file {i}").repeat(i + 1)).unwrap();
        set_mtime(&p, T1 + i as i64);
    }
}

/// A no-op re-sync costs LIST requests only: no HEAD, no PUT. An mtime-only change
/// costs one CopyObject and no upload.
#[test]
fn steady_state_needs_no_head() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    tree(&tmp.path().join("src"), 50);
    let index = Arc::new(Index::open(&tmp.path().join("index.db")).unwrap());
    let src = LocalRemote::new(tmp.path().join("src"), Default::default(), Some(index.clone()));
    let push = |remote: &S3Remote| engine::run(&src, remote, &SyncOptions::default());

    let r1 = s3.remote("bkt", "data", Some(index.clone()));
    assert!(push(&r1).error.is_none());
    assert_eq!(counts(r1.as_ref())["PUT"], 50);

    let r2 = s3.remote("bkt", "data", Some(index.clone()));
    let rep = push(&r2);
    assert!(rep.error.is_none());
    assert_eq!(rep.summary.files_transferred, 0);
    let c = counts(r2.as_ref());
    assert_eq!((c["HEAD"], c["PUT"], c["GET"], c["COPY"]), (0, 0, 0, 0), "{c:?}");
    assert_eq!(c["LIST"], 1 + 6, "one root probe plus one listing per directory");

    set_mtime(&tmp.path().join("src/d0/f0.txt"), T2);
    let r3 = s3.remote("bkt", "data", Some(index.clone()));
    let rep = push(&r3);
    assert!(rep.error.is_none());
    assert_eq!(rep.summary.mod_times_updated, 1);
    let c = counts(r3.as_ref());
    assert_eq!((c["HEAD"], c["PUT"], c["COPY"]), (0, 0, 1), "{c:?}");

    // The new time is really stored in the object (read without the index).
    let plain = s3.remote("bkt", "data", None);
    let e = plain.list_dir(&RelPath::from_str_checked("d0").unwrap(), &mut |_| {}).unwrap();
    let f0 = e.iter().find(|e| e.name == b"f0.txt").unwrap();
    assert_eq!(plain.mod_time(&RelPath::from_str_checked("d0/f0.txt").unwrap(), f0).unwrap(), T2);
}

/// Objects the index has not seen (uploaded by another tool) are HEADed once, then not.
#[test]
fn foreign_objects_are_headed_once() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    tree(&tmp.path().join("src"), 10);
    let src = LocalRemote::new(tmp.path().join("src"), Default::default(), None);
    // "Another tool": a push without our index.
    assert!(engine::run(&src, s3.remote("bkt", "x", None).as_ref(), &SyncOptions::default()).error.is_none());
    let index = Arc::new(Index::open(&tmp.path().join("index.db")).unwrap());
    let first = s3.remote("bkt", "x", Some(index.clone()));
    assert!(engine::run(&src, first.as_ref(), &SyncOptions::default()).error.is_none());
    assert_eq!(counts(first.as_ref())["HEAD"], 10);
    assert_eq!(counts(first.as_ref())["PUT"], 0);
    let second = s3.remote("bkt", "x", Some(index));
    assert!(engine::run(&src, second.as_ref(), &SyncOptions::default()).error.is_none());
    assert_eq!(counts(second.as_ref())["HEAD"], 0);
}

/// Multipart uploads at chunk boundaries (B32): exact content, one part per chunk.
#[test]
fn multipart_boundary_sizes() {
    let s3 = S3Server::start();
    let mib = 1024 * 1024;
    for (size, parts) in [(5 * mib, 1), (5 * mib + 1, 2), (10 * mib, 2), (12 * mib + 7, 3)] {
        let r = s3.remote_with("bkt", "mp", None, |o| {
            o.upload_cutoff = 5 * mib as u64;
            o.chunk_size = 5 * mib as u64;
        });
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let path = RelPath::from_str_checked(&format!("f{size}")).unwrap();
        let e = r
            .put(&path, &Bytes(data.clone(), T1), &PutInfo { size: size as u64, mtime: Some(T1), ..Default::default() })
            .unwrap();
        assert_eq!(e.size, size as i64);
        let c = counts(r.as_ref());
        assert_eq!((c["POST"], c["PUT"]), (2, parts), "size {size}: create+complete, one PUT per part");
        let listed = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
        let entry = listed.iter().find(|x| x.name == path.as_bytes()).unwrap();
        let mut back = Vec::new();
        r.open(&path, entry, 0, u64::MAX).unwrap().reader.read_to_end(&mut back).unwrap();
        assert!(back == data, "content of {size}");
        assert_eq!(r.mod_time(&path, entry).unwrap(), T1);
    }
}

/// A source that fails part-way.
struct Failing {
    size: u64,
    fail_at: u64,
}

impl Source for Failing {
    fn size(&self) -> u64 {
        self.size
    }
    fn mtime(&self) -> Result<Nanos> {
        Ok(T1)
    }
    fn open_at(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        struct R {
            pos: u64,
            end: u64,
            fail_at: u64,
        }
        impl Read for R {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.pos >= self.fail_at {
                    return Err(Error::new(Kind::Io, "disk read error").into());
                }
                let n = (buf.len() as u64).min(self.end - self.pos).min(self.fail_at - self.pos) as usize;
                buf[..n].fill(b'x');
                self.pos += n as u64;
                Ok(n)
            }
        }
        Ok(Box::new(R { pos: offset, end: offset + len, fail_at: self.fail_at }))
    }
}

/// B9/B33: a put whose source fails leaves no object behind, single-part or multipart.
#[test]
fn failed_uploads_leave_nothing() {
    let s3 = S3Server::start();
    let mib = 1024 * 1024u64;
    let r = s3.remote_with("bkt", "fail", None, |o| {
        o.upload_cutoff = 5 * mib;
        o.chunk_size = 5 * mib;
    });
    for (size, fail_at) in [(1000, 500), (12 * mib, 7 * mib)] {
        let path = RelPath::from_str_checked("victim").unwrap();
        let err = r
            .put(&path, &Failing { size, fail_at }, &PutInfo { size, mtime: Some(T1), ..Default::default() })
            .unwrap_err();
        assert!(err.to_string().contains("disk read error"), "{err}");
        assert!(r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty(), "size {size}: nothing must be visible");
    }
}

/// Cancelling a run mid-upload: the run ends Cancelled, nothing partial is visible.
#[test]
fn cancel_leaves_no_partial_object() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src_dir = tmp.path().join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    std::fs::write(src_dir.join("big"), vec![7u8; 12 * 1024 * 1024]).unwrap();
    let src = LocalRemote::new(src_dir, Default::default(), None);
    let dst = s3.remote_with("bkt", "c", None, |o| {
        o.upload_cutoff = 5 * 1024 * 1024;
        o.chunk_size = 5 * 1024 * 1024;
    });
    let cancel = CancelToken::new();
    let c2 = cancel.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        c2.cancel();
    });
    let opts = SyncOptions { cancel, bwlimit: engine::BwTimetable::parse("4M").unwrap(), ..SyncOptions::default() };
    let started = Instant::now();
    let rep = engine::run(&src, dst.as_ref(), &opts);
    assert!(started.elapsed() < Duration::from_secs(10), "cancel must take effect promptly");
    assert_eq!(rep.error.map(|e| e.kind()), Some(Kind::Cancelled));
    assert!(dst.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty());
}

/// B26: ranged reads return the right bytes.
#[test]
fn ranged_reads() {
    let s3 = S3Server::start();
    let r = s3.remote("bkt", "", None);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let p = RelPath::from_str_checked("r").unwrap();
    r.put(&p, &Bytes(data.clone(), T1), &PutInfo { size: data.len() as u64, mtime: Some(T1), ..Default::default() })
        .unwrap();
    let e = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().pop().unwrap();
    for (off, len) in [(0u64, 10u64), (99_990, 10), (12_345, 54_321), (50_000, u64::MAX), (100_000, 5)] {
        let mut got = Vec::new();
        r.open(&p, &e, off, len).unwrap().reader.read_to_end(&mut got).unwrap();
        let end = (off.saturating_add(len)).min(100_000) as usize;
        assert_eq!(got, &data[off as usize..end], "range {off}+{len}");
    }
}

/// Wrong credentials: a clear error that never contains the secret.
#[test]
fn wrong_secret_is_a_clear_permission_error() {
    let s3 = S3Server::start();
    let mut cfg = s3.client_config();
    cfg.secret_access_key = "definitely-wrong-secret".into();
    let r = S3Remote::new(S3Options::new(cfg, "bkt", ""), None).unwrap();
    let err = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(err.kind(), Kind::Permission, "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("secret access key is wrong") || text.contains("access denied"), "{text}");
    assert!(!text.contains("definitely-wrong-secret"));
}

/// Pulling from a bucket that does not exist: "directory not found", exit code 3.
#[test]
fn missing_bucket_on_pull() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let r = S3Remote::new(S3Options::new(s3.client_config(), "nosuchbucket", ""), None).unwrap();
    let rep =
        engine::run(&r, &LocalRemote::new(tmp.path().join("d"), Default::default(), None), &SyncOptions::default());
    assert_eq!(rep.exit_code(), 3, "{:?}", rep.error);
    // rclone's phrasing, and the bucket named.
    let text = rep.error.unwrap().to_string();
    assert!(text.contains("directory not found") && text.contains("nosuchbucket"), "{text}");
}

fn fake_remote(endpoint: &str) -> S3Remote {
    let cfg = ClientConfig {
        endpoint: endpoint.into(),
        region: "us-east-1".into(),
        access_key_id: "AK".into(),
        secret_access_key: "SK".into(),
        session_token: None,
        path_style: true,
        connect_timeout: Duration::from_secs(5),
        response_timeout: Duration::from_secs(10),
        low_level_retries: 3,
        sign_accept_encoding: true,
    };
    S3Remote::new(S3Options::new(cfg, "b", ""), None).unwrap()
}

fn get_ok(body: &[u8]) -> Resp {
    Resp::new(200, body.to_vec())
        .header("x-amz-meta-mtime", "1577836800.5")
        .header("etag", &format!("\"{}\"", md5_hex(body)))
}

/// Hostile keys from a server are refused with an error, never written outside the
/// destination, and (being errors) block every deletion.
#[test]
fn hostile_keys_are_refused() {
    let ok_md5 = md5_hex(b"fine");
    let server = FakeServer::start(move |req| {
        if req.method == "GET" && req.has_query("list-type") {
            let mut xml = list_xml(&[("../evil", 4, "x"), ("ok.txt", 4, &ok_md5), ("..", 4, "x"), (".", 4, "x")]);
            xml = xml.replace("<IsTruncated>", "<EncodingType>url</EncodingType><IsTruncated>");
            xml = xml.replace("</ListBucketResult>", "<Contents><Key>nul%00name</Key><Size>1</Size><ETag></ETag><LastModified>2020-01-01T00:00:00Z</LastModified></Contents><CommonPrefixes><Prefix>../</Prefix></CommonPrefixes><CommonPrefixes><Prefix>/</Prefix></CommonPrefixes></ListBucketResult>");
            return Resp::new(200, xml);
        }
        if req.method == "GET" && req.path == "/b/ok.txt" {
            return get_ok(b"fine");
        }
        Resp::new(404, "<Error><Code>NoSuchKey</Code><Message>no</Message></Error>")
    });
    let remote = fake_remote(&server.endpoint);
    let tmp = tempfile::tempdir().unwrap();
    let dst_dir = tmp.path().join("a/b/dst");
    std::fs::create_dir_all(&dst_dir).unwrap();
    std::fs::write(dst_dir.join("keep.txt"), b"must survive").unwrap();
    let dst = local(&dst_dir);
    let rec = Arc::new(Recorder::default());
    let opts = SyncOptions { observer: rec.clone(), retries: 1, ..SyncOptions::default() };
    let rep = engine::run(&remote, dst.remote.as_ref(), &opts);
    let err = rep.error.expect("hostile names are errors");
    assert_eq!(err.kind(), Kind::BadName, "{err}");
    assert_eq!(std::fs::read(dst_dir.join("ok.txt")).unwrap(), b"fine");
    assert_eq!(std::fs::read(dst_dir.join("keep.txt")).unwrap(), b"must survive");
    let mut all = Vec::new();
    for e in walk(tmp.path()) {
        all.push(e);
    }
    assert_eq!(all, vec!["a", "a/b", "a/b/dst", "a/b/dst/keep.txt", "a/b/dst/ok.txt"], "nothing written anywhere else");
    let logs = rec.logs.lock().unwrap();
    assert!(logs.iter().any(|(_, m)| m.contains("refusing unsafe name")), "{logs:?}");
    assert!(logs.iter().any(|(_, m)| m.contains("not deleting files as there were IO errors")));
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            out.push(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// Malformed listings are errors (retried, then reported), and nothing is deleted.
#[test]
fn malformed_listing_is_an_error() {
    let server = FakeServer::start(|req| {
        if req.has_query("list-type") {
            return Resp::new(200, "<ListBucketResult><Contents><Key>a</Key><Size>notanumber</Size>");
        }
        Resp::new(404, "")
    });
    let remote = fake_remote(&server.endpoint);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("keep"), b"k").unwrap();
    let rep = engine::run(
        &remote,
        &LocalRemote::new(tmp.path().to_path_buf(), Default::default(), None),
        &SyncOptions { retries: 1, ..Default::default() },
    );
    let err = rep.error.expect("error");
    assert_eq!(err.kind(), Kind::Protocol, "{err}");
    assert!(err.to_string().contains("malformed XML"), "{err}");
    assert!(tmp.path().join("keep").exists());
    assert_eq!(server.count("GET"), 3, "retried up to the low-level retry limit");
}

/// Throttling (503 SlowDown with Retry-After) is retried and honoured.
#[test]
fn throttling_is_retried_with_retry_after() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let server = FakeServer::start(move |req| {
        if req.has_query("list-type") && c.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            return Resp::new(
                503,
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )
            .header("retry-after", "1");
        }
        Resp::new(200, list_xml(&[]))
    });
    let remote = fake_remote(&server.endpoint);
    let started = Instant::now();
    let entries = remote.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    assert!(entries.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(1900), "Retry-After: 1 was not honoured twice");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);
}

/// Downloads land atomically: a body that ends early or does not match its ETag leaves
/// neither the file nor a temporary file.
#[test]
fn downloads_are_atomic() {
    for case in ["short", "corrupt"] {
        let body = b"0123456789".to_vec();
        let etag = md5_hex(&body);
        let list_etag = etag.clone();
        let server = FakeServer::start(move |req| {
            if req.has_query("list-type") {
                return Resp::new(200, list_xml(&[("f", 10, &list_etag)]));
            }
            let mut r = get_ok(if case == "short" { b"01234" } else { b"0123456X89" });
            if case == "short" {
                r.claimed_len = Some(10);
            }
            r
        });
        let remote = fake_remote(&server.endpoint);
        let tmp = tempfile::tempdir().unwrap();
        let dst = LocalRemote::new(tmp.path().to_path_buf(), Default::default(), None);
        let rep = engine::run(&remote, &dst, &SyncOptions { retries: 1, ..Default::default() });
        let err = rep.error.unwrap_or_else(|| panic!("{case}: must fail"));
        assert!(matches!(err.kind(), Kind::Corrupted | Kind::Network | Kind::Protocol), "{case}: {err:?}");
        assert!(walk(tmp.path()).is_empty(), "{case}: left {:?}", walk(tmp.path()));
        let _ = etag;
    }
}

/// Entry used by tests that need one.
#[allow(dead_code)]
fn file_entry(name: &str, size: i64) -> Entry {
    Entry::file(name.as_bytes(), size, Some(T1))
}

/// Sync through the CLI-facing spec path with an index does what the library does.
#[test]
fn pull_of_pushed_tree_round_trips_mtimes() {
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    tree(&tmp.path().join("src"), 20);
    let src = local(&tmp.path().join("src"));
    let remote = s3.remote("bkt", "rt", None);
    assert!(engine::run(src.remote.as_ref(), remote.as_ref(), &SyncOptions::default()).error.is_none());
    let back = local(&tmp.path().join("back"));
    let (rep, _) = run_between(remote.as_ref(), &back, Mode::Sync, |_| {});
    assert!(rep.error.is_none());
    assert_eq!(src.files(), back.files());
    assert_eq!(counts(remote.as_ref())["HEAD"], 0, "GET responses carry the mtime: no HEAD needed to pull");
}

/// What a PUT carries: rclone's mtime format, the storage class and SSE options, and a
/// Content-MD5 when the digest is known before the upload.
#[test]
fn upload_headers() {
    let server = FakeServer::start(|req| {
        if req.method == "PUT" {
            return Resp::new(200, "").header("etag", &format!("\"{}\"", md5_hex(&req.body)));
        }
        Resp::new(200, list_xml(&[]))
    });
    let cfg = fake_remote(&server.endpoint);
    drop(cfg);
    let mut opts = S3Options::new(
        ClientConfig {
            endpoint: server.endpoint.clone(),
            region: "eu-west-1".into(),
            access_key_id: "AK".into(),
            secret_access_key: "SK".into(),
            session_token: None,
            path_style: true,
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            low_level_retries: 1,
            sign_accept_encoding: true,
        },
        "b",
        "pre/fix",
    );
    opts.storage_class = Some("STANDARD_IA".into());
    opts.server_side_encryption = Some("AES256".into());
    let r = S3Remote::new(opts, None).unwrap();
    let data = b"hello headers".to_vec();
    let md5: [u8; 16] = md5::Digest::finalize(<md5::Md5 as md5::Digest>::new_with_prefix(&data)).into();
    let p = RelPath::from_str_checked("dir/a b.txt").unwrap();
    let e = r
        .put(
            &p,
            &Bytes(data.clone(), 1_354_040_105_123_456_789),
            &PutInfo { size: 13, mtime: Some(1_354_040_105_123_456_789), md5: Some(md5), ..Default::default() },
        )
        .unwrap();
    assert_eq!(e.md5, Some(md5));
    let reqs = server.requests.lock().unwrap();
    let put = reqs.iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(put.path, "/b/pre/fix/dir/a%20b.txt");
    let h = |k: &str| put.headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(h("x-amz-meta-mtime").as_deref(), Some("1354040105.123456789"));
    assert_eq!(h("x-amz-storage-class").as_deref(), Some("STANDARD_IA"));
    assert_eq!(h("x-amz-server-side-encryption").as_deref(), Some("AES256"));
    assert_eq!(h("content-type").as_deref(), Some("text/plain; charset=utf-8"));
    assert_eq!(h("content-md5").as_deref(), Some(base64_std(&md5).as_str()));
    assert_eq!(h("x-amz-content-sha256").as_deref(), Some("UNSIGNED-PAYLOAD"));
    assert!(h("authorization").unwrap().contains("/eu-west-1/s3/aws4_request"));
    assert_eq!(put.body, data);
}

fn base64_std(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `cloudsync.create_bucket` for Storj (its gateway is S3): the bucket appears on the
/// server and lists; a second create of a bucket the account owns is not an error where
/// the server says so, and S3 itself is refused with TrueNAS's text.
#[test]
fn storj_creates_buckets() {
    let s3 = S3Server::start();
    let mut storj = s3.credential_provider();
    storj.insert("type".into(), "STORJ_IX".into());
    cloudsync::remote::registry::create_bucket(&storj, "made-here").unwrap();
    assert!(s3.data.path().join("made-here").is_dir(), "the bucket is on the server");
    let names: Vec<String> =
        cloudsync::remote::registry::list_buckets(&storj).unwrap().into_iter().map(|(n, _)| n).collect();
    assert!(names.contains(&"made-here".to_string()), "{names:?}");
    let e = cloudsync::remote::registry::create_bucket(&s3.credential_provider(), "other").unwrap_err();
    assert_eq!(e.to_string(), "This provider can't create buckets");
    assert!(!s3.data.path().join("other").exists());
}
