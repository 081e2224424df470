//! Retention lists: `--retention interval:keep[:name[:lambda]],...` (docs/interfaces.md
//! §7.4, docs/file-format.md "Sizing a file"; reference daemon/Retention.cpp and
//! `interval_to_seconds` in lib/strfunc.cpp).
//!
//! Each entry becomes one file per counter, named `name` (default: the interval text),
//! holding `samples = keep / interval` buckets (integer division). An entry with a lambda
//! in (0, 1) is a trailing (moving-average) file whose season is `samples × interval`.
//!
//! Error messages are the reference's where it has one; the port adds a few checks the
//! reference lacks (see [`parse_retentions`]).

use crate::format;

/// The reference daemon's default `--retention`.
pub const DEFAULT_RETENTION: &str = "10s:10d,5m:1y9d,1h:6y12d,5m:7d:ret-7d:0.9";

/// Largest page count a file may have (the header check of docs/file-format.md,
/// "Validation", refuses more).
const MAX_PAGES: i64 = 1 << 24;
/// Trailing seasons the reference accepts when creating the file (lib/StatFile.cpp:
/// "header season must be in [10s,1y] for trailing history files"; its 1y is 373 days).
const MIN_SEASON: i64 = 10;
const MAX_SEASON: i64 = 373 * 24 * 60 * 60;

/// One parsed retention entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Bucket size in seconds (> 0).
    pub interval: i64,
    /// How long to keep, in seconds, as written.
    pub keep: i64,
    /// `keep / interval` (> 0).
    pub samples: i64,
    /// File name inside each counter directory.
    pub name: String,
    /// 0 = regular file; in (0, 1) = trailing file.
    pub lambda: f64,
}

impl Retention {
    /// True for a trailing (lambda) file.
    pub fn is_trailing(&self) -> bool {
        self.lambda > 0.0
    }

    /// `samples × interval` for a trailing file, else 0 (the header's `season`).
    pub fn season(&self) -> i64 {
        if self.is_trailing() {
            self.samples * self.interval
        } else {
            0
        }
    }

    /// Pages of buckets a file for this retention gets (docs/file-format.md, "Sizing a
    /// file").
    pub fn page_count(&self) -> i64 {
        let season = if self.is_trailing() {
            Some(self.season() as u64)
        } else {
            None
        };
        format::pages_for(self.samples, self.interval, season)
    }
}

/// Why a duration or a retention list was refused. The text is the reference's message
/// where the reference refuses the same input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionError {
    /// Not `<digits><unit>` repeated (the text as given).
    BadDuration(String),
    UnknownUnit(String),
    /// A duration, or an interval, beyond what fits (the text as given).
    TooLarge(String),
    /// An entry without its `:keep` field.
    NoRetention(String),
    ZeroInterval(String),
    /// `keep` shorter than one interval (the `keep` text).
    ZeroSamples(String),
    /// Not a number in (0, 1) (the lambda text).
    BadLambda(String),
    /// Not a plain file name.
    BadName(String),
    /// A trailing retention's season outside [10 s, 373 d] (the entry).
    BadSeason(String),
    /// More pages than a file may have.
    TooLong {
        pages: i64,
        entry: String,
    },
    Empty,
    NotIncreasing,
    RegularAfterTrailing,
    DuplicateName {
        name: String,
        entry: String,
    },
}

