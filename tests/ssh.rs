//! The SSH client against OpenSSH's sshd on loopback: key exchange and the server's host
//! key as `ssh-keygen -l` shows it, logins by password and by keychain keys (Ed25519,
//! RSA and ECDSA in OpenSSH, PEM and PKCS#8 form), refusals in sentences, a host key the
//! caller refuses, a server that re-keys every kilobyte, and each cipher (AES-256-GCM,
//! AES-128-GCM, ChaCha20-Poly1305) with a server restricted to it.

mod common;

use cloudsync::Kind;
use cloudsync::ssh::auth::{Credentials, authenticate};
use cloudsync::ssh::transport::{Endpoint, Transport};
use common::servers::{self, FTP_PASS, FTP_USER};
use std::process::Command;
use std::time::Duration;

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
        connect_timeout: Duration::from_secs(10),
        io_timeout: Duration::from_secs(30),
    }
}

fn connect(port: u16) -> Transport {
    Transport::connect(&endpoint(port), &mut |_| Ok(())).expect("connect")
}

#[test]
fn the_host_key_is_the_servers_and_a_refused_one_stops_everything() {
    let s = servers::sshd();
    let t = connect(s.port);
    assert!(t.server_version().starts_with("SSH-2.0-OpenSSH"), "{}", t.server_version());
    let key = t.host_key().unwrap();
    assert_eq!(key.kind, "ssh-ed25519");
    assert!(s.fingerprints.contains(&key.fingerprint()), "{} not in {:?}", key.fingerprint(), s.fingerprints);
    let e = Transport::connect(&endpoint(s.port), &mut |k| {
        Err(cloudsync::Error::new(Kind::Permission, format!("refused {}", k.fingerprint())))
    })
    .err()
    .unwrap();
    assert!(e.to_string().starts_with("refused SHA256:"), "{e}");
    // Nobody listening: a network error naming the address.
    let port = servers::port();
    let e = Transport::connect(&endpoint(port), &mut |_| Ok(())).err().unwrap();
    assert_eq!(e.kind(), Kind::Network, "{e}");
}

#[test]
fn passwords_and_keychain_keys_log_in_and_wrong_ones_are_told() {
    let s = servers::sshd();
    let mut t = connect(s.port);
    authenticate(&mut t, "sshd", FTP_USER, &Credentials::Password(FTP_PASS)).expect("password login");
    let mut t = connect(s.port);
    let e = authenticate(&mut t, "sshd", FTP_USER, &Credentials::Password("Wrong-one-9")).unwrap_err();
    assert_eq!(e.kind(), Kind::Permission);
    assert!(e.to_string().contains("refused the user name") && e.to_string().contains("password"), "{e}");
    assert!(!e.to_string().contains("Wrong-one-9"));
    // Keys: one the keychain made, and RSA and ECDSA keys as ssh-keygen writes them.
    let tmp = tempfile::tempdir().unwrap();
    let made = cloudsync::keychain::generate("test").unwrap();
    let mut keys = vec![(made.private_key.unwrap(), made.public_key)];
    for (name, args) in [
        ("rsa", &["-t", "rsa", "-b", "2048"][..]),
        ("rsa-pem", &["-t", "rsa", "-b", "2048", "-m", "PEM"]),
        ("ecdsa-256", &["-t", "ecdsa", "-b", "256"]),
        ("ecdsa-384-pem", &["-t", "ecdsa", "-b", "384", "-m", "PEM"]),
        ("ecdsa-256-pkcs8", &["-t", "ecdsa", "-b", "256", "-m", "PKCS8"]),
    ] {
        let path = tmp.path().join(name);
        let st = Command::new("ssh-keygen").args(["-q", "-N", ""]).args(args).arg("-f").arg(&path).status().unwrap();
        assert!(st.success());
        keys.push((
            std::fs::read_to_string(&path).unwrap(),
            std::fs::read_to_string(path.with_extension("pub")).unwrap(),
        ));
    }
    for (private, public) in &keys {
        let mut t = connect(s.port);
        let e = authenticate(&mut t, "sshd", FTP_USER, &Credentials::Key { private_key: private, password: None })
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Permission, "not authorized yet: {e}");
        s.authorize(public);
        let mut t = connect(s.port);
        authenticate(&mut t, "sshd", FTP_USER, &Credentials::Key { private_key: private, password: None })
            .unwrap_or_else(|e| panic!("{}: {e}", public.split_whitespace().next().unwrap()));
    }
}

