//! The control protocol without the socket: one line of JSON in, one JSON answer out
//! (docs/DAEMON.md). Method names follow TrueNAS (truenas-cloudsync.md §4); the work is
//! done by `cloudsync::task::api`, shared with the CLI and the C API.
//!
//! Requests are `{"id": any, "method": "...", "params": [...]}`; answers are
//! `{"id": ..., "result": ...}` or `{"id": ..., "error": {"code", "message", "errors"}}`.
//! Secrets are never revealed here, whoever asks. [`call`] blocks (database, network for
//! listings): the socket layer runs it on a blocking thread.

use crate::jobs::{Jobs, SHUTTING_DOWN};
use cloudsync::store::Store;
use cloudsync::task::api::{self, ApiError};
use cloudsync::task::model::{Caller, PathPolicy};
use cloudsync::task::runner;
use cloudsync::{Error, Kind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// The longest request line accepted (without its newline).
pub const MAX_LINE: usize = 1 << 20;

/// How many jobs `core.get_jobs` returns at most, newest first.
const JOB_LIST_LIMIT: u32 = 100;

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub id: Value,
    pub method: String,
    pub params: Vec<Value>,
}

/// An error answer: an errno-style code, a message, and for validation the list of
/// `(field, message)` pairs (TrueNAS's ValidationErrors).
#[derive(Debug)]
pub struct RpcError {
    pub code: &'static str,
    pub message: String,
    pub errors: Vec<(String, String)>,
}

impl RpcError {
    pub fn new(code: &'static str, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into(), errors: Vec::new() }
    }

    fn invalid(message: impl Into<String>) -> RpcError {
        RpcError::new("EINVAL", message)
    }

    /// The `error` object of an answer.
    pub fn to_value(&self) -> Value {
        let errors: Vec<Value> = self.errors.iter().map(|(k, m)| json!([k, m])).collect();
        json!({"code": self.code, "message": self.message, "errors": errors})
    }
}

impl From<Error> for RpcError {
    fn from(e: Error) -> RpcError {
        let code = match e.kind() {
            Kind::NotFound | Kind::DirNotFound => "ENOENT",
            Kind::Usage | Kind::BadName => "EINVAL",
            Kind::Permission => "EACCES",
            Kind::Unsupported => "ENOTSUP",
            Kind::Cancelled => "ECANCELED",
            _ if e.message() == SHUTTING_DOWN => "ESHUTDOWN",
            _ => "EFAULT",
        };
        RpcError::new(code, e.to_string())
    }
}

impl From<ApiError> for RpcError {
    fn from(e: ApiError) -> RpcError {
        match e {
            ApiError::Failed(e) => e.into(),
            ApiError::Validation(errors) => {
                let message = errors.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; ");
                RpcError { code: "EINVAL", message, errors }
            }
        }
    }
}

/// The answer to request `id`.
pub fn response(id: Value, result: Result<Value, RpcError>) -> Value {
    match result {
        Ok(v) => json!({"id": id, "result": v}),
        Err(e) => json!({"id": id, "error": e.to_value()}),
    }
}

/// Parse one request line; a bad one gives its error answer (with the request's id when
/// that much could be read).
pub fn parse(line: &[u8]) -> Result<Request, Value> {
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| response(Value::Null, Err(RpcError::invalid(format!("The request is not valid JSON: {e}")))))?;
    let Value::Object(mut o) = v else {
        return Err(response(Value::Null, Err(RpcError::invalid("The request must be a JSON object"))));
    };
    let id = o.remove("id").unwrap_or(Value::Null);
    let method = match o.remove("method") {
        Some(Value::String(m)) => m,
        _ => return Err(response(id, Err(RpcError::invalid("The request needs a \"method\" string")))),
    };
    let params = match o.remove("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(response(id, Err(RpcError::invalid("\"params\" must be a list")))),
    };
    if let Some(k) = o.keys().next() {
        return Err(response(id, Err(RpcError::invalid(format!("Unknown request key {k:?}")))));
    }
    Ok(Request { id, method, params })
}

/// Who is asking, from the socket's peer credentials.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: u32,
    /// root or the daemon's own user: may set pre- and post-scripts (which run as the
    /// daemon's user). Members of the configured group may not.
    pub full_admin: bool,
}

