//! `cloudsync credential|task|config|ls`: the saved configuration and its jobs. Thin: the
//! operations live in `cloudsync::task::api`, shared with the C API and the daemon.

use crate::daemon::Daemon;
use clap::{Args, Subcommand};
use cloudsync::store::Store;
use cloudsync::task::api::{self, ApiError};
use cloudsync::task::model::{Caller, PathPolicy};
use cloudsync::task::runner::{self, JobObserver, RunnerConfig};
use cloudsync::{Error, Result};
use serde_json::Value;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the configuration lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// The database (default: /var/lib/cloudsync/cloudsync.db as root, else ~/.local/share/cloudsync/cloudsync.db).
    #[arg(long, env = "CLOUDSYNC_DB", global = true, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The 32-byte secret seed that encrypts stored secrets (default: `seed` next to the database).
    #[arg(long, env = "CLOUDSYNC_SEED", global = true, value_name = "PATH")]
    pub seed: Option<PathBuf>,
    /// Job logs (default: `jobs/` next to the database).
    #[arg(long, env = "CLOUDSYNC_LOG_DIR", global = true, value_name = "DIR")]
    pub log_dir: Option<PathBuf>,
    /// Where pools are mounted: task paths must lie below it.
    #[arg(long, env = "CLOUDSYNC_POOL_ROOT", global = true, default_value = "/mnt", value_name = "DIR")]
    pub pool_root: PathBuf,
    /// Let tasks use directories below the pool root that are not on a ZFS dataset (a USB
    /// disk, ext4, btrfs); snapshots need a dataset. Without it, such a path is refused
    /// when the task is saved.
    #[arg(long, env = "CLOUDSYNC_PLAIN_DIRECTORIES", global = true, value_parser = clap::builder::FalseyValueParser::new())]
    pub plain_directories: bool,
    /// cloudsyncd's control socket: `task run` and `task abort` go through a daemon serving
    /// the same database, which is also told about changes; without one, all runs here.
    #[arg(long, env = "CLOUDSYNCD_SOCKET", global = true, default_value = crate::daemon::DEFAULT_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
}

impl StoreArgs {
    fn dir(&self) -> PathBuf {
        if let Some(db) = &self.db {
            return db.parent().map(PathBuf::from).unwrap_or_default();
        }
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/cloudsync");
        }
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."))
            .join("cloudsync")
    }
    fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| self.dir().join("cloudsync.db"))
    }
    pub fn open(&self) -> Result<Store> {
        let db = self.db_path();
        let seed = self.seed.clone().unwrap_or_else(|| self.dir().join("seed"));
        Store::open(&db, &seed)
    }
    fn runner(&self) -> RunnerConfig {
        RunnerConfig::beside(&self.dir().join("cloudsync.db"), self.log_dir.clone(), self.policy())
    }
    fn policy(&self) -> PathPolicy {
        PathPolicy { pool_root: self.pool_root.clone(), require_dataset: !self.plain_directories }
    }
    /// The daemon serving this database, if one runs.
    pub fn daemon(&self) -> Option<Daemon> {
        Daemon::connect(&self.socket, &self.db_path())
    }
    /// Tell a running daemon that the configuration changed.
    fn changed(&self) {
        crate::daemon::notify_reload(&self.socket, &self.db_path());
    }
}