#[test]
fn a_server_re_keying_every_kilobyte_is_followed() {
    let s = servers::sshd_with(&["RekeyLimit 1K"]);
    let mut t = connect(s.port);
    authenticate(&mut t, "sshd", FTP_USER, &Credentials::Password(FTP_PASS)).expect("login");
    // Traffic past the limit, then a request the server must answer (keepalive@openssh.com,
    // answered with a failure): its re-key comes in between and is followed.
    for round in 0..4 {
        let mut ignore = cloudsync::ssh::wire::Writer::new(cloudsync::ssh::wire::msg::IGNORE);
        ignore.string(&vec![b'x'; 3000]);
        t.send(&ignore.0).unwrap();
        let mut req = cloudsync::ssh::wire::Writer::new(80);
        req.string(b"keepalive@openssh.com").bool(true);
        t.send(&req.0).unwrap();
        // OpenSSH announces its host keys once (hostkeys-00@openssh.com, no reply wanted).
        let answer = loop {
            let m = t.recv().unwrap_or_else(|e| panic!("round {round}: {e}"));
            if m[0] != 80 {
                break m;
            }
        };
        assert!(matches!(answer[0], 81 | 82), "round {round}: message {}", answer[0]);
    }
    assert!(t.key_exchanges() >= 3, "the server re-keyed: {} key exchanges", t.key_exchanges());
}

#[test]
fn each_cipher_is_spoken_and_a_server_without_one_is_told() {
    // OpenSSH's defaults: cloudsync's first choice, AES-256-GCM, both ways.
    let s = servers::sshd();
    let t = connect(s.port);
    assert_eq!(t.ciphers(), ("aes256-gcm@openssh.com", "aes256-gcm@openssh.com"));
    // A server restricted to each one: logged in, commands run, and a re-key every
    // kilobyte followed under that cipher (its counters and sequence numbers carried on).
    for cipher in ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"] {
        let s = servers::sshd_with(&[&format!("Ciphers {cipher}"), "RekeyLimit 1K"]);
        let mut t = connect(s.port);
        assert_eq!(t.ciphers(), (cipher, cipher));
        authenticate(&mut t, "sshd", FTP_USER, &Credentials::Password(FTP_PASS))
            .unwrap_or_else(|e| panic!("{cipher}: {e}"));
        let mut sess = cloudsync::ssh::channel::Session::new(t, "sshd");
        for round in 0..3 {
            let (out, exit, _) = sess.run(b"head -c 20000 /dev/zero | md5sum", 4096).unwrap();
            assert_eq!(
                (String::from_utf8_lossy(&out).trim(), exit),
                ("b2fe457348de243a579a1591d3815170  -", Some(0)),
                "{cipher}, round {round}"
            );
        }
    }
    // Only ciphers cloudsync does not speak: one sentence naming both sides' lists.
    let s = servers::sshd_with(&["Ciphers aes128-ctr,aes256-ctr"]);
    let e = Transport::connect(&endpoint(s.port), &mut |_| Ok(())).err().unwrap();
    assert_eq!(e.kind(), Kind::Unsupported, "{e}");
    let text = e.to_string();
    assert!(text.contains("aes256-gcm@openssh.com") && text.contains("it offers aes128-ctr, aes256-ctr"), "{text}");
}

