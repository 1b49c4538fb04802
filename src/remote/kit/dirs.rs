//! Directory rules shared by the providers with real directories (WebDAV, FTP, later
//! SFTP and the drives).

use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use crate::remote::Remote;

/// The absolute server path of `path` below `root` (no trailing `/`; `""` = `/`), each
/// segment put in the server's form by `encode` (FTP, SFTP).
pub fn server_path(root: &[u8], path: &RelPath, encode: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let mut p = root.to_vec();
    for seg in path.segments() {
        p.push(b'/');
        p.extend_from_slice(&encode(seg));
    }
    if p.is_empty() {
        p.push(b'/');
    }
    p
}

/// `path` as messages show it: the remote's description, then the path.
pub fn shown(root: &str, path: &RelPath) -> String {
    if path.is_root() {
        return root.to_string();
    }
    let sep = if root.ends_with('/') { "" } else { "/" };
    format!("{root}{sep}{}", path.display())
}

/// `host:port`, an IPv6 address in brackets.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// Before removing `dir` on a server whose directory delete may take everything in it (a
/// WebDAV `DELETE`, some SFTP servers), or whose refusal would be unclear: `false` when it
/// is gone already, an error naming it when anything is still listed in it.
pub fn check_empty(r: &dyn Remote, dir: &RelPath, shown: impl FnOnce() -> String) -> Result<bool> {
    match r.list_dir(dir, &mut |_| {}) {
        Ok(left) if left.is_empty() => Ok(true),
        Ok(_) => Err(Error::new(Kind::Other, "directory not empty").with_path(shown())),
        Err(e) if e.kind() == Kind::DirNotFound => Ok(false),
        Err(e) => Err(e),
    }
}
