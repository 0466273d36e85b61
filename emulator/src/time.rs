//! The time formats the real services write: RFC 1123 dates, Windows FILETIME ticks,
//! and ISO 8601 with seven fractional digits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_OFFSET_SECS: u64 = 11_644_473_600;

pub fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn now_nanos() -> u64 {
    nanos_since_epoch(SystemTime::now())
}

/// Windows FILETIME ticks (100 ns since 1601) for a Unix time in nanoseconds.
pub fn filetime_from_nanos(ns: u64) -> u64 {
    ns / 100 + FILETIME_UNIX_OFFSET_SECS * 10_000_000
}

pub fn nanos_from_filetime(ft: u64) -> u64 {
    ft.saturating_sub(FILETIME_UNIX_OFFSET_SECS * 10_000_000)
        .saturating_mul(100)
}

/// `Wed, 22 Feb 2023 02:41:26 GMT`.
pub fn http_date(ns: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_nanos(ns))
}

/// `2023-03-07T19:37:19.4394026Z`, the time format inside storage error messages.
pub fn iso8601_7(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let ticks = (ns % 1_000_000_000) / 100;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// `2026-01-02T03:04:05Z` (optionally with fractions or without seconds, as SAS
/// expiries are written) → Unix nanoseconds; `None` when it does not parse.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches('Z');
    let (date, clock) = s.split_once('T').unwrap_or((s, "00:00:00"));
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let clock = clock.split('.').next()?;
    let mut c = clock.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm) = (c.next()??, c.next()??);
    let ss = c.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days).ok()? * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs * 1_000_000_000)
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_filetime() {
        // 2023-03-07T21:43:39.77Z, from a real listing's creationTime.
        let ft = 133_226_990_197_710_973u64;
        let ns = nanos_from_filetime(ft);
        assert_eq!(iso8601_7(ns), "2023-03-07T21:43:39.7710973Z");
        assert_eq!(filetime_from_nanos(ns), ft);
        assert_eq!(http_date(ns), "Tue, 07 Mar 2023 21:43:39 GMT");
        let parsed = parse_iso8601("2023-03-07T21:43:39Z").unwrap();
        assert_eq!(http_date(parsed), "Tue, 07 Mar 2023 21:43:39 GMT");
        assert_eq!(
            parse_iso8601("2023-03-07T21:43Z"),
            Some(parsed - 39_000_000_000)
        );
        assert_eq!(parse_iso8601("yesterday"), None);
    }
}
