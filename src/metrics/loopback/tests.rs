use super::*;

// ---- loopback counters

#[test]
fn loopback_names_and_kinds() {
    assert_eq!(Loopback::ALL.len(), 36);
    let mut names: Vec<&str> = Loopback::ALL.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 36);
    assert_eq!(Loopback::AdminCommands.name(), "admin.commands");
    assert_eq!(Loopback::AdminCommands.kind(), LoopbackKind::Event);
    assert_eq!(Loopback::CounterQueuelen.kind(), LoopbackKind::Counted);
    assert_eq!(Loopback::CounterEagerconns.kind(), LoopbackKind::Counted);
    assert_eq!(Loopback::HttpCurrent.kind(), LoopbackKind::Gauge);
    assert_eq!(Loopback::AppMemoryVmrss.name(), "app.memory.vmrss");
    for (i, c) in Loopback::ALL.iter().enumerate() {
        assert_eq!(*c as usize, i);
    }
    let counted: Vec<_> = Loopback::ALL
        .iter()
        .filter(|c| c.kind() == LoopbackKind::Counted)
        .collect();
    assert_eq!(counted.len(), 2);
}

#[test]
fn loopback_merge_and_record() {
    let mut a = LoopbackCounters::new(&["10s", "5m"]);
    let mut b = LoopbackCounters::new(&["10s", "5m"]);
    a.incr(Loopback::AdminCommands);
    a.incr(Loopback::AdminCommands);
    b.incr(Loopback::AdminCommands);
    a.incr(Loopback::CounterEagerconns);
    b.incr(Loopback::CounterEagerconns);
    b.decr(Loopback::CounterEagerconns);
    a.set(Loopback::HttpCurrent, 2);
    b.set(Loopback::HttpCurrent, 1);
    b.set(Loopback::AppMemoryVmsize, 4096);
    a.add_pagecache(1, 5, 2);
    a.add_pagecache(9, 1, 1); // out of range: ignored

    let mut total = LoopbackCounters::default();
    total.merge(&a);
    total.merge(&b);
    assert_eq!(total.get(Loopback::AdminCommands), 3);
    assert_eq!(total.get(Loopback::CounterEagerconns), 1);
    assert_eq!(total.get(Loopback::HttpCurrent), 3);
    assert_eq!(total.get(Loopback::AppMemoryVmsize), 4096);
    assert_eq!(total.pagecache(1), Some((5, 2)));

    let mut rec = LoopbackRecorder::new();
    let got = rec.samples(&total);
    let want = [
        ("istatd.http.current", 3),
        ("*istatd.admin.commands", 3),
        ("istatd.app.memory.vmsize", 4096),
        ("istatd.counter.eagerconns", 1),
        ("*istatd.pagecache.hits.time_5m", 5),
        ("*istatd.pagecache.misses.time_5m", 2),
    ];
    let mut got_pairs: Vec<(&str, i64)> = got.iter().map(|s| (s.key.as_str(), s.value)).collect();
    let mut want_sorted = want.to_vec();
    got_pairs.sort_unstable();
    want_sorted.sort_unstable();
    assert_eq!(got_pairs, want_sorted);

    // Nothing new: only the non-zero counted level is recorded again.
    let got = rec.samples(&total);
    assert_eq!(
        got,
        vec![LoopbackSample {
            key: "istatd.counter.eagerconns".into(),
            value: 1
        }]
    );

    // More events on one shard: the increase is recorded; a gauge set to the same
    // value is recorded again.
    a.incr(Loopback::AdminCommands);
    a.set(Loopback::HttpCurrent, 2);
    a.decr(Loopback::CounterEagerconns);
    let mut total = LoopbackCounters::default();
    total.merge(&a);
    total.merge(&b);
    let got = rec.samples(&total);
    assert_eq!(
        got,
        vec![
            LoopbackSample {
                key: "istatd.http.current".into(),
                value: 3
            },
            LoopbackSample {
                key: "*istatd.admin.commands".into(),
                value: 1
            },
        ]
    );
    let stats = total.stats();
    assert!(stats.contains(&("istatd.admin.commands".to_string(), 4)));
    assert!(stats.contains(&("istatd.pagecache.hits.time_10s".to_string(), 0)));
    assert_eq!(stats.len(), 36 + 4);
}