impl std::fmt::Display for RetentionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetentionError::BadDuration(t) => write!(f, "invalid interval format: {t}"),
            RetentionError::UnknownUnit(u) => write!(f, "Unknown time unit: {u}"),
            RetentionError::TooLarge(t) => write!(f, "interval too large: {t}"),
            RetentionError::NoRetention(e) => {
                write!(f, "must specify at least interval:retention: {e}")
            }
            RetentionError::ZeroInterval(t) => write!(f, "interval cannot be 0: {t}"),
            RetentionError::ZeroSamples(k) => {
                write!(f, "interval samples cannot be 0, based on retention: {k}")
            }
            RetentionError::BadLambda(l) => {
                write!(f, "lambda must be > 0 and < 1 if specified: '{l}'")
            }
            RetentionError::BadName(n) => {
                write!(f, "retention name must be a plain file name: '{n}'")
            }
            RetentionError::BadSeason(e) => write!(
                f,
                "season of a trailing retention must be between 10s and 373d: {e}"
            ),
            RetentionError::TooLong { pages, entry } => write!(
                f,
                "retention too long ({pages} pages, at most {MAX_PAGES}): {entry}"
            ),
            RetentionError::Empty => write!(f, "retention list is empty"),
            RetentionError::NotIncreasing => {
                write!(
                    f,
                    "Each retention interval must be longer than the previous."
                )
            }
            RetentionError::RegularAfterTrailing => write!(
                f,
                "Season retention intervals must be specified after regular intervals."
            ),
            RetentionError::DuplicateName { name, entry } => {
                write!(f, "duplicate retention name '{name}': {entry}")
            }
        }
    }
}

impl std::error::Error for RetentionError {}

/// Seconds per unit letter (`s`, `m`, `h`, `d`, `y` = 365 days).
fn unit_seconds(unit: &str) -> Option<i64> {
    match unit {
        "s" => Some(1),
        "m" => Some(60),
        "h" => Some(3600),
        "d" => Some(86400),
        "y" => Some(365 * 86400),
        _ => None,
    }
}

/// A duration: one or more `<digits><unit>` concatenated (`10s`, `1y9d`, `6y12d`).
///
/// Same acceptance as the reference's `interval_to_seconds`: digits then a unit, repeated;
/// anything else ("", "10", "s10", " 5m", "10sec", "-1s") is an error.
pub fn parse_duration(text: &str) -> Result<i64, RetentionError> {
    let invalid = || RetentionError::BadDuration(text.to_string());
    let b = text.as_bytes();
    if b.is_empty() {
        return Err(invalid());
    }
    let mut total: i64 = 0;
    let mut i = 0;
    while i < b.len() {
        let ds = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == ds {
            return Err(invalid());
        }
        let us = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        if i == us {
            // digits without a unit at the end
            return Err(invalid());
        }
        let unit = &text[us..i];
        // The reference insists that the last unit is one character long.
        if i == b.len() && unit.len() != 1 {
            return Err(invalid());
        }
        let mul =
            unit_seconds(unit).ok_or_else(|| RetentionError::UnknownUnit(unit.to_string()))?;
        let n: i64 = text[ds..us]
            .parse()
            .map_err(|_| RetentionError::TooLarge(text.to_string()))?;
        total = n
            .checked_mul(mul)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| RetentionError::TooLarge(text.to_string()))?;
    }
    Ok(total)
}

/// Parse one `interval:keep[:name[:lambda]]` entry (the reference's
/// `RetentionPolicy::addInterval(std::string)`), without the list-order checks.
fn parse_one(entry: &str) -> Result<Retention, RetentionError> {
    // splitn semantics: the fourth field is the rest of the line.
    let mut parts = entry.splitn(4, ':');
    let interval_s = parts.next().unwrap_or("");
    let keep_s = match parts.next() {
        Some(k) => k,
        None => return Err(RetentionError::NoRetention(entry.to_string())),
    };
    let name_s = parts.next().unwrap_or("");
    let lambda_s = parts.next().unwrap_or("");

    let interval = parse_duration(interval_s)?;
    if interval == 0 {
        return Err(RetentionError::ZeroInterval(interval_s.to_string()));
    }
    if interval > i32::MAX as i64 {
        // Port: the header stores the interval as an i32.
        return Err(RetentionError::TooLarge(interval_s.to_string()));
    }
    let keep = parse_duration(keep_s)?;
    let samples = keep / interval;
    if samples == 0 {
        return Err(RetentionError::ZeroSamples(keep_s.to_string()));
    }
    let lambda = if lambda_s.is_empty() {
        0.0
    } else {
        // Port: the whole field must be a number (strtod would ignore trailing text and
        // let NaN through).
        let l: f64 = lambda_s.trim().parse().unwrap_or(f64::NAN);
        if l.is_nan() || l <= 0.0 || l >= 1.0 {
            return Err(RetentionError::BadLambda(lambda_s.to_string()));
        }
        l
    };
    let name = if name_s.is_empty() {
        interval_s.to_string()
    } else {
        name_s.to_string()
    };
    // Port: the name is a file name inside the counter directory.
    if name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(RetentionError::BadName(name));
    }
    let r = Retention {
        interval,
        keep,
        samples,
        name,
        lambda,
    };
    if r.is_trailing() {
        // Port: the reference only fails later, when it creates each counter's file.
        let season = r.season();
        if !(MIN_SEASON..=MAX_SEASON).contains(&season) {
            return Err(RetentionError::BadSeason(entry.to_string()));
        }
    }
    // Port: a file the header check (docs/file-format.md, "Validation") would refuse.
    let pages = (samples + format::BUCKETS_PER_PAGE as i64 - 1) / format::BUCKETS_PER_PAGE as i64;
    if pages > MAX_PAGES {
        return Err(RetentionError::TooLong {
            pages,
            entry: entry.to_string(),
        });
    }
    Ok(r)
}

