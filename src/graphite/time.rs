//! Graphite `from`/`until` parsing (graphite-web's "at-time" syntax) and
//! interval strings used as function arguments. All calendar maths is UTC:
//! istatd has no per-user timezone, and fixed-zone maths is reproducible.

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

/// Parse a graphite time value relative to `now` (Unix seconds).
///
/// Accepted: `now`, relative offsets (`-6h`, `+30min`, `-1h30min`),
/// `reference+offset` (`now-1h`, `20240101+6h`), plain Unix seconds,
/// `YYYYMMDD`, `HH:MM_YYYYMMDD`, `midnight`/`noon`/`teatime`,
/// `today`/`yesterday`/`tomorrow`, `MM/DD/YY[YY]`, `Xam`/`Xpm`.
pub fn parse_time(s: &str, now: i64) -> Result<i64, String> {
    let bad = |why: &str| format!("bad time {s:?}: {why}");
    // graphite strips these so that "12:00_20240101" and "12:00 20240101"
    // are the same thing.
    let cleaned: String = s
        .trim()
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .collect();
    if cleaned.is_empty() {
        return Err(bad("empty"));
    }
    if cleaned.bytes().all(|b| b.is_ascii_digit()) && !looks_like_yyyymmdd(&cleaned) {
        return cleaned
            .parse::<i64>()
            .map_err(|_| bad("number out of range"));
    }
    // The first sign splits reference from offset, as graphite does; a
    // leading sign therefore means "now plus offset".
    let split_at = cleaned.find('+').or_else(|| cleaned.find('-'));
    let (reference, offset) = match split_at {
        Some(i) => cleaned.split_at(i),
        None => (cleaned.as_str(), ""),
    };
    let base = parse_reference(reference, now).map_err(|e| bad(&e))?;
    let delta = parse_offset(offset).map_err(|e| bad(&e))?;
    base.checked_add(delta).ok_or_else(|| bad("out of range"))
}

/// Parse a signed interval such as `1h`, `-1d`, `5min`, `1h30min` into
/// seconds. No sign means positive.
pub fn parse_interval(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return Err(format!("bad interval {s:?}: empty"));
    }
    parse_offset(&t).map_err(|e| format!("bad interval {s:?}: {e}"))
}

/// graphite's timeShift convention: an unsigned shift means "back in time".
pub fn time_shift_delta(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.starts_with(|c: char| c.is_ascii_digit()) {
        parse_interval(&format!("-{t}"))
    } else {
        parse_interval(t)
    }
}

/// The text graphite puts in a timeShift name: the user's string with the
/// implied '-' made explicit.
pub(crate) fn time_shift_label(s: &str) -> String {
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        format!("-{s}")
    } else {
        s.to_string()
    }
}

fn looks_like_yyyymmdd(s: &str) -> bool {
    if s.len() != 8 {
        return false;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|p| p.parse::<u32>().ok());
    matches!((num(0..4), num(4..6), num(6..8)), (Some(y), Some(m), Some(d)) if y > 1900 && m < 13 && d < 32)
}

/// Offsets are one optional sign followed by one or more `<number><unit>`
/// chunks; the sign applies to every chunk, matching graphite.
fn parse_offset(offset: &str) -> Result<i64, String> {
    let (sign, mut rest) = match offset.as_bytes().first() {
        None => return Ok(0),
        Some(b'-') => (-1i64, offset.get(1..).unwrap_or("")),
        Some(b'+') => (1, offset.get(1..).unwrap_or("")),
        Some(_) => (1, offset),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits_end);
        if num.is_empty() {
            return Err(format!("expected a number before {tail:?}"));
        }
        let num: i64 = num.parse().map_err(|_| "number out of range".to_string())?;
        let unit_end = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let secs = unit_seconds(unit)?;
        let chunk = num
            .checked_mul(secs)
            .and_then(|v| v.checked_mul(sign))
            .ok_or_else(|| "offset out of range".to_string())?;
        total = total
            .checked_add(chunk)
            .ok_or_else(|| "offset out of range".to_string())?;
        rest = tail;
    }
    Ok(total)
}

