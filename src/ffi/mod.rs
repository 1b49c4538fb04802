//! The C ABI of libcloudsync. The only place with `extern "C"`; nothing below it knows C.
//!
//! Conventions (modelled on rustls-ffi):
//! - every name starts with `cloudsync_`; handles are opaque, made by `_new`/`_open` and
//!   released by `_free`, which accepts NULL;
//! - functions that can fail return a [`cloudsync_result`] (a `#[repr(u32)]` enum whose
//!   values are never renumbered or reused) and take an optional last argument
//!   `cloudsync_error **error_out`: when it is not NULL it is set to NULL on success and to
//!   a new error object with the details on failure (free it with [`cloudsync_error_free`]);
//! - every other out-parameter (`char **`, handle `**`, ids, flags) is set to NULL, 0 or
//!   false when the call starts, on success and on failure alike, and filled only on
//!   success (the run functions also fill theirs for a job that ran and failed: see
//!   `cloudsync_task_run`); a NULL out-parameter the function needs is
//!   `CLOUDSYNC_NULL_PARAMETER`;
//! - structs the caller fills (`cloudsync_run_options`) start with their `size`, so
//!   fields can be added at the end without breaking programs built against this header;
//! - every pointer is checked: a NULL where one is required gives
//!   `CLOUDSYNC_NULL_PARAMETER`, never a crash;
//! - every body runs inside one panic boundary; a caught panic gives `CLOUDSYNC_PANIC`;
//! - text crosses as NUL-terminated UTF-8 (`CLOUDSYNC_INVALID_UTF8` otherwise); local
//!   paths as NUL-terminated bytes in any encoding; names from listings also as
//!   (bytes, length); task and credential bodies as JSON with the TrueNAS field names;
//! - strings the library allocates are freed with [`cloudsync_string_free`].
//!
//! The header `include/cloudsync.h` is generated from this module by cbindgen.

#![allow(non_camel_case_types)]
// Every `unsafe extern "C" fn` documents its pointer contract in its doc comment (the
// header carries those comments to C).
#![allow(clippy::missing_safety_doc)]
// Failures are rare and cross the boundary once; boxing them buys nothing.
#![allow(clippy::result_large_err)]

mod api;
mod listing;
mod run;

pub use api::*;
pub use listing::*;
pub use run::*;

use crate::error::{Error, Kind};
use std::ffi::{CStr, CString, c_char};
use std::panic::AssertUnwindSafe;

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
    /// A text argument was not valid UTF-8.
    CLOUDSYNC_INVALID_UTF8 = 3,
    /// A JSON argument did not parse.
    CLOUDSYNC_INVALID_JSON = 4,
    /// Validation failed: the error's details hold `[[field, message], ...]` with the
    /// TrueNAS field names and error texts.
    CLOUDSYNC_INVALID_ARGUMENT = 5,
    /// The credential, task, job or file does not exist.
    CLOUDSYNC_NOT_FOUND = 6,
    /// Credentials rejected, access denied, or stored secrets unavailable (seed mismatch).
    CLOUDSYNC_PERMISSION = 7,
    /// Network trouble: connect, reset, timeout.
    CLOUDSYNC_NETWORK = 8,
    /// The server answered with an error.
    CLOUDSYNC_SERVER = 9,
    /// The server answered with something that does not parse.
    CLOUDSYNC_PROTOCOL = 10,
    /// Data did not verify (size, hash, ciphertext authentication).
    CLOUDSYNC_CORRUPTED = 11,
    /// A name or key that cannot be used safely (`..`, absolute, NUL).
    CLOUDSYNC_BAD_NAME = 12,
    /// A local filesystem error.
    CLOUDSYNC_IO = 13,
    /// The job or operation was aborted (a callback returned `CLOUDSYNC_ABORT`, or an
    /// abort request from any thread or process).
    CLOUDSYNC_ABORTED = 14,
    /// The job ran and failed; the error's message is the job's error text.
    CLOUDSYNC_JOB_FAILED = 15,
    /// The task already had a waiting job; that job's id is returned instead.
    CLOUDSYNC_ALREADY_QUEUED = 16,
    /// The operation is not supported (provider or remote).
    CLOUDSYNC_UNSUPPORTED = 17,
    /// A directory that should exist does not.
    CLOUDSYNC_DIR_NOT_FOUND = 18,
    /// An index past the end of a listing.
    CLOUDSYNC_OUT_OF_RANGE = 19,
    /// Any other failure.
    CLOUDSYNC_OTHER = 20,
}

