//! Command line and config file (interfaces.md §7).
//!
//! [`parse`] builds an [`Options`] from the defaults, then the config file, then the
//! command line (§7.1, §7.2). The checks the daemon runs later during start-up (§7.5) are
//! separate methods so that the daemon can run each one at its step and exit with the
//! code the error carries: [`Options::debug_names`], [`Options::listen_ipv4`],
//! [`Options::retentions`], [`Options::check_ports`], [`Options::check_port_additions`],
//! [`Options::check_replication`], or all of them in start-up order with
//! [`Options::validate`]. [`Options::paths`] resolves the file options against the launch
//! directory and the working directory after the start-up chdir (§7.7).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use istatd_storage::retention::{parse_retentions, Retention};

/// Name of the config file read from the launch directory when `--config` is not given.
pub const IMPLICIT_CONFIG: &str = "istatd.cfg";

/// The reference's default `--retention`.
pub const DEFAULT_RETENTION: &str = "10s:10d,5m:1y9d,1h:6y12d,5m:7d:ret-7d:0.9";

/// `--thread-count` (and `--shards`) upper bound (reference `MAX_THREAD_COUNT`).
pub const MAX_THREAD_COUNT: usize = 384;

/// The `--debug` names the reference accepts, in the order its usage text lists them
/// (shared with the admin `debug` command).
pub const DEBUG_OPTIONS: &[&str] = &crate::admin::DEBUG_OPTION_NAMES;

/// Options whose paths are joined to the launch directory (§7.7).
pub const LAUNCH_RELATIVE_OPTIONS: &[&str] = &["store", "log-file", "pid-file", "config"];

/// Options whose paths are used as given, i.e. relative to the working directory after
/// the start-up chdir into the store's parent (§7.7). The default log file `istat.log`
/// (empty `--log-file`) is relative to it too.
pub const WORKDIR_RELATIVE_OPTIONS: &[&str] =
    &["settings", "files-dir", "blacklist-path", "tagnames-path"];

/// What follows `istatd built ` on the first usage line. The reference prints its
/// `__DATE__ __TIME__`; the port takes `ISTATD_BUILD_STAMP` from the build environment
/// when set, else the crate version and a fixed marker.
pub const BUILD_STAMP: &str = match option_env!("ISTATD_BUILD_STAMP") {
    Some(s) => s,
    None => concat!(env!("CARGO_PKG_VERSION"), " (rust port)"),
};

// ---------------------------------------------------------------------------------------
// Errors

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
    fn exit1(message: impl Into<String>) -> Self {
        OptionsError {
            message: message.into(),
            exit_code: 1,
            usage: None,
        }
    }

    fn exit2(message: impl Into<String>) -> Self {
        OptionsError {
            message: message.into(),
            exit_code: 2,
            usage: None,
        }
    }

    fn with_usage(message: impl Into<String>, opts: &Options) -> Self {
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

// ---------------------------------------------------------------------------------------
// Value conversion

/// How one option's value converts from text (command line, istatd config file), from
/// TOML, and back to text for the usage listing.
trait OptValue: Sized {
    const IS_BOOL: bool = false;
    fn from_text(s: &str) -> Result<Self, String>;
    fn from_toml(v: &toml::Value) -> Result<Self, String>;
    fn to_text(&self) -> String;
}

impl OptValue for i32 {
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse::<i32>().map_err(|_| format!("not an int: {s:?}"))
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Integer(i) => {
                i32::try_from(*i).map_err(|_| format!("{i} does not fit in an int"))
            }
            _ => Err("expected an integer".into()),
        }
    }
    fn to_text(&self) -> String {
        self.to_string()
    }
}

macro_rules! unsigned_opt_value {
    ($($t:ty),*) => {$(
        impl OptValue for $t {
            fn from_text(s: &str) -> Result<Self, String> {
                s.parse::<$t>()
                    .map_err(|_| format!("not a non-negative integer: {s:?}"))
            }
            fn from_toml(v: &toml::Value) -> Result<Self, String> {
                match v {
                    toml::Value::Integer(i) => <$t>::try_from(*i)
                        .map_err(|_| format!("{i} is out of range")),
                    _ => Err("expected an integer".into()),
                }
            }
            fn to_text(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
unsigned_opt_value!(u32, u64, usize);

impl OptValue for String {
    fn from_text(s: &str) -> Result<Self, String> {
        Ok(s.to_string())
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            _ => Err("expected a string".into()),
        }
    }
    fn to_text(&self) -> String {
        self.clone()
    }
}

impl OptValue for bool {
    const IS_BOOL: bool = true;
    /// A boolean takes no value: its presence sets true (a value in a config file line
    /// is ignored).
    fn from_text(_: &str) -> Result<Self, String> {
        Ok(true)
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Boolean(b) => Ok(*b),
            _ => Err("expected true or false".into()),
        }
    }
    /// `boost::lexical_cast<std::string>(bool)`: `0` / `1`.
    fn to_text(&self) -> String {
        if *self { "1" } else { "0" }.to_string()
    }
}

macro_rules! optional_opt_value {
    ($($t:ty),*) => {$(
        /// Unset shows as the empty string; the empty string unsets.
        impl OptValue for Option<$t> {
            fn from_text(s: &str) -> Result<Self, String> {
                if s.is_empty() {
                    return Ok(None);
                }
                s.parse::<$t>()
                    .map(Some)
                    .map_err(|_| format!("not an integer: {s:?}"))
            }
            fn from_toml(v: &toml::Value) -> Result<Self, String> {
                match v {
                    toml::Value::Integer(i) => <$t>::try_from(*i)
                        .map(Some)
                        .map_err(|_| format!("{i} is out of range")),
                    _ => Err("expected an integer".into()),
                }
            }
            fn to_text(&self) -> String {
                self.map(|v| v.to_string()).unwrap_or_default()
            }
        }
    )*};
}
optional_opt_value!(i64, usize);

/// `--pin-cores`: a CPU list.
impl OptValue for Vec<usize> {
    fn from_text(s: &str) -> Result<Self, String> {
        parse_core_list(s)
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => parse_core_list(s),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::Integer(i) => {
                        usize::try_from(*i).map_err(|_| format!("bad core number {i}"))
                    }
                    _ => Err("expected a CPU list string or an array of integers".into()),
                })
                .collect(),
            _ => Err("expected a CPU list string or an array of integers".into()),
        }
    }
    fn to_text(&self) -> String {
        format_core_list(self)
    }
}

