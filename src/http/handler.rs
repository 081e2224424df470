//! Dispatch and every handler of the HTTP interface (interfaces.md §3.4–§3.11;
//! reference `RequestInFlight` in daemon/RequestInFlight.cpp, `KeyMatch` in
//! daemon/AllKeys.cpp).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use istatd_storage::format::Bucket;
use istatd_storage::numfmt::{iso8601, push_g};
use istatd_storage::query::{QueryParams, QueryResult};

use super::backend::{AgentInfo, Backend, CounterInfo};
use super::json::{self, push_quoted, JValue};
use super::request::{querystring, BodyLength, HeadError, RawRequest};
use super::response::{http_date, negotiate, render, split, Encoding, Response, JSON};
use super::settings::{is_valid_name, latin1};
use super::HttpConfig;
use crate::statline::munge;

/// Static files larger than this are refused with 500.
pub const MAX_STATIC_FILE: u64 = 1024 * 1024;

type Params = BTreeMap<Vec<u8>, Vec<u8>>;

/// A `std::runtime_error` thrown inside `RequestInFlight::go`: answered 400
/// `{"error":"HTTP exception: <msg>"}`.
struct HttpException(Vec<u8>);

impl<T: Into<Vec<u8>>> From<T> for HttpException {
    fn from(m: T) -> HttpException {
        HttpException(m.into())
    }
}

type Handled = Result<Response, HttpException>;

/// Answer one request: the exact response bytes (§3.2 framing, §3.3 compression).
///
/// Must run inside a glommio executor (static files and settings use its blocking pool).
/// `req.body` must hold the body the request announced (see [`body_wanted`]); a shorter
/// body is answered 400.
pub async fn handle(req: &RawRequest, cfg: &HttpConfig, backend: &dyn Backend) -> Vec<u8> {
    if cfg.prometheus_only || (req.method == b"GET" && req.url == b"/metrics") {
        return metrics(req, cfg, backend).await;
    }
    if !backend.has_store() {
        // Port: the reference sends this with an empty body (§3.4, §9 item 9).
        return render(
            Some(req),
            Response::error(503, "Store not initialized"),
            Encoding::Identity,
        );
    }
    let (path, query) = split(&req.url, b'?');
    if path.is_empty() {
        return render(
            Some(req),
            Response::error(400, "Malformed url"),
            Encoding::Identity,
        );
    }
    let enc = negotiate(req.header("accept-encoding"), cfg.disallow_compressed);
    let params = querystring(query);
    let resp = match req.method.as_slice() {
        b"GET" => do_get(req, &params, &path[1..], cfg, backend).await,
        b"POST" => do_post(req, &params, cfg, backend).await,
        b"OPTIONS" => Ok(Response::new(204, JSON, Vec::new())),
        _ => Ok(Response::error(405, "Bad method")),
    };
    let resp = resp.unwrap_or_else(|HttpException(msg)| {
        let mut m = b"HTTP exception: ".to_vec();
        m.extend_from_slice(&msg);
        Response::error(400, m)
    });
    render(Some(req), resp, enc)
}

/// `GET /metrics`: the Prometheus exporter on its own port (anything else there is 400
/// `Malformed url` or 405), or the daemon's internal counters on the main HTTP port.
async fn metrics(req: &RawRequest, cfg: &HttpConfig, backend: &dyn Backend) -> Vec<u8> {
    let enc = negotiate(req.header("accept-encoding"), cfg.disallow_compressed);
    let resp = if req.method != b"GET" {
        Response::error(405, "Bad method")
    } else if req.url != b"/metrics" {
        Response::error(400, "Malformed url")
    } else {
        match backend.metrics(cfg.prometheus_only).await {
            Some(text) => Response::new(200, crate::prom::CONTENT_TYPE, text.into_bytes()),
            None => Response::error(404, "Prometheus exporter is off"),
        }
    };
    render(Some(req), resp, enc)
}

/// The response to a head that cannot be parsed: 413 for a head over the limit, 400
/// `{"error":"Malformed request"}` otherwise (**Port:** the reference's 400 has an empty
/// body). No CORS headers, no compression.
pub fn head_error_response(e: HeadError) -> Vec<u8> {
    let resp = match e {
        HeadError::TooLarge => Response::error(413, "Request head too large"),
        HeadError::Malformed => Response::error(400, "Malformed request"),
    };
    render(None, resp, Encoding::Identity)
}

