//! The stat port line protocol (interfaces.md §2): framing of TCP streams and UDP
//! datagrams, classification and parsing of commands, counter-name caret expansion and
//! munging, and the host blacklist.
//!
//! Everything here is pure: bytes in, values out. No I/O, no clocks (the caller passes
//! `now`), no counters (outcomes say what the caller has to count).
//!
//! Reference: imvu-open/istatd `daemon/StatServer.cpp` (`handle_inputData`,
//! `handleCmd`, `handle_counter_cmd`, `handle_meta_info`, `on_udp_recv`, `to_double`),
//! `lib/strfunc.cpp` (`extract_ctrs`, `munge`, `split`, `trim`), `daemon/StatStore.cpp`
//! (`openCounter`: the `*` marker), `daemon/Blacklist.cpp`.
//!
//! Hot path: [`parse_line`] appends to a caller-owned [`ParsedBatch`] whose two string
//! arenas and record vector are reused between batches, so steady-state parsing does
//! not allocate per sample. [`LineSplitter::push`] hands out lines borrowed from the
//! pushed chunk and copies only a line that straddles two chunks.

use std::collections::HashSet;
use std::ops::{ControlFlow, Range};

use istatd_storage::counter::Sample;

// compat: old path, removed at merge
pub use crate::metrics::localstats::{local_stats_suffix, next_local_stats_time};

/// Longest TCP command accepted (bytes before the LF, a CR included). Port limit,
/// interfaces.md §2.8; the reference has none.
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// A UDP datagram shorter than this is rejected whole (reference `on_udp_recv`).
pub const MIN_DATAGRAM_LEN: usize = 5;

/// The reference's UDP receive buffer; a longer datagram is rejected.
pub const MAX_DATAGRAM_LEN: usize = 65536;

/// Port limit (not in the reference, not in the spec): the total length of the names one
/// line's caret expansion may produce. `a^b^c...` multiplies the base by the number of
/// segments, so without a cap one 64 KiB line could expand to about 512 MiB of names.
pub const MAX_EXPANSION_BYTES: usize = 256 * 1024;

/// Capacity above which an emptied TCP line buffer is released instead of kept.
const KEEP_CAPACITY: usize = 16 * 1024;

// ---------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------

/// Why a command was rejected. Every reason is counted in
/// `istatd.statserver.commands.bad` (see [`LineOutcome::bad_commands`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BadReason {
    /// A counter line with 0, 1, 4, 5 or 6 fields (log `Bad format in received stat`).
    /// Includes the unimplemented event lines (`!name|...`).
    BadFormat,
    /// A value, time or count field that does not parse (reference: bad lexical cast,
    /// not counted; port fix 4: counted).
    BadNumber,
    /// A 7-field line whose count is negative (reference wraps it; port fix 5).
    NegativeCount,
    /// An expanded name (after removing the `*` marker) with an empty dot-component:
    /// leading, trailing or doubled `.` (port fix 6).
    EmptyNameComponent,
    /// The caret expansion would exceed [`MAX_EXPANSION_BYTES`] (port limit).
    ExpansionTooLarge,
    /// A `#` line without a space (log `Bad format meta info:`).
    BadMeta,
    /// A TCP line longer than the splitter's limit, discarded up to its LF (§2.8).
    LineTooLong,
    /// A one-byte non-whitespace UDP segment (port fix 2).
    ShortSegment,
}

impl BadReason {
    /// Short text for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::BadFormat => "bad format (expected 2, 3 or 7 fields)",
            BadReason::BadNumber => "bad number",
            BadReason::NegativeCount => "negative count",
            BadReason::EmptyNameComponent => "empty name component",
            BadReason::ExpansionTooLarge => "caret expansion too large",
            BadReason::BadMeta => "bad format meta info",
            BadReason::LineTooLong => "line too long",
            BadReason::ShortSegment => "one-byte segment",
        }
    }
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one command was, and what the caller has to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome<'a> {
    /// A zero-length command (`\n\n`): ignored silently.
    Empty,
    /// A counter line with 2, 3 or 7 (or more) fields: `added` records were appended to
    /// the batch (always at least 1; they are the batch's last `added` records).
    Samples {
        added: u32,
        /// The raw first field, before caret expansion (what the Prometheus exporter
        /// calls the counter; its base is the text before the first `^`).
        name: &'a [u8],
        /// The line had more than 7 fields; the rest were ignored (reference logs
        /// `Unknown field in received stat`).
        extra_fields: bool,
    },
    /// A counter line that records nothing and counts nothing: its name expands to no
    /// name at all (`^`), or only to `*`.
    NoCounter,
    /// `#key value`: store `key` → `value` in the connection's meta record and, in
    /// forwarding mode, forward the line unchanged. `key` is the text between `#` and
    /// the first space with trailing whitespace removed; `value` is the rest, trimmed.
    Meta { key: &'a [u8], value: &'a [u8] },
    /// First byte one of `@ $ % & ; :`: log `Unknown reserved command:` and count
    /// `istatd.statserver.commands.reserved`.
    Reserved,
    /// A bad command: add `count` to `istatd.statserver.commands.bad` (the reference
    /// counts a 4..6-field line once per expanded name; everything else counts 1).
    Bad { reason: BadReason, count: u32 },
}

