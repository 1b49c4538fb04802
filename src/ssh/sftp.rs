//! An SFTP version 3 client (draft-ietf-secsh-filexfer-02, as OpenSSH speaks it) over one
//! session channel: names are bytes end to end; reads and writes are pipelined (several
//! requests in flight); `posix-rename@openssh.com` replaces a target in one step where the
//! server offers it. Every reply is checked against its request id and bounded.

use super::channel::{ChannelId, Session};
use super::wire::{Reader, Writer, protocol};
use crate::error::{Error, Kind, Result};

const INIT: u8 = 1;
const VERSION: u8 = 2;
const OPEN: u8 = 3;
const CLOSE: u8 = 4;
const READ: u8 = 5;
const WRITE: u8 = 6;
const LSTAT: u8 = 7;
const SETSTAT: u8 = 9;
const OPENDIR: u8 = 11;
const READDIR: u8 = 12;
const REMOVE: u8 = 13;
const MKDIR: u8 = 14;
const RMDIR: u8 = 15;
const REALPATH: u8 = 16;
const STAT: u8 = 17;
const RENAME: u8 = 18;
const STATUS: u8 = 101;
const HANDLE: u8 = 102;
const DATA: u8 = 103;
const NAME: u8 = 104;
const ATTRS: u8 = 105;
const EXTENDED: u8 = 200;

pub const FX_OK: u32 = 0;
pub const FX_EOF: u32 = 1;
pub const FX_NO_SUCH_FILE: u32 = 2;
pub const FX_PERMISSION_DENIED: u32 = 3;
pub const FX_FAILURE: u32 = 4;
pub const FX_OP_UNSUPPORTED: u32 = 8;

pub const OPEN_READ: u32 = 1;
pub const OPEN_WRITE: u32 = 2;
pub const OPEN_CREAT: u32 = 8;
pub const OPEN_TRUNC: u32 = 0x10;

/// A reply packet longer than this is refused (OpenSSH sends at most 256 KiB).
const MAX_PACKET: usize = 1 << 20;
/// Bytes per READ/WRITE request, and requests in flight.
const CHUNK: usize = 64 * 1024;
const IN_FLIGHT: usize = 16;
/// A directory listing with more entries than this is refused.
const MAX_ENTRIES: usize = 10_000_000;

/// File attributes (the fields SFTP v3 has; each optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub uid_gid: Option<(u32, u32)>,
    pub permissions: Option<u32>,
    pub atime_mtime: Option<(u32, u32)>,
}

impl Attrs {
    pub fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o040000)
    }
    pub fn is_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o100000)
    }
    pub fn is_link(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o120000)
    }

    fn read(r: &mut Reader<'_>) -> Result<Attrs> {
        let flags = r.u32()?;
        let mut a = Attrs::default();
        if flags & 1 != 0 {
            a.size = Some((u64::from(r.u32()?) << 32) | u64::from(r.u32()?));
        }
        if flags & 2 != 0 {
            a.uid_gid = Some((r.u32()?, r.u32()?));
        }
        if flags & 4 != 0 {
            a.permissions = Some(r.u32()?);
        }
        if flags & 8 != 0 {
            a.atime_mtime = Some((r.u32()?, r.u32()?));
        }
        if flags & 0x8000_0000 != 0 {
            for _ in 0..r.u32()?.min(1000) {
                r.string()?;
                r.string()?;
            }
        }
        Ok(a)
    }

    fn write(&self, w: &mut Writer) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= 1;
        }
        if self.uid_gid.is_some() {
            flags |= 2;
        }
        if self.permissions.is_some() {
            flags |= 4;
        }
        if self.atime_mtime.is_some() {
            flags |= 8;
        }
        w.u32(flags);
        if let Some(s) = self.size {
            w.u32((s >> 32) as u32).u32(s as u32);
        }
        if let Some((u, g)) = self.uid_gid {
            w.u32(u).u32(g);
        }
        if let Some(p) = self.permissions {
            w.u32(p);
        }
        if let Some((a, m)) = self.atime_mtime {
            w.u32(a).u32(m);
        }
    }
}

