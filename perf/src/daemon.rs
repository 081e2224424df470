//! Driving an `istatd` process for the benchmarks: start it on a store, wait until its
//! admin port accepts, read its admin `stats`, its RSS and CPU time from `/proc`, and
//! always kill it (on drop, on panic, on Ctrl-C through [`install_interrupt_handler`],
//! and through `PR_SET_PDEATHSIG` if this process dies without unwinding).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// The pid of the daemon being driven (0: none), for the interrupt handler.
static DAEMON_PID: AtomicI32 = AtomicI32::new(0);
/// Set by SIGINT/SIGTERM; every wait loop checks it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    let pid = DAEMON_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// SIGINT/SIGTERM kill the daemon at once and make [`interrupted`] true; the report
/// then unwinds normally (removing its temporary directory).
pub fn install_interrupt_handler() {
    // SAFETY: the handler only touches atomics and calls kill.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Whether SIGINT/SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// An error unless interrupted.
pub fn check_interrupt() -> Result<(), String> {
    if interrupted() {
        Err("interrupted".into())
    } else {
        Ok(())
    }
}

/// Sleep in small steps, returning early with an error on interrupt.
pub fn sleep(d: Duration) -> Result<(), String> {
    let end = Instant::now() + d;
    loop {
        check_interrupt()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// How to start the daemon.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub exe: PathBuf,
    /// Working directory: holds `store/`, `empty.cfg`, `istatd.log`, `stderr.txt`.
    pub dir: PathBuf,
    pub stat_port: u16,
    pub admin_port: u16,
    /// 0: no HTTP listener.
    pub http_port: u16,
    pub shards: usize,
    pub retention: String,
    pub flush_secs: u32,
    /// Appended to the command line.
    pub extra: Vec<String>,
}

impl DaemonSpec {
    pub fn store(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("istatd.log")
    }

    pub fn stderr_path(&self) -> PathBuf {
        self.dir.join("stderr.txt")
    }

    /// The full argument list.
    pub fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "--config".into(),
            self.dir.join("empty.cfg").display().to_string(),
            "--store".into(),
            self.store().display().to_string(),
            "--stat-port".into(),
            self.stat_port.to_string(),
            "--admin-port".into(),
            self.admin_port.to_string(),
            "--http-port".into(),
            self.http_port.to_string(),
            "--listen-address".into(),
            "127.0.0.1".into(),
            "--retention".into(),
            self.retention.clone(),
            "--flush".into(),
            self.flush_secs.to_string(),
            "--shards".into(),
            self.shards.to_string(),
            "--log-file".into(),
            self.log_path().display().to_string(),
        ];
        a.extend(self.extra.iter().cloned());
        a
    }

    /// The command line, for reproduction notes.
    pub fn command_line(&self) -> String {
        let mut s = self.exe.display().to_string();
        for a in self.args() {
            s.push(' ');
            s.push_str(&a);
        }
        s
    }
}

/// A running daemon. Dropping it kills it (SIGKILL) if it still runs.
pub struct Daemon {
    child: Child,
    pub pid: i32,
    pub spec: DaemonSpec,
    admin: SocketAddr,
    pub spawned: Instant,
    exited: Option<ExitStatus>,
}

