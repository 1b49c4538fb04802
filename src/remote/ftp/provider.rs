//! The registry entry of FTP (TrueNAS `FTP`: `host`, `port`, `user`, `pass`; the task's
//! `folder` is absolute when it starts with `/`, else below the login directory).
//! cloudsync adds two optional fields TrueNAS does not have, left out of a credential
//! that does not set them (so it stays what TrueNAS stores and exports): `tls` (`OFF`,
//! TrueNAS's only behaviour and the default; `EXPLICIT`; `IMPLICIT`) and
//! `tls_fingerprint` (the SHA-256 of a certificate to trust that no public authority
//! signed, as a NAS's own).

use super::tls::{self, TlsMode};
use super::{FtpOptions, FtpRemote};
use crate::error::{Error, Result};
use crate::remote::RemoteRef;
use crate::remote::registry::{BuildRequest, Provider};
use crate::remote::schema::{FieldType::*, *};
use std::sync::Arc;

pub const TLS_MODES: &[&str] = &["OFF", "EXPLICIT", "IMPLICIT"];

/// The credential (TrueNAS `FTPCredentialsModel`, whose pydantic model requires `pass`;
/// the spec gives it the default "" for anonymous FTP, which accepts everything TrueNAS
/// accepts), and cloudsync's TLS fields.
pub const FIELDS: &[FieldSpec] = &[
    FieldSpec::new("host", Str).chk(Check::NonEmpty),
    FieldSpec::new("port", Int).or(d_port_ftp),
    FieldSpec::new("user", Str).chk(Check::NonEmpty),
    FieldSpec::new("pass", Str).sec().or(d_empty),
    FieldSpec::new("tls", Enum(TLS_MODES)).opt(),
    FieldSpec::new("tls_fingerprint", Str).opt(),
];

pub static PROVIDER: Provider =
    Provider { type_name: "FTP", scheme: "ftp", build: build_remote, list_buckets: None, create_bucket: None };

pub(crate) fn options(req: &BuildRequest<'_>) -> Result<FtpOptions> {
    let mode = TlsMode::parse(req.cred("tls"))?;
    let port = match req.credential.get("port").and_then(serde_json::Value::as_i64) {
        None => {
            if mode == TlsMode::Implicit {
                990
            } else {
                21
            }
        }
        Some(p) => {
            u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| Error::usage(format!("invalid FTP port {p}")))?
        }
    };
    let mut o = FtpOptions::new(req.cred("host"), port, req.cred("user"), req.cred("pass"), req.attr("folder"));
    o.tls = mode;
    o.tls_fingerprint = tls::parse_fingerprint(req.cred("tls_fingerprint"))?;
    o.http = req.http;
    Ok(o)
}

fn build_remote(req: &BuildRequest<'_>) -> Result<RemoteRef> {
    Ok(Arc::new(FtpRemote::new(options(req)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tls_fields_are_optional_checked_and_left_out_when_absent() {
        let v = |p: serde_json::Value| crate::task::providers::validate_credential("p", &p);
        let plain = v(json!({"type": "FTP", "host": "h", "user": "u"})).unwrap();
        assert!(!plain.contains_key("tls") && !plain.contains_key("tls_fingerprint"), "{plain:?}");
        let tls =
            v(json!({"type": "FTP", "host": "h", "user": "u", "tls": "EXPLICIT", "tls_fingerprint": "ab"})).unwrap();
        assert_eq!(tls["tls"], "EXPLICIT");
        let e = v(json!({"type": "FTP", "host": "h", "user": "u", "tls": "STARTTLS"})).unwrap_err();
        assert_eq!(e[0].0, "p.tls", "{e:?}");
        // The fingerprint's form is checked when the remote is built.
        let cred = json!({"type": "FTP", "host": "h", "user": "u", "tls": "EXPLICIT", "tls_fingerprint": "zz"});
        let attrs = serde_json::Map::new();
        let e = options(&BuildRequest::verify(cred.as_object().unwrap(), &attrs)).err().unwrap();
        assert!(e.to_string().contains("64 hex digits"), "{e}");
    }
}
