//! The SQLite store: credentials, tasks and job runs, shared safely by the daemon, the CLI
//! and library users in other processes (WAL, busy timeout, short transactions).
//!
//! Bodies are JSON with the TrueNAS field names. Secret fields never reach the database in
//! clear: a credential's provider fields are one encrypted JSON value, a task's
//! `encryption_password` and `encryption_salt` are encrypted one by one
//! ([`super::secrets`]). Validation is the task layer's job; this layer stores what it is
//! given, encrypts, decrypts, and refuses (never deletes) when the seed does not match.

use super::secrets::{Field, SEED_MISMATCH, Secrets};
use crate::error::{Error, Kind, Result};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Schema versions, applied in order; a version is never edited once released.
const MIGRATIONS: &[&str] = &[
    // 1: the initial schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE credentials (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        provider TEXT NOT NULL,
        attributes TEXT NOT NULL,
        unusable TEXT);
     CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        credential_id INTEGER NOT NULL REFERENCES credentials(id),
        body TEXT NOT NULL,
        encryption_password TEXT NOT NULL DEFAULT '',
        encryption_salt TEXT NOT NULL DEFAULT '',
        job TEXT);
     CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_id INTEGER,
        state TEXT NOT NULL,
        dry_run INTEGER NOT NULL DEFAULT 0,
        created INTEGER NOT NULL,
        started INTEGER,
        finished INTEGER,
        progress TEXT,
        error TEXT,
        logs_path TEXT,
        logs_excerpt TEXT,
        owner_pid INTEGER,
        owner_start INTEGER,
        abort_requested INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX jobs_task ON jobs(task_id, id);
     CREATE TABLE path_locks (
        job_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        write INTEGER NOT NULL,
        owner_pid INTEGER NOT NULL,
        owner_start INTEGER NOT NULL);",
    // 2: the keychain (TrueNAS `keychaincredential`, type SSH_KEY_PAIR): the private key
    // encrypted like every secret, the public key in clear.
    "CREATE TABLE keychain (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        public_key TEXT NOT NULL,
        private_key TEXT NOT NULL DEFAULT '')",
    // 3: the server host key a credential trusts (SFTP, pinned at first use).
    "ALTER TABLE credentials ADD COLUMN host_key TEXT",
    // 4: a failed job's error as fields (exit code, kind, HTTP status, provider, remote,
    // path), JSON.
    "ALTER TABLE jobs ADD COLUMN error_details TEXT",
];

/// A stored credential's host-key record, for the remotes built from it.
pub struct Pins<'a> {
    pub store: &'a Store,
    pub credential: i64,
}

impl crate::remote::registry::HostKeys for Pins<'_> {
    fn pinned(&self) -> Option<String> {
        self.store.host_key(self.credential).ok().flatten()
    }
    fn learned(&self, key: &str) {
        match self.store.set_host_key(self.credential, Some(key)) {
            Ok(()) => log::info!("credential {}: the server's host key {key} is trusted from now on", self.credential),
            Err(e) => log::warn!("credential {}: could not record the server's host key: {e}", self.credential),
        }
    }
}

/// A keychain entry (TrueNAS `keychaincredential`), its private key decrypted.
#[derive(Clone, Debug, PartialEq)]
pub struct KeychainEntry {
    pub id: i64,
    pub name: String,
    /// `SSH_KEY_PAIR`.
    pub kind: String,
    pub keys: crate::keychain::KeyPair,
}

/// A stored credential, decrypted.
#[derive(Clone, Debug, PartialEq)]
pub struct Credential {
    pub id: i64,
    pub name: String,
    /// `{"type": ..., fields...}`.
    pub provider: Map<String, Value>,
    /// Why the credential cannot be used until it is entered again (its secrets were lost
    /// in an import without the seed); its other fields are kept.
    pub unusable: Option<String>,
}

impl Credential {
    /// The provider fields for building a remote, or the sentence that says why not.
    pub fn usable(&self) -> Result<&Map<String, Value>> {
        match &self.unusable {
            None => Ok(&self.provider),
            Some(why) => Err(Error::new(
                Kind::Permission,
                format!("The credential {:?} cannot be used: {why}; re-enter the credential's secrets", self.name),
            )),
        }
    }
}

