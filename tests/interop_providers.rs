//! Interoperability with a current rclone (1.75) on every provider besides S3 (which
//! tests/interop.rs covers): after a cloudsync push, `rclone check` finds no difference
//! and rclone reads the same modification times and hashes; after an rclone push, a
//! cloudsync sync transfers nothing; and rclone crypt reads what cloudsync encrypted and
//! the other way round.

mod common;

use cloudsync::engine::{self, FileAction, Mode, SyncOptions};
use cloudsync::remote::local::LocalRemote;
use cloudsync::remote::{Remote, RemoteRef};
use common::servers::{self, azurite, unique};
use common::{Recorder, T1, count, crypt, set_mtime, transfers};
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

/// A provider as rclone and cloudsync both reach it.
struct Target {
    /// rclone's environment for a remote named `t` (and crypt remote `c` over `t:{crypt}`).
    env: Vec<(String, String)>,
    /// `t:LOCATION` for rclone.
    location: String,
    /// cloudsync's remote on the same location, a sub-path of it, and the crypt sub-path.
    remote: Box<dyn Fn(&str) -> RemoteRef>,
    /// Chunk size of `chunked`.
    chunk: usize,
    /// The provider's modification-time precision (ns): times compare to it.
    precision: i64,
    /// The provider tells MD5s (rclone's listings compare them).
    md5: bool,
    /// Names with bytes that are not UTF-8 and control characters are in the fixture
    /// (WebDAV: rclone sends invalid UTF-8 raw, which WsgiDAV drops the connection for;
    /// cloudsync quotes it, so those names differ by design: docs/PROVIDERS.md).
    raw_names: bool,
    /// The server stores names with a backslash (pure-ftpd refuses them, to rclone too:
    /// the fixture names that file differently there).
    backslash: bool,
    /// rclone reads an MD5 of a chunked upload (not of a Swift large object, whose ETag
    /// is the manifest's: rclone says "hash could not be checked").
    large_md5: bool,
    chunked: Box<dyn Fn(&str) -> RemoteRef>,
}

fn rclone(t: &Target, args: &[&str]) -> Output {
    let mut c = Command::new(common::rclone_current());
    c.args(args).env_remove("AWS_CA_BUNDLE").env("RCLONE_CONFIG", "/dev/null");
    for (k, v) in &t.env {
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

/// Nested directories, names the provider's encoding must map (backslash, trailing dot,
/// control characters, not UTF-8), an empty file, one file above the chunk size.
/// `odd`: with a file whose name is not UTF-8 and one with a control character (rclone's
/// local backend replaces invalid bytes by U+FFFD before crypt sees them, and rclone's
/// crypt lists a tab as U+2409, so a crypt comparison cannot include them).
fn fixture_with(dir: &Path, big: usize, odd: bool, backslash: bool) {
    let mut files: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"plain.txt".to_vec(), b"hello".to_vec()),
        (b"with space/and more.bin".to_vec(), vec![1u8; 70_000]),
        ("d\u{e9}j\u{e0} vu/\u{65e5}\u{672c}.txt".as_bytes().to_vec(), b"unicode".to_vec()),
        (b"empty".to_vec(), Vec::new()),
        (b"deep/a/b/c/leaf".to_vec(), b"leaf".to_vec()),
        (if backslash { b"odd/back\\slash".to_vec() } else { b"odd/back slash".to_vec() }, b"bs".to_vec()),
        (b"odd/trailing dot.".to_vec(), b"dot".to_vec()),
        (b"big.bin".to_vec(), (0..big).map(|i| (i * 7 % 251) as u8).collect()),
    ];
    if odd {
        files.push((b"latin1 \xe9t\xe9.txt".to_vec(), b"not utf-8 name".to_vec()));
        files.push((b"odd/tab\there".to_vec(), b"tab".to_vec()));
    }
    for (i, (name, data)) in files.iter().enumerate() {
        let p = dir.join(std::ffi::OsStr::from_bytes(name));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, data).unwrap();
        set_mtime(&p, T1 + i as i64 * 1_000_000_001);
    }
}

fn sync(src: &dyn Remote, dst: &dyn Remote) -> Vec<cloudsync::engine::FileEvent> {
    let rec = Arc::new(Recorder::default());
    let opts = SyncOptions { mode: Mode::Sync, observer: rec.clone(), retries: 1, ..SyncOptions::default() };
    let report = engine::run(src, dst, &opts);
    assert!(report.error.is_none(), "{:?}", report.error);
    rec.events.lock().unwrap().clone()
}

