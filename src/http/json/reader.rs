//! The reader: a port of jsoncpp's `Reader` with default `Features::all()` (see the
//! parent module for what it accepts), plus [`scan_double`], its `sscanf("%lf")`.

use std::collections::BTreeMap;
use std::fmt;

use super::{JValue, MAX_DEPTH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    ObjectBegin,
    ObjectEnd,
    ArrayBegin,
    ArrayEnd,
    Str,
    Number,
    True,
    False,
    Null,
    ArraySeparator,
    MemberSeparator,
    Comment,
    EndOfStream,
    Error,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Tok,
    start: usize,
    end: usize,
}

/// The first error: message, token start, optional "see" location.
struct ParseError {
    message: String,
    at: usize,
    extra: Option<usize>,
}

struct Reader<'a> {
    doc: &'a [u8],
    cur: usize,
    error: Option<ParseError>,
}

/// A request body the reader refused: the first error, as jsoncpp reports it. Its
/// text is `getFormattedErrorMessages()`, which the HTTP answers carry
/// (docs/interfaces.md §3.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// `Line L, Column C` of the token in error.
    pub location: String,
    /// What is wrong, as jsoncpp words it.
    pub message: String,
    /// `Line L, Column C` of the character in error inside a string token, if any.
    pub detail: Option<String>,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "* {}\n  {}\n", self.location, self.message)?;
        if let Some(detail) = &self.detail {
            writeln!(f, "See {detail} for detail.")?;
        }
        Ok(())
    }
}

impl std::error::Error for JsonError {}

/// Parse a request body as jsoncpp's `Reader::parse(begin, end, root, false)` does.
pub fn parse(doc: &[u8]) -> Result<JValue, JsonError> {
    let mut r = Reader {
        doc,
        cur: 0,
        error: None,
    };
    match r.read_value(0) {
        Some(v) => Ok(v),
        None => {
            let e = r.error.take().unwrap_or(ParseError {
                message: "Syntax error".into(),
                at: 0,
                extra: None,
            });
            Err(JsonError {
                location: r.location(e.at),
                message: e.message,
                detail: e.extra.map(|x| r.location(x)),
            })
        }
    }
}

