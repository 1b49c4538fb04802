//! The operations of `cloudsync.*` and `cloudsync.credentials.*` (truenas-cloudsync.md §4),
//! shared by the CLI, the C API and the daemon. Bodies are JSON with TrueNAS's field
//! names; errors are validation lists (full key, message) or one [`Error`].

use super::model::{self, Caller, PathPolicy};
use super::providers::{self, Errors};
use super::queue;
use super::runner;
use crate::error::{Error, Kind};
use crate::path::RelPath;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// An operation's failure: validation errors, or an error.
#[derive(Debug)]
pub enum ApiError {
    Validation(Errors),
    Failed(Error),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Failed(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Validation(errs) => {
                for (i, (k, m)) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "[EINVAL] {k}: {m}")?;
                }
                Ok(())
            }
            ApiError::Failed(e) => write!(f, "{e}"),
        }
    }
}

pub type ApiResult<T> = std::result::Result<T, ApiError>;

fn obj(v: &Value, what: &str) -> ApiResult<Map<String, Value>> {
    v.as_object()
        .cloned()
        .ok_or_else(|| ApiError::Validation(vec![(what.into(), "Input should be a valid dictionary".into())]))
}

/// A credential entry `{id, name, provider: {type, ...}}`; secrets redacted unless `reveal`.
fn credential_entry(c: &crate::store::Credential, reveal: bool) -> Value {
    let provider = if reveal { c.provider.clone() } else { providers::redact(&c.provider) };
    if let Some(why) = &c.unusable {
        return json!({"id": c.id, "name": c.name, "provider": provider,
                      "unusable": format!("{why}: re-enter the credential's secrets")});
    }
    json!({"id": c.id, "name": c.name, "provider": provider})
}

pub fn credential_create(store: &Store, body: &Value) -> ApiResult<Value> {
    let b = obj(body, "cloudsync_credentials_create")?;
    let mut errors = Errors::new();
    let name = b.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    if name.trim().is_empty() {
        errors.push(("cloudsync_credentials_create.name".into(), "String should have at least 1 character".into()));
    }
    for k in b.keys() {
        if k != "name" && k != "provider" {
            errors.push((format!("cloudsync_credentials_create.{k}"), "Extra inputs are not permitted".into()));
        }
    }
    let provider = match providers::validate_credential(
        "cloudsync_credentials_create.provider",
        b.get("provider").unwrap_or(&Value::Null),
    ) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let c = store.create_credential(&name, &provider.unwrap_or_default()).map_err(|e| {
        if e.kind() == Kind::Usage {
            ApiError::Validation(vec![("cloudsync_credentials_create.name".into(), e.message().to_string())])
        } else {
            ApiError::Failed(e)
        }
    })?;
    Ok(credential_entry(&c, true))
}

pub fn credential_update(store: &Store, id: i64, partial: &Value) -> ApiResult<Value> {
    let p = obj(partial, "cloudsync_credentials_update")?;
    let current = store.get_credential(id)?;
    let name = p.get("name").and_then(Value::as_str).map(str::to_string).unwrap_or(current.name.clone());
    let provider_in = p.get("provider").cloned().unwrap_or(Value::Object(current.provider.clone()));
    let provider = providers::validate_credential("cloudsync_credentials_update.provider", &provider_in)
        .map_err(ApiError::Validation)?;
    let c = store.update_credential(id, &name, &provider)?;
    Ok(credential_entry(&c, true))
}

pub fn credential_delete(store: &Store, id: i64) -> ApiResult<()> {
    store.delete_credential(id).map_err(ApiError::Failed)
}

pub fn credential_list(store: &Store, reveal: bool) -> ApiResult<Vec<Value>> {
    Ok(store
        .list_credentials()?
        .into_iter()
        .map(|row| match &row.credential {
            Ok(c) => credential_entry(c, reveal),
            Err(e) => json!({"id": row.id, "name": row.name, "provider": {"type": row.provider_type}, "unusable": e.to_string()}),
        })
        .collect())
}

pub fn credential_get(store: &Store, id: i64, reveal: bool) -> ApiResult<Value> {
    Ok(credential_entry(&store.get_credential(id)?, reveal))
}

// ---- keychain (TrueNAS `keychaincredential`, type SSH_KEY_PAIR)

const KEYCHAIN_TYPES: &[&str] = &["SSH_KEY_PAIR"];

/// A keychain entry as `keychaincredential.query` shows it; the private key redacted
/// unless `reveal`.
fn keychain_entry(k: &crate::store::KeychainEntry, reveal: bool) -> Value {
    let private = match (&k.keys.private_key, reveal) {
        (Some(p), true) => json!(p),
        (Some(_), false) => json!(providers::SECRET_PLACEHOLDER),
        (None, _) => Value::Null,
    };
    json!({"id": k.id, "name": k.name, "type": k.kind,
           "attributes": {"private_key": private, "public_key": k.keys.public_key}})
}

