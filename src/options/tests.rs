//! Unit tests of option parsing, config files, usage text, start-up checks and
//! paths.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::config_file::{apply_config_data, apply_toml};
use super::table::{spec, SPECS};
use super::validate::{boost_parent_path, combine_paths};
use super::*;
use istatd_storage::store::IoMode;

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// A launch directory without an istatd.cfg (it need not exist: nothing is
/// created and no chdir happens while parsing).
fn empty_dir() -> PathBuf {
    std::env::temp_dir().join("istatd-options-unit-no-such-dir")
}

fn cli(a: &[&str]) -> Result<Options, OptionsError> {
    parse_with_notices(&args(a), &empty_dir()).map(|(o, _)| o)
}

fn cfg(text: &str) -> Result<Options, ConfigError> {
    let mut o = Options::default();
    apply_config_data(&mut o, text.as_bytes()).map(|_| o)
}

#[test]
fn defaults_match_the_table() {
    let o = Options::default();
    assert_eq!(o.admin_port, 0);
    assert_eq!(o.agent, "");
    assert_eq!(o.agent_interval, 10);
    assert_eq!(o.agent_count, 1);
    assert_eq!(o.allocation_strategy, 1);
    assert_eq!(o.blacklist_period, 60);
    assert_eq!(o.config, "istatd.cfg");
    assert!(!o.daemonize && !o.test);
    assert_eq!(o.files_dir, "files");
    assert_eq!(o.flush, 300);
    assert_eq!(o.http_port, 8000);
    assert_eq!(o.listen_overflow_backlog, libc::SOMAXCONN);
    assert_eq!(o.log_level, 2);
    assert_eq!(o.max_matrics_count, -1);
    assert_eq!(o.metrics_cleanup_period, 30);
    assert_eq!(o.min_space, -1);
    assert!(o.num_files > 0);
    assert_eq!(o.prune_empty_directories_interval, 120);
    assert_eq!(o.retention, DEFAULT_RETENTION);
    assert_eq!(o.settings, "/tmp");
    assert_eq!(o.stat_port, 8111);
    assert!(o.thread_count >= 1);
    assert_eq!(o.udp_buffer_size, 1024);
    assert_eq!(o.user, nix::unistd::getuid().to_string());
    assert_eq!(o.shards, None);
    assert!(o.pin_cores.is_empty());
    assert_eq!(o.page_cache_mb, 0);
    assert_eq!(o.max_open_files, 16000);
    assert_eq!(o.replica_chunk_buckets, 2048);
    assert_eq!(o.replica_read_rate, 0);
    assert_eq!(o.replica_max_slaves, 4);
    assert_eq!(o.replica_subscribe_rate, 20_000);
    assert_eq!(o.replica_create_rate, 0);
    assert_eq!(o.replica_resume_overlap, 600);
    assert_eq!(o.replica_late_window, 86400);
    assert_eq!(o.replica_from, None);
    assert_eq!(o.replica_keepalive, 10);
    assert_eq!(o.replica_timeout, 60);
    assert!(o.validate().is_ok());
}

#[test]
fn option_names_are_unique_and_spelled_as_the_reference() {
    let mut names: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(n, names.len());
    for must in [
        "agentCount",
        "max-matrics-count",
        "agent-interval",
        "thread-count",
    ] {
        assert!(spec(must).is_some(), "{must}");
    }
    assert!(spec("agent-count").is_none());
    assert!(spec("max-metrics-count").is_none());
}

#[test]
fn values_and_booleans() {
    let o = cli(&["--stat-port", "18001", "--daemonize", "--agent", "h:1"]).unwrap();
    assert_eq!(o.stat_port, 18001);
    assert!(o.daemonize);
    assert_eq!(o.agent, "h:1");
    // Signs are accepted; the value is the next argument whatever it looks like.
    let o = cli(&[
        "--fake-time",
        "+5",
        "--min-space",
        "-7",
        "--local-stats",
        "--x",
    ])
    .unwrap();
    assert_eq!((o.fake_time, o.min_space), (5, -7));
    assert_eq!(o.local_stats, "--x");
}

#[test]
fn later_occurrences_override() {
    let o = cli(&["--stat-port", "1", "--stat-port", "2"]).unwrap();
    assert_eq!(o.stat_port, 2);
}

