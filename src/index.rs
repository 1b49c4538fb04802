//! The persistent metadata index (SQLite): what cloudsync has already learned about files
//! and objects, so that an unchanged tree costs listings only.
//!
//! - Local digests: the MD5 of a local file, valid while its size, mtime, inode and ctime
//!   are unchanged (ctime catches content changes that restore the mtime).
//! - Remote object metadata: for an object-store key, the modification time stored in its
//!   metadata (S3 `X-Amz-Meta-Mtime`) and its content MD5, valid while the listing shows
//!   the same size, ETag and server time. This is what lets a no-op re-sync skip the HEAD
//!   per object that rclone needs.
//!
//! Entries are only ever used when every validator matches, so a stale index costs extra
//! requests, never a wrong decision. Writes are batched; [`Index::flush`] commits them.

use crate::error::{Error, Kind, Result};
use crate::remote::{Md5, Nanos};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

const BATCH: usize = 512;

/// Identity of a local file version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileKey {
    pub root: String,
    pub path: Vec<u8>,
    pub size: i64,
    pub mtime: Nanos,
    pub ino: u64,
    pub ctime: Nanos,
}

/// What the index knows about one remote object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub size: i64,
    pub etag: String,
    /// The server's LastModified when known; `None` right after our own upload (the PUT
    /// response does not carry it), filled in from the next listing.
    pub server_time: Option<Nanos>,
    pub mtime: Nanos,
    pub md5: Option<Md5>,
}

enum Pending {
    Local(FileKey, Md5),
    Object { remote: String, dir: String, name: String, meta: ObjectMeta },
    ForgetObject { remote: String, dir: String, name: String },
}

pub struct Index {
    conn: Mutex<Connection>,
    pending: Mutex<Vec<Pending>>,
}

