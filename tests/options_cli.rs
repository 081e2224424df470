//! `istatd::options::parse` with real config files (docs/interfaces.md §7.1, §7.2, §7.7).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use istatd::options::{parse, parse_with_notices, usage, Options, OptionsError};

/// A fresh, empty launch directory, removed when dropped.
struct LaunchDir(PathBuf);

impl std::ops::Deref for LaunchDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for LaunchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn launch_dir() -> LaunchDir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "istatd-options-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    LaunchDir(d)
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn run(dir: &Path, a: &[&str]) -> Result<(Options, Vec<String>), OptionsError> {
    parse_with_notices(&args(a), dir)
}

const SINGLE_CFG: &str = "--stat-port 18001
--http-port 18011
--admin-port 18031
--thread-count 4
--log-level 3
--retention 10s:1h,5m:2h,1h:3h
--debug allKeys
--fake-time 1325395000
";

#[test]
fn implicit_config_absent_prints_not_a_file_and_continues() {
    let d = launch_dir();
    let (o, notices) = run(&d, &["--stat-port", "1"]).unwrap();
    assert_eq!(notices, vec!["Not a file: istatd.cfg".to_string()]);
    assert_eq!(o.stat_port, 1);
    assert_eq!(o.http_port, 8000);
    assert_eq!(o.config, "istatd.cfg");
    // `parse` prints the notice itself and returns the same options.
    assert_eq!(parse(&args(&["--stat-port", "1"]), &d).unwrap(), o);
}

#[test]
fn implicit_config_that_is_a_directory_is_not_a_file() {
    let d = launch_dir();
    std::fs::create_dir(d.join("istatd.cfg")).unwrap();
    let (_, notices) = run(&d, &[]).unwrap();
    assert_eq!(notices, vec!["Not a file: istatd.cfg".to_string()]);
}

#[test]
fn implicit_config_present_is_applied_before_the_command_line() {
    let d = launch_dir();
    write(&d, "istatd.cfg", SINGLE_CFG.as_bytes());
    let (o, notices) = run(&d, &["--http-port", "9"]).unwrap();
    assert!(notices.is_empty());
    assert_eq!(o.stat_port, 18001);
    assert_eq!(o.http_port, 9);
    assert_eq!(o.admin_port, 18031);
    assert_eq!(o.thread_count, 4);
    assert_eq!(o.log_level, 3);
    assert_eq!(o.retention, "10s:1h,5m:2h,1h:3h");
    assert_eq!(o.debug, "allKeys");
    assert_eq!(o.fake_time, 1_325_395_000);
    let v = o.validate().unwrap();
    assert_eq!(v.debug, vec!["allKeys"]);
    assert_eq!(v.retentions.len(), 3);
}