use cloudsync_result::*;

impl cloudsync_result {
    fn from_kind(kind: Kind) -> cloudsync_result {
        match kind {
            Kind::Usage => CLOUDSYNC_INVALID_ARGUMENT,
            Kind::DirNotFound => CLOUDSYNC_DIR_NOT_FOUND,
            Kind::NotFound => CLOUDSYNC_NOT_FOUND,
            Kind::Permission | Kind::AuthExpired => CLOUDSYNC_PERMISSION,
            Kind::Network => CLOUDSYNC_NETWORK,
            Kind::Server => CLOUDSYNC_SERVER,
            Kind::Protocol => CLOUDSYNC_PROTOCOL,
            Kind::Corrupted => CLOUDSYNC_CORRUPTED,
            Kind::BadName => CLOUDSYNC_BAD_NAME,
            Kind::Io | Kind::SourceChanged => CLOUDSYNC_IO,
            Kind::Cancelled => CLOUDSYNC_ABORTED,
            Kind::Unsupported => CLOUDSYNC_UNSUPPORTED,
            Kind::Fatal | Kind::NotDeleting | Kind::Quota | Kind::Other => CLOUDSYNC_OTHER,
        }
    }

    fn text(code: u32) -> &'static [u8] {
        match code {
            0 => b"success\0",
            1 => b"a required argument was NULL\0",
            2 => b"internal error (panic caught at the API boundary)\0",
            3 => b"a text argument is not valid UTF-8\0",
            4 => b"a JSON argument does not parse\0",
            5 => b"invalid argument\0",
            6 => b"not found\0",
            7 => b"permission denied\0",
            8 => b"network error\0",
            9 => b"the server answered with an error\0",
            10 => b"the server's answer does not parse\0",
            11 => b"data did not verify\0",
            12 => b"unsafe name\0",
            13 => b"local filesystem error\0",
            14 => b"aborted\0",
            15 => b"the job failed\0",
            16 => b"the task already has a waiting job\0",
            17 => b"not supported\0",
            18 => b"directory not found\0",
            19 => b"index out of range\0",
            20 => b"error\0",
            _ => b"unknown result code\0",
        }
    }
}

/// The detail of a failure, owned by the caller once returned through `error_out`.
/// Read it with the `cloudsync_error_*` accessors; free it with [`cloudsync_error_free`].
/// Immutable: accessors may be called from any thread.
pub struct cloudsync_error {
    code: cloudsync_result,
    message: CString,
    path: Option<CString>,
    provider: Option<CString>,
    remote: Option<CString>,
    http_status: u16,
    retryable: bool,
    details: Option<CString>,
}

/// A failure inside an API body, before it becomes a [`cloudsync_error`].
pub(crate) struct Fail {
    code: cloudsync_result,
    message: String,
    path: Option<String>,
    provider: Option<String>,
    remote: Option<String>,
    http_status: u16,
    retryable: bool,
    details: Option<serde_json::Value>,
}

impl Fail {
    pub(crate) fn new(code: cloudsync_result, message: impl Into<String>) -> Fail {
        Fail {
            code,
            message: message.into(),
            path: None,
            provider: None,
            remote: None,
            http_status: 0,
            retryable: false,
            details: None,
        }
    }

    pub(crate) fn null(what: &str) -> Fail {
        Fail::new(CLOUDSYNC_NULL_PARAMETER, format!("{what} is NULL"))
    }

