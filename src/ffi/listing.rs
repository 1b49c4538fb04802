//! Listings: the buckets of a credential and the entries of a remote folder, as a handle
//! to iterate with names as (bytes, length).

use super::api::{cloudsync_store, store_ref};
use super::cloudsync_result::{self, *};
use super::{Fail, call, clear, cloudsync_error, ffi_guard, json_arg, text_arg};
use crate::task::{api, runner};
use std::ffi::{CString, c_char};

/// A listing made by [`cloudsync_list_directory`] or [`cloudsync_list_buckets`]; read it
/// with [`cloudsync_listing_len`] and [`cloudsync_listing_get`], free it with
/// [`cloudsync_listing_free`]. Immutable: reads are thread-safe.
pub struct cloudsync_listing {
    entries: Vec<(CString, EntryInfo)>,
}

#[derive(Clone, Copy)]
struct EntryInfo {
    is_dir: bool,
    size: i64,
    mtime_ns: Option<i64>,
}

/// One entry of a listing. `name` points into the listing: valid until it is freed.
#[repr(C)]
#[derive(Debug)]
pub struct cloudsync_entry {
    /// The leaf name, NUL-terminated; usually UTF-8 but not always (a local file name in
    /// another encoding): use `name_len` bytes. Decrypted when the task encrypts names.
    pub name: *const c_char,
    pub name_len: usize,
    pub is_dir: bool,
    /// Bytes, or -1 when unknown (directories).
    pub size: i64,
    /// Whether `mtime_ns` is known.
    pub has_mtime: bool,
    /// Modification time in nanoseconds since the Unix epoch: the stored (rclone) time
    /// when the listing has it, else the server's last-modified time.
    pub mtime_ns: i64,
}

fn give_listing(
    out: *mut *mut cloudsync_listing,
    entries: Vec<(Vec<u8>, EntryInfo)>,
) -> Result<cloudsync_result, Fail> {
    let entries = entries
        .into_iter()
        .map(|(name, info)| (CString::new(name).map_err(|_| Fail::new(CLOUDSYNC_BAD_NAME, "a name holds NUL")), info))
        .map(|(n, i)| n.map(|n| (n, i)))
        .collect::<Result<Vec<_>, _>>()?;
    // SAFETY: the caller checked `out` is non-NULL.
    unsafe { *out = Box::into_raw(Box::new(cloudsync_listing { entries })) };
    Ok(CLOUDSYNC_OK)
}

/// List a remote folder (TrueNAS's `cloudsync.list_directory`). `args_json` is
/// `{"credentials": ID, "attributes": {"bucket": ..., "folder": ...}}` plus, for an
/// encrypted task, `"encryption": true, "filename_encryption": bool,
/// "encryption_password": ..., "encryption_salt": ...` so that names come decrypted
/// (names that do not decrypt are skipped). The folder listed is `attributes.folder`,
/// or the optional `"path"` below it (plaintext, also through name encryption).
/// On success `*listing_out` is a new listing sorted by name.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_list_directory(
    store: *const cloudsync_store,
    args_json: *const c_char,
    listing_out: *mut *mut cloudsync_listing,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(listing_out);
        let s = store_ref(store)?;
        if listing_out.is_null() {
            return Err(Fail::null("listing_out"));
        }
        let args = json_arg(args_json, "args_json")?;
        let entries = api::list_directory_args(&s.store, &args)?;
        give_listing(
            listing_out,
            entries
                .into_iter()
                .map(|e| (e.name, EntryInfo { is_dir: e.is_dir, size: e.size, mtime_ns: e.mtime_ns }))
                .collect(),
        )
    })
}

/// List the buckets (top-level containers) that stored credential `credential_id` can
/// see, as directory entries (15 s connect, 30 s I/O timeout).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_list_buckets(
    store: *const cloudsync_store,
    credential_id: i64,
    listing_out: *mut *mut cloudsync_listing,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(listing_out);
        let s = store_ref(store)?;
        if listing_out.is_null() {
            return Err(Fail::null("listing_out"));
        }
        let c = s.store.get_credential(credential_id)?;
        let provider = c.provider.get("type").and_then(|t| t.as_str()).map(str::to_string);
        let buckets = runner::list_buckets(c.usable()?).map_err(|e| Fail::from(e).with_provider(provider))?;
        give_listing(
            listing_out,
            buckets
                .into_iter()
                .map(|(name, created)| {
                    let mtime_ns = crate::remote::s3::time::parse_iso8601(&created);
                    (name.into_bytes(), EntryInfo { is_dir: true, size: -1, mtime_ns })
                })
                .collect(),
        )
    })
}

/// Create bucket `name` (UTF-8) in the account of stored credential `credential_id`, with
/// the verify timeouts (TrueNAS's `cloudsync.create_bucket`). Only Storj can: any other
/// provider gets `CLOUDSYNC_INVALID_ARGUMENT` with "This provider can't create buckets"
/// before any network call. A bucket the account already owns is not an error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_create_bucket(
    store: *const cloudsync_store,
    credential_id: i64,
    name: *const c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        let s = store_ref(store)?;
        let name = text_arg(name, "name")?;
        let c = s.store.get_credential(credential_id)?;
        let provider = c.provider.get("type").and_then(|t| t.as_str()).map(str::to_string);
        runner::create_bucket(c.usable()?, name).map_err(|e| Fail::from(e).with_provider(provider))?;
        Ok(CLOUDSYNC_OK)
    })
}

/// The number of entries of a listing (0 for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_listing_len(listing: *const cloudsync_listing) -> usize {
    // SAFETY: NULL or a listing the library returned and the caller has not freed.
    ffi_guard(0, || unsafe { listing.as_ref() }.map_or(0, |l| l.entries.len()))
}

/// Entry `index` of a listing into `*entry_out`. `CLOUDSYNC_OUT_OF_RANGE` past the end.
/// The entry's `name` stays valid until the listing is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_listing_get(
    listing: *const cloudsync_listing,
    index: usize,
    entry_out: *mut cloudsync_entry,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        // SAFETY: as in `cloudsync_listing_len`.
        let l = unsafe { listing.as_ref() }.ok_or_else(|| Fail::null("listing"))?;
        if entry_out.is_null() {
            return Err(Fail::null("entry_out"));
        }
        let (name, info) = l.entries.get(index).ok_or_else(|| {
            Fail::new(CLOUDSYNC_OUT_OF_RANGE, format!("index {index} is past the end ({} entries)", l.entries.len()))
        })?;
        let e = cloudsync_entry {
            name: name.as_ptr(),
            name_len: name.as_bytes().len(),
            is_dir: info.is_dir,
            size: info.size,
            has_mtime: info.mtime_ns.is_some(),
            mtime_ns: info.mtime_ns.unwrap_or(0),
        };
        // SAFETY: checked non-NULL; the caller passes a valid `cloudsync_entry *`.
        unsafe { *entry_out = e };
        Ok(CLOUDSYNC_OK)
    })
}

/// Free a listing. NULL is accepted and ignored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_listing_free(listing: *mut cloudsync_listing) {
    ffi_guard((), || {
        if !listing.is_null() {
            // SAFETY: `listing` came from `Box::into_raw` in this module.
            drop(unsafe { Box::from_raw(listing) });
        }
    })
}