fn local(dir: &Path) -> LocalRemote {
    LocalRemote::new(dir.to_path_buf(), Default::default(), None)
}

/// rclone lsjson -R --hash: path → (size, modtime, md5).
fn listing(t: &Target, remote: &str) -> BTreeMap<String, (i64, String, String)> {
    let out = ok(rclone(t, &["lsjson", "-R", "--files-only", "--hash", "--hash-type", "md5", remote]));
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    v.into_iter()
        .map(|e| {
            let md5 = e["Hashes"]["md5"].as_str().unwrap_or("").to_string();
            (
                e["Path"].as_str().unwrap().to_string(),
                (e["Size"].as_i64().unwrap(), e["ModTime"].as_str().unwrap().to_string(), md5),
            )
        })
        .collect()
}

fn nanos(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_nanos_opt().unwrap()
}

/// Two listings agree: the same paths, sizes and hashes, times to `precision`.
fn same_listing(
    a: &BTreeMap<String, (i64, String, String)>,
    b: &BTreeMap<String, (i64, String, String)>,
    precision: i64,
) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, (size, mtime, md5)) in a {
        let (s, m, h) = &b[path];
        assert_eq!((s, h), (size, md5), "{path}: size and MD5");
        assert!((nanos(m) - nanos(mtime)).abs() < precision, "{path}: {m} vs {mtime} (precision {precision} ns)");
    }
}

fn rclone_reads_what_cloudsync_pushed(t: Target) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixture_with(&src, t.chunk * 2 + 1000, t.raw_names, t.backslash);
    let dst = (t.chunked)("push");
    let ev = sync(&local(&src), dst.as_ref());
    assert_eq!(count(&ev, FileAction::CopiedNew), if t.raw_names { 10 } else { 8 });
    let at = format!("{}/push", t.location);
    // Sizes, modification times and MD5 hashes: rclone check compares all it can.
    ok(rclone(&t, &["check", src.to_str().unwrap(), &at]));
    let theirs = listing(&t, &at);
    let ours = listing(&t, src.to_str().unwrap());
    assert_eq!(theirs.len(), if t.raw_names { 10 } else { 8 });
    let mut theirs = theirs;
    if !t.large_md5 {
        for (path, (size, _, md5)) in theirs.iter_mut() {
            if *size >= t.chunk as i64 && md5.is_empty() {
                *md5 = ours[path].2.clone();
            }
        }
    }
    if !t.md5 {
        // No MD5 on this provider: rclone's listing has none to compare.
        let theirs = theirs.into_iter().map(|(p, (s, m, _))| (p, (s, m, String::new()))).collect();
        let ours = ours.into_iter().map(|(p, (s, m, _))| (p, (s, m, String::new()))).collect();
        same_listing(&ours, &theirs, t.precision);
    } else {
        same_listing(&ours, &theirs, t.precision);
    }
}

fn cloudsync_sees_rclone_pushes_as_unchanged(t: Target) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixture_with(&src, t.chunk * 2 + 1000, t.raw_names, t.backslash);
    let at = format!("{}/by-rclone", t.location);
    ok(rclone(&t, &["copy", src.to_str().unwrap(), &at]));
    let ev = sync(&local(&src), (t.remote)("by-rclone").as_ref());
    assert_eq!(transfers(&ev), 0, "{ev:?}");
    // And a pull of rclone's tree gives the same files and times.
    let back = tmp.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    sync((t.remote)("by-rclone").as_ref(), &local(&back));
    ok(rclone(&t, &["check", src.to_str().unwrap(), back.to_str().unwrap()]));
    same_listing(&listing(&t, src.to_str().unwrap()), &listing(&t, back.to_str().unwrap()), t.precision);
}

