//! The Prometheus exporter (docs/interfaces.md §4) and the Prometheus text of the daemon's
//! own internal counters. Pure code: no sockets, no clocks (callers pass `now`), no
//! logging.
//!
//! Reference: imvu-open/istatd `daemon/PromExporter.cpp` (`storeMetrics`,
//! `extract_tags`, `get_tag_pos`, `storeAmetric`, `insertCounter`, `onCleanup`,
//! `onRemoveStaleCounter`, `PromMetric::toString`, `accumulate`), `lib/strfunc.cpp`
//! (`prom_munge`, `extract_ctrs`), `daemon/StatServer.cpp` (`handle_counter_cmd`: the
//! value given to the exporter), `daemon/RequestInFlight.cpp` (`servePrometheus`).
//!
//! # How the daemon uses it
//!
//! - Every shard owns one [`PromStore`]. For each stat line it handles (client,
//!   forwarding agent or local stats) whose outcome is
//!   [`LineOutcome::Samples`](crate::statline::LineOutcome::Samples) `{ name, .. }`, it
//!   calls [`PromStore::record_sample`] with that raw `name` (the first field as sent,
//!   `*` and `^` included), the line's [`Sample`] (every record of one line carries the
//!   same sample) and `now`. A `false` return is the reference's warning `rejected
//!   counter with 0 count`. Internal (loopback) counters are not fed.
//! - Every `--metrics-cleanup-period` seconds each shard calls
//!   [`PromStore::expire_gauges`], and once a day [`PromStore::expire_counters`]
//!   (the reference's two timers; [`PromStore::cleanup`] does both at once).
//! - A scrape (`GET /metrics` on the Prometheus port) is answered by the shard that
//!   accepted it: it collects a clone of every shard's store (a `PromStore` is plain
//!   `Send` data), combines them with [`PromStore::merge_from`] into a fresh store and
//!   sends [`PromStore::render_as`]`(now, layout)` with `Content-Type: `[`CONTENT_TYPE`],
//!   the layout chosen from its `Accept` header ([`PromLayout::for_accept`]). Scrapes
//!   consume nothing.
//! - `--max-matrics-count` is checked per store; a daemon that wants the global cap of
//!   the reference can give each of its `n` shards `ceil(N / n)` (see
//!   [`PromConfig::max_entries`]).
//!
//! The main HTTP port's `GET /metrics` (a port addition) serves [`render_internal`] of
//! the merged `istatd.*` internal counters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use istatd_storage::counter::Sample;
use istatd_storage::numfmt::push_g;

use crate::statline::{caret_expand, munge};

/// `Content-Type` of both `/metrics` bodies (**Port**; the reference sends
/// `application/json`, docs/interfaces.md §9 item 14).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// How a scrape's lines are laid out, chosen from the scraper's `Accept` header.
///
/// The reference prints a `# TYPE` line before every counter entry, so two tag sets of
/// one counter name repeat it, and prints the gauge samples after the first of each
/// name at the end (docs/interfaces.md §4). Its own ftest expects exactly that
/// (compare_file.py counts lines), and a Prometheus server's scrape parser accepts it. The
/// text format 0.0.4 allows one TYPE line per name, though, and strict parsers (promtool,
/// the Go `expfmt` parser used by Telegraf and Pushgateway) refuse a second one.
///
/// Both are served: a client that names a text-format version in `Accept`
/// (`text/plain;version=0.0.4`, `application/openmetrics-text;version=1.0.0`, as
/// Prometheus, Telegraf and the OpenTelemetry collector do) gets [`PromLayout::Strict`];
/// any other client (`curl`, a browser, `*/*`) gets the reference's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromLayout {
    /// The reference's lines: a TYPE line per counter entry, later gauge samples last.
    Reference,
    /// Text format 0.0.4: one TYPE line per name, a name's lines together, each series
    /// once per timestamp ([`PromStore::render`]).
    Strict,
}

