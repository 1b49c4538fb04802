//! One FTP control connection (RFC 959 with RFC 2228 `AUTH TLS`, RFC 2428 `EPSV`,
//! RFC 3659 `MLSD`/`MDTM`/`SIZE`/`REST STREAM`), plain or over TLS (rustls), and the data
//! connections it opens. Synchronous: each engine thread owns the connection it borrowed
//! from the pool for the length of one operation.
//!
//! Everything the server says is bounded (a reply line, a whole reply, a listing) and
//! every reply code is checked; a connection that saw anything unexpected is dropped,
//! never returned to the pool.

use super::tls::{self, TlsMode};
use crate::error::{Error, Kind, Result};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// A reply longer than this (all its lines) is refused.
const MAX_REPLY: usize = 64 * 1024;

/// A socket, in clear or wrapped in TLS.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    /// End the stream cleanly: TLS `close_notify`, then the TCP write side.
    fn finish(&mut self) -> io::Result<()> {
        if let Stream::Tls(s) = self {
            s.conn.send_close_notify();
            while s.conn.wants_write() {
                s.conn.write_tls(&mut s.sock)?;
            }
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            // A server that closes without close_notify (common on data connections) ends
            // the stream; the byte count and the transfer's final reply decide whether the
            // data is whole.
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                r => r,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One reply: its code and its text (the lines after the code, joined by newlines).
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.code)
    }
    /// The first line, shortened, for messages.
    pub fn brief(&self) -> String {
        let line = self.text.lines().next().unwrap_or("").trim();
        let line: String = line.chars().take(200).collect();
        format!("{} {line}", self.code)
    }
}

/// What the server advertised in `FEAT` (and its greeting).
#[derive(Debug, Clone, Default)]
pub(crate) struct Feat {
    pub mlsd: bool,
    pub mfmt: bool,
    pub mdtm: bool,
    pub size: bool,
    pub rest: bool,
    pub utf8: bool,
    pub epsv: bool,
    pub auth_tls: bool,
    /// vsftpd: sets times with `MDTM <time> <path>` (its `mdtm_write`).
    pub vsftpd: bool,
}