    /// `CLOUDSYNC_JOB_FAILED` with the job's error sentence, its context (path, provider,
    /// remote, HTTP status, retryable) and the details as JSON (`kind`, `exit_code`, ...).
    pub(crate) fn job_failed(message: String, details: Option<&crate::task::runner::ErrorDetails>) -> Fail {
        let mut f = Fail::new(CLOUDSYNC_JOB_FAILED, message);
        if let Some(d) = details {
            f.path = d.path.clone();
            f.provider = d.provider.clone();
            f.remote = d.remote.clone();
            f.http_status = d.http_status.unwrap_or(0);
            f.retryable = d.retryable;
            f.details = serde_json::to_value(d).ok();
        }
        f
    }

    pub(crate) fn with_provider(mut self, provider: Option<String>) -> Fail {
        if self.provider.is_none() {
            self.provider = provider;
        }
        self
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        let provider = e
            .provider()
            .map(str::to_string)
            .or_else(|| e.remote().and_then(|r| r.split_once(':')).map(|(scheme, _)| scheme.to_string()));
        Fail {
            code: cloudsync_result::from_kind(e.kind()),
            message: e.to_string(),
            path: e.path().map(str::to_string),
            provider,
            remote: e.remote().map(str::to_string),
            http_status: e.http_status().unwrap_or(0),
            retryable: e.is_retryable(),
            details: None,
        }
    }
}

impl From<crate::task::api::ApiError> for Fail {
    fn from(e: crate::task::api::ApiError) -> Fail {
        use crate::task::api::ApiError;
        match e {
            ApiError::Failed(e) => e.into(),
            ApiError::Validation(errs) => {
                let mut f = Fail::new(CLOUDSYNC_INVALID_ARGUMENT, ApiError::Validation(errs.clone()).to_string());
                f.details = Some(serde_json::json!(errs.iter().map(|(k, m)| [k, m]).collect::<Vec<_>>()));
                f
            }
        }
    }
}

/// A C string from Rust text; NULs (which valid JSON and our names never contain) are
/// replaced so that nothing is cut short silently.
pub(crate) fn c_string(s: impl Into<Vec<u8>>) -> CString {
    let mut v: Vec<u8> = s.into();
    v.iter_mut().filter(|b| **b == 0).for_each(|b| *b = b'?');
    CString::new(v).unwrap_or_default()
}

impl Fail {
    fn into_error(self) -> cloudsync_error {
        cloudsync_error {
            code: self.code,
            message: c_string(self.message),
            path: self.path.map(c_string),
            provider: self.provider.map(c_string),
            remote: self.remote.map(c_string),
            http_status: self.http_status,
            retryable: self.retryable,
            details: self.details.map(|d| c_string(d.to_string())),
        }
    }
}

/// Run an API body: clear `*error_out`, catch panics, turn a failure into its code and,
/// when `error_out` is not NULL, an error object.
pub(crate) fn call(
    error_out: *mut *mut cloudsync_error,
    f: impl FnOnce() -> Result<cloudsync_result, Fail>,
) -> cloudsync_result {
    if !error_out.is_null() {
        // SAFETY: the caller passes NULL or a valid `cloudsync_error **`.
        unsafe { *error_out = std::ptr::null_mut() };
    }
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(Fail::new(CLOUDSYNC_PANIC, "internal error: a panic was caught at the API boundary")));
    match outcome {
        Ok(code) => code,
        Err(fail) => {
            let code = fail.code;
            set_error(error_out, fail);
            code
        }
    }
}

/// Hand `fail` to the caller through `error_out` (when not NULL).
pub(crate) fn set_error(error_out: *mut *mut cloudsync_error, fail: Fail) {
    if !error_out.is_null() {
        // SAFETY: as in `call`.
        unsafe { *error_out = Box::into_raw(Box::new(fail.into_error())) };
    }
}

