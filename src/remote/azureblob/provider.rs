//! The registry entry of Azure Blob Storage (TrueNAS `AZUREBLOB`: `account`, `key`,
//! `endpoint`; the task's `bucket` is the container, TrueNAS uploads in 100 MiB blocks).

use super::{AzureOptions, AzureRemote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{Bucket, BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use std::sync::Arc;

/// The credential (TrueNAS `AzureBlobCredentialsModel`).
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("account", Str).sec().chk(Check::AzureAccount),
    FieldSpec::new("key", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("endpoint", Str).or(d_empty).chk(Check::EmptyOrHttpUrl),
];

pub static PROVIDER: Provider = Provider {
    type_name: "AZUREBLOB",
    scheme: "azureblob",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: None,
};

pub(crate) fn options(req: &BuildRequest<'_>, container: &str) -> AzureOptions {
    let mut o =
        AzureOptions::new(req.cred("account"), req.cred("key"), req.cred("endpoint"), container, req.attr("folder"));
    o.http = req.http;
    o
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(AzureRemote::new(options(req, req.attr("bucket")))?))
}

fn list_buckets(req: &BuildRequest<'_>) -> Result<Vec<Bucket>> {
    AzureRemote::new(options(req, "list"))?.list_containers()
}
