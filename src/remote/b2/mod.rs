//! Backblaze B2 over its native API (rclone `backend/b2`): one bucket and a prefix in it.
//!
//! On-remote format as rclone writes it: names through rclone's B2 encoding mask, the
//! modification time in the `src_last_modified_millis` file info (milliseconds, in the
//! listing), the content SHA1 (`contentSha1`, or `large_file_sha1` for large files).
//! Every upload sends its SHA1 after the data (`hex_digits_at_end`), so B2 refuses
//! bytes that changed on the way; large files are started, uploaded in parts in
//! parallel (each with its SHA1) and finished, so nothing appears before the finish,
//! and are cancelled on failure. Downloads announce the SHA1, which the engine checks.
//! An expired account token is renewed (`b2_authorize_account`) and the call repeated;
//! an upload URL that failed is dropped and another one fetched, as B2 requires.
//! Deleting hides the file (rclone's default: old versions stay until lifecycle rules
//! remove them) unless `hard_delete` is set.

pub mod api;
pub mod provider;

use self::api::Target;
use super::hash::{Checksum, HashType, Hashes};
use super::kit::bucket::{self, Codec, Keys};
use super::kit::chunked::{PartPlan, upload_parts};
use super::kit::classify::Failure;
use super::kit::encoder::Mask;
use super::kit::http::{Body, Classify, HttpClient, HttpConfig, HttpResponse, Prepared, header, read_body};
use super::kit::mime::content_type;
use super::kit::paginate::PageGuard;
use super::{Entry, EntryKind, Extra, Features, Nanos, Opened, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha1::Digest;
use std::io::Read;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1024 * 1024;
/// B2's limits: 10,000 parts, a single upload up to 5 GB, copy_file up to 5 GB.
const MAX_PARTS: u64 = 10_000;
const MAX_SINGLE: u64 = 5_000_000_000;
const LABELS: &[&str] = &["AUTH", "LIST", "GET", "UPLOAD", "OTHER"];
pub const DEFAULT_ENDPOINT: &str = "https://api.backblazeb2.com";

/// B2 wants file names percent-encoded in headers and URLs, `/` kept.
const NAME: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// rclone's B2 mask (`Display|BackSlash|InvalidUtf8`; a local name has no `/`).
const B2_MASK: Mask = Mask::ZERO.or(Mask::CTL).or(Mask::DEL).or(Mask::BACKSLASH);

/// Settings of a B2 remote.
#[derive(Clone)]
pub struct B2Options {
    /// The application key ID (TrueNAS `account`) and the key.
    pub key_id: String,
    pub key: String,
    /// `https://api.backblazeb2.com` unless pointed elsewhere (a test server).
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    /// Part size of large files (TrueNAS `chunk_size`, 96 MiB by default).
    pub chunk_size: u64,
    /// Files at least this big are uploaded as large files.
    pub upload_cutoff: u64,
    pub upload_concurrency: usize,
    /// Delete file versions instead of hiding them.
    pub hard_delete: bool,
    pub list_chunk: u32,
    pub http: HttpConfig,
}

impl std::fmt::Debug for B2Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("B2Options")
            .field("key_id", &"<redacted>")
            .field("key", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl B2Options {
    pub fn new(key_id: &str, key: &str, bucket: &str, prefix: &str) -> B2Options {
        B2Options {
            key_id: key_id.to_string(),
            key: key.to_string(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            chunk_size: 96 * MIB,
            upload_cutoff: 200 * MIB,
            upload_concurrency: 4,
            hard_delete: false,
            list_chunk: 1000,
            http: HttpConfig::JOB,
        }
    }

    /// TrueNAS's chunk rule (truenas-cloudsync.md §5.3): chunks above the 200 MiB cutoff
    /// raise the cutoff to the chunk size.
    pub fn with_chunk_mib(mut self, mib: u64) -> B2Options {
        self.chunk_size = mib.max(5) * MIB;
        self.upload_cutoff = self.upload_cutoff.max(self.chunk_size);
        self
    }
}

/// What `b2_authorize_account` granted.
struct Account {
    id: String,
    token: String,
    api_url: String,
    download_url: String,
    /// Bucket ids the key may use, when it is restricted.
    allowed: Option<Vec<(String, String)>>,
}

pub struct B2Remote {
    http: HttpClient,
    keys: Keys,
    opts: B2Options,
    account: Mutex<Option<Arc<Account>>>,
    /// Serialises re-authorisation (many threads see the same expired token at once).
    authorizing: Mutex<()>,
    bucket_id: Mutex<Option<String>>,
    /// Upload URLs not in use (each takes one upload at a time).
    upload_urls: Mutex<Vec<api::UploadUrl>>,
}

struct B2Classify<'a> {
    remote: &'a B2Remote,
    target: Target,
    /// The account token the failed attempt used: renewed only if it is still current.
    used: Option<&'a Mutex<Option<String>>>,
}

impl<'a> B2Classify<'a> {
    fn api(remote: &'a B2Remote, used: &'a Mutex<Option<String>>) -> B2Classify<'a> {
        B2Classify { remote, target: Target::Api, used: Some(used) }
    }
}

impl Classify for B2Classify<'_> {
    fn status(&self, status: u16, headers: &ureq::http::HeaderMap, body: &[u8], _what: &str) -> Failure {
        api::classify(status, headers, body, self.target)
    }

    fn reauthorize(&self) -> Result<()> {
        let used = self.used.and_then(|u| u.lock().ok()?.clone());
        self.remote.renew(used.as_deref())
    }
}