impl PromLayout {
    /// The layout for a request with this `Accept` header value.
    pub fn for_accept(accept: Option<&[u8]>) -> PromLayout {
        let names_version = accept.is_some_and(|a| {
            a.split(|&b| b == b',').any(|range| {
                range
                    .split(|&b| b == b';')
                    .skip(1)
                    .any(|param| param.trim_ascii().starts_with(b"version="))
            })
        });
        if names_version {
            PromLayout::Strict
        } else {
            PromLayout::Reference
        }
    }
}

/// A counter's sum restarts at the new value instead of exceeding this (reference
/// `COUNT_MAX`).
pub const COUNT_MAX: f64 = 4_294_967_295.0;

/// Counters are stamped with "now" rounded down to a multiple of this many seconds
/// (reference `COUNTER_RESOLUTION_SECOND`).
pub const COUNTER_RESOLUTION_SECS: i64 = 5;

/// A counter whose newest sample time is older than this many seconds is dropped by
/// [`PromStore::expire_counters`] (reference `STALE_COUNTER_INTERVAL_SECOND`; the
/// reference checks once a day).
pub const STALE_COUNTER_SECS: i64 = 86_400;

/// Tag names always allowed (reference `PromExporter::allowed_tags_`).
pub const BUILTIN_TAG_NAMES: [&str; 5] = ["host", "role", "class", "pool", "cluster"];

/// Store key of the pseudo-counter counting samples refused by the entry cap.
pub const DROPPED_METRICS_KEY: &str = "*istatd.agent.dropped.metrics";

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

/// The exporter's settings (docs/interfaces.md §7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromConfig {
    /// Prometheus name translation (default); `false` with
    /// `--dont-translate-metric-names` (istatd munging, dots kept).
    pub translate_names: bool,
    /// Extra allowed tag names: the lines of the `--tagnames-path` file
    /// ([`load_tag_names`]).
    pub extra_tag_names: Vec<String>,
    /// `--max-matrics-count`: when > 0 and a store holds more entries than this, new
    /// samples are not stored and `istatd.agent.dropped.metrics` is incremented
    /// instead. ≤ 0: unlimited. Applies to each [`PromStore`] separately.
    pub max_entries: i64,
    /// `--metrics-cleanup-period` (seconds): gauge samples older than now − this are
    /// dropped by [`PromStore::expire_gauges`].
    pub cleanup_period: i64,
    /// The local host name (`gethostname`), the `host` tag of
    /// `istatd.agent.dropped.metrics`. It is translated like a name before use
    /// (reference: `prom_munge_or_munge(hostname)`).
    pub hostname: String,
}

impl PromConfig {
    /// The defaults of docs/interfaces.md §7.3 (translation on, no extra tag names,
    /// unlimited, 30 s) for the given local host name.
    pub fn new(hostname: impl Into<String>) -> PromConfig {
        PromConfig {
            translate_names: true,
            extra_tag_names: Vec::new(),
            max_entries: -1,
            cleanup_period: 30,
            hostname: hostname.into(),
        }
    }

    /// Whether `candidate` (raw bytes of a name, compared exactly) is an allowed tag
    /// name.
    pub fn is_tag_name(&self, candidate: &[u8]) -> bool {
        BUILTIN_TAG_NAMES.iter().any(|t| t.as_bytes() == candidate)
            || self
                .extra_tag_names
                .iter()
                .any(|t| t.as_bytes() == candidate)
    }

    /// A metric or tag name as printed: [`prom_name`] or, without translation, the
    /// istatd [`munge`].
    pub fn translate(&self, name: &[u8]) -> String {
        if self.translate_names {
            prom_name(name)
        } else {
            munge(name)
        }
    }

    fn full(&self, entries: usize) -> bool {
        self.max_entries > 0 && entries as u64 > self.max_entries as u64
    }
}

/// The extra tag names of a `--tagnames-path` file: one per line, trimmed of C
/// whitespace (reference `istat::trim`); empty lines are skipped (the reference stores
/// the empty name, which can never match a non-empty name component in the port).
pub fn load_tag_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.split('\n') {
        let t = line.trim_matches(|c: char| c.is_ascii() && crate::statline::is_space(c as u8));
        if !t.is_empty() && !out.iter().any(|o| o == t) {
            out.push(t.to_owned());
        }
    }
    out
}