#[derive(Subcommand)]
pub enum CredentialCmd {
    /// Create a credential: BODY is `{"name": ..., "provider": {"type": ..., ...}}` (JSON, @FILE or - for stdin).
    /// Prints the stored credential, secrets redacted unless --reveal.
    Add {
        body: String,
        #[arg(long)]
        reveal: bool,
    },
    /// List credentials (secrets redacted).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one credential (secrets redacted unless --reveal).
    Show {
        id: i64,
        #[arg(long)]
        reveal: bool,
    },
    /// Change a credential: BODY holds the fields to replace (`provider` is replaced whole).
    /// Prints the result, secrets redacted unless --reveal.
    Update {
        id: i64,
        body: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Check that a stored credential can list its remote (15 s connect, 30 s I/O).
    Verify { id: i64 },
    /// Delete a credential (refused while a task uses it).
    Delete { id: i64 },
}

#[derive(Subcommand)]
pub enum KeychainCmd {
    /// Add an SSH key pair: NAME, and the private key from a file (`@FILE`, or `-` for
    /// stdin; OpenSSH, PEM RSA or PKCS#8), the public key optional (derived, or checked
    /// against the private key). Stored encrypted; the private key is never printed.
    Add {
        name: String,
        #[arg(long, value_name = "@FILE|-")]
        private_key: Option<String>,
        #[arg(long, value_name = "LINE|@FILE")]
        public_key: Option<String>,
    },
    /// Generate a new Ed25519 key pair and store it under NAME; prints its public key
    /// (for the server's authorized_keys).
    Generate { name: String },
    /// List the key pairs (ids, names, public keys).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one key pair (the private key only with --reveal).
    Show {
        id: i64,
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a key pair (refused while an SFTP credential uses it).
    Delete { id: i64 },
}

#[derive(Subcommand)]
pub enum TaskCmd {
    /// Create a task from a JSON body with the TrueNAS field names (JSON, @FILE or -).
    /// Prints the stored task, secrets redacted unless --reveal.
    Create {
        body: String,
        #[arg(long)]
        reveal: bool,
    },
    /// List tasks: id, description, direction and mode, path, enabled, schedule, next run
    /// and last job (with --json: the task bodies, each with `next_run`).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one task (secrets redacted unless --reveal).
    Show {
        id: i64,
        #[arg(long)]
        reveal: bool,
    },
    /// Change a task: a shallow merge of BODY over the stored task, then full validation.
    /// Prints the result, secrets redacted unless --reveal.
    Update {
        id: i64,
        body: String,
        #[arg(long)]
        reveal: bool,
    },
    /// Delete a task (its running job is aborted first).
    Delete { id: i64 },
    /// Run a task now and wait for it (also a disabled one); prints the job's log and its
    /// outcome as JSON.
    Run {
        id: i64,
        /// Decide and report only: no transfer, no deletion, no script, no snapshot.
        #[arg(long)]
        dry_run: bool,
        /// Show a live progress line and the log on stderr, and end with one sentence
        /// instead of the JSON outcome.
        #[arg(long, short)]
        follow: bool,
    },
    /// Abort the task's running or waiting job (from any process).
    Abort { id: i64 },
    /// Create the reversed, disabled task: BODY is `{"transfer_mode": "SYNC"|"COPY", "path": ..., "description": ...}`.
    Restore { id: i64, body: String },
    /// Print the log excerpt of the task's last job.
    Logs { id: i64 },
    /// Check a task body against its remote: the location can be listed; PULL: the folder
    /// exists; encrypted: the names decrypt (15 s connect, 30 s I/O). BODY as for create.
    Verify { body: String },
}

#[derive(Subcommand)]
pub enum ConfigCmd {
    /// Write the whole configuration as JSON to stdout; secrets stay encrypted.
    Export {
        /// Include the secret seed (then the export alone decrypts everything: keep it safe).
        #[arg(long)]
        with_seed: bool,
    },
    /// Import a TrueNAS configuration: a config backup tar or freenas-v1.db.
    /// Import a cloudsync export (from `config export`): adds its credentials and tasks.
    Import {
        /// The export (a file, or - for stdin).
        path: String,
    },
    ImportTruenas {
        path: PathBuf,
        /// TrueNAS's pwenc_secret, when it is not inside the backup.
        #[arg(long, value_name = "FILE")]
        truenas_seed: Option<PathBuf>,
    },
}

fn read_body(arg: &str) -> Result<Value> {
    let text = if arg == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| Error::io("read", "stdin", e))?;
        s
    } else if let Some(path) = arg.strip_prefix('@') {
        std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?
    } else {
        arg.to_string()
    };
    serde_json::from_str(&text).map_err(|e| Error::usage(format!("the body is not valid JSON: {e}")))
}

