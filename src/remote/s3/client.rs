//! The S3 HTTP client: URL building (path-style and virtual-host style), SigV4 signing
//! and S3's error codes. Retries, `Retry-After`, pacing and request counts are the kit's
//! ([`crate::remote::kit::http`]).

use super::xml;
use crate::error::{Error, Kind, Result};
use crate::remote::kit::classify::{self, Failure, Retry};
use crate::remote::kit::http::{Classify, HttpClient, HttpConfig, Prepared};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::time::{Duration, SystemTime};
use ureq::http;

/// Characters S3 wants percent-encoded in a URI: everything but unreserved ones.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// The same for object key paths, where `/` separates segments.
const KEY: &AsciiSet = &STRICT.remove(b'/');

pub fn encode_query(s: &str) -> String {
    utf8_percent_encode(s, STRICT).to_string()
}

/// Connection settings, secrets included (never logged: `Debug` redacts them).
#[derive(Clone)]
pub struct ClientConfig {
    /// `http(s)://host[:port][/base]`; empty = AWS for `region`.
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub path_style: bool,
    pub connect_timeout: Duration,
    /// Time to wait for a response once a request is sent.
    pub response_timeout: Duration,
    /// Attempts per request for retryable failures (rclone `--low-level-retries`).
    pub low_level_retries: u32,
    /// Sign the `Accept-Encoding` header (turn off behind proxies that rewrite it).
    pub sign_accept_encoding: bool,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &"<redacted>")
            .field("secret_access_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    Head,
    Get,
    Put,
    Post,
    Delete,
    Copy,
}

pub struct Request<'a> {
    pub op: Op,
    pub method: &'static str,
    pub bucket: Option<&'a str>,
    pub key: Option<&'a str>,
    pub query: Vec<(&'static str, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    pub fn new(op: Op, method: &'static str, bucket: Option<&'a str>, key: Option<&'a str>) -> Request<'a> {
        Request { op, method, bucket, key, query: Vec::new(), headers: Vec::new(), body: Body::Empty }
    }
    pub fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    pub fn body(mut self, b: Body<'a>) -> Self {
        self.body = b;
        self
    }
}

pub use crate::remote::kit::http::{Body, HttpResponse, header, read_body};

/// The request types counted for S3 (`--json` summaries and benchmarks).
const LABELS: &[&str] = &["LIST", "HEAD", "GET", "PUT", "POST", "DELETE", "COPY"];

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::List => "LIST",
            Op::Head => "HEAD",
            Op::Get => "GET",
            Op::Put => "PUT",
            Op::Post => "POST",
            Op::Delete => "DELETE",
            Op::Copy => "COPY",
        }
    }
}

struct Endpoint {
    scheme: String,
    host: String,
    base: String,
}

pub struct Client {
    http: HttpClient,
    endpoint: Endpoint,
    cfg: ClientConfig,
    identity: Identity,
}

fn parse_endpoint(endpoint: &str, region: &str) -> Result<Endpoint> {
    let e =
        if endpoint.is_empty() { format!("https://s3.{region}.amazonaws.com") } else { endpoint.trim().to_string() };
    let (scheme, rest) = e
        .split_once("://")
        .ok_or_else(|| Error::usage(format!("S3 endpoint {e:?} must start with http:// or https://")))?;
    if scheme != "http" && scheme != "https" {
        return Err(Error::usage(format!("S3 endpoint {e:?} must start with http:// or https://")));
    }
    let (host, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
        return Err(Error::usage(format!("S3 endpoint {e:?} has no valid host name")));
    }
    Ok(Endpoint { scheme: scheme.into(), host: host.to_ascii_lowercase(), base: base.into() })
}

impl Client {
    pub fn new(cfg: ClientConfig, max_connections: usize) -> Result<Client> {
        let endpoint = parse_endpoint(&cfg.endpoint, &cfg.region)?;
        let http_cfg = HttpConfig {
            connect_timeout: cfg.connect_timeout,
            response_timeout: cfg.response_timeout,
            retries: cfg.low_level_retries,
            max_connections,
        };
        let http = HttpClient::new("S3", &endpoint.host, &http_cfg, LABELS);
        let creds = aws_credential_types::Credentials::new(
            cfg.access_key_id.clone(),
            cfg.secret_access_key.clone(),
            cfg.session_token.clone(),
            None,
            "cloudsync",
        );
        Ok(Client { http, endpoint, identity: creds.into(), cfg })
    }