/// How many body bytes the connection should read after the head before calling
/// [`handle`]: the `Content-Length` of a POST the dispatch reads a body for (`/*` and
/// `?s=`), 0 otherwise (also when the length is missing, invalid or over the limit:
/// `handle` answers those).
pub fn body_wanted(req: &RawRequest, has_store: bool) -> usize {
    if !has_store || req.method != b"POST" {
        return 0;
    }
    let (path, query) = split(&req.url, b'?');
    if path.is_empty() {
        return 0;
    }
    if !is_multiget_url(&req.url) && !querystring(query).contains_key(&b"s"[..]) {
        return 0;
    }
    match req.body_length() {
        BodyLength::Len(n) => n,
        _ => 0,
    }
}

fn is_multiget_url(url: &[u8]) -> bool {
    matches!(url, b"/*" | b"/%2A" | b"/%2a")
}

/// The announced body, or the response that refuses it.
fn body_of(req: &RawRequest) -> Result<&[u8], Handled> {
    match req.body_length() {
        BodyLength::Missing => Err(Err("Can't read body without content-length".into())),
        BodyLength::Invalid => Err(Err("Bad Content-Length".into())),
        BodyLength::TooLarge => Err(Ok(Response::error(413, "Request body too large"))),
        BodyLength::Len(n) => match req.body.get(..n) {
            Some(b) => Ok(b),
            None => Err(Err("Incomplete request body".into())),
        },
    }
}

async fn do_get(
    req: &RawRequest,
    params: &Params,
    name: &[u8],
    cfg: &HttpConfig,
    backend: &dyn Backend,
) -> Handled {
    let url = req.url.as_slice();
    if url == b"/" {
        // Port: without a static index.html, the built-in page (super::page).
        let resp = serve_file(cfg, b"index.html").await;
        Ok(if resp.status == 404 {
            super::page::response()
        } else {
            resp
        })
    } else if let Some(rest) = url.strip_prefix(b"/files/") {
        Ok(serve_file(cfg, rest).await)
    } else if params.is_empty() && (url == b"favicon.ico" || url == b"/favicon.ico") {
        // Port (§9 item 13): the reference asks for ".files.favicon.ico" and always 404s.
        Ok(serve_file(cfg, b"favicon.ico").await)
    } else if params.contains_key(&b"f"[..]) {
        Ok(serve_file(cfg, url.get(4..).unwrap_or_default()).await)
    } else if params.contains_key(&b"a"[..]) {
        Ok(list_agents(backend).await)
    } else if let Some(q) = params.get(&b"q"[..]) {
        Ok(list_counters(q, backend).await)
    } else if let Some(s) = params.get(&b"s"[..]) {
        let key = params.get(&b"sk"[..]).map_or(&b"*"[..], Vec::as_slice);
        Ok(get_settings(cfg, s, key).await)
    } else {
        counter_data(name, params, backend).await
    }
}

