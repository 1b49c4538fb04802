//! rclone crypt, both ways, against the real rclone (Debian's 1.60): trees that cloudsync
//! encrypts are read back by an rclone crypt remote byte for byte with identical names,
//! and trees rclone encrypts are pulled by cloudsync byte for byte. Every name mode, with
//! and without a salt, over a local directory and over S3.

mod common;

use cloudsync::crypt::{Keys, NameCipher, NameEncoding, NameMode, obscure, remote::CryptRemote};
use cloudsync::engine::{self, SyncOptions};
use cloudsync::remote::Remote;
use cloudsync::remote::local::LocalRemote;
use common::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";
const SALT: &str = "pepper and salt";

/// `long_name_bytes`: 143 (the longest name whose encrypted form fits a 255-byte name) over
/// a local directory. s3s-fs keeps each object's metadata in a file named after the base64
/// of the key, which overflows its own disk's name limit for such keys, so the S3 variants
/// use 80 bytes (real S3 takes keys up to 1024 bytes).
fn fixture(dir: &Path, long_name_bytes: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut seed = 42u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let long_name = format!("{}.txt", "n".repeat(long_name_bytes - 4));
    assert_eq!(long_name.len(), long_name_bytes);
    let sizes: Vec<(String, usize)> = vec![
        ("zero".into(), 0),
        ("one byte".into(), 1),
        ("sub dir/65535".into(), 65535),
        ("sub dir/65536".into(), 65536),
        ("sub dir/deeper/65537".into(), 65537),
        ("mib plus one.bin".into(), 1024 * 1024 + 1),
        ("caf\u{e9} \u{65e5}\u{672c}\u{8a9e}/r\u{e9}sum\u{e9}.txt".into(), (rnd() % 200_000) as usize),
        (long_name, (rnd() % 5000) as usize),
        ("random/a".into(), (rnd() % 300_000) as usize),
    ];
    for (name, size) in sizes {
        let data: Vec<u8> = (0..size).map(|_| rnd() as u8).collect();
        let p = dir.join(&name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, &data).unwrap();
        set_mtime(&p, T1);
        files.insert(name, data);
    }
    files
}

fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.insert(
                    e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                );
            }
        }
    }
    out
}

struct Setup {
    mode: NameMode,
    mode_name: &'static str,
    encoding: NameEncoding,
    encoding_name: &'static str,
    salt: &'static str,
}

/// A plaintext name whose encrypted form (standard mode, this setup's encoding) contains
/// `wanted`: for base32768, U+2400 `␀` is both an alphabet character and the symbol
/// rclone's encoders substitute for NUL, the case most likely to be mangled on the way
/// to the disk or into a key.
fn name_encrypting_to(setup: &Setup, wanted: char) -> String {
    let keys = Keys::derive(PASSWORD, setup.salt).unwrap();
    let names = NameCipher::new(&keys, NameMode::Standard, setup.encoding, true);
    (0..200_000)
        .map(|i| format!("edge {i}"))
        .find(|n| names.encrypt_file_name(n).unwrap().contains(wanted))
        .expect("some name encrypts to the character")
}

fn crypt_remote(inner: Arc<dyn Remote>, s: &Setup) -> CryptRemote {
    let keys = Keys::derive(PASSWORD, s.salt).unwrap();
    let names = NameCipher::new(&keys, s.mode, s.encoding, true);
    CryptRemote::new(inner, keys, names)
}