#[test]
fn equals_form() {
    let o = cli(&["--stat-port=18001", "--agent=", "--retention=10s:1h"]).unwrap();
    assert_eq!(o.stat_port, 18001);
    assert_eq!(o.agent, "");
    assert_eq!(o.retention, "10s:1h");
    let e = cli(&["--daemonize=true"]).unwrap_err();
    assert_eq!(e.message, "Command line error near --daemonize=true");
    let e = cli(&["--stat-port=abc"]).unwrap_err();
    assert_eq!(e.message, "Command line error near --stat-port=abc");
    let e = cli(&["--nope=1"]).unwrap_err();
    assert_eq!(e.message, "Command line error near --nope=1");
}

#[test]
fn command_line_errors() {
    for (a, near) in [
        (vec!["positional"], "positional"),
        (vec!["--bogus"], "--bogus"),
        (vec!["--help"], "--help"),
        (vec!["-x"], "-x"),
        (vec![""], ""),
        (vec!["--daemonize", "false"], "false"),
        (vec!["--stat-port", "abc"], "--stat-port"),
        (vec!["--stat-port", " 1"], "--stat-port"),
        (vec!["--stat-port", "99999999999"], "--stat-port"),
        (vec!["--replica-max-slaves", "-1"], "--replica-max-slaves"),
        (vec!["--pin-cores", "3-1"], "--pin-cores"),
        (vec!["--", "x"], "x"),
        (vec!["--", "--stat-port", "1"], "--stat-port"),
    ] {
        let e = cli(&a).unwrap_err();
        assert_eq!(
            e.message,
            format!("Command line error near {near}"),
            "{a:?}"
        );
        assert_eq!(e.exit_code, 1);
        assert!(e.usage.as_deref().unwrap().starts_with("istatd built "));
    }
    // `--` alone at the end is fine.
    assert_eq!(cli(&["--stat-port", "5", "--"]).unwrap().stat_port, 5);
}

#[test]
fn missing_value_is_a_usage_error() {
    let e = cli(&["--stat-port"]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(e.message, "Argument requires a value: --stat-port");
    assert!(e.usage.is_some());
    assert!(e
        .stderr_text()
        .starts_with("Argument requires a value: --stat-port\nistatd built "));
}

#[test]
fn usage_shows_current_values_at_the_error() {
    let e = cli(&["--http-port", "1234", "--bogus"]).unwrap_err();
    let u = e.usage.unwrap();
    assert!(
        u.contains("\n--http-port    (1234        )   Port to listen"),
        "{u}"
    );
}

#[test]
fn usage_layout() {
    let o = Options {
        thread_count: 4,
        user: "1000".into(),
        num_files: 1024,
        ..Options::default()
    };
    let u = usage(&o);
    let lines: Vec<&str> = u.lines().collect();
    assert_eq!(lines[0], format!("istatd built {BUILD_STAMP}"));
    assert_eq!(
        lines[1],
        "--admin-port   (0           )   When specified, port that exposes an admin telnet interface"
    );
    assert!(lines.contains(
        &"--agent        (            )   Agent to forward to, rather than save data locally."
    ));
    assert!(lines
        .contains(&"--daemonize    (0           )   Unattach stdin; detach to the background."));
    assert!(lines.contains(&"--prune-empty-directories-interval (120         )   How often (in seconds) to go through the directory tree and prune empty trees."));
    assert!(lines.contains(&"--retention    (10s:10d,5m:1y9d,1h:6y12d,5m:7d:ret-7d:0.9)   When specified, adjusts number and size of retention times."));
    // byte order: '-' < 'C', so agent-interval sorts before agentCount.
    let names: Vec<&str> = lines[1..lines.len() - 2]
        .iter()
        .map(|l| l[2..].split(' ').next().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), SPECS.len());
    let ai = names.iter().position(|n| *n == "agent-interval").unwrap();
    let ac = names.iter().position(|n| *n == "agentCount").unwrap();
    assert!(ai < ac);
    for extra in [
        "shards",
        "pin-cores",
        "page-cache-mb",
        "max-open-files",
        "store-io",
        "replica-timeout",
    ] {
        assert!(names.contains(&extra), "{extra}");
    }
    assert_eq!(lines[lines.len() - 2], "debug options:");
    assert!(lines[lines.len() - 1].starts_with("allKeys, statTcp, statUdp, "));
    assert!(u.ends_with("audit, segv\n"));
}

