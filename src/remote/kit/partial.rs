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
    with_tag(name, rnd)
}

/// The temporary name next to `name` for one version of a file: the same for the same
/// full `path` and source `fingerprint`, so that a later run finds what an interrupted
/// upload of that very data left and can go on from there (rclone's `.partial` names use
/// the CRC-32 of remote and fingerprint the same way).
pub fn stable_name(name: &[u8], path: &[u8], fingerprint: &str) -> Vec<u8> {
    let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32IsoHdlc);
    d.update(path);
    d.update(b"\0");
    d.update(fingerprint.as_bytes());
    with_tag(name, (d.finalize() as u32).to_be_bytes())
}

fn with_tag(name: &[u8], tag: [u8; 4]) -> Vec<u8> {
    let suffix = format!(".{}{SUFFIX}", hex::encode(tag));
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

/// Delete the temporary files of earlier runs that listings came across (`found`), each
/// by `delete`, logging each one; how many went.
pub fn remove_found(
    found: Vec<crate::path::RelPath>,
    delete: impl Fn(&crate::path::RelPath) -> crate::error::Result<()>,
    shown: impl Fn(&crate::path::RelPath) -> String,
) -> u64 {
    let mut removed = 0;
    for path in found {
        match delete(&path) {
            Ok(()) => {
                log::info!("{}: removed a temporary file an interrupted upload left", shown(&path));
                removed += 1;
            }
            Err(e) => log::warn!("{}: could not remove a leftover temporary file: {e}", shown(&path)),
        }
    }
    removed
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
        let a = stable_name(b"report.pdf", b"dir/report.pdf", "file:10:1:2:3");
        assert_eq!(a, stable_name(b"report.pdf", b"dir/report.pdf", "file:10:1:2:3"));
        assert_ne!(a, stable_name(b"report.pdf", b"dir/report.pdf", "file:10:1:2:4"));
        assert_ne!(a, stable_name(b"report.pdf", b"other/report.pdf", "file:10:1:2:3"));
        assert!(is_partial(&a) && a.starts_with(b".report.pdf."), "{}", String::from_utf8_lossy(&a));
        let long = "\u{e9}".repeat(200);
        let n = name(long.as_bytes());
        assert!(n.len() <= 255 && is_partial(&n) && std::str::from_utf8(&n).is_ok());
    }
}
