//! Unit tests of the Prometheus exporter, including the reference's unit tests and
//! ftest expectations.

use super::*;
use crate::statline::{parse_line, LineOutcome, ParsedBatch};

mod ftest;

fn cfg() -> PromConfig {
    PromConfig::new("My-Host.example")
}

/// What the daemon does with one stat line (see the module docs).
fn feed(store: &mut PromStore, cfg: &PromConfig, line: &str, now: i64) -> bool {
    let mut batch = ParsedBatch::new();
    match parse_line(line.as_bytes(), now, &mut batch) {
        LineOutcome::Samples { name, .. } => {
            let sample = batch.records().last().expect("a record").sample;
            store.record_sample(cfg, name, &sample, now)
        }
        other => panic!("{line:?} is not a counter line: {other:?}"),
    }
}

fn store_of(cfg: &PromConfig, lines: &[&str], now: i64) -> PromStore {
    let mut s = PromStore::new();
    for l in lines {
        feed(&mut s, cfg, l, now);
    }
    s
}

// --- names -------------------------------------------------------------------

#[test]
fn prom_name_translation() {
    assert_eq!(prom_name(b"test.counter.d.f"), "test_counter_d_f");
    assert_eq!(prom_name(b"1digit.g"), "_1digit_g");
    assert_eq!(prom_name(b"Foo-Bar:baz/Q"), "foo_bar_baz_q");
    assert_eq!(prom_name(b"x.0y"), "x_0y");
    assert_eq!(prom_name("é".as_bytes()), "__");
    assert_eq!(prom_name(b""), "");
}

#[test]
fn no_translation_uses_istatd_munge() {
    let mut c = cfg();
    c.translate_names = false;
    assert_eq!(c.translate(b"Test.Gauge:1"), "test.gauge_1");
    assert_eq!(c.translate(b"1digit.g"), "1digit.g");
    let s = store_of(&c, &["*A.b^host.H 5 1", "x.0Y 10 2"], 50);
    assert_eq!(
        s.render(50),
        "# TYPE a.b counter\na.b{host=\"H\",counter=\"1\"} 1 50000\n\
         # TYPE x.0y gauge\nx.0y 2 10000\n"
    );
}

#[test]
fn star_marks_counters_and_is_dropped() {
    let s = store_of(&cfg(), &["*ev.x 10 1", "lvl.x 10 1"], 12);
    assert_eq!(
        s.render(12),
        "# TYPE ev_x counter\nev_x{counter=\"1\"} 1 10000\n\
         # TYPE lvl_x gauge\nlvl_x 1 10000\n"
    );
}

// --- tags --------------------------------------------------------------------

#[test]
fn tags_allowed_names_and_untagged_segments() {
    let s = store_of(
        &cfg(),
        &["m^host.h^role.r^class.c^pool.p^cluster.k^d.f^zone.z^hostx.y 100 7"],
        100,
    );
    assert_eq!(
        s.render(100),
        "# TYPE m gauge\n\
         m{host=\"h\",role=\"r\",class=\"c\",pool=\"p\",cluster=\"k\"} 7 100000\n\
         # TYPE m_d_f gauge\nm_d_f 7 100000\n\
         # TYPE m_zone_z gauge\nm_zone_z 7 100000\n\
         # TYPE m_hostx_y gauge\nm_hostx_y 7 100000\n"
    );
}

#[test]
fn tag_value_is_the_rest_and_raw() {
    // Shortest allowed prefix; the value keeps its dots and case.
    let s = store_of(&cfg(), &["m^host.A.b-C 100 1"], 100);
    assert_eq!(
        s.render(100),
        "# TYPE m gauge\nm{host=\"A.b-C\"} 1 100000\n"
    );
}

#[test]
fn extra_tag_names_may_contain_dots() {
    let mut c = cfg();
    c.extra_tag_names = load_tag_names("d.f.e\n  extra.tag \r\n\n");
    assert_eq!(c.extra_tag_names, ["d.f.e", "extra.tag"]);
    // `d.f.e` has no value here: untagged. `extra` alone is not allowed, so the
    // next dot-prefix `extra.tag` is tried.
    let s = store_of(&c, &["m^d.f.e^extra.tag.a.val 100 1"], 100);
    assert_eq!(
        s.render(100),
        "# TYPE m gauge\nm{extra_tag=\"a.val\"} 1 100000\n\
         # TYPE m_d_f_e gauge\nm_d_f_e 1 100000\n"
    );
}

