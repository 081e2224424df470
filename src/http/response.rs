//! Response framing (docs/interfaces.md §3.2), `Accept-Encoding` negotiation and
//! compression (§3.3), HTTP dates. Reference: `HttpRequest::doReply`,
//! `AcceptEncodingHeader` in daemon/HttpServer.cpp, `RequestInFlight::complete` /
//! `chooseEncoding` in daemon/RequestInFlight.cpp, `http_date` in lib/strfunc.cpp.

use std::collections::BTreeMap;
use std::io::Write;

use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

use super::request::{trim, RawRequest};

/// The content type of nearly every response.
pub const JSON: &str = "application/json";

/// A response before framing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// Extra headers (`Cache-Control`, `Date`, `Etag`, `Expires`, `Modified`), written in
    /// byte order of their names after `Connection: close`.
    pub extra: BTreeMap<&'static str, String>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            body,
            extra: BTreeMap::new(),
        }
    }

    /// `{"error":"<msg>"}\n` with `application/json`.
    pub fn error(status: u16, msg: impl AsRef<[u8]>) -> Response {
        Response::new(status, JSON, super::json::error_body(msg.as_ref()))
    }
}

/// A content coding the server produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    /// A zlib stream (RFC 1950), as the reference's `zlib_compressor` writes.
    Deflate,
}

/// The reference's `AcceptEncodingHeader` rules (§3.3): split at `,`, weight
/// `int(atof(q) * 100)` (default 100), case-sensitive codings, `*` standing for the last
/// of `deflate`, `gzip` not named elsewhere, keep the highest weight (dropping weight 0),
/// prefer gzip over deflate.
pub fn negotiate(header: Option<&[u8]>, disallow: bool) -> Encoding {
    let h = match header {
        Some(h) if !disallow && !h.is_empty() => h,
        _ => return Encoding::Identity,
    };
    let mut items: Vec<(i32, Vec<u8>)> = Vec::new();
    for item in explode(h, b',') {
        let (coding, qvalue) = split(item, b';');
        let mut weight = 100;
        if !qvalue.is_empty() {
            let (_, q) = split(qvalue, b'=');
            weight = super::json::c_double_to_int(c_atof(trim(q)) * 100.0);
        }
        items.push((weight, trim(coding).to_vec()));
    }
    let seen: Vec<Vec<u8>> = items.iter().map(|(_, c)| c.clone()).collect();
    for (_, coding) in items.iter_mut() {
        if coding.as_slice() == b"*" {
            // The acceptable set is a std::set: "deflate" before "gzip".
            for enc in [&b"deflate"[..], &b"gzip"[..]] {
                if !seen.iter().any(|s| s.as_slice() == enc) {
                    *coding = enc.to_vec();
                }
            }
        }
    }
    let Some(top) = items.iter().map(|(w, _)| *w).max() else {
        return Encoding::Identity;
    };
    let best = |name: &[u8]| {
        items
            .iter()
            .any(|(w, c)| *w == top && *w != 0 && c.as_slice() == name)
    };
    if best(b"gzip") {
        Encoding::Gzip
    } else if best(b"deflate") {
        Encoding::Deflate
    } else {
        Encoding::Identity
    }
}

/// `istat::split`: at the first `ch`; no `ch` → (all, empty).
pub fn split(s: &[u8], ch: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|&c| c == ch) {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[]),
    }
}

/// `istat::explode`: pieces between `ch`, a trailing empty piece dropped.
fn explode(s: &[u8], ch: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (l, r) = split(rest, ch);
        out.push(l);
        rest = r;
    }
    out
}

