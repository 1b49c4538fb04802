//! The registry entry of WebDAV (TrueNAS `WEBDAV`: `url`, `vendor`, `user`, `pass`; the
//! task's `folder` is the path below the URL). The vendor is read in any case in every
//! operation (TrueNAS lower-cases it for task runs only).

use super::{Vendor, WebdavOptions, WebdavRemote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use std::sync::Arc;

pub const VENDORS: &[&str] = &["NEXTCLOUD", "OWNCLOUD", "SHAREPOINT", "OTHER"];

/// The credential (TrueNAS `WebDavCredentialsModel`).
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("url", Str).chk(Check::HttpUrl),
    FieldSpec::new("vendor", Enum(VENDORS)),
    FieldSpec::new("user", Str),
    FieldSpec::new("pass", Str).sec(),
];

pub static PROVIDER: Provider =
    Provider { type_name: "WEBDAV", scheme: "webdav", build: build_remote, list_buckets: None, create_bucket: None };

pub(crate) fn options(req: &BuildRequest<'_>) -> Result<WebdavOptions> {
    let mut o = WebdavOptions::new(
        req.cred("url"),
        Vendor::parse(req.cred("vendor"))?,
        req.cred("user"),
        req.cred("pass"),
        req.attr("folder"),
    );
    o.http = req.http;
    Ok(o)
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(WebdavRemote::new(options(req)?)?))
}