impl Daemon {
    /// Start the daemon (its stdout and stderr go to `stderr.txt`, appended).
    pub fn spawn(spec: &DaemonSpec) -> Result<Daemon, String> {
        check_interrupt()?;
        std::fs::create_dir_all(&spec.dir).map_err(|e| format!("{}: {e}", spec.dir.display()))?;
        std::fs::write(spec.dir.join("empty.cfg"), b"").map_err(|e| e.to_string())?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(spec.stderr_path())
            .map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(&spec.exe);
        cmd.args(spec.args())
            .current_dir(&spec.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Own process group: a terminal Ctrl-C reaches only the report, which
                // then kills the daemon itself.
                libc::setpgid(0, 0);
                // Dies with the report even if the report is SIGKILLed.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let spawned = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", spec.exe.display()))?;
        let pid = child.id() as i32;
        DAEMON_PID.store(pid, Ordering::SeqCst);
        Ok(Daemon {
            child,
            pid,
            admin: SocketAddr::from(([127, 0, 0, 1], spec.admin_port)),
            spec: spec.clone(),
            spawned,
            exited: None,
        })
    }

    /// Exit status, if it has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.exited = Some(st);
                let _ =
                    DAEMON_PID.compare_exchange(self.pid, 0, Ordering::SeqCst, Ordering::SeqCst);
            }
        }
        self.exited
    }

    /// An error when the daemon is no longer running.
    pub fn check_alive(&mut self) -> Result<(), String> {
        match self.exit_status() {
            None => Ok(()),
            Some(st) => Err(format!(
                "the daemon (pid {}) exited: {st}; stderr/log tail:\n{}",
                self.pid,
                self.tail()
            )),
        }
    }

    /// Wait until the admin port accepts a connection; returns the time since spawn.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration, String> {
        loop {
            check_interrupt()?;
            self.check_alive()?;
            if TcpStream::connect_timeout(&self.admin, Duration::from_millis(200)).is_ok() {
                return Ok(self.spawned.elapsed());
            }
            if self.spawned.elapsed() > timeout {
                return Err(format!(
                    "admin port {} did not accept within {} s",
                    self.admin,
                    timeout.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send one admin command; the reply lines up to and without the final `ok`.
    pub fn command(&mut self, cmd: &str) -> Result<Vec<String>, String> {
        self.command_timeout(cmd, Duration::from_secs(120))
    }

    /// [`Daemon::command`], waiting up to `timeout` for each line of the reply.
    pub fn command_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<Vec<String>, String> {
        check_interrupt()?;
        self.check_alive()?;
        let run = || -> io::Result<Vec<String>> {
            let mut s = TcpStream::connect_timeout(&self.admin, Duration::from_secs(5))?;
            s.set_read_timeout(Some(timeout))?;
            s.write_all(format!("{cmd}\r\n").as_bytes())?;
            let mut r = BufReader::new(s);
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line)? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "admin connection closed before `ok`",
                    ));
                }
                let line = line.trim_end().to_string();
                if line == "ok" {
                    break;
                }
                if line.starts_with("huh?") || line.starts_with("error") {
                    return Err(io::Error::other(line));
                }
                lines.push(line);
            }
            // Close from this side, without `quit`: the side that closes first keeps
            // the TIME_WAIT, and a TIME_WAIT on the daemon's admin port makes its next
            // start on that port fail with EADDRINUSE (see perf/README.md).
            drop(r);
            Ok(lines)
        };
        run().map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                format!("admin `{cmd}`: no answer in {} s", timeout.as_secs())
            }
            _ => format!("admin `{cmd}`: {e}"),
        })
    }

    /// Admin `stats`, parsed (`name=value` and `name: value` lines).
    pub fn stats(&mut self) -> Result<Stats, String> {
        let lines = self.command("stats")?;
        Ok(Stats::parse(&lines))
    }

    /// Admin `stats heap`: `stats` plus `istatd.process.heap_bytes` (costly on the
    /// daemon's side: only for measurements, not for polling).
    pub fn stats_heap(&mut self) -> Result<Stats, String> {
        let lines = self.command("stats heap")?;
        Ok(Stats::parse(&lines))
    }

    /// Admin `flush`; returns how long the reply took.
    pub fn flush(&mut self) -> Result<Duration, String> {
        let t = Instant::now();
        self.command("flush")?;
        Ok(t.elapsed())
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmRSS:")
    }

    /// RssAnon (anonymous memory: heap, stacks, anonymous maps; not the binary's pages)
    /// in KiB.
    pub fn rss_anon_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "RssAnon:")
    }

    /// VmHWM (peak RSS) in KiB.
    pub fn hwm_kib(&self) -> Option<u64> {
        proc_status_kib(self.pid, "VmHWM:")
    }

    /// User + system CPU seconds so far.
    pub fn cpu_secs(&self) -> Option<f64> {
        proc_cpu_secs(self.pid)
    }

    /// (user, system) CPU seconds so far.
    pub fn cpu_split(&self) -> Option<(f64, f64)> {
        proc_cpu_split(self.pid)
    }

    /// Threads, from /proc/PID/status.
    pub fn threads(&self) -> Option<u64> {
        proc_status_kib(self.pid, "Threads:")
    }

    /// Open descriptors, from /proc/PID/fd.
    pub fn open_fds(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .ok()
            .map(|d| d.count())
    }

    /// SIGTERM, then wait up to `timeout` (SIGKILL after it). Returns the time to exit
    /// and whether it exited by itself.
    pub fn stop(&mut self, timeout: Duration) -> (Duration, bool) {
        let t = Instant::now();
        if self.exit_status().is_some() {
            return (Duration::ZERO, true);
        }
        // SAFETY: plain kill of our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGTERM);
        }
        while t.elapsed() < timeout && !interrupted() {
            if self.exit_status().is_some() {
                return (t.elapsed(), true);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        (t.elapsed(), false)
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if self.exit_status().is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.exited = Some(st);
            }
        }
        let _ = DAEMON_PID.compare_exchange(self.pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// WARN/ERROR lines of the log and every stderr line, for the problem report.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(text) = std::fs::read_to_string(self.spec.log_path()) {
            out.extend(
                text.lines()
                    .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                    .map(str::to_string),
            );
        }
        if let Ok(text) = std::fs::read_to_string(self.spec.stderr_path()) {
            out.extend(text.lines().map(|l| format!("stderr: {l}")));
        }
        out
    }

    /// The last lines of stderr and of the log.
    pub fn tail(&self) -> String {
        let mut s = String::new();
        for p in [self.spec.stderr_path(), self.spec.log_path()] {
            if let Ok(text) = std::fs::read_to_string(&p) {
                let lines: Vec<&str> = text.lines().collect();
                s.push_str(&format!("--- {}\n", p.display()));
                for l in &lines[lines.len().saturating_sub(15)..] {
                    s.push_str(l);
                    s.push('\n');
                }
            }
        }
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Parsed admin `stats` reply.
#[derive(Debug, Clone, Default)]
pub struct Stats(pub BTreeMap<String, f64>);

impl Stats {
    /// `name=value` or `name: value` lines; others are ignored.
    pub fn parse(lines: &[String]) -> Stats {
        let mut m = BTreeMap::new();
        for l in lines {
            let split = l
                .split_once('=')
                .or_else(|| l.split_once(": "))
                .or_else(|| l.split_once(':'));
            if let Some((k, v)) = split {
                if let Ok(v) = v.trim().parse::<f64>() {
                    m.insert(k.trim().to_string(), v);
                }
            }
        }
        Stats(m)
    }

    /// The value, 0 when absent.
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0.0).max(0.0) as u64
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// `istatd.statserver.samples`: samples the shards recorded into the store.
pub const SAMPLES: &str = "istatd.statserver.samples";
pub const FILES: &str = "istatd.store.files";
pub const COUNTERS: &str = "istatd.store.counters";

/// A `Key: N kB` (or plain number) line of /proc/PID/status.
pub fn proc_status_kib(pid: i32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].split_whitespace().next()?.parse().ok())
}