/// A credential as listed: what is readable without the seed, and the decrypted
/// credential or the reason it cannot be decrypted.
#[derive(Debug)]
pub struct CredentialRow {
    pub id: i64,
    pub name: String,
    pub provider_type: String,
    pub credential: Result<Credential>,
}

/// A task body as stored: TrueNAS field names, without the secret fields.
pub type TaskBody = Map<String, Value>;

/// A stored task: its body (TrueNAS field names, secrets included, decrypted).
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    pub id: i64,
    pub body: Map<String, Value>,
    /// The last finished job, persisted (§7.14).
    pub job: Option<Value>,
}

pub struct Store {
    conn: Mutex<Connection>,
    secrets: Secrets,
    path: PathBuf,
}

pub(crate) fn db_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            Error::new(Kind::Server, "the database is busy").with_retryable(true)
        }
        e => Error::new(Kind::Io, format!("database error: {e}")),
    }
}

impl Store {
    /// Open (creating if needed) the database at `db` with the seed at `seed`. A new
    /// database creates the seed if it is missing. An existing database whose seed is
    /// missing or different opens in the "secrets unavailable" state: everything that
    /// needs a secret fails with [`SEED_MISMATCH`]; nothing is deleted.
    pub fn open(db: &Path, seed: &Path) -> Result<Store> {
        // Several processes may open a new database at once; SQLite can then answer BUSY
        // without waiting (switching to WAL, recovery), so the whole open is retried.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            match Self::open_once(db, seed) {
                Err(e) if e.is_retryable() && e.kind() == Kind::Server && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    fn open_once(db: &Path, seed: &Path) -> Result<Store> {
        if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir.display(), e))?;
        }
        let conn = Connection::open(db).map_err(db_err)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(db, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Error::io("set permissions", db.display(), e))?;
        }
        conn.busy_timeout(Duration::from_secs(30)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db_err)?;
        migrate(&conn)?;
        // Under the database's write lock, so that two processes opening a new store at
        // once agree on one seed and one check record.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let first_open = (|| -> Result<Option<Secrets>> {
            let check: Option<String> = conn
                .query_row("SELECT value FROM meta WHERE key = 'seed_check'", [], |r| r.get(0))
                .optional()
                .map_err(db_err)?;
            if check.is_some() {
                return Ok(None);
            }
            let s = Secrets::load(seed, true)?;
            conn.execute("INSERT INTO meta (key, value) VALUES ('seed_check', ?1)", params![s.make_check()?])
                .map_err(db_err)?;
            Ok(Some(s))
        })();
        match &first_open {
            Ok(_) => conn.execute_batch("COMMIT").map_err(db_err)?,
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        let check: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'seed_check'", [], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        let secrets = match (first_open?, &check) {
            (Some(s), _) => s,
            (None, None) => return Err(Error::other("the store has no seed check record")),
            (None, Some(c)) => {
                let s = Secrets::load(seed, false)?;
                if s.is_available() && !s.verify_check(c) {
                    log::error!(
                        "{SEED_MISMATCH} ({}); nothing is deleted, jobs that need secrets will fail",
                        seed.display()
                    );
                    Secrets::mismatched(seed)
                } else {
                    s
                }
            }
        };
        Ok(Store { conn: Mutex::new(conn), secrets, path: db.to_path_buf() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether stored secrets can be decrypted (the seed matches).
    pub fn secrets_available(&self) -> bool {
        self.secrets.is_available()
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Run `f` in an IMMEDIATE transaction (the write lock is taken at the start, so a
    /// read-then-write decision cannot race another process).
    pub fn transaction<T>(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db_err)?;
        let out = f(&tx)?;
        tx.commit().map_err(db_err)?;
        Ok(out)
    }

    /// Run `f` as one transaction over this store's own methods: everything it stored is
    /// committed together, or rolled back when it fails. Other writes of this process made
    /// meanwhile join the transaction (an import is the only caller, and a short one).
    pub fn atomically<T, E: From<Error>>(
        &self,
        f: impl FnOnce() -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.conn()?.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        match f() {
            Ok(v) => {
                self.conn()?.execute_batch("COMMIT").map_err(db_err)?;
                Ok(v)
            }
            Err(e) => {
                if let Ok(c) = self.conn() {
                    let _ = c.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| Error::other("database lock poisoned"))
    }

    // ---- credentials

    pub fn create_credential(&self, name: &str, provider: &Map<String, Value>) -> Result<Credential> {
        let (ty, enc) = self.encrypt_provider(provider)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO credentials (name, provider, attributes) VALUES (?1, ?2, ?3)",
            params![name, ty, enc],
        )
        .map_err(|e| unique_error(e, "A credential with this name already exists"))?;
        Ok(Credential {
            id: conn.last_insert_rowid(),
            name: name.to_string(),
            provider: provider.clone(),
            unusable: None,
        })
    }

    /// Keep a credential whose secrets are lost (an import without the seed): its name,
    /// type and the `known` non-secret fields survive, and it is marked unusable with
    /// `reason` until it is entered again.
    pub fn create_unusable_credential(
        &self,
        name: &str,
        provider_type: &str,
        known: &Map<String, Value>,
        reason: &str,
    ) -> Result<i64> {
        let mut fields = known.clone();
        fields.remove("type");
        let json = serde_json::to_string(&fields).map_err(|e| Error::other(e.to_string()))?;
        let enc = self.secrets.encrypt(Field::CredentialProvider, &json)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO credentials (name, provider, attributes, unusable) VALUES (?1, ?2, ?3, ?4)",
            params![name, provider_type, enc, reason],
        )
        .map_err(|e| unique_error(e, "A credential with this name already exists"))?;
        Ok(conn.last_insert_rowid())
    }

    /// Replace a credential; a pinned host key is forgotten (the admin changed the server
    /// or accepts its new key: the next connection pins again).
    pub fn update_credential(&self, id: i64, name: &str, provider: &Map<String, Value>) -> Result<Credential> {
        let (ty, enc) = self.encrypt_provider(provider)?;
        let n = self
            .conn()?
            .execute(
                "UPDATE credentials SET name = ?2, provider = ?3, attributes = ?4, unusable = NULL, host_key = NULL \
                 WHERE id = ?1",
                params![id, name, ty, enc],
            )
            .map_err(|e| unique_error(e, "A credential with this name already exists"))?;
        if n == 0 {
            return Err(Error::new(Kind::NotFound, format!("credential {id} does not exist")));
        }
        Ok(Credential { id, name: name.to_string(), provider: provider.clone(), unusable: None })
    }

    fn encrypt_provider(&self, provider: &Map<String, Value>) -> Result<(String, String)> {
        let ty =
            provider.get("type").and_then(Value::as_str).ok_or_else(|| Error::usage("provider.type is required"))?;
        let mut fields = provider.clone();
        fields.remove("type");
        let json = serde_json::to_string(&fields).map_err(|e| Error::other(e.to_string()))?;
        Ok((ty.to_string(), self.secrets.encrypt(Field::CredentialProvider, &json)?))
    }

    pub fn get_credential(&self, id: i64) -> Result<Credential> {
        let row: Option<(String, String, String, Option<String>)> = self
            .conn()?
            .query_row("SELECT name, provider, attributes, unusable FROM credentials WHERE id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(db_err)?;
        let (name, ty, enc, unusable) =
            row.ok_or_else(|| Error::new(Kind::NotFound, format!("credential {id} does not exist")))?;
        self.decrypt_credential(id, name, ty, &enc, unusable)
    }

    fn decrypt_credential(
        &self,
        id: i64,
        name: String,
        ty: String,
        enc: &str,
        unusable: Option<String>,
    ) -> Result<Credential> {
        let json = self
            .secrets
            .decrypt(Field::CredentialProvider, enc)
            .map_err(|e| e.with_path(format!("credential {name:?}")))?;
        let mut provider: Map<String, Value> = serde_json::from_str(&json)
            .map_err(|_| Error::new(Kind::Corrupted, format!("credential {name:?} is damaged")))?;
        provider.insert("type".into(), Value::String(ty));
        Ok(Credential { id, name, provider, unusable })
    }

    /// Every credential: decrypted, or (when the seed does not match) the error for it.
    pub fn list_credentials(&self) -> Result<Vec<CredentialRow>> {
        let rows: Vec<(i64, String, String, String, Option<String>)> = query_all(
            &*self.conn()?,
            "SELECT id, name, provider, attributes, unusable FROM credentials ORDER BY id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, name, ty, enc, unusable)| {
                let credential = self.decrypt_credential(id, name.clone(), ty.clone(), &enc, unusable);
                CredentialRow { id, name, provider_type: ty, credential }
            })
            .collect())
    }

    /// Delete a credential unless a task uses it (the message names the task, §4.3).
    pub fn delete_credential(&self, id: i64) -> Result<()> {
        let conn = self.conn()?;
        let user: Option<(i64, String)> = conn
            .query_row("SELECT id, body FROM tasks WHERE credential_id = ?1 ORDER BY id LIMIT 1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(db_err)?;
        if let Some((task_id, body)) = user {
            let desc = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("description").and_then(Value::as_str).map(str::to_string))
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| task_id.to_string());
            return Err(Error::usage(format!("This credential is used by cloud sync task {desc}")));
        }
        let n = conn.execute("DELETE FROM credentials WHERE id = ?1", params![id]).map_err(db_err)?;
        if n == 0 {
            return Err(Error::new(Kind::NotFound, format!("credential {id} does not exist")));
        }
        Ok(())
    }

    /// The host key credential `id` trusts (`TYPE BASE64`).
    pub fn host_key(&self, id: i64) -> Result<Option<String>> {
        self.conn()?
            .query_row("SELECT host_key FROM credentials WHERE id = ?1", params![id], |r| r.get(0))
            .optional()
            .map_err(db_err)
            .map(Option::flatten)
    }

    pub fn set_host_key(&self, id: i64, key: Option<&str>) -> Result<()> {
        self.conn()?.execute("UPDATE credentials SET host_key = ?2 WHERE id = ?1", params![id, key]).map_err(db_err)?;
        Ok(())
    }

    // ---- keychain

    /// A credential's fields as a remote is built from them: usable (its secrets are
    /// there), and an SFTP credential's keychain key pair (`private_key`, an id) replaced
    /// by the private key itself, which never leaves the process.
    pub fn runnable(&self, c: &Credential) -> Result<Map<String, Value>> {
        let mut p = c.usable()?.clone();
        self.resolve_keys(&mut p)?;
        Ok(p)
    }

    /// Replace an SFTP provider's keychain id by its private key (see [`Store::runnable`]).
    pub fn resolve_keys(&self, p: &mut Map<String, Value>) -> Result<()> {
        if p.get("type").and_then(Value::as_str) != Some("SFTP") {
            return Ok(());
        }
        let Some(id) = p.get("private_key").and_then(Value::as_i64) else { return Ok(()) };
        let entry = self.get_keychain_entry(id).map_err(|e| {
            if e.kind() == Kind::NotFound {
                Error::usage(format!(
                    "the SFTP credential's key pair {id} is not in the keychain: add the key again or choose another"
                ))
            } else {
                e
            }
        })?;
        let key = entry.keys.private_key.ok_or_else(|| {
            Error::usage(format!("the key pair {:?} holds only a public key; SFTP needs its private key", entry.name))
        })?;
        p.insert("private_key".into(), Value::String(key));
        Ok(())
    }

    pub fn create_keychain_entry(
        &self,
        name: &str,
        kind: &str,
        keys: &crate::keychain::KeyPair,
    ) -> Result<KeychainEntry> {
        let enc = self.secrets.encrypt(Field::KeychainPrivateKey, keys.private_key.as_deref().unwrap_or(""))?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO keychain (name, type, public_key, private_key) VALUES (?1, ?2, ?3, ?4)",
            params![name, kind, keys.public_key, enc],
        )
        .map_err(|e| unique_error(e, "A keychain credential with this name already exists"))?;
        Ok(KeychainEntry { id: conn.last_insert_rowid(), name: name.into(), kind: kind.into(), keys: keys.clone() })
    }

    fn keychain_row(
        &self,
        id: i64,
        name: String,
        kind: String,
        public_key: String,
        enc: &str,
    ) -> Result<KeychainEntry> {
        let private = self
            .secrets
            .decrypt(Field::KeychainPrivateKey, enc)
            .map_err(|e| e.with_path(format!("keychain credential {name:?}")))?;
        let private_key = (!private.is_empty()).then_some(private);
        Ok(KeychainEntry { id, name, kind, keys: crate::keychain::KeyPair { private_key, public_key } })
    }

    pub fn get_keychain_entry(&self, id: i64) -> Result<KeychainEntry> {
        let row: Option<(String, String, String, String)> = self
            .conn()?
            .query_row("SELECT name, type, public_key, private_key FROM keychain WHERE id = ?1", params![id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(db_err)?;
        let (name, kind, public_key, enc) =
            row.ok_or_else(|| Error::new(Kind::NotFound, format!("keychain credential {id} does not exist")))?;
        self.keychain_row(id, name, kind, public_key, &enc)
    }

    /// Every keychain entry: decrypted, or the error for it (the seed does not match).
    pub fn list_keychain(&self) -> Result<Vec<(i64, String, String, Result<KeychainEntry>)>> {
        let rows: Vec<(i64, String, String, String, String)> = query_all(
            &*self.conn()?,
            "SELECT id, name, type, public_key, private_key FROM keychain ORDER BY id",
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        Ok(rows
            .into_iter()
            .map(|(id, name, kind, public_key, enc)| {
                let entry = self.keychain_row(id, name.clone(), kind.clone(), public_key, &enc);
                (id, name, kind, entry)
            })
            .collect())
    }

    /// Delete a keychain entry unless a credential uses it (an SFTP credential's
    /// `private_key`; the message names the credential).
    pub fn delete_keychain_entry(&self, id: i64) -> Result<()> {
        for row in self.list_credentials()? {
            let Ok(c) = row.credential else { continue };
            if c.provider.get("private_key").and_then(Value::as_i64) == Some(id) {
                return Err(Error::usage(format!("This key pair is used by the cloud credential {:?}", c.name)));
            }
        }
        let n = self.conn()?.execute("DELETE FROM keychain WHERE id = ?1", params![id]).map_err(db_err)?;
        if n == 0 {
            return Err(Error::new(Kind::NotFound, format!("keychain credential {id} does not exist")));
        }
        Ok(())
    }

    // ---- tasks

    fn split_task(&self, body: &Map<String, Value>) -> Result<(i64, String, String, String)> {
        let cred =
            body.get("credentials").and_then(Value::as_i64).ok_or_else(|| Error::usage("credentials is required"))?;
        let mut plain = body.clone();
        let pw = plain.remove("encryption_password").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let salt = plain.remove("encryption_salt").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        plain.remove("id");
        plain.remove("job");
        Ok((
            cred,
            serde_json::to_string(&plain).map_err(|e| Error::other(e.to_string()))?,
            self.secrets.encrypt(Field::TaskEncryptionPassword, &pw)?,
            self.secrets.encrypt(Field::TaskEncryptionSalt, &salt)?,
        ))
    }

    pub fn create_task(&self, body: &Map<String, Value>) -> Result<Task> {
        let (cred, json, pw, salt) = self.split_task(body)?;
        let conn = self.conn()?;
        conn.execute(
            "INSERT INTO tasks (credential_id, body, encryption_password, encryption_salt) VALUES (?1, ?2, ?3, ?4)",
            params![cred, json, pw, salt],
        )
        .map_err(db_err)?;
        let mut b = body.clone();
        b.remove("id");
        Ok(Task { id: conn.last_insert_rowid(), body: b, job: None })
    }

    pub fn update_task(&self, id: i64, body: &Map<String, Value>) -> Result<Task> {
        let (cred, json, pw, salt) = self.split_task(body)?;
        let n = self
            .conn()?
            .execute(
                "UPDATE tasks SET credential_id = ?2, body = ?3, encryption_password = ?4, encryption_salt = ?5 WHERE id = ?1",
                params![id, cred, json, pw, salt],
            )
            .map_err(db_err)?;
        if n == 0 {
            return Err(Error::new(Kind::NotFound, format!("task {id} does not exist")));
        }
        self.get_task(id)
    }

    pub fn get_task(&self, id: i64) -> Result<Task> {
        let row: Option<(String, String, String, Option<String>)> = self
            .conn()?
            .query_row(
                "SELECT body, encryption_password, encryption_salt, job FROM tasks WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(db_err)?;
        let (body, pw, salt, job) =
            row.ok_or_else(|| Error::new(Kind::NotFound, format!("task {id} does not exist")))?;
        self.decrypt_task(id, &body, &pw, &salt, job)
    }

    fn decrypt_task(&self, id: i64, body: &str, pw: &str, salt: &str, job: Option<String>) -> Result<Task> {
        let mut b: Map<String, Value> =
            serde_json::from_str(body).map_err(|_| Error::new(Kind::Corrupted, format!("task {id} is damaged")))?;
        b.insert("encryption_password".into(), Value::String(self.secrets.decrypt(Field::TaskEncryptionPassword, pw)?));
        b.insert("encryption_salt".into(), Value::String(self.secrets.decrypt(Field::TaskEncryptionSalt, salt)?));
        Ok(Task { id, body: b, job: job.and_then(|j| serde_json::from_str(&j).ok()) })
    }

    pub fn list_task_ids(&self) -> Result<Vec<i64>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id FROM tasks ORDER BY id").map_err(db_err)?;
        stmt.query_map([], |r| r.get(0)).map_err(db_err)?.collect::<std::result::Result<_, _>>().map_err(db_err)
    }

    /// Every task's stored body without its secrets, in id order; `None` for a damaged
    /// body. Nothing is decrypted, so this is cheap and works without the seed: the
    /// scheduler reads schedules with it whenever the database changes.
    pub fn list_task_bodies(&self) -> Result<Vec<(i64, Option<TaskBody>)>> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT id, body FROM tasks ORDER BY id").map_err(db_err)?;
        let rows: Vec<(i64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db_err)?
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?;
        Ok(rows.into_iter().map(|(id, body)| (id, serde_json::from_str(&body).ok())).collect())
    }

    pub fn delete_task(&self, id: i64) -> Result<()> {
        let n = self.conn()?.execute("DELETE FROM tasks WHERE id = ?1", params![id]).map_err(db_err)?;
        if n == 0 {
            return Err(Error::new(Kind::NotFound, format!("task {id} does not exist")));
        }
        Ok(())
    }

    /// Persist the last finished job into the task row (§7.14).
    pub fn set_task_job(&self, id: i64, job: &Value) -> Result<()> {
        self.conn()?
            .execute("UPDATE tasks SET job = ?2 WHERE id = ?1", params![id, job.to_string()])
            .map_err(db_err)
            .map(drop)
    }

    // ---- export / import

    /// The whole configuration as JSON. Secrets stay encrypted; the seed is included
    /// (base64) only when asked for, as TrueNAS's `secretseed` option.
    pub fn export(&self, with_seed: bool) -> Result<Value> {
        let conn = self.conn()?;
        let creds =
            query_all(&conn, "SELECT id, name, provider, attributes, host_key FROM credentials ORDER BY id", |r| {
                Ok(serde_json::json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?,
                    "provider": r.get::<_, String>(2)?, "attributes": r.get::<_, String>(3)?,
                    "host_key": r.get::<_, Option<String>>(4)?}))
            })?;
        let tasks = query_all(
            &conn,
            "SELECT id, credential_id, body, encryption_password, encryption_salt FROM tasks ORDER BY id",
            |r| {
                Ok(serde_json::json!({"id": r.get::<_, i64>(0)?, "credential_id": r.get::<_, i64>(1)?,
                    "body": r.get::<_, String>(2)?, "encryption_password": r.get::<_, String>(3)?,
                    "encryption_salt": r.get::<_, String>(4)?}))
            },
        )?;
        let keychain =
            query_all(&conn, "SELECT id, name, type, public_key, private_key FROM keychain ORDER BY id", |r| {
                Ok(serde_json::json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?,
                    "type": r.get::<_, String>(2)?, "public_key": r.get::<_, String>(3)?,
                    "private_key": r.get::<_, String>(4)?}))
            })?;
        let check: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'seed_check'", [], |r| r.get(0))
            .optional()
            .map_err(db_err)?;
        let mut out = serde_json::json!({"format": "cloudsync-config/1", "seed_check": check, "credentials": creds,
            "tasks": tasks, "keychain": keychain});
        if with_seed {
            let seed = std::fs::read(self.secrets.seed_path())
                .map_err(|e| Error::io("read the secret seed", self.secrets.seed_path().display(), e))?;
            use base64::Engine as _;
            out["seed"] = Value::String(base64::engine::general_purpose::STANDARD.encode(seed));
        }
        Ok(out)
    }
}

