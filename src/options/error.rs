//! The errors of option handling, one type per layer: [`OptionError`] for one option
//! value, [`ConfigError`] for a config file, [`HostPortError`] for a `host:port` value,
//! and [`OptionsError`], what start-up prints and exits with. Their texts are the
//! reference's (docs/interfaces.md §7): scripts and the tests compare them byte for byte.

use std::fmt;

use super::usage::usage;
use super::Options;

/// A start-up error: the text for stderr, the process exit code (1 or 2), and the usage
/// text when the error is a command-line error (§7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionsError {
    /// The complete error line, without a trailing newline.
    pub message: String,
    /// 1 = usage/config/debug-option/retention error; 2 = start-up check (§7.5).
    pub exit_code: i32,
    /// The usage text (ends with a newline) to print after the message, if any.
    pub usage: Option<String>,
}

impl OptionsError {
    pub(super) fn exit1(message: impl Into<String>) -> Self {
        OptionsError {
            message: message.into(),
            exit_code: 1,
            usage: None,
        }
    }

    pub(super) fn exit2(message: impl Into<String>) -> Self {
        OptionsError {
            message: message.into(),
            exit_code: 2,
            usage: None,
        }
    }

    /// A command-line error: the usage text shows the values set up to the error.
    pub(super) fn with_usage(message: impl Into<String>, opts: &Options) -> Self {
        OptionsError {
            message: message.into(),
            exit_code: 1,
            usage: Some(usage(opts)),
        }
    }

    /// Exactly what the daemon writes to stderr: the message, a newline, then the usage
    /// text when there is one.
    pub fn stderr_text(&self) -> String {
        let mut s = self.message.clone();
        s.push('\n');
        if let Some(u) = &self.usage {
            s.push_str(u);
        }
        s
    }
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OptionsError {}

/// A config file that cannot be used stops start-up with exit code 1, without usage.
impl From<ConfigError> for OptionsError {
    fn from(e: ConfigError) -> Self {
        OptionsError::exit1(e.to_string())
    }
}

/// Why one option value was refused. On the command line and in an istatd-format
/// config file only the option's name is reported (`near --x`); a TOML config file
/// names this reason too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptionError {
    /// Text for an `int` option that is not one.
    NotAnInt(String),
    /// Text for an unsigned option that is not a non-negative integer.
    NotANonNegativeInteger(String),
    /// Text for an optional integer option that is neither empty nor an integer.
    NotAnInteger(String),
    /// A TOML integer outside the range of an `int` option.
    DoesNotFitInAnInt(i64),
    /// A TOML integer outside the range of an unsigned or optional option.
    OutOfRange(i64),
    /// A TOML value that is not an integer, for an integer option.
    ExpectedInteger,
    /// A TOML value that is not a string, for a string option.
    ExpectedString,
    /// A TOML value that is not a boolean, for a boolean option.
    ExpectedBool,
    /// A TOML value for `--pin-cores` that is neither a string nor an array of integers.
    ExpectedCpuList,
    /// A negative CPU number in a TOML array for `--pin-cores`.
    BadCoreNumber(i64),
    /// A CPU list string that `istatd_shards::parse_cpu_list` refused, with its reason.
    BadCpuList(String),
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::NotAnInt(s) => write!(f, "not an int: {s:?}"),
            OptionError::NotANonNegativeInteger(s) => {
                write!(f, "not a non-negative integer: {s:?}")
            }
            OptionError::NotAnInteger(s) => write!(f, "not an integer: {s:?}"),
            OptionError::DoesNotFitInAnInt(i) => write!(f, "{i} does not fit in an int"),
            OptionError::OutOfRange(i) => write!(f, "{i} is out of range"),
            OptionError::ExpectedInteger => f.write_str("expected an integer"),
            OptionError::ExpectedString => f.write_str("expected a string"),
            OptionError::ExpectedBool => f.write_str("expected true or false"),
            OptionError::ExpectedCpuList => {
                f.write_str("expected a CPU list string or an array of integers")
            }
            OptionError::BadCoreNumber(i) => write!(f, "bad core number {i}"),
            OptionError::BadCpuList(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for OptionError {}

/// Why a config file was not applied. The lines before a bad line stay applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The path is missing or not a regular file; `shown` is the name in messages.
    NotAFile { shown: String },
    /// The file could not be read.
    NotReadable { shown: String },
    /// An istatd-format line without a value that is not a lone boolean option.
    MissingArgument { line: usize, text: String },
    /// An istatd-format line whose option or value was refused; `what` is the word the
    /// reference names (the key, or the value after a bare `--`).
    Near { line: usize, what: String },
    /// A TOML file that is not UTF-8 from this line on.
    NotUtf8 { line: usize },
    /// A TOML syntax error, with the parser's message folded onto one line.
    TomlSyntax { line: usize, message: String },
    /// A TOML key that is not an option name.
    UnknownKey { line: usize, key: String },
    /// A TOML value the option refused.
    BadValue {
        line: usize,
        key: String,
        cause: OptionError,
    },
}

impl ConfigError {
    /// Whether the file itself is missing or unreadable (as opposed to broken): only
    /// that is a notice, not an error, for the implicit `istatd.cfg`.
    pub fn is_missing_file(&self) -> bool {
        matches!(
            self,
            ConfigError::NotAFile { .. } | ConfigError::NotReadable { .. }
        )
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotAFile { shown } => write!(f, "Not a file: {shown}"),
            ConfigError::NotReadable { shown } => write!(f, "File not readable: {shown}"),
            ConfigError::MissingArgument { line, text } => {
                write!(f, "Error on line {line}: '{text}' should have an argument.")
            }
            ConfigError::Near { line, what } => write!(f, "Error on line {line}: near {what}"),
            ConfigError::NotUtf8 { line } => write!(f, "Error on line {line}: not UTF-8"),
            ConfigError::TomlSyntax { line, message } => {
                write!(f, "Error on line {line}: {message}")
            }
            ConfigError::UnknownKey { line, key } => {
                write!(f, "Error on line {line}: near {key} (unknown option)")
            }
            ConfigError::BadValue { line, key, cause } => {
                write!(f, "Error on line {line}: near {key} ({cause})")
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::BadValue { cause, .. } => Some(cause),
            _ => None,
        }
    }
}

/// Why a `host:port` or `[v6addr]:port` value (`--replica-of`, the replication
/// marker, `istatd verify --master`) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPortError {
    /// `[` without `]:` after it.
    ExpectedBracketed,
    /// The text between the brackets is not an IPv6 address.
    BadIpv6(String),
    /// No `:` at all.
    ExpectedHostPort,
    /// Nothing before the `:`.
    EmptyHost,
    /// The port is not a number in 1..=65535.
    BadPort(String),
}

impl fmt::Display for HostPortError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPortError::ExpectedBracketed => f.write_str("expected [v6addr]:port"),
            HostPortError::BadIpv6(addr) => write!(f, "bad IPv6 address {addr:?}"),
            HostPortError::ExpectedHostPort => f.write_str("expected host:port"),
            HostPortError::EmptyHost => f.write_str("empty host"),
            HostPortError::BadPort(port) => write!(f, "bad port {port:?}"),
        }
    }
}

impl std::error::Error for HostPortError {}
