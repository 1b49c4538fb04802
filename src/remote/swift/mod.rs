//! OpenStack Swift (rclone `backend/swift`): one container and a prefix in it.
//!
//! On-remote format as rclone writes it: names as they are (rclone's Swift mask only
//! quotes invalid UTF-8), the modification time in `X-Object-Meta-Mtime` (decimal
//! seconds, as S3's), the content MD5 as the ETag. Swift lists no user metadata, so a
//! modification time costs a HEAD; the metadata index remembers what it learned (and
//! what this remote wrote), validated by size, hash and last-modified, so a no-op
//! re-sync sends none. Objects at least `chunk_size` big are dynamic large objects as
//! rclone stores them: segments in `<container>_segments` under
//! `<name>/<YYYY-MM-DD-HHMMSS>-<random>/<%08d>`, uploaded in parallel, each checked
//! against the MD5 Swift computed of it, then a manifest (`X-Object-Manifest`); a failed
//! upload deletes its segments, and deleting a large object deletes them too.

pub mod auth;
pub mod provider;

use self::auth::{Session, SwiftAuth};
use super::hash::{HashType, Hashes};
use super::kit::bucket::{self, Codec, Keys, Listed, validate};
use super::kit::chunked::{PartPlan, upload_parts};
use super::kit::classify::{self, Failure, Retry};
use super::kit::encoder::Mask;
use super::kit::http::{Body, Classify, HttpClient, HttpConfig, HttpResponse, Prepared, header, read_body};
use super::kit::mime::content_type;
use super::kit::paginate::PageGuard;
use super::kit::time;
use super::{Entry, EntryKind, Extra, Features, Md5, Nanos, Opened, PosixMeta, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::index::{Index, ObjectMeta};
use crate::path::RelPath;
use base64::Engine as _;
use md5::Digest;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use std::io::Read;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1024 * 1024;
const LABELS: &[&str] = &["AUTH", "LIST", "HEAD", "GET", "PUT", "POST", "DELETE"];
/// Swift's largest single object (5 GiB) and rclone's default chunk size.
const MAX_OBJECT: u64 = 5 * 1024 * MIB;
const PATH: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
const STRICT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// Settings of a Swift remote.
pub struct SwiftOptions {
    pub auth: SwiftAuth,
    pub container: String,
    pub prefix: String,
    /// Objects at least this big are uploaded as segments of this size.
    pub chunk_size: u64,
    pub upload_concurrency: usize,
    pub list_chunk: u32,
    pub http: HttpConfig,
}

impl SwiftOptions {
    pub fn new(auth: SwiftAuth, container: &str, prefix: &str) -> SwiftOptions {
        SwiftOptions {
            auth,
            container: container.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            chunk_size: MAX_OBJECT,
            upload_concurrency: 4,
            list_chunk: 1000,
            http: HttpConfig::JOB,
        }
    }
}

pub struct SwiftRemote {
    http: HttpClient,
    auth: SwiftAuth,
    session: Mutex<Option<Arc<Session>>>,
    logging_in: Mutex<()>,
    container: String,
    keys: Keys,
    chunk_size: u64,
    upload_concurrency: usize,
    list_chunk: u32,
    index: Option<Arc<Index>>,
    remote_id: String,
    /// Large-object manifests seen in listings (key → `X-Object-Manifest`), so that
    /// replacing or deleting one removes its segments without a HEAD per object.
    manifests: Mutex<std::collections::HashMap<String, String>>,
}

#[derive(Deserialize)]
struct Listed_ {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    subdir: Option<String>,
    #[serde(default)]
    bytes: i64,
    #[serde(default)]
    hash: String,
    #[serde(default)]
    last_modified: String,
    #[serde(default)]
    content_type: String,
}

#[derive(Deserialize)]
struct ListedContainer {
    name: String,
    #[serde(default)]
    last_modified: String,
}

struct SwiftClassify<'a> {
    remote: &'a SwiftRemote,
    used: &'a Mutex<Option<String>>,
}

