//! End-to-end integrity under injected faults: every transfer verified by content, nothing
//! torn, no endless listing, nothing left behind by a crash. Real s3s-fs behind the
//! fault-injecting proxy of tests/common/faults.rs.

mod common;

use cloudsync::engine::{self, Mode, SyncOptions};
use cloudsync::error::Kind;
use cloudsync::index::Index;
use cloudsync::path::RelPath;
use cloudsync::remote::Remote;
use cloudsync::remote::local::{LocalOptions, LocalRemote};
use cloudsync::remote::s3::client::{Op, Request, header};
use cloudsync::remote::s3::{S3Options, S3Remote};
use common::faults::{Fault, FaultProxy, Seen, internal_error, slow_down};
use common::{Recorder, S3Server, T1, T2};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const MIB: usize = 1024 * 1024;

/// An S3 remote on `bucket/prefix` of `server`, reached through `proxy`.
fn s3_via(
    server: &S3Server,
    proxy: &FaultProxy,
    bucket: &str,
    index: Option<Arc<Index>>,
    tune: impl FnOnce(&mut S3Options),
) -> Arc<S3Remote> {
    server.remote(bucket, "", None); // creates the bucket directly
    let mut cfg = server.client_config();
    cfg.endpoint = proxy.endpoint.clone();
    let mut opts = S3Options::new(cfg, bucket, "data");
    tune(&mut opts);
    Arc::new(S3Remote::new(opts, index).expect("s3 remote"))
}

fn local(dir: &Path) -> Arc<LocalRemote> {
    Arc::new(LocalRemote::new(dir, LocalOptions::default(), None))
}

fn write(dir: &Path, name: &str, data: &[u8], mtime: i64) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    common::set_mtime(&p, mtime);
}

fn run(
    src: &dyn Remote,
    dst: &dyn Remote,
    mode: Mode,
    tweak: impl FnOnce(&mut SyncOptions),
) -> (engine::Report, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let mut opts = SyncOptions {
        mode,
        observer: rec.clone(),
        retries: 1,
        retries_sleep: Duration::ZERO,
        ..SyncOptions::default()
    };
    tweak(&mut opts);
    (engine::run(src, dst, &opts), rec)
}

/// A server behind a fault proxy, with `files` pushed by cloudsync into `bucket/data`.
struct Pushed {
    server: S3Server,
    proxy: FaultProxy,
    remote: Arc<S3Remote>,
    _src: tempfile::TempDir,
}

fn pushed(bucket: &str, files: &[(&str, &[u8], i64)], tune: impl FnOnce(&mut S3Options)) -> Pushed {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, bucket, None, tune);
    let src = tempfile::tempdir().unwrap();
    for (name, data, mtime) in files {
        write(src.path(), name, data, *mtime);
    }
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    Pushed { server, proxy, remote, _src: src }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8).collect()
}

