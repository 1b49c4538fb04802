//! Wall-clock formatting shared by messages and logs.

use crate::remote::Nanos;

/// `2006-01-02T15:04:05.999999999Z`: a UTC time with as many fraction digits as it has
/// (the form rclone prints modification times in).
pub fn rfc3339_nanos(t: Nanos) -> String {
    chrono::DateTime::from_timestamp_nanos(t).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_with_nanoseconds() {
        assert_eq!(super::rfc3339_nanos(1_324_817_999_123_456_789), "2011-12-25T12:59:59.123456789Z");
        assert_eq!(super::rfc3339_nanos(1_325_249_999_000_000_000), "2011-12-30T12:59:59Z");
    }
}