/// Every row of `sql`, each made into a `T` by `f`.
fn query_all<T>(conn: &Connection, sql: &str, f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql).map_err(db_err)?;
    let rows = stmt.query_map([], |r| f(r)).map_err(db_err)?;
    rows.collect::<std::result::Result<_, _>>().map_err(db_err)
}

fn unique_error(e: rusqlite::Error, msg: &str) -> Error {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => Error::usage(msg),
        _ => db_err(e),
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
    if version as usize > MIGRATIONS.len() {
        return Err(Error::new(
            Kind::Usage,
            format!("the database was written by a newer cloudsync (schema {version}); upgrade cloudsync"),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx_sql = format!("BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1);
        if let Err(e) = conn.execute_batch(&tx_sql) {
            let _ = conn.execute_batch("ROLLBACK");
            // Another process may have migrated meanwhile.
            let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db_err)?;
            if now as usize <= i {
                return Err(db_err(e));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn setup() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("db/cloudsync.db"), &d.path().join("seed")).unwrap();
        (d, s)
    }

    #[test]
    fn secrets_never_reach_the_database_file() {
        let (d, s) = setup();
        let c = s
            .create_credential(
                "aws",
                &obj(json!({"type": "S3", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "TOPSECRET-1"})),
            )
            .unwrap();
        s.create_task(&obj(json!({"credentials": c.id, "description": "t", "encryption_password": "PW-SECRET-2", "encryption_salt": "SALT-SECRET-3"})))
            .unwrap();
        drop(s);
        let mut raw = Vec::new();
        for f in std::fs::read_dir(d.path().join("db")).unwrap() {
            raw.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        for secret in ["TOPSECRET-1", "PW-SECRET-2", "SALT-SECRET-3", "AKIAEXAMPLE"] {
            assert!(!raw.windows(secret.len()).any(|w| w == secret.as_bytes()), "{secret} is in the database file");
        }
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join("db/cloudsync.db")).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn atomically_commits_all_or_nothing() {
        let (_d, s) = setup();
        let r: Result<()> = s.atomically(|| {
            s.create_credential("a", &obj(json!({"type": "S3"})))?;
            Err(Error::other("midway"))
        });
        assert!(r.is_err());
        assert!(s.list_credentials().unwrap().is_empty(), "rolled back");
        let r: Result<()> = s.atomically(|| {
            s.create_credential("a", &obj(json!({"type": "S3"})))?;
            s.create_credential("b", &obj(json!({"type": "S3"})))?;
            Ok(())
        });
        assert!(r.is_ok());
        assert_eq!(s.list_credentials().unwrap().len(), 2);
    }

    #[test]
    fn wrong_or_missing_seed_refuses_and_deletes_nothing() {
        let (d, s) = setup();
        let c = s.create_credential("aws", &obj(json!({"type": "S3", "secret_access_key": "x"}))).unwrap();
        let t = s.create_task(&obj(json!({"credentials": c.id, "encryption_password": "p"}))).unwrap();
        drop(s);
        let seed = d.path().join("seed");
        let good = std::fs::read(&seed).unwrap();
        for case in ["missing", "wrong"] {
            if case == "missing" {
                std::fs::remove_file(&seed).unwrap();
            } else {
                std::fs::write(&seed, [9u8; 32]).unwrap();
            }
            let s = Store::open(&d.path().join("db/cloudsync.db"), &seed).unwrap();
            assert!(!s.secrets_available(), "{case}");
            let expected =
                if case == "missing" { super::super::secrets::seed_missing(&seed) } else { SEED_MISMATCH.to_string() };
            assert!(s.get_credential(c.id).unwrap_err().to_string().ends_with(&expected), "{case}");
            assert!(s.get_task(t.id).unwrap_err().to_string().ends_with(&expected), "{case}");
            assert_eq!(s.list_credentials().unwrap().len(), 1, "nothing deleted ({case})");
            assert_eq!(s.list_task_ids().unwrap(), vec![t.id]);
            // The missing seed is not silently recreated.
            assert!(case != "missing" || !seed.exists());
        }
        std::fs::write(&seed, &good).unwrap();
        let s = Store::open(&d.path().join("db/cloudsync.db"), &seed).unwrap();
        assert_eq!(s.get_task(t.id).unwrap().body["encryption_password"], "p");
    }

    #[test]
    fn credentials_crud_and_in_use_refusal() {
        let (_d, s) = setup();
        let c = s.create_credential("a", &obj(json!({"type": "FTP", "host": "h", "pass": "p"}))).unwrap();
        assert_eq!(
            s.create_credential("a", &obj(json!({"type": "FTP"}))).unwrap_err().to_string(),
            "A credential with this name already exists"
        );
        assert_eq!(s.get_credential(c.id).unwrap().provider["pass"], "p");
        s.create_task(&obj(json!({"credentials": c.id, "description": "nightly"}))).unwrap();
        assert_eq!(
            s.delete_credential(c.id).unwrap_err().to_string(),
            "This credential is used by cloud sync task nightly"
        );
        let u = s.update_credential(c.id, "b", &obj(json!({"type": "FTP", "host": "h2"}))).unwrap();
        assert_eq!(u.name, "b");
        assert_eq!(s.get_credential(c.id).unwrap().provider["host"], "h2");
    }

    #[test]
    fn two_processes_share_one_database() {
        let (d, s1) = setup();
        let s2 = Store::open(&d.path().join("db/cloudsync.db"), &d.path().join("seed")).unwrap();
        let c = s1.create_credential("x", &obj(json!({"type": "HTTP", "url": "http://h"}))).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let path = d.path().to_path_buf();
                std::thread::spawn(move || {
                    let s = Store::open(&path.join("db/cloudsync.db"), &path.join("seed")).unwrap();
                    for j in 0..50 {
                        s.create_task(&obj(json!({"credentials": c.id, "description": format!("{i}-{j}")}))).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(s2.list_task_ids().unwrap().len(), 100);
    }

    #[test]
    fn concurrent_first_opens_agree_on_one_seed() {
        let d = tempfile::tempdir().unwrap();
        let stored: Vec<String> = (0..4)
            .map(|i| {
                let p = d.path().to_path_buf();
                std::thread::spawn(move || {
                    let s = Store::open(&p.join("db"), &p.join("seed")).unwrap();
                    s.secrets().encrypt(Field::TaskEncryptionSalt, &format!("s{i}")).unwrap()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let s = Store::open(&d.path().join("db"), &d.path().join("seed")).unwrap();
        assert!(s.secrets_available());
        for (i, v) in stored.iter().enumerate() {
            assert_eq!(s.secrets().decrypt(Field::TaskEncryptionSalt, v).unwrap(), format!("s{i}"));
        }
    }

    #[test]
    fn export_has_no_clear_secrets_and_seed_only_on_request() {
        let (_d, s) = setup();
        let c = s.create_credential("aws", &obj(json!({"type": "S3", "secret_access_key": "SEKRIT"}))).unwrap();
        s.create_task(&obj(json!({"credentials": c.id, "encryption_password": "PWPW"}))).unwrap();
        let e = s.export(false).unwrap().to_string();
        assert!(!e.contains("SEKRIT") && !e.contains("PWPW") && !e.contains("\"seed\""));
        assert!(s.export(true).unwrap()["seed"].is_string());
    }
}
