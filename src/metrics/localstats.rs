//! The local stats of `--local-stats SUFFIX` (docs/interfaces.md §2.11): their names,
//! suffix and stat lines, and the host sampling behind them.
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

// ---------------------------------------------------------------------------------------
// Names and lines
// ---------------------------------------------------------------------------------------

/// Seconds between local-stats samples; samples are taken at multiples of it.
pub const LOCAL_STATS_INTERVAL: i64 = 5;

/// The fixed local-stats metrics, in the reference's order. Per-device metrics come
/// between `swap.free` and `process.total`: `disk.<dev>.<f>` for each
/// [`LOCAL_STATS_DISK_FIELDS`] and then `net.<if>.<f>` for each
/// [`LOCAL_STATS_NET_FIELDS`].
pub const LOCAL_STATS_METRICS: &[&str] = &[
    "cpu.user",
    "cpu.kernel",
    "cpu.idle",
    "cpu.iowait",
    "cpu.swap",
    "cpu.nice",
    "mem.total",
    "mem.free",
    "mem.used",
    "mem.cache",
    "load.min1",
    "load.min5",
    "load.min15",
    "swap.total",
    "swap.used",
    "swap.free",
    "process.total",
    "process.running",
    "process.sleeping",
    "process.stopped",
    "process.zombie",
];

/// Fields of each `disk.<dev>` local stat.
pub const LOCAL_STATS_DISK_FIELDS: &[&str] = &["read", "write"];

/// Fields of each `net.<if>` local stat.
pub const LOCAL_STATS_NET_FIELDS: &[&str] = &[
    "tx",
    "rx",
    "ipackets",
    "opackets",
    "ierrors",
    "oerrors",
    "collisions",
];

/// The suffix appended to every local stat name, from `--local-stats`: `None` when the
/// option is empty (local stats off); a `.` is prepended unless it starts with `.` or
/// `^` (`localhost` → `.localhost`, `^host.a` stays, giving caret expansion).
pub fn local_stats_suffix(option: &str) -> Option<String> {
    match option.as_bytes().first() {
        None => None,
        Some(b'.' | b'^') => Some(option.to_owned()),
        Some(_) => Some(format!(".{option}")),
    }
}

/// Append the command the reference feeds to its own command handler for one local
/// stat: `localstat.<metric><suffix> <now> <value>\n`, the value printed as a C++
/// `float` (6 significant digits, format g6).
pub fn local_stat_line(out: &mut String, metric: &str, suffix: &str, now: i64, value: f32) {
    use std::fmt::Write;
    let _ = write!(out, "localstat.{metric}{suffix} {now} ");
    istatd_storage::numfmt::push_g(out, f64::from(value), 6);
    out.push('\n');
}

/// When the next local-stats sample is due after `now`: the next multiple of
/// [`LOCAL_STATS_INTERVAL`] strictly after `now`.
pub fn next_local_stats_time(now: i64) -> i64 {
    let t = now + LOCAL_STATS_INTERVAL;
    t - t.rem_euclid(LOCAL_STATS_INTERVAL)
}

// ---------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------

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
            for (field, v) in LOCAL_STATS_NET_FIELDS.iter().zip(values) {
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
            local_stat_line(&mut s, metric, suffix, now, *value);
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

#[cfg(test)]
mod tests;
