//! The control socket: a Unix stream socket speaking line-delimited JSON (docs/DAEMON.md).
//!
//! Owns binding (stale sockets, mode 0600 or 0660 with a group), the peer check
//! (SO_PEERCRED: root, the daemon's user, members of the configured group) and framing
//! (lines up to [`MAX_LINE`]). Each connection is its own task and each request runs on a
//! blocking thread, so neither a slow client nor a slow request (a listing over the
//! network) holds up the scheduler or other clients. What a request means is
//! [`crate::dispatch`]'s business.

use crate::dispatch::{self, Context, MAX_LINE, Peer, RpcError};
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{Semaphore, watch};

/// Connections served at once; more are answered EBUSY and closed.
const MAX_CONNECTIONS: usize = 64;
/// Requests carried out at once (each on a blocking thread).
const MAX_REQUESTS: usize = 8;
/// A client that does not read its answer for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Who may use the socket.
#[derive(Clone, Debug)]
pub struct Access {
    /// The daemon's effective uid.
    pub daemon_uid: u32,
    /// The group whose members may connect too: (name, gid).
    pub group: Option<(String, u32)>,
}

impl Access {
    /// The peer's rights, or `None` when it may not connect. `groups` are the peer's
    /// supplementary groups (as far as they are known).
    pub fn check(&self, uid: u32, gid: u32, groups: &[u32]) -> Option<Peer> {
        if uid == 0 || uid == self.daemon_uid {
            return Some(Peer { uid, full_admin: true });
        }
        let (_, g) = self.group.as_ref()?;
        (gid == *g || groups.contains(g)).then_some(Peer { uid, full_admin: false })
    }

    fn refusal(&self, uid: u32) -> String {
        let group = match &self.group {
            Some((name, _)) => format!(", members of group {name}"),
            None => String::new(),
        };
        format!("Permission denied: uid {uid} may not use cloudsyncd (allowed: root, uid {}{group})", self.daemon_uid)
    }
}

/// The supplementary groups of process `pid` (the `Groups:` line of its status).
fn process_groups(pid: Option<i32>) -> Vec<u32> {
    let Some(status) = pid.and_then(|p| std::fs::read_to_string(format!("/proc/{p}/status")).ok()) else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| g.split_whitespace().filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

/// Bind the control socket at `path`: mode 0600, or 0660 owned by `group`. A stale socket
/// is replaced; a live one (another daemon) or a file that is not a socket is an error.
pub fn bind(path: &Path, group: Option<u32>) -> Result<std::os::unix::net::UnixListener, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(format!("another cloudsyncd is already listening on {}", path.display()));
            }
            std::fs::remove_file(path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
        Ok(_) => return Err(format!("{} exists and is not a socket; refusing to replace it", path.display())),
        Err(_) => {}
    }
    // No moment with a wider mode than intended: umask while binding, then the final mode.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = std::os::unix::net::UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    let mode = match group {
        Some(gid) => {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(|e| format!("cannot give {} to group {gid}: {e}", path.display()))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    listener.set_nonblocking(true).map_err(|e| format!("cannot use {}: {e}", path.display()))?;
    Ok(listener)
}

