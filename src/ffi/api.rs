//! The store handle and the JSON operations over credentials, tasks and jobs.

use super::cloudsync_result::{self, *};
use super::{Fail, call, clear, cloudsync_error, json_arg, path_arg, put_string};
use crate::store::Store;
use crate::task::api;
use crate::task::model::{Caller, PathPolicy};
use crate::task::runner::RunnerConfig;
use serde_json::Value;
use std::ffi::c_char;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// An open configuration store: the database, its secret seed and the runner settings
/// (log directory, pool mount root). Made by [`cloudsync_store_open`], released by
/// [`cloudsync_store_free`].
///
/// Thread-safe: one handle may be used by many threads at once, for example a job run
/// on one thread and [`cloudsync_task_abort`] on another. Other processes may open the
/// same database at the same time.
pub struct cloudsync_store {
    pub(crate) store: Arc<Store>,
    pub(crate) db_path: PathBuf,
    pub(crate) settings: Mutex<Settings>,
}

#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) log_dir: Option<PathBuf>,
    pub(crate) pool_root: PathBuf,
    pub(crate) require_dataset: bool,
    pub(crate) runner: Option<RunnerConfig>,
}

impl cloudsync_store {
    pub(crate) fn policy(&self) -> PathPolicy {
        match self.settings.lock() {
            Ok(s) => PathPolicy { pool_root: s.pool_root.clone(), require_dataset: s.require_dataset },
            Err(_) => PathPolicy::default(),
        }
    }

    /// Change a setting; the runner settings are made again on the next run.
    fn change_settings(&self, f: impl FnOnce(&mut Settings)) -> Result<cloudsync_result, Fail> {
        let mut s = self.settings.lock().map_err(|_| Fail::new(CLOUDSYNC_OTHER, "store settings lock poisoned"))?;
        f(&mut s);
        s.runner = None;
        Ok(CLOUDSYNC_OK)
    }

    /// The runner settings, made once (the metadata index is opened on first use).
    pub(crate) fn runner(&self) -> Result<RunnerConfig, Fail> {
        let mut s = self.settings.lock().map_err(|_| Fail::new(CLOUDSYNC_OTHER, "store settings lock poisoned"))?;
        if s.runner.is_none() {
            let policy = PathPolicy { pool_root: s.pool_root.clone(), require_dataset: s.require_dataset };
            s.runner = Some(RunnerConfig::beside(&self.db_path, s.log_dir.clone(), policy));
        }
        Ok(s.runner.clone().expect("set above"))
    }
}

/// The C API acts for the administrator (TrueNAS's middleware has full access).
const ADMIN: Option<Caller> = None;

pub(crate) fn store_ref<'a>(s: *const cloudsync_store) -> Result<&'a cloudsync_store, Fail> {
    // SAFETY: the caller passes NULL or a handle from `cloudsync_store_open` not yet freed.
    unsafe { s.as_ref() }.ok_or_else(|| Fail::null("store"))
}

fn require_out<T>(out: *mut *mut T, what: &str) -> Result<(), Fail> {
    if out.is_null() { Err(Fail::null(what)) } else { Ok(()) }
}

/// Open (creating if needed) the store with database `db_path` and secret seed
/// `seed_path` (created with mode 0600 for a new database). Both are local paths:
/// NUL-terminated bytes, required.
///
/// Defaults: job logs in `jobs/` next to the database, the metadata index `index.db`
/// next to it, pool mount root `/mnt` (task paths must lie below it).
///
/// On success `*store_out` is a new handle to free with [`cloudsync_store_free`]. A seed
/// that does not match the database still opens: operations that need a stored secret
/// then fail with `CLOUDSYNC_PERMISSION`; nothing is deleted.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_open(
    db_path: *const c_char,
    seed_path: *const c_char,
    store_out: *mut *mut cloudsync_store,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(store_out);
        require_out(store_out, "store_out")?;
        let db = path_arg(db_path, "db_path")?;
        let seed = path_arg(seed_path, "seed_path")?;
        let store = Store::open(&db, &seed)?;
        let handle = cloudsync_store {
            store: Arc::new(store),
            db_path: db,
            settings: Mutex::new(Settings {
                log_dir: None,
                pool_root: PathBuf::from("/mnt"),
                require_dataset: true,
                runner: None,
            }),
        };
        // SAFETY: checked non-NULL above.
        unsafe { *store_out = Box::into_raw(Box::new(handle)) };
        Ok(CLOUDSYNC_OK)
    })
}

/// Set where job logs are written (a local path, NUL-terminated bytes). Takes effect
/// for jobs started afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_set_log_dir(
    store: *const cloudsync_store,
    log_dir: *const c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        let s = store_ref(store)?;
        let dir = path_arg(log_dir, "log_dir")?;
        s.change_settings(|settings| settings.log_dir = Some(dir))
    })
}

