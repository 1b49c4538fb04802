//! Reading a TrueNAS Cloud Sync configuration for import (spec §13).
//!
//! TrueNAS keeps cloud credentials and Cloud Sync tasks in its SQLite config database
//! (`freenas-v1.db`). Credential fields and the task crypt password/salt are encrypted with
//! "pwenc" (spec §12.1): AES-256-CTR under a 32-byte seed kept in the file `pwenc_secret`.
//! This module decrypts those values, maps the stored rows to cloudsync's API shape (with
//! TrueNAS field names) and reports what could not be carried over. It never writes to the
//! source database, and it does not re-encrypt or validate anything: the caller stores the
//! result under cloudsync's own seed (§12.2) and runs the import validation (§13 step 5).
//!
//! Failures that affect one object are reported on that object (`problem` / `problems`), and
//! failures that affect the whole import are reported in `TrueNasConfig::warnings`; only an
//! unreadable input is an error. Nothing is dropped silently: the only rows left out are those
//! of removed providers (MEGA, Amazon Drive), and each of them produces a warning.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aes::Aes256;
use aes::cipher::{KeyIvInit, StreamCipher};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Map, Value, json};

/// AES-256 in CTR mode with the low 64 bits of the block as a big-endian counter, which is what
/// PyCryptodome's `Counter.new(64, prefix=nonce)` and the TrueNAS C library produce.
type Aes256Ctr64Be = ctr::Ctr64BE<Aes256>;

/// Length of the pwenc secret seed (the `pwenc_secret` file).
pub const PWENC_SEED_LEN: usize = 32;
/// Length of the random nonce stored in front of every pwenc value.
pub const PWENC_NONCE_LEN: usize = 8;
/// Largest pwenc payload (ciphertext without nonce) accepted, as in the TrueNAS library.
pub const PWENC_MAX_PAYLOAD: usize = 1 << 20;
/// Plaintext of `system_settings.stg_pwenc_check` under the right seed.
pub const PWENC_CHECK_PLAINTEXT: &str = "Donuts!";
/// Name of the database inside a TrueNAS config backup tar.
pub const BACKUP_DATABASE_NAME: &str = "freenas-v1.db";
/// Name of the secret seed inside a TrueNAS config backup tar saved with `secretseed`.
pub const BACKUP_SEED_NAME: &str = "pwenc_secret";

/// The provider types of spec §5.1 that cloudsync accepts.
pub use super::providers::TAG_ORDER as PROVIDER_TYPES;

/// Provider types TrueNAS removed (spec §5.1); their credentials and tasks are not imported.
/// `AMAZON_DRIVE` is accepted besides TrueNAS's `AMAZON_CLOUD_DRIVE` because hand-edited or
/// third-party databases have been seen to use it.
pub const REMOVED_PROVIDER_TYPES: [&str; 3] = ["MEGA", "AMAZON_CLOUD_DRIVE", "AMAZON_DRIVE"];

const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const BZIP2_MAGIC: &[u8] = b"BZh";
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Longest base64 text that can hold nonce + `PWENC_MAX_PAYLOAD`; checked before decoding so a
/// huge column cannot make us allocate its decoded size first.
const PWENC_MAX_STORED_LEN: usize = (PWENC_NONCE_LEN + PWENC_MAX_PAYLOAD).div_ceil(3) * 4;

/// An import failure. `Display` shows the message alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError(pub String);

impl ImportError {
    fn new(message: impl Into<String>) -> Self {
        ImportError(message.into())
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ImportError {}

/// One row of `system_cloudcredentials`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueNasCredential {
    pub id: i64,
    pub name: String,
    /// The TrueNAS provider type as stored (`provider` column), e.g. `S3`.
    pub provider_type: String,
    /// The decrypted provider fields (a JSON object, without "type"); None when they could not be decrypted (no/wrong seed).
    pub fields: Option<Map<String, Value>>,
    /// Why the credential cannot be used as it is (needs re-entry, unknown type), if so.
    pub problem: Option<String>,
}

/// One row of `tasks_cloudsync`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueNasTask {
    pub id: i64,
    /// The task in cloudsync's API shape with TrueNAS field names (description, path, credentials (id), attributes, schedule {minute,hour,dom,month,dow},
    /// pre_script, post_script, snapshot, include, exclude, args, enabled, bwlimit, transfers, direction, transfer_mode, encryption,
    /// filename_encryption, encryption_password, encryption_salt, create_empty_src_dirs, follow_symlinks). Secrets decrypted, or "" with a problem noted.
    pub body: Map<String, Value>,
    /// The persisted last-run record (`job` column), kept apart from `body` because `job` is
    /// read-only in the API and a create call would reject it. None when absent or null.
    pub job: Option<Value>,
    /// Everything that could not be carried over faithfully, one sentence each.
    pub problems: Vec<String>,
}

/// One SSH key pair of `system_keychaincredential` (type `SSH_KEY_PAIR`), which SFTP
/// credentials name by id in `private_key`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueNasKeyPair {
    pub id: i64,
    pub name: String,
    /// `private_key` and `public_key`, decrypted; None when they could not be.
    pub attributes: Option<Map<String, Value>>,
    pub problem: Option<String>,
}

/// What was read from a TrueNAS configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueNasConfig {
    /// True when a seed was used to decrypt secrets: it matched `stg_pwenc_check`, or the
    /// database had no check value to compare with (a warning says so).
    pub seed_ok: bool,
    pub credentials: Vec<TrueNasCredential>,
    pub tasks: Vec<TrueNasTask>,
    /// The keychain's SSH key pairs (an older database without the table has none).
    pub keypairs: Vec<TrueNasKeyPair>,
    /// Import-wide notes: seed problems and skipped rows.
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// pwenc
// ---------------------------------------------------------------------------------------------

fn pwenc_cipher(seed: &[u8; 32], nonce: &[u8; 8]) -> Aes256Ctr64Be {
    let mut iv = [0u8; 16];
    iv[..PWENC_NONCE_LEN].copy_from_slice(nonce);
    // The counter starts at 1, not 0: PyCryptodome's Counter.new default initial_value.
    iv[15] = 1;
    Aes256Ctr64Be::new(seed.into(), &iv.into())
}

/// pwenc (TrueNAS): AES-256-CTR, key = 32-byte seed, 8-byte random nonce, 64-bit big-endian counter starting at 1,
/// stored = standard base64 with padding of nonce || ciphertext; decryption strips ALL trailing '{' (legacy padding).
///
/// `""` decrypts to `""`. Surrounding ASCII whitespace is ignored. Errors: invalid base64,
/// fewer than 8 decoded bytes ("decoded data too short"), a payload over 1 MiB, and plaintext
/// that is not UTF-8 — pwenc is unauthenticated, so the last one is how a wrong seed usually
/// shows up (not always: short values can decrypt to valid UTF-8 garbage).
pub fn pwenc_decrypt(seed: &[u8; 32], stored: &str) -> Result<String, ImportError> {
    let stored = stored.trim_ascii();
    if stored.is_empty() {
        return Ok(String::new());
    }
    if stored.len() > PWENC_MAX_STORED_LEN {
        return Err(ImportError::new("encrypted value is larger than 1 MiB"));
    }
    let mut data =
        BASE64.decode(stored).map_err(|e| ImportError(format!("encrypted value is not valid base64: {e}")))?;
    if data.len() < PWENC_NONCE_LEN {
        return Err(ImportError::new("decoded data too short"));
    }
    if data.len() - PWENC_NONCE_LEN > PWENC_MAX_PAYLOAD {
        return Err(ImportError::new("encrypted value is larger than 1 MiB"));
    }
    let mut nonce = [0u8; PWENC_NONCE_LEN];
    nonce.copy_from_slice(&data[..PWENC_NONCE_LEN]);
    let mut plain = data.split_off(PWENC_NONCE_LEN);
    pwenc_cipher(seed, &nonce).apply_keystream(&mut plain);
    // The legacy Python encoder padded with '{'; TrueNAS strips every trailing '{' on decryption,
    // so a secret that really ends in '{' comes back shorter there too. We match TrueNAS.
    let kept = plain.iter().rposition(|&b| b != b'{').map_or(0, |i| i + 1);
    plain.truncate(kept);
    String::from_utf8(plain).map_err(|_| ImportError::new("decrypted value is not valid UTF-8 (wrong secret seed?)"))
}

