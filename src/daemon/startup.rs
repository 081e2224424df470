//! The daemon's start-up order (docs/interfaces.md §7.5): options, validation, working
//! directory, logging, clock, daemonize, limits, then the shards.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use istatd_shards::ShardSpec;
use istatd_storage::store::{Allocation, IoMode};

use istatd_shards::Shutdown;

use super::config::ServerConfig;
use super::process::{self, Fatal};
use crate::clock;
use crate::logging;
use crate::options::{self, Options};

/// Built-in configuration for a bare `istatd` with no options and no `istatd.cfg`.
pub const EMBEDDED_ARGS: &[&str] = &[
    "--store",
    "istatd-data",
    "--admin-port",
    "8112",
    "--listen-address",
    "127.0.0.1",
];

/// Run the daemon; returns the process exit code.
pub fn daemon_main(args: &[String]) -> i32 {
    let cwd = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read the working directory: {e}");
            return 1;
        }
    };
    let embedded = args.is_empty() && !cwd.join(options::IMPLICIT_CONFIG).exists();
    let argv: Vec<String> = if embedded {
        EMBEDDED_ARGS.iter().map(|s| s.to_string()).collect()
    } else {
        args.to_vec()
    };
    let opts = match options::parse_with_notices(&argv, &cwd) {
        Ok((o, notices)) => {
            // The built-in configuration knows there is no istatd.cfg.
            if !embedded {
                for n in notices {
                    eprintln!("{n}");
                }
            }
            o
        }
        Err(e) => {
            eprint!("{}", e.stderr_text());
            return e.exit_code;
        }
    };
    match start(&opts, &cwd, embedded) {
        Ok(()) => 0,
        Err(f) => {
            tracing::error!("Error in main() [ {} ]", f.message);
            eprintln!("istatd: {}", f.message);
            f.code
        }
    }
}