/// Prometheus name translation (reference `prom_munge`): every byte outside
/// `[A-Za-z0-9_]` becomes `_`, letters are lower-cased, and a leading digit gets a `_`
/// in front (`1digit.g` → `_1digit_g`).
pub fn prom_name(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len() + 1);
    if name.first().is_some_and(u8::is_ascii_digit) {
        s.push('_');
    }
    s.extend(name.iter().map(|&b| {
        if b.is_ascii_alphanumeric() || b == b'_' {
            b.to_ascii_lowercase() as char
        } else {
            '_'
        }
    }));
    s
}

/// The value the exporter gets for one stat line (reference `handle_counter_cmd`): the
/// value field for 2- and 3-field lines, sum / count for 7-field lines. `None` for a
/// count of 0 (the reference logs `rejected counter with 0 count` and stores nothing).
///
/// `statline::parse_line` gives 2- and 3-field lines a [`Sample`] with count 1, so
/// `sample_value(s.sum, s.count)` covers all three forms.
pub fn sample_value(sum: f64, count: u64) -> Option<f64> {
    (count != 0).then(|| sum / count as f64)
}

// ---------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------

/// One label set: `(name, value)` pairs in the order the tags appear in the raw name
/// (the reference prints hash order). Names are translated, values raw.
type TagGroup = Vec<(String, String)>;

/// One stored metric: a counter's running sum, or one gauge sample.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    /// The printed metric name (translated, no `*`).
    name: String,
    /// Label sets; each is printed as its own line with the same value. Empty: one
    /// unlabelled line.
    groups: Vec<TagGroup>,
    value: f64,
    /// Gauges: the sample time. Counters: the newest sample time.
    time: i64,
}

impl Entry {
    /// Reference `PromMetric::accumulate` for counters.
    fn accumulate(&mut self, value: f64, time: i64) {
        if self.value > COUNT_MAX - value {
            self.value = value;
        } else {
            self.value += value;
        }
        if time > self.time {
            self.time = time;
        }
    }
}

/// What the exporter keeps (docs/interfaces.md §4.2): cumulative counters keyed by the
/// reference's key (the raw caret name for a tagged metric, the expanded name for an
/// untagged one, `*` included, not munged) and every gauge sample ordered by sample
/// time. One per shard; plain data (`Send`, `Clone`), combined with
/// [`merge_from`](PromStore::merge_from).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromStore {
    counters: HashMap<Vec<u8>, Entry>,
    /// `(sample time, arrival sequence)`: the reference's time-keyed multimap, equal
    /// times in arrival order.
    gauges: BTreeMap<(i64, u64), Entry>,
    next_seq: u64,
}

/// One expanded name split from its `*` marker.
fn strip_marker(name: &[u8]) -> (bool, &[u8]) {
    match name {
        [b'*', rest @ ..] => (true, rest),
        _ => (false, name),
    }
}

/// Reference `get_tag_pos`: for the component text `seg` after `base.`, the length of
/// the shortest dot-prefix that is an allowed tag name and is followed by a non-empty
/// value. `None`: not a tag.
fn tag_split(cfg: &PromConfig, seg: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(off) = seg[from..].iter().position(|&b| b == b'.') {
        let dot = from + off;
        if dot + 1 >= seg.len() {
            return None;
        }
        if cfg.is_tag_name(&seg[..dot]) {
            return Some(dot);
        }
        from = dot + 1;
    }
    None
}

/// Put one tag into the first group lacking its name, or open a new group (reference
/// `extract_tags`).
fn add_tag(groups: &mut Vec<TagGroup>, name: String, value: String) {
    match groups
        .iter_mut()
        .find(|g| g.iter().all(|(n, _)| *n != name))
    {
        Some(g) => g.push((name, value)),
        None => groups.push(vec![(name, value)]),
    }
}

