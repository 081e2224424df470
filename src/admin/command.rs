//! Parsing of one admin line into a command (§5.2, §5.3; daemon/AdminServer.cpp
//! `doCmd`).

use super::debug::DEBUG_OPTION_NAMES;
use super::reply::{AdminReply, LEXICAL_CAST_ERROR};

/// A parsed admin command. What the daemon does for each, and what it writes, is in the
/// variant's documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminCommand {
    /// `help` (arguments ignored): write [`help_text`].
    Help,
    /// `stats` (arguments ignored): write [`render_stats`]. A port addition: `stats heap`
    /// also writes `istatd.process.heap_bytes` (the allocator's bytes in use, for the
    /// perf harness; costly on a large heap, so only when asked).
    Stats { heap: bool },
    /// `flush` (arguments ignored): record the internal counters now
    /// ([`LoopbackRecorder::samples`]), force-flush every counter, save dirty settings
    /// and drop cached ones, flush the agent forward buffers and wait until written
    /// (§6.7), then write [`OK`]. Works without a store.
    Flush,
    /// `purge [maxOld[,maxAge]]`: purge offline connection-info records (§5.3 port
    /// semantics), then write [`OK`]. Arguments after the second are ignored.
    Purge { max_old: u64, max_age: i64 },
    /// `debug [NAME[,on|off]]`: [`DebugOptions::run`] and write its result.
    Debug(DebugCommand),
    /// `loglevel [L[,S]]`: see [`LogLevelCommand`].
    LogLevel(LogLevelCommand),
    /// `faketime T`. The daemon checks first whether it runs with `--fake-time`: if not,
    /// write [`AdminReply::not_fake_time`] (whatever the arguments). Otherwise `Err(r)` →
    /// write `r`; `Ok(t)` → set the fake clock to `t` and write [`OK`].
    FakeTime(Result<i64, AdminReply>),
    /// `delete.ctr a[,b...]` (at least one name, given exactly as typed, not trimmed).
    /// Without a store: write [`AdminReply::no_store`]`("delete.ctr")`. Otherwise for each
    /// name in order: write [`echo_line`]`(name)`, munge it, delete that counter if it
    /// exists (unknown names are skipped); then write [`OK`].
    DeleteCtr(Vec<String>),
    /// `delete.pattern p[,q...]`: as `DeleteCtr`, for every name matching the pattern
    /// ([`pattern_match`]), branches included; no store: `no_store("delete.pattern")`.
    DeletePattern(Vec<String>),
    /// `flush.setting NAME`: save that settings file if dirty and drop it from memory,
    /// then write [`OK`] (**Port**, §9 item 17: no spurious `huh?` line).
    FlushSetting(String),
    /// `load.setting NAME`: re-read `NAME.set` and merge it into memory (a load error is
    /// only logged), then write [`OK`] (**Port**, §9 item 17).
    LoadSetting(String),
    /// `quit`: nothing is written; flush queued output, close, ignore later lines.
    Quit,
    /// `replication.*` (port only, docs/replication-protocol.md, "Operator commands").
    Replication(ReplicationCommand),
}

/// `debug` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebugCommand {
    /// `None`: list every option. `Some(name)`: only that option (nothing listed when the
    /// name is unknown).
    pub name: Option<String>,
    /// New state for the named option. Always `None` when the name is unknown (the
    /// reference then ignores the second argument).
    pub set: Option<bool>,
}

/// `loglevel` arguments, applied in this order: set the file level to `file` if given,
/// set the stderr level to `stderr` if given, then write `error` if given (the reference
/// has already applied the first level when the second is rejected), else
/// [`render_loglevel`] with the levels now in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLevelCommand {
    /// 0–5.
    pub file: Option<u8>,
    /// 0–5.
    pub stderr: Option<u8>,
    pub error: Option<AdminReply>,
}