/// `keychaincredential.create`: `{name, type: "SSH_KEY_PAIR", attributes: {private_key,
/// public_key}}`, either key alone or both (which must belong together).
pub fn keychain_create(store: &Store, body: &Value) -> ApiResult<Value> {
    const S: &str = "keychain_credential_create";
    let b = obj(body, S)?;
    let mut errors = Errors::new();
    let name = b.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    if name.trim().is_empty() {
        errors.push((format!("{S}.name"), "String should have at least 1 character".into()));
    }
    let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
    if !KEYCHAIN_TYPES.contains(&kind) {
        errors.push((format!("{S}.type"), "Input should be 'SSH_KEY_PAIR'".into()));
    }
    for k in b.keys() {
        if !matches!(k.as_str(), "name" | "type" | "attributes") {
            errors.push((format!("{S}.{k}"), "Extra inputs are not permitted".into()));
        }
    }
    let attrs = b.get("attributes").and_then(Value::as_object).cloned().unwrap_or_default();
    for k in attrs.keys() {
        if !matches!(k.as_str(), "private_key" | "public_key") {
            errors.push((format!("{S}.attributes.{k}"), "Extra inputs are not permitted".into()));
        }
    }
    let text = |k: &str| attrs.get(k).and_then(Value::as_str);
    let keys = match crate::keychain::check(text("private_key"), text("public_key")) {
        Ok(k) => Some(k),
        Err(e) => {
            errors.push((format!("{S}.attributes"), e.message().to_string()));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let k = store.create_keychain_entry(&name, kind, &keys.expect("checked")).map_err(|e| {
        if e.kind() == Kind::Usage {
            ApiError::Validation(vec![(format!("{S}.name"), e.message().to_string())])
        } else {
            ApiError::Failed(e)
        }
    })?;
    Ok(keychain_entry(&k, false))
}

/// `keychaincredential.generate_ssh_key_pair`: a new pair (Ed25519), not stored.
pub fn keychain_generate() -> ApiResult<Value> {
    let k = crate::keychain::generate("cloudsync")?;
    Ok(json!({"private_key": k.private_key, "public_key": k.public_key}))
}

pub fn keychain_list(store: &Store, reveal: bool) -> ApiResult<Vec<Value>> {
    Ok(store
        .list_keychain()?
        .into_iter()
        .map(|(id, name, kind, entry)| match entry {
            Ok(k) => keychain_entry(&k, reveal),
            Err(e) => json!({"id": id, "name": name, "type": kind, "attributes": {}, "unusable": e.to_string()}),
        })
        .collect())
}

pub fn keychain_get(store: &Store, id: i64, reveal: bool) -> ApiResult<Value> {
    Ok(keychain_entry(&store.get_keychain_entry(id)?, reveal))
}

pub fn keychain_delete(store: &Store, id: i64) -> ApiResult<()> {
    store.delete_keychain_entry(id).map_err(ApiError::Failed)
}

/// `verify`: list the remote root with a 15 s connect and 30 s I/O timeout.
pub fn credential_verify(provider: &Value) -> Value {
    credential_verify_in(None, provider)
}

/// Verify a stored credential: its keychain key pair read from the store, its server's
/// host key checked against the one it trusts (and recorded at the first verify).
pub fn credential_verify_stored(store: &Store, c: &crate::store::Credential) -> Value {
    let fail = |e: Error| json!({"valid": false, "error": e.to_string(), "excerpt": e.message()});
    let p = match c.usable() {
        Ok(p) => p,
        Err(e) => return json!({"valid": false, "error": e.to_string(), "excerpt": null}),
    };
    let mut p = match providers::validate_credential("cloudsync_credentials_verify", &Value::Object(p.clone())) {
        Ok(p) => p,
        Err(e) => return json!({"valid": false, "error": format!("{}: {}", e[0].0, e[0].1), "excerpt": e[0].1}),
    };
    if let Err(e) = store.resolve_keys(&mut p) {
        return fail(e);
    }
    let pins = crate::store::Pins { store, credential: c.id };
    match crate::remote::registry::verify_pinned(&p, Some(&pins)) {
        Ok(()) => json!({"valid": true, "error": null, "excerpt": null}),
        Err(e) => fail(e),
    }
}

/// [`credential_verify`] with a store to take an SFTP credential's keychain key pair from.
pub fn credential_verify_in(store: Option<&Store>, provider: &Value) -> Value {
    let mut p = match providers::validate_credential("cloudsync_credentials_verify", provider) {
        Ok(p) => p,
        Err(e) => return json!({"valid": false, "error": format!("{}: {}", e[0].0, e[0].1), "excerpt": e[0].1}),
    };
    if let Some(store) = store
        && let Err(e) = store.resolve_keys(&mut p)
    {
        return json!({"valid": false, "error": e.to_string(), "excerpt": e.message()});
    }
    match runner::verify_credential(&p) {
        Ok(()) => json!({"valid": true, "error": null, "excerpt": null}),
        Err(e) => json!({"valid": false, "error": e.to_string(), "excerpt": e.message()}),
    }
}

/// A task entry as `query` returns it: the body, the full credential (redacted), `job`.
fn task_entry(store: &Store, t: &crate::store::Task, reveal: bool) -> Value {
    let mut v = t.body.clone();
    v.insert("id".into(), json!(t.id));
    if !reveal {
        for k in ["encryption_password", "encryption_salt"] {
            if v.get(k).and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
                v.insert(k.into(), json!(providers::SECRET_PLACEHOLDER));
            }
        }
    }
    if let Some(cid) = t.body.get("credentials").and_then(Value::as_i64)
        && let Ok(c) = store.get_credential(cid)
    {
        v.insert("credentials".into(), credential_entry(&c, reveal));
    }
    // The job as TrueNAS's task entry shows it: the running (or waiting) one while there
    // is one, with its live progress; else the last finished one.
    let live = super::queue::list_jobs(store, Some(t.id), 1)
        .ok()
        .and_then(|jobs| jobs.into_iter().next())
        .filter(|j| matches!(j["state"].as_str(), Some("RUNNING" | "WAITING")));
    v.insert("job".into(), live.or_else(|| t.job.clone()).unwrap_or(Value::Null));
    let path = t.body.get("path").and_then(Value::as_str).unwrap_or_default();
    v.insert("locked".into(), json!(!path.is_empty() && super::queue::local_path_locked(store, path).unwrap_or(false)));
    Value::Object(v)
}

pub fn task_create(store: &Store, body: &Value, caller: Option<Caller>, policy: &PathPolicy) -> ApiResult<Value> {
    let b = obj(body, model::CREATE)?;
    let valid = model::validate(model::CREATE, &b, store, caller, policy).map_err(ApiError::Validation)?;
    let t = store.create_task(&valid)?;
    Ok(task_entry(store, &t, true))
}

pub fn task_update(
    store: &Store,
    id: i64,
    partial: &Value,
    caller: Option<Caller>,
    policy: &PathPolicy,
) -> ApiResult<Value> {
    let p = obj(partial, model::UPDATE)?;
    let current = store.get_task(id)?;
    let merged = model::merge_update(&current.body, &p);
    let merged: Map<String, Value> =
        merged.into_iter().filter(|(k, _)| !model::READ_ONLY.contains(&k.as_str())).collect();
    let valid = model::validate(model::UPDATE, &merged, store, caller, policy).map_err(ApiError::Validation)?;
    let t = store.update_task(id, &valid)?;
    Ok(task_entry(store, &t, true))
}

/// Validate a task body as `create` would, storing nothing: the normalized body (every
/// default filled in), or the validation errors. No network calls.
pub fn task_validate(store: &Store, body: &Value, caller: Option<Caller>, policy: &PathPolicy) -> ApiResult<Value> {
    let b = obj(body, model::CREATE)?;
    let valid = model::validate(model::CREATE, &b, store, caller, policy).map_err(ApiError::Validation)?;
    Ok(Value::Object(valid))
}

/// Validate the body of a one-time run (`sync_onetime`) with its own schema: the create
/// rules, reported under `cloud_sync_sync_onetime`, and no pre- or post-script at all
/// (whoever asks).
pub fn onetime_validate(store: &Store, body: &Value, caller: Option<Caller>, policy: &PathPolicy) -> ApiResult<Value> {
    let b = obj(body, model::ONETIME)?;
    let valid = model::validate(model::ONETIME, &b, store, caller, policy).map_err(ApiError::Validation)?;
    Ok(Value::Object(valid))
}

/// `verify_task`: validate a task body as create would, then make the remote checks
/// that validation leaves out (§3.4) with bounded timeouts. Returns `{"valid": bool,
/// "errors": [[field, message], ...], "excerpt": provider error or null}`; validation
/// errors are returned as such.
pub fn task_verify(store: &Store, body: &Value, caller: Option<Caller>, policy: &PathPolicy) -> ApiResult<Value> {
    let b = obj(body, "cloud_sync_verify")?;
    let valid = model::validate(model::CREATE, &b, store, caller, policy).map_err(ApiError::Validation)?;
    let cred_id = valid.get("credentials").and_then(Value::as_i64).unwrap_or(-1);
    let credential = store.runnable(&store.get_credential(cred_id)?)?;
    Ok(match runner::verify_location(&credential, &valid) {
        Ok(problems) => {
            let errors: Vec<Value> =
                problems.iter().map(|(k, m)| json!([format!("cloud_sync_verify.{k}"), m])).collect();
            json!({"valid": errors.is_empty(), "errors": errors, "excerpt": null})
        }
        Err(e) => json!({"valid": false, "errors": [], "excerpt": e.message()}),
    })
}

/// Delete a task, aborting/// Delete a task, aborting its running job first (§1.2).
pub fn task_delete(store: &Store, id: i64) -> ApiResult<()> {
    store.get_task(id)?;
    if queue::request_abort(store, id)? {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while queue::task_has_live_job(store, id)? && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    store.delete_task(id).map_err(ApiError::Failed)
}

pub fn task_get(store: &Store, id: i64, reveal: bool) -> ApiResult<Value> {
    Ok(task_entry(store, &store.get_task(id)?, reveal))
}

pub fn task_list(store: &Store, reveal: bool) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for id in store.list_task_ids()? {
        match store.get_task(id) {
            Ok(t) => out.push(task_entry(store, &t, reveal)),
            Err(e) => out.push(json!({"id": id, "unusable": e.to_string()})),
        }
    }
    Ok(out)
}

/// `restore`: create the reversed, disabled task (§11). Does not run it.
pub fn task_restore(
    store: &Store,
    id: i64,
    args: &Value,
    caller: Option<Caller>,
    policy: &PathPolicy,
) -> ApiResult<Value> {
    let a = obj(args, "cloud_sync_restore")?;
    let current = store.get_task(id)?;
    let body = model::restore_body(&current.body, &a).map_err(ApiError::Validation)?;
    let valid = model::validate(model::CREATE, &body, store, caller, policy).map_err(ApiError::Validation)?;
    let t = store.create_task(&valid)?;
    Ok(task_entry(store, &t, true))
}

pub fn task_abort(store: &Store, id: i64) -> ApiResult<bool> {
    store.get_task(id)?;
    Ok(queue::request_abort(store, id)?)
}

/// One job: state, progress, error, log excerpt and times (see [`queue::job_record`]).
pub fn job_get(store: &Store, job_id: i64) -> ApiResult<Value> {
    Ok(queue::job_record(store, job_id)?)
}

/// The newest `limit` jobs of a task (or of all tasks), newest first.
pub fn job_list(store: &Store, task_id: Option<i64>, limit: u32) -> ApiResult<Vec<Value>> {
    Ok(queue::list_jobs(store, task_id, limit)?)
}

/// Ask a job to abort, from any thread or process. False if it was not live.
pub fn job_abort(store: &Store, job_id: i64) -> ApiResult<bool> {
    queue::job_record(store, job_id)?;
    Ok(queue::request_job_abort(store, job_id)?)
}

/// The whole log of a job (the file under the log directory), or the excerpt kept in the
/// job record when the file is gone.
pub fn job_log(store: &Store, job_id: i64) -> ApiResult<String> {
    let job = queue::job_record(store, job_id)?;
    if let Some(p) = job["logs_path"].as_str()
        && let Ok(text) = std::fs::read(p)
    {
        return Ok(String::from_utf8_lossy(&text).into_owned());
    }
    Ok(job["logs_excerpt"].as_str().unwrap_or(super::joblog::LOG_REMOVED).to_string())
}

/// One entry of a remote folder listing, name as raw bytes (decrypted when the task
/// encrypts names).
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub is_dir: bool,
    /// Bytes; -1 when unknown.
    pub size: i64,
    /// Nanoseconds since the Unix epoch, when the listing tells it.
    pub mtime_ns: Option<i64>,
}

