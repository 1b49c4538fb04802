//! FTP and FTPS (rclone `backend/ftp`): a folder on an FTP server, in clear (TrueNAS's
//! only mode), with explicit TLS (`AUTH TLS`) or implicit TLS (port 990).
//!
//! On-remote format as rclone writes it: names as they are, with control characters,
//! DEL and a trailing space mapped to their Unicode pictures (rclone's FTP encoding
//! `Display|RightSpace` plus CR/LF, so no name can smuggle a command onto the control
//! connection); bytes that are not UTF-8 go as they are. Modification times are the
//! server's own file times, to the second (`MFMT`, or vsftpd's `MDTM <time> <path>`),
//! read from `MLSD` or `MDTM`. FTP has no digests: transfers are checked by size (`SIZE`
//! after every upload, byte counts and the server's final reply on every download).
//!
//! What cloudsync does beyond rclone:
//! - uploads go to a temporary name next to the target, are checked (`SIZE`), get their
//!   time, and are renamed into place only then; a failed upload deletes nothing but
//!   its temporary file, and the previous version stays whole until the rename;
//! - vsftpd's times are set (rclone needs `writing_mdtm`) and vsftpd's `LIST` is asked
//!   for dotfiles (`LIST -a`), which vsftpd otherwise hides;
//! - a pool of logged-in connections shared by the job's threads, which shrinks when the
//!   server answers 421 (too many connections) instead of failing the transfer;
//! - FTPS certificates are checked (web roots, or a pinned SHA-256 fingerprint for a
//!   NAS's own certificate), and data connections resume the control connection's TLS
//!   session, falling back to TLS 1.2 for servers that cannot resume TLS 1.3 sessions.

pub mod conn;
pub mod list;
pub mod provider;
pub mod tls;

use self::conn::{Conn, Endpoint, Feat, Reply, Stream, reply_error};
use self::tls::TlsMode;
use super::kit::encoder::{self, Mask};
use super::kit::http::{Counts, HttpConfig};
use super::kit::{dirs, partial};
use super::{Entry, Features, Nanos, Opened, PosixMeta, PutInfo, Remote, RootState, Source, hash};
use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

const LABELS: &[&str] =
    &["CONNECT", "MLSD", "LIST", "RETR", "STOR", "SIZE", "MDTM", "MFMT", "RENAME", "DELE", "MKD", "RMD", "OTHER"];
/// A listing larger than this is refused (about 1.5 million MLSD lines).
const LISTING_LIMIT: u64 = 256 << 20;
/// A pooled connection idle longer than this is checked with NOOP before use.
const IDLE_CHECK: Duration = Duration::from_secs(20);
/// How names go on the wire (rclone's `Display | RightSpace`, with CR/LF).
const NAMES: Mask = NAMES_INSIDE.or(Mask::RIGHT_SPACE);
/// The rules for a part of a name that is followed by more of it.
const NAMES_INSIDE: Mask = Mask::CTL.or(Mask::DEL).or(Mask::ZERO).or(Mask::CRLF);

/// Settings of an FTP remote.
#[derive(Clone)]
pub struct FtpOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub pass: String,
    /// The folder: absolute (`/data`) or relative to the login directory (`data`).
    pub folder: String,
    pub tls: TlsMode,
    /// The server certificate's SHA-256, trusted instead of the web's authorities.
    pub tls_fingerprint: Option<[u8; 32]>,
    /// Timeouts, attempts and the connection cap.
    pub http: HttpConfig,
}

impl FtpOptions {
    pub fn new(host: &str, port: u16, user: &str, pass: &str, folder: &str) -> FtpOptions {
        FtpOptions {
            host: host.to_string(),
            port,
            user: user.to_string(),
            pass: pass.to_string(),
            folder: folder.to_string(),
            tls: TlsMode::Off,
            tls_fingerprint: None,
            http: HttpConfig::JOB,
        }
    }
}

/// The name of a local path segment on the wire (the inverse is [`decode_name`]). Bytes
/// that are not UTF-8 go as they are; the trailing-space rule applies at the name's end
/// only, not before such bytes.
pub fn encode_name(seg: &[u8]) -> Vec<u8> {
    encoder::encode_raw(seg, NAMES_INSIDE, NAMES)
}

pub fn decode_name(raw: &[u8]) -> Vec<u8> {
    encoder::decode_raw(raw, NAMES_INSIDE, NAMES)
}

