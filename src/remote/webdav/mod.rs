//! WebDAV (rclone `backend/webdav`): a folder on a WebDAV server, with the vendor quirks
//! TrueNAS offers (Nextcloud, ownCloud, other; SharePoint's Microsoft sign-in is refused
//! with a clear sentence).
//!
//! On-remote format as rclone writes it: names as they are (rclone's WebDAV encoding is
//! the identity; only invalid UTF-8 is quoted), percent-encoded in URLs; modification
//! times through `X-OC-Mtime` on the upload and `PROPPATCH lastmodified` (Nextcloud,
//! ownCloud: 1 s); digests from `oc:checksums` (SHA1 on Nextcloud, SHA1 and MD5 on
//! ownCloud). Vendor "other" stores no modification times, so comparisons are by size.
//!
//! What cloudsync does beyond rclone:
//! - every upload goes to a temporary name next to its target and is `MOVE`d into place
//!   only after the server's record of it checked out: the size, and the server's own
//!   digest of what it stored (Nextcloud computes one on request, `X-Recalculate-Hash`)
//!   against the digest of the bytes sent. A failed upload leaves the previous version
//!   whole and deletes nothing but its temporary file;
//! - Nextcloud's chunked upload (v1) for large files, whose final `MOVE` answered with
//!   423 Locked is waited out by watching the target, never by uploading again;
//! - a Nextcloud URL of the legacy `remote.php/webdav/` form falls back to single PUTs
//!   with a warning (rclone refuses to start);
//! - known directories are remembered, so a file in a listed directory costs no MKCOL.

pub mod dav;
pub mod provider;

use self::dav::Item;
use super::hash::{Checksum, HashType, Hasher, Hashes, Tee};
use super::kit::bucket;
use super::kit::classify::{self, Failure, Retry};
use super::kit::encoder::{self, Mask};
use super::kit::http::{Body, Classify, HttpClient, HttpConfig, HttpResponse, Prepared, header, read_body};
use super::kit::mime::content_type;
use super::kit::partial;
use super::kit::xml;
use super::{Entry, Features, Nanos, Opened, PosixMeta, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use base64::Engine as _;
use md5::Digest as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;
const LABELS: &[&str] = &["PROPFIND", "GET", "PUT", "MOVE", "MKCOL", "DELETE", "PROPPATCH", "PATCH", "OTHER"];
/// Characters left as they are in a path segment (RFC 3986 unreserved).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// Nextcloud's default `max_chunk_size` (rclone's `nextcloud_chunk_size`).
pub const NEXTCLOUD_CHUNK: u64 = 10 * MIB;
/// A listing larger than this is refused (about 200,000 entries).
const LISTING_LIMIT: u64 = 256 * MIB;
/// How long a chunked upload's final MOVE may stay locked while the server assembles.
const MERGE_WAIT: Duration = Duration::from_secs(300);

/// The WebDAV server software (TrueNAS's `vendor`, in any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vendor {
    Nextcloud,
    Owncloud,
    Sharepoint,
    Other,
}

impl Vendor {
    pub fn parse(s: &str) -> Result<Vendor> {
        match s.to_ascii_lowercase().as_str() {
            "nextcloud" => Ok(Vendor::Nextcloud),
            "owncloud" => Ok(Vendor::Owncloud),
            "sharepoint" => Ok(Vendor::Sharepoint),
            "other" | "" => Ok(Vendor::Other),
            other => Err(Error::usage(format!("unknown WebDAV vendor {other:?}"))),
        }
    }

    /// The server keeps modification times (`X-OC-Mtime`, `PROPPATCH`), to the second.
    fn mtimes(self) -> bool {
        matches!(self, Vendor::Nextcloud | Vendor::Owncloud)
    }

    fn hashes(self) -> Hashes {
        match self {
            Vendor::Nextcloud => Hashes::of(HashType::Sha1),
            Vendor::Owncloud => Hashes::of(HashType::Sha1).with(HashType::Md5),
            Vendor::Sharepoint | Vendor::Other => Hashes::NONE,
        }
    }
}

/// Settings of a WebDAV remote.
#[derive(Clone)]
pub struct WebdavOptions {
    /// The server's WebDAV root (`https://cloud.example.com/remote.php/dav/files/USER/`).
    pub url: String,
    pub vendor: Vendor,
    pub user: String,
    pub pass: String,
    /// The folder below the URL (the task's `folder`).
    pub folder: String,
    /// Nextcloud uploads larger than this go in chunks of this size (0 = never).
    pub chunk_size: u64,
    pub http: HttpConfig,
}

impl WebdavOptions {
    pub fn new(url: &str, vendor: Vendor, user: &str, pass: &str, folder: &str) -> WebdavOptions {
        WebdavOptions {
            url: url.to_string(),
            vendor,
            user: user.to_string(),
            pass: pass.to_string(),
            folder: folder.to_string(),
            chunk_size: NEXTCLOUD_CHUNK,
            http: HttpConfig::JOB,
        }
    }
}