#[test]
fn tag_names_are_exact() {
    let s = store_of(&cfg(), &["m^HOST.h 100 1"], 100);
    assert_eq!(s.render(100), "# TYPE m_host_h gauge\nm_host_h 1 100000\n");
}

#[test]
fn repeated_tag_name_opens_a_group() {
    let s = store_of(
        &cfg(),
        &["*c^host.h^role.r^role.r-2^class.x^role.r-3 100 1"],
        100,
    );
    assert_eq!(
        s.render(100),
        "# TYPE c counter\n\
         c{host=\"h\",role=\"r\",class=\"x\",counter=\"1\"} 1 100000\n\
         c{role=\"r-2\",counter=\"1\"} 1 100000\n\
         c{role=\"r-3\",counter=\"1\"} 1 100000\n"
    );
}

#[test]
fn empty_base_and_trailing_caret() {
    // No base: every expanded name is its own metric, each with its own marker.
    let s = store_of(&cfg(), &["^host.h^*ev 100 1"], 100);
    assert_eq!(
        s.render(100),
        "# TYPE ev counter\nev{counter=\"1\"} 1 100000\n\
         # TYPE host_h gauge\nhost_h 1 100000\n"
    );
    // A trailing caret yields the base itself, untagged.
    let s = store_of(&cfg(), &["b^host.h^ 100 1"], 100);
    assert_eq!(
        s.render(100),
        "# TYPE b gauge\nb{host=\"h\"} 1 100000\nb 1 100000\n"
    );
}

#[test]
fn no_caret_no_tags() {
    // Without a caret the name is never split into tags.
    let s = store_of(&cfg(), &["m.host.h 100 1"], 100);
    assert_eq!(s.render(100), "# TYPE m_host_h gauge\nm_host_h 1 100000\n");
}

#[test]
fn label_values_escaped() {
    let mut s = PromStore::new();
    s.record(&cfg(), b"m^host.a\"b\\c\nd", 100, 1.0, 100);
    assert_eq!(
        s.render(100),
        "# TYPE m gauge\nm{host=\"a\\\"b\\\\c\\nd\"} 1 100000\n"
    );
}

// --- counters ----------------------------------------------------------------

#[test]
fn counters_accumulate_and_keep_newest_time() {
    let mut s = PromStore::new();
    let c = cfg();
    s.record(&c, b"*a.b", 20, 1.0, 50);
    s.record(&c, b"*a.b", 15, 2.5, 50);
    s.record(&c, b"*a.b", 18, 1.0, 50);
    assert_eq!(s.counter_count(), 1);
    let e = &s.counters[b"*a.b".as_slice()];
    assert_eq!((e.value, e.time), (4.5, 20));
}

#[test]
fn counter_restart_rule() {
    let mut s = PromStore::new();
    let c = cfg();
    s.record(&c, b"*a", 1, 4_294_967_290.0, 50);
    s.record(&c, b"*a", 1, 5.0, 50); // == COUNT_MAX: still added
    assert_eq!(s.counters[b"*a".as_slice()].value, COUNT_MAX);
    s.record(&c, b"*a", 1, 3.0, 50); // would exceed: restart at 3
    assert_eq!(s.counters[b"*a".as_slice()].value, 3.0);
}

#[test]
fn counters_keyed_by_raw_caret_name() {
    // Two tag sets of one metric name are two entries; the untagged `d.f` part is
    // shared with a plain line naming it.
    let s = store_of(
        &cfg(),
        &["*t^host.h^d.f 20 1", "*t^host.g^d.f 20 1", "*t.d.f 20 1"],
        50,
    );
    assert_eq!(s.counter_count(), 3);
    assert_eq!(
        s.render(50),
        "# TYPE t counter\n\
         t{host=\"g\",counter=\"1\"} 1 50000\n\
         t{host=\"h\",counter=\"1\"} 1 50000\n\
         # TYPE t_d_f counter\nt_d_f{counter=\"1\"} 3 50000\n"
    );
}

