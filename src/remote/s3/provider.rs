//! The registry entries of S3 and its TrueNAS variants (Storj's S3 gateway), with the
//! vendor quirks rclone keeps in `backend/s3/provider/*.yaml`.

use super::client::ClientConfig;
use super::{S3Options, S3Remote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{Bucket, BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use serde_json::Value;
use std::sync::Arc;

/// The S3 credential (TrueNAS `S3CredentialsModel`).
pub const S3_FIELDS: &[FieldSpec] = &[
    FieldSpec::new("access_key_id", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("secret_access_key", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("endpoint", Str).or(d_empty).chk(Check::EmptyOrHttpUrl),
    FieldSpec::new("region", Str).or(d_empty),
    FieldSpec::new("skip_region", Bool).or(d_false),
    FieldSpec::new("signatures_v2", Bool).or(d_false),
    FieldSpec::new("max_upload_parts", Int).or(d_max_upload_parts),
    FieldSpec::new("provider", Str).or(d_s3_provider),
    FieldSpec::new("force_path_style", Bool).or(d_true),
    FieldSpec::new("sign_accept_encoding", Bool).or(d_true),
];
/// The Storj credential.
pub const STORJ_FIELDS: &[FieldSpec] = &[
    FieldSpec::new("access_key_id", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("secret_access_key", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("endpoint", Str).or(d_storj_endpoint).chk(Check::HttpsUrl),
];
pub const S3_STORAGE_CLASSES: &[&str] = &[
    "",
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
];
/// The S3 task's own attributes.
pub const S3_ATTRIBUTES: &[FieldSpec] = &[
    FieldSpec::new("region", Str).or(d_empty),
    // A string or null at the schema level; the value set is V7, so that any other string gets
    // V7's explanation rather than a bare literal error.
    FieldSpec::new("encryption", StrOrNull).or(d_null),
    FieldSpec::new("storage_class", Enum(S3_STORAGE_CLASSES)).or(d_empty),
];

pub static S3: Provider = Provider {
    type_name: "S3",
    scheme: "s3",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: None,
};
pub static STORJ_IX: Provider = Provider {
    type_name: "STORJ_IX",
    scheme: "storj",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: Some(create_bucket),
};

/// What differs per S3 vendor, matched on the endpoint's host suffix.
struct Quirks {
    max_upload_parts: Option<u64>,
}

/// Scaleway rejects multipart uploads of more than 1,000 parts (truenas-cloudsync.md §5.3).
const QUIRKS: &[(&str, Quirks)] = &[(".scw.cloud", Quirks { max_upload_parts: Some(1000) })];

const STORJ_GATEWAY: &str = "https://gateway.storjshare.io";
/// Storj's gateway wants 64 MiB parts (TrueNAS's defaults for STORJ_IX).
const STORJ_CHUNK: u64 = 64 * 1024 * 1024;

pub(crate) fn options(req: &BuildRequest<'_>) -> S3Options {
    let ty = req.cred("type");
    let region = Some(req.attr("region")).filter(|r| !r.is_empty()).unwrap_or_else(|| req.cred("region"));
    let endpoint = match (ty, req.cred("endpoint")) {
        ("STORJ_IX", "") => STORJ_GATEWAY.to_string(),
        (_, e) => e.trim_end_matches('/').to_string(),
    };
    let cfg = ClientConfig {
        endpoint,
        region: if region.is_empty() { "us-east-1".into() } else { region.to_string() },
        access_key_id: req.cred("access_key_id").to_string(),
        secret_access_key: req.cred("secret_access_key").to_string(),
        session_token: None,
        path_style: req.credential.get("force_path_style").and_then(Value::as_bool).unwrap_or(true),
        connect_timeout: req.http.connect_timeout,
        response_timeout: req.http.response_timeout,
        low_level_retries: req.http.retries,
        sign_accept_encoding: req.credential.get("sign_accept_encoding").and_then(Value::as_bool).unwrap_or(true),
    };
    let mut opts = S3Options::new(cfg, req.attr("bucket"), req.attr("folder"));
    opts.storage_class = Some(req.attr("storage_class").to_string()).filter(|x| !x.is_empty());
    opts.server_side_encryption = Some(req.attr("encryption").to_string()).filter(|x| !x.is_empty());
    if let Some(n) = req.credential.get("max_upload_parts").and_then(Value::as_u64) {
        opts.max_upload_parts = n;
    }
    let host = opts.client.endpoint.trim_end_matches('/').to_ascii_lowercase();
    for (suffix, q) in QUIRKS {
        if host.ends_with(suffix)
            && let Some(n) = q.max_upload_parts
            && opts.max_upload_parts > n
        {
            opts.max_upload_parts = n;
        }
    }
    if ty == "STORJ_IX" {
        opts.chunk_size = STORJ_CHUNK;
        opts.upload_cutoff = STORJ_CHUNK;
    }
    opts.keep_cancelled_uploads = req.keep_cancelled_uploads;
    opts
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(S3Remote::new(options(req), req.index.clone())?))
}

fn create_bucket(req: &BuildRequest<'_>, name: &str) -> Result<()> {
    let mut attributes = req.attributes.clone();
    attributes.insert("bucket".into(), Value::String(name.into()));
    let req = BuildRequest { attributes: &attributes, index: None, ..*req };
    S3Remote::new(options(&req), None)?.make_bucket()
}

fn list_buckets(req: &BuildRequest<'_>) -> Result<Vec<Bucket>> {
    let mut attributes = req.attributes.clone();
    attributes.insert("bucket".into(), Value::String("list".into()));
    let req = BuildRequest { attributes: &attributes, index: None, ..*req };
    S3Remote::new(options(&req), None)?.list_buckets()
}
