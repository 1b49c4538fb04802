//! The one public error type of cloudsync.
//!
//! An [`Error`] carries a [`Kind`] (what went wrong, which decides the rclone-compatible exit
//! code and whether a retry can help), a message written for a NAS admin, and optional
//! context: the path it concerns, the remote it came from, the HTTP status. Layers add
//! context with [`Error::with_path`] / [`Error::with_remote`] instead of wrapping.
//! Messages never contain secrets: callers build them from names and statuses only.

use std::fmt;
use std::io;

/// What went wrong, coarsely: enough to pick an exit code and a retry policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Bad flags, options or task fields (exit code 2).
    Usage,
    /// A directory that should exist does not (exit code 3).
    DirNotFound,
    /// A file or object that should exist does not (exit code 4).
    NotFound,
    /// Credentials rejected or access denied.
    Permission,
    /// Network trouble: connect, reset, timeout (retryable).
    Network,
    /// The server answered with an error (5xx and throttling are retryable).
    Server,
    /// The server answered with something we cannot parse.
    Protocol,
    /// Data did not verify: size or hash mismatch, failed authentication of ciphertext.
    Corrupted,
    /// A local source file changed while it was read (retryable: the next try reads the
    /// new version).
    SourceChanged,
    /// A name or key that cannot be used safely (`..`, absolute, NUL, ...).
    BadName,
    /// Local filesystem errors.
    Io,
    /// The run was cancelled (abort).
    Cancelled,
    /// An error that stops the whole run and must not be retried (overlap, max-delete).
    Fatal,
    /// Deletions were skipped because errors happened earlier in the run.
    NotDeleting,
    /// The operation is not supported by this remote.
    Unsupported,
    /// The account's storage quota or spending cap is exhausted (never retried: waiting
    /// does not free space).
    Quota,
    /// The stored authorisation expired or was revoked; the admin must reconnect the
    /// credential (never retried).
    AuthExpired,
    /// Anything else.
    Other,
}

impl Kind {
    /// The kind's stable name for programs (a job's `error_details.kind`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Usage => "usage",
            Kind::DirNotFound => "dir_not_found",
            Kind::NotFound => "not_found",
            Kind::Permission => "permission",
            Kind::Network => "network",
            Kind::Server => "server",
            Kind::Protocol => "protocol",
            Kind::Corrupted => "corrupted",
            Kind::SourceChanged => "source_changed",
            Kind::BadName => "bad_name",
            Kind::Io => "io",
            Kind::Cancelled => "cancelled",
            Kind::Fatal => "fatal",
            Kind::NotDeleting => "not_deleting",
            Kind::Unsupported => "unsupported",
            Kind::Quota => "quota",
            Kind::AuthExpired => "auth_expired",
            Kind::Other => "other",
        }
    }
}

/// The cloudsync error: a kind, a message, context, a retryable flag and an optional source.
pub struct Error {
    kind: Kind,
    message: String,
    path: Option<String>,
    remote: Option<String>,
    /// The TrueNAS provider type of the remote (`AZUREBLOB`), stamped once by the
    /// remote layer's `Context` wrapper.
    provider: Option<&'static str>,
    http_status: Option<u16>,
    retryable: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

/// Shorthand used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with `message`. Retryable defaults from the kind.
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            path: None,
            remote: None,
            provider: None,
            http_status: None,
            retryable: matches!(kind, Kind::Network | Kind::Server | Kind::SourceChanged),
            source: None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }

    pub fn other(message: impl Into<String>) -> Error {
        Error::new(Kind::Other, message)
    }

    pub fn cancelled() -> Error {
        Error::new(Kind::Cancelled, "cancelled")
    }

    /// Wrap an I/O error from an operation on a local path, e.g. `("open", "/mnt/tank/a")`.
    pub fn io(op: &str, path: impl fmt::Display, err: io::Error) -> Error {
        let kind = match err.kind() {
            io::ErrorKind::NotFound => Kind::NotFound,
            io::ErrorKind::PermissionDenied => Kind::Permission,
            _ => Kind::Io,
        };
        Error::new(kind, format!("{op} failed: {}", plain_io_message(&err)))
            .with_path(path.to_string())
            .with_source(err)
    }

    /// Name the path the error concerns, unless one is named already: the innermost
    /// layer knows best (a local file that failed while a remote uploaded it keeps its
    /// local path, so the sentence names the side that failed).
    pub fn with_path(mut self, path: impl Into<String>) -> Error {
        if self.path.is_none() {
            self.path = Some(path.into());
        }
        self
    }

    pub fn with_remote(mut self, remote: impl Into<String>) -> Error {
        if self.remote.is_none() {
            self.remote = Some(remote.into());
        }
        self
    }

    /// Put what was being done in front of the message (`Failed to copy: ...`), keeping
    /// the kind and the context.
    pub fn doing(mut self, what: &str) -> Error {
        if !what.is_empty() && !self.message.starts_with(what) {
            self.message = format!("{what}: {}", self.message);
        }
        self
    }

    /// Name the provider (kept if one is named already).
    pub fn with_provider(mut self, provider: &'static str) -> Error {
        self.provider.get_or_insert(provider);
        self
    }

    /// Name the remote unless one is named already (the innermost remote knows best).
    pub fn or_remote(mut self, remote: impl FnOnce() -> String) -> Error {
        if self.remote.is_none() {
            self.remote = Some(remote());
        }
        self
    }

    pub fn provider(&self) -> Option<&'static str> {
        self.provider
    }

    pub fn with_status(mut self, status: u16) -> Error {
        self.http_status = Some(status);
        self
    }

    pub fn with_retryable(mut self, retryable: bool) -> Error {
        self.retryable = retryable;
        self
    }

    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The message without context (see `Display` for the full sentence).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    pub fn http_status(&self) -> Option<u16> {
        self.http_status
    }

    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub fn is_cancelled(&self) -> bool {
        self.kind == Kind::Cancelled
    }

    /// The rclone-compatible exit code for a run that ended with this error
    /// (sync-semantics.md §12).
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Usage => 2,
            Kind::DirNotFound => 3,
            Kind::NotFound => 4,
            Kind::Fatal => 7,
            Kind::NotDeleting => 1,
            _ if self.retryable => 5,
            Kind::Cancelled | Kind::Other => 1,
            _ => 6,
        }
    }
}

