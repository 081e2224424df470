//! Host sampling for `--local-stats SUFFIX` (interfaces.md §2.11).
//!
//! The reference (`daemon/main.cpp`, `collectLocalStats`) asks libstatgrab every 5 s for
//! CPU percentages, memory, load, swap, disk and network I/O and process counts, and
//! feeds one `localstat.<metric><suffix> <now> <value>` line per value to its command
//! handler. The port reads the same numbers from /proc, the way libstatgrab 0.9x does
//! on Linux:
//!
//! | metric | source | value |
//! |---|---|---|
//! | `cpu.{user,kernel,idle,iowait,swap,nice}` | `/proc/stat` `cpu` line | percent of the interval's `user+nice+system+idle` ticks (iowait is *not* in the total; `swap` is always 0 on Linux) |
//! | `mem.{total,free,used,cache}` | `/proc/meminfo` | bytes; `free` = `MemFree + Cached`, `used` = `total - free`, `cache` = `Cached` |
//! | `load.{min1,min5,min15}` | `/proc/loadavg` | load averages |
//! | `swap.{total,used,free}` | `/proc/meminfo` | bytes; `used` = `SwapTotal - SwapFree` |
//! | `disk.<dev>.{read,write}` | `/proc/diskstats`, every line | bytes (sectors × 512) since the previous sample |
//! | `net.<if>.{tx,rx,ipackets,opackets,ierrors,oerrors,collisions}` | `/proc/net/dev` | bytes, packets, errors, collisions since the previous sample |
//! | `process.{total,running,sleeping,stopped,zombie}` | `/proc/<pid>/stat` state | counts; `R` running, `S` sleeping, `T` and `D` stopped, `Z` zombie; other states (`I`, `t`, `X`, …) only count in `total` |
//!
//! Interval values (CPU percentages, disk and network deltas) need a previous snapshot,
//! which [`Sampler`] keeps. Without one (the first call) the values are libstatgrab's:
//! CPU percentages since boot and disk/network totals since boot; a device missing from
//! the previous snapshot likewise reports its totals. The reference takes one sample at
//! start-up and throws it away ("initialize, without recording"), so its first
//! *recorded* sample is already an interval; the daemon should do the same.
//!
//! Parsing is pure ([`Sampler::sample_from`] on [`ProcTexts`]); [`read_proc`] does the
//! blocking reads and belongs on a blocking thread, not an executor.

use std::fs;
use std::io;
use std::path::Path;

use crate::statline;

/// The raw text of the /proc files one sample is computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcTexts {
    /// `/proc/stat`.
    pub stat: String,
    /// `/proc/meminfo`.
    pub meminfo: String,
    /// `/proc/loadavg`.
    pub loadavg: String,
    /// `/proc/diskstats`.
    pub diskstats: String,
    /// `/proc/net/dev`.
    pub net_dev: String,
    /// The contents of `/proc/<pid>/stat` of every process, each followed by a newline
    /// (the process counts). A line without a `)` is ignored.
    pub pid_stats: String,
}

/// Aggregate CPU ticks from the `cpu` line of /proc/stat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CpuTicks {
    user: u64,
    nice: u64,
    kernel: u64,
    idle: u64,
    iowait: u64,
}

/// Cumulative counters of one interface from /proc/net/dev.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct NetCounters {
    tx: u64,
    rx: u64,
    ipackets: u64,
    opackets: u64,
    ierrors: u64,
    oerrors: u64,
    collisions: u64,
}

/// Cumulative sector counts of one block device from /proc/diskstats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DiskSectors {
    read: u64,
    write: u64,
}

/// Keeps the previous snapshot, for the per-interval values.
#[derive(Clone, Debug, Default)]
pub struct Sampler {
    cpu: Option<CpuTicks>,
    disks: Vec<(String, DiskSectors)>,
    nets: Vec<(String, NetCounters)>,
}

impl Sampler {
    /// A sampler without a previous snapshot.
    pub fn new() -> Sampler {
        Sampler::default()
    }