fn is_get_of(name: &'static str) -> impl Fn(&Seen) -> bool + Send + Sync {
    move |s: &Seen| s.method == "GET" && s.path.ends_with(name)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push(e.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

/// Defect 1: a byte flipped in a download was accepted (s3s-fs lists no ETag, so only the
/// GET's own ETag can tell), and MOVE then deleted the only good copy.
#[test]
fn a_corrupted_download_is_refused_and_move_keeps_the_source() {
    let data = pattern(300_000, 7);
    let Pushed { server: _server, proxy, remote, _src } = pushed("flip", &[("photo.jpg", &data, T1)], |_| {});

    // Every GET of it is damaged: the pull must fail, leave no file, keep the object.
    proxy.add(usize::MAX, is_get_of("photo.jpg"), Fault::FlipByte { at: 1234 });
    let dst = tempfile::tempdir().unwrap();
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Move, |_| {});
    let err = r.error.expect("a corrupted download must fail the run");
    assert_eq!(err.kind(), Kind::Corrupted, "{err}");
    assert!(err.to_string().contains("md5 hash differs"), "{err}");
    assert!(files_in(dst.path()).is_empty(), "nothing may be left: {:?}", files_in(dst.path()));
    let listed = remote.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    assert_eq!(listed.len(), 1, "MOVE must not delete a source whose copy did not verify");

    // One damaged answer: the retry fetches it again and the file arrives intact.
    proxy.clear();
    proxy.add(1, is_get_of("photo.jpg"), Fault::FlipByte { at: 99 });
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Move, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(std::fs::read(dst.path().join("photo.jpg")).unwrap(), data);
    assert!(remote.list_dir(&RelPath::root(), &mut |_| {}).unwrap().is_empty(), "moved after it verified");
    assert!(proxy.count(is_get_of("photo.jpg")) >= 3);
}

/// Defect 1 for multipart objects (no MD5 ETag) and defect 6: cloudsync's own multipart
/// uploads carry rclone's Md5chksum, so a damaged download of one is caught too.
#[test]
fn multipart_objects_carry_md5chksum_and_their_downloads_are_verified() {
    let data = pattern(11 * MIB + 17, 3);
    let Pushed { server, proxy, remote, _src } = pushed("multi", &[("big.bin", &data, T2)], |o| {
        o.upload_cutoff = 5 * MIB as u64;
        o.chunk_size = 5 * MIB as u64;
    });
    assert_eq!(proxy.count(|s| s.method == "PUT" && s.has_query("partNumber")), 3, "three parts");
    // The object records the content MD5 (what rclone check reads).
    let head = ureq_head(&server, "multi", "data/big.bin");
    let want = base64_md5(&data);
    assert_eq!(head.as_deref(), Some(want.as_str()), "X-Amz-Meta-Md5chksum");

    proxy.add(usize::MAX, is_get_of("big.bin"), Fault::FlipByte { at: 6 * MIB });
    let dst = tempfile::tempdir().unwrap();
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {});
    assert_eq!(r.error.expect("must fail").kind(), Kind::Corrupted);
    assert!(files_in(dst.path()).is_empty());
    proxy.clear();
    let (r, rec) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(std::fs::read(dst.path().join("big.bin")).unwrap(), data);
    let logs = rec.logs.lock().unwrap();
    assert!(!logs.iter().any(|(_, l)| l.contains("verified by size only")), "it was verified by hash: {logs:?}");
}

/// An object without any hash (uploaded as multipart by another tool without Md5chksum)
/// is still transferred, and the log says it could be checked by size only.
#[test]
fn a_file_without_any_hash_is_logged_as_checked_by_size_only() {
    let Pushed { server: _server, proxy, remote, _src } = pushed("nohash", &[("a.txt", b"hello", T1)], |_| {});
    // The GET answers without an ETag: nothing tells a digest.
    proxy.add(usize::MAX, is_get_of("a.txt"), no_etag(vec![], None));
    let dst = tempfile::tempdir().unwrap();
    let (r, rec) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let logs = rec.logs.lock().unwrap();
    assert!(
        logs.iter().any(|(_, l)| l == "a.txt: verified by size only: neither side could tell a hash of this file"),
        "{logs:?}"
    );
}

/// A GET answer without its ETag (what a multipart object without rclone's metadata
/// gives), with `add` headers and optionally a flipped byte.
fn no_etag(add: Vec<(&str, String)>, flip_at: Option<usize>) -> Fault {
    Fault::EditHeaders {
        drop: vec!["etag".into()],
        add: add.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        flip_at,
    }
}