fn api(r: std::result::Result<Value, ApiError>) -> Result<Value> {
    r.map_err(|e| match e {
        ApiError::Failed(e) => e,
        v @ ApiError::Validation(_) => Error::usage(v.to_string()),
    })
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// The CLI acts for the local administrator (it can read the seed).
const ADMIN: Option<Caller> = Some(Caller { full_admin: true });

pub fn credential(cmd: CredentialCmd, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    match cmd {
        CredentialCmd::Add { body, reveal } => {
            let created = api(api::credential_create(&store, &read_body(&body)?))?;
            print(&shown_credential(&store, created, reveal)?);
            s.changed();
        }
        CredentialCmd::List { json } => {
            let list = api(api::credential_list(&store, false).map(Value::from))?;
            if json {
                print(&list);
            } else {
                for c in list.as_array().into_iter().flatten() {
                    let unusable = c["unusable"].as_str().map(|u| format!("  UNUSABLE: {u}")).unwrap_or_default();
                    println!(
                        "{:>4}  {:<24} {}{unusable}",
                        c["id"],
                        c["name"].as_str().unwrap_or(""),
                        c["provider"]["type"].as_str().unwrap_or("")
                    );
                }
            }
        }
        CredentialCmd::Show { id, reveal } => print(&api(api::credential_get(&store, id, reveal))?),
        CredentialCmd::Update { id, body, reveal } => {
            let updated = api(api::credential_update(&store, id, &read_body(&body)?))?;
            print(&shown_credential(&store, updated, reveal)?);
            s.changed();
        }
        CredentialCmd::Verify { id } => {
            let c = store.get_credential(id)?;
            let v = api::credential_verify_stored(&store, &c);
            print(&v);
            return Ok(if v["valid"] == true { 0 } else { 1 });
        }
        CredentialCmd::Delete { id } => {
            api(api::credential_delete(&store, id).map(|()| Value::Null)).map(drop)?;
            s.changed();
        }
    }
    Ok(0)
}

/// Key text given on the command line: `@FILE`, `-` (stdin) or the text itself.
fn key_text(arg: &str) -> Result<String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| cloudsync::Error::io("read", "standard input", e))?;
        return Ok(s);
    }
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| cloudsync::Error::io("read", path, e)),
        None => Ok(arg.to_string()),
    }
}

pub fn keychain(cmd: KeychainCmd, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    match cmd {
        KeychainCmd::Add { name, private_key, public_key } => {
            if private_key.as_deref().is_some_and(|k| !k.starts_with('@') && k != "-") {
                return Err(cloudsync::Error::usage(
                    "--private-key takes @FILE or - (standard input): a key on the command line is visible to other users",
                ));
            }
            let private = private_key.as_deref().map(key_text).transpose()?;
            let public = public_key.as_deref().map(key_text).transpose()?;
            let body = serde_json::json!({"name": name, "type": "SSH_KEY_PAIR",
                "attributes": {"private_key": private, "public_key": public}});
            print(&api(api::keychain_create(&store, &body))?);
            s.changed();
        }
        KeychainCmd::Generate { name } => {
            let pair = api(api::keychain_generate())?;
            let body = serde_json::json!({"name": name, "type": "SSH_KEY_PAIR", "attributes": pair});
            let created = api(api::keychain_create(&store, &body))?;
            eprintln!("stored as keychain credential {}; its public key:", created["id"]);
            println!("{}", created["attributes"]["public_key"].as_str().unwrap_or(""));
            s.changed();
        }
        KeychainCmd::List { json } => {
            let list = api(api::keychain_list(&store, false).map(Value::from))?;
            if json {
                print(&list);
            } else {
                for k in list.as_array().into_iter().flatten() {
                    let public = k["attributes"]["public_key"].as_str().unwrap_or("");
                    let short: String = public.chars().take(60).collect();
                    let private = if k["attributes"]["private_key"].is_null() { "  (public key only)" } else { "" };
                    println!("{:>4}  {:<24} {short}{private}", k["id"], k["name"].as_str().unwrap_or(""));
                }
            }
        }
        KeychainCmd::Show { id, reveal } => print(&api(api::keychain_get(&store, id, reveal))?),
        KeychainCmd::Delete { id } => {
            api(api::keychain_delete(&store, id).map(|()| Value::Null)).map(drop)?;
            s.changed();
        }
    }
    Ok(0)
}

