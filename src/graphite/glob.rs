//! Graphite path globbing. Patterns compile to a small NFA that is
//! simulated state-set by state-set, so matching is O(pattern x name) no
//! matter how many `*` or `{}` a (possibly hostile) pattern contains.

const MAX_BRACE_DEPTH: usize = 16;
const MAX_PATTERN_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct CharClass {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharClass {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

#[derive(Debug, Clone)]
enum Token {
    Lit(char),
    One,
    Star,
    Class(CharClass),
    Alt(Vec<Vec<Token>>),
}

#[derive(Debug, Clone)]
enum State {
    Char(char, usize),
    Any(usize),
    Class(usize, usize),
    Split(usize, usize),
    Match,
}

/// One dot-free segment of a metric path pattern.
#[derive(Debug, Clone)]
pub struct SegmentPattern {
    states: Vec<State>,
    classes: Vec<CharClass>,
    start: usize,
    wildcard: bool,
}

impl SegmentPattern {
    pub fn compile(pattern: &str) -> Result<Self, String> {
        if pattern.chars().count() > MAX_PATTERN_CHARS {
            return Err("glob pattern too long".to_string());
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut pos = 0;
        let tokens = parse_seq(&chars, &mut pos, 0)?;
        if let Some(c) = chars.get(pos) {
            return Err(format!("bad glob {pattern:?}: unexpected {c:?} at {pos}"));
        }
        let mut out = SegmentPattern {
            states: vec![State::Match],
            classes: Vec::new(),
            start: 0,
            wildcard: pattern.contains(['*', '?', '[', '{']),
        };
        out.start = out.emit_seq(&tokens, 0);
        Ok(out)
    }

    pub fn has_wildcards(&self) -> bool {
        self.wildcard
    }

    pub fn matches(&self, text: &str) -> bool {
        let n = self.states.len();
        let mut mark = vec![usize::MAX; n];
        let mut current = Vec::with_capacity(n);
        let mut next = Vec::with_capacity(n);
        let mut stack = Vec::new();
        self.add(self.start, 0, &mut current, &mut mark, &mut stack);
        for (i, ch) in text.chars().enumerate() {
            let generation = i + 1;
            for &s in &current {
                let target = match self.states.get(s) {
                    Some(State::Char(c, nx)) if *c == ch => Some(*nx),
                    Some(State::Any(nx)) => Some(*nx),
                    Some(State::Class(ci, nx))
                        if self.classes.get(*ci).is_some_and(|c| c.matches(ch)) =>
                    {
                        Some(*nx)
                    }
                    _ => None,
                };
                if let Some(t) = target {
                    self.add(t, generation, &mut next, &mut mark, &mut stack);
                }
            }
            std::mem::swap(&mut current, &mut next);
            next.clear();
            if current.is_empty() {
                return false;
            }
        }
        current
            .iter()
            .any(|&s| matches!(self.states.get(s), Some(State::Match)))
    }

    /// Adds `s` and everything reachable through splits; `mark` dedups per
    /// input position, which is what keeps the simulation linear.
    fn add(
        &self,
        s: usize,
        generation: usize,
        list: &mut Vec<usize>,
        mark: &mut [usize],
        stack: &mut Vec<usize>,
    ) {
        stack.push(s);
        while let Some(x) = stack.pop() {
            match mark.get_mut(x) {
                Some(m) if *m != generation => *m = generation,
                _ => continue,
            }
            match self.states.get(x) {
                Some(State::Split(a, b)) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Some(_) => list.push(x),
                None => {}
            }
        }
    }

    fn push(&mut self, s: State) -> usize {
        self.states.push(s);
        self.states.len() - 1
    }

    // Built back to front so every state knows its successor on creation.
    fn emit_seq(&mut self, tokens: &[Token], next: usize) -> usize {
        tokens.iter().rev().fold(next, |cur, t| self.emit(t, cur))
    }

    fn emit(&mut self, token: &Token, next: usize) -> usize {
        match token {
            Token::Lit(c) => self.push(State::Char(*c, next)),
            Token::One => self.push(State::Any(next)),
            Token::Class(class) => {
                self.classes.push(class.clone());
                let ci = self.classes.len() - 1;
                self.push(State::Class(ci, next))
            }
            Token::Star => {
                let split = self.push(State::Split(0, 0));
                let any = self.push(State::Any(split));
                if let Some(s) = self.states.get_mut(split) {
                    *s = State::Split(any, next);
                }
                split
            }
            Token::Alt(branches) => {
                let starts: Vec<usize> = branches.iter().map(|b| self.emit_seq(b, next)).collect();
                let mut iter = starts.into_iter().rev();
                let last = iter.next().unwrap_or(next);
                iter.fold(last, |cur, s| self.push(State::Split(s, cur)))
            }
        }
    }
}

fn parse_seq(chars: &[char], pos: &mut usize, depth: usize) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    while let Some(&c) = chars.get(*pos) {
        match c {
            ',' | '}' if depth > 0 => break,
            '*' => {
                *pos += 1;
                // Consecutive stars are one star; keeps the NFA small.
                if !matches!(out.last(), Some(Token::Star)) {
                    out.push(Token::Star);
                }
            }
            '?' => {
                *pos += 1;
                out.push(Token::One);
            }
            '[' => out.push(Token::Class(parse_class(chars, pos)?)),
            '{' => {
                if depth >= MAX_BRACE_DEPTH {
                    return Err("glob braces nested too deeply".to_string());
                }
                let open = *pos;
                *pos += 1;
                let mut branches = Vec::new();
                loop {
                    branches.push(parse_seq(chars, pos, depth + 1)?);
                    match chars.get(*pos) {
                        Some(',') => *pos += 1,
                        Some('}') => {
                            *pos += 1;
                            break;
                        }
                        _ => return Err(format!("unclosed '{{' at {open} in glob")),
                    }
                }
                out.push(Token::Alt(branches));
            }
            _ => {
                *pos += 1;
                out.push(Token::Lit(c));
            }
        }
    }
    Ok(out)
}

fn parse_class(chars: &[char], pos: &mut usize) -> Result<CharClass, String> {
    let open = *pos;
    *pos += 1;
    let negated = matches!(chars.get(*pos), Some('!') | Some('^'));
    if negated {
        *pos += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = match chars.get(*pos) {
            None => return Err(format!("unclosed '[' at {open} in glob")),
            Some(']') if !first => {
                *pos += 1;
                break;
            }
            Some(&c) => c,
        };
        first = false;
        *pos += 1;
        if chars.get(*pos) == Some(&'-') && chars.get(*pos + 1).is_some_and(|&h| h != ']') {
            let hi = chars.get(*pos + 1).copied().unwrap_or(c);
            *pos += 2;
            if hi < c {
                return Err(format!("bad range {c}-{hi} in glob"));
            }
            ranges.push((c, hi));
        } else {
            ranges.push((c, c));
        }
    }
    Ok(CharClass { negated, ranges })
}

/// A full dotted pattern; each segment matches exactly one path node.
#[derive(Debug, Clone)]
pub struct PathPattern {
    segments: Vec<SegmentPattern>,
}

impl PathPattern {
    pub fn compile(pattern: &str) -> Result<Self, String> {
        let segments = pattern
            .split('.')
            .map(SegmentPattern::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PathPattern { segments })
    }

    pub fn segments(&self) -> &[SegmentPattern] {
        &self.segments
    }

    pub fn has_wildcards(&self) -> bool {
        self.segments.iter().any(SegmentPattern::has_wildcards)
    }

    pub fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        for seg in &self.segments {
            match parts.next() {
                Some(p) if seg.matches(p) => {}
                _ => return false,
            }
        }
        parts.next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(p: &str, s: &str) -> bool {
        SegmentPattern::compile(p).unwrap().matches(s)
    }

    #[test]
    fn star_and_question() {
        assert!(seg("*", ""));
        assert!(seg("*", "abc"));
        assert!(seg("a*c", "abbbc"));
        assert!(!seg("a*c", "abbb"));
        assert!(seg("a?c", "abc"));
        assert!(!seg("a?c", "ac"));
        assert!(seg("cpu", "cpu"));
        assert!(!seg("cpu", "cpu0"));
    }

    #[test]
    fn classes() {
        assert!(seg("cpu[0-9]", "cpu7"));
        assert!(!seg("cpu[0-9]", "cpux"));
        assert!(seg("[!x]", "y"));
        assert!(!seg("[!x]", "x"));
        assert!(seg("[a-c0]z", "0z"));
        assert!(seg("[]]", "]"));
        assert!(seg("[a-]", "-"));
        assert!(SegmentPattern::compile("[abc").is_err());
    }

    #[test]
    fn braces() {
        assert!(seg("{a,b}*", "apple"));
        assert!(seg("{a,b}*", "b"));
        assert!(!seg("{a,b}*", "cat"));
        assert!(seg("x{foo*,bar}", "xfoozz"));
        assert!(seg("x{,y}", "x"));
        assert!(seg("{a,{b,c}d}", "cd"));
        assert!(SegmentPattern::compile("{a,b").is_err());
    }

    #[test]
    fn paths() {
        let p = PathPattern::compile("a.{b,c}*.d").unwrap();
        assert!(p.matches("a.bx.d"));
        assert!(p.matches("a.c.d"));
        assert!(!p.matches("a.c.d.e"));
        assert!(!p.matches("a.c"));
        assert!(p.has_wildcards());
        assert!(!PathPattern::compile("a.b.c").unwrap().has_wildcards());
    }

    #[test]
    fn pathological_is_fast() {
        let pat = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(3000);
        assert!(!seg(pat, &text));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(p in "[a-c*?\\[\\]{},!-]{0,12}", s in "[a-c-]{0,12}") {
            if let Ok(c) = SegmentPattern::compile(&p) {
                let _ = c.matches(&s);
            }
        }

        #[test]
        fn literal_matches_itself(s in "[a-z0-9_]{0,12}") {
            proptest::prop_assert!(seg(&s, &s));
        }
    }
}