/// Set the pool mount root (default `/mnt`): task paths must lie in a dataset below it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_set_pool_root(
    store: *const cloudsync_store,
    pool_root: *const c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        let s = store_ref(store)?;
        let root = path_arg(pool_root, "pool_root")?;
        s.change_settings(|settings| settings.pool_root = root)
    })
}

/// Whether a task's local path must lie on a dataset mounted below the pool root rather
/// than on the pool root's own filesystem (default true): checked when a task is saved
/// (`The path must reside within a pool mount point`) and when its job starts. Set false
/// where storage below the pool root is plain directories (a USB disk, ext4, btrfs), as
/// the CLI's and the daemon's `--plain-directories` do.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_set_require_dataset(
    store: *const cloudsync_store,
    require: bool,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || store_ref(store)?.change_settings(|settings| settings.require_dataset = require))
}

/// Whether stored secrets can be decrypted (the seed matches the database). False for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_secrets_available(store: *const cloudsync_store) -> bool {
    super::ffi_guard(false, || store_ref(store).is_ok_and(|s| s.store.secrets_available()))
}

/// Close a store handle. NULL is accepted and ignored. No other thread may be using the
/// handle (a job still running on it must have returned first).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_store_free(store: *mut cloudsync_store) {
    super::ffi_guard((), || {
        if !store.is_null() {
            // SAFETY: `store` came from `Box::into_raw` in `cloudsync_store_open`.
            drop(unsafe { Box::from_raw(store) });
        }
    })
}

/// The shape of every JSON operation: store, maybe an id, maybe a JSON body, one JSON out.
fn json_op(
    store: *const cloudsync_store,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
    f: impl FnOnce(&cloudsync_store) -> Result<Value, Fail>,
) -> cloudsync_result {
    call(error_out, || {
        clear(json_out);
        let s = store_ref(store)?;
        require_out(json_out, "json_out")?;
        let v = f(s)?;
        put_string(json_out, v.to_string());
        Ok(CLOUDSYNC_OK)
    })
}

fn id_op(
    store: *const cloudsync_store,
    error_out: *mut *mut cloudsync_error,
    f: impl FnOnce(&cloudsync_store) -> Result<(), Fail>,
) -> cloudsync_result {
    call(error_out, || {
        f(store_ref(store)?)?;
        Ok(CLOUDSYNC_OK)
    })
}

fn bool_op(
    store: *const cloudsync_store,
    flag_out: *mut bool,
    error_out: *mut *mut cloudsync_error,
    f: impl FnOnce(&cloudsync_store) -> Result<bool, Fail>,
) -> cloudsync_result {
    call(error_out, || {
        if !flag_out.is_null() {
            // SAFETY: checked non-NULL; the caller passes a valid `bool *`.
            unsafe { *flag_out = false };
        }
        let flag = f(store_ref(store)?)?;
        if !flag_out.is_null() {
            // SAFETY: checked non-NULL; the caller passes a valid `bool *`.
            unsafe { *flag_out = flag };
        }
        Ok(CLOUDSYNC_OK)
    })
}

// ---- credentials

/// Create a credential from `body_json`: `{"name": ..., "provider": {"type": "S3", ...}}`
/// with the TrueNAS field names. On success `*json_out` is the stored entry with its
/// `id` (secrets included: the caller just gave them); free it with
/// `cloudsync_string_free`. Validation failures give `CLOUDSYNC_INVALID_ARGUMENT` with
/// the field errors in the error's details.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_create(
    store: *const cloudsync_store,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(api::credential_create(&s.store, &json_arg(body_json, "body_json")?)?))
}

/// Update credential `id` with the fields of `body_json` (`name`, and/or `provider`,
/// which replaces the provider object whole). `*json_out` as for create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_update(
    store: *const cloudsync_store,
    id: i64,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::credential_update(&s.store, id, &json_arg(body_json, "body_json")?)?)
    })
}

/// Delete credential `id`. Refused (`CLOUDSYNC_INVALID_ARGUMENT`) while a task uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_delete(
    store: *const cloudsync_store,
    id: i64,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    id_op(store, error_out, |s| Ok(api::credential_delete(&s.store, id)?))
}

/// One credential as JSON (`id`, `name`, `provider`); secret fields are replaced by a
/// placeholder unless `reveal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_get(
    store: *const cloudsync_store,
    id: i64,
    reveal: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(api::credential_get(&s.store, id, reveal)?))
}

