//! The start-up checks of the options (docs/interfaces.md §7.5) and the resolution of the
//! file options (§7.7). Each check is a function of its own so that the daemon can run
//! it at its step and exit with the code the error carries: [`debug_names`],
//! [`listen_ipv4`], [`retentions`], [`check_ports`], [`check_port_additions`],
//! [`check_replication`]; [`Options::validate`] runs them all in start-up order.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use istatd_storage::retention::{parse_retentions, Retention};
use istatd_storage::store::IoMode;

use super::error::{HostPortError, OptionsError};
use super::{Options, DEBUG_OPTIONS, MAX_THREAD_COUNT};
use crate::statline::is_space;

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

/// Step 3 of §7.5: the `--debug` names (comma-separated, each trimmed, empty ones
/// skipped), sorted and deduplicated. Unknown: `No such debug option: X`, exit 1.
pub fn debug_names(opts: &Options) -> Result<Vec<String>, OptionsError> {
    let mut out: Vec<String> = Vec::new();
    for part in opts.debug.split(',') {
        let name = part.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
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
pub fn listen_ipv4(opts: &Options) -> Result<Option<Ipv4Addr>, OptionsError> {
    if opts.listen_address.is_empty() {
        return Ok(None);
    }
    opts.listen_address
        .parse::<Ipv4Addr>()
        .map(Some)
        .map_err(|_| {
            OptionsError::exit2("Error in main() parsing listen-address [Invalid argument]")
        })
}

/// Step 8 of §7.5: the parsed `--retention`. An error is the message, exit 1 (port;
/// the reference aborts).
pub fn retentions(opts: &Options) -> Result<Vec<Retention>, OptionsError> {
    parse_retentions(&opts.retention).map_err(|e| OptionsError::exit1(e.to_string()))
}

/// `Error in main() [<what>]`, exit 2: how the reference reports a bad port or a bad
/// replication setting.
fn error_in_main<T>(what: String) -> Result<T, OptionsError> {
    Err(OptionsError::exit2(format!("Error in main() [{what}]")))
}

/// Step 9 of §7.5: every port in 0..=65535, checked in the reference's listener
/// creation order; otherwise `Error in main() [<what>]`, exit 2.
pub fn check_ports(opts: &Options) -> Result<(), OptionsError> {
    let out = |p: i32| !(0..=65535).contains(&p);
    if out(opts.stat_port) {
        return error_in_main(format!("Bad stat port specified: {}", opts.stat_port));
    }
    if out(opts.graphite_port) {
        return error_in_main(format!(
            "Bad port number: --graphite-port {}",
            opts.graphite_port
        ));
    }
    if out(opts.replica_port) {
        return error_in_main(format!(
            "Bad port number: --replica-port {}",
            opts.replica_port
        ));
    }
    if out(opts.http_port) {
        return error_in_main(format!("Bad port number: --http-port {}", opts.http_port));
    }
    if out(opts.admin_port) {
        return error_in_main(format!(
            "Bad port number in AdminServer: {}",
            opts.admin_port
        ));
    }
    if out(opts.prometheus_port) {
        return error_in_main(format!(
            "Bad port number: --prometheus-port {}",
            opts.prometheus_port
        ));
    }
    Ok(())
}

/// The port additions: `--shards` in 1..=384 (exit 1). `--pin-cores` syntax is
/// checked while parsing (`Command line error near --pin-cores`).
pub fn check_port_additions(opts: &Options) -> Result<(), OptionsError> {
    if let Some(n) = opts.shards {
        if !(1..=MAX_THREAD_COUNT).contains(&n) {
            return Err(OptionsError::exit1(format!(
                "--shards must be between 1 and {MAX_THREAD_COUNT}, not {n}"
            )));
        }
    }
    store_io(opts)?;
    Ok(())
}

/// `--store-io`: `buffered` or `direct`; anything else exits 1.
pub fn store_io(opts: &Options) -> Result<IoMode, OptionsError> {
    match opts.store_io.as_str() {
        "buffered" => Ok(IoMode::Buffered),
        "direct" => Ok(IoMode::Direct),
        other => Err(OptionsError::exit1(format!(
            "--store-io must be buffered or direct, not {other}"
        ))),
    }
}

/// The replication checks of docs/replication-protocol.md, "Options" (exit 2,
/// `Error in main() [...]`): `--replica-of` / `--replica-port` need `--store`;
/// `--replica-of` not with `--agent`; `--replica-of` is `host:port` or `[v6addr]:port` with
/// a port in 1..=65535; `--replica-chunk-buckets` in 1..=2048; `--replica-keepalive` >= 1
/// and `--replica-timeout` > 2 x keepalive. Returns the split `--replica-of`.
pub fn check_replication(opts: &Options) -> Result<Option<(String, u16)>, OptionsError> {
    let target = if opts.replica_of.is_empty() {
        None
    } else {
        match parse_host_port(&opts.replica_of) {
            Ok(t) => Some(t),
            Err(why) => return error_in_main(format!("--replica-of {}: {why}", opts.replica_of)),
        }
    };
    if target.is_some() && opts.store.is_empty() {
        return error_in_main("--replica-of requires --store".into());
    }
    if opts.replica_port != 0 && opts.store.is_empty() {
        return error_in_main("--replica-port requires --store".into());
    }
    if target.is_some() && !opts.agent.is_empty() {
        return error_in_main("--replica-of cannot be combined with --agent".into());
    }
    if !(1..=2048).contains(&opts.replica_chunk_buckets) {
        return error_in_main(format!(
            "--replica-chunk-buckets must be between 1 and 2048, not {}",
            opts.replica_chunk_buckets
        ));
    }
    if opts.replica_keepalive == 0 {
        return error_in_main("--replica-keepalive must be at least 1".into());
    }
    if u64::from(opts.replica_timeout) <= 2 * u64::from(opts.replica_keepalive) {
        return error_in_main(format!(
            "--replica-timeout ({}) must be more than twice --replica-keepalive ({})",
            opts.replica_timeout, opts.replica_keepalive
        ));
    }
    Ok(target)
}

/// [`Options::validate`]: every check above in start-up order. The daemon that chdirs /
/// writes the pid file between steps 4 and 8 may call them one by one instead.
pub(super) fn startup_checks(opts: &Options) -> Result<Validated, OptionsError> {
    let debug = debug_names(opts)?;
    check_port_additions(opts)?;
    let listen_address = listen_ipv4(opts)?;
    let retentions = retentions(opts)?;
    check_ports(opts)?;
    let replica_of = check_replication(opts)?;
    Ok(Validated {
        debug,
        listen_address,
        retentions,
        replica_of,
    })
}

/// Split `host:port` (at the first `:`, as the reference does) or `[v6addr]:port`; the
/// host must be non-empty and the port in 1..=65535.
pub fn parse_host_port(s: &str) -> Result<(String, u16), HostPortError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (addr, port) = rest
            .split_once("]:")
            .ok_or(HostPortError::ExpectedBracketed)?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| HostPortError::BadIpv6(addr.to_string()))?;
        (addr, port)
    } else {
        s.split_once(':').ok_or(HostPortError::ExpectedHostPort)?
    };
    if host.is_empty() {
        return Err(HostPortError::EmptyHost);
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| HostPortError::BadPort(port.to_string()))?;
    Ok((host.to_string(), port))
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

