//! The registry entry of HTTP (TrueNAS `HTTP`: `url`; the task's `folder` is the path
//! below it; PULL only, V22).

use super::{HttpOptions, HttpRemote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use std::sync::Arc;

/// The credential (TrueNAS `HTTPCredentialsModel`).
pub const FIELDS: &[FieldSpec] = &[FieldSpec::new("url", Str).chk(Check::HttpUrl)];

pub static PROVIDER: Provider =
    Provider { type_name: "HTTP", scheme: "http", build: build_remote, list_buckets: None, create_bucket: None };

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    let mut o = HttpOptions::new(req.cred("url"), req.attr("folder"));
    o.http = req.http;
    Ok(Arc::new(HttpRemote::new(o)?))
}
