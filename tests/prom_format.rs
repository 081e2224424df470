//! The `/metrics` bodies (`istatd::metrics::prom::PromStore::render` and
//! `istatd::metrics::prom::render_internal`) checked as Prometheus text format 0.0.4 twice:
//!
//! - by the `prometheus-parse` crate, a real parser of the format: every sample line must
//!   come back as a sample with the same name, type, value, timestamp and labels, and
//!   every `# HELP` as a doc string. That crate is lenient (it silently skips a line it
//!   cannot read and splits labels naively at `,` and `=`), so the test counts lines and
//!   compares labels only where the crate can read them;
//! - by a strict line grammar of our own ([`check_strict`]), which also enforces the
//!   family rules the crate does not look at: one TYPE and one HELP line per name, before
//!   its samples; a name's lines contiguous; no repeated label name; no duplicate series
//!   at one timestamp; escapes only `\\`, `\"`, `\n`.

use std::collections::{BTreeMap, HashMap, HashSet};

use istatd::metrics::loopback::LoopbackCounters;
use istatd::metrics::prom::{load_tag_names, render_internal, PromConfig, PromStore};
use istatd::statline::{parse_line, LineOutcome, ParsedBatch};
use prometheus_parse::{Scrape, Value};

// ---------------------------------------------------------------------------------------
// Strict grammar
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp: Option<i64>,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || (colon && b == b':') => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':'))
}

/// Go `strconv.ParseFloat` as Prometheus accepts it (decimal forms and the special
/// spellings).
fn parse_go_float(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => return Ok(f64::NAN),
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if !ok_chars || s.is_empty() {
        return Err(format!("bad value {s:?}"));
    }
    s.parse::<f64>()
        .map_err(|e| format!("bad value {s:?}: {e}"))
}

/// A label value between quotes; returns the unescaped value and the rest after the
/// closing quote.
fn label_value(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\n' => return Err("raw LF in a label value".into()),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                other => return Err(format!("bad escape {other:?}")),
            },
            c => out.push(c),
        }
    }
    Err("unterminated label value".into())
}

fn parse_sample(line: &str) -> Result<Line, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line:?}"))?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let lname = &rest[..eq];
            if !is_name(lname, false) || lname.starts_with("__") {
                return Err(format!("bad label name {lname:?}"));
            }
            let r = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let (v, r) = label_value(r)?;
            labels.push((lname.to_owned(), v));
            rest = match r.strip_prefix(',') {
                Some(r) => r,
                None if r.starts_with('}') => r,
                None => return Err(format!("junk after label value: {r:?}")),
            };
        }
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no single space before the value: {line:?}"))?;
    let mut fields = rest.split(' ');
    let value = parse_go_float(fields.next().unwrap_or(""))?;
    let timestamp = match fields.next() {
        None => None,
        Some(t) => {
            let ok = !t.is_empty()
                && t.strip_prefix('-')
                    .unwrap_or(t)
                    .bytes()
                    .all(|b| b.is_ascii_digit());
            if !ok {
                return Err(format!("bad timestamp {t:?}"));
            }
            Some(t.parse::<i64>().map_err(|e| e.to_string())?)
        }
    };
    if fields.next().is_some() {
        return Err(format!("extra fields: {line:?}"));
    }
    Ok(Line {
        name: name.to_owned(),
        labels,
        value,
        timestamp,
    })
}

/// Name, sorted labels, timestamp.
type SeriesKey = (String, Vec<(String, String)>, Option<i64>);

/// Check `text` strictly; returns the samples and the TYPE of each name.
fn check_strict(text: &str) -> (Vec<Line>, HashMap<String, String>) {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "body must end with LF"
    );
    let mut samples = Vec::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut with_samples: HashSet<String> = HashSet::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<SeriesKey> = HashSet::new();
    let mut enter = |name: &str, current: &mut Option<String>| {
        if current.as_deref() != Some(name) {
            assert!(
                !closed.contains(name),
                "lines of {name} are not contiguous:\n{text}"
            );
            if let Some(prev) = current.take() {
                closed.insert(prev);
            }
            *current = Some(name.to_owned());
        }
    };
    for line in text.split_terminator('\n') {
        assert!(!line.is_empty(), "empty line");
        assert_eq!(line, line.trim_end(), "trailing whitespace: {line:?}");
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP docstring");
            assert!(is_name(name, true), "bad HELP name {name:?}");
            assert!(helps.insert(name.to_owned()), "second HELP for {name}");
            assert!(!with_samples.contains(name), "HELP after samples: {name}");
            let mut chars = doc.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    assert!(
                        matches!(chars.next(), Some('\\' | 'n')),
                        "bad escape in {doc:?}"
                    );
                }
            }
            enter(name, &mut current);
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE kind");
            assert!(is_name(name, true), "bad TYPE name {name:?}");
            assert!(
                matches!(
                    kind,
                    "counter" | "gauge" | "histogram" | "summary" | "untyped"
                ),
                "bad type {kind:?}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "second TYPE line for {name}:\n{text}"
            );
            assert!(!with_samples.contains(name), "TYPE after samples: {name}");
            enter(name, &mut current);
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let s = parse_sample(line).unwrap_or_else(|e| panic!("{e}\nin line {line:?}"));
            let mut names: Vec<&str> = s.labels.iter().map(|(k, _)| k.as_str()).collect();
            names.sort_unstable();
            let before = names.len();
            names.dedup();
            assert_eq!(before, names.len(), "repeated label name: {line:?}");
            let mut sorted = s.labels.clone();
            sorted.sort();
            assert!(
                series.insert((s.name.clone(), sorted, s.timestamp)),
                "duplicate series: {line:?}"
            );
            enter(&s.name, &mut current);
            with_samples.insert(s.name.clone());
            samples.push(s);
        }
    }
    (samples, types)
}

