//! The C API from C: tests/c/capi_test.c drives every function (misuse included) against
//! the S3 test server, built through pkg-config with `-Wall -Wextra -Werror` and
//! AddressSanitizer + UBSan, then run again under valgrind (zero errors, zero leaks).
//! The library is linked the way an installed one is: by its SONAME, libcloudsync.so.0.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding the built libcloudsync.so (target/<profile>), from this test's path.
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
    assert!(
        dir.join("libcloudsync.so").exists(),
        "libcloudsync.so not built in {}: run `cargo build --lib` first (scripts/test does)",
        dir.display()
    );
    dir
}

/// An install-like prefix: lib/libcloudsync.so{,.0} -> the built library, include/ and a
/// cloudsync.pc made from cloudsync.pc.in.
fn prefix(tmp: &Path) -> PathBuf {
    let root = env!("CARGO_MANIFEST_DIR");
    let prefix = tmp.join("prefix");
    let lib = prefix.join("lib");
    std::fs::create_dir_all(lib.join("pkgconfig")).unwrap();
    for name in ["libcloudsync.so", "libcloudsync.so.0"] {
        std::os::unix::fs::symlink(lib_dir().join("libcloudsync.so"), lib.join(name)).unwrap();
    }
    let pc = std::fs::read_to_string(format!("{root}/cloudsync.pc.in"))
        .unwrap()
        .replace("@PREFIX@", prefix.to_str().unwrap())
        .replace("@LIBDIR@", lib.to_str().unwrap())
        .replace("@INCLUDEDIR@", &format!("{root}/include"))
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(lib.join("pkgconfig/cloudsync.pc"), pc).unwrap();
    prefix
}

fn pkg_config(prefix: &Path, what: &str) -> Vec<String> {
    let out = Command::new("pkg-config")
        .arg(what)
        .arg("cloudsync")
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config (installed by scripts/setup-deps)");
    assert!(out.status.success(), "pkg-config {what}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().split_whitespace().map(str::to_string).collect()
}

fn compile(prefix: &Path, out: &Path, sanitize: bool) {
    let src = format!("{}/tests/c/capi_test.c", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("cc");
    cmd.args(["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-o"])
        .arg(out)
        .arg(&src)
        .args(pkg_config(prefix, "--cflags"))
        .args(pkg_config(prefix, "--libs"))
        .arg("-lpthread");
    if sanitize {
        cmd.args(["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]);
    }
    let st = cmd.status().expect("cc");
    assert!(st.success(), "compiling {src} failed");
}

fn run(cmd: &mut Command, s3: &S3Server, tmp: &Path, slow: bool) {
    let scratch = tempfile::tempdir_in(tmp).unwrap();
    cmd.env("CS_ENDPOINT", &s3.endpoint)
        .env("CS_KEY", ACCESS_KEY)
        .env("CS_SECRET", SECRET_KEY)
        .env("CS_BUCKET", "capi")
        .env("CS_TMP", scratch.path())
        .env("CS_SLOW", if slow { "1" } else { "0" })
        .env_remove("AWS_CA_BUNDLE");
    let out = cmd.output().expect("run the C test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "the C test failed ({:?})", out.status);
    assert!(stdout.contains(" passed, 0 failed"), "no summary line");
}

#[test]
fn c_program_with_sanitizers() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let _ = s3.remote("capi", "", None); // creates the bucket
    let prefix = prefix(tmp.path());
    let exe = tmp.path().join("capi_test_asan");
    compile(&prefix, &exe, true);
    let mut cmd = Command::new(&exe);
    cmd.env("LD_LIBRARY_PATH", prefix.join("lib"))
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    run(&mut cmd, &s3, tmp.path(), true);
}

#[test]
fn c_program_under_valgrind() {
    let tmp = tempfile::tempdir().unwrap();
    let s3 = S3Server::start();
    let _ = s3.remote("capi", "", None);
    let prefix = prefix(tmp.path());
    let exe = tmp.path().join("capi_test");
    compile(&prefix, &exe, false);
    let mut cmd = Command::new("valgrind");
    cmd.args([
        "--quiet",
        "--error-exitcode=99",
        "--leak-check=full",
        "--show-leak-kinds=definite,indirect",
        "--errors-for-leak-kinds=definite,indirect",
    ])
    .arg(&exe)
    .env("LD_LIBRARY_PATH", prefix.join("lib"));
    run(&mut cmd, &s3, tmp.path(), true);
}

#[test]
fn library_has_its_soname_and_only_cloudsync_symbols() {
    let lib = lib_dir().join("libcloudsync.so");
    let out = Command::new("readelf").arg("-d").arg(&lib).output().expect("readelf");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Library soname: [libcloudsync.so.0]"), "{text}");
    let out = Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().expect("nm");
    let syms = String::from_utf8_lossy(&out.stdout);
    let exported: Vec<&str> =
        syms.lines().filter(|l| l.contains(" T ")).filter_map(|l| l.split_whitespace().last()).collect();
    assert!(exported.len() > 30, "{exported:?}");
    for s in &exported {
        assert!(s.starts_with("cloudsync_") || s.starts_with("rust_"), "unexpected exported symbol {s}");
    }
    // Every function the header declares is exported.
    let header = std::fs::read_to_string(format!("{}/include/cloudsync.h", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let re = regex::Regex::new(r"\b(cloudsync_[a-z_]+)\(").unwrap();
    for c in re.captures_iter(&header) {
        assert!(exported.contains(&&c[1]), "{} is declared but not exported", &c[1]);
    }
}

/// The build tree is usable without installing: `libcloudsync.so.0` (the SONAME) beside
/// the library and an uninstalled pkg-config file, so a C program builds and runs against
/// `target/<profile>` with nothing but PKG_CONFIG_PATH and LD_LIBRARY_PATH.
#[test]
fn the_build_tree_is_usable_without_installing() {
    let dir = lib_dir();
    assert_eq!(std::fs::read_link(dir.join("libcloudsync.so.0")).unwrap(), Path::new("libcloudsync.so"));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("v.c");
    std::fs::write(
        &src,
        "#include <cloudsync.h>\n#include <stdio.h>\nint main(void){puts(cloudsync_version());return 0;}\n",
    )
    .unwrap();
    let flags = |what: &str| -> Vec<String> {
        let out = Command::new("pkg-config").args([what, "cloudsync"]).env("PKG_CONFIG_PATH", &dir).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().split_whitespace().map(str::to_string).collect()
    };
    let libs = flags("--libs");
    assert!(libs.contains(&format!("-L{}", dir.display())), "{libs:?}");
    let exe = tmp.path().join("v");
    let st = Command::new("cc").arg("-o").arg(&exe).arg(&src).args(flags("--cflags")).args(libs).status().unwrap();
    assert!(st.success());
    let out = Command::new(&exe).env("LD_LIBRARY_PATH", &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), env!("CARGO_PKG_VERSION"));
}