fn session(port: u16) -> cloudsync::ssh::channel::Session {
    let mut t = connect(port);
    authenticate(&mut t, "sshd", FTP_USER, &Credentials::Password(FTP_PASS)).expect("login");
    cloudsync::ssh::channel::Session::new(t, "sshd")
}

#[test]
fn commands_run_with_their_output_and_exit_status() {
    let s = servers::sshd();
    let mut sess = session(s.port);
    // md5sum of empty stdin: how the SFTP provider probes for a digest command (rclone's way).
    let (out, exit, _) = sess.run(b"md5sum", 4096).unwrap();
    assert_eq!((String::from_utf8_lossy(&out).trim(), exit), ("d41d8cd98f00b204e9800998ecf8427e  -", Some(0)));
    let (out, exit, stderr) = sess.run(b"ls /no/such/dir", 4096).unwrap();
    assert!(out.is_empty() && exit == Some(2) && stderr.contains("No such file"), "{exit:?} {stderr}");
    // Output larger than the window, on the same connection.
    let (out, exit, _) = sess.run(b"head -c 5000000 /dev/zero", 6_000_000).unwrap();
    assert_eq!((out.len(), exit), (5_000_000, Some(0)));
    assert!(sess.run(b"head -c 100000 /dev/zero", 1000).is_err(), "output past the limit is refused");
}

#[test]
fn the_sftp_subsystem_answers_version_3_with_posix_rename() {
    let s = servers::sshd();
    let mut sess = session(s.port);
    let ch = sess.open().unwrap();
    assert!(sess.subsystem(ch, "sftp").unwrap());
    // SSH_FXP_INIT, version 3 (draft-ietf-secsh-filexfer-02).
    sess.write(ch, &[0, 0, 0, 5, 1, 0, 0, 0, 3]).unwrap();
    let mut len = [0u8; 4];
    sess.read_exact(ch, &mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    sess.read_exact(ch, &mut body).unwrap();
    assert_eq!(body[0], 2, "SSH_FXP_VERSION");
    assert_eq!(&body[1..5], [0, 0, 0, 3]);
    assert!(body.windows(24).any(|w| w == b"posix-rename@openssh.com"), "{:?}", String::from_utf8_lossy(&body));
    sess.close(ch).unwrap();
    // A second channel on the same connection.
    let (out, _, _) = sess.run(b"echo again", 100).unwrap();
    assert_eq!(out, b"again\n");
}

#[test]
fn sftp_files_directories_times_and_renames_on_openssh() {
    use cloudsync::ssh::sftp::{OPEN_CREAT, OPEN_READ, OPEN_TRUNC, OPEN_WRITE, Sftp};
    let s = servers::sshd();
    let mut f = Sftp::start(session(s.port)).unwrap();
    assert!(f.has_extension("posix-rename@openssh.com"));
    let home = f.realpath(b".").unwrap();
    assert_eq!(home, format!("/home/{FTP_USER}").as_bytes());
    let dir = format!("/home/{FTP_USER}/sftp-{}", std::process::id()).into_bytes();
    let _ = std::fs::remove_dir_all(String::from_utf8_lossy(&dir).as_ref());
    assert_eq!(f.list(&dir).unwrap(), None, "a missing directory");
    f.mkdir(&dir).unwrap();
    assert!(f.stat(&dir).unwrap().unwrap().is_dir());
    // A 3 MB file written and read back pipelined, under a name that is not UTF-8.
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let name = [&dir[..], b"/caf\xe9 file"].concat();
    let h = f.open(&name, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC).unwrap();
    assert_eq!(f.write_from(&h, 0, &mut &data[..]).unwrap(), 3_000_000);
    f.close(&h).unwrap();
    f.set_times(&name, 1_600_000_000, 1_600_000_001).unwrap();
    let a = f.stat(&name).unwrap().unwrap();
    assert_eq!((a.size, a.atime_mtime.map(|t| t.1)), (Some(3_000_000), Some(1_600_000_001)));
    assert!(a.is_file());
    let h = f.open(&name, OPEN_READ).unwrap();
    let mut back = Vec::new();
    assert_eq!(f.read_into(&h, 0, u64::MAX, &mut back).unwrap(), 3_000_000);
    assert!(back == data, "content read back differs");
    let mut part = Vec::new();
    f.read_into(&h, 1_000_000, 70_000, &mut part).unwrap();
    assert_eq!(part, &data[1_000_000..1_070_000]);
    f.close(&h).unwrap();
    // posix-rename replaces an existing target in one step.
    let other = [&dir[..], b"/other"].concat();
    let h = f.open(&other, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC).unwrap();
    f.write_from(&h, 0, &mut &b"old"[..]).unwrap();
    f.close(&h).unwrap();
    assert!(f.rename(&name, &other).unwrap());
    let listed = f.list(&dir).unwrap().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].0.as_slice(), listed[0].1.size), (&b"other"[..], Some(3_000_000)));
    // Errors are sentences with the SFTP status.
    let e = f.remove(&name).unwrap_err();
    assert_eq!(e.kind(), Kind::NotFound, "{e}");
    let e = f.rmdir(&dir).unwrap_err();
    assert!(e.to_string().contains("status"), "{e}");
    f.remove(&other).unwrap();
    f.rmdir(&dir).unwrap();
    assert_eq!(f.stat(&dir).unwrap(), None);
}