/// The port's replication admin commands (docs/replication-protocol.md,
/// "Operator commands", "Operator command rules"). Parsing is syntactic; role checks
/// (`huh? not a master`, `huh? not a replica`), `huh? unknown file` for a path the slave
/// does not know, and the `replication.status` lines are the replication code's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationCommand {
    /// `replication.status`.
    Status,
    /// `replication.suspend [master|slave]` (`None`: every role this node has).
    Suspend(Option<ReplicationRole>),
    /// `replication.resume [master|slave]`.
    Resume(Option<ReplicationRole>),
    /// `replication.promote`.
    Promote,
    /// `replication.of HOST:PORT[,from=TIME]`: `address` as given (`host:port` or
    /// `[v6addr]:port`, port 1–65535).
    Of { address: String, from: Option<u32> },
    /// `replication.resync PATH|all[,from=TIME]`.
    Resync {
        target: ResyncTarget,
        from: Option<u32>,
    },
    /// `replication.scrub [start|stop]` (port addition: the anti-entropy scrub; no
    /// argument shows where it stands).
    Scrub(ScrubAction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubAction {
    Show,
    Start,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationRole {
    Master,
    Slave,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResyncTarget {
    All,
    Path(String),
}

/// C `isspace` in the C locale (what the reference's `istat::trim` uses).
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// `istat::trim`.
fn c_trim(s: &str) -> &str {
    s.trim_matches(is_c_space)
}

/// `istat::explode(s, ',')`: pieces between commas, empty pieces kept, nothing after a
/// trailing comma, nothing at all for an empty string.
pub(super) fn explode(s: &str) -> Vec<String> {
    let mut out: Vec<String> = s.split(',').map(str::to_owned).collect();
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// boost::lexical_cast to a signed integer in `[min, max]`: optional `+`/`-`, then one or
/// more ASCII digits, nothing else (no whitespace); out of range fails.
fn lexical_signed(s: &str, min: i64, max: i64) -> Option<i64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = lexical_digits(digits)?;
    let v = if neg {
        0i128 - i128::from(mag)
    } else {
        i128::from(mag)
    };
    if v < i128::from(min) || v > i128::from(max) {
        return None;
    }
    Some(v as i64)
}

/// boost::lexical_cast to `size_t`: like the signed form, but a leading `-` negates in
/// unsigned arithmetic (`-1` is 2^64 − 1).
fn lexical_size_t(s: &str) -> Option<u64> {
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = lexical_digits(digits)?;
    Some(if neg { mag.wrapping_neg() } else { mag })
}

fn lexical_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()
}

/// Parses one admin line: the bytes before the LF, as [`AdminFramer`] yields them
/// (a trailing CR is fine).
///
/// Reference rules (daemon/AdminServer.cpp `doCmd`, lib/strfunc.cpp): an empty line is
/// [`AdminReply::Huh`]; otherwise the line is split at its first space into command and
/// rest, both trimmed of C whitespace, and the rest is split at commas into arguments
/// (empty pieces kept, a trailing comma ignored, arguments not trimmed). Command words
/// are case-sensitive; an unknown one (even empty) gives [`AdminReply::Unknown`].
pub fn parse_command(line: &str) -> Result<AdminCommand, AdminReply> {
    if line.is_empty() {
        return Err(AdminReply::Huh);
    }
    let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
    let cmd = c_trim(cmd);
    let args = explode(c_trim(rest));
    match cmd {
        "help" => Ok(AdminCommand::Help),
        "stats" => Ok(AdminCommand::Stats {
            heap: args.first().map(String::as_str) == Some("heap"),
        }),
        "flush" => Ok(AdminCommand::Flush),
        "purge" => parse_purge(args),
        "debug" => parse_debug(args),
        "faketime" => Ok(AdminCommand::FakeTime(parse_faketime(&args))),
        "loglevel" => parse_loglevel(&args),
        "delete.ctr" => {
            if args.is_empty() {
                Err(AdminReply::error(
                    "delete.ctr requires one or more counter names.",
                ))
            } else {
                Ok(AdminCommand::DeleteCtr(args))
            }
        }
        "delete.pattern" => {
            if args.is_empty() {
                Err(AdminReply::error(
                    "delete.pattern requires one or more patterns.",
                ))
            } else {
                Ok(AdminCommand::DeletePattern(args))
            }
        }
        "flush.setting" => match <[String; 1]>::try_from(args) {
            Ok([name]) => Ok(AdminCommand::FlushSetting(name)),
            Err(_) => Err(AdminReply::error(
                "flush.setting needs exactly one settings file name. (no path)",
            )),
        },
        "load.setting" => match <[String; 1]>::try_from(args) {
            Ok([name]) => Ok(AdminCommand::LoadSetting(name)),
            Err(_) => Err(AdminReply::error(
                "load.setting needs exactly one settings file name. (no path)",
            )),
        },
        "quit" => Ok(AdminCommand::Quit),
        _ => match cmd.strip_prefix("replication.") {
            Some(verb) => parse_replication(cmd, verb, &args).map(AdminCommand::Replication),
            None => Err(AdminReply::Unknown(cmd.to_owned())),
        },
    }
}

fn parse_purge(args: Vec<String>) -> Result<AdminCommand, AdminReply> {
    let max_old = match args.first() {
        None => Some(0),
        Some(a) => lexical_size_t(a),
    };
    let max_age = match args.get(1) {
        None => Some(60),
        Some(a) => lexical_signed(a, i64::MIN, i64::MAX),
    };
    match (max_old, max_age) {
        (Some(max_old), Some(max_age)) => Ok(AdminCommand::Purge { max_old, max_age }),
        _ => Err(AdminReply::EchoThenError {
            args,
            message: LEXICAL_CAST_ERROR.to_owned(),
        }),
    }
}

fn parse_debug(args: Vec<String>) -> Result<AdminCommand, AdminReply> {
    if args.len() >= 3 {
        return Err(AdminReply::error("too many arguments"));
    }
    let mut it = args.into_iter();
    let name = it.next();
    let value = it.next();
    let known = name
        .as_deref()
        .is_some_and(|n| DEBUG_OPTION_NAMES.contains(&n));
    let set = match value {
        Some(v) if known => match v.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            // **Port** (§9 item 16): the reference reads args[2] here and crashes.
            _ => return Err(AdminReply::Error(format!("Should be 'on' or 'off': {v}"))),
        },
        _ => None,
    };
    Ok(AdminCommand::Debug(DebugCommand { name, set }))
}

fn parse_faketime(args: &[String]) -> Result<i64, AdminReply> {
    if args.len() != 1 {
        return Err(AdminReply::error("requires one argument (timestamp)"));
    }
    // **Port** (§9 item 16): the reference throws inside the worker (no reply) for a
    // non-numeric value or 0.
    match lexical_signed(&args[0], i64::MIN, i64::MAX) {
        Some(t) if t != 0 => Ok(t),
        _ => Err(AdminReply::error("bad timestamp")),
    }
}

fn parse_level(arg: &str) -> Result<u8, AdminReply> {
    match lexical_signed(arg, i64::from(i32::MIN), i64::from(i32::MAX)) {
        None => Err(AdminReply::error(LEXICAL_CAST_ERROR)),
        Some(l) if (0..=5).contains(&l) => Ok(l as u8),
        Some(_) => Err(AdminReply::error("loglevel must be between 0 and 5")),
    }
}

fn parse_loglevel(args: &[String]) -> Result<AdminCommand, AdminReply> {
    if args.len() >= 3 {
        return Err(AdminReply::error("too many arguments"));
    }
    let file = match args.first() {
        None => None,
        Some(a) => Some(parse_level(a)?),
    };
    let (stderr, error) = match args.get(1) {
        None => (None, None),
        Some(a) => match parse_level(a) {
            Ok(l) => (Some(l), None),
            Err(e) => (None, Some(e)),
        },
    };
    Ok(AdminCommand::LogLevel(LogLevelCommand {
        file,
        stderr,
        error,
    }))
}

fn parse_replication(
    cmd: &str,
    verb: &str,
    args: &[String],
) -> Result<ReplicationCommand, AdminReply> {
    let too_many = || AdminReply::error("too many arguments");
    let role = |args: &[String]| -> Result<Option<ReplicationRole>, AdminReply> {
        match args {
            [] => Ok(None),
            [r] if r == "master" => Ok(Some(ReplicationRole::Master)),
            [r] if r == "slave" => Ok(Some(ReplicationRole::Slave)),
            [r] => Err(AdminReply::Error(format!(
                "Should be 'master' or 'slave': {r}"
            ))),
            _ => Err(too_many()),
        }
    };
    match verb {
        "status" if args.is_empty() => Ok(ReplicationCommand::Status),
        "promote" if args.is_empty() => Ok(ReplicationCommand::Promote),
        "status" | "promote" => Err(too_many()),
        "suspend" => role(args).map(ReplicationCommand::Suspend),
        "resume" => role(args).map(ReplicationCommand::Resume),
        "of" => {
            if args.len() > 2 {
                return Err(too_many());
            }
            let address = match args.first() {
                Some(a) if valid_address(a) => a.clone(),
                _ => return Err(AdminReply::error("bad address")),
            };
            let from = parse_from(args.get(1))?;
            Ok(ReplicationCommand::Of { address, from })
        }
        "resync" => {
            if args.len() > 2 {
                return Err(too_many());
            }
            let target = match args.first().map(String::as_str) {
                None => return Err(AdminReply::error("requires a file path or 'all'")),
                Some("all") => ResyncTarget::All,
                Some("") => return Err(AdminReply::error("unknown file")),
                Some(p) => ResyncTarget::Path(p.to_owned()),
            };
            let from = parse_from(args.get(1))?;
            Ok(ReplicationCommand::Resync { target, from })
        }
        "scrub" => match args {
            [] => Ok(ReplicationCommand::Scrub(ScrubAction::Show)),
            [a] if a == "start" => Ok(ReplicationCommand::Scrub(ScrubAction::Start)),
            [a] if a == "stop" => Ok(ReplicationCommand::Scrub(ScrubAction::Stop)),
            [a] => Err(AdminReply::Error(format!(
                "Should be 'start' or 'stop': {a}"
            ))),
            _ => Err(too_many()),
        },
        _ => Err(AdminReply::Unknown(cmd.to_owned())),
    }
}

/// `from=TIME`, TIME a decimal number in [0, 2^32).
fn parse_from(arg: Option<&String>) -> Result<Option<u32>, AdminReply> {
    let Some(arg) = arg else { return Ok(None) };
    let bad = || AdminReply::error("bad time");
    let t = arg.strip_prefix("from=").ok_or_else(bad)?;
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    t.parse::<u32>().map(Some).map_err(|_| bad())
}

/// `host:port` (host without `:`) or `[v6addr]:port`; port 1–65535.
fn valid_address(a: &str) -> bool {
    let Some((host, port)) = a.rsplit_once(':') else {
        return false;
    };
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && matches!(port.parse::<u32>(), Ok(1..=65535));
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|h| !h.is_empty() && !h.contains(['[', ']']))
    } else {
        !host.is_empty() && !host.contains([':', '[', ']'])
    };
    port_ok && host_ok && !a.contains(is_c_space)
}