fn start(opts: &Options, cwd: &Path, embedded: bool) -> Result<(), Fatal> {
    let v = opts
        .validate()
        .map_err(|e| Fatal::new(e.exit_code, e.message))?;
    if opts.test {
        println!("--test: the unit tests of this port run with `cargo test`");
        return Ok(());
    }
    if opts.store.is_empty() && opts.agent.is_empty() {
        return Err(Fatal::new(
            2,
            "StatServer must have at least one of a forward address or a local store.",
        ));
    }
    let agent_targets = if opts.agent.is_empty() {
        Vec::new()
    } else {
        crate::agent::parse_targets(&opts.agent).map_err(|e| Fatal::new(2, e))?
    };
    let paths = opts.paths(cwd);
    if let Some(dir) = &paths.chdir_to {
        if !dir.is_dir() {
            let _ = std::fs::create_dir(dir);
        }
        std::env::set_current_dir(dir)
            .map_err(|e| Fatal::new(1, format!("chdir {}: {e}", dir.display())))?;
    }
    let log = logging::init(&paths.log_file, opts.log_level);
    tracing::info!(
        "starting istatd: {}",
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    clock::set_fake(opts.fake_time as i64);
    check_io_uring()?;

    let store = paths.store.clone();
    let shards = opts.shard_count();
    let io_memory = io_memory_per_shard(shards);
    let max_open_files = raise_file_limit(opts)?;
    let cfg = ServerConfig {
        store,
        retentions: v.retentions.clone(),
        allocation: if opts.allocation_strategy == 2 {
            Allocation::Sparse
        } else {
            Allocation::Full
        },
        io: crate::options::store_io(opts).unwrap_or(IoMode::Buffered),
        create_parents: !opts.dont_recursively_create_counters,
        listen: v.listen_address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        stat_port: opts.stat_port as u16,
        graphite_port: opts.graphite_port as u16,
        admin_port: opts.admin_port as u16,
        flush_secs: opts.flush.max(1) as u64,
        shards: ShardSpec {
            count: shards,
            pin_cores: opts.pin_cores.clone(),
            io_memory,
            channel_capacity: 256,
        },
        page_cache_pages: page_cache_mb(opts.page_cache_mb) * 1024 * 1024
            / istatd_storage::format::PAGE_SIZE,
        max_open_files,
        udp_buffer_bytes: opts.udp_buffer_size.max(1) as usize * 1024,
        backlog: opts.listen_overflow_backlog,
        local_stats: crate::metrics::localstats::local_stats_suffix(&opts.local_stats),
        http_port: opts.http_port as u16,
        files_dir: paths.files_dir.clone(),
        settings_dir: paths.settings.clone(),
        disallow_compressed: opts.disallow_compressed_responses,
        prometheus_port: opts.prometheus_port as u16,
        prom: prom_config(opts, &paths, shards),
        blacklist: match (&paths.blacklist_path, opts.blacklist_period) {
            (Some(path), period) if period > 0 => Some(crate::ingest::meta::BlacklistConfig {
                path: path.clone(),
                period_secs: (period as u64) & 0xffff,
            }),
            _ => None,
        },
        agent: crate::agent::AgentConfig {
            targets: agent_targets,
            connections: opts.agent_connections(),
            interval_secs: opts.agent_flush_interval(),
        },
        repl: crate::replica::ReplConfig {
            port: opts.replica_port.max(0) as u16,
            of: v.replica_of.clone(),
            chunk_buckets: opts.replica_chunk_buckets,
            max_slaves: opts.replica_max_slaves,
            overlap: opts.replica_resume_overlap,
            late_window: opts.replica_late_window,
            from: opts.replica_from,
            keepalive: opts.replica_keepalive,
            timeout: opts.replica_timeout,
            subscribe_rate: opts.replica_subscribe_rate,
            create_rate: opts.replica_create_rate,
            read_rate: opts.replica_read_rate,
            shards,
            backoff_max: opts.replica_backoff_max.clamp(1, 180),
            scrub_rate: opts.replica_scrub_rate,
            scrub_interval: opts.replica_scrub_interval,
        },
        log: log.clone(),
    };

    let notify = if opts.daemonize {
        if let Some(p) = &paths.pid_file {
            check_pid_file(p)?;
        }
        Some(daemonize()?)
    } else {
        None
    };
    let notify = std::cell::RefCell::new(notify);
    let shutdown = Shutdown::new(cfg.shards.count);
    let reopen = log.reopen();
    process::install_signal_thread(shutdown.clone(), move || reopen.request())
        .map_err(|e| Fatal::new(2, format!("signal thread: {e}")))?;
    // After the fork (threads do not survive it), and after the termination signals
    // are blocked (a thread started before would take SIGTERM's default action).
    log.start_writer();
    let user = resolve_user(&opts.user)?;
    let store_for_chown = cfg.store.clone();
    let where_text = describe(&cfg, opts, embedded);
    let result = process::run(cfg, shutdown, paths.pid_file.clone(), || {
        if let Some(uid) = user {
            // After the listeners are open, as the reference: chown the store, then
            // switch the effective uid.
            if let Some(store) = &store_for_chown {
                let _ = nix::unistd::chown(store.as_path(), Some(uid), None);
            }
            if let Err(e) = nix::unistd::seteuid(uid) {
                tracing::error!(error = %e, "cannot switch to --user {uid}");
            }
        }
        tracing::info!("{where_text}");
        if embedded {
            println!("{where_text}");
        }
        if let Some(fd) = notify.borrow_mut().take() {
            tell_parent(fd, 0);
            detach_stdio();
        }
    });
    if let Err(f) = &result {
        if let Some(fd) = notify.borrow_mut().take() {
            tell_parent(fd, f.code as u8);
        }
    }
    log.flush();
    result
}

fn describe(cfg: &ServerConfig, opts: &Options, embedded: bool) -> String {
    let store = cfg
        .store
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let store = if store.is_empty() {
        "none (agent)".to_string()
    } else {
        store
    };
    let mut s = format!(
        "istatd {}: store {store}, stat port {}:{} (tcp+udp), admin port {}, {} shard(s)",
        if embedded {
            "running on its built-in configuration"
        } else {
            "running"
        },
        cfg.listen,
        cfg.stat_port,
        cfg.admin_port,
        cfg.shards.count
    );
    if cfg.graphite_port != 0 {
        s.push_str(&format!(
            ", graphite port {}:{} (tcp+udp)",
            cfg.listen, cfg.graphite_port
        ));
    }
    if opts.http_port != 0 {
        s.push_str(&format!(", http http://{}:{}/", cfg.listen, opts.http_port));
    }
    if cfg.repl.port != 0 {
        s.push_str(&format!(", replica port {}", cfg.repl.port));
    }
    if cfg.agent.enabled() {
        let t: Vec<String> = cfg
            .agent
            .targets
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect();
        s.push_str(&format!(
            ", forwarding to {} over {} connection(s) every {} s",
            t.join(" then "),
            cfg.agent.connections,
            cfg.agent.interval_secs
        ));
    }
    if let Some((h, p)) = &cfg.repl.of {
        s.push_str(&format!(
            ", replica of {h}:{p} (the stat port stays closed while this node is a slave)"
        ));
    }
    s
}

/// The Prometheus exporter's settings; the entry cap is split across the shards.
fn prom_config(
    opts: &Options,
    paths: &options::Paths,
    shards: usize,
) -> crate::metrics::prom::PromConfig {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut c = crate::metrics::prom::PromConfig::new(host);
    c.translate_names = !opts.dont_translate_metric_names;
    c.cleanup_period = opts.metrics_cleanup_period.max(1) as i64;
    c.max_entries = if opts.max_matrics_count > 0 {
        (opts.max_matrics_count as i64 + shards as i64 - 1) / shards as i64
    } else {
        -1
    };
    if let Some(p) = &paths.tagnames_path {
        match std::fs::read_to_string(p) {
            Ok(text) => c.extra_tag_names = crate::metrics::prom::load_tag_names(&text),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "cannot read --tagnames-path")
            }
        }
    }
    c
}

