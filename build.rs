//! Link libcloudsync.so like a system library: SONAME libcloudsync.so.<major ABI>.
//! The ABI major is 0 until 1.0; it changes only when a C function or type changes
//! incompatibly (result codes are never renumbered).

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libcloudsync.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
