//! The provider registry: for every credential type this build can run, how to build a
//! remote from a validated credential and task attributes, and how to list the account's
//! buckets. The job runner, the CLI's one-shot specs, the C API and the daemon all build
//! remotes here, so a provider is added in one place: its folder and one line below.
//!
//! The credential and task schemas (what TrueNAS validates) are still the task layer's
//! table (`task::providers`); a type that is in that table and not here is one TrueNAS
//! knows and this build cannot run ([`Kind::Unsupported`] at job start).

use super::RemoteRef;
use super::kit::http::HttpConfig;
use crate::error::{Error, Kind, Result};
use crate::index::Index;
use serde_json::{Map, Value};
use std::sync::Arc;

/// What a provider's constructor gets.
pub struct BuildRequest<'a> {
    /// The validated credential (`provider` object: `type` and its fields).
    pub credential: &'a Map<String, Value>,
    /// The task's `attributes` (bucket, folder, provider options).
    pub attributes: &'a Map<String, Value>,
    /// The metadata index, for providers that remember what listings cannot tell.
    pub index: Option<Arc<Index>>,
    /// Timeouts and retries: [`HttpConfig::JOB`] or [`HttpConfig::VERIFY`].
    pub http: HttpConfig,
    /// Keep unfinished multipart uploads of a cancelled job so the next run resumes them
    /// (jobs of stored tasks), instead of aborting them (one-shot runs).
    pub keep_cancelled_uploads: bool,
    /// Where a stored credential keeps the server key it trusts (SFTP host keys).
    pub host_keys: Option<&'a dyn HostKeys>,
}

/// A credential's record of the server's host key (trust on first use): SFTP checks a
/// pinned key and records the key it met when there was none.
pub trait HostKeys {
    /// The pinned key (`TYPE BASE64`), if any.
    fn pinned(&self) -> Option<String>;
    /// The key a first connection met, to pin.
    fn learned(&self, key: &str);
}

impl<'a> BuildRequest<'a> {
    /// A request with the verify timeouts and no index (verify, the location pickers).
    pub fn verify(credential: &'a Map<String, Value>, attributes: &'a Map<String, Value>) -> BuildRequest<'a> {
        BuildRequest {
            credential,
            attributes,
            index: None,
            http: HttpConfig::VERIFY,
            keep_cancelled_uploads: false,
            host_keys: None,
        }
    }

    /// A string field of the credential ("" when absent).
    pub fn cred(&self, key: &str) -> &str {
        self.credential.get(key).and_then(Value::as_str).unwrap_or("")
    }
    /// A string attribute of the task ("" when absent).
    pub fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).and_then(Value::as_str).unwrap_or("")
    }
}

/// A bucket (container) of an account: name and creation date (ISO 8601, "" unknown).
pub type Bucket = (String, String);

