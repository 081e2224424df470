//! Counter names (docs/interfaces.md §2.5): caret expansion (`extract_ctrs`), the `*` event
//! marker, the empty-component check (port fix 6) and `munge`.

/// One name of a caret expansion: `base.seg`, `seg` (empty base), or `base` (trailing
/// caret).
#[derive(Debug, Clone, Copy)]
pub(super) struct Expanded<'a> {
    base: &'a [u8],
    seg: Option<&'a [u8]>,
}

impl Expanded<'_> {
    pub(super) fn len(&self) -> usize {
        match self.seg {
            None => self.base.len(),
            Some(s) if self.base.is_empty() => s.len(),
            Some(s) => self.base.len() + 1 + s.len(),
        }
    }

    fn byte(&self, i: usize) -> u8 {
        match self.seg {
            None => self.base[i],
            Some(s) if self.base.is_empty() => s[i],
            Some(s) => {
                let b = self.base.len();
                if i < b {
                    self.base[i]
                } else if i == b {
                    b'.'
                } else {
                    s[i - b - 1]
                }
            }
        }
    }

    pub(super) fn write_to(&self, out: &mut Vec<u8>) {
        match self.seg {
            None => out.extend_from_slice(self.base),
            Some(s) if self.base.is_empty() => out.extend_from_slice(s),
            Some(s) => {
                out.extend_from_slice(self.base);
                out.push(b'.');
                out.extend_from_slice(s);
            }
        }
    }

    /// Port fix 6: after the `*` marker, a leading, trailing or doubled `.`.
    pub(super) fn has_empty_component(&self) -> bool {
        let len = self.len();
        let start = usize::from(self.byte(0) == b'*');
        if start >= len {
            return false;
        }
        let mut prev_dot = true; // a leading dot is an empty component
        for i in start..len {
            let dot = self.byte(i) == b'.';
            if dot && prev_dot {
                return true;
            }
            prev_dot = dot;
        }
        prev_dot
    }
}

pub(super) enum Body {
    /// The name is just `*`: ignored (reference `StatStore::openCounter`).
    StarOnly,
    Name,
}

pub(super) fn split_marker(e: &Expanded<'_>) -> (bool, Body) {
    let len = e.len();
    if len > 0 && e.byte(0) == b'*' {
        (true, if len == 1 { Body::StarOnly } else { Body::Name })
    } else {
        (false, Body::Name)
    }
}

/// The caret expansion of `extract_ctrs` (docs/interfaces.md §2.5 step 1) with port fix 1
/// (empty segments skipped instead of looping forever).
#[derive(Debug, Clone)]
pub(super) struct CaretExpansion<'a> {
    base: &'a [u8],
    /// What follows the current caret; `None` when done.
    rest: Option<&'a [u8]>,
    single: Option<&'a [u8]>,
}

impl<'a> CaretExpansion<'a> {
    pub(super) fn new(raw: &'a [u8]) -> Self {
        match raw.iter().position(|&b| b == b'^') {
            None => CaretExpansion {
                base: raw,
                rest: None,
                single: (!raw.is_empty()).then_some(raw),
            },
            Some(p) => CaretExpansion {
                base: &raw[..p],
                rest: Some(&raw[p + 1..]),
                single: None,
            },
        }
    }
}

impl<'a> Iterator for CaretExpansion<'a> {
    type Item = Expanded<'a>;

    fn next(&mut self) -> Option<Expanded<'a>> {
        if let Some(s) = self.single.take() {
            return Some(Expanded { base: s, seg: None });
        }
        loop {
            let rest = self.rest?;
            match rest.iter().position(|&b| b == b'^') {
                Some(q) => {
                    self.rest = Some(&rest[q + 1..]);
                    if q > 0 {
                        return Some(Expanded {
                            base: self.base,
                            seg: Some(&rest[..q]),
                        });
                    }
                    // Empty segment: skipped (port fix 1).
                }
                None => {
                    self.rest = None;
                    if !rest.is_empty() {
                        return Some(Expanded {
                            base: self.base,
                            seg: Some(rest),
                        });
                    }
                    // A trailing caret yields the base itself, if there is one.
                    if !self.base.is_empty() {
                        return Some(Expanded {
                            base: self.base,
                            seg: None,
                        });
                    }
                    return None;
                }
            }
        }
    }
}

/// Caret expansion of a raw name (`extract_ctrs`, port fix 1), as owned names. Not
/// the hot path (that writes into a [`ParsedBatch`](super::ParsedBatch)).
pub fn caret_expand(raw: &[u8]) -> Vec<Vec<u8>> {
    CaretExpansion::new(raw)
        .map(|e| {
            let mut v = Vec::with_capacity(e.len());
            e.write_to(&mut v);
            v
        })
        .collect()
}

/// One byte of `munge`: bytes below 0x21 or above 0x7E and `/ : \ " '` become `_`,
/// ASCII letters are lower-cased.
#[inline]
pub fn munge_byte(b: u8) -> u8 {
    match b {
        0..=0x20 | 0x7f..=0xff | b'/' | b':' | b'\\' | b'"' | b'\'' => b'_',
        _ => b.to_ascii_lowercase(),
    }
}

/// `munge` of a whole name (the `*` marker, if any, is not special here).
pub fn munge(name: &[u8]) -> String {
    name.iter().map(|&b| munge_byte(b) as char).collect()
}
