//! Bandwidth limiting: rclone's `--bwlimit` syntax (sizes, `UP:DOWN` pairs,
//! daily and weekly timetables), the TrueNAS timetable form, the choice of
//! the slot in force at a given time, and the token-bucket [`RateLimiter`]
//! that all transfers of a run share (one per direction).
//!
//! Parsing follows rclone's `fs/bwtimetable.go` and `fs/sizesuffix.go`,
//! including their error texts. Two of rclone's messages print the hour with
//! Go's `%q` on an integer (and the minute message prints the hour); here they
//! print the decimal hour and minute, as sync-semantics.md §10.1 specifies.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const KIB: f64 = 1024.0;

/// rclone's SizeSuffix value: `None` is "off".
fn parse_size_suffix(s: &str) -> Result<Option<u64>, String> {
    if s.is_empty() {
        return Err("empty string".to_string());
    }
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let b = s.as_bytes();
    let n = b.len();
    let multiplier_of = |c: u8| -> Option<f64> {
        let exp = match c {
            b'k' | b'K' => 1,
            b'm' | b'M' => 2,
            b'g' | b'G' => 3,
            b't' | b'T' => 4,
            b'p' | b'P' => 5,
            b'e' | b'E' => 6,
            _ => return None,
        };
        Some(KIB.powi(exp))
    };
    let bad_suffix = |c: u8| format!("bad suffix {}", go_quote_rune(char::from(c)));
    let last = b[n - 1];
    let (suffix_len, multiplier) = match last {
        b'0'..=b'9' | b'.' => (0, KIB),
        b'b' | b'B' => {
            // "KiB" style needs a lower-case 'i', as in rclone.
            if n > 2 && b[n - 2] == b'i' {
                let sym = b[n - 3];
                (3, multiplier_of(sym).ok_or_else(|| bad_suffix(sym))?)
            } else {
                (1, 1.0)
            }
        }
        b'i' | b'I' => {
            if n < 2 {
                return Err(bad_suffix(last));
            }
            let sym = b[n - 2];
            (2, multiplier_of(sym).ok_or_else(|| bad_suffix(sym))?)
        }
        other => (1, multiplier_of(other).ok_or_else(|| bad_suffix(other))?),
    };
    // The suffix bytes are ASCII, so this cut is on a character boundary.
    let number = &s[..n - suffix_len];
    let value = parse_go_float(number)?;
    if value < 0.0 {
        return Err("size can't be negative".to_string());
    }
    let bytes = value * multiplier;
    if bytes >= 9.223_372_036_854_776e18 {
        return Err(format!("size too large {}", go_quote(number.as_bytes())));
    }
    // Truncation towards zero, as Go's float → int64 conversion does.
    Ok(Some(bytes as u64))
}

/// Go's `strconv.ParseFloat` for the decimal forms people write.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {}: invalid syntax", go_quote(s.as_bytes()));
    // Rust accepts "inf"/"nan"; a size can't be either.
    if !s.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return Err(syntax());
    }
    let v: f64 = s.parse().map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(format!("strconv.ParseFloat: parsing {}: value out of range", go_quote(s.as_bytes())));
    }
    Ok(v)
}

/// rclone's size syntax as `--bwlimit` uses it: a bare number is KiB,
/// `B`/`b` is bytes, `K M G T P E` (also `Ki`, `KiB`, …) are powers of 1024,
/// decimals are allowed. Returns bytes. `off` is not a size here; see
/// [`parse_size_or_off`].
pub fn parse_size(s: &str) -> Result<u64, String> {
    parse_size_or_off(s)?.ok_or_else(|| format!("{} is not a size", go_quote(s.as_bytes())))
}

/// Like [`parse_size`], with `off` (any case) accepted as `None`.
pub fn parse_size_or_off(s: &str) -> Result<Option<u64>, String> {
    parse_size_suffix(s)
}

/// Upload (`tx`) and download (`rx`) limits in bytes per second; `None` is
/// unlimited (rclone's `off`, and also `0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BwPair {
    pub tx: Option<u64>,
    pub rx: Option<u64>,
}

impl BwPair {
    pub const UNLIMITED: BwPair = BwPair { tx: None, rx: None };

    /// `RATE` or `UP:DOWN`.
    pub fn parse(s: &str) -> Result<BwPair, String> {
        let rate = |part: &str| parse_size_suffix(part).map(|v| v.filter(|&n| n > 0));
        match s.split_once(':') {
            None => {
                let r = rate(s)?;
                Ok(BwPair { tx: r, rx: r })
            }
            Some((up, down)) => Ok(BwPair { tx: rate(up)?, rx: rate(down)? }),
        }
    }

    pub fn is_unlimited(&self) -> bool {
        self.tx.is_none() && self.rx.is_none()
    }
}

impl fmt::Display for BwPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_rate(self.tx))?;
        if self.rx != self.tx {
            write!(f, ":{}", format_rate(self.rx))?;
        }
        Ok(())
    }
}

