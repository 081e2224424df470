//! `POST /*` (docs/interfaces.md §3.6): several counters over one range in one request, the
//! request a JSON object, the answer `%g` numbers in a fixed key order.

use std::collections::HashMap;

use istatd_storage::format::Bucket;
use istatd_storage::numfmt::push_int;
use istatd_storage::query::{QueryParams, QueryResult};

use super::counter_data::{counter_key, push_g6};
use crate::http::backend::Backend;
use crate::http::json::{self, push_quoted, JValue};
use crate::http::response::{Response, JSON};

fn exception(msg: &str) -> Response {
    Response::error(400, format!("exception: {msg}"))
}

/// `%g` of a multi-get value; **Port:** NaN is `null` (§9 item 10).
fn push_g6_json(out: &mut String, v: f32) {
    if v.is_nan() {
        out.push_str("null");
    } else {
        push_g6(out, v);
    }
}

/// One bucket of the multi-get answer, `%g` numbers, fixed key order.
fn push_multiget_bucket(s: &mut String, b: &Bucket, compact: bool) {
    let vals = [
        b.min_f32(),
        b.max_f32(),
        b.sum_f32(),
        b.sum_sq_f32(),
        b.avg(),
        b.sdev(),
    ];
    if compact {
        s.push('[');
        push_int(s, b.time);
        s.push(',');
        push_int(s, b.count.into());
        for v in vals {
            s.push(',');
            push_g6_json(s, v);
        }
        s.push(']');
    } else {
        s.push_str("{\"time\":");
        push_int(s, b.time);
        s.push_str(",\"count\":");
        push_int(s, b.count.into());
        for (name, v) in ["min", "max", "sum", "sumsq", "avg", "sdev"]
            .iter()
            .zip(vals)
        {
            s.push_str(",\"");
            s.push_str(name);
            s.push_str("\":");
            push_g6_json(s, v);
        }
        s.push('}');
    }
}

pub(super) async fn multiget(body: &[u8], backend: &dyn Backend) -> Response {
    let root = match json::parse(body) {
        Ok(v) => v,
        Err(e) => return Response::error(400, e.to_string()),
    };
    if !root.is_object_or_null() {
        // Port (§9 item 8): the reference aborts on this assertion.
        return Response::error(400, "Body must be a JSON object");
    }
    let start = match root.get("start").as_int64() {
        Ok(v) => v,
        Err(m) => return exception(m),
    };
    let stop = match root.get("stop").as_int64() {
        Ok(v) => v,
        Err(m) => return exception(m),
    };
    let max_samples = match root.get("maxSamples").as_int() {
        Ok(v) => v,
        Err(m) => return exception(m),
    };
    if start < 0 {
        return Response::error(400, "Invalid 'start' parameter");
    }
    if stop < 0 {
        return Response::error(400, "Invalid 'stop' parameter");
    }
    if stop < start {
        return Response::error(400, "Start must be before stop");
    }
    // size_t in the reference: 0 → 100, negative wraps to "unlimited".
    let max_samples = match max_samples {
        0 => 100,
        n if n < 0 => 0,
        n => n as i64,
    };
    let JValue::Array(keys) = root.get("keys") else {
        return Response::error(400, "Missing 'key' array of keys");
    };
    let trailing = match root.get("trailing") {
        JValue::Int(v) => match JValue::Int(*v).as_int() {
            Ok(i) => i != 0,
            Err(m) => return exception(m),
        },
        _ => false,
    };
    let compact = root.get("compact").as_bool();
    let mut names = Vec::with_capacity(keys.len());
    for k in keys {
        match k.as_string() {
            Ok(n) => names.push(n),
            // Port (§9 item 8): the reference emits `{{"error":...}`.
            Err(m) => return exception(m),
        }
    }
    // Counters by key, in order of first mention; each mention's position is kept for
    // the "Not found." entries (one per mention, in request order, as the reference).
    let mut order: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut missing: Vec<usize> = Vec::new();
    for (pos, n) in names.iter().enumerate() {
        match counter_key(n) {
            None => missing.push(pos),
            Some(key) => match index.get(&key) {
                Some(&i) => order[i].1.push(pos),
                None => {
                    index.insert(key.clone(), order.len());
                    order.push((key, vec![pos]));
                }
            },
        }
    }
    let params = QueryParams {
        start,
        end: stop,
        max_samples,
        trailing,
    };
    // Found counters answer once, under the last name that mentions them.
    let mut found: Vec<(&[u8], QueryResult)> = Vec::with_capacity(order.len());
    for (key, mentions) in order {
        match backend.query(&key, params).await {
            Ok(Some(d)) => {
                let last = *mentions.last().expect("at least one mention");
                found.push((&names[last], d.result));
            }
            Ok(None) => missing.extend(mentions),
            Err(e) => return Response::error(500, format!("exception: {e}")),
        }
    }
    missing.sort_unstable();
    let missing = missing.into_iter().map(|i| &names[i]);
    let mut out = Vec::with_capacity(64 + found.len() * 512);
    out.push(b'{');
    let mut first = true;
    for name in missing {
        if !first {
            out.push(b',');
        }
        first = false;
        // Port (§9 item 11): names are JSON-escaped.
        push_quoted(&mut out, name);
        out.extend_from_slice(b":\"Not found.\"");
    }
    let mut s = String::new();
    for (name, r) in &found {
        if !first {
            out.push(b',');
        }
        first = false;
        push_quoted(&mut out, name);
        s.clear();
        use std::fmt::Write;
        let _ = write!(
            s,
            ":{{\"start\":{},\"end\":{},\"interval\":{},\"data\":[",
            r.start, r.end, r.interval
        );
        for (i, b) in r.buckets.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_multiget_bucket(&mut s, b, compact);
        }
        s.push_str("]}");
        out.extend_from_slice(s.as_bytes());
    }
    if let Some((_, r)) = found.last() {
        out.extend_from_slice(
            format!(
                ",\"start\":{},\"stop\":{},\"interval\":{}",
                r.start, r.end, r.interval
            )
            .as_bytes(),
        );
    }
    out.push(b'}');
    Response::new(200, JSON, out)
}