async fn do_post(
    req: &RawRequest,
    params: &Params,
    cfg: &HttpConfig,
    backend: &dyn Backend,
) -> Handled {
    if is_multiget_url(&req.url) {
        let body = match body_of(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        Ok(multiget(body, backend).await)
    } else if let Some(s) = params.get(&b"s"[..]) {
        let body = match body_of(req) {
            Ok(b) => b,
            Err(r) => return r,
        };
        Ok(set_settings(cfg, s, body).await)
    } else {
        Ok(Response::error(404, "No such POST target"))
    }
}

// ---------------------------------------------------------------------------------------
// GET counter data (§3.5)
// ---------------------------------------------------------------------------------------

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
fn lexical_int(s: &[u8]) -> Option<i64> {
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

async fn counter_data(cname: &[u8], params: &Params, backend: &dyn Backend) -> Handled {
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
        let _ = write!(s, ",\"count\":{},\"max\":", b.count);
        push_g17(&mut s, b.max_f32());
        s.push_str(",\"min\":");
        push_g17(&mut s, b.min_f32());
        s.push_str(",\"sdev\":");
        push_g17(&mut s, b.sdev());
        s.push_str(",\"sum\":");
        push_g17(&mut s, b.sum_f32());
        s.push_str(",\"sumsq\":");
        push_g17(&mut s, b.sum_sq_f32());
        let _ = write!(s, "}},\"time\":{}}}", b.time as u64);
    }
    let _ = writeln!(
        s,
        "],\"end\":{},\"interval\":{},\"start\":{}}}",
        r.end as u64, r.interval as u64, r.start as u64
    );
    s.into_bytes()
}

/// `%g` (C++ stream default) of a value read back through `float`.
fn push_g6(out: &mut String, v: f32) {
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

// ---------------------------------------------------------------------------------------
// POST /* (§3.6)
// ---------------------------------------------------------------------------------------

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
    use std::fmt::Write;
    let vals = [
        b.min_f32(),
        b.max_f32(),
        b.sum_f32(),
        b.sum_sq_f32(),
        b.avg(),
        b.sdev(),
    ];
    if compact {
        let _ = write!(s, "[{},{}", b.time, b.count);
        for v in vals {
            s.push(',');
            push_g6_json(s, v);
        }
        s.push(']');
    } else {
        let _ = write!(s, "{{\"time\":{},\"count\":{}", b.time, b.count);
        for (name, v) in ["min", "max", "sum", "sumsq", "avg", "sdev"]
            .iter()
            .zip(vals)
        {
            let _ = write!(s, ",\"{name}\":");
            push_g6_json(s, v);
        }
        s.push('}');
    }
}

async fn multiget(body: &[u8], backend: &dyn Backend) -> Response {
    let root = match json::parse(body) {
        Ok(v) => v,
        Err(msg) => return Response::error(400, msg),
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

// ---------------------------------------------------------------------------------------
// Counter list (§3.7) and agent list (§3.9)
// ---------------------------------------------------------------------------------------

/// A pattern with every run of wildcards collapsed (`**`, `*?`, `?*` → `*`; `??` → `?`):
/// the same language (§3.8), and matching cost bounded by the name's length.
pub fn normalize_pattern(p: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'*' || p[i] == b'?' {
            let mut star = false;
            while i < p.len() && (p[i] == b'*' || p[i] == b'?') {
                star |= p[i] == b'*';
                i += 1;
            }
            out.push(if star { b'*' } else { b'?' });
        } else {
            out.push(p[i]);
            i += 1;
        }
    }
    out
}

/// `KeyMatch`: every key plus its dot-prefixes; (is_leaf, type) per name.
pub fn key_universe(counters: &[CounterInfo]) -> HashMap<String, (bool, u8)> {
    let mut m: HashMap<String, (bool, u8)> = HashMap::with_capacity(counters.len() * 2);
    for c in counters {
        if m.contains_key(&c.name) {
            continue;
        }
        m.insert(c.name.clone(), (true, if c.is_event { 1 } else { 0 }));
        let mut prev = c.name.as_str();
        while let Some(pos) = prev.rfind('.') {
            prev = &prev[..pos];
            match m.get_mut(prev) {
                None => {
                    m.insert(prev.to_string(), (false, 2));
                }
                Some(e) => {
                    *e = (false, 2);
                    break;
                }
            }
        }
    }
    m
}

async fn list_counters(pattern: &[u8], backend: &dyn Backend) -> Response {
    let counters = backend.counters().await;
    let universe = key_universe(&counters);
    let pat = latin1(&normalize_pattern(pattern));
    let mut names: Vec<(&String, &(bool, u8))> = Vec::new();
    for (i, e) in universe.iter().enumerate() {
        if i % 4096 == 4095 {
            glommio::yield_if_needed().await;
        }
        if crate::admin::pattern_match(&pat, &latin1(e.0.as_bytes())) {
            names.push(e);
        }
    }
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(120 + names.len() * 48);
    out.extend_from_slice(
        b"{\"type_mapping\":{\"0\":\"gauge\",\"1\":\"counter\",\"2\":\"aggregate\"},\"pattern\":",
    );
    // Port (§9 item 11): JSON escaping instead of js_quote.
    push_quoted(&mut out, pattern);
    out.extend_from_slice(b",\"matching_names\":[");
    for (i, (name, (leaf, ty))) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(if *leaf {
            b"{\"is_leaf\":true,\"type\":"
        } else {
            b"{\"is_leaf\":false,\"type\":"
        });
        out.push(b'0' + ty);
        out.extend_from_slice(b",\"name\":");
        push_quoted(&mut out, name.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Response::new(200, JSON, out)
}

/// One agent record: meta keys (with `_peer`, and `blacklisted` when set), then
/// `_online`, `_connected`, `_idle`.
pub fn push_agent(out: &mut Vec<u8>, a: &AgentInfo, now: i64) {
    let mut keys: BTreeMap<&[u8], &[u8]> = BTreeMap::new();
    keys.insert(b"_peer", a.peer.as_bytes());
    for (k, v) in &a.keys {
        keys.insert(k.as_bytes(), v.as_bytes());
    }
    if a.blacklisted {
        keys.insert(b"blacklisted", b"true");
    }
    out.push(b'{');
    for (k, v) in keys {
        push_quoted(out, k);
        out.push(b':');
        push_quoted(out, v);
        out.push(b',');
    }
    let connected = a.connected;
    out.extend_from_slice(
        format!(
            "\"_online\":{},\"_connected\":\"{}\",\"_idle\":{}}}",
            a.online,
            iso8601(connected),
            now - a.last_seen
        )
        .as_bytes(),
    );
}

async fn list_agents(backend: &dyn Backend) -> Response {
    let agents = backend.agents().await;
    let now = backend.now();
    let mut out = format!("{{\"count\":{},\"agents\":[", agents.len()).into_bytes();
    for (i, a) in agents.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_agent(&mut out, a, now);
    }
    out.extend_from_slice(b"]}");
    Response::new(200, JSON, out)
}

// ---------------------------------------------------------------------------------------
// Static files (§3.10)
// ---------------------------------------------------------------------------------------

/// `istat::static_file_type`: the first of these substrings found anywhere in the name.
pub fn static_file_type(name: &[u8]) -> &'static str {
    const TYPES: [(&[u8], &str); 8] = [
        (b".htm", "text/html; charset=utf-8"),
        (b".css", "text/css; charset=utf-8"),
        (b".js", "application/javascript; charset=utf-8"),
        (b".jpg", "image/jpeg"),
        (b".png", "image/png"),
        (b".gif", "image/gif"),
        (b".xml", "text/xml; charset=utf-8"),
        (b".ico", "image/x-icon"),
    ];
    for (pat, ty) in TYPES {
        if name.windows(pat.len()).any(|w| w == pat) {
            return ty;
        }
    }
    "application/octet-stream"
}

enum FileRead {
    /// stat failed, or not a regular file.
    Missing,
    /// Could not be opened / read (mtime, size).
    Unreadable(i64, u64),
    TooLarge(i64, u64),
    Ok(i64, u64, Vec<u8>),
}

fn read_static(path: PathBuf) -> FileRead {
    use std::io::Read;
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        // Port: a directory (e.g. `..`) is not served.
        _ => return FileRead::Missing,
    };
    let (mtime, size) = (meta.mtime(), meta.size());
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return FileRead::Unreadable(mtime, size),
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(size);
    if len > MAX_STATIC_FILE {
        return FileRead::TooLarge(mtime, size);
    }
    let mut data = Vec::with_capacity(len as usize);
    match (&mut f).take(MAX_STATIC_FILE + 1).read_to_end(&mut data) {
        Ok(_) if data.len() as u64 > MAX_STATIC_FILE => FileRead::TooLarge(mtime, size),
        Ok(_) => FileRead::Ok(mtime, size, data),
        Err(_) => FileRead::Unreadable(mtime, size),
    }
}

