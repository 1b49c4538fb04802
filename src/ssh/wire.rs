//! The SSH wire encoding (RFC 4251 §5): bytes, booleans, `uint32`, strings, `mpint`s and
//! name-lists, written into a buffer and read back with bounds checks.

use crate::error::{Error, Kind, Result};

/// Message numbers (RFC 4250 §4.1, RFC 8308, RFC 8731).
pub mod msg {
    pub const DISCONNECT: u8 = 1;
    pub const IGNORE: u8 = 2;
    pub const UNIMPLEMENTED: u8 = 3;
    pub const DEBUG: u8 = 4;
    pub const SERVICE_REQUEST: u8 = 5;
    pub const SERVICE_ACCEPT: u8 = 6;
    pub const EXT_INFO: u8 = 7;
    pub const KEXINIT: u8 = 20;
    pub const NEWKEYS: u8 = 21;
    pub const KEX_ECDH_INIT: u8 = 30;
    pub const KEX_ECDH_REPLY: u8 = 31;
    pub const USERAUTH_REQUEST: u8 = 50;
    pub const USERAUTH_FAILURE: u8 = 51;
    pub const USERAUTH_SUCCESS: u8 = 52;
    pub const USERAUTH_BANNER: u8 = 53;
    pub const USERAUTH_INFO_REQUEST: u8 = 60;
    pub const USERAUTH_INFO_RESPONSE: u8 = 61;
}

pub fn protocol(msg: impl Into<String>) -> Error {
    Error::new(Kind::Protocol, format!("SSH: {}", msg.into()))
}

/// A message being written.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn new(msg: u8) -> Writer {
        Writer(vec![msg])
    }
    pub fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.byte(b as u8)
    }
    pub fn u32(&mut self, n: u32) -> &mut Self {
        self.0.extend_from_slice(&n.to_be_bytes());
        self
    }
    pub fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s);
        self
    }
    /// An unsigned big-endian integer as an `mpint` (minimal, positive).
    pub fn mpint(&mut self, n: &[u8]) -> &mut Self {
        let n = &n[n.iter().position(|b| *b != 0).unwrap_or(n.len())..];
        if n.first().is_some_and(|b| b & 0x80 != 0) {
            self.u32(n.len() as u32 + 1);
            self.0.push(0);
            self.0.extend_from_slice(n);
        } else {
            self.string(n);
        }
        self
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// A message being read.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(protocol("a message ends in the middle of a field"));
        }
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Ok(h)
    }
    pub fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.byte()? != 0)
    }
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn string(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// An `mpint` as unsigned big-endian bytes (negative numbers refused).
    pub fn mpint(&mut self) -> Result<&'a [u8]> {
        let s = self.string()?;
        if s.first().is_some_and(|b| b & 0x80 != 0) {
            return Err(protocol("a negative integer where a positive one belongs"));
        }
        Ok(&s[s.iter().position(|b| *b != 0).unwrap_or(s.len())..])
    }
    pub fn name_list(&mut self) -> Result<Vec<String>> {
        let s = self.string()?;
        if s.is_empty() {
            return Ok(Vec::new());
        }
        Ok(String::from_utf8_lossy(s).split(',').map(str::to_string).collect())
    }
    pub fn rest(&self) -> &'a [u8] {
        self.0
    }
}

/// The first of `ours` (in our order of preference) that `theirs` offers.
pub fn choose<'a>(ours: &[&'a str], theirs: &[String]) -> Option<&'a str> {
    ours.iter().copied().find(|o| theirs.iter().any(|t| t == o))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_truncation_is_an_error() {
        let mut w = Writer::new(msg::KEXINIT);
        w.bool(true).u32(7).string(b"abc").mpint(&[0, 0, 0x80]).mpint(&[0x01, 0x02]).mpint(&[]);
        assert_eq!(&w.0[..1], [msg::KEXINIT]);
        let mut r = Reader(&w.0[1..]);
        assert!(r.bool().unwrap());
        assert_eq!(r.u32().unwrap(), 7);
        assert_eq!(r.string().unwrap(), b"abc");
        assert_eq!(r.mpint().unwrap(), [0x80]);
        assert_eq!(r.mpint().unwrap(), [1, 2]);
        assert_eq!(r.mpint().unwrap(), [] as [u8; 0]);
        assert!(r.byte().is_err());
        assert!(Reader(&[0, 0, 0, 9, 1]).string().is_err());
        assert!(Reader(&[0, 0, 0, 1, 0x80]).mpint().is_err());
        assert_eq!(Reader(b"\0\0\0\x03a,b").name_list().unwrap(), vec!["a", "b"]);
        assert_eq!(choose(&["x", "y"], &["y".into(), "x".into()]), Some("x"));
        assert_eq!(choose(&["x"], &["z".into()]), None);
    }
}