// ---------------------------------------------------------------------------------------
// The option table

struct OptionSpec {
    name: &'static str,
    help: &'static str,
    is_bool: bool,
}

macro_rules! define_options {
    ($(
        $(#[$meta:meta])*
        $field:ident : $ty:ty = $default:expr => $name:literal, $help:literal;
    )*) => {
        /// Every daemon option (interfaces.md §7.3, the port additions, replication.md
        /// §2.18). Field names are the option names in snake case; the reference's
        /// spellings `--agentCount` and `--max-matrics-count` are kept as option names.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Options {
            $( $(#[$meta])* pub $field: $ty, )*
        }

        impl Default for Options {
            /// The defaults of §7.3 (some read from the running system: online CPUs,
            /// the soft `RLIMIT_NOFILE`, the real uid).
            fn default() -> Self {
                Options { $( $field: $default, )* }
            }
        }

        static SPECS: &[OptionSpec] = &[
            $( OptionSpec {
                name: $name,
                help: $help,
                is_bool: <$ty as OptValue>::IS_BOOL,
            }, )*
        ];

        impl Options {
            /// Set from text; `None` when the name is not an option.
            fn set_text(&mut self, name: &str, value: &str) -> Option<Result<(), String>> {
                match name {
                    $( $name => Some(
                        <$ty as OptValue>::from_text(value).map(|v| self.$field = v)
                    ), )*
                    _ => None,
                }
            }

            /// Set from a TOML value; `None` when the name is not an option.
            fn set_toml(
                &mut self,
                name: &str,
                value: &toml::Value,
            ) -> Option<Result<(), String>> {
                match name {
                    $( $name => Some(
                        <$ty as OptValue>::from_toml(value).map(|v| self.$field = v)
                    ), )*
                    _ => None,
                }
            }

            /// The current value as the usage text shows it; `None` for an unknown name.
            pub fn value_text(&self, name: &str) -> Option<String> {
                match name {
                    $( $name => Some(OptValue::to_text(&self.$field)), )*
                    _ => None,
                }
            }
        }
    };
}

define_options! {
    /// `--admin-port` (0): admin telnet port; 0 disables.
    admin_port: i32 = 0
        => "admin-port", "When specified, port that exposes an admin telnet interface";
    /// `--agent` (""): `host:port` to forward to; empty: no forwarding.
    agent: String = String::new()
        => "agent", "Agent to forward to, rather than save data locally.";
    /// `--agentCount` (1): forward connections; see [`Options::agent_connections`].
    agent_count: i32 = 1
        => "agentCount", "How many agent connections to open";
    /// `--agent-interval` (10): seconds between forward flushes; see
    /// [`Options::agent_flush_interval`].
    agent_interval: i32 = 10
        => "agent-interval", "Interval for batching values when forwarding.";
    /// `--allocation-strategy` (1): 1 = write zeros, 2 = sparse.
    allocation_strategy: i32 = 1
        => "allocation-strategy",
           "The allocation strategy used when making files. 1 = write all as 0, 2 = sparse file";
    /// `--blacklist-path` (""): blacklist file, relative to the working directory after
    /// the chdir; empty disables.
    blacklist_path: String = String::new()
        => "blacklist-path", "Where to look for blacklisted hosts";
    /// `--blacklist-period` (60): seconds (the reference stores it as 16 bits).
    blacklist_period: i32 = 60
        => "blacklist-period", "How often to check the file";
    /// `--config` ("istatd.cfg"): the config file. While parsing, an explicit
    /// `--config X` is first set to X joined to the launch directory; the command line
    /// then sets the raw X.
    config: String = IMPLICIT_CONFIG.to_string()
        => "config", "Config file to read, if present.";
    /// `--daemonize` (false).
    daemonize: bool = false
        => "daemonize", "Unattach stdin; detach to the background.";
    /// `--debug` (""): comma-separated debug names; see [`Options::debug_names`].
    debug: String = String::new()
        => "debug",
           "When specified, turns on specific debugging options (as comma separated list).";
    /// `--disallow-compressed-responses` (false).
    disallow_compressed_responses: bool = false
        => "disallow-compressed-responses",
           "Should istatd-server disallow compression of http responses by accept-encoding";
    /// `--dont-recursively-create-counters` (false).
    dont_recursively_create_counters: bool = false
        => "dont-recursively-create-counters",
           "Should we disable recursing up the counter chain (split on .) and make parent counters";
    /// `--dont-translate-metric-names` (false).
    dont_translate_metric_names: bool = false
        => "dont-translate-metric-names",
           "Should we map exposed istatd metrics names to prometheus metric names";
    /// `--fake-time` (0): non-zero freezes the clock at this Unix time.
    fake_time: i32 = 0
        => "fake-time", "Fake current time to UNIX epoch (for testing).";
    /// `--files-dir` ("files"): static web files, relative to the working directory after
    /// the chdir.
    files_dir: String = "files".to_string()
        => "files-dir", "Where to serve built-in web files from.";
    /// `--flush` (300): seconds for one full flush round.
    flush: i32 = 300
        => "flush", "How often (in seconds) to flush stats files to disk.";
    /// `--http-port` (8000): 0 disables.
    http_port: i32 = 8000
        => "http-port", "Port to listen to for HTTP status service. 0 to disable.";
    /// `--listen-address` (""): IPv4 address for all listeners; see
    /// [`Options::listen_ipv4`].
    listen_address: String = String::new()
        => "listen-address",
           "IP address on which to start listeners. empty string to accept on all interfaces.";
    /// `--listen-overflow-backlog` (SOMAXCONN).
    listen_overflow_backlog: i32 = libc::SOMAXCONN
        => "listen-overflow-backlog",
           "Listen overflow backlog, defaults to boost::asio::socket_base::max_connections";
    /// `--local-stats` (""): host-stat suffix; empty disables.
    local_stats: String = String::new()
        => "local-stats", "Gather local stats, counter names suffixed by the given string.";
    /// `--log-file` (""): joined to the launch directory; empty: `istat.log` in the
    /// working directory after the chdir.
    log_file: String = String::new()
        => "log-file",
           "When specified, errors and debugging information are logged to the specified file.  Otherwise, this information is output on stdout/stderr.";
    /// `--log-level` (2): 0 error .. 4 spam.
    log_level: i32 = 2
        => "log-level", "How chatty to be on stdout/stderr. Higher is more. (0-4)";
    /// `--max-matrics-count` (-1; spelling sic): Prometheus entry cap, <= 0 unlimited.
    max_matrics_count: i32 = -1
        => "max-matrics-count", "Maximum number of metrics can be exposed by agent";
    /// `--metrics-cleanup-period` (30): seconds.
    metrics_cleanup_period: i32 = 30
        => "metrics-cleanup-period", "How often in seconds to cleanup metrics exposed by agent";
    /// `--min-space` (-1 = 100 MiB): bytes of free disk the store wants.
    min_space: i32 = -1
        => "min-space",
           "When specified, minimum free space required (in bytes). When below this amount, error messages will be generated periodically.";
    /// `--num-files` (the current soft `RLIMIT_NOFILE`): raise the file limit to this.
    num_files: i32 = current_files_limit()
        => "num-files", "Number of files to allocate (rlimit).";
    /// `--pid-file` (""): joined to the launch directory.
    pid_file: String = String::new()
        => "pid-file", "Write the PID of the daemon to the given file.";
    /// `--prometheus-port` (0): 0 disables.
    prometheus_port: i32 = 0
        => "prometheus-port", "Port to expose metrics by agent. 0 to disable.";
    /// `--prune-empty-directories-interval` (120): seconds.
    prune_empty_directories_interval: i32 = 120
        => "prune-empty-directories-interval",
           "How often (in seconds) to go through the directory tree and prune empty trees.";
    /// `--replica-of` (""): `host:port` or `[v6addr]:port` of a replication master;
    /// see [`Options::check_replication`].
    replica_of: String = String::new()
        => "replica-of", "Source to pull-replicate from. Incompatible with stat-port.";
    /// `--replica-port` (0): replication listener; 0 disables.
    replica_port: i32 = 0
        => "replica-port", "Port that others can pull-replicate from. Requires store.";
    /// `--retention` ([`DEFAULT_RETENTION`]); see [`Options::retentions`].
    retention: String = DEFAULT_RETENTION.to_string()
        => "retention", "When specified, adjusts number and size of retention times.";
    /// `--rollup` (0): accepted and ignored.
    rollup: i32 = 0
        => "rollup", "How many levels to roll up counter values.";
    /// `--settings` ("/tmp"): settings directory, relative to the working directory after
    /// the chdir.
    settings: String = "/tmp".to_string()
        => "settings", "Where to store settings (mostly used for HTTP app).";
    /// `--stat-port` (8111): TCP and UDP stat port; 0 disables.
    stat_port: i32 = 8111
        => "stat-port", "Port to listen to for incoming statistics. 0 to disable.";
    /// `--store` (""): store directory, joined to the launch directory; empty: no store.
    store: String = String::new()
        => "store", "Where to store statistics files.";
    /// `--tagnames-path` (""): relative to the working directory after the chdir.
    tagnames_path: String = String::new()
        => "tagnames-path", "Where to look for allowed tag names of exposed metrics";
    /// `--test` (false): the port prints a notice and exits 0.
    test: bool = false
        => "test",
           "When specified, run unit tests built into executable; don't start program.";
    /// `--thread-count` (online CPUs); see [`Options::worker_threads`].
    thread_count: i32 = online_cpus()
        => "thread-count", "Number of threads to create.";
    /// `--udp-buffer-size` (1024): UDP `SO_RCVBUF` in KiB.
    udp_buffer_size: i32 = 1024
        => "udp-buffer-size", "Buffer size for UDP sockets, in Kilobytes";
    /// `--user` (the real uid, as a number): user name or numeric uid.
    user: String = current_uid()
        => "user", "User-id to set after adjusting rlimit.";

    // ---- port additions ----

    /// `--shards N` (unset: [`Options::worker_threads`]): number of shards/executors;
    /// see [`Options::shard_count`]. Must be 1..=384.
    shards: Option<usize> = None
        => "shards", "Number of shards (executors). Default: --thread-count.";
    /// `--pin-cores LIST` (empty = no pinning): CPU list such as `0,1`, `0-3`, `0-1,4`.
    pin_cores: Vec<usize> = Vec::new()
        => "pin-cores", "CPUs to pin shards to, e.g. 0-3 or 0-1,4. Empty: no pinning.";
    /// `--page-cache-mb N` (64): stat file page cache, MiB.
    page_cache_mb: usize = 64
        => "page-cache-mb", "Size of the stat file page cache, in MiB.";
    /// `--max-open-files N` (16000): stat files kept open at once.
    max_open_files: usize = 16000
        => "max-open-files", "Maximum number of stat files kept open at once.";

    // ---- replication (replication.md §2.18) ----

    /// `--replica-chunk-buckets` (256): 1..=2048.
    replica_chunk_buckets: u32 = 256
        => "replica-chunk-buckets",
           "Buckets per replication chunk (1-2048): the slave's request size and the master's cap.";
    /// `--replica-read-rate` (16777216): bytes/s of replication disk reads; 0 unlimited.
    replica_read_rate: u64 = 16_777_216
        => "replica-read-rate",
           "Master: bytes per second of replication disk reads. 0 = unlimited.";
    /// `--replica-max-slaves` (4).
    replica_max_slaves: u32 = 4
        => "replica-max-slaves", "Master: maximum number of slave connections.";
    /// `--replica-subscribe-rate` (2000): first requests per second.
    replica_subscribe_rate: u32 = 2000
        => "replica-subscribe-rate",
           "Slave: first requests per second, split across shards.";
    /// `--replica-create-rate` (200): new files per second.
    replica_create_rate: u32 = 200
        => "replica-create-rate", "Slave: new files per second, split across shards.";
    /// `--replica-resume-overlap` (600): seconds.
    replica_resume_overlap: u32 = 600
        => "replica-resume-overlap",
           "Seconds re-requested per file on subscribe (slave) / late-mark margin (master).";
    /// `--replica-late-window` (86400): seconds.
    replica_late_window: u32 = 86_400
        => "replica-late-window",
           "Master: seconds a late mark lives after its last late write.";
    /// `--replica-from` (unset): resume time in Unix seconds.
    replica_from: Option<i64> = None
        => "replica-from", "Slave: resume time (Unix seconds). Empty: none.";
    /// `--replica-keepalive` (10): seconds.
    replica_keepalive: u32 = 10
        => "replica-keepalive", "Replication keepalive, in seconds.";
    /// `--replica-timeout` (60): seconds; must be > 2 x keepalive.
    replica_timeout: u32 = 60
        => "replica-timeout",
           "Replication idle timeout, in seconds; must be more than twice the keepalive.";
    /// `--replica-backoff-max` (180): the slave's longest reconnect delay, seconds (port
    /// addition; replication.md §2.12 fixes 180).
    replica_backoff_max: u32 = 180
        => "replica-backoff-max",
           "Slave: longest reconnect delay in seconds (1-180).";
    /// `--replica-scrub-rate` (0): buckets per second the anti-entropy scrub compares;
    /// 0 leaves the scrub off and the link at protocol version 2 (port addition).
    replica_scrub_rate: u64 = 0
        => "replica-scrub-rate",
           "Anti-entropy scrub: buckets per second compared (set on master and slave). 0 = off.";
    /// `--replica-scrub-interval` (86400): seconds from the end of one automatic scrub
    /// pass to the start of the next; 0 = passes only on `replication.scrub start`.
    replica_scrub_interval: u32 = 86_400
        => "replica-scrub-interval",
           "Slave: seconds between automatic scrub passes. 0 = only by the admin command.";
}

fn spec(name: &str) -> Option<&'static OptionSpec> {
    SPECS.iter().find(|s| s.name == name)
}

// ---------------------------------------------------------------------------------------
// System defaults

/// `sysconf(_SC_NPROCESSORS_ONLN)`.
fn online_cpus() -> i32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        i32::try_from(n).unwrap_or(i32::MAX)
    } else {
        std::thread::available_parallelism()
            .map(|n| i32::try_from(n.get()).unwrap_or(i32::MAX))
            .unwrap_or(1)
    }
}