/// Lists an account's buckets or containers.
pub type ListBuckets = fn(&BuildRequest<'_>) -> Result<Vec<Bucket>>;

/// Creates a bucket of the given name in an account.
pub type CreateBucket = fn(&BuildRequest<'_>, &str) -> Result<()>;

/// One runnable provider.
pub struct Provider {
    /// The TrueNAS credential type (`S3`, `AZUREBLOB`).
    pub type_name: &'static str,
    /// The CLI's one-shot spec prefix (`azureblob:CONTAINER/PATH`); rclone's type where it
    /// is one word.
    pub scheme: &'static str,
    pub build: fn(&BuildRequest<'_>) -> Result<RemoteRef>,
    /// The account's buckets or containers (`None`: the provider has none).
    pub list_buckets: Option<ListBuckets>,
    /// Creates a bucket (`None`: TrueNAS does not offer it for this provider).
    pub create_bucket: Option<CreateBucket>,
}

/// Every provider this build runs (local paths are not credentials and not listed).
pub static PROVIDERS: &[&Provider] = &[
    &super::azureblob::provider::PROVIDER,
    &super::b2::provider::PROVIDER,
    &super::ftp::provider::PROVIDER,
    &super::gcs::provider::PROVIDER,
    &super::http::provider::PROVIDER,
    &super::swift::provider::PROVIDER,
    &super::s3::provider::S3,
    &super::sftp::provider::PROVIDER,
    &super::s3::provider::STORJ_IX,
    &super::webdav::provider::PROVIDER,
];

/// The provider a CLI spec prefix names.
pub fn by_scheme(scheme: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().copied().find(|p| p.scheme == scheme)
}

pub fn get(type_name: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().copied().find(|p| p.type_name == type_name)
}

fn type_of(credential: &Map<String, Value>) -> &str {
    credential.get("type").and_then(Value::as_str).unwrap_or("")
}

fn unsupported(ty: &str) -> Error {
    Error::new(Kind::Unsupported, format!("Provider {ty} is not supported by this version"))
}

/// Build the remote a credential and task attributes describe.
pub fn build(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    let ty = type_of(req.credential);
    let p = get(ty).ok_or_else(|| unsupported(ty))?;
    let remote = (p.build)(req).map_err(|e| e.with_provider(p.type_name))?;
    Ok(super::layers::Context::wrap(remote, p.type_name))
}

/// The buckets of a credential's account, with the verify timeouts.
pub fn list_buckets(credential: &Map<String, Value>) -> Result<Vec<Bucket>> {
    let ty = type_of(credential);
    // TrueNAS's answer for providers without buckets, before any network call.
    if crate::task::providers::get(ty).is_some_and(|p| !p.buckets) {
        return Err(Error::usage("This provider does not use buckets"));
    }
    let p = get(ty).ok_or_else(|| unsupported(ty))?;
    let f = p.list_buckets.ok_or_else(|| Error::usage("This provider does not use buckets"))?;
    let attributes = Map::new();
    f(&BuildRequest::verify(credential, &attributes)).map_err(|e| e.with_provider(p.type_name))
}

/// Create a bucket in a credential's account, with the verify timeouts (TrueNAS's
/// `cloudsync.create_bucket`; only Storj offers it). A provider that cannot is told before
/// any network call. A bucket the account already owns is not an error (`rclone mkdir`).
pub fn create_bucket(credential: &Map<String, Value>, name: &str) -> Result<()> {
    let ty = type_of(credential);
    let cannot = || Error::usage("This provider can't create buckets");
    if crate::task::providers::get(ty).is_some_and(|p| !p.can_create_bucket) {
        return Err(cannot());
    }
    let p = get(ty).ok_or_else(|| unsupported(ty))?;
    let f = p.create_bucket.ok_or_else(cannot)?;
    if name.is_empty() || name.contains('/') {
        return Err(Error::usage(format!("Invalid bucket name {name:?}: a bucket name is one non-empty path element")));
    }
    let attributes = Map::new();
    f(&BuildRequest::verify(credential, &attributes), name)
        .map_err(|e| e.with_provider(p.type_name).with_remote(name.to_string()))
}

/// Verify a credential with the verify timeouts: list the account's buckets, or, for a
/// provider without buckets (WebDAV), the root its URL names (TrueNAS runs
/// `rclone lsjson REMOTE:`).
pub fn verify(credential: &Map<String, Value>) -> Result<()> {
    verify_pinned(credential, None)
}

/// [`verify`] for a stored credential that keeps its server's host key.
pub fn verify_pinned(credential: &Map<String, Value>, host_keys: Option<&dyn HostKeys>) -> Result<()> {
    let ty = type_of(credential);
    let p = get(ty).ok_or_else(|| unsupported(ty))?;
    if p.list_buckets.is_some() {
        return list_buckets(credential).map(drop);
    }
    let attributes = Map::new();
    let remote = build(&BuildRequest { host_keys, ..BuildRequest::verify(credential, &attributes) })?;
    remote.list_dir(&crate::path::RelPath::root(), &mut |_| {}).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_runnable_provider_is_a_truenas_type_with_buckets_as_declared() {
        let mut names: Vec<&str> = PROVIDERS.iter().map(|p| p.type_name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort();
            s
        };
        assert_eq!(names, sorted, "keep PROVIDERS sorted");
        names.dedup();
        assert_eq!(names.len(), PROVIDERS.len());
        for p in PROVIDERS {
            let spec = crate::task::providers::get(p.type_name).unwrap_or_else(|| panic!("{} unknown", p.type_name));
            assert_eq!(spec.buckets, p.list_buckets.is_some(), "{}", p.type_name);
            assert_eq!(spec.can_create_bucket, p.create_bucket.is_some(), "{}", p.type_name);
        }
    }
}
