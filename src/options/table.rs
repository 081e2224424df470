//! The option table: every daemon option's field, type, default, name and help text in
//! one list (docs/interfaces.md §7.3, the port additions, docs/replication-protocol.md
//! "Options"). From it, `define_options!` makes the [`Options`] struct and its `Default`,
//! the name lookup [`spec`], and the setters by name that the command line and the config
//! files use. Also the derived values the daemon reads from an [`Options`].

use std::path::Path;

use nix::sys::resource::{getrlimit, Resource};
use nix::sys::socket::Backlog;
use nix::unistd::{getuid, sysconf, SysconfVar};

use super::error::{OptionError, OptionsError};
use super::validate::{resolve_paths, startup_checks, Paths, Validated};
use super::value::OptValue;
use super::{DEFAULT_RETENTION, IMPLICIT_CONFIG, MAX_THREAD_COUNT};

/// What the command line, the config file reader and the usage text know of an option
/// besides its field.
pub(super) struct OptionSpec {
    pub(super) name: &'static str,
    pub(super) help: &'static str,
    pub(super) is_bool: bool,
}

macro_rules! define_options {
    ($(
        $(#[$meta:meta])*
        $field:ident : $ty:ty = $default:expr => $name:literal, $help:literal;
    )*) => {
        /// Every daemon option (docs/interfaces.md §7.3, the port additions,
        /// docs/replication-protocol.md "Options"). Field names are the option names in
        /// snake case; the reference's spellings `--agentCount` and `--max-matrics-count`
        /// are kept as option names.
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

        pub(super) static SPECS: &[OptionSpec] = &[
            $( OptionSpec {
                name: $name,
                help: $help,
                is_bool: <$ty as OptValue>::IS_BOOL,
            }, )*
        ];

        impl Options {
            /// Set from text; `None` when the name is not an option.
            pub(super) fn set_text(
                &mut self,
                name: &str,
                value: &str,
            ) -> Option<Result<(), OptionError>> {
                match name {
                    $( $name => Some(
                        <$ty as OptValue>::from_text(value).map(|v| self.$field = v)
                    ), )*
                    _ => None,
                }
            }

            /// Set from a TOML value; `None` when the name is not an option.
            pub(super) fn set_toml(
                &mut self,
                name: &str,
                value: &toml::Value,
            ) -> Option<Result<(), OptionError>> {
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

// One option a line (field: type = default => name, help), so that the table reads as
// a table.
define_options! {
    /// `--admin-port` (0): admin telnet port; 0 disables.
    admin_port: i32 = 0 => "admin-port", "When specified, port that exposes an admin telnet interface";
    /// `--agent` (""): `host:port` to forward to; empty: no forwarding.
    agent: String = String::new() => "agent", "Agent to forward to, rather than save data locally.";
    /// `--agentCount` (1): forward connections; see [`Options::agent_connections`].
    agent_count: i32 = 1 => "agentCount", "How many agent connections to open";
    /// `--agent-interval` (10): seconds between forward flushes; see
    /// [`Options::agent_flush_interval`].
    agent_interval: i32 = 10 => "agent-interval", "Interval for batching values when forwarding.";
    /// `--allocation-strategy` (1): 1 = write zeros, 2 = sparse.
    allocation_strategy: i32 = 1 => "allocation-strategy", "The allocation strategy used when making files. 1 = write all as 0, 2 = sparse file";
    /// `--blacklist-path` (""): blacklist file, relative to the working directory after
    /// the chdir; empty disables.
    blacklist_path: String = String::new() => "blacklist-path", "Where to look for blacklisted hosts";
    /// `--blacklist-period` (60): seconds (the reference stores it as 16 bits).
    blacklist_period: i32 = 60 => "blacklist-period", "How often to check the file";
    /// `--config` ("istatd.cfg"): the config file. While parsing, an explicit
    /// `--config X` is first set to X joined to the launch directory; the command line
    /// then sets the raw X.
    config: String = IMPLICIT_CONFIG.to_string() => "config", "Config file to read, if present.";
    /// `--daemonize` (false).
    daemonize: bool = false => "daemonize", "Unattach stdin; detach to the background.";
    /// `--debug` (""): comma-separated debug names; see
    /// [`debug_names`](super::debug_names).
    debug: String = String::new() => "debug", "When specified, turns on specific debugging options (as comma separated list).";
    /// `--disallow-compressed-responses` (false).
    disallow_compressed_responses: bool = false => "disallow-compressed-responses", "Should istatd-server disallow compression of http responses by accept-encoding";
    /// `--dont-recursively-create-counters` (false).
    dont_recursively_create_counters: bool = false => "dont-recursively-create-counters", "Should we disable recursing up the counter chain (split on .) and make parent counters";
    /// `--dont-translate-metric-names` (false).
    dont_translate_metric_names: bool = false => "dont-translate-metric-names", "Should we map exposed istatd metrics names to prometheus metric names";
    /// `--fake-time` (0): non-zero freezes the clock at this Unix time.
    fake_time: i32 = 0 => "fake-time", "Fake current time to UNIX epoch (for testing).";
    /// `--files-dir` ("files"): static web files, relative to the working directory after
    /// the chdir.
    files_dir: String = "files".to_string() => "files-dir", "Where to serve built-in web files from.";
    /// `--flush` (300): seconds for one full flush round.
    flush: i32 = 300 => "flush", "How often (in seconds) to flush stats files to disk.";
    /// `--http-port` (8000): 0 disables.
    http_port: i32 = 8000 => "http-port", "Port to listen to for HTTP status service. 0 to disable.";
    /// `--listen-address` (""): IPv4 address for all listeners; see
    /// [`listen_ipv4`](super::listen_ipv4).
    listen_address: String = String::new() => "listen-address", "IP address on which to start listeners. empty string to accept on all interfaces.";
    /// `--listen-overflow-backlog` (SOMAXCONN).
    listen_overflow_backlog: i32 = i32::from(Backlog::MAXCONN) => "listen-overflow-backlog", "Listen overflow backlog, defaults to boost::asio::socket_base::max_connections";
    /// `--local-stats` (""): host-stat suffix; empty disables.
    local_stats: String = String::new() => "local-stats", "Gather local stats, counter names suffixed by the given string.";
    /// `--log-file` (""): joined to the launch directory; empty: `istat.log` in the
    /// working directory after the chdir.
    log_file: String = String::new() => "log-file", "When specified, errors and debugging information are logged to the specified file.  Otherwise, this information is output on stdout/stderr.";
    /// `--log-level` (2): 0 error .. 4 spam.
    log_level: i32 = 2 => "log-level", "How chatty to be on stdout/stderr. Higher is more. (0-4)";
    /// `--max-matrics-count` (-1; spelling sic): Prometheus entry cap, <= 0 unlimited.
    max_matrics_count: i32 = -1 => "max-matrics-count", "Maximum number of metrics can be exposed by agent";
    /// `--metrics-cleanup-period` (30): seconds.
    metrics_cleanup_period: i32 = 30 => "metrics-cleanup-period", "How often in seconds to cleanup metrics exposed by agent";
    /// `--min-space` (-1 = 100 MiB): bytes of free disk the store wants.
    min_space: i32 = -1 => "min-space", "When specified, minimum free space required (in bytes). When below this amount, error messages will be generated periodically.";
    /// `--num-files` (the current soft `RLIMIT_NOFILE`): raise the file limit to this.
    num_files: i32 = current_files_limit() => "num-files", "Number of files to allocate (rlimit).";
    /// `--pid-file` (""): joined to the launch directory.
    pid_file: String = String::new() => "pid-file", "Write the PID of the daemon to the given file.";
    /// `--prometheus-port` (0): 0 disables.
    prometheus_port: i32 = 0 => "prometheus-port", "Port to expose metrics by agent. 0 to disable.";
    /// `--prune-empty-directories-interval` (120): seconds.
    prune_empty_directories_interval: i32 = 120 => "prune-empty-directories-interval", "How often (in seconds) to go through the directory tree and prune empty trees.";
    /// `--replica-of` (""): `host:port` or `[v6addr]:port` of a replication master;
    /// see [`check_replication`](super::check_replication).
    replica_of: String = String::new() => "replica-of", "Source to pull-replicate from. Incompatible with stat-port.";
    /// `--replica-port` (0): replication listener; 0 disables.
    replica_port: i32 = 0 => "replica-port", "Port that others can pull-replicate from. Requires store.";
    /// `--retention` ([`DEFAULT_RETENTION`]); see [`retentions`](super::retentions).
    retention: String = DEFAULT_RETENTION.to_string() => "retention", "When specified, adjusts number and size of retention times.";
    /// `--rollup` (0): accepted and ignored.
    rollup: i32 = 0 => "rollup", "How many levels to roll up counter values.";
    /// `--settings` ("/tmp"): settings directory, relative to the working directory after
    /// the chdir.
    settings: String = "/tmp".to_string() => "settings", "Where to store settings (mostly used for HTTP app).";
    /// `--stat-port` (8111): TCP and UDP stat port; 0 disables.
    stat_port: i32 = 8111 => "stat-port", "Port to listen to for incoming statistics. 0 to disable.";
    /// `--store` (""): store directory, joined to the launch directory; empty: no store.
    store: String = String::new() => "store", "Where to store statistics files.";
    /// `--tagnames-path` (""): relative to the working directory after the chdir.
    tagnames_path: String = String::new() => "tagnames-path", "Where to look for allowed tag names of exposed metrics";
    /// `--test` (false): the port prints a notice and exits 0.
    test: bool = false => "test", "When specified, run unit tests built into executable; don't start program.";
    /// `--thread-count` (online CPUs); see [`Options::worker_threads`].
    thread_count: i32 = online_cpus() => "thread-count", "Number of threads to create.";
    /// `--udp-buffer-size` (1024): UDP `SO_RCVBUF` in KiB.
    udp_buffer_size: i32 = 1024 => "udp-buffer-size", "Buffer size for UDP sockets, in Kilobytes";
    /// `--user` (the real uid, as a number): user name or numeric uid.
    user: String = getuid().to_string() => "user", "User-id to set after adjusting rlimit.";

    // ---- port additions ----

    /// `--shards N` (unset: [`Options::worker_threads`]): number of shards/executors;
    /// see [`Options::shard_count`]. Must be 1..=384.
    shards: Option<usize> = None => "shards", "Number of shards (executors). Default: --thread-count.";
    /// `--graphite-port N` (0 = off): Graphite plaintext input, TCP and UDP
    /// (docs/graphite.md); closed on a slave like the stat port.
    graphite_port: i32 = 0 => "graphite-port", "Port for Graphite plaintext input (name value timestamp), TCP and UDP. 0 to disable.";
    /// `--pin-cores LIST` (empty = no pinning): CPU list such as `0,1`, `0-3`, `0-1,4`.
    pin_cores: Vec<usize> = Vec::new() => "pin-cores", "CPUs to pin shards to, e.g. 0-3 or 0-1,4. Empty: no pinning.";
    /// `--page-cache-mb N` (0 = sized from the machine): stat file page cache, MiB.
    /// The reference writes through the kernel's page cache, which keeps every active
    /// page in whatever memory is free; with `--store-io direct` this cache is what
    /// holds them.
    /// 0 takes 1/32 of the memory the daemon may use (RAM, or its cgroup's limit),
    /// between 256 and 1024 MiB: a 50,000-file store's active pages (400 MB) fit on a
    /// 16 GiB machine, where 256 MiB made a replica master re-read them for every
    /// answer (steady lag 25-40 s at 60,000 updates/s).
    page_cache_mb: usize = 0 => "page-cache-mb", "Size of the stat file page cache, in MiB. 0: 1/32 of memory, 256 to 1024.";
    /// `--store-io MODE` (`buffered`): how counter files are read and written;
    /// `buffered` goes through the kernel's page cache like the reference, `direct` uses
    /// O_DIRECT (every miss of `--page-cache-mb` is a disk read).
    store_io: String = "buffered".to_string() => "store-io", "How stat files are read and written: buffered (the kernel's page cache) or direct (O_DIRECT).";
    /// `--max-open-files N` (16000): stat files kept open at once.
    max_open_files: usize = 16000 => "max-open-files", "Maximum number of stat files kept open at once.";

    // ---- replication (docs/replication-protocol.md, "Options") ----

    /// `--replica-chunk-buckets` (2048): 1..=2048. Port default: the largest, so that a
    /// catch-up moves 64 KiB per round trip (the protocol's design said 256).
    replica_chunk_buckets: u32 = 2048 => "replica-chunk-buckets", "Buckets per replication chunk (1-2048): the slave's request size and the master's cap.";
    /// `--replica-read-rate` (0): bytes/s of replication disk reads; 0 unlimited
    /// (formerly 16 MiB/s).
    replica_read_rate: u64 = 0 => "replica-read-rate", "Master: bytes per second of replication disk reads. 0 = unlimited.";
    /// `--replica-max-slaves` (4).
    replica_max_slaves: u32 = 4 => "replica-max-slaves", "Master: maximum number of slave connections.";
    /// `--replica-subscribe-rate` (20000): first requests per second (formerly 2000).
    replica_subscribe_rate: u32 = 20_000 => "replica-subscribe-rate", "Slave: first requests per second, split across shards.";
    /// `--replica-create-rate` (0): new files per second; 0 = as fast as the disk
    /// creates them (formerly 200).
    replica_create_rate: u32 = 0 => "replica-create-rate", "Slave: new files per second, split across shards. 0 = no cap.";
    /// `--replica-resume-overlap` (600): seconds.
    replica_resume_overlap: u32 = 600 => "replica-resume-overlap", "Seconds re-requested per file on subscribe (slave) / late-mark margin (master).";
    /// `--replica-late-window` (86400): seconds.
    replica_late_window: u32 = 86_400 => "replica-late-window", "Master: seconds a late mark lives after its last late write.";
    /// `--replica-from` (unset): resume time in Unix seconds.
    replica_from: Option<i64> = None => "replica-from", "Slave: resume time (Unix seconds). Empty: none.";
    /// `--replica-keepalive` (10): seconds.
    replica_keepalive: u32 = 10 => "replica-keepalive", "Replication keepalive, in seconds.";
    /// `--replica-timeout` (60): seconds; must be > 2 x keepalive.
    replica_timeout: u32 = 60 => "replica-timeout", "Replication idle timeout, in seconds; must be more than twice the keepalive.";
    /// `--replica-backoff-max` (180): the slave's longest reconnect delay, seconds (port
    /// addition; the protocol's back-off stops at 180: docs/replication-protocol.md,
    /// "Liveness and resume").
    replica_backoff_max: u32 = 180 => "replica-backoff-max", "Slave: longest reconnect delay in seconds (1-180).";
    /// `--replica-scrub-rate` (0): buckets per second the anti-entropy scrub compares;
    /// 0 leaves the scrub off and the link at protocol version 2 (port addition).
    replica_scrub_rate: u64 = 0 => "replica-scrub-rate", "Anti-entropy scrub: buckets per second compared (set on master and slave). 0 = off.";
    /// `--replica-scrub-interval` (86400): seconds from the end of one automatic scrub
    /// pass to the start of the next; 0 = passes only on `replication.scrub start`.
    replica_scrub_interval: u32 = 86_400 => "replica-scrub-interval", "Slave: seconds between automatic scrub passes. 0 = only by the admin command.";
}

/// The table entry of an option name.
pub(super) fn spec(name: &str) -> Option<&'static OptionSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// `sysconf(_SC_NPROCESSORS_ONLN)`; the reference's default `--thread-count`.
fn online_cpus() -> i32 {
    match sysconf(SysconfVar::_NPROCESSORS_ONLN) {
        Ok(Some(n)) if n > 0 => i32::try_from(n).unwrap_or(i32::MAX),
        _ => std::thread::available_parallelism()
            .map(|n| i32::try_from(n.get()).unwrap_or(i32::MAX))
            .unwrap_or(1),
    }
}

/// The soft `RLIMIT_NOFILE` (unlimited or unreadable: `i32::MAX`).
fn current_files_limit() -> i32 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _hard)) => i32::try_from(soft).unwrap_or(i32::MAX),
        Err(_) => i32::MAX,
    }
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

    /// Every start-up check in start-up order (§7.5): debug names (exit 1), port
    /// additions (1), listen address (2), retention (1), ports (2), replication (2).
    pub fn validate(&self) -> Result<Validated, OptionsError> {
        startup_checks(self)
    }

    /// Resolve the file options (§7.7) against `launch_dir`, the start-up working
    /// directory (pass an absolute path to get absolute results).
    pub fn paths(&self, launch_dir: &Path) -> Paths {
        resolve_paths(self, launch_dir)
    }
}