#[test]
fn counter_timestamp_is_now_rounded_down_to_5s() {
    let s = store_of(&cfg(), &["*a 3 1"], 1004);
    assert_eq!(
        s.render(1004),
        "# TYPE a counter\na{counter=\"1\"} 1 1000000\n"
    );
    assert_eq!(
        s.render(1005),
        "# TYPE a counter\na{counter=\"1\"} 1 1005000\n"
    );
}

// --- gauges ------------------------------------------------------------------

#[test]
fn gauges_keep_every_sample_in_time_order() {
    let s = store_of(&cfg(), &["g 30 3", "g 10 1", "h 20 5", "g 20 2"], 50);
    assert_eq!(s.gauge_count(), 4);
    // One group per name, names in order of their first sample time.
    assert_eq!(
        s.render(50),
        "# TYPE g gauge\ng 1 10000\ng 2 20000\ng 3 30000\n\
         # TYPE h gauge\nh 5 20000\n"
    );
}

#[test]
fn duplicate_series_printed_once_first_wins() {
    let s = store_of(
        &cfg(),
        &[
            "g 20 2",
            "g 20 7",
            "m^role.a^role.a 20 1",
            "*c^host.h^role.r 20 1",
            "*c^role.r^host.h 20 5",
            "*C^host.h^role.r 20 9",
        ],
        50,
    );
    // Everything is stored ...
    assert_eq!((s.gauge_count(), s.counter_count()), (3, 3));
    // ... but each series has one line: the first in print order (counters by
    // name, then raw key: `*c^host.h^role.r` < `*c^role.r^host.h`; `*C` prints
    // as `c` too and sorts first by key).
    assert_eq!(
        s.render(50),
        "# TYPE c counter\nc{host=\"h\",role=\"r\",counter=\"1\"} 9 50000\n\
         # TYPE g gauge\ng 2 20000\n\
         # TYPE m gauge\nm{role=\"a\"} 1 20000\n"
    );
}

#[test]
fn two_field_lines_and_time_zero_use_now() {
    let s = store_of(&cfg(), &["g 7", "h 0 8"], 77);
    assert_eq!(
        s.render(77),
        "# TYPE g gauge\ng 7 77000\n# TYPE h gauge\nh 8 77000\n"
    );
}

#[test]
fn values_in_g6_format() {
    let mut s = PromStore::new();
    let c = cfg();
    for (i, v) in [1.0 / 3.0, 1e7, 123456789.0, 0.0001, 1e-5, -2.5]
        .iter()
        .enumerate()
    {
        s.record(&c, format!("g{i}").as_bytes(), 10 + i as i64, *v, 50);
    }
    let text = s.render(50);
    let vals: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        vals,
        [
            "0.333333",
            "1e+07",
            "1.23457e+08",
            "0.0001",
            "1e-05",
            "-2.5"
        ]
    );
}

#[test]
fn non_finite_values_in_prometheus_spelling() {
    let mut s = PromStore::new();
    let c = cfg();
    s.record(&c, b"a", 10, f64::NAN, 50);
    s.record(&c, b"b", 11, f64::INFINITY, 50);
    s.record(&c, b"c", 12, f64::NEG_INFINITY, 50);
    assert_eq!(
        s.render(50),
        "# TYPE a gauge\na NaN 10000\n# TYPE b gauge\nb +Inf 11000\n\
         # TYPE c gauge\nc -Inf 12000\n"
    );
}

#[test]
fn seven_field_value_is_sum_over_count() {
    assert_eq!(sample_value(10.0, 4), Some(2.5));
    assert_eq!(sample_value(10.0, 0), None);
    let c = cfg();
    let mut s = PromStore::new();
    assert!(feed(&mut s, &c, "g 10 9 27 1 5 3", 50));
    assert!(!feed(&mut s, &c, "h 10 9 27 1 5 0", 50));
    assert_eq!(s.render(50), "# TYPE g gauge\ng 3 10000\n");
}

// --- order and TYPE lines ------------------------------------------------------