/// Build item 1: where no MD5 is told, the object's own `x-amz-checksum-*` verifies the
/// download (the strongest of them), and a composite (per-part) checksum is not taken for
/// one of the content.
#[test]
fn x_amz_checksums_verify_downloads_that_have_no_md5() {
    use cloudsync::remote::hash::{HashType, checksum};
    let data = pattern(200_000, 8);
    let Pushed { server: _server, proxy, remote, _src } = pushed("checksums", &[("f.bin", &data, T1)], |_| {});
    let b64 = |k| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(checksum(k, &data).value)
    };
    let pull = |fault: Fault| {
        proxy.clear();
        proxy.add(usize::MAX, is_get_of("f.bin"), fault);
        let dst = tempfile::tempdir().unwrap();
        let (r, rec) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {});
        let size_only = rec.logs.lock().unwrap().iter().any(|(_, l)| l.contains("verified by size only"));
        (r.error, size_only, std::fs::read(dst.path().join("f.bin")).ok())
    };
    for kind in [HashType::Crc32c, HashType::Crc32, HashType::Crc64Nvme, HashType::Sha1, HashType::Sha256] {
        let header = format!("x-amz-checksum-{}", kind.name());
        let (err, size_only, got) = pull(no_etag(vec![(&header, b64(kind))], None));
        assert!(err.is_none(), "{kind:?}: {err:?}");
        assert!(!size_only, "{kind:?} verified it");
        assert_eq!(got.as_deref(), Some(&data[..]));
        let (err, _, got) = pull(no_etag(vec![(&header, b64(kind))], Some(777)));
        let err = err.expect("a flipped byte fails");
        assert!(err.to_string().contains(&format!("{} differs", kind.name())), "{kind:?}: {err}");
        assert!(got.is_none(), "nothing is left");
    }
    // The strongest one told is used: a wrong CRC32 beside a right SHA256 does not matter.
    let (err, size_only, _) = pull(no_etag(
        vec![("x-amz-checksum-crc32", "AAAAAA==".into()), ("x-amz-checksum-sha256", b64(HashType::Sha256))],
        None,
    ));
    assert!(err.is_none() && !size_only, "{err:?}");
    // A composite checksum (of the parts' checksums) says nothing about the content.
    let (err, size_only, _) = pull(no_etag(vec![("x-amz-checksum-crc32c", "AAAAAA==-3".into())], None));
    assert!(err.is_none() && size_only, "{err:?}");
    let (err, size_only, _) = pull(no_etag(
        vec![("x-amz-checksum-crc32c", "AAAAAA==".into()), ("x-amz-checksum-type", "COMPOSITE".into())],
        None,
    ));
    assert!(err.is_none() && size_only, "{err:?}");
    // The GETs asked for the checksums.
    assert!(proxy.count(|s| s.method == "GET") > 0);
}

/// Defect 3: a ListObjectsV2 answer whose continuation token never changes made the run
/// list forever. Now the listing ends with an error after two pages.
#[test]
fn a_listing_that_repeats_its_token_ends_with_an_error() {
    let Pushed { server: _server, proxy, remote, _src } = pushed("loop", &[("a.txt", b"a", T1)], |_| {});
    let endless = |_: &Seen, body: Vec<u8>| {
        let s = String::from_utf8(body).unwrap();
        let s = s.replace("<IsTruncated>false</IsTruncated>", "<IsTruncated>true</IsTruncated>");
        let s =
            s.replace("</ListBucketResult>", "<NextContinuationToken>same</NextContinuationToken></ListBucketResult>");
        s.into_bytes()
    };
    proxy.add(usize::MAX, |s| s.method == "GET" && s.has_query("list-type"), Fault::Rewrite(Arc::new(endless)));
    let dst = tempfile::tempdir().unwrap();
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Sync, |o| o.retries = 3);
    let err = r.error.expect("an endless listing must fail");
    assert!(err.to_string().contains("would never end"), "{err}");
    let lists = proxy.count(|s| s.has_query("list-type"));
    assert!(lists <= 3 * 3, "the listing stopped at once each try: {lists} list requests");

    // Pages that are truncated, carry fresh tokens and list nothing: no progress.
    proxy.clear();
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c2 = counter.clone();
    let empty = move |_: &Seen, _body: Vec<u8>| {
        let n = c2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("<?xml version=\"1.0\"?><ListBucketResult><Name>loop</Name><IsTruncated>true</IsTruncated><NextContinuationToken>t{n}</NextContinuationToken></ListBucketResult>").into_bytes()
    };
    let dir_listing = |s: &Seen| s.method == "GET" && s.has_query("list-type") && s.query.contains("max-keys=1000");
    proxy.add(usize::MAX, dir_listing, Fault::Rewrite(Arc::new(empty)));
    let before = proxy.count(|s| s.has_query("list-type"));
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Sync, |_| {});
    let err = r.error.expect("no progress must fail");
    assert!(err.to_string().contains("no progress"), "{err}");
    let lists = proxy.count(|s| s.has_query("list-type")) - before;
    assert!(lists <= 110, "{lists} list requests");
    assert!(files_in(dst.path()).is_empty(), "nothing was synced from a broken listing");
}