/// What the requests work on.
pub struct Context {
    pub store: Arc<Store>,
    pub jobs: Arc<Jobs>,
    pub policy: PathPolicy,
    /// The database path (as opened), for `core.info`.
    pub db: PathBuf,
    /// The scheduler's next fire per enabled task (RFC 3339, local time).
    pub next_runs: Arc<Mutex<BTreeMap<i64, String>>>,
    /// Asks the daemon to re-read the schedule.
    pub reload: Arc<Notify>,
}

impl Context {
    fn next_run(&self, task_id: i64) -> Value {
        self.next_runs.lock().ok().and_then(|m| m.get(&task_id).cloned()).map_or(Value::Null, Value::String)
    }

    fn with_next_run(&self, mut task: Value) -> Value {
        if let Some(id) = task.get("id").and_then(Value::as_i64) {
            task["next_run"] = self.next_run(id);
        }
        task
    }

    /// A task as queried: redacted, with `next_run`.
    fn task(&self, id: i64) -> Result<Value, RpcError> {
        Ok(self.with_next_run(api::task_get(&self.store, id, false)?))
    }

    fn changed(&self) {
        self.reload.notify_one();
    }
}

/// The parameters of one call, with typed accessors whose errors name the parameter.
struct Params<'a> {
    method: &'a str,
    list: &'a [Value],
}

impl Params<'_> {
    fn at_most(&self, n: usize) -> Result<(), RpcError> {
        if self.list.len() > n {
            return Err(RpcError::invalid(format!(
                "{} takes at most {n} parameter(s), got {}",
                self.method,
                self.list.len()
            )));
        }
        Ok(())
    }

    fn value(&self, i: usize, name: &str) -> Result<&Value, RpcError> {
        self.list
            .get(i)
            .ok_or_else(|| RpcError::invalid(format!("{}: parameter {} ({name}) is required", self.method, i + 1)))
    }

    fn int(&self, i: usize, name: &str) -> Result<i64, RpcError> {
        self.value(i, name)?.as_i64().ok_or_else(|| {
            RpcError::invalid(format!("{}: parameter {} ({name}) must be an integer", self.method, i + 1))
        })
    }

    fn opt_int(&self, i: usize, name: &str) -> Result<Option<i64>, RpcError> {
        match self.list.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.int(i, name).map(Some),
        }
    }

    fn str(&self, i: usize, name: &str) -> Result<&str, RpcError> {
        self.value(i, name)?
            .as_str()
            .ok_or_else(|| RpcError::invalid(format!("{}: parameter {} ({name}) must be a string", self.method, i + 1)))
    }

    fn object(&self, i: usize, name: &str) -> Result<&Value, RpcError> {
        let v = self.value(i, name)?;
        if !v.is_object() {
            return Err(RpcError::invalid(format!("{}: parameter {} ({name}) must be an object", self.method, i + 1)));
        }
        Ok(v)
    }
}

/// The methods, for `core.methods` and the unknown-method error.
pub const METHODS: &[&str] = &[
    "core.ping",
    "core.info",
    "core.methods",
    "core.reload",
    "core.schedule",
    "core.get_jobs",
    "core.job",
    "core.job_abort",
    "cloudsync.query",
    "cloudsync.providers",
    "cloudsync.create",
    "cloudsync.update",
    "cloudsync.delete",
    "cloudsync.sync",
    "cloudsync.abort",
    "cloudsync.restore",
    "cloudsync.list_buckets",
    "cloudsync.create_bucket",
    "cloudsync.list_directory",
    "cloudsync.credentials.query",
    "cloudsync.credentials.create",
    "cloudsync.credentials.update",
    "cloudsync.credentials.delete",
    "cloudsync.credentials.verify",
    "keychaincredential.query",
    "keychaincredential.create",
    "keychaincredential.delete",
    "keychaincredential.generate_ssh_key_pair",
];

/// The methods that change something.
const MUTATING: &[&str] = &[
    "core.job_abort",
    "cloudsync.create",
    "cloudsync.update",
    "cloudsync.delete",
    "cloudsync.sync",
    "cloudsync.abort",
    "cloudsync.restore",
    "cloudsync.credentials.create",
    "cloudsync.credentials.update",
    "cloudsync.credentials.delete",
    "keychaincredential.create",
    "keychaincredential.delete",
];

