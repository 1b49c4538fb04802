//! A scripted HTTP server on loopback for the failures a real S3 server will not produce
//! on demand: hostile keys, malformed XML, throttling, short bodies.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn has_query(&self, k: &str) -> bool {
        self.query.split('&').any(|p| p == k || p.starts_with(&format!("{k}=")))
    }
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Announce this Content-Length instead of the body's (to simulate a short body).
    pub claimed_len: Option<usize>,
}

impl Resp {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Resp {
        Resp { status, headers: Vec::new(), body: body.into(), claimed_len: None }
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

pub struct FakeServer {
    pub endpoint: String,
    pub requests: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (reqs, stop2) = (requests.clone(), stop.clone());
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let reqs = reqs.clone();
                let handler = handler.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let method = parts.next().unwrap_or("").to_string();
                        let target = parts.next().unwrap_or("").to_string();
                        let (path, query) = target
                            .split_once('?')
                            .map(|(a, b)| (a.to_string(), b.to_string()))
                            .unwrap_or((target, String::new()));
                        let mut headers = Vec::new();
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((k, v)) = h.split_once(':') {
                                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
                                if k == "content-length" {
                                    len = v.parse().unwrap_or(0);
                                }
                                headers.push((k, v));
                            }
                        }
                        let mut body = vec![0; len];
                        if reader.read_exact(&mut body).is_err() {
                            return;
                        }
                        let req = Req { method, path, query, headers, body };
                        reqs.lock().unwrap().push(req.clone());
                        let resp = handler(&req);
                        let claimed = resp.claimed_len.unwrap_or(resp.body.len());
                        let mut out = format!("HTTP/1.1 {} X\r\ncontent-length: {claimed}\r\n", resp.status);
                        for (k, v) in &resp.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        let _ = conn.write_all(out.as_bytes());
                        if req.method != "HEAD" {
                            let _ = conn.write_all(&resp.body);
                        }
                        if resp.claimed_len.is_some() {
                            return; // close early: the body is short
                        }
                    }
                });
            }
        });
        FakeServer { endpoint, requests, stop }
    }

    pub fn count(&self, method: &str) -> usize {
        self.requests.lock().unwrap().iter().filter(|r| r.method == method).count()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

/// A ListObjectsV2 page with these (key, size, etag) objects and no common prefixes.
pub fn list_xml(objects: &[(&str, usize, &str)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult><Name>b</Name><IsTruncated>false</IsTruncated>",
    );
    for (k, size, etag) in objects {
        s.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2020-01-01T00:00:00.000Z</LastModified><ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size></Contents>",
            k.replace('&', "&amp;").replace('<', "&lt;")
        ));
    }
    s.push_str("</ListBucketResult>");
    s
}
