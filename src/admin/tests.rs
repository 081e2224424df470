use super::command::explode;
use super::debug::UnknownDebugOption;
use super::*;
use crate::metrics::loopback::{Loopback, LoopbackCounters};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn err(line: &str) -> String {
    parse_command(line).unwrap_err().render()
}

fn lines(f: &mut AdminFramer) -> Vec<AdminInput> {
    std::iter::from_fn(|| f.next_input()).collect()
}

// ---- framing

#[test]
fn framer_splits_pipelined_lines_and_keeps_cr() {
    let mut f = AdminFramer::new();
    f.push(b"help\r\nstats\nfl");
    assert_eq!(
        lines(&mut f),
        vec![
            AdminInput::Line("help\r".into()),
            AdminInput::Line("stats".into())
        ]
    );
    assert_eq!(f.buffered(), 2);
    f.push(b"ush\r\n\n");
    assert_eq!(
        lines(&mut f),
        vec![
            AdminInput::Line("flush\r".into()),
            AdminInput::Line(String::new())
        ]
    );
    assert_eq!(f.buffered(), 0);
}

#[test]
fn framer_accepts_line_of_exactly_max() {
    let mut f = AdminFramer::new();
    let mut data = vec![b'a'; MAX_LINE];
    data.push(b'\n');
    f.push(&data);
    assert_eq!(lines(&mut f), vec![AdminInput::Line("a".repeat(MAX_LINE))]);
}

#[test]
fn framer_reports_long_line_once_and_recovers() {
    let mut f = AdminFramer::new();
    f.push(&vec![b'x'; MAX_LINE]);
    assert_eq!(lines(&mut f), vec![]);
    f.push(b"y");
    assert_eq!(lines(&mut f), vec![AdminInput::TooLong]);
    assert_eq!(f.buffered(), 0);
    f.push(&vec![b'z'; 10 * MAX_LINE]);
    assert_eq!(lines(&mut f), vec![]);
    assert_eq!(f.buffered(), 0);
    f.push(b"zz\nhelp\n");
    assert_eq!(lines(&mut f), vec![AdminInput::Line("help".into())]);
}

#[test]
fn framer_long_line_complete_in_one_chunk() {
    let mut f = AdminFramer::new();
    let mut data = b"stats\n".to_vec();
    data.extend(vec![b'q'; MAX_LINE + 1]);
    data.extend(b"\r\nquit\r\n");
    f.push(&data);
    assert_eq!(
        lines(&mut f),
        vec![
            AdminInput::Line("stats".into()),
            AdminInput::TooLong,
            AdminInput::Line("quit\r".into())
        ]
    );
    assert_eq!(
        AdminReply::line_too_long().render(),
        "huh? line too long\r\n"
    );
}

#[test]
fn framer_more_than_1024_pending_is_not_corrupted() {
    // docs/interfaces.md §9 item 15: the reference overwrote the first byte when ≥ 1024
    // bytes were pending.
    let mut f = AdminFramer::new();
    let mut data = Vec::new();
    for _ in 0..300 {
        data.extend(b"stats\r\n");
    }
    f.push(&data);
    let got = lines(&mut f);
    assert_eq!(got.len(), 300);
    assert!(got.iter().all(|l| *l == AdminInput::Line("stats\r".into())));
}

#[test]
fn framer_non_utf8_is_lossy() {
    let mut f = AdminFramer::new();
    f.push(b"delete.ctr a\xffb\n");
    assert_eq!(
        lines(&mut f),
        vec![AdminInput::Line("delete.ctr a\u{fffd}b".into())]
    );
}

// ---- splitting and unknown commands