/// Carry out one request for `peer`.
pub fn call(ctx: &Context, peer: &Peer, method: &str, params: &[Value]) -> Result<Value, RpcError> {
    let p = Params { method, list: params };
    let store = ctx.store.as_ref();
    let caller = Some(Caller { full_admin: peer.full_admin });
    match method {
        "core.ping" => {
            p.at_most(0)?;
            Ok(json!("pong"))
        }
        "cloudsync.providers" => {
            p.at_most(0)?;
            Ok(cloudsync::task::providers::providers_listing())
        }
        "core.info" => {
            p.at_most(0)?;
            Ok(json!({
                "version": cloudsync::VERSION,
                "pid": std::process::id(),
                "db": ctx.db.to_string_lossy(),
                "scheduled": ctx.next_runs.lock().map(|m| m.len()).unwrap_or(0),
                "jobs": ctx.jobs.live(),
            }))
        }
        "core.methods" => {
            p.at_most(0)?;
            Ok(json!(METHODS))
        }
        "core.reload" => {
            p.at_most(0)?;
            ctx.changed();
            Ok(json!(true))
        }
        "core.schedule" => {
            p.at_most(0)?;
            let m = ctx.next_runs.lock().map_err(|_| RpcError::new("EFAULT", "the schedule is unavailable"))?;
            Ok(Value::Array(m.iter().map(|(id, at)| json!({"id": id, "next_run": at})).collect()))
        }
        "core.get_jobs" => {
            p.at_most(1)?;
            Ok(Value::Array(api::job_list(store, p.opt_int(0, "task_id")?, JOB_LIST_LIMIT)?))
        }
        "core.job" => {
            p.at_most(1)?;
            Ok(api::job_get(store, p.int(0, "job_id")?)?)
        }
        "core.job_abort" => {
            p.at_most(1)?;
            let job = p.int(0, "job_id")?;
            let aborted = api::job_abort(store, job)?;
            if aborted {
                ctx.jobs.cancel_job(job);
            }
            Ok(json!(aborted))
        }
        "cloudsync.query" => {
            p.at_most(1)?;
            match p.opt_int(0, "id")? {
                Some(id) => ctx.task(id),
                None => {
                    let list = api::task_list(store, false)?;
                    Ok(Value::Array(list.into_iter().map(|t| ctx.with_next_run(t)).collect()))
                }
            }
        }
        "cloudsync.create" => {
            p.at_most(1)?;
            let created = api::task_create(store, p.object(0, "task")?, caller, &ctx.policy)?;
            ctx.changed();
            ctx.task(entry_id(&created)?)
        }
        "cloudsync.update" => {
            p.at_most(2)?;
            let id = p.int(0, "id")?;
            api::task_update(store, id, p.object(1, "task")?, caller, &ctx.policy)?;
            ctx.changed();
            ctx.task(id)
        }
        "cloudsync.delete" => {
            p.at_most(1)?;
            let id = p.int(0, "id")?;
            ctx.jobs.cancel_task(id);
            api::task_delete(store, id)?;
            ctx.changed();
            Ok(json!(true))
        }
        "cloudsync.sync" => {
            p.at_most(2)?;
            let id = p.int(0, "id")?;
            let dry_run = match p.list.get(1) {
                None | Some(Value::Null) => false,
                Some(_) => sync_dry_run(p.object(1, "options")?)?,
            };
            Ok(json!(ctx.jobs.start(id, dry_run)?.job_id()))
        }
        "cloudsync.abort" => {
            p.at_most(1)?;
            let id = p.int(0, "id")?;
            let aborted = api::task_abort(store, id)?;
            ctx.jobs.cancel_task(id);
            Ok(json!(aborted))
        }
        "cloudsync.restore" => {
            p.at_most(2)?;
            let restored = api::task_restore(store, p.int(0, "id")?, p.object(1, "options")?, caller, &ctx.policy)?;
            ctx.changed();
            ctx.task(entry_id(&restored)?)
        }
        "cloudsync.list_buckets" => {
            p.at_most(1)?;
            let id = p.int(0, "credentials")?;
            let credential = store.get_credential(id).map_err(|e| match e.kind() {
                Kind::NotFound => validation("cloud_sync_list_buckets.credentials", "Invalid credentials"),
                _ => e.into(),
            })?;
            let buckets = runner::list_buckets(credential.usable()?)?;
            Ok(Value::Array(
                buckets
                    .into_iter()
                    .map(|(name, created)| {
                        json!({"Path": name, "Name": name, "Size": -1, "MimeType": "inode/directory",
                               "ModTime": created, "IsDir": true, "IsBucket": true, "Enabled": true})
                    })
                    .collect(),
            ))
        }
        "cloudsync.create_bucket" => {
            p.at_most(2)?;
            let id = p.int(0, "credentials")?;
            let name = p.str(1, "name")?;
            let credential = store.get_credential(id).map_err(|e| match e.kind() {
                Kind::NotFound => validation("cloud_sync_create_bucket.credentials", "Invalid credentials"),
                _ => e.into(),
            })?;
            runner::create_bucket(credential.usable()?, name)?;
            Ok(Value::Null)
        }
        "cloudsync.list_directory" => {
            p.at_most(1)?;
            let args = p.object(0, "options")?;
            let Some(credentials) = args.get("credentials").and_then(Value::as_i64) else {
                return Err(validation("cloud_sync_list_directory.credentials", "Field required"));
            };
            let attributes = args.get("attributes").cloned().unwrap_or_else(|| json!({}));
            let path = args.get("path").and_then(Value::as_str).unwrap_or("");
            Ok(Value::Array(api::list_directory(store, credentials, &attributes, args, path)?))
        }
        "cloudsync.credentials.query" => {
            p.at_most(1)?;
            match p.opt_int(0, "id")? {
                Some(id) => Ok(api::credential_get(store, id, false)?),
                None => Ok(Value::Array(api::credential_list(store, false)?)),
            }
        }
        "cloudsync.credentials.create" => {
            p.at_most(1)?;
            let created = api::credential_create(store, p.object(0, "credential")?)?;
            Ok(api::credential_get(store, entry_id(&created)?, false)?)
        }
        "cloudsync.credentials.update" => {
            p.at_most(2)?;
            let id = p.int(0, "id")?;
            api::credential_update(store, id, p.object(1, "credential")?)?;
            Ok(api::credential_get(store, id, false)?)
        }
        "cloudsync.credentials.delete" => {
            p.at_most(1)?;
            api::credential_delete(store, p.int(0, "id")?)?;
            Ok(json!(true))
        }
        "cloudsync.credentials.verify" => {
            // TrueNAS passes the provider object; a stored credential's id is accepted too.
            p.at_most(1)?;
            let provider = match p.value(0, "provider")? {
                Value::Number(_) => {
                    let c = store.get_credential(p.int(0, "id")?)?;
                    return Ok(api::credential_verify_stored(store, &c));
                }
                v @ Value::Object(_) => v.clone(),
                _ => {
                    return Err(RpcError::invalid(
                        "cloudsync.credentials.verify: parameter 1 must be a provider object or a credential id",
                    ));
                }
            };
            // An SFTP provider names its key pair by id: the key is the store's.
            Ok(api::credential_verify_in(Some(store), &provider))
        }
        // TrueNAS's keychain, SSH key pairs only; private keys are never sent back.
        "keychaincredential.query" => {
            p.at_most(1)?;
            match p.opt_int(0, "id")? {
                Some(id) => Ok(api::keychain_get(store, id, false)?),
                None => Ok(Value::Array(api::keychain_list(store, false)?)),
            }
        }
        "keychaincredential.create" => {
            p.at_most(1)?;
            Ok(api::keychain_create(store, p.object(0, "keychain_credential")?)?)
        }
        "keychaincredential.delete" => {
            p.at_most(1)?;
            api::keychain_delete(store, p.int(0, "id")?)?;
            Ok(json!(true))
        }
        "keychaincredential.generate_ssh_key_pair" => {
            p.at_most(0)?;
            Ok(api::keychain_generate()?)
        }
        other => Err(RpcError::new("ENOMETHOD", format!("Unknown method {other:?}"))),
    }
}