    /// One sample: `(metric, value)` pairs in the reference's order (cpu, mem, load,
    /// swap, disks in /proc/diskstats order, interfaces in /proc/net/dev order,
    /// processes), metric names without the `localstat.` prefix and without the suffix
    /// (`cpu.user`, `disk.sda.read`). Remembers this snapshot for the next call.
    ///
    /// A group whose source does not parse is left out (the reference would crash on
    /// libstatgrab's NULL): `cpu.*` without a `cpu` line or when no tick passed since
    /// the previous sample (libstatgrab would divide by zero), `mem.*` without
    /// `MemTotal`, `load.*` without three numbers, `swap.*` without both `SwapTotal`
    /// and `SwapFree`. `process.*` is always present.
    pub fn sample_from(&mut self, proc: &ProcTexts) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = Vec::with_capacity(64);
        let mut push = |name: &str, v: f32| out.push((name.to_owned(), v));

        // CPU percentages over the interval (libstatgrab sg_get_cpu_percents).
        if let Some(now) = parse_cpu(&proc.stat) {
            let d = match self.cpu {
                Some(last) => CpuTicks {
                    user: now.user.saturating_sub(last.user),
                    nice: now.nice.saturating_sub(last.nice),
                    kernel: now.kernel.saturating_sub(last.kernel),
                    idle: now.idle.saturating_sub(last.idle),
                    iowait: now.iowait.saturating_sub(last.iowait),
                },
                None => now,
            };
            self.cpu = Some(now);
            let total = d.user + d.nice + d.kernel + d.idle;
            if total > 0 {
                let pct = |x: u64| (x as f64 / total as f64 * 100.0) as f32;
                push("cpu.user", pct(d.user));
                push("cpu.kernel", pct(d.kernel));
                push("cpu.idle", pct(d.idle));
                push("cpu.iowait", pct(d.iowait));
                push("cpu.swap", 0.0);
                push("cpu.nice", pct(d.nice));
            }
        }

        // Memory and swap (libstatgrab sg_get_mem_stats, sg_get_swap_stats).
        let mem = parse_meminfo(&proc.meminfo);
        if let Some(total) = mem.mem_total {
            let cache = mem.cached.unwrap_or(0);
            let free = mem.mem_free.unwrap_or(0).saturating_add(cache);
            push("mem.total", kib(total));
            push("mem.free", kib(free));
            push("mem.used", kib(total.saturating_sub(free)));
            push("mem.cache", kib(cache));
        }

        if let Some([m1, m5, m15]) = parse_loadavg(&proc.loadavg) {
            push("load.min1", m1 as f32);
            push("load.min5", m5 as f32);
            push("load.min15", m15 as f32);
        }

        if let (Some(total), Some(free)) = (mem.swap_total, mem.swap_free) {
            push("swap.total", kib(total));
            push("swap.used", kib(total.saturating_sub(free)));
            push("swap.free", kib(free));
        }

        // Disk I/O since the previous sample (sg_get_disk_io_stats_diff).
        let disks = parse_diskstats(&proc.diskstats);
        for (name, now) in &disks {
            let (r, w) = match lookup(&self.disks, name) {
                Some(last) => (
                    counter_delta(now.read, last.read),
                    counter_delta(now.write, last.write),
                ),
                None => (now.read, now.write),
            };
            push(&format!("disk.{name}.read"), r.wrapping_mul(512) as f32);
            push(&format!("disk.{name}.write"), w.wrapping_mul(512) as f32);
        }
        self.disks = disks;

        // Network I/O since the previous sample (sg_get_network_io_stats_diff).
        let nets = parse_net_dev(&proc.net_dev);
        for (name, now) in &nets {
            let d = match lookup(&self.nets, name) {
                Some(last) => NetCounters {
                    tx: counter_delta(now.tx, last.tx),
                    rx: counter_delta(now.rx, last.rx),
                    ipackets: counter_delta(now.ipackets, last.ipackets),
                    opackets: counter_delta(now.opackets, last.opackets),
                    ierrors: counter_delta(now.ierrors, last.ierrors),
                    oerrors: counter_delta(now.oerrors, last.oerrors),
                    collisions: counter_delta(now.collisions, last.collisions),
                },
                None => *now,
            };
            let values = [
                d.tx,
                d.rx,
                d.ipackets,
                d.opackets,
                d.ierrors,
                d.oerrors,
                d.collisions,
            ];
            for (field, v) in statline::LOCAL_STATS_NET_FIELDS.iter().zip(values) {
                push(&format!("net.{name}.{field}"), v as f32);
            }
        }
        self.nets = nets;

