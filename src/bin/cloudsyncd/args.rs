//! The daemon's command line and environment. Parsed by hand rather than with clap (which
//! the CLI uses): clap's parser alone kept about 0.5 MiB of code resident in an otherwise
//! idle daemon (docs/DAEMON.md), and ten flags need little.

use std::ffi::OsString;
use std::path::PathBuf;

/// The default control socket.
pub const DEFAULT_SOCKET: &str = "/run/cloudsync/cloudsyncd.sock";

/// The options that take a value.
const VALUED: &[&str] = &["--db", "--seed", "--log-dir", "--pool-root", "--socket", "--group", "--reconcile"];

/// The shortest reconciliation interval accepted, in seconds.
const MIN_RECONCILE: u64 = 60;

pub const USAGE: &str = "\
cloudsyncd: the Cloud Sync scheduling daemon

Usage: cloudsyncd [OPTIONS]

Options:
      --db PATH          The database (default: /var/lib/cloudsync/cloudsync.db as root,
                         else ~/.local/share/cloudsync/cloudsync.db) [env: CLOUDSYNC_DB]
      --seed PATH        The 32-byte secret seed that encrypts stored secrets
                         (default: `seed` next to the database) [env: CLOUDSYNC_SEED]
      --log-dir DIR      Job logs (default: `jobs/` next to the database) [env: CLOUDSYNC_LOG_DIR]
      --pool-root DIR    Where pools are mounted: task paths must lie below it
                         [env: CLOUDSYNC_POOL_ROOT] [default: /mnt]
      --plain-directories
                         Let tasks use directories below the pool root that are not on a
                         ZFS dataset (a USB disk, ext4, btrfs); no snapshots there
                         [env: CLOUDSYNC_PLAIN_DIRECTORIES=1]
      --socket PATH      The control socket [env: CLOUDSYNCD_SOCKET]
                         [default: /run/cloudsync/cloudsyncd.sock]
      --group NAME       Members of this group may use the control socket too (it becomes
                         mode 0660); they may not set pre- or post-scripts [env: CLOUDSYNCD_GROUP]
  -f, --foreground       Log to stderr (the daemon never forks; a service manager runs it as is)
      --log-stderr       Log to stderr instead of syslog
  -v, --verbose          More logging (debug)
      --reconcile SECS   Re-read the schedule and the wall clock at least this often
                         (changes are normally seen at once) [default: 300, at least 60]
  -h, --help             Print this help
  -V, --version          Print the version
";

/// The daemon's settings.
#[derive(Debug, PartialEq)]
pub struct Args {
    pub db: Option<PathBuf>,
    pub seed: Option<PathBuf>,
    pub log_dir: Option<PathBuf>,
    pub pool_root: PathBuf,
    pub plain_directories: bool,
    pub socket: PathBuf,
    pub group: Option<String>,
    pub foreground: bool,
    pub log_stderr: bool,
    pub verbose: u8,
    pub reconcile: u64,
}

/// What the command line asks for.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