/// A server's STATUS answer as an error.
pub fn status_error(code: u32, message: &str, what: &str, path: &[u8]) -> Error {
    let (kind, retry) = match code {
        FX_NO_SUCH_FILE => (Kind::NotFound, false),
        FX_PERMISSION_DENIED => (Kind::Permission, false),
        FX_OP_UNSUPPORTED => (Kind::Unsupported, false),
        6 | 7 => (Kind::Network, true),
        _ => (Kind::Server, false),
    };
    let message: String = message.chars().take(200).collect();
    let shown = crate::path::display_bytes(path);
    Error::new(kind, format!("SFTP {what} {shown}: {message} (status {code})")).with_retryable(retry)
}

pub struct Sftp {
    sess: Session,
    ch: ChannelId,
    next_id: u32,
    /// What the server's VERSION named (`posix-rename@openssh.com`, `limits@openssh.com`...).
    pub extensions: Vec<(String, String)>,
}

/// One reply: its type, and the rest after the request id.
struct Reply {
    kind: u8,
    body: Vec<u8>,
}

impl Sftp {
    /// Start the SFTP subsystem on a session.
    pub fn start(mut sess: Session) -> Result<Sftp> {
        let ch = sess.open()?;
        if !sess.subsystem(ch, "sftp")? {
            return Err(Error::new(Kind::Unsupported, "the SSH server does not offer SFTP (no sftp subsystem)"));
        }
        let mut s = Sftp { sess, ch, next_id: 0, extensions: Vec::new() };
        let mut w = Writer::new(INIT);
        w.u32(3);
        s.write_packet(&w.0)?;
        let p = s.read_packet()?;
        if p.first() != Some(&VERSION) {
            return Err(protocol("the SFTP server did not answer with its version"));
        }
        let mut r = Reader(&p[1..]);
        let v = r.u32()?;
        if v < 3 {
            return Err(Error::new(
                Kind::Unsupported,
                format!("the SFTP server speaks version {v}; cloudsync needs 3"),
            ));
        }
        while !r.rest().is_empty() {
            let name = String::from_utf8_lossy(r.string()?).into_owned();
            let data = String::from_utf8_lossy(r.string()?).into_owned();
            s.extensions.push((name, data));
        }
        Ok(s)
    }

    pub fn has_extension(&self, name: &str) -> bool {
        self.extensions.iter().any(|(n, _)| n == name)
    }

    pub fn session(&mut self) -> &mut Session {
        &mut self.sess
    }

    fn write_packet(&mut self, payload: &[u8]) -> Result<()> {
        let mut p = Vec::with_capacity(4 + payload.len());
        p.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        p.extend_from_slice(payload);
        self.sess.write(self.ch, &p)
    }

    fn read_packet(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.sess.read_exact(self.ch, &mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_PACKET {
            return Err(protocol(format!("an SFTP packet of {len} bytes")));
        }
        let mut p = vec![0u8; len];
        self.sess.read_exact(self.ch, &mut p)?;
        Ok(p)
    }

    /// Send a request; returns its id.
    fn send(&mut self, kind: u8, build: impl FnOnce(&mut Writer)) -> Result<u32> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let mut w = Writer::new(kind);
        w.u32(id);
        build(&mut w);
        self.write_packet(&w.0)?;
        Ok(id)
    }

    /// The reply to request `id` (replies come in order on OpenSSH, but are matched).
    fn reply(&mut self, id: u32) -> Result<Reply> {
        let p = self.read_packet()?;
        let mut r = Reader(&p[1..]);
        let got = r.u32()?;
        if got != id {
            return Err(protocol(format!("an SFTP reply to request {got} where {id} was expected")));
        }
        Ok(Reply { kind: p[0], body: r.rest().to_vec() })
    }

    fn call(&mut self, kind: u8, build: impl FnOnce(&mut Writer)) -> Result<Reply> {
        let id = self.send(kind, build)?;
        self.reply(id)
    }

    fn status(reply: &Reply) -> Result<(u32, String)> {
        if reply.kind != STATUS {
            return Err(protocol(format!("SFTP: reply type {} where a status was expected", reply.kind)));
        }
        let mut r = Reader(&reply.body);
        Ok((r.u32()?, String::from_utf8_lossy(r.string().unwrap_or(b"")).into_owned()))
    }

    /// A request whose answer is a status: OK, or the error.
    fn simple(&mut self, kind: u8, what: &str, path: &[u8], build: impl FnOnce(&mut Writer)) -> Result<()> {
        let reply = self.call(kind, build)?;
        match Self::status(&reply)? {
            (FX_OK, _) => Ok(()),
            (code, msg) => Err(status_error(code, &msg, what, path)),
        }
    }

