//! The registry entry of OpenStack Swift (TrueNAS `OPENSTACK_SWIFT`, with rclone's
//! credential fields; the task's `bucket` is the container).

use super::auth::SwiftAuth;
use super::{SwiftOptions, SwiftRemote};
use crate::error::Result;
use crate::remote::RemoteRef;
use crate::remote::registry::{Bucket, BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use serde_json::Value;
use std::sync::Arc;

/// The credential (rclone's option names).
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("user", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("key", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("auth", Str).sec().chk(Check::NonEmpty),
    FieldSpec::new("user_id", Str).sec().or(d_empty),
    FieldSpec::new("domain", Str).sec().or(d_empty),
    FieldSpec::new("tenant", Str).sec().or(d_empty),
    FieldSpec::new("tenant_id", Str).sec().or(d_empty),
    FieldSpec::new("tenant_domain", Str).sec().or(d_empty),
    FieldSpec::new("region", Str).sec().or(d_empty),
    FieldSpec::new("storage_url", Str).sec().or(d_empty),
    FieldSpec::new("auth_token", Str).sec().or(d_empty),
    FieldSpec::new("application_credential_id", Str).sec().or(d_empty),
    FieldSpec::new("application_credential_name", Str).sec().or(d_empty),
    FieldSpec::new("application_credential_secret", Str).sec().or(d_empty),
    // Nullable but without a default: the key must be present (TrueNAS).
    FieldSpec::new("auth_version", IntEnumOrNull(&[0, 1, 2, 3])),
    FieldSpec::new("endpoint_type", EnumOrNull(&["public", "internal", "admin"])),
];

pub static PROVIDER: Provider = Provider {
    type_name: "OPENSTACK_SWIFT",
    scheme: "swift",
    build: build_remote,
    list_buckets: Some(list_buckets),
    create_bucket: None,
};

pub(crate) fn auth(req: &BuildRequest<'_>) -> SwiftAuth {
    let s = |k: &str| req.cred(k).to_string();
    SwiftAuth {
        user: s("user"),
        key: s("key"),
        auth: s("auth"),
        user_id: s("user_id"),
        domain: s("domain"),
        tenant: s("tenant"),
        tenant_id: s("tenant_id"),
        tenant_domain: s("tenant_domain"),
        region: s("region"),
        storage_url: s("storage_url"),
        auth_token: s("auth_token"),
        application_credential_id: s("application_credential_id"),
        application_credential_name: s("application_credential_name"),
        application_credential_secret: s("application_credential_secret"),
        auth_version: req.credential.get("auth_version").and_then(Value::as_u64).unwrap_or(0) as u8,
        endpoint_type: s("endpoint_type"),
    }
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    let mut o = SwiftOptions::new(auth(req), req.attr("bucket"), req.attr("folder"));
    o.http = req.http;
    Ok(Arc::new(SwiftRemote::new(o, req.index.clone())?))
}

fn list_buckets(req: &BuildRequest<'_>) -> Result<Vec<Bucket>> {
    let mut o = SwiftOptions::new(auth(req), "list", "");
    o.http = req.http;
    SwiftRemote::new(o, None)?.list_containers()
}