// ---------------------------------------------------------------------------------------
// Cross-check with prometheus-parse
// ---------------------------------------------------------------------------------------

/// Parse with the crate and compare with the strict reading, sample by sample.
fn check_with_crate(text: &str, strict: &[Line], types: &HashMap<String, String>) -> Scrape {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse");
    assert_eq!(
        scrape.samples.len(),
        strict.len(),
        "the crate skipped lines:\n{text}"
    );
    for (got, want) in scrape.samples.iter().zip(strict) {
        assert_eq!(got.metric, want.name);
        let v = match (&got.value, types.get(&want.name).map(String::as_str)) {
            (Value::Counter(v), Some("counter")) => *v,
            (Value::Gauge(v), Some("gauge")) => *v,
            (Value::Untyped(v), None) => *v,
            (other, t) => panic!("{}: value {other:?} for TYPE {t:?}", want.name),
        };
        assert!(
            v == want.value || (v.is_nan() && want.value.is_nan()),
            "{}: {v} != {}",
            want.name,
            want.value
        );
        if let Some(ts) = want.timestamp {
            assert_eq!(got.timestamp.timestamp_millis(), ts, "{}", want.name);
        }
        // The crate splits at `,` and `=` and strips quotes without unescaping: compare
        // the label maps where that is exact.
        let plain = want
            .labels
            .iter()
            .all(|(_, v)| !v.contains([',', '=', '"', '\\', '\n', '}']));
        if plain {
            let want_map: BTreeMap<&str, &str> = want
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let got_map: BTreeMap<&str, &str> = got
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got_map, want_map, "{}", want.name);
        }
    }
    scrape
}

fn check_both(text: &str) -> (Vec<Line>, HashMap<String, String>, Scrape) {
    let (samples, types) = check_strict(text);
    let scrape = check_with_crate(text, &samples, &types);
    (samples, types, scrape)
}

// ---------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------

fn feed(store: &mut PromStore, cfg: &PromConfig, line: &str, now: i64) {
    let mut batch = ParsedBatch::new();
    if let LineOutcome::Samples { name, .. } = parse_line(line.as_bytes(), now, &mut batch) {
        let sample = batch.records().last().expect("a record").sample;
        store.record_sample(cfg, name, &sample, now);
    } else {
        panic!("not a counter line: {line:?}");
    }
}

const NOW: i64 = 1_700_000_003;