/// The soft `RLIMIT_NOFILE` (unlimited or unreadable: `i32::MAX`).
fn current_files_limit() -> i32 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: rl is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return i32::MAX;
    }
    i32::try_from(rl.rlim_cur).unwrap_or(i32::MAX)
}

fn current_uid() -> String {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }.to_string()
}

// ---------------------------------------------------------------------------------------
// Parsing

/// Parse the daemon's arguments (`args` without the program name) with `cwd` the launch
/// directory: defaults, then the config file, then the command line (§7.1, §7.2).
/// Notices (`Not a file: istatd.cfg`, `File not readable: istatd.cfg`) are written to
/// stderr; [`parse_with_notices`] returns them instead.
pub fn parse(args: &[String], cwd: &Path) -> Result<Options, OptionsError> {
    let (opts, notices) = parse_with_notices(args, cwd)?;
    for n in notices {
        eprintln!("{n}");
    }
    Ok(opts)
}

/// [`parse`], returning the non-fatal notices for the caller to print.
pub fn parse_with_notices(
    args: &[String],
    cwd: &Path,
) -> Result<(Options, Vec<String>), OptionsError> {
    let mut opts = Options::default();
    let mut notices = Vec::new();

    // The reference scans every argument for a literal `--config` and takes the next
    // argument, wherever it is; the last occurrence wins (daemon/main.cpp main()).
    let mut explicit: Option<&str> = None;
    for (i, a) in args.iter().enumerate() {
        if a == "--config" {
            if let Some(v) = args.get(i + 1) {
                explicit = Some(v);
            }
        } else if let Some(v) = a.strip_prefix("--config=") {
            explicit = Some(v);
        }
    }
    match explicit {
        Some(v) => {
            let path = combine_paths(cwd, v);
            let shown = path.to_string_lossy().into_owned();
            opts.config = shown.clone();
            match load_config_file(&mut opts, &path, &shown) {
                ConfigLoad::Applied => {}
                // An explicit file that is missing or unreadable: exit 1 (reference).
                ConfigLoad::Missing(msg) | ConfigLoad::Broken(msg) => {
                    return Err(OptionsError::exit1(msg))
                }
            }
        }
        None => {
            let path = cwd.join(IMPLICIT_CONFIG);
            match load_config_file(&mut opts, &path, IMPLICIT_CONFIG) {
                ConfigLoad::Applied => {}
                // Missing or unreadable implicit file: print and go on (reference).
                ConfigLoad::Missing(msg) => notices.push(msg),
                // Port (§9 item 24): a broken implicit file is fatal.
                ConfigLoad::Broken(msg) => return Err(OptionsError::exit1(msg)),
            }
        }
    }

    apply_command_line(&mut opts, args)?;
    Ok((opts, notices))
}

