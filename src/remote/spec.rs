//! Remote specifications as the CLI writes them: a local path, or `s3:BUCKET[/PATH]`.
//! A local path that starts with `s3:` can be written `./s3:…`.

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
    S3 { bucket: String, prefix: String },
}

impl RemoteSpec {
    pub fn parse(s: &str) -> Result<RemoteSpec> {
        if let Some(rest) = s.strip_prefix("s3:") {
            let rest = rest.trim_start_matches('/');
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::usage(format!("{s:?}: an S3 remote is written s3:BUCKET[/PATH]")));
            }
            return Ok(RemoteSpec::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() });
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
        assert!(RemoteSpec::parse("").is_err());
    }
}
