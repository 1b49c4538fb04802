//! The SSH connection protocol (RFC 4254), as much as SFTP needs: session channels with
//! flow control (windows), `subsystem` and `exec` requests, data and stderr, EOF, close,
//! exit status. One [`Session`] is one authenticated connection, used by one thread at a
//! time; its channels are opened one after another (the SFTP provider pools sessions).

use super::transport::Transport;
use super::wire::{Reader, Writer, protocol};
use crate::error::{Error, Kind, Result};

const OPEN: u8 = 90;
const OPEN_CONFIRMATION: u8 = 91;
const OPEN_FAILURE: u8 = 92;
const WINDOW_ADJUST: u8 = 93;
const DATA: u8 = 94;
const EXTENDED_DATA: u8 = 95;
const EOF: u8 = 96;
const CLOSE: u8 = 97;
const REQUEST: u8 = 98;
const SUCCESS: u8 = 99;
const FAILURE: u8 = 100;
const GLOBAL_REQUEST: u8 = 80;
const REQUEST_FAILURE: u8 = 82;

/// Our receive window, and when it is topped up again (half used).
const WINDOW: u32 = 2 << 20;
const MAX_PACKET: u32 = 256 * 1024;
/// What is kept of a command's stderr (for its error message).
const STDERR_KEEP: usize = 4096;

/// One channel's state.
#[derive(Default)]
struct Channel {
    remote: u32,
    remote_window: u64,
    remote_max: u32,
    window: u32,
    data: std::collections::VecDeque<u8>,
    stderr: Vec<u8>,
    eof: bool,
    /// The server closed it.
    closed: bool,
    /// We sent our CLOSE.
    sent_close: bool,
    exit: Option<u32>,
}

pub struct Session {
    t: Transport,
    next: u32,
    channels: std::collections::HashMap<u32, Channel>,
    shown: String,
}

/// A channel of a [`Session`], by its local number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ChannelId(u32);

impl Session {
    pub fn new(t: Transport, shown: &str) -> Session {
        Session { t, next: 0, channels: Default::default(), shown: shown.to_string() }
    }

    pub fn transport(&self) -> &Transport {
        &self.t
    }

    fn chan(&mut self, id: ChannelId) -> Result<&mut Channel> {
        self.channels.get_mut(&id.0).ok_or_else(|| Error::other("SSH: no such channel"))
    }

    /// Read and handle one incoming message of the connection layer.
    fn pump(&mut self) -> Result<()> {
        let m = self.t.recv()?;
        self.dispatch(m)
    }

    /// Handle one message of the connection layer.
    fn dispatch(&mut self, m: Vec<u8>) -> Result<()> {
        let mut r = Reader(&m[1..]);
        match m[0] {
            GLOBAL_REQUEST => {
                r.string()?;
                if r.bool()? {
                    self.t.send(&[REQUEST_FAILURE])?;
                }
            }
            WINDOW_ADJUST => {
                let id = r.u32()?;
                let n = r.u32()?;
                if let Some(c) = self.channels.get_mut(&id) {
                    c.remote_window = (c.remote_window + u64::from(n)).min(u64::from(u32::MAX));
                }
            }
            DATA | EXTENDED_DATA => {
                let id = r.u32()?;
                let stderr = m[0] == EXTENDED_DATA && r.u32()? == 1;
                let data = r.string()?;
                let Some(c) = self.channels.get_mut(&id) else { return Ok(()) };
                if data.len() as u32 > c.window {
                    return Err(protocol("the server sent more than the channel's window"));
                }
                c.window -= data.len() as u32;
                if stderr {
                    let room = STDERR_KEEP.saturating_sub(c.stderr.len());
                    c.stderr.extend_from_slice(&data[..data.len().min(room)]);
                } else {
                    c.data.extend(data);
                }
                if c.window < WINDOW / 2 {
                    let add = WINDOW - c.window;
                    c.window = WINDOW;
                    let remote = c.remote;
                    self.t.send(Writer::new(WINDOW_ADJUST).u32(remote).u32(add).0.as_slice())?;
                }
            }
            EOF => {
                if let Some(c) = self.channels.get_mut(&r.u32()?) {
                    c.eof = true;
                }
            }
            CLOSE => {
                let id = r.u32()?;
                if let Some(c) = self.channels.get_mut(&id) {
                    c.closed = true;
                    c.eof = true;
                    if !c.sent_close {
                        c.sent_close = true;
                        let remote = c.remote;
                        self.t.send(Writer::new(CLOSE).u32(remote).0.as_slice())?;
                    }
                }
            }
            REQUEST => {
                let id = r.u32()?;
                let kind = r.string()?;
                let want = r.bool()?;
                if kind == b"exit-status"
                    && let Some(c) = self.channels.get_mut(&id)
                {
                    c.exit = Some(r.u32()?);
                }
                if want && let Some(c) = self.channels.get(&id) {
                    let remote = c.remote;
                    self.t.send(Writer::new(FAILURE).u32(remote).0.as_slice())?;
                }
            }
            other => return Err(protocol(format!("unexpected message {other} on the connection"))),
        }
        Ok(())
    }

