//! Request heads as the reference reads them (docs/interfaces.md §3.1;
//! `HttpRequest::on_header`, `parseMethod`, `parseHeader` in daemon/HttpServer.cpp) plus
//! the port's limits.
//!
//! The head ends at the first `\r\n\r\n`. Lines end at a CR LF **not followed by a
//! space** (a line starting with a space continues the previous one, CR LF included).
//! The first line is the request line: method = text before the first space, the rest
//! trimmed, URL = text up to the next space, version = the remainder (never checked).
//! Every other line is a header: name = text before the first `:`, munged (§2.5) and
//! lower-cased; value = the rest, trimmed; a repeated name appends its value with no
//! separator. No byte is rejected: the reference checks neither tokens nor the version,
//! which is why this is not an RFC parser such as `httparse`.
//!
//! Malformed heads: with a single line the reference parses that line as a header and
//! answers 400 (**Port:** with the JSON body `{"error":"Malformed request"}`); a request
//! line without a version is flagged ([`RawRequest::no_version`]) but, as in the
//! reference, still served.

use std::collections::BTreeMap;

use crate::statline::munge_byte;

/// **Port:** the longest head accepted (the reference has no limit).
pub const MAX_HEAD: usize = 64 * 1024;
/// **Port:** the longest POST body accepted (the reference has no limit).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request. Everything is bytes: nothing in a request is decoded as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub method: Vec<u8>,
    /// The URL as sent (never URL-decoded).
    pub url: Vec<u8>,
    /// The request line after the URL (never checked).
    pub version: Vec<u8>,
    /// Munged, lower-cased names → trimmed values (repeats concatenated).
    pub headers: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The body (filled by the connection driver for requests that read one).
    pub body: Vec<u8>,
    /// The request line had no version: the reference counts it as a malformed request
    /// (`istatd.http.errors.server`) and still serves it.
    pub no_version: bool,
}

/// Why a head cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// No `\r\n\r\n` within [`MAX_HEAD`] bytes: 413.
    TooLarge,
    /// No request line distinct from the end of the head: 400.
    Malformed,
}

/// What the `Content-Length` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    Missing,
    /// Not a decimal number.
    Invalid,
    /// More than [`MAX_BODY`].
    TooLarge,
    Len(usize),
}

impl RawRequest {
    /// A header by name (munged and lower-cased like the stored names).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        let key: Vec<u8> = name.bytes().map(munge_byte).collect();
        self.headers.get(&key).map(Vec::as_slice)
    }

    /// The `Content-Length` header (`lexical_cast<size_t>` accepts an optional `+`).
    pub fn body_length(&self) -> BodyLength {
        let Some(v) = self.header("content-length") else {
            return BodyLength::Missing;
        };
        let digits = v.strip_prefix(b"+").unwrap_or(v);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return BodyLength::Invalid;
        }
        let mut n: usize = 0;
        for &d in digits {
            n = n.saturating_mul(10).saturating_add((d - b'0') as usize);
            if n > MAX_BODY {
                return BodyLength::TooLarge;
            }
        }
        BodyLength::Len(n)
    }

    /// The URL up to the first `?` (empty when there is none before it).
    pub fn path(&self) -> &[u8] {
        split(&self.url, b'?').0
    }
}

/// `istat::split` on bytes: at the first `ch`; no `ch` → (all, empty).
fn split(s: &[u8], ch: u8) -> (&[u8], &[u8]) {
    match s.iter().position(|&c| c == ch) {
        Some(p) => (&s[..p], &s[p + 1..]),
        None => (s, &[]),
    }
}

/// C `isspace` in the C locale.
pub fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `istat::trim`: C white space off both ends.
pub fn trim(s: &[u8]) -> &[u8] {
    let mut a = 0;
    let mut b = s.len();
    while b > 0 && is_c_space(s[b - 1]) {
        b -= 1;
    }
    while a < b && is_c_space(s[a]) {
        a += 1;
    }
    &s[a..b]
}

/// The length of the head (through its `\r\n\r\n`), searching from `from` (pass the
/// previous buffer length minus 3 to rescan only new bytes).
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| from + p + 4)
}