/// Logged-in connections, shared by the remote's threads.
struct Pool {
    ep: RwLock<Endpoint>,
    state: Mutex<PoolState>,
    freed: Condvar,
    counts: Counts,
    /// Said once: a plain session to a server that offers TLS.
    warned_clear: AtomicBool,
}

struct PoolState {
    idle: Vec<Conn>,
    open: usize,
    cap: usize,
    /// The features of the first connection (every connection of a server has the same).
    feat: Option<Feat>,
    home: Vec<u8>,
}

/// A connection borrowed from the pool: back to it with [`Lease::release`], closed when
/// dropped otherwise (its state is unknown after an error).
struct Lease {
    pool: Arc<Pool>,
    conn: Option<Conn>,
    /// Newly connected (not reused from the pool).
    fresh: bool,
}

impl Lease {
    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a leased connection")
    }
    fn release(mut self) {
        if let Some(mut c) = self.conn.take() {
            c.last_used = Instant::now();
            let mut st = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
            st.idle.push(c);
            drop(st);
            self.pool.freed.notify_one();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            c.quit();
            let mut st = self.pool.state.lock().unwrap_or_else(|e| e.into_inner());
            st.open = st.open.saturating_sub(1);
            drop(st);
            self.pool.freed.notify_one();
        }
    }
}

