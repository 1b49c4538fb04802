//! The WebDAV wire format: PROPFIND and PROPPATCH bodies, `207 Multistatus` answers read
//! by resolved namespace (servers spell `DAV:` as `d:`, `D:`, `lp1:` or a default
//! namespace), hrefs turned back into names, and the ownCloud checksum property.

use crate::error::Result;
use crate::remote::Nanos;
use crate::remote::hash::{Checksum, HashType};
use crate::remote::kit::time;
use crate::remote::kit::xml::{self, Element};

pub const DAV: &str = "DAV:";
pub const OC: &str = "http://owncloud.org/ns";
const MS: &str = "urn:schemas-microsoft-com:";

/// The properties every listing asks for.
pub const PROPFIND_STANDARD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:">
 <d:prop>
  <d:resourcetype/>
  <d:getcontentlength/>
  <d:getlastmodified/>
 </d:prop>
</d:propfind>
"#;

/// The same plus ownCloud's checksums (Nextcloud, ownCloud, `rclone serve webdav`).
pub const PROPFIND_OWNCLOUD: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
 <d:prop>
  <d:resourcetype/>
  <d:getcontentlength/>
  <d:getlastmodified/>
  <oc:checksums/>
 </d:prop>
</d:propfind>
"#;

/// A PROPPATCH that sets the modification time (Unix seconds) the way ownCloud and
/// Nextcloud read it, with the checksum the server would otherwise drop (ownCloud).
pub fn proppatch_mtime(secs: i64, checksum: Option<&str>) -> String {
    let sums = checksum
        .map(|c| format!("\n   <oc:checksums><oc:checksum>{}</oc:checksum></oc:checksums>", xml::escape(c)))
        .unwrap_or_default();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
 <d:set>
  <d:prop>
   <d:lastmodified>{secs}</d:lastmodified>{sums}
  </d:prop>
 </d:set>
</d:propertyupdate>
"#
    )
}

/// One `<response>` of a multistatus, with the properties of its successful propstat.
#[derive(Debug, Default)]
pub struct Item {
    /// The href as sent (absolute path or URL, percent-encoded).
    pub href: String,
    pub is_dir: bool,
    pub size: Option<i64>,
    pub mtime: Option<Nanos>,
    pub sha1: Option<[u8; 20]>,
    pub md5: Option<[u8; 16]>,
    /// The status of the response when it carries no propstat (`HTTP/1.1 404 Not Found`).
    pub ok: bool,
}

/// The HTTP status code in a `<status>` line (`HTTP/1.1 200 OK` → 200).
fn status_code(s: &str) -> Option<u16> {
    s.split_whitespace().nth(1)?.parse().ok()
}

/// Read a `207 Multistatus` body. A body that is not one is a protocol error (retryable:
/// a proxy may have cut it).
pub fn parse_multistatus(body: &[u8]) -> Result<Vec<Item>> {
    let root = xml::parse(body)?;
    if !root.is(DAV, "multistatus") {
        return Err(xml::bad(format!("expected a DAV: multistatus, got <{}>", root.name)));
    }
    Ok(root.children_ns(DAV, "response").map(item).collect())
}

fn item(r: &Element) -> Item {
    let mut it = Item {
        href: r.child_ns(DAV, "href").map(|h| h.text.trim().to_string()).unwrap_or_default(),
        ..Item::default()
    };
    let mut any_ok = false;
    for ps in r.children_ns(DAV, "propstat") {
        let code = ps.child_ns(DAV, "status").and_then(|s| status_code(&s.text)).unwrap_or(200);
        if !(200..300).contains(&code) {
            continue;
        }
        any_ok = true;
        let Some(prop) = ps.child_ns(DAV, "prop") else { continue };
        for p in &prop.children {
            match (p.ns.as_str(), p.name.as_str()) {
                (DAV, "resourcetype") => it.is_dir |= p.child_ns(DAV, "collection").is_some(),
                (DAV, "getcontentlength") => it.size = p.text.trim().parse().ok(),
                (DAV, "getlastmodified") => it.mtime = time::parse_http_date(p.text.trim()),
                (MS, "iscollection") => it.is_dir |= matches!(p.text.trim(), "1" | "true" | "TRUE" | "True"),
                (OC, "checksums") => {
                    for c in p.children_ns(OC, "checksum") {
                        let (sha1, md5) = parse_checksums(&c.text);
                        it.sha1 = it.sha1.or(sha1);
                        it.md5 = it.md5.or(md5);
                    }
                }
                _ => {}
            }
        }
    }
    // A response with a bare status (no propstat) is OK only if that status is.
    it.ok =
        any_ok || r.child_ns(DAV, "status").and_then(|s| status_code(&s.text)).is_some_and(|c| (200..300).contains(&c));
    it
}

