//! Remote specifications as the CLI writes them: a local path, `s3:BUCKET[/PATH]` (with
//! the `--s3-*` connection flags), `SCHEME:BUCKET[/PATH]` for any provider of the
//! registry (`azureblob:`, `b2:`, `gcs:`, `swift:`, `storj:`) or `SCHEME:PATH` for one
//! without buckets (`webdav:`, `http:`, `ftp:`) with a credential (`--credential`), or an
//! `http://` / `https://` URL (the read-only HTTP provider, no credential needed). A local
//! path with a colon can be written `./x:…`.

use super::RemoteRef;
use super::local::{LocalOptions, LocalRemote};
use super::s3::client::ClientConfig;
use super::s3::{S3Options, S3Remote};
use crate::error::{Error, Result};
use crate::index::Index;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteSpec {
    Local(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
    },
    /// A web server's directory listing at this URL (the HTTP provider).
    Url(String),
    /// A provider of the registry, by its scheme.
    Provider {
        scheme: String,
        bucket: String,
        prefix: String,
    },
}

impl RemoteSpec {
    pub fn parse(s: &str) -> Result<RemoteSpec> {
        if ["http://", "https://"].iter().any(|p| s.len() > p.len() && s[..p.len()].eq_ignore_ascii_case(p)) {
            return Ok(RemoteSpec::Url(s.to_string()));
        }
        if let Some(rest) = s.strip_prefix("s3:") {
            let rest = rest.trim_start_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::usage(format!("{s:?}: an S3 remote is written s3:BUCKET[/PATH]")));
            }
            return Ok(RemoteSpec::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
        }
        if let Some((scheme, rest)) = s.split_once(':')
            && let Some(p) = super::registry::by_scheme(scheme)
        {
            if p.list_buckets.is_none() {
                // No buckets (WebDAV, FTP): everything after the colon is the folder, as a
                // task's `folder` is written (on FTP `/data` is absolute, `data` relative
                // to the login directory).
                let folder = rest.trim_end_matches('/');
                let folder = if folder.is_empty() && rest.starts_with('/') { "/" } else { folder };
                return Ok(RemoteSpec::Provider {
                    scheme: scheme.to_string(),
                    bucket: String::new(),
                    prefix: folder.to_string(),
                });
            }
            let rest = rest.trim_start_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::usage(format!("{s:?}: a {} remote is written {scheme}:BUCKET[/PATH]", p.type_name)));
            }
            return Ok(RemoteSpec::Provider {
                scheme: scheme.to_string(),
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if s.is_empty() {
            return Err(Error::usage("an empty path is not a remote"));
        }
        Ok(RemoteSpec::Local(PathBuf::from(s)))
    }
}

/// Adjusts the options of an S3 remote opened from a spec.
pub type S3Tune = Arc<dyn Fn(&mut S3Options) + Send + Sync>;

/// Everything needed to open remotes besides their specs.
#[derive(Clone, Default)]
pub struct Connections {
    /// S3 connection; required for `s3:` specs.
    pub s3: Option<ClientConfig>,
    /// Adjusts the S3 options of an `s3:` spec (storage class, cutoffs, ...).
    pub s3_tune: Option<S3Tune>,
    pub local: LocalOptions,
    pub index: Option<Arc<Index>>,
    /// The credential of `SCHEME:` specs (TrueNAS's provider object: `type` and fields).
    pub credential: Option<serde_json::Map<String, serde_json::Value>>,
}