/// Appends the SHA1 of what it read, as 40 hex digits, after the data
/// (`X-Bz-Content-Sha1: hex_digits_at_end`).
struct Sha1Appending<'a> {
    inner: Box<dyn Read + Send + 'a>,
    hasher: Option<sha1::Sha1>,
    tail: Vec<u8>,
    digest: Arc<Mutex<Option<[u8; 20]>>>,
}

impl Read for Sha1Appending<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(h) = &mut self.hasher {
            let n = self.inner.read(buf)?;
            if n > 0 {
                h.update(&buf[..n]);
                return Ok(n);
            }
            let d: [u8; 20] = self.hasher.take().map(|h| h.finalize().into()).unwrap_or_default();
            if let Ok(mut slot) = self.digest.lock() {
                *slot = Some(d);
            }
            self.tail = hex::encode(d).into_bytes();
            self.tail.reverse();
        }
        let mut n = 0;
        while n < buf.len()
            && let Some(b) = self.tail.pop()
        {
            buf[n] = b;
            n += 1;
        }
        Ok(n)
    }
}

impl B2Remote {
    pub fn new(opts: B2Options) -> Result<B2Remote> {
        if opts.bucket.is_empty() {
            return Err(Error::usage("a B2 remote needs a bucket name"));
        }
        if opts.bucket.contains('/') {
            return Err(Error::usage(format!("invalid bucket name {:?}", opts.bucket)));
        }
        let host = opts.endpoint.split("://").nth(1).unwrap_or(&opts.endpoint).trim_end_matches('/').to_string();
        if !opts.endpoint.starts_with("http://") && !opts.endpoint.starts_with("https://") {
            return Err(Error::usage(format!("B2 endpoint {:?} must start with http:// or https://", opts.endpoint)));
        }
        Ok(B2Remote {
            http: HttpClient::new("B2", &host, &opts.http, LABELS),
            keys: Keys::new("b2", &opts.bucket, &opts.prefix, Codec::Mask(B2_MASK)),
            opts,
            account: Mutex::new(None),
            authorizing: Mutex::new(()),
            bucket_id: Mutex::new(None),
            upload_urls: Mutex::new(Vec::new()),
        })
    }

    fn shown(&self, path: &RelPath) -> String {
        self.keys.shown(path)
    }

    fn name(&self, path: &RelPath) -> String {
        self.keys.key(path)
    }

