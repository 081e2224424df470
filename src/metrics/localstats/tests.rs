//! Unit tests of the local stats: sampling from fixed /proc texts and from this
//! machine, names and stat lines.

use super::*;
use crate::statline::{parse_line, ParsedBatch};

const NET_HEADER: &str = "Inter-|   Receive                                                |  Transmit\n \
     face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n";

const MEMINFO: &str = "MemTotal:           1000 kB\n\
     MemFree:             200 kB\n\
     MemAvailable:        600 kB\n\
     Buffers:              10 kB\n\
     Cached:              300 kB\n\
     SwapCached:           50 kB\n\
     SwapTotal:           400 kB\n\
     SwapFree:            100 kB\n\
     HugePages_Total:       0\n";

const PIDS: &str = "1 (systemd) S 0 1 1 0 -1 4194560 1 2 3\n\
     2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0\n\
     10 (a) b) R 1 10 10 0 -1 0 0 0 0\n\
     11 (zomb) Z 1 11 11 0 -1 0 0 0 0\n\
     12 (stop) T 1 12 12 0 -1 0 0 0 0\n\
     13 (disk) D 1 13 13 0 -1 0 0 0 0\n\
     14 (kworker/0:0-events) I 2 0 0 0 -1 0 0 0 0\n\
     15 (truncated\n";

fn first() -> ProcTexts {
    ProcTexts {
        stat: "cpu  2000 500 1500 6000 300 7 9 0 0 0\n\
               cpu0 1000 250 750 3000 150 3 4 0 0 0\n\
               intr 12345 0 0\nctxt 999\nprocs_running 2\n"
            .into(),
        meminfo: MEMINFO.into(),
        loadavg: "0.50 1.25 2.00 3/120 4567\n".into(),
        diskstats: "   8       0 sda 100 5 2000 50 200 10 4000 80 0 100 130 0 0 0 0 0 0\n   \
                    8       1 sda1 10 0 100 5 20 0 300 8 0 10 13 0 0 0 0\n   \
                    7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
            .into(),
        net_dev: format!(
            "{NET_HEADER}    lo:    1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0\n  \
             eth0:   50000     400    1    0    0     0          0         0    20000     300    2    0    0     3       0          0\n"
        ),
        pid_stats: PIDS.into(),
    }
}

fn second() -> ProcTexts {
    ProcTexts {
        stat: "cpu  2100 520 1580 6200 340 9 12 0 0 0\n\
               cpu0 1050 260 790 3100 170 4 6 0 0 0\n\
               intr 12400 0 0\nctxt 1010\nprocs_running 1\n"
            .into(),
        meminfo: MEMINFO.replace("MemFree:             200", "MemFree:             100"),
        loadavg: "0.75 1.00 1.50 1/121 4600\n".into(),
        // sda moved, sda1 did not, loop0 went away, nvme0n1 is new.
        diskstats: "   8       0 sda 110 5 2010 50 230 10 4100 80 0 100 130 0 0 0 0 0 0\n   \
                    8       1 sda1 10 0 100 5 20 0 300 8 0 10 13 0 0 0 0\n \
                    259       0 nvme0n1 1 0 8 1 2 0 16 1 0 1 2 0 0 0 0 0 0\n"
            .into(),
        net_dev: format!(
            "{NET_HEADER}    lo:    1500      15    0    0    0     0          0         0     1500      15    0    0    0     0       0          0\n  \
             eth0:   60000     500    1    0    0     0          0         0    25000     350    4    0    0     5       0          0\n"
        ),
        pid_stats: "1 (systemd) S 0 1 1\n2 (kthreadd) R 0 0 0\n".into(),
    }
}

fn owned(v: &[(&str, f32)]) -> Vec<(String, f32)> {
    v.iter().map(|(n, x)| (n.to_string(), *x)).collect()
}