/// Throttling and server errors with Retry-After (seconds and HTTP-date), resets and
/// bodies cut short are retried, and the files arrive intact.
#[test]
fn transient_faults_are_retried_to_an_intact_copy() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, "flaky", None, |_| {});
    let src = tempfile::tempdir().unwrap();
    let files: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("f{i}.bin"), pattern(70_000 + i * 1000, i as u8))).collect();
    for (n, d) in &files {
        write(src.path(), n, d, T1);
    }
    proxy.add(1, |s| s.method == "PUT" && s.path.ends_with("f0.bin"), slow_down(Some("1")));
    proxy.add(1, |s| s.method == "PUT" && s.path.ends_with("f1.bin"), slow_down(Some("Wed, 21 Oct 2015 07:28:00 GMT")));
    proxy.add(1, |s| s.method == "PUT" && s.path.ends_with("f2.bin"), internal_error());
    proxy.add(1, |s| s.method == "PUT" && s.path.ends_with("f3.bin"), Fault::ResetBeforeResponse);
    proxy.add(1, |s| s.method == "GET" && s.has_query("list-type"), slow_down(None));
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);

    proxy.add(1, is_get_of("f0.bin"), Fault::CutBody { after: 1000 });
    proxy.add(1, is_get_of("f1.bin"), Fault::ResetBeforeResponse);
    proxy.add(1, is_get_of("f2.bin"), slow_down(Some("0")));
    let dst = tempfile::tempdir().unwrap();
    let (r, _) = run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Sync, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    for (n, d) in &files {
        assert_eq!(&std::fs::read(dst.path().join(n)).unwrap(), d, "{n}");
    }
    assert_eq!(files_in(dst.path()).len(), files.len(), "no temporary file is left");
}

/// Defect 4: a temporary file of a killed pull stayed forever (and a later push would
/// upload it). It is never listed, and the next run removes it unless a live writer holds it.
#[test]
fn temporary_files_of_a_killed_pull_are_never_pushed_and_are_removed() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, "partials", None, |_| {});
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "keep.txt", b"keep", T1);
    // What a kill -9 during a pull leaves, and one a live writer holds.
    write(dir.path(), "sub/.video.mp4.0123abcd.cloudsync-partial", b"half a video", T1);
    write(dir.path(), ".live.bin.89abcdef.cloudsync-partial", b"being written", T1);
    let live = std::fs::File::open(dir.path().join(".live.bin.89abcdef.cloudsync-partial")).unwrap();
    assert_eq!(unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&live), libc::LOCK_EX) }, 0);
    // A user's file that only looks similar is the user's.
    write(dir.path(), ".notes.0123abcd.partial", b"mine", T1);

    let (r, _) = run(local(dir.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let mut pushed: Vec<String> = remote_files(remote.as_ref(), &RelPath::root());
    pushed.sort();
    assert_eq!(pushed, vec![".notes.0123abcd.partial", "keep.txt"], "temporary files are never pushed");
    assert_eq!(
        files_in(dir.path()),
        vec![".live.bin.89abcdef.cloudsync-partial", ".notes.0123abcd.partial", "keep.txt"],
        "the dead writer's file is removed, the live one's kept"
    );
    drop(live);
    // A dry run removes nothing; the next real run (a pull, in COPY mode) removes the rest.
    let (r, _) = run(remote.as_ref(), local(dir.path()).as_ref(), Mode::Copy, |o| o.dry_run = true);
    assert!(r.error.is_none());
    assert!(files_in(dir.path()).contains(&".live.bin.89abcdef.cloudsync-partial".to_string()));
    let (r, _) = run(remote.as_ref(), local(dir.path()).as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(files_in(dir.path()), vec![".notes.0123abcd.partial", "keep.txt"]);
}

fn remote_files(r: &dyn Remote, dir: &RelPath) -> Vec<String> {
    let mut out = Vec::new();
    for e in r.list_dir(dir, &mut |_| {}).unwrap() {
        let p = dir.join(&e.name).unwrap();
        if e.is_dir() {
            out.extend(remote_files(r, &p));
        } else {
            out.push(p.display());
        }
    }
    out
}

/// Defect 2: a file that grows while it uploads was stored torn and the job succeeded.
/// The upload's request is held back at the proxy while the file is appended to.
#[test]
fn a_file_that_changes_while_it_uploads_fails_and_is_not_stored() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, "torn", None, |o| o.upload_cutoff = 1 << 40);
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("growing.log");
    write(src.path(), "growing.log", &pattern(48 * MIB, 1), T1);
    proxy.add(1, |s| s.method == "PUT", Fault::StallRequest(Duration::from_millis(1500)));
    let appender = {
        let path = path.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            f.write_all(b"one more line\n").unwrap();
        })
    };
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    appender.join().unwrap();
    let err = r.error.expect("a torn upload must fail");
    assert_eq!(err.kind(), Kind::SourceChanged, "{err}");
    assert!(err.to_string().contains("source file is being updated"), "{err}");
    assert!(err.to_string().contains("growing.log"), "the sentence names the file: {err}");
    assert!(remote_files(remote.as_ref(), &RelPath::root()).is_empty(), "nothing torn is stored");

    // The next run reads the new version whole.
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let dst = tempfile::tempdir().unwrap();
    assert!(run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {}).0.error.is_none());
    assert_eq!(std::fs::read(dst.path().join("growing.log")).unwrap(), std::fs::read(&path).unwrap());
}

