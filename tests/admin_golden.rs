//! The admin port's answers against the reference's captured bytes
//! (`../shared/golden/basic/admin/*.txt`, see its README), and the pattern language
//! against the reference's tests.

use std::path::PathBuf;

use istatd::admin::{
    help_text, parse_command, AdminCommand, AdminFramer, AdminInput, DebugOptions, OK,
};
use istatd::pattern::pattern_match;

fn golden_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .join("shared/golden/basic/admin");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: golden admin answers not found at {} (../shared relative to the repo)",
            dir.display()
        );
        None
    }
}

fn golden(dir: &std::path::Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs one admin line the way the daemon does in the golden setup (`--fake-time` given,
/// a store, every debug option off) for the commands whose answer needs no store work.
fn answer(line: &[u8], debug: &mut DebugOptions) -> String {
    let mut f = AdminFramer::new();
    f.push(line);
    let Some(AdminInput::Line(l)) = f.next_input() else {
        panic!("no line in {line:?}");
    };
    assert_eq!(f.next_input(), None);
    match parse_command(&l) {
        Err(reply) => reply.render(),
        Ok(AdminCommand::Help) => help_text(),
        Ok(AdminCommand::Flush) => OK.to_string(),
        Ok(AdminCommand::Debug(cmd)) => debug.run(&cmd),
        Ok(AdminCommand::FakeTime(Ok(t))) => {
            assert_eq!(t, 1600003000);
            OK.to_string()
        }
        Ok(AdminCommand::FakeTime(Err(reply))) => reply.render(),
        Ok(other) => panic!("unexpected {other:?}"),
    }
}

#[test]
fn golden_admin_answers() {
    let Some(dir) = golden_dir() else { return };
    let mut debug = DebugOptions::new();
    let cases: [(&[u8], &str); 6] = [
        (b"help\r\n", "help.txt"),
        (b"flush\r\n", "flush.txt"),
        (b"debug\r\n", "debug.txt"),
        (b"faketime 1600003000\r\n", "faketime.txt"),
        (b"bogus\r\n", "unknown.txt"),
        (b"delete.ctr\r\n", "delete-noargs.txt"),
    ];
    for (line, file) in cases {
        let got = answer(line, &mut debug);
        let want = golden(&dir, file);
        assert_eq!(
            got.as_bytes(),
            &want[..],
            "{file}: got {got:?}, want {:?}",
            String::from_utf8_lossy(&want)
        );
    }
    assert_eq!(help_text().as_bytes(), &golden(&dir, "help.txt")[..]);
    assert_eq!(
        DebugOptions::new().render().as_bytes(),
        &golden(&dir, "debug.txt")[..]
    );
}

#[test]
fn golden_admin_answers_pipelined() {
    // The README's session: all six commands on one connection, answers concatenated.
    let Some(dir) = golden_dir() else { return };
    let mut f = AdminFramer::new();
    f.push(b"help\r\nflush\r\ndebug\r\nfaketime 1600003000\r\nbogus\r\ndelete.ctr\r\n");
    let mut debug = DebugOptions::new();
    let mut got = String::new();
    while let Some(input) = f.next_input() {
        let AdminInput::Line(l) = input else {
            panic!("too long?")
        };
        got.push_str(&answer(format!("{l}\n").as_bytes(), &mut debug));
    }
    let mut want = Vec::new();
    for file in [
        "help.txt",
        "flush.txt",
        "debug.txt",
        "faketime.txt",
        "unknown.txt",
        "delete-noargs.txt",
    ] {
        want.extend(golden(&dir, file));
    }
    assert_eq!(got.as_bytes(), &want[..]);
}

#[test]
fn pattern_cases_from_spec_and_ftests() {
    // docs/interfaces.md §3.8
    assert!(pattern_match("tep.?", "tep.tep_die"));
    assert!(pattern_match("tep.?", "tep.tep_live"));
    assert!(!pattern_match("tep.?", "tep.tep_live.and_let_die"));
    assert!(pattern_match("fmt.*", "fmt.test"));
    assert!(pattern_match("fmt.*", "fmt.a.b"));
    assert!(!pattern_match("fmt.*", "fmtx.a"));
    assert!(pattern_match("*.test", "fmt.test"));
    assert!(!pattern_match("*.test", "fmt.test.x"));
    // ftest/test_list_matching.sh: `?q=tep.%3F` lists the leaf tep.tep_die and the
    // branch tep.tep_live, but not the leaf below the branch
    let names = [
        "tep",
        "tep.tep_die",
        "tep.tep_live",
        "tep.tep_live.and_let_die",
    ];
    let hits: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| pattern_match("tep.?", n))
        .collect();
    assert_eq!(hits, ["tep.tep_die", "tep.tep_live"]);
    // ftest/test_delete_ctr.sh: `delete.pattern tep.asd*`
    let names = [
        "tep.asd",
        "tep.asd.dds",
        "tep.asd.aaa",
        "tep.asd.dds.hrr.trr",
        "tep.tep_die",
        "tep.tep_live",
        "istatd.counter.closed",
    ];
    let hits: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| pattern_match("tep.asd*", n))
        .collect();
    assert_eq!(
        hits,
        [
            "tep.asd",
            "tep.asd.dds",
            "tep.asd.aaa",
            "tep.asd.dds.hrr.trr"
        ]
    );
    // `?` is a path component, not one character; `*` crosses dots
    assert!(pattern_match("f?o", "foooo"));
    assert!(pattern_match("?", ""));
    assert!(!pattern_match("?", "a.b"));
    assert!(pattern_match("*", "a.b"));
}