    /// Replace the account token `used` (the one a request was refused with) by a new
    /// one, unless another thread already did.
    fn renew(&self, used: Option<&str>) -> Result<()> {
        let _one = self.authorizing.lock().map_err(|_| Error::other("lock poisoned"))?;
        let current = self.account.lock().map_err(|_| Error::other("lock poisoned"))?.clone();
        if let (Some(a), Some(u)) = (&current, used)
            && a.token != u
        {
            return Ok(());
        }
        self.authorize_now().map(drop)
    }

    /// The account's authorisation, authorising first if there is none yet.
    fn authorize(&self) -> Result<Arc<Account>> {
        if let Some(a) = self.account.lock().map_err(|_| Error::other("lock poisoned"))?.clone() {
            return Ok(a);
        }
        let _one = self.authorizing.lock().map_err(|_| Error::other("lock poisoned"))?;
        if let Some(a) = self.account.lock().map_err(|_| Error::other("lock poisoned"))?.clone() {
            return Ok(a);
        }
        self.authorize_now()
    }

    /// `b2_authorize_account` (the caller holds `authorizing`).
    fn authorize_now(&self) -> Result<Arc<Account>> {
        let url = format!("{}/b2api/v4/b2_authorize_account", self.opts.endpoint.trim_end_matches('/'));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.opts.key_id, self.opts.key));
        let classify = B2Classify { remote: self, target: Target::Upload, used: None };
        let mut resp = self
            .http
            .send("AUTH", "", &Body::Empty, &classify, &mut || {
                Ok(Prepared {
                    method: "GET",
                    url: url.clone(),
                    headers: vec![("authorization".into(), format!("Basic {basic}"))],
                })
            })
            .map_err(|e| match e.kind() {
                Kind::Permission => Error::new(
                    Kind::Permission,
                    "B2 refused the application key: check the key ID (account) and the application key",
                )
                .with_status(401),
                _ => e,
            })?;
        let a: api::Authorized = parse(&read_body(&mut resp, 1 << 20)?)?;
        let s = a.api_info.storage_api;
        let allowed = s
            .allowed
            .buckets
            .map(|bs| bs.into_iter().filter_map(|b| Some((b.id?, b.name.unwrap_or_default()))).collect::<Vec<_>>());
        let account = Arc::new(Account {
            id: a.account_id,
            token: a.authorization_token,
            api_url: s.api_url.trim_end_matches('/').to_string(),
            download_url: s.download_url.trim_end_matches('/').to_string(),
            allowed,
        });
        *self.account.lock().map_err(|_| Error::other("lock poisoned"))? = Some(account.clone());
        Ok(account)
    }

    /// One API call (`b2_*`) with a JSON body, answered with JSON.
    fn call<T: DeserializeOwned>(&self, label: &'static str, name: &str, body: &Value) -> Result<T> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::other(format!("cannot encode the request: {e}")))?;
        let used = Mutex::new(None);
        let classify = B2Classify::api(self, &used);
        let mut prepare = || {
            let a = self.authorize()?;
            *used.lock().map_err(|_| Error::other("lock poisoned"))? = Some(a.token.clone());
            Ok(Prepared {
                method: "POST",
                url: format!("{}/b2api/v2/{name}", a.api_url),
                headers: vec![
                    ("authorization".into(), a.token.clone()),
                    ("content-type".into(), "application/json".into()),
                    ("content-length".into(), bytes.len().to_string()),
                ],
            })
        };
        self.http.call(label, "", &Body::Bytes(&bytes), &classify, &mut prepare, &|mut resp| {
            parse(&read_body(&mut resp, 64 * MIB)?)
        })
    }

    fn bucket_id(&self) -> Result<String> {
        if let Some(id) = self.bucket_id.lock().map_err(|_| Error::other("lock poisoned"))?.clone() {
            return Ok(id);
        }
        let a = self.authorize()?;
        let id = match &a.allowed {
            Some(allowed) => {
                allowed.iter().find(|(_, n)| *n == self.opts.bucket).map(|(id, _)| id.clone()).ok_or_else(|| {
                    Error::new(
                        Kind::Permission,
                        format!("the application key may not use bucket {:?}", self.opts.bucket),
                    )
                })?
            }
            None => {
                let bs: api::Buckets =
                    self.call("OTHER", "b2_list_buckets", &json!({"accountId": a.id, "bucketName": self.opts.bucket}))?;
                bs.buckets.into_iter().find(|b| b.bucket_name == self.opts.bucket).map(|b| b.bucket_id).ok_or_else(
                    || Error::new(Kind::DirNotFound, format!("bucket {:?} does not exist", self.opts.bucket)),
                )?
            }
        };
        *self.bucket_id.lock().map_err(|_| Error::other("lock poisoned"))? = Some(id.clone());
        Ok(id)
    }

    /// The account's buckets (name, creation date unknown).
    pub fn list_buckets(&self) -> Result<Vec<(String, String)>> {
        let a = self.authorize()?;
        if let Some(allowed) = &a.allowed {
            return Ok(allowed.iter().map(|(_, n)| (n.clone(), String::new())).collect());
        }
        let bs: api::Buckets = self.call("OTHER", "b2_list_buckets", &json!({"accountId": a.id}))?;
        Ok(bs.buckets.into_iter().map(|b| (b.bucket_name, String::new())).collect())
    }

    fn list_page(&self, prefix: &str, max: u32, start: Option<&str>) -> Result<api::Files> {
        let mut body = json!({"bucketId": self.bucket_id()?, "prefix": prefix, "delimiter": "/", "maxFileCount": max});
        if let Some(s) = start {
            body["startFileName"] = Value::String(s.to_string());
        }
        self.call("LIST", "b2_list_file_names", &body)
    }

    fn file_info(&self, mtime: Nanos, large_sha1: Option<[u8; 20]>) -> Value {
        let mut info = json!({"src_last_modified_millis": mtime.div_euclid(1_000_000).to_string()});
        if let Some(s) = large_sha1 {
            info["large_file_sha1"] = Value::String(hex::encode(s));
        }
        info
    }

    /// POST `len` bytes from `open` (plus their SHA1) to an upload URL, fetching a fresh
    /// URL for every attempt after a failure; returns the answer and the SHA1 sent.
    fn upload<'s>(
        &self,
        get_url: &dyn Fn() -> Result<api::UploadUrl>,
        pool: Option<&Mutex<Vec<api::UploadUrl>>>,
        len: u64,
        headers: &[(String, String)],
        open: &(dyn Fn() -> Result<Box<dyn Read + Send + 's>> + Sync),
    ) -> Result<(HttpResponse, [u8; 20])> {
        let digest: Arc<Mutex<Option<[u8; 20]>>> = Arc::default();
        let slot = digest.clone();
        let body_open = move || {
            open().map(|inner| {
                Box::new(Sha1Appending {
                    inner,
                    hasher: Some(sha1::Sha1::new()),
                    tail: Vec::new(),
                    digest: slot.clone(),
                }) as Box<dyn Read + Send>
            })
        };
        let body = Body::Stream { len: len + 40, open: &body_open };
        let current: Mutex<Option<api::UploadUrl>> = Mutex::new(None);
        let classify = B2Classify { remote: self, target: Target::Upload, used: None };
        let result = self.http.send("UPLOAD", "", &body, &classify, &mut || {
            // A URL that failed once is never used again (B2's rule): it is dropped with
            // `current` and another one taken.
            let url = match pool.and_then(|p| p.lock().ok()?.pop()) {
                Some(u) => u,
                None => get_url()?,
            };
            let mut h = vec![
                ("authorization".into(), url.authorization_token.clone()),
                ("content-length".into(), (len + 40).to_string()),
                ("x-bz-content-sha1".into(), "hex_digits_at_end".into()),
            ];
            h.extend(headers.iter().cloned());
            let p = Prepared { method: "POST", url: url.upload_url.clone(), headers: h };
            if let Ok(mut c) = current.lock() {
                *c = Some(url);
            }
            Ok(p)
        });
        let resp = result?;
        if let (Some(pool), Some(url)) = (pool, current.lock().ok().and_then(|mut c| c.take()))
            && let Ok(mut p) = pool.lock()
        {
            p.push(url);
        }
        let sent = digest.lock().ok().and_then(|d| *d).ok_or_else(|| Error::other("the upload's SHA1 is missing"))?;
        Ok((resp, sent))
    }

    fn put_small(&self, name: &str, src: &dyn Source, mtime: Nanos, ctype: &str) -> Result<api::File> {
        let size = src.size();
        let bucket_id = self.bucket_id()?;
        let get_url = || self.call::<api::UploadUrl>("OTHER", "b2_get_upload_url", &json!({"bucketId": bucket_id}));
        let headers = vec![
            ("x-bz-file-name".to_string(), utf8_percent_encode(name, NAME).to_string()),
            ("content-type".to_string(), ctype.to_string()),
            ("x-bz-info-src_last_modified_millis".to_string(), mtime.div_euclid(1_000_000).to_string()),
        ];
        let open = || src.open_at(0, size);
        let (mut resp, sent) = self.upload(&get_url, Some(&self.upload_urls), size, &headers, &open)?;
        let f: api::File = parse(&read_body(&mut resp, MIB)?)?;
        check_sha1(f.sha1(), sent)?;
        src.mark_verified();
        Ok(f)
    }

    fn put_large(&self, name: &str, src: &dyn Source, mtime: Nanos, ctype: &str) -> Result<api::File> {
        let size = src.size();
        let plan = PartPlan::new(size, self.opts.chunk_size, 1, MAX_PARTS, MIB);
        // A large file's SHA1 must be named at the start (rclone's `large_file_sha1`):
        // read it first unless the source announced one.
        let whole = match src.announced_checksum().filter(|c| c.kind == HashType::Sha1) {
            Some(c) => c.value.try_into().map_err(|_| Error::other("bad SHA1"))?,
            None => {
                let mut h = sha1::Sha1::new();
                std::io::copy(&mut src.open_for_hash(0, size)?, &mut HashWrite(&mut h))
                    .map_err(|e| Error::from(e).with_path(name))?;
                <[u8; 20]>::from(h.finalize())
            }
        };
        let start: api::File = self.call(
            "OTHER",
            "b2_start_large_file",
            &json!({"bucketId": self.bucket_id()?, "fileName": name, "contentType": ctype,
                    "fileInfo": self.file_info(mtime, Some(whole))}),
        )?;
        let file_id = start.file_id.ok_or_else(|| Error::new(Kind::Protocol, "b2_start_large_file gave no fileId"))?;
        let done: Vec<Mutex<Option<[u8; 20]>>> = (0..plan.parts).map(|_| Mutex::new(None)).collect();
        let uploaded = upload_parts(&plan, self.opts.upload_concurrency, &done, &|i, offset, len| {
            let get_url =
                || self.call::<api::UploadUrl>("OTHER", "b2_get_upload_part_url", &json!({"fileId": file_id}));
            let headers = vec![("x-bz-part-number".to_string(), (i + 1).to_string())];
            let open = || src.open_at(offset, len);
            let (mut resp, sent) = self.upload(&get_url, None, len, &headers, &open)?;
            let part: api::Part = parse(&read_body(&mut resp, MIB)?)?;
            check_sha1(api::parse_sha1(&part.content_sha1), sent)?;
            Ok(sent)
        });
        let finish = || -> Result<api::File> {
            uploaded?;
            let shas: Vec<String> = done
                .iter()
                .map(|d| {
                    d.lock().ok().and_then(|d| *d).map(hex::encode).ok_or_else(|| Error::other("a part is missing"))
                })
                .collect::<Result<_>>()?;
            self.call("OTHER", "b2_finish_large_file", &json!({"fileId": file_id, "partSha1Array": shas}))
        };
        match finish() {
            Ok(f) => {
                src.mark_verified();
                Ok(f)
            }
            Err(e) => {
                if let Err(c) = self.call::<Value>("OTHER", "b2_cancel_large_file", &json!({"fileId": file_id})) {
                    log::warn!("{name}: could not cancel the unfinished large file: {c}");
                }
                Err(e)
            }
        }
    }

    fn entry_of(&self, name: Vec<u8>, f: &api::File) -> Entry {
        Entry {
            name,
            kind: EntryKind::File,
            size: f.size(),
            mtime: Some(f.mtime()),
            md5: None,
            extra: Extra {
                id: f.file_id.clone().map(Into::into),
                etag: f.sha1().map(|s| hex::encode(s).into()),
                server_time: Some(f.upload_timestamp.saturating_mul(1_000_000)),
                ..Extra::default()
            },
        }
    }
}

