//! The HTTP client every REST provider sends its requests through (rclone's `lib/rest` +
//! `lib/pacer` + `fs/fserrors`, in one place).
//!
//! A provider describes a request per attempt (so signatures carry a fresh date and a
//! re-authorised token is used on the retry) and says how to read its error answers
//! ([`Classify`]); this client does the rest, identically for all of them:
//! - retries of retryable failures with exponential backoff and jitter, at most
//!   `retries` attempts (rclone's `--low-level-retries`);
//! - `Retry-After` in seconds or as an HTTP-date, capped at five minutes;
//! - one [`Pacer`] per remote, shared by its worker threads: when the server asks one
//!   thread to wait, every thread waits, instead of the others hammering on;
//! - re-authorisation on an expired token, once per failure, then the request again;
//! - error bodies read bounded (64 KiB), response bodies through [`read_body`] with a limit;
//! - request counts per type, for `--json` summaries, tests and benchmarks.
//!
//! Bodies are streamed: a body is a function that opens a fresh reader, so a retried
//! request re-reads its data instead of holding it in memory.

use super::classify::{self, Failure, Retry};
use crate::error::{Error, Kind, Result};
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use ureq::http;

pub type HttpResponse = http::Response<ureq::Body>;

/// Error bodies read to classify a failure, at most.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;
/// Longest wait a server's `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// A request body.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes from a reader that the closure opens afresh for every attempt.
    Stream {
        len: u64,
        open: &'a (dyn Fn() -> Result<Box<dyn Read + Send + 'a>> + Sync),
    },
}

impl Body<'_> {
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::Stream { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One attempt of a request, ready to go: method, absolute URL, headers (the `Host`
/// header is the URL's).
pub struct Prepared {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// How a provider reads its failures and renews its authorisation.
pub trait Classify: Sync {
    /// A non-2xx answer: its kind, message and retry policy. `what` names the resource
    /// ("bucket/key") for the message. The default is [`classify::default`].
    fn status(&self, status: u16, headers: &http::HeaderMap, body: &[u8], what: &str) -> Failure {
        classify::default(status, headers, body, what)
    }

    /// Renew the authorisation after a [`Retry::Reauth`] failure (B2's expired account
    /// token, an OAuth access token). The next attempt is prepared afresh.
    fn reauthorize(&self) -> Result<()> {
        Err(Error::new(Kind::Permission, "the authorisation was rejected"))
    }
}

/// The default classification, for providers with nothing to add.
pub struct DefaultClassify;
impl Classify for DefaultClassify {}

/// Request counters by type (the labels a provider declares, e.g. `LIST`, `GET`).
pub struct Counts {
    labels: &'static [&'static str],
    values: Box<[AtomicU64]>,
}

impl Counts {
    pub fn new(labels: &'static [&'static str]) -> Counts {
        Counts { labels, values: labels.iter().map(|_| AtomicU64::new(0)).collect() }
    }

    /// Count one request of type `label` (an undeclared label counts as the last one).
    pub fn add(&self, label: &str) {
        let i = self.labels.iter().position(|l| *l == label).unwrap_or(self.labels.len().saturating_sub(1));
        if let Some(v) = self.values.get(i) {
            v.fetch_add(1, Relaxed);
        }
    }

    pub fn get(&self, label: &str) -> u64 {
        self.labels.iter().position(|l| *l == label).map_or(0, |i| self.values[i].load(Relaxed))
    }

    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.labels.iter().zip(self.values.iter()).map(|(l, v)| (*l, v.load(Relaxed))).collect()
    }
}

/// Holds every thread of one remote back while the server asked for a pause
/// (rclone's pacer: a 429 or 503 with `Retry-After` slows the whole remote down).
#[derive(Default)]
pub struct Pacer {
    not_before: Mutex<Option<Instant>>,
}

impl Pacer {
    /// Wait until the pause (if any) is over.
    pub fn wait(&self) {
        let until = *self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = until {
            let now = Instant::now();
            if until > now {
                std::thread::sleep(until - now);
            }
        }
    }