#[test]
fn counters_first_then_gauges_one_type_line_per_name() {
    let s = store_of(
        &cfg(),
        &[
            "g_one 990 1.5",
            "*c_tag^host.h1^role.r 995 2",
            "g_tag^class.c^pool.p 1000 7",
            "*c_one 1000 7",
            "g_one 995 2",
        ],
        1000,
    );
    assert_eq!(
        s.render(1000),
        "# TYPE c_one counter\nc_one{counter=\"1\"} 7 1000000\n\
         # TYPE c_tag counter\nc_tag{host=\"h1\",role=\"r\",counter=\"1\"} 2 1000000\n\
         # TYPE g_one gauge\ng_one 1.5 990000\ng_one 2 995000\n\
         # TYPE g_tag gauge\ng_tag{class=\"c\",pool=\"p\"} 7 1000000\n"
    );
}

#[test]
fn counter_and_gauge_sharing_a_name_get_one_type_line() {
    let s = store_of(&cfg(), &["x 10 1", "*x 10 2"], 50);
    assert_eq!(
        s.render(50),
        "# TYPE x counter\nx{counter=\"1\"} 2 50000\nx 1 10000\n"
    );
}

#[test]
fn empty_store_renders_nothing() {
    assert_eq!(PromStore::new().render(50), "");
}

// --- entry cap ---------------------------------------------------------------

#[test]
fn max_entries_reference_unit_test() {
    // test_PromExporter.cpp, "test mamimum meric count", FakeTime 1329345881.
    let now = 1_329_345_881;
    let mut c = cfg();
    c.max_entries = 2;
    let mut s = PromStore::new();
    s.record(&c, b"*a.ok.1", 1_329_345_850, 1.0, now);
    s.record(&c, b"*a.ok.2", 1_329_345_850, 1.0, now);
    s.record(&c, b"z.ok", 1_329_345_870, 1.0, now); // 2 entries, not > 2: stored
    s.record(&c, b"z.dropped", 1_329_345_880, 1.0, now);
    s.record(&c, b"*y.dropped", 1_329_345_880, 1.0, now);
    assert_eq!((s.counter_count(), s.gauge_count()), (3, 1));
    let d = &s.counters[DROPPED_METRICS_KEY.as_bytes()];
    assert_eq!((d.value, d.time), (2.0, now));
    assert!(s.render(now).contains(
        "# TYPE istatd_agent_dropped_metrics counter\n\
         istatd_agent_dropped_metrics{host=\"my_host_example\",counter=\"1\"} 2 1329345880000\n"
    ));
    // Accumulating into an existing counter is refused as well.
    s.record(&c, b"*a.ok.1", 1_329_345_850, 1.0, now);
    assert_eq!(s.counters[b"*a.ok.1".as_slice()].value, 1.0);
    assert_eq!(s.counters[DROPPED_METRICS_KEY.as_bytes()].value, 3.0);
}

#[test]
fn max_entries_checked_per_stored_entry_of_a_line() {
    let mut c = cfg();
    c.max_entries = 1;
    let mut s = PromStore::new();
    // Entry 1 (tagged) and 2 (`m.d.f`) fit: 0 and 1 are not > 1; `m.x.y` does not.
    s.record(&c, b"m^host.h^d.f^x.y", 10, 1.0, 50);
    assert_eq!((s.gauge_count(), s.counter_count()), (2, 1));
    assert_eq!(s.counters[DROPPED_METRICS_KEY.as_bytes()].value, 1.0);
}

#[test]
fn max_entries_zero_or_negative_is_unlimited() {
    for max in [0, -1] {
        let mut c = cfg();
        c.max_entries = max;
        let mut s = PromStore::new();
        for i in 0..100 {
            s.record(&c, format!("g{i}").as_bytes(), 10, 1.0, 50);
        }
        assert_eq!(s.len(), 100);
    }
}

#[test]
fn dropped_counter_host_untranslated() {
    let mut c = cfg();
    c.translate_names = false;
    c.max_entries = 1;
    let s = store_of(&c, &["a 10 1", "b 10 1", "c 10 1"], 50);
    assert!(s.render(50).contains(
        "istatd.agent.dropped.metrics{host=\"my-host.example\",counter=\"1\"} 1 50000\n"
    ));
}

