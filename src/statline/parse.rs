//! Classification and parsing of one command (docs/interfaces.md §2.3–§2.7): meta lines,
//! reserved commands and counter lines, whose samples go into a reusable
//! [`ParsedBatch`] (two string arenas and a record vector kept between batches, so
//! steady-state parsing does not allocate per sample).

use std::ops::Range;

use istatd_storage::counter::Sample;

use super::name::{munge_byte, split_marker, Body, CaretExpansion};
use super::number::{parse_count, parse_time, parse_value};
use super::outcome::{BadReason, LineOutcome};
use super::MAX_EXPANSION_BYTES;

/// One sample for one counter, as stored in a [`ParsedBatch`].
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    key: Range<u32>,
    name: Range<u32>,
    /// The name carried the `*` marker: an event ("collated") counter.
    pub event: bool,
    /// Time and value(s): `Sample::value(time, v)` for 2- and 3-field lines, the
    /// bucket for 7-field lines.
    pub sample: Sample,
}

/// A record with its strings resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecordRef<'a> {
    /// The counter's key: caret-expanded, `*` marker removed, munged. Always ASCII
    /// `0x21..=0x7E`; may still contain a `*` that was not the first byte (reference).
    pub key: &'a str,
    /// The caret-expanded name before munging, with the `*` kept: what agent
    /// forwarding sends (docs/interfaces.md §2.5, last paragraph).
    pub name: &'a [u8],
    pub event: bool,
    pub sample: Sample,
}

/// Reusable output buffer of [`parse_line`]: records plus two arenas holding their
/// keys and names. Clear it between batches; its allocations are kept.
#[derive(Debug, Default, Clone)]
pub struct ParsedBatch {
    keys: String,
    names: Vec<u8>,
    records: Vec<Record>,
}

impl ParsedBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Drop all records, keeping the allocations.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.names.clear();
        self.records.clear();
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The munged key of a record of this batch.
    pub fn key(&self, r: &Record) -> &str {
        &self.keys[r.key.start as usize..r.key.end as usize]
    }

    /// The unmunged, caret-expanded name (with `*`) of a record of this batch.
    pub fn name(&self, r: &Record) -> &[u8] {
        &self.names[r.name.start as usize..r.name.end as usize]
    }

    pub fn get(&self, i: usize) -> Option<RecordRef<'_>> {
        self.records.get(i).map(|r| self.resolve(r))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = RecordRef<'_>> + '_ {
        self.records.iter().map(move |r| self.resolve(r))
    }

    fn resolve(&self, r: &Record) -> RecordRef<'_> {
        RecordRef {
            key: self.key(r),
            name: self.name(r),
            event: r.event,
            sample: r.sample,
        }
    }
}

/// C `isspace()` in the "C" locale: SP, HT, LF, VT, FF, CR.
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Classify and parse one command (docs/interfaces.md §2.3–2.7). Records of a counter line
/// are appended to `batch`; nothing is appended unless the outcome is
/// [`LineOutcome::Samples`]. `now` is the time of 2-field lines.
pub fn parse_line<'a>(line: &'a [u8], now: i64, batch: &mut ParsedBatch) -> LineOutcome<'a> {
    match line.first() {
        None => LineOutcome::Empty,
        Some(b'#') => parse_meta(line),
        Some(b'@' | b'$' | b'%' | b'&' | b';' | b':') => LineOutcome::Reserved,
        Some(_) => parse_counter(line, now, batch),
    }
}

/// `#key value` (reference `handle_meta_info`: `split` at the first space, `trim` both
/// halves, drop the `#`). Because the `#` is still in front while trimming, only
/// trailing whitespace is removed from the key.
fn parse_meta(line: &[u8]) -> LineOutcome<'_> {
    match line.iter().position(|&b| b == b' ') {
        None => LineOutcome::Bad {
            reason: BadReason::BadMeta,
            count: 1,
        },
        Some(sp) => LineOutcome::Meta {
            key: trim_end(&line[1..sp]),
            value: trim(&line[sp + 1..]),
        },
    }
}

fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if !is_space(*last) {
            break;
        }
        s = rest;
    }
    s
}

fn trim(mut s: &[u8]) -> &[u8] {
    s = trim_end(s);
    while let [first, rest @ ..] = s {
        if !is_space(*first) {
            break;
        }
        s = rest;
    }
    s
}

/// Fields of a counter line: at most 7 are kept (reference `parts[7]`).
struct Fields<'a> {
    parts: [&'a [u8]; 7],
    n: usize,
    extra: bool,
}

fn split_fields(line: &[u8]) -> Fields<'_> {
    let mut f = Fields {
        parts: [&[]; 7],
        n: 0,
        extra: false,
    };
    let mut i = 0;
    let len = line.len();
    loop {
        while i < len && is_space(line[i]) {
            i += 1;
        }
        if i == len {
            break;
        }
        let start = i;
        while i < len && !is_space(line[i]) {
            i += 1;
        }
        if f.n == f.parts.len() {
            f.extra = true;
            break;
        }
        f.parts[f.n] = &line[start..i];
        f.n += 1;
    }
    f
}