#[test]
fn empty_line_and_unknown() {
    assert_eq!(parse_command(""), Err(AdminReply::Huh));
    assert_eq!(err(""), "huh? ('help' for help)\r\n");
    assert_eq!(
        err("bogus\r"),
        "huh? ('help' for help) (received 'bogus')\r\n"
    );
    // a line that is only CR: command word empty after trimming
    assert_eq!(err("\r"), "huh? ('help' for help) (received '')\r\n");
    // leading space: the command word is what precedes the first space
    assert_eq!(err(" help"), "huh? ('help' for help) (received '')\r\n");
    assert_eq!(err("   "), "huh? ('help' for help) (received '')\r\n");
    // case-sensitive
    assert_eq!(err("HELP"), "huh? ('help' for help) (received 'HELP')\r\n");
    assert_eq!(
        err("\tbogus x,y"),
        "huh? ('help' for help) (received 'bogus')\r\n"
    );
}

#[test]
fn explode_rules() {
    assert_eq!(explode(""), Vec::<String>::new());
    assert_eq!(explode("a"), s(&["a"]));
    assert_eq!(explode("a,"), s(&["a"]));
    assert_eq!(explode("a,,"), s(&["a", ""]));
    assert_eq!(explode(","), s(&[""]));
    assert_eq!(explode(",b"), s(&["", "b"]));
    assert_eq!(explode("a,,b"), s(&["a", "", "b"]));
    assert_eq!(explode("a.x, a.y"), s(&["a.x", " a.y"]));
}

#[test]
fn simple_commands_ignore_arguments() {
    assert_eq!(parse_command("help"), Ok(AdminCommand::Help));
    assert_eq!(parse_command("help\r"), Ok(AdminCommand::Help));
    assert_eq!(parse_command("help me,now"), Ok(AdminCommand::Help));
    assert_eq!(
        parse_command("stats"),
        Ok(AdminCommand::Stats { heap: false })
    );
    assert_eq!(
        parse_command("stats\r"),
        Ok(AdminCommand::Stats { heap: false })
    );
    assert_eq!(
        parse_command("stats heap"),
        Ok(AdminCommand::Stats { heap: true })
    );
    assert_eq!(
        parse_command("stats other"),
        Ok(AdminCommand::Stats { heap: false })
    );
    assert_eq!(parse_command("flush\r"), Ok(AdminCommand::Flush));
    assert_eq!(parse_command("flush x"), Ok(AdminCommand::Flush));
    assert_eq!(parse_command("quit\r"), Ok(AdminCommand::Quit));
    assert_eq!(parse_command("quit x"), Ok(AdminCommand::Quit));
    assert_eq!(parse_command("help  \t\r"), Ok(AdminCommand::Help));
}

#[test]
fn help_is_exact() {
    let h = help_text();
    assert!(h.starts_with("Commands:\r\nhelp - display this help\r\n"));
    assert!(h.ends_with("quit - disconnect from stat server\r\nok\r\n"));
    assert_eq!(h.matches("\r\n").count(), 13);
    assert!(!h.contains("delete.pattern"));
    assert!(!h.contains("replication"));
    assert_eq!(h.len(), 561);
}

// ---- purge

#[test]
fn purge_arguments() {
    assert_eq!(
        parse_command("purge"),
        Ok(AdminCommand::Purge {
            max_old: 0,
            max_age: 60
        })
    );
    assert_eq!(
        parse_command("purge 0,0\r"),
        Ok(AdminCommand::Purge {
            max_old: 0,
            max_age: 0
        })
    );
    assert_eq!(
        parse_command("purge 5"),
        Ok(AdminCommand::Purge {
            max_old: 5,
            max_age: 60
        })
    );
    assert_eq!(
        parse_command("purge +5,-7,junk"),
        Ok(AdminCommand::Purge {
            max_old: 5,
            max_age: -7
        })
    );
    // boost casts "-1" to size_t by wrapping
    assert_eq!(
        parse_command("purge -1"),
        Ok(AdminCommand::Purge {
            max_old: u64::MAX,
            max_age: 60
        })
    );
}

