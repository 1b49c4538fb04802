//! The Cloud Sync task model (truenas-cloudsync.md §1–§3, §11): defaults, strict schema
//! checks, the validation rules in TrueNAS's order with their exact texts, update by
//! shallow merge, and restore.
//!
//! Validation never touches the network (fix F9): the remote checks (V20–V21, S3 region)
//! run at job start and in an explicit `verify_task`. What needs ZFS (the dataset and
//! relative path, V14 and V15) is decided by the ZFS layer; until it is wired in, `dataset`
//! and `relative_path` stay null and V15 is not checked.

use super::providers::{self, Errors};
use super::script::shell_words;
use crate::store::Store;
use serde_json::{Map, Value, json};
use std::path::{Component, Path, PathBuf};

pub const CREATE: &str = "cloud_sync_create";
pub const UPDATE: &str = "cloud_sync_update";
pub const ONETIME: &str = "cloud_sync_sync_onetime";

/// Who is asking (for V16). `None` where TrueNAS has no calling user (one-time runs).
#[derive(Clone, Copy, Debug)]
pub struct Caller {
    pub full_admin: bool,
}

/// Where pools are mounted (TrueNAS: `/mnt`).
#[derive(Clone, Debug)]
pub struct PathPolicy {
    pub pool_root: PathBuf,
    /// Refuse a path that lies directly on the pool root's filesystem rather than on a
    /// dataset mounted below it, when a task is saved (V12) and at job start (§7.2 step
    /// 5). Off for plain directories (a USB disk, ext4, btrfs: the CLI's and the daemon's
    /// `--plain-directories`, the C API's `require_dataset`).
    pub require_dataset: bool,
}

impl Default for PathPolicy {
    fn default() -> Self {
        PathPolicy { pool_root: PathBuf::from("/mnt"), require_dataset: true }
    }
}

/// The fields a caller may set, with their defaults (`None` = required).
fn fields() -> Vec<(&'static str, Option<Value>)> {
    vec![
        ("description", Some(json!(""))),
        ("path", None),
        ("credentials", None),
        ("attributes", None),
        ("schedule", Some(json!({"minute": "00", "hour": "*", "dom": "*", "month": "*", "dow": "*"}))),
        ("pre_script", Some(json!(""))),
        ("post_script", Some(json!(""))),
        ("snapshot", Some(json!(false))),
        ("include", Some(json!([]))),
        ("exclude", Some(json!([]))),
        ("args", Some(json!(""))),
        ("enabled", Some(json!(true))),
        ("bwlimit", Some(json!([]))),
        ("transfers", Some(Value::Null)),
        ("direction", None),
        ("transfer_mode", None),
        ("encryption", Some(json!(false))),
        ("filename_encryption", Some(json!(false))),
        ("encryption_password", Some(json!(""))),
        ("encryption_salt", Some(json!(""))),
        ("create_empty_src_dirs", Some(json!(false))),
        ("follow_symlinks", Some(json!(false))),
    ]
}

/// Read-only fields that appear in entries but are never accepted as input.
pub const READ_ONLY: &[&str] = &["id", "dataset", "relative_path", "job", "locked"];