/// The entries of folder `path` below the task location `attributes` (bucket, folder),
/// sorted by name, through crypt when `crypt` holds the task's encryption fields.
pub fn list_directory_entries(
    store: &Store,
    credential_id: i64,
    attributes: &Value,
    crypt: &Value,
    path: &str,
) -> ApiResult<Vec<DirEntry>> {
    let credential = store.get_credential(credential_id).map_err(|e| match e.kind() {
        Kind::NotFound => {
            ApiError::Validation(vec![("cloud_sync_list_directory.credentials".into(), "Invalid credentials".into())])
        }
        _ => ApiError::Failed(e),
    })?;
    let attrs = attributes.as_object().cloned().unwrap_or_default();
    let pins = crate::store::Pins { store, credential: credential.id };
    let inner = runner::build_remote_pinned(&store.runnable(&credential)?, &attrs, None, Some(&pins))?;
    let remote = runner::with_crypt(inner, crypt.as_object().unwrap_or(&Map::new()))?;
    let dir = RelPath::from_str_checked(path.trim_matches('/'))?;
    let mut entries = remote.list_dir(&dir, &mut |e| log::warn!("{e}"))?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries
        .into_iter()
        .map(|e| DirEntry {
            is_dir: e.is_dir(),
            size: if e.is_dir() { -1 } else { e.size },
            // The stored modification time when the listing has it; else the server's
            // last-modified time (a HEAD per object is not worth it for a folder view).
            mtime_ns: e.mtime.or(e.extra.server_time),
            name: e.name,
        })
        .collect())
}

