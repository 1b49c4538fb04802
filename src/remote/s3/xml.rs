//! The parsers of S3's XML answers, over the kit's element tree.

use crate::error::{Error, Kind, Result};

pub use crate::remote::kit::xml::{Element, bad, escape, parse};

/// An S3 error document: `<Error><Code>…</Code><Message>…</Message></Error>`.
pub struct S3Error {
    pub code: String,
    pub message: String,
}

pub fn parse_error(body: &[u8]) -> Option<S3Error> {
    let root = parse(body).ok()?;
    if root.name != "Error" {
        return None;
    }
    Some(S3Error {
        code: root.text_of("Code").unwrap_or_default().to_string(),
        message: root.text_of("Message").unwrap_or_default().to_string(),
    })
}

pub struct ListedObject {
    pub key: String,
    pub size: i64,
    pub etag: String,
    pub last_modified: String,
    pub storage_class: Option<String>,
}

pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
    pub next_token: Option<String>,
    pub truncated: bool,
}

fn url_unescape(s: &str) -> Result<String> {
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(s).collect();
    String::from_utf8(bytes).map_err(|_| bad("URL-encoded key is not UTF-8"))
}

/// A `ListObjectsV2` result page. Keys are URL-decoded when the server says it encoded them.
pub fn parse_list(body: &[u8]) -> Result<ListPage> {
    let root = parse(body)?;
    if root.name != "ListBucketResult" {
        return Err(bad(format!("expected ListBucketResult, got {}", root.name)));
    }
    let url = root.text_of("EncodingType").is_some_and(|t| t.eq_ignore_ascii_case("url"));
    let dec = |s: &str| {
        if url { url_unescape(s) } else { Ok(s.to_string()) }
    };
    let mut objects = Vec::new();
    for c in root.children("Contents") {
        let key = dec(c.text_of("Key").ok_or_else(|| bad("object without Key"))?)?;
        let size = c.text_of("Size").unwrap_or("0").trim().parse::<i64>().map_err(|_| bad("bad Size"))?;
        objects.push(ListedObject {
            key,
            size,
            etag: c.text_of("ETag").unwrap_or_default().to_string(),
            last_modified: c.text_of("LastModified").unwrap_or_default().to_string(),
            storage_class: c.text_of("StorageClass").map(str::to_string),
        });
    }
    let mut prefixes = Vec::new();
    for p in root.children("CommonPrefixes") {
        if let Some(pre) = p.text_of("Prefix") {
            prefixes.push(dec(pre)?);
        }
    }
    let truncated = root.text_of("IsTruncated").is_some_and(|t| t.trim() == "true");
    let next_token = root.text_of("NextContinuationToken").filter(|t| !t.is_empty()).map(str::to_string);
    Ok(ListPage { objects, prefixes, next_token, truncated })
}

/// One page of ListParts: (part number, ETag, size) per part, and the marker of the next
/// page when truncated.
pub struct PartsPage {
    pub parts: Vec<(u64, String, u64)>,
    pub truncated: bool,
    pub next_marker: Option<String>,
}

pub fn parse_parts(body: &[u8]) -> Result<PartsPage> {
    let root = parse(body)?;
    if root.name != "ListPartsResult" {
        return Err(bad(format!("expected ListPartsResult, got {}", root.name)));
    }
    let mut parts = Vec::new();
    for p in root.children("Part") {
        let number =
            p.text_of("PartNumber").and_then(|n| n.trim().parse().ok()).ok_or_else(|| bad("bad PartNumber"))?;
        let size = p.text_of("Size").and_then(|n| n.trim().parse().ok()).ok_or_else(|| bad("bad part Size"))?;
        parts.push((number, p.text_of("ETag").unwrap_or_default().to_string(), size));
    }
    Ok(PartsPage {
        parts,
        truncated: root.text_of("IsTruncated").is_some_and(|t| t.trim() == "true"),
        next_marker: root.text_of("NextPartNumberMarker").map(|t| t.trim().to_string()),
    })
}

pub fn parse_upload_id(body: &[u8]) -> Result<String> {
    let root = parse(body)?;
    root.text_of("UploadId").filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| bad("no UploadId"))
}

/// The ETag of a CompleteMultipartUpload or CopyObject result. These calls can answer
/// 200 with an `<Error>` body, which is reported as an error.
pub fn parse_result_etag(body: &[u8]) -> Result<(String, Option<String>)> {
    let root = parse(body)?;
    if root.name == "Error" {
        let code = root.text_of("Code").unwrap_or_default();
        let msg = root.text_of("Message").unwrap_or_default();
        return Err(Error::new(Kind::Server, format!("{code}: {msg}")).with_retryable(true));
    }
    let etag = root.text_of("ETag").unwrap_or_default().to_string();
    Ok((etag, root.text_of("LastModified").map(str::to_string)))
}

/// Keys that a DeleteObjects call failed to delete, with the reason.
pub fn parse_delete_errors(body: &[u8]) -> Result<Vec<(String, String)>> {
    let root = parse(body)?;
    Ok(root
        .children("Error")
        .map(|e| {
            (
                e.text_of("Key").unwrap_or_default().to_string(),
                format!("{}: {}", e.text_of("Code").unwrap_or_default(), e.text_of("Message").unwrap_or_default()),
            )
        })
        .collect())
}

pub fn parse_buckets(body: &[u8]) -> Result<Vec<(String, String)>> {
    let root = parse(body)?;
    let buckets = root.child("Buckets").ok_or_else(|| bad("no Buckets"))?;
    Ok(buckets
        .children("Bucket")
        .map(|b| {
            (
                b.text_of("Name").unwrap_or_default().to_string(),
                b.text_of("CreationDate").unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// Escape text for an XML element body.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_page_with_prefixes_entities_and_url_encoding() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>d/</Prefix>
<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated><NextContinuationToken>tok&amp;1</NextContinuationToken>
<Contents><Key>d/a%20b%26c</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified><ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
<CommonPrefixes><Prefix>d/sub%2F/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let p = parse_list(body).unwrap();
        assert_eq!(p.objects.len(), 1);
        assert_eq!(p.objects[0].key, "d/a b&c");
        assert_eq!(p.objects[0].etag, "\"0123456789abcdef0123456789abcdef\"");
        assert_eq!(p.objects[0].size, 12);
        assert_eq!(p.prefixes, vec!["d/sub//".to_string()]);
        assert!(p.truncated);
        assert_eq!(p.next_token.as_deref(), Some("tok&1"));
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for body in [
            &b""[..],
            b"<a>",
            b"</a>",
            b"<a><b></a>",
            b"\xff\xfe",
            b"<a>&bogus;</a>",
            b"<ListBucketResult><Contents><Size>x</Size><Key>k</Key></Contents></ListBucketResult>",
        ] {
            assert!(parse_list(body).is_err(), "{:?}", String::from_utf8_lossy(body));
        }
        assert!(parse_list(b"<Other/>").is_err());
    }

    #[test]
    fn complete_multipart_can_fail_with_200() {
        let e =
            parse_result_etag(b"<Error><Code>InternalError</Code><Message>try again</Message></Error>").unwrap_err();
        assert!(e.to_string().contains("InternalError"));
        let (etag, _) =
            parse_result_etag(b"<CompleteMultipartUploadResult><ETag>\"x-2\"</ETag></CompleteMultipartUploadResult>")
                .unwrap();
        assert_eq!(etag, "\"x-2\"");
    }

    #[test]
    fn error_document() {
        let e = parse_error(
            b"<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>",
        )
        .unwrap();
        assert_eq!(e.code, "NoSuchBucket");
    }
}