impl Feat {
    pub fn parse(feat: &str, greeting: &str) -> Feat {
        let mut f = Feat { vsftpd: greeting.contains("vsFTPd"), ..Feat::default() };
        for line in feat.lines().skip(1) {
            let word = line.trim().split([' ', ';']).next().unwrap_or("").to_ascii_uppercase();
            let rest = line.trim().get(word.len()..).unwrap_or("").trim().to_ascii_uppercase();
            match word.as_str() {
                "MLST" => f.mlsd = true,
                "MFMT" => f.mfmt = true,
                "MDTM" => f.mdtm = true,
                "SIZE" => f.size = true,
                "REST" => f.rest = rest.starts_with("STREAM"),
                "UTF8" => f.utf8 = true,
                "EPSV" => f.epsv = true,
                "AUTH" => f.auth_tls = rest.split_whitespace().any(|m| m == "TLS" || m == "SSL"),
                _ => {}
            }
        }
        f
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: String,
    pub tls: TlsMode,
    /// The TLS settings (roots or pin), shared; each connection gets its own session cache.
    pub tls_config: Option<tls::Settings>,
    /// The certificate pin (kept to rebuild the settings for TLS 1.2).
    pub pin: Option<[u8; 32]>,
    /// TLS 1.2 only (see [`super::Pool`]).
    pub tls12: bool,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

impl Endpoint {
    /// `host:port` as written in messages (IPv6 in brackets).
    pub fn shown(&self) -> String {
        crate::remote::kit::dirs::host_port(&self.host, self.port)
    }
}

fn net(ep: &Endpoint, what: &str, e: io::Error) -> Error {
    let kind = match e.kind() {
        io::ErrorKind::InvalidData => Kind::Protocol,
        _ => Kind::Network,
    };
    Error::new(kind, format!("FTP {what} with {} failed: {e}", ep.shown())).with_retryable(kind == Kind::Network)
}

/// A logged-in control connection.
pub(crate) struct Conn {
    ctrl: BufReader<Stream>,
    peer: IpAddr,
    pub feat: Feat,
    /// The login directory (`PWD`).
    pub home: Vec<u8>,
    /// The connection's own TLS settings (with its own session store, which the data
    /// connections resume from, as vsftpd's `require_ssl_reuse` wants).
    tls: Option<(tls::Settings, rustls::pki_types::ServerName<'static>)>,
    /// Fall back to PASV (EPSV was refused once).
    pub no_epsv: bool,
    pub last_used: Instant,
    io_timeout: Duration,
    shown: String,
}

fn tcp_connect(ep: &Endpoint, port: u16) -> Result<TcpStream> {
    let addrs: Vec<SocketAddr> = (ep.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| Error::new(Kind::Network, format!("FTP: cannot resolve {}: {e}", ep.host)).with_retryable(true))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, ep.connect_timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(ep.io_timeout)).ok();
                s.set_write_timeout(Some(ep.io_timeout)).ok();
                s.set_nodelay(true).ok();
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(net(ep, "connection", last.unwrap_or_else(|| io::Error::other("no address"))))
}

fn read_reply(r: &mut impl BufRead) -> io::Result<Reply> {
    let mut text = String::new();
    let mut line = Vec::new();
    let mut code: Option<u16> = None;
    loop {
        line.clear();
        let n = r.by_ref().take(8192).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection"));
        }
        if !line.ends_with(b"\n") {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a reply line longer than 8 KiB"));
        }
        let s = String::from_utf8_lossy(&line);
        let s = s.trim_end_matches(['\r', '\n']);
        let head = s.as_bytes();
        let this =
            (head.len() >= 3 && head[..3].iter().all(u8::is_ascii_digit)).then(|| s[..3].parse::<u16>().ok()).flatten();
        match (code, this) {
            (None, Some(c)) if head.get(3) == Some(&b'-') => {
                code = Some(c);
                text.push_str(&s[4..]);
            }
            (None, Some(c)) => {
                if !(100..600).contains(&c) {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, format!("reply code {c} is not FTP")));
                }
                text.push_str(s.get(4..).unwrap_or(""));
                return Ok(Reply { code: c, text });
            }
            (None, None) => {
                let shown: String = s.chars().take(80).collect();
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("not an FTP reply: {shown:?}")));
            }
            (Some(c), Some(t)) if t == c && head.get(3) == Some(&b' ') => {
                text.push('\n');
                text.push_str(s.get(4..).unwrap_or(""));
                return Ok(Reply { code: c, text });
            }
            (Some(_), _) => {
                text.push('\n');
                text.push_str(s);
            }
        }
        if text.len() > MAX_REPLY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a reply longer than 64 KiB"));
        }
    }
}

/// A `257 "/path" ...` reply's path (`""` inside stands for one `"`).
pub(crate) fn parse_pwd(text: &str) -> Option<Vec<u8>> {
    let start = text.find('"')? + 1;
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = start;
    while i < b.len() {
        if b[i] == b'"' {
            if b.get(i + 1) == Some(&b'"') {
                out.push(b'"');
                i += 2;
                continue;
            }
            return Some(out);
        }
        out.push(b[i]);
        i += 1;
    }
    None
}

/// The port of an EPSV answer `229 ... (|||port|)`.
pub(crate) fn parse_epsv(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..text.rfind(')')?];
    let d = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(d).collect();
    (parts.len() == 5).then(|| parts[3].parse().ok()).flatten()
}

/// The port of a PASV answer `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)`. The address
/// is ignored: data connections go to the control connection's peer (as behind NAT, and
/// never to a third host the server names).
pub(crate) fn parse_pasv(text: &str) -> Option<u16> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u16> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .filter_map(|s| s.parse().ok())
        .collect();
    (nums.len() == 6 && nums[4] < 256 && nums[5] < 256).then(|| nums[4] * 256 + nums[5])
}

/// The error for a reply that is not what a command needed.
pub(crate) fn reply_error(what: &str, r: &Reply) -> Error {
    let (kind, retry) = match r.code {
        421 => (Kind::Network, true),
        425 | 426 | 450 | 451 => (Kind::Server, true),
        452 | 552 => (Kind::Quota, false),
        530 | 532 => (Kind::Permission, false),
        550 => (Kind::NotFound, false),
        553 => (Kind::BadName, false),
        500 | 501 | 502 | 504 => (Kind::Unsupported, false),
        _ => (Kind::Server, r.code >= 400 && r.code < 500),
    };
    let text = match r.code {
        452 | 552 => format!("the FTP server is out of space or over the user's quota ({})", r.brief()),
        530 => format!("the FTP server refused the login: {}", r.brief()),
        _ => format!("FTP {what}: the server answered {}", r.brief()),
    };
    Error::new(kind, text).with_retryable(retry)
}

