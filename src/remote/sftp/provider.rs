//! The registry entry of SFTP (TrueNAS `SFTP`: `host`, `port`, `user`, `pass`, and
//! `private_key`, the id of a keychain SSH key pair; the task's `folder` is absolute when
//! it starts with `/`, else below the login directory). The store replaces the key pair's
//! id by its private key before a remote is built (`Store::runnable`), so the key never
//! passes through a file.

use super::{SftpOptions, SftpRemote};
use crate::error::{Error, Result};
use crate::remote::RemoteRef;
use crate::remote::registry::{BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use serde_json::Value;
use std::sync::Arc;

/// The credential (TrueNAS `SFTPCredentialsModel`).
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("host", Str).chk(Check::NonEmpty),
    FieldSpec::new("port", Int).or(d_port_sftp),
    FieldSpec::new("user", Str).chk(Check::NonEmpty),
    FieldSpec::new("pass", StrOrNull).sec().or(d_null),
    FieldSpec::new("private_key", IntOrNull).or(d_null),
];

pub static PROVIDER: Provider =
    Provider { type_name: "SFTP", scheme: "sftp", build: build_remote, list_buckets: None, create_bucket: None };

pub(crate) fn options(req: &BuildRequest<'_>) -> Result<SftpOptions> {
    let port = match req.credential.get("port").and_then(Value::as_i64) {
        None => 22,
        Some(p) => {
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| Error::usage(format!("invalid SSH port {p}")))?
        }
    };
    let mut o = SftpOptions::new(req.cred("host"), port, req.cred("user"), req.cred("pass"), req.attr("folder"));
    o.private_key = match req.credential.get("private_key") {
        Some(Value::String(key)) => Some(key.clone()),
        Some(Value::Number(id)) => {
            return Err(Error::usage(format!(
                "the SFTP credential's key pair {id} is in the keychain, which only a stored credential can read"
            )));
        }
        _ => None,
    };
    o.host_key = req.host_keys.and_then(|h| h.pinned());
    o.connect_timeout = req.http.connect_timeout;
    o.io_timeout = req.http.response_timeout;
    o.connections = req.http.max_connections.clamp(1, 16);
    Ok(o)
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    let opts = options(req)?;
    let pinned = opts.host_key.is_some();
    let r = SftpRemote::new(opts)?;
    // Trust on first use: the key this first connection met is the one from now on.
    if !pinned && let (Some(k), Some(h)) = (r.host_key(), req.host_keys) {
        h.learned(&k);
    }
    Ok(Arc::new(r))
}