/// A local file that vanishes between the listing and its upload: the error names the
/// local side with its full path and says it as rclone does (`no such file or
/// directory`); nothing is deleted after it, and the other file is stored.
#[test]
fn a_local_file_that_vanishes_is_reported_with_its_local_path() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, "vanish", None, |_| {});
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a-first.bin", &pattern(2 * MIB, 1), T1);
    write(src.path(), "b-gone.txt", b"here at listing time", T1);
    // The first upload stalls; meanwhile the second file is deleted.
    proxy.add(1, |s| s.method == "PUT", Fault::StallRequest(Duration::from_millis(1500)));
    let gone = src.path().join("b-gone.txt");
    let remover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        std::fs::remove_file(gone).unwrap();
    });
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Sync, |o| o.transfers = 1);
    remover.join().unwrap();
    let err = r.error.expect("a vanished source file is an error");
    let text = err.to_string();
    let local_path = src.path().join("b-gone.txt");
    assert_eq!(err.path(), Some(local_path.to_str().unwrap()), "{text}");
    assert!(text.starts_with(&format!("{}: Failed to copy: ", local_path.display())), "{text}");
    assert!(text.contains("no such file or directory"), "{text}");
    assert_eq!(remote_files(remote.as_ref(), &RelPath::root()), vec!["a-first.bin".to_string()]);
}

/// Defects 5 and the journal: a multipart upload that a crash interrupted is resumed by
/// the next run from its verified parts (only the missing ones are sent), and one whose
/// file changed meanwhile is aborted, leaving no upload on the server.
#[test]
fn an_interrupted_multipart_upload_is_resumed_or_aborted_by_the_next_run() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let index_dir = tempfile::tempdir().unwrap();
    let index = Arc::new(Index::open(&index_dir.path().join("index.db")).unwrap());
    let tune = |o: &mut S3Options| {
        o.upload_cutoff = 5 * MIB as u64;
        o.chunk_size = 5 * MIB as u64;
        o.upload_concurrency = 1;
    };
    let remote = s3_via(&server, &proxy, "resume", Some(index.clone()), tune);
    let src = tempfile::tempdir().unwrap();
    let data = pattern(26 * MIB, 9); // 6 parts
    write(src.path(), "disk.img", &data, T1);
    // The crash: part 4 never gets an answer, and the run is cut off (a worker that
    // dies leaves its upload; simulated by failing without the abort reaching the server).
    proxy.add(usize::MAX, |s| s.method == "PUT" && s.query.contains("partNumber=4"), Fault::ResetBeforeResponse);
    proxy.add(usize::MAX, |s| s.method == "DELETE" && s.has_query("uploadId"), Fault::ResetBeforeResponse);
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_some(), "the interrupted run fails");
    assert_eq!(uploads_in_progress(&server), 1, "the failed abort leaves the upload, journaled");
    assert_eq!(index.journal(&journal_id(&remote, "resume"), None).len(), 1);

    proxy.clear();
    let parts_before = proxy.count(|s| s.method == "PUT" && s.has_query("partNumber"));
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let sent = proxy.count(|s| s.method == "PUT" && s.has_query("partNumber")) - parts_before;
    assert_eq!(sent, 3, "parts 1-3 were kept; only 4-6 are sent again");
    assert_eq!(uploads_in_progress(&server), 0);
    assert!(index.journal(&journal_id(&remote, "resume"), None).is_empty());
    let dst = tempfile::tempdir().unwrap();
    assert!(run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {}).0.error.is_none());
    assert_eq!(std::fs::read(dst.path().join("disk.img")).unwrap(), data);

    // Interrupted again, then the file changes: the old upload is aborted, not resumed.
    write(src.path(), "disk.img", &pattern(26 * MIB, 10), T2);
    proxy.add(usize::MAX, |s| s.method == "PUT" && s.query.contains("partNumber=2"), Fault::ResetBeforeResponse);
    proxy.add(usize::MAX, |s| s.method == "DELETE" && s.has_query("uploadId"), Fault::ResetBeforeResponse);
    assert!(run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {}).0.error.is_some());
    assert_eq!(uploads_in_progress(&server), 1);
    proxy.clear();
    write(src.path(), "disk.img", &pattern(26 * MIB, 11), common::T3);
    let parts_before = proxy.count(|s| s.method == "PUT" && s.has_query("partNumber"));
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        proxy.count(|s| s.method == "PUT" && s.has_query("partNumber")) - parts_before,
        6,
        "a changed file starts over"
    );
    assert_eq!(uploads_in_progress(&server), 0, "the stale upload was aborted");
}

