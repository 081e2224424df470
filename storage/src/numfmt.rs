//! Number and time text exactly as the reference's C/C++ output prints them.
//!
//! `g6` is C `printf("%g")` (C++ stream default), `g17` is `printf("%.17g")`
//! (docs/interfaces.md §1.4). Rust's float formatting rounds exactly, as glibc does, so the
//! digits come from `{:e}`/`{:.N}` and only the `%g` layout rules live here.

use std::fmt::Write;

/// `printf("%g", v)`.
pub fn g6(v: f64) -> String {
    let mut s = String::new();
    push_g(&mut s, v, 6);
    s
}

/// `printf("%.17g", v)`.
pub fn g17(v: f64) -> String {
    let mut s = String::new();
    push_g(&mut s, v, 17);
    s
}

/// Append `printf("%.{precision}g", v)` to `out`, without allocating (a one-day query
/// prints some 60,000 numbers): an integer of at most `precision` digits is written as
/// one, anything else goes through Rust's exact float formatting in a stack buffer.
pub fn push_g(out: &mut String, v: f64, precision: usize) {
    let p = precision.max(1);
    if v.is_nan() {
        out.push_str(if v.is_sign_negative() { "-nan" } else { "nan" });
        return;
    }
    if v.is_infinite() {
        out.push_str(if v < 0.0 { "-inf" } else { "inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Counts and whole sums: with no more than p digits, %g prints the integer.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let i = v as i64;
        if i.unsigned_abs() < POW10[p.min(15)] {
            push_int(out, i);
            return;
        }
    }
    // The exponent after rounding to p significant digits decides the style.
    let digits = || {
        if p > MAX_STACK_PRECISION {
            Digits::Heap(String::new())
        } else {
            Digits::Stack(StackText::new())
        }
    };
    let mut e_form = digits();
    let _ = write!(e_form, "{:.*e}", p - 1, v);
    let e_form = e_form.as_str();
    let epos = e_form.rfind('e').expect("exponent form");
    let exp: i32 = e_form[epos + 1..].parse().expect("exponent");
    if exp < -4 || exp >= p as i32 {
        let _ = write!(
            out,
            "{}e{}{:02}",
            strip_zeros(&e_form[..epos]),
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    } else {
        let decimals = (p as i32 - 1 - exp) as usize;
        let mut fixed = digits();
        let _ = write!(fixed, "{:.*}", decimals, v);
        out.push_str(strip_zeros(fixed.as_str()));
    }
}

/// The digits of one number: on the stack, or (precisions over
/// [`MAX_STACK_PRECISION`]) in a `String`.
enum Digits {
    Stack(StackText),
    Heap(String),
}

impl Digits {
    fn as_str(&self) -> &str {
        match self {
            Digits::Stack(t) => t.as_str(),
            Digits::Heap(s) => s,
        }
    }
}

impl Write for Digits {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        match self {
            Digits::Stack(t) => t.write_str(s),
            Digits::Heap(h) => h.write_str(s),
        }
    }
}

/// Append the decimal text of `i` (what `{}` prints, without the formatting machinery:
/// a query answer has a few integers per bucket).
pub fn push_int(out: &mut String, i: i64) {
    if i < 0 {
        out.push('-');
    }
    push_uint(out, i.unsigned_abs());
}

/// Append the decimal text of `u`.
pub fn push_uint(out: &mut String, mut u: u64) {
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[at..]).unwrap_or_default());
}

/// 10^i for i in 0..=15.
const POW10: [u64; 16] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
    10_000_000_000_000,
    100_000_000_000_000,
    1_000_000_000_000_000,
];

/// Longest precision [`StackText`] holds: `%.{p-1}e` is under p + 8 bytes, the fixed
/// form (exponent -4 to p - 1) under 2 p + 8.
const MAX_STACK_PRECISION: usize = 40;

/// A formatting target on the stack, for the digits of one number.
struct StackText {
    buf: [u8; 96],
    len: usize,
}

