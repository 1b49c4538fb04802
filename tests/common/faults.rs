//! A fault-injecting HTTP proxy on loopback, between cloudsync and a real server (s3s-fs):
//! requests go through unchanged (so signatures stay valid) and scripted rules damage the
//! answers the way networks, proxies and overloaded servers do: resets before or during
//! a response, 500/503/SlowDown with or without Retry-After, bodies cut short under a full
//! Content-Length, flipped bytes, stalls, and rewritten listings.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy saw of one request.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The status sent back (0 when the connection was cut before an answer).
    pub status: u16,
    /// The request's Range header, if any.
    pub range: Option<String>,
}

impl Seen {
    pub fn has_query(&self, k: &str) -> bool {
        self.query.split('&').any(|p| p == k || p.starts_with(&format!("{k}=")))
    }
}

pub type Rewrite = Arc<dyn Fn(&Seen, Vec<u8>) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
pub enum Fault {
    /// Answer with this status and body instead of forwarding (headers added as given).
    Answer { status: u16, headers: Vec<(String, String)>, body: String },
    /// Close the connection after reading the request, without answering.
    ResetBeforeResponse,
    /// Forward the answer's head and this many body bytes, then close (the Content-Length
    /// still announces the whole body).
    CutBody { after: usize },
    /// Flip one byte of the answer's body (xor 0x01) at this offset.
    FlipByte { at: usize },
    /// Wait this long before forwarding the request (the client's upload waits with it).
    StallRequest(Duration),
    /// Forward, then replace the body by what the function makes of it.
    Rewrite(Rewrite),
    /// Forward, leaving the `drop` headers out of the answer, adding `add`, and flipping
    /// one body byte at `flip_at` when given.
    EditHeaders { drop: Vec<String>, add: Vec<(String, String)>, flip_at: Option<usize> },
}

pub struct Rule {
    matches: Box<dyn Fn(&Seen) -> bool + Send + Sync>,
    fault: Fault,
    /// How many more requests it applies to (`usize::MAX`: all).
    left: usize,
}

pub struct FaultProxy {
    pub endpoint: String,
    rules: Arc<Mutex<Vec<Rule>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// A 503 SlowDown as S3 sends it, with an optional Retry-After value.
pub fn slow_down(retry_after: Option<&str>) -> Fault {
    let mut headers = vec![("content-type".to_string(), "application/xml".to_string())];
    if let Some(r) = retry_after {
        headers.push(("retry-after".to_string(), r.to_string()));
    }
    Fault::Answer {
        status: 503,
        headers,
        body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".into(),
    }
}

/// A 500 InternalError as S3 sends it.
pub fn internal_error() -> Fault {
    Fault::Answer {
        status: 500,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".into(),
    }
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let rules: Arc<Mutex<Vec<Rule>>> = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r2, s2, stop2) = (rules.clone(), seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (rules, seen, upstream) = (r2.clone(), s2.clone(), upstream.clone());
                std::thread::spawn(move || serve(conn, &upstream, &rules, &seen));
            }
        });
        FaultProxy { endpoint, rules, seen, stop }
    }

    /// Apply `fault` to the next `times` requests that `matches` accepts.
    pub fn add(&self, times: usize, matches: impl Fn(&Seen) -> bool + Send + Sync + 'static, fault: Fault) {
        self.rules.lock().unwrap().push(Rule { matches: Box::new(matches), fault, left: times });
    }

    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
    }

    pub fn count(&self, f: impl Fn(&Seen) -> bool) -> usize {
        self.seen.lock().unwrap().iter().filter(|s| f(s)).count()
    }

    /// The port, for clients that take host and port apart.
    pub fn port(&self) -> u16 {
        self.endpoint.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.endpoint.trim_start_matches("http://"));
    }
}

struct Head {
    first: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn get(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_head(r: &mut impl BufRead) -> Option<Head> {
    let mut first = String::new();
    if r.read_line(&mut first).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Some(Head { first: first.trim_end().to_string(), headers })
}

/// A body framed by Content-Length or chunked encoding (or, for answers, by the close).
fn read_body(r: &mut impl BufRead, head: &Head, until_close: bool) -> Option<Vec<u8>> {
    if head.get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        loop {
            let mut line = String::new();
            r.read_line(&mut line).ok()?;
            let n = usize::from_str_radix(line.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                return Some(out);
            }
            let start = out.len();
            out.resize(start + n, 0);
            r.read_exact(&mut out[start..]).ok()?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf).ok()?;
        }
    }
    match head.get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => {
            let mut body = vec![0; n];
            r.read_exact(&mut body).ok()?;
            Some(body)
        }
        None if until_close => {
            let mut body = Vec::new();
            r.read_to_end(&mut body).ok()?;
            Some(body)
        }
        None => Some(Vec::new()),
    }
}