pub struct WebdavRemote {
    http: HttpClient,
    /// `scheme://host[:port]`.
    origin: String,
    /// The encoded path of the server's WebDAV root, ending in `/`.
    dav_root: String,
    /// The encoded segments of the folder below it.
    folder: Vec<String>,
    vendor: Vendor,
    /// The `Authorization` header, when there are credentials.
    auth: Option<String>,
    /// Nextcloud's upload collection (`…/dav/uploads/USER/`), when chunking is possible.
    chunks: Option<String>,
    chunk_size: u64,
    /// Nextcloud computes a stored file's SHA1 on request (`PATCH X-Recalculate-Hash`);
    /// cleared at the first server that cannot.
    recalc: AtomicBool,
    /// Encoded paths of collections known to exist.
    dirs: Mutex<HashSet<String>>,
    /// Temporary files of earlier runs that listings came across.
    leftovers: Mutex<Vec<RelPath>>,
    shown_root: String,
}

struct DavClassify;

impl Classify for DavClassify {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], what: &str) -> Failure {
        let mut f = match status {
            401 => Failure::new(Kind::Permission, "the WebDAV server refused the user name or password", Retry::No),
            // Locked (ownCloud while a write is in progress) and Too Early: rclone retries them.
            423 | 425 => {
                Failure::new(Kind::Server, "the server is busy with this file", classify::after_or_backoff(headers))
            }
            413 => Failure::new(Kind::Server, "the server refuses a file this large", Retry::No),
            507 => Failure::new(Kind::Quota, "the WebDAV server's storage or the user's quota is full", Retry::No),
            _ => classify::default(status, headers, body, what),
        };
        // Sabre (Nextcloud, ownCloud) explains itself in <s:message>.
        if let Ok(root) = xml::parse(body)
            && let Some(m) = root.child("message").map(|m| m.text.trim()).filter(|m| !m.is_empty())
        {
            let m: String = m.chars().take(300).collect();
            f.err = Error::new(f.err.kind(), format!("{}: {m}", f.err.message())).with_retryable(f.retry != Retry::No);
        }
        f
    }
}

/// What a server says it stored under a name.
struct Stored {
    size: Option<i64>,
    sha1: Option<[u8; 20]>,
    md5: Option<[u8; 16]>,
    mtime: Option<Nanos>,
}

/// How a MKCOL went.
enum Mk {
    Made,
    Exists,
    /// The parent is missing.
    Conflict,
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock().map_err(|_| Error::other("lock poisoned"))
}

/// How names go on the wire: control characters and DEL as their Unicode pictures, as
/// rclone 1.75 sends them (its base encoding: `tab\there` → `tab␉here`); bytes that are
/// not UTF-8 quoted as `‛E9` (rclone sends those raw, which WsgiDAV answers by dropping
/// the connection and Nextcloud cannot store; a raw name another client stored is still
/// read as the bytes it is).
const NAMES: Mask = Mask::CTL.or(Mask::DEL);

fn encode_segment(seg: &[u8]) -> String {
    percent_encoding::utf8_percent_encode(&encoder::encode(seg, NAMES), SEGMENT).to_string()
}

/// The local name of a decoded href segment (the inverse of [`encode_segment`]).
fn decode_segment(raw: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(raw) {
        Ok(s) => encoder::decode(s, NAMES),
        Err(_) => raw.to_vec(),
    }
}

fn trim_slash(p: &[u8]) -> &[u8] {
    p.strip_suffix(b"/").unwrap_or(p)
}