#[test]
fn a_stored_sftp_credential_logs_in_with_its_keychain_key() {
    use cloudsync::task::api;
    let s = servers::sshd();
    let tmp = tempfile::tempdir().unwrap();
    let store = cloudsync::store::Store::open(&tmp.path().join("db"), &tmp.path().join("seed")).unwrap();
    let pair = api::keychain_generate().unwrap();
    s.authorize(pair["public_key"].as_str().unwrap());
    let key =
        api::keychain_create(&store, &serde_json::json!({"name": "box", "type": "SSH_KEY_PAIR", "attributes": pair}))
            .unwrap();
    let provider = serde_json::json!({"type": "SFTP", "host": "127.0.0.1", "port": s.port, "user": FTP_USER,
        "pass": null, "private_key": key["id"]});
    let v = api::credential_verify_in(Some(&store), &provider);
    assert_eq!(v["valid"], true, "{v}");
    // Without the store the key cannot be read; a key pair that is gone is a sentence.
    let v = api::credential_verify(&provider);
    assert_eq!(v["valid"], false);
    assert!(v["error"].as_str().unwrap().contains("keychain"), "{v}");
    let mut gone = provider.clone();
    gone["private_key"] = serde_json::json!(999);
    let v = api::credential_verify_in(Some(&store), &gone);
    assert!(v["error"].as_str().unwrap().contains("not in the keychain"), "{v}");
    // A push through the registry with the stored credential, read back on disk.
    let cred = api::credential_create(&store, &serde_json::json!({"name": "sftp", "provider": provider})).unwrap();
    let c = store.get_credential(cred["id"].as_i64().unwrap()).unwrap();
    let folder = s.data.join(common::servers::unique("reg"));
    let attrs = serde_json::json!({"folder": folder.display().to_string()});
    let remote =
        cloudsync::task::runner::build_remote(&store.runnable(&c).unwrap(), attrs.as_object().unwrap(), None).unwrap();
    common::put_file(remote.as_ref(), "a/b.txt", b"through the registry", common::T1).unwrap();
    assert_eq!(std::fs::read(folder.join("a/b.txt")).unwrap(), b"through the registry");
    assert!(remote.describe().starts_with("sftp://"), "{}", remote.describe());
}