/// `cloudsync providers`: one line per provider (type, title, its credential fields with
/// `*` for the required ones), or the whole listing as JSON.
pub fn providers(json: bool) -> Result<i32> {
    let list = cloudsync::task::providers::providers_listing();
    if json {
        print(&list);
        return Ok(0);
    }
    let rows: Vec<(String, String, String)> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let fields: Vec<String> = p["credentials_schema"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| {
                    let name = f["property"].as_str().unwrap_or_default();
                    if f["schema"]["_required_"] == true { format!("{name}*") } else { name.to_string() }
                })
                .collect();
            (
                p["name"].as_str().unwrap_or("").to_string(),
                p["title"].as_str().unwrap_or("").to_string(),
                fields.join(" "),
            )
        })
        .collect();
    let (w0, w1) = rows.iter().fold((4, 5), |(a, b), r| (a.max(r.0.len()), b.max(r.1.chars().count())));
    println!("{:<w0$}  {:<w1$}  CREDENTIAL FIELDS (* required)", "TYPE", "TITLE");
    for (ty, title, fields) in rows {
        println!("{ty:<w0$}  {title:<w1$}  {fields}");
    }
    Ok(0)
}

/// A credential the API just stored, as the CLI prints it: read back redacted unless
/// the user asked to see the secrets.
fn shown_credential(store: &Store, stored: Value, reveal: bool) -> Result<Value> {
    match (reveal, stored["id"].as_i64()) {
        (false, Some(id)) => api(api::credential_get(store, id, false)),
        _ => Ok(stored),
    }
}

/// A task the API just stored, as the CLI prints it (see [`shown_credential`]).
fn shown_task(store: &Store, stored: Value, reveal: bool) -> Result<Value> {
    match (reveal, stored["id"].as_i64()) {
        (false, Some(id)) => api(api::task_get(store, id, false)),
        _ => Ok(stored),
    }
}

/// A saved task refused for its path: when the path lies below the pool root but on no
/// dataset, say how to allow plain directories.
fn path_hint<T>(s: &StoreArgs, body: &Value, r: Result<T>) -> Result<T> {
    if let Err(e) = &r
        && !s.plain_directories
        && e.to_string().contains(".path: The path must reside within a pool mount point")
        && let Some(path) = body.get("path").and_then(Value::as_str)
        && std::path::Path::new(path).starts_with(&s.pool_root)
        && std::path::Path::new(path).is_dir()
    {
        eprintln!(
            "note: {path} is not on a ZFS dataset mounted below {}; to sync a plain directory (a USB disk, \
             ext4, btrfs), pass --plain-directories (or set CLOUDSYNC_PLAIN_DIRECTORIES=1)",
            s.pool_root.display()
        );
    }
    r
}

/// The job's log lines on stderr as they are written; with `follow`, its progress too.
struct Printer(Option<crate::jobs::Follow>);
impl JobObserver for Printer {
    fn log(&self, _job: i64, line: &str) {
        match &self.0 {
            Some(f) => f.log(line),
            None => eprintln!("{line}"),
        }
    }
    fn progress(&self, _job: i64, percent: u32, description: &str, _progress: &cloudsync::engine::Progress) {
        if let Some(f) = &self.0 {
            f.progress(percent, description);
        }
    }
}