/// Run `f`, turning a panic into `on_panic`. For functions without an error out-parameter.
pub(crate) fn ffi_guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(on_panic)
}

/// Borrow a required NUL-terminated UTF-8 argument.
pub(crate) fn text_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, Fail> {
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: the caller passes a valid NUL-terminated string that outlives the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| Fail::new(CLOUDSYNC_INVALID_UTF8, format!("{what} is not valid UTF-8")))
}

/// Parse a required JSON argument.
pub(crate) fn json_arg(p: *const c_char, what: &str) -> Result<serde_json::Value, Fail> {
    let text = text_arg(p, what)?;
    serde_json::from_str(text).map_err(|e| Fail::new(CLOUDSYNC_INVALID_JSON, format!("{what}: {e}")))
}

/// A required local path: NUL-terminated bytes in any encoding.
pub(crate) fn path_arg(p: *const c_char, what: &str) -> Result<std::path::PathBuf, Fail> {
    use std::os::unix::ffi::OsStrExt;
    if p.is_null() {
        return Err(Fail::null(what));
    }
    // SAFETY: as in `text_arg`.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    if bytes.is_empty() {
        return Err(Fail::new(CLOUDSYNC_INVALID_ARGUMENT, format!("{what} is empty")));
    }
    Ok(std::path::PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Store a library-allocated string into a required out-parameter.
pub(crate) fn put_string(out: *mut *mut c_char, s: impl Into<Vec<u8>>) {
    if !out.is_null() {
        // SAFETY: checked non-NULL; the caller passes a valid `char **`.
        unsafe { *out = c_string(s).into_raw() };
    }
}

/// Clear an out-parameter if it is not NULL.
pub(crate) fn clear<T>(out: *mut *mut T) {
    if !out.is_null() {
        // SAFETY: the caller passes NULL or a valid pointer to a pointer.
        unsafe { *out = std::ptr::null_mut() };
    }
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
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn cloudsync_result_text(code: u32) -> *const c_char {
    ffi_guard(std::ptr::null(), || cloudsync_result::text(code).as_ptr().cast())
}

/// Free a string that the library returned through a `char **` out-parameter.
/// NULL is accepted and ignored. Freeing a string twice, or one the library did not
/// allocate, is undefined behaviour.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_string_free(s: *mut c_char) {
    ffi_guard((), || {
        if !s.is_null() {
            // SAFETY: `s` came from `CString::into_raw` in this library (documented contract).
            drop(unsafe { CString::from_raw(s) });
        }
    })
}

fn error_ref<'a>(e: *const cloudsync_error) -> Option<&'a cloudsync_error> {
    // SAFETY: the caller passes NULL or an error object the library returned and has not freed.
    unsafe { e.as_ref() }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// The result code of an error object (`CLOUDSYNC_NULL_PARAMETER` for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_code(error: *const cloudsync_error) -> u32 {
    ffi_guard(CLOUDSYNC_PANIC as u32, || error_ref(error).map_or(CLOUDSYNC_NULL_PARAMETER as u32, |e| e.code as u32))
}

/// The full English message of an error (never NULL for a non-NULL error; NULL for a
/// NULL error). Secrets never appear in it. Valid until the error is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_message(error: *const cloudsync_error) -> *const c_char {
    ffi_guard(std::ptr::null(), || error_ref(error).map_or(std::ptr::null(), |e| e.message.as_ptr()))
}