/// [`Options::paths`].
pub(super) fn resolve_paths(opts: &Options, launch_dir: &Path) -> Paths {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let store = nonempty(&opts.store).map(|s| combine_paths(launch_dir, &s));
    // Reference: boost::filesystem::path(store).parent_path(); an empty parent means
    // no chdir. A store ending in '/' is its own "parent".
    let chdir_to = store.as_ref().and_then(|s| {
        let parent = boost_parent_path(s.as_os_str().as_bytes());
        (!parent.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(parent)))
    });
    let work_dir = chdir_to.clone().unwrap_or_else(|| launch_dir.to_path_buf());
    Paths {
        launch_dir: launch_dir.to_path_buf(),
        config: combine_paths(launch_dir, &opts.config),
        log_file: match nonempty(&opts.log_file) {
            // `-`: stdout (logging.rs), not a file named `-`.
            Some(l) if l == "-" => PathBuf::from("-"),
            Some(l) => combine_paths(launch_dir, &l),
            None => work_dir.join("istat.log"),
        },
        pid_file: nonempty(&opts.pid_file).map(|p| combine_paths(launch_dir, &p)),
        settings: combine_paths(&work_dir, &opts.settings),
        files_dir: combine_paths(&work_dir, &opts.files_dir),
        blacklist_path: nonempty(&opts.blacklist_path).map(|p| combine_paths(&work_dir, &p)),
        tagnames_path: nonempty(&opts.tagnames_path).map(|p| combine_paths(&work_dir, &p)),
        store,
        chdir_to,
        work_dir,
    }
}

/// istat `combine_paths`: `right` if absolute, else `left` + `/` (unless `left` ends in
/// `/`) + `right`; no normalisation.
pub(super) fn combine_paths(left: &Path, right: &str) -> PathBuf {
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
pub(super) fn boost_parent_path(p: &[u8]) -> Vec<u8> {
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
