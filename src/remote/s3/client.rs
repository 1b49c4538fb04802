//! The S3 HTTP client: URL building (path-style and virtual-host style), SigV4 signing,
//! retries with exponential backoff and jitter that honour `Retry-After` and `SlowDown`,
//! error classification and per-type request counters.
//!
//! Bodies are streamed: an upload body is a function that opens a fresh reader, so a
//! retried request re-reads its data instead of holding it in memory.

use super::xml;
use crate::error::{Error, Kind, Result};
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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

/// Request counters by type, for `--json` summaries, tests and benchmarks.
#[derive(Default)]
pub struct Counts {
    pub list: AtomicU64,
    pub head: AtomicU64,
    pub get: AtomicU64,
    pub put: AtomicU64,
    pub post: AtomicU64,
    pub delete: AtomicU64,
    pub copy: AtomicU64,
}

impl Counts {
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("LIST", self.list.load(Relaxed)),
            ("HEAD", self.head.load(Relaxed)),
            ("GET", self.get.load(Relaxed)),
            ("PUT", self.put.load(Relaxed)),
            ("POST", self.post.load(Relaxed)),
            ("DELETE", self.delete.load(Relaxed)),
            ("COPY", self.copy.load(Relaxed)),
        ]
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

/// A request body.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes from a reader that the closure opens afresh for every attempt.
    Stream {
        len: u64,
        open: &'a (dyn Fn() -> Result<Box<dyn Read + Send + 'a>> + Sync),
    },
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

pub(crate) type Response = http::Response<ureq::Body>;

struct Endpoint {
    scheme: String,
    host: String,
    base: String,
}

pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    cfg: ClientConfig,
    identity: Identity,
    pub counts: Counts,
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
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_recv_response(Some(cfg.response_timeout))
            .max_idle_connections(max_connections.max(4))
            .max_idle_connections_per_host(max_connections.max(4))
            .user_agent(format!("cloudsync/{}", crate::VERSION))
            .max_redirects(0)
            .build();
        let creds = aws_credential_types::Credentials::new(
            cfg.access_key_id.clone(),
            cfg.secret_access_key.clone(),
            cfg.session_token.clone(),
            None,
            "cloudsync",
        );
        Ok(Client {
            agent: super::super::http::agent(config),
            endpoint,
            identity: creds.into(),
            cfg,
            counts: Counts::default(),
        })
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

    fn count(&self, op: Op) {
        let c = match op {
            Op::List => &self.counts.list,
            Op::Head => &self.counts.head,
            Op::Get => &self.counts.get,
            Op::Put => &self.counts.put,
            Op::Post => &self.counts.post,
            Op::Delete => &self.counts.delete,
            Op::Copy => &self.counts.copy,
        };
        c.fetch_add(1, Relaxed);
    }

    /// Send a request, retrying retryable failures. Non-2xx answers become errors.
    pub fn send(&self, req: &Request<'_>) -> Result<Response> {
        let attempts = self.cfg.low_level_retries.max(1);
        let mut backoff = Duration::from_millis(10);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (err, retry_after) = match self.send_once(req) {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|s| Duration::from_secs(s.min(300)));
                    (self.status_error(req, resp), retry_after)
                }
                Err(e) => (e, None),
            };
            if !err.is_retryable() || attempt >= attempts {
                return Err(err);
            }
            let wait = retry_after.unwrap_or_else(|| jitter(backoff));
            log::debug!("S3 {} attempt {attempt}/{attempts} failed, retrying in {wait:?}: {err}", req.method);
            std::thread::sleep(wait);
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn send_once(&self, req: &Request<'_>) -> Result<Response> {
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
        let mut builder = http::Request::builder().method(req.method).uri(&url);
        for (k, v) in &headers {
            if k != "host" {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        if !self.cfg.sign_accept_encoding {
            builder = builder.header("accept-encoding", "identity");
        }
        for (k, v) in instructions.headers() {
            builder = builder.header(k, v);
        }
        self.count(req.op);
        let result = match &req.body {
            Body::Empty => {
                let r = builder.body(()).map_err(|e| Error::other(format!("bad request: {e}")))?;
                self.agent.run(r)
            }
            Body::Bytes(b) => {
                let r = builder.body(*b).map_err(|e| Error::other(format!("bad request: {e}")))?;
                self.agent.run(r)
            }
            Body::Stream { open, .. } => {
                let mut reader = open()?;
                let body = ureq::SendBody::from_reader(&mut reader);
                let r = builder.body(body).map_err(|e| Error::other(format!("bad request: {e}")))?;
                self.agent.run(r)
            }
        };
        result.map_err(|e| self.transport_error(e))
    }

    fn transport_error(&self, e: ureq::Error) -> Error {
        let host = &self.endpoint.host;
        match e {
            ureq::Error::Io(io) => {
                let err: Error = io.into();
                if err.kind() == Kind::Io || err.kind() == Kind::Network {
                    Error::new(Kind::Network, format!("connection to {host} failed: {}", err.message()))
                        .with_retryable(true)
                } else {
                    err
                }
            }
            ureq::Error::Timeout(t) => {
                Error::new(Kind::Network, format!("timed out talking to {host} ({t})")).with_retryable(true)
            }
            ureq::Error::HostNotFound => {
                Error::new(Kind::Network, format!("host {host} not found")).with_retryable(true)
            }
            ureq::Error::ConnectionFailed => {
                Error::new(Kind::Network, format!("cannot connect to {host}: connection refused or unreachable"))
                    .with_retryable(true)
            }
            other => Error::new(Kind::Protocol, format!("HTTP error talking to {host}: {other}")).with_retryable(true),
        }
    }

    /// Turn a non-2xx response into an admin-readable error with the right kind.
    fn status_error(&self, req: &Request<'_>, mut resp: Response) -> Error {
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let _ = resp.body_mut().as_reader().take(64 * 1024).read_to_end(&mut body);
        let parsed = xml::parse_error(&body);
        let (code, message) = parsed.map(|e| (e.code, e.message)).unwrap_or_default();
        let what = match (req.bucket, req.key) {
            (Some(b), Some(k)) => format!("{b}/{k}"),
            (Some(b), None) => b.to_string(),
            _ => String::new(),
        };
        let detail = if code.is_empty() { String::new() } else { format!(" ({code}: {message})") };
        let (kind, retry, text) = match (status, code.as_str()) {
            (_, "SlowDown") | (429, _) => (Kind::Server, true, "the server asks to slow down".to_string()),
            (_, "RequestTimeout") | (_, "InternalError") => (Kind::Server, true, "temporary server error".to_string()),
            (500 | 502 | 503 | 504, _) => (Kind::Server, true, "server error".to_string()),
            (_, "NoSuchBucket") => {
                (Kind::DirNotFound, false, format!("bucket {:?} does not exist", req.bucket.unwrap_or("")))
            }
            (_, "InvalidAccessKeyId") => (Kind::Permission, false, "the access key ID is not valid".to_string()),
            (_, "SignatureDoesNotMatch") => {
                (Kind::Permission, false, "the secret access key is wrong, or a proxy changed the request".to_string())
            }
            (_, "RequestTimeTooSkewed") => (Kind::Permission, false, "this system's clock is too far off".to_string()),
            (_, "InvalidObjectState") => (Kind::Unsupported, false, "Object in GLACIER, restore first".to_string()),
            (_, "AuthorizationHeaderMalformed") => {
                (Kind::Permission, false, "the request was signed for the wrong region".to_string())
            }
            (301 | 307, _) => {
                (Kind::Usage, false, "the bucket is in another region: set the right region or endpoint".to_string())
            }
            (403, _) => (Kind::Permission, false, "access denied".to_string()),
            (404, _) => (Kind::NotFound, false, "not found".to_string()),
            (400, _) => (Kind::Server, false, "bad request".to_string()),
            _ => (Kind::Server, false, "request failed".to_string()),
        };
        let msg = if what.is_empty() { format!("{text}{detail}") } else { format!("{what}: {text}{detail}") };
        Error::new(kind, msg).with_status(status).with_retryable(retry)
    }
}

fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    let f = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    d.mul_f64(f)
}

/// Read a (small) response body fully, bounded.
pub fn read_body(resp: &mut Response, limit: u64) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(limit)
        .read_to_end(&mut v)
        .map_err(|e| Error::new(Kind::Network, format!("reading the response failed: {e}")).with_retryable(true))?;
    Ok(v)
}

pub fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
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