#[test]
fn a_credential_pins_the_servers_host_key_and_refuses_another() {
    use cloudsync::task::api;
    let s = servers::sshd();
    let tmp = tempfile::tempdir().unwrap();
    let store = cloudsync::store::Store::open(&tmp.path().join("db"), &tmp.path().join("seed")).unwrap();
    let provider = serde_json::json!({"type": "SFTP", "host": "127.0.0.1", "port": s.port, "user": FTP_USER,
        "pass": FTP_PASS});
    let cred = api::credential_create(&store, &serde_json::json!({"name": "box", "provider": provider})).unwrap();
    let id = cred["id"].as_i64().unwrap();
    assert_eq!(store.host_key(id).unwrap(), None);
    let c = store.get_credential(id).unwrap();
    assert_eq!(api::credential_verify_stored(&store, &c)["valid"], true);
    let pinned = store.host_key(id).unwrap().expect("pinned at the first verify");
    assert!(pinned.starts_with("ssh-ed25519 "), "{pinned}");
    assert_eq!(api::credential_verify_stored(&store, &c)["valid"], true, "the same key again");
    // Another key recorded (the server was replaced, or someone sits in between).
    let other = cloudsync::keychain::generate("").unwrap().public_key;
    store.set_host_key(id, Some(&other)).unwrap();
    let v = api::credential_verify_stored(&store, &c);
    assert_eq!(v["valid"], false);
    let text = v["error"].as_str().unwrap();
    assert!(text.contains("where") && text.contains("was recorded") && text.matches("SHA256:").count() == 2, "{text}");
    assert_eq!(store.host_key(id).unwrap().as_deref(), Some(other.as_str()), "a refused key is not recorded");
    // Saving the credential again forgets the pin: the next verify trusts the server anew.
    api::credential_update(&store, id, &serde_json::json!({"name": "box"})).unwrap();
    assert_eq!(store.host_key(id).unwrap(), None);
    assert_eq!(api::credential_verify_stored(&store, &c)["valid"], true);
    assert_eq!(store.host_key(id).unwrap(), Some(pinned.clone()));
    // The pin travels with an export and import.
    let export = api::config_export(&store, true).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let t = cloudsync::store::Store::open(&other_dir.path().join("db"), &other_dir.path().join("seed")).unwrap();
    let policy = cloudsync::task::model::PathPolicy { pool_root: "/mnt".into(), require_dataset: false };
    let r = api::config_import(&t, &export, &policy).unwrap();
    assert_eq!(t.host_key(r["credentials"][0]["id"].as_i64().unwrap()).unwrap(), Some(pinned));
}

#[test]
fn digests_where_the_account_runs_md5sum_and_none_where_it_cannot() {
    use cloudsync::remote::Remote;
    assert!(servers::sshd().remote("").features().md5(), "OpenSSH with a shell");
    assert!(servers::rclone_sftp().remote("").features().md5(), "rclone serve sftp emulates md5sum");
    assert!(servers::sshd_sftp_only().remote("").features().hashes.is_empty(), "ForceCommand internal-sftp");
    let sha1 = servers::sshd_sha1_only().remote("").features().hashes;
    assert!(
        sha1.contains(cloudsync::remote::hash::HashType::Sha1)
            && !sha1.contains(cloudsync::remote::hash::HashType::Md5)
    );
}

/// A server whose md5sum lies about what it stored: every upload fails its check, the
/// target is never written and no temporary file stays.
#[test]
fn an_upload_the_server_hashes_differently_is_refused() {
    use cloudsync::remote::Remote;
    let s = servers::sshd_lying_md5sum();
    let sub = servers::unique("lying");
    let r = s.remote(&sub);
    assert!(r.features().md5());
    let e = common::put_file(r.as_ref(), "f.bin", b"some bytes", common::T1).unwrap_err();
    assert_eq!(e.kind(), Kind::Corrupted, "{e}");
    assert!(e.to_string().contains("server's MD5 is 0123456789abcdef"), "{e}");
    assert!(e.is_retryable());
    let dir = s.data.join(&sub);
    let left: Vec<_> =
        std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// A source that fails with a network error after `cut` bytes of each read.
struct Versioned {
    data: Vec<u8>,
    fingerprint: &'static str,
    cut: Option<usize>,
    starts: std::sync::Mutex<Vec<u64>>,
}

struct FailAfter;

impl std::io::Read for FailAfter {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other(
            cloudsync::Error::new(Kind::Network, "connection reset by peer").with_retryable(true),
        ))
    }
}