/// A rate in the syntax it parses back from (so bytes below 1 KiB carry `B`).
fn format_rate(v: Option<u64>) -> String {
    let Some(v) = v else {
        return "off".to_string();
    };
    if v < 1024 {
        return format!("{v}B");
    }
    let units = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut scaled = v as f64 / KIB;
    let mut unit = 0;
    while scaled >= KIB && unit + 1 < units.len() {
        scaled /= KIB;
        unit += 1;
    }
    if scaled.fract() == 0.0 { format!("{scaled:.0}{}", units[unit]) } else { format!("{scaled:.3}{}", units[unit]) }
}

/// One timetable entry: from `day` (0 = Sunday) at `hhmm` (e.g. 1330).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BwSlot {
    pub day: u32,
    pub hhmm: u32,
    pub bandwidth: BwPair,
}

impl BwSlot {
    fn key(&self) -> u32 {
        self.day * 10000 + self.hhmm
    }
}

/// A parsed `--bwlimit` value: slots in the order given (day-less entries
/// expanded to Sunday…Saturday in place). Empty means unlimited.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct BwTimetable {
    slots: Vec<BwSlot>,
}

const WEEKDAYS: [(&str, &str); 7] = [
    ("sun", "sunday"),
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
];

impl BwTimetable {
    /// Parses every `--bwlimit` form: `RATE`, `UP:DOWN`, and timetables of
    /// `[Day-]HH:MM,RATE` tokens separated by spaces or `;`.
    pub fn parse(spec: &str) -> Result<BwTimetable, String> {
        if spec.is_empty() {
            return Err("empty string".to_string());
        }
        // rclone treats anything without a space or comma as one constant
        // limit, even if it contains ';'.
        if !spec.contains(' ') && !spec.contains(',') {
            let bandwidth = BwPair::parse(spec)?;
            return Ok(BwTimetable { slots: vec![BwSlot { day: 0, hhmm: 0, bandwidth }] });
        }
        let mut slots = Vec::new();
        for tok in spec.split([' ', ';']).filter(|t| !t.is_empty()) {
            let tv: Vec<&str> = tok.split(',').collect();
            let [when, rate] = tv[..] else {
                return Err(format!("invalid time/bandwidth specification: {}", go_quote(tok.as_bytes())));
            };
            if !when.contains('-') {
                let hhmm = validate_hhmm(when)?;
                for day in 0..7 {
                    slots.push(BwSlot { day, hhmm, bandwidth: BwPair::parse(rate)? });
                }
            } else {
                let parts: Vec<&str> = when.split('-').collect();
                let [day, time] = parts[..] else {
                    return Err(format!("invalid time specification: {}", go_quote(when.as_bytes())));
                };
                let day = parse_weekday(day)?;
                let hhmm = validate_hhmm(time)?;
                slots.push(BwSlot { day, hhmm, bandwidth: BwPair::parse(rate)? });
            }
        }
        Ok(BwTimetable { slots })
    }

    pub fn unlimited() -> Self {
        BwTimetable::default()
    }