pub fn open(spec: &RemoteSpec, conns: &Connections) -> Result<RemoteRef> {
    match spec {
        RemoteSpec::Local(p) => Ok(Arc::new(LocalRemote::new(p.clone(), conns.local.clone(), conns.index.clone()))),
        RemoteSpec::S3 { bucket, prefix } => {
            let cfg = conns.s3.clone().ok_or_else(|| {
                Error::usage("an s3: remote needs S3 credentials (--s3-access-key-id / --s3-secret-access-key or the CLOUDSYNC_S3_* variables)")
            })?;
            let mut opts = S3Options::new(cfg, bucket, prefix);
            if let Some(tune) = &conns.s3_tune {
                tune(&mut opts);
            }
            Ok(Arc::new(S3Remote::new(opts, conns.index.clone())?))
        }
        RemoteSpec::Url(url) => {
            let credential = serde_json::json!({"type": "HTTP", "url": url});
            super::registry::build(&super::registry::BuildRequest {
                credential: credential.as_object().expect("an object"),
                attributes: &serde_json::Map::new(),
                index: None,
                http: super::kit::http::HttpConfig::JOB,
                keep_cancelled_uploads: false,
                host_keys: None,
            })
        }
        RemoteSpec::Provider { scheme, bucket, prefix } => {
            let p =
                super::registry::by_scheme(scheme).ok_or_else(|| Error::usage(format!("unknown remote {scheme}:")))?;
            let credential = conns.credential.as_ref().ok_or_else(|| {
                Error::usage(format!(
                    "a {scheme}: remote needs a {} credential: --credential ID (a stored one), @FILE or JSON",
                    p.type_name
                ))
            })?;
            let ty = credential.get("type").and_then(serde_json::Value::as_str).unwrap_or("");
            if ty != p.type_name {
                return Err(Error::usage(format!("a {scheme}: remote needs a {} credential, not {ty:?}", p.type_name)));
            }
            let attributes = serde_json::json!({"bucket": bucket, "folder": prefix});
            super::registry::build(&super::registry::BuildRequest {
                credential,
                attributes: attributes.as_object().expect("an object"),
                index: conns.index.clone(),
                http: super::kit::http::HttpConfig::JOB,
                keep_cancelled_uploads: false,
                host_keys: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(RemoteSpec::parse("s3:b").unwrap(), RemoteSpec::S3 { bucket: "b".into(), prefix: "".into() });
        assert_eq!(
            RemoteSpec::parse("s3:b/x/y/").unwrap(),
            RemoteSpec::S3 { bucket: "b".into(), prefix: "x/y".into() }
        );
        assert_eq!(RemoteSpec::parse("./s3:x").unwrap(), RemoteSpec::Local("./s3:x".into()));
        assert!(RemoteSpec::parse("s3:").is_err());
        assert_eq!(
            RemoteSpec::parse("azureblob:c/a/b").unwrap(),
            RemoteSpec::Provider { scheme: "azureblob".into(), bucket: "c".into(), prefix: "a/b".into() }
        );
        assert!(RemoteSpec::parse("b2:").is_err());
        assert_eq!(
            RemoteSpec::parse("webdav:/backups/nas/").unwrap(),
            RemoteSpec::Provider { scheme: "webdav".into(), bucket: "".into(), prefix: "/backups/nas".into() }
        );
        assert_eq!(
            RemoteSpec::parse("webdav:").unwrap(),
            RemoteSpec::Provider { scheme: "webdav".into(), bucket: "".into(), prefix: "".into() }
        );
        assert_eq!(RemoteSpec::parse("nope:x").unwrap(), RemoteSpec::Local("nope:x".into()));
        assert!(RemoteSpec::parse("").is_err());
        assert_eq!(
            RemoteSpec::parse("https://m.example/pub/").unwrap(),
            RemoteSpec::Url("https://m.example/pub/".into())
        );
        assert_eq!(
            RemoteSpec::parse("http:pub").unwrap(),
            RemoteSpec::Provider { scheme: "http".into(), bucket: "".into(), prefix: "pub".into() }
        );
        assert_eq!(
            RemoteSpec::parse("ftp:/srv/ftp/").unwrap(),
            RemoteSpec::Provider { scheme: "ftp".into(), bucket: "".into(), prefix: "/srv/ftp".into() }
        );
        assert_eq!(
            RemoteSpec::parse("ftp:backups").unwrap(),
            RemoteSpec::Provider { scheme: "ftp".into(), bucket: "".into(), prefix: "backups".into() }
        );
    }
}