#[test]
fn config_format() {
    let o = cfg("--stat-port 18001\n  --http-port   18011  \n# --admin-port 5\n\n--daemonize\n")
        .unwrap();
    assert_eq!((o.stat_port, o.http_port, o.admin_port), (18001, 18011, 0));
    assert!(o.daemonize);
    // CRLF, tabs and vertical tabs are whitespace at the ends.
    let o = cfg("--stat-port 1\r\n--agent x:1\r\n\x0b--flush 2\x0c\r\n").unwrap();
    assert_eq!((o.stat_port, o.agent.as_str(), o.flush), (1, "x:1", 2));
    // One pair of quotes is removed; the inside is kept as is.
    let o = cfg("--local-stats \"\"\n--agent \" a b \"\n--store \"\"x\"\"\n").unwrap();
    assert_eq!(o.local_stats, "");
    assert_eq!(o.agent, " a b ");
    assert_eq!(o.store, "\"x\"");
    // A boolean with a value sets true, whatever the value.
    assert!(cfg("--daemonize false").unwrap().daemonize);
    // Last line without newline, later lines override.
    assert_eq!(cfg("--flush 1\n--flush 2").unwrap().flush, 2);
    // A --config line is accepted (and loads nothing).
    assert_eq!(cfg("--config other.cfg\n").unwrap().config, "other.cfg");
    // A tab after the value's separating space is skipped.
    assert_eq!(cfg("--flush \t 7").unwrap().flush, 7);
}

