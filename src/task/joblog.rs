//! Job logs (truenas-cloudsync.md §7.9): one file per job, statistics thinned to the first
//! block and then one block per 300 seconds, every other line unchanged; and the excerpt
//! stored with the job: the first 10 lines, `... N more lines ...`, the last 10.

use crate::engine::Progress;
use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a statistics block is kept after the first one.
pub const STATS_EVERY: Duration = Duration::from_secs(300);
/// The text of an excerpt whose log file is gone.
pub const LOG_REMOVED: &str = "Log file was removed";

struct Inner {
    file: File,
    last_stats: Option<Instant>,
    /// The last lines, for error messages (§7.10: the last 5 lines).
    tail: std::collections::VecDeque<String>,
}

/// A receiver of every line written to a job log.
pub type Tap = Box<dyn Fn(&str) + Send + Sync>;

/// An append-only job log.
pub struct JobLog {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Receives every line written (the C API's and the CLI's log callbacks).
    tap: std::sync::OnceLock<Tap>,
}

/// The current time broken down, in local time or UTC.
pub(crate) fn now_tm(utc: bool) -> libc::tm {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r / gmtime_r write only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe {
        if utc {
            libc::gmtime_r(&now, &mut tm);
        } else {
            libc::localtime_r(&now, &mut tm);
        }
    }
    tm
}