impl LineOutcome<'_> {
    /// How much this outcome adds to `istatd.statserver.commands.bad`.
    pub fn bad_commands(&self) -> u32 {
        match self {
            LineOutcome::Bad { count, .. } => *count,
            _ => 0,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Framing
// ---------------------------------------------------------------------------------------

/// One framed command, or a framing-level bad command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// The command's bytes, without the LF (a CR before the LF is kept). May be empty.
    Line(&'a [u8]),
    /// Not a command: [`BadReason::LineTooLong`] (TCP) or [`BadReason::ShortSegment`]
    /// (UDP). Counts once in `istatd.statserver.commands.bad`.
    Bad(BadReason),
}

/// Splits a TCP byte stream into commands at LF (interfaces.md §2.2), with the port's
/// line-length limit (§2.8).
///
/// Only an unterminated tail is buffered, and never more than the limit: once a line is
/// longer, its bytes are dropped as they arrive and it is reported as
/// [`Frame::Bad`]`(`[`BadReason::LineTooLong`]`)` when its LF arrives. When the
/// connection closes, an unterminated tail is discarded silently (reference).
#[derive(Debug)]
pub struct LineSplitter {
    buf: Vec<u8>,
    limit: usize,
    discarding: bool,
    overlong: u64,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSplitter {
    /// A splitter with the port's limit, [`MAX_LINE_LEN`].
    pub fn new() -> Self {
        Self::with_limit(MAX_LINE_LEN)
    }

    /// A splitter that accepts commands of at most `limit` bytes (LF not counted).
    pub fn with_limit(limit: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            limit,
            discarding: false,
            overlong: 0,
        }
    }

    /// The longest command accepted.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes of the unterminated tail held (at most [`limit`](Self::limit)).
    pub fn pending_len(&self) -> usize {
        self.buf.len()
    }

    /// Capacity of the internal buffer (at most [`limit`](Self::limit)).
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Whether an over-long line is being dropped, waiting for its LF.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Over-long lines reported so far.
    pub fn overlong_lines(&self) -> u64 {
        self.overlong
    }

    /// Forget the unterminated tail (the connection closed).
    pub fn reset(&mut self) {
        self.buf = Vec::new();
        self.discarding = false;
    }

    /// Feed the next bytes read from the connection; `f` gets every command completed
    /// by them, in order. Lines inside `chunk` are borrowed from it, not copied.
    pub fn push(&mut self, chunk: &[u8], mut f: impl FnMut(Frame<'_>)) {
        let _ = self.try_push(chunk, |frame| {
            f(frame);
            ControlFlow::Continue(())
        });
    }

    /// Like [`push`](Self::push), but `f` may stop the handling (the reference stops
    /// handling a connection's buffer once its host is blacklisted). On `Break` the
    /// rest of `chunk` and the buffered tail are dropped and `Break` is returned; the
    /// splitter is then as after [`reset`](Self::reset).
    pub fn try_push(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(Frame<'_>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut rest = chunk;
        // Finish the line that straddles the previous chunk(s), if any.
        if self.discarding || !self.buf.is_empty() {
            match find_lf(rest) {
                None => {
                    self.absorb_tail(rest);
                    return ControlFlow::Continue(());
                }
                Some(i) => {
                    let part = &rest[..i];
                    rest = &rest[i + 1..];
                    let flow = if self.discarding || self.buf.len() + part.len() > self.limit {
                        self.discarding = false;
                        self.clear_buf();
                        self.overlong += 1;
                        f(Frame::Bad(BadReason::LineTooLong))
                    } else {
                        self.append(part);
                        let flow = f(Frame::Line(&self.buf));
                        self.clear_buf();
                        flow
                    };
                    if flow.is_break() {
                        self.reset();
                        return flow;
                    }
                }
            }
        }
        // Lines wholly inside the chunk.
        while let Some(i) = find_lf(rest) {
            let line = &rest[..i];
            rest = &rest[i + 1..];
            let flow = if line.len() > self.limit {
                self.overlong += 1;
                f(Frame::Bad(BadReason::LineTooLong))
            } else {
                f(Frame::Line(line))
            };
            if flow.is_break() {
                self.reset();
                return flow;
            }
        }
        self.absorb_tail(rest);
        ControlFlow::Continue(())
    }

    /// Keep bytes that have no LF yet (or drop them, for an over-long line).
    fn absorb_tail(&mut self, tail: &[u8]) {
        if tail.is_empty() || self.discarding {
            return;
        }
        if self.buf.len() + tail.len() > self.limit {
            self.discarding = true;
            self.clear_buf();
        } else {
            self.append(tail);
        }
    }

    /// Append within the limit, growing the capacity no further than the limit.
    fn append(&mut self, bytes: &[u8]) {
        let need = self.buf.len() + bytes.len();
        debug_assert!(need <= self.limit);
        if need > self.buf.capacity() {
            let target = need
                .max(self.buf.capacity().saturating_mul(2))
                .max(256)
                .min(self.limit)
                .max(need);
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(bytes);
    }

    fn clear_buf(&mut self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

fn find_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// Why a whole UDP datagram was rejected (log `Bad UDP port <port> packet received
/// from <ip:port>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadDatagram {
    /// Shorter than [`MIN_DATAGRAM_LEN`] bytes.
    TooShort,
    /// Longer than [`MAX_DATAGRAM_LEN`] bytes.
    TooLong,
    /// The last byte is not LF.
    NoFinalNewline,
}

/// The commands of one UDP datagram (interfaces.md §2.2), or why the whole datagram is
/// rejected. Port fix 2: every LF-terminated segment is an independent command; empty
/// segments and one-byte whitespace segments are skipped, a one-byte non-whitespace
/// segment is [`Frame::Bad`]`(`[`BadReason::ShortSegment`]`)`.
pub fn split_datagram(datagram: &[u8]) -> Result<DatagramFrames<'_>, BadDatagram> {
    if datagram.len() < MIN_DATAGRAM_LEN {
        return Err(BadDatagram::TooShort);
    }
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(BadDatagram::TooLong);
    }
    if datagram.last() != Some(&b'\n') {
        return Err(BadDatagram::NoFinalNewline);
    }
    Ok(DatagramFrames { rest: datagram })
}

/// Iterator over a datagram's commands; see [`split_datagram`].
#[derive(Debug, Clone)]
pub struct DatagramFrames<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for DatagramFrames<'a> {
    type Item = Frame<'a>;

    fn next(&mut self) -> Option<Frame<'a>> {
        while let Some(i) = find_lf(self.rest) {
            let seg = &self.rest[..i];
            self.rest = &self.rest[i + 1..];
            match seg {
                [] => {}
                [b] if is_space(*b) => {}
                [_] => return Some(Frame::Bad(BadReason::ShortSegment)),
                _ => return Some(Frame::Line(seg)),
            }
        }
        // split_datagram guarantees a final LF, so nothing is left unterminated.
        self.rest = &[];
        None
    }
}

// ---------------------------------------------------------------------------------------
// Parsed records
// ---------------------------------------------------------------------------------------

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
    /// forwarding sends (interfaces.md §2.5, last paragraph).
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

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// C `isspace()` in the "C" locale: SP, HT, LF, VT, FF, CR.
#[inline]
pub fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Classify and parse one command (interfaces.md §2.3–2.7). Records of a counter line
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
        batch.keys.extend(
            batch.names[name_start + skip..name_end]
                .iter()
                .map(|&b| munge_byte(b) as char),
        );
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

// ---------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------

/// A `value`, `sum`, `sumsq`, `min` or `max` field: the reference's `to_double`, i.e.
/// `boost::lexical_cast<double>` (boost 1.74, libstdc++) after mapping the exact strings
/// `nan`, `NaN`, `-nan`, `-NaN` (and the empty string) to 0.
///
/// Accepted: `[+-]? digits [. digits] [(e|E) [+-]? digits]` with at least one mantissa
/// digit (`5.`, `.5`, `+5`, `1e3`), whose value is finite (libstdc++'s `num_get` fails
/// on overflow, so `1e400` is rejected; underflow gives 0 or a denormal); `inf` and
/// `infinity` in any case with an optional sign; any other `nan` spelling (any case,
/// optional sign, optional `(...)` suffix) gives NaN. Rejected: whitespace, hex,
/// `1e`, `1e+`, `.`, `,` and anything else.
pub fn parse_value(f: &[u8]) -> Option<f64> {
    if matches!(f, b"nan" | b"NaN" | b"-nan" | b"-NaN" | b"") {
        return Some(0.0);
    }
    if let Some(v) = parse_inf_nan(f) {
        return Some(v);
    }
    let len = f.len();
    let mut i = 0;
    if matches!(f.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let mut mantissa = false;
    let mut dot = false;
    while i < len {
        match f[i] {
            b'0'..=b'9' => mantissa = true,
            b'.' if !dot => dot = true,
            _ => break,
        }
        i += 1;
    }
    if !mantissa {
        return None;
    }
    if i < len && (f[i] == b'e' || f[i] == b'E') {
        i += 1;
        if i < len && (f[i] == b'+' || f[i] == b'-') {
            i += 1;
        }
        let digits = i;
        while i < len && f[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits {
            return None;
        }
    }
    if i != len {
        return None;
    }
    let v: f64 = std::str::from_utf8(f).ok()?.parse().ok()?;
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// boost's `parse_inf_nan`: optional sign, then `nan` (any case) optionally followed by
/// `(...)`, or exactly `inf` / `infinity` (any case).
fn parse_inf_nan(f: &[u8]) -> Option<f64> {
    let (neg, rest) = match f {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, f),
    };
    if rest.len() < 3 {
        return None;
    }
    let v = if rest[..3].eq_ignore_ascii_case(b"nan") {
        let tail = &rest[3..];
        if !tail.is_empty() && (tail.len() < 2 || tail[0] != b'(' || tail[tail.len() - 1] != b')') {
            return None;
        }
        f64::NAN
    } else if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

/// `[+-]? digits` as an unsigned magnitude; `None` when empty, not digits, or above
/// `u64::MAX` (boost `lcast_ret_unsigned`; leading zeros are fine).
fn parse_magnitude(f: &[u8]) -> Option<(bool, u64)> {
    let (neg, digits) = match f {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, f),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some((neg, v))
}

/// A `time` field: `boost::lexical_cast<time_t>`: `[+-]? digits` within the range of a
/// signed 64-bit integer (`12.5`, `1e3`, ` 5` rejected).
pub fn parse_time(f: &[u8]) -> Option<i64> {
    let (neg, mag) = parse_magnitude(f)?;
    if neg {
        if mag > 1u64 << 63 {
            None
        } else {
            Some(0u64.wrapping_sub(mag) as i64)
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// A `count` field: `boost::lexical_cast<size_t>`: `[+-]? digits` up to `u64::MAX`.
/// Port fix 5: a negative count (which the reference wraps) is
/// [`BadReason::NegativeCount`]; `-0` is 0.
pub fn parse_count(f: &[u8]) -> Result<u64, BadReason> {
    match parse_magnitude(f) {
        None => Err(BadReason::BadNumber),
        Some((true, m)) if m != 0 => Err(BadReason::NegativeCount),
        Some((_, m)) => Ok(m),
    }
}

// ---------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------

/// One name of a caret expansion: `base.seg`, `seg` (empty base), or `base` (trailing
/// caret).
#[derive(Debug, Clone, Copy)]
struct Expanded<'a> {
    base: &'a [u8],
    seg: Option<&'a [u8]>,
}

impl Expanded<'_> {
    fn len(&self) -> usize {
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

    fn write_to(&self, out: &mut Vec<u8>) {
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
    fn has_empty_component(&self) -> bool {
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

enum Body {
    /// The name is just `*`: ignored (reference `StatStore::openCounter`).
    StarOnly,
    Name,
}

fn split_marker(e: &Expanded<'_>) -> (bool, Body) {
    let len = e.len();
    if len > 0 && e.byte(0) == b'*' {
        (true, if len == 1 { Body::StarOnly } else { Body::Name })
    } else {
        (false, Body::Name)
    }
}

/// The caret expansion of `extract_ctrs` (interfaces.md §2.5 step 1) with port fix 1
/// (empty segments skipped instead of looping forever).
#[derive(Debug, Clone)]
struct CaretExpansion<'a> {
    base: &'a [u8],
    /// What follows the current caret; `None` when done.
    rest: Option<&'a [u8]>,
    single: Option<&'a [u8]>,
}

impl<'a> CaretExpansion<'a> {
    fn new(raw: &'a [u8]) -> Self {
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
/// the hot path (that writes into a [`ParsedBatch`]).
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

// ---------------------------------------------------------------------------------------
// Blacklist
// ---------------------------------------------------------------------------------------

/// The host blacklist (interfaces.md §2.10, reference `daemon/Blacklist.cpp`): the set
/// of lines of the file, lower-cased, not trimmed, empty lines skipped. A connection is
/// blacklisted when the lower-cased value of its meta record's `hostname` key (a
/// trimmed meta value, §2.7) is exactly one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Blacklist {
    hosts: HashSet<Vec<u8>>,
}

impl Blacklist {
    /// Parse the file's text.
    pub fn parse(text: &str) -> Blacklist {
        Self::parse_bytes(text.as_bytes())
    }

    /// Parse the file's bytes (the reference does not care about encodings: a line is
    /// the bytes between LFs; a CR before an LF stays part of the name).
    pub fn parse_bytes(bytes: &[u8]) -> Blacklist {
        let hosts = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| l.to_ascii_lowercase())
            .collect();
        Blacklist { hosts }
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Whether `hostname` (a meta `hostname` value) is blacklisted: compared after ASCII
    /// lower-casing, exactly (no trimming, no pattern). The caller counts
    /// `istatd.blacklist.count` on a hit.
    pub fn contains(&self, hostname: impl AsRef<[u8]>) -> bool {
        let h = hostname.as_ref();
        if self.hosts.is_empty() {
            return false;
        }
        if h.iter().any(u8::is_ascii_uppercase) {
            self.hosts.contains(&h.to_ascii_lowercase())
        } else {
            self.hosts.contains(h)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn lines_tcp(split: &mut LineSplitter, chunks: &[&[u8]]) -> Vec<Result<Vec<u8>, BadReason>> {
        let mut out = Vec::new();
        for c in chunks {
            split.push(c, |f| match f {
                Frame::Line(l) => out.push(Ok(l.to_vec())),
                Frame::Bad(r) => out.push(Err(r)),
            });
        }
        out
    }

    fn ok(s: &[u8]) -> Result<Vec<u8>, BadReason> {
        Ok(s.to_vec())
    }

    /// key, name, event, sample
    type Rec = (String, Vec<u8>, bool, Sample);

    fn parse(line: &str) -> (LineOutcome<'_>, Vec<Rec>) {
        let mut b = ParsedBatch::new();
        let o = parse_line(line.as_bytes(), NOW, &mut b);
        let recs = b
            .iter()
            .map(|r| (r.key.to_owned(), r.name.to_vec(), r.event, r.sample))
            .collect();
        (o, recs)
    }

    fn keys(line: &str) -> Vec<String> {
        let (o, recs) = parse(line);
        assert!(matches!(o, LineOutcome::Samples { .. }), "{line:?}: {o:?}");
        recs.into_iter().map(|r| r.0).collect()
    }

    fn names(line: &str) -> Vec<String> {
        let (_, recs) = parse(line);
        recs.into_iter()
            .map(|r| String::from_utf8(r.1).unwrap())
            .collect()
    }

    fn bad_reason(line: &[u8]) -> Option<(BadReason, u32)> {
        let mut b = ParsedBatch::new();
        match parse_line(line, NOW, &mut b) {
            LineOutcome::Bad { reason, count } => {
                assert!(b.is_empty());
                Some((reason, count))
            }
            _ => None,
        }
    }

    // ---- framing (§2.2) ----

    #[test]
    fn tcp_lines_keep_cr_and_hold_tail() {
        let mut s = LineSplitter::new();
        // The reference's own unit test: "foo bar\r\nbaz blorg\r\n".
        assert_eq!(
            lines_tcp(&mut s, &[b"foo bar\r\nbaz blorg\r\n"]),
            vec![ok(b"foo bar\r"), ok(b"baz blorg\r")]
        );
        assert_eq!(
            lines_tcp(&mut s, &[b"a 1\nb", b" 2", b"\n", b"c 3"]),
            vec![ok(b"a 1"), ok(b"b 2")]
        );
        assert_eq!(s.pending_len(), 3);
        s.reset(); // peer closed: unterminated tail discarded
        assert_eq!(s.pending_len(), 0);
        assert_eq!(lines_tcp(&mut s, &[b"\n"]), vec![ok(b"")]);
    }

    #[test]
    fn tcp_empty_and_cr_only_lines() {
        let mut s = LineSplitter::new();
        let got = lines_tcp(&mut s, &[b"\n\n\r\n"]);
        assert_eq!(got, vec![ok(b""), ok(b""), ok(b"\r")]);
        let mut b = ParsedBatch::new();
        assert_eq!(parse_line(b"", NOW, &mut b), LineOutcome::Empty);
        assert_eq!(bad_reason(b"\r"), Some((BadReason::BadFormat, 1)));
    }

    #[test]
    fn tcp_line_limit() {
        let mut s = LineSplitter::with_limit(8);
        // Exactly the limit is fine; one more is dropped and counted, up to its LF.
        let got = lines_tcp(&mut s, &[b"12345678\n123456789\nok 1\n"]);
        assert_eq!(
            got,
            vec![ok(b"12345678"), Err(BadReason::LineTooLong), ok(b"ok 1")]
        );
        // Straddling chunks.
        let got = lines_tcp(&mut s, &[b"1234", b"5678", b"\n"]);
        assert_eq!(got, vec![ok(b"12345678")]);
        let got = lines_tcp(&mut s, &[b"1234", b"56789", b"abc", b"def\nx 1\n"]);
        assert_eq!(got, vec![Err(BadReason::LineTooLong), ok(b"x 1")]);
        assert!(s.pending_len() <= 8);
        // Over the limit inside a chunk while straddling, then LF in the same chunk.
        let got = lines_tcp(&mut s, &[b"12345", b"6789\n"]);
        assert_eq!(got, vec![Err(BadReason::LineTooLong)]);
        // A long unterminated tail is never buffered.
        lines_tcp(&mut s, &[&[b'x'; 100]]);
        assert!(s.is_discarding());
        assert_eq!(s.pending_len(), 0);
        assert_eq!(s.overlong_lines(), 3);
        assert!(s.buffer_capacity() <= 8);
        let got = lines_tcp(&mut s, &[b"yy\nz 1\n"]);
        assert_eq!(got, vec![Err(BadReason::LineTooLong), ok(b"z 1")]);
        assert!(!s.is_discarding());
        assert_eq!(MAX_LINE_LEN, 65536);
        assert_eq!(LineSplitter::new().limit(), 65536);
    }

    #[test]
    fn tcp_default_limit_64k() {
        let mut s = LineSplitter::new();
        let mut ok_line = vec![b'a'; MAX_LINE_LEN];
        ok_line.push(b'\n');
        let mut long_line = vec![b'a'; MAX_LINE_LEN + 1];
        long_line.push(b'\n');
        let mut n = (0, 0);
        for chunk in ok_line.chunks(16384).chain(long_line.chunks(16384)) {
            s.push(chunk, |f| match f {
                Frame::Line(l) => {
                    assert_eq!(l.len(), MAX_LINE_LEN);
                    n.0 += 1
                }
                Frame::Bad(BadReason::LineTooLong) => n.1 += 1,
                Frame::Bad(_) => unreachable!(),
            });
            assert!(s.pending_len() <= MAX_LINE_LEN);
            assert!(s.buffer_capacity() <= MAX_LINE_LEN);
        }
        assert_eq!(n, (1, 1));
    }

    #[test]
    fn tcp_try_push_break_drops_rest() {
        let mut s = LineSplitter::new();
        let mut seen = Vec::new();
        let flow = s.try_push(b"#hostname bad\nx 1\ny 2\npartial", |f| {
            seen.push(f.clone_line());
            if seen.len() == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert!(flow.is_break());
        assert_eq!(seen, vec![b"#hostname bad".to_vec(), b"x 1".to_vec()]);
        assert_eq!(s.pending_len(), 0);
    }

    impl Frame<'_> {
        fn clone_line(&self) -> Vec<u8> {
            match self {
                Frame::Line(l) => l.to_vec(),
                Frame::Bad(_) => b"<bad>".to_vec(),
            }
        }
    }

    fn udp(d: &[u8]) -> Result<Vec<Vec<u8>>, BadDatagram> {
        split_datagram(d).map(|it| it.map(|f| f.clone_line()).collect())
    }

    #[test]
    fn udp_datagrams() {
        assert_eq!(udp(b"a 1\n"), Err(BadDatagram::TooShort)); // 4 bytes
        assert_eq!(udp(b"ab 1\n"), Ok(vec![b"ab 1".to_vec()])); // 5 bytes
        assert_eq!(udp(b"ab 12"), Err(BadDatagram::NoFinalNewline));
        assert_eq!(
            udp(b"x 1\ny 2\nlast"),
            Err(BadDatagram::NoFinalNewline),
            "an unterminated last line rejects the whole datagram"
        );
        let mut big = vec![b'a'; MAX_DATAGRAM_LEN];
        *big.last_mut().unwrap() = b'\n';
        assert_eq!(udp(&big).unwrap().len(), 1);
        big.insert(0, b'a');
        assert_eq!(udp(&big), Err(BadDatagram::TooLong));
        // Port fix 2: the spec's example handles both `x 1` and `udp.h 8`; the 1-byte
        // `y` is a bad command of its own.
        assert_eq!(
            udp(b"x 1\ny\nudp.h 8\n"),
            Ok(vec![
                b"x 1".to_vec(),
                b"<bad>".to_vec(),
                b"udp.h 8".to_vec()
            ])
        );
        // Empty and 1-byte whitespace segments are skipped; CR is kept.
        assert_eq!(
            udp(b"\n\r\n\nab 1\r\n \n#m v\n"),
            Ok(vec![b"ab 1\r".to_vec(), b"#m v".to_vec()])
        );
        let frames: Vec<_> = split_datagram(b"x 1\n@\n").unwrap().collect();
        assert_eq!(
            frames,
            vec![Frame::Line(b"x 1"), Frame::Bad(BadReason::ShortSegment)]
        );
    }

    // ---- classification (§2.3) ----

    #[test]
    fn classification() {
        let mut b = ParsedBatch::new();
        for c in [b'@', b'$', b'%', b'&', b';', b':'] {
            let line = [c, b'x', b' ', b'1'];
            assert_eq!(parse_line(&line, NOW, &mut b), LineOutcome::Reserved);
        }
        assert!(b.is_empty());
        // `*`, whitespace and `!` start counter lines.
        assert_eq!(keys("*ev 1"), vec!["ev"]);
        assert_eq!(keys("  \t lead.ws 1  \r"), vec!["lead.ws"]);
        // Events are not implemented: one field, bad format.
        assert_eq!(
            bad_reason(b"!test.event|superevent|testhost"),
            Some((BadReason::BadFormat, 1))
        );
        // `#` after whitespace is just a name.
        assert_eq!(keys(" #x 1"), vec!["#x"]);
    }

    // ---- meta (§2.7) ----

    #[test]
    fn meta_lines() {
        let mut b = ParsedBatch::new();
        let meta = |l: &'static [u8]| {
            let mut b = ParsedBatch::new();
            match parse_line(l, NOW, &mut b) {
                LineOutcome::Meta { key, value } => Some((key.to_vec(), value.to_vec())),
                _ => None,
            }
        };
        assert_eq!(
            meta(b"#hostname vm\r"),
            Some((b"hostname".to_vec(), b"vm".to_vec()))
        );
        assert_eq!(
            meta(b"#proto x 1 1\r"),
            Some((b"proto".to_vec(), b"x 1 1".to_vec()))
        );
        assert_eq!(
            meta(b"#custom meta val"),
            Some((b"custom".to_vec(), b"meta val".to_vec()))
        );
        assert_eq!(meta(b"#k "), Some((b"k".to_vec(), b"".to_vec())));
        assert_eq!(meta(b"#k\t  v  \t"), Some((b"k".to_vec(), b"v".to_vec())));
        assert_eq!(meta(b"# v"), Some((b"".to_vec(), b"v".to_vec())));
        // Leading whitespace of the key survives (the `#` shields it from trim).
        assert_eq!(meta(b"#\tk v"), Some((b"\tk".to_vec(), b"v".to_vec())));
        assert_eq!(meta(b"#a\tb c"), Some((b"a\tb".to_vec(), b"c".to_vec())));
        assert_eq!(bad_reason(b"#nometa"), Some((BadReason::BadMeta, 1)));
        assert_eq!(bad_reason(b"#nometa\r"), Some((BadReason::BadMeta, 1)));
        assert_eq!(bad_reason(b"#"), Some((BadReason::BadMeta, 1)));
        assert_eq!(bad_reason(b"#tab\tonly"), Some((BadReason::BadMeta, 1)));
        assert!(matches!(
            parse_line(b"#x y", NOW, &mut b),
            LineOutcome::Meta { .. }
        ));
        assert!(b.is_empty());
    }

    // ---- grammar (§2.4) ----

    #[test]
    fn field_count_forms() {
        let (o, r) = parse("plain.gauge 5");
        assert_eq!(
            o,
            LineOutcome::Samples {
                added: 1,
                name: b"plain.gauge",
                extra_fields: false
            }
        );
        assert_eq!(r[0].3, Sample::value(NOW, 5.0));
        assert!(!r[0].2);

        let (_, r) = parse("timed.g 995 1.5");
        assert_eq!(r[0].3, Sample::value(995, 1.5));

        let (_, r) = parse("full.g 1000 10 50 2 8 3");
        assert_eq!(
            r[0].3,
            Sample {
                time: 1000,
                sum: 10.0,
                sum_sq: 50.0,
                min: 2.0,
                max: 8.0,
                count: 3
            }
        );

        for l in ["one", "a 1 2 3", "a 1 2 3 4", "a 1 2 3 4 5", "   ", "\t\r"] {
            assert_eq!(
                bad_reason(l.as_bytes()),
                Some((BadReason::BadFormat, 1)),
                "{l:?}"
            );
        }
        // 4..6 fields: once per expanded name.
        assert_eq!(
            bad_reason(b"a^x^y^z 1 2 3"),
            Some((BadReason::BadFormat, 3))
        );
        // 8 or more fields: the first 7 are used.
        let (o, r) = parse("x 1000 10 50 2 8 3 junk more");
        assert!(matches!(
            o,
            LineOutcome::Samples {
                added: 1,
                extra_fields: true,
                ..
            }
        ));
        assert_eq!(r[0].3.count, 3);
        // Any whitespace run separates; CR LF VT FF count as whitespace.
        let (_, r) = parse("ws.g\t\x0b1000 \x0c 7\r");
        assert_eq!(r[0].3, Sample::value(1000, 7.0));
    }

    #[test]
    fn value_syntax() {
        let v = |s: &str| parse_value(s.as_bytes());
        assert_eq!(v("1e3"), Some(1000.0));
        assert_eq!(v("+5"), Some(5.0));
        assert_eq!(v(".5"), Some(0.5));
        assert_eq!(v("5."), Some(5.0));
        assert_eq!(v("-.5e-1"), Some(-0.05));
        assert_eq!(v("1E+2"), Some(100.0));
        assert_eq!(v("007"), Some(7.0));
        assert_eq!(v("-0"), Some(-0.0));
        assert_eq!(v("inf"), Some(f64::INFINITY));
        assert_eq!(v("-Infinity"), Some(f64::NEG_INFINITY));
        assert_eq!(v("+INF"), Some(f64::INFINITY));
        for z in ["nan", "NaN", "-nan", "-NaN"] {
            assert_eq!(v(z).map(f64::to_bits), Some(0.0f64.to_bits()), "{z}");
        }
        // Other NaN spellings are NaN (boost parse_inf_nan), not 0.
        for n in ["NAN", "nAn", "+nan", "-NAN", "nan()", "nan(123)"] {
            assert!(v(n).unwrap().is_nan(), "{n}");
        }
        for bad in [
            "0x10",
            "1e",
            "1e+",
            "1e-",
            "e5",
            ".",
            "+",
            "-",
            "1.2.3",
            "1,5",
            "1e5.5",
            "1e5e5",
            " 1",
            "1 ",
            "infin",
            "infinityx",
            "nanx",
            "nan(",
            "nan(x",
            "--1",
            "+-1",
            "1e400",
            "-1e400",
            "1f",
            "½",
            "١",
        ] {
            assert_eq!(v(bad), None, "{bad:?}");
        }
        assert_eq!(v(""), Some(0.0)); // never a field; the reference's to_double("") is 0
        assert_eq!(v("1e-400"), Some(0.0)); // underflow accepted
        assert_eq!(v("1.7976931348623157e308"), Some(f64::MAX));
        assert_eq!(v("0.1"), Some(0.1));
    }

    #[test]
    fn time_and_count_syntax() {
        let t = |s: &str| parse_time(s.as_bytes());
        assert_eq!(t("1000"), Some(1000));
        assert_eq!(t("+5"), Some(5));
        assert_eq!(t("-5"), Some(-5));
        assert_eq!(t("0005"), Some(5));
        assert_eq!(t("9223372036854775807"), Some(i64::MAX));
        assert_eq!(t("-9223372036854775808"), Some(i64::MIN));
        for bad in [
            "12.5",
            "1e3",
            "",
            "+",
            "-",
            "0x10",
            "9223372036854775808",
            "-9223372036854775809",
            " 1",
            "1a",
            "inf",
        ] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
        let c = |s: &str| parse_count(s.as_bytes());
        assert_eq!(c("3"), Ok(3));
        assert_eq!(c("+3"), Ok(3));
        assert_eq!(c("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(c("18446744073709551616"), Err(BadReason::BadNumber));
        assert_eq!(c("-1"), Err(BadReason::NegativeCount));
        assert_eq!(c("-0"), Ok(0));
        assert_eq!(c("1.0"), Err(BadReason::BadNumber));
        assert_eq!(c("-x"), Err(BadReason::BadNumber));

        assert_eq!(bad_reason(b"a 12.5 1"), Some((BadReason::BadNumber, 1)));
        assert_eq!(bad_reason(b"a 0x10"), Some((BadReason::BadNumber, 1)));
        assert_eq!(bad_reason(b"a x^y 1"), Some((BadReason::BadNumber, 1)));
        assert_eq!(
            bad_reason(b"a 1000 1 1 1 1 -1"),
            Some((BadReason::NegativeCount, 1))
        );
        assert_eq!(
            bad_reason(b"a 1000 1 1 1 1 1.5"),
            Some((BadReason::BadNumber, 1))
        );
        // A 7-field count of zero parses; the store rejects it (counter.rejected).
        let (_, r) = parse("a 1000 1 1 1 1 -0");
        assert_eq!(r[0].3.count, 0);
        // nan spellings in a line.
        let (_, r) = parse("a NaN");
        assert_eq!(r[0].3, Sample::value(NOW, 0.0));
    }

    // ---- names (§2.5) ----

    #[test]
    fn caret_table() {
        let table: &[(&str, &[&str])] = &[
            (
                "cpu.idle^host.a^class.b",
                &["cpu.idle.host.a", "cpu.idle.class.b"],
            ),
            (
                "test.other_counter^a^b^c",
                &[
                    "test.other_counter.a",
                    "test.other_counter.b",
                    "test.other_counter.c",
                ],
            ),
            ("*tep^tep_die^tep_die2", &["*tep.tep_die", "*tep.tep_die2"]),
            ("^lead^x", &["lead", "x"]),
            ("caret^a^b.c^", &["caret.a", "caret.b.c", "caret"]),
            ("plain", &["plain"]),
            ("a^", &["a"]),
            // Port fix 1: empty segments are skipped.
            ("a^^b", &["a.b"]),
            ("a^b^^c", &["a.b", "a.c"]),
            ("a^^", &["a"]),
            ("^^x", &["x"]),
            ("^", &[]),
            ("^^", &[]),
            ("^a^", &["a"]),
        ];
        for (raw, want) in table {
            let got: Vec<String> = caret_expand(raw.as_bytes())
                .into_iter()
                .map(|v| String::from_utf8(v).unwrap())
                .collect();
            assert_eq!(&got, want, "{raw}");
        }
        assert_eq!(
            keys("cpu.idle^host.a^class.b 1"),
            vec!["cpu.idle.host.a", "cpu.idle.class.b"]
        );
        assert_eq!(
            keys("caret^a^b.c^ 1"),
            vec!["caret.a", "caret.b.c", "caret"]
        );
        assert_eq!(keys("a^^b 1"), vec!["a.b"]);
        let (o, r) = parse("*tep^tep_die^tep_die2 1");
        assert!(matches!(o, LineOutcome::Samples { added: 2, .. }));
        assert_eq!(r[0].0, "tep.tep_die");
        assert_eq!(r[0].1, b"*tep.tep_die");
        assert!(r[0].2 && r[1].2);
        assert_eq!(r[1].0, "tep.tep_die2");
        // Every expanded name gets the same sample.
        assert_eq!(r[0].3, r[1].3);
    }

    #[test]
    fn munging() {
        assert_eq!(keys("Foo.Baz 1"), vec!["foo.baz"]);
        assert_eq!(keys("weird/na:me\\x\"q 1"), vec!["weird_na_me_x_q"]);
        assert_eq!(keys("it's 1"), vec!["it_s"]);
        assert_eq!(keys("\u{e9}t\u{e9}.n 1"), vec!["__t__.n"]);
        assert_eq!(keys("a\x01b\x7fc 1"), vec!["a_b_c"]);
        assert_eq!(
            keys("x!#$%&()*+,-;<=>?@[]`{|}~ 1"),
            vec!["x!#$%&()*+,-;<=>?@[]`{|}~"]
        );
        assert_eq!(munge(b"ABC.def_\x80\xff"), "abc.def___");
        // Forwarding gets the name before munging, `*` kept.
        assert_eq!(names("*Up.Case^Host/1 1"), vec!["*Up.Case.Host/1"]);
        assert_eq!(keys("*Up.Case^Host/1 1"), vec!["up.case.host_1"]);
        // Only a leading `*` is the marker; `**a` keeps one `*` in its key.
        let (_, r) = parse("**a 1");
        assert_eq!((r[0].0.as_str(), r[0].2), ("*a", true));
        let (_, r) = parse("a^*b 1");
        assert_eq!((r[0].0.as_str(), r[0].2), ("a.*b", false));
        let (_, r) = parse("^*b 1");
        assert_eq!((r[0].0.as_str(), r[0].2), ("b", true));
        for b in 0u8..=255 {
            let m = munge_byte(b);
            assert!((0x21..=0x7e).contains(&m));
            assert!(!m.is_ascii_uppercase());
        }
    }

    #[test]
    fn star_only_and_empty_expansions() {
        let mut b = ParsedBatch::new();
        assert_eq!(parse_line(b"* 1", NOW, &mut b), LineOutcome::NoCounter);
        assert_eq!(parse_line(b"*^ 1", NOW, &mut b), LineOutcome::NoCounter);
        assert_eq!(parse_line(b"^ 1", NOW, &mut b), LineOutcome::NoCounter);
        // The reference never parses the numbers when there is no name...
        assert_eq!(parse_line(b"^ junk", NOW, &mut b), LineOutcome::NoCounter);
        // ... nor counts 4..6-field lines then.
        assert_eq!(parse_line(b"^ 1 2 3", NOW, &mut b), LineOutcome::NoCounter);
        // ... but does for a `*` name (it reaches handle_record).
        assert_eq!(bad_reason(b"* junk"), Some((BadReason::BadNumber, 1)));
        assert_eq!(bad_reason(b"* 1 2 3"), Some((BadReason::BadFormat, 1)));
        // `*` among other names is skipped.
        assert_eq!(
            parse_line(b"^*^x 1", NOW, &mut b),
            LineOutcome::Samples {
                added: 1,
                name: b"^*^x",
                extra_fields: false
            }
        );
        assert_eq!(b.get(0).unwrap().key, "x");
        // One field is bad whatever the name.
        assert_eq!(bad_reason(b"^"), Some((BadReason::BadFormat, 1)));
    }

    #[test]
    fn empty_dot_components_are_bad() {
        for l in [
            ".a.b 1",
            "a.b. 1",
            "a..b 1",
            "*.a 1",
            "*a. 1",
            ". 1",
            "a.^b 1",
            "a^.b 1",
            "ok^x..y 1",
            "*^a 1",
            "a^b. 1",
        ] {
            assert_eq!(
                bad_reason(l.as_bytes()),
                Some((BadReason::EmptyNameComponent, 1)),
                "{l:?}"
            );
        }
        assert_eq!(keys("a.b.c 1"), vec!["a.b.c"]);
        assert_eq!(keys("*a.b 1"), vec!["a.b"]);
    }

    #[test]
    fn expansion_cap() {
        let mut line = vec![b'b'; 32 * 1024];
        for _ in 0..1000 {
            line.extend_from_slice(b"^x");
        }
        line.extend_from_slice(b" 1");
        assert_eq!(bad_reason(&line), Some((BadReason::ExpansionTooLarge, 1)));
        let mut line = b"base".to_vec();
        for i in 0..1000 {
            line.extend_from_slice(format!("^s{i}").as_bytes());
        }
        line.extend_from_slice(b" 1");
        let mut b = ParsedBatch::new();
        assert!(matches!(
            parse_line(&line, NOW, &mut b),
            LineOutcome::Samples { added: 1000, .. }
        ));
        assert_eq!(b.get(999).unwrap().key, "base.s999");
    }

    #[test]
    fn batch_accumulates_and_clears() {
        let mut b = ParsedBatch::new();
        parse_line(b"a 1", NOW, &mut b);
        parse_line(b"junk", NOW, &mut b);
        parse_line(b"b^c^d 2 3", NOW, &mut b);
        parse_line(b"e 5 1 1 1 1 -1", NOW, &mut b);
        let ks: Vec<&str> = b.iter().map(|r| r.key).collect();
        assert_eq!(ks, vec!["a", "b.c", "b.d"]);
        assert_eq!(b.len(), 3);
        assert_eq!(b.key(&b.records()[1]), "b.c");
        assert_eq!(b.name(&b.records()[2]), b"b.d");
        assert_eq!(b.records()[2].sample, Sample::value(2, 3.0));
        b.clear();
        assert!(b.is_empty());
        assert!(b.get(0).is_none());
    }

    #[test]
    fn outcome_bad_commands() {
        assert_eq!(
            LineOutcome::Bad {
                reason: BadReason::BadFormat,
                count: 3
            }
            .bad_commands(),
            3
        );
        assert_eq!(LineOutcome::Reserved.bad_commands(), 0);
        assert_eq!(BadReason::BadMeta.to_string(), "bad format meta info");
    }

    // ---- blacklist (§2.10) ----

    #[test]
    fn blacklist() {
        let bl = Blacklist::parse("Bad.Host\n\nother\r\n spaced \nlast");
        assert_eq!(bl.len(), 4);
        assert!(bl.contains("bad.host"));
        assert!(bl.contains("BAD.host"));
        assert!(bl.contains(b"last".as_slice()));
        assert!(bl.contains(String::from("other\r"))); // lines are not trimmed
        assert!(!bl.contains("other"));
        assert!(bl.contains(" spaced "));
        assert!(!bl.contains("spaced"));
        assert!(!bl.contains("bad"));
        assert!(!bl.contains(""));
        let empty = Blacklist::parse("\n\n");
        assert!(empty.is_empty());
        assert!(!empty.contains("x"));
        assert_eq!(Blacklist::parse_bytes(b"H\xc9\n").len(), 1);
        assert!(Blacklist::parse_bytes(b"H\xc9\n").contains(b"h\xc9".as_slice()));
    }
}