        // Process counts (sg_get_process_count).
        let p = count_processes(&proc.pid_stats);
        push("process.total", p.total as f32);
        push("process.running", p.running as f32);
        push("process.sleeping", p.sleeping as f32);
        push("process.stopped", p.stopped as f32);
        push("process.zombie", p.zombie as f32);

        out
    }
}

/// Read the /proc files of one sample. Blocking: call it from a blocking thread pool.
/// Processes that vanish while /proc is scanned are skipped.
pub fn read_proc() -> io::Result<ProcTexts> {
    read_proc_at(Path::new("/proc"))
}

fn read_proc_at(root: &Path) -> io::Result<ProcTexts> {
    let read = |name: &str| -> io::Result<String> {
        Ok(String::from_utf8_lossy(&fs::read(root.join(name))?).into_owned())
    };
    let mut pid_stats = String::new();
    for entry in fs::read_dir(root)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        // Gone, or not readable: the process is not counted (as in libstatgrab).
        if let Ok(bytes) = fs::read(entry.path().join("stat")) {
            pid_stats.push_str(&String::from_utf8_lossy(&bytes));
            if !pid_stats.ends_with('\n') {
                pid_stats.push('\n');
            }
        }
    }
    Ok(ProcTexts {
        stat: read("stat")?,
        meminfo: read("meminfo")?,
        loadavg: read("loadavg")?,
        diskstats: read("diskstats")?,
        net_dev: read("net/dev")?,
        pid_stats,
    })
}

/// The stat lines for one sample (`localstat.<metric><suffix> <now> <value>`, value as
/// a C++ `float`), without the trailing newline, ready for the stat line parser.
pub fn lines(metrics: &[(String, f32)], suffix: &str, now: i64) -> Vec<String> {
    metrics
        .iter()
        .map(|(metric, value)| {
            let mut s = String::with_capacity(metric.len() + suffix.len() + 40);
            statline::local_stat_line(&mut s, metric, suffix, now, *value);
            if s.ends_with('\n') {
                s.pop();
            }
            s
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

fn kib(v: u64) -> f32 {
    v.wrapping_mul(1024) as f32
}

fn lookup<'a, T>(list: &'a [(String, T)], name: &str) -> Option<&'a T> {
    list.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// How far a cumulative counter moved. A counter that went down wrapped at 32 bits
/// when it was below 2^32 (libstatgrab's `transfer_diff`), and otherwise was reset
/// (device re-created), in which case its new value is the movement since the reset.
fn counter_delta(now: u64, last: u64) -> u64 {
    const WRAP: u64 = 1 << 32;
    if now >= last {
        now - last
    } else if last < WRAP {
        WRAP - last + now
    } else {
        now
    }
}

/// Leading decimal digits of `s` as an integer (C `sscanf("%llu")` without the sign).
fn leading_u64(s: &str) -> Option<u64> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    // Saturate like strtoull rather than failing on an absurd value.
    Some(s[..end].parse().unwrap_or(u64::MAX))
}

/// The first `cpu` line (`cpu` followed by a blank): user nice system idle [iowait].
/// libstatgrab requires 4 or 5 numbers; the rest (irq, softirq, steal, ...) are ignored.
fn parse_cpu(stat: &str) -> Option<CpuTicks> {
    let line = stat.lines().find(|l| {
        l.strip_prefix("cpu")
            .is_some_and(|r| r.starts_with([' ', '\t']))
    })?;
    let mut v = [0u64; 5];
    let mut n = 0;
    for tok in line[3..].split_ascii_whitespace().take(5) {
        match tok.parse::<u64>() {
            Ok(x) => {
                v[n] = x;
                n += 1;
            }
            Err(_) => break,
        }
    }
    if n < 4 {
        return None;
    }
    Some(CpuTicks {
        user: v[0],
        nice: v[1],
        kernel: v[2],
        idle: v[3],
        iowait: v[4],
    })
}

/// The /proc/meminfo values used (kB).
#[derive(Debug, Default)]
struct MemInfo {
    mem_total: Option<u64>,
    mem_free: Option<u64>,
    cached: Option<u64>,
    swap_total: Option<u64>,
    swap_free: Option<u64>,
}

fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let mut toks = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (toks.next(), toks.next()) else {
            continue;
        };
        let Some(value) = leading_u64(value) else {
            continue;
        };
        let slot = match key {
            "MemTotal:" => &mut m.mem_total,
            "MemFree:" => &mut m.mem_free,
            "Cached:" => &mut m.cached,
            "SwapTotal:" => &mut m.swap_total,
            "SwapFree:" => &mut m.swap_free,
            _ => continue,
        };
        *slot = Some(value);
    }
    m
}