/// `list_directory`: the entries of a remote folder in rclone `lsjson` shape, with
/// `Decrypted` names when the task encrypts names.
pub fn list_directory(
    store: &Store,
    credential_id: i64,
    attributes: &Value,
    crypt: &Value,
    path: &str,
) -> ApiResult<Vec<Value>> {
    let entries = list_directory_entries(store, credential_id, attributes, crypt, path)?;
    let decrypted = crypt.get("filename_encryption").and_then(Value::as_bool).unwrap_or(false);
    let prefix = path.trim_matches('/');
    Ok(entries
        .into_iter()
        .map(|e| {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let mut v = json!({
                "Path": if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") },
                "Name": name, "Size": e.size, "IsDir": e.is_dir, "Enabled": true,
                "ModTime": e.mtime_ns.map(|t| t / 1_000_000_000),
            });
            if decrypted {
                v["Decrypted"] = v["Name"].clone();
            }
            v
        })
        .collect())
}

/// `cloudsync.list_directory` with TrueNAS's argument object: `credentials` (id),
/// `attributes` (bucket, folder: the task's location), and the task's `encryption`,
/// `filename_encryption`, `encryption_password`, `encryption_salt`. cloudsync adds an
/// optional `path` (plaintext, relative to the location) to browse below it: with name
/// encryption, a subfolder can only be listed this way, since its stored name is
/// encrypted.
pub fn list_directory_args(store: &Store, args: &Value) -> ApiResult<Vec<DirEntry>> {
    let a = obj(args, "cloud_sync_list_directory")?;
    let Some(cred) = a.get("credentials").and_then(Value::as_i64) else {
        return Err(ApiError::Validation(vec![(
            "cloud_sync_list_directory.credentials".into(),
            "Field required".into(),
        )]));
    };
    let attributes = a.get("attributes").cloned().unwrap_or_else(|| json!({}));
    let path = match a.get("path") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(p)) => p.clone(),
        Some(_) => {
            return Err(ApiError::Validation(vec![(
                "cloud_sync_list_directory.path".into(),
                "Input should be a valid string".into(),
            )]));
        }
    };
    list_directory_entries(store, cred, &attributes, &Value::Object(a), &path)
}

