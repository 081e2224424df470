//! Process-level life cycle: pid file, port probes, signals, starting and stopping the
//! shards (docs/interfaces.md §7.5, §7.6, §7.8).

use std::io::Write;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use istatd_shards::Shutdown;

use super::config::ServerConfig;

/// A start-up failure with its exit code (1: usage/config/pid file, 2: run time).
#[derive(Debug)]
pub struct Fatal {
    pub code: i32,
    pub message: String,
}

impl Fatal {
    pub fn new(code: i32, message: impl Into<String>) -> Fatal {
        Fatal {
            code,
            message: message.into(),
        }
    }
}

/// Refuse to start when the pid file names a live process; otherwise claim it.
pub fn claim_pid_file(path: &Path, pid: u32) -> Result<(), Fatal> {
    if let Ok(text) = std::fs::read_to_string(path) {
        match text.trim().parse::<i32>() {
            Ok(old) if (1..=4_194_303).contains(&old) => {
                let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), None).is_ok();
                if alive && old as u32 != pid {
                    return Err(Fatal::new(
                        1,
                        format!(
                            "{} says process {old} is running; I refuse to start.",
                            path.display()
                        ),
                    ));
                }
                tracing::info!(
                    "{} was left over from process {old}; will clobber.",
                    path.display()
                );
            }
            _ => tracing::warn!("{} seems corrupt; will clobber.", path.display()),
        }
    }
    std::fs::write(path, format!("{pid}\n"))
        .map_err(|e| Fatal::new(1, format!("cannot write pid file {}: {e}", path.display())))
}

/// glommio's listeners always set SO_REUSEPORT, so a second daemon on the same port
/// would silently share it. Binding once without SO_REUSEPORT first makes a port that
/// anyone else holds fail start-up. A port still held is tried again for up to a
/// second: a daemon that was just killed keeps its listeners until the kernel has torn
/// down its io_uring, a few milliseconds after the process is gone.
pub fn probe_ports(cfg: &ServerConfig) -> Result<(), Fatal> {
    let (stat_port, graphite_port) = if cfg.repl.is_slave() {
        (0, 0)
    } else {
        (cfg.stat_port, cfg.graphite_port)
    };
    let tcp = [
        ("stat", stat_port),
        ("graphite", graphite_port),
        ("admin", cfg.admin_port),
        ("http", cfg.http_port),
        ("prometheus", cfg.prometheus_port),
        ("replica", cfg.repl.port),
    ];
    let retry = |f: &dyn Fn() -> std::io::Result<()>| {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        loop {
            match f() {
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                r => return r,
            }
        }
    };
    for (what, port) in tcp {
        if port == 0 {
            continue;
        }
        let a = SocketAddr::from((cfg.listen, port));
        retry(&|| bind_only(a)).map_err(|e| Fatal::new(2, format!("{what} port {a}: {e}")))?;
    }
    for (what, port) in [("stat", stat_port), ("graphite", graphite_port)] {
        if port == 0 {
            continue;
        }
        let a = SocketAddr::from((cfg.listen, port));
        retry(&|| StdUdpSocket::bind(a).map(drop))
            .map_err(|e| Fatal::new(2, format!("{what} port {a}/udp: {e}")))?;
    }
    Ok(())
}

/// Bind a TCP socket to `a` without listening, then close it: a port another socket
/// listens on fails with EADDRINUSE. Listening would let a client connect in the
/// moment before the close and get a reset (a readiness poll took it for the daemon).
fn bind_only(a: SocketAddr) -> std::io::Result<()> {
    use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};
    let family = if a.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    // As the daemon's own listeners: a TIME_WAIT socket on the port does not count.
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReuseAddr, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(a),
    )?;
    Ok(())
}

/// Block the termination signals in this thread (and every thread it starts), and
/// handle them on a dedicated thread: SIGTERM/SIGINT begin a clean shutdown, SIGHUP
/// calls `on_hup`.
pub fn install_signal_thread(
    shutdown: Shutdown,
    on_hup: impl Fn() + Send + 'static,
) -> std::io::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.add(Signal::SIGHUP);
    set.thread_block().map_err(std::io::Error::from)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            match set.wait() {
                Ok(Signal::SIGHUP) => on_hup(),
                Ok(sig) => {
                    tracing::info!(signal = %sig, "shutting down");
                    shutdown.request();
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        })?;
    Ok(())
}

/// Run the shards until shutdown. `ready` is called once every listener is up.
pub fn run(
    mut cfg: ServerConfig,
    shutdown: Shutdown,
    pid_file: Option<PathBuf>,
    ready: impl FnOnce(),
) -> Result<(), Fatal> {
    // The store's replication markers decide whether this node starts as a slave.
    let store = cfg.store.clone();
    if let Some(root) = &store {
        std::fs::create_dir_all(root)
            .map_err(|e| Fatal::new(2, format!("store {}: {e}", root.display())))?;
    }
    let repl = crate::replica::start(&mut cfg.repl, store.as_deref(), cfg.shards.count)
        .map_err(|e| Fatal::new(2, format!("replication identity: {e}")))?;
    probe_ports(&cfg)?;
    if let Some(p) = &pid_file {
        claim_pid_file(p, std::process::id())?;
    }
    let shards = cfg.shards.count;
    let late_root = repl.late.root.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let handles =
        super::start(cfg, repl, shutdown.clone(), tx).map_err(|e| Fatal::new(2, e.to_string()))?;
    for _ in 0..shards {
        match rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                shutdown.request();
                for h in handles {
                    let _ = h.join();
                }
                remove_pid_file(pid_file.as_deref());
                return Err(Fatal::new(2, e.to_string()));
            }
            Err(_) => {
                remove_pid_file(pid_file.as_deref());
                return Err(Fatal::new(2, "a shard failed to start"));
            }
        }
    }
    ready();
    let mut marks = Vec::new();
    let mut all_closed = true;
    for h in handles {
        match h.join() {
            Ok(exit) => {
                marks.extend(exit.late_marks);
                all_closed &= exit.store_closed;
            }
            Err(_) => all_closed = false,
        }
    }
    // Every shard flushed and closed its store: the next start reads no tail pages.
    if let (true, Some(root)) = (all_closed, &store) {
        if let Err(e) = istatd_storage::store::write_clean_mark(root) {
            tracing::error!(error = %e, "cannot write {}", istatd_storage::store::CLEAN_MARK);
        }
    }
    // After the shards stopped: the master's late marks, as of a clean stop.
    if let Some(root) = late_root {
        if let Err(e) = crate::replica::late::write(&root, "clean", &marks) {
            tracing::error!(error = %e, "cannot write {}", crate::replica::late::LATE_FILE);
        }
    }
    remove_pid_file(pid_file.as_deref());
    let _ = std::io::stdout().flush();
    Ok(())
}

fn remove_pid_file(p: Option<&Path>) {
    if let Some(p) = p {
        let _ = std::fs::remove_file(p);
    }
}