    /// Nobody sends before `now + d`.
    pub fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        let mut g = self.not_before.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none_or(|t| t < until) {
            *g = Some(until);
        }
    }
}

/// Connection settings shared by every HTTP provider.
#[derive(Clone, Copy, Debug)]
pub struct HttpConfig {
    pub connect_timeout: Duration,
    /// Time to wait for a response once a request is sent.
    pub response_timeout: Duration,
    /// Attempts per request for retryable failures (rclone `--low-level-retries`).
    pub retries: u32,
    pub max_connections: usize,
}

impl HttpConfig {
    /// The timeouts of `verify` and the location pickers: 15 s to connect, 30 s to answer,
    /// two attempts (a UI waits for them).
    pub const VERIFY: HttpConfig = HttpConfig {
        connect_timeout: Duration::from_secs(15),
        response_timeout: Duration::from_secs(30),
        retries: 2,
        max_connections: 4,
    };
    /// The timeouts of a job: 60 s to connect, 300 s to answer, ten attempts.
    pub const JOB: HttpConfig = HttpConfig {
        connect_timeout: Duration::from_secs(60),
        response_timeout: Duration::from_secs(300),
        retries: 10,
        max_connections: 16,
    };
}

/// An HTTP client for one remote: its connection pool, pacer and counters.
pub struct HttpClient {
    agent: ureq::Agent,
    retries: u32,
    pub counts: Counts,
    pub pacer: Pacer,
    /// Names the service in transport errors ("connection to HOST failed").
    host: String,
    /// The provider's name for log lines ("S3 GET attempt 2/10 failed").
    provider: &'static str,
}

