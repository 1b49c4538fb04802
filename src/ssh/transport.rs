//! The SSH transport layer (RFC 4253) as a synchronous client over a TCP socket: version
//! exchange, algorithm negotiation, `curve25519-sha256` key exchange (RFC 8731),
//! `chacha20-poly1305@openssh.com` packets (ring's OpenSSH construction), OpenSSH's
//! strict key exchange (`kex-strict-*-v00@openssh.com`, the Terrapin fix), the server's
//! host key checked by the caller before anything else is sent, and re-keying whenever the
//! server asks or a gigabyte has gone by.

use super::hostkey::{self, HostKey};
use super::wire::{Reader, Writer, choose, msg, protocol};
use crate::error::{Error, Kind, Result};
use ring::aead::chacha20_poly1305_openssh::{self as chacha, OpeningKey, SealingKey};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

const CLIENT_VERSION: &str = concat!("SSH-2.0-cloudsync_", env!("CARGO_PKG_VERSION"));
const KEX: &[&str] = &["curve25519-sha256", "curve25519-sha256@libssh.org"];
/// The ciphers offered, in cloudsync's order: AES-GCM first (hardware AES makes it the
/// cheaper one here), ChaCha20-Poly1305 for servers without it. All three are AEADs: no
/// separate MAC.
const CIPHERS: &[&str] = &["aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"];
/// Every AEAD here has a 16-byte tag.
const TAG_LEN: usize = 16;
/// A packet longer than this is refused (OpenSSH sends at most 256 KiB).
const MAX_PACKET: usize = 1 << 20;
/// Re-key after this many bytes either way (RFC 4253 §9 recommends 1 GiB).
const REKEY_BYTES: u64 = 1 << 30;

/// Where and how long to wait.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

impl Endpoint {
    pub fn shown(&self) -> String {
        crate::remote::kit::dirs::host_port(&self.host, self.port)
    }
}

/// AES-GCM as OpenSSH uses it (RFC 5647): the packet length in clear as associated data,
/// a 12-byte nonce of 4 fixed bytes and a 64-bit counter bumped per packet.
struct Gcm {
    key: ring::aead::LessSafeKey,
    fixed: [u8; 4],
    counter: u64,
}

impl Gcm {
    fn new(alg: &'static ring::aead::Algorithm, key: &[u8], iv: &[u8]) -> Gcm {
        let key = ring::aead::UnboundKey::new(alg, key).expect("key length of the algorithm");
        Gcm {
            key: ring::aead::LessSafeKey::new(key),
            fixed: iv[..4].try_into().expect("12-byte IV"),
            counter: u64::from_be_bytes(iv[4..12].try_into().expect("12-byte IV")),
        }
    }

    fn nonce(&mut self) -> ring::aead::Nonce {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.fixed);
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter = self.counter.wrapping_add(1);
        ring::aead::Nonce::assume_unique_for_key(n)
    }
}

/// One direction's keys.
enum Crypt {
    ChaChaSeal(SealingKey),
    ChaChaOpen(OpeningKey),
    Gcm(Gcm),
}

impl Crypt {
    /// The keys of `cipher` for one direction, from the exchange's derivation letters
    /// (`iv_letter` A/B, `key_letter` C/D).
    fn new(cipher: &str, sealing: bool, derive_key: &dyn Fn(u8, usize) -> Vec<u8>, letters: (u8, u8)) -> Crypt {
        match cipher {
            "aes256-gcm@openssh.com" | "aes128-gcm@openssh.com" => {
                let (alg, len) = if cipher.starts_with("aes256") {
                    (&ring::aead::AES_256_GCM, 32)
                } else {
                    (&ring::aead::AES_128_GCM, 16)
                };
                Crypt::Gcm(Gcm::new(alg, &derive_key(letters.1, len), &derive_key(letters.0, 12)))
            }
            _ => {
                let k: [u8; chacha::KEY_LEN] = derive_key(letters.1, chacha::KEY_LEN).try_into().expect("64 bytes");
                if sealing { Crypt::ChaChaSeal(SealingKey::new(&k)) } else { Crypt::ChaChaOpen(OpeningKey::new(&k)) }
            }
        }
    }

    /// The block size packets are padded to.
    fn block(&self) -> usize {
        if matches!(self, Crypt::Gcm(_)) { 16 } else { 8 }
    }