/// The `dry_run` of `cloudsync.sync`'s options object (the only option).
fn sync_dry_run(options: &Value) -> Result<bool, RpcError> {
    let mut dry_run = false;
    for (k, v) in options.as_object().into_iter().flatten() {
        match (k.as_str(), v) {
            ("dry_run", Value::Bool(b)) => dry_run = *b,
            ("dry_run", _) => {
                return Err(validation("cloud_sync_sync.options.dry_run", "Input should be a valid boolean"));
            }
            (k, _) => {
                return Err(validation(&format!("cloud_sync_sync.options.{k}"), "Extra inputs are not permitted"));
            }
        }
    }
    Ok(dry_run)
}

fn validation(key: &str, message: &str) -> RpcError {
    ApiError::Validation(vec![(key.to_string(), message.to_string())]).into()
}

fn entry_id(entry: &Value) -> Result<i64, RpcError> {
    entry.get("id").and_then(Value::as_i64).ok_or_else(|| RpcError::new("EFAULT", "the stored entry has no id"))
}

/// One whole request line to its answer (parse, then [`call`]).
pub fn handle_line(ctx: &Context, peer: &Peer, line: &[u8]) -> Value {
    match parse(line) {
        Ok(req) => {
            let result = call(ctx, peer, &req.method, &req.params);
            // An audit trail of changes: who, what, and whether it worked (never the
            // parameters, which can hold secrets).
            if MUTATING.contains(&req.method.as_str()) {
                match &result {
                    Ok(_) => log::info!("uid {}: {} done", peer.uid, req.method),
                    Err(e) => log::info!("uid {}: {} refused: {}", peer.uid, req.method, e.code),
                }
            }
            response(req.id, result)
        }
        Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudsync::task::runner::RunnerConfig;

    const ROOT: Peer = Peer { uid: 0, full_admin: true };
    const MEMBER: Peer = Peer { uid: 1000, full_admin: false };

    struct Fixture {
        dir: tempfile::TempDir,
        _runtime: tokio::runtime::Runtime,
        ctx: Context,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db"), &dir.path().join("seed")).unwrap());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let policy = PathPolicy { pool_root: dir.path().join("mnt"), require_dataset: false };
        std::fs::create_dir_all(dir.path().join("mnt/tank/data")).unwrap();
        let cfg = RunnerConfig { log_dir: dir.path().join("logs"), index: None, policy: policy.clone() };
        let jobs = Jobs::new(store.clone(), Box::new(move || cfg.clone()), runtime.handle().clone());
        let ctx = Context {
            store,
            jobs,
            policy,
            db: dir.path().join("db"),
            next_runs: Arc::default(),
            reload: Arc::new(Notify::new()),
        };
        Fixture { dir, _runtime: runtime, ctx }
    }

    fn ask(ctx: &Context, peer: &Peer, request: Value) -> Value {
        handle_line(ctx, peer, request.to_string().as_bytes())
    }

    fn code(answer: &Value) -> &str {
        answer["error"]["code"].as_str().unwrap_or_else(|| panic!("not an error: {answer}"))
    }

    #[test]
    fn bad_requests_get_error_objects() {
        let f = fixture();
        let raw = |line: &[u8]| handle_line(&f.ctx, &ROOT, line);
        assert_eq!(code(&raw(b"not json")), "EINVAL");
        assert_eq!(code(&raw(b"\xff\xfe\x00")), "EINVAL");
        assert_eq!(code(&raw(b"[1, 2]")), "EINVAL");
        assert_eq!(raw(b"{\"id\": 9}")["id"], 9, "the id is echoed when it could be read");
        assert_eq!(code(&raw(b"{\"id\": 9}")), "EINVAL");
        assert_eq!(code(&raw(br#"{"id": 1, "method": "core.ping", "params": {"a": 1}}"#)), "EINVAL");
        assert_eq!(code(&raw(br#"{"id": 1, "method": "core.ping", "extra": true}"#)), "EINVAL");
        let unknown = ask(&f.ctx, &ROOT, json!({"id": "x", "method": "system.reboot"}));
        assert_eq!((code(&unknown), &unknown["id"]), ("ENOMETHOD", &json!("x")));
        for (method, params) in [
            ("core.ping", json!([1])),
            ("cloudsync.query", json!(["1"])),
            ("cloudsync.update", json!([1])),
            ("cloudsync.sync", json!([1.5])),
            ("cloudsync.sync", json!([1, {"dry_run": "yes"}])),
            ("cloudsync.sync", json!([1, {"force": true}])),
            ("core.job", json!([])),
            ("cloudsync.credentials.verify", json!(["S3"])),
        ] {
            let a = ask(&f.ctx, &ROOT, json!({"id": 1, "method": method, "params": params}));
            assert_eq!(code(&a), "EINVAL", "{method} {params}: {a}");
            assert!(!a["error"]["message"].as_str().unwrap().is_empty());
        }
        assert_eq!(ask(&f.ctx, &ROOT, json!({"id": 2, "method": "core.ping"})), json!({"id": 2, "result": "pong"}));
    }

    #[test]
    fn tasks_and_credentials_round_trip_without_revealing_secrets() {
        let f = fixture();
        let call =
            |method: &str, params: Value| ask(&f.ctx, &ROOT, json!({"id": 1, "method": method, "params": params}));
        let cred = call(
            "cloudsync.credentials.create",
            json!([{"name": "s3", "provider": {"type": "S3", "access_key_id": "AKIA-1", "secret_access_key": "SECRET-2", "endpoint": "http://127.0.0.1:9"}}]),
        );
        let cred_id = cred["result"]["id"].as_i64().unwrap_or_else(|| panic!("{cred}"));
        assert!(!cred.to_string().contains("SECRET-2") && !cred.to_string().contains("AKIA-1"), "{cred}");
        let path = f.dir.path().join("mnt/tank/data");
        let task = call(
            "cloudsync.create",
            json!([{"path": path, "credentials": cred_id, "attributes": {"bucket": "b", "folder": "f"},
                    "direction": "PUSH", "transfer_mode": "SYNC", "encryption": true, "encryption_password": "PW-3",
                    "schedule": {"minute": "30", "hour": "2"}}]),
        );
        let id = task["result"]["id"].as_i64().unwrap_or_else(|| panic!("{task}"));
        assert_eq!(task["result"]["encryption_password"], "********");
        assert_eq!(task["result"]["credentials"]["provider"]["secret_access_key"], "********");
        assert_eq!(task["result"]["next_run"], Value::Null, "not scheduled yet");
        f.ctx.next_runs.lock().unwrap().insert(id, "2026-05-02T02:30:00+00:00".into());
        let listed = call("cloudsync.query", json!([]));
        assert_eq!(listed["result"][0]["next_run"], "2026-05-02T02:30:00+00:00");
        let providers = call("cloudsync.providers", json!([]));
        assert_eq!(providers["result"], cloudsync::task::providers::providers_listing(), "{providers}");
        assert!(providers["result"].as_array().is_some_and(|p| p.iter().any(|p| p["name"] == "B2")));
        assert!(!listed.to_string().contains("PW-3") && !listed.to_string().contains("SECRET-2"));
        let updated = call("cloudsync.update", json!([id, {"description": "nightly"}]));
        assert_eq!(updated["result"]["description"], "nightly", "{updated}");
        assert_eq!(
            call("core.schedule", json!([]))["result"],
            json!([{"id": id, "next_run": "2026-05-02T02:30:00+00:00"}])
        );
        // A run of a task that does not exist, a job that does not exist.
        assert_eq!(code(&call("cloudsync.sync", json!([id + 100]))), "ENOENT");
        assert_eq!(code(&call("core.job", json!([12345]))), "ENOENT");
        assert_eq!(call("cloudsync.abort", json!([id]))["result"], false, "no live job");
        // The credential is in use.
        assert_eq!(code(&call("cloudsync.credentials.delete", json!([cred_id]))), "EINVAL");
        assert_eq!(call("cloudsync.delete", json!([id]))["result"], true);
        assert_eq!(code(&call("cloudsync.query", json!([id]))), "ENOENT");
        assert_eq!(call("cloudsync.credentials.delete", json!([cred_id]))["result"], true);
    }

    #[test]
    fn validation_errors_carry_the_field_list_and_members_may_not_set_scripts() {
        let f = fixture();
        let bad =
            ask(&f.ctx, &ROOT, json!({"id": 1, "method": "cloudsync.create", "params": [{"path": "/elsewhere"}]}));
        assert_eq!(code(&bad), "EINVAL");
        let fields: Vec<&str> =
            bad["error"]["errors"].as_array().unwrap().iter().filter_map(|e| e[0].as_str()).collect();
        assert!(fields.contains(&"cloud_sync_create.direction"), "{bad}");
        let cred = ask(
            &f.ctx,
            &ROOT,
            json!({"id": 1, "method": "cloudsync.credentials.create", "params": [{"name": "s3", "provider": {"type": "S3", "access_key_id": "a", "secret_access_key": "b"}}]}),
        );
        let body = json!({"path": f.dir.path().join("mnt/tank/data"), "credentials": cred["result"]["id"],
                          "attributes": {"bucket": "b", "folder": ""}, "direction": "PUSH", "transfer_mode": "COPY",
                          "pre_script": "echo hi"});
        let member = ask(&f.ctx, &MEMBER, json!({"id": 1, "method": "cloudsync.create", "params": [body]}));
        assert_eq!(code(&member), "EINVAL");
        assert_eq!(member["error"]["errors"][0][0], "cloud_sync_create.pre_script", "{member}");
        let admin = ask(&f.ctx, &ROOT, json!({"id": 1, "method": "cloudsync.create", "params": [body]}));
        assert!(admin["result"]["id"].is_i64(), "{admin}");
    }
}
