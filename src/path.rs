//! Relative paths inside a transfer root, as raw bytes.
//!
//! Linux file names need not be UTF-8, so cloudsync never forces paths through `String`.
//! A [`RelPath`] is '/'-separated, has no leading or trailing '/', no empty, `.` or `..`
//! segment and no NUL: anything that could step outside the root is refused when the
//! value is built, so code holding a `RelPath` cannot be tricked by a hostile remote key.
//!
//! This module also owns the byte-exact mapping between local names and rclone's S3 key
//! encoding (`InvalidUtf8 | Slash | Dot`), and the match key of the march.

use crate::error::{Error, Kind, Result};
use std::fmt;
use unicode_normalization::{UnicodeNormalization, is_nfc_quick};

/// A validated path relative to a transfer root. The empty path is the root itself.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Vec<u8>);

impl RelPath {
    /// The root of the transfer.
    pub fn root() -> RelPath {
        RelPath(Vec::new())
    }

    /// Validate `bytes` as a relative path. Refuses absolute paths, `.`/`..`/empty
    /// segments and NUL bytes with a [`Kind::BadName`] error that names the path.
    pub fn new(bytes: &[u8]) -> Result<RelPath> {
        if bytes.is_empty() {
            return Ok(RelPath::root());
        }
        if bytes[0] == b'/' {
            return Err(bad_name(bytes, "absolute paths are not allowed"));
        }
        for seg in bytes.split(|&b| b == b'/') {
            check_segment(seg).map_err(|why| bad_name(bytes, why))?;
        }
        Ok(RelPath(bytes.to_vec()))
    }

    pub fn from_str_checked(s: &str) -> Result<RelPath> {
        RelPath::new(s.as_bytes())
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// This path with one more segment. `name` must be a valid single segment.
    pub fn join(&self, name: &[u8]) -> Result<RelPath> {
        check_segment(name).map_err(|why| bad_name(name, why))?;
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        if !v.is_empty() {
            v.push(b'/');
        }
        v.extend_from_slice(name);
        Ok(RelPath(v))
    }

    /// The last segment, empty for the root.
    pub fn file_name(&self) -> &[u8] {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The parent directory; the root's parent is the root.
    pub fn parent(&self) -> RelPath {
        match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => RelPath(self.0[..i].to_vec()),
            None => RelPath::root(),
        }
    }

    /// Number of segments (0 for the root).
    pub fn depth(&self) -> usize {
        if self.0.is_empty() { 0 } else { self.0.iter().filter(|&&b| b == b'/').count() + 1 }
    }

    pub fn segments(&self) -> impl Iterator<Item = &[u8]> {
        let empty = self.0.is_empty();
        self.0.split(|&b| b == b'/').filter(move |_| !empty)
    }

    /// Whether `self` is `other` or lies below it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        other.is_root()
            || (self.0.starts_with(&other.0) && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/'))
    }

    /// A printable form: UTF-8 as is, other bytes as `\xNN`.
    pub fn display(&self) -> String {
        display_bytes(&self.0)
    }
}

impl fmt::Debug for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.display())
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

fn check_segment(seg: &[u8]) -> std::result::Result<(), &'static str> {
    match seg {
        b"" => Err("empty path segments are not allowed"),
        b"." | b".." => Err("'.' and '..' path segments are not allowed"),
        _ if seg.contains(&0) => Err("NUL bytes are not allowed in names"),
        _ if seg.contains(&b'/') => Err("'/' is not allowed inside a name"),
        _ => Ok(()),
    }
}

fn bad_name(bytes: &[u8], why: &str) -> Error {
    Error::new(Kind::BadName, format!("refusing unsafe name: {why}")).with_path(display_bytes(bytes))
}

/// Whether `seg` is a usable single name (not empty, `.`, `..`; no `/` or NUL).
pub fn is_valid_name(seg: &[u8]) -> bool {
    check_segment(seg).is_ok()
}

/// UTF-8 runs as text, every invalid byte as `\xNN`.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The march's sort and match key for a name (sync-semantics.md §3.1): NFC-normalised
/// (names that are not UTF-8 are used as they are), then `D` for directories or `F`
/// for files so that directories sort first and never match a file.
pub fn match_key(name: &[u8], is_dir: bool) -> Vec<u8> {
    let mut key = match std::str::from_utf8(name) {
        Ok(s) if !s.is_ascii() && is_nfc_quick(s.chars()) != unicode_normalization::IsNormalized::Yes => {
            s.nfc().collect::<String>().into_bytes()
        }
        _ => name.to_vec(),
    };
    key.push(if is_dir { b'D' } else { b'F' });
    key
}

const QUOTE: char = '\u{201B}'; // ‛ SINGLE HIGH-REVERSED-9 QUOTATION MARK
const SYMBOL_NUL: char = '\u{2400}'; // ␀
const FULL_DOT: &str = "\u{FF0E}"; // ．
const FULL_SLASH: char = '\u{FF0F}'; // ／