/// Import a cloudsync configuration export (`cloudsync config export`): credentials and
/// tasks are added to this store with fresh ids, secrets re-encrypted under this store's
/// seed. The export's secrets are read with the seed inside it (`--with-seed`), or with
/// this store's own seed when it is the one that wrote them. Without either, names,
/// types and task settings come back; credentials are kept as unusable until re-entered
/// and tasks that lost their encryption password come in disabled, saying so.
/// cloudsync's configuration export: [`Store::export`] plus, for each credential, its
/// non-secret fields in clear (`known`), so that an import without the seed keeps them.
pub fn config_export(store: &Store, with_seed: bool) -> crate::error::Result<Value> {
    let mut out = store.export(with_seed)?;
    for c in out.get_mut("credentials").and_then(Value::as_array_mut).into_iter().flatten() {
        let Some(id) = c["id"].as_i64() else { continue };
        if let Ok(cred) = store.get_credential(id) {
            let ty = cred.provider.get("type").and_then(Value::as_str).unwrap_or_default().to_string();
            let known: Map<String, Value> = cred
                .provider
                .iter()
                .filter(|(k, _)| k.as_str() != "type" && !providers::is_secret(&ty, k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            c["known"] = Value::Object(known);
        }
    }
    Ok(out)
}

/// `base`, or `base (2)`, `base (3)`... whichever is not `taken`.
fn free_name(base: &str, taken: &[String]) -> String {
    let mut name = base.to_string();
    let mut n = 2;
    while taken.contains(&name) {
        name = format!("{base} ({n})");
        n += 1;
    }
    name
}

pub fn config_import(store: &Store, export: &Value, policy: &PathPolicy) -> ApiResult<Value> {
    store.atomically(|| config_import_rows(store, export, policy))
}

fn config_import_rows(store: &Store, export: &Value, policy: &PathPolicy) -> ApiResult<Value> {
    use crate::store::secrets::{Field, Secrets};
    use base64::Engine as _;
    if export.get("format").and_then(Value::as_str) != Some("cloudsync-config/1") {
        return Err(ApiError::Failed(Error::usage("not a cloudsync configuration export (format cloudsync-config/1)")));
    }
    let check = export.get("seed_check").and_then(Value::as_str);
    let from_export = export.get("seed").and_then(Value::as_str).and_then(|b| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
        <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Secrets::from_seed)
    });
    let own = store.secrets();
    let secrets: Option<&Secrets> = match (&from_export, check) {
        (Some(s), Some(c)) if s.verify_check(c) => Some(s),
        (Some(_), _) => {
            return Err(ApiError::Failed(Error::usage("the seed inside the export does not match its secrets")));
        }
        (None, Some(c)) if own.is_available() && own.verify_check(c) => Some(own),
        _ => None,
    };
    let mut report = json!({"secrets": secrets.is_some(), "keychain": [], "credentials": [], "tasks": []});
    // Key pairs first: SFTP credentials name them by id, which changes here.
    let mut key_ids = std::collections::HashMap::new();
    let taken: Vec<String> = store.list_keychain()?.into_iter().map(|(_, name, _, _)| name).collect();
    for k in export.get("keychain").and_then(Value::as_array).into_iter().flatten() {
        let old_id = k["id"].as_i64().unwrap_or(-1);
        let name = free_name(k["name"].as_str().unwrap_or("imported"), &taken);
        let stored = k["private_key"].as_str().unwrap_or("");
        let private = if stored.is_empty() {
            Some(String::new())
        } else {
            secrets.and_then(|s| s.decrypt(Field::KeychainPrivateKey, stored).ok())
        };
        let problem =
            private.is_none().then_some("its private key cannot be read without the export's seed: add the key again");
        let keys = crate::keychain::KeyPair {
            private_key: private.filter(|p| !p.is_empty()),
            public_key: k["public_key"].as_str().unwrap_or("").to_string(),
        };
        let id = store.create_keychain_entry(&name, k["type"].as_str().unwrap_or("SSH_KEY_PAIR"), &keys)?.id;
        key_ids.insert(old_id, id);
        if let Some(a) = report["keychain"].as_array_mut() {
            a.push(json!({"old_id": old_id, "id": id, "name": name, "problem": problem}));
        }
    }
    let existing: Vec<String> = store.list_credentials()?.into_iter().map(|r| r.name).collect();
    let mut ids = std::collections::HashMap::new();
    let mut unusable = std::collections::HashSet::new();
    for c in export.get("credentials").and_then(Value::as_array).into_iter().flatten() {
        let old_id = c["id"].as_i64().unwrap_or(-1);
        let name = free_name(c["name"].as_str().unwrap_or("imported"), &existing);
        let ty = c["provider"].as_str().unwrap_or("").to_string();
        let decrypted = secrets
            .and_then(|s| s.decrypt(Field::CredentialProvider, c["attributes"].as_str().unwrap_or("")).ok())
            .and_then(|j| serde_json::from_str::<Map<String, Value>>(&j).ok());
        let (id, problem) = match decrypted {
            Some(mut provider) => {
                provider.insert("type".into(), json!(ty));
                // An SFTP key pair, under its new id.
                if let Some(old_key) = provider.get("private_key").and_then(Value::as_i64) {
                    provider.insert("private_key".into(), json!(key_ids.get(&old_key).copied()));
                }
                (store.create_credential(&name, &provider)?.id, None)
            }
            None => {
                // Its settings come back (an export lists them in clear), its secrets do not.
                let known = c["known"].as_object().cloned().unwrap_or_default();
                let reason = "its secrets cannot be read without the export's seed";
                let id = store.create_unusable_credential(&name, &ty, &known, reason)?;
                unusable.insert(id);
                (id, Some(format!("unusable until re-entered: {reason}")))
            }
        };
        ids.insert(old_id, id);
        if let Some(k) = c["host_key"].as_str() {
            store.set_host_key(id, Some(k))?;
        }
        if let Some(a) = report["credentials"].as_array_mut() {
            a.push(json!({"old_id": old_id, "id": id, "name": name, "problem": problem}));
        }
    }
    for t in export.get("tasks").and_then(Value::as_array).into_iter().flatten() {
        let old_id = t["id"].as_i64().unwrap_or(-1);
        let mut body: Map<String, Value> = serde_json::from_str(t["body"].as_str().unwrap_or("{}")).unwrap_or_default();
        let old_cred = t["credential_id"].as_i64().unwrap_or(-1);
        let cred = ids.get(&old_cred).copied().unwrap_or(-1);
        body.insert("credentials".into(), json!(cred));
        let mut problems: Vec<String> = Vec::new();
        if unusable.contains(&cred) {
            problems.push(UNUSABLE_CREDENTIAL.to_string());
        }
        for (field, key) in
            [(Field::TaskEncryptionPassword, "encryption_password"), (Field::TaskEncryptionSalt, "encryption_salt")]
        {
            let stored = t[key].as_str().unwrap_or("");
            let value = if stored.is_empty() {
                Some(String::new())
            } else {
                secrets.and_then(|s| s.decrypt(field, stored).ok())
            };
            match value {
                Some(v) => {
                    body.insert(key.into(), json!(v));
                }
                None => {
                    body.insert(key.into(), json!(""));
                    problems.push(format!("{key} could not be read without the export's seed: enter it again"));
                }
            }
        }
        let editable: Map<String, Value> = body
            .iter()
            .filter(|(k, _)| !model::READ_ONLY.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let stored = match model::validate(model::CREATE, &editable, store, None, policy) {
            Ok(mut valid) if problems.is_empty() => {
                valid.insert("enabled".into(), body.get("enabled").cloned().unwrap_or(json!(true)));
                store.create_task(&valid)?
            }
            Ok(valid) => create_disabled(store, valid, &problems)?,
            Err(errs) => {
                problems.extend(errs.iter().map(|(k, m)| format!("{k}: {m}")));
                create_disabled(store, body, &problems)?
            }
        };
        if let Some(a) = report["tasks"].as_array_mut() {
            a.push(json!({"old_id": old_id, "id": stored.id, "problems": problems}));
        }
    }
    Ok(report)
}

/// Stores an imported task disabled, with what needs the admin's attention before it runs.
/// Why an imported task that uses an unusable credential comes in disabled.
const UNUSABLE_CREDENTIAL: &str = "its credential is unusable until its secrets are entered again";

fn create_disabled(
    store: &Store,
    mut body: Map<String, Value>,
    problems: &[String],
) -> crate::error::Result<crate::store::Task> {
    body.insert("enabled".into(), json!(false));
    body.insert("import_problems".into(), json!(problems));
    store.create_task(&body)
}

/// Import a TrueNAS configuration (§13): a config backup tar or database, with its
/// `pwenc_secret` inside or given as `seed`. Credentials are re-encrypted under this
/// store's seed; ones whose secrets cannot be decrypted are kept as unusable. Tasks that
/// fail validation come in disabled, with the reasons. Returns a report.
pub fn import_truenas(
    store: &Store,
    path: &std::path::Path,
    seed: Option<&[u8]>,
    policy: &PathPolicy,
) -> ApiResult<Value> {
    use super::truenas_import::read_backup;
    let cfg = read_backup(path, seed).map_err(|e| ApiError::Failed(Error::usage(format!("TrueNAS import: {e}"))))?;
    // All or nothing: a failure midway stores no row (a re-run then starts clean).
    store.atomically(|| import_truenas_rows(store, &cfg, policy))
}

fn import_truenas_rows(
    store: &Store,
    cfg: &super::truenas_import::TrueNasConfig,
    policy: &PathPolicy,
) -> ApiResult<Value> {
    let mut report =
        json!({"seed_ok": cfg.seed_ok, "warnings": cfg.warnings, "keychain": [], "credentials": [], "tasks": []});
    // Key pairs first: SFTP credentials name them by id, which changes here.
    let mut key_ids = std::collections::HashMap::new();
    let stored_keys = store.list_keychain()?;
    let key_names: Vec<String> = stored_keys.iter().map(|(_, n, _, _)| n.clone()).collect();
    for k in &cfg.keypairs {
        let text = |f: &str| k.attributes.as_ref().and_then(|a| a.get(f)).and_then(Value::as_str);
        let checked = match &k.attributes {
            Some(_) => crate::keychain::check(text("private_key"), text("public_key")).map_err(|e| e.to_string()),
            None => Err(k.problem.clone().unwrap_or_else(|| "its keys could not be decrypted".into())),
        };
        let entry = match checked {
            Ok(keys) => {
                // A re-run finds the pair the first run stored (same name, same keys).
                let same = stored_keys.iter().find(|(_, n, _, e)| {
                    (n == &k.name || n.starts_with(&format!("{} (", k.name)))
                        && e.as_ref().is_ok_and(|e| e.keys == keys)
                });
                let id = match same {
                    Some((id, ..)) => *id,
                    None => store.create_keychain_entry(&free_name(&k.name, &key_names), "SSH_KEY_PAIR", &keys)?.id,
                };
                key_ids.insert(k.id, id);
                json!({"truenas_id": k.id, "id": id, "name": k.name, "problem": null})
            }
            Err(why) => {
                json!({"truenas_id": k.id, "id": null, "name": k.name, "problem": format!("not imported: {why}")})
            }
        };
        if let Some(a) = report["keychain"].as_array_mut() {
            a.push(entry);
        }
    }
    let mut ids = std::collections::HashMap::new();
    let mut unusable = std::collections::HashSet::new();
    let existing = store.list_credentials()?;
    let names: Vec<String> = existing.iter().map(|r| r.name.clone()).collect();
    for c in &cfg.credentials {
        let mut key_problem = None;
        let provider = c.fields.as_ref().map(|fields| {
            let mut p = fields.clone();
            p.insert("type".into(), json!(c.provider_type));
            // An SFTP credential's key pair, under its id here.
            if let Some(old) = p.get("private_key").and_then(Value::as_i64) {
                let new = key_ids.get(&old).copied();
                if new.is_none() {
                    key_problem =
                        Some(format!("its keychain key pair (TrueNAS id {old}) was not imported: add it again"));
                }
                p.insert("private_key".into(), json!(new));
            }
            p
        });
        // A re-run finds what the first run stored (same name and type, same fields, or
        // both without secrets) and imports it once.
        let same = existing.iter().find(|row| {
            row.provider_type == c.provider_type
                && (row.name == c.name || row.name.starts_with(&format!("{} (", c.name)))
                && match (&row.credential, &provider) {
                    (Ok(stored), Some(p)) => stored.unusable.is_none() && &stored.provider == p,
                    (Ok(stored), None) => stored.unusable.is_some(),
                    (Err(_), _) => false,
                }
        });
        if let Some(row) = same {
            ids.insert(c.id, row.id);
            if row.credential.as_ref().is_ok_and(|s| s.unusable.is_some()) {
                unusable.insert(row.id);
            }
            if let Some(a) = report["credentials"].as_array_mut() {
                a.push(json!({"truenas_id": c.id, "id": row.id, "name": row.name, "problem": null, "already_imported": true}));
            }
            continue;
        }
        let mut name = c.name.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{} ({n})", c.name);
            n += 1;
        }
        let entry = match &provider {
            Some(provider) => match credential_create(store, &json!({"name": name, "provider": provider})) {
                Ok(v) => {
                    let id = v["id"].as_i64().unwrap_or(-1);
                    ids.insert(c.id, id);
                    json!({"truenas_id": c.id, "id": id, "name": name, "problem": c.problem.clone().or(key_problem)})
                }
                Err(e) => {
                    let reason = format!("imported unusable: {e}");
                    let known: Map<String, Value> = provider
                        .iter()
                        .filter(|(k, _)| !providers::is_secret(&c.provider_type, k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let id = store.create_unusable_credential(&name, &c.provider_type, &known, &reason)?;
                    unusable.insert(id);
                    ids.insert(c.id, id);
                    json!({"truenas_id": c.id, "id": id, "name": name, "problem": reason})
                }
            },
            None => {
                let reason = c.problem.clone().unwrap_or_else(|| "its secrets could not be decrypted".into());
                let id = store.create_unusable_credential(&name, &c.provider_type, &Map::new(), &reason)?;
                unusable.insert(id);
                ids.insert(c.id, id);
                json!({"truenas_id": c.id, "id": id, "name": name, "problem": format!("unusable until re-entered: {reason}")})
            }
        };
        if let Some(a) = report["credentials"].as_array_mut() {
            a.push(entry);
        }
    }
    let stored_tasks: Vec<crate::store::Task> =
        store.list_task_ids()?.into_iter().filter_map(|id| store.get_task(id).ok()).collect();
    for t in &cfg.tasks {
        let mut body = t.body.clone();
        let old_cred = body.get("credentials").and_then(Value::as_i64).unwrap_or(-1);
        let shown = body.get("description").and_then(Value::as_str).filter(|d| !d.is_empty()).map(str::to_string);
        let label = match &shown {
            Some(d) => format!("task {} ({d:?})", t.id),
            None => format!("task {}", t.id),
        };
        let Some(&cred) = ids.get(&old_cred) else {
            let problem = format!(
                "{label} was not imported: its credential (TrueNAS id {old_cred}) is not in the configuration or its provider is not supported"
            );
            if let Some(a) = report["tasks"].as_array_mut() {
                a.push(json!({"truenas_id": t.id, "id": null, "enabled": false, "problems": [problem]}));
            }
            continue;
        };
        body.insert("credentials".into(), json!(cred));
        let mut problems = t.problems.clone();
        if unusable.contains(&cred) {
            problems.push(UNUSABLE_CREDENTIAL.to_string());
        }
        let validated = model::validate(model::CREATE, &body, store, None, policy);
        let candidate = validated.clone().unwrap_or_else(|_| body.clone());
        if let Some(same) = stored_tasks.iter().find(|s| same_task(&s.body, &candidate)) {
            if let Some(a) = report["tasks"].as_array_mut() {
                a.push(json!({"truenas_id": t.id, "id": same.id, "enabled": same.body.get("enabled").cloned().unwrap_or(json!(false)), "problems": [], "already_imported": true}));
            }
            continue;
        }
        let stored = match validated {
            Ok(mut valid) => {
                if !problems.is_empty() {
                    valid.insert("enabled".into(), json!(false));
                    valid.insert("import_problems".into(), json!(problems));
                }
                store.create_task(&valid)?
            }
            Err(errs) => {
                problems.extend(errs.iter().map(|(k, m)| format!("{k}: {m}")));
                create_disabled(store, body, &problems)?
            }
        };
        if let Some(job) = &t.job {
            let _ = store.set_task_job(stored.id, job);
        }
        if let Some(a) = report["tasks"].as_array_mut() {
            a.push(json!({"truenas_id": t.id, "id": stored.id, "enabled": stored.body.get("enabled").cloned().unwrap_or(json!(false)) == json!(true) && problems.is_empty(), "problems": problems}));
        }
    }
    Ok(report)
}

/// Whether two task bodies describe the same task (what an import would store twice).
fn same_task(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    const IGNORED: &[&str] = &["id", "job", "enabled", "import_problems", "locked", "dataset", "relative_path"];
    let strip = |m: &Map<String, Value>| -> Map<String, Value> {
        m.iter().filter(|(k, _)| !IGNORED.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::truenas_import::build_fixture_database;

    #[test]
    fn truenas_keychain_pairs_come_with_their_sftp_credentials() {
        let d = tempfile::tempdir().unwrap();
        let seed = *b"0123456789abcdef0123456789abcdef";
        let tn = d.path().join("freenas-v1.db");
        build_fixture_database(
            &tn,
            &seed,
            &[
                (
                    3,
                    "backup box",
                    "SFTP",
                    json!({"host": "h", "port": 22, "user": "u", "pass": null, "private_key": 7}),
                ),
                (4, "lost key", "SFTP", json!({"host": "h", "port": 22, "user": "u", "pass": null, "private_key": 99})),
            ],
            &[],
        )
        .unwrap();
        let pair = crate::keychain::generate("truenas").unwrap();
        let attrs = json!({"private_key": pair.private_key, "public_key": pair.public_key}).to_string();
        let conn = rusqlite::Connection::open(&tn).unwrap();
        conn.execute_batch(
            "CREATE TABLE system_keychaincredential (id INTEGER PRIMARY KEY, name VARCHAR(255), type VARCHAR(255), attributes TEXT)",
        )
        .unwrap();
        let enc = crate::task::truenas_import::pwenc_encrypt_with_nonce(&seed, [9; 8], &attrs);
        conn.execute("INSERT INTO system_keychaincredential VALUES (7, 'nas key', 'SSH_KEY_PAIR', ?1)", [&enc])
            .unwrap();
        let other = crate::task::truenas_import::pwenc_encrypt_with_nonce(&seed, [8; 8], "{}");
        conn.execute("INSERT INTO system_keychaincredential VALUES (8, 'repl', 'SSH_CREDENTIALS', ?1)", [&other])
            .unwrap();
        drop(conn);
        let store = Store::open(&d.path().join("a/db"), &d.path().join("a/seed")).unwrap();
        // Something in the keychain already: the imported pair gets another id.
        let first = crate::keychain::generate("").unwrap();
        store.create_keychain_entry("mine", "SSH_KEY_PAIR", &first).unwrap();
        let policy = PathPolicy::default();
        let r = import_truenas(&store, &tn, Some(&seed), &policy).unwrap();
        assert_eq!(r["keychain"].as_array().unwrap().len(), 1, "SSH connections are not Cloud Sync's: {r}");
        let key_id = r["keychain"][0]["id"].as_i64().unwrap();
        assert_ne!(key_id, 7);
        assert_eq!(store.get_keychain_entry(key_id).unwrap().keys, pair);
        let box_id = r["credentials"][0]["id"].as_i64().unwrap();
        assert_eq!(store.get_credential(box_id).unwrap().provider["private_key"], json!(key_id));
        assert!(r["credentials"][1]["problem"].as_str().unwrap().contains("TrueNAS id 99"), "{r}");
        // A second import stores nothing twice.
        let again = import_truenas(&store, &tn, Some(&seed), &policy).unwrap();
        assert_eq!(again["keychain"][0]["id"], json!(key_id));
        assert_eq!(store.list_keychain().unwrap().len(), 2);
        assert_eq!(store.list_credentials().unwrap().len(), 2, "{again}");
        // Without the seed: the pair is reported, not invented.
        let bare = Store::open(&d.path().join("b/db"), &d.path().join("b/seed")).unwrap();
        let r = import_truenas(&bare, &tn, None, &policy).unwrap();
        assert!(r["keychain"][0]["problem"].as_str().unwrap().contains("add"), "{r}");
        assert!(bare.list_keychain().unwrap().is_empty());
    }

    #[test]
    fn own_export_round_trips_with_and_without_the_seed() {
        let d = tempfile::tempdir().unwrap();
        let policy = PathPolicy { pool_root: d.path().to_path_buf(), require_dataset: false };
        std::fs::create_dir_all(d.path().join("tank/data")).unwrap();
        let a = Store::open(&d.path().join("a/db"), &d.path().join("a/seed")).unwrap();
        let cred = credential_create(
            &a,
            &json!({"name": "s3", "provider": {"type": "S3", "access_key_id": "AK", "secret_access_key": "SECRET-1", "endpoint": "http://127.0.0.1:9"}}),
        )
        .unwrap();
        let body = json!({"path": d.path().join("tank/data"), "credentials": cred["id"], "description": "photos",
            "attributes": {"bucket": "b", "folder": "f"}, "direction": "PUSH", "transfer_mode": "SYNC",
            "encryption": true, "encryption_password": "PW-2", "encryption_salt": "SALT-3"});
        task_create(&a, &body, None, &policy).unwrap();

        // With the seed: everything comes back, under the new store's own seed.
        let with_seed = config_export(&a, true).unwrap();
        let b = Store::open(&d.path().join("b/db"), &d.path().join("b/seed")).unwrap();
        let r = config_import(&b, &with_seed, &policy).unwrap();
        assert_eq!(r["secrets"], true, "{r}");
        let c = b.get_credential(r["credentials"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(c.provider["secret_access_key"], "SECRET-1");
        let t = b.get_task(r["tasks"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!((t.body["encryption_password"].as_str(), t.body["enabled"].as_bool()), (Some("PW-2"), Some(true)));
        assert_eq!(t.body["credentials"], json!(c.id));

        // Without the seed, into another store: names, types and settings survive; the
        // secrets are reported lost and the task does not run by accident.
        let plain = config_export(&a, false).unwrap();
        let c2 = Store::open(&d.path().join("c/db"), &d.path().join("c/seed")).unwrap();
        let r = config_import(&c2, &plain, &policy).unwrap();
        assert_eq!(r["secrets"], false);
        assert!(r["credentials"][0]["problem"].as_str().unwrap().contains("unusable"), "{r}");
        let t = c2.get_task(r["tasks"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(t.body["enabled"], false);
        assert_eq!(t.body["description"], "photos");
        assert!(t.body["import_problems"].to_string().contains("encryption_password"), "{}", t.body["import_problems"]);
        assert!(t.body["import_problems"].to_string().contains(UNUSABLE_CREDENTIAL), "{}", t.body["import_problems"]);
        // The credential keeps its settings, not its secrets, and says so wherever it is listed.
        let cid = r["credentials"][0]["id"].as_i64().unwrap();
        let kept = c2.get_credential(cid).unwrap();
        assert_eq!(kept.provider["type"], "S3");
        assert_eq!(kept.provider["endpoint"], "http://127.0.0.1:9", "{:?}", kept.provider);
        assert!(kept.provider.get("secret_access_key").is_none());
        let listed = credential_list(&c2, false).unwrap();
        assert!(listed[0]["unusable"].as_str().unwrap().ends_with("re-enter the credential's secrets"), "{listed:?}");
        assert!(credential_get(&c2, cid, false).unwrap()["unusable"].is_string());
        // Anything that would use it fails at once with the sentence, before any network call.
        let e = kept.usable().unwrap_err().to_string();
        assert_eq!(
            e,
            "The credential \"s3\" cannot be used: its secrets cannot be read without the export's seed; re-enter the credential's secrets"
        );
        // Entering the secrets again makes it usable.
        credential_update(
            &c2,
            cid,
            &json!({"provider": {"type": "S3", "access_key_id": "AK", "secret_access_key": "NEW"}}),
        )
        .unwrap();
        assert!(c2.get_credential(cid).unwrap().usable().is_ok());

        // Without the seed but into the store that wrote it: its own seed reads it.
        let r = config_import(&a, &plain, &policy).unwrap();
        assert_eq!(r["secrets"], true);
        assert_eq!(r["credentials"][0]["name"], "s3 (2)");
        // Not an export at all.
        assert!(config_import(&a, &json!({"format": "other"}), &policy).is_err());
    }

    #[test]
    fn truenas_configuration_imports_with_and_without_the_seed() {
        let d = tempfile::tempdir().unwrap();
        let seed = *b"0123456789abcdef0123456789abcdef";
        let tn = d.path().join("freenas-v1.db");
        build_fixture_database(
            &tn,
            &seed,
            &[
                (1, "aws", "S3", json!({"access_key_id": "AKIA", "secret_access_key": "TN-SECRET", "endpoint": "", "region": "", "skip_region": false, "signatures_v2": false, "max_upload_parts": 10000, "provider": "Other", "force_path_style": true, "sign_accept_encoding": true})),
                (2, "gone", "MEGA", json!({"user": "u", "pass": "p"})),
            ],
            &[
                json!({"id": 7, "description": "photos", "path": "/mnt/tank/photos", "credentials": 1,
                       "attributes": {"bucket": "bk", "folder": "p", "fast_list": false, "region": "", "encryption": null, "storage_class": ""},
                       "encryption": true, "encryption_password": "TN-PW", "encryption_salt": "", "job": {"state": "SUCCESS"}}),
                json!({"id": 8, "description": "outside", "path": "/srv/data", "credentials": 1,
                       "attributes": {"bucket": "bk", "folder": "q", "fast_list": false, "region": "", "encryption": null, "storage_class": ""}}),
                json!({"id": 9, "description": "orphan", "path": "/mnt/tank/o", "credentials": 5,
                       "attributes": {"bucket": "bk", "folder": "o", "fast_list": false, "region": "", "encryption": null, "storage_class": ""}}),
            ],
        )
        .unwrap();
        let policy = PathPolicy::default();
        let store = Store::open(&d.path().join("a/db"), &d.path().join("a/seed")).unwrap();
        let r = import_truenas(&store, &tn, Some(&seed), &policy).unwrap();
        assert_eq!(r["credentials"].as_array().unwrap().len(), 1, "MEGA is skipped: {r}");
        let cred = store.get_credential(r["credentials"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(cred.provider["secret_access_key"], "TN-SECRET");
        let photos = store.get_task(r["tasks"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(photos.body["encryption_password"], "TN-PW");
        assert_eq!(photos.body["enabled"], true);
        assert_eq!(photos.job.unwrap()["state"], "SUCCESS");
        let outside = store.get_task(r["tasks"][1]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(outside.body["enabled"], false, "a task failing validation comes in disabled");
        assert!(r["tasks"][1]["problems"].to_string().contains("pool mount point"), "{r}");
        // A task whose credential is missing is reported in a sentence, and the rest imports.
        assert_eq!(
            r["tasks"][2]["problems"][0],
            "task 9 (\"orphan\") was not imported: its credential (TrueNAS id 5) is not in the configuration or its provider is not supported"
        );
        assert_eq!(store.list_task_ids().unwrap().len(), 2);
        // A re-run is idempotent: nothing is stored twice.
        let again = import_truenas(&store, &tn, Some(&seed), &policy).unwrap();
        assert_eq!(store.list_credentials().unwrap().len(), 1, "{again}");
        assert_eq!(store.list_task_ids().unwrap().len(), 2, "{again}");
        assert_eq!(again["credentials"][0]["already_imported"], true);
        assert_eq!(again["tasks"][0]["already_imported"], true);

        // Without the seed: names and tasks survive, secrets do not, nothing runs by accident.
        let store2 = Store::open(&d.path().join("b/db"), &d.path().join("b/seed")).unwrap();
        let r = import_truenas(&store2, &tn, None, &policy).unwrap();
        assert!(r["credentials"][0]["problem"].as_str().unwrap().contains("unusable"), "{r}");
        assert_eq!(store2.list_task_ids().unwrap().len(), 2);
        let t = store2.get_task(r["tasks"][0]["id"].as_i64().unwrap()).unwrap();
        assert_eq!(t.body["enabled"], false);
        import_truenas(&store2, &tn, None, &policy).unwrap();
        assert_eq!((store2.list_credentials().unwrap().len(), store2.list_task_ids().unwrap().len()), (1, 2));
    }
}
