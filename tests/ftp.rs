//! FTP and FTPS beyond the conformance suite: logins, certificates, connection caps,
//! dotfiles, interrupted uploads and leftovers against vsftpd, pure-ftpd and rclone serve
//! ftp; and what a hostile or broken server sends (a scripted server on loopback):
//! replies that are not FTP, endless replies, unreadable listings, a download cut short,
//! a passive address pointing elsewhere.

mod common;

use cloudsync::Kind;
use cloudsync::path::RelPath;
use cloudsync::remote::ftp::tls::{TlsMode, parse_fingerprint};
use cloudsync::remote::ftp::{FtpOptions, FtpRemote};
use cloudsync::remote::{PutInfo, Remote, Source};
use common::servers::{self, unique};
use common::{T1, T2, names, put_file as put, read_file as read_all, rel};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

fn local_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn wrong_password_is_a_sentence_and_never_shows_the_secret() {
    for ftp in [servers::vsftpd(), servers::pureftpd(), servers::rclone_ftp()] {
        let mut o = ftp.options("");
        o.pass = "Not-the-password-77".into();
        let e = FtpRemote::new(o).err().expect("a wrong password fails");
        assert_eq!(e.kind(), Kind::Permission, "{}: {e}", ftp.name);
        assert!(e.to_string().contains("refused the user name or password"), "{}: {e}", ftp.name);
        assert!(!e.to_string().contains("Not-the-password-77"), "{e}");
        // Through the registry, as verify runs it.
        let mut cred = ftp.credential_provider();
        cred.insert("pass".into(), "Not-the-password-77".into());
        let e = cloudsync::remote::registry::verify(&cred).unwrap_err();
        assert_eq!(e.kind(), Kind::Permission, "{e}");
        assert!(cloudsync::remote::registry::verify(&ftp.credential_provider()).is_ok(), "{}", ftp.name);
    }
    // Nobody listening (a closed loopback port): a network error, retried, then reported.
    let port = servers::port();
    let mut o = FtpOptions::new("127.0.0.1", port, "u", "p", "");
    o.http.retries = 2;
    let e = FtpRemote::new(o).err().unwrap();
    assert_eq!(e.kind(), Kind::Network, "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[test]
fn certificates_are_checked_and_the_refused_one_is_named() {
    let ftp = servers::vsftpd();
    let fp = ftp.fingerprint.clone().unwrap();
    // Signed by the test CA, which no public root knows: refused, with its fingerprint.
    let mut o = ftp.options("");
    o.tls = TlsMode::Explicit;
    let e = FtpRemote::new(o.clone()).err().expect("an unknown CA is refused");
    assert_eq!(e.kind(), Kind::Permission, "{e}");
    assert!(e.to_string().contains(&fp), "the message names the fingerprint: {e}");
    assert!(e.to_string().contains("tls_fingerprint"), "{e}");
    // Another pin: refused too.
    o.tls_fingerprint = parse_fingerprint(&"AB".repeat(32)).unwrap();
    let e = FtpRemote::new(o.clone()).err().expect("a wrong pin is refused");
    assert!(e.to_string().contains(&fp), "{e}");
    // The right pin, written with or without colons.
    o.tls_fingerprint = parse_fingerprint(&fp.replace(':', "").to_lowercase()).unwrap();
    let r = FtpRemote::new(o).unwrap();
    assert!(r.describe().starts_with("ftps://"), "{}", r.describe());
    assert!(parse_fingerprint("12:34").is_err());
    // A server without TLS, asked for it: a sentence saying so.
    let mut o = servers::rclone_ftp().options("");
    o.tls = TlsMode::Explicit;
    let e = FtpRemote::new(o).err().unwrap();
    assert!(e.to_string().contains("does not offer TLS"), "{e}");
}

#[test]
fn implicit_tls_and_forced_tls_servers() {
    // vsftpd on its own port with TLS from the first byte, and TLS required for data.
    let ftp = servers::vsftpd_with(
        "cloudsync-vsftpd-implicit",
        &["implicit_ssl=YES", "force_local_logins_ssl=YES", "force_local_data_ssl=YES"],
    );
    let mut o = ftp.tls_options(&unique("imp"));
    o.tls = TlsMode::Implicit;
    let r = FtpRemote::new(o).unwrap();
    put(&r, "a/b.txt", b"over implicit TLS", T1).unwrap();
    assert_eq!(read_all(&r, "a/b.txt").unwrap(), b"over implicit TLS");
    // The same server in clear: not even the greeting is readable.
    let mut o = ftp.options("");
    o.http.retries = 1;
    o.http.response_timeout = std::time::Duration::from_secs(3);
    assert!(FtpRemote::new(o).is_err());
}

#[test]
fn a_server_capping_connections_is_met_with_fewer() {
    // vsftpd's max_per_ip=2: the third connection gets "421 There are too many
    // connections from your internet address."
    let ftp = servers::vsftpd_with("cloudsync-vsftpd-cap", &["max_per_ip=2"]);
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..24 {
        std::fs::write(tmp.path().join(format!("f{i:02}")), format!("file {i}")).unwrap();
    }
    let src = cloudsync::remote::local::LocalRemote::new(tmp.path().to_path_buf(), Default::default(), None);
    let dst = ftp.remote(&unique("cap"));
    let opts = cloudsync::engine::SyncOptions {
        mode: cloudsync::engine::Mode::Copy,
        transfers: 8,
        checkers: 8,
        retries: 1,
        ..Default::default()
    };
    let report = cloudsync::engine::run(&src, dst.as_ref(), &opts);
    assert!(report.error.is_none(), "{:?}", report.error);
    assert_eq!(names(dst.as_ref(), "").len(), 24);
    assert_eq!(dst.connection_cap(), 2, "the pool learned the server's limit");
}

#[test]
fn dotfiles_are_seen_on_vsftpd_and_leftovers_removed() {
    let ftp = servers::vsftpd();
    let sub = unique("dot");
    let r = ftp.remote(&sub);
    put(r.as_ref(), ".hidden", b"dot", T1).unwrap();
    put(r.as_ref(), "visible", b"v", T1).unwrap();
    // What a killed upload leaves: hidden from listings, removed at the end of a run.
    let dir = ftp.path_of(&sub);
    std::fs::write(dir.join(".visible.0badf00d.cloudsync-partial"), b"half").unwrap();
    assert_eq!(names(r.as_ref(), ""), vec![".hidden", "visible"]);
    assert_eq!(r.remove_leftovers().unwrap(), 1);
    assert_eq!(local_names(&dir), vec![".hidden", "visible"]);
}

/// A source that fails after some bytes (a file that went away, a cancel).
struct Failing(Vec<u8>);

impl Source for Failing {
    fn size(&self) -> u64 {
        self.0.len() as u64 * 2
    }
    fn mtime(&self) -> cloudsync::Result<i64> {
        Ok(T2)
    }
    fn open_at(&self, _offset: u64, _len: u64) -> cloudsync::Result<Box<dyn Read + Send + '_>> {
        let failing = std::io::Read::chain(
            &self.0[..],
            FailAfter(cloudsync::Error::new(Kind::SourceChanged, "source file is being updated")),
        );
        Ok(Box::new(failing))
    }
}

struct FailAfter(cloudsync::Error);

impl Read for FailAfter {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other(cloudsync::Error::new(self.0.kind(), self.0.message().to_string())))
    }
}

