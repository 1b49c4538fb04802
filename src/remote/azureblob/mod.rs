//! Microsoft Azure Blob Storage (rclone `backend/azureblob`): one container and a prefix
//! in it, over the REST API with SharedKey authorisation.
//!
//! On-remote format as rclone writes it: names through rclone's Azure encoding mask,
//! the modification time in the `mtime` metadata (RFC 3339 with nine fraction digits),
//! listed with the blobs (`include=metadata`), so no request per object is needed; the
//! content MD5 in `Content-MD5`. Blobs at least `upload_cutoff` big are uploaded as
//! blocks in parallel (Put Block, each checked against the MD5 the service computed of
//! it) and committed with Put Block List carrying the content MD5 (which rclone leaves
//! out for large blobs); nothing appears before the commit.

pub mod auth;
pub mod provider;
mod xml;

use self::auth::SharedKey;
use super::hash::{HashType, Hashes};
use super::kit::bucket::{self, Codec, Keys};
use super::kit::chunked::{PartPlan, upload_parts};
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
use std::io::Read;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1024 * 1024;
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Azure's limits: 50,000 blocks per blob, Put Blob up to 5,000 MiB.
const MAX_BLOCKS: u64 = 50_000;
const MAX_PUT_BLOB: u64 = 5000 * MIB;
const LABELS: &[&str] = &["LIST", "HEAD", "GET", "PUT", "DELETE", "OTHER"];

const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// Settings of an Azure Blob remote.
#[derive(Clone)]
pub struct AzureOptions {
    pub account: String,
    /// The account key, base64 as the portal shows it.
    pub key: String,
    /// `http(s)://host[:port][/path]`; empty: `https://{account}.blob.core.windows.net`.
    pub endpoint: String,
    pub container: String,
    /// Blob name prefix, without leading or trailing `/`.
    pub prefix: String,
    /// Block size (TrueNAS: 100 MiB); blobs at least this big are uploaded in blocks.
    pub chunk_size: u64,
    /// Blocks in flight per blob.
    pub upload_concurrency: usize,
    pub list_chunk: u32,
    pub http: HttpConfig,
}

impl std::fmt::Debug for AzureOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureOptions")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl AzureOptions {
    pub fn new(account: &str, key: &str, endpoint: &str, container: &str, prefix: &str) -> AzureOptions {
        AzureOptions {
            account: account.to_string(),
            key: key.to_string(),
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            container: container.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            chunk_size: 100 * MIB,
            upload_concurrency: 4,
            list_chunk: 5000,
            http: HttpConfig::JOB,
        }
    }
}

pub struct AzureRemote {
    http: HttpClient,
    auth: SharedKey,
    /// `scheme://host[:port]`.
    origin: String,
    /// The endpoint's path (the account, with the emulator), "" on Azure.
    base: String,
    keys: Keys,
    opts: AzureOptions,
}

/// Azure's error codes over the common reading of statuses.
struct AzureClassify<'a> {
    container: &'a str,
}

impl Classify for AzureClassify<'_> {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], what: &str) -> Failure {
        let code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| xml::error_code(body))
            .unwrap_or_default();
        let retry = classify::after_or_backoff(headers);
        let (kind, retry, text) = match (status, code.as_str()) {
            (_, "ContainerNotFound") => {
                (Kind::DirNotFound, Retry::No, format!("container {:?} does not exist", self.container))
            }
            (_, "BlobNotFound") => (Kind::NotFound, Retry::No, "not found".to_string()),
            (_, "AuthenticationFailed") => (
                Kind::Permission,
                Retry::No,
                "authentication failed: the account name or key is wrong, or this system's clock is off".to_string(),
            ),
            // Azurite answers a wrong signature with this code too.
            (_, "AuthorizationFailure") => (
                Kind::Permission,
                Retry::No,
                "access denied: the account name or key is wrong, or the key may not do this".to_string(),
            ),
            (_, "AuthorizationPermissionMismatch") => (Kind::Permission, Retry::No, "access denied".to_string()),
            (_, "AccountIsDisabled") => (Kind::Permission, Retry::No, "the storage account is disabled".to_string()),
            (_, "ServerBusy" | "InternalError" | "OperationTimedOut" | "InvalidBlobOrBlock") => {
                (Kind::Server, retry, format!("temporary server error ({code})"))
            }
            (409, "BlobArchived") => (Kind::Unsupported, Retry::No, "the blob is in the archive tier".to_string()),
            (401, _) => (Kind::Server, retry, "authorisation failed".to_string()),
            _ => {
                let f = classify::default(status, headers, body, "");
                let detail = if code.is_empty() { String::new() } else { format!(" ({code})") };
                (f.err.kind(), f.retry, format!("{}{detail}", f.err.message()))
            }
        };
        Failure::new(kind, classify::with_what(what, &text), retry)
    }
}