/// utime + stime of /proc/PID/stat, in seconds.
pub fn proc_cpu_secs(pid: i32) -> Option<f64> {
    proc_cpu_split(pid).map(|(u, s)| u + s)
}

/// (utime, stime) of /proc/PID/stat, in seconds.
pub fn proc_cpu_split(pid: i32) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_cpu(&text)
}

fn parse_stat_cpu(text: &str) -> Option<(f64, f64)> {
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let t = clock_ticks();
    Some((utime as f64 / t, stime as f64 / t))
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// This process's CPU seconds (the generator threads, mostly).
pub fn self_cpu_secs() -> Option<f64> {
    proc_cpu_secs(std::process::id() as i32)
}

/// Soft and hard limit of a resource.
pub fn rlimit(res: libc::__rlimit_resource_t) -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: r is a valid rlimit.
    unsafe {
        libc::getrlimit(res, &mut r);
    }
    (r.rlim_cur, r.rlim_max)
}

/// Busy CPU seconds of the whole machine so far (all CPUs: user, nice, system, irq,
/// softirq, steal from the first line of /proc/stat).
pub fn machine_busy_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7)?;
    Some(busy as f64 / clock_ticks())
}

/// The first three fields of /proc/loadavg.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// MemTotal in KiB.
pub fn mem_total_kib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Files and bytes under a directory (on-disk size, st_blocks).
pub fn disk_usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                files += 1;
                bytes += m.blocks() * 512;
            }
        }
    }
    (files, bytes)
}

