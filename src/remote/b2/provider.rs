//! The registry entry of Backblaze B2 (TrueNAS `B2`: `account` is the application key
//! ID, `key` the application key; the task's `chunk_size` is in MiB).
//!
//! `CLOUDSYNC_B2_ENDPOINT` points the API at another server (a test server; rclone's
//! `--b2-endpoint`): TrueNAS's credential has no endpoint field.

use super::{B2Options, B2Remote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{Bucket, BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use serde_json::Value;
use std::sync::Arc;

/// The credential (TrueNAS `B2CredentialsModel`).
pub const FIELDS: &[FieldSpec] =
    &[FieldSpec::new("account", Str).sec().chk(Check::NonEmpty), FieldSpec::new("key", Str).sec().chk(Check::NonEmpty)];
/// The task's own attributes (chunk size in MiB).
pub const ATTRIBUTES: &[FieldSpec] = &[FieldSpec::new("chunk_size", Int).or(d_b2_chunk)];

pub static PROVIDER: Provider = Provider {
    type_name: "B2",
    scheme: "b2",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: None,
};

pub(crate) fn options(req: &BuildRequest<'_>, bucket: &str) -> B2Options {
    let chunk = req.attributes.get("chunk_size").and_then(Value::as_u64).unwrap_or(96);
    let mut o = B2Options::new(req.cred("account"), req.cred("key"), bucket, req.attr("folder")).with_chunk_mib(chunk);
    if let Ok(e) = std::env::var("CLOUDSYNC_B2_ENDPOINT")
        && !e.is_empty()
    {
        o.endpoint = e;
    }
    o.http = req.http;
    o
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(B2Remote::new(options(req, req.attr("bucket")))?))
}

fn list_buckets(req: &BuildRequest<'_>) -> Result<Vec<Bucket>> {
    B2Remote::new(options(req, "list"))?.list_buckets()
}