fn unit_seconds(unit: &str) -> Result<i64, String> {
    Ok(match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => MINUTE,
        "h" | "hour" | "hours" => HOUR,
        "d" | "day" | "days" => DAY,
        "w" | "week" | "weeks" => 7 * DAY,
        // graphite approximates calendar units with fixed lengths.
        "mon" | "month" | "months" => 30 * DAY,
        "y" | "year" | "years" => 365 * DAY,
        "" => return Err("missing unit".to_string()),
        other => return Err(format!("unknown unit {other:?}")),
    })
}

fn parse_reference(reference: &str, now: i64) -> Result<i64, String> {
    if reference.is_empty() || reference == "now" {
        return Ok(now);
    }
    let mut rest = reference;
    // Any explicit reference pins the time of day; graphite defaults it to
    // midnight when only a day is given.
    let (mut hour, mut minute) = (0i64, 0i64);
    if let Some(i) = rest.find(':').filter(|&i| i > 0 && i < 3) {
        hour = parse_small(rest.get(..i), "hour")?;
        minute = parse_small(rest.get(i + 1..i + 3), "minute")?;
        rest = rest.get(i + 3..).unwrap_or("");
        if let Some(r) = rest.strip_prefix("am") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("pm") {
            hour = (hour + 12) % 24;
            rest = r;
        }
    } else if let Some(i) = rest.find("am").filter(|&i| i > 0 && i < 3) {
        hour = parse_small(rest.get(..i), "hour")?;
        rest = rest.get(i + 2..).unwrap_or("");
    } else if let Some(i) = rest.find("pm").filter(|&i| i > 0 && i < 3) {
        hour = (parse_small(rest.get(..i), "hour")? + 12) % 24;
        rest = rest.get(i + 2..).unwrap_or("");
    }
    for (word, h) in [("noon", 12), ("midnight", 0), ("teatime", 16)] {
        if let Some(r) = rest.strip_prefix(word) {
            hour = h;
            minute = 0;
            rest = r;
            break;
        }
    }
    if hour > 23 || minute > 59 {
        return Err("time of day out of range".to_string());
    }
    let today = now.div_euclid(DAY);
    let day = match rest {
        "" | "today" => today,
        "yesterday" => today - 1,
        "tomorrow" => today + 1,
        _ if rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            let y = parse_small(rest.get(0..4), "year")?;
            let m = parse_small(rest.get(4..6), "month")?;
            let d = parse_small(rest.get(6..8), "day")?;
            days_from_civil_checked(y, m, d)?
        }
        _ if rest.matches('/').count() == 2 => {
            let mut parts = rest.split('/');
            let m = parse_small(parts.next(), "month")?;
            let d = parse_small(parts.next(), "day")?;
            let y_text = parts.next().unwrap_or("");
            let mut y = parse_small(Some(y_text), "year")?;
            if y_text.len() <= 2 {
                // strptime's %y pivot: 69-99 -> 19xx, 00-68 -> 20xx.
                y += if y < 69 { 2000 } else { 1900 };
            }
            days_from_civil_checked(y, m, d)?
        }
        _ => return Err(format!("unknown day reference {reference:?}")),
    };
    day.checked_mul(DAY)
        .and_then(|t| t.checked_add(hour * HOUR + minute * MINUTE))
        .ok_or_else(|| "out of range".to_string())
}

fn parse_small(s: Option<&str>, what: &str) -> Result<i64, String> {
    s.filter(|t| !t.is_empty() && t.len() <= 4 && t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or_else(|| format!("bad {what}"))
}

fn days_from_civil_checked(y: i64, m: i64, d: i64) -> Result<i64, String> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(format!("invalid date {y:04}-{m:02}-{d:02}"));
    }
    Ok(days_from_civil(y, m, d))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Hinnant's