/// All credentials as a JSON array (secrets redacted unless `reveal`). A credential whose
/// secrets cannot be decrypted is listed with an `unusable` reason.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_list(
    store: *const cloudsync_store,
    reveal: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(Value::from(api::credential_list(&s.store, reveal)?)))
}

/// Add an SSH key pair to the keychain. `body_json` is TrueNAS's `keychaincredential`
/// body: `{"name": ..., "type": "SSH_KEY_PAIR", "attributes": {"private_key": ...,
/// "public_key": ...}}` (either key alone, or both, which must belong together). The
/// private key is stored encrypted; `*json_out` is the stored entry with the private key
/// redacted. Free it with `cloudsync_string_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_keychain_create(
    store: *const cloudsync_store,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(api::keychain_create(&s.store, &json_arg(body_json, "body_json")?)?))
}

/// A new Ed25519 key pair, not stored: `*json_out` is `{"private_key": OpenSSH text,
/// "public_key": line}` (TrueNAS's `keychaincredential.generate_ssh_key_pair`). Needs no
/// store; `store` may be NULL. Free `*json_out` with `cloudsync_string_free` and wipe it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_keychain_generate(
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(json_out);
        require_out(json_out, "json_out")?;
        put_string(json_out, api::keychain_generate()?.to_string());
        Ok(CLOUDSYNC_OK)
    })
}

/// All keychain entries as a JSON array of `{id, name, type, attributes}`; private keys
/// are replaced by a placeholder unless `reveal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_keychain_list(
    store: *const cloudsync_store,
    reveal: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(Value::from(api::keychain_list(&s.store, reveal)?)))
}

/// Delete keychain entry `id`. Refused (`CLOUDSYNC_INVALID_ARGUMENT`) while an SFTP
/// credential uses it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_keychain_delete(
    store: *const cloudsync_store,
    id: i64,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    id_op(store, error_out, |s| Ok(api::keychain_delete(&s.store, id)?))
}

/// The providers this library knows (TrueNAS's `cloudsync.providers`): `*json_out` is a
/// JSON array of `{name, title, credentials_schema, credentials_oauth, buckets,
/// bucket_title, task_schema}` objects, in TrueNAS's order; free it with
/// `cloudsync_string_free`. Needs no store, makes no network call. `error_out` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_providers(
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(json_out);
        require_out(json_out, "json_out")?;
        put_string(json_out, crate::task::providers::providers_listing().to_string());
        Ok(CLOUDSYNC_OK)
    })
}

/// Verify a provider object (`{"type": ..., ...}`, not stored) by listing what it can
/// see, with a 15 s connect and 30 s I/O timeout. `*json_out` is `{"valid": bool,
/// "error": text|null, "excerpt": text|null}`; an unreachable or rejecting remote is a
/// successful call with `valid` false. `store` may be NULL; an SFTP provider whose
/// `private_key` names a keychain key pair needs it (the key is read from its keychain).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_verify(
    store: *const cloudsync_store,
    provider_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(json_out);
        require_out(json_out, "json_out")?;
        let store = (!store.is_null()).then(|| store_ref(store)).transpose()?;
        let v = api::credential_verify_in(store.map(|s| &*s.store), &json_arg(provider_json, "provider_json")?);
        put_string(json_out, v.to_string());
        Ok(CLOUDSYNC_OK)
    })
}

/// Verify stored credential `id`, as [`cloudsync_credential_verify`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_credential_verify_id(
    store: *const cloudsync_store,
    id: i64,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        let c = s.store.get_credential(id)?;
        Ok(api::credential_verify_stored(&s.store, &c))
    })
}

// ---- tasks

/// Create a task from `body_json` with the TrueNAS field names (`description`, `path`,
/// `credentials`, `attributes`, `schedule`, `direction`, `transfer_mode`, ...). Missing
/// fields take their defaults. No network calls. `*json_out` is the stored task with its
/// `id`, the credential entry and `job` (null).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_create(
    store: *const cloudsync_store,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::task_create(&s.store, &json_arg(body_json, "body_json")?, ADMIN, &s.policy())?)
    })
}

/// Update task `id`: a shallow merge of `body_json` over the stored task, then the full
/// validation. `*json_out` as for create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_update(
    store: *const cloudsync_store,
    id: i64,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::task_update(&s.store, id, &json_arg(body_json, "body_json")?, ADMIN, &s.policy())?)
    })
}

/// Delete task `id`; a running job of it is aborted first (waiting up to 15 s).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_delete(
    store: *const cloudsync_store,
    id: i64,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    id_op(store, error_out, |s| Ok(api::task_delete(&s.store, id)?))
}

/// One task as JSON, with its credential entry and last `job`; `encryption_password` and
/// `encryption_salt` are redacted unless `reveal`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_get(
    store: *const cloudsync_store,
    id: i64,
    reveal: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(api::task_get(&s.store, id, reveal)?))
}

