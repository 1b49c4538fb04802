//! The SSH client against OpenSSH's sshd on loopback: key exchange and the server's host
//! key as `ssh-keygen -l` shows it, logins by password and by keychain keys (Ed25519,
//! RSA in OpenSSH and PEM form), refusals in sentences, a host key the caller refuses, and
//! a server that re-keys every kilobyte.

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
    // Keys: one the keychain made, and RSA keys as ssh-keygen writes them.
    let tmp = tempfile::tempdir().unwrap();
    let made = cloudsync::keychain::generate("test").unwrap();
    let mut keys = vec![(made.private_key.unwrap(), made.public_key)];
    for (name, args) in
        [("rsa", &["-t", "rsa", "-b", "2048"][..]), ("rsa-pem", &["-t", "rsa", "-b", "2048", "-m", "PEM"])]
    {
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
