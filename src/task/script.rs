//! Pre- and post-scripts (truenas-cloudsync.md §7.6).
//!
//! The text is trimmed; an empty script is skipped. A `#!` first line names the
//! interpreter (split with shell-word rules), otherwise `/bin/bash`. The text goes to a
//! private temporary file (mode 0700, RAM-backed where possible) run as
//! `interpreter + [file]`, so a `noexec` temporary directory does not matter. stdout and
//! stderr are merged, and each line goes to the job log with `[Pre-script] ` or
//! `[Post-script] `. The environment is the caller's, minus every inherited `CLOUDSYNC_*`
//! and `CLOUD_SYNC_*` variable (those can hold secrets), plus the allow-listed
//! `CLOUD_SYNC_*` variables the caller passes. Abort sends SIGTERM to the script's whole
//! process group, then SIGKILL after 10 s.

use super::joblog::JobLog;
use crate::engine::CancelToken;
use crate::error::{Error, Kind, Result};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long an aborted script gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    Pre,
    Post,
}

impl Which {
    fn prefix(self) -> &'static str {
        match self {
            Which::Pre => "[Pre-script] ",
            Which::Post => "[Post-script] ",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Which::Pre => "Pre-script",
            Which::Post => "Post-script",
        }
    }
}

/// Whether `e` is a script's own failure (`Pre-script failed with exit code N`): the
/// script's lines in the job log already say why, so the sentence is not logged again
/// (TrueNAS's excerpt of a failed pre-script is exactly its `[Pre-script] ...` lines).
pub fn is_script_failure(e: &Error) -> bool {
    [Which::Pre, Which::Post].iter().any(|w| e.message().starts_with(&format!("{} failed", w.name())))
}

