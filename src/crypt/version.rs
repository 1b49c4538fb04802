//! Version suffixes in file names, `name-vYYYY-MM-DD-HHMMSS-mmm.ext` (rclone
//! `lib/version`, spec §9.3), which crypt keeps in clear around an encrypted name.
//!
//! Ported from Go including its corners: the extension is Go's `path.Ext` (so `.bashrc` is all
//! extension), and the timestamp must parse as Go's `time.Parse` would, since rclone leaves a
//! name alone when it does not.

/// Length of `-v2006-01-02-150405-000`.
const VERSION_LEN: usize = 23;

/// A parsed version timestamp (UTC, millisecond precision).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    millis: i64,
}

impl Version {
    fn format(&self) -> String {
        format!(
            "-v{:04}-{:02}-{:02}-{:02}{:02}{:02}-{:03}",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }
}

/// `-v\d{4}-\d{2}-\d{2}-\d{6}-\d{3}` anywhere in `name` (rclone `version.Match`).
pub(crate) fn matches(name: &str) -> bool {
    const SHAPE: &[u8; VERSION_LEN] = b"-v0000-00-00-000000-000";
    name.as_bytes()
        .windows(VERSION_LEN)
        .any(|w| w.iter().zip(SHAPE).all(|(&c, &s)| if s == b'0' { c.is_ascii_digit() } else { c == s }))
}

/// Go's `path.Ext`: from the last `.` of the last `/`-segment, or "".
fn ext(name: &str) -> &str {
    for (i, c) in name.bytes().enumerate().rev() {
        match c {
            b'/' => return "",
            b'.' => return &name[i..],
            _ => {}
        }
    }
    ""
}

/// Splits a trailing version off the base name (before the extension): the version and the
/// name without it, or `None` when there is no parseable version there.
pub(crate) fn remove(name: &str) -> Option<(Version, String)> {
    let ext = ext(name);
    let base = &name[..name.len() - ext.len()];
    let start = base.len().checked_sub(VERSION_LEN)?;
    let version = parse(&base.as_bytes()[start..])?;
    // parse() checked that the slice starts with "-v", so `start` is a char boundary.
    let stripped = base.get(..start)?;
    Some((version, format!("{stripped}{ext}")))
}

/// Inserts a version between base name and extension (rclone `version.Add`).
pub(crate) fn add(name: &str, version: &Version) -> String {
    let ext = ext(name);
    let base = &name[..name.len() - ext.len()];
    format!("{base}{}{ext}", version.format())
}

/// Go's `time.Parse("-v2006-01-02-150405.000", ...)` after rclone turns the last `-` into `.`.
fn parse(s: &[u8]) -> Option<Version> {
    if s.len() != VERSION_LEN || &s[..2] != b"-v" || s[19] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        s[r].iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
    };
    let year = digits(2..6)?;
    if s[6] != b'-' || s[9] != b'-' || s[12] != b'-' {
        return None;
    }
    let month = digits(7..9)?;
    let day = digits(10..12)?;
    let hour = digits(13..15)?;
    let minute = digits(15..17)?;
    let second = digits(17..19)?;
    // Go reads the fraction with atoi, which takes one leading sign.
    let millis = match s[20] {
        b'+' => digits(21..23)?,
        b'-' => -digits(21..23)?,
        _ => digits(20..23)?,
    };
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in(month, year)
        && hour < 24
        && minute < 60
        && second < 60
        && millis >= 0;
    valid.then_some(Version { year, month, day, hour, minute, second, millis })
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_remove_add() {
        assert!(matches("1-v2001-02-03-040506-123"));
        assert!(matches("a-v2001-02-03-040506-123b.txt"));
        assert!(!matches("1-v2001-02-03-040506-12"));
        let (v, rest) = remove("hello-v2001-02-03-040506-123.txt").unwrap();
        assert_eq!(rest, "hello.txt");
        assert_eq!(add("162.uryyB", &v), "162-v2001-02-03-040506-123.uryyB");
        assert_eq!(add("abc", &v), "abc-v2001-02-03-040506-123");
        // Go's path.Ext: a leading dot starts an extension, so nothing is removed here.
        assert_eq!(remove(".x-v2001-02-03-040506-123"), None);
        // Invalid dates are not versions.
        assert_eq!(remove("a-v2001-02-29-040506-123"), None);
        assert!(remove("a-v2004-02-29-040506-123").is_some());
        assert_eq!(remove("a-v2001-13-01-040506-123"), None);
        assert_eq!(remove("a-v2001-01-01-240506-123"), None);
        assert_eq!(remove("a-v2001-01-01-046006-123"), None);
        // Go's atoi quirk in the fraction: a sign is accepted, a negative value is not.
        let (v, _) = remove("a-v2001-02-03-040506-+12").unwrap();
        assert_eq!(v.format(), "-v2001-02-03-040506-012");
        assert_eq!(remove("a-v2001-02-03-040506--12"), None);
        // Multi-byte characters never split.
        assert_eq!(remove("ééééééééééééééééééééééé"), None);
        assert_eq!(remove("é-v2001-02-03-040506-123").unwrap().1, "é");
    }
}
