//! Failures of HTTP requests: what kind they are and whether (and when) to try again.
//!
//! Every provider starts from [`default`] and overrides what its API says differently
//! (S3's error codes, B2's `expired_auth_token`, Azure's `ServerBusy`). The engine reads
//! only the error's kind and retryable flag.

use crate::error::{Error, Kind};
use std::time::{Duration, SystemTime};
use ureq::http::HeaderMap;

/// Whether and how a failed request is tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Permanent: the same request fails the same way.
    No,
    /// Try again after the usual backoff.
    Backoff,
    /// Try again after the server's `Retry-After` (every thread of the remote waits).
    After(Duration),
    /// Renew the authorisation, then try again (once).
    Reauth,
}

/// A classified failure.
#[derive(Debug)]
pub struct Failure {
    pub err: Error,
    pub retry: Retry,
}

impl Failure {
    pub fn new(kind: Kind, msg: impl Into<String>, retry: Retry) -> Failure {
        let retryable = retry != Retry::No;
        Failure { err: Error::new(kind, msg).with_retryable(retryable), retry }
    }
}

/// `Retry-After` as seconds or as an HTTP-date (RFC 9110 §10.2.3).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = super::time::parse_http_date(v)?;
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as i64;
    Some(Duration::from_nanos(at.saturating_sub(now).max(0) as u64))
}

/// Retry after the server's `Retry-After` when it sent one, else after the backoff.
pub fn after_or_backoff(headers: &HeaderMap) -> Retry {
    retry_after(headers).map_or(Retry::Backoff, Retry::After)
}

/// The common reading of HTTP statuses (rclone's `fserrors.ShouldRetryHTTP` set: 429,
/// 500, 502, 503, 504, 509 and 408 retried; the rest permanent).
pub fn default(status: u16, headers: &HeaderMap, _body: &[u8], what: &str) -> Failure {
    let (kind, retry, text) = match status {
        429 => (Kind::Server, after_or_backoff(headers), "the server asks to slow down"),
        408 => (Kind::Server, Retry::Backoff, "the server timed out waiting for the request"),
        500 | 502 | 503 | 504 | 509 => (Kind::Server, after_or_backoff(headers), "server error"),
        401 => (Kind::Permission, Retry::No, "the credentials were rejected"),
        403 => (Kind::Permission, Retry::No, "access denied"),
        404 => (Kind::NotFound, Retry::No, "not found"),
        507 => (Kind::Quota, Retry::No, "the storage quota is exhausted"),
        _ => (Kind::Server, Retry::No, "request failed"),
    };
    Failure::new(kind, with_what(what, text), retry)
}

/// `what: text`, or just `text` when `what` is empty.
pub fn with_what(what: &str, text: &str) -> String {
    if what.is_empty() { text.to_string() } else { format!("{what}: {text}") }
}

/// A request that got no answer: the connection failed, timed out or broke.
pub fn transport(host: &str, e: ureq::Error) -> Error {
    match e {
        ureq::Error::Io(io) => {
            let err: Error = io.into();
            if err.kind() == Kind::Io || err.kind() == Kind::Network {
                Error::new(Kind::Network, format!("connection to {host} failed: {}", err.message()))
                    .with_retryable(true)
            } else {
                err
            }
        }
        ureq::Error::Timeout(t) => {
            Error::new(Kind::Network, format!("timed out talking to {host} ({t})")).with_retryable(true)
        }
        ureq::Error::HostNotFound => Error::new(Kind::Network, format!("host {host} not found")).with_retryable(true),
        ureq::Error::ConnectionFailed => {
            Error::new(Kind::Network, format!("cannot connect to {host}: connection refused or unreachable"))
                .with_retryable(true)
        }
        other => Error::new(Kind::Protocol, format!("HTTP error talking to {host}: {other}")).with_retryable(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http::HeaderValue;

    fn headers(retry_after: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_str(retry_after).unwrap());
        h
    }

    #[test]
    fn retry_after_in_seconds_and_as_a_date() {
        assert_eq!(retry_after(&headers("7")), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(&headers("Mon, 12 Oct 2009 17:50:30 GMT")), Some(Duration::ZERO));
        let later = chrono::Utc::now() + chrono::Duration::seconds(120);
        let d = retry_after(&headers(&later.format("%a, %d %b %Y %H:%M:%S GMT").to_string())).unwrap();
        assert!(d > Duration::from_secs(100) && d <= Duration::from_secs(120), "{d:?}");
        assert_eq!(retry_after(&headers("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn default_statuses() {
        let none = HeaderMap::new();
        assert_eq!(default(503, &headers("3"), b"", "b/k").retry, Retry::After(Duration::from_secs(3)));
        assert_eq!(default(500, &none, b"", "").retry, Retry::Backoff);
        let f = default(404, &none, b"", "b/k");
        assert_eq!((f.err.kind(), f.retry, f.err.message()), (Kind::NotFound, Retry::No, "b/k: not found"));
        assert!(!f.err.is_retryable());
        assert_eq!(default(507, &none, b"", "").err.kind(), Kind::Quota);
    }
}