#[test]
fn implicit_config_broken_is_fatal_in_the_port() {
    let d = launch_dir();
    write(
        &d,
        "istatd.cfg",
        b"# comment\n\n--stat-port 18001\n--bogus 1\n",
    );
    let e = run(&d, &[]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(e.message, "Error on line 4: near --bogus");
    assert_eq!(e.usage, None);
    assert_eq!(e.stderr_text(), "Error on line 4: near --bogus\n");

    write(&d, "istatd.cfg", b"--daemonize\n--stat-port\n");
    let e = run(&d, &[]).unwrap_err();
    assert_eq!(
        e.message,
        "Error on line 2: '--stat-port' should have an argument."
    );
    assert_eq!(e.exit_code, 1);
}

#[test]
fn explicit_config_replaces_the_implicit_one() {
    let d = launch_dir();
    write(&d, "istatd.cfg", b"--bogus\n");
    write(&d, "mine.cfg", b"--stat-port 7\n");
    let (o, notices) = run(&d, &["--config", "mine.cfg"]).unwrap();
    assert!(notices.is_empty());
    assert_eq!(o.stat_port, 7);
    // The command line sets the raw value; paths() resolves it against the launch dir.
    assert_eq!(o.config, "mine.cfg");
    assert_eq!(o.paths(&d).config, d.join("mine.cfg"));
}

#[test]
fn explicit_config_is_applied_first_wherever_it_appears() {
    let d = launch_dir();
    write(&d, "a.cfg", b"--stat-port 7\n--http-port 8\n");
    let (o, _) = run(&d, &["--stat-port", "5", "--config", "a.cfg"]).unwrap();
    assert_eq!((o.stat_port, o.http_port), (5, 8));
    // The last --config wins; --config=FILE works too.
    write(&d, "b.cfg", b"--http-port 9\n");
    let (o, _) = run(&d, &["--config", "a.cfg", "--config=b.cfg"]).unwrap();
    assert_eq!((o.stat_port, o.http_port), (8111, 9));
    // An absolute path is used as is.
    let abs = d.join("a.cfg");
    let (o, _) = run(&launch_dir(), &["--config", abs.to_str().unwrap()]).unwrap();
    assert_eq!(o.http_port, 8);
}

#[test]
fn explicit_config_missing_or_broken_exits_1() {
    let d = launch_dir();
    let e = run(&d, &["--config", "nope.cfg"]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(
        e.message,
        format!("Not a file: {}", d.join("nope.cfg").display())
    );
    assert_eq!(e.usage, None);

    write(&d, "bad.cfg", b"--stat-port 1\r\n--stat-port x\r\n");
    let e = run(&d, &["--config", "bad.cfg"]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(e.message, "Error on line 2: near --stat-port");
}

#[test]
fn config_line_does_not_load_another_file() {
    let d = launch_dir();
    write(&d, "other.cfg", b"--stat-port 99\n");
    write(&d, "istatd.cfg", b"--config other.cfg\n--http-port 3\n");
    let (o, _) = run(&d, &[]).unwrap();
    assert_eq!(o.stat_port, 8111);
    assert_eq!(o.http_port, 3);
    assert_eq!(o.config, "other.cfg");
}

#[test]
fn crlf_quotes_comments_and_booleans() {
    let d = launch_dir();
    write(
        &d,
        "istatd.cfg",
        b"# istatd-agent configuration\r\n\
          --stat-port 8001\r\n\
          --store \"\"\r\n\
          --local-stats \"\"\r\n\
          --agent \"istatd-master:18001\"\r\n\
          \r\n\
          --replica-of \"\"\r\n\
          --replica-port 0 \r\n\
          \t--min-space -1\t\r\n\
          --daemonize\r\n\
          --dont-translate-metric-names yes please\r\n\
          #--http-port 1\r\n\
          --debug \"\"\r\n\
          --files-dir  /usr/share/istatd/files",
    );
    let (o, _) = run(&d, &[]).unwrap();
    assert_eq!(o.stat_port, 8001);
    assert_eq!(o.store, "");
    assert_eq!(o.local_stats, "");
    assert_eq!(o.agent, "istatd-master:18001");
    assert_eq!(o.replica_of, "");
    assert_eq!(o.replica_port, 0);
    assert_eq!(o.min_space, -1);
    assert!(o.daemonize);
    assert!(o.dont_translate_metric_names);
    assert_eq!(o.http_port, 8000);
    assert_eq!(o.debug, "");
    assert_eq!(o.files_dir, "/usr/share/istatd/files");
}

#[test]
fn config_error_line_numbers_count_every_line() {
    let d = launch_dir();
    write(
        &d,
        "c.cfg",
        b"# one\n\n   \n--flush 1\n# five\n--flush\t2\n",
    );
    let e = run(&d, &["--config", "c.cfg"]).unwrap_err();
    assert_eq!(
        e.message,
        "Error on line 6: '--flush\t2' should have an argument."
    );
    write(&d, "c.cfg", b"--flush 1\n-- oops\n");
    let e = run(&d, &["--config", "c.cfg"]).unwrap_err();
    assert_eq!(e.message, "Error on line 2: near oops");
}

#[test]
fn toml_config() {
    let d = launch_dir();
    write(
        &d,
        "istatd.toml",
        br#"# TOML form: option names without the dashes
stat-port = 18001
http-port = 18011
agentCount = 2
max-matrics-count = 50
daemonize = true
disallow-compressed-responses = false
retention = "10s:1h"
debug = "allKeys,http"
store = "data/store"
pin-cores = "0-1"
shards = 2
replica-timeout = 90
"#,
    );
    let (o, notices) = run(&d, &["--config", "istatd.toml", "--http-port", "1"]).unwrap();
    assert!(notices.is_empty());
    assert_eq!(o.stat_port, 18001);
    assert_eq!(o.http_port, 1);
    assert_eq!(o.agent_count, 2);
    assert_eq!(o.max_matrics_count, 50);
    assert!(o.daemonize);
    assert!(!o.disallow_compressed_responses);
    assert_eq!(o.retention, "10s:1h");
    assert_eq!(o.store, "data/store");
    assert_eq!(o.pin_cores, vec![0, 1]);
    assert_eq!(o.shard_count(), 2);
    assert_eq!(o.replica_timeout, 90);
    assert_eq!(o.validate().unwrap().debug, vec!["allKeys", "http"]);
}

#[test]
fn toml_errors_carry_line_numbers() {
    let d = launch_dir();
    let cases: [(&str, &str); 5] = [
        (
            "stat-port = 1\n\nno-such-option = 2\n",
            "Error on line 3: near no-such-option (unknown option)",
        ),
        (
            "stat-port = \"18001\"\n",
            "Error on line 1: near stat-port (expected an integer)",
        ),
        (
            "flush = 1\ndaemonize = \"yes\"\n",
            "Error on line 2: near daemonize (expected true or false)",
        ),
        ("flush = 1\nflush = 2\n", "Error on line 2: "),
        ("flush = 1\n\nstat-port = \n", "Error on line 3: "),
    ];
    for (text, want) in cases {
        write(&d, "x.toml", text.as_bytes());
        let e = run(&d, &["--config", "x.toml"]).unwrap_err();
        assert_eq!(e.exit_code, 1, "{text:?}");
        assert!(e.message.starts_with(want), "{text:?}: got {:?}", e.message);
        assert!(!e.message.contains('\n'), "{:?}", e.message);
    }
}

#[test]
fn command_line_errors_print_usage_with_config_values() {
    let d = launch_dir();
    write(&d, "istatd.cfg", b"--http-port 4321\n");
    let e = run(&d, &["--stat-port", "abc"]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(e.message, "Command line error near --stat-port");
    let u = e.usage.clone().unwrap();
    assert!(u.contains("\n--http-port    (4321        )   "), "{u}");
    assert!(e
        .stderr_text()
        .starts_with("Command line error near --stat-port\nistatd built "));

    let e = run(&d, &["extra"]).unwrap_err();
    assert_eq!(e.message, "Command line error near extra");
    let e = run(&d, &["--", "extra"]).unwrap_err();
    assert_eq!(e.message, "Command line error near extra");
    let e = run(&d, &["--daemonize", "false"]).unwrap_err();
    assert_eq!(e.message, "Command line error near false");
}

#[test]
fn config_without_a_value_is_a_usage_error() {
    let d = launch_dir();
    let e = run(&d, &["--config"]).unwrap_err();
    assert_eq!(e.exit_code, 1);
    assert_eq!(e.message, "Argument requires a value: --config");
    assert!(e.usage.is_some());
}

#[test]
fn usage_function_matches_the_error_usage() {
    let d = launch_dir();
    let e = run(&d, &["--thread-count", "3", "--nope"]).unwrap_err();
    let o = Options {
        thread_count: 3,
        ..Options::default()
    };
    assert_eq!(e.usage.unwrap(), usage(&o));
}

#[test]
fn relative_paths_after_the_store_chdir() {
    let d = launch_dir();
    write(
        &d,
        "istatd.cfg",
        b"--store data/store\n--settings data/settings\n--pid-file run/istatd.pid\n",
    );
    let (o, _) = run(&d, &[]).unwrap();
    let p = o.paths(&d);
    assert_eq!(p.store, Some(d.join("data/store")));
    assert_eq!(p.chdir_to, Some(d.join("data")));
    assert_eq!(p.settings, d.join("data/data/settings"));
    assert_eq!(p.pid_file, Some(d.join("run/istatd.pid")));
    assert_eq!(p.log_file, d.join("data/istat.log"));
    assert_eq!(p.config, d.join("istatd.cfg"));
}

// ----- help and version (the binary) ---------------------------------------------------

fn istatd(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_istatd"))
        .args(args)
        .output()
        .expect("run istatd")
}

#[test]
fn help_prints_the_usage_with_defaults_on_stdout_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = istatd(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text, istatd::options::usage(&Options::default()), "{flag}");
        assert!(text.contains("--flush        (300         )"), "{text}");
        assert!(out.stderr.is_empty(), "{flag}: nothing on stderr");
    }
}

#[test]
fn version_prints_the_build_stamp_and_exits_0() {
    for flag in ["--version", "-V"] {
        let out = istatd(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("istatd {}\n", istatd::options::BUILD_STAMP)
        );
    }
}

#[test]
fn help_lists_the_subcommands() {
    let out = istatd(&["help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    for word in ["file", "verify", "istatd --help"] {
        assert!(text.contains(word), "{word} missing from:\n{text}");
    }
}

#[test]
fn help_among_daemon_options_stays_a_command_line_error() {
    // As the reference: options are read as `--name value` pairs, so a `--help` in a
    // daemon command line is an unknown option, reported with the usage on stderr.
    let out = istatd(&["--flush", "1", "--help"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("Command line error near --help"), "{err}");
}

#[test]
fn help_man_is_a_man_page_of_every_option() {
    let out = istatd(&["help", "man"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(".TH ISTATD 8 "), "{text}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SIGNALS"] {
        assert!(text.contains(section), "{section} missing");
    }
    // Every option of the usage text is in the page, with its default.
    let usage = istatd::options::usage(&Options::default());
    for line in usage.lines().filter(|l| l.starts_with("--")) {
        let name = line[2..].split_whitespace().next().unwrap();
        let roffed = name.replace('-', "\\-");
        assert!(
            text.contains(&format!("\\-\\-{roffed}")),
            "--{name} missing"
        );
    }
    assert!(text.contains("Default: 300."), "the --flush default");
}

#[test]
fn help_completions_bash_completes_every_option() {
    let out = istatd(&["help", "completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("complete -F _istatd istatd"), "{text}");
    for name in [
        "--store",
        "--replica-of",
        "--daemonize",
        "--help",
        "--version",
    ] {
        assert!(text.contains(name), "{name} missing");
    }
    // The script is valid bash.
    let check = std::process::Command::new("bash")
        .args(["-n", "-c", &text])
        .output()
        .expect("bash");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