impl PromStore {
    pub fn new() -> PromStore {
        PromStore::default()
    }

    /// Stored entries: counters plus gauge samples (what `--max-matrics-count` limits).
    pub fn len(&self) -> usize {
        self.counters.len() + self.gauges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn counter_count(&self) -> usize {
        self.counters.len()
    }

    pub fn gauge_count(&self) -> usize {
        self.gauges.len()
    }

    /// The daemon's entry point for one parsed stat line: `raw_name` is
    /// `LineOutcome::Samples { name, .. }`, `sample` the line's sample. Applies
    /// [`sample_value`] and [`record`](PromStore::record); `false` (nothing stored)
    /// for a 7-field line with count 0.
    pub fn record_sample(
        &mut self,
        cfg: &PromConfig,
        raw_name: &[u8],
        sample: &Sample,
        now: i64,
    ) -> bool {
        match sample_value(sample.sum, sample.count) {
            Some(v) => {
                self.record(cfg, raw_name, sample.time, v, now);
                true
            }
            None => false,
        }
    }

    /// Store one sample (docs/interfaces.md §4.2, reference `storeMetrics`).
    ///
    /// `raw_name` is the first field as sent (`*` marker and carets included), `time`
    /// the sample time (0 means `now`, as in the reference), `value` from
    /// [`sample_value`], `now` the daemon clock (the time of a dropped-sample count).
    ///
    /// The name is caret-expanded as by the stat port ([`caret_expand`], empty segments
    /// skipped). With a non-empty base (the text before the first `^`, `*` removed),
    /// each expanded name `base.seg` whose `seg` starts with an allowed tag name, a dot
    /// and a non-empty value becomes a tag of one metric named after the base and keyed
    /// by `raw_name`; every other expanded name is its own untagged metric keyed by the
    /// expanded name. A name is a counter when it starts with `*`. An expanded name
    /// that is empty after its `*` is ignored (the stat port records nothing for it).
    pub fn record(&mut self, cfg: &PromConfig, raw_name: &[u8], time: i64, value: f64, now: i64) {
        let time = if time == 0 { now } else { time };
        let base = match raw_name.iter().position(|&b| b == b'^') {
            Some(p) => &raw_name[..p],
            None => raw_name,
        };
        let (base_counter, base_body) = strip_marker(base);
        let tagging = raw_name.len() != base.len() && !base_body.is_empty();
        let expanded;
        let names: Vec<&[u8]> = if raw_name.len() == base.len() {
            vec![raw_name] // no caret: the name itself, not copied
        } else {
            expanded = caret_expand(raw_name);
            expanded.iter().map(Vec::as_slice).collect()
        };

        let mut groups: Vec<TagGroup> = Vec::new();
        let mut untagged: Vec<&[u8]> = Vec::new();
        for name in names {
            if tagging && name.len() > base.len() + 1 && name[base.len()] == b'.' {
                let seg = &name[base.len() + 1..];
                if let Some(dot) = tag_split(cfg, seg) {
                    let tname = cfg.translate(&seg[..dot]);
                    let tvalue = String::from_utf8_lossy(&seg[dot + 1..]).into_owned();
                    add_tag(&mut groups, tname, tvalue);
                    continue;
                }
            }
            untagged.push(name);
        }

        if !groups.is_empty() {
            let e = || Entry {
                name: cfg.translate(base_body),
                groups,
                value,
                time,
            };
            self.store(cfg, raw_name, base_counter, value, time, e, now);
        }
        for name in untagged {
            let (counter, body) = strip_marker(name);
            if body.is_empty() {
                continue;
            }
            let e = || Entry {
                name: cfg.translate(body),
                groups: Vec::new(),
                value,
                time,
            };
            self.store(cfg, name, counter, value, time, e, now);
        }
    }

    /// Reference `storeAmetric`: the entry cap, then counter or gauge. `entry` builds
    /// the entry (`value` and `time` included) when one is inserted.
    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        cfg: &PromConfig,
        key: &[u8],
        counter: bool,
        value: f64,
        time: i64,
        entry: impl FnOnce() -> Entry,
        now: i64,
    ) {
        if cfg.full(self.len()) {
            self.add_counter(DROPPED_METRICS_KEY.as_bytes(), 1.0, now, || Entry {
                name: cfg.translate(&DROPPED_METRICS_KEY.as_bytes()[1..]),
                groups: vec![vec![(
                    "host".to_owned(),
                    cfg.translate(cfg.hostname.as_bytes()),
                )]],
                value: 1.0,
                time: now,
            });
        } else if counter {
            self.add_counter(key, value, time, entry);
        } else {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.gauges.insert((time, seq), entry());
        }
    }