    /// The TrueNAS task form (truenas-cloudsync.md §10): each `(HH:MM, limit)`
    /// becomes `HH:MM,<N>b` (or `HH:MM,off`), applying to all seven days.
    /// `Some(0)` is unlimited, as in rclone. An empty list is unlimited.
    pub fn from_truenas(slots: &[(String, Option<u64>)]) -> Result<Self, String> {
        if slots.is_empty() {
            return Ok(BwTimetable::unlimited());
        }
        let spec = slots
            .iter()
            .map(|(time, limit)| match limit {
                Some(n) => format!("{time},{n}b"),
                None => format!("{time},off"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        // A time with a space or a separator in it would otherwise be split
        // into other tokens and could slip through.
        if let Some((time, _)) = slots.iter().find(|(t, _)| t.contains([' ', ';', ','])) {
            return Err(format!("invalid time specification (hh:mm): {}", go_quote(time.as_bytes())));
        }
        BwTimetable::parse(&spec)
    }

    /// The slots, in list order.
    pub fn slots(&self) -> &[BwSlot] {
        &self.slots
    }

    /// The limits in force on `weekday` (0 = Sunday … 6 = Saturday) at
    /// `hour:minute`: the latest slot at or before that moment in the week;
    /// when none is (e.g. early Sunday), the last slot in list order, which
    /// wraps around from the end of the week. Among equal slots the later
    /// one in the list wins.
    pub fn limit_at(&self, weekday: u32, hour: u32, minute: u32) -> BwPair {
        let now = weekday * 10000 + hour * 100 + minute;
        let minutes = |key: u32| {
            let key = i64::from(key);
            (key / 10000) * 24 * 60 + ((key / 100) % 100) * 60 + key % 100
        };
        let mut best: Option<(i64, &BwSlot)> = None;
        for slot in &self.slots {
            if slot.key() > now {
                continue;
            }
            let diff = minutes(now) - minutes(slot.key());
            if best.is_none_or(|(d, _)| diff <= d) {
                best = Some((diff, slot));
            }
        }
        best.map(|(_, s)| s).or(self.slots.last()).map_or(BwPair::UNLIMITED, |s| s.bandwidth)
    }

    /// The limits in force now, in the host's local time zone.
    pub fn limit_now(&self) -> BwPair {
        if self.slots.is_empty() {
            return BwPair::UNLIMITED;
        }
        let (weekday, hour, minute) = local_weekday_hour_minute();
        self.limit_at(weekday, hour, minute)
    }

    /// True when no slot limits either direction.
    pub fn is_unlimited(&self) -> bool {
        self.slots.iter().all(|s| s.bandwidth.is_unlimited())
    }
}

impl fmt::Display for BwTimetable {
    /// rclone's layout: a lone Sunday-00:00 slot prints as just the rate,
    /// otherwise `Day-HH:MM,RATE` tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.slots[..]
            && only.day == 0
            && only.hhmm == 0
        {
            return write!(f, "{}", only.bandwidth);
        }
        let mut out = String::new();
        for s in &self.slots {
            if !out.is_empty() {
                out.push(' ');
            }
            let day = WEEKDAYS.get(s.day as usize).map_or("???", |d| d.0);
            let mut name = day.to_string();
            name[..1].make_ascii_uppercase();
            let _ = write!(out, "{name}-{:02}:{:02},{}", s.hhmm / 100, s.hhmm % 100, s.bandwidth);
        }
        f.write_str(&out)
    }
}

fn local_weekday_hour_minute() -> (u32, u32, u32) {
    // SAFETY: time(NULL) only returns the clock; localtime_r writes into the
    // tm we own and returns NULL on failure.
    let now: libc::time_t = unsafe { libc::time(std::ptr::null_mut()) };
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = !unsafe { libc::localtime_r(&now, &mut tm) }.is_null();
    if ok {
        return (tm.tm_wday as u32, tm.tm_hour as u32, tm.tm_min as u32);
    }
    // No usable time zone: fall back to UTC (1970-01-01 was a Thursday).
    let secs = (now as i64).max(0);
    let days = secs / 86400;
    let rem = secs % 86400;
    (((days + 4) % 7) as u32, (rem / 3600) as u32, ((rem % 3600) / 60) as u32)
}

/// rclone `validateHour`: exactly five bytes, `HH` and `MM` parsed with Go's
/// `Atoi` (the middle byte is not checked).
fn validate_hhmm(hhmm: &str) -> Result<u32, String> {
    let b = hhmm.as_bytes();
    let q = go_quote(b);
    if b.len() != 5 {
        return Err(format!("invalid time specification (hh:mm): {q}"));
    }
    let hh = go_atoi(&b[0..2]).map_err(|cause| format!("invalid hour in time specification {q}: {cause}"))?;
    if !(0..=23).contains(&hh) {
        return Err(format!("invalid hour (must be between 00 and 23): {hh}"));
    }
    let mm = go_atoi(&b[3..5]).map_err(|cause| format!("invalid minute in time specification: {q}: {cause}"))?;
    if !(0..=59).contains(&mm) {
        return Err(format!("invalid minute (must be between 00 and 59): {mm}"));
    }
    Ok(hh as u32 * 100 + mm as u32)
}

/// Go's `strconv.Atoi` for short inputs: optional sign, then digits.
fn go_atoi(b: &[u8]) -> Result<i64, String> {
    let syntax = || format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(b));
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(syntax());
    }
    let v = digits.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
    Ok(if neg { -v } else { v })
}

fn parse_weekday(day: &str) -> Result<u32, String> {
    let lower = day.to_lowercase();
    WEEKDAYS
        .iter()
        .position(|(short, long)| lower == *short || lower == *long)
        .map(|i| i as u32)
        .ok_or_else(|| format!("invalid weekday: {}", go_quote(lower.as_bytes())))
}

/// Go's `%q` of a string (invalid UTF-8 bytes as `\x..`).
fn go_quote(b: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_go_escaped(&mut out, c, '"');
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
    out.push('"');
    out
}

/// Go's `%q` of a byte value (a quoted rune literal).
fn go_quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_go_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

fn push_go_escaped(out: &mut String, c: char, quote: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0C' => out.push_str("\\f"),
        '\x0B' => out.push_str("\\v"),
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        c if c.is_control() => {
            let v = c as u32;
            if v < 0x100 {
                let _ = write!(out, "\\x{v:02x}");
            } else {
                let _ = write!(out, "\\u{v:04x}");
            }
        }
        c => out.push(c),
    }
}

// ---------------------------------------------------------------------------
// Rate limiter.
// ---------------------------------------------------------------------------

/// Longest single sleep, so that `should_stop` and rate changes are noticed.
const MAX_SLICE: Duration = Duration::from_millis(100);
/// Smallest bucket; below this a busy transfer would wake up too often.
const MIN_BURST: f64 = 64.0 * 1024.0;