enum ConfigLoad {
    Applied,
    /// `Not a file: X` or `File not readable: X`.
    Missing(String),
    /// A line's error; the lines before it stay applied.
    Broken(String),
}

/// Load one config file; `shown` is the name used in messages. A name ending in `.toml`
/// is read as TOML.
fn load_config_file(opts: &mut Options, path: &Path, shown: &str) -> ConfigLoad {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        _ => return ConfigLoad::Missing(format!("Not a file: {shown}")),
    }
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(_) => return ConfigLoad::Missing(format!("File not readable: {shown}")),
    };
    let result = if shown.ends_with(".toml") {
        apply_toml(opts, &data)
    } else {
        apply_config_data(opts, &data)
    };
    match result {
        Ok(()) => ConfigLoad::Applied,
        Err(msg) => ConfigLoad::Broken(msg),
    }
}

/// C `isspace` in the C locale.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Apply an istatd-format config file (reference `ArgumentBase::parseData`). Returns the
/// error line on failure; lines before it stay applied.
fn apply_config_data(opts: &mut Options, data: &[u8]) -> Result<(), String> {
    let len = data.len();
    let mut pos = 0;
    let mut line_no = 1usize;
    while pos < len {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(len, |p| pos + p);
        let mut start = pos;
        while start < end && c_isspace(data[start]) {
            start += 1;
        }
        let mut tend = end;
        while tend > start && c_isspace(data[tend - 1]) {
            tend -= 1;
        }
        let line = &data[start..tend];
        pos = end + 1;
        if !line.is_empty() && line[0] != b'#' {
            apply_config_line(opts, line, line_no)?;
        }
        line_no += 1;
    }
    Ok(())
}