    /// Seal `pkt` (length field included) in place; returns the tag.
    fn seal(&mut self, seq: u32, pkt: &mut [u8]) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        match self {
            Crypt::ChaChaSeal(k) => k.seal_in_place(seq, pkt, &mut tag),
            Crypt::Gcm(g) => {
                let nonce = g.nonce();
                let (len, body) = pkt.split_at_mut(4);
                let t = g
                    .key
                    .seal_in_place_separate_tag(nonce, ring::aead::Aad::from(&*len), body)
                    .expect("a packet within AES-GCM's limits");
                tag.copy_from_slice(t.as_ref());
            }
            Crypt::ChaChaOpen(_) => unreachable!("an opening key does not seal"),
        }
        tag
    }

    /// The packet length from its first four bytes as received.
    fn length(&self, seq: u32, first: [u8; 4]) -> u32 {
        match self {
            Crypt::ChaChaOpen(k) => u32::from_be_bytes(k.decrypt_packet_length(seq, first)),
            _ => u32::from_be_bytes(first),
        }
    }

    /// Open `body` (length field included) with `tag`: the plaintext after the length.
    fn open<'a>(&mut self, seq: u32, body: &'a mut [u8], tag: &[u8; TAG_LEN]) -> Option<&'a [u8]> {
        match self {
            Crypt::ChaChaOpen(k) => k.open_in_place(seq, body, tag).ok().map(|p| &*p),
            Crypt::Gcm(g) => {
                let nonce = g.nonce();
                let (len, rest) = body.split_at_mut(4);
                let tag = ring::aead::Tag::from(*tag);
                g.key.open_in_place_separate_tag(nonce, ring::aead::Aad::from(&*len), tag, rest, 0..).ok().map(|p| &*p)
            }
            Crypt::ChaChaSeal(_) => unreachable!("a sealing key does not open"),
        }
    }
}

pub struct Transport {
    sock: TcpStream,
    shown: String,
    seq_out: u32,
    seq_in: u32,
    /// Our packets' keys, once the first exchange is done.
    seal: Option<Crypt>,
    /// The server's packets' keys, from its first NEWKEYS on.
    open: Option<Crypt>,
    /// The ciphers of the last exchange (client→server, server→client).
    ciphers: (String, String),
    session_id: Vec<u8>,
    server_version: String,
    strict: bool,
    /// The host key of the first exchange (a re-key must show the same one).
    host_key: Option<HostKey>,
    bytes_since_kex: u64,
    /// Messages that arrived while a re-key we started was under way.
    held: std::collections::VecDeque<Vec<u8>>,
    /// The server's `server-sig-algs` (RFC 8308), when it sent them.
    pub server_sig_algs: Vec<String>,
    kexes: u32,
}

fn net(shown: &str, what: &str, e: std::io::Error) -> Error {
    let kind = if e.kind() == std::io::ErrorKind::InvalidData { Kind::Protocol } else { Kind::Network };
    Error::new(kind, format!("SSH {what} with {shown} failed: {e}")).with_retryable(kind == Kind::Network)
}

fn kexinit_payload() -> Vec<u8> {
    let mut cookie = [0u8; 16];
    let _ = getrandom::getrandom(&mut cookie);
    let mut w = Writer::new(msg::KEXINIT);
    w.raw(&cookie);
    let kex = format!("{},ext-info-c,kex-strict-c-v00@openssh.com", KEX.join(","));
    for list in [
        kex.as_str(),
        &hostkey::ALGORITHMS.join(","),
        &CIPHERS.join(","),
        &CIPHERS.join(","),
        "hmac-sha2-256",
        "hmac-sha2-256",
        "none",
        "none",
        "",
        "",
    ] {
        w.string(list.as_bytes());
    }
    w.bool(false).u32(0);
    w.0
}

/// Whether a KEXINIT's key-exchange list names `name`.
fn contains_name(kexinit: &[u8], name: &[u8]) -> bool {
    let Some(rest) = kexinit.get(17..) else { return false };
    Reader(rest).string().is_ok_and(|list| list.split(|b| *b == b',').any(|n| n == name))
}

/// `HASH(K || H || letter || session_id)`, extended to `len` bytes (RFC 4253 §7.2).
fn derive(k: &[u8], h: &[u8], letter: u8, session_id: &[u8], len: usize) -> Vec<u8> {
    let mut kw = Writer::default();
    kw.mpint(k);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&kw.0);
    ctx.update(h);
    ctx.update(&[letter]);
    ctx.update(session_id);
    let mut out = ctx.finish().as_ref().to_vec();
    while out.len() < len {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&kw.0);
        ctx.update(h);
        ctx.update(&out);
        out.extend_from_slice(ctx.finish().as_ref());
    }
    out.truncate(len);
    out
}

