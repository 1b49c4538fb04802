//! Content types by file extension, for providers that store one with each object.

/// A Content-Type from the file extension; `application/octet-stream` otherwise.
pub fn content_type(name: &[u8]) -> &'static str {
    let ext = name.rsplit(|&b| b == b'.').next().map(|e| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_slice() {
        b"txt" | b"log" => "text/plain; charset=utf-8",
        b"html" | b"htm" => "text/html; charset=utf-8",
        b"css" => "text/css; charset=utf-8",
        b"csv" => "text/csv; charset=utf-8",
        b"js" => "text/javascript; charset=utf-8",
        b"json" => "application/json",
        b"xml" => "text/xml; charset=utf-8",
        b"pdf" => "application/pdf",
        b"zip" => "application/zip",
        b"gz" | b"tgz" => "application/gzip",
        b"tar" => "application/x-tar",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"png" => "image/png",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"svg" => "image/svg+xml",
        b"mp3" => "audio/mpeg",
        b"mp4" => "video/mp4",
        b"mkv" => "video/x-matroska",
        b"mov" => "video/quicktime",
        _ => "application/octet-stream",
    }
}