/// Whether a listener could bind `127.0.0.1:port` now (with `SO_REUSEADDR`, as the
/// daemon's listeners: a TIME_WAIT does not count, a listener or a dying process's
/// socket does).
pub fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Who listens on `port`: "pid N (comm)" from /proc, or "unknown" (another user's
/// process, or a socket already orphaned by a dying process).
pub fn port_holder(port: u16) -> String {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let p = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if p == Some(port) && *state == "0A" {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    if inodes.is_empty() {
        return "no listener (a socket still being closed)".into();
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return "unknown".into();
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
                return format!("pid {pid} ({})", comm.trim());
            }
        }
    }
    "unknown".into()
}

/// Wait until every port of `ports` is free (see [`port_free`]), at most `timeout`:
/// the previous run's daemons may still hold them for a moment while they exit.
/// Returns how long it waited; the error names the ports still held and by whom.
pub fn wait_ports_free(ports: &[u16], timeout: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    let mut said = false;
    loop {
        check_interrupt()?;
        let busy: Vec<u16> = ports.iter().copied().filter(|&p| !port_free(p)).collect();
        if busy.is_empty() {
            return Ok(t.elapsed());
        }
        if t.elapsed() >= timeout {
            let who: Vec<String> = busy
                .iter()
                .map(|&p| format!("127.0.0.1:{p} held by {}", port_holder(p)))
                .collect();
            return Err(format!(
                "ports still in use after {} s: {}",
                timeout.as_secs(),
                who.join(", ")
            ));
        }
        if !said {
            said = true;
            println!(
                "waiting (at most {} s) for ports {busy:?} to be free: {}",
                timeout.as_secs(),
                port_holder(busy[0])
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The daemon binary: `given`, else `istatd` next to this benchmark binary (both are
/// in target/release), else the workspace's target/release/istatd. An error says how
/// to build it.
pub fn istatd_binary(given: Option<&Path>) -> Result<PathBuf, String> {
    let exe = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let me = std::env::current_exe().map_err(|e| e.to_string())?;
            let local = me.parent().map(|d| d.join("istatd"));
            match local {
                Some(l) if l.is_file() => l,
                _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/istatd"),
            }
        }
    };
    if !exe.is_file() {
        return Err(format!(
            "{} not found: run `cargo build --release --bin istatd` first (or give --istatd)",
            exe.display()
        ));
    }
    Ok(exe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines_both_forms() {
        let s = Stats::parse(&[
            "istatd.statserver.samples=1234".into(),
            "istatd.store.files: 10".into(),
            "garbage".into(),
        ]);
        assert_eq!(s.get(SAMPLES), 1234);
        assert_eq!(s.get(FILES), 10);
        assert_eq!(s.get("nope"), 0);
    }

    #[test]
    fn stat_cpu_fields() {
        let line = "42 (ist atd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let t = clock_ticks();
        assert_eq!(parse_stat_cpu(line), Some((250.0 / t, 50.0 / t)));
        assert!(self_cpu_secs().is_some());
    }
}