/// All tasks as a JSON array (as [`cloudsync_task_get`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_list(
    store: *const cloudsync_store,
    reveal: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(Value::from(api::task_list(&s.store, reveal)?)))
}

/// Validate a task body as create would, storing nothing and making no network call.
/// `*json_out` is the normalized body with every default filled in.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_validate(
    store: *const cloudsync_store,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::task_validate(&s.store, &json_arg(body_json, "body_json")?, ADMIN, &s.policy())?)
    })
}

/// `verify_task`: validate `body_json` as create would, then make the remote checks
/// (the location can be listed; PULL: the folder exists and is a directory; encrypted:
/// the names decrypt) with a 15 s connect and 30 s I/O timeout. `*json_out` is
/// `{"valid": bool, "errors": [[field, message], ...], "excerpt": text|null}`; a remote
/// that fails is a successful call with `valid` false. Validation failures give
/// `CLOUDSYNC_INVALID_ARGUMENT`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_verify(
    store: *const cloudsync_store,
    body_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::task_verify(&s.store, &json_arg(body_json, "body_json")?, ADMIN, &s.policy())?)
    })
}

/// Create the reversed, disabled restore task of task `id`. `args_json` is
/// `{"description": ..., "transfer_mode": "SYNC"|"COPY", "path": ...}`. `*json_out` is
/// the new task. Nothing runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_restore(
    store: *const cloudsync_store,
    id: i64,
    args_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::task_restore(&s.store, id, &json_arg(args_json, "args_json")?, ADMIN, &s.policy())?)
    })
}

/// Ask the running or waiting job of task `id` to abort. Works from any thread or
/// process: the job notices within about a second, stops its transfers and scripts, and
/// ends `ABORTED`. `*aborted_out` (may be NULL) tells whether there was a job to abort.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_task_abort(
    store: *const cloudsync_store,
    id: i64,
    aborted_out: *mut bool,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    bool_op(store, aborted_out, error_out, |s| Ok(api::task_abort(&s.store, id)?))
}

// ---- jobs

/// Job `job_id` as JSON: `id`, `task_id`, `state` (WAITING, RUNNING, SUCCESS, FAILED,
/// ABORTED), `dry_run`, `time_created`/`time_started`/`time_finished` (Unix seconds),
/// `progress` `{percent, description}`, `error`, `logs_path`, `logs_excerpt`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_job_get(
    store: *const cloudsync_store,
    job_id: i64,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(api::job_get(&s.store, job_id)?))
}

/// The newest `limit` jobs of task `task_id` (all tasks when `task_id` <= 0), newest
/// first, as a JSON array of job objects.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_job_list(
    store: *const cloudsync_store,
    task_id: i64,
    limit: u32,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(Value::from(api::job_list(&s.store, (task_id > 0).then_some(task_id), limit)?))
    })
}

/// The whole log of job `job_id` as text (`*text_out`), or its excerpt when the log file
/// is gone.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_job_log(
    store: *const cloudsync_store,
    job_id: i64,
    text_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    call(error_out, || {
        clear(text_out);
        let s = store_ref(store)?;
        require_out(text_out, "text_out")?;
        put_string(text_out, api::job_log(&s.store, job_id)?);
        Ok(CLOUDSYNC_OK)
    })
}

/// Ask job `job_id` to abort (from any thread or process). `*aborted_out` (may be
/// NULL) tells whether the job was still live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_job_abort(
    store: *const cloudsync_store,
    job_id: i64,
    aborted_out: *mut bool,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    bool_op(store, aborted_out, error_out, |s| Ok(api::job_abort(&s.store, job_id)?))
}

// ---- configuration

/// The whole configuration as JSON (`*json_out`): credentials and tasks with their
/// secrets still encrypted; with `with_seed` the secret seed is included too, so that
/// the export alone decrypts everything (keep such an export safe).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_config_export(
    store: *const cloudsync_store,
    with_seed: bool,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| Ok(crate::task::api::config_export(&s.store, with_seed)?))
}

/// Add the credentials and tasks of an export (`export_json`, from
/// [`cloudsync_config_export`]) to this store. Secrets are read with the seed inside the
/// export or with this store's seed; otherwise credentials come in unusable and
/// encrypted tasks disabled, as the report in `*json_out` says.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cloudsync_config_import(
    store: *const cloudsync_store,
    export_json: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut cloudsync_error,
) -> cloudsync_result {
    json_op(store, json_out, error_out, |s| {
        Ok(api::config_import(&s.store, &json_arg(export_json, "export_json")?, &s.policy())?)
    })
}