/// Accept and serve connections until `stop` turns true.
pub async fn serve(
    listener: tokio::net::UnixListener,
    ctx: Arc<Context>,
    access: Arc<Access>,
    mut stop: watch::Receiver<bool>,
) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let requests = Arc::new(Semaphore::new(MAX_REQUESTS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((mut stream, _)) => match connections.clone().try_acquire_owned() {
                Ok(permit) => {
                    let (ctx, access, requests) = (ctx.clone(), access.clone(), requests.clone());
                    tokio::spawn(async move {
                        connection(&mut stream, &ctx, &access, &requests).await;
                        drop(permit);
                    });
                }
                Err(_) => {
                    tokio::spawn(async move {
                        let busy = dispatch::response(
                            serde_json::Value::Null,
                            Err(RpcError::new("EBUSY", "Too many connections to cloudsyncd; try again")),
                        );
                        let _ = write_line(&mut stream, &busy).await;
                    });
                }
            },
            Err(e) => {
                // Out of descriptors, typically: wait a little instead of spinning.
                log::warn!("control socket: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn connection(stream: &mut UnixStream, ctx: &Arc<Context>, access: &Access, requests: &Arc<Semaphore>) {
    let peer = match stream.peer_cred() {
        Ok(c) => {
            let groups = if c.uid() == 0 || c.uid() == access.daemon_uid || access.group.is_none() {
                Vec::new()
            } else {
                process_groups(c.pid())
            };
            access.check(c.uid(), c.gid(), &groups).ok_or_else(|| access.refusal(c.uid()))
        }
        Err(e) => Err(format!("Permission denied: the peer's credentials are unknown ({e})")),
    };
    let peer = match peer {
        Ok(p) => p,
        Err(message) => {
            log::warn!("control socket: refused a connection: {message}");
            let refused = dispatch::response(serde_json::Value::Null, Err(RpcError::new("EPERM", message)));
            let _ = write_line(stream, &refused).await;
            return;
        }
    };
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::new(reader);
    loop {
        let line = match read_line(&mut reader).await {
            Ok(Line::Eof) | Err(_) => return,
            Ok(Line::TooLong) => {
                let e = RpcError::new("E2BIG", format!("The request is longer than {MAX_LINE} bytes"));
                if write_line(&mut writer, &dispatch::response(serde_json::Value::Null, Err(e))).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Line::Text(l)) => l,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = {
            let Ok(_permit) = requests.acquire().await else { return };
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || {
                let answer = dispatch::handle_line(&ctx, &peer, &line);
                drop(line);
                if ctx.jobs.live() == 0 {
                    crate::system::release_memory();
                }
                answer
            })
            .await
            .unwrap_or_else(|_| {
                dispatch::response(
                    serde_json::Value::Null,
                    Err(RpcError::new("EFAULT", "The request failed unexpectedly (a bug in cloudsyncd)")),
                )
            })
        };
        if write_line(&mut writer, &answer).await.is_err() {
            return;
        }
    }
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    Eof,
}

/// One request line without its line end, reading at most [`MAX_LINE`] bytes into memory;
/// the rest of a longer line is skipped.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> io::Result<Line> {
    let mut buf = Vec::new();
    let n = (&mut *reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Line::Text(buf));
    }
    if buf.len() <= MAX_LINE {
        return Ok(Line::Text(buf)); // the last line, without a newline
    }
    drop(buf);
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Line::TooLong);
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(Line::TooLong);
            }
            None => {
                let n = chunk.len();
                reader.consume(n);
            }
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, v: &serde_json::Value) -> io::Result<()> {
    let mut out = serde_json::to_vec(v).map_err(io::Error::other)?;
    out.push(b'\n');
    match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&out)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the client does not read its answers")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_the_daemon_user_and_group_members_may_connect() {
        let a = Access { daemon_uid: 1000, group: Some(("cloudsync".into(), 50)) };
        assert!(a.check(0, 0, &[]).is_some_and(|p| p.full_admin));
        assert!(a.check(1000, 1000, &[]).is_some_and(|p| p.full_admin));
        assert!(a.check(1001, 50, &[]).is_some_and(|p| !p.full_admin), "primary group");
        assert!(a.check(1001, 100, &[7, 50]).is_some_and(|p| !p.full_admin), "supplementary group");
        assert!(a.check(1001, 100, &[7]).is_none());
        let no_group = Access { daemon_uid: 0, group: None };
        assert!(no_group.check(65534, 65534, &[65534]).is_none());
        assert!(no_group.refusal(65534).contains("uid 65534 may not use cloudsyncd"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn long_lines_are_skipped_without_holding_them_in_memory() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\n{\"id\":1}\r\nlast");
        let mut r = BufReader::new(&input[..]);
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::TooLong));
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Text(l) if l == b"{\"id\":1}"));
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Text(l) if l == b"last"));
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Eof));
        // Exactly the limit is fine.
        let mut exact = vec![b' '; MAX_LINE];
        exact.push(b'\n');
        let mut r = BufReader::new(&exact[..]);
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Text(l) if l.len() == MAX_LINE));
    }
}