/// `io::Error`'s Display adds "(os error N)"; admins read the plain sentence better. An
/// OS error reads as rclone (Go) writes it, in lower case (`connection refused`, `no such
/// file or directory`): middleware matches on those texts.
fn plain_io_message(err: &io::Error) -> String {
    let text = err.to_string();
    let plain = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    if err.raw_os_error().is_some() {
        let mut chars = plain.chars();
        if let Some(first) = chars.next() {
            return first.to_lowercase().chain(chars).collect();
        }
    }
    plain
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(status) = self.http_status
            && !self.message.contains(&status.to_string())
        {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(remote) = &self.remote {
            write!(f, " [{remote}]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(p) = &self.path {
            d.field("path", p);
        }
        if let Some(r) = &self.remote {
            d.field("remote", r);
        }
        if let Some(s) = self.http_status {
            d.field("http_status", &s);
        }
        d.field("retryable", &self.retryable);
        if let Some(s) = &self.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Error {
        // An io::Error that carries our own Error (from a Read adapter) unwraps back to it.
        if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            if let Some(inner) = err.into_inner()
                && let Ok(ours) = inner.downcast::<Error>()
            {
                return *ours;
            }
            return Error::other("I/O error");
        }
        let kind = match err.kind() {
            io::ErrorKind::NotFound => Kind::NotFound,
            io::ErrorKind::PermissionDenied => Kind::Permission,
            io::ErrorKind::TimedOut
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Kind::Network,
            _ => Kind::Io,
        };
        Error::new(kind, plain_io_message(&err)).with_source(err)
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        io::Error::other(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_context_once() {
        let e = Error::new(Kind::Server, "upload failed: service unavailable")
            .with_path("photos/a.jpg")
            .with_status(503)
            .with_remote("s3:bucket");
        assert_eq!(e.to_string(), "photos/a.jpg: upload failed: service unavailable (HTTP 503) [s3:bucket]");
        assert!(e.is_retryable());
        assert_eq!(e.exit_code(), 5);
    }

    #[test]
    fn io_errors_read_as_sentences() {
        let e = Error::io("open", "/mnt/tank/x", io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(e.to_string(), "/mnt/tank/x: open failed: no such file or directory");
        assert_eq!(e.kind(), Kind::NotFound);
    }

    #[test]
    fn our_error_survives_a_trip_through_io_error() {
        let e = Error::new(Kind::Corrupted, "hash mismatch").with_path("a");
        let io_err: io::Error = e.into();
        let back: Error = io_err.into();
        assert_eq!(back.kind(), Kind::Corrupted);
        assert_eq!(back.path(), Some("a"));
    }

    #[test]
    fn exit_codes_follow_rclone() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::new(Kind::DirNotFound, "x").exit_code(), 3);
        assert_eq!(Error::new(Kind::Fatal, "x").exit_code(), 7);
        assert_eq!(Error::new(Kind::Permission, "x").exit_code(), 6);
    }
}
