//! The daemon's command line and config file (docs/interfaces.md §7).
//!
//! [`parse`] builds an [`Options`] from the defaults, then the config file, then the
//! command line (§7.1, §7.2). The checks the daemon runs later during start-up (§7.5)
//! are separate functions so that the daemon can run each one at its step and exit with
//! the code the error carries: [`debug_names`], [`listen_ipv4`], [`retentions`],
//! [`check_ports`], [`check_port_additions`], [`check_replication`], or all of them in
//! start-up order with [`Options::validate`]. [`Options::paths`] resolves the file
//! options against the launch directory and the working directory after the start-up
//! chdir (§7.7).
//!
//! - `table`: the option table, from which [`Options`] is made.
//! - `value`: how one option value converts from text and TOML and back.
//! - `parse`: the command line.
//! - `config_file`: the istatd-format and TOML config files.
//! - `usage`: the usage text.
//! - `validate`: the start-up checks and [`Paths`].
//! - `error`: the error types, whose texts are the reference's.

mod config_file;
mod error;
mod parse;
mod table;
mod usage;
mod validate;
mod value;

pub use error::{ConfigError, HostPortError, OptionError, OptionsError};
pub use parse::{parse, parse_with_notices};
pub use table::Options;
pub use usage::{bash_completion, man_page, usage, BUILD_STAMP};
pub use validate::{
    check_port_additions, check_ports, check_replication, debug_names, listen_ipv4,
    parse_host_port, retentions, store_io, Paths, Validated,
};
pub use value::{format_core_list, parse_core_list};

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

#[cfg(test)]
mod tests;
