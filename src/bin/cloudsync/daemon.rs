//! Talking to a running `cloudsyncd` over its control socket (docs/DAEMON.md). The CLI
//! uses the daemon only when one listens, lets us in and serves the same database;
//! otherwise it does the work in-process, as without a daemon.

use cloudsync::{Error, Kind, Result};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// The default control socket (the daemon's default).
pub const DEFAULT_SOCKET: &str = "/run/cloudsync/cloudsyncd.sock";

const TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to the daemon.
pub struct Daemon {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Daemon {
    /// Connect to the daemon on `socket` if it serves database `db`. `None` when no
    /// daemon listens there, it refuses us, or it serves another database.
    pub fn connect(socket: &Path, db: &Path) -> Option<Daemon> {
        let stream = UnixStream::connect(socket).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).ok()?;
        stream.set_write_timeout(Some(TIMEOUT)).ok()?;
        let mut d = Daemon { reader: BufReader::new(stream.try_clone().ok()?), writer: stream, next_id: 1 };
        let info = d.call("core.info", json!([])).ok()?;
        let ours = std::fs::canonicalize(db).ok()?;
        (Path::new(info["db"].as_str()?) == ours).then_some(d)
    }

    /// Call `method` with `params` (a JSON list): its result, or its error.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_vec(&json!({"id": id, "method": method, "params": params}))
            .map_err(|e| Error::other(e.to_string()))?;
        line.push(b'\n');
        let lost = |e: std::io::Error| Error::new(Kind::Network, format!("lost the connection to cloudsyncd: {e}"));
        self.writer.write_all(&line).map_err(lost)?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer).map_err(lost)? == 0 {
            return Err(Error::new(Kind::Network, "cloudsyncd closed the connection (is it stopping?)"));
        }
        let v: Value = serde_json::from_str(&answer)
            .map_err(|_| Error::new(Kind::Protocol, "cloudsyncd answered something that is not JSON"))?;
        if let Some(e) = v.get("error") {
            let kind = match e["code"].as_str() {
                Some("ENOENT") => Kind::NotFound,
                Some("EINVAL") => Kind::Usage,
                Some("EPERM" | "EACCES") => Kind::Permission,
                _ => Kind::Other,
            };
            return Err(Error::new(kind, e["message"].as_str().unwrap_or("cloudsyncd reported an error").to_string()));
        }
        if v["id"] != json!(id) {
            return Err(Error::new(Kind::Protocol, "cloudsyncd answered another request"));
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    /// `task run` through the daemon: start the job there, follow its log on stderr (when
    /// we may read it) until it ends, print the outcome (as JSON, or with `follow` a live
    /// progress line and a closing sentence). Interrupting this command does not stop the
    /// job (`task abort` does).
    pub fn run_task(&mut self, task_id: i64, dry_run: bool, follow: bool) -> Result<i32> {
        let job = self.call("cloudsync.sync", json!([task_id, {"dry_run": dry_run}]))?;
        let job = job.as_i64().ok_or_else(|| Error::new(Kind::Protocol, "cloudsyncd did not return a job id"))?;
        let shown_to = crate::jobs::Follow::new();
        let mut shown = 0;
        loop {
            let record = self.call("core.job", json!([job]))?;
            if let Some(path) = record["logs_path"].as_str() {
                let mut text = Vec::new();
                shown = crate::jobs::print_new(Path::new(path), shown, &mut text);
                if !text.is_empty() {
                    shown_to.log(&String::from_utf8_lossy(&text));
                }
            }
            let state = record["state"].as_str().unwrap_or("");
            if matches!(state, "SUCCESS" | "FAILED" | "ABORTED") {
                if follow {
                    shown_to.finish(job, state, record["error"].as_str());
                } else {
                    let outcome = json!({"job_id": job, "state": state, "error": record["error"], "logs_excerpt": record["logs_excerpt"], "error_details": record["error_details"]});
                    println!("{}", serde_json::to_string_pretty(&outcome).unwrap_or_default());
                }
                let details = serde_json::from_value(record["error_details"].clone()).ok();
                return Ok(cloudsync::task::runner::exit_code(state, details.as_ref()));
            }
            if follow && state == "RUNNING" {
                let p = &record["progress"];
                shown_to.progress(p["percent"].as_u64().unwrap_or(0) as u32, p["description"].as_str().unwrap_or(""));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// Tell a daemon serving `db` that tasks changed (it also notices by itself; this makes
/// it immediate). Silent when there is none.
pub fn notify_reload(socket: &Path, db: &Path) {
    if let Some(mut d) = Daemon::connect(socket, db) {
        let _ = d.call("core.reload", json!([]));
    }
}
