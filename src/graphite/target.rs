//! Render target grammar, modelled on graphite-web's: nested calls, quoted
//! strings, numbers, booleans, keyword arguments and bare path expressions.

use std::fmt;

const MAX_DEPTH: usize = 64;
const MAX_TARGET_CHARS: usize = 65_536;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A metric path or glob, kept verbatim (including `{a,b}` and any
    /// `:field` suffix) so the fetcher sees exactly what the user wrote.
    Path(String),
    Call {
        name: String,
        args: Vec<Arg>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Expr(Expr),
    /// String contents without the quotes. Backslashes are kept verbatim,
    /// as graphite does, so regex escapes like `'\.'` and `'\1'` survive;
    /// a backslash only stops the next character from closing the string.
    Str(String),
    /// Integer literal; kept apart from floats because graphite names
    /// series with Python's `str()`, which prints `5` and `5.0` differently.
    Int(i64),
    Num(f64),
    Bool(bool),
    None,
    Kw(String, Box<Arg>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character (not byte) offset into the target.
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad target syntax at {}: {}", self.pos, self.message)
    }
}

impl std::error::Error for ParseError {}

/// One fetch the evaluation will need: `path` over the request window
/// moved by `shift` seconds (negative = earlier, from timeShift).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRequest {
    pub path: String,
    pub shift: i64,
}

pub fn parse(target: &str) -> Result<Expr, ParseError> {
    let chars: Vec<char> = target.chars().collect();
    if chars.len() > MAX_TARGET_CHARS {
        return Err(ParseError {
            pos: 0,
            message: "target too long".to_string(),
        });
    }
    let mut p = Parser { chars, pos: 0 };
    p.skip_ws();
    let expr = p.expr(0)?;
    p.skip_ws();
    match p.peek() {
        None => Ok(expr),
        Some(c) => Err(p.err(format!("unexpected {c:?}"))),
    }
}

/// Every path the evaluation of `expr` will ask `Fetched` for, with the
/// shift to fetch it at, deduplicated in first-use order.
pub fn paths(expr: &Expr) -> Vec<PathRequest> {
    let mut out = Vec::new();
    collect(expr, 0, &mut out);
    out
}

fn collect(expr: &Expr, shift: i64, out: &mut Vec<PathRequest>) {
    match expr {
        Expr::Path(p) => {
            if !out.iter().any(|r| r.path == *p && r.shift == shift) {
                out.push(PathRequest {
                    path: p.clone(),
                    shift,
                });
            }
        }
        Expr::Call { name, args } => {
            let inner = if name == "timeShift" {
                timeshift_arg(args)
                    .and_then(|s| crate::graphite::time::time_shift_delta(s).ok())
                    .map_or(shift, |d| shift.saturating_add(d))
            } else {
                shift
            };
            for a in args {
                collect_arg(a, inner, out);
            }
        }
    }
}

fn collect_arg(arg: &Arg, shift: i64, out: &mut Vec<PathRequest>) {
    match arg {
        Arg::Expr(e) => collect(e, shift, out),
        Arg::Kw(_, v) => collect_arg(v, shift, out),
        _ => {}
    }
}