    /// Reference `insertCounter`: accumulate into the existing entry (keeping its name
    /// and tags), or insert.
    fn add_counter(&mut self, key: &[u8], value: f64, time: i64, entry: impl FnOnce() -> Entry) {
        match self.counters.get_mut(key) {
            Some(e) => e.accumulate(value, time),
            None => {
                self.counters.insert(key.to_vec(), entry());
            }
        }
    }

    /// Drop gauge samples whose time is older than `now − cfg.cleanup_period`
    /// (reference `onCleanup`, run every `--metrics-cleanup-period` seconds).
    pub fn expire_gauges(&mut self, cfg: &PromConfig, now: i64) {
        let lower = now.saturating_sub(cfg.cleanup_period);
        self.gauges = self.gauges.split_off(&(lower, 0));
    }

    /// Drop counters whose newest sample time is older than `now − 86400` (reference
    /// `onRemoveStaleCounter`, run once a day).
    pub fn expire_counters(&mut self, now: i64) {
        let lower = now.saturating_sub(STALE_COUNTER_SECS);
        self.counters.retain(|_, e| e.time >= lower);
    }

    /// [`expire_gauges`](PromStore::expire_gauges) and
    /// [`expire_counters`](PromStore::expire_counters) together. Calling this every
    /// cleanup period drops stale counters within a period of reaching 86400 s instead
    /// of within a day, which the reference's daily timer allows as well.
    pub fn cleanup(&mut self, cfg: &PromConfig, now: i64) {
        self.expire_gauges(cfg, now);
        self.expire_counters(now);
    }

    /// Add another store's contents (another shard's snapshot): counters with the same
    /// key are accumulated as one more sample (sum with the [`COUNT_MAX`] restart rule,
    /// newest time, this store's name and tags kept); gauge samples are added after
    /// this store's samples of the same time. The entry cap is not applied.
    pub fn merge_from(&mut self, other: &PromStore) {
        for (k, e) in &other.counters {
            self.add_counter(k, e.value, e.time, || e.clone());
        }
        for ((time, _), e) in &other.gauges {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.gauges.insert((*time, seq), e.clone());
        }
    }

    /// The `/metrics` body in [`PromLayout::Strict`] (docs/interfaces.md §4.3 with the
    /// port's changes), served to scrapers that name a text-format version.
    ///
    /// `<name>[{<k>="<v>",...}] <value> <timestamp_ms>` per line; counters carry
    /// `counter="1"` as their last label (alone when untagged); values in `%g` style
    /// (6 significant digits; NaN and infinities spelled `NaN`, `+Inf`, `-Inf`);
    /// label values escaped (`\\`, `\"`, `\n`); gauges stamped with their sample time,
    /// counters with `now` rounded down to a multiple of 5 s, in milliseconds.
    ///
    /// Order: the counters first (by name, then key), then the gauges in ascending
    /// sample time. Each metric name has exactly one `# TYPE` line, before its first
    /// sample, and all lines of one name are printed together (text format 0.0.4
    /// wants a metric's lines as one group): a gauge sample of a name already printed
    /// joins that name's group. The reference instead prints later gauge samples at the
    /// end and a TYPE line per counter entry ([`PromLayout::Reference`]).
    ///
    /// A line of the same series (name, label set and timestamp) as an earlier line is
    /// left out (**Port**; the reference prints it): a series has one value per
    /// timestamp, and Prometheus keeps the first one it reads and rejects the others as
    /// duplicate samples. This happens for two gauge samples of one name and time, for a
    /// repeated tag (`^role.a^role.a`), and for counters whose raw names differ but
    /// print the same (`*a^host.h^role.r` and `*a^role.r^host.h`, `*A` and `*a`); the
    /// first in the order above is kept.
    pub fn render(&self, now: i64) -> String {
        self.render_as(now, PromLayout::Strict)
    }