/// algorithm), so no calendar crate is needed.
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-03-15 12:34:56 UTC
    const NOW: i64 = 1_710_506_096;
    const MIDNIGHT: i64 = 1_710_460_800;

    #[test]
    fn now_and_relative() {
        assert_eq!(parse_time("now", NOW), Ok(NOW));
        assert_eq!(parse_time("-6h", NOW), Ok(NOW - 6 * 3600));
        assert_eq!(parse_time("-5min", NOW), Ok(NOW - 300));
        assert_eq!(parse_time("-30s", NOW), Ok(NOW - 30));
        assert_eq!(parse_time("-7d", NOW), Ok(NOW - 7 * 86400));
        assert_eq!(parse_time("-1w", NOW), Ok(NOW - 7 * 86400));
        assert_eq!(parse_time("-1mon", NOW), Ok(NOW - 30 * 86400));
        assert_eq!(parse_time("-1y", NOW), Ok(NOW - 365 * 86400));
        assert_eq!(parse_time("+1hour", NOW), Ok(NOW + 3600));
        assert_eq!(parse_time("-2minutes", NOW), Ok(NOW - 120));
        assert_eq!(parse_time("-3seconds", NOW), Ok(NOW - 3));
        assert_eq!(parse_time("-1h30min", NOW), Ok(NOW - 5400));
        assert_eq!(parse_time("now-1h", NOW), Ok(NOW - 3600));
        assert_eq!(parse_time(" NOW ", NOW), Ok(NOW));
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(parse_time("1700000000", NOW), Ok(1_700_000_000));
        assert_eq!(parse_time("20240315", NOW), Ok(MIDNIGHT));
        assert_eq!(parse_time("12:30_20240315", NOW), Ok(MIDNIGHT + 45_000));
        assert_eq!(parse_time("12:30 20240315", NOW), Ok(MIDNIGHT + 45_000));
        assert_eq!(parse_time("midnight", NOW), Ok(MIDNIGHT));
        assert_eq!(parse_time("noon", NOW), Ok(MIDNIGHT + 12 * 3600));
        assert_eq!(parse_time("yesterday", NOW), Ok(MIDNIGHT - 86400));
        assert_eq!(parse_time("03/15/2024", NOW), Ok(MIDNIGHT));
        assert_eq!(parse_time("03/15/24", NOW), Ok(MIDNIGHT));
        assert_eq!(parse_time("20240315+6h", NOW), Ok(MIDNIGHT + 6 * 3600));
        assert_eq!(parse_time("19700101", NOW), Ok(0));
    }

    #[test]
    fn errors_are_readable() {
        let e = parse_time("xyz", NOW).unwrap_err();
        assert!(e.starts_with("bad time \"xyz\""), "{e}");
        assert!(parse_time("-6q", NOW).is_err());
        assert!(parse_time("-h", NOW).is_err());
        assert!(parse_time("20240231", NOW).is_err());
        assert!(parse_time("", NOW).is_err());
        assert!(parse_time("99999999999999999999", NOW).is_err());
        assert!(parse_time("-99999999999999y", NOW).is_err());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1h"), Ok(3600));
        assert_eq!(parse_interval("-1d"), Ok(-86400));
        assert_eq!(parse_interval("5min"), Ok(300));
        assert_eq!(parse_interval("+10s"), Ok(10));
        assert!(parse_interval("abc").is_err());
        assert!(parse_interval("").is_err());
        assert_eq!(time_shift_delta("1d"), Ok(-86400));
        assert_eq!(time_shift_delta("+1d"), Ok(86400));
        assert_eq!(time_shift_delta("-1d"), Ok(-86400));
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 3, 15) * 86400, MIDNIGHT);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}", now in proptest::num::i64::ANY) {
            let _ = parse_time(&s, now);
            let _ = parse_interval(&s);
        }
    }
}