impl Reader<'_> {
    fn peek(&self) -> u8 {
        self.doc.get(self.cur).copied().unwrap_or(0)
    }

    fn next_char(&mut self) -> u8 {
        match self.doc.get(self.cur) {
            Some(&c) => {
                self.cur += 1;
                c
            }
            None => 0,
        }
    }

    fn fail<T>(
        &mut self,
        message: impl Into<String>,
        at: usize,
        extra: Option<usize>,
    ) -> Option<T> {
        if self.error.is_none() {
            self.error = Some(ParseError {
                message: message.into(),
                at,
                extra,
            });
        }
        None
    }

    fn skip_spaces(&mut self) {
        while let Some(&c) = self.doc.get(self.cur) {
            if matches!(c, b' ' | b'\t' | b'\r' | b'\n') {
                self.cur += 1;
            } else {
                break;
            }
        }
    }

    fn read_token(&mut self) -> Token {
        self.skip_spaces();
        let start = self.cur;
        let c = self.next_char();
        let mut ok = true;
        let kind = match c {
            b'{' => Tok::ObjectBegin,
            b'}' => Tok::ObjectEnd,
            b'[' => Tok::ArrayBegin,
            b']' => Tok::ArrayEnd,
            b'"' => {
                ok = self.read_string();
                Tok::Str
            }
            b'/' => {
                ok = self.read_comment();
                Tok::Comment
            }
            b'0'..=b'9' | b'-' => {
                while let Some(&d) = self.doc.get(self.cur) {
                    if d.is_ascii_digit() || matches!(d, b'.' | b'e' | b'E' | b'+' | b'-') {
                        self.cur += 1;
                    } else {
                        break;
                    }
                }
                Tok::Number
            }
            b't' => {
                ok = self.matches(b"rue");
                Tok::True
            }
            b'f' => {
                ok = self.matches(b"alse");
                Tok::False
            }
            b'n' => {
                ok = self.matches(b"ull");
                Tok::Null
            }
            b',' => Tok::ArraySeparator,
            b':' => Tok::MemberSeparator,
            0 => Tok::EndOfStream,
            _ => {
                ok = false;
                Tok::Error
            }
        };
        Token {
            kind: if ok { kind } else { Tok::Error },
            start,
            end: self.cur,
        }
    }

    fn matches(&mut self, pat: &[u8]) -> bool {
        if self.doc.len() - self.cur < pat.len() {
            return false;
        }
        if &self.doc[self.cur..self.cur + pat.len()] != pat {
            return false;
        }
        self.cur += pat.len();
        true
    }

    fn read_comment(&mut self) -> bool {
        match self.next_char() {
            b'*' => {
                while self.cur < self.doc.len() {
                    let c = self.next_char();
                    if c == b'*' && self.peek() == b'/' {
                        break;
                    }
                }
                self.next_char() == b'/'
            }
            b'/' => {
                while self.cur < self.doc.len() {
                    let c = self.next_char();
                    if c == b'\r' || c == b'\n' {
                        break;
                    }
                }
                true
            }
            _ => false,
        }
    }

    fn read_string(&mut self) -> bool {
        let mut c = 0;
        while self.cur < self.doc.len() {
            c = self.next_char();
            if c == b'\\' {
                self.next_char();
            } else if c == b'"' {
                break;
            }
        }
        c == b'"'
    }

    /// `skipCommentTokens`: the next token that is not a comment.
    fn read_token_skip_comments(&mut self) -> Token {
        loop {
            let t = self.read_token();
            if t.kind != Tok::Comment {
                return t;
            }
        }
    }

    fn read_value(&mut self, depth: usize) -> Option<JValue> {
        let token = self.read_token_skip_comments();
        if depth >= MAX_DEPTH {
            return self.fail("Exceeded stackLimit in readValue().", token.start, None);
        }
        match token.kind {
            Tok::ObjectBegin => self.read_object(depth),
            Tok::ArrayBegin => self.read_array(depth),
            Tok::Number => self.decode_number(token),
            Tok::Str => self.decode_string(token).map(JValue::Str),
            Tok::True => Some(JValue::Bool(true)),
            Tok::False => Some(JValue::Bool(false)),
            Tok::Null => Some(JValue::Null),
            _ => self.fail(
                "Syntax error: value, object or array expected.",
                token.start,
                None,
            ),
        }
    }

    fn read_object(&mut self, depth: usize) -> Option<JValue> {
        let mut map = BTreeMap::new();
        // jsoncpp tests the *previous* member's name for the empty-object case.
        let mut name: Vec<u8> = Vec::new();
        let token_name = loop {
            let mut token_name = self.read_token();
            while token_name.kind == Tok::Comment {
                token_name = self.read_token();
            }
            if token_name.kind == Tok::ObjectEnd && name.is_empty() {
                return Some(JValue::Object(map));
            }
            if token_name.kind != Tok::Str {
                break token_name;
            }
            name = self.decode_string(token_name)?;
            let colon = self.read_token();
            if colon.kind != Tok::MemberSeparator {
                return self.fail("Missing ':' after object member name", colon.start, None);
            }
            let value = self.read_value(depth + 1)?;
            map.insert(name.clone(), value);
            let mut comma = self.read_token();
            if !matches!(
                comma.kind,
                Tok::ObjectEnd | Tok::ArraySeparator | Tok::Comment
            ) {
                return self.fail(
                    "Missing ',' or '}' in object declaration",
                    comma.start,
                    None,
                );
            }
            while comma.kind == Tok::Comment {
                comma = self.read_token();
            }
            if comma.kind == Tok::ObjectEnd {
                return Some(JValue::Object(map));
            }
        };
        self.fail("Missing '}' or object member name", token_name.start, None)
    }

    fn read_array(&mut self, depth: usize) -> Option<JValue> {
        let mut items = Vec::new();
        self.skip_spaces();
        if self.peek() == b']' {
            self.read_token();
            return Some(JValue::Array(items));
        }
        loop {
            items.push(self.read_value(depth + 1)?);
            let mut token = self.read_token();
            while token.kind == Tok::Comment {
                token = self.read_token();
            }
            if token.kind != Tok::ArraySeparator && token.kind != Tok::ArrayEnd {
                return self.fail("Missing ',' or ']' in array declaration", token.start, None);
            }
            if token.kind == Tok::ArrayEnd {
                return Some(JValue::Array(items));
            }
        }
    }

    fn decode_number(&mut self, token: Token) -> Option<JValue> {
        let text = &self.doc[token.start..token.end];
        let is_double = text
            .iter()
            .enumerate()
            .any(|(i, &c)| matches!(c, b'.' | b'e' | b'E' | b'+') || (c == b'-' && i != 0));
        if is_double {
            return self.decode_double(token);
        }
        let negative = text.first() == Some(&b'-');
        let digits = if negative { &text[1..] } else { text };
        let max: u64 = if negative {
            i64::MIN.unsigned_abs()
        } else {
            u64::MAX
        };
        let threshold = max / 10;
        let last_digit = max % 10;
        let mut value: u64 = 0;
        for (i, &c) in digits.iter().enumerate() {
            if !c.is_ascii_digit() {
                let msg = format!("'{}' is not a number.", String::from_utf8_lossy(text));
                return self.fail(msg, token.start, None);
            }
            let d = (c - b'0') as u64;
            if value >= threshold && (i + 1 != digits.len() || d > last_digit) {
                return self.decode_double(token);
            }
            value = value * 10 + d;
        }
        Some(if negative {
            JValue::Int((value as i64).wrapping_neg())
        } else if value <= i32::MAX as u64 {
            JValue::Int(value as i64)
        } else {
            JValue::UInt(value)
        })
    }

    fn decode_double(&mut self, token: Token) -> Option<JValue> {
        let text = &self.doc[token.start..token.end];
        match scan_double(text) {
            Some(v) => Some(JValue::Real(v)),
            None => {
                let msg = format!("'{}' is not a number.", String::from_utf8_lossy(text));
                self.fail(msg, token.start, None)
            }
        }
    }

    fn decode_string(&mut self, token: Token) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(token.end.saturating_sub(token.start));
        let mut cur = token.start + 1;
        let end = token.end - 1;
        while cur < end {
            let c = self.doc[cur];
            cur += 1;
            if c == b'"' {
                break;
            }
            if c != b'\\' {
                out.push(c);
                continue;
            }
            if cur == end {
                return self.fail("Empty escape sequence in string", token.start, Some(cur));
            }
            let esc = self.doc[cur];
            cur += 1;
            match esc {
                b'"' => out.push(b'"'),
                b'/' => out.push(b'/'),
                b'\\' => out.push(b'\\'),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let cp = self.decode_code_point(token, &mut cur, end)?;
                    push_utf8(&mut out, cp);
                }
                _ => return self.fail("Bad escape sequence in string", token.start, Some(cur)),
            }
        }
        Some(out)
    }

    fn decode_code_point(&mut self, token: Token, cur: &mut usize, end: usize) -> Option<u32> {
        let mut cp = self.decode_escape4(token, cur, end)?;
        if (0xD800..=0xDBFF).contains(&cp) {
            if end - *cur < 6 {
                return self.fail(
                    "additional six characters expected to parse unicode surrogate pair.",
                    token.start,
                    Some(*cur),
                );
            }
            let a = self.doc[*cur];
            *cur += 1;
            let ok = a == b'\\' && {
                let b = self.doc[*cur];
                *cur += 1;
                b == b'u'
            };
            if !ok {
                return self.fail(
                    "expecting another \\u token to begin the second half of a unicode surrogate pair",
                    token.start,
                    Some(*cur),
                );
            }
            let low = self.decode_escape4(token, cur, end)?;
            cp = 0x10000 + ((cp & 0x3FF) << 10) + (low & 0x3FF);
        }
        Some(cp)
    }

    fn decode_escape4(&mut self, token: Token, cur: &mut usize, end: usize) -> Option<u32> {
        if end - *cur < 4 {
            return self.fail(
                "Bad unicode escape sequence in string: four digits expected.",
                token.start,
                Some(*cur),
            );
        }
        let mut v = 0u32;
        for _ in 0..4 {
            let c = self.doc[*cur];
            *cur += 1;
            let d = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => {
                    return self.fail(
                        "Bad unicode escape sequence in string: hexadecimal digit expected.",
                        token.start,
                        Some(*cur),
                    )
                }
            };
            v = v * 16 + d as u32;
        }
        Some(v)
    }

    /// `getLocationLineAndColumn`: "Line L, Column C" (CR, LF and CR LF end a line).
    fn location(&self, at: usize) -> String {
        let mut line = 0;
        let mut line_start = 0;
        let mut i = 0;
        while i < at && i < self.doc.len() {
            let c = self.doc[i];
            i += 1;
            if c == b'\r' {
                if self.doc.get(i) == Some(&b'\n') {
                    i += 1;
                }
                line_start = i;
                line += 1;
            } else if c == b'\n' {
                line_start = i;
                line += 1;
            }
        }
        format!(
            "Line {}, Column {}",
            line + 1,
            at as i64 - line_start as i64 + 1
        )
    }
}