/// `--page-cache-mb`, with 0 sized from the memory this process may use: 1/32 of it,
/// between 256 and 1024 MiB (see the option's text for why).
fn page_cache_mb(given: usize) -> usize {
    if given > 0 {
        return given;
    }
    let mb = auto_page_cache_mb(usable_memory_bytes());
    tracing::info!(
        page_cache_mb = mb,
        "page cache sized from memory (--page-cache-mb 0)"
    );
    mb
}

/// 1/32 of `memory` bytes in MiB, between 256 and 1024 (256 when unknown).
fn auto_page_cache_mb(memory: Option<u64>) -> usize {
    memory
        .map_or(256, |b| (b / 32 / (1 << 20)) as usize)
        .clamp(256, 1024)
}

/// RAM (`MemTotal`), or the cgroup v2 memory limit when it is lower.
fn usable_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let total = parse_meminfo_total(&meminfo)?;
    let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    Some(limit.map_or(total, |l| l.min(total)))
}

/// `MemTotal:` of /proc/meminfo, in bytes.
fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Every disk and socket operation goes through io_uring: probe it once before any
/// shard starts, so that a refusal (a container's seccomp profile, a kernel without
/// it) is one message that says what to change, not a shard failing to start.
fn check_io_uring() -> Result<(), Fatal> {
    // struct io_uring_params: 120 bytes, zeroed (no flags).
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup(2) with one entry writes at most sizeof(io_uring_params)
    // bytes into `params`; the descriptor it returns is closed at once.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        let _ = nix::unistd::close(fd as i32);
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    Err(Fatal::new(
        2,
        format!(
            "io_uring is not available ({e}): istatd needs the io_uring_setup, io_uring_enter \
             and io_uring_register system calls. In a container, allow them in the seccomp \
             profile and raise the memlock limit (docs/deploy/README.md)"
        ),
    ))
}

/// glommio registers `io_memory` bytes per executor as locked memory; keep the total
/// within RLIMIT_MEMLOCK and say so when even the minimum does not fit.
fn io_memory_per_shard(shards: usize) -> usize {
    let want = 1usize << 20;
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MEMLOCK) {
        Ok((soft, _)) if soft != nix::sys::resource::RLIM_INFINITY => {
            let per = (soft as usize / (shards + 1)).min(want);
            if per < 256 * 1024 {
                tracing::warn!(
                    memlock_bytes = soft,
                    shards,
                    "locked-memory limit leaves under 256 KiB of io_memory per shard; raise `ulimit -l`"
                );
                return 256 * 1024;
            }
            per & !4095
        }
        _ => want,
    }
}