/// An Azure request before signing.
struct Req<'a> {
    label: &'static str,
    method: &'static str,
    /// Blob name (encoded form, unescaped), `None` for the container itself.
    blob: Option<&'a str>,
    /// Request on the account (container listing) instead of the container.
    account: bool,
    query: Vec<(&'static str, String)>,
    headers: Vec<(String, String)>,
    body: Body<'a>,
}

impl<'a> Req<'a> {
    fn new(label: &'static str, method: &'static str, blob: Option<&'a str>) -> Req<'a> {
        Req { label, method, blob, account: false, query: Vec::new(), headers: Vec::new(), body: Body::Empty }
    }
    fn query(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.query.push((k, v.into()));
        self
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    fn body(mut self, b: Body<'a>) -> Self {
        self.body = b;
        self
    }
}

/// rclone's `mtime` metadata: RFC 3339, always nine fraction digits, UTC.
fn format_mtime(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
        .unwrap_or_default()
}

fn parse_mtime(s: &str) -> Option<Nanos> {
    chrono::DateTime::parse_from_rfc3339(s.trim()).ok()?.timestamp_nanos_opt()
}

fn md5_b64(s: &str) -> Option<Md5> {
    B64.decode(s.trim()).ok()?.try_into().ok()
}

impl AzureRemote {
    pub fn new(opts: AzureOptions) -> Result<AzureRemote> {
        if opts.container.is_empty() {
            return Err(Error::usage("an Azure Blob remote needs a container name"));
        }
        if opts.container.contains('/') {
            return Err(Error::usage(format!("invalid container name {:?}", opts.container)));
        }
        let auth = SharedKey::new(&opts.account, &opts.key)?;
        let endpoint = if opts.endpoint.is_empty() {
            format!("https://{}.blob.core.windows.net", opts.account)
        } else {
            opts.endpoint.clone()
        };
        let (scheme, rest) = endpoint
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or_else(|| Error::usage(format!("Azure endpoint {endpoint:?} must start with http:// or https://")))?;
        let (host, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host.is_empty() || host.contains(['?', '#', '@', ' ']) {
            return Err(Error::usage(format!("Azure endpoint {endpoint:?} has no valid host name")));
        }
        let http = HttpClient::new("Azure Blob", host, &opts.http, LABELS);
        let keys = Keys::new("azureblob", &opts.container, &opts.prefix, Codec::Mask(Mask::AZURE));
        Ok(AzureRemote { http, auth, origin: format!("{scheme}://{host}"), base: base.to_string(), keys, opts })
    }

    fn name(&self, path: &RelPath) -> String {
        self.keys.key(path)
    }

    fn shown(&self, path: &RelPath) -> String {
        self.keys.shown(path)
    }

    /// One attempt of `req`, signed now.
    fn prepared(&self, req: &Req<'_>) -> Result<Prepared> {
        let mut path = self.base.clone();
        path.push('/');
        if !req.account {
            path.push_str(&utf8_percent_encode(&self.opts.container, STRICT).to_string());
            if let Some(b) = req.blob {
                path.push('/');
                path.push_str(&utf8_percent_encode(b, PATH).to_string());
            }
        }
        let qs = req.query.iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, STRICT))).collect::<Vec<_>>();
        let url = match qs.is_empty() {
            true => format!("{}{path}", self.origin),
            false => format!("{}{path}?{}", self.origin, qs.join("&")),
        };
        let mut headers = req.headers.clone();
        if matches!(req.method, "PUT" | "POST") {
            headers.push(("content-length".into(), req.body.len().to_string()));
        }
        self.auth.sign(req.method, &path, &req.query, &mut headers);
        Ok(Prepared { method: req.method, url, headers })
    }