    pub fn endpoint_id(&self) -> String {
        format!("{}://{}{}", self.endpoint.scheme, self.endpoint.host, self.endpoint.base)
    }

    /// Host and path of a request: virtual-host style puts the bucket in the host name,
    /// which needs a DNS-safe bucket name.
    fn locate(&self, bucket: Option<&str>, key: Option<&str>) -> (String, String) {
        let key_part = key.map(|k| utf8_percent_encode(k, KEY).to_string()).unwrap_or_default();
        match bucket {
            Some(b) if !self.cfg.path_style && !b.contains(['.', '_']) => {
                (format!("{b}.{}", self.endpoint.host), format!("{}/{}", self.endpoint.base, key_part))
            }
            Some(b) => {
                let mut p = format!("{}/{}", self.endpoint.base, utf8_percent_encode(b, STRICT));
                if key.is_some() {
                    p.push('/');
                    p.push_str(&key_part);
                }
                (self.endpoint.host.clone(), p)
            }
            None => (self.endpoint.host.clone(), format!("{}/", self.endpoint.base)),
        }
    }

    /// Requests made so far, by type.
    pub fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }

    /// Send a request, retrying retryable failures. Non-2xx answers become errors.
    pub fn send(&self, req: &Request<'_>) -> Result<HttpResponse> {
        let what = match (req.bucket, req.key) {
            (Some(b), Some(k)) => format!("{b}/{k}"),
            (Some(b), None) => b.to_string(),
            _ => String::new(),
        };
        let classify = S3Classify { bucket: req.bucket.unwrap_or("") };
        self.http.send(req.op.label(), &what, &req.body, &classify, &mut || self.sign(req))
    }

    /// Send a request and parse its answer, asking again when the answer was cut short
    /// or garbled (proxies and overloaded servers do send truncated bodies).
    pub fn call<T>(&self, req: &Request<'_>, limit: u64, parse: fn(&[u8]) -> Result<T>) -> Result<T> {
        let what = match (req.bucket, req.key) {
            (Some(b), Some(k)) => format!("{b}/{k}"),
            (Some(b), None) => b.to_string(),
            _ => String::new(),
        };
        let classify = S3Classify { bucket: req.bucket.unwrap_or("") };
        self.http.call(req.op.label(), &what, &req.body, &classify, &mut || self.sign(req), &|mut resp| {
            parse(&read_body(&mut resp, limit)?)
        })
    }

    /// One attempt of `req`, signed now.
    fn sign(&self, req: &Request<'_>) -> Result<Prepared> {
        let (host, path) = self.locate(req.bucket, req.key);
        let mut query: Vec<(&str, String)> = req.query.iter().map(|(k, v)| (*k, encode_query(v))).collect();
        query.sort();
        let qs = query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        let url = if qs.is_empty() {
            format!("{}://{host}{path}", self.endpoint.scheme)
        } else {
            format!("{}://{host}{path}?{qs}", self.endpoint.scheme)
        };
        let mut headers: Vec<(String, String)> = req.headers.clone();
        headers.push(("host".into(), host.clone()));
        if self.cfg.sign_accept_encoding {
            headers.push(("accept-encoding".into(), "identity".into()));
        }
        let body_len = match &req.body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { len, .. } => *len,
        };
        if req.method == "PUT" || req.method == "POST" {
            headers.push(("content-length".into(), body_len.to_string()));
        }
        let signable_body = match &req.body {
            Body::Empty => SignableBody::Bytes(&[]),
            Body::Bytes(b) => SignableBody::Bytes(b),
            Body::Stream { .. } => SignableBody::UnsignedPayload,
        };
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let region = if self.cfg.region.is_empty() { "us-east-1" } else { &self.cfg.region };
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region(region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| Error::other(format!("cannot sign the request: {e}")))?
            .into();
        let signable = SignableRequest::new(
            req.method,
            url.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            signable_body,
        )
        .map_err(|e| Error::other(format!("cannot sign the request: {e}")))?;
        let (instructions, _sig) =
            sign(signable, &params).map_err(|e| Error::other(format!("cannot sign the request: {e}")))?.into_parts();
        if !self.cfg.sign_accept_encoding {
            headers.push(("accept-encoding".into(), "identity".into()));
        }
        headers.retain(|(k, _)| k != "host");
        for (k, v) in instructions.headers() {
            headers.push((k.to_string(), v.to_string()));
        }
        Ok(Prepared { method: req.method, url, headers })
    }
}