/// The key the S3 remote files its upload journal under (endpoint and bucket).
fn journal_id(remote: &S3Remote, bucket: &str) -> String {
    format!("s3:{}/{bucket}", remote.client().endpoint_id())
}

/// Unfinished multipart uploads on the server. s3s-fs does not implement
/// ListMultipartUploads; it keeps each upload's parts as `.upload_id-ID.part-N` files.
fn uploads_in_progress(server: &S3Server) -> usize {
    let mut ids = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(server.data.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(".upload_id-") {
            ids.insert(rest.split(".part-").next().unwrap_or_default().to_string());
        }
    }
    ids.len()
}

/// One response header of a HEAD of `key`, asked of the server directly.
fn ureq_head(server: &S3Server, bucket: &str, key: &str) -> Option<String> {
    let direct = server.remote(bucket, "", None);
    let req = Request::new(Op::Head, "HEAD", Some(bucket), Some(key));
    let resp = direct.client().send(&req).expect("HEAD");
    header(&resp, "x-amz-meta-md5chksum").map(str::to_string)
}

fn base64_md5(data: &[u8]) -> String {
    use base64::Engine as _;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// Resumable downloads: a pull cut off midway keeps its temporary file and journal; the
/// next run fetches only the chunks it lacks (a ranged GET from the first missing chunk),
/// re-reads the kept ones to check them, and verifies the whole file before it appears.
#[test]
fn an_interrupted_download_resumes_from_its_verified_chunks() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let remote = s3_via(&server, &proxy, "downloads", None, |_| {});
    let src = tempfile::tempdir().unwrap();
    let data = pattern(40 * MIB + 5, 4); // six 8 MiB chunks, the last one 5 bytes
    write(src.path(), "movie.mkv", &data, T1);
    assert!(run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {}).0.error.is_none());

    let index_dir = tempfile::tempdir().unwrap();
    let index = Arc::new(Index::open(&index_dir.path().join("index.db")).unwrap());
    let dst = tempfile::tempdir().unwrap();
    let local_dst = || Arc::new(LocalRemote::new(dst.path(), LocalOptions::default(), Some(index.clone())));
    let ranges_since = |before: usize| -> Vec<Option<String>> {
        let seen = proxy.seen.lock().unwrap();
        seen.iter().filter(|s| is_get_of("movie.mkv")(s)).skip(before).map(|s| s.range.clone()).collect()
    };
    // Within one run: every try is cut after 20 MiB, and each try resumes where the last
    // complete chunk ended, so three tries bring the whole file.
    proxy.add(3, is_get_of("movie.mkv"), Fault::CutBody { after: 20 * MIB });
    let (r, _) = run(remote.as_ref(), local_dst().as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(
        ranges_since(0),
        vec![None, Some("bytes=16777216-41943044".into()), Some("bytes=33554432-41943044".into())]
    );
    assert_eq!(std::fs::read(dst.path().join("movie.mkv")).unwrap(), data);
    std::fs::remove_file(dst.path().join("movie.mkv")).unwrap();

    // Across runs: the run fails with four chunks stored; its temporary file stays.
    proxy.clear();
    proxy.add(1, is_get_of("movie.mkv"), Fault::CutBody { after: 20 * MIB });
    proxy.add(2, is_get_of("movie.mkv"), Fault::CutBody { after: 10 * MIB });
    let (r, _) = run(remote.as_ref(), local_dst().as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_some(), "the cut-off run fails");
    let left = files_in(dst.path());
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".movie.mkv.") && left[0].ends_with(".cloudsync-partial"), "{left:?}");
    proxy.clear();
    let before = proxy.count(is_get_of("movie.mkv"));
    let (r, _) = run(remote.as_ref(), local_dst().as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let seen = proxy.seen.lock().unwrap().clone();
    let gets: Vec<_> = seen.iter().filter(|s| is_get_of("movie.mkv")(s)).skip(before).collect();
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].range.as_deref(), Some("bytes=33554432-41943044"), "resumed after the kept chunks");
    assert_eq!(std::fs::read(dst.path().join("movie.mkv")).unwrap(), data);
    assert_eq!(files_in(dst.path()), vec!["movie.mkv"], "no temporary file is left");
    assert!(index.journal(&format!("local:{}", std::fs::canonicalize(dst.path()).unwrap().display()), None).is_empty());

    // A kept chunk damaged on disk is not trusted: it is fetched again.
    std::fs::remove_file(dst.path().join("movie.mkv")).unwrap();
    proxy.add(1, is_get_of("movie.mkv"), Fault::CutBody { after: 20 * MIB });
    proxy.add(2, is_get_of("movie.mkv"), Fault::CutBody { after: 10 * MIB });
    assert!(run(remote.as_ref(), local_dst().as_ref(), Mode::Copy, |_| {}).0.error.is_some());
    let partial = dst.path().join(&files_in(dst.path())[0]);
    let f = std::fs::OpenOptions::new().write(true).open(&partial).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"X", 1000).unwrap();
    drop(f);
    proxy.clear();
    let before = proxy.count(is_get_of("movie.mkv"));
    let (r, _) = run(remote.as_ref(), local_dst().as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let seen = proxy.seen.lock().unwrap().clone();
    let gets: Vec<_> = seen.iter().filter(|s| is_get_of("movie.mkv")(s)).skip(before).collect();
    // Chunk 1 no longer verifies: it is fetched again alone, beside what was never fetched
    // (two ranged GETs in parallel, in either order).
    let mut ranges: Vec<&str> = gets.iter().map(|g| g.range.as_deref().unwrap_or("")).collect();
    ranges.sort();
    assert_eq!(ranges, vec!["bytes=0-8388607", "bytes=33554432-41943044"]);
    assert_eq!(std::fs::read(dst.path().join("movie.mkv")).unwrap(), data);
    assert_eq!(files_in(dst.path()), vec!["movie.mkv"]);
}