    pub fn realpath(&mut self, path: &[u8]) -> Result<Vec<u8>> {
        let reply = self.call(REALPATH, |w| {
            w.string(path);
        })?;
        if reply.kind != NAME {
            let (code, msg) = Self::status(&reply)?;
            return Err(status_error(code, &msg, "realpath", path));
        }
        let mut r = Reader(&reply.body);
        if r.u32()? != 1 {
            return Err(protocol("SFTP realpath answered with several names"));
        }
        Ok(r.string()?.to_vec())
    }

    fn stat_with(&mut self, kind: u8, path: &[u8]) -> Result<Option<Attrs>> {
        let reply = self.call(kind, |w| {
            w.string(path);
        })?;
        if reply.kind == ATTRS {
            return Ok(Some(Attrs::read(&mut Reader(&reply.body))?));
        }
        match Self::status(&reply)? {
            (FX_NO_SUCH_FILE, _) => Ok(None),
            (code, msg) => Err(status_error(code, &msg, "stat", path)),
        }
    }

    /// The attributes of `path` (links followed), `None` when nothing is there.
    pub fn stat(&mut self, path: &[u8]) -> Result<Option<Attrs>> {
        self.stat_with(STAT, path)
    }

    /// The attributes of `path` itself (a link is a link).
    pub fn lstat(&mut self, path: &[u8]) -> Result<Option<Attrs>> {
        self.stat_with(LSTAT, path)
    }

    fn handle(reply: &Reply, what: &str, path: &[u8]) -> Result<Vec<u8>> {
        if reply.kind == HANDLE {
            return Ok(Reader(&reply.body).string()?.to_vec());
        }
        let (code, msg) = Self::status(reply)?;
        Err(status_error(code, &msg, what, path))
    }

    /// The entries of a directory (names as bytes, `.` and `..` left out); `None` when
    /// there is no such directory.
    pub fn list(&mut self, path: &[u8]) -> Result<Option<Vec<(Vec<u8>, Attrs)>>> {
        let reply = self.call(OPENDIR, |w| {
            w.string(path);
        })?;
        if reply.kind == STATUS && Self::status(&reply)?.0 == FX_NO_SUCH_FILE {
            return Ok(None);
        }
        let h = Self::handle(&reply, "opendir", path)?;
        let mut out = Vec::new();
        let result = loop {
            let reply = self.call(READDIR, |w| {
                w.string(&h);
            })?;
            if reply.kind == STATUS {
                match Self::status(&reply)? {
                    (FX_EOF, _) => break Ok(()),
                    (code, msg) => break Err(status_error(code, &msg, "readdir", path)),
                }
            }
            if reply.kind != NAME {
                break Err(protocol("SFTP readdir answered with something else"));
            }
            let mut r = Reader(&reply.body);
            let n = r.u32()?;
            for _ in 0..n {
                let name = r.string()?.to_vec();
                r.string()?; // longname
                let attrs = Attrs::read(&mut r)?;
                if name != b"." && name != b".." {
                    out.push((name, attrs));
                }
            }
            if out.len() > MAX_ENTRIES {
                break Err(protocol("an SFTP directory listing without end"));
            }
        };
        let _ = self.close_handle(&h);
        result.map(|()| Some(out))
    }

    fn close_handle(&mut self, h: &[u8]) -> Result<()> {
        self.simple(CLOSE, "close", b"", |w| {
            w.string(h);
        })
    }

    pub fn mkdir(&mut self, path: &[u8]) -> Result<()> {
        self.simple(MKDIR, "mkdir", path, |w| {
            w.string(path).u32(0);
        })
    }

    pub fn rmdir(&mut self, path: &[u8]) -> Result<()> {
        self.simple(RMDIR, "rmdir", path, |w| {
            w.string(path);
        })
    }

    pub fn remove(&mut self, path: &[u8]) -> Result<()> {
        self.simple(REMOVE, "remove", path, |w| {
            w.string(path);
        })
    }

    /// Set the access and modification times (seconds; SFTP v3 has no finer).
    pub fn set_times(&mut self, path: &[u8], atime: u32, mtime: u32) -> Result<()> {
        let attrs = Attrs { atime_mtime: Some((atime, mtime)), ..Attrs::default() };
        self.simple(SETSTAT, "setstat", path, |w| {
            w.string(path);
            attrs.write(w);
        })
    }