/// Encrypt like the TrueNAS C library (no `{` padding) with a caller-chosen nonce.
///
/// For tests and fixtures only: real pwenc values need a fresh random nonce each time, and
/// cloudsync itself stores secrets with its own algorithm (§12.2). Plaintexts over 1 MiB are
/// encrypted anyway, although `pwenc_decrypt` (like TrueNAS) will refuse them.
pub fn pwenc_encrypt_with_nonce(seed: &[u8; 32], nonce: [u8; 8], plain: &str) -> String {
    let mut data = Vec::with_capacity(PWENC_NONCE_LEN + plain.len());
    data.extend_from_slice(&nonce);
    data.extend_from_slice(plain.as_bytes());
    pwenc_cipher(seed, &nonce).apply_keystream(&mut data[PWENC_NONCE_LEN..]);
    BASE64.encode(&data)
}

// ---------------------------------------------------------------------------------------------
// Reading a database
// ---------------------------------------------------------------------------------------------

/// One database row by lower-cased column name; missing columns are simply absent, which is how
/// older TrueNAS schemas are tolerated.
type Row = HashMap<String, SqlValue>;

fn open_read_only(db: &Path) -> Result<Connection, ImportError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| ImportError(format!("cannot open {}: {e}", db.display())))?;
    // Opening succeeds on any file; the first read is what tells a database from something else.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(|e| ImportError(format!("{} is not a readable SQLite database: {e}", db.display())))?;
    Ok(conn)
}

fn table_exists(conn: &Connection, table: &str) -> Result<bool, ImportError> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND lower(name) = lower(?1)",
        [table],
        |row| row.get::<_, i64>(0),
    )
    .map(|n| n > 0)
    .map_err(|e| ImportError(format!("cannot list the tables of the database: {e}")))
}

fn owned_value(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(r) => SqlValue::Real(r),
        // A damaged text cell must not abort the whole import; the lossy text then fails the
        // later JSON/base64 parsing of that one value and is reported there.
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => SqlValue::Blob(b.to_vec()),
    }
}

/// `table` comes from our own constants, never from input, so formatting it into SQL is safe.
fn read_table(conn: &Connection, table: &str) -> Result<Vec<Row>, ImportError> {
    let context = |e: rusqlite::Error| ImportError(format!("cannot read table {table}: {e}"));
    let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).map_err(context)?;
    let names: Vec<String> = stmt.column_names().map(|n| n.to_ascii_lowercase()).collect();
    let mut rows = stmt.query([]).map_err(context)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(context)? {
        let mut map = Row::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            map.insert(name.clone(), owned_value(row.get_ref(i).map_err(context)?));
        }
        out.push(map);
    }
    // SELECT * has no guaranteed order; ids give a stable, meaningful one.
    out.sort_by_key(|row| int_col(row, "id").unwrap_or(i64::MAX));
    Ok(out)
}

fn text_col(row: &Row, column: &str) -> Option<String> {
    match row.get(column)? {
        SqlValue::Null => None,
        SqlValue::Integer(i) => Some(i.to_string()),
        SqlValue::Real(r) => Some(r.to_string()),
        SqlValue::Text(t) => Some(t.clone()),
        SqlValue::Blob(b) => Some(String::from_utf8_lossy(b).into_owned()),
    }
}

