//! Pattern syntax -> AST. Kept apart from the matcher so each stays small.

use super::{MAX_DEPTH, MAX_REPEAT};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum ClassItem {
    Range(char, char),
    Digit(bool),
    Word(bool),
    Space(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct CharClass {
    negated: bool,
    items: Vec<ClassItem>,
}

pub(super) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl ClassItem {
    pub(super) fn matches(&self, c: char) -> bool {
        match *self {
            ClassItem::Range(lo, hi) => lo <= c && c <= hi,
            ClassItem::Digit(neg) => c.is_numeric() != neg,
            ClassItem::Word(neg) => is_word(c) != neg,
            ClassItem::Space(neg) => c.is_whitespace() != neg,
        }
    }
}

impl CharClass {
    pub(super) fn matches(&self, c: char) -> bool {
        self.items.iter().any(|i| i.matches(c)) != self.negated
    }
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Empty,
    Char(char),
    Any,
    Class(CharClass),
    Bol,
    Eol,
    EndOfText,
    WordBoundary(bool),
    Group(Box<Node>, Option<usize>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>, bool),
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
    groups: usize,
    names: Vec<(String, usize)>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn err(&self, msg: &str) -> String {
        format!("bad regex at {}: {msg}", self.pos)
    }

    fn alt(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let mut branches = vec![self.concat(depth)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            branches.push(self.concat(depth)?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap_or(Node::Empty)
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self, depth: usize) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(depth)?;
            items.push(self.quantified(atom)?);
        }
        Ok(Node::Concat(items))
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let (min, max) = match self.peek() {
            Some('*') => (0, None),
            Some('+') => (1, None),
            Some('?') => (0, Some(1)),
            Some('{') => match self.counted()? {
                Some(mm) => mm,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        // Step over the quantifier character (or a counted form's '}').
        self.pos += 1;
        if matches!(atom, Node::Empty | Node::Bol | Node::Eol | Node::EndOfText) {
            return Err(self.err("nothing to repeat"));
        }
        let greedy = if self.peek() == Some('?') {
            self.pos += 1;
            false
        } else {
            true
        };
        if matches!(self.peek(), Some('*') | Some('+') | Some('?')) {
            return Err(self.err("multiple repeat"));
        }
        Ok(Node::Repeat(Box::new(atom), min, max, greedy))
    }

    /// `{m}`, `{m,}`, `{,n}`, `{m,n}`; anything else is a literal brace, as
    /// in Python. Leaves `pos` on the closing brace.
    fn counted(&mut self) -> Result<Option<(u32, Option<u32>)>, String> {
        let mut i = self.pos + 1;
        let read = |i: &mut usize| {
            let s = *i;
            while self.chars.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            self.chars
                .get(s..*i)
                .filter(|d| !d.is_empty())
                .map(|d| d.iter().collect::<String>())
        };
        let lo = read(&mut i);
        let hi = if self.chars.get(i) == Some(&',') {
            i += 1;
            read(&mut i)
        } else if lo.is_none() {
            return Ok(None);
        } else {
            lo.clone()
        };
        if self.chars.get(i) != Some(&'}') {
            return Ok(None);
        }
        let num = |s: Option<String>| -> Result<Option<u32>, String> {
            match s {
                None => Ok(None),
                Some(t) => t
                    .parse::<u32>()
                    .ok()
                    .filter(|&v| v <= MAX_REPEAT)
                    .map(Some)
                    .ok_or_else(|| format!("repeat count above {MAX_REPEAT}")),
            }
        };
        let min = num(lo)?.unwrap_or(0);
        let max = num(hi)?;
        if max.is_some_and(|m| m < min) {
            return Err(self.err("min repeat greater than max repeat"));
        }
        self.pos = i;
        Ok(Some((min, max)))
    }

    fn atom(&mut self, depth: usize) -> Result<Node, String> {
        let c = self.peek().ok_or_else(|| self.err("unexpected end"))?;
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Bol,
            '$' => Node::Eol,
            '*' | '+' | '?' => return Err(self.err("nothing to repeat")),
            '(' => self.group(depth)?,
            '[' => Node::Class(self.class()?),
            '\\' => self.escape()?,
            c => Node::Char(c),
        })
    }

    fn group(&mut self, depth: usize) -> Result<Node, String> {
        let mut index = None;
        if self.peek() == Some('?') {
            let rest: String = self.chars.iter().skip(self.pos).take(3).collect();
            if rest.starts_with("?:") {
                self.pos += 2;
            } else if rest.starts_with("?P<") {
                self.pos += 3;
                let start = self.pos;
                while self.peek().is_some_and(is_word) {
                    self.pos += 1;
                }
                let name: String = self
                    .chars
                    .get(start..self.pos)
                    .unwrap_or(&[])
                    .iter()
                    .collect();
                if name.is_empty() || self.peek() != Some('>') {
                    return Err(self.err("bad group name"));
                }
                self.pos += 1;
                self.groups += 1;
                self.names.push((name, self.groups));
                index = Some(self.groups);
            } else {
                return Err(self.err("unsupported group syntax"));
            }
        } else {
            self.groups += 1;
            index = Some(self.groups);
        }
        let body = self.alt(depth + 1)?;
        if self.peek() != Some(')') {
            return Err(self.err("missing ')'"));
        }
        self.pos += 1;
        Ok(Node::Group(Box::new(body), index))
    }

    fn escape(&mut self) -> Result<Node, String> {
        let c = self.peek().ok_or_else(|| self.err("trailing backslash"))?;
        self.pos += 1;
        let class = |item| {
            Node::Class(CharClass {
                negated: false,
                items: vec![item],
            })
        };
        Ok(match c {
            'b' => Node::WordBoundary(true),
            'B' => Node::WordBoundary(false),
            'A' => Node::Bol,
            'Z' => Node::EndOfText,
            _ => match self.escape_item(c)? {
                ClassItem::Range(a, _) => Node::Char(a),
                item => class(item),
            },
        })
    }

    /// Escapes valid both inside and outside classes.
    fn escape_item(&self, c: char) -> Result<ClassItem, String> {
        Ok(match c {
            'd' => ClassItem::Digit(false),
            'D' => ClassItem::Digit(true),
            'w' => ClassItem::Word(false),
            'W' => ClassItem::Word(true),
            's' => ClassItem::Space(false),
            'S' => ClassItem::Space(true),
            'n' => ClassItem::Range('\n', '\n'),
            't' => ClassItem::Range('\t', '\t'),
            'r' => ClassItem::Range('\r', '\r'),
            'f' => ClassItem::Range('\x0c', '\x0c'),
            'v' => ClassItem::Range('\x0b', '\x0b'),
            '0'..='9' => return Err(self.err("backreferences are not supported")),
            c if c.is_ascii_alphabetic() => return Err(self.err(&format!("bad escape \\{c}"))),
            c => ClassItem::Range(c, c),
        })
    }

    fn class(&mut self) -> Result<CharClass, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut items = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .peek()
                .ok_or_else(|| self.err("unterminated character set"))?;
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let item = if c == '\\' {
                let e = self.peek().ok_or_else(|| self.err("trailing backslash"))?;
                self.pos += 1;
                if e == 'b' {
                    ClassItem::Range('\x08', '\x08')
                } else {
                    self.escape_item(e)?
                }
            } else {
                ClassItem::Range(c, c)
            };
            let lo = match item {
                ClassItem::Range(lo, _) => lo,
                other => {
                    items.push(other);
                    continue;
                }
            };
            let is_range =
                self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']');
            if !is_range {
                items.push(item);
                continue;
            }
            self.pos += 1;
            let h = self
                .peek()
                .ok_or_else(|| self.err("unterminated character set"))?;
            self.pos += 1;
            let hi = if h == '\\' {
                let e = self.peek().ok_or_else(|| self.err("trailing backslash"))?;
                self.pos += 1;
                match self.escape_item(e)? {
                    ClassItem::Range(h, _) => h,
                    _ => return Err(self.err("bad character range")),
                }
            } else {
                h
            };
            if hi < lo {
                return Err(self.err("bad character range"));
            }
            items.push(ClassItem::Range(lo, hi));
        }
        Ok(CharClass { negated, items })
    }
}

pub(super) struct Parsed {
    pub node: Node,
    pub groups: usize,
    pub names: Vec<(String, usize)>,
}

pub(super) fn parse(chars: &[char]) -> Result<Parsed, String> {
    let mut p = Parser {
        chars,
        pos: 0,
        groups: 0,
        names: Vec::new(),
    };
    let node = p.alt(0)?;
    if p.pos < chars.len() {
        return Err(p.err("unbalanced parenthesis"));
    }
    Ok(Parsed {
        node,
        groups: p.groups,
        names: p.names,
    })
}