#[test]
fn config_errors() {
    let cases = [
        (
            "--stat-port\n",
            "Error on line 1: '--stat-port' should have an argument.",
        ),
        (
            "# c\n\n--stat-port\t18001\n",
            "Error on line 3: '--stat-port\t18001' should have an argument.",
        ),
        (
            "--bogus\n",
            "Error on line 1: '--bogus' should have an argument.",
        ),
        ("--\n", "Error on line 1: '--' should have an argument."),
        (
            "--stat-port=1\n",
            "Error on line 1: '--stat-port=1' should have an argument.",
        ),
        ("--flush 1\n--bogus 3\n", "Error on line 2: near --bogus"),
        ("--stat-port abc\n", "Error on line 1: near --stat-port"),
        ("--stat-port \"\"\n", "Error on line 1: near --stat-port"),
        ("stat-port 1\n", "Error on line 1: near stat-port"),
        ("-- value\n", "Error on line 1: near value"),
        ("xxdaemonize\n", "Error on line 1: near xxdaemonize"),
        (
            "\r\n\r\n--log-level x\r\n",
            "Error on line 3: near --log-level",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(cfg(text).unwrap_err().to_string(), want, "{text:?}");
    }
    // Lines before the error stay applied.
    let mut o = Options::default();
    assert!(apply_config_data(&mut o, b"--flush 9\n--bogus 1\n--http-port 1\n").is_err());
    assert_eq!((o.flush, o.http_port), (9, 8000));
}

#[test]
fn toml_config() {
    let mut o = Options::default();
    apply_toml(
        &mut o,
        b"stat-port = 18001\nagentCount = 3\ndaemonize = true\nretention = \"10s:1h\"\n\
          pin-cores = \"0-1,4\"\nshards = 2\nreplica-from = 1700000000\n",
    )
    .unwrap();
    assert_eq!(o.stat_port, 18001);
    assert_eq!(o.agent_count, 3);
    assert!(o.daemonize);
    assert_eq!(o.retention, "10s:1h");
    assert_eq!(o.pin_cores, vec![0, 1, 4]);
    assert_eq!(o.shards, Some(2));
    assert_eq!(o.replica_from, Some(1_700_000_000));
    apply_toml(&mut o, b"daemonize = false\npin-cores = [3, 5]\n").unwrap();
    assert!(!o.daemonize);
    assert_eq!(o.pin_cores, vec![3, 5]);

    let err = |t: &str| {
        apply_toml(&mut Options::default(), t.as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("flush = 1\n\nbogus = 2\n"),
        "Error on line 3: near bogus (unknown option)"
    );
    assert_eq!(
        err("stat-port = \"18001\"\n"),
        "Error on line 1: near stat-port (expected an integer)"
    );
    assert!(err("stat-port = 99999999999\n").starts_with("Error on line 1: near stat-port"));
    assert!(err("daemonize = 1\n").starts_with("Error on line 1: near daemonize"));
    assert!(err("[section]\nx = 1\n").starts_with("Error on line 1: near section"));
    assert!(err("flush = 1\nstat-port = \n").starts_with("Error on line 2: "));
    assert!(err("flush = 1\nflush = 2\n").starts_with("Error on line 2: "));
}

#[test]
fn debug_names() {
    let mut o = Options::default();
    assert_eq!(super::debug_names(&o).unwrap(), Vec::<String>::new());
    o.debug = " allKeys ,http,, allKeys,\tsegv ".into();
    assert_eq!(
        super::debug_names(&o).unwrap(),
        vec!["allKeys", "http", "segv"]
    );
    for n in DEBUG_OPTIONS {
        o.debug = n.to_string();
        assert!(super::debug_names(&o).is_ok(), "{n}");
    }
    o.debug = "allKeys,bogus".into();
    let e = super::debug_names(&o).unwrap_err();
    assert_eq!(
        (e.message.as_str(), e.exit_code),
        ("No such debug option: bogus", 1)
    );
}

#[test]
fn listen_address() {
    let mut o = Options::default();
    assert_eq!(listen_ipv4(&o).unwrap(), None);
    o.listen_address = "127.0.0.1".into();
    assert_eq!(listen_ipv4(&o).unwrap(), Some(Ipv4Addr::LOCALHOST));
    for bad in ["localhost", "1.2.3", "::1", "1.2.3.4 "] {
        o.listen_address = bad.into();
        let e = listen_ipv4(&o).unwrap_err();
        assert_eq!(e.exit_code, 2);
        assert_eq!(
            e.message,
            "Error in main() parsing listen-address [Invalid argument]"
        );
    }
}

#[test]
fn retention_check() {
    let mut o = Options::default();
    assert_eq!(retentions(&o).unwrap().len(), 4);
    o.retention = "1m".into();
    let e = retentions(&o).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert!(!e.message.is_empty());
}

#[test]
fn port_ranges() {
    let mut o = Options::default();
    assert!(check_ports(&o).is_ok());
    o.stat_port = 65535;
    o.admin_port = 0;
    assert!(check_ports(&o).is_ok());
    o.stat_port = 65536;
    let e = check_ports(&o).unwrap_err();
    assert_eq!(e.exit_code, 2);
    assert_eq!(
        e.message,
        "Error in main() [Bad stat port specified: 65536]"
    );
    o.stat_port = -1;
    assert_eq!(check_ports(&o).unwrap_err().exit_code, 2);
    o.stat_port = 0;
    o.admin_port = 70000;
    assert_eq!(
        check_ports(&o).unwrap_err().message,
        "Error in main() [Bad port number in AdminServer: 70000]"
    );
    o.admin_port = 0;
    for set in [
        |o: &mut Options| o.http_port = 65536,
        |o: &mut Options| o.prometheus_port = -5,
        |o: &mut Options| o.replica_port = 100000,
    ] {
        let mut p = o.clone();
        set(&mut p);
        assert_eq!(check_ports(&p).unwrap_err().exit_code, 2);
    }
}

#[test]
fn port_additions() {
    let o = cli(&[
        "--pin-cores",
        "0-1,4",
        "--shards",
        "3",
        "--page-cache-mb",
        "8",
    ])
    .unwrap();
    assert_eq!(o.pin_cores, vec![0, 1, 4]);
    assert_eq!(o.shard_count(), 3);
    assert_eq!(o.page_cache_mb, 8);
    assert_eq!(o.value_text("pin-cores").unwrap(), "0-1,4");
    assert!(check_port_additions(&o).is_ok());
    let o = cli(&["--thread-count", "6"]).unwrap();
    assert_eq!(o.shard_count(), 6);
    let o = cli(&["--thread-count", "0"]).unwrap();
    assert_eq!((o.worker_threads(), o.shard_count()), (1, 1));
    let o = cli(&["--thread-count", "1000"]).unwrap();
    assert_eq!(o.worker_threads(), 384);
    let o = cli(&["--shards", "0"]).unwrap();
    assert_eq!(check_port_additions(&o).unwrap_err().exit_code, 1);
    let o = cli(&["--pin-cores", ""]).unwrap();
    assert!(o.pin_cores.is_empty());
    let o = cli(&["--agentCount", "-3", "--agent-interval", "0"]).unwrap();
    assert_eq!((o.agent_connections(), o.agent_flush_interval()), (1, 1));
    let o = cli(&[]).unwrap();
    assert_eq!(store_io(&o).unwrap(), IoMode::Buffered);
    let o = cli(&["--store-io", "direct"]).unwrap();
    assert_eq!(store_io(&o).unwrap(), IoMode::Direct);
    let o = cli(&["--store-io", "mmap"]).unwrap();
    let e = check_port_additions(&o).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert!(
        e.to_string()
            .contains("--store-io must be buffered or direct"),
        "{e}"
    );
}

#[test]
fn core_lists() {
    assert_eq!(parse_core_list("0,1").unwrap(), vec![0, 1]);
    assert_eq!(parse_core_list("0-3").unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(parse_core_list("0-1,4").unwrap(), vec![0, 1, 4]);
    assert_eq!(parse_core_list(" 2 , 0-1 ").unwrap(), vec![2, 0, 1]);
    assert_eq!(parse_core_list("").unwrap(), Vec::<usize>::new());
    for bad in ["3-1", "x", "-1", "1-", "0-5000", "1.5"] {
        assert!(parse_core_list(bad).is_err(), "{bad}");
    }
    assert_eq!(format_core_list(&[0, 1, 2, 3, 5, 7, 8]), "0-3,5,7-8");
    assert_eq!(format_core_list(&[2, 0, 1]), "2,0-1");
}

#[test]
fn replication_options() {
    let o = cli(&[
        "--replica-chunk-buckets",
        "2048",
        "--replica-read-rate",
        "0",
        "--replica-max-slaves",
        "8",
        "--replica-subscribe-rate",
        "10",
        "--replica-create-rate",
        "20",
        "--replica-resume-overlap",
        "900",
        "--replica-late-window",
        "3600",
        "--replica-from",
        "1700000000",
        "--replica-keepalive",
        "5",
        "--replica-timeout",
        "11",
    ])
    .unwrap();
    assert_eq!(o.replica_chunk_buckets, 2048);
    assert_eq!(o.replica_read_rate, 0);
    assert_eq!(o.replica_max_slaves, 8);
    assert_eq!(o.replica_subscribe_rate, 10);
    assert_eq!(o.replica_create_rate, 20);
    assert_eq!(o.replica_resume_overlap, 900);
    assert_eq!(o.replica_late_window, 3600);
    assert_eq!(o.replica_from, Some(1_700_000_000));
    assert_eq!(check_replication(&o).unwrap(), None);

    let check = |a: &[&str]| check_replication(&cli(a).unwrap());
    assert_eq!(
        check(&["--replica-of", "localhost:18021", "--store", "s"]).unwrap(),
        Some(("localhost".to_string(), 18021))
    );
    assert_eq!(
        check(&["--replica-of", "[::1]:18021", "--store", "s"]).unwrap(),
        Some(("::1".to_string(), 18021))
    );
    for bad in [
        vec!["--replica-of", "localhost:18021"],
        vec!["--replica-port", "18021"],
        vec!["--replica-of", "h:1", "--store", "s", "--agent", "a:2"],
        vec!["--replica-of", "h", "--store", "s"],
        vec!["--replica-of", "h:0", "--store", "s"],
        vec!["--replica-of", ":5", "--store", "s"],
        vec!["--replica-of", "::1:5", "--store", "s"],
        vec!["--replica-of", "[nope]:5", "--store", "s"],
        vec!["--replica-chunk-buckets", "0"],
        vec!["--replica-chunk-buckets", "2049"],
        vec!["--replica-keepalive", "30"],
        vec!["--replica-keepalive", "0"],
    ] {
        let e = check(&bad).unwrap_err();
        assert_eq!(e.exit_code, 2, "{bad:?}");
        assert!(e.message.starts_with("Error in main() ["), "{}", e.message);
    }
    assert!(check(&["--replica-keepalive", "29"]).is_ok());
    // `--replica-from ""` unsets.
    assert_eq!(
        cli(&["--replica-from", "5", "--replica-from", ""])
            .unwrap()
            .replica_from,
        None
    );
}

#[test]
fn validate_runs_checks_in_startup_order() {
    let mut o = Options {
        debug: "bogus".into(),
        listen_address: "x".into(),
        ..Options::default()
    };
    assert_eq!(o.validate().unwrap_err().exit_code, 1);
    o.debug = String::new();
    assert_eq!(o.validate().unwrap_err().exit_code, 2);
    o.listen_address = String::new();
    o.retention = "0s:1h".into();
    o.stat_port = -1;
    assert_eq!(o.validate().unwrap_err().exit_code, 1);
    o.retention = "10s:1h".into();
    assert_eq!(o.validate().unwrap_err().exit_code, 2);
    o.stat_port = 1;
    let v = o.validate().unwrap();
    assert_eq!(v.retentions.len(), 1);
}

#[test]
fn combine_and_parent() {
    let d = Path::new("/D");
    assert_eq!(combine_paths(d, "x"), PathBuf::from("/D/x"));
    assert_eq!(combine_paths(Path::new("/D/"), "x"), PathBuf::from("/D/x"));
    assert_eq!(combine_paths(d, "/abs"), PathBuf::from("/abs"));
    assert_eq!(combine_paths(d, "./x").as_os_str(), "/D/./x");
    let parent = |s: &str| String::from_utf8(boost_parent_path(s.as_bytes())).unwrap();
    assert_eq!(parent("/D/data/store"), "/D/data");
    assert_eq!(parent("/D/data/store/"), "/D/data/store");
    assert_eq!(parent("/D/data//store"), "/D/data");
    assert_eq!(parent("/store"), "/");
    assert_eq!(parent("/"), "");
    assert_eq!(parent("rel/x"), "rel");
    assert_eq!(parent("x"), "");
}

#[test]
fn paths_follow_section_7_7() {
    let o = cli(&[
        "--store",
        "data/store",
        "--settings",
        "data/settings",
        "--log-file",
        "log/x.log",
        "--pid-file",
        "/run/x.pid",
        "--blacklist-path",
        "bl",
        "--tagnames-path",
        "/t",
    ])
    .unwrap();
    let p = o.paths(Path::new("/D"));
    assert_eq!(p.store, Some(PathBuf::from("/D/data/store")));
    assert_eq!(p.chdir_to, Some(PathBuf::from("/D/data")));
    assert_eq!(p.work_dir, PathBuf::from("/D/data"));
    // observed: settings ends up in D/data/data/settings
    assert_eq!(p.settings, PathBuf::from("/D/data/data/settings"));
    assert_eq!(p.files_dir, PathBuf::from("/D/data/files"));
    assert_eq!(p.log_file, PathBuf::from("/D/log/x.log"));
    assert_eq!(p.pid_file, Some(PathBuf::from("/run/x.pid")));
    assert_eq!(p.config, PathBuf::from("/D/istatd.cfg"));
    assert_eq!(p.blacklist_path, Some(PathBuf::from("/D/data/bl")));
    assert_eq!(p.tagnames_path, Some(PathBuf::from("/t")));

    // Agents (no store) stay in the launch directory; default log is istat.log there.
    let p = Options::default().paths(Path::new("/L"));
    assert_eq!((p.chdir_to, p.store, p.pid_file), (None, None, None));
    assert_eq!(p.work_dir, PathBuf::from("/L"));
    assert_eq!(p.log_file, PathBuf::from("/L/istat.log"));
    assert_eq!(p.settings, PathBuf::from("/tmp"));
    assert_eq!(p.files_dir, PathBuf::from("/L/files"));

    let o = Options {
        store: "/var/db/istatd/store/".into(),
        ..Options::default()
    };
    let p = o.paths(Path::new("/L"));
    assert_eq!(p.chdir_to, Some(PathBuf::from("/var/db/istatd/store")));
    assert_eq!(p.log_file, PathBuf::from("/var/db/istatd/store/istat.log"));
}

#[test]
fn host_port() {
    assert_eq!(parse_host_port("a:1").unwrap(), ("a".to_string(), 1));
    assert!(parse_host_port("a:65536").is_err());
    assert!(parse_host_port("a:b:1").is_err());
    assert!(parse_host_port("[::1]").is_err());
}

#[test]
fn entries_list_every_option() {
    let e = Options::default().entries();
    assert_eq!(e.len(), SPECS.len());
    assert!(e.iter().any(|(n, v)| *n == "http-port" && v == "8000"));
}