/// The rclone options a task's `args` may carry (sync-semantics.md §11, column "args"),
/// and whether each takes a value.
const ARGS: &[(&str, bool)] = &[
    ("--checkers", true),
    ("--max-backlog", true),
    ("--check-first", false),
    ("--order-by", true),
    ("--list-cutoff", true),
    ("--no-traverse", false),
    ("--buffer-size", true),
    ("--checksum", false),
    ("-c", false),
    ("--size-only", false),
    ("--ignore-size", false),
    ("--ignore-times", false),
    ("-I", false),
    ("--ignore-existing", false),
    ("--update", false),
    ("-u", false),
    ("--modify-window", true),
    ("--no-update-modtime", false),
    ("--refresh-times", false),
    ("--use-server-modtime", false),
    ("--immutable", false),
    ("--delete-after", false),
    ("--delete-during", false),
    ("--delete-before", false),
    ("--max-delete", true),
    ("--max-delete-size", true),
    ("--delete-excluded", false),
    ("--multi-thread-cutoff", true),
    ("--multi-thread-streams", true),
    ("--multi-thread-chunk-size", true),
    ("--multi-thread-write-buffer-size", true),
    ("--streaming-upload-cutoff", true),
    ("--contimeout", true),
    ("--timeout", true),
    ("--low-level-retries", true),
    ("--retries", true),
    ("--retries-sleep", true),
    ("--tpslimit", true),
    ("--max-transfer", true),
    ("--cutoff-mode", true),
    ("--max-duration", true),
    ("--delete-empty-src-dirs", false),
    ("--no-update-dir-modtime", false),
    ("--min-size", true),
    ("--max-size", true),
    ("--min-age", true),
    ("--max-age", true),
    ("--max-depth", true),
    ("--exclude-if-present", true),
    ("--ignore-case", false),
    ("--track-renames", false),
    ("--track-renames-strategy", true),
    ("--b2-hard-delete", false),
];

/// V1a: the tokens of `args` that are not recognised options or their values.
pub fn unsupported_args(tokens: &[String]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let (name, inline_value) = match t.split_once('=') {
            Some((n, _)) if t.starts_with("--") => (n, true),
            _ => (t.as_str(), false),
        };
        match ARGS.iter().find(|(n, _)| *n == name) {
            Some((_, true)) if !inline_value => i += 2,
            Some((_, false)) if inline_value => {
                // `--flag=true` is how rclone spells boolean flags too.
                let v = t.split_once('=').map(|x| x.1).unwrap_or("");
                if !matches!(v, "true" | "false") {
                    bad.push(t.clone());
                }
                i += 1;
            }
            Some(_) => i += 1,
            None => {
                bad.push(t.clone());
                i += 1;
            }
        }
    }
    bad
}

fn key(schema: &str, field: &str) -> String {
    format!("{schema}.{field}")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// Schema checks of one field (strict: no coercion between types).
fn check_type(schema: &str, name: &str, v: &Value, errors: &mut Errors) {
    let k = key(schema, name);
    let mut err = |m: &str| errors.push((k.clone(), m.to_string()));
    match name {
        "description" | "path" | "direction" | "transfer_mode" | "encryption_password" | "encryption_salt" => match v {
            Value::String(s) if s.chars().count() > 1024 => err("String should have at most 1024 characters"),
            Value::String(s) if name == "direction" && !matches!(s.as_str(), "PUSH" | "PULL") => {
                err("Input should be 'PUSH' or 'PULL'")
            }
            Value::String(s) if name == "transfer_mode" && !matches!(s.as_str(), "SYNC" | "COPY" | "MOVE") => {
                err("Input should be 'SYNC', 'COPY' or 'MOVE'")
            }
            Value::String(s) if name == "path" && s.is_empty() => err("String should have at least 1 character"),
            Value::String(_) => {}
            _ => err("Input should be a valid string"),
        },
        "pre_script" | "post_script" | "args" if !v.is_string() => {
            err("Input should be a valid string");
        }
        "credentials" if !v.is_i64() => {
            err("Input should be a valid integer");
        }
        "snapshot" | "enabled" | "encryption" | "filename_encryption" | "create_empty_src_dirs" | "follow_symlinks"
            if !v.is_boolean() =>
        {
            err("Input should be a valid boolean");
        }
        "attributes" if !v.is_object() => {
            err("Input should be a valid dictionary");
        }
        "transfers" => match v {
            Value::Null => {}
            Value::Number(n) if n.is_i64() => {
                if n.as_i64().unwrap_or(0) <= 0 {
                    err("Input should be greater than 0");
                }
            }
            _ => err("Input should be a valid integer"),
        },
        "include" | "exclude" => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ik = format!("{k}.{i}");
                    match item {
                        Value::String(s) if s.is_empty() => {
                            errors.push((ik, "String should have at least 1 character".into()))
                        }
                        Value::String(s) if s.chars().count() > 1024 => {
                            errors.push((ik, "String should have at most 1024 characters".into()))
                        }
                        Value::String(_) => {}
                        _ => errors.push((ik, "Input should be a valid string".into())),
                    }
                }
            }
            _ => err("Input should be a valid list"),
        },
        "schedule" => match v {
            Value::Object(o) => {
                for (sk, sv) in o {
                    if !["minute", "hour", "dom", "month", "dow"].contains(&sk.as_str()) {
                        errors.push((format!("{k}.{sk}"), "Extra inputs are not permitted".into()));
                    } else if !sv.is_string() {
                        errors.push((format!("{k}.{sk}"), "Input should be a valid string".into()));
                    }
                }
            }
            _ => err("Input should be a valid dictionary"),
        },
        "bwlimit" => match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let ik = format!("{k}.{i}");
                    let Some(o) = item.as_object() else {
                        errors.push((ik, "Input should be a valid dictionary".into()));
                        continue;
                    };
                    for (ek, ev) in o {
                        match ek.as_str() {
                            "time" => match ev.as_str() {
                                Some(t) if valid_hhmm(t) => {}
                                Some(_) => {
                                    errors.push((format!("{ik}.time"), "Input should be a time in HH:MM format".into()))
                                }
                                None => errors.push((format!("{ik}.time"), "Input should be a valid string".into())),
                            },
                            "bandwidth" => match ev {
                                Value::Null => {}
                                Value::Number(n) if n.is_i64() => {
                                    if n.as_i64().unwrap_or(0) <= 0 {
                                        errors
                                            .push((format!("{ik}.bandwidth"), "Input should be greater than 0".into()));
                                    }
                                }
                                _ => errors.push((format!("{ik}.bandwidth"), "Input should be a valid integer".into())),
                            },
                            _ => errors.push((format!("{ik}.{ek}"), "Extra inputs are not permitted".into())),
                        }
                    }
                    if !o.contains_key("time") {
                        errors.push((format!("{ik}.time"), "Field required".into()));
                    }
                }
            }
            _ => err("Input should be a valid list"),
        },
        _ => {}
    }
    let _ = type_name;
}

