//! Wall-clock timestamps as the event contract writes them: RFC 3339, UTC, nanoseconds.
//!
//! The kernel stamps records with `CLOCK_BOOTTIME`; the agent turns those into wall-clock
//! nanoseconds since the Unix epoch once, in the pipeline, and everything downstream carries a
//! [`Timestamp`]. Formatting and parsing are hand-written (civil-from-days) so that the event
//! crate stays free of a calendar dependency and the format is exactly the one documented.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Nanoseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

/// A string that is not an RFC 3339 UTC timestamp of the form the contract uses.
#[derive(Debug, thiserror::Error)]
#[error("invalid timestamp {text:?}: expected RFC 3339 UTC such as 2026-01-02T03:04:05.000000006Z")]
pub struct TimestampError {
    /// The text that failed to parse.
    pub text: String,
}

const NANOS_PER_SEC: u64 = 1_000_000_000;
const SECS_PER_DAY: u64 = 86_400;

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp(since.as_secs() * NANOS_PER_SEC + u64::from(since.subsec_nanos()))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the fraction may have 0 to 9 digits).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        parse_rfc3339(text).ok_or_else(|| TimestampError {
            text: text.to_string(),
        })
    }
}

impl Timestamp {
    /// The contract's text, `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, written digit by digit: this runs
    /// for every event, and `core::fmt` costs several times as much. (u64 nanoseconds end in
    /// 2554, so the year always has four digits.)
    pub fn rfc3339(self) -> [u8; 30] {
        let secs = self.0 / NANOS_PER_SEC;
        let nanos = self.0 % NANOS_PER_SEC;
        let days = secs / SECS_PER_DAY;
        let rem = secs % SECS_PER_DAY;
        let (year, month, day) = civil_from_days(days as i64);
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        digits(&mut out[0..4], year as u64);
        digits(&mut out[5..7], u64::from(month));
        digits(&mut out[8..10], u64::from(day));
        digits(&mut out[11..13], rem / 3600);
        digits(&mut out[14..16], (rem / 60) % 60);
        digits(&mut out[17..19], rem % 60);
        digits(&mut out[20..29], nanos);
        out
    }
}

/// Writes `value` as decimal into `out`, right-aligned, zero-padded to its whole width.
fn digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.rfc3339();
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.rfc3339();
        match std::str::from_utf8(&text) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("timestamp is not ASCII")),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).map_err(de::Error::custom)
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parse_rfc3339(text: &str) -> Option<Timestamp> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || *bytes.last()? != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let sep_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && (bytes[10] == b'T' || bytes[10] == b't')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !sep_ok {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let fraction = &text[19..text.len() - 1];
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits = fraction.strip_prefix('.')?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    let days = days_from_civil(year as i64, month, day);
    if days < 0 {
        return None;
    }
    let secs = days as u64 * SECS_PER_DAY + hour * 3600 + minute * 60 + second;
    // u64 nanoseconds end in 2554: a later time is not one an event can carry (found by
    // fuzzing `policy test`'s reader: "6300-01-01T00:00:00Z" overflowed).
    secs.checked_mul(NANOS_PER_SEC)
        .and_then(|ns| ns.checked_add(nanos))
        .map(Timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_a_leap_day_with_nanoseconds() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000000Z");
        // 2024-02-29T23:59:59.123456789Z
        let t = Timestamp(1_709_251_199_123_456_789);
        assert_eq!(t.to_string(), "2024-02-29T23:59:59.123456789Z");
    }

    /// The hand-written digits agree with `core::fmt` over the whole range a u64 holds.
    #[test]
    fn digit_by_digit_formatting_matches_core_fmt() {
        let mut ns: u64 = 1;
        while ns < u64::MAX / 3 {
            let t = Timestamp(ns);
            let secs = ns / NANOS_PER_SEC;
            let (y, m, d) = civil_from_days((secs / SECS_PER_DAY) as i64);
            let rem = secs % SECS_PER_DAY;
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
                rem / 3600,
                (rem / 60) % 60,
                rem % 60,
                ns % NANOS_PER_SEC
            );
            assert_eq!(t.to_string(), want);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{want}\""));
            ns = ns * 3 + 7;
        }
    }

    #[test]
    fn parse_is_the_inverse_of_format() {
        for ns in [
            0,
            1,
            999_999_999,
            1_709_251_199_123_456_789,
            4_102_444_800_000_000_001,
        ] {
            let t = Timestamp(ns);
            assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
        }
        assert_eq!(
            Timestamp::parse("2024-02-29T23:59:59.5Z").unwrap(),
            Timestamp(1_709_251_199_500_000_000)
        );
        assert_eq!(
            Timestamp::parse("2024-02-29T23:59:59Z").unwrap(),
            Timestamp(1_709_251_199_000_000_000)
        );
    }

    #[test]
    fn parse_rejects_what_is_not_the_contract_format() {
        for bad in [
            "",
            "2024-02-29",
            "2024-02-29T23:59:59+01:00",
            "2024-13-01T00:00:00Z",
            "2024-02-29T23:59:59.Z",
            "2024-02-29T23:59:59.1234567890Z",
            "２０２４-02-29T23:59:59Z",
            // Past what u64 nanoseconds hold (2554): an error, not an overflow.
            "6300-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