/// Encode one local name into an object-store key segment the way rclone's S3 backend
/// does (`EncodeInvalidUtf8 | EncodeSlash | EncodeDot`), so that names written by either
/// tool are read back identically by the other.
pub fn encode_key_segment(name: &[u8]) -> String {
    match name {
        b"." => return FULL_DOT.to_string(),
        b".." => return format!("{FULL_DOT}{FULL_DOT}"),
        _ => {}
    }
    if name == FULL_DOT.as_bytes() {
        return format!("{QUOTE}{FULL_DOT}");
    }
    if name == format!("{FULL_DOT}{FULL_DOT}").as_bytes() {
        return format!("{QUOTE}{FULL_DOT}{QUOTE}{FULL_DOT}");
    }
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                // rclone's local backend applies the same slash and NUL mapping, so `／`
                // and `␀` are identical on both sides; only the quote itself is escaped.
                QUOTE => {
                    out.push(QUOTE);
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push(QUOTE);
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

/// Decode one key segment back into a local name (the inverse of
/// [`encode_key_segment`]). The result is not validated: callers pass it to
/// [`RelPath::join`], which refuses what cannot be a local name.
pub fn decode_key_segment(seg: &str) -> Vec<u8> {
    if seg == FULL_DOT {
        return b".".to_vec();
    }
    if seg == format!("{FULL_DOT}{FULL_DOT}") {
        return b"..".to_vec();
    }
    if !seg.contains(QUOTE) {
        return seg.as_bytes().to_vec();
    }
    let mut out = Vec::with_capacity(seg.len());
    let mut chars = seg.char_indices().peekable();
    let mut buf = [0u8; 4];
    while let Some((i, c)) = chars.next() {
        match c {
            QUOTE => {
                if let Some(&(_, next)) = chars.peek() {
                    if matches!(next, SYMBOL_NUL | QUOTE | FULL_SLASH) || next == '\u{FF0E}' {
                        out.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                        chars.next();
                        continue;
                    }
                    let rest = &seg[i + c.len_utf8()..];
                    if rest.len() >= 2
                        && rest.is_char_boundary(2)
                        && let Ok(b) = u8::from_str_radix(&rest[..2], 16)
                        && rest.as_bytes()[..2].iter().all(|x| x.is_ascii_hexdigit())
                    {
                        out.push(b);
                        chars.next();
                        chars.next();
                        continue;
                    }
                }
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_escapes() {
        for bad in [&b"/etc/passwd"[..], b"a/../b", b"..", b".", b"a//b", b"a/", b"a\0b", b"./a"] {
            let e = RelPath::new(bad).unwrap_err();
            assert_eq!(e.kind(), Kind::BadName, "{:?}", display_bytes(bad));
        }
    }

    #[test]
    fn accepts_odd_but_safe_names() {
        for ok in [&b"a b/c"[..], b"...", b".hidden/x", b"caf\xc3\xa9", b"bad\xfe\xffname", b" lead", b"a\\b"] {
            let p = RelPath::new(ok).unwrap();
            assert_eq!(p.as_bytes(), ok);
        }
    }

    #[test]
    fn join_parent_and_names() {
        let p = RelPath::root().join(b"a").unwrap().join(b"b c").unwrap();
        assert_eq!(p.as_bytes(), b"a/b c");
        assert_eq!(p.file_name(), b"b c");
        assert_eq!(p.parent().as_bytes(), b"a");
        assert_eq!(p.parent().parent(), RelPath::root());
        assert_eq!(p.depth(), 2);
        assert!(p.starts_with(&RelPath::new(b"a").unwrap()));
        assert!(!RelPath::new(b"ab").unwrap().starts_with(&RelPath::new(b"a").unwrap()));
        assert!(RelPath::root().join(b"..").is_err());
        assert!(RelPath::root().join(b"x/y").is_err());
    }

    #[test]
    fn display_escapes_invalid_utf8() {
        assert_eq!(display_bytes(b"ok\xffz"), "ok\\xffz");
    }

    #[test]
    fn match_key_normalises_and_separates_dirs() {
        let nfd = "Teste\u{0301}".as_bytes();
        let nfc = "Test\u{00e9}".as_bytes();
        assert_eq!(match_key(nfd, false), match_key(nfc, false));
        assert_ne!(match_key(b"a", false), match_key(b"a", true));
        assert!(match_key(b"a", true) < match_key(b"a", false));
    }

    #[test]
    fn key_encoding_matches_rclone() {
        // Vectors follow rclone's lib/encoder behaviour for EncodeInvalidUtf8|Slash|Dot.
        let cases: &[(&[u8], &str)] = &[
            (b"plain.txt", "plain.txt"),
            (b".", "\u{FF0E}"),
            (b"..", "\u{FF0E}\u{FF0E}"),
            (b"invalid utf-8\xfe", "invalid utf-8\u{201B}FE"),
            (b"a\xff\xfeb", "a\u{201B}FF\u{201B}FEb"),
            ("quote\u{201B}".as_bytes(), "quote\u{201B}\u{201B}"),
            ("nul\u{2400}".as_bytes(), "nul\u{2400}"),
            ("full\u{FF0F}slash".as_bytes(), "full\u{FF0F}slash"),
            ("\u{FF0E}".as_bytes(), "\u{201B}\u{FF0E}"),
            ("caf\u{e9}".as_bytes(), "caf\u{e9}"),
            ("repl\u{FFFD}".as_bytes(), "repl\u{FFFD}"),
        ];
        for (raw, key) in cases {
            assert_eq!(encode_key_segment(raw), *key, "encode {:?}", display_bytes(raw));
            assert_eq!(decode_key_segment(key), *raw, "decode {key:?}");
        }
        // Keys written by others: a raw NUL survives decoding and is refused as a local name.
        let dec = decode_key_segment("a\0b");
        assert!(RelPath::root().join(&dec).is_err());
        assert_eq!(decode_key_segment("\u{201B}\u{2400}"), "\u{2400}".as_bytes());
    }
}
