//! HTTP (rclone `backend/http`): a read-only tree served as HTML directory listings
//! (Apache, nginx, `rclone serve http`, Python's `http.server`). TrueNAS offers it for
//! PULL only (V22); every write here fails with a clear sentence.
//!
//! A directory is the page at its URL with a trailing `/`; its entries are the links on
//! it that name a direct child (relative, or absolute on the same host under the same
//! path), without a query (Apache's sort links) or `../`; a trailing `/` marks a
//! directory. Sizes and modification times come from a HEAD per file
//! (`Content-Length`, `Last-Modified`, 1 s), sent in parallel, a bounded number at a
//! time (rclone sends them one by one). No hashes. A server that ignores `Range` (Python's
//! `http.server`) is read from the start, the bytes before the offset skipped.

pub mod provider;

use super::kit::bucket;
use super::kit::http::{Body, DefaultClassify, HttpClient, HttpConfig, HttpResponse, Prepared, header, read_body};
use super::kit::time;
use super::{Entry, Features, Opened, PutInfo, Remote, RootState, Source};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const LABELS: &[&str] = &["LIST", "HEAD", "GET", "OTHER"];
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
/// A directory page larger than this is refused.
const PAGE_LIMIT: u64 = 64 * 1024 * 1024;

/// What a HEAD told of a file: size and modification time, `None` when it is gone.
type Head = Result<Option<(i64, Option<super::Nanos>)>>;

/// Settings of an HTTP remote.
#[derive(Clone)]
pub struct HttpOptions {
    /// The tree's root URL.
    pub url: String,
    /// The folder below it (the task's `folder`).
    pub folder: String,
    /// HEAD requests in flight at once while listing a directory.
    pub head_concurrency: usize,
    pub http: HttpConfig,
}

impl HttpOptions {
    pub fn new(url: &str, folder: &str) -> HttpOptions {
        HttpOptions { url: url.to_string(), folder: folder.to_string(), head_concurrency: 8, http: HttpConfig::JOB }
    }
}

pub struct HttpRemote {
    http: HttpClient,
    /// `scheme://host[:port]`.
    origin: String,
    /// The encoded path of the root directory (URL and folder), ending in `/`.
    root: String,
    head_concurrency: usize,
}

fn read_only() -> Error {
    Error::new(Kind::Unsupported, "an HTTP remote is read-only: it can only be the source of a PULL")
}

/// The links of an HTML page, entity-decoded, in page order.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find("<a") {
        let start = at + i + 2;
        // `<a` must be the whole tag name (not `<abbr>`).
        if !lower[start..].starts_with(|c: char| c.is_ascii_whitespace()) {
            at = start;
            continue;
        }
        let end = lower[start..].find('>').map_or(lower.len(), |j| start + j);
        let tag = &html[start..end];
        let tag_lower = &lower[start..end];
        if let Some(h) = find_attr(tag, tag_lower, "href") {
            out.push(unescape_html(&h));
        }
        at = end;
    }
    out
}

fn find_attr(tag: &str, tag_lower: &str, name: &str) -> Option<String> {
    let mut at = 0;
    while let Some(i) = tag_lower[at..].find(name) {
        let p = at + i;
        let before_ok = p == 0 || tag_lower.as_bytes()[p - 1].is_ascii_whitespace();
        let rest = tag[p + name.len()..].trim_start();
        if before_ok && let Some(v) = rest.strip_prefix('=') {
            let v = v.trim_start();
            return Some(match v.chars().next() {
                Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or("").to_string(),
                _ => v.split(|c: char| c.is_ascii_whitespace()).next().unwrap_or("").to_string(),
            });
        }
        at = p + name.len();
    }
    None
}

fn unescape_html(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let ent = &rest[1..semi];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16).ok().and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The child a link on the page of directory `dir_path` (an encoded URL path ending in
/// `/`, on `origin`) names: its decoded name and whether it is a directory. `None` for
/// everything else: other sites, parents, queries, anchors, deeper paths.
pub fn child_of(origin: &str, dir_path: &str, href: &str) -> Option<(Vec<u8>, bool)> {
    let href = href.trim();
    if href.is_empty() || href.contains('?') || href.starts_with('#') {
        return None;
    }
    let href = href.split('#').next().unwrap_or("");
    let rel = if let Some((scheme, rest)) = href.split_once("://") {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return None;
        }
        let path = rest.find('/').map_or("/", |i| &rest[i..]);
        let host = &rest[..rest.len() - path.len()];
        let ours = origin.split_once("://").map_or(origin, |(_, h)| h);
        if !host.eq_ignore_ascii_case(ours) {
            return None;
        }
        same_dir(dir_path, path)?
    } else if href.starts_with("//") {
        return None;
    } else if href.starts_with('/') {
        same_dir(dir_path, href)?
    } else {
        href.strip_prefix("./").unwrap_or(href)
    };
    let (seg, is_dir) = match rel.strip_suffix('/') {
        Some(s) => (s, true),
        None => (rel, false),
    };
    if seg.is_empty() || seg.contains('/') {
        return None;
    }
    let name: Vec<u8> = percent_encoding::percent_decode_str(seg).collect();
    if name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
        return None;
    }
    Some((name, is_dir))
}