fn rclone(s3: Option<&S3Server>, crypt_target: &str, setup: &Setup, args: &[&str]) -> String {
    let mut c = Command::new(common::rclone().expect("rclone not found: scripts/test installs it"));
    c.args(args).env_remove("AWS_CA_BUNDLE").env("RCLONE_CONFIG", "/dev/null");
    if let Some(s3) = s3 {
        for (k, v) in s3.rclone_env("t") {
            c.env(k, v);
        }
    }
    c.env("RCLONE_CONFIG_C_TYPE", "crypt")
        .env("RCLONE_CONFIG_C_REMOTE", crypt_target)
        .env("RCLONE_CONFIG_C_PASSWORD", obscure(PASSWORD).unwrap())
        .env("RCLONE_CONFIG_C_FILENAME_ENCRYPTION", setup.mode_name)
        .env("RCLONE_CONFIG_C_FILENAME_ENCODING", setup.encoding_name)
        .env("RCLONE_CONFIG_C_DIRECTORY_NAME_ENCRYPTION", "true");
    if !setup.salt.is_empty() {
        c.env("RCLONE_CONFIG_C_PASSWORD2", obscure(setup.salt).unwrap());
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "rclone {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn both_ways(over_s3: bool, setup: Setup) {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = over_s3.then(S3Server::start);
    let src = tmp.path().join("src");
    let mut expected = fixture(&src, if over_s3 { 80 } else { 143 });
    if setup.encoding == NameEncoding::Base32768 && setup.mode == NameMode::Standard {
        let name = name_encrypting_to(&setup, '\u{2400}');
        std::fs::write(src.join(&name), b"nul symbol").unwrap();
        set_mtime(&src.join(&name), T1);
        expected.insert(name, b"nul symbol".to_vec());
    }
    let (ours_inner, ours_target, theirs_inner, theirs_target): (Arc<dyn Remote>, String, Arc<dyn Remote>, String) =
        match &s3 {
            Some(s3) => {
                (s3.remote("ours", "", None), "t:ours".into(), s3.remote("theirs", "", None), "t:theirs".into())
            }
            None => {
                let a = tmp.path().join("ours-encrypted");
                let b = tmp.path().join("theirs-encrypted");
                std::fs::create_dir_all(&b).unwrap();
                (
                    Arc::new(LocalRemote::new(a.clone(), Default::default(), None)),
                    a.to_string_lossy().into_owned(),
                    Arc::new(LocalRemote::new(b.clone(), Default::default(), None)),
                    b.to_string_lossy().into_owned(),
                )
            }
        };
    // cloudsync encrypts; rclone decrypts.
    let ours = crypt_remote(ours_inner.clone(), &setup);
    let rep = engine::run(&LocalRemote::new(src.clone(), Default::default(), None), &ours, &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    let out_dir = tmp.path().join("rclone-decrypted");
    rclone(s3.as_ref(), &ours_target, &setup, &["copy", "c:", out_dir.to_str().unwrap()]);
    assert_eq!(read_tree(&out_dir), expected, "rclone reads cloudsync's encryption");
    let check = rclone(s3.as_ref(), &ours_target, &setup, &["cryptcheck", src.to_str().unwrap(), "c:"]);
    assert!(check.contains("0 differences found"), "{check}");

    // rclone encrypts; cloudsync decrypts. Same names on both sides.
    rclone(s3.as_ref(), &theirs_target, &setup, &["copy", src.to_str().unwrap(), "c:"]);
    let ours_listing = read_names(ours_inner.as_ref());
    let theirs_listing = read_names(theirs_inner.as_ref());
    assert_eq!(ours_listing, theirs_listing, "identical encrypted names");
    let back = tmp.path().join("cloudsync-decrypted");
    let theirs = crypt_remote(theirs_inner, &setup);
    let rep = engine::run(&theirs, &LocalRemote::new(back.clone(), Default::default(), None), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    assert_eq!(read_tree(&back), expected, "cloudsync reads rclone's encryption");
}

/// The encrypted names (and sizes) of every object, as stored.
fn read_names(r: &dyn Remote) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![cloudsync::path::RelPath::root()];
    while let Some(d) = stack.pop() {
        for e in r.list_dir(&d, &mut |e| panic!("{e}")).unwrap() {
            let p = d.join(&e.name).unwrap();
            if e.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.display(), e.size);
            }
        }
    }
    out
}

macro_rules! matrix {
    ($($name:ident: $s3:expr, $mode:ident, $encoding:ident, $salt:expr;)*) => {
        $( #[test] fn $name() {
            let setup = Setup {
                mode: NameMode::$mode,
                mode_name: match NameMode::$mode {
                    NameMode::Standard => "standard",
                    NameMode::Obfuscate => "obfuscate",
                    NameMode::Off => "off",
                },
                encoding: NameEncoding::$encoding,
                encoding_name: match NameEncoding::$encoding {
                    NameEncoding::Base32 => "base32",
                    NameEncoding::Base64 => "base64",
                    NameEncoding::Base32768 => "base32768",
                },
                salt: $salt,
            };
            both_ways($s3, setup)
        } )*
    };
}

matrix! {
    local_standard_salt: false, Standard, Base32, SALT;
    local_standard_nosalt: false, Standard, Base32, "";
    local_standard_base64: false, Standard, Base64, SALT;
    local_standard_base32768: false, Standard, Base32768, SALT;
    local_obfuscate: false, Obfuscate, Base32, SALT;
    local_off: false, Off, Base32, "";
    s3_standard_salt: true, Standard, Base32, SALT;
    s3_standard_nosalt: true, Standard, Base32, "";
    s3_standard_base64: true, Standard, Base64, "";
    s3_standard_base32768: true, Standard, Base32768, "";
    s3_obfuscate: true, Obfuscate, Base32, "";
    s3_off: true, Off, Base32, SALT;
}