/// The three load averages (glibc `getloadavg` reads the same file).
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut toks = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        let v: f64 = toks.next()?.parse().ok()?;
        if !v.is_finite() {
            return None;
        }
        *slot = v;
    }
    Some(out)
}

/// Every /proc/diskstats line (libstatgrab keeps partitions, loop and dm devices):
/// `major minor name reads merged sectors_read ms writes merged sectors_written ...`.
fn parse_diskstats(text: &str) -> Vec<(String, DiskSectors)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let t: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
        if t.len() < 10 {
            continue;
        }
        let numeric = [0, 1, 3, 4, 6, 7, 8]
            .iter()
            .all(|&i| t[i].trim_start_matches('-').parse::<u64>().is_ok());
        let (Ok(read), Ok(write)) = (t[5].parse::<u64>(), t[9].parse::<u64>()) else {
            continue;
        };
        if !numeric || t[2].len() > 99 {
            continue;
        }
        out.push((t[2].to_owned(), DiskSectors { read, write }));
    }
    out
}

/// /proc/net/dev after its two header lines: `name: rx_bytes rx_packets rx_errs drop
/// fifo frame compressed multicast tx_bytes tx_packets tx_errs drop fifo colls ...`.
fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim_start();
        if name.is_empty() {
            continue;
        }
        let mut v = [0u64; 14];
        let mut n = 0;
        for tok in rest.split_ascii_whitespace().take(14) {
            match tok.parse::<u64>() {
                Ok(x) => {
                    v[n] = x;
                    n += 1;
                }
                Err(_) => break,
            }
        }
        if n < 14 {
            continue;
        }
        out.push((
            name.to_owned(),
            NetCounters {
                rx: v[0],
                ipackets: v[1],
                ierrors: v[2],
                tx: v[8],
                opackets: v[9],
                oerrors: v[10],
                collisions: v[13],
            },
        ));
    }
    out
}

#[derive(Debug, Default, PartialEq, Eq)]
struct ProcessCount {
    total: u64,
    running: u64,
    sleeping: u64,
    stopped: u64,
    zombie: u64,
}