impl Classify for SwiftClassify<'_> {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], _what: &str) -> Failure {
        match status {
            401 => Failure::new(Kind::Permission, "the Swift token was refused", Retry::Reauth),
            409 => Failure::new(Kind::Server, "conflict (the server is still busy with this object)", Retry::Backoff),
            413 | 507 => Failure::new(Kind::Quota, "the Swift account's quota is exceeded", Retry::No),
            _ => classify::default(status, headers, body, ""),
        }
    }

    fn reauthorize(&self) -> Result<()> {
        let used = self.used.lock().ok().and_then(|u| u.clone());
        self.remote.login(used.as_deref()).map(drop)
    }
}

/// Swift's `last_modified` (`2026-12-03T13:17:12.078630`, UTC without a zone).
fn parse_listed_time(s: &str) -> Option<Nanos> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let z = if s.ends_with('Z') { s.to_string() } else { format!("{s}Z") };
    time::parse_iso8601(&z)
}

impl SwiftRemote {
    pub fn new(opts: SwiftOptions, index: Option<Arc<Index>>) -> Result<SwiftRemote> {
        if opts.container.is_empty() || opts.container.contains('/') {
            return Err(Error::usage(format!("invalid container name {:?}", opts.container)));
        }
        if opts.auth.storage_url.is_empty() || opts.auth.auth_token.is_empty() {
            opts.auth.version()?;
        }
        let where_ = if opts.auth.storage_url.is_empty() { &opts.auth.auth } else { &opts.auth.storage_url };
        let host = where_.split("://").nth(1).unwrap_or(where_).split('/').next().unwrap_or("").to_string();
        let remote_id = format!("swift:{}/{}/{}", opts.auth.auth, opts.auth.user, opts.container);
        Ok(SwiftRemote {
            http: HttpClient::new("Swift", &host, &opts.http, LABELS),
            auth: opts.auth,
            session: Mutex::new(None),
            logging_in: Mutex::new(()),
            keys: Keys::new("swift", &opts.container, &opts.prefix, Codec::Mask(Mask::NONE)),
            container: opts.container,
            chunk_size: opts.chunk_size.clamp(1, MAX_OBJECT),
            upload_concurrency: opts.upload_concurrency,
            list_chunk: opts.list_chunk,
            index,
            remote_id,
            manifests: Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Log in again unless another thread already replaced the `refused` token.
    fn login(&self, refused: Option<&str>) -> Result<Arc<Session>> {
        let _one = self.logging_in.lock().map_err(|_| Error::other("lock poisoned"))?;
        if let Some(s) = self.session.lock().map_err(|_| Error::other("lock poisoned"))?.clone()
            && refused.is_none_or(|r| r != s.token)
        {
            return Ok(s);
        }
        let s = Arc::new(self.auth.login(&self.http)?);
        *self.session.lock().map_err(|_| Error::other("lock poisoned"))? = Some(s.clone());
        Ok(s)
    }

    fn session(&self) -> Result<Arc<Session>> {
        if let Some(s) = self.session.lock().map_err(|_| Error::other("lock poisoned"))?.clone() {
            return Ok(s);
        }
        self.login(None)
    }

    fn name(&self, path: &RelPath) -> String {
        self.keys.key(path)
    }

    fn shown(&self, path: &RelPath) -> String {
        self.keys.shown(path)
    }

    fn segments_container(&self) -> String {
        format!("{}_segments", self.container)
    }

    /// A request on `container` (and `object`), with the query and headers given.
    fn send(
        &self,
        method: &'static str,
        container: Option<&str>,
        object: Option<&str>,
        query: &str,
        headers: &[(String, String)],
        body: &Body<'_>,
    ) -> Result<HttpResponse> {
        // Counted as LIST when it lists a container or the account.
        let label = if method == "GET" && object.is_none() { "LIST" } else { method };
        let used = Mutex::new(None);
        let classify = SwiftClassify { remote: self, used: &used };
        self.http.send(label, "", body, &classify, &mut || {
            let s = self.session()?;
            *used.lock().map_err(|_| Error::other("lock poisoned"))? = Some(s.token.clone());
            let mut url = s.storage_url.clone();
            if let Some(c) = container {
                url.push('/');
                url.push_str(&utf8_percent_encode(c, STRICT).to_string());
            }
            if let Some(o) = object {
                url.push('/');
                url.push_str(&utf8_percent_encode(o, PATH).to_string());
            }
            if !query.is_empty() {
                url.push('?');
                url.push_str(query);
            }
            let mut h = vec![("x-auth-token".to_string(), s.token.clone())];
            h.extend(headers.iter().cloned());
            if matches!(method, "PUT" | "POST") {
                h.push(("content-length".into(), body.len().to_string()));
            }
            Ok(Prepared { method, url, headers: h })
        })
    }

    fn list_page(&self, container: &str, prefix: &str, max: u32, marker: Option<&str>) -> Result<Vec<Listed_>> {
        let mut q = format!("format=json&prefix={}&delimiter=%2F&limit={max}", utf8_percent_encode(prefix, STRICT));
        if let Some(m) = marker {
            q.push_str(&format!("&marker={}", utf8_percent_encode(m, STRICT)));
        }
        let used = Mutex::new(None);
        let classify = SwiftClassify { remote: self, used: &used };
        let mut prepare = || {
            let s = self.session()?;
            *used.lock().map_err(|_| Error::other("lock poisoned"))? = Some(s.token.clone());
            Ok(Prepared {
                method: "GET",
                url: format!("{}/{}?{q}", s.storage_url, utf8_percent_encode(container, STRICT)),
                headers: vec![("x-auth-token".to_string(), s.token.clone())],
            })
        };
        self.http
            .call("LIST", "", &Body::Empty, &classify, &mut prepare, &|mut resp| {
                if resp.status().as_u16() == 204 {
                    return Ok(Vec::new());
                }
                serde_json::from_slice(&read_body(&mut resp, 64 * MIB)?).map_err(|e| {
                    Error::new(Kind::Protocol, format!("malformed Swift listing: {e}")).with_retryable(true)
                })
            })
            .map_err(|e| {
                if e.kind() == Kind::NotFound {
                    Error::new(Kind::DirNotFound, format!("container {container:?} does not exist")).with_status(404)
                } else {
                    e
                }
            })
    }

    /// The account's containers (segment containers left out).
    pub fn list_containers(&self) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let mut q = "format=json&limit=1000".to_string();
            if let Some(m) = &marker {
                q.push_str(&format!("&marker={}", utf8_percent_encode(m, STRICT)));
            }
            let mut resp = self.send("GET", None, None, &q, &[], &Body::Empty)?;
            let page: Vec<ListedContainer> = if resp.status().as_u16() == 204 {
                Vec::new()
            } else {
                serde_json::from_slice(&read_body(&mut resp, 16 * MIB)?)
                    .map_err(|e| Error::new(Kind::Protocol, format!("malformed Swift listing: {e}")))?
            };
            let n = page.len();
            let last = page.last().map(|c| c.name.clone());
            out.extend(page.into_iter().filter(|c| !c.name.ends_with("_segments")).map(|c| {
                let t = parse_listed_time(&c.last_modified).map(crate::clock::rfc3339_nanos).unwrap_or_default();
                (c.name, t)
            }));
            marker = guard.next(n as u32 == 1000, n, last.as_deref())?;
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    fn head(&self, name: &str) -> Result<HttpResponse> {
        self.send("HEAD", Some(&self.container), Some(name), "", &[], &Body::Empty)
    }

    fn index_loc(&self, path: &RelPath) -> (String, String) {
        (self.name(&path.parent()), self.keys.encode(path.file_name()))
    }

    fn remember(&self, path: &RelPath, meta: ObjectMeta) {
        if let Some(index) = &self.index {
            let (dir, name) = self.index_loc(path);
            index.put_object(&self.remote_id, &dir, &name, meta);
        }
    }

    fn forget_now(&self, path: &RelPath) {
        if let Some(index) = &self.index {
            let (dir, name) = self.index_loc(path);
            index.forget_object_now(&self.remote_id, &dir, &name);
        }
    }

    fn mtime_headers(mtime: Nanos, meta: PosixMeta) -> Vec<(String, String)> {
        let mut h = vec![("x-object-meta-mtime".to_string(), time::format_mtime(mtime))];
        h.extend(bucket::posix_pairs(meta).into_iter().map(|(k, v)| (format!("x-object-meta-{k}"), v)));
        h
    }

    fn put_single(
        &self,
        name: &str,
        src: &dyn Source,
        info: &PutInfo,
        headers: Vec<(String, String)>,
    ) -> Result<String> {
        let size = src.size();
        let open = || src.open_at(0, size);
        let mut h = headers;
        if let Some(md5) = info.md5 {
            // Swift refuses the object if the bytes do not hash to this.
            h.push(("etag".into(), hex::encode(md5)));
        }
        let resp =
            self.send("PUT", Some(&self.container), Some(name), "", &h, &Body::Stream { len: size, open: &open })?;
        Ok(header(&resp, "etag").unwrap_or_default().trim_matches('"').to_string())
    }

    /// A dynamic large object: parallel segments, then the manifest. Returns the
    /// manifest's ETag.
    fn put_large(
        &self,
        name: &str,
        src: &dyn Source,
        info: &PutInfo,
        headers: Vec<(String, String)>,
    ) -> Result<(String, Md5)> {
        let size = src.size();
        let content_md5 = match info.md5 {
            Some(m) => m,
            None => src.content_md5()?,
        };
        let plan = PartPlan::new(size, self.chunk_size, 1, u64::MAX, 1);
        let seg = self.segments_container();
        self.make_container(&seg)?;
        let mut nonce = [0u8; 8];
        getrandom::getrandom(&mut nonce).map_err(|e| Error::other(format!("no randomness: {e}")))?;
        let stamp = chrono::Utc::now().format("%Y-%m-%d-%H%M%S");
        let seg_prefix = format!("{name}/{stamp}-{}", hex::encode(nonce));
        let manifest_value = format!("{seg}/{seg_prefix}/");
        let done: Vec<Mutex<Option<()>>> = (0..plan.parts).map(|_| Mutex::new(None)).collect();
        let uploaded = upload_parts(&plan, self.upload_concurrency, &done, &|i, offset, len| {
            let hashed: Arc<Mutex<md5::Md5>> = Arc::default();
            let open = || -> Result<Box<dyn Read + Send + '_>> {
                *hashed.lock().map_err(|_| Error::other("lock poisoned"))? = md5::Md5::new();
                Ok(Box::new(super::hash::Md5Tee { inner: src.open_at(offset, len)?, hasher: hashed.clone() }))
            };
            let object = format!("{seg_prefix}/{i:08}");
            let resp = self.send("PUT", Some(&seg), Some(&object), "", &[], &Body::Stream { len, open: &open })?;
            let ours = hex::encode(hashed.lock().map_err(|_| Error::other("lock poisoned"))?.clone().finalize());
            let theirs = header(&resp, "etag").unwrap_or("").trim_matches('"').to_string();
            if !theirs.is_empty() && theirs != ours {
                return Err(Error::new(
                    Kind::Corrupted,
                    format!("corrupted on transfer: segment {i} MD5 {theirs} is not {ours}"),
                )
                .with_retryable(true));
            }
            Ok(())
        });
        let manifest = uploaded.and_then(|()| {
            let mut h = headers;
            // A manifest's ETag is no content MD5: record it as rclone's S3 backend does
            // for multipart uploads, so reads of the large object verify by content.
            h.push(("x-object-meta-md5chksum".into(), B64.encode(content_md5)));
            h.push(("x-object-manifest".into(), manifest_value.clone()));
            let resp = self.send("PUT", Some(&self.container), Some(name), "", &h, &Body::Empty)?;
            Ok((header(&resp, "etag").unwrap_or_default().trim_matches('"').to_string(), content_md5))
        });
        match &manifest {
            Err(_) => self.delete_segments(&seg, &format!("{seg_prefix}/")),
            Ok(_) => {
                if let Ok(mut m) = self.manifests.lock() {
                    m.insert(name.to_string(), manifest_value.clone());
                }
            }
        }
        manifest
    }

    /// Delete the segments under `prefix` in `container` (best effort: logged).
    fn delete_segments(&self, container: &str, prefix: &str) {
        let mut marker: Option<String> = None;
        loop {
            let page = match self.list_all(container, prefix, marker.as_deref()) {
                Ok(p) => p,
                Err(e) => {
                    log::warn!("{container}/{prefix}: could not list the segments to delete them: {e}");
                    return;
                }
            };
            let n = page.len();
            for o in &page {
                if let Err(e) = self.send("DELETE", Some(container), Some(o), "", &[], &Body::Empty)
                    && e.kind() != Kind::NotFound
                {
                    log::warn!("{container}/{o}: could not delete a segment: {e}");
                }
            }
            marker = page.last().cloned();
            if n < 1000 {
                return;
            }
        }
    }

    /// Object names under `prefix`, without a delimiter (segments).
    fn list_all(&self, container: &str, prefix: &str, marker: Option<&str>) -> Result<Vec<String>> {
        let mut q = format!("format=json&prefix={}&limit=1000", utf8_percent_encode(prefix, STRICT));
        if let Some(m) = marker {
            q.push_str(&format!("&marker={}", utf8_percent_encode(m, STRICT)));
        }
        let mut resp = self.send("GET", Some(container), None, &q, &[], &Body::Empty)?;
        if resp.status().as_u16() == 204 {
            return Ok(Vec::new());
        }
        let v: Vec<Listed_> = serde_json::from_slice(&read_body(&mut resp, 64 * MIB)?)
            .map_err(|e| Error::new(Kind::Protocol, format!("malformed Swift listing: {e}")))?;
        Ok(v.into_iter().filter_map(|o| o.name).collect())
    }

    fn make_container(&self, container: &str) -> Result<()> {
        self.send("PUT", Some(container), None, "", &[], &Body::Empty).map(drop)
    }

    /// HEAD an object and record its modification time (and real size of a large
    /// object) in the index.
    fn head_meta(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        let resp = self.head(&self.name(path)).map_err(|e| e.with_path(self.shown(path)))?;
        let mtime = header(&resp, "x-object-meta-mtime")
            .and_then(time::parse_mtime)
            .or(entry.extra.server_time)
            .or_else(|| header(&resp, "last-modified").and_then(time::parse_http_date))
            .ok_or_else(|| Error::new(Kind::Protocol, "object has no modification time").with_path(self.shown(path)))?;
        if let Some(etag) = &entry.extra.etag {
            self.remember(
                path,
                ObjectMeta {
                    size: entry.size,
                    etag: etag.to_string(),
                    server_time: entry.extra.server_time,
                    mtime,
                    md5: entry.md5,
                },
            );
        }
        Ok(mtime)
    }
}

fn md5_b64(s: &str) -> Option<Md5> {
    B64.decode(s.trim()).ok()?.try_into().ok()
}

fn md5_hex(s: &str) -> Option<Md5> {
    let s = s.trim().trim_matches('"');
    if s.len() != 32 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

impl Remote for SwiftRemote {
    fn describe(&self) -> String {
        self.keys.describe()
    }

    fn features(&self) -> Features {
        bucket::features(Hashes::of(HashType::Md5), 1, true)
    }

    fn root_state(&self) -> Result<RootState> {
        bucket::root_state(
            &self.keys,
            |prefix| self.list_page(&self.container, prefix, 1, None).map(|p| !p.is_empty()),
            |key| Ok(self.list_page(&self.container, key, 1, None)?.into_iter().next().and_then(|o| o.name)),
        )
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let prefix = self.keys.dir_prefix(dir);
        let dir_key = self.name(dir);
        let known = self.index.as_ref().map(|i| i.object_dir(&self.remote_id, &dir_key)).unwrap_or_default();
        let mut out = Vec::new();
        let mut marker: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let page = self
                .list_page(&self.container, &prefix, self.list_chunk, marker.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            let items = page.len();
            let last = page.last().and_then(|o| o.name.clone().or_else(|| o.subdir.clone()));
            for o in page {
                if let Some(sub) = &o.subdir {
                    if let Some(name) = self.keys.child(dir, &prefix, sub, bad) {
                        out.push(Entry::dir(name, None));
                    }
                    continue;
                }
                let Some(full) = &o.name else { continue };
                if o.content_type == "application/directory" || full.ends_with('/') {
                    continue; // a directory marker
                }
                let Some(name) = self.keys.child(dir, &prefix, full, bad) else {
                    continue;
                };
                let rest = full.strip_prefix(&prefix).unwrap_or(full);
                let server_time = parse_listed_time(&o.last_modified);
                let mut size = o.bytes;
                let mut md5 = md5_hex(&o.hash);
                let mut etag = o.hash.clone();
                let mut mtime = None;
                // A large object's manifest lists as 0 bytes with the empty MD5: ask.
                if o.bytes == 0 && o.hash == EMPTY_MD5 {
                    let resp = self.head(full).map_err(|e| e.with_path(self.shown(dir)))?;
                    if header(&resp, "x-object-manifest").is_some() || header(&resp, "x-static-large-object").is_some()
                    {
                        size = header(&resp, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                        md5 = header(&resp, "x-object-meta-md5chksum").and_then(md5_b64);
                        etag = header(&resp, "etag").unwrap_or("").trim_matches('"').to_string();
                    }
                    mtime = header(&resp, "x-object-meta-mtime").and_then(time::parse_mtime);
                }
                if mtime.is_none()
                    && let Some(m) = known.get(rest)
                    && let Some(adopt) = validate(m, &Listed { size, etag: &etag }, server_time, md5)
                {
                    mtime = Some(m.mtime);
                    if let (Some(index), Some(updated)) = (&self.index, adopt) {
                        index.put_object(&self.remote_id, &dir_key, rest, updated);
                    }
                }
                out.push(Entry {
                    name,
                    kind: EntryKind::File,
                    size,
                    mtime,
                    md5,
                    extra: Extra { etag: Some(etag.into()), server_time, ..Extra::default() },
                });
            }
            marker = guard
                .next(items as u32 == self.list_chunk, items, last.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        match entry.mtime {
            Some(t) => Ok(t),
            None => self.head_meta(path, entry),
        }
    }

    fn remember_md5(&self, path: &RelPath, entry: &Entry, md5: Md5) {
        if let (Some(mtime), Some(etag)) = (entry.mtime, &entry.extra.etag) {
            self.remember(
                path,
                ObjectMeta {
                    size: entry.size,
                    etag: etag.to_string(),
                    server_time: entry.extra.server_time,
                    mtime,
                    md5: Some(md5),
                },
            );
        }
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let name = self.name(path);
        let (len, ranged) = bucket::read_range(entry, offset, len);
        if ranged && len == 0 {
            return Ok(bucket::empty_read(entry));
        }
        let mut headers = Vec::new();
        if ranged {
            headers.push(("range".to_string(), format!("bytes={}-{}", offset, offset + len - 1)));
            // The same version for every range (a large object's ETag is its manifest's).
            if let (Some(etag), Some(_)) = (entry.extra.etag.as_deref().filter(|e| !e.is_empty()), entry.md5) {
                headers.push(("if-match".into(), etag.to_string()));
            }
        }
        let resp = self
            .send("GET", Some(&self.container), Some(&name), "", &headers, &Body::Empty)
            .map_err(|e| e.with_path(self.shown(path)))?;
        bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        let large = header(&resp, "x-object-manifest").is_some() || header(&resp, "x-static-large-object").is_some();
        let mtime = entry.mtime.or_else(|| header(&resp, "x-object-meta-mtime").and_then(time::parse_mtime));
        let md5 = entry.md5.or_else(|| {
            if large {
                header(&resp, "x-object-meta-md5chksum").and_then(md5_b64)
            } else {
                header(&resp, "etag").and_then(md5_hex)
            }
        });
        let meta = bucket::posix_from(|k| header(&resp, &format!("x-object-meta-{k}")));
        let mut o = Opened::plain(Box::new(resp.into_body().into_reader()));
        o.mtime = mtime;
        o.md5 = md5;
        o.meta = meta;
        Ok(o)
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write an object at the root itself"));
        }
        let name = self.name(path);
        let size = src.size();
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let mut headers = Self::mtime_headers(mtime, PosixMeta { mode: info.mode, uid: info.uid, gid: info.gid });
        headers.push(("content-type".into(), content_type(path.file_name()).to_string()));
        self.forget_now(path);
        // A large object replaced by a small one (or another large one) leaves its old
        // segments: find them first.
        let old_segments = self.manifests.lock().ok().and_then(|mut m| m.remove(&name));
        let (etag, md5) = if size < self.chunk_size {
            let etag = self.put_single(&name, src, info, headers).map_err(|e| e.with_path(self.shown(path)))?;
            let md5 = md5_hex(&etag);
            (etag, md5)
        } else {
            let (etag, md5) = self.put_large(&name, src, info, headers).map_err(|e| e.with_path(self.shown(path)))?;
            src.mark_verified();
            (etag, Some(md5))
        };
        if let Some(m) = old_segments
            && let Some((c, p)) = m.split_once('/')
        {
            let c = percent_encoding::percent_decode_str(c).decode_utf8_lossy().into_owned();
            let p = percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned();
            self.delete_segments(&c, &p);
        }
        self.remember(path, ObjectMeta { size: size as i64, etag: etag.clone(), server_time: None, mtime, md5 });
        let mut e = Entry::file(path.file_name(), size as i64, Some(mtime));
        e.md5 = md5;
        e.extra.etag = Some(etag.into());
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: PosixMeta) -> Result<()> {
        let name = self.name(path);
        // POST replaces all user metadata: send back what the object has (its manifest
        // above all), with the new time.
        let resp = self.head(&name).map_err(|e| e.with_path(self.shown(path)))?;
        let mut headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                (k.starts_with("x-object-meta-")
                    && !matches!(
                        k,
                        "x-object-meta-mtime" | "x-object-meta-mode" | "x-object-meta-uid" | "x-object-meta-gid"
                    ))
                    || k == "x-object-manifest"
                    || k == "content-type"
            })
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        headers.extend(Self::mtime_headers(mtime, meta));
        self.forget_now(path);
        self.send("POST", Some(&self.container), Some(&name), "", &headers, &Body::Empty)
            .map_err(|e| e.with_path(self.shown(path)))?;
        let size = entry.size;
        if let Some(etag) = &entry.extra.etag {
            self.remember(path, ObjectMeta { size, etag: etag.to_string(), server_time: None, mtime, md5: entry.md5 });
        }
        Ok(())
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        let name = self.name(path);
        let manifest = self.manifests.lock().ok().and_then(|mut m| m.remove(&name));
        match self.send("DELETE", Some(&self.container), Some(&name), "", &[], &Body::Empty) {
            Ok(_) => {}
            Err(e) if e.kind() == Kind::NotFound => {}
            Err(e) => return Err(e.with_path(self.shown(path))),
        }
        if let Some(m) = manifest
            && let Some((c, p)) = m.split_once('/')
        {
            let c = percent_encoding::percent_decode_str(c).decode_utf8_lossy().into_owned();
            let p = percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned();
            self.delete_segments(&c, &p);
        }
        if let Some(index) = &self.index {
            let (dir, n) = self.index_loc(path);
            index.forget_object(&self.remote_id, &dir, &n);
        }
        Ok(())
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        if !dir.is_root() {
            return Ok(());
        }
        match self.list_page(&self.container, "", 1, None) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::DirNotFound => self.make_container(&self.container),
            Err(e) => Err(e),
        }
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(format!("{}/{}", self.remote_id, self.keys.prefix))
    }

    fn flush(&self) {
        if let Some(index) = &self.index {
            index.flush();
        }
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_times_and_versions() {
        assert_eq!(parse_listed_time("2001-02-03T04:05:06.499999"), Some(981_173_106_499_999_000));
        let a = SwiftAuth { auth: "http://h/auth/v1.0".into(), ..SwiftAuth::default() };
        assert_eq!(a.version().unwrap(), 1);
        let a = SwiftAuth { auth: "https://keystone/v3".into(), ..SwiftAuth::default() };
        assert_eq!(a.version().unwrap(), 3);
        let a = SwiftAuth { auth: "https://keystone/".into(), ..SwiftAuth::default() };
        assert!(a.version().unwrap_err().message().contains("Can't find AuthVersion"));
    }
}