#[test]
fn purge_parse_error_echoes_arguments() {
    let want = format!("a, b, \r\nhuh? {LEXICAL_CAST_ERROR}\r\n");
    assert_eq!(err("purge a,b"), want);
    assert_eq!(
        err("purge 1, 2"),
        format!("1,  2, \r\nhuh? {LEXICAL_CAST_ERROR}\r\n")
    );
    assert_eq!(
        err("purge ,5"),
        format!(", 5, \r\nhuh? {LEXICAL_CAST_ERROR}\r\n")
    );
    assert_eq!(
        err("purge 99999999999999999999"),
        format!("99999999999999999999, \r\nhuh? {LEXICAL_CAST_ERROR}\r\n")
    );
    assert_eq!(
        err("purge 1,9223372036854775808"),
        format!("1, 9223372036854775808, \r\nhuh? {LEXICAL_CAST_ERROR}\r\n")
    );
    assert!(parse_command("purge 1,-9223372036854775808").is_ok());
    assert!(parse_command("purge -").is_err());
    assert!(parse_command("purge +").is_err());
    assert!(parse_command("purge 0x10").is_err());
}

// ---- debug

#[test]
fn debug_parsing() {
    assert_eq!(
        parse_command("debug\r"),
        Ok(AdminCommand::Debug(DebugCommand {
            name: None,
            set: None
        }))
    );
    assert_eq!(
        parse_command("debug admin"),
        Ok(AdminCommand::Debug(DebugCommand {
            name: Some("admin".into()),
            set: None
        }))
    );
    assert_eq!(
        parse_command("debug admin,on"),
        Ok(AdminCommand::Debug(DebugCommand {
            name: Some("admin".into()),
            set: Some(true)
        }))
    );
    assert_eq!(
        parse_command("debug http,off,"),
        Ok(AdminCommand::Debug(DebugCommand {
            name: Some("http".into()),
            set: Some(false)
        }))
    );
    assert_eq!(err("debug a,b,c"), "huh? too many arguments\r\n");
    assert_eq!(err("debug admin,on,x"), "huh? too many arguments\r\n");
    // Port fix 16: the reference crashes here.
    assert_eq!(
        err("debug admin,yes"),
        "huh? Should be 'on' or 'off': yes\r\n"
    );
    assert_eq!(
        err("debug admin, on"),
        "huh? Should be 'on' or 'off':  on\r\n"
    );
    // unknown option: the second argument is never looked at
    assert_eq!(
        parse_command("debug nosuch,yes"),
        Ok(AdminCommand::Debug(DebugCommand {
            name: Some("nosuch".into()),
            set: None
        }))
    );
}

#[test]
fn debug_running() {
    let mut d = DebugOptions::new();
    let run = |d: &mut DebugOptions, line: &str| match parse_command(line) {
        Ok(AdminCommand::Debug(c)) => d.run(&c),
        other => panic!("{other:?}"),
    };
    let all = run(&mut d, "debug");
    assert!(all.starts_with("allKeys: off\r\nstatTcp: off\r\n"));
    assert!(all.ends_with("audit: off\r\nsegv: off\r\nok\r\n"));
    assert_eq!(all, d.render());
    assert_eq!(run(&mut d, "debug admin"), "admin: off\r\nok\r\n");
    assert_eq!(run(&mut d, "debug admin,on"), "admin: on\r\nok\r\n");
    assert_eq!(d.get("admin"), Some(true));
    assert_eq!(run(&mut d, "debug admin"), "admin: on\r\nok\r\n");
    assert!(run(&mut d, "debug").contains("\r\nadmin: on\r\n"));
    assert_eq!(run(&mut d, "debug admin,off"), "admin: off\r\nok\r\n");
    assert_eq!(run(&mut d, "debug nosuch"), "ok\r\n");
    assert_eq!(run(&mut d, "debug nosuch,on"), "ok\r\n");
    assert_eq!(run(&mut d, "debug ,on"), "ok\r\n");
    assert_eq!(run(&mut d, "debug Admin"), "ok\r\n");
    assert_eq!(d, DebugOptions::new());
}