impl Conn {
    /// Connect, secure as configured, log in and read the server's features.
    pub fn open(ep: &Endpoint) -> Result<Conn> {
        let tcp = tcp_connect(ep, ep.port)?;
        let peer = tcp.peer_addr().map_err(|e| net(ep, "connection", e))?.ip();
        let tls = match (&ep.tls_config, ep.tls) {
            (Some(base), TlsMode::Explicit | TlsMode::Implicit) => {
                let name = rustls::pki_types::ServerName::try_from(ep.host.clone())
                    .map_err(|_| Error::usage(format!("{:?} is not a host name TLS can check", ep.host)))?;
                Some((tls::per_connection(base), name))
            }
            _ => None,
        };
        let stream = match (&tls, ep.tls) {
            (Some((cfg, name)), TlsMode::Implicit) => tls::wrap(cfg, name, tcp, &ep.shown())?,
            _ => Stream::Plain(tcp),
        };
        let mut c = Conn {
            ctrl: BufReader::with_capacity(16 * 1024, stream),
            peer,
            feat: Feat::default(),
            home: b"/".to_vec(),
            tls,
            no_epsv: false,
            last_used: Instant::now(),
            io_timeout: ep.io_timeout,
            shown: ep.shown(),
        };
        let greeting = c.reply().map_err(|e| net(ep, "greeting", e))?;
        if greeting.code != 220 {
            return Err(reply_error("connection", &greeting));
        }
        if ep.tls == TlsMode::Explicit {
            let r = c.cmd("AUTH TLS")?;
            if r.code != 234 {
                return Err(Error::new(
                    Kind::Permission,
                    format!(
                        "the FTP server does not offer TLS (AUTH TLS answered {}); set tls to OFF to connect in clear",
                        r.brief()
                    ),
                ));
            }
            let (cfg, name) = c.tls.clone().expect("TLS settings for explicit TLS");
            // Nothing is buffered after 234: the server waits for the handshake. The socket
            // lives on in the clone when the plain reader is dropped.
            let tcp = c.ctrl.get_ref().tcp().try_clone().map_err(|e| net(ep, "connection", e))?;
            c.ctrl = BufReader::with_capacity(16 * 1024, tls::wrap(&cfg, &name, tcp, &ep.shown())?);
        }
        let r = c.cmd_bytes(&[b"USER ", ep.user.as_bytes()].concat())?;
        let r = if r.code == 331 || r.code == 332 { c.cmd_bytes(&[b"PASS ", ep.pass.as_bytes()].concat())? } else { r };
        if !(r.code == 230 || r.code == 202) {
            return Err(if r.code == 530 {
                Error::new(
                    Kind::Permission,
                    format!("the FTP server refused the user name or password ({})", r.brief()),
                )
            } else {
                reply_error("login", &r)
            });
        }
        if c.tls.is_some() {
            c.expect("PBSZ 0", |r| r.ok())?;
            c.expect("PROT P", |r| r.ok())?;
        }
        let feat = c.cmd("FEAT")?;
        c.feat = if feat.code == 211 {
            Feat::parse(&feat.text, &greeting.text)
        } else {
            Feat { vsftpd: greeting.text.contains("vsFTPd"), ..Feat::default() }
        };
        if c.feat.utf8 {
            let _ = c.cmd("OPTS UTF8 ON")?;
        }
        c.expect("TYPE I", |r| r.ok())?;
        let pwd = c.cmd("PWD")?;
        if pwd.code == 257
            && let Some(p) = parse_pwd(&pwd.text)
        {
            c.home = p;
        }
        Ok(c)
    }

