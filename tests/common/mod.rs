//! Starting and stopping real daemons on loopback for the integration tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn shared() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if p.join("golden").is_dir() {
        Some(p)
    } else {
        eprintln!("SKIP: ../shared/golden not found next to the repository");
        None
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("istatd-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A daemon started by a test; stopped (SIGKILL if still running) when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub stat_port: u16,
    pub admin_port: u16,
}

impl Daemon {
    /// Start `istatd` in `dir` with an empty config file and these extra options.
    pub fn start(dir: &Path, stat_port: u16, admin_port: u16, extra: &[&str]) -> Daemon {
        Daemon::start_with_http(dir, stat_port, admin_port, 0, extra)
    }

    /// As [`Daemon::start`], with the HTTP port on (0 = off).
    pub fn start_with_http(
        dir: &Path,
        stat_port: u16,
        admin_port: u16,
        http_port: u16,
        extra: &[&str],
    ) -> Daemon {
        Daemon::start_with_env(dir, stat_port, admin_port, http_port, &[], extra)
    }

    /// As [`Daemon::start_with_http`], with these environment variables set.
    pub fn start_with_env(
        dir: &Path,
        stat_port: u16,
        admin_port: u16,
        http_port: u16,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Daemon {
        let cfg = dir.join("empty.cfg");
        std::fs::write(&cfg, "").unwrap();
        let mut args: Vec<String> = vec![
            "--config".into(),
            cfg.display().to_string(),
            "--store".into(),
            dir.join("store").display().to_string(),
            "--stat-port".into(),
            stat_port.to_string(),
            "--admin-port".into(),
            admin_port.to_string(),
            "--http-port".into(),
            http_port.to_string(),
            "--listen-address".into(),
            "127.0.0.1".into(),
            "--settings".into(),
            dir.join("settings").display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_istatd"))
            .args(&args)
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start istatd");
        let mut d = Daemon {
            child: Some(child),
            dir: dir.to_path_buf(),
            stat_port,
            admin_port,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.admin_port)).is_ok() {
                return;
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut err = String::new();
                let _ = self
                    .child
                    .as_mut()
                    .unwrap()
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err);
                panic!("istatd exited during start-up ({st}): {err}");
            }
            if Instant::now() >= deadline {
                // A start-up that never finishes: say where it stopped.
                let log = std::fs::read_to_string(self.dir.join("istatd.log")).unwrap_or_default();
                let stacks = std::process::Command::new("gdb")
                    .args([
                        "-p",
                        &self.child.as_ref().unwrap().id().to_string(),
                        "-batch",
                    ])
                    .args(["-ex", "thread apply all bt"])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_else(|e| format!("(no gdb: {e})"));
                panic!("istatd did not open its admin port in 20 s; its log:\n{log}\nits threads:\n{stacks}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send lines (CRLF-terminated) over one TCP connection, then close it.
    pub fn send_tcp(&self, text: &str) {
        let mut s = TcpStream::connect(("127.0.0.1", self.stat_port)).unwrap();
        let mut out = String::new();
        for l in text.lines() {
            out.push_str(l);
            out.push_str("\r\n");
        }
        s.write_all(out.as_bytes()).unwrap();
    }

    /// One admin command; the answer up to its last line (`ok` or a `huh?` line).
    pub fn admin(&self, cmd: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.admin_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut out = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap() == 0 {
                break;
            }
            out.push_str(&line);
            if line.starts_with("ok") || line.starts_with("huh?") {
                break;
            }
        }
        out
    }

    /// An `istatd.*` value from admin `stats` (either `name: v` or `name=v` lines).
    pub fn stat(&self, name: &str) -> i64 {
        let text = self.admin("stats");
        for l in text.lines() {
            let l = l.trim_end();
            for sep in [": ", "="] {
                if let Some(v) = l.strip_prefix(name).and_then(|r| r.strip_prefix(sep)) {
                    return v.trim().parse().unwrap_or(0);
                }
            }
        }
        panic!("no stat {name} in:\n{text}");
    }

    /// Wait until `f` holds (polling), or panic after `secs`.
    pub fn wait_for(&self, what: &str, secs: u64, mut f: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until every shard has completed a full periodic flush round from now on.
    pub fn wait_flush_round(&self) {
        let start = self.stat("istatd.store.flush_rounds_min");
        self.wait_for("a periodic flush round", 60, |d| {
            d.stat("istatd.store.flush_rounds_min") >= start + 2
        });
    }

    /// SIGTERM and wait for exit; returns the exit code.
    pub fn terminate(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("istatd did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Compare every golden `.bin` in `golden_files` with the store: dump, info, and bytes
/// with the name field masked. Returns the list of differences.
pub fn compare_store(golden_files: &Path, store: &Path) -> Vec<String> {
    let mut failures = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(golden_files)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".bin").map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let info_want = std::fs::read_to_string(golden_files.join(format!("{name}.info"))).unwrap();
        let rel_arg = info_want
            .lines()
            .next()
            .unwrap()
            .trim_end_matches(':')
            .to_string();
        let rel = rel_arg.strip_prefix("store/").unwrap();
        let ours = match std::fs::read(store.join(rel)) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let dump_want = std::fs::read_to_string(golden_files.join(format!("{name}.dump"))).unwrap();
        match istatd_storage::tools::dump_csv(&ours) {
            Ok(d) if d == dump_want => {}
            Ok(d) => failures.push(format!(
                "{name}: dump differs\n--- want\n{dump_want}--- got\n{d}"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        match istatd_storage::tools::info(&rel_arg, &ours) {
            Ok(i) if i == info_want => {}
            Ok(i) => failures.push(format!(
                "{name}: info differs\n--- want\n{info_want}--- got\n{i}"
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
        let mut want = std::fs::read(golden_files.join(format!("{name}.bin"))).unwrap();
        let mut got = ours;
        use istatd_storage::format::{NAME_LEN, OFF_NAME};
        want[OFF_NAME..OFF_NAME + NAME_LEN].fill(0);
        if got.len() >= OFF_NAME + NAME_LEN {
            got[OFF_NAME..OFF_NAME + NAME_LEN].fill(0);
        }
        if want != got {
            failures.push(format!("{name}: bytes differ"));
        }
    }
    failures
}

// ----- replication helpers (tests/replication.rs, tests/fault_cuts.rs) -----

/// Wait until nothing listens on these ports any more (a killed daemon's listeners
/// outlive it by a few milliseconds, until the kernel tears down its io_uring).
pub fn wait_ports_free(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &p in ports {
        while std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
            assert!(Instant::now() < deadline, "port {p} still held");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A daemon of a replication test: stat port `base`, admin port `base + 1`, its log
/// in `dir`, `--flush 1`, 2 shards and `retention`, then `extra` (its role and the
/// test's own options).
pub fn repl_daemon(dir: &Path, base: u16, retention: &str, extra: &[&str]) -> Daemon {
    repl_daemon_env(dir, base, retention, &[], extra)
}

/// As [`repl_daemon`], with these environment variables set (test hooks).
pub fn repl_daemon_env(
    dir: &Path,
    base: u16,
    retention: &str,
    env: &[(&str, &str)],
    extra: &[&str],
) -> Daemon {
    let log = dir.join("istatd.log").display().to_string();
    let mut args = vec![
        "--log-file",
        &log,
        "--flush",
        "1",
        "--retention",
        retention,
        "--shards",
        "2",
    ];
    args.extend_from_slice(extra);
    Daemon::start_with_env(dir, base, base + 1, 0, env, &args)
}

/// `counters` counters with `n` timestamped samples each, 10 s apart, ending now.
pub fn samples(prefix: &str, counters: usize, n: i64) -> String {
    let t = now();
    let mut s = String::new();
    for c in 0..counters {
        for k in 0..n {
            s.push_str(&format!("{prefix}.c{c} {} {}\n", t - k * 10, c as i64 + k));
        }
    }
    s
}

/// Send samples to the master and wait until it recorded them all.
pub fn feed(m: &Daemon, text: &str) {
    let before = m.stat("istatd.statserver.samples");
    let n = text.lines().count() as i64;
    m.send_tcp(text);
    m.wait_for("the master to record the samples", 30, |m| {
        m.stat("istatd.statserver.samples") >= before + n
    });
}

/// `istatd verify` of the two stores without the master's own counters.
pub fn verify(m: &Daemon, s: &Daemon) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(["verify", "--exclude", "istatd"])
        .arg(m.dir.join("store"))
        .arg(s.dir.join("store"))
        .output()
        .expect("run istatd verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Flush the master until the slave's copy verifies (every file of the test there,
/// zero differing buckets), or fail after `secs`.
pub fn converge(m: &Daemon, s: &Daemon, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1000));
        // verify reads the files: what the slave applied must be on disk.
        s.admin("flush");
        let (ok, text) = verify(m, s);
        if ok {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "slave did not converge:\n{text}\nmaster log:\n{}\nslave log:\n{}",
            tail(&m.dir.join("istatd.log")),
            tail(&s.dir.join("istatd.log"))
        );
    }
}

pub fn tail(p: &Path) -> String {
    let t = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = t.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

// ----- a TCP proxy for link faults (tests/replication.rs, tests/fault_cuts.rs) -----

/// What the test proxy does with a connection's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ProxyMode {
    Forward,
    /// Close both sides after this many master-to-slave bytes.
    CutAfter(usize),
    /// Read and drop everything, close nothing (a partition).
    Blackhole,
    /// Forward every chunk after this many milliseconds (a slow, high-latency link).
    Delay(u64),
}

/// A TCP proxy between a slave and its master; new connections take the mode in force
/// when they are accepted.
pub struct Proxy {
    mode: std::sync::Arc<std::sync::Mutex<ProxyMode>>,
    /// Cut lengths for the next connections, one each, before the mode applies.
    cuts: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<usize>>>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Proxy {
    pub fn start(listen: u16, upstream: u16) -> Proxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        let mode = Arc::new(Mutex::new(ProxyMode::Forward));
        let accepted = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(Mutex::new(std::collections::VecDeque::new()));
        let l = std::net::TcpListener::bind(("127.0.0.1", listen)).unwrap();
        let (m2, a2, c2) = (mode.clone(), accepted.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in l.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                a2.fetch_add(1, Ordering::SeqCst);
                let mode = match c2.lock().unwrap().pop_front() {
                    Some(k) => ProxyMode::CutAfter(k),
                    None => *m2.lock().unwrap(),
                };
                let pump = move |mut from: TcpStream, mut to: TcpStream, limit: Option<usize>| {
                    let mut total = 0usize;
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if mode == ProxyMode::Blackhole {
                            continue;
                        }
                        if let ProxyMode::Delay(ms) = mode {
                            std::thread::sleep(Duration::from_millis(ms));
                        }
                        let n = match limit {
                            Some(l) if total + n >= l => {
                                let _ = to.write_all(&buf[..l - total]);
                                break;
                            }
                            _ => n,
                        };
                        total += n;
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    // A partition passes no close either: each side must notice the
                    // silence by itself.
                    if mode != ProxyMode::Blackhole {
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    }
                };
                let limit = match mode {
                    ProxyMode::CutAfter(k) => Some(k),
                    _ => None,
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pump(server, client, limit));
                std::thread::spawn(move || pump(c2, s2, None));
            }
        });
        Proxy {
            mode,
            cuts,
            accepted,
        }
    }

    /// Cut each of the next connections after the next of these many master-to-slave
    /// bytes.
    pub fn queue_cuts(&self, cuts: impl IntoIterator<Item = usize>) {
        self.cuts.lock().unwrap().extend(cuts);
    }

    pub fn set(&self, m: ProxyMode) {
        *self.mode.lock().unwrap() = m;
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// xorshift64*: a deterministic, dependency-free generator for the fault tests.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ----- a small filesystem of its own (tests/disk_full.rs, tests/replication_faults.rs) -----

/// A loop-mounted ext4 filesystem (1 KiB blocks at these sizes), unmounted and its
/// image removed on drop.
/// Needs root, mkfs.ext4 and a loop device: [`LoopFs::make`] says why not otherwise.
pub struct LoopFs {
    pub mount: PathBuf,
    image: PathBuf,
}

impl LoopFs {
    pub fn make(image: &Path, mount: &Path, mib: u64) -> Result<LoopFs, String> {
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        std::fs::File::create(image)
            .and_then(|f| f.set_len(mib << 20))
            .map_err(|e| e.to_string())?;
        // No blocks reserved for root: the daemon runs as root here.
        run(Command::new("mkfs.ext4").args(["-q", "-m", "0"]).arg(image))?;
        std::fs::create_dir_all(mount).map_err(|e| e.to_string())?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(mount))?;
        Ok(LoopFs {
            mount: mount.to_path_buf(),
            image: image.to_path_buf(),
        })
    }

    pub fn avail_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.mount)
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .expect("df avail")
    }

    /// Fill the filesystem but for about `keep` bytes with fallocated filler files
    /// (`.filler<i>` at its root, so that [`LoopFs::unfill`] finds them), topping up
    /// whatever a running daemon took meanwhile. Returns the bytes left.
    pub fn fill(&self, keep: u64) -> u64 {
        for i in 0..10 {
            let avail = self.avail_bytes();
            if avail <= keep {
                return avail;
            }
            let ok = Command::new("fallocate")
                .args(["-l", &(avail - keep).to_string()])
                .arg(self.mount.join(format!(".filler{i}")))
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // The extent tree's own blocks, or a daemon's, were not in df's
                // figure: what fallocate got stays allocated, the next one tops up.
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let avail = self.avail_bytes();
        assert!(
            avail <= keep.max(4096),
            "could not fill {}: {avail} bytes free",
            self.mount.display()
        );
        avail
    }

    /// Remove the filler files of [`LoopFs::fill`].
    pub fn unfill(&self) {
        for i in 0..10 {
            let _ = std::fs::remove_file(self.mount.join(format!(".filler{i}")));
        }
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success());
        if unmounted {
            let _ = std::fs::remove_file(&self.image);
        }
    }
}
