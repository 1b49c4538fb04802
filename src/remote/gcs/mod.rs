//! Google Cloud Storage over the JSON API (rclone `backend/googlecloudstorage`): one
//! bucket and a prefix in it, authorised with a service-account key.
//!
//! On-remote format as rclone writes it: names through rclone's GCS encoding mask, the
//! modification time in two metadata keys (`mtime`, RFC 3339 with trailing zeros cut,
//! and gsutil's `goog-reserved-file-mtime`, Unix seconds), read in that order before the
//! object's `updated`; the content MD5 in `md5Hash` (composite objects have none: their
//! CRC32C is checked instead). Small files go up in one multipart upload; larger ones
//! in a resumable session, chunk by chunk (multiples of 256 KiB), resumed from what the
//! server reports it kept after a failure; the MD5 of the bytes sent is checked against
//! the object's. No ACL is ever sent, so buckets with uniform bucket-level access
//! (`bucket_policy_only`) work as any other.

pub mod auth;
pub mod provider;

use self::auth::{ServiceAccount, TokenSource};
use super::hash::Hashes;
use super::hash::{Checksum, HashType};
use super::kit::bucket::{self, Codec, Keys};
use super::kit::classify::{self, Failure, Retry};
use super::kit::encoder::Mask;
use super::kit::http::{Body, Classify, HttpClient, HttpConfig, HttpResponse, Prepared, header, read_body};
use super::kit::mime::content_type;
use super::kit::paginate::PageGuard;
use super::{Entry, EntryKind, Extra, Features, Md5, Nanos, Opened, PosixMeta, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use base64::Engine as _;
use md5::Digest;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Resumable chunks must be multiples of this.
const CHUNK_ALIGN: u64 = 256 * 1024;
const LABELS: &[&str] = &["AUTH", "LIST", "GET", "PUT", "POST", "DELETE", "OTHER"];
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// Object names and bucket names in URL paths: everything but unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// rclone's GCS mask (`Base|CrLf|InvalidUtf8`; a local name has no `/`).
const GCS_MASK: Mask = Mask::ZERO.or(Mask::CRLF);

/// Settings of a GCS remote.
pub struct GcsOptions {
    pub account: ServiceAccount,
    /// `https://storage.googleapis.com`, or an emulator (`STORAGE_EMULATOR_HOST`).
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    /// Files at least this big go up in a resumable session, in chunks of this size
    /// (rounded to 256 KiB; rclone's default 16 MiB).
    pub chunk_size: u64,
    pub list_chunk: u32,
    pub http: HttpConfig,
}

impl GcsOptions {
    pub fn new(account: ServiceAccount, bucket: &str, prefix: &str) -> GcsOptions {
        GcsOptions {
            account,
            endpoint: DEFAULT_ENDPOINT.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            chunk_size: 16 * MIB,
            list_chunk: 1000,
            http: HttpConfig::JOB,
        }
    }
}

pub struct GcsRemote {
    http: HttpClient,
    tokens: TokenSource,
    endpoint: String,
    project: String,
    bucket: String,
    keys: Keys,
    chunk_size: u64,
    list_chunk: u32,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorReason>,
}

#[derive(Deserialize, Default)]
struct ErrorReason {
    #[serde(default)]
    reason: String,
}

struct GcsClassify<'a> {
    remote: &'a GcsRemote,
    used: &'a Mutex<Option<String>>,
}