/// The samples of [`first`] by a new sampler (totals since boot, like libstatgrab's
/// first call) and of [`second`] next (the interval), side by side: metric, value in
/// the first sample, value in the second; `None` where that sample has no such device.
const FIRST_AND_SECOND: &[(&str, Option<f32>, Option<f32>)] = &[
    // cpu, first: 10000 ticks since boot (2000 + 500 + 1500 + 6000); second: deltas
    // user 100, nice 20, system 80, idle 200 (total 400), iowait 40
    ("cpu.user", Some(20.0), Some(25.0)),
    ("cpu.kernel", Some(15.0), Some(20.0)),
    ("cpu.idle", Some(60.0), Some(50.0)),
    ("cpu.iowait", Some(3.0), Some(10.0)),
    ("cpu.swap", Some(0.0), Some(0.0)),
    ("cpu.nice", Some(5.0), Some(5.0)),
    ("mem.total", Some(1_024_000.0), Some(1_024_000.0)),
    ("mem.free", Some(512_000.0), Some(409_600.0)),
    ("mem.used", Some(512_000.0), Some(614_400.0)),
    ("mem.cache", Some(307_200.0), Some(307_200.0)),
    ("load.min1", Some(0.5), Some(0.75)),
    ("load.min5", Some(1.25), Some(1.0)),
    ("load.min15", Some(2.0), Some(1.5)),
    ("swap.total", Some(409_600.0), Some(409_600.0)),
    ("swap.used", Some(307_200.0), Some(307_200.0)),
    ("swap.free", Some(102_400.0), Some(102_400.0)),
    ("disk.sda.read", Some(1_024_000.0), Some(5120.0)),
    ("disk.sda.write", Some(2_048_000.0), Some(51_200.0)),
    ("disk.sda1.read", Some(51_200.0), Some(0.0)),
    ("disk.sda1.write", Some(153_600.0), Some(0.0)),
    ("disk.loop0.read", Some(0.0), None),
    ("disk.loop0.write", Some(0.0), None),
    // new device in the second sample: its totals, as libstatgrab's diff does
    ("disk.nvme0n1.read", None, Some(4096.0)),
    ("disk.nvme0n1.write", None, Some(8192.0)),
    ("net.lo.tx", Some(1000.0), Some(500.0)),
    ("net.lo.rx", Some(1000.0), Some(500.0)),
    ("net.lo.ipackets", Some(10.0), Some(5.0)),
    ("net.lo.opackets", Some(10.0), Some(5.0)),
    ("net.lo.ierrors", Some(0.0), Some(0.0)),
    ("net.lo.oerrors", Some(0.0), Some(0.0)),
    ("net.lo.collisions", Some(0.0), Some(0.0)),
    ("net.eth0.tx", Some(20000.0), Some(5000.0)),
    ("net.eth0.rx", Some(50000.0), Some(10000.0)),
    ("net.eth0.ipackets", Some(400.0), Some(100.0)),
    ("net.eth0.opackets", Some(300.0), Some(50.0)),
    ("net.eth0.ierrors", Some(1.0), Some(0.0)),
    ("net.eth0.oerrors", Some(2.0), Some(2.0)),
    ("net.eth0.collisions", Some(3.0), Some(2.0)),
    ("process.total", Some(7.0), Some(2.0)),
    ("process.running", Some(1.0), Some(1.0)),
    ("process.sleeping", Some(2.0), Some(1.0)),
    ("process.stopped", Some(2.0), Some(0.0)),
    ("process.zombie", Some(1.0), Some(0.0)),
];

#[test]
fn first_call_is_since_boot_like_libstatgrab() {
    let mut s = Sampler::new();
    let got = s.sample_from(&first());
    let want: Vec<(String, f32)> = FIRST_AND_SECOND
        .iter()
        .filter_map(|(name, first, _)| first.map(|v| (name.to_string(), v)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn second_call_is_the_interval() {
    let mut s = Sampler::new();
    s.sample_from(&first());
    let got = s.sample_from(&second());
    let want: Vec<(String, f32)> = FIRST_AND_SECOND
        .iter()
        .filter_map(|(name, _, second)| second.map(|v| (name.to_string(), v)))
        .collect();
    assert_eq!(got, want);

    // The order follows the list of fixed names.
    let fixed: Vec<&str> = got
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !n.starts_with("disk.") && !n.starts_with("net."))
        .collect();
    assert_eq!(fixed, LOCAL_STATS_METRICS);
}

#[test]
fn idle_interval_and_missing_sources() {
    let mut s = Sampler::new();
    s.sample_from(&first());
    // No tick between samples: no cpu.* (libstatgrab would divide by zero).
    let got = s.sample_from(&first());
    assert!(!got.iter().any(|(n, _)| n.starts_with("cpu.")));
    assert!(got.iter().all(|(_, v)| v.is_finite()));
    assert_eq!(
        got.iter().find(|(n, _)| n == "disk.sda.read").unwrap().1,
        0.0
    );

    // Nothing parsable: only the process counts remain.
    let got = Sampler::new().sample_from(&ProcTexts::default());
    assert_eq!(
        got,
        owned(&[
            ("process.total", 0.0),
            ("process.running", 0.0),
            ("process.sleeping", 0.0),
            ("process.stopped", 0.0),
            ("process.zombie", 0.0),
        ])
    );

    // Swap needs both SwapTotal and SwapFree; a 4-number cpu line (no iowait) works.
    let t = ProcTexts {
        stat: "cpu 1 1 1 1\n".into(),
        meminfo: "MemTotal: 10 kB\nSwapTotal: 4 kB\n".into(),
        loadavg: "1.0 2.0\n".into(),
        ..ProcTexts::default()
    };
    let got = Sampler::new().sample_from(&t);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..10], &LOCAL_STATS_METRICS[..10]);
    assert_eq!(names[10], "process.total");
    assert_eq!(got[0].1, 25.0);
    assert_eq!(got[3].1, 0.0);
    assert_eq!(got[7].1, 0.0); // mem.free = MemFree 0 + Cached 0
    assert_eq!(got[8].1, 10240.0); // mem.used = total
}