#[test]
fn loopback_totals_from_sources() {
    let mut a = LoopbackCounters::new(&["10s"]);
    a.set(Loopback::CounterCreated, 10);
    a.set_pagecache(0, 7, 3);
    let mut rec = LoopbackRecorder::new();
    let got = rec.samples(&a);
    assert_eq!(got.len(), 3);
    a.set(Loopback::CounterCreated, 12);
    let got = rec.samples(&a);
    assert_eq!(
        got,
        vec![LoopbackSample {
            key: "*istatd.counter.created".into(),
            value: 2
        }]
    );
    // merging takes over retentions the target lacks
    let mut t = LoopbackCounters::default();
    t.merge(&a);
    assert_eq!(t.pagecache(0), Some((7, 3)));
    assert!(t
        .iter()
        .any(|(k, n, v)| k == LoopbackKind::Event && n == "pagecache.hits.time_10s" && v == 7));
}

#[test]
fn an_audit_records_every_retentions_pagecache_pair_even_at_zero() {
    // The reference's audit timer records both counters of every retention every 10 s,
    // zeros included, so they are listed from the first audit on.
    let mut a = LoopbackCounters::new(&["10s", "5m"]);
    let mut rec = LoopbackRecorder::new();
    let pagecache = |s: &[LoopbackSample]| -> Vec<(String, i64)> {
        s.iter()
            .filter(|x| x.key.contains("pagecache"))
            .map(|x| (x.key.clone(), x.value))
            .collect()
    };
    assert!(pagecache(&rec.samples(&a)).is_empty(), "no audit yet");
    a.audit_pagecache(&[[0, 0], [3, 1]]);
    assert_eq!(
        pagecache(&rec.samples(&a)),
        vec![
            ("*istatd.pagecache.hits.time_10s".to_string(), 0),
            ("*istatd.pagecache.misses.time_10s".to_string(), 0),
            ("*istatd.pagecache.hits.time_5m".to_string(), 3),
            ("*istatd.pagecache.misses.time_5m".to_string(), 1),
        ]
    );
    assert!(pagecache(&rec.samples(&a)).is_empty(), "no audit since");
    a.audit_pagecache(&[[2, 0], [3, 1]]);
    let merged = {
        let mut t = LoopbackCounters::new(&["10s", "5m"]);
        t.merge(&a);
        t
    };
    assert_eq!(
        pagecache(&rec.samples(&merged)),
        vec![
            ("*istatd.pagecache.hits.time_10s".to_string(), 2),
            ("*istatd.pagecache.misses.time_10s".to_string(), 0),
            ("*istatd.pagecache.hits.time_5m".to_string(), 0),
            ("*istatd.pagecache.misses.time_5m".to_string(), 0),
        ]
    );
}

#[test]
fn queuelen_records_the_most_samples_waiting_since_the_previous_recording() {
    let mut a = LoopbackCounters::new::<&str>(&[]);
    let mut rec = LoopbackRecorder::new();
    a.add(Loopback::CounterQueuelen, 3);
    a.decr(Loopback::CounterQueuelen);
    a.decr(Loopback::CounterQueuelen);
    a.decr(Loopback::CounterQueuelen);
    let queuelen = |s: Vec<LoopbackSample>| -> Vec<i64> {
        s.into_iter()
            .filter(|x| x.key == "istatd.counter.queuelen")
            .map(|x| x.value)
            .collect()
    };
    // Nothing waits now, but three did since the previous recording.
    assert_eq!(queuelen(rec.samples(&a)), vec![3]);
    a.take_queuelen_peak();
    assert_eq!(queuelen(rec.samples(&a)), Vec::<i64>::new());
    a.incr(Loopback::CounterQueuelen);
    assert_eq!(queuelen(rec.samples(&a)), vec![1]);
}
