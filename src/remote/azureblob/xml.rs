//! Azure Blob's XML answers: blob listings, container listings, error documents.

use crate::error::Result;
use crate::remote::kit::xml::{Element, bad, parse};

pub struct ListedBlob {
    pub name: String,
    pub size: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub content_md5: Option<String>,
    pub access_tier: Option<String>,
    pub metadata: Vec<(String, String)>,
}

pub struct ListPage {
    pub blobs: Vec<ListedBlob>,
    pub prefixes: Vec<String>,
    pub next_marker: Option<String>,
}

fn next_marker(root: &Element) -> Option<String> {
    root.text_of("NextMarker").filter(|m| !m.is_empty()).map(str::to_string)
}

/// `List Blobs` (`EnumerationResults/Blobs/{Blob, BlobPrefix}`, `NextMarker`).
pub fn parse_list(body: &[u8]) -> Result<ListPage> {
    let root = parse(body)?;
    if root.name != "EnumerationResults" {
        return Err(bad(format!("expected EnumerationResults, got {}", root.name)));
    }
    let mut page = ListPage { blobs: Vec::new(), prefixes: Vec::new(), next_marker: next_marker(&root) };
    let Some(blobs) = root.child("Blobs") else {
        return Ok(page);
    };
    for b in blobs.children("Blob") {
        let name = b.text_of("Name").ok_or_else(|| bad("blob without Name"))?.to_string();
        let props = b.child("Properties").ok_or_else(|| bad("blob without Properties"))?;
        let size = props
            .text_of("Content-Length")
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| bad(format!("blob {name:?} without a valid Content-Length")))?;
        let text = |n: &str| props.text_of(n).filter(|s| !s.is_empty()).map(str::to_string);
        let metadata = b
            .child("Metadata")
            .map(|m| m.children.iter().map(|c| (c.name.clone(), c.text.clone())).collect())
            .unwrap_or_default();
        page.blobs.push(ListedBlob {
            name,
            size,
            etag: text("Etag"),
            last_modified: text("Last-Modified"),
            content_md5: text("Content-MD5"),
            access_tier: text("AccessTier"),
            metadata,
        });
    }
    for p in blobs.children("BlobPrefix") {
        page.prefixes.push(p.text_of("Name").ok_or_else(|| bad("prefix without Name"))?.to_string());
    }
    Ok(page)
}

pub struct ContainerPage {
    /// (name, last-modified)
    pub containers: Vec<(String, String)>,
    pub next_marker: Option<String>,
}

/// `List Containers`.
pub fn parse_containers(body: &[u8]) -> Result<ContainerPage> {
    let root = parse(body)?;
    if root.name != "EnumerationResults" {
        return Err(bad(format!("expected EnumerationResults, got {}", root.name)));
    }
    let mut containers = Vec::new();
    if let Some(cs) = root.child("Containers") {
        for c in cs.children("Container") {
            let name = c.text_of("Name").ok_or_else(|| bad("container without Name"))?.to_string();
            let modified = c
                .child("Properties")
                .and_then(|p| p.text_of("Last-Modified"))
                .and_then(crate::remote::kit::time::parse_http_date)
                .map(crate::clock::rfc3339_nanos)
                .unwrap_or_default();
            containers.push((name, modified));
        }
    }
    Ok(ContainerPage { containers, next_marker: next_marker(&root) })
}

/// The `Code` of an error document.
pub fn error_code(body: &[u8]) -> Option<String> {
    let root = parse(body).ok()?;
    (root.name == "Error").then(|| root.text_of("Code").map(str::to_string)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_with_metadata_prefixes_and_marker() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://x/" ContainerName="c"><Prefix>d/</Prefix><Blobs><Blob><Name>d/a&amp;b</Name><Properties><Last-Modified>Mon, 12 Oct 2009 17:50:30 GMT</Last-Modified><Etag>0x8D</Etag><Content-Length>5</Content-Length><Content-MD5>XUFAKrxLKna5cZ2REBfFkg==</Content-MD5><AccessTier>Hot</AccessTier></Properties><Metadata><mtime>2001-02-03T04:05:06.499999999Z</mtime></Metadata></Blob><BlobPrefix><Name>d/sub/</Name></BlobPrefix></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
        let p = parse_list(body).unwrap();
        assert_eq!(p.blobs.len(), 1);
        let b = &p.blobs[0];
        assert_eq!((b.name.as_str(), b.size, b.etag.as_deref()), ("d/a&b", 5, Some("0x8D")));
        assert_eq!(b.metadata, vec![("mtime".to_string(), "2001-02-03T04:05:06.499999999Z".to_string())]);
        assert_eq!(p.prefixes, vec!["d/sub/"]);
        assert_eq!(p.next_marker.as_deref(), Some("m2"));
        assert!(
            parse_list(b"<EnumerationResults><Blobs><Blob><Name>x</Name></Blob></Blobs></EnumerationResults>").is_err()
        );
        assert!(parse_list(b"<Other/>").is_err());
    }

    #[test]
    fn error_codes() {
        assert_eq!(
            error_code(b"<Error><Code>ContainerNotFound</Code><Message>m</Message></Error>").as_deref(),
            Some("ContainerNotFound")
        );
        assert_eq!(error_code(b"garbage"), None);
    }
}