/// Defect 6, as rclone sees it: after a cloudsync push with multipart files, a current
/// rclone's `check` finds 0 differences and no file whose hash could not be checked.
#[test]
fn rclone_checks_every_multipart_upload_by_hash() {
    let server = S3Server::start();
    let remote = server.remote_with("rcheck", "tree", None, |o| {
        o.upload_cutoff = 5 * MIB as u64;
        o.chunk_size = 5 * MIB as u64;
    });
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "small.txt", b"small", T1);
    write(src.path(), "dir/multi.bin", &pattern(12 * MIB + 1, 5), T2);
    write(src.path(), "dir/multi2.bin", &pattern(6 * MIB, 6), T2);
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let out = std::process::Command::new(common::rclone_current())
        .args(["check", src.path().to_str().unwrap(), "cs:rcheck/tree/", "--s3-no-head", "--log-level", "NOTICE"])
        .envs(server.rclone_env("cs"))
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rclone check failed: {text}");
    assert!(text.contains("0 differences found"), "{text}");
    assert!(!text.contains("hashes could not be checked"), "{text}");
    assert!(text.contains("3 matching files"), "{text}");
}

/// Defect 5: Ctrl-C of the CLI during a multipart upload left the upload on the server and
/// ended with status 130 and no message. Now the run stops cleanly: the upload is aborted,
/// one line says what happened, and the exit code stays rclone's 128 + SIGINT.
#[test]
fn ctrl_c_during_a_multipart_upload_aborts_it_and_says_so() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    server.remote("sigint", "", None);
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "src/big.bin", &pattern(26 * MIB, 2), T1);
    // Parts arrive slowly, so the signal comes while the upload is open.
    proxy.add(
        usize::MAX,
        |s| s.method == "PUT" && s.has_query("partNumber"),
        Fault::StallRequest(Duration::from_millis(400)),
    );
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_cloudsync"))
            .args(["copy", tmp.path().join("src").to_str().unwrap(), "s3:sigint/data", "--no-index"])
            .args(["--s3-upload-cutoff", "5", "--s3-chunk-size", "5", "--s3-upload-concurrency", "1"])
            .env("CLOUDSYNC_S3_ENDPOINT", &proxy.endpoint)
            .env("CLOUDSYNC_S3_ACCESS_KEY_ID", common::ACCESS_KEY)
            .env("CLOUDSYNC_S3_SECRET_ACCESS_KEY", common::SECRET_KEY)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while proxy.count(|s| s.method == "PUT" && s.has_query("partNumber")) == 0 {
            assert!(std::time::Instant::now() < deadline, "the upload never started");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(err.contains("stopping cleanly"), "{err}");
        assert!(proxy.count(|s| s.method == "DELETE" && s.has_query("uploadId")) >= 1, "the upload was aborted");
        assert_eq!(uploads_in_progress(&server), 0, "no upload is left on the server");
        proxy.seen.lock().unwrap().clear();
    }
}