impl WebdavRemote {
    pub fn new(opts: WebdavOptions) -> Result<WebdavRemote> {
        if opts.vendor == Vendor::Sharepoint {
            return Err(Error::new(
                Kind::Unsupported,
                "SharePoint Online signs in through Microsoft's web login, which this version does not support; \
                 a Microsoft OneDrive credential reaches SharePoint document libraries",
            ));
        }
        let (scheme, rest) = opts
            .url
            .split_once("://")
            .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
            .ok_or_else(|| Error::usage("the WebDAV URL must start with http:// or https://"))?;
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        // Credentials written into the URL are used, never shown.
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(Error::usage("the WebDAV URL names no host"));
        }
        let (mut user, mut pass) = (opts.user.clone(), opts.pass.clone());
        if let Some(u) = userinfo
            && user.is_empty()
            && pass.is_empty()
        {
            let (u, p) = u.split_once(':').unwrap_or((u, ""));
            let dec = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            (user, pass) = (dec(u), dec(p));
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut dav_root = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        if !dav_root.ends_with('/') {
            dav_root.push('/');
        }
        let origin = format!("{}://{host}", scheme.to_ascii_lowercase());
        let folder: Vec<String> =
            opts.folder.split('/').filter(|s| !s.is_empty()).map(|s| encode_segment(s.as_bytes())).collect();
        if opts.folder.split('/').any(|s| s == "." || s == "..") {
            return Err(Error::usage(format!("invalid folder {:?}", opts.folder)));
        }
        let chunks = match opts.vendor {
            Vendor::Nextcloud if opts.chunk_size > 0 => match nextcloud_uploads(&dav_root) {
                Some(up) => Some(format!("{origin}{up}")),
                None => {
                    log::warn!(
                        "WebDAV: {origin}{dav_root} is not Nextcloud's /remote.php/dav/files/USER/ address, so large \
                         files are uploaded in one request instead of in chunks"
                    );
                    None
                }
            },
            _ => None,
        };
        let auth = (!user.is_empty() || !pass.is_empty())
            .then(|| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))));
        let mut shown_root = format!("webdav:{origin}{dav_root}");
        shown_root.push_str(&folder.join("/"));
        Ok(WebdavRemote {
            http: HttpClient::new("WebDAV", host, &opts.http, LABELS),
            origin,
            dav_root,
            folder,
            vendor: opts.vendor,
            auth,
            chunks,
            chunk_size: opts.chunk_size,
            recalc: AtomicBool::new(opts.vendor == Vendor::Nextcloud),
            dirs: Mutex::new(HashSet::new()),
            leftovers: Mutex::new(Vec::new()),
            shown_root,
        })
    }

    /// The encoded URL path of `path` (a collection's ends in `/`).
    fn url_path(&self, path: &RelPath, dir: bool) -> String {
        let mut p = self.dav_root.clone();
        let segs: Vec<String> = self.folder.iter().cloned().chain(path.segments().map(encode_segment)).collect();
        p.push_str(&segs.join("/"));
        if dir && !segs.is_empty() {
            p.push('/');
        }
        p
    }

    fn url(&self, path: &RelPath, dir: bool) -> String {
        format!("{}{}", self.origin, self.url_path(path, dir))
    }

    fn shown(&self, path: &RelPath) -> String {
        super::kit::dirs::shown(&self.shown_root, path)
    }

    /// Send one request (retried by the kit); `ok` says which statuses are answers.
    fn send(
        &self,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
        body: &Body<'_>,
        ok: &dyn Fn(u16) -> bool,
    ) -> Result<HttpResponse> {
        let label = if LABELS.contains(&method) { method } else { "OTHER" };
        self.http.send_expecting(
            label,
            "",
            body,
            &DavClassify,
            ok,
            &mut || Ok(self.prepare(method, url, headers, body)),
        )
    }

    /// One attempt of a request: the given headers, the authorisation, the body's length.
    fn prepare(&self, method: &'static str, url: &str, headers: &[(&str, String)], body: &Body<'_>) -> Prepared {
        let mut h: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        if let Some(a) = &self.auth {
            h.push(("authorization".into(), a.clone()));
        }
        // ureq would send an empty PATCH chunked; say there is no body instead.
        if matches!(method, "PUT" | "PATCH" | "PROPFIND" | "PROPPATCH") || !body.is_empty() {
            h.push(("content-length".into(), body.len().to_string()));
        }
        Prepared { method, url: url.to_string(), headers: h }
    }

    fn propfind_body(&self) -> &'static str {
        if self.vendor.hashes().is_empty() { dav::PROPFIND_STANDARD } else { dav::PROPFIND_OWNCLOUD }
    }

    /// PROPFIND `url` at `depth`; `None` when nothing is there (404).
    fn propfind(&self, url: &str, depth: &str) -> Result<Option<Vec<Item>>> {
        let body = Body::Bytes(self.propfind_body().as_bytes());
        let headers = [("depth", depth.to_string()), ("content-type", "application/xml; charset=utf-8".to_string())];
        let mut prepare = || Ok(self.prepare("PROPFIND", url, &headers, &body));
        let got = self.http.call("PROPFIND", "", &body, &DavClassify, &mut prepare, &|mut resp| {
            if resp.status().as_u16() != 207 {
                return Err(Error::new(
                    Kind::Protocol,
                    format!(
                        "the server answered PROPFIND with {} instead of 207 Multi-Status: is this a WebDAV URL?",
                        resp.status()
                    ),
                ));
            }
            dav::parse_multistatus(&read_body(&mut resp, LISTING_LIMIT)?)
        });
        match got {
            Ok(items) => Ok(Some(items)),
            Err(e) if e.kind() == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// What the server says is stored at `url` (Depth 0).
    fn stat(&self, url: &str) -> Result<Option<Item>> {
        let want = dav::href_path(url);
        Ok(self.propfind(url, "0")?.and_then(|items| {
            let n = items.len();
            items.into_iter().find(|i| n == 1 || trim_slash(&dav::href_path(&i.href)) == trim_slash(&want))
        }))
    }

    fn mkcol(&self, path: &str) -> Result<Mk> {
        let url = format!("{}{path}", self.origin);
        let resp =
            self.send("MKCOL", &url, &[], &Body::Empty, &|s| (200..300).contains(&s) || matches!(s, 405 | 406 | 409))?;
        Ok(match resp.status().as_u16() {
            409 => Mk::Conflict,
            405 | 406 => Mk::Exists,
            _ => Mk::Made,
        })
    }

    /// Make sure the collection of encoded `segs` (below the DAV root) exists, creating
    /// missing parents (rclone's MKCOL, then parent by parent on 409 Conflict).
    fn ensure(&self, segs: &[String]) -> Result<()> {
        if segs.is_empty() {
            return Ok(());
        }
        let path = format!("{}{}/", self.dav_root, segs.join("/"));
        if lock(&self.dirs)?.contains(&path) {
            return Ok(());
        }
        match self.mkcol(&path)? {
            Mk::Made | Mk::Exists => {}
            Mk::Conflict => {
                self.ensure(&segs[..segs.len() - 1])?;
                if let Mk::Conflict = self.mkcol(&path)? {
                    return Err(Error::new(
                        Kind::Server,
                        format!("the server refuses to create {}{path} (409 Conflict)", self.origin),
                    ));
                }
            }
        }
        lock(&self.dirs)?.insert(path);
        Ok(())
    }

    fn segs(&self, path: &RelPath) -> Vec<String> {
        self.folder.iter().cloned().chain(path.segments().map(encode_segment)).collect()
    }

    fn known_dir(&self, path: &RelPath) {
        if let Ok(mut d) = self.dirs.lock() {
            d.insert(self.url_path(path, true));
        }
    }

    fn delete_url(&self, url: &str) -> Result<()> {
        self.send("DELETE", url, &[], &Body::Empty, &|s| (200..300).contains(&s) || s == 404).map(drop)
    }

    /// MOVE `from` onto `to` (absolute URLs), replacing what is there.
    fn move_to(&self, from: &str, to: &str, extra: &[(&str, String)]) -> Result<HttpResponse> {
        let mut h = vec![("destination", to.to_string()), ("overwrite", "T".to_string())];
        h.extend(extra.iter().cloned());
        self.send("MOVE", from, &h, &Body::Empty, &|s| (200..300).contains(&s))
    }

    /// The server's SHA1 of a stored file, computed from what it holds (Nextcloud's
    /// `PATCH` with `X-Recalculate-Hash`, which also stores it for later listings).
    fn recalculated_sha1(&self, url: &str) -> Result<Option<[u8; 20]>> {
        if !self.recalc.load(Relaxed) {
            return Ok(None);
        }
        let resp = self.send("PATCH", url, &[("x-recalculate-hash", "sha1".into())], &Body::Empty, &|s| s < 500)?;
        let sha1 =
            (resp.status().is_success()).then(|| header(&resp, "oc-checksum").map(dav::parse_checksums)).flatten();
        match sha1 {
            Some((Some(s), _)) => Ok(Some(s)),
            _ => {
                log::info!(
                    "WebDAV {}: the server computes no checksums on request; verifying by its listing",
                    self.origin
                );
                self.recalc.store(false, Relaxed);
                Ok(None)
            }
        }
    }

    /// What the server stored at `url`.
    fn stored(&self, url: &str) -> Result<Stored> {
        let recalculated = self.recalculated_sha1(url)?;
        if recalculated.is_some() && self.vendor == Vendor::Nextcloud {
            return Ok(Stored { size: None, sha1: recalculated, md5: None, mtime: None });
        }
        let item = self.stat(url)?.ok_or_else(|| {
            Error::new(Kind::Server, "the server does not show the file it just accepted").with_retryable(true)
        })?;
        Ok(Stored { size: item.size, sha1: recalculated.or(item.sha1), md5: item.md5, mtime: item.mtime })
    }

    /// Upload in one PUT; the digest of `kind` of what was sent, if asked for.
    fn put_simple(
        &self,
        url: &str,
        src: &dyn Source,
        name: &[u8],
        mtime: Option<Nanos>,
        kind: Option<HashType>,
    ) -> Result<(Option<Checksum>, bool)> {
        let size = src.size();
        let hasher = kind.map(|k| Arc::new(Mutex::new(Hasher::new(k))));
        let open = || -> Result<Box<dyn std::io::Read + Send + '_>> {
            let inner = src.open_at(0, size)?;
            Ok(match (&hasher, kind) {
                (Some(h), Some(k)) => {
                    *lock(h)? = Hasher::new(k);
                    Box::new(Tee { inner, hasher: h.clone() })
                }
                _ => inner,
            })
        };
        let mut h = vec![("content-type", content_type(name).to_string())];
        if let Some(t) = mtime {
            h.push(("x-oc-mtime", t.div_euclid(super::NANOS_PER_SEC).to_string()));
        }
        let resp = self.send("PUT", url, &h, &Body::Stream { len: size, open: &open }, &|s| (200..300).contains(&s))?;
        let accepted = header(&resp, "x-oc-mtime").is_some_and(|v| v.eq_ignore_ascii_case("accepted"));
        let sum = match hasher {
            Some(h) => Some(std::mem::replace(&mut *lock(&h)?, Hasher::new(HashType::Md5)).finish()),
            None => None,
        };
        Ok((sum, accepted))
    }

    /// Nextcloud chunked upload (v1): chunks into an upload collection, then `MOVE .file`
    /// onto `url`. Returns the SHA1 of what was sent.
    fn put_chunked(&self, url: &str, target_key: &str, src: &dyn Source, mtime: Option<Nanos>) -> Result<Checksum> {
        let chunks = self.chunks.as_deref().ok_or_else(|| Error::other("no upload collection"))?;
        let size = src.size();
        let dir = format!("{chunks}cloudsync-chunked-upload-{}/", hex::encode(md5::Md5::digest(target_key.as_bytes())));
        // What an interrupted upload of the same file left.
        self.delete_url(&dir)?;
        self.send("MKCOL", &dir, &[], &Body::Empty, &|s| (200..300).contains(&s))?;
        let result = (|| {
            let mut base = Hasher::new(HashType::Sha1);
            let mut offset = 0;
            while offset < size {
                let len = self.chunk_size.min(size - offset);
                let cur = Arc::new(Mutex::new(base.clone()));
                let open = || -> Result<Box<dyn std::io::Read + Send + '_>> {
                    *lock(&cur)? = base.clone();
                    Ok(Box::new(Tee { inner: src.open_at(offset, len)?, hasher: cur.clone() }))
                };
                let part = format!("{dir}{:015}-{:015}", offset, offset + len - 1);
                self.send(
                    "PUT",
                    &part,
                    &[("content-type", "application/octet-stream".into())],
                    &Body::Stream { len, open: &open },
                    &|s| (200..300).contains(&s),
                )?;
                base = lock(&cur)?.clone();
                offset += len;
            }
            let sha1 = base.finish();
            let mut h = vec![("oc-checksum", format!("SHA1:{}", hex::encode(&sha1.value)))];
            if let Some(t) = mtime {
                h.push(("x-oc-mtime", t.div_euclid(super::NANOS_PER_SEC).to_string()));
            }
            self.merge(&format!("{dir}.file"), url, &h, size)?;
            Ok(sha1)
        })();
        if result.is_err()
            && let Err(e) = self.delete_url(&dir)
        {
            log::warn!("WebDAV: could not remove the upload collection {dir}: {e}");
        }
        result
    }

    /// The final MOVE of a chunked upload. Assembling a large file can outlast the
    /// request: Nextcloud then answers 423 Locked (or the proxy times out) while it goes
    /// on. The chunks are not sent again; the target is watched until it has the size.
    fn merge(&self, from: &str, to: &str, headers: &[(&str, String)], size: u64) -> Result<()> {
        let mut h = vec![("destination", to.to_string()), ("overwrite", "T".to_string())];
        h.extend(headers.iter().cloned());
        let resp = self.send("MOVE", from, &h, &Body::Empty, &|s| (200..300).contains(&s) || matches!(s, 423 | 504))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let started = Instant::now();
        let mut wait = Duration::from_secs(1);
        while started.elapsed() < MERGE_WAIT {
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(15));
            if let Some(item) = self.stat(to)?
                && item.size == Some(size as i64)
            {
                return Ok(());
            }
        }
        Err(Error::new(Kind::Server, "the server did not finish assembling the uploaded chunks in 5 minutes")
            .with_retryable(true))
    }

    /// The local name of an item of a listing of `req` (decoded path without the final
    /// `/`); `None` for the directory itself and anything not directly inside it.
    fn child_name(req: &[u8], href: &str) -> Option<Vec<u8>> {
        let p = dav::href_path(href);
        let p = trim_slash(&p);
        let rest = p.strip_prefix(req)?.strip_prefix(b"/")?;
        if rest.is_empty() || rest.contains(&b'/') {
            return None;
        }
        Some(decode_segment(rest))
    }

    fn entry(&self, name: Vec<u8>, item: &Item) -> Entry {
        if item.is_dir {
            return Entry::dir(name, None);
        }
        let mut e = Entry::file(name, item.size.unwrap_or(-1), item.mtime);
        if self.vendor.hashes().contains(HashType::Md5) {
            e.md5 = item.md5;
        }
        if self.vendor.hashes().contains(HashType::Sha1) {
            e.extra.checksum = item.sha1.map(dav::sha1_checksum);
        }
        e
    }

    fn remove_tmp(&self, url: &str) {
        if let Err(e) = self.delete_url(url) {
            log::warn!("WebDAV: could not remove the temporary upload {url}: {e}");
        }
    }
}