impl Pool {
    fn lease(self: &Arc<Pool>) -> Result<Lease> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(mut c) = st.idle.pop() {
                drop(st);
                if c.last_used.elapsed() > IDLE_CHECK && !c.cmd("NOOP").is_ok_and(|r| r.ok()) {
                    // The server closed it meanwhile: forget it and look again.
                    let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.open = s.open.saturating_sub(1);
                    st = s;
                    continue;
                }
                return Ok(Lease { pool: self.clone(), conn: Some(c), fresh: false });
            }
            if st.open < st.cap {
                st.open += 1;
                drop(st);
                return match self.connect() {
                    Ok(c) => Ok(Lease { pool: self.clone(), conn: Some(c), fresh: true }),
                    Err(e) => {
                        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                        s.open = s.open.saturating_sub(1);
                        // 421 at the door: the server caps connections per user or address.
                        if e.message().contains(" 421 ") && s.open > 0 {
                            s.cap = s.open.max(1);
                            log::warn!(
                                "FTP {}: the server refuses more connections; using {} from now on",
                                self.shown(),
                                s.cap
                            );
                            st = s;
                            continue;
                        }
                        drop(s);
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            st = self.freed.wait_timeout(st, Duration::from_secs(1)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn shown(&self) -> String {
        self.ep.read().unwrap_or_else(|e| e.into_inner()).shown()
    }

    fn connect(&self) -> Result<Conn> {
        self.counts.add("CONNECT");
        let ep = self.ep.read().unwrap_or_else(|e| e.into_inner()).clone();
        let c = Conn::open(&ep)?;
        if ep.tls == TlsMode::Off && c.feat.auth_tls && !self.warned_clear.swap(true, Relaxed) {
            log::warn!(
                "FTP {}: the server offers TLS, but the credential asks for none: the password and the files \
                 travel in clear (set tls to EXPLICIT to encrypt them)",
                ep.shown()
            );
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.feat.is_none() {
            st.feat = Some(c.feat.clone());
            st.home = c.home.clone();
        }
        Ok(c)
    }

    /// Servers that cannot resume a TLS 1.3 session on a data connection (vsftpd's
    /// `require_ssl_reuse` with tickets used up): from now on TLS 1.2, whose sessions
    /// resume any number of times.
    fn downgrade_tls(&self) -> bool {
        let mut ep = self.ep.write().unwrap_or_else(|e| e.into_inner());
        if ep.tls == TlsMode::Off || ep.tls12 {
            return false;
        }
        let Ok(cfg) = tls::config(ep.pin, true) else { return false };
        log::info!("FTP {}: data connections cannot resume TLS 1.3 sessions here; using TLS 1.2", ep.shown());
        ep.tls12 = true;
        ep.tls_config = Some(cfg);
        drop(ep);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let n = st.idle.len();
        st.idle.clear();
        st.open = st.open.saturating_sub(n);
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct FtpRemote {
    pool: Arc<Pool>,
    retries: u32,
    /// The absolute path of the root on the server, without a trailing `/` (`""` = `/`).
    root: Vec<u8>,
    feat: Feat,
    /// Times can be set (MFMT or vsftpd's MDTM form); cleared at the first refusal.
    set_times: AtomicBool,
    /// `SIZE` works (cleared at the first refusal: uploads are then checked by listing).
    size_cmd: AtomicBool,
    /// Absolute paths of directories known to exist.
    dirs: Mutex<HashSet<Vec<u8>>>,
    leftovers: Mutex<Vec<RelPath>>,
    shown_root: String,
    overlap: String,
}

/// Whether a connection can go back to the pool after `e`: only after a plain refusal
/// the server answered in order (never mid-transfer, never after a network error).
fn reusable_after(e: &Error) -> bool {
    !e.is_retryable()
        && matches!(e.kind(), Kind::NotFound | Kind::DirNotFound | Kind::Permission | Kind::BadName | Kind::Unsupported)
}

fn join_abs(base: &[u8], seg: &[u8]) -> Vec<u8> {
    let mut p = base.to_vec();
    p.push(b'/');
    p.extend_from_slice(seg);
    p
}

fn cmd_line(verb: &str, path: &[u8]) -> Vec<u8> {
    let mut l = Vec::with_capacity(verb.len() + 1 + path.len());
    l.extend_from_slice(verb.as_bytes());
    l.push(b' ');
    l.extend_from_slice(path);
    l
}

impl FtpRemote {
    pub fn new(opts: FtpOptions) -> Result<FtpRemote> {
        if opts.host.is_empty() {
            return Err(Error::usage("the FTP credential names no host"));
        }
        if opts.folder.split('/').any(|s| s == "." || s == "..") {
            return Err(Error::usage(format!("invalid folder {:?}", opts.folder)));
        }
        let tls_config = match opts.tls {
            TlsMode::Off => None,
            _ => Some(tls::config(opts.tls_fingerprint, false)?),
        };
        let ep = Endpoint {
            host: opts.host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port: opts.port,
            user: if opts.user.is_empty() { "anonymous".into() } else { opts.user.clone() },
            pass: opts.pass.clone(),
            tls: opts.tls,
            tls_config,
            pin: opts.tls_fingerprint,
            tls12: false,
            connect_timeout: opts.http.connect_timeout,
            io_timeout: opts.http.response_timeout,
        };
        let pool = Arc::new(Pool {
            ep: RwLock::new(ep.clone()),
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
                cap: opts.http.max_connections.max(1),
                feat: None,
                home: Vec::new(),
            }),
            freed: Condvar::new(),
            counts: Counts::new(LABELS),
            warned_clear: AtomicBool::new(false),
        });
        // One login now: it tells the features and the login directory, and a wrong
        // password or certificate fails here, with the credential's own words.
        let scheme = if opts.tls == TlsMode::Off { "ftp" } else { "ftps" };
        let first = retry(opts.http.retries, &format!("{scheme}://{}", ep.shown()), || pool.lease())?;
        let (feat, home) = {
            let st = lock(&pool.state);
            (st.feat.clone().unwrap_or_default(), st.home.clone())
        };
        first.release();
        let folder = opts.folder.trim_end_matches('/');
        let mut root = if folder.starts_with('/') {
            folder.as_bytes().to_vec()
        } else {
            let mut r = home.strip_suffix(b"/").unwrap_or(&home).to_vec();
            if !folder.is_empty() {
                r.push(b'/');
                r.extend_from_slice(folder.as_bytes());
            }
            r
        };
        while root.windows(2).any(|w| w == b"//") {
            let i = root.windows(2).position(|w| w == b"//").unwrap_or(0);
            root.remove(i);
        }
        if root == b"/" {
            root.clear();
        }
        let user = &ep.user;
        let shown_root = format!(
            "{scheme}://{user}@{}{}",
            ep.shown(),
            if root.is_empty() { "/".into() } else { crate::path::display_bytes(&root) }
        );
        Ok(FtpRemote {
            pool,
            retries: opts.http.retries.max(1),
            overlap: shown_root.replacen("ftps://", "ftp://", 1),
            shown_root,
            root,
            set_times: AtomicBool::new(feat.mfmt || feat.vsftpd),
            size_cmd: AtomicBool::new(true),
            feat,
            dirs: Mutex::new(HashSet::new()),
            leftovers: Mutex::new(Vec::new()),
        })
    }

    /// How many connections the pool opens at most now (lowered by 421 answers).
    pub fn connection_cap(&self) -> usize {
        lock(&self.pool.state).cap
    }

    fn abs(&self, path: &RelPath) -> Vec<u8> {
        dirs::server_path(&self.root, path, encode_name)
    }

    fn shown(&self, path: &RelPath) -> String {
        dirs::shown(&self.shown_root, path)
    }

    /// Run `f` on a pooled connection, retrying what can be retried on a new one.
    fn run<T>(&self, label: &str, mut f: impl FnMut(&mut Conn) -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        let mut free_retry = true;
        loop {
            attempt += 1;
            let mut lease = self.pool.lease()?;
            self.pool.counts.add(label);
            match f(lease.conn()) {
                Ok(v) => {
                    lease.release();
                    return Ok(v);
                }
                Err(e) => {
                    let fresh = lease.fresh;
                    if reusable_after(&e) {
                        lease.release();
                    } else {
                        drop(lease);
                    }
                    if e.message().contains("data connection TLS") && self.pool.downgrade_tls() {
                        continue;
                    }
                    // A pooled connection the server had closed: once, at no cost.
                    if !fresh && free_retry && e.kind() == Kind::Network {
                        free_retry = false;
                        attempt -= 1;
                        continue;
                    }
                    if !e.is_retryable() || attempt >= self.retries {
                        return Err(e);
                    }
                    log::debug!("FTP {label} attempt {attempt}/{} failed: {e}", self.retries);
                    std::thread::sleep(backoff(attempt));
                }
            }
        }
    }

    fn cmd(&self, label: &str, verb: &str, path: &[u8]) -> Result<Reply> {
        self.run(label, |c| c.cmd_bytes(&cmd_line(verb, path)))
    }

    /// Whether `abs` is a directory (`CWD` succeeds).
    fn is_dir(&self, abs: &[u8]) -> Result<bool> {
        Ok(self.cmd("OTHER", "CWD", abs)?.ok())
    }

    /// The size of a file (`SIZE`), `None` when there is none (or SIZE is refused).
    fn size_of(&self, abs: &[u8]) -> Result<Option<i64>> {
        if !self.size_cmd.load(Relaxed) {
            return Ok(None);
        }
        let r = self.cmd("SIZE", "SIZE", abs)?;
        match r.code {
            213 => Ok(r.text.trim().parse().ok()),
            500 | 502 => {
                self.size_cmd.store(false, Relaxed);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn list_raw(&self, dir: &RelPath) -> Result<Vec<list::Item>> {
        let abs = self.abs(dir);
        if self.feat.mlsd {
            let got = self.run("MLSD", |c| c.read_listing(&cmd_line("MLSD", &abs), LISTING_LIMIT));
            return match got {
                Ok(data) => Ok(list::parse_mlsd(&data)),
                Err(e) if matches!(e.kind(), Kind::NotFound | Kind::Unsupported) => {
                    Err(Error::new(Kind::DirNotFound, "directory not found"))
                }
                Err(e) => Err(e),
            };
        }
        // LIST takes options and globs in its argument: change into the directory and
        // list it without one (`-a`: vsftpd hides dotfiles otherwise).
        let data = self.run("LIST", |c| {
            let r = c.cmd_bytes(&cmd_line("CWD", &abs))?;
            if !r.ok() {
                return Err(Error::new(Kind::DirNotFound, "directory not found"));
            }
            c.read_listing(b"LIST -a", LISTING_LIMIT)
        })?;
        let (items, unreadable) = list::parse_list(&data);
        if unreadable > 0 {
            return Err(Error::new(
                Kind::Protocol,
                format!("the server's LIST answer has {unreadable} lines in a format cloudsync cannot read"),
            ));
        }
        Ok(items)
    }

    /// A symbolic link in a listing, resolved: a file (with its size) or a directory.
    fn resolve_link(&self, abs: &[u8]) -> Result<Option<(list::Kind, i64)>> {
        if let Some(n) = self.size_of(abs)? {
            return Ok(Some((list::Kind::File, n)));
        }
        Ok(self.is_dir(abs)?.then_some((list::Kind::Dir, 0)))
    }

    fn ensure(&self, abs: &[u8]) -> Result<()> {
        if abs.len() <= self.root.len() + 1 && abs.len() <= 1 {
            return Ok(());
        }
        if lock(&self.dirs).contains(abs) {
            return Ok(());
        }
        let made = self.cmd("MKD", "MKD", abs)?;
        if !(made.code == 257 || made.code == 250 || self.is_dir(abs)?) {
            // The parent may be missing: make it, then try again.
            let parent = &abs[..abs.iter().rposition(|b| *b == b'/').unwrap_or(0)];
            if parent.is_empty() || parent == abs {
                return Err(reply_error("MKD", &made));
            }
            self.ensure(parent)?;
            let again = self.cmd("MKD", "MKD", abs)?;
            if !(again.code == 257 || again.code == 250 || self.is_dir(abs)?) {
                return Err(reply_error("MKD", &again));
            }
        }
        lock(&self.dirs).insert(abs.to_vec());
        Ok(())
    }

    /// Set a file's time: MFMT, or vsftpd's `MDTM <time> <path>`.
    fn set_time(&self, abs: &[u8], mtime: Nanos) -> Result<bool> {
        if !self.set_times.load(Relaxed) {
            return Ok(false);
        }
        let t = list::format_time(mtime);
        let (label, verb) = if self.feat.mfmt { ("MFMT", "MFMT") } else { ("MDTM", "MDTM") };
        let r = self.run(label, |c| c.cmd_bytes(&cmd_line(&format!("{verb} {t}"), abs)))?;
        if r.code == 213 || r.code == 253 {
            return Ok(true);
        }
        if matches!(r.code, 500 | 501 | 502 | 504) {
            log::warn!(
                "FTP {}: the server refuses to set modification times ({}); files are compared by size",
                self.shown_root,
                r.brief()
            );
            self.set_times.store(false, Relaxed);
            return Ok(false);
        }
        Err(reply_error(verb, &r))
    }

    fn rename(&self, from: &[u8], to: &[u8]) -> Result<()> {
        self.run("RENAME", |c| {
            let r = c.cmd_bytes(&cmd_line("RNFR", from))?;
            if r.code != 350 {
                return Err(reply_error("RNFR", &r));
            }
            let r = c.cmd_bytes(&cmd_line("RNTO", to))?;
            if !r.ok() {
                return Err(reply_error("RNTO", &r));
            }
            Ok(())
        })
    }

    fn delete_abs(&self, abs: &[u8]) -> Result<()> {
        let r = self.cmd("DELE", "DELE", abs)?;
        if r.ok() {
            return Ok(());
        }
        // 550 is also "no such file": gone is what was wanted.
        if r.code == 550 && self.size_of(abs)?.is_none() && !self.is_dir(abs)? {
            return Ok(());
        }
        Err(reply_error("DELE", &r))
    }

    /// STOR `src` to `tmp`, from `from` on (`REST`: the rest of an interrupted upload).
    fn upload(&self, tmp: &[u8], src: &dyn Source, from: u64) -> Result<u64> {
        let size = src.size();
        self.run("STOR", |c| {
            let mut reader = src.open_at(from, size - from)?;
            let data = c.start_data(&cmd_line("STOR", tmp), from)?;
            c.send_data(data, &mut reader).map(|n| n + from)
        })
    }

    /// Where an upload to `tmp` can start: the size of what an interrupted upload of the
    /// same source version left there (its temporary name says which version), else 0.
    fn resume_from(&self, tmp: &[u8], size: u64) -> u64 {
        if !self.feat.rest {
            return 0;
        }
        match self.size_of(tmp) {
            Ok(Some(n)) if n > 0 && (n as u64) <= size => n as u64,
            Ok(Some(_)) => {
                // Longer than the source: not a prefix of it.
                let _ = self.delete_abs(tmp);
                0
            }
            _ => 0,
        }
    }
    /// What the server stored under `tmp`: its size, by SIZE or by listing the parent.
    fn stored_size(&self, parent: &RelPath, tmp_abs: &[u8], tmp_name: &[u8]) -> Result<Option<i64>> {
        if let Some(n) = self.size_of(tmp_abs)? {
            return Ok(Some(n));
        }
        let wire = encode_name(tmp_name);
        Ok(self.list_raw(parent)?.into_iter().find(|i| i.name == wire).map(|i| i.size))
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(6);
    let mut r = [0u8; 2];
    let _ = getrandom::getrandom(&mut r);
    Duration::from_millis(base.min(10_000) + u64::from(u16::from_le_bytes(r)) % 200)
}

fn retry<T>(retries: u32, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < retries.max(1) => {
                log::debug!("{what}: attempt {attempt} failed: {e}");
                std::thread::sleep(backoff(attempt));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A download: the data connection, then the transfer's final reply, checked.
struct Download {
    lease: Option<Lease>,
    data: Option<Stream>,
    remaining: u64,
    /// The read ends where the file ends (else the transfer is cut short on purpose).
    to_end: bool,
    got: u64,
    want: u64,
}

impl Download {
    fn end(&mut self) -> std::io::Result<()> {
        let Some(mut data) = self.data.take() else { return Ok(()) };
        let Some(mut lease) = self.lease.take() else { return Ok(()) };
        if !self.to_end {
            // Stopping in the middle: the connection's state is unclear afterwards.
            drop(data);
            drop(lease);
            return Ok(());
        }
        let mut probe = [0u8; 1];
        let extra = data.read(&mut probe).unwrap_or(0);
        drop(data);
        if extra > 0 {
            return Err(Error::new(Kind::SourceChanged, "the file grew on the server while it was read")
                .with_retryable(true)
                .into());
        }
        lease.conn().finish_data("RETR")?;
        lease.release();
        Ok(())
    }
}

impl Read for Download {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.remaining == 0 {
            self.end()?;
            return Ok(0);
        }
        let Some(data) = self.data.as_mut() else { return Ok(0) };
        let want = buf.len().min(self.remaining.min(usize::MAX as u64) as usize);
        let n = data.read(&mut buf[..want])?;
        if n == 0 {
            self.data = None;
            // The server's reason, if it gave one, says more than the byte count.
            let why = self.lease.as_mut().map(|l| l.conn().finish_data("RETR"));
            self.lease = None;
            if let Some(Err(e)) = why {
                return Err(e.into());
            }
            return Err(Error::new(
                Kind::Network,
                format!("the server ended the download after {} of {} bytes", self.got, self.want),
            )
            .with_retryable(true)
            .into());
        }
        self.remaining -= n as u64;
        self.got += n as u64;
        Ok(n)
    }
}

impl Remote for FtpRemote {
    fn describe(&self) -> String {
        self.shown_root.clone()
    }

    fn features(&self) -> Features {
        let times = (self.feat.mlsd || self.feat.mdtm) && self.set_times.load(Relaxed);
        Features {
            hashes: hash::Hashes::NONE,
            md5_is_slow: false,
            precision: times.then_some(super::NANOS_PER_SEC),
            set_mod_time: times,
            empty_dirs: true,
            dir_mod_time: false,
            read_only: false,
            case_insensitive: false,
            lazy_mod_time: !self.feat.mlsd,
            is_local: false,
        }
    }

    fn root_state(&self) -> Result<RootState> {
        let abs = self.abs(&RelPath::root());
        let map = |e: Error| e.with_path(self.shown_root.clone());
        if self.is_dir(&abs).map_err(map)? {
            return Ok(RootState::Dir);
        }
        if self.size_of(&abs).map_err(map)?.is_some() {
            return Ok(RootState::File);
        }
        Ok(RootState::Missing)
    }

    fn list_dir(&self, dir: &RelPath, bad: &mut dyn FnMut(Error)) -> Result<Vec<Entry>> {
        let items = self.list_raw(dir).map_err(|e| e.with_path(self.shown(dir)))?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let name = decode_name(&item.name);
            let (kind, size) = match item.kind {
                list::Kind::Link => {
                    let abs = join_abs(&self.abs(dir), &item.name);
                    match self.resolve_link(&abs)? {
                        Some(k) => k,
                        None => {
                            bad(Error::new(Kind::NotFound, "a symbolic link whose target cannot be read")
                                .with_path(self.shown(&dir.join(&name).unwrap_or_else(|_| dir.clone()))));
                            continue;
                        }
                    }
                }
                k => (k, item.size),
            };
            let path = match dir.join(&name) {
                Ok(p) => p,
                Err(e) => {
                    bad(e.with_path(format!("{}/{}", self.shown(dir), crate::path::display_bytes(&item.name))));
                    continue;
                }
            };
            if kind == list::Kind::File && partial::is_partial(&name) {
                let mut l = lock(&self.leftovers);
                if l.len() < 10_000 {
                    l.push(path);
                }
                continue;
            }
            out.push(match kind {
                list::Kind::Dir => Entry::dir(name, item.mtime),
                _ => Entry::file(name, size, item.mtime),
            });
        }
        lock(&self.dirs).insert(self.abs(dir));
        Ok(out)
    }

    fn mod_time(&self, path: &RelPath, entry: &Entry) -> Result<Nanos> {
        if let Some(t) = entry.mtime {
            return Ok(t);
        }
        let r = self.cmd("MDTM", "MDTM", &self.abs(path)).map_err(|e| e.with_path(self.shown(path)))?;
        if r.code != 213 {
            return Err(reply_error("MDTM", &r).with_path(self.shown(path)));
        }
        list::parse_time(&r.text).ok_or_else(|| {
            Error::new(Kind::Protocol, format!("FTP MDTM: cannot read the time in {:?}", r.brief()))
                .with_path(self.shown(path))
        })
    }

    fn open(&self, path: &RelPath, entry: &Entry, offset: u64, len: u64) -> Result<Opened> {
        let (len, _) = super::kit::bucket::read_range(entry, offset, len);
        let known = entry.size >= 0;
        let mut o = if known && len == 0 {
            Opened::plain(Box::new(std::io::empty()))
        } else {
            let abs = self.abs(path);
            let map = |e: Error| e.with_path(self.shown(path));
            let mut attempt = 0;
            let (lease, data) = loop {
                attempt += 1;
                let mut lease = self.pool.lease().map_err(map)?;
                self.pool.counts.add("RETR");
                match lease.conn().start_data(&cmd_line("RETR", &abs), offset) {
                    Ok(d) => break (lease, d),
                    Err(e) => {
                        if reusable_after(&e) {
                            lease.release();
                        }
                        if e.message().contains("data connection TLS") && self.pool.downgrade_tls() {
                            continue;
                        }
                        if !e.is_retryable() || attempt >= self.retries {
                            return Err(map(e));
                        }
                        std::thread::sleep(backoff(attempt));
                    }
                }
            };
            let to_end = !known || offset + len >= entry.size as u64;
            Opened::plain(Box::new(Download {
                lease: Some(lease),
                data: Some(data),
                remaining: if known { len } else { u64::MAX },
                to_end,
                got: 0,
                want: len,
            }))
        };
        o.mtime = entry.mtime;
        Ok(o)
    }

    fn put(&self, path: &RelPath, src: &dyn Source, info: &PutInfo) -> Result<Entry> {
        if path.is_root() {
            return Err(Error::new(Kind::BadName, "cannot write a file at the root itself"));
        }
        let shown = self.shown(path);
        let parent = path.parent();
        self.ensure(&self.abs(&parent)).map_err(|e| e.with_path(self.shown(&parent)))?;
        let size = src.size();
        // One source version has one temporary name, so that the next run can go on where
        // an interrupted upload of the same data stopped (data that changed meanwhile
        // has another fingerprint and starts over).
        let fingerprint = src.fingerprint();
        let tmp_name = match &fingerprint {
            Some(fp) => partial::stable_name(path.file_name(), &self.abs(path), fp),
            None => partial::name(path.file_name()),
        };
        let tmp = parent.join(&tmp_name)?;
        let tmp_abs = self.abs(&tmp);
        let final_abs = self.abs(path);
        let cleanup = |e: Error| {
            if let Err(d) = self.delete_abs(&tmp_abs) {
                log::warn!("{}: could not remove the temporary file: {d}", self.shown(&tmp));
            }
            e.with_path(shown.clone())
        };
        let from = if fingerprint.is_some() { self.resume_from(&tmp_abs, size) } else { 0 };
        if from > 0 {
            log::info!("{shown}: resuming an interrupted upload at byte {from} of {size}");
        }
        let sent = match if from > 0 && from == size { Ok(size) } else { self.upload(&tmp_abs, src, from) } {
            Ok(n) => n,
            // The server holds a prefix of this very version: keep it for the next attempt
            // or run, unless the source itself failed (its data is not that version).
            Err(e)
                if fingerprint.is_some() && (e.is_cancelled() || matches!(e.kind(), Kind::Network | Kind::Server)) =>
            {
                return Err(e.with_path(shown));
            }
            Err(e) => return Err(cleanup(e)),
        };
        let stored = self.stored_size(&parent, &tmp_abs, &tmp_name).map_err(cleanup)?;
        if sent != size || stored.is_some_and(|n| n != size as i64) {
            return Err(cleanup(
                Error::new(
                    Kind::Corrupted,
                    format!(
                        "corrupted on transfer: the server stored {} bytes of {size}",
                        stored.unwrap_or(sent as i64)
                    ),
                )
                .with_retryable(true),
            ));
        }
        let mut mtime = None;
        if self.set_times.load(Relaxed) {
            let t = match info.mtime {
                Some(t) => t,
                None => src.mtime().map_err(cleanup)?,
            };
            if self.set_time(&tmp_abs, t).map_err(cleanup)? {
                mtime = Some(t - t.rem_euclid(super::NANOS_PER_SEC));
            }
        }
        if let Err(e) = self.rename(&tmp_abs, &final_abs) {
            // Servers that refuse to rename onto an existing file: the old version goes
            // only now that the new one is complete.
            let retried = (e.kind() == Kind::NotFound || e.kind() == Kind::BadName)
                && self.size_of(&final_abs).ok().flatten().is_some()
                && self.delete_abs(&final_abs).is_ok()
                && self.rename(&tmp_abs, &final_abs).is_ok();
            if !retried {
                return Err(cleanup(e));
            }
        }
        // A leftover this upload went on from is gone now.
        lock(&self.leftovers).retain(|p| p != &tmp);
        Ok(Entry::file(path.file_name(), size as i64, mtime))
    }

    fn set_mod_time(&self, path: &RelPath, _entry: &Entry, mtime: Nanos, _meta: PosixMeta) -> Result<()> {
        match self.set_time(&self.abs(path), mtime) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::new(Kind::Unsupported, "this FTP server does not set modification times")),
            Err(e) => Err(e.with_path(self.shown(path))),
        }
    }

    fn delete(&self, path: &RelPath, _entry: &Entry) -> Result<()> {
        self.delete_abs(&self.abs(path)).map_err(|e| e.with_path(self.shown(path)))
    }

    fn mkdir(&self, dir: &RelPath) -> Result<()> {
        self.ensure(&self.abs(dir)).map_err(|e| e.with_path(self.shown(dir)))
    }

    fn rmdir(&self, dir: &RelPath) -> Result<()> {
        if !dirs::check_empty(self, dir, || self.shown(dir))? {
            return Ok(());
        }
        let abs = self.abs(dir);
        let r = self.cmd("RMD", "RMD", &abs).map_err(|e| e.with_path(self.shown(dir)))?;
        let gone = r.code == 550 && !self.is_dir(&abs)?;
        if !r.ok() && !gone {
            return Err(reply_error("RMD", &r).with_path(self.shown(dir)));
        }
        lock(&self.dirs).retain(|p| !p.starts_with(&abs));
        Ok(())
    }

    fn overlap_key(&self) -> Option<String> {
        Some(self.overlap.clone())
    }

    fn remove_leftovers(&self) -> Result<u64> {
        let found = std::mem::take(&mut *lock(&self.leftovers));
        Ok(partial::remove_found(found, |p| self.delete_abs(&self.abs(p)), |p| self.shown(p)))
    }

    fn request_counts(&self) -> Vec<(&'static str, u64)> {
        self.pool.counts.snapshot()
    }
}

impl Drop for FtpRemote {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut lock(&self.pool.state).idle);
        for c in idle {
            c.quit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_on_the_wire() {
        for (local, wire) in [
            (&b"plain.txt"[..], "plain.txt".as_bytes()),
            (b"tab\there", "tab\u{2409}here".as_bytes()),
            (b"cr\rlf\n", "cr\u{240D}lf\u{240A}".as_bytes()),
            (b"trailing ", "trailing\u{2420}".as_bytes()),
            (b" lead", b" lead"),
            (b"del\x7f", "del\u{2421}".as_bytes()),
            (b"lat\xe9n", b"lat\xe9n"),
            (b"sp \xe9", b"sp \xe9"),
        ] {
            assert_eq!(encode_name(local), wire, "{:?}", String::from_utf8_lossy(local));
            assert_eq!(decode_name(wire), local, "{:?}", String::from_utf8_lossy(wire));
        }
        // A picture already in a name is quoted, so it reads back as itself.
        let n = "pic\u{2409}".as_bytes();
        assert_eq!(decode_name(&encode_name(n)), n);
        assert!(!encode_name(b"a\r\nDELE x").contains(&b'\n'));
    }
}
