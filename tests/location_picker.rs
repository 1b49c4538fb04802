//! The folder listing behind TrueNAS's location picker (`cloudsync.list_directory`) on
//! the servers of issue 14, through a stored credential as the UI calls it: SFTP
//! (OpenSSH, keychain key and a pinned host key), FTP (vsftpd and pure-ftpd), WebDAV (the Nextcloud
//! fake, `rclone serve webdav` and WsgiDAV as vendor "other") and HTTP (`rclone serve http`). Entries come in rclone
//! `lsjson` shape, sorted, directories with size -1, subfolders browsed by `path`, names
//! decrypted when the task encrypts them, and a wrong password or a missing folder is a
//! sentence, not an empty list.

mod common;

use cloudsync::remote::Remote;
use cloudsync::store::Store;
use cloudsync::task::api;
use common::servers;
use common::{T1, put_file};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// One server: the credential as stored, the task location, and a remote on that same
/// location to write the fixtures through.
struct Target {
    name: &'static str,
    credential: Value,
    attributes: Value,
    remote: Arc<dyn Remote>,
    /// Whether the listing carries modification times (WebDAV "other" would not).
    times: bool,
}

fn stored(store: &Store, name: &str, t: &Target) -> i64 {
    let c = api::credential_create(store, &json!({"name": name, "provider": t.credential}))
        .unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    c["id"].as_i64().unwrap()
}

fn crypt_fields() -> Value {
    json!({"encryption": true, "filename_encryption": true, "encryption_password": "potato",
           "encryption_salt": "sausage"})
}

