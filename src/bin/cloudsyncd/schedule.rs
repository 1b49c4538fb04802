//! The schedule: which enabled task fires when (truenas-cloudsync.md §8), and the loop that
//! sleeps until the next fire. Pure and clock-driven: the time comes from a [`Clock`], so
//! tests drive the loop with a fake clock instead of waiting real minutes. Starting a job
//! is the caller's business (the `fire` callback); this module never touches the store.
//!
//! Semantics follow the cron TrueNAS generates (Vixie cron), evaluated by `croner` in the
//! system's local time zone:
//! - five fields, day of month and day of week OR-ed when both are restricted;
//! - a fixed-time job whose time falls into a spring-forward gap fires at the first
//!   instant after the gap; on a fall-back day it fires once, at the earlier instant;
//!   interval jobs (`*/15`, `*`) follow real time;
//! - fires missed while the machine slept or the clock jumped forward collapse into one
//!   run when the loop next wakes.

use chrono::{DateTime, TimeZone};
use croner::Cron;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use tokio::sync::mpsc;

/// Where "now" comes from, and how to wait for a later time.
pub trait Clock {
    /// The time zone schedules are evaluated in.
    type Tz: TimeZone;
    /// The current wall-clock time.
    fn now(&self) -> DateTime<Self::Tz>;
    /// Resolve at (or after) wall-clock time `at`.
    fn sleep_until(&self, at: &DateTime<Self::Tz>) -> impl Future<Output = ()>;
}

/// The system clock in the system's local time zone (`TZ`, else `/etc/localtime`).
pub struct SystemClock;

impl Clock for SystemClock {
    type Tz = chrono::Local;

    fn now(&self) -> DateTime<chrono::Local> {
        chrono::Local::now()
    }

    fn sleep_until(&self, at: &DateTime<chrono::Local>) -> impl Future<Output = ()> {
        // A monotonic sleep for the wall-clock distance. Should the wall clock jump
        // meanwhile, the loop re-reads it when it wakes (and at each reconciliation).
        let wait = at.signed_duration_since(chrono::Local::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait)
    }
}

/// A task as the scheduler sees it: its id and its valid cron expression.
#[derive(Clone, Debug)]
pub struct TaskSchedule {
    pub id: i64,
    /// The five fields as one string (`"00 * * * *"`): what identifies a schedule change.
    pub expr: String,
    pub cron: Cron,
}

impl PartialEq for TaskSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && self.expr == other.expr
    }
}

impl TaskSchedule {
    /// The schedule of a stored task body: `Ok(None)` when the task is disabled,
    /// `Err(text)` when its schedule is not a valid cron expression.
    pub fn from_body(id: i64, body: &Map<String, Value>) -> Result<Option<TaskSchedule>, String> {
        if !cloudsync::task::model::is_scheduled(body) {
            return Ok(None);
        }
        let Some(schedule) = body.get("schedule").and_then(Value::as_object) else {
            return Err("the task has no schedule".into());
        };
        match cloudsync::task::model::cron_schedule(schedule) {
            Ok(cron) => Ok(Some(TaskSchedule { id, expr: cron.as_str().to_string(), cron })),
            Err(expr) => Err(format!("Invalid cron expression: {expr:?}")),
        }
    }
}

/// The first fire of `cron` strictly after `after` (same time zone), if any.
pub fn next_fire<Tz: TimeZone>(cron: &Cron, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
    cron.find_next_occurrence(after, false).ok()
}

struct Entry<Tz: TimeZone> {
    task: TaskSchedule,
    next: Option<DateTime<Tz>>,
}

/// The scheduled tasks and their next fires.
pub struct Schedule<Tz: TimeZone> {
    entries: BTreeMap<i64, Entry<Tz>>,
}

impl<Tz: TimeZone> Default for Schedule<Tz> {
    fn default() -> Self {
        Schedule { entries: BTreeMap::new() }
    }
}

impl<Tz: TimeZone> Schedule<Tz> {
    /// Replace the set of scheduled tasks. Tasks whose expression did not change keep their
    /// next fire; new or changed ones count from `now`. Returns whether anything changed.
    pub fn set(&mut self, tasks: Vec<TaskSchedule>, now: &DateTime<Tz>) -> bool {
        let mut changed = tasks.len() != self.entries.len();
        let mut entries = BTreeMap::new();
        for task in tasks {
            let entry = match self.entries.remove(&task.id) {
                Some(old) if old.task == task => old,
                _ => {
                    changed = true;
                    let next = next_fire(&task.cron, now);
                    Entry { task, next }
                }
            };
            entries.insert(entry.task.id, entry);
        }
        self.entries = entries;
        changed
    }

