//! The SSH keychain: keys as `ssh-keygen` writes them (OpenSSH, PEM, PKCS#8; RSA, ECDSA,
//! Ed25519) read and their public keys derived exactly as `ssh-keygen -y` derives them;
//! generated keys that `ssh-keygen` reads back; private keys encrypted at rest, redacted
//! in listings, and carried through an export and import (the SFTP credentials that use
//! them follow their new ids); the CLI refusing a key on its command line.

mod common;

use cloudsync::store::Store;
use cloudsync::task::api;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn keygen(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen").args(["-q", "-f"]).arg(&path).args(args).status().expect("ssh-keygen");
    assert!(st.success(), "ssh-keygen {args:?}");
    let private = std::fs::read_to_string(&path).unwrap();
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    (private, public)
}

/// `TYPE BASE64` without the comment.
fn key_of(line: &str) -> String {
    line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[test]
fn keys_of_every_format_ssh_keygen_writes_give_the_same_public_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, args) in [
        ("ed25519", &["-t", "ed25519", "-N", ""][..]),
        ("rsa", &["-t", "rsa", "-b", "2048", "-N", ""]),
        ("rsa-pem", &["-t", "rsa", "-b", "2048", "-N", "", "-m", "PEM"]),
        ("rsa-pkcs8", &["-t", "rsa", "-b", "2048", "-N", "", "-m", "PKCS8"]),
        ("ecdsa", &["-t", "ecdsa", "-N", ""]),
        ("ecdsa-384-pem", &["-t", "ecdsa", "-b", "384", "-N", "", "-m", "PEM"]),
        ("ecdsa-pkcs8", &["-t", "ecdsa", "-b", "256", "-N", "", "-m", "PKCS8"]),
    ] {
        let (private, public) = keygen(tmp.path(), name, args);
        let derived = cloudsync::keychain::public_of(&private).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(key_of(&derived), key_of(&public), "{name}");
        let checked = cloudsync::keychain::check(Some(&private), Some(&public)).unwrap();
        assert_eq!(checked.public_key.trim(), public.trim(), "{name}: the given public key is kept");
    }
    // P-521 reads (its public key is known) but cannot sign: said at once.
    let (private, _) = keygen(tmp.path(), "ecdsa-521", &["-t", "ecdsa", "-b", "521", "-N", ""]);
    let e = cloudsync::keychain::signer(&private).err().expect("P-521 refused");
    assert!(e.to_string().contains("P-521") && e.to_string().contains("Ed25519"), "{e}");
    // A key under a passphrase: refused with the way out.
    let (private, _) = keygen(tmp.path(), "protected", &["-t", "ed25519", "-N", "secret words"]);
    let e = cloudsync::keychain::public_of(&private).unwrap_err();
    assert!(e.to_string().contains("ssh-keygen -p"), "{e}");
    let (private, _) =
        keygen(tmp.path(), "protected-pem", &["-t", "rsa", "-b", "2048", "-N", "secret words", "-m", "PEM"]);
    assert!(cloudsync::keychain::public_of(&private).unwrap_err().to_string().contains("passphrase"));
}

#[test]
fn generated_keys_are_what_ssh_keygen_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let kp = cloudsync::keychain::generate("cloudsync").unwrap();
    let path = tmp.path().join("k");
    std::fs::write(&path, kp.private_key.as_deref().unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("ssh-keygen").arg("-y").arg("-f").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(key_of(&String::from_utf8_lossy(&out.stdout)), key_of(&kp.public_key));
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join("db"), &dir.join("seed")).unwrap()
}