impl Classify for GcsClassify<'_> {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], _what: &str) -> Failure {
        let e: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let reason = e.error.errors.first().map(|r| r.reason.as_str()).unwrap_or("");
        let detail = if e.error.message.is_empty() { String::new() } else { format!(" ({})", e.error.message) };
        let (kind, retry, text) = match (status, reason) {
            (401, _) => (Kind::Permission, Retry::Reauth, "the access token was refused"),
            (403 | 429, "rateLimitExceeded" | "userRateLimitExceeded") => {
                (Kind::Server, classify::after_or_backoff(headers), "rate limit exceeded")
            }
            (_, "quotaExceeded" | "storageQuotaExceeded") => (Kind::Quota, Retry::No, "quota exceeded"),
            (403, _) => (Kind::Permission, Retry::No, "access denied: the service account lacks permission"),
            _ => {
                let f = classify::default(status, headers, body, "");
                return Failure::new(f.err.kind(), format!("{}{detail}", f.err.message()), f.retry);
            }
        };
        Failure::new(kind, format!("{text}{detail}"), retry)
    }

    fn reauthorize(&self) -> Result<()> {
        let used = self.used.lock().ok().and_then(|u| u.clone());
        self.remote.tokens.token(&self.remote.http, used.as_deref()).map(drop)
    }
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Object {
    name: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    md5_hash: Option<String>,
    #[serde(default)]
    crc32c: Option<String>,
    #[serde(default)]
    updated: Option<String>,
    #[serde(default)]
    generation: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Objects {
    #[serde(default)]
    items: Vec<Object>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Buckets {
    #[serde(default)]
    items: Vec<BucketItem>,
    #[serde(default, rename = "nextPageToken")]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BucketItem {
    name: String,
    #[serde(default)]
    time_created: String,
}

/// rclone's `mtime`: RFC 3339 with nanoseconds, trailing zeros cut (Go's RFC3339Nano).
fn format_mtime(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000) as u32;
    let Some(d) = chrono::DateTime::from_timestamp(secs, nanos) else {
        return String::new();
    };
    let base = d.format("%Y-%m-%dT%H:%M:%S").to_string();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

fn parse_rfc3339(s: &str) -> Option<Nanos> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?.timestamp_nanos_opt()
}

fn metadata(mtime: Nanos, meta: PosixMeta) -> Value {
    let mut m =
        json!({"mtime": format_mtime(mtime), "goog-reserved-file-mtime": mtime.div_euclid(1_000_000_000).to_string()});
    for (k, v) in bucket::posix_pairs(meta) {
        m[k] = Value::String(v);
    }
    m
}

impl Object {
    fn mtime(&self) -> Option<Nanos> {
        self.metadata
            .get("mtime")
            .and_then(|v| parse_rfc3339(v))
            .or_else(|| {
                self.metadata.get("goog-reserved-file-mtime")?.trim().parse::<i64>().ok().map(|s| s * 1_000_000_000)
            })
            .or_else(|| self.updated.as_deref().and_then(parse_rfc3339))
    }
    fn md5(&self) -> Option<Md5> {
        B64.decode(self.md5_hash.as_deref()?.trim()).ok()?.try_into().ok()
    }
    fn crc32c(&self) -> Option<Checksum> {
        let v = B64.decode(self.crc32c.as_deref()?.trim()).ok().filter(|b| b.len() == 4)?;
        Some(Checksum { kind: HashType::Crc32c, value: v })
    }
    fn size(&self) -> i64 {
        self.size.as_deref().and_then(|s| s.parse().ok()).unwrap_or(-1)
    }
}

/// Feeds the bytes of a sequential upload to one MD5, each offset once, whatever the
/// retries resend.
struct SequentialHash {
    hasher: md5::Md5,
    upto: u64,
}

struct HashFrom<'a> {
    inner: Box<dyn Read + Send + 'a>,
    pos: u64,
    state: Arc<Mutex<SequentialHash>>,
}

