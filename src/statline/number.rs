//! The number fields of a counter line, parsed as the reference's
//! `boost::lexical_cast` calls accept them (docs/interfaces.md §2.4).

use super::outcome::BadReason;

/// A `value`, `sum`, `sumsq`, `min` or `max` field: the reference's `to_double`, i.e.
/// `boost::lexical_cast<double>` (boost 1.74, libstdc++) after mapping the exact strings
/// `nan`, `NaN`, `-nan`, `-NaN` (and the empty string) to 0.
///
/// Accepted: `[+-]? digits [. digits] [(e|E) [+-]? digits]` with at least one mantissa
/// digit (`5.`, `.5`, `+5`, `1e3`), whose value is finite (libstdc++'s `num_get` fails
/// on overflow, so `1e400` is rejected; underflow gives 0 or a denormal); `inf` and
/// `infinity` in any case with an optional sign; any other `nan` spelling (any case,
/// optional sign, optional `(...)` suffix) gives NaN. Rejected: whitespace, hex,
/// `1e`, `1e+`, `.`, `,` and anything else.
pub fn parse_value(f: &[u8]) -> Option<f64> {
    if matches!(f, b"nan" | b"NaN" | b"-nan" | b"-NaN" | b"") {
        return Some(0.0);
    }
    if let Some(v) = parse_inf_nan(f) {
        return Some(v);
    }
    let len = f.len();
    let mut i = 0;
    if matches!(f.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut mantissa = false;
    let mut dot = false;
    while i < len {
        match f[i] {
            b'0'..=b'9' => mantissa = true,
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if !mantissa {
        return None;
    }
    if i < len && (f[i] == b'e' || f[i] == b'E') {
        i += 1;
        if i < len && (f[i] == b'+' || f[i] == b'-') {
            i += 1;
        }
        let digits = i;
        while i < len && f[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            return None;
        }
    }
    if i != len {
        return None;
    }
    let v: f64 = std::str::from_utf8(f).ok()?.parse().ok()?;
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// boost's `parse_inf_nan`: optional sign, then `nan` (any case) optionally followed by
/// `(...)`, or exactly `inf` / `infinity` (any case).
fn parse_inf_nan(f: &[u8]) -> Option<f64> {
    let (neg, rest) = match f {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, f),
    };
    if rest.len() < 3 {
        return None;
    }
    let v = if rest[..3].eq_ignore_ascii_case(b"nan") {
        let tail = &rest[3..];
        if !tail.is_empty() && (tail.len() < 2 || tail[0] != b'(' || tail[tail.len() - 1] != b')') {
            return None;
        }
        f64::NAN
    } else if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// `[+-]? digits` as an unsigned magnitude; `None` when empty, not digits, or above
/// `u64::MAX` (boost `lcast_ret_unsigned`; leading zeros are fine).
fn parse_magnitude(f: &[u8]) -> Option<(bool, u64)> {
    let (neg, digits) = match f {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, f),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((neg, v))
}

/// A `time` field: `boost::lexical_cast<time_t>`: `[+-]? digits` within the range of a
/// signed 64-bit integer (`12.5`, `1e3`, ` 5` rejected).
pub fn parse_time(f: &[u8]) -> Option<i64> {
    let (neg, mag) = parse_magnitude(f)?;
    if neg {
        if mag > 1u64 << 63 {
            None
        } else {
            Some(0u64.wrapping_sub(mag) as i64)
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// A `count` field: `boost::lexical_cast<size_t>`: `[+-]? digits` up to `u64::MAX`.
/// Port fix 5: a negative count (which the reference wraps) is
/// [`BadReason::NegativeCount`]; `-0` is 0.
pub fn parse_count(f: &[u8]) -> Result<u64, BadReason> {
    match parse_magnitude(f) {
        None => Err(BadReason::BadNumber),
        Some((true, m)) if m != 0 => Err(BadReason::NegativeCount),
        Some((_, m)) => Ok(m),
    }
}
