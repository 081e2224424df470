//! The daemon end to end on loopback (ports 19100-19199): the golden inputs through the
//! stat port give the reference's files, a clean shutdown loses nothing, and a second
//! daemon cannot take the same ports or pid file.

mod common;

use common::{compare_store, shared, temp_dir, Daemon};
use std::net::UdpSocket;
use std::time::Duration;

const GOLDEN_OPTS: &[&str] = &[
    "--retention",
    "10s:1h,5m:1d",
    "--fake-time",
    "1600002700",
    "--flush",
    "1",
    "--shards",
    "2",
];

fn lines_of(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn golden_basic_through_the_stat_port() {
    let Some(shared) = shared() else { return };
    let dir = temp_dir("basic");
    let d = Daemon::start(&dir, 19101, 19102, GOLDEN_OPTS);
    d.send_tcp(&lines_of(&shared.join("golden/basic/input.txt")));
    // 503 lines: one is not a sample.
    d.wait_for("all samples", 30, |d| {
        d.stat("istatd.statserver.samples") == 502
    });
    d.wait_flush_round();
    assert_eq!(d.admin("flush"), "ok\r\n");
    let diffs = compare_store(&shared.join("golden/basic/files"), &dir.join("store"));
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn golden_events_as_the_clock_moves() {
    let Some(shared) = shared() else { return };
    let dir = temp_dir("events");
    let d = Daemon::start(&dir, 19111, 19112, GOLDEN_OPTS);
    let input = lines_of(&shared.join("golden/events/input.txt"));
    let expected = input.lines().filter(|l| !l.trim().is_empty()).count() as i64;
    d.send_tcp(&input);
    d.wait_for("all samples", 30, |d| {
        d.stat("istatd.statserver.samples") + d.stat("istatd.statserver.commands.bad") >= expected
    });
    let store = dir.join("store");
    for (clock, files) in [
        (None, "files0"),
        (Some(1600002760), "files1"),
        (Some(1600003100), "files2"),
    ] {
        if let Some(t) = clock {
            assert_eq!(d.admin(&format!("faketime {t}")), "ok\r\n");
        }
        d.wait_flush_round();
        assert_eq!(d.admin("flush"), "ok\r\n");
        let diffs = compare_store(&shared.join("golden/events").join(files), &store);
        assert!(diffs.is_empty(), "{files}:\n{}", diffs.join("\n"));
    }
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_flushes_every_received_sample_and_removes_the_pid_file() {
    let dir = temp_dir("term");
    let pid = dir.join("istatd.pid");
    let pid_s = pid.display().to_string();
    let mut opts = vec![
        "--retention",
        "10s:1h",
        "--flush",
        "3600",
        "--shards",
        "2",
        "--pid-file",
        &pid_s,
    ];
    opts.extend(["--fake-time", "1600000600"]);
    let mut d = Daemon::start(&dir, 19121, 19122, &opts);
    assert!(pid.exists());
    let mut text = String::new();
    for c in 0..50 {
        for k in 0..20 {
            text.push_str(&format!("term.c{c} {} {}\n", 1600000000 + 10 * k, k));
        }
    }
    // UDP too: one datagram per counter.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for c in 0..10 {
        udp.send_to(
            format!("udp.c{c} 1600000000 7\n").as_bytes(),
            ("127.0.0.1", 19121),
        )
        .unwrap();
    }
    d.send_tcp(&text);
    d.wait_for("all samples", 30, |d| {
        d.stat("istatd.statserver.samples") == 1010
    });
    assert_eq!(d.terminate(), 0);
    assert!(!pid.exists(), "pid file removed on clean exit");
    for c in 0..50 {
        let bytes = std::fs::read(dir.join(format!("store/term/c{c}/10s"))).unwrap();
        let dump = istatd_storage::tools::dump_csv(&bytes).unwrap();
        assert_eq!(dump.lines().count(), 21, "term.c{c}:\n{dump}");
    }
    for c in 0..10 {
        let bytes = std::fs::read(dir.join(format!("store/udp/c{c}/10s"))).unwrap();
        let dump = istatd_storage::tools::dump_csv(&bytes).unwrap();
        assert_eq!(
            dump.lines().nth(1),
            Some("\"2020-09-13T12:26:40Z\",7,49,7,7,1,7,0")
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_second_daemon_cannot_take_the_ports_or_the_pid_file() {
    let dir = temp_dir("dup");
    let pid = dir.join("istatd.pid");
    let pid_s = pid.display().to_string();
    let d = Daemon::start(
        &dir,
        19131,
        19132,
        &["--pid-file", &pid_s, "--retention", "10s:1h"],
    );
    let bin = env!("CARGO_BIN_EXE_istatd");
    let dir2 = temp_dir("dup2");
    std::fs::write(dir2.join("empty.cfg"), "").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(["--config", &dir2.join("empty.cfg").display().to_string()])
            .args([
                "--store",
                &dir2.join("store").display().to_string(),
                "--http-port",
                "0",
            ])
            .args(args)
            .current_dir(&dir2)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Same stat port.
    let (code, err) = run(&[
        "--stat-port",
        "19131",
        "--admin-port",
        "19133",
        "--listen-address",
        "127.0.0.1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("19131"), "{err}");
    // Same admin port.
    let (code, err) = run(&[
        "--stat-port",
        "19134",
        "--admin-port",
        "19132",
        "--listen-address",
        "127.0.0.1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    // Same pid file, other ports.
    let (code, err) = run(&[
        "--stat-port",
        "19135",
        "--admin-port",
        "19136",
        "--pid-file",
        &pid_s,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("I refuse to start"), "{err}");
    // The first daemon still works.
    d.send_tcp("dup.ok 5");
    d.wait_for("the sample", 10, |d| {
        d.stat("istatd.statserver.samples") == 1
    });
    drop(d);
    std::thread::sleep(Duration::from_millis(10));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn admin_delete_moves_counters_to_the_backup_tree() {
    let dir = temp_dir("delete");
    let d = Daemon::start(
        &dir,
        19141,
        19142,
        &["--retention", "10s:1h", "--shards", "2"],
    );
    d.send_tcp("del.a.one 1\ndel.a.two 2\ndel.b 3\nkeep.x 4");
    d.wait_for("samples", 10, |d| d.stat("istatd.statserver.samples") == 4);
    assert_eq!(d.admin("flush"), "ok\r\n");
    assert_eq!(d.admin("delete.ctr del.b"), "del.b\r\nok\r\n");
    assert_eq!(d.admin("delete.pattern del.a.*"), "del.a.*\r\nok\r\n");
    assert!(d.admin("delete.ctr").starts_with("huh?"));
    let store = dir.join("store");
    for gone in ["del/b/10s", "del/a/one/10s", "del/a/two/10s"] {
        assert!(!store.join(gone).exists(), "{gone} still in the store");
        let bak = dir.join("store.bak").join(gone);
        let dump = istatd_storage::tools::dump_csv(&std::fs::read(&bak).unwrap()).unwrap();
        assert_eq!(dump.lines().count(), 2, "{gone} backup holds its bucket");
    }
    assert!(store.join("keep/x/10s").exists());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn blacklisted_hosts_are_disconnected_and_counted() {
    use std::io::{Read, Write};
    let dir = temp_dir("blacklist");
    std::fs::write(dir.join("bl.txt"), "badhost\nother\n").unwrap();
    let bl = dir.join("bl.txt").display().to_string();
    let d = Daemon::start(
        &dir,
        19151,
        19152,
        &[
            "--retention",
            "10s:1h",
            "--blacklist-path",
            &bl,
            "--blacklist-period",
            "1",
        ],
    );
    // A good host is served.
    d.send_tcp("#hostname GoodHost\ngood.x 1");
    d.wait_for("the good sample", 10, |d| {
        d.stat("istatd.statserver.samples") == 1
    });
    // A blacklisted host (compared lower-cased) is cut off after its hostname line.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", 19151)).unwrap();
    s.write_all(b"#hostname BadHost\r\nbad.x 1\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 1];
    assert_eq!(
        s.read(&mut b).unwrap_or(0),
        0,
        "the server closes the connection"
    );
    d.wait_for("the blacklist count", 10, |d| {
        d.stat("istatd.blacklist.count") == 1
    });
    assert_eq!(
        d.stat("istatd.statserver.samples"),
        1,
        "nothing recorded from the bad host"
    );
    assert!(!dir.join("store/bad/x").exists());
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn local_stats_record_host_metrics() {
    let dir = temp_dir("localstats");
    let mut d = Daemon::start(
        &dir,
        19161,
        19162,
        &["--retention", "10s:1h", "--local-stats", "testhost"],
    );
    // The first sample only initializes; the next one (within 5 s) is recorded.
    d.wait_for("local stats files", 20, |_| {
        dir.join("store/localstat/load/min1/testhost/10s").exists()
            && dir.join("store/localstat/mem/total/testhost/10s").exists()
    });
    assert_eq!(d.terminate(), 0);
    let bytes = std::fs::read(dir.join("store/localstat/mem/total/testhost/10s")).unwrap();
    let dump = istatd_storage::tools::dump_csv(&bytes).unwrap();
    let row = dump.lines().nth(1).expect("a bucket");
    let total: f64 = row.split(',').nth(1).unwrap().parse().unwrap();
    assert!(total > 1e6, "mem.total is bytes: {row}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sighup_reopens_the_log_file() {
    let dir = temp_dir("sighup");
    let mut d = Daemon::start(&dir, 19171, 19172, &["--retention", "10s:1h"]);
    let log = dir.join("istat.log");
    d.wait_for("the log file", 10, |_| log.exists());
    std::fs::rename(&log, dir.join("istat.log.1")).unwrap();
    let pid = nix::unistd::Pid::from_raw(d.child.as_ref().unwrap().id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    // Still running after SIGHUP; the next log line goes to a new file at the old path.
    d.send_tcp("hup.x 1");
    d.wait_for("the sample", 10, |d| {
        d.stat("istatd.statserver.samples") == 1
    });
    assert_eq!(d.terminate(), 0);
    let text = std::fs::read_to_string(&log).expect("a new log file");
    assert!(text.contains("shutting down"), "{text}");
    let old = std::fs::read_to_string(dir.join("istat.log.1")).unwrap();
    assert!(old.contains("starting istatd"), "{old}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http_serves_counter_data_lists_and_agents_from_every_shard() {
    use std::io::{Read, Write};
    let Some(shared) = shared() else { return };
    let dir = temp_dir("http");
    let mut opts: Vec<&str> = GOLDEN_OPTS.to_vec();
    opts.retain(|o| *o != "--flush" && *o != "1");
    let d = Daemon::start_with_http(&dir, 19181, 19182, 19183, &opts);
    d.send_tcp(&lines_of(&shared.join("golden/basic/input.txt")));
    d.wait_for("all samples", 30, |d| {
        d.stat("istatd.statserver.samples") == 502
    });
    let get = |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", 19183)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    // Golden request 1, through whichever shard accepts the connection.
    let want_body = lines_of(&shared.join("golden/basic/http/1.body"));
    for _ in 0..4 {
        let resp = get("/web.latency.server1?start=1600000000&end=1600002700&samples=30");
        assert!(
            resp.starts_with("HTTP/1.1 200 (that's a status code)\r\n"),
            "{resp}"
        );
        let body = resp.split("\r\n\r\n").nth(1).unwrap();
        let got: serde_json::Value = serde_json::from_str(body).unwrap();
        let want: serde_json::Value = serde_json::from_str(&want_body).unwrap();
        assert_eq!(got, want);
    }
    let list = get("/?q=queue.*");
    for name in ["queue.depth", "queue.depth.dc", "queue.depth.dc.east"] {
        assert!(
            list.contains(&format!("\"{name}\"")),
            "{name} missing from {list}"
        );
    }
    let missing = get("/missing.counter");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    let agents = get("/?a=1");
    assert!(agents.contains("\"_peer\":\"127.0.0.1:"), "{agents}");
    assert!(d.admin("stats").contains("http.port=19183\r\n"));
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn prometheus_exporter_and_internal_metrics() {
    use std::io::{Read, Write};
    let dir = temp_dir("prom");
    let d = Daemon::start_with_http(
        &dir,
        19191,
        19192,
        19193,
        &[
            "--retention",
            "10s:1h",
            "--prometheus-port",
            "19194",
            "--fake-time",
            "1000",
        ],
    );
    d.send_tcp("*c.tag^host.h1^role.r 2\n*c.one 7\ng.one 990 1.5");
    // The caret line records two counters.
    d.wait_for("samples", 10, |d| d.stat("istatd.statserver.samples") >= 4);
    let get = |port: u16, path: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let exporter = get(19194, "/metrics");
    assert!(exporter.starts_with("HTTP/1.1 200"), "{exporter}");
    assert!(
        exporter.contains("c_tag{host=\"h1\",role=\"r\",counter=\"1\"} 2 1000000"),
        "{exporter}"
    );
    assert!(
        exporter.contains("c_one{counter=\"1\"} 7 1000000"),
        "{exporter}"
    );
    assert!(exporter.contains("g_one 1.5 990000"), "{exporter}");
    assert!(get(19194, "/other").starts_with("HTTP/1.1 400"));
    let internal = get(19193, "/metrics");
    assert!(
        internal.contains("Content-Type: text/plain; version=0.0.4"),
        "{internal}"
    );
    assert!(
        internal.contains("# TYPE istatd_statserver_connects counter"),
        "{internal}"
    );
    assert!(
        internal.contains("istatd_statserver_samples 4"),
        "{internal}"
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Admin `loglevel` (docs/interfaces.md §5.3) sets the levels in force: shown by a bare
/// `loglevel`, and obeyed by the log file (at level 0 the info line of a shutdown is
/// not written; at the default it is).
#[test]
fn loglevel_sets_the_levels_the_log_obeys() {
    for quiet in [true, false] {
        let dir = temp_dir(if quiet {
            "loglevel-quiet"
        } else {
            "loglevel-default"
        });
        let log = dir.join("daemon.log");
        let logs = log.display().to_string();
        let mut d = Daemon::start(&dir, 19185, 19186, &["--log-file", &logs]);
        assert_eq!(d.admin("loglevel"), "loglevel 2 1\r\nok\r\n");
        if quiet {
            assert_eq!(d.admin("loglevel 3,4"), "loglevel 3 4\r\nok\r\n");
            assert_eq!(d.admin("loglevel"), "loglevel 3 4\r\nok\r\n");
            // A refused second level leaves the first applied (as the reference).
            let reply = d.admin("loglevel 0,9");
            assert!(
                reply.contains("loglevel must be between 0 and 5"),
                "{reply}"
            );
            assert_eq!(d.admin("loglevel"), "loglevel 0 4\r\nok\r\n");
        }
        assert_eq!(d.terminate(), 0);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("starting istatd"), "{text}");
        assert_eq!(
            text.contains("shutting down"),
            !quiet,
            "level {} and the shutdown line:\n{text}",
            if quiet { 0 } else { 2 }
        );
        common::wait_ports_free(&[19185, 19186]);
    }
}

/// `--log-file -`: every line on stdout (journald, containers), no log file.
#[test]
fn log_file_dash_writes_to_stdout() {
    use std::io::Read;
    let dir = temp_dir("log-stdout");
    let cfg = dir.join("empty.cfg");
    std::fs::write(&cfg, "").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(["--config", &cfg.display().to_string()])
        .args(["--store", &dir.join("store").display().to_string()])
        .args([
            "--stat-port",
            "19187",
            "--admin-port",
            "19188",
            "--http-port",
            "0",
        ])
        .args(["--listen-address", "127.0.0.1", "--log-file", "-"])
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", 19188)).is_err() {
        assert!(std::time::Instant::now() < deadline, "no admin port");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("starting istatd"), "stdout:\n{out}");
    assert!(out.contains("shutting down"), "stdout:\n{out}");
    assert!(!dir.join("-").exists() && !dir.join("istat.log").exists());
}

/// A seccomp filter that refuses io_uring_setup with EPERM, as a container runtime's
/// default profile does; installed in the child between fork and exec.
fn refuse_io_uring() -> std::io::Result<()> {
    use libc::{sock_filter, sock_fprog};
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let filter = [
        // A = seccomp_data.nr (offset 0)
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_io_uring_setup as u32,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: prctl with a filter program that lives until the call returns.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const sock_fprog,
            ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// With io_uring refused (a container's seccomp profile), the daemon exits 2 at once
/// with a message that names io_uring and what to change.
#[test]
fn a_refused_io_uring_is_named_at_start() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir("no-io-uring");
    let cfg = dir.join("empty.cfg");
    std::fs::write(&cfg, "").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_istatd"));
    cmd.args(["--config", &cfg.display().to_string()])
        .args(["--store", &dir.join("store").display().to_string()])
        .args([
            "--stat-port",
            "19189",
            "--admin-port",
            "19190",
            "--http-port",
            "0",
        ])
        .args(["--listen-address", "127.0.0.1"])
        .current_dir(&dir);
    // SAFETY: only prctl calls between fork and exec.
    unsafe {
        cmd.pre_exec(refuse_io_uring);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("io_uring is not available"), "{err}");
    assert!(err.contains("seccomp"), "{err}");
}