impl Args {
    /// Parse `argv` (without the program name); settings not given fall back to `env`.
    pub fn parse(
        argv: impl IntoIterator<Item = OsString>,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Parsed, String> {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut a = Args {
            db: env("CLOUDSYNC_DB").map(PathBuf::from),
            seed: env("CLOUDSYNC_SEED").map(PathBuf::from),
            log_dir: env("CLOUDSYNC_LOG_DIR").map(PathBuf::from),
            pool_root: env("CLOUDSYNC_POOL_ROOT").map_or_else(|| PathBuf::from("/mnt"), PathBuf::from),
            plain_directories: env("CLOUDSYNC_PLAIN_DIRECTORIES")
                .is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false" | "no"))),
            socket: env("CLOUDSYNCD_SOCKET").map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from),
            group: env("CLOUDSYNCD_GROUP").map(|g| g.to_string_lossy().into_owned()),
            foreground: false,
            log_stderr: false,
            verbose: 0,
            reconcile: 300,
        };
        let mut argv = argv.into_iter();
        while let Some(arg) = argv.next() {
            let text = arg.to_str().ok_or_else(|| format!("unexpected argument {arg:?}"))?.to_string();
            let (flag, inline) = match text.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(OsString::from(v))),
                _ => (text, None),
            };
            if inline.is_some() && !VALUED.contains(&flag.as_str()) {
                return Err(format!("{flag} takes no value"));
            }
            let mut value =
                || inline.clone().or_else(|| argv.next()).ok_or_else(|| format!("{flag} needs a value (see --help)"));
            match flag.as_str() {
                "--db" => a.db = Some(value()?.into()),
                "--seed" => a.seed = Some(value()?.into()),
                "--log-dir" => a.log_dir = Some(value()?.into()),
                "--pool-root" => a.pool_root = value()?.into(),
                "--socket" => a.socket = value()?.into(),
                "--group" => a.group = Some(value()?.to_string_lossy().into_owned()),
                "--reconcile" => {
                    let v = value()?;
                    a.reconcile =
                        v.to_str().and_then(|s| s.parse().ok()).filter(|s| *s >= MIN_RECONCILE).ok_or_else(|| {
                            format!("--reconcile needs a number of seconds, at least {MIN_RECONCILE}")
                        })?;
                }
                "-f" | "--foreground" => a.foreground = true,
                "--log-stderr" => a.log_stderr = true,
                "--plain-directories" => a.plain_directories = true,
                "-h" | "--help" => return Ok(Parsed::Help),
                "-V" | "--version" => return Ok(Parsed::Version),
                "--verbose" => a.verbose = a.verbose.saturating_add(1),
                short if short.len() > 1 && short.starts_with('-') && !short.starts_with("--") => {
                    // Bundled short flags: -v, -vv, -fv.
                    for c in short[1..].chars() {
                        match c {
                            'v' => a.verbose = a.verbose.saturating_add(1),
                            'f' => a.foreground = true,
                            'h' => return Ok(Parsed::Help),
                            'V' => return Ok(Parsed::Version),
                            _ => return Err(format!("unknown option -{c} (see --help)")),
                        }
                    }
                }
                other => return Err(format!("unexpected argument {other:?} (see --help)")),
            }
        }
        Ok(Parsed::Run(a))
    }

    /// Which task paths are accepted: below the pool root, on a dataset unless
    /// `--plain-directories`.
    pub fn policy(&self) -> cloudsync::task::model::PathPolicy {
        cloudsync::task::model::PathPolicy {
            pool_root: self.pool_root.clone(),
            require_dataset: !self.plain_directories,
        }
    }

    /// The database path: `--db`, else the default for this user.
    pub fn db(&self) -> PathBuf {
        if let Some(db) = &self.db {
            return db.clone();
        }
        let dir = if nix::unistd::geteuid().is_root() {
            PathBuf::from("/var/lib/cloudsync")
        } else {
            std::env::var_os("XDG_DATA_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
                .unwrap_or_else(|| PathBuf::from("."))
                .join("cloudsync")
        };
        dir.join("cloudsync.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str], env: &[(&str, &str)]) -> Result<Parsed, String> {
        let env: Vec<(String, OsString)> = env.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Args::parse(argv.iter().map(OsString::from), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    fn run(argv: &[&str], env: &[(&str, &str)]) -> Args {
        match parse(argv, env) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_environment_and_flags() {
        let a = run(&[], &[]);
        assert_eq!((a.pool_root.to_str(), a.socket.to_str()), (Some("/mnt"), Some(DEFAULT_SOCKET)));
        assert_eq!((a.db, a.group, a.reconcile, a.foreground), (None, None, 300, false));
        let env = [
            ("CLOUDSYNC_DB", "/e/db"),
            ("CLOUDSYNCD_SOCKET", "/e/sock"),
            ("CLOUDSYNCD_GROUP", "cs"),
            ("CLOUDSYNC_SEED", ""),
        ];
        let a = run(&[], &env);
        assert_eq!(
            (a.db, a.socket, a.group, a.seed),
            (Some("/e/db".into()), "/e/sock".into(), Some("cs".into()), None)
        );
        // Flags win over the environment; both value spellings work.
        let a = run(&["--db", "/f/db", "--socket=/f/sock", "-fvv", "--reconcile", "60", "--log-stderr"], &env);
        assert_eq!((a.db, a.socket), (Some("/f/db".into()), "/f/sock".into()));
        assert_eq!((a.foreground, a.verbose, a.reconcile, a.log_stderr), (true, 2, 60, true));
        assert!(!a.plain_directories);
        assert!(run(&[], &[]).policy().require_dataset);
        assert!(!run(&["--plain-directories"], &[]).policy().require_dataset);
        assert!(run(&["--plain-directories"], &[]).plain_directories);
        assert!(run(&[], &[("CLOUDSYNC_PLAIN_DIRECTORIES", "1")]).plain_directories);
        assert!(!run(&[], &[("CLOUDSYNC_PLAIN_DIRECTORIES", "0")]).plain_directories);
        assert_eq!(parse(&["--help"], &[]), Ok(Parsed::Help));
        assert_eq!(parse(&["-V"], &[]), Ok(Parsed::Version));
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(parse(&["--db"], &[]).unwrap_err(), "--db needs a value (see --help)");
        assert!(parse(&["--reconcile", "59"], &[]).unwrap_err().contains("at least 60"));
        assert!(parse(&["--reconcile", "soon"], &[]).unwrap_err().contains("at least 60"));
        assert!(parse(&["--frobnicate"], &[]).unwrap_err().contains("unexpected argument \"--frobnicate\""));
        assert!(parse(&["-x"], &[]).unwrap_err().contains("unknown option -x"));
        assert!(parse(&["--foreground=yes"], &[]).unwrap_err().contains("takes no value"));
        assert!(parse(&["extra"], &[]).is_err());
    }
}
