//! The locked-dataset check on a real pool; see tests/zfs.rs for the fixtures.

mod common;
mod zfs_support;

use serde_json::json;
use zfs_support::*;

/// A stand-in for a locked encrypted dataset (zfs-fuse has no encryption): the `zfs`
/// command the job runs (`CLOUDSYNC_ZFS`) is the real one, except that it reports the
/// key of the unmounted dataset as `unavailable`, as kernel ZFS does for a locked one.
/// In a test binary of its own, so that the variable reaches no other test.
#[test]
fn a_locked_dataset_fails_the_job_with_dataset_is_locked() {
    let (_turn, e) = env();
    let data = e.pool.dataset("secret");
    std::fs::write(data.join("a.txt"), b"alpha").unwrap();
    let marker = e._tmp.path().join("pre-ran");
    let id = e.task(&data, json!({"pre_script": format!("touch {}", marker.display())}));
    let locked = format!("{}/secret", e.pool.name);
    let wrapper = e._tmp.path().join("zfs");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = get ] && [ \"$5\" = keystatus ] && [ \"$6\" = {locked} ]; then echo unavailable; exit 0; fi\nexec zfs \"$@\"\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    // SAFETY: this test binary has this one test; nothing else reads the environment now.
    unsafe { std::env::set_var("CLOUDSYNC_ZFS", &wrapper) };
    sh("zfs", &["umount", &locked]);
    std::fs::create_dir_all(&data).unwrap();
    let out = e.run(id);
    assert_eq!(out.state, "FAILED", "{out:?}");
    assert!(out.error.unwrap_or_default().contains("Dataset is locked"));
    assert!(!marker.exists(), "the pre-script ran");
}