impl Index {
    /// Open (creating if needed) the index database at `path`, mode 0600.
    pub fn open(path: &Path) -> Result<Index> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent.display(), e))?;
        }
        let conn = Connection::open(path).map_err(|e| db_error(path, e))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Self::init(conn).map_err(|e| db_error(path, e))
    }

    /// An index that lives in memory only (tests, or when no path is writable).
    pub fn in_memory() -> Result<Index> {
        let conn = Connection::open_in_memory().map_err(|e| db_error(Path::new(":memory:"), e))?;
        Self::init(conn).map_err(|e| db_error(Path::new(":memory:"), e))
    }

    fn init(conn: Connection) -> rusqlite::Result<Index> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // A small page cache: lookups are point queries and one directory at a time.
        conn.pragma_update(None, "cache_size", -512)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS local_md5 (
                root TEXT NOT NULL, path BLOB NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
                ino INTEGER NOT NULL, ctime INTEGER NOT NULL, md5 BLOB NOT NULL,
                PRIMARY KEY (root, path)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS object_meta (
                remote TEXT NOT NULL, dir TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
                etag TEXT NOT NULL, server_time INTEGER, mtime INTEGER NOT NULL, md5 BLOB,
                PRIMARY KEY (remote, dir, name)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS upload_journal (
                remote TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL, source TEXT NOT NULL,
                part_size INTEGER NOT NULL, started INTEGER NOT NULL, owner_pid INTEGER NOT NULL,
                owner_start INTEGER NOT NULL, PRIMARY KEY (remote, key, session)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS upload_parts (
                remote TEXT NOT NULL, key TEXT NOT NULL, session TEXT NOT NULL, number INTEGER NOT NULL,
                etag TEXT NOT NULL, md5 BLOB NOT NULL, size INTEGER NOT NULL,
                PRIMARY KEY (remote, key, session, number)) WITHOUT ROWID;",
        )?;
        Ok(Index { conn: Mutex::new(conn), pending: Mutex::new(Vec::new()) })
    }

    pub fn get_local_md5(&self, key: &FileKey) -> Option<Md5> {
        // Writes not yet committed are answered from memory: committing on every read would
        // cost a transaction per file.
        if let Ok(pending) = self.pending.lock() {
            for p in pending.iter().rev() {
                if let Pending::Local(k, md5) = p
                    && k.root == key.root
                    && k.path == key.path
                {
                    return (k == key).then_some(*md5);
                }
            }
        }
        let conn = self.conn.lock().ok()?;
        let row: Option<(i64, i64, i64, i64, Vec<u8>)> = conn
            .prepare_cached("SELECT size, mtime, ino, ctime, md5 FROM local_md5 WHERE root = ?1 AND path = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![key.root, key.path], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()
            })
            .ok()
            .flatten();
        let (size, mtime, ino, ctime, md5) = row?;
        if size == key.size && mtime == key.mtime && ino as u64 == key.ino && ctime == key.ctime {
            md5.try_into().ok()
        } else {
            None
        }
    }

    pub fn put_local_md5(&self, key: &FileKey, md5: Md5) {
        self.push(Pending::Local(key.clone(), md5));
    }

    /// Everything known about the objects of one directory of `remote`, by name.
    pub fn object_dir(&self, remote: &str, dir: &str) -> HashMap<String, ObjectMeta> {
        let mut out = self.object_dir_committed(remote, dir);
        // Then what this process wrote but has not committed yet, in order.
        if let Ok(pending) = self.pending.lock() {
            for p in pending.iter() {
                match p {
                    Pending::Object { remote: r, dir: d, name, meta } if r == remote && d == dir => {
                        out.insert(name.clone(), meta.clone());
                    }
                    Pending::ForgetObject { remote: r, dir: d, name } if r == remote && d == dir => {
                        out.remove(name);
                    }
                    _ => {}
                }
            }
        }
        out
    }

    fn object_dir_committed(&self, remote: &str, dir: &str) -> HashMap<String, ObjectMeta> {
        let mut out = HashMap::new();
        let Ok(conn) = self.conn.lock() else {
            return out;
        };
        let Ok(mut stmt) = conn.prepare_cached(
            "SELECT name, size, etag, server_time, mtime, md5 FROM object_meta WHERE remote = ?1 AND dir = ?2",
        ) else {
            return out;
        };
        let rows = stmt.query_map(params![remote, dir], |r| {
            let md5: Option<Vec<u8>> = r.get(5)?;
            Ok((
                r.get::<_, String>(0)?,
                ObjectMeta {
                    size: r.get(1)?,
                    etag: r.get(2)?,
                    server_time: r.get(3)?,
                    mtime: r.get(4)?,
                    md5: md5.and_then(|v| v.try_into().ok()),
                },
            ))
        });
        if let Ok(rows) = rows {
            for (name, meta) in rows.flatten() {
                out.insert(name, meta);
            }
        }
        out
    }

    pub fn put_object(&self, remote: &str, dir: &str, name: &str, meta: ObjectMeta) {
        self.push(Pending::Object { remote: remote.into(), dir: dir.into(), name: name.into(), meta });
    }

    /// Forget an object at once and durably, before it is overwritten: a crash between
    /// the overwrite and the next flush must not leave the old version's record, which a
    /// listing without ETags could not tell from the new one. Costs a write only when a
    /// record exists.
    pub fn forget_object_now(&self, remote: &str, dir: &str, name: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.retain(|p| match p {
                Pending::Object { remote: r, dir: d, name: n, .. }
                | Pending::ForgetObject { remote: r, dir: d, name: n } => !(r == remote && d == dir && n == name),
                Pending::Local(..) => true,
            });
        }
        let Ok(conn) = self.conn.lock() else { return };
        let known = conn
            .prepare_cached("SELECT 1 FROM object_meta WHERE remote = ?1 AND dir = ?2 AND name = ?3")
            .and_then(|mut stmt| stmt.exists(params![remote, dir, name]))
            .unwrap_or(true);
        if known
            && let Err(e) = conn.execute(
                "DELETE FROM object_meta WHERE remote = ?1 AND dir = ?2 AND name = ?3",
                params![remote, dir, name],
            )
        {
            log::warn!("index: {e}");
        }
    }

    pub fn forget_object(&self, remote: &str, dir: &str, name: &str) {
        self.push(Pending::ForgetObject { remote: remote.into(), dir: dir.into(), name: name.into() });
    }

    fn push(&self, p: Pending) {
        let full = {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            pending.push(p);
            pending.len() >= BATCH
        };
        if full {
            self.flush();
        }
    }

    /// Commit batched writes. Failures are logged, never fatal: the index is a cache.
    pub fn flush(&self) {
        let batch = match self.pending.lock() {
            Ok(mut p) if !p.is_empty() => std::mem::take(&mut *p),
            _ => return,
        };
        let Ok(mut conn) = self.conn.lock() else {
            return;
        };
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for p in &batch {
                match p {
                    Pending::Local(k, md5) => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO local_md5 (root, path, size, mtime, ino, ctime, md5)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        )?
                        .execute(params![
                            k.root,
                            k.path,
                            k.size,
                            k.mtime,
                            k.ino as i64,
                            k.ctime,
                            &md5[..]
                        ])?;
                    }
                    Pending::Object { remote, dir, name, meta } => {
                        tx.prepare_cached(
                            "INSERT OR REPLACE INTO object_meta (remote, dir, name, size, etag, server_time, mtime, md5)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )?
                        .execute(params![
                            remote,
                            dir,
                            name,
                            meta.size,
                            meta.etag,
                            meta.server_time,
                            meta.mtime,
                            meta.md5.as_ref().map(|m| &m[..])
                        ])?;
                    }
                    Pending::ForgetObject { remote, dir, name } => {
                        tx.prepare_cached("DELETE FROM object_meta WHERE remote = ?1 AND dir = ?2 AND name = ?3")?
                            .execute(params![remote, dir, name])?;
                    }
                }
            }
            tx.commit()
        })();
        if let Err(e) = result {
            log::warn!("metadata index: could not save {} entries: {e}", batch.len());
        }
    }
}