fn parse_counter<'a>(line: &'a [u8], now: i64, batch: &mut ParsedBatch) -> LineOutcome<'a> {
    let fields = split_fields(line);
    let n = fields.n;
    if n < 2 {
        return LineOutcome::Bad {
            reason: BadReason::BadFormat,
            count: 1,
        };
    }
    let raw = fields.parts[0];

    // First pass over the expansion: count and check, write nothing.
    let mut names = 0u32;
    let mut recorded = 0u32;
    let mut total = 0usize;
    let mut empty_component = false;
    for e in CaretExpansion::new(raw) {
        names += 1;
        total += e.len();
        let (_, body) = split_marker(&e);
        match body {
            Body::StarOnly => {}
            Body::Name => {
                recorded += 1;
                empty_component |= e.has_empty_component();
            }
        }
        if total > MAX_EXPANSION_BYTES {
            break;
        }
    }

    if !matches!(n, 2 | 3 | 7) {
        // The reference bumps `commands.bad` once per expanded name (4..6 fields), and
        // not at all when the name expands to nothing.
        return if names == 0 {
            LineOutcome::NoCounter
        } else {
            LineOutcome::Bad {
                reason: BadReason::BadFormat,
                count: names,
            }
        };
    }
    if names == 0 {
        // The reference parses the numbers once per expanded name: none, no error.
        return LineOutcome::NoCounter;
    }
    if total > MAX_EXPANSION_BYTES {
        return bad(BadReason::ExpansionTooLarge);
    }
    if empty_component {
        return bad(BadReason::EmptyNameComponent);
    }
    let sample = match parse_sample(&fields.parts[1..n], now) {
        Ok(s) => s,
        Err(reason) => return bad(reason),
    };
    if recorded == 0 {
        return LineOutcome::NoCounter;
    }
    if batch.names.len() + total > u32::MAX as usize {
        // Only reachable when a caller never clears its batch.
        return bad(BadReason::ExpansionTooLarge);
    }

    // Second pass: write keys, names and records.
    batch.records.reserve(recorded as usize);
    for e in CaretExpansion::new(raw) {
        let (event, body) = split_marker(&e);
        if let Body::StarOnly = body {
            continue;
        }
        let name_start = batch.names.len();
        e.write_to(&mut batch.names);
        let name_end = batch.names.len();
        let key_start = batch.keys.len();
        let skip = usize::from(event);
        // Munged a chunk at a time: pushed char by char, this was 2 % of a daemon
        // taking 1.5 M samples/s.
        for chunk in batch.names[name_start + skip..name_end].chunks(64) {
            let mut munged = [0u8; 64];
            for (m, &b) in munged.iter_mut().zip(chunk) {
                *m = munge_byte(b);
            }
            let munged = &munged[..chunk.len()];
            match std::str::from_utf8(munged) {
                Ok(ascii) => batch.keys.push_str(ascii),
                // munge_byte gives ASCII only; kept whole were it ever to change.
                Err(_) => batch.keys.extend(munged.iter().map(|&b| b as char)),
            }
        }
        let key_end = batch.keys.len();
        batch.records.push(Record {
            key: key_start as u32..key_end as u32,
            name: name_start as u32..name_end as u32,
            event,
            sample,
        });
    }
    LineOutcome::Samples {
        added: recorded,
        name: raw,
        extra_fields: fields.extra,
    }
}

fn bad<'a>(reason: BadReason) -> LineOutcome<'a> {
    LineOutcome::Bad { reason, count: 1 }
}

/// The fields after the name: `value`, `time value`, or
/// `time sum sumsq min max count`.
fn parse_sample(f: &[&[u8]], now: i64) -> Result<Sample, BadReason> {
    match *f {
        [v] => Ok(Sample::value(
            now,
            parse_value(v).ok_or(BadReason::BadNumber)?,
        )),
        [t, v] => {
            let time = parse_time(t).ok_or(BadReason::BadNumber)?;
            Ok(Sample::value(
                time,
                parse_value(v).ok_or(BadReason::BadNumber)?,
            ))
        }
        [t, sum, sum_sq, min, max, count] => {
            let time = parse_time(t).ok_or(BadReason::BadNumber)?;
            let sum = parse_value(sum).ok_or(BadReason::BadNumber)?;
            let sum_sq = parse_value(sum_sq).ok_or(BadReason::BadNumber)?;
            let min = parse_value(min).ok_or(BadReason::BadNumber)?;
            let max = parse_value(max).ok_or(BadReason::BadNumber)?;
            let count = parse_count(count)?;
            Ok(Sample {
                time,
                sum,
                sum_sq,
                min,
                max,
                count,
            })
        }
        _ => Err(BadReason::BadFormat),
    }
}