/// Count processes by the state letter that follows the command name's last `)`.
fn count_processes(pid_stats: &str) -> ProcessCount {
    let mut c = ProcessCount::default();
    for line in pid_stats.lines() {
        let Some(close) = line.rfind(')') else {
            continue;
        };
        let Some(state) = line[close + 1..].split_ascii_whitespace().next() else {
            continue;
        };
        let mut chars = state.chars();
        let (Some(s), None) = (chars.next(), chars.next()) else {
            continue;
        };
        c.total += 1;
        match s {
            'R' => c.running += 1,
            'S' => c.sleeping += 1,
            'T' | 'D' => c.stopped += 1,
            'Z' => c.zombie += 1,
            _ => {}
        }
    }
    c
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn first_call_is_since_boot_like_libstatgrab() {
        let mut s = Sampler::new();
        let got = s.sample_from(&first());
        let want = owned(&[
            // cpu total = 2000 + 500 + 1500 + 6000 = 10000 ticks since boot
            ("cpu.user", 20.0),
            ("cpu.kernel", 15.0),
            ("cpu.idle", 60.0),
            ("cpu.iowait", 3.0),
            ("cpu.swap", 0.0),
            ("cpu.nice", 5.0),
            ("mem.total", 1_024_000.0),
            ("mem.free", 512_000.0),
            ("mem.used", 512_000.0),
            ("mem.cache", 307_200.0),
            ("load.min1", 0.5),
            ("load.min5", 1.25),
            ("load.min15", 2.0),
            ("swap.total", 409_600.0),
            ("swap.used", 307_200.0),
            ("swap.free", 102_400.0),
            ("disk.sda.read", 1_024_000.0),
            ("disk.sda.write", 2_048_000.0),
            ("disk.sda1.read", 51_200.0),
            ("disk.sda1.write", 153_600.0),
            ("disk.loop0.read", 0.0),
            ("disk.loop0.write", 0.0),
            ("net.lo.tx", 1000.0),
            ("net.lo.rx", 1000.0),
            ("net.lo.ipackets", 10.0),
            ("net.lo.opackets", 10.0),
            ("net.lo.ierrors", 0.0),
            ("net.lo.oerrors", 0.0),
            ("net.lo.collisions", 0.0),
            ("net.eth0.tx", 20000.0),
            ("net.eth0.rx", 50000.0),
            ("net.eth0.ipackets", 400.0),
            ("net.eth0.opackets", 300.0),
            ("net.eth0.ierrors", 1.0),
            ("net.eth0.oerrors", 2.0),
            ("net.eth0.collisions", 3.0),
            ("process.total", 7.0),
            ("process.running", 1.0),
            ("process.sleeping", 2.0),
            ("process.stopped", 2.0),
            ("process.zombie", 1.0),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn second_call_is_the_interval() {
        let mut s = Sampler::new();
        s.sample_from(&first());
        let got = s.sample_from(&second());
        let want = owned(&[
            // deltas: user 100, nice 20, system 80, idle 200 (total 400), iowait 40
            ("cpu.user", 25.0),
            ("cpu.kernel", 20.0),
            ("cpu.idle", 50.0),
            ("cpu.iowait", 10.0),
            ("cpu.swap", 0.0),
            ("cpu.nice", 5.0),
            ("mem.total", 1_024_000.0),
            ("mem.free", 409_600.0),
            ("mem.used", 614_400.0),
            ("mem.cache", 307_200.0),
            ("load.min1", 0.75),
            ("load.min5", 1.0),
            ("load.min15", 1.5),
            ("swap.total", 409_600.0),
            ("swap.used", 307_200.0),
            ("swap.free", 102_400.0),
            ("disk.sda.read", 5120.0),
            ("disk.sda.write", 51_200.0),
            ("disk.sda1.read", 0.0),
            ("disk.sda1.write", 0.0),
            // new device: its totals, as libstatgrab's diff does
            ("disk.nvme0n1.read", 4096.0),
            ("disk.nvme0n1.write", 8192.0),
            ("net.lo.tx", 500.0),
            ("net.lo.rx", 500.0),
            ("net.lo.ipackets", 5.0),
            ("net.lo.opackets", 5.0),
            ("net.lo.ierrors", 0.0),
            ("net.lo.oerrors", 0.0),
            ("net.lo.collisions", 0.0),
            ("net.eth0.tx", 5000.0),
            ("net.eth0.rx", 10000.0),
            ("net.eth0.ipackets", 100.0),
            ("net.eth0.opackets", 50.0),
            ("net.eth0.ierrors", 0.0),
            ("net.eth0.oerrors", 2.0),
            ("net.eth0.collisions", 2.0),
            ("process.total", 2.0),
            ("process.running", 1.0),
            ("process.sleeping", 1.0),
            ("process.stopped", 0.0),
            ("process.zombie", 0.0),
        ]);
        assert_eq!(got, want);

        // The order follows statline's list of fixed names.
        let fixed: Vec<&str> = got
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !n.starts_with("disk.") && !n.starts_with("net."))
            .collect();
        assert_eq!(fixed, statline::LOCAL_STATS_METRICS);
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
        assert_eq!(&names[..10], &statline::LOCAL_STATS_METRICS[..10]);
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
        let d =
            parse_diskstats("8 0 sda 1 2 3\nx 0 sdb 1 2 3 4 5 6 7 8\n8 0 sdc 1 2 3 4 5 6 7 8\n");
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
        let mut b = statline::ParsedBatch::new();
        statline::parse_line(l[0].as_bytes(), 1000, &mut b);
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
            for m in statline::LOCAL_STATS_METRICS {
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
}