impl Transport {
    /// Connect, exchange keys, and have `check` accept the server's host key (it returns an
    /// error to refuse it: a changed pinned key).
    pub fn connect(ep: &Endpoint, check: &mut dyn FnMut(&HostKey) -> Result<()>) -> Result<Transport> {
        let shown = ep.shown();
        let addrs: Vec<SocketAddr> = (ep.host.as_str(), ep.port)
            .to_socket_addrs()
            .map_err(|e| {
                Error::new(Kind::Network, format!("SSH: cannot resolve {}: {e}", ep.host)).with_retryable(true)
            })?
            .collect();
        let mut last = None;
        let mut sock = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, ep.connect_timeout) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock =
            sock.ok_or_else(|| net(&shown, "connection", last.unwrap_or_else(|| std::io::Error::other("no address"))))?;
        sock.set_read_timeout(Some(ep.io_timeout)).ok();
        sock.set_write_timeout(Some(ep.io_timeout)).ok();
        sock.set_nodelay(true).ok();
        let mut t = Transport {
            sock,
            shown,
            seq_out: 0,
            seq_in: 0,
            seal: None,
            open: None,
            ciphers: Default::default(),
            session_id: Vec::new(),
            server_version: String::new(),
            strict: false,
            host_key: None,
            bytes_since_kex: 0,
            held: Default::default(),
            server_sig_algs: Vec::new(),
            kexes: 0,
        };
        t.sock.write_all(format!("{CLIENT_VERSION}\r\n").as_bytes()).map_err(|e| net(&t.shown, "greeting", e))?;
        t.server_version = t.read_version()?;
        let ours = kexinit_payload();
        t.send_raw(&ours)?;
        // A server may send IGNORE and DEBUG before its KEXINIT, unless it then asks for
        // strict kex (which makes KEXINIT the first packet: the Terrapin fix).
        let mut skipped = 0;
        let theirs = loop {
            let m = t.recv_raw()?;
            match m.first() {
                Some(&msg::IGNORE) | Some(&msg::DEBUG) if skipped < 64 => skipped += 1,
                _ => break m,
            }
        };
        if theirs.first() != Some(&msg::KEXINIT) {
            return Err(protocol("the server did not start the key exchange"));
        }
        if skipped > 0 && contains_name(&theirs, b"kex-strict-s-v00@openssh.com") {
            return Err(protocol("the server asked for strict key exchange after sending other messages first"));
        }
        t.kex(ours, theirs, Some(check))?;
        Ok(t)
    }

    /// The ciphers of the last key exchange: (client→server, server→client).
    pub fn ciphers(&self) -> (&str, &str) {
        (&self.ciphers.0, &self.ciphers.1)
    }

    pub fn server_version(&self) -> &str {
        &self.server_version
    }

    pub fn session_id(&self) -> &[u8] {
        &self.session_id
    }

    pub fn host_key(&self) -> Option<&HostKey> {
        self.host_key.as_ref()
    }

    /// The server's identification line (lines before it are allowed, RFC 4253 §4.2).
    fn read_version(&mut self) -> Result<String> {
        for _ in 0..50 {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while line.len() < 255 {
                let n = self.sock.read(&mut b).map_err(|e| net(&self.shown, "greeting", e))?;
                if n == 0 {
                    return Err(Error::new(
                        Kind::Network,
                        format!("SSH: {} closed the connection at once", self.shown),
                    )
                    .with_retryable(true));
                }
                if b[0] == b'\n' {
                    break;
                }
                line.push(b[0]);
            }
            let s = String::from_utf8_lossy(&line).trim_end_matches('\r').to_string();
            if s.starts_with("SSH-2.0-") || s.starts_with("SSH-1.99-") {
                return Ok(s);
            }
            if s.starts_with("SSH-") {
                return Err(protocol(format!("{} speaks an SSH version cloudsync does not ({s})", self.shown)));
            }
        }
        Err(protocol(format!("{} is not an SSH server", self.shown)))
    }

    /// One key exchange; `check` is the host-key check of the first one.
    fn kex(
        &mut self,
        ours: Vec<u8>,
        theirs: Vec<u8>,
        check: Option<&mut dyn FnMut(&HostKey) -> Result<()>>,
    ) -> Result<()> {
        let mut r = Reader(&theirs[17..]);
        let kex_algs = r.name_list()?;
        let host_algs = r.name_list()?;
        let enc_cs = r.name_list()?;
        let enc_sc = r.name_list()?;
        let first = self.session_id.is_empty();
        if first && kex_algs.iter().any(|a| a == "kex-strict-s-v00@openssh.com") {
            self.strict = true;
        }
        if choose(KEX, &kex_algs).is_none() {
            return Err(Error::new(
                Kind::Unsupported,
                format!("the SSH server offers no key exchange cloudsync supports (it offers {})", kex_algs.join(", ")),
            ));
        }
        let host_alg = choose(hostkey::ALGORITHMS, &host_algs).ok_or_else(|| {
            Error::new(
                Kind::Unsupported,
                format!("the SSH server's host key types are not supported ({})", host_algs.join(", ")),
            )
        })?;
        let (Some(cipher_cs), Some(cipher_sc)) = (choose(CIPHERS, &enc_cs), choose(CIPHERS, &enc_sc)) else {
            return Err(Error::new(
                Kind::Unsupported,
                format!(
                    "the SSH server offers none of the ciphers cloudsync speaks ({}; it offers {})",
                    CIPHERS.join(", "),
                    enc_cs.join(", ")
                ),
            ));
        };
        let rng = ring::rand::SystemRandom::new();
        let secret = ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::X25519, &rng)
            .map_err(|_| Error::other("no randomness for the key exchange"))?;
        let q_c = secret.compute_public_key().map_err(|_| Error::other("X25519"))?.as_ref().to_vec();
        self.send_raw(Writer::new(msg::KEX_ECDH_INIT).string(&q_c).0.as_slice())?;
        let reply = self.recv_kex_message()?;
        if reply.first() != Some(&msg::KEX_ECDH_REPLY) {
            return Err(protocol("the server answered the key exchange with something else"));
        }
        let mut r = Reader(&reply[1..]);
        let k_s = r.string()?.to_vec();
        let q_s = r.string()?.to_vec();
        let sig = r.string()?.to_vec();
        let peer = ring::agreement::UnparsedPublicKey::new(&ring::agreement::X25519, &q_s);
        let k = ring::agreement::agree_ephemeral(secret, &peer, |k| k.to_vec())
            .map_err(|_| protocol("the server's key exchange value is not valid"))?;
        let mut hw = Writer::default();
        hw.string(CLIENT_VERSION.as_bytes()).string(self.server_version.as_bytes()).string(&ours).string(&theirs);
        hw.string(&k_s).string(&q_c).string(&q_s).mpint(&k);
        let h = ring::digest::digest(&ring::digest::SHA256, &hw.0).as_ref().to_vec();
        let key = HostKey::parse(&k_s)?;
        key.verify(host_alg, &h, &sig)?;
        match (&self.host_key, check) {
            (None, Some(check)) => check(&key)?,
            (Some(known), _) if known.blob != key.blob => {
                return Err(Error::new(Kind::Permission, "the SSH server changed its host key while re-keying"));
            }
            _ => {}
        }
        self.host_key.get_or_insert(key);
        if first {
            self.session_id = h.clone();
        }
        self.send_raw(&[msg::NEWKEYS])?;
        let session_id = self.session_id.clone();
        let keys = |letter: u8, len: usize| derive(&k, &h, letter, &session_id, len);
        let seal = Crypt::new(cipher_cs, true, &keys, (b'A', b'C'));
        let open = Crypt::new(cipher_sc, false, &keys, (b'B', b'D'));
        self.ciphers = (cipher_cs.to_string(), cipher_sc.to_string());
        if self.strict {
            self.seq_out = 0;
        }
        // Our packets are sealed from here; the server's from its NEWKEYS on.
        self.seal = Some(seal);
        loop {
            // Until the server's NEWKEYS its packets use its old keys (none the first time).
            let m = self.recv_raw()?;
            if m.first() == Some(&msg::NEWKEYS) {
                break;
            }
            // Without strict kex a server may send IGNORE and DEBUG at any time.
            if !self.strict && matches!(m.first(), Some(&msg::IGNORE) | Some(&msg::DEBUG)) {
                continue;
            }
            if self.strict || first {
                return Err(protocol("the server sent another message in the middle of the key exchange"));
            }
            self.held.push_back(m);
        }
        self.open = Some(open);
        if self.strict {
            self.seq_in = 0;
        }
        self.bytes_since_kex = 0;
        self.kexes += 1;
        Ok(())
    }

    /// How many key exchanges this connection went through (the first included).
    pub fn key_exchanges(&self) -> u32 {
        self.kexes
    }

    /// A key-exchange message (before NEWKEYS): strict kex allows nothing else.
    fn recv_kex_message(&mut self) -> Result<Vec<u8>> {
        loop {
            let m = self.recv_raw()?;
            match m.first() {
                Some(&msg::IGNORE) | Some(&msg::DEBUG) if !self.strict => continue,
                _ => return Ok(m),
            }
        }
    }

    fn recv_plain(&mut self) -> Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        let len = u32::from_be_bytes(len) as usize;
        if !(5..=MAX_PACKET).contains(&len) {
            return Err(protocol(format!("a packet of {len} bytes")));
        }
        let mut body = vec![0u8; len];
        self.read_exact(&mut body)?;
        self.seq_in = self.seq_in.wrapping_add(1);
        let pad = body[0] as usize;
        if pad + 1 > len {
            return Err(protocol("a packet whose padding is longer than itself"));
        }
        Ok(body[1..len - pad].to_vec())
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.sock.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::new(Kind::Network, format!("SSH: {} closed the connection", self.shown)).with_retryable(true)
            } else {
                net(&self.shown, "read", e)
            }
        })
    }

    /// Send one message (sealed once keys exist).
    fn send_raw(&mut self, payload: &[u8]) -> Result<()> {
        // Sealed (every cipher here is an AEAD): 1 + payload + padding is a multiple of the
        // cipher's block, the length field left out (OpenSSH's packet.c); plain: of 8, with it.
        let (block, base) = match &self.seal {
            Some(c) => (c.block(), 1 + payload.len()),
            None => (8, 5 + payload.len()),
        };
        let mut pad = block - base % block;
        if pad < 4 {
            pad += block;
        }
        let mut pkt = Vec::with_capacity(4 + 1 + payload.len() + pad + TAG_LEN);
        pkt.extend_from_slice(&((1 + payload.len() + pad) as u32).to_be_bytes());
        pkt.push(pad as u8);
        pkt.extend_from_slice(payload);
        let mut padding = vec![0u8; pad];
        let _ = getrandom::getrandom(&mut padding);
        pkt.extend_from_slice(&padding);
        if let Some(c) = &mut self.seal {
            let tag = c.seal(self.seq_out, &mut pkt);
            pkt.extend_from_slice(&tag);
        }
        self.seq_out = self.seq_out.wrapping_add(1);
        self.bytes_since_kex += pkt.len() as u64;
        self.sock.write_all(&pkt).map_err(|e| net(&self.shown, "write", e))
    }

    /// Receive one message, opened once keys exist.
    fn recv_raw(&mut self) -> Result<Vec<u8>> {
        let Some(c) = &self.open else { return self.recv_plain() };
        let mut first = [0u8; 4];
        self.sock.read_exact(&mut first).map_err(|e| net(&self.shown, "read", e))?;
        let len = c.length(self.seq_in, first) as usize;
        if !(5..=MAX_PACKET).contains(&len) {
            return Err(protocol(format!("a packet of {len} bytes (the connection is corrupted)")));
        }
        let mut buf = vec![0u8; 4 + len + TAG_LEN];
        buf[..4].copy_from_slice(&first);
        self.read_exact(&mut buf[4..])?;
        let seq = self.seq_in;
        let c = self.open.as_mut().expect("keys");
        let (body, tag) = buf.split_at_mut(4 + len);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("tag length");
        let plain = c.open(seq, body, tag).ok_or_else(|| {
            Error::new(Kind::Corrupted, "SSH: a packet failed its authentication (corrupted on the way)")
        })?;
        self.seq_in = self.seq_in.wrapping_add(1);
        self.bytes_since_kex += (4 + len + TAG_LEN) as u64;
        let pad = plain[0] as usize;
        if pad + 1 > plain.len() {
            return Err(protocol("a packet whose padding is longer than itself"));
        }
        Ok(plain[1..plain.len() - pad].to_vec())
    }

    /// Send a message of the layers above.
    pub fn send(&mut self, payload: &[u8]) -> Result<()> {
        if self.bytes_since_kex > REKEY_BYTES {
            self.rekey(None)?;
        }
        self.send_raw(payload)
    }

    /// The next message for the layers above: transport messages are handled here
    /// (ignored, debug, the server's re-key, a disconnect becomes an error).
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        loop {
            let m = match self.held.pop_front() {
                Some(m) => m,
                None => self.recv_raw()?,
            };
            match m.first().copied() {
                Some(msg::IGNORE) | Some(msg::DEBUG) | Some(msg::UNIMPLEMENTED) => continue,
                Some(msg::EXT_INFO) => {
                    self.read_ext_info(&m)?;
                    continue;
                }
                Some(msg::KEXINIT) => {
                    self.rekey(Some(m))?;
                    continue;
                }
                Some(msg::DISCONNECT) => {
                    let mut r = Reader(&m[1..]);
                    let code = r.u32().unwrap_or(0);
                    let text = r.string().map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
                    let text: String = text.chars().take(300).collect();
                    return Err(Error::new(
                        Kind::Network,
                        format!("SSH: {} closed the session: {text} (code {code})", self.shown),
                    ));
                }
                Some(_) => return Ok(m),
                None => return Err(protocol("an empty message")),
            }
        }
    }

    fn read_ext_info(&mut self, m: &[u8]) -> Result<()> {
        let mut r = Reader(&m[1..]);
        let n = r.u32()?;
        for _ in 0..n.min(64) {
            let name = r.string()?;
            let value = r.string()?;
            if name == b"server-sig-algs" {
                self.server_sig_algs = String::from_utf8_lossy(value).split(',').map(str::to_string).collect();
            }
        }
        Ok(())
    }

    /// A new key exchange: the server's (`theirs` is its KEXINIT) or ours.
    fn rekey(&mut self, theirs: Option<Vec<u8>>) -> Result<()> {
        let ours = kexinit_payload();
        self.send_raw(&ours)?;
        let theirs = match theirs {
            Some(t) => t,
            None => loop {
                let m = self.recv_raw()?;
                if m.first() == Some(&msg::KEXINIT) {
                    break m;
                }
                self.held.push_back(m);
            },
        };
        self.kex(ours, theirs, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// An unencrypted packet (padding to 8 bytes, at least 4).
    fn plain_packet(payload: &[u8]) -> Vec<u8> {
        let mut pad = 8 - (payload.len() + 5) % 8;
        if pad < 4 {
            pad += 8;
        }
        let mut p = ((payload.len() + pad + 1) as u32).to_be_bytes().to_vec();
        p.push(pad as u8);
        p.extend_from_slice(payload);
        p.extend(std::iter::repeat_n(0, pad));
        p
    }

    fn server_kexinit(kex: &str) -> Vec<u8> {
        let mut w = Writer::new(msg::KEXINIT);
        w.raw(&[7; 16]);
        for list in
            [kex, "ssh-ed25519", CIPHERS[2], CIPHERS[2], "hmac-sha2-256", "hmac-sha2-256", "none", "none", "", ""]
        {
            w.string(list.as_bytes());
        }
        w.bool(false).u32(0);
        w.0
    }

    /// What connecting answers to a server that sends `packets` after its version line.
    fn against(packets: Vec<Vec<u8>>) -> Error {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            s.write_all(b"SSH-2.0-Scripted_1.0\r\n").unwrap();
            for p in packets {
                s.write_all(&plain_packet(&p)).unwrap();
            }
            let mut sink = [0u8; 4096];
            while matches!(std::io::Read::read(&mut s, &mut sink), Ok(n) if n > 0) {}
        });
        let ep = Endpoint {
            host: "127.0.0.1".into(),
            port,
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(5),
        };
        let e = Transport::connect(&ep, &mut |_| Ok(())).err().expect("an error");
        drop(server);
        e
    }

    #[test]
    fn ignore_and_debug_before_kexinit_are_skipped_unless_strict_kex_is_asked() {
        let ignore = Writer::new(msg::IGNORE).string(b"padding").0.clone();
        let debug = Writer::new(msg::DEBUG).bool(false).string(b"hello").string(b"").0.clone();
        // Not strict: skipped, the exchange goes on (to the unsupported kex, here).
        let e = against(vec![ignore.clone(), debug, server_kexinit("diffie-hellman-group1-sha1")]);
        assert!(e.to_string().contains("no key exchange cloudsync supports"), "{e}");
        // Strict kex after a message: refused (the Terrapin prefix).
        let e = against(vec![ignore, server_kexinit("curve25519-sha256,kex-strict-s-v00@openssh.com")]);
        assert!(e.to_string().contains("strict key exchange"), "{e}");
        assert!(contains_name(&server_kexinit("a,b"), b"b") && !contains_name(&server_kexinit("ab"), b"a"));
    }
}