fn apply_config_line(opts: &mut Options, line: &[u8], line_no: usize) -> Result<(), String> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (key, value) = match line.iter().position(|&b| b == b' ') {
        None => {
            // Only a boolean may stand alone. (The reference looks up the line minus
            // its first two characters, whatever they are.)
            let lone_bool = line.len() > 2
                && std::str::from_utf8(&line[2..])
                    .ok()
                    .and_then(spec)
                    .is_some_and(|s| s.is_bool);
            if !lone_bool {
                return Err(format!(
                    "Error on line {line_no}: '{}' should have an argument.",
                    text(line)
                ));
            }
            (text(line), String::new())
        }
        Some(split) => {
            let mut vstart = split + 1;
            while vstart < line.len() && c_isspace(line[vstart]) {
                vstart += 1;
            }
            let mut value = &line[vstart..];
            if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
                value = &value[1..value.len() - 1];
            }
            (text(&line[..split]), text(value))
        }
    };
    let near = |what: &str| format!("Error on line {line_no}: near {what}");
    // Reference parseArg on { key, value }: not `--x` stops at the key; a bare `--`
    // consumes itself and stops at the value.
    let Some(name) = key.strip_prefix("--") else {
        return Err(near(&key));
    };
    if name.is_empty() {
        return Err(near(&value));
    }
    match opts.set_text(name, &value) {
        Some(Ok(())) => Ok(()),
        Some(Err(_)) | None => Err(near(&key)),
    }
}

/// Apply a TOML config file: keys are option names without `--`.
fn apply_toml(opts: &mut Options, data: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(data).map_err(|e| {
        format!(
            "Error on line {}: not UTF-8",
            line_of(data, e.valid_up_to())
        )
    })?;
    let table: std::collections::BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(data, s.start));
            let msg: Vec<&str> = e
                .message()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            format!("Error on line {line}: {}", msg.join("; "))
        })?;
    let mut entries: Vec<(String, toml::Spanned<toml::Value>)> = table.into_iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    for (key, value) in entries {
        let line = line_of(data, value.span().start);
        match opts.set_toml(&key, value.get_ref()) {
            Some(Ok(())) => {}
            Some(Err(why)) => return Err(format!("Error on line {line}: near {key} ({why})")),
            None => return Err(format!("Error on line {line}: near {key} (unknown option)")),
        }
    }
    Ok(())
}