impl cloudsync::remote::Source for Versioned {
    fn size(&self) -> u64 {
        self.data.len() as u64
    }
    fn mtime(&self) -> cloudsync::Result<i64> {
        Ok(common::T2)
    }
    fn fingerprint(&self) -> Option<String> {
        Some(self.fingerprint.to_string())
    }
    fn open_at(&self, offset: u64, len: u64) -> cloudsync::Result<Box<dyn std::io::Read + Send + '_>> {
        self.starts.lock().unwrap().push(offset);
        let part = &self.data[offset as usize..(offset + len) as usize];
        Ok(match self.cut {
            Some(cut) if cut < part.len() => Box::new(std::io::Read::chain(&part[..cut], FailAfter)),
            _ => Box::new(part),
        })
    }
}

/// An upload cut by the network keeps its temporary file, and the same version goes on
/// from there in the next run (its prefix checked by the whole file's digest where the
/// server runs one); another version starts over.
#[test]
fn an_interrupted_sftp_upload_goes_on_where_it_stopped() {
    use cloudsync::remote::{PutInfo, Remote};
    for (s, digest) in [(servers::sshd(), true), (servers::sshd_sftp_only(), false)] {
        let sub = servers::unique("resume");
        let r = s.remote(&sub);
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let info = PutInfo { size: data.len() as u64, mtime: Some(common::T2), ..PutInfo::default() };
        let first =
            Versioned { data: data.clone(), fingerprint: "v1", cut: Some(1_000_000), starts: Default::default() };
        let e = r.put(&common::rel("big.bin"), &first, &info).unwrap_err();
        assert_eq!(e.kind(), Kind::Network, "{e}");
        // Tried twice (a network failure gets a new connection): the second went on.
        let starts = first.starts.lock().unwrap().clone();
        assert_eq!(starts.last().copied().map(|s| s > 0), Some(true), "{starts:?}");
        let dir = s.data.join(&sub);
        let left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        assert!(left.len() == 1 && left[0].ends_with(".cloudsync-partial"), "{left:?}");
        let held = std::fs::metadata(dir.join(&left[0])).unwrap().len();
        assert!(held >= 1_000_000 && held < data.len() as u64, "{held}");
        // Another version of the file does not go on from there.
        let other = Versioned { data: data.clone(), fingerprint: "v2", cut: None, starts: Default::default() };
        r.put(&common::rel("other.bin"), &other, &info).unwrap();
        assert_eq!(*other.starts.lock().unwrap(), vec![0]);
        // The same version, in a new run: only the rest is sent, and the file is whole.
        let second = s.remote(&sub);
        let again = Versioned { data: data.clone(), fingerprint: "v1", cut: None, starts: Default::default() };
        let listed = second.list_dir(&cloudsync::path::RelPath::root(), &mut |_| {}).unwrap();
        assert!(!listed.iter().any(|e| e.name.ends_with(b".cloudsync-partial")), "temporary files are never listed");
        let e = second.put(&common::rel("big.bin"), &again, &info).unwrap();
        let want = if digest { vec![0, held] } else { vec![held] };
        assert_eq!(*again.starts.lock().unwrap(), want, "the prefix is read back to hash it only where it is checked");
        assert_eq!(std::fs::read(dir.join("big.bin")).unwrap(), data);
        assert_eq!(e.md5.is_some(), digest);
        assert_eq!(second.remove_leftovers().unwrap(), 0, "the leftover was used, not removed");
        let mut names: Vec<String> =
            std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        assert_eq!(names, vec!["big.bin", "other.bin"]);
    }
}