/// Each task's next run: the daemon's schedule when one serves this database, else
/// computed here from the schedules (the same cron evaluation).
fn next_runs(s: &StoreArgs, tasks: &[Value]) -> std::collections::BTreeMap<i64, Option<String>> {
    if let Some(mut d) = s.daemon()
        && let Ok(Value::Array(runs)) = d.call("core.schedule", serde_json::json!([]))
    {
        let mut m: std::collections::BTreeMap<i64, Option<String>> =
            tasks.iter().filter_map(|t| t["id"].as_i64()).map(|id| (id, None)).collect();
        for r in runs {
            if let Some(id) = r["id"].as_i64() {
                m.insert(id, r["next_run"].as_str().map(str::to_string));
            }
        }
        return m;
    }
    let now = chrono::Local::now();
    tasks
        .iter()
        .filter_map(|t| {
            let body = t.as_object()?;
            let at = cloudsync::task::model::next_run(body, &now).map(|t| t.to_rfc3339());
            Some((t["id"].as_i64()?, at))
        })
        .collect()
}

/// `2026-12-04T03:00:00+00:00` as `2026-12-04 03:00` (local time, as computed).
fn short_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

pub fn task(cmd: TaskCmd, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    match cmd {
        TaskCmd::Create { body, reveal } => {
            let body = read_body(&body)?;
            let created = path_hint(s, &body, api(api::task_create(&store, &body, ADMIN, &s.policy())))?;
            print(&shown_task(&store, created, reveal)?);
            s.changed();
        }
        TaskCmd::List { json } => {
            let mut list = api(api::task_list(&store, false).map(Value::from))?;
            let tasks = list.as_array_mut().map(std::mem::take).unwrap_or_default();
            let next = next_runs(s, &tasks);
            let tasks: Vec<Value> = tasks
                .into_iter()
                .map(|mut t| {
                    let at = t["id"].as_i64().and_then(|id| next.get(&id).cloned().flatten());
                    t["next_run"] = at.map_or(Value::Null, Value::String);
                    t
                })
                .collect();
            if json {
                print(&Value::Array(tasks));
            } else {
                let rows: Vec<[String; 8]> = tasks
                    .iter()
                    .map(|t| {
                        let body = t.as_object().cloned().unwrap_or_default();
                        [
                            t["id"].to_string(),
                            t["description"].as_str().unwrap_or("").to_string(),
                            format!(
                                "{} {}",
                                t["direction"].as_str().unwrap_or(""),
                                t["transfer_mode"].as_str().unwrap_or("")
                            ),
                            t["path"].as_str().unwrap_or("").to_string(),
                            if cloudsync::task::model::is_scheduled(&body) { "yes" } else { "no" }.to_string(),
                            cloudsync::task::model::schedule_line(&body),
                            t["next_run"].as_str().map_or("-".into(), short_time),
                            t["job"]["state"].as_str().unwrap_or("-").to_string(),
                        ]
                    })
                    .collect();
                crate::jobs::print_table(
                    &["ID", "DESCRIPTION", "DIRECTION", "PATH", "ENABLED", "SCHEDULE", "NEXT RUN", "LAST JOB"],
                    &rows,
                );
            }
        }
        TaskCmd::Show { id, reveal } => print(&api(api::task_get(&store, id, reveal))?),
        TaskCmd::Update { id, body, reveal } => {
            let body = read_body(&body)?;
            let updated = path_hint(s, &body, api(api::task_update(&store, id, &body, ADMIN, &s.policy())))?;
            if body.get("schedule").is_some() {
                // A partial schedule fills the missing fields with `*` (TrueNAS's rule):
                // say what the task now runs on, so `{"minute": "*/5"}` is seen.
                let t = updated.as_object().cloned().unwrap_or_default();
                let next = cloudsync::task::model::next_run(&t, &chrono::Local::now())
                    .map_or_else(|| "never (disabled)".to_string(), |at| at.format("%Y-%m-%d %H:%M %Z").to_string());
                eprintln!("schedule: {} (next run: {next})", cloudsync::task::model::schedule_line(&t));
            }
            print(&shown_task(&store, updated, reveal)?);
            s.changed();
        }
        TaskCmd::Delete { id } => {
            api(api::task_delete(&store, id).map(|()| Value::Null)).map(drop)?;
            s.changed();
        }
        TaskCmd::Run { id, dry_run, follow } => {
            if let Some(mut daemon) = s.daemon() {
                return daemon.run_task(id, dry_run, follow);
            }
            let cancel = crate::interrupt::token();
            let printer = Arc::new(Printer(follow.then(crate::jobs::Follow::new)));
            let out = runner::run_task(&store, &s.runner(), id, dry_run, Some(printer.clone()), cancel)?;
            match &printer.0 {
                Some(f) => f.finish(out.job_id, &out.state, out.error.as_deref()),
                None => print(&serde_json::to_value(&out).unwrap_or_default()),
            }
            return Ok(out.exit_code());
        }
        TaskCmd::Abort { id } => {
            let aborted = match s.daemon() {
                Some(mut daemon) => daemon.call("cloudsync.abort", serde_json::json!([id]))?,
                None => api(api::task_abort(&store, id).map(Value::from))?,
            };
            print(&serde_json::json!({"aborted": aborted}));
        }
        TaskCmd::Restore { id, body } => {
            let body = read_body(&body)?;
            let restored = path_hint(s, &body, api(api::task_restore(&store, id, &body, ADMIN, &s.policy())))?;
            print(&shown_task(&store, restored, false)?);
            s.changed();
        }
        TaskCmd::Logs { id } => {
            let t = api(api::task_get(&store, id, false))?;
            print!("{}", t["job"]["logs_excerpt"].as_str().unwrap_or("(no job has run yet)\n"));
        }
        TaskCmd::Verify { body } => {
            let r = api(api::task_verify(&store, &read_body(&body)?, ADMIN, &s.policy()))?;
            print(&r);
            if r["valid"] != Value::Bool(true) {
                return Ok(1);
            }
        }
    }
    Ok(0)
}