fn real_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `RequestInFlight::serveFile`: `/` in the name becomes `.` (so no directory is ever
/// named), the file is read from the files directory.
async fn serve_file(cfg: &HttpConfig, name: &[u8]) -> Response {
    let x: Vec<u8> = name
        .iter()
        .map(|&c| if c == b'/' { b'.' } else { c })
        .collect();
    let ctype = static_file_type(name);
    let path = cfg.files_dir.join(OsStr::from_bytes(&x));
    let read = if x.is_empty() || x.contains(&0) {
        FileRead::Missing
    } else {
        glommio::executor()
            .spawn_blocking(move || read_static(path))
            .await
    };
    let (mtime, size) = match &read {
        FileRead::Missing => return Response::new(404, JSON, Vec::new()),
        FileRead::Unreadable(m, s) | FileRead::TooLarge(m, s) | FileRead::Ok(m, s, _) => (*m, *s),
    };
    let now = real_now();
    let mut extra = BTreeMap::new();
    extra.insert("Etag", format!("{mtime}_{size}"));
    extra.insert("Date", http_date(now));
    extra.insert("Modified", http_date(mtime));
    let (expires, cache_all) = if mtime >= now - 3600 {
        (now, false)
    } else if mtime >= now - 24 * 3600 {
        (now + 60, false)
    } else {
        (now + 3600, true)
    };
    if cache_all || x.ends_with(b".png") || x.ends_with(b".min.js") {
        extra.insert("Cache-Control", "public; max-age=3600".to_string());
        extra.insert("Expires", http_date(expires));
    }
    let mut resp = match read {
        FileRead::Ok(_, _, data) => Response::new(200, ctype, data),
        FileRead::TooLarge(..) => Response::new(500, JSON, Vec::new()),
        _ => Response::new(404, JSON, Vec::new()),
    };
    resp.extra = extra;
    resp
}

// ---------------------------------------------------------------------------------------
// Settings (§3.11)
// ---------------------------------------------------------------------------------------

async fn get_settings(cfg: &HttpConfig, name: &[u8], pattern: &[u8]) -> Response {
    if !is_valid_name(name) {
        return Response::error(400, "invalid settings name");
    }
    let name = String::from_utf8_lossy(name);
    if !cfg.settings.open(&name, false).await {
        return Response::error(404, "no such settings");
    }
    let Some(values) = cfg.settings.matching(&name, &normalize_pattern(pattern)) else {
        return Response::error(404, "no such settings");
    };
    if values.is_empty() {
        return Response::new(404, JSON, b"null\n".to_vec());
    }
    let mut out = vec![b'{'];
    for (i, (k, v)) in values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_quoted(&mut out, k);
        out.push(b':');
        push_quoted(&mut out, v);
    }
    out.extend_from_slice(b"}\n");
    Response::new(200, JSON, out)
}