#[test]
fn private_keys_are_encrypted_redacted_and_carried_through_export_and_import() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let pair = api::keychain_generate().unwrap();
    let private = pair["private_key"].as_str().unwrap().to_string();
    let k = api::keychain_create(&s, &json!({"name": "nas", "type": "SSH_KEY_PAIR", "attributes": pair})).unwrap();
    let id = k["id"].as_i64().unwrap();
    assert_eq!(k["attributes"]["private_key"], "********");
    assert_eq!(api::keychain_get(&s, id, true).unwrap()["attributes"]["private_key"], private);
    assert!(!json!(api::keychain_list(&s, false).unwrap()).to_string().contains("PRIVATE KEY"));
    // Nothing of the key is in the database file in clear.
    let body: String = private.lines().nth(1).unwrap().chars().take(40).collect();
    let db = std::fs::read(tmp.path().join("db")).unwrap();
    let wal = std::fs::read(tmp.path().join("db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(body.len()).any(|w| w == body.as_bytes()), "the private key is stored in clear");
    }
    // Names are unique; a public key alone is a valid entry.
    let dup = api::keychain_create(
        &s,
        &json!({"name": "nas", "type": "SSH_KEY_PAIR",
        "attributes": {"public_key": k["attributes"]["public_key"]}}),
    );
    assert!(dup.is_err());
    // An SFTP credential uses it: the key pair cannot go.
    let cred = api::credential_create(
        &s,
        &json!({"name": "box", "provider": {"type": "SFTP", "host": "h",
        "user": "u", "private_key": id}}),
    )
    .unwrap();
    let e = api::keychain_delete(&s, id).unwrap_err();
    assert!(e.to_string().contains("\"box\""), "{e}");
    // Export with the seed, import into another store that has a key pair already: the
    // key pair gets a new id and the credential follows it.
    let export = api::config_export(&s, true).unwrap();
    assert!(!export.to_string().contains("PRIVATE KEY"), "exports keep keys encrypted");
    let other = tempfile::tempdir().unwrap();
    let t = store(other.path());
    api::keychain_create(
        &t,
        &json!({"name": "first", "type": "SSH_KEY_PAIR",
        "attributes": {"public_key": k["attributes"]["public_key"]}}),
    )
    .unwrap();
    let policy = cloudsync::task::model::PathPolicy { pool_root: "/mnt".into(), require_dataset: false };
    let report = api::config_import(&t, &export, &policy).unwrap();
    let new_id = report["keychain"][0]["id"].as_i64().unwrap();
    assert_ne!(new_id, id);
    assert_eq!(api::keychain_get(&t, new_id, true).unwrap()["attributes"]["private_key"], private);
    let new_cred = report["credentials"][0]["id"].as_i64().unwrap();
    assert_eq!(api::credential_get(&t, new_cred, true).unwrap()["provider"]["private_key"], new_id);
    let _ = cred;
    // Without the seed: the key pair comes back without its private key, and says so.
    let bare = api::config_export(&s, false).unwrap();
    let third = tempfile::tempdir().unwrap();
    let u = store(third.path());
    let report = api::config_import(&u, &bare, &policy).unwrap();
    assert!(report["keychain"][0]["problem"].as_str().unwrap().contains("add the key again"), "{report}");
    let back = api::keychain_get(&u, report["keychain"][0]["id"].as_i64().unwrap(), true).unwrap();
    assert!(back["attributes"]["private_key"].is_null());
}

#[test]
fn the_cli_takes_keys_from_files_never_from_its_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_cloudsync"))
            .args(args)
            .env("CLOUDSYNC_DB", tmp.path().join("db"))
            .env("CLOUDSYNC_SEED", tmp.path().join("seed"))
            .env_remove("CLOUDSYNCD_SOCKET")
            .output()
            .unwrap()
    };
    let out = cli(&["keychain", "generate", "made here"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    let (private, _) = keygen(tmp.path(), "id_rsa", &["-t", "rsa", "-b", "2048", "-N", ""]);
    let out = cli(&["keychain", "add", "inline", &format!("--private-key={private}")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("@FILE"), "{}", String::from_utf8_lossy(&out.stderr));
    let file = format!("@{}", tmp.path().join("id_rsa").display());
    let out = cli(&["keychain", "add", "from file", "--private-key", &file]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("PRIVATE KEY"));
    let out = cli(&["keychain", "list"]);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains("made here") && listing.contains("from file") && listing.contains("ssh-rsa"), "{listing}");
}