fn int_col(row: &Row, column: &str) -> Option<i64> {
    match row.get(column)? {
        SqlValue::Integer(i) => Some(*i),
        SqlValue::Real(r) if r.fract() == 0.0 && r.abs() < 9.0e15 => Some(*r as i64),
        SqlValue::Text(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// SQLAlchemy stores booleans as 0/1, but hand-edited databases contain text too.
fn bool_col(row: &Row, column: &str, default: bool) -> bool {
    match row.get(column) {
        Some(SqlValue::Integer(i)) => *i != 0,
        Some(SqlValue::Real(r)) => *r != 0.0,
        Some(SqlValue::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "t" | "yes" | "y" | "on" => true,
            "0" | "false" | "f" | "no" | "n" | "off" => false,
            _ => default,
        },
        _ => default,
    }
}

/// A JSON column: the parsed value when it has the expected shape, else `default` and a problem.
/// NULL, empty text and JSON `null` mean "not set" and give the default silently, as TrueNAS's
/// JSON column type does.
fn json_col(
    row: &Row,
    column: &str,
    default: Value,
    has_shape: fn(&Value) -> bool,
    shape: &str,
    problems: &mut Vec<String>,
) -> Value {
    let Some(text) = text_col(row, column) else {
        return default;
    };
    if text.trim().is_empty() {
        return default;
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Null) => default,
        Ok(value) if has_shape(&value) => value,
        Ok(_) => {
            problems.push(format!("{column} is not {shape}; replaced by the default"));
            default
        }
        Err(e) => {
            problems.push(format!("{column} is not valid JSON ({e}); replaced by the default"));
            default
        }
    }
}

/// Chooses the seed to decrypt with. A seed that fails the check is dropped, because pwenc is
/// unauthenticated and would otherwise turn every secret into plausible-looking garbage.
fn usable_seed(
    conn: &Connection,
    seed: Option<&[u8]>,
    warnings: &mut Vec<String>,
) -> Result<Option<[u8; 32]>, ImportError> {
    let Some(seed) = seed else {
        warnings.push(
            "No secret seed (pwenc_secret) was given: credential fields and task encryption \
             passwords cannot be decrypted and must be re-entered"
                .to_string(),
        );
        return Ok(None);
    };
    let Ok(seed) = <[u8; 32]>::try_from(seed) else {
        warnings.push(format!(
            "The secret seed is {} bytes long instead of {PWENC_SEED_LEN}; it is ignored, and \
             credential fields and task encryption passwords must be re-entered",
            seed.len()
        ));
        return Ok(None);
    };
    let check = if table_exists(conn, "system_settings")? {
        read_table(conn, "system_settings")?
            .first()
            .and_then(|row| text_col(row, "stg_pwenc_check"))
            .filter(|c| !c.trim().is_empty())
    } else {
        None
    };
    match check {
        Some(check) => match pwenc_decrypt(&seed, &check) {
            Ok(plain) if plain == PWENC_CHECK_PLAINTEXT => Ok(Some(seed)),
            _ => {
                warnings.push(
                    "The secret seed does not match this database (stg_pwenc_check does not \
                     decrypt to the expected value); it is ignored, and credential fields and \
                     task encryption passwords must be re-entered"
                        .to_string(),
                );
                Ok(None)
            }
        },
        None => {
            warnings.push(
                "The database has no seed check value (system_settings.stg_pwenc_check); the \
                 secret seed is used unverified, so values it fails to decrypt are reported \
                 one by one"
                    .to_string(),
            );
            Ok(Some(seed))
        }
    }
}

fn is_removed_type(provider: &str) -> bool {
    REMOVED_PROVIDER_TYPES.iter().any(|t| t.eq_ignore_ascii_case(provider.trim()))
}

fn read_credential(row: &Row, id: i64, seed: Option<&[u8; 32]>) -> TrueNasCredential {
    let name = text_col(row, "name").unwrap_or_default();
    let provider_type = text_col(row, "provider").unwrap_or_default();
    let stored = text_col(row, "attributes").unwrap_or_default();
    let mut problem = None;
    if !PROVIDER_TYPES.contains(&provider_type.as_str()) {
        problem = Some(format!("unknown provider type {provider_type:?}"));
    }
    let fields = match decrypt_credential_fields(&stored, seed) {
        Ok(fields) => Some(fields),
        Err(why) => {
            let msg = format!("{why}; the credential must be re-entered");
            problem = Some(match problem {
                Some(p) => format!("{p}; {msg}"),
                None => msg,
            });
            None
        }
    };
    TrueNasCredential { id, name, provider_type, fields, problem }
}

fn decrypt_credential_fields(stored: &str, seed: Option<&[u8; 32]>) -> Result<Map<String, Value>, String> {
    let stored = stored.trim();
    if stored.is_empty() {
        return Err("the credential has no stored fields".to_string());
    }
    // '{' is not in the base64 alphabet, so a value starting with it is plaintext JSON, as
    // written by versions before credential encryption or by hand.
    let plain = if stored.starts_with('{') {
        stored.to_string()
    } else {
        let Some(seed) = seed else {
            return Err("the credential fields are encrypted and no valid secret seed was given".to_string());
        };
        pwenc_decrypt(seed, stored).map_err(|e| format!("the credential fields could not be decrypted: {e}"))?
    };
    match serde_json::from_str::<Value>(&plain) {
        Ok(Value::Object(mut fields)) => {
            fields.remove("type");
            Ok(fields)
        }
        _ => Err("the decrypted credential fields are not a JSON object (wrong secret seed?)".to_string()),
    }
}

fn decrypt_task_secret(row: &Row, column: &str, seed: Option<&[u8; 32]>, problems: &mut Vec<String>) -> String {
    let stored = text_col(row, column).unwrap_or_default();
    // TrueNAS's EncryptedText keeps the empty string unencrypted.
    if stored.trim().is_empty() {
        return String::new();
    }
    let Some(seed) = seed else {
        problems.push(format!("{column} is encrypted and no valid secret seed was given; it must be re-entered"));
        return String::new();
    };
    match pwenc_decrypt(seed, &stored) {
        Ok(plain) => plain,
        Err(e) => {
            problems.push(format!("{column} could not be decrypted ({e}); it must be re-entered"));
            String::new()
        }
    }
}

fn str_or(row: &Row, column: &str, default: &str) -> Value {
    Value::String(text_col(row, column).unwrap_or_else(|| default.to_string()))
}

fn read_task(
    row: &Row,
    id: i64,
    credential_id: Option<i64>,
    known_credentials: &HashSet<i64>,
    seed: Option<&[u8; 32]>,
) -> TrueNasTask {
    let mut problems = Vec::new();
    let mut body = Map::new();

    body.insert("description".into(), str_or(row, "description", ""));
    body.insert("path".into(), str_or(row, "path", ""));
    match credential_id {
        Some(cid) => {
            if !known_credentials.contains(&cid) {
                problems.push(format!("credential {cid} does not exist"));
            }
            body.insert("credentials".into(), json!(cid));
        }
        None => {
            problems.push("the task has no credential".to_string());
            body.insert("credentials".into(), Value::Null);
        }
    }
    body.insert(
        "attributes".into(),
        json_col(row, "attributes", json!({}), Value::is_object, "a JSON object", &mut problems),
    );
    body.insert(
        "schedule".into(),
        json!({
            "minute": str_or(row, "minute", "00"),
            "hour": str_or(row, "hour", "*"),
            "dom": str_or(row, "daymonth", "*"),
            "month": str_or(row, "month", "*"),
            "dow": str_or(row, "dayweek", "*"),
        }),
    );
    body.insert("pre_script".into(), str_or(row, "pre_script", ""));
    body.insert("post_script".into(), str_or(row, "post_script", ""));
    body.insert("snapshot".into(), json!(bool_col(row, "snapshot", false)));
    for column in ["include", "exclude", "bwlimit"] {
        let value = json_col(row, column, json!([]), Value::is_array, "a JSON list", &mut problems);
        body.insert(column.into(), value);
    }
    body.insert("args".into(), str_or(row, "args", ""));
    body.insert("enabled".into(), json!(bool_col(row, "enabled", true)));
    body.insert("transfers".into(), int_col(row, "transfers").map_or(Value::Null, |n| json!(n)));
    // direction and transfer_mode are required and have no default: an empty value is left for
    // import validation to reject, because guessing a direction could overwrite data.
    for column in ["direction", "transfer_mode"] {
        let value = text_col(row, column).unwrap_or_default();
        if value.trim().is_empty() {
            problems.push(format!("{column} is missing"));
        }
        body.insert(column.into(), Value::String(value));
    }
    for (column, default) in [
        ("encryption", false),
        ("filename_encryption", false),
        ("create_empty_src_dirs", false),
        ("follow_symlinks", false),
    ] {
        body.insert(column.into(), json!(bool_col(row, column, default)));
    }
    for column in ["encryption_password", "encryption_salt"] {
        let secret = decrypt_task_secret(row, column, seed, &mut problems);
        body.insert(column.into(), Value::String(secret));
    }

    let job = match json_col(row, "job", Value::Null, |_| true, "JSON", &mut problems) {
        Value::Null => None,
        v => Some(v),
    };

    TrueNasTask { id, body, job, problems }
}

/// Read a TrueNAS config database (opened read-only) with an optional 32-byte seed. Verifies the seed with
/// system_settings.stg_pwenc_check == pwenc("Donuts!") (treat a seed that fails as absent, with a warning). Skips credentials of
/// removed provider types (MEGA, AMAZON_CLOUD_DRIVE / Amazon Drive) and their tasks, with warnings. Tolerates missing optional
/// columns (older TrueNAS versions lack dataset/relative_path etc.) and a missing system_settings table.
///
/// Missing columns take the defaults of spec §1.1. Rows without an integer `id` are skipped
/// with a warning, since nothing could refer to them.
pub fn read_database(db: &Path, seed: Option<&[u8]>) -> Result<TrueNasConfig, ImportError> {
    let conn = open_read_only(db)?;
    for table in ["system_cloudcredentials", "tasks_cloudsync"] {
        if !table_exists(&conn, table)? {
            return Err(ImportError(format!(
                "{} is not a TrueNAS configuration database (no table {table})",
                db.display()
            )));
        }
    }
    let mut warnings = Vec::new();
    let seed = usable_seed(&conn, seed, &mut warnings)?;

    let mut credentials = Vec::new();
    let mut removed: HashMap<i64, String> = HashMap::new();
    for row in read_table(&conn, "system_cloudcredentials")? {
        let Some(id) = int_col(&row, "id") else {
            warnings.push("A credential row without an id was skipped".to_string());
            continue;
        };
        let provider = text_col(&row, "provider").unwrap_or_default();
        if is_removed_type(&provider) {
            let name = text_col(&row, "name").unwrap_or_default();
            warnings.push(format!(
                "Credential {id} ({name:?}) was skipped: provider {provider} was removed from \
                 TrueNAS and is not supported"
            ));
            removed.insert(id, provider);
            continue;
        }
        credentials.push(read_credential(&row, id, seed.as_ref()));
    }
    let known: HashSet<i64> = credentials.iter().map(|c| c.id).collect();

    let mut tasks = Vec::new();
    for row in read_table(&conn, "tasks_cloudsync")? {
        let Some(id) = int_col(&row, "id") else {
            warnings.push("A Cloud Sync task row without an id was skipped".to_string());
            continue;
        };
        let credential_id = int_col(&row, "credential_id");
        if let Some(cid) = credential_id
            && let Some(provider) = removed.get(&cid)
        {
            let description = text_col(&row, "description").unwrap_or_default();
            warnings.push(format!(
                "Cloud Sync task {id} ({description:?}) was skipped: its credential {cid} uses the \
                 removed provider {provider}"
            ));
            continue;
        }
        tasks.push(read_task(&row, id, credential_id, &known, seed.as_ref()));
    }

    let mut keypairs = Vec::new();
    if table_exists(&conn, "system_keychaincredential")? {
        for row in read_table(&conn, "system_keychaincredential")? {
            let (Some(id), name) = (int_col(&row, "id"), text_col(&row, "name").unwrap_or_default()) else {
                warnings.push("A keychain row without an id was skipped".to_string());
                continue;
            };
            let kind = text_col(&row, "type").unwrap_or_default();
            if kind != "SSH_KEY_PAIR" {
                // SSH connections of replication tasks: nothing of Cloud Sync's.
                continue;
            }
            let stored = text_col(&row, "attributes").unwrap_or_default();
            let (attributes, problem) = match decrypt_credential_fields(&stored, seed.as_ref()) {
                Ok(a) => (Some(a), None),
                Err(why) => (None, Some(format!("{why}; the key pair must be added again"))),
            };
            keypairs.push(TrueNasKeyPair { id, name, attributes, problem });
        }
    }

    Ok(TrueNasConfig { seed_ok: seed.is_some(), credentials, tasks, keypairs, warnings })
}

// ---------------------------------------------------------------------------------------------
// Reading a backup
// ---------------------------------------------------------------------------------------------

/// A private temporary file, removed when dropped, so that an extracted database (which holds
/// other TrueNAS secrets too) does not outlive the import.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn create_private_temp() -> Result<(TempFile, File), ImportError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir();
    let mut last_error = None;
    for _ in 0..16 {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "cloudsync-truenas-import-{}-{nanos}-{}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(file) => return Ok((TempFile(path), file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => {
                return Err(ImportError(format!("cannot create a temporary file in {}: {e}", dir.display())));
            }
        }
    }
    Err(ImportError(format!(
        "cannot create a temporary file in {}: {}",
        dir.display(),
        last_error.map_or_else(|| "name collisions".to_string(), |e| e.to_string())
    )))
}

