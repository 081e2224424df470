//! Graphite's plaintext protocol (`name value timestamp`, one per line; docs/graphite.md
//! "Input"), rewritten into the stat port's 3-field form (`name time value`), so that a
//! Graphite sample takes exactly the path of an istatd gauge sample: the same munging,
//! parent creation, checks and counters.
//!
//! carbon's own listener is the model: three whitespace-separated fields, the value and
//! the timestamp read as floats, a NaN value skipped, a timestamp of -1 meaning "now".
//! What carbon would store under a name istatd cannot express is refused here instead
//! of being recorded under another meaning: a leading `*` (an istatd event counter), a
//! `^` (istatd's caret expansion), a `;` (Graphite tags, not supported), or a first byte
//! the stat port reserves.

use std::io::Write;

/// Why a Graphite line was refused (counted in `istatd.graphite.bad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphiteBad {
    /// Not exactly three fields.
    FieldCount,
    /// The value is not a number.
    Value,
    /// The timestamp is not a number, or not a representable time.
    Timestamp,
    /// The name would mean something else to istatd, or uses tags.
    Name,
}

impl GraphiteBad {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphiteBad::FieldCount => "expected `name value timestamp`",
            GraphiteBad::Value => "value is not a number",
            GraphiteBad::Timestamp => "timestamp is not a time",
            GraphiteBad::Name => "name has a leading `*`, `#` or reserved byte, a `^` or tags",
        }
    }
}

/// What to do with one Graphite line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphiteLine {
    /// `out` holds the equivalent stat line.
    Sample,
    /// Nothing to record: a blank line, or a NaN value (carbon drops those too).
    Skip,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c)
}

/// Rewrite one Graphite line (without its LF) into `out` as the stat line
/// `name time value`; `now` replaces a timestamp of -1.
pub fn translate(line: &[u8], now: i64, out: &mut Vec<u8>) -> Result<GraphiteLine, GraphiteBad> {
    out.clear();
    let mut fields = line.split(|&b| is_ws(b)).filter(|f| !f.is_empty());
    let (Some(name), value, stamp) = (fields.next(), fields.next(), fields.next()) else {
        return Ok(GraphiteLine::Skip);
    };
    let (Some(value), Some(stamp), None) = (value, stamp, fields.next()) else {
        return Err(GraphiteBad::FieldCount);
    };
    let reserved_first = matches!(
        name[0],
        b'*' | b'#' | b'@' | b'$' | b'%' | b'&' | b';' | b':'
    );
    if reserved_first || name.iter().any(|&b| b == b'^' || b == b';') {
        return Err(GraphiteBad::Name);
    }
    let value = parse_float(value).ok_or(GraphiteBad::Value)?;
    if value.is_nan() {
        return Ok(GraphiteLine::Skip);
    }
    let stamp = parse_float(stamp).ok_or(GraphiteBad::Timestamp)?;
    // carbon truncates a fractional timestamp, and reads -1 as "now".
    let time = if stamp == -1.0 {
        now
    } else if stamp.is_finite() && stamp.abs() < 1e15 {
        stamp.trunc() as i64
    } else {
        return Err(GraphiteBad::Timestamp);
    };
    out.extend_from_slice(name);
    // `{}` prints the shortest text that reads back as the same f64, which the stat
    // port's number parser accepts (`inf` included).
    let _ = write!(out, " {time} {value}");
    Ok(GraphiteLine::Sample)
}

/// A float as Python's `float()` reads one: decimal, exponent, `inf`/`nan`, optional
/// sign; no hex, no underscores.
fn parse_float(f: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(f).ok()?;
    if s.bytes().any(|b| b == b'_' || b == b'x' || b == b'X') {
        return None;
    }
    s.parse::<f64>().ok()
}