// --- cleanup -----------------------------------------------------------------

#[test]
fn cleanup_reference_unit_test() {
    // test_PromExporter.cpp "test onCleanup": period 30, now 1329345881.
    let now = 1_329_345_881;
    let c = cfg();
    let mut s = PromStore::new();
    s.record(&c, b"*foo.bar", 1_329_345_855, 5.0, now);
    s.record(&c, b"x.0y", 1_329_345_851, 0.5, now);
    s.record(&c, b"*foo.bar", 1_329_345_819, 2.0, now);
    s.record(&c, b"x.0y", 1_329_345_821, 1.0, now);
    s.record(&c, b"foo.bar.baz", 1_329_345_819, 2.0, now);
    s.record(&c, b"foo.bar.baz", 1_329_345_880, 0.2, now);
    s.expire_gauges(&c, now);
    let kept: Vec<(i64, f64)> = s.gauges.values().map(|e| (e.time, e.value)).collect();
    // 1329345851 == now - 30 is kept (only older samples go).
    assert_eq!(kept, [(1_329_345_851, 0.5), (1_329_345_880, 0.2)]);
    let e = &s.counters[b"*foo.bar".as_slice()];
    assert_eq!((e.value, e.time), (7.0, 1_329_345_855));
}

#[test]
fn stale_counters_reference_unit_test() {
    let now = 1_329_345_881;
    let c = cfg();
    let mut s = PromStore::new();
    s.record(&c, b"*keep", now - 86_400, 1.0, now);
    s.record(&c, b"*a_stale", 1_329_245_850, 1.0, now);
    s.record(&c, b"*z_stale", 1_329_259_475, 1.0, now);
    s.record(&c, b"g", 1_329_245_850, 1.0, now);
    s.expire_counters(now);
    assert_eq!(s.counter_count(), 1);
    assert!(s.counters.contains_key(b"*keep".as_slice()));
    assert_eq!(s.gauge_count(), 1, "counters only");
    s.cleanup(&c, now);
    assert_eq!((s.counter_count(), s.gauge_count()), (1, 0));
}

// --- merging -----------------------------------------------------------------

#[test]
fn merge_sums_counters_and_unions_gauges() {
    let c = cfg();
    let a = store_of(&c, &["*n^host.h 20 1", "g 10 1", "g 30 3"], 50);
    let b = store_of(
        &c,
        &["*n^host.h 40 2", "g 20 2", "g 10 9", "*m 5 1", "h 10 4"],
        50,
    );
    let mut all = PromStore::new();
    all.merge_from(&a);
    all.merge_from(&b);
    assert_eq!(all.counters[b"*n^host.h".as_slice()].time, 40);
    assert_eq!(
        all.render(50),
        "# TYPE m counter\nm{counter=\"1\"} 1 50000\n\
         # TYPE n counter\nn{host=\"h\",counter=\"1\"} 3 50000\n\
         # TYPE g gauge\ng 1 10000\ng 2 20000\ng 3 30000\n\
         # TYPE h gauge\nh 4 10000\n"
    );
    // Both samples at 10 are kept; the render prints the first (this store's).
    assert_eq!(all.gauge_count(), 5);
    // Merging into an empty store reproduces the store.
    let mut copy = PromStore::new();
    copy.merge_from(&a);
    assert_eq!(copy.render(50), a.render(50));
}

#[test]
fn store_is_send() {
    fn send<T: Send + 'static>() {}
    send::<PromStore>();
    send::<PromConfig>();
}

// --- the reference's unit test (extract_tags part) -----------------------------