    /// The `/metrics` body in `layout`: [`render`](PromStore::render) for
    /// [`PromLayout::Strict`]; for [`PromLayout::Reference`] the same sample lines in the
    /// reference's arrangement (`RequestInFlight::createPromResponse`): each counter
    /// entry preceded by its TYPE line, then the first gauge sample of each name preceded
    /// by its TYPE line, then the remaining gauge samples; nothing is left out.
    pub fn render_as(&self, now: i64, layout: PromLayout) -> String {
        match layout {
            PromLayout::Strict => self.render_strict(now),
            PromLayout::Reference => self.render_reference(now),
        }
    }

    fn sorted_counters(&self) -> Vec<&Entry> {
        let mut counters: Vec<(&Vec<u8>, &Entry)> = self.counters.iter().collect();
        counters.sort_by(|a, b| a.1.name.cmp(&b.1.name).then_with(|| a.0.cmp(b.0)));
        counters.into_iter().map(|(_, e)| e).collect()
    }

    fn render_reference(&self, now: i64) -> String {
        let counter_ms = counter_stamp_ms(now);
        let mut out = String::new();
        let entry_lines = |out: &mut String, e: &Entry, counter: bool, ts: i64| {
            if e.groups.is_empty() {
                push_line(out, &e.name, &[], counter, e.value, ts);
            }
            for g in &e.groups {
                push_line(out, &e.name, g, counter, e.value, ts);
            }
        };
        for e in self.sorted_counters() {
            let _ = writeln!(out, "# TYPE {} counter", e.name);
            entry_lines(&mut out, e, true, counter_ms);
        }
        let mut typed: HashSet<&str> = HashSet::new();
        let mut later: Vec<&Entry> = Vec::new();
        for e in self.gauges.values() {
            if typed.insert(e.name.as_str()) {
                let _ = writeln!(out, "# TYPE {} gauge", e.name);
                entry_lines(&mut out, e, false, e.time.saturating_mul(1000));
            } else {
                later.push(e);
            }
        }
        for e in later {
            entry_lines(&mut out, e, false, e.time.saturating_mul(1000));
        }
        out
    }

    fn render_strict(&self, now: i64) -> String {
        struct Family<'a> {
            kind: &'static str,
            lines: Vec<(&'a Entry, bool)>,
        }
        let all = self
            .sorted_counters()
            .into_iter()
            .map(|e| (e, true))
            .chain(self.gauges.values().map(|e| (e, false)));
        let mut order: Vec<&str> = Vec::new();
        let mut families: HashMap<&str, Family<'_>> = HashMap::new();
        for (e, counter) in all {
            families
                .entry(e.name.as_str())
                .or_insert_with(|| {
                    order.push(e.name.as_str());
                    Family {
                        kind: if counter { "counter" } else { "gauge" },
                        lines: Vec::new(),
                    }
                })
                .lines
                .push((e, counter));
        }

        let counter_ms = counter_stamp_ms(now);
        // Series already printed: (counter, tags sorted, timestamp) per name.
        type SeriesKey<'a> = (bool, Vec<&'a (String, String)>, i64);
        let no_tags: [TagGroup; 1] = [Vec::new()];
        let mut out = String::new();
        for name in order {
            let fam = &families[name];
            let _ = writeln!(out, "# TYPE {} {}", name, fam.kind);
            let mut printed: HashSet<SeriesKey<'_>> = HashSet::new();
            for &(e, counter) in &fam.lines {
                let ts = if counter {
                    counter_ms
                } else {
                    e.time.saturating_mul(1000)
                };
                let groups = if e.groups.is_empty() {
                    &no_tags[..]
                } else {
                    &e.groups[..]
                };
                for g in groups {
                    let mut tags: Vec<&(String, String)> = g.iter().collect();
                    tags.sort_unstable();
                    if printed.insert((counter, tags, ts)) {
                        push_line(&mut out, &e.name, g, counter, e.value, ts);
                    }
                }
            }
        }
        out
    }
}