fn crypt_both_ways(t: Target) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fixture_with(&src, 3000, false, t.backslash);
    // cloudsync encrypts, rclone decrypts.
    sync(&local(&src), crypt((t.remote)("enc1")).as_ref());
    let mut t = t;
    let obscure = |s: &str| ok(rclone(&t, &["obscure", s])).trim().to_string();
    let (pw, salt) = (obscure("potato"), obscure("sausage"));
    let location = t.location.clone();
    t.env.extend([
        ("RCLONE_CONFIG_C_TYPE".to_string(), "crypt".to_string()),
        ("RCLONE_CONFIG_C_REMOTE".to_string(), format!("{location}/enc1")),
        ("RCLONE_CONFIG_C_PASSWORD".to_string(), pw.clone()),
        ("RCLONE_CONFIG_C_PASSWORD2".to_string(), salt.clone()),
        ("RCLONE_CONFIG_D_TYPE".to_string(), "crypt".to_string()),
        ("RCLONE_CONFIG_D_REMOTE".to_string(), format!("{location}/enc2")),
        ("RCLONE_CONFIG_D_PASSWORD".to_string(), pw),
        ("RCLONE_CONFIG_D_PASSWORD2".to_string(), salt),
    ]);
    ok(rclone(&t, &["check", "--download", src.to_str().unwrap(), "c:"]));
    // rclone encrypts, cloudsync decrypts: nothing to transfer, and a pull is identical.
    ok(rclone(&t, &["copy", src.to_str().unwrap(), "d:"]));
    assert_eq!(transfers(&sync(&local(&src), crypt((t.remote)("enc2")).as_ref())), 0);
    let back = tmp.path().join("back");
    std::fs::create_dir_all(&back).unwrap();
    sync(crypt((t.remote)("enc2")).as_ref(), &local(&back));
    ok(rclone(&t, &["check", src.to_str().unwrap(), back.to_str().unwrap()]));
}

fn azure_target() -> Target {
    let az = azurite();
    let container = unique("i");
    az.remote(&container, "");
    let (c1, c2) = (container.clone(), container.clone());
    Target {
        env: az.rclone_env("t"),
        location: format!("t:{container}"),
        remote: Box::new(move |sub| az.remote(&c1, sub) as RemoteRef),
        chunk: 1 << 20,
        precision: 1,
        md5: true,
        raw_names: true,
        backslash: true,
        large_md5: true,
        chunked: Box::new(move |sub| az.remote_with(&c2, sub, |o| o.chunk_size = 1 << 20) as RemoteRef),
    }
}

fn b2_target() -> Target {
    let fake = servers::b2();
    let bucket = unique("interop-");
    fake.remote(&bucket, "");
    let (b1, b2) = (bucket.clone(), bucket.clone());
    Target {
        env: fake.rclone_env("t"),
        location: format!("t:{bucket}"),
        remote: Box::new(move |sub| fake.remote(&b1, sub) as RemoteRef),
        chunk: 1 << 20,
        precision: 1_000_000,
        md5: false,
        raw_names: true,
        backslash: true,
        large_md5: true,
        chunked: Box::new(move |sub| {
            fake.remote_with(&b2, sub, |o| {
                o.chunk_size = 1 << 20;
                o.upload_cutoff = 1 << 20;
            }) as RemoteRef
        }),
    }
}

fn gcs_target() -> Target {
    let g = servers::gcs();
    let bucket = unique("interop-");
    g.remote(&bucket, "");
    let (b1, b2) = (bucket.clone(), bucket.clone());
    Target {
        env: g.rclone_env("t"),
        location: format!("t:{bucket}"),
        remote: Box::new(move |sub| g.remote(&b1, sub) as RemoteRef),
        chunk: 256 * 1024,
        precision: 1,
        md5: true,
        raw_names: true,
        backslash: true,
        large_md5: true,
        chunked: Box::new(move |sub| g.remote_with(&b2, sub, |o| o.chunk_size = 256 * 1024) as RemoteRef),
    }
}

fn swift_target() -> Target {
    let sw = servers::swift();
    let container = unique("interop");
    sw.remote(&container, "");
    let (c1, c2) = (container.clone(), container.clone());
    Target {
        env: sw.rclone_env("t"),
        location: format!("t:{container}"),
        remote: Box::new(move |sub| sw.remote(&c1, sub) as RemoteRef),
        chunk: 1 << 20,
        precision: 1,
        md5: true,
        raw_names: true,
        backslash: true,
        large_md5: false,
        chunked: Box::new(move |sub| sw.remote_with(&c2, sub, None, |o| o.chunk_size = 1 << 20) as RemoteRef),
    }
}

fn dav_target(dav: &'static servers::Dav) -> Target {
    let folder = unique("interop");
    dav.remote(&folder).mkdir(&cloudsync::path::RelPath::root()).unwrap();
    let (f1, f2) = (folder.clone(), folder.clone());
    let timed = dav.vendor != cloudsync::remote::webdav::Vendor::Other;
    Target {
        env: dav.rclone_env("t"),
        location: format!("t:{folder}"),
        remote: Box::new(move |sub| dav.remote(&format!("{f1}/{sub}")) as RemoteRef),
        chunk: 1 << 20,
        // Whole seconds; vendor "other" keeps no times at all.
        precision: if timed { 1_000_000_000 } else { i64::MAX },
        md5: false,
        raw_names: false,
        backslash: true,
        large_md5: false,
        chunked: Box::new(move |sub| dav.remote_with(&format!("{f2}/{sub}"), |o| o.chunk_size = 1 << 20) as RemoteRef),
    }
}

