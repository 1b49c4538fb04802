//! POSIX metadata across a push and a pull: mode, owner and group travel in the object
//! metadata the way rclone `--metadata` stores them (rclone 1.60 reads them back), are
//! restored on PULL without setuid/setgid/sticky bits, and files and directories that
//! carry none take the owner of the destination's root directory, never root:root.

mod common;

use cloudsync::engine::{self, SyncOptions};
use cloudsync::remote::local::{LocalOptions, LocalRemote};
use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
}

fn owner_mode(p: &Path) -> (u32, u32, u32) {
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn ownership_and_modes_round_trip_and_default_to_the_destination_owner() {
    assert!(nix::unistd::geteuid().is_root(), "this test changes owners: run it as root (scripts/test does)");
    let s3 = S3Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("report.txt"), b"quarterly").unwrap();
    std::fs::write(src.join("sub/tool"), b"#!/bin/sh\n").unwrap();
    chown(&src.join("report.txt"), 1234, 5678);
    std::fs::set_permissions(src.join("report.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    chown(&src.join("sub/tool"), 2000, 2000);
    std::fs::set_permissions(src.join("sub/tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();

    let local = |p: &Path| LocalRemote::new(p, LocalOptions::default(), None);
    // A bucket root: rclone 1.60 retries for a long time on s3s-fs prefix roots.
    let remote = s3.remote("ownbkt", "", None);
    let rep = engine::run(&local(&src), remote.as_ref(), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);

    // rclone reads the metadata cloudsync stored, in its own form.
    let out = Command::new("rclone")
        .args(["lsjson", "-R", "--max-depth", "3", "-M", "--files-only", "s3test:ownbkt"])
        .envs(s3.rclone_env("s3test"))
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .output()
        .expect("rclone");
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("rclone lsjson: {}", String::from_utf8_lossy(&out.stderr)));
    let report = listing.as_array().unwrap().iter().find(|e| e["Path"] == "report.txt").expect("report.txt listed");
    assert_eq!(report["Metadata"]["mode"], "100640", "{report}");
    assert_eq!(report["Metadata"]["uid"], "1234");
    assert_eq!(report["Metadata"]["gid"], "5678");

    // An object without metadata (uploaded by another tool).
    let plain = tmp.path().join("plain.txt");
    std::fs::write(&plain, b"no metadata").unwrap();
    let st = Command::new("rclone")
        .args(["copyto", plain.to_str().unwrap(), "s3test:ownbkt/sub/deeper/plain.txt"])
        .envs(s3.rclone_env("s3test"))
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG", "/dev/null")
        .status()
        .unwrap();
    assert!(st.success());

    // PULL into a dataset root owned by 4321:4321.
    let dst = tmp.path().join("dst");
    std::fs::create_dir_all(&dst).unwrap();
    chown(&dst, 4321, 4321);
    let rep = engine::run(remote.as_ref(), &local(&dst), &SyncOptions::default());
    assert!(rep.error.is_none(), "{:?}", rep.error);
    assert_eq!(owner_mode(&dst.join("report.txt")), (1234, 5678, 0o640));
    assert_eq!(owner_mode(&dst.join("sub/tool")), (2000, 2000, 0o755), "setuid must not come back");
    let (u, g, _) = owner_mode(&dst.join("sub/deeper/plain.txt"));
    assert_eq!((u, g), (4321, 4321), "a file without metadata takes the destination root's owner");
    for d in ["sub", "sub/deeper"] {
        let (u, g, _) = owner_mode(&dst.join(d));
        assert_eq!((u, g), (4321, 4321), "directory {d} created by the pull");
    }

    // An explicit owner for files without metadata wins over the root's.
    let dst2 = tmp.path().join("dst2");
    std::fs::create_dir_all(&dst2).unwrap();
    let opts = LocalOptions { owner: Some((777, 778)), ..LocalOptions::default() };
    let rep = engine::run(remote.as_ref(), &LocalRemote::new(&dst2, opts, None), &SyncOptions::default());
    assert!(rep.error.is_none());
    let (u, g, _) = owner_mode(&dst2.join("sub/deeper/plain.txt"));
    assert_eq!((u, g), (777, 778));

    // A modification-time-only change keeps the metadata in the object.
    filetime::set_file_mtime(src.join("report.txt"), filetime::FileTime::from_unix_time(1_600_000_000, 0)).unwrap();
    let rep = engine::run(&local(&src), remote.as_ref(), &SyncOptions::default());
    assert_eq!(rep.summary.mod_times_updated, 1);
    let dst3 = tmp.path().join("dst3");
    let rep = engine::run(remote.as_ref(), &local(&dst3), &SyncOptions::default());
    assert!(rep.error.is_none());
    assert_eq!(owner_mode(&dst3.join("report.txt")), (1234, 5678, 0o640));
}
