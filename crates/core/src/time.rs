//! Times as the VCH writes them: RFC 3339 in UTC, as Docker's API and logs do.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` in RFC 3339 (empty if it cannot be written, which only a year beyond 9999 makes).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Now, in RFC 3339.
pub fn now_rfc3339() -> String {
    rfc3339(OffsetDateTime::now_utc())
}

/// Unix seconds in RFC 3339 (`None` for a time out of the calendar's range).
pub fn unix_rfc3339(secs: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i128 {
    OffsetDateTime::now_utc().unix_timestamp_nanos()
}

/// An RFC 3339 time in Unix nanoseconds; 0 for one that does not parse (records written by
/// this VCH always do; 0 sorts an unreadable one first rather than failing a listing).
pub fn unix_nanos(ts: &str) -> i128 {
    OffsetDateTime::parse(ts, &Rfc3339).map_or(0, OffsetDateTime::unix_timestamp_nanos)
}

/// A Go duration (`1h30m`, `1.5h`, `300ms`, `-2h` is refused) in nanoseconds: Docker's
/// filters and Dockerfile `HEALTHCHECK` options write them so.
pub fn go_duration(raw: &str) -> Option<i128> {
    let mut rest = raw;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&i| i > 0)?;
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += value * scale;
    }
    Some(total as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let s = rfc3339(t);
        assert_eq!(s, "2023-11-14T22:13:20.123456789Z");
        assert_eq!(unix_nanos(&s), 1_700_000_000_123_456_789);
        assert_eq!(unix_nanos("yesterday"), 0);
        assert_eq!(unix_rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(unix_rfc3339(i64::MAX), None);
        assert!(unix_nanos(&now_rfc3339()) > 1_700_000_000_000_000_000);
    }
}