fn gs(body: &Map<String, Value>, k: &str) -> String {
    body.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn gb(body: &Map<String, Value>, k: &str) -> bool {
    body.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn valid_hhmm(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 5
        && b[2] == b':'
        && b.iter().enumerate().all(|(i, c)| i == 2 || c.is_ascii_digit())
        && t[..2].parse::<u32>().is_ok_and(|h| h < 24)
        && t[3..].parse::<u32>().is_ok_and(|m| m < 60)
}

/// A task's `schedule` object (`minute`, `hour`, `dom`, `month`, `dow`) as the parsed
/// five-field cron expression the scheduler evaluates, or the expression text when it is
/// not valid. Validation and the daemon share this, so they agree on what is valid.
pub fn cron_schedule(schedule: &Map<String, Value>) -> std::result::Result<croner::Cron, String> {
    let f = |k: &str| schedule.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let parts = [f("minute"), f("hour"), f("dom"), f("month"), f("dow")];
    let expr = parts.join(" ");
    let well_formed = parts.iter().all(|p| !p.is_empty() && !p.contains(char::is_whitespace));
    match expr.parse::<croner::Cron>() {
        Ok(cron) if well_formed => Ok(cron),
        _ => Err(expr),
    }
}

/// Whether a stored task body runs on its schedule: enabled, and not kept disabled by an
/// import with problems.
pub fn is_scheduled(body: &Map<String, Value>) -> bool {
    body.get("enabled").and_then(Value::as_bool) != Some(false) && !body.contains_key("import_problems")
}

/// When a stored task body fires next after `after` (the system's local time zone, as the
/// daemon evaluates it): `None` for a disabled task, a task kept from an import with
/// problems, or a schedule that is not a valid cron expression. What `task list` shows
/// when no daemon runs; the daemon's own `next_run` agrees with it.
pub fn next_run(
    body: &Map<String, Value>,
    after: &chrono::DateTime<chrono::Local>,
) -> Option<chrono::DateTime<chrono::Local>> {
    if !is_scheduled(body) {
        return None;
    }
    let cron = cron_schedule(body.get("schedule")?.as_object()?).ok()?;
    cron.find_next_occurrence(after, false).ok()
}

/// The five cron fields of a task body's schedule as one line (`"0 3 * * *"`).
pub fn schedule_line(body: &Map<String, Value>) -> String {
    let s = body.get("schedule").and_then(Value::as_object);
    ["minute", "hour", "dom", "month", "dow"]
        .iter()
        .map(|k| s.and_then(|s| s.get(*k)).and_then(Value::as_str).unwrap_or("?"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// V11–V13 (V14 concerns zvols, which are refused by V11 already).
fn check_path(schema: &str, path: &str, policy: &PathPolicy, errors: &mut Errors) {
    let k = key(schema, "path");
    if let Some(kind) = path.split_once(':').map(|x| x.0).filter(|t| t.chars().all(|c| c.is_ascii_uppercase())) {
        errors.push((k, format!("{kind}: path type is not allowed.")));
        return;
    }
    if path.starts_with("/dev/zvol/") {
        errors.push((k, "ZVOL: path type is not allowed.".into()));
        return;
    }
    let root = policy.pool_root.to_string_lossy().trim_end_matches('/').to_string();
    let p = Path::new(path);
    // Lexical normalisation: `..` may not climb out of the pool.
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let root_parts: Vec<String> = Path::new(&root)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    let inside = p.is_absolute() && parts.len() > root_parts.len() && parts[..root_parts.len()] == root_parts[..];
    if !inside {
        errors.push((k, "The path must reside within a pool mount point".into()));
        return;
    }
    // A directory that exists but lies on the pool root's own filesystem is on no dataset
    // (TrueNAS: not on a known pool, the same sentence). Checked here so that `create`
    // says it, not only the job; `require_dataset` off (plain directories) skips it.
    if policy.require_dataset {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(md), Ok(root)) = (std::fs::metadata(p), std::fs::metadata(&policy.pool_root))
            && md.is_dir()
            && md.dev() == root.dev()
        {
            errors.push((k.clone(), "The path must reside within a pool mount point".into()));
            return;
        }
    }
    if parts.iter().any(|s| s == ".zfs") {
        errors.push((
            k,
            "The ZFS control directory (.zfs) and snapshot directory (.zfs/snapshot) are not permitted paths. If a snapshot within this directory must be accessed through the path-based API, then it should be called directly, e.g. '/mnt/dozer/.zfs/snapshot/mysnap'.".into(),
        ));
    }
}

/// Validate a task body (`input`) under `schema` (`cloud_sync_create`, `cloud_sync_update`
/// or `cloud_sync_sync_onetime`). Returns the normalised body with every default filled
/// in (and `dataset`/`relative_path`), or every error as (full key, message).
pub fn validate(
    schema: &str,
    input: &Map<String, Value>,
    store: &Store,
    caller: Option<Caller>,
    policy: &PathPolicy,
) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::new();
    let known = fields();
    for k in input.keys() {
        if !known.iter().any(|(n, _)| n == k) {
            errors.push((key(schema, k), "Extra inputs are not permitted".into()));
        }
    }
    let mut body = Map::new();
    for (name, default) in &known {
        match (input.get(*name), default) {
            (Some(v), _) => {
                check_type(schema, name, v, &mut errors);
                body.insert((*name).into(), v.clone());
            }
            (None, Some(d)) => {
                body.insert((*name).into(), d.clone());
            }
            (None, None) => errors.push((key(schema, name), "Field required".into())),
        }
    }
    if let Some(Value::Object(s)) = body.get_mut("schedule") {
        for (f, d) in [("minute", "00"), ("hour", "*"), ("dom", "*"), ("month", "*"), ("dow", "*")] {
            s.entry(f).or_insert(json!(d));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // 1. V8, checked first but not stopping.
    if gb(&body, "encryption") && gs(&body, "encryption_password").is_empty() {
        errors.push((key(schema, "encryption_password"), "This field is required when encryption is enabled".into()));
    }
    // 2–4. args, credentials, attributes (the basic checks).
    let mut provider: Option<&'static providers::ProviderSpec> = None;
    (|| {
        match shell_words(&gs(&body, "args")) {
            Err(e) => {
                errors.push((key(schema, "args"), e.message().to_string()));
                return;
            }
            Ok(tokens) => {
                for t in unsupported_args(&tokens) {
                    errors.push((key(schema, "args"), format!("Unsupported argument: {t}")));
                }
            }
        }
        let cred_id = body.get("credentials").and_then(Value::as_i64).unwrap_or(-1);
        let ty = store
            .list_credentials()
            .ok()
            .and_then(|rows| rows.into_iter().find(|r| r.id == cred_id).map(|r| r.provider_type));
        let Some(spec) = ty.as_deref().and_then(providers::get) else {
            errors.push((key(schema, "credentials"), "Invalid credentials".into()));
            return;
        };
        provider = Some(spec);
        let had_errors = !errors.is_empty();
        match providers::validate_task_attributes(schema, spec, body.get("attributes").unwrap_or(&Value::Null)) {
            Ok(attrs) => {
                body.insert("attributes".into(), Value::Object(attrs));
            }
            Err(errs) => {
                // The full check (V9, V10) runs only when nothing else failed (§3.2 step 5).
                let folder_guard = |m: &str| m.starts_with("Pulling from the");
                errors.extend(errs.into_iter().filter(|(_, m)| !(had_errors && folder_guard(m))));
            }
        }
    })();
    // 6. Path checks.
    check_path(schema, &gs(&body, "path"), policy, &mut errors);
    // The dataset holding the path and the path relative to its mountpoint (§3), when
    // the path is on ZFS; a local look-up, no network.
    let zfs = crate::zfs::Zfs::default();
    let location = crate::zfs::locate(&zfs, std::path::Path::new(&gs(&body, "path"))).ok().flatten();
    body.insert("dataset".into(), location.as_ref().map_or(Value::Null, |l| json!(l.dataset)));
    body.insert("relative_path".into(), location.as_ref().map_or(Value::Null, |l| json!(l.relative.to_string_lossy())));
    // 8. Scripts: full administrators only; never in one-time runs.
    for script in ["pre_script", "post_script"] {
        if gs(&body, script).trim().is_empty() {
            continue;
        }
        if schema == ONETIME {
            errors.push((key(schema, script), "This option may not be used for onetime cloud sync operations".into()));
        } else if caller.is_some_and(|c| !c.full_admin) {
            errors.push((
                key(schema, script),
                "The ability to edit pre-scripts and post-scripts is limited to users who have full administrative credentials"
                    .into(),
            ));
        }
    }
    // 9. bwlimit order; snapshot direction and mode.
    if let Some(Value::Array(slots)) = body.get("bwlimit") {
        let times: Vec<&str> = slots.iter().map(|x| x.get("time").and_then(Value::as_str).unwrap_or("")).collect();
        for i in 1..times.len() {
            if times[i - 1] >= times[i] {
                errors.push((
                    key(schema, &format!("bwlimit.{i}.time")),
                    format!("Invalid time order: {}, {}", times[i - 1], times[i]),
                ));
            }
        }
    }
    if gb(&body, "snapshot") {
        if gs(&body, "direction") != "PUSH" {
            errors.push((key(schema, "snapshot"), "This option can only be enabled for PUSH tasks".into()));
        }
        if gs(&body, "transfer_mode") == "MOVE" {
            errors.push((key(schema, "snapshot"), "This option can not be used for MOVE transfer mode".into()));
        }
        // V15: one snapshot of the dataset would not cover a child filesystem.
        let children = crate::zfs::child_filesystems(&zfs, std::path::Path::new(&gs(&body, "path")));
        if children.is_ok_and(|c| !c.is_empty()) {
            errors.push((
                key(schema, "snapshot"),
                "This option is only available for datasets that have no further nesting".into(),
            ));
        }
    }
    // The schedule must be a valid five-field cron expression.
    if let Some(Value::Object(sch)) = body.get("schedule")
        && let Err(expr) = cron_schedule(sch)
    {
        errors.push((key(schema, "schedule"), format!("Invalid cron expression: {expr:?}")));
    }
    // V22: needs no network, so it stays a validation rule.
    if provider.is_some_and(|p| p.readonly) && gs(&body, "direction") == "PUSH" {
        errors.push((key(schema, "direction"), "This remote is read-only".into()));
    }
    if errors.is_empty() { Ok(body) } else { Err(errors) }
}

/// Update: a shallow merge of top-level fields over the stored body (§1.2), without the
/// read-only fields, ready for [`validate`].
pub fn merge_update(stored: &Map<String, Value>, partial: &Map<String, Value>) -> Map<String, Value> {
    let mut out: Map<String, Value> =
        stored.iter().filter(|(k, _)| !READ_ONLY.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in partial {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Restore (§11): the body of the reversed, disabled task, to be validated as
/// `cloud_sync_create`. `args` holds `description`, `transfer_mode` (SYNC or COPY) and
/// `path`.
pub fn restore_body(stored: &Map<String, Value>, args: &Map<String, Value>) -> Result<Map<String, Value>, Errors> {
    let mut errors = Errors::new();
    for k in args.keys() {
        if !["description", "transfer_mode", "path"].contains(&k.as_str()) {
            errors.push((format!("cloud_sync_restore.{k}"), "Extra inputs are not permitted".into()));
        }
    }
    match args.get("transfer_mode").and_then(Value::as_str) {
        Some("SYNC" | "COPY") => {}
        Some(_) => errors.push(("cloud_sync_restore.transfer_mode".into(), "Input should be 'SYNC' or 'COPY'".into())),
        None => errors.push(("cloud_sync_restore.transfer_mode".into(), "Field required".into())),
    }
    match args.get("path").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => {}
        Some(_) => errors.push(("cloud_sync_restore.path".into(), "String should have at least 1 character".into())),
        None => errors.push(("cloud_sync_restore.path".into(), "Field required".into())),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let direction = match stored.get("direction").and_then(Value::as_str) {
        Some("PUSH") => "PULL",
        _ => "PUSH",
    };
    let mut body = Map::new();
    body.insert("description".into(), args.get("description").cloned().unwrap_or(json!("")));
    body.insert("transfer_mode".into(), args["transfer_mode"].clone());
    body.insert("path".into(), args["path"].clone());
    body.insert("direction".into(), json!(direction));
    body.insert("enabled".into(), json!(false));
    for k in [
        "credentials",
        "encryption",
        "filename_encryption",
        "encryption_password",
        "encryption_salt",
        "schedule",
        "transfers",
        "attributes",
    ] {
        if let Some(v) = stored.get(k) {
            body.insert(k.into(), v.clone());
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fx {
        _d: tempfile::TempDir,
        store: Store,
        s3: i64,
        http: i64,
        gphotos: i64,
    }

    fn fx() -> Fx {
        let d = tempfile::tempdir().unwrap();
        let store = Store::open(&d.path().join("db"), &d.path().join("seed")).unwrap();
        let mk = |name: &str, v: Value| store.create_credential(name, v.as_object().unwrap()).unwrap().id;
        let s3 = mk("s3", json!({"type": "S3", "access_key_id": "a", "secret_access_key": "b"}));
        let http = mk("http", json!({"type": "HTTP", "url": "http://example.com"}));
        let gphotos = mk("gp", json!({"type": "GOOGLE_PHOTOS", "client_id": "", "client_secret": "", "token": "{}"}));
        Fx { _d: d, store, s3, http, gphotos }
    }

    fn base(f: &Fx) -> Map<String, Value> {
        json!({"path": "/mnt/tank/data", "credentials": f.s3, "attributes": {"bucket": "b", "folder": "x"},
               "direction": "PUSH", "transfer_mode": "SYNC"})
        .as_object()
        .cloned()
        .unwrap()
    }

    fn with(f: &Fx, changes: Value) -> Map<String, Value> {
        let mut b = base(f);
        for (k, v) in changes.as_object().unwrap() {
            b.insert(k.clone(), v.clone());
        }
        b
    }

    fn errs(f: &Fx, body: Map<String, Value>) -> Errors {
        validate(CREATE, &body, &f.store, Some(Caller { full_admin: true }), &PathPolicy::default()).unwrap_err()
    }

    #[test]
    fn defaults_are_filled() {
        let f = fx();
        let out = validate(CREATE, &base(&f), &f.store, None, &PathPolicy::default()).unwrap();
        assert_eq!(out["schedule"], json!({"minute": "00", "hour": "*", "dom": "*", "month": "*", "dow": "*"}));
        assert_eq!(out["enabled"], json!(true));
        assert_eq!(out["transfers"], Value::Null);
        assert_eq!(out["include"], json!([]));
        assert_eq!(out["attributes"]["fast_list"], json!(false));
    }

    #[test]
    fn every_rule_with_its_exact_text() {
        let f = fx();
        let cases: Vec<(Value, &str, &str)> = vec![
            (
                json!({"args": "--checksum 'unterminated"}),
                "cloud_sync_create.args",
                "Parse error: No closing quotation",
            ),
            (json!({"args": "--ignore-errors"}), "cloud_sync_create.args", "Unsupported argument: --ignore-errors"),
            (json!({"credentials": 999}), "cloud_sync_create.credentials", "Invalid credentials"),
            (
                json!({"encryption": true}),
                "cloud_sync_create.encryption_password",
                "This field is required when encryption is enabled",
            ),
            (
                json!({"attributes": {"bucket": "b", "folder": "x", "encryption": "aws:kms"}}),
                "cloud_sync_create.attributes.encryption",
                "Encryption should be null or \"AES256\"",
            ),
            (json!({"path": "EXTERNAL:/x"}), "cloud_sync_create.path", "EXTERNAL: path type is not allowed."),
            (json!({"path": "/tmp/data"}), "cloud_sync_create.path", "The path must reside within a pool mount point"),
            (json!({"path": "/mnt"}), "cloud_sync_create.path", "The path must reside within a pool mount point"),
            (
                json!({"path": "/mnt/tank/../../etc"}),
                "cloud_sync_create.path",
                "The path must reside within a pool mount point",
            ),
            (json!({"pre_script": "echo hi"}), "", ""),
            (
                json!({"bwlimit": [{"time": "10:00", "bandwidth": 1}, {"time": "09:00", "bandwidth": null}]}),
                "cloud_sync_create.bwlimit.1.time",
                "Invalid time order: 10:00, 09:00",
            ),
            (
                json!({"snapshot": true, "direction": "PULL"}),
                "cloud_sync_create.snapshot",
                "This option can only be enabled for PUSH tasks",
            ),
            (
                json!({"snapshot": true, "transfer_mode": "MOVE"}),
                "cloud_sync_create.snapshot",
                "This option can not be used for MOVE transfer mode",
            ),
            (
                json!({"credentials": f.http, "attributes": {"folder": "x"}}),
                "cloud_sync_create.direction",
                "This remote is read-only",
            ),
            (
                json!({"credentials": f.gphotos, "attributes": {"folder": "/"}, "direction": "PULL"}),
                "cloud_sync_create.attributes.folder",
                "Pulling from the root directory is not allowed. Please, select a specific directory.",
            ),
            (
                json!({"schedule": {"minute": "61"}}),
                "cloud_sync_create.schedule",
                "Invalid cron expression: \"61 * * * *\"",
            ),
            (json!({"transfers": 0}), "cloud_sync_create.transfers", "Input should be greater than 0"),
            (json!({"transfers": "4"}), "cloud_sync_create.transfers", "Input should be a valid integer"),
            (json!({"enabled": "yes"}), "cloud_sync_create.enabled", "Input should be a valid boolean"),
            (json!({"direction": "SIDEWAYS"}), "cloud_sync_create.direction", "Input should be 'PUSH' or 'PULL'"),
            (json!({"include": [""]}), "cloud_sync_create.include.0", "String should have at least 1 character"),
            (json!({"bogus": 1}), "cloud_sync_create.bogus", "Extra inputs are not permitted"),
            (json!({"id": 1}), "cloud_sync_create.id", "Extra inputs are not permitted"),
        ];
        for (change, k, m) in cases {
            let body = with(&f, change.clone());
            if k.is_empty() {
                assert!(
                    validate(CREATE, &body, &f.store, Some(Caller { full_admin: true }), &PathPolicy::default())
                        .is_ok(),
                    "{change}"
                );
                continue;
            }
            let e = errs(&f, body);
            assert!(e.contains(&(k.to_string(), m.to_string())), "{change}: {e:?}");
        }
        let mut b = base(&f);
        b.remove("direction");
        assert!(errs(&f, b).contains(&("cloud_sync_create.direction".into(), "Field required".into())));
        let zfs = errs(&f, with(&f, json!({"path": "/mnt/tank/.zfs/snapshot/s"})));
        assert!(zfs[0].1.starts_with("The ZFS control directory (.zfs)"), "{zfs:?}");
    }

    #[test]
    fn args_failure_stops_the_basic_checks() {
        let f = fx();
        let e = errs(&f, with(&f, json!({"args": "'x", "credentials": 999})));
        assert_eq!(e, vec![("cloud_sync_create.args".to_string(), "Parse error: No closing quotation".to_string())]);
        assert!(unsupported_args(&["--checkers".into(), "4".into(), "--max-age=2d".into(), "-c".into()]).is_empty());
        assert_eq!(unsupported_args(&["--checksum=maybe".into()]), vec!["--checksum=maybe".to_string()]);
    }

    #[test]
    fn scripts_need_full_admin_and_never_in_onetime_runs() {
        let f = fx();
        let body = with(&f, json!({"pre_script": "echo", "post_script": "echo"}));
        let e =
            validate(CREATE, &body, &f.store, Some(Caller { full_admin: false }), &PathPolicy::default()).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[0].1.starts_with("The ability to edit pre-scripts and post-scripts is limited"));
        let e = validate(ONETIME, &body, &f.store, None, &PathPolicy::default()).unwrap_err();
        assert!(e.contains(&(
            "cloud_sync_sync_onetime.pre_script".into(),
            "This option may not be used for onetime cloud sync operations".into()
        )));
    }

    #[test]
    fn update_merges_shallowly_and_restore_reverses() {
        let f = fx();
        let stored = validate(CREATE, &base(&f), &f.store, None, &PathPolicy::default()).unwrap();
        let merged =
            merge_update(&stored, json!({"attributes": {"bucket": "other", "folder": ""}}).as_object().unwrap());
        assert_eq!(merged["attributes"], json!({"bucket": "other", "folder": ""}), "nested objects are replaced whole");
        let out = validate(UPDATE, &merged, &f.store, None, &PathPolicy::default()).unwrap();
        assert_eq!(out["attributes"]["bucket"], "other");

        let r = restore_body(&out, json!({"transfer_mode": "COPY", "path": "/mnt/tank/restore"}).as_object().unwrap())
            .unwrap();
        let r = validate(CREATE, &r, &f.store, None, &PathPolicy::default()).unwrap();
        assert_eq!(
            (r["direction"].as_str(), r["enabled"].as_bool(), r["transfer_mode"].as_str()),
            (Some("PULL"), Some(false), Some("COPY"))
        );
        assert_eq!(r["attributes"], out["attributes"]);
        assert_eq!((r["snapshot"].as_bool(), r["pre_script"].as_str()), (Some(false), Some("")));
        let e =
            restore_body(&out, json!({"transfer_mode": "MOVE", "path": "/mnt/x"}).as_object().unwrap()).unwrap_err();
        assert_eq!(e[0].1, "Input should be 'SYNC' or 'COPY'");
    }
}
