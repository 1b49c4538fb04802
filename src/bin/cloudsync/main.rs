//! `cloudsync`: the command line. Thin: parses flags, builds remotes and options, calls
//! the library, maps the result to an rclone-compatible exit code.

mod admin;
mod daemon;
mod interrupt;
mod jobs;

use clap::{Args, Parser, Subcommand};
use cloudsync::crypt::check as cryptcheck;
use cloudsync::crypt::remote::CryptRemote;
use cloudsync::crypt::{Keys, NameCipher, NameEncoding, NameMode};
use cloudsync::engine::{
    self, CompareOptions, FileEvent, Filter, FilterBuilder, Mode, Observer, Progress, SyncOptions,
};
use cloudsync::index::Index;
use cloudsync::remote::local::LocalOptions;
use cloudsync::remote::s3::client::ClientConfig;
use cloudsync::remote::spec::{self, Connections, RemoteSpec};
use cloudsync::remote::{Remote, RemoteRef};
use cloudsync::{Error, Result};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "cloudsync", version, about = "Sync a NAS dataset with cloud storage (rclone-compatible)")]
struct Cli {
    #[command(flatten)]
    store: admin::StoreArgs,
    /// More logging: -v shows every file, -vv debug output.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make DST identical to SRC, deleting files that are only in DST (after all transfers, and
    /// only if nothing failed).
    Sync(TransferArgs),
    /// Copy new and changed files from SRC to DST; never delete.
    Copy(TransferArgs),
    /// Copy, then delete each source file.
    Move(TransferArgs),
    /// Check a local tree against an encrypted remote without downloading it (compares
    /// each object's MD5 with the local file encrypted again under the object's nonce).
    Cryptcheck(CryptcheckArgs),
    /// Saved cloud credentials.
    #[command(subcommand)]
    Credential(admin::CredentialCmd),
    /// SSH key pairs for SFTP credentials (the keychain), stored encrypted.
    #[command(subcommand)]
    Keychain(admin::KeychainCmd),
    /// Saved Cloud Sync tasks and their jobs.
    #[command(subcommand)]
    Task(admin::TaskCmd),
    /// Jobs of saved tasks: list, show, log (--follow), abort.
    #[command(subcommand)]
    Job(jobs::JobCmd),
    /// The whole configuration.
    #[command(subcommand)]
    Config(admin::ConfigCmd),
    /// The cloud providers, with their credential fields and task attributes (JSON with
    /// --json).
    Providers {
        #[arg(long)]
        json: bool,
    },
    /// List a credential's buckets, or the entries of BUCKET[/PATH].
    Ls {
        credential: i64,
        location: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Create bucket NAME in a credential's account (Storj; other providers cannot).
    CreateBucket { credential: i64, name: String },
}

#[derive(Args)]
struct CryptcheckArgs {
    /// The local tree.
    local: String,
    /// The encrypted remote: a local path or s3:BUCKET[/PATH].
    remote: String,
    /// Exclude files matching this rclone glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Include only files matching this rclone glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    crypt: CryptArgs,
    #[command(flatten)]
    s3: S3Args,
}

/// Client-side encryption, byte-compatible with rclone crypt.
#[derive(Args)]
struct CryptArgs {
    /// Encrypt the remote side with this password (rclone crypt). The remote side is the one
    /// that is not a local path; with two local paths (an encrypted USB disk), the destination.
    #[arg(long, env = "CLOUDSYNC_ENCRYPT_PASSWORD", hide_env_values = true, value_name = "PASSWORD")]
    encrypt_password: Option<String>,
    /// The salt (rclone's password2); empty means rclone's built-in salt.
    #[arg(long, env = "CLOUDSYNC_ENCRYPT_SALT", hide_env_values = true, value_name = "SALT", default_value = "")]
    encrypt_salt: String,
    /// How names are encrypted.
    #[arg(long, value_name = "MODE", default_value = "standard", value_parser = ["standard", "off", "obfuscate"])]
    filename_encryption: String,
    /// Which side is encrypted, when it is not the only remote one (e.g. restoring from an
    /// encrypted USB disk: `--encrypted-side source`).
    #[arg(long, value_name = "SIDE", value_parser = ["source", "destination"])]
    encrypted_side: Option<String>,
}

#[derive(Args)]
struct TransferArgs {
    /// Source: a local path or s3:BUCKET[/PATH].
    src: String,
    /// Destination: a local path or s3:BUCKET[/PATH].
    dst: String,
    /// Show what would be done; change nothing on either side.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Exclude files matching this rclone glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    exclude: Vec<String>,
    /// Include only files matching this rclone glob (repeatable).
    #[arg(long, value_name = "PATTERN")]
    include: Vec<String>,
    /// Parallel file transfers.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    transfers: u32,
    /// Parallel directory listings and checks.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    checkers: u32,
    /// Bandwidth limit: RATE, UP:DOWN or a timetable like "08:00,512k 18:00,off" (bytes/s; bare numbers are KiB/s).
    #[arg(long, value_name = "SPEC")]
    bwlimit: Option<String>,
    /// Follow symlinks and copy what they point to (loops are detected and reported).
    #[arg(short = 'L', long)]
    follow_symlinks: bool,
    /// Create empty source directories on the destination.
    #[arg(long)]
    create_empty_src_dirs: bool,
    /// Move: remove source directories the move emptied.
    #[arg(long)]
    delete_empty_src_dirs: bool,
    /// Compare by size and hash instead of size and modification time.
    #[arg(short = 'c', long)]
    checksum: bool,
    /// Compare by size only.
    #[arg(long)]
    size_only: bool,
    /// Transfer all files, even unchanged ones.
    #[arg(short = 'I', long)]
    ignore_times: bool,
    /// Skip files that exist on the destination.
    #[arg(long)]
    ignore_existing: bool,
    /// Skip files that are newer on the destination.
    #[arg(short = 'u', long)]
    update: bool,
    /// Stop after deleting this many files (fatal error).
    #[arg(long, value_name = "N")]
    max_delete: Option<u64>,
    /// Whole-run attempts while retryable errors remain.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Print a JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// Metadata index (lets an unchanged tree cost listings only). Default: $CLOUDSYNC_INDEX or ~/.cache/cloudsync/index.db.
    #[arg(long, value_name = "PATH", env = "CLOUDSYNC_INDEX")]
    index: Option<PathBuf>,
    /// Do not use a metadata index.
    #[arg(long)]
    no_index: bool,
    #[command(flatten)]
    crypt: CryptArgs,
    #[command(flatten)]
    s3: S3Args,
}

#[derive(Args)]
struct S3Args {
    /// The credential of azureblob:, b2:, gcs:, swift:, storj:, webdav: and http: remotes: a stored
    /// credential's ID, @FILE (a JSON object with `type` and the provider's fields, as
    /// `credential add` takes them) or that JSON itself (other users see command lines
    /// in ps: prefer @FILE or the environment variable).
    #[arg(long, env = "CLOUDSYNC_CREDENTIAL", hide_env_values = true, value_name = "ID|@FILE|JSON")]
    credential: Option<String>,
    /// S3 endpoint URL (empty: AWS).
    #[arg(long, env = "CLOUDSYNC_S3_ENDPOINT", default_value = "")]
    s3_endpoint: String,
    /// S3 region.
    #[arg(long, env = "CLOUDSYNC_S3_REGION", default_value = "us-east-1")]
    s3_region: String,
    #[arg(long, env = "CLOUDSYNC_S3_ACCESS_KEY_ID", hide_env_values = true)]
    s3_access_key_id: Option<String>,
    #[arg(long, env = "CLOUDSYNC_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: Option<String>,
    /// Use virtual-host style addressing (bucket.host) instead of path style.
    #[arg(long)]
    s3_virtual_host: bool,
    /// Storage class for uploads (STANDARD_IA, GLACIER, DEEP_ARCHIVE, ...).
    #[arg(long, value_name = "CLASS")]
    s3_storage_class: Option<String>,
    /// Server-side encryption: AES256.
    #[arg(long, value_name = "ALGO", value_parser = ["AES256"])]
    s3_server_side_encryption: Option<String>,
    /// Files at least this many MiB use multipart upload.
    #[arg(long, value_name = "MIB", default_value_t = 200)]
    s3_upload_cutoff: u64,
    /// Multipart part size in MiB (raised automatically for huge files).
    #[arg(long, value_name = "MIB", default_value_t = 5)]
    s3_chunk_size: u64,
    /// Parts in flight per file.
    #[arg(long, default_value_t = 4)]
    s3_upload_concurrency: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    interrupt::install();
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => log::LevelFilter::Error,
        (false, 0) => log::LevelFilter::Warn,
        (false, 1) => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    let term = Arc::new(Term::new());
    let _ = log::set_boxed_logger(Box::new(StderrLogger { level, term: term.clone() }));
    log::set_max_level(level);
    let code = match run(cli, term.clone()) {
        Ok(code) => code,
        Err(e) => {
            term.clear();
            eprintln!("cloudsync: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(interrupt::exit_code().unwrap_or(code) as u8)
}

fn run(cli: Cli, term: Arc<Term>) -> Result<i32> {
    let (mode, args) = match cli.command {
        Command::Sync(a) => (Mode::Sync, a),
        Command::Copy(a) => (Mode::Copy, a),
        Command::Move(a) => (Mode::Move, a),
        Command::Cryptcheck(a) => return cryptcheck(a, &cli.store),
        Command::Credential(c) => return admin::credential(c, &cli.store),
        Command::Keychain(c) => return admin::keychain(c, &cli.store),
        Command::Task(c) => return admin::task(c, &cli.store),
        Command::Job(c) => return jobs::job(c, &cli.store),
        Command::Config(c) => return admin::config(c, &cli.store),
        Command::Ls { credential, location, json } => return admin::ls(credential, location, json, &cli.store),
        Command::Providers { json } => return admin::providers(json),
        Command::CreateBucket { credential, name } => return admin::create_bucket(credential, &name, &cli.store),
    };
    let src_spec = RemoteSpec::parse(&args.src)?;
    let dst_spec = RemoteSpec::parse(&args.dst)?;
    let index = open_index(&args);
    let mut conns = connections(&args.s3, args.follow_symlinks, args.transfers as usize, index.clone())?;
    conns.credential = one_shot_credential(args.s3.credential.as_deref(), &cli.store)?;
    let mut src = spec::open(&src_spec, &conns)?;
    let mut dst = spec::open(&dst_spec, &conns)?;
    if args.crypt.encrypt_password.is_some() {
        let src_is_remote = !matches!(src_spec, RemoteSpec::Local(_));
        let dst_is_remote = !matches!(dst_spec, RemoteSpec::Local(_));
        let encrypt_source = match args.crypt.encrypted_side.as_deref() {
            Some(side) => side == "source",
            None => src_is_remote && !dst_is_remote,
        };
        if encrypt_source {
            src = Arc::new(crypt_remote(src, &args.crypt)?);
        } else {
            dst = Arc::new(crypt_remote(dst, &args.crypt)?);
        }
    }

    let filter = build_filter(&args.include, &args.exclude)?;
    let bwlimit = match &args.bwlimit {
        Some(s) => engine::BwTimetable::parse(s).map_err(|e| Error::usage(format!("--bwlimit: {e}")))?,
        None => engine::BwTimetable::unlimited(),
    };
    if args.checksum && args.size_only {
        return Err(Error::usage("--checksum and --size-only cannot be used together"));
    }
    let show_progress = std::io::stderr().is_terminal() && !cli.quiet;
    let opts = SyncOptions {
        mode,
        dry_run: args.dry_run,
        filter: Arc::new(filter),
        transfers: args.transfers as usize,
        checkers: args.checkers as usize,
        create_empty_src_dirs: args.create_empty_src_dirs,
        delete_empty_src_dirs: args.delete_empty_src_dirs,
        bwlimit,
        compare: CompareOptions {
            checksum: args.checksum,
            size_only: args.size_only,
            ignore_times: args.ignore_times,
            ignore_existing: args.ignore_existing,
            update: args.update,
            ..CompareOptions::default()
        },
        max_delete: args.max_delete,
        retries: args.retries.max(1),
        observer: Arc::new(CliObserver { term: term.clone(), show_progress }),
        cancel: interrupt::token(),
        ..SyncOptions::default()
    };
    let report = engine::run(src.as_ref(), dst.as_ref(), &opts);
    if let Some(index) = &index {
        index.flush();
    }
    term.clear();
    let code = report.exit_code();
    if args.json {
        let mut requests = serde_json::Map::new();
        for (remote, side) in [(&src, "source"), (&dst, "destination")] {
            let counts = remote.request_counts();
            if !counts.is_empty() {
                let m: serde_json::Map<String, serde_json::Value> =
                    counts.into_iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                requests.insert(side.to_string(), m.into());
            }
        }
        let mut v = serde_json::to_value(&report.summary).map_err(|e| Error::other(e.to_string()))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert("requests".into(), requests.into());
            obj.insert("exit_code".into(), code.into());
            obj.insert("error".into(), report.error.as_ref().map(|e| e.to_string()).into());
        }
        println!("{v}");
    } else if !cli.quiet {
        let s = &report.summary;
        let verb = if s.dry_run { "Would transfer" } else { "Transferred" };
        eprintln!(
            "{verb}: {} files, {}; deleted: {}; checks: {}; errors: {}; elapsed: {:.1}s",
            s.files_transferred,
            engine::stats::human_bytes(s.bytes_transferred),
            s.files_deleted,
            s.checks,
            s.errors,
            s.elapsed_secs
        );
    }
    if let Some(e) = &report.error
        && !args.json
    {
        eprintln!("cloudsync: {e}");
    }
    Ok(code)
}

/// The S3 connection and local options shared by every remote of one command.
fn connections(a: &S3Args, follow_symlinks: bool, transfers: usize, index: Option<Arc<Index>>) -> Result<Connections> {
    let s3 = match (&a.s3_access_key_id, &a.s3_secret_access_key) {
        (Some(k), Some(s)) => Some(ClientConfig {
            endpoint: a.s3_endpoint.clone(),
            region: a.s3_region.clone(),
            access_key_id: k.clone(),
            secret_access_key: s.clone(),
            session_token: None,
            path_style: !a.s3_virtual_host,
            connect_timeout: Duration::from_secs(60),
            response_timeout: Duration::from_secs(300),
            low_level_retries: 10,
            sign_accept_encoding: true,
        }),
        (None, None) => None,
        _ => return Err(Error::usage("give both --s3-access-key-id and --s3-secret-access-key")),
    };
    let storage_class = a.s3_storage_class.clone();
    let sse = a.s3_server_side_encryption.clone();
    let (cutoff, chunk, conc) = (a.s3_upload_cutoff, a.s3_chunk_size, a.s3_upload_concurrency.max(1));
    Ok(Connections {
        s3,
        s3_tune: Some(Arc::new(move |o: &mut cloudsync::remote::s3::S3Options| {
            o.storage_class = storage_class.clone();
            o.server_side_encryption = sse.clone();
            o.upload_cutoff = cutoff * 1024 * 1024;
            o.chunk_size = chunk * 1024 * 1024;
            o.upload_concurrency = conc;
            o.max_connections = (transfers * conc).max(8);
        })),
        local: LocalOptions { follow_symlinks, ..LocalOptions::default() },
        index,
        credential: None,
    })
}

fn crypt_remote(inner: RemoteRef, c: &CryptArgs) -> Result<CryptRemote> {
    let password = c.encrypt_password.as_deref().unwrap_or_default();
    if password.is_empty() {
        return Err(Error::usage("--encrypt-password must not be empty"));
    }
    let keys = Keys::derive(password, &c.encrypt_salt).map_err(|e| Error::usage(format!("encryption: {e}")))?;
    let mode =
        NameMode::parse(&c.filename_encryption).map_err(|e| Error::usage(format!("--filename-encryption: {e}")))?;
    let names = NameCipher::new(&keys, mode, NameEncoding::Base32, true);
    Ok(CryptRemote::new(inner, keys, names))
}

/// The credential `--credential` names: a stored one by ID, a JSON file, or JSON.
fn one_shot_credential(
    given: Option<&str>,
    store: &admin::StoreArgs,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(given) = given.map(str::trim).filter(|g| !g.is_empty()) else {
        return Ok(None);
    };
    if let Ok(id) = given.parse::<i64>() {
        let s = store.open()?;
        return Ok(Some(s.runnable(&s.get_credential(id)?)?));
    }
    let text = match given.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?,
        None => given.to_string(),
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::usage(format!("--credential: not a JSON object ({e})")))?;
    let mut obj = v.as_object().cloned().ok_or_else(|| Error::usage("--credential: not a JSON object"))?;
    // `credential add`'s shape ({"provider": {...}}) or the provider object itself.
    if let Some(p) = obj.get("provider").and_then(serde_json::Value::as_object) {
        obj = p.clone();
    }
    Ok(Some(obj))
}

fn cryptcheck(a: CryptcheckArgs, store: &admin::StoreArgs) -> Result<i32> {
    if a.crypt.encrypt_password.is_none() {
        return Err(Error::usage("cryptcheck needs --encrypt-password (or CLOUDSYNC_ENCRYPT_PASSWORD)"));
    }
    let mut conns = connections(&a.s3, false, 4, None)?;
    conns.credential = one_shot_credential(a.s3.credential.as_deref(), store)?;
    let local = spec::open(&RemoteSpec::parse(&a.local)?, &conns)?;
    let remote = crypt_remote(spec::open(&RemoteSpec::parse(&a.remote)?, &conns)?, &a.crypt)?;
    let filter = build_filter(&a.include, &a.exclude)?;
    let report = cryptcheck::cryptcheck(local.as_ref(), &remote, &filter, &engine::CancelToken::new())?;
    if a.json {
        println!("{}", serde_json::to_string(&report).map_err(|e| Error::other(e.to_string()))?);
    } else {
        for p in &report.differing {
            eprintln!("ERROR : {p}: files differ");
        }
        for p in &report.missing_on_remote {
            eprintln!("ERROR : {p}: file not in {}", remote.describe());
        }
        for p in &report.missing_locally {
            eprintln!("ERROR : {p}: file not in the local tree");
        }
        for (p, why) in &report.unchecked {
            eprintln!("NOTICE: {p}: could not check: {why}");
        }
        eprintln!("{} differences found", report.differences());
        eprintln!("{} matching files", report.matching);
        if !report.unchecked.is_empty() {
            eprintln!("{} files could not be checked", report.unchecked.len());
        }
    }
    Ok(if report.differences() > 0 { 1 } else { 0 })
}

fn open_index(args: &TransferArgs) -> Option<Arc<Index>> {
    if args.no_index {
        return None;
    }
    let path = args.index.clone().or_else(|| {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("cloudsync").join("index.db"))
    })?;
    match Index::open(&path) {
        Ok(i) => Some(Arc::new(i)),
        Err(e) => {
            log::warn!("continuing without the metadata index: {e}");
            None
        }
    }
}

fn build_filter(include: &[String], exclude: &[String]) -> Result<Filter> {
    if include.is_empty() && exclude.is_empty() {
        return Ok(Filter::empty());
    }
    let mut b = FilterBuilder::new();
    for p in include {
        b.add_include(p).map_err(|e| Error::usage(format!("--include {p:?}: {e}")))?;
    }
    for p in exclude {
        b.add_exclude(p).map_err(|e| Error::usage(format!("--exclude {p:?}: {e}")))?;
    }
    b.build().map_err(|e| Error::usage(format!("filter: {e}")))
}

/// Serialises stderr between log lines and the progress line.
struct Term {
    line_shown: Mutex<bool>,
}

impl Term {
    fn new() -> Term {
        Term { line_shown: Mutex::new(false) }
    }
    fn clear(&self) {
        if let Ok(mut shown) = self.line_shown.lock()
            && *shown
        {
            eprint!("\r\x1b[K");
            *shown = false;
        }
    }
    fn print_line(&self, text: &str) {
        if let Ok(mut shown) = self.line_shown.lock() {
            let mut err = std::io::stderr().lock();
            if *shown {
                let _ = write!(err, "\r\x1b[K");
            }
            let _ = writeln!(err, "{text}");
            *shown = false;
        }
    }
    fn progress(&self, text: &str) {
        if let Ok(mut shown) = self.line_shown.lock() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K{text}");
            let _ = err.flush();
            *shown = true;
        }
    }
}

struct StderrLogger {
    level: log::LevelFilter,
    term: Arc<Term>,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.level && (m.target().starts_with("cloudsync") || m.level() <= log::Level::Warn)
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "NOTICE",
            log::Level::Info => "INFO ",
            _ => "DEBUG",
        };
        self.term.print_line(&format!("{} {level} : {}", cloudsync::task::joblog::timestamp(), r.args()));
    }
    fn flush(&self) {}
}

struct CliObserver {
    term: Arc<Term>,
    show_progress: bool,
}

impl Observer for CliObserver {
    fn file_event(&self, _e: &FileEvent) {}
    fn progress(&self, p: &Progress) {
        if self.show_progress {
            let desc = p.description();
            let text = if desc.is_empty() { "Listing…".to_string() } else { format!("{}% {desc}", p.percent()) };
            self.term.progress(&text);
        }
    }
}
