//! What bucket stores share: checking that the metadata index's record of an object
//! (its modification time, its MD5) still describes what a listing shows, so that the
//! index saves a HEAD per object (S3, Swift: their listings carry no user metadata).

use crate::index::ObjectMeta;
use crate::remote::{Md5, Nanos};

/// What a listing tells of an object, for [`validate`].
pub struct Listed<'a> {
    pub size: i64,
    /// The listed ETag or hash ("" when the server lists none).
    pub etag: &'a str,
}

/// Whether what the index recorded for an object still describes the listed object.
/// `Some(None)`: valid as is. `Some(Some(meta))`: valid, and the first listing after our
/// own upload completes the record (the PUT answer carries no LastModified, and some
/// servers send no ETag there either). `None`: stale.
///
/// Some servers list no ETags; then size and LastModified are the validators.
pub fn validate(
    m: &ObjectMeta,
    o: &Listed<'_>,
    server_time: Option<Nanos>,
    listed_md5: Option<Md5>,
) -> Option<Option<ObjectMeta>> {
    if m.size != o.size {
        return None;
    }
    let first_listing = m.server_time.is_none();
    if !first_listing && m.server_time != server_time {
        return None;
    }
    let etag_ok = if o.etag.is_empty() || m.etag == o.etag {
        true
    } else if m.etag.is_empty() && first_listing {
        // We uploaded it but were not told the ETag: accept the listed one only if it
        // agrees with the MD5 we computed.
        matches!((m.md5, listed_md5), (Some(a), Some(b)) if a == b) || (m.md5.is_none() && listed_md5.is_none())
    } else {
        false
    };
    if !etag_ok {
        return None;
    }
    if first_listing || (m.etag.is_empty() && !o.etag.is_empty()) {
        let etag = if o.etag.is_empty() { m.etag.clone() } else { o.etag.to_string() };
        return Some(Some(ObjectMeta { etag, server_time: server_time.or(m.server_time), ..m.clone() }));
    }
    Some(None)
}
