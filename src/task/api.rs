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

/// `verify`: list the remote root with a 15 s connect and 30 s I/O timeout.
pub fn credential_verify(provider: &Value) -> Value {
    let p = match providers::validate_credential("cloudsync_credentials_verify", provider) {
        Ok(p) => p,
        Err(e) => return json!({"valid": false, "error": format!("{}: {}", e[0].0, e[0].1), "excerpt": e[0].1}),
    };
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
    v.insert("job".into(), t.job.clone().unwrap_or(Value::Null));
    v.insert("locked".into(), json!(false));
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

/// Delete a task, aborting its running job first (§1.2).
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

/// `list_directory`: the entries of a remote folder in rclone `lsjson` shape, with
/// `Decrypted` names when the task encrypts names.
pub fn list_directory(
    store: &Store,
    credential_id: i64,
    attributes: &Value,
    crypt: &Value,
    path: &str,
) -> ApiResult<Vec<Value>> {
    let credential = store.get_credential(credential_id).map_err(|e| match e.kind() {
        Kind::NotFound => {
            ApiError::Validation(vec![("cloud_sync_list_directory.credentials".into(), "Invalid credentials".into())])
        }
        _ => ApiError::Failed(e),
    })?;
    let attrs = attributes.as_object().cloned().unwrap_or_default();
    let inner = runner::build_remote(&credential.provider, &attrs, None)?;
    let remote = runner::with_crypt(inner, crypt.as_object().unwrap_or(&Map::new()))?;
    let dir = RelPath::from_str_checked(path.trim_matches('/'))?;
    let mut entries = remote.list_dir(&dir, &mut |e| log::warn!("{e}"))?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let decrypted = crypt.get("filename_encryption").and_then(Value::as_bool).unwrap_or(false);
    Ok(entries
        .into_iter()
        .map(|e| {
            let name = String::from_utf8_lossy(&e.name).into_owned();
            let mut v = json!({
                "Path": if path.trim_matches('/').is_empty() { name.clone() } else { format!("{}/{}", path.trim_matches('/'), name) },
                "Name": name, "Size": e.size, "IsDir": e.is_dir(), "Enabled": true,
                "ModTime": e.mtime.map(|t| t / 1_000_000_000),
            });
            if decrypted {
                v["Decrypted"] = v["Name"].clone();
            }
            v
        })
        .collect())
}