    /// Rename `from` onto `to`, replacing it in one step where the server offers
    /// `posix-rename@openssh.com`; `Ok(false)` when the server has only plain v3 RENAME
    /// and `to` exists (the caller decides how to replace it).
    pub fn rename(&mut self, from: &[u8], to: &[u8]) -> Result<bool> {
        if self.has_extension("posix-rename@openssh.com") {
            self.simple(EXTENDED, "rename", from, |w| {
                w.string(b"posix-rename@openssh.com").string(from).string(to);
            })?;
            return Ok(true);
        }
        let reply = self.call(RENAME, |w| {
            w.string(from).string(to);
        })?;
        match Self::status(&reply)? {
            (FX_OK, _) => Ok(true),
            (FX_FAILURE, _) if self.stat(to)?.is_some() => Ok(false),
            (code, msg) => Err(status_error(code, &msg, "rename", from)),
        }
    }

    pub fn open(&mut self, path: &[u8], flags: u32) -> Result<Vec<u8>> {
        let reply = self.call(OPEN, |w| {
            w.string(path).u32(flags);
            Attrs::default().write(w);
        })?;
        Self::handle(&reply, "open", path)
    }

    pub fn close(&mut self, h: &[u8]) -> Result<()> {
        self.close_handle(h)
    }

    /// Write everything `src` delivers at `offset` on, pipelined; returns the bytes written.
    pub fn write_from(&mut self, h: &[u8], mut offset: u64, src: &mut dyn std::io::Read) -> Result<u64> {
        let mut pending = std::collections::VecDeque::new();
        let mut total = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let mut done = false;
        loop {
            while !done && pending.len() < IN_FLIGHT {
                let mut n = 0;
                while n < CHUNK {
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // Collect what is in flight, then report the source's error.
                            while let Some(id) = pending.pop_front() {
                                let _ = self.reply(id);
                            }
                            return Err(Error::from(e));
                        }
                    }
                }
                if n == 0 {
                    done = true;
                    break;
                }
                let data = &buf[..n];
                let id = self.send(WRITE, |w| {
                    w.string(h).u32((offset >> 32) as u32).u32(offset as u32).string(data);
                })?;
                pending.push_back(id);
                offset += n as u64;
                total += n as u64;
            }
            let Some(id) = pending.pop_front() else { return Ok(total) };
            let reply = self.reply(id)?;
            match Self::status(&reply)? {
                (FX_OK, _) => {}
                (code, msg) => {
                    while let Some(id) = pending.pop_front() {
                        let _ = self.reply(id);
                    }
                    return Err(status_error(code, &msg, "write", b""));
                }
            }
        }
    }

    /// Read `len` bytes at `offset` into `out` (fewer only at the end of the file),
    /// pipelined.
    pub fn read_into(&mut self, h: &[u8], offset: u64, len: u64, out: &mut Vec<u8>) -> Result<u64> {
        let mut pending = std::collections::VecDeque::new();
        let mut next = offset;
        let end = offset.saturating_add(len);
        let mut got = 0u64;
        loop {
            while next < end && pending.len() < IN_FLIGHT {
                let n = (end - next).min(CHUNK as u64) as u32;
                let at = next;
                let id = self.send(READ, |w| {
                    w.string(h).u32((at >> 32) as u32).u32(at as u32).u32(n);
                })?;
                pending.push_back((id, at, n));
                next += u64::from(n);
            }
            let Some((id, at, n)) = pending.pop_front() else { return Ok(got) };
            let reply = self.reply(id)?;
            if reply.kind == DATA {
                let data = Reader(&reply.body).string()?;
                if at != offset + got || data.len() as u32 > n {
                    return Err(protocol("an SFTP read answered out of order or too long"));
                }
                out.extend_from_slice(data);
                got += data.len() as u64;
                if (data.len() as u32) < n {
                    // A short read: the file ended (or the server reads less): ask again.
                    for (id, ..) in pending.drain(..).collect::<Vec<_>>() {
                        let _ = self.reply(id)?;
                    }
                    if got < len && data.is_empty() {
                        return Ok(got);
                    }
                    return if got < len {
                        self.read_into(h, offset + got, len - got, out).map(|more| got + more)
                    } else {
                        Ok(got)
                    };
                }
            } else {
                match Self::status(&reply)? {
                    (FX_EOF, _) => {
                        for (id, ..) in pending.drain(..).collect::<Vec<_>>() {
                            let _ = self.reply(id)?;
                        }
                        return Ok(got);
                    }
                    (code, msg) => return Err(status_error(code, &msg, "read", b"")),
                }
            }
        }
    }
}