/// The local path or remote key concerned, or NULL. When `len_out` is not NULL it gets
/// the length in bytes (0 for NULL). Valid until the error is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_path(error: *const cloudsync_error, len_out: *mut usize) -> *const c_char {
    ffi_guard(std::ptr::null(), || {
        let p = error_ref(error).and_then(|e| e.path.as_ref());
        if !len_out.is_null() {
            // SAFETY: checked non-NULL; the caller passes a valid `size_t *`.
            unsafe { *len_out = p.map_or(0, |c| c.as_bytes().len()) };
        }
        p.map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// The provider concerned (`"s3"`, a credential type such as `"S3"`), or NULL.
/// Valid until the error is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_provider(error: *const cloudsync_error) -> *const c_char {
    ffi_guard(std::ptr::null(), || error_ref(error).map_or(std::ptr::null(), |e| opt_ptr(&e.provider)))
}

/// The remote concerned as cloudsync describes it (e.g. `"s3:bucket/folder"`), or NULL.
/// Valid until the error is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_remote(error: *const cloudsync_error) -> *const c_char {
    ffi_guard(std::ptr::null(), || error_ref(error).map_or(std::ptr::null(), |e| opt_ptr(&e.remote)))
}

/// The HTTP status the server answered, or 0 when none applies.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_http_status(error: *const cloudsync_error) -> u16 {
    ffi_guard(0, || error_ref(error).map_or(0, |e| e.http_status))
}

/// Whether trying the same operation again later may succeed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_retryable(error: *const cloudsync_error) -> bool {
    ffi_guard(false, || error_ref(error).is_some_and(|e| e.retryable))
}

/// Details as JSON, else NULL. Valid until the error is freed. For
/// `CLOUDSYNC_INVALID_ARGUMENT` from a validation: `[[field, message], ...]`; for
/// `CLOUDSYNC_JOB_FAILED`: the job's `error_details` `{kind, exit_code, retryable,
/// http_status, provider, remote, path}` (`exit_code` is rclone's for the error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_details(error: *const cloudsync_error) -> *const c_char {
    ffi_guard(std::ptr::null(), || error_ref(error).map_or(std::ptr::null(), |e| opt_ptr(&e.details)))
}

/// Free an error object. NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_error_free(error: *mut cloudsync_error) {
    ffi_guard((), || {
        if !error.is_null() {
            // SAFETY: `error` came from `Box::into_raw` in this library (documented contract).
            drop(unsafe { Box::from_raw(error) });
        }
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
        for code in 0..=20 {
            let t = unsafe { CStr::from_ptr(cloudsync_result_text(code)) }.to_str().unwrap();
            assert_ne!(t, "unknown result code", "code {code} has no text");
        }
    }

    #[test]
    fn panics_become_an_error_object() {
        assert_eq!(ffi_guard(7, || panic!("boom")), 7);
        let mut err: *mut cloudsync_error = std::ptr::null_mut();
        let code = call(&mut err, || panic!("boom"));
        assert_eq!(code, CLOUDSYNC_PANIC);
        assert!(!err.is_null());
        unsafe {
            assert_eq!(cloudsync_error_code(err), 2);
            cloudsync_error_free(err);
        }
    }

    #[test]
    fn errors_carry_their_detail() {
        let e = Error::new(Kind::Server, "slow down").with_status(503).with_remote("s3:bucket/x").with_path("a/b");
        let mut err = std::ptr::null_mut();
        assert_eq!(call(&mut err, || Err(e.into())), CLOUDSYNC_SERVER);
        unsafe {
            assert_eq!(cloudsync_error_http_status(err), 503);
            assert!(cloudsync_error_retryable(err));
            let mut len = 0;
            let p = cloudsync_error_path(err, &mut len);
            assert_eq!(CStr::from_ptr(p).to_bytes(), b"a/b");
            assert_eq!(len, 3);
            assert_eq!(CStr::from_ptr(cloudsync_error_provider(err)).to_str().unwrap(), "s3");
            assert!(cloudsync_error_details(err).is_null());
            cloudsync_error_free(err);
            // NULL everywhere is safe.
            assert_eq!(cloudsync_error_code(std::ptr::null()), 1);
            assert!(cloudsync_error_message(std::ptr::null()).is_null());
            assert!(cloudsync_error_path(std::ptr::null(), std::ptr::null_mut()).is_null());
            cloudsync_error_free(std::ptr::null_mut());
            cloudsync_string_free(std::ptr::null_mut());
        }
    }
}
