//! Replication in an operator's everyday operations (docs/replication-protocol.md;
//! I-24..I-27 of its "Test plan"): counters deleted on either side while the link is up, a
//! counter deleted and created again, several slaves connecting in the same instant, a node
//! turned into a slave at run time and promoted again, a slave crash after a resend, and a
//! failover followed by the failback procedure of README.md. Each test ends with
//! `istatd verify` (replica equality): zero differing buckets, after asserting the specific
//! symptom of the operation (the link stayed up, a counter moved, no empty collation
//! bucket over a replicated one).
//!
//! Ports (stat, admin, replica; slaves stat, admin): 19000-19006, 19020-19029 (19023 is
//! a gate in front of the master), 19030-19036, 19040-19046, 19050-19057, 19060-19066,
//! 19070-19077, 19800-19816.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    converge, feed, now, repl_daemon, repl_daemon_env, tail, temp_dir, verify, wait_ports_free,
    Daemon,
};
use istatd_storage::format::Bucket;
use istatd_storage::verify::CounterFile;

const RET: &str = "10s:1h,5m:1d";

// ----- nodes -----------------------------------------------------------------------

/// A master: stat port `base`, admin `base + 1`, replica port `base + 2`; short
/// keepalive and idle timeout, so that a link that stops moving shows within seconds.
fn master(dir: &Path, base: u16) -> Daemon {
    let rp = (base + 2).to_string();
    repl_daemon(
        dir,
        base,
        RET,
        &[
            "--replica-port",
            &rp,
            "--replica-keepalive",
            "2",
            "--replica-timeout",
            "6",
        ],
    )
}

/// A slave of whatever listens on `of_port`: stat port `base` (closed while a slave),
/// admin `base + 1`.
fn slave(dir: &Path, base: u16, of_port: u16) -> Daemon {
    let of = format!("127.0.0.1:{of_port}");
    repl_daemon(
        dir,
        base,
        RET,
        &[
            "--replica-of",
            &of,
            "--replica-keepalive",
            "2",
            "--replica-timeout",
            "6",
        ],
    )
}

/// As `common::repl_daemon`, with the flush period and the retentions given.
fn node(dir: &Path, base: u16, flush: &str, retention: &str, extra: &[&str]) -> Daemon {
    let log = dir.join("istatd.log").display().to_string();
    let mut args = vec![
        "--log-file",
        &log,
        "--flush",
        flush,
        "--retention",
        retention,
        "--shards",
        "2",
    ];
    args.extend_from_slice(extra);
    Daemon::start(dir, base, base + 1, &args)
}

// ----- data --------------------------------------------------------------------------

/// Counters `prefix.c<i>` for i in `range`, `n` samples each 10 s apart ending now,
/// values shifted by `v0` so that every round writes something new.
fn rows(prefix: &str, range: std::ops::Range<usize>, n: i64, v0: i64) -> String {
    let t = now();
    let mut s = String::new();
    for c in range {
        for k in 0..n {
            s.push_str(&format!(
                "{prefix}.c{c} {} {}\n",
                t - k * 10,
                v0 + c as i64 + k
            ));
        }
    }
    s
}

/// `n` samples of `name`, 10 s apart in ascending time from `start` (event counters
/// take samples in time order), values from `v0`.
fn series(name: &str, start: i64, n: i64, v0: i64) -> String {
    (0..n)
        .map(|k| format!("{name} {} {}\n", start + k * 10, v0 + k))
        .collect()
}

// ----- checks ------------------------------------------------------------------------

/// The numbers of the summary line of `istatd verify`.
fn summary(report: &str) -> String {
    report.lines().last().unwrap_or("").to_string()
}