    /// Open a session channel.
    pub fn open(&mut self) -> Result<ChannelId> {
        let id = self.next;
        self.next += 1;
        let mut w = Writer::new(OPEN);
        w.string(b"session").u32(id).u32(WINDOW).u32(MAX_PACKET);
        self.t.send(&w.0)?;
        loop {
            let m = self.t.recv()?;
            let mut r = Reader(&m[1..]);
            match m[0] {
                OPEN_CONFIRMATION if r.u32()? == id => {
                    let remote = r.u32()?;
                    let remote_window = u64::from(r.u32()?);
                    let remote_max = r.u32()?.clamp(1024, MAX_PACKET);
                    self.channels.insert(
                        id,
                        Channel { remote, remote_window, remote_max, window: WINDOW, ..Default::default() },
                    );
                    return Ok(ChannelId(id));
                }
                OPEN_FAILURE => {
                    r.u32()?;
                    let code = r.u32()?;
                    let text = String::from_utf8_lossy(r.string()?).into_owned();
                    return Err(Error::new(
                        Kind::Server,
                        format!("the SSH server {} refused a session channel: {text} (code {code})", self.shown),
                    )
                    .with_retryable(code == 4));
                }
                _ => self.dispatch(m)?,
            }
        }
    }

    /// A channel request with a reply (`subsystem`, `exec`): whether the server agreed.
    fn request(&mut self, id: ChannelId, kind: &str, arg: &[u8]) -> Result<bool> {
        let remote = self.chan(id)?.remote;
        let mut w = Writer::new(REQUEST);
        w.u32(remote).string(kind.as_bytes()).bool(true).string(arg);
        self.t.send(&w.0)?;
        loop {
            let m = self.t.recv()?;
            match m[0] {
                SUCCESS if Reader(&m[1..]).u32()? == id.0 => return Ok(true),
                FAILURE if Reader(&m[1..]).u32()? == id.0 => return Ok(false),
                // Anything else (window, data, a global request) is the session's.
                _ => self.dispatch(m)?,
            }
        }
    }

    pub fn subsystem(&mut self, id: ChannelId, name: &str) -> Result<bool> {
        self.request(id, "subsystem", name.as_bytes())
    }

    pub fn exec(&mut self, id: ChannelId, command: &[u8]) -> Result<bool> {
        self.request(id, "exec", command)
    }

    /// Send `data` on the channel, waiting for window as needed.
    pub fn write(&mut self, id: ChannelId, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            let c = self.chan(id)?;
            if c.closed {
                return Err(Error::new(Kind::Network, "SSH: the server closed the channel").with_retryable(true));
            }
            let n = (c.remote_window.min(u64::from(c.remote_max)) as usize).min(data.len());
            if n == 0 {
                self.pump()?;
                continue;
            }
            c.remote_window -= n as u64;
            let remote = c.remote;
            let mut w = Writer::new(DATA);
            w.u32(remote).string(&data[..n]);
            self.t.send(&w.0)?;
            data = &data[n..];
        }
        Ok(())
    }

    /// Read into `buf`: 0 at the channel's end of data.
    pub fn read(&mut self, id: ChannelId, buf: &mut [u8]) -> Result<usize> {
        loop {
            let c = self.chan(id)?;
            if !c.data.is_empty() {
                let n = buf.len().min(c.data.len());
                for (dst, src) in buf.iter_mut().zip(c.data.drain(..n)) {
                    *dst = src;
                }
                return Ok(n);
            }
            if c.eof || c.closed {
                return Ok(0);
            }
            self.pump()?;
        }
    }

    /// Exactly `buf.len()` bytes, or an error at an early end.
    pub fn read_exact(&mut self, id: ChannelId, buf: &mut [u8]) -> Result<()> {
        let mut at = 0;
        while at < buf.len() {
            let n = self.read(id, &mut buf[at..])?;
            if n == 0 {
                return Err(
                    Error::new(Kind::Network, "SSH: the channel ended in the middle of a message").with_retryable(true)
                );
            }
            at += n;
        }
        Ok(())
    }

    /// Tell the server no more data comes.
    pub fn send_eof(&mut self, id: ChannelId) -> Result<()> {
        let remote = self.chan(id)?.remote;
        self.t.send(Writer::new(EOF).u32(remote).0.as_slice())
    }

    /// Close the channel and wait for the server's close; returns the exit status, if
    /// the server sent one.
    pub fn close(&mut self, id: ChannelId) -> Result<Option<u32>> {
        let c = self.chan(id)?;
        if !c.sent_close {
            c.sent_close = true;
            let remote = c.remote;
            self.t.send(Writer::new(CLOSE).u32(remote).0.as_slice())?;
        }
        while !self.chan(id)?.closed {
            self.pump()?;
        }
        Ok(self.channels.remove(&id.0).and_then(|c| c.exit))
    }

    /// What a command wrote to stderr (the first 4 KiB).
    pub fn stderr(&self, id: ChannelId) -> String {
        self.channels.get(&id.0).map(|c| String::from_utf8_lossy(&c.stderr).into_owned()).unwrap_or_default()
    }

    /// Run `command` with empty stdin: its stdout (at most `limit` bytes) and exit status.
    pub fn run(&mut self, command: &[u8], limit: usize) -> Result<(Vec<u8>, Option<u32>, String)> {
        let ch = self.open()?;
        if !self.exec(ch, command)? {
            self.close(ch)?;
            return Err(Error::new(Kind::Unsupported, "the SSH server refuses to run commands"));
        }
        self.send_eof(ch)?;
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self.read(ch, &mut buf)?;
            if n == 0 {
                break;
            }
            if out.len() + n > limit {
                self.close(ch)?;
                return Err(protocol("a command's output is longer than expected"));
            }
            out.extend_from_slice(&buf[..n]);
        }
        let stderr = self.stderr(ch);
        let exit = self.close(ch)?;
        Ok((out, exit, stderr))
    }
}