/// `--num-files`, and room for the descriptor caches plus sockets.
fn raise_file_limit(opts: &Options) -> Result<usize, Fatal> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| Fatal::new(1, e.to_string()))?;
    let wanted = (opts.num_files.max(0) as u64).max(opts.max_open_files as u64 + 2048);
    let new_soft = wanted.min(hard).max(soft);
    if new_soft > soft {
        setrlimit(Resource::RLIMIT_NOFILE, new_soft, hard)
            .map_err(|e| Fatal::new(1, format!("raising the open-file limit: {e}")))?;
    }
    if (opts.num_files as u64) > hard {
        return Err(Fatal::new(
            1,
            format!(
                "--num-files {} is above the hard limit {hard}",
                opts.num_files
            ),
        ));
    }
    // Leave 1024 descriptors for sockets and logs.
    let budget = (new_soft.saturating_sub(1024)) as usize;
    let max_open = opts.max_open_files.min(budget).max(16);
    if max_open < opts.max_open_files {
        tracing::warn!(
            max_open,
            limit = new_soft,
            "descriptor cache lowered to fit the open-file limit"
        );
    }
    Ok(max_open)
}

/// `--user`: a user name or numeric uid; `None` when it is the current user.
fn resolve_user(user: &str) -> Result<Option<nix::unistd::Uid>, Fatal> {
    let current = nix::unistd::getuid();
    if user.is_empty() {
        return Ok(None);
    }
    let uid = match user.parse::<u32>() {
        Ok(n) => nix::unistd::Uid::from_raw(n),
        Err(_) => match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => u.uid,
            _ => return Err(Fatal::new(2, format!("unknown user {user}"))),
        },
    };
    Ok((uid != current).then_some(uid))
}

fn check_pid_file(p: &PathBuf) -> Result<(), Fatal> {
    if let Ok(text) = std::fs::read_to_string(p) {
        if let Ok(pid) = text.trim().parse::<i32>() {
            if (1..=4_194_303).contains(&pid)
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            {
                return Err(Fatal::new(
                    1,
                    format!(
                        "{} says process {pid} is running; I refuse to start.",
                        p.display()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Fork; the parent waits for the child's word (0 = every listener is up) and exits
/// with it, or with the child's exit status if it dies first (docs/interfaces.md §7.6).
fn daemonize() -> Result<OwnedFd, Fatal> {
    let (r, w) = nix::unistd::pipe().map_err(|e| Fatal::new(2, format!("pipe: {e}")))?;
    // SAFETY: no other thread exists yet (the executors start after this).
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(Fatal::new(2, format!("fork: {e}"))),
        Ok(nix::unistd::ForkResult::Child) => {
            drop(r);
            Ok(w)
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            drop(w);
            let mut f = std::fs::File::from(r);
            let mut b = [0u8; 1];
            let code = match f.read(&mut b) {
                Ok(1) => b[0] as i32,
                _ => match nix::sys::wait::waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, c)) if c != 0 => c,
                    _ => 2,
                },
            };
            std::process::exit(code);
        }
    }
}

fn tell_parent(fd: OwnedFd, code: u8) {
    let mut f = std::fs::File::from(fd);
    let _ = f.write_all(&[code]);
}

fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for target in 0..3 {
            let _ = nix::unistd::dup2(null.as_raw_fd(), target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_cache_follows_memory_within_bounds() {
        let gib = 1u64 << 30;
        assert_eq!(auto_page_cache_mb(Some(24 * gib)), 768);
        assert_eq!(auto_page_cache_mb(Some(2 * gib)), 256);
        assert_eq!(auto_page_cache_mb(Some(256 * gib)), 1024);
        assert_eq!(auto_page_cache_mb(None), 256);
        assert_eq!(page_cache_mb(8), 8);
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let text = "MemTotal:       24683828 kB\nMemFree:        18368900 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(24683828 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: lots\n"), None);
    }
}