#[test]
fn cpu_line_needs_a_blank_after_cpu() {
    assert_eq!(parse_cpu("cpu0 1 2 3 4 5\n"), None);
    assert_eq!(parse_cpu("cpu 1 2 3\n"), None);
    assert_eq!(
        parse_cpu("cpu\t1 2 3 4 5 6\n"),
        Some(CpuTicks {
            user: 1,
            nice: 2,
            kernel: 3,
            idle: 4,
            iowait: 5
        })
    );
}

#[test]
fn counters_wrap_at_32_bits_or_reset() {
    assert_eq!(counter_delta(10, 4), 6);
    assert_eq!(counter_delta(704, 4_294_967_000), 1000);
    assert_eq!(counter_delta(5, 1 << 40), 5);

    let mut s = Sampler::new();
    let net = |rx: u64| ProcTexts {
        net_dev: format!("{NET_HEADER}eth1:{rx} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"),
        ..ProcTexts::default()
    };
    s.sample_from(&net(4_294_967_000));
    let got = s.sample_from(&net(704));
    assert_eq!(got[1], ("net.eth1.rx".to_string(), 1000.0));
}

#[test]
fn malformed_device_lines_are_skipped() {
    let d = parse_diskstats("8 0 sda 1 2 3\nx 0 sdb 1 2 3 4 5 6 7 8\n8 0 sdc 1 2 3 4 5 6 7 8\n");
    assert_eq!(
        d,
        vec![("sdc".to_string(), DiskSectors { read: 3, write: 7 })]
    );
    let n = parse_net_dev(&format!(
        "{NET_HEADER}  bad: 1 2 3\n: 1 2 3 4 5 6 7 8 9 10 11 12 13 14\nwlan0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
    ));
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].0, "wlan0");
    assert_eq!(
        n[0].1,
        NetCounters {
            rx: 1,
            ipackets: 2,
            ierrors: 3,
            tx: 9,
            opackets: 10,
            oerrors: 11,
            collisions: 14
        }
    );
}

#[test]
fn lines_are_stat_commands() {
    let m = owned(&[("cpu.user", 12.5), ("mem.total", 8_123_456_789.0)]);
    let l = lines(&m, ".localhost", 1000);
    assert_eq!(
        l,
        vec![
            "localstat.cpu.user.localhost 1000 12.5".to_string(),
            "localstat.mem.total.localhost 1000 8.12346e+09".to_string(),
        ]
    );
    let mut b = ParsedBatch::new();
    parse_line(l[0].as_bytes(), 1000, &mut b);
    assert_eq!(b.get(0).unwrap().key, "localstat.cpu.user.localhost");
}

#[test]
fn read_proc_on_this_machine() {
    let mut s = Sampler::new();
    let a = read_proc().expect("read /proc");
    let first = s.sample_from(&a);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let second = s.sample_from(&read_proc().expect("read /proc"));
    for sample in [&first, &second] {
        assert!(sample.iter().all(|(_, v)| v.is_finite()), "{sample:?}");
        let names: Vec<&str> = sample.iter().map(|(n, _)| n.as_str()).collect();
        for m in LOCAL_STATS_METRICS {
            if m.starts_with("cpu.") && sample == &second {
                continue; // may be absent when no tick passed in 50 ms
            }
            assert!(names.contains(m), "{m} missing from {names:?}");
        }
    }
    let get = |n: &str| first.iter().find(|(m, _)| m == n).unwrap().1;
    assert!(get("mem.total") > 0.0);
    assert!(get("process.total") >= 1.0);
    let cpu: f32 = ["cpu.user", "cpu.kernel", "cpu.idle", "cpu.nice"]
        .iter()
        .map(|n| get(n))
        .sum();
    assert!((cpu - 100.0).abs() < 0.01, "{cpu}");
    assert!(!lines(&second, ".h", 5).is_empty());
}

#[test]
fn local_stats() {
    assert_eq!(local_stats_suffix(""), None);
    assert_eq!(
        local_stats_suffix("localhost").as_deref(),
        Some(".localhost")
    );
    assert_eq!(local_stats_suffix(".x").as_deref(), Some(".x"));
    assert_eq!(
        local_stats_suffix("^host.NAME").as_deref(),
        Some("^host.NAME")
    );
    let mut s = String::new();
    local_stat_line(&mut s, "cpu.user", ".localhost", 1000, 12.5);
    local_stat_line(&mut s, "mem.total", "^host.a", 1005, 8_123_456_789.0);
    assert_eq!(
        s,
        "localstat.cpu.user.localhost 1000 12.5\n\
         localstat.mem.total^host.a 1005 8.12346e+09\n"
    );
    let mut b = ParsedBatch::new();
    let line = s.lines().nth(1).unwrap();
    parse_line(line.as_bytes(), 1000, &mut b);
    assert_eq!(b.get(0).unwrap().key, "localstat.mem.total.host.a");
    assert_eq!(LOCAL_STATS_METRICS.len(), 21);
    assert_eq!(next_local_stats_time(1000), 1005);
    assert_eq!(next_local_stats_time(1003), 1005);
    assert_eq!(next_local_stats_time(1004), 1005);
}