fn timeshift_arg(args: &[Arg]) -> Option<&str> {
    let kw = args.iter().find_map(|a| match a {
        Arg::Kw(k, v) if k == "timeShift" => match v.as_ref() {
            Arg::Str(s) => Some(s.as_str()),
            _ => None,
        },
        _ => None,
    });
    kw.or_else(|| match args.get(1) {
        Some(Arg::Str(s)) => Some(s.as_str()),
        _ => None,
    })
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, i: usize) -> Option<char> {
        self.chars.get(i).copied()
    }

    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError {
            pos: self.pos,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn ident_end(&self, from: usize) -> usize {
        let mut i = from;
        if !self.peek_at(i).is_some_and(is_ident_start) {
            return from;
        }
        while self.peek_at(i).is_some_and(is_ident) {
            i += 1;
        }
        i
    }

    fn text(&self, from: usize, to: usize) -> String {
        self.chars.get(from..to).unwrap_or(&[]).iter().collect()
    }

    fn expr(&mut self, depth: usize) -> Result<Expr, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("expression nested too deeply"));
        }
        let end = self.ident_end(self.pos);
        if end > self.pos && self.peek_at(end) == Some('(') {
            let name = self.text(self.pos, end);
            self.pos = end + 1;
            let args = self.args(depth)?;
            return Ok(Expr::Call { name, args });
        }
        self.path()
    }

    fn args(&mut self, depth: usize) -> Result<Vec<Arg>, ParseError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            return Ok(args);
        }
        loop {
            self.skip_ws();
            args.push(self.arg(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {
                    self.pos += 1;
                    return Ok(args);
                }
                None => return Err(self.err("expected ')'")),
                Some(c) => return Err(self.err(format!("expected ',' or ')', found {c:?}"))),
            }
        }
    }

    fn arg(&mut self, depth: usize) -> Result<Arg, ParseError> {
        let end = self.ident_end(self.pos);
        if end > self.pos {
            let mut after = end;
            while self.peek_at(after).is_some_and(char::is_whitespace) {
                after += 1;
            }
            if self.peek_at(after) == Some('=') {
                let name = self.text(self.pos, end);
                self.pos = after + 1;
                self.skip_ws();
                let value = self.value(depth)?;
                return Ok(Arg::Kw(name, Box::new(value)));
            }
        }
        self.value(depth)
    }

    fn value(&mut self, depth: usize) -> Result<Arg, ParseError> {
        match self.peek() {
            None | Some(',') | Some(')') => return Err(self.err("expected argument")),
            Some(q @ ('"' | '\'')) => return self.string(q),
            _ => {}
        }
        if let Some(arg) = self.number() {
            return Ok(arg);
        }
        let end = self.ident_end(self.pos);
        if end > self.pos && self.is_terminator(end) {
            let word = self.text(self.pos, end);
            let lit = match word.as_str() {
                "true" | "True" => Some(Arg::Bool(true)),
                "false" | "False" => Some(Arg::Bool(false)),
                "None" | "none" => Some(Arg::None),
                _ => None,
            };
            if let Some(lit) = lit {
                self.pos = end;
                return Ok(lit);
            }
        }
        Ok(Arg::Expr(self.expr(depth + 1)?))
    }

    fn is_terminator(&self, i: usize) -> bool {
        match self.peek_at(i) {
            None | Some(',') | Some(')') => true,
            Some(c) => c.is_whitespace(),
        }
    }

    /// A number only counts if the token ends there; `1.2.3` or `5min`
    /// fall through to being a path, which is what metric names need.
    fn number(&mut self) -> Option<Arg> {
        let start = self.pos;
        let mut i = start;
        if matches!(self.peek_at(i), Some('-') | Some('+')) {
            i += 1;
        }
        let int_start = i;
        while self.peek_at(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        let mut digits = i - int_start;
        let mut is_float = false;
        if self.peek_at(i) == Some('.') {
            is_float = true;
            i += 1;
            let frac = i;
            while self.peek_at(i).is_some_and(|c| c.is_ascii_digit()) {
                i += 1;
            }
            digits += i - frac;
        }
        if digits == 0 {
            return None;
        }
        if matches!(self.peek_at(i), Some('e') | Some('E')) {
            let mut j = i + 1;
            if matches!(self.peek_at(j), Some('-') | Some('+')) {
                j += 1;
            }
            let exp_start = j;
            while self.peek_at(j).is_some_and(|c| c.is_ascii_digit()) {
                j += 1;
            }
            if j > exp_start {
                is_float = true;
                i = j;
            }
        }
        if !self.is_terminator(i) {
            return None;
        }
        let text = self.text(start, i);
        let arg = if is_float {
            Arg::Num(text.parse::<f64>().ok()?)
        } else {
            match text.parse::<i64>() {
                Ok(v) => Arg::Int(v),
                Err(_) => Arg::Num(text.parse::<f64>().ok()?),
            }
        };
        self.pos = i;
        Some(arg)
    }

    fn string(&mut self, quote: char) -> Result<Arg, ParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(ParseError {
                        pos: open,
                        message: "unterminated string".to_string(),
                    })
                }
                Some('\\') => {
                    out.push('\\');
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(Arg::Str(out));
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn path(&mut self) -> Result<Expr, ParseError> {
        let start = self.pos;
        let mut braces = 0usize;
        while let Some(c) = self.peek() {
            match c {
                '{' => braces += 1,
                '}' if braces == 0 => break,
                '}' => braces -= 1,
                // Inside `{a,b}` the comma is part of the glob.
                ',' if braces == 0 => break,
                '(' | ')' | '=' | '"' | '\'' => break,
                c if c.is_whitespace() => break,
                _ => {}
            }
            self.pos += 1;
        }
        if braces > 0 {
            return Err(ParseError {
                pos: start,
                message: "unclosed '{' in path".to_string(),
            });
        }
        if self.pos == start {
            return Err(match self.peek() {
                None => self.err("expected a path or function call"),
                Some(c) => self.err(format!("expected a path or function call, found {c:?}")),
            });
        }
        Ok(Expr::Path(self.text(start, self.pos)))
    }
}

/// The first path expression along the first-argument chain of a series
/// name, as graphite's aliasByNode/groupByNode use it. Falls back to the
/// whole name when it is not parseable (for example an alias with spaces).
pub(crate) fn first_path(name: &str) -> String {
    let mut expr = match parse(name) {
        Ok(e) => e,
        Err(_) => return name.to_string(),
    };
    loop {
        match expr {
            Expr::Path(p) => return p,
            Expr::Call { mut args, .. } => match args.drain(..).next() {
                Some(Arg::Expr(e)) => expr = e,
                _ => return name.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