/// The lines of a Graphite datagram: split at LF, the last line may lack one (carbon's
/// UDP listener splits the datagram into lines the same way).
pub fn datagram_lines(d: &[u8]) -> impl Iterator<Item = &[u8]> {
    d.split(|&b| b == b'\n')
        .filter(|l| l.iter().any(|&b| !is_ws(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tr(line: &str) -> Result<(GraphiteLine, String), GraphiteBad> {
        let mut out = Vec::new();
        let r = translate(line.as_bytes(), 1_700_000_000, &mut out)?;
        Ok((r, String::from_utf8(out).unwrap()))
    }

    #[test]
    fn a_graphite_line_becomes_a_three_field_stat_line() {
        assert_eq!(
            tr("servers.web1.cpu 12.5 1699999990").unwrap(),
            (
                GraphiteLine::Sample,
                "servers.web1.cpu 1699999990 12.5".into()
            )
        );
        assert_eq!(
            tr("  a.b\t7   1699999990.9 \r").unwrap().1,
            "a.b 1699999990 7"
        );
        assert_eq!(tr("a.b 1e3 -1").unwrap().1, "a.b 1700000000 1000");
        assert_eq!(
            tr("a.b -0.25 1699999990").unwrap().1,
            "a.b 1699999990 -0.25"
        );
        assert_eq!(tr("a.b inf 1699999990").unwrap().1, "a.b 1699999990 inf");
    }

    #[test]
    fn blank_lines_and_nan_values_are_skipped() {
        assert_eq!(tr("").unwrap().0, GraphiteLine::Skip);
        assert_eq!(tr(" \r").unwrap().0, GraphiteLine::Skip);
        assert_eq!(tr("a.b nan 1699999990").unwrap().0, GraphiteLine::Skip);
        assert_eq!(tr("a.b NaN 1699999990").unwrap().0, GraphiteLine::Skip);
    }

    #[test]
    fn malformed_lines_say_why() {
        assert_eq!(tr("a.b"), Err(GraphiteBad::FieldCount));
        assert_eq!(tr("a.b 1"), Err(GraphiteBad::FieldCount));
        assert_eq!(tr("a.b 1 2 3"), Err(GraphiteBad::FieldCount));
        assert_eq!(tr("a.b x 1699999990"), Err(GraphiteBad::Value));
        assert_eq!(tr("a.b 0x10 1699999990"), Err(GraphiteBad::Value));
        assert_eq!(tr("a.b 1 later"), Err(GraphiteBad::Timestamp));
        assert_eq!(tr("a.b 1 1e300"), Err(GraphiteBad::Timestamp));
        assert_eq!(tr("a.b 1 inf"), Err(GraphiteBad::Timestamp));
        for name in ["*ev.x", "#meta", "@r", "a^b", "cpu;host=a", ":x"] {
            assert_eq!(
                tr(&format!("{name} 1 1699999990")),
                Err(GraphiteBad::Name),
                "{name}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_translate_without_panicking(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let mut out = Vec::new();
            let _ = translate(&line, 1_700_000_000, &mut out);
        }

        #[test]
        fn a_valid_line_reads_back_as_the_same_sample(
            name in "[a-z][a-z0-9_.]{0,30}",
            value in -1e12f64..1e12,
            time in 0i64..4_000_000_000,
        ) {
            let mut out = Vec::new();
            let line = format!("{name} {value} {time}");
            proptest::prop_assert_eq!(translate(line.as_bytes(), 0, &mut out), Ok(GraphiteLine::Sample));
            let text = String::from_utf8(out).unwrap();
            let fields: Vec<&str> = text.split(' ').collect();
            proptest::prop_assert_eq!(fields.len(), 3);
            proptest::prop_assert_eq!(fields[0], name.as_str());
            proptest::prop_assert_eq!(fields[1].parse::<i64>().unwrap(), time);
            proptest::prop_assert_eq!(fields[2].parse::<f64>().unwrap(), value);
        }
    }

    #[test]
    fn datagram_lines_need_no_final_newline() {
        let lines: Vec<&[u8]> = datagram_lines(b"a 1 2\n\nb 3 4\r\nc 5 6").collect();
        assert_eq!(lines, vec![&b"a 1 2"[..], b"b 3 4\r", b"c 5 6"]);
    }
}
