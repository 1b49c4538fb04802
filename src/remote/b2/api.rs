//! B2's wire types (b2api v2 calls, v4 authorisation) and its error body, with the
//! classification of failures (rclone `backend/b2/api/types.go`, `b2.go` shouldRetry).

use crate::error::Kind;
use crate::remote::kit::classify::{self, Failure, Retry};
use serde::Deserialize;
use std::collections::BTreeMap;
use ureq::http::HeaderMap;

/// `b2_authorize_account` (v4).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorized {
    pub account_id: String,
    pub authorization_token: String,
    pub api_info: ApiInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiInfo {
    pub storage_api: StorageApi,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageApi {
    pub api_url: String,
    pub download_url: String,
    #[serde(default)]
    pub absolute_minimum_part_size: u64,
    #[serde(default)]
    pub allowed: Allowed,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Allowed {
    /// `None`: every bucket of the account.
    #[serde(default)]
    pub buckets: Option<Vec<AllowedBucket>>,
    #[serde(default)]
    pub name_prefix: Option<String>,
}

#[derive(Deserialize)]
pub struct AllowedBucket {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub bucket_id: String,
    pub bucket_name: String,
}

#[derive(Deserialize)]
pub struct Buckets {
    pub buckets: Vec<Bucket>,
}

/// A file version as listings and uploads describe it. v1 listings call the size
/// `size`, later versions and uploads `contentLength`: both are read.
#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct File {
    pub file_name: String,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub content_length: Option<i64>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub content_sha1: Option<String>,
    #[serde(default)]
    pub file_info: BTreeMap<String, String>,
    #[serde(default)]
    pub upload_timestamp: i64,
}

impl File {
    pub fn size(&self) -> i64 {
        self.content_length.or(self.size).unwrap_or(-1)
    }

    /// The SHA1 of the content: `contentSha1` (without the `unverified:` prefix of
    /// files uploaded with `do_not_verify`), else a large file's `large_file_sha1`.
    pub fn sha1(&self) -> Option<[u8; 20]> {
        parse_sha1(self.content_sha1.as_deref().unwrap_or("none"))
            .or_else(|| self.file_info.get("large_file_sha1").and_then(|s| parse_sha1(s)))
    }

    /// rclone's `src_last_modified_millis`, else the upload time, in nanoseconds.
    pub fn mtime(&self) -> i64 {
        let ms = self
            .file_info
            .get("src_last_modified_millis")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(self.upload_timestamp);
        ms.saturating_mul(1_000_000)
    }
}

pub fn parse_sha1(s: &str) -> Option<[u8; 20]> {
    let s = s.trim();
    let s = s.strip_prefix("unverified:").unwrap_or(s);
    if s.len() != 40 {
        return None;
    }
    hex::decode(s).ok()?.try_into().ok()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Files {
    pub files: Vec<File>,
    #[serde(default)]
    pub next_file_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadUrl {
    pub upload_url: String,
    pub authorization_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub content_sha1: String,
}

/// B2's error body.
#[derive(Deserialize, Default)]
pub struct ErrorBody {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Whether the request went to an upload URL (whose failures mean "fetch another URL",
/// not "re-authorise the account").
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Api,
    Upload,
}

pub fn classify(status: u16, headers: &HeaderMap, body: &[u8], target: Target) -> Failure {
    let e: ErrorBody = serde_json::from_slice(body).unwrap_or_default();
    let detail = if e.code.is_empty() { String::new() } else { format!(" ({}: {})", e.code, e.message) };
    let (kind, retry, text) = match (status, e.code.as_str()) {
        (401, "expired_auth_token" | "bad_auth_token") if target == Target::Upload => {
            (Kind::Server, Retry::Backoff, "the upload URL expired")
        }
        (401, "expired_auth_token" | "bad_auth_token") => {
            (Kind::Permission, Retry::Reauth, "the authorization expired")
        }
        (401, _) => (Kind::Permission, Retry::No, "the application key ID or application key is wrong"),
        (403, "cap_exceeded" | "storage_cap_exceeded" | "transaction_cap_exceeded" | "download_cap_exceeded") => {
            (Kind::Quota, Retry::No, "the B2 account's cap is exceeded (raise it in the B2 account's Caps & Alerts)")
        }
        (403, _) => (Kind::Permission, Retry::No, "access denied"),
        (404, _) | (400, "no_such_file" | "file_not_present" | "not_found") => (Kind::NotFound, Retry::No, "not found"),
        (429 | 500 | 503 | 408 | 502 | 504, _) => (Kind::Server, classify::after_or_backoff(headers), "server busy"),
        _ => return classify::default(status, headers, body, &format!("B2 error{detail}")),
    };
    Failure::new(kind, format!("{text}{detail}"), retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_either_version_and_their_hashes() {
        let v1: File = serde_json::from_str(r#"{"fileName":"a","size":5,"action":"upload","contentSha1":"unverified:2aae6c35c94fcfb415dbe95f408b9ce91ee846ed","fileInfo":{"src_last_modified_millis":"1000"},"uploadTimestamp":7}"#).unwrap();
        assert_eq!((v1.size(), v1.mtime()), (5, 1_000_000_000));
        assert_eq!(hex::encode(v1.sha1().unwrap()), "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
        let large: File = serde_json::from_str(r#"{"fileName":"b","contentLength":9,"contentSha1":"none","fileInfo":{"large_file_sha1":"2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"},"uploadTimestamp":7}"#).unwrap();
        assert_eq!((large.size(), large.mtime()), (9, 7_000_000));
        assert!(large.sha1().is_some());
    }

    #[test]
    fn errors_as_b2_sends_them() {
        let h = HeaderMap::new();
        let f = classify(401, &h, br#"{"status":401,"code":"expired_auth_token","message":"x"}"#, Target::Api);
        assert_eq!(f.retry, Retry::Reauth);
        let f = classify(401, &h, br#"{"status":401,"code":"expired_auth_token","message":"x"}"#, Target::Upload);
        assert_eq!(f.retry, Retry::Backoff);
        let f = classify(403, &h, br#"{"status":403,"code":"cap_exceeded","message":"Cannot upload"}"#, Target::Upload);
        assert_eq!((f.err.kind(), f.retry), (Kind::Quota, Retry::No));
        assert_eq!(classify(503, &h, b"", Target::Upload).retry, Retry::Backoff);
        let f = classify(401, &h, br#"{"status":401,"code":"unauthorized","message":""}"#, Target::Api);
        assert_eq!((f.err.kind(), f.retry), (Kind::Permission, Retry::No));
    }
}