#[test]
fn debug_from_names() {
    let d = DebugOptions::from_names(["segv", "allKeys"]).unwrap();
    assert_eq!(d.get("segv"), Some(true));
    assert_eq!(d.get("allKeys"), Some(true));
    assert_eq!(d.get("http"), Some(false));
    assert_eq!(d.get("nope"), None);
    assert_eq!(d.iter().filter(|(_, on)| *on).count(), 2);
    let bad = DebugOptions::from_names(["http", "bad"]);
    assert_eq!(bad, Err(UnknownDebugOption("bad".to_string())));
    assert_eq!(bad.unwrap_err().to_string(), "No such debug option: bad");
}

// ---- faketime

#[test]
fn faketime_parsing() {
    assert_eq!(
        parse_command("faketime 1600003000\r"),
        Ok(AdminCommand::FakeTime(Ok(1600003000)))
    );
    assert_eq!(
        parse_command("faketime -5"),
        Ok(AdminCommand::FakeTime(Ok(-5)))
    );
    let e = |line: &str| match parse_command(line) {
        Ok(AdminCommand::FakeTime(Err(r))) => r.render(),
        other => panic!("{other:?}"),
    };
    assert_eq!(e("faketime"), "huh? requires one argument (timestamp)\r\n");
    assert_eq!(
        e("faketime 1,2"),
        "huh? requires one argument (timestamp)\r\n"
    );
    assert_eq!(e("faketime ,"), "huh? bad timestamp\r\n");
    // Port fix 16
    assert_eq!(e("faketime abc"), "huh? bad timestamp\r\n");
    assert_eq!(e("faketime 0"), "huh? bad timestamp\r\n");
    assert_eq!(e("faketime 12x"), "huh? bad timestamp\r\n");
    assert_eq!(e("faketime 99999999999999999999"), "huh? bad timestamp\r\n");
    // the trailing comma is dropped, the rest is exact
    assert_eq!(
        parse_command("faketime 7,"),
        Ok(AdminCommand::FakeTime(Ok(7)))
    );
    assert_eq!(
        AdminReply::not_fake_time().render(),
        "huh? Not started with --fake-time.\r\n"
    );
}

// ---- loglevel

#[test]
fn loglevel_parsing() {
    let ll = |file, stderr, error| {
        Ok(AdminCommand::LogLevel(LogLevelCommand {
            file,
            stderr,
            error,
        }))
    };
    assert_eq!(parse_command("loglevel"), ll(None, None, None));
    assert_eq!(parse_command("loglevel 3\r"), ll(Some(3), None, None));
    assert_eq!(parse_command("loglevel 0,5"), ll(Some(0), Some(5), None));
    assert_eq!(err("loglevel 1,2,3"), "huh? too many arguments\r\n");
    assert_eq!(
        err("loglevel 6"),
        "huh? loglevel must be between 0 and 5\r\n"
    );
    assert_eq!(
        err("loglevel -1"),
        "huh? loglevel must be between 0 and 5\r\n"
    );
    assert_eq!(err("loglevel x"), format!("huh? {LEXICAL_CAST_ERROR}\r\n"));
    assert_eq!(
        err("loglevel 4294967296"),
        format!("huh? {LEXICAL_CAST_ERROR}\r\n")
    );
    // the first level is applied before the second is rejected
    assert_eq!(
        parse_command("loglevel 2,9"),
        ll(
            Some(2),
            None,
            Some(AdminReply::error("loglevel must be between 0 and 5"))
        )
    );
    assert_eq!(
        parse_command("loglevel 2,x"),
        ll(Some(2), None, Some(AdminReply::error(LEXICAL_CAST_ERROR)))
    );
    assert_eq!(render_loglevel(3, 1), "loglevel 3 1\r\nok\r\n");
}

// ---- delete

