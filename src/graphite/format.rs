//! Python-compatible number formatting. graphite-web builds series names
//! with Python's `str()`/`repr()` and `%g`, and dashboards match on those
//! names, so the exact text matters.

/// Python 3 `repr(float)`: shortest round-trip digits, scientific notation
/// outside [1e-4, 1e16) with a signed, two-digit exponent.
pub(crate) fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    // Rust's Debug switches to exponent form at the same thresholds as
    // Python; only the exponent spelling differs ("1e16" vs "1e+16").
    let s = format!("{v:?}");
    match s.split_once('e') {
        None => s,
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
    }
}

/// [`py_float`] appended to `out`, without a String per number for the values a
/// series mostly holds (integers and plain decimals): the render path writes hundreds
/// of thousands of them per answer.
pub(crate) fn py_float_into(v: f64, out: &mut Vec<u8>) {
    use std::io::Write;
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        // Python prints an integral float as `12.0` (and -0.0 as `-0.0`).
        let sign = if v == 0.0 && v.is_sign_negative() {
            "-"
        } else {
            ""
        };
        let _ = write!(out, "{sign}{}.0", v as i64);
        return;
    }
    let start = out.len();
    let _ = write!(out, "{v:?}");
    if out[start..].contains(&b'e') || !v.is_finite() {
        // Exponent form (rare): Python spells the exponent with a sign and two digits.
        out.truncate(start);
        out.extend_from_slice(py_float(v).as_bytes());
    }
}

/// Python `"%g" % v`: six significant digits, trailing zeros removed.
pub(crate) fn py_g(v: f64) -> String {
    if !v.is_finite() {
        return py_float(v);
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{v:.5e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some(parts) => parts,
        None => return sci,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        strip_fraction_zeros(&format!("{v:.decimals$}"))
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!(
            "{}e{sign}{:02}",
            strip_fraction_zeros(mantissa),
            exp.unsigned_abs()
        )
    }
}

fn strip_fraction_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn py_float_into_writes_what_py_float_returns() {
        for v in [
            0.0,
            -0.0,
            1.0,
            -12.0,
            0.5,
            0.1,
            1e15,
            1e16,
            123456789012345.0,
            1.5e-5,
            2.5e300,
            -7.25,
            1e-4,
            99999999999999.9,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut out = b"x".to_vec();
            py_float_into(v, &mut out);
            assert_eq!(&out[1..], py_float(v).as_bytes(), "{v}");
        }
    }

    use super::*;

    #[test]
    fn python_repr() {
        assert_eq!(py_float(1.0), "1.0");
        assert_eq!(py_float(0.1), "0.1");
        assert_eq!(py_float(123.456), "123.456");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(1.5e-5), "1.5e-05");
        assert_eq!(py_float(-2.0), "-2.0");
    }

    #[test]
    fn python_g() {
        assert_eq!(py_g(2.0), "2");
        assert_eq!(py_g(0.5), "0.5");
        assert_eq!(py_g(0.1234567), "0.123457");
        assert_eq!(py_g(1234567.0), "1.23457e+06");
        assert_eq!(py_g(100000.0), "100000");
        assert_eq!(py_g(0.0001), "0.0001");
        assert_eq!(py_g(0.00001), "1e-05");
        assert_eq!(py_g(-3.5), "-3.5");
        assert_eq!(py_g(0.0), "0");
    }
}