/// An FTP server: `t:/ABSOLUTE/FOLDER` for rclone. Names go raw (not UTF-8 included) and
/// with control characters as pictures, as rclone sends them; times to the second where
/// the server sets them (vsftpd with rclone's `writing_mdtm`, pure-ftpd's MFMT), none on
/// `rclone serve ftp`.
fn ftp_target(ftp: &'static servers::Ftp) -> Target {
    let folder = unique("interop");
    ftp.remote(&folder).mkdir(&cloudsync::path::RelPath::root()).unwrap();
    let (f1, f2) = (folder.clone(), folder.clone());
    Target {
        env: ftp.rclone_env("t"),
        location: format!("t:{}", ftp.folder_of(&folder)),
        remote: Box::new(move |sub| ftp.remote(&format!("{f1}/{sub}")) as RemoteRef),
        chunk: 1 << 20,
        precision: if ftp.set_times { 1_000_000_000 } else { i64::MAX },
        md5: false,
        raw_names: true,
        backslash: ftp.name != "pure-ftpd",
        large_md5: false,
        chunked: Box::new(move |sub| ftp.remote(&format!("{f2}/{sub}")) as RemoteRef),
    }
}

/// SFTP on OpenSSH: `t:/ABSOLUTE/FOLDER`; MD5 by md5sum on both sides, times to the second.
fn sftp_target() -> Target {
    let s = servers::sshd();
    let folder = unique("interop");
    s.remote(&folder).mkdir(&cloudsync::path::RelPath::root()).unwrap();
    let (f1, f2) = (folder.clone(), folder.clone());
    Target {
        env: s.rclone_env("t"),
        location: format!("t:{}/{folder}", s.data.display()),
        remote: Box::new(move |sub| s.remote(&format!("{f1}/{sub}")) as RemoteRef),
        chunk: 1 << 20,
        precision: 1_000_000_000,
        md5: true,
        raw_names: true,
        backslash: true,
        large_md5: true,
        chunked: Box::new(move |sub| s.remote(&format!("{f2}/{sub}")) as RemoteRef),
    }
}

macro_rules! interop {
    ($($provider:ident => $target:expr),* $(,)?) => {$(
        mod $provider {
            use super::*;
            #[test] fn rclone_reads_what_cloudsync_pushed() { super::rclone_reads_what_cloudsync_pushed($target) }
            #[test] fn cloudsync_sees_rclone_pushes_as_unchanged() { super::cloudsync_sees_rclone_pushes_as_unchanged($target) }
            #[test] fn crypt_both_ways() { super::crypt_both_ways($target) }
        }
    )*};
}

interop!(
    azureblob => azure_target(),
    b2 => b2_target(),
    gcs => gcs_target(),
    swift => swift_target(),
    webdav_nextcloud => dav_target(servers::nextcloud()),
    webdav_rclone => dav_target(servers::rclone_webdav()),
    webdav_other => dav_target(servers::wsgidav()),
    ftp_vsftpd => ftp_target(servers::vsftpd()),
    ftp_pureftpd => ftp_target(servers::pureftpd()),
    ftp_rclone => ftp_target(servers::rclone_ftp()),
    sftp_openssh => sftp_target(),
);

/// Control characters in names travel as rclone sends them to WebDAV (U+2409 for a
/// tab): what one pushes, the other sees as the same name.
#[test]
fn webdav_control_character_names_match_rclone() {
    for dav in [servers::nextcloud(), servers::wsgidav()] {
        let t = dav_target(dav);
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        for (i, name) in [&b"tab\there"[..], b"ctl\x01\x1f del\x7f"].iter().enumerate() {
            let p = src.join(std::ffi::OsStr::from_bytes(name));
            std::fs::write(&p, format!("file {i}")).unwrap();
            set_mtime(&p, T1);
        }
        ok(rclone(&t, &["copy", src.to_str().unwrap(), &format!("{}/by-rclone", t.location)]));
        assert_eq!(transfers(&sync(&local(&src), (t.remote)("by-rclone").as_ref())), 0);
        sync(&local(&src), (t.remote)("by-cloudsync").as_ref());
        ok(rclone(&t, &["check", src.to_str().unwrap(), &format!("{}/by-cloudsync", t.location)]));
    }
}