    // Callers stamp the path on errors (`with_path`): messages name no location.
    fn send(&self, req: &Req<'_>) -> Result<HttpResponse> {
        let classify = AzureClassify { container: &self.opts.container };
        self.http.send(req.label, "", &req.body, &classify, &mut || self.prepared(req))
    }

    /// Send `req` and parse the answer, asking again when the answer was cut or garbled.
    fn fetch<T>(&self, req: &Req<'_>, limit: u64, parse: fn(&[u8]) -> Result<T>) -> Result<T> {
        let classify = AzureClassify { container: &self.opts.container };
        self.http.call(req.label, "", &req.body, &classify, &mut || self.prepared(req), &|mut resp| {
            parse(&read_body(&mut resp, limit)?)
        })
    }

    fn list_page(&self, prefix: &str, max: u32, marker: Option<&str>) -> Result<xml::ListPage> {
        let mut req = Req::new("LIST", "GET", None)
            .query("restype", "container")
            .query("comp", "list")
            .query("prefix", prefix)
            .query("delimiter", "/")
            .query("include", "metadata")
            .query("maxresults", max.to_string());
        if let Some(m) = marker {
            req = req.query("marker", m);
        }
        self.fetch(&req, 64 * MIB, xml::parse_list)
    }

    /// The containers of the account: (name, creation or last-modified date).
    pub fn list_containers(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let mut req = Req::new("LIST", "GET", None).query("comp", "list");
            req.account = true;
            if let Some(m) = &marker {
                req = req.query("marker", m.clone());
            }
            let page = self.fetch(&req, 16 * MIB, xml::parse_containers)?;
            let n = page.containers.len();
            out.extend(page.containers);
            marker = guard.next(page.next_marker.is_some(), n, page.next_marker.as_deref())?;
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    fn create_container(&self) -> Result<()> {
        match self.send(&Req::new("PUT", "PUT", None).query("restype", "container")) {
            Ok(_) => Ok(()),
            Err(e) if e.http_status() == Some(409) => Ok(()), // exists already
            Err(e) => Err(e),
        }
    }

    fn meta_headers<'r>(mut req: Req<'r>, mtime: Nanos, meta: PosixMeta) -> Req<'r> {
        req = req.header("x-ms-meta-mtime", format_mtime(mtime));
        for (k, v) in bucket::posix_pairs(meta) {
            req = req.header(&format!("x-ms-meta-{k}"), v);
        }
        req
    }

    fn put_blob(&self, name: &str, src: &dyn Source, info: &PutInfo, mtime: Nanos, ctype: &str) -> Result<Option<Md5>> {
        let size = src.size();
        let open = || src.open_at(0, size);
        let mut req = Req::new("PUT", "PUT", Some(name))
            .header("x-ms-blob-type", "BlockBlob")
            .header("x-ms-blob-content-type", ctype)
            .body(Body::Stream { len: size, open: &open });
        req = Self::meta_headers(req, mtime, posix_of(info));
        if let Some(md5) = info.md5 {
            // The service refuses the blob if the bytes do not hash to this.
            req = req.header("content-md5", B64.encode(md5));
        }
        let resp = self.send(&req)?;
        // The service answers the MD5 it computed of what it received.
        Ok(header(&resp, "content-md5").and_then(md5_b64).or(info.md5))
    }

    fn put_blocks(
        &self,
        name: &str,
        src: &dyn Source,
        info: &PutInfo,
        mtime: Nanos,
        ctype: &str,
    ) -> Result<Option<Md5>> {
        let size = src.size();
        let plan = PartPlan::new(size, self.opts.chunk_size, MIB, MAX_BLOCKS, MIB);
        // Put Block List names the content MD5 before the service has all bytes: read it
        // from the index or the source first (rclone leaves large blobs without one).
        let content_md5 = match info.md5 {
            Some(m) => m,
            None => src.content_md5()?,
        };
        // rclone's block ids: 8-byte big-endian block number + 8 random bytes.
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::other(format!("no randomness: {e}")))?;
        let block_id = |i: u64| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&i.to_be_bytes());
            id[8..].copy_from_slice(&nonce);
            B64.encode(id)
        };
        let done: Vec<Mutex<Option<()>>> = (0..plan.parts).map(|_| Mutex::new(None)).collect();
        upload_parts(&plan, self.opts.upload_concurrency, &done, &|i, offset, len| {
            let hashed: Arc<Mutex<md5::Md5>> = Arc::default();
            let open = || -> Result<Box<dyn Read + Send + '_>> {
                *hashed.lock().map_err(|_| Error::other("lock poisoned"))? = md5::Md5::new();
                Ok(Box::new(super::hash::Md5Tee { inner: src.open_at(offset, len)?, hasher: hashed.clone() }))
            };
            let req = Req::new("PUT", "PUT", Some(name))
                .query("comp", "block")
                .query("blockid", block_id(i))
                .body(Body::Stream { len, open: &open });
            let resp = self.send(&req)?;
            let ours: Md5 = hashed.lock().map_err(|_| Error::other("lock poisoned"))?.clone().finalize().into();
            if let Some(theirs) = header(&resp, "content-md5").and_then(md5_b64)
                && theirs != ours
            {
                return Err(Error::new(
                    Kind::Corrupted,
                    format!(
                        "corrupted on transfer: block {} md5 {} is not {}",
                        i + 1,
                        hex::encode(theirs),
                        hex::encode(ours)
                    ),
                )
                .with_retryable(true));
            }
            Ok(())
        })?;
        let mut body = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for i in 0..plan.parts {
            body.push_str(&format!("<Latest>{}</Latest>", block_id(i)));
        }
        body.push_str("</BlockList>");
        let mut req = Req::new("PUT", "PUT", Some(name))
            .query("comp", "blocklist")
            .header("content-type", "application/xml")
            .header("x-ms-blob-content-type", ctype)
            .header("x-ms-blob-content-md5", B64.encode(content_md5))
            .body(Body::Bytes(body.as_bytes()));
        req = Self::meta_headers(req, mtime, posix_of(info));
        self.send(&req)?;
        Ok(Some(content_md5))
    }
}