/// A counter line's timestamp: `now` rounded down to [`COUNTER_RESOLUTION_SECS`], in ms.
fn counter_stamp_ms(now: i64) -> i64 {
    (now / COUNTER_RESOLUTION_SECS)
        .saturating_mul(COUNTER_RESOLUTION_SECS)
        .saturating_mul(1000)
}

/// One sample line.
fn push_line(
    out: &mut String,
    name: &str,
    tags: &[(String, String)],
    counter: bool,
    v: f64,
    ts: i64,
) {
    out.push_str(name);
    if !tags.is_empty() || counter {
        out.push('{');
        let mut first = true;
        for (k, val) in tags {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            push_escaped_label(out, val);
            out.push('"');
        }
        if counter {
            if !first {
                out.push(',');
            }
            out.push_str("counter=\"1\"");
        }
        out.push('}');
    }
    out.push(' ');
    push_value(out, v);
    let _ = writeln!(out, " {ts}");
}

/// A label value in text format 0.0.4: `\` → `\\`, `"` → `\"`, LF → `\n`.
fn push_escaped_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `%g` (the reference's stream default) for finite values; the Prometheus spellings
/// of NaN and the infinities (glibc would print `nan`, `-nan`, `inf`).
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        push_g(out, v, 6);
    }
}

// ---------------------------------------------------------------------------------------
// Internal counters
// ---------------------------------------------------------------------------------------

/// Whether an internal counter is a gauge (a level or a current value) rather than a
/// monotonic total, by its dotted name: names ending in `.connected`, `.current`,
/// `.queuelen`, `.eagerconns`, `.vmsize`, `.vmrss`, `.counters`, `.files`, `_min` or
/// `replica.connections` (connected slaves), and names containing `open_files` or
/// `cached_pages`. Everything else (event totals, `mm.*` totals, error counts) is a
/// counter.
pub fn internal_is_gauge(name: &str) -> bool {
    const SUFFIXES: [&str; 10] = [
        ".connected",
        ".current",
        ".queuelen",
        ".eagerconns",
        ".vmsize",
        ".vmrss",
        ".counters",
        ".files",
        "_min",
        "replica.connections",
    ];
    SUFFIXES.iter().any(|s| name.ends_with(s))
        || name.contains("open_files")
        || name.contains("cached_pages")
}

/// The daemon's internal counters (e.g. `istatd.statserver.connects`) as Prometheus
/// text format 0.0.4, for `GET /metrics` on the main HTTP port: per counter, in the
/// given order, `# HELP <n> istatd internal counter <name>`, `# TYPE <n> counter|gauge`
/// ([`internal_is_gauge`]) and `<n> <value>` without a timestamp, where `<n>` is
/// [`prom_name`] of the name (`istatd_statserver_connects`). A later name translating
/// to an already printed `<n>` is skipped.
pub fn render_internal(counters: &[(String, i64)]) -> String {
    let mut seen: HashSet<String> = HashSet::with_capacity(counters.len());
    let mut out = String::with_capacity(counters.len() * 96);
    for (name, value) in counters {
        let n = prom_name(name.as_bytes());
        if n.is_empty() || seen.contains(&n) {
            continue;
        }
        out.push_str("# HELP ");
        out.push_str(&n);
        out.push_str(" istatd internal counter ");
        for c in name.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        let kind = if internal_is_gauge(name) {
            "gauge"
        } else {
            "counter"
        };
        let _ = write!(out, "\n# TYPE {n} {kind}\n{n} {value}\n");
        seen.insert(n);
    }
    out
}

#[cfg(test)]
mod tests;