/// Resume survives an abort too: a task job aborted during a multipart upload keeps the
/// upload (journaled) and its next run sends only the parts that are missing.
#[test]
fn an_aborted_job_keeps_its_upload_for_the_next_run() {
    let server = S3Server::start();
    let proxy = FaultProxy::start(&server.endpoint);
    let index_dir = tempfile::tempdir().unwrap();
    let index = Arc::new(Index::open(&index_dir.path().join("index.db")).unwrap());
    let remote = s3_via(&server, &proxy, "aborted", Some(index.clone()), |o| {
        o.upload_cutoff = 5 * MIB as u64;
        o.chunk_size = 5 * MIB as u64;
        o.upload_concurrency = 1;
        o.keep_cancelled_uploads = true; // as the job runner sets it
    });
    let src = tempfile::tempdir().unwrap();
    let data = pattern(31 * MIB, 12); // 7 parts
    write(src.path(), "vm.qcow2", &data, T1);
    let parts = |p: &FaultProxy| p.count(|s| s.method == "PUT" && s.has_query("partNumber") && s.status == 200);
    proxy.add(
        usize::MAX,
        |s| s.method == "PUT" && s.has_query("partNumber"),
        Fault::StallRequest(Duration::from_millis(150)),
    );
    let cancel = cloudsync::engine::CancelToken::new();
    let (r, _) = std::thread::scope(|s| {
        let c2 = cancel.clone();
        let p = &proxy;
        s.spawn(move || {
            while parts(p) < 3 {
                std::thread::sleep(Duration::from_millis(10));
            }
            c2.cancel();
        });
        run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |o| o.cancel = cancel.clone())
    });
    assert!(r.error.expect("aborted").is_cancelled());
    assert_eq!(proxy.count(|s| s.method == "DELETE" && s.has_query("uploadId")), 0, "not aborted");
    assert_eq!(uploads_in_progress(&server), 1);
    proxy.clear();
    let before = parts(&proxy);
    let (r, _) = run(local(src.path()).as_ref(), remote.as_ref(), Mode::Copy, |_| {});
    assert!(r.error.is_none(), "{:?}", r.error);
    let sent = parts(&proxy) - before;
    assert!(sent <= 4, "only the missing parts are sent: {sent} of 7");
    assert_eq!(uploads_in_progress(&server), 0);
    let dst = tempfile::tempdir().unwrap();
    assert!(run(remote.as_ref(), local(dst.path()).as_ref(), Mode::Copy, |_| {}).0.error.is_none());
    assert_eq!(std::fs::read(dst.path().join("vm.qcow2")).unwrap(), data);
}
