//! Amazon S3 and every S3-compatible service.
//!
//! Listings use `ListObjectsV2` with `delimiter=/` one directory at a time (never an
//! empty `delimiter=`), paginated. Modification times live in `X-Amz-Meta-Mtime` exactly
//! as rclone writes them, so each tool reads the other's. Listings do not return user
//! metadata; instead of rclone's HEAD per object, this remote answers from the metadata
//! index whenever the listed size, ETag and LastModified match what it recorded, and
//! HEADs only on a miss. Prefixes are never HEADed (some servers answer 500).
//!
//! Uploads stream from a re-openable [`Source`]: below the cutoff one PUT, verified
//! against the returned ETag; above it a multipart upload whose parts are read in
//! parallel straight from the source (no part buffers), each verified against its part
//! ETag, the whole against the md5-of-md5s ETag; any failure aborts the upload, so no
//! partial object is ever left behind.

/// cbindgen:ignore
pub mod client;
pub mod provider;
pub use crate::remote::kit::time;
pub mod xml;

use self::client::{Body, Client, ClientConfig, Op, Request, header, read_body};
use super::hash::{Checksum, HashType};
use super::kit::bucket::{self, Listed, validate};
use super::kit::chunked::{PartPlan, upload_parts};
use super::kit::mime::content_type;
use super::kit::paginate::PageGuard;
use super::{Entry, EntryKind, Extra, Features, Md5, Nanos, Opened, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::index::{Index, JournalPart, ObjectMeta, UploadRecord};
use crate::path::{RelPath, decode_key_segment, display_bytes, encode_key_segment};
use crate::process::Owner;
use base64::Engine as _;
use md5::Digest;
use std::io::Read;
use std::sync::{Arc, Mutex};

const MIB: u64 = 1024 * 1024;
/// The largest object CopyObject can copy in one request.
const MAX_COPY: i64 = 5 * 1024 * MIB as i64;

/// Settings of an S3 remote besides the connection.
#[derive(Clone, Debug)]
pub struct S3Options {
    pub client: ClientConfig,
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`.
    pub prefix: String,
    pub storage_class: Option<String>,
    /// Server-side encryption (`AES256`).
    pub server_side_encryption: Option<String>,
    /// Files at least this large use multipart upload (rclone default 200 MiB).
    pub upload_cutoff: u64,
    /// Part size; raised automatically so a file fits in `max_upload_parts`.
    pub chunk_size: u64,
    /// Parts in flight per file.
    pub upload_concurrency: usize,
    pub max_upload_parts: u64,
    pub list_chunk: u32,
    /// Connections kept open (transfers × upload concurrency is a good value).
    pub max_connections: usize,
    /// A cancelled multipart upload stays on the server, journaled, for the next run to
    /// resume (task jobs, which TrueNAS restarts); otherwise (the CLI's one-shot copies) it
    /// is aborted at once. Without an index it is always aborted.
    pub keep_cancelled_uploads: bool,
}

impl S3Options {
    pub fn new(client: ClientConfig, bucket: &str, prefix: &str) -> S3Options {
        S3Options {
            client,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
            storage_class: None,
            server_side_encryption: None,
            upload_cutoff: 200 * MIB,
            chunk_size: 5 * MIB,
            upload_concurrency: 4,
            max_upload_parts: 10_000,
            list_chunk: 1000,
            max_connections: 32,
            keep_cancelled_uploads: false,
        }
    }
}

pub struct S3Remote {
    client: Client,
    opts: S3Options,
    index: Option<Arc<Index>>,
    /// Identifies this bucket in the metadata index.
    remote_id: String,
}

fn md5_from_etag(etag: &str) -> Option<Md5> {
    let e = etag.trim().trim_matches('"');
    if e.len() == 32 && e.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        hex::decode(e).ok()?.try_into().ok()
    } else {
        None
    }
}

/// The content MD5 that a GET or HEAD answer tells: the `ETag` of a single-part object
/// (unless SSE-KMS or SSE-C made it something else), else rclone's `Md5chksum` metadata
/// (what it stores with multipart uploads).
fn announced_md5<'r>(get: impl Fn(&str) -> Option<&'r str>) -> Option<Md5> {
    let etag_is_md5 = get("x-amz-server-side-encryption").is_none_or(|v| v.eq_ignore_ascii_case("AES256"))
        && get("x-amz-server-side-encryption-customer-algorithm").is_none();
    etag_is_md5.then(|| get("etag").and_then(md5_from_etag)).flatten().or_else(|| {
        get("x-amz-meta-md5chksum")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()).ok())
            .and_then(|v| v.try_into().ok())
    })
}

/// The strongest full-object `x-amz-checksum-*` a GET or HEAD answer tells (asked for
/// with `x-amz-checksum-mode: ENABLED`). A composite checksum of a multipart upload (a
/// checksum of the parts' checksums, `...-N` or `x-amz-checksum-type: COMPOSITE`) says
/// nothing about the whole content and is left out.
fn announced_checksum<'r>(get: impl Fn(&str) -> Option<&'r str>) -> Option<Checksum> {
    if get("x-amz-checksum-type").is_some_and(|t| t.eq_ignore_ascii_case("COMPOSITE")) {
        return None;
    }
    [
        ("x-amz-checksum-sha256", HashType::Sha256, 32),
        ("x-amz-checksum-sha1", HashType::Sha1, 20),
        ("x-amz-checksum-crc64nvme", HashType::Crc64Nvme, 8),
        ("x-amz-checksum-crc32c", HashType::Crc32c, 4),
        ("x-amz-checksum-crc32", HashType::Crc32, 4),
    ]
    .into_iter()
    .find_map(|(name, kind, len)| {
        let v = get(name)?.trim();
        if v.contains('-') {
            return None;
        }
        let value = base64::engine::general_purpose::STANDARD.decode(v).ok().filter(|b| b.len() == len)?;
        Some(Checksum { kind, value })
    })
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl S3Remote {
    pub fn new(opts: S3Options, index: Option<Arc<Index>>) -> Result<S3Remote> {
        if opts.bucket.is_empty() {
            return Err(Error::usage("an S3 remote needs a bucket name"));
        }
        if opts.bucket.contains('/') {
            return Err(Error::usage(format!("invalid bucket name {:?}", opts.bucket)));
        }
        let client = Client::new(opts.client.clone(), opts.max_connections)?;
        let remote_id = format!("s3:{}/{}", client.endpoint_id(), opts.bucket);
        Ok(S3Remote { client, opts, index, remote_id })
    }

    /// The HTTP client, for operations outside the `Remote` trait (bucket listing).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The object key of a path (each segment encoded as rclone does).
    fn key(&self, path: &RelPath) -> String {
        let mut k = self.opts.prefix.clone();
        for seg in path.segments() {
            if !k.is_empty() {
                k.push('/');
            }
            k.push_str(&encode_key_segment(seg));
        }
        k
    }

    fn dir_prefix(&self, dir: &RelPath) -> String {
        let k = self.key(dir);
        if k.is_empty() { k } else { k + "/" }
    }

    fn shown(&self, path: &RelPath) -> String {
        format!("s3:{}/{}", self.opts.bucket, self.key(path))
    }

    fn index_loc(&self, path: &RelPath) -> (String, String) {
        (self.key(&path.parent()), encode_key_segment(path.file_name()))
    }

    /// Before an object is overwritten (or its metadata replaced): see
    /// [`Index::forget_object_now`].
    fn forget_now(&self, path: &RelPath) {
        if let Some(index) = &self.index {
            let (dir, name) = self.index_loc(path);
            index.forget_object_now(&self.remote_id, &dir, &name);
        }
    }

    fn remember(&self, path: &RelPath, meta: ObjectMeta) {
        if let Some(index) = &self.index {
            let (dir, name) = self.index_loc(path);
            index.put_object(&self.remote_id, &dir, &name, meta);
        }
    }

    fn list_page(&self, prefix: &str, max_keys: u32, token: Option<&str>) -> Result<xml::ListPage> {
        let mut req = Request::new(Op::List, "GET", Some(&self.opts.bucket), None)
            .query("list-type", "2")
            .query("prefix", prefix)
            .query("delimiter", "/")
            .query("max-keys", max_keys.to_string())
            .query("encoding-type", "url");
        if let Some(t) = token {
            req = req.query("continuation-token", t);
        }
        // A garbled page is asked for again like a failed request.
        self.client.call(&req, 64 * MIB, xml::parse_list).map_err(|e| e.with_remote(self.describe()))
    }

    /// HEAD an object and record what it tells (mtime, md5) in the index.
    fn head_meta(&self, path: &RelPath, entry: &Entry) -> Result<(Nanos, Option<Md5>)> {
        let key = self.key(path);
        let req = Request::new(Op::Head, "HEAD", Some(&self.opts.bucket), Some(&key));
        let resp = self.client.send(&req).map_err(|e| e.with_path(self.shown(path)))?;
        let mtime = header(&resp, "x-amz-meta-mtime")
            .and_then(time::parse_mtime)
            .or(entry.extra.server_time)
            .or_else(|| header(&resp, "last-modified").and_then(time::parse_http_date))
            .ok_or_else(|| Error::new(Kind::Protocol, "object has no modification time").with_path(self.shown(path)))?;
        let md5 = entry.md5.or_else(|| announced_md5(|name| header(&resp, name)));
        if let Some(etag) = &entry.extra.etag {
            self.remember(
                path,
                ObjectMeta {
                    size: entry.size,
                    etag: etag.to_string(),
                    server_time: entry.extra.server_time,
                    mtime,
                    md5,
                },
            );
        }
        Ok((mtime, md5))
    }

    fn storage_headers<'r>(&self, mut req: Request<'r>, storage_class: Option<&str>) -> Request<'r> {
        if let Some(sc) = storage_class.or(self.opts.storage_class.as_deref()).filter(|s| !s.is_empty()) {
            req = req.header("x-amz-storage-class", sc);
        }
        if let Some(sse) = self.opts.server_side_encryption.as_deref().filter(|s| !s.is_empty()) {
            req = req.header("x-amz-server-side-encryption", sse);
        }
        req
    }

    fn put_single(
        &self,
        key: &str,
        src: &dyn Source,
        info: &PutInfo,
        mtime: Nanos,
        ctype: &str,
    ) -> Result<(String, Option<Md5>)> {
        let size = src.size();
        let open = || src.open_at(0, size);
        let mut req = Request::new(Op::Put, "PUT", Some(&self.opts.bucket), Some(key))
            .header("content-type", ctype)
            .header("x-amz-meta-mtime", time::format_mtime(mtime))
            .body(Body::Stream { len: size, open: &open });
        req = with_posix_meta(req, posix_of(info));
        if let Some(md5) = info.md5 {
            req = req.header("content-md5", base64::engine::general_purpose::STANDARD.encode(md5));
        }
        let req = self.storage_headers(req, None);
        let resp = self.client.send(&req)?;
        let etag = header(&resp, "etag").unwrap_or_default().to_string();
        Ok((etag.clone(), md5_from_etag(&etag).or(info.md5)))
    }

    fn put_multipart(
        &self,
        key: &str,
        src: &dyn Source,
        info: &PutInfo,
        mtime: Nanos,
        ctype: &str,
    ) -> Result<(String, Option<Md5>)> {
        let size = src.size();
        let plan = PartPlan::new(size, self.opts.chunk_size, 5 * MIB, self.opts.max_upload_parts, MIB);
        let (chunk, parts) = (plan.chunk, plan.parts);
        let mut req = Request::new(Op::Post, "POST", Some(&self.opts.bucket), Some(key))
            .query("uploads", "")
            .header("content-type", ctype)
            .header("x-amz-meta-mtime", time::format_mtime(mtime));
        req = with_posix_meta(req, posix_of(info));
        // A multipart ETag is no MD5: record the content's MD5 as rclone does, so that
        // rclone and later runs can verify the object by content. Unless the index knew it,
        // this reads the source once before the upload (rclone does the same).
        let content_md5 = match info.md5 {
            Some(md5) => md5,
            None => src.content_md5()?,
        };
        req = req.header("x-amz-meta-md5chksum", base64::engine::general_purpose::STANDARD.encode(content_md5));
        let req = self.storage_headers(req, None);
        let results: Vec<Mutex<Option<(String, Md5)>>> = (0..parts).map(|_| Mutex::new(None)).collect();
        let upload_id = match self.resume_upload(key, src, chunk, &results)? {
            Some(id) => id,
            None => {
                let mut resp = self.client.send(&req)?;
                let id = xml::parse_upload_id(&read_body(&mut resp, MIB)?)?;
                self.journal_start(key, &id, src, chunk);
                id
            }
        };
        let uploaded = upload_parts(&plan, self.opts.upload_concurrency, &results, &|i, offset, len| {
            let r = self.upload_part(key, &upload_id, i + 1, src, offset, len)?;
            if let Some(index) = &self.index {
                let part = JournalPart { number: i + 1, etag: r.0.clone(), md5: r.1, size: len };
                if let Err(e) = index.journal_part(&self.remote_id, key, &upload_id, &part) {
                    log::warn!("{key}: {e}");
                }
            }
            Ok(r)
        });
        let finish = || -> Result<(String, Option<Md5>)> {
            uploaded?;
            let mut body = String::from("<CompleteMultipartUpload>");
            let mut md5s = md5::Md5::new();
            for (i, r) in results.iter().enumerate() {
                let r = r.lock().map_err(|_| Error::other("lock poisoned"))?;
                let (etag, md5) = r.as_ref().ok_or_else(|| Error::other("a part is missing"))?;
                md5s.update(md5);
                body.push_str(&format!(
                    "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                    i + 1,
                    xml::escape(etag)
                ));
            }
            body.push_str("</CompleteMultipartUpload>");
            let req = Request::new(Op::Post, "POST", Some(&self.opts.bucket), Some(key))
                .query("uploadId", upload_id.as_str())
                .header("content-type", "application/xml")
                .body(Body::Bytes(body.as_bytes()));
            let mut resp = self.client.send(&req)?;
            let (etag, _) = xml::parse_result_etag(&read_body(&mut resp, MIB)?)?;
            let expected = format!("{}-{}", hex::encode(md5s.finalize()), parts);
            let got = etag.trim().trim_matches('"');
            if got.contains('-') && got != expected {
                let _ = self.client.send(&Request::new(Op::Delete, "DELETE", Some(&self.opts.bucket), Some(key)));
                return Err(Error::new(
                    Kind::Corrupted,
                    format!("corrupted on transfer: multipart ETag {got} is not the expected {expected}"),
                )
                .with_retryable(true));
            }
            Ok((etag, Some(content_md5)))
        };
        let result = finish();
        let cancelled = result.as_ref().is_err_and(Error::is_cancelled);
        if cancelled && self.opts.keep_cancelled_uploads && self.index.is_some() {
            log::info!("{key}: the unfinished upload is kept for the next run to resume");
        } else if result.is_err() {
            self.abort_upload(key, &upload_id);
        } else if let Some(index) = &self.index {
            index.journal_end(&self.remote_id, key, &upload_id);
        }
        result
    }

    /// Abort a multipart upload and forget it (a failed abort stays in the journal, for
    /// the next run to try again).
    fn abort_upload(&self, key: &str, upload_id: &str) {
        let abort = Request::new(Op::Delete, "DELETE", Some(&self.opts.bucket), Some(key)).query("uploadId", upload_id);
        match self.client.send(&abort) {
            Ok(_) => {}
            Err(e) if e.http_status() == Some(404) => {} // gone already
            Err(e) if e.http_status().is_some_and(|s| (400..500).contains(&s)) => {
                // Refused for good (no such upload on servers that say 403, or no right to
                // abort): trying again on every run would change nothing.
                log::warn!("{}: could not abort the multipart upload, forgetting it: {e}", key);
            }
            Err(e) => {
                log::warn!("{}: could not abort the multipart upload: {e}", key);
                return;
            }
        }
        if let Some(index) = &self.index {
            index.journal_end(&self.remote_id, key, upload_id);
        }
    }

    fn journal_start(&self, key: &str, upload_id: &str, src: &dyn Source, chunk: u64) {
        let Some(index) = &self.index else { return };
        let rec = UploadRecord {
            key: key.to_string(),
            session: upload_id.to_string(),
            source: src.fingerprint().unwrap_or_default(),
            part_size: chunk,
            started: now_secs(),
            owner: Owner::me(),
        };
        if let Err(e) = index.journal_start(&self.remote_id, &rec) {
            log::warn!("{key}: the upload is not journaled, a crash would leave it behind: {e}");
        }
    }

    /// Take up the interrupted upload of the same source version to `key`, if one is
    /// journaled: its parts that hold exactly the bytes the source has now (same size and
    /// MD5 as read again locally) are kept in `results`. Every other session of `key` whose
    /// owner is gone is aborted. Returns the upload id to continue.
    fn resume_upload(
        &self,
        key: &str,
        src: &dyn Source,
        chunk: u64,
        results: &[Mutex<Option<(String, Md5)>>],
    ) -> Result<Option<String>> {
        let Some(index) = &self.index else { return Ok(None) };
        let me = Owner::me();
        let fingerprint = src.fingerprint();
        let size = src.size();
        let mut resumed = None;
        for rec in index.journal(&self.remote_id, Some(key)) {
            if rec.owner != me && rec.owner.alive() {
                continue; // another running process's upload
            }
            let same = fingerprint.as_deref().is_some_and(|f| !f.is_empty() && f == rec.source);
            if resumed.is_none() && same && rec.part_size == chunk {
                let listed = match self.list_parts(key, &rec.session) {
                    Ok(l) => l,
                    Err(e) if e.http_status() == Some(404) => {
                        index.journal_end(&self.remote_id, key, &rec.session);
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // A part is kept when the server still has it (same size, same ETag where
                // the listing tells one), the journal recorded it as verified, and the
                // source still holds the same bytes there (read again locally).
                let on_server: std::collections::HashMap<u64, (String, u64)> =
                    listed.into_iter().map(|(n, etag, size)| (n, (etag, size))).collect();
                let (mut kept, mut kept_bytes) = (0u64, 0u64);
                for part in index.journal_parts(&self.remote_id, key, &rec.session) {
                    let Some(slot) = part.number.checked_sub(1).and_then(|i| results.get(i as usize)) else { continue };
                    let offset = (part.number - 1) * chunk;
                    let len = chunk.min(size - offset);
                    let present = on_server.get(&part.number).is_some_and(|(etag, stored)| {
                        *stored == len && (etag.is_empty() || etag.trim_matches('"') == part.etag.trim_matches('"'))
                    });
                    if !present || part.size != len {
                        continue;
                    }
                    let md5 = super::hash::md5_of(&mut src.open_for_hash(offset, len)?)?;
                    if md5 == part.md5
                        && let Ok(mut slot) = slot.lock()
                    {
                        *slot = Some((part.etag, md5));
                        kept += 1;
                        kept_bytes += len;
                    }
                }
                if kept == 0 {
                    // Nothing of it can be used (or the server no longer knows it, which
                    // some servers answer with an empty part list): start over.
                    self.abort_upload(key, &rec.session);
                    continue;
                }
                let _ = index.journal_start(&self.remote_id, &UploadRecord { owner: me, ..rec.clone() });
                log::info!(
                    "{}: resuming an interrupted upload: {kept} of {} parts ({kept_bytes} bytes) are stored already",
                    key,
                    results.len()
                );
                resumed = Some(rec.session);
                continue;
            }
            self.abort_upload(key, &rec.session);
        }
        Ok(resumed)
    }

    /// The parts of an unfinished upload: (number, ETag, size).
    fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<(u64, String, u64)>> {
        let mut out = Vec::new();
        let mut guard = PageGuard::new();
        let mut marker: Option<String> = None;
        loop {
            let mut req = Request::new(Op::List, "GET", Some(&self.opts.bucket), Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", "1000");
            if let Some(m) = &marker {
                req = req.query("part-number-marker", m.as_str());
            }
            let mut resp = self.client.send(&req)?;
            let page = xml::parse_parts(&read_body(&mut resp, 16 * MIB)?)?;
            let items = page.parts.len();
            out.extend(page.parts);
            marker = guard.next(page.truncated, items, page.next_marker.as_deref())?;
            if marker.is_none() {
                return Ok(out);
            }
        }
    }

    fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u64,
        src: &dyn Source,
        offset: u64,
        len: u64,
    ) -> Result<(String, Md5)> {
        let hasher = Arc::new(Mutex::new(md5::Md5::new()));
        let open = || -> Result<Box<dyn Read + Send + '_>> {
            if let Ok(mut h) = hasher.lock() {
                *h = md5::Md5::new();
            }
            Ok(Box::new(super::hash::Md5Tee { inner: src.open_at(offset, len)?, hasher: hasher.clone() }))
        };
        let req = Request::new(Op::Put, "PUT", Some(&self.opts.bucket), Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .body(Body::Stream { len, open: &open });
        let resp = self.client.send(&req)?;
        let etag = header(&resp, "etag").unwrap_or_default().to_string();
        let md5: Md5 = hasher.lock().map_err(|_| Error::other("lock poisoned"))?.clone().finalize().into();
        if let Some(server) = md5_from_etag(&etag)
            && server != md5
        {
            return Err(Error::new(Kind::Corrupted, format!("corrupted on transfer: part {number} MD5 differs"))
                .with_retryable(true));
        }
        Ok((etag, md5))
    }

    /// The buckets of this account (the bucket of this remote does not matter).
    pub fn list_buckets(&self) -> Result<Vec<(String, String)>> {
        let mut resp = self.client.send(&Request::new(Op::List, "GET", None, None))?;
        xml::parse_buckets(&read_body(&mut resp, 16 * MIB)?)
    }

    /// Create this remote's bucket as `rclone mkdir` does: one the account already owns is
    /// not an error, a name another account holds is.
    pub fn make_bucket(&self) -> Result<()> {
        match self.put_bucket() {
            Err(e) if e.http_status() == Some(409) && e.to_string().contains("BucketAlreadyOwnedByYou") => Ok(()),
            r => r,
        }
    }

    fn create_bucket(&self) -> Result<()> {
        match self.put_bucket() {
            Err(e) if e.http_status() == Some(409) => Ok(()), // exists already (ours)
            r => r,
        }
    }

    fn put_bucket(&self) -> Result<()> {
        let region = self.opts.client.region.as_str();
        let body = if region.is_empty() || region == "us-east-1" {
            String::new()
        } else {
            format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                xml::escape(region)
            )
        };
        let req = Request::new(Op::Put, "PUT", Some(&self.opts.bucket), None).body(Body::Bytes(body.as_bytes()));
        self.client.send(&req).map(drop)
    }
}

impl Remote for S3Remote {
    fn describe(&self) -> String {
        if self.opts.prefix.is_empty() {
            format!("s3:{}", self.opts.bucket)
        } else {
            format!("s3:{}/{}", self.opts.bucket, self.opts.prefix)
        }
    }

    fn features(&self) -> Features {
        bucket::features(super::hash::Hashes::of(HashType::Md5), 1, true)
    }

    fn root_state(&self) -> Result<RootState> {
        let keys = bucket::Keys::new("s3", &self.opts.bucket, &self.opts.prefix, bucket::Codec::S3);
        bucket::root_state(
            &keys,
            |prefix| self.list_page(prefix, 1, None).map(|p| !p.objects.is_empty() || !p.prefixes.is_empty()),
            |key| Ok(self.list_page(key, 1, None)?.objects.into_iter().next().map(|o| o.key)),
        )
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let prefix = self.dir_prefix(dir);
        let known = self.index.as_ref().map(|i| i.object_dir(&self.remote_id, &self.key(dir))).unwrap_or_default();
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        let mut guard = PageGuard::new();
        loop {
            let page = self
                .list_page(&prefix, self.opts.list_chunk, token.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)))?;
            let items = page.objects.len() + page.prefixes.len();
            for o in page.objects {
                let Some(rest) = o.key.strip_prefix(&prefix) else {
                    continue;
                };
                if rest.is_empty() {
                    continue; // a directory marker for this directory itself
                }
                let name = decode_key_segment(rest);
                if let Err(e) = dir.join(&name) {
                    bad(e.with_path(format!("s3:{}/{}", self.opts.bucket, o.key)));
                    continue;
                }
                let server_time = time::parse_iso8601(&o.last_modified);
                let mut md5 = md5_from_etag(&o.etag);
                let mut mtime = None;
                if let Some(m) = known.get(rest)
                    && let Some(adopt) = validate(m, &Listed { size: o.size, etag: &o.etag }, server_time, md5)
                {
                    mtime = Some(m.mtime);
                    md5 = md5.or(m.md5);
                    if let (Some(index), Some(updated)) = (&self.index, adopt) {
                        index.put_object(&self.remote_id, &self.key(dir), rest, updated);
                    }
                }
                out.push(Entry {
                    name,
                    kind: EntryKind::File,
                    size: o.size,
                    mtime,
                    md5,
                    extra: Extra {
                        etag: Some(o.etag.into()),
                        server_time,
                        storage_class: o.storage_class.map(Into::into),
                        ..Extra::default()
                    },
                });
            }
            for p in page.prefixes {
                let Some(rest) = p.strip_prefix(&prefix).and_then(|r| r.strip_suffix('/')) else {
                    continue;
                };
                let name = decode_key_segment(rest);
                if let Err(e) = dir.join(&name) {
                    bad(e.with_path(format!("s3:{}/{}", self.opts.bucket, p)));
                    continue;
                }
                out.push(Entry::dir(name, None));
            }
            token = guard
                .next(page.truncated, items, page.next_token.as_deref())
                .map_err(|e| e.with_path(self.shown(dir)).with_remote(self.describe()))?;
            if token.is_none() {
                break;
            }
        }
        Ok(out)
    }

    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        match entry.mtime {
            Some(t) => Ok(t),
            None => Ok(self.head_meta(path, entry)?.0),
        }
    }

    fn md5(&self, path: &RelPath, entry: &Entry) -> Result<Option<Md5>> {
        if entry.md5.is_some() {
            return Ok(entry.md5);
        }
        Ok(self.head_meta(path, entry)?.1)
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
        let key = self.key(path);
        let size = entry.size.max(0) as u64;
        let len = len.min(size.saturating_sub(offset));
        // Ask for the object's own checksum too (S3 answers it only when asked).
        let mut req =
            Request::new(Op::Get, "GET", Some(&self.opts.bucket), Some(&key)).header("x-amz-checksum-mode", "ENABLED");
        let ranged = offset > 0 || len < size;
        if ranged {
            if len == 0 {
                return Ok(Opened {
                    reader: Box::new(std::io::empty()),
                    mtime: entry.mtime,
                    meta: crate::remote::PosixMeta::default(),
                    md5: entry.md5,
                    checksum: None,
                });
            }
            req = req.header("range", format!("bytes={}-{}", offset, offset + len - 1));
            // Every range of one download must come from the same version of the object.
            if let Some(etag) = entry.extra.etag.as_deref().filter(|e| !e.is_empty()) {
                req = req.header("if-match", etag);
            }
        }
        let resp = self.client.send(&req).map_err(|e| e.with_path(self.shown(path)))?;
        bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        let mtime = entry
            .mtime
            .or_else(|| header(&resp, "x-amz-meta-mtime").and_then(time::parse_mtime))
            .or(entry.extra.server_time);
        if entry.mtime.is_none()
            && let (Some(t), Some(etag)) = (mtime, &entry.extra.etag)
        {
            self.remember(
                path,
                ObjectMeta {
                    size: entry.size,
                    etag: etag.to_string(),
                    server_time: entry.extra.server_time,
                    mtime: t,
                    md5: entry.md5,
                },
            );
        }
        let meta = posix_meta_from(|name| header(&resp, name));
        let md5 = entry.md5.or_else(|| announced_md5(|name| header(&resp, name)));
        let checksum = if md5.is_none() { announced_checksum(|name| header(&resp, name)) } else { None };
        Ok(Opened { reader: Box::new(resp.into_body().into_reader()), mtime, meta, md5, checksum })
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write an object at the root itself"));
        }
        let key = self.key(path);
        let size = src.size();
        let mtime = match info.mtime {
            Some(t) => t,
            None => src.mtime()?,
        };
        let ctype = content_type(path.file_name());
        self.forget_now(path);
        let (etag, md5) = if size < self.opts.upload_cutoff {
            self.put_single(&key, src, info, mtime, ctype)
        } else {
            self.put_multipart(&key, src, info, mtime, ctype)
        }
        .map_err(|e| e.with_path(self.shown(path)))?;
        self.remember(path, ObjectMeta { size: size as i64, etag: etag.clone(), server_time: None, mtime, md5 });
        Ok(Entry {
            name: path.file_name().to_vec(),
            kind: EntryKind::File,
            size: size as i64,
            mtime: Some(mtime),
            // A single PUT: the ETag the server computed. A multipart upload: every part
            // matched the server's MD5 of it, and the object records the content MD5.
            md5: md5_from_etag(&etag).or(md5),
            extra: Extra { etag: Some(etag.into()), ..Extra::default() },
        })
    }

    fn set_mod_time(&self, path: &RelPath, entry: &Entry, mtime: Nanos, meta: crate::remote::PosixMeta) -> Result<()> {
        let class = entry.extra.storage_class.as_deref().unwrap_or("");
        if matches!(class, "GLACIER" | "DEEP_ARCHIVE") || entry.size > MAX_COPY {
            return Err(Error::new(Kind::Unsupported, "can't set modification time without re-uploading"));
        }
        let key = self.key(path);
        self.forget_now(path);
        let source = format!("/{}/{}", self.opts.bucket, percent_encoding::utf8_percent_encode(&key, client_key_set()));
        let md5 = entry.md5.or_else(|| self.cached_md5(path, entry));
        // The copy replaces all user metadata: the source's POSIX metadata is written
        // again with the new time.
        let kept = meta;
        let mut req = Request::new(Op::Copy, "PUT", Some(&self.opts.bucket), Some(&key))
            .header("x-amz-copy-source", source)
            .header("x-amz-metadata-directive", "REPLACE")
            .header("content-type", content_type(path.file_name()))
            .header("x-amz-meta-mtime", time::format_mtime(mtime));
        req = with_posix_meta(req, kept);
        if let (Some(m), None) = (md5, entry.extra.etag.as_deref().and_then(md5_from_etag)) {
            req = req.header("x-amz-meta-md5chksum", base64::engine::general_purpose::STANDARD.encode(m));
        }
        let req = self.storage_headers(req, (!class.is_empty()).then_some(class));
        let mut resp = self.client.send(&req).map_err(|e| e.with_path(self.shown(path)))?;
        let (etag, last_modified) = xml::parse_result_etag(&read_body(&mut resp, MIB)?)?;
        let etag = if etag.is_empty() { entry.extra.etag.as_deref().unwrap_or_default().to_string() } else { etag };
        self.remember(
            path,
            ObjectMeta {
                size: entry.size,
                etag,
                server_time: last_modified.as_deref().and_then(time::parse_iso8601),
                mtime,
                md5,
            },
        );
        Ok(())
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        let key = self.key(path);
        let req = Request::new(Op::Delete, "DELETE", Some(&self.opts.bucket), Some(&key));
        match self.client.send(&req) {
            Ok(_) => {}
            Err(e) if e.kind() == Kind::NotFound => {}
            Err(e) => return Err(e.with_path(self.shown(path))),
        }
        if let Some(index) = &self.index {
            let (dir, name) = self.index_loc(path);
            index.forget_object(&self.remote_id, &dir, &name);
        }
        Ok(())
    }

    fn delete_many(&self, items: &[(RelPath, Entry)], report: &mut dyn FnMut(&RelPath, Result<()>)) {
        if items.len() < 2 {
            for (p, e) in items {
                report(p, self.delete(p, e));
            }
            return;
        }
        let keys: Vec<String> = items.iter().map(|(p, _)| self.key(p)).collect();
        let mut body = String::from("<Delete><Quiet>true</Quiet>");
        for k in &keys {
            body.push_str(&format!("<Object><Key>{}</Key></Object>", xml::escape(k)));
        }
        body.push_str("</Delete>");
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()));
        let req = Request::new(Op::Post, "POST", Some(&self.opts.bucket), None)
            .query("delete", "")
            .header("content-md5", md5)
            .header("content-type", "application/xml")
            .body(Body::Bytes(body.as_bytes()));
        let failures = match self
            .client
            .send(&req)
            .and_then(|mut r| read_body(&mut r, 16 * MIB))
            .and_then(|b| xml::parse_delete_errors(&b))
        {
            Ok(f) => f,
            Err(e) => {
                log::debug!("batch delete failed ({e}); deleting one by one");
                for (p, e) in items {
                    report(p, self.delete(p, e));
                }
                return;
            }
        };
        for ((path, _), key) in items.iter().zip(&keys) {
            match failures.iter().find(|(k, _)| k == key) {
                Some((_, why)) => report(
                    path,
                    Err(Error::new(Kind::Server, format!("delete failed: {why}")).with_path(self.shown(path))),
                ),
                None => {
                    if let Some(index) = &self.index {
                        let (dir, name) = self.index_loc(path);
                        index.forget_object(&self.remote_id, &dir, &name);
                    }
                    report(path, Ok(()))
                }
            }
        }
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        if dir.is_root() && self.opts.prefix.is_empty() {
            if let Err(e) = self.list_page("", 1, None) {
                if e.kind() == Kind::DirNotFound {
                    return self.create_bucket();
                }
                return Err(e);
            }
        } else if dir.is_root()
            && let Err(e) = self.list_page("", 1, None)
            && e.kind() == Kind::DirNotFound
        {
            return self.create_bucket();
        }
        Ok(())
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let Some(index) = &self.index else { return Ok(0) };
        let me = Owner::me();
        let mut removed = 0;
        for rec in index.journal(&self.remote_id, None) {
            let p = &self.opts.prefix;
            let mine = p.is_empty() || rec.key.strip_prefix(p.as_str()).is_some_and(|rest| rest.starts_with('/'));
            if !mine || (rec.owner != me && rec.owner.alive()) {
                continue;
            }
            log::info!("{}: aborting an upload an interrupted run left unfinished", rec.key);
            self.abort_upload(&rec.key, &rec.session);
            removed += 1;
        }
        Ok(removed)
    }

    fn flush(&self) {
        if let Some(index) = &self.index {
            index.flush();
        }
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        let mut k = format!("{}/{}", self.remote_id, self.opts.prefix);
        while k.ends_with('/') {
            k.pop();
        }
        Some(k)
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.client.request_counts()
    }
}

fn client_key_set() -> &'static percent_encoding::AsciiSet {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');
    SET
}

impl std::fmt::Debug for S3Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Remote({})", display_bytes(self.describe().as_bytes()))
    }
}

/// The POSIX metadata a put records (local sources only).
fn posix_of(info: &PutInfo) -> crate::remote::PosixMeta {
    crate::remote::PosixMeta { mode: info.mode, uid: info.uid, gid: info.gid }
}

/// Record POSIX metadata as rclone's `--metadata` does: `X-Amz-Meta-Mode` in octal with
/// the file type (`100644`), `X-Amz-Meta-Uid` and `X-Amz-Meta-Gid` in decimal.
fn with_posix_meta(mut req: Request<'_>, meta: crate::remote::PosixMeta) -> Request<'_> {
    for (k, v) in bucket::posix_pairs(meta) {
        req = req.header(&format!("x-amz-meta-{k}"), v);
    }
    req
}

/// Read rclone's POSIX metadata headers; values that do not parse are ignored.
pub(crate) fn posix_meta_from<'r>(get: impl Fn(&str) -> Option<&'r str>) -> crate::remote::PosixMeta {
    bucket::posix_from(|k| get(&format!("x-amz-meta-{k}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_md5_only_for_plain_md5_etags() {
        assert!(md5_from_etag("\"0123456789abcdef0123456789abcdef\"").is_some());
        assert!(md5_from_etag("\"0123456789abcdef0123456789abcdef-2\"").is_none());
        assert!(md5_from_etag("\"0123456789ABCDEF0123456789ABCDEF\"").is_none());
        assert!(md5_from_etag("").is_none());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(b"a.TXT"), "text/plain; charset=utf-8");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
    }
}