fn line_of(data: &[u8], offset: usize) -> usize {
    1 + data[..offset.min(data.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Apply the command line (reference `ArgumentBase::parseArg` loop, plus `--name=value`
/// and a usage error for a missing value).
fn apply_command_line(opts: &mut Options, args: &[String]) -> Result<(), OptionsError> {
    let near = |opts: &Options, arg: &str| {
        OptionsError::with_usage(format!("Command line error near {arg}"), opts)
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let Some(body) = arg.strip_prefix("--") else {
            return Err(near(opts, arg));
        };
        if body.is_empty() {
            // `--` ends the options; anything after it is a leftover.
            return match args.get(i + 1) {
                Some(next) => Err(near(opts, next)),
                None => Ok(()),
            };
        }
        let (name, inline) = match spec(body) {
            Some(_) => (body, None),
            None => match body.split_once('=') {
                Some((n, v)) if spec(n).is_some() => (n, Some(v)),
                _ => return Err(near(opts, arg)),
            },
        };
        let is_bool = spec(name).is_some_and(|s| s.is_bool);
        let (value, used) = if is_bool {
            if inline.is_some() {
                return Err(near(opts, arg));
            }
            ("", 1)
        } else if let Some(v) = inline {
            (v, 1)
        } else if let Some(v) = args.get(i + 1) {
            (v.as_str(), 2)
        } else {
            return Err(OptionsError::with_usage(
                format!("Argument requires a value: --{name}"),
                opts,
            ));
        };
        match opts.set_text(name, value) {
            Some(Ok(())) => {}
            // The reference reports the option, not the value.
            _ => return Err(near(opts, arg)),
        }
        i += used;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Usage

/// The usage text (§7.1), ending with a newline.
pub fn usage(opts: &Options) -> String {
    fn pad(out: &mut String, s: &str, width: usize) {
        out.push_str(s);
        for _ in s.len()..width {
            out.push(' ');
        }
    }
    let mut out = format!("istatd built {BUILD_STAMP}\n");
    let mut specs: Vec<&OptionSpec> = SPECS.iter().collect();
    specs.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    for s in specs {
        out.push_str("--");
        pad(&mut out, s.name, 12);
        out.push_str(" (");
        pad(&mut out, &opts.value_text(s.name).unwrap_or_default(), 12);
        out.push_str(")   ");
        out.push_str(s.help);
        out.push('\n');
    }
    out.push_str("debug options:\n");
    out.push_str(&DEBUG_OPTIONS.join(", "));
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------------------
// Derived values and start-up checks

/// The results of [`Options::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    /// Enabled debug names, sorted, without duplicates.
    pub debug: Vec<String>,
    /// `--listen-address`, `None` = all interfaces.
    pub listen_address: Option<Ipv4Addr>,
    /// The parsed `--retention`.
    pub retentions: Vec<Retention>,
    /// `--replica-of` split into host and port, `None` when empty.
    pub replica_of: Option<(String, u16)>,
}

impl Options {
    /// Every option name with its current value as the usage text shows it, in
    /// byte-sorted name order (for `--debug log_args`).
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut v: Vec<(&'static str, String)> = SPECS
            .iter()
            .map(|s| (s.name, self.value_text(s.name).unwrap_or_default()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// `--thread-count` clamped to 1..=384 (values outside are logged by the reference).
    pub fn worker_threads(&self) -> usize {
        usize::try_from(self.thread_count)
            .unwrap_or(1)
            .clamp(1, MAX_THREAD_COUNT)
    }

    /// `--shards` if given, else [`Options::worker_threads`].
    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(|| self.worker_threads())
    }

    /// `--agentCount`, at least 1.
    pub fn agent_connections(&self) -> usize {
        usize::try_from(self.agent_count.max(1)).unwrap_or(1)
    }

    /// `--agent-interval` seconds, at least 1.
    pub fn agent_flush_interval(&self) -> u64 {
        u64::try_from(self.agent_interval.max(1)).unwrap_or(1)
    }

    /// Step 3 of §7.5: the `--debug` names (comma-separated, each trimmed, empty ones
    /// skipped), sorted and deduplicated. Unknown: `No such debug option: X`, exit 1.
    pub fn debug_names(&self) -> Result<Vec<String>, OptionsError> {
        let mut out: Vec<String> = Vec::new();
        for part in self.debug.split(',') {
            let name = part.trim_matches(|c: char| c.is_ascii() && c_isspace(c as u8));
            if name.is_empty() {
                continue;
            }
            if !DEBUG_OPTIONS.contains(&name) {
                return Err(OptionsError::exit1(format!("No such debug option: {name}")));
            }
            out.push(name.to_string());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Step 4 of §7.5: `--listen-address` as an IPv4 address (`None` when empty).
    /// Unparsable: `Error in main() parsing listen-address [Invalid argument]`, exit 2.
    pub fn listen_ipv4(&self) -> Result<Option<Ipv4Addr>, OptionsError> {
        if self.listen_address.is_empty() {
            return Ok(None);
        }
        self.listen_address
            .parse::<Ipv4Addr>()
            .map(Some)
            .map_err(|_| {
                OptionsError::exit2("Error in main() parsing listen-address [Invalid argument]")
            })
    }

    /// Step 8 of §7.5: the parsed `--retention`. An error is the message, exit 1 (port;
    /// the reference aborts).
    pub fn retentions(&self) -> Result<Vec<Retention>, OptionsError> {
        parse_retentions(&self.retention).map_err(|e| OptionsError::exit1(e.to_string()))
    }

    /// Step 9 of §7.5: every port in 0..=65535, checked in the reference's listener
    /// creation order; otherwise `Error in main() [<what>]`, exit 2.
    pub fn check_ports(&self) -> Result<(), OptionsError> {
        let bad = |what: String| Err(OptionsError::exit2(format!("Error in main() [{what}]")));
        let out = |p: i32| !(0..=65535).contains(&p);
        if out(self.stat_port) {
            return bad(format!("Bad stat port specified: {}", self.stat_port));
        }
        if out(self.replica_port) {
            return bad(format!(
                "Bad port number: --replica-port {}",
                self.replica_port
            ));
        }
        if out(self.http_port) {
            return bad(format!("Bad port number: --http-port {}", self.http_port));
        }
        if out(self.admin_port) {
            return bad(format!(
                "Bad port number in AdminServer: {}",
                self.admin_port
            ));
        }
        if out(self.prometheus_port) {
            return bad(format!(
                "Bad port number: --prometheus-port {}",
                self.prometheus_port
            ));
        }
        Ok(())
    }

    /// The port additions: `--shards` in 1..=384 (exit 1). `--pin-cores` syntax is
    /// checked while parsing (`Command line error near --pin-cores`).
    pub fn check_port_additions(&self) -> Result<(), OptionsError> {
        if let Some(n) = self.shards {
            if !(1..=MAX_THREAD_COUNT).contains(&n) {
                return Err(OptionsError::exit1(format!(
                    "--shards must be between 1 and {MAX_THREAD_COUNT}, not {n}"
                )));
            }
        }
        Ok(())
    }

    /// The replication checks of replication.md §2.18 (exit 2, `Error in main() [...]`):
    /// `--replica-of` / `--replica-port` need `--store`; `--replica-of` not with
    /// `--agent`; `--replica-of` is `host:port` or `[v6addr]:port` with a port in
    /// 1..=65535; `--replica-chunk-buckets` in 1..=2048; `--replica-keepalive` >= 1 and
    /// `--replica-timeout` > 2 x keepalive. Returns the split `--replica-of`.
    pub fn check_replication(&self) -> Result<Option<(String, u16)>, OptionsError> {
        let bad = |what: String| Err(OptionsError::exit2(format!("Error in main() [{what}]")));
        let target = if self.replica_of.is_empty() {
            None
        } else {
            match parse_host_port(&self.replica_of) {
                Ok(t) => Some(t),
                Err(why) => return bad(format!("--replica-of {}: {why}", self.replica_of)),
            }
        };
        if target.is_some() && self.store.is_empty() {
            return bad("--replica-of requires --store".into());
        }
        if self.replica_port != 0 && self.store.is_empty() {
            return bad("--replica-port requires --store".into());
        }
        if target.is_some() && !self.agent.is_empty() {
            return bad("--replica-of cannot be combined with --agent".into());
        }
        if !(1..=2048).contains(&self.replica_chunk_buckets) {
            return bad(format!(
                "--replica-chunk-buckets must be between 1 and 2048, not {}",
                self.replica_chunk_buckets
            ));
        }
        if self.replica_keepalive == 0 {
            return bad("--replica-keepalive must be at least 1".into());
        }
        if u64::from(self.replica_timeout) <= 2 * u64::from(self.replica_keepalive) {
            return bad(format!(
                "--replica-timeout ({}) must be more than twice --replica-keepalive ({})",
                self.replica_timeout, self.replica_keepalive
            ));
        }
        Ok(target)
    }

    /// Every check above in start-up order (§7.5): debug names (1), port additions (1),
    /// listen address (2), retention (1), ports (2), replication (2). The daemon that
    /// chdirs / writes the pid file between steps 4 and 8 may call them one by one.
    pub fn validate(&self) -> Result<Validated, OptionsError> {
        let debug = self.debug_names()?;
        self.check_port_additions()?;
        let listen_address = self.listen_ipv4()?;
        let retentions = self.retentions()?;
        self.check_ports()?;
        let replica_of = self.check_replication()?;
        Ok(Validated {
            debug,
            listen_address,
            retentions,
            replica_of,
        })
    }

    /// Resolve the file options (§7.7) against `launch_dir`, the start-up working
    /// directory (pass an absolute path to get absolute results).
    pub fn paths(&self, launch_dir: &Path) -> Paths {
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let store = nonempty(&self.store).map(|s| combine_paths(launch_dir, &s));
        // Reference: boost::filesystem::path(store).parent_path(); an empty parent means
        // no chdir. A store ending in '/' is its own "parent".
        let chdir_to = store.as_ref().and_then(|s| {
            let parent = boost_parent_path(s.as_os_str().as_bytes());
            (!parent.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(parent)))
        });
        let work_dir = chdir_to.clone().unwrap_or_else(|| launch_dir.to_path_buf());
        Paths {
            launch_dir: launch_dir.to_path_buf(),
            config: combine_paths(launch_dir, &self.config),
            log_file: match nonempty(&self.log_file) {
                Some(l) => combine_paths(launch_dir, &l),
                None => work_dir.join("istat.log"),
            },
            pid_file: nonempty(&self.pid_file).map(|p| combine_paths(launch_dir, &p)),
            settings: combine_paths(&work_dir, &self.settings),
            files_dir: combine_paths(&work_dir, &self.files_dir),
            blacklist_path: nonempty(&self.blacklist_path).map(|p| combine_paths(&work_dir, &p)),
            tagnames_path: nonempty(&self.tagnames_path).map(|p| combine_paths(&work_dir, &p)),
            store,
            chdir_to,
            work_dir,
        }
    }
}

/// File options resolved per §7.7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The start-up working directory.
    pub launch_dir: PathBuf,
    /// Where the daemon chdirs at step 5 (creating that one directory level first):
    /// the parent of the resolved store; `None` without `--store`. A store path ending
    /// in `/` yields the store itself (boost `parent_path` of `a/b/` is `a/b`).
    pub chdir_to: Option<PathBuf>,
    /// `chdir_to`, or the launch directory when there is no store.
    pub work_dir: PathBuf,
    /// `--store` joined to the launch directory.
    pub store: Option<PathBuf>,
    /// `--config` joined to the launch directory.
    pub config: PathBuf,
    /// `--log-file` joined to the launch directory; empty: `work_dir/istat.log`.
    pub log_file: PathBuf,
    /// `--pid-file` joined to the launch directory.
    pub pid_file: Option<PathBuf>,
    /// `--settings` joined to `work_dir`.
    pub settings: PathBuf,
    /// `--files-dir` joined to `work_dir`.
    pub files_dir: PathBuf,
    /// `--blacklist-path` joined to `work_dir`.
    pub blacklist_path: Option<PathBuf>,
    /// `--tagnames-path` joined to `work_dir`.
    pub tagnames_path: Option<PathBuf>,
}

/// istat `combine_paths`: `right` if absolute, else `left` + `/` (unless `left` ends in
/// `/`) + `right`; no normalisation.
fn combine_paths(left: &Path, right: &str) -> PathBuf {
    let l = left.as_os_str().as_bytes();
    if right.starts_with('/') || l.is_empty() {
        return PathBuf::from(right);
    }
    let mut out = l.to_vec();
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(right.as_bytes());
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// boost::filesystem (v3) `path::parent_path()` for POSIX paths.
fn boost_parent_path(p: &[u8]) -> Vec<u8> {
    let n = p.len();
    if n == 0 {
        return Vec::new();
    }
    let filename_pos = if n == 2 && p[0] == b'/' && p[1] == b'/' {
        0
    } else if p[n - 1] == b'/' {
        n - 1
    } else {
        match p.iter().rposition(|&b| b == b'/') {
            None => 0,
            Some(1) if p[0] == b'/' => 0,
            Some(pos) => pos + 1,
        }
    };
    let root_dir = (p[0] == b'/').then_some(0usize);
    let filename_was_separator = p[filename_pos] == b'/';
    let mut end = filename_pos;
    while end > 0 && Some(end - 1) != root_dir && p[end - 1] == b'/' {
        end -= 1;
    }
    if end == 1 && root_dir == Some(0) && filename_was_separator {
        return Vec::new();
    }
    p[..end].to_vec()
}

// ---------------------------------------------------------------------------------------
// Small parsers

/// Parse a CPU list: comma-separated elements, each `N` or `A-B` (A <= B, span at most
/// 4096); spaces around elements and empty elements are ignored; the empty list means
/// no pinning. Same acceptance as `istatd_shards::parse_cpu_list`.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, String> {
    istatd_shards::parse_cpu_list(s)
}

/// Render a CPU list with ranges for runs of consecutive numbers (`0-3,5`).
pub fn format_core_list(cores: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if j > i {
            parts.push(format!("{}-{}", cores[i], cores[j]));
        } else {
            parts.push(cores[i].to_string());
        }
        i = j + 1;
    }
    parts.join(",")
}

/// Split `host:port` (at the first `:`, as the reference does) or `[v6addr]:port`; the
/// host must be non-empty and the port in 1..=65535.
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest
            .split_once("]:")
            .ok_or_else(|| "expected [v6addr]:port".to_string())?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| format!("bad IPv6 address {addr:?}"))?;
        (addr, port)
    } else {
        s.split_once(':')
            .ok_or_else(|| "expected host:port".to_string())?
    };
    if host.is_empty() {
        return Err("empty host".into());
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("bad port {port:?}"))?;
    Ok((host.to_string(), port))
}

// ---------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

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

    fn cfg(text: &str) -> Result<Options, String> {
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
        assert_eq!(o.user, unsafe { libc::getuid() }.to_string());
        assert_eq!(o.shards, None);
        assert!(o.pin_cores.is_empty());
        assert_eq!(o.page_cache_mb, 64);
        assert_eq!(o.max_open_files, 16000);
        assert_eq!(o.replica_chunk_buckets, 256);
        assert_eq!(o.replica_read_rate, 16_777_216);
        assert_eq!(o.replica_max_slaves, 4);
        assert_eq!(o.replica_subscribe_rate, 2000);
        assert_eq!(o.replica_create_rate, 200);
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
        assert!(lines.contains(
            &"--daemonize    (0           )   Unattach stdin; detach to the background."
        ));
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
        let o =
            cfg("--stat-port 18001\n  --http-port   18011  \n# --admin-port 5\n\n--daemonize\n")
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
            assert_eq!(cfg(text).unwrap_err(), want, "{text:?}");
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

        let err = |t: &str| apply_toml(&mut Options::default(), t.as_bytes()).unwrap_err();
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
        assert_eq!(o.debug_names().unwrap(), Vec::<String>::new());
        o.debug = " allKeys ,http,, allKeys,\tsegv ".into();
        assert_eq!(o.debug_names().unwrap(), vec!["allKeys", "http", "segv"]);
        for n in DEBUG_OPTIONS {
            o.debug = n.to_string();
            assert!(o.debug_names().is_ok(), "{n}");
        }
        o.debug = "allKeys,bogus".into();
        let e = o.debug_names().unwrap_err();
        assert_eq!(
            (e.message.as_str(), e.exit_code),
            ("No such debug option: bogus", 1)
        );
    }

    #[test]
    fn listen_address() {
        let mut o = Options::default();
        assert_eq!(o.listen_ipv4().unwrap(), None);
        o.listen_address = "127.0.0.1".into();
        assert_eq!(o.listen_ipv4().unwrap(), Some(Ipv4Addr::LOCALHOST));
        for bad in ["localhost", "1.2.3", "::1", "1.2.3.4 "] {
            o.listen_address = bad.into();
            let e = o.listen_ipv4().unwrap_err();
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
        assert_eq!(o.retentions().unwrap().len(), 4);
        o.retention = "1m".into();
        let e = o.retentions().unwrap_err();
        assert_eq!(e.exit_code, 1);
        assert!(!e.message.is_empty());
    }

    #[test]
    fn port_ranges() {
        let mut o = Options::default();
        assert!(o.check_ports().is_ok());
        o.stat_port = 65535;
        o.admin_port = 0;
        assert!(o.check_ports().is_ok());
        o.stat_port = 65536;
        let e = o.check_ports().unwrap_err();
        assert_eq!(e.exit_code, 2);
        assert_eq!(
            e.message,
            "Error in main() [Bad stat port specified: 65536]"
        );
        o.stat_port = -1;
        assert_eq!(o.check_ports().unwrap_err().exit_code, 2);
        o.stat_port = 0;
        o.admin_port = 70000;
        assert_eq!(
            o.check_ports().unwrap_err().message,
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
            assert_eq!(p.check_ports().unwrap_err().exit_code, 2);
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
        assert!(o.check_port_additions().is_ok());
        let o = cli(&["--thread-count", "6"]).unwrap();
        assert_eq!(o.shard_count(), 6);
        let o = cli(&["--thread-count", "0"]).unwrap();
        assert_eq!((o.worker_threads(), o.shard_count()), (1, 1));
        let o = cli(&["--thread-count", "1000"]).unwrap();
        assert_eq!(o.worker_threads(), 384);
        let o = cli(&["--shards", "0"]).unwrap();
        assert_eq!(o.check_port_additions().unwrap_err().exit_code, 1);
        let o = cli(&["--pin-cores", ""]).unwrap();
        assert!(o.pin_cores.is_empty());
        let o = cli(&["--agentCount", "-3", "--agent-interval", "0"]).unwrap();
        assert_eq!((o.agent_connections(), o.agent_flush_interval()), (1, 1));
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
        assert_eq!(o.check_replication().unwrap(), None);

        let check = |a: &[&str]| cli(a).unwrap().check_replication();
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
}