/// `path` below `dir_path`, compared decoded (servers escape differently).
fn same_dir<'a>(dir_path: &str, path: &'a str) -> Option<&'a str> {
    if let Some(rest) = path.strip_prefix(dir_path) {
        return Some(rest);
    }
    let want: Vec<u8> = percent_encoding::percent_decode_str(dir_path).collect();
    // Find where the directory part of `path` ends: before its last segment.
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    let cut = trimmed.rfind('/')? + 1;
    let have: Vec<u8> = percent_encoding::percent_decode_str(&path[..cut]).collect();
    (have == want).then(|| &path[cut..])
}

impl HttpRemote {
    pub fn new(opts: HttpOptions) -> Result<HttpRemote> {
        let (scheme, rest) = opts
            .url
            .split_once("://")
            .filter(|(s, _)| s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https"))
            .ok_or_else(|| Error::usage("the URL must start with http:// or https://"))?;
        let (host, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if host.is_empty() || host.contains('@') {
            return Err(Error::usage("the URL must name a host (and no user name or password)"));
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        let mut root = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        if !root.ends_with('/') {
            root.push('/');
        }
        for seg in opts.folder.split('/').filter(|s| !s.is_empty()) {
            if seg == "." || seg == ".." {
                return Err(Error::usage(format!("invalid folder {:?}", opts.folder)));
            }
            root.push_str(&utf8_percent_encode(seg, SEGMENT).to_string());
            root.push('/');
        }
        Ok(HttpRemote {
            http: HttpClient::new("HTTP", host, &opts.http, LABELS),
            origin: format!("{}://{host}", scheme.to_ascii_lowercase()),
            root,
            head_concurrency: opts.head_concurrency.max(1),
        })
    }

    fn path_of(&self, path: &RelPath, dir: bool) -> String {
        let mut p = self.root.clone();
        let segs: Vec<String> =
            path.segments().map(|s| percent_encoding::percent_encode(s, SEGMENT).to_string()).collect();
        p.push_str(&segs.join("/"));
        if dir && !segs.is_empty() {
            p.push('/');
        }
        p
    }

    fn shown(&self, path: &RelPath) -> String {
        let p = self.path_of(path, false);
        format!("{}{}", self.origin, percent_encoding::percent_decode_str(&p).decode_utf8_lossy())
    }

    fn send(
        &self,
        label: &'static str,
        method: &'static str,
        url: &str,
        headers: &[(&str, String)],
    ) -> Result<HttpResponse> {
        self.http.send(label, "", &Body::Empty, &DefaultClassify, &mut || {
            Ok(Prepared {
                method,
                url: url.to_string(),
                headers: headers.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            })
        })
    }

    /// Size and modification time of a file, by HEAD; `None` when it is gone.
    fn head(&self, url: &str) -> Head {
        match self.send("HEAD", "HEAD", url, &[]) {
            Ok(resp) => {
                let length = |r: &HttpResponse| header(r, "content-length").and_then(|v| v.trim().parse::<i64>().ok());
                let mtime = header(&resp, "last-modified").and_then(time::parse_http_date);
                let size = match length(&resp) {
                    Some(n) => n,
                    // Apache answers a HEAD of an empty file without Content-Length; its
                    // GET has one. Only the headers are read (the body, if any, is
                    // dropped with its connection).
                    None => self.send("GET", "GET", url, &[]).ok().and_then(|r| length(&r)).unwrap_or(-1),
                };
                Ok(Some((size, mtime)))
            }
            Err(e) if e.kind() == Kind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Remote for HttpRemote {
    fn describe(&self) -> String {
        self.shown(&RelPath::root())
    }

    fn features(&self) -> Features {
        Features {
            hashes: super::hash::Hashes::NONE,
            md5_is_slow: false,
            precision: Some(super::NANOS_PER_SEC),
            set_mod_time: false,
            empty_dirs: false,
            dir_mod_time: false,
            read_only: true,
            case_insensitive: false,
            lazy_mod_time: false,
            is_local: false,
        }
    }

    fn root_state(&self) -> Result<RootState> {
        let root = RelPath::root();
        let url = format!("{}{}", self.origin, self.root);
        match self.send("LIST", "GET", &url, &[]) {
            Ok(_) => Ok(RootState::Dir),
            Err(e) if e.kind() == Kind::NotFound => {
                // A file where the directory was expected?
                let file = format!("{}{}", self.origin, self.root.trim_end_matches('/'));
                match self.head(&file)? {
                    Some(_) if self.root.len() > 1 => Ok(RootState::File),
                    _ => Ok(RootState::Missing),
                }
            }
            Err(e) => Err(e.with_path(self.shown(&root))),
        }
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let dir_path = self.path_of(dir, true);
        let url = format!("{}{dir_path}", self.origin);
        let page = self
            .http
            .call(
                "LIST",
                "",
                &Body::Empty,
                &DefaultClassify,
                &mut || Ok(Prepared { method: "GET", url: url.clone(), headers: Vec::new() }),
                &|mut resp| {
                    let body = read_body(&mut resp, PAGE_LIMIT)?;
                    Ok(String::from_utf8_lossy(&body).into_owned())
                },
            )
            .map_err(|e| {
                if e.kind() == Kind::NotFound {
                    Error::new(Kind::DirNotFound, "directory not found").with_path(self.shown(dir))
                } else {
                    e.with_path(self.shown(dir))
                }
            })?;
        let mut seen = std::collections::HashSet::new();
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        for href in links(&page) {
            let Some((name, is_dir)) = child_of(&self.origin, &dir_path, &href) else { continue };
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Err(e) = dir.join(&name) {
                bad(e.with_path(format!("{url}{href}")));
                continue;
            }
            if is_dir { dirs.push(Entry::dir(name, None)) } else { files.push(name) }
        }
        // The HEADs, a bounded number at a time.
        let heads: Vec<Mutex<Option<Head>>> = files.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let workers = self.head_concurrency.min(files.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        let Some(name) = files.get(i) else { return };
                        let file_url = format!("{url}{}", percent_encoding::percent_encode(name, SEGMENT));
                        let got = self.head(&file_url);
                        let failed = got.is_err();
                        if let Ok(mut slot) = heads[i].lock() {
                            *slot = Some(got);
                        }
                        if failed {
                            next.store(usize::MAX / 2, Relaxed); // stop starting new ones
                        }
                    }
                });
            }
        });
        let mut results = Vec::with_capacity(files.len());
        for (name, slot) in files.into_iter().zip(heads) {
            let got = slot.into_inner().map_err(|_| Error::other("lock poisoned"))?;
            if let Some(Err(e)) = got {
                let p = dir.join(&name).unwrap_or_default();
                return Err(e.with_path(self.shown(&p)));
            }
            results.push((name, got));
        }
        let mut out = dirs;
        for (name, got) in results {
            match got {
                Some(Ok(Some((size, mtime)))) => out.push(Entry::file(name, size, mtime)),
                Some(Ok(None)) => {} // linked but gone
                _ => return Err(Error::other("a HEAD request was not sent").with_path(self.shown(dir))),
            }
        }
        Ok(out)
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let (len, ranged) = if entry.size >= 0 { bucket::read_range(entry, offset, len) } else { (len, offset > 0) };
        if ranged && len == 0 {
            return Ok(bucket::empty_read(entry));
        }
        let mut h = Vec::new();
        if ranged {
            let end = if len == u64::MAX { String::new() } else { (offset + len - 1).to_string() };
            h.push(("range", format!("bytes={offset}-{end}")));
        }
        let url = format!("{}{}", self.origin, self.path_of(path, false));
        let resp = self.send("GET", "GET", &url, &h).map_err(|e| e.with_path(self.shown(path)))?;
        if ranged && resp.status().as_u16() == 200 {
            // A server without Range support (Python's http.server, some appliances)
            // answers with the whole file: its head is skipped here, its tail cut off.
            if entry.size >= 0 {
                bucket::check_read(&resp, false, entry.size as u64).map_err(|e| e.with_path(self.shown(path)))?;
            }
            let mut reader = resp.into_body().into_reader();
            let skipped = std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink())
                .map_err(|e| Error::from(e).with_path(self.shown(path)))?;
            if skipped < offset {
                return Err(Error::new(
                    Kind::Protocol,
                    format!("the file ended after {skipped} bytes, before {offset}"),
                )
                .with_retryable(true)
                .with_path(self.shown(path)));
            }
            let mut o = Opened::plain(Box::new(reader.take(len)));
            o.mtime = entry.mtime;
            return Ok(o);
        }
        if entry.size >= 0 {
            bucket::check_read(&resp, ranged, len).map_err(|e| e.with_path(self.shown(path)))?;
        }
        let mut o = Opened::plain(Box::new(resp.into_body().into_reader()));
        o.mtime = entry.mtime;
        Ok(o)
    }