impl StackText {
    fn new() -> StackText {
        StackText {
            buf: [0; 96],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        // Only whole `str`s are ever copied in.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.buf.len() {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Drop trailing zeros after a decimal point, and the point itself if nothing is left.
fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Civil date (year, month 1-12, day 1-31) from days since 1970-01-01 (Howard
/// Hinnant's algorithm); the one copy of this date math (ISO 8601 here, HTTP dates in
/// the daemon).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `strftime("%Y-%m-%dT%H:%M:%SZ", gmtime(t))`.
pub fn iso8601(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y,
        m,
        d,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Parse `YYYY-MM-DDTHH:MM:SSZ` back into Unix seconds.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo as u32, d as u32) * 86400 + h * 3600 + mi * 60 + se)
}

#[cfg(test)]
mod tests {
    #[test]
    fn integers_as_display_prints_them() {
        for i in [
            0,
            1,
            -1,
            9,
            10,
            -10,
            99,
            100,
            12345,
            i64::MAX,
            i64::MIN,
            -987654321,
        ] {
            let mut s = String::new();
            super::push_int(&mut s, i);
            assert_eq!(s, i.to_string());
        }
        let mut s = String::new();
        super::push_uint(&mut s, u64::MAX);
        assert_eq!(s, u64::MAX.to_string());
    }

    /// The algorithm before the fast paths (two `String`s a number): the oracle.
    fn plain_g(v: f64, p: usize) -> String {
        let e_form = format!("{:.*e}", p - 1, v);
        let epos = e_form.rfind('e').unwrap();
        let exp: i32 = e_form[epos + 1..].parse().unwrap();
        if exp < -4 || exp >= p as i32 {
            let sign = if exp < 0 { '-' } else { '+' };
            format!(
                "{}e{sign}{:02}",
                super::strip_zeros(&e_form[..epos]),
                exp.abs()
            )
        } else {
            let decimals = (p as i32 - 1 - exp) as usize;
            super::strip_zeros(&format!("{:.*}", decimals, v)).to_owned()
        }
    }

    /// The stack-buffer and integer paths print what the allocating algorithm prints.
    #[test]
    fn push_g_fast_paths_match_the_plain_algorithm() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut values: Vec<f64> = Vec::new();
        for k in 0..17 {
            let p = 10f64.powi(k);
            values.extend([p, p - 1.0, p + 1.0, -p, p * 0.5, p / 3.0, -(p + 1.0)]);
        }
        for _ in 0..20_000 {
            let r = next();
            values.push(f64::from_bits(r));
            values.push(f32::from_bits(r as u32) as f64);
            values.push((r % 2_000_000) as f64 - 1_000_000.0);
            values.push((r % 100_000) as f64 / 8.0);
        }
        for v in values.into_iter().filter(|v| v.is_finite() && *v != 0.0) {
            for p in [1, 2, 6, 15, 16, 17, 20, 45] {
                let mut fast = String::new();
                super::push_g(&mut fast, v, p);
                let plain = plain_g(v, p);
                assert_eq!(fast, plain, "{v:e} at precision {p}");
            }
        }
    }

    use super::*;

    #[test]
    fn g6_matches_printf() {
        let cases: &[(f64, &str)] = &[
            (113.64, "113.64"),
            (12914.0498046875, "12914"),
            (0.0433333, "0.0433333"),
            (3997940.0, "3.99794e+06"),
            (23870.1, "23870.1"),
            (1234567.891, "1.23457e+06"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (0.00001, "1e-05"),
            (0.0001, "0.0001"),
            (0.5, "0.5"),
            (-0.0, "-0"),
            (0.0, "0"),
            (999999.5, "1e+06"),
            (999999.4, "999999"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-2.5, "-2.5"),
            (1e300, "1e+300"),
            (1.5e-300, "1.5e-300"),
            (0.125, "0.125"),
            (f32::MAX as f64, "3.40282e+38"),
        ];
        for (v, want) in cases {
            assert_eq!(g6(*v), *want, "g6({v:e})");
        }
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the literals are printf's own text
    fn g17_matches_printf() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.5, "0.5"),
            (0.1, "0.10000000000000001"),
            (0.15000000596046448, "0.15000000596046448"),
            (1e17, "1e+17"),
            (1.5241578941053944e26, "1.5241578941053944e+26"),
            (1234567.875, "1234567.875"),
            (0.070710659027099609, "0.070710659027099609"),
            (1.1754943508222875e-38, "1.1754943508222875e-38"),
            (0.00001, "1.0000000000000001e-05"),
        ];
        for (v, want) in cases {
            assert_eq!(g17(*v), *want, "g17({v:e})");
        }
    }

    #[test]
    fn iso_round_trip() {
        assert_eq!(iso8601(1600000000), "2020-09-13T12:26:40Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59Z");
        assert_eq!(iso8601(951782400), "2000-02-29T00:00:00Z");
        for t in [0i64, 1600002760, 951782400, 4102444800, -86400 * 365] {
            assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
        }
        assert_eq!(parse_iso8601("2020-13-01T00:00:00Z"), None);
        assert_eq!(parse_iso8601("garbage"), None);
    }
}
