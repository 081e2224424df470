//! The exporter against the reference's ftest test_agent_prometheus: its expected files,
//! compared as its compare_file.py does, in both layouts.

use std::collections::HashSet;

use super::*;

/// A sample line with its labels sorted by name (label order is free).
fn normalize(line: &str) -> String {
    let Some(open) = line.find('{') else {
        return line.to_owned();
    };
    let close = line.rfind('}').expect("closing brace");
    let mut labels: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_str = false;
    let mut esc = false;
    for c in line[open + 1..close].chars() {
        if esc {
            esc = false;
        } else if c == '\\' {
            esc = true;
        } else if c == '"' {
            in_str = !in_str;
        } else if c == ',' && !in_str {
            labels.push(std::mem::take(&mut cur));
            continue;
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        labels.push(cur);
    }
    labels.sort();
    format!(
        "{}{{{}}}{}",
        &line[..open],
        labels.join(","),
        &line[close + 1..]
    )
}

fn multiset(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(normalize).collect();
    v.sort();
    v
}

/// The reference's expected file as the port prints it: TYPE lines de-duplicated.
fn expected_multiset(reference: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut v: Vec<String> = reference
        .lines()
        .filter(|l| !l.starts_with("# TYPE") || seen.insert(l.to_string()))
        .map(normalize)
        .collect();
    v.sort();
    v
}

/// ftest/compare_file.py: same number of lines, each line's sorted characters found.
fn compare_file_py(expected: &str, got: &str) -> bool {
    let sort_line = |l: &str| {
        let mut c: Vec<char> = l.chars().collect();
        c.sort();
        c.into_iter().collect::<String>()
    };
    let e: Vec<String> = expected.lines().map(sort_line).collect();
    let g: Vec<&str> = got.lines().collect();
    e.len() == g.len() && g.iter().all(|l| e.contains(&sort_line(l)))
}

// --- ftest/test_agent_prometheus.sh --------------------------------------------

/// The three `check_get_metrics` steps of one half of the ftest (fake time 50; the
/// 30-second cleanup timer does not fire during the test).
fn run_ftest(cfg: &PromConfig, tagged: &str, expected: [&str; 3]) {
    let now = 50;
    let mut s = PromStore::new();
    let steps: [&[String]; 3] = [
        &[
            "test.gauge.1 10 41".into(),
            "test.gauge.1 20 42".into(),
            format!("{tagged} 20 1"),
            format!("{tagged} 15 1"),
            "test.gauge.2^host.h^class.foo 20 43".into(),
            "*test.counter.foo 15 1".into(),
        ],
        &[format!("{tagged} 25 1"), "test.gauge 25 43".into()],
        &[
            "*test.counter^host.h^role.r^role.r-2 51 1".into(),
            "test.gauge.2^host.h^class.foo 35 44".into(),
            "test.gauge.2^host.h^class.foo 40 45".into(),
        ],
    ];
    for (lines, want) in steps.iter().zip(expected) {
        for l in lines.iter() {
            // send_stat appends CRLF; the splitter leaves the CR, the parser treats
            // it as whitespace.
            assert!(feed(&mut s, cfg, &format!("{l}\r"), now));
        }
        let got = s.render(now);
        assert_eq!(multiset(&got), expected_multiset(want), "{got}");
        // Every TYPE line precedes its name's samples, once.
        let types: Vec<&str> = got.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut dedup = types.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(types.len(), dedup.len());
        // The reference's layout is the reference's expected file, duplicate TYPE
        // lines included.
        let reference = s.render_as(now, PromLayout::Reference);
        assert_eq!(multiset(&reference), multiset(want), "{reference}");
        assert!(compare_file_py(want, &reference), "{reference}");
    }
}

/// The reference's expected ftest output `ftest/expected/test_agent_prometheus/NAME`,
/// read from a local clone of the reference (`ISTATD_REFERENCE_REPO`, a git
/// directory); `None` when there is none. The files are the reference project's and
/// are not copied into this repository.
fn reference_expected(name: &str) -> Option<String> {
    let repo = std::env::var("ISTATD_REFERENCE_REPO")
        .unwrap_or_else(|_| "/work/.mirror/imvu-open+istatd/repo".into());
    let out = std::process::Command::new("git")
        .args(["-C", &repo, "show"])
        .arg(format!("HEAD:ftest/expected/test_agent_prometheus/{name}"))
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("SKIP: no reference clone at {repo} for {name}");
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

fn expected3(suffix: &str) -> Option<[String; 3]> {
    Some([
        reference_expected(&format!("GET_metrics_returns_types_and_values{suffix}"))?,
        reference_expected(&format!("GET_metrics_returns_cumulative_counters{suffix}"))?,
        reference_expected(&format!(
            "GET_metrics_returns_new_metric_if_tag_changes{suffix}"
        ))?,
    ])
}

#[test]
fn ftest_agent_prometheus() {
    let Some(e) = expected3("") else { return };
    run_ftest(
        &cfg(),
        "*test.counter^host.h^role.r^class.c^d.f",
        [e[0].as_str(), e[1].as_str(), e[2].as_str()],
    );
}

#[test]
fn ftest_agent_prometheus_no_name_mapping() {
    let mut c = cfg();
    c.translate_names = false;
    c.extra_tag_names = load_tag_names("d.f.e\nextra.tag\n");
    let Some(e) = expected3("_no_name_mapping") else {
        return;
    };
    run_ftest(
        &c,
        "*test.counter^host.h^role.r^class.c^d.f.e^extra.tag.a.val",
        [e[0].as_str(), e[1].as_str(), e[2].as_str()],
    );
}

#[test]
fn ftest_compare_file_py_passes_the_reference_layout_only() {
    // compare_file.py counts lines: the reference's duplicate `# TYPE test_counter
    // counter` makes its expected file one line longer than the strict layout.
    let Some([types_and_values, cumulative_counters, new_metric]) = expected3("") else {
        return;
    };
    let c = cfg();
    let mut s = store_of(
        &c,
        &[
            "test.gauge.1 10 41",
            "test.gauge.1 20 42",
            "*test.counter^host.h^role.r^class.c^d.f 20 1",
            "*test.counter^host.h^role.r^class.c^d.f 15 1",
            "test.gauge.2^host.h^class.foo 20 43",
            "*test.counter.foo 15 1",
        ],
        50,
    );
    assert!(compare_file_py(
        &types_and_values,
        &s.render_as(50, PromLayout::Reference)
    ));
    feed(
        &mut s,
        &c,
        "*test.counter^host.h^role.r^class.c^d.f 25 1",
        50,
    );
    feed(&mut s, &c, "test.gauge 25 43", 50);
    assert!(compare_file_py(
        &cumulative_counters,
        &s.render_as(50, PromLayout::Reference)
    ));
    feed(&mut s, &c, "*test.counter^host.h^role.r^role.r-2 51 1", 50);
    feed(&mut s, &c, "test.gauge.2^host.h^class.foo 35 44", 50);
    feed(&mut s, &c, "test.gauge.2^host.h^class.foo 40 45", 50);
    assert!(compare_file_py(
        &new_metric,
        &s.render_as(50, PromLayout::Reference)
    ));
    let strict = s.render(50);
    assert!(!compare_file_py(&new_metric, &strict));
    let fixed = new_metric.replacen("# TYPE test_counter counter\n", "", 1);
    assert!(compare_file_py(&fixed, &strict));
}

#[test]
fn layout_follows_the_accept_header() {
    use PromLayout::{Reference, Strict};
    let prometheus = b"application/openmetrics-text;version=1.0.0;q=0.5,\
        text/plain;version=0.0.4;q=0.3,*/*;q=0.1";
    let telegraf = b"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
        encoding=delimited;q=0.7,text/plain; version=0.0.4;q=0.3";
    assert_eq!(PromLayout::for_accept(Some(prometheus)), Strict);
    assert_eq!(PromLayout::for_accept(Some(telegraf)), Strict);
    assert_eq!(
        PromLayout::for_accept(Some(b"text/plain;version=0.0.4")),
        Strict
    );
    assert_eq!(PromLayout::for_accept(None), Reference);
    assert_eq!(PromLayout::for_accept(Some(b"*/*")), Reference);
    assert_eq!(PromLayout::for_accept(Some(b"text/plain")), Reference);
    assert_eq!(
        PromLayout::for_accept(Some(b"text/html;q=0.9,*/*;q=0.8")),
        Reference
    );
    // A media type whose name merely contains "version=" is not a parameter.
    assert_eq!(PromLayout::for_accept(Some(b"x/version=1")), Reference);
}

#[test]
fn reference_layout_keeps_every_line_and_puts_later_gauges_last() {
    let c = cfg();
    let s = store_of(
        &c,
        &[
            "g 10 1",
            "h 20 5",
            "g 20 2",
            "g 20 2",
            "*c^host.h 20 1",
            "*c^role.r 20 1",
        ],
        50,
    );
    assert_eq!(
        s.render_as(50, PromLayout::Reference),
        "# TYPE c counter\nc{host=\"h\",counter=\"1\"} 1 50000\n\
         # TYPE c counter\nc{role=\"r\",counter=\"1\"} 1 50000\n\
         # TYPE g gauge\ng 1 10000\n\
         # TYPE h gauge\nh 5 20000\n\
         g 2 20000\ng 2 20000\n"
    );
    assert_eq!(
        s.render(50),
        "# TYPE c counter\nc{host=\"h\",counter=\"1\"} 1 50000\n\
         c{role=\"r\",counter=\"1\"} 1 50000\n\
         # TYPE g gauge\ng 1 10000\ng 2 20000\n\
         # TYPE h gauge\nh 5 20000\n"
    );
}