#[test]
fn delete_parsing() {
    assert_eq!(
        err("delete.ctr"),
        "huh? delete.ctr requires one or more counter names.\r\n"
    );
    assert_eq!(
        err("delete.ctr\r"),
        "huh? delete.ctr requires one or more counter names.\r\n"
    );
    assert_eq!(
        err("delete.ctr   \r"),
        "huh? delete.ctr requires one or more counter names.\r\n"
    );
    assert_eq!(
        err("delete.pattern"),
        "huh? delete.pattern requires one or more patterns.\r\n"
    );
    assert_eq!(
        parse_command("delete.ctr a.x, a.y\r"),
        Ok(AdminCommand::DeleteCtr(s(&["a.x", " a.y"])))
    );
    assert_eq!(
        parse_command("delete.ctr a,,b,"),
        Ok(AdminCommand::DeleteCtr(s(&["a", "", "b"])))
    );
    assert_eq!(
        parse_command("delete.ctr ,"),
        Ok(AdminCommand::DeleteCtr(s(&[""])))
    );
    assert_eq!(
        parse_command("delete.pattern tep.asd*\r"),
        Ok(AdminCommand::DeletePattern(s(&["tep.asd*"])))
    );
    // only the first space splits; later spaces stay inside arguments
    assert_eq!(
        parse_command("delete.ctr a b"),
        Ok(AdminCommand::DeleteCtr(s(&["a b"])))
    );
    assert_eq!(echo_line(" a.y"), " a.y\r\n");
    assert_eq!(
        AdminReply::no_store("delete.ctr").render(),
        "huh? no statstore to delete.ctr from.\r\n"
    );
    assert_eq!(
        AdminReply::no_store("delete.pattern").render(),
        "huh? no statstore to delete.pattern from.\r\n"
    );
}

// ---- settings

#[test]
fn setting_commands() {
    assert_eq!(
        parse_command("flush.setting foo\r"),
        Ok(AdminCommand::FlushSetting("foo".into()))
    );
    assert_eq!(
        parse_command("load.setting foo,"),
        Ok(AdminCommand::LoadSetting("foo".into()))
    );
    for bad in ["flush.setting", "flush.setting a,b", "flush.setting a,,"] {
        assert_eq!(
            err(bad),
            "huh? flush.setting needs exactly one settings file name. (no path)\r\n"
        );
    }
    for bad in ["load.setting", "load.setting a,b"] {
        assert_eq!(
            err(bad),
            "huh? load.setting needs exactly one settings file name. (no path)\r\n"
        );
    }
}

// ---- replication