/// Parse a request head from the start of `buf`. `Ok(None)`: incomplete, read more.
/// `Ok(Some((req, n)))`: the head is `buf[..n]`; body bytes (if any) follow it.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RawRequest, usize)>, HeadError> {
    let Some(len) = find_head_end(buf, 0) else {
        return if buf.len() > MAX_HEAD {
            Err(HeadError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    parse_complete_head(&buf[..len]).map(|r| Some((r, len)))
}

/// Parse a head that ends with its first `\r\n\r\n`.
fn parse_complete_head(head: &[u8]) -> Result<RawRequest, HeadError> {
    // `e`: the CR of the terminating CR LF CR LF. The reference's scan starts at
    // offset 3, so a terminator closer to the start is never seen (it hangs there).
    let e = head.len() - 4;
    if e < 2 {
        return Err(HeadError::Malformed);
    }
    let mut req = RawRequest::default();
    let mut first = true;
    let mut b = 0;
    for p in 3..=e + 1 {
        if head[p] == b'\n' && head[p - 1] == b'\r' && head[p + 1] != b' ' {
            let line = &head[b..p - 1];
            if p == e + 1 {
                // The final line is always parsed as a header, even when it is the
                // only line.
                if first {
                    return Err(HeadError::Malformed);
                }
                parse_header(&mut req, line);
                break;
            } else if first {
                parse_method(&mut req, line);
                first = false;
            } else {
                parse_header(&mut req, line);
            }
            b = p + 1;
        }
    }
    req.no_version = req.version.is_empty();
    Ok(req)
}

fn parse_method(req: &mut RawRequest, line: &[u8]) {
    let (method, rest) = split(line, b' ');
    let (url, version) = split(trim(rest), b' ');
    req.method = method.to_vec();
    req.url = url.to_vec();
    req.version = version.to_vec();
}

fn parse_header(req: &mut RawRequest, line: &[u8]) {
    let (name, value) = split(line, b':');
    let name: Vec<u8> = name.iter().map(|&c| munge_byte(c)).collect();
    req.headers
        .entry(name)
        .or_default()
        .extend_from_slice(trim(value));
}

/// `istat::urldecode`: `+` → space, `%XX` → byte, where a non-hex digit counts as 15 and
/// a `%` cut off by the end of the text becomes `%` (eating the one digit before the
/// end, as the reference does). Never fails.
pub fn urldecode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let mut ch: u8 = 0;
                let mut cut = false;
                for _ in 0..2 {
                    i += 1;
                    if i >= s.len() {
                        cut = true;
                        break;
                    }
                    let d = match s[i].to_ascii_lowercase() {
                        c @ b'0'..=b'9' => c - b'0',
                        c @ b'a'..=b'f' => c - b'a' + 10,
                        _ => 15,
                    };
                    ch = (ch << 4) | d;
                }
                out.push(if cut { b'%' } else { ch });
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// `istat::querystring`: pieces between `&`; a piece with `=` is split at its first `=`
/// and both sides URL-decoded; pieces without `=` are ignored; a later key wins.
pub fn querystring(q: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut rest = q;
    while !rest.is_empty() {
        let (piece, r) = split(rest, b'&');
        rest = r;
        if let Some(p) = piece.iter().position(|&c| c == b'=') {
            out.insert(urldecode(&piece[..p]), urldecode(&piece[p + 1..]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RawRequest {
        parse_head(s.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn request_line_and_headers() {
        let r = parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nAccept-Encoding: deflate\r\nX/Y: \t v \r\n\r\nBODY");
        assert_eq!(r.method, b"GET");
        assert_eq!(r.url, b"/a?b=c");
        assert_eq!(r.version, b"HTTP/1.1");
        assert_eq!(r.header("accept-encoding"), Some(&b"gzipdeflate"[..]));
        assert_eq!(r.header("Host"), Some(&b"x"[..]));
        assert_eq!(r.header("x/y"), Some(&b"v"[..]));
        assert!(!r.no_version);
        let (_, n) = parse_head(b"GET / HTTP/1.1\r\nA: b\r\n\r\nxyz")
            .unwrap()
            .unwrap();
        assert_eq!(n, 24);
    }

    #[test]
    fn continuation_lines_and_odd_request_lines() {
        let r = parse("GET  /x  HTTP/1.0 extra\r\nA: 1\r\n 2\r\n\r\n");
        assert_eq!(r.url, b"/x");
        assert_eq!(r.version, b" HTTP/1.0 extra");
        assert_eq!(r.header("a"), Some(&b"1\r\n 2"[..]));
        let r = parse("GET /x\r\nA: 1\r\n\r\n");
        assert!(r.no_version);
        assert_eq!(r.url, b"/x");
    }

    #[test]
    fn malformed_and_incomplete() {
        assert_eq!(
            parse_head(b"GET / HTTP/1.0\r\n\r\n"),
            Err(HeadError::Malformed)
        );
        assert_eq!(parse_head(b"\r\n\r\n"), Err(HeadError::Malformed));
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(parse_head(b"GET / HTTP/1.1\nA: b\n\n"), Ok(None));
        let big = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse_head(&big), Err(HeadError::TooLarge));
    }

    #[test]
    fn url_decoding() {
        assert_eq!(urldecode(b"a+b%20c%2a"), b"a b c*");
        assert_eq!(urldecode(b"%zz"), [0xff]);
        assert_eq!(urldecode(b"%4"), b"%");
        assert_eq!(urldecode(b"%"), b"%");
        assert_eq!(urldecode(b"x%4"), b"x%");
        let q = querystring(b"a=1&b&=2&a=3&c=%3F&&d=");
        assert_eq!(q.get(&b"a"[..]), Some(&b"3".to_vec()));
        assert_eq!(q.get(&b""[..]), Some(&b"2".to_vec()));
        assert_eq!(q.get(&b"c"[..]), Some(&b"?".to_vec()));
        assert_eq!(q.get(&b"d"[..]), Some(&Vec::new()));
        assert!(!q.contains_key(&b"b"[..]));
    }

    #[test]
    fn content_length() {
        let mut r = RawRequest::default();
        assert_eq!(r.body_length(), BodyLength::Missing);
        r.headers
            .insert(b"content-length".to_vec(), b"+12".to_vec());
        assert_eq!(r.body_length(), BodyLength::Len(12));
        r.headers.insert(b"content-length".to_vec(), b"-1".to_vec());
        assert_eq!(r.body_length(), BodyLength::Invalid);
        r.headers.insert(
            b"content-length".to_vec(),
            b"99999999999999999999999".to_vec(),
        );
        assert_eq!(r.body_length(), BodyLength::TooLarge);
    }
}
