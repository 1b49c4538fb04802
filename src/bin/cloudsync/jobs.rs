//! `cloudsync job list|show|log|abort` and what `task run --follow` shows while a job
//! runs: a live progress line, the job's log, and one closing sentence.

use crate::admin::StoreArgs;
use clap::Subcommand;
use cloudsync::Result;
use cloudsync::task::api::{self, ApiError};
use serde_json::{Value, json};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

#[derive(Subcommand)]
pub enum JobCmd {
    /// The newest jobs, newest first: id, task, state, start, duration, progress, error.
    List {
        /// Only this task's jobs.
        #[arg(long)]
        task: Option<i64>,
        /// How many (default 20).
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One job as JSON: state, progress, error, times, log excerpt.
    Show { id: i64 },
    /// A job's whole log (the excerpt when the log file is gone).
    Log {
        id: i64,
        /// Keep printing new lines until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Abort a running or waiting job (from any process; through cloudsyncd when it runs).
    Abort { id: i64 },
}

fn api_value<T: Into<Value>>(r: std::result::Result<T, ApiError>) -> Result<Value> {
    r.map(Into::into).map_err(|e| match e {
        ApiError::Failed(e) => e,
        v @ ApiError::Validation(_) => cloudsync::Error::usage(v.to_string()),
    })
}

pub fn job(cmd: JobCmd, s: &StoreArgs) -> Result<i32> {
    let store = s.open()?;
    match cmd {
        JobCmd::List { task, limit, json } => {
            if let Some(t) = task {
                api_value(api::task_get(&store, t, false))?;
            }
            let list = api_value(api::job_list(&store, task, limit))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).unwrap_or_default());
                return Ok(0);
            }
            let now = chrono::Utc::now().timestamp();
            let rows: Vec<[String; 7]> = list.as_array().into_iter().flatten().map(|j| job_row(j, now)).collect();
            print_table(&["ID", "TASK", "STATE", "STARTED", "TIME", "PROGRESS", "ERROR"], &rows);
        }
        JobCmd::Show { id } => {
            let j = api_value(api::job_get(&store, id))?;
            println!("{}", serde_json::to_string_pretty(&j).unwrap_or_default());
        }
        JobCmd::Log { id, follow } => {
            if !follow {
                print!("{}", api_value(api::job_log(&store, id))?.as_str().unwrap_or(""));
                return Ok(0);
            }
            let mut shown = 0;
            loop {
                let j = api_value(api::job_get(&store, id))?;
                match j["logs_path"].as_str() {
                    Some(p) => shown = print_new(std::path::Path::new(p), shown, &mut std::io::stdout()),
                    None if ended(&j) => print!("{}", j["logs_excerpt"].as_str().unwrap_or("")),
                    None => {}
                }
                if ended(&j) {
                    return Ok(0);
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
        }
        JobCmd::Abort { id } => {
            let aborted = match s.daemon() {
                Some(mut d) => d.call("core.job_abort", json!([id]))?,
                None => api_value(api::job_abort(&store, id))?,
            };
            println!("{}", json!({"aborted": aborted}));
        }
    }
    Ok(0)
}

fn ended(job: &Value) -> bool {
    matches!(job["state"].as_str(), Some("SUCCESS" | "FAILED" | "ABORTED"))
}

/// A Unix time in the local time zone, to the second.
pub fn local_time(unix: i64) -> String {
    use chrono::TimeZone;
    chrono::Local
        .timestamp_opt(unix, 0)
        .single()
        .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Seconds as `1h02m`, `3m05s` or `12s`.
fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

fn job_row(j: &Value, now: i64) -> [String; 7] {
    let started = j["time_started"].as_i64();
    let took = started.map(|s| duration(j["time_finished"].as_i64().unwrap_or(now) - s));
    let state = j["state"].as_str().unwrap_or("?");
    let progress = if state == "RUNNING" {
        format!("{}% {}", j["progress"]["percent"], j["progress"]["description"].as_str().unwrap_or(""))
    } else {
        String::new()
    };
    let error: String = j["error"].as_str().unwrap_or("").lines().next().unwrap_or("").chars().take(100).collect();
    [
        j["id"].to_string(),
        j["task_id"].as_i64().map_or("-".into(), |t| t.to_string()),
        format!("{state}{}", if j["dry_run"] == true { " (dry run)" } else { "" }),
        started.map_or("-".into(), local_time),
        took.unwrap_or_else(|| "-".into()),
        progress,
        error,
    ]
}

/// Columns padded to their widest cell (by characters); the last one is not padded.
pub fn print_table<const N: usize>(head: &[&str; N], rows: &[[String; N]]) {
    let mut width = [0usize; N];
    for (i, h) in head.iter().enumerate() {
        width[i] = h.chars().count();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(c);
                out.extend(std::iter::repeat_n(' ', width[i] - c.chars().count() + 2));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Print the complete lines of `path` after byte `from` to `out`; the new offset.
pub fn print_new(path: &std::path::Path, from: u64, out: &mut dyn Write) -> u64 {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return from };
    let mut text = Vec::new();
    if f.seek(SeekFrom::Start(from)).is_err() || f.read_to_end(&mut text).is_err() {
        return from;
    }
    let complete = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let _ = out.write_all(&text[..complete]);
    let _ = out.flush();
    from + complete as u64
}

/// What `task run --follow` shows on stderr: on a terminal one progress line rewritten
/// in place, with log lines printed above it; elsewhere a progress line each time the
/// percentage or the step changes.
pub struct Follow {
    tty: bool,
    state: Mutex<(u32, String, bool)>,
}

impl Follow {
    pub fn new() -> Follow {
        Follow { tty: std::io::stderr().is_terminal(), state: Mutex::new((u32::MAX, String::new(), false)) }
    }

    pub fn progress(&self, percent: u32, description: &str) {
        let Ok(mut st) = self.state.lock() else { return };
        if st.0 == percent && st.1 == description {
            return;
        }
        st.0 = percent;
        st.1 = description.to_string();
        let mut e = std::io::stderr().lock();
        if self.tty {
            let text: String = format!("{percent:>3}% {description}").chars().take(120).collect();
            let _ = write!(e, "\r\x1b[K{text}");
            st.2 = true;
        } else {
            let _ = writeln!(e, "progress: {percent}% {description}");
        }
        let _ = e.flush();
    }

    /// Log text (whole lines), above the progress line.
    pub fn log(&self, text: &str) {
        let Ok(mut st) = self.state.lock() else { return };
        let mut e = std::io::stderr().lock();
        if std::mem::take(&mut st.2) {
            let _ = write!(e, "\r\x1b[K");
            st.0 = u32::MAX;
        }
        let _ = write!(e, "{text}");
        if !text.ends_with('\n') {
            let _ = writeln!(e);
        }
    }

    /// The closing sentence, on stdout: how job `id` ended.
    pub fn finish(&self, id: i64, state: &str, error: Option<&str>) {
        if let Ok(mut st) = self.state.lock()
            && std::mem::take(&mut st.2)
        {
            eprint!("\r\x1b[K");
        }
        match (state, error) {
            ("SUCCESS", _) => println!("Job {id} succeeded."),
            ("ABORTED", _) => println!("Job {id} was aborted."),
            ("WAITING", _) => println!("Job {id} is waiting for the task's running job to end."),
            (_, Some(e)) => println!("Job {id} failed: {}", e.trim_end()),
            (s, None) => println!("Job {id} ended {s}."),
        }
    }
}
