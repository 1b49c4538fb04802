//! Which process owns a record (a job, a lock, an upload), and whether it still runs.

/// This process, as recorded in the tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: i64,
    pub start: i64,
}

/// The start time of a process (field 22 of /proc/<pid>/stat), to tell it from a later
/// process that reuses its pid.
fn start_time(pid: i64) -> Option<i64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None; // a zombie has finished
    }
    fields.get(19)?.parse().ok()
}

impl Owner {
    pub fn me() -> Owner {
        let pid = i64::from(std::process::id());
        Owner { pid, start: start_time(pid).unwrap_or(0) }
    }

    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}