pub fn config(cmd: ConfigCmd, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    match cmd {
        ConfigCmd::Export { with_seed } => print(&api::config_export(&store, with_seed)?),
        ConfigCmd::Import { path } => {
            let arg = if path == "-" { path } else { format!("@{path}") };
            let export = read_body(&arg)?;
            print(&api(api::config_import(&store, &export, &s.policy()))?);
            s.changed();
        }
        ConfigCmd::ImportTruenas { path, truenas_seed } => {
            let seed = match truenas_seed {
                Some(p) => Some(std::fs::read(&p).map_err(|e| Error::io("read", p.display(), e))?),
                None => None,
            };
            print(&api(api::import_truenas(&store, &path, seed.as_deref(), &s.policy()))?);
        }
    }
    Ok(0)
}

/// `cloudsync create-bucket CREDENTIAL NAME`.
pub fn create_bucket(credential: i64, name: &str, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    let c = store.get_credential(credential)?;
    runner::create_bucket(c.usable()?, name)?;
    eprintln!("Bucket {name} created.");
    Ok(0)
}

/// `cloudsync ls CREDENTIAL [BUCKET[/PATH]]`: the buckets, or a folder's entries.
pub fn ls(credential: i64, location: Option<String>, json: bool, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    let c = store.get_credential(credential)?;
    c.usable()?;
    let Some(loc) = location else {
        let buckets = runner::list_buckets(&c.provider)?;
        if json {
            print(&Value::from(buckets.iter().map(|(n, d)| serde_json::json!({"Name": n, "Path": n, "IsDir": true, "IsBucket": true, "ModTime": d})).collect::<Vec<_>>()));
        } else {
            for (n, _) in buckets {
                println!("{n}/");
            }
        }
        return Ok(0);
    };
    let (bucket, path) = loc.split_once('/').unwrap_or((&loc, ""));
    let attrs = serde_json::json!({"bucket": bucket, "folder": ""});
    let entries = api(api::list_directory(&store, credential, &attrs, &serde_json::json!({}), path).map(Value::from))?;
    if json {
        print(&entries);
    } else {
        for e in entries.as_array().into_iter().flatten() {
            let dir = if e["IsDir"] == true { "/" } else { "" };
            println!("{:>12}  {}{dir}", e["Size"], e["Name"].as_str().unwrap_or(""));
        }
    }
    Ok(0)
}
