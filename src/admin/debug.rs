//! The `debug` options (docs/interfaces.md §5.3, daemon/Debug.cpp).

use std::fmt::Write as _;

use super::command::DebugCommand;
use super::reply::OK;

/// Every debug option of the reference, in the order `debug` lists them (the reference's
/// registration list, newest first).
pub const DEBUG_OPTION_NAMES: [&str; 15] = [
    "allKeys",
    "statTcp",
    "statUdp",
    "rejectedCounters",
    "record",
    "settings",
    "replica_of",
    "promServer",
    "promExporter",
    "loopback",
    "http",
    "admin",
    "log_args",
    "audit",
    "segv",
];

/// A name that is no debug option (`--debug` then fails with this text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownDebugOption(pub String);

impl std::fmt::Display for UnknownDebugOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "No such debug option: {}", self.0)
    }
}

impl std::error::Error for UnknownDebugOption {}

/// The on/off state of every debug option (all off by default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugOptions {
    enabled: [bool; DEBUG_OPTION_NAMES.len()],
}

impl DebugOptions {
    pub fn new() -> DebugOptions {
        DebugOptions::default()
    }

    /// Exactly the named options on (the reference's `DebugOption::setOptions`).
    pub fn from_names<I, S>(names: I) -> Result<DebugOptions, UnknownDebugOption>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut o = DebugOptions::new();
        for n in names {
            let n = n.as_ref();
            if !o.set(n, true) {
                return Err(UnknownDebugOption(n.to_owned()));
            }
        }
        Ok(o)
    }

    fn index(name: &str) -> Option<usize> {
        DEBUG_OPTION_NAMES.iter().position(|&n| n == name)
    }

    /// `None` for an unknown name.
    pub fn get(&self, name: &str) -> Option<bool> {
        DebugOptions::index(name).map(|i| self.enabled[i])
    }

    /// Returns false (and changes nothing) for an unknown name.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        match DebugOptions::index(name) {
            Some(i) => {
                self.enabled[i] = on;
                true
            }
            None => false,
        }
    }

    /// `(name, enabled)` in listing order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, bool)> + '_ {
        DEBUG_OPTION_NAMES.iter().copied().zip(self.enabled)
    }

    /// Carries out `debug` and returns everything to write: `name: on|off` for every
    /// selected option (after applying `set`), then `ok`.
    pub fn run(&mut self, cmd: &DebugCommand) -> String {
        let mut out = String::new();
        for (&name, enabled) in DEBUG_OPTION_NAMES.iter().zip(self.enabled.iter_mut()) {
            if cmd.name.as_deref().is_some_and(|n| n != name) {
                continue;
            }
            if let Some(on) = cmd.set {
                *enabled = on;
            }
            let state = if *enabled { "on" } else { "off" };
            let _ = write!(out, "{name}: {state}\r\n");
        }
        out.push_str(OK);
        out
    }

    /// The plain `debug` answer (every option, then `ok`).
    pub fn render(&self) -> String {
        self.clone().run(&DebugCommand {
            name: None,
            set: None,
        })
    }
}