#[test]
fn replication_commands() {
    use ReplicationCommand as R;
    let p = |l: &str| {
        parse_command(l).map(|c| match c {
            AdminCommand::Replication(r) => r,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(p("replication.status\r"), Ok(R::Status));
    assert_eq!(p("replication.promote"), Ok(R::Promote));
    assert_eq!(p("replication.suspend"), Ok(R::Suspend(None)));
    assert_eq!(
        p("replication.suspend master"),
        Ok(R::Suspend(Some(ReplicationRole::Master)))
    );
    assert_eq!(
        p("replication.resume slave"),
        Ok(R::Resume(Some(ReplicationRole::Slave)))
    );
    assert_eq!(
        p("replication.of host:19421"),
        Ok(R::Of {
            address: "host:19421".into(),
            from: None
        })
    );
    assert_eq!(
        p("replication.of [::1]:19421,from=1600000000\r"),
        Ok(R::Of {
            address: "[::1]:19421".into(),
            from: Some(1_600_000_000)
        })
    );
    assert_eq!(
        p("replication.resync all,from=0"),
        Ok(R::Resync {
            target: ResyncTarget::All,
            from: Some(0)
        })
    );
    assert_eq!(
        p("replication.resync a/b/10s"),
        Ok(R::Resync {
            target: ResyncTarget::Path("a/b/10s".into()),
            from: None
        })
    );
    assert_eq!(err("replication.status x"), "huh? too many arguments\r\n");
    assert_eq!(p("replication.scrub"), Ok(R::Scrub(ScrubAction::Show)));
    assert_eq!(
        p("replication.scrub start\r"),
        Ok(R::Scrub(ScrubAction::Start))
    );
    assert_eq!(p("replication.scrub stop"), Ok(R::Scrub(ScrubAction::Stop)));
    assert_eq!(
        err("replication.scrub go"),
        "huh? Should be 'start' or 'stop': go\r\n"
    );
    assert_eq!(
        err("replication.scrub start,stop"),
        "huh? too many arguments\r\n"
    );
    assert_eq!(
        err("replication.suspend both"),
        "huh? Should be 'master' or 'slave': both\r\n"
    );
    for bad in [
        "replication.of",
        "replication.of host",
        "replication.of host:0",
        "replication.of host:65536",
        "replication.of :80",
        "replication.of a:b:80",
        "replication.of [::1:80",
        "replication.of host:8x",
    ] {
        assert_eq!(err(bad), "huh? bad address\r\n", "{bad}");
    }
    for bad in [
        "replication.of h:1,from=",
        "replication.of h:1,from=-1",
        "replication.of h:1,from=4294967296",
        "replication.of h:1, from=5",
        "replication.of h:1,to=5",
        "replication.resync all,from=x",
    ] {
        assert_eq!(err(bad), "huh? bad time\r\n", "{bad}");
    }
    assert_eq!(
        err("replication.bogus"),
        "huh? ('help' for help) (received 'replication.bogus')\r\n"
    );
    assert_eq!(
        err("replication.resync"),
        "huh? requires a file path or 'all'\r\n"
    );
}

// ---- stats

#[test]
fn stats_rendering() {
    let none: [(&str, i64); 0] = [];
    assert_eq!(render_stats(&StatsInfo::default(), none), "ok\r\n");
    let single = StatsInfo {
        http: Some(HttpStats {
            port: 19011,
            current: 0,
        }),
        fake_time: Some(1325395000),
        ..Default::default()
    };
    assert_eq!(
        render_stats(&single, none),
        "http.port=19011\r\nhttp.current=0\r\nfakeTime.value=1325395000\r\nok\r\n"
    );
    let master = StatsInfo {
        replica_server: Some(ReplicaServerStats {
            port: 19421,
            current: 1,
        }),
        ..Default::default()
    };
    assert_eq!(
        render_stats(&master, none),
        "replicaServer.port=19421\r\nreplicaServer.current=1\r\nok\r\n"
    );
    let slave = StatsInfo {
        http: Some(HttpStats {
            port: 19412,
            current: 0,
        }),
        replica_of: Some(ReplicaOfStats {
            source: "localhost:19421".into(),
            connected: true,
            queue: 0,
        }),
        ..Default::default()
    };
    assert_eq!(
        render_stats(&slave, [("istatd.admin.commands", 3)]),
        "http.port=19412\r\nhttp.current=0\r\nreplicaOf.source=localhost:19421\r\n\
         replicaOf.connected=1\r\nreplicaOf.queue=0\r\nistatd.admin.commands=3\r\nok\r\n"
    );
    let all = StatsInfo {
        http: Some(HttpStats {
            port: 1,
            current: 2,
        }),
        replica_server: Some(ReplicaServerStats {
            port: 3,
            current: 4,
        }),
        replica_of: Some(ReplicaOfStats {
            source: "h:5".into(),
            connected: false,
            queue: 6,
        }),
        fake_time: Some(7),
    };
    let mut lc = LoopbackCounters::new(&["10s"]);
    lc.incr(Loopback::AdminCommands);
    let out = render_stats(&all, lc.stats());
    let keys: Vec<&str> = out
        .split("\r\n")
        .map(|l| l.split('=').next().unwrap())
        .collect();
    assert_eq!(
        &keys[..8],
        [
            "http.port",
            "http.current",
            "replicaServer.port",
            "replicaServer.current",
            "replicaOf.source",
            "replicaOf.connected",
            "replicaOf.queue",
            "fakeTime.value"
        ]
    );
    assert!(out.contains("\r\nreplicaOf.connected=0\r\n"));
    assert!(out.contains("\r\nistatd.admin.commands=1\r\n"));
    assert!(out.contains("\r\nistatd.pagecache.misses.time_10s=0\r\nok\r\n"));
}