#[test]
fn a_failed_upload_keeps_the_old_version_and_leaves_nothing() {
    for ftp in [servers::vsftpd(), servers::pureftpd(), servers::rclone_ftp()] {
        let sub = unique("fail");
        let mut o = ftp.options(&sub);
        o.http.retries = 2;
        let r = FtpRemote::new(o).unwrap();
        put(&r, "doc.txt", b"the old version", T1).unwrap();
        let src = Failing(vec![7u8; 300_000]);
        let info = PutInfo { size: src.size(), mtime: Some(T2), ..PutInfo::default() };
        let e = r.put(&rel("doc.txt"), &src, &info).unwrap_err();
        assert_eq!(e.kind(), Kind::SourceChanged, "{}: {e}", ftp.name);
        assert_eq!(read_all(&r, "doc.txt").unwrap(), b"the old version", "{}", ftp.name);
        assert_eq!(local_names(&ftp.path_of(&sub)), vec!["doc.txt"], "{}: no temporary file is left", ftp.name);
    }
}

#[test]
fn a_folder_without_a_slash_is_below_the_login_directory() {
    let ftp = servers::vsftpd();
    let sub = unique("rel");
    let r = FtpRemote::new(FtpOptions::new("127.0.0.1", ftp.port, ftp.user, ftp.pass, &sub)).unwrap();
    assert!(r.describe().ends_with(&format!("/home/{}/{sub}", ftp.user)), "{}", r.describe());
    put(&r, "x", b"in home", T1).unwrap();
    let home = std::path::PathBuf::from(format!("/home/{}", ftp.user)).join(&sub);
    assert_eq!(std::fs::read(home.join("x")).unwrap(), b"in home");
    std::fs::remove_dir_all(home).unwrap();
}

