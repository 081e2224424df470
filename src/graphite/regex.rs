//! A small Python-flavoured regex engine for aliasSub.
//!
//! Patterns compile to a backtracking program (leftmost-first, greedy or
//! lazy quantifiers, capture groups), matching Python `re` results for the
//! supported subset. Hostile patterns cannot hang the daemon: a (pc, pos)
//! visited set caps each search at program-size x input-size steps, and an
//! explicit step budget turns anything still too expensive into an error.

const MAX_PROGRAM: usize = 10_000;
const MAX_REPEAT: u32 = 1000;
const MAX_DEPTH: usize = 64;
const MAX_VISITED_BITS: usize = 1 << 25;
/// Steps per `replace_all`; generous for names, small enough to answer fast.
pub const DEFAULT_BUDGET: u64 = 5_000_000;

mod parse;

use parse::{is_word, CharClass, Node};

#[derive(Debug, Clone, Copy)]
enum Inst {
    Char(char),
    Any,
    Class(usize),
    Split(usize, usize),
    Jmp(usize),
    Save(usize),
    Bol,
    Eol,
    EndOfText,
    WordBoundary(bool),
    Match,
}

#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
    classes: Vec<CharClass>,
    /// Capture groups including group 0.
    groups: usize,
    names: Vec<(String, usize)>,
}

struct Compiler {
    prog: Vec<Inst>,
    classes: Vec<CharClass>,
}

impl Compiler {
    fn push(&mut self, i: Inst) -> Result<usize, String> {
        if self.prog.len() >= MAX_PROGRAM {
            return Err("regex too large".to_string());
        }
        self.prog.push(i);
        Ok(self.prog.len() - 1)
    }

    fn patch(&mut self, at: usize, i: Inst) {
        if let Some(slot) = self.prog.get_mut(at) {
            *slot = i;
        }
    }