/// Local time as rclone prints it: `2026/11/24 14:00:00`.
pub fn timestamp() -> String {
    let tm = now_tm(false);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

impl JobLog {
    /// Create (or append to) the log at `path`, in a directory created with mode 0700.
    pub fn create(path: &Path) -> Result<JobLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| Error::io("create log directory", dir.display(), e))?;
        }
        use std::os::unix::fs::DirBuilderExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("open job log", path.display(), e))?;
        Ok(JobLog {
            path: path.to_path_buf(),
            inner: Mutex::new(Inner { file, last_stats: None, tail: Default::default() }),
            tap: std::sync::OnceLock::new(),
        })
    }

    /// Send every line written from now on to `tap` as well (once per log).
    pub fn set_tap(&self, tap: Tap) {
        let _ = self.tap.set(tap);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One log line, rclone-style: `2026/11/24 14:00:00 INFO  : message`.
    pub fn line(&self, level: log::Level, message: &str) {
        let lvl = match level {
            log::Level::Error => "ERROR",
            log::Level::Warn => "NOTICE",
            log::Level::Info => "INFO ",
            _ => "DEBUG",
        };
        self.raw(&format!("{} {lvl} : {message}", timestamp()));
    }

    /// A line written exactly as given (script output with its prefix).
    pub fn raw(&self, line: &str) {
        {
            let Ok(mut inner) = self.inner.lock() else { return };
            for l in line.lines() {
                let _ = writeln!(inner.file, "{l}");
                inner.tail.push_back(l.to_string());
                if inner.tail.len() > 5 {
                    inner.tail.pop_front();
                }
            }
        }
        // Outside the lock: the tap may be slow (a C callback) and lines from other
        // threads must not wait for it.
        if let Some(tap) = self.tap.get() {
            for l in line.lines() {
                tap(l);
            }
        }
    }

    /// A statistics block, kept only if it is the first or 300 s have passed since the last
    /// one kept (TrueNAS's `RcloneVerboseLogCutter(300)` at one block per second).
    pub fn stats(&self, p: &Progress) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let due = inner.last_stats.is_none_or(|t| t.elapsed() >= STATS_EVERY);
        if !due {
            return;
        }
        inner.last_stats = Some(Instant::now());
        let mut block = format!("{} INFO  :\n", timestamp());
        let pct = |d: u64, t: u64| (d * 100).checked_div(t).unwrap_or(0);
        block.push_str(&format!(
            "Transferred:   \t{} / {}, {}%, {}/s, ETA {}\n",
            crate::engine::stats::human_bytes(p.bytes_done),
            crate::engine::stats::human_bytes(p.bytes_total),
            pct(p.bytes_done, p.bytes_total),
            crate::engine::stats::human_bytes(p.speed as u64),
            p.eta.map(crate::engine::stats::human_duration).unwrap_or_else(|| "-".into())
        ));
        block.push_str(&format!("Errors:        {}\n", p.errors));
        block.push_str(&format!(
            "Checks:        {} / {}, {}%\n",
            p.checks_done,
            p.checks_total,
            pct(p.checks_done, p.checks_total)
        ));
        block.push_str(&format!(
            "Transferred:   {} / {}, {}%\n",
            p.files_done,
            p.files_total,
            pct(p.files_done, p.files_total)
        ));
        block.push_str(&format!("Elapsed time:  {:.1}s\n", p.elapsed.as_secs_f64()));
        if !p.transferring.is_empty() {
            block.push_str("Transferring:\n");
            for (name, done, size) in &p.transferring {
                block.push_str(&format!(
                    " * {name}: {}% /{}\n",
                    pct(*done, *size),
                    crate::engine::stats::human_bytes(*size)
                ));
            }
        }
        block.push('\n');
        let _ = inner.file.write_all(block.as_bytes());
    }

    /// The last (up to) 5 lines written, for the job's error message (§7.10).
    pub fn last_lines(&self) -> Vec<String> {
        self.inner.lock().map(|i| i.tail.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn flush(&self) {
        if let Ok(mut i) = self.inner.lock() {
            let _ = i.file.flush();
        }
    }
}

/// The excerpt of a log file: all of it up to 20 lines; otherwise the first 10 lines,
/// `... N more lines ...` and the last 10. A missing file gives [`LOG_REMOVED`].
pub fn excerpt(path: &Path) -> String {
    let Ok(f) = File::open(path) else { return LOG_REMOVED.to_string() };
    let mut head = Vec::new();
    let mut tail = std::collections::VecDeque::new();
    let mut total = 0usize;
    for line in BufReader::new(f).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).into_owned();
        total += 1;
        if head.len() < 10 {
            head.push(line);
        } else {
            tail.push_back(line);
            if tail.len() > 10 {
                tail.pop_front();
            }
        }
    }
    let mut out = head;
    if total > 20 {
        out.push(format!("... {} more lines ...", total - 20));
    }
    out.extend(tail);
    let mut s = out.join("\n");
    if total > 0 {
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_rules() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("1.log");
        assert_eq!(excerpt(&p), LOG_REMOVED);
        std::fs::write(&p, "[Pre-script] Custom error\n").unwrap();
        assert_eq!(excerpt(&p), "[Pre-script] Custom error\n");
        let lines: Vec<String> = (1..=20).map(|i| format!("l{i}")).collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        assert_eq!(excerpt(&p), lines.join("\n") + "\n");
        let lines: Vec<String> = (1..=25).map(|i| format!("l{i}")).collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let e = excerpt(&p);
        let got: Vec<&str> = e.lines().collect();
        assert_eq!(got.len(), 21);
        assert_eq!(got[9], "l10");
        assert_eq!(got[10], "... 5 more lines ...");
        assert_eq!(got[11], "l16");
        assert_eq!(got[20], "l25");
    }

    #[test]
    fn statistics_are_thinned_other_lines_kept() {
        let d = tempfile::tempdir().unwrap();
        let log = JobLog::create(&d.path().join("logs/7.log")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(d.path().join("logs")).unwrap().permissions().mode() & 0o777, 0o700);
        let p = Progress { files_total: 3, bytes_total: 100, ..Default::default() };
        for i in 0..10 {
            log.stats(&p);
            log.line(log::Level::Info, &format!("file{i}: Copied (new)"));
        }
        log.flush();
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.matches("Elapsed time:").count(), 1, "only the first block within 300 s");
        assert_eq!(text.matches("Copied (new)").count(), 10);
        assert_eq!(log.last_lines().len(), 5);
        assert!(log.last_lines()[4].ends_with("file9: Copied (new)"));
    }
}
