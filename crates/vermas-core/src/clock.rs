//! Wall-clock time, injectable so tests can move it (a clock two days behind must never make a
//! write land in an older partition). Timeouts and backoff use `std::time::Instant`, not this.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;

/// A source of UTC wall-clock time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The real clock shifted by a fixed offset (tests: a clock that is behind or ahead).
#[derive(Debug, Clone, Copy)]
pub struct OffsetClock(pub chrono::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// The shared default clock.
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

/// RFC 3339 UTC with milliseconds, the one timestamp format of the store.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses a store timestamp (any RFC 3339 form).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The durations [`parse_duration`] accepts, for messages.
pub const DURATION_FORMS: &str = "90s, 15m, 1h, 7d, 2w";

/// The dates [`parse_since`] accepts besides durations, for messages.
pub const DATE_FORMS: &str = "2026-11-20, 2026-11-20T12:00:00Z";

/// Parses a human duration: a whole number and a unit, `90s`, `15m`, `1h`, `7d`, `2w` (also
/// `sec`, `min`, `hour(s)`, `day(s)`, `week(s)`). A bare number is refused: `7` could mean seconds
/// or days, and a wrong guess archives or hides the wrong things.
pub fn parse_duration(s: &str) -> Option<chrono::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n.checked_mul(60)?,
        "h" | "hour" | "hours" => n.checked_mul(3600)?,
        "d" | "day" | "days" => n.checked_mul(86_400)?,
        "w" | "week" | "weeks" => n.checked_mul(7 * 86_400)?,
        _ => return None,
    };
    chrono::Duration::try_seconds(secs)
}

/// Whether `s` is a number without a unit (`7`): the duration mistake worth naming.
pub fn is_bare_number(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `--since` values: a duration back from now (`1h`, `7d`) or an RFC 3339 time or a date.
/// `None` also for a duration that reaches before the earliest representable time.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(d) = parse_duration(s) {
        return now.checked_sub_signed(d);
    }
    if let Some(t) = parse_timestamp(s) {
        return Some(t);
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A short human age: `42s`, `5m`, `3h`, `2d`.
pub fn human_age(secs: i64) -> String {
    let (n, unit) = age_parts(secs);
    format!("{n}{unit}")
}

/// What [`human_age`] writes: a count and its unit (`s`, `m`, `h` or `d`), for a writer that
/// formats it without a `String` of its own.
pub fn age_parts(secs: i64) -> (i64, char) {
    let secs = secs.max(0);
    match secs {
        0..=59 => (secs, 's'),
        60..=3599 => (secs / 60, 'm'),
        3600..=86_399 => (secs / 3600, 'h'),
        _ => (secs / 86_400, 'd'),
    }
}

/// The human age of a stored timestamp (`?` when it does not parse).
pub fn age_of(ts: &str) -> String {
    parse_timestamp(ts)
        .map(|t| human_age((Utc::now() - t).num_seconds()))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), chrono::Duration::try_seconds(90));
        assert_eq!(parse_duration("7d"), chrono::Duration::try_days(7));
        assert_eq!(parse_duration("30s"), chrono::Duration::try_seconds(30));
        // A number without a unit is not a duration.
        assert!(parse_duration("30").is_none());
        assert!(parse_duration("7").is_none());
        assert!(is_bare_number("7") && is_bare_number(" 30 "));
        assert!(!is_bare_number("7d") && !is_bare_number(""));
        assert_eq!(parse_duration("2w"), chrono::Duration::try_days(14));
        assert!(parse_duration("7x").is_none());
        assert!(parse_duration("d").is_none());
        assert!(parse_duration("").is_none());
    }

    #[test]
    fn since_accepts_dates_and_durations() {
        let now = parse_timestamp("2026-11-21T12:00:00Z").unwrap();
        assert_eq!(
            parse_since("1h", now),
            parse_timestamp("2026-11-21T11:00:00Z")
        );
        assert_eq!(
            parse_since("2026-11-20", now),
            parse_timestamp("2026-11-20T00:00:00Z")
        );
        assert!(parse_since("yesterday", now).is_none());
        assert!(parse_since("7", now).is_none(), "a bare number is neither");
        // Too far back to represent: no time, and no panic.
        assert!(parse_since("100000000d", now).is_none());
    }
}