/// Tampered, truncated or wrongly keyed ciphertext: a clear error, and nothing wrong is
/// written into the destination.
#[test]
fn tampered_truncated_and_wrong_password() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), vec![5u8; 200_000]).unwrap();
    let enc_dir = tmp.path().join("enc");
    let setup = Setup {
        mode: NameMode::Off,
        mode_name: "off",
        encoding: NameEncoding::Base32,
        encoding_name: "base32",
        salt: "",
    };
    let inner: Arc<dyn Remote> = Arc::new(LocalRemote::new(enc_dir.clone(), Default::default(), None));
    let ours = crypt_remote(inner.clone(), &setup);
    assert!(
        engine::run(&LocalRemote::new(src, Default::default(), None), &ours, &SyncOptions::default()).error.is_none()
    );
    let enc_file = enc_dir.join("f.bin");
    let pristine = std::fs::read(&enc_file).unwrap();

    let pull = |crypt: &CryptRemote, name: &str| {
        let dst = tmp.path().join(name);
        let rep = engine::run(
            crypt,
            &LocalRemote::new(dst.clone(), Default::default(), None),
            &SyncOptions { retries: 1, ..Default::default() },
        );
        (rep, dst)
    };
    // Flipped byte in the middle of block 2.
    let mut bad = pristine.clone();
    bad[32 + 65552 + 100] ^= 1;
    std::fs::write(&enc_file, &bad).unwrap();
    let (rep, dst) = pull(&ours, "tampered");
    let e = rep.error.expect("tampering must fail");
    assert!(e.to_string().contains("failed to authenticate decrypted block"), "{e}");
    assert!(!dst.join("f").exists() && std::fs::read_dir(&dst).map(|d| d.count()).unwrap_or(0) == 0);
    // Truncated inside the last block.
    std::fs::write(&enc_file, &pristine[..pristine.len() - 10]).unwrap();
    let (rep, dst) = pull(&ours, "truncated");
    assert!(rep.error.is_some());
    assert!(!dst.join("f").exists());
    // Wrong password (names are off, so the content is what fails).
    std::fs::write(&enc_file, &pristine).unwrap();
    let keys = Keys::derive("wrong password", "").unwrap();
    let wrong = CryptRemote::new(
        inner.clone(),
        keys.clone(),
        NameCipher::new(&keys, NameMode::Off, NameEncoding::Base32, true),
    );
    let (rep, dst) = pull(&wrong, "wrongpw");
    assert!(rep.error.expect("wrong password must fail").to_string().contains("bad password"));
    assert!(!dst.join("f").exists());
}

/// A PULL SYNC with the wrong password where names are encrypted: nothing decrypts, the
/// run fails with the TrueNAS-fix message, and the local tree is untouched.
#[test]
fn wrong_password_pull_sync_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), b"a").unwrap();
    let inner: Arc<dyn Remote> = Arc::new(LocalRemote::new(tmp.path().join("enc"), Default::default(), None));
    let setup = Setup {
        mode: NameMode::Standard,
        mode_name: "standard",
        encoding: NameEncoding::Base32,
        encoding_name: "base32",
        salt: SALT,
    };
    assert!(
        engine::run(
            &LocalRemote::new(src, Default::default(), None),
            &crypt_remote(inner.clone(), &setup),
            &SyncOptions::default()
        )
        .error
        .is_none()
    );
    let local_dir = tmp.path().join("nas");
    std::fs::create_dir_all(&local_dir).unwrap();
    std::fs::write(local_dir.join("precious"), b"do not delete").unwrap();
    let wrong = crypt_remote(
        inner,
        &Setup {
            mode: NameMode::Standard,
            mode_name: "standard",
            encoding: NameEncoding::Base32,
            encoding_name: "base32",
            salt: "wrong salt",
        },
    );
    let rep = engine::run(
        &wrong,
        &LocalRemote::new(local_dir.clone(), Default::default(), None),
        &SyncOptions { retries: 1, ..Default::default() },
    );
    let e = rep.error.expect("must fail");
    assert!(e.to_string().contains(cloudsync::crypt::remote::NO_NAME_DECRYPTS), "{e}");
    assert_eq!(std::fs::read(local_dir.join("precious")).unwrap(), b"do not delete");
}