#[test]
fn a_file_changing_on_the_server_is_never_passed_as_complete() {
    let ftp = servers::pureftpd();
    let sub = unique("grow");
    let r = ftp.remote(&sub);
    put(r.as_ref(), "g", b"0123456789", T1).unwrap();
    let e = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap().remove(0);
    std::fs::write(ftp.path_of(&sub).join("g"), b"0123456789 and more").unwrap();
    let mut v = Vec::new();
    let got = r.open(&rel("g"), &e, 0, u64::MAX).unwrap().reader.read_to_end(&mut v);
    assert!(got.is_err(), "a file that grew reads as an error, not as its first bytes: {v:?}");
}

// ---- a scripted server -------------------------------------------------------------------

/// How the scripted server misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Script {
    /// Greets with something that is not FTP.
    NotFtp,
    /// A FEAT reply that never ends.
    EndlessReply,
    /// LIST lines in no known format.
    UnreadableList,
    /// RETR sends half the file, then 426.
    CutDownload,
    /// PASV names another host; the data connection must still go to this one.
    ForeignPasv,
}

const FILE: &[u8] = b"0123456789abcdefghij";

fn scripted(script: Script) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || session(c, script));
        }
    });
    port
}

fn session(c: TcpStream, script: Script) {
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let mut send = |s: &str| {
        let _ = w.write_all(s.as_bytes());
    };
    if script == Script::NotFtp {
        send("HTTP/1.1 400 Bad Request\r\n\r\n");
        return;
    }
    send("220 scripted\r\n");
    let data = TcpListener::bind("127.0.0.1:0").unwrap();
    let dport = data.local_addr().unwrap().port();
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_string();
        let verb = cmd.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "USER" => send("331 password please\r\n"),
            "PASS" => send("230 in\r\n"),
            "FEAT" if script == Script::EndlessReply => {
                send("211-Features:\r\n");
                for _ in 0..100_000 {
                    send(" PADDING\r\n");
                }
                return;
            }
            "FEAT" => send("211-Features:\r\n SIZE\r\n MDTM\r\n211 End\r\n"),
            "TYPE" => send("200 ok\r\n"),
            "PWD" => send("257 \"/\" is cwd\r\n"),
            "CWD" => send("250 ok\r\n"),
            "EPSV" => send("500 no EPSV here\r\n"),
            "PASV" if script == Script::ForeignPasv => {
                send(&format!("227 Entering Passive Mode (10,9,8,7,{},{})\r\n", dport / 256, dport % 256))
            }
            "PASV" => send(&format!("227 Entering Passive Mode (127,0,0,1,{},{})\r\n", dport / 256, dport % 256)),
            "LIST" => {
                send("150 here it comes\r\n");
                let (mut d, _) = data.accept().unwrap();
                if script == Script::UnreadableList {
                    let _ = d.write_all(b"-rw-r--r--    1 u g 20 Dec 03 18:20 f\r\n-rw-r--r-- ?? garbled\r\n");
                } else {
                    let _ = d.write_all(b"-rw-r--r--    1 u g 20 Dec 03 18:20 f\r\n");
                }
                drop(d);
                send("226 done\r\n");
            }
            "MDTM" => send("213 20261203182000\r\n"),
            "SIZE" => send("213 20\r\n"),
            "RETR" => {
                send("150 sending\r\n");
                let (mut d, _) = data.accept().unwrap();
                if script == Script::CutDownload {
                    let _ = d.write_all(&FILE[..10]);
                    drop(d);
                    send("426 Connection closed; transfer aborted.\r\n");
                } else {
                    let _ = d.write_all(FILE);
                    drop(d);
                    send("226 done\r\n");
                }
            }
            "NOOP" => send("200 ok\r\n"),
            "QUIT" => {
                send("221 bye\r\n");
                return;
            }
            _ => send("502 not here\r\n"),
        }
    }
}

fn scripted_remote(script: Script) -> cloudsync::Result<FtpRemote> {
    let mut o = FtpOptions::new("127.0.0.1", scripted(script), "u", "p", "/");
    o.http.retries = 2;
    o.http.response_timeout = std::time::Duration::from_secs(20);
    FtpRemote::new(o)
}

#[test]
fn a_server_that_is_not_ftp_is_refused() {
    let e = scripted_remote(Script::NotFtp).err().unwrap();
    assert_eq!(e.kind(), Kind::Protocol, "{e}");
    assert!(e.to_string().contains("not an FTP reply"), "{e}");
    let e = scripted_remote(Script::EndlessReply).err().unwrap();
    assert_eq!(e.kind(), Kind::Protocol, "{e}");
    assert!(e.to_string().contains("longer than 64 KiB"), "{e}");
}

#[test]
fn an_unreadable_listing_is_an_error_not_a_shorter_listing() {
    let r = scripted_remote(Script::UnreadableList).unwrap();
    let e = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap_err();
    assert_eq!(e.kind(), Kind::Protocol, "{e}");
    assert!(e.to_string().contains("cannot read"), "{e}");
}