/// `json_string` (daemon/RequestInFlight.cpp): a scalar as settings text.
fn setting_text(v: &JValue) -> Vec<u8> {
    match v {
        JValue::Bool(b) => if *b { "true" } else { "false" }.into(),
        JValue::Int(i) => i.to_string().into_bytes(),
        JValue::UInt(u) => u.to_string().into_bytes(),
        JValue::Real(r) => istatd_storage::numfmt::g17(*r).into_bytes(),
        JValue::Str(s) => s.clone(),
        _ => Vec::new(),
    }
}

async fn set_settings(cfg: &HttpConfig, name: &[u8], body: &[u8]) -> Response {
    if !is_valid_name(name) {
        return Response::error(400, "invalid settings name");
    }
    let root = match json::parse(body) {
        Ok(v) => v,
        Err(msg) => return Response::error(400, msg),
    };
    if !root.is_object_or_null() {
        return Response::error(400, "JSON settings must be key/value object");
    }
    let name = String::from_utf8_lossy(name);
    if !cfg.settings.open(&name, true).await {
        return Response::error(404, "no such settings");
    }
    if let JValue::Object(members) = &root {
        for (k, v) in members {
            // jsoncpp's isArray()/isObject() are true for null too.
            if matches!(v, JValue::Array(_) | JValue::Object(_) | JValue::Null) {
                let mut m = b"JSON setting values cannot be compound (found ".to_vec();
                m.extend_from_slice(k);
                m.push(b')');
                return Response::error(400, m);
            }
            if !cfg.settings.set(&name, k, &setting_text(v)) {
                return Response::error(404, "no such settings");
            }
        }
    }
    Response::new(200, JSON, b"{\"success\":true}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_ints() {
        assert_eq!(lexical_int(b"12"), Some(12));
        assert_eq!(lexical_int(b"+12"), Some(12));
        assert_eq!(lexical_int(b"-12"), Some(-12));
        assert_eq!(lexical_int(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(lexical_int(b"9223372036854775808"), None);
        assert_eq!(lexical_int(b""), None);
        assert_eq!(lexical_int(b"-"), None);
        assert_eq!(lexical_int(b"+-1"), None);
        assert_eq!(lexical_int(b" 1"), None);
        assert_eq!(lexical_int(b"1x"), None);
    }

    #[test]
    fn universe_and_patterns() {
        let c = |n: &str, e| CounterInfo {
            name: n.into(),
            is_event: e,
        };
        let u = key_universe(&[c("web", false), c("web.latency.a", true), c("x", true)]);
        assert_eq!(u["web"], (false, 2));
        assert_eq!(u["web.latency"], (false, 2));
        assert_eq!(u["web.latency.a"], (true, 1));
        assert_eq!(u["x"], (true, 1));
        assert_eq!(u.len(), 4);
        assert_eq!(normalize_pattern(b"a**?b??c?*"), b"a*b?c*");
    }

    #[test]
    fn file_types() {
        assert_eq!(
            static_file_type(b"x.json"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(static_file_type(b"index.html"), "text/html; charset=utf-8");
        assert_eq!(
            static_file_type(b"a.min.js"),
            "application/javascript; charset=utf-8"
        );
        assert_eq!(static_file_type(b"favicon.ico"), "image/x-icon");
        assert_eq!(static_file_type(b"data.bin"), "application/octet-stream");
    }
}