/// S3's error codes over the common reading of statuses.
struct S3Classify<'a> {
    bucket: &'a str,
}

impl Classify for S3Classify<'_> {
    /// Turn a non-2xx response into an admin-readable error with the right kind.
    fn status(&self, status: u16, headers: &http::HeaderMap, body: &[u8], what: &str) -> Failure {
        let parsed = xml::parse_error(body);
        let (code, message) = parsed.map(|e| (e.code, e.message)).unwrap_or_default();
        let detail = if code.is_empty() { String::new() } else { format!(" ({code}: {message})") };
        let (kind, retry, text) = match (status, code.as_str()) {
            (_, "SlowDown") | (429, _) => {
                (Kind::Server, classify::after_or_backoff(headers), "the server asks to slow down".to_string())
            }
            (_, "RequestTimeout") | (_, "InternalError") => {
                (Kind::Server, classify::after_or_backoff(headers), "temporary server error".to_string())
            }
            (500 | 502 | 503 | 504, _) => {
                (Kind::Server, classify::after_or_backoff(headers), "server error".to_string())
            }
            (_, "NoSuchBucket") => (Kind::DirNotFound, Retry::No, format!("bucket {:?} does not exist", self.bucket)),
            (_, "BucketAlreadyExists") => (
                Kind::Usage,
                Retry::No,
                format!("the bucket name {:?} is taken by another account: bucket names are global", self.bucket),
            ),
            (_, "InvalidAccessKeyId") => (Kind::Permission, Retry::No, "the access key ID is not valid".to_string()),
            (_, "SignatureDoesNotMatch") => (
                Kind::Permission,
                Retry::No,
                "the secret access key is wrong, or a proxy changed the request".to_string(),
            ),
            (_, "RequestTimeTooSkewed") => {
                (Kind::Permission, Retry::No, "this system's clock is too far off".to_string())
            }
            (_, "InvalidObjectState") => (Kind::Unsupported, Retry::No, "Object in GLACIER, restore first".to_string()),
            (_, "AuthorizationHeaderMalformed") => {
                (Kind::Permission, Retry::No, "the request was signed for the wrong region".to_string())
            }
            (_, "QuotaExceeded") => (Kind::Quota, Retry::No, "the storage quota is exhausted".to_string()),
            (301 | 307, _) => (
                Kind::Usage,
                Retry::No,
                "the bucket is in another region: set the right region or endpoint".to_string(),
            ),
            (403, _) => (Kind::Permission, Retry::No, "access denied".to_string()),
            (404, _) => (Kind::NotFound, Retry::No, "not found".to_string()),
            (400, _) => (Kind::Server, Retry::No, "bad request".to_string()),
            _ => (Kind::Server, Retry::No, "request failed".to_string()),
        };
        Failure::new(kind, classify::with_what(what, &format!("{text}{detail}")), retry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(endpoint: &str, path_style: bool) -> ClientConfig {
        ClientConfig {
            endpoint: endpoint.into(),
            region: "us-east-1".into(),
            access_key_id: "AK".into(),
            secret_access_key: "SECRET".into(),
            session_token: None,
            path_style,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            low_level_retries: 1,
            sign_accept_encoding: true,
        }
    }

    #[test]
    fn addressing_styles() {
        let c = Client::new(cfg("http://127.0.0.1:9000", true), 4).unwrap();
        assert_eq!(c.locate(Some("b"), Some("a b/c+d")), ("127.0.0.1:9000".into(), "/b/a%20b/c%2Bd".into()));
        let c = Client::new(cfg("https://s3.example.com/", false), 4).unwrap();
        assert_eq!(c.locate(Some("b"), Some("k")), ("b.s3.example.com".into(), "/k".into()));
        // Buckets with dots need path style even when virtual-host style is asked for.
        assert_eq!(c.locate(Some("b.x"), Some("k")).1, "/b.x/k");
        let c = Client::new(cfg("", false), 4).unwrap();
        assert_eq!(c.endpoint_id(), "https://s3.us-east-1.amazonaws.com");
    }

    #[test]
    fn bad_endpoints_are_usage_errors() {
        for e in ["ftp://x", "no-scheme", "http://", "http://a b"] {
            assert_eq!(Client::new(cfg(e, true), 4).err().map(|e| e.kind()), Some(Kind::Usage), "{e}");
        }
    }

    #[test]
    fn debug_redacts_secrets() {
        let s = format!("{:?}", cfg("http://x", true));
        assert!(!s.contains("SECRET") && !s.contains("\"AK\""));
    }
}