/// Read a TrueNAS config backup tar (freenas-v1.db and, if saved with the secret seed, pwenc_secret), or a plain database file.
///
/// `seed_override`, when given, is used instead of the tar's `pwenc_secret` (and is the only
/// seed for a plain database). Compressed tars are refused with a message, because TrueNAS
/// writes them uncompressed and no decompressor is linked in.
pub fn read_backup(path: &Path, seed_override: Option<&[u8]>) -> Result<TrueNasConfig, ImportError> {
    let mut file = File::open(path).map_err(|e| ImportError(format!("cannot open {}: {e}", path.display())))?;
    let mut head = Vec::with_capacity(SQLITE_MAGIC.len());
    (&mut file)
        .take(SQLITE_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(|e| ImportError(format!("cannot read {}: {e}", path.display())))?;
    if head.starts_with(SQLITE_MAGIC) {
        drop(file);
        return read_database(path, seed_override);
    }
    if [GZIP_MAGIC, XZ_MAGIC, BZIP2_MAGIC, ZSTD_MAGIC].iter().any(|magic| head.starts_with(magic)) {
        return Err(ImportError(format!(
            "{} is compressed; decompress it first (TrueNAS config backups are plain tar files)",
            path.display()
        )));
    }
    drop(file);
    let file = File::open(path).map_err(|e| ImportError(format!("cannot open {}: {e}", path.display())))?;

    let tar_error = |e: io::Error| {
        ImportError(format!(
            "{} is neither a SQLite database nor a readable TrueNAS config backup tar: {e}",
            path.display()
        ))
    };
    let mut archive = tar::Archive::new(file);
    let mut database: Option<TempFile> = None;
    let mut tar_seed: Option<Vec<u8>> = None;
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(tar_error)?.file_name().map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some(BACKUP_DATABASE_NAME) => {
                let (temp, mut out) = create_private_temp()?;
                io::copy(&mut entry, &mut out)
                    .and_then(|_| out.flush())
                    .map_err(|e| ImportError(format!("cannot extract {BACKUP_DATABASE_NAME}: {e}")))?;
                database = Some(temp);
            }
            Some(BACKUP_SEED_NAME) => {
                // The seed is 32 bytes; reading one byte more is enough to tell a wrong length
                // (reported by read_database) without trusting the entry's size.
                let mut seed = Vec::with_capacity(PWENC_SEED_LEN + 1);
                (&mut entry)
                    .take(PWENC_SEED_LEN as u64 + 1)
                    .read_to_end(&mut seed)
                    .map_err(|e| ImportError(format!("cannot extract {BACKUP_SEED_NAME}: {e}")))?;
                tar_seed = Some(seed);
            }
            _ => {}
        }
    }
    let Some(database) = database else {
        return Err(ImportError(format!(
            "{} is neither a SQLite database nor a TrueNAS config backup tar containing {BACKUP_DATABASE_NAME}",
            path.display()
        )));
    };

    let mut notes = Vec::new();
    let seed = match (seed_override, tar_seed.as_deref()) {
        (Some(given), Some(_)) => {
            notes.push(format!(
                "The backup contains {BACKUP_SEED_NAME}, but the separately given secret seed is used instead"
            ));
            Some(given)
        }
        (Some(given), None) => Some(given),
        (None, Some(from_tar)) => Some(from_tar),
        (None, None) => {
            notes.push(format!("The backup was saved without the secret seed (no {BACKUP_SEED_NAME})"));
            None
        }
    };
    let mut config = read_database(&database.0, seed)?;
    notes.append(&mut config.warnings);
    config.warnings = notes;
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// JSON text with Python's `json.dumps` default separators (", " and ": "), so fixture values
/// have the plaintext TrueNAS would have encrypted (for ASCII text; Python would also escape
/// non-ASCII characters, which changes nothing once parsed). Written by hand because a custom
/// serde_json formatter would need `serde` as a direct dependency.
fn python_json_dumps(value: &Value) -> String {
    let mut out = String::new();
    write_python_json(value, &mut out);
    out
}

fn write_python_json(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
        // Scalars have no separators, so serde_json's compact text is already Python's.
        scalar => out.push_str(&scalar.to_string()),
    }
}

const FIXTURE_SCHEMA: &str = "
CREATE TABLE system_settings (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    stg_guiaddress TEXT NOT NULL DEFAULT '[\"0.0.0.0\"]',
    stg_timezone VARCHAR(120) NOT NULL DEFAULT 'America/Los_Angeles',
    stg_pwenc_check VARCHAR(100) NOT NULL
);
CREATE TABLE system_cloudcredentials (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    name VARCHAR(100) NOT NULL,
    provider VARCHAR(50) NOT NULL,
    attributes TEXT NOT NULL
);
CREATE TABLE tasks_cloudsync (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    description VARCHAR(150) NOT NULL,
    path VARCHAR(255) NOT NULL,
    dataset VARCHAR(255),
    relative_path VARCHAR(255),
    credential_id INTEGER REFERENCES system_cloudcredentials (id),
    attributes TEXT NOT NULL,
    minute VARCHAR(100) NOT NULL,
    hour VARCHAR(100) NOT NULL,
    daymonth VARCHAR(100) NOT NULL,
    month VARCHAR(100) NOT NULL,
    dayweek VARCHAR(100) NOT NULL,
    pre_script TEXT NOT NULL,
    post_script TEXT NOT NULL,
    snapshot BOOLEAN NOT NULL,
    include TEXT NOT NULL,
    exclude TEXT NOT NULL,
    args TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    job TEXT,
    direction VARCHAR(10) NOT NULL,
    transfer_mode VARCHAR(20) NOT NULL,
    bwlimit TEXT NOT NULL,
    transfers INTEGER,
    encryption BOOLEAN NOT NULL,
    filename_encryption BOOLEAN NOT NULL,
    encryption_password TEXT NOT NULL,
    encryption_salt TEXT NOT NULL,
    create_empty_src_dirs BOOLEAN NOT NULL,
    follow_symlinks BOOLEAN NOT NULL
);
CREATE INDEX ix_tasks_cloudsync_credential_id ON tasks_cloudsync (credential_id);
";

/// Fixture nonces: distinct and deterministic, so fixture databases are reproducible byte for
/// byte and no two values share a keystream.
struct FixtureNonces(u64);

impl FixtureNonces {
    fn encrypt(&mut self, seed: &[u8; 32], plain: &str) -> String {
        self.0 += 1;
        pwenc_encrypt_with_nonce(seed, self.0.to_be_bytes(), plain)
    }
}

fn fixture_str(task: &Map<String, Value>, key: &str, default: &str) -> Result<String, ImportError> {
    match task.get(key) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ImportError(format!("fixture task field {key} must be a string, not {other}"))),
    }
}

fn fixture_bool(task: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ImportError> {
    match task.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(ImportError(format!("fixture task field {key} must be a bool, not {other}"))),
    }
}

fn fixture_json(task: &Map<String, Value>, key: &str, default: Value) -> String {
    python_json_dumps(task.get(key).filter(|v| !v.is_null()).unwrap_or(&default))
}

