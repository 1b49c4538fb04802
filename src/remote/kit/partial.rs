//! Temporary names for uploads in progress: a file is written under a name next to its
//! target and renamed into place only when complete and verified, so that a reader never
//! sees half a file and a failed upload never damages the previous version (local
//! directories, WebDAV, later SFTP and FTP). The shape is recognisable to an admin and to
//! the next run, which never lists such a file as a source and removes those it finds.

/// The end of every temporary file name.
pub const SUFFIX: &str = ".cloudsync-partial";

/// A temporary name next to `name` (`.NAME.XXXXXXXX.cloudsync-partial`), short enough
/// for a 255-byte name limit.
pub fn name(name: &[u8]) -> Vec<u8> {
    let mut rnd = [0u8; 4];
    let _ = getrandom::getrandom(&mut rnd);
    let suffix = format!(".{}{SUFFIX}", hex::encode(rnd));
    let keep = name.len().min(255 - 1 - suffix.len());
    // Cut on a UTF-8 boundary where possible so the temporary name stays readable.
    let mut cut = keep;
    while cut > 0 && cut < name.len() && (name[cut] & 0xC0) == 0x80 {
        cut -= 1;
    }
    let mut v = Vec::with_capacity(cut + suffix.len() + 1);
    v.push(b'.');
    v.extend_from_slice(&name[..cut]);
    v.extend_from_slice(suffix.as_bytes());
    v
}

/// Whether `name` has the shape [`name`] gives.
pub fn is_partial(name: &[u8]) -> bool {
    let Some(stem) = name.strip_suffix(SUFFIX.as_bytes()) else { return false };
    name.first() == Some(&b'.')
        && stem.len() >= 10
        && stem[stem.len() - 9] == b'.'
        && stem[stem.len() - 8..].iter().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_recognised_and_bounded() {
        let n = name(b"report.pdf");
        assert!(is_partial(&n), "{}", String::from_utf8_lossy(&n));
        assert!(n.starts_with(b".report.pdf."));
        assert!(!is_partial(b"report.pdf"));
        assert!(!is_partial(b".report.pdf.ABCDEF12.cloudsync-partial"));
        let long = "\u{e9}".repeat(200);
        let n = name(long.as_bytes());
        assert!(n.len() <= 255 && is_partial(&n) && std::str::from_utf8(&n).is_ok());
    }
}