/// A token bucket shared by all transfers of one direction of a run
/// (`Arc<RateLimiter>`). The bucket holds at most ~0.1 s of traffic (at least
/// 64 KiB), so the long-run rate is the configured one and short bursts stay
/// small.
///
/// A caller takes up to one bucket's worth at a time as soon as the bucket is
/// not in debt, and may drive it into debt by that amount; later callers wait
/// for the debt to be paid off at the configured rate. Large requests are
/// thus paced chunk by chunk, rate changes apply to the very next chunk, and
/// an aborted wait leaves nothing to refund.
pub struct RateLimiter {
    /// Bytes per second; 0 = unlimited. Read without the lock on the fast path.
    rate: AtomicU64,
    bucket: Mutex<Bucket>,
}

struct Bucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn burst(&self) -> f64 {
        (self.rate / 10.0).max(MIN_BURST)
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        if self.rate > 0.0 {
            self.tokens = (self.tokens + elapsed * self.rate).min(self.burst());
        }
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter").field("bytes_per_sec", &self.rate()).finish()
    }
}

impl RateLimiter {
    /// `None` (or `Some(0)`) is unlimited.
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        let rate = bytes_per_sec.unwrap_or(0);
        let mut bucket = Bucket { rate: rate as f64, tokens: 0.0, last: Instant::now() };
        bucket.tokens = bucket.burst();
        RateLimiter { rate: AtomicU64::new(rate), bucket: Mutex::new(bucket) }
    }

    /// The current limit in bytes per second, `None` when unlimited.
    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Acquire)).filter(|&r| r > 0)
    }

    /// Changes the limit for everything from now on, including callers
    /// already waiting (`None` releases them at once).
    pub fn set_rate(&self, bytes_per_sec: Option<u64>) {
        let new = bytes_per_sec.unwrap_or(0);
        let mut b = self.lock();
        let now = Instant::now();
        b.refill(now);
        let was_unlimited = b.rate <= 0.0;
        b.rate = new as f64;
        if new > 0 {
            if was_unlimited {
                // Nothing was metered while unlimited: start with a full bucket.
                b.tokens = b.burst();
            } else {
                b.tokens = b.tokens.min(b.burst());
            }
        }
        self.rate.store(new, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bucket> {
        // The bucket stays consistent even if a holder panicked.
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `n` bytes may pass. Returns `false` as soon as
    /// `should_stop()` is true while waiting (checked at least every 100 ms);
    /// the bytes not yet granted are then not charged.
    pub fn acquire(&self, n: usize, should_stop: &dyn Fn() -> bool) -> bool {
        let mut remaining = n as f64;
        while remaining > 0.0 {
            if self.rate.load(Ordering::Acquire) == 0 {
                return true;
            }
            let wait = {
                let mut b = self.lock();
                b.refill(Instant::now());
                if b.rate <= 0.0 {
                    return true;
                }
                if b.tokens > 0.0 {
                    let take = remaining.min(b.burst());
                    b.tokens -= take;
                    remaining -= take;
                    continue;
                }
                Duration::from_secs_f64((-b.tokens / b.rate).max(0.001))
            };
            if should_stop() {
                return false;
            }
            std::thread::sleep(wait.min(MAX_SLICE));
            if should_stop() {
                return false;
            }
        }
        true
    }
}

/// The pair of limiters a run uses: uploads and downloads.
#[derive(Debug)]
pub struct BwLimiters {
    pub tx: std::sync::Arc<RateLimiter>,
    pub rx: std::sync::Arc<RateLimiter>,
}

impl BwLimiters {
    pub fn new(pair: BwPair) -> Self {
        BwLimiters {
            tx: std::sync::Arc::new(RateLimiter::new(pair.tx)),
            rx: std::sync::Arc::new(RateLimiter::new(pair.rx)),
        }
    }

    /// Applies a new slot (e.g. when the timetable moves on).
    pub fn set(&self, pair: BwPair) {
        if self.tx.rate() != pair.tx {
            self.tx.set_rate(pair.tx);
        }
        if self.rx.rate() != pair.rx {
            self.rx.set_rate(pair.rx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    const K: u64 = 1024;
    const M: u64 = 1024 * 1024;

    #[test]
    fn sizes() {
        let cases: &[(&str, Result<Option<u64>, &str>)] = &[
            ("0", Ok(Some(0))),
            ("1", Ok(Some(K))),
            ("512", Ok(Some(512 * K))),
            ("666", Ok(Some(666 * K))),
            ("1b", Ok(Some(1))),
            ("1B", Ok(Some(1))),
            ("1048576b", Ok(Some(M))),
            ("1k", Ok(Some(K))),
            ("1K", Ok(Some(K))),
            ("1Ki", Ok(Some(K))),
            ("1KI", Ok(Some(K))),
            ("1KiB", Ok(Some(K))),
            ("1M", Ok(Some(M))),
            ("10M", Ok(Some(10 * M))),
            ("1MiB", Ok(Some(M))),
            ("0.5M", Ok(Some(M / 2))),
            ("1.5k", Ok(Some(1536))),
            (".5k", Ok(Some(512))),
            ("1G", Ok(Some(1 << 30))),
            ("1T", Ok(Some(1 << 40))),
            ("1P", Ok(Some(1 << 50))),
            ("1E", Ok(Some(1 << 60))),
            ("2.5", Ok(Some(2560))),
            ("off", Ok(None)),
            ("OFF", Ok(None)),
            ("", Err("empty string")),
            ("-1", Err("size can't be negative")),
            ("-1M", Err("size can't be negative")),
            ("1000X", Err("bad suffix 'X'")),
            ("1Xi", Err("bad suffix 'X'")),
            ("1XiB", Err("bad suffix 'X'")),
            ("i", Err("bad suffix 'i'")),
            ("bad", Err("bad suffix 'd'")),
            ("M", Err("strconv.ParseFloat: parsing \"\": invalid syntax")),
            ("1KIB", Err("strconv.ParseFloat: parsing \"1KI\": invalid syntax")),
            ("infk", Err("strconv.ParseFloat: parsing \"inf\": invalid syntax")),
            ("1e400k", Err("strconv.ParseFloat: parsing \"1e400\": value out of range")),
            ("9E", Err("size too large \"9\"")),
        ];
        for &(input, want) in cases {
            let got = parse_size_or_off(input);
            assert_eq!(got, want.map_err(str::to_string), "{input:?}");
        }
        assert_eq!(parse_size("10M"), Ok(10 * M));
        assert_eq!(parse_size("off"), Err("\"off\" is not a size".to_string()));
        assert_eq!(parse_size("-5"), Err("size can't be negative".to_string()));
    }

    fn pair(tx: Option<u64>, rx: Option<u64>) -> BwPair {
        BwPair { tx, rx }
    }

    fn daily(hhmm: u32, bw: BwPair) -> Vec<BwSlot> {
        (0..7).map(|day| BwSlot { day, hhmm, bandwidth: bw }).collect()
    }

    fn slot(day: u32, hhmm: u32, bw: BwPair) -> BwSlot {
        BwSlot { day, hhmm, bandwidth: bw }
    }

    /// rclone `TestBwTimetableSet` plus the §10.1 forms.
    #[test]
    fn timetable_parse() {
        let k = |n: u64| Some(n * K);
        let m = |n: u64| Some(n * M);
        let same = |v: Option<u64>| pair(v, v);
        let cases: Vec<(&str, Vec<BwSlot>, &str)> = vec![
            ("0", vec![slot(0, 0, pair(None, None))], "off"),
            ("666", vec![slot(0, 0, same(k(666)))], "666Ki"),
            ("666:333", vec![slot(0, 0, pair(k(666), k(333)))], "666Ki:333Ki"),
            ("10M:off", vec![slot(0, 0, pair(m(10), None))], "10Mi:off"),
            ("off", vec![slot(0, 0, pair(None, None))], "off"),
            ("512b", vec![slot(0, 0, same(Some(512)))], "512B"),
            ("10M;20M", vec![], ""),
            ("10:20,666", daily(1020, same(k(666))), ""),
            ("10:20,666:333", daily(1020, pair(k(666), k(333))), ""),
            (
                "11:00,333 13:40,666 23:50,10M 23:59,off",
                [
                    daily(1100, same(k(333))),
                    daily(1340, same(k(666))),
                    daily(2350, same(m(10))),
                    daily(2359, same(None)),
                ]
                .concat(),
                "",
            ),
            (
                "11:00,333:666 13:40,666:off 23:50,10M:1M 23:59,off:10M",
                [
                    daily(1100, pair(k(333), k(666))),
                    daily(1340, pair(k(666), None)),
                    daily(2350, pair(m(10), m(1))),
                    daily(2359, pair(None, m(10))),
                ]
                .concat(),
                "",
            ),
            (
                "Mon-11:00,333 Tue-13:40,666:333 Fri-00:00,10M Sat-10:00,off Sun-23:00,666",
                vec![
                    slot(1, 1100, same(k(333))),
                    slot(2, 1340, pair(k(666), k(333))),
                    slot(5, 0, same(m(10))),
                    slot(6, 1000, same(None)),
                    slot(0, 2300, same(k(666))),
                ],
                "Mon-11:00,333Ki Tue-13:40,666Ki:333Ki Fri-00:00,10Mi Sat-10:00,off Sun-23:00,666Ki",
            ),
            (
                "Mon-11:00,333 Tue-13:40,666 Fri-00:00,10M 00:01,off Sun-23:00,666:off",
                [
                    vec![slot(1, 1100, same(k(333))), slot(2, 1340, same(k(666))), slot(5, 0, same(m(10)))],
                    daily(1, same(None)),
                    vec![slot(0, 2300, pair(k(666), None))],
                ]
                .concat(),
                "",
            ),
            (
                "08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off",
                [
                    daily(800, same(k(512))),
                    daily(1200, same(m(10))),
                    daily(1300, same(k(512))),
                    daily(1800, same(m(30))),
                    daily(2300, same(None)),
                ]
                .concat(),
                "",
            ),
            (
                "Mon-00:00,512 Fri-23:59,10M Sun-20:00,off",
                vec![slot(1, 0, same(k(512))), slot(5, 2359, same(m(10))), slot(0, 2000, same(None))],
                "Mon-00:00,512Ki Fri-23:59,10Mi Sun-20:00,off",
            ),
            (
                "Mon-00:00,512 Fri-23:59,10M Sat-10:00,1M Sun-20:00,off",
                vec![
                    slot(1, 0, same(k(512))),
                    slot(5, 2359, same(m(10))),
                    slot(6, 1000, same(m(1))),
                    slot(0, 2000, same(None)),
                ],
                "",
            ),
            (
                "Mon-00:00,512 12:00,1M Sun-20:00,off",
                [vec![slot(1, 0, same(k(512)))], daily(1200, same(m(1))), vec![slot(0, 2000, same(None))]].concat(),
                "",
            ),
            // ';' separators, repeated separators, names in any case.
            (
                "mon-08:00,1M;FRIDAY-18:00,off  sunday-07:30,2M",
                vec![slot(1, 800, same(m(1))), slot(5, 1800, same(None)), slot(0, 730, same(m(2)))],
                "Mon-08:00,1Mi Fri-18:00,off Sun-07:30,2Mi",
            ),
            (
                "Tue-01:00,1b;Wed-02:00,1;Thu-03:00,1k;Sat-04:00,1M",
                vec![
                    slot(2, 100, same(Some(1))),
                    slot(3, 200, same(k(1))),
                    slot(4, 300, same(k(1))),
                    slot(6, 400, same(m(1))),
                ],
                "",
            ),
            // Only spaces: no slots, hence unlimited (as rclone).
            ("   ", vec![], ""),
        ];
        for (spec, want, display) in cases {
            if spec == "10M;20M" {
                // No space or comma: one constant value, and "10M;20M" is no size.
                assert_eq!(
                    BwTimetable::parse(spec),
                    Err("strconv.ParseFloat: parsing \"10M;20\": invalid syntax".to_string())
                );
                continue;
            }
            let got = BwTimetable::parse(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
            assert_eq!(got.slots(), &want[..], "{spec:?}");
            if !display.is_empty() {
                assert_eq!(got.to_string(), display, "{spec:?}");
                assert_eq!(BwTimetable::parse(display), Ok(got.clone()), "{spec:?} round trip");
            }
        }
    }

    /// Every error text of §10.1 (and rclone's failing inputs).
    #[test]
    fn timetable_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "empty string"),
            ("bad,bad", "invalid time specification (hh:mm): \"bad\""),
            ("bad bad", "invalid time/bandwidth specification: \"bad\""),
            ("bad", "bad suffix 'd'"),
            ("1000X", "bad suffix 'X'"),
            ("2401,666", "invalid time specification (hh:mm): \"2401\""),
            ("1061,666", "invalid time specification (hh:mm): \"1061\""),
            ("24:00,1M", "invalid hour (must be between 00 and 23): 24"),
            // A '-' always means a day prefix, so an hour can't be negative.
            ("-1:00,1M", "invalid weekday: \"\""),
            ("10:60,1M", "invalid minute (must be between 00 and 59): 60"),
            ("ab:00,1M", "invalid hour in time specification \"ab:00\": strconv.Atoi: parsing \"ab\": invalid syntax"),
            (
                "10:xy,1M",
                "invalid minute in time specification: \"10:xy\": strconv.Atoi: parsing \"xy\": invalid syntax",
            ),
            ("1:000,1M", "invalid hour in time specification \"1:000\": strconv.Atoi: parsing \"1:\": invalid syntax"),
            ("bad-10:20,666", "invalid weekday: \"bad\""),
            ("Funday-10:20,666", "invalid weekday: \"funday\""),
            ("Mon-bad,666", "invalid time specification (hh:mm): \"bad\""),
            ("Mon-10:20,bad", "bad suffix 'd'"),
            ("Mon-10:20-x,1M", "invalid time specification: \"Mon-10:20-x\""),
            ("08:00,1M 09:00", "invalid time/bandwidth specification: \"09:00\""),
            ("08:00,1M,2M", "invalid time/bandwidth specification: \"08:00,1M,2M\""),
            ("08:00,-1M", "size can't be negative"),
            ("08:00,1M:-1", "size can't be negative"),
            ("08:00,", "empty string"),
            ("08:00,1M:", "empty string"),
        ];
        for &(spec, want) in cases {
            assert_eq!(BwTimetable::parse(spec), Err(want.to_string()), "{spec:?}");
        }
        // The middle byte is not checked, as in rclone.
        assert!(BwTimetable::parse("10x20,1M").is_ok());
    }

    /// rclone `TestBwTimetableLimitAt` (2017-04-20 was a Thursday) and §10.3.
    #[test]
    fn limit_at() {
        let k = |n: u64| Some(n * K);
        let m = |n: u64| Some(n * M);
        assert_eq!(BwTimetable::unlimited().limit_at(4, 15, 0), BwPair::UNLIMITED);
        assert_eq!(BwTimetable::default().limit_now(), BwPair::UNLIMITED);

        let mut t = BwTimetable { slots: daily(1100, pair(k(333), k(333))) };
        t.slots[4].bandwidth = pair(k(333), k(666));
        assert_eq!(t.limit_at(4, 15, 0), pair(k(333), k(666)));

        let t = BwTimetable {
            slots: [
                daily(1100, pair(k(333), k(33))),
                daily(1300, pair(k(666), k(66))),
                daily(2301, pair(m(1), k(102))),
                daily(2350, pair(None, m(1))),
            ]
            .concat(),
        };
        // Thursday 10:15: Wednesday 23:50 is the latest slot.
        assert_eq!(t.limit_at(4, 10, 15), pair(None, m(1)));
        assert_eq!(t.limit_at(4, 11, 0), pair(k(333), k(33)));
        assert_eq!(t.limit_at(4, 13, 1), pair(k(666), k(66)));
        assert_eq!(t.limit_at(4, 23, 59), pair(None, m(1)));
        // Sunday before the first slot: wraps to the last slot in list order
        // (Saturday 23:50).
        assert_eq!(t.limit_at(0, 7, 0), pair(None, m(1)));

        let t = BwTimetable {
            slots: vec![
                slot(1, 1100, pair(k(333), k(33))),
                slot(2, 1340, pair(k(666), k(66))),
                slot(5, 0, pair(m(10), m(1))),
                slot(6, 1000, pair(None, k(100))),
                slot(0, 2300, pair(k(666), k(66))),
            ],
        };
        assert_eq!(t.limit_at(4, 23, 59), pair(k(666), k(66)));
        assert_eq!(t.limit_at(5, 23, 59), pair(m(10), m(1)));
        assert_eq!(t.limit_at(1, 10, 59), pair(k(666), k(66)));
        // Sunday 22:59: no slot yet this week, so the last one in the list.
        assert_eq!(t.limit_at(0, 22, 59), pair(k(666), k(66)));
        assert_eq!(t.limit_at(6, 9, 59), pair(m(10), m(1)));
        assert_eq!(t.limit_at(6, 10, 0), pair(None, k(100)));
        assert_eq!(t.limit_at(0, 23, 0), pair(k(666), k(66)));

        // §10.1 daily example.
        let t = BwTimetable::parse("08:00,512k 12:00,10M 13:00,512k 18:00,30M 23:00,off").unwrap();
        let day_cases = [
            ((0, 7, 59), None),
            ((3, 0, 0), None),
            ((3, 8, 0), k(512)),
            ((3, 11, 59), k(512)),
            ((3, 12, 0), m(10)),
            ((3, 13, 30), k(512)),
            ((6, 18, 0), m(30)),
            ((6, 22, 59), m(30)),
            ((6, 23, 0), None),
        ];
        for ((d, h, mi), want) in day_cases {
            assert_eq!(t.limit_at(d, h, mi), pair(want, want), "{d} {h}:{mi}");
        }

        // §10.1 weekly example.
        let t = BwTimetable::parse("Mon-00:00,512 Fri-23:59,10M Sun-20:00,off").unwrap();
        let week_cases = [
            ((0, 0, 0), None),
            ((0, 19, 59), None),
            ((0, 20, 0), None),
            ((1, 0, 0), k(512)),
            ((3, 12, 0), k(512)),
            ((5, 23, 58), k(512)),
            ((5, 23, 59), m(10)),
            ((6, 12, 0), m(10)),
        ];
        for ((d, h, mi), want) in week_cases {
            assert_eq!(t.limit_at(d, h, mi), pair(want, want), "{d} {h}:{mi}");
        }
        // Sunday before 20:00 falls back to the last slot (Sun-20:00,off).
        let t = BwTimetable::parse("Mon-00:00,512 Fri-23:59,10M Sun-20:00,1M").unwrap();
        assert_eq!(t.limit_at(0, 10, 0), pair(m(1), m(1)));

        // A constant value applies at every moment.
        let t = BwTimetable::parse("10M:off").unwrap();
        for (d, h, mi) in [(0, 0, 0), (3, 12, 30), (6, 23, 59)] {
            assert_eq!(t.limit_at(d, h, mi), pair(m(10), None));
        }
        assert_eq!(t.limit_now(), pair(m(10), None));
    }

    #[test]
    fn unlimited_detection() {
        assert!(BwTimetable::unlimited().is_unlimited());
        assert!(BwTimetable::parse("off").unwrap().is_unlimited());
        assert!(BwTimetable::parse("0").unwrap().is_unlimited());
        assert!(BwTimetable::parse("08:00,off 18:00,0").unwrap().is_unlimited());
        assert!(!BwTimetable::parse("08:00,off 18:00,1M").unwrap().is_unlimited());
        assert!(!BwTimetable::parse("off:1M").unwrap().is_unlimited());
    }

    #[test]
    fn truenas_timetable() {
        let s = |t: &str, v: Option<u64>| (t.to_string(), v);
        assert_eq!(BwTimetable::from_truenas(&[]), Ok(BwTimetable::unlimited()));

        // A single 00:00 entry is a constant limit, in bytes (the "b" suffix).
        let t = BwTimetable::from_truenas(&[s("00:00", Some(1_000_000))]).unwrap();
        assert_eq!(t.slots().len(), 7);
        for (d, h, mi) in [(0, 0, 0), (4, 13, 37), (6, 23, 59)] {
            assert_eq!(t.limit_at(d, h, mi), pair(Some(1_000_000), Some(1_000_000)));
        }

        // Wrap-around: before the first entry, the last one of the previous day.
        let t = BwTimetable::from_truenas(&[s("08:00", Some(1000)), s("18:00", None)]).unwrap();
        assert_eq!(t.limit_at(2, 7, 59), BwPair::UNLIMITED);
        assert_eq!(t.limit_at(0, 0, 0), BwPair::UNLIMITED);
        assert_eq!(t.limit_at(2, 8, 0), pair(Some(1000), Some(1000)));
        assert_eq!(t.limit_at(2, 17, 59), pair(Some(1000), Some(1000)));
        assert_eq!(t.limit_at(2, 18, 0), BwPair::UNLIMITED);
        assert!(!t.is_unlimited());
        assert_eq!(t, BwTimetable::parse("08:00,1000b 18:00,off").unwrap());

        assert_eq!(
            BwTimetable::from_truenas(&[s("8:00", Some(1))]),
            Err("invalid time specification (hh:mm): \"8:00\"".to_string())
        );
        assert_eq!(
            BwTimetable::from_truenas(&[s("25:00", Some(1))]),
            Err("invalid hour (must be between 00 and 23): 25".to_string())
        );
        assert_eq!(
            BwTimetable::from_truenas(&[s("01:00 02:00", Some(1))]),
            Err("invalid time specification (hh:mm): \"01:00 02:00\"".to_string())
        );
    }

    #[test]
    fn local_time_is_sane() {
        let (d, h, m) = local_weekday_hour_minute();
        assert!(d < 7 && h < 24 && m < 60);
    }

    #[test]
    fn limiter_unlimited_is_immediate() {
        let l = RateLimiter::new(None);
        let start = Instant::now();
        for _ in 0..10_000 {
            assert!(l.acquire(1 << 30, &|| false));
        }
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(l.rate(), None);
        assert!(RateLimiter::new(Some(0)).acquire(1 << 30, &|| true));
    }

    #[test]
    fn limiter_concurrent_rate() {
        // 4 threads × 512 KiB at 4 MiB/s: ~0.4 s after the initial ~0.4 MiB burst.
        let l = Arc::new(RateLimiter::new(Some(4 * M)));
        let start = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    for _ in 0..16 {
                        assert!(l.acquire(32 * 1024, &|| false));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.35..0.9).contains(&took), "took {took:.3}s");
    }

    #[test]
    fn limiter_single_large_requests() {
        // 1.5 MiB in 256 KiB requests at 2 MiB/s: ~0.55-0.65 s.
        let l = RateLimiter::new(Some(2 * M));
        let start = Instant::now();
        for _ in 0..6 {
            assert!(l.acquire(256 * 1024, &|| false));
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.45..1.2).contains(&took), "took {took:.3}s");
    }

    #[test]
    fn limiter_stop_aborts_promptly() {
        let l = Arc::new(RateLimiter::new(Some(1024)));
        let stop = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (l, stop) = (Arc::clone(&l), Arc::clone(&stop));
            std::thread::spawn(move || {
                let start = Instant::now();
                let ok = l.acquire(10 * 1024 * 1024, &|| stop.load(Ordering::Relaxed));
                (ok, start.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(150));
        let stopped_at = Instant::now();
        stop.store(true, Ordering::Relaxed);
        let (ok, _) = waiter.join().unwrap();
        assert!(!ok);
        assert!(stopped_at.elapsed() < Duration::from_millis(400), "{:?}", stopped_at.elapsed());
    }

    #[test]
    fn limiter_live_rate_change() {
        let l = Arc::new(RateLimiter::new(Some(1024)));
        let waiter = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || l.acquire(10 * 1024 * 1024, &|| false))
        };
        std::thread::sleep(Duration::from_millis(150));
        let released = Instant::now();
        l.set_rate(None);
        assert!(waiter.join().unwrap());
        assert!(released.elapsed() < Duration::from_millis(400));

        // Raising the limit speeds up a waiter within a slice.
        l.set_rate(Some(1024));
        let waiter = {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                let start = Instant::now();
                assert!(l.acquire(2 * 1024 * 1024, &|| false));
                start.elapsed()
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        l.set_rate(Some(64 * M));
        let took = waiter.join().unwrap();
        assert!(took < Duration::from_millis(800), "{took:?}");
        assert_eq!(l.rate(), Some(64 * M));
    }

    #[test]
    fn limiters_pair() {
        let lims = BwLimiters::new(pair(Some(M), None));
        assert_eq!(lims.tx.rate(), Some(M));
        assert_eq!(lims.rx.rate(), None);
        lims.set(pair(None, Some(2 * M)));
        assert_eq!(lims.tx.rate(), None);
        assert_eq!(lims.rx.rate(), Some(2 * M));
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<RateLimiter>();
    }
}