/// Test support: create a TrueNAS-shaped config database at `path` (tables system_cloudcredentials, tasks_cloudsync, system_settings
/// with the documented columns), encrypting with `seed` and fixed nonces, from the given credentials and tasks. Public so that
/// integration tests elsewhere can build fixtures.
///
/// `credentials` are `(id, name, provider type, fields object)`. Each task is a JSON object in
/// the shape of `TrueNasTask::body` (plus optional `id`, `job`, `dataset`, `relative_path`);
/// missing fields take the §1.1 defaults, except `direction` and `transfer_mode`, which default
/// to `PUSH` and `SYNC` for convenience. Refuses to overwrite an existing file.
pub fn build_fixture_database(
    path: &Path,
    seed: &[u8; 32],
    credentials: &[(i64, &str, &str, Value)],
    tasks: &[Value],
) -> Result<(), ImportError> {
    if path.exists() {
        return Err(ImportError(format!(
            "{} already exists; a fixture database is only written to a new file",
            path.display()
        )));
    }
    let db_error = |e: rusqlite::Error| ImportError(format!("cannot write fixture database: {e}"));
    let mut conn = Connection::open(path).map_err(db_error)?;
    // Fixtures must be able to hold dangling credential references, which real databases
    // can contain and the reader has to report; bundled SQLite enforces foreign keys.
    conn.pragma_update(None, "foreign_keys", false).map_err(db_error)?;
    let tx = conn.transaction().map_err(db_error)?;
    tx.execute_batch(FIXTURE_SCHEMA).map_err(db_error)?;
    let mut nonces = FixtureNonces(0);

    tx.execute(
        "INSERT INTO system_settings (id, stg_pwenc_check) VALUES (1, ?1)",
        [nonces.encrypt(seed, PWENC_CHECK_PLAINTEXT)],
    )
    .map_err(db_error)?;

    for (id, name, provider, fields) in credentials {
        if !fields.is_object() {
            return Err(ImportError(format!("fixture credential {id}: fields must be a JSON object")));
        }
        let stored = nonces.encrypt(seed, &python_json_dumps(fields));
        tx.execute(
            "INSERT INTO system_cloudcredentials (id, name, provider, attributes) VALUES (?1, ?2, ?3, ?4)",
            params![id, name, provider, stored],
        )
        .map_err(db_error)?;
    }

    for (index, task) in tasks.iter().enumerate() {
        let Some(task) = task.as_object() else {
            return Err(ImportError(format!("fixture task #{index} must be a JSON object")));
        };
        let id = match task.get("id") {
            None | Some(Value::Null) => None,
            Some(v) => {
                Some(v.as_i64().ok_or_else(|| ImportError(format!("fixture task #{index}: id must be an integer")))?)
            }
        };
        let credential_id = match task.get("credentials") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| ImportError(format!("fixture task #{index}: credentials must be an integer id")))?,
            ),
        };
        let transfers =
            match task.get("transfers") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_i64().ok_or_else(|| {
                    ImportError(format!("fixture task #{index}: transfers must be an integer or null"))
                })?),
            };
        let empty = Map::new();
        let schedule = match task.get("schedule") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(s)) => s,
            Some(_) => {
                return Err(ImportError(format!("fixture task #{index}: schedule must be an object")));
            }
        };
        let mut secret = |key: &str| -> Result<String, ImportError> {
            let plain = fixture_str(task, key, "")?;
            Ok(if plain.is_empty() { plain } else { nonces.encrypt(seed, &plain) })
        };
        let password = secret("encryption_password")?;
        let salt = secret("encryption_salt")?;
        let job = match task.get("job") {
            None | Some(Value::Null) => None,
            Some(job) => Some(python_json_dumps(job)),
        };
        let dataset = task.get("dataset").and_then(Value::as_str);
        let relative_path = task.get("relative_path").and_then(Value::as_str);

        tx.execute(
            "INSERT INTO tasks_cloudsync (
                id, description, path, dataset, relative_path, credential_id, attributes,
                minute, hour, daymonth, month, dayweek, pre_script, post_script, snapshot,
                include, exclude, args, enabled, job, direction, transfer_mode, bwlimit,
                transfers, encryption, filename_encryption, encryption_password,
                encryption_salt, create_empty_src_dirs, follow_symlinks
            ) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                      ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30)",
            params![
                id,
                fixture_str(task, "description", "")?,
                fixture_str(task, "path", "")?,
                dataset,
                relative_path,
                credential_id,
                fixture_json(task, "attributes", json!({})),
                fixture_str(schedule, "minute", "00")?,
                fixture_str(schedule, "hour", "*")?,
                fixture_str(schedule, "dom", "*")?,
                fixture_str(schedule, "month", "*")?,
                fixture_str(schedule, "dow", "*")?,
                fixture_str(task, "pre_script", "")?,
                fixture_str(task, "post_script", "")?,
                fixture_bool(task, "snapshot", false)?,
                fixture_json(task, "include", json!([])),
                fixture_json(task, "exclude", json!([])),
                fixture_str(task, "args", "")?,
                fixture_bool(task, "enabled", true)?,
                job,
                fixture_str(task, "direction", "PUSH")?,
                fixture_str(task, "transfer_mode", "SYNC")?,
                fixture_json(task, "bwlimit", json!([])),
                transfers,
                fixture_bool(task, "encryption", false)?,
                fixture_bool(task, "filename_encryption", false)?,
                password,
                salt,
                fixture_bool(task, "create_empty_src_dirs", false)?,
                fixture_bool(task, "follow_symlinks", false)?,
            ],
        )
        .map_err(db_error)?;
    }
    tx.commit().map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    const OTHER_SEED: &[u8; 32] = &[0x42; 32];
    const NONCE: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
    const JSON_PLAIN: &str = r#"{"access_key_id": "AK", "secret_access_key": "SK"}"#;

    /// A scratch directory removed at the end of the test; tests run in parallel in one
    /// process, so the name carries a per-test tag and a counter.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(tag: &str) -> Self {
            static N: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "truenas-import-test-{}-{tag}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create test dir");
            TestDir(dir)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn vectors() -> Vec<(String, &'static str, &'static str)> {
        vec![
            ("Donuts!".to_string(), "AAECAwQFBgfF1tLMuXg1", "Donuts!"),
            (
                format!("Donuts!{}", "{".repeat(25)),
                "AAECAwQFBgfF1tLMuXg11qZNlOb3/ULuOd9oV0sajedRx9d5G1UGAQ==",
                "Donuts!",
            ),
            (
                JSON_PLAIN.to_string(),
                "AAECAwQFBgf6m93arm5n3oJdiuTT7123eIQxbXtD2rwIz8lhEksJJdlaUdUJma4kJAGmEKPIekp7Bw==",
                JSON_PLAIN,
            ),
            (
                format!("{JSON_PLAIN}{}", "{".repeat(14)),
                "AAECAwQFBgf6m93arm5n3oJdiuTT7123eIQxbXtD2rwIz8lhEksJJdlaUdUJma4kJAGmEKPIekp7Bxjt+qTva8og+1zwAzgq",
                JSON_PLAIN,
            ),
        ]
    }

    #[test]
    fn vector_plaintexts_have_documented_lengths() {
        let lengths: Vec<usize> = vectors().iter().map(|(p, _, _)| p.len()).collect();
        assert_eq!(lengths, [7, 32, 50, 64]);
    }

    #[test]
    fn vectors_encrypt_to_exact_stored_values() {
        for (plain, stored, _) in vectors() {
            assert_eq!(pwenc_encrypt_with_nonce(SEED, NONCE, &plain), stored, "{plain:?}");
        }
    }

    #[test]
    fn vectors_decrypt_with_padding_stripped() {
        for (_, stored, expected) in vectors() {
            assert_eq!(pwenc_decrypt(SEED, stored).expect(stored), expected);
        }
    }

    #[test]
    fn check_value_vector_passes_seed_check() {
        assert_eq!(pwenc_decrypt(SEED, "AAECAwQFBgfF1tLMuXg1").as_deref(), Ok(PWENC_CHECK_PLAINTEXT));
    }

    #[test]
    fn empty_string_decrypts_to_empty() {
        assert_eq!(pwenc_decrypt(SEED, "").as_deref(), Ok(""));
        assert_eq!(pwenc_decrypt(SEED, "  \n").as_deref(), Ok(""));
    }

    #[test]
    fn nonce_only_decrypts_to_empty() {
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, "");
        assert_eq!(stored, "AAECAwQFBgc=");
        assert_eq!(pwenc_decrypt(SEED, &stored).as_deref(), Ok(""));
    }

    #[test]
    fn short_input_is_rejected() {
        for stored in ["AA==", "AAECAw==", "AAECAwQFBg=="] {
            let err = pwenc_decrypt(SEED, stored).expect_err(stored);
            assert_eq!(err.to_string(), "decoded data too short");
        }
    }

    #[test]
    fn invalid_base64_is_rejected() {
        let err = pwenc_decrypt(SEED, "not base64!").expect_err("invalid");
        assert!(err.0.contains("base64"), "{err}");
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(pwenc_decrypt(SEED, " AAECAwQFBgfF1tLMuXg1\n").as_deref(), Ok("Donuts!"));
    }

    #[test]
    fn payload_limit_is_one_mib() {
        let at_limit = "a".repeat(PWENC_MAX_PAYLOAD);
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, &at_limit);
        assert_eq!(pwenc_decrypt(SEED, &stored).map(|s| s.len()), Ok(at_limit.len()));

        let over = "a".repeat(PWENC_MAX_PAYLOAD + 1);
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, &over);
        let err = pwenc_decrypt(SEED, &stored).expect_err("over limit");
        assert!(err.0.contains("1 MiB"), "{err}");

        let huge = "A".repeat(PWENC_MAX_STORED_LEN + 4);
        assert!(pwenc_decrypt(SEED, &huge).is_err());
    }

    #[test]
    fn wrong_seed_fails_check() {
        let result = pwenc_decrypt(OTHER_SEED, "AAECAwQFBgfF1tLMuXg1");
        assert!(!matches!(result.as_deref(), Ok(PWENC_CHECK_PLAINTEXT)));
    }

    #[test]
    fn wrong_seed_on_long_value_is_a_utf8_error() {
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, &"x".repeat(64));
        let err = pwenc_decrypt(OTHER_SEED, &stored).expect_err("garbage");
        assert!(err.0.contains("UTF-8"), "{err}");
    }

    #[test]
    fn round_trip_and_trailing_brace_quirk() {
        for plain in ["", "p", "pass word", "ünïcødé ✓", "a{b", &"z".repeat(1000)] {
            let stored = pwenc_encrypt_with_nonce(SEED, [9; 8], plain);
            assert_eq!(pwenc_decrypt(SEED, &stored).as_deref(), Ok(plain));
        }
        // Like TrueNAS, a secret that really ends in '{' loses those characters.
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, "secret{{");
        assert_eq!(pwenc_decrypt(SEED, &stored).as_deref(), Ok("secret"));
        let stored = pwenc_encrypt_with_nonce(SEED, NONCE, "{{{");
        assert_eq!(pwenc_decrypt(SEED, &stored).as_deref(), Ok(""));
    }

    #[test]
    fn import_error_displays_its_message() {
        let err = ImportError("boom".into());
        assert_eq!(err.to_string(), "boom");
        let dyn_err: &dyn std::error::Error = &err;
        assert_eq!(dyn_err.to_string(), "boom");
    }

    #[test]
    fn python_json_matches_truenas_plaintext() {
        let fields = json!({"access_key_id": "AK", "secret_access_key": "SK"});
        assert_eq!(python_json_dumps(&fields), JSON_PLAIN);
        assert_eq!(
            python_json_dumps(&json!([{"time": "08:00", "bandwidth": null}, 1, true, "a\"b"])),
            r#"[{"bandwidth": null, "time": "08:00"}, 1, true, "a\"b"]"#
        );
    }

    // ----- fixture database -------------------------------------------------------------

    fn s3_fields() -> Value {
        json!({
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "wJalrXUtnFEMI/K7MDENG",
            "endpoint": "",
            "region": "",
            "skip_region": false,
            "signatures_v2": false,
            "max_upload_parts": 10000,
            "provider": "Other",
            "force_path_style": true,
            "sign_accept_encoding": true
        })
    }

    fn fixture_credentials() -> Vec<(i64, &'static str, &'static str, Value)> {
        vec![
            (1, "s3 main", "S3", s3_fields()),
            (2, "b2", "B2", json!({"account": "acc", "key": "k{ey"})),
            (3, "old mega", "MEGA", json!({"user": "u", "pass": "p"})),
            (
                4,
                "dropbox",
                "DROPBOX",
                json!({"client_id": "", "client_secret": "", "token": "{\"access_token\": \"x\"}"}),
            ),
            (5, "sftp", "SFTP", json!({"host": "h.example", "port": 22, "user": "me", "pass": null, "private_key": 7})),
        ]
    }

    fn fixture_tasks() -> Vec<Value> {
        vec![
            json!({
                "id": 10,
                "description": "photos to s3",
                "path": "/mnt/tank/photos",
                "dataset": "tank/photos",
                "relative_path": "",
                "credentials": 1,
                "attributes": {"bucket": "bk", "folder": "/backups", "fast_list": true,
                               "region": "", "encryption": null, "storage_class": "STANDARD"},
                "schedule": {"minute": "30", "hour": "2", "dom": "*", "month": "*", "dow": "1-5"},
                "bwlimit": [{"time": "08:00", "bandwidth": 1_048_576}, {"time": "18:00", "bandwidth": null}],
                "include": ["/photos/**"],
                "exclude": ["*.tmp", "cache/"],
                "transfers": 8,
                "snapshot": true,
                "follow_symlinks": true,
                "job": {"id": 42, "state": "SUCCESS"}
            }),
            json!({
                "id": 11,
                "description": "crypt from b2",
                "path": "/mnt/tank/restore",
                "credentials": 2,
                "attributes": {"bucket": "b", "folder": "", "chunk_size": 96},
                "direction": "PULL",
                "transfer_mode": "COPY",
                "enabled": false,
                "encryption": true,
                "filename_encryption": true,
                "encryption_password": "pw secret",
                "encryption_salt": "salty",
                "pre_script": "#!/bin/sh\necho hi\n",
                "post_script": "echo done",
                "args": "--checksum",
                "create_empty_src_dirs": true
            }),
            json!({
                "id": 12,
                "description": "mega task",
                "path": "/mnt/tank/mega",
                "credentials": 3,
                "attributes": {"folder": "/"}
            }),
            json!({
                "id": 13,
                "description": "dropbox",
                "path": "/mnt/tank/dbx",
                "credentials": 4,
                "attributes": {"folder": "/x", "chunk_size": 48}
            }),
            json!({
                "id": 14,
                "description": "dangling",
                "path": "/mnt/tank/d",
                "credentials": 99,
                "attributes": {"folder": "/y"}
            }),
        ]
    }

    fn build(dir: &TestDir) -> PathBuf {
        let db = dir.join("freenas-v1.db");
        build_fixture_database(&db, SEED, &fixture_credentials(), &fixture_tasks()).expect("fixture");
        db
    }

    fn task(config: &TrueNasConfig, id: i64) -> &TrueNasTask {
        config.tasks.iter().find(|t| t.id == id).expect("task present")
    }

    fn credential(config: &TrueNasConfig, id: i64) -> &TrueNasCredential {
        config.credentials.iter().find(|c| c.id == id).expect("credential present")
    }

    fn exec(db: &Path, sql: &str) {
        let conn = Connection::open(db).expect("open rw");
        conn.execute_batch(sql).expect("sql");
    }

    fn expected_task_10() -> Map<String, Value> {
        let value = json!({
            "description": "photos to s3",
            "path": "/mnt/tank/photos",
            "credentials": 1,
            "attributes": {"bucket": "bk", "folder": "/backups", "fast_list": true,
                           "region": "", "encryption": null, "storage_class": "STANDARD"},
            "schedule": {"minute": "30", "hour": "2", "dom": "*", "month": "*", "dow": "1-5"},
            "pre_script": "",
            "post_script": "",
            "snapshot": true,
            "include": ["/photos/**"],
            "exclude": ["*.tmp", "cache/"],
            "args": "",
            "enabled": true,
            "bwlimit": [{"time": "08:00", "bandwidth": 1_048_576}, {"time": "18:00", "bandwidth": null}],
            "transfers": 8,
            "direction": "PUSH",
            "transfer_mode": "SYNC",
            "encryption": false,
            "filename_encryption": false,
            "encryption_password": "",
            "encryption_salt": "",
            "create_empty_src_dirs": false,
            "follow_symlinks": true
        });
        match value {
            Value::Object(map) => map,
            _ => unreachable!("literal object"),
        }
    }

    #[test]
    fn fixture_round_trip_with_seed() {
        let dir = TestDir::new("with-seed");
        let db = build(&dir);
        let config = read_database(&db, Some(SEED)).expect("read");
        assert!(config.seed_ok);

        let ids: Vec<i64> = config.credentials.iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2, 4, 5]);
        for (id, name, provider, fields) in fixture_credentials() {
            if provider == "MEGA" {
                continue;
            }
            let c = credential(&config, id);
            assert_eq!(c.name, name);
            assert_eq!(c.provider_type, provider);
            assert_eq!(c.fields.as_ref(), fields.as_object(), "credential {id}");
            assert_eq!(c.problem, None);
        }

        let ids: Vec<i64> = config.tasks.iter().map(|t| t.id).collect();
        assert_eq!(ids, [10, 11, 13, 14]);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("Credential 3") && config.warnings[0].contains("MEGA"));
        assert!(config.warnings[1].contains("task 12") && config.warnings[1].contains("MEGA"));

        let t10 = task(&config, 10);
        assert_eq!(t10.body, expected_task_10());
        assert_eq!(t10.job, Some(json!({"id": 42, "state": "SUCCESS"})));
        assert!(t10.problems.is_empty(), "{:?}", t10.problems);

        let t11 = task(&config, 11);
        assert!(t11.problems.is_empty(), "{:?}", t11.problems);
        assert_eq!(t11.body["encryption_password"], "pw secret");
        assert_eq!(t11.body["encryption_salt"], "salty");
        assert_eq!(t11.body["encryption"], true);
        assert_eq!(t11.body["filename_encryption"], true);
        assert_eq!(t11.body["enabled"], false);
        assert_eq!(t11.body["direction"], "PULL");
        assert_eq!(t11.body["transfer_mode"], "COPY");
        assert_eq!(t11.body["pre_script"], "#!/bin/sh\necho hi\n");
        assert_eq!(t11.body["args"], "--checksum");
        assert_eq!(t11.body["transfers"], Value::Null);
        assert_eq!(t11.body["attributes"], json!({"bucket": "b", "folder": "", "chunk_size": 96}));
        assert_eq!(t11.body["schedule"], json!({"minute": "00", "hour": "*", "dom": "*", "month": "*", "dow": "*"}));
        assert_eq!(t11.job, None);

        let t13 = task(&config, 13);
        assert!(t13.problems.is_empty(), "{:?}", t13.problems);
        assert_eq!(t13.body["bwlimit"], json!([]));
        assert_eq!(t13.body["include"], json!([]));

        let t14 = task(&config, 14);
        assert_eq!(t14.problems, ["credential 99 does not exist"]);
        assert_eq!(t14.body["credentials"], 99);
    }

    #[test]
    fn fixture_round_trip_without_seed() {
        let dir = TestDir::new("without-seed");
        let db = build(&dir);
        let with = read_database(&db, Some(SEED)).expect("read with seed");
        let without = read_database(&db, None).expect("read without seed");
        assert!(!without.seed_ok);
        assert!(without.warnings[0].contains("No secret seed"), "{:?}", without.warnings);
        assert_eq!(without.warnings.len(), 3);

        assert_eq!(without.credentials.len(), with.credentials.len());
        for (a, b) in without.credentials.iter().zip(&with.credentials) {
            assert_eq!((a.id, &a.name, &a.provider_type), (b.id, &b.name, &b.provider_type));
            assert_eq!(a.fields, None);
            let problem = a.problem.as_deref().unwrap_or_default();
            assert!(problem.contains("no valid secret seed"), "{problem}");
            assert!(problem.contains("re-entered"), "{problem}");
        }

        assert_eq!(without.tasks.len(), with.tasks.len());
        for (a, b) in without.tasks.iter().zip(&with.tasks) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.job, b.job);
            let mut expected = b.body.clone();
            expected.insert("encryption_password".into(), json!(""));
            expected.insert("encryption_salt".into(), json!(""));
            assert_eq!(a.body, expected, "task {}", a.id);
        }
        let t11 = task(&without, 11);
        assert_eq!(t11.problems.len(), 2, "{:?}", t11.problems);
        assert!(t11.problems[0].starts_with("encryption_password is encrypted"));
        assert!(t11.problems[1].starts_with("encryption_salt is encrypted"));
        assert!(task(&without, 10).problems.is_empty());
        assert!(task(&without, 13).problems.is_empty());
    }

    #[test]
    fn wrong_seed_is_treated_as_absent() {
        let dir = TestDir::new("wrong-seed");
        let db = build(&dir);
        let config = read_database(&db, Some(OTHER_SEED)).expect("read");
        assert!(!config.seed_ok);
        assert!(config.warnings[0].contains("does not match"), "{:?}", config.warnings);
        assert!(config.credentials.iter().all(|c| c.fields.is_none()));
        assert_eq!(task(&config, 11).body["encryption_password"], "");
    }

    #[test]
    fn amazon_drive_is_skipped_like_mega() {
        let dir = TestDir::new("amazon");
        let db = dir.join("freenas-v1.db");
        build_fixture_database(
            &db,
            SEED,
            &[
                (1, "acd", "AMAZON_CLOUD_DRIVE", json!({"client_id": "c", "client_secret": "s"})),
                (2, "s3", "S3", s3_fields()),
            ],
            &[
                json!({"id": 1, "credentials": 1, "path": "/mnt/a", "attributes": {"folder": "/"}}),
                json!({"id": 2, "credentials": 2, "path": "/mnt/b", "attributes": {"bucket": "b", "folder": "/"}}),
            ],
        )
        .expect("fixture");
        let config = read_database(&db, Some(SEED)).expect("read");
        assert_eq!(config.credentials.iter().map(|c| c.id).collect::<Vec<_>>(), [2]);
        assert_eq!(config.tasks.iter().map(|t| t.id).collect::<Vec<_>>(), [2]);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(config.warnings.iter().all(|w| w.contains("AMAZON_CLOUD_DRIVE")));
        assert!(is_removed_type("mega") && is_removed_type("Amazon_Drive") && !is_removed_type("S3"));
    }

    #[test]
    fn seed_of_wrong_length_is_ignored() {
        let dir = TestDir::new("short-seed");
        let db = build(&dir);
        let config = read_database(&db, Some(&SEED[..16])).expect("read");
        assert!(!config.seed_ok);
        assert!(config.warnings[0].contains("16 bytes"), "{:?}", config.warnings);
    }

    #[test]
    fn legacy_padding_and_plaintext_credentials_are_read() {
        let dir = TestDir::new("legacy");
        let db = build(&dir);
        let plain = python_json_dumps(&s3_fields());
        let pad = 32 - plain.len() % 32;
        let padded = pwenc_encrypt_with_nonce(SEED, [7; 8], &format!("{plain}{}", "{".repeat(pad)));
        let password = pwenc_encrypt_with_nonce(SEED, [8; 8], &format!("pw secret{}", "{".repeat(23)));
        exec(
            &db,
            &format!(
                "UPDATE system_cloudcredentials SET attributes = '{padded}' WHERE id = 1;
                 UPDATE system_cloudcredentials
                    SET attributes = '{{\"type\": \"SFTP\", \"host\": \"h\", \"port\": 22}}' WHERE id = 5;
                 UPDATE tasks_cloudsync SET encryption_password = '{password}' WHERE id = 11;"
            ),
        );
        let config = read_database(&db, Some(SEED)).expect("read");
        assert_eq!(credential(&config, 1).fields.as_ref(), s3_fields().as_object());
        assert_eq!(credential(&config, 5).fields.as_ref(), json!({"host": "h", "port": 22}).as_object());
        assert_eq!(task(&config, 11).body["encryption_password"], "pw secret");

        // Plaintext fields need no seed.
        let config = read_database(&db, None).expect("read");
        assert!(credential(&config, 5).fields.is_some());
        assert!(credential(&config, 5).problem.is_none());
    }

    #[test]
    fn older_schema_without_optional_columns_or_settings() {
        let dir = TestDir::new("old-schema");
        let db = build(&dir);
        exec(
            &db,
            "ALTER TABLE tasks_cloudsync DROP COLUMN dataset;
             ALTER TABLE tasks_cloudsync DROP COLUMN relative_path;
             ALTER TABLE tasks_cloudsync DROP COLUMN follow_symlinks;
             ALTER TABLE tasks_cloudsync DROP COLUMN create_empty_src_dirs;
             ALTER TABLE tasks_cloudsync DROP COLUMN transfers;
             ALTER TABLE tasks_cloudsync DROP COLUMN bwlimit;
             ALTER TABLE tasks_cloudsync DROP COLUMN job;
             DROP TABLE system_settings;",
        );
        let config = read_database(&db, Some(SEED)).expect("read");
        assert!(config.seed_ok);
        assert!(config.warnings[0].contains("no seed check value"), "{:?}", config.warnings);
        let t10 = task(&config, 10);
        assert!(t10.problems.is_empty(), "{:?}", t10.problems);
        assert_eq!(t10.body["follow_symlinks"], false);
        assert_eq!(t10.body["create_empty_src_dirs"], false);
        assert_eq!(t10.body["transfers"], Value::Null);
        assert_eq!(t10.body["bwlimit"], json!([]));
        assert_eq!(t10.job, None);
        assert_eq!(task(&config, 11).body["encryption_password"], "pw secret");
        assert_eq!(credential(&config, 1).fields.as_ref(), s3_fields().as_object());
    }

    #[test]
    fn damaged_values_become_problems() {
        let dir = TestDir::new("damaged");
        let db = build(&dir);
        exec(
            &db,
            "UPDATE tasks_cloudsync SET include = 'not json', exclude = '{}', attributes = '[1]',
                                        direction = '', snapshot = 'true' WHERE id = 10;
             UPDATE tasks_cloudsync SET encryption_salt = 'AAEC' WHERE id = 11;
             UPDATE system_cloudcredentials SET provider = 'FOO' WHERE id = 2;
             UPDATE system_cloudcredentials SET attributes = '' WHERE id = 4;",
        );
        let config = read_database(&db, Some(SEED)).expect("read");
        let t10 = task(&config, 10);
        assert_eq!(t10.body["include"], json!([]));
        assert_eq!(t10.body["exclude"], json!([]));
        assert_eq!(t10.body["attributes"], json!({}));
        assert_eq!(t10.body["snapshot"], true);
        assert_eq!(t10.problems.len(), 4, "{:?}", t10.problems);
        let t11 = task(&config, 11);
        assert_eq!(t11.body["encryption_salt"], "");
        assert!(t11.problems[0].contains("decoded data too short"), "{:?}", t11.problems);
        let c2 = credential(&config, 2);
        assert!(c2.fields.is_some());
        assert!(c2.problem.as_deref().unwrap_or_default().contains("unknown provider"));
        let c4 = credential(&config, 4);
        assert!(c4.fields.is_none());
        assert!(c4.problem.as_deref().unwrap_or_default().contains("no stored fields"));
    }

    #[test]
    fn non_truenas_inputs_are_errors() {
        let dir = TestDir::new("not-truenas");
        let other = dir.join("other.db");
        exec(&other, "CREATE TABLE t (x INTEGER);");
        let err = read_database(&other, None).expect_err("no tables");
        assert!(err.0.contains("not a TrueNAS configuration database"), "{err}");

        let text = dir.join("text.txt");
        std::fs::write(&text, b"hello, this is not a database at all").expect("write");
        assert!(read_database(&text, None).is_err());
        assert!(read_database(&dir.join("missing.db"), None).is_err());
    }

    #[test]
    fn database_is_opened_read_only() {
        let dir = TestDir::new("read-only");
        let db = build(&dir);
        let before = std::fs::read(&db).expect("read db");
        read_database(&db, Some(SEED)).expect("read");
        assert_eq!(std::fs::read(&db).expect("read db"), before);
    }

    #[test]
    fn fixture_refuses_existing_file_and_bad_input() {
        let dir = TestDir::new("fixture-args");
        let db = build(&dir);
        assert!(build_fixture_database(&db, SEED, &[], &[]).is_err());
        let bad = dir.join("bad.db");
        let err = build_fixture_database(&bad, SEED, &[], &[json!([1])]).expect_err("not object");
        assert!(err.0.contains("must be a JSON object"), "{err}");
    }

    #[test]
    fn fixture_check_value_uses_fixed_nonce() {
        let dir = TestDir::new("fixture-check");
        let db = build(&dir);
        let conn = Connection::open(&db).expect("open");
        let check: String =
            conn.query_row("SELECT stg_pwenc_check FROM system_settings", [], |r| r.get(0)).expect("check");
        assert_eq!(check, pwenc_encrypt_with_nonce(SEED, 1u64.to_be_bytes(), "Donuts!"));
    }

    // ----- backup tar ---------------------------------------------------------------------

    fn write_tar(path: &Path, entries: &[(&str, &[u8])]) {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).expect("append");
        }
        let bytes = builder.into_inner().expect("finish tar");
        std::fs::write(path, bytes).expect("write tar");
    }

    #[test]
    fn backup_tar_with_seed() {
        let dir = TestDir::new("tar-seed");
        let db = build(&dir);
        let db_bytes = std::fs::read(&db).expect("db");
        let tar_path = dir.join("backup.tar");
        write_tar(
            &tar_path,
            &[("./freenas-v1.db", &db_bytes), ("pwenc_secret", SEED), ("root_authorized_keys", b"ssh-ed25519 AAAA")],
        );
        let config = read_backup(&tar_path, None).expect("read backup");
        assert!(config.seed_ok);
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert_eq!(task(&config, 11).body["encryption_password"], "pw secret");
        assert_eq!(credential(&config, 1).fields.as_ref(), s3_fields().as_object());
        assert_eq!(config, read_database(&db, Some(SEED)).expect("direct"));

        // A separately given seed wins over the one in the tar.
        let config = read_backup(&tar_path, Some(OTHER_SEED)).expect("read backup");
        assert!(!config.seed_ok);
        assert!(config.warnings[0].contains("used instead"), "{:?}", config.warnings);
    }

    #[test]
    fn backup_tar_without_seed() {
        let dir = TestDir::new("tar-noseed");
        let db = build(&dir);
        let db_bytes = std::fs::read(&db).expect("db");
        let tar_path = dir.join("backup.tar");
        write_tar(&tar_path, &[("freenas-v1.db", &db_bytes)]);

        let config = read_backup(&tar_path, None).expect("read backup");
        assert!(!config.seed_ok);
        assert!(config.warnings[0].contains("without the secret seed"), "{:?}", config.warnings);
        assert!(config.credentials.iter().all(|c| c.fields.is_none()));
        assert_eq!(task(&config, 10).body, expected_task_10());

        let config = read_backup(&tar_path, Some(SEED)).expect("read backup");
        assert!(config.seed_ok);
        assert_eq!(task(&config, 11).body["encryption_salt"], "salty");
    }

    #[test]
    fn backup_tar_with_bad_seed_file() {
        let dir = TestDir::new("tar-badseed");
        let db = build(&dir);
        let db_bytes = std::fs::read(&db).expect("db");
        let tar_path = dir.join("backup.tar");
        write_tar(&tar_path, &[("pwenc_secret", &[1u8; 40]), ("freenas-v1.db", &db_bytes)]);
        let config = read_backup(&tar_path, None).expect("read backup");
        assert!(!config.seed_ok);
        assert!(config.warnings[0].contains("33 bytes"), "{:?}", config.warnings);
    }

    #[test]
    fn backup_accepts_plain_database() {
        let dir = TestDir::new("plain-db");
        let db = build(&dir);
        let config = read_backup(&db, Some(SEED)).expect("read");
        assert!(config.seed_ok);
        assert_eq!(config, read_database(&db, Some(SEED)).expect("direct"));
    }

    #[test]
    fn backup_rejects_other_files() {
        let dir = TestDir::new("bad-backup");
        let gz = dir.join("backup.tar.gz");
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).expect("write");
        let err = read_backup(&gz, None).expect_err("compressed");
        assert!(err.0.contains("compressed"), "{err}");

        let no_db = dir.join("nodb.tar");
        write_tar(&no_db, &[("pwenc_secret", SEED)]);
        let err = read_backup(&no_db, None).expect_err("no db");
        assert!(err.0.contains(BACKUP_DATABASE_NAME), "{err}");

        let junk = dir.join("junk.bin");
        std::fs::write(&junk, "x".repeat(2000)).expect("write");
        assert!(read_backup(&junk, None).is_err());
        assert!(read_backup(&dir.join("missing.tar"), None).is_err());
    }
}