#[test]
fn reference_extract_tags_gauge() {
    // test_PromExporter.cpp "test extract_tags gauge", with the port's caret
    // expansion of the raw name (the reference test passes hand-made names).
    let c = cfg();
    let raw = b"x.y.z^host.h123^role.r123^role.r456-1^a-b^a-b.^a-b.ab123.x.y.z";
    let mut s = PromStore::new();
    s.record(&c, raw, 1_329_345_860, 0.2, 1_329_345_881);
    s.record(&c, raw, 1_329_345_865, 0.4, 1_329_345_881);
    assert_eq!(
        s.render(1_329_345_881),
        "# TYPE x_y_z gauge\n\
         x_y_z{host=\"h123\",role=\"r123\"} 0.2 1329345860000\n\
         x_y_z{role=\"r456-1\"} 0.2 1329345860000\n\
         x_y_z{host=\"h123\",role=\"r123\"} 0.4 1329345865000\n\
         x_y_z{role=\"r456-1\"} 0.4 1329345865000\n\
         # TYPE x_y_z_a_b gauge\nx_y_z_a_b 0.2 1329345860000\nx_y_z_a_b 0.4 1329345865000\n\
         # TYPE x_y_z_a_b_ gauge\nx_y_z_a_b_ 0.2 1329345860000\nx_y_z_a_b_ 0.4 1329345865000\n\
         # TYPE x_y_z_a_b_ab123_x_y_z gauge\n\
         x_y_z_a_b_ab123_x_y_z 0.2 1329345860000\nx_y_z_a_b_ab123_x_y_z 0.4 1329345865000\n"
    );
}

#[test]
fn reference_extract_tags_counters() {
    let c = cfg();
    let raw = b"*a.b.c^class.c123^pool.p123^abc^class.c456^a.b.c";
    let mut s = PromStore::new();
    s.record(&c, raw, 1_329_345_870, 1.0, 1_329_345_881);
    s.record(&c, raw, 1_329_345_875, 1.0, 1_329_345_881);
    assert_eq!(s.counter_count(), 3);
    assert_eq!(
        s.render(1_329_345_881),
        "# TYPE a_b_c counter\n\
         a_b_c{class=\"c123\",pool=\"p123\",counter=\"1\"} 2 1329345880000\n\
         a_b_c{class=\"c456\",counter=\"1\"} 2 1329345880000\n\
         # TYPE a_b_c_a_b_c counter\na_b_c_a_b_c{counter=\"1\"} 2 1329345880000\n\
         # TYPE a_b_c_abc counter\na_b_c_abc{counter=\"1\"} 2 1329345880000\n"
    );
}

// --- internal counters ---------------------------------------------------------

#[test]
fn internal_gauge_rule() {
    for g in [
        "istatd.statserver.connected",
        "istatd.http.current",
        "istatd.counter.queuelen",
        "istatd.counter.eagerconns",
        "istatd.app.memory.vmsize",
        "istatd.app.memory.vmrss",
        "istatd.store.open_files",
        "istatd.store.open_files_peak",
        "istatd.store.cached_pages",
        "istatd.store.counters",
        "istatd.store.files",
        "istatd.store.flush_rounds_min",
        "istatd.replica.connections",
    ] {
        assert!(internal_is_gauge(g), "{g}");
    }
    for c in [
        "istatd.statserver.connects",
        "istatd.statserver.drops",
        "istatd.store.page_hits",
        "istatd.store.bad_files",
        "istatd.counter.enqueue",
        "istatd.admin.connections",
        "istatd.mm.opens",
        "istatd.pagecache.hits.time_10s",
        "istatd.exceptions",
    ] {
        assert!(!internal_is_gauge(c), "{c}");
    }
}

#[test]
fn internal_text() {
    let out = render_internal(&[
        ("istatd.statserver.connects".into(), 12),
        ("istatd.counter.queuelen".into(), -3),
        ("istatd.store.page_hits".into(), 0),
        ("istatd.Store.page-hits".into(), 5), // same translated name: skipped
    ]);
    assert_eq!(
        out,
        "# HELP istatd_statserver_connects istatd internal counter istatd.statserver.connects\n\
         # TYPE istatd_statserver_connects counter\n\
         istatd_statserver_connects 12\n\
         # HELP istatd_counter_queuelen istatd internal counter istatd.counter.queuelen\n\
         # TYPE istatd_counter_queuelen gauge\n\
         istatd_counter_queuelen -3\n\
         # HELP istatd_store_page_hits istatd internal counter istatd.store.page_hits\n\
         # TYPE istatd_store_page_hits counter\n\
         istatd_store_page_hits 0\n"
    );
    assert_eq!(render_internal(&[]), "");
}