/// Split a `#!` line with POSIX shell-word rules (quotes and backslashes).
pub fn shell_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(Error::usage("Parse error: No closing quotation")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(Error::usage("Parse error: No closing quotation")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(Error::usage("Parse error: No closing quotation")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(x) => cur.push(x),
                    None => return Err(Error::usage("Parse error: No escaped character")),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Where the script file is written: RAM-backed when possible.
fn script_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if nix::unistd::access(&shm, nix::unistd::AccessFlags::W_OK).is_ok() { shm } else { std::env::temp_dir() }
}

/// The script's environment: the inherited one without any `CLOUDSYNC_*` or
/// `CLOUD_SYNC_*` variable (they may hold secrets, e.g. the CLI's S3 key), plus `extra`.
pub fn environment(
    inherited: impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    extra: &[(String, String)],
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut out: Vec<_> = inherited
        .filter(|(k, _)| {
            let k = k.to_string_lossy();
            !(k.starts_with("CLOUDSYNC_") || k.starts_with("CLOUD_SYNC_"))
        })
        .collect();
    out.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
    out
}

struct TempScript(PathBuf);

impl Drop for TempScript {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Run a script to completion, logging its output. Non-zero exit: `Pre-script failed with
/// exit code N`. Cancelled: the process group is terminated and the error is `cancelled`.
pub fn run(which: Which, text: &str, env: &[(String, String)], log: &JobLog, cancel: &CancelToken) -> Result<()> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    let mut argv = match text.strip_prefix("#!") {
        Some(rest) => shell_words(rest.lines().next().unwrap_or_default())?,
        None => vec!["/bin/bash".to_string()],
    };
    if argv.is_empty() {
        argv.push("/bin/bash".into());
    }
    let mut rnd = [0u8; 8];
    let _ = getrandom::getrandom(&mut rnd);
    let path = script_dir().join(format!("cloudsync-script-{}", hex::encode(rnd)));
    let _guard = {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .map_err(|e| Error::io("create script file", path.display(), e))?;
        f.write_all(text.as_bytes()).map_err(|e| Error::io("write script file", path.display(), e))?;
        f.write_all(b"\n").map_err(|e| Error::io("write script file", path.display(), e))?;
        TempScript(path.clone())
    };
    let (reader, writer) = std::io::pipe().map_err(|e| Error::io("create pipe", "script", e))?;
    let writer2 = writer.try_clone().map_err(|e| Error::io("create pipe", "script", e))?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).arg(&path).stdin(Stdio::null()).stdout(writer).stderr(writer2).process_group(0);
    cmd.env_clear().envs(environment(std::env::vars_os(), env));
    let mut child =
        cmd.spawn().map_err(|e| Error::new(Kind::Io, format!("{} could not start {}: {e}", which.name(), argv[0])))?;
    drop(cmd); // closes our copies of the pipe's write end
    let pgid = Pid::from_raw(child.id() as i32);
    std::thread::scope(|s| {
        s.spawn(|| {
            for line in BufReader::new(reader).split(b'\n').map_while(std::result::Result::ok) {
                log.raw(&format!("{}{}", which.prefix(), String::from_utf8_lossy(&line)));
            }
        });
        let mut term_sent: Option<Instant> = None;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    // The group may outlive its leader: make sure nothing keeps running.
                    let _ = killpg(pgid, Signal::SIGKILL);
                    if term_sent.is_some() || cancel.is_cancelled() {
                        return Err(Error::cancelled());
                    }
                    return match status.code() {
                        Some(0) => Ok(()),
                        Some(code) => {
                            Err(Error::new(Kind::Other, format!("{} failed with exit code {code}", which.name())))
                        }
                        None => Err(Error::new(
                            Kind::Other,
                            format!("{} was killed by signal {}", which.name(), status.signal().unwrap_or(0)),
                        )),
                    };
                }
                Ok(None) => {}
                Err(e) => return Err(Error::io("wait for script", which.name(), e)),
            }
            if cancel.is_cancelled() {
                match term_sent {
                    None => {
                        let _ = killpg(pgid, Signal::SIGTERM);
                        term_sent = Some(Instant::now());
                    }
                    Some(t) if t.elapsed() >= KILL_GRACE => {
                        let _ = killpg(pgid, Signal::SIGKILL);
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, JobLog) {
        let d = tempfile::tempdir().unwrap();
        let l = JobLog::create(&d.path().join("j.log")).unwrap();
        (d, l)
    }

    fn text(l: &JobLog) -> String {
        l.flush();
        std::fs::read_to_string(l.path()).unwrap()
    }

    #[test]
    fn failure_has_the_exact_message_and_prefixed_output() {
        let (_d, l) = log();
        let e = run(Which::Pre, "echo Custom error\nexit 123", &[], &l, &CancelToken::new()).unwrap_err();
        assert_eq!(e.to_string(), "Pre-script failed with exit code 123");
        assert_eq!(text(&l), "[Pre-script] Custom error\n");
        assert!(run(Which::Post, "  \n ", &[], &l, &CancelToken::new()).is_ok());
    }

    #[test]
    fn shebang_interpreter_and_environment() {
        let (_d, l) = log();
        let script = "#!/usr/bin/env python3\nimport os\nprint('py', os.environ.get('CLOUD_SYNC_DIRECTION'), 'PATH' in os.environ)";
        run(Which::Post, script, &[("CLOUD_SYNC_DIRECTION".into(), "PUSH".into())], &l, &CancelToken::new()).unwrap();
        assert_eq!(text(&l), "[Post-script] py PUSH True\n");
        let inherited = vec![
            ("PATH".into(), "/bin".into()),
            ("CLOUDSYNC_S3_SECRET_ACCESS_KEY".into(), "leaked".into()),
            ("CLOUD_SYNC_ENCRYPTION_PASSWORD".into(), "leaked".into()),
        ];
        let env = environment(inherited.into_iter(), &[("CLOUD_SYNC_ID".into(), "7".into())]);
        let keys: Vec<String> = env.iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(keys, vec!["PATH", "CLOUD_SYNC_ID"]);
        assert_eq!(
            shell_words("/usr/bin/env  'python 3' \"a\\\"b\" c\\ d").unwrap(),
            vec!["/usr/bin/env", "python 3", "a\"b", "c d"]
        );
        assert_eq!(shell_words("'x").unwrap_err().to_string(), "Parse error: No closing quotation");
    }

    #[test]
    fn abort_kills_the_whole_process_group() {
        let (d, l) = log();
        let marker = d.path().join("child.pid");
        let script = format!("sleep 300 & echo $! > {}\nwait", marker.display());
        let cancel = CancelToken::new();
        let c2 = cancel.clone();
        let started = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            c2.cancel();
        });
        let e = run(Which::Pre, &script, &[], &l, &cancel).unwrap_err();
        assert!(e.is_cancelled());
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| !s.contains(") Z ")).unwrap_or(false);
        assert!(!alive, "the script's child survived the abort");
    }
}