    fn emit(&mut self, node: &Node) -> Result<(), String> {
        match node {
            Node::Empty => {}
            Node::Char(c) => {
                self.push(Inst::Char(*c))?;
            }
            Node::Any => {
                self.push(Inst::Any)?;
            }
            Node::Class(c) => {
                self.classes.push(c.clone());
                self.push(Inst::Class(self.classes.len() - 1))?;
            }
            Node::Bol => {
                self.push(Inst::Bol)?;
            }
            Node::Eol => {
                self.push(Inst::Eol)?;
            }
            Node::EndOfText => {
                self.push(Inst::EndOfText)?;
            }
            Node::WordBoundary(b) => {
                self.push(Inst::WordBoundary(*b))?;
            }
            Node::Group(body, idx) => {
                if let Some(i) = idx {
                    self.push(Inst::Save(2 * i))?;
                }
                self.emit(body)?;
                if let Some(i) = idx {
                    self.push(Inst::Save(2 * i + 1))?;
                }
            }
            Node::Concat(items) => {
                for n in items {
                    self.emit(n)?;
                }
            }
            Node::Alt(branches) => {
                let mut jumps = Vec::new();
                let last = branches.len().saturating_sub(1);
                for (k, b) in branches.iter().enumerate() {
                    if k < last {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(b)?;
                        jumps.push(self.push(Inst::Jmp(0))?);
                        let next = self.prog.len();
                        self.patch(split, Inst::Split(split + 1, next));
                    } else {
                        self.emit(b)?;
                    }
                }
                let end = self.prog.len();
                for j in jumps {
                    self.patch(j, Inst::Jmp(end));
                }
            }
            Node::Repeat(body, min, max, greedy) => {
                for _ in 0..*min {
                    self.emit(body)?;
                }
                let order = |s: usize, exit: usize| {
                    if *greedy {
                        Inst::Split(s + 1, exit)
                    } else {
                        Inst::Split(exit, s + 1)
                    }
                };
                match max {
                    None => {
                        let split = self.push(Inst::Split(0, 0))?;
                        self.emit(body)?;
                        self.push(Inst::Jmp(split))?;
                        let exit = self.prog.len();
                        self.patch(split, order(split, exit));
                    }
                    Some(max) => {
                        let mut splits = Vec::new();
                        for _ in *min..*max {
                            splits.push(self.push(Inst::Split(0, 0))?);
                            self.emit(body)?;
                        }
                        let exit = self.prog.len();
                        for s in splits {
                            self.patch(s, order(s, exit));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

enum Job {
    Try(usize, usize),
    Restore(usize, Option<usize>),
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let parse::Parsed {
            node,
            groups,
            names,
        } = parse::parse(&chars)?;
        let mut c = Compiler {
            prog: Vec::new(),
            classes: Vec::new(),
        };
        c.emit(&node)?;
        c.push(Inst::Match)?;
        Ok(Regex {
            prog: c.prog,
            classes: c.classes,
            groups: groups + 1,
            names,
        })
    }

    /// Number of groups, counting the whole match as group 0.
    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// Leftmost match starting at or after `from`; returns capture slots
    /// (char offsets, two per group).
    fn search(
        &self,
        text: &[char],
        from: usize,
        budget: &mut u64,
        visited: &mut Visited,
    ) -> Result<Option<Vec<Option<usize>>>, String> {
        visited.reset();
        let mut slots = vec![None; self.groups * 2];
        let mut stack = Vec::new();
        for start in from..=text.len() {
            for s in slots.iter_mut() {
                *s = None;
            }
            stack.clear();
            stack.push(Job::Try(0, start));
            if let Some(end) = self.run(text, &mut stack, &mut slots, budget, visited)? {
                if let Some(s) = slots.get_mut(0) {
                    *s = Some(start);
                }
                if let Some(s) = slots.get_mut(1) {
                    *s = Some(end);
                }
                return Ok(Some(slots));
            }
        }
        Ok(None)
    }

    fn run(
        &self,
        text: &[char],
        stack: &mut Vec<Job>,
        slots: &mut [Option<usize>],
        budget: &mut u64,
        visited: &mut Visited,
    ) -> Result<Option<usize>, String> {
        while let Some(job) = stack.pop() {
            let (mut pc, mut pos) = match job {
                Job::Restore(slot, old) => {
                    if let Some(s) = slots.get_mut(slot) {
                        *s = old;
                    }
                    continue;
                }
                Job::Try(pc, pos) => (pc, pos),
            };
            loop {
                *budget = budget
                    .checked_sub(1)
                    .ok_or_else(|| "regex too expensive for this input".to_string())?;
                // A state that was reached before already failed (or we
                // would have returned), so it fails again.
                if !visited.insert(pc, pos) {
                    break;
                }
                let cur = text.get(pos).copied();
                match self.prog.get(pc) {
                    Some(Inst::Char(c)) if cur == Some(*c) => {
                        pc += 1;
                        pos += 1;
                    }
                    Some(Inst::Any) if cur.is_some_and(|c| c != '\n') => {
                        pc += 1;
                        pos += 1;
                    }
                    Some(Inst::Class(i))
                        if cur.is_some_and(|c| {
                            self.classes.get(*i).is_some_and(|cl| cl.matches(c))
                        }) =>
                    {
                        pc += 1;
                        pos += 1;
                    }
                    Some(Inst::Split(a, b)) => {
                        stack.push(Job::Try(*b, pos));
                        pc = *a;
                    }
                    Some(Inst::Jmp(a)) => pc = *a,
                    Some(Inst::Save(slot)) => {
                        if let Some(s) = slots.get_mut(*slot) {
                            stack.push(Job::Restore(*slot, *s));
                            *s = Some(pos);
                        }
                        pc += 1;
                    }
                    Some(Inst::Bol) if pos == 0 => pc += 1,
                    // Python's `$` also matches before a final newline.
                    Some(Inst::Eol)
                        if pos == text.len() || (pos + 1 == text.len() && cur == Some('\n')) =>
                    {
                        pc += 1
                    }
                    Some(Inst::EndOfText) if pos == text.len() => pc += 1,
                    Some(Inst::WordBoundary(want)) => {
                        let before = pos
                            .checked_sub(1)
                            .and_then(|p| text.get(p))
                            .is_some_and(|&c| is_word(c));
                        let after = cur.is_some_and(is_word);
                        if (before != after) != *want {
                            break;
                        }
                        pc += 1;
                    }
                    Some(Inst::Match) => return Ok(Some(pos)),
                    _ => break,
                }
            }
        }
        Ok(None)
    }

    pub fn is_match(&self, text: &str) -> Result<bool, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut visited = Visited::new(self.prog.len(), chars.len())?;
        let mut budget = DEFAULT_BUDGET;
        Ok(self.search(&chars, 0, &mut budget, &mut visited)?.is_some())
    }

    /// Python `re.sub(pattern, replacement, text)` for the supported
    /// syntax (3.7+ empty-match rules; `\1`, `\g<1>`, `\g<name>`).
    pub fn replace_all(&self, text: &str, replacement: &str) -> Result<String, String> {
        self.replace_all_with_budget(text, replacement, DEFAULT_BUDGET)
    }

    pub fn replace_all_with_budget(
        &self,
        text: &str,
        replacement: &str,
        mut budget: u64,
    ) -> Result<String, String> {
        let template = self.template(replacement)?;
        let chars: Vec<char> = text.chars().collect();
        let mut visited = Visited::new(self.prog.len(), chars.len())?;
        let mut out = String::new();
        let mut pos = 0;
        let mut copied = 0;
        while pos <= chars.len() {
            let slots = match self.search(&chars, pos, &mut budget, &mut visited)? {
                Some(s) => s,
                None => break,
            };
            let (s, e) = match (
                slots.first().copied().flatten(),
                slots.get(1).copied().flatten(),
            ) {
                (Some(s), Some(e)) => (s, e),
                _ => break,
            };
            out.extend(chars.get(copied..s).unwrap_or(&[]));
            for piece in &template {
                match piece {
                    Piece::Lit(t) => out.push_str(t),
                    Piece::Group(g) => {
                        let a = slots.get(2 * g).copied().flatten();
                        let b = slots.get(2 * g + 1).copied().flatten();
                        if let (Some(a), Some(b)) = (a, b) {
                            out.extend(chars.get(a..b).unwrap_or(&[]));
                        }
                    }
                }
            }
            copied = e;
            if e == s {
                // An empty match must not repeat at the same spot; step
                // over one character, keeping it in the output.
                if let Some(c) = chars.get(e) {
                    out.push(*c);
                }
                copied = e + 1;
                pos = e + 1;
            } else {
                pos = e;
            }
        }
        out.extend(chars.get(copied..).unwrap_or(&[]));
        Ok(out)
    }

    fn template(&self, repl: &str) -> Result<Vec<Piece>, String> {
        let chars: Vec<char> = repl.chars().collect();
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let bad_group = |g: &str| format!("invalid group reference {g} in replacement");
        while let Some(&c) = chars.get(i) {
            i += 1;
            if c != '\\' {
                lit.push(c);
                continue;
            }
            let e = chars
                .get(i)
                .copied()
                .ok_or_else(|| "bad escape (end of replacement)".to_string())?;
            i += 1;
            let group = match e {
                '0'..='9' => {
                    let mut num = e.to_digit(10).unwrap_or(0) as usize;
                    if let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                        num = num * 10 + d as usize;
                        i += 1;
                    }
                    if num == 0 || num >= self.groups {
                        return Err(bad_group(&num.to_string()));
                    }
                    Some(num)
                }
                'g' => {
                    if chars.get(i) != Some(&'<') {
                        return Err("missing < in \\g".to_string());
                    }
                    let close = chars
                        .iter()
                        .skip(i)
                        .position(|&c| c == '>')
                        .ok_or_else(|| "missing > in \\g<".to_string())?;
                    let name: String = chars.get(i + 1..i + close).unwrap_or(&[]).iter().collect();
                    i += close + 1;
                    let idx = match name.parse::<usize>() {
                        Ok(n) => Some(n),
                        Err(_) => self.names.iter().find(|(n, _)| *n == name).map(|(_, g)| *g),
                    };
                    match idx {
                        Some(n) if n < self.groups => Some(n),
                        _ => return Err(bad_group(&name)),
                    }
                }
                'n' => {
                    lit.push('\n');
                    None
                }
                't' => {
                    lit.push('\t');
                    None
                }
                'r' => {
                    lit.push('\r');
                    None
                }
                '\\' => {
                    lit.push('\\');
                    None
                }
                c if c.is_ascii_alphabetic() => {
                    return Err(format!("bad escape \\{c} in replacement"))
                }
                c => {
                    lit.push('\\');
                    lit.push(c);
                    None
                }
            };
            if let Some(g) = group {
                if !lit.is_empty() {
                    pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                }
                pieces.push(Piece::Group(g));
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Lit(lit));
        }
        Ok(pieces)
    }
}

enum Piece {
    Lit(String),
    Group(usize),
}

/// Bitset over (pc, pos); `touched` lets a reset cost only what was used.
struct Visited {
    bits: Vec<u64>,
    width: usize,
    touched: Vec<usize>,
}

impl Visited {
    fn new(prog_len: usize, text_len: usize) -> Result<Self, String> {
        let width = text_len + 1;
        let total = prog_len
            .checked_mul(width)
            .filter(|&t| t <= MAX_VISITED_BITS)
            .ok_or_else(|| "regex input too long".to_string())?;
        Ok(Visited {
            bits: vec![0; total.div_ceil(64)],
            width,
            touched: Vec::new(),
        })
    }

    fn insert(&mut self, pc: usize, pos: usize) -> bool {
        let bit = pc * self.width + pos;
        match self.bits.get_mut(bit / 64) {
            Some(word) => {
                let mask = 1u64 << (bit % 64);
                if *word & mask != 0 {
                    return false;
                }
                if *word == 0 {
                    self.touched.push(bit / 64);
                }
                *word |= mask;
                true
            }
            None => false,
        }
    }

    fn reset(&mut self) {
        for w in self.touched.drain(..) {
            if let Some(word) = self.bits.get_mut(w) {
                *word = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests;