#[test]
fn a_download_cut_short_is_an_error_and_the_passive_address_is_not_followed() {
    let r = scripted_remote(Script::CutDownload).unwrap();
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    assert_eq!((l[0].name.as_slice(), l[0].size), (&b"f"[..], 20));
    assert_eq!(
        r.mod_time(&rel("f"), &l[0]).unwrap(),
        cloudsync::remote::ftp::list::parse_time("20261203182000").unwrap()
    );
    let mut v = Vec::new();
    let got = r.open(&rel("f"), &l[0], 0, u64::MAX).unwrap().reader.read_to_end(&mut v);
    let e = got.expect_err("half a file is never complete");
    assert!(e.to_string().contains("426"), "the server's reason is told: {e}");
    // PASV answers 10.9.8.7: the data connection still goes to the server we talk to.
    let r = scripted_remote(Script::ForeignPasv).unwrap();
    let l = r.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
    let mut v = Vec::new();
    r.open(&rel("f"), &l[0], 0, u64::MAX).unwrap().reader.read_to_end(&mut v).unwrap();
    assert_eq!(v, FILE);
    let arc: Arc<dyn Remote> = Arc::new(r);
    assert!(arc.request_counts().iter().any(|(k, n)| *k == "RETR" && *n == 1));
}

/// One version of a file (a fingerprint), whose first read can be made to break off
/// after `cut` bytes with a network error; remembers where each read started.
struct Versioned {
    data: Vec<u8>,
    fingerprint: &'static str,
    cut: Option<usize>,
    starts: std::sync::Mutex<Vec<u64>>,
}

impl Source for Versioned {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn mtime(&self) -> cloudsync::Result<i64> {
        Ok(T2)
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.to_string())
    }
    fn open_at(&self, offset: u64, len: u64) -> cloudsync::Result<Box<dyn Read + Send + '_>> {
        self.starts.lock().unwrap().push(offset);
        let part = &self.data[offset as usize..(offset + len) as usize];
        Ok(match self.cut {
            Some(cut) => Box::new(Read::chain(
                &part[..cut],
                FailAfter(cloudsync::Error::new(Kind::Network, "connection reset by peer").with_retryable(true)),
            )),
            None => Box::new(part),
        })
    }
}

#[test]
fn an_interrupted_upload_goes_on_where_it_stopped() {
    for ftp in [servers::vsftpd(), servers::pureftpd()] {
        let sub = unique("resume");
        let mut o = ftp.options(&sub);
        o.http.retries = 1;
        let r = FtpRemote::new(o).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let info = PutInfo { size: data.len() as u64, mtime: Some(T2), ..PutInfo::default() };
        let first =
            Versioned { data: data.clone(), fingerprint: "v1", cut: Some(1_000_000), starts: Default::default() };
        let e = r.put(&rel("big.bin"), &first, &info).unwrap_err();
        assert_eq!(e.kind(), Kind::Network, "{e}");
        // What the server holds: a temporary file with the first bytes, nothing at the target.
        let dir = ftp.path_of(&sub);
        let left = local_names(&dir);
        assert!(left.len() == 1 && left[0].ends_with(".cloudsync-partial"), "{}: {left:?}", ftp.name);
        // The server may still be writing what it received when the client gave up.
        let size = || std::fs::metadata(dir.join(&left[0])).unwrap().len();
        let mut held = size();
        loop {
            std::thread::sleep(std::time::Duration::from_millis(300));
            if size() == held {
                break;
            }
            held = size();
        }
        assert!(held > 0 && held <= 1_000_000, "{held}");
        // Another version of the file does not go on from there.
        let other = Versioned { data: data.clone(), fingerprint: "v2", cut: None, starts: Default::default() };
        let second = ftp.remote(&sub);
        second.put(&rel("other.bin"), &other, &info).unwrap();
        assert_eq!(*other.starts.lock().unwrap(), vec![0]);
        // The same version, in a new run: only the rest is sent, and the file is whole.
        let again = Versioned { data: data.clone(), fingerprint: "v1", cut: None, starts: Default::default() };
        let listed = second.list_dir(&RelPath::root(), &mut |_| {}).unwrap();
        assert!(!listed.iter().any(|e| e.name.ends_with(b".cloudsync-partial")), "temporary files are never listed");
        second.put(&rel("big.bin"), &again, &info).unwrap();
        assert_eq!(*again.starts.lock().unwrap(), vec![held], "{}: resumed at the held size", ftp.name);
        assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), data, "{}", ftp.name);
        assert_eq!(second.remove_leftovers().unwrap(), 0, "the leftover was used, not removed");
        assert_eq!(local_names(&dir), vec!["big.bin", "other.bin"], "{}", ftp.name);
    }
}
