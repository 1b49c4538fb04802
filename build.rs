//! Link libcloudsync.so like a system library: SONAME libcloudsync.so.<major ABI>.
//! The ABI major is 0 until 1.0; it changes only when a C function or type changes
//! incompatibly (result codes are never renumbered).
//!
//! The build tree is usable without installing: next to `libcloudsync.so` in
//! `target/<profile>/` go the `libcloudsync.so.0` link the SONAME asks the loader for and
//! `cloudsync-uninstalled.pc`, which pkg-config prefers to an installed `cloudsync.pc`
//! (`PKG_CONFIG_PATH=target/debug pkg-config --cflags --libs cloudsync`).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcloudsync.so.0");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=cloudsync.pc.in");
    // OUT_DIR is target/<profile>/build/cloudsync-<hash>/out.
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else { return };
    let Some(profile_dir) = out.ancestors().nth(3) else { return };
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let _ = link_soname(profile_dir);
    let _ = write_uninstalled_pc(profile_dir, &manifest);
}

fn link_soname(dir: &Path) -> std::io::Result<()> {
    let link = dir.join("libcloudsync.so.0");
    if std::fs::read_link(&link).is_ok_and(|t| t == Path::new("libcloudsync.so")) {
        return Ok(());
    }
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("libcloudsync.so", &link)
}

fn write_uninstalled_pc(dir: &Path, manifest: &Path) -> std::io::Result<()> {
    let template = std::fs::read_to_string(manifest.join("cloudsync.pc.in"))?;
    let text = template
        .replace("@PREFIX@", &manifest.display().to_string())
        .replace("@LIBDIR@", &dir.display().to_string())
        .replace("@INCLUDEDIR@", &manifest.join("include").display().to_string())
        .replace("@VERSION@", &std::env::var("CARGO_PKG_VERSION").unwrap_or_default());
    let path = dir.join("cloudsync-uninstalled.pc");
    if std::fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    std::fs::write(path, text)
}