impl Read for HashFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut s) = self.state.lock()
            && s.upto >= self.pos
            && s.upto < self.pos + n as u64
        {
            let skip = (s.upto - self.pos) as usize;
            s.hasher.update(&buf[skip..n]);
            s.upto = self.pos + n as u64;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl GcsRemote {
    pub fn new(opts: GcsOptions) -> Result<GcsRemote> {
        if opts.bucket.is_empty() || opts.bucket.contains('/') {
            return Err(Error::usage(format!("invalid bucket name {:?}", opts.bucket)));
        }
        let endpoint = opts.endpoint.trim_end_matches('/').to_string();
        if !endpoint.starts_with("http://") && !endpoint.starts_with("https://") {
            return Err(Error::usage(format!("GCS endpoint {endpoint:?} must start with http:// or https://")));
        }
        let host = endpoint.split("://").nth(1).unwrap_or("").to_string();
        Ok(GcsRemote {
            http: HttpClient::new("GCS", &host, &opts.http, LABELS),
            tokens: TokenSource::new(&opts.account)?,
            project: opts.account.project_id.clone(),
            endpoint,
            keys: Keys::new("gcs", &opts.bucket, &opts.prefix, Codec::Mask(GCS_MASK)),
            bucket: opts.bucket,
            chunk_size: opts.chunk_size.max(CHUNK_ALIGN).next_multiple_of(CHUNK_ALIGN),
            list_chunk: opts.list_chunk,
        })
    }

    fn name(&self, path: &RelPath) -> String {
        self.keys.key(path)
    }

    fn shown(&self, path: &RelPath) -> String {
        self.keys.shown(path)
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.endpoint,
            utf8_percent_encode(&self.bucket, SEGMENT),
            utf8_percent_encode(name, SEGMENT)
        )
    }

    /// One attempt: the bearer token (remembered in `used`), `headers`, the length.
    fn prepared(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(String, String)],
        len: u64,
        used: &Mutex<Option<String>>,
    ) -> Result<Prepared> {
        let token = self.tokens.token(&self.http, None)?;
        *used.lock().map_err(|_| Error::other("lock poisoned"))? = Some(token.clone());
        let mut h = vec![("authorization".to_string(), format!("Bearer {token}"))];
        h.extend(headers.iter().cloned());
        if matches!(method, "PUT" | "POST" | "PATCH") {
            h.push(("content-length".into(), len.to_string()));
        }
        Ok(Prepared { method, url: url.to_string(), headers: h })
    }

    /// Send a request with a bearer token; `headers` besides the authorisation.
    fn send(
        &self,
        label: &'static str,
        method: &'static str,
        url: &str,
        headers: &[(String, String)],
        body: &Body<'_>,
        ok: &dyn Fn(u16) -> bool,
    ) -> Result<HttpResponse> {
        let used = Mutex::new(None);
        let classify = GcsClassify { remote: self, used: &used };
        self.http.send_expecting(label, "", body, &classify, ok, &mut || {
            self.prepared(method, url, headers, body.len(), &used)
        })
    }

    /// A JSON call, its answer parsed (and asked again when cut or garbled).
    fn json<T: serde::de::DeserializeOwned>(
        &self,
        label: &'static str,
        method: &'static str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let body = if bytes.is_empty() { Body::Empty } else { Body::Bytes(&bytes) };
        let headers: Vec<(String, String)> =
            if bytes.is_empty() { Vec::new() } else { vec![("content-type".into(), "application/json".into())] };
        let used = Mutex::new(None);
        let classify = GcsClassify { remote: self, used: &used };
        self.http.call(
            label,
            "",
            &body,
            &classify,
            &mut || self.prepared(method, url, &headers, bytes.len() as u64, &used),
            &|mut resp| parse(&read_body(&mut resp, 64 * MIB)?),
        )
    }

    fn list_page(&self, prefix: &str, max: u32, token: Option<&str>) -> Result<Objects> {
        let mut url = format!(
            "{}/storage/v1/b/{}/o?prefix={}&delimiter=%2F&maxResults={max}",
            self.endpoint,
            utf8_percent_encode(&self.bucket, SEGMENT),
            utf8_percent_encode(prefix, SEGMENT)
        );
        if let Some(t) = token {
            url.push_str(&format!("&pageToken={}", utf8_percent_encode(t, SEGMENT)));
        }
        self.json("LIST", "GET", &url, None).map_err(|e| {
            if e.kind() == Kind::NotFound {
                Error::new(Kind::DirNotFound, format!("bucket {:?} does not exist", self.bucket)).with_status(404)
            } else {
                e
            }
        })
    }

    /// The project's buckets (name, creation time).
    pub fn list_buckets(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let mut url =
                format!("{}/storage/v1/b?project={}", self.endpoint, utf8_percent_encode(&self.project, SEGMENT));
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", utf8_percent_encode(t, SEGMENT)));
            }
            let page: Buckets = self.json("LIST", "GET", &url, None)?;
            let n = page.items.len();
            out.extend(page.items.into_iter().map(|b| (b.name, b.time_created)));
            token = guard.next(page.next_page_token.is_some(), n, page.next_page_token.as_deref())?;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    fn put_multipart(&self, name: &str, src: &dyn Source, meta: &Value, ctype: &str) -> Result<Object> {
        let size = src.size();
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::other(format!("no randomness: {e}")))?;
        let boundary = format!("cloudsync{}", hex::encode(nonce));
        let head = format!(
            "--{boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\ncontent-type: {ctype}\r\n\r\n",
            json!({"name": name, "contentType": ctype, "metadata": meta})
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let len = head.len() as u64 + size + tail.len() as u64;
        let open = || -> Result<Box<dyn Read + Send + '_>> {
            Ok(Box::new(head.as_bytes().chain(src.open_at(0, size)?).chain(tail.as_bytes())))
        };
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=multipart",
            self.endpoint,
            utf8_percent_encode(&self.bucket, SEGMENT)
        );
        let headers = vec![("content-type".to_string(), format!("multipart/related; boundary={boundary}"))];
        let mut resp = self
            .send("POST", "POST", &url, &headers, &Body::Stream { len, open: &open }, &|s| (200..300).contains(&s))?;
        parse(&read_body(&mut resp, MIB)?)
    }

    /// Where the server's copy of a resumable session ends (`Range: bytes=0-N` of a 308).
    fn persisted(resp: &HttpResponse) -> u64 {
        header(resp, "range")
            .and_then(|r| r.trim().strip_prefix("bytes=")?.split('-').nth(1)?.trim().parse::<u64>().ok())
            .map_or(0, |last| last + 1)
    }

    fn put_resumable(&self, name: &str, src: &dyn Source, meta: &Value, ctype: &str) -> Result<(Object, Md5)> {
        let size = src.size();
        let start = json!({"name": name, "contentType": ctype, "metadata": meta}).to_string();
        let url = format!(
            "{}/upload/storage/v1/b/{}/o?uploadType=resumable",
            self.endpoint,
            utf8_percent_encode(&self.bucket, SEGMENT)
        );
        let headers = vec![
            ("content-type".to_string(), "application/json; charset=UTF-8".to_string()),
            ("x-upload-content-type".to_string(), ctype.to_string()),
            ("x-upload-content-length".to_string(), size.to_string()),
        ];
        let resp =
            self.send("POST", "POST", &url, &headers, &Body::Bytes(start.as_bytes()), &|s| (200..300).contains(&s))?;
        let session = header(&resp, "location")
            .ok_or_else(|| Error::new(Kind::Protocol, "the resumable upload got no session URI"))?
            .to_string();
        let hash = Arc::new(Mutex::new(SequentialHash { hasher: md5::Md5::new(), upto: 0 }));
        let done = |s: u16| s == 200 || s == 201 || s == 308;
        let mut offset = 0u64;
        let mut rounds = 0;
        loop {
            let len = self.chunk_size.min(size - offset);
            let range = if size == 0 {
                "bytes */0".to_string()
            } else {
                format!("bytes {}-{}/{}", offset, offset + len - 1, size)
            };
            let from = offset;
            let state = hash.clone();
            let open = move || -> Result<Box<dyn Read + Send + '_>> {
                Ok(Box::new(HashFrom { inner: src.open_at(from, len)?, pos: from, state: state.clone() }))
            };
            let sent = self.send(
                "PUT",
                "PUT",
                &session,
                &[("content-range".into(), range)],
                &Body::Stream { len, open: &open },
                &done,
            );
            let resp = match sent {
                Ok(r) => r,
                Err(e) if e.is_retryable() && rounds < 3 => {
                    // Ask the session what it kept, and go on from there.
                    rounds += 1;
                    let probe = self.send(
                        "PUT",
                        "PUT",
                        &session,
                        &[("content-range".into(), format!("bytes */{size}"))],
                        &Body::Empty,
                        &done,
                    )?;
                    if probe.status().as_u16() == 308 {
                        offset = Self::persisted(&probe);
                        continue;
                    }
                    probe
                }
                Err(e) => return Err(e),
            };
            if resp.status().as_u16() == 308 {
                let kept = Self::persisted(&resp);
                if kept <= offset && len > 0 {
                    return Err(
                        Error::new(Kind::Protocol, "the resumable upload made no progress").with_retryable(true)
                    );
                }
                offset = kept;
                continue;
            }
            let mut resp = resp;
            let obj: Object = parse(&read_body(&mut resp, MIB)?)?;
            let md5: Md5 = hash.lock().map_err(|_| Error::other("lock poisoned"))?.hasher.clone().finalize().into();
            return Ok((obj, md5));
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::new(Kind::Protocol, format!("malformed answer from GCS: {e}")).with_retryable(true))
}

