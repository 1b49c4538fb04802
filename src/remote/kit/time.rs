//! Time formats shared by the HTTP providers: HTTP dates, ISO 8601 (S3, Azure, GCS
//! listings) and rclone's decimal-seconds `mtime` metadata (S3 and Swift).

use crate::remote::{NANOS_PER_SEC, Nanos};

/// rclone's `X-Amz-Meta-Mtime` value: decimal seconds with up to 9 fraction digits,
/// trailing zeros trimmed, so nanoseconds round-trip exactly (`1354040105.123456789`,
/// a whole second is `1354040105`).
pub fn format_mtime(t: Nanos) -> String {
    let secs = t.div_euclid(NANOS_PER_SEC);
    let frac = t.rem_euclid(NANOS_PER_SEC);
    if frac == 0 {
        return secs.to_string();
    }
    let s = format!("{secs}.{frac:09}");
    s.trim_end_matches('0').to_string()
}

/// Parse an `mtime` value. Accepts `1354040105.`, and more than 9 fraction digits
/// (truncated), as rclone does.
pub fn parse_mtime(s: &str) -> Option<Nanos> {
    let s = s.trim();
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    let secs: i64 = int.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits = frac.as_bytes().iter().take(9).map(|b| i64::from(b - b'0')).collect::<Vec<_>>();
    digits.resize(9, 0);
    let ns = digits.iter().fold(0i64, |acc, d| acc * 10 + d);
    secs.checked_mul(NANOS_PER_SEC)?.checked_add(if secs < 0 || int.starts_with('-') { -ns } else { ns })
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn civil_nanos(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, ns: i64) -> Option<Nanos> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * NANOS_PER_SEC) + ns)
}

/// `2009-10-12T17:50:30.000Z` (S3 listing `LastModified`).
pub fn parse_iso8601(s: &str) -> Option<Nanos> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..];
    let (frac, tz) = match rest.strip_prefix('.') {
        Some(r) => {
            let end = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            (&r[..end], &r[end..])
        }
        None => ("", rest),
    };
    if tz != "Z" && tz != "+00:00" {
        return None;
    }
    let mut digits: Vec<i64> = frac.bytes().take(9).map(|c| i64::from(c - b'0')).collect();
    digits.resize(9, 0);
    let ns = digits.iter().fold(0, |a, d| a * 10 + d);
    civil_nanos(y, mo, d, h, mi, sec, ns)
}

/// `Wed, 12 Oct 2009 17:50:00 GMT` (HTTP `Last-Modified`).
pub fn parse_http_date(s: &str) -> Option<Nanos> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let d: i64 = parts[1].parse().ok()?;
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mo = MONTHS.iter().position(|m| *m == parts[2])? as i64 + 1;
    let y: i64 = parts[3].parse().ok()?;
    let hms: Vec<i64> = parts[4].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if hms.len() != 3 {
        return None;
    }
    civil_nanos(y, mo, d, hms[0], hms[1], hms[2], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtime_round_trips_like_rclone() {
        assert_eq!(format_mtime(1_354_040_105_123_456_789), "1354040105.123456789");
        assert_eq!(format_mtime(1_354_040_105_000_000_000), "1354040105");
        assert_eq!(format_mtime(1_354_040_105_500_000_000), "1354040105.5");
        assert_eq!(parse_mtime("1354040105.123456789"), Some(1_354_040_105_123_456_789));
        assert_eq!(parse_mtime("1354040105."), Some(1_354_040_105_000_000_000));
        assert_eq!(parse_mtime("1354040105.1234567891234"), Some(1_354_040_105_123_456_789));
        assert_eq!(parse_mtime("1795529180.51142244"), Some(1_795_529_180_511_422_440));
        assert_eq!(parse_mtime("abc"), None);
        assert_eq!(parse_mtime("1.2x"), None);
        for t in [0i64, 1, 999_999_999, 981_173_106_499_999_999, 1_324_817_999_123_456_789] {
            assert_eq!(parse_mtime(&format_mtime(t)), Some(t));
        }
    }

    #[test]
    fn iso_and_http_dates() {
        // t1 of the conformance harness.
        assert_eq!(parse_iso8601("2001-02-03T04:05:06.499999999Z"), Some(981_173_106_499_999_999));
        assert_eq!(parse_iso8601("2009-10-12T17:50:30.000Z"), Some(1_255_369_830_000_000_000));
        assert_eq!(parse_iso8601("2009-10-12T17:50:30Z"), Some(1_255_369_830_000_000_000));
        assert_eq!(parse_iso8601("garbage"), None);
        assert_eq!(parse_http_date("Mon, 12 Oct 2009 17:50:30 GMT"), Some(1_255_369_830_000_000_000));
        assert_eq!(parse_http_date("Mon, 12 Foo 2009 17:50:30 GMT"), None);
    }
}