impl HttpClient {
    /// `host` names the server in messages; `labels` are the request types counted.
    pub fn new(provider: &'static str, host: &str, cfg: &HttpConfig, labels: &'static [&'static str]) -> HttpClient {
        let conns = cfg.max_connections.max(4);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(cfg.connect_timeout))
            .timeout_recv_response(Some(cfg.response_timeout))
            .max_idle_connections(conns)
            .max_idle_connections_per_host(conns)
            .user_agent(format!("cloudsync/{}", crate::VERSION))
            // 3xx answers are the provider's to read (S3's region redirects, GCS's 308).
            .max_redirects(0)
            .allow_non_standard_methods(true)
            .build();
        HttpClient {
            agent: super::transport::agent(config),
            retries: cfg.retries.max(1),
            counts: Counts::new(labels),
            pacer: Pacer::default(),
            host: host.to_string(),
            provider,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Send a request, retrying retryable failures; non-2xx answers become errors through
    /// `classify`. `prepare` builds each attempt (called again for every retry).
    pub fn send(
        &self,
        label: &'static str,
        what: &str,
        body: &Body<'_>,
        classify: &dyn Classify,
        prepare: &mut dyn FnMut() -> Result<Prepared>,
    ) -> Result<HttpResponse> {
        self.send_expecting(label, what, body, classify, &|s| (200..300).contains(&s), prepare)
    }

    /// Send a request and parse its answer, retrying a parse that fails retryably (a
    /// body cut short, a garbled page) like a failed request.
    pub fn call<T>(
        &self,
        label: &'static str,
        what: &str,
        body: &Body<'_>,
        classify: &dyn Classify,
        prepare: &mut dyn FnMut() -> Result<Prepared>,
        parse: &dyn Fn(HttpResponse) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            match self.send(label, what, body, classify, prepare).and_then(parse) {
                Err(e) if e.is_retryable() && attempt < self.retries => {
                    log::debug!("{} {label}: reading the answer failed, asking again: {e}", self.provider);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// [`HttpClient::send`] for requests where some non-2xx answers are results, not
    /// failures (`ok(status)`; GCS's 308 "resume incomplete").
    pub fn send_expecting(
        &self,
        label: &'static str,
        what: &str,
        body: &Body<'_>,
        classify: &dyn Classify,
        ok: &dyn Fn(u16) -> bool,
        prepare: &mut dyn FnMut() -> Result<Prepared>,
    ) -> Result<HttpResponse> {
        let attempts = self.retries;
        let mut backoff = Duration::from_millis(10);
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            attempt += 1;
            self.pacer.wait();
            let failure = match prepare().and_then(|p| self.send_once(label, &p, body)) {
                Ok(resp) if ok(resp.status().as_u16()) => return Ok(resp),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let mut err_body = Vec::new();
                    let _ = resp.body_mut().as_reader().take(ERROR_BODY_LIMIT).read_to_end(&mut err_body);
                    let mut f = classify.status(status, resp.headers(), &err_body, what);
                    f.err = f.err.with_status(status);
                    f
                }
                Err(e) => {
                    let retry = if e.is_retryable() { Retry::Backoff } else { Retry::No };
                    Failure { err: e, retry }
                }
            };
            let Failure { err, retry } = failure;
            let wait = match retry {
                Retry::No => return Err(err.with_retryable(false)),
                _ if attempt >= attempts => return Err(err),
                Retry::Backoff => jitter(backoff),
                Retry::After(d) => {
                    let d = d.min(MAX_RETRY_AFTER);
                    self.pacer.pause(d);
                    d
                }
                Retry::Reauth if reauthorized => return Err(err.with_retryable(false)),
                Retry::Reauth => {
                    reauthorized = true;
                    classify.reauthorize()?;
                    Duration::ZERO
                }
            };
            log::debug!("{} {label} attempt {attempt}/{attempts} failed, retrying in {wait:?}: {err}", self.provider);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    fn send_once(&self, label: &'static str, p: &Prepared, body: &Body<'_>) -> Result<HttpResponse> {
        let mut builder = http::Request::builder().method(p.method).uri(&p.url);
        for (k, v) in &p.headers {
            if !k.eq_ignore_ascii_case("host") {
                builder = builder.header(k.as_str(), v.as_str());
            }
        }
        self.counts.add(label);
        let bad = |e: http::Error| Error::other(format!("bad request: {e}"));
        let result = match body {
            Body::Empty => self.agent.run(builder.body(()).map_err(bad)?),
            Body::Bytes(b) => self.agent.run(builder.body(*b).map_err(bad)?),
            Body::Stream { open, .. } => {
                let mut reader = open()?;
                let body = ureq::SendBody::from_reader(&mut reader);
                self.agent.run(builder.body(body).map_err(bad)?)
            }
        };
        result.map_err(|e| classify::transport(&self.host, e))
    }
}

pub(crate) fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::getrandom(&mut b);
    let f = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    d.mul_f64(f)
}

/// Read a response body fully, at most `limit` bytes (a longer body is an error, never
/// silently cut).
pub fn read_body(resp: &mut HttpResponse, limit: u64) -> Result<Vec<u8>> {
    let mut v = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(limit.saturating_add(1))
        .read_to_end(&mut v)
        .map_err(|e| Error::new(Kind::Network, format!("reading the response failed: {e}")).with_retryable(true))?;
    if v.len() as u64 > limit {
        return Err(Error::new(Kind::Protocol, format!("the server's answer is larger than {limit} bytes"))
            .with_retryable(false));
    }
    Ok(v)
}

pub fn header<'r>(resp: &'r HttpResponse, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_label() {
        let c = Counts::new(&["GET", "PUT", "OTHER"]);
        c.add("GET");
        c.add("GET");
        c.add("PUT");
        c.add("PATCH");
        assert_eq!(c.snapshot(), vec![("GET", 2), ("PUT", 1), ("OTHER", 1)]);
        assert_eq!(c.get("GET"), 2);
    }

    #[test]
    fn pacer_holds_everyone_back() {
        let p = Pacer::default();
        p.pause(Duration::from_millis(30));
        p.pause(Duration::from_millis(1)); // a shorter pause never shortens a longer one
        let t = Instant::now();
        p.wait();
        assert!(t.elapsed() >= Duration::from_millis(25));
    }
}