fn posix_meta_from(meta: &BTreeMap<String, String>) -> PosixMeta {
    bucket::posix_from(|k| meta.get(k).map(String::as_str))
}

impl Remote for GcsRemote {
    fn describe(&self) -> String {
        self.keys.describe()
    }

    fn features(&self) -> Features {
        bucket::features(Hashes::of(HashType::Md5), 1, false)
    }

    fn root_state(&self) -> Result<RootState> {
        bucket::root_state(
            &self.keys,
            |prefix| self.list_page(prefix, 1, None).map(|p| !p.items.is_empty() || !p.prefixes.is_empty()),
            |key| Ok(self.list_page(key, 1, None)?.items.into_iter().next().map(|o| o.name)),
        )
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let prefix = self.keys.dir_prefix(dir);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let page =
                self.list_page(&prefix, self.list_chunk, token.as_deref()).map_err(|e| e.with_path(self.shown(dir)))?;
            let items = page.items.len() + page.prefixes.len();
            for o in &page.items {
                if o.name.ends_with('/') {
                    continue; // a directory marker
                }
                let Some(name) = self.keys.child(dir, &prefix, &o.name, bad) else {
                    continue;
                };
                let posix = posix_meta_from(&o.metadata);
                out.push(Entry {
                    name,
                    kind: EntryKind::File,
                    size: o.size(),
                    mtime: o.mtime(),
                    md5: o.md5(),
                    extra: Extra {
                        etag: o.generation.clone().map(Into::into),
                        server_time: o.updated.as_deref().and_then(parse_rfc3339),
                        mode: posix.mode.unwrap_or(0),
                        uid: posix.uid.unwrap_or(0),
                        gid: posix.gid.unwrap_or(0),
                        ..Extra::default()
                    },
                });
            }
            for p in &page.prefixes {
                if let Some(name) = self.keys.child(dir, &prefix, p, bad) {
                    out.push(Entry::dir(name, None));
                }
            }
            token = guard
                .next(page.next_page_token.is_some(), items, page.next_page_token.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let name = self.name(path);
        let (len, ranged) = bucket::read_range(entry, offset, len);
        if ranged && len == 0 {
            return Ok(bucket::empty_read(entry));
        }
        let mut url = format!("{}?alt=media", self.object_url(&name));
        // Every range of one download reads the same generation.
        if let Some(g) = entry.extra.etag.as_deref().filter(|g| !g.is_empty()) {
            url.push_str(&format!("&generation={g}"));
        }
        // Objects stored gzip-encoded are read as stored (their size and MD5 are of that).
        let mut headers = vec![("accept-encoding".to_string(), "gzip".to_string())];
        if ranged {
            headers.push(("range".into(), format!("bytes={}-{}", offset, offset + len - 1)));
        }
        let resp = self
            .send("GET", "GET", &url, &headers, &Body::Empty, &|s| (200..300).contains(&s))
            .map_err(|e| e.with_path(self.shown(path)))?;
        bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        // `x-goog-hash: crc32c=...,md5=...`: the whole object's digests.
        let mut md5 = entry.md5;
        let mut crc = None;
        for part in header(&resp, "x-goog-hash").unwrap_or("").split(',') {
            match part.trim().split_once('=') {
                Some(("md5", v)) => md5 = md5.or_else(|| B64.decode(v).ok()?.try_into().ok()),
                Some(("crc32c", v)) => {
                    crc = B64
                        .decode(v)
                        .ok()
                        .filter(|b| b.len() == 4)
                        .map(|value| Checksum { kind: HashType::Crc32c, value })
                }
                _ => {}
            }
        }
        let mut o = Opened::plain(Box::new(resp.into_body().into_reader()));
        o.mtime = entry.mtime;
        o.md5 = md5;
        o.checksum = if md5.is_none() { crc } else { None };
        Ok(o)
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write an object at the root itself"));
        }
        let name = self.name(path);
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let ctype = content_type(path.file_name());
        let meta = metadata(mtime, PosixMeta { mode: info.mode, uid: info.uid, gid: info.gid });
        let size = src.size();
        let obj = if size < self.chunk_size {
            self.put_multipart(&name, src, &meta, ctype)
        } else {
            let (obj, sent) =
                self.put_resumable(&name, src, &meta, ctype).map_err(|e| e.with_path(self.shown(path)))?;
            match obj.md5() {
                Some(stored) if stored != sent => {
                    return Err(Error::new(
                        Kind::Corrupted,
                        format!(
                            "corrupted on transfer: GCS stored MD5 {} for data whose MD5 is {}",
                            hex::encode(stored),
                            hex::encode(sent)
                        ),
                    )
                    .with_retryable(true)
                    .with_path(self.shown(path)));
                }
                Some(_) => src.mark_verified(),
                None => {}
            }
            Ok(obj)
        }
        .map_err(|e| e.with_path(self.shown(path)))?;
        let mut e = Entry::file(path.file_name(), obj.size().max(size as i64), Some(mtime));
        e.md5 = obj.md5();
        e.extra.etag = obj.generation.clone().map(Into::into);
        if e.md5.is_none() && obj.crc32c().is_none() {
            log::debug!("{}: GCS gave neither MD5 nor CRC32C", self.shown(path));
        }
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: PosixMeta) -> Result<()> {
        // rclone's way: copy the object onto itself with new metadata (PATCH needs more
        // permissions than object writers usually have).
        let name = self.name(path);
        let url = format!(
            "{}/copyTo/b/{}/o/{}",
            self.object_url(&name),
            utf8_percent_encode(&self.bucket, SEGMENT),
            utf8_percent_encode(&name, SEGMENT)
        );
        let body = json!({"contentType": content_type(path.file_name()), "metadata": metadata(mtime, meta)});
        let _: Value = self.json("POST", "POST", &url, Some(&body)).map_err(|e| e.with_path(self.shown(path)))?;
        let _ = entry;
        Ok(())
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        let url = self.object_url(&self.name(path));
        match self.send("DELETE", "DELETE", &url, &[], &Body::Empty, &|s| (200..300).contains(&s)) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::NotFound => Ok(()),
            Err(e) => Err(e.with_path(self.shown(path))),
        }
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        if !dir.is_root() {
            return Ok(());
        }
        match self.list_page("", 1, None) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::DirNotFound => {
                let url =
                    format!("{}/storage/v1/b?project={}", self.endpoint, utf8_percent_encode(&self.project, SEGMENT));
                match self.json::<Value>("POST", "POST", &url, Some(&json!({"name": self.bucket}))) {
                    Ok(_) => Ok(()),
                    Err(e) if e.http_status() == Some(409) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(format!("gcs:{}/{}/{}", self.endpoint, self.bucket, self.keys.prefix))
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_as_rclone_writes_it() {
        assert_eq!(format_mtime(981_173_106_499_999_999), "2001-02-03T04:05:06.499999999Z");
        assert_eq!(format_mtime(981_173_106_500_000_000), "2001-02-03T04:05:06.5Z");
        assert_eq!(format_mtime(981_173_106_000_000_000), "2001-02-03T04:05:06Z");
        let m = metadata(981_173_106_500_000_000, PosixMeta::default());
        assert_eq!(m["goog-reserved-file-mtime"], "981173106");
        let o: Object = serde_json::from_value(json!({"name": "a", "metadata": {"goog-reserved-file-mtime": "981173106"}, "updated": "2020-01-01T00:00:00Z"})).unwrap();
        assert_eq!(o.mtime(), Some(981_173_106_000_000_000));
        let o: Object = serde_json::from_value(json!({"name": "a", "updated": "2020-01-01T00:00:00.5Z"})).unwrap();
        assert_eq!(o.mtime(), Some(1_577_836_800_500_000_000));
    }
}
