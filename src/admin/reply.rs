//! The replies of admin commands: errors, echoes, `help`, `loglevel`.

use std::fmt;

/// The success line ending most commands.
pub const OK: &str = "ok\r\n";

/// What boost::lexical_cast's exception says (the reference echoes it after `huh? `).
pub const LEXICAL_CAST_ERROR: &str =
    "bad lexical cast: source type value could not be interpreted as target";

/// An error (or otherwise final) reply of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminReply {
    /// An empty line: `huh? ('help' for help)`.
    Huh,
    /// An unknown command word (possibly empty):
    /// `huh? ('help' for help) (received 'X')`.
    Unknown(String),
    /// `huh? <message>`.
    Error(String),
    /// `purge` with an unparsable argument: every argument followed by `, ` on one line,
    /// then `huh? <message>`.
    EchoThenError { args: Vec<String>, message: String },
}

impl AdminReply {
    /// `huh? <message>`.
    pub fn error(message: impl Into<String>) -> AdminReply {
        AdminReply::Error(message.into())
    }

    /// `huh? line too long` (**Port**, docs/interfaces.md §9 item 15).
    pub fn line_too_long() -> AdminReply {
        AdminReply::error("line too long")
    }

    /// `huh? Not started with --fake-time.` (`faketime` without `--fake-time`).
    pub fn not_fake_time() -> AdminReply {
        AdminReply::error("Not started with --fake-time.")
    }

    /// `huh? no statstore to <command> from.`: `delete.ctr` / `delete.pattern` without a
    /// store (**Port**, §9 item 26: the reference echoes the names and never answers).
    pub fn no_store(command: &str) -> AdminReply {
        AdminReply::Error(format!("no statstore to {command} from."))
    }

    /// The exact bytes to write.
    pub fn render(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for AdminReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminReply::Huh => f.write_str("huh? ('help' for help)\r\n"),
            AdminReply::Unknown(cmd) => {
                write!(f, "huh? ('help' for help) (received '{cmd}')\r\n")
            }
            AdminReply::Error(msg) => write!(f, "huh? {msg}\r\n"),
            AdminReply::EchoThenError { args, message } => {
                for a in args {
                    write!(f, "{a}, ")?;
                }
                write!(f, "\r\nhuh? {message}\r\n")
            }
        }
    }
}

/// One echoed line: `delete.ctr` / `delete.pattern` write each argument exactly as given
/// (`name\r\n`) before deleting it, then [`OK`] after the last.
pub fn echo_line(text: &str) -> String {
    format!("{text}\r\n")
}

/// The `loglevel` answer: `loglevel <file> <stderr>` and `ok`.
pub fn render_loglevel(file: u8, stderr: u8) -> String {
    format!("loglevel {file} {stderr}\r\n{OK}")
}

/// `help` (§5.2), exact bytes including the final `ok`. `delete.pattern` and the port's
/// `replication.*` commands are deliberately not listed.
pub fn help_text() -> String {
    const LINES: [&str; 13] = [
        "Commands:",
        "help - display this help",
        "stats - display stats",
        "flush - flush all counters",
        "faketime value - update faked time (for testing)",
        "purge [maxOld[,maxAge]] - purge old connection info records",
        "debug [option[,on|off]] - display or toggle debug options",
        "loglevel [level[,stderrLevel]] - display or change logging verbosity",
        "delete.ctr ctr.name ...- stop accepting data for a particular counter; close its files",
        "flush.setting name - flush (and later reload) settings file",
        "load.setting name - (re)load settings file",
        "quit - disconnect from stat server",
        "ok",
    ];
    let mut s = String::with_capacity(700);
    for l in LINES {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}
