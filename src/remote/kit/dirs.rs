//! Directory rules shared by the providers with real directories (WebDAV, FTP, later
//! SFTP and the drives).

use crate::error::{Error, Kind, Result};
use crate::path::RelPath;
use crate::remote::Remote;

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
