//! The registry entry of Google Cloud Storage (TrueNAS `GOOGLE_CLOUD_STORAGE`: the
//! service-account key file as `service_account_credentials`; the task's
//! `bucket_policy_only` needs nothing here, since no ACL is ever sent).
//!
//! `STORAGE_EMULATOR_HOST` (Google's client-library convention) points the storage API
//! at an emulator; the token endpoint is the key file's `token_uri`.

use super::auth::ServiceAccount;
use super::{GcsOptions, GcsRemote};
use crate::error::{Error, Result};
use crate::remote::RemoteRef;
use crate::remote::registry::{Bucket, BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use std::sync::Arc;

/// The credential: the service-account key file.
pub const FIELDS: &[FieldSpec] = &[FieldSpec::new("service_account_credentials", Json).sec()];
/// The task's own attributes.
pub const ATTRIBUTES: &[FieldSpec] = &[FieldSpec::new("bucket_policy_only", Bool).or(d_false)];

pub static PROVIDER: Provider = Provider {
    type_name: "GOOGLE_CLOUD_STORAGE",
    scheme: "gcs",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: None,
};

pub(crate) fn options(req: &BuildRequest<'_>, bucket: &str) -> Result<GcsOptions> {
    let sa = req
        .credential
        .get("service_account_credentials")
        .ok_or_else(|| Error::usage("the credential has no service account credentials"))?;
    let mut o = GcsOptions::new(ServiceAccount::parse(sa)?, bucket, req.attr("folder"));
    if let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST")
        && !host.is_empty()
    {
        o.endpoint = if host.contains("://") { host } else { format!("http://{host}") };
    }
    o.http = req.http;
    Ok(o)
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(GcsRemote::new(options(req, req.attr("bucket"))?)?))
}

fn list_buckets(req: &BuildRequest<'_>) -> Result<Vec<Bucket>> {
    GcsRemote::new(options(req, "list")?)?.list_buckets()
}