/// Files of the master compared by a `verify` report.
fn files_compared(report: &str) -> usize {
    summary(report)
        .strip_prefix("verify: ")
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `istatd verify` now, after a flush of the slave: identical, or the report.
fn verify_now(m: &Daemon, s: &Daemon) -> (bool, String) {
    s.admin("flush");
    verify(m, s)
}

/// `istatd verify` of a stopped master's store (`a`) and a running node, after a flush
/// of the node.
fn verify_stopped(a: &Path, s: &Daemon) -> (bool, String) {
    s.admin("flush");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(["verify", "--exclude", "istatd"])
        .arg(a.join("store"))
        .arg(s.dir.join("store"))
        .output()
        .expect("run istatd verify");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The link of a slave is up and did not drop since `disconnects` was read.
fn assert_link_kept(s: &Daemon, m: &Daemon, disconnects: i64, when: &str) {
    let now_disc = s.stat("replication.slave.disconnects");
    assert!(
        now_disc == disconnects && s.stat("replicaOf.connected") == 1,
        "{when}: the slave's link dropped (disconnects {disconnects} -> {now_disc}, \
         connected {}, slave timeouts {}, master timeouts {})\nmaster log:\n{}\nslave log:\n{}",
        s.stat("replicaOf.connected"),
        s.stat("replication.slave.timeouts"),
        m.stat("replication.master.timeouts"),
        tail(&m.dir.join("istatd.log")),
        tail(&s.dir.join("istatd.log"))
    );
}

/// Relative paths of the counter files of a store, without the daemon's own
/// `istatd/` counters and without dot files.
fn store_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.retain(|r| !r.starts_with("istatd/"));
    out.sort();
    out
}

fn valid_buckets(p: &Path) -> Vec<Bucket> {
    match CounterFile::read(p) {
        Ok(f) => f.kept_valid_buckets(),
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

/// Buckets of `node` with count 0 at a time where `replicated` (a store holding the
/// replicated buckets) has a bucket with count > 0: the empty collation buckets that
/// promotion or a clean shutdown must never write over replicated ones.
fn zero_count_over_replicated(replicated: &Path, node: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for rel in store_files(replicated) {
        let theirs = node.join(&rel);
        if !theirs.exists() {
            continue;
        }
        let have: HashMap<i64, Bucket> = valid_buckets(&theirs)
            .into_iter()
            .map(|b| (b.time, b))
            .collect();
        for b in valid_buckets(&replicated.join(&rel)) {
            if b.count > 0 {
                if let Some(h) = have.get(&b.time).filter(|h| h.count == 0) {
                    out.push(format!(
                        "{rel} t={}: replicated count {} sum {}, now count {} sum {}",
                        b.time, b.count, b.sum, h.count, h.sum
                    ));
                }
            }
        }
    }
    out
}

/// A copy of a store's counter files (not its dot files), to compare with later.
fn snapshot(store: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for rel in store_files(store) {
        let dst = to.join(&rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(store.join(&rel), dst).unwrap();
    }
}

fn file_create_time(p: &Path) -> i64 {
    CounterFile::read(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .header()
        .file_create_time
}

fn status_value(d: &Daemon, key: &str) -> Option<String> {
    let text = d.admin("replication.status");
    text.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

fn can_connect(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

// ----- a gate: slaves' connections held, then let through to the master at once -----

/// Connections accepted on `listen` wait (their bytes stay in the socket) while the
/// gate is closed; `release` opens upstream connections for all of them in one burst,
/// so the master sees several slaves connect within milliseconds of each other.
struct Gate {
    state: Arc<Mutex<(bool, Vec<TcpStream>)>>,
    upstream: u16,
}

impl Gate {
    fn start(listen: u16, upstream: u16) -> Gate {
        let l = TcpListener::bind(("127.0.0.1", listen)).unwrap();
        let state = Arc::new(Mutex::new((false, Vec::new())));
        let st = state.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let mut g = st.lock().unwrap();
                if g.0 {
                    drop(g);
                    splice(c, upstream);
                } else {
                    g.1.push(c);
                }
            }
        });
        Gate { state, upstream }
    }

    fn pending(&self) -> usize {
        self.state.lock().unwrap().1.len()
    }

    fn hold(&self) {
        self.state.lock().unwrap().0 = false;
    }

    /// Let every held connection through (all connected upstream before any byte
    /// moves) and every later one; returns how many were held.
    fn release(&self) -> usize {
        let held = {
            let mut g = self.state.lock().unwrap();
            g.0 = true;
            std::mem::take(&mut g.1)
        };
        let pairs: Vec<(TcpStream, TcpStream)> = held
            .into_iter()
            .filter_map(|c| {
                TcpStream::connect(("127.0.0.1", self.upstream))
                    .ok()
                    .map(|s| (c, s))
            })
            .collect();
        let n = pairs.len();
        for (c, s) in pairs {
            forward(c, s);
        }
        n
    }
}

fn splice(c: TcpStream, upstream: u16) {
    match TcpStream::connect(("127.0.0.1", upstream)) {
        Ok(s) => forward(c, s),
        Err(_) => {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

fn forward(c: TcpStream, s: TcpStream) {
    let pump = |mut from: TcpStream, mut to: TcpStream| {
        let mut buf = vec![0u8; 65536];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    };
    let (c2, s2) = (c.try_clone().unwrap(), s.try_clone().unwrap());
    std::thread::spawn(move || pump(c, s));
    std::thread::spawn(move || pump(s2, c2));
}

/// Flush the master until every slave's copy verifies (at least `files` files compared,
/// zero differing buckets), or fail after `secs` naming the slaves that did not.
fn converge_all(m: &Daemon, slaves: &[Daemon], files: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut pending: Vec<usize> = (0..slaves.len()).collect();
    let mut last = vec![String::new(); slaves.len()];
    while !pending.is_empty() {
        if Instant::now() > deadline {
            let mut text = String::new();
            for &i in &pending {
                let head: Vec<&str> = last[i].lines().take(5).collect();
                text.push_str(&format!(
                    "slave {} did not converge:\n{}\n{}\nits log:\n{}\n",
                    i + 1,
                    head.join("\n"),
                    summary(&last[i]),
                    tail(&slaves[i].dir.join("istatd.log"))
                ));
            }
            panic!("{text}master log:\n{}", tail(&m.dir.join("istatd.log")));
        }
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1000));
        pending.retain(|&i| {
            let (ok, report) = verify_now(m, &slaves[i]);
            let done = ok && files_compared(&report) >= files;
            last[i] = report;
            !done
        });
    }
}

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ----- 1 -------------------------------------------------------------------------------

#[test]
fn delete_on_master_with_a_slave_connected() {
    let md = temp_dir("ops-del-m");
    let sd = temp_dir("ops-del-s");
    let m = master(&md, 19000);
    feed(&m, &rows("del", 0..300, 6, 0));
    let s = slave(&sd, 19005, 19002);
    converge(&m, &s, 60);
    let disconnects = s.stat("replication.slave.disconnects");
    let gone = s.stat("replication.slave.files_gone");
    assert_eq!(m.stat("replication.master.timeouts"), 0);

    // 40 counters (80 files) deleted on the master while the slave follows them.
    let names: Vec<String> = (0..40).map(|c| format!("del.c{c}")).collect();
    let answer = m.admin(&format!("delete.ctr {}", names.join(",")));
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    assert!(!md.join("store/del/c0/10s").exists());
    assert!(md.join("store.bak/del/c0/10s").exists());
    // Every deleted file's Request is answered "no such file" (Data(0, name)).
    s.wait_for("Data(0, name) for every deleted file", 30, |s| {
        s.stat("replication.slave.files_gone") >= gone + 80
    });

    // Two more rounds for the other counters, each followed through.
    for round in 1..=2 {
        feed(&m, &rows("del", 40..300, 1, 1000 * round));
        let report = converge(&m, &s, 30);
        assert!(report.contains("0 differing buckets"), "{report}");
        assert_link_kept(&s, &m, disconnects, &format!("round {round}"));
    }
    // Longer than both idle timeouts (6 s): a master that stopped reading the socket
    // would have been noticed by now.
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        assert_link_kept(&s, &m, disconnects, "idle after the rounds");
        std::thread::sleep(Duration::from_millis(500));
    }
    feed(&m, &rows("del", 40..300, 1, 5000));
    let report = converge(&m, &s, 30);
    assert_link_kept(&s, &m, disconnects, "last round");
    assert_eq!(m.stat("replication.master.timeouts"), 0);
    assert_eq!(s.stat("replication.slave.timeouts"), 0);
    assert_eq!(m.stat("replication.master.connections"), 1);
    assert!(
        report.contains(" 0 differing buckets"),
        "{}",
        summary(&report)
    );
}

// ----- 2 -------------------------------------------------------------------------------

#[test]
fn two_and_three_slaves_connecting_at_once() {
    // 1,000 counters x 2 retentions: about 1,000 files per shard, announced 256 per
    // 20 ms tick, so each new connection's sweep spans four ticks; the gate opens the
    // connections within a millisecond of each other, so every sweep runs while the
    // other connections are open. (More files only make the test slower: on two
    // shared cores a debug slave creates about 100 files/s while another one does.)
    const COUNTERS: usize = 1000;
    let md = temp_dir("ops-many-m");
    let dirs: Vec<PathBuf> = (1..=3)
        .map(|i| temp_dir(&format!("ops-many-s{i}")))
        .collect();
    let mut m = master(&md, 19020);
    feed(&m, &rows("many", 0..COUNTERS, 2, 0));
    m.admin("flush");
    let gate = Gate::start(19023, 19022);

    // Two fresh slaves connect in the same instant.
    let starts: Vec<_> = [(dirs[0].clone(), 19024), (dirs[1].clone(), 19026)]
        .into_iter()
        .map(|(d, base)| std::thread::spawn(move || slave(&d, base, 19023)))
        .collect();
    let mut slaves: Vec<Daemon> = starts.into_iter().map(|h| h.join().unwrap()).collect();
    wait_until("both slaves at the gate", 20, || gate.pending() >= 2);
    assert_eq!(gate.release(), 2);
    converge_all(&m, &slaves, 2 * COUNTERS, 50);

    // The master restarts; both slaves and a third, fresh one come back at once.
    gate.hold();
    m.admin("flush");
    drop(m);
    wait_ports_free(&[19020, 19021, 19022]);
    m = master(&md, 19020);
    wait_until("the slaves back at the gate", 30, || gate.pending() >= 2);
    slaves.push(slave(&dirs[2], 19028, 19023));
    wait_until("three slaves at the gate", 20, || gate.pending() >= 3);
    assert_eq!(gate.release(), 3);
    // New buckets for every counter: each slave must be following every file.
    feed(&m, &rows("many", 0..COUNTERS, 1, 7));
    converge_all(&m, &slaves, 2 * COUNTERS, 50);
    for s in &slaves {
        assert_eq!(s.stat("replicaOf.connected"), 1);
    }
    assert_eq!(m.stat("replication.master.connections"), 3);
}

/// The slave writes its first replicated bucket before a third of the master's `files`
/// exist on it (else the data waited behind `what`), then converges.
fn data_flows_before_most_files_exist(m: &Daemon, s: &Daemon, files: i64, what: &str) {
    let mut created_at_first_write = None;
    wait_until("the slave's first replicated bucket", 60, || {
        let created = s.stat("replication.slave.files_created");
        if s.stat("replication.slave.buckets_written") > 0 {
            created_at_first_write = Some(created);
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
        false
    });
    let created = created_at_first_write.unwrap_or(files);
    eprintln!("first bucket written after {created} of {files} files were created");
    assert!(
        created * 3 < files,
        "data waited behind {what}: first bucket written after {created} of {files} files were created"
    );
    let report = converge(m, s, 90);
    assert!(files_compared(&report) >= 200, "{report}");
}

/// A fresh slave whose file creation is slow (`--replica-create-rate 25`): the Data of
/// files already created is written while the other files still wait for theirs. Before,
/// Discovers waiting to create held every apply slot, the link stopped being read, and
/// no Data was written until most files existed (a fresh 50k slave moved almost
/// nothing while it created files).
#[test]
fn data_flows_while_files_are_still_being_created() {
    let md = temp_dir("ops-slowcreate-m");
    let sd = temp_dir("ops-slowcreate-s");
    let m = master(&md, 19800);
    feed(&m, &rows("slow", 0..100, 20, 0));
    m.admin("flush");
    let files = m.stat("istatd.store.files");
    assert!(files >= 200, "{files} files on the master");
    let s = node(
        &sd,
        19810,
        "1",
        RET,
        &[
            "--replica-of",
            "127.0.0.1:19802",
            "--replica-create-rate",
            "25",
        ],
    );
    data_flows_before_most_files_exist(&m, &s, files, "the creations");
}

/// The master's Discover window (docs/replication-protocol.md, "Flow control"): a fresh
/// slave that creates files slowly and stops reading the link while its creation queue is
/// full must still get the Data of the files it has created. Both bounds are made small
/// (test hooks), so that 226 files do what 500,000 do with the defaults: without the
/// window every Discover is sent at once, the slave's full queue stops the link, and
/// the Data waits behind the Discovers until nearly every file exists.
#[test]
fn data_flows_while_the_slave_works_through_discovers() {
    let md = temp_dir("ops-window-m");
    let sd = temp_dir("ops-window-s");
    let m = repl_daemon_env(
        &md,
        19804,
        RET,
        &[("ISTATD_TEST_DISCOVER_WINDOW", "4")],
        &["--replica-port", "19806"],
    );
    feed(&m, &rows("win", 0..100, 20, 0));
    m.admin("flush");
    let files = m.stat("istatd.store.files");
    assert!(files >= 200, "{files} files on the master");
    let s = repl_daemon_env(
        &sd,
        19814,
        RET,
        &[("ISTATD_TEST_CREATE_QUEUE", "8")],
        &[
            "--replica-of",
            "127.0.0.1:19806",
            "--replica-create-rate",
            "25",
        ],
    );
    data_flows_before_most_files_exist(&m, &s, files, "the Discovers");
    // Every Discover is answered by a Request in the end. (The master's own istatd.*
    // counters keep making files, whose Discovers wait for the slave's slow creations:
    // zero is reached, not held.)
    wait_until("every Discover answered by a Request", 60, || {
        let n = m.stat("replication.master.discover_unanswered");
        assert!(
            n <= 8,
            "{n} Discovers unanswered: above the window of 4 a shard"
        );
        std::thread::sleep(Duration::from_millis(100));
        n == 0
    });
}

// ----- 3 -------------------------------------------------------------------------------

#[test]
fn delete_and_recreate_while_connected() {
    // I-26: with the slave stopped meanwhile (as in the spec), then on a live link.
    let md = temp_dir("ops-inc-m");
    let sd = temp_dir("ops-inc-s");
    let m = master(&md, 19030);
    feed(&m, &rows("inc", 0..10, 30, 0));
    let mut s = slave(&sd, 19035, 19032);
    converge(&m, &s, 60);
    let t0 = now();

    // The slave stops while inc.c5 is deleted and ingested again with corrected data
    // from T0 - 1 h; then it starts again.
    let old_create = file_create_time(&sd.join("store/inc/c5/10s"));
    assert_eq!(s.terminate(), 0);
    wait_ports_free(&[19035, 19036]);
    let answer = m.admin("delete.ctr inc.c5");
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    assert!(md.join("store.bak/inc/c5/10s").exists());
    feed(&m, &series("inc.c5", t0 - 3600, 30, 700));
    feed(&m, &rows("inc", 6..10, 1, 100));
    m.admin("flush");
    let new_create = file_create_time(&md.join("store/inc/c5/10s"));
    assert_ne!(old_create, new_create, "the new incarnation's identity");
    s = slave(&sd, 19035, 19032);
    let report = converge(&m, &s, 40);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert_eq!(
        file_create_time(&sd.join("store/inc/c5/10s")),
        new_create,
        "the slave copied the new incarnation"
    );
    assert_eq!(
        file_create_time(&sd.join("store.bak/inc/c5/10s")),
        old_create,
        "the slave's old file moved aside"
    );
    assert!(sd.join("store.bak/inc/c5/5m").exists());
    assert_eq!(
        s.stat("replication.slave.incarnation_changed"),
        2,
        "one per file of inc.c5"
    );
    assert_eq!(s.stat("replication.slave.header_mismatch"), 0);
    let disconnects = s.stat("replication.slave.disconnects");

    // Live: inc.c3 deleted and ingested again while the slave follows it.
    let old_create = file_create_time(&sd.join("store/inc/c3/10s"));
    let answer = m.admin("delete.ctr inc.c3");
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    feed(&m, &series("inc.c3", t0 - 3600, 30, 500));
    m.admin("flush");
    let new_create = file_create_time(&md.join("store/inc/c3/10s"));
    assert_ne!(old_create, new_create, "the new incarnation's identity");
    let report = converge(&m, &s, 40);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert_eq!(
        file_create_time(&sd.join("store/inc/c3/10s")),
        new_create,
        "the slave copied the new incarnation"
    );
    assert_eq!(
        file_create_time(&sd.join("store.bak/inc/c3/10s")),
        old_create,
        "the slave's old file moved aside"
    );
    assert!(sd.join("store.bak/inc/c3/5m").exists());
    assert_eq!(
        s.stat("replication.slave.incarnation_changed"),
        4,
        "one per file of inc.c3"
    );
    assert_eq!(s.stat("replication.slave.header_mismatch"), 0);
    assert_link_kept(&s, &m, disconnects, "after the live recreate");
}

// ----- 4 -------------------------------------------------------------------------------

#[test]
fn local_delete_on_a_slave() {
    let md = temp_dir("ops-ldel-m");
    let sd = temp_dir("ops-ldel-s");
    let m = master(&md, 19040);
    feed(&m, &rows("ld", 0..20, 30, 0));
    let s = slave(&sd, 19045, 19042);
    converge(&m, &s, 60);
    let disconnects = s.stat("replication.slave.disconnects");
    let apply_errors = s.stat("replication.slave.apply_errors");

    // The operator deletes a replicated counter on the slave while the link is up.
    let answer = s.admin("delete.ctr ld.c4");
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    assert!(!sd.join("store/ld/c4/10s").exists());
    assert!(sd.join("store.bak/ld/c4/10s").exists());

    // More data on the master, for ld.c4 too: its answers reach a file that is gone
    // locally; they are discarded (draining), not apply errors, and the link stays up.
    for round in 1..=3 {
        feed(&m, &rows("ld", 0..20, 1, 100 * round));
        m.admin("flush");
        std::thread::sleep(Duration::from_millis(1500));
        assert_link_kept(&s, &m, disconnects, &format!("round {round}"));
        let errors = s.stat("replication.slave.apply_errors");
        assert_eq!(
            errors,
            apply_errors,
            "round {round}: apply errors after a local delete\nslave log:\n{}",
            tail(&sd.join("istatd.log"))
        );
        // Every other file follows; only ld/c4 may differ (it is gone here).
        let (_, report) = verify_now(&m, &s);
        let others: Vec<&str> = report
            .lines()
            .filter(|l| !l.starts_with("verify:") && !l.contains("ld/c4/"))
            .collect();
        assert!(others.is_empty(), "round {round}: {report}");
    }
    let log = std::fs::read_to_string(sd.join("istatd.log")).unwrap_or_default();
    assert!(
        !log.contains("Apply failing"),
        "{}",
        tail(&sd.join("istatd.log"))
    );

    // Back from the next Discover ("Local deletes": on a later connection or after
    // `replication.resync all`), copied from 0.
    assert!(s.admin("replication.resync all").starts_with("ok"));
    let report = converge(&m, &s, 40);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert!(sd.join("store/ld/c4/10s").exists());
    assert_eq!(s.stat("replication.slave.apply_errors"), apply_errors);
}

// ----- 5 -------------------------------------------------------------------------------

#[test]
fn runtime_replication_of_then_promote_with_event_counters() {
    let ad = temp_dir("ops-rof-a");
    let bd = temp_dir("ops-rof-b");
    let a = master(&ad, 19050);
    let t0 = now();
    let mut text = series("*rof.ev", t0 - 290, 30, 1);
    text.push_str(&rows("rof.g", 0..3, 30, 0));
    feed(&a, &text);

    // B: a master of its own, with its own samples of the same event counter (its
    // collation window is open when it becomes a slave).
    let b_args = ["--replica-port", "19057"];
    let mut b = node(&bd, 19055, "1", RET, &b_args);
    feed(&b, &series("*rof.ev", t0 - 60, 1, 5));
    b.wait_flush_round();
    let answer = b.admin("replication.of 127.0.0.1:19052");
    assert!(answer.starts_with("ok"), "{answer}");
    b.wait_for("B's link to A", 20, |b| b.stat("replicaOf.connected") == 1);
    b.wait_for("B's stat port to close", 10, |_| !can_connect(19055));
    // A takes samples in the times B's window covered when it became a slave.
    let t1 = now();
    let mut text = series("*rof.ev", t1 - 10, 2, 40);
    text.push_str(&rows("rof.g", 0..3, 1, 50));
    feed(&a, &text);
    let report = converge(&a, &b, 60);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert!(b.stat("replication.slave.incarnation_changed") >= 1);

    // A fails; B is promoted, stops cleanly and starts again.
    drop(a);
    wait_ports_free(&[19050, 19051, 19052]);
    let a_store = ad.join("store");
    let b_store = bd.join("store");
    let (ok, report) = verify_stopped(&ad, &b);
    assert!(ok, "before the promotion: {report}");
    let answer = b.admin("replication.promote");
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    b.wait_flush_round();
    b.admin("flush");
    let after_promotion = zero_count_over_replicated(&a_store, &b_store);
    assert_eq!(b.terminate(), 0);
    let after_shutdown = zero_count_over_replicated(&a_store, &b_store);
    wait_ports_free(&[19055, 19056, 19057]);
    b = node(&bd, 19055, "1", RET, &b_args);
    assert_eq!(status_value(&b, "role").as_deref(), Some("promoted"));
    b.admin("flush");

    let zeros = zero_count_over_replicated(&a_store, &b_store);
    assert!(
        zeros.is_empty(),
        "count-0 buckets over replicated ones on B:\n{}\n(after the promotion and a flush: \
         {} such buckets; after the clean shutdown: {})",
        zeros.join("\n"),
        after_promotion.len(),
        after_shutdown.len()
    );
    let (ok, report) = verify_stopped(&ad, &b);
    assert!(ok, "A's data on B after promotion and restart: {report}");
}

// ----- 6 -------------------------------------------------------------------------------

#[test]
fn resent_bucket_survives_a_slave_crash() {
    // I-25: the slave flushes every 300 s; a late write on the master (2 h below its
    // newest bucket) is resent and applied in the slave's cache; the slave is killed
    // before writing it and restarted.
    let md = temp_dir("ops-crash-m");
    let sd = temp_dir("ops-crash-s");
    let m = master(&md, 19060);
    feed(&m, &rows("res", 0..3, 30, 0));
    let s_args = [
        "--replica-of",
        "127.0.0.1:19062",
        "--replica-keepalive",
        "2",
        "--replica-timeout",
        "6",
    ];
    let mut s = node(&sd, 19065, "300", RET, &s_args);
    converge(&m, &s, 60);

    let late = now() - 7200;
    let late_bucket = late - late.rem_euclid(300);
    let resent = m.stat("replication.master.resent_buckets");
    let written = s.stat("replication.slave.buckets_written");
    feed(&m, &format!("res.c0 {late} 1000\n"));
    m.admin("flush");
    m.wait_for("the late bucket resent", 20, |m| {
        m.stat("replication.master.resent_buckets") > resent
    });
    s.wait_for("the resend applied", 20, |s| {
        s.stat("replication.slave.buckets_written") > written
    });
    let on_disk = |p: &Path| {
        valid_buckets(p)
            .iter()
            .any(|b| b.time == late_bucket && b.count > 0)
    };
    assert!(on_disk(&md.join("store/res/c0/5m")));
    assert!(
        !on_disk(&sd.join("store/res/c0/5m")),
        "the slave wrote the resent bucket before the kill: the scenario did not happen"
    );
    drop(s);
    wait_ports_free(&[19065, 19066]);
    assert!(!on_disk(&sd.join("store/res/c0/5m")));

    s = node(&sd, 19065, "300", RET, &s_args);
    let report = converge(&m, &s, 40);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert!(on_disk(&sd.join("store/res/c0/5m")));
    // It came back through the late mark (it lies far below the resume overlap).
    assert!(m.stat("replication.master.late_seeded") >= 1);
}

// ----- 7 -------------------------------------------------------------------------------

#[test]
fn failover_and_failback_with_event_counters() {
    // I-27: M (10s, 5m, 1h files, an event counter) fails; P, its slave, is promoted
    // and takes samples; M comes back by the failback procedure of README.md.
    const RET3: &str = "10s:1h,5m:1d,1h:7d";
    let md = temp_dir("ops-fo-m");
    let pd = temp_dir("ops-fo-p");
    let m_args = [
        "--replica-port",
        "19072",
        "--replica-keepalive",
        "2",
        "--replica-timeout",
        "6",
    ];
    let m = node(&md, 19070, "1", RET3, &m_args);
    let t0 = now();
    let mut text = series("*fo.ev", t0 - 290, 30, 1);
    text.push_str(&rows("fo.g", 0..3, 30, 0));
    feed(&m, &text);
    let p_args = [
        "--replica-of",
        "127.0.0.1:19072",
        "--replica-port",
        "19077",
        "--replica-keepalive",
        "2",
        "--replica-timeout",
        "6",
    ];
    let mut p = node(&pd, 19075, "1", RET3, &p_args);
    let report = converge(&m, &p, 60);
    assert!(report.contains(" 0 differing buckets"), "{report}");

    // M takes one more round, flushes it and dies: P may lag by that flush.
    let mut text = series("*fo.ev", now() - 10, 2, 100);
    text.push_str(&rows("fo.g", 0..3, 1, 100));
    feed(&m, &text);
    m.admin("flush");
    drop(m);
    wait_ports_free(&[19070, 19071, 19072]);
    let last_m = now();

    // What P holds, all of it replicated, before it takes a sample itself.
    p.admin("flush");
    let replicated = pd.join("replicated");
    snapshot(&pd.join("store"), &replicated);
    let answer = p.admin("replication.promote");
    assert!(answer.ends_with("ok\r\n"), "{answer}");
    let promoted_at: i64 = status_value(&p, "promoted.at")
        .and_then(|v| v.parse().ok())
        .expect("promoted.at");
    p.wait_for("P's stat port", 10, |_| can_connect(19075));
    // Samples on P within 40 s of M's last replicated samples.
    let t = now();
    assert!(t - last_m < 40);
    let mut text = format!("*fo.ev {t} 7\n*fo.ev {t} 8\n");
    text.push_str(&rows("fo.g", 0..3, 1, 200));
    feed(&p, &text);
    p.wait_flush_round();
    p.admin("flush");
    let zeros_after_promotion = zero_count_over_replicated(&replicated, &pd.join("store"));
    let mut text = format!("*fo.ev {} 9\n", now());
    text.push_str(&rows("fo.g", 0..3, 1, 300));
    feed(&p, &text);

    // Failback: M starts as a slave of P from T = promoted.at - 2 x M's flush, with
    // its clock 20 minutes ahead.
    let from = (promoted_at - 2).to_string();
    let fake = (now() + 1200).to_string();
    let mut m_back: Vec<&str> = m_args.to_vec();
    m_back.extend_from_slice(&[
        "--replica-of",
        "127.0.0.1:19077",
        "--replica-from",
        &from,
        "--fake-time",
        &fake,
    ]);
    let m = node(&md, 19070, "1", RET3, &m_back);
    assert!(!can_connect(19070), "M's stat port stays closed");
    assert_eq!(
        status_value(&m, "slave.from").as_deref(),
        Some(from.as_str())
    );
    let report = converge(&p, &m, 60);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    assert_eq!(status_value(&m, "role").as_deref(), Some("master+slave"));
    // README: when `slave.behind=0` has held for a flush period, clear T.
    p.wait_for("M behind = 0", 20, |_| {
        status_value(&m, "slave.behind").as_deref() == Some("0")
    });
    m.wait_flush_round();
    assert_eq!(status_value(&m, "slave.behind").as_deref(), Some("0"));
    let answer = m.admin("replication.of 127.0.0.1:19077");
    assert!(answer.starts_with("ok"), "{answer}");
    assert_eq!(status_value(&m, "slave.from").as_deref(), Some(""));
    let mut text = format!("*fo.ev {} 10\n", now());
    text.push_str(&rows("fo.g", 0..3, 1, 400));
    feed(&p, &text);
    let report = converge(&p, &m, 30);
    assert!(report.contains(" 0 differing buckets"), "{report}");
    // No empty collation bucket over a replicated one: not on P after its first local
    // samples, not on P or M after the failback.
    assert!(
        zeros_after_promotion.is_empty(),
        "count-0 buckets over replicated ones on P after promotion:\n{}",
        zeros_after_promotion.join("\n")
    );
    for (who, store) in [("P", pd.join("store")), ("M", md.join("store"))] {
        let zeros = zero_count_over_replicated(&replicated, &store);
        assert!(
            zeros.is_empty(),
            "count-0 buckets over replicated ones on {who} after the failback:\n{}",
            zeros.join("\n")
        );
    }
    assert_eq!(p.terminate(), 0);
}