fn posix_of(info: &PutInfo) -> PosixMeta {
    PosixMeta { mode: info.mode, uid: info.uid, gid: info.gid }
}

fn posix_meta_from(meta: &[(String, String)]) -> PosixMeta {
    bucket::posix_from(|k| meta.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str()))
}

impl Remote for AzureRemote {
    fn describe(&self) -> String {
        self.keys.describe()
    }

    fn features(&self) -> Features {
        bucket::features(Hashes::of(HashType::Md5), 1, false)
    }

    fn root_state(&self) -> Result<RootState> {
        bucket::root_state(
            &self.keys,
            |prefix| self.list_page(prefix, 1, None).map(|p| !p.blobs.is_empty() || !p.prefixes.is_empty()),
            |key| Ok(self.list_page(key, 1, None)?.blobs.into_iter().next().map(|b| b.name)),
        )
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let prefix = self.keys.dir_prefix(dir);
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let page = self
                .list_page(&prefix, self.opts.list_chunk, marker.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            let items = page.blobs.len() + page.prefixes.len();
            for b in page.blobs {
                if b.name.ends_with('/') {
                    continue; // a directory marker
                }
                let Some(name) = self.keys.child(dir, &prefix, &b.name, bad) else {
                    continue;
                };
                let server_time = b.last_modified.as_deref().and_then(super::kit::time::parse_http_date);
                let mtime = b
                    .metadata
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("mtime"))
                    .and_then(|(_, v)| parse_mtime(v))
                    .or(server_time);
                let posix = posix_meta_from(&b.metadata);
                out.push(Entry {
                    name,
                    kind: EntryKind::File,
                    size: b.size,
                    mtime,
                    md5: b.content_md5.as_deref().and_then(md5_b64),
                    extra: Extra {
                        etag: b.etag.map(Into::into),
                        server_time,
                        storage_class: b.access_tier.map(Into::into),
                        mode: posix.mode.unwrap_or(0),
                        uid: posix.uid.unwrap_or(0),
                        gid: posix.gid.unwrap_or(0),
                        ..Extra::default()
                    },
                });
            }
            for p in page.prefixes {
                if let Some(name) = self.keys.child(dir, &prefix, &p, bad) {
                    out.push(Entry::dir(name, None));
                }
            }
            marker = guard
                .next(page.next_marker.is_some(), items, page.next_marker.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            if marker.is_none() {
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
        let mut req = Req::new("GET", "GET", Some(&name));
        if ranged {
            req = req.header("range", format!("bytes={}-{}", offset, offset + len - 1));
            // Every range of one download must come from the same version of the blob.
            if let Some(etag) = entry.extra.etag.as_deref().filter(|e| !e.is_empty()) {
                req = req.header("if-match", etag);
            }
        }
        let resp = self.send(&req).map_err(|e| e.with_path(self.shown(path)))?;
        bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        // The whole blob's MD5: `Content-MD5` of a full read, `x-ms-blob-content-md5` of
        // a ranged one.
        let announced = if ranged { header(&resp, "x-ms-blob-content-md5") } else { header(&resp, "content-md5") }
            .and_then(md5_b64);
        let meta: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().strip_prefix("x-ms-meta-")?.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        let mtime = entry.mtime.or_else(|| meta.iter().find(|(k, _)| k == "mtime").and_then(|(_, v)| parse_mtime(v)));
        Ok(Opened {
            reader: Box::new(resp.into_body().into_reader()),
            mtime,
            meta: posix_meta_from(&meta),
            md5: entry.md5.or(announced),
            checksum: None,
        })
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a blob at the root itself"));
        }
        let name = self.name(path);
        let size = src.size();
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let ctype = content_type(path.file_name());
        let cutoff = self.opts.chunk_size.min(MAX_PUT_BLOB);
        let md5 = if size < cutoff {
            self.put_blob(&name, src, info, mtime, ctype)
        } else {
            self.put_blocks(&name, src, info, mtime, ctype)
        }
        .map_err(|e| e.with_path(self.shown(path)))?;
        Ok(Entry {
            name: path.file_name().to_vec(),
            kind: EntryKind::File,
            size: size as i64,
            mtime: Some(mtime),
            md5,
            extra: Extra::default(),
        })
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: PosixMeta) -> Result<()> {
        if entry.extra.storage_class.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("archive")) {
            return Err(Error::new(Kind::Unsupported, "can't set modification time of an archived blob"));
        }
        let name = self.name(path);
        // Set Blob Metadata replaces the whole set: the POSIX metadata is written again.
        let req = Self::meta_headers(Req::new("PUT", "PUT", Some(&name)).query("comp", "metadata"), mtime, meta);
        self.send(&req).map_err(|e| e.with_path(self.shown(path)))?;
        Ok(())
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        let name = self.name(path);
        match self.send(&Req::new("DELETE", "DELETE", Some(&name))) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::NotFound => Ok(()),
            Err(e) => Err(e.with_path(self.shown(path))),
        }
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        if dir.is_root()
            && let Err(e) = self.list_page("", 1, None)
        {
            if e.kind() == Kind::DirNotFound {
                return self.create_container();
            }
            return Err(e);
        }
        Ok(()) // blob names have no directories
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(format!("azureblob:{}{}/{}/{}", self.origin, self.base, self.keys.bucket, self.keys.prefix))
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
        assert_eq!(format_mtime(981_173_106_000_000_000), "2001-02-03T04:05:06.000000000Z");
        assert_eq!(parse_mtime("2001-02-03T04:05:06.499999999Z"), Some(981_173_106_499_999_999));
        assert_eq!(parse_mtime("2001-02-03T05:05:06.5+01:00"), Some(981_173_106_500_000_000));
        assert_eq!(parse_mtime("yesterday"), None);
    }

    #[test]
    fn endpoint_and_key_checks() {
        let o = |e: &str, k: &str| AzureRemote::new(AzureOptions::new("acct", k, e, "c", "")).err().map(|e| e.kind());
        assert_eq!(o("ftp://x", "a2V5"), Some(Kind::Usage));
        assert_eq!(o("", "%%%"), Some(Kind::Usage));
        assert_eq!(o("http://127.0.0.1:10000/devstoreaccount1", "a2V5"), None);
        let r = AzureRemote::new(AzureOptions::new("acct", "a2V5", "http://h:1/acct/", "c", "/p/q/")).unwrap();
        assert_eq!(
            (r.origin.as_str(), r.base.as_str(), r.describe()),
            ("http://h:1", "/acct", "azureblob:c/p/q".into())
        );
        assert!(!format!("{:?}", r.opts).contains("a2V5"));
    }
}