/// The upload collection of a Nextcloud files URL (`…/dav/files/USER/…` →
/// `…/dav/uploads/USER/`), as rclone derives it.
fn nextcloud_uploads(dav_root: &str) -> Option<String> {
    let i = dav_root.find("/dav/files/")?;
    let user = dav_root[i + "/dav/files/".len()..].split('/').next().filter(|u| !u.is_empty())?;
    Some(format!("{}/dav/uploads/{user}/", &dav_root[..i]))
}

impl Remote for WebdavRemote {
    fn describe(&self) -> String {
        self.shown_root.clone()
    }

    fn features(&self) -> Features {
        Features {
            hashes: self.vendor.hashes(),
            md5_is_slow: false,
            precision: self.vendor.mtimes().then_some(super::NANOS_PER_SEC),
            set_mod_time: self.vendor.mtimes(),
            empty_dirs: true,
            dir_mod_time: false,
            read_only: false,
            case_insensitive: false,
            lazy_mod_time: false,
            is_local: false,
        }
    }

    fn root_state(&self) -> Result<RootState> {
        let root = RelPath::root();
        if self.folder.is_empty() {
            // The DAV root itself: it must answer as a collection.
            return match self.stat(&self.url(&root, true))? {
                Some(_) => Ok(RootState::Dir),
                None => Err(Error::new(Kind::DirNotFound, "the WebDAV URL does not exist on the server")
                    .with_path(self.shown_root.clone())),
            };
        }
        let url = self.url(&root, false);
        match self.stat(&url) {
            Ok(Some(item)) if item.is_dir => Ok(RootState::Dir),
            Ok(Some(_)) => Ok(RootState::File),
            Ok(None) => Ok(RootState::Missing),
            // Some servers redirect a collection's address without `/` to the one with.
            Err(e) if e.http_status().is_some_and(|s| (300..400).contains(&s)) => Ok(RootState::Dir),
            Err(e) => Err(e.with_path(self.shown_root.clone())),
        }
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let url = self.url(dir, true);
        let items = self
            .propfind(&url, "1")
            .map_err(|e| e.with_path(self.shown(dir)))?
            .ok_or_else(|| Error::new(Kind::DirNotFound, "directory not found").with_path(self.shown(dir)))?;
        let req_path = dav::href_path(&url);
        let req = trim_slash(&req_path);
        let mut out = Vec::with_capacity(items.len().saturating_sub(1));
        let mut matched = false;
        for item in &items {
            let p = dav::href_path(&item.href);
            if trim_slash(&p) == req {
                matched = true;
                if !item.is_dir && items.len() == 1 {
                    return Err(Error::new(Kind::DirNotFound, "not a directory").with_path(self.shown(dir)));
                }
                continue;
            }
            let Some(name) = Self::child_name(req, &item.href) else { continue };
            matched = true;
            if !item.ok {
                continue;
            }
            if !item.is_dir && partial::is_partial(&name) {
                if let (Ok(mut l), Ok(p)) = (self.leftovers.lock(), dir.join(&name))
                    && l.len() < 10_000
                {
                    l.push(p);
                }
                continue;
            }
            if let Err(e) = dir.join(&name) {
                bad(e.with_path(format!("{}{}", self.origin, String::from_utf8_lossy(&dav::href_path(&item.href)))));
                continue;
            }
            out.push(self.entry(name, item));
        }
        if !items.is_empty() && !matched {
            return Err(Error::new(
                Kind::Protocol,
                format!(
                    "the server's listing names paths outside {} (a proxy rewriting paths?)",
                    String::from_utf8_lossy(req)
                ),
            )
            .with_path(self.shown(dir)));
        }
        self.known_dir(dir);
        Ok(out)
    }