    /// The tasks due at `now` (next fire at or before it), in id order. Each one's next
    /// fire moves past `now`, so fires missed while asleep collapse into this one.
    pub fn take_due(&mut self, now: &DateTime<Tz>) -> Vec<i64> {
        let mut due = Vec::new();
        for (id, e) in self.entries.iter_mut() {
            if e.next.as_ref().is_some_and(|n| n <= now) {
                due.push(*id);
                e.next = next_fire(&e.task.cron, now);
            }
        }
        due
    }

    /// The earliest next fire.
    pub fn next_wake(&self) -> Option<DateTime<Tz>> {
        self.entries.values().filter_map(|e| e.next.clone()).min()
    }

    /// Every scheduled task with its next fire.
    pub fn next_runs(&self) -> Vec<(i64, Option<DateTime<Tz>>)> {
        self.entries.iter().map(|(id, e)| (*id, e.next.clone())).collect()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// What the loop is told from outside.
pub enum Command {
    /// The enabled tasks now (sent on changes and at each reconciliation).
    Set(Vec<TaskSchedule>),
}

/// The scheduler loop: fire what is due, sleep until the next fire or a command, repeat.
/// `fire(task_id)` must not block (it hands the run to a worker); `published` sees the
/// schedule after every change (for `next_run` in queries). Returns when every sender of
/// `commands` is gone.
pub async fn run<C: Clock>(
    clock: &C,
    schedule: &mut Schedule<C::Tz>,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    mut fire: impl FnMut(i64),
    mut published: impl FnMut(&Schedule<C::Tz>),
) {
    published(schedule);
    loop {
        let now = clock.now();
        let due = schedule.take_due(&now);
        for id in &due {
            fire(*id);
        }
        if !due.is_empty() {
            published(schedule);
        }
        let wake = schedule.next_wake();
        let sleep = async {
            match &wake {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            cmd = commands.recv() => match cmd {
                Some(Command::Set(tasks)) => {
                    if schedule.set(tasks, &clock.now()) {
                        log::info!("schedule: {} enabled task(s)", schedule.len());
                        published(schedule);
                    }
                }
                None => return,
            },
            () = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;
    use chrono_tz::Tz;
    use std::cell::RefCell;

    fn cron(expr: &str) -> Cron {
        let fields: Vec<&str> = expr.split(' ').collect();
        let body = serde_json::json!({"minute": fields[0], "hour": fields[1], "dom": fields[2], "month": fields[3], "dow": fields[4]});
        cloudsync::task::model::cron_schedule(body.as_object().unwrap()).unwrap()
    }

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Tz> {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0).earliest().unwrap()
    }

    /// All fires in `[from, until)`.
    fn fires(expr: &str, from: DateTime<Tz>, until: DateTime<Tz>) -> Vec<DateTime<Tz>> {
        let c = cron(expr);
        let mut out = Vec::new();
        let mut t = from - Duration::seconds(1);
        while let Some(n) = next_fire(&c, &t) {
            if n >= until {
                break;
            }
            out.push(n);
            t = n;
        }
        out
    }

    #[test]
    fn day_31_skips_short_months_and_feb_29_waits_for_a_leap_year() {
        let utc = chrono_tz::UTC;
        let c = cron("0 0 31 * *");
        let mut t = at(utc, 2026, 1, 31, 0, 0);
        let mut got = Vec::new();
        for _ in 0..4 {
            t = next_fire(&c, &t).unwrap();
            got.push(t.format("%Y-%m-%d").to_string());
        }
        assert_eq!(got, ["2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31"]);
        let feb29 = next_fire(&cron("30 12 29 2 *"), &at(utc, 2026, 3, 1, 0, 0)).unwrap();
        assert_eq!(feb29.to_rfc3339(), "2028-02-29T12:30:00+00:00");
        // The last day of a 30-day month is not day 31, and month ends roll over.
        let end = next_fire(&cron("59 23 * * *"), &at(utc, 2026, 4, 30, 23, 59)).unwrap();
        assert_eq!(end.to_rfc3339(), "2026-05-01T23:59:00+00:00");
    }

    #[test]
    fn day_of_month_and_day_of_week_are_ored_like_vixie_cron() {
        // The 13th, or any Friday: Friday 2026-03-06 comes before Friday the 13th.
        let n = next_fire(&cron("0 0 13 * 5"), &at(chrono_tz::UTC, 2026, 3, 1, 0, 0)).unwrap();
        assert_eq!(n.format("%Y-%m-%d").to_string(), "2026-03-06");
        // Both 0 and 7 mean Sunday.
        let n = next_fire(&cron("0 0 * * 7"), &at(chrono_tz::UTC, 2026, 3, 2, 0, 0)).unwrap();
        assert_eq!(n.format("%Y-%m-%d %a").to_string(), "2026-03-08 Sun");
    }

    #[test]
    fn spring_forward_runs_a_job_in_the_gap_right_after_it() {
        // 2026-03-08, New York: 02:00 EST becomes 03:00 EDT; 02:30 does not exist.
        let got = fires("30 2 * * *", at(New_York, 2026, 3, 7, 0, 0), at(New_York, 2026, 3, 10, 0, 0));
        let shown: Vec<String> = got.iter().map(DateTime::to_rfc3339).collect();
        assert_eq!(shown, ["2026-03-07T02:30:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]);
        // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST.
        let got = fires("30 2 * * *", at(Berlin, 2026, 3, 29, 0, 0), at(Berlin, 2026, 3, 31, 0, 0));
        let shown: Vec<String> = got.iter().map(DateTime::to_rfc3339).collect();
        assert_eq!(shown, ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]);
        // An hourly job simply has no 02:00 that day.
        let hourly = fires("0 * * * *", at(New_York, 2026, 3, 8, 0, 0), at(New_York, 2026, 3, 8, 5, 0));
        assert_eq!(hourly.len(), 4, "{hourly:?}"); // 00, 01, 03, 04 (local)
    }

    #[test]
    fn fall_back_runs_a_fixed_time_job_once() {
        // 2026-11-01, New York: 01:00-02:00 happens twice (EDT, then EST).
        let got = fires("30 1 * * *", at(New_York, 2026, 10, 31, 12, 0), at(New_York, 2026, 11, 3, 0, 0));
        let shown: Vec<String> = got.iter().map(DateTime::to_rfc3339).collect();
        assert_eq!(shown, ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]);
        // Berlin, 2026-10-25: 02:00-03:00 happens twice.
        let got = fires("30 2 * * *", at(Berlin, 2026, 10, 25, 0, 0), at(Berlin, 2026, 10, 27, 0, 0));
        let shown: Vec<String> = got.iter().map(DateTime::to_rfc3339).collect();
        assert_eq!(shown, ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]);
        // Once per absolute hour for an hourly job: the repeated hour runs twice, as time passes.
        let hourly = fires("0 * * * *", at(New_York, 2026, 11, 1, 0, 0), at(New_York, 2026, 11, 1, 3, 0));
        assert_eq!(hourly.len(), 4, "{hourly:?}"); // 00 EDT, 01 EDT, 01 EST, 02 EST
    }

    #[test]
    fn the_schedule_keeps_unchanged_fires_and_reschedules_changed_ones() {
        let now = at(chrono_tz::UTC, 2026, 5, 1, 10, 0);
        let task = |id, expr: &str| TaskSchedule { id, expr: expr.into(), cron: cron(expr) };
        let mut s = Schedule::default();
        assert!(s.set(vec![task(1, "0 12 * * *"), task(2, "0 * * * *")], &now));
        assert_eq!(s.next_wake().unwrap(), at(chrono_tz::UTC, 2026, 5, 1, 11, 0));
        let later = now + Duration::minutes(30);
        assert!(!s.set(vec![task(1, "0 12 * * *"), task(2, "0 * * * *")], &later), "nothing changed");
        assert!(s.set(vec![task(2, "30 * * * *")], &later), "task 1 removed, task 2 changed");
        assert_eq!(s.next_runs(), vec![(2, Some(at(chrono_tz::UTC, 2026, 5, 1, 11, 30)))]);
        // Three missed fires (the machine slept) give one run.
        let wake = at(chrono_tz::UTC, 2026, 5, 1, 14, 10);
        assert_eq!(s.take_due(&wake), vec![2]);
        assert_eq!(s.take_due(&wake), Vec::<i64>::new());
        assert_eq!(s.next_wake().unwrap(), at(chrono_tz::UTC, 2026, 5, 1, 14, 30));
    }

    #[test]
    fn disabled_and_invalid_tasks_are_not_scheduled() {
        let body = |v: Value| v.as_object().cloned().unwrap();
        let sched = serde_json::json!({"minute": "*/5", "hour": "*", "dom": "*", "month": "*", "dow": "*"});
        let t = TaskSchedule::from_body(1, &body(serde_json::json!({"enabled": true, "schedule": sched}))).unwrap();
        assert_eq!(t.unwrap().expr, "*/5 * * * *");
        assert!(
            TaskSchedule::from_body(1, &body(serde_json::json!({"enabled": false, "schedule": sched})))
                .unwrap()
                .is_none()
        );
        let bad = serde_json::json!({"minute": "61", "hour": "*", "dom": "*", "month": "*", "dow": "*"});
        assert_eq!(
            TaskSchedule::from_body(1, &body(serde_json::json!({"schedule": bad}))).unwrap_err(),
            "Invalid cron expression: \"61 * * * *\""
        );
    }

    #[test]
    fn a_date_that_never_comes_is_never_due() {
        let now = at(chrono_tz::UTC, 2026, 5, 1, 10, 0);
        let feb30 = TaskSchedule { id: 1, expr: "0 0 30 2 *".into(), cron: cron("0 0 30 2 *") };
        let mut s = Schedule::default();
        s.set(vec![feb30], &now);
        assert_eq!(s.next_runs(), vec![(1, None)]);
        assert_eq!(s.next_wake(), None);
        assert!(s.take_due(&(now + Duration::days(3650))).is_empty());
    }

    /// Virtual time: sleeping jumps the clock to the deadline at once.
    struct FakeClock {
        now: RefCell<DateTime<Utc>>,
        sleeps: RefCell<u32>,
    }

    impl Clock for FakeClock {
        type Tz = Utc;
        fn now(&self) -> DateTime<Utc> {
            *self.now.borrow()
        }
        fn sleep_until(&self, at: &DateTime<Utc>) -> impl Future<Output = ()> {
            *self.sleeps.borrow_mut() += 1;
            let mut now = self.now.borrow_mut();
            if *at > *now {
                *now = *at;
            }
            std::future::ready(())
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_due_every_minute_fires_every_minute_on_a_fake_clock() {
        let start: DateTime<Utc> = "2026-05-01T11:58:30Z".parse().unwrap();
        let clock = FakeClock { now: RefCell::new(start), sleeps: RefCell::new(0) };
        let (tx, mut rx) = mpsc::unbounded_channel::<Command>();
        let tx = RefCell::new(Some(tx));
        let every_minute = TaskSchedule { id: 7, expr: "* * * * *".into(), cron: cron("* * * * *") };
        let hourly = TaskSchedule { id: 8, expr: "0 * * * *".into(), cron: cron("0 * * * *") };
        let mut schedule = Schedule::default();
        schedule.set(vec![every_minute, hourly], &start);
        let fired = RefCell::new(Vec::new());
        let mut published = 0;
        run(
            &clock,
            &mut schedule,
            &mut rx,
            |id| {
                fired.borrow_mut().push((id, clock.now().format("%H:%M:%S").to_string()));
                if fired.borrow().len() == 5 {
                    tx.borrow_mut().take(); // the last sender: the loop returns
                }
            },
            |_| published += 1,
        )
        .await;
        let want = [(7, "11:59:00"), (7, "12:00:00"), (8, "12:00:00"), (7, "12:01:00"), (7, "12:02:00")];
        let want: Vec<(i64, String)> = want.iter().map(|(i, t)| (*i, t.to_string())).collect();
        assert_eq!(*fired.borrow(), want);
        assert_eq!(*clock.sleeps.borrow(), 4, "one sleep per distinct fire time, no polling");
        assert!(published >= 4);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_task_added_while_sleeping_is_picked_up() {
        let start: DateTime<Utc> = "2026-05-01T10:00:00Z".parse().unwrap();
        let clock = FakeClock { now: RefCell::new(start), sleeps: RefCell::new(0) };
        let (tx, mut rx) = mpsc::unbounded_channel();
        // Nothing scheduled: the loop waits for a command, without a timer.
        let every_minute = TaskSchedule { id: 3, expr: "* * * * *".into(), cron: cron("* * * * *") };
        tx.send(Command::Set(vec![every_minute])).unwrap();
        let tx = RefCell::new(Some(tx));
        let mut schedule = Schedule::default();
        let fired = RefCell::new(Vec::new());
        run(
            &clock,
            &mut schedule,
            &mut rx,
            |id| {
                fired.borrow_mut().push((id, clock.now()));
                tx.borrow_mut().take();
            },
            |_| {},
        )
        .await;
        assert_eq!(*fired.borrow(), vec![(3, "2026-05-01T10:01:00Z".parse::<DateTime<Utc>>().unwrap())]);
    }
}