/// jsoncpp's `codePointToUTF8` (no surrogate checks; code points above U+10FFFF vanish).
fn push_utf8(out: &mut Vec<u8>, cp: u32) {
    if cp <= 0x7f {
        out.push(cp as u8);
    } else if cp <= 0x7ff {
        out.push(0xC0 | ((cp >> 6) & 0x1f) as u8);
        out.push(0x80 | (cp & 0x3f) as u8);
    } else if cp <= 0xffff {
        out.push(0xE0 | ((cp >> 12) & 0xf) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3f) as u8);
        out.push(0x80 | (cp & 0x3f) as u8);
    } else if cp <= 0x10ffff {
        out.push(0xF0 | ((cp >> 18) & 0x7) as u8);
        out.push(0x80 | ((cp >> 12) & 0x3f) as u8);
        out.push(0x80 | ((cp >> 6) & 0x3f) as u8);
        out.push(0x80 | (cp & 0x3f) as u8);
    }
}

/// `sscanf(text, "%lf")` on a number token (characters `0-9 . e E + -` only): the
/// longest prefix that is a decimal floating-point number, or `None` when there is none.
pub fn scan_double(text: &[u8]) -> Option<f64> {
    let mut i = 0;
    let mut s = String::new();
    if let Some(&c) = text.first() {
        if c == b'-' || c == b'+' {
            if c == b'-' {
                s.push('-');
            }
            i = 1;
        }
    }
    let int_start = i;
    while i < text.len() && text[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &text[int_start..i];
    let mut frac_part: &[u8] = &[];
    if i < text.len() && text[i] == b'.' {
        let fs = i + 1;
        let mut j = fs;
        while j < text.len() && text[j].is_ascii_digit() {
            j += 1;
        }
        frac_part = &text[fs..j];
        if !int_part.is_empty() || !frac_part.is_empty() {
            i = j;
        }
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    s.push_str(if int_part.is_empty() {
        "0"
    } else {
        std::str::from_utf8(int_part).ok()?
    });
    if !frac_part.is_empty() {
        s.push('.');
        s.push_str(std::str::from_utf8(frac_part).ok()?);
    }
    if i < text.len() && (text[i] == b'e' || text[i] == b'E') {
        let mut j = i + 1;
        let mut exp = String::from("e");
        if j < text.len() && (text[j] == b'+' || text[j] == b'-') {
            if text[j] == b'-' {
                exp.push('-');
            }
            j += 1;
        }
        let ds = j;
        while j < text.len() && text[j].is_ascii_digit() {
            j += 1;
        }
        if j > ds {
            // Huge exponents: clamp (the value is 0 or infinite either way).
            let digits = std::str::from_utf8(&text[ds..j]).ok()?;
            let digits = digits.trim_start_matches('0');
            if digits.len() > 6 {
                exp.push_str("999999");
            } else if digits.is_empty() {
                exp.push('0');
            } else {
                exp.push_str(digits);
            }
            s.push_str(&exp);
        }
    }
    s.parse::<f64>().ok()
}