    fn hash(&self, _path: &RelPath, entry: &Entry, kind: HashType) -> Result<Option<Checksum>> {
        if !self.vendor.hashes().contains(kind) {
            return Ok(None);
        }
        Ok(match kind {
            HashType::Md5 => entry.md5.map(|m| Checksum { kind, value: m.to_vec() }),
            _ => entry.extra.checksum.clone().filter(|c| c.kind == kind),
        })
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let (len, ranged) = bucket::read_range(entry, offset, len);
        if ranged && len == 0 {
            return Ok(bucket::empty_read(entry));
        }
        let mut h = Vec::new();
        if ranged {
            h.push(("range", format!("bytes={}-{}", offset, offset + len - 1)));
        }
        let url = self.url(path, false);
        let resp = self
            .send("GET", &url, &h, &Body::Empty, &|s| (200..300).contains(&s))
            .map_err(|e| e.with_path(self.shown(path)))?;
        if entry.size >= 0 {
            bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        }
        let mut o = Opened::plain(Box::new(resp.into_body().into_reader()));
        o.mtime = entry.mtime;
        o.md5 = entry.md5;
        o.checksum = entry.extra.checksum.clone();
        Ok(o)
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a file at the root itself"));
        }
        let parent = path.parent();
        self.ensure(&self.segs(&parent)).map_err(|e| e.with_path(self.shown(&parent)))?;
        let size = src.size();
        let mtime = if self.vendor.mtimes() {
            Some(match info.mtime {
                Some(t) => t,
                None => src.mtime()?,
            })
        } else {
            None
        };
        let tmp_name = partial::name(path.file_name());
        let tmp = parent.join(&tmp_name)?;
        let tmp_url = self.url(&tmp, false);
        let final_url = self.url(path, false);
        let hashes = self.vendor.hashes();
        let kind = [HashType::Sha1, HashType::Md5].into_iter().find(|k| hashes.contains(*k));
        let chunked = self.chunks.is_some() && size > self.chunk_size;
        let shown = self.shown(path);
        let uploaded = if chunked {
            self.put_chunked(&tmp_url, &self.url_path(path, false), src, mtime).map(|s| (Some(s), true))
        } else {
            self.put_simple(&tmp_url, src, path.file_name(), mtime, kind)
        };
        let (sent, mtime_accepted) = match uploaded {
            Ok(v) => v,
            Err(e) => {
                // A PUT that failed may still have left part of a file.
                self.remove_tmp(&tmp_url);
                return Err(e.with_path(shown));
            }
        };
        let checked = self.stored(&tmp_url).and_then(|stored| {
            if let Some(n) = stored.size
                && n != size as i64
            {
                return Err(Error::new(
                    Kind::Corrupted,
                    format!("corrupted on transfer: the server stored {n} bytes of {size}"),
                )
                .with_retryable(true));
            }
            let theirs = match sent.as_ref().map(|c| c.kind) {
                Some(HashType::Sha1) => stored.sha1.map(dav::sha1_checksum),
                Some(HashType::Md5) => stored.md5.map(|m| Checksum { kind: HashType::Md5, value: m.to_vec() }),
                _ => None,
            };
            if let (Some(ours), Some(theirs)) = (&sent, &theirs) {
                if ours != theirs {
                    return Err(Error::new(
                        Kind::Corrupted,
                        format!(
                            "corrupted on transfer: the server's {} is {theirs}, what was sent hashes to {ours}",
                            ours.kind.name()
                        ),
                    )
                    .with_retryable(true));
                }
                src.mark_verified();
            }
            Ok(stored)
        });
        let stored = match checked {
            Ok(s) => s,
            Err(e) => {
                self.remove_tmp(&tmp_url);
                return Err(e.with_path(shown));
            }
        };
        let mut extra = vec![];
        if let Some(t) = mtime {
            extra.push(("x-oc-mtime", t.div_euclid(super::NANOS_PER_SEC).to_string()));
        }
        if let Err(e) = self.move_to(&tmp_url, &final_url, &extra) {
            self.remove_tmp(&tmp_url);
            return Err(e.with_path(shown));
        }
        let mut e = Entry::file(path.file_name(), size as i64, mtime.map(|t| t - t.rem_euclid(super::NANOS_PER_SEC)));
        if let Some(t) = mtime
            && !mtime_accepted
            && stored.mtime.is_none_or(|s| s.div_euclid(super::NANOS_PER_SEC) != t.div_euclid(super::NANOS_PER_SEC))
        {
            // The server ignored X-OC-Mtime: set it the other way, or say the time is the upload's.
            if let Err(err) = self.set_mod_time(path, &e, t, PosixMeta::default()) {
                log::warn!("{shown}: the modification time could not be set: {err}");
                e.mtime = stored.mtime;
            }
        }
        if self.vendor.hashes().contains(HashType::Md5) {
            e.md5 = stored.md5;
        }
        e.extra.checksum = sent.filter(|c| c.kind == HashType::Sha1).or_else(|| stored.sha1.map(dav::sha1_checksum));
        if !self.vendor.hashes().contains(HashType::Sha1) {
            e.extra.checksum = None;
        }
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, _meta: PosixMeta) -> Result<()> {
        if !self.vendor.mtimes() {
            return Err(Error::new(Kind::Unsupported, "this WebDAV server keeps no modification times"));
        }
        let secs = mtime.div_euclid(super::NANOS_PER_SEC);
        // Setting the time makes ownCloud drop its checksums: send them back along.
        let sum = match (self.vendor, &entry.extra.checksum, entry.md5) {
            (Vendor::Owncloud, Some(c), _) => Some(format!("SHA1:{}", hex::encode(&c.value))),
            (Vendor::Owncloud, None, Some(m)) => Some(format!("MD5:{}", hex::encode(m))),
            _ => None,
        };
        let body = dav::proppatch_mtime(secs, sum.as_deref());
        let url = self.url(path, false);
        let resp = self
            .send(
                "PROPPATCH",
                &url,
                &[("content-type", "application/xml; charset=utf-8".into())],
                &Body::Bytes(body.as_bytes()),
                &|s| (200..300).contains(&s),
            )
            .map_err(|e| e.with_path(self.shown(path)))?;
        let mut resp = resp;
        let items = if resp.status().as_u16() == 207 {
            dav::parse_multistatus(&read_body(&mut resp, MIB)?)?
        } else {
            Vec::new()
        };
        let accepted = items.first().is_none_or(|i| i.ok);
        // A server may say no and do it anyway, or say yes and not: the listing decides.
        let now = self.stat(&url)?.and_then(|i| i.mtime);
        if now.is_some_and(|t| t.div_euclid(super::NANOS_PER_SEC) == secs) {
            if self.vendor == Vendor::Nextcloud && entry.extra.checksum.is_some() {
                let _ = self.recalculated_sha1(&url);
            }
            return Ok(());
        }
        Err(Error::new(
            Kind::Unsupported,
            if accepted {
                "the server accepted the new modification time but does not show it"
            } else {
                "the server refuses to set modification times"
            },
        )
        .with_path(self.shown(path)))
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        self.delete_url(&self.url(path, false)).map_err(|e| e.with_path(self.shown(path)))
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.ensure(&self.segs(dir)).map_err(|e| e.with_path(self.shown(dir)))
    }

    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        // DELETE of a collection deletes everything in it: make sure there is nothing.
        if !super::kit::dirs::check_empty(self, dir, || self.shown(dir))? {
            return Ok(());
        }
        let path = self.url_path(dir, true);
        self.delete_url(&format!("{}{path}", self.origin)).map_err(|e| e.with_path(self.shown(dir)))?;
        if let Ok(mut d) = self.dirs.lock() {
            d.retain(|p| !p.starts_with(&path));
        }
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        let user = self.auth.as_deref().map(|_| "@").unwrap_or("");
        Some(format!("webdav:{user}{}{}", self.origin, self.url_path(&RelPath::root(), false)))
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let found = std::mem::take(&mut *lock(&self.leftovers)?);
        Ok(partial::remove_found(found, |p| self.delete_url(&self.url(p, false)), |p| self.shown(p)))
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: &str, vendor: Vendor, folder: &str) -> WebdavRemote {
        WebdavRemote::new(WebdavOptions::new(url, vendor, "u", "p", folder)).unwrap()
    }

    #[test]
    fn urls_names_and_upload_collections() {
        let r = remote("https://cloud.example/remote.php/dav/files/jo%40x/", Vendor::Nextcloud, "/back ups/");
        assert_eq!(r.chunks.as_deref(), Some("https://cloud.example/remote.php/dav/uploads/jo%40x/"));
        let p = RelPath::new("caf\u{e9}/a#b%.txt".as_bytes()).unwrap();
        assert_eq!(
            r.url(&p, false),
            "https://cloud.example/remote.php/dav/files/jo%40x/back%20ups/caf%C3%A9/a%23b%25.txt"
        );
        assert_eq!(r.url(&RelPath::root(), true), "https://cloud.example/remote.php/dav/files/jo%40x/back%20ups/");
        // Legacy address: no chunking, no failure.
        assert!(remote("https://h/remote.php/webdav", Vendor::Nextcloud, "").chunks.is_none());
        assert_eq!(nextcloud_uploads("/nc/remote.php/dav/files/u/sub/"), Some("/nc/remote.php/dav/uploads/u/".into()));
        // Hrefs as servers send them: absolute URLs, other escapes, a trailing slash.
        let req = b"/dav/d ir";
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/x%7e1"), Some(b"x~1".to_vec()));
        assert_eq!(WebdavRemote::child_name(req, "http://h/dav/d%20ir/sub/"), Some(b"sub".to_vec()));
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/"), None);
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/a/b"), None);
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/bad%ff"), Some(b"bad\xff".to_vec()));
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/tab%E2%90%89x"), Some(b"tab\tx".to_vec()));
        for name in [&b"tab\there\x7f"[..], b"lat\xe9", "pic \u{2409} and \u{201B}".as_bytes()] {
            assert_eq!(
                decode_segment(&percent_encoding::percent_decode_str(&encode_segment(name)).collect::<Vec<u8>>()),
                name
            );
        }
        assert_eq!(encode_segment(b"tab\t\xe9"), "tab%E2%90%89%E2%80%9BE9");
        assert_eq!(WebdavRemote::child_name(req, "/dav/d%20ir/raw%E9"), Some(b"raw\xe9".to_vec()));
    }

    #[test]
    fn credentials_in_the_url_are_used_not_shown() {
        let r =
            WebdavRemote::new(WebdavOptions::new("http://al:s%3Acret@h:81/dav", Vendor::Other, "", "", "f")).unwrap();
        assert_eq!(r.auth.as_deref(), Some("Basic YWw6czpjcmV0"));
        assert!(!r.describe().contains("cret"), "{}", r.describe());
        assert_eq!(r.http.host(), "h:81");
        let e = WebdavRemote::new(WebdavOptions::new("http://h/", Vendor::Sharepoint, "u", "p", "")).err().unwrap();
        assert_eq!(e.kind(), Kind::Unsupported);
        assert!(WebdavRemote::new(WebdavOptions::new("ftp://h/", Vendor::Other, "", "", "")).is_err());
        assert!(WebdavRemote::new(WebdavOptions::new("http://h/", Vendor::Other, "", "", "a/../b")).is_err());
    }
}