    fn reply(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.ctrl)
    }

    fn io(&self, what: &str, e: io::Error) -> Error {
        let kind = if e.kind() == io::ErrorKind::InvalidData { Kind::Protocol } else { Kind::Network };
        Error::new(kind, format!("FTP {what} with {} failed: {e}", self.shown)).with_retryable(kind == Kind::Network)
    }

    /// Send a command line (never containing CR or LF) and read its reply.
    pub fn cmd_bytes(&mut self, line: &[u8]) -> Result<Reply> {
        if line.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Error::new(Kind::BadName, "a name with a line break cannot be sent to an FTP server"));
        }
        let verb = String::from_utf8_lossy(line.split(|b| *b == b' ').next().unwrap_or(b"")).into_owned();
        let mut buf = Vec::with_capacity(line.len() + 2);
        buf.extend_from_slice(line);
        buf.extend_from_slice(b"\r\n");
        let sent = self.ctrl.get_mut().write_all(&buf).and_then(|_| self.ctrl.get_mut().flush());
        sent.map_err(|e| self.io(&verb, e))?;
        self.last_used = Instant::now();
        self.reply().map_err(|e| self.io(&verb, e))
    }

    pub fn cmd(&mut self, line: &str) -> Result<Reply> {
        self.cmd_bytes(line.as_bytes())
    }

    /// A command whose reply must pass `ok`.
    pub fn expect(&mut self, line: &str, ok: impl Fn(&Reply) -> bool) -> Result<Reply> {
        let r = self.cmd(line)?;
        if ok(&r) { Ok(r) } else { Err(reply_error(line.split(' ').next().unwrap_or(line), &r)) }
    }

    /// Open a passive data connection: EPSV, or PASV where EPSV is refused.
    fn passive(&mut self) -> Result<TcpStream> {
        let mut port = None;
        if !self.no_epsv {
            let r = self.cmd("EPSV")?;
            if r.code == 229 {
                port = Some(
                    parse_epsv(&r.text)
                        .ok_or_else(|| Error::new(Kind::Protocol, format!("FTP EPSV: cannot read {:?}", r.brief())))?,
                );
            } else if !matches!(r.code, 500 | 501 | 502 | 504 | 522) {
                return Err(reply_error("EPSV", &r));
            } else {
                self.no_epsv = true;
            }
        }
        let port = match port {
            Some(p) => p,
            None => {
                let r = self.cmd("PASV")?;
                if r.code != 227 {
                    return Err(reply_error("PASV", &r));
                }
                parse_pasv(&r.text)
                    .ok_or_else(|| Error::new(Kind::Protocol, format!("FTP PASV: cannot read {:?}", r.brief())))?
            }
        };
        let addr = SocketAddr::new(self.peer, port);
        let s = TcpStream::connect_timeout(&addr, self.io_timeout.min(Duration::from_secs(60)))
            .map_err(|e| self.io("data connection", e))?;
        s.set_read_timeout(Some(self.io_timeout)).ok();
        s.set_write_timeout(Some(self.io_timeout)).ok();
        Ok(s)
    }

    /// Start a transfer: open the data connection, send `line`, wait for 150/125. `rest`
    /// sends `REST` first (a read from an offset).
    pub fn start_data(&mut self, line: &[u8], rest: u64) -> Result<Stream> {
        let data = self.passive()?;
        if rest > 0 {
            let r = self.cmd(&format!("REST {rest}"))?;
            if r.code != 350 {
                return Err(reply_error("REST", &r));
            }
        }
        let r = self.cmd_bytes(line)?;
        if !(r.code == 150 || r.code == 125) {
            let verb = String::from_utf8_lossy(line.split(|b| *b == b' ').next().unwrap_or(b"")).into_owned();
            return Err(reply_error(&verb, &r));
        }
        match &self.tls {
            Some((cfg, name)) => tls::wrap(cfg, name, data, &self.shown),
            None => Ok(Stream::Plain(data)),
        }
    }

    /// After a transfer's data connection is closed: its final reply.
    pub fn finish_data(&mut self, what: &str) -> Result<Reply> {
        let r = self.reply().map_err(|e| self.io(what, e))?;
        if !r.ok() {
            return Err(reply_error(what, &r));
        }
        Ok(r)
    }

    /// Run a listing command and read all its bytes (at most `limit`).
    pub fn read_listing(&mut self, line: &[u8], limit: u64) -> Result<Vec<u8>> {
        let mut data = self.start_data(line, 0)?;
        let mut out = Vec::new();
        let verb = String::from_utf8_lossy(line.split(|b| *b == b' ').next().unwrap_or(b"")).into_owned();
        (&mut data).take(limit + 1).read_to_end(&mut out).map_err(|e| self.io(&verb, e))?;
        if out.len() as u64 > limit {
            return Err(Error::new(
                Kind::Protocol,
                format!("FTP {verb}: the listing is larger than {} MiB", limit >> 20),
            ));
        }
        drop(data);
        self.finish_data(&verb)?;
        Ok(out)
    }

    /// Write `src` to an upload's data connection, end it and read the final reply.
    pub fn send_data(&mut self, mut data: Stream, src: &mut dyn Read) -> Result<u64> {
        let mut buf = vec![0u8; 128 * 1024];
        let mut sent = 0u64;
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // The source's own error (changed file, cancel) goes out as it is, once
                    // the server has finished with the transfer it sees ending (its final
                    // reply), so that the caller's clean-up comes after the server's
                    // last write to the file, never before.
                    drop(data);
                    let _ = self.reply();
                    return Err(Error::from(e));
                }
            };
            data.write_all(&buf[..n]).map_err(|e| self.io("STOR", e))?;
            sent += n as u64;
        }
        // The end of the data is the end of the connection (close_notify, then FIN); the
        // final reply on the control connection says whether the server stored it all.
        data.flush().and_then(|_| data.finish()).map_err(|e| self.io("STOR", e))?;
        if let Stream::Tls(_) = data {
            // A TLS server answers with its own close_notify (vsftpd reports the upload as
            // failed when the socket goes before its TLS shutdown is done). Plain servers
            // may keep the socket open until the client is gone (rclone's).
            let mut rest = [0u8; 64];
            let _ = data.read(&mut rest);
        }
        drop(data);
        self.finish_data("STOR")?;
        Ok(sent)
    }

    /// End the session politely (best effort).
    pub fn quit(mut self) {
        let _ = self.ctrl.get_mut().write_all(b"QUIT\r\n");
        let _ = self.ctrl.get_mut().finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(s: &str) -> io::Result<Reply> {
        read_reply(&mut io::Cursor::new(s.as_bytes().to_vec()))
    }

    #[test]
    fn replies_single_multi_and_hostile() {
        let r = reply("230 Login successful.\r\n").unwrap();
        assert_eq!((r.code, r.text.as_str()), (230, "Login successful."));
        let r = reply("211-Features:\r\n EPSV\r\n MDTM\r\n211 End\r\n").unwrap();
        assert_eq!(r.code, 211);
        let f = Feat::parse(&r.text, "220 (vsFTPd 3.0.3)");
        assert!(f.epsv && f.mdtm && f.vsftpd && !f.mlsd);
        // A line inside a multi-line reply may itself start with digits.
        let r = reply("250-first\r\n123 inner\r\n250 last\r\n").unwrap();
        assert_eq!(r.text, "first\n123 inner\nlast");
        assert!(reply("HTTP/1.1 400 Bad Request\r\n").is_err());
        assert!(reply("230 no newline").is_err());
        assert!(reply(&format!("230 {}\r\n", "x".repeat(9000))).is_err());
        assert!(reply(&format!("211-x\r\n{}", " y\r\n".repeat(20_000))).is_err());
        assert!(reply("999 nope\r\n").is_err());
    }

    #[test]
    fn feat_pwd_and_passive_answers() {
        let f =
            Feat::parse("Features:\n AUTH TLS\n MLST type*;size*;modify*;\n MFMT\n REST STREAM\n UTF8\n SIZE", "220 x");
        assert!(f.auth_tls && f.mlsd && f.mfmt && f.rest && f.utf8 && f.size && !f.vsftpd);
        assert_eq!(parse_pwd("\"/home/u\" is the current directory"), Some(b"/home/u".to_vec()));
        assert_eq!(parse_pwd("\"/a \"\"q\"\"\" is cwd"), Some(b"/a \"q\"".to_vec()));
        assert_eq!(parse_pwd("no quotes"), None);
        assert_eq!(parse_epsv("Entering Extended Passive Mode (|||30005|)"), Some(30005));
        assert_eq!(parse_epsv("Entering Extended Passive Mode (!!!30005!)"), Some(30005));
        assert_eq!(parse_epsv("(|||x|)"), None);
        assert_eq!(parse_pasv("Entering Passive Mode (127,0,0,1,117,48)."), Some(117 * 256 + 48));
        assert_eq!(parse_pasv("Entering Passive Mode (127,0,0,1,300,48)"), None);
        assert_eq!(parse_pasv("=127,0,0,1,4,1"), Some(1025));
    }

    #[test]
    fn reply_codes_become_kinds() {
        let e = |code, text: &str| reply_error("STOR", &Reply { code, text: text.into() });
        assert_eq!(e(552, "Quota exceeded").kind(), Kind::Quota);
        assert!(e(421, "Too many connections").is_retryable());
        assert!(e(426, "aborted").is_retryable());
        assert_eq!(e(550, "No such file").kind(), Kind::NotFound);
        assert!(!e(550, "x").is_retryable());
        assert!(e(553, "Could not create file.").message().contains("553 Could not create file."));
    }
}
