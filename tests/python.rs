//! The Python binding (python/cloudsync.py, ctypes) against the library built with this
//! test: runs its unittest suite (python/tests, which starts its own s3s-fs server), and
//! checks that importing it without a usable library fails with a clear message.
//!
//! Needs `python3` (3.9+; `CLOUDSYNC_PYTHON` overrides) and s3s-fs (scripts/test).

use std::path::{Path, PathBuf};
use std::process::Command;

/// target/<profile>/libcloudsync.so, from this test's path (target/<profile>/deps/python-…).
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let lib = dir.join("libcloudsync.so");
    assert!(
        lib.exists(),
        "libcloudsync.so not built in {}: run `cargo build --lib` first (scripts/test does)",
        dir.display()
    );
    lib
}

fn python() -> Command {
    let mut cmd = Command::new(std::env::var_os("CLOUDSYNC_PYTHON").unwrap_or_else(|| "python3".into()));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        // Leave no __pycache__ in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("PYTHONPATH")
        .env_remove("AWS_CA_BUNDLE");
    cmd
}

#[test]
fn python_unittest_suite() {
    let lib = library();
    // Output streams straight to the terminal (unittest -v writes to stderr).
    let status = python()
        .args(["-m", "unittest", "discover", "-s", "python/tests", "-v"])
        .env("CLOUDSYNC_LIBRARY", &lib)
        .status()
        .expect("run python3 (install Python 3.9+ or set CLOUDSYNC_PYTHON)");
    assert!(status.success(), "the Python test suite failed ({status}) with CLOUDSYNC_LIBRARY={}", lib.display());
}

#[test]
fn import_without_a_usable_library_fails_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere/libcloudsync.so");
    let import =
        "import sys; sys.path.insert(0, 'python'); import cloudsync; print('loaded', cloudsync.library_path())";

    // CLOUDSYNC_LIBRARY names a file that does not exist: an ImportError naming the
    // variable and the path, and no fallback to another library.
    let out = python().args(["-c", import]).env("CLOUDSYNC_LIBRARY", &missing).output().expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the import succeeded: {}", String::from_utf8_lossy(&out.stdout));
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("ImportError: cloudsync: cannot load libcloudsync"), "{stderr}");
    assert!(last.contains(&format!("CLOUDSYNC_LIBRARY={}", missing.display())), "{stderr}");
    assert!(last.contains("no such file") && last.contains("cargo build --lib"), "{stderr}");

    // CLOUDSYNC_LIBRARY names something that is not a shared library.
    let bogus = tmp.path().join("libcloudsync.so");
    std::fs::write(&bogus, b"not an ELF file").unwrap();
    let out = python().args(["-c", import]).env("CLOUDSYNC_LIBRARY", &bogus).output().expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("ImportError: cloudsync: cannot load libcloudsync from CLOUDSYNC_LIBRARY="), "{stderr}");

    // Without the variable the dynamic loader is asked for libcloudsync.so.0: this tree's
    // build is not installed, so (unless the machine has one installed) the import fails
    // and says how to point the module at a library.
    let out = python()
        .args(["-c", import])
        .env_remove("CLOUDSYNC_LIBRARY")
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("run python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let last = stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("ImportError: cloudsync: cannot find libcloudsync"), "{stderr}");
        assert!(last.contains("CLOUDSYNC_LIBRARY") && last.contains("libcloudsync.so.0"), "{stderr}");
    } else {
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("loaded "), "{stderr}");
    }
}