/// ownCloud's checksum list: `SHA1:<hex> MD5:<hex> ADLER32:<hex>`, space separated,
/// prefixes in any case (also the `OC-Checksum` header).
pub fn parse_checksums(s: &str) -> (Option<[u8; 20]>, Option<[u8; 16]>) {
    let (mut sha1, mut md5) = (None, None);
    for part in s.split_whitespace() {
        let Some((kind, value)) = part.split_once(':') else { continue };
        let bytes = hex::decode(value.trim()).ok();
        match kind.to_ascii_lowercase().as_str() {
            "sha1" => sha1 = bytes.and_then(|b| b.try_into().ok()),
            "md5" => md5 = bytes.and_then(|b| b.try_into().ok()),
            _ => {}
        }
    }
    (sha1, md5)
}

pub fn sha1_checksum(v: [u8; 20]) -> Checksum {
    Checksum { kind: HashType::Sha1, value: v.to_vec() }
}

/// The path part of an href, percent-decoded: `http://h:1/a%20b/` and `/a%20b/` both
/// give `/a b/` (as bytes: names need not be UTF-8 once decoded).
pub fn href_path(href: &str) -> Vec<u8> {
    let path = match href.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => href,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    percent_encoding::percent_decode_str(path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistatus_by_namespace_not_prefix() {
        // Apache mod_dav's spelling: a default namespace on some elements, lp1: on others.
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:" xmlns:ns0="DAV:">
<D:response xmlns:lp1="DAV:" xmlns:lp2="http://apache.org/dav/props/">
<D:href>/dav/dir/</D:href>
<D:propstat><D:prop><lp1:resourcetype><D:collection/></lp1:resourcetype>
<lp1:getlastmodified>Sat, 09 Sep 2001 01:46:40 GMT</lp1:getlastmodified></D:prop>
<D:status>HTTP/1.1 200 OK</D:status></D:propstat>
</D:response>
<response xmlns="DAV:"><href>/dav/dir/a%20b.txt</href>
<propstat><prop><getcontentlength>12</getcontentlength><resourcetype/>
<checksums xmlns="http://owncloud.org/ns"><checksum>SHA1:a9993e364706816aba3e25717850c26c9cd0d89d MD5:900150983cd24fb0d6963f7d28e17f72</checksum></checksums>
</prop><status>HTTP/1.1 200 OK</status></propstat>
<propstat><prop><getlastmodified/></prop><status>HTTP/1.1 404 Not Found</status></propstat>
</response>
<x:response xmlns:x="urn:other"><x:href>/ignored</x:href></x:response>
</D:multistatus>"#;
        let items = parse_multistatus(body).unwrap();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_dir && items[0].ok);
        assert_eq!(items[0].mtime, Some(1_000_000_000 * 1_000_000_000));
        let f = &items[1];
        assert!(!f.is_dir && f.ok);
        assert_eq!(f.size, Some(12));
        assert_eq!(f.mtime, None, "a 404 propstat tells nothing");
        assert_eq!(hex::encode(f.sha1.unwrap()), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(hex::encode(f.md5.unwrap()), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(href_path(&f.href), b"/dav/dir/a b.txt");
        assert_eq!(href_path("https://h:8/x/%ff?q"), b"/x/\xff");
    }

    #[test]
    fn not_a_multistatus() {
        assert!(parse_multistatus(b"<html><body>login</body></html>").is_err());
        assert!(parse_multistatus(b"<d:multistatus xmlns:d=\"DAV:\"><d:response>").is_err());
        assert!(parse_multistatus(b"").is_err());
    }

    #[test]
    fn checksum_lists() {
        let (s, m) = parse_checksums("sha1:A9993E364706816ABA3E25717850C26C9CD0D89D adler32:0 md5:zz");
        assert!(s.is_some() && m.is_none());
        assert!(proppatch_mtime(5, Some("SHA1:ab<")).contains("SHA1:ab&lt;"));
    }
}