    fn put(&self, _path: &RelPath, _src: &dyn Source, _info: &PutInfo) -> Result<Entry> {
        Err(read_only())
    }

    fn delete(&self, _path: &RelPath, _entry: &Entry) -> Result<()> {
        Err(read_only())
    }

    fn mkdir(&self, _dir: &RelPath) -> Result<()> {
        Err(read_only())
    }

    fn rmdir(&self, _dir: &RelPath) -> Result<()> {
        Err(read_only())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(format!("http:{}{}", self.origin, self.root))
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.http.counts.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Listings in the shapes Apache, nginx and rclone serve them (written here after
    /// those servers' output).
    #[test]
    fn links_of_server_listings() {
        let apache = r#"<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN"><html><head><title>Index of /pub</title></head>
<body><h1>Index of /pub</h1><table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><a href="/">Parent Directory</a></td></tr>
<tr><td><a href="a%20b.txt">a b.txt</a></td><td align="right">2026-01-02 03:04  </td></tr>
<tr><td><a href="sub/">sub/</a></td></tr>
<tr><td><A HREF='one%25.txt'>one%.txt</A></td></tr>
<tr><td><a href="caf%C3%A9&amp;x">café&amp;x</a></td></tr>
</table></body></html>"#;
        let nginx = "<html><head><title>Index of /pub/</title></head><body><h1>Index of /pub/</h1><hr><pre>\
<a href=\"../\">../</a>\n<a href=\"dir/\">dir/</a>                                               02-Jan-2026 03:04       -\n\
<a href=\"five.txt.gz\">five.txt.gz</a>                                        02-Jan-2026 03:04      55\n</pre><hr></body></html>";
        let rclone = r##"<table><tr><td><a href="/pub/deep/">deep/</a></td></tr><tr><td><a href="http://h:8/pub/x.bin">x.bin</a></td></tr>
<tr><td><a href="http://elsewhere/pub/y">y</a></td></tr><tr><td><a href="/pub/deep/too/far">far</a></td></tr><tr><td><a href="#top">top</a></td></tr></table>"##;
        let kids = |html: &str| -> Vec<(String, bool)> {
            links(html)
                .iter()
                .filter_map(|h| child_of("http://h:8", "/pub/", h))
                .map(|(n, d)| (String::from_utf8(n).unwrap(), d))
                .collect()
        };
        assert_eq!(
            kids(apache),
            vec![
                ("a b.txt".into(), false),
                ("sub".into(), true),
                ("one%.txt".into(), false),
                ("caf\u{e9}&x".into(), false)
            ]
        );
        assert_eq!(kids(nginx), vec![("dir".into(), true), ("five.txt.gz".into(), false)]);
        assert_eq!(kids(rclone), vec![("deep".into(), true), ("x.bin".into(), false)]);
        assert!(links("<abbr href=\"x\">").is_empty());
        assert_eq!(links("<a  class=x href = \"y\">"), vec!["y"]);
        assert_eq!(child_of("http://h", "/p%20q/", "/p q/r"), Some((b"r".to_vec(), false)));
        assert_eq!(child_of("http://h", "/p/", "//evil/p/x"), None);
        assert_eq!(child_of("http://h", "/p/", "./z"), Some((b"z".to_vec(), false)));
        assert_eq!(child_of("http://h", "/p/", "%2e%2e/"), None);
    }

    #[test]
    fn writes_are_refused_and_urls_checked() {
        let r = HttpRemote::new(HttpOptions::new("https://mirror.example/pub", "a b/c")).unwrap();
        assert_eq!(r.root, "/pub/a%20b/c/");
        assert!(r.features().read_only);
        assert_eq!(r.mkdir(&RelPath::root()).unwrap_err().kind(), Kind::Unsupported);
        assert!(HttpRemote::new(HttpOptions::new("ftp://h/", "")).is_err());
        assert!(HttpRemote::new(HttpOptions::new("http://u:p@h/", "")).is_err());
        assert!(HttpRemote::new(HttpOptions::new("http://h/", "../x")).is_err());
        assert_eq!(unescape_html("a&#233;&#xE9;&bogus;&"), "a\u{e9}\u{e9}&bogus;&");
    }
}
