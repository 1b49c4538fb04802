//! rclone's name encoding (`lib/encoder`), which is part of the on-remote format: each
//! backend maps the characters its service refuses to look-alike Unicode characters, and
//! quotes with `‛` a look-alike that was in the name already, so both tools read back
//! the names the other wrote. Bytes that are not UTF-8 are written `‛XX`.
//!
//! Masks here cover what the bucket providers use; S3's mask lives in `path.rs`
//! (`encode_key_segment`) and is the same scheme.

const QUOTE: char = '\u{201B}';

/// One rule of a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mask(u32);

impl Mask {
    /// Only invalid UTF-8 is quoted (Swift's `InvalidUtf8|Slash`).
    pub const NONE: Mask = Mask(0);
    /// Control characters U+0001..U+001F → U+2401..U+241F.
    pub const CTL: Mask = Mask(1);
    /// DEL → U+2421.
    pub const DEL: Mask = Mask(2);
    /// `\` → U+FF3C.
    pub const BACKSLASH: Mask = Mask(4);
    /// A `.` ending the name → U+FF0E.
    pub const RIGHT_PERIOD: Mask = Mask(8);
    /// NUL → U+2400.
    pub const ZERO: Mask = Mask(16);
    /// CR → U+240D, LF → U+240A.
    pub const CRLF: Mask = Mask(32);
    /// A space ending the name → U+2420 (rclone's `RightSpace`: FTP servers trim it).
    pub const RIGHT_SPACE: Mask = Mask(64);

    pub const fn or(self, o: Mask) -> Mask {
        Mask(self.0 | o.0)
    }
    fn has(self, o: Mask) -> bool {
        self.0 & o.0 != 0
    }

    /// Azure Blob's (`InvalidUtf8|Slash|Ctl|Del|BackSlash|RightPeriod`; a local name has
    /// no `/`).
    pub const AZURE: Mask = Mask::CTL.or(Mask::DEL).or(Mask::BACKSLASH).or(Mask::RIGHT_PERIOD).or(Mask::ZERO);
}

/// The look-alike of `c` at a position (`last`: the name's last character), if `mask`
/// replaces it there.
fn replace(c: char, last: bool, mask: Mask) -> Option<char> {
    match c {
        '\0' if mask.has(Mask::ZERO) => Some('\u{2400}'),
        '\u{1}'..='\u{1f}' if mask.has(Mask::CTL) => char::from_u32(0x2400 + c as u32),
        '\r' | '\n' if mask.has(Mask::CRLF) => char::from_u32(0x2400 + c as u32),
        '\u{7f}' if mask.has(Mask::DEL) => Some('\u{2421}'),
        '\\' if mask.has(Mask::BACKSLASH) => Some('\u{FF3C}'),
        '.' if last && mask.has(Mask::RIGHT_PERIOD) => Some('\u{FF0E}'),
        ' ' if last && mask.has(Mask::RIGHT_SPACE) => Some('\u{2420}'),
        _ => None,
    }
}

/// The original of a look-alike `c` at a position, if `mask` produces it there.
fn original(c: char, last: bool, mask: Mask) -> Option<char> {
    match c {
        '\u{2400}' if mask.has(Mask::ZERO) => Some('\0'),
        '\u{2401}'..='\u{241f}' if mask.has(Mask::CTL) => char::from_u32(c as u32 - 0x2400),
        '\u{240d}' | '\u{240a}' if mask.has(Mask::CRLF) => char::from_u32(c as u32 - 0x2400),
        '\u{2421}' if mask.has(Mask::DEL) => Some('\u{7f}'),
        '\u{FF3C}' if mask.has(Mask::BACKSLASH) => Some('\\'),
        '\u{FF0E}' if last && mask.has(Mask::RIGHT_PERIOD) => Some('.'),
        '\u{2420}' if last && mask.has(Mask::RIGHT_SPACE) => Some(' '),
        _ => None,
    }
}

pub fn encode(name: &[u8], mask: Mask) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chunks = name.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        let valid = chunk.valid();
        let ends = chunk.invalid().is_empty() && chunks.peek().is_none();
        let mut chars = valid.chars().peekable();
        while let Some(c) = chars.next() {
            let last = ends && chars.peek().is_none();
            if let Some(r) = replace(c, last, mask) {
                out.push(r);
            } else {
                if c == QUOTE || original(c, last, mask).is_some() {
                    out.push(QUOTE);
                }
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push(QUOTE);
            out.push_str(&format!("{b:02X}"));
        }
    }
    out
}

pub fn decode(seg: &str, mask: Mask) -> Vec<u8> {
    let mut out = Vec::with_capacity(seg.len());
    let mut buf = [0u8; 4];
    let mut rest = seg;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        let last = after.is_empty();
        if c == QUOTE {
            if after.len() >= 2
                && after.as_bytes()[..2].iter().all(u8::is_ascii_hexdigit)
                && let Ok(b) = u8::from_str_radix(&after[..2], 16)
                && (b >= 0x80)
            {
                out.push(b);
                rest = &after[2..];
                continue;
            }
            if let Some(n) = after.chars().next() {
                out.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
                rest = &after[n.len_utf8()..];
                continue;
            }
        }
        let c = original(c, last, mask).unwrap_or(c);
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        rest = after;
    }
    out
}

/// [`encode`] for servers that store names as bytes (FTP, SFTP): bytes that are not UTF-8
/// go through raw, as rclone sends them; `last` is the mask for the part that ends the
/// name (its end-of-name rules), `inside` for parts followed by such bytes.
pub fn encode_raw(name: &[u8], inside: Mask, last: Mask) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len());
    let mut chunks = name.utf8_chunks().peekable();
    while let Some(c) = chunks.next() {
        let ends = c.invalid().is_empty() && chunks.peek().is_none();
        out.extend_from_slice(encode(c.valid().as_bytes(), if ends { last } else { inside }).as_bytes());
        out.extend_from_slice(c.invalid());
    }
    out
}

/// The inverse of [`encode_raw`].
pub fn decode_raw(raw: &[u8], inside: Mask, last: Mask) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut chunks = raw.utf8_chunks().peekable();
    while let Some(c) = chunks.next() {
        let ends = c.invalid().is_empty() && chunks.peek().is_none();
        out.extend_from_slice(&decode(c.valid(), if ends { last } else { inside }));
        out.extend_from_slice(c.invalid());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn azure_names_round_trip_as_rclone_writes_them() {
        let m = Mask::AZURE;
        assert_eq!(encode(b"a\\b.", m), "a\u{FF3C}b\u{FF0E}");
        assert_eq!(encode(b"tab\there", m), "tab\u{2409}here");
        assert_eq!(encode(b"end.txt", m), "end.txt");
        assert_eq!(encode("x\u{FF0E}".as_bytes(), m), "x\u{201B}\u{FF0E}");
        assert_eq!(encode(b"bad\xffname", m), "bad\u{201B}FFname");
        for name in [
            &b"a\\b."[..],
            b"tab\there\x7f",
            "x\u{FF0E}".as_bytes(),
            "mid\u{FF0E}dle".as_bytes(),
            b"bad\xffname",
            "\u{201B}q".as_bytes(),
            "caf\u{e9}".as_bytes(),
            b"..",
        ] {
            assert_eq!(decode(&encode(name, m), m), name, "{:?}", String::from_utf8_lossy(name));
        }
    }
}
