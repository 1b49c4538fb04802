//! The C ABI of libcloudsync. The only place with `extern "C"`; nothing below it knows C.
//!
//! Conventions (modelled on rustls-ffi): every name starts with `cloudsync_`; every body
//! runs inside [`ffi_guard`] so that no panic crosses the boundary; result codes are a
//! `#[repr(u32)]` enum with explicit values that are never renumbered or reused.
//! The header `include/cloudsync.h` is generated from this module by cbindgen.

#![allow(non_camel_case_types)]

use std::ffi::c_char;

/// Result codes of the C API. Values are stable: never renumbered, never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum cloudsync_result {
    /// Success.
    CLOUDSYNC_OK = 0,
    /// A required pointer argument was NULL.
    CLOUDSYNC_NULL_PARAMETER = 1,
    /// A Rust panic was caught at the API boundary (a bug in cloudsync).
    CLOUDSYNC_PANIC = 2,
}

/// Run `f`, turning a panic into `on_panic`. Every exported function goes through here.
fn ffi_guard<T>(on_panic: T, f: impl FnOnce() -> T + std::panic::UnwindSafe) -> T {
    std::panic::catch_unwind(f).unwrap_or(on_panic)
}

static VERSION_C: &[u8] = concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes();

/// The library version as a static NUL-terminated string, e.g. `"0.1.0"`.
///
/// The returned pointer is valid for the life of the process and must not be freed.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn cloudsync_version() -> *const c_char {
    ffi_guard(std::ptr::null(), || VERSION_C.as_ptr().cast())
}

/// The library version as a number: `major * 10000 + minor * 100 + patch`.
///
/// Compare with `CLOUDSYNC_VERSION_MAJOR/MINOR/PATCH` from the header to detect a
/// header/library mismatch. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn cloudsync_version_number() -> u32 {
    ffi_guard(0, || {
        let p = |s: &str| s.parse::<u32>().unwrap_or(0);
        p(env!("CARGO_PKG_VERSION_MAJOR")) * 10000
            + p(env!("CARGO_PKG_VERSION_MINOR")) * 100
            + p(env!("CARGO_PKG_VERSION_PATCH"))
    })
}

/// A static, NUL-terminated English description of a result code. Unknown codes get
/// `"unknown result code"`. The pointer is valid for the life of the process and must
/// not be freed. Codes are taken as plain integers so that any value is safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn cloudsync_result_text(code: u32) -> *const c_char {
    ffi_guard(std::ptr::null(), || {
        let s: &'static [u8] = match code {
            0 => b"success\0",
            1 => b"a required argument was NULL\0",
            2 => b"internal error (panic caught at the API boundary)\0",
            _ => b"unknown result code\0",
        };
        s.as_ptr().cast()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn version_strings() {
        // SAFETY: the functions return static NUL-terminated strings.
        let v = unsafe { CStr::from_ptr(cloudsync_version()) }.to_str().unwrap();
        assert_eq!(v, crate::VERSION);
        assert_eq!(cloudsync_version_number(), 100);
        let t = unsafe { CStr::from_ptr(cloudsync_result_text(999)) }.to_str().unwrap();
        assert_eq!(t, "unknown result code");
    }

    #[test]
    fn panics_do_not_escape() {
        assert_eq!(ffi_guard(7, || panic!("boom")), 7);
    }
}