fn serve(conn: TcpStream, upstream: &str, rules: &Mutex<Vec<Rule>>, seen: &Mutex<Vec<Seen>>) {
    let mut client_out = conn.try_clone().unwrap();
    let mut client = BufReader::new(conn);
    loop {
        let Some(head) = read_head(&mut client) else { return };
        let mut parts = head.first.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (path, query) = target
            .split_once('?')
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .unwrap_or((target.clone(), String::new()));
        let range = head.get("range").map(str::to_string);
        let mut s = Seen { method: method.clone(), path, query, status: 0, range };
        let fault = {
            let mut rules = rules.lock().unwrap();
            rules.iter_mut().find(|r| r.left > 0 && (r.matches)(&s)).map(|r| {
                r.left = r.left.saturating_sub(1);
                r.fault.clone()
            })
        };
        if let Some(Fault::StallRequest(d)) = &fault {
            std::thread::sleep(*d);
        }
        let record = |s: &Seen| seen.lock().unwrap().push(s.clone());
        let Some(body) = read_body(&mut client, &head, false) else {
            s.status = 2; // the client's request body did not arrive whole
            record(&s);
            return;
        };
        match &fault {
            Some(Fault::ResetBeforeResponse) => {
                record(&s);
                let _ = client_out.shutdown(std::net::Shutdown::Both);
                return;
            }
            Some(Fault::Answer { status, headers, body }) => {
                s.status = *status;
                record(&s);
                let mut out = format!("HTTP/1.1 {status} Fault\r\ncontent-length: {}\r\n", body.len());
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                let _ = client_out.write_all(out.as_bytes());
                if method != "HEAD" {
                    let _ = client_out.write_all(body.as_bytes());
                }
                continue;
            }
            _ => {}
        }
        // Forward on a fresh upstream connection.
        let Ok(mut up) = TcpStream::connect(upstream) else {
            s.status = 1; // the server refused the connection
            record(&s);
            return;
        };
        let mut req = format!("{}\r\n", head.first);
        for (k, v) in &head.headers {
            if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("transfer-encoding") {
                continue;
            }
            if k.eq_ignore_ascii_case("content-length") {
                continue;
            }
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
        if up.write_all(req.as_bytes()).is_err() || up.write_all(&body).is_err() {
            s.status = 3; // the server closed while reading the request
            record(&s);
            return;
        }
        let mut upr = BufReader::new(up);
        let Some(rhead) = read_head(&mut upr) else {
            record(&s); // the server closed without answering
            return;
        };
        let status: u16 = rhead.first.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let no_body = method == "HEAD" || status == 204 || status == 304;
        let mut rbody = if no_body { Vec::new() } else { read_body(&mut upr, &rhead, true).unwrap_or_default() };
        s.status = status;
        let announced = if no_body {
            rhead.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0)
        } else {
            match &fault {
                Some(Fault::Rewrite(f)) => {
                    rbody = f(&s, rbody);
                    rbody.len()
                }
                _ => rbody.len(),
            }
        };
        let flip = match &fault {
            Some(Fault::FlipByte { at }) | Some(Fault::EditHeaders { flip_at: Some(at), .. }) => Some(*at),
            _ => None,
        };
        if let Some(b) = flip.and_then(|at| rbody.get_mut(at)) {
            *b ^= 0x01;
        }
        record(&s);
        let mut out = format!("{}\r\n", rhead.first);
        for (k, v) in &rhead.headers {
            let k_l = k.to_ascii_lowercase();
            if matches!(k_l.as_str(), "content-length" | "transfer-encoding" | "connection") {
                continue;
            }
            if let Some(Fault::EditHeaders { drop, .. }) = &fault
                && drop.iter().any(|h| h.eq_ignore_ascii_case(k))
            {
                continue;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(Fault::EditHeaders { add, .. }) = &fault {
            for (k, v) in add {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        out.push_str(&format!("content-length: {announced}\r\n\r\n"));
        if client_out.write_all(out.as_bytes()).is_err() {
            return;
        }
        if let Some(Fault::CutBody { after }) = &fault {
            let _ = client_out.write_all(&rbody[..(*after).min(rbody.len())]);
            let _ = client_out.flush();
            let _ = client_out.shutdown(std::net::Shutdown::Both);
            return;
        }
        if !no_body && client_out.write_all(&rbody).is_err() {
            return;
        }
    }
}
