//! `GET /<counter>` (docs/interfaces.md §3.5): one counter's buckets over a range, as JSON
//! (jsoncpp FastWriter layout) or CSV.

use istatd_storage::numfmt::{iso8601, push_g, push_int, push_uint};
use istatd_storage::query::{QueryParams, QueryResult};

use super::{Handled, HttpException, Params};
use crate::http::backend::Backend;
use crate::http::response::{Response, JSON};
use crate::statline::munge;

/// `StatStore::openCounter` name handling: empty → none; a leading `*` is dropped (and
/// `*` alone is none); then munged.
pub fn counter_key(name: &[u8]) -> Option<String> {
    let n = name.strip_prefix(b"*").unwrap_or(name);
    if n.is_empty() {
        None
    } else {
        Some(munge(n))
    }
}

/// `boost::lexical_cast<intmax_t>`: an optional sign and decimal digits, in range.
pub(super) fn lexical_int(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"+").unwrap_or(s);
    let neg = digits.first() == Some(&b'-');
    let digits = if neg { &digits[1..] } else { digits };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || s.starts_with(b"+-") {
        return None;
    }
    let mut v: i128 = 0;
    for &d in digits {
        v = v * 10 + (d - b'0') as i128;
        if v > i64::MAX as i128 + 1 {
            return None;
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).ok()
}

fn int_param(params: &Params, name: &str, default: i64) -> Result<i64, HttpException> {
    match params.get(name.as_bytes()) {
        None => Ok(default),
        Some(v) => lexical_int(v).ok_or_else(|| {
            let mut m = format!("Bad integer argument {name}: ").into_bytes();
            m.extend_from_slice(v);
            HttpException(m)
        }),
    }
}

pub(super) async fn counter_data(cname: &[u8], params: &Params, backend: &dyn Backend) -> Handled {
    let mut start = int_param(params, "start", 0)?;
    let mut end = int_param(params, "end", 0)?;
    let samples = int_param(params, "samples", 1000)?;
    let format = params
        .get(&b"format"[..])
        .map_or(&b"json"[..], Vec::as_slice);
    let trailing = int_param(params, "trailing", 0)?;
    if start < 0 {
        return Err("Invalid start parameter".into());
    }
    if end < 0 {
        return Err("Invalid end parameter".into());
    }
    if samples < 0 {
        return Err("Invalid samples parameter".into());
    }
    if start == 0 && end == 0 {
        end = backend.now();
        start = end - 900;
    } else {
        if end != 0 && start == 0 {
            start = end - 900;
        }
        if end < start {
            if end != 0 {
                return Err("end must be greater than start!".into());
            }
            end = start.saturating_add(900);
        }
    }
    let not_found = || {
        let mut m = b"No such counter ".to_vec();
        m.extend_from_slice(cname);
        Ok(Response::error(404, m))
    };
    let Some(key) = counter_key(cname) else {
        return not_found();
    };
    let qp = QueryParams {
        start,
        end,
        max_samples: samples,
        trailing: trailing != 0,
    };
    let data = match backend.query(&key, qp).await {
        Ok(None) => return not_found(),
        Ok(Some(d)) => Ok(d),
        Err(e) => Err(e),
    };
    let csv = match format {
        b"json" => false,
        b"csv" => true,
        _ => return Err("unrecognized format. must be 'json' or 'csv'.".into()),
    };
    match data {
        // The reference catches a failing select with these prefixes (no space).
        Err(e) if csv => Ok(Response::error(400, format!("HTTP CSV exception:{e}"))),
        Err(e) => Ok(Response::error(400, format!("HTTP JSON exception:{e}"))),
        Ok(d) if csv => Ok(Response::new(200, "text/csv", render_csv(&d.result))),
        Ok(d) => Ok(Response::new(200, JSON, render_json(&d.result))),
    }
}

/// `%.17g` of a bucket value read back through `float`; **Port:** NaN is `null`.
fn push_g17(out: &mut String, v: f32) {
    if v.is_nan() {
        out.push_str("null");
    } else {
        push_g(out, v as f64, 17);
    }
}

/// jsoncpp FastWriter output of the GET result (§3.5.1): keys in byte order, `%.17g`
/// doubles, integers plain, times and range as `UInt64`, trailing LF.
pub fn render_json(r: &QueryResult) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::with_capacity(64 + r.buckets.len() * 220);
    s.push_str("{\"buckets\":[");
    for (i, b) in r.buckets.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"data\":{\"avg\":");
        push_g17(&mut s, b.avg());
        s.push_str(",\"count\":");
        push_int(&mut s, b.count.into());
        s.push_str(",\"max\":");
        push_g17(&mut s, b.max_f32());
        s.push_str(",\"min\":");
        push_g17(&mut s, b.min_f32());
        s.push_str(",\"sdev\":");
        push_g17(&mut s, b.sdev());
        s.push_str(",\"sum\":");
        push_g17(&mut s, b.sum_f32());
        s.push_str(",\"sumsq\":");
        push_g17(&mut s, b.sum_sq_f32());
        s.push_str("},\"time\":");
        push_uint(&mut s, b.time as u64);
        s.push('}');
    }
    let _ = writeln!(
        s,
        "],\"end\":{},\"interval\":{},\"start\":{}}}",
        r.end as u64, r.interval as u64, r.start as u64
    );
    s.into_bytes()
}

/// `%g` (C++ stream default) of a value read back through `float`.
pub(super) fn push_g6(out: &mut String, v: f32) {
    push_g(out, v as f64, 6);
}

/// §3.5.2: header line, then one CRLF line per bucket, numbers `%g`.
pub fn render_csv(r: &QueryResult) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::with_capacity(100 + r.buckets.len() * 90);
    s.push_str("ISO Time,Unix Timestamp,Sample Count,Minimum,Maximum,Sum,Sum Squared,Average,Standard Deviation\r\n");
    for b in &r.buckets {
        let _ = write!(s, "{},{},{},", iso8601(b.time), b.time, b.count);
        for (i, v) in [
            b.min_f32(),
            b.max_f32(),
            b.sum_f32(),
            b.sum_sq_f32(),
            b.avg(),
            b.sdev(),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                s.push(',');
            }
            push_g6(&mut s, v);
        }
        s.push_str("\r\n");
    }
    s.into_bytes()
}