/// Parse a comma-separated retention list.
///
/// Reference behaviour: a single trailing comma is ignored; empty entries are errors;
/// regular intervals must be strictly increasing ("Each retention interval must be longer
/// than the previous."); trailing entries come after all regular ones ("Season retention
/// intervals must be specified after regular intervals.").
///
/// Port additions (the reference accepts these and misbehaves later): an empty list,
/// duplicate names (two retentions writing the same file), names that are not plain file
/// names, intervals over i32, lambda fields that are not entirely a number, trailing
/// seasons outside [10 s, 373 d] and files over 2^24 pages are errors.
pub fn parse_retentions(s: &str) -> Result<Vec<Retention>, RetentionError> {
    if s.is_empty() {
        return Err(RetentionError::Empty);
    }
    let mut entries: Vec<&str> = s.split(',').collect();
    if entries.len() > 1 && entries.last() == Some(&"") {
        entries.pop();
    }
    let mut out: Vec<Retention> = Vec::new();
    for entry in entries {
        let r = parse_one(entry)?;
        if let Some(prev) = out.last() {
            if !r.is_trailing() && prev.interval >= r.interval {
                return Err(RetentionError::NotIncreasing);
            }
            if !r.is_trailing() && prev.is_trailing() {
                return Err(RetentionError::RegularAfterTrailing);
            }
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(RetentionError::DuplicateName {
                name: r.name,
                entry: entry.to_string(),
            });
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list() {
        let rs = parse_retentions(DEFAULT_RETENTION).unwrap();
        let names: Vec<&str> = rs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["10s", "5m", "1h", "ret-7d"]);
        let pages: Vec<i64> = rs.iter().map(|r| r.page_count()).collect();
        assert_eq!(pages, [338, 421, 207, 8]);
        assert_eq!(
            rs.iter()
                .map(|r| (r.interval, r.keep, r.samples))
                .collect::<Vec<_>>(),
            [
                (10, 864000, 86400),
                (300, 374 * 86400, 107712),
                (3600, 2202 * 86400, 52848),
                (300, 604800, 2016)
            ]
        );
        assert_eq!(
            rs.iter().map(|r| r.season()).collect::<Vec<_>>(),
            [0, 0, 0, 604800]
        );
        assert_eq!(rs[3].lambda, 0.9);
        assert!(rs[3].is_trailing() && !rs[0].is_trailing());
    }

    #[test]
    fn golden_lists() {
        let rs = parse_retentions("10s:1h,5m:1d").unwrap();
        assert_eq!(rs.len(), 2);
        assert_eq!((rs[0].samples, rs[0].page_count()), (360, 2));
        assert_eq!((rs[1].samples, rs[1].page_count()), (288, 2));
        let rs = parse_retentions("10s:1h,5m:2h,1h:3h").unwrap();
        assert_eq!(
            rs.iter().map(|r| r.samples).collect::<Vec<_>>(),
            [360, 24, 3]
        );
        // A trailing file is sized to cover its season.
        let rs = parse_retentions("10s:1h,1m:10m:ma-10m:0.5,1h:1d:ma-1d:0.25").unwrap();
        assert_eq!((rs[1].season(), rs[1].page_count()), (600, 2));
        assert_eq!((rs[2].season(), rs[2].page_count()), (86400, 2));
        // Trailing comma ignored, explicit name, empty name/lambda fields.
        let rs = parse_retentions("10s:1h:fine,1m:1d::,").unwrap();
        assert_eq!(rs[0].name, "fine");
        assert_eq!((rs[1].name.as_str(), rs[1].lambda), ("1m", 0.0));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(10));
        assert_eq!(parse_duration("1y9d"), Ok(374 * 86400));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1m1m"), Ok(120));
        assert_eq!(parse_duration("0s"), Ok(0));
        for bad in [
            "", "10", "s", "s10", " 5m", "5m ", "-1s", "1.5h", "10ss", "1hm",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_duration("10x").map_err(|e| e.to_string()),
            Err("Unknown time unit: x".to_string())
        );
        assert_eq!(
            parse_duration("10").map_err(|e| e.to_string()),
            Err("invalid interval format: 10".to_string())
        );
        assert_eq!(
            parse_duration("10ms1s").map_err(|e| e.to_string()),
            Err("Unknown time unit: ms".to_string())
        );
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("999999999999y").is_err());
    }

    fn err(s: &str) -> String {
        parse_retentions(s).unwrap_err().to_string()
    }

    #[test]
    fn errors() {
        assert_eq!(
            err("10s:1h,1m"),
            "must specify at least interval:retention: 1m"
        );
        assert_eq!(err("10s"), "must specify at least interval:retention: 10s");
        assert_eq!(err("0s:1h"), "interval cannot be 0: 0s");
        assert_eq!(
            err("1m:30s"),
            "interval samples cannot be 0, based on retention: 30s"
        );
        assert_eq!(
            err("10s:0s"),
            "interval samples cannot be 0, based on retention: 0s"
        );
        assert_eq!(
            err("10s:1h:x:1"),
            "lambda must be > 0 and < 1 if specified: '1'"
        );
        assert_eq!(
            err("10s:1h:x:0"),
            "lambda must be > 0 and < 1 if specified: '0'"
        );
        assert_eq!(
            err("10s:1h:x:-0.5"),
            "lambda must be > 0 and < 1 if specified: '-0.5'"
        );
        assert!(err("10s:1h:x:nan").starts_with("lambda must be"));
        assert!(err("10s:1h:x:0.5abc").starts_with("lambda must be"));
        assert_eq!(
            err("1m:1d,10s:1h"),
            "Each retention interval must be longer than the previous."
        );
        assert_eq!(
            err("1m:1d,1m:2d:b"),
            "Each retention interval must be longer than the previous."
        );
        assert_eq!(
            err("10s:1h,5m:7d:t:0.9,1h:1y"),
            "Season retention intervals must be specified after regular intervals."
        );
        assert_eq!(err("10x:1h"), "Unknown time unit: x");
        assert_eq!(err("10s:1q"), "Unknown time unit: q");
        assert_eq!(
            err("10s:1h,,5m:1d"),
            "must specify at least interval:retention: "
        );
        assert_eq!(err(","), "must specify at least interval:retention: ");
        assert_eq!(
            err("10s:1h,,"),
            "must specify at least interval:retention: "
        );
        assert_eq!(err(""), "retention list is empty");
        assert_eq!(err("10s:1h, 5m:1d"), "invalid interval format:  5m");
        assert!(err("10s:1h,5m:1d:10s").starts_with("duplicate retention name '10s'"));
        assert!(err("10s:1h:a/b").starts_with("retention name must be a plain file name"));
        assert!(err("10s:1h:..").starts_with("retention name must be a plain file name"));
        assert!(err("100y:200y").starts_with("interval too large"));
        assert!(err("1s:5s:t:0.5").starts_with("season of a trailing retention"));
        assert!(err("1h:2y:t:0.5").starts_with("season of a trailing retention"));
        assert!(err("1s:1000y").starts_with("retention too long"));
        // Trailing entries may follow one another in any interval order.
        assert!(parse_retentions("10s:1h,5m:7d:a:0.9,1m:1d:b:0.5").is_ok());
    }
}