/// C `atof`: leading white space, then the longest decimal (or `inf`/`nan`) prefix; 0
/// when there is none.
pub fn c_atof(s: &[u8]) -> f64 {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let s = &s[i..];
    let (neg, body) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower: Vec<u8> = body
        .iter()
        .take(3)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let v = if lower == b"inf" {
        f64::INFINITY
    } else if lower == b"nan" {
        f64::NAN
    } else {
        let end = body
            .iter()
            .position(|c| !(c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')))
            .unwrap_or(body.len());
        super::json::scan_double(&body[..end]).unwrap_or(0.0)
    };
    if neg {
        -v
    } else {
        v
    }
}

/// Whether the reference adds the CORS headers (§3.2): `OPTIONS` (any URL), `POST` to
/// `/*` (`/%2A`, `/%2a`), `GET` of `/files/...`.
pub fn wants_cors(req: &RawRequest) -> bool {
    let m = req.method.as_slice();
    let u = req.url.as_slice();
    m == b"OPTIONS"
        || (m == b"POST" && matches!(u, b"/*" | b"/%2A" | b"/%2a"))
        || (m == b"GET" && u.starts_with(b"/files/"))
}

/// The CORS origin: the `Referer` up to its third `/`, else `*`. **Port:** an origin
/// containing control bytes (a folded header line) is replaced by `*` instead of being
/// written into the response head.
pub fn cors_origin(req: &RawRequest) -> Vec<u8> {
    if let Some(r) = req.header("referer") {
        let mut n = 0;
        for (i, &c) in r.iter().enumerate() {
            if c == b'/' {
                n += 1;
                if n == 3 {
                    let o = &r[..i];
                    if o.iter().any(|&c| c < 0x20 || c == 0x7f) {
                        break;
                    }
                    return o.to_vec();
                }
            }
        }
    }
    b"*".to_vec()
}

/// Compress `body` with `enc` at level 1.
pub fn compress(body: &[u8], enc: Encoding) -> Vec<u8> {
    let out = Vec::with_capacity(body.len() / 2 + 64);
    match enc {
        Encoding::Identity => body.to_vec(),
        Encoding::Gzip => {
            let mut e = GzEncoder::new(out, Compression::new(1));
            e.write_all(body).expect("writing to a Vec");
            e.finish().expect("writing to a Vec")
        }
        Encoding::Deflate => {
            let mut e = ZlibEncoder::new(out, Compression::new(1));
            e.write_all(body).expect("writing to a Vec");
            e.finish().expect("writing to a Vec")
        }
    }
}

/// The exact response bytes (§3.2). `req` decides the CORS headers (`None`: a request
/// that could not be parsed, no CORS). `enc` is applied to a non-empty body (**Port:**
/// empty bodies stay empty, and a 204 never carries a body, §9 item 28).
pub fn render(req: Option<&RawRequest>, mut resp: Response, enc: Encoding) -> Vec<u8> {
    if resp.status == 204 {
        resp.body.clear();
    }
    if enc != Encoding::Identity && !resp.body.is_empty() {
        resp.body = compress(&resp.body, enc);
        resp.extra.insert(
            "Content-encoding",
            if enc == Encoding::Gzip {
                "gzip".into()
            } else {
                "deflate".into()
            },
        );
    }
    let mut out = Vec::with_capacity(resp.body.len() + 200);
    out.extend_from_slice(
        format!("HTTP/1.1 {} (that's a status code)\r\n", resp.status).as_bytes(),
    );
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(resp.content_type.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(req) = req {
        if wants_cors(req) {
            out.extend_from_slice(b"Access-Control-Allow-Origin: ");
            out.extend_from_slice(&cors_origin(req));
            out.extend_from_slice(b"\r\nAccess-Control-Allow-Credentials: true\r\n");
        }
    }
    if !resp.body.is_empty() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n");
    for (k, v) in &resp.extra {
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&resp.body);
    out
}

/// The status code of rendered response bytes.
pub fn status_of(resp: &[u8]) -> u16 {
    resp.get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// `strftime("%a, %d %b %Y %H:%M:%S GMT", gmtime(t))`.
pub fn http_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = istatd_storage::numfmt::civil_from_days(days);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days + 4).rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(h: &str) -> Encoding {
        negotiate(Some(h.as_bytes()), false)
    }

    #[test]
    fn accept_encoding_rules() {
        assert_eq!(neg("gzip,deflate"), Encoding::Gzip);
        assert_eq!(neg("deflate;q=0.5, gzip;q=0.4"), Encoding::Deflate);
        assert_eq!(neg("gzip;q=0"), Encoding::Identity);
        assert_eq!(neg("br, *;q=0.1"), Encoding::Identity);
        assert_eq!(neg("*"), Encoding::Gzip);
        assert_eq!(neg("gzip;q=0, *"), Encoding::Deflate);
        assert_eq!(neg("GZIP"), Encoding::Identity);
        assert_eq!(neg("x-gzip"), Encoding::Identity);
        assert_eq!(neg("gzipdeflate"), Encoding::Identity);
        assert_eq!(neg("deflate"), Encoding::Deflate);
        assert_eq!(neg(" gzip ; q=1 "), Encoding::Gzip);
        assert_eq!(neg("gzip;q=garbage"), Encoding::Identity);
        assert_eq!(neg("gzip;q=-1"), Encoding::Gzip);
        assert_eq!(neg(","), Encoding::Identity);
        assert_eq!(negotiate(Some(b""), false), Encoding::Identity);
        assert_eq!(negotiate(None, false), Encoding::Identity);
        assert_eq!(negotiate(Some(b"gzip"), true), Encoding::Identity);
    }

    #[test]
    fn dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(816411488), "Wed, 15 Nov 1995 04:58:08 GMT");
        assert_eq!(http_date(1600002700), "Sun, 13 Sep 2020 13:11:40 GMT");
    }

    #[test]
    fn framing() {
        let r = render(
            None,
            Response::new(204, JSON, b"x".to_vec()),
            Encoding::Gzip,
        );
        assert_eq!(
            r,
            b"HTTP/1.1 204 (that's a status code)\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(status_of(&r), 204);
    }
}