struct HashWrite<'a>(&'a mut sha1::Sha1);
impl std::io::Write for HashWrite<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_sha1(stored: Option<[u8; 20]>, sent: [u8; 20]) -> Result<()> {
    match stored {
        Some(s) if s != sent => Err(Error::new(
            Kind::Corrupted,
            format!(
                "corrupted on transfer: B2 stored SHA1 {} for data whose SHA1 is {}",
                hex::encode(s),
                hex::encode(sent)
            ),
        )
        .with_retryable(true)),
        _ => Ok(()),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| Error::new(Kind::Protocol, format!("malformed answer from B2: {e}")).with_retryable(true))
}

impl Remote for B2Remote {
    fn describe(&self) -> String {
        self.keys.describe()
    }

    fn features(&self) -> Features {
        bucket::features(Hashes::of(HashType::Sha1), 1_000_000, false)
    }

    fn root_state(&self) -> Result<RootState> {
        bucket::root_state(
            &self.keys,
            |prefix| self.list_page(prefix, 1, None).map(|p| !p.files.is_empty()),
            |key| {
                let p = self.list_page(key, 1, None)?;
                Ok(p.files.into_iter().find(|f| f.action == "upload").map(|f| f.file_name))
            },
        )
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let prefix = self.keys.dir_prefix(dir);
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let page = self
                .list_page(&prefix, self.opts.list_chunk, start.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            let items = page.files.len();
            for f in &page.files {
                let is_dir = match f.action.as_str() {
                    "folder" => true,
                    "upload" if !f.file_name.ends_with('/') => false,
                    _ => continue,
                };
                if let Some(name) = self.keys.child(dir, &prefix, &f.file_name, bad) {
                    out.push(if is_dir { Entry::dir(name, None) } else { self.entry_of(name, f) });
                }
            }
            start = guard
                .next(page.next_file_name.is_some(), items, page.next_file_name.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let name = self.name(path);
        let (len, ranged) = bucket::read_range(entry, offset, len);
        let listed_sha1 = entry.extra.etag.as_deref().and_then(api::parse_sha1);
        if ranged && len == 0 {
            return Ok(bucket::empty_read(entry));
        }
        let used = Mutex::new(None);
        let classify = B2Classify::api(self, &used);
        let resp = self
            .http
            .send_expecting("GET", "", &Body::Empty, &classify, &|s| (200..300).contains(&s), &mut || {
                let a = self.authorize()?;
                *used.lock().map_err(|_| Error::other("lock poisoned"))? = Some(a.token.clone());
                // By id: every range of one download reads the same version.
                let url = match &entry.extra.id {
                    Some(id) => format!(
                        "{}/b2api/v2/b2_download_file_by_id?fileId={}",
                        a.download_url,
                        utf8_percent_encode(id, NAME)
                    ),
                    None => format!(
                        "{}/file/{}/{}",
                        a.download_url,
                        utf8_percent_encode(&self.opts.bucket, NAME),
                        utf8_percent_encode(&name, NAME)
                    ),
                };
                let mut headers = vec![("authorization".to_string(), a.token.clone())];
                if ranged {
                    headers.push(("range".into(), format!("bytes={}-{}", offset, offset + len - 1)));
                }
                Ok(Prepared { method: "GET", url, headers })
            })
            .map_err(|e| e.with_path(self.shown(path)))?;
        bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        let sha1 = header(&resp, "x-bz-content-sha1")
            .and_then(api::parse_sha1)
            .or_else(|| header(&resp, "x-bz-info-large_file_sha1").and_then(api::parse_sha1))
            .or(listed_sha1);
        let mtime = entry.mtime.or_else(|| {
            header(&resp, "x-bz-info-src_last_modified_millis")
                .and_then(|v| v.parse::<i64>().ok())
                .map(|ms| ms * 1_000_000)
        });
        let mut o = Opened::plain(Box::new(resp.into_body().into_reader()));
        o.mtime = mtime;
        o.checksum = sha1.map(|s| Checksum { kind: HashType::Sha1, value: s.to_vec() });
        Ok(o)
    }

    fn hash(&self, _path: &RelPath, entry: &Entry, kind: HashType) -> Result<Option<Checksum>> {
        Ok(match kind {
            HashType::Sha1 => {
                entry.extra.etag.as_deref().and_then(api::parse_sha1).map(|s| Checksum { kind, value: s.to_vec() })
            }
            _ => None,
        })
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a file at the root itself"));
        }
        let name = self.name(path);
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let ctype = content_type(path.file_name());
        let size = src.size();
        let f = if size < self.opts.upload_cutoff.min(MAX_SINGLE) {
            self.put_small(&name, src, mtime, ctype)
        } else {
            self.put_large(&name, src, mtime, ctype)
        }
        .map_err(|e| e.with_path(self.shown(path)))?;
        let mut e = self.entry_of(path.file_name().to_vec(), &f);
        if e.size < 0 {
            e.size = size as i64;
        }
        Ok(e)
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, _meta: super::PosixMeta) -> Result<()> {
        // B2 changes file info only by copying the file onto itself (a new version).
        let (Some(id), true) = (&entry.extra.id, entry.size <= MAX_SINGLE as i64) else {
            return Err(Error::new(Kind::Unsupported, "can't set modification time without re-uploading"));
        };
        let name = self.name(path);
        let large = entry.extra.etag.as_deref().and_then(api::parse_sha1);
        let _: api::File = self
            .call(
                "OTHER",
                "b2_copy_file",
                &json!({"sourceFileId": id, "fileName": name, "metadataDirective": "REPLACE",
                        "contentType": content_type(path.file_name()), "fileInfo": self.file_info(mtime, large)}),
            )
            .map_err(|e| e.with_path(self.shown(path)))?;
        Ok(())
    }

    fn delete(&self, path: &RelPath, entry: &Entry) -> Result<()> {
        let name = self.name(path);
        let result = match (&entry.extra.id, self.opts.hard_delete) {
            (Some(id), true) => {
                self.call::<Value>("OTHER", "b2_delete_file_version", &json!({"fileId": id, "fileName": name}))
            }
            _ => self.call::<Value>("OTHER", "b2_hide_file", &json!({"bucketId": self.bucket_id()?, "fileName": name})),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::NotFound || e.message().contains("already_hidden") => Ok(()),
            Err(e) => Err(e.with_path(self.shown(path))),
        }
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        if !dir.is_root() {
            return Ok(()); // file names have no directories
        }
        match self.bucket_id() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == Kind::DirNotFound => {
                let a = self.authorize()?;
                let _: Value = self.call(
                    "OTHER",
                    "b2_create_bucket",
                    &json!({"accountId": a.id, "bucketName": self.opts.bucket, "bucketType": "allPrivate"}),
                )?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(format!("b2:{}/{}/{}", self.opts.endpoint, self.opts.bucket, self.opts.prefix))
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_goes_after_the_data() {
        let digest = Arc::default();
        let mut r = Sha1Appending {
            inner: Box::new(&b"abc"[..]),
            hasher: Some(sha1::Sha1::new()),
            tail: Vec::new(),
            digest: Arc::clone(&digest),
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abca9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex::encode(digest.lock().unwrap().unwrap()), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn chunk_rule_and_redaction() {
        let o = B2Options::new("id", "sekrit", "b", "/p/").with_chunk_mib(300);
        assert_eq!((o.chunk_size, o.upload_cutoff), (300 * MIB, 300 * MIB));
        assert_eq!(B2Options::new("id", "k", "b", "").with_chunk_mib(2).chunk_size, 5 * MIB);
        assert!(!format!("{o:?}").contains("sekrit"));
    }
}