fn check(t: Target) {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("db"), &tmp.path().join("seed")).unwrap();
    let id = stored(&store, t.name, &t);
    let r = &*t.remote;
    put_file(r, "a.txt", b"abc", T1).unwrap();
    put_file(r, "caf\u{e9} \u{65e5}.bin", b"12345", T1 + 7_000_000_000).unwrap();
    put_file(r, "sub/deeper/b.bin", b"0123456789", T1).unwrap();

    let top =
        api::list_directory(&store, id, &t.attributes, &json!({}), "").unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    let shown: Vec<(&str, &str, i64, bool)> = top
        .iter()
        .map(|e| {
            (
                e["Path"].as_str().unwrap(),
                e["Name"].as_str().unwrap(),
                e["Size"].as_i64().unwrap(),
                e["IsDir"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("a.txt", "a.txt", 3, false),
            ("caf\u{e9} \u{65e5}.bin", "caf\u{e9} \u{65e5}.bin", 5, false),
            ("sub", "sub", -1, true)
        ],
        "{}",
        t.name
    );
    if t.times {
        assert_eq!(top[0]["ModTime"], json!(T1 / 1_000_000_000), "{}: {top:?}", t.name);
        assert_eq!(top[1]["ModTime"], json!(T1 / 1_000_000_000 + 7), "{}: {top:?}", t.name);
    }
    // Browsing down, with or without slashes around the path.
    for path in ["sub", "/sub/"] {
        let l = api::list_directory(&store, id, &t.attributes, &json!({}), path).unwrap();
        assert_eq!(l.len(), 1, "{}: {l:?}", t.name);
        assert_eq!((l[0]["Path"].as_str(), l[0]["IsDir"].as_bool()), (Some("sub/deeper"), Some(true)), "{}", t.name);
    }
    let l = api::list_directory(&store, id, &t.attributes, &json!({}), "sub/deeper").unwrap();
    assert_eq!((l[0]["Path"].as_str(), l[0]["Size"].as_i64()), (Some("sub/deeper/b.bin"), Some(10)), "{}", t.name);
    // A folder that is not there: an error naming it, never an empty picker.
    let e = api::list_directory(&store, id, &t.attributes, &json!({}), "no such folder").unwrap_err();
    assert!(format!("{e:?}").contains("no such folder"), "{}: {e:?}", t.name);

    // An encrypted task's folder: the picker shows the plaintext names (`Decrypted`), and
    // `path` browses by plaintext name below it.
    let crypt = cloudsync::task::runner::with_crypt(t.remote.clone(), crypt_fields().as_object().unwrap()).unwrap();
    put_file(&*crypt, "secret/plan.txt", b"shh", T1).unwrap();
    let raw = api::list_directory(&store, id, &t.attributes, &json!({}), "").unwrap();
    assert_eq!(raw.len(), 4, "{}: the encrypted folder is one more stored name: {raw:?}", t.name);
    assert!(raw.iter().all(|e| e["Name"] != "secret"), "{}: the stored name is encrypted", t.name);
    let mut args = crypt_fields();
    args["credentials"] = json!(id);
    args["attributes"] = t.attributes.clone();
    args["path"] = json!("secret");
    let l = api::list_directory_args(&store, &args).unwrap_or_else(|e| panic!("{}: {e:?}", t.name));
    assert_eq!(l.len(), 1, "{}", t.name);
    assert_eq!((l[0].name.as_slice(), l[0].size, l[0].is_dir), (&b"plan.txt"[..], 3, false), "{}", t.name);

    // The same credential with a wrong password: a sentence, not a listing.
    let mut wrong: Map<String, Value> = t.credential.as_object().unwrap().clone();
    if wrong.contains_key("pass") && !wrong["pass"].is_null() {
        wrong.insert("pass".into(), json!("Wrong-one-9"));
        let bad = stored(&store, "wrong password", &Target { credential: Value::Object(wrong), ..t });
        let e = format!("{:?}", api::list_directory(&store, bad, &json!({"folder": ""}), &json!({}), "").unwrap_err());
        assert!(!e.contains("Wrong-one-9"), "{e}");
        assert!(e.contains("Permission") || e.to_lowercase().contains("password") || e.contains("401"), "{e}");
    }
}

#[test]
fn sftp_with_a_keychain_key_and_a_pinned_host_key() {
    let s = servers::sshd();
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(&tmp.path().join("db"), &tmp.path().join("seed")).unwrap();
    let pair = api::keychain_generate().unwrap();
    s.authorize(pair["public_key"].as_str().unwrap());
    let key =
        api::keychain_create(&store, &json!({"name": "box", "type": "SSH_KEY_PAIR", "attributes": pair})).unwrap();
    let cred = api::credential_create(
        &store,
        &json!({"name": "box", "provider": {"type": "SFTP", "host": "127.0.0.1", "port": s.port,
                 "user": servers::FTP_USER, "pass": null, "private_key": key["id"]}}),
    )
    .unwrap();
    let id = cred["id"].as_i64().unwrap();
    let folder = s.data.join("picker").display().to_string();
    let remote = s.remote("picker");
    put_file(&*remote, "x/y.txt", b"yy", T1).unwrap();
    let l = api::list_directory(&store, id, &json!({"folder": folder}), &json!({}), "x").unwrap();
    assert_eq!((l[0]["Name"].as_str(), l[0]["Size"].as_i64()), (Some("y.txt"), Some(2)));
    assert!(store.host_key(id).unwrap().is_some(), "the picker's connection pinned the host key");
    // And the password account through the shared checks.
    check(Target {
        name: "sftp",
        credential: json!({"type": "SFTP", "host": "127.0.0.1", "port": s.port, "user": servers::FTP_USER,
                           "pass": servers::FTP_PASS}),
        attributes: json!({"folder": s.data.join("picker-pass").display().to_string()}),
        remote: s.remote("picker-pass"),
        times: true,
    });
}

#[test]
fn ftp_on_vsftpd_and_pure_ftpd() {
    // vsftpd lists with LIST, whose times are minutes in the server's zone: the picker
    // leaves them out rather than send an MDTM per file; pure-ftpd's MLSD has them.
    for (f, times) in [(servers::vsftpd(), false), (servers::pureftpd(), true)] {
        check(Target {
            name: f.name,
            credential: Value::Object(f.credential_provider()),
            attributes: json!({"folder": f.folder_of("picker")}),
            remote: f.remote("picker"),
            times,
        });
    }
}

#[test]
fn webdav_on_nextcloud_rclone_and_wsgidav() {
    for (dav, times) in [(servers::nextcloud(), true), (servers::rclone_webdav(), true), (servers::wsgidav(), false)] {
        let folder = format!("picker-{}", dav.vendor_name());
        check(Target {
            name: "webdav",
            credential: Value::Object(dav.credential_provider()),
            attributes: json!({"folder": folder}),
            remote: dav.remote(&folder),
            times,
        });
    }
}

#[test]
fn http_on_rclone_serve_http() {
    let h = servers::rclone_http();
    check(Target {
        name: "http",
        credential: json!({"type": "HTTP", "url": h.url}),
        attributes: json!({"folder": "picker"}),
        remote: h.remote("picker"),
        times: true,
    });
}