impl Drop for Index {
    fn drop(&mut self) {
        self.flush();
    }
}

/// One chunked upload that was started and not yet completed or aborted: what the next
/// run needs to resume it (same source version, same part size) or to abort it. Every
/// chunked-upload provider records its session here (S3 upload id, B2 large-file id,
/// an Azure blob's uncommitted blocks, a GCS or OneDrive session URL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadRecord {
    pub key: String,
    pub session: String,
    /// The source version the upload was started from ([`crate::remote::Source::fingerprint`]).
    pub source: String,
    pub part_size: u64,
    /// Seconds since the epoch.
    pub started: i64,
    /// The process that runs the upload: only a dead owner's sessions are leftovers.
    pub owner: crate::process::Owner,
}

/// One stored part of a journaled upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalPart {
    pub number: u64,
    /// What the server answered for it (needed to complete the upload).
    pub etag: String,
    pub md5: Md5,
    pub size: u64,
}

impl Index {
    /// Record an upload session at once (not batched: it must survive a kill -9 that
    /// follows immediately).
    pub fn journal_start(&self, remote: &str, rec: &UploadRecord) -> Result<()> {
        let conn = self.conn.lock().map_err(|_| Error::other("index lock poisoned"))?;
        conn.execute(
            "INSERT OR REPLACE INTO upload_journal (remote, key, session, source, part_size, started,
             owner_pid, owner_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                remote,
                rec.key,
                rec.session,
                rec.source,
                rec.part_size as i64,
                rec.started,
                rec.owner.pid,
                rec.owner.start
            ],
        )
        .map_err(|e| Error::new(Kind::Io, format!("upload journal: {e}")))?;
        Ok(())
    }

    /// The session is over (completed or aborted).
    pub fn journal_end(&self, remote: &str, key: &str, session: &str) {
        if let Ok(conn) = self.conn.lock() {
            for table in ["upload_journal", "upload_parts"] {
                if let Err(e) = conn.execute(
                    &format!("DELETE FROM {table} WHERE remote = ?1 AND key = ?2 AND session = ?3"),
                    params![remote, key, session],
                ) {
                    log::warn!("upload journal: {e}");
                }
            }
        }
    }

    /// A part the server acknowledged and that verified (its ETag or checksum matched the
    /// bytes sent): a resumed upload keeps it if the source still has these bytes there.
    pub fn journal_part(&self, remote: &str, key: &str, session: &str, part: &JournalPart) -> Result<()> {
        let conn = self.conn.lock().map_err(|_| Error::other("index lock poisoned"))?;
        conn.execute(
            "INSERT OR REPLACE INTO upload_parts (remote, key, session, number, etag, md5, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![remote, key, session, part.number as i64, part.etag, part.md5.to_vec(), part.size as i64],
        )
        .map_err(|e| Error::new(Kind::Io, format!("upload journal: {e}")))?;
        Ok(())
    }

    /// The verified parts of a session, by number.
    pub fn journal_parts(&self, remote: &str, key: &str, session: &str) -> Vec<JournalPart> {
        let Ok(conn) = self.conn.lock() else { return Vec::new() };
        conn.prepare_cached(
            "SELECT number, etag, md5, size FROM upload_parts WHERE remote = ?1 AND key = ?2 AND session = ?3
             ORDER BY number",
        )
        .and_then(|mut stmt| {
            stmt.query_map(params![remote, key, session], |r| {
                let md5: Vec<u8> = r.get(2)?;
                Ok(JournalPart {
                    number: r.get::<_, i64>(0)? as u64,
                    etag: r.get(1)?,
                    md5: md5.try_into().unwrap_or_default(),
                    size: r.get::<_, i64>(3)? as u64,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap_or_default()
    }

    /// Sessions of `remote` (all keys when `key` is `None`), oldest first.
    pub fn journal(&self, remote: &str, key: Option<&str>) -> Vec<UploadRecord> {
        let Ok(conn) = self.conn.lock() else { return Vec::new() };
        let rows = conn
            .prepare_cached(
                "SELECT key, session, source, part_size, started, owner_pid, owner_start FROM upload_journal
                 WHERE remote = ?1 AND (?2 IS NULL OR key = ?2) ORDER BY started",
            )
            .and_then(|mut stmt| {
                stmt.query_map(params![remote, key], |r| {
                    Ok(UploadRecord {
                        key: r.get(0)?,
                        session: r.get(1)?,
                        source: r.get(2)?,
                        part_size: r.get::<_, i64>(3)? as u64,
                        started: r.get(4)?,
                        owner: crate::process::Owner { pid: r.get(5)?, start: r.get(6)? },
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            });
        rows.unwrap_or_default()
    }
}

fn db_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::new(Kind::Io, format!("cannot open the metadata index: {e}")).with_path(path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey { root: "/r".into(), path: b"a/b\xff".to_vec(), size: 3, mtime: 10, ino: 7, ctime: 11 }
    }

    #[test]
    fn local_md5_needs_every_validator() {
        let idx = Index::in_memory().unwrap();
        idx.put_local_md5(&key(), [1; 16]);
        idx.flush();
        assert_eq!(idx.get_local_md5(&key()), Some([1; 16]));
        for change in [
            FileKey { size: 4, ..key() },
            FileKey { mtime: 12, ..key() },
            FileKey { ino: 8, ..key() },
            FileKey { ctime: 99, ..key() },
        ] {
            assert_eq!(idx.get_local_md5(&change), None);
        }
    }

    #[test]
    fn object_meta_round_trips_per_directory() {
        let idx = Index::in_memory().unwrap();
        let m = ObjectMeta { size: 5, etag: "\"e\"".into(), server_time: None, mtime: -3, md5: Some([9; 16]) };
        idx.put_object("s3:b", "d", "n", m.clone());
        idx.put_object("s3:b", "other", "n", m.clone());
        idx.flush();
        let dir = idx.object_dir("s3:b", "d");
        assert_eq!(dir.len(), 1);
        assert_eq!(dir["n"], m);
        idx.forget_object("s3:b", "d", "n");
        idx.flush();
        assert!(idx.object_dir("s3:b", "d").is_empty());
    }

    #[test]
    fn uncommitted_writes_are_read_without_a_commit() {
        let idx = Index::in_memory().unwrap();
        idx.put_local_md5(&key(), [3; 16]);
        assert_eq!(idx.get_local_md5(&key()), Some([3; 16]));
        assert_eq!(idx.get_local_md5(&FileKey { size: 9, ..key() }), None, "validators still apply");
        let m = ObjectMeta { size: 1, etag: "e".into(), server_time: None, mtime: 5, md5: None };
        idx.put_object("r", "d", "n", m.clone());
        assert_eq!(idx.object_dir("r", "d").get("n"), Some(&m));
        idx.forget_object("r", "d", "n");
        assert!(idx.object_dir("r", "d").is_empty());
        assert!(idx.pending.lock().unwrap().len() == 3, "nothing was committed by the reads");
    }

    #[test]
    fn upload_journal_lists_and_ends_sessions() {
        let idx = Index::in_memory().unwrap();
        let rec = |key: &str, session: &str, started| UploadRecord {
            key: key.into(),
            session: session.into(),
            source: "v1".into(),
            part_size: 5 << 20,
            started,
            owner: crate::process::Owner::me(),
        };
        idx.journal_start("s3:b", &rec("a", "u1", 2)).unwrap();
        idx.journal_start("s3:b", &rec("b", "u2", 1)).unwrap();
        idx.journal_start("s3:other", &rec("a", "u3", 1)).unwrap();
        assert_eq!(idx.journal("s3:b", None), vec![rec("b", "u2", 1), rec("a", "u1", 2)]);
        assert_eq!(idx.journal("s3:b", Some("a")), vec![rec("a", "u1", 2)]);
        let part = JournalPart { number: 2, etag: "\"e\"".into(), md5: [7; 16], size: 5 };
        idx.journal_part("s3:b", "a", "u1", &part).unwrap();
        assert_eq!(idx.journal_parts("s3:b", "a", "u1"), vec![part]);
        idx.journal_end("s3:b", "a", "u1");
        assert!(idx.journal_parts("s3:b", "a", "u1").is_empty());
        assert_eq!(idx.journal("s3:b", Some("a")), vec![]);
        assert_eq!(idx.journal("s3:other", None).len(), 1);
    }

    #[test]
    fn file_database_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/index.db");
        let idx = Index::open(&p).unwrap();
        idx.put_local_md5(&key(), [2; 16]);
        drop(idx);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(Index::open(&p).unwrap().get_local_md5(&key()), Some([2; 16]));
    }
}