/// A bit of everything: the ftest's lines, tags in several groups, extra tag names,
/// names needing translation, 7-field lines, escapes, non-finite values, and the
/// dropped-metrics counter.
fn busy_store(max_entries: i64) -> PromStore {
    let mut cfg = PromConfig::new("build-host.example.com");
    cfg.extra_tag_names = load_tag_names("extra.tag\ndc\n");
    cfg.max_entries = max_entries;
    let t = NOW - 20;
    let lines = [
        format!("test.gauge.1 {} 41", t),
        format!("test.gauge.1 {} 42", t + 10),
        format!("*test.counter^host.h^role.r^class.c^d.f {} 1", t),
        format!("*test.counter^host.h^role.r^class.c^d.f {} 1", t - 5),
        format!("test.gauge.2^host.h^class.foo {} 43", t),
        "*test.counter.foo 1".to_owned(),
        format!("*test.counter^host.h^role.r^role.r-2 {} 1", t + 1),
        format!(
            concat!(
                "cpu.idle^host.af1234^class.dbserver^class.memcache",
                "^role.db-shard-10^role.memcache-13 {} 97.5"
            ),
            t
        ),
        format!("*req^dc.us-east^extra.tag.v=1,2^pool.\"quoted\"\\path {t} 3"),
        format!("1digit.G:x/y {t} 0.000012345"),
        format!("Load.Avg {t} 10 30 1 5 3"),
        format!("weird.nan {t} nan(1)"),
        format!("weird.inf {t} -inf"),
        format!("big.value {t} 123456789012"),
        format!("*wrap.around {t} 4294967290"),
        format!("*wrap.around {t} 10"),
    ];
    let mut s = PromStore::new();
    for l in &lines {
        feed(&mut s, &cfg, l, NOW);
    }
    s
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn render_is_valid_text_format() {
    let text = busy_store(-1).render(NOW);
    let (samples, types, _) = check_both(&text);
    assert_eq!(types["test_counter"], "counter");
    assert_eq!(types["test_gauge_1"], "gauge");
    assert_eq!(types["_1digit_g_x_y"], "gauge");
    // Every counter line carries counter="1" last and is stamped at now rounded to 5 s.
    for s in &samples {
        if types[&s.name] == "counter" {
            assert_eq!(
                s.labels.last(),
                Some(&("counter".to_owned(), "1".to_owned()))
            );
            assert_eq!(s.timestamp, Some((NOW / 5) * 5 * 1000));
        } else {
            assert!(s.labels.iter().all(|(k, _)| k != "counter"));
        }
    }
    // Escaped label values come back unescaped.
    let req = samples.iter().find(|s| s.name == "req").expect("req");
    assert_eq!(
        req.labels,
        [
            ("dc".to_owned(), "us-east".to_owned()),
            ("extra_tag".to_owned(), "v=1,2".to_owned()),
            ("pool".to_owned(), "\"quoted\"\\path".to_owned()),
            ("counter".to_owned(), "1".to_owned()),
        ]
    );
    let wrap = samples.iter().find(|s| s.name == "wrap_around").unwrap();
    assert_eq!(wrap.value, 10.0);
    let load = samples.iter().find(|s| s.name == "load_avg").unwrap();
    assert_eq!(load.value, 3.333_33);
    assert!(samples
        .iter()
        .any(|s| s.name == "weird_nan" && s.value.is_nan()));
    assert!(samples
        .iter()
        .any(|s| s.name == "weird_inf" && s.value == f64::NEG_INFINITY));
}

#[test]
fn render_with_dropped_metrics_is_valid() {
    let text = busy_store(4).render(NOW);
    let (samples, types, _) = check_both(&text);
    assert_eq!(types["istatd_agent_dropped_metrics"], "counter");
    let d = samples
        .iter()
        .find(|s| s.name == "istatd_agent_dropped_metrics")
        .expect("dropped counter");
    assert_eq!(
        d.labels[0],
        ("host".into(), "build_host_example_com".into())
    );
    assert!(d.value > 0.0);
}

#[test]
fn merged_shards_render_is_valid() {
    let mut all = PromStore::new();
    all.merge_from(&busy_store(-1));
    all.merge_from(&busy_store(-1));
    let (_, _, scrape) = check_both(&all.render(NOW));
    let c = scrape
        .samples
        .iter()
        .find(|s| s.metric == "test_counter_foo")
        .unwrap();
    assert_eq!(c.value, Value::Counter(2.0));
}

#[test]
fn empty_render_is_valid() {
    let (samples, _, _) = check_both(&PromStore::new().render(NOW));
    assert!(samples.is_empty());
}

#[test]
fn render_internal_is_valid_text_format() {
    let mut counters = LoopbackCounters::new(&["10s", "5m", "1h", "ret-7d"]).stats();
    for (i, extra) in [
        "istatd.statserver.samples",
        "istatd.statserver.udp.packets",
        "istatd.store.counters",
        "istatd.store.files",
        "istatd.store.page_hits",
        "istatd.store.open_files",
        "istatd.store.open_files_peak",
        "istatd.store.cached_pages",
        "istatd.store.flush_rounds_min",
    ]
    .iter()
    .enumerate()
    {
        counters.push(((*extra).to_owned(), i as i64 * 1000 - 1));
    }
    let text = render_internal(&counters);
    let (samples, types, scrape) = check_both(&text);
    assert_eq!(samples.len(), counters.len());
    assert!(samples
        .iter()
        .all(|s| s.labels.is_empty() && s.timestamp.is_none()));
    assert_eq!(types["istatd_statserver_connects"], "counter");
    assert_eq!(types["istatd_counter_queuelen"], "gauge");
    assert_eq!(types["istatd_pagecache_hits_time_ret_7d"], "counter");
    assert_eq!(types["istatd_store_flush_rounds_min"], "gauge");
    assert_eq!(scrape.docs.len(), counters.len(), "one HELP per counter");
    assert_eq!(
        scrape.docs["istatd_statserver_connects"],
        "istatd internal counter istatd.statserver.connects"
    );
}
